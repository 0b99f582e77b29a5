//! kill -9 test: a child process (this test binary, re-executed) appends with
//! `fsync = true` from several threads and prints every acknowledged record; the parent
//! SIGKILLs it at a random moment, reopens the log and checks that every acknowledged
//! record is present and intact and that nothing present is corrupt. Every other round
//! also appends garbage to the tail (a partially persisted batch, as after power loss),
//! which recovery must cut off.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;

use super::*;

const CHILD_ENV: &str = "SHOAL_WAL_CRASH_CHILD_DIR";
const TEST_NAME: &str = "wal::tests::crash::kill_9_keeps_every_acknowledged_record";
const ITERATIONS: usize = 24;
const WRITER_THREADS: u8 = 4;
/// The child stops on its own after this long, in case the parent died.
const CHILD_LIFETIME_MAX_MS: u64 = 10_000;

fn opts() -> WalOptions {
    WalOptions { fsync: true, segment_bytes_max: 64 * 1024, batch_bytes_max: 16 * 1024, ..small_opts() }
}

/// Self-describing payload: thread, sequence, then bytes derived from both.
fn payload(thread: u8, seq: u32) -> Vec<u8> {
    let len = 8 + (seq as usize * 37 + thread as usize * 11) % 600;
    let mut p = Vec::with_capacity(len);
    p.push(thread);
    p.extend_from_slice(&seq.to_le_bytes());
    while p.len() < len {
        let i = p.len() as u32;
        p.push(if seq % 2 == 0 {
            (i / 8) as u8
        } else {
            (i.wrapping_mul(seq | 1).wrapping_add(thread as u32) >> 3) as u8
        });
    }
    p
}

fn parse_payload(p: &[u8]) -> Option<(u8, u32)> {
    if p.len() < 5 {
        return None;
    }
    let (t, s) = (p[0], u32::from_le_bytes([p[1], p[2], p[3], p[4]]));
    (payload(t, s) == p).then_some((t, s))
}

fn child(dir: &str) {
    let (wal, _) = Wal::open(dir, opts()).expect("child open");
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let start = Instant::now();
    let handles: Vec<_> = (0..WRITER_THREADS)
        .map(|t| {
            let wal = wal.clone();
            let out = out.clone();
            std::thread::spawn(move || {
                let mut seq: u32 = rand::rng().random();
                while start.elapsed() < Duration::from_millis(CHILD_LIFETIME_MAX_MS) {
                    let n = 1 + (seq % 5);
                    let recs: Vec<_> = (0..n).map(|i| NewRecord::new(1, t, payload(t, seq.wrapping_add(i)))).collect();
                    let r = wal.append(recs).wait().expect("child append");
                    let mut o = out.lock().unwrap();
                    for (i, lsn) in r.enumerate() {
                        writeln!(o, "ACK {lsn} {t} {} END", seq.wrapping_add(i as u32)).unwrap();
                    }
                    o.flush().unwrap();
                    seq = seq.wrapping_add(n);
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

#[test]
fn kill_9_keeps_every_acknowledged_record() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acked: std::collections::BTreeMap<Lsn, (u8, u32)> = Default::default();
    let mut rng = rand::rng();
    let mut repairs = 0;
    for iteration in 0..ITERATIONS {
        let work = Duration::from_millis(rng.random_range(30..250));
        let lines = crate::wal::testkit::run_and_kill(TEST_NAME, CHILD_ENV, dir.path(), work);
        for line in lines {
            let f: Vec<&str> = line.split_whitespace().collect();
            // "END" guards against a line cut short by the kill.
            if let ["ACK", lsn, t, s, "END"] = f[..] {
                acked.insert(lsn.parse().unwrap(), (t.parse().unwrap(), s.parse().unwrap()));
            }
        }
        if iteration % 2 == 1 {
            // Simulate power loss on top of the kill: part of an unacknowledged batch
            // reached the disk as garbage after the last record.
            let tail = segment_files(dir.path()).pop().unwrap();
            let junk: Vec<u8> = (0..rng.random_range(1..3000)).map(|_| rng.random()).collect();
            let mut f = std::fs::OpenOptions::new().append(true).open(tail).unwrap();
            f.write_all(&junk).unwrap();
        }
        let (wal, report) =
            Wal::open(dir.path(), opts()).unwrap_or_else(|e| panic!("iteration {iteration}: reopen failed: {e}"));
        repairs += report.actions.len();
        if iteration % 2 == 1 {
            assert!(
                report.actions.iter().any(|a| matches!(
                    a,
                    crate::wal::RecoveryAction::TruncatedTornTail { .. }
                        | crate::wal::RecoveryAction::TruncatedZeroTail { .. }
                )),
                "iteration {iteration}: garbage tail not repaired: {:?}",
                report.actions
            );
        }
        let max_acked = acked.keys().next_back().copied().unwrap_or(0);
        assert!(
            wal.last_lsn() >= max_acked,
            "iteration {iteration}: log ends at {} but {max_acked} was acknowledged",
            wal.last_lsn()
        );
        let all = wal.read_range(1..wal.last_lsn() + 1).unwrap();
        for r in &all {
            let who = parse_payload(&r.payload)
                .unwrap_or_else(|| panic!("iteration {iteration}: record {} is corrupt", r.lsn));
            assert_eq!(r.kind, who.0);
            if let Some(&want) = acked.get(&r.lsn) {
                assert_eq!(who, want, "iteration {iteration}: acknowledged record {} changed", r.lsn);
            }
        }
        // Unacknowledged records that survived are now part of the log; remember them so
        // later iterations check they stay.
        for r in all {
            acked.entry(r.lsn).or_insert(parse_payload(&r.payload).unwrap());
        }
        drop(wal);
    }
    assert!(acked.len() > 100, "the children acknowledged only {} records", acked.len());
    eprintln!("crash test: {} records, {ITERATIONS} kills, {repairs} recovery actions", acked.len());
}
