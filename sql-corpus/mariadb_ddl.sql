-- MariaDB / MySQL documentation examples for data definition: databases, tables,
-- temporary tables, indexes, views, partitions, stored programs (compound statements
-- whose bodies hold `;`), events, servers, tablespaces, accounts and roles.

-- databases
-- expect: Ddl
CREATE DATABASE db1

-- expect: Ddl
CREATE DATABASE IF NOT EXISTS db1 CHARACTER SET = 'utf8mb4' COLLATE = 'utf8mb4_unicode_ci'

-- expect: Ddl
CREATE OR REPLACE DATABASE db2 COMMENT 'scratch'

-- expect: Ddl
CREATE SCHEMA reports

-- expect: Ddl
ALTER DATABASE db1 CHARACTER SET = 'utf8mb4'

-- expect: Ddl
ALTER SCHEMA db1 COMMENT = 'main'

-- expect: Ddl
DROP DATABASE db1

-- expect: Ddl
DROP SCHEMA IF EXISTS reports


-- tables
-- expect: Ddl
CREATE TABLE t1 (a INT)

-- expect: Ddl
CREATE TABLE IF NOT EXISTS t1 (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL DEFAULT '', UNIQUE KEY (name)) ENGINE=InnoDB

-- expect: Ddl
CREATE OR REPLACE TABLE t1 (a INT, b INT INVISIBLE, c INT AS (a + b) VIRTUAL, d INT AS (a * 2) PERSISTENT)

-- expect: Ddl
CREATE TABLE t2 LIKE t1

-- expect: Ddl
CREATE TABLE t3 AS SELECT * FROM t1 WHERE a > 5

-- expect: Ddl
CREATE TABLE t4 (PRIMARY KEY (id)) SELECT id, name FROM t1

-- expect: Ddl
CREATE TABLE t5 (c1 INT CHECK (c1 > 2), c2 INT, CONSTRAINT c2_pos CHECK (c2 > 0)) ENGINE=Aria PAGE_CHECKSUM=1

-- expect: Ddl
CREATE TABLE geo (id INT PRIMARY KEY, g GEOMETRY NOT NULL, SPATIAL INDEX (g)) ENGINE=InnoDB

-- expect: Ddl
CREATE TABLE doc (id INT PRIMARY KEY, body TEXT, FULLTEXT KEY ft_body (body)) ENGINE=InnoDB

-- expect: Ddl
CREATE TABLE part (id INT, d DATE) PARTITION BY RANGE (YEAR(d)) (PARTITION p0 VALUES LESS THAN (2020), PARTITION p1 VALUES LESS THAN (2025), PARTITION pmax VALUES LESS THAN MAXVALUE)

-- expect: Ddl
CREATE TABLE hashed (id INT) PARTITION BY HASH (id) PARTITIONS 8

-- expect: Ddl
CREATE TABLE t6 (id INT, data JSON CHECK (JSON_VALID(data)))

-- expect: Ddl
CREATE TABLE `select` (`from` INT, `where` VARCHAR(10))

-- expect: Ddl NON_DETERMINISTIC
CREATE TABLE audit (id BIGINT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), who VARCHAR(80))

-- expect: Ddl NON_DETERMINISTIC
CREATE TABLE t7 (id BINARY(16) DEFAULT (UUID_TO_BIN(UUID())) PRIMARY KEY)

-- expect: Ddl
CREATE TABLE remote_t (id INT) ENGINE=CONNECT TABLE_TYPE=MYSQL CONNECTION='mysql://user:pass@10.0.0.1/db/t'

-- expect: Ddl
ALTER TABLE t1 ADD COLUMN c INT AFTER b

-- expect: Ddl
ALTER TABLE t1 ADD COLUMN IF NOT EXISTS d DATE, ADD INDEX IF NOT EXISTS idx_d (d)

-- expect: Ddl
ALTER TABLE t1 DROP COLUMN IF EXISTS c, ALGORITHM=INPLACE, LOCK=NONE

-- expect: Ddl
ALTER TABLE t1 MODIFY COLUMN name VARCHAR(128) NOT NULL

-- expect: Ddl
ALTER TABLE t1 CHANGE COLUMN name full_name VARCHAR(128)

-- expect: Ddl
ALTER TABLE t1 RENAME COLUMN full_name TO name

-- expect: Ddl
ALTER TABLE t1 RENAME INDEX idx_d TO idx_date

-- expect: Ddl
ALTER TABLE t1 ENGINE = InnoDB

-- expect: Ddl
ALTER TABLE t1 FORCE

