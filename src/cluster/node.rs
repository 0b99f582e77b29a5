//! [`Node`]: one running cluster member — its WAL, Raft, peer listener and the
//! preferred-leader supervisor.
//!
//! # Starting
//!
//! | [`Start`] | when | what happens |
//! |---|---|---|
//! | `Bootstrap { members }` | the first start of a new cluster | `initialize` with `members` (every initial voter, this node included); call it on one node, or on all of them with the same list |
//! | `Restart` | a member restarts | Raft resumes from the WAL (vote, log, commit point) and rejoins as follower |
//! | `Join { via }` | a new node | starts empty, asks the node at `via` (redirected to the leader) to add it as a learner, which returns once it caught up, then to make it a voter |
//!
//! [`Node::leave`] asks the leader to remove this node from the voters and the cluster,
//! then stops it.
//!
//! # Preferred leader (switchback)
//!
//! The lowest node id that is up to date leads. openraft 0.9 has no leadership transfer,
//! so the leader hands over itself when [`should_switch_back`] says so
//! ([`Node::switch_back`]):
//!
//! 1. pause proposals (new ones wait, up to [`PROPOSAL_PAUSE_WAIT_MAX`]) and wait until the
//!    target holds every entry (at most [`SWITCHBACK_CATCH_UP_MAX`]);
//! 2. turn elections off on every voter except the target (itself included), and its own
//!    heartbeats off;
//! 3. wait `election_timeout_max` + [`SWITCHBACK_LEASE_MARGIN`]: the voters' leader
//!    leases expire (a voter rejects votes while its lease on a live leader runs);
//! 4. tell the target to `trigger().elect()`; it wins the next term;
//! 5. resume proposals and heartbeats, turn elections back on everywhere. If the target
//!    has not won within [`SWITCHBACK_DEADLINE`], the same revert lets a normal election
//!    run. Voters turn elections back on by themselves when the pause they were asked for
//!    runs out (the switchback's own length plus [`ELECT_PAUSE_SLACK`]), so a leader that
//!    dies mid-switchback cannot leave the cluster unable to elect.
//!
//! The pause costs about one `election_timeout_max` plus the margin.
//!
//! Before step 1 and after step 5 the node's [`Handover`] hook runs (set by the server
//! layer, [`Node::set_handover`]): it holds new write transactions and waits, up to
//! [`HANDOVER_DRAIN_MAX`], for the open ones to finish, so a handover pauses writes
//! instead of failing them; afterwards it points the held ones at the new leader.
//!
//! # Switchover and step-down
//!
//! The same handover serves an operator's [`Node::switchover`] (`shoal switchover [--to
//! ID]`, `POST /cluster/switchover`; the target is chosen by [`switchover_target`]) and
//! the leader's step-down when its local MariaDB is down ([`Node::set_ready`]: the
//! server layer probes it). A node that is not ready stands for no election and is never
//! a handover target. A leader that got the lead by a switchover to a node that is not
//! the preferred one *holds* it: the automatic switchback leaves it alone until it
//! stops leading.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::ClientWriteError;
use openraft::{BasicNode, ChangeMembers, Config, ServerState, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::log_store::WalLogStore;
use super::network::{
    admin_call, serve, AdminHandler, AdminReply, AdminRequest, Endpoints, Network, PeerAuth, PeerStats,
};
use super::state_machine::{Applier, StateMachine};
use super::types::{Applied, Command, LogId, NodeId, Raft};
use crate::wal::{Wal, WalError, WalOptions};

/// Longest a handover waits for the open write transactions to finish (new ones are
/// held meanwhile); those still open then end with an error when they commit.
pub const HANDOVER_DRAIN_MAX: Duration = Duration::from_secs(3);

/// Longest a proposal waits while a switchback has proposals paused.
pub const PROPOSAL_PAUSE_WAIT_MAX: Duration = Duration::from_secs(5);
/// How often the supervisor checks whether to switch back to the preferred leader.
pub const SWITCHBACK_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// Added to `election_timeout_max` before the target elects itself (clock and
/// scheduling slack: the voters' leases must really be over).
pub const SWITCHBACK_LEASE_MARGIN: Duration = Duration::from_millis(100);
/// A lower voter at most this many entries behind the leader is a switchback target.
pub const SWITCHBACK_LAG_MAX_ENTRIES: u64 = 64;
/// With proposals paused, longest a switchback waits for the target to hold every entry.
pub const SWITCHBACK_CATCH_UP_MAX: Duration = Duration::from_secs(2);
/// Longest a switchback waits for the target to win before reverting.
pub const SWITCHBACK_DEADLINE: Duration = Duration::from_secs(5);
/// After a switchback that did not hand over, the supervisor waits this long before the
/// next attempt.
pub const SWITCHBACK_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Longest a peer may turn this node's elections off ([`AdminRequest::PauseElect`]),
/// whatever it asks for.
pub const ELECT_PAUSE_MAX: Duration = Duration::from_secs(60);
/// Added to a switchback's own duration for the elections pause it asks of the voters.
pub const ELECT_PAUSE_SLACK: Duration = Duration::from_secs(1);
/// Entries per AppendEntries (openraft's default); bytes are capped by the log reader.
pub const PAYLOAD_ENTRIES_MAX: u64 = 300;
/// Longest a joining node waits for the leader to add it (catch-up included).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// What a node needs to run.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id ([`super::node_id_from_name`] of `[node] id`).
    pub id: NodeId,
    /// Cluster address listened on, host:port (`[node] bind_address`).
    pub addr: String,
    /// Address peers dial, host:port (`[node] advertise_address`, else `addr`).
    pub advertise: String,
    /// The WAL directory (`[wal] directory`).
    pub wal_dir: PathBuf,
    /// WAL options; age/size retention must be off (only Raft purges).
    pub wal: WalOptions,
    /// The cluster secret every node shares, and mutual TLS if configured.
    pub auth: PeerAuth,
    /// Leader heartbeat interval (`[cluster] heartbeat_interval_ms`).
    pub heartbeat: Duration,
    /// Randomised election timeout bounds (`[cluster] election_timeout_{min,max}_ms`).
    pub election_timeout_min: Duration,
    /// Upper bound; also the leader lease a switchback waits out.
    pub election_timeout_max: Duration,
    /// Manual promotion only: no election timer, no switchback (`[cluster]
    /// disable_auto_election`).
    pub disable_auto_election: bool,
    /// Run the preferred-leader supervisor on this node.
    pub switchback: bool,
    /// How much log to keep (`[wal] retention_mb`, `retention_hours`).
    pub retention: super::retention::Retention,
}

/// How a node starts (table in the module doc).
#[derive(Debug, Clone)]
pub enum Start {
    /// A new cluster: every initial voter with its address.
    Bootstrap {
        /// Voters, this node included.
        members: BTreeMap<NodeId, String>,
    },
    /// A member restarting from its WAL.
    Restart,
    /// A new node joining through the node at `via` (host:port).
    Join {
        /// Any member; a follower redirects to the leader.
        via: String,
    },
}

