-- SQLAlchemy 1.4/2.0 (mysqlclient, PyMySQL, mysql-connector, asyncmy, aiomysql dialects),
-- Alembic migrations, and the Python task queues / frameworks built on them.

-- dialect initialization
-- expect: Read
SELECT VERSION()

-- expect: Show
SHOW VARIABLES LIKE 'sql_mode'

-- expect: Show
SHOW VARIABLES LIKE 'lower_case_table_names'

-- expect: Read
SELECT @@tx_isolation

-- expect: Read
SELECT @@transaction_isolation

-- expect: Read
SELECT DATABASE()

-- expect: Show
SHOW COLLATION

-- expect: Show
show collation where `Charset` = 'utf8mb4' and `Collation` = 'utf8mb4_bin'

-- expect: Read
SELECT CAST('test plain returns' AS CHAR(60)) AS anon_1

-- expect: Read
SELECT CAST('test unicode returns' AS CHAR(60)) AS anon_1

-- expect: Read
SELECT 'x' AS some_label

-- expect: SessionSet
SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ

-- expect: SessionSet
SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED

-- expect: Read
SELECT 1 AS anon_1

-- expect: Read
select pg_catalog_fallback from (select 1 as pg_catalog_fallback) as t


-- ORM and Core statements
-- expect: Read
SELECT user_account.id, user_account.name, user_account.fullname FROM user_account WHERE user_account.name = %s

-- expect: Read
SELECT user_account.id, user_account.name, user_account.fullname FROM user_account WHERE user_account.name = 'spongebob'

-- expect: Read
SELECT address.id, address.email_address, address.user_id FROM address WHERE %s = address.user_id

-- expect: Read
SELECT user_account.id AS user_account_id, user_account.name AS user_account_name FROM user_account WHERE user_account.id IN (__[POSTCOMPILE_id_1])

-- expect: Read
SELECT user_account.id, user_account.name FROM user_account WHERE user_account.id IN (1, 2, 3)

-- expect: Read
SELECT count(*) AS count_1 FROM (SELECT user_account.id AS user_account_id FROM user_account) AS anon_1

-- expect: Read
SELECT user_account.name, address.email_address FROM user_account JOIN address ON user_account.id = address.user_id ORDER BY address.id

-- expect: Read
SELECT anon_1.user_id, anon_1.cnt FROM (SELECT address.user_id AS user_id, count(address.id) AS cnt FROM address GROUP BY address.user_id) AS anon_1 WHERE anon_1.cnt > 1

-- expect: Read
WITH anon_1 AS (SELECT address.user_id AS user_id, count(address.id) AS cnt FROM address GROUP BY address.user_id) SELECT user_account.name, anon_1.cnt FROM user_account JOIN anon_1 ON user_account.id = anon_1.user_id

-- expect: Read
WITH RECURSIVE anon_1(id, parent_id, depth) AS (SELECT node.id AS id, node.parent_id AS parent_id, 0 AS depth FROM node WHERE node.id = 1 UNION ALL SELECT node.id, node.parent_id, anon_1.depth + 1 FROM node JOIN anon_1 ON node.parent_id = anon_1.id) SELECT anon_1.id, anon_1.depth FROM anon_1

-- expect: Read
SELECT user_account.id FROM user_account WHERE EXISTS (SELECT * FROM address WHERE user_account.id = address.user_id AND address.email_address LIKE concat('%%', 'example.com'))

-- expect: Read
SELECT user_account.id, user_account.name FROM user_account ORDER BY user_account.id LIMIT 10 OFFSET 20

-- expect: Read
(SELECT a.id FROM a WHERE a.x = 1) UNION (SELECT b.id FROM b WHERE b.y = 2) ORDER BY id LIMIT 5

-- expect: Read
SELECT user_account.id, row_number() OVER (PARTITION BY user_account.name ORDER BY user_account.id) AS anon_1 FROM user_account

-- expect: Write
INSERT INTO user_account (name, fullname) VALUES (%s, %s)

-- expect: Write
INSERT INTO user_account (name, fullname) VALUES ('spongebob', 'Spongebob Squarepants'), ('sandy', 'Sandy Cheeks')

-- expect: Write
INSERT INTO user_account (name, fullname) VALUES (%(name)s, %(fullname)s)

-- expect: Write
INSERT INTO address (email_address, user_id) VALUES ('sandy@sqlalchemy.org', 2) RETURNING address.id

-- expect: Write
UPDATE user_account SET fullname=%s WHERE user_account.name = %s

-- expect: Write
UPDATE user_account, address SET address.email_address=%s WHERE user_account.id = address.user_id AND user_account.name = %s

-- expect: Write
DELETE FROM address WHERE address.user_id = %s

-- expect: Write
DELETE FROM user_account WHERE user_account.id IN (4, 5)

-- expect: Write
INSERT INTO my_table (id, data) VALUES (%s, %s) ON DUPLICATE KEY UPDATE data = VALUES(data), status = %s

-- expect: Write
INSERT INTO my_table (id, data) VALUES (%s, %s) AS new ON DUPLICATE KEY UPDATE data = new.data

-- expect: Write
REPLACE INTO kv (k, v) VALUES (%s, %s)

-- expect: LockingRead FOR_UPDATE
SELECT account.id, account.balance FROM account WHERE account.id = %s FOR UPDATE

-- expect: LockingRead FOR_SHARE
SELECT account.id, account.balance FROM account WHERE account.id = %s LOCK IN SHARE MODE

