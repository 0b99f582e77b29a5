//! A session's hold on backend connections: the pools it uses (one per server, created on
//! first use), the connection it holds now and why ([`Pin`]), and where its statements go
//! — the router's choice turned into a leased connection, the causal wait for
//! read-your-writes, and learning the GTID of a write.

use std::fmt::Write as _;
use std::sync::Arc;

use super::account::Account;
use super::Proxy;
use crate::backend::conn::Ready;
use crate::backend::pool::Held;
use crate::backend::pools::BackendPool;
use crate::classify::{Classification, Flags, Kind};
use crate::error::ProxyError;
use crate::protocol::com;
use crate::protocol::framer::Expect;
use crate::protocol::reply::first_value;
use crate::protocol::StatusFlags;
use crate::route::{is_read, route, Consistency, GtidPos, SessionView, Target};
use crate::session::state::SessionState;
use crate::session::Pin;

/// How often a statement waiting for a leader (`failover_buffer_ms`) looks again.
pub const FAILOVER_POLL: std::time::Duration = std::time::Duration::from_millis(25);

/// What a session asks shoal for the LSN of its last write; shoal answers it itself
/// (`frontend::answers`), a MariaDB refuses it (unknown variable).
pub const LAST_LSN_SQL: &str = "SELECT @@shoal_last_lsn";

/// A COM_QUERY `payload` (command byte first) with `/*shoal:lsn=N*/ ` in front of its SQL,
/// so the shoal node that runs it waits until it applied `lsn` (the hint must lead: it is
/// read from the first comment only).
pub fn with_lsn_hint(payload: &[u8], lsn: u64) -> bytes::BytesMut {
    let hint = format!("/*shoal:lsn={lsn}*/ ");
    let mut out = bytes::BytesMut::with_capacity(payload.len() + hint.len());
    out.extend_from_slice(&payload[..1]);
    out.extend_from_slice(hint.as_bytes());
    out.extend_from_slice(&payload[1..]);
    out
}

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

/// shoal's XA transaction on the session's leader connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenXa {
    /// Its xid (`shoal-<node>-<epoch>-<seq>`).
    pub xid: String,
    /// A statement that may write ran in it: COMMIT prepares and waits for durability
    /// (else it commits one-phase, which binlogs nothing).
    pub wrote: bool,
    /// Counts it among the capture's open transactions ([`crate::capture::Capture::open_token`]).
    pub open: Arc<()>,
}

/// Whether `class` run on `server` would write to a cluster node's own MariaDB with
/// capture off (while the node changes role), or open a read-write transaction there
/// (`BEGIN`): it would change only this node, so such a statement waits instead
/// (`Leases::lease_for`, and the XA step in `xa.rs`). A `BEGIN` sent there plainly would
/// hold the transaction's writes outside XA once capture starts, and they would commit
/// on this node before any quorum had them (chaos seed 744698: transfers committed on a
/// node about to lead, replicated after the fact with its stale row images).
pub fn escapes_capture(proxy: &Proxy, class: &Classification, server: &crate::route::Server) -> bool {
    server.follows_log && (writes(class) || class.kind == Kind::TxnBegin) && proxy.capture.load().is_none()
}

/// The session's backend side.
#[derive(Default)]
pub struct Leases {
    /// Pools by routing-table index, created on first use.
    pools: Vec<Option<Arc<BackendPool>>>,
    /// The backend connection held right now (during a statement, or while pinned).
    pub held: Option<Held>,
    /// Why `held` is kept between statements.
    pub pin: Pin,
    /// Client statement with an open cursor (on `held`).
    pub cursor: Option<u32>,
    /// Last status flags from a backend, for answers shoal gives itself.
    pub status: u16,
    /// GTID of the session's last committed write (parsed, and as the server wrote it).
    pub last_gtid: Option<(GtidPos, String)>,
    /// Cluster LSN of the session's last durable write (its own commit on the leader, or
    /// learned from the leader's proxy after a forwarded write), or the highest LSN the
    /// client named in a `/*shoal:lsn=N*/` hint.
    pub last_lsn: Option<u64>,
    /// The open transaction has written: its COMMIT must record a GTID.
    pub txn_wrote: bool,
    /// shoal's XA transaction open on `held` (capture on): its xid, and whether it wrote.
    pub xa: Option<OpenXa>,
    /// A statement shoal sends right before the session's next command, pipelined in the
    /// same round trip (`XA START` of a wrapped autocommit write).
    pub send_first: Option<String>,
    /// The session's own pool, when its login was relayed to the server: it holds the
    /// session's only connection, on the leader, and every statement runs there.
    pub own: Option<Arc<BackendPool>>,
    /// `held` is kept (no pin) only because the session's last statement left warnings or
    /// an error there, which its next statement may read (`SHOW WARNINGS`, …).
    pub diagnostics: bool,
    /// The statement being leased is a write that goes without XA because this cluster
    /// node did not capture when it was decided (it forwards writes to the leader's
    /// proxy): it must not land on this node's own MariaDB, where it would change this
    /// node alone ([`Leases::escapes_to_own_mariadb`]).
    pub forwarded_only: bool,
    /// The pipelined `XA START` of the statement running now was refused because an XA
    /// was already active on the connection: the statement ran inside it, uncommitted
    /// (`Session::xa_start_failed`).
    pub ran_in_unknown_xa: bool,
    /// The leader's commit point a `"global"` read learnt for the statement being leased:
    /// if the read falls back to the leader's proxy, it names this LSN there
    /// (`/*shoal:lsn=N*/`), as the session's own last write is named.
    pub read_floor: Option<u64>,
}

