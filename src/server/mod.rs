//! Wiring: from a [`Config`] to a running proxy ([`bind`]), and the operated process
//! around it ([`Server`]): HTTP API, health checks, SIGHUP reload and graceful drain.
//!
//! # Reload
//!
//! A reload builds a new [`Proxy`] generation from the re-read configuration (accounts,
//! backends, limits, TLS) and makes the listener hand new clients to it. Clients already
//! connected keep their session on the generation that accepted them until they leave, so
//! nobody is dropped; their pools close with the last of them. Addresses the process
//! listens on (`proxy.bind_address`, `api.bind_address`) need a restart.
//!
//! # Shutdown
//!
//! Stop accepting (the listening socket is closed), wait up to
//! `limits.shutdown_drain_timeout_ms` for running statements to finish, then return:
//! the caller exits, closing client and backend connections.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::admin::health::Health;
pub use crate::admin::state::{ConfigSource, Mode, Shared};
use crate::backend::tls::BackendTls;
use crate::backend::users::{ServiceAccount, Stage2, Users};
use crate::cluster::Node;
use crate::config::{read_secret, Config};
use crate::frontend::{tls, Proxy};
use crate::protocol::auth::{parse_stored_hash, Credential};
pub use cluster::{has_cluster_state, start_cluster};

pub mod cluster;
pub mod migrate;
pub mod over_cluster;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Configuration is incomplete or wrong.
    #[error("{0}")]
    Config(String),
    /// TLS files are unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The listener could not bind.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        error: std::io::Error,
    },
}

fn fixed_users(config: &Config) -> Result<HashMap<String, Vec<Stage2>>, StartError> {
    let mut out = HashMap::new();
    for (name, u) in &config.users {
        let stage2 = if let Some(h) = &u.password_hash {
            Some(parse_stored_hash(h).ok_or_else(|| {
                StartError::Config(format!("users.{name}.password_hash: expected '*' and 40 hex digits"))
            })?)
        } else {
            let pw = match (&u.password, &u.password_file) {
                (Some(p), _) => p.clone(),
                (None, Some(f)) => read_secret(f)
                    .map_err(|e| StartError::Config(format!("users.{name}.password_file {}: {e}", f.display())))?,
                (None, None) => String::new(),
            };
            Credential::from_password(pw.as_bytes()).stage2()
        };
        out.insert(name.clone(), vec![stage2]);
    }
    Ok(out)
}

/// Builds a proxy generation (accounts loaded, greeting facts probed); no listener.
pub async fn build(config: &Config) -> Result<Arc<Proxy>, StartError> {
    if config.backends.primary.is_empty() {
        return Err(StartError::Config(
            "no backend: set [backends] primary = \"host:port\" (or [database] host) or pass --backend host:port"
                .into(),
        ));
    }
    let b = &config.backends;
    // Read on every build, so a reload (SIGHUP) picks up a renewed CA or client certificate.
    let backend_tls = BackendTls::from_config(b).map_err(|e| StartError::Config(e.to_string()))?;
    let service = if b.user.is_empty() {
        None
    } else {
        let password = b.service_password().map_err(StartError::Config)?;
        Some(ServiceAccount { addr: b.primary.clone(), user: b.user.clone(), password, tls: backend_tls.clone() })
    };
    let users = Users::new(fixed_users(config)?, service.clone());
    if let Err(e) = users.reload().await {
        let hint = backend_tls.service_hint(&e.to_string()).unwrap_or_default();
        tracing::warn!(error = %e, hint, "could not load accounts from the backend yet; will retry on login");
    }
    let acceptor = match (&config.tls.cert_file, &config.tls.key_file) {
        (Some(c), Some(k)) => Some(tls::acceptor(c, k)?),
        _ => None,
    };
    let rsa_key = config.tls.rsa_private_key_file.as_deref().map(tls::RsaKey::from_file).transpose()?;
    let proxy = Proxy::new(config, acceptor, users, backend_tls);
    if let Some(k) = rsa_key {
        let _ = proxy.rsa_key.set(Arc::new(k));
    }
    // First health round before serving, then keep checking in the background. Over a
    // cluster (`[backends] cluster`) the nodes' APIs say who is up (`over_cluster`).
    if b.cluster.is_empty() {
        crate::backend::health::start(proxy.routing.clone(), service, config.routing.clone()).await;
    }
    // Warm the greeting facts so the first client does not pay for the probe.
    proxy.server_info().await;
    Ok(proxy)
}

/// Builds the proxy and binds its listener.
pub async fn bind(config: &Config) -> Result<(Arc<Proxy>, TcpListener), StartError> {
    let proxy = build(config).await?;
    let addr = &config.proxy.bind_address;
    let listener = TcpListener::bind(addr).await.map_err(|error| StartError::Bind { addr: addr.clone(), error })?;
    Ok((proxy, listener))
}

