-- Lexical edge cases: comments of every style, version comments (MySQL `/*!` and
-- MariaDB `/*M!`), optimizer hints, shoal hints, quoting and escapes, multi-statement
-- texts, empty texts, odd spacing and case, and keywords inside strings and identifiers.

-- comments
-- expect: Read
/* leading */ SELECT 1

-- expect: Read
SELECT /* middle */ 1

-- expect: Read
SELECT 1 /* trailing */

-- expect: Read
-- line comment
SELECT 1
-- expect: Read
# hash comment
SELECT 1
-- expect: Read
SELECT 1 # trailing hash

-- expect: Read
SELECT 1 -- trailing dashes

-- expect: Read
SELECT 1--1

-- expect: Read
SELECT 1 --1

-- expect: Read
SELECT 2-- 1

-- expect: Read
SELECT /* nested? /* no */ 1

-- expect: Read
/**/SELECT/**/1/**/

-- expect: Read
/* multi
   line
   comment */ SELECT 1
-- expect: Unknown
/* only a comment */

-- expect: Unknown
-- only a comment

-- expect: Unknown
# only a comment

-- expect: Unknown
/* unterminated comment SELECT 1

-- expect: Unknown
;

-- expect: Unknown
;;;

-- expect: Read
; SELECT 1

-- expect: Read
SELECT 1;

-- expect: Read
SELECT 1;;

-- expect: Read
SELECT 1 ; -- done

-- expect: Read
SELECT 1; /* done */


-- version comments
-- expect: Read
/*!SELECT 1*/

-- expect: Read
/*!50000 SELECT 1 */

-- expect: Read
/*!80000 SELECT */ 1

-- expect: Read
SELECT /*!32302 1 */

-- expect: Write
/*!40000 INSERT */ INTO t VALUES (1)

-- expect: Write
/*M!100100 INSERT INTO t VALUES (1) */

-- expect: Write
/*M!100300 REPLACE */ INTO t VALUES (1)

-- expect: LockingRead FOR_UPDATE
SELECT * FROM t /*!50000 FOR UPDATE */

-- expect: LockingRead FOR_SHARE
SELECT * FROM t /*!40101 LOCK IN SHARE MODE */

-- expect: Ddl CREATE_TEMP_TABLE
CREATE /*!32302 TEMPORARY */ TABLE t (a INT)

-- expect: Ddl DROP_TEMP_TABLE
DROP /*!40000 TEMPORARY */ TABLE t

-- expect: Ddl
CREATE TABLE t (a INT) /*!50100 PARTITION BY HASH (a) */

-- expect: Read
SELECT /*!40001 SQL_NO_CACHE */ * FROM t

-- expect: Show
SHOW /*!50002 GLOBAL */ STATUS

-- expect: Unknown
/*!*/

-- expect: TxnCommit
COMMIT/*!*/;


-- optimizer hints and shoal hints
-- expect: Read
SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t1

-- expect: Read
SELECT /*+ BKA(t1) NO_BKA(t2) */ * FROM t1 INNER JOIN t2 WHERE t1.a = t2.b

-- expect: Read
SELECT /*+ INDEX(t1 idx_a) SET_VAR(sort_buffer_size = 16M) */ a FROM t1 ORDER BY a

-- expect: Write
INSERT /*+ SET_VAR(foreign_key_checks=OFF) */ INTO t2 VALUES (2)

-- expect: Write
UPDATE /*+ NO_RANGE_OPTIMIZATION(t1 PRIMARY) */ t1 SET a = 1 WHERE id < 10

-- expect: Read
/*+ not a hint position */ SELECT 1

-- expect: Read HINT_LEADER
/* shoal:leader */ SELECT * FROM t1

-- expect: Read HINT_LEADER
SELECT /* shoal:leader */ * FROM t1

-- expect: Read HINT_LEADER
SELECT /*+ shoal:leader */ * FROM t1

