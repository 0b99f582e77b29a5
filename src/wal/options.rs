//! [`WalOptions`]: every limit of the WAL, with its unit last.

use super::error::{Result, WalError};
use super::record::{PAYLOAD_BYTES_FORMAT_MAX, RECORD_HEADER_BYTES};
use super::segment::SEGMENT_HEADER_BYTES;

/// Default segment size: `[wal] segment_size_mb = 64`.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;

/// Tunables of one WAL. Build with `WalOptions::default()` and override fields.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment is sealed and a new one started when the next record would push it past
    /// this size (`[wal] segment_size_mb` × 1 MiB). Bounds the unit of purge and of scans.
    pub segment_bytes_max: u64,
    /// Largest accepted payload (before compression). Bounds memory per record and the
    /// torn-write window recovery accepts.
    pub record_bytes_max: u64,
    /// Most records written by one group commit (one `fdatasync`). Bounds latency of the
    /// first caller in a batch.
    pub batch_records_max: usize,
    /// Most bytes written by one group commit. Also bounds how much of the tail an
    /// interrupted write can damage, which recovery uses to tell a torn write from rot.
    pub batch_bytes_max: u64,
    /// One sparse-index entry per this many bytes of segment: reading from any LSN seeks
    /// to the nearest entry and scans at most this far.
    pub index_interval_bytes: u64,
    /// Payloads shorter than this are stored raw; LZ4 rarely pays off on tiny records.
    pub compress_threshold_bytes: usize,
    /// `[wal] fsync`. When false nothing is durable across power loss: tests and
    /// benchmarks only, and logged as an error on open.
    pub fsync: bool,
    /// `[wal] retention_hours`: sealed segments whose newest record is older than this are
    /// purged by [`crate::wal::Wal::apply_retention`] (never past the purge floor).
    pub retention_hours: Option<u64>,
    /// Purge the oldest sealed segments while the log is larger than this (never past
    /// the purge floor).
    pub retention_bytes_max: Option<u64>,
    /// Size of the buffer a reader fills with one `pread`.
    pub read_buffer_bytes: usize,
    /// LSN of the first record of a brand-new log.
    pub first_lsn: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes_max: SEGMENT_BYTES_DEFAULT,
            record_bytes_max: 4 * 1024 * 1024,
            batch_records_max: 4096,
            batch_bytes_max: 4 * 1024 * 1024,
            index_interval_bytes: 32 * 1024,
            compress_threshold_bytes: 128,
            fsync: true,
            retention_hours: None,
            retention_bytes_max: None,
            read_buffer_bytes: 1024 * 1024,
            first_lsn: 1,
        }
    }
}

impl WalOptions {
    /// Options from the `[wal]` config section.
    pub fn from_config(segment_size_mb: u64, fsync: bool, retention_hours: Option<u64>) -> Self {
        WalOptions {
            segment_bytes_max: segment_size_mb.saturating_mul(1024 * 1024),
            fsync,
            retention_hours,
            ..WalOptions::default()
        }
    }

    /// Largest region at the end of the tail segment that one interrupted batch write can
    /// leave damaged: a full batch plus the one record allowed to overflow it.
    pub fn torn_window_bytes(&self) -> u64 {
        self.batch_bytes_max + self.record_bytes_max + 2 * RECORD_HEADER_BYTES as u64
    }

    /// Rejects inconsistent limits.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(WalError::InvalidOptions { reason });
        if self.record_bytes_max == 0 || self.record_bytes_max > PAYLOAD_BYTES_FORMAT_MAX {
            return bad(format!(
                "record_bytes_max {} must be in 1..={PAYLOAD_BYTES_FORMAT_MAX}",
                self.record_bytes_max
            ));
        }
        let one_record = SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES as u64 + self.record_bytes_max + 4;
        if self.segment_bytes_max < one_record {
            return bad(format!(
                "segment_bytes_max {} must hold one record of record_bytes_max {} ({one_record} bytes)",
                self.segment_bytes_max, self.record_bytes_max
            ));
        }
        if self.batch_records_max == 0 || self.batch_bytes_max == 0 {
            return bad("batch_records_max and batch_bytes_max must be positive".into());
        }
        if self.index_interval_bytes == 0 || self.read_buffer_bytes < 4096 {
            return bad("index_interval_bytes must be positive and read_buffer_bytes >= 4096".into());
        }
        if self.first_lsn == 0 {
            return bad("first_lsn must be >= 1 (LSN 0 means 'nothing')".into());
        }
        Ok(())
    }
}