/// Capture with durability in a local WAL (`[capture] mode = "local"`): what keeps it
/// running. Every proxy generation gets its [`Capture`](crate::capture::Capture).
pub struct LocalCapture {
    /// The coordinator sessions hand their transactions to.
    pub capture: Arc<crate::capture::Capture>,
    /// The binlog tail (stops when dropped).
    pub tail: crate::capture::tail::BinlogTail,
    /// The log entries go to.
    pub wal: Arc<crate::wal::Wal>,
}

/// The service account's options for the local MariaDB (`[backends] primary`), and its
/// password.
fn service_opts(config: &Config) -> anyhow::Result<(mysql_async::Opts, String)> {
    let b = &config.backends;
    anyhow::ensure!(
        !b.user.is_empty(),
        "replication needs the service account ([backends] user, or [database] user on a cluster node)"
    );
    let password = b.service_password().map_err(anyhow::Error::msg)?;
    let backend_tls = BackendTls::from_config(b)?;
    let opts = crate::backend::users::client_opts(&b.primary, &b.user, &password, &backend_tls);
    Ok((opts.into(), password))
}

/// Starts the binlog tail on the primary (from its end) and the coordinator proposing to
/// `durable`; `conn` (the service account's, setup done) reads where the binlog stands.
async fn start_capture(
    config: &Config,
    mut conn: mysql_async::Conn,
    password: &str,
    durable: Arc<dyn crate::capture::Durable>,
) -> anyhow::Result<(crate::capture::tail::BinlogTail, Arc<crate::capture::Capture>)> {
    use crate::capture::tail;
    use mysql_async::prelude::Queryable;
    let b = &config.backends;
    let target = tail::dump_target(&b.primary, &b.user, password, BackendTls::from_config(b)?);
    let (tail, found) = tail::BinlogTail::start(target, config.binlog.server_id, tail::StartAt::End).await?;
    // Read after the tail started: everything up to here is behind it.
    let pos: String = conn.query_first("SELECT @@gtid_binlog_pos").await?.unwrap_or_default();
    let _ = conn.disconnect().await;
    Ok((tail, crate::capture::Capture::start(&node_name(config), found, durable, &pos)))
}

/// This node's name in xids (`[node] id`, else `primary`).
fn node_name(config: &Config) -> String {
    if config.node.id.is_empty() {
        "primary".into()
    } else {
        config.node.id.clone()
    }
}

/// Directory of the local capture WAL under `[node] data_dir`.
pub const CAPTURE_WAL_DIR: &str = "capture-wal";

/// Starts capture on the primary with a local WAL: checks the primary's settings,
/// creates the marker table, decides prepared transactions a crash left (commit those
/// the WAL holds, roll back the rest), then starts the binlog tail and the coordinator.
pub async fn start_local_capture(config: &Config) -> anyhow::Result<LocalCapture> {
    use crate::capture::{setup, LocalWal};
    let b = &config.backends;
    let (opts, password) = service_opts(config)?;
    let mut conn =
        mysql_async::Conn::new(opts).await.map_err(|e| anyhow::anyhow!("capture: connecting to {}: {e}", b.primary))?;
    setup::prepare_leader(&mut conn).await?;
    let dir = config.node.data_dir.join(CAPTURE_WAL_DIR);
    let record_max = config.capture.entry_bytes_max_mb << 20;
    let opts = crate::wal::WalOptions {
        record_bytes_max: record_max,
        segment_bytes_max: (config.wal.segment_size_mb << 20).max(2 * record_max),
        fsync: config.wal.fsync,
        ..crate::wal::WalOptions::default()
    };
    let (wal, _) =
        crate::wal::Wal::open(&dir, opts).map_err(|e| anyhow::anyhow!("capture WAL {}: {e}", dir.display()))?;
    let wal = Arc::new(wal);
    let local = LocalWal::new(wal.clone());
    let durable = local.durable_xids()?;
    let decided = setup::recover(&mut conn, |x| durable.contains(x)).await?;
    if !decided.committed.is_empty() || !decided.rolled_back.is_empty() {
        tracing::info!(
            committed = decided.committed.len(),
            rolled_back = decided.rolled_back.len(),
            "capture: prepared transactions decided"
        );
    }
    let (tail, capture) = start_capture(config, conn, &password, Arc::new(local)).await?;
    tracing::info!(wal = %dir.display(), "capture on: write transactions commit once durable in the local WAL");
    Ok(LocalCapture { capture, tail, wal })
}

