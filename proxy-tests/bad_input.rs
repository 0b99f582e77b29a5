//! Bad input: garbage, truncated and oversized frames get an error or a clean close, and
//! the proxy keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use mysql_async::prelude::*;

use crate::harness::{shared, Scratch, Shoal};

fn read_some(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return out,
        }
    }
}

#[tokio::test]
async fn garbage_handshakes_do_not_hurt_other_clients() {
    let db = shared();
    let s = Scratch::new(db, "bad");
    let shoal = Shoal::start_with(db, |c| c.limits.handshake_timeout_ms = 2000);
    let mut good = mysql_async::Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await.unwrap();
    let cases: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0xFF, 0xFF, 0xFF, 0x01, 1, 2, 3],       // claims 16 MiB, sends 3 bytes
        vec![5, 0, 0, 1, 0, 0, 0, 0, 0],             // a 5-byte "handshake response"
        vec![0x20, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF], // SSLRequest-sized but truncated
        (0..200u8).collect(),
        vec![],
    ];
    for case in &cases {
        let mut raw = TcpStream::connect(shoal.addr).unwrap();
        let mut greeting = [0u8; 4];
        raw.read_exact(&mut greeting).unwrap();
        let _ = raw.write_all(case);
        let _ = raw.shutdown(std::net::Shutdown::Write);
        let reply = read_some(&mut raw);
        // Either a clean close or an ERR packet after the rest of the greeting.
        if let Some(err_at) = reply.windows(3).position(|w| w == [0xFF, 0x13, 0x04] || w == [0xFF, 0x15, 0x04]) {
            assert!(err_at > 0);
        }
        let v: i64 = good.query_first("SELECT 1").await.unwrap().unwrap();
        assert_eq!(v, 1, "healthy client broke after case {case:?}");
    }
    good.disconnect().await.unwrap();
}

#[tokio::test]
async fn oversized_and_unknown_commands_after_login() {
    let db = shared();
    let s = Scratch::new(db, "big_cmd");
    let shoal = Shoal::start_with(db, |c| c.limits.packet_bytes_max = 1024 * 1024);
    let mut c = mysql_async::Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await.unwrap();
    // Like MariaDB, shoal answers 1153 and closes; the client may see the error or, if it
    // is still writing, the closed socket.
    let e = c.query_drop(format!("SELECT '{}'", "x".repeat(2 * 1024 * 1024))).await.unwrap_err();
    let e = e.to_string();
    assert!(e.contains("max_allowed_packet") || e.contains("Broken pipe") || e.contains("Connection reset"), "{e}");
    // Others keep working.
    let mut other = mysql_async::Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await.unwrap();
    let v: i64 = other.query_first("SELECT 2").await.unwrap().unwrap();
    assert_eq!(v, 2);
    other.disconnect().await.unwrap();
}
