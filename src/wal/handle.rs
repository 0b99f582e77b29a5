//! [`Wal`]: the handle callers use. Cheap to clone; the writer thread stops when the last
//! clone is dropped (or [`Wal::close`] is called).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::future::Future;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::SystemTime;

use tokio::sync::{oneshot, watch};

use super::error::{Result, WalError};
use super::meta::{Meta, MetaStore};
use super::options::WalOptions;
use super::reader::WalReader;
use super::record::{self, NewRecord, Record};
use super::recovery::{self, RecoveryReport};
use super::retention;
use super::segment::{self, SEGMENT_HEADER_BYTES};
use super::state::{SegInfo, Shared, State};
use super::writer::{AppendCallback, Cmd, Reply, Writer};
use super::{Lsn, Term};

/// A result that becomes available when the writer thread has finished the operation.
/// `.await` it in async code or call [`Completion::wait`] from a plain thread.
pub struct Completion<T> {
    /// The writer's answer, or the error that kept the request from being queued.
    rx: std::result::Result<oneshot::Receiver<Result<T>>, WalError>,
}

impl<T> Completion<T> {
    fn failed(e: WalError) -> Self {
        Completion { rx: Err(e) }
    }

    /// Blocks the current thread until done. Must not be called from inside an async
    /// runtime thread (use `.await` there).
    pub fn wait(self) -> Result<T> {
        match self.rx {
            Ok(rx) => rx.blocking_recv().unwrap_or(Err(WalError::Closed)),
            Err(e) => Err(e),
        }
    }
}

impl<T> Future for Completion<T> {
    type Output = Result<T>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.rx {
            Ok(rx) => Pin::new(rx).poll(cx).map(|r| r.unwrap_or(Err(WalError::Closed))),
            Err(e) => Poll::Ready(Err(e.clone())),
        }
    }
}

/// Where the log stands, for openraft's `get_log_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogState {
    /// First readable LSN.
    pub first_lsn: Lsn,
    /// Last durable LSN and its term; `None` when nothing was ever appended or purged.
    pub last: Option<(Lsn, Term)>,
    /// Last purged log id, if anything was purged.
    pub last_purged: Option<(Lsn, Term)>,
}

/// One segment as `shoal wal info` and retention see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// File name.
    pub name: String,
    /// First LSN (from the name).
    pub first_lsn: Lsn,
    /// Last record, if any.
    pub last: Option<(Lsn, Term)>,
    /// Bytes of durable data including the header.
    pub bytes: u64,
    /// Whether the writer still appends to it.
    pub tail: bool,
}

struct Inner {
    /// Readers and the writer share it.
    shared: Arc<Shared>,
    /// Metadata; the writer takes it for truncate/purge, the handle for vote/commit.
    meta: Arc<Mutex<MetaStore>>,
    /// Queue to the writer; `None` once closed.
    tx: Mutex<Option<Sender<Cmd>>>,
    /// The writer thread, joined on close.
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        self.shared.close();
    }
}