impl Leases {
    /// Nothing held; autocommit on, as a fresh server connection reports.
    pub fn new() -> Leases {
        Leases { status: StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits(), ..Default::default() }
    }

    /// After a lease: whether a [`Leases::forwarded_only`] write got this node's own
    /// MariaDB (the node became the leader while the write waited). Clears the flag.
    pub fn escapes_to_own_mariadb(&mut self) -> bool {
        std::mem::take(&mut self.forwarded_only) && self.held.as_ref().is_some_and(|h| !h.shoal)
    }

    /// The connection held now (callers lease first).
    pub fn conn(&mut self) -> &mut Held {
        self.held.as_mut().expect("a connection is leased at this point")
    }

    /// Whether the held connection's server is the leader (for metrics).
    pub fn on_follower(&self, proxy: &Proxy) -> bool {
        self.held.as_ref().is_some_and(|h| !proxy.routing.load().is_leader(h.server))
    }

    /// Whether the server reported autocommit on.
    pub fn autocommit(&self) -> bool {
        self.status & StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits() != 0
    }

    /// Returns the connection to its pool unless a pin reason holds; a pinned one is
    /// marked as holding session state (reset before anyone else may use it).
    pub fn release_if_free(&mut self) {
        self.finish(false);
    }

    /// After a client statement: keeps the connection while a pin reason holds, or (with
    /// no pin) while the statement's diagnostics may be read next; else gives it back.
    ///
    /// | pin | statement left warnings/error | connection |
    /// |---|---|---|
    /// | holds | any | kept, marked `needs_reset` |
    /// | free | yes | kept for diagnostics (given back before a statement that does not read them) |
    /// | free | no | back to the pool |
    pub fn finish(&mut self, left_diagnostics: bool) {
        let Some(conn) = self.held.as_mut() else {
            self.diagnostics = false;
            return;
        };
        if !self.pin.is_free() {
            conn.needs_reset = true;
            return;
        }
        // Everything pinned ended (COMMIT, UNLOCK TABLES, …): nothing of the session stays.
        conn.needs_reset = false;
        self.diagnostics = left_diagnostics;
        if !left_diagnostics {
            self.held = None;
        }
    }

    /// Before a client statement: a connection kept only for the last statement's
    /// diagnostics goes back unless this statement reads them.
    pub fn before(&mut self, reads_diagnostics: bool) {
        if self.diagnostics && !reads_diagnostics {
            self.diagnostics = false;
            if self.pin.is_free() {
                self.held = None;
            }
        }
    }

    /// Forgets the held connection and everything that lived on it (a transaction,
    /// locks, a cursor): after a lost backend, or a reset.
    pub fn forget_connection_state(&mut self) {
        self.held = None;
        self.diagnostics = false;
        self.pin = Pin::default();
        if self.own.is_some() {
            self.pin.add(Pin::RELAYED_LOGIN);
        }
        self.cursor = None;
        self.txn_wrote = false;
        self.xa = None;
        self.send_first = None;
        self.status = StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits();
    }

