-- MariaDB / MySQL documentation examples for transactions, savepoints, locking reads,
-- table locks, backup locks, XA, sequences and system-versioned (temporal) tables.

-- transactions
-- expect: TxnBegin
BEGIN

-- expect: TxnBegin
BEGIN WORK

-- expect: TxnBegin
begin;

-- expect: TxnBegin
START TRANSACTION

-- expect: TxnBegin
START TRANSACTION WITH CONSISTENT SNAPSHOT

-- expect: TxnBegin
START TRANSACTION READ WRITE

-- expect: TxnBegin
START TRANSACTION WITH CONSISTENT SNAPSHOT, READ WRITE

-- expect: TxnBeginReadOnly
START TRANSACTION READ ONLY

-- expect: TxnBeginReadOnly
START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY

-- expect: TxnBeginReadOnly
start transaction read only;

-- expect: TxnCommit
COMMIT

-- expect: TxnCommit
COMMIT WORK

-- expect: TxnCommit
COMMIT AND CHAIN

-- expect: TxnCommit
COMMIT WORK AND NO CHAIN RELEASE

-- expect: TxnCommit
commit;

-- expect: TxnRollback
ROLLBACK

-- expect: TxnRollback
ROLLBACK WORK

-- expect: TxnRollback
ROLLBACK AND NO CHAIN

-- expect: TxnRollback
rollback;

-- expect: Savepoint
SAVEPOINT identifier

-- expect: Savepoint
SAVEPOINT `sp 1`

-- expect: Savepoint
ROLLBACK TO identifier

-- expect: Savepoint
ROLLBACK TO SAVEPOINT identifier

-- expect: Savepoint
ROLLBACK WORK TO SAVEPOINT identifier

-- expect: Savepoint
RELEASE SAVEPOINT identifier

-- expect: SessionSet
SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED

-- expect: SessionSet
SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY

-- expect: SessionSet
SET GLOBAL TRANSACTION ISOLATION LEVEL READ COMMITTED

-- expect: SessionSet
SET @@transaction_isolation = 'READ-COMMITTED'

-- expect: SessionSet
SET SESSION tx_read_only = 1

-- expect: SessionSet
SET autocommit = 0

-- expect: SessionSet
SET completion_type = 'CHAIN'

-- expect: Read
SELECT @@in_transaction

-- expect: Read NON_DETERMINISTIC CONNECTION_ID
SELECT trx_id, trx_state FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = CONNECTION_ID()

-- expect: Read
SELECT COUNT(*) FROM information_schema.innodb_trx


-- locking reads
-- expect: LockingRead FOR_UPDATE
SELECT * FROM parent WHERE NAME = 'Jones' FOR UPDATE

-- expect: LockingRead FOR_SHARE
SELECT * FROM parent WHERE NAME = 'Jones' LOCK IN SHARE MODE

-- expect: LockingRead FOR_SHARE
SELECT * FROM parent WHERE NAME = 'Jones' FOR SHARE

-- expect: LockingRead FOR_UPDATE
SELECT counter_field FROM child_codes FOR UPDATE

-- expect: LockingRead FOR_UPDATE
SELECT * FROM t1 WHERE c1 = (SELECT c1 FROM t2) FOR UPDATE

-- expect: LockingRead FOR_UPDATE
SELECT * FROM t1 WHERE c1 = (SELECT c1 FROM t2 FOR UPDATE) FOR UPDATE

-- expect: LockingRead FOR_UPDATE
SELECT * FROM seats WHERE seat_no BETWEEN 2 AND 3 AND booked = 'NO' FOR UPDATE SKIP LOCKED

-- expect: LockingRead FOR_UPDATE
SELECT * FROM seats WHERE seat_no = 2 FOR UPDATE NOWAIT

-- expect: LockingRead FOR_UPDATE
SELECT * FROM seats WHERE seat_no = 2 FOR UPDATE WAIT 10

-- expect: LockingRead FOR_SHARE
SELECT * FROM seats WHERE seat_no = 2 FOR SHARE SKIP LOCKED

-- expect: LockingRead FOR_SHARE
SELECT * FROM t1 JOIN t2 USING (id) FOR SHARE OF t1

-- expect: LockingRead FOR_UPDATE FOR_SHARE
SELECT * FROM t1 JOIN t2 USING (id) FOR UPDATE OF t1 FOR SHARE OF t2

