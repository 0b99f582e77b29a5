//! Pipelined reads (`backend::pipeline`): many sessions' reads share a few backend
//! connections, and every client still gets exactly its own answers.

use std::collections::HashSet;

use mysql_async::prelude::*;
use mysql_async::Conn;

use crate::harness::{shared, MariaDb, Scratch, Shoal};
use crate::raw::Raw;

/// A `pipe_stall_ms` no test run reaches.
const NEVER_STALLED: u64 = 600_000;

/// A scratch account on `db` and a shoal in front of it with these pool and pipe limits;
/// returns the client options for the account.
fn piped(db: &MariaDb, tag: &str, pool_max: u32, pipes: u32, stall_ms: u64) -> (Scratch, Shoal, mysql_async::Opts) {
    let s = Scratch::new(db, tag);
    let shoal = Shoal::start_with(db, |c| {
        c.limits.pool_connections_max = pool_max;
        c.limits.pipes_per_pool = pipes;
        c.limits.pipe_stall_ms = stall_ms;
    });
    let opts = shoal.opts(&s.user, Scratch::PASSWORD, Some(&s.db));
    (s, shoal, opts)
}

const CLIENTS: usize = 24;
const ROUNDS: usize = 150;
const ROWS: usize = 50;

#[tokio::test]
async fn pipelined_reads_reach_the_right_clients_on_few_connections() {
    // This test is about pipes alone: no read may leave them because the (debug build,
    // busy) machine made one late.
    let (_s, shoal, opts) = piped(shared(), "pipes", 16, 2, NEVER_STALLED);
    let mut setup = Conn::new(opts.clone()).await.unwrap();
    setup.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))").await.unwrap();
    let values: Vec<String> = (1..=ROWS).map(|i| format!("({i}, 'row-{i}')")).collect();
    setup.query_drop(format!("INSERT INTO t VALUES {}", values.join(","))).await.unwrap();

    // Large results stream, and reads go around a streaming pipe: they start once every
    // client is done with the counted rounds.
    let rounds_done = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let opts = opts.clone();
        let rounds_done = rounds_done.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::new(opts).await.unwrap();
            let stmt = c.prep("SELECT v, ? FROM t WHERE id = ?").await.unwrap();
            let mut threads = HashSet::new();
            for round in 0..ROUNDS {
                // A token only this client and round use: a response delivered to the
                // wrong session cannot match it.
                let token = (client * 1_000_000 + round) as u64;
                let id = (client + round) % ROWS + 1;
                let (v, echo): (String, u64) =
                    c.query_first(format!("SELECT v, {token} FROM t WHERE id = {id}")).await.unwrap().unwrap();
                assert_eq!((v.as_str(), echo), (format!("row-{id}").as_str(), token), "text read");
                let (v, echo): (String, u64) = c.exec_first(&stmt, (token, id)).await.unwrap().unwrap();
                assert_eq!((v.as_str(), echo), (format!("row-{id}").as_str(), token), "prepared read");
                if round == ROUNDS / 4 {
                    // An error answer goes back like any other and leaves the pipe in use.
                    let e = c.query_drop("SELECT nope FROM t").await.unwrap_err();
                    assert!(e.to_string().contains("1054"), "{e}");
                }
                let thread = c.query_first::<u64, _>("SELECT @@pseudo_thread_id").await.unwrap().unwrap();
                // Reads that arrive while a pipe is still opening run on connections of
                // their own; count the second half of the run only.
                if round >= ROUNDS / 2 {
                    threads.insert(thread);
                }
            }
            // A result larger than a read chunk, relayed in pieces.
            rounds_done.wait().await;
            let big: Vec<(u32, String)> = c.query("SELECT id, REPEAT(v, 20000) FROM t ORDER BY id").await.unwrap();
            assert_eq!(big.len(), ROWS);
            for (id, text) in &big {
                assert_eq!(text.len(), format!("row-{id}").len() * 20_000);
            }
            c.disconnect().await.unwrap();
            threads
        }));
    }
    let mut threads = HashSet::new();
    for t in tasks {
        threads.extend(t.await.unwrap());
    }
    // 24 clients reading at once ran on the 2 pipes only (without pipes they would have
    // spread over up to 16 pooled connections).
    assert!(threads.len() <= 2, "reads ran on {} backend connections: {threads:?}", threads.len());
    let pipes: usize = shoal.proxy.pools.all().iter().map(|p| p.pipes_ready()).sum();
    assert_eq!(pipes, 2, "both pipes hold a connection after the run");
    setup.disconnect().await.unwrap();
}

