-- WordPress core (wpdb, WP_Query, options/transients, cron, install/upgrade dbDelta),
-- WooCommerce, Action Scheduler, and common plugins.

-- wpdb connection setup
-- expect: SessionSet
SET NAMES utf8mb4 COLLATE utf8mb4_unicode_520_ci

-- expect: SessionSet
SET NAMES utf8mb4

-- expect: Read
SELECT @@SESSION.sql_mode

-- expect: SessionSet
SET SESSION sql_mode='NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION'

-- expect: Read
SELECT VERSION()

-- expect: Show
SHOW TABLES LIKE 'wp\\_users'


-- options, transients, users, meta
-- expect: Read
SELECT option_name, option_value FROM wp_options WHERE autoload = 'yes'

-- expect: Read
SELECT option_name, option_value FROM wp_options WHERE autoload IN ( 'yes', 'on', 'auto-on', 'auto' )

-- expect: Read
SELECT option_value FROM wp_options WHERE option_name = 'siteurl' LIMIT 1

-- expect: Read
SELECT autoload FROM wp_options WHERE option_name = 'rewrite_rules'

-- expect: Write
INSERT INTO `wp_options` (`option_name`, `option_value`, `autoload`) VALUES ('_transient_doing_cron', '1714557000.1234560966491699218750', 'yes') ON DUPLICATE KEY UPDATE `option_name` = VALUES(`option_name`), `option_value` = VALUES(`option_value`), `autoload` = VALUES(`autoload`)

-- expect: Write
UPDATE `wp_options` SET `option_value` = 'a:3:{i:1714560600;a:1:{s:16:\"wp_version_check\";a:1:{s:32:\"40cd750bba9870f18aada2478b24840a\";a:3:{s:8:\"schedule\";s:10:\"twicedaily\";s:4:\"args\";a:0:{}s:8:\"interval\";i:43200;}}}s:7:\"version\";i:2;}' WHERE `option_name` = 'cron'

-- expect: Write
DELETE FROM `wp_options` WHERE `option_name` = '_transient_timeout_feed_9bbd59226dc36b9b26cd43f15694c5c3'

-- expect: Write
DELETE a, b FROM wp_options a, wp_options b WHERE a.option_name LIKE '\\_transient\\_%' AND a.option_name NOT LIKE '\\_transient\\_timeout\\_%' AND b.option_name = CONCAT( '_transient_timeout_', SUBSTRING( a.option_name, 12 ) ) AND b.option_value < 1714557000

-- expect: Read
SELECT * FROM wp_users WHERE user_login = 'admin' LIMIT 1

-- expect: Read
SELECT * FROM wp_users WHERE ID = '1' LIMIT 1

-- expect: Read
SELECT user_id, meta_key, meta_value FROM wp_usermeta WHERE user_id IN (1) ORDER BY umeta_id ASC

-- expect: Write
UPDATE `wp_usermeta` SET `meta_value` = 'a:1:{s:64:\"5e1d\";a:4:{s:10:\"expiration\";i:1714729800;s:2:\"ip\";s:9:\"127.0.0.1\";s:2:\"ua\";s:11:\"Mozilla/5.0\";s:5:\"login\";i:1714557000;}}' WHERE `user_id` = 1 AND `meta_key` = 'session_tokens'

-- expect: Write
INSERT INTO `wp_usermeta` (`user_id`, `meta_key`, `meta_value`) VALUES (1, 'wp_dashboard_quick_press_last_post_id', '4')

-- expect: Read
SELECT post_id, meta_key, meta_value FROM wp_postmeta WHERE post_id IN (1,2,3,4,5,6,7,8,9,10) ORDER BY meta_id ASC

-- expect: Write
INSERT INTO `wp_postmeta` (`post_id`, `meta_key`, `meta_value`) VALUES (4, '_edit_lock', '1714557000:1')

-- expect: Write
UPDATE `wp_postmeta` SET `meta_value` = '1714557060:1' WHERE `post_id` = 4 AND `meta_key` = '_edit_lock'

-- expect: Read
SELECT meta_id FROM wp_postmeta WHERE meta_key = '_edit_lock' AND post_id = 4


-- WP_Query and templates
-- expect: Read CALC_FOUND_ROWS
SELECT SQL_CALC_FOUND_ROWS  wp_posts.ID
					 FROM wp_posts 
					 WHERE 1=1  AND ((wp_posts.post_type = 'post' AND (wp_posts.post_status = 'publish' OR wp_posts.post_status = 'private')))
					 
					 ORDER BY wp_posts.post_date DESC
					 LIMIT 0, 10
