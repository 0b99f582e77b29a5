//! From the configuration file to a [`NodeConfig`] (pure), the cluster secret from its
//! file, and the initial members from `[cluster] peers`.
//!
//! | field | becomes | rule |
//! |---|---|---|
//! | `[node] id` | `id` | [`node_id_from_name`]: `node-1` → 1 (required) |
//! | `[node] bind_address` | `addr` (listened on) | `host:port` |
//! | `[node] advertise_address` | `advertise` (given to peers) | `host:port`; required when `bind_address` is a wildcard (`0.0.0.0`, `[::]`) |
//! | `[node] data_dir` | `wal_dir` = `data_dir/wal` | |
//! | `[wal] segment_size_mb`, `fsync` | `wal` | the WAL's own retention stays off (only Raft purges) |
//! | `[wal] retention_mb`, `retention_hours` | `retention` | the log's limits ([`super::retention::purge_upto`]) |
//! | `[cluster] heartbeat_interval_ms` | `heartbeat` | ≥ 1 |
//! | `[cluster] election_timeout_min_ms`, `_max_ms` | the cluster's election window (unset: 2.5 and 4 heartbeats, [`election_timeouts`]); each node draws from its own slice of it ([`election_window`]) | heartbeat < min < max |
//! | `[cluster] disable_auto_election` | same | also turns the switchback off |
//! | `[cluster] never_leader` | — | not supported yet: an error, rather than a silent leader |
//! | `[cluster] secret_file` | `auth.secret` ([`load_secret`]) | required; first line, ≥ 16 bytes; unset = proxy only ([`plan`]) |
//! | `[cluster] tls_cert_file`, `tls_key_file`, `tls_ca_file` | `auth.tls` ([`load_tls`]) | all three or none (`Config::validate`); PEM, read at start |

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::network::{connect, PeerAuth, Secret};
use super::node::NodeConfig;
use super::tls::{PeerTls, TlsFiles};
use super::types::{node_id_from_name, NodeId};
use crate::config::{read_secret, Config};
use crate::wal::WalOptions;

/// A cluster setting that cannot work, naming the field and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {what}")]
pub struct SettingsError {
    /// `section.field`.
    pub field: &'static str,
    /// What is wrong and what to set instead.
    pub what: String,
}

fn bad(field: &'static str, what: impl Into<String>) -> SettingsError {
    SettingsError { field, what: what.into() }
}

fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

fn is_wildcard(addr: &str) -> bool {
    addr.starts_with("0.0.0.0:") || addr.starts_with("[::]:")
}

/// The node settings of `config` (table in the module doc), and warnings. Pure.
pub fn node_config(config: &Config, auth: PeerAuth) -> Result<(NodeConfig, Vec<String>), SettingsError> {
    let warnings = Vec::new();
    let n = &config.node;
    let c = &config.cluster;
    if n.id.is_empty() {
        return Err(bad("node.id", "a cluster node needs an id ending in its number, e.g. id = \"node-1\""));
    }
    let id = node_id_from_name(&n.id).map_err(|e| bad("node.id", e.to_string()))?;
    if !is_host_port(&n.bind_address) {
        return Err(bad(
            "node.bind_address",
            format!("{:?} is not host:port (e.g. \"10.0.0.1:7654\")", n.bind_address),
        ));
    }
    let advertise = match &n.advertise_address {
        Some(a) if !is_host_port(a) || is_wildcard(a) => {
            return Err(bad("node.advertise_address", format!("{a:?} is not a host:port peers can dial")))
        }
        Some(a) => a.clone(),
        None if is_wildcard(&n.bind_address) => {
            return Err(bad(
                "node.advertise_address",
                format!("bind_address {} listens on every interface; set the address peers dial", n.bind_address),
            ))
        }
        None => n.bind_address.clone(),
    };
    if c.never_leader {
        return Err(bad("cluster.never_leader", "not supported by the cluster layer yet; remove it"));
    }
    let hb = c.heartbeat_interval_ms;
    let (min, max) = election_timeouts(hb, c.election_timeout_min_ms, c.election_timeout_max_ms);
    if hb == 0 || hb >= min || min >= max {
        return Err(bad(
            "cluster.election_timeout_min_ms",
            format!("need heartbeat_interval_ms ({hb}) < election_timeout_min_ms ({min}) < election_timeout_max_ms ({max}), all ≥ 1"),
        ));
    }
    let wal = WalOptions::from_config(config.wal.segment_size_mb, config.wal.fsync, None);
    wal.validate().map_err(|e| bad("wal.segment_size_mb", e.to_string()))?;
    let cfg = NodeConfig {
        id,
        addr: n.bind_address.clone(),
        advertise,
        wal_dir: n.data_dir.join("wal"),
        wal,
        auth,
        heartbeat: Duration::from_millis(hb),
        election_timeout_min: Duration::from_millis(min),
        election_timeout_max: Duration::from_millis(max),
        disable_auto_election: c.disable_auto_election,
        switchback: !c.disable_auto_election,
        retention: retention(&config.wal),
    };
    Ok((cfg, warnings))
}