-- expect: Ddl
ALTER ONLINE TABLE t1 ADD INDEX (b)

-- expect: Ddl
ALTER IGNORE TABLE t1 ADD UNIQUE (a)

-- expect: Ddl
ALTER TABLE t1 ADD CONSTRAINT fk_b FOREIGN KEY (b) REFERENCES t2 (id) ON DELETE CASCADE ON UPDATE RESTRICT

-- expect: Ddl
ALTER TABLE t1 DROP FOREIGN KEY fk_b

-- expect: Ddl
ALTER TABLE t1 DROP PRIMARY KEY, ADD PRIMARY KEY (id, b)

-- expect: Ddl
ALTER TABLE part ADD PARTITION (PARTITION p2 VALUES LESS THAN (2030))

-- expect: Ddl
ALTER TABLE part DROP PARTITION p0

-- expect: Ddl
ALTER TABLE part TRUNCATE PARTITION p1

-- expect: Ddl
ALTER TABLE part REORGANIZE PARTITION pmax INTO (PARTITION p3 VALUES LESS THAN (2035), PARTITION pmax VALUES LESS THAN MAXVALUE)

-- expect: Ddl
ALTER TABLE part EXCHANGE PARTITION p1 WITH TABLE part_archive

-- expect: Ddl
ALTER TABLE t1 DISCARD TABLESPACE

-- expect: Ddl
ALTER TABLE t1 IMPORT TABLESPACE

-- expect: Ddl
ALTER TABLE t1 AUTO_INCREMENT = 1000

-- expect: Ddl
ALTER TABLE t1 CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci

-- expect: Ddl
ALTER TABLE t1 COMMENT = 'users'

-- expect: Ddl
RENAME TABLE t1 TO t1_old, t1_new TO t1

-- expect: Ddl
RENAME TABLE IF EXISTS a TO b

-- expect: Ddl
TRUNCATE TABLE t1

-- expect: Ddl
TRUNCATE t2

-- expect: Ddl
DROP TABLE t1

-- expect: Ddl
DROP TABLE IF EXISTS t1, t2, t3

-- expect: Ddl
DROP TABLE IF EXISTS `db1`.`t1` RESTRICT

-- expect: Ddl
DROP TABLE /* comment */ IF EXISTS t1 WAIT 5


-- temporary tables (a temporary sequence is a temporary table too: see mariadb_txn.sql)
-- expect: Ddl CREATE_TEMP_TABLE
CREATE TEMPORARY TABLE tmp (id INT PRIMARY KEY, v VARCHAR(10))

-- expect: Ddl CREATE_TEMP_TABLE
CREATE TEMPORARY TABLE IF NOT EXISTS tmp_ids AS SELECT id FROM t1 WHERE a > 5

-- expect: Ddl CREATE_TEMP_TABLE
CREATE OR REPLACE TEMPORARY TABLE tmp LIKE t1

-- expect: Ddl CREATE_TEMP_TABLE
create temporary table tmp_orders engine=memory select * from orders where created > '2024-01-01'

-- expect: Ddl CREATE_TEMP_TABLE
CREATE TEMPORARY TABLE `tmp_report` (`k` VARCHAR(32), `n` INT) ENGINE=MEMORY

-- expect: Ddl DROP_TEMP_TABLE
DROP TEMPORARY TABLE tmp

-- expect: Ddl DROP_TEMP_TABLE
DROP TEMPORARY TABLE IF EXISTS tmp_ids, tmp_orders

-- expect: Ddl DROP_TEMP_TABLE
drop temporary table if exists `tmp_report`

-- expect: Write
INSERT INTO tmp SELECT id, 'x' FROM t1

-- expect: Read
SELECT * FROM tmp


-- indexes
-- expect: Ddl
CREATE INDEX idx_name ON t1 (name)

-- expect: Ddl
CREATE UNIQUE INDEX uq_email ON users (email)

-- expect: Ddl
CREATE OR REPLACE INDEX idx_a ON t1 (a) USING BTREE

-- expect: Ddl
CREATE INDEX IF NOT EXISTS idx_b ON t1 (b DESC)

-- expect: Ddl
CREATE FULLTEXT INDEX ft ON doc (body)

-- expect: Ddl
CREATE SPATIAL INDEX sp ON geo (g)

-- expect: Ddl
CREATE INDEX idx_prefix ON t1 (name(10)) ALGORITHM=INPLACE LOCK=NONE

-- expect: Ddl
DROP INDEX idx_name ON t1

