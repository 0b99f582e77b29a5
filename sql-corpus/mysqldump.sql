-- mysqldump / mariadb-dump: what the dumper sends while dumping (consistent snapshot,
-- metadata queries), and what its output sends on restore through the mysql/mariadb
-- client (which splits at the delimiter and sends each statement without it).
-- Also mysqlbinlog / mariadb-binlog output replayed through the client.

-- mysqldump while dumping (--single-transaction --master-data --routines --triggers)
-- expect: SessionSet
/*!40100 SET @@SQL_MODE='' */

-- expect: SessionSet
/*!40103 SET TIME_ZONE='+00:00' */

-- expect: Admin
FLUSH /*!40101 LOCAL */ TABLES

-- expect: LockTables
FLUSH TABLES WITH READ LOCK

-- expect: SessionSet
SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ

-- expect: TxnBegin
START TRANSACTION /*!40100 WITH CONSISTENT SNAPSHOT */

-- expect: TxnBegin
START TRANSACTION WITH CONSISTENT SNAPSHOT

-- expect: Show
SHOW VARIABLES LIKE 'gtid\_mode'

-- expect: Read
SELECT @@GLOBAL.GTID_EXECUTED

-- expect: Read
SELECT @@GLOBAL.gtid_binlog_pos

-- expect: Show
SHOW MASTER STATUS

-- expect: UnlockTables
UNLOCK TABLES

-- expect: Read
SELECT LOGFILE_GROUP_NAME, FILE_NAME, TOTAL_EXTENTS, INITIAL_SIZE, ENGINE, EXTRA FROM INFORMATION_SCHEMA.FILES WHERE FILE_TYPE = 'UNDO LOG' AND FILE_NAME IS NOT NULL AND LOGFILE_GROUP_NAME IS NOT NULL AND LOGFILE_GROUP_NAME IN (SELECT DISTINCT LOGFILE_GROUP_NAME FROM INFORMATION_SCHEMA.FILES WHERE FILE_TYPE = 'DATAFILE' AND TABLESPACE_NAME IN (SELECT DISTINCT TABLESPACE_NAME FROM INFORMATION_SCHEMA.PARTITIONS WHERE TABLE_SCHEMA IN ('shop'))) GROUP BY LOGFILE_GROUP_NAME, FILE_NAME, ENGINE, TOTAL_EXTENTS, INITIAL_SIZE ORDER BY LOGFILE_GROUP_NAME

-- expect: Show
SHOW VARIABLES LIKE 'ndbinfo\_version'

-- expect: Show
SHOW CREATE DATABASE IF NOT EXISTS `shop`

-- expect: Savepoint
SAVEPOINT sp

-- expect: Savepoint
ROLLBACK TO SAVEPOINT sp

-- expect: Savepoint
RELEASE SAVEPOINT sp

-- expect: Show
show tables

-- expect: Show
show table status like 'orders'

-- expect: SessionSet
SET SQL_QUOTE_SHOW_CREATE=1

-- expect: SessionSet
SET SESSION character_set_results = 'binary'

-- expect: SessionSet
SET SESSION character_set_results = 'utf8mb4'

-- expect: Show
show create table `orders`

-- expect: Show
show fields from `orders`

-- expect: Read
SELECT /*!40001 SQL_NO_CACHE */ * FROM `orders`

-- expect: Read
SELECT /*!40001 SQL_NO_CACHE */ `id`, `customer_id`, `total` FROM `orders` WHERE id > 1000

-- expect: Show
SHOW TRIGGERS LIKE 'orders'

-- expect: Show
SHOW CREATE TRIGGER `orders_bi`

-- expect: Show
show events

-- expect: Show
SHOW FUNCTION STATUS WHERE Db = 'shop'

-- expect: Show
SHOW PROCEDURE STATUS WHERE Db = 'shop'

-- expect: Show
SHOW CREATE PROCEDURE `refresh_totals`

-- expect: Show
SHOW CREATE FUNCTION `order_total`

-- expect: Read
SELECT COLUMN_NAME,                       JSON_EXTRACT(HISTOGRAM, '$."number-of-buckets-specified"')                FROM information_schema.COLUMN_STATISTICS                WHERE SCHEMA_NAME = 'shop' AND TABLE_NAME = 'orders';

