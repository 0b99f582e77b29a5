//! Pipelined reads: the plain autocommit reads of many sessions, sent back to back on a
//! few shared backend connections.
//!
//! A statement relayed on a connection of its own costs the proxy a send and a receive
//! on the backend socket and wakes one server thread, on top of the client's own send and
//! receive; on a small machine those wake-ups, not the proxy's work, set the ceiling (see
//! docs/benchmarks.md). A pipe instead is one connection used as a stream: its worker
//! writes every read queued for it as soon as it arrives (all that arrived meanwhile in
//! one `write`, up to [`PIPE_DEPTH_MAX`] in flight) and reads the responses as they come,
//! handing each to its session in order. MariaDB answers the commands of one connection
//! one after the other, so the n-th response belongs to the n-th request. One server
//! thread runs a stream of reads without sleeping in between, and the proxy pays one send
//! per batch and one receive per few responses.
//!
//! Which statements may go here is [`crate::session::pipelinable`] (table there): only
//! reads that change nothing on the connection and need nothing from it, so a pipe
//! connection synced to the session's schema gives the same answer as a private one.
//!
//! | event | what the session sees |
//! |---|---|
//! | response arrives | [`Piped::Part`] chunks (large results), then [`Piped::Done`] |
//! | pipe cannot run it (no connection, idle exit, prepare refused, connection lost before any byte of its response, every pipe stalled) | [`Piped::NotRun`] (or `submit` fails): the session runs it on a leased connection as usual |
//! | `KILL QUERY` meant for an earlier statement interrupted it (error 1317, not asked for) | [`Piped::NotRun`]: it runs again |
//! | connection lost in the middle of its response | [`Piped::Failed`]: the session closes, as with a lost server |
//!
//! A pipe whose next response is later than `[limits] pipe_stall_ms` is running a slow
//! statement: it takes no new reads until it answers, so only the reads written behind
//! the slow one in that window wait for it. A pipe holds one pooled connection while it
//! has work and gives it back after [`PIPE_IDLE_EXIT`] without any.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::mpsc;

use super::conn::Advance;
use super::pool::{BackendPool, Lease};
use crate::error::{ProxyError, ER_QUERY_INTERRUPTED};
use crate::frontend::registry::SessionHandle;
use crate::protocol::framer::{Expect, Framer};
use crate::protocol::packet::HEADER_BYTES;
use crate::protocol::stmt::set_stmt_id;
use crate::session::prepared::PreparedMeta;
use crate::session::state::SessionState;

/// Most requests taken from the queue at once.
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
    Part(BytesMut),
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
    /// When the statement whose response comes next started waiting for it
    /// ([`clock_micros`]); 0 when nothing is in flight.
    head_since: Arc<AtomicU64>,
}

/// Microseconds since the first call: a cheap monotonic clock for stall checks.
fn clock_micros() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    // +1: 0 means "nothing in flight".
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64 + 1
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
    /// `[limits] pipe_stall_ms`: a pipe whose next response is this late takes no new
    /// statements.
    stall_micros: u64,
}

impl PipeSet {
    /// `count` pipes (at least one) for sessions in `schema`.
    pub fn new(count: usize, schema: Option<String>, charset: String, per_backend_max: usize, stall: Duration) -> Self {
        // A session id no client has: connections are synced to this state once.
        let state = SessionState { id: u64::MAX, version: 0, schema, ..Default::default() };
        PipeSet {
            pipes: (0..count.max(1)).map(|_| Pipe::default()).collect(),
            state,
            charset,
            per_backend_max,
            stall_micros: stall.as_micros() as u64,
        }
    }

    /// Pipes whose worker was started at least once.
    pub fn used(&self) -> usize {
        self.pipes.iter().filter(|p| p.tx.lock().unwrap_or_else(|e| e.into_inner()).is_some()).count()
    }

