//! The writer thread: the only code that writes segment files.
//!
//! It owns the tail segment. Appends from all callers queue on one channel; the thread
//! takes everything queued (up to `batch_records_max` / `batch_bytes_max`), assigns LSNs,
//! frames the records into a [`Batch`] (headers with their checksums; the payloads are not
//! copied), checks the batch ([`Batch::check`]: lengths, dense LSNs, terms), writes headers
//! and payloads with vectored writes at the segment's end and makes them durable with one
//! `fdatasync` per segment (group commit). Only then does it publish the new end to readers
//! and complete each caller's future or callback. Truncate and purge go through the same
//! queue, so they are ordered with appends.
//!
//! The write is `lseek` + `writev` on the writer's own handle of the tail (std has no
//! stable positional vectored write, and this keeps the crate free of `unsafe`); std passes
//! at most `IOV_MAX` (1024) slices per call and [`write_all_vectored`] loops over the rest
//! and over short writes.

use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::oneshot;

use super::batch::Batch;
use super::error::{Result, WalError};
use super::meta::MetaStore;
use super::record::{self, Decode, Prepared};
use super::segment::{self, SEGMENT_HEADER_BYTES};
use super::state::{SegInfo, Shared};
use super::{Lsn, Term};

/// Called with the outcome of an append once it is durable (or failed).
pub type AppendCallback = Box<dyn FnOnce(Result<Range<Lsn>>) + Send + 'static>;

/// Where the outcome of an append goes.
pub(crate) enum Reply {
    /// A future the caller awaits.
    Future(oneshot::Sender<Result<Range<Lsn>>>),
    /// A callback run on the writer thread (keep it short).
    Callback(AppendCallback),
}

impl Reply {
    fn send(self, r: Result<Range<Lsn>>) {
        match self {
            Reply::Future(tx) => {
                let _ = tx.send(r);
            }
            Reply::Callback(f) => {
                // A panicking callback must not take the writer thread down with it.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(r))).is_err() {
                    tracing::error!("WAL append callback panicked; the writer continues");
                }
            }
        }
    }
}

/// Work for the writer thread.
pub(crate) enum Cmd {
    /// Append records; `expect_first` makes it fail unless the first LSN matches.
    Append { recs: Vec<Prepared>, expect_first: Option<Lsn>, reply: Reply },
    /// Drop every record with LSN >= `from`.
    Truncate { from: Lsn, reply: oneshot::Sender<Result<()>> },
    /// Logically drop every record <= `lsn` (whose term is `term`) and delete whole segments.
    Purge { lsn: Lsn, term: Term, reply: oneshot::Sender<Result<()>> },
}

/// The thread's private state.
pub(crate) struct Writer {
    /// State shared with readers.
    pub shared: Arc<Shared>,
    /// Metadata (commit point for truncation checks, last purged for purges).
    pub meta: Arc<Mutex<MetaStore>>,
    /// The tail segment file, open for writing.
    pub tail: File,
    /// First LSN of the tail segment (its key in the segment map).
    pub tail_first: Lsn,
    /// Path of the tail, for error messages.
    pub tail_path: PathBuf,
    /// Bytes in the tail file (header + records written so far).
    pub tail_end: u64,
    /// LSN the next appended record gets.
    pub next_lsn: Lsn,
    /// Term of the last record, to refuse decreasing terms.
    pub last_term: Term,
    /// Offset at which the next sparse-index entry is due.
    pub next_index_at: u64,
    /// The records framed since the last write (reused, so its vectors keep their capacity).
    pub batch: Batch,
    /// Set after a failed write/fsync: the on-disk tail is unknown until reopen.
    pub poisoned: Option<String>,
}

/// An accepted request waiting for the batch's fdatasync.
struct Pending {
    /// Where to report the outcome.
    reply: Reply,
    /// The LSNs it was assigned.
    range: Range<Lsn>,
}

