//! Mutual TLS on the cluster port, in-process: certificates made here by rcgen (a
//! cluster CA, one certificate per node, and an unrelated CA), nodes on 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::cluster::{Cluster, ELECTION_MAX, SERIAL, SETTLE};
use crate::cluster::network::{connect, FailureCause, PeerAuth, PeerStats, Secret};
use crate::cluster::node::Start;
use crate::cluster::tls::{PeerTls, TlsFiles};
use crate::cluster::{Node, NodeId, Recorder};

/// One CA and the PEM files of the certificates it signed.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// The CA certificate's file (a node's `tls_ca_file`).
    file: PathBuf,
}

/// What a certificate names.
enum Names {
    /// An IP SAN 127.0.0.1 only (the node is dialed by IP).
    Ip,
    /// A DNS SAN `localhost` only (the node is dialed by name).
    Dns,
}

struct Pki {
    dir: TempDir,
    /// The cluster's CA.
    ca: Ca,
    /// A CA that signs the stranger's certificate.
    other: Ca,
}

fn write(dir: &Path, name: &str, pem: String) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

fn new_ca(dir: &Path, name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    let file = write(dir, &format!("{name}.pem"), cert.pem());
    Ca { cert, key, file }
}

fn secret() -> Secret {
    Secret::new(b"test-cluster-secret-0123456789").unwrap()
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = new_ca(dir.path(), "cluster-ca");
        let other = new_ca(dir.path(), "other-ca");
        Pki { dir, ca, other }
    }

    /// A node certificate signed by `ca` (both key usages: one certificate serves the
    /// listener and the dialer), as the node's [`PeerAuth`].
    fn node(&self, ca: &Ca, tag: &str, names: Names) -> PeerAuth {
        let mut p = match names {
            Names::Ip => {
                let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
                p.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
                p
            }
            Names::Dns => CertificateParams::new(vec!["localhost".to_string()]).unwrap(),
        };
        p.distinguished_name.push(DnType::CommonName, tag);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
        let d = self.dir.path();
        let (cert, key) =
            (write(d, &format!("{tag}.pem"), cert.pem()), write(d, &format!("{tag}-key.pem"), key.serialize_pem()));
        let tls = PeerTls::load(TlsFiles { cert: &cert, key: &key, ca: &ca.file }).unwrap();
        PeerAuth { secret: secret(), tls: Some(tls) }
    }
}

fn tls_failures(s: &PeerStats) -> u64 {
    s.tls.load(Ordering::Relaxed)
}

