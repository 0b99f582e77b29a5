//! The applier (`src/apply/`) against real `mariadbd` processes: log entries are built
//! from a "leader" server's own binlog (raw events, grouped per statement by
//! `binlog_file.rs`), applied on other servers, and compared with `CHECKSUM TABLE`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use shoal::apply::{Applier, ApplyError, Committed, Limits, META_TABLES};
use shoal::capture::{Entry, Origin, RowsEntry, StatementEntry};

use crate::binlog_file;
use crate::harness::MariaDb;

const LEADER_OPTS: [&str; 4] =
    ["--server-id=1", "--log-bin=mariadb-bin", "--binlog-format=ROW", "--binlog-row-image=FULL"];
/// A follower's MariaDB runs with its own binlog (it may become leader); the applier
/// turns binlogging off for its session.
const FOLLOWER_BINLOG_OPTS: [&str; 3] = ["--server-id=2", "--log-bin=mariadb-bin", "--binlog-format=ROW"];
/// Most argument bytes one `mariadb -e` call gets (Linux caps one argument at 128 KiB).
const SCRIPT_BYTES_MAX: usize = 100 * 1024;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

fn opts(db: &MariaDb) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default().ip_or_hostname("127.0.0.1").tcp_port(db.port).user(Some("root")).into()
}

fn follower() -> MariaDb {
    MariaDb::start(&[])
}

async fn applier(db: &MariaDb) -> Applier {
    let mut a = Applier::connect(opts(db)).await.unwrap();
    a.prepare().await.unwrap();
    a
}

/// A leader server and the log built from what it ran, in order.
struct Leader {
    db: MariaDb,
    /// The log so far (LSN = index + 1, term 1).
    log: Vec<Committed>,
    /// Xids of transactions run but not yet read back from the binlog, in commit order
    /// (`None`: run without a marker, as a write that bypassed shoal).
    pending: Vec<Option<String>>,
    /// Row transactions of the binlog already turned into entries.
    read: usize,
    /// Transactions run, for unique xids.
    txns: usize,
}

impl Leader {
    fn start() -> Leader {
        let db = MariaDb::start(&LEADER_OPTS);
        db.sql(&format!("SET SESSION sql_log_bin = 0; {};", META_TABLES.join("; ")));
        Leader { db, log: Vec::new(), pending: Vec::new(), read: 0, txns: 0 }
    }

    fn push(&mut self, entry: Entry) {
        let lsn = self.log.len() as u64 + 1;
        self.log.push(Committed { lsn, term: 1, entry });
    }

    /// Runs DDL on the leader and logs it as a statement entry.
    fn ddl(&mut self, schema: Option<&str>, session: &[&str], sql: &str) {
        self.sync();
        let mut script = String::new();
        for s in session {
            script.push_str(&format!("SET SESSION {s}; "));
        }
        if let Some(d) = schema {
            script.push_str(&format!("USE `{d}`; "));
        }
        script.push_str(sql);
        self.db.sql(&script);
        let id = format!("ddl-{}", self.log.len());
        let session = session.iter().map(|s| s.to_string()).collect();
        self.push(Entry::Statement(StatementEntry { id, schema: schema.map(Into::into), session, sql: sql.into() }));
    }

    /// Runs transactions on the leader, each with its exactly-once marker row, as few
    /// client calls as fit; returns their xids.
    fn run(&mut self, bodies: &[String]) -> Vec<String> {
        self.run_marked(bodies.iter().map(|b| (b.as_str(), true))).into_iter().flatten().collect()
    }

    /// Runs transactions, with a marker row where the flag says so (without: an
    /// unmanaged entry, whose exactly-once rests on the applied LSN alone).
    fn run_marked<'a>(&mut self, bodies: impl IntoIterator<Item = (&'a str, bool)>) -> Vec<Option<String>> {
        let mut xids = Vec::new();
        let mut script = String::new();
        for (body, marked) in bodies {
            self.txns += 1;
            let xid = marked.then(|| format!("shoal-x-{}", self.txns));
            match &xid {
                Some(x) => {
                    script.push_str(&format!("BEGIN; {body}; INSERT INTO shoal_meta.txn VALUES ('{x}'); COMMIT;\n"))
                }
                None => script.push_str(&format!("BEGIN; {body}; COMMIT;\n")),
            }
            xids.push(xid);
            if script.len() > SCRIPT_BYTES_MAX {
                self.db.sql(&std::mem::take(&mut script));
            }
        }
        if !script.is_empty() {
            self.db.sql(&script);
        }
        self.pending.extend(xids.iter().cloned());
        xids
    }

    /// Turns the transactions run since the last call into rows entries.
    fn sync(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let txns = binlog_file::transactions(&self.db.dir.path().join("data"), "mariadb-bin");
        let total = txns.len();
        assert_eq!(total - self.read, self.pending.len(), "the leader's binlog holds one row transaction per run()");
        let new = txns.into_iter().skip(self.read);
        self.read = total;
        for (t, xid) in new.zip(std::mem::take(&mut self.pending)) {
            let origin = match xid {
                Some(xid) => Origin::Captured { xid },
                None => Origin::Unmanaged { gtid: format!("unmanaged-{}", self.log.len() + 1) },
            };
            self.push(Entry::Rows(RowsEntry { origin, format: t.format, statements: t.statements }));
        }
    }

    fn log(&mut self) -> Vec<Committed> {
        self.sync();
        self.log.clone()
    }
}

