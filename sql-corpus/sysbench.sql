-- sysbench 1.0 oltp_*.lua (oltp_common.lua), select_random_*, bulk_insert, and
-- Percona sysbench-tpcc, as sent with --db-ps-mode=disable (values inlined) and as
-- prepared (placeholders). Values vary as in a real run; shapes are sysbench's.

-- oltp_common.lua prepare: tables and secondary index
-- expect: Ddl
CREATE TABLE sbtest1(
  id INTEGER NOT NULL AUTO_INCREMENT,
  k INTEGER DEFAULT '0' NOT NULL,
  c CHAR(120) DEFAULT '' NOT NULL,
  pad CHAR(60) DEFAULT '' NOT NULL,
  PRIMARY KEY (id)
) /*! ENGINE = innodb */ 

-- expect: Ddl
CREATE TABLE sbtest2(
  id INTEGER NOT NULL AUTO_INCREMENT,
  k INTEGER DEFAULT '0' NOT NULL,
  c CHAR(120) DEFAULT '' NOT NULL,
  pad CHAR(60) DEFAULT '' NOT NULL,
  PRIMARY KEY (id)
) /*! ENGINE = innodb */ 

-- expect: Ddl
CREATE TABLE sbtest3(
  id INTEGER NOT NULL AUTO_INCREMENT,
  k INTEGER DEFAULT '0' NOT NULL,
  c CHAR(120) DEFAULT '' NOT NULL,
  pad CHAR(60) DEFAULT '' NOT NULL,
  PRIMARY KEY (id)
) /*! ENGINE = innodb */ 

-- expect: Ddl
CREATE TABLE sbtest4(
  id INTEGER NOT NULL AUTO_INCREMENT,
  k INTEGER DEFAULT '0' NOT NULL,
  c CHAR(120) DEFAULT '' NOT NULL,
  pad CHAR(60) DEFAULT '' NOT NULL,
  PRIMARY KEY (id)
) /*! ENGINE = innodb */ 

-- expect: Ddl
CREATE TABLE sbtest5(
  id INTEGER NOT NULL AUTO_INCREMENT,
  k INTEGER DEFAULT '0' NOT NULL,
  c CHAR(120) DEFAULT '' NOT NULL,
  pad CHAR(60) DEFAULT '' NOT NULL,
  PRIMARY KEY (id)
) /*! ENGINE = innodb */ MAX_ROWS = 1000000 

-- expect: Write
INSERT INTO sbtest1(k, c, pad) VALUES(42446, '26018159083-01661318609-13909960308-24628194821-99351819093-78657975432-31948757491-18625276018-95559797114-71049746507', '52917034236-67127684268-46563212233-07924402685-99528907866'),(52295, '61760313721-59010928159-01396245957-11777741215-47280385280-84148525388-85393363387-50047439575-51313735379-90751163726', '51676122202-97299752882-00182633043-48395486205-79868282880'),(57689, '29022279180-58887180334-01878017598-98347887838-48372616751-36134125242-73167232686-56355150587-70658948113-11440242646', '28897514026-14014193141-70586492083-12402344834-78245040008'),(72228, '38737167868-43353265020-14620168493-40722470455-85304352056-17483380141-26906044319-82965724920-86828890931-00251678008', '37407188181-74143337761-74093192544-99207074137-48477718341')

-- expect: Ddl
CREATE INDEX k_1 ON sbtest1(k)

-- expect: Write
INSERT INTO sbtest2(k, c, pad) VALUES(61990, '04718746331-91284529841-53776020776-42656515055-61304451669-15640410423-46853560688-31067924708-22765444463-47861221387', '83757628331-25815354930-66683645074-95288314366-76402067970'),(9587, '68773132281-71800239042-48611148936-43900847453-78383064003-76143653705-65630481373-43373441979-23760926030-92600267511', '25328704655-72101415618-36546107358-73557063606-07104319554'),(43906, '90454409103-17764672720-42935575918-36236107885-26114913167-72326793814-44945443732-33249351643-88317010737-50431039931', '58279401995-30552034093-05652941307-87161682812-64644604956'),(54585, '05366306261-16957220082-61995822542-82116734207-50961923969-37293068265-12330805169-78464936657-87200977379-72761125651', '78800215810-86201913274-23159425947-24873949835-50326245624')

-- expect: Ddl
CREATE INDEX k_2 ON sbtest2(k)

