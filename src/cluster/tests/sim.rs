//! Seeded fault simulation of the consensus layer: 3 nodes (openraft + [`WalLogStore`] on
//! tempdir WALs + [`Recorder`]) joined by an in-memory transport that drops, delays and
//! partitions messages as a seeded RNG decides, while a client proposes to whoever leads.
//! After the faults stop, every node must converge on one log. Checked per seed:
//!
//! * at most one leader per term, over every node's reported history;
//! * every node applied the same sequence (the log matching property, end to end);
//! * every proposal that was acknowledged is in it (no acknowledged write lost).
//!
//! Time is real (the WAL writer is a thread), so a seed fixes the fault schedule, not the
//! interleaving; a failing seed is printed and can be rerun with `SHOAL_SIM_SEED=<seed>`.
//! `SHOAL_SIM_SEEDS=<n>` runs more seeds.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::{BasicNode, Config, OptionalSend, ServerState, Snapshot, SnapshotPolicy, Vote};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cluster::node::serving_leader;
use crate::cluster::types::{Command, Raft, TypeConfig};
use crate::cluster::{NodeId, Recorder, StateMachine, WalLogStore};
use crate::wal::{Wal, WalOptions};

/// Seeds run by default (each takes about two seconds).
const SEEDS_DEFAULT: u64 = 6;
/// How long faults are injected per seed.
const FAULTS_FOR: Duration = Duration::from_millis(1500);
/// After the faults stop, the time allowed to converge.
const CONVERGE_WITHIN: Duration = Duration::from_secs(15);
const NODES: [NodeId; 3] = [1, 2, 3];
/// `election_timeout_max` of the simulated nodes, which is openraft's leader lease.
const LEASE: Duration = Duration::from_millis(200);

/// The faults of one run, shared by every node's transport.
struct Faults {
    /// Decides drops and delays.
    rng: Mutex<StdRng>,
    /// Directed links that carry nothing.
    cut: Mutex<BTreeSet<(NodeId, NodeId)>>,
    /// Whether faults are on at all (off once the run converges).
    on: std::sync::atomic::AtomicBool,
    /// Every node's Raft, by id.
    rafts: Mutex<BTreeMap<NodeId, Raft>>,
}

/// A message's fate.
enum Fate {
    /// Arrives after this delay.
    Deliver(Duration),
    /// Lost on the way (a network error: openraft retries at once).
    Lost,
    /// The link is cut (unreachable: openraft backs off).
    Cut,
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("message dropped by the simulation")
    }
}
impl std::error::Error for Dropped {}

impl Faults {
    /// What happens to a message from → to.
    fn fate(&self, from: NodeId, to: NodeId) -> Fate {
        if !self.on.load(std::sync::atomic::Ordering::Relaxed) {
            return Fate::Deliver(Duration::ZERO);
        }
        if self.cut.lock().unwrap().contains(&(from, to)) {
            return Fate::Cut;
        }
        let mut rng = self.rng.lock().unwrap();
        if rng.random_ratio(1, 20) {
            return Fate::Lost;
        }
        Fate::Deliver(Duration::from_micros(rng.random_range(0..3000)))
    }

    fn target(&self, to: NodeId) -> Option<Raft> {
        self.rafts.lock().unwrap().get(&to).cloned()
    }
}

#[derive(Clone)]
struct SimNet {
    me: NodeId,
    faults: Arc<Faults>,
}

struct SimClient {
    me: NodeId,
    to: NodeId,
    faults: Arc<Faults>,
}

impl RaftNetworkFactory<TypeConfig> for SimNet {
    type Network = SimClient;
    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> SimClient {
        SimClient { me: self.me, to: target, faults: self.faults.clone() }
    }
}

type RpcErr = RPCError<NodeId, BasicNode, RaftError<NodeId>>;

