//! Userspace link forwarders for partition tests (this machine has no iptables/netem):
//! one listener per node that every peer dials instead of the node itself. The forwarder
//! reads the dialer's node id from the handshake's first frame (length, magic, id) and
//! passes or drops the connection by the directed link (from → to); cutting a link also
//! closes its open connections.
//!
//! Bytes pass through unchanged, so TLS does too; but under mutual TLS the first bytes are
//! a TLS record, not a Hello, so the `from` read here is meaningless and cutting links
//! does not apply to TLS connections (the partition tests run plain).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::cluster::NodeId;

/// Bytes of a Hello frame up to and including the node id: length prefix (4), magic (8),
/// id (8).
const HELLO_PREFIX_BYTES: usize = 20;

/// The cut directed links, shared by every forwarder.
#[derive(Clone)]
pub struct Links {
    /// (from, to) pairs that carry nothing.
    cut: Arc<Mutex<BTreeSet<(NodeId, NodeId)>>>,
    /// Bumped on every change, so open connections re-check.
    changed: watch::Sender<u64>,
}

impl Links {
    pub fn new() -> Links {
        Links { cut: Default::default(), changed: watch::channel(0).0 }
    }

    fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.lock().unwrap().contains(&(from, to))
    }

    /// Cuts every link between `side` and the rest of `all`, both directions.
    pub fn isolate(&self, side: &[NodeId], all: &[NodeId]) {
        let mut cut = self.cut.lock().unwrap();
        for &a in side {
            for &b in all.iter().filter(|b| !side.contains(b)) {
                cut.insert((a, b));
                cut.insert((b, a));
            }
        }
        drop(cut);
        self.changed.send_modify(|g| *g += 1);
    }

    /// Cuts the one directed link `from` → `to` (connections `from` dials to `to`; the
    /// other direction still carries). Used by the chaos harness (`proxy-tests/chaos`).
    #[allow(dead_code)]
    pub fn cut(&self, from: NodeId, to: NodeId) {
        self.cut.lock().unwrap().insert((from, to));
        self.changed.send_modify(|g| *g += 1);
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.cut.lock().unwrap().clear();
        self.changed.send_modify(|g| *g += 1);
    }

    /// Listens on a free port and forwards to `target` (node `to`); returns the address.
    pub async fn forwarder(&self, to: NodeId, target: String) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let links = self.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = l.accept().await {
                let (links, target) = (links.clone(), target.clone());
                tokio::spawn(async move { links.carry(inbound, to, &target).await });
            }
        });
        addr
    }

    async fn carry(&self, mut inbound: TcpStream, to: NodeId, target: &str) {
        let mut hello = [0u8; HELLO_PREFIX_BYTES];
        if inbound.read_exact(&mut hello).await.is_err() {
            return;
        }
        let from = u64::from_le_bytes(hello[12..20].try_into().unwrap());
        if self.is_cut(from, to) {
            return;
        }
        let Ok(mut outbound) = TcpStream::connect(target).await else { return };
        if outbound.write_all(&hello).await.is_err() {
            return;
        }
        let mut changed = self.changed.subscribe();
        // One copy for the connection's life (dropping it mid-way would lose its buffer);
        // a cut ends both.
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
            _ = changed.wait_for(|_| self.is_cut(from, to)) => {}
        }
    }
}
