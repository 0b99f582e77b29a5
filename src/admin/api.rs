//! The HTTP API (axum): `/health`, `/status`, `/cluster`, `/cluster/nodes`, `/metrics`,
//! and `POST /cluster/leave`, `POST /cluster/switchover`, `GET /cluster/dump` on a cluster node. JSON field names are documented in
//! `docs/api.md`.
//!
//! | process | `/cluster` | `/cluster/nodes` |
//! |---|---|---|
//! | proxy only (no `[cluster] secret_file`) | [`ClusterBody`], `cluster_mode` `standalone` | [`NodesBody`]: the server table |
//! | cluster node | [`RaftClusterBody`], `cluster_mode` `raft` | [`RaftNodesBody`]: `Node::status()` rows |
//!
//! With `[api] token_file` set, every endpoint but `/health` needs
//! `Authorization: Bearer TOKEN` (401 otherwise).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::health::NodeStatus;
use super::state::Shared;
use crate::cluster::status::NodeStatus as RaftNodeStatus;

/// The routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/cluster", get(cluster))
        .route("/cluster/nodes", get(nodes))
        .route("/cluster/leave", post(leave))
        .route("/cluster/switchover", post(switchover))
        .route("/cluster/dump", get(super::dump::dump))
        .route("/write/{endpoint}", post(super::write::write))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(shared)
}

/// Body of a 401/404.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

async fn not_found() -> Response {
    let body = ErrorBody {
        error: "no such endpoint; try /health /status /cluster /cluster/nodes /metrics (POST /cluster/leave, POST /write/insert|update|delete|ddl)".into(),
    };
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// `Some(401 response)` when a token is configured and the request lacks it.
pub(super) fn unauthorized(s: &Shared, headers: &HeaderMap) -> Option<Response> {
    let token = s.token.load_full()?;
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    // Constant-time comparison: the token is a secret.
    let ok = given.is_some_and(|g| {
        g.len() == token.len() && g.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    if ok {
        None
    } else {
        crate::metrics::api_unauthorized();
        let body =
            ErrorBody { error: "missing or wrong bearer token (Authorization: Bearer …, see api.token_file)".into() };
        Some((StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], Json(body)).into_response())
    }
}

/// `/health`.
#[derive(Debug, Serialize, Deserialize)]
pub struct HealthBody {
    /// `ok` or `unavailable`.
    pub status: String,
    /// Why not ok; null when ok.
    pub reason: Option<String>,
    /// The primary as last checked.
    pub primary: Option<NodeStatus>,
}

async fn health(State(s): State<Arc<Shared>>) -> Response {
    let table = s.health.table();
    // A cluster node that does not lead keeps its MariaDB read_only on purpose.
    let read_only_expected = s.node().is_some_and(|n| n.role() != crate::cluster::node::Role::Leader);
    let primary = table.iter().find(|n| n.role == "primary").cloned();
    let migration = s.node().and_then(|_| crate::cluster::retention::needs_migration(&s.config.load().node.data_dir));
    let reason = if s.draining.load(Ordering::Relaxed) {
        Some("shutting down: draining running statements".to_string())
    } else if let Some(why) = migration {
        Some(format!("needs migration: {why}"))
    } else {
        match &primary {
            None => Some("no primary configured".into()),
            Some(p) if p.status == "unknown" => Some(format!("primary {} not checked yet", p.address)),
            Some(p) if !p.is_up() => {
                Some(format!("primary {} unreachable: {}", p.address, p.error.as_deref().unwrap_or("no answer")))
            }
            Some(p) if p.writable == Some(false) && !read_only_expected => {
                Some(format!("primary {} is read_only", p.address))
            }
            Some(_) => None,
        }
    };
    let code = if reason.is_none() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let status = if reason.is_none() { "ok" } else { "unavailable" };
    (code, Json(HealthBody { status: status.into(), reason, primary })).into_response()
}

/// One pool in `/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PoolStatus {
    /// Backend host:port.
    pub backend: String,
    /// Connections open.
    pub connections: u32,
    /// Idle connections.
    pub idle: u32,
}

/// `/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusBody {
    /// shoal's version.
    pub version: String,
    /// `proxy` (standalone) or `node` (cluster node).
    pub mode: String,
    /// This node's id.
    pub node_id: String,
    /// `primary` in proxy mode; on a cluster node its Raft role (`leader`, `follower`, ...).
    pub role: String,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// `running` or `draining`.
    pub state: String,
    /// The configuration file, if any.
    pub config_file: Option<String>,
    /// Successful reloads (SIGHUP) since start.
    pub reloads: u64,
    /// MySQL listener address.
    pub proxy_address: String,
    /// HTTP API address.
    pub api_address: Option<String>,
    /// Client connections open (all generations).
    pub clients: usize,
    /// `limits.client_connections_max`.
    pub clients_max: u32,
    /// Statements running now.
    pub statements_running: i64,
    /// Primary host:port.
    pub primary: String,
    /// Replica host:port list.
    pub replicas: Vec<String>,
    /// Backend pools of the current generation.
    pub pools: Vec<PoolStatus>,
    /// Prepare responses cached (shared by every session of the current generation).
    pub prepared_cached: usize,
}

