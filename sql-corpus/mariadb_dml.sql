-- MariaDB / MySQL documentation examples for data manipulation: SELECT in its many
-- forms (joins, subqueries, CTEs, window functions, INTO), INSERT/REPLACE/UPDATE/DELETE
-- variants, RETURNING, LOAD DATA, HANDLER, DO, VALUES, TABLE, prepared statements.

-- SELECT
-- expect: Read
SELECT * FROM t1

-- expect: Read
SELECT 1 + 1

-- expect: Read
SELECT a, b FROM t1 WHERE a > 10 ORDER BY b DESC LIMIT 5

-- expect: Read
SELECT DISTINCT country FROM customers

-- expect: Read
SELECT f.name, COUNT(*) FROM fruit f JOIN stock s ON s.fruit_id = f.id GROUP BY f.name WITH ROLLUP

-- expect: Read
SELECT * FROM t1 LEFT JOIN (t2, t3, t4) ON (t2.a = t1.a AND t3.b = t1.b AND t4.c = t1.c)

-- expect: Read
SELECT * FROM t1 STRAIGHT_JOIN t2 ON t1.id = t2.id

-- expect: Read
SELECT * FROM t1 NATURAL JOIN t2

-- expect: Read
SELECT t1.name, t2.salary FROM employee AS t1 INNER JOIN info AS t2 USING (name)

-- expect: Read
SELECT * FROM t1 WHERE column1 = (SELECT MAX(column2) FROM t2)

-- expect: Read
SELECT s1 FROM t1 WHERE s1 > ALL (SELECT s1 FROM t2)

-- expect: Read
SELECT * FROM t1 WHERE (col1, col2) IN (SELECT col3, col4 FROM t2)

-- expect: Read
SELECT * FROM (SELECT a, b FROM t1 WHERE b > 3) AS dt WHERE dt.a < 10

-- expect: Read
SELECT SQL_NO_CACHE * FROM t1

-- expect: Read
SELECT SQL_CACHE id FROM t1 WHERE id = 5

-- expect: Read
SELECT HIGH_PRIORITY id FROM t1

-- expect: Read
SELECT SQL_BUFFER_RESULT * FROM t1

-- expect: Read
SELECT SQL_SMALL_RESULT a, COUNT(*) FROM t1 GROUP BY a

-- expect: Read
SELECT STRAIGHT_JOIN * FROM t1, t2 WHERE t1.a = t2.a

-- expect: Read
SELECT * FROM t1 USE INDEX (i1) IGNORE INDEX FOR ORDER BY (i2) ORDER BY a

-- expect: Read
SELECT * FROM t1 FORCE INDEX (PRIMARY) WHERE id BETWEEN 1 AND 100

-- expect: Read
SELECT a FROM t1 UNION SELECT b FROM t2 ORDER BY 1

-- expect: Read
SELECT a FROM t1 UNION ALL SELECT a FROM t2 UNION DISTINCT SELECT a FROM t3

-- expect: Read
SELECT a FROM t1 EXCEPT SELECT a FROM t2

-- expect: Read
SELECT a FROM t1 INTERSECT SELECT a FROM t2

-- expect: Read
(SELECT a FROM t1 ORDER BY a LIMIT 1) UNION (SELECT a FROM t2 ORDER BY a DESC LIMIT 1)

-- expect: Read
((SELECT 1))

-- expect: Read
SELECT name, salary, RANK() OVER (PARTITION BY dept ORDER BY salary DESC) AS r FROM staff

