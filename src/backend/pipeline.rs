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
//! Each request carries its own one-shot reply: [`Answer::Done`] with the whole response,
//! or, for a response larger than a read chunk, [`Answer::Stream`], a channel of
//! [`Piped::Part`]s ending with [`Piped::Done`]. A request dropped unanswered answers
//! [`Answer::Back`] (not run); a stream dropped without `Done`, not completely run. A
//! plain-TCP client's response that fits one read is written to the client by the pipe
//! itself ([`Request::client`]): the session, already back to reading its client, gets
//! [`Answer::Sent`] without being woken, and is woken ([`SessionHandle::pipe_wake`]) only
//! for any other answer. The statement counts as running until its response is written,
//! by the pipe or by the session:
//!
//! | event | what the session sees |
//! |---|---|
//! | response arrives, plain client's socket takes it whole | `Sent` (read before its next command) |
//! | response arrives, otherwise | `Done` (with what the plain client's socket did not take), or `Stream` with `Part`s then `Done` |
//! | pipe cannot take it (opening, every pipe stalled, pipelining disabled, worker gone) | `submit` gives the request back: the session runs it on a leased connection |
//! | pipe drops it before any byte (no connection, idle exit, prepare refused, connection lost, a `KILL QUERY` meant for an earlier statement interrupted it, the server reported a transaction) | `Back`, nothing written: the session runs it on a leased connection |
//! | connection lost in the middle of its response | channel closed after some `Part`s: the session closes, as with a lost server |
//!
//! A response that says autocommit is off or a transaction is open (a server whose global
//! `autocommit` is 0) disables pipelining for the set: pipes assume autocommit.
//!
//! A pipe whose next response is later than `[limits] pipe_stall_ms` is running a slow
//! statement: it takes no new reads until it answers, so only the reads written behind
//! the slow one in that window wait for it. A pipe streaming a large response (more than
//! a read chunk) moves at the pace of that response's client: it takes no new reads and
//! writes none of those it holds until the response is over (they run elsewhere), so
//! only reads written behind it before it began to stream wait for that client. A pipe
//! holds one pooled connection while it has work and gives it back after
//! [`PIPE_IDLE_EXIT`] without any; all pipes of a pool together hold at most half of it.
//!
//! `KILL QUERY` reaches the statement whose response the pipe reads next (it is marked
//! running, as shared); a statement further back is not reached. `KILL CONNECTION` of a
//! session whose read is on a pipe kills that query and closes the session, never the
//! shared connection.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};

use super::conn::Advance;
use super::pool::{ConnPool, Lease};
use super::Counted;
use crate::config::LimitsSection;
use crate::error::{ProxyError, ER_QUERY_INTERRUPTED};
use crate::metrics::StatementTimer;
use crate::protocol::framer::{Expect, Framer};
use crate::protocol::packet::HEADER_BYTES;
use crate::protocol::stmt::set_stmt_id;
use crate::protocol::StatusFlags;
use crate::session::prepared::PreparedMeta;
use crate::session::registry::SessionHandle;
use crate::session::state::SessionState;

/// Most requests taken from the queue at once.
pub const PIPE_BATCH_MAX: usize = 64;
/// Most statements in flight (written, response not yet read) on one pipe.
pub const PIPE_DEPTH_MAX: usize = 128;
/// Most command bytes in flight on one pipe. Commands the server has not read yet sit
/// in its socket buffer; kept below any socket buffer, a write never waits for the
/// server while the server waits for us to read (the pipe does not read while writing).
pub const PIPE_INFLIGHT_BYTES_MAX: usize = 64 * 1024;
/// Requests a pipe queues before senders wait.
const PIPE_QUEUE_MAX: usize = 1024;
/// A pipe without work for this long returns its connection to the pool.
pub const PIPE_IDLE_EXIT: Duration = Duration::from_secs(10);
/// Responses up to this size are copied out of the read buffer (so it is reused) rather
/// than handed over.
const COPY_OUT_BYTES_MAX: usize = 16 * 1024;