async fn status(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let config = s.config.load();
    let proxy = s.proxy.load_full();
    let pools = proxy
        .pools
        .all()
        .iter()
        .map(|p| {
            let st = p.state();
            PoolStatus { backend: p.addr.to_string(), connections: st.connections, idle: st.idle_connections }
        })
        .collect();
    let body = StatusBody {
        version: env!("CARGO_PKG_VERSION").into(),
        mode: s.mode.name().into(),
        node_id: config.node_id(),
        role: s.node().map_or("primary", |n| crate::cluster::status::role_label(n.role())).into(),
        uptime_seconds: s.started.elapsed().as_secs(),
        state: if s.draining.load(Ordering::Relaxed) { "draining" } else { "running" }.into(),
        config_file: s.config_file.as_ref().map(|p| p.display().to_string()),
        reloads: s.reloads.load(Ordering::Relaxed),
        proxy_address: s.proxy_addr.to_string(),
        api_address: s.api_addr.map(|a| a.to_string()),
        clients: s.clients(),
        clients_max: config.limits.client_connections_max,
        statements_running: s.statements_running() as i64,
        primary: config.backends.primary.clone(),
        replicas: config.backends.replicas.clone(),
        pools,
        prepared_cached: proxy.stmt_cache.len(),
    };
    Json(body).into_response()
}

/// `/cluster`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterBody {
    /// This node's id.
    pub node_id: String,
    /// Id of the node that takes writes.
    pub leader_id: String,
    /// `standalone` until cluster mode lands (replication between nodes).
    pub cluster_mode: String,
    /// Servers known.
    pub nodes_total: usize,
    /// Servers whose last check succeeded.
    pub nodes_up: usize,
    /// Whether the primary is up (and writable when checked).
    pub writable: bool,
    /// Cluster peers from the configuration (not yet contacted).
    pub peers: Vec<String>,
}

/// `/cluster` on a cluster node: this node's Raft view (`Node::status()`).
#[derive(Debug, Serialize)]
pub struct RaftClusterBody {
    /// `raft`.
    pub cluster_mode: &'static str,
    /// This node's `[node] id`.
    pub node_name: String,
    /// Its Raft id.
    pub node_id: u64,
    /// The leader this node knows of (Raft id); null during an election.
    pub leader_id: Option<u64>,
    /// This node's role: `leader`, `leader-no-quorum`, `follower`, `candidate`,
    /// `learner`, `stopped`.
    pub role: &'static str,
    /// Current term.
    pub term: Option<u64>,
    /// Raft index of the last log entry.
    pub last_log_index: Option<u64>,
    /// Raft index of the last applied entry (committed entries apply here at once, so
    /// this is the committed index as this node has seen it).
    pub applied_index: Option<u64>,
    /// On the leader: milliseconds since a quorum last acknowledged it; null elsewhere.
    pub last_contact_ms: Option<u64>,
    /// Where this node's proxy serves MySQL clients (a wildcard host replaced by the host
    /// of its cluster address): what `shoal proxy --cluster` relays to.
    pub proxy_address: String,
    /// Whether this node may lead: its local MariaDB answers (a node that is not ready
    /// stands for no election; a leader that is not ready hands over).
    pub ready: bool,
    /// Why this node needs `shoal migrate` (the log it needs was purged), if it does.
    pub needs_migration: Option<String>,
    /// Raft index of this node's last snapshot (`None`: none yet).
    pub snapshot_index: Option<u64>,
    /// Raft index its log is purged through (`None`: nothing purged).
    pub purged_index: Option<u64>,
    /// Every member, this node first (id, address, role, status, lag in entries).
    pub nodes: Vec<RaftNodeStatus>,
}

/// `/cluster/nodes` on a cluster node.
#[derive(Debug, Serialize)]
pub struct RaftNodesBody {
    /// `raft`.
    pub cluster_mode: &'static str,
    /// Every member, this node first.
    pub nodes: Vec<RaftNodeStatus>,
}

