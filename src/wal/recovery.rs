//! Recovery on open: scan every segment, decide, then repair.
//!
//! [`decide`] is pure: it looks at the scans of all segment files, the leftover temp files
//! and the metadata, and returns either a [`Plan`] (actions plus the resulting log bounds)
//! or the error that makes opening unsafe. `open_dir` does the I/O around it.
//!
//! # Decision table
//!
//! Rows are checked in this order; each has a test `row_XX_*` in `tests/recovery.rs`.
//!
//! | Row | Condition found on open | Decision |
//! |-----|-------------------------|----------|
//! | R01 | no `meta.redb`, no segments | fresh log: create metadata and an empty segment at `first_lsn` |
//! | R02 | a `*.wal.tmp` file (crash while creating a segment) | delete it, log it |
//! | R03 | segments but no `meta.redb` | refuse: [`WalError::MetaMissing`] (vote and commit point lost) |
//! | R04 | a segment header has an unknown version, bad magic/checksum, or a first LSN that differs from its file name | refuse: [`WalError::UnsupportedVersion`] / [`WalError::BadHeader`]; except R05 |
//! | R05 | the *last* segment has no header (short or all-zero) and is not larger than one torn write | delete it, log it |
//! | R06 | a segment whose records all lie at or below the metadata's last purged LSN (crash during purge; the last segment only when it ends *below* it) | delete it (finish the purge), log it |
//! | R07 | clean tail: the last segment ends exactly after a valid record (or its header) | open and append after it |
//! | R08 | torn last record: the last segment ends inside a record, or a bad record is followed by at most one write batch of bytes | truncate the tail at that record, log it (it was never acknowledged) |
//! | R09 | zero-filled tail: zeros from some offset to the end of the last segment, within one write batch | truncate the zeros, log it |
//! | R10 | damage in the last segment followed by more bytes than one write batch can tear | refuse: [`WalError::CorruptTail`] |
//! | R11 | bad checksum, bad length, zeros or a short record anywhere in a sealed (non-last) segment | refuse: [`WalError::CorruptSegment`] naming segment and offset, suggesting `shoal wal verify` |
//! | R12 | a record with a valid checksum but the wrong LSN or a decreasing term (any segment) | refuse: [`WalError::CorruptSegment`] |
//! | R13 | missing or out-of-order segment: the next segment does not start at previous last + 1, an empty segment that is not last, terms decrease across segments, or the first segment starts after last purged + 1 | refuse: [`WalError::SegmentGap`] |
//! | R14 | no segment left but metadata exists (everything purged) | create an empty segment at last purged + 1 |
//! | R15 | metadata ahead of the log: commit point above the last LSN and above the last purged LSN | refuse: [`WalError::MetaAheadOfLog`] |
//! | R16 | metadata behind the log: records after the commit point | open; they are reported as `uncommitted_records` (Raft decides their fate) |

use std::path::{Path, PathBuf};

use super::error::{Result, WalError};
use super::meta::{Meta, MetaStore};
use super::options::WalOptions;
use super::segment::{self, HeaderProblem, SegmentScan, StopKind, FORMAT_VERSION};
use super::{Lsn, Term};

/// One repair recovery performed (or, for `shoal wal info`, would perform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryAction {
    /// R01: a brand-new log was created.
    CreatedLog {
        /// Its first LSN.
        first_lsn: Lsn,
    },
    /// R02: a leftover temp file was deleted.
    RemovedTmp {
        /// The file.
        file: PathBuf,
    },
    /// R05: a last segment without a header was deleted.
    RemovedHeaderlessTail {
        /// Segment file name.
        segment: String,
    },
    /// R06: a segment entirely below the purge point was deleted.
    FinishedPurge {
        /// Segment file name.
        segment: String,
    },
    /// R08: a torn (partially written) last record was cut off.
    TruncatedTornTail {
        /// Segment file name.
        segment: String,
        /// New end of the segment.
        offset: u64,
        /// Bytes dropped.
        dropped_bytes: u64,
        /// What was wrong with the bytes.
        reason: String,
    },
    /// R09: a zero-filled tail was cut off.
    TruncatedZeroTail {
        /// Segment file name.
        segment: String,
        /// New end of the segment.
        offset: u64,
        /// Bytes dropped.
        dropped_bytes: u64,
    },
    /// R14: an empty segment was created because none was left.
    CreatedTail {
        /// Its first LSN.
        first_lsn: Lsn,
    },
}