/// Waits until `node` has counted more TLS refusals than `before`.
async fn counted_after(node: &Node, before: u64) -> u64 {
    let deadline = Instant::now() + SETTLE;
    loop {
        let now = tls_failures(node.peer_stats());
        if now > before {
            return now;
        }
        assert!(Instant::now() < deadline, "no TLS refusal counted (still {now})");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Nodes 1 and 2 of the CA's cluster (node 1 by IP, node 2 by name `localhost`), node 3
/// left to the test; node 1 bootstraps with all three.
async fn two_tls_nodes(pki: &Pki) -> Cluster {
    let mut c = Cluster::new(&[1, 2, 3]);
    let port2 = c.addrs[&2].rsplit_once(':').unwrap().1.to_string();
    c.addrs.insert(2, format!("localhost:{port2}"));
    c.start_as(1, &pki.node(&pki.ca, "node-1", Names::Ip), Start::Bootstrap { members: c.addrs.clone() }).await;
    c.start_as(2, &pki.node(&pki.ca, "node-2", Names::Dns), Start::Restart).await;
    c
}

/// A node outside the cluster must learn nothing: no leader, no entries.
async fn learns_nothing(c: &Cluster, stranger: &Node) {
    // Give the leader time to try it repeatedly.
    tokio::time::sleep(ELECTION_MAX).await;
    let m = stranger.raft().metrics().borrow().clone();
    assert_eq!(m.current_leader, None, "the stranger must not hear from the leader");
    assert_eq!(m.last_log_index, None, "the stranger must receive no entries");
    assert!(c.nodes.values().all(|n| n.raft().metrics().borrow().current_leader.is_some()));
}

/// 3 nodes with mutual TLS, one dialed by IP (IP SAN), one by name (DNS SAN), one whose
/// certificate holds the IP: they elect a leader and commit entries on all three; no
/// TLS refusal is counted anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_tls_nodes_elect_and_commit() {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new();
    let mut c = two_tls_nodes(&pki).await;
    c.start_as(3, &pki.node(&pki.ca, "node-3", Names::Ip), Start::Restart).await;
    let leader = c.leader(SETTLE).await.expect("a leader over TLS");
    c.propose(leader, 0, 20).await;
    c.all_applied(20).await;
    c.check_one_leader_per_term();
    for (id, n) in &c.nodes {
        let s = n.peer_stats();
        assert_eq!(tls_failures(s), 0, "node {id} counted TLS failures");
        if *id != leader {
            assert!(s.accepted.load(Ordering::Relaxed) > 0, "follower {id} accepted the leader over TLS");
        }
    }
    // Node 2's certificate names `localhost` only: dialed by IP, it is refused.
    let by_ip = c.addrs[&2].replace("localhost", "127.0.0.1");
    let node_3 = pki.node(&pki.ca, "node-3b", Names::Ip);
    let Err(e) = connect(&by_ip, 3, &node_3).await else { panic!("a certificate without the IP SAN passed") };
    assert_eq!(e.cause, FailureCause::Tls, "{e}");
    assert!(e.what.contains("does not name the host of its member address"), "{e}");
    for id in [1, 2, 3] {
        c.stop(id).await;
    }
}

/// A node whose certificate comes from another CA: the leader refuses its certificate
/// and counts `tls`; the stranger counts the leader's refusal; when the stranger dials a
/// member, the member refuses its client certificate and counts `tls`. A dialer with no
/// client certificate at all is refused the same way. The cluster keeps committing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused_and_counted() {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new();
    let mut c = two_tls_nodes(&pki).await;
    let stranger_auth = pki.node(&pki.other, "stranger", Names::Ip);
    let stranger = Node::start(c.config(3, &stranger_auth), Recorder::new(), Start::Restart).await.unwrap();
    let leader = c.leader(SETTLE).await.expect("nodes 1 and 2 elect a leader");
    c.propose(leader, 0, 3).await;
    c.all_applied(3).await;
    learns_nothing(&c, &stranger).await;
    let at_leader = counted_after(&c.nodes[&leader], 0).await;
    let at_stranger = counted_after(&stranger, 0).await;
    println!("TLS refusals: {at_leader} at the leader (node {leader}), {at_stranger} at the stranger");

    // The stranger dials the follower (which dials nobody on its own): refused inbound.
    let follower: NodeId = if leader == 1 { 2 } else { 1 };
    let f = &c.nodes[&follower];
    let before = tls_failures(f.peer_stats());
    let Err(e) = connect(&c.addrs[&follower], 3, &stranger_auth).await else { panic!("the stranger connected") };
    println!("stranger dialing node {follower}: {e}");
    assert_eq!(e.cause, FailureCause::Tls, "{e}");
    assert!(e.what.contains("tls_ca_file"), "{e}");
    let before = counted_after(f, before).await;

    // No client certificate: the TLS handshake completes on the dialer's side (TLS 1.3),
    // then the listener refuses and closes without a single frame.
    let roots = {
        let mut r = tokio_rustls::rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut &std::fs::read(&pki.ca.file).unwrap()[..]) {
            r.add(cert.unwrap()).unwrap();
        }
        r
    };
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(&c.addrs[&follower]).await.unwrap();
    let name = crate::cluster::tls::server_name(&c.addrs[&follower]).unwrap();
    let read = match tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await {
        Ok(mut tls) => {
            let _ = tls.write_all(b"\0\0\0\x30SHOALP1\0").await;
            let mut buf = [0u8; 64];
            tls.read(&mut buf).await
        }
        Err(e) => Err(e),
    };
    assert!(!matches!(read, Ok(n) if n > 0), "a dialer without a client certificate got bytes: {read:?}");
    counted_after(f, before).await;

    c.propose(leader, 3, 2).await;
    c.all_applied(5).await;
    stranger.shutdown().await.unwrap();
    for id in [1, 2] {
        c.stop(id).await;
    }
}

/// A plaintext node (the right secret, no TLS) cannot join a TLS cluster: the leader's
/// TLS handshake with it fails (`tls` at the leader), the plain node sees a TLS record
/// where a frame was due (`tls` there too), and when it dials a member the member sees
/// no TLS handshake (`tls`) and the plain dialer is told the peer speaks TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_node_cannot_join_a_tls_cluster() {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new();
    let mut c = two_tls_nodes(&pki).await;
    let plain = PeerAuth::plain(secret());
    let stranger = Node::start(c.config(3, &plain), Recorder::new(), Start::Restart).await.unwrap();
    let leader = c.leader(SETTLE).await.expect("nodes 1 and 2 elect a leader");
    c.propose(leader, 0, 3).await;
    c.all_applied(3).await;
    learns_nothing(&c, &stranger).await;
    let at_leader = counted_after(&c.nodes[&leader], 0).await;
    let at_stranger = counted_after(&stranger, 0).await;
    println!("TLS refusals: {at_leader} at the leader (node {leader}), {at_stranger} at the plain node");

    let follower: NodeId = if leader == 1 { 2 } else { 1 };
    let f = &c.nodes[&follower];
    let before = tls_failures(f.peer_stats());
    let Err(e) = connect(&c.addrs[&follower], 3, &plain).await else { panic!("the plain node connected") };
    println!("plain node dialing node {follower}: {e}");
    assert_eq!(e.cause, FailureCause::Tls, "{e}");
    assert!(e.what.contains("speaks TLS and this node does not"), "{e}");
    counted_after(f, before).await;
    stranger.shutdown().await.unwrap();
    for id in [1, 2] {
        c.stop(id).await;
    }
}
