//! Capture and apply end to end (issue 12): a leader `mariadbd` behind shoal with capture
//! on (durability = a local WAL), two appliers following that WAL, and the data compared
//! with `CHECKSUM TABLE` on all three. Also: nothing is visible before the durability
//! step returns, a withheld step rolls back without a trace, and prepared transactions
//! left by a crashed leader are decided by the log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::Conn;
use rand::{Rng, SeedableRng};
use shoal::apply::{catch_up, Applier};
use shoal::capture::setup::{prepare_leader, recover};
use shoal::capture::tail::{dump_target, BinlogTail, StartAt};
use shoal::capture::{Capture, Durable, LocalWal, Proposal};
use shoal::wal::{Wal, WalOptions};

use crate::harness::{mariadb_cli, MariaDb, Scratch, Shoal};

/// Options of a leader: binlog in row format with full images.
const LEADER: [&str; 4] = ["--server-id=1", "--log-bin=mariadb-bin", "--binlog-format=ROW", "--binlog-row-image=FULL"];

/// A [`Durable`] in front of a local WAL that a test can hold (proposals queue, in
/// order, until released), make fail (proposals error without reaching the WAL), or let
/// append and then never answer.
struct GateState {
    wal: LocalWal,
    fail: AtomicBool,
    /// Append, then never answer (the entry is durable, the session never learns it).
    append_then_hang: AtomicBool,
    /// `Some` while held: proposals waiting, in call order.
    held: std::sync::Mutex<Option<Vec<Held>>>,
}

/// A held proposal: the entry and where its WAL append goes once released.
type Held = (Vec<u8>, tokio::sync::oneshot::Sender<Proposal>);

/// Shared handle of a [`GateState`] (the test keeps one, the capture another).
#[derive(Clone)]
struct Gate(Arc<GateState>);

impl std::ops::Deref for Gate {
    type Target = GateState;
    fn deref(&self) -> &GateState {
        &self.0
    }
}

impl Gate {
    fn new(wal: Arc<Wal>) -> Gate {
        Gate(Arc::new(GateState {
            wal: LocalWal::new(wal),
            fail: AtomicBool::new(false),
            append_then_hang: AtomicBool::new(false),
            held: std::sync::Mutex::new(None),
        }))
    }

    fn hold(&self) {
        self.held.lock().unwrap().get_or_insert_with(Vec::new);
    }

    /// Appends what was held, in order, and lets later proposals through.
    fn release(&self) {
        for (entry, reply) in self.held.lock().unwrap().take().unwrap_or_default() {
            let _ = reply.send(self.wal.propose(entry));
        }
    }
}

impl Durable for Gate {
    fn propose(&self, entry: Vec<u8>) -> Proposal {
        if self.fail.load(Ordering::SeqCst) {
            return Box::pin(async { Err("the test's durability step refused the entry".to_string().into()) });
        }
        if let Some(queue) = self.held.lock().unwrap().as_mut() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            queue.push((entry, tx));
            return Box::pin(async move {
                match rx.await {
                    Ok(appended) => appended.await,
                    Err(_) => std::future::pending().await,
                }
            });
        }
        // The WAL fixes the order at this call, as the contract asks.
        let appended = self.wal.propose(entry);
        if self.append_then_hang.load(Ordering::SeqCst) {
            return Box::pin(async move {
                let _ = appended.await;
                std::future::pending().await
            });
        }
        appended
    }
}

/// A leader behind shoal with capture into a local WAL.
struct Leader {
    db: MariaDb,
    scratch: Scratch,
    wal: Arc<Wal>,
    gate: Gate,
    shoal: Shoal,
    _tail: BinlogTail,
    _capture: Arc<Capture>,
    _wal_dir: tempfile::TempDir,
}

