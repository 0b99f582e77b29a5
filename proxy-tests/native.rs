//! mysql_async (text and binary protocol) through shoal: results, multiplexing, session
//! state, transactions, prepared statements, multi-results, large packets, KILL.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};

use crate::harness::{shared, MariaDb, Scratch, Shoal};

async fn connect(shoal: &Shoal, s: &Scratch) -> Conn {
    Conn::new(shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db))).await.expect("connect through shoal")
}

/// Backend connections the account holds right now, seen by the server itself.
fn backend_connections(db: &MariaDb, user: &str) -> usize {
    db.sql(&format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{user}'"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn text_and_binary_results_match_direct() {
    let db = shared();
    let s = Scratch::new(db, "types");
    let shoal = Shoal::start(db);
    let mut c = connect(&shoal, &s).await;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, d DECIMAL(10,2), f DOUBLE, s VARCHAR(20), b BLOB, dt DATETIME(6), n INT NULL)").await.unwrap();
    c.exec_drop(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)",
        (1, "12.50", 2.5f64, "héllo", vec![0u8, 255, 10], "2024-02-29 12:34:56.789", None::<i32>),
    )
    .await
    .unwrap();
    let text: Vec<Row> = c.query("SELECT * FROM t").await.unwrap();
    let binary: Vec<Row> = c.exec("SELECT * FROM t WHERE id = ?", (1,)).await.unwrap();
    let mut direct = Conn::new(
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(db.port)
            .user(Some("root"))
            .db_name(Some(&s.db)),
    )
    .await
    .unwrap();
    let direct_text: Vec<Row> = direct.query("SELECT * FROM t").await.unwrap();
    let direct_binary: Vec<Row> = direct.exec("SELECT * FROM t WHERE id = ?", (1,)).await.unwrap();
    let values = |rows: &Vec<Row>| rows.iter().map(|r| r.clone().unwrap()).collect::<Vec<Vec<Value>>>();
    assert_eq!(values(&text), values(&direct_text));
    assert_eq!(values(&binary), values(&direct_binary));
    assert_eq!(values(&text)[0][3], Value::Bytes("héllo".as_bytes().to_vec()));
    assert_eq!(values(&text)[0][6], Value::NULL);
    direct.disconnect().await.unwrap();
    c.disconnect().await.unwrap();
}

