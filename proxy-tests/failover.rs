//! Failover as clients see it. Three nodes with shoal's default heartbeat and election
//! settings; eight connections insert unique serials through all three proxies the whole
//! time, each outcome recorded: acked (OK), failed (an error that says nothing ran) or
//! unknown (the connection broke, or shoal answered "outcome unknown"). A client whose
//! connection breaks moves to the next node, as a client with several hosts does.
//!
//! The faults, one after another, each healed before the next: the leader's shoal killed
//! (SIGKILL) and restarted, the leader paused (SIGSTOP) and resumed, the leader's MariaDB
//! killed and restarted (the leader steps down), the leader's cluster links cut both ways
//! (userspace forwarders) and restored, then `shoal switchover --to node-2` and
//! `shoal switchover` back. After each, the cluster takes writes again by itself and the
//! preferred leader (node 1) leads again once it is back.
//!
//! Asserted: every acked serial is on all three MariaDBs, no failed serial on any, the
//! three tables identical (CHECKSUM TABLE), no prepared xid left, never two leaders in one
//! term (every poll), the two switchovers fail nothing (a transaction left open on the
//! old leader is rolled back with 1213 "retry the transaction"), connections that were idle
//! throughout still work without reconnecting (on every node: node 1's opened after its
//! restart). Printed, not asserted (no timed
//! assertions): the client-visible write outage per fault — the longest stretch, per
//! client, from the start of its first failed or delayed write to the end of its next
//! success.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use crate::cluster::links::Links;
use crate::cluster::{opts, Cluster, Timing, POLL, SERIAL, SETTLE_MAX};
use crate::workload::{serial_writer, Op, Outcome};

/// Writing connections.
const CLIENTS: usize = 8;
/// A write slower than this counts as delayed (part of an outage).
const DELAYED: Duration = Duration::from_millis(250);
/// Longest the cluster may take to take writes from every client again after a fault,
/// or to bring the preferred leader back after a heal.
const RECOVERY_MAX: Duration = Duration::from_secs(45);
/// How long node 2 must keep a lead it was handed before the test believes it holds it.
const HOLD_CHECK: Duration = Duration::from_secs(2);
/// How long a fault lasts before it is healed, at least.
const FAULT_HOLD: Duration = Duration::from_secs(3);

/// One fault: name, injected, recovered (every client wrote again), healed, node 1 back
/// as leader, the node whose clients are left out of its outage.
type Fault = (&'static str, Instant, Instant, Instant, Instant, Option<u64>);

/// The longest outage any client saw among `ops` that ended after `from` and started
/// before `to` (a write in flight when the fault hit counts from its start), leaving
/// out clients that were writing to `skip` (a node that was killed or frozen: its
/// clients wait for their connection to break, which is not the cluster's outage).
fn outage(ops: &[Op], from: Instant, to: Instant, skip: Option<u64>) -> Duration {
    worst_outage(ops, from, to, skip).0
}

/// [`outage`], with the client that saw it.
fn worst_outage(ops: &[Op], from: Instant, to: Instant, skip: Option<u64>) -> (Duration, Option<usize>) {
    let mut by_client: BTreeMap<usize, Vec<&Op>> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.end > from && o.start < to) {
        by_client.entry(op.client).or_default().push(op);
    }
    let mut worst = (Duration::ZERO, None);
    for (client, ops) in by_client.iter_mut() {
        ops.sort_by_key(|o| o.start);
        if skip.is_some() && ops.first().is_some_and(|o| Some(o.node) == skip) {
            continue;
        }
        let mut open: Option<Instant> = None;
        for op in ops.iter() {
            let bad = op.outcome != Outcome::Acked || op.end - op.start > DELAYED;
            if bad && open.is_none() {
                open = Some(op.start);
            }
            if op.outcome == Outcome::Acked {
                if let Some(s) = open.take() {
                    if op.end - s > worst.0 {
                        worst = (op.end - s, Some(*client));
                    }
                }
            }
        }
    }
    worst
}

