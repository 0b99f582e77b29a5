//! TLS, LOAD DATA LOCAL INFILE, COM_CHANGE_USER and COM_RESET_CONNECTION through shoal.

use mysql_async::prelude::*;
use mysql_async::Conn;

use crate::harness::{mariadb_cli, shared, Scratch, Shoal};

/// A self-signed certificate and key written as PEM files.
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    (c, k)
}

/// A shoal with TLS on (a self-signed certificate written to `dir`) and `tweak` applied.
fn tls_shoal(dir: &std::path::Path, tweak: impl FnOnce(&mut shoal::config::Config)) -> Shoal {
    let (cert, key) = self_signed(dir);
    Shoal::start_with(shared(), |c| {
        c.tls.cert_file = Some(cert);
        c.tls.key_file = Some(key);
        tweak(c);
    })
}

#[test]
fn tls_clients_and_require_secure_transport() {
    let s = Scratch::new(shared(), "tls");
    let dir = tempfile::tempdir().unwrap();
    let shoal = tls_shoal(dir.path(), |c| c.tls.require_secure_transport = true);
    // The CLI's status shows the cipher when the session runs over TLS.
    let (ok, out, err) = mariadb_cli(
        shoal.port(),
        &s.user,
        Scratch::PASSWORD,
        &["--ssl", "--ssl-verify-server-cert=0", "-D", &s.db, "-e", "\\s"],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("Cipher in use is TLS"), "{out}");
    let (ok, out, err) = mariadb_cli(
        shoal.port(),
        &s.user,
        Scratch::PASSWORD,
        &["--ssl", "--ssl-verify-server-cert=0", "-N", "-e", "SELECT REPEAT('t', 100000)"],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim().len(), 100_000);
    // Without TLS the proxy refuses, as MariaDB does with require_secure_transport.
    let (ok, _, err) = mariadb_cli(shoal.port(), &s.user, Scratch::PASSWORD, &["--skip-ssl", "-e", "SELECT 1"], None);
    assert!(!ok);
    assert!(err.contains("3159") && err.contains("insecure transport"), "{err}");
}