#[tokio::test]
async fn many_clients_share_few_backend_connections() {
    let db = shared();
    let s = Scratch::new(db, "mux");
    let shoal = Shoal::start_with(db, |c| c.limits.pool_connections_max = 3);
    let mut clients = Vec::new();
    for _ in 0..40 {
        clients.push(connect(&shoal, &s).await);
    }
    let mut tasks = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for j in 0..20 {
                let v: i64 = c.query_first(format!("SELECT {i} * 1000 + {j}")).await.unwrap().unwrap();
                assert_eq!(v, (i * 1000 + j) as i64);
            }
            c
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.unwrap());
    }
    let held = backend_connections(db, &s.user);
    assert!(held <= 3, "40 clients must share at most 3 backend connections, server shows {held}");
    assert!(held >= 1);
    for c in clients {
        c.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn session_variables_follow_each_client_across_shared_connections() {
    let db = shared();
    let s = Scratch::new(db, "vars");
    // One backend connection: every client's state must be replayed onto it.
    let shoal = Shoal::start_with(db, |c| c.limits.pool_connections_max = 1);
    let mut a = connect(&shoal, &s).await;
    let mut b = connect(&shoal, &s).await;
    a.query_drop("SET time_zone = '+05:00', sql_mode = 'ANSI_QUOTES'").await.unwrap();
    b.query_drop("SET NAMES latin1").await.unwrap();
    b.query_drop("SET SESSION time_zone = '-03:00'").await.unwrap();
    for _ in 0..3 {
        let (tz, mode): (String, String) = a.query_first("SELECT @@time_zone, @@sql_mode").await.unwrap().unwrap();
        assert_eq!((tz.as_str(), mode.as_str()), ("+05:00", "ANSI_QUOTES"));
        let (tz, cs): (String, String) =
            b.query_first("SELECT @@time_zone, @@character_set_client").await.unwrap().unwrap();
        assert_eq!((tz.as_str(), cs.as_str()), ("-03:00", "latin1"));
        let mode: String = b.query_first("SELECT @@sql_mode").await.unwrap().unwrap();
        assert_ne!(mode, "ANSI_QUOTES", "a's sql_mode leaked into b");
    }
    // Schema changes follow too.
    db.sql(&format!("CREATE DATABASE {}_other", s.db));
    a.query_drop(format!("USE {}_other", s.db)).await.unwrap();
    let (da, dbb): (String, String) = (
        a.query_first("SELECT DATABASE()").await.unwrap().unwrap(),
        b.query_first("SELECT DATABASE()").await.unwrap().unwrap(),
    );
    assert_eq!(da, format!("{}_other", s.db));
    assert_eq!(dbb, s.db);
    a.disconnect().await.unwrap();
    b.disconnect().await.unwrap();
}

#[tokio::test]
async fn transactions_stay_on_their_connection_and_isolate() {
    let db = shared();
    let s = Scratch::new(db, "txn");
    let shoal = Shoal::start_with(db, |c| c.limits.pool_connections_max = 2);
    let mut a = connect(&shoal, &s).await;
    let mut b = connect(&shoal, &s).await;
    a.query_drop("CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB").await.unwrap();
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    for _ in 0..5 {
        // b's statements run on the other connection and must not see a's row...
        let n: i64 = b.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
        assert_eq!(n, 0);
        // ...while a keeps reading its own uncommitted write.
        let n: i64 = a.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
        assert_eq!(n, 1);
    }
    a.query_drop("ROLLBACK").await.unwrap();
    let n: i64 = a.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
    assert_eq!(n, 0);
    // autocommit=0 opens a transaction implicitly; it must be pinned too.
    a.query_drop("SET autocommit = 0").await.unwrap();
    a.query_drop("INSERT INTO t VALUES (2)").await.unwrap();
    let n: i64 = b.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
    assert_eq!(n, 0);
    a.query_drop("COMMIT").await.unwrap();
    let n: i64 = b.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
    assert_eq!(n, 1);
    a.disconnect().await.unwrap();
    b.disconnect().await.unwrap();
}

#[tokio::test]
async fn last_insert_id_survives_multiplexing() {
    let db = shared();
    let s = Scratch::new(db, "lid");
    let shoal = Shoal::start_with(db, |c| c.limits.pool_connections_max = 2);
    let mut a = connect(&shoal, &s).await;
    let mut b = connect(&shoal, &s).await;
    a.query_drop("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)").await.unwrap();
    for i in 0..10 {
        a.query_drop(format!("INSERT INTO t (v) VALUES ({i})")).await.unwrap();
        let expected = a.last_insert_id().unwrap();
        b.query_drop("INSERT INTO t (v) VALUES (-1)").await.unwrap();
        let lid: u64 = a.query_first("SELECT LAST_INSERT_ID()").await.unwrap().unwrap();
        assert_eq!(lid, expected, "a's LAST_INSERT_ID() after b's insert");
    }
    a.disconnect().await.unwrap();
    b.disconnect().await.unwrap();
}

#[tokio::test]
async fn prepared_statements_are_bounded_on_backends() {
    // Its own server: the statement count checked below is global.
    let db = &MariaDb::start(&[]);
    let s = Scratch::new(db, "ps");
    let shoal = Shoal::start_with(db, |c| c.limits.pool_connections_max = 2);
    let mut setup = connect(&shoal, &s).await;
    setup.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))").await.unwrap();
    setup.query_drop("INSERT INTO t VALUES (1,'a'),(2,'b'),(3,'c')").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let opts = shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db));
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::new(opts).await.unwrap();
            for round in 0..30 {
                // A new statement object each time: clients that prepare per query.
                let st = c.prep("SELECT v FROM t WHERE id = ?").await.unwrap();
                let v: String = c.exec_first(&st, (round % 3 + 1,)).await.unwrap().unwrap();
                assert_eq!(v, ["a", "b", "c"][round % 3]);
                c.close(st).await.unwrap();
            }
            c.disconnect().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 10 clients × 30 prepares, yet each backend connection prepared the text once.
    let count: Vec<String> =
        db.sql("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'").split_whitespace().map(String::from).collect();
    let open: usize = count[1].parse().unwrap();
    assert!(open <= 2, "backend statements must stay bounded by the pool, found {open}");
    setup.disconnect().await.unwrap();
}

#[tokio::test]
async fn multi_statements_return_every_result_set() {
    let db = shared();
    let s = Scratch::new(db, "multi");
    let shoal = Shoal::start(db);
    let mut c = connect(&shoal, &s).await;
    let mut result = c.query_iter("SELECT 1 AS a; SELECT 'x' AS b, 'y' AS c; DO 0; SELECT 3").await.unwrap();
    let mut sets = Vec::new();
    while !result.is_empty() {
        let rows: Vec<Row> = result.collect().await.unwrap();
        sets.push(rows.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>());
    }
    drop(result);
    let non_empty: Vec<_> = sets.into_iter().filter(|s| !s.is_empty()).collect();
    assert_eq!(non_empty.len(), 3);
    assert_eq!(non_empty[1][0], vec![Value::Bytes(b"x".to_vec()), Value::Bytes(b"y".to_vec())]);
    // A stored procedure returning two result sets through the binary protocol.
    c.query_drop("CREATE PROCEDURE p(IN x INT) BEGIN SELECT x; SELECT x * 2; END").await.unwrap();
    let mut r = c.exec_iter("CALL p(?)", (21,)).await.unwrap();
    let first: Vec<i64> = r.collect().await.unwrap();
    let second: Vec<i64> = r.collect().await.unwrap();
    drop(r);
    assert_eq!((first, second), (vec![21], vec![42]));
    c.disconnect().await.unwrap();
}