/// Waits until every client has an acked write that started after `after`.
fn every_client_acked_after(log: &Mutex<Vec<Op>>, after: Instant, c: &mut Cluster, what: &str) {
    clients_acked_after(log, after, c, what, &BTreeSet::new());
}

/// Waits until every client but those in `except` has an acked write that started after
/// `after`.
fn clients_acked_after(log: &Mutex<Vec<Op>>, after: Instant, c: &mut Cluster, what: &str, except: &BTreeSet<usize>) {
    let deadline = Instant::now() + RECOVERY_MAX;
    loop {
        let acked: BTreeSet<usize> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.start > after && o.outcome == Outcome::Acked)
            .map(|o| o.client)
            .chain(except.iter().copied())
            .collect();
        if acked.len() == CLIENTS {
            return;
        }
        c.poll();
        let last: Vec<String> =
            log.lock().unwrap().iter().rev().take(8).map(|o| format!("{:?} {:?}", o.outcome, o.error)).collect();
        assert!(
            Instant::now() < deadline,
            "{what}: only clients {acked:?} wrote again; last: {last:#?}\n{}",
            c.all_logs()
        );
        std::thread::sleep(POLL);
    }
}

/// Waits until the running nodes agree that `want` leads.
fn leads(c: &mut Cluster, want: u64, what: &str) {
    let deadline = Instant::now() + RECOVERY_MAX;
    loop {
        let (l, _) = c.agreed_leader(deadline, what);
        if l == want {
            return;
        }
        if Instant::now() >= deadline {
            let m = &c.members[&want];
            let nodes = shoal::admin::client::get(&m.api, "/cluster/nodes", m.token.as_deref(), Duration::from_secs(2))
                .map(|r| r.body)
                .unwrap_or_default();
            let (processes, prepared) = (m.db.sql("SHOW FULL PROCESSLIST"), m.db.sql("XA RECOVER"));
            panic!(
                "{what}: node {l} leads, not node {want}; node {want}: {nodes}\nprocesses:\n{processes}\nprepared:\n{prepared}\n{}",
                c.all_logs()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// `shoal switchover [--to]` against member `via`'s API (its config names the API and
/// the token file).
fn switchover(c: &Cluster, via: u64, to: Option<&str>) {
    let file = c.members[&via].file.display().to_string();
    let mut args = vec!["switchover", "-c", &file];
    if let Some(to) = to {
        args.extend(["--to", to]);
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shoal")).args(&args).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "shoal {args:?}: {stdout}{stderr}\n{}", c.all_logs());
    eprintln!("shoal {args:?}: {}", stdout.trim());
}

/// A SIGSTOPped node: resumed and killed if the test fails before it is thawed.
pub(crate) struct Frozen(pub(crate) Option<std::process::Child>);

impl Frozen {
    pub(crate) fn thaw(mut self) -> Option<std::process::Child> {
        self.0.take()
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = std::process::Command::new("kill").args(["-CONT", &c.id().to_string()]).status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Before a failure about rows: each node's applied position, and its binlogs copied to
/// `/tmp/shoal-failed-cluster/db-N` (`mariadb-binlog -v` shows which xid wrote a row).
pub(crate) fn keep_evidence(c: &Cluster) -> String {
    let mut out = String::new();
    for m in c.members.values() {
        let to = format!("/tmp/shoal-failed-cluster/db-{}", m.id);
        let _ = std::fs::create_dir_all(&to);
        let data = m.db.dir.path().join("data");
        for e in std::fs::read_dir(&data).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with("mariadb-bin") {
                let _ = std::fs::copy(e.path(), std::path::Path::new(&to).join(e.file_name()));
            }
        }
        // Which transactions each node holds (markers) and its rows of the bank and probe
        // tables: enough to tell a missed entry from one applied on a diverged state.
        for (file, sql) in [
            ("txn.tsv", "SELECT xid FROM shoal_meta.txn ORDER BY xid"),
            ("bank.tsv", "SELECT * FROM chaos.bank ORDER BY id"),
            ("xa-recover.tsv", "XA RECOVER"),
        ] {
            // Not `MariaDb::sql`: a table this test does not have must not panic here.
            let port = format!("-P{}", m.db.port);
            let got = std::process::Command::new("mariadb")
                .args(["-h127.0.0.1", "-uroot", "-N", "-B", &port, "-e", sql])
                .output();
            if let Ok(out) = got {
                let _ = std::fs::write(std::path::Path::new(&to).join(file), out.stdout);
            }
        }
        out += &format!("node {} applied {}\n", m.id, m.db.sql("SELECT lsn, term FROM shoal_meta.applied").trim());
    }
    out
}

pub(crate) fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn a_workload_rides_through_kills_pauses_a_dead_mariadb_and_switchovers() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let links = Links::new();
    let mut c = Cluster::start_linked(
        |_| "[routing]\n".into(),
        |id| format!("token-{id}"),
        Timing::Defaults,
        Some((&links, &rt)),
    );
    c.write(1, "CREATE DATABASE fo; CREATE TABLE fo.s (n BIGINT PRIMARY KEY, client INT, node INT)");
    c.converged("SELECT COUNT(*) FROM fo.s", "0");
    let nodes: Vec<(u64, u16)> = c.members.values().map(|m| (m.id, m.proxy)).collect();

    // Idle connections, one per node, used again only at the end: to nodes 2 and 3 from
    // the start, to node 1 once it restarted after its SIGKILL (its clients' connections
    // die with it).
    let connect = |port: u16| rt.block_on(mysql_async::Conn::new(opts(port, Some("fo")))).unwrap();
    let mut idle: Vec<mysql_async::Conn> = nodes[1..].iter().map(|(_, port)| connect(*port)).collect();
    let (next, stop, log) =
        (Arc::new(AtomicU64::new(1)), Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
    let writers: Vec<_> = (0..CLIENTS)
        .map(|i| rt.spawn(serial_writer(i, nodes.clone(), ("fo", "s"), next.clone(), stop.clone(), log.clone())))
        .collect();
    every_client_acked_after(&log, Instant::now(), &mut c, "workload start");

    let mut faults: Vec<Fault> = Vec::new();

    let t0 = Instant::now();
    c.members.get_mut(&1).unwrap().kill();
    every_client_acked_after(&log, t0, &mut c, "after the leader's shoal was killed");
    let t1 = Instant::now();
    std::thread::sleep(FAULT_HOLD.saturating_sub(t1 - t0));
    let t2 = Instant::now();
    c.members.get_mut(&1).unwrap().spawn(&["start"]);
    leads(&mut c, 1, "node 1 restarted and leads again");
    every_client_acked_after(&log, Instant::now(), &mut c, "after node 1 rejoined");
    faults.push(("leader shoal SIGKILL", t0, t1, t2, Instant::now(), Some(1)));
    idle.insert(0, connect(nodes[0].1));

    let t0 = Instant::now();
    let pid = c.members[&1].child.as_ref().unwrap().id();
    signal(pid, "-STOP");
    // Node 1 cannot answer `/cluster` while frozen: poll the others.
    let frozen = Frozen(c.members.get_mut(&1).unwrap().child.take());
    every_client_acked_after(&log, t0, &mut c, "after the leader was paused");
    let t1 = Instant::now();
    std::thread::sleep(FAULT_HOLD.saturating_sub(t1 - t0));
    let t2 = Instant::now();
    signal(pid, "-CONT");
    c.members.get_mut(&1).unwrap().child = frozen.thaw();
    leads(&mut c, 1, "node 1 resumed and leads again");
    every_client_acked_after(&log, Instant::now(), &mut c, "after node 1 resumed");
    faults.push(("leader SIGSTOP/SIGCONT", t0, t1, t2, Instant::now(), Some(1)));

    let t0 = Instant::now();
    c.members.get_mut(&1).unwrap().db.stop();
    every_client_acked_after(&log, t0, &mut c, "after the leader's MariaDB was killed");
    let t1 = Instant::now();
    let (l, _) = c.agreed_leader(Instant::now() + SETTLE_MAX, "a leader without node 1's MariaDB");
    assert_ne!(l, 1, "node 1 must have stepped down: its MariaDB is down\n{}", c.all_logs());
    std::thread::sleep(FAULT_HOLD.saturating_sub(t1 - t0));
    let t2 = Instant::now();
    c.members.get_mut(&1).unwrap().db.restart();
    leads(&mut c, 1, "node 1's MariaDB is back and node 1 leads again");
    every_client_acked_after(&log, Instant::now(), &mut c, "after node 1 took the lead back");
    faults.push(("leader mariadbd SIGKILL", t0, t1, t2, Instant::now(), None));

    // The leader's links to both followers cut, both directions (its MySQL port and API
    // stay reachable). Nodes 2 and 3 elect a leader and their clients write again; the
    // clients of node 1 cannot until the heal (node 1 cannot learn of the new leader).
    let t0 = Instant::now();
    let on_node_1: BTreeSet<usize> = {
        let mut last: BTreeMap<usize, u64> = BTreeMap::new();
        for o in log.lock().unwrap().iter() {
            last.insert(o.client, o.node);
        }
        last.into_iter().filter(|(_, n)| *n == 1).map(|(client, _)| client).collect()
    };
    links.isolate(&[1], &[1, 2, 3]);
    clients_acked_after(&log, t0, &mut c, "after the leader's links were cut", &on_node_1);
    let t1 = Instant::now();
    let seen = c.poll();
    assert!(
        seen[&2].2 == seen[&3].2 && seen[&2].2.is_some_and(|l| l != 1),
        "nodes 2 and 3 must agree on a new leader: {seen:?}\n{}",
        c.all_logs()
    );
    std::thread::sleep(FAULT_HOLD.saturating_sub(t1 - t0));
    let t2 = Instant::now();
    links.heal();
    leads(&mut c, 1, "node 1's links are back and node 1 leads again");
    every_client_acked_after(&log, Instant::now(), &mut c, "after node 1's links came back");
    faults.push(("leader links cut", t0, t1, t2, Instant::now(), Some(1)));

    // A transaction open on the leader through the switchover: the handover waits for it
    // (at most HANDOVER_DRAIN_MAX), then its next statement says it was rolled back
    // (1213, retry it) and the session goes on.
    let mut open = connect(nodes[0].1);
    rt.block_on(async {
        open.query_drop("BEGIN").await.unwrap();
        open.query_drop("INSERT INTO fo.s (n, client, node) VALUES (2000000000, -2, 1)").await.unwrap();
    });
    let s0 = Instant::now();
    switchover(&c, 3, Some("node-2"));
    leads(&mut c, 2, "after switchover --to node-2");
    rt.block_on(async {
        match open.query_drop("INSERT INTO fo.s (n, client, node) VALUES (2000000001, -2, 1)").await {
            Err(mysql_async::Error::Server(e)) => {
                assert_eq!((e.code, e.state.as_str()), (1213, "40001"), "{}", e.message);
                assert!(e.message.contains("stopped leading"), "{}", e.message);
            }
            other => panic!("a statement of a transaction open on the old leader: {other:?}"),
        }
        open.query_drop("INSERT INTO fo.s (n, client, node) VALUES (2000000002, -2, 1)").await.unwrap();
    });
    // Node 2 holds the lead it was given: no switchback to node 1.
    std::thread::sleep(HOLD_CHECK);
    leads(&mut c, 2, "node 2 keeps the lead it was handed");
    every_client_acked_after(&log, Instant::now(), &mut c, "after the switchover");
    switchover(&c, 1, None);
    leads(&mut c, 1, "after switchover back to the lowest ready node");
    every_client_acked_after(&log, Instant::now(), &mut c, "after the switchover back");
    let s1 = Instant::now();
    // The leaders counted their handovers: node 1 its step-down and the switchover to
    // node 2, node 2 the switchover back; every node is ready again.
    let handovers = |id: u64, reason: &str| {
        crate::cluster::counter(&c.members[&id], "shoal_cluster_handovers_total", &format!("reason=\"{reason}\""))
    };
    assert!(handovers(1, "step_down") >= 1.0 && handovers(1, "switchover") >= 1.0 && handovers(2, "switchover") >= 1.0);
    for m in c.members.values_mut() {
        assert_eq!(m.cluster().unwrap()["ready"], true, "node {}", m.id);
        assert_eq!(crate::cluster::counter(m, "shoal_cluster_ready", ""), 1.0, "node {}", m.id);
    }

    stop.store(true, Ordering::SeqCst);
    rt.block_on(async {
        for w in writers {
            w.await.unwrap();
        }
    });
    let ops = log.lock().unwrap().clone();

    // Idle connections work without reconnecting, through every node.
    rt.block_on(async {
        for (i, conn) in idle.iter_mut().enumerate() {
            let n = 1_000_000_000u64 + i as u64;
            conn.query_drop(format!("INSERT INTO fo.s (n, client, node) VALUES ({n}, -1, {})", nodes[i].0))
                .await
                .unwrap_or_else(|e| panic!("idle connection to node {} after the faults: {e}", nodes[i].0));
            let got: Option<u64> = conn.query_first(format!("SELECT n FROM fo.s WHERE n = {n}")).await.unwrap();
            assert_eq!(got, Some(n), "idle connection to node {} reads its own write", nodes[i].0);
        }
    });

    let count = |o: Outcome| ops.iter().filter(|op| op.outcome == o).count();
    let during_switchovers: Vec<&Op> =
        ops.iter().filter(|o| o.start >= s0 && o.start < s1 && o.outcome != Outcome::Acked).collect();
    assert!(
        during_switchovers.is_empty(),
        "writes that did not succeed during the switchovers: {during_switchovers:#?}"
    );

    // Every node holds the same rows: the acked ones, none of the failed ones.
    let rows_of = |m: &crate::cluster::Member| -> BTreeSet<u64> {
        m.db.sql("SELECT n FROM fo.s").lines().map(|l| l.trim().parse().unwrap()).collect()
    };
    let deadline = Instant::now() + SETTLE_MAX;
    loop {
        let all: Vec<BTreeSet<u64>> = c.members.values().map(rows_of).collect();
        if all.windows(2).all(|w| w[0] == w[1]) {
            break;
        }
        if Instant::now() >= deadline {
            let union: BTreeSet<u64> = all.iter().flatten().copied().collect();
            let odd: Vec<String> = union
                .iter()
                .filter(|n| all.iter().any(|s| !s.contains(n)))
                .take(10)
                .map(|n| {
                    let on: Vec<u64> = c.members.values().filter(|m| rows_of(m).contains(n)).map(|m| m.id).collect();
                    let op = ops.iter().find(|o| o.serial == *n);
                    format!("serial {n} on nodes {on:?}: {op:?}")
                })
                .collect();
            panic!("the nodes' rows differ:\n{}\n{}\n{}", odd.join("\n"), keep_evidence(&c), c.all_logs());
        }
        std::thread::sleep(POLL);
    }
    let lost_transaction = c.members[&2].db.sql("SELECT n FROM fo.s WHERE client = -2");
    assert_eq!(lost_transaction.trim(), "2000000002", "the transaction open at the switchover left rows");
    let acked: BTreeSet<u64> = ops.iter().filter(|o| o.outcome == Outcome::Acked).map(|o| o.serial).collect();
    let failed: BTreeSet<u64> = ops.iter().filter(|o| o.outcome == Outcome::Failed).map(|o| o.serial).collect();
    let mut checksums = BTreeSet::new();
    for m in c.members.values() {
        let rows: BTreeSet<u64> =
            m.db.sql("SELECT n FROM fo.s WHERE client >= 0").lines().map(|l| l.trim().parse().unwrap()).collect();
        let lost: Vec<_> = acked.difference(&rows).take(10).collect();
        let t0 = ops.iter().map(|o| o.start).min().unwrap_or_else(Instant::now);
        let how: Vec<String> = ops
            .iter()
            .filter(|o| lost.contains(&&o.serial))
            .map(|o| {
                format!(
                    "{} via node {} at +{} ms, {} ms",
                    o.serial,
                    o.node,
                    (o.start - t0).as_millis(),
                    (o.end - o.start).as_millis()
                )
            })
            .collect();
        let faults_at: Vec<String> = faults
            .iter()
            .map(|f| format!("{} at +{} ms", f.0, f.1.saturating_duration_since(t0).as_millis()))
            .collect();
        assert!(
            lost.is_empty(),
            "node {}: acked serials missing: {how:?}; faults {faults_at:?}\n{}",
            m.id,
            c.all_logs()
        );
        let phantom: Vec<_> = failed.intersection(&rows).take(10).collect();
        let why: Vec<_> = ops.iter().filter(|o| phantom.contains(&&o.serial)).map(|o| o.error.clone()).collect();
        assert!(phantom.is_empty(), "node {}: failed serials present: {phantom:?} ({why:?})", m.id);
        // Prepared transactions whose session went away are decided within moments.
        let deadline = Instant::now() + SETTLE_MAX;
        while !m.db.sql("XA RECOVER").trim().is_empty() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        assert_eq!(m.db.sql("XA RECOVER").trim(), "", "node {}: prepared xids left\n{}", m.id, m.logs());
        checksums.insert(m.db.sql("CHECKSUM TABLE fo.s EXTENDED"));
    }
    assert_eq!(checksums.len(), 1, "checksums differ: {checksums:?}");

    eprintln!(
        "failover workload: {} writes, {} acked, {} failed, {} unknown",
        ops.len(),
        count(Outcome::Acked),
        count(Outcome::Failed),
        count(Outcome::Unknown)
    );
    let mut outages = Vec::new();
    for (name, t0, t1, t2, t3, skip) in &faults {
        let (failover, who) = worst_outage(&ops, *t0, *t1 + Duration::from_millis(1), *skip);
        let back = outage(&ops, *t2, *t3, None);
        outages.push(failover);
        if let Some(w) = who {
            let story: Vec<String> = ops
                .iter()
                .filter(|o| o.client == w && o.end > *t0 && o.start < *t1)
                .map(|o| {
                    format!(
                        "  +{} ms node {} {:?} {} ms {}",
                        (o.start - *t0).as_millis(),
                        o.node,
                        o.outcome,
                        (o.end - o.start).as_millis(),
                        o.error.as_deref().unwrap_or("")
                    )
                })
                .take(12)
                .collect();
            eprintln!("fault {name}: the longest outage was client {w}'s:\n{}", story.join("\n"));
        }
        eprintln!(
            "fault {name}: write outage {} ms (clients of other nodes); rejoin and switchback {} ms",
            failover.as_millis(),
            back.as_millis()
        );
    }
    let switch = outage(&ops, s0, s1, None);
    eprintln!("switchovers: longest write delay {} ms, 0 failed", switch.as_millis());
    outages.sort();
    eprintln!(
        "write outage over {} faults: p50 {} ms, max {} ms",
        outages.len(),
        outages[outages.len() / 2].as_millis(),
        outages.last().unwrap().as_millis()
    );
    drop(idle);
}
