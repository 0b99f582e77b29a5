//! The login matrix: every client the tests use (the `mariadb` CLI, PyMySQL,
//! mysql-connector-python pure and C, node mysql2) × the account plugins MariaDB 10.11 has
//! here (`mysql_native_password`, `ed25519`) × the ways a client proves a password to shoal
//! (native, `caching_sha2_password` over TLS, with the RSA exchange, and its fast path),
//! against a real `mariadbd`. Every cell's outcome is asserted; the cells run in order
//! because the fast path depends on what logged in before. docs/proxy.md "Authentication"
//! has the table.

use std::process::Command;

use crate::harness::{mariadb_cli, MariaDb, Shoal};

/// Which client runs a cell.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    /// `mariadb` with its default plugin (native) or `--default-auth=caching_sha2_password`.
    Cli,
    PyMySql,
    ConnectorPure,
    ConnectorC,
    Mysql2,
}

/// How the client starts: its own default, or told to use caching_sha2_password.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Plugin {
    Default,
    Sha2,
}

/// What a cell must end with.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Logged in; `CURRENT_USER()` starts with the account.
    In,
    /// Refused with this MySQL error number (1045) or client error (2061).
    Err(u16),
    /// Refused by the client itself, with this in its message.
    ClientRefuses(&'static str),
}

struct Cell {
    name: &'static str,
    client: Client,
    plugin: Plugin,
    tls: bool,
    user: &'static str,
    password: &'static str,
    expect: Expect,
}

const NATIVE_PW: &str = "nat-pw";
const ED_PW: &str = "ed-pw";

/// A cell, in the order: name, client, plugin, TLS, account, password, outcome.
const fn cell(
    name: &'static str,
    client: Client,
    plugin: Plugin,
    tls: bool,
    user: &'static str,
    password: &'static str,
    expect: Expect,
) -> Cell {
    Cell { name, client, plugin, tls, user, password, expect }
}

use Client::*;
use Expect::*;
use Plugin::*;

/// Through a shoal whose greeting names mysql_native_password (MariaDB's, the default).
/// `cold_*` accounts have not logged in before their first cell (no cached digest).
const NATIVE_GREETING: &[Cell] = &[
    cell("cli native", Cli, Default, false, "nat", NATIVE_PW, In),
    cell("cli native, wrong password", Cli, Default, false, "nat", "wrong", Err(1045)),
    cell("cli ed25519 (relayed)", Cli, Default, false, "ed", ED_PW, In),
    cell("cli ed25519, wrong password", Cli, Default, false, "ed", "wrong", Err(1045)),
    cell("cli sha2 over TLS, first login (full)", Cli, Sha2, true, "nat", NATIVE_PW, In),
    cell("cli sha2 without TLS (fast path)", Cli, Sha2, false, "nat", NATIVE_PW, In),
    cell("cli sha2 without TLS, first login (switched to native)", Cli, Sha2, false, "cold_cli", NATIVE_PW, In),
    cell("cli sha2 without TLS, wrong password", Cli, Sha2, false, "cold_cli", "wrong", Err(1045)),
    cell("pymysql native", PyMySql, Default, false, "nat", NATIVE_PW, In),
    cell("pymysql native over TLS", PyMySql, Default, true, "nat", NATIVE_PW, In),
    cell("pymysql native, wrong password", PyMySql, Default, false, "nat", "wrong", Err(1045)),
    cell("pymysql ed25519 (relayed)", PyMySql, Default, false, "ed", ED_PW, In),
    cell("connector pure native", ConnectorPure, Default, false, "nat", NATIVE_PW, In),
    cell("connector C native", ConnectorC, Default, false, "nat", NATIVE_PW, In),
    cell(
        "connector pure sha2 without TLS, first login (switched)",
        ConnectorPure,
        Sha2,
        false,
        "cold_pure",
        NATIVE_PW,
        In,
    ),
    cell("connector pure sha2 over TLS (full)", ConnectorPure, Sha2, true, "cold_pure", NATIVE_PW, In),
    cell("connector pure sha2 without TLS (fast path)", ConnectorPure, Sha2, false, "cold_pure", NATIVE_PW, In),
    cell("connector pure sha2 over TLS, wrong password", ConnectorPure, Sha2, true, "cold_pure", "wrong", Err(1045)),
    cell("connector C sha2 without TLS, first login (switched)", ConnectorC, Sha2, false, "cold_c", NATIVE_PW, In),
    cell("connector C sha2 over TLS (full)", ConnectorC, Sha2, true, "cold_c", NATIVE_PW, In),
    cell("connector C sha2 without TLS (fast path)", ConnectorC, Sha2, false, "cold_c", NATIVE_PW, In),
    cell("connector pure ed25519", ConnectorPure, Default, false, "ed", ED_PW, ClientRefuses("client_ed25519")),
    cell("mysql2 native", Mysql2, Default, false, "nat", NATIVE_PW, In),
    cell("mysql2 native, wrong password", Mysql2, Default, false, "nat", "wrong", Err(1045)),
    cell("mysql2 ed25519", Mysql2, Default, false, "ed", ED_PW, ClientRefuses("client_ed25519")),
];