fn checksums(db: &MariaDb, tables: &str) -> String {
    db.sql(&format!("CHECKSUM TABLE {tables}"))
}

/// Tables with data, trigger, blob, no-PK, JSON and foreign-key cascades; the blob row is
/// 5 MB when `big`.
fn workload(l: &mut Leader, big: bool) {
    l.ddl(None, &[], "CREATE DATABASE app");
    let strict = ["sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'"];
    l.ddl(
        Some("app"),
        &strict,
        "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, created DATETIME(6) NOT NULL DEFAULT NOW(6), \
         uid CHAR(36) NOT NULL, note VARCHAR(100), amount DECIMAL(10,2), doc JSON) ENGINE=InnoDB",
    );
    l.ddl(
        Some("app"),
        &strict,
        "CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT, r DOUBLE, at DATETIME(6) DEFAULT NOW(6)) ENGINE=InnoDB",
    );
    l.ddl(
        Some("app"),
        &[],
        "CREATE TRIGGER orders_ai AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (order_id, r) VALUES (NEW.id, RAND())",
    );
    l.ddl(Some("app"), &[], "CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB");
    l.ddl(Some("app"), &[], "CREATE TABLE nopk (a INT, b VARCHAR(20)) ENGINE=InnoDB");
    l.ddl(Some("app"), &[], "CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB");
    l.ddl(
        Some("app"),
        &[],
        "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, FOREIGN KEY (parent_id) REFERENCES parent (id) \
         ON DELETE CASCADE ON UPDATE CASCADE) ENGINE=InnoDB",
    );
    let bodies = [
        "INSERT INTO app.orders (uid, note, amount, doc) VALUES (UUID(), 'a', RAND() * 100, JSON_OBJECT('k', 1, 'l', JSON_ARRAY(1, 2))), \
         (UUID(), 'b', 2.5, '{\"x\": [true, null]}'), (UUID(), 'c', 3.5, NULL)",
        "UPDATE app.orders SET amount = amount + 1, doc = JSON_SET(COALESCE(doc, '{}'), '$.u', NOW(6)) WHERE id <= 2; \
         DELETE FROM app.orders WHERE id = 3; INSERT INTO app.orders (uid, note) VALUES (UUID(), 'd')",
        "INSERT INTO app.orders (uid, note, amount) SELECT UUID(), CONCAT('bulk-', seq), seq FROM app.seq_1_to_300",
        if big {
            "INSERT INTO app.blobs VALUES (1, REPEAT(MD5(RAND()), 163840)), (2, 'small')"
        } else {
            "INSERT INTO app.blobs VALUES (1, REPEAT(MD5(RAND()), 1024)), (2, 'small')"
        },
        "UPDATE app.blobs SET b = CONCAT(b, 'tail') WHERE id = 2",
        "INSERT INTO app.nopk VALUES (1, 'a'), (1, 'a'), (2, 'b'), (3, NULL)",
        "UPDATE app.nopk SET b = 'c' WHERE a = 1 LIMIT 1; DELETE FROM app.nopk WHERE a = 2",
        "INSERT INTO app.parent VALUES (1, 'p1'), (2, 'p2'), (3, 'p3'); INSERT INTO app.child VALUES (10, 1), (11, 1), (12, 2), (13, 3)",
        "DELETE FROM app.parent WHERE id = 1; UPDATE app.parent SET id = 20 WHERE id = 2",
        "UPDATE app.orders SET note = CONCAT(note, '!') WHERE id % 7 = 0; DELETE FROM app.orders WHERE id % 11 = 0",
    ];
    l.run(&bodies.map(String::from));
}

const WORKLOAD_TABLES: &str = "app.orders, app.audit, app.blobs, app.nopk, app.parent, app.child, shoal_meta.txn";

