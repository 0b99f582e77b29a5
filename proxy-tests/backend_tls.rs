//! TLS from shoal to its backends (`[backends] tls`), against real `mariadbd` servers
//! started with certificates made here by rcgen: a CA, a server certificate for
//! `localhost`/`127.0.0.1`, one for `other.example` signed by the same CA, and a second,
//! unrelated CA. Servers run with `require_secure_transport = ON`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::Conn;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use shoal::backend::conn::{BackendConn, Target};
use shoal::backend::tls::BackendTls;
use shoal::config::{BackendTlsMode, BackendsSection, Config, UserEntry};
use shoal::protocol::auth::Credential;
use shoal::protocol::handshake::BACKEND_BASE_CAPABILITIES;

use crate::harness::{MariaDb, Scratch, Shoal};

/// PEM files of the test PKI.
pub(crate) struct Pki {
    /// Kept so the files live as long as the test.
    _dir: tempfile::TempDir,
    /// The CA that signed both server certificates.
    pub(crate) ca: PathBuf,
    /// A CA that signed nothing here.
    other_ca: PathBuf,
    /// Server certificate and key for `localhost` and `127.0.0.1`.
    pub(crate) local: (PathBuf, PathBuf),
    /// Server certificate and key for `other.example` only.
    other_name: (PathBuf, PathBuf),
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    (p.self_signed(&key).unwrap(), key)
}

fn write(dir: &Path, name: &str, pem: String) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (ca_cert, ca_key) = ca("shoal test CA");
        let (other_cert, _) = ca("unrelated CA");
        let server = |names: Vec<String>, ip: Option<IpAddr>, tag: &str| {
            let mut p = CertificateParams::new(names).unwrap();
            p.distinguished_name.push(DnType::CommonName, tag);
            if let Some(ip) = ip {
                p.subject_alt_names.push(SanType::IpAddress(ip));
            }
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &ca_cert, &ca_key).unwrap();
            (write(d, &format!("{tag}.pem"), cert.pem()), write(d, &format!("{tag}-key.pem"), key.serialize_pem()))
        };
        let local = server(vec!["localhost".into()], Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), "local");
        let other_name = server(vec!["other.example".into()], None, "other");
        Pki {
            ca: write(d, "ca.pem", ca_cert.pem()),
            other_ca: write(d, "other-ca.pem", other_cert.pem()),
            local,
            other_name,
            _dir: dir,
        }
    }
}

/// A server with TLS from `cert` and `require_secure_transport = ON`, and a scratch
/// account (created before plain TCP is refused: the harness talks plain TCP).
pub(crate) fn tls_server(pki: &Pki, cert: &(PathBuf, PathBuf)) -> (MariaDb, Scratch) {
    let args = [
        format!("--ssl-ca={}", pki.ca.display()),
        format!("--ssl-cert={}", cert.0.display()),
        format!("--ssl-key={}", cert.1.display()),
    ];
    let db = MariaDb::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let s = Scratch::new(&db, "btls");
    assert_eq!(db.sql("SELECT @@have_ssl").trim(), "YES", "the server did not load its certificate");
    db.sql("SET GLOBAL require_secure_transport = ON");
    (db, s)
}

/// The backend TLS settings of `mode` with `ca`.
fn settings(mode: BackendTlsMode, ca: Option<&Path>) -> BackendsSection {
    BackendsSection { tls: mode, tls_ca_file: ca.map(Path::to_path_buf), ..BackendsSection::default() }
}

/// A login as root straight from [`BackendConn::connect`], to read its exact error.
async fn connect(addr: &str, b: &BackendsSection) -> Result<BackendConn, String> {
    let target = Target {
        addr: addr.into(),
        user: "root".into(),
        credential: Credential::from_password(b""),
        capabilities: BACKEND_BASE_CAPABILITIES,
        collation: 45,
        connect_timeout: Duration::from_secs(10),
        relayed: None,
        tls: BackendTls::from_config(b).map_err(|e| e.to_string())?,
    };
    BackendConn::connect(&target).await.map_err(|e| e.to_string())
}

/// Shoal in front of `db` with `b`'s TLS settings; the scratch account is verified by
/// shoal itself ([users]), so a backend that cannot be reached shows its own error.
fn shoal(db: &MariaDb, s: &Scratch, b: &BackendsSection, service_account: bool) -> Shoal {
    let b = b.clone();
    let (user, password) = (s.user.clone(), Scratch::PASSWORD.to_string());
    Shoal::start_with(db, move |c: &mut Config| {
        c.backends.tls = b.tls;
        c.backends.tls_ca_file = b.tls_ca_file;
        if !service_account {
            c.backends.user.clear();
        }
        c.users.insert(user, UserEntry { password: Some(password), ..UserEntry::default() });
    })
}