/// The running process: proxy generations, listener, API, health checker.
pub struct Server {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Local capture, when `[capture] mode = "local"`.
    pub capture: Option<LocalCapture>,
    stop: Arc<tokio::sync::Notify>,
    tasks: Vec<JoinHandle<()>>,
}

fn token_of(config: &Config) -> anyhow::Result<Option<Arc<String>>> {
    match &config.api.token_file {
        Some(f) => {
            let t = read_secret(f).map_err(|e| anyhow::anyhow!("api.token_file {}: {e}", f.display()))?;
            anyhow::ensure!(!t.is_empty(), "api.token_file {}: the first line is empty", f.display());
            Ok(Some(Arc::new(t)))
        }
        None => Ok(None),
    }
}

/// How long shutdown waits for API requests to let go of the Raft node before stopping it.
pub const NODE_RELEASE_WAIT_MAX: Duration = Duration::from_secs(2);

impl Server {
    /// Starts everything; `config` must have `[backends]` resolved. `node` is the Raft
    /// node of cluster mode ([`start_cluster`]); the server stops it on shutdown.
    pub async fn start(
        mut config: Config,
        mode: Mode,
        config_file: Option<PathBuf>,
        source: Option<ConfigSource>,
        node: Option<Node>,
    ) -> anyhow::Result<Server> {
        crate::metrics::install(&config.metrics.latency_buckets_seconds);
        crate::metrics::register_all();
        let token = token_of(&config)?;
        // Over a cluster, the leader's proxy stands for the primary (greeting, accounts).
        let discovered = if config.backends.cluster.is_empty() {
            None
        } else {
            let d = over_cluster::discover(&config).await?;
            config.backends.primary = d.primary.clone();
            Some(d)
        };
        let proxy = build(&config).await?;
        let capture = match config.capture.mode.as_str() {
            "local" => Some(start_local_capture(&config).await?),
            _ => None,
        };
        if let Some(c) = &capture {
            proxy.capture.store(Some(c.capture.clone()));
        }
        let addr = &config.proxy.bind_address;
        let listener = TcpListener::bind(addr).await.map_err(|error| StartError::Bind { addr: addr.clone(), error })?;
        let proxy_addr = listener.local_addr()?;
        let listener = listener.into_std()?;
        let api = if config.api.enabled {
            let a = &config.api.bind_address;
            Some(TcpListener::bind(a).await.map_err(|error| StartError::Bind { addr: a.clone(), error })?)
        } else {
            None
        };
        let api_addr = api.as_ref().map(|l| l.local_addr()).transpose()?;
        let shared = Arc::new(Shared {
            health: Health::new(&config, &proxy),
            proxy: ArcSwap::new(proxy),
            generations: Mutex::new(Vec::new()),
            config: ArcSwap::from_pointee(config),
            config_file,
            token: ArcSwapOption::new(token),
            source,
            listener: Mutex::new(Some(listener)),
            serve: Mutex::new(None),
            started: Instant::now(),
            draining: AtomicBool::new(false),
            mode,
            reloads: AtomicU64::new(0),
            proxy_addr,
            api_addr,
            cluster: Mutex::new(node.map(Arc::new)),
            stop_requested: tokio::sync::Notify::new(),
        });
        if let Some(d) = &discovered {
            over_cluster::publish(&shared, &d.polled);
        }
        shared.health.refresh(&shared.config.load(), &shared.proxy.load()).await;
        if let Some(node) = shared.node() {
            // No writes until the role is known (`cluster::lead_while_leader`).
            cluster::publish_unknown_role(&shared, node.id());
            node.set_endpoints(cluster::endpoints(proxy_addr, api_addr, node.advertise()));
        }
        start_serving(&shared)?;
        let stop = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        if let Some(api) = api {
            let router = crate::admin::api::router(shared.clone());
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let serve = axum::serve(api, router).with_graceful_shutdown(async move { stop.notified().await });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "HTTP API stopped");
                }
            }));
        }
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let interval = Duration::from_millis(s.config.load().routing.health_interval_ms);
                tokio::time::sleep(interval).await;
                if s.health.refresh(&s.config.load(), &s.proxy.load()).await {
                    crate::metrics::routing_changed();
                    tracing::info!(servers = ?s.health.table().iter().map(|n| (&n.id, &n.status)).collect::<Vec<_>>(), "routing table changed");
                }
            }
        }));
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                crate::metrics::handle().run_upkeep();
            }
        }));
        if let Some(d) = discovered {
            tasks.push(tokio::spawn(over_cluster::follow(shared.clone(), d.known)));
        }
        if let Some(node) = shared.node() {
            tasks.push(tokio::spawn(cluster::lead_while_leader(
                shared.clone(),
                Arc::downgrade(&node),
                shared.config.load_full(),
            )));
        }
        tracing::info!(
            mode = mode.name(),
            listen = %proxy_addr,
            api = %api_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
            primary = %shared.config.load().backends.primary,
            replicas = ?shared.config.load().backends.replicas,
            "shoal ready"
        );
        Ok(Server { shared, capture, stop, tasks })
    }

    /// Re-reads the configuration and switches new clients to a fresh generation.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let r = self.try_reload().await;
        crate::metrics::config_reload(r.is_ok());
        match &r {
            Ok(()) => tracing::info!("configuration reloaded"),
            Err(e) => tracing::error!(error = %format!("{e:#}"), "reload failed; keeping the running configuration"),
        }
        r
    }

    async fn try_reload(&self) -> anyhow::Result<()> {
        let s = &self.shared;
        let Some(source) = &s.source else {
            anyhow::bail!("nothing to reload from (no configuration file)");
        };
        let mut config = source()?;
        let old = s.config.load_full();
        if !config.backends.cluster.is_empty() {
            // The leader now stands for the primary; the next poll completes the table.
            config.backends.primary = s.proxy.load().leader_addr().to_string();
        }
        if config.proxy.bind_address != old.proxy.bind_address || config.api.bind_address != old.api.bind_address {
            tracing::warn!("proxy.bind_address and api.bind_address changes take effect after a restart");
        }
        let token = token_of(&config)?;
        let proxy = build(&config).await?;
        let previous = s.proxy.load_full();
        proxy.continue_ids_from(&previous);
        // Capture outlives generations (a mode change takes a restart).
        proxy.capture.store(previous.capture.load_full());
        proxy.writes_refused.store(previous.writes_refused.load_full());
        s.generations.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::downgrade(&previous));
        s.proxy.store(proxy);
        s.token.store(token);
        s.config.store(Arc::new(config));
        start_serving(s)?;
        s.reloads.fetch_add(1, Ordering::Relaxed);
        if s.health.refresh(&s.config.load(), &s.proxy.load()).await {
            crate::metrics::routing_changed();
        }
        Ok(())
    }

    /// Stops accepting, waits for running statements (up to `drain`), stops the API.
    pub async fn shutdown(self, drain: Duration) {
        let s = &self.shared;
        s.draining.store(true, Ordering::Relaxed);
        let serve = s.serve.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = serve {
            t.abort();
            let _ = t.await;
        }
        drop(s.listener.lock().unwrap_or_else(|p| p.into_inner()).take());
        let deadline = Instant::now() + drain;
        tracing::info!(
            clients = s.clients(),
            statements_running = s.statements_running(),
            drain_ms = drain.as_millis() as u64,
            "draining"
        );
        for proxy in s.generations() {
            proxy.running.wait_idle(deadline).await;
        }
        let left = s.statements_running();
        if left > 0 {
            tracing::warn!(statements_running = left, "drain timeout: closing connections with statements running");
        } else {
            tracing::info!("drained; closing client and backend connections");
        }
        self.stop.notify_waiters();
        for t in self.tasks {
            t.abort();
        }
        stop_node(s).await;
    }
}

