-- Java persistence: Hibernate 5 and 6 (MySQLDialect, MariaDBDialect), Spring Data JPA,
-- HikariCP, Quartz, Spring Batch, Flyway, Liquibase, jOOQ, MyBatis. Hibernate sends
-- most statements through server-side or client-side prepared statements: `?` placeholders.

-- Hibernate 6 style aliases
-- expect: Read
select u1_0.id,u1_0.email,u1_0.name from users u1_0 where u1_0.id=?

-- expect: Read
select o1_0.id,o1_0.created_at,o1_0.status,o1_0.user_id from orders o1_0 where o1_0.user_id=? order by o1_0.created_at desc limit ?,?

-- expect: Read
select o1_0.id,o1_0.status from orders o1_0 where o1_0.status in (?,?,?) limit ? offset ?

-- expect: Read
select count(o1_0.id) from orders o1_0 where o1_0.status=?

-- expect: Read
select u1_0.id,r1_0.user_id,r1_1.id,r1_1.name from users u1_0 left join (user_roles r1_0 join roles r1_1 on r1_1.id=r1_0.role_id) on u1_0.id=r1_0.user_id where u1_0.email=?

-- expect: Read
select p1_0.id,p1_0.name,p1_0.price from products p1_0 where p1_0.name like ? escape '\\' order by p1_0.price

-- expect: Write
insert into users (email,name,id) values (?,?,?)

-- expect: Write
insert into users (email,name) values (?,?)

-- expect: Write
update users set email=?,name=?,version=? where id=? and version=?

-- expect: Write
delete from users where id=?

-- expect: Write
delete from user_roles where user_id=?

-- expect: LockingRead FOR_UPDATE
select a1_0.id,a1_0.balance from accounts a1_0 where a1_0.id=? for update

-- expect: LockingRead FOR_SHARE
select a1_0.id,a1_0.balance from accounts a1_0 where a1_0.id=? for share

-- expect: LockingRead FOR_UPDATE
select a1_0.id,a1_0.balance from accounts a1_0 where a1_0.id=? for update nowait

-- expect: LockingRead FOR_UPDATE
select a1_0.id,a1_0.balance from accounts a1_0 where a1_0.id=? for update skip locked

-- expect: LockingRead FOR_SHARE
select a1_0.id,a1_0.balance from accounts a1_0 where a1_0.id=? lock in share mode

-- expect: LockingRead FOR_UPDATE
select a1_0.id from accounts a1_0 where a1_0.id=? for update wait 5


-- Hibernate 5 style aliases
-- expect: Read
select user0_.id as id1_0_0_, user0_.email as email2_0_0_, user0_.name as name3_0_0_ from users user0_ where user0_.id=?

-- expect: Read
select orders0_.user_id as user_id4_1_0_, orders0_.id as id1_1_0_, orders0_.id as id1_1_1_, orders0_.created_at as created_2_1_1_ from orders orders0_ where orders0_.user_id=?

-- expect: Read
select this_.id as id1_3_0_, this_.name as name2_3_0_ from products this_ where this_.price>? order by this_.name asc limit ?

-- expect: LockingRead FOR_UPDATE
select account0_.id as id1_0_0_, account0_.balance as balance2_0_0_ from accounts account0_ where account0_.id=? for update

-- expect: LockingRead FOR_SHARE
select account0_.id as id1_0_0_ from accounts account0_ where account0_.id=? lock in share mode


-- id generation: sequences (MariaDB) and table generators
-- expect: Write SEQUENCE
select next value for users_seq

-- expect: Write SEQUENCE
select nextval(users_seq)

-- expect: Write SEQUENCE
SELECT NEXTVAL(`orders_seq`)

-- expect: LockingRead FOR_UPDATE
select next_val as id_val from hibernate_sequence for update

-- expect: Write
update hibernate_sequence set next_val= ? where next_val=?

-- expect: LockingRead FOR_UPDATE
select tbl.next_val from hibernate_sequences tbl where tbl.sequence_name=? for update

-- expect: Write
insert into hibernate_sequences (sequence_name, next_val)  values (?,?)

-- expect: Write
update hibernate_sequences set next_val=?  where next_val=? and sequence_name=?


-- schema generation (hbm2ddl)
-- expect: Ddl
create table users (id bigint not null auto_increment, email varchar(255), name varchar(255), version integer not null, primary key (id)) engine=InnoDB

