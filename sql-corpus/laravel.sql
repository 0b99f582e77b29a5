-- Laravel (Eloquent / query builder over PDO mysql): connection configuration,
-- CRUD, pagination, soft deletes, queue (database driver), cache and session tables,
-- migrations, transactions and savepoints, pessimistic locks.

-- connection configuration
-- expect: SessionSet
set names 'utf8mb4' collate 'utf8mb4_unicode_ci'

-- expect: SessionSet
set session sql_mode='ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'

-- expect: SessionSet
set session sql_mode='NO_ENGINE_SUBSTITUTION'

-- expect: SessionSet
set time_zone="+00:00"

-- expect: SessionSet
set names 'utf8mb4' collate 'utf8mb4_unicode_ci', time_zone = '+00:00', session sql_mode = 'NO_ENGINE_SUBSTITUTION'

-- expect: SessionSet
SET FOREIGN_KEY_CHECKS=0;

-- expect: SessionSet
SET FOREIGN_KEY_CHECKS=1;


-- Eloquent CRUD
-- expect: Read
select * from `users` where `email` = ? limit 1

-- expect: Read
select * from `users` where `users`.`id` = ? limit 1

-- expect: Read
select * from `users` where `users`.`deleted_at` is null

-- expect: Read
select * from `users` where `id` in (1, 2, 3) and `users`.`deleted_at` is null

-- expect: Read
select count(*) as aggregate from `posts`

-- expect: Read
select * from `posts` order by `created_at` desc limit 15 offset 0

-- expect: Read
select exists(select * from `users` where `email` = ?) as `exists`

-- expect: Read
select `posts`.*, `post_tag`.`tag_id` as `pivot_tag_id`, `post_tag`.`post_id` as `pivot_post_id` from `posts` inner join `post_tag` on `posts`.`id` = `post_tag`.`post_id` where `post_tag`.`tag_id` in (4, 9)

-- expect: Read
select `users`.*, (select count(*) from `posts` where `users`.`id` = `posts`.`user_id`) as `posts_count` from `users`

-- expect: Read
select * from `posts` where json_unquote(json_extract(`options`, '$."language"')) = ?

-- expect: Read
select * from `orders` where date(`created_at`) = ? and `status` in (?, ?)

-- expect: Read
select sum(`total`) as aggregate from `orders` where `user_id` = ?

-- expect: Write
insert into `users` (`name`, `email`, `password`, `updated_at`, `created_at`) values (?, ?, ?, ?, ?)

-- expect: Write
update `users` set `remember_token` = ?, `users`.`updated_at` = ? where `id` = ?

-- expect: Write
update `users` set `deleted_at` = ?, `users`.`updated_at` = ? where `id` = ?

-- expect: Write
delete from `password_reset_tokens` where `email` = ?

-- expect: Write
insert ignore into `post_tag` (`post_id`, `tag_id`) values (?, ?), (?, ?)

-- expect: Write
insert into `flights` (`departure`, `destination`, `price`) values (?, ?, ?), (?, ?, ?) on duplicate key update `price` = values(`price`)

-- expect: Write
update `posts` set `views` = `views` + 1, `posts`.`updated_at` = ? where `id` = ?


-- transactions, savepoints, locks
-- expect: TxnBegin
START TRANSACTION

-- expect: Savepoint
SAVEPOINT trans2

-- expect: Savepoint
ROLLBACK TO SAVEPOINT trans2

-- expect: TxnCommit
COMMIT

-- expect: TxnRollback
ROLLBACK

-- expect: LockingRead FOR_UPDATE
select * from `accounts` where `id` = ? limit 1 for update

-- expect: LockingRead FOR_SHARE
select * from `accounts` where `id` = ? limit 1 lock in share mode

-- expect: LockingRead FOR_UPDATE
select * from `jobs` where `queue` = ? and ((`reserved_at` is null and `available_at` <= ?) or (`reserved_at` <= ?)) order by `id` asc limit 1 for update skip locked

-- expect: Write
update `jobs` set `reserved_at` = ?, `attempts` = ? where `id` = ?

-- expect: Write
delete from `jobs` where `id` = ?

