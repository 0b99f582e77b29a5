-- What client programs and connectors send on connect and around their work:
-- mariadb/mysql CLI, Connector/J 5.1 and 8.x, MariaDB Connector/J 2 and 3,
-- mysql-connector-python, PyMySQL/mysqlclient, go-sql-driver, node mysql/mysql2,
-- PHP mysqlnd/PDO, .NET MySqlConnector, GUI tools (DBeaver, HeidiSQL, Workbench,
-- phpMyAdmin, DataGrip), and proxies/monitors (ProxySQL, Orchestrator, PMM).

-- mariadb / mysql command line client
-- expect: Read
select @@version_comment limit 1

-- expect: Read
SELECT DATABASE()

-- expect: Show
show databases

-- expect: Show
show tables

-- expect: Read
select DATABASE(), USER() limit 1

-- expect: Read
select @@character_set_client, @@character_set_connection, @@character_set_server, @@character_set_database limit 1

-- expect: Show DIAGNOSTICS
SHOW WARNINGS

-- expect: Show DIAGNOSTICS
show warnings

-- expect: Show DIAGNOSTICS
SHOW ERRORS

-- expect: Show
show full processlist

-- expect: Use
USE `test`

-- expect: Read
SELECT USER()

-- expect: Read
select CURRENT_USER()

-- expect: Read
SELECT VERSION()

-- expect: Show
show variables like 'version%'

-- expect: Show
SHOW STATUS LIKE 'Uptime'

-- expect: Show
help 'contents'

-- expect: Show
help 'SELECT'

-- expect: Show
show create table t1

-- expect: Show
SHOW CREATE DATABASE `test`

-- expect: Show
SHOW ENGINE INNODB STATUS

-- expect: Show
show slave status

-- expect: Show
SHOW REPLICA STATUS

-- expect: Show
SHOW MASTER STATUS

-- expect: Show
SHOW BINARY LOGS

-- expect: Show
show grants

-- expect: Show
SHOW GRANTS FOR CURRENT_USER()

-- expect: Show
show table status

-- expect: Show
show index from t1

-- expect: Show
describe t1

-- expect: Show
desc t1

-- expect: Show
DESCRIBE `db1`.`orders` `status`

-- expect: Show
show columns from t1 from db1

-- expect: Show
SHOW FULL COLUMNS FROM `wp_posts`

-- expect: Show
show engines

-- expect: Show
show plugins

-- expect: Show
SHOW PRIVILEGES

-- expect: Show
show open tables

-- expect: Show
SHOW PROFILES

-- expect: Show
SHOW PROFILE FOR QUERY 1

-- expect: Show
show events

-- expect: Show
show triggers

-- expect: Show
SHOW PROCEDURE STATUS WHERE Db = 'test'

-- expect: Show
SHOW FUNCTION STATUS

-- expect: Show
SHOW CREATE PROCEDURE p1

-- expect: Show
SHOW TABLE STATUS FROM `db1` LIKE 'orders'

-- expect: Show
show collation where Charset = 'utf8mb4'

-- expect: Show
SHOW CHARACTER SET

-- expect: Show
show global variables like 'read_only'

-- expect: Show
SHOW GLOBAL STATUS

-- expect: Show
SHOW SESSION STATUS LIKE 'Ssl_cipher'

-- expect: Show
show all slaves status

-- expect: Show
SHOW EXPLAIN FOR 42

-- expect: Show
SHOW ANALYZE FOR 42

-- expect: Show
SHOW USER_STATISTICS

-- expect: Show
SHOW WSREP_STATUS

-- expect: Show
show binlog events in 'mysql-bin.000002' from 4 limit 10

-- expect: Show
SHOW RELAYLOG EVENTS


-- MySQL Connector/J 5.1
-- expect: Read
/* mysql-connector-java-5.1.49 ( Revision: ad86f36e100e104cd926c6b81c8cab9565750116 ) */SELECT  @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client AS character_set_client, @@character_set_connection AS character_set_connection, @@character_set_results AS character_set_results, @@character_set_server AS character_set_server, @@collation_server AS collation_server, @@collation_connection AS collation_connection, @@init_connect AS init_connect, @@interactive_timeout AS interactive_timeout, @@license AS license, @@lower_case_table_names AS lower_case_table_names, @@max_allowed_packet AS max_allowed_packet, @@net_buffer_length AS net_buffer_length, @@net_write_timeout AS net_write_timeout, @@query_cache_size AS query_cache_size, @@query_cache_type AS query_cache_type, @@sql_mode AS sql_mode, @@system_time_zone AS system_time_zone, @@time_zone AS time_zone, @@tx_isolation AS tx_isolation, @@wait_timeout AS wait_timeout