/// The election timeout's lower bound when it is not set, in tenths of a heartbeat.
pub const ELECTION_MIN_TENTHS: u64 = 25;
/// Its upper bound (the widest leader lease) when it is not set, in tenths of a heartbeat.
pub const ELECTION_MAX_TENTHS: u64 = 40;
/// Slices of the election window handed out by node id ([`election_window`]).
pub const ELECTION_SLOTS: u64 = 5;

/// The election timeout bounds: as set, else [`ELECTION_MIN_TENTHS`] /
/// [`ELECTION_MAX_TENTHS`] of a heartbeat (the defaults 100 ms → 250–400 ms; a WolfScale
/// file's 500 ms → 1250–2000 ms). An upper bound set alone keeps the lower one below it.
pub fn election_timeouts(heartbeat_ms: u64, min: Option<u64>, max: Option<u64>) -> (u64, u64) {
    let max = max.unwrap_or(heartbeat_ms.saturating_mul(ELECTION_MAX_TENTHS) / 10);
    let min = min.unwrap_or_else(|| (heartbeat_ms.saturating_mul(ELECTION_MIN_TENTHS) / 10).min(max.saturating_sub(1)));
    (min, max)
}

/// The part of the cluster's election window `[min, max)` (ms) that node `id` draws its
/// election timeout from, and whose end is its leader lease. Pure.
///
/// openraft 0.9 draws a node's timeout once, at start, uniformly from the window it is
/// given; a follower calls an election after its lease plus that timeout without a
/// heartbeat. Two followers that drew close timeouts split their votes at every election
/// of that run (a 5 s failover seen on three nodes), and which node wins is luck. Here
/// the window is cut into [`ELECTION_SLOTS`] slices and node `id` gets slice
/// `(id - 1) % ELECTION_SLOTS`: lower ids time out first, so the lowest id that is up to
/// date wins (the voters refuse a candidate with a shorter log), and no two of the first
/// five ids ever draw the same timeout.
///
/// | window | id | slice |
/// |---|---|---|
/// | 250–400 (the defaults) | 1 | 250–280 |
/// | 250–400 | 2 | 280–310 |
/// | 250–400 | 5 | 370–400 |
/// | 250–400 | 6 | 250–280 (the slices repeat) |
/// | 100–103 (narrower than one ms per slice) | any | 100–103 (the whole window) |
pub fn election_window(min: u64, max: u64, id: NodeId) -> (u64, u64) {
    let width = max.saturating_sub(min) / ELECTION_SLOTS;
    if width == 0 {
        return (min, max);
    }
    let slot = id.saturating_sub(1) % ELECTION_SLOTS;
    let lo = min + slot * width;
    (lo, if slot + 1 == ELECTION_SLOTS { max } else { lo + width })
}

/// `[wal] retention_mb` / `retention_hours` as the cluster's log limits (0: none).
pub fn retention(wal: &crate::config::WalSection) -> super::retention::Retention {
    super::retention::Retention {
        bytes_max: (wal.retention_mb > 0).then(|| wal.retention_mb.saturating_mul(1024 * 1024)),
        age_max: (wal.retention_hours > 0).then(|| Duration::from_secs(wal.retention_hours.saturating_mul(3600))),
    }
}

