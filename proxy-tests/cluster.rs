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

/// The in-process cluster tests' userspace link forwarders (`src/cluster/tests/links.rs`),
/// shared: one per node, every peer dials it, and cut links carry nothing.
#[path = "../src/cluster/tests/links.rs"]
pub(crate) mod links;
/// What `links.rs` names a node.
pub(crate) type NodeId = u64;

const BIN: &str = env!("CARGO_BIN_EXE_shoal");
/// `[cluster] heartbeat_interval_ms` of the test nodes.
const HEARTBEAT_MS: u64 = 100;
/// `[cluster] election_timeout_min_ms`.
const ELECTION_MIN_MS: u64 = 250;
/// `[cluster] election_timeout_max_ms`; a new leader must appear within twice this.
const ELECTION_MAX_MS: u64 = 1000;
/// The cluster tests run one at a time: each starts three nodes and three MariaDBs, and
/// together they would starve each other's heartbeats on a 2-core machine.
pub(crate) static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// `[routing] failover_buffer_ms` of the nodes of the failover test: long enough for a
/// split vote or two.
const FAILOVER_BUFFER_MS: u64 = 15_000;
/// `[cluster] write_timeout_ms` of the test nodes.
const WRITE_TIMEOUT_MS: u64 = 3000;
/// `[routing] causal_wait_ms` of the nodes of the end-to-end test.
const CAUSAL_WAIT_MS: u64 = 50;
/// How long a node may take to start (proxy, API, Raft) and the first election.
pub(crate) const SETTLE_MAX: Duration = Duration::from_secs(30);
/// Poll interval of `/cluster`.
pub(crate) const POLL: Duration = Duration::from_millis(25);

/// The heartbeat and election settings of a test cluster.
#[derive(Clone, Copy)]
pub(crate) enum Timing {
    /// Fast (`HEARTBEAT_MS`, `ELECTION_MIN_MS`..`ELECTION_MAX_MS`): tests that wait for
    /// many elections.
    Test,
    /// shoal's defaults: what operators run, for measured outages.
    Defaults,
}

/// One `shoal` cluster node: its files outlive restarts of its process.
pub(crate) struct Member {
    pub(crate) id: u64,
    pub(crate) dir: PathBuf,
    pub(crate) file: PathBuf,
    pub(crate) api: String,
    cluster: String,
    pub(crate) child: Option<Child>,
    starts: u32,
    /// Its own MariaDB.
    pub(crate) db: MariaDb,
    /// Its proxy port.
    pub(crate) proxy: u16,
    /// The API's bearer token, when `[api] token_file` is set.
    pub(crate) token: Option<String>,
}

impl Member {
    fn new(root: &Path, id: u64, secret: &Path, peers: &[String], cluster: &str, db: MariaDb) -> Member {
        Member::with(
            root,
            id,
            secret,
            peers,
            cluster,
            db,
            &format!("[routing]\nfailover_buffer_ms = {FAILOVER_BUFFER_MS}\n"),
        )
    }

    /// A member whose TOML ends with `extra` (its own `[routing]`, say; lines before the
    /// first header belong to `[api]`).
    fn with(root: &Path, id: u64, secret: &Path, peers: &[String], cluster: &str, db: MariaDb, extra: &str) -> Member {
        Member::timed(root, id, secret, peers, (cluster, None), db, extra, Timing::Test)
    }