#[test]
fn tls_clients_read_through_pipes() {
    // A TLS client's pipelined reads come back through its session (the pipe cannot
    // write to a TLS stream): many small reads and a streamed one, in order.
    let s = Scratch::new(shared(), "tlspipe");
    let dir = tempfile::tempdir().unwrap();
    let shoal = tls_shoal(dir.path(), |c| c.limits.pipe_stall_ms = 600_000);
    let mut script: String = (1..=200).map(|i| format!("SELECT {i} * 3;\n")).collect();
    script.push_str("SELECT LENGTH(REPEAT('t', 100000)), REPEAT('t', 100000) = REPEAT('t', 100000);\n");
    let (ok, out, err) = mariadb_cli(
        shoal.port(),
        &s.user,
        Scratch::PASSWORD,
        &["--ssl", "--ssl-verify-server-cert=0", "-N", "-D", &s.db],
        Some(&script),
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let want: Vec<String> = (1..=200).map(|i| (i * 3).to_string()).collect();
    assert_eq!(lines[..200], want.iter().map(String::as_str).collect::<Vec<_>>()[..]);
    assert_eq!(lines[200], "100000\t1");
    let pipes: usize = shoal.proxy.pools.all().iter().map(|p| p.pipes_ready()).sum();
    assert!(pipes >= 1, "the reads opened a pipe");
}

#[test]
fn load_data_local_infile_round_trip() {
    let db = shared();
    let s = Scratch::new(db, "infile");
    let shoal = Shoal::start(db);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rows.csv");
    let rows: String = (1..=5000).map(|i| format!("{i},name-{i}\n")).collect();
    std::fs::write(&file, rows).unwrap();
    let sql = format!(
        "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20)); \
         LOAD DATA LOCAL INFILE '{}' INTO TABLE t FIELDS TERMINATED BY ','; \
         SELECT COUNT(*), SUM(id), MAX(name) FROM t;",
        file.display()
    );
    let (ok, out, err) = mariadb_cli(
        shoal.port(),
        &s.user,
        Scratch::PASSWORD,
        &["--local-infile=1", "-D", &s.db, "-N", "-e", &sql],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "5000\t12502500\tname-999");
    // A missing file is the client's error, reported exactly as with a direct connection,
    // and the backend connection it used stays usable for the next client.
    let sql = "LOAD DATA LOCAL INFILE '/nonexistent/x.csv' INTO TABLE t";
    let args = ["--local-infile=1", "-D", &s.db, "-N", "-e", sql];
    let (ok_proxy, _, err_proxy) = mariadb_cli(shoal.port(), &s.user, Scratch::PASSWORD, &args, None);
    let (ok_direct, _, err_direct) = mariadb_cli(db.port, &s.user, Scratch::PASSWORD, &args, None);
    assert!(!ok_proxy && !ok_direct);
    assert_eq!(err_proxy, err_direct);
    let (ok, out, err) = mariadb_cli(
        shoal.port(),
        &s.user,
        Scratch::PASSWORD,
        &["-D", &s.db, "-N", "-e", "SELECT COUNT(*) FROM t"],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "5000");
}

#[tokio::test]
async fn change_user_and_reset_connection() {
    let db = shared();
    let a = Scratch::new(db, "cu_a");
    let b = Scratch::new(db, "cu_b");
    let shoal = Shoal::start(db);
    let mut c = Conn::new(shoal.opts(&a.user, Scratch::PASSWORD, Some(&a.db))).await.unwrap();
    c.query_drop("SET @v = 5").await.unwrap();
    c.query_drop("CREATE TEMPORARY TABLE tmp (x INT)").await.unwrap();
    c.query_drop("SET time_zone = '+02:00'").await.unwrap();
    let v: Option<i64> = c.query_first("SELECT @v").await.unwrap().unwrap();
    assert_eq!(v, Some(5));
    // COM_RESET_CONNECTION: user variables, temporary tables and session variables go.
    c.reset().await.unwrap();
    let v: Option<i64> = c.query_first("SELECT @v").await.unwrap().unwrap();
    assert_eq!(v, None);
    assert!(c.query_drop("SELECT * FROM tmp").await.is_err());
    let tz: String = c.query_first("SELECT @@time_zone").await.unwrap().unwrap();
    assert_eq!(tz, "SYSTEM");
    // COM_CHANGE_USER to another account and schema.
    let opts = mysql_async::ChangeUserOpts::default()
        .with_user(Some(b.user.clone()))
        .with_pass(Some(Scratch::PASSWORD.to_string()))
        .with_db_name(Some(b.db.clone()));
    c.change_user(opts).await.unwrap();
    let (user, schema): (String, String) = c.query_first("SELECT CURRENT_USER(), DATABASE()").await.unwrap().unwrap();
    assert_eq!(user, format!("{}@%", b.user));
    assert_eq!(schema, b.db);
    // A wrong password is refused.
    let bad =
        mysql_async::ChangeUserOpts::default().with_user(Some(a.user.clone())).with_pass(Some("nope".to_string()));
    let e = c.change_user(bad).await.unwrap_err();
    assert!(e.to_string().contains("Access denied"), "{e}");
}

/// A balancer in front of shoal: accepts one client, connects to shoal, sends `header`
/// first, then relays both ways. Returns the address clients connect to.
async fn balancer(shoal_port: u16, header: Vec<u8>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let header = header.clone();
            tokio::spawn(async move {
                let mut upstream = tokio::net::TcpStream::connect(("127.0.0.1", shoal_port)).await.unwrap();
                tokio::io::AsyncWriteExt::write_all(&mut upstream, &header).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    port
}

fn opts_on(port: u16, user: &str, password: &str) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .prefer_socket(false)
        .into()
}

/// PROXY protocol v1 and v2 from a trusted balancer: the client's real address is what
/// `SHOW PROCESSLIST` and a refused login show; a header from an untrusted peer is refused;
/// a client without a header still logs in.
#[tokio::test]
async fn proxy_protocol_headers_name_the_real_client() {
    let db = shared();
    let s = Scratch::new(db, "ppp");
    let shoal = Shoal::start_with(db, |c| c.proxy.proxy_protocol = true);
    let v1 = balancer(shoal.port(), b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 8007\r\n".to_vec()).await;
    let mut c =
        mysql_async::Conn::new(opts_on(v1, &s.user, Scratch::PASSWORD)).await.expect("login through a v1 balancer");
    let hosts: Vec<String> =
        c.query_map("SHOW PROCESSLIST", |row: mysql_async::Row| row.get::<String, _>(2).unwrap()).await.unwrap();
    assert!(hosts.contains(&"203.0.113.7:51000".to_string()), "{hosts:?}");
    c.disconnect().await.unwrap();
    match mysql_async::Conn::new(opts_on(v1, &s.user, "wrong")).await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 1045);
            assert!(e.message.contains(&format!("'{}'@'203.0.113.7'", s.user)), "{}", e.message);
        }
        other => panic!("a wrong password logged in: {other:?}"),
    }
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[0x21, 0x11, 0, 12, 198, 51, 100, 9, 10, 0, 0, 1, 0xC3, 0x50, 0x1F, 0x47]);
    let v2 = balancer(shoal.port(), v2).await;
    let mut c =
        mysql_async::Conn::new(opts_on(v2, &s.user, Scratch::PASSWORD)).await.expect("login through a v2 balancer");
    let hosts: Vec<String> =
        c.query_map("SHOW PROCESSLIST", |row: mysql_async::Row| row.get::<String, _>(2).unwrap()).await.unwrap();
    assert!(hosts.contains(&"198.51.100.9:50000".to_string()), "{hosts:?}");
    c.disconnect().await.unwrap();
    // No header: the connection's own address.
    let mut c =
        mysql_async::Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, None)).await.expect("login without a header");
    let n: i64 = c.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(n, 1);
    c.disconnect().await.unwrap();
    // A balancer shoal does not trust.
    let strict = Shoal::start_with(db, |c| {
        c.proxy.proxy_protocol = true;
        c.proxy.proxy_protocol_networks = vec!["10.0.0.0/8".into()];
    });
    let untrusted = balancer(strict.port(), b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 8007\r\n".to_vec()).await;
    match mysql_async::Conn::new(opts_on(untrusted, &s.user, Scratch::PASSWORD)).await {
        Err(mysql_async::Error::Server(e)) => {
            assert!(e.message.contains("Proxy header is not accepted from 127.0.0.1"), "{}", e.message)
        }
        other => panic!("an untrusted PROXY header was accepted: {other:?}"),
    }
}
