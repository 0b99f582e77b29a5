//! One client connection after the handshake: the command loop.
//!
//! Each command borrows a backend connection (the pinned one, or a pooled one brought in
//! line with the session's replayable state), relays the response as raw frames, updates
//! the session from what the framer saw, and gives the connection back unless a pin
//! reason holds (see [`crate::session`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::TcpStream;

use super::account::Account;
use super::handshake::{authenticate, fail, Authenticated};
use super::io::ClientIo;
use super::lease::Leases;
use super::pipelined::{Offer, PipeRun, SessionPipes};
use super::Proxy;
use crate::backend::conn::{BackendConn, Ready};
use crate::classify::answered::{is_last_lsn_query, is_show_processlist, lsn_hint, parse_kill};
use crate::classify::rewrite::{rewrite_session_functions, SessionValues};
use crate::classify::set::set_keeps_history;
use crate::classify::{parse_set, sets_last_insert_id, use_schema, Classification, Flags, Kind, SetEffect};
use crate::config::AccountLimits;
use crate::error::{ProxyError, ER_SPECIFIC_ACCESS_DENIED, ER_TOO_MANY_USER_CONNECTIONS, ER_UNKNOWN_COM};
use crate::metrics::StatementTimer;
use crate::protocol::framer::{Expect, Framer};
use crate::protocol::packet::{put_packet, HEADER_BYTES};
use crate::protocol::reply::{put_err, put_ok, OkInfo};
use crate::route::Target;
use crate::session::limits::{
    idle_limit_s, may_hide_set, mentions_statement_time, statement_time_assignment, statement_time_guard,
    too_many_user_connections, Guard, UserSlot, STATEMENT_TIME_VAR,
};
use crate::session::prepared::ClientStmts;
use crate::session::registry::{Closer, SessionHandle};
use crate::session::state::{mark_synced, SessionState};
use crate::session::{apply_status, effective_status, pins_after_query, Pin, PipeView, QueryOutcome};

pub use crate::protocol::com;

/// Statements remembered per worker thread by exact text (an 18 ns hit instead of a
/// ~220 ns classification; see docs/classify.md).
const CLASSIFY_CACHE_ENTRIES: usize = 4096;

thread_local! {
    static CLASSIFY_CACHE: std::cell::RefCell<crate::classify::ClassifyCache> =
        std::cell::RefCell::new(crate::classify::ClassifyCache::new(CLASSIFY_CACHE_ENTRIES));
}

/// Classifies through the worker thread's cache.
pub(super) fn classify_cached(sql: &[u8]) -> Classification {
    CLASSIFY_CACHE.with(|c| c.borrow_mut().classify(sql))
}

/// `ER_CONNECTION_KILLED`.
const ER_CONNECTION_KILLED: u16 = 1927;

/// Whether the loop goes on after a command.
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Close the connection (COM_QUIT, failed COM_CHANGE_USER).
    Quit,
}

/// A client session, in owned parts: the client socket, who the client is, the backend
/// connections it holds and why, its pipes, and the replayable state every connection it
/// uses must have. Commands are methods here and in `stmt.rs`; the parts know nothing of
/// the session.
pub struct Session {
    pub(super) proxy: Arc<Proxy>,
    /// The client socket.
    pub(super) io: ClientIo,
    /// shoal's connection id for this client (what it shows as CONNECTION_ID to KILL).
    pub(super) id: u32,
    /// The account and wire format (decide the pools).
    pub(super) account: Account,
    /// Backend connections: pools, the one held now, pins, last status.
    pub(super) backend: Leases,
    /// Pipelined reads.
    pub(super) pipes: SessionPipes,
    /// Replayable state.
    pub(super) state: SessionState,
    /// Prepared statements by client id.
    pub(super) stmts: ClientStmts,
    /// This session as other sessions see it (KILL).
    pub(super) handle: Arc<SessionHandle>,
    /// The account's place in `user_connections_max`, given back when the session ends.
    pub(super) slot: UserSlot,
    /// The account's limits (`[limits]`, `[limits.user.NAME]`), looked up at login and
    /// COM_CHANGE_USER.
    pub(super) limits: AccountLimits,
}

/// Serves one accepted client to the end.
pub async fn run(proxy: Arc<Proxy>, stream: TcpStream, peer: SocketAddr) {
    let id = proxy.next_connection_id();
    let mut io = ClientIo::new(stream, proxy.limits.packet_bytes_max as usize);
    let limit = Duration::from_millis(proxy.limits.handshake_timeout_ms);
    let (auth, peer) = match tokio::time::timeout(limit, authenticate(&proxy, &mut io, id, peer)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "handshake failed");
            io.shutdown().await;
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "handshake timed out");
            return;
        }
    };
    let ok_seq = auth.next_seq;
    // After authentication, as MariaDB checks max_user_connections.
    let limits = proxy.limits.for_user(&auth.user);
    let Some(slot) = proxy.user_connections.load_full().take(&auth.user, limits.connections_max) else {
        refuse_user_connection(&mut io, ok_seq, &auth.user).await;
        io.shutdown().await;
        return;
    };
    let mut session = Session::new(proxy.clone(), io, id, auth, peer, slot, limits);
    // Removed from the registry however the session ends, a panic included.
    let _registered = proxy.registry.register(id, session.handle.clone());
    if session.start(ok_seq).await.is_ok() {
        session.serve().await;
    }
    session.io.shutdown().await;
    session.close().await;
}

