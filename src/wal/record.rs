//! Record encoding: `len | crc32c | lsn | term | kind | flags | payload` (all little-endian).
//!
//! Pure functions only: no I/O. The writer frames each record with [`encode_header`] (the
//! payload stays where it is: the header and the payload are written side by side with one
//! vectored write) and checks the headers of the batch with [`parse_header`] before writing;
//! readers and recovery decode with [`decode`] and re-check LSN order themselves.

use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;

use super::error::{Result, WalError};
use super::{Lsn, Term};

/// Bytes before the payload: len 4, crc 4, lsn 8, term 8, kind 1, flags 1.
pub const RECORD_HEADER_BYTES: usize = 26;
/// Bytes of the body (the part after `len | crc`) that are not payload.
const BODY_FIXED_BYTES: usize = RECORD_HEADER_BYTES - 8;
/// Hard format ceiling for one payload; `record_bytes_max` must not exceed it. Decoding
/// uses this (not the option) so a log written with a larger option still opens.
pub const PAYLOAD_BYTES_FORMAT_MAX: u64 = 64 * 1024 * 1024;
/// Flag bit: payload is an LZ4 block prefixed with its uncompressed size (u32 LE).
pub const FLAG_LZ4: u8 = 0b0000_0001;
/// All flag bits this format version knows.
const FLAGS_KNOWN: u8 = FLAG_LZ4;

/// A record as the caller hands it to [`crate::wal::Wal::append`]; the WAL assigns the LSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// Raft term of the entry; must not be lower than the previous record's term.
    pub term: Term,
    /// Opaque to the WAL (normal entry, membership, blank, ...).
    pub kind: u8,
    /// The bytes to store.
    pub payload: Bytes,
}

impl NewRecord {
    /// Convenience constructor.
    pub fn new(term: Term, kind: u8, payload: impl Into<Bytes>) -> Self {
        NewRecord { term, kind, payload: payload.into() }
    }
}

/// A record read back from the log: exactly what was appended, plus its LSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the log (dense, strictly increasing).
    pub lsn: Lsn,
    /// Raft term.
    pub term: Term,
    /// Opaque kind byte.
    pub kind: u8,
    /// Uncompressed payload.
    pub payload: Bytes,
}

/// A record after compression, before it has an LSN. Built on the caller's thread so the
/// single writer only frames and checksums.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// Raft term, checked for order by the writer.
    pub term: Term,
    /// Opaque kind byte.
    pub kind: u8,
    /// `FLAG_LZ4` when `stored` is compressed.
    pub flags: u8,
    /// The payload as it goes to disk.
    pub stored: Bytes,
}

impl Prepared {
    /// Bytes this record occupies in a segment.
    pub fn encoded_bytes(&self) -> usize {
        RECORD_HEADER_BYTES + self.stored.len()
    }
}

/// Checks the size and compresses when that makes the payload smaller.
#[cfg(test)]
pub(crate) fn prepare(rec: NewRecord, record_bytes_max: u64, compress_threshold_bytes: usize) -> Result<Prepared> {
    prepare_with(rec, record_bytes_max, compress_threshold_bytes, &CompressProbe::default())
}

/// After this many payloads in a row that LZ4 could not shrink, only every
/// `COMPRESS_PROBE_EVERY`-th payload is tried until one shrinks again.
pub const COMPRESS_MISSES_BEFORE_BACKOFF: u32 = 64;
/// While backed off, one payload in this many is still tried.
pub const COMPRESS_PROBE_EVERY: u32 = 16;

/// Remembers whether recent payloads were compressible, so a stream of incompressible
/// payloads (already compressed blobs) does not pay for an LZ4 attempt on every record.
#[derive(Debug, Default)]
pub(crate) struct CompressProbe {
    /// Consecutive payloads LZ4 did not shrink.
    misses: AtomicU32,
    /// Counts payloads skipped while backed off, to pick the probes.
    skipped: AtomicU32,
}

impl CompressProbe {
    fn should_try(&self) -> bool {
        self.misses.load(Ordering::Relaxed) < COMPRESS_MISSES_BEFORE_BACKOFF
            || self.skipped.fetch_add(1, Ordering::Relaxed) % COMPRESS_PROBE_EVERY == 0
    }