/// What can go wrong running a node; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The WAL could not be opened or closed.
    #[error("WAL at {dir}: {source}")]
    Wal {
        /// The WAL directory.
        dir: PathBuf,
        /// What the WAL said.
        source: WalError,
    },
    /// The cluster address could not be listened on.
    #[error("cannot listen on {addr} ({source}); is another shoal running, or is [node] bind_address wrong?")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The Raft settings are invalid.
    #[error(
        "cluster settings: {0}; fix the [cluster] timeouts (heartbeat < election_timeout_min < election_timeout_max)"
    )]
    Config(String),
    /// openraft refused or failed an operation.
    #[error("{0}")]
    Raft(String),
    /// This node is not the leader (writes go to the leader).
    #[error("node {me} is not the leader (leader: {leader:?}); send writes to the leader")]
    NotLeader {
        /// This node.
        me: NodeId,
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// This node leads its term but no quorum has answered it for longer than the lease
    /// (it is cut off from the majority, which elects or has elected another leader).
    #[error("node {me} leads but no quorum answered it for more than {lease:?} (cut off from the majority?); send writes to the other nodes' leader")]
    NoQuorum {
        /// This node.
        me: NodeId,
        /// The lease (`election_timeout_max`).
        lease: Duration,
    },
    /// Proposals stayed paused (a switchback) longer than [`PROPOSAL_PAUSE_WAIT_MAX`].
    #[error("proposals are paused for a leader switchback for more than {PROPOSAL_PAUSE_WAIT_MAX:?}; retry")]
    Paused,
    /// Joining or leaving failed.
    #[error("membership change: {0}")]
    Membership(String),
}

/// What [`should_switch_back`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchDecision {
    /// Keep the current leader.
    Stay,
    /// Hand leadership to this (lower, up-to-date) voter.
    SwitchTo(NodeId),
}

/// Whether the leader `me` should hand over to a lower-id voter. Pure.
///
/// `matched` is the leader's replication progress (last log index each follower holds);
/// `last_index` the leader's last log index. A voter is *caught up* when it is at most
/// [`SWITCHBACK_LAG_MAX_ENTRIES`] behind `last_index` (under steady writes a follower is
/// rarely exactly level; the switchback pauses proposals and waits for it to be).
///
/// | `me` is leader | a voter with a lower id | the lowest caught-up one of those | → |
/// |---|---|---|---|
/// | no | – | – | `Stay` (only the leader hands over) |
/// | yes | none | – | `Stay` (`me` is the preferred leader) |
/// | yes | some, none caught up (or no replication progress known) | – | `Stay` (check again later) |
/// | yes | some | `t` | `SwitchTo(t)` |
pub fn should_switch_back(
    me: NodeId,
    is_leader: bool,
    voters: &BTreeSet<NodeId>,
    matched: &BTreeMap<NodeId, Option<u64>>,
    last_index: Option<u64>,
) -> SwitchDecision {
    let Some(last) = last_index.filter(|_| is_leader) else {
        return SwitchDecision::Stay;
    };
    let caught_up = |v: &NodeId| {
        matched.get(v).copied().flatten().is_some_and(|m| last.saturating_sub(m) <= SWITCHBACK_LAG_MAX_ENTRIES)
    };
    match voters.iter().filter(|&&v| v < me).find(|v| caught_up(v)) {
        Some(&t) => SwitchDecision::SwitchTo(t),
        None => SwitchDecision::Stay,
    }
}

/// Which voter a switchover (or a step-down) hands the lead to. Pure.
///
/// `ready` holds the voters whose local MariaDB is up (asked just before); a candidate
/// must also be caught up as in [`should_switch_back`].
///
/// | `to` | candidates | → |
/// |---|---|---|
/// | `Some(me)` | – | error: already leads |
/// | `Some(t)`, not a voter | – | error: not a voter |
/// | `Some(t)`, not ready or not caught up | – | error naming why |
/// | `Some(t)` | – | `t` |
/// | `None` | other voters, ready and caught up | the lowest of them (the preferred order) |
/// | `None` | none | error: no voter can take over |
pub fn switchover_target(
    me: NodeId,
    to: Option<NodeId>,
    voters: &BTreeSet<NodeId>,
    matched: &BTreeMap<NodeId, Option<u64>>,
    last_index: Option<u64>,
    ready: &BTreeSet<NodeId>,
) -> Result<NodeId, String> {
    let caught_up = |v: NodeId| {
        let m = matched.get(&v).copied().flatten();
        m.zip(last_index).is_some_and(|(m, last)| last.saturating_sub(m) <= SWITCHBACK_LAG_MAX_ENTRIES)
    };
    match to {
        Some(t) if t == me => Err(format!("node {t} leads already")),
        Some(t) if !voters.contains(&t) => Err(format!("node {t} is not a voter")),
        Some(t) if !ready.contains(&t) => {
            Err(format!("node {t} cannot lead: its MariaDB is down or it did not answer"))
        }
        Some(t) if !caught_up(t) => {
            Err(format!("node {t} is more than {SWITCHBACK_LAG_MAX_ENTRIES} entries behind; retry once it caught up"))
        }
        Some(t) => Ok(t),
        None => voters
            .iter()
            .copied()
            .find(|&v| v != me && ready.contains(&v) && caught_up(v))
            .ok_or_else(|| "no other voter is up, ready and caught up: nobody can take over".to_string()),
    }
}

/// Whether this node's election timer runs. Pure.
///
/// | `disable_auto_election` | ready (local MariaDB up) | paused by a switchback | elections |
/// |---|---|---|---|
/// | yes | – | – | off (manual promotion only) |
/// | no | no | – | off (it could not take writes) |
/// | no | yes | yes | off |
/// | no | yes | no | on |
pub fn elect_on(disable_auto_election: bool, ready: bool, paused: bool) -> bool {
    !disable_auto_election && ready && !paused
}

/// Where a handover is, for the server layer's [`Handover`] hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoverStep {
    /// About to hand the lead to `target`: hold new write transactions and, with `drain`,
    /// let the open ones finish (bounded by [`HANDOVER_DRAIN_MAX`]). A step-down does not
    /// drain: with the local MariaDB down, none can finish.
    Begin {
        /// The node asked to take over.
        target: NodeId,
        /// Wait for the open write transactions.
        drain: bool,
    },
    /// Over: `handed_over` says whether the target leads now. Release the held writes.
    End {
        /// The node asked to take over.
        target: NodeId,
        /// Whether it leads now.
        handed_over: bool,
    },
}

/// The server layer's part of a handover (see the module doc).
pub type Handover =
    Arc<dyn Fn(HandoverStep) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// Whether a node has applied (nearly) all of its log: it could take writes at once as
/// leader (a new leader waits to have applied everything first). Pure.
///
/// | applied | last log index | up to date |
/// |---|---|---|
/// | – | none (empty log) | yes |
/// | none | `l` | `l` ≤ [`SWITCHBACK_LAG_MAX_ENTRIES`] |
/// | `a` | `l` | `l − a` ≤ [`SWITCHBACK_LAG_MAX_ENTRIES`] |
pub fn applied_up_to_date(applied: Option<u64>, last_index: Option<u64>) -> bool {
    match last_index {
        None => true,
        Some(l) => l.saturating_sub(applied.unwrap_or(0)) <= SWITCHBACK_LAG_MAX_ENTRIES,
    }
}