/// Answers a login past the account's `user_connections_max` with MariaDB's 1203.
pub(super) async fn refuse_user_connection(io: &mut ClientIo, seq: u8, user: &str) {
    crate::metrics::user_connection_rejected();
    tracing::debug!(%user, "login refused: the account holds user_connections_max sessions");
    fail(io, seq, ER_TOO_MANY_USER_CONNECTIONS, "42000", too_many_user_connections(user)).await;
}

/// The session value of system variable `name` as an assignment to replay
/// (`sql_mode = 'STRICT_ALL_TABLES,…'`), read from the connection that just set it;
/// `None` when the server does not say.
async fn read_back_variable(conn: &mut BackendConn, name: &str) -> Result<Option<String>, ProxyError> {
    // `name` is `[a-z0-9_]+` (`classify::set`). Numbers and booleans stay bare (those
    // variables refuse strings such as '0'); the type comes from SYSTEM_VARIABLES, the
    // value from `@@session` (SYSTEM_VARIABLES shows NULL as '').
    let sql = format!(
        "SELECT IF(@@session.{name} IS NULL, 'NULL', \
         IF(VARIABLE_TYPE LIKE '%INT%' OR VARIABLE_TYPE IN ('DOUBLE', 'BOOLEAN'), @@session.{name}, QUOTE(@@session.{name}))) \
         FROM information_schema.SYSTEM_VARIABLES WHERE VARIABLE_NAME = UPPER('{name}')"
    );
    let value = conn.query_value(&sql).await?.flatten();
    Ok(value.and_then(|v| String::from_utf8(v).ok()).map(|v| format!("{name} = {v}")))
}

impl Session {
    fn new(
        proxy: Arc<Proxy>,
        io: ClientIo,
        id: u32,
        mut auth: Authenticated,
        peer: SocketAddr,
        slot: UserSlot,
        limits: AccountLimits,
    ) -> Self {
        // MariaDB shows loopback clients as `localhost`.
        let host = if peer.ip().is_loopback() { format!("localhost:{}", peer.port()) } else { peer.to_string() };
        let handle = Arc::new(SessionHandle::new(auth.user.clone(), host, auth.database.clone()));
        if let Some(write) = io.plain() {
            // KILL and the idle sweep end an idle session by shutting its socket: its read
            // ends at once, and the command loop needs no timer or wake-up of its own.
            handle.set_closer(Closer(Box::new(move || {
                let _ = socket2::SockRef::from(write.as_ref().as_ref()).shutdown(std::net::Shutdown::Both);
            })));
        }
        let state = SessionState { id: id as u64, schema: auth.database.clone(), ..Default::default() };
        let mut backend = Leases::new();
        if let Some(conn) = auth.relayed.take() {
            backend.use_own_pool(proxy.pools.relayed(*conn));
        }
        let mut session = Session {
            proxy,
            io,
            id,
            account: Account::new(&auth),
            backend,
            pipes: SessionPipes::default(),
            state,
            stmts: ClientStmts::default(),
            handle,
            slot,
            limits,
        };
        session.apply_account_limits();
        session
    }

    /// Puts the account's statement time limit into the replayable state (so every
    /// backend connection the session uses runs with MariaDB's `max_statement_time`; a
    /// session with variables stays off the shared pipes) and sets the idle limit.
    pub(super) fn apply_account_limits(&mut self) {
        match statement_time_assignment(self.limits.statement_time_max_ms) {
            Some(text) => self.state.set_var(STATEMENT_TIME_VAR, &text),
            None => self.state.unset_var(STATEMENT_TIME_VAR),
        }
        self.refresh_idle_limit();
    }

    /// Tells the idle sweep how long the session may now stay idle: `wait_timeout`, or
    /// `transaction_idle_timeout_s` while a transaction is open (`session::limits::idle_limit_s`).
    pub(super) fn refresh_idle_limit(&self) {
        let in_transaction = self.backend.pin.has(Pin::TRANSACTION);
        let (secs, cause) =
            idle_limit_s(self.idle_limit().as_secs(), self.limits.transaction_idle_timeout_s, in_transaction);
        self.handle.set_idle_limit(secs, cause);
    }

