//! Cluster mode as an operator runs it: three `shoal start --bootstrap` processes on free
//! ports, each fronting its own `mariadbd` (binlog on), with one secret file. They elect
//! one leader, the preferred (lowest id) node takes over; writes through the leader's
//! proxy reach every node's MariaDB, a follower refuses writes; a SIGKILLed leader is
//! replaced (the time is printed, not asserted), writes go on through the new leader, the
//! restarted node rejoins as follower, catches up, leads again and takes writes; a node
//! holding another secret is refused. Every wait has a deadline; every child is killed
//! on drop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shoal::admin::client;

use crate::harness::{free_port, mariadb_cli, MariaDb};

const BIN: &str = env!("CARGO_BIN_EXE_shoal");
/// `[cluster] heartbeat_interval_ms` of the test nodes.
const HEARTBEAT_MS: u64 = 100;
/// `[cluster] election_timeout_min_ms`.
const ELECTION_MIN_MS: u64 = 250;
/// `[cluster] election_timeout_max_ms`; a new leader must appear within twice this.
const ELECTION_MAX_MS: u64 = 1000;
/// How long a node may take to start (proxy, API, Raft) and the first election.
const SETTLE_MAX: Duration = Duration::from_secs(30);
/// Poll interval of `/cluster`.
const POLL: Duration = Duration::from_millis(25);

/// One `shoal` cluster node: its files outlive restarts of its process.
struct Member {
    id: u64,
    dir: PathBuf,
    file: PathBuf,
    api: String,
    cluster: String,
    child: Option<Child>,
    starts: u32,
    /// Its own MariaDB.
    db: MariaDb,
    /// Its proxy port.
    proxy: u16,
}

impl Member {
    fn new(root: &Path, id: u64, secret: &Path, peers: &[String], cluster: &str, db: MariaDb) -> Member {
        Member::with(root, id, secret, peers, cluster, db, "")
    }

