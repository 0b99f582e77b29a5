//! The leader's capture coordinator: turns what the binlog tail finds into proposals, in
//! binlog order, and tells each waiting session when its transaction is durable.
//!
//! | the tail found | the coordinator |
//! |---|---|
//! | `Prepared` (shoal's xid) | proposes the rows; the session waiting on the xid gets the LSN (or the error) |
//! | `Unmanaged` (written without shoal) | proposes the rows after the fact; counts `shoal_capture_unmanaged_writes_total` |
//! | `Statement` with shoal's mark, or from a connection shoal registered ([`Capture::expect_statement`]) | nothing: proposed before it ran ([`Capture::propose_statement`]) |
//! | another `Statement` | proposes it as logged, then the rows logged with it (DDL run on the leader's MariaDB without shoal); counted as unmanaged |
//! | `Skipped` | nothing |
//!
//! Every group advances the coordinator's binlog position; a statement proposal waits
//! until the tail has passed the binlog position its session saw, so the statement is
//! ordered after every transaction prepared before it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{Captured, Entry, Origin, RowsEntry, StatementEntry, XID_PREFIX};
use crate::route::GtidPos;
use crate::wal::{Lsn, NewRecord, Wal};

/// How long a session waits for its prepared transaction to come back from the binlog
/// and become durable before it gives up (the transaction is then rolled back; the
/// client gets an error that says so).
pub const DURABLE_WAIT_MS: u64 = 30_000;

/// Statements proposed but waiting for the tail to reach their binlog position, at most.
pub const PENDING_STATEMENTS_MAX: usize = 1024;

/// Record kind of a capture entry in a local WAL (the same value as the cluster's
/// normal entries, so one reader serves both).
pub const ENTRY_RECORD_KIND: u8 = 1;

/// A proposal's outcome: the entry's LSN once durable, or why not.
pub type Proposal = Pin<Box<dyn Future<Output = Result<Lsn, NotDurable>> + Send>>;

/// Why a proposal did not become durable, and whether it still may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotDurable {
    /// Never appended to the log: it can never commit. The transaction rolls back.
    Refused(String),
    /// Appended, then the leadership (or the node) was lost before it committed: a later
    /// leader may still commit it, and only the log can tell. The transaction stays
    /// prepared until the log decides ([`super::setup::orphan`]).
    Unknown {
        /// What happened.
        why: String,
        /// The Raft term it was proposed in: an entry of a later term applied means it
        /// was not committed.
        term: u64,
    },
}

impl From<String> for NotDurable {
    fn from(why: String) -> Self {
        NotDurable::Refused(why)
    }
}

impl std::fmt::Display for NotDurable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotDurable::Refused(why) | NotDurable::Unknown { why, .. } => f.write_str(why),
        }
    }
}

/// Where entries become durable. Calls come in log order, one at a time; the returned
/// futures may resolve in any order and are awaited concurrently.
pub trait Durable: Send + Sync + 'static {
    /// Appends `entry` (encoded) to the replicated log.
    fn propose(&self, entry: Vec<u8>) -> Proposal;

    /// Whether this node's own state machine runs the statement entries it proposes
    /// before the proposal returns (the Raft log: the leader's applier runs them like
    /// every node's, [`Capture::runs_statements_here`]); else the proposing session runs
    /// the statement itself afterwards.
    fn runs_statements(&self) -> bool {
        false
    }
}

/// [`Durable`] as "appended and fsynced to a local WAL": capture without a cluster
/// (tests, `make bench`, and a single node).
pub struct LocalWal {
    wal: Arc<Wal>,
}

impl LocalWal {
    /// Durability by appending to `wal`.
    pub fn new(wal: Arc<Wal>) -> Self {
        LocalWal { wal }
    }
}

impl LocalWal {
    /// Xids of every captured entry the WAL holds (recovery: these prepared
    /// transactions are durable and commit; others roll back).
    pub fn durable_xids(&self) -> crate::wal::Result<std::collections::HashSet<String>> {
        Ok(captured_xids(&self.wal)?.into_keys().collect())
    }
}

/// Xids of every captured transaction in `wal` (rows and batch entries), with the term
/// of the record that holds it.
pub fn captured_xids(wal: &Wal) -> crate::wal::Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    scan_captured(wal, |term, xid, _| {
        out.insert(xid.to_string(), term);
    })?;
    Ok(out)
}