/// Longest `shoal start --bootstrap` waits for every `[cluster] peers` address to answer
/// (they may be starting at the same moment).
pub const BOOTSTRAP_PEERS_WAIT_MAX: Duration = Duration::from_secs(60);
/// Pause between two rounds of asking the initial peers while bootstrapping.
pub const BOOTSTRAP_PEERS_RETRY: Duration = Duration::from_millis(200);

/// What the binary asked for: `shoal start [--bootstrap]` or `shoal join VIA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `shoal start`; `bootstrap` is `--bootstrap` or `[cluster] bootstrap = true`.
    Start {
        /// Form a new cluster if this node holds no state yet.
        bootstrap: bool,
    },
    /// `shoal join VIA`: become a member through the node at `VIA` (host:port).
    Join {
        /// Any member's `[node] bind_address`.
        via: String,
    },
}

/// How the process runs, decided by [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The proxy alone, as before cluster mode (no `[cluster] secret_file`).
    ProxyOnly,
    /// Start Raft from the WAL; if it holds nothing yet, ask every `[cluster] peers`
    /// address for its id and initialize the cluster with them (this node included).
    Bootstrap,
    /// Start Raft from the WAL (a member restarting; an empty node waits to be added).
    Restart,
    /// Start empty and ask `via` to add this node (learner, then voter).
    Join {
        /// Any member.
        via: String,
    },
}

/// How the process runs. Pure; `has_state` is whether the WAL directory holds anything.
///
/// | `[cluster] secret_file` | command | WAL has state | plan |
/// |---|---|---|---|
/// | unset | `start` (with or without `--bootstrap`) | — | [`Plan::ProxyOnly`] (today's behaviour) |
/// | unset | `join` | — | error: a cluster node needs the secret |
/// | set | `start --bootstrap` | no | [`Plan::Bootstrap`] |
/// | set | `start --bootstrap` | yes | [`Plan::Restart`] (already a member: `--bootstrap` has nothing to do) |
/// | set | `start` | any | [`Plan::Restart`] |
/// | set | `join VIA` | no | [`Plan::Join`] |
/// | set | `join VIA` | yes | error: already a member; run `shoal start` (or clear `data_dir` to join afresh) |
pub fn plan(config: &Config, command: &Command, has_state: bool) -> Result<Plan, SettingsError> {
    let cluster = config.cluster.secret_file.is_some();
    match command {
        Command::Start { .. } if !cluster => Ok(Plan::ProxyOnly),
        Command::Join { .. } if !cluster => Err(bad(
            "cluster.secret_file",
            "shoal join runs a cluster node, which needs the cluster secret: copy the secret file from a member and set secret_file",
        )),
        Command::Start { bootstrap: true } if !has_state => Ok(Plan::Bootstrap),
        Command::Start { .. } => Ok(Plan::Restart),
        Command::Join { via } if !has_state => Ok(Plan::Join { via: via.clone() }),
        Command::Join { .. } => Err(bad(
            "node.data_dir",
            format!(
                "{} already holds this node's log (it is or was a member): run `shoal start`, or empty the directory to join afresh",
                config.node.data_dir.join("wal").display()
            ),
        )),
    }
}

/// Every initial member, asking the `[cluster] peers` until all answer or
/// [`BOOTSTRAP_PEERS_WAIT_MAX`] passes (see [`discover_members`]).
pub async fn discover_members_patiently(me: &NodeConfig, peers: &[String]) -> Result<BTreeMap<NodeId, String>, String> {
    let deadline = tokio::time::Instant::now() + BOOTSTRAP_PEERS_WAIT_MAX;
    loop {
        match discover_members(me, peers).await {
            Ok(m) => return Ok(m),
            Err(e) if e.contains("must be unique") || tokio::time::Instant::now() >= deadline => {
                return Err(format!("{e} (waited up to {BOOTSTRAP_PEERS_WAIT_MAX:?})"))
            }
            Err(e) => {
                tracing::info!(error = %e, "bootstrap: waiting for the initial peers");
                tokio::time::sleep(BOOTSTRAP_PEERS_RETRY).await;
            }
        }
    }
}