fn raft_cluster(s: &Shared, node: &crate::cluster::Node) -> RaftClusterBody {
    let nodes = node.status();
    let (leader_id, contact) = node.leader_and_contact();
    let metrics = node.raft().metrics().borrow().clone();
    let me = nodes.first();
    RaftClusterBody {
        cluster_mode: "raft",
        node_name: s.config.load().node.id.clone(),
        node_id: node.id(),
        leader_id,
        role: me.map_or("stopped", |r| r.role),
        term: me.and_then(|r| r.term),
        last_log_index: me.and_then(|r| r.last_log_index),
        applied_index: me.and_then(|r| r.applied_index),
        last_contact_ms: if leader_id == Some(node.id()) { contact } else { None },
        proxy_address: crate::cluster::network::endpoints(s.proxy_addr, s.api_addr, node.advertise()).proxy,
        ready: node.is_ready(),
        needs_migration: crate::cluster::retention::needs_migration(&s.config.load().node.data_dir),
        snapshot_index: metrics.snapshot.map(|l| l.index),
        purged_index: metrics.purged.map(|l| l.index),
        nodes,
    }
}

/// `POST /cluster/leave`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LeaveBody {
    /// The Raft id that left.
    pub left: u64,
    /// What happens next.
    pub next: String,
}

async fn leave(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let Some(node) = s.node() else {
        let body =
            ErrorBody { error: "not a cluster node ([cluster] secret_file is not set); nothing to leave".into() };
        return (StatusCode::CONFLICT, Json(body)).into_response();
    };
    match node.leave_membership().await {
        Ok(()) => {
            tracing::info!(id = node.id(), "left the cluster; stopping");
            s.stop_requested.notify_one();
            let next =
                "this node is no longer a member and is stopping; to come back, empty its data_dir and run shoal join";
            Json(LeaveBody { left: node.id(), next: next.into() }).into_response()
        }
        Err(e) => {
            let body = ErrorBody { error: format!("leave failed, still a member: {e}") };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// `POST /cluster/switchover[?to=ID]` query.
#[derive(Debug, Deserialize)]
pub struct SwitchoverQuery {
    /// The node to hand the lead to (`node-2` or `2`); none: the lowest ready, caught-up voter.
    pub to: Option<String>,
}

/// `POST /cluster/switchover`: a planned leader change (needs `[api] token_file`). On a
/// follower it asks the leader. 200 with the report (`handed_over` false: the target did
/// not win in time and a normal election ran), 409 when it cannot run (the reason says
/// why: target not ready, behind, not a voter…).
async fn switchover(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<SwitchoverQuery>,
) -> Response {
    if s.token.load().is_none() {
        let body = ErrorBody { error: "a switchover through the API needs a token: set [api] token_file".into() };
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let Some(node) = s.node() else {
        let body =
            ErrorBody { error: "not a cluster node ([cluster] secret_file is not set): no leader to move".into() };
        return (StatusCode::CONFLICT, Json(body)).into_response();
    };
    let to = match q.to.as_deref().map(crate::cluster::node_id_from_name).transpose() {
        Ok(to) => to,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(ErrorBody { error: format!("to: {e}") })).into_response(),
    };
    match node.switchover(to).await {
        Ok(r) => Json(SwitchoverBody {
            target: r.target,
            handed_over: r.handed_over,
            paused_ms: r.paused.as_millis() as u64,
        })
        .into_response(),
        Err(e) => {
            let body = ErrorBody { error: format!("switchover did not run, the leader stays: {e}") };
            (StatusCode::CONFLICT, Json(body)).into_response()
        }
    }
}

/// The answer of `POST /cluster/switchover`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SwitchoverBody {
    /// The node asked to take over.
    pub target: u64,
    /// Whether it leads now.
    pub handed_over: bool,
    /// How long new writes were held, milliseconds.
    pub paused_ms: u64,
}

async fn cluster(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    if let Some(node) = s.node() {
        return Json(raft_cluster(&s, &node)).into_response();
    }
    let config = s.config.load();
    let table = s.health.table();
    let primary = table.iter().find(|n| n.role == "primary");
    let body = ClusterBody {
        node_id: config.node_id(),
        leader_id: primary.map(|p| p.id.clone()).unwrap_or_default(),
        cluster_mode: "standalone".into(),
        nodes_total: table.len(),
        nodes_up: table.iter().filter(|n| n.is_up()).count(),
        writable: primary.is_some_and(|p| p.is_up() && p.writable != Some(false)),
        peers: config.cluster.peers.clone(),
    };
    Json(body).into_response()
}

/// `/cluster/nodes`.
#[derive(Debug, Serialize, Deserialize)]
pub struct NodesBody {
    /// Every server, primary first.
    pub nodes: Vec<NodeStatus>,
}

async fn nodes(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    if let Some(node) = s.node() {
        return Json(RaftNodesBody { cluster_mode: "raft", nodes: node.status() }).into_response();
    }
    Json(NodesBody { nodes: s.health.table().to_vec() }).into_response()
}

async fn metrics(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    if !s.config.load().metrics.enabled {
        return (StatusCode::NOT_FOUND, Json(ErrorBody { error: "metrics.enabled = false".into() })).into_response();
    }
    let body = s.render_metrics();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}
