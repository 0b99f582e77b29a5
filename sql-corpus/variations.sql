-- Variations generated from a few real statements (one of each kind the router acts on)
-- in the styles that reach a proxy: ORM marginalia comments, comment lines emitted by
-- scripts, lower case, statement text split over lines or tabs, trailing semicolons,
-- shoal hints, statements wrapped whole in version comments. The classification must
-- not change with the style (except HINT_LEADER for the shoal hint).

-- style: leading block comment

-- expect: Read
/* app=web,route=/orders */ SELECT c FROM sbtest1 WHERE id=42

-- expect: LockingRead FOR_UPDATE
/* app=web,route=/orders */ SELECT balance FROM accounts WHERE id = 7 FOR UPDATE

-- expect: LockingRead FOR_SHARE
/* app=web,route=/orders */ SELECT balance FROM accounts WHERE id = 7 LOCK IN SHARE MODE

-- expect: Write
/* app=web,route=/orders */ UPDATE accounts SET balance = balance - 10 WHERE id = 7

-- expect: Write
/* app=web,route=/orders */ INSERT INTO t (a, b) VALUES (1, 'x')

-- expect: Write
/* app=web,route=/orders */ DELETE FROM sessions WHERE id = 'abc'

-- expect: Ddl CREATE_TEMP_TABLE
/* app=web,route=/orders */ CREATE TEMPORARY TABLE tmp (id INT)

-- expect: TxnBegin
/* app=web,route=/orders */ START TRANSACTION

-- expect: TxnBeginReadOnly
/* app=web,route=/orders */ START TRANSACTION READ ONLY

-- expect: TxnCommit
/* app=web,route=/orders */ COMMIT

-- expect: TxnRollback
/* app=web,route=/orders */ ROLLBACK

-- expect: Savepoint
/* app=web,route=/orders */ ROLLBACK TO SAVEPOINT sp1

-- expect: SessionSet
/* app=web,route=/orders */ SET autocommit = 1

-- expect: Show
/* app=web,route=/orders */ SHOW TABLES

-- expect: Read GET_LOCK
/* app=web,route=/orders */ SELECT GET_LOCK('job', 5)

-- expect: Write SEQUENCE
/* app=web,route=/orders */ SELECT NEXT VALUE FOR seq1

-- expect: Read NON_DETERMINISTIC
/* app=web,route=/orders */ SELECT UUID()

-- expect: Call
/* app=web,route=/orders */ CALL proc1(1)

-- expect: LockTables
/* app=web,route=/orders */ LOCK TABLES t1 WRITE

-- expect: Read INTO USER_VARIABLE
/* app=web,route=/orders */ SELECT COUNT(*) INTO @n FROM t1

-- style: marginalia comment at end

-- expect: Read
SELECT c FROM sbtest1 WHERE id=42 /*controller:orders,action:show*/

-- expect: LockingRead FOR_UPDATE
SELECT balance FROM accounts WHERE id = 7 FOR UPDATE /*controller:orders,action:show*/

-- expect: LockingRead FOR_SHARE
SELECT balance FROM accounts WHERE id = 7 LOCK IN SHARE MODE /*controller:orders,action:show*/

-- expect: Write
UPDATE accounts SET balance = balance - 10 WHERE id = 7 /*controller:orders,action:show*/

-- expect: Write
INSERT INTO t (a, b) VALUES (1, 'x') /*controller:orders,action:show*/

-- expect: Write
DELETE FROM sessions WHERE id = 'abc' /*controller:orders,action:show*/

-- expect: Ddl CREATE_TEMP_TABLE
CREATE TEMPORARY TABLE tmp (id INT) /*controller:orders,action:show*/

-- expect: TxnBegin
START TRANSACTION /*controller:orders,action:show*/

-- expect: TxnBeginReadOnly
START TRANSACTION READ ONLY /*controller:orders,action:show*/

-- expect: TxnCommit
COMMIT /*controller:orders,action:show*/

