//! Unit tests of `binlog.rs` over synthetic events (header, body, dummy CRC).

use super::*;

/// An event: header (server 1) + body + a CRC placeholder when `crc`.
fn ev(kind: u8, log_pos: u32, flags: u16, body: &[u8], crc: bool) -> Vec<u8> {
    let size = EVENT_HEADER_BYTES + body.len() + if crc { CRC_BYTES } else { 0 };
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out.extend_from_slice(&log_pos.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(body);
    if crc {
        out.extend_from_slice(&[0xAA; 4]);
    }
    out
}

/// A Format_description with checksum `alg` (1 = CRC32, 0 = off).
fn fd(alg: u8) -> Vec<u8> {
    let mut body = vec![4, 0];
    body.extend_from_slice(&[b'x'; 50]);
    body.extend_from_slice(&[0; 4]);
    body.push(19);
    let mut post = vec![0u8; 170];
    post[kind::QUERY as usize - 1] = 13;
    post[kind::WRITE_ROWS_V1 as usize - 1] = 8;
    post[kind::UPDATE_ROWS_V1 as usize - 1] = 8;
    post[kind::WRITE_ROWS_V2 as usize - 1] = 10;
    body.extend_from_slice(&post);
    body.push(alg);
    // The FD always carries its CRC field.
    ev(kind::FORMAT_DESCRIPTION, 0, 0, &body, true)
}

fn gtid_body(seq: u64, flags2: u8, commit_id: Option<u64>, xid: Option<(&[u8], &[u8])>) -> Vec<u8> {
    let mut b = seq.to_le_bytes().to_vec();
    b.extend_from_slice(&0u32.to_le_bytes());
    b.push(flags2);
    if let Some(c) = commit_id {
        b.extend_from_slice(&c.to_le_bytes());
    }
    if let Some((g, q)) = xid {
        b.extend_from_slice(&1u32.to_le_bytes());
        b.push(g.len() as u8);
        b.push(q.len() as u8);
        b.extend_from_slice(g);
        b.extend_from_slice(q);
    } else if commit_id.is_none() {
        b.extend_from_slice(&[0; 6]);
    }
    b
}

fn query_body(db: &str, sql: &str) -> Vec<u8> {
    let mut b = vec![0u8; 13];
    b[..4].copy_from_slice(&42u32.to_le_bytes()); // thread id
    b[8] = db.len() as u8;
    b[11] = 3; // status vars length
    b.extend_from_slice(&[0x00, 0x01, 0x02]);
    b.extend_from_slice(db.as_bytes());
    b.push(0);
    b.extend_from_slice(sql.as_bytes());
    b
}

fn rows_body(end: bool) -> Vec<u8> {
    let mut b = vec![7, 0, 0, 0, 0, 0];
    b.extend_from_slice(&(if end { STMT_END_F } else { 0 }).to_le_bytes());
    b.extend_from_slice(b"row-image");
    b
}

fn feed(g: &mut Grouper, events: &[Vec<u8>]) -> Vec<Step> {
    events.iter().map(|e| g.on_event(e).unwrap()).filter(|s| *s != Step::Nothing).collect()
}

const PREPARED: u8 = 0x4c; // TRANSACTIONAL | ALLOW_PARALLEL | PREPARED_XA, as measured
const COMPLETED: u8 = 0x8d; // STANDALONE | TRANSACTIONAL | ALLOW_PARALLEL | COMPLETED_XA

#[test]
fn gtid_decodes_flags_and_xid_with_and_without_commit_id() {
    let h = Header { kind: kind::GTID, server_id: 7, event_size: 0, log_pos: 0, flags: 0 };
    let g = Gtid::parse(&h, &gtid_body(5, PREPARED, None, Some((b"shoal-1", b"bq")))).unwrap();
    assert_eq!(g.text(), "0-7-5");
    assert_eq!(g.xid, Some(Xid { format_id: 1, gtrid: b"shoal-1".to_vec(), bqual: b"bq".to_vec() }));
    assert_eq!(g.shoal_xid().as_deref(), Some("shoal-1"));

    let g =
        Gtid::parse(&h, &gtid_body(9, PREPARED | gtid_flag::GROUP_COMMIT_ID, Some(77), Some((b"x1", b"")))).unwrap();
    assert_eq!(g.xid.as_ref().unwrap().gtrid, b"x1");
    assert_eq!(g.shoal_xid(), None, "not shoal's prefix");

    let g = Gtid::parse(&h, &gtid_body(10, COMPLETED, None, Some((b"shoal-1", b"")))).unwrap();
    assert_eq!(g.shoal_xid(), None, "XA COMMIT is not the prepared part");

    let g = Gtid::parse(&h, &gtid_body(11, 0x0c, None, None)).unwrap();
    assert_eq!(g.xid, None);
    assert!(Gtid::parse(&h, &gtid_body(5, PREPARED, None, Some((b"shoal-1", b"")))[..18]).is_err());
}

#[test]
fn prepared_xa_becomes_one_prepared_with_statements_split_at_stmt_end() {
    let mut g = Grouper::new(true);
    let (tm1, tm2) = (ev(kind::TABLE_MAP, 300, 0, b"t", true), ev(kind::TABLE_MAP, 340, 0, b"audit", true));
    let (w1, w2) = (
        ev(kind::WRITE_ROWS_V1, 400, 0, &rows_body(false), true),
        ev(kind::WRITE_ROWS_V1, 450, 0, &rows_body(true), true),
    );
    let u = ev(kind::UPDATE_ROWS_V2, 600, 0, &rows_body(true), true);
    let tm3 = ev(kind::TABLE_MAP, 550, 0, b"t", true);
    let events = vec![
        fd(1),
        ev(kind::GTID, 200, 0, &gtid_body(5, PREPARED, None, Some((b"shoal-t-1", b""))), true),
        ev(kind::ANNOTATE_ROWS, 250, 0, b"INSERT INTO t ...", true),
        tm1.clone(),
        tm2.clone(),
        w1.clone(),
        w2.clone(),
        ev(kind::QUERY, 500, 0, &query_body("app", "SAVEPOINT `sp1`"), true),
        tm3.clone(),
        u.clone(),
        ev(kind::QUERY, 700, 0, &query_body("app", "XA END X'73',X'',1"), true),
        ev(kind::XA_PREPARE, 780, 0, b"xa prepare body", true),
    ];
    let steps = feed(&mut g, &events);
    let rows = RowsEntry {
        origin: Origin::Captured { xid: "shoal-t-1".into() },
        format: fd(1),
        statements: vec![[tm1, tm2, w1, w2].concat(), [tm3, u].concat()],
    };
    let want = Captured::Prepared { gtid: "0-1-5".into(), xid: "shoal-t-1".into(), rows };
    assert_eq!(steps, vec![Step::Group { captured: want, end: 780 }]);
    assert!(!g.in_group());
}

#[test]
fn plain_and_foreign_xa_transactions_are_unmanaged_empty_ones_skipped() {
    let mut g = Grouper::new(true);
    let w = ev(kind::WRITE_ROWS_V2, 400, 0, &rows_body(true), true);
    let tm = ev(kind::TABLE_MAP, 350, 0, b"t", true);
    let steps = feed(
        &mut g,
        &[
            fd(1),
            ev(kind::GTID, 300, 0, &gtid_body(6, 0x0c, None, None), true),
            tm.clone(),
            w.clone(),
            ev(kind::XID, 430, 0, &[1; 8], true),
            ev(kind::GTID, 480, 0, &gtid_body(7, PREPARED, None, Some((b"other", b"")))[..], true),
            tm.clone(),
            w.clone(),
            ev(kind::XA_PREPARE, 600, 0, b"p", true),
            ev(kind::GTID, 650, 0, &gtid_body(8, 0x0c, None, None), true),
            ev(kind::QUERY, 700, 0, &query_body("", "COMMIT"), true),
        ],
    );
    let unmanaged = |gtid: &str| Captured::Unmanaged {
        gtid: gtid.into(),
        rows: RowsEntry {
            origin: Origin::Unmanaged { gtid: gtid.into() },
            format: fd(1),
            statements: vec![[tm.clone(), w.clone()].concat()],
        },
    };
    assert_eq!(
        steps,
        vec![
            Step::Group { captured: unmanaged("0-1-6"), end: 430 },
            Step::Group { captured: unmanaged("0-1-7"), end: 600 },
            Step::Group { captured: Captured::Skipped { gtid: "0-1-8".into() }, end: 700 },
        ]
    );
}

#[test]
fn standalone_query_is_a_statement_and_xa_commit_is_skipped() {
    let mut g = Grouper::new(true);
    let steps = feed(
        &mut g,
        &[
            fd(1),
            ev(kind::GTID, 100, 0, &gtid_body(1, 0x21, None, None), true),
            ev(kind::QUERY, 200, 0, &query_body("app", "CREATE TABLE t (id INT)"), true),
            ev(kind::GTID, 250, 0, &gtid_body(2, 0x21, None, None), true),
            ev(kind::QUERY, 300, 0, &query_body("", "/*shoal:abc-1*/ CREATE TABLE u (id INT)"), true),
            ev(kind::GTID, 350, 0, &gtid_body(3, COMPLETED, None, Some((b"shoal-t-1", b""))), true),
            ev(kind::QUERY, 400, 0, &query_body("app", "XA COMMIT X'73',X'',1"), true),
        ],
    );
    assert_eq!(
        steps,
        vec![
            Step::Group {
                captured: Captured::Statement {
                    gtid: "0-1-1".into(),
                    id: None,
                    thread_id: 42,
                    schema: Some("app".into()),
                    sql: "CREATE TABLE t (id INT)".into(),
                    rows: None,
                },
                end: 200
            },
            Step::Group {
                captured: Captured::Statement {
                    gtid: "0-1-2".into(),
                    id: Some("abc-1".into()),
                    thread_id: 42,
                    schema: None,
                    sql: "/*shoal:abc-1*/ CREATE TABLE u (id INT)".into(),
                    rows: None,
                },
                end: 300
            },
            Step::Group { captured: Captured::Skipped { gtid: "0-1-3".into() }, end: 400 },
        ]
    );
}

#[test]
fn rotates_are_reported_control_events_are_not() {
    let mut g = Grouper::new(true);
    let mut rot = 4u64.to_le_bytes().to_vec();
    rot.extend_from_slice(b"mariadb-bin.000002");
    let steps = feed(
        &mut g,
        &[
            ev(kind::ROTATE, 0, 0x20, &rot[..], true),
            fd(1),
            ev(kind::GTID_LIST, 300, 0, b"list", true),
            ev(kind::BINLOG_CHECKPOINT, 350, 0, b"cp", true),
            ev(kind::HEARTBEAT, 350, 0, b"mariadb-bin.000001", true),
            ev(kind::ROTATE, 400, 0, &rot, true),
        ],
    );
    let rotate = Step::Rotate { file: "mariadb-bin.000002".into(), pos: 4 };
    assert_eq!(steps, vec![rotate.clone(), rotate]);
    // A fake Rotate before any Format_description on a connection without checksums.
    let mut g = Grouper::new(false);
    assert_eq!(
        g.on_event(&ev(kind::ROTATE, 0, 0x20, &rot, false)).unwrap(),
        Step::Rotate { file: "mariadb-bin.000002".into(), pos: 4 }
    );
}

#[test]
fn checksum_off_bodies_are_read_without_a_crc() {
    let mut g = Grouper::new(true);
    g.on_event(&fd(0)).unwrap();
    g.on_event(&ev(kind::GTID, 100, 0, &gtid_body(1, 0x21, None, None), false)).unwrap();
    let step = g.on_event(&ev(kind::QUERY, 200, 0, &query_body("d", "DROP TABLE x"), false)).unwrap();
    let Step::Group { captured: Captured::Statement { sql, .. }, .. } = step else { panic!("{step:?}") };
    assert_eq!(sql, "DROP TABLE x");
}

#[test]
fn events_out_of_place_are_errors() {
    let mut g = Grouper::new(true);
    g.on_event(&fd(1)).unwrap();
    g.on_event(&ev(kind::GTID, 100, 0, &gtid_body(1, 0x0c, None, None), true)).unwrap();
    let again = g.on_event(&ev(kind::GTID, 200, 0, &gtid_body(2, 0x0c, None, None), true));
    assert!(matches!(again, Err(GroupError::OutOfPlace { kind: kind::GTID, .. })), "{again:?}");
    let short = g.on_event(&[0u8; 10]);
    assert!(matches!(short, Err(GroupError::Malformed { .. })));
    let mut bad_size = ev(kind::XID, 100, 0, &[0; 8], true);
    bad_size.push(0);
    assert!(matches!(g.on_event(&bad_size), Err(GroupError::Malformed { .. })));
    let compressed = g.on_event(&ev(kind::QUERY_COMPRESSED, 100, 0, &[0; 20], true));
    assert!(matches!(compressed, Err(GroupError::Unsupported { .. })));
}

#[test]
fn statement_id_reads_the_leading_mark_only() {
    assert_eq!(statement_id("/*shoal:abc-1*/ CREATE TABLE t (a INT)").as_deref(), Some("abc-1"));
    assert_eq!(statement_id("  /*shoal:7-2-9*/ALTER TABLE t ADD b INT").as_deref(), Some("7-2-9"));
    assert_eq!(statement_id("CREATE TABLE t (a INT) /*shoal:x*/"), None);
    assert_eq!(statement_id("/*shoal:unterminated CREATE TABLE t"), None);
}