-- expect: Write
INSERT INTO sbtest3(k, c, pad) VALUES(15084, '80578891486-54659255173-29048449500-32496685027-39000095418-58369492359-72203271124-64008599798-73200080623-20109832638', '98692841407-80667172314-30154048684-43180243325-36593687780'),(3476, '63943699192-20011925200-02010195381-61333100147-12134556405-44055987490-60681570893-19426083400-57172795849-24337211781', '55166160534-46882637289-90595827852-77493257383-44922359852'),(30961, '53412136224-46431143670-06638470249-60369963932-17654163624-67709682506-71048323851-97837805856-73268195044-66001665941', '34683673221-37832567482-75346462704-53457769152-46019528590'),(86155, '03144919232-75236829918-43738171814-63277807727-37289025797-47566125009-05187720362-51557883465-64804457658-48537153542', '91068689064-10037908896-92913072120-61052484426-05069907980')

-- expect: Ddl
CREATE INDEX k_3 ON sbtest3(k)

-- expect: Ddl
DROP TABLE IF EXISTS sbtest1

-- expect: Ddl
DROP TABLE IF EXISTS sbtest2

-- expect: Ddl
DROP TABLE IF EXISTS sbtest3

-- expect: Ddl
DROP TABLE IF EXISTS sbtest4

-- expect: Ddl
DROP TABLE IF EXISTS sbtest5

-- expect: Write
INSERT INTO sbtest1(id, k, c, pad) VALUES(1, 15578, '69671069927-68117320600-11312704937-20521487740-00009164492-79055977221-52676749544-09959029496-36669374054-46290429248', '75818876334-90673490678-18513698485-78933331245-99568230751'),(2, 48716, '71259054890-10397993446-17992405326-10008577196-11459318627-25332045080-04870125034-99717554615-76273207302-31952716017', '55371525302-78272466320-49452471577-12803874143-56433164620'),(3, 95221, '42078582708-42560634922-28323911974-23293943018-60855471067-24329502599-05878115356-90417780882-03139221448-00134099783', '71512041779-84111628933-29762066998-06055635695-68058253605')

-- oltp_read_only / oltp_read_write / oltp_point_select, values inlined
-- expect: Read
SELECT c FROM sbtest4 WHERE id=556583

-- expect: Read
SELECT c FROM sbtest6 WHERE id=72629

-- expect: Read
SELECT c FROM sbtest11 WHERE id=454076

-- expect: Read
SELECT c FROM sbtest7 WHERE id=529295

-- expect: Read
SELECT c FROM sbtest1 WHERE id=236432

-- expect: Read
SELECT c FROM sbtest5 WHERE id=441166

-- expect: Read
SELECT c FROM sbtest13 WHERE id=814303

-- expect: Read
SELECT c FROM sbtest15 WHERE id=663971

-- expect: Read
SELECT c FROM sbtest2 WHERE id=848580

-- expect: Read
SELECT c FROM sbtest2 WHERE id=36044

-- expect: Read
SELECT c FROM sbtest9 WHERE id=962519

-- expect: Read
SELECT c FROM sbtest9 WHERE id=658768

-- expect: Read
SELECT c FROM sbtest2 WHERE id BETWEEN 651437 AND 651536

-- expect: Read
SELECT SUM(k) FROM sbtest2 WHERE id BETWEEN 651437 AND 651536

-- expect: Read
SELECT c FROM sbtest2 WHERE id BETWEEN 651437 AND 651536 ORDER BY c

-- expect: Read
SELECT DISTINCT c FROM sbtest2 WHERE id BETWEEN 651437 AND 651536 ORDER BY c

-- expect: Read
SELECT c FROM sbtest4 WHERE id BETWEEN 262754 AND 262853

-- expect: Read
SELECT SUM(k) FROM sbtest4 WHERE id BETWEEN 262754 AND 262853

-- expect: Read
SELECT c FROM sbtest4 WHERE id BETWEEN 262754 AND 262853 ORDER BY c

-- expect: Read
SELECT DISTINCT c FROM sbtest4 WHERE id BETWEEN 262754 AND 262853 ORDER BY c

-- expect: Read
SELECT c FROM sbtest4 WHERE id BETWEEN 545580 AND 545679

-- expect: Read
SELECT SUM(k) FROM sbtest4 WHERE id BETWEEN 545580 AND 545679

-- expect: Read
SELECT c FROM sbtest4 WHERE id BETWEEN 545580 AND 545679 ORDER BY c

-- expect: Read
SELECT DISTINCT c FROM sbtest4 WHERE id BETWEEN 545580 AND 545679 ORDER BY c

-- expect: Read
SELECT c FROM sbtest1 WHERE id BETWEEN 454759 AND 454858

-- expect: Read
SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN 454759 AND 454858

-- expect: Read
SELECT c FROM sbtest1 WHERE id BETWEEN 454759 AND 454858 ORDER BY c

-- expect: Read
SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 454759 AND 454858 ORDER BY c

-- expect: Read
SELECT c FROM sbtest8 WHERE id BETWEEN 997056 AND 997155