    /// The pool for `server`, created on first use.
    pub fn pool(&mut self, proxy: &Proxy, account: &Account, server: usize) -> Arc<BackendPool> {
        if let Some(own) = &self.own {
            return own.clone();
        }
        if self.pools.len() <= server {
            self.pools.resize(server + 1, None);
        }
        if let Some(p) = &self.pools[server] {
            return p.clone();
        }
        let addr = proxy.routing.load().servers[server].addr.clone();
        let p = proxy.pools.get(&addr, &account.user, &account.credential, account.capabilities, account.collation);
        self.pools[server] = Some(p.clone());
        p
    }

    /// Forgets every pool (COM_CHANGE_USER switches account).
    pub fn drop_pools(&mut self) {
        self.pools.clear();
        self.own = None;
        self.pin.remove(Pin::RELAYED_LOGIN);
    }

    /// Makes `pool` (holding the connection of a relayed login) the session's only one.
    pub fn use_own_pool(&mut self, pool: Arc<BackendPool>) {
        self.own = Some(pool);
        self.pin.add(Pin::RELAYED_LOGIN);
    }

    async fn take(&mut self, proxy: &Proxy, account: &Account, server: usize) -> Result<(), ProxyError> {
        let pool = self.pool(proxy, account, server);
        let (shoal, in_flight, addr) = {
            let s = &proxy.routing.load().servers[server];
            (s.shoal, s.in_flight.clone(), s.addr.clone())
        };
        let lease = if shoal {
            // A leader's proxy that stopped answering (a frozen process accepts TCP but
            // never greets) would hold the checkout until the connect timeout: given up,
            // like a statement forwarded to it, once that leader is known replaced and
            // unreachable. Nothing was sent, so the caller leases again (the new leader).
            let mut cut = proxy.unreachable_leader.subscribe();
            tokio::select! {
                lease = pool.checkout_alive(shoal) => lease?,
                _ = cut.wait_for(|a| a.as_deref() == Some(&*addr)) => {
                    return Err(ProxyError::Unavailable(format!(
                        "the leader's proxy {addr} was replaced by a new leader and does not answer (retry on the new one)"
                    )))
                }
            }
        } else {
            pool.checkout_alive(shoal).await?
        };
        if shoal {
            crate::metrics::forwarded();
        }
        self.held = Some(Held::new(server, shoal, lease, in_flight));
        Ok(())
    }

    /// Takes a connection on the leader.
    async fn take_leader(&mut self, proxy: &Proxy, account: &Account) -> Result<(), ProxyError> {
        let leader = proxy.routing.load().leader().map(|l| l.id);
        match leader {
            Some(id) => self.take(proxy, account, id).await,
            None => Err(ProxyError::Unavailable("no leader is known: writes are unavailable".into())),
        }
    }

    /// Where a statement of class `class` goes now (the router's decision), and whether
    /// that is a server other than the leader.
    pub fn target(&self, proxy: &Proxy, class: &Classification) -> (Target, bool) {
        // Decide under a short-lived guard; nothing is awaited while it is held.
        let table = proxy.routing.load();
        if self.own.is_some() {
            return match table.leader() {
                Some(l) => (Target::Server(l.id), false),
                None => (Target::Unavailable("no leader is known".into()), false),
            };
        }
        let view = SessionView {
            pinned_to: None,
            autocommit_off: !self.autocommit(),
            last_write: self.last_gtid.as_ref().map(|(p, _)| p),
            last_lsn: self.last_lsn,
        };
        let target = route(class, &view, &table, &proxy.policy());
        let to_follower = matches!(target, Target::Server(id) if table.servers[id].role.serves_reads());
        (target, to_follower)
    }

    /// The LSN a read of class `class` must name (`/*shoal:lsn=N*/`, `route` rows 6a/6b):
    /// the session wrote, and the read runs on a shoal node's proxy (a follower's over a
    /// cluster, `shoal proxy --cluster`, or the leader's), which waits until it applied N.
    pub fn lsn_to_name(&self, proxy: &Proxy, class: &Classification) -> Option<u64> {
        let lsn = self.last_lsn?;
        if !is_read(class) {
            return None;
        }
        let table = proxy.routing.load();
        let server = match &self.held {
            Some(h) => h.server,
            None => match self.target(proxy, class).0 {
                Target::Server(id) | Target::WaitThenServer(id) => id,
                Target::Unavailable(_) => return None,
            },
        };
        // The leader's proxy too: a leader just elected may not have applied it yet.
        table.servers.get(server).filter(|s| s.shoal).map(|_| lsn)
    }

