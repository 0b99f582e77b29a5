//! Other client libraries through shoal: PyMySQL, mysql-connector-python (pure and C
//! extension), mysqlclient (its own test suite), node mysql2, and sysbench with
//! server-side prepared statements.

use std::path::Path;
use std::process::Command;

use crate::harness::{shared, Scratch, Shoal};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "client failed\nstdout: {stdout}\nstderr: {stderr}");
    stdout
}

fn checks_passed(out: &str) -> u32 {
    out.lines()
        .find_map(|l| l.split("checks passed: ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no check count in {out}"))
}

/// The checks of `python_clients.py` with `driver` against `port`; how many passed
/// (the script fails on the first that does not).
pub fn python_checks(driver: &str, port: u16, user: &str, password: &str, db: &str) -> u32 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("proxy-tests/clients/python_clients.py");
    let out = run(Command::new("python3").arg(script).args([driver, &port.to_string(), user, password, db]));
    checks_passed(&out)
}

/// The checks of `mysql2_test.js` against `port`; how many passed.
pub fn node_checks(port: u16, user: &str, password: &str, db: &str) -> u32 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("proxy-tests/node");
    let out =
        run(Command::new("node").current_dir(&dir).arg("mysql2_test.js").args([&port.to_string(), user, password, db]));
    checks_passed(&out)
}

/// What a sysbench run reported.
#[derive(Debug)]
pub struct Sysbench {
    /// `transactions:`.
    pub transactions: u64,
    /// `ignored errors:`.
    pub errors: u64,
    /// `reconnects:`.
    pub reconnects: u64,
}

/// sysbench `oltp_read_write` (prepared statements, one thread: deadlocks cannot
/// happen, so any error is shoal's) for `secs` against `port`, table prepared there.
pub fn sysbench_read_write(port: u16, user: &str, password: &str, db: &str, secs: u32) -> Sysbench {
    let common = |cmd: &mut Command| {
        cmd.args([
            "oltp_read_write",
            "--mysql-host=127.0.0.1",
            &format!("--mysql-port={port}"),
            &format!("--mysql-user={user}"),
            &format!("--mysql-password={password}"),
            &format!("--mysql-db={db}"),
            "--tables=1",
            "--table-size=2000",
        ]);
    };
    let mut prepare = Command::new("sysbench");
    common(&mut prepare);
    run(prepare.arg("prepare"));
    let mut bench = Command::new("sysbench");
    common(&mut bench);
    let out = run(bench.args(["--threads=1", &format!("--time={secs}"), "--db-ps-mode=auto", "run"]));
    let field = |name: &str| -> u64 {
        let line = out.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_else(|| panic!("{name} in {out}"));
        let rest = &line[line.find(name).unwrap() + name.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    Sysbench {
        transactions: field("transactions:"),
        errors: field("ignored errors:"),
        reconnects: field("reconnects:"),
    }
}

fn python(driver: &str) {
    let db = shared();
    let s = Scratch::new(db, "py");
    let shoal = Shoal::start(db);
    let passed = python_checks(driver, shoal.port(), &s.user, Scratch::PASSWORD, &s.db);
    assert!(passed >= 9, "{passed} checks");
}

#[test]
fn pymysql() {
    python("pymysql");
}

#[test]
fn mysql_connector_python_pure() {
    python("connector-pure");
}

#[test]
fn mysql_connector_python_c_extension() {
    python("connector-c");
}

#[test]
fn node_mysql2_query_and_execute() {
    let db = shared();
    let s = Scratch::new(db, "node");
    let shoal = Shoal::start(db);
    let passed = node_checks(shoal.port(), &s.user, Scratch::PASSWORD, &s.db);
    assert!(passed >= 26, "{passed} checks");
}

#[test]
fn sysbench_oltp_read_write_with_prepared_statements() {
    let db = shared();
    let s = Scratch::new(db, "sb");
    let shoal = Shoal::start_with(db, |c| c.limits.pool_connections_max = 4);
    let r = sysbench_read_write(shoal.port(), &s.user, Scratch::PASSWORD, &s.db, 5);
    assert!(r.transactions > 50, "{r:?}");
    assert_eq!((r.errors, r.reconnects), (0, 0), "{r:?}");
}

#[test]
fn caching_sha2_clients_are_switched_to_native_password() {
    let db = shared();
    let s = Scratch::new(db, "sha2");
    let shoal = Shoal::start(db);
    let script = format!(
        "import mysql.connector\n\
         c = mysql.connector.connect(host='127.0.0.1', port={}, user='{}', password='{}', database='{}', \
         auth_plugin='caching_sha2_password', use_pure=True)\n\
         cur = c.cursor(); cur.execute('SELECT CURRENT_USER()'); print('user', cur.fetchone()[0])\n",
        shoal.port(),
        s.user,
        Scratch::PASSWORD,
        s.db
    );
    let out = run(Command::new("python3").args(["-c", &script]));
    assert_eq!(out.trim(), format!("user {}@%", s.user));
}

/// Test ids pytest reports as passed (`-rA` summary lines).
fn pytest_passed(out: &str) -> std::collections::BTreeSet<String> {
    out.lines().filter_map(|l| l.strip_prefix("PASSED ")).map(|id| id.trim().to_string()).collect()
}

/// Runs mysqlclient's own suite (from its sdist, fetched by `setup.sh`) against `port`.
fn mysqlclient_suite(dir: &Path, port: u16, s: &Scratch, tag: &str) -> String {
    let cnf = std::env::temp_dir().join(format!("shoal-mysqlclient-{tag}-{}.cnf", std::process::id()));
    std::fs::write(
        &cnf,
        format!(
            "[MySQLdb-tests]\nhost = 127.0.0.1\nport = {port}\nuser = {}\npassword = {}\ndatabase = {}\ndefault-character-set = utf8mb4\n",
            s.user,
            Scratch::PASSWORD,
            s.db
        ),
    )
    .unwrap();
    let out = Command::new("python3")
        .args(["-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "tests"])
        .current_dir(dir)
        .env("TESTDB", &cnf)
        .output()
        .expect("run pytest");
    let _ = std::fs::remove_file(&cnf);
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// mysqlclient's own test suite passes through shoal exactly as it passes directly.
#[test]
fn mysqlclient_suite_passes_through_shoal_as_directly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("proxy-tests/clients/mysqlclient-2.2.7");
    assert!(dir.join("tests/configdb.py").exists(), "mysqlclient's sdist is missing: run `bash proxy-tests/setup.sh`");
    let db = shared();
    let direct_s = Scratch::new(db, "mcdirect");
    let direct_port: u16 = db.addr().rsplit_once(':').unwrap().1.parse().unwrap();
    let direct = mysqlclient_suite(&dir, direct_port, &direct_s, "direct");
    let passed_directly = pytest_passed(&direct);
    assert!(passed_directly.len() >= 100, "only {} tests pass directly:\n{direct}", passed_directly.len());
    let s = Scratch::new(db, "mcshoal");
    let shoal = Shoal::start(db);
    let through = mysqlclient_suite(&dir, shoal.port(), &s, "shoal");
    let passed_through = pytest_passed(&through);
    let lost: Vec<&String> = passed_directly.difference(&passed_through).collect();
    assert!(lost.is_empty(), "{} tests pass directly but not through shoal: {lost:?}\n{through}", lost.len());
}