-- expect: Read
SELECT SUM(k) FROM sbtest8 WHERE id BETWEEN 997056 AND 997155

-- expect: Read
SELECT c FROM sbtest8 WHERE id BETWEEN 997056 AND 997155 ORDER BY c

-- expect: Read
SELECT DISTINCT c FROM sbtest8 WHERE id BETWEEN 997056 AND 997155 ORDER BY c

-- expect: Read
SELECT c FROM sbtest2 WHERE id BETWEEN 301490 AND 301589

-- expect: Read
SELECT SUM(k) FROM sbtest2 WHERE id BETWEEN 301490 AND 301589

-- expect: Read
SELECT c FROM sbtest2 WHERE id BETWEEN 301490 AND 301589 ORDER BY c

-- expect: Read
SELECT DISTINCT c FROM sbtest2 WHERE id BETWEEN 301490 AND 301589 ORDER BY c

-- expect: TxnBegin
BEGIN

-- expect: TxnCommit
COMMIT

-- expect: TxnBegin
BEGIN

-- expect: TxnCommit
COMMIT

-- expect: TxnBegin
BEGIN

-- expect: TxnCommit
COMMIT

-- expect: TxnBegin
BEGIN

-- expect: TxnCommit
COMMIT

-- expect: TxnBegin
BEGIN

-- expect: TxnCommit
COMMIT

-- expect: TxnBegin
BEGIN

-- expect: TxnCommit
COMMIT

-- expect: TxnBegin
BEGIN

-- expect: TxnCommit
COMMIT

-- expect: TxnBegin
BEGIN

-- expect: TxnCommit
COMMIT

-- expect: Write
UPDATE sbtest4 SET k=k+1 WHERE id=320248

-- expect: Write
UPDATE sbtest4 SET c='52109841798-27182469443-18479936385-78497740353-38869605235-85744340028-19570867518-32655239948-17426106891-76926499167' WHERE id=320248

-- expect: Write
DELETE FROM sbtest4 WHERE id=320248

-- expect: Write
INSERT INTO sbtest4 (id, k, c, pad) VALUES (320248, 726290, '74545688965-07674284269-69315593536-00049748489-68866750957-01831658689-23676799581-25551482145-86284838362-09915906004', '80461900327-89488293691-22881011287-79600952354-20419153796')

-- expect: Write
UPDATE sbtest1 SET k=k+1 WHERE id=57335

-- expect: Write
UPDATE sbtest1 SET c='36907093330-29250746947-13693646703-12256204685-15865611658-36374536040-52321348287-73255366934-78337249795-83698321818' WHERE id=57335

-- expect: Write
DELETE FROM sbtest1 WHERE id=57335

-- expect: Write
INSERT INTO sbtest1 (id, k, c, pad) VALUES (57335, 893238, '46092406123-53118584314-13426456724-20556073651-24149306092-63426084293-97846950140-99031053516-69348156758-78036827308', '42823843025-56134227733-08725422993-51862297631-40573004431')

-- expect: Write
UPDATE sbtest10 SET k=k+1 WHERE id=469782

-- expect: Write
UPDATE sbtest10 SET c='12577954281-00771594176-73850514943-12006245282-14956255352-85430019603-76724991232-27610773350-09862410865-17022640795' WHERE id=469782

-- expect: Write
DELETE FROM sbtest10 WHERE id=469782

-- expect: Write
INSERT INTO sbtest10 (id, k, c, pad) VALUES (469782, 595083, '37185876826-99105949965-72458033712-95896583976-41323813413-84738738918-99161728881-81768239712-59063050093-74126193915', '25504135885-70951585910-34537097107-11422846294-84700527870')

-- expect: Write
UPDATE sbtest2 SET k=k+1 WHERE id=78228

-- expect: Write
UPDATE sbtest2 SET c='29967276398-15583429903-25759765505-97530379022-46418459989-20813691543-21455835865-05578533522-30767694291-24449851391' WHERE id=78228

-- expect: Write
DELETE FROM sbtest2 WHERE id=78228

-- expect: Write
INSERT INTO sbtest2 (id, k, c, pad) VALUES (78228, 613337, '24957561752-44802430306-73948133029-01195203480-50355076952-06019579647-00595069521-02328155658-98299539470-48784588424', '08715236109-21088382495-22280537735-67350101650-39666304046')

-- expect: Write
UPDATE sbtest8 SET k=k+1 WHERE id=242621

-- expect: Write
UPDATE sbtest8 SET c='53564473927-42441507325-99739035072-62401202428-51276165650-93300289396-10051117286-02382881857-15331420441-03806854050' WHERE id=242621

