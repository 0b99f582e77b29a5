//! Every backend pool of a proxy generation, one per (backend, user, credential, session
//! capabilities, collation): the relay forwards bytes untouched, so a connection can only
//! serve clients that agreed on the same wire format and account. Each pool has the pipes
//! of its plain reads beside it ([`super::pipeline::Pipes`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::conn::{BackendConn, Target};
use super::pipeline::{PipeSet, Pipes};
use super::pool::{ConnPool, Lease};
use super::tls::BackendTls;
use crate::config::LimitsSection;
use crate::error::ProxyError;
use crate::protocol::auth::Credential;
use crate::protocol::handshake::{BACKEND_BASE_CAPABILITIES, SESSION_CAPABILITIES};
use crate::protocol::CapabilityFlags;

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

/// A pool and its pipes.
pub struct BackendPool {
    /// The connections.
    pub conns: Arc<ConnPool>,
    /// Pipes for plain reads, by schema.
    pub pipes: Pipes,
    /// host:port.
    pub addr: Arc<str>,
}

impl BackendPool {
    /// Takes a pooled connection the server has not closed (see [`ConnPool::checkout_alive`]).
    pub async fn checkout_alive(&self, probe_always: bool) -> Result<Lease, ProxyError> {
        self.conns.checkout_alive(probe_always).await
    }

    /// Takes a connection, waiting up to `checkout_timeout_ms`.
    pub async fn checkout(&self) -> Result<Lease, ProxyError> {
        self.conns.checkout().await
    }

    /// The pipes for sessions in `schema` whose connections use `charset` by default;
    /// `None` when pipelining is off.
    pub fn pipes(&self, schema: &Option<String>, charset: &str) -> Option<Arc<PipeSet>> {
        self.pipes.set(schema, charset)
    }

    /// Pipes holding a connection now (introspection).
    pub fn pipes_ready(&self) -> usize {
        self.pipes.ready()
    }

    /// Whether a pipe set stopped pipelining (the server runs reads inside transactions).
    pub fn pipes_disabled(&self) -> bool {
        self.pipes.disabled()
    }

    /// Connections open / idle.
    pub fn state(&self) -> bb8::State {
        self.conns.state()
    }
}

/// Every pool of the process.
pub struct Pools {
    map: Mutex<HashMap<PoolKey, Arc<BackendPool>>>,
    limits: LimitsSection,
    /// `[backends] tls`, put in every target this generation builds.
    tls: Arc<BackendTls>,
}

impl Pools {
    /// No pools yet; they are created on first use.
    pub fn new(limits: LimitsSection, tls: Arc<BackendTls>) -> Self {
        Pools { map: Mutex::new(HashMap::new()), limits, tls }
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
        let target = self.target(addr, user, cred, caps, collation);
        let conns = Arc::new(ConnPool::new(target, l));
        let pipes = Pipes::new(conns.clone(), l);
        let p = Arc::new(BackendPool { conns, pipes, addr: addr.clone() });
        map.insert(key, p.clone());
        p
    }

    /// Where and how connections for a client's account and wire format on `addr` log in.
    pub fn target(
        &self,
        addr: &Arc<str>,
        user: &str,
        cred: &Credential,
        caps: CapabilityFlags,
        collation: u8,
    ) -> Target {
        Target {
            addr: addr.clone(),
            user: user.to_string(),
            credential: cred.clone(),
            capabilities: BACKEND_BASE_CAPABILITIES | (caps & SESSION_CAPABILITIES),
            collation,
            connect_timeout: Duration::from_millis(self.limits.connect_timeout_ms),
            relayed: None,
            tls: self.tls.clone(),
        }
    }

    /// A pool of one session's own, holding the connection its relayed login opened
    /// (`BackendConn::relay_login`): nothing else can log in as that account, so the
    /// session keeps this one connection (not counted among the shared pools).
    pub fn relayed(&self, conn: BackendConn) -> Arc<BackendPool> {
        let mut l = self.limits.clone();
        l.pool_connections_max = 1;
        l.pool_connections_min = 0;
        l.pipes_per_pool = 0;
        let target = conn.login().clone();
        let conns = Arc::new(ConnPool::new(target, &l));
        if conns.pool.add(conn).is_err() {
            tracing::warn!("a relayed login's connection did not fit its own pool");
        }
        let pipes = Pipes::new(conns.clone(), &l);
        Arc::new(BackendPool { addr: conns.addr.clone(), conns, pipes })
    }

    /// A snapshot of every pool, for status and metrics.
    pub fn all(&self) -> Vec<Arc<BackendPool>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}