/// 1. A leader workload applied on two appliers (one with its own binlog on, one without)
///    gives identical checksums for every table; the cascaded child rows (not in the
///    leader's binlog) are redone by the followers' InnoDB.
#[test]
fn leader_workload_applied_on_two_followers_is_checksum_identical() {
    let mut l = Leader::start();
    workload(&mut l, true);
    let log = l.log();
    assert!(log.len() > 15, "{}", log.len());
    let want = checksums(&l.db, WORKLOAD_TABLES);
    assert_eq!(l.db.sql("SELECT COUNT(*) FROM app.child").trim(), "2", "the cascades ran on the leader");
    let rt = runtime();
    for f in [MariaDb::start(&FOLLOWER_BINLOG_OPTS), follower()] {
        rt.block_on(async {
            let mut a = applier(&f).await;
            // Two calls: the second session needs the Format_description again.
            let (first, rest) = log.split_at(log.len() / 2);
            assert_eq!(a.apply(first).await.unwrap(), first.last().unwrap().lsn);
            let mut b = applier(&f).await;
            assert_eq!(b.apply(rest).await.unwrap(), log.last().unwrap().lsn);
            assert_eq!(b.applied_lsn().await.unwrap(), log.len() as u64);
        });
        assert_eq!(checksums(&f, WORKLOAD_TABLES), want, "follower on port {}", f.port);
        assert_eq!(f.sql("SELECT COUNT(*) FROM app.audit").trim(), l.db.sql("SELECT COUNT(*) FROM app.audit").trim());
    }
}

/// 2. Applying a batch twice, or one that overlaps the applied LSN, adds nothing; an
///    entry whose marker this MariaDB already holds is skipped but advances the LSN.
#[test]
fn entries_apply_exactly_once() {
    let mut l = Leader::start();
    l.ddl(None, &[], "CREATE DATABASE app");
    l.ddl(Some("app"), &[], "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB");
    let bodies: Vec<String> = (1..=20).map(|i| format!("INSERT INTO app.t VALUES ({i}, 'v{i}')")).collect();
    let xids = l.run(&bodies);
    let log = l.log();
    let f = follower();
    let rt = runtime();
    rt.block_on(async {
        let mut a = applier(&f).await;
        // Entry 10's xid is already here: as if this node had committed it as the leader.
        f.sql(&format!("INSERT INTO shoal_meta.txn VALUES ('{}')", xids[7]));
        assert_eq!(a.apply(&log[..12]).await.unwrap(), 12);
        assert_eq!(a.apply(&log[..12]).await.unwrap(), 12, "the same batch again");
        assert_eq!(a.apply(&log[5..16]).await.unwrap(), 16, "overlapping the applied LSN");
        let mut b = applier(&f).await;
        assert_eq!(b.applied_lsn().await.unwrap(), 16);
        assert_eq!(b.apply(&log).await.unwrap(), log.len() as u64);
        assert_eq!(b.apply(&log).await.unwrap(), log.len() as u64);
    });
    assert_eq!(f.sql("SELECT COUNT(*) FROM app.t").trim(), "19");
    assert_eq!(f.sql("SELECT COUNT(*) FROM app.t WHERE id = 8").trim(), "0", "entry with a present marker skipped");
    assert_eq!(f.sql("SELECT COUNT(*) FROM shoal_meta.txn").trim(), "20");
    assert_eq!(f.sql("SELECT lsn, term FROM shoal_meta.applied").trim(), format!("{}\t1", log.len()));
}

/// 3. A diverged follower: the entry updating a row it lacks fails with an error naming
///    its LSN and MariaDB's error; the entries before it in the batch are committed,
///    nothing of it or after it is, and the applied LSN stops before it.
#[test]
fn a_failing_entry_is_named_and_nothing_of_it_is_applied() {
    let mut l = Leader::start();
    l.ddl(None, &[], "CREATE DATABASE app");
    l.ddl(Some("app"), &[], "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB");
    l.run(&["INSERT INTO app.t VALUES (1, 'a'), (2, 'b'), (3, 'c')".to_string()]);
    l.run(&[
        "INSERT INTO app.t VALUES (4, 'd')".to_string(),
        "INSERT INTO app.t VALUES (5, 'e')".to_string(),
        "INSERT INTO app.t VALUES (6, 'f'); UPDATE app.t SET v = 'B' WHERE id IN (1, 2)".to_string(),
        "INSERT INTO app.t VALUES (7, 'g')".to_string(),
    ]);
    let log = l.log();
    let (setup, batch) = log.split_at(3);
    let failing = batch[2].lsn;
    let f = follower();
    let rt = runtime();
    rt.block_on(async {
        let mut a = applier(&f).await;
        a.apply(setup).await.unwrap();
        f.sql("DELETE FROM app.t WHERE id = 2");
        let err = a.apply(batch).await.unwrap_err();
        let ApplyError::Entry { lsn, code, .. } = &err else { panic!("{err}") };
        assert_eq!((*lsn, *code), (failing, 1032), "{err}");
        let text = err.to_string();
        assert!(text.contains(&format!("LSN {failing}")) && text.contains("shoal-x-4"), "{text}");
        assert_eq!(a.applied_lsn().await.unwrap(), failing - 1);
        // Applying again fails the same way: nothing is skipped.
        let again = a.apply(batch).await.unwrap_err();
        assert!(matches!(again, ApplyError::Entry { lsn, .. } if lsn == failing), "{again}");
    });
    assert_eq!(f.sql("SELECT id, v FROM app.t ORDER BY id"), "1\ta\n3\tc\n4\td\n5\te\n");
    assert_eq!(f.sql("SELECT lsn FROM shoal_meta.applied").trim(), (failing - 1).to_string());
    assert_eq!(f.sql("SELECT COUNT(*) FROM shoal_meta.txn WHERE xid IN ('shoal-x-4', 'shoal-x-5')").trim(), "0");
}

