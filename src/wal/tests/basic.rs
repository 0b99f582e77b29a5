//! The public API behaves as documented.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::*;
use crate::wal::{WalError, WalReader};

#[test]
fn append_read_back_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, report) = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(report.last_lsn, 0);
    for _ in 0..20 {
        append_n(&wal, 17, 1);
    }
    assert_eq!(wal.last_lsn(), 340);
    assert!(wal.segments().len() > 5, "small segments roll");
    check_records(&wal, 1, 340);
    // Any starting point is a seek.
    for from in [1, 2, 99, 100, 101, 250, 340] {
        let recs = wal.read_range(from..341).unwrap();
        assert_eq!(recs[0].lsn, from);
    }
    drop(wal);
    let (wal, report) = Wal::open(dir.path(), small_opts()).unwrap();
    assert!(report.actions.is_empty(), "{:?}", report.actions);
    assert_eq!((report.first_lsn, report.last_lsn, report.last_term), (1, 340, 1));
    check_records(&wal, 1, 340);
    append_n(&wal, 5, 2);
    check_records(&wal, 1, 345);
    assert_eq!(wal.last_term(), 2);
}

#[test]
fn group_commit_serves_many_concurrent_callers() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions { fsync: true, ..small_opts() };
    let (wal, _) = Wal::open(dir.path(), opts).unwrap();
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for i in 0..40u32 {
                    let mut p = vec![t];
                    p.extend_from_slice(&i.to_le_bytes());
                    let r = wal.append(vec![NewRecord::new(1, t, p.clone()), NewRecord::new(1, t, p)]).wait().unwrap();
                    assert_eq!(r.end - r.start, 2);
                    got.push((r.start, i));
                }
                (t, got)
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in threads {
        let (t, got) = h.join().unwrap();
        for (lsn, i) in got {
            all.push((lsn, t, i));
        }
    }
    all.sort();
    assert_eq!(all.len(), 320);
    for w in all.windows(2) {
        assert_eq!(w[0].0 + 2, w[1].0, "ranges are dense and disjoint");
    }
    for (lsn, t, i) in all {
        let recs = wal.read_range(lsn..lsn + 2).unwrap();
        for r in recs {
            assert_eq!(r.kind, t);
            assert_eq!(&r.payload[1..5], &i.to_le_bytes());
        }
    }
}

#[test]
fn rejected_requests_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_opts()).unwrap();
    append_n(&wal, 3, 5);
    let e = wal.append_at(7, vec![NewRecord::new(5, 0, "x")]).wait().unwrap_err();
    assert!(matches!(e, WalError::LsnMismatch { expected: 7, next: 4 }), "{e}");
    let e = wal.append(vec![NewRecord::new(5, 0, "a"), NewRecord::new(4, 0, "b")]).wait().unwrap_err();
    assert!(matches!(e, WalError::TermRegression { lsn: 5, term: 4, last_term: 5 }), "{e}");
    let e = wal.append(vec![NewRecord::new(5, 0, vec![0u8; 2000])]).wait().unwrap_err();
    assert!(matches!(e, WalError::RecordTooLarge { .. }), "{e}");
    assert_eq!(wal.last_lsn(), 3);
    assert_eq!(wal.append(vec![]).wait().unwrap(), 4..4);
    check_records(&wal, 1, 3);
}

#[test]
fn callback_fires_after_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), WalOptions { fsync: true, ..small_opts() }).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let w2 = wal.clone();
    wal.append_with(Some(1), vec![NewRecord::new(1, 0, "hello")], move |r| {
        // Durable means visible to readers too.
        let visible = w2.last_lsn();
        tx.send((r, visible)).unwrap();
    });
    let (r, visible) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(r.unwrap(), 1..2);
    assert_eq!(visible, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_streams_while_writer_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_opts()).unwrap();
    let mut reader: WalReader = wal.reader(1).unwrap();
    let consumer = tokio::spawn(async move {
        let mut n = 0u64;
        while n < 500 {
            let r = reader.next().await.unwrap();
            n += 1;
            assert_eq!(r.lsn, n);
            assert_eq!(r.payload, payload_for(n));
        }
        n
    });
    for _ in 0..50 {
        let next = wal.last_lsn() + 1;
        let recs: Vec<_> = (next..next + 10).map(|l| NewRecord::new(1, (l % 3) as u8, payload_for(l))).collect();
        wal.append(recs).await.unwrap();
        tokio::task::yield_now().await;
    }
    assert_eq!(consumer.await.unwrap(), 500);
}

#[test]
fn truncate_suffix_then_new_term_and_readers_notice() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_opts()).unwrap();
    append_n(&wal, 100, 1);
    let mut ahead = wal.reader(1).unwrap();
    for _ in 0..60 {
        ahead.try_next().unwrap().unwrap();
    }
    let mut behind = wal.reader(1).unwrap();
    for _ in 0..10 {
        behind.try_next().unwrap().unwrap();
    }
    wal.truncate_from(50).wait().unwrap();
    assert_eq!((wal.last_lsn(), wal.last_term()), (49, 1));
    assert!(matches!(ahead.try_next(), Err(WalError::ReaderInvalidated { next: 61, truncated_from: 50 })));
    // A reader that has not reached the cut keeps going, then sees the new records.
    let r = wal.append_at(50, vec![NewRecord::new(2, 9, "new50")]).wait().unwrap();
    assert_eq!(r, 50..51);
    let mut got = Vec::new();
    while let Some(r) = behind.try_next().unwrap() {
        got.push(r);
    }
    assert_eq!(got.len(), 40);
    assert_eq!(got.last().unwrap().payload, "new50");
    // Truncate to the very first record of a segment and to the log start.
    let second = wal.segments()[1].first_lsn;
    wal.truncate_from(second).wait().unwrap();
    assert_eq!(wal.last_lsn(), second - 1);
    check_records(&wal, 1, second - 1);
    wal.truncate_from(1).wait().unwrap();
    assert_eq!(wal.last_lsn(), 0);
    drop(wal);
    let (wal, report) = Wal::open(dir.path(), small_opts()).unwrap();
    assert!(report.actions.is_empty(), "{:?}", report.actions);
    assert_eq!(wal.last_lsn(), 0);
    append_n(&wal, 3, 3);
    check_records(&wal, 1, 3);
}

