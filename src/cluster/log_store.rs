//! [`WalLogStore`]: openraft's log storage over shoal's WAL.
//!
//! # How Raft's log maps onto the WAL
//!
//! openraft writes the cluster's first entry (the initial membership) at index 0, and the
//! WAL's LSN 0 means "none", so a record's LSN is its Raft index plus one
//! ([`lsn_of`]/[`index_of`]); everything outside this file speaks Raft indexes. The term
//! of a log id is the record's term (with `single-term-leader` a log id is (term, index)).
//!
//! | openraft | WAL | notes |
//! |---|---|---|
//! | `append(entries, cb)` | `append_at(lsn_of(first), records)`, awaited | returns when durable, so entries are readable on return and the callback runs after `fdatasync` |
//! | `truncate(id)` | `truncate_from(lsn_of(id.index))` | removes `id` and everything after it |
//! | `purge(id)` | `purge_through(lsn_of(id.index), id.term)` | past the end (snapshot install) empties the log |
//! | `save_vote` | `Wal::save_vote` (redb, one durable commit) | no append is in flight: appends finish before returning, and openraft serializes storage calls |
//! | `save_committed` | `Wal::save_commit`, at most every [`COMMIT_SAVE_ENTRIES`] entries or [`COMMIT_SAVE_INTERVAL`] | a stale value only means more re-apply at startup |
//! | `limited_get_log_entries` | one reader, stops after [`READ_BYTES_MAX`] of payload | never empty when the first entry exists |
//!
//! The WAL's own age/size retention must stay off in cluster mode: only Raft purges.
//!
//! # Record payloads
//!
//! | `kind` | entry | payload |
//! |---|---|---|
//! | [`KIND_BLANK`] (0) | blank (a new leader's first entry) | empty |
//! | [`KIND_NORMAL`] (1) | a [`Command`] | the command bytes as they are |
//! | [`KIND_MEMBERSHIP`] (2) | a membership change | JSON of `Membership<u64, BasicNode>` |
//!
//! Two cases openraft itself never produces but its conformance suite does: a brand-new
//! log whose first append is above index 0 is rebased there (`rebase_brand_new`), and
//! appended entries at or below the purge point are skipped (the snapshot holds them).
//!
//! Waiting for durability before `append` returns costs pipelining between the append and
//! the next one; a readable in-memory tail would lift that (later, with a benchmark).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::time::{Duration, Instant};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, CommittedLeaderId, EntryPayload, ErrorSubject, ErrorVerb, LogId as RaftLogId, OptionalSend,
    RaftLogReader, StorageIOError, Vote,
};

use super::types::{Command, Entry, LogId, NodeId, StorageError, TypeConfig};
use crate::wal::{Lsn, NewRecord, Record, Wal, WalError};

/// Record kind of a blank entry.
pub const KIND_BLANK: u8 = 0;
/// Record kind of a normal entry (a [`Command`]).
pub const KIND_NORMAL: u8 = 1;
/// Record kind of a membership entry.
pub const KIND_MEMBERSHIP: u8 = 2;

/// Most payload bytes one `limited_get_log_entries` call (one AppendEntries) returns;
/// at least one entry is always returned.
pub const READ_BYTES_MAX: usize = 4 * 1024 * 1024;
/// `save_committed` writes through after this many newly committed entries...
pub const COMMIT_SAVE_ENTRIES: u64 = 1024;
/// ... or when the last write-through is older than this.
pub const COMMIT_SAVE_INTERVAL: Duration = Duration::from_millis(200);

/// The WAL LSN of Raft index `index`.
pub const fn lsn_of(index: u64) -> Lsn {
    index + 1
}

/// The Raft index of WAL LSN `lsn` (`lsn >= 1`).
pub const fn index_of(lsn: Lsn) -> u64 {
    lsn.saturating_sub(1)
}

/// A log id from a WAL (lsn, term) pair.
pub fn log_id(lsn: Lsn, term: u64) -> LogId {
    RaftLogId::new(CommittedLeaderId::new(term, NodeId::default()), index_of(lsn))
}