/// The cluster secret from `[cluster] secret_file` (its first line).
pub fn load_secret(config: &Config) -> Result<Secret, SettingsError> {
    let Some(path) = config.cluster.secret_file.as_deref() else {
        return Err(bad(
            "cluster.secret_file",
            "a cluster node needs the cluster secret: create one (`openssl rand -hex 32 > /etc/shoal/cluster.secret`) and set secret_file",
        ));
    };
    read_secret_file(path)
}

/// Mutual TLS from `[cluster] tls_cert_file`, `tls_key_file`, `tls_ca_file` (`None` when
/// unset); a file that cannot be read or is not PEM is an error naming its field and path.
pub fn load_tls(config: &Config) -> Result<Option<PeerTls>, SettingsError> {
    let c = &config.cluster;
    let (Some(cert), Some(key), Some(ca)) = (&c.tls_cert_file, &c.tls_key_file, &c.tls_ca_file) else {
        return Ok(None);
    };
    PeerTls::load(TlsFiles { cert, key, ca }).map(Some).map_err(|e| bad(e.field, format!("{}: {}", e.path, e.what)))
}

/// What this node proves and checks on peer connections: [`load_secret`] and [`load_tls`].
pub fn load_auth(config: &Config) -> Result<PeerAuth, SettingsError> {
    Ok(PeerAuth { secret: load_secret(config)?, tls: load_tls(config)? })
}

fn read_secret_file(path: &Path) -> Result<Secret, SettingsError> {
    let text = read_secret(path).map_err(|e| bad("cluster.secret_file", format!("reading {}: {e}", path.display())))?;
    Secret::new(text.as_bytes()).map_err(|e| bad("cluster.secret_file", format!("{}: {e}", path.display())))
}

