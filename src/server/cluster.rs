//! A cluster node's wiring (`shoal start`): the Raft node over the local MariaDB, and the
//! write path and routing table following the node's role.
//!
//! # Role → routing table, capture, writes
//!
//! Entry 0 of the routing table is the local MariaDB (it applies the log: `follows_log`);
//! the leader's proxy is an entry of its own (`shoal`), added when first seen and kept
//! (indexes are stable), its role `Proxy` while another node leads. [`cluster_table`]
//! computes it; [`Write`] says what happens to writes.
//!
//! | this node | local MariaDB | leader's proxy | capture | writes |
//! |---|---|---|---|---|
//! | leads, log applied, MariaDB writable | `Leader` | — | on (Raft durability) | run here |
//! | leads, catching up | `Leader` | — | off | refused: "just elected, retry shortly" |
//! | follows, leader's proxy known | `Follower` | `Leader` | off | forwarded to the leader's proxy (port 8007 there), results and errors as it gives them |
//! | follows, leader or its proxy unknown | `Follower` | — | off | refused, naming the leader or saying none is known |
//!
//! Why the leader's proxy and not its MariaDB: a write forwarded to the leader's MariaDB
//! would escape capture (it would be an unmanaged write) unless the follower ran the XA
//! protocol itself and waited for the leader's Raft commit; through the leader's proxy
//! the leader's own session does all of it, and the follower stays a plain proxy.
//! The cost is one more hop (measured in docs/cluster.md).
//!
//! A follower in contact with its leader counts as fresh for reads (`lag_ms = 0`);
//! read-your-writes does not rest on lag but on LSN waits (`route` row 6a).
//!
//! # The local MariaDB's health, handovers
//!
//! `watch_local` asks the local MariaDB `SELECT 1` every [`LOCAL_PROBE_INTERVAL`]; after
//! `[routing] failures_before_down` failures in a row the node is not ready
//! ([`crate::cluster::Node::set_ready`]): it stands for no election, and a leader hands
//! the lead over (the supervisor's step-down); after `successes_before_up` it is ready
//! again. The routing table's health checker takes the same MariaDB out of the read
//! rotation on its own schedule.
//!
//! During a handover (`handover_hook`) the leader holds statements that would start a
//! write transaction (`writes_held`), waits for the open ones, then, handed over, refuses
//! writes until it learns the new leader's proxy — the held statements wait through all
//! of it (`failover_buffer_ms`) and are forwarded there.

use std::sync::Arc;
use std::time::Duration;

use super::{node_name, service_opts, start_capture, Shared};
use crate::cluster::settings::{self, Plan};
use crate::cluster::{Node, Start};
use crate::config::Config;
use crate::route::{Role, RoutingTable, Server};

/// What writes on this node do now (see the module table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Captured here (this node leads and is ready).
    Here,
    /// Forwarded to the leader's proxy at this address.
    Forward(String),
    /// Refused with this message.
    Refused(String),
}

/// The routing table for `write` from the previous one: pure (module table).
pub fn cluster_table(old: &RoutingTable, write: &Write, leading: bool, leader_known: bool) -> RoutingTable {
    let mut t = old.clone();
    if let Some(local) = t.servers.first_mut() {
        local.role = if leading { Role::Leader } else { Role::Follower };
        local.follows_log = true;
        local.lag_ms = (leading || leader_known).then_some(0);
    }
    let proxy = match write {
        Write::Forward(addr) => Some(addr.as_str()),
        _ => None,
    };
    for s in t.servers.iter_mut().skip(1) {
        s.role = if Some(&*s.addr) == proxy { Role::Leader } else { Role::Proxy };
    }
    if let Some(addr) = proxy {
        if !t.servers.iter().any(|s| &*s.addr == addr) {
            let id = t.servers.len();
            t.servers.push(Server { shoal: true, ..Server::new(id, addr, Role::Leader) });
        }
    }
    let key = |t: &RoutingTable| t.servers.iter().map(|s| (s.role, s.lag_ms, s.follows_log)).collect::<Vec<_>>();
    if t.servers.len() != old.servers.len() || key(&t) != key(old) {
        t.version += 1;
    }
    t
}

