//! The server table behind `/health`, `/cluster/nodes` and `shoal servers`: every server of
//! the routing table ([`crate::route::RoutingTable`], kept by the router's health checker
//! with the service account: health, lag) joined with a cheap check of its own — TCP
//! connect + greeting ([`probe`]) and, on the primary with a service account,
//! `@@global.read_only` — so the answer is right even without a service account.
//!
//! | field | from |
//! |---|---|
//! | `status` | `down` if the greeting check fails or the router took the server out of rotation, else `up` |
//! | `lag_ms` | the router's lag (replicas; needs the service account) |
//! | `writable` | `@@global.read_only = 0` on the primary (needs the service account) |
//! | `error` | the greeting check's error, else the router's last error |

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};

use crate::backend::conn::probe;
use crate::backend::tls::BackendTls;
use crate::config::Config;
use crate::frontend::Proxy;
use crate::route::{Health as RouterHealth, Role, RoutingTable};

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

/// A role in the standalone proxy's vocabulary (its API and `shoal servers` speak of the
/// primary and its replicas).
fn standalone_role(role: Role) -> &'static str {
    match role {
        Role::Leader => "primary",
        Role::Follower | Role::Learner => "replica",
        Role::Proxy => "proxy",
    }
}

/// The servers of a routing table, unchecked.
pub fn servers_of(config: &Config, table: &RoutingTable) -> Vec<NodeStatus> {
    table
        .servers
        .iter()
        .map(|s| {
            let id = if s.role == Role::Leader { config.node_id() } else { format!("replica-{}", s.id) };
            NodeStatus::unknown(id, s.addr.to_string(), standalone_role(s.role))
        })
        .collect()
}

/// The last table, swapped whole by each round of checks.
pub struct Health {
    table: ArcSwap<Vec<NodeStatus>>,
}

impl Health {
    /// A table of unchecked servers.
    pub fn new(config: &Config, proxy: &Proxy) -> Self {
        Health { table: ArcSwap::from_pointee(servers_of(config, &proxy.routing.load())) }
    }

    /// The last table.
    pub fn table(&self) -> Arc<Vec<NodeStatus>> {
        self.table.load_full()
    }

    /// Checks every server of `proxy`'s routing table now and stores the table; returns
    /// whether the routing table (servers, roles, up/down) changed.
    pub async fn refresh(&self, config: &Config, proxy: &Proxy) -> bool {
        let routing = proxy.routing.load_full();
        let router_checks = !config.backends.user.is_empty();
        let nodes = servers_of(config, &routing);
        let checks = nodes.into_iter().zip(routing.servers.iter()).map(|(mut node, server)| {
            if router_checks {
                if node.role == "replica" {
                    node.lag_ms = server.lag_ms;
                }
                if server.health == RouterHealth::Down {
                    node.status = "down".into();
                    node.error = server.last_error.clone().or_else(|| Some("out of rotation".into()));
                }
            }
            check(config, node)
        });
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

pub(super) fn service_password(config: &Config) -> String {
    config.backends.service_password().unwrap_or_default()
}

/// Checks one server: greeting, and `read_only` on the primary with a service account.
/// A server the router already marked down stays down.
fn check(config: &Config, mut node: NodeStatus) -> impl std::future::Future<Output = NodeStatus> + Send + 'static {
    let timeout = Duration::from_millis(config.limits.connect_timeout_ms.min(5_000));
    let user = config.backends.user.clone();
    let password = service_password(config);
    let tls = BackendTls::from_config(&config.backends).map_err(|e| e.to_string());
    async move {
        let router_down = node.status == "down";
        match probe(&node.address, timeout).await {
            Ok(hello) => {
                node.version = Some(hello.version);
                if !router_down {
                    node.status = "up".into();
                }
            }
            Err(e) => {
                node.status = "down".into();
                node.error = Some(e.to_string());
            }
        }
        if node.is_up() && node.role == "primary" && !user.is_empty() {
            match &tls {
                Err(e) => node.error = Some(format!("service account check: {e}")),
                Ok(tls) => {
                    match tokio::time::timeout(timeout * 2, read_only(&node.address, &user, &password, tls)).await {
                        Ok(Ok(ro)) => node.writable = Some(!ro),
                        Ok(Err(e)) => node.error = Some(format!("service account check failed: {e}")),
                        Err(_) => node.error = Some("service account check timed out".into()),
                    }
                }
            }
        }
        if node.is_up() && node.role == "replica" && !user.is_empty() && node.lag_ms.is_none() {
            node.error = Some("lag unknown: replication stopped or not checked yet".into());
        }
        node.checked_at_ms = Some(now_ms());
        crate::metrics::health_check(node.is_up());
        node
    }
}

/// `@@global.read_only` of a server, as the service account sees it.
async fn read_only(addr: &str, user: &str, password: &str, tls: &BackendTls) -> Result<bool, mysql_async::Error> {
    let mut conn = mysql_async::Conn::new(crate::backend::users::client_opts(addr, user, password, tls)).await?;
    let read_only: Option<u64> = conn.query_first("SELECT @@global.read_only").await?;
    conn.disconnect().await?;
    Ok(read_only != Some(0))
}