    /// Refuses a statement that could lift the account's statement time limit
    /// (`session::limits::statement_time_guard`); true when it was refused.
    pub(super) async fn refused_by_statement_limit(
        &mut self,
        sql: &[u8],
        class: &Classification,
    ) -> Result<bool, ProxyError> {
        let limit = self.limits.statement_time_max_ms;
        if limit == 0 || !mentions_statement_time(sql) {
            return Ok(false);
        }
        let set = (class.kind == Kind::SessionSet).then(|| parse_set(sql));
        match statement_time_guard(limit, sql, class, set.as_ref()) {
            Guard::Run => Ok(false),
            Guard::Refuse(msg) => {
                crate::metrics::error(ER_SPECIFIC_ACCESS_DENIED);
                self.reply_err(1, ER_SPECIFIC_ACCESS_DENIED, "42000", &msg).await?;
                Ok(true)
            }
        }
    }

    fn ok_info(&self) -> OkInfo {
        OkInfo { status: self.backend.status, ..OkInfo::default() }
    }

    /// Sends an OK that shoal answers itself.
    pub(super) async fn reply_ok(&mut self, seq: u8) -> Result<(), ProxyError> {
        let ok = self.ok_info();
        put_ok(&mut self.io.wbuf, seq, &ok, false);
        self.io.flush().await
    }

    /// Sends an ERR that shoal answers itself.
    pub(super) async fn reply_err(&mut self, seq: u8, code: u16, state: &str, msg: &str) -> Result<(), ProxyError> {
        put_err(&mut self.io.wbuf, seq, code, state, msg);
        self.io.flush().await
    }

    /// Forwards a backend's ERR response (from a sync or an internal prepare) as the
    /// answer to the client's command, renumbered to `seq`.
    pub(super) async fn forward_refusal(&mut self, mut bytes: BytesMut, seq: u8) -> Result<(), ProxyError> {
        if bytes.len() > 3 {
            bytes[3] = seq;
        }
        self.io.write_raw(&bytes).await
    }

    /// Holds a connection on the server `class` belongs on.
    pub(super) async fn lease_for(&mut self, class: &Classification) -> Result<(), ProxyError> {
        self.backend.lease_for(&self.proxy, &self.account, &self.state, class).await
    }

    /// Brings the held connection in line with the session's replayable state.
    pub(super) async fn sync(&mut self, needs_insert_id: bool) -> Result<Ready, ProxyError> {
        let charset = &self.account.default_charset;
        self.backend.conn().sync(&self.state, needs_insert_id, charset).await
    }

    /// Starts timing a statement of `kind` (counted as running until the timer drops).
    pub(super) fn timer(&self, kind: Kind) -> StatementTimer {
        crate::metrics::statement(kind, self.proxy.running.start())
    }

    /// Confirms the backend accepts this account (and the initial schema), then ends the
    /// connection phase with OK.
    async fn start(&mut self, seq: u8) -> Result<(), ProxyError> {
        let any = Classification { kind: Kind::Use, flags: Flags::default() };
        let ready = match self.lease_for(&any).await {
            Ok(()) => self.sync(false).await,
            Err(e) => Err(e),
        };
        match ready {
            Ok(Ready::Yes) => {
                self.backend.release_if_free();
                self.reply_ok(seq).await
            }
            Ok(Ready::Refused(bytes)) => {
                self.backend.held = None;
                self.forward_refusal(bytes, seq).await?;
                Err(ProxyError::ClientProtocol("initial schema refused".into()))
            }
            Err(e) => {
                self.backend.held = None;
                let m = e.mysql();
                Err(fail(&mut self.io, seq, m.code, m.state, m.message).await)
            }
        }
    }

    /// Gives back the connection the session holds. One that holds the session's state
    /// (a pin reason: transaction, locks, temporary tables, variables, …) is reset first, so
    /// nothing of it reaches the next session; one that cannot be reset is closed.
    async fn close(&mut self) {
        let limit = Duration::from_millis(self.proxy.limits.connect_timeout_ms);
        let pinned = !self.backend.pin.is_free();
        let own = self.backend.own.is_some();
        if let Some(conn) = self.backend.held.as_mut() {
            if own || conn.keeps_history {
                // Its pool goes with the session, or a reset would not clear it.
                conn.mark_broken();
            } else if (pinned || conn.needs_reset) && !conn.is_unusable() {
                if !matches!(tokio::time::timeout(limit, conn.reset()).await, Ok(Ok(()))) {
                    conn.mark_broken();
                }
            } else if pinned || conn.needs_reset {
                conn.mark_broken();
            }
        }
        self.backend.forget_connection_state();
    }

    /// How long the client may stay idle before shoal disconnects it, as MariaDB does:
    /// the session's own `SET wait_timeout`, else `[limits]` (`interactive_timeout` for
    /// `CLIENT_INTERACTIVE` clients).
    fn idle_limit(&self) -> Duration {
        let own = self.state.vars.get("wait_timeout").and_then(|t| t.rsplit('=').next()?.trim().parse::<u64>().ok());
        let l = &self.proxy.limits;
        let interactive = self.account.capabilities.contains(crate::protocol::CapabilityFlags::CLIENT_INTERACTIVE);
        let default = if interactive { l.client_interactive_timeout_s } else { l.client_wait_timeout_s };
        Duration::from_secs(own.unwrap_or(default).max(1))
    }