/// A pipe's answer to one request.
#[derive(Debug)]
pub enum Answer {
    /// The pipe wrote the whole response to the client ([`Request::client`]); its outcome.
    Sent(Framer),
    /// The whole response (most responses fit one read), or what the client's socket did
    /// not take at once, its outcome, and the statement's timer (held until it is written).
    Done(BytesMut, Framer, Option<StatementTimer>),
    /// A large response, relayed in parts as it arrives.
    Stream(mpsc::Receiver<Piped>),
    /// The pipe did not run the statement: the session runs it on a leased connection.
    /// Carries its timer.
    Back(Option<StatementTimer>),
}

/// Messages of an [`Answer::Stream`].
#[derive(Debug)]
pub enum Piped {
    /// Part of the response (large results arrive in several).
    Part(BytesMut),
    /// The rest of the response, its outcome, and the statement's timer (held until it is
    /// written).
    Done(BytesMut, Framer, Option<StatementTimer>),
}

/// One statement for a pipe.
pub struct Request {
    /// The complete command frame (header with sequence 0). For a prepared statement
    /// the statement id is patched in by the pipe, which knows its backend id.
    pub frame: BytesMut,
    /// The prepared statement an execute runs (prepared on the pipe's connection first
    /// if it is new there).
    pub meta: Option<Arc<PreparedMeta>>,
    /// The session, marked as running on the pipe's connection while its response is
    /// read next (so `KILL QUERY` finds it).
    pub handle: Arc<SessionHandle>,
    /// Routing-table index of the pipe's server (for the running marker).
    pub server: usize,
    /// The client's plain socket, when the pipe writes the response to it itself. The
    /// session then does not wait for the answer: it goes back to reading its client, and
    /// only an answer other than [`Answer::Sent`] (or none) wakes it, through
    /// [`SessionHandle::pipe_wake`]. Saves waking the session once per read.
    pub client: Option<Arc<OwnedWriteHalf>>,
    /// The statement's metrics: it runs (`statements_running`) until its whole response
    /// is written, by the pipe or by the session the answer hands it to.
    timer: Option<StatementTimer>,
    /// Where the answer goes; [`Answer::Back`] when the request is dropped unanswered.
    reply: Option<oneshot::Sender<Answer>>,
}

impl Request {
    /// A request and the receiver of its answer.
    pub fn new(
        frame: BytesMut,
        meta: Option<Arc<PreparedMeta>>,
        handle: Arc<SessionHandle>,
        server: usize,
        client: Option<Arc<OwnedWriteHalf>>,
        timer: StatementTimer,
    ) -> (Request, oneshot::Receiver<Answer>) {
        let (reply, answer) = oneshot::channel();
        (Request { frame, meta, handle, server, client, timer: Some(timer), reply: Some(reply) }, answer)
    }

    /// Takes back a request no pipe took (nothing was sent): its timer.
    pub fn give_back(mut self) -> StatementTimer {
        self.reply = None;
        self.timer.take().expect("a request not yet taken has its timer")
    }

    /// Sends the answer (the first call only), waking a session that does not wait for it.
    fn answer(&mut self, answer: Answer) {
        let Some(reply) = self.reply.take() else { return };
        // (A `Back` from `drop` of an answered request is dropped here with its timer.)
        let wake = self.client.is_some() && !matches!(answer, Answer::Sent(_));
        if matches!(answer, Answer::Sent(_)) {
            // The response is out and the session, not woken, waits for its client: it is
            // idle from now for KILL and the idle sweep (marked before the session can
            // take the answer and start its next command).
            self.handle.command_ended();
        }
        let _ = reply.send(answer);
        if wake {
            self.handle.pipe_wake.notify_one();
        }
    }