/// Whether `target` holds everything the leader has (the last check before handing over).
/// Pure.
pub fn is_level(matched: Option<u64>, last_index: Option<u64>) -> bool {
    last_index.is_some() && matched == last_index
}

/// What a node is, as routing and status see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Leads, and a quorum answered within the lease: takes writes.
    Leader,
    /// Leads its term in its own view, but no quorum answered within the lease: it is cut
    /// off (or has just been elected and heard no acks yet). Takes no writes.
    LeaderWithoutQuorum,
    /// Follows a leader, or waits for one.
    Follower,
    /// Campaigns.
    Candidate,
    /// Receives the log without a vote.
    Learner,
    /// Raft stopped.
    Stopped,
}

/// Whether a node in `state`, whose last quorum acknowledgement is `millis_since_ack` old,
/// may take writes. Pure.
///
/// openraft 0.9 keeps a leader cut off from the majority in the leader state (until it
/// hears of a newer term); shoal treats it as stepped down once the lease has passed
/// without a quorum answering.
///
/// | state | `millis_since_ack` | serving leader |
/// |---|---|---|
/// | not leader | – | no |
/// | leader | none (no quorum answered yet) | no |
/// | leader | ≤ lease | yes |
/// | leader | > lease | no (cut off) |
pub fn serving_leader(state: ServerState, millis_since_ack: Option<u64>, lease: Duration) -> bool {
    state == ServerState::Leader && millis_since_ack.is_some_and(|ms| u128::from(ms) <= lease.as_millis())
}

/// The [`Role`] of a node (see [`serving_leader`]). Pure.
pub fn role_of(state: ServerState, millis_since_ack: Option<u64>, lease: Duration) -> Role {
    match state {
        ServerState::Leader if serving_leader(state, millis_since_ack, lease) => Role::Leader,
        ServerState::Leader => Role::LeaderWithoutQuorum,
        ServerState::Follower => Role::Follower,
        ServerState::Candidate => Role::Candidate,
        ServerState::Learner => Role::Learner,
        ServerState::Shutdown => Role::Stopped,
    }
}

/// What a switchback did, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SwitchReport {
    /// The node that was asked to take over.
    pub target: NodeId,
    /// Whether it leads now.
    pub handed_over: bool,
    /// How long proposals were paused.
    pub paused: Duration,
}

/// Shared by the node handle, the admin handler and the supervisor.
struct Shared {
    /// This node's settings.
    cfg: NodeConfig,
    /// The Raft handle.
    raft: Raft,
    /// Failure counters of the peer network.
    stats: Arc<PeerStats>,
    /// `true` while a switchback holds proposals.
    paused: watch::Sender<bool>,
    /// The last switchback this node ran as leader, for status and tests.
    last_switch: std::sync::Mutex<Option<SwitchReport>>,
    /// Bumped by every elections pause or resume, so a pause's timer only resumes
    /// elections if nothing newer happened.
    elect_generation: AtomicU64,
    /// Where this node serves clients ([`Node::set_endpoints`]), for peers that ask.
    endpoints: std::sync::Mutex<Option<Endpoints>>,
    /// When the log reached each length (members' lag in ms).
    clock: Arc<std::sync::Mutex<super::status::LogClock>>,
    /// The local MariaDB is up ([`Node::set_ready`]): this node may lead.
    ready: AtomicBool,
    /// Elections are paused for a switchback ([`Shared::pause_elect`]).
    elect_paused: AtomicBool,
    /// This node got the lead by an operator's switchover: no automatic switchback while
    /// it leads.
    hold: AtomicBool,
    /// The server layer's part of a handover.
    handover: std::sync::Mutex<Option<Handover>>,
    /// Woken when readiness changes, so a leader whose MariaDB died steps down at once.
    ready_changed: tokio::sync::Notify,
}

