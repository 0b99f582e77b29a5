//! Property test: random append / truncate / purge / commit / reopen sequences against a
//! simple in-memory model; after every step the WAL and the model must agree exactly.

use proptest::prelude::*;

use super::*;
use crate::wal::{Record, Term, WalError};

#[derive(Debug, Clone)]
enum Op {
    /// Records as (term bump 0/1, kind, payload length, compressible).
    Append(Vec<(u8, u8, u16, bool)>),
    /// Truncate at a point chosen by the fraction (per mille) of the allowed range.
    Truncate(u16),
    /// Purge through a point inside the log.
    Purge(u16),
    /// Purge past the end (snapshot install).
    PurgeBeyond(u8, u8),
    /// Move the commit point forward.
    Commit(u16),
    /// Close and reopen.
    Reopen,
    /// Stream from a random LSN with a reader.
    ReadFrom(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((0u8..2, any::<u8>(), 0u16..600, any::<bool>()), 0..12).prop_map(Op::Append),
        2 => (0u16..1000).prop_map(Op::Truncate),
        2 => (0u16..1000).prop_map(Op::Purge),
        1 => (0u8..5, 0u8..2).prop_map(|(a, b)| Op::PurgeBeyond(a, b)),
        1 => (0u16..1000).prop_map(Op::Commit),
        2 => Just(Op::Reopen),
        2 => (0u16..1000).prop_map(Op::ReadFrom),
    ]
}

struct Model {
    recs: Vec<Record>,
    /// First readable LSN.
    first: Lsn,
    /// Term of `first - 1` (for an empty log).
    purged_term: Term,
    commit: Lsn,
    counter: u64,
}

impl Model {
    fn last(&self) -> Lsn {
        self.first + self.recs.len() as u64 - 1
    }
    fn last_term(&self) -> Term {
        self.recs.last().map_or(self.purged_term, |r| r.term)
    }
    fn pick(lo: Lsn, hi: Lsn, f: u16) -> Option<Lsn> {
        (lo <= hi).then(|| lo + (hi - lo) * f as u64 / 999)
    }
}

fn payload(n: u64, len: u16, compressible: bool) -> Vec<u8> {
    (0..len as u64)
        .map(
            |i| {
                if compressible {
                    (i / 10 % 4) as u8
                } else {
                    (n.wrapping_mul(31).wrapping_add(i * i * 7) >> 2) as u8
                }
            },
        )
        .collect()
}

fn check(wal: &Wal, m: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(wal.first_lsn(), m.first);
    prop_assert_eq!(wal.last_lsn(), m.last());
    prop_assert_eq!(wal.last_term(), m.last_term());
    let got = wal.read_range(m.first..m.last() + 1).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&got, &m.recs);
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions { segment_bytes_max: 2048, index_interval_bytes: 200, ..small_opts() };
    let (mut wal, _) = Wal::open(dir.path(), opts.clone()).unwrap();
    let mut m = Model { recs: vec![], first: 1, purged_term: 0, commit: 0, counter: 0 };
    for op in ops {
        match op {
            Op::Append(specs) => {
                let mut term = m.last_term();
                let mut new = Vec::new();
                for (bump, kind, len, comp) in specs {
                    term += bump as u64;
                    m.counter += 1;
                    new.push(NewRecord::new(term, kind, payload(m.counter, len, comp)));
                }
                let next = m.last() + 1;
                let r = wal.append_at(next, new.clone()).wait().map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(r, next..next + new.len() as u64);
                for (i, n) in new.into_iter().enumerate() {
                    m.recs.push(Record { lsn: next + i as u64, term: n.term, kind: n.kind, payload: n.payload });
                }
            }
            Op::Truncate(f) => {
                let Some(at) = Model::pick(m.commit.max(m.first - 1) + 1, m.last() + 1, f) else {
                    continue;
                };
                wal.truncate_from(at).wait().map_err(|e| TestCaseError::fail(e.to_string()))?;
                m.recs.truncate((at - m.first) as usize);
            }
            Op::Purge(f) => {
                let Some(at) = Model::pick(m.first, m.last(), f) else {
                    continue;
                };
                let term = m.recs[(at - m.first) as usize].term;
                wal.purge_through(at, term).wait().map_err(|e| TestCaseError::fail(e.to_string()))?;
                m.recs.drain(..(at + 1 - m.first) as usize);
                m.first = at + 1;
                m.purged_term = term;
            }
            Op::PurgeBeyond(skip, bump) => {
                let at = m.last() + 1 + skip as u64;
                let term = m.last_term() + bump as u64;
                wal.purge_through(at, term).wait().map_err(|e| TestCaseError::fail(e.to_string()))?;
                m.recs.clear();
                m.first = at + 1;
                m.purged_term = term;
            }
            Op::Commit(f) => {
                let Some(at) = Model::pick(m.commit, m.last(), f) else {
                    continue;
                };
                wal.save_commit(at).map_err(|e| TestCaseError::fail(e.to_string()))?;
                m.commit = at;
            }
            Op::Reopen => {
                drop(wal);
                let (w, report) =
                    Wal::open(dir.path(), opts.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(
                    report.actions.iter().all(|a| matches!(
                        a,
                        crate::wal::RecoveryAction::FinishedPurge { .. }
                            | crate::wal::RecoveryAction::CreatedTail { .. }
                    )),
                    "clean reopen repaired something: {:?}",
                    report.actions
                );
                wal = w;
            }
            Op::ReadFrom(f) => {
                let Some(at) = Model::pick(m.first, m.last() + 1, f) else {
                    continue;
                };
                let mut r = wal.reader(at).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut got = Vec::new();
                while let Some(rec) = r.try_next().map_err(|e| TestCaseError::fail(e.to_string()))? {
                    got.push(rec);
                }
                prop_assert_eq!(&got[..], &m.recs[(at - m.first) as usize..]);
                if at > m.first {
                    let below = wal.reader(m.first - 1);
                    let purged = matches!(below, Err(WalError::Purged { .. }));
                    prop_assert!(m.first == 1 || purged, "reading below the first LSN must fail");
                }
            }
        }
        check(&wal, &m)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn wal_matches_in_memory_model(ops in prop::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