-- expect: Read
/* mysql-connector-java-5.1.38 ( Revision: fe541c166cec739c74cc727c5da96c1028b4834a ) */SELECT @@session.auto_increment_increment

-- expect: Show
/* mysql-connector-java-5.1.49 ( Revision: ad86f36e100e104cd926c6b81c8cab9565750116 ) */SHOW VARIABLES WHERE Variable_name ='language' OR Variable_name = 'net_write_timeout' OR Variable_name = 'interactive_timeout' OR Variable_name = 'wait_timeout' OR Variable_name = 'character_set_client' OR Variable_name = 'character_set_connection' OR Variable_name = 'character_set' OR Variable_name = 'character_set_server' OR Variable_name = 'tx_isolation' OR Variable_name = 'transaction_isolation' OR Variable_name = 'character_set_results' OR Variable_name = 'timezone' OR Variable_name = 'time_zone' OR Variable_name = 'system_time_zone' OR Variable_name = 'lower_case_table_names' OR Variable_name = 'max_allowed_packet' OR Variable_name = 'net_buffer_length' OR Variable_name = 'sql_mode' OR Variable_name = 'query_cache_type' OR Variable_name = 'query_cache_size' OR Variable_name = 'license' OR Variable_name = 'init_connect'

-- expect: Show
SHOW COLLATION

-- expect: Read
SELECT @@session.tx_read_only

-- expect: Read
select @@session.tx_read_only

-- expect: Read
SELECT @@session.tx_isolation

-- expect: Read
/* ping */ SELECT 1

-- expect: Read
SELECT 1

-- expect: Read
select 1

-- expect: Show
SHOW FULL TABLES FROM `appdb` LIKE '%'

-- expect: Show
SHOW FULL COLUMNS FROM `customer` FROM `appdb` LIKE '%'

-- expect: Show
SHOW KEYS FROM `appdb`.`customer`

-- expect: Read
SELECT SPECIFIC_NAME, ROUTINE_TYPE FROM INFORMATION_SCHEMA.ROUTINES WHERE ROUTINE_SCHEMA = 'appdb'

-- expect: Read
SELECT name, type, comment FROM mysql.proc WHERE name like 'getOrders' and db <=> 'appdb' ORDER BY name, type


-- MySQL Connector/J 8.x
-- expect: Read
/* mysql-connector-j-8.2.0 (Revision: 06a1f724497fd81c6a659131fda822c9e5085b6c) */SELECT  @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client AS character_set_client, @@character_set_connection AS character_set_connection, @@character_set_results AS character_set_results, @@character_set_server AS character_set_server, @@collation_server AS collation_server, @@collation_connection AS collation_connection, @@init_connect AS init_connect, @@interactive_timeout AS interactive_timeout, @@license AS license, @@lower_case_table_names AS lower_case_table_names, @@max_allowed_packet AS max_allowed_packet, @@net_write_timeout AS net_write_timeout, @@performance_schema AS performance_schema, @@sql_mode AS sql_mode, @@system_time_zone AS system_time_zone, @@time_zone AS time_zone, @@transaction_isolation AS transaction_isolation, @@wait_timeout AS wait_timeout

-- expect: Read
/* mysql-connector-java-8.0.33 (Revision: 7d6b0800528b6b25c68b52dc10d6c1c8429c100c) */SELECT  @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client AS character_set_client, @@character_set_connection AS character_set_connection, @@character_set_results AS character_set_results, @@character_set_server AS character_set_server, @@collation_server AS collation_server, @@collation_connection AS collation_connection, @@init_connect AS init_connect, @@interactive_timeout AS interactive_timeout, @@license AS license, @@lower_case_table_names AS lower_case_table_names, @@max_allowed_packet AS max_allowed_packet, @@net_write_timeout AS net_write_timeout, @@performance_schema AS performance_schema, @@query_cache_size AS query_cache_size, @@query_cache_type AS query_cache_type, @@sql_mode AS sql_mode, @@system_time_zone AS system_time_zone, @@time_zone AS time_zone, @@transaction_isolation AS transaction_isolation, @@wait_timeout AS wait_timeout

-- expect: Read
SELECT @@session.transaction_read_only

-- expect: Read
SELECT @@session.transaction_isolation

-- expect: Read
select @@session.transaction_read_only

-- expect: Read
SELECT @@session.autocommit

-- expect: Show DIAGNOSTICS
SHOW WARNINGS

-- expect: Read
/* ApplicationName=DBeaver 23.2.1 - Main */ SELECT DATABASE()

-- expect: Show
/* ApplicationName=DBeaver 23.2.1 - Metadata */ SHOW DATABASES

-- expect: Read
/* ApplicationName=DBeaver 23.2.1 - Metadata */ SELECT * FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='appdb' AND TABLE_NAME='orders' ORDER BY ORDINAL_POSITION