impl Shared {
    /// Turns elections off here for at most `for_` (capped at [`ELECT_PAUSE_MAX`]).
    fn pause_elect(self: &Arc<Self>, for_: Duration) {
        let generation = self.elect_generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.elect_paused.store(true, Ordering::SeqCst);
        self.apply_elect();
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(for_.min(ELECT_PAUSE_MAX)).await;
            if me.elect_generation.load(Ordering::SeqCst) == generation {
                tracing::warn!("elections were paused for a switchback that did not finish; resuming them");
                me.resume_elect();
            }
        });
    }

    /// Turns elections back on here (as [`elect_on`] says).
    fn resume_elect(&self) {
        self.elect_generation.fetch_add(1, Ordering::SeqCst);
        self.elect_paused.store(false, Ordering::SeqCst);
        self.apply_elect();
    }

    /// Sets the election timer as [`elect_on`] says.
    fn apply_elect(&self) {
        let on = elect_on(
            self.cfg.disable_auto_election,
            self.ready.load(Ordering::SeqCst),
            self.elect_paused.load(Ordering::SeqCst),
        );
        self.raft.runtime_config().elect(on);
    }

    /// The handover hook, if set.
    fn handover(&self) -> Option<Handover> {
        self.handover.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A running cluster member (see the module doc).
pub struct Node {
    /// State shared with the background tasks.
    shared: Arc<Shared>,
    /// The WAL, closed on shutdown so a restart can reopen it.
    wal: Wal,
    /// The peer listener.
    server: JoinHandle<()>,
    /// The preferred-leader supervisor, if enabled.
    supervisor: Option<JoinHandle<()>>,
    /// Records Raft metrics for Prometheus.
    observer: JoinHandle<()>,
    /// Snapshots and purges the log (`retention::run`).
    retention: JoinHandle<()>,
}

/// A submitted command's outcome: its log id and reply once committed and applied here.
pub type Submitted =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(LogId, Applied), ClusterError>> + Send + 'static>>;

fn raft_err(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Raft(e.to_string())
}

impl Node {
    /// Starts a node: opens the WAL, starts Raft and the peer listener, then bootstraps,
    /// restarts or joins as `start` says.
    pub async fn start<A: Applier>(cfg: NodeConfig, applier: A, start: Start) -> Result<Node, ClusterError> {
        // This node's slice of the cluster's election window (lower ids time out first).
        let (election_min, election_max) = super::settings::election_window(
            cfg.election_timeout_min.as_millis() as u64,
            cfg.election_timeout_max.as_millis() as u64,
            cfg.id,
        );
        let raft_cfg = Config {
            cluster_name: "shoal".into(),
            heartbeat_interval: cfg.heartbeat.as_millis() as u64,
            election_timeout_min: election_min,
            election_timeout_max: election_max,
            snapshot_policy: SnapshotPolicy::Never,
            // Purges are asked for by `retention::run`; none follows a snapshot by itself.
            max_in_snapshot_log_to_keep: u64::MAX,
            max_payload_entries: PAYLOAD_ENTRIES_MAX,
            enable_elect: !cfg.disable_auto_election,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ClusterError::Config(e.to_string()))?;
        let (wal, _report) = {
            let (dir, opts) = (cfg.wal_dir.clone(), cfg.wal.clone());
            tokio::task::spawn_blocking(move || Wal::open(&dir, opts))
                .await
                .map_err(raft_err)?
                .map_err(|source| ClusterError::Wal { dir: cfg.wal_dir.clone(), source })?
        };
        let listener = TcpListener::bind(&cfg.addr)
            .await
            .map_err(|source| ClusterError::Bind { addr: cfg.addr.clone(), source })?;
        let stats = Arc::new(PeerStats::default());
        let network = Network::new(cfg.id, cfg.auth.clone(), stats.clone());
        let saved = super::SavedSnapshot::decode(wal.meta().snapshot.as_deref().unwrap_or_default())
            .map_err(|reason| ClusterError::Config(format!("{}: {reason}", cfg.wal_dir.display())))?;
        let keeper = wal.clone();
        let save: super::SaveSnapshot = Arc::new(move |s| keeper.set_snapshot(&s.encode()).map_err(|e| e.to_string()));
        let machine = StateMachine::resuming(applier, saved, Some(save));
        let raft = Raft::new(cfg.id, Arc::new(raft_cfg), network, WalLogStore::new(wal.clone()), machine)
            .await
            .map_err(raft_err)?;
        let (paused, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            raft: raft.clone(),
            stats: stats.clone(),
            paused,
            last_switch: Default::default(),
            elect_generation: AtomicU64::new(0),
            endpoints: Default::default(),
            clock: Default::default(),
            ready: AtomicBool::new(true),
            elect_paused: AtomicBool::new(false),
            hold: AtomicBool::new(false),
            handover: Default::default(),
            ready_changed: tokio::sync::Notify::new(),
        });
        let transport = if cfg.auth.tls.is_some() { "mutual TLS" } else { "plain TCP" };
        tracing::info!(addr = %cfg.addr, transport, "cluster port listening");
        let server =
            tokio::spawn(serve(listener, cfg.id, cfg.auth.clone(), raft.clone(), admin_handler(&shared), stats));
        let supervisor = (!cfg.disable_auto_election).then(|| tokio::spawn(supervise(shared.clone())));
        let observer =
            tokio::spawn(super::observe::record(raft.clone(), cfg.election_timeout_max, shared.clock.clone()));
        let retention = tokio::spawn(super::retention::run(raft.clone(), wal.clone(), cfg.retention));
        let node = Node { shared, wal, server, supervisor, observer, retention };
        match start {
            Start::Restart => {}
            Start::Bootstrap { members } => {
                let nodes: BTreeMap<NodeId, BasicNode> =
                    members.into_iter().map(|(id, addr)| (id, BasicNode::new(addr))).collect();
                if let Err(e) = node.shared.raft.initialize(nodes).await {
                    tracing::info!(error = %e, "bootstrap: the cluster is already initialized");
                }
            }
            Start::Join { via } => node.join(&via).await?,
        }
        Ok(node)
    }

    /// The log's WAL (read-only uses: finding an entry again).
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// The Raft handle (metrics, membership, and tests).
    pub fn raft(&self) -> &Raft {
        &self.shared.raft
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.cfg.id
    }

    /// The cluster address peers dial (`[node] advertise_address` or `bind_address`).
    pub fn advertise(&self) -> &str {
        &self.shared.cfg.advertise
    }

    /// What this node is now (a leader cut off from the majority is
    /// [`Role::LeaderWithoutQuorum`]).
    pub fn role(&self) -> Role {
        let m = self.shared.raft.metrics().borrow().clone();
        role_of(m.state, m.millis_since_quorum_ack, self.shared.cfg.election_timeout_max)
    }

    /// One status row per member, this node first (see `status.rs`).
    pub fn status(&self) -> Vec<super::status::NodeStatus> {
        let m = self.shared.raft.metrics().borrow().clone();
        let role = role_of(m.state, m.millis_since_quorum_ack, self.shared.cfg.election_timeout_max);
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members: BTreeMap<NodeId, (String, bool)> =
            membership.nodes().map(|(id, n)| (*id, (n.addr.clone(), voters.contains(id)))).collect();
        let matched: Option<BTreeMap<NodeId, Option<u64>>> =
            m.replication.as_ref().map(|r| r.iter().map(|(id, l)| (*id, l.map(|l| l.index))).collect());
        let me = super::status::Local {
            id: self.id(),
            role,
            term: m.current_term,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
        };
        let clock = self.shared.clock.lock().unwrap_or_else(|e| e.into_inner());
        super::status::statuses(&me, &members, matched.as_ref(), &clock, Instant::now())
    }

    /// The leader this node knows of, and (on a leader) milliseconds since a quorum last
    /// acknowledged it — the "last contact" of `/cluster`.
    pub fn leader_and_contact(&self) -> (Option<NodeId>, Option<u64>) {
        let m = self.shared.raft.metrics().borrow().clone();
        (m.current_leader, m.millis_since_quorum_ack)
    }

    /// Peer connection counters.
    pub fn peer_stats(&self) -> &PeerStats {
        &self.shared.stats
    }

    /// Proposes a command; returns its log id and what applying it answered once it is
    /// committed and applied here. Only the leader accepts proposals.
    pub async fn propose(&self, command: Vec<u8>) -> Result<(LogId, Applied), ClusterError> {
        self.submit(command).await?.await
    }

    /// Submits `command` to the log: when this returns, its place in the log is fixed
    /// (commands submitted one after another are in that order); the returned future
    /// resolves once it is committed and applied here. Proposers that need an order
    /// submit from one task and await the futures anywhere.
    pub async fn submit(&self, command: Vec<u8>) -> Result<Submitted, ClusterError> {
        let mut paused = self.shared.paused.subscribe();
        match tokio::time::timeout(PROPOSAL_PAUSE_WAIT_MAX, paused.wait_for(|p| !*p)).await {
            Ok(Ok(_)) => {}
            _ => return Err(ClusterError::Paused),
        }
        // A leader cut off from the majority is not a serving leader: fail fast instead of
        // waiting for a commit that cannot come (a new leader waits for its first acks).
        let lease = self.shared.cfg.election_timeout_max;
        let mut rx = self.shared.raft.metrics();
        let settled = rx
            .wait_for(|m| m.state != ServerState::Leader || serving_leader(m.state, m.millis_since_quorum_ack, lease));
        let serving = match tokio::time::timeout(lease, settled).await {
            Ok(Ok(m)) => m.state != ServerState::Leader || serving_leader(m.state, m.millis_since_quorum_ack, lease),
            _ => false,
        };
        if !serving {
            return Err(ClusterError::NoQuorum { me: self.id(), lease });
        }
        let started = Instant::now();
        let done = self.shared.raft.client_write_ff(Command(command)).await.map_err(raft_err)?;
        let me = self.id();
        Ok(Box::pin(async move {
            match done.await {
                Ok(Ok(r)) => {
                    metrics::histogram!(crate::metrics::CLUSTER_COMMIT_DURATION)
                        .record(started.elapsed().as_secs_f64());
                    Ok((r.log_id, r.data))
                }
                Ok(Err(ClientWriteError::ForwardToLeader(f))) => {
                    Err(ClusterError::NotLeader { me, leader: f.leader_id })
                }
                Ok(Err(e)) => Err(raft_err(e)),
                Err(_) => Err(ClusterError::Raft("the Raft node stopped before the command was committed".into())),
            }
        }))
    }

    /// Joins the cluster through `via` (see [`Start::Join`]).
    async fn join(&self, via: &str) -> Result<(), ClusterError> {
        let req = AdminRequest::Join { id: self.id(), addr: self.shared.cfg.advertise.clone() };
        let mut target = via.to_string();
        // One redirect: a follower names the leader.
        for _ in 0..2 {
            let r = tokio::time::timeout(
                JOIN_TIMEOUT,
                admin_call(self.id(), &target, &self.shared.cfg.auth, self.shared.stats.clone(), req.clone()),
            )
            .await
            .map_err(|_| ClusterError::Membership(format!("{target} did not add us within {JOIN_TIMEOUT:?}")))?;
            match r.map_err(ClusterError::Membership)? {
                AdminReply::Done => return Ok(()),
                AdminReply::NotLeader { leader: Some((_, addr)) } => target = addr,
                AdminReply::NotLeader { leader: None } => {
                    return Err(ClusterError::Membership(format!(
                        "{target} knows no leader right now; retry the join when the cluster has one"
                    )))
                }
                other => return Err(ClusterError::Membership(format!("{target} answered Join with {other:?}"))),
            }
        }
        Err(ClusterError::Membership(format!("the leader moved while joining through {via}; retry")))
    }

    /// Leaves the cluster: the leader removes this node from the voters and the node
    /// list, then this node stops.
    pub async fn leave(self) -> Result<(), ClusterError> {
        self.leave_membership().await?;
        self.shutdown().await
    }

    /// The membership half of [`Node::leave`]: the leader removes this node; the node
    /// keeps running (the caller stops it, e.g. the HTTP API's `POST /cluster/leave`,
    /// which has only a shared handle).
    pub async fn leave_membership(&self) -> Result<(), ClusterError> {
        let m = self.shared.raft.metrics().borrow().clone();
        let leader = m.current_leader.ok_or_else(|| {
            ClusterError::Membership("no leader is known; leave needs one (retry when the cluster has a leader)".into())
        })?;
        if leader == self.id() {
            remove_member(&self.shared.raft, self.id()).await?;
        } else {
            let addr = m.membership_config.membership().get_node(&leader).map(|n| n.addr.clone()).ok_or_else(|| {
                ClusterError::Membership(format!("the leader {leader} has no address in the membership"))
            })?;
            match admin_call(
                self.id(),
                &addr,
                &self.shared.cfg.auth,
                self.shared.stats.clone(),
                AdminRequest::Leave { id: self.id() },
            )
            .await
            .map_err(ClusterError::Membership)?
            {
                AdminReply::Done => {}
                AdminReply::NotLeader { .. } => {
                    return Err(ClusterError::Membership("the leader moved while leaving; retry".into()))
                }
                other => return Err(ClusterError::Membership(format!("the leader answered Leave with {other:?}"))),
            }
        }
        Ok(())
    }

    /// Stops Raft, the listener and the supervisor, and closes the WAL.
    pub async fn shutdown(self) -> Result<(), ClusterError> {
        let tasks = [Some(self.server), self.supervisor, Some(self.observer), Some(self.retention)];
        for task in tasks.into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
        self.shared.raft.shutdown().await.map_err(raft_err)?;
        let wal = self.wal;
        let dir = self.shared.cfg.wal_dir.clone();
        tokio::task::spawn_blocking(move || wal.close())
            .await
            .map_err(raft_err)?
            .map_err(|source| ClusterError::Wal { dir, source })
    }

    /// Records where this node serves clients; peers ask for it
    /// ([`AdminRequest::Endpoints`]) to forward writes to the leader's proxy.
    pub fn set_endpoints(&self, endpoints: Endpoints) {
        *self.shared.endpoints.lock().unwrap_or_else(|e| e.into_inner()) = Some(endpoints);
    }

    /// Where member `id` serves clients: this node's own record, or asked of the member.
    pub async fn endpoints_of(&self, id: NodeId) -> Result<Option<Endpoints>, String> {
        if id == self.id() {
            return Ok(self.shared.endpoints.lock().unwrap_or_else(|e| e.into_inner()).clone());
        }
        let addr = self.member_addr(id)?;
        match admin_call(self.id(), &addr, &self.shared.cfg.auth, self.shared.stats.clone(), AdminRequest::Endpoints)
            .await?
        {
            AdminReply::Endpoints(e) => Ok(e),
            other => Err(format!("node {id} answered Endpoints with {other:?}")),
        }
    }

    /// Whether member `id` answers on the cluster port within `within` (a deposed leader
    /// that is frozen, cut off or dead does not).
    pub async fn answers(&self, id: NodeId, within: Duration) -> bool {
        let Ok(addr) = self.member_addr(id) else { return false };
        let s = &self.shared;
        let call = admin_call(s.cfg.id, &addr, &s.cfg.auth, s.stats.clone(), AdminRequest::Ready);
        matches!(tokio::time::timeout(within, call).await, Ok(Ok(_)))
    }

    /// The LSN (not Raft index) a linearizable read must see: the leader's committed (and applied) LSN,
    /// after it confirmed its leadership with a quorum (`get_read_log_id`). Asked of the
    /// leader when this node follows.
    pub async fn read_lsn(&self) -> Result<u64, String> {
        let m = self.shared.raft.metrics().borrow().clone();
        let leader = m.current_leader.ok_or("no leader is known")?;
        if leader == self.id() {
            return leader_read_lsn(&self.shared.raft).await;
        }
        let addr = self.member_addr(leader)?;
        match admin_call(self.id(), &addr, &self.shared.cfg.auth, self.shared.stats.clone(), AdminRequest::Committed)
            .await?
        {
            AdminReply::Committed { lsn } => Ok(lsn),
            AdminReply::NotLeader { .. } => Err(format!("node {leader} no longer leads")),
            other => Err(format!("node {leader} answered Committed with {other:?}")),
        }
    }

    /// The cluster address of member `id`.
    fn member_addr(&self, id: NodeId) -> Result<String, String> {
        let m = self.shared.raft.metrics().borrow().clone();
        m.membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
            .ok_or_else(|| format!("node {id} is not a member"))
    }

    /// The last switchback this node ran (as leader), if any.
    pub fn last_switchback(&self) -> Option<SwitchReport> {
        self.shared.last_switch.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Hands leadership to `target` (module doc, steps 1–5). Call on the leader.
    pub async fn switch_back(&self, target: NodeId) -> Result<SwitchReport, ClusterError> {
        switch_back(&self.shared, target, false, "switchback").await
    }

    /// Says whether the local MariaDB is up. A node that is not ready stands for no
    /// election, is never a handover target, and, leading, hands the lead over
    /// (the supervisor's step-down).
    pub fn set_ready(&self, ready: bool) {
        metrics::gauge!(crate::metrics::CLUSTER_READY).set(if ready { 1.0 } else { 0.0 });
        if self.shared.ready.swap(ready, Ordering::SeqCst) != ready {
            tracing::warn!(
                ready,
                "local MariaDB readiness changed: this node {} lead",
                if ready { "may" } else { "may not" }
            );
            self.shared.apply_elect();
            self.shared.ready_changed.notify_one();
        }
    }

    /// Whether this node may lead ([`Node::set_ready`]).
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::SeqCst)
    }

    /// Sets the server layer's part of every handover (module doc).
    pub fn set_handover(&self, hook: Handover) {
        *self.shared.handover.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    /// A planned leader change to `to` (or to the lowest ready, caught-up voter): on the
    /// leader it runs the handover; elsewhere it asks the leader to.
    pub async fn switchover(&self, to: Option<NodeId>) -> Result<SwitchReport, ClusterError> {
        let m = self.shared.raft.metrics().borrow().clone();
        if m.state == ServerState::Leader {
            return switchover(&self.shared, to, true).await;
        }
        let Some((leader, addr)) = known_leader(&self.shared.raft) else {
            return Err(ClusterError::NotLeader { me: self.id(), leader: None });
        };
        let s = &self.shared;
        match admin_call(s.cfg.id, &addr, &s.cfg.auth, s.stats.clone(), AdminRequest::Switchover { to }).await {
            Ok(AdminReply::Switched(r)) => Ok(r),
            Ok(AdminReply::Refused(why)) => Err(ClusterError::Membership(why)),
            Ok(other) => Err(ClusterError::Membership(format!("leader {leader} answered {other:?}"))),
            Err(e) => Err(ClusterError::Membership(format!("asking leader {leader}: {e}"))),
        }
    }
}

