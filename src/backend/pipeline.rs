//! Pipelined reads: the plain autocommit reads of many sessions, sent back to back on a
//! few shared backend connections.
//!
//! A statement relayed on a connection of its own costs the proxy a send and a receive
//! on the backend socket and wakes one server thread, on top of the client's own send and
//! receive; on a small machine those wake-ups, not the proxy's work, set the ceiling (see
//! docs/benchmarks.md). A pipe instead takes every read queued for it (up to
//! [`PIPE_BATCH_MAX`]), writes them in one `write`, and reads the responses in order:
//! MariaDB answers the commands of one connection one after the other, so the n-th
//! response belongs to the n-th request. One server thread then runs a whole batch
//! without sleeping in between, and the proxy pays one send and a few receives for it.
//!
//! Which statements may go here is [`crate::session::pipelinable`] (table there): only
//! reads that change nothing on the connection and need nothing from it, so any pipe
//! connection synced to the session's schema gives the same answer as a private one.
//!
//! | event | what the session sees |
//! |---|---|
//! | response arrives | [`Piped::Data`] chunks (large results), then [`Piped::Done`] |
//! | pipe cannot run it (no connection, idle exit, prepare refused, connection lost before any byte of its response) | [`Piped::NotRun`] (or the send fails): the session runs it on a leased connection as usual |
//! | connection lost in the middle of its response | [`Piped::Failed`]: the session closes, as with a lost server |
//!
//! A pipe holds one pooled connection while it has work and gives it back after
//! [`PIPE_IDLE_EXIT`] without any; a slow response delays only the reads queued behind it
//! on the same pipe (at most one batch).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::mpsc;

use super::pool::{BackendPool, Lease};
use crate::error::{ProxyError, ER_QUERY_INTERRUPTED};
use crate::frontend::registry::SessionHandle;
use crate::protocol::framer::{Expect, Framer};
use crate::protocol::packet::HEADER_BYTES;
use crate::protocol::stmt::set_stmt_id;
use crate::session::prepared::PreparedMeta;
use crate::session::state::SessionState;

/// Most requests written in one batch.
pub const PIPE_BATCH_MAX: usize = 64;
/// Requests a pipe queues before senders wait.
const PIPE_QUEUE_MAX: usize = 1024;
/// A pipe without work for this long returns its connection to the pool.
pub const PIPE_IDLE_EXIT: Duration = Duration::from_secs(10);
/// Responses up to this size are copied out of the read buffer (so it is reused) rather
/// than handed over.
const COPY_OUT_BYTES_MAX: usize = 16 * 1024;

/// What a pipe sends back to a session.
#[derive(Debug)]
pub enum Piped {
    /// Part of the response (large results arrive in several).
    Data(BytesMut),
    /// The rest of the response and its outcome.
    Done(BytesMut, Framer),
    /// The pipe did not run the statement; run it on a leased connection.
    NotRun,
    /// The connection failed after part of the response was sent.
    Failed(String),
}

/// One statement for a pipe.
pub struct Request {
    /// The complete command frame (header with sequence 0). For a prepared statement
    /// the statement id is patched in by the pipe, which knows its backend id.
    pub frame: BytesMut,
    /// The prepared statement an execute runs (prepared on the pipe's connection first
    /// if it is new there).
    pub meta: Option<Arc<PreparedMeta>>,
    /// Where the response goes.
    pub reply: mpsc::Sender<Piped>,
    /// The session, marked as running on the pipe's connection while its response is
    /// read (so `KILL QUERY` finds it).
    pub handle: Arc<SessionHandle>,
    /// Routing-table index of the pipe's server (for the running marker).
    pub server: usize,
}

/// One pipe: a worker task and its queue.
#[derive(Default)]
struct Pipe {
    /// The worker's queue; `None` or closed when no worker runs.
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    /// Requests sent and not yet answered (to pick the shortest queue).
    queued: Arc<AtomicUsize>,
}

/// The pipes of one pool for one schema.
pub struct PipeSet {
    pipes: Vec<Pipe>,
    /// What every pipe connection is synced to: the schema, no variables.
    state: SessionState,
    /// `SET NAMES` target when a pooled connection must be reset.
    charset: String,
    /// Statements prepared per backend connection.
    per_backend_max: usize,
}

impl PipeSet {
    /// `count` pipes (at least one) for sessions in `schema`.
    pub fn new(count: usize, schema: Option<String>, charset: String, per_backend_max: usize) -> Self {
        // A session id no client has: connections are synced to this state once.
        let state = SessionState { id: u64::MAX, version: 0, schema, ..Default::default() };
        PipeSet { pipes: (0..count.max(1)).map(|_| Pipe::default()).collect(), state, charset, per_backend_max }
    }

    /// Pipes whose worker was started at least once.
    pub fn used(&self) -> usize {
        self.pipes.iter().filter(|p| p.tx.lock().unwrap_or_else(|e| e.into_inner()).is_some()).count()
    }