-- expect: LockingRead FOR_UPDATE
SELECT account.id FROM account WHERE account.id = %s FOR UPDATE SKIP LOCKED

-- expect: LockingRead FOR_UPDATE
SELECT account.id FROM account WHERE account.owner_id = %s FOR UPDATE OF account NOWAIT

-- expect: Read NON_DETERMINISTIC
SELECT now() AS now_1

-- expect: Read NON_DETERMINISTIC
SELECT utc_timestamp() AS utc_timestamp_1

-- expect: Read NON_DETERMINISTIC
SELECT CURRENT_TIMESTAMP AS current_timestamp_1

-- expect: Read NON_DETERMINISTIC
SELECT user_account.id FROM user_account ORDER BY rand() LIMIT 1

-- expect: Read
SELECT user_account.id FROM user_account WHERE match(user_account.name) AGAINST (%s IN BOOLEAN MODE)

-- expect: TxnBegin
BEGIN

-- expect: TxnCommit
COMMIT

-- expect: TxnRollback
ROLLBACK

-- expect: Savepoint
SAVEPOINT sa_savepoint_1

-- expect: Savepoint
RELEASE SAVEPOINT sa_savepoint_1

-- expect: Savepoint
ROLLBACK TO SAVEPOINT sa_savepoint_1

-- expect: TxnBegin
XA BEGIN '6f1f2b7b0c1e4f6b'

-- expect: TxnBegin
XA START '6f1f2b7b0c1e4f6b'

-- expect: Savepoint
XA END '6f1f2b7b0c1e4f6b'

-- expect: Savepoint
XA PREPARE '6f1f2b7b0c1e4f6b'

-- expect: TxnCommit
XA COMMIT '6f1f2b7b0c1e4f6b'

-- expect: TxnRollback
XA ROLLBACK '6f1f2b7b0c1e4f6b'

-- expect: Show
XA RECOVER

-- expect: TxnCommit
XA COMMIT '6f1f2b7b0c1e4f6b' ONE PHASE


-- reflection (inspector)
-- expect: Show
SHOW CREATE TABLE `user_account`

-- expect: Show
SHOW FULL TABLES FROM `appdb`

-- expect: Read
SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_TYPE='BASE TABLE' AND TABLE_SCHEMA=%(schema)s

-- expect: Read
SELECT COLUMN_NAME, COLUMN_DEFAULT, IS_NULLABLE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s

-- expect: Read
SELECT SEQUENCE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_TYPE='SEQUENCE' AND TABLE_SCHEMA=%(schema)s

-- expect: Show
DESCRIBE `user_account`


-- schema
-- expect: Ddl
CREATE TABLE user_account (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	name VARCHAR(30) NOT NULL, 
	fullname VARCHAR(100), 
	PRIMARY KEY (id)
)ENGINE=InnoDB CHARSET=utf8mb4
-- expect: Ddl
DROP TABLE address

-- expect: Ddl
CREATE SEQUENCE `order_id_seq` START WITH 1 INCREMENT BY 1

-- expect: Ddl
DROP SEQUENCE `order_id_seq`

-- expect: Write SEQUENCE
SELECT nextval(order_id_seq)

-- expect: Write SEQUENCE
INSERT INTO orders (id, descr) VALUES (nextval(order_id_seq), %s)


-- Alembic
-- expect: Ddl
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
)
-- expect: Read
SELECT alembic_version.version_num FROM alembic_version

-- expect: Write
INSERT INTO alembic_version (version_num) VALUES ('1975ea83b712')

-- expect: Write
UPDATE alembic_version SET version_num='ae1027a6acf' WHERE alembic_version.version_num = '1975ea83b712'

-- expect: Ddl
ALTER TABLE account ADD COLUMN last_transaction_date DATETIME

-- expect: Ddl
ALTER TABLE account MODIFY name VARCHAR(200) NULL

-- expect: Ddl
ALTER TABLE account DROP COLUMN last_transaction_date

-- expect: Ddl
CREATE INDEX ix_account_name ON account (name)

-- expect: Ddl
ALTER TABLE account ADD CONSTRAINT fk_account_owner FOREIGN KEY(owner_id) REFERENCES user_account (id) ON DELETE SET NULL


-- Celery result backend, Airflow metadata DB, Superset
-- expect: Write
INSERT INTO celery_taskmeta (task_id, status, result, date_done, traceback) VALUES (%s, %s, %s, %s, %s)

-- expect: Read
SELECT celery_taskmeta.id, celery_taskmeta.task_id, celery_taskmeta.status FROM celery_taskmeta WHERE celery_taskmeta.task_id = %s

-- expect: LockingRead FOR_UPDATE
SELECT dag_run.state, dag_run.id, dag_run.dag_id FROM dag_run WHERE dag_run.dag_id IN (%s) AND dag_run.state = %s ORDER BY dag_run.last_scheduling_decision LIMIT %s FOR UPDATE SKIP LOCKED

-- expect: Write
UPDATE task_instance SET state=%s, updated_at=%s WHERE task_instance.dag_id = %s AND task_instance.task_id = %s AND task_instance.run_id = %s AND task_instance.map_index = %s

-- expect: Read GET_LOCK
SELECT GET_LOCK('airflow.scheduler', 1800)

-- expect: Read RELEASE_LOCK
SELECT RELEASE_LOCK('airflow.scheduler')

-- expect: Read
SELECT slots.pool, slots.slots FROM slot_pool AS slots

-- expect: Write
INSERT INTO logs (dttm, dag_id, task_id, event, owner, extra) VALUES (%s, %s, %s, %s, %s, %s)