/// What recovery found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Repairs performed, in order.
    pub actions: Vec<RecoveryAction>,
    /// Segments in the log after recovery.
    pub segments: usize,
    /// First readable LSN.
    pub first_lsn: Lsn,
    /// Last LSN (`first_lsn - 1` when empty).
    pub last_lsn: Lsn,
    /// Term of the last LSN.
    pub last_term: Term,
    /// R16: records after the commit point.
    pub uncommitted_records: u64,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone)]
pub struct Plan {
    /// Repairs to perform, in order.
    pub actions: Vec<RecoveryAction>,
    /// Indices into the scans of the segments that stay, in LSN order.
    pub kept: Vec<usize>,
    /// New end offset of the last kept segment, when it is truncated.
    pub tail_end: Option<u64>,
    /// First readable LSN.
    pub first_lsn: Lsn,
    /// Last LSN after the repairs.
    pub last_lsn: Lsn,
    /// Term of `last_lsn`.
    pub last_term: Term,
    /// Records after the commit point.
    pub uncommitted_records: u64,
}

/// The pure decision: see the table in the module doc.
pub fn decide(meta: Option<&Meta>, scans: &[SegmentScan], tmps: &[PathBuf], opts: &WalOptions) -> Result<Plan> {
    let mut actions: Vec<RecoveryAction> =
        tmps.iter().map(|f| RecoveryAction::RemovedTmp { file: f.clone() }).collect();
    let Some(meta) = meta else {
        if scans.is_empty() {
            // R01
            actions.push(RecoveryAction::CreatedLog { first_lsn: opts.first_lsn });
            return Ok(Plan {
                actions,
                kept: vec![],
                tail_end: None,
                first_lsn: opts.first_lsn,
                last_lsn: opts.first_lsn - 1,
                last_term: 0,
                uncommitted_records: 0,
            });
        }
        return Err(WalError::MetaMissing { dir: scans[0].path.parent().map(Path::to_path_buf).unwrap_or_default() });
        // R03
    };
    let (lp_lsn, lp_term) = meta.last_purged.unwrap_or((0, 0));
    let window = opts.torn_window_bytes();
    let n = scans.len();
    let mut kept: Vec<usize> = Vec::new();
    for (i, s) in scans.iter().enumerate() {
        let is_last = i + 1 == n;
        match &s.header {
            Ok(()) => {}
            Err(HeaderProblem::Missing) if is_last && s.file_bytes <= window => {
                actions.push(RecoveryAction::RemovedHeaderlessTail { segment: s.name.clone() }); // R05
                continue;
            }
            Err(HeaderProblem::Version(v)) => {
                return Err(WalError::UnsupportedVersion {
                    what: s.name.clone(),
                    found: *v,
                    supported: FORMAT_VERSION,
                });
            }
            Err(HeaderProblem::Missing) => {
                return Err(WalError::BadHeader {
                    segment: s.name.clone(),
                    reason: "header missing (file too short or zeroed)".into(),
                });
            }
            Err(HeaderProblem::Bad(reason)) => {
                return Err(WalError::BadHeader { segment: s.name.clone(), reason: reason.clone() })
            }
        }
        // R06: everything in it is purged. For a non-last segment the next file's name
        // bounds its content; for the last one its own valid records do.
        let fully_purged = match scans.get(i + 1) {
            Some(next) => next.first_lsn <= lp_lsn + 1 && meta.last_purged.is_some(),
            None => meta.last_purged.is_some() && s.last.map_or(s.first_lsn.saturating_sub(1), |(l, _)| l) < lp_lsn,
        };
        if fully_purged {
            actions.push(RecoveryAction::FinishedPurge { segment: s.name.clone() });
            continue;
        }
        kept.push(i);
    }
    let mut tail_end = None;
    for (k, &i) in kept.iter().enumerate() {
        let s = &scans[i];
        let is_last = k + 1 == kept.len();
        let Some(stop) = &s.stop else { continue };
        if let StopKind::Order(reason) = &stop.kind {
            return Err(WalError::CorruptSegment {
                segment: s.name.clone(),
                offset: stop.offset,
                reason: reason.clone(),
            }); // R12
        }
        let reason = match &stop.kind {
            StopKind::Incomplete => "record runs past the end of the file".to_string(),
            StopKind::Zeros { all_zero: true } => "zero-filled region".to_string(),
            StopKind::Zeros { all_zero: false } => "zero length field followed by non-zero bytes".to_string(),
            StopKind::Corrupt(r) | StopKind::Order(r) => r.clone(),
        };
        if !is_last {
            return Err(WalError::CorruptSegment { segment: s.name.clone(), offset: stop.offset, reason });
            // R11
        }
        let damaged = s.file_bytes - stop.offset;
        if damaged > window {
            return Err(WalError::CorruptTail {
                segment: s.name.clone(),
                offset: stop.offset,
                damaged_bytes: damaged,
                window_bytes: window,
                reason,
            }); // R10
        }
        tail_end = Some(stop.offset);
        actions.push(match stop.kind {
            StopKind::Zeros { all_zero: true } => RecoveryAction::TruncatedZeroTail {
                segment: s.name.clone(),
                offset: stop.offset,
                dropped_bytes: damaged,
            }, // R09
            _ => RecoveryAction::TruncatedTornTail {
                segment: s.name.clone(),
                offset: stop.offset,
                dropped_bytes: damaged,
                reason,
            }, // R08
        });
    }
    // R13: contiguity.
    for w in kept.windows(2) {
        let (a, b) = (&scans[w[0]], &scans[w[1]]);
        let Some((a_last, a_term)) = a.last else {
            return Err(WalError::SegmentGap {
                detail: format!("segment {} is empty but is followed by {}", a.name, b.name),
            });
        };
        if b.first_lsn != a_last + 1 {
            return Err(WalError::SegmentGap {
                detail: format!("{} ends at LSN {a_last} but the next segment is {}", a.name, b.name),
            });
        }
        if let Some(bt) = b.first_term {
            if bt < a_term {
                return Err(WalError::SegmentGap {
                    detail: format!("{} starts with term {bt}, below the last term {a_term} of {}", b.name, a.name),
                });
            }
        }
    }
    if let Some(&i) = kept.first() {
        if meta.last_purged.is_some() && scans[i].first_lsn > lp_lsn + 1 {
            return Err(WalError::SegmentGap {
                detail: format!(
                    "the log should start at LSN {} (last purged {lp_lsn}) but its first segment is {}",
                    lp_lsn + 1,
                    scans[i].name
                ),
            });
        }
    }
    let (last_lsn, last_term) = match kept.last() {
        None => {
            actions.push(RecoveryAction::CreatedTail { first_lsn: lp_lsn + 1 }); // R14
            (lp_lsn, lp_term)
        }
        Some(&i) => match scans[i].last {
            Some(l) => l,
            None => {
                let prev = kept.len().checked_sub(2).and_then(|k| scans[kept[k]].last).map(|(_, t)| t);
                let lsn = scans[i].first_lsn - 1;
                (lsn, prev.unwrap_or(if lsn == lp_lsn { lp_term } else { 0 }))
            }
        },
    };
    let first_lsn = match (meta.last_purged, kept.first()) {
        (Some((l, _)), _) => l + 1,
        (None, Some(&i)) => scans[i].first_lsn,
        (None, None) => opts.first_lsn,
    };
    if meta.commit > last_lsn.max(lp_lsn) {
        return Err(WalError::MetaAheadOfLog { commit: meta.commit, last_lsn }); // R15
    }
    let uncommitted_records = last_lsn.saturating_sub(meta.commit.max(lp_lsn)); // R16
    Ok(Plan { actions, kept, tail_end, first_lsn, last_lsn, last_term, uncommitted_records })
}

