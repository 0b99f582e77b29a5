//! Userspace link forwarders for partition tests (this machine has no iptables/netem):
//! one listener per node that every peer dials instead of the node itself. The forwarder
//! reads the dialer's node id from the handshake's first frame (length, magic, id) and
//! passes or drops the connection by the directed link (from → to); cutting a link also
//! closes its open connections. A link can also be slowed: each chunk read on it waits
//! the link's delay before it is written on (latency, and a throughput cap of one read
//! buffer per delay), for connections already open too.
//!
//! Bytes pass through unchanged, so TLS does too; but under mutual TLS the first bytes are
//! a TLS record, not a Hello, so the `from` read here is meaningless and cutting links
//! does not apply to TLS connections (the partition tests run plain).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::cluster::NodeId;

/// Bytes of a Hello frame up to and including the node id: length prefix (4), magic (8),
/// id (8).
const HELLO_PREFIX_BYTES: usize = 20;
/// Bytes a forwarder reads at once (one chunk waits one delay).
const CHUNK_BYTES: usize = 64 << 10;

/// The cut directed links, shared by every forwarder.
#[derive(Clone)]
pub struct Links {
    /// (from, to) pairs that carry nothing.
    cut: Arc<Mutex<BTreeSet<(NodeId, NodeId)>>>,
    /// (from, to) pairs whose bytes wait, both ways on the connections `from` dials.
    slow: Arc<Mutex<BTreeMap<(NodeId, NodeId), Duration>>>,
    /// Bumped on every change, so open connections re-check.
    changed: watch::Sender<u64>,
}

impl Links {
    pub fn new() -> Links {
        Links { cut: Default::default(), slow: Default::default(), changed: watch::channel(0).0 }
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

    /// Slows every link between `side` and the rest of `all`, both directions, by
    /// `delay` per chunk. Used by the chaos harness.
    #[allow(dead_code)]
    pub fn delay(&self, side: &[NodeId], all: &[NodeId], delay: Duration) {
        let mut slow = self.slow.lock().unwrap();
        for &a in side {
            for &b in all.iter().filter(|b| !side.contains(b)) {
                slow.insert((a, b), delay);
                slow.insert((b, a), delay);
            }
        }
    }

    fn delay_of(&self, from: NodeId, to: NodeId) -> Duration {
        self.slow.lock().unwrap().get(&(from, to)).copied().unwrap_or_default()
    }

    /// Restores every link (cut or slowed).
    pub fn heal(&self) {
        self.slow.lock().unwrap().clear();
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
        // One pump each way for the connection's life (dropping one mid-way would lose
        // its buffer); a cut ends both.
        let (mut in_r, mut in_w) = inbound.split();
        let (mut out_r, mut out_w) = outbound.split();
        let pumps = async {
            tokio::join!(self.pump(&mut in_r, &mut out_w, from, to), self.pump(&mut out_r, &mut in_w, from, to))
        };
        tokio::select! {
            _ = pumps => {}
            _ = changed.wait_for(|_| self.is_cut(from, to)) => {}
        }
    }

    /// Copies `r` to `w` until either ends, each chunk after the link's delay.
    async fn pump(
        &self,
        r: &mut (impl tokio::io::AsyncRead + Unpin),
        w: &mut (impl tokio::io::AsyncWrite + Unpin),
        from: NodeId,
        to: NodeId,
    ) {
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            let n = match r.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = w.shutdown().await;
                    return;
                }
                Ok(n) => n,
            };
            let delay = self.delay_of(from, to);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if w.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }
}