-- expect: Write
DELETE FROM sbtest8 WHERE id=242621

-- expect: Write
INSERT INTO sbtest8 (id, k, c, pad) VALUES (242621, 684841, '78485646658-66266620398-49633119006-85785790778-59863651684-95183944758-97932185838-25322720565-61624615588-47146471772', '82025783958-56408309409-24845434718-71326495076-50466945369')

-- expect: Write
UPDATE sbtest5 SET k=k+1 WHERE id=969741

-- expect: Write
UPDATE sbtest5 SET c='93951351176-68670199776-67217672803-36804856711-31901713970-35708692602-55380284841-56448686044-36684432038-57792553780' WHERE id=969741

-- expect: Write
DELETE FROM sbtest5 WHERE id=969741

-- expect: Write
INSERT INTO sbtest5 (id, k, c, pad) VALUES (969741, 764685, '50816950437-43399767330-26102197208-27343822381-71310634762-02027439582-44583236056-24381372265-61051388147-50713744998', '13274394099-10532402557-73552141871-81296700089-16269515252')

-- the same statements prepared (--db-ps-mode=auto): COM_STMT_PREPARE text
-- expect: Read
SELECT c FROM sbtest1 WHERE id=?

-- expect: Read
SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ?

-- expect: Read
SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN ? AND ?

-- expect: Read
SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c

-- expect: Read
SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c

-- expect: Write
UPDATE sbtest1 SET k=k+1 WHERE id=?

-- expect: Write
UPDATE sbtest1 SET c=? WHERE id=?

-- expect: Write
DELETE FROM sbtest1 WHERE id=?

-- expect: Write
INSERT INTO sbtest1 (id, k, c, pad) VALUES (?, ?, ?, ?)

-- select_random_points.lua / select_random_ranges.lua
-- expect: Read
SELECT id, k, c, pad
          FROM sbtest1
          WHERE k IN (694940, 987283, 94410, 347741, 5193, 883212, 676084, 915862, 877426, 503576)

-- expect: Read
SELECT id, k, c, pad
          FROM sbtest1
          WHERE k IN (318121, 156277, 273973, 98580, 111711, 921763, 250316, 122758, 160512, 520229)

-- expect: Read
SELECT id, k, c, pad
          FROM sbtest1
          WHERE k IN (283608, 562023, 567327, 123295, 340024, 490539, 257919, 171995, 595984, 561479)

-- expect: Read
SELECT id, k, c, pad
          FROM sbtest1
          WHERE k IN (44107, 531401, 268674, 384722, 995513, 207318, 297255, 423330, 582266, 213342)

-- expect: Read
SELECT id, k, c, pad
          FROM sbtest1
          WHERE k IN (133289, 952529, 251538, 761876, 913863, 560773, 526172, 251288, 933872, 99609)

-- expect: Read
SELECT count(k)
          FROM sbtest1
          WHERE k BETWEEN 1981 AND 1986 OR k BETWEEN 13862 AND 13867 OR k BETWEEN 7034 AND 7039 OR k BETWEEN 64016 AND 64021 OR k BETWEEN 91936 AND 91941 OR k BETWEEN 74765 AND 74770 OR k BETWEEN 27648 AND 27653 OR k BETWEEN 90304 AND 90309 OR k BETWEEN 97479 AND 97484 OR k BETWEEN 30050 AND 30055

-- expect: Read
SELECT count(k)
          FROM sbtest1
          WHERE k BETWEEN 11409 AND 11414 OR k BETWEEN 98310 AND 98315 OR k BETWEEN 22450 AND 22455 OR k BETWEEN 20141 AND 20146 OR k BETWEEN 34626 AND 34631 OR k BETWEEN 4053 AND 4058 OR k BETWEEN 55575 AND 55580 OR k BETWEEN 51547 AND 51552 OR k BETWEEN 81821 AND 81826 OR k BETWEEN 67911 AND 67916

-- expect: Read
SELECT count(k)
          FROM sbtest1
          WHERE k BETWEEN 14368 AND 14373 OR k BETWEEN 38268 AND 38273 OR k BETWEEN 74687 AND 74692 OR k BETWEEN 15828 AND 15833 OR k BETWEEN 11053 AND 11058 OR k BETWEEN 87018 AND 87023 OR k BETWEEN 75828 AND 75833 OR k BETWEEN 28525 AND 28530 OR k BETWEEN 30661 AND 30666 OR k BETWEEN 31924 AND 31929

-- expect: Read
SELECT count(k)
          FROM sbtest1
          WHERE k BETWEEN 78027 AND 78032 OR k BETWEEN 67233 AND 67238 OR k BETWEEN 93165 AND 93170 OR k BETWEEN 8145 AND 8150 OR k BETWEEN 32211 AND 32216 OR k BETWEEN 9576 AND 9581 OR k BETWEEN 78536 AND 78541 OR k BETWEEN 44210 AND 44215 OR k BETWEEN 12855 AND 12860 OR k BETWEEN 5404 AND 5409