    /// The statement's timer with the response's outcome recorded (the statement counts
    /// as running until the timer is dropped, once the response is written).
    fn finished(&mut self, error: Option<u16>) -> Option<StatementTimer> {
        let mut timer = self.timer.take()?;
        timer.done(error, self.server != 0);
        Some(timer)
    }
}

impl Drop for Request {
    /// Unanswered: the statement did not run; its session runs it elsewhere.
    fn drop(&mut self) {
        let timer = self.timer.take();
        self.answer(Answer::Back(timer));
    }
}

/// A request counted in its pipe's queue until it is dropped (answered or not), so
/// every path uncounts it exactly once.
struct Queued {
    req: Request,
    _count: Counted,
}

/// One pipe: a worker task and its queue.
#[derive(Default)]
struct Pipe {
    /// The worker's queue; `None` or closed when no worker runs.
    tx: Mutex<Option<mpsc::Sender<Queued>>>,
    /// The worker has its connection (until then reads go elsewhere, not into a wait).
    ready: Arc<AtomicBool>,
    /// Requests sent and not yet answered (to pick the shortest queue).
    queued: Arc<AtomicUsize>,
    /// When the statement whose response comes next started waiting for it
    /// ([`clock_micros`]); 0 when nothing is in flight, [`STREAMING`] while its response
    /// is being streamed.
    head_since: Arc<AtomicU64>,
}

/// `head_since` of a pipe streaming a large response: stalled, whatever the clock says.
/// The stream moves at the pace of its client, and a client may wait for another read
/// before it reads on (one application thread, two connections): a read written behind
/// the stream could wait forever.
const STREAMING: u64 = u64::MAX;

/// Microseconds since the first call: a cheap monotonic clock for stall checks.
fn clock_micros() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    // +1: 0 means "nothing in flight".
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64 + 1
}

/// The pipes of one pool, a [`PipeSet`] per schema, created on first use.
pub struct Pipes {
    /// The pool the pipes take their connections from.
    pool: Arc<ConnPool>,
    /// Sets by schema.
    sets: Mutex<HashMap<Option<String>, Arc<PipeSet>>>,
    /// Pipes per schema (0: pipelining off).
    pipes_per_pool: usize,
    /// Statements prepared per backend connection.
    prepared_per_backend_max: usize,
    /// `[limits] pipe_stall_ms`.
    stall: Duration,
    /// Connections held by pipes (all schemas).
    conns: Arc<AtomicUsize>,
}

