//! In-memory state shared by the writer thread, readers and the [`crate::wal::Wal`] handle:
//! the segment list with its sparse index and the published (durable) end of the log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use tokio::sync::watch;

use super::options::WalOptions;
use super::{Lsn, Term};

/// Truncation history kept for readers; older readers are invalidated conservatively.
pub(crate) const TRUNCATIONS_KEPT_MAX: usize = 256;

/// One segment as readers see it.
#[derive(Debug, Clone)]
pub(crate) struct SegInfo {
    /// File name, for error messages.
    pub name: String,
    /// Full path, so readers can open it.
    pub path: PathBuf,
    /// Bytes of published (durable) records including the header; readers never read past it.
    pub end: u64,
    /// LSN and term of the last published record, `None` while the segment is empty.
    pub last: Option<(Lsn, Term)>,
    /// Sparse index (LSN, offset), ascending; the first record is always indexed.
    pub index: Vec<(Lsn, u64)>,
    /// Time of the last write, for age-based retention.
    pub modified: Option<SystemTime>,
}

impl SegInfo {
    /// Offset of the indexed record at or before `lsn`, and that record's LSN.
    pub fn seek(&self, lsn: Lsn) -> Option<(Lsn, u64)> {
        let i = self.index.partition_point(|&(l, _)| l <= lsn);
        if i == 0 {
            None
        } else {
            Some(self.index[i - 1])
        }
    }
}

/// The mutable part, behind `Shared::state`.
#[derive(Debug)]
pub(crate) struct State {
    /// Segments by first LSN; the last one is the tail the writer appends to.
    pub segments: BTreeMap<Lsn, SegInfo>,
    /// First readable LSN (`last_purged + 1`).
    pub first_lsn: Lsn,
    /// Last durable LSN (`first_lsn - 1` when the log is empty).
    pub last_lsn: Lsn,
    /// Term of `last_lsn` (0 when nothing was ever written).
    pub last_term: Term,
    /// Bumped by every truncation, so readers notice that bytes they buffered may be stale.
    pub generation: u64,
    /// Recent truncations (generation, from LSN) so a reader can tell whether it already
    /// returned a record that no longer exists.
    pub truncations: Vec<(u64, Lsn)>,
    /// Set when the writer stopped after an I/O failure.
    pub poisoned: Option<String>,
}

impl State {
    /// The segment holding `lsn` (by first LSN), if any.
    pub fn segment_for(&self, lsn: Lsn) -> Option<(Lsn, &SegInfo)> {
        self.segments.range(..=lsn).next_back().map(|(&f, s)| (f, s))
    }

    /// Records a truncation for readers.
    pub fn note_truncation(&mut self, from: Lsn) {
        self.generation += 1;
        self.truncations.push((self.generation, from));
        if self.truncations.len() > TRUNCATIONS_KEPT_MAX {
            self.truncations.remove(0);
        }
    }

    /// Lowest truncation point after generation `since`; `Some(0)` if history is lost.
    pub fn truncated_since(&self, since: u64) -> Option<Lsn> {
        if since == self.generation {
            return None;
        }
        if self.truncations.first().is_none_or(|&(g, _)| g > since + 1) {
            return Some(0);
        }
        self.truncations.iter().filter(|&&(g, _)| g > since).map(|&(_, l)| l).min()
    }
}

/// Everything readers and the writer share.
pub(crate) struct Shared {
    /// The WAL directory.
    pub dir: PathBuf,
    /// Options the WAL was opened with.
    pub opts: WalOptions,
    /// Segment list and durable end.
    pub state: Mutex<State>,
    /// Readers hold it shared while reading bytes; truncation holds it exclusively while it
    /// cuts files. Appends never take it, so readers never block the writer's appends.
    pub files: RwLock<()>,
    /// Publishes the last durable LSN so async readers can wait for new records.
    pub durable: watch::Sender<Lsn>,
    /// Set when the WAL is closed, so waiting readers give up instead of waiting forever.
    pub closed: std::sync::atomic::AtomicBool,
    /// Shared by all appenders: skips LZ4 attempts while payloads keep being incompressible.
    pub compress_probe: super::record::CompressProbe,
}

impl Shared {
    /// Locks the state, ignoring poisoning (the state is updated atomically under the lock).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shared file lock for readers.
    pub fn files_read(&self) -> RwLockReadGuard<'_, ()> {
        self.files.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the WAL closed and wakes waiting readers.
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.durable.send_modify(|_| {});
    }

    /// Whether the WAL was closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Exclusive file lock for truncation.
    pub fn files_write(&self) -> RwLockWriteGuard<'_, ()> {
        self.files.write().unwrap_or_else(|e| e.into_inner())
    }
}
