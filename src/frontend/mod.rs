//! The client-facing side: the listener, the connection phase (greeting, TLS, auth) and
//! the per-client command loop.
//!
//! # Layout
//!
//! * [`io`] — the client socket (plain/TLS) and its packet buffers.
//! * [`handshake`] — greeting, SSLRequest, authentication, initial schema.
//! * [`account`] — who a session is (account, wire format).
//! * [`lease`] — a session's backend connections, pins and routing.
//! * [`answers`] — statements shoal answers itself (`KILL`, `SHOW PROCESSLIST`).
//! * [`session`] — the command loop: COM_QUERY and friends, relayed to pooled backends.
//! * [`stmt`] — COM_STMT_* (prepared statements multiplexed over pooled connections).
//! * [`pipelined`] — plain autocommit reads sent to a shared pipe ([`crate::backend::pipeline`]).
//! * [`tls`] — rustls acceptor.

pub mod account;
pub mod answers;
pub mod handshake;
pub mod io;
pub mod lease;
pub mod pipelined;
pub mod session;
pub mod sha2;
pub mod stmt;
pub mod tls;
pub mod xa;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::backend::conn::probe;
use crate::backend::pools::Pools;
use crate::backend::tls::BackendTls;
use crate::backend::users::Users;
use crate::config::{Config, LimitsSection, RoutingSection, TlsSection};
use crate::error::{ProxyError, ER_CON_COUNT};
use crate::protocol::handshake::PROXY_CAPABILITIES;
use crate::protocol::proxy_header::Network;
use crate::protocol::CapabilityFlags;
use crate::route::{Policy, Role, RoutingTable, Server};
use crate::session::limits::UserConnections;
use crate::session::prepared::StmtCache;
use crate::session::registry::Registry;
use crate::session::running::Statements;

/// What shoal tells clients about "the server", taken from the primary's greeting.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Backend version plus `-shoal`.
    pub version: String,
    /// Capabilities shoal offers: its own ∩ the backend's.
    pub capabilities: CapabilityFlags,
    /// Default collation announced in the greeting.
    pub collation: u8,
}

impl ServerInfo {
    /// What shoal announces before it has reached a backend.
    pub fn fallback() -> Self {
        ServerInfo { version: "5.5.5-10.11.0-MariaDB-shoal".into(), capabilities: PROXY_CAPABILITIES, collation: 45 }
    }
}

/// The LSN a linearizable read must see, asked of the cluster's leader.
pub type ReadLsn =
    Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, String>> + Send>> + Send + Sync>;

/// What a cluster node's sessions need from the cluster (set by `server`; the frontend
/// does not know Raft).
pub struct ClusterLink {
    /// The local MariaDB's applied LSN, moving as committed entries are applied.
    pub applied: tokio::sync::watch::Receiver<u64>,
    /// The leader's committed LSN now (`read_consistency = "global"`).
    pub read_lsn: ReadLsn,
}

