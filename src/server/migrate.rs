//! `shoal migrate --from ADDR`: re-seeds this (stopped) node's MariaDB from a member's
//! dump (`GET /cluster/dump`, `admin::dump`) and restarts its log at the dump's LSN, so
//! `shoal start` catches up from the leader's log like any restart.
//!
//! | step | what | fails when |
//! |---|---|---|
//! | 1 | open this node's WAL (held to the end: a running node holds it) | the node runs: stop it first |
//! | 2 | `GET /cluster/dump` from the source, headers first | the source refuses (its answer is shown) |
//! | 3 | roll back shoal's prepared transactions left here (an old history) | the local MariaDB does not answer |
//! | 4 | stream the dump into `mariadb` (binlog off), with a progress line | the stream ends without `-- Dump completed`, or `mariadb` fails |
//! | 5 | read `shoal_meta.applied` (LSN, term): where the dump stands | the dump holds no applied position |
//! | 6 | the log: purged through that LSN, commit point there, a snapshot there with the source's membership | the membership changed after the dump's point (run again) |
//! | 7 | remove the `NEEDS_MIGRATION` flag | — |

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::admin::client;
use crate::admin::dump::{host_port, COMPLETED_MARK, DUMP_PACKET_MAX, MEMBERSHIP_HEADER, ROWS_HEADER};
use crate::cluster::log_store::{index_of, log_id};
use crate::cluster::retention::NEEDS_MIGRATION_FILE;
use crate::cluster::{NodeId, SavedSnapshot};
use crate::config::Config;

/// Longest silence from the source before the migration gives up (mariadb-dump may
/// think over a large table's first rows).
pub const DUMP_SILENCE_MAX: Duration = Duration::from_secs(300);
/// Bytes read from the source and written to `mariadb` at a time.
pub const DUMP_CHUNK_BYTES: usize = 256 * 1024;
/// Bytes of the dump's end kept to find mariadb-dump's closing line.
pub const DUMP_TAIL_BYTES: usize = 4096;

/// How often the progress line is redrawn.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// What a migration did.
#[derive(Debug, Clone)]
pub struct Migrated {
    /// Dump bytes restored.
    pub bytes: u64,
    /// Rows restored (counted in the dump's `INSERT`s).
    pub rows: u64,
    /// The LSN and term the node's log starts after now.
    pub lsn: u64,
    /// Term of that entry.
    pub term: u64,
    /// How long it took.
    pub took: Duration,
}

/// Counts rows in a dump's text as it streams: one per `INSERT` statement and one per
/// `),(` or `),⏎(` between tuples (mariadb-dump 10.11 puts each tuple on its own line; an
/// estimate: a value holding either counts too).
#[derive(Debug, Default)]
pub struct RowCounter {
    /// Rows so far.
    pub rows: u64,
    /// The last bytes of the previous chunk (a marker may straddle two).
    tail: Vec<u8>,
}

impl RowCounter {
    /// Counts what `chunk` adds.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut window = std::mem::take(&mut self.tail);
        let carried = window.len();
        window.extend_from_slice(chunk);
        let count = |needle: &[u8]| {
            window.windows(needle.len()).enumerate().filter(|(i, w)| *w == needle && i + needle.len() > carried).count()
                as u64
        };
        self.rows += count(b"),(") + count(b"),\n(") + count(b"\nINSERT ");
        let keep = window.len().min(8);
        self.tail = window[window.len() - keep..].to_vec();
    }
}

/// The progress line: bytes of the estimate, rows, time left.
pub fn progress_line(
    bytes: u64,
    estimate: Option<u64>,
    rows: u64,
    rows_estimate: Option<u64>,
    took: Duration,
) -> String {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let rows_part = match rows_estimate {
        Some(r) if r > 0 => format!("{rows} of ~{r} rows"),
        _ => format!("{rows} rows"),
    };
    match estimate.filter(|&e| e > 0) {
        Some(e) => {
            let done = (bytes as f64 / e as f64).min(1.0);
            let width = 24;
            let filled = (done * width as f64) as usize;
            let left = if done > 0.0 && bytes < e { took.as_secs_f64() * (1.0 - done) / done } else { 0.0 };
            format!(
                "[{}{}] {:.1} of ~{:.1} MiB, {rows_part}, ~{:.0} s left",
                "#".repeat(filled),
                " ".repeat(width - filled),
                mib(bytes),
                mib(e),
                left
            )
        }
        None => format!("{:.1} MiB, {rows_part}", mib(bytes)),
    }
}

