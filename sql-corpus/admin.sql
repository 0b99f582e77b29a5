-- Administration statements (documentation examples and what DBAs, backup tools,
-- replication managers and monitoring agents send): plugins, flush, kill, table
-- maintenance, replication control, binlog management, caches, shutdown; and EXPLAIN /
-- ANALYZE, whose kind depends on whether the statement runs.

-- plugins and components
-- expect: Admin
INSTALL PLUGIN example SONAME 'ha_example'

-- expect: Admin
INSTALL SONAME 'auth_ed25519'

-- expect: Admin
UNINSTALL PLUGIN example

-- expect: Admin
UNINSTALL SONAME 'ha_example'

-- expect: Admin
INSTALL COMPONENT 'file://component_validate_password'


-- flush, kill, reset, purge
-- expect: Admin
FLUSH PRIVILEGES

-- expect: Admin
FLUSH LOGS

-- expect: Admin
FLUSH BINARY LOGS

-- expect: Admin
FLUSH TABLES

-- expect: Admin
FLUSH TABLES t1, t2

-- expect: Admin
FLUSH STATUS

-- expect: Admin
FLUSH HOSTS

-- expect: Admin
FLUSH QUERY CACHE

-- expect: Admin
FLUSH USER_RESOURCES

-- expect: Admin
FLUSH LOCAL ERROR LOGS

-- expect: Admin
FLUSH SSL

-- expect: Admin
KILL 42

-- expect: Admin
KILL QUERY 42

-- expect: Admin
KILL CONNECTION 42

-- expect: Admin
KILL HARD QUERY ID 1234

-- expect: Admin
KILL USER 'app'

-- expect: Admin
RESET QUERY CACHE

-- expect: Admin
RESET MASTER

-- expect: Admin
RESET SLAVE ALL

-- expect: Admin
RESET REPLICA 'conn1'

-- expect: Admin
PURGE BINARY LOGS TO 'mysql-bin.000010'

-- expect: Admin
PURGE MASTER LOGS BEFORE '2024-04-01 00:00:00'

-- expect: Admin NON_DETERMINISTIC
PURGE BINARY LOGS BEFORE NOW() - INTERVAL 3 DAY

-- expect: Admin
SHUTDOWN

-- expect: Admin
SHUTDOWN WAIT FOR ALL SLAVES

-- expect: Admin
RESTART


-- table maintenance
-- expect: Admin
ANALYZE TABLE t1

-- expect: Admin
ANALYZE LOCAL TABLE t1, t2

-- expect: Admin
ANALYZE NO_WRITE_TO_BINLOG TABLE t1 PERSISTENT FOR ALL

-- expect: Admin
ANALYZE TABLE t1 UPDATE HISTOGRAM ON c1, c2 WITH 16 BUCKETS

-- expect: Admin
OPTIMIZE TABLE t1

-- expect: Admin
OPTIMIZE NO_WRITE_TO_BINLOG TABLE t1, t2

-- expect: Admin
CHECK TABLE t1 EXTENDED

-- expect: Admin
CHECK TABLE t1 FOR UPGRADE

-- expect: Admin
CHECK VIEW v1

-- expect: Admin
CHECKSUM TABLE t1

-- expect: Admin
CHECKSUM TABLE t1, t2 EXTENDED

-- expect: Admin
REPAIR TABLE t1 QUICK

-- expect: Admin
REPAIR NO_WRITE_TO_BINLOG TABLE t1 USE_FRM

-- expect: Admin
CACHE INDEX t1, t2 IN hot_cache

-- expect: Admin
LOAD INDEX INTO CACHE t1, t2 IGNORE LEAVES

-- expect: Admin
IMPORT TABLE FROM '/tmp/mysql-files/t1_*.sdi'

-- expect: Admin
CLONE INSTANCE FROM 'donor'@'10.0.0.2':3306 IDENTIFIED BY 'pw'