impl Leader {
    async fn start(tag: &str) -> Leader {
        let db = MariaDb::start(&LEADER);
        let scratch = Scratch::new(&db, tag);
        let mut root = Conn::new(root_opts(&db)).await.unwrap();
        prepare_leader(&mut root).await.expect("leader requirements and marker table");
        root.disconnect().await.unwrap();
        let wal_dir = tempfile::tempdir().unwrap();
        let opts = WalOptions { record_bytes_max: 48 << 20, ..WalOptions::default() };
        let (wal, _) = Wal::open(wal_dir.path(), opts).unwrap();
        let wal = Arc::new(wal);
        let gate = Gate::new(wal.clone());
        let (tail, found) = BinlogTail::start(
            dump_target(&db.addr(), "root", "", shoal::backend::tls::BackendTls::disabled()),
            9001,
            StartAt::End,
        )
        .await
        .unwrap();
        let pos = db.sql("SELECT @@gtid_binlog_pos");
        let capture = Capture::start("n1", found, Arc::new(gate.clone()), pos.trim());
        let shoal = Shoal::start(&db);
        shoal.proxy.capture.store(Some(capture.clone()));
        Leader { db, scratch, wal, gate, shoal, _tail: tail, _capture: capture, _wal_dir: wal_dir }
    }

    fn opts(&self) -> mysql_async::Opts {
        self.shoal.opts(&self.scratch.user, Scratch::PASSWORD, Some(&self.scratch.db))
    }

    /// A connection through shoal.
    async fn client(&self) -> Conn {
        Conn::new(self.opts()).await.unwrap()
    }

    /// A connection straight to the leader's MariaDB.
    async fn direct(&self) -> Conn {
        Conn::new(root_opts_db(&self.db, &self.scratch.db)).await.unwrap()
    }
}

fn root_opts(db: &MariaDb) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(db.port)
        .user(Some("root"))
        .prefer_socket(false)
        .into()
}

fn root_opts_db(db: &MariaDb, schema: &str) -> mysql_async::Opts {
    mysql_async::OptsBuilder::from_opts(root_opts(db)).db_name(Some(schema)).into()
}

/// A follower: its own `mariadbd` and an applier on it.
struct Follower {
    db: MariaDb,
    applier: Applier,
}

impl Follower {
    async fn start(server_id: u32) -> Follower {
        let db = MariaDb::start(&[&format!("--server-id={server_id}")]);
        let mut applier = Applier::connect(root_opts(&db)).await.unwrap();
        applier.prepare().await.unwrap();
        Follower { db, applier }
    }
}

/// `CHECKSUM TABLE` of every base table of `schema` on `db`, by name.
pub async fn checksums(db: &MariaDb, schema: &str) -> Vec<(String, Option<i64>)> {
    let mut c = Conn::new(root_opts(db)).await.unwrap();
    let tables: Vec<String> = c
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
            (schema,),
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let row: Option<(String, Option<i64>)> =
            c.query_first(format!("CHECKSUM TABLE `{schema}`.`{t}` EXTENDED")).await.unwrap();
        out.push((t, row.and_then(|r| r.1)));
    }
    c.disconnect().await.unwrap();
    out
}

/// Count of rows of `sql` on `db` (straight to the server).
async fn count(db: &MariaDb, schema: &str, sql: &str) -> i64 {
    let mut c = Conn::new(root_opts_db(db, schema)).await.unwrap();
    let n: i64 = c.query_first(sql).await.unwrap().unwrap();
    c.disconnect().await.unwrap();
    n
}

