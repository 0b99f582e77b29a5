//! The binlog tail (`src/capture/tail.rs`) against real `mariadbd`s: what each kind of
//! transaction becomes, that a prepared XA's rows replay on another server as
//! `BINLOG '<base64>'` to identical tables, reconnects without a group twice or missing,
//! and events above 16 MiB.

use std::time::Duration;

use base64::Engine;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use shoal::capture::tail::{dump_target, BinlogTail, StartAt, SILENCE_MAX};
use shoal::capture::{Captured, Origin, RowsEntry};
use tokio::sync::mpsc::Receiver;

use crate::harness::MariaDb;

/// Options of a leader whose binlog the tail reads.
const LEADER: &[&str] = &["--server-id=1", "--log-bin=mariadb-bin", "--binlog-format=ROW", "--binlog-row-image=FULL"];
/// How long a test waits for one group.
const GROUP_WAIT: Duration = Duration::from_secs(20);
/// Replica id of the tail (unique on the leader).
const TAIL_SERVER_ID: u32 = 9001;

async fn root(db: &MariaDb) -> Conn {
    let opts =
        OptsBuilder::default().ip_or_hostname("127.0.0.1").tcp_port(db.port).user(Some("root")).prefer_socket(false);
    Conn::new(opts).await.unwrap()
}

async fn tail(db: &MariaDb, from: StartAt) -> (BinlogTail, Receiver<Captured>) {
    BinlogTail::start(
        dump_target(&db.addr(), "root", "", shoal::backend::tls::BackendTls::disabled()),
        TAIL_SERVER_ID,
        from,
    )
    .await
    .expect("tail starts")
}

async fn next(rx: &mut Receiver<Captured>) -> Captured {
    tokio::time::timeout(GROUP_WAIT, rx.recv()).await.expect("a group within GROUP_WAIT").expect("tail running")
}

/// Asserts that nothing more arrives within `wait`.
async fn quiet(rx: &mut Receiver<Captured>, wait: Duration) {
    if let Ok(Some(c)) = tokio::time::timeout(wait, rx.recv()).await {
        panic!("unexpected group: {c:?}");
    }
}

const DDL: &[&str] = &[
    "CREATE DATABASE app",
    "CREATE TABLE app.orders (id INT AUTO_INCREMENT PRIMARY KEY, created DATETIME(6) NOT NULL DEFAULT NOW(6), \
     u CHAR(36) NOT NULL DEFAULT (UUID()), note VARCHAR(100), amount DECIMAL(10,2), body MEDIUMTEXT) ENGINE=InnoDB",
    "CREATE TABLE app.audit (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT, r DOUBLE) ENGINE=InnoDB",
    "CREATE TRIGGER app.orders_ai AFTER INSERT ON app.orders FOR EACH ROW \
     INSERT INTO app.audit(order_id, r) VALUES (NEW.id, RAND())",
];

async fn checksums(c: &mut Conn) -> Vec<(String, Option<u64>)> {
    c.query("CHECKSUM TABLE app.orders, app.audit").await.unwrap()
}

/// Replays a rows entry on `c` the way a follower will: format description first, then
/// one BINLOG statement per SQL statement inside one transaction.
async fn apply(c: &mut Conn, rows: &RowsEntry) {
    let b64 = base64::engine::general_purpose::STANDARD;
    c.query_drop(format!("BINLOG '{}'", b64.encode(&rows.format))).await.expect("format description applies");
    c.query_drop("BEGIN").await.unwrap();
    for s in &rows.statements {
        c.query_drop(format!("BINLOG '{}'", b64.encode(s))).await.expect("row statement applies");
    }
    c.query_drop("COMMIT").await.unwrap();
}