    /// The class an execution of a prepared statement routes by: a read that would need
    /// an LSN named ([`Self::lsn_to_name`]) goes to the leader instead, as a binary
    /// protocol execution has no statement text to carry the comment.
    pub fn prepared_class(&self, proxy: &Proxy, class: &Classification) -> Classification {
        match self.lsn_to_name(proxy, class) {
            Some(_) => Classification { flags: Flags(class.flags.0 | Flags::HINT_LEADER.0), ..*class },
            None => *class,
        }
    }

    /// Makes sure a connection is held on the server `class` belongs on. In front of a
    /// cluster, a statement whose server is unavailable (no leader: an election) or cannot
    /// be connected to (a leader that just died) waits up to `failover_buffer_ms` for the
    /// routing table to name a reachable one, then runs there; nothing was sent before,
    /// so waiting and retrying cannot run anything twice.
    pub async fn lease_for(
        &mut self,
        proxy: &Proxy,
        account: &Account,
        state: &SessionState,
        class: &Classification,
    ) -> Result<(), ProxyError> {
        if self.held.is_some() {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + proxy.failover_buffer();
        let mut waited = false;
        loop {
            let r = self.lease_once(proxy, account, state, class).await;
            // Nothing of the statement was sent yet (at most a pooled connection's state
            // replay), so any of these can be retried.
            let retry = matches!(
                r,
                Err(ProxyError::Unavailable(_) | ProxyError::BackendConnect { .. } | ProxyError::BackendIo { .. })
            );
            if retry {
                self.held = None;
            }
            if retry && tokio::time::Instant::now() + FAILOVER_POLL < deadline {
                waited = true;
                tokio::time::sleep(FAILOVER_POLL).await;
                continue;
            }
            if waited {
                crate::metrics::failover_wait(r.is_ok());
            }
            return r;
        }
    }

    async fn lease_once(
        &mut self,
        proxy: &Proxy,
        account: &Account,
        state: &SessionState,
        class: &Classification,
    ) -> Result<(), ProxyError> {
        let (target, to_follower) = self.target(proxy, class);
        // A write on a cluster node's own MariaDB runs only with capture on: while the
        // node changes role (just elected, capture not started yet) it waits like a write
        // with no leader, so it never changes this node alone.
        if let Target::Server(id) | Target::WaitThenServer(id) = target {
            if escapes_capture(proxy, class, &proxy.routing.load().servers[id]) {
                return Err(ProxyError::Unavailable(
                    "this node is becoming the writer and does not capture writes yet (retry shortly)".into(),
                ));
            }
        }
        match target {
            Target::Server(id) => match self.take(proxy, account, id).await {
                // A follower that just went away: reads fall back to the leader at once
                // instead of waiting for the health checker.
                Err(ProxyError::BackendConnect { .. } | ProxyError::PoolTimeout { .. }) if to_follower => {
                    self.take_leader(proxy, account).await
                }
                r => r,
            },
            Target::WaitThenServer(id) => {
                self.read_floor = None;
                if self.take(proxy, account, id).await.is_ok() && self.causal_wait(proxy, account, state).await? {
                    return Ok(());
                }
                self.held = None;
                if proxy.routing_settings.read_consistency == Consistency::Global && self.read_floor.is_none() {
                    // The leader's commit point could not be learnt (an election, a cut
                    // link): read at the leader's proxy without it, a deposed or
                    // just-elected leader would read stale (the chaos harness's register
                    // history was not linearizable). Learnt but not applied here, the
                    // read goes to the leader's proxy naming it (`read_floor`).
                    return Err(ProxyError::Unavailable(
                        "a global read waits for the leader's commit point, which is unknown right now (an election?); retry shortly".into(),
                    ));
                }
                if proxy.routing.load().leader().is_some_and(|l| l.id == id) {
                    // The leader itself has not applied the write yet (it was just elected):
                    // reading there anyway would read around it; wait for it (retried).
                    return Err(ProxyError::Unavailable(
                        "the leader has not applied this session's last write yet (retry shortly)".into(),
                    ));
                }
                self.take_leader(proxy, account).await
            }
            Target::Unavailable(msg) => Err(ProxyError::Unavailable(msg)),
        }
    }

    /// Waits (up to `causal_wait_ms`) for the held follower to apply the session's last
    /// write; `false` when it did not in time.
    async fn causal_wait(
        &mut self,
        proxy: &Proxy,
        account: &Account,
        state: &SessionState,
    ) -> Result<bool, ProxyError> {
        let follows_log = self.held.as_ref().is_some_and(|h| proxy.routing.load().servers[h.server].follows_log);
        if follows_log {
            return Ok(self.lsn_wait(proxy).await);
        }
        let Some((_, gtid)) = self.last_gtid.clone() else { return Ok(true) };
        let Some(conn) = self.held.as_mut() else { return Ok(false) };
        if let Ready::Refused(_) = conn.sync(state, false, &account.default_charset).await? {
            return Ok(false);
        }
        let mut sql = String::with_capacity(64);
        let secs = proxy.routing_settings.causal_wait_ms as f64 / 1000.0;
        let _ = write!(sql, "SELECT MASTER_GTID_WAIT('{gtid}', {secs:.3})");
        let (framer, bytes) = conn.ask(com::QUERY, sql.as_bytes(), Expect::Results).await?;
        Ok(framer.error.is_none() && first_value(&bytes, conn.deprecate_eof()) == Some(Some(b"0".to_vec())))
    }

    /// Waits (up to `causal_wait_ms`) until this cluster node has applied the LSN the read
    /// must see: the session's last write (`"session"`), or the leader's committed LSN
    /// asked now (`"global"`). `false` when it did not in time or the leader could not
    /// say (the read then goes to the leader).
    async fn lsn_wait(&mut self, proxy: &Proxy) -> bool {
        let Some(link) = proxy.cluster.load_full() else { return false };
        let deadline =
            tokio::time::Instant::now() + std::time::Duration::from_millis(proxy.routing_settings.causal_wait_ms);
        let wanted = match proxy.routing_settings.read_consistency {
            Consistency::Global => match tokio::time::timeout_at(deadline, (link.read_lsn)()).await {
                Ok(Ok(lsn)) => {
                    self.read_floor = Some(lsn);
                    lsn
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "global read: the leader's committed LSN is unknown; reading on the leader");
                    return false;
                }
                Err(_) => return false,
            },
            _ => match self.last_lsn {
                Some(lsn) => lsn,
                None => return true,
            },
        };
        // Applied, but a commit the cluster made may be missing from this MariaDB (its
        // connection broke before `XA COMMIT`): not fresh until that is delivered.
        if crate::capture::setup::local_commits_behind() {
            return false;
        }
        let mut applied = link.applied.clone();
        if *applied.borrow() >= wanted {
            return true;
        }
        let ok = matches!(tokio::time::timeout_at(deadline, applied.wait_for(|a| *a >= wanted)).await, Ok(Ok(_)));
        crate::metrics::causal_wait(ok);
        ok
    }