/// Everything the client sessions share.
pub struct Proxy {
    /// Bounds (connections, pools, packets, statements).
    pub limits: LimitsSection,
    /// TLS settings.
    pub tls_settings: TlsSection,
    /// Set when `[tls]` has a certificate.
    pub tls: Option<TlsAcceptor>,
    /// The auth plugin the greeting names (`[proxy] default_auth_plugin`).
    pub greeting_plugin: crate::config::GreetingPlugin,
    /// `[proxy] caching_sha2_without_tls`.
    pub sha2_without_tls: crate::config::Sha2WithoutTls,
    /// `[tls] rsa_private_key_file`, once read (`sha2`: unset, the process makes its own).
    pub rsa_key: std::sync::OnceLock<Arc<tls::RsaKey>>,
    /// Accounts.
    pub users: Users,
    /// Backend pools.
    pub pools: Pools,
    /// host:port of the primary (the greeting is taken from it).
    pub primary: Arc<str>,
    /// Every server with its role, health and position; swapped by the health checker.
    pub routing: Arc<ArcSwap<RoutingTable>>,
    /// Routing settings (`[routing]`).
    pub routing_settings: RoutingSection,
    /// Networks whose connections may carry a PROXY protocol header (`None`: off).
    pub proxy_protocol: Option<Vec<Network>>,
    /// Prepare responses by (schema, SQL), shared by every session.
    pub stmt_cache: StmtCache,
    /// Live sessions, for KILL.
    pub registry: Registry,
    /// Statements in progress (drain waits for none).
    pub running: Arc<Statements>,
    /// The leader's capture (replication on, this node leads): client write transactions
    /// run as XA and commit once durable (`crate::capture`). Empty: statements run as sent.
    pub capture: ArcSwapOption<crate::capture::Capture>,
    /// Set on a cluster node that does not lead: why writes are refused here (they would
    /// change only this node's MariaDB). Empty: writes run.
    pub writes_refused: ArcSwapOption<String>,
    /// Set on a cluster leader while it hands the lead over: statements that would start
    /// a write transaction wait (up to `failover_buffer_ms`), the open ones go on.
    pub writes_held: std::sync::atomic::AtomicBool,
    /// Set on a cluster follower to the proxy address of a deposed leader that does not
    /// answer (frozen, cut off, dead): statements forwarded there and still waiting end
    /// with "outcome unknown" instead of waiting for it.
    pub unreachable_leader: tokio::sync::watch::Sender<Option<Arc<str>>>,
    /// Set on a cluster node: the applied LSN and the leader's commit point, for
    /// read-your-writes by LSN.
    pub cluster: ArcSwapOption<ClusterLink>,
    /// The greeting's server facts, once the primary answered.
    server: ArcSwapOption<ServerInfo>,
    /// Next connection id handed to a client.
    next_id: AtomicU32,
    /// One permit per client connection (`client_connections_max`).
    slots: Arc<Semaphore>,
    /// Sessions per account (`user_connections_max`), shared with the generations before
    /// and after this one (their sessions count against the same limit).
    pub user_connections: ArcSwap<UserConnections>,
}

impl Proxy {
    /// A proxy for `config` (`[limits]`, `[tls]`, `[backends]`, `[routing]`, `[proxy]`),
    /// with its TLS acceptor and accounts.
    pub fn new(config: &Config, tls: Option<TlsAcceptor>, users: Users, backend_tls: Arc<BackendTls>) -> Arc<Self> {
        let limits = config.limits.clone();
        let tls_settings = config.tls.clone();
        let primary = config.backends.primary.as_str();
        let replicas = &config.backends.replicas;
        let routing_settings = config.routing.clone();
        let proxy_protocol = config.proxy.proxy_protocol.then(|| config.proxy.trusted_networks());
        let mut servers = vec![Server::new(0, primary, Role::Leader)];
        servers.extend(replicas.iter().enumerate().map(|(i, r)| Server::new(i + 1, r, Role::Follower)));
        Arc::new(Proxy {
            stmt_cache: StmtCache::new(limits.prepared_cache_entries_max as usize),
            routing: Arc::new(ArcSwap::from_pointee(RoutingTable { servers, version: 1 })),
            routing_settings,
            proxy_protocol,
            slots: Arc::new(Semaphore::new(limits.client_connections_max as usize)),
            pools: Pools::new(limits.clone(), backend_tls),
            limits,
            tls_settings,
            tls,
            rsa_key: std::sync::OnceLock::new(),
            greeting_plugin: config.proxy.default_auth_plugin,
            sha2_without_tls: config.proxy.caching_sha2_without_tls,
            users,
            primary: primary.into(),
            registry: Registry::default(),
            running: Arc::default(),
            capture: ArcSwapOption::empty(),
            writes_refused: ArcSwapOption::empty(),
            writes_held: Default::default(),
            unreachable_leader: tokio::sync::watch::Sender::new(None),
            cluster: ArcSwapOption::empty(),
            server: ArcSwapOption::empty(),
            next_id: AtomicU32::new(1),
            user_connections: ArcSwap::from_pointee(UserConnections::default()),
        })
    }

