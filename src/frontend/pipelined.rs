//! The session's side of pipelined reads ([`crate::backend::pipeline`]): which statements
//! go to a pipe, and relaying what the pipe sends back.

use bytes::BytesMut;
use tokio::sync::oneshot;

use super::session::Session;
use crate::backend::pipeline::{Answer, PipeSet, Piped, Request};
use crate::classify::Classification;
use crate::error::ProxyError;
use crate::metrics::StatementTimer;
use crate::protocol::framer::Framer;
use crate::protocol::StatusFlags;
use crate::route::Target;
use crate::session::prepared::PreparedMeta;
use crate::session::{pipelinable, PipeView};
use std::sync::Arc;

/// What became of a statement offered to a pipe.
pub(super) enum PipeRun {
    /// It ran and its response went to the client.
    Ran,
    /// The pipe writes its response to the client itself; the session is not woken for it
    /// and settles it before its next command ([`Session::settle`]).
    Deferred,
    /// It did not run on a pipe: the caller runs it on a leased connection, timed by this.
    NotRun(StatementTimer),
}

/// What became of a statement a pipe took.
enum Taken {
    /// Its response went to the client.
    Ran,
    /// The pipe gave it back without running it (with its timer, when it had it).
    Back(Option<StatementTimer>),
}

/// A read the pipe answers by writing its response to the client itself.
pub(super) struct PendingRead {
    answer: oneshot::Receiver<Answer>,
    /// The client's command, run on a leased connection if the pipe gives it back.
    payload: BytesMut,
    /// Routing-table index of the pipe's server.
    server: usize,
}

impl Session {
    /// Whether a statement of class `class` may go to a pipe now (rules in
    /// [`pipelinable`]).
    pub(super) fn can_pipeline(&self, class: &Classification) -> bool {
        let view = PipeView {
            enabled: self.proxy.limits.pipes_per_pool > 0 && !self.pipe_off,
            leased: self.lease.is_some() || !self.pin.is_free(),
            autocommit: self.status & StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits() != 0,
            has_vars: !self.state.vars.is_empty(),
        };
        pipelinable(class, view)
    }

    /// Offers `frame` (a complete command frame of a statement timed by `timer`) to a
    /// pipe of the server the router picks. The client's own command is `payload`: a
    /// deferred statement keeps a copy, to run it elsewhere if the pipe gives it back.
    pub(super) async fn run_pipelined(
        &mut self,
        frame: BytesMut,
        meta: Option<Arc<PreparedMeta>>,
        class: &Classification,
        timer: StatementTimer,
        payload: &[u8],
    ) -> Result<PipeRun, ProxyError> {
        let Target::Server(server) = self.target(class).0 else { return Ok(PipeRun::NotRun(timer)) };
        let Some(set) = self.pipe_set(server) else { return Ok(PipeRun::NotRun(timer)) };
        let pool = self.pool(server);
        // A plain client's response is written by the pipe: the session need not wake for it.
        let client = self.io.plain();
        let direct = client.is_some();
        let (req, answer) = Request::new(frame, meta, self.handle.clone(), server, client, timer);
        if let Err(req) = set.submit(&pool, req).await {
            return Ok(PipeRun::NotRun(req.give_back()));
        }
        if direct {
            // A copy of its own: the command's bytes share the read buffer, which the
            // session must not hold while it waits for its client.
            let payload = BytesMut::from(payload);
            self.pending = Some(PendingRead { answer, payload, server });
            return Ok(PipeRun::Deferred);
        }
        match self.take_answer(answer, server).await? {
            Taken::Ran => Ok(PipeRun::Ran),
            Taken::Back(timer) => Ok(PipeRun::NotRun(timer.unwrap_or_else(|| crate::metrics::statement(class.kind)))),
        }
    }

    /// Waits for the pipe to answer the read it writes to the client itself (see
    /// `serve`). Returns the client's command when the pipe gave the read back: it is to
    /// run on a leased connection.
    pub(super) async fn settle(&mut self) -> Result<Option<BytesMut>, ProxyError> {
        let Some(pending) = self.pending.take() else { return Ok(None) };
        self.io.wrote = false;
        match self.take_answer(pending.answer, pending.server).await? {
            Taken::Ran => Ok(None),
            Taken::Back(timer) => {
                // The command runs again through `dispatch`, which times it afresh.
                if let Some(t) = timer {
                    t.discard();
                }
                Ok(Some(pending.payload))
            }
        }
    }

    /// Relays a pipe's answer to the client. The statement's timer (inside the answer)
    /// is dropped once the response is written.
    async fn take_answer(&mut self, answer: oneshot::Receiver<Answer>, server: usize) -> Result<Taken, ProxyError> {
        let mut parts = match answer.await {
            Ok(Answer::Sent(framer)) => {
                self.io.wrote = true;
                self.took(&framer);
                return Ok(Taken::Ran);
            }
            Ok(Answer::Done(bytes, framer, _timer)) => {
                self.io.write_raw(&bytes).await?;
                self.took(&framer);
                return Ok(Taken::Ran);
            }
            Ok(Answer::Stream(parts)) => parts,
            Ok(Answer::Back(timer)) => return Ok(Taken::Back(timer)),
            Err(_) => return Ok(Taken::Back(None)),
        };
        loop {
            match parts.recv().await {
                Some(Piped::Part(bytes)) => self.io.write_raw(&bytes).await?,
                Some(Piped::Done(bytes, framer, _timer)) => {
                    self.io.write_raw(&bytes).await?;
                    self.took(&framer);
                    return Ok(Taken::Ran);
                }
                None if !self.io.wrote => return Ok(Taken::Back(None)),
                None => {
                    return Err(ProxyError::BackendProtocol {
                        addr: self.pool(server).addr.to_string(),
                        what: "pipe connection lost in the middle of a response".into(),
                    })
                }
            }
        }
    }

    /// Records a pipelined response's status flags as the session's.
    fn took(&mut self, framer: &Framer) {
        if let Some(s) = framer.status() {
            self.status = s;
        }
    }

    /// The pipe set for the session's schema on `server` (remembered until the session's
    /// state changes).
    fn pipe_set(&mut self, server: usize) -> Option<Arc<PipeSet>> {
        let version = self.state.version;
        if let Some(Some((v, set))) = self.pipe_sets.get(server) {
            if *v == version {
                return Some(set.clone());
            }
        }
        let pool = self.pool(server);
        let set = pool.pipes(&self.state.schema, &self.default_charset)?;
        if self.pipe_sets.len() <= server {
            self.pipe_sets.resize(server + 1, None);
        }
        self.pipe_sets[server] = Some((version, set.clone()));
        Some(set)
    }
}