/// Runs the migration (steps in the module doc); `token` is the source API's.
pub fn migrate(config: &Config, from: &str, token: Option<&str>, show_progress: bool) -> anyhow::Result<Migrated> {
    let started = Instant::now();
    let data_dir = config.node.data_dir.clone();
    let wal_dir = data_dir.join("wal");
    std::fs::create_dir_all(&wal_dir).with_context(|| format!("creating {}", wal_dir.display()))?;
    let (wal, _) = crate::wal::Wal::open(
        &wal_dir,
        crate::wal::WalOptions::from_config(config.wal.segment_size_mb, config.wal.fsync, None),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot open this node's log at {} ({e}): is shoal running on this node? stop it first",
            wal_dir.display()
        )
    })?;
    let addr = client::connect_address(from);
    let mut r = client::get_stream(&addr, "/cluster/dump", token, DUMP_SILENCE_MAX)
        .with_context(|| format!("cannot reach the source's API at {addr}"))?;
    if r.status != 200 {
        let mut body = String::new();
        let _ = r.body.read_to_string(&mut body);
        match r.status {
            401 => bail!("{addr}: 401 unauthorized: pass --token-file with the source's API token"),
            s => bail!("{addr} refused the dump (HTTP {s}): {}", body.trim()),
        }
    }
    let estimate = r.header(crate::admin::dump::BYTES_HEADER).and_then(|v| v.parse().ok());
    let rows_estimate = r.header(ROWS_HEADER).and_then(|v| v.parse().ok());
    let membership: openraft::StoredMembership<NodeId, openraft::BasicNode> = r
        .header(MEMBERSHIP_HEADER)
        .and_then(|v| serde_json::from_str(v).ok())
        .context("the source sent no membership (is it a shoal cluster node?)")?;

    let (opts, password) = super::service_opts(config)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let rolled_back = rt.block_on(roll_back_prepared(opts.clone()))?;
    if rolled_back > 0 {
        eprintln!("rolled back {rolled_back} prepared transactions left on this node's MariaDB");
    }

    let (host, port) = host_port(&config.backends.primary);
    let mut restore = std::process::Command::new("mariadb")
        .args([
            format!("--host={host}"),
            format!("--port={port}"),
            format!("--user={}", config.backends.user),
            "--protocol=tcp".into(),
            "--binary-mode".into(),
            "--default-character-set=utf8mb4".into(),
            format!("--max-allowed-packet={DUMP_PACKET_MAX}"),
            "--init-command=SET SESSION sql_log_bin = 0".into(),
        ])
        .env("MYSQL_PWD", &password)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .context("cannot run mariadb (install mariadb-client)")?;
    let mut stdin = restore.stdin.take().context("mariadb has no stdin")?;
    let (mut bytes, mut counter, mut last_shown) = (0u64, RowCounter::default(), Instant::now());
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; DUMP_CHUNK_BYTES];
    let mut err = std::io::stderr();
    loop {
        let n = r.body.read(&mut buf).with_context(|| format!("reading the dump from {addr}"))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if let Err(e) = stdin.write_all(chunk) {
            let _ = restore.wait();
            bail!("mariadb stopped reading the dump ({e}); its error is above");
        }
        bytes += n as u64;
        counter.feed(chunk);
        tail.extend_from_slice(chunk);
        if tail.len() > DUMP_TAIL_BYTES {
            tail.drain(..tail.len() - DUMP_TAIL_BYTES);
        }
        if show_progress && last_shown.elapsed() >= PROGRESS_EVERY {
            let line = progress_line(bytes, estimate, counter.rows, rows_estimate, started.elapsed());
            let _ = write!(err, "\r{line}   ");
            last_shown = Instant::now();
        }
    }
    drop(stdin);
    let status = restore.wait()?;
    if show_progress {
        let _ = writeln!(err, "\r{}   ", progress_line(bytes, Some(bytes), counter.rows, None, started.elapsed()));
    }
    if !String::from_utf8_lossy(&tail).contains(COMPLETED_MARK) {
        bail!("the dump from {addr} ended early after {bytes} bytes (no `{COMPLETED_MARK}` line): see the source's log, then run shoal migrate again");
    }
    if !status.success() {
        bail!("mariadb could not restore the dump ({status}); its error is above");
    }

    let (lsn, term) = rt.block_on(applied(opts))?;
    if lsn == 0 {
        bail!(
            "the dump holds no applied position (shoal_meta.applied is empty): dump a member that has applied the log"
        );
    }
    let point = log_id(lsn, term);
    if membership.log_id().is_some_and(|m| m.index > point.index) {
        bail!("the cluster's membership changed after the dump's point (LSN {lsn}); run shoal migrate again");
    }
    let meta = wal.meta();
    if meta.commit > lsn {
        bail!(
            "this node's log is committed up to LSN {} and the dump only reaches LSN {lsn}: dump a member that is further along",
            meta.commit
        );
    }
    wal.purge_through(lsn, term).wait().map_err(|e| {
        anyhow::anyhow!(
            "this node's log disagrees with the dump at LSN {lsn} ({e}): empty {} and run shoal migrate again",
            wal_dir.display()
        )
    })?;
    wal.save_commit(lsn)?;
    let ticket = crate::apply::Ticket { lsn, term };
    let snapshot = SavedSnapshot {
        meta: openraft::SnapshotMeta {
            last_log_id: Some(point),
            last_membership: membership,
            snapshot_id: format!("migrated-{}-{}", term, index_of(lsn)),
        },
        data: serde_json::to_vec(&ticket)?,
    };
    wal.set_snapshot(&snapshot.encode())?;
    wal.close()?;
    let flag = data_dir.join(NEEDS_MIGRATION_FILE);
    if flag.exists() {
        std::fs::remove_file(&flag).with_context(|| format!("removing {}", flag.display()))?;
    }
    Ok(Migrated { bytes, rows: counter.rows, lsn, term, took: started.elapsed() })
}