/// 4. kill -9 of the follower's MariaDB at random points (seeded; `SHOAL_APPLY_SEED`
///    replays a run) while a few thousand entries are applied in small transactions;
///    after each restart applying resumes from `applied_lsn()`. At the end the data is
///    checksum-identical to the leader's: nothing missing, nothing twice.
#[test]
fn applying_survives_kill_9_of_the_follower_mariadb() {
    const ENTRIES: usize = 4000;
    const KILLS: usize = 20;
    let seed: u64 = std::env::var("SHOAL_APPLY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    println!("applying_survives_kill_9_of_the_follower_mariadb: SHOAL_APPLY_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut l = Leader::start();
    l.ddl(None, &[], "CREATE DATABASE app");
    l.ddl(Some("app"), &[], "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40), at DATETIME(6)) ENGINE=InnoDB");
    let bodies: Vec<String> = (1..=ENTRIES)
        .map(|i| match i % 10 {
            0 => format!("UPDATE app.t SET v = UUID() WHERE id = {}", i - 5),
            _ => format!("INSERT INTO app.t VALUES ({i}, UUID(), NOW(6))"),
        })
        .collect();
    // Every third one without a marker: its exactly-once rests on the applied LSN alone.
    l.run_marked(bodies.iter().enumerate().map(|(i, b)| (b.as_str(), i % 3 != 0)));
    let log = Arc::new(l.log());
    let last = log.last().unwrap().lsn;
    let mut f = MariaDb::start(&FOLLOWER_BINLOG_OPTS);
    let progress = Arc::new(AtomicU64::new(0));
    let rt = runtime();
    let task = {
        let (log, progress, opts) = (log.clone(), progress.clone(), opts(&f));
        rt.spawn(async move {
            let limits = Limits { txn_entries_max: 2, ..Limits::default() };
            let mut reconnects = 0u32;
            loop {
                let mut a = match Applier::connect(opts.clone()).await {
                    Ok(a) => a.with_limits(limits),
                    Err(e) if e.retry_safe() => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if let Err(e) = a.prepare().await {
                    if e.retry_safe() {
                        continue;
                    }
                    return Err(e);
                }
                reconnects += 1;
                let step = async {
                    loop {
                        let at = a.applied_lsn().await? as usize;
                        progress.store(at as u64, Ordering::SeqCst);
                        if at as u64 >= last {
                            return Ok::<(), ApplyError>(());
                        }
                        a.apply(&log[at..(at + 8).min(log.len())]).await?;
                        // Paced (at most ~8 entries per ms) so that 20 kills land while
                        // entries remain, however fast this machine is.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                };
                match step.await {
                    Ok(()) => return Ok(reconnects),
                    Err(e) if e.retry_safe() => continue,
                    Err(e) => return Err(e),
                }
            }
        })
    };
    let started = Instant::now();
    let mut kills = 0;
    while kills < KILLS && progress.load(Ordering::SeqCst) < last {
        // Wait for the applier to make progress on this server, then kill it mid-way.
        let seen = progress.load(Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(20);
        while progress.load(Ordering::SeqCst) == seen && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..5_000)));
        f.stop();
        kills += 1;
        f.restart();
    }
    let reconnects = rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), task).await }).unwrap().unwrap();
    let reconnects = reconnects.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    println!("{kills} kills, {reconnects} sessions, {:?}", started.elapsed());
    assert!(kills >= KILLS, "seed {seed}: applying finished after {kills} kills; the test needs more entries");
    assert_eq!(f.sql("SELECT lsn FROM shoal_meta.applied").trim(), last.to_string(), "seed {seed}");
    assert_eq!(checksums(&f, "app.t, shoal_meta.txn"), checksums(&l.db, "app.t, shoal_meta.txn"), "seed {seed}");
}