impl Writer {
    /// Runs until every sender is dropped.
    pub fn run(mut self, rx: Receiver<Cmd>) {
        let opts = self.shared.opts.clone();
        while let Ok(first) = rx.recv() {
            let mut appends = Vec::new();
            let mut records = 0usize;
            let mut bytes = 0u64;
            let mut control = None;
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                match cmd {
                    Cmd::Append { recs, expect_first, reply } => {
                        records += recs.len();
                        bytes += recs.iter().map(|r| r.encoded_bytes() as u64).sum::<u64>();
                        appends.push((recs, expect_first, reply));
                    }
                    other => {
                        control = Some(other);
                        break;
                    }
                }
                if records >= opts.batch_records_max || bytes >= opts.batch_bytes_max {
                    break;
                }
                match rx.try_recv() {
                    Ok(c) => next = Some(c),
                    Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => {}
                }
            }
            if !appends.is_empty() {
                self.commit(appends);
            }
            match control {
                Some(Cmd::Truncate { from, reply }) => {
                    let r = self.guard().and_then(|_| self.truncate(from));
                    self.fail_on_io(&r);
                    let _ = reply.send(r);
                }
                Some(Cmd::Purge { lsn, term, reply }) => {
                    let r = self.guard().and_then(|_| self.purge(lsn, term));
                    self.fail_on_io(&r);
                    let _ = reply.send(r);
                }
                _ => {}
            }
        }
    }

    fn guard(&self) -> Result<()> {
        match &self.poisoned {
            Some(reason) => Err(WalError::Poisoned { reason: reason.clone() }),
            None => Ok(()),
        }
    }

    fn fail_on_io<T>(&mut self, r: &Result<T>) {
        if let Err(e @ WalError::Io { .. }) = r {
            tracing::error!(error = %e, "WAL writer poisoned");
            self.poisoned = Some(e.to_string());
            self.shared.state().poisoned = Some(e.to_string());
        }
    }

    /// One group commit: validate, frame, write, fdatasync, publish, reply.
    fn commit(&mut self, appends: Vec<(Vec<Prepared>, Option<Lsn>, Reply)>) {
        if let Err(e) = self.guard() {
            for (_, _, reply) in appends {
                reply.send(Err(e.clone()));
            }
            return;
        }
        let mut pending: Vec<Pending> = Vec::with_capacity(appends.len());
        self.batch.clear();
        let mut buf_start = self.tail_end;
        let mut new_index: Vec<(Lsn, u64)> = Vec::new();
        let mut result: Result<()> = Ok(());
        for (recs, expect_first, reply) in appends {
            if result.is_err() {
                // A write failed earlier in this batch: everyone after it gets the error too.
                pending.push(Pending { reply, range: self.next_lsn..self.next_lsn });
                continue;
            }
            if let Err(e) = self.validate(&recs, expect_first) {
                reply.send(Err(e));
                continue;
            }
            let first = self.next_lsn;
            for rec in recs {
                let at = buf_start + self.batch.bytes();
                if at + rec.encoded_bytes() as u64 > self.shared.opts.segment_bytes_max && at > SEGMENT_HEADER_BYTES {
                    // Roll: make what we have durable in the old segment, then start a new one.
                    if let Err(e) = self.flush(buf_start, &mut new_index) {
                        result = Err(e);
                        break;
                    }
                    if let Err(e) = self.roll() {
                        result = Err(e);
                        break;
                    }
                    buf_start = self.tail_end;
                }
                let at = buf_start + self.batch.bytes();
                if at >= self.next_index_at {
                    new_index.push((self.next_lsn, at));
                    self.next_index_at = at + self.shared.opts.index_interval_bytes;
                }
                self.last_term = rec.term;
                self.batch.push(self.next_lsn, rec);
                self.next_lsn += 1;
            }
            pending.push(Pending { reply, range: first..self.next_lsn });
        }
        if result.is_ok() {
            result = self.flush(buf_start, &mut new_index);
        }
        match result {
            Ok(()) => {
                for p in pending {
                    p.reply.send(Ok(p.range));
                }
            }
            Err(e) => {
                self.fail_on_io(&Err::<(), _>(e.clone()));
                if self.poisoned.is_none() {
                    self.poisoned = Some(e.to_string());
                }
                for p in pending {
                    p.reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// Checks a request before anything of it is framed: all or nothing.
    fn validate(&self, recs: &[Prepared], expect_first: Option<Lsn>) -> Result<()> {
        if let Some(expected) = expect_first {
            if expected != self.next_lsn {
                return Err(WalError::LsnMismatch { expected, next: self.next_lsn });
            }
        }
        let mut last = self.last_term;
        for (i, r) in recs.iter().enumerate() {
            if r.term < last {
                return Err(WalError::TermRegression { lsn: self.next_lsn + i as u64, term: r.term, last_term: last });
            }
            last = r.term;
        }
        Ok(())
    }

    /// Writes the batch at `buf_start` in the tail, fdatasyncs, publishes, clears the batch.
    fn flush(&mut self, buf_start: u64, new_index: &mut Vec<(Lsn, u64)>) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        // Paired check (see `batch.rs`): what is about to hit the disk frames dense LSNs.
        let (first_lsn, term) = {
            let st = self.shared.state();
            (st.last_lsn + 1, st.last_term)
        };
        self.batch
            .check(first_lsn, self.next_lsn, term)
            .map_err(|reason| WalError::Poisoned { reason: format!("encoder produced an invalid batch: {reason}") })?;
        write_all_vectored(&self.tail, &mut self.batch.io_slices(), buf_start)
            .map_err(|e| WalError::io("writing", &self.tail_path, e))?;
        if self.shared.opts.fsync {
            self.tail.sync_data().map_err(|e| WalError::io("fdatasyncing", &self.tail_path, e))?;
        }
        self.tail_end = buf_start + self.batch.bytes();
        self.batch.clear();
        let last = self.next_lsn - 1;
        {
            let mut st = self.shared.state();
            if let Some(seg) = st.segments.get_mut(&self.tail_first) {
                seg.end = self.tail_end;
                seg.last = Some((last, self.last_term));
                seg.index.append(new_index);
                seg.modified = Some(SystemTime::now());
            }
            st.last_lsn = last;
            st.last_term = self.last_term;
        }
        self.shared.durable.send_replace(last);
        Ok(())
    }

    /// Seals the tail and creates the next segment at `next_lsn`.
    fn roll(&mut self) -> Result<()> {
        let (path, file) = segment::create_segment(&self.shared.dir, self.next_lsn, self.shared.opts.fsync)?;
        self.install_tail(self.next_lsn, path, file, SEGMENT_HEADER_BYTES);
        let name = segment::segment_name(self.next_lsn);
        let info = SegInfo {
            name,
            path: self.tail_path.clone(),
            end: SEGMENT_HEADER_BYTES,
            last: None,
            index: Vec::new(),
            modified: Some(SystemTime::now()),
        };
        self.shared.state().segments.insert(self.tail_first, info);
        Ok(())
    }

    fn install_tail(&mut self, first: Lsn, path: PathBuf, file: File, end: u64) {
        self.tail = file;
        self.tail_first = first;
        self.tail_path = path;
        self.tail_end = end;
        self.next_index_at = end;
    }

    /// Drops every record with LSN >= `from` (see `Wal::truncate_from`).
    fn truncate(&mut self, from: Lsn) -> Result<()> {
        let meta = self.meta.clone();
        let meta = meta.lock().unwrap_or_else(|e| e.into_inner());
        let commit = meta.get().commit;
        if from <= commit {
            return Err(WalError::TruncateCommitted { lsn: from, commit });
        }
        let shared = self.shared.clone();
        let _files = shared.files_write();
        let (first_lsn, last_lsn) = {
            let st = shared.state();
            (st.first_lsn, st.last_lsn)
        };
        if from > last_lsn {
            return Ok(());
        }
        if from < first_lsn {
            return Err(WalError::Purged { lsn: from, first: first_lsn });
        }
        let (seg_first, seg) = {
            let st = shared.state();
            let (f, s) = st.segment_for(from).ok_or(WalError::Purged { lsn: from, first: first_lsn })?;
            (f, s.clone())
        };
        // Where record `from` starts, and the term of the record before it.
        let (offset, prev_term) = if from == seg_first {
            let st = shared.state();
            let prev = st.segments.range(..seg_first).next_back().and_then(|(_, s)| s.last).map(|(_, t)| t);
            let prev = prev.or_else(|| meta.get().last_purged.filter(|&(l, _)| l + 1 == from).map(|(_, t)| t));
            (SEGMENT_HEADER_BYTES, prev.unwrap_or(0))
        } else {
            locate(&seg, from)?
        };
        // Delete newer segments newest first, so a crash leaves a contiguous prefix.
        let newer: Vec<(Lsn, SegInfo)> =
            shared.state().segments.range(seg_first + 1..).map(|(&f, s)| (f, s.clone())).collect();
        for (f, s) in newer.iter().rev() {
            std::fs::remove_file(&s.path).map_err(|e| WalError::io("deleting segment", &s.path, e))?;
            shared.state().segments.remove(f);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&seg.path)
            .map_err(|e| WalError::io("opening", &seg.path, e))?;
        file.set_len(offset).map_err(|e| WalError::io("truncating", &seg.path, e))?;
        if shared.opts.fsync {
            file.sync_all().map_err(|e| WalError::io("fsyncing", &seg.path, e))?;
            segment::sync_dir(&shared.dir)?;
        }
        {
            let mut st = shared.state();
            if let Some(s) = st.segments.get_mut(&seg_first) {
                s.end = offset;
                s.last = if from > seg_first { Some((from - 1, prev_term)) } else { None };
                s.index.retain(|&(_, o)| o < offset);
            }
            st.last_lsn = from - 1;
            st.last_term = prev_term;
            st.note_truncation(from);
        }
        let next_index_at = seg
            .index
            .iter()
            .filter(|&&(_, o)| o < offset)
            .map(|&(_, o)| o + shared.opts.index_interval_bytes)
            .next_back();
        self.install_tail(seg_first, seg.path.clone(), file, offset);
        self.next_index_at = next_index_at.unwrap_or(offset);
        self.next_lsn = from;
        self.last_term = prev_term;
        shared.durable.send_replace(from - 1);
        tracing::info!(from, "WAL truncated suffix");
        Ok(())
    }

    /// Purges through `lsn` (see `Wal::purge_through`).
    fn purge(&mut self, lsn: Lsn, term: Term) -> Result<()> {
        let meta_arc = self.meta.clone();
        let mut meta = meta_arc.lock().unwrap_or_else(|e| e.into_inner());
        if meta.get().last_purged.is_some_and(|(l, _)| lsn <= l) {
            return Ok(());
        }
        let shared = self.shared.clone();
        let last_lsn = shared.state().last_lsn;
        if lsn <= last_lsn {
            let seg = shared.state().segment_for(lsn).map(|(f, s)| (f, s.clone()));
            let found = match seg {
                Some((f, s)) => term_at(&s, f, lsn)?,
                None => term,
            };
            if found != term {
                return Err(WalError::TermMismatch { lsn, given: term, found });
            }
        }
        meta.update(|m| m.last_purged = Some((lsn, term)))?;
        drop(meta);
        shared.state().first_lsn = lsn + 1;
        if lsn > last_lsn {
            // Everything goes: start an empty tail at lsn + 1 (reuse it if it is already that).
            let tail_is_it = self.tail_first == lsn + 1 && self.tail_end == SEGMENT_HEADER_BYTES;
            if !tail_is_it {
                self.next_lsn = lsn + 1;
                self.roll()?;
            }
            self.next_lsn = lsn + 1;
            self.last_term = term;
            let mut st = shared.state();
            st.last_lsn = lsn;
            st.last_term = term;
        }
        // Delete whole segments at or below the purge point, oldest first; never the tail.
        let doomed: Vec<(Lsn, PathBuf)> = {
            let st = shared.state();
            st.segments
                .iter()
                .filter(|&(&f, s)| f != self.tail_first && s.last.is_none_or(|(l, _)| l <= lsn))
                .map(|(&f, s)| (f, s.path.clone()))
                .collect()
        };
        {
            // Readers open files under the shared lock: none can be between looking up a
            // path and opening it while we delete.
            let _files = shared.files_write();
            for (f, path) in &doomed {
                shared.state().segments.remove(f);
                std::fs::remove_file(path).map_err(|e| WalError::io("deleting segment", path, e))?;
            }
        }
        if shared.opts.fsync && !doomed.is_empty() {
            segment::sync_dir(&shared.dir)?;
        }
        if lsn > last_lsn {
            shared.durable.send_replace(lsn);
        }
        tracing::info!(lsn, segments_deleted = doomed.len(), "WAL purged prefix");
        Ok(())
    }
}

/// Finds where record `target` starts in `seg` (or `seg.end` when `target` is one past
/// its last record) by sparse-index seek plus a short scan, and the term of `target - 1`.
/// Requires `seg`'s first LSN < `target`. Every record on the way is checked (checksum, LSN).
pub(crate) fn locate(seg: &SegInfo, target: Lsn) -> Result<(u64, Term)> {
    let (mut at_lsn, mut off) =
        seg.seek(target - 1).ok_or_else(|| corrupt(seg, SEGMENT_HEADER_BYTES, "sparse index has no entry"))?;
    let file = File::open(&seg.path).map_err(|e| WalError::io("opening", &seg.path, e))?;
    let mut buf = vec![0u8; record::RECORD_HEADER_BYTES];
    while off < seg.end {
        let head = (seg.end - off).min(record::RECORD_HEADER_BYTES as u64) as usize;
        buf.resize(head, 0);
        file.read_exact_at(&mut buf, off).map_err(|e| WalError::io("reading", &seg.path, e))?;
        if let Decode::Incomplete { need } = record::decode(&buf) {
            if off + need as u64 > seg.end {
                return Err(corrupt(seg, off, "record runs past the end of the segment"));
            }
            buf.resize(need, 0);
            file.read_exact_at(&mut buf, off).map_err(|e| WalError::io("reading", &seg.path, e))?;
        }
        match record::decode(&buf) {
            Decode::Record(r) if r.lsn == at_lsn => {
                off += r.total as u64;
                if at_lsn + 1 == target {
                    return Ok((off, r.term));
                }
                at_lsn += 1;
            }
            Decode::Record(r) => return Err(corrupt(seg, off, &format!("LSN {} where {at_lsn} was expected", r.lsn))),
            other => return Err(corrupt(seg, off, &format!("{other:?}"))),
        }
    }
    Err(WalError::BeyondEnd { lsn: target, last: at_lsn.saturating_sub(1) })
}

/// Term of record `lsn`, which must be in `seg`.
fn term_at(seg: &SegInfo, first: Lsn, lsn: Lsn) -> Result<Term> {
    match seg.last {
        Some((l, t)) if l == lsn => Ok(t),
        _ if lsn >= first => locate(seg, lsn + 1).map(|(_, t)| t),
        _ => Err(corrupt(seg, SEGMENT_HEADER_BYTES, &format!("LSN {lsn} is not in this segment"))),
    }
}

fn corrupt(seg: &SegInfo, offset: u64, reason: &str) -> WalError {
    WalError::CorruptRecord { segment: seg.name.clone(), offset, reason: reason.to_string() }
}

/// Writes all of `slices` to `file` starting at `offset`: seeks, then `writev` until done
/// (short writes and `EINTR` continue; std caps each call at `IOV_MAX` slices).
fn write_all_vectored(mut file: &File, mut slices: &mut [IoSlice<'_>], offset: u64) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