/// The initial members for a bootstrap: this node plus every `[cluster] peers` address,
/// each peer's id learned from the authenticated handshake (so `peers` stays a plain
/// address list, as in WolfScale). Fails if a peer is unreachable, refuses the secret, or
/// two addresses answer with one id.
pub async fn discover_members(me: &NodeConfig, peers: &[String]) -> Result<BTreeMap<NodeId, String>, String> {
    let mut members = BTreeMap::from([(me.id, me.advertise.clone())]);
    for addr in peers.iter().filter(|a| **a != me.advertise) {
        let (id, _) = connect(addr, me.id, &me.auth)
            .await
            .map_err(|e| format!("[cluster] peers: {e}; every initial peer must be running to bootstrap"))?;
        if let Some(other) = members.insert(id, addr.clone()) {
            return Err(format!(
                "[cluster] peers: {addr} and {other} both answer as node {id}; node ids must be unique"
            ));
        }
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> PeerAuth {
        PeerAuth::plain(Secret::new(b"0123456789abcdef").unwrap())
    }

    fn base() -> Config {
        let mut c = Config::default();
        c.node.id = "node-2".into();
        c.node.bind_address = "10.0.0.2:7654".into();
        c.cluster.heartbeat_interval_ms = 100;
        c.cluster.election_timeout_min_ms = Some(300);
        c.cluster.election_timeout_max_ms = Some(900);
        c
    }

    /// The rows of the module doc's table.
    #[test]
    fn config_rows() {
        let (n, w) = node_config(&base(), secret()).unwrap();
        assert_eq!((n.id, n.addr.as_str(), n.advertise.as_str()), (2, "10.0.0.2:7654", "10.0.0.2:7654"));
        assert_eq!(n.wal_dir, base().node.data_dir.join("wal"));
        assert_eq!(n.wal.retention_hours, None);
        assert_eq!((n.heartbeat, n.election_timeout_max), (Duration::from_millis(100), Duration::from_millis(900)));
        assert!(w.is_empty() && n.switchback && !n.disable_auto_election);

        let err = |f: fn(&mut Config)| {
            let mut c = base();
            f(&mut c);
            node_config(&c, secret()).unwrap_err().field
        };
        assert_eq!(err(|c| c.node.id.clear()), "node.id");
        assert_eq!(err(|c| c.node.id = "node-0".into()), "node.id");
        assert_eq!(err(|c| c.node.bind_address = "7654".into()), "node.bind_address");
        assert_eq!(err(|c| c.node.bind_address = "0.0.0.0:7654".into()), "node.advertise_address");
        assert_eq!(err(|c| c.node.advertise_address = Some("0.0.0.0:1".into())), "node.advertise_address");
        assert_eq!(err(|c| c.cluster.never_leader = true), "cluster.never_leader");
        assert_eq!(err(|c| c.cluster.election_timeout_min_ms = Some(900)), "cluster.election_timeout_min_ms");
        assert_eq!(err(|c| c.cluster.heartbeat_interval_ms = 300), "cluster.election_timeout_min_ms");
        assert_eq!(election_timeouts(100, None, None), (250, 400));
        assert_eq!(election_timeouts(500, None, None), (1250, 2000), "a WolfScale file's heartbeat");
        assert_eq!(election_timeouts(100, None, Some(200)), (199, 200));
        assert_eq!(election_timeouts(100, Some(250), Some(1000)), (250, 1000));
    }

    #[test]
    fn election_windows_are_sliced_by_id() {
        assert_eq!(election_window(250, 400, 1), (250, 280));
        assert_eq!(election_window(250, 400, 2), (280, 310));
        assert_eq!(election_window(250, 400, 5), (370, 400));
        assert_eq!(election_window(250, 400, 6), (250, 280), "the slices repeat");
        assert_eq!(election_window(100, 103, 2), (100, 103), "too narrow to slice");
        assert_eq!(election_window(250, 402, 5), (370, 402), "the last slice takes the remainder");
        // The first five ids never share a slice, and every slice lies in the window.
        let slices: Vec<_> = (1..=5).map(|id| election_window(250, 400, id)).collect();
        assert!(slices.windows(2).all(|w| w[0].1 <= w[1].0));
        assert!(slices.iter().all(|&(lo, hi)| 250 <= lo && lo < hi && hi <= 400));

        let mut c = base();
        c.node.bind_address = "0.0.0.0:7654".into();
        c.node.advertise_address = Some("10.0.0.2:7654".into());
        c.wal.retention_hours = 24;
        c.cluster.disable_auto_election = true;
        let (n, w) = node_config(&c, secret()).unwrap();
        assert_eq!((n.addr.as_str(), n.advertise.as_str()), ("0.0.0.0:7654", "10.0.0.2:7654"));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(n.retention.age_max, Some(Duration::from_secs(24 * 3600)));
        assert_eq!(n.retention.bytes_max, None);
        assert!(n.disable_auto_election && !n.switchback);
    }

    /// The rows of [`plan`]'s table.
    #[test]
    fn plan_rows() {
        let plain = base();
        let mut node = base();
        node.cluster.secret_file = Some("/etc/shoal/cluster.secret".into());
        let start = |bootstrap| Command::Start { bootstrap };
        let join = Command::Join { via: "10.0.0.1:7654".into() };
        assert_eq!(plan(&plain, &start(false), false), Ok(Plan::ProxyOnly));
        assert_eq!(plan(&plain, &start(true), true), Ok(Plan::ProxyOnly));
        assert_eq!(plan(&plain, &join, false).unwrap_err().field, "cluster.secret_file");
        assert_eq!(plan(&node, &start(true), false), Ok(Plan::Bootstrap));
        assert_eq!(plan(&node, &start(true), true), Ok(Plan::Restart));
        assert_eq!(plan(&node, &start(false), false), Ok(Plan::Restart));
        assert_eq!(plan(&node, &start(false), true), Ok(Plan::Restart));
        assert_eq!(plan(&node, &join, false), Ok(Plan::Join { via: "10.0.0.1:7654".into() }));
        assert_eq!(plan(&node, &join, true).unwrap_err().field, "node.data_dir");
    }

    #[test]
    fn secret_file_rows() {
        let mut c = base();
        assert_eq!(load_secret(&c).unwrap_err().field, "cluster.secret_file");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        c.cluster.secret_file = Some(path.clone());
        assert!(load_secret(&c).unwrap_err().what.contains("reading"));
        std::fs::write(&path, "short\n").unwrap();
        assert!(load_secret(&c).unwrap_err().what.contains("at least 16"));
        std::fs::write(&path, "0123456789abcdef0123\nignored\n").unwrap();
        assert!(load_secret(&c).is_ok());
    }
}
