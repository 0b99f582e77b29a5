//! Live sessions by connection id, so `KILL [QUERY] id` (and the CLI's Ctrl-C, which sends
//! `KILL QUERY id` on a second connection) reaches the backend connection running the
//! target's statement, and `SHOW PROCESSLIST` lists shoal's sessions with the ids their
//! clients know.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::limits::IdleCause;

/// Marks a running statement on a pipe's shared connection (top bit of `running`).
const SHARED: u64 = 1 << 63;

/// What another session needs to know to kill this one.
#[derive(Debug, Default)]
pub struct SessionHandle {
    /// The account, for the privilege check (MariaDB lets users kill their own threads).
    pub user: String,
    /// The client's address as `SHOW PROCESSLIST` prints it (`host:port`).
    pub host: String,
    /// The session's schema, for `SHOW PROCESSLIST` (updated on `USE`).
    pub schema: Mutex<Option<String>>,
    /// When the session's current command began, or its last one ended, in seconds of
    /// the coarse clock ([`coarse_now_s`]), with [`BUSY`] set while a command runs;
    /// `SHOW PROCESSLIST`'s `Time`, and what the idle sweep reads.
    since: AtomicU64,
    /// Seconds the client may stay idle (`wait_timeout`, or `transaction_idle_timeout_s`
    /// inside a transaction), for the idle sweep.
    idle_limit_s: AtomicU64,
    /// The limit in `idle_limit_s` is the transaction one: a session the sweep ends is
    /// counted as an idle transaction ended.
    idle_in_transaction: AtomicBool,
    /// Closes the client's socket (shut down both ways: a read waiting on it ends at
    /// once). Set by the frontend for plain-TCP clients; without it a session is woken
    /// through `pipe_wake`.
    closer: OnceLock<Closer>,
    /// Backend running a statement for the session right now: routing-table index in the
    /// high 32 bits, backend thread id in the low 32 (0 = nothing running). One atomic, so
    /// the per-statement cost is two stores.
    running: AtomicU64,
    /// Set by `KILL CONNECTION`: the session closes before its next command.
    killed: AtomicBool,
    /// Set by `KILL QUERY` before it reaches the backend, so a pipe can tell an
    /// interruption meant for this session from one that hit it by accident.
    kill_query: AtomicBool,
    /// Wakes a session waiting for its client: a pipe writing the session's read answers
    /// anything but `Sent` (the rest of a response the socket did not take, a streamed
    /// result, the read given back; see `crate::backend::pipeline::Request`), or
    /// `KILL CONNECTION` targets it (it closes at once, as MariaDB closes a killed idle
    /// connection).
    pub pipe_wake: tokio::sync::Notify,
}

/// Closes a client's socket (see `SessionHandle::closer`).
pub struct Closer(pub Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Closer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Closer")
    }
}

/// `since` of a session running a command.
const BUSY: u64 = 1 << 63;

/// Seconds since the process's first look at the clock, advanced by [`Registry::sweep`]
/// once a second: sessions stamp their commands with it for the price of a load (no clock
/// read on the hot path); one second is all `wait_timeout` and `Time` need.
static COARSE_NOW_S: AtomicU64 = AtomicU64::new(0);

fn coarse_now_s() -> u64 {
    COARSE_NOW_S.load(Ordering::Relaxed)
}

/// Advances the coarse clock.
fn tick_coarse_clock() {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    COARSE_NOW_S.store(EPOCH.get_or_init(Instant::now).elapsed().as_secs(), Ordering::Relaxed);
}

