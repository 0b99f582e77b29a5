//! `shoal proxy --cluster`: a standalone proxy in front of a shoal cluster, with no
//! database of its own. It polls every node's HTTP API (`/cluster`, every
//! `[routing] health_interval_ms`, timeout `health_timeout_ms`) and relays to the nodes'
//! proxies: writes to the leader's, reads to a follower's. A follower node makes a read
//! wait for the LSN the statement names (`/*shoal:lsn=N*/`, `route` row 6b), so a session
//! reads its own writes wherever its reads land.
//!
//! # Nodes → routing table
//!
//! One entry per node's proxy address (`proxy_address` of its `/cluster`), `shoal: true`;
//! entries are appended, never removed (indexes are stable). [`over_cluster_table`]
//! computes it; the agreed leader is the node that says `role = leader` when no other
//! answering node names another leader.
//!
//! | the node's API | its entry |
//! |---|---|
//! | answers, the agreed leader | `Leader`, `Up` |
//! | answers, names a leader | `Follower`, `Up`, fresh (`lag_ms = 0`) |
//! | answers, knows no leader | `Follower`, `Up`, lag unknown (no reads) |
//! | does not answer, a leader is agreed | `Follower`, `Down` (the API's error) |
//! | does not answer, no leader agreed | role kept (a leader that went silent stays the one writes fail on), `Down` |
//! | never answered with a proxy address | no entry yet |
//! | an entry no node names any more (its address changed) | `Proxy`: never a target |
//!
//! The first table is built before the proxy serves ([`discover`]): the greeting, the
//! accounts (the service account logs in through the leader's proxy) and the first
//! routing table all use the leader's proxy address.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::Shared;
use crate::admin::client;
use crate::config::{read_secret, Config};
use crate::route::{Health, Role, RoutingTable, Server};

/// What one node's `/cluster` says (the fields the table needs; `docs/api.md`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NodeView {
    /// `raft` on a cluster node.
    pub cluster_mode: String,
    /// Its Raft id.
    pub node_id: u64,
    /// Its role (`leader`, `follower`, `leader-no-quorum`, …).
    pub role: String,
    /// The leader it knows of.
    pub leader_id: Option<u64>,
    /// Where its proxy serves clients.
    pub proxy_address: Option<String>,
}

/// One node's API at one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polled {
    /// Its node's proxy address as last told (`None`: it never answered with one).
    pub proxy: Option<String>,
    /// Its answer this round, or why there is none.
    pub answer: Result<NodeView, String>,
}

/// The node every answering node agrees leads (module doc).
pub fn agreed_leader(polled: &[Polled]) -> Option<u64> {
    let answering: Vec<&NodeView> = polled.iter().filter_map(|p| p.answer.as_ref().ok()).collect();
    answering
        .iter()
        .find(|v| {
            v.role == "leader" && answering.iter().all(|o| o.node_id == v.node_id || o.leader_id == Some(v.node_id))
        })
        .map(|v| v.node_id)
}

/// The routing table after one poll, from the previous one: pure (module table).
pub fn over_cluster_table(old: &RoutingTable, polled: &[Polled]) -> RoutingTable {
    let leader = agreed_leader(polled);
    let mut t = old.clone();
    let mut named = vec![false; t.servers.len()];
    for p in polled {
        let told = p.answer.as_ref().ok().and_then(|v| v.proxy_address.clone());
        let Some(addr) = told.or_else(|| p.proxy.clone()) else { continue };
        let i = match t.servers.iter().position(|s| *s.addr == *addr) {
            Some(i) => i,
            None => {
                let id = t.servers.len();
                t.servers.push(Server::new(id, &addr, Role::Follower));
                named.push(false);
                id
            }
        };
        named[i] = true;
        let s = &mut t.servers[i];
        s.shoal = true;
        s.follows_log = false;
        match &p.answer {
            Ok(v) => {
                s.health = Health::Up;
                s.last_error = None;
                s.role = if Some(v.node_id) == leader { Role::Leader } else { Role::Follower };
                s.lag_ms = v.leader_id.is_some().then_some(0);
            }
            Err(e) => {
                s.health = Health::Down;
                s.last_error = Some(format!("its API: {e}"));
                s.lag_ms = None;
                if leader.is_some() {
                    s.role = Role::Follower;
                }
            }
        }
    }
    for (s, named) in t.servers.iter_mut().zip(named) {
        if !named {
            s.role = Role::Proxy;
        }
    }
    let key = |t: &RoutingTable| {
        t.servers.iter().map(|s| (s.role, s.health, s.lag_ms, s.shoal, s.last_error.clone())).collect::<Vec<_>>()
    };
    if t.servers.len() != old.servers.len() || key(&t) != key(old) {
        t.version += 1;
    }
    t
}

