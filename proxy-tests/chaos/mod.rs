//! The chaos harness (`make chaos`; a short profile runs in `make test`): N `shoal start`
//! nodes, each with its own `mariadbd`, peers connected through userspace link
//! forwarders, a seeded fault plan (`plan`), workloads that record every outcome, and the
//! checker (`checker`) over what they saw and what the nodes hold once healed.
//!
//! Workloads, all through the nodes' proxies, the whole run:
//! * unique-serial inserts (lost and phantom writes), roaming between nodes;
//! * a bank: transfers between 10 accounts in transactions, and on every node a reader of
//!   the total balance, which must be the same at every read;
//! * read-your-writes probes: on every node a session writes a row and reads it back;
//! * registers: writers of unique values to a few keys, roaming between nodes, and readers
//!   of them on the node whose proxy reads with `read_consistency = "global"` (the
//!   highest id): that history must be linearizable (`linear`);
//! * the faults that need them add a 20 000-row transaction and DDL on the leader.
//!
//! A round may also slow one node's cluster links for its hold (`plan::Step::slow`).
//!
//! Every run prints its seed; `SHOAL_SEED=… ` replays the plan (timing is the machine's).
//! `SHOAL_CHAOS_NODES` (3 or 5) and `SHOAL_CHAOS_ROUNDS` size it. After the run, faults
//! are injected on purpose into the healed cluster (a write acknowledged by one node's
//! MariaDB alone, an applied row removed on one node, a read from a follower whose apply
//! is held) and the checker must report each: it is shown to catch what it looks for.

mod checker;
mod linear;
mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rand::{Rng, SeedableRng};

use self::checker::{check, report, BankRead, History, NodeState, Probe, Violation};
use self::linear::{RegKind, RegOp};
use self::plan::{plan, Fault, Faults, Step, Target};
use crate::cluster::links::Links;
use crate::cluster::{hold_apply, opts, Cluster, Timing, POLL, SERIAL, SETTLE_MAX};
use crate::failover::{keep_evidence, signal, Frozen};
use crate::workload::{run, serial_writer, Op, Outcome, Roaming};

/// Serial-writing connections.
const SERIAL_CLIENTS: usize = 6;
/// Connections making bank transfers.
const TRANSFER_CLIENTS: usize = 2;
/// Bank accounts, and what each holds at the start.
const ACCOUNTS: i64 = 10;
const OPENING_BALANCE: i64 = 1_000;
/// Register keys, connections writing them, and readers on the global-consistency node.
const REGISTERS: i64 = 4;
const REGISTER_WRITERS: usize = 2;
const REGISTER_READERS: usize = 2;
/// Pause between one register client's operations (bounds the history the search walks).
const REGISTER_PAUSE: Duration = Duration::from_millis(25);
/// Rows of the big transaction a leader is killed in.
const BIG_TRANSACTION_ROWS: u64 = 20_000;
/// First serial of the operations that are not the writers' inserts (big transactions,
/// DDL, the self-test's), so they share the serial history without colliding.
const SPECIAL_SERIALS: u64 = 1_000_000_000;
/// Longest the cluster may take to take writes from every client again after a heal.
const RECOVERY_MAX: Duration = Duration::from_secs(60);
/// Rounds of the short profile (`make test`).
const SHORT_ROUNDS: usize = 6;

/// What `make chaos` / `make test` asked for.
struct Profile {
    nodes: u64,
    rounds: usize,
    seed: u64,
    faults: Faults,
}

fn profile() -> Profile {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let seed = env("SHOAL_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 % 1_000_000
    });
    Profile {
        nodes: env("SHOAL_CHAOS_NODES").unwrap_or(3),
        rounds: env("SHOAL_CHAOS_ROUNDS").map_or(SHORT_ROUNDS, |r| r as usize),
        seed,
        // `make chaos` sets SHOAL_CHAOS_FAULTS=all; `make test` runs no kills.
        faults: if std::env::var("SHOAL_CHAOS_FAULTS").is_ok_and(|v| v == "all") {
            Faults::All
        } else {
            Faults::NoKills
        },
    }
}

/// What the workloads share.
struct Recorder {
    stop: Arc<AtomicBool>,
    serials: Arc<Mutex<Vec<Op>>>,
    bank: Arc<Mutex<Vec<BankRead>>>,
    probes: Arc<Mutex<Vec<Probe>>>,
    registers: Arc<Mutex<Vec<RegOp>>>,
    next_special: AtomicU64,
}