-- expect: TxnRollback
ROLLBACK /*controller:orders,action:show*/

-- expect: Savepoint
ROLLBACK TO SAVEPOINT sp1 /*controller:orders,action:show*/

-- expect: SessionSet
SET autocommit = 1 /*controller:orders,action:show*/

-- expect: Show
SHOW TABLES /*controller:orders,action:show*/

-- expect: Read GET_LOCK
SELECT GET_LOCK('job', 5) /*controller:orders,action:show*/

-- expect: Write SEQUENCE
SELECT NEXT VALUE FOR seq1 /*controller:orders,action:show*/

-- expect: Read NON_DETERMINISTIC
SELECT UUID() /*controller:orders,action:show*/

-- expect: Call
CALL proc1(1) /*controller:orders,action:show*/

-- expect: LockTables
LOCK TABLES t1 WRITE /*controller:orders,action:show*/

-- expect: Read INTO USER_VARIABLE
SELECT COUNT(*) INTO @n FROM t1 /*controller:orders,action:show*/

-- style: hash comment line before

-- expect: Read
# generated
SELECT c FROM sbtest1 WHERE id=42

-- expect: LockingRead FOR_UPDATE
# generated
SELECT balance FROM accounts WHERE id = 7 FOR UPDATE

-- expect: LockingRead FOR_SHARE
# generated
SELECT balance FROM accounts WHERE id = 7 LOCK IN SHARE MODE

-- expect: Write
# generated
UPDATE accounts SET balance = balance - 10 WHERE id = 7

-- expect: Write
# generated
INSERT INTO t (a, b) VALUES (1, 'x')

-- expect: Write
# generated
DELETE FROM sessions WHERE id = 'abc'

-- expect: Ddl CREATE_TEMP_TABLE
# generated
CREATE TEMPORARY TABLE tmp (id INT)

-- expect: TxnBegin
# generated
START TRANSACTION

-- expect: TxnBeginReadOnly
# generated
START TRANSACTION READ ONLY

-- expect: TxnCommit
# generated
COMMIT

-- expect: TxnRollback
# generated
ROLLBACK

-- expect: Savepoint
# generated
ROLLBACK TO SAVEPOINT sp1

-- expect: SessionSet
# generated
SET autocommit = 1

-- expect: Show
# generated
SHOW TABLES

-- expect: Read GET_LOCK
# generated
SELECT GET_LOCK('job', 5)

-- expect: Write SEQUENCE
# generated
SELECT NEXT VALUE FOR seq1

-- expect: Read NON_DETERMINISTIC
# generated
SELECT UUID()

-- expect: Call
# generated
CALL proc1(1)

-- expect: LockTables
# generated
LOCK TABLES t1 WRITE

-- expect: Read INTO USER_VARIABLE
# generated
SELECT COUNT(*) INTO @n FROM t1

-- style: dash comment line before

-- expect: Read
-- generated
SELECT c FROM sbtest1 WHERE id=42

-- expect: LockingRead FOR_UPDATE
-- generated
SELECT balance FROM accounts WHERE id = 7 FOR UPDATE

-- expect: LockingRead FOR_SHARE
-- generated
SELECT balance FROM accounts WHERE id = 7 LOCK IN SHARE MODE

-- expect: Write
-- generated
UPDATE accounts SET balance = balance - 10 WHERE id = 7

-- expect: Write
-- generated
INSERT INTO t (a, b) VALUES (1, 'x')

-- expect: Write
-- generated
DELETE FROM sessions WHERE id = 'abc'

-- expect: Ddl CREATE_TEMP_TABLE
-- generated
CREATE TEMPORARY TABLE tmp (id INT)

-- expect: TxnBegin
-- generated
START TRANSACTION

-- expect: TxnBeginReadOnly
-- generated
START TRANSACTION READ ONLY

-- expect: TxnCommit
-- generated
COMMIT

-- expect: TxnRollback
-- generated
ROLLBACK

