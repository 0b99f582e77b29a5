//! A minimal raw-protocol client (shoal's own codec) for what common drivers do not send:
//! server-side cursors (COM_STMT_EXECUTE with a cursor flag + COM_STMT_FETCH), unknown
//! commands, and garbage after login.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use shoal::protocol::auth::Credential;
use shoal::protocol::handshake::{backend_hello, parse_server_hello, BACKEND_BASE_CAPABILITIES};
use shoal::protocol::packet::{put_packet, take_packet};
use shoal::protocol::reply::parse_err;
use shoal::protocol::CapabilityFlags;

use crate::harness::{shared, Scratch, Shoal};

pub(crate) struct Raw {
    s: TcpStream,
    buf: BytesMut,
}

impl Raw {
    pub(crate) fn connect(port: u16, user: &str, password: &str, db: &str) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = Raw { s, buf: BytesMut::new() };
        let greeting = r.read();
        let hello = parse_server_hello(&greeting).unwrap();
        let token = Credential::from_password(password.as_bytes()).token(&hello.scramble);
        let caps = BACKEND_BASE_CAPABILITIES | CapabilityFlags::CLIENT_MULTI_RESULTS;
        let reply = backend_hello(caps, 45, user, &token);
        r.write(1, &reply);
        let ok = r.read();
        assert_eq!(ok[0], 0, "login failed: {:?}", parse_err(&ok));
        r.query(&format!("USE {db}"));
        r
    }

    pub(crate) fn read(&mut self) -> BytesMut {
        loop {
            if let Some((_, p)) = take_packet(&mut self.buf, 1 << 30).unwrap() {
                return p;
            }
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn write(&mut self, seq: u8, payload: &[u8]) {
        let mut out = BytesMut::new();
        put_packet(&mut out, seq, payload);
        self.s.write_all(&out).unwrap();
    }

    /// Sends several commands in one write, without waiting for any answer.
    pub(crate) fn commands(&mut self, payloads: &[&[u8]]) {
        let mut out = BytesMut::new();
        for p in payloads {
            put_packet(&mut out, 0, p);
        }
        self.s.write_all(&out).unwrap();
    }

    /// Closes the sending side: the proxy reads end-of-file after the commands sent.
    pub(crate) fn half_close(&self) {
        self.s.shutdown(std::net::Shutdown::Write).unwrap();
    }

    /// True when the proxy closed the connection (after what was read so far).
    pub(crate) fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        self.buf.is_empty() && matches!(self.s.read(&mut b), Ok(0))
    }

    pub(crate) fn command(&mut self, payload: &[u8]) {
        self.write(0, payload);
    }

    /// Runs a text query that answers OK.
    fn query(&mut self, sql: &str) {
        let mut p = vec![0x03];
        p.extend_from_slice(sql.as_bytes());
        self.command(&p);
        let ok = self.read();
        assert_eq!(ok[0], 0, "{sql}: {:?}", parse_err(&ok));
    }

    /// Runs a text query answering one row of one column; returns the value.
    pub(crate) fn value(&mut self, sql: &str) -> Vec<u8> {
        let mut p = vec![0x03];
        p.extend_from_slice(sql.as_bytes());
        self.command(&p);
        let columns = self.read();
        assert_eq!(&columns[..], &[1], "{sql}: {:?}", parse_err(&columns));
        self.until_eof();
        let (rows, _) = self.until_eof();
        assert_eq!(rows.len(), 1, "{sql}: one row");
        // One length-encoded string (short values: one length byte).
        rows[0][1..].to_vec()
    }

    /// Reads packets until an EOF (0xFE, short); returns the packets before it and the
    /// EOF's status flags.
    pub(crate) fn until_eof(&mut self) -> (Vec<BytesMut>, u16) {
        let mut got = Vec::new();
        loop {
            let p = self.read();
            if p[0] == 0xFE && p.len() < 9 {
                return (got, u16::from_le_bytes([p[3], p[4]]));
            }
            assert_ne!(p[0], 0xFF, "error: {:?}", parse_err(&p));
            got.push(p);
        }
    }
}