-- bulk_insert.lua
-- expect: Ddl
CREATE TABLE IF NOT EXISTS sbtest1 (
id INTEGER NOT NULL,
k INTEGER DEFAULT '0' NOT NULL,
PRIMARY KEY (id))

-- expect: Write
INSERT INTO sbtest1 VALUES(1,1),(2,2),(3,3),(4,4),(5,5)

-- expect: Write
INSERT INTO sbtest1 VALUES(6,6),(7,7),(8,8),(9,9),(10,10)

-- expect: Write
INSERT INTO sbtest1 VALUES(11,11),(12,12),(13,13),(14,14),(15,15)

-- sysbench-tpcc (Percona): new order, payment, order status, delivery, stock level
-- expect: TxnBegin
BEGIN

-- expect: Read
SELECT c_discount, c_last, c_credit, w_tax
  FROM customer1, warehouse1
 WHERE w_id = 4 AND c_w_id = w_id AND c_d_id = 10 AND c_id = 2834

-- expect: LockingRead FOR_UPDATE
SELECT d_next_o_id, d_tax 
  FROM district1 
 WHERE d_w_id = 4 AND d_id = 10 FOR UPDATE

-- expect: Write
UPDATE district1
   SET d_next_o_id = 4432
 WHERE d_id = 10 AND d_w_id= 4

-- expect: Write NON_DETERMINISTIC
INSERT INTO orders1
 (o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_ol_cnt, o_all_local)
 VALUES (6702,9,8,1908,NOW(),13,1)

-- expect: Write
INSERT INTO new_orders1 (no_o_id, no_d_id, no_w_id)
  VALUES (3689,10,4)

-- expect: Read
SELECT i_price, i_name, i_data 
  FROM item1
 WHERE i_id = 99504

-- expect: LockingRead FOR_UPDATE
SELECT s_quantity, s_data, s_dist_10 s_dist 
  FROM stock1  
 WHERE s_i_id = 60528 AND s_w_id= 4 FOR UPDATE

-- expect: Write
UPDATE stock1
   SET s_quantity = 85
 WHERE s_i_id = 23961
   AND s_w_id= 4

-- expect: Write
INSERT INTO order_line1
                                 (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, ol_supply_w_id, ol_quantity, ol_amount, ol_dist_info)
  VALUES (3089,10,4,1,41613,4,5,94.03,'ggabdciccfcdddfbahahifbj')

-- expect: TxnCommit
COMMIT

-- expect: Write
UPDATE warehouse1
  SET w_ytd = w_ytd + 514
 WHERE w_id = 4

-- expect: Read
SELECT w_street_1, w_street_2, w_city, w_state, w_zip, w_name
  FROM warehouse1
 WHERE w_id = 4

-- expect: LockingRead FOR_SHARE
SELECT count(c_id) namecnt
  FROM customer1
 WHERE c_w_id = 4 AND c_d_id= 10
   AND c_last='OUGHTABLEPRI' LOCK IN SHARE MODE

-- expect: LockingRead FOR_UPDATE
SELECT c_first, c_middle, c_last, c_street_1,
       c_street_2, c_city, c_state, c_zip, c_phone,
       c_credit, c_credit_lim, c_discount, c_balance, c_ytd_payment, c_since
  FROM customer1
 WHERE c_w_id = 4 AND c_d_id= 10 AND c_id=2834 FOR UPDATE

-- expect: LockingRead FOR_UPDATE
SELECT no_o_id
  FROM new_orders1 
 WHERE no_d_id = 10
   AND no_w_id = 4 
 ORDER BY no_o_id ASC LIMIT 1 FOR UPDATE SKIP LOCKED

-- expect: Write
DELETE FROM new_orders1
 WHERE no_o_id = 2304 AND no_d_id = 10 AND no_w_id = 4

-- expect: Write NON_DETERMINISTIC
UPDATE order_line1 
   SET ol_delivery_d = NOW()
 WHERE ol_o_id = 2924 AND ol_d_id = 4 AND ol_w_id = 10

-- expect: Read
SELECT COUNT(DISTINCT (s.s_i_id))
  FROM order_line1 AS ol, stock1 AS s
 WHERE ol.ol_w_id = 4 AND ol.ol_d_id = 10
   AND ol.ol_o_id < 3640 AND ol.ol_o_id >= 2812
   AND s.s_w_id= 4 AND s.s_i_id=ol.ol_i_id AND s.s_quantity < 15

