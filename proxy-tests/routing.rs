//! Read/write split against a real primary with two GTID replicas: reads on replicas,
//! writes and transactions on the primary, read-your-writes, replicas leaving and
//! rejoining the rotation, and a clear error for writes while the primary is down.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::Conn;

use crate::harness::{Replicated, Scratch, Shoal};

fn shoal_for(set: &Replicated) -> Shoal {
    let replicas: Vec<String> = set.replicas.iter().map(|r| r.addr()).collect();
    Shoal::start_with(&set.primary, move |c| {
        c.backends.replicas = replicas;
        c.routing.health_interval_ms = 100;
        c.routing.health_timeout_ms = 500;
        c.routing.failures_before_down = 2;
        c.routing.successes_before_up = 2;
        c.routing.causal_wait_ms = 2000;
    })
}

async fn port_of(c: &mut Conn, sql: &str) -> u16 {
    c.query_first(sql).await.unwrap().unwrap()
}

#[tokio::test]
async fn reads_on_replicas_writes_and_transactions_on_primary() {
    let set = Replicated::start(2);
    let s = Scratch::new(&set.primary, "split");
    set.wait_caught_up();
    let shoal = shoal_for(&set);
    let mut c = Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await.unwrap();
    let replica_ports: Vec<u16> = set.replicas.iter().map(|r| r.port).collect();
    for _ in 0..5 {
        let p = port_of(&mut c, "SELECT @@port").await;
        assert!(replica_ports.contains(&p), "read went to {p}, replicas are {replica_ports:?}");
    }
    // Locking reads, hinted reads and transactions go to the primary.
    assert_eq!(port_of(&mut c, "SELECT @@port FOR UPDATE").await, set.primary.port);
    assert_eq!(port_of(&mut c, "SELECT /* shoal:leader */ @@port").await, set.primary.port);
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v INT)").await.unwrap();
    c.query_drop("BEGIN").await.unwrap();
    assert_eq!(port_of(&mut c, "SELECT @@port").await, set.primary.port, "a transaction's reads stay on the primary");
    c.query_drop("INSERT INTO t VALUES (1, 1)").await.unwrap();
    let n: i64 = c.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
    assert_eq!(n, 1, "the transaction reads its own uncommitted row");
    c.query_drop("COMMIT").await.unwrap();
    // A read-only transaction may run on a replica, and stays there.
    c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
    let first = port_of(&mut c, "SELECT @@port").await;
    assert!(replica_ports.contains(&first));
    assert_eq!(port_of(&mut c, "SELECT @@port").await, first);
    c.query_drop("COMMIT").await.unwrap();
    // Writes were applied on the primary (and replicated).
    let direct = set.primary.sql(&format!("SELECT COUNT(*) FROM {}.t", s.db));
    assert_eq!(direct.trim(), "1");
    // Prepared statements route too: a prepared read on a replica.
    let p: u16 = c.exec_first("SELECT @@port + ?", (0,)).await.unwrap().unwrap();
    assert!(replica_ports.contains(&p));
    c.disconnect().await.unwrap();
}

#[tokio::test]
async fn session_reads_its_own_writes_even_with_a_stalled_replica() {
    let set = Replicated::start(2);
    let s = Scratch::new(&set.primary, "ryw");
    set.primary.sql(&format!("CREATE TABLE {}.t (id INT PRIMARY KEY, v INT)", s.db));
    set.wait_caught_up();
    // One replica stops applying: it still answers, but falls behind.
    set.replicas[1].sql("STOP SLAVE SQL_THREAD");
    let shoal = shoal_for(&set);
    let mut c = Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await.unwrap();
    for i in 0..30 {
        c.query_drop(format!("INSERT INTO t VALUES ({i}, {i})")).await.unwrap();
        let n: i64 = c.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
        assert_eq!(n, i + 1, "read after write {i} missed it");
        c.exec_drop("UPDATE t SET v = v + 1 WHERE id = ?", (i,)).await.unwrap();
        let v: i64 = c.exec_first("SELECT v FROM t WHERE id = ?", (i,)).await.unwrap().unwrap();
        assert_eq!(v, i + 1, "prepared read after prepared write {i} missed it");
    }
    // The stalled replica really is behind: its data is what a stale read would see.
    let stale = set.replicas[1].sql(&format!("SELECT COUNT(*) FROM {}.t", s.db));
    assert_eq!(stale.trim(), "0");
    set.replicas[1].sql("START SLAVE SQL_THREAD");
    c.disconnect().await.unwrap();
}