impl Pipes {
    /// No pipes yet for `pool`, sized by `[limits]`.
    pub fn new(pool: Arc<ConnPool>, l: &LimitsSection) -> Pipes {
        Pipes {
            pool,
            sets: Mutex::new(HashMap::new()),
            pipes_per_pool: l.pipes_per_pool as usize,
            prepared_per_backend_max: l.prepared_per_backend_max as usize,
            stall: Duration::from_millis(l.pipe_stall_ms),
            conns: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The pipes for sessions in `schema` whose connections use `charset` by default;
    /// `None` when pipelining is off. All pipes of the pool together hold at most half of
    /// it, so statements that need a connection of their own always find room.
    pub fn set(&self, schema: &Option<String>, charset: &str) -> Option<Arc<PipeSet>> {
        let pool_pipes_max = self.pool.max() as usize / 2;
        if self.pipes_per_pool == 0 || pool_pipes_max == 0 {
            return None;
        }
        let mut map = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = map.get(schema) {
            return Some(set.clone());
        }
        let limits = PipeLimits {
            pipes: self.pipes_per_pool.min(pool_pipes_max),
            pool_pipes: self.conns.clone(),
            pool_pipes_max,
            per_backend_max: self.prepared_per_backend_max,
            stall: self.stall,
        };
        let set = Arc::new(PipeSet::new(self.pool.clone(), schema.clone(), charset.to_string(), limits));
        map.insert(schema.clone(), set.clone());
        Some(set)
    }

    /// Pipes holding a connection now, over every schema.
    pub fn ready(&self) -> usize {
        let map = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        map.values().map(|set| set.ready()).sum()
    }

    /// Whether a set stopped pipelining (the server runs reads inside transactions).
    pub fn disabled(&self) -> bool {
        let map = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        map.values().any(|set| set.is_disabled())
    }
}

/// What a [`PipeSet`] needs from its pool.
pub struct PipeLimits {
    /// Pipes in the set.
    pub pipes: usize,
    /// Connections all pipes of the pool hold now, and the most they may hold.
    pub pool_pipes: Arc<AtomicUsize>,
    pub pool_pipes_max: usize,
    /// Statements prepared per backend connection.
    pub per_backend_max: usize,
    /// `[limits] pipe_stall_ms`.
    pub stall: Duration,
}

/// The pipes of one pool for one schema.
pub struct PipeSet {
    pipes: Vec<Pipe>,
    /// Where the pipes take their connections from.
    pool: Arc<ConnPool>,
    /// What every pipe connection is synced to: the schema, no variables, under an id of
    /// its own (so a connection another set left on another schema is synced again).
    state: SessionState,
    /// `SET NAMES` target when a pooled connection must be reset.
    charset: String,
    limits: PipeLimits,
    /// Set when the server ran a pipelined read inside a transaction (global autocommit
    /// off): pipes cannot be used with this server.
    disabled: AtomicBool,
}

impl PipeSet {
    /// Pipes for sessions in `schema`.
    pub fn new(pool: Arc<ConnPool>, schema: Option<String>, charset: String, limits: PipeLimits) -> Self {
        // Session ids are shoal connection ids (u32); sets count down from the top.
        static NEXT_SET: AtomicU64 = AtomicU64::new(0);
        let id = u64::MAX - NEXT_SET.fetch_add(1, Ordering::Relaxed);
        let state = SessionState { id, version: 0, schema, ..Default::default() };
        let pipes = (0..limits.pipes.max(1)).map(|_| Pipe::default()).collect();
        PipeSet { pipes, pool, state, charset, limits, disabled: AtomicBool::new(false) }
    }

    /// host:port of the pipes' server.
    pub fn addr(&self) -> Arc<str> {
        self.pool.addr.clone()
    }

    /// Whether the set stopped pipelining (see `disabled`).
    pub fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    /// Pipes whose worker holds its connection now.
    pub fn ready(&self) -> usize {
        self.pipes.iter().filter(|p| p.ready.load(Ordering::Acquire)).count()
    }

    /// Queues `req` on the pipe with the shortest queue. Gives the request back when no
    /// pipe can take it now: all stalled, the chosen one still opening (its first request
    /// starts it), or shutting down.
    pub async fn submit(self: &Arc<Self>, req: Request) -> Result<(), Request> {
        if self.disabled.load(Ordering::Relaxed) {
            return Err(req);
        }
        // A pipe whose next response is overdue runs a slow statement: whatever is
        // written behind it waits, so new reads go elsewhere (or to a connection of their
        // own when every pipe is stalled).
        let now = clock_micros();
        let stall = self.limits.stall.as_micros() as u64;
        let Some((index, pipe)) = self
            .pipes
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                let since = p.head_since.load(Ordering::Relaxed);
                since == 0 || (since != STREAMING && now.saturating_sub(since) < stall)
            })
            .min_by_key(|(_, p)| p.queued.load(Ordering::Relaxed))
        else {
            return Err(req);
        };
        let tx = {
            let mut slot = pipe.tx.lock().unwrap_or_else(|p| p.into_inner());
            match &*slot {
                Some(tx) if !tx.is_closed() => {
                    if !pipe.ready.load(Ordering::Acquire) {
                        return Err(req);
                    }
                    tx.clone()
                }
                _ => {
                    let (tx, rx) = mpsc::channel(PIPE_QUEUE_MAX);
                    pipe.ready.store(false, Ordering::Release);
                    tokio::spawn(work(self.clone(), index, rx));
                    *slot = Some(tx);
                    return Err(req);
                }
            }
        };
        let queued = Queued { req, _count: Counted::add(&pipe.queued) };
        tx.send(queued).await.map_err(|e| e.0.req)
    }
}