/// 4b. The applier itself dies (shoal killed: its MariaDB session vanishes mid-apply) at
///     random points, 20 times: a new applier resumes from the applied LSN and the end
///     state is identical, nothing missing, nothing twice.
#[test]
fn applying_survives_the_applier_dying_mid_batch() {
    const ENTRIES: usize = 3000;
    const KILLS: usize = 20;
    let seed: u64 = std::env::var("SHOAL_APPLY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    println!("applying_survives_the_applier_dying_mid_batch: SHOAL_APPLY_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut l = Leader::start();
    l.ddl(None, &[], "CREATE DATABASE app");
    l.ddl(Some("app"), &[], "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40), n INT) ENGINE=InnoDB");
    let bodies: Vec<String> = (1..=ENTRIES)
        .map(|i| match i % 4 {
            0 => format!("UPDATE app.t SET n = n + 1, v = UUID() WHERE id = {}", i - 2),
            _ => format!("INSERT INTO app.t VALUES ({i}, UUID(), 0)"),
        })
        .collect();
    l.run_marked(bodies.iter().enumerate().map(|(i, b)| (b.as_str(), i % 2 == 0)));
    let log = Arc::new(l.log());
    let last = log.last().unwrap().lsn;
    let f = follower();
    let rt = runtime();
    // shoal_meta exists before the first death (it may come before `prepare`).
    drop(rt.block_on(applier(&f)));
    let mut kills = 0;
    let mut midway = 0;
    let mut finished = false;
    while !finished {
        let (log, opts) = (log.clone(), opts(&f));
        let run = rt.spawn(async move {
            let mut a = Applier::connect(opts).await?.with_limits(Limits { txn_entries_max: 16, ..Limits::default() });
            a.prepare().await?;
            loop {
                let at = a.applied_lsn().await? as usize;
                if at as u64 >= last {
                    return Ok::<(), ApplyError>(());
                }
                a.apply(&log[at..(at + 8).min(log.len())]).await?;
                // Paced, so that the deaths land while entries remain.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        if kills < KILLS {
            // Let it get going, then drop it wherever it is (an await inside a transaction,
            // most likely): the session goes away as if shoal were killed.
            std::thread::sleep(Duration::from_millis(rng.random_range(10..30)));
            run.abort();
            let _ = rt.block_on(run);
            kills += 1;
            let at: u64 = f.sql("SELECT IFNULL(MAX(lsn), 0) FROM shoal_meta.applied").trim().parse().unwrap();
            if at > 0 && at < last {
                midway += 1;
            }
        } else {
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), run).await })
                .unwrap()
                .unwrap()
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            finished = true;
        }
    }
    assert!(midway >= KILLS / 2, "seed {seed}: only {midway} of {kills} deaths came while entries remained");
    assert_eq!(f.sql("SELECT lsn FROM shoal_meta.applied").trim(), last.to_string(), "seed {seed}");
    assert_eq!(checksums(&f, "app.t, shoal_meta.txn"), checksums(&l.db, "app.t, shoal_meta.txn"), "seed {seed}");
}

/// 5. Statement entries run in their schema with their session context, which is reset
///    afterwards; a failing one is counted and applying goes on.
#[test]
fn statement_entries_run_in_schema_and_session_context() {
    shoal::metrics::handle();
    let stmt = |id: &str, schema: Option<&str>, session: &[&str], sql: &str| {
        Entry::Statement(StatementEntry {
            id: id.into(),
            schema: schema.map(Into::into),
            session: session.iter().map(|s| s.to_string()).collect(),
            sql: sql.into(),
        })
    };
    let entries = [
        stmt("1", None, &[], "CREATE DATABASE app"),
        stmt("2", Some("app"), &["sql_mode = 'ANSI_QUOTES'"], "CREATE TABLE \"t1\" (\"a\" INT)"),
        stmt("3", Some("app"), &[], "ALTER TABLE t1 ADD COLUMN b VARCHAR(10) DEFAULT \"x\""),
        stmt("4", Some("app"), &[], "RENAME TABLE t1 TO t2"),
        stmt("5", Some("app"), &[], "DROP TABLE nosuch"),
        stmt(
            "6",
            Some("app"),
            &["time_zone = '+05:00'"],
            "CREATE TABLE t3 (ts TIMESTAMP DEFAULT '2020-01-01 05:00:00')",
        ),
        stmt("7", Some("app"), &[], "CREATE TABLE t4 (i INT)"),
        stmt("8", Some("app"), &[], "DROP TABLE t4"),
    ];
    let log: Vec<Committed> =
        entries.into_iter().enumerate().map(|(i, entry)| Committed { lsn: i as u64 + 1, term: 3, entry }).collect();
    let errors = || {
        shoal::metrics::render()
            .lines()
            .find_map(|l| l.strip_prefix("shoal_apply_statement_errors_total "))
            .map_or(0.0, |v| v.parse::<f64>().unwrap())
    };
    let before = errors();
    let f = follower();
    runtime().block_on(async {
        let mut a = applier(&f).await;
        assert_eq!(a.apply(&log).await.unwrap(), 8);
        assert_eq!(a.applied().await.unwrap(), (8, 3));
    });
    assert_eq!(errors() - before, 1.0, "DROP TABLE nosuch is counted");
    let tables = f.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'app' ORDER BY 1");
    assert_eq!(tables, "t2\nt3\n");
    assert_eq!(f.sql("SHOW COLUMNS FROM app.t2").lines().count(), 2, "ALTER ran");
    // The TIMESTAMP default was read in +05:00: 2020-01-01 00:00:00 UTC.
    let default = f.sql(
        "SET time_zone = '+00:00'; SELECT column_default FROM information_schema.columns \
         WHERE table_schema = 'app' AND table_name = 't3'",
    );
    assert!(default.contains("2020-01-01 00:00:00"), "{default}");
}