/// How long `shoal proxy --cluster` waits at start for the nodes to agree on a leader
/// before it settles for any node's proxy (followers forward writes).
pub const DISCOVERY_MAX: Duration = Duration::from_secs(30);

/// Pause between discovery rounds at start.
const DISCOVERY_RETRY: Duration = Duration::from_millis(200);

/// Proxy addresses by API address, as the nodes last told them.
pub type Known = HashMap<String, String>;

/// Asks every `[backends] cluster` API for `/cluster` at once (timeout
/// `[routing] health_timeout_ms`), in the configured order.
pub async fn poll(config: &Config, known: &mut Known) -> Vec<Polled> {
    let token = match &config.backends.cluster_token_file {
        Some(f) => match read_secret(f) {
            Ok(t) => Some(t),
            Err(e) => {
                let why = format!("backends.cluster_token_file {}: {e}", f.display());
                return config
                    .backends
                    .cluster
                    .iter()
                    .map(|a| Polled { proxy: known.get(a).cloned(), answer: Err(why.clone()) })
                    .collect();
            }
        },
        None => None,
    };
    let timeout = Duration::from_millis(config.routing.health_timeout_ms);
    let asks: Vec<_> = config
        .backends
        .cluster
        .iter()
        .map(|api| {
            let (api, token) = (api.clone(), token.clone());
            tokio::task::spawn_blocking(move || ask(&api, token.as_deref(), timeout))
        })
        .collect();
    let mut out = Vec::with_capacity(asks.len());
    for (api, ask) in config.backends.cluster.iter().zip(asks) {
        let answer = ask.await.unwrap_or_else(|e| Err(format!("poll task failed: {e}")));
        if let Ok(Some(addr)) = answer.as_ref().map(|v| v.proxy_address.as_ref()) {
            known.insert(api.clone(), addr.clone());
        }
        out.push(Polled { proxy: known.get(api).cloned(), answer });
    }
    out
}

/// One `/cluster` request, its answer checked.
fn ask(api: &str, token: Option<&str>, timeout: Duration) -> Result<NodeView, String> {
    let r = client::get(&client::connect_address(api), "/cluster", token, timeout).map_err(|e| e.to_string())?;
    match r.status {
        200 => {}
        401 => return Err(
            "401: the bearer token is missing or wrong (set backends.cluster_token_file to the nodes' api.token_file)"
                .into(),
        ),
        s => return Err(format!("HTTP {s}: {}", r.body.trim())),
    }
    let v: NodeView = serde_json::from_str(&r.body).map_err(|e| {
        format!("not a shoal cluster node's /cluster ({e}); backends.cluster takes the API addresses of `shoal start` nodes")
    })?;
    if v.cluster_mode != "raft" {
        return Err(format!(
            "cluster_mode is {:?}, not a cluster node: backends.cluster takes the API addresses of `shoal start` nodes",
            v.cluster_mode
        ));
    }
    if v.proxy_address.is_none() {
        return Err("its /cluster has no proxy_address (a shoal older than this proxy?)".into());
    }
    Ok(v)
}

/// What [`discover`] found: the address the proxy starts on, and the polls behind it.
pub struct Discovered {
    /// The agreed leader's proxy (else any node's): becomes `[backends] primary` for the
    /// greeting, the accounts and the first table.
    pub primary: String,
    /// Proxy addresses by API.
    pub known: Known,
    /// The last round.
    pub polled: Vec<Polled>,
}

