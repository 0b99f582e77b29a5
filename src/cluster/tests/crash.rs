//! kill -9 test of the log storage adapter, in the style of `wal::tests::crash`: a child
//! process (this test binary, re-executed) drives [`WalLogStore`] through openraft's
//! storage API — appends, votes, truncations of its own tail — and prints every operation
//! once it returned; the parent SIGKILLs it at a random moment, reopens the store and
//! checks that every acknowledged entry and the acknowledged vote are intact, and that
//! every entry present is exactly what was appended at its index.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use openraft::storage::{RaftLogReader, RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, EntryPayload, Vote};
use rand::Rng;

use crate::cluster::types::{Command as Cmd, Entry, LogId};
use crate::cluster::WalLogStore;
use crate::wal::{Wal, WalOptions};

const CHILD_ENV: &str = "SHOAL_RAFT_CRASH_CHILD_DIR";
const TEST_NAME: &str = "cluster::tests::crash::kill_9_keeps_every_acknowledged_entry_and_vote";
const ITERATIONS: usize = 12;
/// The child stops on its own after this long, in case the parent died.
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(10);

fn opts() -> WalOptions {
    WalOptions {
        fsync: true,
        segment_bytes_max: 64 * 1024,
        record_bytes_max: 4096,
        batch_bytes_max: 16 * 1024,
        ..WalOptions::default()
    }
}

/// The command stored at `index` in `term`: self-describing, of varying length.
fn payload(index: u64, term: u64) -> Vec<u8> {
    let mut p = format!("{index}:{term}:").into_bytes();
    let len = 16 + (index as usize * 31 + term as usize * 7) % 700;
    while p.len() < len {
        p.push((p.len() as u64 ^ index ^ term) as u8);
    }
    p
}

fn entry(index: u64, term: u64) -> Entry {
    let log_id = LogId::new(CommittedLeaderId::new(term, 0), index);
    // Index 0 is a blank entry, as openraft's first entry is a membership one (not a command).
    let payload = if index == 0 { EntryPayload::Blank } else { EntryPayload::Normal(Cmd(payload(index, term))) };
    Entry { log_id, payload }
}

fn child(dir: &str) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (wal, _) = Wal::open(dir, opts()).expect("child open");
        let mut store = WalLogStore::new(wal);
        let mut term = store.read_vote().await.expect("read vote").map_or(1, |v| v.leader_id.term);
        let mut next = store.get_log_state().await.expect("log state").last_log_id.map_or(0, |l| l.index + 1);
        let mut out = std::io::stdout();
        let mut rng = rand::rng();
        let start = Instant::now();
        while start.elapsed() < CHILD_LIFETIME_MAX {
            match rng.random_range(0..10) {
                0 => {
                    term += 1;
                    store.save_vote(&Vote::new_committed(term, 1)).await.expect("save vote");
                    writeln!(out, "VOTE {term} END").unwrap();
                }
                1 if next > 3 => {
                    let from = next - rng.random_range(1..=3u64);
                    // Announced first: a kill during the truncate may or may not have cut.
                    writeln!(out, "TRUNCATING {from} END").unwrap();
                    out.flush().unwrap();
                    store.truncate(LogId::new(CommittedLeaderId::new(term, 0), from)).await.expect("truncate");
                    next = from;
                    writeln!(out, "TRUNC {from} END").unwrap();
                }
                _ => {
                    let n = rng.random_range(1..=5u64);
                    store.blocking_append((next..next + n).map(|i| entry(i, term))).await.expect("append");
                    for i in next..next + n {
                        writeln!(out, "APP {i} {term} END").unwrap();
                    }
                    next += n;
                }
            }
            out.flush().unwrap();
        }
    });
}

#[test]
fn kill_9_keeps_every_acknowledged_entry_and_vote() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Index → term of every acknowledged entry still in the log, and the acknowledged vote.
    let mut acked: BTreeMap<u64, u64> = BTreeMap::new();
    let mut vote_term = 0;
    let mut rng = rand::rng();
    let (mut appends, mut truncates, mut votes) = (0, 0, 0);
    for iteration in 0..ITERATIONS {
        let work = Duration::from_millis(rng.random_range(50..300));
        let lines = crate::wal::testkit::run_and_kill(TEST_NAME, CHILD_ENV, dir.path(), work);
        // A truncation announced but not acknowledged may have happened: entries from
        // there on need not survive (if present they are still checked byte for byte).
        let mut pending_truncate = None;
        for line in lines {
            let f: Vec<&str> = line.split_whitespace().collect();
            // "END" guards against a line cut short by the kill.
            match f[..] {
                ["TRUNCATING", from, "END"] => pending_truncate = Some(from.parse::<u64>().unwrap()),
                ["APP", i, t, "END"] => {
                    acked.insert(i.parse().unwrap(), t.parse().unwrap());
                    appends += 1;
                }
                ["TRUNC", from, "END"] => {
                    let from: u64 = from.parse().unwrap();
                    acked.retain(|&i, _| i < from);
                    pending_truncate = None;
                    truncates += 1;
                }
                ["VOTE", t, "END"] => {
                    vote_term = t.parse().unwrap();
                    votes += 1;
                }
                _ => {}
            }
        }
        let may_be_cut: BTreeMap<u64, u64> = match pending_truncate {
            Some(from) => acked.split_off(&from),
            None => BTreeMap::new(),
        };
        rt.block_on(async {
            let (wal, _) =
                Wal::open(dir.path(), opts()).unwrap_or_else(|e| panic!("iteration {iteration}: reopen failed: {e}"));
            let mut store = WalLogStore::new(wal);
            let vote = store.read_vote().await.unwrap();
            let got = vote.map_or(0, |v| v.leader_id.term);
            // A vote saved but not yet printed may have survived: never less than acknowledged.
            assert!(got >= vote_term, "iteration {iteration}: vote term {got} < acknowledged {vote_term}");
            vote_term = got;
            let entries = store.try_get_log_entries(0..).await.unwrap();
            for e in &entries {
                let want = entry(e.log_id.index, e.log_id.leader_id.term);
                assert_eq!(e, &want, "iteration {iteration}: entry {} is not what was appended", e.log_id.index);
            }
            let present: BTreeMap<u64, u64> =
                entries.iter().map(|e| (e.log_id.index, e.log_id.leader_id.term)).collect();
            for (i, t) in &acked {
                assert_eq!(present.get(i), Some(t), "iteration {iteration}: acknowledged entry {i} (term {t}) lost");
            }
            for (i, t) in &may_be_cut {
                assert!(present.get(i).is_none_or(|p| p == t), "iteration {iteration}: entry {i} changed term");
            }
            // What survived unacknowledged is part of the log now.
            acked = present;
        });
    }
    assert!(appends > 100, "the children acknowledged only {appends} appends");
    eprintln!("adapter crash test: {ITERATIONS} kills, {appends} appends, {truncates} truncations, {votes} votes acknowledged");
}
