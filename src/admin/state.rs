//! What the HTTP API, the signal handlers and the server wiring share about the running
//! process: proxy generations, configuration, token, server table, drain state.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::task::JoinHandle;

use crate::admin::health::Health;
use crate::cluster::Node;
use crate::config::Config;
use crate::frontend::Proxy;

/// How the process was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `shoal proxy`: a standalone proxy in front of configured backends.
    Proxy,
    /// `shoal start`: a cluster node fronting its local database.
    Node,
}

impl Mode {
    /// Name shown by `/status`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Proxy => "proxy",
            Mode::Node => "node",
        }
    }
}

/// Re-reads the configuration on SIGHUP (file + command-line overrides).
pub type ConfigSource = Arc<dyn Fn() -> anyhow::Result<Config> + Send + Sync>;

/// What the HTTP API and the signal handlers share.
pub struct Shared {
    /// The generation new clients get.
    pub proxy: ArcSwap<Proxy>,
    /// Older generations still serving clients.
    pub(crate) generations: Mutex<Vec<Weak<Proxy>>>,
    /// The configuration in effect.
    pub config: ArcSwap<Config>,
    /// Where it came from (for `/status`).
    pub config_file: Option<PathBuf>,
    /// Bearer token of the API, if any.
    pub token: ArcSwapOption<String>,
    /// How to re-read the configuration (SIGHUP).
    pub(crate) source: Option<ConfigSource>,
    /// The MySQL listening socket (dup'ed to each generation's accept loop).
    pub(crate) listener: Mutex<Option<std::net::TcpListener>>,
    /// The current accept loop.
    pub(crate) serve: Mutex<Option<JoinHandle<()>>>,
    /// Server table.
    pub health: Health,
    /// Process start.
    pub started: Instant,
    /// Set once shutdown began (`/health` answers 503).
    pub draining: AtomicBool,
    /// proxy or node.
    pub mode: Mode,
    /// Successful reloads.
    pub reloads: AtomicU64,
    /// The MySQL listener's address.
    pub proxy_addr: SocketAddr,
    /// The HTTP API's address, when it runs.
    pub api_addr: Option<SocketAddr>,
    /// The Raft node, in cluster mode (`[cluster] secret_file` set): `/cluster` reads
    /// it, `POST /cluster/leave` asks it to leave, shutdown takes it out to stop it.
    pub cluster: Mutex<Option<Arc<Node>>>,
    /// Notified when the process should stop on its own (after `POST /cluster/leave`).
    pub stop_requested: tokio::sync::Notify,
}

impl Shared {
    /// The Raft node, when this process runs one.
    pub fn node(&self) -> Option<Arc<Node>> {
        self.cluster.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every live generation, newest first.
    pub fn generations(&self) -> Vec<Arc<Proxy>> {
        let mut out = vec![self.proxy.load_full()];
        let mut g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        g.retain(|w| w.strong_count() > 0);
        out.extend(g.iter().filter_map(Weak::upgrade));
        out
    }

    /// Statements running across generations.
    pub fn statements_running(&self) -> usize {
        self.generations().iter().map(|p| p.running.count()).sum()
    }

    /// Client connections open across generations.
    pub fn clients(&self) -> usize {
        self.generations().iter().map(|p| p.clients()).sum()
    }

    /// Sets the scrape-time gauges and renders `/metrics`.
    pub fn render_metrics(&self) -> String {
        let mut pools = Vec::new();
        for proxy in self.generations() {
            for p in proxy.pools.all() {
                let s = p.state();
                let st = &s.statistics;
                let done = st.get_direct + st.get_waited + st.get_timed_out;
                pools.push(crate::metrics::PoolGauge {
                    backend: p.addr.to_string(),
                    connections: s.connections.into(),
                    in_use: (s.connections - s.idle_connections).into(),
                    waiters: st.get_started.saturating_sub(done),
                });
            }
        }
        let servers = crate::admin::health::SERVER_GAUGES.load();
        let prepared = self.generations().iter().map(|p| p.stmt_cache.len()).sum();
        crate::metrics::set_gauges(self.clients(), self.statements_running(), prepared, &pools, &servers);
        crate::metrics::render()
    }
}
