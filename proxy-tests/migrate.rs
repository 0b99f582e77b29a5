//! A node down while the cluster purged the entries it needed comes back NEEDS_MIGRATION;
//! `shoal migrate --from` re-seeds it from a member's dump and it catches up from the log.
//!
//! Three nodes with `[wal] retention_mb = 1` (past it, a node purges what it applied
//! whoever still needs it). Node 3 is killed, ~4 MiB of rows are written, node 1 (the
//! leader) purges past node 3's log. Asserted: node 3, started again, reports
//! `needs_migration` in `/cluster` and `/health` (503) and applies nothing; `shoal migrate`
//! from node 2 succeeds; started, node 3 has every row, the three tables are identical
//! (CHECKSUM TABLE), it applies new writes, and no longer needs migration.

use std::time::{Duration, Instant};

use crate::cluster::{Cluster, POLL, SERIAL, SETTLE_MAX};

/// Rows written while node 3 is down, in statements of `ROWS_PER_INSERT`, each row
/// `PAD_MD5S` random MD5s (32 hex each): 4 MiB, well past `retention_mb = 1`.
const ROWS_DOWN: u32 = 64;
const ROWS_PER_INSERT: u32 = 8;
const PAD_MD5S: u32 = 2048;

fn sql_on(port: u16, sql: &str) -> String {
    let o = std::process::Command::new("mariadb")
        .args(["-h127.0.0.1", "-uroot", "-N", "-B", "-e", sql])
        .arg(format!("-P{port}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{sql} on {port}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn a_node_whose_log_was_purged_needs_migration_and_shoal_migrate_brings_it_back() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Cluster::start(|_| "[wal]\nsegment_size_mb = 5\nretention_mb = 1\n".into());
    c.write(1, "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, pad MEDIUMTEXT)");
    c.write(1, "INSERT INTO app.t SELECT seq, 'before' FROM app.seq_1_to_10");
    c.converged("SELECT COUNT(*) FROM app.t", "10");

    let node3_last = c.members.get_mut(&3).unwrap().cluster().unwrap()["last_log_index"].as_u64().unwrap();
    c.members.get_mut(&3).unwrap().kill();
    for i in 0..ROWS_DOWN / ROWS_PER_INSERT {
        let (from, to) = (100 + i * ROWS_PER_INSERT, 100 + (i + 1) * ROWS_PER_INSERT - 1);
        // Random hex (the WAL compresses entries: repeated text would not fill it).
        c.write(
            1,
            &format!(
                "INSERT INTO app.t SELECT o.seq, (SELECT GROUP_CONCAT(MD5(CONCAT(RAND(), o.seq, s.seq)) SEPARATOR '') \
                 FROM app.seq_1_to_{PAD_MD5S} s) FROM app.seq_{from}_to_{to} o"
            ),
        );
    }
    // The leader purges past what node 3 holds.
    let deadline = Instant::now() + SETTLE_MAX;
    loop {
        let purged = c.members.get_mut(&1).unwrap().cluster().and_then(|b| b["purged_index"].as_u64());
        if purged.is_some_and(|p| p > node3_last) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 1 purged only through {purged:?} (node 3 had {node3_last})\n{}",
            c.all_logs()
        );
        std::thread::sleep(POLL);
    }
    let want = (10 + ROWS_DOWN).to_string();
    c.converged("SELECT COUNT(*) FROM app.t", &want);

    // Node 3 comes back: the leader sends a snapshot its MariaDB is behind.
    let m3 = c.members.get_mut(&3).unwrap();
    m3.spawn(&["start"]);
    let deadline = Instant::now() + SETTLE_MAX;
    let why = loop {
        if let Some(why) = m3.cluster().and_then(|b| b["needs_migration"].as_str().map(str::to_string)) {
            break why;
        }
        assert!(Instant::now() < deadline, "node 3 never reported needs_migration\n{}", m3.logs());
        std::thread::sleep(POLL);
    };
    assert!(why.contains("shoal migrate"), "{why}");
    let health = shoal::admin::client::get(&m3.api, "/health", None, Duration::from_secs(2)).unwrap();
    assert_eq!(health.status, 503, "{}", health.body);
    assert!(health.body.contains("needs migration"), "{}", health.body);
    assert_eq!(sql_on(m3.db.port, "SELECT COUNT(*) FROM app.t"), "10", "node 3 applied nothing it lacks the log for");
    m3.kill();

    // shoal migrate from node 2 (a follower), with node 2's API token.
    let token = m3.dir.join("source.token");
    std::fs::write(&token, format!("{}\n", c.members[&2].token.as_deref().unwrap())).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["migrate", "--from", &c.members[&2].api, "--token-file"])
        .arg(&token)
        .arg("-c")
        .arg(&c.members[&3].file)
        .env_remove("SHOAL_CONFIG")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("shoal migrate: {stdout}{stderr}");
    assert!(out.status.success(), "shoal migrate failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("migrated from") && stdout.contains("resumes after LSN"), "{stdout}");
    assert!(stderr.contains("MiB") && stderr.contains("rows"), "no progress line: {stderr}");
    let rows: u64 =
        stdout.split(" rows in ").next().and_then(|h| h.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(rows >= u64::from(10 + ROWS_DOWN), "counted {rows} rows: {stdout}");
    assert!(!c.members[&3].dir.join("data/NEEDS_MIGRATION").exists());

    // Started again, node 3 catches up from the leader's log and takes writes.
    c.members.get_mut(&3).unwrap().spawn(&["start"]);
    c.converged("SELECT COUNT(*) FROM app.t", &want);
    c.write(3, "INSERT INTO app.t VALUES (1000, 'after')");
    let want = (11 + ROWS_DOWN).to_string();
    c.converged("SELECT COUNT(*) FROM app.t", &want);
    let sums: Vec<String> = c.members.values().map(|m| sql_on(m.db.port, "CHECKSUM TABLE app.t")).collect();
    assert!(sums.iter().all(|s| s == &sums[0]), "checksums differ: {sums:?}");
    let body = c.members.get_mut(&3).unwrap().cluster().unwrap();
    assert!(body["needs_migration"].is_null(), "{body}");
}