impl SimClient {
    /// The target's Raft after the message's fate (and the answer's) is decided.
    async fn deliver(&self) -> Result<Raft, RpcErr> {
        let mut delay = Duration::ZERO;
        for fate in [self.faults.fate(self.me, self.to), self.faults.fate(self.to, self.me)] {
            match fate {
                Fate::Deliver(d) => delay += d,
                Fate::Lost => return Err(RPCError::Network(NetworkError::new(&Dropped))),
                Fate::Cut => return Err(RPCError::Unreachable(Unreachable::new(&Dropped))),
            }
        }
        tokio::time::sleep(delay).await;
        self.faults.target(self.to).ok_or_else(|| RPCError::Network(NetworkError::new(&Dropped)))
    }
}

impl RaftNetwork<TypeConfig> for SimClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        let raft = self.deliver().await?;
        raft.append_entries(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, _option: RPCOption) -> Result<VoteResponse<NodeId>, RpcErr> {
        let raft = self.deliver().await?;
        raft.vote(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let raft = self.deliver().await.map_err(|_| StreamingError::Unreachable(Unreachable::new(&Dropped)))?;
        raft.install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| StreamingError::RemoteError(RemoteError::new(self.to, e)))
    }
}

/// Prints the seed if the run panics.
struct SeedGuard(u64);
impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "simulation failed with seed {0}; rerun: SHOAL_SIM_SEED={0} cargo test --lib cluster::tests::sim",
                self.0
            );
        }
    }
}

