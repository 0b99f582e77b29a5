//! Test harness: throwaway `mariadbd` instances and in-process shoal proxies.
//!
//! * [`MariaDb::start`] installs a datadir under a temp dir (copied from a template made
//!   once per test process), starts `mariadbd` on a free port as a child that dies with
//!   the thread that started it (`PR_SET_PDEATHSIG`), and stops it on drop — also when a
//!   test panics.
//! * [`shared`] is one server for the whole test process, kept by a thread that lives as
//!   long as the process; tests isolate themselves with their own database and account
//!   ([`Scratch`]).
//! * [`Shoal::start`] runs a proxy in front of a server on its own runtime, so blocking
//!   clients (CLI, Python, node) can be used from plain `#[test]`s.

#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use shoal::config::Config;
use shoal::frontend::Proxy;

/// How long a fresh `mariadbd` may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A free TCP port on 127.0.0.1 for a server a test starts. It is chosen below the
/// kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`): a port the kernel
/// can hand to any outgoing connection (a client, a pool, a peer link) could be taken
/// between this pick and the server's bind — seen once as "Address already in use" when
/// a cluster node started during a parallel run. Picks walk up from a random start, so
/// one run never hands out the same port twice.
pub fn free_port() -> u16 {
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    const LOW: u32 = 10_000;
    let high = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next().and_then(|p| p.parse::<u32>().ok()))
        .filter(|&h| h > LOW + 1000)
        .unwrap_or(32_768);
    let next = NEXT.get_or_init(|| {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        AtomicU32::new(seed ^ std::process::id())
    });
    for _ in 0..(high - LOW) {
        let port = (LOW + next.fetch_add(1, Ordering::Relaxed) % (high - LOW)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn which(names: &[&str]) -> PathBuf {
    for n in names {
        for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
            let p = Path::new(dir).join(n);
            if p.exists() {
                return p;
            }
        }
    }
    panic!("none of {names:?} is installed: run `apt-get install -y mariadb-server mariadb-client`");
}

/// Names the test process that owns a server directory (see [`sweep_stale_dirs`]).
fn mark_owner(dir: &Path) {
    std::fs::write(dir.join("owner"), std::process::id().to_string()).unwrap();
}

/// Removes the server directories of test processes that are gone: the template and the
/// shared server live in statics, which are never dropped (their servers die with the
/// process). A directory without an `owner` file, or whose owner runs, is left alone.
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("shoal-mariadb-") || name.starts_with("shoal-template-")) {
            continue;
        }
        let Ok(owner) = std::fs::read_to_string(e.path().join("owner")) else { continue };
        let alive = owner.trim().parse::<u32>().map_or(true, |pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A datadir made by `mariadb-install-db` once per process; instances copy it.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            sweep_stale_dirs();
            let dir = tempfile::Builder::new().prefix("shoal-template-").tempdir().unwrap();
            mark_owner(dir.path());
            let out = Command::new(which(&["mariadb-install-db", "mysql_install_db"]))
                .args(["--no-defaults", "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db"])
                .arg(format!("--datadir={}", dir.path().join("data").display()))
                // Its own temp dir: concurrent test processes must not share temp tables.
                .env("TMPDIR", dir.path())
                .output()
                .expect("run mariadb-install-db");
            assert!(out.status.success(), "mariadb-install-db failed: {}", String::from_utf8_lossy(&out.stderr));
            dir
        })
        .path()
}

/// A running `mariadbd` owned by the test.
pub struct MariaDb {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Its directory (datadir, socket, logs).
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    /// Options it was started with, to restart it the same way.
    extra: Vec<String>,
}

