//! The session's side of pipelined reads ([`crate::backend::pipeline`]): which statements
//! go to a pipe, and relaying what the pipe sends back.

use bytes::BytesMut;
use tokio::sync::oneshot;

use super::session::Session;
use crate::backend::pipeline::{Answer, PipeSet, Piped, Request};
use crate::classify::Classification;
use crate::error::ProxyError;
use crate::protocol::framer::Framer;
use crate::protocol::StatusFlags;
use crate::route::Target;
use crate::session::prepared::PreparedMeta;
use crate::session::{pipelinable, PipeView};
use std::sync::Arc;

impl Session {
    /// Whether a statement of class `class` may go to a pipe now (rules in
    /// [`pipelinable`]).
    pub(super) fn can_pipeline(&self, class: &Classification) -> bool {
        let view = PipeView {
            enabled: self.proxy.limits.pipes_per_pool > 0,
            leased: self.lease.is_some() || !self.pin.is_free(),
            autocommit: self.status & StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits() != 0,
            has_vars: !self.state.vars.is_empty(),
        };
        pipelinable(class, view)
    }

    /// Runs `frame` (a complete command frame) on a pipe of the server the router picks
    /// and relays the response. `None` when it did not run there (no direct route, pipe
    /// unavailable, connection lost before any byte was relayed): the caller runs it on a
    /// leased connection. Returns the framer and the server it ran on; the session's
    /// status flags are taken from the response.
    pub(super) async fn run_pipelined(
        &mut self,
        frame: BytesMut,
        meta: Option<Arc<PreparedMeta>>,
        class: &Classification,
    ) -> Result<Option<(Framer, usize)>, ProxyError> {
        let Target::Server(server) = self.target(class).0 else { return Ok(None) };
        let Some(set) = self.pipe_set(server) else { return Ok(None) };
        let pool = self.pool(server);
        // A reply per statement: nothing of one statement can reach the next, and a reply
        // dropped without an answer says the statement did not (completely) run.
        let (reply, answer) = oneshot::channel();
        let req = Request { frame, meta, reply, handle: self.handle.clone(), server };
        if set.submit(&pool, req).await.is_err() {
            return Ok(None);
        }
        let mut parts = match answer.await {
            Ok(Answer::Done(bytes, framer)) => {
                self.io.write_raw(&bytes).await?;
                return Ok(Some(self.took(framer, server)));
            }
            Ok(Answer::Stream(parts)) => parts,
            Err(_) => return Ok(None),
        };
        loop {
            match parts.recv().await {
                Some(Piped::Part(bytes)) => self.io.write_raw(&bytes).await?,
                Some(Piped::Done(bytes, framer)) => {
                    self.io.write_raw(&bytes).await?;
                    return Ok(Some(self.took(framer, server)));
                }
                None if !self.io.wrote => return Ok(None),
                None => {
                    return Err(ProxyError::BackendProtocol {
                        addr: pool.addr.to_string(),
                        what: "pipe connection lost in the middle of a response".into(),
                    })
                }
            }
        }
    }

    /// Records a pipelined response's status flags as the session's.
    fn took(&mut self, framer: Framer, server: usize) -> (Framer, usize) {
        if let Some(s) = framer.status() {
            self.status = s;
        }
        (framer, server)
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
