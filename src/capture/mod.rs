//! Leader side of replication: client write transactions run as XA transactions on the
//! local MariaDB, their row images are read back from its binlog once prepared, made
//! durable, and only then committed (`../docs/replication.md`).
//!
//! | file | owns | I/O |
//! |---|---|---|
//! | `entry.rs` | the log entry format | none (codec) |
//! | `coordinator.rs` | xids, waiting sessions, proposals in binlog order | none (channels) |
//! | `raft.rs` | durability = committed by the Raft log, submitted in order | via `cluster` |
//! | `setup.rs` | requirements, the marker table, recovery of prepared xids | the leader's MariaDB |
//! | `binlog.rs` | event decoding and the grouping state machine (pure) | none |
//! | `tail.rs` | COM_BINLOG_DUMP on a dedicated connection, events grouped into [`Captured`] | the leader's MariaDB |
//!
//! The tail reports every event group of the binlog, in binlog order, as one
//! [`Captured`]; the coordinator (`Capture`) turns them into proposals.

pub mod binlog;
pub mod coordinator;
pub mod entry;
pub mod raft;
pub mod setup;
pub mod tail;

pub use coordinator::{Capture, CaptureError, Durable, LocalWal, NotDurable, Proposal, Waiter};

pub use entry::{Entry, EntryError, Origin, RowsEntry, StatementEntry};

/// Prefix of every XA xid shoal starts (`shoal-<node>-<epoch>-<seq>`): how the tail tells
/// shoal's transactions from others'.
pub const XID_PREFIX: &str = "shoal-";

/// Prefix comment shoal puts before a DDL statement it runs on the leader after
/// proposing it (`/*shoal:<id>*/ ALTER TABLE …`): the tail recognises the statement in the
/// binlog and does not propose it a second time.
pub const STATEMENT_MARK: &str = "/*shoal:";

/// One event group of the leader's binlog, as the tail found it, in binlog order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Captured {
    /// The prepared part of an XA transaction whose xid starts with [`XID_PREFIX`]:
    /// its Table_map and row events (Gtid, Annotate_rows, SAVEPOINT, XA END and
    /// XA_prepare stripped).
    Prepared {
        /// The group's GTID (`domain-server-seq`).
        gtid: String,
        /// The XA xid's gtrid, as shoal wrote it.
        xid: String,
        /// Format description and row statements; `origin` is `Captured { xid }`.
        rows: RowsEntry,
    },
    /// A transaction with row events that committed without shoal (a plain transaction,
    /// or XA not started by shoal): replicated after the fact.
    Unmanaged {
        /// The group's GTID.
        gtid: String,
        /// Format description and row statements; `origin` is `Unmanaged { gtid }`.
        rows: RowsEntry,
    },
    /// A statement-only group (DDL).
    Statement {
        /// The group's GTID.
        gtid: String,
        /// The id after [`STATEMENT_MARK`] when shoal ran it (already proposed).
        id: Option<String>,
        /// Server thread id of the session that ran it (how shoal knows its own
        /// statements when MariaDB logs a rewritten text: `CREATE DEFINER=… TRIGGER`,
        /// `CREATE TABLE … SELECT`).
        thread_id: u32,
        /// Default schema of the Query event.
        schema: Option<String>,
        /// The statement text as logged.
        sql: String,
        /// Rows the statement inserted, logged with it (`CREATE TABLE … SELECT`).
        rows: Option<RowsEntry>,
    },
    /// A group that carries nothing to replicate (XA COMMIT / XA ROLLBACK of a prepared
    /// transaction, an empty transaction): reported so positions advance.
    Skipped {
        /// The group's GTID.
        gtid: String,
    },
}

impl Captured {
    /// The group's GTID.
    pub fn gtid(&self) -> &str {
        match self {
            Captured::Prepared { gtid, .. }
            | Captured::Unmanaged { gtid, .. }
            | Captured::Statement { gtid, .. }
            | Captured::Skipped { gtid } => gtid,
        }
    }
}