impl MariaDb {
    /// Starts a fresh server; `extra` are additional `mariadbd` options.
    pub fn start(extra: &[&str]) -> MariaDb {
        let dir = tempfile::Builder::new().prefix("shoal-mariadb-").tempdir().unwrap();
        mark_owner(dir.path());
        let status =
            Command::new("cp").arg("-a").arg(template().join("data")).arg(dir.path().join("data")).status().unwrap();
        assert!(status.success(), "copy template datadir");
        let port = free_port();
        let mut db = MariaDb { port, dir, child: None, extra: extra.iter().map(|s| s.to_string()).collect() };
        db.spawn();
        db
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let mut cmd = Command::new(which(&["mariadbd", "mysqld"]));
        cmd.arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--tmpdir={}", d.display()))
            .args([
                "--bind-address=127.0.0.1",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=32M",
                "--innodb-flush-log-at-trx-commit=2",
                "--max-connections=2000",
                "--max-allowed-packet=256M",
                "--local-infile=1",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
            ])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // The server dies with the thread that started it, even if the test process is
        // killed before Drop runs.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().expect("start mariadbd"));
        self.wait_ready();
    }

    /// Stops the server abruptly (SIGKILL), keeping its datadir.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a stopped server again on the same port and datadir.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let out = Command::new(which(&["mariadb", "mysql"]))
                .args(["-h127.0.0.1", "-uroot", "-N", "-e", "SELECT 1"])
                .arg(format!("-P{}", self.port))
                .output()
                .unwrap();
            if out.status.success() {
                return;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default();
                panic!("mariadbd on port {} did not start: {log}", self.port);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// host:port.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs SQL as root directly on the server (not through shoal); returns stdout.
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new(which(&["mariadb", "mysql"]))
            .args(["-h127.0.0.1", "-uroot", "-N", "-B", "-e", sql])
            .arg(format!("-P{}", self.port))
            .output()
            .unwrap();
        assert!(out.status.success(), "direct SQL failed: {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A primary and replicas with native GTID replication.
pub struct Replicated {
    /// The writable server.
    pub primary: MariaDb,
    /// Read-only replicas replicating from `primary`.
    pub replicas: Vec<MariaDb>,
}

impl Replicated {
    /// Starts a primary and `n` replicas, replication running and caught up.
    pub fn start(n: usize) -> Replicated {
        let primary =
            MariaDb::start(&["--server-id=1", "--log-bin=mariadb-bin", "--binlog-format=ROW", "--gtid-strict-mode=1"]);
        primary.sql("CREATE USER 'repl'@'%' IDENTIFIED BY 'replpw'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';");
        let replicas = (0..n)
            .map(|i| {
                let id = format!("--server-id={}", i + 2);
                let r = MariaDb::start(&[
                    &id,
                    "--log-bin=mariadb-bin",
                    "--read-only=1",
                    "--gtid-strict-mode=1",
                    "--log-slave-updates=1",
                ]);
                r.sql(&format!(
                    "CHANGE MASTER TO master_host='127.0.0.1', master_port={}, master_user='repl', \
                     master_password='replpw', master_use_gtid=slave_pos, master_connect_retry=1; START SLAVE;",
                    primary.port
                ));
                r
            })
            .collect();
        let set = Replicated { primary, replicas };
        set.wait_caught_up();
        set
    }

    /// Waits until every running replica has applied everything the primary has.
    pub fn wait_caught_up(&self) {
        let pos = self.primary.sql("SELECT @@gtid_binlog_pos").trim().to_string();
        for r in &self.replicas {
            let out = r.sql(&format!("SELECT MASTER_GTID_WAIT('{pos}', 30)"));
            assert_eq!(out.trim(), "0", "replica on port {} did not catch up to {pos}", r.port);
        }
    }
}

/// The process-wide server: started by a keeper thread that outlives every test.
pub fn shared() -> &'static MariaDb {
    static SHARED: OnceLock<&'static MariaDb> = OnceLock::new();
    SHARED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let db: &'static MariaDb = Box::leak(Box::new(MariaDb::start(&[])));
            tx.send(db).unwrap();
            // Park forever: the server's death signal is tied to this thread.
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("shared mariadbd")
    })
}

/// A database and an account of its own on a server, so tests can share one server.
pub struct Scratch {
    /// Database name.
    pub db: String,
    /// Account name (password [`Scratch::PASSWORD`]).
    pub user: String,
}

