-- parse_set: what a SET does to session state. `-- set:` gives the expected effect:
-- `Session name=text | name=text` (text: what to replay after `SET `), `Global`, or
-- `Opaque`. Statements are the connect-time SETs of connectors and ORMs, mysqldump's
-- and mysqlbinlog's, and documentation examples.

-- expect: SessionSet
-- set: Session names=NAMES utf8mb4
SET NAMES utf8mb4

-- expect: SessionSet
-- set: Session names=NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci'
SET NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci'

-- expect: SessionSet
-- set: Session names=NAMES 'utf8mb4' collate 'utf8mb4_unicode_ci'
set names 'utf8mb4' collate 'utf8mb4_unicode_ci'

-- expect: SessionSet
-- set: Session names=NAMES utf8mb4 COLLATE utf8mb4_bin
SET NAMES utf8mb4 COLLATE utf8mb4_bin;

-- expect: SessionSet
-- set: Session names=NAMES DEFAULT
SET NAMES DEFAULT

-- expect: SessionSet
-- set: Session names=NAMES binary
SET NAMES binary

-- expect: SessionSet
-- set: Session names=NAMES utf8mb4
/*!40101 SET NAMES utf8mb4 */

-- expect: SessionSet
-- set: Session names=NAMES utf8
/*!40101 SET NAMES utf8 */;

-- expect: SessionSet
-- set: Session character_set_results=character_set_results = NULL
SET character_set_results = NULL

-- expect: SessionSet
-- set: Session autocommit=autocommit = 1
SET autocommit=1

-- expect: SessionSet
-- set: Session autocommit=autocommit = 0
SET autocommit=0

-- expect: SessionSet
-- set: Session autocommit=autocommit = 0
SET AUTOCOMMIT = 0

-- expect: SessionSet
-- set: Session autocommit=autocommit = OFF
SET @@session.autocommit = OFF

-- expect: SessionSet
-- set: Session autocommit=autocommit = 1 | sql_mode~=sql_mode = concat(@@sql_mode,',STRICT_TRANS_TABLES')
set autocommit=1, sql_mode = concat(@@sql_mode,',STRICT_TRANS_TABLES')

-- expect: SessionSet
-- set: Session sql_mode=sql_mode = 'STRICT_TRANS_TABLES'
SET sql_mode='STRICT_TRANS_TABLES'

-- expect: SessionSet
-- set: Session sql_mode=sql_mode = 'ANSI'
SET SESSION sql_mode = 'ANSI'

-- expect: SessionSet
-- set: Session sql_mode=sql_mode = 'ANSI'
SET  @@SESSION.SQL_MODE='ANSI'

-- expect: SessionSet
-- set: Session sql_mode=sql_mode = 'ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'
set session sql_mode='ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'

-- expect: SessionSet
-- set: Session sql_mode=sql_mode = ''
SET sql_mode = ''

-- expect: SessionSet
-- set: Session time_zone=time_zone = "+00:00"
set time_zone="+00:00"

-- expect: SessionSet
-- set: Session time_zone=time_zone = '+00:00'
SET time_zone = '+00:00'

-- expect: SessionSet
-- set: Session time_zone=time_zone = 'Europe/Paris'
SET time_zone = 'Europe/Paris'

-- expect: SessionSet
-- set: Session time_zone=time_zone = SYSTEM
SET time_zone = SYSTEM

-- expect: SessionSet
-- set: Session time_zone=time_zone = '+00:00'
/*!40103 SET TIME_ZONE='+00:00' */

-- expect: SessionSet
-- set: Session sql_auto_is_null=sql_auto_is_null = 0
SET SQL_AUTO_IS_NULL = 0

-- expect: SessionSet
-- set: Session foreign_key_checks=foreign_key_checks = 0
SET FOREIGN_KEY_CHECKS = 0

-- expect: SessionSet
-- set: Session foreign_key_checks=foreign_key_checks = 1
SET FOREIGN_KEY_CHECKS=1;

-- expect: SessionSet
-- set: Session net_write_timeout=net_write_timeout = 600
SET net_write_timeout=600

-- expect: SessionSet
-- set: Session wait_timeout=wait_timeout = 28800
SET SESSION wait_timeout=28800