    fn outcome(&self, shrank: bool) {
        if shrank {
            self.misses.store(0, Ordering::Relaxed);
        } else {
            let _ = self.misses.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| Some(m.saturating_add(1)));
        }
    }
}

/// [`prepare`] with a shared [`CompressProbe`].
pub(crate) fn prepare_with(
    rec: NewRecord,
    record_bytes_max: u64,
    compress_threshold_bytes: usize,
    probe: &CompressProbe,
) -> Result<Prepared> {
    let raw_len = rec.payload.len();
    if raw_len as u64 > record_bytes_max {
        return Err(WalError::RecordTooLarge { bytes: raw_len as u64, max: record_bytes_max });
    }
    if raw_len >= compress_threshold_bytes && probe.should_try() {
        let shrunk = sample_compresses(&rec.payload)
            .then(|| lz4_flex::compress_prepend_size(&rec.payload))
            .filter(|c| c.len() < raw_len);
        probe.outcome(shrunk.is_some());
        if let Some(compressed) = shrunk {
            return Ok(Prepared { term: rec.term, kind: rec.kind, flags: FLAG_LZ4, stored: Bytes::from(compressed) });
        }
    }
    Ok(Prepared { term: rec.term, kind: rec.kind, flags: 0, stored: rec.payload })
}

/// Payloads longer than this are first compressed on a prefix of this size; LZ4 runs on
/// the whole payload only if the prefix shrinks. Saves the full attempt on incompressible
/// data (already compressed blobs, random bytes).
pub const COMPRESS_SAMPLE_BYTES: usize = 1024;

/// Whether the first `COMPRESS_SAMPLE_BYTES` shrink by at least 1/16 (always true for
/// shorter payloads: the real attempt is as cheap as the sample).
fn sample_compresses(payload: &[u8]) -> bool {
    if payload.len() <= 2 * COMPRESS_SAMPLE_BYTES {
        return true;
    }
    let sample = &payload[..COMPRESS_SAMPLE_BYTES];
    lz4_flex::compress(sample).len() < COMPRESS_SAMPLE_BYTES - COMPRESS_SAMPLE_BYTES / 16
}

/// The header of record `lsn` carrying `p`, checksum included. The checksum covers the
/// header fields and `p.stored`, chained in one pass so the payload is never copied.
pub(crate) fn encode_header(lsn: Lsn, p: &Prepared) -> [u8; RECORD_HEADER_BYTES] {
    let mut h = [0u8; RECORD_HEADER_BYTES];
    let len = (BODY_FIXED_BYTES + p.stored.len()) as u32;
    h[0..4].copy_from_slice(&len.to_le_bytes());
    h[8..16].copy_from_slice(&lsn.to_le_bytes());
    h[16..24].copy_from_slice(&p.term.to_le_bytes());
    h[24] = p.kind;
    h[25] = p.flags;
    let crc = checksum(&h, &p.stored);
    h[4..8].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends the framed record (header and payload) to `buf`.
#[cfg(test)]
pub(crate) fn encode_into(buf: &mut Vec<u8>, lsn: Lsn, p: &Prepared) {
    buf.extend_from_slice(&encode_header(lsn, p));
    buf.extend_from_slice(&p.stored);
}

/// crc32c over the `len` field, the rest of the header (skipping the crc field itself) and
/// the stored payload.
fn checksum(head: &[u8; RECORD_HEADER_BYTES], stored: &[u8]) -> u32 {
    let c = crc32c::crc32c(&head[0..4]);
    let c = crc32c::crc32c_append(c, &head[8..]);
    crc32c::crc32c_append(c, stored)
}

/// The fields of a record header, read without looking at the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Bytes after the crc field: `BODY_FIXED_BYTES` + stored payload.
    pub len: u32,
    /// The checksum as stored.
    pub crc: u32,
    /// LSN.
    pub lsn: Lsn,
    /// Term.
    pub term: Term,
    /// Kind byte.
    pub kind: u8,
    /// Flag bits.
    pub flags: u8,
}