/// The message of a refused write: pure.
///
/// | leader | message |
/// |---|---|
/// | this node | just elected: it takes writes once it has applied the log |
/// | another, proxy not known yet | names the leader, "retry shortly" |
/// | none | no leader is known |
pub fn refusal(leader: Option<u64>, me: u64) -> String {
    match leader {
        Some(id) if id == me => {
            "this node was just elected leader: it takes writes once it has applied the log (retry shortly)".into()
        }
        Some(id) => format!(
            "this cluster node does not lead and cannot reach the leader's proxy yet (node {id}; retry shortly, or see `shoal servers`)"
        ),
        None => "this cluster node does not lead and no leader is known: writes are unavailable".into(),
    }
}

/// Publishes the write path on every proxy generation (new clients and running sessions'
/// next statements): capture, the refusal, the routing table.
fn publish(
    shared: &Shared,
    capture: Option<Arc<crate::capture::Capture>>,
    write: &Write,
    leading: bool,
    leader_known: bool,
) {
    let refused = match write {
        Write::Refused(why) => Some(Arc::new(why.clone())),
        _ => None,
    };
    // In this order, so a statement never finds writes neither refused nor captured while
    // the table still says this node leads: a refusal first, the table, the capture, and
    // a refusal lifted last.
    for p in shared.generations() {
        if refused.is_some() {
            p.writes_refused.store(refused.clone());
        }
        let old = p.routing.load_full();
        let new = cluster_table(&old, write, leading, leader_known);
        if new.version != old.version {
            p.routing.store(Arc::new(new));
            crate::metrics::routing_changed();
        }
        p.capture.store(capture.clone());
        if refused.is_none() {
            p.writes_refused.store(None);
        }
        if let Write::Forward(addr) = write {
            p.unreachable_leader.send_if_modified(|u| u.as_deref() == Some(addr.as_str()) && u.take().is_some());
        }
    }
}

/// Before the node knows its role: reads run here, writes are refused.
pub(super) fn publish_unknown_role(shared: &Shared, me: u64) {
    publish(shared, None, &Write::Refused(refusal(None, me)), false, false);
}

/// Gives every proxy generation the cluster link (applied LSN, leader's commit point).
fn link_generations(shared: &Shared, node: &Arc<Node>, applied: &tokio::sync::watch::Receiver<u64>) {
    for p in std::iter::once(shared.proxy.load_full()).chain(shared.generations()) {
        if p.cluster.load().is_some() {
            continue;
        }
        let weak = Arc::downgrade(node);
        let read_lsn: crate::frontend::ReadLsn = Box::new(move || {
            let weak = weak.clone();
            Box::pin(async move {
                match weak.upgrade() {
                    Some(n) => n.read_lsn().await,
                    None => Err("the cluster node stopped".into()),
                }
            })
        });
        p.cluster.store(Some(Arc::new(crate::frontend::ClusterLink { applied: applied.clone(), read_lsn })));
    }
}

pub use crate::cluster::network::endpoints;

/// How often a cluster node asks its local MariaDB whether it answers.
pub const LOCAL_PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// Longest one such probe (connect and `SELECT 1`) may take before it counts as failed.
pub const LOCAL_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Keeps the node's readiness at the local MariaDB's health (module doc).
async fn watch_local(node: std::sync::Weak<Node>, config: Arc<Config>) {
    use mysql_async::prelude::Queryable;
    let Ok((opts, _)) = service_opts(&config) else { return };
    let mut conn: Option<mysql_async::Conn> = None;
    let mut streak = crate::backend::health::Streak::default();
    let mut health = crate::route::Health::Up;
    let mut last_ok = true;
    loop {
        tokio::time::sleep(LOCAL_PROBE_INTERVAL).await;
        let probe = async {
            let mut c = match conn.take() {
                Some(c) => c,
                None => mysql_async::Conn::new(opts.clone()).await?,
            };
            c.query_drop("SELECT 1").await?;
            Ok::<_, mysql_async::Error>(c)
        };
        let ok = match tokio::time::timeout(LOCAL_PROBE_TIMEOUT, probe).await {
            Ok(Ok(c)) => {
                conn = Some(c);
                true
            }
            _ => false,
        };
        health = crate::backend::health::next_health(health, &mut streak, ok, &config.routing);
        let Some(n) = node.upgrade() else { return };
        n.set_ready(health == crate::route::Health::Up);
        // The first answer after a failed probe: the MariaDB may have restarted.
        let recovered = ok && !last_ok;
        last_ok = ok;
        if let Some(c) = conn.as_mut() {
            if recovered {
                if let Err(e) = crate::capture::setup::redo_decisions(c).await {
                    tracing::warn!(error = %e, "could not check the prepared transactions after the MariaDB came back");
                }
            }
            settle_decided(&n, c).await;
        }
        if ok {
            reapply_lost(&n, &opts, &config.node.data_dir).await;
        }
    }
}