/// The grants docs/replication.md lists are enough on a `read_only` follower: no SUPER.
/// With them the applier turns binlogging off for its session, so the follower's own
/// binlog holds none of the applied rows.
#[test]
fn the_documented_grants_suffice_on_a_read_only_follower() {
    let mut l = Leader::start();
    l.ddl(None, &[], "CREATE DATABASE app");
    l.ddl(Some("app"), &[], "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB");
    l.run(&["INSERT INTO app.t VALUES (1, 'a'), (2, 'b')".into(), "UPDATE app.t SET v = 'c' WHERE id = 2".into()]);
    l.ddl(Some("app"), &[], "ALTER TABLE t ADD COLUMN w INT");
    l.run(&["INSERT INTO app.t VALUES (3, 'd', 4)".into()]);
    let log = l.log();
    let f = MariaDb::start(&["--server-id=2", "--log-bin=mariadb-bin", "--binlog-format=ROW", "--read-only=1"]);
    f.sql(
        "CREATE USER 'shoal_apply'@'127.0.0.1' IDENTIFIED BY 'applypw'; \
         GRANT BINLOG REPLAY, BINLOG ADMIN, READ_ONLY ADMIN ON *.* TO 'shoal_apply'@'127.0.0.1'; \
         GRANT SELECT, INSERT, UPDATE, CREATE ON shoal_meta.* TO 'shoal_apply'@'127.0.0.1'; \
         GRANT ALL PRIVILEGES ON app.* TO 'shoal_apply'@'127.0.0.1'; \
         GRANT CREATE ON *.* TO 'shoal_apply'@'127.0.0.1'",
    );
    let before = binlog_file::transactions(&f.dir.path().join("data"), "mariadb-bin").len();
    let o: mysql_async::Opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(f.port)
        .user(Some("shoal_apply"))
        .pass(Some("applypw"))
        .into();
    runtime().block_on(async {
        let mut a = Applier::connect(o).await.unwrap();
        a.prepare().await.unwrap();
        assert_eq!(a.apply(&log).await.unwrap(), log.len() as u64);
    });
    assert_eq!(checksums(&f, "app.t, shoal_meta.txn"), checksums(&l.db, "app.t, shoal_meta.txn"));
    let after = binlog_file::transactions(&f.dir.path().join("data"), "mariadb-bin").len();
    assert_eq!(after, before, "applied rows stay out of the follower's binlog");
}

/// An entry whose `BINLOG` text exceeds the follower's `max_allowed_packet` (4 MiB here,
/// a 5 MB row: 7 MB of base64) goes in two fragments and applies.
#[test]
fn an_entry_larger_than_max_allowed_packet_goes_in_fragments() {
    let mut l = Leader::start();
    l.ddl(None, &[], "CREATE DATABASE app");
    l.ddl(Some("app"), &[], "CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB");
    l.run(&["INSERT INTO app.blobs VALUES (1, REPEAT(MD5(RAND()), 163840))".into()]);
    l.run(&["INSERT INTO app.blobs VALUES (2, 'small')".into()]);
    let log = l.log();
    let f = MariaDb::start(&["--max-allowed-packet=4M"]);
    assert_eq!(f.sql("SELECT @@max_allowed_packet").trim(), "4194304");
    runtime().block_on(async {
        let mut a = applier(&f).await;
        assert_eq!(a.apply(&log).await.unwrap(), log.len() as u64);
    });
    assert_eq!(checksums(&f, "app.blobs, shoal_meta.txn"), checksums(&l.db, "app.blobs, shoal_meta.txn"));
}