/// Writes unique values (client in the high bits) to random registers until `stop`.
async fn register_writer(
    client: usize,
    nodes: Vec<(u64, u16)>,
    seed: u64,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<RegOp>>>,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (0x5eed << 8) ^ client as u64);
    let mut roaming = Roaming::new(nodes, client, "chaos");
    let mut seq = 0i64;
    while !stop.load(Ordering::SeqCst) {
        let node = roaming.node();
        let Some(c) = roaming.conn().await else { continue };
        seq += 1;
        let (key, value) = (rng.random_range(1..=REGISTERS), ((client as i64 + 1) << 32) | seq);
        let start = Instant::now();
        let (r, usable) = run(c.query_drop(format!("UPDATE reg SET v = {value} WHERE k = {key}"))).await;
        let end = Instant::now();
        if !usable {
            roaming.broken();
        }
        let end = match r {
            Ok(()) => Some(end),
            Err((Outcome::Failed, _)) => continue,
            Err(_) => None,
        };
        log.lock().unwrap().push(RegOp { client, node, key, kind: RegKind::Write(value), start, end });
        tokio::time::sleep(REGISTER_PAUSE).await;
    }
    roaming.close().await;
}

/// Reads random registers through one node until `stop`; answered reads are recorded.
async fn register_reader(
    client: usize,
    node: (u64, u16),
    seed: u64,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<RegOp>>>,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (0x7eed << 8) ^ client as u64);
    let mut roaming = Roaming::new(vec![node], 0, "chaos");
    while !stop.load(Ordering::SeqCst) {
        let Some(c) = roaming.conn().await else { continue };
        let key = rng.random_range(1..=REGISTERS);
        let start = Instant::now();
        let (r, usable) = run(c.query_first::<i64, _>(format!("SELECT v FROM reg WHERE k = {key}"))).await;
        let end = Instant::now();
        if !usable {
            roaming.broken();
        }
        if let Ok(Some(v)) = r {
            log.lock().unwrap().push(RegOp {
                client,
                node: node.0,
                key,
                kind: RegKind::Read(v),
                start,
                end: Some(end),
            });
        }
        tokio::time::sleep(REGISTER_PAUSE).await;
    }
    roaming.close().await;
}

async fn transfers(client: usize, nodes: Vec<(u64, u16)>, seed: u64, stop: Arc<AtomicBool>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ client as u64);
    let mut roaming = Roaming::new(nodes, client, "chaos");
    while !stop.load(Ordering::SeqCst) {
        let (from, to, amount) =
            (rng.random_range(1..=ACCOUNTS), rng.random_range(1..=ACCOUNTS), rng.random_range(1..=50));
        let Some(c) = roaming.conn().await else { continue };
        let steps = [
            "BEGIN".to_string(),
            format!("UPDATE bank SET balance = balance - {amount} WHERE id = {from}"),
            format!("UPDATE bank SET balance = balance + {amount} WHERE id = {to}"),
            "COMMIT".to_string(),
        ];
        for sql in steps {
            let (r, usable) = run(c.query_drop(sql)).await;
            if !usable {
                roaming.broken();
                break;
            }
            if r.is_err() {
                let _ = run(c.query_drop("ROLLBACK")).await;
                break;
            }
        }
    }
    roaming.close().await;
}