-- expect: Savepoint
-- generated
ROLLBACK TO SAVEPOINT sp1

-- expect: SessionSet
-- generated
SET autocommit = 1

-- expect: Show
-- generated
SHOW TABLES

-- expect: Read GET_LOCK
-- generated
SELECT GET_LOCK('job', 5)

-- expect: Write SEQUENCE
-- generated
SELECT NEXT VALUE FOR seq1

-- expect: Read NON_DETERMINISTIC
-- generated
SELECT UUID()

-- expect: Call
-- generated
CALL proc1(1)

-- expect: LockTables
-- generated
LOCK TABLES t1 WRITE

-- expect: Read INTO USER_VARIABLE
-- generated
SELECT COUNT(*) INTO @n FROM t1

-- style: lower case

-- expect: Read
select c from sbtest1 where id=42

-- expect: LockingRead FOR_UPDATE
select balance from accounts where id = 7 for update

-- expect: LockingRead FOR_SHARE
select balance from accounts where id = 7 lock in share mode

-- expect: Write
update accounts set balance = balance - 10 where id = 7

-- expect: Write
insert into t (a, b) values (1, 'x')

-- expect: Write
delete from sessions where id = 'abc'

-- expect: Ddl CREATE_TEMP_TABLE
create temporary table tmp (id int)

-- expect: TxnBegin
start transaction

-- expect: TxnBeginReadOnly
start transaction read only

-- expect: TxnCommit
commit

-- expect: TxnRollback
rollback

-- expect: Savepoint
rollback to savepoint sp1

-- expect: SessionSet
set autocommit = 1

-- expect: Show
show tables

-- expect: Read GET_LOCK
select get_lock('job', 5)

-- expect: Write SEQUENCE
select next value for seq1

-- expect: Read NON_DETERMINISTIC
select uuid()

-- expect: Call
call proc1(1)

-- expect: LockTables
lock tables t1 write

-- expect: Read INTO USER_VARIABLE
select count(*) into @n from t1

-- style: newlines between words

-- expect: Read
SELECT
  c
  FROM
  sbtest1
  WHERE
  id=42

-- expect: LockingRead FOR_UPDATE
SELECT
  balance
  FROM
  accounts
  WHERE
  id
  =
  7
  FOR
  UPDATE

-- expect: LockingRead FOR_SHARE
SELECT
  balance
  FROM
  accounts
  WHERE
  id
  =
  7
  LOCK
  IN
  SHARE
  MODE

-- expect: Write
UPDATE
  accounts
  SET
  balance
  =
  balance
  -
  10
  WHERE
  id
  =
  7

-- expect: Write
INSERT
  INTO
  t
  (a,
  b)
  VALUES
  (1,
  'x')

-- expect: Write
DELETE
  FROM
  sessions
  WHERE
  id
  =
  'abc'

-- expect: Ddl CREATE_TEMP_TABLE
CREATE
  TEMPORARY
  TABLE
  tmp
  (id
  INT)

-- expect: TxnBegin
START
  TRANSACTION

-- expect: TxnBeginReadOnly
START
  TRANSACTION
  READ
  ONLY

-- expect: TxnCommit
COMMIT

-- expect: TxnRollback
ROLLBACK

-- expect: Savepoint
ROLLBACK
  TO
  SAVEPOINT
  sp1

-- expect: SessionSet
SET
  autocommit
  =
  1

-- expect: Show
SHOW
  TABLES

-- expect: Read GET_LOCK
SELECT
  GET_LOCK('job',
  5)

-- expect: Write SEQUENCE
SELECT
  NEXT
  VALUE
  FOR
  seq1

-- expect: Read NON_DETERMINISTIC
SELECT
  UUID()

-- expect: Call
CALL
  proc1(1)

-- expect: LockTables
LOCK
  TABLES
  t1
  WRITE

-- expect: Read INTO USER_VARIABLE
SELECT
  COUNT(*)
  INTO
  @n
  FROM
  t1

-- style: tabs

