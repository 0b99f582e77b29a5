-- Django (django.db.backends.mysql, mysqlclient / mysql-connector): connection setup,
-- ORM queries, transactions and savepoints (atomic()), select_for_update(),
-- migrations (schema editor, introspection), sessions, auth, admin, tests.

-- connection setup and feature detection
-- expect: SessionSet
SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED

-- expect: SessionSet
SET sql_mode='STRICT_TRANS_TABLES'

-- expect: SessionSet
SET SQL_AUTO_IS_NULL = 0

-- expect: SessionSet
SET autocommit=1

-- expect: SessionSet
set autocommit=0

-- expect: Read
SELECT VERSION(), @@sql_mode, @@default_storage_engine, @@sql_auto_is_null, @@lower_case_table_names, CONVERT_TZ('2001-01-01 01:00:00', 'UTC', 'UTC') IS NOT NULL

-- expect: Read
SELECT @@SQL_AUTO_IS_NULL

-- expect: Read
SELECT VERSION()

-- expect: Read
SELECT engine FROM information_schema.tables WHERE table_name = 'django_migrations' AND table_schema = DATABASE()

-- expect: Show
SHOW FULL TABLES

-- expect: Read
SELECT @@character_set_database, @@collation_database


-- sessions, auth, contenttypes
-- expect: Read
SELECT `django_session`.`session_key`, `django_session`.`session_data`, `django_session`.`expire_date` FROM `django_session` WHERE (`django_session`.`expire_date` > '2024-05-01 10:12:07.331212' AND `django_session`.`session_key` = 'k3x9v0n1q2w3e4r5t6y7u8i9o0p1a2s3') LIMIT 21

-- expect: Read
SELECT `auth_user`.`id`, `auth_user`.`password`, `auth_user`.`last_login`, `auth_user`.`is_superuser`, `auth_user`.`username`, `auth_user`.`first_name`, `auth_user`.`last_name`, `auth_user`.`email`, `auth_user`.`is_staff`, `auth_user`.`is_active`, `auth_user`.`date_joined` FROM `auth_user` WHERE `auth_user`.`id` = 1 LIMIT 21

-- expect: Read
SELECT `auth_user`.`id`, `auth_user`.`username` FROM `auth_user` WHERE `auth_user`.`username` = 'admin' LIMIT 21

-- expect: Write
UPDATE `auth_user` SET `last_login` = '2024-05-01 10:12:07.402119' WHERE `auth_user`.`id` = 1

-- expect: Write
INSERT INTO `django_session` (`session_key`, `session_data`, `expire_date`) VALUES ('k3x9v0n1q2w3e4r5t6y7u8i9o0p1a2s3', '.eJxVjEEOwiAQRe_C2hAoUKhL9z0DGYZBqgaS0q6Md7dNutDte-__N_OwrdlvjRY_R3ZlPbv8sgD4pHKI-IByrxxrWZc58CPhp218rJFet7P9O8jQ8r7ubErSJgJyCrW2pEIaepNCMDJKFyYpE2kUyk4JrbBKIlBEPTgcjBsU-3wB8SE4LA:1s2GJn:Xa0', '2024-05-15 10:12:07.402119')

-- expect: Write
DELETE FROM `django_session` WHERE `django_session`.`expire_date` < '2024-05-01 00:00:00'

-- expect: Read
SELECT `django_content_type`.`id`, `django_content_type`.`app_label`, `django_content_type`.`model` FROM `django_content_type` WHERE (`django_content_type`.`app_label` = 'shop' AND `django_content_type`.`model` = 'order') LIMIT 21

-- expect: Write
INSERT INTO `django_content_type` (`app_label`, `model`) VALUES ('shop', 'order')

-- expect: Read
SELECT `auth_permission`.`content_type_id`, `auth_permission`.`codename` FROM `auth_permission` INNER JOIN `django_content_type` ON (`auth_permission`.`content_type_id` = `django_content_type`.`id`) WHERE `auth_permission`.`content_type_id` IN (1, 2, 3, 4, 5, 6, 7) ORDER BY `django_content_type`.`app_label` ASC, `django_content_type`.`model` ASC, `auth_permission`.`codename` ASC