-- expect: Ddl
create table orders (id bigint not null, created_at datetime(6), status enum ('NEW','PAID','SHIPPED'), user_id bigint, primary key (id)) engine=InnoDB

-- expect: Ddl
create sequence users_seq start with 1 increment by 50

-- expect: Ddl
create sequence orders_seq start with 1 increment by 50 nocache nocycle engine=InnoDB

-- expect: Ddl
alter table orders add constraint FK32ql8ubntj5uh44ph9659tiih foreign key (user_id) references users (id)

-- expect: Ddl
alter table users add constraint UK6dotkott2kjsp8vw4d0m25fb7 unique (email)

-- expect: Ddl
drop table if exists orders

-- expect: Ddl
drop sequence if exists users_seq

-- expect: Ddl
alter table orders drop foreign key FK32ql8ubntj5uh44ph9659tiih

-- expect: Ddl
create table hibernate_sequence (next_val bigint) engine=InnoDB

-- expect: Write
insert into hibernate_sequence values ( 1 )


-- HikariCP / Spring
-- expect: Read
SELECT 1

-- expect: Read
select 1 from dual

-- expect: Read
/* ping */ SELECT 1

-- expect: Read
select @@session.transaction_read_only

-- expect: SessionSet
SET SESSION TRANSACTION READ ONLY

-- expect: SessionSet
SET SESSION TRANSACTION READ WRITE

-- expect: SessionSet
set session transaction isolation level read committed

-- expect: Read
select @@session.transaction_isolation


-- Quartz scheduler
-- expect: LockingRead FOR_UPDATE
SELECT * FROM QRTZ_LOCKS WHERE SCHED_NAME = 'quartzScheduler' AND LOCK_NAME = ? FOR UPDATE

-- expect: Write
INSERT INTO QRTZ_LOCKS(SCHED_NAME, LOCK_NAME) VALUES ('quartzScheduler', ?)

-- expect: Read
SELECT TRIGGER_NAME, TRIGGER_GROUP, NEXT_FIRE_TIME, PRIORITY FROM QRTZ_TRIGGERS WHERE SCHED_NAME = 'quartzScheduler' AND TRIGGER_STATE = ? AND NEXT_FIRE_TIME <= ? AND (MISFIRE_INSTR = -1 OR (MISFIRE_INSTR != -1 AND NEXT_FIRE_TIME >= ?)) ORDER BY NEXT_FIRE_TIME ASC, PRIORITY DESC

-- expect: Write
UPDATE QRTZ_TRIGGERS SET TRIGGER_STATE = ? WHERE SCHED_NAME = 'quartzScheduler' AND TRIGGER_NAME = ? AND TRIGGER_GROUP = ? AND TRIGGER_STATE = ?

-- expect: Write
UPDATE QRTZ_SCHEDULER_STATE SET LAST_CHECKIN_TIME = ? WHERE SCHED_NAME = 'quartzScheduler' AND INSTANCE_NAME = ?

-- expect: Write
DELETE FROM QRTZ_FIRED_TRIGGERS WHERE SCHED_NAME = 'quartzScheduler' AND ENTRY_ID = ?


-- Spring Batch
-- expect: Read
SELECT JOB_INSTANCE_ID, JOB_NAME from BATCH_JOB_INSTANCE where JOB_NAME = ? and JOB_KEY = ?

-- expect: Write
INSERT into BATCH_JOB_INSTANCE(JOB_INSTANCE_ID, JOB_NAME, JOB_KEY, VERSION) values (?, ?, ?, ?)

-- expect: Write LAST_INSERT_ID
UPDATE BATCH_JOB_SEQ SET ID = LAST_INSERT_ID(ID + 1)

-- expect: Write LAST_INSERT_ID
UPDATE BATCH_STEP_EXECUTION_SEQ SET ID = LAST_INSERT_ID(ID + 1)

-- expect: Read LAST_INSERT_ID
SELECT LAST_INSERT_ID()

-- expect: Write
UPDATE BATCH_JOB_EXECUTION set START_TIME = ?, END_TIME = ?,  STATUS = ?, EXIT_CODE = ?, EXIT_MESSAGE = ?, VERSION = VERSION + 1, CREATE_TIME = ?, LAST_UPDATED = ? where JOB_EXECUTION_ID = ? and VERSION = ?


-- Flyway
-- expect: Read GET_LOCK
SELECT GET_LOCK('flyway-1930226425',10)