-- expect: TxnRollback
ROLLBACK

-- expect: LockingRead FOR_SHARE
SELECT o_id, o_carrier_id, o_entry_d
  FROM orders1
 WHERE o_w_id = 4 AND o_d_id = 10 AND o_c_id = 2834
 ORDER BY o_id DESC LIMIT 1 FOR SHARE

-- expect: TxnBegin
BEGIN

-- expect: Read
SELECT c_discount, c_last, c_credit, w_tax
  FROM customer2, warehouse2
 WHERE w_id = 7 AND c_w_id = w_id AND c_d_id = 2 AND c_id = 2667

-- expect: LockingRead FOR_UPDATE
SELECT d_next_o_id, d_tax 
  FROM district2 
 WHERE d_w_id = 7 AND d_id = 2 FOR UPDATE

-- expect: Write
UPDATE district2
   SET d_next_o_id = 8878
 WHERE d_id = 2 AND d_w_id= 7

-- expect: Write NON_DETERMINISTIC
INSERT INTO orders2
 (o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_ol_cnt, o_all_local)
 VALUES (8030,8,9,2580,NOW(),7,1)

-- expect: Write
INSERT INTO new_orders2 (no_o_id, no_d_id, no_w_id)
  VALUES (4329,2,7)

-- expect: Read
SELECT i_price, i_name, i_data 
  FROM item2
 WHERE i_id = 64561

-- expect: LockingRead FOR_UPDATE
SELECT s_quantity, s_data, s_dist_02 s_dist 
  FROM stock2  
 WHERE s_i_id = 88175 AND s_w_id= 7 FOR UPDATE

-- expect: Write
UPDATE stock2
   SET s_quantity = 73
 WHERE s_i_id = 17688
   AND s_w_id= 7

-- expect: Write
INSERT INTO order_line2
                                 (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, ol_supply_w_id, ol_quantity, ol_amount, ol_dist_info)
  VALUES (5125,2,7,1,90922,7,5,93.71,'ahjcggiejibbedddjhidhjag')

-- expect: TxnCommit
COMMIT

-- expect: Write
UPDATE warehouse2
  SET w_ytd = w_ytd + 3235
 WHERE w_id = 7

-- expect: Read
SELECT w_street_1, w_street_2, w_city, w_state, w_zip, w_name
  FROM warehouse2
 WHERE w_id = 7

-- expect: LockingRead FOR_SHARE
SELECT count(c_id) namecnt
  FROM customer2
 WHERE c_w_id = 7 AND c_d_id= 2
   AND c_last='OUGHTABLEPRI' LOCK IN SHARE MODE

-- expect: LockingRead FOR_UPDATE
SELECT c_first, c_middle, c_last, c_street_1,
       c_street_2, c_city, c_state, c_zip, c_phone,
       c_credit, c_credit_lim, c_discount, c_balance, c_ytd_payment, c_since
  FROM customer2
 WHERE c_w_id = 7 AND c_d_id= 2 AND c_id=2667 FOR UPDATE

-- expect: LockingRead FOR_UPDATE
SELECT no_o_id
  FROM new_orders2 
 WHERE no_d_id = 2
   AND no_w_id = 7 
 ORDER BY no_o_id ASC LIMIT 1 FOR UPDATE SKIP LOCKED

-- expect: Write
DELETE FROM new_orders2
 WHERE no_o_id = 2913 AND no_d_id = 2 AND no_w_id = 7

-- expect: Write NON_DETERMINISTIC
UPDATE order_line2 
   SET ol_delivery_d = NOW()
 WHERE ol_o_id = 2246 AND ol_d_id = 8 AND ol_w_id = 2

-- expect: Read
SELECT COUNT(DISTINCT (s.s_i_id))
  FROM order_line2 AS ol, stock2 AS s
 WHERE ol.ol_w_id = 7 AND ol.ol_d_id = 2
   AND ol.ol_o_id < 3699 AND ol.ol_o_id >= 2998
   AND s.s_w_id= 7 AND s.s_i_id=ol.ol_i_id AND s.s_quantity < 15

-- expect: TxnRollback
ROLLBACK

-- expect: LockingRead FOR_SHARE
SELECT o_id, o_carrier_id, o_entry_d
  FROM orders2
 WHERE o_w_id = 7 AND o_d_id = 2 AND o_c_id = 2667
 ORDER BY o_id DESC LIMIT 1 FOR SHARE

-- expect: TxnBegin
BEGIN

-- expect: Read
SELECT c_discount, c_last, c_credit, w_tax
  FROM customer3, warehouse3
 WHERE w_id = 7 AND c_w_id = w_id AND c_d_id = 7 AND c_id = 357