    /// Queues `req` on the pipe with the shortest queue, starting its worker if none
    /// runs. Gives the request back when the pipe is shutting down.
    pub async fn submit(self: &Arc<Self>, pool: &Arc<BackendPool>, req: Request) -> Result<(), Request> {
        // A pipe whose next response is overdue runs a slow statement: whatever is
        // written behind it waits, so new reads go elsewhere (or to a connection of their
        // own when every pipe is stalled).
        let now = clock_micros();
        let stall = self.stall_micros;
        let Some((index, pipe)) = self
            .pipes
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                let since = p.head_since.load(Ordering::Relaxed);
                since == 0 || now.saturating_sub(since) < stall
            })
            .min_by_key(|(_, p)| p.queued.load(Ordering::Relaxed))
        else {
            return Err(req);
        };
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

/// A statement written to the pipe's connection whose response has not been read.
struct InFlight {
    reply: mpsc::Sender<Piped>,
    handle: Arc<SessionHandle>,
    server: usize,
    framer: Framer,
    /// Bytes of its response framed so far (at the front of the read buffer).
    scan: usize,
    /// Part of its response went to the session already.
    sent_part: bool,
}

/// A pipe's worker: one connection, written and read at the same time, until idle or
/// broken.
///
/// New requests are written as soon as they arrive (up to [`PIPE_DEPTH_MAX`] in flight);
/// responses are read as soon as bytes come, and handed over in order. A statement that
/// is new to the connection is prepared once nothing is in flight (prepares are rare:
/// once per statement and pipe), and a frame larger than [`PIPE_INLINE_FRAME_MAX`] is
/// written only then too, so a large write can never wait on a server that waits for
/// us to read.
async fn work(set: Arc<PipeSet>, index: usize, pool: Arc<BackendPool>, mut rx: mpsc::Receiver<Request>) {
    let queued = set.pipes[index].queued.clone();
    let head_since = set.pipes[index].head_since.clone();
    let conn = match open(&set, &pool).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(addr = %pool.addr, error = %e, "pipe could not open a connection");
            return refuse_rest(&mut rx, &queued);
        }
    };
    let mut w = Worker { conn, set, queued, head_since, inflight: VecDeque::with_capacity(PIPE_DEPTH_MAX) };
    let mut fresh = Vec::with_capacity(PIPE_BATCH_MAX);
    loop {
        let room = PIPE_DEPTH_MAX - w.inflight.len();
        let got = if w.inflight.is_empty() {
            match tokio::time::timeout(PIPE_IDLE_EXIT, rx.recv_many(&mut fresh, PIPE_BATCH_MAX)).await {
                Ok(0) => return,
                Ok(_) => w.write(&mut fresh).await,
                Err(_) => return refuse_rest(&mut rx, &w.queued),
            }
        } else {
            tokio::select! {
                biased;
                r = w.conn.read_more() => match r {
                    Ok(()) => w.on_read().await,
                    Err(e) => Err(e),
                },
                n = rx.recv_many(&mut fresh, room.min(PIPE_BATCH_MAX)), if room > 0 => match n {
                    0 => w.drain().await.map(|_| ()),
                    _ => w.write(&mut fresh).await,
                },
            }
        };
        if let Err(e) = got {
            tracing::debug!(addr = %pool.addr, error = %e, "pipe connection lost");
            w.fail(&mut fresh).await;
            return refuse_rest(&mut rx, &w.queued);
        }
    }
}

/// Most statements in flight on one pipe.
pub const PIPE_DEPTH_MAX: usize = 128;
/// Frames larger than this are written only when nothing is in flight.
const PIPE_INLINE_FRAME_MAX: usize = 16 * 1024;

/// A pipe's connection and what is in flight on it.
struct Worker {
    conn: Lease,
    set: Arc<PipeSet>,
    queued: Arc<AtomicUsize>,
    head_since: Arc<AtomicU64>,
    inflight: VecDeque<InFlight>,
}

