"""Logs in once per cell and prints one JSON line per cell: the account the server saw,
or the error. Cells come as one JSON list in argv[1]; each has name, client (pymysql,
cpy_pure, cpy_c), port, user, password, tls (bool) and, for connector-python, plugin."""
import json
import sys


def login(cell):
    kind, port, user, pw = cell["client"], cell["port"], cell["user"], cell["password"]
    if kind == "pymysql":
        import pymysql
        ssl = {"ssl": {"check_hostname": False, "verify_mode": 0}} if cell["tls"] else {}
        c = pymysql.connect(host="127.0.0.1", port=port, user=user, password=pw, **ssl)
        cur = c.cursor()
    else:
        import mysql.connector
        args = dict(host="127.0.0.1", port=port, user=user, password=pw, use_pure=(kind == "cpy_pure"))
        if cell.get("plugin"):
            args["auth_plugin"] = cell["plugin"]
        if cell["tls"]:
            args.update(ssl_disabled=False, ssl_verify_cert=False, ssl_verify_identity=False)
        else:
            args["ssl_disabled"] = True
        c = mysql.connector.connect(**args)
        cur = c.cursor()
    cur.execute("SELECT CURRENT_USER(), @@ssl_cipher IS NOT NULL")
    row = cur.fetchall()[0]
    c.close()
    return row[0]


for cell in json.loads(sys.argv[1]):
    try:
        out = {"name": cell["name"], "ok": True, "user": login(cell)}
    except Exception as e:  # every client's error type: errno when it has one
        out = {"name": cell["name"], "ok": False, "errno": getattr(e, "errno", None) or (e.args[0] if e.args and isinstance(e.args[0], int) else None), "msg": str(e)}
    print(json.dumps(out), flush=True)