-- expect: LockingRead FOR_UPDATE
SELECT id FROM t1 UNION SELECT id FROM t2 FOR UPDATE

-- expect: LockingRead FOR_UPDATE
(SELECT id FROM t1 FOR UPDATE)

-- expect: LockingRead FOR_UPDATE
select * from t1 where id=1 for
update
-- expect: LockingRead FOR_SHARE
select * from t1 where id=1 lock
  in   share
  mode
-- expect: LockingRead FOR_UPDATE CALC_FOUND_ROWS
SELECT SQL_CALC_FOUND_ROWS id FROM queue WHERE state = 0 LIMIT 10 FOR UPDATE

-- expect: LockingRead FOR_UPDATE NON_DETERMINISTIC
SELECT id FROM queue WHERE run_at <= NOW() ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED

-- expect: Read
SELECT 'FOR UPDATE' AS s, 'LOCK IN SHARE MODE' AS t

-- expect: Read
SELECT `for`, `update` FROM t

-- expect: Read
SELECT * FROM t1 /* FOR UPDATE */

-- expect: Read
SELECT * FROM t1 -- FOR UPDATE

-- expect: Read
SELECT * FROM t1 # FOR UPDATE


-- table locks and backup locks
-- expect: LockTables
LOCK TABLES t1 READ

-- expect: LockTables
LOCK TABLES t1 WRITE, t2 READ LOCAL, t3 AS alias LOW_PRIORITY WRITE

-- expect: LockTables
LOCK TABLE t1 WRITE CONCURRENT

-- expect: LockTables
LOCK TABLES t1 WRITE WAIT 10

-- expect: LockTables
lock tables `orders` write

-- expect: UnlockTables
UNLOCK TABLES

-- expect: UnlockTables
UNLOCK TABLE

-- expect: UnlockTables
unlock tables;

-- expect: LockTables
FLUSH TABLES WITH READ LOCK

-- expect: LockTables
FLUSH TABLES t1, t2 WITH READ LOCK

-- expect: LockTables
FLUSH TABLES t1 FOR EXPORT

-- expect: LockTables
FLUSH NO_WRITE_TO_BINLOG TABLES WITH READ LOCK

-- expect: LockTables
LOCK INSTANCE FOR BACKUP

-- expect: UnlockTables
UNLOCK INSTANCE

-- expect: LockTables
BACKUP LOCK test.t1

-- expect: UnlockTables
BACKUP UNLOCK

-- expect: Admin
BACKUP STAGE START

-- expect: Admin
BACKUP STAGE BLOCK_COMMIT

-- expect: Admin
BACKUP STAGE END


-- XA transactions: XA START begins; XA END / XA PREPARE keep the branch open (Savepoint
-- kind: inside a transaction, not ending it); XA COMMIT / ROLLBACK end it.
-- expect: TxnBegin
XA START 'xatest'

-- expect: TxnBegin
XA BEGIN 'xatest'

-- expect: TxnBegin
XA START 'gtrid', 'bqual', 123

-- expect: TxnBegin
XA START X'7861', X'', 1

-- expect: TxnBegin
xa start 'x' join

-- expect: Savepoint
XA END 'xatest'

-- expect: Savepoint
XA END 'xatest' SUSPEND

-- expect: Savepoint
XA PREPARE 'xatest'

-- expect: TxnCommit
XA COMMIT 'xatest'

-- expect: TxnCommit
XA COMMIT 'xatest' ONE PHASE

-- expect: TxnRollback
XA ROLLBACK 'xatest'

-- expect: Show
XA RECOVER

-- expect: Show
XA RECOVER FORMAT='SQL'

-- expect: Show
XA RECOVER CONVERT XID


-- sequences (MariaDB 10.3+)
-- expect: Ddl
CREATE SEQUENCE s START WITH 100 INCREMENT BY 10

-- expect: Ddl
CREATE SEQUENCE IF NOT EXISTS s2 MINVALUE 1 MAXVALUE 1000 CACHE 50 CYCLE

-- expect: Ddl
CREATE OR REPLACE SEQUENCE s3 AS INT UNSIGNED START 1

-- expect: Ddl CREATE_TEMP_TABLE
CREATE TEMPORARY SEQUENCE ts

-- expect: Ddl
ALTER SEQUENCE s RESTART WITH 1

-- expect: Ddl
ALTER SEQUENCE IF EXISTS s2 INCREMENT BY 5