/// The Raft state machine over the MariaDB applier (`apply::RaftApplier`): entries
/// proposed on a 2-node cluster reach both nodes' MariaDB, checksum-identical to the
/// server that produced them.
#[test]
fn a_raft_cluster_applies_committed_entries_to_each_nodes_mariadb() {
    use shoal::cluster::network::Secret;
    use shoal::cluster::node::{Node, Start};
    let mut l = Leader::start();
    // Not the 5 MB row: peers send entries as JSON (~3.5× their size), and an entry that
    // large does not replicate within openraft's request TTL in a debug build.
    workload(&mut l, false);
    let log = l.log();
    let dbs = [follower(), follower()];
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let secret = Secret::new(b"apply-test-secret-0123456789").unwrap();
        let addrs: std::collections::BTreeMap<u64, String> =
            (1..=2).map(|id| (id, format!("127.0.0.1:{}", crate::harness::free_port()))).collect();
        let mut nodes = Vec::new();
        for (i, (&id, addr)) in addrs.iter().enumerate() {
            let cfg = crate::harness::test_node_config(id, addr, dir.path(), &secret);
            let start = if id == 1 { Start::Bootstrap { members: addrs.clone() } } else { Start::Restart };
            let ra = shoal::apply::RaftApplier::new(applier(&dbs[i]).await);
            nodes.push(Node::start(cfg, ra, start).await.unwrap());
        }
        let mut rx = nodes[0].raft().metrics();
        rx.wait_for(|m| m.current_leader == Some(1)).await.unwrap();
        let mut last = None;
        for c in &log {
            last = Some(nodes[0].propose(c.entry.encode()).await.unwrap().0);
        }
        let want = (last.unwrap().index + 1).to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        for db in &dbs {
            while db.sql("SELECT lsn FROM shoal_meta.applied").trim() != want {
                assert!(Instant::now() < deadline, "node on port {} did not apply through LSN {want}", db.port);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        for n in nodes {
            let _ = n.shutdown().await;
        }
    });
    let want = checksums(&l.db, WORKLOAD_TABLES);
    for db in &dbs {
        assert_eq!(checksums(db, WORKLOAD_TABLES), want, "node on port {}", db.port);
    }
}

/// `catch_up` applies what a WAL holds (records of `ENTRY_RECORD_KIND`; other kinds are
/// not entries) through the given LSN, and refuses to start past a purged gap.
#[test]
fn catch_up_applies_the_wal_and_refuses_a_purged_gap() {
    use shoal::apply::{catch_up, ENTRY_RECORD_KIND};
    use shoal::wal::{NewRecord, Wal, WalOptions};
    let mut l = Leader::start();
    l.ddl(None, &[], "CREATE DATABASE app");
    l.ddl(Some("app"), &[], "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB");
    let bodies: Vec<String> = (1..=50).map(|i| format!("INSERT INTO app.t VALUES ({i}, 'v{i}')")).collect();
    l.run(&bodies);
    let log = l.log();
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), WalOptions { fsync: false, ..WalOptions::default() }).unwrap();
    // A blank record first (Raft's), then the entries: LSN = log LSN + 1.
    let mut recs = vec![NewRecord::new(1, 0, Vec::new())];
    recs.extend(log.iter().map(|c| NewRecord::new(1, ENTRY_RECORD_KIND, c.entry.encode())));
    wal.append(recs).wait().unwrap();
    let f = follower();
    let g = follower();
    runtime().block_on(async {
        let mut a = applier(&f).await;
        assert_eq!(catch_up(&mut a, &wal, 30).await.unwrap(), 30);
        assert_eq!(catch_up(&mut a, &wal, wal.last_lsn()).await.unwrap(), wal.last_lsn());
        assert_eq!(catch_up(&mut a, &wal, wal.last_lsn()).await.unwrap(), wal.last_lsn(), "nothing left");
        wal.purge_through(10, 1).await.unwrap();
        let mut b = applier(&g).await;
        let err = catch_up(&mut b, &wal, wal.last_lsn()).await.unwrap_err();
        assert!(err.to_string().contains("purged"), "{err}");
        assert_eq!(b.applied_lsn().await.unwrap(), 0);
    });
    assert_eq!(checksums(&f, "app.t, shoal_meta.txn"), checksums(&l.db, "app.t, shoal_meta.txn"));
}