/// Calls `f(term, xid, rows)` for every captured transaction in `wal` (rows and batch
/// entries), oldest first.
pub fn scan_captured(wal: &Wal, mut f: impl FnMut(u64, &str, &RowsEntry)) -> crate::wal::Result<()> {
    let (first, last) = (wal.first_lsn(), wal.last_lsn());
    let mut from = first;
    while from <= last {
        let to = (from + 1024).min(last + 1);
        for rec in wal.read_range(from..to)? {
            if rec.kind != ENTRY_RECORD_KIND {
                continue;
            }
            let Ok(entry) = Entry::decode(&rec.payload) else { continue };
            for r in entry.rows() {
                if let Origin::Captured { xid } = &r.origin {
                    f(rec.term, xid, r);
                }
            }
        }
        from = to;
    }
    Ok(())
}

impl Durable for LocalWal {
    fn propose(&self, entry: Vec<u8>) -> Proposal {
        let term = self.wal.last_term().max(1);
        let done = self.wal.append(vec![NewRecord { term, kind: ENTRY_RECORD_KIND, payload: entry.into() }]);
        Box::pin(async move { done.await.map(|r| r.start).map_err(|e| NotDurable::Refused(e.to_string())) })
    }
}

/// Why a captured transaction did not become durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    /// The log refused the proposal: it never commits.
    #[error("the transaction was not made durable: {0}")]
    NotDurable(String),
    /// The log took the proposal, then the leadership was lost before it committed: it
    /// may still commit under the next leader.
    #[error(
        "the leadership was lost before the transaction committed, and the next leader may still commit it: {why}"
    )]
    Unknown {
        /// What happened.
        why: String,
        /// The Raft term it was proposed in.
        term: u64,
    },
    /// The binlog tail did not deliver the prepared transaction in time.
    #[error("the prepared transaction did not reach the replication log within {DURABLE_WAIT_MS} ms (is the binlog tail connected? see shoal_capture_tail_reconnects_total)")]
    TimedOut,
    /// The coordinator stopped (shutdown, or leadership lost).
    #[error("capture stopped before the transaction was durable")]
    Stopped,
}

/// This process's epoch in xids: random per run, the same for every [`Capture`] the
/// process starts (a node that loses and regains leadership keeps recognising entries it
/// proposed earlier).
static EPOCH: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| rand::random::<u64>() & 0xffff_ffff_ffff);

/// Sequence of xids and statement ids in this process.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// `shoal-<node>-<epoch>-` for node name `node` (letters, digits and `_` kept).
pub fn prefix_of(node: &str) -> String {
    let node: String = node.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    format!("{XID_PREFIX}{node}-{:x}-", *EPOCH)
}

/// Whether a capture of node `node` in this process proposed `entry` (its xid,
/// statement id or unmanaged tag carries the prefix): that node's own MariaDB already
/// holds it (or holds it prepared, committing once durable), so its applier must not
/// apply it again.
pub fn proposed_here(node: &str, entry: &Entry) -> bool {
    proposed_with(&prefix_of(node), entry)
}

fn proposed_with(prefix: &str, entry: &Entry) -> bool {
    match entry {
        Entry::Rows(r) => rows_proposed_with(prefix, r),
        Entry::Statement(s) => s.id.starts_with(prefix),
        // One capture proposed the whole batch.
        Entry::Batch(b) => b.first().is_some_and(|r| rows_proposed_with(prefix, r)),
    }
}

fn rows_proposed_with(prefix: &str, r: &RowsEntry) -> bool {
    match &r.origin {
        Origin::Captured { xid } => xid.starts_with(prefix),
        Origin::Unmanaged { gtid } => gtid.rsplit_once('@').is_some_and(|(_, by)| by == prefix),
    }
}

/// Where a proposal's outcome goes.
type Reply = oneshot::Sender<Result<Lsn, CaptureError>>;

/// A session's wait for its xid.
pub struct Waiter {
    rx: oneshot::Receiver<Result<Lsn, CaptureError>>,
    xid: String,
    capture: Arc<Capture>,
}

impl Waiter {
    /// The entry's LSN once durable.
    pub async fn durable(mut self) -> Result<Lsn, CaptureError> {
        let r = match tokio::time::timeout(Duration::from_millis(DURABLE_WAIT_MS), &mut self.rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(CaptureError::Stopped),
            Err(_) => Err(CaptureError::TimedOut),
        };
        self.capture.forget(&self.xid);
        r
    }

    /// Gives up on the xid (the transaction is being rolled back).
    pub fn cancel(self) {
        self.capture.forget(&self.xid);
    }
}