impl Header {
    /// Stored payload bytes the length field announces (`None` if it is below the fixed part).
    pub fn stored_bytes(&self) -> Option<usize> {
        (self.len as usize).checked_sub(BODY_FIXED_BYTES)
    }

    /// Whether every set flag bit is one this format version knows.
    pub fn flags_known(&self) -> bool {
        self.flags & !FLAGS_KNOWN == 0
    }
}

/// Reads the header fields; checks nothing.
pub(crate) fn parse_header(h: &[u8; RECORD_HEADER_BYTES]) -> Header {
    let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[o..o + 8]);
        u64::from_le_bytes(b)
    };
    Header { len: u32_at(0), crc: u32_at(4), lsn: u64_at(8), term: u64_at(16), kind: h[24], flags: h[25] }
}

/// A record decoded in place from a buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordRef<'a> {
    /// LSN from the header.
    pub lsn: Lsn,
    /// Term from the header.
    pub term: Term,
    /// Kind byte.
    pub kind: u8,
    /// Flag bits.
    pub flags: u8,
    /// Payload bytes as stored (maybe compressed).
    pub stored: &'a [u8],
    /// Total encoded bytes (header + stored payload).
    pub total: usize,
}

impl RecordRef<'_> {
    /// The uncompressed payload, or why it cannot be produced.
    pub fn payload(&self) -> std::result::Result<Bytes, String> {
        if self.flags & FLAG_LZ4 == 0 {
            return Ok(Bytes::copy_from_slice(self.stored));
        }
        if self.stored.len() < 4 {
            return Err("compressed payload shorter than its size prefix".into());
        }
        let raw_len = u32::from_le_bytes([self.stored[0], self.stored[1], self.stored[2], self.stored[3]]) as u64;
        if raw_len > PAYLOAD_BYTES_FORMAT_MAX {
            return Err(format!("compressed payload claims {raw_len} bytes, above the format limit"));
        }
        let mut out = vec![0u8; raw_len as usize];
        match lz4_flex::decompress_into(&self.stored[4..], &mut out) {
            Ok(n) if n as u64 == raw_len => Ok(Bytes::from(out)),
            Ok(n) => Err(format!("LZ4 payload decompressed to {n} bytes, header says {raw_len}")),
            Err(e) => Err(format!("LZ4 payload does not decompress: {e}")),
        }
    }

    /// Converts into an owned [`Record`].
    pub fn to_record(self) -> std::result::Result<Record, String> {
        Ok(Record { lsn: self.lsn, term: self.term, kind: self.kind, payload: self.payload()? })
    }
}

/// Outcome of decoding the bytes at one position.
#[derive(Debug)]
pub(crate) enum Decode<'a> {
    /// A complete record with a good checksum.
    Record(RecordRef<'a>),
    /// The buffer ends inside the record; `need` bytes in total are required.
    Incomplete { need: usize },
    /// The length field is zero: unwritten (zero-filled) space starts here.
    Zeros,
    /// The bytes are not a valid record.
    Corrupt(String),
}