-- expect: LockingRead FOR_UPDATE
SELECT d_next_o_id, d_tax 
  FROM district3 
 WHERE d_w_id = 7 AND d_id = 7 FOR UPDATE

-- expect: Write
UPDATE district3
   SET d_next_o_id = 4871
 WHERE d_id = 7 AND d_w_id= 7

-- expect: Write NON_DETERMINISTIC
INSERT INTO orders3
 (o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_ol_cnt, o_all_local)
 VALUES (8198,9,2,2841,NOW(),5,1)

-- expect: Write
INSERT INTO new_orders3 (no_o_id, no_d_id, no_w_id)
  VALUES (5782,7,7)

-- expect: Read
SELECT i_price, i_name, i_data 
  FROM item3
 WHERE i_id = 86938

-- expect: LockingRead FOR_UPDATE
SELECT s_quantity, s_data, s_dist_07 s_dist 
  FROM stock3  
 WHERE s_i_id = 77971 AND s_w_id= 7 FOR UPDATE

-- expect: Write
UPDATE stock3
   SET s_quantity = 64
 WHERE s_i_id = 39946
   AND s_w_id= 7

-- expect: Write
INSERT INTO order_line3
                                 (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, ol_supply_w_id, ol_quantity, ol_amount, ol_dist_info)
  VALUES (3037,7,7,1,39384,7,5,48.91,'abhggjehcfidbfghjaefbech')

-- expect: TxnCommit
COMMIT

-- expect: Write
UPDATE warehouse3
  SET w_ytd = w_ytd + 3338
 WHERE w_id = 7

-- expect: Read
SELECT w_street_1, w_street_2, w_city, w_state, w_zip, w_name
  FROM warehouse3
 WHERE w_id = 7

-- expect: LockingRead FOR_SHARE
SELECT count(c_id) namecnt
  FROM customer3
 WHERE c_w_id = 7 AND c_d_id= 7
   AND c_last='OUGHTABLEPRI' LOCK IN SHARE MODE

-- expect: LockingRead FOR_UPDATE
SELECT c_first, c_middle, c_last, c_street_1,
       c_street_2, c_city, c_state, c_zip, c_phone,
       c_credit, c_credit_lim, c_discount, c_balance, c_ytd_payment, c_since
  FROM customer3
 WHERE c_w_id = 7 AND c_d_id= 7 AND c_id=357 FOR UPDATE

-- expect: LockingRead FOR_UPDATE
SELECT no_o_id
  FROM new_orders3 
 WHERE no_d_id = 7
   AND no_w_id = 7 
 ORDER BY no_o_id ASC LIMIT 1 FOR UPDATE SKIP LOCKED

-- expect: Write
DELETE FROM new_orders3
 WHERE no_o_id = 2777 AND no_d_id = 7 AND no_w_id = 7

-- expect: Write NON_DETERMINISTIC
UPDATE order_line3 
   SET ol_delivery_d = NOW()
 WHERE ol_o_id = 2770 AND ol_d_id = 7 AND ol_w_id = 10

-- expect: Read
SELECT COUNT(DISTINCT (s.s_i_id))
  FROM order_line3 AS ol, stock3 AS s
 WHERE ol.ol_w_id = 7 AND ol.ol_d_id = 7
   AND ol.ol_o_id < 3826 AND ol.ol_o_id >= 2861
   AND s.s_w_id= 7 AND s.s_i_id=ol.ol_i_id AND s.s_quantity < 11

-- expect: TxnRollback
ROLLBACK

-- expect: LockingRead FOR_SHARE
SELECT o_id, o_carrier_id, o_entry_d
  FROM orders3
 WHERE o_w_id = 7 AND o_d_id = 7 AND o_c_id = 357
 ORDER BY o_id DESC LIMIT 1 FOR SHARE

-- expect: TxnBegin
BEGIN

-- expect: Read
SELECT c_discount, c_last, c_credit, w_tax
  FROM customer4, warehouse4
 WHERE w_id = 4 AND c_w_id = w_id AND c_d_id = 1 AND c_id = 1539

-- expect: LockingRead FOR_UPDATE
SELECT d_next_o_id, d_tax 
  FROM district4 
 WHERE d_w_id = 4 AND d_id = 1 FOR UPDATE

-- expect: Write
UPDATE district4
   SET d_next_o_id = 4509
 WHERE d_id = 1 AND d_w_id= 4

-- expect: Write NON_DETERMINISTIC
INSERT INTO orders4
 (o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_ol_cnt, o_all_local)
 VALUES (3123,3,10,2553,NOW(),13,1)

-- expect: Write
INSERT INTO new_orders4 (no_o_id, no_d_id, no_w_id)
  VALUES (5726,1,4)