-- expect: Ddl
DROP SEQUENCE s

-- expect: Ddl
DROP SEQUENCE IF EXISTS s2, s3

-- expect: Write SEQUENCE
SELECT NEXT VALUE FOR s

-- expect: Write SEQUENCE
SELECT NEXTVAL(s)

-- expect: Write SEQUENCE
select next value for `db1`.`s`

-- expect: Write SEQUENCE
SELECT NEXT VALUE FOR s, NEXT VALUE FOR s

-- expect: Read SEQUENCE
SELECT PREVIOUS VALUE FOR s

-- expect: Read SEQUENCE
SELECT LASTVAL(s)

-- expect: Write SEQUENCE
SELECT SETVAL(s, 100)

-- expect: Write SEQUENCE
SELECT SETVAL(s, 1000, 0, 2)

-- expect: Write SEQUENCE
INSERT INTO t1 (id, v) VALUES (NEXT VALUE FOR s, 'a')

-- expect: Write SEQUENCE
INSERT INTO t1 VALUES (NEXTVAL(s), 'b'), (NEXTVAL(s), 'c')

-- expect: Write SEQUENCE
UPDATE t1 SET id = NEXT VALUE FOR s WHERE id IS NULL

-- expect: Ddl SEQUENCE
CREATE TABLE t2 (id INT DEFAULT (NEXT VALUE FOR s), v VARCHAR(10))

-- expect: Write SEQUENCE
DO NEXT VALUE FOR s

-- expect: Read
SELECT * FROM s

-- expect: Show
SHOW CREATE SEQUENCE s

-- expect: Show
SHOW TABLES WHERE Table_type = 'SEQUENCE'

-- expect: SessionSet SEQUENCE USER_VARIABLE
SET @id = NEXT VALUE FOR s

-- expect: Read
SELECT next_not_cached_value FROM s


-- system-versioned (temporal) tables and application-time periods
-- expect: Ddl
CREATE TABLE t (x INT) WITH SYSTEM VERSIONING

-- expect: Ddl
CREATE TABLE t (x INT, start_ts TIMESTAMP(6) GENERATED ALWAYS AS ROW START, end_ts TIMESTAMP(6) GENERATED ALWAYS AS ROW END, PERIOD FOR SYSTEM_TIME(start_ts, end_ts)) WITH SYSTEM VERSIONING

-- expect: Ddl
CREATE TABLE t (x INT WITHOUT SYSTEM VERSIONING, y INT) WITH SYSTEM VERSIONING PARTITION BY SYSTEM_TIME INTERVAL 1 MONTH PARTITIONS 12 AUTO

-- expect: Ddl
ALTER TABLE t ADD SYSTEM VERSIONING

-- expect: Ddl
ALTER TABLE t DROP SYSTEM VERSIONING

-- expect: Ddl
CREATE TABLE coupons (name VARCHAR(255), date_start DATE, date_end DATE, PERIOD FOR valid_period(date_start, date_end))

-- expect: Read
SELECT * FROM t FOR SYSTEM_TIME AS OF TIMESTAMP '2016-10-09 08:07:06'

-- expect: Read NON_DETERMINISTIC
SELECT * FROM t FOR SYSTEM_TIME BETWEEN (NOW() - INTERVAL 1 YEAR) AND NOW()

-- expect: Read
SELECT * FROM t FOR SYSTEM_TIME FROM '2016-01-01 00:00:00' TO '2017-01-01 00:00:00'

-- expect: Read
SELECT * FROM t FOR SYSTEM_TIME ALL

-- expect: Read
SELECT x, ROW_START, ROW_END FROM t FOR SYSTEM_TIME ALL WHERE x = 1

-- expect: Read
SELECT * FROM t FOR SYSTEM_TIME AS OF TRANSACTION 12345

-- expect: Write
DELETE HISTORY FROM t

-- expect: Write
DELETE HISTORY FROM t BEFORE SYSTEM_TIME '2016-10-09 08:07:06'

-- expect: Write
UPDATE coupons FOR PORTION OF valid_period FROM '2024-01-01' TO '2024-02-01' SET name = 'winter'

-- expect: Write
DELETE FROM coupons FOR PORTION OF valid_period FROM '2024-03-01' TO '2024-04-01'

-- expect: SessionSet
SET @@system_versioning_asof = '2016-10-09 08:07:06'

-- expect: Read
SELECT @@system_versioning_alter_history
