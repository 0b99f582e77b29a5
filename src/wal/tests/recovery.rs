//! One test per row of the recovery decision table (see `recovery.rs`).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::wal::meta::MetaStore;
use crate::wal::record::{encode_into, prepare};
use crate::wal::segment::{encode_header, segment_name, SEGMENT_HEADER_BYTES};
use crate::wal::{RecoveryAction, WalError};

/// A closed log of 200 records (term 1) in many small segments.
fn build() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_opts()).unwrap();
    append_n(&wal, 200, 1);
    drop(wal);
    let segs = segment_files(dir.path());
    assert!(segs.len() >= 4);
    (dir, segs)
}

fn open(dir: &Path) -> Result<(Wal, crate::wal::RecoveryReport), WalError> {
    Wal::open(dir, small_opts())
}

fn flip(path: &Path, offset: u64) {
    let f = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, offset).unwrap();
}

fn set_meta(dir: &Path, f: impl FnOnce(&mut crate::wal::Meta)) {
    let (mut m, _) = MetaStore::open(dir).unwrap();
    m.update(f).unwrap();
}

fn first_lsn_of(p: &Path) -> Lsn {
    crate::wal::segment::parse_segment_name(p.file_name().unwrap().to_str().unwrap()).unwrap()
}

#[test]
fn row_r01_empty_dir_creates_a_fresh_log() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, report) = open(dir.path()).unwrap();
    assert_eq!(report.actions, vec![RecoveryAction::CreatedLog { first_lsn: 1 }]);
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (1, 0));
    assert!(dir.path().join(crate::wal::META_FILE).exists());
    assert!(dir.path().join(segment_name(1)).exists());
}

#[test]
fn row_r02_leftover_tmp_is_deleted() {
    let (dir, _) = build();
    let tmp = dir.path().join("00000000000000000999.wal.tmp");
    fs::write(&tmp, b"half a header").unwrap();
    let (wal, report) = open(dir.path()).unwrap();
    assert_eq!(report.actions, vec![RecoveryAction::RemovedTmp { file: tmp.clone() }]);
    assert!(!tmp.exists());
    check_records(&wal, 1, 200);
}

#[test]
fn row_r03_segments_without_meta_are_refused() {
    let (dir, _) = build();
    fs::remove_file(dir.path().join(crate::wal::META_FILE)).unwrap();
    let e = open(dir.path()).err().unwrap();
    assert!(matches!(e, WalError::MetaMissing { .. }), "{e}");
    assert!(!dir.path().join(crate::wal::META_FILE).exists(), "refusing must not create metadata");
}

