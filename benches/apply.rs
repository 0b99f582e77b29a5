//! Apply rate: log entries built from a real leader's binlog, written to a WAL, then
//! applied to a fresh follower MariaDB with `apply::catch_up` (WAL read, decode, BINLOG
//! apply in transactions of up to 512 entries). Run with `cargo bench --bench apply`.
//!
//! * small: one-row transactions (an INSERT of ~120 bytes plus the exactly-once marker
//!   row), target ≥ 20,000 entries/s;
//! * large: one 1 MiB row per transaction: MB/s of row events.
//!
//! Each row runs twice: the follower's InnoDB with `innodb_flush_log_at_trx_commit=2`
//! (the test harness default; durability is the WAL's) and `=1`. The servers are
//! started by the bench (`proxy-tests/harness.rs`); the WAL lives under
//! `SHOAL_BENCH_DIR` (default the system temp dir) with fsync off (only reads are timed).

#[path = "../proxy-tests/binlog_file.rs"]
mod binlog_file;
#[path = "../proxy-tests/harness.rs"]
mod harness;

use std::time::Instant;

use harness::MariaDb;
use shoal::apply::{catch_up, Applier, ENTRY_RECORD_KIND, META_TABLES};
use shoal::capture::{Entry, Origin, RowsEntry, StatementEntry};
use shoal::wal::{NewRecord, Wal, WalOptions};

/// One-row transactions in the small run.
const SMALL_ENTRIES: usize = 20_000;
/// Transactions in the large run.
const LARGE_ENTRIES: usize = 48;
/// Bytes of the blob each large transaction inserts.
const LARGE_ROW_BYTES: usize = 1 << 20;
/// The target for small entries.
const TARGET_ENTRIES_PER_S: f64 = 20_000.0;
/// Script bytes per `mariadb -e` call (one argument is capped at 128 KiB).
const SCRIPT_BYTES_MAX: usize = 100 * 1024;

const DDL: [&str; 3] = [
    "CREATE DATABASE bench",
    "CREATE TABLE bench.small (id INT PRIMARY KEY, n INT, pad CHAR(100)) ENGINE=InnoDB",
    "CREATE TABLE bench.large (id INT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB",
];

fn run_txns(db: &MariaDb, bodies: impl Iterator<Item = String>) {
    let mut script = String::new();
    for body in bodies {
        script.push_str(&body);
        if script.len() > SCRIPT_BYTES_MAX {
            db.sql(&std::mem::take(&mut script));
        }
    }
    if !script.is_empty() {
        db.sql(&script);
    }
}