/// Removes `id` from the voters and the node list (on the leader).
async fn remove_member(raft: &Raft, id: NodeId) -> Result<(), ClusterError> {
    raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
        .await
        .map_err(|e| ClusterError::Membership(format!("removing voter {id}: {e}")))?;
    let m = raft.metrics().borrow().membership_config.clone();
    if m.membership().get_node(&id).is_some() {
        raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
            .await
            .map_err(|e| ClusterError::Membership(format!("removing node {id}: {e}")))?;
    }
    Ok(())
}

/// On the leader: the LSN a linearizable read must see (leadership confirmed by a
/// quorum; the larger of the read log id and what is applied here, so every write acked
/// here is covered).
async fn leader_read_lsn(raft: &Raft) -> Result<u64, String> {
    let (read, applied) = raft.get_read_log_id().await.map_err(|e| e.to_string())?;
    Ok(read.max(applied).map_or(0, |l| super::log_store::lsn_of(l.index)))
}

/// The leader this node knows of, with its address.
fn known_leader(raft: &Raft) -> Option<(NodeId, String)> {
    let m = raft.metrics().borrow().clone();
    let id = m.current_leader?;
    let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
    Some((id, addr))
}

fn admin_handler(shared: &Arc<Shared>) -> AdminHandler {
    let shared = shared.clone();
    Arc::new(move |req| {
        let shared = shared.clone();
        Box::pin(async move {
            let raft = &shared.raft;
            let is_leader = raft.metrics().borrow().state == ServerState::Leader;
            match req {
                AdminRequest::PauseElect { ms } => {
                    shared.pause_elect(Duration::from_millis(ms));
                    Ok(AdminReply::Done)
                }
                AdminRequest::ResumeElect => {
                    shared.resume_elect();
                    Ok(AdminReply::Done)
                }
                AdminRequest::Elect { hold } => {
                    shared.hold.store(hold, Ordering::SeqCst);
                    raft.trigger().elect().await.map_err(|e| e.to_string())?;
                    Ok(AdminReply::Done)
                }
                AdminRequest::Ready => {
                    let m = raft.metrics().borrow().clone();
                    let applied = m.last_applied.map(|l| l.index);
                    let ok = shared.ready.load(Ordering::SeqCst) && applied_up_to_date(applied, m.last_log_index);
                    Ok(AdminReply::Ready { ok })
                }
                AdminRequest::Switchover { .. } if !is_leader => {
                    Ok(AdminReply::NotLeader { leader: known_leader(raft) })
                }
                AdminRequest::Switchover { to } => match switchover(&shared, to, true).await {
                    Ok(r) => Ok(AdminReply::Switched(r)),
                    Err(e) => Ok(AdminReply::Refused(e.to_string())),
                },
                AdminRequest::Join { .. } | AdminRequest::Leave { .. } if !is_leader => {
                    Ok(AdminReply::NotLeader { leader: known_leader(raft) })
                }
                AdminRequest::Join { id, addr } => {
                    raft.add_learner(id, BasicNode::new(&addr), true)
                        .await
                        .map_err(|e| format!("adding {id} ({addr}) as a learner: {e}"))?;
                    raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                        .await
                        .map_err(|e| format!("promoting {id} to voter: {e}"))?;
                    tracing::info!(node = id, %addr, "node joined as voter");
                    Ok(AdminReply::Done)
                }
                AdminRequest::Leave { id } => {
                    remove_member(raft, id).await.map_err(|e| e.to_string())?;
                    tracing::info!(node = id, "node left the cluster");
                    Ok(AdminReply::Done)
                }
                AdminRequest::Endpoints => {
                    Ok(AdminReply::Endpoints(shared.endpoints.lock().unwrap_or_else(|e| e.into_inner()).clone()))
                }
                AdminRequest::Committed if !is_leader => Ok(AdminReply::NotLeader { leader: known_leader(raft) }),
                AdminRequest::Committed => Ok(AdminReply::Committed { lsn: leader_read_lsn(raft).await? }),
            }
        })
    })
}