-- expect: Write
INSERT INTO `auth_permission` (`name`, `content_type_id`, `codename`) VALUES ('Can add order', 7, 'add_order'), ('Can change order', 7, 'change_order'), ('Can delete order', 7, 'delete_order'), ('Can view order', 7, 'view_order')

-- expect: Read
SELECT (1) AS `a` FROM `auth_user` WHERE `auth_user`.`username` = 'alice' LIMIT 1

-- expect: Read
SELECT COUNT(*) AS `__count` FROM `shop_order` WHERE `shop_order`.`customer_id` = 42

-- expect: Read
SELECT DISTINCT `auth_group`.`name` FROM `auth_group` INNER JOIN `auth_user_groups` ON (`auth_group`.`id` = `auth_user_groups`.`group_id`) WHERE `auth_user_groups`.`user_id` = 3

-- expect: Write
INSERT INTO `django_admin_log` (`action_time`, `user_id`, `content_type_id`, `object_id`, `object_repr`, `action_flag`, `change_message`) VALUES ('2024-05-01 10:15:44.120331', 1, 7, '18', 'Order #18', 2, '[{"changed": {"fields": ["Status"]}}]')


-- ORM queries: filters, joins, aggregates, slicing, bulk operations
-- expect: Read
SELECT `shop_order`.`id`, `shop_order`.`customer_id`, `shop_order`.`status`, `shop_order`.`total`, `shop_order`.`created` FROM `shop_order` WHERE (`shop_order`.`status` = 'paid' AND `shop_order`.`created` >= '2024-04-01 00:00:00') ORDER BY `shop_order`.`created` DESC LIMIT 20 OFFSET 40

-- expect: Read
SELECT `shop_order`.`id`, `shop_customer`.`id`, `shop_customer`.`name` FROM `shop_order` INNER JOIN `shop_customer` ON (`shop_order`.`customer_id` = `shop_customer`.`id`) WHERE `shop_customer`.`name` LIKE '%smith%' ORDER BY `shop_order`.`id` ASC

-- expect: Read
SELECT `shop_customer`.`id`, COUNT(`shop_order`.`id`) AS `n_orders` FROM `shop_customer` LEFT OUTER JOIN `shop_order` ON (`shop_customer`.`id` = `shop_order`.`customer_id`) GROUP BY `shop_customer`.`id` HAVING COUNT(`shop_order`.`id`) > 5 ORDER BY NULL

-- expect: Read
SELECT SUM(`shop_order`.`total`) AS `total__sum`, AVG(`shop_order`.`total`) AS `total__avg` FROM `shop_order`

-- expect: Read
SELECT `shop_product`.`id`, `shop_product`.`name` FROM `shop_product` WHERE `shop_product`.`id` IN (SELECT U0.`product_id` FROM `shop_orderline` U0 WHERE U0.`order_id` = 18)

-- expect: Read NON_DETERMINISTIC
SELECT `shop_product`.`id` FROM `shop_product` WHERE NOT (`shop_product`.`discontinued` AND `shop_product`.`discontinued` IS NOT NULL) ORDER BY RAND() LIMIT 5

-- expect: Read
SELECT `shop_product`.`id`, `shop_product`.`name` FROM `shop_product` WHERE `shop_product`.`name` REGEXP BINARY '^[A-Z]'

-- expect: Read
SELECT `shop_order`.`id` FROM `shop_order` WHERE JSON_EXTRACT(`shop_order`.`meta`, '$."gift"') = JSON_EXTRACT('true', '$')

-- expect: Read
SELECT DATE(CONVERT_TZ(`shop_order`.`created`, 'UTC', 'Europe/Paris')) AS `day`, COUNT(`shop_order`.`id`) AS `c` FROM `shop_order` GROUP BY 1 ORDER BY NULL

-- expect: Read
SELECT `shop_order`.`id`, ROW_NUMBER() OVER (PARTITION BY `shop_order`.`customer_id` ORDER BY `shop_order`.`created` DESC) AS `rn` FROM `shop_order`

