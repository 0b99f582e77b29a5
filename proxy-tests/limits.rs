//! Per-account limits (`[limits]`, `[limits.user.NAME]`): sessions per account (1203),
//! statement time (1969, MariaDB's own `max_statement_time`), idle transactions (closed
//! and rolled back). Each outcome is compared with what MariaDB does itself where it has
//! the same limit.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};

use crate::harness::{shared, MariaDb, Scratch, Shoal};

/// Longest any wait in these tests polls before it fails (never a timing assertion).
const DEADLINE: Duration = Duration::from_secs(20);

async fn connect(shoal: &Shoal, s: &Scratch) -> Result<Conn, mysql_async::Error> {
    Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await
}

/// A connection straight to MariaDB as the scratch account.
async fn direct(db: &MariaDb, s: &Scratch) -> Conn {
    let addr = db.addr();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let opts = OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port.parse().unwrap())
        .user(Some(&s.user))
        .pass(Some(Scratch::PASSWORD))
        .db_name(Some(&s.db))
        .prefer_socket(false);
    Conn::new(opts).await.unwrap()
}

/// The server error of a failed command: (code, SQLSTATE, message).
fn server_error(e: mysql_async::Error) -> (u16, String, String) {
    match e {
        mysql_async::Error::Server(e) => (e.code, e.state, e.message),
        other => panic!("not a server error: {other}"),
    }
}

/// A counter's value in shoal's metrics (installed on first use; process-wide).
fn counter(name: &str) -> f64 {
    shoal::metrics::render()
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Polls `f` until it is true, failing after [`DEADLINE`].
async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn user_connections_max_refuses_the_next_login_with_1203() {
    let db = shared();
    let limited = Scratch::new(db, "ucmax");
    let other = Scratch::new(db, "ucfree");
    let name = limited.user.clone();
    let shoal = Shoal::start_with(db, move |c| {
        c.limits.user.insert(name, shoal::config::UserLimits { connections_max: Some(2), ..Default::default() });
    });
    let open = |user: &str| shoal.proxy.user_connections.load().open(user);
    let refused = counter("shoal_user_connections_rejected_total");
    let mut a1 = connect(&shoal, &limited).await.unwrap();
    let a2 = connect(&shoal, &limited).await.unwrap();
    // The third login is refused after authentication, with MariaDB's error.
    let (code, state, message) = server_error(connect(&shoal, &limited).await.unwrap_err());
    assert_eq!((code, state.as_str()), (1203, "42000"));
    assert_eq!(
        message,
        format!("User {} already has more than 'max_user_connections' active connections", limited.user)
    );
    assert_eq!(open(&limited.user), 2);
    assert!(counter("shoal_user_connections_rejected_total") >= refused + 1.0);
    // A wrong password is still "access denied", not 1203 (the limit is checked after
    // authentication).
    let bad = Conn::new(shoal.opts(&limited.user, "wrong", None)).await.unwrap_err();
    assert_eq!(server_error(bad).0, 1045);
    // Another account is not limited.
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(connect(&shoal, &other).await.unwrap());
    }
    // A disconnect frees the slot.
    a2.disconnect().await.unwrap();
    wait_for("the disconnected session's slot", || open(&limited.user) == 1).await;
    let a3 = connect(&shoal, &limited).await.unwrap();
    // KILL frees it too.
    let a3_id = a3.id();
    a1.query_drop(format!("KILL {a3_id}")).await.unwrap();
    wait_for("the killed session's slot", || open(&limited.user) == 1).await;
    let _a4 = connect(&shoal, &limited).await.unwrap();
    // COM_CHANGE_USER moves the session to the other account's count: refused while the
    // limited account is full, accepted once it has room.
    let to_limited = mysql_async::ChangeUserOpts::default()
        .with_user(Some(limited.user.clone()))
        .with_pass(Some(Scratch::PASSWORD.to_string()))
        .with_db_name(Some(limited.db.clone()));
    let mut moving = others.pop().unwrap();
    let (code, _, _) = server_error(moving.change_user(to_limited.clone()).await.unwrap_err());
    assert_eq!(code, 1203);
    a1.disconnect().await.unwrap();
    wait_for("a1's slot", || open(&limited.user) == 1).await;
    let mut moved = others.pop().unwrap();
    moved.change_user(to_limited).await.unwrap();
    let user: String = moved.query_first("SELECT CURRENT_USER()").await.unwrap().unwrap();
    assert_eq!(user, format!("{}@%", limited.user));
    assert_eq!(open(&limited.user), 2);
    assert_eq!(open(&other.user), 1, "the moved session left the other account's count");
    assert_eq!(server_error(connect(&shoal, &limited).await.unwrap_err()).0, 1203);
}

