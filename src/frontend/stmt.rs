//! COM_STMT_* and COM_CHANGE_USER for a [`Session`].
//!
//! Client statement ids map to cache entries ([`crate::session::prepared`]); each backend
//! connection prepares an entry lazily the first time it executes it, and every execute
//! carries parameter types so any connection can run it.

use bytes::{Bytes, BytesMut};

use super::handshake::{fail, new_scramble};
use super::pipelined::{Offer, PipeRun};
use super::session::{classify_cached, com, with_session_values, Flow, Session};
use super::sha2::{self, CACHING_SHA2_PASSWORD};
use crate::backend::conn::Ready;
use crate::classify::rewrite::SessionValues;
use crate::classify::{Classification, Flags, Kind};
use crate::error::{ProxyError, ER_ACCESS_DENIED, ER_MAX_PREPARED_STMT_COUNT, ER_UNKNOWN_STMT_HANDLER};
use crate::protocol::framer::Expect;
use crate::protocol::handshake::{auth_switch_native, NATIVE_PASSWORD};
use crate::protocol::packet::{begin_packet, finish_packet, HEADER_BYTES, PAYLOAD_MAX};
use crate::protocol::stmt::{execute_flags, execute_for_backend, execute_layout, param_types, set_stmt_id, stmt_id};
use crate::protocol::{CapabilityFlags, StatusFlags};
use crate::session::limits::{may_hide_set, STATEMENT_TIME_VAR};
use crate::session::prepared::PreparedMeta;
use crate::session::{effective_status, pins_after_query, Pin, QueryOutcome};

/// `ER_WRONG_ARGUMENTS`.
const ER_WRONG_ARGUMENTS: u16 = 1210;