/// Pauses (`Some(for_)`) or resumes (`None`) elections on `id`: this node locally,
/// others by admin request.
async fn set_elect(shared: &Arc<Shared>, id: NodeId, addr: &str, pause: Option<Duration>) -> Result<(), String> {
    if id == shared.cfg.id {
        match pause {
            Some(d) => shared.pause_elect(d),
            None => shared.resume_elect(),
        }
        return Ok(());
    }
    let req = match pause {
        Some(d) => AdminRequest::PauseElect { ms: d.as_millis() as u64 },
        None => AdminRequest::ResumeElect,
    };
    admin_call(shared.cfg.id, addr, &shared.cfg.auth, shared.stats.clone(), req).await.map(|_| ())
}

/// Voters with their cluster addresses.
type Voters = Vec<(NodeId, String)>;
/// The last log index each follower holds, as the leader sees it.
type Matched = BTreeMap<NodeId, Option<u64>>;

/// The voters (with their addresses) and the replication progress the leader sees.
fn voters_and_progress(m: &openraft::RaftMetrics<NodeId, BasicNode>) -> (Voters, Matched) {
    let membership = m.membership_config.membership();
    let voters = membership.voter_ids().filter_map(|v| membership.get_node(&v).map(|n| (v, n.addr.clone()))).collect();
    let matched =
        m.replication.as_ref().map(|r| r.iter().map(|(&id, l)| (id, l.map(|l| l.index))).collect()).unwrap_or_default();
    (voters, matched)
}

/// Whether node `id` says it may lead (this node: its own flag).
async fn is_ready(shared: &Arc<Shared>, id: NodeId, addr: &str) -> bool {
    if id == shared.cfg.id {
        return shared.ready.load(Ordering::SeqCst);
    }
    let s = shared;
    matches!(
        admin_call(s.cfg.id, addr, &s.cfg.auth, s.stats.clone(), AdminRequest::Ready).await,
        Ok(AdminReply::Ready { ok: true })
    )
}