/// Encodes an entry as a WAL record (table in the module doc). Pure.
pub fn encode_entry(entry: &Entry) -> Result<NewRecord, String> {
    let term = entry.log_id.leader_id.term;
    match &entry.payload {
        EntryPayload::Blank => Ok(NewRecord::new(term, KIND_BLANK, Vec::new())),
        EntryPayload::Normal(cmd) => Ok(NewRecord::new(term, KIND_NORMAL, cmd.0.clone())),
        EntryPayload::Membership(m) => serde_json::to_vec(m)
            .map(|json| NewRecord::new(term, KIND_MEMBERSHIP, json))
            .map_err(|e| format!("encoding membership entry {}: {e}", entry.log_id)),
    }
}

/// Decodes a WAL record into the entry it stores (table in the module doc). Pure.
pub fn decode_entry(rec: &Record) -> Result<Entry, String> {
    let log_id = log_id(rec.lsn, rec.term);
    let payload = match rec.kind {
        KIND_BLANK => EntryPayload::Blank,
        KIND_NORMAL => EntryPayload::Normal(Command(rec.payload.to_vec())),
        KIND_MEMBERSHIP => EntryPayload::Membership(serde_json::from_slice(&rec.payload).map_err(|e| {
            format!("WAL record at LSN {} holds a membership entry that does not decode: {e}", rec.lsn)
        })?),
        k => return Err(format!("WAL record at LSN {} has kind {k}, which is not a Raft entry (0, 1 or 2)", rec.lsn)),
    };
    Ok(Entry { log_id, payload })
}

/// The half-open index range `[start, end)` of `range`, clamped to `[first, last_end)`.
/// Pure.
pub fn clamp_range(range: &impl RangeBounds<u64>, first: u64, last_end: u64) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    let start = start.max(first);
    (start, end.min(last_end).max(start))
}

/// Whether `save_committed` writes through now: the first time, after
/// [`COMMIT_SAVE_ENTRIES`] entries, or after [`COMMIT_SAVE_INTERVAL`]. Pure.
///
/// | saved before | new − saved | since saved | write? |
/// |---|---|---|---|
/// | never | any | any | yes |
/// | yes | 0 | any | no |
/// | yes | ≥ COMMIT_SAVE_ENTRIES | any | yes |
/// | yes | 1..COMMIT_SAVE_ENTRIES | ≥ COMMIT_SAVE_INTERVAL | yes |
/// | yes | 1..COMMIT_SAVE_ENTRIES | < COMMIT_SAVE_INTERVAL | no |
pub fn commit_write_through(saved: Option<u64>, new: u64, since_saved: Duration) -> bool {
    match saved {
        None => true,
        Some(s) if new <= s => false,
        Some(s) => new - s >= COMMIT_SAVE_ENTRIES || since_saved >= COMMIT_SAVE_INTERVAL,
    }
}

fn io_err(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    StorageIOError::new(subject, verb, AnyError::error(e.to_string())).into()
}

fn wal_err(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: WalError) -> StorageError {
    io_err(subject, verb, format!("WAL: {e}"))
}

/// Runs blocking WAL work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Read, format!("WAL task failed: {e}")))?
}

/// openraft's log storage (and log reader) over a [`Wal`]. Cheap to clone: every clone
/// shares the WAL; a clone is the reader replication streams use.
#[derive(Clone)]
pub struct WalLogStore {
    /// The log; its `meta.redb` holds the vote and the commit point.
    wal: Wal,
    /// The latest committed log id openraft gave us (may be ahead of the durable one).
    committed: Option<LogId>,
    /// Index last written through to the WAL's commit point, and when.
    committed_saved: Option<(u64, Instant)>,
}

impl WalLogStore {
    /// A store over `wal`. Open the WAL with age/size retention off: only Raft purges.
    pub fn new(wal: Wal) -> Self {
        WalLogStore { wal, committed: None, committed_saved: None }
    }

    /// The WAL underneath.
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// Index range `[first, end)` currently readable.
    fn readable(&self) -> (u64, u64) {
        let st = self.wal.log_state();
        let first = index_of(st.first_lsn);
        // The last LSN, an inclusive bound, is the exclusive bound in Raft indexes.
        let end = st.last.map_or(first, |(lsn, _)| lsn);
        (first, end.max(first))
    }