/// Tests 1 and 2: a shoal XA transaction is captured once, at PREPARE, before its
/// COMMIT; replayed on a second server it gives identical tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_xa_is_captured_before_commit_and_replays_identically() {
    let leader = MariaDb::start(LEADER);
    let follower = MariaDb::start(&[]);
    let (mut l, mut f) = (root(&leader).await, root(&follower).await);
    for sql in DDL {
        l.query_drop(*sql).await.unwrap();
        f.query_drop(*sql).await.unwrap();
    }
    assert_eq!(checksums(&mut l).await.len(), 2);
    let (tail, mut rx) = tail(&leader, StartAt::End).await;
    // Base rows (NOW(6), UUID(), the trigger's RAND()) reach the follower as row images.
    l.query_drop("INSERT INTO app.orders(note, amount) VALUES ('base1', 1.00), ('base2', 2.00), ('base3', 3.00)")
        .await
        .unwrap();
    let Captured::Unmanaged { rows: base, .. } = next(&mut rx).await else { panic!("expected Unmanaged") };
    apply(&mut f, &base).await;
    assert_eq!(checksums(&mut l).await, checksums(&mut f).await, "base rows identical");
    let start = tail.position();

    let big = "x".repeat(3 * 1024 * 1024);
    for sql in [
        "XA START 'shoal-t-1'",
        "INSERT INTO app.orders(note, amount) VALUES ('a', 10.50), ('b', 20.25), ('c', 30.00)",
        "UPDATE app.orders SET amount = amount + 100 WHERE note = 'base1'",
        "SAVEPOINT sp1",
        "INSERT INTO app.orders(note) VALUES ('rolled-back')",
        "ROLLBACK TO SAVEPOINT sp1",
        "DELETE FROM app.orders WHERE note = 'base2'",
    ] {
        l.query_drop(sql).await.unwrap();
    }
    l.exec_drop("INSERT INTO app.orders(note, body) VALUES ('big', ?)", (big.as_str(),)).await.unwrap();
    l.query_drop("XA END 'shoal-t-1'").await.unwrap();
    l.query_drop("XA PREPARE 'shoal-t-1'").await.unwrap();

    let Captured::Prepared { gtid, xid, rows } = next(&mut rx).await else { panic!("expected Prepared") };
    assert_eq!(xid, "shoal-t-1");
    assert_eq!(rows.origin, Origin::Captured { xid: "shoal-t-1".into() });
    // insert (orders + trigger's audit), update, delete, big insert (+ audit): the rolled-back
    // insert left no rows.
    assert_eq!(rows.statements.len(), 4, "one BINLOG statement per SQL statement");
    assert!(rows.statements[3].windows(64 * 1024).any(|w| w.iter().all(|b| *b == b'x')), "the 3 MB value is in it");
    assert_eq!(rows.format[4], 15, "format is a Format_description event");
    quiet(&mut rx, Duration::from_millis(500)).await;
    let pos = tail.position();
    assert_eq!(pos.gtid.as_deref(), Some(gtid.as_str()));
    assert!(pos.file == start.file && pos.pos > start.pos, "{start:?} -> {pos:?}");

    // Replay on the follower while the leader's transaction is still only prepared.
    apply(&mut f, &rows).await;
    l.query_drop("XA COMMIT 'shoal-t-1'").await.unwrap();
    let Captured::Skipped { gtid: commit } = next(&mut rx).await else { panic!("expected Skipped for XA COMMIT") };
    assert_ne!(commit, gtid);
    let (a, b) = (checksums(&mut l).await, checksums(&mut f).await);
    assert_eq!(a, b, "identical tables after replay");
    let notes: Vec<String> = f.query("SELECT note FROM app.orders ORDER BY id").await.unwrap();
    assert_eq!(notes, ["base1", "base3", "a", "b", "c", "big"]);
    let audits: u64 = f.query_first("SELECT COUNT(*) FROM app.audit").await.unwrap().unwrap();
    // 3 base + 3 + 1 inserted: the trigger's rows came as row events, it did not fire again.
    assert_eq!(audits, 7);
}

/// Test 3: plain transactions, DDL, marked DDL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_write_is_unmanaged_and_ddl_is_a_statement_with_its_mark() {
    let leader = MariaDb::start(LEADER);
    let mut l = root(&leader).await;
    l.query_drop("CREATE DATABASE d").await.unwrap();
    let (tail, mut rx) = tail(&leader, StartAt::End).await;

    l.query_drop("CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(10))").await.unwrap();
    match next(&mut rx).await {
        Captured::Statement { id: None, schema: _, sql, .. } => assert!(sql.contains("CREATE TABLE d.t"), "{sql}"),
        other => panic!("expected Statement, got {other:?}"),
    }
    l.query_drop("INSERT INTO d.t VALUES (1, 'one')").await.unwrap();
    match next(&mut rx).await {
        Captured::Unmanaged { gtid, rows } => {
            assert_eq!(rows.origin, Origin::Unmanaged { gtid });
            assert_eq!(rows.statements.len(), 1);
        }
        other => panic!("expected Unmanaged, got {other:?}"),
    }
    l.query_drop("USE d").await.unwrap();
    l.query_drop("/*shoal:abc-1*/ CREATE TABLE u (id INT PRIMARY KEY)").await.unwrap();
    match next(&mut rx).await {
        Captured::Statement { id, schema, sql, .. } => {
            assert_eq!(id.as_deref(), Some("abc-1"), "MariaDB keeps the leading comment: {sql}");
            assert_eq!(schema.as_deref(), Some("d"));
        }
        other => panic!("expected Statement, got {other:?}"),
    }
    // An XA not started by shoal is replicated as unmanaged; its commit carries nothing.
    for sql in ["XA START 'other-1'", "INSERT INTO d.t VALUES (2, 'two')", "XA END 'other-1'", "XA PREPARE 'other-1'"] {
        l.query_drop(sql).await.unwrap();
    }
    assert!(matches!(next(&mut rx).await, Captured::Unmanaged { .. }));
    l.query_drop("XA COMMIT 'other-1'").await.unwrap();
    assert!(matches!(next(&mut rx).await, Captured::Skipped { .. }));
    // An empty transaction binlogs nothing.
    l.query_drop("BEGIN").await.unwrap();
    l.query_drop("COMMIT").await.unwrap();
    quiet(&mut rx, Duration::from_millis(500)).await;
    // Idle past SILENCE_MAX: heartbeats keep the dump connection, no reconnect.
    tokio::time::sleep(SILENCE_MAX + Duration::from_secs(1)).await;
    assert_eq!(tail.connections(), 1, "heartbeats kept the idle dump alive");
    l.query_drop("INSERT INTO d.t VALUES (3, 'three')").await.unwrap();
    assert!(matches!(next(&mut rx).await, Captured::Unmanaged { .. }));
}