enum Cmd {
    Statement { entry: StatementEntry, after: GtidPos, reply: Reply },
}

/// The leader's capture: xids, waiters, and the coordinator task.
pub struct Capture {
    /// `shoal-<node>-<epoch>-`: unique per process run ([`prefix_of`]).
    prefix: String,
    waiters: Mutex<HashMap<String, Reply>>,
    /// Server threads running a statement shoal proposed: their next statement group in
    /// the binlog is that statement (MariaDB may log a rewritten text without the mark).
    own_statements: Mutex<HashMap<u32, usize>>,
    commands: mpsc::Sender<Cmd>,
    /// Cloned into every open XA transaction of a session ([`Capture::open_token`]): its
    /// count is how many are open (a handover waits for none).
    open: Arc<()>,
    /// [`Durable::runs_statements`] of its durability.
    runs_statements: bool,
}

impl Capture {
    /// Starts the coordinator over what the tail delivers; proposals go to `durable`.
    /// `node` names this node in xids (letters, digits, `_`). `binlog_pos` is the
    /// leader's `@@gtid_binlog_pos` read after the tail started: everything up to it is
    /// behind the tail already.
    pub fn start(
        node: &str,
        tail: mpsc::Receiver<Captured>,
        durable: Arc<dyn Durable>,
        binlog_pos: &str,
    ) -> Arc<Capture> {
        let (tx, rx) = mpsc::channel(PENDING_STATEMENTS_MAX);
        let capture = Arc::new(Capture {
            prefix: prefix_of(node),
            waiters: Mutex::new(HashMap::new()),
            own_statements: Mutex::new(HashMap::new()),
            commands: tx,
            open: Arc::new(()),
            runs_statements: durable.runs_statements(),
        });
        tokio::spawn(coordinate(Arc::downgrade(&capture), tail, rx, durable, GtidPos::parse(binlog_pos)));
        capture
    }

    /// A fresh xid for a transaction about to start.
    /// A token a session holds while its XA transaction is open.
    pub fn open_token(&self) -> Arc<()> {
        self.open.clone()
    }

    /// Whether `token` (an open transaction's, [`Capture::open_token`]) is this capture's.
    pub fn owns(&self, token: &Arc<()>) -> bool {
        Arc::ptr_eq(&self.open, token)
    }

    /// How many sessions hold an open XA transaction of this capture.
    pub fn open_transactions(&self) -> usize {
        Arc::strong_count(&self.open) - 1
    }

    pub fn next_xid(&self) -> String {
        format!("{}{}", self.prefix, SEQ.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Whether this capture proposed `entry` (its xid, statement id or unmanaged tag
    /// carries this run's prefix): the leader's own MariaDB already holds it (or holds it
    /// prepared, committing once durable), so the leader's applier must not apply it again.
    pub fn is_own(&self, entry: &Entry) -> bool {
        proposed_with(&self.prefix, entry)
    }

    /// Whether a proposed statement (DDL) has already run on this node when
    /// [`Capture::propose_statement`] returns (the leader's applier ran it, its outcome
    /// is in [`super::setup::take_statement_outcome`]), so the session must not run it
    /// again. A leader that ran it itself after the proposal lost it when it was killed
    /// in between: the entry was applied everywhere else, and here it was already
    /// counted as applied (chaos seed 744698, a column missing on one node of five).
    pub fn runs_statements_here(&self) -> bool {
        self.runs_statements
    }

    /// A fresh id for a statement entry.
    pub fn next_statement_id(&self) -> String {
        self.next_xid()
    }

    /// Registers interest in `xid`: call before `XA PREPARE`, so the tail's delivery
    /// cannot come first.
    pub fn expect(self: &Arc<Self>, xid: &str) -> Waiter {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(xid.to_string(), tx);
        Waiter { rx, xid: xid.to_string(), capture: self.clone() }
    }

    /// Proposes a statement (DDL) before it runs; `after` is the leader's
    /// `@@gtid_binlog_pos` when the session asked, so the statement follows every
    /// transaction prepared before it.
    pub async fn propose_statement(&self, entry: StatementEntry, after: &str) -> Result<Lsn, CaptureError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Cmd::Statement { entry, after: GtidPos::parse(after), reply };
        self.commands.send(cmd).await.map_err(|_| CaptureError::Stopped)?;
        match tokio::time::timeout(Duration::from_millis(DURABLE_WAIT_MS), rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(CaptureError::Stopped),
            Err(_) => Err(CaptureError::TimedOut),
        }
    }

    /// The leader connection with server thread id `thread` is about to run a statement
    /// this capture proposed: its binlog group is not proposed again.
    pub fn expect_statement(&self, thread: u32) {
        *self.own().entry(thread).or_insert(0) += 1;
    }

    /// The statement registered for `thread` failed on the leader (nothing was logged).
    pub fn forget_statement(&self, thread: u32) {
        let mut own = self.own();
        if let Some(n) = own.get_mut(&thread) {
            *n -= 1;
            if *n == 0 {
                own.remove(&thread);
            }
        }
    }

    /// Whether a statement group from `thread` is one this capture proposed (and counts
    /// it off).
    fn take_statement(&self, thread: u32) -> bool {
        let mut own = self.own();
        match own.get_mut(&thread) {
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    own.remove(&thread);
                }
                true
            }
            None => false,
        }
    }