/// A statement written to the pipe's connection whose response has not been read.
struct InFlight {
    q: Queued,
    framer: Framer,
    /// Bytes of its response framed so far (at the front of the read buffer).
    scan: usize,
    /// Part of its response went to the session already, on this stream.
    stream: Option<mpsc::Sender<Piped>>,
}

/// Parts of one large response a session may have queued.
const STREAM_SLOTS: usize = 4;

/// A pipe's worker: one connection, written and read in turn as requests and responses
/// arrive, until idle or broken.
///
/// New requests are written as soon as they arrive (when the server is still busy with
/// earlier ones, after letting the other ready sessions run once, so their reads join the
/// batch; when it is idle, at once, for latency), while fewer than
/// [`PIPE_DEPTH_MAX`] statements and [`PIPE_INFLIGHT_BYTES_MAX`] command bytes are in
/// flight; responses are read as soon as bytes come, and handed over in order. A
/// statement new to the connection is prepared once nothing is in flight (prepares are
/// rare: once per statement and pipe), and a frame larger than the byte bound is written
/// only then too, alone.
async fn work(set: Arc<PipeSet>, index: usize, mut rx: mpsc::Receiver<Queued>) {
    let pipe = &set.pipes[index];
    let pool = set.pool.clone();
    // Returning drops `rx`: queued requests are dropped and their sessions run them
    // elsewhere.
    let Some(_held) = Counted::try_add(&set.limits.pool_pipes, set.limits.pool_pipes_max) else { return };
    let conn = match open(&set, &pool).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(addr = %pool.addr, error = %e, "pipe could not open a connection");
            return;
        }
    };
    pipe.ready.store(true, Ordering::Release);
    let mut w = Worker {
        conn,
        set: set.clone(),
        head_since: pipe.head_since.clone(),
        inflight: VecDeque::with_capacity(PIPE_DEPTH_MAX),
        inflight_bytes: 0,
        waiting: VecDeque::new(),
    };
    let mut fresh = Vec::with_capacity(PIPE_BATCH_MAX);
    let outcome = loop {
        let room = PIPE_DEPTH_MAX.saturating_sub(w.inflight.len() + w.waiting.len());
        let step = if w.inflight.is_empty() {
            match tokio::time::timeout(PIPE_IDLE_EXIT, rx.recv_many(&mut fresh, PIPE_BATCH_MAX)).await {
                Ok(0) | Err(_) => break Ok(()),
                Ok(_) => w.accept(&mut fresh).await,
            }
        } else {
            tokio::select! {
                biased;
                r = w.conn.read_more() => match r {
                    Ok(()) => w.on_read().await,
                    Err(e) => Err(e),
                },
                n = rx.recv_many(&mut fresh, room.min(PIPE_BATCH_MAX)), if room > 0 => match n {
                    0 => break w.drain().await,
                    _ => {
                        // The server is still busy with what is in flight: let the other
                        // sessions that are ready run first, so their reads join this
                        // batch (fewer writes and server wake-ups per read).
                        tokio::task::yield_now().await;
                        while fresh.len() < room.min(PIPE_BATCH_MAX) {
                            match rx.try_recv() {
                                Ok(q) => fresh.push(q),
                                Err(_) => break,
                            }
                        }
                        w.accept(&mut fresh).await
                    }
                },
            }
        };
        if let Err(e) = step {
            break Err(e);
        }
    };
    pipe.ready.store(false, Ordering::Release);
    w.head_since.store(0, Ordering::Relaxed);
    if let Err(e) = outcome {
        tracing::debug!(addr = %pool.addr, error = %e, "pipe connection given up");
        // Everything in flight or waiting is dropped with the worker: sessions that got
        // nothing yet run their read elsewhere, the others close.
        w.conn.mark_broken();
    }
}