    /// [`Member::with`] with the cluster's heartbeat and election timing `timing`;
    /// `(cluster, advertise)`: the cluster address it listens on and, when peers reach it
    /// through a forwarder, the forwarder's.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn timed(
        root: &Path,
        id: u64,
        secret: &Path,
        peers: &[String],
        (cluster, advertise): (&str, Option<&str>),
        db: MariaDb,
        extra: &str,
        timing: Timing,
    ) -> Member {
        let db_port = db.port;
        let timing = match timing {
            Timing::Test => format!(
                "heartbeat_interval_ms = {HEARTBEAT_MS}\nelection_timeout_min_ms = {ELECTION_MIN_MS}\n\
                 election_timeout_max_ms = {ELECTION_MAX_MS}\n"
            ),
            Timing::Defaults => String::new(),
        };
        let dir = root.join(format!("node-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (api_port, proxy_port) = (free_port(), free_port());
        let peers = peers.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ");
        let text = format!(
            "[node]\nid = \"node-{id}\"\nbind_address = \"{cluster}\"\n{advertise}data_dir = \"{data}\"\n\
             [database]\nhost = \"127.0.0.1\"\nport = {db_port}\nuser = \"root\"\npassword = \"\"\n\
             [cluster]\npeers = [{peers}]\nsecret_file = \"{secret}\"\n{timing}\
             write_timeout_ms = {WRITE_TIMEOUT_MS}\n\
             [proxy]\nbind_address = \"127.0.0.1:{proxy_port}\"\n[api]\nbind_address = \"127.0.0.1:{api_port}\"\n{extra}",
            data = dir.join("data").display(),
            secret = secret.display(),
            advertise = advertise.map(|a| format!("advertise_address = \"{a}\"\n")).unwrap_or_default(),
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
            token: None,
        }
    }

    /// How many times its process was started (its incarnation).
    pub(crate) fn starts(&self) -> u32 {
        self.starts
    }

    /// Runs `shoal <args> -c FILE`, logging to `node.N.log` in its directory.
    pub(crate) fn spawn(&mut self, args: &[&str]) {
        assert!(self.child.is_none(), "node {} already runs", self.id);
        self.starts += 1;
        let log = self.dir.join(format!("node.{}.log", self.starts));
        let child = crate::harness::spawn_shoal(args, &self.file, &log);
        self.child = Some(child);
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    /// This node's `/cluster`, if it answers.
    pub(crate) fn cluster(&mut self) -> Option<serde_json::Value> {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("node {} exited ({status}):\n{}", self.id, self.logs());
            }
        }
        let r = client::get(&self.api, "/cluster", self.token.as_deref(), Duration::from_millis(500)).ok()?;
        (r.status == 200).then(|| serde_json::from_str(&r.body).ok()).flatten()
    }

    /// Adds `lines` (TOML, each ending in a newline) to section `[section]` of its file.
    pub(crate) fn add_to_section(&self, section: &str, lines: &str) {
        let header = format!("[{section}]\n");
        let text = std::fs::read_to_string(&self.file).unwrap();
        assert!(text.contains(&header), "node {}'s file has no {header}", self.id);
        std::fs::write(&self.file, text.replacen(&header, &format!("{header}{lines}"), 1)).unwrap();
    }

    pub(crate) fn logs(&self) -> String {
        (1..=self.starts)
            .map(|n| std::fs::read_to_string(self.dir.join(format!("node.{n}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
        // SHOAL_KEEP_LOGS=1 keeps them after a pass too (timelines of a measured run).
        if std::thread::panicking() || std::env::var_os("SHOAL_KEEP_LOGS").is_some() {
            let _ = std::fs::create_dir_all("/tmp/shoal-failed-cluster");
            let _ = std::fs::write(format!("/tmp/shoal-failed-cluster/node-{}.log", self.id), self.logs());
        }
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
pub(crate) struct Cluster {
    pub(crate) members: BTreeMap<u64, Member>,
    leaders_by_term: BTreeMap<u64, u64>,
    _root: tempfile::TempDir,
}

impl Cluster {
    /// Three nodes bootstrapped together (`extra(id)`: TOML appended to node `id`'s file),
    /// each API with the bearer token `token-N`; returns once node 1 (the preferred leader)
    /// leads and every node agrees.
    pub(crate) fn start(extra: impl Fn(u64) -> String) -> Cluster {
        Cluster::start_with(extra, |id| format!("token-{id}"))
    }

    /// [`Cluster::start`] with node `id`'s API token `token(id)` (one token for all: a
    /// client that holds a single token, like `shoal proxy --cluster`).
    fn start_with(extra: impl Fn(u64) -> String, token: impl Fn(u64) -> String) -> Cluster {
        Cluster::start_timed(extra, token, Timing::Test)
    }

    /// [`Cluster::start_with`] with the heartbeat and election timing `timing`.
    pub(crate) fn start_timed(extra: impl Fn(u64) -> String, token: impl Fn(u64) -> String, timing: Timing) -> Cluster {
        Cluster::start_linked(extra, token, timing, None)
    }

    /// [`Cluster::start_timed`]; with `links`, every node is reached through a forwarder
    /// of `links` (spawned on the runtime), so tests can cut links.
    pub(crate) fn start_linked(
        extra: impl Fn(u64) -> String,
        token: impl Fn(u64) -> String,
        timing: Timing,
        links: Option<(&links::Links, &tokio::runtime::Runtime)>,
    ) -> Cluster {
        Cluster::prepare(3, extra, token, timing, links).launch()
    }

    /// The `n` members of [`Cluster::start_linked`], their files written, none running
    /// yet (a test may add to their files, then [`Cluster::launch`]).
    pub(crate) fn prepare(
        n: u64,
        extra: impl Fn(u64) -> String,
        token: impl Fn(u64) -> String,
        timing: Timing,
        links: Option<(&links::Links, &tokio::runtime::Runtime)>,
    ) -> Cluster {
        let root = tempfile::tempdir().unwrap();
        eprintln!("cluster files in {}", root.path().display());
        let secret = root.path().join("cluster.secret");
        std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
        let mut dbs: Vec<MariaDb> = (1..=n).map(node_db).collect();
        let binds: Vec<String> = (0..n).map(|_| format!("127.0.0.1:{}", free_port())).collect();
        let addrs: Vec<String> = match links {
            Some((l, rt)) => {
                binds.iter().enumerate().map(|(i, b)| rt.block_on(l.forwarder(i as u64 + 1, b.clone()))).collect()
            }
            None => binds.clone(),
        };
        let mut members = BTreeMap::new();
        for (i, bind) in binds.iter().enumerate().rev() {
            let id = i as u64 + 1;
            let token_file = root.path().join(format!("token-{id}"));
            std::fs::write(&token_file, format!("{}\n", token(id))).unwrap();
            let extra = format!("token_file = \"{}\"\n{}", token_file.display(), extra(id));
            let at = (bind.as_str(), links.map(|_| addrs[i].as_str()));
            let mut m = Member::timed(root.path(), id, &secret, &addrs, at, dbs.pop().unwrap(), &extra, timing);
            m.token = Some(token(id));
            members.insert(id, m);
        }
        Cluster { members, leaders_by_term: BTreeMap::new(), _root: root }
    }

    /// Runs `shoal start --bootstrap` on every member; returns once node 1 (the preferred
    /// leader) leads and every node agrees.
    pub(crate) fn launch(mut self) -> Cluster {
        for m in self.members.values_mut() {
            m.spawn(&["start", "--bootstrap"]);
        }
        let started = Instant::now();
        loop {
            let (l, _) = self.agreed_leader(started + SETTLE_MAX, "node 1 leads");
            if l == 1 {
                return self;
            }
            std::thread::sleep(POLL);
        }
    }

    /// One round of `/cluster` from every running node: id → (role, term, leader id).
    pub(crate) fn poll(&mut self) -> BTreeMap<u64, (String, u64, Option<u64>)> {
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
    pub(crate) fn agreed_leader(&mut self, deadline: Instant, what: &str) -> (u64, u64) {
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
    pub(crate) fn write(&self, via: u64, sql: &str) {
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
    pub(crate) fn converged(&self, sql: &str, want: &str) {
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

    pub(crate) fn all_logs(&self) -> String {
        self.members.values().map(|m| format!("=== node {} ===\n{}", m.id, m.logs())).collect()
    }
}

#[test]
fn three_processes_elect_fail_over_rejoin_switch_back_and_refuse_a_wrong_secret() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
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
    // A follower is healthy once it knows where to forward writes (the leader's proxy
    // address, asked over the cluster port): give it that long after its (re)start.
    let deadline = Instant::now() + SETTLE_MAX;
    let status = loop {
        let status = Command::new(BIN).args(["status", "--api", &c.members[&2].api]).output().unwrap();
        if status.status.success() || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(POLL);
    };
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}{}", String::from_utf8_lossy(&status.stderr));
    assert!(text.contains("cluster:     follower (Raft id 2)") && text.contains("leader 1"), "{text}");
    assert!(text.contains("(node, follower)"), "/status role: {text}");

    // The leader SIGKILLed: a new leader. The time it takes is printed (and measured over
    // runs in docs/cluster.md: usually under 2 × election_timeout_max, longer after a split
    // vote); the deadline here only catches a cluster that never recovers.
    c.members.get_mut(&leader).unwrap().kill();
    let killed = Instant::now();
    // A client of a surviving node writes at once: the statement waits for the new leader
    // (failover_buffer_ms) instead of failing, and runs there.
    let survivor = if leader == 2 { 3 } else { 2 };
    let (ok, _, err) = mariadb_cli(
        c.members[&survivor].proxy,
        "root",
        "",
        &["-e", "INSERT INTO app.t (id, u) VALUES (50, UUID())"],
        None,
    );
    assert!(ok, "a write through node {survivor} during the failover: {err}\n{}", c.all_logs());
    println!("a write through node {survivor} right after the kill succeeded {:?} after it", killed.elapsed());
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
    c.converged("SELECT COUNT(*) FROM app.t", "4");

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
    c.converged("SELECT COUNT(*) FROM app.t", "5");
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

/// mysql_async options for root on `port` (a node's proxy or its MariaDB), schema `db`.
pub(crate) fn opts(port: u16, db: Option<&str>) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("root"))
        .db_name(db)
        .prefer_socket(false)
        .into()
}

/// Holds a node's apply: `FLUSH TABLES WITH READ LOCK` on its MariaDB `db` from a
/// mariadb CLI that keeps the lock until it is killed. Reads there still run.
pub(crate) fn hold_apply(db: &MariaDb) -> Child {
    use std::io::Write;
    let mut l = Command::new("mariadb")
        .args(["-h127.0.0.1", "-uroot", &format!("-P{}", db.port)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = l.stdin.as_mut().unwrap();
    stdin.write_all(b"FLUSH TABLES WITH READ LOCK; SELECT SLEEP(600);\n").unwrap();
    stdin.flush().unwrap();
    // The lock is taken once the CLI ran the first statement.
    let deadline = Instant::now() + SETTLE_MAX;
    while !db.sql("SHOW PROCESSLIST").contains("SLEEP(600)") {
        assert!(Instant::now() < deadline, "FLUSH TABLES WITH READ LOCK on port {} did not run", db.port);
        std::thread::sleep(POLL);
    }
    l
}

/// Runs `round(hold, base)` twice: with `db`'s apply held ([`hold_apply`], ids from 0),
/// then with it running (ids from 1000).
fn with_apply_held_then_running(db: &MariaDb, mut round: impl FnMut(bool, i32)) {
    for (hold, base) in [(true, 0), (false, 1000)] {
        let lock = hold.then(|| hold_apply(db));
        round(hold, base);
        if let Some(mut l) = lock {
            let _ = l.kill();
            let _ = l.wait();
        }
    }
}

/// A counter of `/metrics` on member `m` (sum over the series whose labels contain `labels`).
pub(crate) fn counter(m: &Member, name: &str, labels: &str) -> f64 {
    let body = client::get(&m.api, "/metrics", m.token.as_deref(), Duration::from_secs(5)).unwrap().body;
    body.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// The product the README promises: every node takes reads and writes on its proxy port.
/// Node 2 runs `read_consistency = "global"`, node 3 `"session"`.
///
/// * the randomized workload of the capture tests, sent to all three nodes at once
///   (followers forward writes), ends with identical checksums on the three MariaDBs;
/// * every acknowledged write is on at least two nodes' logs at its OK (leader's API);
/// * a session reads its own write on a follower 100/100 with that follower's apply held
///   (`FLUSH TABLES WITH READ LOCK` on its MariaDB), and 100/100 with apply running;
///   `global` the same across two connections;
/// * the mariadb CLI, PyMySQL, mysql-connector-python, node mysql2 and sysbench
///   `oltp_read_write` work against a follower's port;
/// * with both followers stopped, a write on the leader blocks, is invisible, and fails
///   with a clear error after `write_timeout_ms`, never to appear.
#[test]
fn every_node_takes_reads_and_writes_and_sessions_read_their_own() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    use mysql_async::prelude::Queryable;
    let seed: u64 = std::env::var("SHOAL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("cluster workload seed {seed} (SHOAL_SEED={seed} replays it)");
    let mut c = Cluster::start(|id| {
        let consistency = if id == 2 { "global" } else { "session" };
        format!("[routing]\nread_consistency = \"{consistency}\"\ncausal_wait_ms = {CAUSAL_WAIT_MS}\n")
    });
    let port = |c: &Cluster, id: u64| c.members[&id].proxy;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let (p1, p2, p3) = (port(&c, 1), port(&c, 2), port(&c, 3));

    // The schema through follower 2 (DDL forwarded), then everywhere before the workload.
    rt.block_on(async {
        let mut conn = mysql_async::Conn::new(opts(p2, None)).await.unwrap();
        conn.query_drop("CREATE DATABASE w").await.unwrap();
        conn.query_drop("USE w").await.unwrap();
        for ddl in crate::replication::SCHEMA {
            conn.query_drop(*ddl).await.unwrap_or_else(|e| panic!("{ddl}: {e}"));
        }
        for t in ["ryw (id INT PRIMARY KEY)", "glob (id INT PRIMARY KEY)", "acked (id INT PRIMARY KEY)"] {
            conn.query_drop(format!("CREATE TABLE {t}")).await.unwrap();
        }
        conn.query_drop("CREATE USER app@'%' IDENTIFIED BY 'app-pw'").await.unwrap();
        conn.query_drop("GRANT ALL ON *.* TO app@'%'").await.unwrap();
        // A DDL the server refuses: the leader's applier ran it, and the client gets the
        // server's code and message (SQLSTATE HY000: the applier keeps only those).
        match conn.query_drop("CREATE TABLE ryw (id INT PRIMARY KEY)").await {
            Err(mysql_async::Error::Server(e)) => {
                assert_eq!(e.code, 1050, "{e:?}");
                assert!(e.message.contains("'ryw' already exists"), "{e:?}");
            }
            other => panic!("a duplicate CREATE TABLE through the cluster: {other:?}"),
        }
        conn.disconnect().await.unwrap();
    });
    c.converged(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'w'",
        &(crate::replication::SCHEMA.len() - 2 + 3).to_string(),
    );

    // The randomized workload on all three nodes at once: 2 clients per node.
    let done: usize = rt.block_on(async {
        let mut tasks = Vec::new();
        for (i, p) in [p1, p2, p3].into_iter().enumerate() {
            tasks.extend(crate::replication::workload_clients(opts(p, Some("w")), seed.wrapping_add(i as u64), 2, 40));
        }
        let mut done = 0;
        for t in tasks {
            done += t.await.unwrap();
        }
        // A last write through each node.
        for p in [p1, p2, p3] {
            let mut conn = mysql_async::Conn::new(opts(p, Some("w"))).await.unwrap();
            conn.query_drop(format!("INSERT INTO t_ai (k, v) VALUES (-1, 'last via {p}')")).await.unwrap();
            conn.disconnect().await.unwrap();
        }
        done
    });
    assert!(done > 120, "only {done} of 240 operations succeeded (seed {seed})");
    let deadline = Instant::now() + SETTLE_MAX;
    let want = loop {
        let sums: Vec<_> = rt.block_on(async {
            let mut out = Vec::new();
            for m in c.members.values() {
                let mut t = crate::replication::checksums(&m.db, "w").await;
                t.extend(
                    crate::replication::checksums(&m.db, "shoal_meta").await.into_iter().filter(|(t, _)| t == "txn"),
                );
                out.push(t);
            }
            out
        });
        if sums.iter().all(|s| *s == sums[0]) {
            break sums[0].clone();
        }
        assert!(Instant::now() < deadline, "checksums differ (seed {seed}): {sums:?}\n{}", c.all_logs());
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("workload: {done} of 240 operations ok; {} tables identical on 3 nodes", want.len());
    for m in c.members.values() {
        assert!(m.db.sql("XA RECOVER").trim().is_empty(), "node {}: transactions left prepared", m.id);
    }

    // Each write acknowledged through follower 3 is on two nodes' logs at its OK.
    rt.block_on(async {
        let mut conn = mysql_async::Conn::new(opts(p3, Some("w"))).await.unwrap();
        let mut last = 0;
        for i in 0..20 {
            conn.query_drop(format!("INSERT INTO acked VALUES ({i})")).await.unwrap();
            let lsn: Option<u64> = conn.query_first("SELECT @@shoal_last_lsn").await.unwrap().flatten();
            let lsn = lsn.expect("an LSN after a write");
            assert!(lsn > last, "LSNs grow: {lsn} after {last}");
            last = lsn;
            let m1 = &c.members[&1];
            let nodes =
                client::get(&m1.api, "/cluster/nodes", m1.token.as_deref(), Duration::from_secs(5)).unwrap().body;
            let nodes: serde_json::Value = serde_json::from_str(&nodes).unwrap();
            let index = lsn - 1;
            let holding = nodes["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["last_log_index"].as_u64().or(n["matched_index"].as_u64()).is_some_and(|l| l >= index))
                .count();
            assert!(holding >= 2, "LSN {lsn} acknowledged but held by {holding} node(s): {nodes}");
        }
        conn.disconnect().await.unwrap();
    });

    // Read-your-writes on follower 3 (session) with its apply held, then running.
    let held_before = counter(&c.members[&3], "shoal_causal_waits_total", "timeout");
    with_apply_held_then_running(&c.members[&3].db, |hold, base| {
        rt.block_on(async {
            let mut conn = mysql_async::Conn::new(opts(p3, Some("w"))).await.unwrap();
            for i in base..base + 100 {
                conn.query_drop(format!("INSERT INTO ryw VALUES ({i})")).await.unwrap();
                let n: i64 =
                    conn.query_first(format!("SELECT COUNT(*) FROM ryw WHERE id = {i}")).await.unwrap().unwrap();
                assert_eq!(n, 1, "follower 3 (apply held: {hold}) did not read its own write {i}");
            }
            conn.disconnect().await.unwrap();
        })
    });
    let waited = counter(&c.members[&3], "shoal_causal_waits_total", "timeout") - held_before;
    let applied = counter(&c.members[&3], "shoal_causal_waits_total", "applied");
    println!("follower 3: 200/200 own writes read; {waited} reads went to the leader after waiting, {applied} waited and ran on the follower");
    assert!(waited >= 100.0, "with apply held, reads must have waited and gone to the leader: {waited}");
    // Global consistency on follower 2: a write through the leader, read on node 2.
    with_apply_held_then_running(&c.members[&2].db, |hold, base| {
        rt.block_on(async {
            let mut writer = mysql_async::Conn::new(opts(p1, Some("w"))).await.unwrap();
            let mut reader = mysql_async::Conn::new(opts(p2, Some("w"))).await.unwrap();
            for i in base..base + 100 {
                writer.query_drop(format!("INSERT INTO glob VALUES ({i})")).await.unwrap();
                let n: i64 =
                    reader.query_first(format!("SELECT COUNT(*) FROM glob WHERE id = {i}")).await.unwrap().unwrap();
                assert_eq!(n, 1, "follower 2 (global, apply held: {hold}) missed write {i} acknowledged on node 1");
            }
            writer.disconnect().await.unwrap();
            reader.disconnect().await.unwrap();
        })
    });
    let waited = counter(&c.members[&2], "shoal_causal_waits_total", "timeout");
    println!("follower 2 (global): 200/200 reads saw the other connection's write; {waited} went to the leader");
    assert!(waited >= 100.0, "with apply held, global reads must have gone to the leader: {waited}");

    // WolfScale's write endpoints on follower 3: the token, the statement kind, the LSN.
    let m3 = &c.members[&3];
    let post = |path: &str, token: Option<&str>, json: &str| {
        client::post_json(&m3.api, path, token, json, Duration::from_secs(10)).unwrap()
    };
    let insert = r#"{"sql": "INSERT INTO ryw VALUES (7000), (7001)", "database": "w"}"#;
    assert_eq!(post("/write/insert", None, insert).status, 401);
    assert_eq!(post("/write/insert", Some("wrong"), insert).status, 401);
    let r = post("/write/delete", m3.token.as_deref(), insert);
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post("/write/insert", m3.token.as_deref(), insert);
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["affected_rows"], 2, "{v}");
    let lsn = v["lsn"].as_u64().unwrap_or_else(|| panic!("no LSN: {v}"));
    let r = post(
        "/write/update",
        m3.token.as_deref(),
        r#"{"sql": "UPDATE ryw SET id = 7002 WHERE id = 7001", "database": "w"}"#,
    );
    assert_eq!(
        (r.status, serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["affected_rows"].as_u64()),
        (200, Some(1)),
        "{}",
        r.body
    );
    let r = post("/write/ddl", m3.token.as_deref(), r#"{"sql": "CREATE TABLE w.api (a INT PRIMARY KEY)"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post("/write/insert", m3.token.as_deref(), r#"{"sql": "INSERT INTO ryw VALUES (7000)", "database": "w"}"#);
    assert_eq!(r.status, 409, "a duplicate key: {}", r.body);
    assert!(r.body.contains("1062"), "{}", r.body);
    // The LSN it returned, named on another connection, makes that read wait for it.
    rt.block_on(async {
        let mut conn = mysql_async::Conn::new(opts(p3, Some("w"))).await.unwrap();
        let n: i64 = conn
            .query_first(format!("/*shoal:lsn={lsn}*/ SELECT COUNT(*) FROM ryw WHERE id = 7000"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1);
        conn.disconnect().await.unwrap();
    });
    c.converged("SELECT COUNT(*) FROM w.ryw WHERE id IN (7000, 7002)", "2");

    // Clients against follower 3's port as against the leader's.
    let (ok, out, err) = mariadb_cli(
        p3,
        "app",
        "app-pw",
        &["-N", "w", "-e", "INSERT INTO ryw VALUES (5000); SELECT id FROM ryw WHERE id = 5000"],
        None,
    );
    assert!(ok && out.trim() == "5000", "mariadb CLI on a follower: {out} {err}");
    for driver in ["pymysql", "connector-pure"] {
        let passed = crate::clients::python_checks(driver, p3, "app", "app-pw", "w");
        assert!(passed >= 9, "{driver} on a follower: {passed} checks");
    }
    let passed = crate::clients::node_checks(p3, "app", "app-pw", "w");
    assert!(passed >= 26, "node mysql2 on a follower: {passed} checks");
    let sb = crate::clients::sysbench_read_write(p3, "app", "app-pw", "w", 5);
    println!("sysbench oltp_read_write on follower 3: {sb:?}");
    assert!(sb.transactions > 10 && sb.errors == 0 && sb.reconnects == 0, "{sb:?}");

    // Both followers stopped: a write on the leader blocks, stays invisible, then fails.
    c.members.get_mut(&2).unwrap().kill();
    c.members.get_mut(&3).unwrap().kill();
    std::thread::sleep(Duration::from_millis(2 * ELECTION_MAX_MS));
    let leader_db = c.members[&1].db.port;
    rt.block_on(async {
        let mut conn = mysql_async::Conn::new(opts(p1, Some("w"))).await.unwrap();
        let started = Instant::now();
        let write = tokio::spawn(async move {
            let r = conn.query_drop("INSERT INTO acked VALUES (-7)").await;
            (r, started.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(WRITE_TIMEOUT_MS / 3)).await;
        let mut direct = mysql_async::Conn::new(opts(leader_db, Some("w"))).await.unwrap();
        let seen: i64 = direct.query_first("SELECT COUNT(*) FROM acked WHERE id = -7").await.unwrap().unwrap();
        assert_eq!(seen, 0, "an uncommitted write is visible on the leader");
        assert!(!write.is_finished(), "the write did not wait for the cluster");
        let (r, took) = write.await.unwrap();
        println!("write with no quorum failed after {took:?} (write_timeout_ms = {WRITE_TIMEOUT_MS}): {r:?}");
        match r {
            Err(mysql_async::Error::Server(e)) => {
                assert_eq!(e.code, 1180, "{e:?}");
                assert!(e.message.contains("write_timeout_ms"), "{e:?}");
            }
            other => panic!("a write with no quorum: {other:?}"),
        }
        let seen: i64 = direct.query_first("SELECT COUNT(*) FROM acked WHERE id = -7").await.unwrap().unwrap();
        assert_eq!(seen, 0, "the refused write became visible");
        let prepared: Vec<mysql_async::Row> = direct.query("XA RECOVER").await.unwrap();
        assert!(prepared.is_empty(), "the refused write was left prepared");
        direct.disconnect().await.unwrap();
    });
}

/// `shoal proxy --cluster` over the nodes' APIs: no database of its own, logging to
/// `standalone.log` in `dir`; killed on drop.
struct Standalone {
    child: Child,
    log: PathBuf,
    /// Its MySQL port.
    port: u16,
    /// Its HTTP API (no token).
    api: String,
}

impl Standalone {
    fn spawn(dir: &Path, apis: &[String], token: &str) -> Standalone {
        let (port, api_port) = (free_port(), free_port());
        let token_file = dir.join("standalone-token");
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
        let apis = apis.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
        let text = format!(
            "[backends]\nuser = \"root\"\ncluster = [{apis}]\ncluster_token_file = \"{}\"\n\
             [proxy]\nbind_address = \"127.0.0.1:{port}\"\n[api]\nbind_address = \"127.0.0.1:{api_port}\"\n\
             [routing]\nhealth_interval_ms = 100\nhealth_timeout_ms = 500\n",
            token_file.display()
        );
        let file = dir.join("standalone.toml");
        std::fs::write(&file, text).unwrap();
        let log = dir.join("standalone.log");
        let child = crate::harness::spawn_shoal(&["proxy"], &file, &log);
        Standalone { child, log, port, api: format!("127.0.0.1:{api_port}") }
    }

    /// Its table as `/cluster/nodes` shows it: (address, role, status) per server.
    fn servers(&mut self) -> Vec<(String, String, String)> {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("shoal proxy --cluster exited ({status}):\n{}", self.logs());
        }
        let Ok(r) = client::get(&self.api, "/cluster/nodes", None, Duration::from_millis(500)) else { return vec![] };
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
        let field = |n: &serde_json::Value, k: &str| n[k].as_str().unwrap_or_default().to_string();
        v["nodes"]
            .as_array()
            .map(|a| a.iter().map(|n| (field(n, "address"), field(n, "role"), field(n, "status"))).collect())
            .unwrap_or_default()
    }

    /// Polls until its table names `primary` as the primary, with `up` servers up.
    fn wait_for_primary(&mut self, primary: &str, up: usize, what: &str) -> Vec<(String, String, String)> {
        let deadline = Instant::now() + SETTLE_MAX;
        loop {
            let servers = self.servers();
            let leads = servers.iter().any(|(a, r, s)| a == primary && r == "primary" && s == "up");
            if leads && servers.iter().filter(|(_, _, s)| s == "up").count() == up {
                return servers;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the proxy's table {servers:?}, not {primary} leading\n{}",
                self.logs()
            );
            std::thread::sleep(POLL);
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // SHOAL_KEEP_LOGS=1 keeps them after a pass too (timelines of a measured run).
        if std::thread::panicking() || std::env::var_os("SHOAL_KEEP_LOGS").is_some() {
            let _ = std::fs::create_dir_all("/tmp/shoal-failed-cluster");
            let _ = std::fs::write("/tmp/shoal-failed-cluster/standalone.log", self.logs());
        }
    }
}

/// `shoal proxy --cluster` (docs/cluster.md, "A standalone proxy over a cluster"): a proxy
/// with no database learns the members and the leader from the nodes' APIs and routes
/// like a node does.
///
/// * its table lists the three nodes' proxies, node 1's as the primary;
/// * writes through it land on every node's MariaDB;
/// * a session reads its own writes 100/100 on the follower its reads go to, with that
///   follower's apply held (the read names the LSN, the node waits, then reads on the
///   leader);
/// * the leader's shoal SIGKILLed: the proxy's table names the new leader and writes
///   through the same proxy work again (times printed, not asserted).
#[test]
fn a_standalone_proxy_over_the_cluster_follows_the_leader_and_reads_its_own_writes() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    use mysql_async::prelude::Queryable;
    const TOKEN: &str = "cluster-token";
    let mut c = Cluster::start_with(|_| format!("[routing]\ncausal_wait_ms = {CAUSAL_WAIT_MS}\n"), |_| TOKEN.into());
    let apis: Vec<String> = c.members.values().map(|m| m.api.clone()).collect();
    let proxy_of = |c: &Cluster, id: u64| format!("127.0.0.1:{}", c.members[&id].proxy);
    let mut sp = Standalone::spawn(c._root.path(), &apis, TOKEN);
    let servers = sp.wait_for_primary(&proxy_of(&c, 1), 3, "start");
    println!("shoal proxy --cluster: {servers:?}");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let port = sp.port;

    // Writes through the standalone proxy reach every node.
    let (ok, _, err) = mariadb_cli(
        port,
        "root",
        "",
        &["-e", "CREATE DATABASE sp; CREATE TABLE sp.t (id INT PRIMARY KEY); INSERT INTO sp.t VALUES (1), (2)"],
        None,
    );
    assert!(ok, "writes through shoal proxy --cluster: {err}\n{}", sp.logs());
    c.converged("SELECT COUNT(*) FROM sp.t", "2");

    // Reads go to the first follower of the table (least loaded, first on ties): hold
    // its apply; every read must still see the session's write.
    let reader = servers.iter().find(|(_, r, _)| r == "replica").map(|(a, _, _)| a.clone()).unwrap();
    let held = *c.members.iter().find(|(id, _)| proxy_of(&c, **id) == reader).map(|(id, _)| id).unwrap();
    let before = counter(&c.members[&held], "shoal_causal_waits_total", "timeout");
    let mut lock = hold_apply(&c.members[&held].db);
    rt.block_on(async {
        let mut conn = mysql_async::Conn::new(opts(port, Some("sp"))).await.unwrap();
        for i in 100..200 {
            conn.query_drop(format!("INSERT INTO t VALUES ({i})")).await.unwrap();
            let n: i64 = conn.query_first(format!("SELECT COUNT(*) FROM t WHERE id = {i}")).await.unwrap().unwrap();
            assert_eq!(n, 1, "node {held}'s apply held: the session did not read its own write {i}");
        }
        // A prepared read with a write pending goes to the leader.
        conn.query_drop("INSERT INTO t VALUES (300)").await.unwrap();
        let n: Option<i64> = conn.exec_first("SELECT COUNT(*) FROM t WHERE id = ?", (300,)).await.unwrap();
        assert_eq!(n, Some(1), "a prepared read of the session's own write");
        conn.disconnect().await.unwrap();
    });
    let _ = lock.kill();
    let _ = lock.wait();
    let waited = counter(&c.members[&held], "shoal_causal_waits_total", "timeout") - before;
    println!("through shoal proxy --cluster: 100/100 own writes read; node {held} (apply held) waited {waited} times");
    assert!(waited >= 100.0, "the reads must have gone to node {held} naming their LSN: {waited} waits timed out");
    c.converged("SELECT COUNT(*) FROM sp.t", "103");

    // The leader's shoal dies: the proxy follows the new leader.
    c.members.get_mut(&1).unwrap().kill();
    let killed = Instant::now();
    let (leader, term) = c.agreed_leader(killed + SETTLE_MAX, "failover");
    println!("node {leader} leads term {term} {:?} after the kill", killed.elapsed());
    let servers = sp.wait_for_primary(&proxy_of(&c, leader), 2, "failover");
    println!("the proxy's table names node {leader} {:?} after the kill: {servers:?}", killed.elapsed());
    let deadline = Instant::now() + SETTLE_MAX;
    loop {
        let (ok, _, err) = mariadb_cli(port, "root", "", &["-e", "INSERT INTO sp.t VALUES (400)"], None);
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "no write through the proxy after the failover: {err}\n{}", sp.logs());
        std::thread::sleep(POLL);
    }
    println!("a write through shoal proxy --cluster succeeded {:?} after the kill", killed.elapsed());
    c.converged("SELECT COUNT(*) FROM sp.t WHERE id = 400", "1");
}
