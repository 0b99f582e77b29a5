//! The session's side of pipelined reads ([`crate::backend::pipeline`]): which statements
//! go to a pipe, and relaying what the pipe sends back.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::oneshot;

use super::io::ClientIo;
use crate::backend::pipeline::{Answer, PipeSet, Piped, Request};
use crate::backend::pools::BackendPool;
use crate::classify::Classification;
use crate::error::ProxyError;
use crate::metrics::StatementTimer;
use crate::protocol::framer::Framer;
use crate::session::prepared::PreparedMeta;
use crate::session::registry::SessionHandle;
use crate::session::state::SessionState;
use crate::session::{pipelinable, PipeView};

/// What became of a statement offered to a pipe.
pub(super) enum PipeRun {
    /// It ran and its response went to the client (the pipe's outcome).
    Ran(Framer),
    /// The pipe writes its response to the client itself; the session is not woken for it
    /// and settles it before its next command ([`SessionPipes::settle`]).
    Deferred,
    /// It did not run on a pipe: the caller runs it on a leased connection, timed by this
    /// (or afresh, when the pipe lost the timer with the read).
    NotRun(Option<StatementTimer>),
}

/// What became of a statement a pipe took.
pub(super) enum Taken {
    /// Its response went to the client; the pipe's outcome.
    Ran(Framer),
    /// The pipe gave it back without running it (with its timer, when it had it).
    Back(Option<StatementTimer>),
}

/// A read the pipe answers by writing its response to the client itself.
struct PendingRead {
    answer: oneshot::Receiver<Answer>,
    /// The client's command, run on a leased connection if the pipe gives it back.
    payload: BytesMut,
    /// host:port of the pipe's server (for errors).
    addr: Arc<str>,
}

/// A statement for a pipe: everything [`SessionPipes::submit`] needs.
pub(super) struct Offer<'a> {
    /// The complete command frame.
    pub frame: BytesMut,
    /// The prepared statement an execute runs.
    pub meta: Option<Arc<PreparedMeta>>,
    /// Its timer.
    pub timer: StatementTimer,
    /// The client's own command (a deferred statement keeps a copy, to run it elsewhere
    /// if the pipe gives it back).
    pub payload: &'a [u8],
}

/// The session's pipes: the set last used per server and the read in progress.
#[derive(Default)]
pub struct SessionPipes {
    /// The pipe set last used per routing-table index, with the session state version
    /// it was chosen for (a schema change picks another).
    sets: Vec<Option<(u64, Arc<PipeSet>)>>,
    /// A read whose response a pipe writes to the client (settled before the next command).
    pending: Option<PendingRead>,
    /// Set while a read a pipe gave back runs again: not on a pipe this time.
    pub off: bool,
    /// The last pipelined read (a COM_QUERY text) when it left warnings or an error on the
    /// shared connection: run again if the next statement reads them.
    pub rerun: Option<BytesMut>,
}

impl SessionPipes {
    /// Whether a statement of class `class` may go to a pipe now (rules in
    /// [`pipelinable`]).
    pub fn can_pipeline(&self, view: PipeView, class: &Classification) -> bool {
        pipelinable(class, PipeView { enabled: view.enabled && !self.off, ..view })
    }

    /// Whether a pipe is writing the last read's response.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Forgets the pipe sets (the account changed).
    pub fn clear(&mut self) {
        self.sets.clear();
    }

    /// The pipe set for the session's schema on `server` (remembered until the session's
    /// state changes).
    pub fn set_for(
        &mut self,
        server: usize,
        pool: &BackendPool,
        state: &SessionState,
        charset: &str,
    ) -> Option<Arc<PipeSet>> {
        if let Some(Some((v, set))) = self.sets.get(server) {
            if *v == state.version {
                return Some(set.clone());
            }
        }
        let set = pool.pipes(&state.schema, charset)?;
        if self.sets.len() <= server {
            self.sets.resize(server + 1, None);
        }
        self.sets[server] = Some((state.version, set.clone()));
        Some(set)
    }