-- replication control
-- expect: Admin
CHANGE MASTER TO MASTER_HOST='10.0.0.1', MASTER_USER='repl', MASTER_PASSWORD='pw', MASTER_USE_GTID=slave_pos

-- expect: Admin
CHANGE MASTER 'conn2' TO MASTER_HOST='10.0.0.2', MASTER_PORT=3307

-- expect: Admin
CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.1', SOURCE_AUTO_POSITION=1

-- expect: Admin
CHANGE REPLICATION FILTER REPLICATE_DO_DB = (db1)

-- expect: Admin
START SLAVE

-- expect: Admin
START SLAVE 'conn2' IO_THREAD

-- expect: Admin
START REPLICA UNTIL SQL_AFTER_MTS_GAPS

-- expect: Admin
START ALL SLAVES

-- expect: Admin
STOP SLAVE

-- expect: Admin
STOP REPLICA SQL_THREAD

-- expect: Admin
STOP ALL SLAVES

-- expect: Admin
START GROUP_REPLICATION

-- expect: Admin
STOP GROUP_REPLICATION

-- expect: Admin
BINLOG 'AMUaOw8BAAAAdgAAAHoAAAAAAAQANS4xLjMwLWxvZwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEzgNAAgAEgAEBAQEEgAAYwAEGggAAAAICAgCAAA='

-- expect: SessionSet
SET GLOBAL gtid_slave_pos = '0-1-100'

-- expect: SessionSet
SET GLOBAL read_only = ON

-- expect: SessionSet
SET GLOBAL super_read_only = 1

-- expect: SessionSet
SET GLOBAL max_connections = 1000

-- expect: SessionSet
SET PERSIST innodb_buffer_pool_size = 8589934592

-- expect: SessionSet
SET PERSIST_ONLY back_log = 100

-- expect: SessionSet
SET @@global.slow_query_log = 1

-- expect: Read
SELECT MASTER_POS_WAIT('mysql-bin.000002', 1542, 10)

-- expect: Read
SELECT MASTER_GTID_WAIT('0-1-100', 5)

-- expect: Read
SELECT WAIT_FOR_EXECUTED_GTID_SET('3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5', 1)

-- expect: Read
SELECT BINLOG_GTID_POS('mysql-bin.000002', 1542)


-- EXPLAIN / DESCRIBE / ANALYZE
-- expect: Show
EXPLAIN SELECT * FROM t1 WHERE a = 1

-- expect: Show
EXPLAIN EXTENDED SELECT * FROM t1

-- expect: Show
EXPLAIN PARTITIONS SELECT * FROM part WHERE d > '2024-01-01'

-- expect: Show
EXPLAIN FORMAT=JSON SELECT * FROM t1 JOIN t2 USING (id)

-- expect: Show
EXPLAIN FORMAT=TREE SELECT * FROM t1

-- expect: Show
EXPLAIN UPDATE t1 SET a = 1 WHERE b = 2

-- expect: Show
EXPLAIN DELETE FROM t1 WHERE a < 0

-- expect: Show
EXPLAIN INSERT INTO t1 SELECT * FROM t2

-- expect: Show
EXPLAIN FOR CONNECTION 42

-- expect: Show
EXPLAIN t1

-- expect: Show
DESCRIBE SELECT * FROM t1

-- expect: Show
DESC FORMAT=JSON SELECT 1

-- expect: Show
EXPLAIN ANALYZE SELECT * FROM t1 WHERE a > 5

-- expect: Show
EXPLAIN ANALYZE FORMAT=TREE SELECT COUNT(*) FROM t1

-- expect: Write
EXPLAIN ANALYZE UPDATE t1 SET a = a + 1 WHERE b = 2

-- expect: Write
EXPLAIN ANALYZE DELETE t1 FROM t1 JOIN t2 USING (id)

-- expect: LockingRead FOR_UPDATE
EXPLAIN ANALYZE SELECT * FROM t1 WHERE id = 1 FOR UPDATE