-- expect: SessionSet
-- set: Session sql_select_limit=sql_select_limit = 1000
SET SQL_SELECT_LIMIT=1000

-- expect: SessionSet
-- set: Session sql_select_limit=sql_select_limit = DEFAULT
SET @@SQL_SELECT_LIMIT=DEFAULT

-- expect: SessionSet
-- set: Session sql_safe_updates=sql_safe_updates = 1
SET SQL_SAFE_UPDATES=1

-- expect: SessionSet
-- set: Session sql_quote_show_create=sql_quote_show_create = 1
SET SQL_QUOTE_SHOW_CREATE=1

-- expect: SessionSet
-- set: Session character_set_results=character_set_results = 'binary'
SET SESSION character_set_results = 'binary'

-- expect: SessionSet
-- set: Session collation_connection=collation_connection = 'utf8mb4_unicode_ci'
SET collation_connection = 'utf8mb4_unicode_ci';

-- expect: SessionSet
-- set: Session character set=CHARACTER SET utf8
SET CHARACTER SET utf8

-- expect: SessionSet
-- set: Session character set=CHARACTER SET 'latin1'
SET CHARSET 'latin1'

-- expect: SessionSet
-- set: Session character set=CHARACTER SET DEFAULT
SET CHARACTER SET DEFAULT

-- expect: SessionSet
-- set: Session net_read_timeout=net_read_timeout = 700 | net_write_timeout=net_write_timeout = 700
SET SESSION net_read_timeout= 700, SESSION net_write_timeout= 700

-- expect: SessionSet
-- set: Session names=NAMES 'utf8mb4' collate 'utf8mb4_unicode_ci' | time_zone=time_zone = '+00:00' | sql_mode=sql_mode = 'NO_ENGINE_SUBSTITUTION'
set names 'utf8mb4' collate 'utf8mb4_unicode_ci', time_zone = '+00:00', session sql_mode = 'NO_ENGINE_SUBSTITUTION'

-- expect: SessionSet
-- set: Session foreign_key_checks=foreign_key_checks = 1 | sql_auto_is_null=sql_auto_is_null = 0 | unique_checks=unique_checks = 1 | autocommit=autocommit = 1
SET @@session.foreign_key_checks=1, @@session.sql_auto_is_null=0, @@session.unique_checks=1, @@session.autocommit=1/*!*/

-- expect: SessionSet
-- set: Session sql_mode=sql_mode = 1411383296
SET @@session.sql_mode=1411383296/*!*/

-- expect: SessionSet
-- set: Session character_set_client=character_set_client = utf8mb4 | collation_connection=collation_connection = 45 | collation_server=collation_server = 45
SET @@session.character_set_client=utf8mb4,@@session.collation_connection=45,@@session.collation_server=45/*!*/

-- expect: SessionSet
-- set: Session timestamp=timestamp = 1714557000
SET TIMESTAMP=1714557000/*!*/

-- expect: SessionSet
-- set: Session timestamp=timestamp = 1714557000.123456
SET TIMESTAMP=1714557000.123456

-- expect: SessionSet
-- set: Opaque
SET INSERT_ID=1046/*!*/

-- expect: SessionSet
-- set: Opaque
SET profiling = 1

-- expect: SessionSet
-- set: Session gtid_next=gtid_next = 'AUTOMATIC'
SET @@SESSION.GTID_NEXT= 'AUTOMATIC' /* added by mysqlbinlog */ /*!*/

-- expect: SessionSet
-- set: Session collation_database=collation_database = DEFAULT
SET @@session.collation_database=DEFAULT/*!*/

-- expect: SessionSet
-- set: Session max_join_size=max_join_size = 1000000
SET LOCAL max_join_size = 1000000

-- expect: SessionSet
-- set: Session max_join_size=max_join_size = -1
SET @@local.max_join_size = -1

-- expect: SessionSet
-- set: Session max_statement_time=max_statement_time = 2.5
SET max_statement_time := 2.5

-- expect: SessionSet
-- set: Session sort_buffer_size~=sort_buffer_size = 10 * 1024 * 1024
SET sort_buffer_size = 10 * 1024 * 1024