    fn own(&self) -> std::sync::MutexGuard<'_, HashMap<u32, usize>> {
        self.own_statements.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Reply>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget(&self, xid: &str) {
        self.lock().remove(xid);
    }

    fn take(&self, xid: &str) -> Option<Reply> {
        self.lock().remove(xid)
    }
}

/// Proposes `entry` and hands the outcome to `reply` (if anyone still waits).
fn propose(durable: &Arc<dyn Durable>, entry: Entry, reply: Option<Reply>) {
    let proposal = durable.propose(entry.encode());
    tokio::spawn(async move {
        let r = proposal.await.map_err(|e| match e {
            NotDurable::Refused(why) => CaptureError::NotDurable(why),
            NotDurable::Unknown { why, term } => CaptureError::Unknown { why, term },
        });
        if let Err(e) = &r {
            tracing::error!(error = %e, "a captured entry was not made durable");
        }
        if let Some(reply) = reply {
            let _ = reply.send(r);
        }
    });
}

/// The reply for a prepared transaction whose session is gone: the proposal's outcome
/// decides it on the local MariaDB once it answers (durable: commit; refused: roll back;
/// lost with the leadership: the log decides, `setup::orphan`).
fn decide_unattended(xid: String) -> Reply {
    let (tx, rx) = oneshot::channel::<Result<Lsn, CaptureError>>();
    tokio::spawn(async move {
        match rx.await {
            Ok(Ok(_)) => super::setup::settle_later(&xid, true),
            Ok(Err(CaptureError::Unknown { term, .. })) => super::setup::orphan(&xid, term),
            Ok(Err(_)) | Err(_) => super::setup::settle_later(&xid, false),
        }
    });
    tx
}

/// The coordinator task: ends when the tail's channel closes or the [`Capture`] is dropped.
async fn coordinate(
    capture: std::sync::Weak<Capture>,
    mut tail: mpsc::Receiver<Captured>,
    mut commands: mpsc::Receiver<Cmd>,
    durable: Arc<dyn Durable>,
    mut seen: GtidPos,
) {
    let mut pending: Vec<(StatementEntry, GtidPos, Reply)> = Vec::new();
    loop {
        tokio::select! {
            found = tail.recv() => {
                let Some(found) = found else { break };
                let Some(capture) = capture.upgrade() else { break };
                advance(&mut seen, found.gtid());
                match found {
                    Captured::Prepared { xid, rows, .. } => {
                        let reply = capture.take(&xid).unwrap_or_else(|| {
                            tracing::warn!(%xid, "a prepared transaction nobody waits for: proposed anyway; its proposal's outcome decides it");
                            decide_unattended(xid.clone())
                        });
                        propose(&durable, Entry::Rows(rows), Some(reply));
                        metrics::counter!(crate::metrics::CAPTURE_ENTRIES, "kind" => "rows").increment(1);
                    }
                    Captured::Unmanaged { rows, gtid } => {
                        tracing::info!(%gtid, "a transaction written without shoal is replicated after the fact");
                        let gtid = format!("{gtid}@{}", capture.prefix);
                        let rows = RowsEntry { origin: Origin::Unmanaged { gtid }, ..rows };
                        propose(&durable, Entry::Rows(rows), None);
                        metrics::counter!(crate::metrics::CAPTURE_UNMANAGED).increment(1);
                    }
                    Captured::Skipped { .. } => {}
                    Captured::Statement { id, thread_id, schema, sql, gtid, rows } => {
                        // Either test counts the registration off.
                        let own = capture.take_statement(thread_id) || id.is_some();
                        if !own {
                            tracing::info!(%gtid, %sql, "a statement run without shoal is replicated after the fact");
                            let id = format!("{}unmanaged-{gtid}", capture.prefix);
                            let entry = StatementEntry { id, schema, session: Vec::new(), sql };
                            propose(&durable, Entry::Statement(entry), None);
                            if let Some(rows) = rows {
                                let origin = Origin::Unmanaged { gtid: format!("{gtid}@{}", capture.prefix) };
                                propose(&durable, Entry::Rows(RowsEntry { origin, ..rows }), None);
                            }
                            metrics::counter!(crate::metrics::CAPTURE_UNMANAGED).increment(1);
                        }
                    }
                }
            }
            cmd = commands.recv() => {
                let Some(Cmd::Statement { entry, after, reply }) = cmd else { break };
                pending.push((entry, after, reply));
            }
        }
        // Statements whose binlog position the tail has passed go out, in arrival order.
        while pending.first().is_some_and(|(_, after, _)| seen.covers(after)) {
            let (entry, _, reply) = pending.remove(0);
            propose(&durable, Entry::Statement(entry), Some(reply));
            metrics::counter!(crate::metrics::CAPTURE_ENTRIES, "kind" => "statement").increment(1);
        }
    }
    if let Some(capture) = capture.upgrade() {
        for (_, reply) in capture.lock().drain() {
            let _ = reply.send(Err(CaptureError::Stopped));
        }
    }
}