-- expect: Read
SELECT	c	FROM	sbtest1	WHERE	id=42

-- expect: LockingRead FOR_UPDATE
SELECT	balance	FROM	accounts	WHERE	id	=	7	FOR	UPDATE

-- expect: LockingRead FOR_SHARE
SELECT	balance	FROM	accounts	WHERE	id	=	7	LOCK	IN	SHARE	MODE

-- expect: Write
UPDATE	accounts	SET	balance	=	balance	-	10	WHERE	id	=	7

-- expect: Write
INSERT	INTO	t	(a,	b)	VALUES	(1,	'x')

-- expect: Write
DELETE	FROM	sessions	WHERE	id	=	'abc'

-- expect: Ddl CREATE_TEMP_TABLE
CREATE	TEMPORARY	TABLE	tmp	(id	INT)

-- expect: TxnBegin
START	TRANSACTION

-- expect: TxnBeginReadOnly
START	TRANSACTION	READ	ONLY

-- expect: TxnCommit
COMMIT

-- expect: TxnRollback
ROLLBACK

-- expect: Savepoint
ROLLBACK	TO	SAVEPOINT	sp1

-- expect: SessionSet
SET	autocommit	=	1

-- expect: Show
SHOW	TABLES

-- expect: Read GET_LOCK
SELECT	GET_LOCK('job',	5)

-- expect: Write SEQUENCE
SELECT	NEXT	VALUE	FOR	seq1

-- expect: Read NON_DETERMINISTIC
SELECT	UUID()

-- expect: Call
CALL	proc1(1)

-- expect: LockTables
LOCK	TABLES	t1	WRITE

-- expect: Read INTO USER_VARIABLE
SELECT	COUNT(*)	INTO	@n	FROM	t1

-- style: trailing semicolon

-- expect: Read
SELECT c FROM sbtest1 WHERE id=42;

-- expect: LockingRead FOR_UPDATE
SELECT balance FROM accounts WHERE id = 7 FOR UPDATE;

-- expect: LockingRead FOR_SHARE
SELECT balance FROM accounts WHERE id = 7 LOCK IN SHARE MODE;

-- expect: Write
UPDATE accounts SET balance = balance - 10 WHERE id = 7;

-- expect: Write
INSERT INTO t (a, b) VALUES (1, 'x');

-- expect: Write
DELETE FROM sessions WHERE id = 'abc';

-- expect: Ddl CREATE_TEMP_TABLE
CREATE TEMPORARY TABLE tmp (id INT);

-- expect: TxnBegin
START TRANSACTION;

-- expect: TxnBeginReadOnly
START TRANSACTION READ ONLY;

-- expect: TxnCommit
COMMIT;

-- expect: TxnRollback
ROLLBACK;

-- expect: Savepoint
ROLLBACK TO SAVEPOINT sp1;

-- expect: SessionSet
SET autocommit = 1;

-- expect: Show
SHOW TABLES;

-- expect: Read GET_LOCK
SELECT GET_LOCK('job', 5);

-- expect: Write SEQUENCE
SELECT NEXT VALUE FOR seq1;

-- expect: Read NON_DETERMINISTIC
SELECT UUID();

-- expect: Call
CALL proc1(1);

-- expect: LockTables
LOCK TABLES t1 WRITE;

-- expect: Read INTO USER_VARIABLE
SELECT COUNT(*) INTO @n FROM t1;

-- style: shoal leader hint

-- expect: Read HINT_LEADER
/* shoal:leader */ SELECT c FROM sbtest1 WHERE id=42

-- expect: LockingRead FOR_UPDATE HINT_LEADER
/* shoal:leader */ SELECT balance FROM accounts WHERE id = 7 FOR UPDATE

-- expect: LockingRead FOR_SHARE HINT_LEADER
/* shoal:leader */ SELECT balance FROM accounts WHERE id = 7 LOCK IN SHARE MODE

-- expect: Write HINT_LEADER
/* shoal:leader */ UPDATE accounts SET balance = balance - 10 WHERE id = 7