-- expect: Read
SELECT EXISTS(SELECT 1 FROM `shop_order` U0 WHERE U0.`customer_id` = (`shop_customer`.`id`) LIMIT 1) AS `has_orders` FROM `shop_customer`

-- expect: Write
INSERT INTO `shop_order` (`customer_id`, `status`, `total`, `created`) VALUES (42, 'new', '19.90', '2024-05-01 10:20:00.000000') RETURNING `shop_order`.`id`

-- expect: Write
INSERT INTO `shop_order` (`customer_id`, `status`, `total`, `created`) VALUES (42, 'new', '19.90', '2024-05-01 10:20:00.000000')

-- expect: Write
INSERT INTO `shop_orderline` (`order_id`, `product_id`, `qty`) VALUES (18, 3, 1), (18, 7, 2), (18, 9, 1)

-- expect: Write
INSERT IGNORE INTO `shop_tag` (`name`) VALUES ('red'), ('blue')

-- expect: Write
INSERT INTO `shop_stock` (`product_id`, `qty`) VALUES (3, 10), (7, 4) ON DUPLICATE KEY UPDATE `qty` = VALUES(`qty`)

-- expect: Write
INSERT INTO `shop_stock` (`product_id`, `qty`) VALUES (3, 10) AS `new` ON DUPLICATE KEY UPDATE `qty` = `new`.`qty`

-- expect: Write
UPDATE `shop_order` SET `status` = 'shipped' WHERE `shop_order`.`id` IN (18, 19, 20)

-- expect: Write
UPDATE `shop_product` SET `stock` = (`shop_product`.`stock` - 1) WHERE `shop_product`.`id` = 3

-- expect: Write
UPDATE `shop_product` SET `price` = CASE WHEN (`shop_product`.`id` = 3) THEN '9.90' WHEN (`shop_product`.`id` = 7) THEN '4.50' ELSE NULL END WHERE `shop_product`.`id` IN (3, 7)

-- expect: Write
DELETE FROM `shop_orderline` WHERE `shop_orderline`.`order_id` IN (18)

-- expect: Write
DELETE FROM `shop_order` WHERE `shop_order`.`id` IN (18)


-- transactions: atomic(), savepoints, select_for_update()
-- expect: SessionSet
SET autocommit=0

-- expect: Savepoint
SAVEPOINT `s139887263700800_x1`

-- expect: Savepoint
RELEASE SAVEPOINT `s139887263700800_x1`

-- expect: Savepoint
ROLLBACK TO SAVEPOINT `s139887263700800_x2`

-- expect: TxnCommit
COMMIT

-- expect: TxnRollback
ROLLBACK

-- expect: LockingRead FOR_UPDATE
SELECT `shop_product`.`id`, `shop_product`.`stock` FROM `shop_product` WHERE `shop_product`.`id` = 3 FOR UPDATE

-- expect: LockingRead FOR_UPDATE
SELECT `shop_product`.`id`, `shop_product`.`stock` FROM `shop_product` WHERE `shop_product`.`id` = 3 FOR UPDATE NOWAIT

-- expect: LockingRead FOR_UPDATE
SELECT `jobs_job`.`id`, `jobs_job`.`payload` FROM `jobs_job` WHERE `jobs_job`.`state` = 'queued' ORDER BY `jobs_job`.`id` ASC LIMIT 10 FOR UPDATE SKIP LOCKED

-- expect: LockingRead FOR_UPDATE
SELECT `shop_order`.`id` FROM `shop_order` INNER JOIN `shop_customer` ON (`shop_order`.`customer_id` = `shop_customer`.`id`) WHERE `shop_customer`.`id` = 42 FOR UPDATE OF `shop_order`

-- expect: LockingRead FOR_SHARE
SELECT `shop_order`.`id` FROM `shop_order` WHERE `shop_order`.`id` = 18 LOCK IN SHARE MODE

-- expect: LockingRead FOR_SHARE
SELECT `shop_order`.`id` FROM `shop_order` WHERE `shop_order`.`id` = 18 FOR SHARE


