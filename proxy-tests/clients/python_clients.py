"""PyMySQL and mysql-connector-python (pure and C) through shoal.

Usage: python_clients.py DRIVER PORT USER PASSWORD DB
DRIVER: pymysql | connector-pure | connector-c
Every check asserts on real results; the script prints `checks passed: N` at the end.
"""
import sys

driver, port, user, password, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise AssertionError(what)
    checks += 1


if driver == "pymysql":
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password, database=db,
                           charset="utf8mb4", autocommit=True, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
else:
    import mysql.connector
    from mysql.connector import HAVE_CEXT

    use_pure = driver == "connector-pure"
    if not use_pure:
        check(HAVE_CEXT, "the C extension of mysql-connector-python must be importable")
    conn = mysql.connector.connect(host="127.0.0.1", port=port, user=user, password=password, database=db,
                                   use_pure=use_pure, autocommit=True, charset="utf8mb4")
    check(type(conn).__name__ == ("MySQLConnection" if use_pure else "CMySQLConnection"), "implementation")

cur = conn.cursor()
table = "py_" + driver.replace("-", "_")
cur.execute(f"DROP TABLE IF EXISTS {table}")
cur.execute(f"CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50), amount DECIMAL(10,2), data BLOB, note MEDIUMTEXT NULL)")
cur.execute(f"INSERT INTO {table} (name, amount, data, note) VALUES (%s, %s, %s, %s)", ("zoë ✓", "12.34", b"\x00\x01\xff", None))
check(cur.lastrowid == 1, f"lastrowid {cur.lastrowid}")
cur.executemany(f"INSERT INTO {table} (name, amount) VALUES (%s, %s)", [("a", 1), ("b", 2), ("c", 3)])
check(cur.rowcount == 3, f"executemany rowcount {cur.rowcount}")
cur.execute(f"SELECT name, amount, data, note FROM {table} WHERE id = 1")
row = cur.fetchone()
check(row[0] == "zoë ✓" and str(row[1]) == "12.34" and bytes(row[2]) == b"\x00\x01\xff" and row[3] is None, f"row {row!r}")

# Transactions: rollback hides, commit shows.
def set_autocommit(on):
    # PyMySQL has a method, mysql-connector a property.
    if driver == "pymysql":
        conn.autocommit(on)
    else:
        conn.autocommit = on


set_autocommit(False)
cur.execute(f"INSERT INTO {table} (name, amount) VALUES ('rolled back', 0)")
conn.rollback()
cur.execute(f"INSERT INTO {table} (name, amount) VALUES ('committed', 0)")
conn.commit()
set_autocommit(True)
cur.execute(f"SELECT GROUP_CONCAT(name ORDER BY id) FROM {table} WHERE amount = 0")
check(cur.fetchone()[0] == "committed", "transaction outcome")

# A larger result and a larger value.
big = "x" * (2 * 1024 * 1024)
cur.execute(f"UPDATE {table} SET note = %s WHERE id = 2", (big,))
cur.execute(f"SELECT LENGTH(note), note FROM {table} WHERE id = 2")
n, note = cur.fetchone()
check(n == len(big) and note == big, "2 MiB text round trip")
cur.execute("SELECT seq FROM seq_1_to_20000")
check(len(cur.fetchall()) == 20000, "20000-row result")

# Server-side prepared statements where the driver has them.
if driver.startswith("connector"):
    pc = conn.cursor(prepared=True)
    for i in range(1, 5):
        pc.execute(f"SELECT name FROM {table} WHERE id = %s", (i,))
        r = pc.fetchone()
        check(r is not None, f"prepared select id {i}")
    pc.close()
else:
    # Multi-statements with several result sets.
    cur.execute("SELECT 1; SELECT 2, 3")
    first = cur.fetchall()
    check(cur.nextset() and cur.fetchall() == ((2, 3),) and first == ((1,),), "multi-statement results")

# Errors come through with their codes, and the session survives them.
try:
    cur.execute("SELECT * FROM no_such_table")
    check(False, "expected an error")
except Exception as e:  # driver-specific classes
    check("1146" in str(e) or getattr(e, "errno", None) == 1146 or (getattr(e, "args", [None])[0] == 1146), f"error {e!r}")
cur.execute("SELECT DATABASE()")
check(cur.fetchone()[0] == db, "session usable after an error")
conn.ping()
cur.close()
conn.close()
print(f"{driver}: checks passed: {checks}")