    /// After a statement on the leader: when a write became durable (autocommit, or the
    /// COMMIT of a transaction that wrote), learn its GTID for read-your-writes.
    pub async fn track_write(
        &mut self,
        proxy: &Proxy,
        class: &Classification,
        failed: bool,
        status: Option<u16>,
    ) -> Result<(), ProxyError> {
        if failed || !proxy.tracks_writes() {
            return Ok(());
        }
        let Some(conn) = self.held.as_mut() else { return Ok(()) };
        // Forwarded to a shoal proxy (the leader's): that proxy knows the LSN, whatever
        // this node's routing table says now (it may name no leader for a moment, and the
        // write was acknowledged all the same).
        if !conn.shoal && !proxy.routing.load().is_leader(conn.server) {
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
        if conn.shoal {
            // Forwarded to the leader's proxy: it knows the write's LSN.
            let (_, bytes) = conn.ask(com::QUERY, LAST_LSN_SQL.as_bytes(), Expect::Results).await?;
            let lsn = first_value(&bytes, conn.deprecate_eof()).flatten();
            if let Some(lsn) = lsn.and_then(|v| std::str::from_utf8(&v).ok().and_then(|t| t.parse::<u64>().ok())) {
                self.last_lsn = Some(self.last_lsn.unwrap_or(0).max(lsn));
            }
            return Ok(());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lsn_hint_leads_the_statement() {
        let out = with_lsn_hint(b"\x03SELECT 1", 42);
        assert_eq!(&out[..], b"\x03/*shoal:lsn=42*/ SELECT 1");
        assert_eq!(crate::classify::answered::lsn_hint(&out[1..]), Some(42));
        // A client's own leading comment stays, after ours.
        let out = with_lsn_hint(b"\x03/*shoal:lsn=7*/ SELECT 1", 9);
        assert_eq!(crate::classify::answered::lsn_hint(&out[1..]), Some(9));
    }
}