#[tokio::test]
async fn packets_above_16_mib_both_ways() {
    let db = shared();
    let s = Scratch::new(db, "big");
    let shoal = Shoal::start(db);
    let mut c = connect(&shoal, &s).await;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, b LONGBLOB)").await.unwrap();
    let blob: Vec<u8> = (0..20 * 1024 * 1024 + 7).map(|i| (i * 31 % 251) as u8).collect();
    c.exec_drop("INSERT INTO t VALUES (1, ?)", (blob.clone(),)).await.unwrap();
    // Exactly one full frame, the boundary case.
    let edge: Vec<u8> = vec![b'e'; 0xFF_FFFF - 40];
    c.exec_drop("INSERT INTO t VALUES (2, ?)", (edge.clone(),)).await.unwrap();
    let back: Vec<u8> = c.exec_first("SELECT b FROM t WHERE id = ?", (1,)).await.unwrap().unwrap();
    assert!(back == blob, "20 MiB blob came back different");
    let back: Vec<u8> = c.query_first("SELECT b FROM t WHERE id = 2").await.unwrap().unwrap();
    assert!(back == edge);
    // A text query larger than 16 MiB.
    let big_sql = format!("SELECT LENGTH('{}')", "z".repeat(17 * 1024 * 1024));
    let n: u64 = c.query_first(big_sql).await.unwrap().unwrap();
    assert_eq!(n, 17 * 1024 * 1024);
    c.disconnect().await.unwrap();
}

#[tokio::test]
async fn kill_query_reaches_the_running_statement() {
    let db = shared();
    let s = Scratch::new(db, "kill");
    let shoal = Shoal::start(db);
    let mut victim = connect(&shoal, &s).await;
    let mut killer = connect(&shoal, &s).await;
    let victim_id = victim.id();
    let started = Instant::now();
    let sleeper = tokio::spawn(async move {
        let r: Result<Option<i64>, _> = victim.query_first("SELECT SLEEP(30)").await;
        (r, victim)
    });
    // KILL QUERY of an idle session is a no-op, so keep killing until the sleep (which may
    // start late on a loaded machine) is interrupted.
    while !sleeper.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        killer.query_drop(format!("KILL QUERY {victim_id}")).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(20), "KILL QUERY did not interrupt the sleep");
    }
    let (r, mut victim) = sleeper.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "KILL QUERY did not interrupt the sleep");
    // MariaDB reports an interrupted SLEEP as 1 or as error 1317, depending on timing.
    match r {
        Ok(v) => assert_eq!(v, Some(1)),
        Err(e) => assert!(e.to_string().contains("interrupted"), "{e}"),
    }
    // The victim's session still works afterwards.
    let v: i64 = victim.query_first("SELECT 7").await.unwrap().unwrap();
    assert_eq!(v, 7);
    // Unknown ids get MariaDB's error.
    let e = killer.query_drop("KILL 999999").await.unwrap_err();
    assert!(e.to_string().contains("Unknown thread id: 999999"), "{e}");
    victim.disconnect().await.unwrap();
    killer.disconnect().await.unwrap();
}

