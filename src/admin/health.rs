//! The server table behind `/health`, `/cluster/nodes` and `shoal servers`: every known
//! server (the primary and the replicas from the configuration) with the outcome of a
//! cheap check — TCP connect + greeting ([`probe`]) and, when a service account is
//! configured, `@@global.read_only` on the primary and `SHOW SLAVE STATUS` on replicas.
//!
//! The JSON shape (`id`, `address`, `role`, `status`, `lag_ms`, …) is the one the routing
//! work will fill from its own health checker.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};

use crate::backend::conn::probe;
use crate::config::{read_secret, Config};

/// One server as last checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Node id: `[node] id` (or `primary`) for the primary, `replica-N` for replicas.
    pub id: String,
    /// host:port.
    pub address: String,
    /// `primary` or `replica`.
    pub role: String,
    /// `up`, `down` or `unknown` (not checked yet).
    pub status: String,
    /// Replica lag in milliseconds (`Seconds_Behind_Master` × 1000); null when unknown.
    pub lag_ms: Option<u64>,
    /// Whether the server accepts writes (`@@global.read_only = 0`); null when not checked.
    pub writable: Option<bool>,
    /// Server version from the greeting.
    pub version: Option<String>,
    /// Why the server is down or a check was incomplete.
    pub error: Option<String>,
    /// When the check finished, milliseconds since the Unix epoch.
    pub checked_at_ms: Option<u64>,
}

impl NodeStatus {
    fn unknown(id: String, address: String, role: &str) -> Self {
        NodeStatus {
            id,
            address,
            role: role.into(),
            status: "unknown".into(),
            lag_ms: None,
            writable: None,
            version: None,
            error: None,
            checked_at_ms: None,
        }
    }

    /// Whether the last check reached the server.
    pub fn is_up(&self) -> bool {
        self.status == "up"
    }
}

/// The servers a configuration names, unchecked.
pub fn servers_of(config: &Config) -> Vec<NodeStatus> {
    let mut out = vec![NodeStatus::unknown(config.node_id(), config.backends.primary.clone(), "primary")];
    for (i, r) in config.backends.replicas.iter().enumerate() {
        out.push(NodeStatus::unknown(format!("replica-{}", i + 1), r.clone(), "replica"));
    }
    out
}

/// The last table, swapped whole by each round of checks.
pub struct Health {
    table: ArcSwap<Vec<NodeStatus>>,
}

impl Health {
    /// A table of unchecked servers.
    pub fn new(config: &Config) -> Self {
        Health { table: ArcSwap::from_pointee(servers_of(config)) }
    }

    /// The last table.
    pub fn table(&self) -> Arc<Vec<NodeStatus>> {
        self.table.load_full()
    }

    /// Checks every server of `config` now and stores the table; returns whether the
    /// routing table (servers, roles, up/down) changed.
    pub async fn refresh(&self, config: &Config) -> bool {
        let servers = servers_of(config);
        let checks = servers.into_iter().map(|s| check(config, s));
        let table = futures_join_all(checks).await;
        let old = self.table.load_full();
        let key = |t: &[NodeStatus]| t.iter().map(|n| (n.address.clone(), n.role.clone(), n.status.clone())).collect();
        let changed: bool = {
            let (a, b): (Vec<_>, Vec<_>) = (key(&old), key(&table));
            a != b
        };
        let gauges: Vec<crate::metrics::ServerGauge> = table
            .iter()
            .map(|n| crate::metrics::ServerGauge {
                address: n.address.clone(),
                role: if n.role == "primary" { "primary" } else { "replica" },
                up: n.is_up(),
                lag: n.lag_ms.map(Duration::from_millis),
            })
            .collect();
        SERVER_GAUGES.store(Arc::new(gauges));
        self.table.store(Arc::new(table));
        changed
    }
}

/// The last checked servers, for the scrape-time gauges.
pub static SERVER_GAUGES: std::sync::LazyLock<ArcSwap<Vec<crate::metrics::ServerGauge>>> =
    std::sync::LazyLock::new(|| ArcSwap::from_pointee(Vec::new()));

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join_all<F>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("health check task panicked"));
    }
    out
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

fn service_password(config: &Config) -> String {
    match &config.backends.password_file {
        Some(f) => read_secret(f).unwrap_or_default(),
        None => config.backends.password.clone(),
    }
}

/// Checks one server.
fn check(config: &Config, mut node: NodeStatus) -> impl std::future::Future<Output = NodeStatus> + Send + 'static {
    let timeout = Duration::from_millis(config.limits.connect_timeout_ms.min(5_000));
    let user = config.backends.user.clone();
    let password = service_password(config);
    async move {
        if node.address.is_empty() {
            node.status = "down".into();
            node.error = Some("no address configured".into());
            node.checked_at_ms = Some(now_ms());
            crate::metrics::health_check(false);
            return node;
        }
        match probe(&node.address, timeout).await {
            Ok(hello) => {
                node.status = "up".into();
                node.version = Some(hello.version);
            }
            Err(e) => {
                node.status = "down".into();
                node.error = Some(e.to_string());
            }
        }
        if node.is_up() && !user.is_empty() {
            let query = tokio::time::timeout(timeout * 2, query_state(&node.address, &user, &password, &node.role));
            match query.await {
                Ok(Ok((writable, lag))) => {
                    node.writable = Some(writable);
                    node.lag_ms = lag;
                    if node.role == "replica" && lag.is_none() {
                        node.error = Some("replication is not running (Seconds_Behind_Master is NULL)".into());
                    }
                }
                Ok(Err(e)) => node.error = Some(format!("service account check failed: {e}")),
                Err(_) => node.error = Some("service account check timed out".into()),
            }
        }
        node.checked_at_ms = Some(now_ms());
        crate::metrics::health_check(node.is_up());
        node
    }
}

/// `(writable, lag_ms)` of a server, as the service account sees it.
async fn query_state(
    addr: &str,
    user: &str,
    password: &str,
    role: &str,
) -> Result<(bool, Option<u64>), mysql_async::Error> {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "3306"));
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port.parse().unwrap_or(3306))
        .user(Some(user.to_string()))
        .pass(Some(password.to_string()))
        .prefer_socket(false);
    let mut conn = mysql_async::Conn::new(opts).await?;
    let read_only: Option<u64> = conn.query_first("SELECT @@global.read_only").await?;
    let mut lag = None;
    if role == "replica" {
        let row: Option<mysql_async::Row> = conn.query_first("SHOW SLAVE STATUS").await?;
        if let Some(row) = row {
            let seconds: Option<Option<u64>> = row.get_opt("Seconds_Behind_Master").and_then(|r| r.ok());
            lag = seconds.flatten().map(|s| s * 1000);
        }
    }
    conn.disconnect().await?;
    Ok((read_only == Some(0), lag))
}