/// A switchover on the leader: the target from [`switchover_target`], then the handover.
/// Asked by an operator (`operator`), a target that is not the lowest voter holds the
/// lead (no automatic switchback away from it); a step-down's target does not.
async fn switchover(shared: &Arc<Shared>, to: Option<NodeId>, operator: bool) -> Result<SwitchReport, ClusterError> {
    let m = shared.raft.metrics().borrow().clone();
    let (voters, matched) = voters_and_progress(&m);
    let mut ready = BTreeSet::new();
    for (v, addr) in voters.iter().filter(|(v, _)| *v != shared.cfg.id && to.is_none_or(|t| t == *v)) {
        if is_ready(shared, *v, addr).await {
            ready.insert(*v);
        }
    }
    let ids: BTreeSet<NodeId> = voters.iter().map(|(v, _)| *v).collect();
    let target = switchover_target(shared.cfg.id, to, &ids, &matched, m.last_log_index, &ready)
        .map_err(ClusterError::Membership)?;
    let hold = operator && shared.cfg.switchback && ids.first() != Some(&target);
    tracing::info!(target, hold, "switchover requested");
    switch_back(shared, target, hold, if operator { "switchover" } else { "step_down" }).await
}

async fn switch_back(
    shared: &Arc<Shared>,
    target: NodeId,
    hold: bool,
    reason: &'static str,
) -> Result<SwitchReport, ClusterError> {
    let r = hand_over(shared, target, hold, reason != "step_down").await;
    let outcome = if matches!(&r, Ok(r) if r.handed_over) { "handed_over" } else { "failed" };
    metrics::counter!(crate::metrics::CLUSTER_HANDOVERS, "reason" => reason, "outcome" => outcome).increment(1);
    r
}

async fn hand_over(
    shared: &Arc<Shared>,
    target: NodeId,
    hold: bool,
    drain: bool,
) -> Result<SwitchReport, ClusterError> {
    let raft = &shared.raft;
    let m = raft.metrics().borrow().clone();
    if m.state != ServerState::Leader {
        return Err(ClusterError::NotLeader { me: shared.cfg.id, leader: m.current_leader });
    }
    let (members, _) = voters_and_progress(&m);
    let Some(target_addr) = members.iter().find(|(v, _)| *v == target).map(|(_, a)| a.clone()) else {
        return Err(ClusterError::Membership(format!("node {target} is not a voter")));
    };
    if !is_ready(shared, target, &target_addr).await {
        return Err(ClusterError::Membership(format!(
            "node {target} cannot lead now (its MariaDB is down, or it did not answer); staying leader"
        )));
    }
    let started = Instant::now();
    let hook = shared.handover();
    if let Some(h) = &hook {
        h(HandoverStep::Begin { target, drain }).await;
    }
    shared.paused.send_replace(true);
    let term_before = m.current_term;
    // Long enough for the whole switchback; the voters resume by themselves after it.
    let elect_pause = shared.cfg.election_timeout_max
        + SWITCHBACK_LEASE_MARGIN
        + SWITCHBACK_DEADLINE
        + SWITCHBACK_CATCH_UP_MAX
        + ELECT_PAUSE_SLACK;
    let result = async {
        // Proposals are paused: wait until the target holds every entry.
        let mut rx = raft.metrics();
        let level = rx.wait_for(|x| {
            let matched = x.replication.as_ref().and_then(|r| r.get(&target).copied().flatten()).map(|l| l.index);
            is_level(matched, x.last_log_index)
        });
        if tokio::time::timeout(SWITCHBACK_CATCH_UP_MAX, level).await.is_err() {
            return Err(ClusterError::Membership(format!(
                "node {target} did not catch up within {SWITCHBACK_CATCH_UP_MAX:?}; staying leader"
            )));
        }
        for (v, addr) in members.iter().filter(|(v, _)| *v != target) {
            set_elect(shared, *v, addr, Some(elect_pause))
                .await
                .map_err(|e| ClusterError::Membership(format!("node {v}: {e}")))?;
        }
        raft.runtime_config().heartbeat(false);
        tokio::time::sleep(shared.cfg.election_timeout_max + SWITCHBACK_LEASE_MARGIN).await;
        let elect = AdminRequest::Elect { hold };
        admin_call(shared.cfg.id, &target_addr, &shared.cfg.auth, shared.stats.clone(), elect)
            .await
            .map_err(ClusterError::Membership)?;
        let won = rx.wait_for(|x| x.current_term > term_before && x.current_leader == Some(target));
        Ok::<bool, ClusterError>(tokio::time::timeout(SWITCHBACK_DEADLINE, won).await.is_ok_and(|r| r.is_ok()))
    }
    .await;
    // Revert on every path: heartbeats on, proposals resumed, elections back on (a voter
    // that misses this resumes by itself when its pause runs out).
    raft.runtime_config().heartbeat(true);
    let paused = started.elapsed();
    shared.paused.send_replace(false);
    if let Some(h) = &hook {
        h(HandoverStep::End { target, handed_over: matches!(result, Ok(true)) }).await;
    }
    for (v, addr) in &members {
        if let Err(e) = set_elect(shared, *v, addr, None).await {
            tracing::warn!(node = v, error = %e, "switchback: could not turn elections back on there; they resume by themselves within {elect_pause:?}");
        }
    }
    let handed_over = result?;
    tracing::info!(target, handed_over, paused_ms = paused.as_millis() as u64, "leader handover");
    let report = SwitchReport { target, handed_over, paused };
    *shared.last_switch.lock().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
    Ok(report)
}

/// What the supervisor does on one check. Pure.
///
/// | leads | ready (local MariaDB up) | holds (switchover) | switchback on | → |
/// |---|---|---|---|---|
/// | no | – | – | – | nothing (and the hold ends) |
/// | yes | no | – | – | step down: hand over to the lowest ready, caught-up voter |
/// | yes | yes | yes | – | nothing: the operator chose this leader |
/// | yes | yes | no | yes | [`should_switch_back`] |
/// | yes | yes | no | no | nothing |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supervise {
    /// Nothing to do.
    Idle,
    /// Hand the lead over: the local MariaDB is down.
    StepDown,
    /// Ask [`should_switch_back`].
    Prefer,
}

/// The supervisor's decision (see [`Supervise`]). Pure.
pub fn supervise_step(leads: bool, ready: bool, holds: bool, switchback: bool) -> Supervise {
    match (leads, ready, holds, switchback) {
        (false, ..) => Supervise::Idle,
        (true, false, ..) => Supervise::StepDown,
        (true, true, true, _) => Supervise::Idle,
        (true, true, false, true) => Supervise::Prefer,
        (true, true, false, false) => Supervise::Idle,
    }
}