#[test]
fn row_r04_bad_header_or_version_is_refused() {
    let (dir, segs) = build();
    flip(&segs[1], 2); // magic
    let e = open(dir.path()).err().unwrap();
    assert!(
        matches!(&e, WalError::BadHeader { segment, .. } if segment == segs[1].file_name().unwrap().to_str().unwrap()),
        "{e}"
    );
    // A header whose checksum is fine but whose version is from the future.
    let mut h = encode_header(first_lsn_of(&segs[1]));
    h[8] = 9;
    let crc = crc32c::crc32c(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    OpenOptions::new().write(true).open(&segs[1]).unwrap().write_all_at(&h, 0).unwrap();
    let e = open(dir.path()).err().unwrap();
    assert!(matches!(e, WalError::UnsupportedVersion { found: 9, .. }), "{e}");
    // A segment renamed to a different LSN: the header disagrees with the name.
    let (dir, segs) = build();
    fs::rename(&segs[2], dir.path().join(segment_name(first_lsn_of(&segs[2]) + 1))).unwrap();
    let e = open(dir.path()).err().unwrap();
    assert!(matches!(e, WalError::BadHeader { .. }), "{e}");
}

#[test]
fn row_r05_headerless_last_segment_is_removed() {
    let (dir, _) = build();
    let name = segment_name(201);
    fs::write(dir.path().join(&name), [0u8; 10]).unwrap();
    let (wal, report) = open(dir.path()).unwrap();
    assert_eq!(report.actions, vec![RecoveryAction::RemovedHeaderlessTail { segment: name }]);
    check_records(&wal, 1, 200);
    append_n(&wal, 1, 1);
}

#[test]
fn row_r06_interrupted_purge_is_finished() {
    let (dir, segs) = build();
    let third = first_lsn_of(&segs[2]);
    set_meta(dir.path(), |m| m.last_purged = Some((third, 1)));
    let (wal, report) = open(dir.path()).unwrap();
    let finished: Vec<_> =
        report.actions.iter().filter(|a| matches!(a, RecoveryAction::FinishedPurge { .. })).collect();
    assert_eq!(finished.len(), 2, "{:?}", report.actions);
    assert!(!segs[0].exists() && !segs[1].exists() && segs[2].exists());
    assert_eq!(wal.first_lsn(), third + 1);
    check_records(&wal, third + 1, 200);
}

#[test]
fn row_r07_clean_tail_opens_unchanged() {
    let (dir, segs) = build();
    let sizes: Vec<u64> = segs.iter().map(|p| fs::metadata(p).unwrap().len()).collect();
    let (wal, report) = open(dir.path()).unwrap();
    assert!(report.actions.is_empty());
    assert_eq!(report.last_lsn, 200);
    let after: Vec<u64> = segs.iter().map(|p| fs::metadata(p).unwrap().len()).collect();
    assert_eq!(sizes, after);
    assert_eq!(append_n(&wal, 1, 1), 201..202);
}

#[test]
fn row_r08_torn_last_record_is_truncated() {
    let (dir, segs) = build();
    let last = segs.last().unwrap();
    let len = fs::metadata(last).unwrap().len();
    // Cut the final record short.
    OpenOptions::new().write(true).open(last).unwrap().set_len(len - 3).unwrap();
    let (wal, report) = open(dir.path()).unwrap();
    assert!(matches!(report.actions.as_slice(), [RecoveryAction::TruncatedTornTail { .. }]), "{:?}", report.actions);
    assert_eq!(wal.last_lsn(), 199);
    check_records(&wal, 1, 199);
    assert_eq!(append_n(&wal, 1, 1), 200..201);
    drop(wal);
    // Garbage (a half-written batch) after the last good record.
    let mut f = OpenOptions::new().append(true).open(last).unwrap();
    f.write_all(&[0xAB; 100]).unwrap();
    let (wal, report) = open(dir.path()).unwrap();
    assert!(
        matches!(report.actions.as_slice(), [RecoveryAction::TruncatedTornTail { dropped_bytes: 100, .. }]),
        "{:?}",
        report.actions
    );
    check_records(&wal, 1, 200);
}

#[test]
fn row_r09_zero_filled_tail_is_truncated() {
    let (dir, segs) = build();
    let last = segs.last().unwrap();
    let len = fs::metadata(last).unwrap().len();
    OpenOptions::new().write(true).open(last).unwrap().set_len(len + 1000).unwrap();
    let (wal, report) = open(dir.path()).unwrap();
    assert_eq!(
        report.actions,
        vec![RecoveryAction::TruncatedZeroTail {
            segment: last.file_name().unwrap().to_str().unwrap().into(),
            offset: len,
            dropped_bytes: 1000
        }]
    );
    check_records(&wal, 1, 200);
}

#[test]
fn row_r10_damage_deep_in_the_tail_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions { segment_bytes_max: 1 << 20, ..small_opts() };
    let (wal, _) = Wal::open(dir.path(), opts.clone()).unwrap();
    append_n(&wal, 400, 1);
    drop(wal);
    let segs = segment_files(dir.path());
    assert_eq!(segs.len(), 1);
    flip(&segs[0], SEGMENT_HEADER_BYTES + 30);
    let e = Wal::open(dir.path(), opts).err().unwrap();
    assert!(matches!(e, WalError::CorruptTail { offset: 32, .. }), "{e}");
    assert!(e.to_string().contains("shoal wal verify"));
}

#[test]
fn row_r11_bad_checksum_in_sealed_segment_is_refused() {
    let (dir, segs) = build();
    let len = fs::metadata(&segs[1]).unwrap().len();
    flip(&segs[1], len / 2);
    let e = open(dir.path()).err().unwrap();
    let name = segs[1].file_name().unwrap().to_str().unwrap().to_string();
    match &e {
        WalError::CorruptSegment { segment, offset, .. } => {
            assert_eq!(segment, &name);
            assert!(*offset <= len / 2 && *offset >= SEGMENT_HEADER_BYTES);
        }
        other => panic!("{other}"),
    }
    let msg = e.to_string();
    assert!(msg.contains(&name) && msg.contains("shoal wal verify"), "{msg}");
}