/// A pipe's connection and what is in flight on it.
struct Worker {
    conn: Lease,
    set: Arc<PipeSet>,
    head_since: Arc<AtomicU64>,
    inflight: VecDeque<InFlight>,
    /// Command bytes of the statements in flight.
    inflight_bytes: usize,
    /// Taken from the queue, not yet written (over the in-flight bounds).
    waiting: VecDeque<Queued>,
}

impl Worker {
    /// Takes `fresh` (emptying it) and writes what the in-flight bounds allow.
    async fn accept(&mut self, fresh: &mut Vec<Queued>) -> Result<(), ProxyError> {
        self.waiting.extend(fresh.drain(..));
        self.write_waiting().await
    }

    /// Writes waiting requests, in order, as far as the in-flight bounds allow: one batch,
    /// one write. A request that needs a quiet connection (a statement to prepare first, a
    /// large frame) waits until nothing is in flight.
    async fn write_waiting(&mut self) -> Result<(), ProxyError> {
        if self.inflight.front().is_some_and(|h| h.stream.is_some()) {
            // Taken from the queue while a response streams: given back (see `STREAMING`).
            self.waiting.clear();
            return Ok(());
        }
        let first_new = self.inflight.len();
        while let Some(next) = self.waiting.front() {
            let len = next.req.frame.len();
            let quiet =
                len > PIPE_INFLIGHT_BYTES_MAX || next.req.meta.as_ref().is_some_and(|m| !self.conn.has_prepared(m));
            if !self.inflight.is_empty() && (quiet || self.inflight_bytes + len > PIPE_INFLIGHT_BYTES_MAX) {
                break;
            }
            let mut q = self.waiting.pop_front().expect("front exists");
            if let Some(meta) = &q.req.meta {
                // Prepared here only when nothing is in flight (`quiet`), as the first of its
                // batch, so no later statement of the batch can close it again. Refused: dropped,
                // so the session's own path prepares again and reports the error.
                match self.conn.ensure_prepared(meta, self.set.limits.per_backend_max).await? {
                    Ok(id) => set_stmt_id(&mut q.req.frame[HEADER_BYTES..], id),
                    Err(_refused) => continue,
                }
            }
            self.inflight_bytes += len;
            let framer = Framer::new(Expect::Results, self.conn.deprecate_eof());
            self.inflight.push_back(InFlight { q, framer, scan: 0, stream: None });
            if quiet {
                break;
            }
        }
        if self.inflight.len() == first_new {
            return Ok(());
        }
        crate::metrics::pipe_batch(self.inflight.len() - first_new);
        let frames = self.inflight.range(first_new..).map(|f| &f.q.req.frame[..]);
        self.conn.send_frames(frames).await?;
        if first_new == 0 {
            self.mark_head();
        }
        Ok(())
    }

    /// Marks the statement whose response comes next as running (what `KILL QUERY`
    /// reaches).
    fn mark_head(&self) {
        match self.inflight.front() {
            Some(h) => {
                h.q.req.handle.set_running_shared(h.q.req.server, self.conn.thread_id);
                self.head_since.store(clock_micros(), Ordering::Relaxed);
            }
            None => self.head_since.store(0, Ordering::Relaxed),
        }
    }

