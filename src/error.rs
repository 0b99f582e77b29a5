//! Errors, classified where they are made, translated to MySQL error packets in one place
//! ([`ProxyError::mysql`]).
//!
//! | variant | source | retry safe? | session survives? |
//! |---|---|---|---|
//! | `ClientIo` | client | — | no (the client is gone) |
//! | `ClientProtocol` | client | no | no: answered with an ERR, then closed |
//! | `PacketTooLarge` | client | no | no (MariaDB closes too) |
//! | `BackendConnect` | backend | yes | yes: ERR to the client |
//! | `BackendIo` | backend | only if nothing was sent | yes: ERR, pinned state is lost |
//! | `OutcomeUnknown` | a write sent to a cluster leader's proxy that then went away | no (it may have committed) | yes: ERR 1180 "outcome unknown" |
//! | `BackendProtocol` | backend | no | yes: ERR, the connection is discarded |
//! | `PoolTimeout` | internal | yes | yes: ERR to the client |
//! | `Unavailable` | routing | yes, later | yes: ERR to the client |
//! | `TransactionLost` | a transaction open when its node stopped leading | yes: the whole transaction (rolled back) | yes: ERR 1213 / 40001 |
//! | `Limit` | internal | yes | yes: ERR to the client |

use std::io;

use crate::protocol::packet::TooLarge;