/// Adds `gtid` (`domain-server-seq`) to `seen`.
fn advance(seen: &mut GtidPos, gtid: &str) {
    let one = GtidPos::parse(gtid);
    for (d, seq) in one.0 {
        match seen.0.iter_mut().find(|(dd, _)| *dd == d) {
            Some(e) => e.1 = e.1.max(seq),
            None => seen.0.push((d, seq)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting(Mutex<Vec<Entry>>);

    impl Durable for Counting {
        fn propose(&self, entry: Vec<u8>) -> Proposal {
            let mut g = self.0.lock().unwrap();
            g.push(Entry::decode(&entry).unwrap());
            let lsn = g.len() as Lsn;
            Box::pin(async move { Ok(lsn) })
        }
    }

    fn rows(xid: &str) -> RowsEntry {
        RowsEntry { origin: Origin::Captured { xid: xid.into() }, format: vec![1], statements: vec![vec![2]] }
    }

    #[tokio::test]
    async fn a_prepared_transaction_reaches_its_waiter_and_statements_wait_for_the_tail() {
        let (tx, rx) = mpsc::channel(16);
        let durable = Arc::new(Counting(Mutex::new(Vec::new())));
        let capture = Capture::start("n1", rx, durable.clone(), "0-1-4");
        let xid = capture.next_xid();
        assert!(xid.starts_with("shoal-n1-"), "{xid}");
        let waiter = capture.expect(&xid);
        tx.send(Captured::Prepared { gtid: "0-1-5".into(), xid: xid.clone(), rows: rows(&xid) }).await.unwrap();
        assert_eq!(waiter.durable().await, Ok(1));
        // A statement that saw position 0-1-7 waits until the tail passed it.
        let c2 = capture.clone();
        let stmt = StatementEntry {
            id: capture.next_statement_id(),
            schema: None,
            session: vec![],
            sql: "CREATE TABLE t(a INT)".into(),
        };
        let proposed = tokio::spawn(async move { c2.propose_statement(stmt, "0-1-7").await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(Captured::Unmanaged { gtid: "0-1-6".into(), rows: rows("x") }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!proposed.is_finished(), "the statement went out before the tail reached 0-1-7");
        tx.send(Captured::Skipped { gtid: "0-1-7".into() }).await.unwrap();
        assert_eq!(proposed.await.unwrap(), Ok(3));
        let log = durable.0.lock().unwrap().clone();
        assert!(
            matches!(&log[1], Entry::Rows(RowsEntry { origin: Origin::Unmanaged { gtid }, .. }) if gtid.starts_with("0-1-6@shoal-n1-"))
        );
        assert!(log.iter().all(|e| capture.is_own(e)), "every entry of this run is the capture's own");
        let other = Entry::Rows(RowsEntry {
            origin: Origin::Captured { xid: "shoal-n2-1-1".into() },
            format: vec![],
            statements: vec![],
        });
        assert!(!capture.is_own(&other));
        assert!(matches!(&log[2], Entry::Statement(_)));
    }
}
