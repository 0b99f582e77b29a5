//! WAL tests: API behaviour, one test per recovery row, corruption, model-based property
//! test and the kill -9 crash test.

mod basic;
mod corruption;
mod crash;
mod model;
mod recovery;

use std::path::Path;

use super::{Lsn, NewRecord, Wal, WalOptions};

/// Small limits so tests roll many segments.
pub(crate) fn small_opts() -> WalOptions {
    WalOptions {
        segment_bytes_max: 4096,
        record_bytes_max: 1024,
        batch_records_max: 64,
        batch_bytes_max: 2048,
        index_interval_bytes: 256,
        compress_threshold_bytes: 32,
        fsync: false,
        read_buffer_bytes: 4096,
        ..WalOptions::default()
    }
}

/// Deterministic payload for `lsn`: varying length, every other one compressible.
pub(crate) fn payload_for(lsn: Lsn) -> Vec<u8> {
    let len = (lsn.wrapping_mul(7919) % 700) as usize;
    if lsn % 2 == 0 {
        (0..len).map(|i| b"abcdefgh"[(i / 16) % 8]).collect()
    } else {
        crate::wal::testkit::incompressible(len, lsn.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

/// Appends records `next..next+n` with `payload_for` payloads, `term`, kind = lsn % 3.
pub(crate) fn append_n(wal: &Wal, n: u64, term: u64) -> std::ops::Range<Lsn> {
    let next = wal.last_lsn() + 1;
    let recs = (next..next + n).map(|l| NewRecord::new(term, (l % 3) as u8, payload_for(l))).collect();
    let r = wal.append_at(next, recs).wait().expect("append");
    assert_eq!(r, next..next + n);
    r
}

/// Checks that `first..=last` are present with their deterministic payloads.
pub(crate) fn check_records(wal: &Wal, first: Lsn, last: Lsn) {
    let recs = wal.read_range(first..last + 1).expect("read_range");
    assert_eq!(recs.len() as u64, last + 1 - first);
    for r in recs {
        assert_eq!(r.payload, payload_for(r.lsn), "payload of {}", r.lsn);
        assert_eq!(r.kind, (r.lsn % 3) as u8);
    }
}

/// Segment files in `dir`, sorted.
pub(crate) fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}
