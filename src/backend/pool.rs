//! Pools of backend connections, one per (backend, user, credential, session
//! capabilities, collation): the relay forwards bytes untouched, so a connection can
//! only serve clients that agreed on the same wire format and account.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bb8::{ManageConnection, PooledConnection, RunError};

use super::conn::{BackendConn, Target};
use super::pipeline::{PipeLimits, PipeSet};
use super::Counted;
use crate::config::LimitsSection;
use crate::error::ProxyError;
use crate::protocol::auth::Credential;
use crate::protocol::handshake::{BACKEND_BASE_CAPABILITIES, SESSION_CAPABILITIES};
use crate::protocol::CapabilityFlags;

/// bb8's view of a backend.
#[derive(Debug)]
pub struct Manager {
    target: Target,
}

impl ManageConnection for Manager {
    type Connection = BackendConn;
    type Error = ProxyError;

    async fn connect(&self) -> Result<BackendConn, ProxyError> {
        BackendConn::connect(&self.target).await
    }

    async fn is_valid(&self, _conn: &mut BackendConn) -> Result<(), ProxyError> {
        // Not called: test_on_check_out is off (a round trip per statement is too dear);
        // a dead connection fails its next command and is discarded.
        Ok(())
    }

    fn has_broken(&self, conn: &mut BackendConn) -> bool {
        conn.is_unusable()
    }
}

/// A checked-out connection; dropping it returns it to its pool.
pub type Lease = PooledConnection<'static, Manager>;

/// What identifies a pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// host:port.
    pub addr: Arc<str>,
    /// Account.
    pub user: String,
    /// `SHA1(SHA1(password))`, so a changed password gets fresh connections.
    pub stage2: Option<[u8; 20]>,
    /// The client's session capabilities (masked with [`SESSION_CAPABILITIES`]).
    pub capabilities: u32,
    /// Handshake collation.
    pub collation: u8,
}

/// One pool.
pub struct BackendPool {
    /// The connections.
    pub pool: bb8::Pool<Manager>,
    /// Where and how new connections are opened (see [`BackendPool::checkout`]).
    target: Target,
    /// Foreground connects in flight (bounded by the room left in the pool).
    connecting: Arc<AtomicUsize>,
    /// host:port.
    pub addr: Arc<str>,
    /// Size limit, for error messages.
    max: u32,
    /// Checkout wait limit, for error messages.
    checkout_timeout: Duration,
    /// Pipes for plain reads, by schema (see [`super::pipeline`]).
    pipes: Mutex<HashMap<Option<String>, Arc<PipeSet>>>,
    /// Pipes per schema (0: pipelining off).
    pipes_per_pool: usize,
    /// Statements prepared per backend connection.
    prepared_per_backend_max: usize,
    /// `[limits] pipe_stall_ms`.
    pipe_stall: Duration,
    /// Connections held by pipes (all schemas).
    pipe_conns: Arc<AtomicUsize>,
}

impl BackendPool {
    /// Takes a connection, waiting up to `checkout_timeout_ms`.
    pub async fn checkout(&self) -> Result<Lease, ProxyError> {
        let _wait = crate::metrics::checkout_wait();
        // bb8 opens missing connections in the background and reports failures only to
        // its error sink, so a waiter on a dead backend would sit out the whole checkout
        // timeout. Opening the connection here instead makes a dead backend fail this
        // statement at once (the router then falls back or reports it).
        let st = self.pool.state();
        let room = self.max.saturating_sub(st.connections);
        if st.idle_connections == 0 && room > 0 {
            // At most `room` connects in flight, so a burst of logins does not open (and
            // then throw away) a connection each.
            if let Some(_slot) = Counted::try_add(&self.connecting, room as usize) {
                let conn = BackendConn::connect(&self.target).await?;
                // If the pool filled up meanwhile, the connection is simply closed.
                let _ = self.pool.add(conn);
            }
        }
        match self.pool.get_owned().await {
            Ok(c) => Ok(c),
            Err(RunError::User(e)) => Err(e),
            Err(RunError::TimedOut) => Err(ProxyError::PoolTimeout {
                addr: self.addr.to_string(),
                waited_ms: self.checkout_timeout.as_millis() as u64,
                max: self.max,
            }),
        }
    }

    /// The pipes for sessions in `schema` whose connections use `charset` by default;
    /// `None` when pipelining is off. All pipes of the pool together hold at most half of
    /// it, so statements that need a connection of their own always find room.
    pub fn pipes(&self, schema: &Option<String>, charset: &str) -> Option<Arc<PipeSet>> {
        let pool_pipes_max = self.max as usize / 2;
        if self.pipes_per_pool == 0 || pool_pipes_max == 0 {
            return None;
        }
        let mut map = self.pipes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = map.get(schema) {
            return Some(set.clone());
        }
        let limits = PipeLimits {
            pipes: self.pipes_per_pool.min(pool_pipes_max),
            pool_pipes: self.pipe_conns.clone(),
            pool_pipes_max,
            per_backend_max: self.prepared_per_backend_max,
            stall: self.pipe_stall,
        };
        let set = Arc::new(PipeSet::new(schema.clone(), charset.to_string(), limits));
        map.insert(schema.clone(), set.clone());
        Some(set)
    }