    async fn serve(&mut self) {
        self.refresh_idle_limit();
        loop {
            if self.handle.is_killed() && !self.pipes.has_pending() {
                // Killed while its last command ran: that command's answer is out, and
                // the connection closes now.
                return;
            }
            self.io.release_idle();
            let read = if self.pipes.has_pending() || self.io.plain().is_none() {
                // A pipe writing the last read's response may hand the read back; a TLS
                // session (whose socket cannot be closed from outside) is woken by KILL
                // and the idle sweep (see `pipe_wake`).
                tokio::select! {
                    biased;
                    _ = self.handle.pipe_wake.notified() => None,
                    r = self.io.read_packet() => Some(r),
                }
            } else {
                // KILL and the idle sweep close the socket: the read ends.
                Some(self.io.read_packet().await)
            };
            if read.is_none() && self.handle.is_killed() && !self.pipes.has_pending() {
                // Killed or idle past wait_timeout while waiting: the connection closes now.
                return;
            }
            let payload = match read {
                Some(Ok((_, p))) => Some(p),
                None => None,
                Some(Err(e @ ProxyError::PacketTooLarge(_))) => {
                    if self.settled().await {
                        let m = e.mysql();
                        let _ = self.reply_err(1, m.code, m.state, &m.message).await;
                    }
                    return;
                }
                Some(Err(_)) => {
                    // A client that half-closed after its last command still gets the
                    // answer; one that is gone fails the first write.
                    self.settled().await;
                    return;
                }
            };
            // Nothing more goes to the client before the pending read's response is out.
            if !self.settled().await {
                return;
            }
            let Some(payload) = payload else {
                // The pending pipelined read's answer is out: the session is idle from now.
                self.handle.command_ended();
                continue;
            };
            if self.handle.is_killed() {
                let _ = self.reply_err(1, ER_CONNECTION_KILLED, "70100", "Connection was killed").await;
                return;
            }
            self.io.wrote = false;
            self.handle.command_started();
            let result = self.dispatch(payload).await;
            if self.limits.transaction_idle_timeout_s > 0 {
                // Before the session counts as idle: the sweep must see the limit for
                // the state the command left (a transaction open or not).
                self.refresh_idle_limit();
            }
            if !self.pipes.has_pending() {
                // A read left on a pipe keeps the session busy until its answer is out.
                self.handle.command_ended();
            }
            if !self.after(result).await {
                return;
            }
        }
    }

    /// Settles a pending pipelined read: its response is out, or it ran again here because
    /// the pipe gave it back. False when the session ends.
    async fn settled(&mut self) -> bool {
        let result = match self.pipes.settle(&mut self.io).await {
            Ok(None) => return true,
            Ok(Some(Ok(framer))) => {
                self.took(&framer);
                return true;
            }
            Ok(Some(Err(payload))) => {
                self.pipes.off = true;
                let r = self.dispatch(payload).await;
                self.pipes.off = false;
                r
            }
            Err(e) => Err(e),
        };
        self.after(result).await
    }

    /// Records what a pipelined response tells the session.
    pub(super) fn took(&mut self, framer: &Framer) {
        if let Some(s) = framer.status() {
            self.backend.status = s;
        }
        self.state.statement_done(framer);
    }

    /// Offers a statement to a pipe of the server the router picks (see
    /// [`SessionPipes::submit`]); `NotRun` when none takes it.
    pub(super) async fn run_pipelined(
        &mut self,
        class: &Classification,
        offer: super::pipelined::Offer<'_>,
    ) -> Result<PipeRun, ProxyError> {
        let Target::Server(server) = self.backend.target(&self.proxy, class).0 else {
            return Ok(PipeRun::NotRun(Some(offer.timer)));
        };
        let pool = self.backend.pool(&self.proxy, &self.account, server);
        let Some(set) = self.pipes.set_for(server, &pool, &self.state, &self.account.default_charset) else {
            return Ok(PipeRun::NotRun(Some(offer.timer)));
        };
        let run = self.pipes.submit(&set, server, &mut self.io, &self.handle, offer).await?;
        if let PipeRun::Ran(framer) = &run {
            self.took(framer);
        }
        Ok(run)
    }

    /// Whether a statement of class `class` may go to a pipe now.
    pub(super) fn can_pipeline(&self, class: &Classification) -> bool {
        let view = PipeView {
            enabled: self.proxy.limits.pipes_per_pool > 0,
            leased: self.backend.held.is_some() || !self.backend.pin.is_free(),
            autocommit: self.backend.autocommit(),
            has_vars: !self.state.vars.is_empty(),
        };
        self.pipes.can_pipeline(view, class)
    }