/// Applies again, from the log, the transactions this node's MariaDB lost before they
/// were prepared (`capture::setup::take_lost`); those not applied yet stay for the next
/// probe. One the log no longer holds (purged) makes the node need migration.
async fn reapply_lost(node: &Node, opts: &mysql_async::Opts, data_dir: &std::path::Path) {
    use crate::capture::{coordinator, setup};
    let lost = setup::take_lost();
    if lost.is_empty() {
        return;
    }
    let (wal, wanted) = (node.wal().clone(), lost.clone());
    let scanned = tokio::task::spawn_blocking(move || {
        let mut found = Vec::new();
        coordinator::scan_captured(&wal, |_, xid, rows| {
            if wanted.contains(xid) {
                found.push((xid.to_string(), rows.clone()));
            }
        })
        .map(|()| found)
    })
    .await;
    let found = match scanned.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "lost transactions wait: this node's log could not be read");
            setup::lost_again(lost);
            return;
        }
    };
    let in_log: std::collections::BTreeSet<String> = found.iter().map(|(xid, _)| xid.clone()).collect();
    let gone: Vec<&String> = lost.iter().filter(|x| !in_log.contains(*x)).collect();
    if !gone.is_empty() {
        let why = format!(
            "transactions {gone:?} are committed in the cluster but were lost from this node's MariaDB, and its log no longer holds them"
        );
        tracing::error!("{why}: this node needs `shoal migrate`");
        let _ = std::fs::write(data_dir.join(crate::cluster::retention::NEEDS_MIGRATION_FILE), format!("{why}\n"));
    }
    let mut left = in_log;
    let mut applier = match crate::apply::Applier::connect(opts.clone()).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "lost transactions wait for the local MariaDB");
            setup::lost_again(left);
            return;
        }
    };
    for (xid, rows) in found {
        match applier.reapply(rows).await {
            Ok(()) => {
                tracing::warn!(%xid, "applied again a transaction this node's MariaDB had lost");
                left.remove(&xid);
            }
            Err(e) => tracing::error!(%xid, error = %e, "could not apply a lost transaction again; retrying"),
        }
    }
    applier.disconnect().await;
    setup::lost_again(left);
}

/// Delivers what is decided about prepared transactions no session holds any more: the
/// decisions sessions could not deliver, and the orphans the log has ruled out
/// ([`crate::capture::setup::orphans_decided_by`]: rolled back).
async fn settle_decided(node: &Node, conn: &mut mysql_async::Conn) {
    use crate::capture::setup;
    setup::settle_pending(conn).await;
    if !setup::has_orphans() {
        return;
    }
    let applied = node.raft().metrics().borrow().last_applied.map_or(0, |l| l.leader_id.term);
    let ruled_out = setup::orphans_decided_by(applied);
    for (i, (xid, _)) in ruled_out.iter().enumerate() {
        if let Err(e) = setup::settle(conn, xid, false).await {
            tracing::warn!(xid, error = %e, "could not roll back an orphaned prepared transaction yet; retrying");
            setup::unclaim_orphans(&ruled_out[i..]);
            return;
        }
    }
}

/// This node's part of a leader handover (module doc).
fn handover_hook(shared: Arc<Shared>, me: u64) -> crate::cluster::node::Handover {
    use crate::cluster::node::{HandoverStep, HANDOVER_DRAIN_MAX};
    use std::sync::atomic::Ordering;
    Arc::new(move |step| {
        let shared = shared.clone();
        Box::pin(async move {
            match step {
                HandoverStep::Begin { target, drain } => {
                    for p in shared.generations() {
                        p.writes_held.store(true, Ordering::SeqCst);
                    }
                    let started = tokio::time::Instant::now();
                    let open = || {
                        shared
                            .generations()
                            .iter()
                            .filter_map(|p| p.capture.load_full())
                            .map(|c| c.open_transactions())
                            .max()
                            .unwrap_or(0)
                    };
                    while drain && open() > 0 && started.elapsed() < HANDOVER_DRAIN_MAX {
                        tokio::time::sleep(crate::frontend::lease::FAILOVER_POLL).await;
                    }
                    tracing::info!(
                        target,
                        still_open = open(),
                        waited_ms = started.elapsed().as_millis() as u64,
                        "handover: new write transactions held, open ones drained"
                    );
                }
                HandoverStep::End { target, handed_over } => {
                    if handed_over {
                        publish(&shared, None, &Write::Refused(refusal(Some(target), me)), false, true);
                    }
                    for p in shared.generations() {
                        p.writes_held.store(false, Ordering::SeqCst);
                    }
                }
            }
        })
    })
}

