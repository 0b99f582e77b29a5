//! Where a session's statement runs: the router's choice turned into a leased backend
//! connection, the causal wait for read-your-writes, and learning the GTID of a write.

use std::fmt::Write as _;
use std::sync::Arc;

use super::session::{com, Session};
use crate::backend::conn::Ready;
use crate::backend::pool::{BackendPool, Held};
use crate::classify::{Classification, Kind};
use crate::error::ProxyError;
use crate::protocol::framer::Expect;
use crate::protocol::reply::first_value;
use crate::protocol::StatusFlags;
use crate::route::{is_read, route, GtidPos, Role, SessionView, Target};

/// Index of the primary in the routing table.
const PRIMARY: usize = 0;

/// Whether a committed statement changed data, so its GTID matters to later reads.
pub fn writes(c: &Classification) -> bool {
    !is_read(c)
        && !matches!(
            c.kind,
            Kind::SessionSet
                | Kind::Use
                | Kind::Show
                | Kind::TxnBegin
                | Kind::TxnBeginReadOnly
                | Kind::TxnCommit
                | Kind::TxnRollback
                | Kind::Savepoint
                | Kind::UnlockTables
                | Kind::Deallocate
                | Kind::LockingRead
        )
}

impl Session {
    /// The pool for `server`, created on first use.
    pub(super) fn pool(&mut self, server: usize) -> Arc<BackendPool> {
        if self.pools.len() <= server {
            self.pools.resize(server + 1, None);
        }
        if let Some(p) = &self.pools[server] {
            return p.clone();
        }
        let addr = self.proxy.routing.load().servers[server].addr.clone();
        let p = self.proxy.pools.get(&addr, &self.user, &self.credential, self.capabilities, self.collation);
        self.pools[server] = Some(p.clone());
        p
    }

    /// Forgets every pool (COM_CHANGE_USER switches account).
    pub(super) fn drop_pools(&mut self) {
        self.pools.clear();
        self.pipe_sets.clear();
    }

    async fn take(&mut self, server: usize) -> Result<(), ProxyError> {
        let pool = self.pool(server);
        let lease = pool.checkout_alive().await?;
        let in_flight = self.proxy.routing.load().servers[server].in_flight.clone();
        self.lease = Some(Held::new(server, lease, in_flight));
        Ok(())
    }

    /// Where a statement of class `class` goes now (the router's decision), and whether
    /// that is a replica.
    pub(super) fn target(&self, class: &Classification) -> (Target, bool) {
        // Decide under a short-lived guard; nothing is awaited while it is held.
        let table = self.proxy.routing.load();
        let view = SessionView {
            pinned_to: None,
            autocommit_off: self.status & StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits() == 0,
            last_write: self.last_gtid.as_ref().map(|(p, _)| p),
        };
        let target = route(class, &view, &table, &self.proxy.policy());
        let to_replica = matches!(target, Target::Server(id) if table.servers[id].role == Role::Replica);
        (target, to_replica)
    }

    /// Makes sure `self.lease` holds a connection on the server `class` belongs on.
    pub(super) async fn lease_for(&mut self, class: &Classification) -> Result<(), ProxyError> {
        if self.lease.is_some() {
            return Ok(());
        }
        let (target, to_replica) = self.target(class);
        match target {
            Target::Server(id) => match self.take(id).await {
                // A replica that just went away: reads fall back to the primary at once
                // instead of waiting for the health checker.
                Err(ProxyError::BackendConnect { .. } | ProxyError::PoolTimeout { .. }) if to_replica => {
                    self.take(PRIMARY).await
                }
                r => r,
            },
            Target::WaitThenServer(id) => {
                if self.take(id).await.is_ok() && self.causal_wait().await? {
                    return Ok(());
                }
                self.lease = None;
                self.take(PRIMARY).await
            }
            Target::Unavailable(msg) => Err(ProxyError::Unavailable(msg)),
        }
    }

    /// Waits (up to `causal_wait_ms`) for the leased replica to apply the session's last
    /// write; `false` when it did not in time.
    async fn causal_wait(&mut self) -> Result<bool, ProxyError> {
        let Some((_, gtid)) = self.last_gtid.clone() else { return Ok(true) };
        let Some(conn) = self.lease.as_mut() else { return Ok(false) };
        if let Ready::Refused(_) = conn.sync(&self.state, false, &self.default_charset).await? {
            return Ok(false);
        }
        let mut sql = String::with_capacity(64);
        let secs = self.proxy.routing_settings.causal_wait_ms as f64 / 1000.0;
        let _ = write!(sql, "SELECT MASTER_GTID_WAIT('{gtid}', {secs:.3})");
        let (framer, bytes) = conn.ask(com::QUERY, sql.as_bytes(), Expect::Results).await?;
        Ok(framer.error.is_none() && first_value(&bytes, conn.deprecate_eof()) == Some(Some(b"0".to_vec())))
    }

    /// After a statement on the primary: when a write became durable (autocommit, or the
    /// COMMIT of a transaction that wrote), learn its GTID for read-your-writes.
    pub(super) async fn track_write(
        &mut self,
        class: &Classification,
        failed: bool,
        status: Option<u16>,
    ) -> Result<(), ProxyError> {
        if failed || !self.proxy.tracks_writes() {
            return Ok(());
        }
        let Some(conn) = self.lease.as_mut() else { return Ok(()) };
        if conn.server != PRIMARY {
            return Ok(());
        }
        let wrote = writes(class);
        if status.is_some_and(|s| s & StatusFlags::SERVER_STATUS_IN_TRANS.bits() != 0) {
            self.txn_wrote |= wrote;
            return Ok(());
        }
        if !(wrote || self.txn_wrote) {
            return Ok(());
        }
        self.txn_wrote = false;
        let (_, bytes) = conn.ask(com::QUERY, b"SELECT @@last_gtid", Expect::Results).await?;
        if let Some(Some(v)) = first_value(&bytes, conn.deprecate_eof()) {
            // Only digits, '-' and ',' can appear; anything else is not a GTID.
            let text = String::from_utf8_lossy(&v).into_owned();
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b',') {
                self.last_gtid = Some((GtidPos::parse(&text), text));
            }
        }
        Ok(())
    }
}