-- expect: Read HINT_LEADER
SELECT /*+ MAX_EXECUTION_TIME(500) shoal:leader */ * FROM t1

-- expect: Read HINT_LEADER
SELECT * FROM t1 /* SHOAL:LEADER */

-- expect: Read HINT_LEADER
/*   shoal:leader   */SELECT 1

-- expect: Read HINT_LEADER
/* shoal:leader */ /* app:x */ SELECT 1

-- expect: LockingRead FOR_UPDATE HINT_LEADER
/* shoal:leader */ SELECT * FROM t1 WHERE id = 1 FOR UPDATE

-- expect: Write HINT_LEADER
/* shoal:leader */ INSERT INTO t1 VALUES (1)

-- expect: Read
/* not shoal:leader */ SELECT 1

-- expect: Read
SELECT 'shoal:leader' FROM t1

-- expect: Read
-- shoal:leader
SELECT 1
-- expect: Unknown HINT_LEADER
/* shoal:leader */

-- expect: Read
/* shoal-leader */ SELECT 1


-- quoting, escapes, keywords in strings and identifiers
-- expect: Read
SELECT 'a;b' FROM t

-- expect: Read
SELECT "a;b" FROM t

-- expect: Read
SELECT `a;b` FROM t

-- expect: Read
SELECT 'it''s; DROP TABLE x' AS s

-- expect: Read
SELECT 'it\'s; DROP TABLE x' AS s

-- expect: Read
SELECT "say \"x\"; DELETE FROM y" AS s

-- expect: Read MULTI_STATEMENT
SELECT 'back\\'; SELECT 2

-- expect: Read
SELECT 'x\\\'y'

-- expect: Read
SELECT 'line1\nline2\ttab\0nul'

-- expect: Read
SELECT '/* not a comment */', '-- not a comment', '# not a comment'

-- expect: Read
SELECT "/*!50000 not a version comment */"

-- expect: Read
SELECT `/*!50000 ident */` FROM t

-- expect: Read
SELECT 'NOW()', "UUID()", `RAND()` FROM t

-- expect: Read
SELECT 'GET_LOCK(1)', 'NEXT VALUE FOR s', 'LAST_INSERT_ID()'

-- expect: Read
SELECT `insert`, `update`, `delete` FROM `select`

-- expect: Read
SELECT * FROM `for` WHERE `update` = 1

-- expect: Read
SELECT 'FOR UPDATE'

-- expect: Read
SELECT x'4142', X'4142', b'01', B'01', n'abc', N'abc', _utf8mb4'abc', _binary'x', _latin1"y"

-- expect: Read
SELECT 0x414243, 0b0101, 1.5e10, .5, 1e-3, 12abc FROM t

-- expect: Read
SELECT 1 FROM t WHERE a <=> NULL AND b != 2 AND c <> 3 AND d >= 4 AND e <= 5

-- expect: Read
SELECT a->'$.x', a->>'$.y' FROM t

-- expect: Read
SELECT a || b, a && b, a << 2, a >> 1 FROM t

-- expect: Read
SELECT now FROM t

-- expect: Read
SELECT uuid, rand, sysdate FROM t

-- expect: Read
SELECT t.now, t.uuid FROM t

-- expect: Read
SELECT current_timestampx FROM t

-- expect: Read
SELECT 'unterminated