/// Capture on a cluster node while it leads: what keeps it running.
struct Leading {
    _tail: crate::capture::tail::BinlogTail,
    capture: Arc<crate::capture::Capture>,
}

/// How long a new leader waits to have applied every entry in its log before it takes
/// writes.
pub const LEADER_CATCH_UP_MAX: Duration = Duration::from_secs(30);

/// A cluster node's write path and routing follow its role (module table): while it leads, client write
/// transactions are captured from its MariaDB (writable) and proposed to the Raft log;
/// while it follows, its MariaDB is `read_only=ON` and committed entries are applied to
/// it. A new leader first applies everything in its log (earlier terms included).
pub(super) async fn lead_while_leader(shared: Arc<Shared>, node: std::sync::Weak<Node>, config: Arc<Config>) {
    let Some((mut metrics, me)) = node.upgrade().map(|n| (n.raft().metrics(), n.id())) else { return };
    if let Some(n) = node.upgrade() {
        n.set_handover(handover_hook(shared.clone(), me));
    }
    tokio::spawn(watch_local(node.clone(), config.clone()));
    let (applied_tx, applied) = tokio::sync::watch::channel(0u64);
    tokio::spawn(follow_applied(metrics.clone(), applied_tx));
    let mut leading: Option<Leading> = None;
    let mut read_only: Option<bool> = None;
    // The leader whose proxy address we know, and that address.
    let mut leader_proxy: Option<(u64, String)> = None;
    loop {
        let (is_leader, leader) = {
            let m = metrics.borrow();
            (m.state == openraft::ServerState::Leader, m.current_leader)
        };
        if let Some(n) = node.upgrade() {
            link_generations(&shared, &n, &applied);
        }
        if is_leader && leading.is_none() {
            // Statements this node forwarded to the leader it replaces: cut like a
            // follower's when that one does not answer.
            if let (Some((old, addr)), Some(n)) = (leader_proxy.take(), node.upgrade()) {
                tokio::spawn(cut_if_unreachable(shared.clone(), n, old, addr));
            }
            publish(&shared, None, &Write::Refused(refusal(Some(me), me)), true, true);
            match start_leading(&node, &config, &mut metrics).await {
                Ok((run, capture)) => {
                    publish(&shared, Some(capture), &Write::Here, true, true);
                    read_only = Some(false);
                    leading = Some(run);
                    tracing::info!("leading: write transactions are captured and proposed to the cluster");
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "could not start capture as the leader; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        } else if !is_leader {
            if leading.take().is_some() || read_only != Some(true) {
                match set_read_only(&config, true).await {
                    Ok(()) => read_only = Some(true),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "could not set the local MariaDB read_only; retrying")
                    }
                }
            }
            if leader_proxy.as_ref().map(|(id, _)| *id) != leader {
                if let (Some((old, addr)), Some(n)) = (leader_proxy.take(), node.upgrade()) {
                    tokio::spawn(cut_if_unreachable(shared.clone(), n, old, addr));
                }
            }
            if let (None, Some(id), Some(n)) = (&leader_proxy, leader, node.upgrade()) {
                match n.endpoints_of(id).await {
                    Ok(Some(e)) => {
                        tracing::info!(leader = id, proxy = %e.proxy, "following: writes are forwarded to the leader's proxy");
                        leader_proxy = Some((id, e.proxy));
                    }
                    Ok(None) => tracing::debug!(leader = id, "the leader serves no clients yet"),
                    Err(e) => {
                        tracing::warn!(leader = id, error = %e, "could not learn the leader's proxy address; retrying")
                    }
                }
            }
            let write = match &leader_proxy {
                Some((_, addr)) => Write::Forward(addr.clone()),
                None => Write::Refused(refusal(leader, me)),
            };
            publish(&shared, None, &write, false, leader.is_some());
        } else if let Some(run) = &leading {
            // Leading: a reload's new generation gets the capture and the table too.
            publish(&shared, Some(run.capture.clone()), &Write::Here, true, true);
        }
        let tick = tokio::time::sleep(Duration::from_secs(1));
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { break },
            _ = tick => {}
        }
    }
    publish(&shared, None, &Write::Refused(refusal(None, me)), false, false);
}