-- expect: SessionSet
/*!80000 SET SESSION information_schema_stats_expiry=0 */

-- expect: Read
SELECT engine, table_type FROM INFORMATION_SCHEMA.TABLES WHERE table_schema = DATABASE() AND table_name = 'orders'

-- expect: Show
show create table `v_order_totals`

-- expect: SessionSet
SET SESSION net_read_timeout= 700, SESSION net_write_timeout= 700

-- expect: Read
SELECT table_name FROM information_schema.tables WHERE table_schema = 'shop' AND table_type = 'SEQUENCE'

-- expect: Read
SELECT next_not_cached_value, minimum_value, maximum_value, start_value, increment, cache_size, cycle_option FROM `shop`.`order_seq`

-- expect: Show
SHOW BINARY LOG STATUS


-- restore: header
-- expect: Unknown
/*M!999999\- enable the sandbox mode */

-- expect: SessionSet USER_VARIABLE
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */

-- expect: SessionSet USER_VARIABLE
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */

-- expect: SessionSet USER_VARIABLE
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */

-- expect: SessionSet
/*!40101 SET NAMES utf8mb4 */

-- expect: SessionSet
/*!40101 SET NAMES utf8 */;

-- expect: SessionSet USER_VARIABLE
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */

-- expect: SessionSet
/*!40103 SET TIME_ZONE='+00:00' */

-- expect: SessionSet USER_VARIABLE
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */

-- expect: SessionSet USER_VARIABLE
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */

-- expect: SessionSet USER_VARIABLE
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */

-- expect: SessionSet USER_VARIABLE
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */

-- expect: SessionSet USER_VARIABLE
/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */

-- expect: SessionSet USER_VARIABLE
SET @MYSQLDUMP_TEMP_LOG_BIN = @@SESSION.SQL_LOG_BIN

-- expect: SessionSet
SET @@SESSION.SQL_LOG_BIN= 0

-- expect: SessionSet
SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5'

-- expect: SessionSet USER_VARIABLE
/*!50717 SET @rocksdb_bulk_load_var_name='rocksdb_bulk_load' */

-- expect: Ddl
CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci */

-- expect: Use
USE `shop`;


-- restore: a table
-- expect: Ddl
DROP TABLE IF EXISTS `orders`

-- expect: SessionSet USER_VARIABLE
/*!40101 SET @saved_cs_client     = @@character_set_client */

-- expect: SessionSet
/*!40101 SET character_set_client = utf8 */

-- expect: SessionSet
/*!50503 SET character_set_client = utf8mb4 */

-- expect: Ddl NON_DETERMINISTIC
CREATE TABLE `orders` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `customer_id` int(10) unsigned NOT NULL,
  `status` enum('new','paid','shipped') NOT NULL DEFAULT 'new',
  `total` decimal(10,2) NOT NULL DEFAULT 0.00,
  `note` text DEFAULT NULL,
  `created` timestamp NOT NULL DEFAULT current_timestamp(),
  `updated` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (`id`),
  KEY `customer_id` (`customer_id`),
  CONSTRAINT `orders_ibfk_1` FOREIGN KEY (`customer_id`) REFERENCES `customers` (`id`)
) ENGINE=InnoDB AUTO_INCREMENT=1045 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

-- expect: SessionSet USER_VARIABLE
/*!40101 SET character_set_client = @saved_cs_client */

-- expect: LockTables
LOCK TABLES `orders` WRITE

-- expect: LockTables
LOCK TABLES `orders` WRITE, `customers` READ

-- expect: Ddl
/*!40000 ALTER TABLE `orders` DISABLE KEYS */

-- expect: Write
INSERT INTO `orders` VALUES (1,7,'paid',19.90,NULL,'2024-04-01 09:00:00','2024-04-01 09:05:00'),(2,7,'new',5.00,'gift, wrap it; thanks','2024-04-02 10:00:00','2024-04-02 10:00:00'),(3,9,'shipped',120.00,'it\'s \"fragile\"\n2nd line','2024-04-03 11:00:00','2024-04-04 08:00:00')