    /// Hands over every response (or part) the bytes read so far complete, then writes
    /// what waited for room.
    async fn on_read(&mut self) -> Result<(), ProxyError> {
        while let Some(head) = self.inflight.front_mut() {
            match self.conn.advance(&mut head.framer, &mut head.scan)? {
                Advance::NeedMore => break,
                Advance::Part(bytes) => {
                    let stream = match &head.stream {
                        Some(tx) => tx.clone(),
                        None => {
                            let (tx, rx) = mpsc::channel(STREAM_SLOTS);
                            head.q.req.answer(Answer::Stream(rx));
                            head.stream = Some(tx.clone());
                            // Nothing new goes behind a stream (see `STREAMING`); what
                            // waits to be written runs elsewhere.
                            self.head_since.store(STREAMING, Ordering::Relaxed);
                            self.waiting.clear();
                            tx
                        }
                    };
                    // A session that went away still has its response consumed.
                    let _ = stream.send(Piped::Part(bytes)).await;
                }
                Advance::Done(mut out) => {
                    let mut done = self.inflight.pop_front().expect("head exists");
                    self.inflight_bytes -= done.q.req.frame.len();
                    self.mark_head();
                    let handle = &done.q.req.handle;
                    handle.set_running(None);
                    let kill_asked = handle.take_kill_query();
                    // (An ERR response carries no status.)
                    let in_trans = done.framer.status().is_some_and(|s| {
                        s & StatusFlags::SERVER_STATUS_IN_TRANS.bits() != 0
                            || s & StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits() == 0
                    });
                    if in_trans {
                        // The server runs this connection without autocommit: the read
                        // opened a transaction here. Its session runs it on a connection
                        // of its own; this set stops pipelining.
                        self.set.disabled.store(true, Ordering::Relaxed);
                        return Err(ProxyError::Unavailable("pipelined read ran inside a transaction".into()));
                    }
                    if done.framer.error == Some(ER_QUERY_INTERRUPTED) && !kill_asked && done.stream.is_none() {
                        // A `KILL QUERY` meant for the statement before landed on this one
                        // (the server had moved on): dropped, so it runs again.
                        continue;
                    }
                    let req = &mut done.q.req;
                    let timer = req.finished(done.framer.error);
                    if let Some(tx) = done.stream {
                        drop(tx.send(Piped::Done(copy_out(out), done.framer, timer)).await);
                        continue;
                    }
                    if let Some(client) = &req.client {
                        let sent = write_now(client, &out);
                        if sent == out.len() {
                            // Written: the statement is over.
                            drop(timer);
                            req.answer(Answer::Sent(done.framer));
                            continue;
                        }
                        out = out.split_off(sent);
                    }
                    req.answer(Answer::Done(copy_out(out), done.framer, timer));
                }
            }
        }
        self.write_waiting().await
    }

    /// Reads until nothing is in flight or waiting.
    async fn drain(&mut self) -> Result<(), ProxyError> {
        while !self.inflight.is_empty() {
            self.conn.read_more().await?;
            self.on_read().await?;
        }
        Ok(())
    }
}

/// A small response is copied out of the read buffer, so the buffer is reused while its
/// session writes it.
fn copy_out(out: BytesMut) -> BytesMut {
    if out.len() <= COPY_OUT_BYTES_MAX {
        BytesMut::from(&out[..])
    } else {
        out
    }
}

/// Writes what `client`'s socket takes of `bytes` without waiting; returns how much.
/// A socket that takes nothing or fails leaves the rest to the session, which waits for
/// its client or finds it gone.
fn write_now(client: &OwnedWriteHalf, bytes: &[u8]) -> usize {
    let mut at = 0;
    while at < bytes.len() {
        match client.try_write(&bytes[at..]) {
            Ok(n) if n > 0 => at += n,
            _ => break,
        }
    }
    crate::metrics::client_sent(at);
    at
}

/// A live pooled connection with the set's schema and no session variables.
async fn open(set: &PipeSet, pool: &ConnPool) -> Result<Lease, ProxyError> {
    let mut conn = pool.checkout_alive(false).await?;
    match conn.sync(&set.state, false, &set.charset).await? {
        super::conn::Ready::Yes => Ok(conn),
        super::conn::Ready::Refused(_) => Err(ProxyError::Unavailable("schema refused on a pipe connection".into())),
    }
}