-- expect: Read
SELECT `unterminated

-- expect: Read
SELECT "unterminated\"


-- user variables vs accounts
-- expect: Read USER_VARIABLE
SELECT @v

-- expect: Read USER_VARIABLE
SELECT @v:=1

-- expect: Read USER_VARIABLE
SELECT 1 FROM t WHERE a = @v

-- expect: Read
SELECT @@v

-- expect: Read
SELECT @@session.v, @@global.v

-- expect: Admin
GRANT SELECT ON db.* TO 'app'@'10.0.0.%'

-- expect: Admin
GRANT SELECT ON db.* TO app@localhost

-- expect: Admin
GRANT SELECT ON db.* TO `app`@`localhost`

-- expect: Ddl
CREATE DEFINER=root@localhost VIEW v AS SELECT 1

-- expect: Read
SELECT CURRENT_USER()

-- expect: Read USER_VARIABLE
SELECT 'x' @v

-- expect: Read
SELECT '@not_a_var', "@@nor_this"


-- multi-statement texts (CLIENT_MULTI_STATEMENTS)
-- expect: Read MULTI_STATEMENT
SELECT 1; SELECT 2

-- expect: Read MULTI_STATEMENT
SELECT 1; SELECT 2; SELECT 3;

-- expect: Read MULTI_STATEMENT MULTI_HAS_WRITE
SELECT 1; UPDATE t SET a = 1

-- expect: Write MULTI_STATEMENT MULTI_HAS_WRITE ROW_COUNT
UPDATE t SET a = 1; SELECT ROW_COUNT()

-- expect: Write MULTI_STATEMENT MULTI_HAS_WRITE
INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)

-- expect: Read MULTI_STATEMENT MULTI_HAS_WRITE FOR_UPDATE
SELECT 1; SELECT * FROM t FOR UPDATE

-- expect: TxnBegin MULTI_STATEMENT MULTI_HAS_WRITE
BEGIN; UPDATE accounts SET b = b - 1 WHERE id = 1; UPDATE accounts SET b = b + 1 WHERE id = 2; COMMIT

-- expect: TxnBegin MULTI_STATEMENT MULTI_HAS_WRITE
START TRANSACTION; SELECT 1; COMMIT;

-- expect: SessionSet MULTI_STATEMENT MULTI_HAS_WRITE
SET NAMES utf8mb4; SET autocommit=0

-- expect: SessionSet MULTI_STATEMENT MULTI_HAS_WRITE USER_VARIABLE
SET @x = 1; SELECT @x

-- expect: Read MULTI_STATEMENT MULTI_HAS_WRITE LAST_INSERT_ID
SELECT 1; INSERT INTO t VALUES (1); SELECT LAST_INSERT_ID()

-- expect: Read MULTI_STATEMENT MULTI_HAS_WRITE NON_DETERMINISTIC
SELECT 1; INSERT INTO t VALUES (NOW())

-- expect: Read MULTI_STATEMENT MULTI_HAS_WRITE
SELECT 1;
SHOW TABLES
-- expect: Read MULTI_STATEMENT
SELECT 1 /* ; */; SELECT ';'

-- expect: Read
SELECT 1 /* ; SELECT 2 */

-- expect: Read
SELECT 1 -- ; DELETE FROM t

-- expect: Read MULTI_STATEMENT MULTI_HAS_WRITE HINT_LEADER
SELECT 1; /* shoal:leader */ DELETE FROM t

-- expect: Ddl MULTI_STATEMENT MULTI_HAS_WRITE CREATE_TEMP_TABLE DROP_TEMP_TABLE
CREATE TEMPORARY TABLE x (a INT); DROP TEMPORARY TABLE x

-- expect: Use MULTI_STATEMENT MULTI_HAS_WRITE
USE db1; SELECT * FROM t

-- expect: Read MULTI_STATEMENT
SELECT 1;;; SELECT 2


-- spacing and case
-- expect: Read
select 1

-- expect: Read
SeLeCt 1

-- expect: Read
SELECT
1
-- expect: Read
	SELECT	1	

-- expect: Read
   (  SELECT 1  )

-- expect: Write
insert into t values(1)

-- expect: Write
InSeRt InTo t VaLuEs (1)

-- expect: LockingRead FOR_UPDATE
select * from t for   update

-- expect: LockingRead FOR_UPDATE
SELECT*FROM t FOR UPDATE

-- expect: TxnBegin
begin work

-- expect: TxnCommit
Commit Work

-- expect: TxnBeginReadOnly
start  transaction  read  only

-- expect: Read
SELECT(1)

-- expect: Write
DELETE/**/FROM/**/t

-- expect: Read NON_DETERMINISTIC
SELECT now()

-- expect: Read NON_DETERMINISTIC
SELECT Now ( )

-- expect: Read NON_DETERMINISTIC
select current_timestamp()

-- expect: Read GET_LOCK
select get_lock('x',1)

-- expect: Write SEQUENCE
select nextval(s)


-- statements the classifier does not know
-- expect: Unknown
FOO BAR

-- expect: Unknown
42

-- expect: Unknown
'SELECT 1'

-- expect: Unknown
`SELECT` 1

-- expect: Unknown USER_VARIABLE
@x := 1

-- expect: Unknown
DELIMITER ;;

-- expect: Unknown
\G

-- expect: Unknown
) SELECT 1

-- expect: Unknown
BEGIN ATOMIC

-- expect: Read
(((SELECT 1)))

-- expect: Unknown
(((

-- expect: Unknown
XA FOO

-- expect: Unknown
START

-- expect: Unknown
LOCK

-- expect: Unknown
RELEASE

-- expect: Unknown
WITH cte AS (SELECT 1)

-- flags in combination, across statement kinds
-- expect: LockingRead FOR_UPDATE INTO USER_VARIABLE
SELECT a, b INTO @a, @b FROM t WHERE id = 1 FOR UPDATE

-- expect: Ddl NON_DETERMINISTIC
CREATE TABLE snap SELECT id, NOW() AS taken FROM t

-- expect: Write SEQUENCE
INSERT INTO t (id) SELECT NEXTVAL(s) FROM seq_1_to_10

-- expect: Call NON_DETERMINISTIC
CALL log_event('login', NOW())

-- expect: Call USER_VARIABLE
CALL p(@out)

-- expect: Read USER_VARIABLE
select @@session.tx_isolation, @x

-- expect: Read NON_DETERMINISTIC
SELECT * FROM t WHERE created > CURRENT_DATE - INTERVAL 1 DAY

-- expect: Read
SELECT JSON_VALUE(j, '$.a') FROM t WHERE uuid = 'x' AND rand = 2

-- expect: Write
WITH x AS (SELECT 1 AS a) INSERT INTO t SELECT * FROM x

-- expect: Read MULTI_STATEMENT USER_VARIABLE
SELECT 1 UNION SELECT 2; SELECT @x

-- expect: Write INTO
(SELECT a FROM t1) UNION (SELECT a FROM t2) INTO OUTFILE '/tmp/u.txt'

-- expect: Read INTO USER_VARIABLE
SELECT 1 UNION SELECT 2 INTO @x

-- expect: LockingRead FOR_SHARE GET_LOCK
SELECT GET_LOCK('x', 1), a FROM t LOCK IN SHARE MODE

-- expect: Write LAST_INSERT_ID NON_DETERMINISTIC
INSERT INTO audit (ref, at) VALUES (LAST_INSERT_ID(), SYSDATE())

-- expect: Read FOUND_ROWS CALC_FOUND_ROWS MULTI_STATEMENT
SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 5; SELECT FOUND_ROWS()

-- expect: Show FOR_UPDATE
EXPLAIN SELECT * FROM t FOR UPDATE

-- expect: Show SEQUENCE
EXPLAIN SELECT NEXTVAL(s)

-- (plain EXPLAIN runs nothing: the flags stay, the kind is Show)
-- expect: Ddl HINT_LEADER
/* shoal:leader */ CREATE PROCEDURE p() BEGIN SELECT NOW(); END

-- expect: Ddl
CREATE TRIGGER t1_ai AFTER INSERT ON t1 FOR EACH ROW INSERT INTO log VALUES (UUID()); SELECT 1