/// Through a shoal whose greeting names caching_sha2_password (as MySQL 8), with
/// `caching_sha2_without_tls = "rsa"` (MySQL's full authentication): PyMySQL and mysql2
/// follow the server's plugin.
const SHA2_GREETING: &[Cell] = &[
    cell("cli sha2 without TLS, first login (RSA)", Cli, Sha2, false, "cold_cli2", NATIVE_PW, In),
    cell("cli sha2 without TLS, wrong password (RSA)", Cli, Sha2, false, "cold_cli2", "wrong", Err(1045)),
    // connector-python's pure sha2 plugin sends the password in the clear when asked for
    // full authentication without TLS; shoal, like MySQL, takes only a ciphertext there.
    cell(
        "connector pure sha2 without TLS, first login (RSA)",
        ConnectorPure,
        Sha2,
        false,
        "cold_pure2",
        NATIVE_PW,
        Err(1045),
    ),
    // libmysqlclient refuses to send the password without TLS unless given the key.
    cell("connector C sha2 without TLS, first login (RSA)", ConnectorC, Sha2, false, "cold_c2", NATIVE_PW, Err(2061)),
    cell("connector C sha2 over TLS (full)", ConnectorC, Sha2, true, "cold_c2", NATIVE_PW, In),
    cell("connector C sha2 without TLS (fast path)", ConnectorC, Sha2, false, "cold_c2", NATIVE_PW, In),
    cell("pymysql sha2 without TLS, first login (RSA)", PyMySql, Default, false, "cold_py", NATIVE_PW, In),
    cell("pymysql sha2 without TLS (fast path)", PyMySql, Default, false, "cold_py", NATIVE_PW, In),
    cell("pymysql sha2 without TLS, wrong password", PyMySql, Default, false, "cold_py", "wrong", Err(1045)),
    cell("pymysql sha2 over TLS, first login (full)", PyMySql, Default, true, "nat", NATIVE_PW, In),
    cell("pymysql ed25519 (relayed)", PyMySql, Default, false, "ed", ED_PW, In),
    cell("mysql2 sha2 without TLS, first login (RSA)", Mysql2, Default, false, "cold_node", NATIVE_PW, In),
    cell("mysql2 sha2 over TLS (fast path)", Mysql2, Default, true, "nat", NATIVE_PW, In),
    cell("mysql2 sha2 over TLS, wrong password", Mysql2, Default, true, "nat", "wrong", Err(1045)),
    cell("connector pure native", ConnectorPure, Default, false, "nat", NATIVE_PW, In),
    cell("cli follows the greeting (sha2, fast path)", Cli, Default, false, "nat", NATIVE_PW, In),
    cell("cli ed25519 (relayed)", Cli, Default, false, "ed", ED_PW, In),
];

/// What a cell ended with: the account, or the error number and message.
#[derive(Debug)]
enum Outcome {
    In(String),
    Refused(Option<u16>, String),
}

fn run(cell: &Cell, port: u16) -> Outcome {
    match cell.client {
        Cli => {
            let mut args = vec!["-N", "-B", "-e", "SELECT CURRENT_USER()"];
            if cell.plugin == Sha2 {
                args.push("--default-auth=caching_sha2_password");
            }
            if cell.tls {
                args.extend(["--ssl", "--ssl-verify-server-cert=0"]);
            } else {
                args.push("--skip-ssl");
            }
            let (ok, out, err) = mariadb_cli(port, cell.user, cell.password, &args, None);
            if ok {
                Outcome::In(out.trim().to_string())
            } else {
                // "ERROR 1045 (28000): Access denied …"
                let code = err.split_whitespace().nth(1).and_then(|c| c.parse().ok());
                Outcome::Refused(code, err.trim().to_string())
            }
        }
        PyMySql | ConnectorPure | ConnectorC | Mysql2 => {
            let client = match cell.client {
                PyMySql => "pymysql",
                ConnectorPure => "cpy_pure",
                ConnectorC => "cpy_c",
                _ => "mysql2",
            };
            let mut spec = serde_json::json!({
                "name": cell.name, "client": client, "port": port, "user": cell.user,
                "password": cell.password, "tls": cell.tls,
            });
            if cell.plugin == Sha2 {
                spec["plugin"] = "caching_sha2_password".into();
            }
            let cells = serde_json::Value::Array(vec![spec]).to_string();
            let here = concat!(env!("CARGO_MANIFEST_DIR"), "/proxy-tests");
            let out = if cell.client == Mysql2 {
                Command::new("node").arg(format!("{here}/node/login_cells.js")).arg(&cells).output().unwrap()
            } else {
                Command::new("python3").arg(format!("{here}/clients/login_cells.py")).arg(&cells).output().unwrap()
            };
            let stdout = String::from_utf8_lossy(&out.stdout);
            let line = stdout.lines().next().unwrap_or_else(|| {
                panic!("{}: no result; stderr: {}", cell.name, String::from_utf8_lossy(&out.stderr))
            });
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["ok"] == true {
                Outcome::In(v["user"].as_str().unwrap_or_default().to_string())
            } else {
                Outcome::Refused(v["errno"].as_u64().map(|n| n as u16), v["msg"].as_str().unwrap_or_default().into())
            }
        }
    }
}