/// Hands the listener to the current generation (a fresh dup of the socket), stopping
/// the previous accept loop.
fn start_serving(s: &Arc<Shared>) -> anyhow::Result<()> {
    let guard = s.listener.lock().unwrap_or_else(|p| p.into_inner());
    let Some(std_listener) = guard.as_ref() else { anyhow::bail!("shutting down") };
    let dup = std_listener.try_clone()?;
    dup.set_nonblocking(true)?;
    let listener = TcpListener::from_std(dup)?;
    drop(guard);
    let proxy = s.proxy.load_full();
    let task = tokio::spawn(async move {
        if let Err(e) = proxy.serve(listener).await {
            tracing::error!(error = %e, "listener failed");
        }
    });
    if let Some(old) = s.serve.lock().unwrap_or_else(|p| p.into_inner()).replace(task) {
        old.abort();
    }
    Ok(())
}

/// Takes the Raft node out of `s` and stops it (WAL closed), waiting up to
/// [`NODE_RELEASE_WAIT_MAX`] for API handlers to drop their handles.
async fn stop_node(s: &Shared) {
    let Some(mut node) = s.cluster.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
    let deadline = Instant::now() + NODE_RELEASE_WAIT_MAX;
    loop {
        match Arc::try_unwrap(node) {
            Ok(n) => {
                if let Err(e) = n.shutdown().await {
                    tracing::error!(error = %e, "stopping the cluster node");
                }
                return;
            }
            Err(shared) if Instant::now() < deadline => {
                node = shared;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => {
                tracing::warn!("cluster node still in use after {NODE_RELEASE_WAIT_MAX:?}; exiting without closing the WAL (it recovers on restart)");
                return;
            }
        }
    }
}