impl Worker {
    /// Writes `fresh` (emptying it), preparing statements new to the connection first.
    async fn write(&mut self, fresh: &mut Vec<Request>) -> Result<(), ProxyError> {
        let needs_quiet = fresh.iter().any(|r| {
            r.frame.len() > PIPE_INLINE_FRAME_MAX || r.meta.as_ref().is_some_and(|m| !self.conn.has_prepared(m))
        });
        if needs_quiet {
            self.drain().await?;
            for r in fresh.iter_mut() {
                let Some(meta) = &r.meta else { continue };
                match self.conn.ensure_prepared(meta, self.set.per_backend_max).await? {
                    Ok(_) => {}
                    Err(_refused) => {
                        // The session's own path prepares again and reports the error.
                        r.frame.clear();
                        let _ = r.reply.send(Piped::NotRun).await;
                        self.queued.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
            fresh.retain(|r| !r.frame.is_empty());
        }
        for r in fresh.iter_mut() {
            let Some(meta) = &r.meta else { continue };
            match self.conn.state.stmts.get(meta.id) {
                Some(id) => set_stmt_id(&mut r.frame[HEADER_BYTES..], id),
                None => {
                    // Closed again to make room for the batch's other statements.
                    r.frame.clear();
                    let _ = r.reply.send(Piped::NotRun).await;
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        fresh.retain(|r| !r.frame.is_empty());
        if fresh.is_empty() {
            return Ok(());
        }
        crate::metrics::pipe_batch(fresh.len());
        self.conn.send_frames(fresh.iter().map(|r| &r.frame[..])).await?;
        let was_idle = self.inflight.is_empty();
        let framer = Framer::new(Expect::Results, self.conn.deprecate_eof());
        self.inflight.extend(fresh.drain(..).map(|r| InFlight {
            reply: r.reply,
            handle: r.handle,
            server: r.server,
            framer: framer.clone(),
            scan: 0,
            sent_part: false,
        }));
        if was_idle {
            self.mark_head();
        }
        Ok(())
    }

    /// Marks the statement whose response comes next as running (what `KILL QUERY`
    /// reaches).
    fn mark_head(&self) {
        match self.inflight.front() {
            Some(h) => {
                h.handle.set_running(Some((h.server, self.conn.thread_id)));
                self.head_since.store(clock_micros(), Ordering::Relaxed);
            }
            None => self.head_since.store(0, Ordering::Relaxed),
        }
    }

    /// Hands over every response (or part) the bytes read so far complete.
    async fn on_read(&mut self) -> Result<(), ProxyError> {
        while let Some(head) = self.inflight.front_mut() {
            match self.conn.advance(&mut head.framer, &mut head.scan)? {
                Advance::NeedMore => return Ok(()),
                Advance::Part(bytes) => {
                    head.sent_part = true;
                    // A session that went away still has its response consumed.
                    let _ = head.reply.send(Piped::Part(bytes)).await;
                }
                Advance::Done(out) => {
                    let done = self.inflight.pop_front().expect("head exists");
                    done.handle.set_running(None);
                    self.mark_head();
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                    let kill_asked = done.handle.take_kill_query();
                    let msg = if done.framer.error == Some(ER_QUERY_INTERRUPTED) && !kill_asked && !done.sent_part {
                        // A `KILL QUERY` meant for the statement before landed on this one
                        // (the server had moved on): nothing was sent, and a read can run
                        // again.
                        Piped::NotRun
                    } else {
                        let out = if out.len() <= COPY_OUT_BYTES_MAX { BytesMut::from(&out[..]) } else { out };
                        Piped::Done(out, done.framer)
                    };
                    let _ = done.reply.send(msg).await;
                }
            }
        }
        Ok(())
    }

    /// Reads until nothing is in flight.
    async fn drain(&mut self) -> Result<(), ProxyError> {
        while !self.inflight.is_empty() {
            self.conn.read_more().await?;
            self.on_read().await?;
        }
        Ok(())
    }

    /// The connection failed: answers everything in flight or about to be written.
    async fn fail(&mut self, fresh: &mut Vec<Request>) {
        self.conn.mark_broken();
        self.head_since.store(0, Ordering::Relaxed);
        for f in self.inflight.drain(..) {
            f.handle.set_running(None);
            self.queued.fetch_sub(1, Ordering::Relaxed);
            let msg = if f.sent_part { Piped::Failed("backend connection lost".into()) } else { Piped::NotRun };
            let _ = f.reply.send(msg).await;
        }
        for r in fresh.drain(..) {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            let _ = r.reply.send(Piped::NotRun).await;
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
