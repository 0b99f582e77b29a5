//! [`WalError`]: what went wrong, where, and what the operator or caller should do next.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Lsn, Term};

/// Every failure the WAL can report. Each message names the file/offset/LSN involved and
/// ends with the action to take. The enum is `Clone` so one I/O failure in a group-commit
/// batch can be delivered to every caller of that batch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WalError {
    /// An operating-system call failed.
    #[error("I/O error while {op} {path}: {source}; check free space, permissions and the device, then retry or reopen the WAL")]
    Io {
        /// What the WAL was doing ("writing", "fsyncing", ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Arc<io::Error>,
    },

    /// A sealed segment (or acknowledged data) failed validation.
    #[error("bad data in sealed segment {segment} at offset {offset}: {reason}; run `shoal wal verify --dir <data dir>` for the full damage report, then move the WAL directory aside and re-sync this node from the leader (snapshot + log)")]
    CorruptSegment {
        /// Segment file name.
        segment: String,
        /// Byte offset of the first bad record inside the file.
        offset: u64,
        /// What exactly failed (checksum, length, LSN order, ...).
        reason: String,
    },

    /// The tail segment is damaged over more bytes than one write batch can tear,
    /// so the damage cannot be an interrupted write and may hit acknowledged records.
    #[error("bad data in tail segment {segment} at offset {offset} with {damaged_bytes} bytes after it (more than one write batch, {window_bytes} bytes, can tear): {reason}; this is not a torn write, run `shoal wal verify --dir <data dir>` and re-sync this node from the leader")]
    CorruptTail {
        /// Segment file name.
        segment: String,
        /// Offset of the first bad record.
        offset: u64,
        /// Bytes from `offset` to the end of the file.
        damaged_bytes: u64,
        /// The largest region a single interrupted batch could damage.
        window_bytes: u64,
        /// What failed.
        reason: String,
    },

    /// A segment header is unreadable or does not match its file name.
    #[error("bad header in segment {segment}: {reason}; run `shoal wal verify --dir <data dir>`; if the file is foreign, move it out of the WAL directory")]
    BadHeader {
        /// Segment file name.
        segment: String,
        /// What failed.
        reason: String,
    },

    /// Segments do not form one dense LSN sequence.
    #[error("segments are not contiguous: {detail}; a segment file is missing, renamed or out of order; restore it from a backup or re-sync this node from the leader")]
    SegmentGap {
        /// Which segments and LSNs disagree.
        detail: String,
    },

    /// Segment files exist but the metadata database is gone.
    #[error("WAL directory {dir} has segment files but no metadata (meta.redb); the vote and commit point are lost, so this node must not rejoin with this log; move the directory aside and re-sync from the leader")]
    MetaMissing {
        /// The WAL directory.
        dir: PathBuf,
    },

    /// The metadata says more is committed than the log holds.
    #[error("metadata commit point {commit} is ahead of the last LSN in the log {last_lsn}: acknowledged records are missing (lost segment or disabled fsync); re-sync this node from the leader")]
    MetaAheadOfLog {
        /// Commit point from metadata.
        commit: Lsn,
        /// Last LSN found in the segments.
        last_lsn: Lsn,
    },

    /// The metadata database failed.
    #[error(
        "metadata database error while {op}: {detail}; check meta.redb in the WAL directory (disk full? permissions?)"
    )]
    Meta {
        /// What the WAL was doing.
        op: &'static str,
        /// The redb error text.
        detail: String,
    },

    /// Written by a newer or unknown format.
    #[error("{what} has format version {found}, this build supports {supported}; run a matching shoal version")]
    UnsupportedVersion {
        /// Which file.
        what: String,
        /// Version found on disk.
        found: u32,
        /// Version this build writes.
        supported: u32,
    },

    /// `append_at` was given a first LSN that is not the next one.
    #[error(
        "append expected to start at LSN {expected} but the log's next LSN is {next}; re-read the log state and retry"
    )]
    LsnMismatch {
        /// What the caller asked for.
        expected: Lsn,
        /// What the log would assign.
        next: Lsn,
    },

    /// A record's term is lower than the term of the record before it.
    #[error("term {term} of record at LSN {lsn} is lower than the previous term {last_term}; terms never decrease (bug in the caller)")]
    TermRegression {
        /// LSN the record would get.
        lsn: Lsn,
        /// Its term.
        term: Term,
        /// The term of the previous record.
        last_term: Term,
    },

    /// A record payload is larger than `record_bytes_max`.
    #[error("record payload of {bytes} bytes exceeds record_bytes_max {max}; split the payload or raise the limit")]
    RecordTooLarge {
        /// Payload size.
        bytes: u64,
        /// The limit.
        max: u64,
    },

    /// The requested LSN was purged.
    #[error("LSN {lsn} was purged, the log starts at {first}; read from a snapshot instead")]
    Purged {
        /// Requested LSN.
        lsn: Lsn,
        /// First LSN still readable.
        first: Lsn,
    },

    /// The requested LSN is past the end of the log.
    #[error("LSN {lsn} is past the end of the log (last durable LSN {last}); wait for it to be appended")]
    BeyondEnd {
        /// Requested LSN.
        lsn: Lsn,
        /// Last durable LSN.
        last: Lsn,
    },

    /// A truncation would drop committed records.
    #[error("cannot truncate from LSN {lsn}: records up to {commit} are committed and may never be dropped (bug in the caller)")]
    TruncateCommitted {
        /// Requested truncation point.
        lsn: Lsn,
        /// Commit point.
        commit: Lsn,
    },

    /// The commit point may not move backwards or beyond the log.
    #[error("cannot set commit point to {lsn}: {reason}")]
    BadCommit {
        /// Requested commit point.
        lsn: Lsn,
        /// Why not.
        reason: String,
    },

    /// `purge_through` was given a term that does not match the record in the log.
    #[error("purge through LSN {lsn} with term {given}, but the log has term {found} there; pass the log id that is actually in the log")]
    TermMismatch {
        /// LSN of the purge point.
        lsn: Lsn,
        /// Term the caller passed.
        given: Term,
        /// Term in the log.
        found: Term,
    },

    /// A reader's position was removed by `truncate_from`.
    #[error("reader at LSN {next} already returned records from LSN {truncated_from} that were truncated; restart reading from the new log")]
    ReaderInvalidated {
        /// The reader's next LSN.
        next: Lsn,
        /// Where the log was truncated.
        truncated_from: Lsn,
    },

    /// A read found bad data.
    #[error("bad record in segment {segment} at offset {offset}: {reason}; run `shoal wal verify --dir <data dir>`")]
    CorruptRecord {
        /// Segment file name.
        segment: String,
        /// Byte offset in the file.
        offset: u64,
        /// What failed.
        reason: String,
    },

    /// A previous write or fsync failed; the state of the tail on disk is unknown.
    #[error("the WAL writer stopped after an earlier failure ({reason}); close and reopen the WAL so recovery can re-establish the tail")]
    Poisoned {
        /// The first failure.
        reason: String,
    },

    /// The WAL was closed.
    #[error("the WAL is closed; reopen it")]
    Closed,

    /// Options are inconsistent.
    #[error("invalid WAL options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },

    /// `shoal wal verify` found problems.
    #[error("verify found {problems} problem(s) in {dir}; see the report above")]
    VerifyFailed {
        /// How many.
        problems: usize,
        /// The WAL directory.
        dir: PathBuf,
    },
}

impl WalError {
    /// Wraps an `io::Error` with the operation and path.
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        WalError::Io { op, path: path.to_path_buf(), source: Arc::new(source) }
    }

    /// Wraps a redb error.
    pub(crate) fn meta(op: &'static str, e: impl std::fmt::Display) -> Self {
        WalError::Meta { op, detail: e.to_string() }
    }
}

/// Result alias for the WAL.
pub type Result<T, E = WalError> = std::result::Result<T, E>;
