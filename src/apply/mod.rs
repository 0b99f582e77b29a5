//! Follower side of replication: committed log entries applied to the local MariaDB in
//! log order, exactly once (`../docs/replication.md`).
//!
//! | file | owns | I/O |
//! |---|---|---|
//! | `plan.rs` | which entries to skip, how they group into transactions, the SQL text | none |
//! | `applier.rs` | [`Applier`]: the session on the local MariaDB | MariaDB |
//! | `follow.rs` | drivers: [`catch_up`] from a [`crate::wal::Wal`], [`follow`] from a channel | WAL reads |
//! | `raft.rs` | [`RaftApplier`]: the cluster's state machine applier over [`Applier`] | via `applier.rs` |
//! | `error.rs` | [`ApplyError`] | none |
//!
//! # How one batch is applied
//!
//! ```text
//! batch (LSN order) ──plan──▶ entries ≤ applied LSN dropped
//!                     │
//!        ┌────────────┴─────────────┐
//!   Rows entries                 Statement entry (alone)
//!   (≤ TXN_ENTRIES_MAX,          USE schema; SET SESSION …; sql;
//!    ≤ TXN_BYTES_MAX, one FD)    SET SESSION … = DEFAULT;
//!        │                       upsert applied LSN (autocommit)
//!   [BINLOG '<FD>' once per session]
//!   START TRANSACTION
//!   SELECT xid FROM shoal_meta.txn WHERE xid IN (…)
//!   BINLOG '<rows of the entries whose marker is absent>' …
//!   upsert shoal_meta.applied (1, last LSN, term); COMMIT; SET TIMESTAMP = DEFAULT
//!        │ any error: ROLLBACK, then the same entries one transaction each:
//!        │ the good ones commit, the first refused one is a fatal ApplyError::Entry
//! ```
//!
//! Exactly once: the applied LSN commits with the rows, so after any crash the entries
//! above it are exactly the ones missing. A captured entry whose `shoal_meta.txn` marker
//! is already here (this node's MariaDB got it as the leader) is skipped but still
//! advances the applied LSN. The marker check is a locking read so that on the leader it
//! waits for a still-prepared XA transaction holding that marker instead of missing it.
//!
//! Statement entries are not atomic with their LSN row (DDL commits implicitly): a crash
//! between the two runs the statement again on restart, where it usually fails ("table
//! exists"); that failure is recorded like any statement error and applying goes on.

mod applier;
mod error;
mod follow;
pub mod plan;
mod raft;

pub use applier::Applier;
pub use error::{ApplyError, TRANSIENT_CODES};
pub use follow::{catch_up, follow, CONNECTION_RETRY_DELAY, CONNECTION_RETRY_FOR, READ_BYTES_MAX, READ_ENTRIES_MAX};
pub use plan::{Limits, BINLOG_RAW_BYTES_MAX, TXN_BYTES_MAX, TXN_ENTRIES_MAX};
pub use raft::{RaftApplier, Ticket};

use crate::capture::Entry;
use crate::wal::{Lsn, Record, Term};

/// WAL record kind of a log entry (defined where the leader writes it); it is the
/// cluster's normal-entry kind, so the coordinator proposes `Command(entry.encode())`
/// through openraft and one reader serves both.
pub use crate::capture::coordinator::ENTRY_RECORD_KIND;
/// `shoal_meta` as every node creates it (defined beside the leader's setup).
pub use crate::capture::setup::META_TABLES;

/// A committed log entry with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Its LSN (the WAL's; Raft index + 1).
    pub lsn: Lsn,
    /// Term it was proposed in (kept in `shoal_meta.applied` beside the LSN).
    pub term: Term,
    /// The change.
    pub entry: Entry,
}

impl Committed {
    /// The entry a WAL record holds; `None` for records that carry none (Raft blank and
    /// membership entries).
    pub fn from_record(rec: &Record) -> Result<Option<Committed>, ApplyError> {
        if rec.kind != ENTRY_RECORD_KIND {
            return Ok(None);
        }
        let entry =
            Entry::decode(&rec.payload).map_err(|e| ApplyError::Decode { lsn: rec.lsn, reason: e.to_string() })?;
        Ok(Some(Committed { lsn: rec.lsn, term: rec.term, entry }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::StatementEntry;

    #[test]
    fn entries_are_the_clusters_normal_records() {
        assert_eq!(ENTRY_RECORD_KIND, crate::cluster::log_store::KIND_NORMAL);
    }

    #[test]
    fn records_decode_to_entries_and_other_kinds_carry_none() {
        let entry =
            Entry::Statement(StatementEntry { id: "1".into(), schema: None, session: vec![], sql: "DO 1".into() });
        let rec = Record { lsn: 7, term: 2, kind: ENTRY_RECORD_KIND, payload: entry.encode().into() };
        assert_eq!(Committed::from_record(&rec).unwrap(), Some(Committed { lsn: 7, term: 2, entry }));
        let blank =
            Record { lsn: 8, term: 2, kind: crate::cluster::log_store::KIND_BLANK, payload: Default::default() };
        assert_eq!(Committed::from_record(&blank).unwrap(), None);
        let bad = Record { lsn: 9, term: 2, kind: ENTRY_RECORD_KIND, payload: vec![9, 9].into() };
        let err = Committed::from_record(&bad).unwrap_err();
        assert!(err.to_string().contains("LSN 9"), "{err}");
    }
}