/// Reads the bank's total through one node until `stop`.
async fn bank_reader(node: (u64, u16), stop: Arc<AtomicBool>, log: Arc<Mutex<Vec<BankRead>>>) {
    let mut roaming = Roaming::new(vec![node], 0, "chaos");
    while !stop.load(Ordering::SeqCst) {
        let Some(c) = roaming.conn().await else { continue };
        let (r, usable) = run(c.query_first::<(i64, i64), _>("SELECT SUM(balance), COUNT(*) FROM bank")).await;
        if !usable {
            roaming.broken();
        }
        if let Ok(Some((total, _))) = r {
            log.lock().unwrap().push(BankRead { node: node.0, total, at: Instant::now() });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    roaming.close().await;
}

/// Writes a row through one node and reads it back on the same session until `stop`.
async fn prober(node: (u64, u16), stop: Arc<AtomicBool>, log: Arc<Mutex<Vec<Probe>>>) {
    let mut roaming = Roaming::new(vec![node], 0, "chaos");
    let mut id = node.0 * 100_000_000;
    while !stop.load(Ordering::SeqCst) {
        let Some(c) = roaming.conn().await else { continue };
        id += 1;
        let (w, usable) = run(c.query_drop(format!("INSERT INTO probe (id, node) VALUES ({id}, {})", node.0))).await;
        if !usable {
            roaming.broken();
            continue;
        }
        if w.is_err() {
            continue;
        }
        // For the report: the LSN the session knows for its write right after the ack
        // (shoal answers it; `None` after an acked write means shoal did not learn it).
        let (lsn, usable) = run(c.query_first::<Option<u64>, _>("SELECT @@shoal_last_lsn")).await;
        if !usable {
            roaming.broken();
            continue;
        }
        let session_lsn = lsn.ok().flatten().flatten();
        let read = format!("SELECT COUNT(*), @@port FROM probe WHERE id = {id}");
        let (r, usable) = run(c.query_first::<(i64, u16), _>(read)).await;
        if let Ok(Some((n, port))) = r {
            let at = Instant::now();
            log.lock().unwrap().push(Probe { node: node.0, id, seen: n == 1, at, session_lsn, served_by: Some(port) });
        }
        if !usable {
            roaming.broken();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    roaming.close().await;
}

/// The current leader and the followers (sorted), agreed by every running node.
fn roles(c: &mut Cluster) -> (u64, Vec<u64>) {
    let (leader, _) = c.agreed_leader(Instant::now() + RECOVERY_MAX, "chaos: a leader before the next fault");
    let followers = c.members.keys().copied().filter(|&id| id != leader).collect();
    (leader, followers)
}

fn resolve(t: Target, leader: u64, followers: &[u64]) -> u64 {
    match t {
        Target::Leader => leader,
        Target::Follower(k) => followers[k % followers.len()],
    }
}

/// One poll of every running node: leaders by term and applied LSNs into `h`.
fn observe(c: &mut Cluster, h: &mut History) {
    for (id, m) in c.members.iter_mut().filter(|(_, m)| m.child.is_some()) {
        let Some(s) = m.cluster() else { continue };
        if s["role"] == "leader" {
            h.leaders.push((s["term"].as_u64().unwrap_or_default(), *id));
        }
        if let Some(a) = s["applied_index"].as_u64() {
            h.applied.push((*id, m.starts(), a));
        }
    }
}

/// Waits until every serial client has an acked write that started after `after`.
fn recovered(c: &mut Cluster, rec: &Recorder, after: Instant, h: &mut History, what: &str) {
    let deadline = Instant::now() + RECOVERY_MAX;
    loop {
        let acked: BTreeSet<usize> = rec
            .serials
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.start > after && o.outcome == Outcome::Acked && o.client < SERIAL_CLIENTS)
            .map(|o| o.client)
            .collect();
        if acked.len() == SERIAL_CLIENTS {
            return;
        }
        observe(c, h);
        if Instant::now() >= deadline {
            let ops = rec.serials.lock().unwrap();
            let stuck: Vec<String> = (0..SERIAL_CLIENTS)
                .filter(|i| !acked.contains(i))
                .flat_map(|i| ops.iter().rev().filter(move |o| o.client == i).take(2))
                .map(|o| {
                    format!(
                        "client {} via node {}: {:?} {}",
                        o.client,
                        o.node,
                        o.outcome,
                        o.error.as_deref().unwrap_or("")
                    )
                })
                .collect();
            panic!(
                "chaos: {what}: only clients {acked:?} wrote again; the others' last writes:\n{}\n{}",
                stuck.join("\n"),
                c.all_logs()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Runs `sql` through `port` on its own connection and records it as special operation
/// `serial` (acked, failed or unknown).
async fn special(rec: Arc<Mutex<Vec<Op>>>, serial: u64, node: u64, port: u16, sqls: Vec<String>) {
    let start = Instant::now();
    let outcome = match mysql_async::Conn::new(opts(port, Some("chaos"))).await {
        Err(e) => (Outcome::Failed, Some(e.to_string())),
        Ok(mut c) => {
            let mut out = (Outcome::Acked, None);
            for sql in sqls {
                let (r, _) = run(c.query_drop(sql)).await;
                if let Err((o, e)) = r {
                    out = (o, Some(e));
                    break;
                }
            }
            out
        }
    };
    let op = Op { client: usize::MAX, serial, node, start, end: Instant::now(), outcome: outcome.0, error: outcome.1 };
    rec.lock().unwrap().push(op);
}

/// Injects `step`, holds it, heals it; returns when the cluster takes writes again.
fn inject(c: &mut Cluster, links: &Links, rt: &tokio::runtime::Runtime, rec: &Recorder, step: Step, h: &mut History) {
    let (leader, followers) = roles(c);
    let all: Vec<u64> = c.members.keys().copied().collect();
    let hold = Duration::from_millis(step.hold_ms);
    let held = |c: &mut Cluster, h: &mut History| {
        let until = Instant::now() + hold;
        while Instant::now() < until {
            observe(c, h);
            std::thread::sleep(POLL);
        }
    };
    eprintln!("chaos: {:?} (leader {leader}), held {} ms, slowed {:?}", step.fault, step.hold_ms, step.slow);
    if let Some((t, ms)) = step.slow {
        links.delay(&[resolve(t, leader, &followers)], &all, Duration::from_millis(ms));
    }
    match step.fault {
        Fault::KillShoal(t) => {
            let n = resolve(t, leader, &followers);
            c.members.get_mut(&n).unwrap().kill();
            held(c, h);
            c.members.get_mut(&n).unwrap().spawn(&["start"]);
        }
        Fault::Pause(t) => {
            let n = resolve(t, leader, &followers);
            let pid = c.members[&n].child.as_ref().unwrap().id();
            signal(pid, "-STOP");
            let frozen = Frozen(c.members.get_mut(&n).unwrap().child.take());
            held(c, h);
            signal(pid, "-CONT");
            c.members.get_mut(&n).unwrap().child = frozen.thaw();
        }
        Fault::KillMariadb(t) => {
            let n = resolve(t, leader, &followers);
            c.members.get_mut(&n).unwrap().db.stop();
            held(c, h);
            c.members.get_mut(&n).unwrap().db.restart();
        }
        Fault::Isolate(t) => {
            links.isolate(&[resolve(t, leader, &followers)], &all);
            held(c, h);
            links.heal();
        }
        Fault::CutOneWay(a, b) => {
            links.cut(resolve(a, leader, &followers), resolve(b, leader, &followers));
            held(c, h);
            links.heal();
        }
        Fault::SplitMinorityLeader => {
            links.isolate(&[leader, followers[0]], &all);
            held(c, h);
            links.heal();
        }
        Fault::Bridge => {
            // {leader, f0} and {f2, f3} cannot reach each other; f1 reaches both.
            for &a in &[leader, followers[0]] {
                for &b in &followers[2..] {
                    links.cut(a, b);
                    links.cut(b, a);
                }
            }
            held(c, h);
            links.heal();
        }
        Fault::KillLeaderInBigTransaction | Fault::KillLeaderInDdl => {
            let serial = SPECIAL_SERIALS + rec.next_special.fetch_add(1, Ordering::SeqCst);
            let sqls = if step.fault == Fault::KillLeaderInDdl {
                vec![format!("ALTER TABLE ddl_t ADD COLUMN c{serial} INT")]
            } else {
                vec![
                    "BEGIN".into(),
                    format!(
                        "INSERT INTO big (txn, n, pad) SELECT {serial}, seq, REPEAT('x', 100) FROM seq_1_to_{BIG_TRANSACTION_ROWS}"
                    ),
                    "COMMIT".into(),
                ]
            };
            let port = c.members[&leader].proxy;
            let task = rt.spawn(special(rec.serials.clone(), serial, leader, port, sqls));
            let pause = if step.fault == Fault::KillLeaderInDdl { 30 } else { 400 };
            std::thread::sleep(Duration::from_millis(pause));
            c.members.get_mut(&leader).unwrap().kill();
            held(c, h);
            c.members.get_mut(&leader).unwrap().spawn(&["start"]);
            let _ = rt.block_on(task);
        }
    }
    // Slowed links end with the fault's hold, before the wait for recovery.
    links.heal();
    recovered(c, rec, Instant::now(), h, &format!("after {:?}", step.fault));
}

/// Each node's state: the serials it holds (writers' rows, complete big transactions, DDL
/// columns), its checksums and prepared xids. With `settle`, first waits (bounded) until
/// the nodes hold the same rows, so a lagging follower is not reported.
fn states(c: &Cluster, settle: bool) -> Vec<NodeState> {
    let read = |m: &crate::cluster::Member| -> NodeState {
        let mut serials: BTreeSet<u64> =
            m.db.sql("SELECT n FROM chaos.s").lines().filter_map(|l| l.trim().parse().ok()).collect();
        for line in m.db.sql("SELECT txn, COUNT(*) FROM chaos.big GROUP BY txn").lines() {
            let mut f = line.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
            let (txn, rows) = (f.next().unwrap_or(0), f.next().unwrap_or(0));
            // A torn transaction (some of its rows) counts as absent and diverges below.
            if rows == BIG_TRANSACTION_ROWS {
                serials.insert(txn);
            }
        }
        let columns = m.db.sql(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'chaos' AND table_name = 'ddl_t'",
        );
        serials.extend(columns.lines().filter_map(|l| l.trim().strip_prefix('c')?.parse::<u64>().ok()));
        let mut checksums = BTreeMap::new();
        for t in ["s", "bank", "probe", "big", "ddl_t"] {
            checksums.insert(
                format!("chaos.{t}"),
                m.db.sql(&format!("CHECKSUM TABLE chaos.{t} EXTENDED")).trim().to_string(),
            );
        }
        checksums.insert("chaos.ddl_t columns".into(), columns.trim().to_string());
        NodeState { id: m.id, serials, checksums, prepared: m.db.sql("XA RECOVER") }
    };
    let deadline = Instant::now() + SETTLE_MAX;
    loop {
        let all: Vec<NodeState> = c.members.values().map(read).collect();
        let same = all.windows(2).all(|w| w[0].serials == w[1].serials && w[0].checksums == w[1].checksums);
        if !settle || (same && all.iter().all(|n| n.prepared.trim().is_empty())) || Instant::now() >= deadline {
            return all;
        }
        std::thread::sleep(POLL);
    }
}

#[test]
fn a_seeded_fault_plan_keeps_every_invariant() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let p = profile();
    eprintln!(
        "chaos: seed {} (SHOAL_SEED={} replays the plan), {} nodes, {} rounds, faults {:?}",
        p.seed, p.seed, p.nodes, p.rounds, p.faults
    );
    let steps = plan(p.seed, p.rounds, p.nodes as usize, p.faults);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let links = Links::new();
    // The highest id reads with global consistency: the registers' readers use it.
    let global = p.nodes;
    let mut c = Cluster::prepare(
        p.nodes,
        move |id| {
            if id == global {
                "[routing]\nread_consistency = \"global\"\n".into()
            } else {
                "[routing]\n".into()
            }
        },
        |id| format!("token-{id}"),
        Timing::Test,
        Some((&links, &rt)),
    )
    .launch();
    let registers: Vec<String> = (1..=REGISTERS).map(|k| format!("({k}, 0)")).collect();
    let accounts: Vec<String> = (1..=ACCOUNTS).map(|i| format!("({i}, {OPENING_BALANCE})")).collect();
    c.write(
        1,
        &format!(
            "CREATE DATABASE chaos; \
             CREATE TABLE chaos.s (n BIGINT PRIMARY KEY, client INT, node INT); \
             CREATE TABLE chaos.bank (id INT PRIMARY KEY, balance BIGINT NOT NULL); \
             CREATE TABLE chaos.probe (id BIGINT PRIMARY KEY, node INT); \
             CREATE TABLE chaos.big (txn BIGINT, n INT, pad VARCHAR(100), PRIMARY KEY (txn, n)); \
             CREATE TABLE chaos.ddl_t (id INT PRIMARY KEY); \
             CREATE TABLE chaos.reg (k INT PRIMARY KEY, v BIGINT NOT NULL); \
             INSERT INTO chaos.reg VALUES {}; \
             INSERT INTO chaos.bank VALUES {}",
            registers.join(", "),
            accounts.join(", ")
        ),
    );
    c.converged("SELECT COUNT(*) FROM chaos.bank", &ACCOUNTS.to_string());
    let bank_total = ACCOUNTS * OPENING_BALANCE;
    let nodes: Vec<(u64, u16)> = c.members.values().map(|m| (m.id, m.proxy)).collect();
    let rec = Recorder {
        stop: Arc::new(AtomicBool::new(false)),
        serials: Arc::new(Mutex::new(Vec::new())),
        bank: Arc::new(Mutex::new(Vec::new())),
        probes: Arc::new(Mutex::new(Vec::new())),
        registers: Arc::new(Mutex::new(Vec::new())),
        next_special: AtomicU64::new(0),
    };
    let next = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    for i in 0..SERIAL_CLIENTS {
        let w = serial_writer(i, nodes.clone(), ("chaos", "s"), next.clone(), rec.stop.clone(), rec.serials.clone());
        tasks.push(rt.spawn(w));
    }
    for i in 0..TRANSFER_CLIENTS {
        tasks.push(rt.spawn(transfers(i, nodes.clone(), p.seed, rec.stop.clone())));
    }
    for i in 0..REGISTER_WRITERS {
        tasks.push(rt.spawn(register_writer(i, nodes.clone(), p.seed, rec.stop.clone(), rec.registers.clone())));
    }
    let global_node = *nodes.iter().find(|n| n.0 == global).expect("the global node");
    for i in 0..REGISTER_READERS {
        let (stop, log) = (rec.stop.clone(), rec.registers.clone());
        tasks.push(rt.spawn(register_reader(REGISTER_WRITERS + i, global_node, p.seed, stop, log)));
    }
    for &n in &nodes {
        tasks.push(rt.spawn(bank_reader(n, rec.stop.clone(), rec.bank.clone())));
        tasks.push(rt.spawn(prober(n, rec.stop.clone(), rec.probes.clone())));
    }
    for m in c.members.values() {
        eprintln!("chaos: node {}: MariaDB port {}, proxy port {}", m.id, m.db.port, m.proxy);
    }
    let t0 = Instant::now();
    let mut h = History::default();
    recovered(&mut c, &rec, t0, &mut h, "workload start");

    let mut injected: BTreeMap<&str, usize> = BTreeMap::new();
    for step in &steps {
        inject(&mut c, &links, &rt, &rec, *step, &mut h);
        *injected.entry(step.fault.kind()).or_default() += 1;
        if step.slow.is_some() {
            *injected.entry("links slowed (with the fault)").or_default() += 1;
        }
    }
    rec.stop.store(true, Ordering::SeqCst);
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    observe(&mut c, &mut h);
    h.serials = rec.serials.lock().unwrap().clone();
    h.bank_reads = rec.bank.lock().unwrap().clone();
    h.probes = rec.probes.lock().unwrap().clone();
    h.registers = rec.registers.lock().unwrap().clone();

    let nodes_now = states(&c, true);
    let violations = check(&h, &nodes_now, bank_total, t0);
    let count = |o: Outcome| h.serials.iter().filter(|op| op.outcome == o).count();
    eprintln!(
        "chaos: seed {}: {} rounds in {} s; writes {} acked / {} failed / {} unknown; {} bank reads; {} read-your-writes probes; {} register operations; faults: {injected:?}",
        p.seed,
        steps.len(),
        t0.elapsed().as_secs(),
        count(Outcome::Acked),
        count(Outcome::Failed),
        count(Outcome::Unknown),
        h.bank_reads.len(),
        h.probes.len(),
        h.registers.len(),
    );
    if !violations.is_empty() {
        if let Some(secs) = std::env::var("SHOAL_CHAOS_HOLD_S").ok().and_then(|v| v.parse().ok()) {
            // Debugging: the cluster stays up for inspection (ports below).
            for m in c.members.values() {
                eprintln!(
                    "node {}: mariadb -P{} ; proxy {} ; api {} ; dir {}",
                    m.id,
                    m.db.port,
                    m.proxy,
                    m.api,
                    m.dir.display()
                );
            }
            eprintln!("{}", report(&violations, &h, t0));
            std::thread::sleep(Duration::from_secs(secs));
        }
        panic!(
            "chaos: seed {} (replay with SHOAL_SEED={}): {}\n{}\n{}",
            p.seed,
            p.seed,
            report(&violations, &h, t0),
            keep_evidence(&c),
            c.all_logs()
        );
    }
    let reads = h.registers.iter().filter(|o| matches!(o.kind, RegKind::Read(v) if v != 0)).count();
    assert!(
        count(Outcome::Acked) > 0 && !h.bank_reads.is_empty() && !h.probes.is_empty() && reads > 0,
        "the workloads ran"
    );

    self_test(&mut c, &rt, &nodes_now, bank_total, t0);
}

/// Faults put in on purpose, on the real servers: the checker must report each one.
fn self_test(c: &mut Cluster, rt: &tokio::runtime::Runtime, clean: &[NodeState], bank_total: i64, t0: Instant) {
    let (leader, followers) = roles(c);
    let (a, b) = (followers[0], followers[1]);
    let mut h = History::default();
    // An ack no quorum holds: a row acknowledged by node a's MariaDB alone.
    let alone = SPECIAL_SERIALS * 3;
    c.members[&a].db.sql(&format!("SET sql_log_bin = 0; INSERT INTO chaos.s VALUES ({alone}, -1, {a})"));
    let now = Instant::now();
    h.serials.push(Op {
        client: 0,
        serial: alone,
        node: a,
        start: now,
        end: now,
        outcome: Outcome::Acked,
        error: None,
    });
    // A skipped apply: an acknowledged row gone from node b.
    let skipped = *clean[0].serials.iter().next().expect("rows");
    c.members[&b].db.sql(&format!("SET sql_log_bin = 0; DELETE FROM chaos.s WHERE n = {skipped}"));
    h.serials.push(Op {
        client: 1,
        serial: skipped,
        node: 1,
        start: now,
        end: now,
        outcome: Outcome::Acked,
        error: None,
    });
    // A stale read: a write through the cluster read from node b's MariaDB while its
    // apply is held.
    let mut lock = hold_apply(&c.members[&b].db);
    let probe = SPECIAL_SERIALS * 4;
    let port = c.members[&leader].proxy;
    // And a stale register read there: a new key written through the leader (a key
    // starts at 0), then read from node b's MariaDB.
    let (key, value) = (REGISTERS * 1_000, 77);
    let written = rt.block_on(async {
        let mut conn = mysql_async::Conn::new(opts(port, Some("chaos"))).await.unwrap();
        conn.query_drop(format!("INSERT INTO probe (id, node) VALUES ({probe}, 0)")).await.unwrap();
        let start = Instant::now();
        conn.query_drop(format!("INSERT INTO reg VALUES ({key}, {value})")).await.unwrap();
        (start, Instant::now())
    });
    let seen = c.members[&b].db.sql(&format!("SELECT COUNT(*) FROM chaos.probe WHERE id = {probe}")).trim() == "1";
    let read_at = Instant::now();
    let read: i64 = c.members[&b]
        .db
        .sql(&format!("SELECT COALESCE(MAX(v), 0) FROM chaos.reg WHERE k = {key}"))
        .trim()
        .parse()
        .unwrap();
    let write = RegKind::Write(value);
    h.registers.push(RegOp { client: 0, node: leader, key, kind: write, start: written.0, end: Some(written.1) });
    h.registers.push(RegOp {
        client: 1,
        node: b,
        key,
        kind: RegKind::Read(read),
        start: read_at,
        end: Some(Instant::now()),
    });
    let _ = lock.kill();
    let _ = lock.wait();
    h.probes.push(Probe { node: b, id: probe, seen, at: Instant::now(), session_lsn: None, served_by: None });

    let v = check(&h, &states(c, false), bank_total, t0);
    let text = report(&v, &h, t0);
    eprintln!("chaos self-test:\n{text}");
    for (what, found) in [
        (
            "the lone ack on the other nodes",
            v.iter().any(|v| matches!(v, Violation::LostAck { serial, node, .. } if *serial == alone && *node != a)),
        ),
        (
            "the skipped apply",
            v.iter().any(|v| matches!(v, Violation::LostAck { serial, node, .. } if *serial == skipped && *node == b)),
        ),
        ("the divergence", v.iter().any(|v| matches!(v, Violation::Diverged { table, .. } if table == "chaos.s"))),
        ("the stale read", v.iter().any(|v| matches!(v, Violation::StaleRead { id, .. } if *id == probe))),
        (
            "the stale register read",
            v.iter().any(|v| matches!(v, Violation::NotLinearizable { key: k, .. } if *k == key)),
        ),
    ] {
        assert!(found, "the checker missed {what}:\n{text}");
    }
}