-- expect: Write
insert into `jobs` (`queue`, `attempts`, `reserved_at`, `available_at`, `created_at`, `payload`) values (?, ?, ?, ?, ?, ?)

-- expect: Write
insert into `failed_jobs` (`uuid`, `connection`, `queue`, `payload`, `exception`, `failed_at`) values (?, ?, ?, ?, ?, ?)

-- expect: Write
insert into `job_batches` (`id`, `name`, `total_jobs`, `pending_jobs`, `failed_jobs`, `failed_job_ids`, `options`, `created_at`, `cancelled_at`, `finished_at`) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- expect: LockingRead FOR_UPDATE
select * from `job_batches` where `id` = ? limit 1 for update


-- cache and session tables
-- expect: Read
select * from `cache` where `key` in (?)

-- expect: Write
insert into `cache` (`expiration`, `key`, `value`) values (?, ?, ?) on duplicate key update `expiration` = values(`expiration`), `key` = values(`key`), `value` = values(`value`)

-- expect: Write
insert into `cache_locks` (`key`, `owner`, `expiration`) values (?, ?, ?)

-- expect: Write
update `cache_locks` set `owner` = ?, `expiration` = ? where `key` = ? and (`owner` = ? or `expiration` <= ?)

-- expect: Write
delete from `cache_locks` where `expiration` <= ?

-- expect: Read
select * from `sessions` where `id` = ? limit 1

-- expect: Write
update `sessions` set `payload` = ?, `last_activity` = ?, `user_id` = ?, `ip_address` = ?, `user_agent` = ? where `id` = ?

-- expect: Write
delete from `sessions` where `last_activity` <= ?


-- migrations
-- expect: Ddl
create table `migrations` (`id` int unsigned not null auto_increment primary key, `migration` varchar(255) not null, `batch` int not null) default character set utf8mb4 collate 'utf8mb4_unicode_ci'

-- expect: Read
select `migration` from `migrations` order by `batch` asc, `migration` asc

-- expect: Read
select max(`batch`) as aggregate from `migrations`

-- expect: Write
insert into `migrations` (`migration`, `batch`) values (?, ?)

-- expect: Ddl
create table `users` (`id` bigint unsigned not null auto_increment primary key, `name` varchar(255) not null, `email` varchar(255) not null, `email_verified_at` timestamp null, `password` varchar(255) not null, `remember_token` varchar(100) null, `created_at` timestamp null, `updated_at` timestamp null) default character set utf8mb4 collate 'utf8mb4_unicode_ci'

-- expect: Ddl
alter table `users` add unique `users_email_unique`(`email`)

-- expect: Ddl
alter table `posts` add constraint `posts_user_id_foreign` foreign key (`user_id`) references `users` (`id`) on delete cascade

-- expect: Ddl
alter table `posts` add index `posts_created_at_index`(`created_at`)

-- expect: Ddl
alter table `posts` drop `legacy_flag`

-- expect: Ddl
drop table if exists `personal_access_tokens`

-- expect: Read
select * from information_schema.tables where table_schema = ? and table_name = ? and table_type = 'BASE TABLE'

-- expect: Read
select table_name as `name`, (data_length + index_length) as `size`, table_comment as `comment`, engine as `engine`, table_collation as `collation` from information_schema.tables where table_schema = 'app' and table_type in ('BASE TABLE', 'SYSTEM VERSIONED') order by table_name

-- expect: Read
select column_name as `name`, data_type as `type_name`, column_type as `type`, collation_name as `collation`, is_nullable as `nullable`, column_default as `default`, column_comment as `comment`, generation_expression as `expression`, extra as `extra` from information_schema.columns where table_schema = 'app' and table_name = 'users' order by ordinal_position asc

-- expect: Read
select table_name from information_schema.views where table_schema = 'app'

-- expect: Ddl
drop table `users`,`posts`,`migrations`

-- expect: Read GET_LOCK
select get_lock('laravel-schedule-3b1f', 0) as `lock`

-- expect: Read RELEASE_LOCK
select release_lock('laravel-schedule-3b1f') as `released`