-- expect: SessionSet
-- set: Session optimizer_switch=optimizer_switch = 'index_merge=off,mrr=on'
SET SESSION optimizer_switch = 'index_merge=off,mrr=on'

-- expect: SessionSet
-- set: Session default_storage_engine=default_storage_engine = InnoDB
SET default_storage_engine = InnoDB

-- expect: SessionSet
-- set: Session keycache1.key_buffer_size=keycache1.key_buffer_size = 131072
SET @@session.keycache1.key_buffer_size = 131072

-- expect: SessionSet
-- set: Session sql_mode=sql_mode = 'TRADITIONAL'
SET `sql_mode` = 'TRADITIONAL'

-- expect: SessionSet
-- set: Session sql_mode=sql_mode = 'ANSI'
SET SESSION sql_mode = 'ANSI', GLOBAL max_connections = 500

-- expect: SessionSet
-- set: Session sql_mode=sql_mode = 'ANSI'
SET GLOBAL max_connections = 500, SESSION sql_mode = 'ANSI'

-- expect: SessionSet
-- set: Global
SET GLOBAL a_var = 1, b_var = 2

-- expect: SessionSet
-- set: Global
SET GLOBAL max_connections = 1000

-- expect: SessionSet
-- set: Global
SET @@global.slow_query_log = 1

-- expect: SessionSet
-- set: Global
SET PERSIST innodb_buffer_pool_size = 8589934592

-- expect: SessionSet
-- set: Global
SET PERSIST_ONLY back_log = 100

-- expect: SessionSet
-- set: Global
SET GLOBAL read_only = ON

-- expect: SessionSet
-- set: Global
SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5'

-- expect: SessionSet
-- set: Global
SET GLOBAL TRANSACTION ISOLATION LEVEL READ COMMITTED

-- expect: SessionSet USER_VARIABLE
-- set: Opaque
SET @x = 1

-- expect: SessionSet USER_VARIABLE
-- set: Opaque
SET @a := 5, @b := 'x'

-- expect: SessionSet USER_VARIABLE
-- set: Opaque
SET @@session.sql_mode = @saved

-- expect: SessionSet USER_VARIABLE
-- set: Opaque
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */

-- expect: SessionSet USER_VARIABLE
-- set: Opaque
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */

-- expect: SessionSet USER_VARIABLE
-- set: Opaque
/*!40101 SET character_set_client = @saved_cs_client */

-- expect: SessionSet
-- set: Session sql_mode~=sql_mode = @@global.sql_mode
SET sql_mode = @@global.sql_mode

-- expect: SessionSet
-- set: Opaque
SET sql_mode=(SELECT CONCAT(@@sql_mode, ',PIPES_AS_CONCAT,NO_ENGINE_SUBSTITUTION')),time_zone='+00:00'

-- expect: SessionSet
-- set: Session sql_mode~=sql_mode = CONCAT(CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), ',NO_AUTO_VALUE_ON_ZERO') | sql_auto_is_null=sql_auto_is_null = 0 | wait_timeout=wait_timeout = 2147483
SET @@SESSION.sql_mode = CONCAT(CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), ',NO_AUTO_VALUE_ON_ZERO'), @@SESSION.sql_auto_is_null = 0, @@SESSION.wait_timeout = 2147483

-- expect: SessionSet NON_DETERMINISTIC
-- set: Session timestamp~=timestamp = UNIX_TIMESTAMP()
SET timestamp = UNIX_TIMESTAMP()

-- expect: SessionSet
-- set: Session sql_mode~=sql_mode = REPLACE(@@sql_mode, 'ONLY_FULL_GROUP_BY', '')
SET SESSION sql_mode = REPLACE(@@sql_mode, 'ONLY_FULL_GROUP_BY', '')

-- expect: SessionSet
-- set: Opaque
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE

-- expect: SessionSet
-- set: Session tx_read_only=tx_read_only = 1
SET SESSION TRANSACTION READ ONLY

-- expect: SessionSet
-- set: Session tx_isolation=tx_isolation = 'READ-COMMITTED'
SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED

-- expect: SessionSet
-- set: Session tx_isolation=tx_isolation = 'SERIALIZABLE' | tx_read_only=tx_read_only = 0
set local transaction isolation level serializable, read write

