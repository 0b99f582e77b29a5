//! Raft commit latency and throughput on 3 local nodes, next to the WAL's own fsync
//! latency and group-commit rate measured in the same run. Run with
//! `cargo bench --bench raft`.
//!
//! * WAL, 1 caller: one 1 KiB record per append, waiting for durability (one
//!   `fdatasync` each): p50 latency.
//! * WAL, 64 callers: 64 threads appending one 1 KiB record each, group commit: records/s.
//! * Raft, 1 proposer: one 1 KiB command at a time on the leader, until committed on a
//!   quorum and applied on the leader: p50 and p99 latency.
//! * Raft, 64 proposers: 64 concurrent proposers of 1 KiB commands: commands/s.
//!
//! Targets (issue 11): Raft p50 ≤ 2 × WAL p50 + 0.2 ms; Raft throughput ≥ 60 % of the
//! WAL's group-commit rate. Nodes talk over TCP on 127.0.0.1; their WALs live under
//! `SHOAL_BENCH_DIR` (default the system temp dir), fsync on.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal::cluster::network::Secret;
use shoal::cluster::node::{Node, NodeConfig, Start};
use shoal::cluster::Recorder;
use shoal::wal::{NewRecord, Wal, WalOptions};

/// How long each measurement runs.
const RUN: Duration = Duration::from_secs(3);
/// Payload size.
const ENTRY_BYTES: usize = 1024;
/// Concurrent callers in the throughput rows.
const CALLERS: usize = 64;

fn payload(i: u64) -> Vec<u8> {
    shoal::wal::testkit::incompressible(ENTRY_BYTES, i | 1)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn wal_latency(base: &Path) -> Duration {
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let (wal, _) = Wal::open(dir.path(), WalOptions::default()).expect("open");
    let data = bytes::Bytes::from(payload(1));
    let mut lat = Vec::new();
    let start = Instant::now();
    while start.elapsed() < RUN {
        let t = Instant::now();
        wal.append(vec![NewRecord::new(1, 0, data.clone())]).wait().expect("append");
        lat.push(t.elapsed());
    }
    lat.sort();
    percentile(&lat, 0.5)
}

fn wal_group_commit(base: &Path) -> f64 {
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let (wal, _) = Wal::open(dir.path(), WalOptions::default()).expect("open");
    let data = bytes::Bytes::from(payload(2));
    let start = Instant::now();
    let counts: Vec<u64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (wal, data) = (wal.clone(), data.clone());
                s.spawn(move || {
                    let mut n = 0;
                    while start.elapsed() < RUN {
                        wal.append(vec![NewRecord::new(1, 0, data.clone())]).wait().expect("append");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    counts.iter().sum::<u64>() as f64 / start.elapsed().as_secs_f64()
}

async fn cluster(base: &Path) -> (tempfile::TempDir, Vec<Node>) {
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let secret = Secret::new(b"bench-secret-0123456789").expect("secret");
    let addrs: BTreeMap<u64, String> = (1..=3)
        .map(|id| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
            (id, l.local_addr().expect("addr").to_string())
        })
        .collect();
    let mut nodes = Vec::new();
    for (&id, addr) in &addrs {
        let cfg = NodeConfig {
            id,
            addr: addr.clone(),
            advertise: addr.clone(),
            wal_dir: dir.path().join(format!("node-{id}")),
            wal: WalOptions::default(),
            auth: shoal::cluster::network::PeerAuth::plain(secret.clone()),
            heartbeat: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(300),
            election_timeout_max: Duration::from_millis(900),
            disable_auto_election: false,
            switchback: false,
            retention: Default::default(),
        };
        let start = if id == 1 { Start::Bootstrap { members: addrs.clone() } } else { Start::Restart };
        nodes.push(Node::start(cfg, Recorder::new(), start).await.expect("start"));
    }
    let mut rx = nodes[0].raft().metrics();
    rx.wait_for(|m| m.current_leader == Some(1)).await.expect("leader");
    (dir, nodes)
}

async fn raft_latency(leader: &Node) -> (Duration, Duration) {
    let mut lat = Vec::new();
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < RUN {
        i += 1;
        let t = Instant::now();
        leader.propose(payload(i)).await.expect("propose");
        lat.push(t.elapsed());
    }
    lat.sort();
    (percentile(&lat, 0.5), percentile(&lat, 0.99))
}

async fn raft_throughput(leader: Arc<Node>) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..CALLERS as u64)
        .map(|c| {
            let leader = leader.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                let data = payload(c + 100);
                while start.elapsed() < RUN {
                    leader.propose(data.clone()).await.expect("propose");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let base = std::env::var_os("SHOAL_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let wal_p50 = wal_latency(&base);
    let wal_rate = wal_group_commit(&base);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (raft_p50, raft_p99, raft_rate) = rt.block_on(async {
        let (_dir, mut nodes) = cluster(&base).await;
        let (p50, p99) = raft_latency(&nodes[0]).await;
        let leader = Arc::new(nodes.remove(0));
        let rate = raft_throughput(leader.clone()).await;
        if let Ok(leader) = Arc::try_unwrap(leader) {
            let _ = leader.shutdown().await;
        }
        for n in nodes {
            let _ = n.shutdown().await;
        }
        (p50, p99, rate)
    });
    let latency_target = wal_p50 * 2 + Duration::from_micros(200);
    let rate_target = wal_rate * 0.6;
    println!("Raft on 3 local nodes vs the WAL, {ENTRY_BYTES}-byte entries, fsync on, {RUN:?} per row");
    println!("| measurement | value | target | met |");
    println!("|---|---|---|---|");
    println!("| WAL append p50, 1 caller | {wal_p50:?} | | |");
    println!("| WAL group commit, {CALLERS} callers | {wal_rate:.0} records/s | | |");
    println!(
        "| Raft commit p50 (p99), 1 proposer | {raft_p50:?} ({raft_p99:?}) | ≤ {latency_target:?} | {} |",
        if raft_p50 <= latency_target { "yes" } else { "no" }
    );
    println!(
        "| Raft throughput, {CALLERS} proposers | {raft_rate:.0} commands/s | ≥ {rate_target:.0} | {} |",
        if raft_rate >= rate_target { "yes" } else { "no" }
    );
}