-- expect: Write
INSERT INTO `blobs` VALUES (1,_binary 'PK\0\0\0\0\0\0','x'),(2,0x89504E470D0A1A0A,'y')

-- expect: Write
INSERT INTO `t_utf8` VALUES (1,'caf├й'),(2,'цена; -- not a comment'),(3,'/* not a comment */')

-- expect: Ddl
/*!40000 ALTER TABLE `orders` ENABLE KEYS */

-- expect: UnlockTables
UNLOCK TABLES

-- expect: Write
INSERT  IGNORE INTO `customers` (`id`, `name`) VALUES (7,'Ann'),(9,'Bob')

-- expect: Write
REPLACE INTO `settings` VALUES ('theme','dark')

-- expect: Ddl MULTI_STATEMENT MULTI_HAS_WRITE
/*!40000 ALTER TABLE `orders` ENABLE KEYS */; GRANT SELECT ON shop.* TO 'r'@'%'


-- restore: views (temporary table structure, then the view)
-- expect: Ddl
/*!50001 DROP VIEW IF EXISTS `v_order_totals`*/

-- expect: Ddl
/*!50001 CREATE VIEW `v_order_totals` AS SELECT
 1 AS `customer_id`,
  1 AS `total` */
;;
-- expect: Ddl
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */
/*!50001 VIEW `v_order_totals` AS select `orders`.`customer_id` AS `customer_id`,sum(`orders`.`total`) AS `total` from `orders` group by `orders`.`customer_id` */
;;
-- expect: Ddl
/*!50001 DROP TABLE IF EXISTS `v_order_totals`*/

-- expect: Ddl
CREATE SEQUENCE `order_seq` start with 1 minvalue 1 maxvalue 9223372036854775806 increment by 1 cache 1000 nocycle ENGINE=InnoDB

-- expect: Write SEQUENCE
SELECT SETVAL(`order_seq`, 2001, 0)

-- expect: Write SEQUENCE
DO SETVAL(`order_seq`, 2001, 0)


-- restore: triggers, routines, events (DELIMITER ;; in the dump: the client sends the body whole)
-- expect: SessionSet USER_VARIABLE
/*!50003 SET @saved_cs_client      = @@character_set_client */

-- expect: SessionSet USER_VARIABLE
/*!50003 SET @saved_sql_mode       = @@sql_mode */

-- expect: SessionSet
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */

-- expect: Ddl
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `orders_bi` BEFORE INSERT ON `orders` FOR EACH ROW BEGIN
  IF NEW.total < 0 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'negative total';
  END IF;
  SET NEW.note = CONCAT(IFNULL(NEW.note, ''), ' @', NOW());
  SET @last_order_insert = UUID();
END */
;;
-- expect: Ddl
CREATE DEFINER=`root`@`localhost` PROCEDURE `refresh_totals`(IN p_customer INT)
    MODIFIES SQL DATA
BEGIN
  DECLARE v_total DECIMAL(10,2);
  SELECT SUM(total) INTO v_total FROM orders WHERE customer_id = p_customer FOR UPDATE;
  UPDATE customers SET lifetime_total = v_total, refreshed = NOW() WHERE id = p_customer;
  SELECT GET_LOCK('refresh', 1);
END
;;
-- expect: Ddl
CREATE DEFINER=`app`@`%` FUNCTION `order_total`(p_id INT) RETURNS decimal(10,2)
    READS SQL DATA
    DETERMINISTIC
BEGIN
  DECLARE v DECIMAL(10,2);
  SELECT total INTO v FROM orders WHERE id = p_id;
  RETURN v;
END
;;
-- expect: Ddl
/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `purge_sessions` ON SCHEDULE EVERY 1 HOUR STARTS '2024-01-01 00:00:00' ON COMPLETION NOT PRESERVE ENABLE DO DELETE FROM sessions WHERE expires < NOW() */
;;
-- expect: SessionSet USER_VARIABLE
/*!50003 SET sql_mode              = @saved_sql_mode */

-- expect: Ddl
/*!50003 DROP PROCEDURE IF EXISTS `refresh_totals` */

-- expect: Ddl
/*!50106 DROP EVENT IF EXISTS `purge_sessions` */

