//! Corruption: flipped bytes and cut files are always detected and reported, never
//! returned as data.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::*;
use crate::wal::{RecoveryAction, WalError};

fn build(dir: &Path) {
    let (wal, _) = Wal::open(dir, small_opts()).unwrap();
    for _ in 0..6 {
        append_n(&wal, 15, 1);
    }
    drop(wal);
}

fn copy_dir(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Opens a damaged copy: it must either refuse with a corruption error, or repair a torn
/// tail (reported) and then return only original records (a prefix of the log).
fn assert_detected(dir: &Path, what: &str) {
    match Wal::open(dir, small_opts()) {
        Err(
            WalError::CorruptSegment { .. }
            | WalError::CorruptTail { .. }
            | WalError::BadHeader { .. }
            | WalError::SegmentGap { .. },
        ) => {}
        Err(e) => panic!("{what}: unexpected error kind: {e}"),
        Ok((wal, report)) => {
            let repaired = report.actions.iter().any(|a| {
                matches!(
                    a,
                    RecoveryAction::TruncatedTornTail { .. }
                        | RecoveryAction::TruncatedZeroTail { .. }
                        | RecoveryAction::RemovedHeaderlessTail { .. }
                )
            });
            assert!(repaired, "{what}: damage went unnoticed ({:?})", report.actions);
            assert!(wal.last_lsn() < 90, "{what}: nothing was dropped");
            check_records(&wal, 1, wal.last_lsn());
        }
    }
}

#[test]
fn every_flipped_byte_is_detected_on_open() {
    let base = tempfile::tempdir().unwrap();
    build(base.path());
    let segs = segment_files(base.path());
    let mut cases = 0;
    for seg in &segs {
        let len = fs::metadata(seg).unwrap().len();
        // Every byte of the header and then every 19th byte of the body.
        let offsets = (0..32).chain((32..len).step_by(19));
        for off in offsets {
            let d = tempfile::tempdir().unwrap();
            copy_dir(base.path(), d.path());
            let p = d.path().join(seg.file_name().unwrap());
            let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
            let mut b = [0u8];
            f.read_exact_at(&mut b, off).unwrap();
            b[0] ^= 0x01;
            f.write_all_at(&b, off).unwrap();
            drop(f);
            assert_detected(d.path(), &format!("flip {}@{off}", seg.display()));
            cases += 1;
        }
    }
    assert!(cases > 100);
}

#[test]
fn every_cut_is_detected_on_open() {
    let base = tempfile::tempdir().unwrap();
    build(base.path());
    let segs = segment_files(base.path());
    for (i, seg) in segs.iter().enumerate() {
        let len = fs::metadata(seg).unwrap().len();
        for cut in (0..len).step_by(29) {
            let d = tempfile::tempdir().unwrap();
            copy_dir(base.path(), d.path());
            let p = d.path().join(seg.file_name().unwrap());
            OpenOptions::new().write(true).open(&p).unwrap().set_len(cut).unwrap();
            if i + 1 == segs.len() && cut <= 32 {
                // Cutting into the last segment's header = a crash while creating it.
                let (wal, _) = Wal::open(d.path(), small_opts()).unwrap();
                check_records(&wal, 1, wal.last_lsn());
                continue;
            }
            assert_detected(d.path(), &format!("cut {} at {cut}", seg.display()));
        }
    }
}

#[test]
fn reader_reports_corruption_that_appears_after_open() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_opts()).unwrap();
    append_n(&wal, 90, 1);
    let seg = &segment_files(dir.path())[1];
    let f = OpenOptions::new().read(true).write(true).open(seg).unwrap();
    f.write_all_at(&[0xFF], 100).unwrap();
    let e = wal.read_range(1..91).unwrap_err();
    assert!(matches!(e, WalError::CorruptRecord { .. }), "{e}");
    assert!(e.to_string().contains("shoal wal verify"));
}