-- expect: Read FOUND_ROWS
SELECT FOUND_ROWS()

-- expect: Read
SELECT wp_posts.* FROM wp_posts WHERE ID IN (1,5,7)

-- expect: Read
SELECT   wp_posts.*
					 FROM wp_posts 
					 WHERE 1=1  AND wp_posts.post_name = 'hello-world' AND wp_posts.post_type = 'post'
					 
					 ORDER BY wp_posts.post_date DESC
-- expect: Read
SELECT t.*, tt.*, tr.object_id FROM wp_terms AS t  INNER JOIN wp_term_taxonomy AS tt ON t.term_id = tt.term_id INNER JOIN wp_term_relationships AS tr ON tr.term_taxonomy_id = tt.term_taxonomy_id WHERE tt.taxonomy IN ('category', 'post_tag', 'post_format') AND tr.object_id IN (1) ORDER BY t.name ASC

-- expect: Read
SELECT  t.term_id
			FROM wp_terms AS t  INNER JOIN wp_term_taxonomy AS tt ON t.term_id = tt.term_id
			WHERE tt.taxonomy IN ('category') AND tt.count > 0
			ORDER BY t.name ASC
-- expect: Read
SELECT comment_approved, COUNT( * ) AS total FROM wp_comments  GROUP BY comment_approved

-- expect: Read
SELECT COUNT(*) FROM wp_comments WHERE comment_approved = '0'

-- expect: Read
SELECT YEAR(post_date) AS `year`, MONTH(post_date) AS `month`, count(ID) as posts FROM wp_posts  WHERE post_type = 'post' AND post_status = 'publish' GROUP BY YEAR(post_date), MONTH(post_date) ORDER BY post_date DESC

-- expect: Read
SELECT DISTINCT meta_key FROM wp_postmeta WHERE meta_key NOT BETWEEN '_' AND '_z' HAVING meta_key NOT LIKE '\\_%' ORDER BY meta_key LIMIT 30

-- expect: Read
SELECT ID, post_name, post_parent, post_type FROM wp_posts WHERE post_name IN ('about') AND post_type IN ('page','attachment')

-- expect: Read
SELECT post_type, COUNT( * ) AS num_posts FROM wp_posts WHERE post_type = 'post' GROUP BY post_type

-- expect: Read
SELECT wp_posts.ID FROM wp_posts WHERE 1=1 AND wp_posts.post_parent = 12 AND wp_posts.post_type = 'attachment' AND ((wp_posts.post_status = 'inherit')) ORDER BY wp_posts.menu_order ASC, wp_posts.ID ASC


-- writing posts and comments
-- expect: Write
INSERT INTO `wp_posts` (`post_author`, `post_date`, `post_date_gmt`, `post_content`, `post_content_filtered`, `post_title`, `post_excerpt`, `post_status`, `post_type`, `comment_status`, `ping_status`, `post_password`, `post_name`, `to_ping`, `pinged`, `post_modified`, `post_modified_gmt`, `post_parent`, `menu_order`, `post_mime_type`, `guid`) VALUES (1, '2024-05-01 10:00:00', '0000-00-00 00:00:00', '', '', 'Auto Draft', '', 'auto-draft', 'post', 'open', 'open', '', '', '', '', '2024-05-01 10:00:00', '0000-00-00 00:00:00', 0, 0, '', '')

-- expect: Write
UPDATE `wp_posts` SET `guid` = 'http://example.com/?p=4' WHERE `ID` = 4

-- expect: Write
INSERT INTO `wp_comments` (`comment_post_ID`, `comment_author`, `comment_author_email`, `comment_author_url`, `comment_author_IP`, `comment_date`, `comment_date_gmt`, `comment_content`, `comment_karma`, `comment_approved`, `comment_agent`, `comment_type`, `comment_parent`, `user_id`) VALUES (1, 'A WordPress Commenter', 'wapuu@wordpress.example', 'https://wordpress.org/', '', '2024-05-01 10:00:00', '2024-05-01 10:00:00', 'Hi, this is a comment.', 0, '1', '', 'comment', 0, 0)

-- expect: Write
UPDATE wp_posts SET comment_count = 1 WHERE ID = 1

-- expect: Write NON_DETERMINISTIC
DELETE FROM wp_posts WHERE post_status = 'auto-draft' AND DATE_SUB( NOW(), INTERVAL 7 DAY ) > post_date

-- expect: Write
INSERT INTO `wp_term_relationships` (`object_id`, `term_taxonomy_id`) VALUES (4, 1)

