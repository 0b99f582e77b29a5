//! [`ApplyError`]: why applying stopped, whether retrying is safe, and what to do.

use crate::wal::{Lsn, WalError};

/// MariaDB error codes that say "try again" rather than "this entry is wrong": the
/// statement or transaction was rolled back for a reason that has nothing to do with the
/// entry (lock wait timeout, deadlock, shutdown, killed connection, query interrupted,
/// too many connections).
pub const TRANSIENT_CODES: [u16; 7] = [1205, 1213, 1053, 1927, 1317, 1040, 2013];

/// Why applying stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The connection to the local MariaDB failed or broke, or MariaDB rolled back for a
    /// transient reason (lock wait, deadlock, shutdown). Safe to retry: apply is
    /// exactly-once, so the caller reconnects and applies the same batch again.
    #[error("the local MariaDB at {addr} failed during {during}: {reason}; applying resumes once it answers again (exactly-once, nothing is applied twice)")]
    Connection {
        /// host:port.
        addr: String,
        /// What the applier was doing.
        during: &'static str,
        /// The driver's or server's message.
        reason: String,
    },
    /// A committed entry failed to apply. Fatal for the node: skipping it would make this
    /// node's data differ from every other node's.
    #[error("log entry at LSN {lsn} ({what}) failed on the local MariaDB with error {code}: {message}. Nothing of it was applied and this node stops applying (an entry is never skipped): this node's data differs from the leader's, or a table or privilege is missing here; fix that, or re-seed the node with `shoal migrate`")]
    Entry {
        /// LSN of the failing entry.
        lsn: Lsn,
        /// The entry, for the operator (`rows of xid shoal-…`, `statement …`).
        what: String,
        /// MariaDB error code (0 when shoal itself refused the entry).
        code: u16,
        /// MariaDB's message.
        message: String,
    },
    /// Setting up the applier session or `shoal_meta` failed for a reason a retry does not
    /// fix (missing privilege, server too old).
    #[error("preparing the applier on the local MariaDB at {addr} failed at `{step}` with error {code}: {message}; grant the applier account what docs/replication.md lists")]
    Setup {
        /// host:port.
        addr: String,
        /// The statement that failed.
        step: String,
        /// MariaDB error code.
        code: u16,
        /// MariaDB's message.
        message: String,
    },
    /// The batch is not in strictly increasing LSN order: a bug in the caller.
    #[error("apply batch out of order: LSN {lsn} after {after} (entries must come in strictly increasing LSN order)")]
    OutOfOrder {
        /// The offending LSN.
        lsn: Lsn,
        /// The LSN before it.
        after: Lsn,
    },
    /// A WAL record does not hold an entry this shoal can read.
    #[error("WAL record at LSN {lsn} is not a readable log entry: {reason}")]
    Decode {
        /// LSN of the record.
        lsn: Lsn,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading the WAL failed.
    #[error("reading committed entries from the WAL: {0}")]
    Wal(#[from] WalError),
}

impl ApplyError {
    /// Whether applying the same batch again (after reconnecting) is safe and may succeed.
    pub fn retry_safe(&self) -> bool {
        matches!(self, ApplyError::Connection { .. })
    }
}

/// A mysql_async error, sorted: `Ok((code, message))` for a server error about the
/// statement, `Err(reason)` for a broken connection or a transient rollback.
pub(crate) fn classify(e: &mysql_async::Error) -> Result<(u16, String), String> {
    match e {
        mysql_async::Error::Server(s) if !TRANSIENT_CODES.contains(&s.code) => Ok((s.code, s.message.clone())),
        other => Err(other.to_string()),
    }
}