-- expect: Ddl
DROP INDEX IF EXISTS idx_b ON t1


-- views
-- expect: Ddl
CREATE VIEW v1 AS SELECT a, b FROM t1 WHERE a > 0

-- expect: Ddl
CREATE OR REPLACE VIEW v1 AS SELECT * FROM t1

-- expect: Ddl
CREATE ALGORITHM = MERGE DEFINER = CURRENT_USER SQL SECURITY INVOKER VIEW v2 (x, y) AS SELECT a, b FROM t1 WITH CHECK OPTION

-- expect: Ddl
CREATE DEFINER=`admin`@`localhost` VIEW v3 AS SELECT event, trigger_time FROM log

-- expect: Ddl
ALTER VIEW v1 AS SELECT a FROM t1

-- expect: Ddl
DROP VIEW IF EXISTS v1, v2

-- expect: Ddl
RENAME TABLE v3 TO v4


-- stored programs: bodies hold `;`, the whole text is one statement
-- expect: Ddl
CREATE PROCEDURE simpleproc (OUT param1 INT)
BEGIN
  SELECT COUNT(*) INTO param1 FROM t;
END
;;
-- expect: Ddl
CREATE OR REPLACE PROCEDURE transfer(IN src INT, IN dst INT, IN amount DECIMAL(10,2))
MODIFIES SQL DATA
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  SELECT balance FROM accounts WHERE id = src FOR UPDATE;
  UPDATE accounts SET balance = balance - amount WHERE id = src;
  UPDATE accounts SET balance = balance + amount WHERE id = dst;
  INSERT INTO ledger (src, dst, amount, at) VALUES (src, dst, amount, NOW());
  COMMIT;
END
;;
-- expect: Ddl
CREATE FUNCTION hello (s CHAR(20)) RETURNS CHAR(50) DETERMINISTIC RETURN CONCAT('Hello, ',s,'!')
;;
-- expect: Ddl
CREATE DEFINER = 'root'@'localhost' FUNCTION next_id() RETURNS BIGINT
BEGIN
  UPDATE counters SET v = LAST_INSERT_ID(v + 1) WHERE k = 'id';
  RETURN LAST_INSERT_ID();
END
;;
-- expect: Ddl
CREATE AGGREGATE FUNCTION IF NOT EXISTS agg_sum(x INT) RETURNS DOUBLE
BEGIN
  DECLARE z DOUBLE DEFAULT 0;
  DECLARE CONTINUE HANDLER FOR NOT FOUND RETURN z;
  LOOP
    FETCH GROUP NEXT ROW;
    SET z = z + x;
  END LOOP;
END
;;
-- expect: Ddl
CREATE FUNCTION metaphon RETURNS STRING SONAME 'udf_example.so'

-- expect: Ddl
CREATE TRIGGER increment_animal AFTER INSERT ON animals FOR EACH ROW
UPDATE animal_count SET animal_count.animals = animal_count.animals+1
;;
-- expect: Ddl
CREATE TRIGGER ins_sum BEFORE INSERT ON account FOR EACH ROW SET @sum = @sum + NEW.amount
;;
-- expect: Ddl
CREATE DEFINER=`root`@`%` TRIGGER upd_check BEFORE UPDATE ON account
FOR EACH ROW
BEGIN
  IF NEW.amount < 0 THEN
    SET NEW.amount = 0;
  ELSEIF NEW.amount > 100 THEN
    SET NEW.amount = 100;
  END IF;
END
;;
-- expect: Ddl
CREATE EVENT myevent ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL 1 HOUR
DO
  UPDATE myschema.mytable SET mycol = mycol + 1
;;
-- expect: Ddl
CREATE EVENT IF NOT EXISTS e_daily
  ON SCHEDULE EVERY 1 DAY
  COMMENT 'Saves total number of sessions then clears the table each day'
  DO
    BEGIN
      INSERT INTO site_activity.totals (time, total)
        SELECT CURRENT_TIMESTAMP, COUNT(*) FROM site_activity.sessions;
      DELETE FROM site_activity.sessions;
    END
;;
-- expect: Ddl
ALTER EVENT myevent ON SCHEDULE EVERY 12 HOUR STARTS CURRENT_TIMESTAMP + INTERVAL 4 HOUR

-- expect: Ddl
ALTER EVENT myevent DISABLE

-- expect: Ddl
ALTER PROCEDURE simpleproc COMMENT 'counts'

-- expect: Ddl
ALTER FUNCTION hello SQL SECURITY INVOKER