/// Everything [`open_dir`] hands to the WAL handle.
pub(crate) struct Opened {
    pub meta: MetaStore,
    pub scans: Vec<SegmentScan>,
    pub plan: Plan,
}

/// Scans the directory, decides and applies the repairs.
pub(crate) fn open_dir(dir: &Path, opts: &WalOptions) -> Result<Opened> {
    std::fs::create_dir_all(dir).map_err(|e| WalError::io("creating WAL directory", dir, e))?;
    let (segs, tmps) = segment::list_dir(dir)?;
    let meta_exists = MetaStore::path(dir).exists();
    let mut scans = Vec::with_capacity(segs.len());
    for (_, path) in &segs {
        scans.push(segment::scan_segment(path, opts.index_interval_bytes, false)?);
    }
    if !meta_exists && !scans.is_empty() {
        return Err(WalError::MetaMissing { dir: dir.to_path_buf() });
    }
    let (mut meta, _) = MetaStore::open(dir)?;
    if !meta_exists {
        meta.update(|m| m.last_purged = Some((opts.first_lsn - 1, 0)))?;
    }
    let plan = decide(if meta_exists { Some(meta.get()) } else { None }, &scans, &tmps, opts)?;
    apply(dir, opts, &plan, &mut scans)?;
    Ok(Opened { meta, scans, plan })
}