/// Polls the cluster until its nodes agree on a leader (up to [`DISCOVERY_MAX`]; then any
/// node's proxy will do, as followers forward writes). Fails when no API answered.
pub async fn discover(config: &Config) -> anyhow::Result<Discovered> {
    let deadline = Instant::now() + DISCOVERY_MAX;
    let mut known = Known::new();
    loop {
        let polled = poll(config, &mut known).await;
        let table = over_cluster_table(&RoutingTable::default(), &polled);
        if let Some(l) = table.leader().filter(|l| l.health == Health::Up) {
            let primary = l.addr.to_string();
            tracing::info!(leader = %primary, nodes = table.servers.len(), "cluster discovered: the leader's proxy takes writes");
            return Ok(Discovered { primary, known, polled });
        }
        if Instant::now() >= deadline {
            if let Some(any) = table.servers.iter().find(|s| s.health == Health::Up) {
                let primary = any.addr.to_string();
                tracing::warn!(via = %primary, "the cluster's nodes agree on no leader yet; starting through a node's proxy");
                return Ok(Discovered { primary, known, polled });
            }
            let why = config
                .backends
                .cluster
                .iter()
                .zip(&polled)
                .map(|(api, p)| format!("{api}: {}", p.answer.as_ref().err().map_or("answered", |e| e.as_str())))
                .collect::<Vec<_>>()
                .join("; ");
            anyhow::bail!(
                "no node of backends.cluster answered /cluster within {DISCOVERY_MAX:?} ({why}); check the addresses (the nodes' api.bind_address) and backends.cluster_token_file"
            );
        }
        tokio::time::sleep(DISCOVERY_RETRY).await;
    }
}

/// Publishes a poll's table on every proxy generation (new clients and running sessions'
/// next statements).
pub(super) fn publish(shared: &Shared, polled: &[Polled]) {
    for p in std::iter::once(shared.proxy.load_full()).chain(shared.generations()) {
        let old = p.routing.load_full();
        let new = over_cluster_table(&old, polled);
        if new.version != old.version {
            if new.leader().map(|l| &l.addr) != old.leader().map(|l| &l.addr) {
                tracing::info!(leader = ?new.leader().map(|l| l.addr.to_string()), "the cluster's leader changed");
            }
            p.routing.store(Arc::new(new));
            crate::metrics::routing_changed();
        }
    }
}