/// How long a replaced leader has to answer on the cluster port before the statements
/// forwarded to it are given up ("outcome unknown").
pub const REPLACED_LEADER_PROBE: Duration = Duration::from_millis(400);

/// After the leader changed from `old` (whose proxy is `proxy`): if `old` does not answer
/// within [`REPLACED_LEADER_PROBE`] (frozen, cut off, dead), statements forwarded to it
/// end with "outcome unknown" instead of waiting for it. One that answers (a planned
/// handover: it forwards the writes it held to the new leader) keeps its statements.
async fn cut_if_unreachable(shared: Arc<Shared>, node: Arc<Node>, old: u64, proxy: String) {
    if node.answers(old, REPLACED_LEADER_PROBE).await {
        return;
    }
    tracing::warn!(node = old, %proxy, "the replaced leader does not answer: statements forwarded to it end as outcome unknown");
    let addr: Arc<str> = proxy.into();
    for p in shared.generations() {
        p.unreachable_leader.send_replace(Some(addr.clone()));
    }
}

/// Keeps `tx` at the node's applied LSN (0: nothing applied).
async fn follow_applied(
    mut metrics: tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, openraft::BasicNode>>,
    tx: tokio::sync::watch::Sender<u64>,
) {
    loop {
        let applied = metrics.borrow().last_applied.map_or(0, |l| crate::cluster::log_store::lsn_of(l.index));
        tx.send_if_modified(|a| std::mem::replace(a, applied) != applied);
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// `SET GLOBAL read_only` on the local MariaDB.
async fn set_read_only(config: &Config, on: bool) -> anyhow::Result<()> {
    use mysql_async::prelude::Queryable;
    let (opts, _) = service_opts(config)?;
    let mut conn = mysql_async::Conn::new(opts).await?;
    conn.query_drop(format!("SET GLOBAL read_only = {}", if on { "ON" } else { "OFF" })).await?;
    let _ = conn.disconnect().await;
    Ok(())
}

/// Becomes the writer: applies the whole log, makes the MariaDB writable, starts the
/// binlog tail and the coordinator with Raft durability.
async fn start_leading(
    node: &std::sync::Weak<Node>,
    config: &Config,
    metrics: &mut tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, openraft::BasicNode>>,
) -> anyhow::Result<(Leading, Arc<crate::capture::Capture>)> {
    use crate::capture::{raft::RaftDurable, setup};
    use mysql_async::prelude::Queryable;
    let caught_up = metrics
        .wait_for(|m| m.state != openraft::ServerState::Leader || m.last_applied.map(|a| a.index) >= m.last_log_index);
    match tokio::time::timeout(LEADER_CATCH_UP_MAX, caught_up).await {
        Ok(Ok(m)) if m.state == openraft::ServerState::Leader => {}
        Ok(_) => anyhow::bail!("no longer the leader"),
        Err(_) => anyhow::bail!("the log was not applied within {LEADER_CATCH_UP_MAX:?}"),
    }
    let node = node.upgrade().ok_or_else(|| anyhow::anyhow!("the Raft node stopped"))?;
    let (opts, password) = service_opts(config)?;
    let mut conn = mysql_async::Conn::new(opts).await?;
    conn.query_drop("SET GLOBAL read_only = OFF").await?;
    setup::prepare_leader(&mut conn).await?;
    let (tail, capture) = start_capture(
        config,
        conn,
        &password,
        Arc::new(RaftDurable::new(&node, Duration::from_millis(config.cluster.write_timeout_ms))),
    )
    .await?;
    Ok((Leading { _tail: tail, capture: capture.clone() }, capture))
}

/// Prepared transactions a cluster node's last run left on its MariaDB: one whose entry
/// is not in this node's log was never proposed (the leader appends to its own log
/// before anyone else's): rolled back now. One whose entry is there waits for the log
/// ([`crate::capture::setup::orphan`], with the entry's term).
async fn decide_left_prepared(
    left: &[String],
    cfg: &crate::cluster::NodeConfig,
    opts: &mysql_async::Opts,
) -> anyhow::Result<()> {
    use crate::capture::setup;
    let (dir, wal_opts) = (cfg.wal_dir.clone(), cfg.wal.clone());
    let in_log = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        if !dir.exists() {
            return Ok(std::collections::HashMap::new());
        }
        let (wal, _) = crate::wal::Wal::open(&dir, wal_opts)?;
        let xids = crate::capture::coordinator::captured_xids(&wal)?;
        wal.close()?;
        Ok(xids)
    })
    .await??;
    let mut conn = mysql_async::Conn::new(opts.clone()).await?;
    let (mut waiting, mut rolled_back) = (0, 0);
    for xid in left {
        match in_log.get(xid) {
            Some(&term) => {
                setup::orphan(xid, term);
                waiting += 1;
            }
            None => {
                setup::settle(&mut conn, xid, false).await?;
                rolled_back += 1;
            }
        }
    }
    let _ = conn.disconnect().await;
    tracing::warn!(
        waiting,
        rolled_back,
        "prepared transactions left by the last run: those in the log wait for it, the others were rolled back"
    );
    Ok(())
}

