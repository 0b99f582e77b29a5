//! The operations face, as an operator sees it: the `shoal` binary's commands and exit
//! codes, configuration files, the HTTP API, `/metrics` moving with traffic, SIGHUP
//! reload and SIGTERM drain.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use shoal::admin::client;

use crate::harness::{free_port, mariadb_cli, shared, Scratch};
use crate::raw::Raw;

const BIN: &str = env!("CARGO_BIN_EXE_shoal");

fn shoal(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_remove("SHOAL_CONFIG").output().expect("run shoal")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A `shoal` process, killed on drop.
struct Proc {
    child: Child,
    log: PathBuf,
    api: String,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Proc {
    /// Runs `shoal proxy -c <dir>/shoal.toml` with `config` (ports are filled in).
    fn proxy(config: &str) -> Proc {
        let dir = tempfile::tempdir().unwrap();
        let (port, api_port) = (free_port(), free_port());
        let file = dir.path().join("shoal.toml");
        // A token file for configs that want one (`token_file = "@DIR@/token"`).
        std::fs::write(dir.path().join("token"), "t0ken\n").unwrap();
        let config = config.replace("@DIR@", &dir.path().display().to_string());
        // `config` may start with [api] fields: they land in the [api] table.
        let text = format!(
            "[proxy]\nbind_address = \"127.0.0.1:{port}\"\n[api]\nbind_address = \"127.0.0.1:{api_port}\"\n{config}"
        );
        std::fs::write(&file, text).unwrap();
        let log = dir.path().join("shoal.log");
        let child = crate::harness::spawn_shoal(&["proxy"], &file, &log);
        let mut p = Proc { child, log, api: format!("127.0.0.1:{api_port}"), port, _dir: dir };
        p.wait_api();
        p
    }

    fn file(&self) -> PathBuf {
        self._dir.path().join("shoal.toml")
    }

    fn dir(&self) -> &Path {
        self._dir.path()
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_api(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while client::get(&self.api, "/health", None, Duration::from_secs(1)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("shoal exited with {status}: {}", self.logs());
            }
            assert!(Instant::now() < deadline, "shoal API did not come up: {}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> client::Response {
        client::get(&self.api, path, token, Duration::from_secs(10)).unwrap()
    }

    fn signal(&self, sig: i32) {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "shoal did not exit within {limit:?}: {}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `/health` answers `code`.
    fn wait_health(&self, code: u16) -> client::Response {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.get("/health", None);
            if r.status == code {
                return r;
            }
            assert!(Instant::now() < deadline, "health stayed {} {}: {}", r.status, r.body, self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of one sample line (`name{labels}`) in a scrape, 0 when absent.
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

#[test]
fn version_help_and_exit_codes() {
    let out = shoal(&["version"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), format!("shoal {}", env!("CARGO_PKG_VERSION")));
    let out = shoal(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for cmd in ["init", "validate", "info", "proxy", "start", "status", "servers", "version", "Examples:"] {
        assert!(help.contains(cmd), "--help lacks {cmd}: {help}");
    }
    let out = shoal(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
    let out = shoal(&["servers", "--api", &format!("127.0.0.1:{}", free_port())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot reach the shoal API"), "{}", text(&out.stderr));
}

#[test]
fn validate_names_the_file_field_value_and_range() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[limits]\npool_connections_max = 0\n").unwrap();
    let out = shoal(&["validate", "-c", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        format!("shoal: {}: config field limits.pool_connections_max = 0: must be between 1 and 10000", bad.display())
    );
    std::fs::write(&bad, "[proxy]\nbind_address = 8007\n").unwrap();
    let out = shoal(&["validate", "-c", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("bind_address") && err.contains("line 2"), "{err}");
    let out = shoal(&["validate", "-c", dir.path().join("missing.toml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read config file"), "{}", text(&out.stderr));
    // Environment overrides are validated like the file.
    let ok = dir.path().join("ok.toml");
    std::fs::write(&ok, "").unwrap();
    let out = Command::new(BIN)
        .args(["validate", "-c", ok.to_str().unwrap()])
        .env("SHOAL_LIMITS__CHECKOUT_TIMEOUT_MS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("limits.checkout_timeout_ms = 0"), "{}", text(&out.stderr));
}

#[test]
fn wolfscale_file_validates_with_not_yet_in_effect_warnings() {
    let file = repo("config/wolfscale.toml");
    let out = shoal(&["validate", "-c", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("wolfscale.toml: ok"));
    let warnings = text(&out.stderr);
    for f in ["wal.batch_size", "cluster.election_timeout_ms", "database.database"] {
        assert!(warnings.contains(&format!("{f}: accepted, not yet in effect")), "{warnings}");
    }
    let out = shoal(&["info", "-c", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info = text(&out.stdout);
    assert!(info.contains("node-1") && info.contains("127.0.0.1:3306") && info.contains("0.0.0.0:8007"), "{info}");
    // The other examples load too.
    for f in ["config/shoal.toml", "config/node.toml"] {
        let out = shoal(&["validate", "-c", repo(f).to_str().unwrap()]);
        assert!(out.status.success(), "{f}: {}", text(&out.stderr));
    }
}

#[test]
fn init_writes_a_commented_file_that_validates() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shoal.toml");
    let f = file.to_str().unwrap();
    let out =
        shoal(&["init", "-o", f, "--node-id", "db1", "--backend", "127.0.0.1:3306", "--replica", "127.0.0.1:3307"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("# Unique node id"), "{written}");
    assert!(written.contains("id = \"db1\"") && written.contains("replicas = [\"127.0.0.1:3307\"]"), "{written}");
    let out = shoal(&["validate", "-c", f]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = shoal(&["init", "-o", f, "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("exists; pass --force"), "{}", text(&out.stderr));
    let out = shoal(&["init", "-o", f, "--yes", "--force"]);
    assert!(out.status.success());
}

#[test]
fn http_api_endpoints_and_metrics_move_with_traffic() {
    let db = shared();
    let s = Scratch::new(db, "ops_api");
    let down = format!("127.0.0.1:{}", free_port());
    let p = Proc::proxy(&format!(
        "token_file = \"@DIR@/token\"\n[node]\nid = \"n1\"\n[backends]\nprimary = \"{}\"\nreplicas = [\"{down}\"]\nuser = \"root\"\n",
        db.addr()
    ));
    let token = Some("t0ken");
    let health = p.wait_health(200);
    let h: serde_json::Value = serde_json::from_str(&health.body).unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["primary"]["address"], db.addr());
    assert_eq!(h["primary"]["writable"], true);

    // The token guards everything but /health.
    for path in ["/status", "/cluster", "/cluster/nodes", "/metrics"] {
        assert_eq!(p.get(path, None).status, 401, "{path}");
        assert_eq!(p.get(path, Some("wrong")).status, 401, "{path}");
        assert_eq!(p.get(path, token).status, 200, "{path}");
    }
    assert_eq!(p.get("/nope", token).status, 404);

    let status: serde_json::Value = serde_json::from_str(&p.get("/status", token).body).unwrap();
    assert_eq!(status["mode"], "proxy");
    assert_eq!(status["node_id"], "n1");
    assert_eq!(status["primary"], db.addr());
    assert_eq!(status["proxy_address"], format!("127.0.0.1:{}", p.port));
    let cluster: serde_json::Value = serde_json::from_str(&p.get("/cluster", token).body).unwrap();
    assert_eq!(cluster["leader_id"], "n1");
    assert_eq!(cluster["nodes_total"], 2);
    let nodes: serde_json::Value = serde_json::from_str(&p.get("/cluster/nodes", token).body).unwrap();
    let nodes = nodes["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["id"], "n1");
    assert_eq!(nodes[0]["role"], "primary");
    assert_eq!(nodes[0]["status"], "up");
    assert_eq!(nodes[1]["id"], "replica-1");
    assert_eq!(nodes[1]["status"], "down");
    assert_eq!(nodes[1]["address"], down);
    assert!(nodes[1].get("lag_ms").is_some());

    // `shoal servers` prints the table from the API.
    let token_file = p.dir().join("token");
    let out = shoal(&["servers", "--api", &p.api, "--token-file", token_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0].split('|').map(str::trim).collect::<Vec<_>>(), ["ID", "STATUS", "ROLE", "ADDRESS", "LAG"]);
    assert!(lines[2].starts_with("n1") && lines[2].contains("| up") && lines[2].contains(&db.addr()), "{table}");
    assert!(lines[3].starts_with("replica-1") && lines[3].contains("| down"), "{table}");
    let out = shoal(&["servers", "--api", &p.api]);
    assert_eq!(out.status.code(), Some(1), "no token");
    let out = shoal(&["status", "--api", &p.api, "--token-file", token_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("servers up:  1 of 2"), "{}", text(&out.stdout));

    // Metrics move with traffic.
    let before = p.get("/metrics", token).body;
    let (ok, _, err) = mariadb_cli(
        p.port,
        &s.user,
        Scratch::PASSWORD,
        &[
            "-D",
            &s.db,
            "-e",
            "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1); SELECT * FROM t; BEGIN; SELECT 1; COMMIT",
        ],
        None,
    );
    assert!(ok, "{err}");
    let (ok, _, _) = mariadb_cli(p.port, &s.user, Scratch::PASSWORD, &["-e", "SELEC 1"], None);
    assert!(!ok);
    let (ok, _, _) = mariadb_cli(p.port, &s.user, "wrong-password", &["-e", "SELECT 1"], None);
    assert!(!ok);
    let after = p.get("/metrics", token).body;
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert!(moved("shoal_client_connections_accepted_total") >= 2.0, "{after}");
    assert!(moved("shoal_statements_total{kind=\"Read\",route=\"primary\"}") >= 2.0, "{after}");
    assert!(moved("shoal_statements_total{kind=\"Write\",route=\"primary\"}") >= 1.0, "{after}");
    assert!(moved("shoal_statements_total{kind=\"Ddl\",route=\"primary\"}") >= 1.0, "{after}");
    assert!(moved("shoal_statement_duration_seconds_count{route=\"primary\"}") >= 5.0, "{after}");
    assert!(moved("shoal_session_pins_total{reason=\"transaction\"}") >= 1.0, "{after}");
    assert!(moved("shoal_errors_total{code=\"1064\"}") >= 1.0, "{after}");
    assert!(moved("shoal_errors_total{code=\"1045\"}") >= 1.0, "{after}");
    assert!(moved("shoal_client_received_bytes_total") > 50.0, "{after}");
    assert!(moved("shoal_client_sent_bytes_total") > 50.0, "{after}");
    assert!(moved("shoal_backend_pool_checkout_wait_seconds_count") >= 1.0, "{after}");
    assert!(sample(&after, "shoal_health_checks_total{result=\"failed\"}") >= 1.0, "{after}");
    assert!(sample(&after, &format!("shoal_backend_pool_connections{{backend=\"{}\"}}", db.addr())) >= 1.0, "{after}");
    assert_eq!(sample(&after, &format!("shoal_backend_up{{server=\"{}\",role=\"primary\"}}", db.addr())), 1.0);
    assert_eq!(sample(&after, &format!("shoal_backend_up{{server=\"{down}\",role=\"replica\"}}")), 0.0, "{after}");
    assert_eq!(sample(&after, &format!("shoal_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"))), 1.0);
    assert!(moved("shoal_client_logins_total{method=\"native\",result=\"ok\"}") >= 2.0, "{after}");
    assert!(moved("shoal_client_logins_total{method=\"native\",result=\"denied\"}") >= 1.0, "{after}");
    // The eight refused requests above.
    assert!(sample(&after, "shoal_api_unauthorized_total") >= 8.0, "{after}");
    // Every documented name that has a value by now is in the scrape (the
    // `shoal_cluster_*`, `shoal_capture_*`, `shoal_apply_*`, causal-wait and forwarding
    // series exist on cluster and capture nodes only; `proxy-tests/cluster.rs`, `capture_tail.rs`, `apply.rs`, `replication.rs`).
    for name in shoal::metrics::ALL {
        let elsewhere = [
            "shoal_cluster_",
            "shoal_capture_",
            "shoal_apply_",
            "shoal_unmanaged_",
            "shoal_causal_",
            "shoal_forwarded_",
            "shoal_failover_",
        ];
        if name != shoal::metrics::REPLICA_LAG && !elsewhere.iter().any(|p| name.starts_with(p)) {
            assert!(after.contains(name), "{name} missing from /metrics");
        }
    }

    // The token rotates with SIGHUP: the new one works, the old one is refused and counted.
    std::fs::write(&token_file, "n3w-t0ken\n").unwrap();
    p.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(20);
    while p.get("/status", token).status != 401 {
        assert!(Instant::now() < deadline, "the old token still works after SIGHUP: {}", p.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(p.get("/status", Some("n3w-t0ken")).status, 200);
    let refused = sample(&p.get("/metrics", Some("n3w-t0ken")).body, "shoal_api_unauthorized_total");
    assert!(refused >= 9.0, "the old token's refusal is counted: {refused}");
}

#[test]
fn health_is_503_naming_the_unreachable_primary() {
    let gone = format!("127.0.0.1:{}", free_port());
    let p = Proc::proxy(&format!("[backends]\nprimary = \"{gone}\"\n[routing]\nhealth_interval_ms = 200\n"));
    let r = p.wait_health(503);
    let h: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(h["status"], "unavailable");
    let reason = h["reason"].as_str().unwrap();
    assert!(reason.contains(&gone) && reason.contains("unreachable"), "{reason}");
    assert_eq!(h["primary"]["status"], "down");
    let out = shoal(&["servers", "--api", &p.api]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("| down"), "{}", text(&out.stdout));
    let out = shoal(&["status", "--api", &p.api]);
    assert_eq!(out.status.code(), Some(1), "status exits 1 when unhealthy");
}

#[tokio::test]
async fn sighup_reloads_users_and_backends_without_dropping_clients() {
    use mysql_async::prelude::*;
    let db = shared();
    let s = Scratch::new(db, "ops_hup");
    let config = |password: &str, replicas: &str| {
        format!(
            "[backends]\nprimary = \"{}\"\nreplicas = [{replicas}]\n[users.{}]\npassword = \"{password}\"\n",
            db.addr(),
            s.user
        )
    };
    let p = Proc::proxy(&config(Scratch::PASSWORD, ""));
    let api = p.api.clone();
    let opts = |pw: &str| {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(p.port)
            .user(Some(s.user.clone()))
            .pass(Some(pw.to_string()))
            .db_name(Some(s.db.clone()))
            .prefer_socket(false)
    };
    let mut held = mysql_async::Conn::new(opts(Scratch::PASSWORD)).await.unwrap();
    held.query_drop("CREATE TABLE t (id INT PRIMARY KEY)").await.unwrap();
    held.query_drop("BEGIN").await.unwrap();
    held.query_drop("INSERT INTO t VALUES (1)").await.unwrap();

    // New password on the server and in the file, one more replica; then SIGHUP.
    db.sql(&format!("ALTER USER '{}'@'%' IDENTIFIED BY 'n3w-pw'", s.user));
    let replica = format!("127.0.0.1:{}", free_port());
    let head = std::fs::read_to_string(p.file()).unwrap();
    let head = &head[..head.find("[backends]").unwrap()];
    // And a session limit for the account: the held client of the old generation counts.
    let limit = format!("[limits.user.{}]\nconnections_max = 2\n", s.user);
    std::fs::write(p.file(), format!("{head}{}{limit}", config("n3w-pw", &format!("\"{replica}\"")))).unwrap();
    p.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let st: serde_json::Value =
            serde_json::from_str(&client::get(&api, "/status", None, Duration::from_secs(5)).unwrap().body).unwrap();
        if st["reloads"] == 1 {
            assert_eq!(st["replicas"][0], replica.as_str());
            break;
        }
        assert!(Instant::now() < deadline, "no reload: {}", p.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The held client is still connected, inside its transaction.
    held.query_drop("INSERT INTO t VALUES (2)").await.unwrap();
    held.query_drop("COMMIT").await.unwrap();
    let n: Option<u64> = held.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(2));
    // New clients get the new accounts.
    let mut fresh = mysql_async::Conn::new(opts("n3w-pw")).await.expect("new password after reload");
    let id_new: Option<u64> = fresh.query_first("SELECT CONNECTION_ID()").await.unwrap();
    let id_old: Option<u64> = held.query_first("SELECT CONNECTION_ID()").await.unwrap();
    assert_ne!(id_new, id_old, "connection ids stay unique across generations");
    // The old generation's session and the new one's fill the account's two slots.
    let Err(e) = mysql_async::Conn::new(opts("n3w-pw")).await else { panic!("a third session of a limited account") };
    assert!(e.to_string().contains("1203") && e.to_string().contains("max_user_connections"), "{e}");
    let Err(e) = mysql_async::Conn::new(opts(Scratch::PASSWORD)).await else { panic!("old password accepted") };
    assert!(e.to_string().contains("1045") || e.to_string().contains("Access denied"), "{e}");
    let nodes: serde_json::Value =
        serde_json::from_str(&client::get(&api, "/cluster/nodes", None, Duration::from_secs(5)).unwrap().body).unwrap();
    assert_eq!(nodes["nodes"].as_array().unwrap().len(), 2);
    // A broken file is refused and the running configuration stays.
    std::fs::write(p.file(), format!("{head}[limits]\npool_connections_max = 0\n")).unwrap();
    p.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.logs().contains("reload failed") {
        assert!(Instant::now() < deadline, "{}", p.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(p.logs().contains("limits.pool_connections_max = 0"), "{}", p.logs());
    let m = client::get(&api, "/metrics", None, Duration::from_secs(5)).unwrap().body;
    assert_eq!(sample(&m, "shoal_config_reloads_total{result=\"failed\"}"), 1.0, "{m}");
    let one: Option<u64> = fresh.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    fresh.disconnect().await.unwrap();
    held.disconnect().await.unwrap();
    db.sql(&format!("ALTER USER '{}'@'%' IDENTIFIED BY '{}'", s.user, Scratch::PASSWORD));
}

/// Waits until `user` runs a `SELECT SLEEP` on the server (seen in its process list).
fn wait_sleeping(db: &crate::harness::MariaDb, user: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = db.sql(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{user}' AND INFO LIKE 'SELECT SLEEP%'"
        ));
        if n.trim() != "0" {
            return;
        }
        assert!(Instant::now() < deadline, "the statement never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_drains_running_statements_then_exits() {
    let db = shared();
    let s = Scratch::new(db, "ops_term");
    let mut p = Proc::proxy(&format!("[backends]\nprimary = \"{}\"\nuser = \"root\"\n", db.addr()));
    let port = p.port;
    let user = s.user.clone();
    let slow = std::thread::spawn(move || {
        mariadb_cli(port, &user, Scratch::PASSWORD, &["-N", "-e", "SELECT SLEEP(1.5), 'finished'"], None)
    });
    wait_sleeping(db, &s.user);
    assert!(sample(&p.get("/metrics", None).body, "shoal_statements_running") >= 1.0);
    let started = Instant::now();
    p.signal(libc::SIGTERM);
    // Draining: /health says so, the MySQL port stops accepting.
    let r = p.wait_health(503);
    assert!(r.body.contains("shutting down"), "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting while draining");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ok, out, err) = slow.join().unwrap();
    assert!(ok, "the running statement was cut: {err}");
    assert!(out.contains("finished"), "{out}");
    let status = p.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}: {}", p.logs());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(p.logs().contains("drained"), "{}", p.logs());
}

#[test]
fn a_read_counts_as_running_until_its_response_is_written() {
    // A pipe writes a plain client's response itself and hands what the socket does not
    // take to the session: until that is written the statement is running (shutdown
    // drain waits for it), not just until the server answered.
    let db = shared();
    let s = Scratch::new(db, "ops_lazy");
    let p = Proc::proxy(&format!("[backends]\nprimary = \"{}\"\nuser = \"root\"\n", db.addr()));
    let metric = |name: &str| sample(&p.get("/metrics", None).body, name);
    // The same capabilities, so the same pool and pipes.
    let mut busy = Raw::connect(p.port, &s.user, Scratch::PASSWORD, &s.db);
    let mut lazy = Raw::connect(p.port, &s.user, Scratch::PASSWORD, &s.db);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric("shoal_pipe_statements_total") < 1.0 {
        assert_eq!(busy.value("SELECT 1"), b"1");
        assert!(Instant::now() < deadline, "no read went through a pipe");
    }
    // Far more response bytes than the sockets hold; the lazy client reads nothing yet.
    const READS: usize = 1000;
    for i in 0..READS {
        lazy.command(format!("\x03SELECT {i}, REPEAT('x', 10000)").as_bytes());
    }
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..5 {
        assert_eq!(metric("shoal_statements_running"), 1.0, "the read waiting for its client is running");
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in 0..READS {
        assert_eq!(&lazy.read()[..], &[2], "read {i}");
        lazy.until_eof();
        assert_eq!(lazy.until_eof().0.len(), 1, "read {i}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric("shoal_statements_running") != 0.0 {
        assert!(Instant::now() < deadline, "statements still running after every answer was read");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn drain_timeout_bounds_the_wait() {
    let db = shared();
    let s = Scratch::new(db, "ops_drain");
    let mut p = Proc::proxy(&format!(
        "[backends]\nprimary = \"{}\"\n[limits]\nshutdown_drain_timeout_ms = 300\n[users.{}]\npassword = \"{}\"\n",
        db.addr(),
        s.user,
        Scratch::PASSWORD
    ));
    let port = p.port;
    let user = s.user.clone();
    let slow =
        std::thread::spawn(move || mariadb_cli(port, &user, Scratch::PASSWORD, &["-e", "SELECT SLEEP(10)"], None));
    wait_sleeping(db, &s.user);
    let started = Instant::now();
    p.signal(libc::SIGTERM);
    let status = p.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
    assert!(p.logs().contains("drain timeout"), "{}", p.logs());
    let (ok, _, _) = slow.join().unwrap();
    assert!(!ok, "the client sees its connection closed");
}

#[test]
fn start_runs_a_node_from_a_wolfscale_layout_file() {
    let db = shared();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.toml");
    let (port, api_port) = (free_port(), free_port());
    std::fs::write(
        &file,
        format!(
            "[node]\nid = \"db1\"\ndata_dir = \"/var/lib/shoal\"\n[database]\nhost = \"localhost\"\nport = {}\n\
             user = \"root\"\npassword = \"\"\n[cluster]\npeers = [\"10.0.0.2:7654\"]\n\
             [api]\nbind_address = \"127.0.0.1:{api_port}\"\n[proxy]\nbind_address = \"127.0.0.1:{port}\"\n",
            db.port
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["--log-format", "json", "start", "--bootstrap", "-c"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let api = format!("127.0.0.1:{api_port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        match client::get(&api, "/health", None, Duration::from_secs(1)) {
            Ok(r) if r.status == 200 => break r,
            _ => {
                assert!(Instant::now() < deadline, "node did not become healthy");
                assert!(child.try_wait().unwrap().is_none(), "shoal start exited");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert!(health.body.contains("\"id\":\"db1\""), "{}", health.body);
    let status: serde_json::Value =
        serde_json::from_str(&client::get(&api, "/status", None, Duration::from_secs(5)).unwrap().body).unwrap();
    assert_eq!(status["mode"], "node");
    assert_eq!(status["primary"], db.addr());
    let cluster: serde_json::Value =
        serde_json::from_str(&client::get(&api, "/cluster", None, Duration::from_secs(5)).unwrap().body).unwrap();
    assert_eq!(cluster["peers"][0], "10.0.0.2:7654");
    let (ok, out, err) = mariadb_cli(port, "root", "", &["-N", "-e", "SELECT 6*7"], None);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "42");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", out.status);
    // --log-format json: one JSON object per line.
    let logs = text(&out.stderr);
    let ready = logs.lines().find(|l| l.contains("shoal ready")).unwrap_or_else(|| panic!("{logs}"));
    let v: serde_json::Value = serde_json::from_str(ready).unwrap();
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["mode"], "node");
}

#[test]
fn replicas_show_lag_and_reads_are_counted_on_the_replica_route() {
    let set = crate::harness::Replicated::start(1);
    let s = Scratch::new(&set.primary, "ops_repl");
    set.wait_caught_up();
    let replica = set.replicas[0].addr();
    let p = Proc::proxy(&format!(
        "[backends]\nprimary = \"{}\"\nreplicas = [\"{replica}\"]\nuser = \"root\"\n[routing]\nhealth_interval_ms = 100\n",
        set.primary.addr()
    ));
    p.wait_health(200);
    // Wait until the replica's lag is known (the router's first checks).
    let deadline = Instant::now() + Duration::from_secs(20);
    let nodes = loop {
        let body = p.get("/cluster/nodes", None).body;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["nodes"][1]["lag_ms"].is_u64() {
            break v;
        }
        assert!(Instant::now() < deadline, "replica lag never known: {body}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(nodes["nodes"][1]["role"], "replica");
    assert_eq!(nodes["nodes"][1]["status"], "up");
    assert_eq!(nodes["nodes"][0]["writable"], true);
    let out = shoal(&["servers", "--api", &p.api]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.lines().any(|l| l.starts_with("replica-1") && l.ends_with(" ms")), "{table}");

    let before = p.get("/metrics", None).body;
    let (ok, _, err) =
        mariadb_cli(p.port, &s.user, Scratch::PASSWORD, &["-D", &s.db, "-e", "SELECT 1; SELECT 2; SELECT 3"], None);
    assert!(ok, "{err}");
    let after = p.get("/metrics", None).body;
    let series = "shoal_statements_total{kind=\"Read\",route=\"replica\"}";
    assert!(sample(&after, series) - sample(&before, series) >= 3.0, "{after}");
    assert!(after.contains(&format!("shoal_replica_lag_seconds{{server=\"{replica}\"}}")), "{after}");
    assert_eq!(sample(&after, &format!("shoal_backend_up{{server=\"{replica}\",role=\"replica\"}}")), 1.0);
}

#[test]
fn wal_cli_inspects_and_verifies_a_log() {
    use shoal::wal::{NewRecord, Wal, WalOptions};
    let dir = tempfile::tempdir().unwrap();
    {
        let opts = WalOptions::default();
        let window = opts.torn_window_bytes();
        let (wal, _) = Wal::open(dir.path(), opts).unwrap();
        let recs = (0..5).map(|i| NewRecord::new(1, 0, bytes::Bytes::from(format!("record {i}")))).collect();
        let lsns = wal.append(recs).wait().unwrap();
        assert_eq!(lsns.end - lsns.start, 5);
        // Enough later batches that the first records lie outside the window a crash can
        // tear (damage there is corruption, not a torn tail).
        let mut written = 0;
        while written <= window {
            // Incompressible, so LZ4 leaves it at full size.
            let payload = shoal::wal::testkit::incompressible(256 * 1024, 0x9E37_79B9_7F4A_7C15 ^ written);
            written += payload.len() as u64;
            wal.append(vec![NewRecord::new(1, 0, bytes::Bytes::from(payload))]).wait().unwrap();
        }
        wal.close().unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let out = std::process::Command::new(BIN).args(["wal", "verify", "--dir", d]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new(BIN)
        .args(["wal", "dump", "--dir", d, "--from", "3", "--limit", "2"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("record 2") || text.contains("record 3"), "{text}");
    // A flipped byte in the middle of the log is reported, with a non-zero exit.
    let seg = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .expect("a segment file");
    let mut bytes = std::fs::read(&seg).unwrap();
    // Inside the first record's payload: its checksum fails while valid records follow,
    // which is corruption, not a torn tail.
    let mid = shoal::wal::SEGMENT_HEADER_BYTES as usize + shoal::wal::RECORD_HEADER_BYTES + 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&seg, bytes).unwrap();
    let out = std::process::Command::new(BIN).args(["wal", "verify", "--dir", d]).output().unwrap();
    assert!(
        !out.status.success(),
        "verify must fail on a corrupt log: {} {} (segment {} bytes, flipped at {mid})",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::metadata(&seg).unwrap().len()
    );
}

/// `shoal proxy` with `[capture] mode = "local"`: writes through it are captured into the
/// WAL under `[node] data_dir`, and that WAL applied to another server gives the same data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_with_local_capture_commits_through_its_wal() {
    let leader = crate::harness::MariaDb::start(&[
        "--server-id=1",
        "--log-bin=mariadb-bin",
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
    ]);
    let s = Scratch::new(&leader, "cap");
    let p = Proc::proxy(&format!(
        "[backends]\nprimary = \"{}\"\nuser = \"root\"\n[node]\ndata_dir = \"@DIR@/data\"\n\
         [capture]\nmode = \"local\"\n[binlog]\nserver_id = 9003\n",
        leader.addr()
    ));
    let script = "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, u CHAR(36), at DATETIME(6)); \
                  INSERT INTO t (u, at) VALUES (UUID(), NOW(6)), (UUID(), NOW(6)); \
                  BEGIN; UPDATE t SET u = UUID() WHERE id = 1; INSERT INTO t (u) VALUES (RAND()); COMMIT; \
                  BEGIN; INSERT INTO t (u) VALUES ('gone'); ROLLBACK; SELECT COUNT(*) FROM t";
    let (ok, out, err) = mariadb_cli(p.port, &s.user, Scratch::PASSWORD, &["-D", &s.db, "-N", "-e", script], None);
    assert!(ok, "{err} {}", p.logs());
    assert_eq!(out.trim(), "3");
    let scrape = p.get("/metrics", None).body;
    assert_eq!(sample(&scrape, "shoal_capture_transactions_total{outcome=\"committed\"}"), 2.0, "{scrape}");
    assert_eq!(sample(&scrape, "shoal_capture_transactions_total{outcome=\"rolled_back\"}"), 1.0, "{scrape}");
    assert_eq!(sample(&scrape, "shoal_capture_entries_total{kind=\"statement\"}"), 1.0, "{scrape}");
    let wal_dir = p.dir().join("data").join(shoal::server::CAPTURE_WAL_DIR);
    // kill -9: what was acknowledged is in the WAL (the directory lives as long as `p`).
    let mut p = p;
    p.signal(libc::SIGKILL);
    p.wait_exit(Duration::from_secs(10));
    let (wal, _) = shoal::wal::Wal::open(&wal_dir, shoal::wal::WalOptions::default()).unwrap();
    let follower = crate::harness::MariaDb::start(&["--server-id=2"]);
    follower.sql(&format!("CREATE DATABASE {}", s.db));
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(follower.port)
        .user(Some("root"))
        .prefer_socket(false);
    let mut applier = shoal::apply::Applier::connect(opts).await.unwrap();
    applier.prepare().await.unwrap();
    assert_eq!(shoal::apply::catch_up(&mut applier, &wal, wal.last_lsn()).await.unwrap(), 3);
    let sum = format!("CHECKSUM TABLE {}.t", s.db);
    assert_eq!(follower.sql(&sum), leader.sql(&sum));
}

/// SIGHUP builds a new generation with the re-read `[backends] tls`: a server that
/// requires secure transport refuses logins while shoal runs `disabled`, and serves them
/// over TLS after the file says `verify_identity` and shoal reloads.
#[tokio::test]
async fn sighup_turns_backend_tls_on() {
    use mysql_async::prelude::*;
    let pki = crate::backend_tls::Pki::new();
    let (db, s) = crate::backend_tls::tls_server(&pki, &pki.local);
    let config = |tls: &str| {
        format!(
            "[backends]\nprimary = \"{}\"\n{tls}\n[users.{}]\npassword = \"{}\"\n",
            db.addr(),
            s.user,
            Scratch::PASSWORD
        )
    };
    let p = Proc::proxy(&config(""));
    let opts = || {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(p.port)
            .user(Some(s.user.clone()))
            .pass(Some(Scratch::PASSWORD))
            .db_name(Some(s.db.clone()))
            .prefer_socket(false)
    };
    let cipher = || async {
        let mut c = mysql_async::Conn::new(opts()).await?;
        let row: Option<(String, String)> = c.query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'").await?;
        c.disconnect().await?;
        Ok::<_, mysql_async::Error>(row.map(|r| r.1).unwrap_or_default())
    };
    let e = cipher().await.expect_err("plain backend login refused").to_string();
    assert!(e.contains("this login ran without TLS"), "{e}");
    let head = std::fs::read_to_string(p.file()).unwrap();
    let head = &head[..head.find("[backends]").unwrap()];
    let tls = format!("tls = \"verify_identity\"\ntls_ca_file = \"{}\"", pki.ca.display());
    std::fs::write(p.file(), format!("{head}{}", config(&tls))).unwrap();
    p.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let st: serde_json::Value =
            serde_json::from_str(&client::get(&p.api, "/status", None, Duration::from_secs(5)).unwrap().body).unwrap();
        if st["reloads"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no reload: {}", p.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cipher = cipher().await.expect("served over TLS after the reload");
    assert!(!cipher.is_empty(), "no cipher on the backend session");
}
