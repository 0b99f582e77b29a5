-- Ruby on Rails / ActiveRecord (mysql2 and trilogy adapters): connection configuration,
-- finders, associations, callbacks' transactions, locking, migrations with advisory
-- locks, schema introspection, query-log-tag comments.

-- connection configuration
-- expect: SessionSet
SET @@SESSION.sql_mode = CONCAT(CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), ',NO_AUTO_VALUE_ON_ZERO'), @@SESSION.sql_auto_is_null = 0, @@SESSION.wait_timeout = 2147483

-- expect: SessionSet
SET NAMES utf8mb4 COLLATE utf8mb4_0900_ai_ci,  @@SESSION.sql_mode = CONCAT(REPLACE(REPLACE(REPLACE(@@sql_mode, 'STRICT_TRANS_TABLES', ''), 'STRICT_ALL_TABLES', ''), 'TRADITIONAL', ''), ',NO_AUTO_VALUE_ON_ZERO'),  @@SESSION.sql_auto_is_null = 0, @@SESSION.wait_timeout = 2147483

-- expect: SessionSet
SET @@SESSION.sql_auto_is_null = 0, @@SESSION.wait_timeout = 2147483

-- expect: Read
SELECT @@SESSION.sql_mode

-- expect: Read
SELECT VERSION()

-- expect: Read
SELECT @@FOREIGN_KEY_CHECKS

-- expect: SessionSet
SET FOREIGN_KEY_CHECKS = 0

-- expect: Read
SELECT database()


-- finders and associations
-- expect: Read
SELECT `users`.* FROM `users` WHERE `users`.`id` = 1 LIMIT 1

-- expect: Read
SELECT `users`.* FROM `users` WHERE `users`.`email` = 'dhh@example.com' LIMIT 1

-- expect: Read
SELECT 1 AS one FROM `users` WHERE `users`.`email` = BINARY 'dhh@example.com' LIMIT 1

-- expect: Read
SELECT `posts`.* FROM `posts` WHERE `posts`.`user_id` = 1 ORDER BY `posts`.`created_at` DESC LIMIT 11

-- expect: Read
SELECT `comments`.* FROM `comments` WHERE `comments`.`post_id` IN (1, 2, 3, 5, 8, 13)

-- expect: Read
SELECT COUNT(*) FROM `posts` WHERE `posts`.`published` = TRUE

-- expect: Read
SELECT `posts`.`id` FROM `posts` WHERE `posts`.`id` > 1000 ORDER BY `posts`.`id` ASC LIMIT 1000

-- expect: Read
SELECT `tags`.* FROM `tags` INNER JOIN `taggings` ON `tags`.`id` = `taggings`.`tag_id` WHERE `taggings`.`taggable_id` = 7 AND `taggings`.`taggable_type` = 'Post'

-- expect: Read
SELECT `posts`.* FROM `posts` WHERE `posts`.`id` = 1 LIMIT 1 /*application:Blog,controller:posts,action:show*/

-- expect: Read
SELECT `posts`.* FROM `posts` WHERE `posts`.`id` = 1 LIMIT 1 /*action='show',application='Blog',controller='posts'*/

-- expect: Read
/*application='Blog',controller='posts',action='index'*/ SELECT `posts`.* FROM `posts` LIMIT 25 OFFSET 50

-- expect: Read
SELECT DISTINCT `users`.`id` FROM `users` LEFT OUTER JOIN `posts` ON `posts`.`user_id` = `users`.`id` WHERE `posts`.`id` IS NULL

-- expect: Read
SELECT MAX(`posts`.`updated_at`) FROM `posts`

-- expect: Read
SELECT `posts`.`title` FROM `posts` WHERE (title LIKE '%rails%')

-- expect: Read
SELECT `users`.`id`, `users`.`name` FROM `users` WHERE `users`.`id` NOT IN (SELECT `bans`.`user_id` FROM `bans`)

-- expect: Read
SELECT `posts`.* FROM `posts` WHERE `posts`.`deleted_at` IS NULL AND `posts`.`id` = 17 LIMIT 1


-- transactions around save / destroy
-- expect: TxnBegin
BEGIN

-- expect: Write
INSERT INTO `users` (`name`, `email`, `created_at`, `updated_at`) VALUES ('David', 'dhh@example.com', '2024-05-01 10:31:12.551093', '2024-05-01 10:31:12.551093')

-- expect: Write
UPDATE `users` SET `users`.`name` = 'DHH', `users`.`updated_at` = '2024-05-01 10:32:00.110210' WHERE `users`.`id` = 1

-- expect: Write
UPDATE `posts` SET `posts`.`comments_count` = COALESCE(`posts`.`comments_count`, 0) + 1 WHERE `posts`.`id` = 1

-- expect: Write
DELETE FROM `comments` WHERE `comments`.`id` = 99

-- expect: Write
UPDATE `users` SET `users`.`updated_at` = '2024-05-01 10:33:00' WHERE `users`.`id` IN (1, 2, 3)

-- expect: TxnCommit
COMMIT

-- expect: TxnRollback
ROLLBACK

-- expect: Savepoint
SAVEPOINT active_record_1

-- expect: Savepoint
RELEASE SAVEPOINT active_record_1

-- expect: Savepoint
ROLLBACK TO SAVEPOINT active_record_1

-- expect: SessionSet
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE

-- expect: SessionSet
SET TRANSACTION ISOLATION LEVEL READ COMMITTED

-- expect: LockingRead FOR_UPDATE
SELECT `accounts`.* FROM `accounts` WHERE `accounts`.`id` = 1 LIMIT 1 FOR UPDATE