/// How often the idle sweep runs.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl SessionHandle {
    /// A handle for a session of `user` connected from `host`, in `schema`.
    pub fn new(user: String, host: String, schema: Option<String>) -> Self {
        SessionHandle {
            user,
            host,
            schema: Mutex::new(schema),
            since: AtomicU64::new(coarse_now_s()),
            idle_limit_s: AtomicU64::new(u64::MAX),
            ..Default::default()
        }
    }

    /// A command begins.
    pub fn command_started(&self) {
        self.since.store(BUSY | coarse_now_s(), Ordering::Relaxed);
    }

    /// The command ended: the session is idle from now.
    pub fn command_ended(&self) {
        self.since.store(coarse_now_s(), Ordering::Relaxed);
    }

    /// Seconds since the current command began or the last one ended.
    pub fn idle_secs(&self) -> u64 {
        coarse_now_s().saturating_sub(self.since.load(Ordering::Relaxed) & !BUSY)
    }

    /// Sets how long the client may stay idle before the sweep disconnects it, and why
    /// ([`super::limits::idle_limit_s`]).
    pub fn set_idle_limit(&self, secs: u64, cause: IdleCause) {
        self.idle_limit_s.store(secs, Ordering::Relaxed);
        self.idle_in_transaction.store(cause == IdleCause::Transaction, Ordering::Relaxed);
    }

    /// Gives the frontend's way to close the client's socket.
    pub fn set_closer(&self, close: Closer) {
        let _ = self.closer.set(close);
    }

    /// Whether the session waits for its client's next command (no command running).
    fn is_idle(&self) -> bool {
        self.since.load(Ordering::Relaxed) & BUSY == 0
    }

    /// Ends an idle session now: its socket is closed (or, without a closer, it is woken
    /// to find itself killed). A session running a command closes before its next one.
    fn close_if_idle(&self) {
        if !self.is_idle() {
            return;
        }
        match self.closer.get() {
            Some(close) => (close.0)(),
            None => self.pipe_wake.notify_one(),
        }
    }

    /// Records the session's schema.
    pub fn set_schema(&self, schema: Option<String>) {
        *self.schema.lock().unwrap_or_else(|p| p.into_inner()) = schema;
    }

    /// The session's schema.
    pub fn schema(&self) -> Option<String> {
        self.schema.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// Records the backend (routing-table index, thread id) now running the session's
    /// statement, or `None` when it finished.
    pub fn set_running(&self, at: Option<(usize, u32)>) {
        let v = at.map_or(0, |(server, thread)| (server as u64) << 32 | thread as u64);
        self.running.store(v, Ordering::Relaxed);
    }
    /// Records that the session's statement runs next on a pipe's shared connection
    /// (routing-table index, thread id): `KILL CONNECTION` must not close that one.
    pub fn set_running_shared(&self, server: usize, thread: u32) {
        let v = SHARED | (server as u64) << 32 | thread as u64;
        self.running.store(v, Ordering::Relaxed);
    }

    /// The backend (routing-table index, thread id) running the session's statement.
    pub fn running(&self) -> Option<(usize, u32)> {
        match self.running.load(Ordering::Relaxed) & !SHARED {
            0 => None,
            v => Some(((v >> 32) as usize, v as u32)),
        }
    }

    /// Whether the running statement is on a connection shared with other sessions.
    pub fn running_shared(&self) -> bool {
        self.running.load(Ordering::Relaxed) & SHARED != 0
    }
    /// Records that a `KILL QUERY` for this session is on its way to the backend.
    pub fn ask_kill_query(&self) {
        self.kill_query.store(true, Ordering::Relaxed);
    }

    /// Whether a `KILL QUERY` was asked for since the last call (and forgets it).
    pub fn take_kill_query(&self) -> bool {
        // A load first: the flag is almost never set, and a plain load is cheaper.
        self.kill_query.load(Ordering::Relaxed) && self.kill_query.swap(false, Ordering::Relaxed)
    }

    /// Marks the session for closing; an idle one is closed at once.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.close_if_idle();
    }
    /// Whether `KILL CONNECTION` targeted this session.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }
}

/// Sessions by shoal connection id.
#[derive(Debug, Default)]
pub struct Registry {
    map: Mutex<HashMap<u32, Arc<SessionHandle>>>,
}

impl Registry {
    /// Adds a session until the returned guard is dropped.
    pub fn register(&self, id: u32, handle: Arc<SessionHandle>) -> Registered<'_> {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).insert(id, handle);
        Registered { registry: self, id }
    }
    /// Removes a session.
    pub fn remove(&self, id: u32) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
    /// Finds a session.
    pub fn get(&self, id: u32) -> Option<Arc<SessionHandle>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }
    /// Advances the coarse clock and closes sessions idle past their limit (`wait_timeout`,
    /// or `transaction_idle_timeout_s` with a transaction open), as MariaDB does; runs
    /// every [`SWEEP_INTERVAL`] for the life of the proxy. Returns how many of the sessions
    /// it closed held a transaction (their close rolls it back).
    pub fn sweep(&self) -> usize {
        tick_coarse_clock();
        let mut transactions = 0;
        for (_, h) in self.all() {
            if h.is_idle() && h.idle_secs() >= h.idle_limit_s.load(Ordering::Relaxed) {
                let in_transaction = h.idle_in_transaction.load(Ordering::Relaxed);
                let why = if in_transaction { "transaction_idle_timeout_s" } else { "wait_timeout" };
                tracing::debug!(user = %h.user, host = %h.host, idle_s = h.idle_secs(), "client idle past {why}: disconnecting");
                h.killed.store(true, Ordering::Relaxed);
                h.close_if_idle();
                transactions += usize::from(in_transaction);
            }
        }
        transactions
    }

    /// Every session, by id.
    pub fn all(&self) -> Vec<(u32, Arc<SessionHandle>)> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = map.iter().map(|(id, h)| (*id, h.clone())).collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
    /// True when none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keeps a session in the [`Registry`] while alive.
pub struct Registered<'a> {
    registry: &'a Registry,
    id: u32,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}