/// What a statement time limit does to a transaction, run on any connection: the first
/// write, then a long one, then what is left.
async fn interrupted_write_in_transaction(c: &mut Conn) -> ((u16, String, String), i64, Vec<(i64, i64)>) {
    c.query_drop("DROP TABLE IF EXISTS tw").await.unwrap();
    c.query_drop("CREATE TABLE tw (id INT PRIMARY KEY, v INT) ENGINE=InnoDB").await.unwrap();
    c.query_drop("INSERT INTO tw VALUES (1, 0), (2, 0)").await.unwrap();
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE tw SET v = 1 WHERE id = 1").await.unwrap();
    let e = server_error(c.query_drop("UPDATE tw SET v = 2 + SLEEP(5) WHERE id = 2").await.unwrap_err());
    let in_trx: i64 = c.query_first("SELECT @@in_transaction").await.unwrap().unwrap();
    c.query_drop("COMMIT").await.unwrap();
    let rows: Vec<(i64, i64)> = c.query("SELECT id, v FROM tw ORDER BY id").await.unwrap();
    (e, in_trx, rows)
}

#[tokio::test]
async fn statement_time_max_ms_interrupts_with_1969() {
    let db = shared();
    let limited = Scratch::new(db, "stmax");
    let free = Scratch::new(db, "stfree");
    let name = limited.user.clone();
    let shoal = Shoal::start_with(db, move |c| {
        c.limits.pool_connections_max = 2;
        c.limits
            .user
            .insert(name, shoal::config::UserLimits { statement_time_max_ms: Some(500), ..Default::default() });
    });
    let mut a = connect(&shoal, &limited).await.unwrap();
    let mut b = connect(&shoal, &limited).await.unwrap();
    let timeout =
        (1969, "70100".to_string(), "Query execution was interrupted (max_statement_time exceeded)".to_string());
    // A long read: 1969, and the session goes on.
    let sleeping = tokio::spawn({
        let mut b2 = connect(&shoal, &limited).await.unwrap();
        async move {
            let r = b2.query_drop("SELECT SLEEP(5)").await;
            (b2, r)
        }
    });
    let (mut b2, r) = sleeping.await.unwrap();
    assert_eq!(server_error(r.unwrap_err()), timeout);
    let n: i64 = b2.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(n, 1);
    // Another session of the same pool runs as before.
    let n: i64 = b.query_first("SELECT 2").await.unwrap().unwrap();
    assert_eq!(n, 2);
    // A prepared statement (binary protocol) too.
    let e = a.exec_drop("SELECT SLEEP(?)", (5,)).await.unwrap_err();
    assert_eq!(server_error(e), timeout);
    let n: i64 = a.exec_first("SELECT ? + 1", (1,)).await.unwrap().unwrap();
    assert_eq!(n, 2);
    // A write inside a transaction: the same outcome as MariaDB's own max_statement_time
    // (the statement is rolled back, the transaction stays open with the earlier write).
    let through_shoal = interrupted_write_in_transaction(&mut a).await;
    let mut d = direct(db, &limited).await;
    d.query_drop("SET max_statement_time = 0.5").await.unwrap();
    let on_mariadb = interrupted_write_in_transaction(&mut d).await;
    assert_eq!(through_shoal, on_mariadb);
    assert_eq!(through_shoal.0, timeout);
    assert_eq!(
        (through_shoal.1, through_shoal.2),
        (1, vec![(1, 1), (2, 0)]),
        "statement rolled back, transaction kept"
    );
    // The limit cannot be lifted from the session; it can be lowered.
    let (code, state, message) = server_error(a.query_drop("SET max_statement_time = 0").await.unwrap_err());
    assert_eq!((code, state.as_str()), (1227, "42000"), "{message}");
    assert!(message.contains("statement_time_max_ms"), "{message}");
    for escape in [
        "SET STATEMENT max_statement_time = 0 FOR SELECT SLEEP(1)",
        "SET SESSION max_statement_time = DEFAULT",
        "EXECUTE IMMEDIATE 'SET max_statement_time = 0'",
    ] {
        assert_eq!(server_error(a.query_drop(escape).await.unwrap_err()).0, 1227, "{escape}");
    }
    assert_eq!(server_error(a.prep("SET max_statement_time = ?").await.unwrap_err()).0, 1227);
    let t: f64 = a.query_first("SELECT @@max_statement_time").await.unwrap().unwrap();
    assert_eq!(t, 0.5);
    a.query_drop("SET max_statement_time = 0.25").await.unwrap();
    let t: f64 = a.query_first("SELECT @@max_statement_time").await.unwrap().unwrap();
    assert_eq!(t, 0.25);
    // A procedure that lifts it (created by root: the limited account may not send the
    // text) lifts it for no later statement: the limit is set again after a CALL, text or
    // prepared.
    db.sql(&format!("CREATE PROCEDURE {}.lift() SET max_statement_time = 0", limited.db));
    a.query_drop("CALL lift()").await.unwrap();
    let t: f64 = a.query_first("SELECT @@max_statement_time").await.unwrap().unwrap();
    assert_eq!(t, 0.25, "the session's own (lowered) value is back after CALL");
    a.exec_drop("CALL lift()", ()).await.unwrap();
    assert_eq!(server_error(a.query_drop("SELECT SLEEP(5)").await.unwrap_err()), timeout);
    // COM_RESET_CONNECTION goes back to the configured limit.
    a.reset().await.unwrap();
    let t: f64 = a.query_first("SELECT @@max_statement_time").await.unwrap().unwrap();
    assert_eq!(t, 0.5);
    // Nothing reaches another account (its own pool, the server's default).
    let mut f = connect(&shoal, &free).await.unwrap();
    let t: f64 = f.query_first("SELECT @@max_statement_time").await.unwrap().unwrap();
    assert_eq!(t, 0.0);
    let n: i64 = f.query_first("SELECT SLEEP(1)").await.unwrap().unwrap();
    assert_eq!(n, 0, "an unlimited account's statement ran to the end");
}