/// Whether this node's WAL directory holds anything (the `has_state` of
/// [`settings::plan`]).
pub fn has_cluster_state(config: &Config) -> bool {
    let dir = config.node.data_dir.join("wal");
    std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some())
}

/// Starts the Raft node `plan` asks for (`None` for [`Plan::ProxyOnly`]) on
/// `[node] bind_address`. Its state machine is the local MariaDB (`[database]`):
/// committed entries are applied there (the leader side: `lead_while_leader`).
pub async fn start_cluster(config: &Config, plan: &Plan) -> anyhow::Result<Option<Node>> {
    if *plan == Plan::ProxyOnly {
        return Ok(None);
    }
    let auth = settings::load_auth(config)?;
    let (cfg, warnings) = settings::node_config(config, auth)?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let start = match plan {
        Plan::Join { via } => Start::Join { via: via.clone() },
        _ => Start::Restart,
    };
    // The state machine is the local MariaDB; what this node's capture proposed as the
    // leader is there already.
    let (opts, _) = service_opts(config)?;
    // Prepared transactions the last run left: the log decides them (commit when their
    // entry shows up committed, else roll back: `capture::setup::orphan`).
    let left = {
        let mut conn = mysql_async::Conn::new(opts.clone())
            .await
            .map_err(|e| anyhow::anyhow!("the local MariaDB {} ([database]): {e}", config.backends.primary))?;
        let left = crate::capture::setup::prepared_xids(&mut conn).await?;
        let _ = conn.disconnect().await;
        left
    };
    if !left.is_empty() {
        decide_left_prepared(&left, &cfg, &opts).await?;
    }
    let mut applier = crate::apply::Applier::connect(opts.clone())
        .await
        .map_err(|e| anyhow::anyhow!("the local MariaDB {} ([database]): {e}", config.backends.primary))?;
    applier.prepare().await?;
    let name = node_name(config);
    let own = Arc::new(move |e: &crate::capture::Entry| crate::capture::coordinator::proposed_here(&name, e));
    let applier = crate::apply::RaftApplier::new(applier)
        .skipping_own(own)
        .committing_orphans(opts)
        .flagging_migration(config.node.data_dir.join(crate::cluster::retention::NEEDS_MIGRATION_FILE));
    let node = Node::start(cfg.clone(), applier, start).await?;
    if *plan == Plan::Bootstrap {
        // The peer listener is up before we ask the others, so nodes bootstrapping at
        // the same moment find each other.
        let members = match settings::discover_members_patiently(&cfg, &config.cluster.peers).await {
            Ok(m) => m,
            Err(e) => {
                let _ = node.shutdown().await;
                anyhow::bail!("bootstrap: {e}");
            }
        };
        let nodes: std::collections::BTreeMap<_, _> =
            members.into_iter().map(|(id, addr)| (id, openraft::BasicNode::new(addr))).collect();
        tracing::info!(members = ?nodes.keys().collect::<Vec<_>>(), "bootstrap: initializing the cluster");
        if let Err(e) = node.raft().initialize(nodes).await {
            tracing::info!(error = %e, "bootstrap: the cluster is already initialized");
        }
    }
    tracing::info!(id = cfg.id, cluster = %cfg.addr, plan = ?plan, "cluster node running (applier: the local MariaDB)");
    Ok(Some(node))
}