-- expect: Read RELEASE_LOCK
SELECT RELEASE_LOCK('flyway-1930226425')

-- expect: Read
SELECT DATABASE()

-- expect: Show
SHOW VARIABLES LIKE 'foreign_key_checks'

-- expect: Read
SELECT @@foreign_key_checks

-- expect: Read
SELECT COUNT(1) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'appdb' AND TABLE_NAME = 'flyway_schema_history'

-- expect: Ddl NON_DETERMINISTIC
CREATE TABLE `appdb`.`flyway_schema_history` (
    `installed_rank` INT NOT NULL,
    `version` VARCHAR(50),
    `description` VARCHAR(200) NOT NULL,
    `type` VARCHAR(20) NOT NULL,
    `script` VARCHAR(1000) NOT NULL,
    `checksum` INT,
    `installed_by` VARCHAR(100) NOT NULL,
    `installed_on` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    `execution_time` INT NOT NULL,
    `success` BOOL NOT NULL,
    CONSTRAINT `flyway_schema_history_pk` PRIMARY KEY (`installed_rank`)
) ENGINE=InnoDB
-- expect: Write
INSERT INTO `appdb`.`flyway_schema_history` (`installed_rank`, `version`, `description`, `type`, `script`, `checksum`, `installed_by`, `execution_time`, `success`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)

-- expect: Read
SELECT `installed_rank`,`version`,`description`,`type`,`script`,`checksum`,`installed_on`,`installed_by`,`execution_time`,`success` FROM `appdb`.`flyway_schema_history` WHERE `installed_rank` > ? ORDER BY `installed_rank`

-- expect: Read
SELECT SUBSTRING_INDEX(USER(),'@',1)


-- Liquibase
-- expect: Read
SELECT COUNT(*) FROM appdb.DATABASECHANGELOGLOCK

-- expect: Write NON_DETERMINISTIC
UPDATE appdb.DATABASECHANGELOGLOCK SET `LOCKED` = 1, LOCKEDBY = 'build-7 (10.1.2.3)', LOCKGRANTED = NOW() WHERE ID = 1 AND `LOCKED` = 0

-- expect: Write
UPDATE appdb.DATABASECHANGELOGLOCK SET `LOCKED` = 0, LOCKEDBY = NULL, LOCKGRANTED = NULL WHERE ID = 1

-- expect: Read
SELECT MD5SUM FROM appdb.DATABASECHANGELOG WHERE MD5SUM IS NOT NULL LIMIT 1

-- expect: Write NON_DETERMINISTIC
INSERT INTO appdb.DATABASECHANGELOG (ID, AUTHOR, FILENAME, DATEEXECUTED, ORDEREXECUTED, MD5SUM, `DESCRIPTION`, COMMENTS, EXECTYPE, CONTEXTS, LABELS, LIQUIBASE, DEPLOYMENT_ID) VALUES ('1', 'dev', 'db/changelog.xml', NOW(), 1, '9:1b3c', 'createTable tableName=person', '', 'EXECUTED', NULL, NULL, '4.25.0', '4512345678')

-- expect: Ddl NON_DETERMINISTIC
CREATE TABLE appdb.DATABASECHANGELOGLOCK (ID INT NOT NULL, `LOCKED` BIT(1) NOT NULL, LOCKGRANTED datetime NULL, LOCKEDBY VARCHAR(255) NULL, CONSTRAINT PK_DATABASECHANGELOGLOCK PRIMARY KEY (ID), created datetime default CURRENT_TIMESTAMP)


-- jOOQ and MyBatis
-- expect: Read
select `appdb`.`book`.`id`, `appdb`.`book`.`title` from `appdb`.`book` where `appdb`.`book`.`author_id` = ? order by `appdb`.`book`.`id` limit ?

-- expect: Write
insert into `appdb`.`book` (`title`, `author_id`) values (?, ?)

-- expect: Write
insert into `appdb`.`book` (`id`, `title`) values (?, ?) on duplicate key update `appdb`.`book`.`title` = ?

-- expect: Read
SELECT id, name, email FROM user WHERE id = ?

-- expect: Read
SELECT id, name FROM user WHERE name LIKE CONCAT('%', ?, '%') LIMIT ?, ?

-- expect: Write
UPDATE user SET name = ?, email = ? WHERE id = ?

-- expect: Write
INSERT INTO user (name, email) VALUES (?, ?), (?, ?), (?, ?)