#[tokio::test]
async fn replica_leaves_rotation_and_comes_back() {
    let mut set = Replicated::start(2);
    let s = Scratch::new(&set.primary, "rot");
    set.wait_caught_up();
    let shoal = shoal_for(&set);
    let mut c = Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await.unwrap();
    let (p1, p2) = (set.replicas[0].port, set.replicas[1].port);
    set.replicas[0].stop();
    // Within a few health intervals every read lands on the remaining replica, and no
    // read fails meanwhile (a refused replica falls back to the primary at once).
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut settled = 0;
    while settled < 10 {
        let p = port_of(&mut c, "SELECT @@port").await;
        assert_ne!(p, p1, "read routed to a stopped replica");
        settled = if p == p2 { settled + 1 } else { 0 };
        assert!(Instant::now() < deadline, "reads did not settle on the live replica");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    set.replicas[0].restart();
    set.replicas[0].sql("START SLAVE");
    set.wait_caught_up();
    let deadline = Instant::now() + Duration::from_secs(10);
    // With both replicas idle, the least-loaded choice ties and takes the first one:
    // once p1 is back, reads land on it again.
    loop {
        let p = port_of(&mut c, "SELECT @@port").await;
        if p == p1 {
            break;
        }
        assert!(Instant::now() < deadline, "restarted replica never came back into rotation");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.disconnect().await.unwrap();
}

#[tokio::test]
async fn primary_down_writes_fail_clearly_reads_continue() {
    let mut set = Replicated::start(2);
    let s = Scratch::new(&set.primary, "pdown");
    set.primary.sql(&format!("CREATE TABLE {}.t (id INT PRIMARY KEY); INSERT INTO {}.t VALUES (1)", s.db, s.db));
    set.wait_caught_up();
    let shoal = shoal_for(&set);
    let mut c = Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await.unwrap();
    let primary_addr = set.primary.addr();
    set.primary.stop();
    // Every write fails from the start (connection refused); once the health checker has
    // seen the primary fail twice (a few hundred ms), the error names it as down.
    let deadline = Instant::now() + Duration::from_secs(10);
    let e = loop {
        let e = c.query_drop("INSERT INTO t VALUES (2)").await.unwrap_err().to_string();
        if e.contains("down") {
            break e;
        }
        assert!(Instant::now() < deadline, "writes never reported the primary as down: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(e.contains("primary") && e.contains(&primary_addr), "{e}");
    let n: i64 = c.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
    assert_eq!(n, 1, "reads keep working on replicas");
    // New clients can still log in and read.
    let mut d = Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await.unwrap();
    let n: i64 = d.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
    assert_eq!(n, 1);
    d.disconnect().await.unwrap();
    c.disconnect().await.unwrap();
}

/// Roles, not positions: when whoever owns the topology makes another server the leader
/// (here: the table is changed at run time, as a failover would), writes follow at once,
/// on connections that were idle meanwhile too.
#[tokio::test]
async fn writes_follow_the_leader_role_when_it_moves() {
    use shoal::route::Role;
    let set = Replicated::start(1);
    let s = Scratch::new(&set.primary, "roles");
    set.primary.sql(&format!("CREATE TABLE {}.t (id INT PRIMARY KEY, at INT)", s.db));
    set.wait_caught_up();
    let shoal = shoal_for(&set);
    let mut c = Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await.unwrap();
    let old = set.primary.port;
    let new = set.replicas[0].port;
    assert_eq!(port_of(&mut c, "SELECT /* shoal:leader */ @@port").await, old);
    c.query_drop("INSERT INTO t VALUES (1, @@port)").await.unwrap();
    set.wait_caught_up();
    // The replica stops replicating and becomes the leader; the old primary follows.
    set.replicas[0].sql("STOP SLAVE; SET GLOBAL read_only = 0");
    shoal.proxy.routing.rcu(|t| {
        let mut t = (**t).clone();
        for sv in &mut t.servers {
            sv.role = if sv.addr.ends_with(&format!(":{new}")) { Role::Leader } else { Role::Follower };
        }
        t.version += 1;
        t
    });
    assert_eq!(shoal.proxy.routing.load().leader().map(|l| l.addr.to_string()), Some(format!("127.0.0.1:{new}")));
    // The idle client's next write, a locking read and a transaction go to the new leader.
    c.query_drop("INSERT INTO t VALUES (2, @@port)").await.unwrap();
    assert_eq!(port_of(&mut c, "SELECT /* shoal:leader */ @@port").await, new);
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO t VALUES (3, @@port)").await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    // A new client too.
    let mut d = Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await.unwrap();
    d.query_drop("INSERT INTO t VALUES (4, @@port)").await.unwrap();
    let on_new = set.replicas[0].sql(&format!("SELECT GROUP_CONCAT(id, ':', at ORDER BY id) FROM {}.t", s.db));
    assert_eq!(on_new.trim(), format!("1:{old},2:{new},3:{new},4:{new}"));
    let on_old = set.primary.sql(&format!("SELECT GROUP_CONCAT(id ORDER BY id) FROM {}.t", s.db));
    assert_eq!(on_old.trim(), "1", "nothing was written to the old primary after the move");
    // The health checker keeps the roles it finds in the table.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(shoal.proxy.routing.load().leader().map(|l| l.addr.to_string()), Some(format!("127.0.0.1:{new}")));
    c.disconnect().await.unwrap();
    d.disconnect().await.unwrap();
}