/// Test 4: the dump thread killed, then the server restarted, while transactions go on:
/// every transaction arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_dump_and_server_restart_lose_and_repeat_nothing() {
    let mut leader = MariaDb::start(LEADER);
    let mut l = root(&leader).await;
    l.query_drop("CREATE DATABASE d").await.unwrap();
    l.query_drop("CREATE TABLE d.t (id INT PRIMARY KEY)").await.unwrap();
    let (tail, mut rx) = tail(&leader, StartAt::End).await;
    const N: u32 = 30;
    let mut seen = Vec::new();
    let mut collect = |c: Captured| {
        let Captured::Unmanaged { gtid, .. } = c else { panic!("expected Unmanaged, got {c:?}") };
        seen.push(gtid);
    };
    for i in 0..10 {
        l.query_drop(format!("INSERT INTO d.t VALUES ({i})")).await.unwrap();
    }
    for _ in 0..5 {
        collect(next(&mut rx).await);
    }
    // KILL the dump thread while another connection keeps committing.
    let first_thread = tail.thread_id().expect("dump connection open");
    let mut writer = root(&leader).await;
    let writes = tokio::spawn(async move {
        for i in 10..20 {
            writer.query_drop(format!("INSERT INTO d.t VALUES ({i})")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(15)).await;
    l.query_drop(format!("KILL {first_thread}")).await.unwrap();
    writes.await.unwrap();
    for _ in 5..20 {
        collect(next(&mut rx).await);
    }
    assert_eq!(tail.connections(), 2, "one reconnect after the KILL");
    assert_ne!(tail.thread_id(), Some(first_thread));
    drop(l);
    tokio::task::block_in_place(|| leader.restart());
    let mut l = root(&leader).await;
    for i in 20..N {
        l.query_drop(format!("INSERT INTO d.t VALUES ({i})")).await.unwrap();
    }
    for _ in 20..N {
        collect(next(&mut rx).await);
    }
    assert!(tail.connections() >= 3, "reconnected after the restart");
    quiet(&mut rx, Duration::from_secs(2)).await;
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), N as usize, "each transaction once: {seen:?}");
    assert!(tail.failure().is_none());
    // Resuming a new tail from the old one's position sees nothing twice either.
    let pos = tail.position();
    drop(tail);
    // Dropping the handle ends the dump on the server.
    let dumps = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump'";
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while l.query_first::<u64, _>(dumps).await.unwrap() != Some(0) {
        assert!(std::time::Instant::now() < deadline, "the dump thread outlived the dropped handle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_again, mut rx2) = self::tail(&leader, StartAt::At(pos)).await;
    l.query_drop(format!("INSERT INTO d.t VALUES ({N})")).await.unwrap();
    assert!(matches!(next(&mut rx2).await, Captured::Unmanaged { gtid, .. } if !seen.contains(&gtid)));
    quiet(&mut rx2, Duration::from_millis(500)).await;
}

/// Test 5: a row of more than 20 MiB (several 16 MiB packets on the wire) arrives whole
/// and replays. Its group comes after a restart, so its Format_description is the new
/// file's own (log_pos set, `created` set, in-use flag), not the dump's first one: both
/// forms apply, also one after the other inside one transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_above_20_mib_arrives_intact() {
    let mut leader = MariaDb::start(LEADER);
    let follower = MariaDb::start(&[]);
    let (mut l, mut f) = (root(&leader).await, root(&follower).await);
    for c in [&mut l, &mut f] {
        c.query_drop("CREATE DATABASE d").await.unwrap();
        c.query_drop("CREATE TABLE d.big (id INT PRIMARY KEY, b LONGBLOB)").await.unwrap();
    }
    let (_tail, mut rx) = tail(&leader, StartAt::End).await;
    l.query_drop("INSERT INTO d.big VALUES (0, 'small')").await.unwrap();
    let Captured::Unmanaged { rows: small, .. } = next(&mut rx).await else { panic!("expected Unmanaged") };
    drop(l);
    tokio::task::block_in_place(|| leader.restart());
    let mut l = root(&leader).await;
    const BYTES: usize = 21 * 1024 * 1024;
    let value: Vec<u8> = (0..BYTES).map(|i| (i % 251) as u8).collect();
    l.exec_drop("INSERT INTO d.big VALUES (1, ?)", (value.clone(),)).await.unwrap();
    let Captured::Unmanaged { rows, .. } = next(&mut rx).await else { panic!("expected Unmanaged") };
    assert_eq!(rows.statements.len(), 1);
    let s = &rows.statements[0];
    assert!(s.len() > BYTES, "{} bytes", s.len());
    assert!(s.windows(value.len()).any(|w| w == value.as_slice()), "the value is in the row event byte for byte");
    let log_pos = |fd: &[u8]| u32::from_le_bytes(fd[13..17].try_into().unwrap());
    assert_eq!(log_pos(&small.format), 0, "the dump's first Format_description");
    assert_ne!(log_pos(&rows.format), 0, "the new file's own Format_description");
    let created = |fd: &[u8]| u32::from_le_bytes(fd[19 + 52..19 + 56].try_into().unwrap());
    assert_ne!(created(&rows.format), 0, "written at server start");

    let b64 = base64::engine::general_purpose::STANDARD;
    f.query_drop(format!("BINLOG '{}'", b64.encode(&small.format))).await.unwrap();
    f.query_drop("BEGIN").await.unwrap();
    f.query_drop(format!("BINLOG '{}'", b64.encode(&small.statements[0]))).await.unwrap();
    f.query_drop(format!("BINLOG '{}'", b64.encode(&rows.format))).await.unwrap();
    f.query_drop(format!("BINLOG '{}'", b64.encode(s))).await.unwrap();
    f.query_drop("COMMIT").await.unwrap();
    let sql = "SELECT GROUP_CONCAT(id, ':', MD5(b) ORDER BY id) FROM d.big";
    let (a, b): (Option<String>, Option<String>) =
        (l.query_first(sql).await.unwrap(), f.query_first(sql).await.unwrap());
    assert!(a.as_deref().is_some_and(|a| a.starts_with("0:") && a.contains(",1:")), "{a:?}");
    assert_eq!(a, b, "both rows, in one transaction across the two Format_descriptions");
}

/// Start errors name the fix: binary log off, missing privilege, a position that does
/// not exist; the documented grants are enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_errors_say_what_to_fix_and_the_documented_grants_suffice() {
    let no_binlog = MariaDb::start(&[]);
    let e = BinlogTail::start(
        dump_target(&no_binlog.addr(), "root", "", shoal::backend::tls::BackendTls::disabled()),
        TAIL_SERVER_ID,
        StartAt::End,
    )
    .await
    .unwrap_err();
    assert!(e.is_fatal() && e.to_string().contains("--log-bin"), "{e}");

    let leader = MariaDb::start(LEADER);
    let mut l = root(&leader).await;
    for sql in [
        "CREATE USER tailer IDENTIFIED VIA mysql_native_password USING PASSWORD('pw')",
        "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO tailer",
        "CREATE USER monitor_only IDENTIFIED VIA mysql_native_password USING PASSWORD('pw')",
        "GRANT BINLOG MONITOR ON *.* TO monitor_only",
    ] {
        l.query_drop(sql).await.unwrap();
    }
    let e = BinlogTail::start(
        dump_target(&leader.addr(), "monitor_only", "pw", shoal::backend::tls::BackendTls::disabled()),
        TAIL_SERVER_ID,
        StartAt::End,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("grant the account REPLICATION SLAVE"), "{e}");

    let (tail, mut rx) = BinlogTail::start(
        dump_target(&leader.addr(), "tailer", "pw", shoal::backend::tls::BackendTls::disabled()),
        TAIL_SERVER_ID,
        StartAt::End,
    )
    .await
    .unwrap();
    l.query_drop("CREATE DATABASE d").await.unwrap();
    assert!(matches!(next(&mut rx).await, Captured::Statement { .. }));
    let mut gone = tail.position();
    gone.file = "mariadb-bin.999999".into();
    let e = BinlogTail::start(
        dump_target(&leader.addr(), "tailer", "pw", shoal::backend::tls::BackendTls::disabled()),
        TAIL_SERVER_ID + 1,
        StartAt::At(gone),
    )
    .await
    .unwrap_err();
    assert!(e.is_fatal() && e.to_string().contains("not in its binlog"), "{e}");
}