-- expect: Show
ANALYZE SELECT * FROM t1 WHERE a > 5

-- expect: Show
ANALYZE FORMAT=JSON SELECT * FROM t1 JOIN t2 ON t1.a = t2.a

-- expect: Write
ANALYZE UPDATE t1 SET a = 1 WHERE b = 2

-- expect: Write
ANALYZE DELETE FROM t1 WHERE a < 0

-- expect: Write
ANALYZE INSERT INTO t1 SELECT * FROM t2

-- expect: Write
ANALYZE FORMAT=JSON UPDATE t1 SET a = 2

-- expect: Show
EXPLAIN (SELECT a FROM t1) UNION (SELECT a FROM t2)

-- expect: Show
EXPLAIN WITH c AS (SELECT 1) SELECT * FROM c

-- expect: Show
HELP 'SHOW'


-- SET STATEMENT ... FOR: the inner statement's kind
-- expect: Read
SET STATEMENT max_statement_time=1000 FOR SELECT * FROM t1

-- expect: Write
SET STATEMENT sql_mode='' FOR INSERT INTO t1 VALUES (0)

-- expect: Write
SET STATEMENT foreign_key_checks=0, unique_checks=0 FOR DELETE FROM t1 WHERE id = 5

-- expect: LockingRead FOR_UPDATE
SET STATEMENT innodb_lock_wait_timeout=1 FOR SELECT * FROM t1 WHERE id = 1 FOR UPDATE

-- expect: Ddl
SET STATEMENT lock_wait_timeout=5 FOR ALTER TABLE t1 ADD COLUMN x INT

-- expect: Read
SET STATEMENT optimizer_switch='index_merge=off', join_cache_level=(4) FOR SELECT 1

-- expect: Show
SET STATEMENT max_statement_time=2 FOR EXPLAIN SELECT 1

-- expect: Write SEQUENCE
SET STATEMENT max_statement_time=2 FOR SELECT NEXTVAL(s)

-- expect: Read
SET STATEMENT max_statement_time=1 FOR SET STATEMENT sql_mode='' FOR SELECT 2

-- expect: Unknown
SET STATEMENT max_statement_time=1 FOR

-- expect: SessionSet
SET STATEMENTS_LOGGING = 1


-- monitoring agents (PMM, Datadog, Zabbix, mysqld_exporter)
-- expect: Show
SHOW GLOBAL STATUS

-- expect: Show
SHOW GLOBAL VARIABLES

-- expect: Show
SHOW ENGINE INNODB MUTEX

-- expect: Read
SELECT * FROM performance_schema.events_statements_summary_by_digest ORDER BY SUM_TIMER_WAIT DESC LIMIT 10

-- expect: Read NON_DETERMINISTIC
SELECT SCHEMA_NAME, DIGEST, DIGEST_TEXT, COUNT_STAR FROM performance_schema.events_statements_summary_by_digest WHERE LAST_SEEN >= NOW() - INTERVAL 60 SECOND

-- expect: Read
SELECT table_schema, table_name, data_length, index_length FROM information_schema.tables WHERE table_schema NOT IN ('mysql','performance_schema','information_schema','sys')

-- expect: Read
SELECT COUNT(*) FROM information_schema.processlist WHERE command != 'Sleep'

-- expect: Read
SELECT * FROM sys.schema_unused_indexes

-- expect: Read
SELECT NAME, COUNT FROM information_schema.INNODB_METRICS WHERE STATUS = 'enabled'

-- expect: Ddl
TRUNCATE performance_schema.events_statements_summary_by_digest

-- expect: Write
UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME LIKE 'events_statements_history%'

-- expect: Show
SHOW SLAVE HOSTS

-- expect: Show
SHOW REPLICAS

-- expect: Show
SHOW PROCESSLIST

-- expect: Show
SHOW STATUS WHERE Variable_name IN ('Threads_connected', 'Threads_running')
