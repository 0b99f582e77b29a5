//! [`WalReader`]: streams records from any LSN, across segments, while the writer appends.
//!
//! A reader owns its own file handles and buffer. It only reads bytes below the published
//! (durable) end, so it never sees a half-written record, and it never takes a lock the
//! writer's appends take (only the state mutex, for a few instructions per record).
//! Truncation takes the file lock exclusively; a reader notices it through the state's
//! generation and either drops its buffer or, if it already returned a record that was
//! truncated, fails with [`WalError::ReaderInvalidated`].

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use tokio::sync::watch;

use super::error::{Result, WalError};
use super::record::{self, Decode, Record};
use super::state::Shared;
use super::Lsn;

/// An open segment with a read buffer.
struct Cursor {
    /// First LSN of the segment (its identity in the segment map).
    seg_first: Lsn,
    /// Segment name for errors.
    name: String,
    /// Our own handle, so a purge deleting the file cannot disturb us mid-read.
    file: File,
    /// File offset of the next record to return.
    pos: u64,
    /// LSN of the record at `pos`.
    pos_lsn: Lsn,
    /// Buffered bytes, starting at file offset `buf_off`.
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_off: u64,
}

/// Streams records in LSN order. Create with [`crate::wal::Wal::reader`].
pub struct WalReader {
    /// Segment list, durable end and file lock shared with the writer.
    shared: Arc<Shared>,
    /// LSN of the next record to return.
    next: Lsn,
    /// Truncation generation the buffered bytes belong to.
    generation: u64,
    /// The open segment and its buffer, kept between calls so streaming is sequential I/O.
    cur: Option<Cursor>,
    /// Wakes `next().await` when the durable end moves.
    durable: watch::Receiver<Lsn>,
}

impl WalReader {
    pub(crate) fn new(shared: Arc<Shared>, from: Lsn) -> Result<Self> {
        let generation = {
            let st = shared.state();
            if from < st.first_lsn {
                return Err(WalError::Purged { lsn: from, first: st.first_lsn });
            }
            if from > st.last_lsn + 1 {
                return Err(WalError::BeyondEnd { lsn: from, last: st.last_lsn });
            }
            st.generation
        };
        let durable = shared.durable.subscribe();
        Ok(WalReader { shared, next: from, generation, cur: None, durable })
    }

    /// LSN of the record the next call returns.
    pub fn next_lsn(&self) -> Lsn {
        self.next
    }

    /// The next record if it is already durable, `None` if the reader has caught up.
    pub fn try_next(&mut self) -> Result<Option<Record>> {
        let shared = self.shared.clone();
        let _files = shared.files_read();
        let (seg_first, name, path, end, seek) = {
            let st = shared.state();
            if let Some(from) = st.truncated_since(self.generation) {
                if from < self.next {
                    return Err(WalError::ReaderInvalidated { next: self.next, truncated_from: from });
                }
                self.cur = None;
                self.generation = st.generation;
            }
            if self.next < st.first_lsn {
                return Err(WalError::Purged { lsn: self.next, first: st.first_lsn });
            }
            if self.next > st.last_lsn {
                return Ok(None);
            }
            let Some((f, seg)) = st.segment_for(self.next) else {
                return Err(WalError::Purged { lsn: self.next, first: st.first_lsn });
            };
            let seek = match &self.cur {
                Some(c) if c.seg_first == f && c.pos_lsn == self.next => None,
                _ => Some(seg.seek(self.next).ok_or_else(|| WalError::CorruptRecord {
                    segment: seg.name.clone(),
                    offset: 0,
                    reason: format!("sparse index has no entry at or before LSN {}", self.next),
                })?),
            };
            (f, seg.name.clone(), seg.path.clone(), seg.end, seek)
        };
        if let Some((lsn, off)) = seek {
            let reuse = self.cur.take().filter(|c| c.seg_first == seg_first);
            let (file, buf, buf_off) = match reuse {
                Some(c) => (c.file, c.buf, c.buf_off),
                None => (File::open(&path).map_err(|e| WalError::io("opening segment", &path, e))?, Vec::new(), 0),
            };
            self.cur = Some(Cursor { seg_first, name, file, pos: off, pos_lsn: lsn, buf, buf_off });
        }
        let buffer_bytes = shared.opts.read_buffer_bytes;
        let Some(cur) = self.cur.as_mut() else {
            return Ok(None);
        };
        loop {
            let (rec, total) = cur.decode_at(end, buffer_bytes, &path)?;
            if rec.lsn != cur.pos_lsn {
                return Err(WalError::CorruptRecord {
                    segment: cur.name.clone(),
                    offset: cur.pos,
                    reason: format!("record has LSN {} where {} was expected", rec.lsn, cur.pos_lsn),
                });
            }
            cur.pos += total as u64;
            cur.pos_lsn += 1;
            if rec.lsn == self.next {
                self.next += 1;
                return Ok(Some(rec));
            }
        }
    }

    /// The next record, waiting until it is durable. Fails with [`WalError::Closed`] when
    /// the WAL is closed while waiting.
    pub async fn next(&mut self) -> Result<Record> {
        loop {
            if let Some(r) = self.try_next()? {
                return Ok(r);
            }
            let want = self.next;
            let shared = self.shared.clone();
            self.durable.wait_for(|&d| d >= want || shared.is_closed()).await.map_err(|_| WalError::Closed)?;
            if self.shared.is_closed() && self.shared.state().last_lsn < want {
                return Err(WalError::Closed);
            }
        }
    }
}

impl Cursor {
    /// Decodes the record at `pos`, refilling the buffer from the file (never past `end`).
    fn decode_at(&mut self, end: u64, buffer_bytes: usize, path: &std::path::Path) -> Result<(Record, usize)> {
        let mut need = record::RECORD_HEADER_BYTES;
        loop {
            let have_from = self.pos.checked_sub(self.buf_off).map(|d| d as usize).filter(|&d| d <= self.buf.len());
            if let Some(start) = have_from {
                let avail = &self.buf[start..];
                if avail.len() >= need || (self.buf_off + self.buf.len() as u64) >= end {
                    match record::decode(avail) {
                        Decode::Record(r) => {
                            let total = r.total;
                            let rec = r.to_record().map_err(|reason| self.corrupt(reason))?;
                            return Ok((rec, total));
                        }
                        Decode::Incomplete { need: n } if n > avail.len() && self.pos + (n as u64) <= end => need = n,
                        Decode::Incomplete { .. } => {
                            return Err(self.corrupt("record runs past the durable end".into()))
                        }
                        Decode::Zeros => return Err(self.corrupt("zero length field inside durable data".into())),
                        Decode::Corrupt(reason) => return Err(self.corrupt(reason)),
                    }
                }
            }
            // Refill from `pos`.
            let want = (end.saturating_sub(self.pos)).min(buffer_bytes.max(need) as u64) as usize;
            if want == 0 {
                return Err(self.corrupt("read past the durable end".into()));
            }
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, self.pos).map_err(|e| WalError::io("reading segment", path, e))?;
            self.buf_off = self.pos;
        }
    }

    fn corrupt(&self, reason: String) -> WalError {
        WalError::CorruptRecord { segment: self.name.clone(), offset: self.pos, reason }
    }
}