    /// Deals with a command's outcome. False when the session ends.
    async fn after(&mut self, result: Result<Flow, ProxyError>) -> bool {
        match result {
            Ok(Flow::Continue) => true,
            Ok(Flow::Quit) => false,
            Err(e) => {
                if e.closes_session() || self.io.wrote {
                    // The client is gone, or a response was cut in the middle: the
                    // client cannot be resynchronised, so close like a lost server.
                    tracing::debug!(id = self.id, error = %e, "closing session");
                    return false;
                }
                if self.backend.held.as_ref().is_some_and(|l| l.is_unusable()) {
                    // Whatever lived on that connection (a transaction, locks) is gone;
                    // the error below tells the client. The session's replayable state
                    // (schema, variables) carries over to the next connection.
                    self.backend.forget_connection_state();
                }
                self.backend.release_if_free();
                let m = e.mysql();
                crate::metrics::error(m.code);
                self.reply_err(1, m.code, m.state, &m.message).await.is_ok()
            }
        }
    }

    async fn dispatch(&mut self, payload: BytesMut) -> Result<Flow, ProxyError> {
        let Some(&command) = payload.first() else {
            return Err(ProxyError::ClientProtocol("empty command packet".into()));
        };
        if command != com::QUERY {
            // Only a text query can read a pipelined read's diagnostics back.
            self.pipes.rerun = None;
        }
        match command {
            com::QUERY => self.query(payload).await?,
            com::STMT_EXECUTE => self.stmt_execute(payload).await?,
            com::STMT_PREPARE => self.stmt_prepare(payload).await?,
            com::STMT_CLOSE => self.stmt_close(&payload).await?,
            com::STMT_RESET => self.stmt_reset(payload).await?,
            com::STMT_SEND_LONG_DATA => self.stmt_send_long_data(payload).await?,
            com::STMT_FETCH => self.stmt_fetch(payload).await?,
            com::PING => self.reply_ok(1).await?,
            com::QUIT => return Ok(Flow::Quit),
            com::INIT_DB => self.init_db(payload).await?,
            com::FIELD_LIST => {
                self.forward(&payload, Expect::FieldList, Classification { kind: Kind::Show, flags: Flags::default() })
                    .await?;
            }
            com::STATISTICS => {
                self.forward(&payload, Expect::Single, Classification { kind: Kind::Admin, flags: Flags::default() })
                    .await?;
            }
            com::SET_OPTION => {
                let class = Classification { kind: Kind::Admin, flags: Flags::default() };
                self.forward(&payload, Expect::Single, class).await?;
                self.backend.pin.add(Pin::SET_OPTION);
            }
            com::PROCESS_KILL => {
                let id = payload.get(1..5).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                self.kill(false, id as u64).await?;
            }
            com::RESET_CONNECTION => self.reset_connection().await?,
            com::CHANGE_USER => return self.change_user(payload).await,
            other => {
                tracing::debug!(id = self.id, command = other, "unknown command");
                self.reply_err(1, ER_UNKNOWN_COM, "08S01", "Unknown command").await?;
            }
        }
        Ok(Flow::Continue)
    }