fn apply(dir: &Path, opts: &WalOptions, plan: &Plan, scans: &mut [SegmentScan]) -> Result<()> {
    let mut dir_dirty = false;
    for a in &plan.actions {
        match a {
            RecoveryAction::RemovedTmp { file } => {
                tracing::warn!(file = %file.display(), "WAL recovery: removing leftover temp segment");
                std::fs::remove_file(file).map_err(|e| WalError::io("deleting", file, e))?;
                dir_dirty = true;
            }
            RecoveryAction::RemovedHeaderlessTail { segment } | RecoveryAction::FinishedPurge { segment } => {
                tracing::warn!(segment, action = ?a, "WAL recovery: deleting segment");
                let p = dir.join(segment);
                std::fs::remove_file(&p).map_err(|e| WalError::io("deleting", &p, e))?;
                dir_dirty = true;
            }
            RecoveryAction::TruncatedTornTail { segment, offset, .. }
            | RecoveryAction::TruncatedZeroTail { segment, offset, .. } => {
                tracing::warn!(segment, offset, action = ?a, "WAL recovery: truncating damaged tail (never acknowledged)");
                let p = dir.join(segment);
                let f = std::fs::OpenOptions::new().write(true).open(&p).map_err(|e| WalError::io("opening", &p, e))?;
                f.set_len(*offset).map_err(|e| WalError::io("truncating", &p, e))?;
                if opts.fsync {
                    f.sync_all().map_err(|e| WalError::io("fsyncing", &p, e))?;
                }
                if let Some(s) = scans.iter_mut().find(|s| &s.name == segment) {
                    s.file_bytes = *offset;
                    s.stop = None;
                }
            }
            RecoveryAction::CreatedLog { first_lsn } | RecoveryAction::CreatedTail { first_lsn } => {
                let (path, _) = segment::create_segment(dir, *first_lsn, opts.fsync)?;
                let scan = segment::scan_segment(&path, opts.index_interval_bytes, false)?;
                tracing::info!(segment = %scan.name, "WAL: created segment");
            }
        }
    }
    if dir_dirty && opts.fsync {
        segment::sync_dir(dir)?;
    }
    Ok(())
}

/// The segment created by R01/R14, if any.
pub(crate) fn created_first_lsn(plan: &Plan) -> Option<Lsn> {
    plan.actions.iter().find_map(|a| match a {
        RecoveryAction::CreatedLog { first_lsn } | RecoveryAction::CreatedTail { first_lsn } => Some(*first_lsn),
        _ => None,
    })
}