-- expect: Write
UPDATE `wp_term_taxonomy` SET `count` = 2 WHERE `term_taxonomy_id` = 1


-- install / dbDelta
-- expect: Ddl
CREATE TABLE wp_users (
  ID bigint(20) unsigned NOT NULL auto_increment,
  user_login varchar(60) NOT NULL default '',
  user_pass varchar(255) NOT NULL default '',
  user_nicename varchar(50) NOT NULL default '',
  user_email varchar(100) NOT NULL default '',
  user_url varchar(100) NOT NULL default '',
  user_registered datetime NOT NULL default '0000-00-00 00:00:00',
  user_activation_key varchar(255) NOT NULL default '',
  user_status int(11) NOT NULL default '0',
  display_name varchar(250) NOT NULL default '',
  PRIMARY KEY  (ID),
  KEY user_login_key (user_login),
  KEY user_nicename (user_nicename),
  KEY user_email (user_email)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci
-- expect: Show
DESCRIBE wp_users;

-- expect: Show
SHOW INDEX FROM wp_users

-- expect: Ddl
ALTER TABLE wp_users ADD KEY user_email (user_email)

-- expect: Ddl
ALTER TABLE wp_options CHANGE COLUMN autoload autoload varchar(20) NOT NULL default 'yes'

-- expect: Ddl
ALTER TABLE wp_posts CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci

-- expect: Admin
OPTIMIZE TABLE wp_posts

-- expect: Admin
REPAIR TABLE wp_options

-- expect: Admin
CHECK TABLE wp_options

-- expect: Admin
ANALYZE TABLE wp_postmeta

-- expect: Show
SHOW FULL COLUMNS FROM wp_posts


-- WooCommerce, Action Scheduler
-- expect: Write
INSERT INTO wp_woocommerce_sessions (`session_key`, `session_value`, `session_expiry`) VALUES ('t_6f1e', 'a:1:{s:4:\"cart\";s:6:\"a:0:{}\";}', 1714729800) ON DUPLICATE KEY UPDATE `session_value` = VALUES(`session_value`), `session_expiry` = VALUES(`session_expiry`)

-- expect: Write
DELETE FROM wp_woocommerce_sessions WHERE session_expiry < 1714557000

-- expect: Read
SELECT order_id FROM wp_wc_orders_meta WHERE meta_key = '_payment_tokens' AND meta_value = 'tok_1'

-- expect: Read
SELECT SUM( net_total ) AS net_revenue FROM wp_wc_order_stats WHERE date_created >= '2024-04-01 00:00:00' AND status NOT IN ( 'wc-trash','wc-pending','wc-failed','wc-cancelled' )

-- expect: Write
UPDATE wp_actionscheduler_actions SET claim_id=183, last_attempt_gmt='2024-05-01 10:00:00', last_attempt_local='2024-05-01 12:00:00' WHERE claim_id = 0 AND scheduled_date_gmt <= '2024-05-01 10:00:00' AND status='pending' ORDER BY priority ASC, attempts ASC, scheduled_date_gmt ASC, action_id ASC LIMIT 25

-- expect: Write NON_DETERMINISTIC
INSERT INTO wp_actionscheduler_claims ( `date_created_gmt` ) VALUES ( UTC_TIMESTAMP() )

-- expect: Read
SELECT action_id FROM wp_actionscheduler_actions WHERE claim_id = 183 ORDER BY priority ASC, attempts ASC, scheduled_date_gmt ASC, action_id ASC

-- expect: Write
DELETE FROM wp_actionscheduler_claims WHERE claim_id = 183

-- expect: Read GET_LOCK
SELECT GET_LOCK('wp_wc_product_lookup', 5)

-- expect: Read RELEASE_LOCK
SELECT RELEASE_LOCK('wp_wc_product_lookup')

-- expect: Write NON_DETERMINISTIC
INSERT INTO wp_wc_rate_limits (`rate_limit_key`, `rate_limit_expiry`, `rate_limit_remaining`) VALUES ('add_payment_method_1', UNIX_TIMESTAMP() + 20, 0) ON DUPLICATE KEY UPDATE `rate_limit_remaining` = IF(`rate_limit_expiry` < UNIX_TIMESTAMP(), VALUES(`rate_limit_remaining`), GREATEST(`rate_limit_remaining` - 1, 0))

-- expect: Write
INSERT INTO `wp_yoast_indexable` (`object_id`, `object_type`, `permalink`) VALUES (4, 'post', 'http://example.com/?p=4')

-- expect: Read
SELECT `option_value` FROM `wp_options` WHERE `option_name` = 'wpseo' LIMIT 1