-- expect: Read
SELECT i_price, i_name, i_data 
  FROM item4
 WHERE i_id = 19780

-- expect: LockingRead FOR_UPDATE
SELECT s_quantity, s_data, s_dist_01 s_dist 
  FROM stock4  
 WHERE s_i_id = 47498 AND s_w_id= 4 FOR UPDATE

-- expect: Write
UPDATE stock4
   SET s_quantity = 31
 WHERE s_i_id = 29387
   AND s_w_id= 4

-- expect: Write
INSERT INTO order_line4
                                 (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, ol_supply_w_id, ol_quantity, ol_amount, ol_dist_info)
  VALUES (5880,1,4,1,79986,4,5,88.20,'gehfijdcgiaacbdhjefbiigc')

-- expect: TxnCommit
COMMIT

-- expect: Write
UPDATE warehouse4
  SET w_ytd = w_ytd + 2076
 WHERE w_id = 4

-- expect: Read
SELECT w_street_1, w_street_2, w_city, w_state, w_zip, w_name
  FROM warehouse4
 WHERE w_id = 4

-- expect: LockingRead FOR_SHARE
SELECT count(c_id) namecnt
  FROM customer4
 WHERE c_w_id = 4 AND c_d_id= 1
   AND c_last='OUGHTABLEPRI' LOCK IN SHARE MODE

-- expect: LockingRead FOR_UPDATE
SELECT c_first, c_middle, c_last, c_street_1,
       c_street_2, c_city, c_state, c_zip, c_phone,
       c_credit, c_credit_lim, c_discount, c_balance, c_ytd_payment, c_since
  FROM customer4
 WHERE c_w_id = 4 AND c_d_id= 1 AND c_id=1539 FOR UPDATE

-- expect: LockingRead FOR_UPDATE
SELECT no_o_id
  FROM new_orders4 
 WHERE no_d_id = 1
   AND no_w_id = 4 
 ORDER BY no_o_id ASC LIMIT 1 FOR UPDATE SKIP LOCKED

-- expect: Write
DELETE FROM new_orders4
 WHERE no_o_id = 2783 AND no_d_id = 1 AND no_w_id = 4

-- expect: Write NON_DETERMINISTIC
UPDATE order_line4 
   SET ol_delivery_d = NOW()
 WHERE ol_o_id = 2295 AND ol_d_id = 1 AND ol_w_id = 2

-- expect: Read
SELECT COUNT(DISTINCT (s.s_i_id))
  FROM order_line4 AS ol, stock4 AS s
 WHERE ol.ol_w_id = 4 AND ol.ol_d_id = 1
   AND ol.ol_o_id < 3077 AND ol.ol_o_id >= 2931
   AND s.s_w_id= 4 AND s.s_i_id=ol.ol_i_id AND s.s_quantity < 19

-- expect: TxnRollback
ROLLBACK

-- expect: LockingRead FOR_SHARE
SELECT o_id, o_carrier_id, o_entry_d
  FROM orders4
 WHERE o_w_id = 4 AND o_d_id = 1 AND o_c_id = 1539
 ORDER BY o_id DESC LIMIT 1 FOR SHARE

-- expect: Ddl
CREATE TABLE IF NOT EXISTS warehouse1 (
w_id smallint not null,
w_name varchar(10), 
w_street_1 varchar(20), 
w_street_2 varchar(20), 
w_city varchar(20), 
w_state char(2), 
w_zip char(9), 
w_tax decimal(4,2), 
w_ytd decimal(12,2),
primary key (w_id) 
) ENGINE = InnoDB

-- expect: Ddl
CREATE TABLE IF NOT EXISTS history1 (
h_c_id int, 
h_c_d_id tinyint, 
h_c_w_id smallint,
h_d_id tinyint,
h_w_id smallint,
h_date datetime,
h_amount decimal(6,2),
h_data varchar(24),
id int NOT NULL AUTO_INCREMENT PRIMARY KEY
) ENGINE = InnoDB

-- expect: Ddl
ALTER TABLE new_orders1 ADD CONSTRAINT fkey_new_orders_1_1 FOREIGN KEY(no_w_id,no_d_id,no_o_id) REFERENCES orders1(o_w_id,o_d_id,o_id)

-- expect: Write NON_DETERMINISTIC
INSERT INTO history1 (h_c_d_id, h_c_w_id, h_c_id, h_d_id,  h_w_id, h_date, h_amount, h_data)
 VALUES (3,1,2204,3,1,NOW(),4283.31,'VLBgHKnSEBzfp   bHQoxb')

-- expect: Admin
ANALYZE TABLE sbtest1

-- expect: SessionSet
SET autocommit=0

-- expect: SessionSet
SET autocommit=1