-- expect: Read
SELECT pk, a, SUM(a) OVER (ORDER BY pk ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM t

-- expect: Read
SELECT a, LAG(a, 1) OVER w, LEAD(a) OVER w FROM t WINDOW w AS (ORDER BY a)

-- expect: Read
SELECT JSON_OBJECT('id', id, 'tags', JSON_ARRAYAGG(tag)) FROM t GROUP BY id

-- expect: Read
SELECT * FROM JSON_TABLE('[{"a":1},{"a":2}]', '$[*]' COLUMNS (a INT PATH '$.a')) AS jt

-- expect: Read
SELECT doc->>'$.name' FROM docs WHERE doc->'$.age' > 30

-- expect: Read
SELECT CONVERT('abc' USING utf8mb4), _latin1'abc' COLLATE latin1_bin, N'text', X'4D7953514C', B'0101'

-- expect: Read
SELECT 'It''s', "say \"hi\"", 'back\\slash', 'a\'b' AS q

-- expect: Read
SELECT * FROM `select` WHERE `from` = 'where'

-- expect: Read
SELECT `a``b` FROM `t``1`

-- expect: Read
SELECT MATCH (title, body) AGAINST ('database' IN NATURAL LANGUAGE MODE) AS score FROM articles

-- expect: Read
SELECT COUNT(*) FROM t1 WHERE d BETWEEN '2024-01-01' AND '2024-12-31'

-- expect: Read
SELECT CASE WHEN a > 0 THEN 'pos' WHEN a < 0 THEN 'neg' ELSE 'zero' END FROM t

-- expect: Read
SELECT GROUP_CONCAT(DISTINCT name ORDER BY name SEPARATOR ';') FROM t

-- expect: Read
SELECT a FROM t1 WHERE a REGEXP '^[a-d]'

-- expect: Read
SELECT INET_NTOA(ip), HEX(uid) FROM hits

-- expect: Read
SELECT DATE_FORMAT('2024-05-01', '%W %M %Y')

-- expect: Read
SELECT * FROM t1 LIMIT 10 OFFSET 20

-- expect: Read
SELECT * FROM t1 LIMIT 20, 10

-- expect: Read
SELECT * FROM t1 ORDER BY a FETCH FIRST 3 ROWS WITH TIES

-- expect: Read
SELECT * FROM t1 OFFSET 2 ROWS FETCH NEXT 3 ROWS ONLY

-- expect: Read
SELECT id FROM t1 WHERE name LIKE 'a\_%' ESCAPE '\\'

-- expect: Read
SELECT 1 FROM DUAL WHERE EXISTS (SELECT * FROM t2 WHERE t2.x = 7)

-- expect: Read
SELECT BENCHMARK(1000000, MD5('x'))

-- expect: Read
SELECT SLEEP(1)

-- expect: Read
SELECT @@version, @@global.max_connections, @@session.sql_mode, @@local.wait_timeout

-- expect: Read ROW_COUNT
SELECT ROW_COUNT()

-- expect: Read
SELECT COLUMN_GET(dyncol_blob, 'color' AS CHAR) FROM assets

-- expect: Read
SELECT * FROM t1 PARTITION (p0, p1) WHERE a < 5

-- expect: Read
SELECT AES_DECRYPT(secret, 'key') FROM vault WHERE id = 1

-- expect: Read NON_DETERMINISTIC
SELECT UUID()

-- expect: Read NON_DETERMINISTIC
SELECT UUID_SHORT()

-- expect: Read NON_DETERMINISTIC
SELECT RAND(), RAND(3)

-- expect: Read NON_DETERMINISTIC
SELECT SYSDATE(), SLEEP(2), SYSDATE()

-- expect: Read NON_DETERMINISTIC
SELECT NOW(), CURDATE(), CURTIME()

-- expect: Read NON_DETERMINISTIC
SELECT CURRENT_DATE, CURRENT_TIME, LOCALTIMESTAMP

-- expect: Read NON_DETERMINISTIC
SELECT UTC_DATE(), UTC_TIME(), UTC_TIMESTAMP()

-- expect: Read NON_DETERMINISTIC
SELECT UNIX_TIMESTAMP()

-- expect: Read NON_DETERMINISTIC
SELECT * FROM events WHERE starts_at > NOW() - INTERVAL 1 DAY

-- expect: Read NON_DETERMINISTIC
SELECT RANDOM_BYTES(16)

-- expect: Read NON_DETERMINISTIC
SELECT SYS_GUID()

-- expect: Read NON_DETERMINISTIC
SELECT LOCALTIME()

-- expect: Read LAST_INSERT_ID
SELECT LAST_INSERT_ID()

-- expect: Read LAST_INSERT_ID
SELECT last_insert_id() AS id

-- expect: Read FOUND_ROWS
SELECT FOUND_ROWS()

-- expect: Read CALC_FOUND_ROWS
SELECT SQL_CALC_FOUND_ROWS * FROM tbl_name WHERE id > 100 LIMIT 10

-- expect: Read GET_LOCK
SELECT GET_LOCK('lock1', 10)

-- expect: Read GET_LOCK
SELECT GET_LOCK('lock1', 10), GET_LOCK('lock2', 10)

-- expect: Read RELEASE_LOCK
SELECT RELEASE_LOCK('lock1')

-- expect: Read RELEASE_LOCK
SELECT RELEASE_ALL_LOCKS()

-- expect: Read
SELECT IS_FREE_LOCK('lock1'), IS_USED_LOCK('lock1')

-- expect: Read USER_VARIABLE
SELECT @a, @b

-- expect: Read USER_VARIABLE
SELECT @rownum := @rownum + 1 AS rank, name FROM people, (SELECT @rownum := 0) r ORDER BY score DESC

-- expect: Read USER_VARIABLE
SELECT * FROM t1 WHERE id = @last_id

-- expect: Read USER_VARIABLE
SELECT @`my-var`, @'other var', @"third"


-- SELECT ... INTO
-- expect: Read INTO USER_VARIABLE
SELECT id, data INTO @x, @y FROM test.t1 LIMIT 1

-- expect: Read INTO USER_VARIABLE
SELECT COUNT(*) FROM t1 INTO @n

-- expect: LockingRead FOR_UPDATE INTO USER_VARIABLE
SELECT a INTO @a FROM t1 WHERE id = 1 FOR UPDATE

-- expect: Write INTO
SELECT * INTO OUTFILE '/tmp/t1.txt' FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '"' LINES TERMINATED BY '\n' FROM t1

-- expect: Write INTO
SELECT a, b FROM t1 INTO OUTFILE '/tmp/result.csv' FIELDS TERMINATED BY ',' ENCLOSED BY '"'

-- expect: Write INTO
SELECT * FROM t1 WHERE id = 1 INTO DUMPFILE '/tmp/blob.bin'

-- expect: Write INTO
TABLE t1 INTO OUTFILE '/tmp/t1.out'

-- expect: Read
SELECT a FROM t1 WHERE b IN (SELECT b FROM t2)


-- WITH (common table expressions)
-- expect: Read
WITH t AS (SELECT a FROM t1 WHERE b >= 'c') SELECT * FROM t2, t WHERE t2.c = t.a

-- expect: Read
WITH RECURSIVE cte (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM cte WHERE n < 5) SELECT * FROM cte

-- expect: Read
WITH sales_product_year AS (SELECT product, YEAR(ship_date) AS year, SUM(price) AS total_amt FROM item_sales GROUP BY product, year) SELECT * FROM sales_product_year S1 WHERE total_amt > (SELECT 0.1 * SUM(total_amt) FROM sales_product_year S2 WHERE S2.year = S1.year)

-- expect: Read
WITH a AS (SELECT 1 AS x), b AS (SELECT x + 1 AS y FROM a) SELECT * FROM a JOIN b

-- expect: Write
WITH cte AS (SELECT id FROM t1 WHERE expired = 1) DELETE FROM t1 WHERE id IN (SELECT id FROM cte)

-- expect: Write
WITH cte AS (SELECT id, 2 * v AS v2 FROM t2) UPDATE t1, cte SET t1.v = cte.v2 WHERE t1.id = cte.id

-- expect: LockingRead FOR_UPDATE
WITH q AS (SELECT id FROM jobs WHERE state = 'ready' ORDER BY id LIMIT 1) SELECT * FROM jobs JOIN q USING (id) FOR UPDATE

-- expect: Read
WITH RECURSIVE ancestors AS (SELECT * FROM folks WHERE name = 'Alex' UNION SELECT f.* FROM folks AS f, ancestors AS a WHERE f.id = a.father OR f.id = a.mother) SELECT * FROM ancestors


-- VALUES, TABLE, DO, HANDLER
-- expect: Read
VALUES (1, 'a'), (2, 'b')

-- expect: Read
VALUES ROW(1, 2), ROW(3, 4)

-- expect: Read
TABLE t1

-- expect: Read
TABLE t1 ORDER BY a LIMIT 3

-- expect: Read
DO 1 + 1

-- expect: Read
DO SLEEP(5)

-- expect: Read GET_LOCK
DO GET_LOCK('job', 0)

-- expect: Read RELEASE_LOCK
DO RELEASE_LOCK('job')

-- expect: Read HANDLER
HANDLER t1 OPEN

-- expect: Read HANDLER
HANDLER t1 OPEN AS h

-- expect: Read HANDLER
HANDLER h READ `PRIMARY` FIRST

-- expect: Read HANDLER
HANDLER h READ `PRIMARY` NEXT

-- expect: Read HANDLER
HANDLER t1 READ a = (5) LIMIT 10

-- expect: Read HANDLER
HANDLER h READ NEXT WHERE a > 3

-- expect: Read HANDLER
HANDLER h CLOSE


-- INSERT / REPLACE
-- expect: Write
INSERT INTO t1 (a, b, c) VALUES (1, 2, 3)

-- expect: Write
INSERT INTO t1 VALUES (1,2,3),(4,5,6),(7,8,9)

-- expect: Write
INSERT t1 SET a = 1, b = 2

-- expect: Write
INSERT INTO t1 (a) SELECT b FROM t2 WHERE c > 0

-- expect: Write FOR_UPDATE
INSERT INTO t1 SELECT * FROM t2 FOR UPDATE

-- expect: Write
INSERT LOW_PRIORITY INTO t1 VALUES (1)

-- expect: Write
INSERT DELAYED INTO log VALUES ('x')

-- expect: Write
INSERT HIGH_PRIORITY IGNORE INTO t1 VALUES (1)

-- expect: Write
INSERT INTO t1 (a, b) VALUES (1, 2) ON DUPLICATE KEY UPDATE b = b + 1

-- expect: Write
INSERT INTO t1 (a, b) VALUES (1, 2), (3, 4) AS new(m, n) ON DUPLICATE KEY UPDATE b = m + n

-- expect: Write
INSERT INTO t1 PARTITION (p0) VALUES (1, 'a')

-- expect: Write
INSERT INTO t2 (id) VALUES (1), (2) RETURNING id, id * 2 AS twice

-- expect: Write
INSERT INTO t1 VALUES (DEFAULT, 'x')

-- expect: Write NON_DETERMINISTIC
INSERT INTO log (msg, at) VALUES ('boot', NOW())

-- expect: Write NON_DETERMINISTIC
INSERT INTO items (uid, name) VALUES (UUID(), 'pen')

-- expect: Write NON_DETERMINISTIC
INSERT INTO samples SELECT id, RAND() FROM t1

-- expect: Write NON_DETERMINISTIC
INSERT INTO t (created) VALUES (CURRENT_TIMESTAMP)

-- expect: Write USER_VARIABLE
INSERT INTO t1 VALUES (@a, @b)

-- expect: Write LAST_INSERT_ID
INSERT INTO order_lines (order_id, sku) VALUES (LAST_INSERT_ID(), 'A-1')

-- expect: Write
REPLACE INTO t1 VALUES (1, 'Old', '2014-08-20 18:47:00')

-- expect: Write
REPLACE t1 SET id = 2, name = 'New'

-- expect: Write
REPLACE INTO t2 SELECT * FROM t1 WHERE id < 10

-- expect: Write
REPLACE INTO t1 VALUES (1, 'x') RETURNING id


-- UPDATE / DELETE
-- expect: Write
UPDATE t1 SET a = a + 1

-- expect: Write
UPDATE LOW_PRIORITY IGNORE t1 SET a = 2 WHERE b = 3 ORDER BY id LIMIT 10

-- expect: Write
UPDATE items, month SET items.price = month.price WHERE items.id = month.id

-- expect: Write
UPDATE t1 JOIN t2 ON t1.id = t2.id SET t1.v = t2.v WHERE t2.flag = 1

-- expect: Write
UPDATE t1 SET c = (SELECT MAX(c) FROM t2 WHERE t2.id = t1.id)

-- expect: Write FOR_UPDATE
UPDATE t1 SET v = 'x' WHERE id IN (SELECT id FROM t2 FOR UPDATE)

-- expect: Write NON_DETERMINISTIC
UPDATE accounts SET last_login = NOW() WHERE id = 5

-- expect: Write NON_DETERMINISTIC
UPDATE t SET token = UUID() WHERE token IS NULL

-- expect: Write USER_VARIABLE
UPDATE t SET pos = (@p := @p + 1) ORDER BY score DESC

-- expect: Write LAST_INSERT_ID
UPDATE sequence SET id = LAST_INSERT_ID(id + 1)

-- expect: Write
DELETE FROM t1 WHERE a = 1

-- expect: Write
DELETE LOW_PRIORITY QUICK IGNORE FROM t1 WHERE a > 10 ORDER BY a LIMIT 5

-- expect: Write
DELETE t1, t2 FROM t1 INNER JOIN t2 INNER JOIN t3 WHERE t1.id = t2.id AND t2.id = t3.id

-- expect: Write
DELETE FROM t1, t2 USING t1 INNER JOIN t2 INNER JOIN t3 WHERE t1.id = t2.id AND t2.id = t3.id

-- expect: Write
DELETE FROM t1 WHERE c IN (SELECT c FROM t2) RETURNING *

-- expect: Write
DELETE FROM t PARTITION (p1) WHERE a < 3

-- expect: Write NON_DETERMINISTIC
DELETE FROM sessions WHERE expires < UNIX_TIMESTAMP()

-- expect: Write NON_DETERMINISTIC
DELETE FROM t1 ORDER BY RAND() LIMIT 1


-- LOAD DATA / LOAD XML
-- expect: LoadData
LOAD DATA INFILE '/tmp/data.txt' INTO TABLE t1 FIELDS TERMINATED BY ',' LINES TERMINATED BY '\n' IGNORE 1 LINES

-- expect: LoadData USER_VARIABLE
LOAD DATA LOCAL INFILE '/home/user/data.csv' INTO TABLE t1 FIELDS TERMINATED BY ',' ENCLOSED BY '"' (a, b, @c) SET c = UPPER(@c)

-- expect: LoadData
LOAD DATA LOW_PRIORITY INFILE 'x.txt' REPLACE INTO TABLE t1

-- expect: LoadData
LOAD DATA CONCURRENT LOCAL INFILE 'x.txt' IGNORE INTO TABLE t1 CHARACTER SET utf8mb4

-- expect: LoadData
LOAD XML LOCAL INFILE 'person.xml' INTO TABLE person ROWS IDENTIFIED BY '<person>'

-- expect: LoadData
load data local infile 'orders.tsv' into table orders


-- SQL-level prepared statements
-- expect: Prepare
PREPARE stmt1 FROM 'SELECT SQRT(POW(?,2) + POW(?,2)) AS hypotenuse'

-- expect: Prepare USER_VARIABLE
PREPARE stmt2 FROM @s

-- expect: Execute USER_VARIABLE
EXECUTE stmt1 USING @a, @b

-- expect: Execute
EXECUTE stmt1

-- expect: Execute
EXECUTE stmt1 USING 3, 4

-- expect: Execute
EXECUTE IMMEDIATE 'SELECT 1'

-- expect: Execute USER_VARIABLE
EXECUTE IMMEDIATE CONCAT('SELECT COUNT(*) FROM ', @tbl)

-- expect: Deallocate
DEALLOCATE PREPARE stmt1

-- expect: Deallocate
DROP PREPARE stmt2

-- expect: Call
CALL p()

-- expect: Call
CALL refresh_totals(7)

-- expect: Call USER_VARIABLE
CALL get_count('orders', @n)

-- expect: Call
CALL sys.ps_setup_show_enabled(TRUE, TRUE)

-- expect: Call
call shop.daily_rollup

-- expect: Show USER_VARIABLE DIAGNOSTICS
GET DIAGNOSTICS @n = NUMBER

-- expect: Show USER_VARIABLE DIAGNOSTICS
GET DIAGNOSTICS CONDITION 1 @p1 = RETURNED_SQLSTATE, @p2 = MESSAGE_TEXT

-- expect: Unknown
SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'nope'