/// Keeps every generation's table following the cluster (module doc), every
/// `[routing] health_interval_ms`.
pub(super) async fn follow(shared: Arc<Shared>, mut known: Known) {
    loop {
        let config = shared.config.load_full();
        tokio::time::sleep(Duration::from_millis(config.routing.health_interval_ms)).await;
        let polled = poll(&config, &mut known).await;
        publish(&shared, &polled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: u64, role: &str, leader: Option<u64>) -> Polled {
        Polled {
            proxy: Some(format!("n{id}:8007")),
            answer: Ok(NodeView {
                cluster_mode: "raft".into(),
                node_id: id,
                role: role.into(),
                leader_id: leader,
                proxy_address: Some(format!("n{id}:8007")),
            }),
        }
    }

    fn silent(id: u64) -> Polled {
        Polled { proxy: Some(format!("n{id}:8007")), answer: Err("connection refused".into()) }
    }

    fn roles(t: &RoutingTable) -> Vec<(&str, Role, Health, Option<u64>)> {
        t.servers.iter().map(|s| (&*s.addr, s.role, s.health, s.lag_ms)).collect()
    }

    use Health::{Down, Up};
    use Role::{Follower, Leader, Proxy};

    #[test]
    fn the_agreed_leader_leads_the_others_follow() {
        let t = over_cluster_table(
            &RoutingTable::default(),
            &[view(1, "leader", Some(1)), view(2, "follower", Some(1)), view(3, "follower", Some(1))],
        );
        assert_eq!(
            roles(&t),
            [("n1:8007", Leader, Up, Some(0)), ("n2:8007", Follower, Up, Some(0)), ("n3:8007", Follower, Up, Some(0))]
        );
        assert!(t.servers.iter().all(|s| s.shoal && !s.follows_log));
        assert_eq!(t.version, 1);
        let again = over_cluster_table(
            &t,
            &[view(1, "leader", Some(1)), view(2, "follower", Some(1)), view(3, "follower", Some(1))],
        );
        assert_eq!(again.version, 1, "nothing changed: same version");
    }

    #[test]
    fn a_leader_the_others_do_not_name_is_not_the_leader() {
        // Node 1 still believes it leads; 2 and 3 moved on to 2.
        let t = over_cluster_table(
            &RoutingTable::default(),
            &[view(1, "leader", Some(1)), view(2, "leader", Some(2)), view(3, "follower", Some(2))],
        );
        assert!(t.leader().is_none());
        let t = over_cluster_table(&t, &[silent(1), view(2, "leader", Some(2)), view(3, "follower", Some(2))]);
        assert_eq!(t.leader().map(|l| &*l.addr), Some("n2:8007"));
    }

    #[test]
    fn a_silent_node_is_down_and_keeps_its_role_until_another_is_agreed() {
        let t = over_cluster_table(
            &RoutingTable::default(),
            &[view(1, "leader", Some(1)), view(2, "follower", Some(1)), view(3, "follower", Some(1))],
        );
        // The leader went silent; the others are electing (no leader named).
        let t = over_cluster_table(&t, &[silent(1), view(2, "candidate", None), view(3, "follower", None)]);
        assert_eq!(
            roles(&t),
            [("n1:8007", Leader, Down, None), ("n2:8007", Follower, Up, None), ("n3:8007", Follower, Up, None)]
        );
        assert!(t.servers[0].last_error.as_deref().is_some_and(|e| e.contains("connection refused")));
        // Node 3 leads now: the silent one follows (down), indexes are stable.
        let t = over_cluster_table(&t, &[silent(1), view(2, "follower", Some(3)), view(3, "leader", Some(3))]);
        assert_eq!(
            roles(&t),
            [("n1:8007", Follower, Down, None), ("n2:8007", Follower, Up, Some(0)), ("n3:8007", Leader, Up, Some(0))]
        );
    }

    #[test]
    fn entries_are_appended_never_removed() {
        // Node 3 never answered: no entry; a node seen for the first time is appended.
        let never = Polled { proxy: None, answer: Err("timed out".into()) };
        let t = over_cluster_table(&RoutingTable::default(), &[view(1, "leader", Some(1)), never.clone()]);
        assert_eq!(t.servers.len(), 1);
        let t = over_cluster_table(&t, &[view(1, "leader", Some(1)), view(3, "follower", Some(1))]);
        assert_eq!(t.servers.iter().map(|s| (s.id, &*s.addr)).collect::<Vec<_>>(), [(0, "n1:8007"), (1, "n3:8007")]);
        // Node 3's proxy moved: the old entry stays, never a target.
        let mut moved = view(3, "follower", Some(1));
        if let Ok(v) = moved.answer.as_mut() {
            v.proxy_address = Some("n3:9007".into());
        }
        let t = over_cluster_table(&t, &[view(1, "leader", Some(1)), moved]);
        assert_eq!(
            roles(&t),
            [("n1:8007", Leader, Up, Some(0)), ("n3:8007", Proxy, Up, Some(0)), ("n3:9007", Follower, Up, Some(0))]
        );
    }

    #[test]
    fn the_startup_entry_becomes_the_nodes_own() {
        // `Proxy::new` made entry 0 from `[backends] primary` (the leader found at start).
        let old = RoutingTable { servers: vec![Server::new(0, "n2:8007", Leader)], version: 1 };
        let t = over_cluster_table(&old, &[view(1, "follower", Some(2)), view(2, "leader", Some(2))]);
        assert_eq!(roles(&t), [("n2:8007", Leader, Up, Some(0)), ("n1:8007", Follower, Up, Some(0))]);
        assert!(t.servers[0].shoal, "the entry is a node's proxy now");
        assert_eq!(t.version, 2);
    }
}
