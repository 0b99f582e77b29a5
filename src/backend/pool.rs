//! One pool of backend connections ([`ConnPool`], bb8 underneath) and the leases taken
//! from it. Which pool a session uses, and the pipes beside each pool, are
//! [`super::pools`].

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bb8::{ManageConnection, PooledConnection, RunError};

use super::conn::{BackendConn, Target};
use super::Counted;
use crate::config::LimitsSection;
use crate::error::ProxyError;

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

    /// Checked when a lease comes back: a connection that cannot be used, or still holds
    /// a session's state (`needs_reset`), is closed instead of pooled.
    fn has_broken(&self, conn: &mut BackendConn) -> bool {
        conn.is_unusable() || conn.needs_reset || conn.keeps_history
    }
}

/// A checked-out connection; dropping it returns it to its pool.
pub type Lease = PooledConnection<'static, Manager>;

/// One pool: connections to one backend as one account with one wire format.
pub struct ConnPool {
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
}

impl ConnPool {
    /// A pool of connections to `target`, sized and timed by `[limits]`; nothing is
    /// opened before the first checkout.
    pub fn new(target: Target, l: &LimitsSection) -> ConnPool {
        let checkout_timeout = Duration::from_millis(l.checkout_timeout_ms);
        let pool = bb8::Pool::builder()
            .max_size(l.pool_connections_max)
            .min_idle((l.pool_connections_min > 0).then_some(l.pool_connections_min))
            .connection_timeout(checkout_timeout)
            .idle_timeout(Some(Duration::from_secs(l.pool_idle_timeout_s.max(1))))
            .retry_connection(false)
            .test_on_check_out(false)
            .build_unchecked(Manager { target: target.clone() });
        ConnPool {
            pool,
            addr: target.addr.clone(),
            target,
            connecting: Arc::new(AtomicUsize::new(0)),
            max: l.pool_connections_max,
            checkout_timeout,
        }
    }

    /// The most connections the pool opens.
    pub fn max(&self) -> u32 {
        self.max
    }

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

    /// Takes a pooled connection, skipping connections the server closed while they were
    /// idle (`probe_always`: check even a connection used a moment ago — a cluster leader's
    /// proxy can die between two statements, and a write sent to a dead one has an unknown
    /// outcome).
    pub async fn checkout_alive(&self, probe_always: bool) -> Result<Lease, ProxyError> {
        // A dead idle connection costs one extra checkout; bound the retries.
        const DEAD_IDLE_RETRIES_MAX: usize = 8;
        let mut tries = 0;
        loop {
            let mut l = self.checkout().await?;
            if l.is_alive(probe_always) || tries >= DEAD_IDLE_RETRIES_MAX {
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

/// A leased connection with the server it belongs to; counts as in flight on that server
/// (the router's least-loaded choice) until dropped.
pub struct Held {
    /// Routing-table index of the server.
    pub server: usize,
    /// The server was a shoal node's proxy when the lease was taken (a cluster leader's,
    /// for writes): it knows the LSN of a write sent through it.
    pub shoal: bool,
    lease: Lease,
    in_flight: Arc<AtomicU32>,
}

impl Held {
    /// Wraps a lease taken from `server`'s pool (`shoal`: see [`Held::shoal`]).
    pub fn new(server: usize, shoal: bool, lease: Lease, in_flight: Arc<AtomicU32>) -> Self {
        in_flight.fetch_add(1, Ordering::Relaxed);
        Held { server, shoal, lease, in_flight }
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