-- expect: LockingRead FOR_SHARE
SELECT `accounts`.* FROM `accounts` WHERE `accounts`.`id` = 1 LIMIT 1 LOCK IN SHARE MODE

-- expect: LockingRead FOR_UPDATE
SELECT `accounts`.* FROM `accounts` WHERE `accounts`.`id` = 1 LIMIT 1 FOR UPDATE NOWAIT

-- expect: Write
INSERT INTO `events` (`name`,`payload`,`created_at`,`updated_at`) VALUES ('signup', '{}', '2024-05-01 10:00:00', '2024-05-01 10:00:00'), ('login', '{}', '2024-05-01 10:00:01', '2024-05-01 10:00:01') ON DUPLICATE KEY UPDATE `name`=`name`

-- expect: Write
INSERT INTO `counters` (`key`,`value`) VALUES ('hits', 1) ON DUPLICATE KEY UPDATE `value`=VALUES(`value`)

-- expect: Write
INSERT INTO `solid_queue_jobs` (`queue_name`, `class_name`, `arguments`, `priority`, `active_job_id`, `scheduled_at`, `created_at`, `updated_at`) VALUES ('default', 'MailJob', '{}', 0, 'c8a1', '2024-05-01 10:00:00', '2024-05-01 10:00:00', '2024-05-01 10:00:00')

-- expect: LockingRead FOR_UPDATE
SELECT `solid_queue_ready_executions`.* FROM `solid_queue_ready_executions` WHERE `solid_queue_ready_executions`.`queue_name` = 'default' ORDER BY `solid_queue_ready_executions`.`priority` ASC, `solid_queue_ready_executions`.`job_id` ASC LIMIT 5 FOR UPDATE SKIP LOCKED


-- migrations: advisory lock, schema_migrations, DDL
-- expect: Read GET_LOCK
SELECT GET_LOCK('3339178713183617565', 0)

-- expect: Read RELEASE_LOCK
SELECT RELEASE_LOCK('3339178713183617565')

-- expect: Ddl
CREATE TABLE `schema_migrations` (`version` varchar(255) NOT NULL PRIMARY KEY)

-- expect: Ddl
CREATE TABLE `ar_internal_metadata` (`key` varchar(255) NOT NULL PRIMARY KEY, `value` varchar(255), `created_at` datetime(6) NOT NULL, `updated_at` datetime(6) NOT NULL)

-- expect: Read
SELECT `schema_migrations`.`version` FROM `schema_migrations` ORDER BY `schema_migrations`.`version` ASC

-- expect: Read
SELECT * FROM `ar_internal_metadata` WHERE `ar_internal_metadata`.`key` = 'environment' ORDER BY `ar_internal_metadata`.`key` ASC LIMIT 1

-- expect: Write
INSERT INTO `schema_migrations` (`version`) VALUES ('20240501103000')

-- expect: Write
DELETE FROM `schema_migrations` WHERE `schema_migrations`.`version` = '20240501103000'

-- expect: Ddl
CREATE TABLE `posts` (`id` bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, `title` varchar(255), `body` text, `user_id` bigint NOT NULL, `created_at` datetime(6) NOT NULL, `updated_at` datetime(6) NOT NULL, INDEX `index_posts_on_user_id` (`user_id`), CONSTRAINT `fk_rails_5b5ddfd518` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`))

-- expect: Ddl
ALTER TABLE `posts` ADD `published` tinyint(1) DEFAULT FALSE NOT NULL

-- expect: Ddl
ALTER TABLE `posts` ADD INDEX `index_posts_on_published` (`published`)

-- expect: Ddl
CREATE UNIQUE INDEX `index_users_on_email` ON `users` (`email`)

-- expect: Ddl
ALTER TABLE `posts` CHANGE `body` `body` mediumtext DEFAULT NULL

-- expect: Ddl
ALTER TABLE `posts` DROP INDEX `index_posts_on_published`

-- expect: Ddl
DROP TABLE `legacy_posts`

-- expect: Ddl
ALTER TABLE `comments` ADD CONSTRAINT `fk_rails_2fd19c0db7` FOREIGN KEY (`post_id`) REFERENCES `posts` (`id`) ON DELETE CASCADE

-- expect: Ddl NON_DETERMINISTIC
ALTER TABLE `users` ADD `last_seen_at` datetime(6) DEFAULT CURRENT_TIMESTAMP(6)

-- expect: Show
SHOW FULL FIELDS FROM `users`

-- expect: Show
SHOW TABLES LIKE 'users'

-- expect: Show
SHOW CREATE TABLE `users`

-- expect: Show
SHOW KEYS FROM `users`

-- expect: Read
SELECT table_name FROM information_schema.tables WHERE table_schema = database() AND table_name = 'users' AND table_type = 'BASE TABLE'

-- expect: Read
SELECT fk.referenced_table_name AS 'to_table', fk.referenced_column_name AS 'primary_key', fk.column_name AS 'column', fk.constraint_name AS 'name', rc.update_rule AS 'on_update', rc.delete_rule AS 'on_delete' FROM information_schema.referential_constraints rc JOIN information_schema.key_column_usage fk USING (constraint_schema, constraint_name) WHERE fk.referenced_column_name IS NOT NULL AND fk.table_schema = database() AND fk.table_name = 'posts' AND rc.constraint_schema = database() AND rc.table_name = 'posts'

-- expect: Ddl
CREATE DATABASE IF NOT EXISTS `blog_test` DEFAULT CHARACTER SET `utf8mb4` COLLATE `utf8mb4_unicode_ci`

-- expect: Ddl
DROP DATABASE IF EXISTS `blog_test`

-- expect: Ddl
TRUNCATE TABLE `posts`
