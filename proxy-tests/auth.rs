//! Accounts whose plugin shoal cannot verify itself (MariaDB `ed25519`): the login is
//! relayed to the server, which checks the proof, and the session keeps that one
//! connection. Checked with the `mariadb` CLI, PyMySQL (with PyNaCl) and mysql_async
//! against a server with `auth_ed25519`; also clients whose default plugin is
//! `caching_sha2_password` logging in to native-password accounts.

use std::process::Command;

use mysql_async::prelude::*;
use mysql_async::Conn;

use crate::harness::{mariadb_cli, MariaDb, Scratch, Shoal};

const ED_USER: &str = "ed_user";
const ED_PASSWORD: &str = "ed-secret";

fn ed25519_server() -> (MariaDb, Scratch) {
    let db = MariaDb::start(&["--plugin-load-add=auth_ed25519"]);
    let s = Scratch::new(&db, "ed");
    db.sql(&format!(
        "CREATE USER '{ED_USER}'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('{ED_PASSWORD}'); \
         GRANT ALL ON {}.* TO '{ED_USER}'@'%'; GRANT SELECT ON mysql.* TO '{ED_USER}'@'%';",
        s.db
    ));
    (db, s)
}

#[test]
fn ed25519_accounts_log_in_through_shoal_with_the_cli() {
    let (db, s) = ed25519_server();
    let shoal = Shoal::start(&db);
    let args = ["-D", &s.db, "-N", "-B", "-e", "SELECT CURRENT_USER(), DATABASE()"];
    let (ok, out, err) = mariadb_cli(shoal.port(), ED_USER, ED_PASSWORD, &args, None);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("{ED_USER}@%\t{}", s.db));
    // A wrong password gets the server's own words, exactly as a direct login does.
    let (ok, _, through) = mariadb_cli(shoal.port(), ED_USER, "wrong", &args, None);
    assert!(!ok);
    let (ok, _, direct) = mariadb_cli(db.port, ED_USER, "wrong", &args, None);
    assert!(!ok);
    assert_eq!(through.trim(), direct.trim());
    assert!(through.contains("ERROR 1045 (28000): Access denied for user"), "{through}");
}

#[test]
fn ed25519_accounts_log_in_through_shoal_with_pymysql() {
    let (db, s) = ed25519_server();
    let shoal = Shoal::start(&db);
    let script = format!(
        r#"
import pymysql
c = pymysql.connect(host="127.0.0.1", port={port}, user="{ED_USER}", password="{ED_PASSWORD}", database="{db}")
cur = c.cursor()
cur.execute("SELECT CURRENT_USER()")
assert cur.fetchall() == (("{ED_USER}@%",),)
cur.execute("SELECT CONNECTION_ID()")
assert cur.fetchall() == ((c.thread_id(),),), "CONNECTION_ID() is the greeting's id"
try:
    pymysql.connect(host="127.0.0.1", port={port}, user="{ED_USER}", password="nope")
    raise SystemExit("a wrong password logged in")
except pymysql.err.OperationalError as e:
    assert e.args[0] == 1045, e
print("ok")
"#,
        port = shoal.port(),
        db = s.db
    );
    let out = Command::new("python3").arg("-c").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[tokio::test]
async fn a_relayed_session_keeps_its_connection_through_reset_and_kill() {
    let (db, s) = ed25519_server();
    let shoal = Shoal::start(&db);
    let opts = shoal.opts(ED_USER, ED_PASSWORD, Some(&s.db));
    let mut a = Conn::new(opts.clone()).await.unwrap();
    a.query_drop("CREATE TEMPORARY TABLE tmp (x INT)").await.unwrap();
    a.query_drop("SET @v = 7, time_zone = '+03:00'").await.unwrap();
    // COM_RESET_CONNECTION resets the session's one connection (it cannot open another).
    a.reset().await.unwrap();
    let (v, tz): (Option<i64>, String) = a.query_first("SELECT @v, @@time_zone").await.unwrap().unwrap();
    assert_eq!((v, tz.as_str()), (None, "SYSTEM"));
    assert!(a.query_drop("SELECT * FROM tmp").await.is_err(), "the temporary table is gone");
    let n: i64 = a.query_first("SELECT 40 + 2").await.unwrap().unwrap();
    assert_eq!(n, 42);
    // KILL QUERY of the account's own running statement, from another relayed session.
    let mut b = Conn::new(opts).await.unwrap();
    let a_id = a.id();
    let sleeper = tokio::spawn(async move {
        let r: Result<Option<i64>, _> = a.query_first("SELECT SLEEP(30)").await;
        (r, a)
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let list: Vec<mysql_async::Row> = b.query("SHOW PROCESSLIST").await.unwrap();
        let running = list
            .iter()
            .any(|r| r.get::<u64, _>(0) == Some(a_id as u64) && r.get::<String, _>(4).as_deref() == Some("Query"));
        if running {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the sleeper never showed as running");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    b.query_drop(format!("KILL QUERY {a_id}")).await.unwrap();
    let (r, mut a) = sleeper.await.unwrap();
    // SLEEP() interrupted returns 1 (or the query reports the interruption).
    assert!(matches!(r, Ok(Some(1)) | Err(_)), "{r:?}");
    let n: i64 = a.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(n, 1, "KILL QUERY leaves the session alive");
    a.disconnect().await.unwrap();
    b.disconnect().await.unwrap();
}

#[test]
fn caching_sha2_clients_log_in_to_native_accounts() {
    let db = crate::harness::shared();
    let s = Scratch::new(db, "sha2");
    let shoal = Shoal::start(db);
    let script = format!(
        r#"
import mysql.connector
for pure in (True, False):
    c = mysql.connector.connect(host="127.0.0.1", port={port}, user="{user}", password="{pw}", database="{db}",
                                auth_plugin="caching_sha2_password", use_pure=pure)
    cur = c.cursor()
    cur.execute("SELECT CURRENT_USER()")
    assert cur.fetchall()[0][0].startswith("{user}@"), "logged in as someone else"
    c.close()
print("ok")
"#,
        port = shoal.port(),
        user = s.user,
        pw = Scratch::PASSWORD,
        db = s.db
    );
    let out = Command::new("python3").arg("-c").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}