#[tokio::test]
async fn connection_state_pins_survive_other_clients() {
    let db = shared();
    let s = Scratch::new(db, "pins");
    let shoal = Shoal::start_with(db, |c| c.limits.pool_connections_max = 3);
    let mut a = connect(&shoal, &s).await;
    a.query_drop("SET @x = 41").await.unwrap();
    a.query_drop("CREATE TEMPORARY TABLE tmp (v INT)").await.unwrap();
    a.query_drop("INSERT INTO tmp VALUES (1)").await.unwrap();
    let got: i64 = a.query_first("SELECT GET_LOCK('shoal-pin-test', 5)").await.unwrap().unwrap();
    assert_eq!(got, 1);
    // Other clients churn through the remaining backend connections.
    let mut others = Vec::new();
    for _ in 0..6 {
        others.push(connect(&shoal, &s).await);
    }
    for round in 0..5 {
        for o in others.iter_mut() {
            let free: i64 = o.query_first("SELECT IS_FREE_LOCK('shoal-pin-test')").await.unwrap().unwrap();
            assert_eq!(free, 0, "a's advisory lock must still be held (round {round})");
        }
        let x: i64 = a.query_first("SELECT @x + 1").await.unwrap().unwrap();
        assert_eq!(x, 42);
        let n: i64 = a.query_first("SELECT COUNT(*) FROM tmp").await.unwrap().unwrap();
        assert_eq!(n, 1);
    }
    // Reading @x pins the reader too (its value lives on its connection), so check the
    // leak with one fresh client.
    let mut fresh = connect(&shoal, &s).await;
    let v: Option<i64> = fresh.query_first("SELECT @x").await.unwrap().unwrap();
    assert_eq!(v, None, "a's user variable leaked to another client");
    fresh.disconnect().await.unwrap();
    // SQL_CALC_FOUND_ROWS then FOUND_ROWS() on the same connection.
    a.query_drop("CREATE TABLE f (id INT)").await.unwrap();
    a.query_drop("INSERT INTO f SELECT seq FROM seq_1_to_25").await.unwrap();
    let mut b = connect(&shoal, &s).await;
    let _: Vec<i64> = b.query("SELECT SQL_CALC_FOUND_ROWS id FROM f LIMIT 3").await.unwrap();
    let _: Vec<i64> = a.query("SELECT id FROM f LIMIT 1").await.unwrap();
    let found: i64 = b.query_first("SELECT FOUND_ROWS()").await.unwrap().unwrap();
    assert_eq!(found, 25);
    for c in others {
        c.disconnect().await.unwrap();
    }
    a.disconnect().await.unwrap();
    b.disconnect().await.unwrap();
}

#[tokio::test]
async fn accounts_from_config_without_a_service_account() {
    let db = shared();
    let s = Scratch::new(db, "cfgusers");
    let user = s.user.clone();
    let shoal = Shoal::start_with(db, move |c| {
        c.backends.user = String::new();
        c.users
            .insert(user, shoal::config::UserEntry { password: Some(Scratch::PASSWORD.into()), ..Default::default() });
    });
    let mut c = connect(&shoal, &s).await;
    let v: i64 = c.query_first("SELECT 5").await.unwrap().unwrap();
    assert_eq!(v, 5);
    c.disconnect().await.unwrap();
    let e = Conn::new(shoal.opts(&s.user, "wrong", Some(&s.db))).await.unwrap_err();
    assert!(e.to_string().contains("Access denied"), "{e}");
    // An account the config does not list cannot log in (nothing to verify against).
    let other = Scratch::new(db, "cfgusers_other");
    let e = Conn::new(shoal.opts(&other.user, Scratch::PASSWORD, Some(&other.db))).await.unwrap_err();
    assert!(e.to_string().contains("Access denied"), "{e}");
}

#[tokio::test]
async fn unix_socket_backend() {
    let db = shared();
    let s = Scratch::new(db, "unix");
    let sock = format!("unix:{}", db.dir.path().join("sock").display());
    let shoal = Shoal::start_with(db, move |c| c.backends.primary = sock);
    let mut c = connect(&shoal, &s).await;
    let (port, via_socket): (u16, String) = c
        .query_first("SELECT @@port, (SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = @@pseudo_thread_id)")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(port, db.port);
    assert_eq!(via_socket, "localhost", "backend connection should come over the unix socket");
    let v: i64 = c.exec_first("SELECT ? * 2", (21,)).await.unwrap().unwrap();
    assert_eq!(v, 42);
    c.disconnect().await.unwrap();
}

#[tokio::test]
async fn handler_reads_keep_their_connection() {
    let db = shared();
    let s = Scratch::new(db, "handler");
    let shoal = Shoal::start_with(db, |c| c.limits.pool_connections_max = 2);
    let mut a = connect(&shoal, &s).await;
    a.query_drop("CREATE TABLE t (id INT PRIMARY KEY)").await.unwrap();
    a.query_drop("INSERT INTO t VALUES (1), (2), (3)").await.unwrap();
    a.query_drop("HANDLER t OPEN").await.unwrap();
    let mut b = connect(&shoal, &s).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        // Another client uses the other connection between a's reads.
        let _: i64 = b.query_first("SELECT 1").await.unwrap().unwrap();
        let verb = if i == 0 { "FIRST" } else { "NEXT" };
        let row: Option<i64> = a.query_first(format!("HANDLER t READ `PRIMARY` {verb}")).await.unwrap();
        ids.push(row.unwrap());
    }
    assert_eq!(ids, [1, 2, 3]);
    a.query_drop("HANDLER t CLOSE").await.unwrap();
    a.disconnect().await.unwrap();
    b.disconnect().await.unwrap();
}