    /// Reads `[start, end)` (Raft indexes), stopping after `bytes_max` of payload (but
    /// never before the first entry).
    async fn read(&self, start: u64, end: u64, bytes_max: usize) -> Result<Vec<Entry>, StorageError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let wal = self.wal.clone();
        blocking(move || {
            let subject = ErrorSubject::Logs;
            let mut reader = wal.reader(lsn_of(start)).map_err(|e| wal_err(subject.clone(), ErrorVerb::Read, e))?;
            let mut out = Vec::new();
            let mut bytes = 0usize;
            while reader.next_lsn() < lsn_of(end) && (out.is_empty() || bytes < bytes_max) {
                let rec = match reader.try_next() {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(e) => return Err(wal_err(subject, ErrorVerb::Read, e)),
                };
                if !out.is_empty() && bytes + rec.payload.len() > bytes_max {
                    break;
                }
                bytes += rec.payload.len();
                out.push(decode_entry(&rec).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?);
            }
            Ok(out)
        })
        .await
    }
}

impl WalLogStore {
    /// A brand-new log (nothing ever appended or purged) whose first append is at index
    /// `k > 0` starts at `k`: the WAL is moved there by purging through `k - 1` with the
    /// first entry's term, so that id reads as purged. openraft itself always starts a log
    /// at index 0 (`initialize`) or installs a snapshot first; its conformance suite
    /// appends to empty stores at other indexes, which a dense WAL could not take.
    async fn rebase_brand_new(&self, first: LogId) -> Result<(), StorageError> {
        let st = self.wal.log_state();
        if first.index == 0 || st.last.is_some() || st.last_purged.is_some() {
            return Ok(());
        }
        tracing::warn!(index = first.index, "a brand-new Raft log starts above index 0; rebasing the empty WAL there");
        self.wal
            .purge_through(lsn_of(first.index - 1), first.leader_id.term)
            .await
            .map_err(|e| wal_err(ErrorSubject::Log(first), ErrorVerb::Write, e))
    }
}

impl RaftLogReader<TypeConfig> for WalLogStore {
    /// Every entry of `range` that is in the log (purged and future ones are left out).
    /// Not capped in bytes: openraft asks for exact ranges here (apply, membership).
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (first, end) = self.readable();
        let (start, end) = clamp_range(&range, first, end);
        self.read(start, end, usize::MAX).await
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        let (first, last_end) = self.readable();
        let (start, end) = clamp_range(&(start..end), first, last_end);
        self.read(start, end, READ_BYTES_MAX).await
    }
}