    /// Runs one command on the backend connection its classification routes to and
    /// relays the response.
    pub(super) async fn run_on_backend(
        &mut self,
        payload: &[u8],
        expect: Expect,
        class: &Classification,
    ) -> Result<Option<Framer>, ProxyError> {
        let needs_insert_id = class.flags.contains(Flags::LAST_INSERT_ID);
        // A read whose pooled connection turns out dead (server restarted since its last
        // use) is retried once on a fresh lease: nothing reached the client and a read
        // has no effect to repeat. Writes are never retried.
        let mut retry = crate::route::is_read(class);
        loop {
            let was_pinned = !self.backend.pin.is_free();
            let own = self.backend.held.is_some();
            self.lease_for(class).await?;
            if self.backend.escapes_to_own_mariadb() {
                return Err(self.write_path_changed());
            }
            // A read that fell back to a shoal proxy it was not routed to (the causal wait
            // here timed out, and the leader's proxy serves it) names the LSN it must see
            // there too, the session's last write or the global commit point: a leader just
            // elected may not have applied it (chaos seed 303).
            let floor = self.backend.read_floor.take();
            let hinted = match self.backend.last_lsn.max(floor) {
                Some(lsn)
                    if payload.first() == Some(&com::QUERY)
                        && crate::route::is_read(class)
                        && self.backend.held.as_ref().is_some_and(|h| h.shoal)
                        && lsn_hint(&payload[1..]).is_none() =>
                {
                    Some(super::lease::with_lsn_hint(payload, lsn))
                }
                _ => None,
            };
            let payload: &[u8] = hinted.as_deref().unwrap_or(payload);
            // A statement shoal pipelines in front of this one (`XA START`), if any.
            let first = self.backend.send_first.take();
            let conn = self.backend.conn();
            if !own && class.flags.contains(Flags::DIAGNOSTICS) {
                // Another session's warnings may be here; this session's are not.
                conn.clear_diagnostics().await?;
            }
            let mut first_failed = None;
            let to_shoal = self.proxy.routing.load().servers.get(conn.server).is_some_and(|s| s.shoal);
            let mut sent = false;
            // Forwarded to the leader's proxy: given up once that leader is known replaced
            // and unreachable (it would answer only when it comes back, if ever), in any
            // step: syncing the session, sending, or relaying the answer.
            let leader_addr = conn.addr.clone();
            let mut cut = self.proxy.unreachable_leader.subscribe();
            let work = async {
                if let Ready::Refused(bytes) =
                    conn.sync(&self.state, needs_insert_id, &self.account.default_charset).await?
                {
                    return Ok(Err(bytes));
                }
                self.handle.set_running(Some((conn.server, conn.thread_id)));
                if let Some(sql) = &first {
                    conn.send(com::QUERY, sql.as_bytes()).await?;
                }
                conn.send_command(payload).await?;
                sent = true;
                if first.is_some() {
                    let (f, bytes) = conn.read_response(Expect::Results).await?;
                    first_failed = f.error.map(|code| (code, bytes));
                }
                let framer = conn.relay(expect, &mut self.io).await;
                self.handle.set_running(None);
                framer.map(Ok)
            };
            let result = match to_shoal {
                false => work.await,
                true => {
                    let cut_off = cut.wait_for(|a| a.as_deref() == Some(&*leader_addr));
                    tokio::select! {
                        r = work => r,
                        _ = cut_off => {
                            self.handle.set_running(None);
                            self.backend.conn().mark_broken();
                            Err(ProxyError::BackendIo {
                                addr: leader_addr.to_string(),
                                source: std::io::Error::new(
                                    std::io::ErrorKind::TimedOut,
                                    "it was replaced by a new leader and does not answer",
                                ),
                            })
                        }
                    }
                }
            };
            if let Some((code, bytes)) = first_failed {
                self.xa_start_failed(code, &bytes);
            }
            match result {
                Ok(Ok(framer)) => {
                    if let Some(s) = framer.status() {
                        self.backend.status = s;
                    }
                    return Ok(Some(framer));
                }
                Ok(Err(refusal)) => {
                    self.forward_refusal(refusal, 1).await?;
                    return Ok(None);
                }
                Err(ProxyError::BackendIo { .. }) if retry && !was_pinned && !self.io.wrote => {
                    retry = false;
                    self.backend.held = None;
                }
                Err(ProxyError::BackendIo { addr, source }) if sent && !retry && to_shoal && !self.io.wrote => {
                    return Err(ProxyError::OutcomeUnknown(format!(
                        "outcome unknown: the cluster leader's proxy {addr} went away ({source}) after the statement was sent; \
                         it may or may not have committed: check before retrying (a new leader takes writes within the failover time)"
                    )));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Relays a command whose response only matters to the client.
    async fn forward(&mut self, payload: &[u8], expect: Expect, class: Classification) -> Result<(), ProxyError> {
        if let Some(f) = self.run_on_backend(payload, expect, &class).await? {
            apply_status(&mut self.backend.pin, effective_status(f.status(), self.backend.status));
        }
        self.backend.release_if_free();
        Ok(())
    }

    async fn query(&mut self, payload: BytesMut) -> Result<(), ProxyError> {
        let class = classify_cached(&payload[1..]);
        let mut timer = self.timer(class.kind);
        if matches!(class.kind, Kind::Admin | Kind::Unknown) {
            if let Some((query_only, target)) = parse_kill(&payload[1..]) {
                return self.kill(query_only, target).await;
            }
        }
        if class.kind == Kind::Show && is_show_processlist(&payload[1..]) {
            return self.show_processlist(&payload[1..]).await;
        }
        if class.kind == Kind::Read && is_last_lsn_query(&payload[1..]) {
            return self.reply_last_lsn().await;
        }
        if self.refused_by_statement_limit(&payload[1..], &class).await? {
            return Ok(());
        }
        if payload[1..].trim_ascii_start().starts_with(b"/*") {
            if let Some(lsn) = lsn_hint(&payload[1..]) {
                self.backend.last_lsn = Some(self.backend.last_lsn.unwrap_or(0).max(lsn));
            }
        }
        let reads_diagnostics = class.flags.contains(Flags::DIAGNOSTICS);
        let rerun = self.pipes.rerun.take();
        self.backend.before(reads_diagnostics);
        if reads_diagnostics {
            if let Some(read) = rerun {
                self.rerun_for_diagnostics(&read).await?;
            }
        }
        let mut payload = self.answer_session_functions(&class, payload);
        if let Some(lsn) = self.backend.lsn_to_name(&self.proxy, &class) {
            // A follower node's proxy waits for the session's write itself (route row 6b).
            payload = super::lease::with_lsn_hint(&payload, lsn);
        }
        let sql = &payload[1..];
        if self.can_pipeline(&class) {
            let mut frame = BytesMut::with_capacity(payload.len() + HEADER_BYTES);
            put_packet(&mut frame, 0, &payload);
            // A pipelined read sets no pin (`pipelinable`; pipes refuse transactions).
            match self.run_pipelined(&class, Offer { frame, meta: None, timer, payload: &payload }).await? {
                PipeRun::Ran(_) | PipeRun::Deferred => return Ok(()),
                PipeRun::NotRun(t) => timer = t.unwrap_or_else(|| self.timer(class.kind)),
            }
        }
        let set = (class.kind == Kind::SessionSet).then(|| parse_set(sql));
        let prelude = self.xa_prelude(&class, payload).await?;
        let (payload, plan) = (prelude.payload, prelude.plan);
        let sql = &payload[1..];
        self.backend.forwarded_only = self.forwarded_only(&plan, &class);
        let ran = self.run_on_backend(&payload, Expect::Results, &class).await;
        self.backend.forwarded_only = false;
        let mut framer = match ran {
            Ok(Some(framer)) => framer,
            Ok(None) => {
                self.xa_abandon(&plan, true).await?;
                self.backend.release_if_free();
                return Ok(());
            }
            Err(e) => {
                self.xa_abandon(&plan, false).await?;
                return Err(e);
            }
        };
        self.xa_epilogue(plan, &class, &mut framer).await?;
        self.state.statement_done(&framer);
        let failed = framer.error.is_some();
        timer.done(framer.error, self.backend.on_follower(&self.proxy));
        if framer.insert_id != 0 {
            self.state.last_insert_id = framer.insert_id;
        }
        let mut wait_timeout_set = false;
        // A computed SET whose value could not be read back pins like any opaque SET.
        let mut set_opaque = false;
        if let Some(conn) = self.backend.held.as_mut() {
            if framer.insert_id != 0 {
                conn.state.last_insert_id = framer.insert_id;
            }
            if self.limits.statement_time_max_ms > 0 && may_hide_set(class.kind) {
                // A routine or dynamic SQL may have changed max_statement_time unseen:
                // the next statement on this connection sets it again.
                conn.state.vars.remove(STATEMENT_TIME_VAR);
                conn.state.synced = None;
            }
            if !failed {
                // The statement changed the connection exactly as it changed the session:
                // record it on both, so the connection's state never drifts from the server's.
                let in_sync = conn.state.synced == Some((self.state.id, self.state.version));
                match (class.kind, &set) {
                    (Kind::Use, _) => {
                        if let Some(db) = use_schema(sql) {
                            conn.state.schema = Some(db.clone());
                            self.handle.set_schema(Some(db.clone()));
                            self.state.set_schema(Some(db));
                        }
                    }
                    (Kind::SessionSet, Some(SetEffect::Opaque)) if set_keeps_history(sql) => conn.keeps_history = true,
                    (Kind::SessionSet, Some(SetEffect::Session(items))) => {
                        let computed = items.iter().filter(|a| a.computed).count();
                        // Reading a value back reads a table, which clears the statement's
                        // warnings: with warnings to keep, the session keeps its connection.
                        let read_back = computed == 0 || !framer.left_diagnostics();
                        for a in items {
                            let text = match (a.computed, read_back) {
                                (false, _) => Some(a.text.clone()),
                                (true, true) => read_back_variable(conn, &a.name).await?,
                                (true, false) => None,
                            };
                            match text {
                                Some(text) => {
                                    conn.state.vars.set(&a.name, &text);
                                    self.state.set_var(&a.name, &text);
                                }
                                None => set_opaque = true,
                            }
                        }
                        wait_timeout_set = items.iter().any(|a| a.name == "wait_timeout");
                    }
                    (Kind::Ddl, _) => self.proxy.stmt_cache.clear(),
                    _ => {}
                }
                if in_sync {
                    conn.state.synced = Some((self.state.id, self.state.version));
                }
            }
        }
        if wait_timeout_set {
            self.refresh_idle_limit();
        }
        if !failed && framer.insert_id == 0 && class.flags.contains(Flags::LAST_INSERT_ID) && sets_last_insert_id(sql) {
            self.read_back_last_insert_id().await?;
        }
        self.backend.track_write(&self.proxy, &class, failed, framer.status()).await?;
        let set = if set_opaque { Some(SetEffect::Opaque) } else { set };
        let status = effective_status(framer.status(), self.backend.status);
        let outcome = QueryOutcome { class, set: set.as_ref(), status, failed };
        let pin = self.backend.pin;
        self.backend.pin = crate::metrics::pins(pin, pins_after_query(pin, &outcome));
        // A diagnostics statement leaves the diagnostics it read in place.
        let kept = reads_diagnostics && self.backend.diagnostics;
        self.backend.finish(framer.left_diagnostics() || kept);
        Ok(())
    }

    /// `SELECT LAST_INSERT_ID(expr)` set the connection's insert id without telling (no
    /// OK packet carries it): ask the connection, so the session keeps it and the next
    /// session on this connection gets its own.
    async fn read_back_last_insert_id(&mut self) -> Result<(), ProxyError> {
        let Some(conn) = self.backend.held.as_mut() else { return Ok(()) };
        let value = conn.query_value("SELECT LAST_INSERT_ID()").await?;
        let id = value.flatten().and_then(|v| std::str::from_utf8(&v).ok().and_then(|t| t.parse::<u64>().ok()));
        match id {
            Some(id) => {
                conn.state.last_insert_id = id;
                self.state.last_insert_id = id;
            }
            // Unknown: the connection may not go to another session as it is.
            None => conn.needs_reset = true,
        }
        Ok(())
    }

    /// `CONNECTION_ID()`, `ROW_COUNT()` and `FOUND_ROWS()` answered from this session's
    /// own values (`classify::rewrite`); other statements pass unchanged. In a
    /// multi-statement text the previous statement may be in the same text, so only the
    /// connection id is replaced there; after `SQL_CALC_FOUND_ROWS` the session is pinned
    /// to the connection that knows the count.
    fn answer_session_functions(&self, class: &Classification, payload: BytesMut) -> BytesMut {
        let answered = Flags(Flags::CONNECTION_ID.0 | Flags::ROW_COUNT.0 | Flags::FOUND_ROWS.0);
        if !class.flags.intersects(answered) {
            return payload;
        }
        let multi = class.flags.contains(Flags::MULTI_STATEMENT);
        let values = SessionValues {
            connection_id: self.id as u64,
            row_count: (!multi).then_some(self.state.row_count),
            found_rows: (!multi && !self.backend.pin.has(Pin::FOUND_ROWS)).then_some(self.state.found_rows),
        };
        with_session_values(payload, &values)
    }

    /// The session's last statement was a pipelined read that left warnings or an error
    /// on a shared connection, and this statement reads them: the read runs again on a
    /// connection of the session's own (its result discarded), so the diagnostics are
    /// there, and the diagnostics statement runs right after it.
    async fn rerun_for_diagnostics(&mut self, read: &[u8]) -> Result<(), ProxyError> {
        let class = classify_cached(read);
        self.lease_for(&class).await?;
        if let Ready::Refused(_) = self.sync(false).await? {
            return Ok(());
        }
        self.backend.conn().ask(com::QUERY, read, Expect::Results).await?;
        self.backend.diagnostics = true;
        Ok(())
    }

    async fn init_db(&mut self, payload: BytesMut) -> Result<(), ProxyError> {
        let class = Classification { kind: Kind::Use, flags: Flags::default() };
        let Some(f) = self.run_on_backend(&payload, Expect::Single, &class).await? else {
            self.backend.release_if_free();
            return Ok(());
        };
        if f.error.is_none() {
            let db = String::from_utf8_lossy(&payload[1..]).into_owned();
            self.handle.set_schema(Some(db.clone()));
            self.state.set_schema(Some(db));
            if let Some(conn) = self.backend.held.as_mut() {
                mark_synced(&self.state, &mut conn.state, false);
            }
        }
        self.backend.release_if_free();
        Ok(())
    }

    /// Forgets everything the session built up (COM_RESET_CONNECTION, COM_CHANGE_USER):
    /// statements, variables, pins, and the pinned connection itself.
    pub(super) async fn discard_session_state(&mut self) {
        let own = self.backend.own.is_some();
        if let Some(l) = self.backend.held.as_mut() {
            // A relayed login's connection is the session's only one: reset it. Any other
            // is closed, which drops everything pinned on it (locks, temporary tables,
            // user variables, an open transaction) at once.
            if !own || l.is_unusable() || l.reset().await.is_err() {
                l.mark_broken();
            }
        }
        let held = if own { self.backend.held.take().filter(|l| !l.is_unusable()) } else { None };
        self.backend.forget_connection_state();
        self.backend.held = held;
        self.stmts.clear();
        self.state.reset_vars();
        self.apply_account_limits();
    }

    async fn reset_connection(&mut self) -> Result<(), ProxyError> {
        self.discard_session_state().await;
        self.reply_ok(1).await
    }
}

/// A command (`COM_QUERY`, `COM_STMT_PREPARE`) with the session functions in its text
/// answered from `values` (`classify::rewrite`); unchanged when it calls none.
pub(super) fn with_session_values(payload: BytesMut, values: &SessionValues) -> BytesMut {
    match rewrite_session_functions(&payload[1..], values) {
        Some(sql) => {
            let mut p = BytesMut::with_capacity(sql.len() + 1);
            p.extend_from_slice(&payload[..1]);
            p.extend_from_slice(&sql);
            p
        }
        None => payload,
    }
}
