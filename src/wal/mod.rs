//! The write-ahead log: segmented, checksummed, LZ4-compressed records with group-commit
//! fsync and crash recovery. It is the Raft log of the replication layer.
//!
//! (docs filled in below)

mod error;
mod handle;
pub mod inspect;
mod meta;
mod options;
mod reader;
mod record;
pub mod recovery;
pub mod retention;
mod segment;
mod state;
mod writer;

#[cfg(test)]
mod tests;

pub use error::{Result, WalError};
pub use inspect::{run as run_command, WalCommand};
pub use handle::{Completion, LogState, SegmentInfo, Wal};
pub use meta::{Meta, META_FILE};
pub use options::{WalOptions, SEGMENT_BYTES_DEFAULT};
pub use reader::WalReader;
pub use record::{NewRecord, Record, PAYLOAD_BYTES_FORMAT_MAX, RECORD_HEADER_BYTES};
pub use recovery::{RecoveryAction, RecoveryReport};
pub use segment::{segment_name, FORMAT_VERSION, SEGMENT_HEADER_BYTES};

/// Log sequence number: the Raft log index. Dense and strictly increasing; 0 means "none".
pub type Lsn = u64;
/// Raft term. Never decreases along the log.
pub type Term = u64;