/// Everything that can go wrong while serving one client.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The client's socket failed or closed.
    #[error("client connection: {0}")]
    ClientIo(#[source] io::Error),
    /// The client sent something that is not the MySQL protocol.
    #[error("malformed packet from client: {0}")]
    ClientProtocol(String),
    /// The client sent a packet above `packet_bytes_max`.
    #[error("{0}")]
    PacketTooLarge(#[from] TooLarge),
    /// A backend could not be reached or refused the login.
    #[error("cannot connect to backend {addr}: {reason}")]
    BackendConnect {
        /// host:port of the backend.
        addr: String,
        /// What happened, including the server's own error text.
        reason: String,
        /// MySQL error code to pass on (1045 for a refused login).
        code: u16,
    },
    /// A backend connection failed mid-command.
    #[error("lost connection to backend {addr}: {source}")]
    BackendIo {
        /// host:port of the backend.
        addr: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A backend sent a response shoal could not frame.
    #[error("backend {addr} broke the protocol: {what}")]
    BackendProtocol {
        /// host:port of the backend.
        addr: String,
        /// What was wrong.
        what: String,
    },
    /// No backend connection became free in time.
    #[error("no backend connection to {addr} free within {waited_ms} ms (pool_connections_max = {max}); raise pool_connections_max or checkout_timeout_ms")]
    PoolTimeout {
        /// host:port of the backend.
        addr: String,
        /// How long the client waited.
        waited_ms: u64,
        /// The pool's size limit.
        max: u32,
    },
    /// The router found no server for the statement (e.g. the primary is down).
    #[error("{0}")]
    Unavailable(String),
    /// A transaction's COMMIT did not happen (not made durable; rolled back).
    #[error("{0}")]
    CommitFailed(String),
    /// The session's transaction was open on a node that stopped leading (or whose
    /// capture restarted): it was rolled back, nothing of it committed. Answered as a
    /// deadlock (1213, SQLSTATE 40001) — what Galera answers for its certification
    /// failures — so clients' transaction-retry logic applies.
    #[error("{0}")]
    TransactionLost(String),
    /// A write forwarded to the cluster leader's proxy lost its connection after it was
    /// sent: the leader may or may not have committed it. Never retried by shoal.
    #[error("{0}")]
    OutcomeUnknown(String),
    /// A write on a node that does not take writes (a cluster follower).
    #[error("{0}")]
    ReadOnlyNode(String),
    /// A statement shoal does not offer in this mode; the message says what to use.
    #[error("{0}")]
    NotSupported(String),
    /// A named limit was reached.
    #[error("{what} limit reached ({limit}); {hint}")]
    Limit {
        /// Which limit.
        what: &'static str,
        /// Its value.
        limit: u64,
        /// What to do about it.
        hint: &'static str,
        /// MySQL error code to send.
        code: u16,
    },
}

/// A MySQL error as sent to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlError {
    /// Error number (`1045`, …).
    pub code: u16,
    /// SQLSTATE, five characters.
    pub state: &'static str,
    /// Human-readable text.
    pub message: String,
}

/// `ER_UNKNOWN_ERROR`: shoal's own failures use it with a message naming the cause.
pub const ER_UNKNOWN_ERROR: u16 = 1105;
/// `ER_ERROR_DURING_COMMIT`: a captured transaction was not made durable and was rolled back.
pub const ER_ERROR_DURING_COMMIT: u16 = 1180;
/// `ER_OPTION_PREVENTS_STATEMENT` (what MariaDB answers a write under `read_only`).
pub const ER_OPTION_PREVENTS_STATEMENT: u16 = 1290;
/// `ER_LOCK_DEADLOCK`: "try restarting the transaction" (SQLSTATE 40001).
pub const ER_LOCK_DEADLOCK: u16 = 1213;
/// `ER_NOT_SUPPORTED_YET`.
pub const ER_NOT_SUPPORTED_YET: u16 = 1235;
/// `ER_NET_PACKET_TOO_LARGE`.
pub const ER_NET_PACKET_TOO_LARGE: u16 = 1153;
/// `ER_ACCESS_DENIED_ERROR`.
pub const ER_ACCESS_DENIED: u16 = 1045;
/// `ER_CON_COUNT_ERROR`.
pub const ER_CON_COUNT: u16 = 1040;
/// `ER_UNKNOWN_COM_ERROR`.
pub const ER_UNKNOWN_COM: u16 = 1047;
/// `ER_HANDSHAKE_ERROR` ("Bad handshake").
pub const ER_HANDSHAKE: u16 = 1043;
/// `ER_UNKNOWN_STMT_HANDLER`.
pub const ER_UNKNOWN_STMT_HANDLER: u16 = 1243;
/// `ER_MAX_PREPARED_STMT_COUNT_REACHED`.
pub const ER_MAX_PREPARED_STMT_COUNT: u16 = 1461;
/// `ER_SECURE_TRANSPORT_REQUIRED` (MariaDB 10.5+).
pub const ER_SECURE_TRANSPORT_REQUIRED: u16 = 3159;
/// `ER_NO_SUCH_THREAD`.
pub const ER_NO_SUCH_THREAD: u16 = 1094;
/// `ER_QUERY_INTERRUPTED`: a statement stopped by `KILL QUERY`.
pub const ER_QUERY_INTERRUPTED: u16 = 1317;
/// `ER_TOO_MANY_USER_CONNECTIONS`: a login past `user_connections_max` (SQLSTATE 42000).
pub const ER_TOO_MANY_USER_CONNECTIONS: u16 = 1203;
/// `ER_SPECIFIC_ACCESS_DENIED_ERROR`: a statement that would lift the account's
/// `statement_time_max_ms` (SQLSTATE 42000).
pub const ER_SPECIFIC_ACCESS_DENIED: u16 = 1227;

impl ProxyError {
    /// The error packet the client gets.
    pub fn mysql(&self) -> MysqlError {
        let (code, state) = match self {
            ProxyError::PacketTooLarge(_) => (ER_NET_PACKET_TOO_LARGE, "08S01"),
            ProxyError::ClientProtocol(_) => (ER_HANDSHAKE, "08S01"),
            ProxyError::BackendConnect { code, .. } if *code == ER_ACCESS_DENIED => (*code, "28000"),
            ProxyError::BackendConnect { .. } => (2003, "HY000"),
            ProxyError::BackendIo { .. } => (2013, "HY000"),
            ProxyError::CommitFailed(_) | ProxyError::OutcomeUnknown(_) => (ER_ERROR_DURING_COMMIT, "HY000"),
            ProxyError::NotSupported(_) => (ER_NOT_SUPPORTED_YET, "42000"),
            ProxyError::TransactionLost(_) => (ER_LOCK_DEADLOCK, "40001"),
            ProxyError::ReadOnlyNode(_) => (ER_OPTION_PREVENTS_STATEMENT, "HY000"),
            ProxyError::Limit { code, .. } => (*code, if *code == ER_CON_COUNT { "08004" } else { "HY000" }),
            _ => (ER_UNKNOWN_ERROR, "HY000"),
        };
        let message = match self {
            ProxyError::PacketTooLarge(_) => "Got a packet bigger than 'max_allowed_packet' bytes".to_string(),
            other => format!("shoal: {other}"),
        };
        MysqlError { code, state, message }
    }

    /// Whether the client connection should be closed after reporting the error.
    pub fn closes_session(&self) -> bool {
        matches!(self, ProxyError::ClientIo(_) | ProxyError::ClientProtocol(_) | ProxyError::PacketTooLarge(_))
    }
}