/// Rolls back shoal's prepared transactions on the local MariaDB (the dump replaces what
/// they would change; their history is not the cluster's).
async fn roll_back_prepared(opts: mysql_async::Opts) -> anyhow::Result<usize> {
    let mut conn = mysql_async::Conn::new(opts).await.context("the local MariaDB ([database])")?;
    let xids = crate::capture::setup::prepared_xids(&mut conn).await?;
    for xid in &xids {
        crate::capture::setup::settle(&mut conn, xid, false).await?;
    }
    let _ = conn.disconnect().await;
    Ok(xids.len())
}

/// `shoal_meta.applied` on the local MariaDB: (LSN, term), (0, 0) when empty.
async fn applied(opts: mysql_async::Opts) -> anyhow::Result<(u64, u64)> {
    let mut applier = crate::apply::Applier::connect(opts).await.context("the local MariaDB ([database])")?;
    let applied = applier.applied().await.context("reading shoal_meta.applied after the restore")?;
    applier.disconnect().await;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_counted_across_chunks() {
        let mut c = RowCounter::default();
        c.feed(b"-- x\nINSERT INTO `t` VALUES (1,'a'),");
        c.feed(b"(2,'b'),(3,'c');\nINSERT INTO `u` VALUES\n(9),");
        c.feed(b"\n(10);\n");
        assert_eq!(c.rows, 5);
    }

    #[test]
    fn progress_line_shows_the_estimate_and_time_left() {
        let l = progress_line(512 * 1024, Some(1024 * 1024), 10, Some(20), Duration::from_secs(4));
        assert!(l.contains("0.5 of ~1.0 MiB") && l.contains("10 of ~20 rows") && l.contains("~4 s left"), "{l}");
        assert_eq!(progress_line(1024 * 1024, None, 3, None, Duration::ZERO), "1.0 MiB, 3 rows");
    }
}