#[test]
fn row_r12_valid_record_with_wrong_lsn_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path()).unwrap();
    append_n(&wal, 3, 1);
    drop(wal);
    // Append a well-formed record with LSN 5 (4 is missing) to the only segment.
    let seg = segment_files(dir.path()).pop().unwrap();
    let mut buf = Vec::new();
    encode_into(&mut buf, 5, &prepare(NewRecord::new(1, 0, "x"), 1024, 32).unwrap());
    OpenOptions::new().append(true).open(&seg).unwrap().write_all(&buf).unwrap();
    let e = open(dir.path()).err().unwrap();
    assert!(matches!(&e, WalError::CorruptSegment { reason, .. } if reason.contains("LSN 5")), "{e}");
}

#[test]
fn row_r13_missing_or_out_of_order_segment_is_refused() {
    let (dir, segs) = build();
    fs::remove_file(&segs[2]).unwrap();
    let e = open(dir.path()).err().unwrap();
    assert!(matches!(e, WalError::SegmentGap { .. }), "{e}");
    // Missing first segment: the log no longer starts after the last purged LSN.
    let (dir, segs) = build();
    fs::remove_file(&segs[0]).unwrap();
    let e = open(dir.path()).err().unwrap();
    assert!(matches!(&e, WalError::SegmentGap { detail } if detail.contains("should start at LSN 1")), "{e}");
    // An extra segment claiming LSNs that overlap its predecessor (copied from elsewhere).
    let (dir, segs) = build();
    let overlap = first_lsn_of(&segs[1]) + 1;
    let mut bytes = encode_header(overlap).to_vec();
    encode_into(&mut bytes, overlap, &prepare(NewRecord::new(1, 0, "y"), 1024, 32).unwrap());
    fs::write(dir.path().join(segment_name(overlap)), bytes).unwrap();
    let e = open(dir.path()).err().unwrap();
    assert!(matches!(e, WalError::SegmentGap { .. } | WalError::CorruptSegment { .. }), "{e}");
}

#[test]
fn row_r14_everything_purged_creates_a_tail() {
    let (dir, _) = build();
    set_meta(dir.path(), |m| m.last_purged = Some((300, 7)));
    let (wal, report) = open(dir.path()).unwrap();
    assert_eq!(report.actions.last(), Some(&RecoveryAction::CreatedTail { first_lsn: 301 }));
    assert_eq!((wal.first_lsn(), wal.last_lsn(), wal.last_term()), (301, 300, 7));
    assert_eq!(segment_files(dir.path()), vec![dir.path().join(segment_name(301))]);
    assert_eq!(wal.append(vec![NewRecord::new(7, 0, "z")]).wait().unwrap(), 301..302);
}

#[test]
fn row_r15_meta_ahead_of_log_is_refused() {
    let (dir, _) = build();
    set_meta(dir.path(), |m| m.commit = 250);
    let e = open(dir.path()).err().unwrap();
    assert!(matches!(e, WalError::MetaAheadOfLog { commit: 250, last_lsn: 200 }), "{e}");
}

#[test]
fn row_r16_meta_behind_log_reports_uncommitted_tail() {
    let (dir, _) = build();
    set_meta(dir.path(), |m| m.commit = 150);
    let (wal, report) = open(dir.path()).unwrap();
    assert!(report.actions.is_empty());
    assert_eq!(report.uncommitted_records, 50);
    check_records(&wal, 1, 200);
}

#[test]
fn interrupted_truncate_leaves_a_valid_prefix() {
    // truncate_from deletes newer segments newest first and cuts the holding segment last.
    // A crash after deleting only the newest segment must open as a clean prefix, and
    // repeating the truncation finishes the job.
    let (dir, segs) = build();
    let cut = first_lsn_of(&segs[1]) + 2;
    fs::remove_file(segs.last().unwrap()).unwrap();
    let (wal, report) = open(dir.path()).unwrap();
    assert!(report.actions.is_empty(), "{:?}", report.actions);
    let last = wal.last_lsn();
    assert!(last < 200 && last >= cut);
    check_records(&wal, 1, last);
    wal.truncate_from(cut).wait().unwrap();
    drop(wal);
    let (wal, report) = open(dir.path()).unwrap();
    assert!(report.actions.is_empty());
    assert_eq!(wal.last_lsn(), cut - 1);
    check_records(&wal, 1, cut - 1);
}