impl RaftLogStorage<TypeConfig> for WalLogStore {
    type LogReader = WalLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let st = self.wal.log_state();
        let last_purged_log_id = st.last_purged.map(|(lsn, term)| log_id(lsn, term));
        let last_log_id = st.last.map(|(lsn, term)| log_id(lsn, term)).max(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(vote)
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, format!("encoding: {e}")))?;
        let term = vote.leader_id.term;
        let wal = self.wal.clone();
        blocking(move || wal.save_vote(term, &bytes).map_err(|e| wal_err(ErrorSubject::Vote, ErrorVerb::Write, e)))
            .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        match self.wal.meta().vote {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                io_err(
                    ErrorSubject::Vote,
                    ErrorVerb::Read,
                    format!("the vote in meta.redb does not decode ({e}); the node cannot safely vote: restore the WAL directory or rejoin through migration"),
                )
            }),
        }
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let Some(c) = committed else { return Ok(()) };
        self.committed = Some(c);
        let since = self.committed_saved.map_or(Duration::MAX, |(_, at)| at.elapsed());
        if !commit_write_through(self.committed_saved.map(|(i, _)| i), c.index, since) {
            return Ok(());
        }
        let wal = self.wal.clone();
        blocking(move || {
            // The commit point may not pass the end of the log (it cannot here: openraft
            // commits only what this node holds) nor move back (a restart may re-save less).
            let durable = wal.meta().commit;
            if lsn_of(c.index) > durable {
                wal.save_commit(lsn_of(c.index)).map_err(|e| wal_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
            }
            Ok(())
        })
        .await?;
        self.committed_saved = Some((c.index, Instant::now()));
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        if self.committed.is_some() {
            return Ok(self.committed);
        }
        let commit = self.wal.meta().commit;
        if commit == 0 {
            return Ok(None);
        }
        let st = self.wal.log_state();
        // A purged commit point is covered by the purge point, which is committed too.
        if let Some((lsn, term)) = st.last_purged.filter(|&(lsn, _)| lsn >= commit) {
            return Ok(Some(log_id(lsn, term)));
        }
        let entries = self.read(index_of(commit), index_of(commit) + 1, usize::MAX).await?;
        Ok(entries.first().map(|e| e.log_id))
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Entries at or below the purge point are in the snapshot already (committed, so
        // identical to what was purged): skipped. openraft does not send them; its
        // conformance suite does.
        let purged = self.wal.log_state().last_purged.map(|(lsn, _)| index_of(lsn));
        let mut first = None;
        let mut records = Vec::new();
        for e in entries.into_iter().filter(|e| purged.is_none_or(|p| e.log_id.index > p)) {
            first.get_or_insert(e.log_id);
            records.push(encode_entry(&e).map_err(|m| io_err(ErrorSubject::Log(e.log_id), ErrorVerb::Write, m))?);
        }
        let Some(first) = first else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        self.rebase_brand_new(first).await?;
        let started = Instant::now();
        let appended = self.wal.append_at(lsn_of(first.index), records).await;
        metrics::histogram!(crate::metrics::CLUSTER_APPEND_DURATION).record(started.elapsed().as_secs_f64());
        match appended {
            Ok(_) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let msg = format!("WAL append from index {}: {e}", first.index);
                callback.log_io_completed(Err(std::io::Error::other(msg.clone())));
                Err(io_err(ErrorSubject::Log(first), ErrorVerb::Write, msg))
            }
        }
    }

    async fn truncate(&mut self, id: LogId) -> Result<(), StorageError> {
        self.wal.truncate_from(lsn_of(id.index)).await.map_err(|e| wal_err(ErrorSubject::Log(id), ErrorVerb::Delete, e))
    }

    async fn purge(&mut self, id: LogId) -> Result<(), StorageError> {
        self.wal
            .purge_through(lsn_of(id.index), id.leader_id.term)
            .await
            .map_err(|e| wal_err(ErrorSubject::Log(id), ErrorVerb::Delete, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_is_index_plus_one() {
        assert_eq!(lsn_of(0), 1);
        assert_eq!(index_of(1), 0);
        assert_eq!(index_of(lsn_of(41)), 41);
    }

    #[test]
    fn clamp_range_rows() {
        assert_eq!(clamp_range(&(0..100), 1, 11), (1, 11));
        assert_eq!(clamp_range(&(5..7), 0, 11), (5, 7));
        assert_eq!(clamp_range(&(3..3), 0, 11), (3, 3));
        assert_eq!(clamp_range(&(..), 6, 11), (6, 11));
        assert_eq!(clamp_range(&(2..=4), 0, 11), (2, 5));
        assert_eq!(clamp_range(&(20..30), 0, 11), (20, 20));
    }

    /// Every row of `commit_write_through`'s table.
    #[test]
    fn commit_write_through_rows() {
        let short = Duration::from_millis(1);
        assert!(commit_write_through(None, 5, short));
        assert!(!commit_write_through(Some(5), 5, Duration::MAX));
        assert!(commit_write_through(Some(5), 5 + COMMIT_SAVE_ENTRIES, short));
        assert!(commit_write_through(Some(5), 6, COMMIT_SAVE_INTERVAL));
        assert!(!commit_write_through(Some(5), 6, short));
    }

    #[test]
    fn entries_round_trip_through_records() {
        use openraft::{BasicNode, Membership};
        use std::collections::{BTreeMap, BTreeSet};
        let id = log_id(lsn_of(7), 3);
        let nodes: BTreeMap<NodeId, BasicNode> = [(1, BasicNode::new("127.0.0.1:7654"))].into();
        let members = Membership::new(vec![BTreeSet::from([1])], nodes);
        for payload in
            [EntryPayload::Blank, EntryPayload::Normal(Command(b"x".to_vec())), EntryPayload::Membership(members)]
        {
            let e = Entry { log_id: id, payload };
            let r = encode_entry(&e).unwrap();
            let rec = Record { lsn: lsn_of(7), term: r.term, kind: r.kind, payload: r.payload };
            assert_eq!(decode_entry(&rec).unwrap(), e);
        }
        let bad = Record { lsn: 1, term: 1, kind: 9, payload: Default::default() };
        assert!(decode_entry(&bad).unwrap_err().contains("kind 9"));
    }
}