-- migrations: schema editor and introspection
-- expect: Ddl
CREATE TABLE `django_migrations` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `app` varchar(255) NOT NULL, `name` varchar(255) NOT NULL, `applied` datetime(6) NOT NULL)

-- expect: Write
INSERT INTO `django_migrations` (`app`, `name`, `applied`) VALUES ('contenttypes', '0001_initial', '2024-05-01 10:00:01.993314')

-- expect: Read
SELECT `django_migrations`.`id`, `django_migrations`.`app`, `django_migrations`.`name`, `django_migrations`.`applied` FROM `django_migrations`

-- expect: Ddl
CREATE TABLE `shop_order` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `status` varchar(16) NOT NULL, `total` numeric(10, 2) NOT NULL, `created` datetime(6) NOT NULL, `meta` json NOT NULL CHECK (JSON_VALID(`meta`)), `customer_id` bigint NOT NULL)

-- expect: Ddl
ALTER TABLE `shop_order` ADD CONSTRAINT `shop_order_customer_id_6f3e2b1a_fk_shop_customer_id` FOREIGN KEY (`customer_id`) REFERENCES `shop_customer` (`id`)

-- expect: Ddl
CREATE INDEX `shop_order_status_4c1b2e_idx` ON `shop_order` (`status`, `created`)

-- expect: Ddl
ALTER TABLE `shop_order` ADD COLUMN `note` longtext NULL

-- expect: Ddl
ALTER TABLE `shop_order` MODIFY `status` varchar(32) NOT NULL

-- expect: Ddl
ALTER TABLE `shop_order` RENAME COLUMN `note` TO `comment`

-- expect: Ddl
ALTER TABLE `shop_order` DROP COLUMN `comment`

-- expect: Ddl
ALTER TABLE `shop_order` DROP FOREIGN KEY `shop_order_customer_id_6f3e2b1a_fk_shop_customer_id`

-- expect: Ddl
DROP INDEX `shop_order_status_4c1b2e_idx` ON `shop_order`

-- expect: Ddl
ALTER TABLE `shop_order` ADD CONSTRAINT `total_gte_0` CHECK (`total` >= 0)

-- expect: Ddl
ALTER TABLE `shop_order` RENAME TO `shop_purchase`

-- expect: Ddl
RENAME TABLE `shop_purchase` TO `shop_order`

-- expect: Ddl
DROP TABLE `shop_tag` CASCADE

-- expect: Read
SELECT kc.`constraint_name`, kc.`column_name`, kc.`referenced_table_name`, kc.`referenced_column_name`, c.`constraint_type` FROM information_schema.key_column_usage AS kc, information_schema.table_constraints AS c WHERE kc.table_schema = DATABASE() AND c.table_schema = kc.table_schema AND c.constraint_name = kc.constraint_name AND c.constraint_type != 'CHECK' AND kc.table_name = 'shop_order' ORDER BY kc.`ordinal_position`

-- expect: Show
SHOW INDEX FROM `shop_order`

-- expect: Read
SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, extra, column_default, CASE WHEN collation_name = ( SELECT default_collation_name FROM information_schema.schemata WHERE schema_name = DATABASE() ) THEN NULL ELSE collation_name END AS collation_name, CASE WHEN column_type LIKE '%% unsigned' THEN 1 ELSE 0 END AS is_unsigned FROM information_schema.columns WHERE table_name = 'shop_order' AND table_schema = DATABASE()

-- expect: Read
SELECT table_comment FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'shop_order'


-- test runner
-- expect: Ddl
CREATE DATABASE `test_shop` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci

-- expect: Ddl
DROP DATABASE IF EXISTS `test_shop`

-- expect: SessionSet
SET FOREIGN_KEY_CHECKS = 0

-- expect: SessionSet
SET FOREIGN_KEY_CHECKS = 1

-- expect: Ddl
TRUNCATE `shop_order`

-- expect: Write
DELETE FROM `shop_order`

-- expect: Ddl
ALTER TABLE `shop_order` AUTO_INCREMENT = 1