impl Session {
    fn unknown_stmt(
        &mut self,
        id: u32,
        command: &str,
    ) -> impl std::future::Future<Output = Result<(), ProxyError>> + '_ {
        let msg = format!("Unknown prepared statement handler ({id}) given to {command}");
        async move { self.reply_err(1, ER_UNKNOWN_STMT_HANDLER, "HY000", &msg).await }
    }

    pub(super) async fn stmt_prepare(&mut self, payload: BytesMut) -> Result<(), ProxyError> {
        let max = self.proxy.limits.prepared_per_client_max as usize;
        if self.stmts.len() >= max {
            let msg = format!("Can't create more than max_prepared_stmt_count statements (current value: {max}); raise [limits] prepared_per_client_max or close statements");
            return self.reply_err(1, ER_MAX_PREPARED_STMT_COUNT, "42000", &msg).await;
        }
        let payload = self.prepare_text(payload);
        if self.limits.statement_time_max_ms > 0 {
            let class = super::session::classify_cached(&payload[1..]);
            if self.refused_by_statement_limit(&payload[1..], &class).await? {
                return Ok(());
            }
        }
        let sql = &payload[1..];
        let meta = match self.proxy.stmt_cache.get(&self.state.schema, sql) {
            Some(meta) => meta,
            None => {
                // Preparing reads metadata only: any server will do, the primary first.
                self.lease_for(&Classification { kind: Kind::Use, flags: Flags::default() }).await?;
                let conn = self.backend.conn();
                if let Ready::Refused(bytes) = conn.sync(&self.state, false, &self.account.default_charset).await? {
                    self.backend.release_if_free();
                    return self.forward_refusal(bytes, 1).await;
                }
                conn.send_command(&payload).await?;
                let (framer, bytes) = conn.read_response(Expect::Prepare).await?;
                let Some((backend_id, params)) = framer.prepared.filter(|_| framer.error.is_none()) else {
                    self.backend.release_if_free();
                    return self.io.write_raw(&bytes).await;
                };
                let meta =
                    PreparedMeta::new(self.state.schema.clone(), Bytes::copy_from_slice(sql), params, bytes.freeze());
                let meta = self.proxy.stmt_cache.insert(meta);
                let per_backend = self.proxy.limits.prepared_per_backend_max as usize;
                let mut to_close = Vec::new();
                if conn.state.stmts.get(meta.id).is_some() {
                    // Another session cached this text first and it is prepared here already.
                    to_close.push(backend_id);
                } else {
                    to_close = conn.state.stmts.insert(meta.id, backend_id, per_backend);
                }
                for old in to_close {
                    let mut close = [com::STMT_CLOSE, 0, 0, 0, 0];
                    set_stmt_id(&mut close, old);
                    conn.send_no_reply(&close).await?;
                }
                self.backend.release_if_free();
                meta
            }
        };
        if meta.class.flags.intersects(Flags(Flags::ROW_COUNT.0 | Flags::FOUND_ROWS.0)) {
            // Its executions read the previous statement's results: from now on every
            // statement of the session runs on one connection, on the leader.
            let leader = Classification { kind: Kind::Use, flags: Flags::HINT_LEADER };
            self.backend.before(false);
            self.lease_for(&leader).await?;
            self.backend.pin.add(Pin::PREVIOUS_RESULT);
            self.backend.release_if_free();
        }
        let id = self.stmts.add(meta.clone());
        let at = self.io.wbuf.len();
        self.io.wbuf.extend_from_slice(&meta.response);
        // The first frame is the prepare OK: header(4) | 0x00 | stmt_id(4) | …
        set_stmt_id(&mut self.io.wbuf[at + 4..], id);
        self.io.flush().await
    }

    /// The text to prepare: `CONNECTION_ID()` answered with this session's id (the same
    /// for every execution; `classify::rewrite`).
    fn prepare_text(&self, payload: BytesMut) -> BytesMut {
        if !classify_cached(&payload[1..]).flags.contains(Flags::CONNECTION_ID) {
            return payload;
        }
        let values = SessionValues { connection_id: self.id as u64, row_count: None, found_rows: None };
        with_session_values(payload, &values)
    }

    pub(super) async fn stmt_execute(&mut self, payload: BytesMut) -> Result<(), ProxyError> {
        let id = stmt_id(&payload).unwrap_or(0);
        let Some(cs) = self.stmts.get_mut(id) else {
            return self.unknown_stmt(id, "mysqld_stmt_execute").await;
        };
        let meta = cs.meta.clone();
        let reads_diagnostics = meta.class.flags.contains(Flags::DIAGNOSTICS);
        self.backend.before(reads_diagnostics);
        let mut timer = crate::metrics::statement(meta.class.kind, self.proxy.running.start());
        // Over a cluster, a read with the session's write pending runs on the leader.
        let route_class = self.backend.prepared_class(&self.proxy, &meta.class);
        let Some(layout) = execute_layout(&payload, meta.params) else {
            return self.reply_err(1, ER_WRONG_ARGUMENTS, "HY000", "Incorrect arguments to mysqld_stmt_execute").await;
        };
        let mut saved_types: std::sync::Arc<[u8]> = std::sync::Arc::from(&[][..]);
        match param_types(&payload, layout, meta.params) {
            Some(t) if *cs.types != *t => cs.types = std::sync::Arc::from(t),
            Some(_) => {}
            None => saved_types = cs.types.clone(),
        }
        if execute_flags(&payload) == 0 && self.can_pipeline(&meta.class) {
            // The statement id is patched in by the pipe, which knows the backend's.
            let mut frame = BytesMut::with_capacity(payload.len() + saved_types.len() + HEADER_BYTES);
            let at = begin_packet(&mut frame, 0);
            execute_for_backend(&payload, layout, 0, &saved_types, &mut frame);
            if frame.len() - HEADER_BYTES < PAYLOAD_MAX {
                finish_packet(&mut frame, at);
                let offer = Offer { frame, meta: Some(meta.clone()), timer, payload: &payload };
                match self.run_pipelined(&route_class, offer).await? {
                    PipeRun::Ran(_) | PipeRun::Deferred => return Ok(()),
                    PipeRun::NotRun(t) => timer = t.unwrap_or_else(|| self.timer(meta.class.kind)),
                }
            }
        }
        let needs_insert_id = meta.class.flags.contains(crate::classify::Flags::LAST_INSERT_ID);
        let per_backend = self.proxy.limits.prepared_per_backend_max as usize;
        let Some(plan) = self.xa_prelude_execute(&meta.class).await? else {
            return Ok(());
        };
        self.backend.forwarded_only = self.forwarded_only(&plan, &meta.class);
        let leased = self.lease_for(&route_class).await;
        let escapes = self.backend.escapes_to_own_mariadb();
        leased?;
        if escapes {
            return Err(self.write_path_changed());
        }
        let conn = self.backend.conn();
        let ready = conn.sync(&self.state, needs_insert_id, &self.account.default_charset).await;
        let prepared = match ready {
            Ok(Ready::Yes) => conn.ensure_prepared(&meta, per_backend).await,
            Ok(Ready::Refused(bytes)) => Ok(Err(bytes)),
            Err(e) => Err(e),
        };
        let backend_id = match prepared {
            Ok(Ok(b)) => b,
            Ok(Err(bytes)) => {
                self.xa_abandon(&plan, false).await?;
                self.backend.release_if_free();
                return self.forward_refusal(bytes, 1).await;
            }
            Err(e) => {
                self.xa_abandon(&plan, false).await?;
                return Err(e);
            }
        };
        // `XA START` of a wrapped write goes in the execute's round trip.
        let first = self.backend.send_first.take();
        let conn = self.backend.conn();
        self.handle.set_running(Some((conn.server, conn.thread_id)));
        let expect = if execute_flags(&payload) != 0 { Expect::Cursor } else { Expect::Results };
        let sent = async {
            if let Some(sql) = &first {
                conn.send(com::QUERY, sql.as_bytes()).await?;
            }
            conn.send_command_with(|b| execute_for_backend(&payload, layout, backend_id, &saved_types, b)).await?;
            match first {
                Some(_) => conn.read_response(Expect::Results).await.map(|(f, bytes)| f.error.map(|c| (c, bytes))),
                None => Ok(None),
            }
        }
        .await;
        let framer = match sent {
            Ok(first_failed) => {
                let framer = conn.relay(expect, &mut self.io).await;
                if let Some((code, bytes)) = first_failed {
                    self.xa_start_failed(code, &bytes);
                }
                framer
            }
            Err(e) => Err(e),
        };
        self.handle.set_running(None);
        let mut framer = match framer {
            Ok(f) => f,
            Err(e) => {
                self.xa_abandon(&plan, false).await?;
                return Err(e);
            }
        };
        self.xa_epilogue(plan, &meta.class, &mut framer).await?;
        let conn = self.backend.conn();
        self.state.statement_done(&framer);
        if framer.insert_id != 0 {
            self.state.last_insert_id = framer.insert_id;
            conn.state.last_insert_id = framer.insert_id;
        }
        if self.limits.statement_time_max_ms > 0 && may_hide_set(meta.class.kind) {
            // A prepared CALL may have changed max_statement_time unseen: set it again
            // before the next statement on this connection.
            conn.state.vars.remove(STATEMENT_TIME_VAR);
            conn.state.synced = None;
        }
        if let Some(s) = framer.status() {
            self.backend.status = s;
        }
        self.backend.pin.remove(Pin::LONG_DATA);
        let cursor = StatusFlags::SERVER_STATUS_CURSOR_EXISTS.bits();
        if execute_flags(&payload) != 0 && framer.status().is_some_and(|s| s & cursor != 0) {
            self.backend.pin.add(Pin::CURSOR);
            self.backend.cursor = Some(id);
        }
        timer.done(framer.error, self.backend.on_follower(&self.proxy));
        self.backend.track_write(&self.proxy, &meta.class, framer.error.is_some(), framer.status()).await?;
        let status = effective_status(framer.status(), self.backend.status);
        let outcome = QueryOutcome { class: meta.class, set: None, status, failed: framer.error.is_some() };
        let pin = self.backend.pin;
        self.backend.pin = crate::metrics::pins(pin, pins_after_query(pin, &outcome));
        let kept = reads_diagnostics && self.backend.diagnostics;
        self.backend.finish(framer.left_diagnostics() || kept);
        Ok(())
    }

    pub(super) async fn stmt_send_long_data(&mut self, mut payload: BytesMut) -> Result<(), ProxyError> {
        // No response exists for this command: problems surface at the execute.
        let id = stmt_id(&payload).unwrap_or(0);
        let Some(cs) = self.stmts.get_mut(id) else { return Ok(()) };
        let meta = cs.meta.clone();
        let per_backend = self.proxy.limits.prepared_per_backend_max as usize;
        self.lease_for(&meta.class).await?;
        let conn = self.backend.conn();
        if let Ready::Refused(_) = conn.sync(&self.state, false, &self.account.default_charset).await? {
            return Ok(());
        }
        if let Ok(backend_id) = conn.ensure_prepared(&meta, per_backend).await? {
            set_stmt_id(&mut payload, backend_id);
            conn.send_no_reply(&payload).await?;
            self.backend.pin.add(Pin::LONG_DATA);
        }
        self.backend.release_if_free();
        Ok(())
    }

    /// Sends `payload` (a COM_STMT_RESET/FETCH) to the pinned connection, renumbered.
    async fn forward_to_pinned_stmt(
        &mut self,
        mut payload: BytesMut,
        meta_id: u64,
        expect: Expect,
    ) -> Result<bool, ProxyError> {
        let Some(conn) = self.backend.held.as_mut() else { return Ok(false) };
        let Some(backend_id) = conn.state.stmts.get(meta_id) else { return Ok(false) };
        set_stmt_id(&mut payload, backend_id);
        conn.send_command(&payload).await?;
        let framer = conn.relay(expect, &mut self.io).await?;
        if let Some(s) = framer.status() {
            self.backend.status = s;
        }
        Ok(true)
    }

    pub(super) async fn stmt_reset(&mut self, payload: BytesMut) -> Result<(), ProxyError> {
        let id = stmt_id(&payload).unwrap_or(0);
        let Some(cs) = self.stmts.get_mut(id) else {
            return self.unknown_stmt(id, "mysqld_stmt_reset").await;
        };
        let meta_id = cs.meta.id;
        let holds_state = self.backend.cursor == Some(id) || self.backend.pin.has(Pin::LONG_DATA);
        if holds_state && self.forward_to_pinned_stmt(payload, meta_id, Expect::Single).await? {
            if self.backend.cursor == Some(id) {
                self.backend.cursor = None;
                self.backend.pin.remove(Pin::CURSOR);
            }
            self.backend.pin.remove(Pin::LONG_DATA);
            self.backend.release_if_free();
            return Ok(());
        }
        // Nothing lives on a backend for this statement: resetting is a no-op.
        self.reply_ok(1).await
    }

    pub(super) async fn stmt_fetch(&mut self, payload: BytesMut) -> Result<(), ProxyError> {
        let id = stmt_id(&payload).unwrap_or(0);
        let Some(meta_id) = self.stmts.get_mut(id).map(|c| c.meta.id) else {
            return self.unknown_stmt(id, "mysqld_stmt_fetch").await;
        };
        if self.backend.cursor != Some(id) || !self.forward_to_pinned_stmt(payload, meta_id, Expect::Rows).await? {
            return self.reply_err(1, 1421, "HY000", "The statement has no open cursor").await;
        }
        let last = StatusFlags::SERVER_STATUS_LAST_ROW_SENT.bits();
        if self.backend.status & last != 0 {
            self.backend.cursor = None;
            self.backend.pin.remove(Pin::CURSOR);
            self.backend.release_if_free();
        }
        Ok(())
    }

    pub(super) async fn stmt_close(&mut self, payload: &[u8]) -> Result<(), ProxyError> {
        let id = stmt_id(payload).unwrap_or(0);
        let Some(cs) = self.stmts.remove(id) else { return Ok(()) };
        if self.backend.cursor == Some(id) {
            // Close the cursor on the backend: a reset does it and keeps the statement.
            let mut reset = BytesMut::from(&[com::STMT_RESET, 0, 0, 0, 0][..]);
            if let Some(conn) = self.backend.held.as_mut() {
                if let Some(backend_id) = conn.state.stmts.get(cs.meta.id) {
                    set_stmt_id(&mut reset, backend_id);
                    conn.send_command(&reset).await?;
                    conn.read_response(Expect::Single).await?;
                }
            }
            self.backend.cursor = None;
            self.backend.pin.remove(Pin::CURSOR);
            self.backend.release_if_free();
        }
        Ok(())
    }

    /// COM_CHANGE_USER: authenticate again, then start over as a fresh session.
    pub(super) async fn change_user(&mut self, payload: BytesMut) -> Result<Flow, ProxyError> {
        let Some(req) = parse_change_user(&payload, self.account.capabilities) else {
            return Err(fail(&mut self.io, 1, 1043, "08S01", "Bad handshake".into()).await);
        };
        let mut seq = 1u8;
        if let Some(plugin) = self.proxy.users.relayed_plugin(&req.user).await {
            let msg = format!(
                "COM_CHANGE_USER to '{}' is not supported through shoal: the account authenticates with {plugin}, \
                 whose logins only a new connection can relay to the server",
                req.user
            );
            fail(&mut self.io, seq, ER_ACCESS_DENIED, "28000", msg).await;
            return Ok(Flow::Quit);
        }
        let mut token = req.auth;
        let credential = if req.plugin.as_deref() == Some(CACHING_SHA2_PASSWORD) {
            // The client's packet was sequence 0; the token answers the connection's nonce.
            let (c, next) =
                sha2::login(&self.proxy, &mut self.io, &req.user, &self.account.scramble, &token, 0).await?;
            seq = next;
            c
        } else {
            if req.plugin.as_deref().is_some_and(|p| p != NATIVE_PASSWORD) || token.len() != 20 && !token.is_empty() {
                self.account.scramble = new_scramble();
                self.io.queue(seq, &auth_switch_native(&self.account.scramble));
                self.io.flush().await?;
                let (s, p) = self.io.read_packet().await?;
                seq = s.wrapping_add(1);
                token = p.to_vec();
            }
            let credential = self.proxy.users.authenticate(&req.user, &self.account.scramble, &token).await;
            crate::metrics::client_login(crate::metrics::LoginMethod::Native, credential.is_some());
            credential
        };
        let Some(credential) = credential else {
            let using = if token.is_empty() { "NO" } else { "YES" };
            let msg = format!("Access denied for user '{}'@'localhost' (using password: {using})", req.user);
            fail(&mut self.io, seq, ER_ACCESS_DENIED, "28000", msg).await;
            return Ok(Flow::Quit);
        };
        // The session moves to the new account's count (checked after authentication, as
        // at login); refused, it closes as a failed COM_CHANGE_USER does.
        let limits = self.proxy.limits.for_user(&req.user);
        if req.user != self.slot.user() {
            match self.proxy.user_connections.load_full().take(&req.user, limits.connections_max) {
                Some(slot) => self.slot = slot,
                None => {
                    super::session::refuse_user_connection(&mut self.io, seq, &req.user).await;
                    return Ok(Flow::Quit);
                }
            }
        }
        self.limits = limits;
        self.discard_session_state().await;
        self.handle.set_schema(req.database.clone());
        self.state.set_schema(req.database);
        if let Some(c) = req.collation {
            self.account.set_collation(c);
        }
        self.account.user = req.user;
        self.account.credential = credential;
        self.backend.drop_pools();
        self.pipes.clear();
        self.backend.last_gtid = None;
        self.lease_for(&Classification { kind: Kind::Use, flags: Flags::default() }).await?;
        let conn = self.backend.held.as_mut().expect("leased above");
        let ready = conn.sync(&self.state, false, &self.account.default_charset).await?;
        self.backend.release_if_free();
        match ready {
            Ready::Yes => {
                self.reply_ok(seq).await?;
                Ok(Flow::Continue)
            }
            Ready::Refused(bytes) => {
                self.forward_refusal(bytes, seq).await?;
                Ok(Flow::Continue)
            }
        }
    }
}