/// Decodes the record at the start of `buf`. Never panics on any input.
pub(crate) fn decode(buf: &[u8]) -> Decode<'_> {
    if buf.len() < 4 {
        return if buf.iter().all(|&b| b == 0) && !buf.is_empty() {
            Decode::Zeros
        } else {
            Decode::Incomplete { need: 4 }
        };
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len == 0 {
        return Decode::Zeros;
    }
    if len < BODY_FIXED_BYTES || len as u64 > BODY_FIXED_BYTES as u64 + PAYLOAD_BYTES_FORMAT_MAX + 4 {
        return Decode::Corrupt(format!("implausible record length {len}"));
    }
    let total = 8 + len;
    if buf.len() < total {
        return Decode::Incomplete { need: total };
    }
    let rec = &buf[..total];
    let Some((head, stored)) = rec.split_first_chunk::<RECORD_HEADER_BYTES>() else {
        return Decode::Incomplete { need: RECORD_HEADER_BYTES }; // unreachable: len >= BODY_FIXED_BYTES
    };
    let h = parse_header(head);
    let crc = checksum(head, stored);
    if crc != h.crc {
        return Decode::Corrupt(format!("checksum mismatch (stored {:#010x}, computed {crc:#010x})", h.crc));
    }
    if !h.flags_known() {
        return Decode::Corrupt(format!("unknown flag bits {:#04x}", h.flags));
    }
    Decode::Record(RecordRef { lsn: h.lsn, term: h.term, kind: h.kind, flags: h.flags, stored, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(payload: Vec<u8>) -> (u8, Record) {
        let p = prepare(NewRecord::new(7, 3, payload), 1 << 20, 16).unwrap();
        let mut buf = Vec::new();
        encode_into(&mut buf, 42, &p);
        assert_eq!(buf.len(), p.encoded_bytes());
        match decode(&buf) {
            Decode::Record(r) => (r.flags, r.to_record().unwrap()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn compressible_payload_is_compressed_and_round_trips() {
        let payload = vec![b'a'; 4000];
        let (flags, rec) = roundtrip(payload.clone());
        assert_eq!(flags, FLAG_LZ4);
        assert_eq!(rec, Record { lsn: 42, term: 7, kind: 3, payload: Bytes::from(payload) });
    }

    #[test]
    fn incompressible_payload_is_stored_raw() {
        let payload = crate::wal::testkit::incompressible(4000, 0x2545_F491_4F6C_DD1D);
        let (flags, rec) = roundtrip(payload.clone());
        assert_eq!(flags, 0);
        assert_eq!(rec.payload, payload);
    }

    #[test]
    fn large_payloads_use_the_sample_to_decide() {
        let (flags, rec) = roundtrip_max(vec![b'q'; 20_000]);
        assert_eq!((flags, rec.payload.len()), (FLAG_LZ4, 20_000));
        let random = crate::wal::testkit::incompressible(20_000, 7);
        let (flags, rec) = roundtrip_max(random.clone());
        assert_eq!(flags, 0);
        assert_eq!(rec.payload, random);
    }

    fn roundtrip_max(payload: Vec<u8>) -> (u8, Record) {
        let p = prepare(NewRecord::new(1, 0, payload), 1 << 20, 16).unwrap();
        let mut buf = Vec::new();
        encode_into(&mut buf, 1, &p);
        match decode(&buf) {
            Decode::Record(r) => (r.flags, r.to_record().unwrap()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let p = prepare(NewRecord::new(1, 0, vec![b'x'; 300]), 1 << 20, 16).unwrap();
        let mut buf = Vec::new();
        encode_into(&mut buf, 9, &p);
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[i] ^= 1 << bit;
                match decode(&b) {
                    Decode::Record(r) => panic!("flip at byte {i} bit {bit} decoded as {r:?}"),
                    Decode::Corrupt(_) | Decode::Incomplete { .. } | Decode::Zeros => {}
                }
            }
        }
    }

    #[test]
    fn probe_backs_off_on_incompressible_streams_and_recovers() {
        let probe = CompressProbe::default();
        let random = |seed: u64| {
            let mut x = seed | 1;
            (0..500)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect::<Vec<u8>>()
        };
        for i in 0..COMPRESS_MISSES_BEFORE_BACKOFF as u64 {
            prepare_with(NewRecord::new(1, 0, random(i)), 1 << 20, 16, &probe).unwrap();
        }
        // Backed off: most compressible payloads are now stored raw, but a probe gets through
        // and turns compression back on.
        let flags: Vec<u8> = (0..2 * COMPRESS_PROBE_EVERY + 4)
            .map(|_| prepare_with(NewRecord::new(1, 0, vec![b'z'; 500]), 1 << 20, 16, &probe).unwrap().flags)
            .collect();
        assert_eq!(flags[0], FLAG_LZ4, "the first skipped payload is a probe");
        assert!(flags[1..].iter().all(|&f| f == FLAG_LZ4), "one hit resets the back-off: {flags:?}");
    }

    #[test]
    fn too_large_is_rejected() {
        assert!(matches!(prepare(NewRecord::new(1, 0, vec![0; 11]), 10, 0), Err(WalError::RecordTooLarge { .. })));
    }
}