-- expect: SessionSet
-- set: Opaque
SET SESSION TRANSACTION ISOLATION LEVEL CHAOS

-- expect: SessionSet
-- set: Opaque
SET PASSWORD = PASSWORD('x')

-- expect: SessionSet
-- set: Opaque
SET PASSWORD FOR 'bob'@'%' = 'hash'

-- expect: SessionSet
-- set: Opaque
SET ROLE journalist

-- expect: SessionSet
-- set: Opaque
SET DEFAULT ROLE ALL TO 'u'@'%'

-- expect: Read
-- set: Opaque
SET STATEMENT max_statement_time=1 FOR SELECT 1

-- expect: SessionSet
-- set: Opaque
SET sql_mode = ?

-- expect: SessionSet MULTI_STATEMENT MULTI_HAS_WRITE
-- set: Opaque
SET autocommit = 1; SET sql_mode = ''

-- expect: SessionSet
-- set: Opaque
SET

-- expect: SessionSet
-- set: Opaque
SET sql_mode

-- expect: SessionSet
-- set: Opaque
SET sql_mode =

-- expect: SessionSet
-- set: Opaque
SET NAMES

-- expect: Read
-- set: Opaque
SELECT 1

-- expect: SessionSet
-- set: Opaque
SET CHARACTER utf8

-- expect: SessionSet
-- set: Session x=x = 'café'
SET x = 'café'

-- expect: SessionSet
-- set: Session group_concat_max_len~=group_concat_max_len = 1024 * 1024
SET group_concat_max_len = 1024 * 1024

-- expect: SessionSet
-- set: Session innodb_lock_wait_timeout=innodb_lock_wait_timeout = +5
SET innodb_lock_wait_timeout = +5

-- expect: SessionSet
-- set: Session lc_time_names=lc_time_names = 'fr_FR' | lc_messages=lc_messages = 'fr_FR'
SET lc_time_names = 'fr_FR', lc_messages = 'fr_FR'

-- expect: SessionSet HINT_LEADER
-- set: Session sql_mode=sql_mode = 'ANSI'
/* shoal:leader */ SET sql_mode = 'ANSI'

-- expect: SessionSet
-- set: Session sql_mode=sql_mode = 'ANSI'
SET /* inline */ sql_mode /* c */ = /* c */ 'ANSI' -- tail

-- expect: SessionSet
-- set: Session sql_mode=sql_mode = 'ANSI' | time_zone=time_zone = '+01:00'
SET
  sql_mode = 'ANSI',
  time_zone = '+01:00'

-- expect: SessionSet
-- set: Session session_track_schema=session_track_schema = 1 | session_track_system_variables=session_track_system_variables = 'autocommit,time_zone'
SET session_track_schema=1, session_track_system_variables='autocommit,time_zone'

-- use_schema: `-- use: db` gives the schema, `-- use: -` says none.

-- expect: Use
-- use: test
USE test

-- expect: Use
-- use: test
USE `test`

-- expect: Use
-- use: shop
use shop;

-- expect: Use
-- use: my db
USE `my db`

-- expect: Use
-- use: we`ird
USE `we``ird`

-- expect: Use
-- use: shop
use `shop`/*!*/

-- expect: Use
-- use: db1
USE /* c */ db1 -- x

-- expect: Use HINT_LEADER
-- use: db1
/* shoal:leader */ USE db1

-- expect: Use MULTI_STATEMENT MULTI_HAS_WRITE
-- use: -
USE db1; SELECT 1

-- expect: Use
-- use: -
USE

-- expect: Use
-- use: -
USE a b

-- expect: Read
-- use: -
SELECT 1

-- expect: Use
-- use: -
USE ``

-- expect: Use
-- use: -
USE `unterminated

-- expect: Use
-- use: -
USE 'db'

-- expect: Use
-- use: information_schema
USE information_schema

-- expect: Use
-- use: test-db
USE `test-db`

-- expect: Use
-- use: db_2024
USE db_2024

-- expect: Use
-- use: db1
  USE	db1

-- expect: Use
-- use: db1
USE db1;;

-- expect: Use
-- use: café
USE `café`

-- expect: Use
-- use: db1
/*!40101 USE db1 */