#[test]
fn truncate_and_commit_guards() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_opts()).unwrap();
    append_n(&wal, 20, 1);
    wal.save_commit(10).unwrap();
    assert!(matches!(wal.truncate_from(10).wait(), Err(WalError::TruncateCommitted { lsn: 10, commit: 10 })));
    assert!(matches!(wal.save_commit(9), Err(WalError::BadCommit { .. })));
    assert!(matches!(wal.save_commit(21), Err(WalError::BadCommit { .. })));
    wal.truncate_from(11).wait().unwrap();
    assert_eq!(wal.last_lsn(), 10);
    wal.truncate_from(99).wait().unwrap(); // past the end: nothing to do
    assert_eq!(wal.last_lsn(), 10);
}

#[test]
fn purge_prefix_deletes_whole_segments_and_beyond_end_resets() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_opts()).unwrap();
    append_n(&wal, 200, 1);
    let before = segment_files(dir.path()).len();
    let t = wal.read_range(120..121).unwrap()[0].term;
    assert!(matches!(wal.purge_through(120, t + 1).wait(), Err(WalError::TermMismatch { .. })));
    wal.purge_through(120, t).wait().unwrap();
    assert_eq!(wal.first_lsn(), 121);
    assert!(segment_files(dir.path()).len() < before);
    assert!(matches!(wal.read_range(120..122), Err(WalError::Purged { lsn: 120, first: 121 })));
    check_records(&wal, 121, 200);
    assert_eq!(wal.log_state().last_purged, Some((120, 1)));
    // Snapshot install: purge past the end.
    wal.purge_through(500, 4).wait().unwrap();
    assert_eq!((wal.first_lsn(), wal.last_lsn(), wal.last_term()), (501, 500, 4));
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert_eq!(wal.append(vec![NewRecord::new(4, 0, "x")]).wait().unwrap(), 501..502);
    drop(wal);
    let (wal, report) = Wal::open(dir.path(), small_opts()).unwrap();
    assert!(report.actions.is_empty(), "{:?}", report.actions);
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (501, 501));
}

#[test]
fn retention_respects_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions { retention_bytes_max: Some(1), ..small_opts() };
    let (wal, _) = Wal::open(dir.path(), opts).unwrap();
    append_n(&wal, 200, 1);
    assert_eq!(wal.apply_retention(SystemTime::now()).unwrap(), None, "floor 0 purges nothing");
    wal.set_purge_floor(100).unwrap();
    let purged = wal.apply_retention(SystemTime::now()).unwrap().unwrap();
    assert!(purged < 100 && purged > 1);
    assert_eq!(wal.first_lsn(), purged + 1);
    check_records(&wal, purged + 1, 200);
}

#[test]
fn meta_persists_and_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_opts()).unwrap();
    append_n(&wal, 5, 3);
    wal.save_vote(3, b"vote-for-n2").unwrap();
    assert!(matches!(wal.save_vote(2, b"old"), Err(WalError::TermRegression { .. })));
    wal.save_commit(4).unwrap();
    wal.set_snapshot(b"{n1,n2,n3}").unwrap();
    wal.set_purge_floor(2).unwrap();
    drop(wal);
    let (wal, report) = Wal::open(dir.path(), small_opts()).unwrap();
    let m = wal.meta();
    assert_eq!((m.term, m.vote.as_deref(), m.commit, m.purge_floor), (3, Some(&b"vote-for-n2"[..]), 4, 2));
    assert_eq!(m.snapshot.as_deref(), Some(&b"{n1,n2,n3}"[..]));
    assert_eq!(report.uncommitted_records, 1);
}

#[test]
fn closed_wal_reports_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_opts()).unwrap();
    let w2 = wal.clone();
    wal.close().unwrap();
    assert!(matches!(w2.append(vec![NewRecord::new(1, 0, "x")]).wait(), Err(WalError::Closed)));
    let _ = Arc::new(w2);
}

#[tokio::test]
async fn waiting_reader_gives_up_when_the_wal_closes() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_opts()).unwrap();
    let mut r = wal.reader(1).unwrap();
    let waiter = tokio::spawn(async move { r.next().await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    tokio::task::spawn_blocking(move || wal.close()).await.unwrap().unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
    assert!(matches!(got, Err(WalError::Closed)), "{got:?}");
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Wal>();
    send::<WalReader>();
    send::<crate::wal::Completion<std::ops::Range<u64>>>();
}

#[test]
fn a_panicking_callback_does_not_stop_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_opts()).unwrap();
    wal.append_with(None, vec![NewRecord::new(1, 0, "a")], |_| panic!("callback bug"));
    assert_eq!(wal.append(vec![NewRecord::new(1, 0, "b")]).wait().unwrap(), 2..3);
    check_records_raw(&wal, &["a", "b"]);
}

fn check_records_raw(wal: &Wal, want: &[&str]) {
    let got = wal.read_range(1..want.len() as u64 + 1).unwrap();
    let got: Vec<_> = got.iter().map(|r| r.payload.clone()).collect();
    assert_eq!(got, want.iter().map(|w| bytes::Bytes::from(w.to_string())).collect::<Vec<_>>());
}