-- expect: Read
/* ApplicationName=DBeaver 23.2.1 - Main */ SELECT @@GLOBAL.character_set_server,@@GLOBAL.collation_server

-- expect: Show
/* ApplicationName=DBeaver 23.2.1 - Main */ SHOW ENGINES

-- expect: Show
/* ApplicationName=DBeaver 23.2.1 - Main */ SHOW CHARSET

-- expect: Show
/* ApplicationName=DBeaver 23.2.1 - Main */ SHOW COLLATION

-- expect: Show
/* ApplicationName=DBeaver 23.2.1 - Main */ SHOW PLUGINS


-- MariaDB Connector/J 2.x and 3.x
-- expect: SessionSet
set autocommit=1, sql_mode = concat(@@sql_mode,',STRICT_TRANS_TABLES')

-- expect: SessionSet
set autocommit=1,session_track_schema=1,sql_mode=concat(@@sql_mode,',STRICT_TRANS_TABLES'),session_track_system_variables=CONCAT(@@global.session_track_system_variables,',auto_increment_increment')

-- expect: Read
SELECT @@max_allowed_packet,@@system_time_zone,@@time_zone,@@auto_increment_increment

-- expect: Read
select @@max_allowed_packet,@@system_time_zone,@@time_zone,@@auto_increment_increment,@@tx_isolation AS tx_isolation,@@session.tx_read_only AS tx_read_only

-- expect: Read
SELECT @@max_allowed_packet,@@wait_timeout

-- expect: Read
SELECT 1 FROM DUAL

-- expect: Read
select @@version_comment, @@version


-- mysql-connector-python, PyMySQL, mysqlclient
-- expect: SessionSet
SET NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci'

-- expect: SessionSet
SET @@session.autocommit = OFF

-- expect: SessionSet
SET @@session.autocommit = ON

-- expect: SessionSet
SET AUTOCOMMIT = 0

-- expect: SessionSet
SET AUTOCOMMIT = 1

-- expect: Read
SELECT VERSION()

-- expect: Read
SELECT @@version

-- expect: Show
SHOW VARIABLES LIKE 'sql_mode'

-- expect: Read
SELECT @@tx_isolation

-- expect: Show
SHOW VARIABLES LIKE 'character_set_connection'


-- go-sql-driver/mysql
-- expect: Read
SELECT @@max_allowed_packet

-- expect: SessionSet
SET NAMES utf8mb4

-- expect: SessionSet
SET time_zone='+00:00'

-- expect: SessionSet
SET sql_mode='TRADITIONAL'

-- expect: TxnBegin
START TRANSACTION

-- expect: TxnBeginReadOnly
START TRANSACTION READ ONLY

-- expect: TxnCommit
COMMIT

-- expect: TxnRollback
ROLLBACK


-- node mysql / mysql2, PHP mysqlnd / PDO, .NET MySqlConnector, Rust sqlx / mysql_async
-- expect: SessionSet
SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci

-- expect: SessionSet
SET NAMES utf8mb4 COLLATE utf8mb4_bin;

-- expect: Read NON_DETERMINISTIC CONNECTION_ID
SELECT CONNECTION_ID(), VERSION();

-- expect: SessionSet
SET character_set_results = NULL

-- expect: SessionSet
SET sql_mode=(SELECT CONCAT(@@sql_mode, ',PIPES_AS_CONCAT,NO_ENGINE_SUBSTITUTION')),time_zone='+00:00',NAMES utf8mb4 COLLATE utf8mb4_unicode_ci

-- expect: SessionSet
SET sql_mode=(SELECT CONCAT(@@sql_mode, ',PIPES_AS_CONCAT,NO_ENGINE_SUBSTITUTION')),time_zone='+00:00'

-- expect: Read
SELECT @@socket, @@port, @@hostname

-- expect: Read NON_DETERMINISTIC CONNECTION_ID
select connection_id()

-- expect: SessionSet
SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'

-- expect: Read
SELECT @@character_set_server, @@collation_server

-- expect: SessionSet
SET @@SQL_SELECT_LIMIT=DEFAULT

-- expect: SessionSet
SET SQL_SELECT_LIMIT=1000

-- expect: SessionSet
SET SQL_SAFE_UPDATES=1

-- expect: SessionSet
SET CHARACTER SET utf8

-- expect: SessionSet
SET SESSION wait_timeout=28800

-- expect: SessionSet
SET net_write_timeout=600

-- expect: SessionSet
SET SESSION net_read_timeout=600

-- expect: SessionSet
SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED

-- expect: SessionSet
SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ

-- expect: SessionSet
SET SESSION TRANSACTION READ ONLY

-- expect: SessionSet
SET SESSION TRANSACTION READ WRITE

-- expect: SessionSet
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE

-- expect: SessionSet
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED


-- GUI tools: HeidiSQL, MySQL Workbench, phpMyAdmin, DataGrip
-- expect: Show
SHOW /*!50002 GLOBAL */ STATUS

-- expect: Read NON_DETERMINISTIC CONNECTION_ID
SELECT CONNECTION_ID()

-- expect: Read NON_DETERMINISTIC
SELECT NOW()

-- expect: SessionSet
/*!40101 SET NAMES utf8mb4 */

-- expect: Show
SHOW VARIABLES

-- expect: Show
SHOW /*!50000 FULL */ PROCESSLIST

-- expect: Read
SELECT `SCHEMA_NAME` FROM `information_schema`.`SCHEMATA` ORDER BY `SCHEMA_NAME`

-- expect: Read
SELECT CURRENT_USER();

-- expect: SessionSet
SET collation_connection = 'utf8mb4_unicode_ci';

-- expect: Read
SELECT `SCHEMA_NAME` FROM `INFORMATION_SCHEMA`.`SCHEMATA`, (SELECT DB_first_level FROM ( SELECT DISTINCT SUBSTRING_INDEX(SCHEMA_NAME, '_', 1) DB_first_level FROM INFORMATION_SCHEMA.SCHEMATA WHERE TRUE ) t ORDER BY DB_first_level ASC LIMIT 0, 100) t2 WHERE TRUE AND 1 = LOCATE(CONCAT(DB_first_level, '_'), CONCAT(SCHEMA_NAME, '_')) ORDER BY SCHEMA_NAME ASC

-- expect: Read
SELECT @@disabled_storage_engines

-- expect: Show
SHOW MASTER LOGS

-- expect: Read
SELECT COUNT(*) FROM `appdb`.`orders`

-- expect: Show
SHOW SESSION VARIABLES LIKE 'lower_case_table_names'

-- expect: Read
SELECT current_user()

-- expect: Show
show character set where charset = 'utf8mb4'

-- expect: Read
SELECT st.* FROM performance_schema.events_statements_current st JOIN performance_schema.threads thr ON thr.thread_id = st.thread_id WHERE thr.processlist_id = 12

-- expect: Read
select table_name, table_type from information_schema.tables where table_schema = database()

-- expect: Read
/* mysql-connector-java-8.0.25 (Revision: 08be9e9b4cba6aa115f9b27b215887af40b159e0) */SELECT @@session.auto_increment_increment AS auto_increment_increment

-- expect: Read
select database(), schema(), left(user(),instr(concat(user(),'@'),'@')-1), @@version_comment


-- ProxySQL, Orchestrator, PMM, Percona Toolkit health checks
-- expect: Read
SELECT @@global.read_only

-- expect: Read
select @@read_only

-- expect: Read
SELECT @@global.read_only, @@global.super_read_only

-- expect: Show
show slave status

-- expect: Read
SELECT /* proxysql monitor */ 1

-- expect: Read
select @@global.hostname, @@global.server_id, @@global.version, @@global.log_bin, @@global.gtid_mode

-- expect: Read
SELECT COUNT(*) FROM information_schema.processlist WHERE user = 'system user'

-- expect: Read
SELECT viable_candidate FROM sys.gr_member_routing_candidate_status

-- expect: Read
SELECT MEMBER_STATE FROM performance_schema.replication_group_members WHERE MEMBER_ID=@@server_uuid

-- expect: Read
SELECT SUBSTRING_INDEX(@@version, '-', 1) AS version

-- expect: Read
SELECT variable_value FROM information_schema.global_status WHERE variable_name = 'wsrep_local_state'

-- expect: Show
SHOW GLOBAL STATUS LIKE 'wsrep_%'

-- expect: Read
SELECT ts FROM percona.heartbeat WHERE server_id = 1

-- expect: Write NON_DETERMINISTIC
REPLACE INTO percona.heartbeat (ts, server_id, file, position, relay_master_log_file, exec_master_log_pos) VALUES (NOW(6), 1, 'mysql-bin.000004', 1542, NULL, NULL)

-- expect: Write NON_DETERMINISTIC
UPDATE meta.heartbeat SET ts = UTC_TIMESTAMP(6) WHERE id = 1

-- expect: Read
SELECT /*!40001 SQL_NO_CACHE */ * FROM `sakila`.`actor`

-- Diagnostics of the previous statement (they must run where it ran).
-- expect: Show DIAGNOSTICS
SHOW COUNT(*) WARNINGS

-- expect: Show DIAGNOSTICS
show errors limit 1

-- expect: Read DIAGNOSTICS
SELECT @@session.warning_count, @@error_count

-- expect: Read ROW_COUNT
SELECT ROW_COUNT()

-- A column named warnings is not a diagnostics statement.
-- expect: Read
SELECT warnings FROM t