    /// Server facts, probing the primary if not known yet.
    pub async fn server_info(&self) -> Arc<ServerInfo> {
        if let Some(s) = self.server.load_full() {
            return s;
        }
        match probe(&self.primary, Duration::from_millis(self.limits.connect_timeout_ms)).await {
            Ok(hello) => {
                let mut caps = PROXY_CAPABILITIES & hello.capabilities;
                if self.tls.is_some() {
                    caps |= CapabilityFlags::CLIENT_SSL;
                }
                // A shoal node's proxy (`[backends] cluster`) says `-shoal` already.
                let version = match hello.version.ends_with("-shoal") {
                    true => hello.version,
                    false => format!("{}-shoal", hello.version),
                };
                let info = Arc::new(ServerInfo { version, capabilities: caps, collation: hello.collation });
                self.server.store(Some(info.clone()));
                info
            }
            Err(e) => {
                tracing::warn!(error = %e, "primary not reachable; greeting clients with defaults");
                let mut info = ServerInfo::fallback();
                if self.tls.is_some() {
                    info.capabilities |= CapabilityFlags::CLIENT_SSL;
                }
                Arc::new(info)
            }
        }
    }

    /// host:port of the server that takes writes now (the configured primary when the
    /// routing table names no leader).
    pub fn leader_addr(&self) -> Arc<str> {
        self.routing.load().leader().map_or_else(|| self.primary.clone(), |l| l.addr.clone())
    }

    /// Whether this proxy fronts a shoal cluster (a node's own table, or `shoal proxy
    /// --cluster`): leaders change by election there, so statements that need one wait
    /// for it (`[routing] failover_buffer_ms`).
    pub fn fronts_cluster(&self) -> bool {
        self.routing.load().servers.iter().any(|s| s.shoal || s.follows_log)
    }

    /// How long a statement that needs the leader waits for one (0 outside a cluster).
    pub fn failover_buffer(&self) -> Duration {
        if self.fronts_cluster() {
            Duration::from_millis(self.routing_settings.failover_buffer_ms)
        } else {
            Duration::ZERO
        }
    }

    /// The routing policy knobs.
    pub fn policy(&self) -> Policy {
        Policy { consistency: self.routing_settings.read_consistency, max_lag_ms: self.routing_settings.max_lag_ms }
    }

    /// Whether sessions need the GTID of their writes (replicas exist and reads must see
    /// the session's own writes).
    pub fn tracks_writes(&self) -> bool {
        self.routing_settings.read_consistency == crate::route::Consistency::Session
            && self.routing.load().servers.len() > 1
    }

    /// A fresh connection id.
    pub fn next_connection_id(&self) -> u32 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                return id;
            }
        }
    }

    /// Client connections open now.
    pub fn clients(&self) -> usize {
        self.limits.client_connections_max as usize - self.slots.available_permits()
    }

    /// Accepts clients until the listener fails.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        // The idle sweep (wait_timeout, the coarse clock) lives as long as this generation.
        let weak = Arc::downgrade(&self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::session::registry::SWEEP_INTERVAL);
            loop {
                tick.tick().await;
                let Some(proxy) = weak.upgrade() else { return };
                let transactions = proxy.registry.sweep();
                if transactions > 0 {
                    crate::metrics::idle_transactions_ended(transactions);
                }
            }
        });
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let proxy = self.clone();
            match self.slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    crate::metrics::client_accepted();
                    tokio::spawn(async move {
                        session::run(proxy, stream, peer).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    crate::metrics::client_rejected();
                    tokio::spawn(async move {
                        let limit = proxy.limits.client_connections_max;
                        let e = ProxyError::Limit {
                            what: "client_connections_max",
                            limit: limit.into(),
                            hint: "raise [limits] client_connections_max or use fewer connections",
                            code: ER_CON_COUNT,
                        };
                        handshake::refuse(stream, &e).await;
                    });
                }
            }
        }
    }

    /// Continues `previous`'s connection ids, so ids stay unique across a reload, and its
    /// per-account session counts, so `user_connections_max` counts the sessions still on it.
    pub fn continue_ids_from(&self, previous: &Proxy) {
        self.next_id.store(previous.next_id.load(Ordering::Relaxed), Ordering::Relaxed);
        self.user_connections.store(previous.user_connections.load_full());
    }
}
