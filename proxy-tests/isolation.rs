//! No client sees another client's session state through a shared backend connection.
//!
//! * The isolation matrix (`isolation.toml`): per kind of session state, client A creates
//!   it and leaves, client B observes; B's answers through shoal must be B's answers
//!   directly on MariaDB.
//! * The SET matrix (`set_matrix.toml`): per session variable, the values in effect on
//!   the backend connection follow each client.
//! * The reproductions of the defects that made these tests (each hung or answered
//!   wrongly before the fix): a procedure with a cursor, locks left by a disconnected
//!   client, `CONNECTION_ID()` against the greeting and `KILL`, `FOUND_ROWS()` and the
//!   warnings of a session's own statements, a connection the server closes for idling.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, Row, Value};
use serde::Deserialize;

use crate::harness::{shared, MariaDb, Scratch, Shoal};

/// Longest a matrix scenario may take: a hang fails its row instead of the test run.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(30);

/// What one statement answered: its rows (each value as text, `NULL` for null), or the
/// server's error code. Messages are left out: they name connection ids and databases.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Rows(Vec<Vec<String>>),
    Error(u16),
}

fn text(v: &Value) -> String {
    match v {
        Value::NULL => "NULL".into(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

async fn answer(conn: &mut Conn, sql: &str) -> Answer {
    match conn.query::<Row, _>(sql).await {
        Ok(rows) => Answer::Rows(rows.iter().map(|r| (0..r.len()).map(|i| text(&r[i])).collect()).collect()),
        Err(mysql_async::Error::Server(e)) => Answer::Error(e.code),
        Err(e) => panic!("{sql}: not a server answer: {e}"),
    }
}

/// Where clients connect: MariaDB itself or a shoal in front of it.
#[derive(Clone, Copy)]
enum Via<'a> {
    Direct(&'a MariaDb),
    Shoal(&'a Shoal),
}

impl Via<'_> {
    fn opts(&self, s: &Scratch, db: &str) -> Opts {
        let (host, port) = match self {
            Via::Direct(m) => {
                let addr = m.addr();
                let (h, p) = addr.rsplit_once(':').unwrap();
                (h.to_string(), p.parse().unwrap())
            }
            Via::Shoal(sh) => ("127.0.0.1".to_string(), sh.port()),
        };
        OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port)
            .user(Some(&s.user))
            .pass(Some(Scratch::PASSWORD))
            .db_name(Some(db))
            .prefer_socket(false)
            .into()
    }

    async fn connect(&self, s: &Scratch, db: &str) -> Conn {
        self.try_connect(s, db).await.expect("connect")
    }

    async fn try_connect(&self, s: &Scratch, db: &str) -> Result<Conn, String> {
        Conn::new(self.opts(s, db)).await.map_err(|e| format!("connect: {e}"))
    }

    /// Waits until a disconnected client is gone for good: its server thread ended
    /// (directly), or its shoal session closed and cleaned its backend connection.
    async fn wait_gone(&self, root: &mut Conn, id: u32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let gone = match self {
                Via::Direct(_) => {
                    let n: i64 = root
                        .query_first(format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id}"))
                        .await
                        .unwrap()
                        .unwrap();
                    n == 0
                }
                Via::Shoal(sh) => sh.proxy.registry.get(id).is_none(),
            };
            if gone {
                return;
            }
            assert!(Instant::now() < deadline, "client {id} never went away");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A root connection straight to the server, for setting databases up.
async fn root(db: &MariaDb) -> Conn {
    let addr = db.addr();
    let (h, p) = addr.rsplit_once(':').unwrap();
    let opts =
        OptsBuilder::default().ip_or_hostname(h).tcp_port(p.parse().unwrap()).user(Some("root")).prefer_socket(false);
    Conn::new(opts).await.expect("root connection")
}

/// A fresh database for one scenario (see `isolation.toml` for what it holds).
async fn fresh_database(root: &mut Conn) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!("iso_{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    root.query_drop(format!(
        "CREATE DATABASE {name}; CREATE DATABASE {name}_b; \
         CREATE TABLE {name}.iso_t (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB; \
         INSERT INTO {name}.iso_t (v) VALUES (10), (20), (30); CREATE SEQUENCE {name}.iso_seq"
    ))
    .await
    .unwrap();
    name
}

#[derive(Debug, Deserialize)]
struct StateRow {
    kind: String,
    create: Vec<String>,
    observe: Vec<String>,
    #[serde(default = "both_ways")]
    leave: Vec<Leave>,
}

fn both_ways() -> Vec<Leave> {
    vec![Leave::Disconnect, Leave::Idle]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Leave {
    Disconnect,
    Idle,
}

#[derive(Deserialize)]
struct StateMatrix {
    state: Vec<StateRow>,
}

/// One scenario: A creates the state and leaves, B observes; B's answers, with the
/// database's name written `<db>`.
async fn scenario(
    via: Via<'_>,
    root: &mut Conn,
    s: &Scratch,
    row: &StateRow,
    leave: Leave,
) -> Result<Vec<Answer>, String> {
    let db = fresh_database(root).await;
    let sql = |t: &str| t.replace("{db}", &db);
    let mut a = via.try_connect(s, &db).await?;
    for stmt in &row.create {
        // What A's statements answer is not under test (the same on both paths).
        let _ = answer(&mut a, &sql(stmt)).await;
    }
    let a_id = a.id();
    let mut idle = None;
    match leave {
        Leave::Disconnect => {
            a.disconnect().await.unwrap();
            via.wait_gone(root, a_id).await;
        }
        Leave::Idle => idle = Some(a),
    }
    let mut b = via.try_connect(s, &db).await?;
    let mut seen = Vec::new();
    for stmt in &row.observe {
        seen.push(match answer(&mut b, &sql(stmt)).await {
            Answer::Rows(rows) => Answer::Rows(
                rows.into_iter().map(|r| r.into_iter().map(|v| v.replace(&db, "<db>")).collect()).collect(),
            ),
            e => e,
        });
    }
    b.disconnect().await.unwrap();
    if let Some(a) = idle {
        a.disconnect().await.unwrap();
        via.wait_gone(root, a_id).await;
    }
    Ok(seen)
}

#[tokio::test]
async fn isolation_matrix_shows_each_client_only_its_own_state() {
    let matrix: StateMatrix = toml::from_str(include_str!("isolation.toml")).expect("isolation.toml");
    let server = shared();
    let s = Scratch::new(server, "isomatrix");
    // One backend connection: B gets exactly the connection A used.
    let one = Shoal::start_with(server, |c| {
        c.limits.pool_connections_max = 1;
        c.limits.checkout_timeout_ms = 5_000;
    });
    // Three (one of them a pipe for plain reads): an idle A whose state pins its
    // connection, or keeps it for its warnings, leaves B another one.
    let three = Shoal::start_with(server, |c| {
        c.limits.pool_connections_max = 3;
        c.limits.checkout_timeout_ms = 5_000;
    });
    let mut root = root(server).await;
    let mut failures = Vec::new();
    let mut runs = 0;
    for row in &matrix.state {
        for &leave in &row.leave {
            let proxied = match leave {
                Leave::Disconnect => &one,
                Leave::Idle => &three,
            };
            let direct =
                tokio::time::timeout(SCENARIO_TIMEOUT, scenario(Via::Direct(server), &mut root, &s, row, leave))
                    .await
                    .unwrap_or_else(|_| panic!("{} ({leave:?}) hangs directly on MariaDB", row.kind))
                    .unwrap_or_else(|e| panic!("{} ({leave:?}) directly: {e}", row.kind));
            let through =
                tokio::time::timeout(SCENARIO_TIMEOUT, scenario(Via::Shoal(proxied), &mut root, &s, row, leave)).await;
            runs += 1;
            match through {
                Err(_) => failures.push(format!("{} ({leave:?}): hangs through shoal", row.kind)),
                Ok(Err(e)) => failures.push(format!("{} ({leave:?}): {e}", row.kind)),
                Ok(Ok(through)) if through != direct => failures
                    .push(format!("{} ({leave:?}): B saw {through:?} through shoal, {direct:?} directly", row.kind)),
                Ok(_) => {}
            }
        }
    }
    assert!(runs >= 60, "the matrix shrank to {runs} scenarios");
    assert!(failures.is_empty(), "{} of {runs} scenarios differ:\n{}", failures.len(), failures.join("\n"));
}

#[derive(Debug, Deserialize)]
struct SetRow {
    set: String,
    read: Vec<String>,
}

#[derive(Deserialize)]
struct SetMatrix {
    set: Vec<SetRow>,
}

/// The `SELECT` that reads a row's items.
fn read_sql(row: &SetRow) -> String {
    let items: Vec<String> = row
        .read
        .iter()
        .map(|r| {
            if r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                format!("@@session.{r}")
            } else {
                r.clone()
            }
        })
        .collect();
    format!("SELECT {}", items.join(", "))
}

#[tokio::test]
async fn set_matrix_follows_each_client_on_one_shared_connection() {
    let matrix: SetMatrix = toml::from_str(include_str!("set_matrix.toml")).expect("set_matrix.toml");
    assert!(matrix.set.len() >= 60, "the SET matrix shrank to {} rows", matrix.set.len());
    let server = shared();
    let s = Scratch::new(server, "setmatrix");
    // Clients take turns, so they share one backend connection unless A's SET pins it
    // (or its warnings keep it for A's next statement): then B gets another (of three,
    // one of them a pipe for plain reads).
    let shoal = Shoal::start_with(server, |c| {
        c.limits.pool_connections_max = 3;
        c.limits.checkout_timeout_ms = 5_000;
    });
    let mut root = root(server).await;
    let db = fresh_database(&mut root).await;
    let mut failures = Vec::new();
    for row in &matrix.set {
        let read = read_sql(row);
        // Directly: what a fresh connection reads, what the SET answers, what it reads after.
        let mut d = Via::Direct(server).connect(&s, &db).await;
        let default = answer(&mut d, &read).await;
        let set_answer = answer(&mut d, &row.set).await;
        let after = answer(&mut d, &read).await;
        d.disconnect().await.unwrap();
        let via = Via::Shoal(&shoal);
        let mut a = via.connect(&s, &db).await;
        let mut b = via.connect(&s, &db).await;
        let mut check = |who: &str, step: &str, got: Answer, want: &Answer| {
            if &got != want {
                failures.push(format!("{}: {who} {step}: {got:?} through shoal, {want:?} directly", row.set));
            }
        };
        check("A", "SET", answer(&mut a, &row.set).await, &set_answer);
        check("B", "read 1", answer(&mut b, &read).await, &default);
        check("A", "read 1", answer(&mut a, &read).await, &after);
        check("B", "read 2", answer(&mut b, &read).await, &default);
        check("A", "read 2", answer(&mut a, &read).await, &after);
        let a_id = a.id();
        a.disconnect().await.unwrap();
        b.disconnect().await.unwrap();
        via.wait_gone(&mut root, a_id).await;
        let mut c = via.connect(&s, &db).await;
        check("C", "read after A left", answer(&mut c, &read).await, &default);
        c.disconnect().await.unwrap();
    }
    assert!(failures.is_empty(), "{} differences:\n{}", failures.len(), failures.join("\n"));
}

async fn connect(shoal: &Shoal, s: &Scratch) -> Conn {
    Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await.expect("connect through shoal")
}

/// A procedure that opens a cursor and then selects returns (it used to hang: the
/// server's cursor flag in its final status was read as an open binary-protocol cursor).
#[tokio::test]
async fn a_procedure_with_a_cursor_returns_its_row() {
    let db = shared();
    let s = Scratch::new(db, "proccursor");
    let shoal = Shoal::start(db);
    let mut c = connect(&shoal, &s).await;
    c.query_drop("CREATE TABLE t1 (data INT); INSERT INTO t1 VALUES (7)").await.unwrap();
    c.query_drop(
        "CREATE PROCEDURE p3() BEGIN DECLARE x INT; DECLARE c CURSOR FOR SELECT data FROM t1 LIMIT 1; \
         OPEN c; FETCH c INTO x; CLOSE c; SELECT x; END",
    )
    .await
    .unwrap();
    for _ in 0..3 {
        let x: Option<i64> = tokio::time::timeout(Duration::from_secs(10), c.query_first("CALL p3()"))
            .await
            .expect("CALL p3() hangs")
            .unwrap();
        assert_eq!(x, Some(7));
    }
    // The session goes on, text and binary.
    let n: i64 = c.exec_first("SELECT ? + 1", (1,)).await.unwrap().unwrap();
    assert_eq!(n, 2);
    c.disconnect().await.unwrap();
    // The mariadb CLI (no CLIENT_DEPRECATE_EOF: the status arrives in an EOF packet) is
    // the client that hung.
    let out = std::process::Command::new("timeout")
        .args(["10", "mariadb", "-h127.0.0.1", &format!("-P{}", shoal.port()), &format!("-u{}", s.user)])
        .arg(format!("-p{}", Scratch::PASSWORD))
        .args([&s.db, "-N", "-e", "CALL p3(); SELECT 'after'"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "CALL p3() through the CLI: {:?} {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.split_whitespace().collect::<Vec<_>>(), ["7", "after"]);
}

/// A client that disconnects inside a transaction holding table locks releases them
/// before its backend connection serves anyone else (a `DROP TABLE` used to hang).
#[tokio::test]
async fn a_disconnected_clients_locks_and_transaction_are_released() {
    let db = shared();
    let s = Scratch::new(db, "droplocks");
    let shoal = Shoal::start_with(db, |c| c.limits.pool_connections_max = 2);
    let mut a = connect(&shoal, &s).await;
    a.query_drop("CREATE TABLE t1 (id INT PRIMARY KEY) ENGINE=InnoDB").await.unwrap();
    a.query_drop("SET autocommit = 0").await.unwrap();
    // (LOCK TABLES commits the transaction before it: the insert comes after.)
    a.query_drop("LOCK TABLE t1 WRITE").await.unwrap();
    a.query_drop("INSERT INTO t1 VALUES (1)").await.unwrap();
    a.query_drop("CREATE TEMPORARY TABLE tmp1 (a INT)").await.unwrap();
    let a_id = a.id();
    drop(a); // no COM_QUIT: the socket just closes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shoal.proxy.registry.get(a_id).is_some() {
        assert!(Instant::now() < deadline, "the session never closed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut b = connect(&shoal, &s).await;
    let n: i64 = tokio::time::timeout(Duration::from_secs(10), b.query_first("SELECT COUNT(*) FROM t1"))
        .await
        .expect("reading the table hangs on the disconnected client's lock")
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "the disconnected client's uncommitted insert survived");
    b.query_drop("CREATE TEMPORARY TABLE tmp1 (b INT)").await.expect("the other client's temporary table leaked");
    tokio::time::timeout(Duration::from_secs(10), b.query_drop("DROP TABLE t1"))
        .await
        .expect("DROP TABLE hangs on the disconnected client's lock")
        .unwrap();
    b.disconnect().await.unwrap();
}

/// `CONNECTION_ID()` is the id in the greeting, the one `SHOW PROCESSLIST` lists and the
/// one `KILL` takes (PyMySQL's `test_issue_36`); it used to be the backend's thread id.
#[tokio::test]
async fn connection_id_is_the_greeting_id_and_kill_takes_it() {
    let db = shared();
    let s = Scratch::new(db, "connid");
    // The killer is another account with the privilege to kill others' connections
    // (PyMySQL's root); an account without it is refused.
    let admin = Scratch::new(db, "connidadmin");
    db.sql("CREATE USER IF NOT EXISTS 'connid_nobody'@'%' IDENTIFIED BY 'nobody-pw'");
    let shoal = Shoal::start_with(db, |c| c.limits.pool_connections_max = 1);
    let mut victim = connect(&shoal, &s).await;
    let mut killer = Conn::new(shoal.opts(&admin.user, Scratch::PASSWORD, None)).await.unwrap();
    let mut nobody = Conn::new(shoal.opts("connid_nobody", "nobody-pw", None)).await.unwrap();
    let greeting = victim.id();
    for sql in ["SELECT CONNECTION_ID()", "SELECT CONNECTION_ID() + 0", "select connection_id()"] {
        let id: u64 = victim.query_first(sql).await.unwrap().unwrap();
        assert_eq!(id, greeting as u64, "{sql}");
    }
    let id: u64 = victim.exec_first("SELECT CONNECTION_ID()", ()).await.unwrap().unwrap();
    assert_eq!(id, greeting as u64, "prepared CONNECTION_ID()");
    let other: u64 = killer.query_first("SELECT CONNECTION_ID()").await.unwrap().unwrap();
    assert_ne!(other, id, "two sessions share one id");
    let ids: Vec<u64> = killer.query_map("SHOW PROCESSLIST", |row: Row| row.get::<u64, _>(0).unwrap()).await.unwrap();
    assert!(ids.contains(&id), "SHOW PROCESSLIST {ids:?} lacks {id}");
    match nobody.query_drop(format!("KILL {id}")).await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1095, "{e}"),
        other => panic!("an account without the privilege killed another's session: {other:?}"),
    }
    let n: i64 = victim.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(n, 1, "a refused KILL ended the session");
    killer.query_drop(format!("KILL {id}")).await.unwrap();
    let err = victim.query_drop("SELECT 1").await.expect_err("the killed session still answers");
    assert!(!err.to_string().is_empty());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ids: Vec<u64> =
            killer.query_map("SHOW PROCESSLIST", |row: Row| row.get::<u64, _>(0).unwrap()).await.unwrap();
        if !ids.contains(&id) {
            break;
        }
        assert!(Instant::now() < deadline, "the killed session stays in SHOW PROCESSLIST");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    killer.disconnect().await.unwrap();
    nobody.disconnect().await.unwrap();
}

/// A session's `FOUND_ROWS()` and warnings are its own, statement after statement, even
/// when other sessions use the same backend connection in between.
#[tokio::test]
async fn found_rows_and_warnings_are_the_sessions_own() {
    let db = shared();
    let s = Scratch::new(db, "foundrows");
    // Three connections (one a pipe): `a` keeps one between SQL_CALC_FOUND_ROWS and
    // FOUND_ROWS(), and each session keeps one while its warnings may still be read.
    let shoal = Shoal::start_with(db, |c| c.limits.pool_connections_max = 3);
    let mut a = connect(&shoal, &s).await;
    let mut other = connect(&shoal, &s).await;
    a.query_drop("CREATE TABLE t (id INT); INSERT INTO t VALUES (1), (2), (3)").await.unwrap();
    a.query_drop("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1").await.unwrap();
    other.query_drop("SELECT * FROM t LIMIT 2").await.unwrap();
    let n: i64 = a.query_first("SELECT FOUND_ROWS()").await.unwrap().unwrap();
    assert_eq!(n, 3, "FOUND_ROWS() after SQL_CALC_FOUND_ROWS");
    a.query_drop("SELECT * FROM t LIMIT 2").await.unwrap();
    other.query_drop("SELECT * FROM t").await.unwrap();
    let n: i64 = a.query_first("SELECT FOUND_ROWS()").await.unwrap().unwrap();
    assert_eq!(n, 2, "FOUND_ROWS() after a plain select");
    a.query_drop("EXPLAIN EXTENDED SELECT 1").await.unwrap();
    a.query_drop("SELECT CASE 1/0 WHEN 1 THEN 1 END").await.unwrap();
    other.query_drop("SELECT CAST('x' AS SIGNED)").await.unwrap();
    let codes: Vec<u32> = a.query_map("SHOW WARNINGS", |row: Row| row.get::<u32, _>(1).unwrap()).await.unwrap();
    assert_eq!(codes, vec![1365], "a's warnings after its division by zero");
    let codes: Vec<u32> = other.query_map("SHOW WARNINGS", |row: Row| row.get::<u32, _>(1).unwrap()).await.unwrap();
    assert_eq!(codes, vec![1292], "the other session's own truncation warning");
    a.disconnect().await.unwrap();
    other.disconnect().await.unwrap();
}

/// A client idle past its `wait_timeout` is disconnected the way MariaDB does it: its
/// next command fails as a lost connection (PyMySQL's `test_connection_gone_away`).
#[tokio::test]
async fn an_idle_client_past_wait_timeout_is_disconnected() {
    let db = shared();
    let s = Scratch::new(db, "goneaway");
    let shoal = Shoal::start(db);
    let mut c = connect(&shoal, &s).await;
    let mut stays = connect(&shoal, &s).await;
    c.query_drop("SET wait_timeout = 1").await.unwrap();
    let t: u64 = c.query_first("SELECT @@wait_timeout").await.unwrap().unwrap();
    assert_eq!(t, 1);
    let id = c.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while shoal.proxy.registry.get(id).is_some() {
        assert!(Instant::now() < deadline, "the idle session outlived its wait_timeout by far");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let err = c.query_drop("SELECT 1").await.expect_err("a session idle past wait_timeout still answers");
    assert!(matches!(err, mysql_async::Error::Io(_) | mysql_async::Error::Driver(_)), "{err}");
    // Sessions with the default timeout are untouched.
    let n: i64 = stays.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(n, 1);
    stays.disconnect().await.unwrap();
}

/// A `SET` computed from the session's own values (Rails' `sql_mode = CONCAT(@@sql_mode,
/// …)`) is read back and replayed: the session does not keep its connection for it.
#[tokio::test]
async fn a_computed_set_is_read_back_and_does_not_pin() {
    let db = shared();
    let s = Scratch::new(db, "computedset");
    // One connection, no pipes: a pinned session would leave the other none.
    let shoal = Shoal::start_with(db, |c| {
        c.limits.pool_connections_max = 1;
        c.limits.pipes_per_pool = 0;
        c.limits.checkout_timeout_ms = 2_000;
    });
    let mut a = connect(&shoal, &s).await;
    let mut b = connect(&shoal, &s).await;
    a.query_drop(
        "SET @@SESSION.sql_mode = CONCAT(CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), ',NO_AUTO_VALUE_ON_ZERO'), \
         @@SESSION.sql_auto_is_null = 0, @@SESSION.wait_timeout = 2147483",
    )
    .await
    .unwrap();
    let (mode, wait): (String, u64) = b.query_first("SELECT @@sql_mode, @@wait_timeout").await.unwrap().unwrap();
    assert!(!mode.contains("STRICT_ALL_TABLES"), "a's sql_mode reached b: {mode}");
    assert_eq!(wait, 28800);
    let mode: String = a.query_first("SELECT @@sql_mode").await.unwrap().unwrap();
    assert!(mode.contains("STRICT_ALL_TABLES") && mode.contains("NO_AUTO_VALUE_ON_ZERO"), "{mode}");
    a.disconnect().await.unwrap();
    b.disconnect().await.unwrap();
}

/// With autocommit off, a failed statement may open a transaction (its ERR says nothing):
/// the session keeps its connection, so its next statement does not wait behind its own
/// metadata lock on another connection (mysqlclient's `test_errors.py::test_null` hung).
#[tokio::test]
async fn a_failed_statement_with_autocommit_off_keeps_its_transaction() {
    let db = shared();
    let s = Scratch::new(db, "failedtxn");
    let shoal = Shoal::start_with(db, |c| c.limits.pool_connections_max = 4);
    let mut c = connect(&shoal, &s).await;
    let mut other = connect(&shoal, &s).await;
    c.query_drop("SET autocommit = 0").await.unwrap();
    c.query_drop("CREATE TABLE test_null (c1 INT PRIMARY KEY)").await.unwrap();
    let err = c.query_drop("INSERT INTO test_null VALUES (NULL)").await.expect_err("NULL into a primary key");
    assert!(err.to_string().contains("1048"), "{err}");
    // Another session's statements in between take the pool's connections.
    for _ in 0..3 {
        let n: i64 = other
            .query_first("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'x'")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0);
    }
    tokio::time::timeout(Duration::from_secs(10), c.query_drop("DROP TABLE test_null"))
        .await
        .expect("DROP TABLE waits behind the session's own transaction")
        .unwrap();
    c.disconnect().await.unwrap();
    other.disconnect().await.unwrap();
}