/// What COM_CHANGE_USER asks for.
struct ChangeUser {
    user: String,
    auth: Vec<u8>,
    database: Option<String>,
    collation: Option<u8>,
    plugin: Option<String>,
}

fn parse_change_user(payload: &[u8], caps: CapabilityFlags) -> Option<ChangeUser> {
    let rest = payload.get(1..)?;
    let nul = |b: &[u8]| b.iter().position(|c| *c == 0);
    let end = nul(rest)?;
    let user = String::from_utf8_lossy(&rest[..end]).into_owned();
    let mut rest = &rest[end + 1..];
    let auth;
    if caps.contains(CapabilityFlags::CLIENT_SECURE_CONNECTION) {
        let len = *rest.first()? as usize;
        auth = rest.get(1..1 + len)?.to_vec();
        rest = &rest[1 + len..];
    } else {
        let end = nul(rest)?;
        auth = rest[..end].to_vec();
        rest = &rest[end + 1..];
    }
    let (database, rest) = match nul(rest) {
        Some(end) => ((end > 0).then(|| String::from_utf8_lossy(&rest[..end]).into_owned()), &rest[end + 1..]),
        None => (None, &[][..]),
    };
    let collation = rest.get(..2).map(|b| b[0]);
    let rest = rest.get(2..).unwrap_or_default();
    let plugin = match nul(rest) {
        Some(end) if end > 0 => Some(String::from_utf8_lossy(&rest[..end]).into_owned()),
        _ => None,
    };
    // Connect attributes may follow; shoal does not need them.
    Some(ChangeUser { user, auth, database, collation, plugin })
}
