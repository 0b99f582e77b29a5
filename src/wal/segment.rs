//! Segment files: naming, the 32-byte header, creation and the full scan used by
//! recovery, `verify` and tests.
//!
//! A segment is named by the LSN of its first record, zero-padded to 20 digits so that
//! lexical order is LSN order: `00000000000000001000.wal`. New segments are written as
//! `<name>.tmp`, fsynced, renamed and the directory fsynced, so a segment either exists
//! with a complete header or not at all.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::error::{Result, WalError};
use super::record::{self, Decode};
use super::{Lsn, Term};

/// Identifies a shoal WAL segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SHOALWAL";
/// The segment format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the segment header; the first record starts here.
pub const SEGMENT_HEADER_BYTES: u64 = 32;
/// Suffix of sealed and tail segments.
pub const SEGMENT_SUFFIX: &str = ".wal";
/// Suffix of a segment still being created (deleted by recovery).
pub const TMP_SUFFIX: &str = ".wal.tmp";

/// File name of the segment whose first record is `first_lsn`.
pub fn segment_name(first_lsn: Lsn) -> String {
    format!("{first_lsn:020}{SEGMENT_SUFFIX}")
}

/// Parses a segment file name back to its first LSN.
pub fn parse_segment_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header bytes of a segment starting at `first_lsn`.
pub fn encode_header(first_lsn: Lsn) -> [u8; SEGMENT_HEADER_BYTES as usize] {
    let mut h = [0u8; SEGMENT_HEADER_BYTES as usize];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_le_bytes());
    h[16..24].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Problems a header can have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    /// File shorter than a header, or the header is all zeros (never written).
    Missing,
    /// Newer/unknown format version.
    Version(u32),
    /// Anything else: bad magic, checksum, or first LSN different from the name.
    Bad(String),
}

/// Checks a header against the LSN in the file name.
pub fn check_header(bytes: &[u8], name_lsn: Lsn) -> std::result::Result<(), HeaderProblem> {
    if bytes.len() < SEGMENT_HEADER_BYTES as usize || bytes[..SEGMENT_HEADER_BYTES as usize].iter().all(|&b| b == 0) {
        return Err(HeaderProblem::Missing);
    }
    let h = &bytes[..SEGMENT_HEADER_BYTES as usize];
    if h[0..8] != SEGMENT_MAGIC {
        return Err(HeaderProblem::Bad("bad magic (not a shoal WAL segment)".into()));
    }
    let crc = u32::from_le_bytes([h[24], h[25], h[26], h[27]]);
    if crc != crc32c::crc32c(&h[0..24]) {
        return Err(HeaderProblem::Bad("header checksum mismatch".into()));
    }
    if h[28..32] != [0, 0, 0, 0] {
        return Err(HeaderProblem::Bad("reserved header bytes are not zero".into()));
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != FORMAT_VERSION {
        return Err(HeaderProblem::Version(version));
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[16..24]);
    let first = u64::from_le_bytes(b);
    if first != name_lsn {
        return Err(HeaderProblem::Bad(format!("header says first LSN {first} but the file name says {name_lsn}")));
    }
    Ok(())
}

/// fsyncs a directory so creations, renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| WalError::io("opening directory", dir, e))?;
    d.sync_all().map_err(|e| WalError::io("fsyncing directory", dir, e))
}

/// Creates segment `first_lsn` crash-safely (tmp, fsync, rename, fsync dir) and returns
/// it opened for reading and writing.
pub fn create_segment(dir: &Path, first_lsn: Lsn, fsync: bool) -> Result<(PathBuf, File)> {
    let path = dir.join(segment_name(first_lsn));
    let tmp = dir.join(format!("{first_lsn:020}{TMP_SUFFIX}"));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&tmp)
        .map_err(|e| WalError::io("creating segment", &tmp, e))?;
    f.write_all(&encode_header(first_lsn)).map_err(|e| WalError::io("writing segment header", &tmp, e))?;
    if fsync {
        f.sync_all().map_err(|e| WalError::io("fsyncing new segment", &tmp, e))?;
    }
    fs::rename(&tmp, &path).map_err(|e| WalError::io("renaming new segment", &path, e))?;
    if fsync {
        sync_dir(dir)?;
    }
    Ok((path, f))
}

/// Why a scan stopped before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopKind {
    /// The last record runs past the end of the file.
    Incomplete,
    /// A zero length field; `all_zero` says whether every byte to the end is zero.
    Zeros {
        /// True when the rest of the file is zeros.
        all_zero: bool,
    },
    /// Checksum, length or flag failure.
    Corrupt(String),
    /// A valid record with the wrong LSN or a decreasing term.
    Order(String),
}

/// Where and why a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// Offset of the first byte that is not part of a valid record.
    pub offset: u64,
    /// Why.
    pub kind: StopKind,
}

