//! The write-ahead log: segmented, checksummed, LZ4-compressed records with group-commit
//! fsync and crash recovery. It is the Raft log of the replication layer.
//!
//! # Guarantees
//!
//! * An append resolves `Ok` only after its records were written and `fdatasync`ed
//!   (unless `fsync = false`, which is for tests and benchmarks and logged as an error).
//!   Such records survive `kill -9` and power loss.
//! * What a read returns is exactly what was appended: every record is checked before it
//!   is written (length, dense LSN, non-decreasing term; the crc32c too in debug builds, see
//!   `batch.rs`) and again after it is read (crc32c, dense LSN, non-decreasing term).
//!   Bad data is reported as an error naming the file and offset, never returned.
//! * LSNs are dense and strictly increasing; terms never decrease along the log.
//!
//! # Layout
//!
//! * `mod.rs` — this overview, [`Lsn`]/[`Term`] and re-exports.
//! * `handle.rs` — [`Wal`], the public handle: open, append, read, truncate, purge, metadata.
//! * `record.rs` — record framing, checksum, LZ4 (pure).
//! * `batch.rs` — one group commit's headers and payloads, its pre-write check (pure).
//! * `segment.rs` — segment naming, header, crash-safe creation, full scan.
//! * `writer.rs` — the writer thread: group commit, rolling, truncate and purge.
//! * `reader.rs` — [`WalReader`]: streaming reads that never block appends.
//! * `state.rs` — the in-memory segment list and sparse index shared by writer and readers.
//! * `recovery.rs` — the recovery decision table ([`recovery::decide`], pure) and its I/O.
//! * `meta.rs` — vote/term, commit point, purge floor, the last snapshot in `meta.redb`.
//! * `retention.rs` — which segments age/size retention purges (pure).
//! * `options.rs` — [`WalOptions`], every limit with its unit.
//! * `error.rs` — [`WalError`].
//! * `inspect.rs` — `shoal wal info | dump | verify` ([`WalCommand`], [`inspect::run`]).
//! * `tests/` — API, recovery-row, corruption, model (proptest) and kill -9 tests.
//!
//! # On-disk format
//!
//! ```text
//! <dir>/
//!   meta.redb                      redb: format_version, term, vote, commit,
//!                                  purge_floor, snapshot, last_purged
//!   00000000000000000001.wal       segment: named by its first LSN (20 digits)
//!   00000000000000004711.wal       the last segment is the tail being appended
//!   00000000000000009000.wal.tmp   (only while a segment is being created)
//!
//! segment = header (32 bytes) + records, rolled before exceeding segment_bytes_max
//! +0  magic "SHOALWAL"        8
//! +8  format version u32      4   (1)
//! +12 header bytes u32        4   (32)
//! +16 first LSN u64           8   (must equal the file name)
//! +24 crc32c of +0..+24       4
//! +28 reserved, zero          4
//!
//! record (little-endian), 26-byte header + payload
//! +0  len u32                 4   bytes after the crc field = 18 + stored payload
//! +4  crc32c u32              4   over len and everything after crc
//! +8  lsn u64                 8
//! +16 term u64                8
//! +24 kind u8                 1   opaque to the WAL
//! +25 flags u8                1   bit 0: payload is LZ4 (u32 raw size + block)
//! +26 payload                 len - 18
//! ```
//!
//! The in-memory sparse index (one entry per `index_interval_bytes`) is rebuilt by the
//! scan on open, so reading from any LSN is a map lookup, a binary search and a scan of at
//! most one interval.
//!
//! # Example
//!
//! ```no_run
//! use shoal::wal::{NewRecord, Wal, WalOptions};
//! # fn main() -> Result<(), shoal::wal::WalError> {
//! let (wal, report) = Wal::open("/var/lib/shoal/wal", WalOptions::default())?;
//! let next = report.last_lsn + 1;
//! let lsns = wal.append_at(next, vec![NewRecord::new(3, 0, &b"entry"[..])]).wait()?; // durable now
//! let back = wal.read_range(lsns.clone())?;
//! assert_eq!(back[0].payload, &b"entry"[..]);
//! wal.save_commit(lsns.end - 1)?;
//! # Ok(()) }
//! ```

mod batch;
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
#[doc(hidden)]
pub mod testkit;
mod writer;

#[cfg(test)]
mod tests;

pub use error::{Result, WalError};
pub use handle::{Completion, LogState, SegmentInfo, Wal};
pub use inspect::{run as run_command, WalCommand};
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