#[tokio::test]
async fn reads_that_need_their_session_state_skip_the_pipes() {
    let (_s, _shoal, opts) = piped(shared(), "pipestate", 4, 2, 10);
    let mut a = Conn::new(opts.clone()).await.unwrap();
    let mut b = Conn::new(opts).await.unwrap();
    a.query_drop("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)").await.unwrap();
    // b's plain reads fill the pipes with the default time zone...
    for _ in 0..20 {
        let tz: String = b.query_first("SELECT @@session.time_zone").await.unwrap().unwrap();
        assert_eq!(tz, "SYSTEM");
    }
    // ...while a's reads carry its own session: variables, user variables, insert id,
    // transactions.
    a.query_drop("SET time_zone = '+02:00'").await.unwrap();
    let tz: String = a.query_first("SELECT @@session.time_zone").await.unwrap().unwrap();
    assert_eq!(tz, "+02:00");
    a.query_drop("SET @x = 41").await.unwrap();
    let x: i64 = a.query_first("SELECT @x + 1").await.unwrap().unwrap();
    assert_eq!(x, 42);
    a.query_drop("INSERT INTO t (v) VALUES (1)").await.unwrap();
    let id = a.last_insert_id().unwrap();
    let lid: u64 = a.query_first("SELECT LAST_INSERT_ID()").await.unwrap().unwrap();
    assert_eq!(lid, id);
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("INSERT INTO t (v) VALUES (2)").await.unwrap();
    let seen: i64 = a.query_first("SELECT COUNT(*) FROM t WHERE v = 2").await.unwrap().unwrap();
    assert_eq!(seen, 1, "a read inside a transaction sees the transaction's write");
    let other: i64 = b.query_first("SELECT COUNT(*) FROM t WHERE v = 2").await.unwrap().unwrap();
    assert_eq!(other, 0, "b's pipelined read must not see a's uncommitted row");
    a.query_drop("COMMIT").await.unwrap();
    let other: i64 = b.query_first("SELECT COUNT(*) FROM t WHERE v = 2").await.unwrap().unwrap();
    assert_eq!(other, 1);
    a.disconnect().await.unwrap();
    b.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_slow_read_does_not_hold_up_other_sessions() {
    // One pipe: without the stall rule every read would queue behind the sleep.
    let (_s, shoal, opts) = piped(shared(), "pipestall", 4, 1, 100);
    let mut slow = Conn::new(opts.clone()).await.unwrap();
    let mut fast = Conn::new(opts).await.unwrap();
    // Open the pipe (its first read runs elsewhere while it connects), then park a 3 s
    // read on it.
    wait_for_pipes(&shoal, &mut slow, 1).await;
    let sleeper = tokio::spawn(async move {
        let v: Option<i64> = slow.query_first("SELECT SLEEP(3)").await.unwrap();
        slow.disconnect().await.unwrap();
        v
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for i in 0..20 {
        let v: i64 = fast.query_first(format!("SELECT {i} + 1")).await.unwrap().unwrap();
        assert_eq!(v, i + 1);
    }
    assert!(!sleeper.is_finished(), "20 reads of another session waited for the 3 s sleep");
    assert_eq!(sleeper.await.unwrap(), Some(0));
    fast.disconnect().await.unwrap();
}

#[tokio::test]
async fn pipelined_reads_survive_a_server_restart() {
    // Its own server: it is killed and started again.
    let mut db = MariaDb::start(&[]);
    let (_s, shoal, opts) = piped(&db, "piperestart", 64, 2, NEVER_STALLED);
    let mut c = Conn::new(opts).await.unwrap();
    wait_for_pipes(&shoal, &mut c, 1).await;
    for i in 0..20i64 {
        assert_eq!(c.query_first::<i64, _>(format!("SELECT {i}")).await.unwrap(), Some(i));
    }
    // Every backend connection shoal holds, the pipes' included, dies with the server.
    db.restart();
    // The first read finds its pipe's connection dead before any byte reached the client,
    // so it runs again on a fresh connection: the client sees no error.
    for i in 0..20i64 {
        let v = c.query_first::<i64, _>(format!("SELECT {i} * 2")).await;
        assert_eq!(v.expect("read after the restart"), Some(i * 2));
    }
    c.disconnect().await.unwrap();
}

#[test]
fn a_client_that_does_not_read_does_not_hold_up_the_pipe() {
    // One pipe and no stall rule: if the pipe waited for the lazy client's socket to take
    // its responses, the other session's reads would wait with it.
    let (_s, _shoal, mut busy, mut lazy) = raw_pair("pipenoread");
    // The lazy client sends its reads back to back and reads nothing: far more response
    // bytes than the sockets between it and shoal hold, in responses small enough for
    // the pipe to write in one piece. The pipe writes what the socket takes and hands
    // the rest to the lazy session, which waits for its client.
    const READS: usize = 1000;
    const WIDTH: usize = 10_000;
    for i in 0..READS {
        lazy.command(format!("\x03SELECT {i}, REPEAT('x', {WIDTH})").as_bytes());
    }
    // Meanwhile the busy session's reads go to the same pipe (it is ready and never
    // counts as stalled) and are answered (the raw client gives up after 10 s).
    std::thread::sleep(std::time::Duration::from_millis(500));
    for i in 0..50 {
        assert_eq!(busy.value(&format!("SELECT {i} + 1")), (i + 1).to_string().as_bytes());
    }
    // Every answer of the lazy client is there, whole and in order.
    for i in 0..READS {
        let columns = lazy.read();
        assert_eq!(&columns[..], &[2], "read {i}: a result set of two columns");
        lazy.until_eof();
        let (rows, _) = lazy.until_eof();
        assert_eq!(rows.len(), 1, "read {i}: one row");
        let row = &rows[0];
        let n = i.to_string();
        assert_eq!(&row[1..1 + n.len()], n.as_bytes(), "read {i}: its own answer");
        assert_eq!(row.len(), 1 + n.len() + 3 + WIDTH, "read {i}: the whole row");
    }
}

/// Two raw clients of one account (same capabilities: same pool) on a shoal whose pipe
/// is open.
fn raw_pair(tag: &str) -> (Scratch, Shoal, Raw, Raw) {
    let (s, shoal, _) = piped(shared(), tag, 8, 1, NEVER_STALLED);
    let mut a = Raw::connect(shoal.port(), &s.user, Scratch::PASSWORD, &s.db);
    let b = Raw::connect(shoal.port(), &s.user, Scratch::PASSWORD, &s.db);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while shoal.proxy.pools.all().iter().map(|p| p.pipes_ready()).sum::<usize>() < 1 {
        assert_eq!(a.value("SELECT 1"), b"1");
        assert!(std::time::Instant::now() < deadline, "no pipe opened");
    }
    (s, shoal, a, b)
}

#[test]
fn a_streamed_result_takes_no_reads_behind_it() {
    // One pipe, no stall timeout. The application reads the start of a large result on
    // one connection, then waits for a read on another before it reads on (iterating an
    // unbuffered result while querying): that read must not queue behind the stream,
    // which waits for the application.
    let (_s, _shoal, mut iterating, mut other) = raw_pair("pipestream");
    // 50 MB: far more than the sockets between shoal and the application hold.
    iterating.command(b"\x03SELECT REPEAT('y', 10000) FROM seq_1_to_5000");
    assert_eq!(&iterating.read()[..], &[1], "the result has begun");
    // Until the sockets are full and the stream waits for the application.
    std::thread::sleep(std::time::Duration::from_millis(500));
    for i in 0..5 {
        assert_eq!(other.value(&format!("SELECT {i} * 2")), (i * 2).to_string().as_bytes());
    }
    iterating.until_eof();
    let (rows, _) = iterating.until_eof();
    assert_eq!(rows.len(), 5000);
    assert!(rows.iter().all(|r| r.len() == 3 + 10_000));
}

#[test]
fn commands_right_behind_a_pipelined_read_wait_for_its_answer() {
    let (_s, _shoal, mut a, mut b) = raw_pair("pipequit");
    // A read and COM_RESET_CONNECTION in one write: the read's answer comes first.
    a.commands(&[b"\x03SELECT 41 + 1", &[0x1F]]);
    assert_eq!(&a.read()[..], &[1]);
    a.until_eof();
    let (rows, _) = a.until_eof();
    assert_eq!(&rows[0][1..], b"42");
    assert_eq!(a.read()[0], 0, "then the reset's OK");
    // A read and COM_QUIT: the answer, then the close.
    b.commands(&[b"\x03SELECT 'last words'", &[0x01]]);
    assert_eq!(&b.read()[..], &[1]);
    b.until_eof();
    let (rows, _) = b.until_eof();
    assert_eq!(&rows[0][1..], b"last words");
    assert!(b.closed(), "the session closes after COM_QUIT");
}

#[test]
fn a_client_that_half_closes_still_gets_its_answer() {
    let (_s, _shoal, mut a, mut b) = raw_pair("pipehalf");
    // A large (streamed) answer and a small one, each asked for right before the client
    // shuts down its sending side.
    a.command(b"\x03SELECT REPEAT('x', 100000)");
    a.half_close();
    assert_eq!(&a.read()[..], &[1]);
    a.until_eof();
    let (rows, _) = a.until_eof();
    assert_eq!(rows[0].len(), 4 + 100_000, "the whole value (3-byte length prefix)");
    assert!(a.closed());
    b.command(b"\x03SELECT 7");
    b.half_close();
    assert_eq!(&b.read()[..], &[1]);
    b.until_eof();
    let (rows, _) = b.until_eof();
    assert_eq!(&rows[0][1..], b"7");
    assert!(b.closed());
}

/// Runs reads on `c` until `n` pipes hold a connection (a pipe opens on its first read).
async fn wait_for_pipes(shoal: &Shoal, c: &mut Conn, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let _: Option<i64> = c.query_first("SELECT 1").await.unwrap();
        if shoal.proxy.pools.all().iter().map(|p| p.pipes_ready()).sum::<usize>() >= n {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no pipe opened");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn kill_of_a_pipelined_read_spares_the_shared_connection() {
    let db = shared();
    // One pipe that never counts as stalled: the second read is written behind the sleep.
    let (_s, shoal, opts) = piped(db, "pipekill", 4, 1, NEVER_STALLED);
    let mut victim = Conn::new(opts.clone()).await.unwrap();
    let mut bystander = Conn::new(opts.clone()).await.unwrap();
    let mut killer = Conn::new(opts).await.unwrap();
    wait_for_pipes(&shoal, &mut bystander, 1).await;
    let pipe_thread: u64 = bystander.query_first("SELECT @@pseudo_thread_id").await.unwrap().unwrap();
    let victim_id = victim.id();
    let sleeper = tokio::spawn(async move {
        let r: Result<Option<i64>, _> = victim.query_first("SELECT SLEEP(30)").await;
        (r, victim)
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let on_pipe = format!(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {pipe_thread} AND INFO LIKE 'SELECT SLEEP%'"
    );
    while db.sql(&on_pipe).trim() != "1" {
        assert!(std::time::Instant::now() < deadline, "the sleep never ran on the pipe");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let behind = tokio::spawn(async move {
        let v: Result<Option<i64>, _> = bystander.query_first("SELECT 41 + 1").await;
        (v, bystander)
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!behind.is_finished(), "the second read should wait behind the sleep on the one pipe");
    killer.query_drop(format!("KILL {victim_id}")).await.unwrap();
    let (r, mut victim) = sleeper.await.unwrap();
    match r {
        Ok(v) => assert_eq!(v, Some(1), "an interrupted SLEEP returns 1"),
        Err(e) => assert!(e.to_string().contains("interrupted"), "{e}"),
    }
    // The read behind it was neither interrupted nor lost, and the shared connection lives.
    let (v, mut bystander) = behind.await.unwrap();
    assert_eq!(v.expect("the read behind the killed one"), Some(42));
    let thread: u64 = bystander.query_first("SELECT @@pseudo_thread_id").await.unwrap().unwrap();
    assert_eq!(thread, pipe_thread, "KILL closed the pipe's shared connection");
    // KILL CONNECTION still ends the victim's own session.
    assert!(victim.query_drop("SELECT 1").await.is_err(), "the killed session still answers");
    bystander.disconnect().await.unwrap();
    killer.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_server_without_autocommit_gets_no_pipelined_reads() {
    // Its own server: global autocommit is off, so every read opens a transaction.
    let db = MariaDb::start(&["--autocommit=0"]);
    let (s, shoal, opts) = piped(&db, "pipenoac", 64, 1, NEVER_STALLED);
    db.sql(&format!("CREATE TABLE {}.t (id INT PRIMARY KEY) ENGINE=InnoDB; COMMIT", s.db));
    let mut reader = Conn::new(opts.clone()).await.unwrap();
    let mut writer = Conn::new(opts.clone()).await.unwrap();
    // A throwaway session's read opens the pipe (the read itself runs elsewhere and leaves
    // that session in a transaction).
    let mut opener = Conn::new(opts).await.unwrap();
    let _: Option<i64> = opener.query_first("SELECT 1").await.unwrap();
    // Wait for the pipe to be open (not a fixed time: a loaded machine is slower).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !shoal.proxy.pools.all().iter().any(|p| p.pipes_ready() > 0 || p.pipes_disabled()) {
        assert!(std::time::Instant::now() < deadline, "the pipe did not open within 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The next read that reaches the pipe finds it in a transaction: the read runs again
    // on its session's own connection, where the server keeps it in one, and the pool
    // stops pipelining.
    for _ in 0..5 {
        let n: i64 = reader.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
        assert_eq!(n, 0);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(shoal.proxy.pools.all().iter().any(|p| p.pipes_disabled()), "no read reached the pipe");
    writer.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    writer.query_drop("COMMIT").await.unwrap();
    let n: i64 = reader.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
    assert_eq!(n, 0, "the reader's transaction snapshot must not see the later commit");
    reader.query_drop("COMMIT").await.unwrap();
    let n: i64 = reader.query_first("SELECT COUNT(*) FROM t").await.unwrap().unwrap();
    assert_eq!(n, 1);
    reader.disconnect().await.unwrap();
    writer.disconnect().await.unwrap();
}

/// A session whose last read a pipe answered on its socket is idle: `KILL` closes it at
/// once (it used to stay "busy" until its next command, so KILL and `wait_timeout` did
/// not end it, and its `user_connections_max` slot stayed taken).
#[tokio::test]
async fn kill_closes_a_session_whose_last_read_was_pipelined() {
    let (_s, shoal, opts) = piped(shared(), "pipekillidle", 8, 1, NEVER_STALLED);
    let mut victim = Conn::new(opts.clone()).await.unwrap();
    let mut killer = Conn::new(opts).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !shoal.proxy.pools.all().iter().any(|p| p.pipes_ready() > 0) {
        assert!(std::time::Instant::now() < deadline, "the pipe did not open");
        let _: Option<i64> = victim.query_first("SELECT 1").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Reads on the open pipe (small answers: the pipe writes them to the socket itself).
    for i in 0..20 {
        let n: i64 = victim.query_first(format!("SELECT {i}")).await.unwrap().unwrap();
        assert_eq!(n, i);
    }
    let id = victim.id();
    killer.query_drop(format!("KILL {id}")).await.unwrap();
    while shoal.proxy.registry.get(id).is_some() {
        assert!(std::time::Instant::now() < deadline, "KILL left the idle session open");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(victim.query_drop("SELECT 1").await.is_err(), "the killed session still answers");
    killer.disconnect().await.unwrap();
}