/// Everything recovery needs to know about one segment file.
#[derive(Debug, Clone)]
pub struct SegmentScan {
    /// File name.
    pub name: String,
    /// Full path.
    pub path: PathBuf,
    /// LSN from the file name.
    pub first_lsn: Lsn,
    /// File size.
    pub file_bytes: u64,
    /// Last modification time (used by age retention).
    pub modified: Option<SystemTime>,
    /// Header validation result.
    pub header: std::result::Result<(), HeaderProblem>,
    /// Number of valid records.
    pub records: u64,
    /// Term of the first valid record.
    pub first_term: Option<Term>,
    /// LSN and term of the last valid record.
    pub last: Option<(Lsn, Term)>,
    /// Offset just past the last valid record.
    pub valid_end: u64,
    /// Sparse index (LSN, offset) of the valid records.
    pub index: Vec<(Lsn, u64)>,
    /// Why the scan ended before `file_bytes`, if it did.
    pub stop: Option<Stop>,
    /// Payloads that failed to decompress (only checked when asked).
    pub payload_errors: Vec<(u64, String)>,
}

/// Reads a whole segment and validates every record: checksum, dense LSNs starting at the
/// name's LSN, non-decreasing terms. With `check_payloads` it also decompresses each payload.
pub fn scan_segment(path: &Path, index_interval_bytes: u64, check_payloads: bool) -> Result<SegmentScan> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let first_lsn = parse_segment_name(&name).unwrap_or(0);
    let bytes = fs::read(path).map_err(|e| WalError::io("reading segment", path, e))?;
    let modified = fs::metadata(path).ok().and_then(|m| m.modified().ok());
    let mut scan = SegmentScan {
        name,
        path: path.to_path_buf(),
        first_lsn,
        file_bytes: bytes.len() as u64,
        modified,
        header: check_header(&bytes, first_lsn),
        records: 0,
        first_term: None,
        last: None,
        valid_end: 0,
        index: Vec::new(),
        stop: None,
        payload_errors: Vec::new(),
    };
    if scan.header.is_err() {
        return Ok(scan);
    }
    let mut pos = SEGMENT_HEADER_BYTES as usize;
    let mut next_index_at = pos as u64;
    let mut expected = first_lsn;
    let mut last_term: Term = 0;
    while pos < bytes.len() {
        let stop_kind = match record::decode(&bytes[pos..]) {
            Decode::Record(r) => {
                if r.lsn != expected {
                    Some(StopKind::Order(format!("record has LSN {} where {expected} was expected", r.lsn)))
                } else if r.term < last_term {
                    Some(StopKind::Order(format!(
                        "record {} has term {} below the previous term {last_term}",
                        r.lsn, r.term
                    )))
                } else {
                    if check_payloads {
                        if let Err(e) = r.payload() {
                            scan.payload_errors.push((pos as u64, e));
                        }
                    }
                    if pos as u64 >= next_index_at {
                        scan.index.push((r.lsn, pos as u64));
                        next_index_at = pos as u64 + index_interval_bytes;
                    }
                    scan.first_term.get_or_insert(r.term);
                    scan.last = Some((r.lsn, r.term));
                    scan.records += 1;
                    last_term = r.term;
                    expected += 1;
                    pos += r.total;
                    None
                }
            }
            Decode::Incomplete { .. } => Some(StopKind::Incomplete),
            Decode::Zeros => Some(StopKind::Zeros { all_zero: bytes[pos..].iter().all(|&b| b == 0) }),
            Decode::Corrupt(reason) => Some(StopKind::Corrupt(reason)),
        };
        if let Some(kind) = stop_kind {
            scan.stop = Some(Stop { offset: pos as u64, kind });
            break;
        }
    }
    scan.valid_end = pos as u64;
    Ok(scan)
}

/// Segment files of a directory as (first LSN, path), sorted.
pub type SegmentFiles = Vec<(Lsn, PathBuf)>;

/// Lists `*.wal` segments (sorted by first LSN) and leftover `*.wal.tmp` files.
pub fn list_dir(dir: &Path) -> Result<(SegmentFiles, Vec<PathBuf>)> {
    let mut segs = Vec::new();
    let mut tmps = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| WalError::io("listing", dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| WalError::io("listing", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(TMP_SUFFIX) {
            tmps.push(entry.path());
        } else if let Some(lsn) = parse_segment_name(&name) {
            segs.push((lsn, entry.path()));
        }
    }
    segs.sort();
    Ok((segs, tmps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(segment_name(1000), "00000000000000001000.wal");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("1000.wal"), None);
        assert_eq!(parse_segment_name("00000000000000001000.wal.tmp"), None);
        assert!(segment_name(99) < segment_name(100));
    }

    #[test]
    fn header_checks() {
        let h = encode_header(5);
        assert_eq!(check_header(&h, 5), Ok(()));
        assert!(matches!(check_header(&h, 6), Err(HeaderProblem::Bad(_))));
        assert_eq!(check_header(&h[..10], 5), Err(HeaderProblem::Missing));
        let mut bad = h;
        bad[3] ^= 1;
        assert!(matches!(check_header(&bad, 5), Err(HeaderProblem::Bad(_))));
    }
}