    /// A member whose TOML ends with `extra` (its own `[routing]`, say).
    fn with(root: &Path, id: u64, secret: &Path, peers: &[String], cluster: &str, db: MariaDb, extra: &str) -> Member {
        let db_port = db.port;
        let dir = root.join(format!("node-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (api_port, proxy_port) = (free_port(), free_port());
        let peers = peers.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ");
        let text = format!(
            "[node]\nid = \"node-{id}\"\nbind_address = \"{cluster}\"\ndata_dir = \"{data}\"\n\
             [database]\nhost = \"127.0.0.1\"\nport = {db_port}\nuser = \"root\"\npassword = \"\"\n\
             [cluster]\npeers = [{peers}]\nsecret_file = \"{secret}\"\nheartbeat_interval_ms = {HEARTBEAT_MS}\n\
             election_timeout_min_ms = {ELECTION_MIN_MS}\nelection_timeout_max_ms = {ELECTION_MAX_MS}\n\
             [api]\nbind_address = \"127.0.0.1:{api_port}\"\n[proxy]\nbind_address = \"127.0.0.1:{proxy_port}\"\n{extra}",
            data = dir.join("data").display(),
            secret = secret.display(),
        );
        let file = dir.join("shoal.toml");
        std::fs::write(&file, text).unwrap();
        Member {
            id,
            dir,
            file,
            api: format!("127.0.0.1:{api_port}"),
            cluster: cluster.to_string(),
            child: None,
            starts: 0,
            db,
            proxy: proxy_port,
        }
    }

    /// Runs `shoal <args> -c FILE`, logging to `node.N.log` in its directory.
    fn spawn(&mut self, args: &[&str]) {
        assert!(self.child.is_none(), "node {} already runs", self.id);
        self.starts += 1;
        let log = self.dir.join(format!("node.{}.log", self.starts));
        let child = Command::new(BIN)
            .args(["--log-level", "info"])
            .args(args)
            .arg("-c")
            .arg(&self.file)
            .env_remove("SHOAL_CONFIG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    /// This node's `/cluster`, if it answers.
    fn cluster(&mut self) -> Option<serde_json::Value> {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("node {} exited ({status}):\n{}", self.id, self.logs());
            }
        }
        let r = client::get(&self.api, "/cluster", None, Duration::from_millis(500)).ok()?;
        (r.status == 200).then(|| serde_json::from_str(&r.body).ok()).flatten()
    }

    fn logs(&self) -> String {
        (1..=self.starts)
            .map(|n| std::fs::read_to_string(self.dir.join(format!("node.{n}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A node's own MariaDB (binlog on). Started before any port is chosen for the nodes:
/// a server picking a free port could otherwise take one chosen but not bound yet.
fn node_db(id: u64) -> MariaDb {
    MariaDb::start(&[
        &format!("--server-id={id}"),
        "--log-bin=mariadb-bin",
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
    ])
}

/// What every running node reports, and the leader each term had (checked across every
/// poll of the whole test: at most one leader per term).
struct Cluster {
    members: BTreeMap<u64, Member>,
    leaders_by_term: BTreeMap<u64, u64>,
    _root: tempfile::TempDir,
}

impl Cluster {
    /// Three nodes bootstrapped together (`extra(id)`: TOML appended to node `id`'s file);
    /// returns once node 1 (the preferred leader) leads and every node agrees.
    fn start(extra: impl Fn(u64) -> String) -> Cluster {
        let root = tempfile::tempdir().unwrap();
        let secret = root.path().join("cluster.secret");
        std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
        let mut dbs: Vec<MariaDb> = (1..=3).map(node_db).collect();
        let addrs: Vec<String> = (0..3).map(|_| format!("127.0.0.1:{}", free_port())).collect();
        let mut members = BTreeMap::new();
        for (i, addr) in addrs.iter().enumerate().rev() {
            let id = i as u64 + 1;
            let m = Member::with(root.path(), id, &secret, &addrs, addr, dbs.pop().unwrap(), &extra(id));
            members.insert(id, m);
        }
        let mut c = Cluster { members, leaders_by_term: BTreeMap::new(), _root: root };
        for m in c.members.values_mut() {
            m.spawn(&["start", "--bootstrap"]);
        }
        let started = Instant::now();
        loop {
            let (l, _) = c.agreed_leader(started + SETTLE_MAX, "node 1 leads");
            if l == 1 {
                return c;
            }
            std::thread::sleep(POLL);
        }
    }

    /// One round of `/cluster` from every running node: id → (role, term, leader id).
    fn poll(&mut self) -> BTreeMap<u64, (String, u64, Option<u64>)> {
        let mut out = BTreeMap::new();
        for (id, m) in self.members.iter_mut().filter(|(_, m)| m.child.is_some()) {
            let Some(c) = m.cluster() else { continue };
            assert_eq!(c["cluster_mode"], "raft", "node {id}: {c}");
            let role = c["role"].as_str().unwrap_or_default().to_string();
            let term = c["term"].as_u64().unwrap_or_default();
            if role == "leader" {
                if let Some(other) = self.leaders_by_term.insert(term, *id) {
                    assert_eq!(other, *id, "two leaders in term {term}: {other} and {id}");
                }
            }
            out.insert(*id, (role, term, c["leader_id"].as_u64()));
        }
        out
    }

    /// Polls until every running node answers and agrees on one leader that calls itself
    /// leader; returns (leader, term).
    fn agreed_leader(&mut self, deadline: Instant, what: &str) -> (u64, u64) {
        let running = self.members.values().filter(|m| m.child.is_some()).count();
        loop {
            let seen = self.poll();
            let leaders: Vec<_> = seen.iter().filter(|(_, (r, _, _))| r == "leader").collect();
            if seen.len() == running && leaders.len() == 1 {
                let (leader, (_, term, _)) = leaders[0];
                if seen.values().all(|(_, t, l)| *l == Some(*leader) && t == term) {
                    return (*leader, *term);
                }
            }
            assert!(Instant::now() < deadline, "{what}: no agreed leader; last seen {seen:?}\n{}", self.all_logs());
            std::thread::sleep(POLL);
        }
    }

    /// Runs `sql` through member `via`'s proxy with the mariadb CLI (as root), retrying
    /// while the node refuses writes because it is still becoming the writer (1290, nothing
    /// ran).
    fn write(&self, via: u64, sql: &str) {
        let deadline = Instant::now() + SETTLE_MAX;
        loop {
            let (ok, _, err) = mariadb_cli(self.members[&via].proxy, "root", "", &["-e", sql], None);
            if ok {
                return;
            }
            let not_yet = err.contains("ERROR 1290") && (err.contains("just elected") || err.contains("no leader"));
            assert!(not_yet && Instant::now() < deadline, "through node {via}: {sql}: {err}\n{}", self.all_logs());
            std::thread::sleep(POLL);
        }
    }

    /// Waits until `sql` answers `want` on the MariaDB of every running member.
    fn converged(&self, sql: &str, want: &str) {
        let deadline = Instant::now() + SETTLE_MAX;
        for m in self.members.values().filter(|m| m.child.is_some()) {
            loop {
                let got = std::process::Command::new("mariadb")
                    .args(["-h127.0.0.1", "-uroot", "-N", "-B", "-e", sql])
                    .arg(format!("-P{}", m.db.port))
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                    .unwrap_or_default();
                if got == want || got.ends_with(&format!("\t{want}")) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {}: {sql} gave {got:?}, not {want:?}\n{}",
                    m.id,
                    self.all_logs()
                );
                std::thread::sleep(POLL);
            }
        }
    }

    fn all_logs(&self) -> String {
        self.members.values().map(|m| format!("=== node {} ===\n{}", m.id, m.logs())).collect()
    }
}

#[test]
fn three_processes_elect_fail_over_rejoin_switch_back_and_refuse_a_wrong_secret() {
    let root = tempfile::tempdir().unwrap();
    let secret = root.path().join("cluster.secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
    let mut dbs: Vec<MariaDb> = (1..=3).map(node_db).collect();
    let addrs: Vec<String> = (0..3).map(|_| format!("127.0.0.1:{}", free_port())).collect();
    let mut members = BTreeMap::new();
    for (i, addr) in addrs.iter().enumerate().rev() {
        let id = i as u64 + 1;
        members.insert(id, Member::new(root.path(), id, &secret, &addrs, addr, dbs.pop().unwrap()));
    }
    let mut c = Cluster { members, leaders_by_term: BTreeMap::new(), _root: root };
    for m in c.members.values_mut() {
        m.spawn(&["start", "--bootstrap"]);
    }

    // One leader, then the preferred node (lowest id) leads.
    let started = Instant::now();
    let (first, term) = c.agreed_leader(started + SETTLE_MAX, "bootstrap");
    println!("bootstrap: node {first} leads term {term} after {:?}", started.elapsed());
    let (leader, term) = loop {
        let (l, t) = c.agreed_leader(started + SETTLE_MAX, "switchback to node 1");
        if l == 1 {
            break (l, t);
        }
        std::thread::sleep(POLL);
    };
    println!("node 1 leads term {term} after {:?}", started.elapsed());
    c.write(1, "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, at DATETIME(6) DEFAULT NOW(6), u CHAR(36)); \
                INSERT INTO app.t (id, u) VALUES (1, UUID()); BEGIN; INSERT INTO app.t (id, u) VALUES (2, UUID()); COMMIT");
    c.converged("SELECT COUNT(*) FROM app.t", "2");
    // A follower forwards writes to the leader's proxy: the row is everywhere, and the
    // same session reads it back on the follower.
    let (ok, out, err) = mariadb_cli(
        c.members[&2].proxy,
        "root",
        "",
        &["-N", "-e", "INSERT INTO app.t (id) VALUES (99); SELECT COUNT(*) FROM app.t WHERE id = 99; DELETE FROM app.t WHERE id = 99"],
        None,
    );
    assert!(ok && out.trim() == "1", "a write through follower 2: {out} {err}\n{}", c.all_logs());
    c.converged("SELECT COUNT(*) FROM app.t WHERE id = 99", "0");
    let (ok, out, err) =
        mariadb_cli(c.members[&2].proxy, "root", "", &["-N", "-e", "SELECT COUNT(*) FROM app.t"], None);
    assert!(ok && out.trim() == "2", "reads on a follower: {out} {err}");
    let servers = Command::new(BIN).args(["servers", "--api", &c.members[&1].api]).output().unwrap();
    let table = String::from_utf8_lossy(&servers.stdout);
    println!("{table}");
    assert!(servers.status.success(), "{}", String::from_utf8_lossy(&servers.stderr));
    assert!(table.starts_with("ID ") && table.contains("| leader "), "{table}");
    assert_eq!(table.lines().count(), 2 + 3, "{table}");
    let status = Command::new(BIN).args(["status", "--api", &c.members[&2].api]).output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}{}", String::from_utf8_lossy(&status.stderr));
    assert!(text.contains("cluster:     follower (Raft id 2)") && text.contains("leader 1"), "{text}");
    assert!(text.contains("(node, follower)"), "/status role: {text}");

    // The leader SIGKILLed: a new leader. The time it takes is printed (and measured over
    // runs in docs/cluster.md: usually under 2 × election_timeout_max, longer after a split
    // vote); the deadline here only catches a cluster that never recovers.
    c.members.get_mut(&leader).unwrap().kill();
    let killed = Instant::now();
    let bound = SETTLE_MAX;
    let (new_leader, new_term) = loop {
        let seen = c.poll();
        if let Some((id, (_, t, _))) = seen.iter().find(|(_, (r, t, _))| r == "leader" && *t > term) {
            break (*id, *t);
        }
        assert!(
            killed.elapsed() < bound,
            "no new leader {bound:?} after killing node {leader}: {seen:?}\n{}",
            c.all_logs()
        );
        std::thread::sleep(POLL);
    };
    let failover = killed.elapsed();
    println!(
        "node {new_leader} leads term {new_term} {failover:?} after node {leader} was killed (2 × election_timeout_max = {:?})",
        Duration::from_millis(2 * ELECTION_MAX_MS)
    );
    assert_ne!(new_leader, leader);
    c.write(new_leader, "INSERT INTO app.t (id, u) VALUES (3, UUID())");
    c.converged("SELECT COUNT(*) FROM app.t", "3");

    // The old leader restarts (no --bootstrap): it rejoins as follower of the new leader,
    // then, being the preferred node, leads again.
    c.members.get_mut(&leader).unwrap().spawn(&["start"]);
    let restarted = Instant::now();
    let first_seen = loop {
        if let Some(v) = c.members.get_mut(&leader).unwrap().cluster() {
            break v;
        }
        assert!(restarted.elapsed() < SETTLE_MAX, "node {leader} did not answer after its restart");
        std::thread::sleep(POLL);
    };
    println!("restarted node {leader} first reports {first_seen}");
    // It may first believe in the term it led (its vote is on disk) but never serves as
    // leader there: no quorum answers it. Then it follows the new leader.
    assert_ne!(first_seen["role"], "leader", "{first_seen}");
    loop {
        let v = c.members.get_mut(&leader).unwrap().cluster().unwrap_or_default();
        if v["role"] == "follower" && v["leader_id"].as_u64() == Some(new_leader) {
            break;
        }
        if v["role"] == "leader" {
            // Already back in front (the switchback below), which also means it followed.
            break;
        }
        assert!(restarted.elapsed() < SETTLE_MAX, "node {leader} did not follow node {new_leader}: {v}");
        std::thread::sleep(POLL);
    }
    let (back, back_term) = loop {
        let (l, t) = c.agreed_leader(restarted + SETTLE_MAX, "switchback after the restart");
        if l == leader {
            break (l, t);
        }
        std::thread::sleep(POLL);
    };
    println!("node {back} leads again in term {back_term}, {:?} after its restart", restarted.elapsed());
    assert!(back_term > new_term);
    // It caught up on what was written while it was down, and takes writes again.
    c.write(back, "UPDATE app.t SET u = UUID() WHERE id = 3; INSERT INTO app.t (id, u) VALUES (4, UUID())");
    c.converged("SELECT COUNT(*) FROM app.t", "4");
    c.converged("CHECKSUM TABLE app.t", c.members[&back].db.sql("CHECKSUM TABLE app.t").trim());

    // A node with another secret cannot join: refused, and the membership is unchanged.
    let wrong = c.members[&1].dir.parent().unwrap().join("wrong.secret");
    std::fs::write(&wrong, "ffffffffffffffffffffffffffffffff\n").unwrap();
    let intruder_db = node_db(4);
    let intruder_addr = format!("127.0.0.1:{}", free_port());
    let mut intruder =
        Member::new(&c.members[&1].dir.parent().unwrap().join("x"), 4, &wrong, &[], &intruder_addr, intruder_db);
    intruder.spawn(&["join", &c.members[&1].cluster.clone()]);
    let deadline = Instant::now() + SETTLE_MAX;
    let status = loop {
        if let Some(s) = intruder.child.as_mut().unwrap().try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the node with a wrong secret is still running:\n{}", intruder.logs());
        std::thread::sleep(POLL);
    };
    intruder.child = None;
    let logs = intruder.logs();
    assert!(!status.success() && logs.contains("secret"), "{status}\n{logs}");
    let refused = client::get(&c.members[&1].api, "/metrics", None, Duration::from_secs(5)).unwrap().body;
    assert!(
        refused
            .lines()
            .any(|l| l.starts_with("shoal_cluster_peer_failures_total{cause=\"auth_refused\"}") && !l.ends_with(" 0")),
        "node 1 did not count the refused peer:\n{refused}"
    );
    let members = c.members.get_mut(&1).unwrap().cluster().unwrap();
    assert_eq!(members["nodes"].as_array().map(Vec::len), Some(3), "{members}");

    // `shoal join` through a follower (redirected to the leader), then `shoal leave`.
    let root = c.members[&1].dir.parent().unwrap().to_path_buf();
    let joiner_db = node_db(4);
    let joiner_addr = format!("127.0.0.1:{}", free_port());
    let mut joiner = Member::new(&root.join("j"), 4, &secret, &[], &joiner_addr, joiner_db);
    joiner.spawn(&["join", &c.members[&2].cluster.clone()]);
    let joined = Instant::now();
    let voters = |c: &mut Cluster| -> Vec<(u64, String)> {
        let v = c.members.get_mut(&1).unwrap().cluster().unwrap_or_default();
        let rows = v["nodes"].as_array().cloned().unwrap_or_default();
        rows.iter().map(|n| (n["id"].as_u64().unwrap_or(0), n["role"].as_str().unwrap_or("").to_string())).collect()
    };
    loop {
        let rows = voters(&mut c);
        if rows.iter().any(|(id, role)| *id == 4 && role == "voter") {
            break;
        }
        assert!(joined.elapsed() < SETTLE_MAX, "node 4 did not become a voter: {rows:?}\n{}", joiner.logs());
        std::thread::sleep(POLL);
    }
    println!("node 4 joined as voter {:?} after shoal join", joined.elapsed());
    while joiner.cluster().is_none() {
        assert!(joined.elapsed() < SETTLE_MAX, "node 4's API did not answer:\n{}", joiner.logs());
        std::thread::sleep(POLL);
    }
    let out = Command::new(BIN).args(["leave", "--api", &joiner.api]).env_remove("SHOAL_CONFIG").output().unwrap();
    assert!(out.status.success(), "shoal leave: {}\n{}", String::from_utf8_lossy(&out.stderr), joiner.logs());
    let deadline = Instant::now() + SETTLE_MAX;
    let status = loop {
        if let Some(s) = joiner.child.as_mut().unwrap().try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "node 4 still runs after shoal leave:\n{}", joiner.logs());
        std::thread::sleep(POLL);
    };
    joiner.child = None;
    assert!(status.success(), "node 4 exited {status} after leaving:\n{}", joiner.logs());
    let rows = voters(&mut c);
    assert!(rows.iter().all(|(id, _)| *id != 4) && rows.len() == 3, "{rows:?}");
    println!("leaders by term over the whole test: {:?}", c.leaders_by_term);
}