-- expect: Write HINT_LEADER
/* shoal:leader */ INSERT INTO t (a, b) VALUES (1, 'x')

-- expect: Write HINT_LEADER
/* shoal:leader */ DELETE FROM sessions WHERE id = 'abc'

-- expect: Ddl CREATE_TEMP_TABLE HINT_LEADER
/* shoal:leader */ CREATE TEMPORARY TABLE tmp (id INT)

-- expect: TxnBegin HINT_LEADER
/* shoal:leader */ START TRANSACTION

-- expect: TxnBeginReadOnly HINT_LEADER
/* shoal:leader */ START TRANSACTION READ ONLY

-- expect: TxnCommit HINT_LEADER
/* shoal:leader */ COMMIT

-- expect: TxnRollback HINT_LEADER
/* shoal:leader */ ROLLBACK

-- expect: Savepoint HINT_LEADER
/* shoal:leader */ ROLLBACK TO SAVEPOINT sp1

-- expect: SessionSet HINT_LEADER
/* shoal:leader */ SET autocommit = 1

-- expect: Show HINT_LEADER
/* shoal:leader */ SHOW TABLES

-- expect: Read GET_LOCK HINT_LEADER
/* shoal:leader */ SELECT GET_LOCK('job', 5)

-- expect: Write SEQUENCE HINT_LEADER
/* shoal:leader */ SELECT NEXT VALUE FOR seq1

-- expect: Read NON_DETERMINISTIC HINT_LEADER
/* shoal:leader */ SELECT UUID()

-- expect: Call HINT_LEADER
/* shoal:leader */ CALL proc1(1)

-- expect: LockTables HINT_LEADER
/* shoal:leader */ LOCK TABLES t1 WRITE

-- expect: Read INTO USER_VARIABLE HINT_LEADER
/* shoal:leader */ SELECT COUNT(*) INTO @n FROM t1

-- style: whole statement in a version comment

-- expect: Read
/*!50000 SELECT c FROM sbtest1 WHERE id=42 */

-- expect: LockingRead FOR_UPDATE
/*!50000 SELECT balance FROM accounts WHERE id = 7 FOR UPDATE */

-- expect: LockingRead FOR_SHARE
/*!50000 SELECT balance FROM accounts WHERE id = 7 LOCK IN SHARE MODE */

-- expect: Write
/*!50000 UPDATE accounts SET balance = balance - 10 WHERE id = 7 */

-- expect: Write
/*!50000 INSERT INTO t (a, b) VALUES (1, 'x') */

-- expect: Write
/*!50000 DELETE FROM sessions WHERE id = 'abc' */

-- expect: Ddl CREATE_TEMP_TABLE
/*!50000 CREATE TEMPORARY TABLE tmp (id INT) */

-- expect: TxnBegin
/*!50000 START TRANSACTION */

-- expect: TxnBeginReadOnly
/*!50000 START TRANSACTION READ ONLY */

-- expect: TxnCommit
/*!50000 COMMIT */

-- expect: TxnRollback
/*!50000 ROLLBACK */

-- expect: Savepoint
/*!50000 ROLLBACK TO SAVEPOINT sp1 */

-- expect: SessionSet
/*!50000 SET autocommit = 1 */

-- expect: Show
/*!50000 SHOW TABLES */

-- expect: Read GET_LOCK
/*!50000 SELECT GET_LOCK('job', 5) */

-- expect: Write SEQUENCE
/*!50000 SELECT NEXT VALUE FOR seq1 */

-- expect: Read NON_DETERMINISTIC
/*!50000 SELECT UUID() */

-- expect: Call
/*!50000 CALL proc1(1) */

-- expect: LockTables
/*!50000 LOCK TABLES t1 WRITE */

-- expect: Read INTO USER_VARIABLE
/*!50000 SELECT COUNT(*) INTO @n FROM t1 */

-- style: whole statement in a MariaDB version comment