    /// Queues `req` on the pipe with the shortest queue, starting its worker if none
    /// runs. Gives the request back when the pipe is shutting down.
    pub async fn submit(self: &Arc<Self>, pool: &Arc<BackendPool>, req: Request) -> Result<(), Request> {
        let (index, pipe) = self
            .pipes
            .iter()
            .enumerate()
            .min_by_key(|(_, p)| p.queued.load(Ordering::Relaxed))
            .expect("at least one pipe");
        let tx = {
            let mut slot = pipe.tx.lock().unwrap_or_else(|p| p.into_inner());
            match &*slot {
                Some(tx) if !tx.is_closed() => tx.clone(),
                _ => {
                    let (tx, rx) = mpsc::channel(PIPE_QUEUE_MAX);
                    tokio::spawn(work(self.clone(), index, pool.clone(), rx));
                    *slot = Some(tx.clone());
                    tx
                }
            }
        };
        pipe.queued.fetch_add(1, Ordering::Relaxed);
        tx.send(req).await.map_err(|e| {
            pipe.queued.fetch_sub(1, Ordering::Relaxed);
            e.0
        })
    }
}

/// A pipe's worker: one connection, batches in order, until idle or broken.
async fn work(set: Arc<PipeSet>, index: usize, pool: Arc<BackendPool>, mut rx: mpsc::Receiver<Request>) {
    let queued = set.pipes[index].queued.clone();
    let mut conn = match open(&set, &pool).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(addr = %pool.addr, error = %e, "pipe could not open a connection");
            return refuse_rest(&mut rx, &queued);
        }
    };
    let mut batch = Vec::with_capacity(PIPE_BATCH_MAX);
    loop {
        match tokio::time::timeout(PIPE_IDLE_EXIT, rx.recv_many(&mut batch, PIPE_BATCH_MAX)).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(_) => return refuse_rest(&mut rx, &queued),
        }
        let n = batch.len();
        let r = run_batch(&mut conn, &set, &mut batch).await;
        queued.fetch_sub(n, Ordering::Relaxed);
        if let Err(e) = r {
            tracing::debug!(addr = %pool.addr, error = %e, "pipe connection lost");
            conn.mark_broken();
            return refuse_rest(&mut rx, &queued);
        }
    }
}

/// A pooled connection with the set's schema and no session variables.
async fn open(set: &PipeSet, pool: &BackendPool) -> Result<Lease, ProxyError> {
    let mut conn = pool.checkout().await?;
    match conn.sync(&set.state, false, &set.charset).await? {
        super::conn::Ready::Yes => Ok(conn),
        super::conn::Ready::Refused(_) => Err(ProxyError::Unavailable("schema refused on a pipe connection".into())),
    }
}

/// Stops taking requests and tells the queued ones to run elsewhere.
fn refuse_rest(rx: &mut mpsc::Receiver<Request>, queued: &AtomicUsize) {
    rx.close();
    while let Ok(r) = rx.try_recv() {
        queued.fetch_sub(1, Ordering::Relaxed);
        let _ = r.reply.try_send(Piped::NotRun);
    }
}

/// Writes a batch in one go and hands each response to its session. On a connection
/// failure every request not yet answered is answered (`NotRun`, or `Failed` for the one
/// whose response was cut) and the error returned.
async fn run_batch(conn: &mut Lease, set: &PipeSet, batch: &mut Vec<Request>) -> Result<(), ProxyError> {
    // Statements new to this connection are prepared first (once per statement and pipe).
    for r in batch.iter_mut() {
        let Some(meta) = &r.meta else { continue };
        match conn.ensure_prepared(meta, set.per_backend_max).await {
            Ok(Ok(id)) => set_stmt_id(&mut r.frame[HEADER_BYTES..], id),
            Ok(Err(_refused)) => {
                // The session's own path prepares again and reports the error.
                r.frame.clear();
                let _ = r.reply.send(Piped::NotRun).await;
            }
            Err(e) => return Err(not_run(batch, e).await),
        }
    }
    batch.retain(|r| !r.frame.is_empty());
    crate::metrics::pipe_batch(batch.len());
    if let Err(e) = conn.send_frames(batch.iter().map(|r| &r.frame[..])).await {
        return Err(not_run(batch, e).await);
    }
    let mut it = batch.drain(..);
    while let Some(r) = it.next() {
        r.handle.set_running(Some((r.server, conn.thread_id)));
        let relayed = conn.relay_to_channel(Expect::Results, &r.reply).await;
        r.handle.set_running(None);
        let kill_asked = r.handle.take_kill_query();
        match relayed {
            Ok((framer, _)) if framer.error == Some(ER_QUERY_INTERRUPTED) && !kill_asked => {
                // A `KILL QUERY` meant for the statement before it landed on this one (the
                // server had moved on): nothing was sent yet, and a read can run again.
                let _ = r.reply.send(Piped::NotRun).await;
            }
            Ok((framer, out)) => {
                let out = if out.len() <= COPY_OUT_BYTES_MAX { BytesMut::from(&out[..]) } else { out };
                // A session that went away meanwhile simply misses its answer.
                let _ = r.reply.send(Piped::Done(out, framer)).await;
            }
            Err(e) => {
                let _ = r.reply.send(Piped::Failed(e.to_string())).await;
                let rest: Vec<Request> = it.collect();
                for r in rest {
                    let _ = r.reply.send(Piped::NotRun).await;
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Answers every request of `batch` with `NotRun` and returns `e`.
async fn not_run(batch: &mut Vec<Request>, e: ProxyError) -> ProxyError {
    for r in batch.drain(..) {
        if !r.frame.is_empty() {
            let _ = r.reply.send(Piped::NotRun).await;
        }
    }
    e
}