fn main() {
    let started = Instant::now();
    let leader =
        MariaDb::start(&["--server-id=1", "--log-bin=mariadb-bin", "--binlog-format=ROW", "--binlog-row-image=FULL"]);
    leader.sql(&format!("SET SESSION sql_log_bin = 0; {};", META_TABLES.join("; ")));
    leader.sql(&DDL.join("; "));
    run_txns(
        &leader,
        (1..=SMALL_ENTRIES).map(|i| {
            format!("BEGIN; INSERT INTO bench.small VALUES ({i}, {i}, REPEAT('x', 100)); INSERT INTO shoal_meta.txn VALUES ('shoal-s-{i}'); COMMIT;\n")
        }),
    );
    let md5_repeats = LARGE_ROW_BYTES / 32;
    run_txns(
        &leader,
        (1..=LARGE_ENTRIES).map(|i| {
            format!("BEGIN; INSERT INTO bench.large VALUES ({i}, REPEAT(MD5({i}), {md5_repeats})); INSERT INTO shoal_meta.txn VALUES ('shoal-l-{i}'); COMMIT;\n")
        }),
    );
    let txns = binlog_file::transactions(&leader.dir.path().join("data"), "mariadb-bin");
    assert_eq!(txns.len(), SMALL_ENTRIES + LARGE_ENTRIES, "row transactions in the leader's binlog");

    let mut entries: Vec<Entry> = DDL
        .iter()
        .enumerate()
        .map(|(i, sql)| {
            Entry::Statement(StatementEntry {
                id: format!("ddl-{i}"),
                schema: None,
                session: vec![],
                sql: sql.to_string(),
            })
        })
        .collect();
    let mut raw_bytes = [0usize; 2];
    for (i, t) in txns.into_iter().enumerate() {
        let (kind, n) = if i < SMALL_ENTRIES { ("s", i + 1) } else { ("l", i + 1 - SMALL_ENTRIES) };
        raw_bytes[usize::from(i >= SMALL_ENTRIES)] += t.statements.iter().map(Vec::len).sum::<usize>();
        let origin = Origin::Captured { xid: format!("shoal-{kind}-{n}") };
        entries.push(Entry::Rows(RowsEntry { origin, format: t.format, statements: t.statements }));
    }
    let base = std::env::var_os("SHOAL_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let opts = WalOptions { fsync: false, ..WalOptions::default() };
    let (wal, _) = Wal::open(dir.path(), opts).expect("open WAL");
    for chunk in entries.chunks(1024) {
        let recs = chunk.iter().map(|e| NewRecord::new(1, ENTRY_RECORD_KIND, e.encode())).collect();
        wal.append(recs).wait().expect("append");
    }
    let ddl_end = DDL.len() as u64;
    let small_end = ddl_end + SMALL_ENTRIES as u64;
    let large_end = small_end + LARGE_ENTRIES as u64;
    assert_eq!(wal.last_lsn(), large_end);
    let want = leader.sql("CHECKSUM TABLE bench.small, bench.large, shoal_meta.txn");

    println!(
        "Apply: entries from a leader's binlog, WAL → catch_up → follower MariaDB {} (transactions of up to {} entries)\n",
        leader.sql("SELECT VERSION()").trim(),
        shoal::apply::TXN_ENTRIES_MAX
    );
    println!(
        "| follower innodb_flush_log_at_trx_commit | entries | row-event bytes | seconds | entries/s | MB/s | target |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for flush in ["2", "1"] {
        let follower = MariaDb::start(&[&format!("--innodb-flush-log-at-trx-commit={flush}")]);
        let o: mysql_async::Opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(follower.port)
            .user(Some("root"))
            .into();
        let (small, large) = rt.block_on(async {
            let mut a = Applier::connect(o).await.expect("connect");
            a.prepare().await.expect("prepare");
            catch_up(&mut a, &wal, ddl_end).await.expect("ddl");
            let t = Instant::now();
            assert_eq!(catch_up(&mut a, &wal, small_end).await.expect("small"), small_end);
            let small = t.elapsed();
            let t = Instant::now();
            assert_eq!(catch_up(&mut a, &wal, large_end).await.expect("large"), large_end);
            (small, t.elapsed())
        });
        assert_eq!(follower.sql("CHECKSUM TABLE bench.small, bench.large, shoal_meta.txn"), want, "follower differs");
        let rate = SMALL_ENTRIES as f64 / small.as_secs_f64();
        let met = if rate >= TARGET_ENTRIES_PER_S { "met" } else { "NOT met" };
        println!(
            "| {flush} | {SMALL_ENTRIES} × 1 row | {} | {:.2} | {rate:.0} | {:.1} | ≥ {TARGET_ENTRIES_PER_S:.0}/s {met} |",
            raw_bytes[0],
            small.as_secs_f64(),
            raw_bytes[0] as f64 / 1e6 / small.as_secs_f64()
        );
        println!(
            "| {flush} | {LARGE_ENTRIES} × {} KiB row | {} | {:.2} | {:.0} | {:.1} | |",
            LARGE_ROW_BYTES / 1024,
            raw_bytes[1],
            large.as_secs_f64(),
            LARGE_ENTRIES as f64 / large.as_secs_f64(),
            raw_bytes[1] as f64 / 1e6 / large.as_secs_f64()
        );
    }
    println!("\ntotal bench time {:.1} s", started.elapsed().as_secs_f64());
}