-- expect: Ddl
DROP PROCEDURE IF EXISTS simpleproc

-- expect: Ddl
DROP FUNCTION IF EXISTS hello

-- expect: Ddl
DROP TRIGGER IF EXISTS db1.ins_sum

-- expect: Ddl
DROP EVENT IF EXISTS myevent

-- expect: Ddl
CREATE PACKAGE employee_tools AS
  FUNCTION getSalary(eid INT) RETURN DECIMAL(10,2);
  PROCEDURE raiseSalary(eid INT, amount DECIMAL(10,2));
END
;;

-- anonymous compound statements (MariaDB): run now, so flags are kept
-- expect: Call
BEGIN NOT ATOMIC
  DECLARE x INT DEFAULT 0;
  WHILE x < 3 DO
    INSERT INTO t1 VALUES (x);
    SET x = x + 1;
  END WHILE;
END
;;
-- expect: Call NON_DETERMINISTIC
IF (SELECT COUNT(*) FROM t1) = 0 THEN
  INSERT INTO t1 VALUES (NOW());
END IF
;;
-- expect: Call USER_VARIABLE
BEGIN NOT ATOMIC
  SET @n = (SELECT COUNT(*) FROM t1);
  SELECT @n;
END
;;

-- servers, tablespaces, logfile groups, resource groups
-- expect: Ddl
CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'Remote', HOST '192.168.1.106', DATABASE 'test')

-- expect: Ddl
ALTER SERVER s OPTIONS (USER 'sally')

-- expect: Ddl
DROP SERVER IF EXISTS s

-- expect: Ddl
CREATE TABLESPACE ts1 ADD DATAFILE 'ts1.ibd' ENGINE=InnoDB

-- expect: Ddl
ALTER TABLESPACE ts1 RENAME TO ts2

-- expect: Ddl
DROP TABLESPACE ts2

-- expect: Ddl
CREATE LOGFILE GROUP lg1 ADD UNDOFILE 'undo.dat' INITIAL_SIZE = 10M ENGINE = NDB

-- expect: Ddl
CREATE RESOURCE GROUP batch TYPE = USER VCPU = 2-3 THREAD_PRIORITY = 10


-- accounts and roles: account management, with GRANT/REVOKE under Admin
-- expect: Admin
CREATE USER 'jeffrey'@'localhost' IDENTIFIED BY 'password'

-- expect: Admin
CREATE USER IF NOT EXISTS app@'%' IDENTIFIED VIA ed25519 USING PASSWORD('secret')

-- expect: Admin
CREATE OR REPLACE USER 'bob'@'10.%' IDENTIFIED BY PASSWORD '*54958E764CE10E50764C2EECBB71D01F08549980' REQUIRE SSL

-- expect: Admin
ALTER USER 'jeffrey'@'localhost' PASSWORD EXPIRE

-- expect: Admin
ALTER USER IF EXISTS app@'%' IDENTIFIED BY 'new' WITH MAX_USER_CONNECTIONS 10

-- expect: Admin
RENAME USER 'jeffrey'@'localhost' TO 'jeff'@'127.0.0.1'

-- expect: Admin
DROP USER 'jeff'@'127.0.0.1'

-- expect: Admin
DROP USER IF EXISTS bob

-- expect: Admin
CREATE ROLE journalist

-- expect: Admin
CREATE ROLE IF NOT EXISTS 'developer' WITH ADMIN CURRENT_USER

-- expect: Admin
DROP ROLE journalist

-- expect: Admin
GRANT SELECT, INSERT ON db1.* TO 'jeffrey'@'localhost'

-- expect: Admin
GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION

-- expect: Admin
GRANT journalist TO 'jeffrey'@'localhost'

-- expect: Admin
GRANT PROXY ON ''@'%' TO 'proxy_user'@'%'

-- expect: Admin
GRANT EXECUTE ON PROCEDURE db1.simpleproc TO app@'%'

-- expect: Admin
REVOKE INSERT ON *.* FROM 'jeffrey'@'localhost'

-- expect: Admin
REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'bob'@'%'

-- expect: Admin
REVOKE journalist FROM 'jeffrey'@'localhost'

-- expect: SessionSet
SET PASSWORD FOR 'bob'@'%.example.org' = PASSWORD('newpass')

-- expect: SessionSet
SET PASSWORD = PASSWORD('x')

-- expect: SessionSet
SET ROLE journalist

-- expect: SessionSet
SET ROLE NONE

-- expect: SessionSet
SET DEFAULT ROLE journalist FOR 'jeffrey'@'localhost'