/// The write-ahead log. See the module docs for the guarantees.
#[derive(Clone)]
pub struct Wal {
    inner: Arc<Inner>,
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`, running recovery first.
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> Result<(Wal, RecoveryReport)> {
        opts.validate()?;
        let dir = dir.as_ref().to_path_buf();
        if !opts.fsync {
            tracing::error!(dir = %dir.display(), "WAL opened with fsync = false: NOTHING IS DURABLE ACROSS POWER LOSS (tests and benchmarks only)");
        }
        let opened = recovery::open_dir(&dir, &opts)?;
        let plan = opened.plan;
        let mut segments = BTreeMap::new();
        for &i in &plan.kept {
            let s = &opened.scans[i];
            let end = match (plan.kept.last() == Some(&i), plan.tail_end) {
                (true, Some(e)) => e,
                _ => s.valid_end,
            };
            segments.insert(
                s.first_lsn,
                SegInfo {
                    name: s.name.clone(),
                    path: s.path.clone(),
                    end,
                    last: s.last,
                    index: s.index.clone(),
                    modified: s.modified,
                },
            );
        }
        if let Some(first) = recovery::created_first_lsn(&plan) {
            let name = segment::segment_name(first);
            let path = dir.join(&name);
            segments.insert(
                first,
                SegInfo {
                    name,
                    path,
                    end: SEGMENT_HEADER_BYTES,
                    last: None,
                    index: vec![],
                    modified: Some(SystemTime::now()),
                },
            );
        }
        let (&tail_first, tail) = segments
            .iter()
            .next_back()
            .ok_or_else(|| WalError::SegmentGap { detail: "no segment after recovery".into() })?;
        let tail_path = tail.path.clone();
        let tail_end = tail.end;
        let next_index_at = tail.index.last().map(|&(_, o)| o + opts.index_interval_bytes).unwrap_or(tail_end);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&tail_path)
            .map_err(|e| WalError::io("opening tail segment", &tail_path, e))?;
        let report = RecoveryReport {
            actions: plan.actions.clone(),
            segments: segments.len(),
            first_lsn: plan.first_lsn,
            last_lsn: plan.last_lsn,
            last_term: plan.last_term,
            uncommitted_records: plan.uncommitted_records,
        };
        let (durable, _) = watch::channel(plan.last_lsn);
        let state = State {
            segments,
            first_lsn: plan.first_lsn,
            last_lsn: plan.last_lsn,
            last_term: plan.last_term,
            generation: 0,
            truncations: vec![],
            poisoned: None,
        };
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            opts,
            state: Mutex::new(state),
            files: Default::default(),
            closed: Default::default(),
            compress_probe: Default::default(),
            durable,
        });
        let meta = Arc::new(Mutex::new(opened.meta));
        let writer = Writer {
            shared: shared.clone(),
            meta: meta.clone(),
            tail: file,
            tail_first,
            tail_path,
            tail_end,
            next_lsn: plan.last_lsn + 1,
            last_term: plan.last_term,
            next_index_at,
            batch: Default::default(),
            poisoned: None,
        };
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("shoal-wal-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| WalError::io("spawning the writer thread for", &dir, e))?;
        if !report.actions.is_empty() {
            tracing::warn!(actions = ?report.actions, "WAL recovery repaired the log");
        }
        let inner = Inner { shared, meta, tx: Mutex::new(Some(tx)), thread: Mutex::new(Some(thread)) };
        Ok((Wal { inner: Arc::new(inner) }, report))
    }

    fn send(&self, cmd: Cmd) -> std::result::Result<(), Cmd> {
        match self.inner.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(tx) => tx.send(cmd).map_err(|e| e.0),
            None => Err(cmd),
        }
    }

    fn prepare(&self, recs: Vec<NewRecord>) -> Result<Vec<record::Prepared>> {
        let o = &self.inner.shared.opts;
        recs.into_iter()
            .map(|r| {
                record::prepare_with(
                    r,
                    o.record_bytes_max,
                    o.compress_threshold_bytes,
                    &self.inner.shared.compress_probe,
                )
            })
            .collect()
    }

    fn submit(
        &self,
        recs: Vec<NewRecord>,
        expect_first: Option<Lsn>,
        reply: Reply,
    ) -> std::result::Result<(), (Reply, WalError)> {
        let recs = match self.prepare(recs) {
            Ok(r) => r,
            Err(e) => return Err((reply, e)),
        };
        match self.send(Cmd::Append { recs, expect_first, reply }) {
            Ok(()) => Ok(()),
            Err(Cmd::Append { reply, .. }) => Err((reply, WalError::Closed)),
            Err(_) => unreachable!("send returns the command it was given"),
        }
    }

    /// Appends `recs` at the next LSNs. Resolves to the assigned LSN range once every one
    /// of them is durable (fdatasync done). A request is all-or-nothing.
    pub fn append(&self, recs: Vec<NewRecord>) -> Completion<Range<Lsn>> {
        self.append_inner(recs, None)
    }

    /// Like [`Wal::append`] but fails with [`WalError::LsnMismatch`] unless the first record
    /// gets LSN `first` (for Raft, where the caller already knows the log index).
    pub fn append_at(&self, first: Lsn, recs: Vec<NewRecord>) -> Completion<Range<Lsn>> {
        self.append_inner(recs, Some(first))
    }

    fn append_inner(&self, recs: Vec<NewRecord>, expect_first: Option<Lsn>) -> Completion<Range<Lsn>> {
        let (tx, rx) = oneshot::channel();
        match self.submit(recs, expect_first, Reply::Future(tx)) {
            Ok(()) => Completion { rx: Ok(rx) },
            Err((_, e)) => Completion::failed(e),
        }
    }

    /// Appends and calls `done` (on the writer thread, keep it short) once durable or failed.
    /// This is the shape openraft's `LogFlushed` callback wants.
    pub fn append_with(
        &self,
        expect_first: Option<Lsn>,
        recs: Vec<NewRecord>,
        done: impl FnOnce(Result<Range<Lsn>>) + Send + 'static,
    ) {
        let cb: AppendCallback = Box::new(done);
        if let Err((Reply::Callback(f), e)) = self.submit(recs, expect_first, Reply::Callback(cb)) {
            f(Err(e));
        }
    }

    /// Drops every record with LSN >= `from` (a new leader overrides a divergent tail).
    /// Refuses to drop committed records. Crash-safe: newer segments are deleted newest
    /// first, then the segment holding `from` is cut and fsynced.
    pub fn truncate_from(&self, from: Lsn) -> Completion<()> {
        let (tx, rx) = oneshot::channel();
        match self.send(Cmd::Truncate { from, reply: tx }) {
            Ok(()) => Completion { rx: Ok(rx) },
            Err(_) => Completion::failed(WalError::Closed),
        }
    }

    /// Logically drops every record <= `lsn` (`term` is its term, checked when the record is
    /// still in the log) and deletes the whole segments below it. Purging past the end of
    /// the log (snapshot install) empties it: the next append gets `lsn + 1`. Crash-safe:
    /// the metadata is updated first, files are deleted oldest first, and recovery
    /// finishes an interrupted purge. Not limited by the purge floor (that is retention's).
    pub fn purge_through(&self, lsn: Lsn, term: Term) -> Completion<()> {
        let (tx, rx) = oneshot::channel();
        match self.send(Cmd::Purge { lsn, term, reply: tx }) {
            Ok(()) => Completion { rx: Ok(rx) },
            Err(_) => Completion::failed(WalError::Closed),
        }
    }

    /// Applies `retention_hours` / `retention_bytes_max` as of `now`, never purging a record
    /// at or above the purge floor. Returns the LSN purged through, if anything was.
    /// Blocks until the purge is done (call it from a plain thread or `spawn_blocking`).
    pub fn apply_retention(&self, now: SystemTime) -> Result<Option<Lsn>> {
        let o = &self.inner.shared.opts;
        let floor = self.meta().purge_floor;
        let segs: Vec<retention::Seg> = {
            let st = self.inner.shared.state();
            let n = st.segments.len();
            st.segments
                .values()
                .take(n.saturating_sub(1))
                .filter_map(|s| s.last.map(|last| retention::Seg { last, bytes: s.end, modified: s.modified }))
                .collect()
        };
        let total: u64 = self.segments().iter().map(|s| s.bytes).sum();
        match retention::plan(&segs, total, now, o.retention_hours, o.retention_bytes_max, floor) {
            Some((lsn, term)) => {
                self.purge_through(lsn, term).wait()?;
                Ok(Some(lsn))
            }
            None => Ok(None),
        }
    }

    /// A reader positioned at `from`.
    pub fn reader(&self, from: Lsn) -> Result<WalReader> {
        WalReader::new(self.inner.shared.clone(), from)
    }

    /// Reads exactly the records `range.start..range.end`; fails if any is purged or not
    /// yet durable.
    pub fn read_range(&self, range: Range<Lsn>) -> Result<Vec<Record>> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let last = self.last_lsn();
        if range.end > last + 1 {
            return Err(WalError::BeyondEnd { lsn: range.end - 1, last });
        }
        let mut r = self.reader(range.start)?;
        let mut out = Vec::with_capacity((range.end - range.start).min(1 << 16) as usize);
        while r.next_lsn() < range.end {
            match r.try_next()? {
                Some(rec) => out.push(rec),
                None => return Err(WalError::BeyondEnd { lsn: r.next_lsn(), last: self.last_lsn() }),
            }
        }
        Ok(out)
    }

    /// First readable LSN.
    pub fn first_lsn(&self) -> Lsn {
        self.inner.shared.state().first_lsn
    }

    /// Last durable LSN (`first_lsn() - 1` when empty).
    pub fn last_lsn(&self) -> Lsn {
        self.inner.shared.state().last_lsn
    }

    /// Term of the last durable LSN.
    pub fn last_term(&self) -> Term {
        self.inner.shared.state().last_term
    }

    /// First/last/purged log ids in one consistent snapshot.
    pub fn log_state(&self) -> LogState {
        let last_purged = self.meta().last_purged.filter(|&(l, _)| l > 0);
        let st = self.inner.shared.state();
        let last = if st.last_lsn == 0 { None } else { Some((st.last_lsn, st.last_term)) };
        LogState { first_lsn: st.first_lsn, last, last_purged }
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let st = self.inner.shared.state();
        let n = st.segments.len();
        st.segments
            .iter()
            .enumerate()
            .map(|(i, (&f, s))| SegmentInfo {
                name: s.name.clone(),
                first_lsn: f,
                last: s.last,
                bytes: s.end,
                tail: i + 1 == n,
            })
            .collect()
    }

    /// The WAL directory.
    pub fn dir(&self) -> PathBuf {
        self.inner.shared.dir.clone()
    }

    fn meta_store(&self) -> MutexGuard<'_, MetaStore> {
        self.inner.meta.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the metadata.
    pub fn meta(&self) -> Meta {
        self.meta_store().get().clone()
    }

    /// Saves the vote (opaque bytes) and its term atomically; blocks for one metadata
    /// commit (use `spawn_blocking` in async code). The term may not decrease.
    pub fn save_vote(&self, term: Term, vote: &[u8]) -> Result<()> {
        let mut m = self.meta_store();
        if term < m.get().term {
            return Err(WalError::TermRegression { lsn: 0, term, last_term: m.get().term });
        }
        m.update(|x| {
            x.term = term;
            x.vote = Some(vote.to_vec());
        })
    }

    /// Saves the commit point. It may not go backwards or past the end of the log.
    pub fn save_commit(&self, lsn: Lsn) -> Result<()> {
        let mut m = self.meta_store();
        let cur = m.get().commit;
        let purged = m.get().last_purged.map_or(0, |(l, _)| l);
        let last = self.last_lsn();
        if lsn < cur {
            return Err(WalError::BadCommit {
                lsn,
                reason: format!("the commit point is already {cur} and never moves back"),
            });
        }
        if lsn > last.max(purged) {
            return Err(WalError::BadCommit {
                lsn,
                reason: format!("the log ends at {last}; commit only what is in the log"),
            });
        }
        m.update(|x| x.commit = lsn)
    }

    /// Sets the retention floor: retention never purges records at or above it.
    pub fn set_purge_floor(&self, lsn: Lsn) -> Result<()> {
        self.meta_store().update(|x| x.purge_floor = lsn)
    }

    /// Saves the cluster layer's snapshot blob (one durable metadata commit; blocking).
    pub fn set_snapshot(&self, blob: &[u8]) -> Result<()> {
        self.meta_store().update(|x| x.snapshot = Some(blob.to_vec()))
    }

    /// Stops the writer after it finished everything queued, and waits for it.
    pub fn close(self) -> Result<()> {
        self.inner.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let t = self.inner.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t {
            t.join().map_err(|_| WalError::Poisoned { reason: "writer thread panicked".into() })?;
        }
        self.inner.shared.close();
        Ok(())
    }
}