/// The schema every workload client uses, created through shoal (so the appliers get it
/// as statement entries).
pub const SCHEMA: &[&str] = &[
    "CREATE TABLE t_ai (id INT AUTO_INCREMENT PRIMARY KEY, k INT, v VARCHAR(100), created DATETIME(6) DEFAULT NOW(6), \
     sys DATETIME(6), u CHAR(36), us BIGINT UNSIGNED, r DOUBLE) ENGINE=InnoDB",
    "CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, src INT, r DOUBLE, at DATETIME(6) DEFAULT NOW(6)) ENGINE=InnoDB",
    "CREATE TRIGGER t_ai_audit AFTER INSERT ON t_ai FOR EACH ROW INSERT INTO audit (src, r) VALUES (NEW.id, RAND())",
    "CREATE PROCEDURE p_ins(n INT) MODIFIES SQL DATA BEGIN DECLARE i INT DEFAULT 0; \
     WHILE i < n DO INSERT INTO t_ai (k, v, u, r) VALUES (i, 'proc', UUID(), RAND()); SET i = i + 1; END WHILE; END",
    "CREATE TABLE t_uk (id INT PRIMARY KEY, n INT NOT NULL, note VARCHAR(50)) ENGINE=InnoDB",
    "CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB",
    "CREATE TABLE child (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT, x INT, \
     FOREIGN KEY (parent_id) REFERENCES parent(id) ON DELETE CASCADE ON UPDATE CASCADE) ENGINE=InnoDB",
    "CREATE TABLE j (id INT PRIMARY KEY, doc JSON, a INT AS (JSON_VALUE(doc, '$.a')) STORED, \
     b VARCHAR(20) AS (JSON_VALUE(doc, '$.b')) VIRTUAL) ENGINE=InnoDB",
    "CREATE TABLE nopk (a INT, b VARCHAR(20)) ENGINE=InnoDB",
    "CREATE TABLE utf (id INT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(100) CHARACTER SET utf8mb4) ENGINE=InnoDB",
    "CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB",
    "CREATE TABLE big (id INT PRIMARY KEY, x INT) ENGINE=InnoDB",
    "CREATE TABLE ld (id INT PRIMARY KEY, s VARCHAR(20)) ENGINE=InnoDB",
];

/// One random operation of a workload client; errors (deadlocks, duplicate keys) are
/// part of the workload: whatever the leader committed must be on the followers.
pub async fn random_op(c: &mut Conn, rng: &mut rand::rngs::StdRng, me: usize) -> Result<(), mysql_async::Error> {
    let k: i32 = rng.random_range(0..50);
    match rng.random_range(0..15) {
        0 => c.query_drop(format!("INSERT INTO t_ai (k, v, sys, u, us, r) VALUES ({k}, 'w{me}', SYSDATE(6), UUID(), UUID_SHORT(), RAND())")).await,
        1 => c.query_drop(format!("INSERT IGNORE INTO t_uk VALUES ({k}, {me}, 'ignore')")).await,
        2 => c.query_drop(format!("INSERT INTO t_uk VALUES ({k}, 1, 'odku') ON DUPLICATE KEY UPDATE n = n + 1, note = CONCAT('odku', RAND() < 2)")).await,
        3 => c.query_drop(format!("REPLACE INTO t_uk VALUES ({k}, {me}, UUID())")).await,
        4 => c.query_drop("UPDATE t_ai SET k = k + 1, r = RAND() LIMIT 3").await,
        5 => c.query_drop(format!("INSERT INTO t_ai (k, v, u) SELECT k, 'copy', UUID() FROM t_ai WHERE k = {k} LIMIT 2")).await,
        6 => c.query_drop(format!("CALL p_ins({})", rng.random_range(1..4))).await,
        7 => {
            c.query_drop(format!("INSERT INTO parent VALUES ({k}, 'p') ON DUPLICATE KEY UPDATE name = 'p2'")).await?;
            c.query_drop(format!("INSERT INTO child (parent_id, x) VALUES ({k}, {me})")).await?;
            if rng.random_bool(0.3) {
                c.query_drop(format!("DELETE FROM parent WHERE id = {k}")).await?;
            }
            Ok(())
        }
        8 => c.query_drop(format!("REPLACE INTO j (id, doc) VALUES ({k}, JSON_OBJECT('a', {me}, 'b', UUID(), 'c', RAND()))")).await,
        9 => c.query_drop(format!("INSERT INTO nopk VALUES ({k}, 'x'), ({k}, 'y'); DELETE FROM nopk WHERE a = {k} LIMIT 1")).await,
        10 => c.query_drop(format!("INSERT INTO utf (s) VALUES ('zażółć 🐟 {me}')")).await,
        11 => {
            // A transaction with a savepoint rolled back to, committed or rolled back.
            c.query_drop("BEGIN").await?;
            c.query_drop(format!("INSERT INTO t_ai (k, v, created) VALUES ({k}, 'tx', NOW(6))")).await?;
            c.query_drop("SAVEPOINT s1").await?;
            c.query_drop(format!("UPDATE t_uk SET n = n + 100 WHERE id = {k}")).await?;
            c.query_drop("ROLLBACK TO SAVEPOINT s1").await?;
            c.query_drop(format!("INSERT INTO t_uk VALUES ({}, 7, 'tx') ON DUPLICATE KEY UPDATE n = n - 1", k + 100)).await?;
            let end = if rng.random_bool(0.25) { "ROLLBACK" } else { "COMMIT" };
            c.query_drop(end).await
        }
        12 => {
            // Temporary tables are not replicated; what they feed into a real table is.
            c.query_drop("CREATE TEMPORARY TABLE IF NOT EXISTS tmp (a INT)").await?;
            c.query_drop(format!("INSERT INTO tmp VALUES ({k})")).await?;
            c.query_drop("INSERT INTO t_ai (k, v) SELECT a, 'from-tmp' FROM tmp").await?;
            c.query_drop("DROP TEMPORARY TABLE tmp").await
        }
        13 => {
            // Prepared statements, transaction control included (as sysbench sends it).
            c.exec_drop("BEGIN", ()).await?;
            c.exec_drop("INSERT INTO t_ai (k, v, u) VALUES (?, ?, UUID())", (k, format!("ps{me}"))).await?;
            c.exec_drop("UPDATE t_uk SET n = n + ? WHERE id = ?", (1, k)).await?;
            c.exec_drop("COMMIT", ()).await?;
            c.exec_drop("INSERT INTO t_ai (k, v, r) VALUES (?, 'ps-auto', RAND())", (k,)).await
        }
        _ => {
            // autocommit=0: the first statement opens the transaction.
            c.query_drop("SET autocommit = 0").await?;
            c.query_drop(format!("DELETE FROM t_uk WHERE id = {k}")).await?;
            c.query_drop(format!("INSERT INTO t_ai (k, v) VALUES ({k}, 'ac0')")).await?;
            let r = c.query_drop("COMMIT").await;
            c.query_drop("SET autocommit = 1").await?;
            r
        }
    }
}