    /// Pipes holding a connection now, over every schema (introspection).
    pub fn pipes_ready(&self) -> usize {
        let map = self.pipes.lock().unwrap_or_else(|p| p.into_inner());
        map.values().map(|set| set.ready()).sum()
    }

    /// Whether a pipe set of this pool stopped pipelining (the server runs reads inside
    /// transactions).
    pub fn pipes_disabled(&self) -> bool {
        let map = self.pipes.lock().unwrap_or_else(|p| p.into_inner());
        map.values().any(|set| set.is_disabled())
    }

    /// Takes a pooled connection, skipping connections the server closed while they were
    /// idle.
    pub async fn checkout_alive(&self) -> Result<Lease, ProxyError> {
        // A dead idle connection costs one extra checkout; bound the retries.
        const DEAD_IDLE_RETRIES_MAX: usize = 8;
        let mut tries = 0;
        loop {
            let mut l = self.checkout().await?;
            if l.is_alive() || tries >= DEAD_IDLE_RETRIES_MAX {
                return Ok(l);
            }
            l.mark_broken();
            tries += 1;
        }
    }

    /// Connections open / idle.
    pub fn state(&self) -> bb8::State {
        self.pool.state()
    }
}

/// Every pool of the process.
pub struct Pools {
    map: Mutex<HashMap<PoolKey, Arc<BackendPool>>>,
    limits: LimitsSection,
}

impl Pools {
    /// No pools yet; they are created on first use.
    pub fn new(limits: LimitsSection) -> Self {
        Pools { map: Mutex::new(HashMap::new()), limits }
    }

    /// The pool for a client's account and wire format on backend `addr`.
    pub fn get(
        &self,
        addr: &Arc<str>,
        user: &str,
        cred: &Credential,
        caps: CapabilityFlags,
        collation: u8,
    ) -> Arc<BackendPool> {
        let session_caps = caps & SESSION_CAPABILITIES;
        let key = PoolKey {
            addr: addr.clone(),
            user: user.to_string(),
            stage2: cred.stage2(),
            capabilities: session_caps.bits(),
            collation,
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get(&key) {
            return p.clone();
        }
        let l = &self.limits;
        let target = Target {
            addr: addr.clone(),
            user: user.to_string(),
            credential: cred.clone(),
            capabilities: BACKEND_BASE_CAPABILITIES | session_caps,
            collation,
            connect_timeout: Duration::from_millis(l.connect_timeout_ms),
        };
        let checkout_timeout = Duration::from_millis(l.checkout_timeout_ms);
        let pool = bb8::Pool::builder()
            .max_size(l.pool_connections_max)
            .min_idle((l.pool_connections_min > 0).then_some(l.pool_connections_min))
            .connection_timeout(checkout_timeout)
            .idle_timeout(Some(Duration::from_secs(l.pool_idle_timeout_s.max(1))))
            .retry_connection(false)
            .test_on_check_out(false)
            .build_unchecked(Manager { target: target.clone() });
        let p = Arc::new(BackendPool {
            pool,
            target,
            connecting: Arc::new(AtomicUsize::new(0)),
            addr: addr.clone(),
            max: l.pool_connections_max,
            checkout_timeout,
            pipes: Mutex::new(HashMap::new()),
            pipes_per_pool: l.pipes_per_pool as usize,
            prepared_per_backend_max: l.prepared_per_backend_max as usize,
            pipe_stall: Duration::from_millis(l.pipe_stall_ms),
            pipe_conns: Arc::new(AtomicUsize::new(0)),
        });
        map.insert(key, p.clone());
        p
    }

    /// A snapshot of every pool, for status and metrics.
    pub fn all(&self) -> Vec<Arc<BackendPool>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}

/// A leased connection with the server it belongs to; counts as in flight on that server
/// (the router's least-loaded choice) until dropped.
pub struct Held {
    /// Routing-table index of the server.
    pub server: usize,
    lease: Lease,
    in_flight: Arc<AtomicU32>,
}

impl Held {
    /// Wraps a lease taken from `server`'s pool.
    pub fn new(server: usize, lease: Lease, in_flight: Arc<AtomicU32>) -> Self {
        in_flight.fetch_add(1, Ordering::Relaxed);
        Held { server, lease, in_flight }
    }
}

impl std::ops::Deref for Held {
    type Target = BackendConn;
    fn deref(&self) -> &BackendConn {
        &self.lease
    }
}

impl std::ops::DerefMut for Held {
    fn deref_mut(&mut self) -> &mut BackendConn {
        &mut self.lease
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