    /// Offers a statement to `set` (a pipe of `server`).
    pub(super) async fn submit(
        &mut self,
        set: &Arc<PipeSet>,
        server: usize,
        io: &mut ClientIo,
        handle: &Arc<SessionHandle>,
        offer: Offer<'_>,
    ) -> Result<PipeRun, ProxyError> {
        // A plain client's response is written by the pipe: the session need not wake for it.
        let client = io.plain();
        let direct = client.is_some();
        let (req, answer) = Request::new(offer.frame, offer.meta, handle.clone(), server, client, offer.timer);
        if let Err(req) = set.submit(req).await {
            return Ok(PipeRun::NotRun(Some(req.give_back())));
        }
        let addr = set.addr();
        if direct {
            // A copy of its own: the command's bytes share the read buffer, which the
            // session must not hold while it waits for its client.
            let payload = BytesMut::from(offer.payload);
            self.pending = Some(PendingRead { answer, payload, addr });
            return Ok(PipeRun::Deferred);
        }
        match take_answer(io, answer, &addr).await? {
            Taken::Ran(framer) => {
                self.note_diagnostics(&framer, offer.payload);
                Ok(PipeRun::Ran(framer))
            }
            Taken::Back(timer) => Ok(PipeRun::NotRun(timer)),
        }
    }

    /// Remembers a read whose warnings or error only the shared connection has.
    fn note_diagnostics(&mut self, framer: &Framer, payload: &[u8]) {
        if framer.left_diagnostics() && payload.first() == Some(&crate::protocol::com::QUERY) {
            self.rerun = Some(BytesMut::from(&payload[1..]));
        }
    }

    /// Waits for the pipe to answer the read it writes to the client itself. `Ran` with
    /// the outcome, or `Back` with the client's command when the pipe gave the read back:
    /// it is to run on a leased connection.
    pub(super) async fn settle(&mut self, io: &mut ClientIo) -> Result<Option<Result<Framer, BytesMut>>, ProxyError> {
        let Some(pending) = self.pending.take() else { return Ok(None) };
        io.wrote = false;
        match take_answer(io, pending.answer, &pending.addr).await? {
            Taken::Ran(framer) => {
                self.note_diagnostics(&framer, &pending.payload);
                Ok(Some(Ok(framer)))
            }
            Taken::Back(timer) => {
                // The command runs again through `dispatch`, which times it afresh.
                if let Some(t) = timer {
                    t.discard();
                }
                Ok(Some(Err(pending.payload)))
            }
        }
    }
}

/// Relays a pipe's answer to the client. The statement's timer (inside the answer) is
/// dropped once the response is written.
async fn take_answer(io: &mut ClientIo, answer: oneshot::Receiver<Answer>, addr: &str) -> Result<Taken, ProxyError> {
    let mut parts = match answer.await {
        Ok(Answer::Sent(framer)) => {
            io.wrote = true;
            return Ok(Taken::Ran(framer));
        }
        Ok(Answer::Done(bytes, framer, _timer)) => {
            io.write_raw(&bytes).await?;
            return Ok(Taken::Ran(framer));
        }
        Ok(Answer::Stream(parts)) => parts,
        Ok(Answer::Back(timer)) => return Ok(Taken::Back(timer)),
        Err(_) => return Ok(Taken::Back(None)),
    };
    loop {
        match parts.recv().await {
            Some(Piped::Part(bytes)) => io.write_raw(&bytes).await?,
            Some(Piped::Done(bytes, framer, _timer)) => {
                io.write_raw(&bytes).await?;
                return Ok(Taken::Ran(framer));
            }
            None if !io.wrote => return Ok(Taken::Back(None)),
            None => {
                return Err(ProxyError::BackendProtocol {
                    addr: addr.to_string(),
                    what: "pipe connection lost in the middle of a response".into(),
                })
            }
        }
    }
}