/// The cipher of the backend session a query through shoal runs on.
async fn backend_cipher(shoal: &Shoal, s: &Scratch) -> Result<String, mysql_async::Error> {
    let mut c = Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await?;
    c.query_drop("CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY)").await?;
    c.query_drop("REPLACE INTO t VALUES (1)").await?;
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM t").await?;
    assert_eq!(n, Some(1));
    let row: Option<(String, String)> = c.query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'").await?;
    c.disconnect().await?;
    Ok(row.map(|r| r.1).unwrap_or_default())
}

#[tokio::test]
async fn required_encrypts_and_disabled_is_refused_by_require_secure_transport() {
    let pki = Pki::new();
    let (db, s) = tls_server(&pki, &pki.local);

    let plain = settings(BackendTlsMode::Disabled, None);
    let e = connect(&db.addr(), &plain).await.expect_err("plain login refused");
    // MariaDB answers a plain login under require_secure_transport with 1045 (MySQL has
    // 3159); shoal adds that TLS may be what is missing.
    let hint = "this login ran without TLS, which the server offers: if it requires secure transport, set \
                backends.tls = \"required\"";
    assert!(e.contains("Access denied for user 'root'") && e.contains(hint), "{e}");
    let proxy = shoal(&db, &s, &plain, false);
    let e = backend_cipher(&proxy, &s).await.expect_err("served over a refused backend").to_string();
    assert!(e.contains("Access denied") && e.contains(hint), "{e}");
    drop(proxy);

    let required = settings(BackendTlsMode::Required, None);
    let conn = connect(&db.addr(), &required).await.expect("TLS login");
    assert!(conn.is_tls());
    // With the service account (root): account loading and health checks run over TLS too.
    let proxy = shoal(&db, &s, &required, true);
    let cipher = backend_cipher(&proxy, &s).await.expect("queries over TLS");
    assert!(!cipher.is_empty(), "the backend session has no cipher");
    assert!(proxy.proxy.users.service().is_some());
    // Plain reads go through pipes, whose connections are TLS too: small reads in order,
    // and one response larger than a read chunk, streamed.
    let mut c = Conn::new(proxy.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await.unwrap();
    for i in 1..=200i64 {
        let v: Option<i64> = c.query_first(format!("SELECT {i} * 3")).await.unwrap();
        assert_eq!(v, Some(i * 3));
    }
    let big: Option<String> = c.query_first("SELECT REPEAT('t', 200000)").await.unwrap();
    assert_eq!(big.map(|b| b.len()), Some(200_000));
    let pipes: usize = proxy.proxy.pools.all().iter().map(|p| p.pipes_ready()).sum();
    assert!(pipes >= 1, "the reads opened a pipe");
}

#[tokio::test]
async fn verify_ca_accepts_the_right_ca_and_names_the_wrong_one() {
    let pki = Pki::new();
    // The certificate names other.example: verify_ca does not look at names.
    let (db, s) = tls_server(&pki, &pki.other_name);
    let right = settings(BackendTlsMode::VerifyCa, Some(&pki.ca));
    assert!(connect(&db.addr(), &right).await.expect("chain verified").is_tls());
    // No service account: mysql_async (account loading, health checks) cannot waive the
    // name check with rustls 0.23.46, so its verify_ca checks the name too (a known limit).
    let proxy = shoal(&db, &s, &right, false);
    assert!(!backend_cipher(&proxy, &s).await.expect("queries over TLS").is_empty());

    let wrong = settings(BackendTlsMode::VerifyCa, Some(&pki.other_ca));
    let e = connect(&db.addr(), &wrong).await.expect_err("unknown issuer refused");
    assert!(e.contains("TLS handshake with 127.0.0.1 failed") && e.contains("UnknownIssuer"), "{e}");
    assert!(e.contains("backends.tls_ca_file") && e.contains("other-ca.pem"), "{e}");
    let proxy = shoal(&db, &s, &wrong, false);
    let e = backend_cipher(&proxy, &s).await.expect_err("served over an unverified backend").to_string();
    assert!(e.contains("UnknownIssuer"), "{e}");
    drop(proxy);
    // With the service account, the health check fails first and says what to check.
    let proxy = shoal(&db, &s, &wrong, true);
    let e = backend_cipher(&proxy, &s).await.expect_err("served over an unverified backend").to_string();
    assert!(e.contains("is down") && e.contains("is backends.tls_ca_file") && e.contains("other-ca.pem"), "{e}");
}

#[tokio::test]
async fn verify_identity_checks_the_host_name() {
    let pki = Pki::new();
    let (wrong_name, _) = tls_server(&pki, &pki.other_name);
    let b = settings(BackendTlsMode::VerifyIdentity, Some(&pki.ca));
    let e = connect(&wrong_name.addr(), &b).await.expect_err("name mismatch refused");
    assert!(e.contains("does not name \"127.0.0.1\""), "{e}");
    assert!(e.contains("verify_ca"), "{e}");

    let (db, s) = tls_server(&pki, &pki.local);
    assert!(connect(&db.addr(), &b).await.expect("IP SAN matches").is_tls());
    let by_name = format!("localhost:{}", db.port);
    assert!(connect(&by_name, &b).await.expect("DNS SAN matches").is_tls());
    let proxy = shoal(&db, &s, &b, true);
    assert!(!backend_cipher(&proxy, &s).await.expect("queries over TLS").is_empty());
}

#[tokio::test]
async fn preferred_falls_back_to_plain_and_required_names_the_missing_tls() {
    let db = MariaDb::start(&["--skip-ssl"]);
    let s = Scratch::new(&db, "btlsp");
    let preferred = settings(BackendTlsMode::Preferred, None);
    assert!(!connect(&db.addr(), &preferred).await.expect("plain login").is_tls());
    let proxy = shoal(&db, &s, &preferred, true);
    assert_eq!(backend_cipher(&proxy, &s).await.expect("queries in plain"), "");

    let e = connect(&db.addr(), &settings(BackendTlsMode::Required, None)).await.expect_err("refused");
    assert!(e.contains("backends.tls = \"required\" but the server does not offer TLS"), "{e}");
}

#[test]
fn bad_files_fail_the_start_naming_the_field() {
    let b = BackendsSection {
        tls: BackendTlsMode::Required,
        tls_cert_file: Some("/no/such/cert.pem".into()),
        tls_key_file: Some("/no/such/key.pem".into()),
        ..BackendsSection::default()
    };
    let e = BackendTls::from_config(&b).unwrap_err().to_string();
    assert!(e.starts_with("backends.tls_cert_file /no/such/cert.pem"), "{e}");
    let _: Arc<BackendTls> = BackendTls::disabled();
}

/// Repeated logins and point reads in each mode give the right answers over the right
/// transport; the timings are printed (the figures in docs/proxy.md come from a release
/// build: `cargo test --release --test proxy backend_tls_cost -- --nocapture`).
#[tokio::test]
async fn backend_tls_cost() {
    const LOGINS: usize = 20;
    const READS: usize = 500;
    let pki = Pki::new();
    let args = [
        format!("--ssl-ca={}", pki.ca.display()),
        format!("--ssl-cert={}", pki.local.0.display()),
        format!("--ssl-key={}", pki.local.1.display()),
    ];
    let db = MariaDb::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let s = Scratch::new(&db, "btlsc");
    for mode in [BackendTlsMode::Disabled, BackendTlsMode::Required, BackendTlsMode::VerifyIdentity] {
        let b = settings(mode, Some(&pki.ca));
        let mut logins: Vec<Duration> = Vec::with_capacity(LOGINS);
        for _ in 0..LOGINS {
            let t = std::time::Instant::now();
            let conn = connect(&db.addr(), &b).await.unwrap();
            logins.push(t.elapsed());
            assert_eq!(conn.is_tls(), mode != BackendTlsMode::Disabled, "{}", mode.as_str());
        }
        logins.sort();
        let proxy = shoal(&db, &s, &b, true);
        let mut c = Conn::new(proxy.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await.unwrap();
        c.query_drop("CREATE TABLE IF NOT EXISTS r (id INT PRIMARY KEY, v VARCHAR(64))").await.unwrap();
        c.query_drop("REPLACE INTO r VALUES (1, REPEAT('x', 64))").await.unwrap();
        let t = std::time::Instant::now();
        for _ in 0..READS {
            let row: Option<(i64, String)> = c.query_first("SELECT id, v FROM r WHERE id = 1").await.unwrap();
            assert_eq!(row, Some((1, "x".repeat(64))));
        }
        let reads = t.elapsed();
        let _ = c.disconnect().await;
        println!(
            "{:<16} login p50 {:>6} µs p99 {:>6} µs | {READS} point reads through shoal: {:>5} ms ({:.0} µs each)",
            mode.as_str(),
            logins[LOGINS / 2].as_micros(),
            logins[LOGINS * 99 / 100].as_micros(),
            reads.as_millis(),
            reads.as_micros() as f64 / READS as f64
        );
    }
}