#[test]
fn server_side_cursor_fetches_in_batches() {
    let db = shared();
    let s = Scratch::new(db, "cursor");
    // One backend connection: the cursor must keep it pinned while another client works.
    let shoal = Shoal::start_with(db, |c| c.limits.pool_connections_max = 2);
    let mut c = Raw::connect(shoal.port(), &s.user, Scratch::PASSWORD, &s.db);
    c.query("CREATE TABLE t (id INT PRIMARY KEY)");
    c.query("INSERT INTO t SELECT seq FROM seq_1_to_10");
    // Prepare.
    let mut p = vec![0x16];
    p.extend_from_slice(b"SELECT id FROM t WHERE id > ? ORDER BY id");
    c.command(&p);
    let ok = c.read();
    assert_eq!(ok[0], 0);
    let stmt = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
    let (params, columns) = (u16::from_le_bytes([ok[7], ok[8]]), u16::from_le_bytes([ok[5], ok[6]]));
    assert_eq!((params, columns), (1, 1));
    c.until_eof(); // parameter definitions
    c.until_eof(); // column definitions
                   // Execute with CURSOR_TYPE_READ_ONLY.
    let mut e = BytesMut::new();
    e.put_u8(0x17);
    e.put_u32_le(stmt);
    e.put_u8(1);
    e.put_u32_le(1);
    e.put_u8(0); // null bitmap
    e.put_u8(1); // types follow
    e.put_u16_le(8); // LONGLONG
    e.put_i64_le(3);
    c.command(&e);
    let count = c.read();
    assert_eq!(count[0], 1, "one column");
    let (_, status) = c.until_eof();
    assert!(status & 0x0040 != 0, "cursor opened (SERVER_STATUS_CURSOR_EXISTS), status {status:#x}");
    // Meanwhile another client keeps working through the other backend connection.
    let mut other = Raw::connect(shoal.port(), &s.user, Scratch::PASSWORD, &s.db);
    other.query("DO 1");
    // Fetch 3 rows at a time until the last row is sent.
    let mut ids = Vec::new();
    loop {
        let mut f = BytesMut::new();
        f.put_u8(0x1C);
        f.put_u32_le(stmt);
        f.put_u32_le(3);
        c.command(&f);
        let (rows, status) = c.until_eof();
        for r in rows {
            // Binary row: 0x00 header, null bitmap (1 byte for 1 column), INT value.
            ids.push(i32::from_le_bytes([r[2], r[3], r[4], r[5]]));
        }
        if status & 0x0080 != 0 {
            break;
        }
        assert!(ids.len() <= 7, "fetch never ended");
    }
    assert_eq!(ids, (4..=10).collect::<Vec<i32>>());
    // Close the statement; the session is free again and still works.
    let mut close = vec![0x19];
    close.extend_from_slice(&stmt.to_le_bytes());
    c.command(&close);
    c.query("DO 2");
}

#[test]
fn unknown_command_gets_an_error_and_the_session_goes_on() {
    let db = shared();
    let s = Scratch::new(db, "rawcmd");
    let shoal = Shoal::start(db);
    let mut c = Raw::connect(shoal.port(), &s.user, Scratch::PASSWORD, &s.db);
    for cmd in [0x0D_u8, 0x12, 0x1E, 0x40, 0xEE] {
        c.command(&[cmd, 1, 2, 3]);
        let e = c.read();
        assert_eq!(parse_err(&e).map(|(code, _)| code), Some(1047), "command {cmd:#x}");
    }
    // An execute for a statement that does not exist.
    c.command(&[0x17, 9, 9, 9, 9, 0, 1, 0, 0, 0]);
    let e = c.read();
    assert_eq!(parse_err(&e).map(|(code, _)| code), Some(1243));
    c.query("DO 1");
}

#[test]
fn field_list_and_statistics() {
    let db = shared();
    let s = Scratch::new(db, "fieldlist");
    let shoal = Shoal::start(db);
    let mut c = Raw::connect(shoal.port(), &s.user, Scratch::PASSWORD, &s.db);
    c.query("CREATE TABLE t (a INT, bee VARCHAR(3))");
    let mut p = vec![0x04];
    p.extend_from_slice(b"t\0");
    c.command(&p);
    let (defs, _) = c.until_eof();
    assert_eq!(defs.len(), 2);
    assert!(defs[1].windows(3).any(|w| w == b"bee"));
    c.command(&[0x09]);
    let stats = c.read();
    assert!(String::from_utf8_lossy(&stats).contains("Uptime"), "{stats:?}");
    c.query("DO 1");
}