-- expect: Read
/*M!100500 SELECT c FROM sbtest1 WHERE id=42 */

-- expect: LockingRead FOR_UPDATE
/*M!100500 SELECT balance FROM accounts WHERE id = 7 FOR UPDATE */

-- expect: LockingRead FOR_SHARE
/*M!100500 SELECT balance FROM accounts WHERE id = 7 LOCK IN SHARE MODE */

-- expect: Write
/*M!100500 UPDATE accounts SET balance = balance - 10 WHERE id = 7 */

-- expect: Write
/*M!100500 INSERT INTO t (a, b) VALUES (1, 'x') */

-- expect: Write
/*M!100500 DELETE FROM sessions WHERE id = 'abc' */

-- expect: Ddl CREATE_TEMP_TABLE
/*M!100500 CREATE TEMPORARY TABLE tmp (id INT) */

-- expect: TxnBegin
/*M!100500 START TRANSACTION */

-- expect: TxnBeginReadOnly
/*M!100500 START TRANSACTION READ ONLY */

-- expect: TxnCommit
/*M!100500 COMMIT */

-- expect: TxnRollback
/*M!100500 ROLLBACK */

-- expect: Savepoint
/*M!100500 ROLLBACK TO SAVEPOINT sp1 */

-- expect: SessionSet
/*M!100500 SET autocommit = 1 */

-- expect: Show
/*M!100500 SHOW TABLES */

-- expect: Read GET_LOCK
/*M!100500 SELECT GET_LOCK('job', 5) */

-- expect: Write SEQUENCE
/*M!100500 SELECT NEXT VALUE FOR seq1 */

-- expect: Read NON_DETERMINISTIC
/*M!100500 SELECT UUID() */

-- expect: Call
/*M!100500 CALL proc1(1) */

-- expect: LockTables
/*M!100500 LOCK TABLES t1 WRITE */

-- expect: Read INTO USER_VARIABLE
/*M!100500 SELECT COUNT(*) INTO @n FROM t1 */

-- style: trailing dash comment

-- expect: Read
SELECT c FROM sbtest1 WHERE id=42 -- from the batch job

-- expect: LockingRead FOR_UPDATE
SELECT balance FROM accounts WHERE id = 7 FOR UPDATE -- from the batch job

-- expect: LockingRead FOR_SHARE
SELECT balance FROM accounts WHERE id = 7 LOCK IN SHARE MODE -- from the batch job

-- expect: Write
UPDATE accounts SET balance = balance - 10 WHERE id = 7 -- from the batch job

-- expect: Write
INSERT INTO t (a, b) VALUES (1, 'x') -- from the batch job

-- expect: Write
DELETE FROM sessions WHERE id = 'abc' -- from the batch job

-- expect: Ddl CREATE_TEMP_TABLE
CREATE TEMPORARY TABLE tmp (id INT) -- from the batch job

-- expect: TxnBegin
START TRANSACTION -- from the batch job

-- expect: TxnBeginReadOnly
START TRANSACTION READ ONLY -- from the batch job

-- expect: TxnCommit
COMMIT -- from the batch job

-- expect: TxnRollback
ROLLBACK -- from the batch job

-- expect: Savepoint
ROLLBACK TO SAVEPOINT sp1 -- from the batch job

-- expect: SessionSet
SET autocommit = 1 -- from the batch job

-- expect: Show
SHOW TABLES -- from the batch job

-- expect: Read GET_LOCK
SELECT GET_LOCK('job', 5) -- from the batch job

-- expect: Write SEQUENCE
SELECT NEXT VALUE FOR seq1 -- from the batch job

-- expect: Read NON_DETERMINISTIC
SELECT UUID() -- from the batch job

-- expect: Call
CALL proc1(1) -- from the batch job

-- expect: LockTables
LOCK TABLES t1 WRITE -- from the batch job

-- expect: Read INTO USER_VARIABLE
SELECT COUNT(*) INTO @n FROM t1 -- from the batch job