#[tokio::test]
async fn transaction_idle_timeout_s_ends_an_idle_transaction() {
    let db = shared();
    let s = Scratch::new(db, "idletrx");
    let name = s.user.clone();
    let shoal = Shoal::start_with(db, move |c| {
        c.limits
            .user
            .insert(name, shoal::config::UserLimits { transaction_idle_timeout_s: Some(1), ..Default::default() });
    });
    let mut setup = connect(&shoal, &s).await.unwrap();
    setup.query_drop("CREATE TABLE ti (id INT PRIMARY KEY, v INT) ENGINE=InnoDB").await.unwrap();
    setup.query_drop("INSERT INTO ti VALUES (1, 0)").await.unwrap();
    // Idle outside a transaction: not affected.
    let mut idle = connect(&shoal, &s).await.unwrap();
    idle.query_drop("SELECT 1").await.unwrap();
    let mut c = connect(&shoal, &s).await.unwrap();
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE ti SET v = 99 WHERE id = 1").await.unwrap();
    let id = c.id();
    let ended = counter("shoal_idle_transactions_ended_total");
    wait_for("the idle transaction's session to close", || shoal.proxy.registry.get(id).is_none()).await;
    assert!(counter("shoal_idle_transactions_ended_total") >= ended + 1.0, "counted");
    // The client sees the close, as MariaDB's idle_transaction_timeout closes it.
    let e = c.query_drop("SELECT 1").await.unwrap_err();
    assert!(matches!(e, mysql_async::Error::Io(_) | mysql_async::Error::Driver(_)), "{e}");
    // Not committed, and the row lock is free at once.
    let mut other = connect(&shoal, &s).await.unwrap();
    other.query_drop("SET innodb_lock_wait_timeout = 10").await.unwrap();
    let v: i64 = other.query_first("SELECT v FROM ti WHERE id = 1").await.unwrap().unwrap();
    assert_eq!(v, 0, "the idle transaction's write was rolled back");
    other.query_drop("UPDATE ti SET v = 5 WHERE id = 1").await.unwrap();
    // The session idle outside a transaction for as long still answers.
    let n: i64 = idle.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(n, 1);
    // MariaDB's own idle_transaction_timeout ends a connection the same way.
    let mut d = direct(db, &s).await;
    d.query_drop("SET idle_transaction_timeout = 1").await.unwrap();
    d.query_drop("BEGIN").await.unwrap();
    d.query_drop("UPDATE ti SET v = 98 WHERE id = 1").await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let e = d.query_drop("SELECT 1").await.unwrap_err();
    assert!(matches!(e, mysql_async::Error::Io(_) | mysql_async::Error::Driver(_)), "MariaDB: {e}");
}