impl Scratch {
    /// The password of every scratch account.
    pub const PASSWORD: &'static str = "s3cret-pw";

    /// Creates `db_<tag>_<n>` and `u_<tag>_<n>` with all privileges.
    pub fn new(server: &MariaDb, tag: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let db = format!("db_{tag}_{n}");
        let user = format!("u_{tag}_{n}");
        server.sql(&format!(
            "CREATE DATABASE {db}; CREATE USER '{user}'@'%' IDENTIFIED BY '{p}'; \
             GRANT ALL ON *.* TO '{user}'@'%'; FLUSH PRIVILEGES;",
            p = Self::PASSWORD
        ));
        Scratch { db, user }
    }
}

/// A shoal proxy on its own runtime.
pub struct Shoal {
    /// host:port clients connect to.
    pub addr: std::net::SocketAddr,
    /// The proxy, for introspection.
    pub proxy: Arc<Proxy>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl Shoal {
    /// A proxy in front of `server` with default settings (service account: root).
    pub fn start(server: &MariaDb) -> Shoal {
        Self::start_with(server, |_| {})
    }

    /// Same, after `tweak` adjusted the config.
    pub fn start_with(server: &MariaDb, tweak: impl FnOnce(&mut Config)) -> Shoal {
        let mut config = Config::default();
        config.proxy.bind_address = "127.0.0.1:0".into();
        config.backends.primary = server.addr();
        config.backends.user = "root".into();
        tweak(&mut config);
        // Built on another thread: tests may call this from inside their own runtime.
        let (runtime, proxy, addr) = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            let (proxy, listener) = runtime.block_on(shoal::server::bind(&config)).expect("start shoal");
            let addr = listener.local_addr().unwrap();
            runtime.spawn(proxy.clone().serve(listener));
            (runtime, proxy, addr)
        })
        .join()
        .expect("start shoal");
        Shoal { addr, proxy, runtime: Mutex::new(Some(runtime)) }
    }

    /// The port clients use.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// mysql_async options for an account through this proxy.
    pub fn opts(&self, user: &str, password: &str, db: Option<&str>) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port())
            .user(Some(user))
            .pass(Some(password))
            .db_name(db)
            .prefer_socket(false)
            .into()
    }
}

impl Drop for Shoal {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.lock().unwrap().take() {
            rt.shutdown_background();
        }
    }
}

/// Runs the `mariadb` CLI against a port; returns (success, stdout, stderr).
pub fn mariadb_cli(
    port: u16,
    user: &str,
    password: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use std::io::Write;
    let mut cmd = Command::new(which(&["mariadb", "mysql"]));
    cmd.args(["-h127.0.0.1", &format!("-P{port}"), &format!("-u{user}"), &format!("-p{password}")])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A Raft node's settings for in-process cluster tests: fast heartbeats and elections,
/// its WAL under `dir/node-<id>`.
pub fn test_node_config(
    id: u64,
    addr: &str,
    dir: &std::path::Path,
    secret: &shoal::cluster::network::Secret,
) -> shoal::cluster::node::NodeConfig {
    shoal::cluster::node::NodeConfig {
        id,
        addr: addr.to_string(),
        advertise: addr.to_string(),
        wal_dir: dir.join(format!("node-{id}")),
        wal: shoal::wal::WalOptions::default(),
        auth: shoal::cluster::network::PeerAuth::plain(secret.clone()),
        heartbeat: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(300),
        election_timeout_max: Duration::from_millis(900),
        disable_auto_election: false,
        switchback: false,
        retention: Default::default(),
    }
}

/// Runs the `shoal` binary of this build with `args`, then `-c config`, logging at info to
/// `log` (stdout discarded, `SHOAL_CONFIG` not inherited).
pub fn spawn_shoal(args: &[&str], config: &Path, log: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["--log-level", "info"])
        .args(args)
        .arg("-c")
        .arg(config)
        .env_remove("SHOAL_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}