/// Every [`SWITCHBACK_CHECK_INTERVAL`]: [`supervise_step`], then the step-down or the
/// switchback it asks for.
async fn supervise(shared: Arc<Shared>) {
    let mut retry_at = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SWITCHBACK_CHECK_INTERVAL) => {}
            _ = shared.ready_changed.notified() => {}
        }
        let m = shared.raft.metrics().borrow().clone();
        let leads = m.state == ServerState::Leader;
        if !leads {
            shared.hold.store(false, Ordering::SeqCst);
        }
        if Instant::now() < retry_at {
            continue;
        }
        let ready = shared.ready.load(Ordering::SeqCst);
        let step = supervise_step(leads, ready, shared.hold.load(Ordering::SeqCst), shared.cfg.switchback);
        let outcome: Result<(), String> = match step {
            Supervise::Idle => continue,
            Supervise::StepDown => match switchover(&shared, None, false).await {
                Ok(r) if r.handed_over => {
                    tracing::warn!(to = r.target, "stepped down: the local MariaDB is down");
                    continue;
                }
                Ok(r) => Err(format!("node {} did not take over", r.target)),
                Err(e) => Err(e.to_string()),
            },
            Supervise::Prefer => {
                let (voters, matched) = voters_and_progress(&m);
                let ids: BTreeSet<NodeId> = voters.iter().map(|(v, _)| *v).collect();
                match should_switch_back(shared.cfg.id, true, &ids, &matched, m.last_log_index) {
                    SwitchDecision::Stay => continue,
                    SwitchDecision::SwitchTo(t) => match switch_back(&shared, t, false, "switchback").await {
                        Ok(r) if r.handed_over => continue,
                        Ok(_) => Err(format!("node {t} did not take over")),
                        Err(e) => Err(e.to_string()),
                    },
                }
            }
        };
        if let Err(e) = outcome {
            tracing::warn!(step = ?step, error = %e, "leader handover failed; retrying in {SWITCHBACK_RETRY_AFTER:?}");
            retry_at = Instant::now() + SWITCHBACK_RETRY_AFTER;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of `should_switch_back`'s table.
    #[test]
    fn switch_back_rows() {
        let voters = BTreeSet::from([1, 2, 3]);
        let all = BTreeMap::from([(1, Some(900)), (2, Some(900)), (3, Some(900))]);
        assert_eq!(should_switch_back(3, false, &voters, &all, Some(900)), SwitchDecision::Stay, "not leader");
        assert_eq!(should_switch_back(1, true, &voters, &all, Some(900)), SwitchDecision::Stay, "already preferred");
        let lagging = BTreeMap::from([(1, Some(900 - SWITCHBACK_LAG_MAX_ENTRIES - 1)), (2, None), (3, Some(900))]);
        assert_eq!(should_switch_back(3, true, &voters, &lagging, Some(900)), SwitchDecision::Stay, "lower ones lag");
        assert_eq!(should_switch_back(3, true, &voters, &all, Some(900)), SwitchDecision::SwitchTo(1), "lowest");
        let near = BTreeMap::from([(1, Some(900 - SWITCHBACK_LAG_MAX_ENTRIES)), (2, Some(900)), (3, Some(900))]);
        assert_eq!(should_switch_back(3, true, &voters, &near, Some(900)), SwitchDecision::SwitchTo(1), "caught up");
        let one_lags = BTreeMap::from([(1, Some(5)), (2, Some(899)), (3, Some(900))]);
        assert_eq!(should_switch_back(3, true, &voters, &one_lags, Some(900)), SwitchDecision::SwitchTo(2));
        assert_eq!(should_switch_back(3, true, &voters, &BTreeMap::new(), None), SwitchDecision::Stay, "empty log");
    }

    /// Every row of `serving_leader`'s table, and the roles.
    #[test]
    fn serving_leader_rows() {
        let lease = Duration::from_millis(900);
        assert!(!serving_leader(ServerState::Follower, Some(1), lease));
        assert!(!serving_leader(ServerState::Leader, None, lease));
        assert!(serving_leader(ServerState::Leader, Some(900), lease));
        assert!(!serving_leader(ServerState::Leader, Some(901), lease));
        assert_eq!(role_of(ServerState::Leader, Some(10), lease), Role::Leader);
        assert_eq!(role_of(ServerState::Leader, Some(5000), lease), Role::LeaderWithoutQuorum);
        assert_eq!(role_of(ServerState::Candidate, None, lease), Role::Candidate);
        assert_eq!(role_of(ServerState::Learner, None, lease), Role::Learner);
        assert_eq!(role_of(ServerState::Shutdown, None, lease), Role::Stopped);
    }

    /// Every row of `switchover_target`'s table.
    #[test]
    fn switchover_target_rows() {
        let voters = BTreeSet::from([1, 2, 3]);
        let all = BTreeMap::from([(1, Some(900)), (2, Some(900)), (3, Some(900))]);
        let ready = BTreeSet::from([2, 3]);
        let pick = |to, matched: &BTreeMap<_, _>, ready: &BTreeSet<_>| {
            switchover_target(1, to, &voters, matched, Some(900), ready)
        };
        assert!(pick(Some(1), &all, &ready).unwrap_err().contains("leads already"));
        assert!(pick(Some(7), &all, &ready).unwrap_err().contains("not a voter"));
        assert!(pick(Some(2), &all, &BTreeSet::from([3])).unwrap_err().contains("MariaDB is down"));
        let lagging = BTreeMap::from([(1, Some(900)), (2, Some(10)), (3, Some(900))]);
        assert!(pick(Some(2), &lagging, &ready).unwrap_err().contains("behind"));
        assert_eq!(pick(Some(3), &all, &ready), Ok(3));
        assert_eq!(pick(None, &all, &ready), Ok(2), "lowest ready");
        assert_eq!(pick(None, &lagging, &ready), Ok(3), "lowest caught up");
        assert!(pick(None, &all, &BTreeSet::new()).unwrap_err().contains("nobody"));
    }

    /// Every row of `elect_on`'s and `supervise_step`'s tables.
    #[test]
    fn elect_and_supervise_rows() {
        assert!(!elect_on(true, true, false));
        assert!(!elect_on(false, false, false));
        assert!(!elect_on(false, true, true));
        assert!(elect_on(false, true, false));
        assert_eq!(supervise_step(false, false, true, true), Supervise::Idle);
        assert_eq!(supervise_step(true, false, true, true), Supervise::StepDown);
        assert_eq!(supervise_step(true, true, true, true), Supervise::Idle);
        assert_eq!(supervise_step(true, true, false, true), Supervise::Prefer);
        assert_eq!(supervise_step(true, true, false, false), Supervise::Idle);
    }

    #[test]
    fn applied_up_to_date_rows() {
        assert!(applied_up_to_date(None, None));
        assert!(applied_up_to_date(None, Some(SWITCHBACK_LAG_MAX_ENTRIES)));
        assert!(!applied_up_to_date(None, Some(SWITCHBACK_LAG_MAX_ENTRIES + 1)));
        assert!(applied_up_to_date(Some(100), Some(100 + SWITCHBACK_LAG_MAX_ENTRIES)));
        assert!(!applied_up_to_date(Some(100), Some(101 + SWITCHBACK_LAG_MAX_ENTRIES)));
    }

    #[test]
    fn level_rows() {
        assert!(is_level(Some(9), Some(9)));
        assert!(!is_level(Some(8), Some(9)));
        assert!(!is_level(None, Some(9)));
        assert!(!is_level(None, None));
    }
}