/// A transaction the log holds that this node's MariaDB lost before its prepare was
/// durable (it died mid-prepare): deciding it finds neither the prepared xid nor its
/// marker, marks it lost, and `reapply` puts its rows back once, out of log order, with
/// the applied position unchanged.
#[test]
fn a_lost_transaction_is_found_by_its_decision_and_applied_again() {
    let mut l = Leader::start();
    l.ddl(None, &[], "CREATE DATABASE app");
    l.ddl(Some("app"), &[], "CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB");
    let xids = l.run(&(1..=3).map(|i| format!("INSERT INTO app.t VALUES ({i})")).collect::<Vec<_>>());
    let log = l.log();
    // This node applied everything but the second transaction (its MariaDB lost it).
    let lost_at = log
        .iter()
        .position(|c| matches!(&c.entry, Entry::Rows(r) if r.origin == Origin::Captured { xid: xids[1].clone() }))
        .unwrap();
    let kept: Vec<Committed> = log.iter().enumerate().filter(|(i, _)| *i != lost_at).map(|(_, c)| c.clone()).collect();
    let f = follower();
    let rt = runtime();
    rt.block_on(async {
        let mut a = applier(&f).await;
        a.apply(&kept).await.unwrap();
        let mut conn = mysql_async::Conn::new(opts(&f)).await.unwrap();
        let _ = shoal::capture::setup::take_lost();
        assert!(
            !shoal::capture::setup::settle(&mut conn, &xids[0], true).await.unwrap(),
            "committed here: no prepared xid"
        );
        assert!(!shoal::capture::setup::settle(&mut conn, &xids[1], true).await.unwrap());
        let lost = shoal::capture::setup::take_lost();
        assert_eq!(
            lost.into_iter().collect::<Vec<_>>(),
            vec![xids[1].clone()],
            "only the one without a marker is lost"
        );
        let Entry::Rows(rows) = log[lost_at].entry.clone() else { unreachable!() };
        a.reapply(rows.clone()).await.unwrap();
        a.reapply(rows).await.unwrap();
        assert_eq!(a.applied_lsn().await.unwrap(), log.len() as u64, "the applied position stays");
    });
    assert_eq!(f.sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM app.t").trim(), "1,2,3");
    assert_eq!(f.sql("SELECT COUNT(*) FROM shoal_meta.txn").trim(), "3", "applied once");
}

/// The log of a leader that created `app.reg`, inserted row k = 1 (v = 0) and then set
/// v = 1: the last entry writes the row the blocking tests hold.
fn one_row_set_twice() -> Vec<Committed> {
    let mut l = Leader::start();
    l.ddl(None, &[], "CREATE DATABASE app");
    l.ddl(Some("app"), &[], "CREATE TABLE reg (k INT PRIMARY KEY, v INT) ENGINE=InnoDB");
    l.run(&["INSERT INTO app.reg VALUES (1, 0)".to_string()]);
    l.run(&["UPDATE app.reg SET v = 1 WHERE k = 1".to_string()]);
    l.log()
}

/// An orphaned prepared transaction (its session lost the leadership) that registers
/// only after the applier decided orphans for a batch, and holds a row the batch needs:
/// the applier's short lock wait ends, it decides again, rolls the orphan back (an
/// earlier term than the batch's) and applies. Before, it waited on the lock for good.
#[test]
fn an_orphan_registered_during_a_blocked_apply_is_rolled_back_and_the_apply_goes_on() {
    use shoal::cluster::log_store::log_id;
    use shoal::cluster::Applier as _;
    let log = one_row_set_twice();
    let f = follower();
    let xid = "shoal-test-orphan-1";
    let bytes: Vec<Vec<u8>> = log.iter().map(|c| c.entry.encode()).collect();
    let ids: Vec<_> = log.iter().map(|c| log_id(c.lsn, if c.lsn == log.last().unwrap().lsn { 2 } else { 1 })).collect();
    let (head, last) = (log.len() - 1, log.len() - 1); // all but the last in term 1, the last in term 2
    runtime().block_on(async {
        let mut ra = shoal::apply::RaftApplier::new(applier(&f).await).committing_orphans(opts(&f));
        let first: Vec<(_, &[u8])> = (0..head).map(|i| (ids[i], bytes[i].as_slice())).collect();
        ra.apply_many(&first).await.unwrap();
        // The orphan, prepared on the follower: it holds row k = 1.
        f.sql(&format!("XA START '{xid}'; UPDATE app.reg SET v = 99 WHERE k = 1; XA END '{xid}'; XA PREPARE '{xid}'"));
        let started = Instant::now();
        let last_entry = [(ids[last], bytes[last].as_slice())];
        let apply = ra.apply_many(&last_entry);
        let register = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            shoal::capture::setup::orphan(xid, 1);
        };
        let (applied, ()) = tokio::time::timeout(Duration::from_secs(20), async { tokio::join!(apply, register) })
            .await
            .expect("the apply still waits on the orphan's row lock after 20 s");
        applied.unwrap();
        eprintln!("applied {:?} after the orphan registered", started.elapsed());
    });
    assert_eq!(f.sql("SELECT v FROM app.reg WHERE k = 1").trim(), "1", "the entry's row, not the orphan's");
    assert_eq!(f.sql("XA RECOVER").trim(), "", "the orphan is rolled back");
}