-- expect: SessionSet USER_VARIABLE
/*!50106 SET TIME_ZONE= @save_time_zone */ 


-- restore: footer
-- expect: SessionSet USER_VARIABLE
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */

-- expect: SessionSet USER_VARIABLE
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */

-- expect: SessionSet USER_VARIABLE
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */

-- expect: SessionSet USER_VARIABLE
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */

-- expect: SessionSet USER_VARIABLE
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */

-- expect: SessionSet USER_VARIABLE
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */

-- expect: SessionSet USER_VARIABLE
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */

-- expect: SessionSet USER_VARIABLE
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */

-- expect: SessionSet USER_VARIABLE
SET @@SESSION.SQL_LOG_BIN = @MYSQLDUMP_TEMP_LOG_BIN

-- expect: Unknown
-- Dump completed on 2024-05-01 10:00:00


-- mysqlbinlog / mariadb-binlog output replayed through the client
-- expect: SessionSet
/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=1*/

-- expect: SessionSet USER_VARIABLE
/*!50003 SET @OLD_COMPLETION_TYPE=@@COMPLETION_TYPE,COMPLETION_TYPE=0*/

-- expect: SessionSet
SET TIMESTAMP=1714557000/*!*/

-- expect: SessionSet
SET @@session.pseudo_thread_id=5/*!*/

-- expect: SessionSet
SET @@session.foreign_key_checks=1, @@session.sql_auto_is_null=0, @@session.unique_checks=1, @@session.autocommit=1/*!*/

-- expect: SessionSet
SET @@session.sql_mode=1411383296/*!*/

-- expect: SessionSet
SET @@session.auto_increment_increment=1, @@session.auto_increment_offset=1/*!*/

-- expect: Unknown
/*!\C utf8mb4 *//*!*/

-- expect: SessionSet
SET @@session.character_set_client=utf8mb4,@@session.collation_connection=45,@@session.collation_server=45/*!*/

-- expect: SessionSet
SET @@session.lc_time_names=0/*!*/

-- expect: SessionSet
SET @@session.collation_database=DEFAULT/*!*/

-- expect: SessionSet
SET @@SESSION.GTID_NEXT= 'AUTOMATIC' /* added by mysqlbinlog */ /*!*/

-- expect: SessionSet
SET @@SESSION.GTID_NEXT= '3e11fa47-71ca-11e1-9e33-c80aa9429562:23'/*!*/

-- expect: SessionSet
/*M!100001 SET @@session.gtid_domain_id=0*//*!*/

-- expect: SessionSet
/*M!100001 SET @@session.server_id=1*//*!*/

-- expect: SessionSet
/*M!100001 SET @@session.gtid_seq_no=15*//*!*/

-- expect: SessionSet
SET INSERT_ID=1046/*!*/

-- expect: SessionSet
SET @@session.explicit_defaults_for_timestamp=1/*!*/

-- expect: TxnBegin
BEGIN

-- expect: TxnBegin
START TRANSACTION

-- expect: Use
use `shop`/*!*/

-- expect: Write
INSERT INTO orders (customer_id, total) VALUES (7, 12.00)

-- expect: TxnCommit
COMMIT/*!*/

-- expect: TxnRollback
ROLLBACK /* added by mysqlbinlog */ /*!*/

-- expect: Admin
BINLOG '
GFwyZg8BAAAA/AAAAAABAAAAAAQAMTAuMTEuNi1NYXJpYURCLWxvZwAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAYXDJmEzgNAAgAEgAEBAQEEgAA5AAEGggAAAAICAgCAAAACgoKAAAAAAAAAAAA
'
-- expect: Admin
BINLOG '3Fwyzhc...'

-- expect: SessionSet USER_VARIABLE
/*!50003 SET COMPLETION_TYPE=@OLD_COMPLETION_TYPE*/

-- expect: TxnBegin
XA START X'31',X'',1/*!*/

-- expect: Savepoint
XA END X'31',X'',1/*!*/

-- expect: Savepoint
XA PREPARE X'31',X'',1/*!*/

-- expect: TxnCommit
XA COMMIT X'31',X'',1/*!*/
