//! Client workloads shared by the failover test and the chaos harness: every operation's
//! outcome recorded as a client sees it — acked (OK), failed (an error that says nothing
//! ran) or unknown (the connection broke, no answer in time, or shoal answered "outcome
//! unknown"). A client whose connection breaks moves to the next node, as a client with
//! several hosts does.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use crate::cluster::opts;

/// Longest one statement may take before the client gives up on it (outcome unknown) and
/// moves on: a paused node holds its clients' statements.
pub(crate) const WRITE_GIVE_UP: Duration = Duration::from_secs(5);
/// How long a client tries to connect to a node before it moves to the next one.
pub(crate) const CONNECT_GIVE_UP: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Acked,
    Failed,
    Unknown,
}

/// One write as a client saw it.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub(crate) client: usize,
    pub(crate) serial: u64,
    /// The node whose proxy it went to.
    pub(crate) node: u64,
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    pub(crate) outcome: Outcome,
    pub(crate) error: Option<String>,
}

/// What an error tells about the write (module doc).
pub(crate) fn classify(e: &mysql_async::Error) -> Outcome {
    match e {
        mysql_async::Error::Server(s) if s.message.contains("outcome unknown") => Outcome::Unknown,
        mysql_async::Error::Server(_) => Outcome::Failed,
        _ => Outcome::Unknown,
    }
}

/// A statement's outcome with [`WRITE_GIVE_UP`], and whether the connection is still
/// usable (an ERR packet leaves it so; a broken or silent one does not).
pub(crate) async fn run<T>(
    fut: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
) -> (Result<T, (Outcome, String)>, bool) {
    match tokio::time::timeout(WRITE_GIVE_UP, fut).await {
        Ok(Ok(v)) => (Ok(v), true),
        Ok(Err(e)) => {
            let usable = matches!(e, mysql_async::Error::Server(_));
            ((Err((classify(&e), e.to_string()))), usable)
        }
        Err(_) => (Err((Outcome::Unknown, format!("no answer within {WRITE_GIVE_UP:?}"))), false),
    }
}

/// A connection that follows the node list: reconnects to the next node when broken.
pub(crate) struct Roaming {
    nodes: Vec<(u64, u16)>,
    at: usize,
    db: &'static str,
    conn: Option<mysql_async::Conn>,
}

impl Roaming {
    /// Starts at node `start % nodes.len()`, default schema `db`.
    pub(crate) fn new(nodes: Vec<(u64, u16)>, start: usize, db: &'static str) -> Roaming {
        Roaming { at: start % nodes.len(), nodes, db, conn: None }
    }

    /// The node it is on now.
    pub(crate) fn node(&self) -> u64 {
        self.nodes[self.at].0
    }

    /// A connected session, or `None` after one failed try (it moved to the next node).
    pub(crate) async fn conn(&mut self) -> Option<&mut mysql_async::Conn> {
        if self.conn.is_none() {
            let port = self.nodes[self.at].1;
            match tokio::time::timeout(CONNECT_GIVE_UP, mysql_async::Conn::new(opts(port, Some(self.db)))).await {
                Ok(Ok(c)) => self.conn = Some(c),
                _ => {
                    self.broken();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return None;
                }
            }
        }
        self.conn.as_mut()
    }

    /// The connection broke: the next statement goes to the next node.
    pub(crate) fn broken(&mut self) {
        self.conn = None;
        self.at = (self.at + 1) % self.nodes.len();
    }

    /// Disconnects cleanly, if connected.
    pub(crate) async fn close(self) {
        if let Some(c) = self.conn {
            let _ = tokio::time::timeout(CONNECT_GIVE_UP, c.disconnect()).await;
        }
    }
}

/// One writing connection: inserts the next serial into `table` (columns n, client,
/// node) until `stop`.
pub(crate) async fn serial_writer(
    client: usize,
    nodes: Vec<(u64, u16)>,
    (db, table): (&'static str, &'static str),
    next: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Op>>>,
) {
    let mut roaming = Roaming::new(nodes, client, db);
    while !stop.load(Ordering::SeqCst) {
        let node = roaming.node();
        let Some(c) = roaming.conn().await else { continue };
        let serial = next.fetch_add(1, Ordering::SeqCst);
        let start = Instant::now();
        let sql = format!("INSERT INTO {db}.{table} (n, client, node) VALUES ({serial}, {client}, {node})");
        let (r, usable) = run(c.query_drop(sql)).await;
        let end = Instant::now();
        if !usable {
            roaming.broken();
        }
        let (outcome, error) = match r {
            Ok(()) => (Outcome::Acked, None),
            Err((o, e)) => (o, Some(e)),
        };
        log.lock().unwrap().push(Op { client, serial, node, start, end, outcome, error });
        if outcome == Outcome::Failed {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    roaming.close().await;
}