async fn run(seed: u64) -> (usize, usize) {
    let _guard = SeedGuard(seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let faults = Arc::new(Faults {
        rng: Mutex::new(StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))),
        cut: Default::default(),
        on: true.into(),
        rafts: Default::default(),
    });
    let dir = tempfile::tempdir().unwrap();
    let config = Arc::new(
        Config {
            heartbeat_interval: 20,
            election_timeout_min: 60,
            election_timeout_max: LEASE.as_millis() as u64,
            snapshot_policy: SnapshotPolicy::Never,
            ..Default::default()
        }
        .validate()
        .unwrap(),
    );
    let mut recorders = BTreeMap::new();
    let history: Arc<Mutex<Vec<(u64, NodeId)>>> = Default::default();
    for id in NODES {
        let opts = WalOptions { fsync: false, ..WalOptions::default() };
        let (wal, _) = Wal::open(dir.path().join(format!("n{id}")), opts).unwrap();
        let rec = Recorder::new();
        let net = SimNet { me: id, faults: faults.clone() };
        let raft =
            Raft::new(id, config.clone(), net, WalLogStore::new(wal), StateMachine::new(rec.clone())).await.unwrap();
        let mut rx = raft.metrics();
        let h = history.clone();
        tokio::spawn(async move {
            loop {
                let m = rx.borrow_and_update().clone();
                if let Some(l) = m.current_leader {
                    h.lock().unwrap().push((m.current_term, l));
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
        faults.rafts.lock().unwrap().insert(id, raft);
        recorders.insert(id, rec);
    }
    let rafts = faults.rafts.lock().unwrap().clone();
    let members: BTreeMap<NodeId, BasicNode> =
        NODES.iter().map(|&id| (id, BasicNode::new(format!("sim-{id}")))).collect();
    rafts[&1].initialize(members).await.unwrap();

    // Faults: every 250 ms, cut one node off (1 in 4; half the time the leader), heal
    // (1 in 2) or leave the links as they are, on top of 5 % lost messages and 0-6 ms
    // delays. A client proposes to the serving leader with a short timeout.
    let acked: Arc<Mutex<BTreeSet<Vec<u8>>>> = Default::default();
    let start = Instant::now();
    let mut next_fault = start;
    let mut i = 0u64;
    while start.elapsed() < FAULTS_FOR {
        if Instant::now() >= next_fault {
            next_fault += Duration::from_millis(250);
            let mut cut = faults.cut.lock().unwrap();
            match rng.random_range(0..4) {
                0 => {
                    // Half the time the leader, so elections happen too.
                    let leader = NODES.into_iter().find(|id| rafts[id].metrics().borrow().state == ServerState::Leader);
                    let victim = match leader {
                        Some(l) if rng.random_bool(0.5) => l,
                        _ => NODES[rng.random_range(0..NODES.len())],
                    };
                    for &o in NODES.iter().filter(|&&o| o != victim) {
                        cut.insert((victim, o));
                        cut.insert((o, victim));
                    }
                }
                1 | 2 => cut.clear(),
                _ => {}
            }
        }
        // As `Node::propose` does: only a leader a quorum answered within the lease.
        let leader = NODES.into_iter().find(|id| {
            let m = rafts[id].metrics().borrow().clone();
            serving_leader(m.state, m.millis_since_quorum_ack, LEASE)
        });
        if let Some(l) = leader {
            let cmd = format!("s{seed}-{i}").into_bytes();
            i += 1;
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(300), rafts[&l].client_write(Command(cmd.clone()))).await
            {
                acked.lock().unwrap().insert(cmd);
            }
        } else {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    // Faults off: one more write through the leader, then every node must hold the same log.
    faults.on.store(false, std::sync::atomic::Ordering::Relaxed);
    faults.cut.lock().unwrap().clear();
    let deadline = Instant::now() + CONVERGE_WITHIN;
    loop {
        assert!(Instant::now() < deadline, "seed {seed}: no leader took the final write after the faults stopped");
        let leader = NODES.into_iter().find(|id| rafts[id].metrics().borrow().state == ServerState::Leader);
        if let Some(l) = leader {
            // Unique per attempt: a timed-out attempt may still commit.
            let fin = format!("s{seed}-final-{i}").into_bytes();
            i += 1;
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(500), rafts[&l].client_write(Command(fin.clone()))).await
            {
                acked.lock().unwrap().insert(fin);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seqs = loop {
        let seqs: Vec<Vec<Vec<u8>>> =
            recorders.values().map(|r| r.applied().into_iter().map(|x| x.command).collect()).collect();
        let done = seqs.windows(2).all(|w| w[0] == w[1]) && acked.lock().unwrap().iter().all(|a| seqs[0].contains(a));
        if done {
            break seqs;
        }
        assert!(Instant::now() < deadline, "seed {seed}: nodes did not converge on one log");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut log: BTreeSet<&Vec<u8>> = BTreeSet::new();
    for c in &seqs[0] {
        assert!(log.insert(c), "seed {seed}: {:?} was applied twice", String::from_utf8_lossy(c));
    }
    for a in acked.lock().unwrap().iter() {
        assert!(log.contains(a), "seed {seed}: acknowledged {:?} is not in the log", String::from_utf8_lossy(a));
    }
    let mut by_term: BTreeMap<u64, BTreeSet<NodeId>> = BTreeMap::new();
    for (term, l) in history.lock().unwrap().iter() {
        by_term.entry(*term).or_default().insert(*l);
    }
    for (term, ls) in &by_term {
        assert!(ls.len() <= 1, "seed {seed}: term {term} had leaders {ls:?}");
    }
    for raft in rafts.values() {
        let _ = raft.shutdown().await;
    }
    faults.rafts.lock().unwrap().clear();
    (seqs[0].len(), by_term.len())
}

#[test]
fn seeded_faults_keep_one_log() {
    let seeds: Vec<u64> = match std::env::var("SHOAL_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SHOAL_SIM_SEED is a number")],
        Err(_) => {
            let n = std::env::var("SHOAL_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(SEEDS_DEFAULT);
            (1..=n).collect()
        }
    };
    for seed in seeds {
        let t = Instant::now();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (entries, terms) = rt.block_on(run(seed));
        println!(
            "seed {seed}: {entries} commands applied identically on 3 nodes over {terms} terms in {:?}",
            t.elapsed()
        );
    }
}
