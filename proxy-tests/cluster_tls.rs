//! Mutual TLS on the cluster port as an operator runs it: three `shoal start --bootstrap`
//! processes whose `[cluster]` holds `tls_cert_file`, `tls_key_file` and `tls_ca_file`
//! (rcgen certificates of `backend_tls::Pki`: one CA, a certificate for `localhost` and
//! `127.0.0.1`). They elect one leader and replicate a write to every node's MariaDB, no
//! peer connection fails TLS, and a node whose key file is not PEM does not start.

use std::time::Duration;

use shoal::admin::client;

use crate::backend_tls::Pki;
use crate::cluster::{Cluster, Timing, SERIAL};

#[test]
fn three_processes_with_mutual_tls_elect_and_replicate() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let pki = Pki::new();
    let (cert, key) = &pki.local;
    let tls = format!(
        "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\ntls_ca_file = \"{}\"\n",
        cert.display(),
        key.display(),
        pki.ca.display()
    );
    let c = Cluster::prepare(3, |_| String::new(), |id| format!("token-{id}"), Timing::Test, None);
    for m in c.members.values() {
        m.add_to_section("cluster", &tls);
    }
    let c = c.launch();
    c.write(
        1,
        "CREATE DATABASE tls_app; CREATE TABLE tls_app.t (id INT PRIMARY KEY); INSERT INTO tls_app.t VALUES (1), (2)",
    );
    c.converged("SELECT COUNT(*) FROM tls_app.t", "2");
    for m in c.members.values() {
        assert!(m.logs().contains("transport=\"mutual TLS\""), "node {} runs plain:\n{}", m.id, m.logs());
        let r = client::get(&m.api, "/metrics", m.token.as_deref(), Duration::from_secs(2)).unwrap();
        let failed_tls = r.body.lines().find(|l| l.starts_with("shoal_cluster_peer_failures_total{cause=\"tls\"}"));
        assert_eq!(failed_tls, None, "node {}: TLS failures between members", m.id);
    }

    // A key file that is not PEM: `shoal start` exits 1 naming the field and the file.
    let m = &c.members[&3];
    let bad = m.dir.join("bad.toml");
    let junk = m.dir.join("junk-key.pem");
    std::fs::write(&junk, "not a key\n").unwrap();
    let text =
        std::fs::read_to_string(&m.file).unwrap().replace(&key.display().to_string(), &junk.display().to_string());
    std::fs::write(&bad, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["start", "-c"])
        .arg(&bad)
        .env_remove("SHOAL_CONFIG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cluster.tls_key_file") && err.contains(&junk.display().to_string()), "{err}");
}