/// `clients` workload clients through `opts`, each running `ops` random operations
/// (seeded from `seed`); each task answers how many succeeded.
pub fn workload_clients(
    opts: mysql_async::Opts,
    seed: u64,
    clients: usize,
    ops: usize,
) -> Vec<tokio::task::JoinHandle<usize>> {
    (0..clients)
        .map(|me| {
            let opts = opts.clone();
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ ((me as u64 + 1) * 0x9E37_79B9));
                let mut c = Conn::new(opts).await.unwrap();
                let mut ok = 0;
                for _ in 0..ops {
                    match random_op(&mut c, &mut rng, me).await {
                        Ok(()) => ok += 1,
                        Err(mysql_async::Error::Server(_)) => tidy(&mut c).await,
                        Err(e) => panic!("client {me}: {e}"),
                    }
                }
                ok
            })
        })
        .collect()
}

/// Ends any transaction an interrupted operation left open (`autocommit` back on).
pub async fn tidy(c: &mut Conn) {
    let _ = c.query_drop("ROLLBACK").await;
    let _ = c.query_drop("SET autocommit = 1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_randomized_workload_through_capture_is_identical_on_two_appliers() {
    let seed: u64 = std::env::var("SHOAL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("replication workload seed {seed} (SHOAL_SEED={seed} replays it)");
    let leader = Leader::start("repl").await;
    let mut followers = vec![Follower::start(2).await, Follower::start(3).await];
    let schema = leader.scratch.db.clone();
    // The scratch database predates the tail: create it on the followers as an operator
    // would before the first entry (everything after comes through the log).
    for f in &followers {
        f.db.sql(&format!("CREATE DATABASE {schema}"));
    }
    let mut c = leader.client().await;
    for ddl in SCHEMA {
        c.query_drop(*ddl).await.unwrap_or_else(|e| panic!("{ddl}: {e}"));
    }
    // A 20 MiB blob and a 100,000-row transaction.
    let blob: Vec<u8> = (0..20 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    c.exec_drop("INSERT INTO blobs VALUES (1, ?)", (blob,)).await.unwrap();
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO big SELECT seq, seq * 7 FROM seq_1_to_100000").await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    // Workload: 6 clients, DDL on the side, direct writes on the leader's MariaDB.
    let tasks = workload_clients(leader.opts(), seed, 6, 60);
    let ddl = {
        let opts = leader.opts();
        tokio::spawn(async move {
            let mut c = Conn::new(opts).await.unwrap();
            for i in 0..4 {
                for sql in [
                    format!("CREATE TABLE d{i} (id INT PRIMARY KEY, v INT)"),
                    format!("INSERT INTO d{i} VALUES (1, 1), (2, 2)"),
                    format!("ALTER TABLE d{i} ADD COLUMN w VARCHAR(10) DEFAULT 'w'"),
                    format!("UPDATE d{i} SET w = 'x' WHERE id = 1"),
                    format!("RENAME TABLE d{i} TO e{i}"),
                    format!("CREATE TABLE f{i} AS SELECT id, v * 2 AS v2 FROM e{i}"),
                    format!("DROP TABLE e{i}"),
                ] {
                    c.query_drop(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                }
            }
        })
    };
    for i in 0..10 {
        leader.db.sql(&format!("INSERT INTO {schema}.t_ai (k, v, u) VALUES ({i}, 'direct', UUID())"));
    }
    let (ok, _, _) = mariadb_cli(
        leader.shoal.port(),
        &leader.scratch.user,
        Scratch::PASSWORD,
        &[
            "--local-infile=1",
            &schema,
            "-e",
            "LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE ld FIELDS TERMINATED BY ','",
        ],
        Some(&(1..=500).map(|i| format!("{i},row{i}\n")).collect::<String>()),
    );
    assert!(ok, "LOAD DATA LOCAL through shoal");
    let mut done = 0;
    for t in tasks {
        done += t.await.unwrap();
    }
    ddl.await.unwrap();
    assert!(done > 200, "only {done} of 360 operations succeeded");
    // One more write through shoal: when it is durable, every earlier binlog group is too.
    c.query_drop("INSERT INTO t_ai (k, v) VALUES (-1, 'last')").await.unwrap();
    let last = leader.wal.last_lsn();
    for f in &mut followers {
        catch_up(&mut f.applier, &leader.wal, last).await.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    let want = checksums(&leader.db, &schema).await;
    assert!(want.len() >= SCHEMA.len() - 2 + 4, "tables on the leader: {want:?}");
    for f in &followers {
        assert_eq!(checksums(&f.db, &schema).await, want, "follower on port {} differs (seed {seed})", f.db.port);
        assert_eq!(
            checksums(&f.db, "shoal_meta").await.into_iter().find(|(t, _)| t == "txn"),
            checksums(&leader.db, "shoal_meta").await.into_iter().find(|(t, _)| t == "txn"),
            "markers differ (seed {seed})"
        );
    }
    assert_eq!(count(&leader.db, &schema, "SELECT COUNT(*) FROM big").await, 100_000);
    assert_eq!(count(&followers[1].db, &schema, "SELECT COUNT(*) FROM ld").await, 500);
    assert_eq!(count(&followers[0].db, &schema, "SELECT COUNT(*) FROM t_ai WHERE v = 'direct'").await, 10);
    assert_eq!(count(&followers[0].db, &schema, "SELECT LENGTH(b) FROM blobs").await, 20 << 20);
    let prepared = leader.db.sql("XA RECOVER");
    assert!(prepared.trim().is_empty(), "transactions left prepared: {prepared}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_visible_before_durable_and_a_refused_commit_leaves_no_trace() {
    let leader = Leader::start("vis").await;
    let mut c = leader.client().await;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))").await.unwrap();
    leader.gate.hold();
    // An autocommit insert and a transaction, both waiting for durability.
    let opts = leader.opts();
    let writer = tokio::spawn(async move {
        let mut c = Conn::new(opts).await.unwrap();
        c.query_drop("INSERT INTO t VALUES (1, 'auto')").await
    });
    let opts = leader.opts();
    let txn = tokio::spawn(async move {
        let mut c = Conn::new(opts).await.unwrap();
        c.query_drop("BEGIN").await?;
        c.query_drop("INSERT INTO t VALUES (2, 'txn')").await?;
        c.query_drop("COMMIT").await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!writer.is_finished() && !txn.is_finished(), "the client got its OK before the entry was durable");
    let mut direct = leader.direct().await;
    for level in ["READ COMMITTED", "REPEATABLE READ"] {
        direct.query_drop(format!("SET SESSION TRANSACTION ISOLATION LEVEL {level}")).await.unwrap();
        let n: i64 = direct.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
        assert_eq!(n, 0, "{level} sees rows that are not durable yet");
        let through: i64 = c.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
        assert_eq!(through, 0, "another shoal session sees rows that are not durable yet");
    }
    leader.gate.release();
    writer.await.unwrap().unwrap();
    txn.await.unwrap().unwrap();
    let n: i64 = direct.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
    assert_eq!(n, 2);
    // A durability step that fails: the client gets 1180, the row is nowhere.
    leader.gate.fail.store(true, Ordering::SeqCst);
    let e = c.query_drop("INSERT INTO t VALUES (3, 'refused')").await.unwrap_err();
    match e {
        mysql_async::Error::Server(s) => assert_eq!(s.code, 1180, "{s:?}"),
        other => panic!("{other}"),
    }
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO t VALUES (4, 'refused')").await.unwrap();
    let e = c.query_drop("COMMIT").await.unwrap_err();
    assert!(matches!(&e, mysql_async::Error::Server(s) if s.code == 1180), "{e}");
    leader.gate.fail.store(false, Ordering::SeqCst);
    let n: i64 = direct.query_first("SELECT COUNT(*) FROM t WHERE id IN (3, 4)").await.unwrap().unwrap();
    assert_eq!(n, 0, "a refused commit left rows on the leader");
    let recovered: Vec<(i64, i64, i64, Vec<u8>)> = direct.query("XA RECOVER").await.unwrap();
    assert!(recovered.is_empty(), "prepared transactions left: {recovered:?}");
    // The session goes on, and a follower applying the log has rows 1 and 2 only, then
    // 5 and 6, written under LOCK TABLES (MariaDB refuses XA START there: they run as
    // sent and the tail replicates them after the fact).
    c.query_drop("INSERT INTO t VALUES (5, 'after')").await.unwrap();
    c.query_drop("LOCK TABLES t WRITE").await.unwrap();
    c.exec_drop("INSERT INTO t VALUES (?, 'locked')", (6,)).await.unwrap();
    c.query_drop("UNLOCK TABLES").await.unwrap();
    c.query_drop("INSERT INTO t VALUES (7, 'last')").await.unwrap();
    let mut f = Follower::start(2).await;
    f.db.sql(&format!("CREATE DATABASE {}", leader.scratch.db));
    catch_up(&mut f.applier, &leader.wal, leader.wal.last_lsn()).await.unwrap();
    let ids = f.db.sql(&format!("SELECT GROUP_CONCAT(id ORDER BY id) FROM {}.t", leader.scratch.db));
    assert_eq!(ids.trim(), "1,2,5,6,7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_leaders_prepared_transactions_are_decided_by_the_log() {
    let mut leader = Leader::start("recover").await;
    let mut c = leader.client().await;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY)").await.unwrap();
    // Durable but never told: the entry is in the WAL, the session waits forever.
    leader.gate.append_then_hang.store(true, Ordering::SeqCst);
    let opts = leader.opts();
    let durable =
        tokio::spawn(async move { Conn::new(opts).await.unwrap().query_drop("INSERT INTO t VALUES (1)").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = leader.wal.last_lsn();
    // Not durable: held before the WAL.
    leader.gate.append_then_hang.store(false, Ordering::SeqCst);
    leader.gate.hold();
    let opts = leader.opts();
    let held = tokio::spawn(async move { Conn::new(opts).await.unwrap().query_drop("INSERT INTO t VALUES (2)").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(leader.wal.last_lsn(), before, "the held entry reached the WAL");
    let prepared = leader.db.sql("XA RECOVER");
    assert_eq!(prepared.lines().count(), 2, "both transactions are prepared on the leader: {prepared}");
    // kill -9 the leader's MariaDB, restart it, and decide.
    leader.db.restart();
    let xids = LocalWal::new(leader.wal.clone()).durable_xids().unwrap();
    let mut root = Conn::new(root_opts(&leader.db)).await.unwrap();
    let done = recover(&mut root, |x| xids.contains(x)).await.unwrap();
    assert_eq!((done.committed.len(), done.rolled_back.len()), (1, 1), "{done:?}");
    let ids = leader.db.sql(&format!("SELECT GROUP_CONCAT(id) FROM {}.t", leader.scratch.db));
    assert_eq!(ids.trim(), "1", "the durable transaction committed, the other rolled back");
    let left: Vec<(i64, i64, i64, Vec<u8>)> = root.query("XA RECOVER").await.unwrap();
    assert!(left.is_empty());
    // The clients' sessions lost their server; what became of their writes is what the
    // log says (a later issue answers them "outcome unknown").
    durable.abort();
    held.abort();
}

#[tokio::test]
async fn a_leader_without_row_binlog_is_refused_naming_each_setting() {
    let db = MariaDb::start(&["--binlog-format=STATEMENT"]);
    let mut c = Conn::new(root_opts(&db)).await.unwrap();
    let e = prepare_leader(&mut c).await.unwrap_err().to_string();
    for want in [
        "log_bin is OFF",
        "log_bin = mariadb-bin",
        "binlog_format is STATEMENT",
        "binlog_format = ROW",
        "restart MariaDB",
    ] {
        assert!(e.contains(want), "{want:?} missing from: {e}");
    }
    assert!(!e.contains("server_id"), "server_id is set by default: {e}");
}

/// The cluster's write path in one process: capture on node 1's MariaDB, entries
/// committed by a three-node Raft log, applied by each node's applier (node 1 skips what
/// its MariaDB holds), and all three MariaDBs checksum-identical afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn captured_writes_committed_by_three_raft_nodes_are_identical_on_each_mariadb() {
    use shoal::apply::RaftApplier;
    use shoal::capture::raft::RaftDurable;
    use shoal::cluster::network::Secret;
    use shoal::cluster::node::{Node, Start};
    let seed: u64 = std::env::var("SHOAL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("raft replication seed {seed} (SHOAL_SEED={seed} replays it)");
    let dbs = [MariaDb::start(&LEADER), MariaDb::start(&["--server-id=2"]), MariaDb::start(&["--server-id=3"])];
    let scratch = Scratch::new(&dbs[0], "raft");
    for db in &dbs[1..] {
        db.sql(&format!("CREATE DATABASE {}", scratch.db));
    }
    let mut root = Conn::new(root_opts(&dbs[0])).await.unwrap();
    prepare_leader(&mut root).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = Secret::new(b"replication-test-secret-0123456789").unwrap();
    let addrs: std::collections::BTreeMap<u64, String> =
        (1..=3).map(|id| (id, format!("127.0.0.1:{}", crate::harness::free_port()))).collect();
    // Node 1's applier asks the capture, started below, what it proposed itself.
    let capture_cell: Arc<std::sync::OnceLock<Arc<Capture>>> = Arc::default();
    let mut nodes = Vec::new();
    for (i, (&id, addr)) in addrs.iter().enumerate() {
        let cfg = crate::harness::test_node_config(id, addr, dir.path(), &secret);
        let mut applier = Applier::connect(root_opts(&dbs[i])).await.unwrap();
        applier.prepare().await.unwrap();
        let mut ra = RaftApplier::new(applier);
        if id == 1 {
            let cell = capture_cell.clone();
            ra = ra.skipping_own(Arc::new(move |e| cell.get().is_some_and(|c| c.is_own(e))));
        }
        let start = if id == 1 { Start::Bootstrap { members: addrs.clone() } } else { Start::Restart };
        nodes.push(Arc::new(Node::start(cfg, ra, start).await.unwrap()));
    }
    let mut metrics = nodes[0].raft().metrics();
    metrics.wait_for(|m| m.current_leader == Some(1)).await.unwrap();
    let (tail, found) = BinlogTail::start(
        dump_target(&dbs[0].addr(), "root", "", shoal::backend::tls::BackendTls::disabled()),
        9001,
        StartAt::End,
    )
    .await
    .unwrap();
    let pos = dbs[0].sql("SELECT @@gtid_binlog_pos");
    let capture = Capture::start(
        "n1",
        found,
        Arc::new(RaftDurable::new(&nodes[0], std::time::Duration::from_secs(10))),
        pos.trim(),
    );
    capture_cell.set(capture.clone()).ok().unwrap();
    let shoal = Shoal::start(&dbs[0]);
    shoal.proxy.capture.store(Some(capture.clone()));
    let opts = shoal.opts(&scratch.user, Scratch::PASSWORD, Some(&scratch.db));
    let mut c = Conn::new(opts.clone()).await.unwrap();
    for ddl in SCHEMA {
        c.query_drop(*ddl).await.unwrap_or_else(|e| panic!("{ddl}: {e}"));
    }
    let tasks = workload_clients(opts.clone(), seed, 4, 40);
    for i in 0..5 {
        dbs[0].sql(&format!("INSERT INTO {}.t_ai (k, v, u) VALUES ({i}, 'direct', UUID())", scratch.db));
    }
    let mut done = 0;
    for t in tasks {
        done += t.await.unwrap();
    }
    assert!(done > 100, "only {done} of 160 operations succeeded");
    // Group commit: 32 connections inserting at once share log entries (one LSN for
    // several transactions), and every transaction is still applied on every node.
    c.query_drop("CREATE TABLE gc (id INT PRIMARY KEY)").await.unwrap();
    let inserts: Vec<_> = (0..32)
        .map(|t| {
            let opts = opts.clone();
            tokio::spawn(async move {
                let mut c = Conn::new(opts).await.unwrap();
                let mut lsns = Vec::new();
                for i in 0..10 {
                    c.query_drop(format!("INSERT INTO gc VALUES ({})", t * 100 + i)).await.unwrap();
                    let lsn: Option<u64> = c.query_first("SELECT @@shoal_last_lsn").await.unwrap().flatten();
                    lsns.push(lsn.expect("an LSN after a write"));
                }
                c.disconnect().await.unwrap();
                lsns
            })
        })
        .collect();
    let mut lsns = Vec::new();
    for t in inserts {
        lsns.extend(t.await.unwrap());
    }
    let distinct: std::collections::BTreeSet<u64> = lsns.iter().copied().collect();
    println!("group commit: 320 transactions in {} log entries", distinct.len());
    assert!(distinct.len() < lsns.len(), "no two transactions shared a log entry");
    c.query_drop("INSERT INTO t_ai (k, v) VALUES (-1, 'last')").await.unwrap();
    // Everything the last write waited for is committed; wait until each node applied it.
    let last = metrics.borrow().last_applied.map(|id| id.index + 1).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // The followers record it in shoal_meta.applied; the leader skips its own entries
    // there (its MariaDB has them), so its Raft applied index counts.
    metrics.wait_for(|m| m.last_applied.map(|id| id.index + 1) >= Some(last)).await.unwrap();
    for db in &dbs[1..] {
        loop {
            let lsn: u64 = db.sql("SELECT lsn FROM shoal_meta.applied").trim().parse().unwrap_or(0);
            if lsn >= last {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "node on port {} applied through {lsn}, not {last}", db.port);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let want = checksums(&dbs[0], &scratch.db).await;
    for db in &dbs[1..] {
        assert_eq!(checksums(db, &scratch.db).await, want, "node on port {} differs (seed {seed})", db.port);
        assert_eq!(
            checksums(db, "shoal_meta").await[1..],
            checksums(&dbs[0], "shoal_meta").await[1..],
            "markers (seed {seed})"
        );
    }
    drop(tail);
}