/// Runs the cells in order; returns every cell that did not end as expected.
fn run_all(cells: &[Cell], shoal: &Shoal, greeting: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    for c in cells {
        let got = run(c, shoal.port());
        let ok = match (&c.expect, &got) {
            (In, Outcome::In(user)) => user.starts_with(&format!("{}@", c.user)),
            (Err(code), Outcome::Refused(got, _)) => *got == Some(*code),
            (ClientRefuses(what), Outcome::Refused(_, msg)) => msg.contains(what),
            _ => false,
        };
        eprintln!("[{greeting} greeting] {}: {got:?}{}", c.name, if ok { "" } else { "  <-- UNEXPECTED" });
        if !ok {
            wrong.push(format!("[{greeting} greeting] {}: expected {:?}, got {got:?}", c.name, c.expect));
        }
    }
    wrong
}

/// A self-signed certificate for 127.0.0.1, written to `dir`.
fn tls_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    (c, k)
}

#[test]
fn every_client_logs_in_with_every_plugin_it_supports() {
    let db = MariaDb::start(&["--plugin-load-add=auth_ed25519"]);
    let mut sql = format!("CREATE USER 'ed'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('{ED_PW}'); ");
    for user in ["nat", "cold_cli", "cold_pure", "cold_c", "cold_py", "cold_node", "cold_cli2", "cold_pure2", "cold_c2"]
    {
        sql += &format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{NATIVE_PW}'; ");
    }
    db.sql(&sql);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tls_files(dir.path());
    let with_tls = |c: &mut shoal::config::Config| {
        c.tls.cert_file = Some(cert.clone());
        c.tls.key_file = Some(key.clone());
    };
    let mut wrong = Vec::new();
    {
        let shoal = Shoal::start_with(&db, with_tls);
        wrong.extend(run_all(NATIVE_GREETING, &shoal, "native"));
    }
    {
        let shoal = Shoal::start_with(&db, |c| {
            with_tls(c);
            c.proxy.default_auth_plugin = shoal::config::GreetingPlugin::CachingSha2Password;
            c.proxy.caching_sha2_without_tls = shoal::config::Sha2WithoutTls::Rsa;
        });
        wrong.extend(run_all(SHA2_GREETING, &shoal, "caching_sha2"));
    }
    assert!(wrong.is_empty(), "cells that did not end as expected:\n{}", wrong.join("\n"));
}

/// A configured RSA key is the one clients get, and a key file that is not one stops the
/// start naming the file.
#[test]
fn a_configured_rsa_key_is_used_and_a_bad_one_is_refused() {
    let db = MariaDb::start(&[]);
    db.sql(&format!("CREATE USER 'rsa_u'@'%' IDENTIFIED BY '{NATIVE_PW}';"));
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("rsa.pem");
    let made = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let public = Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&key).output().unwrap();
    assert!(public.status.success());
    let public = String::from_utf8(public.stdout).unwrap();
    let shoal = Shoal::start_with(&db, |c| {
        c.tls.rsa_private_key_file = Some(key.clone());
        c.proxy.default_auth_plugin = shoal::config::GreetingPlugin::CachingSha2Password;
        c.proxy.caching_sha2_without_tls = shoal::config::Sha2WithoutTls::Rsa;
    });
    // PyMySQL asks for the key, encrypts to it, and keeps what it was sent.
    let script = format!(
        r#"
import pymysql
c = pymysql.connect(host="127.0.0.1", port={port}, user="rsa_u", password="{NATIVE_PW}")
cur = c.cursor()
cur.execute("SELECT CURRENT_USER()")
assert cur.fetchall()[0][0] == "rsa_u@%"
print(c.server_public_key.decode(), end="")
"#,
        port = shoal.port()
    );
    let out = Command::new("python3").arg("-c").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), public.trim(), "the configured key's public half");
    drop(shoal);

    let bad = dir.path().join("not-a-key.pem");
    std::fs::write(&bad, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
    let mut config = shoal::config::Config::default();
    config.proxy.bind_address = "127.0.0.1:0".into();
    config.backends.primary = db.addr();
    config.backends.user = "root".into();
    config.tls.rsa_private_key_file = Some(bad.clone());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let e = rt.block_on(shoal::server::bind(&config)).err().expect("a bad key must stop the start").to_string();
    assert!(e.contains(&bad.display().to_string()) && e.contains("not a PEM RSA private key"), "{e}");
}
