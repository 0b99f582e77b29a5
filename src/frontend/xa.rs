//! Capture on the leader, session side: each client write transaction runs as an XA
//! transaction on the leader's MariaDB and commits only once its row images are durable
//! (`crate::capture`, `docs/replication.md`). The decision is [`xa_step`]
//! (`session::xa`); this file sends what it decides.
//!
//! | step | before the statement | the statement | after it |
//! |---|---|---|---|
//! | `Begin` | — | `XA START 'x'` instead of `BEGIN` | the XA is open |
//! | `Commit`, wrote | marker row, `XA END`, `XA PREPARE` (one round trip), wait until durable | `XA COMMIT 'x'` | closed |
//! | `Commit`, read only | `XA END` | `XA COMMIT 'x' ONE PHASE` | closed |
//! | `Rollback` | `XA END` | `XA ROLLBACK 'x'` | closed |
//! | `Wrap` | `XA START`, pipelined with the statement (refused with 1400 under `LOCK TABLES`: the statement runs plain) | as sent, reply held | ERR: `XA ROLLBACK`, ERR out; OK: commit as above, then the held reply (status without "in transaction") |
//! | `StartFirst` | `XA START` | as sent | open |
//! | `CommitFirst` | the whole commit, silently | decided again | — |
//! | `Pass` (DDL) | proposed as a statement entry (after the tail passed `@@gtid_binlog_pos`) | `/*shoal:<id>*/` + the statement | — |
//!
//! The same steps serve prepared statements (`COM_STMT_EXECUTE`): a prepared `BEGIN`,
//! `COMMIT` or `ROLLBACK` (sysbench sends them so) runs the XA statements and shoal answers
//! the execute with OK.
//!
//! A commit that does not become durable is rolled back (`XA ROLLBACK`) and the client
//! gets `ER_ERROR_DURING_COMMIT` (1180) naming the cause.

use std::time::Instant;

use bytes::BytesMut;

use super::lease::{writes, OpenXa};
use super::session::Session;
use crate::capture::{Capture, CaptureError, StatementEntry, STATEMENT_MARK};
use crate::classify::{Classification, Flags, Kind};
use crate::error::ProxyError;
use crate::protocol::framer::{Expect, Framer};
use crate::protocol::reply::{parse_err, patch_final_status};
use crate::protocol::{com, StatusFlags};
use crate::session::xa::{xa_step, XaStep, XaView};
use crate::session::Pin;

/// `ER_XAER_OUTSIDE`: `XA START` refused because work is pending outside it (`LOCK TABLES`).
const ER_XAER_OUTSIDE: u16 = 1400;

/// Errors after which MariaDB has rolled the whole transaction back (a deadlock victim;
/// inside XA the branch is left "rollback only"): shoal ends the XA at once, so the
/// session is where it would be without XA (no transaction; a later COMMIT commits
/// nothing).
///
/// | code | name |
/// |---|---|
/// | 1213 | `ER_LOCK_DEADLOCK` |
/// | 1402 | `ER_XA_RBROLLBACK` |
/// | 1614 | `ER_XA_RBDEADLOCK` |
pub const ROLLED_BACK_BY_SERVER: [u16; 3] = [1213, 1402, 1614];

/// What the statement about to run needs afterwards.
pub(super) enum XaPlan {
    /// Nothing beyond marking a written transaction.
    Plain,
    /// It is `XA START 'x'` in place of `BEGIN`: open on success.
    Begin(String, std::sync::Arc<()>),
    /// It ends the XA (`XA COMMIT`/`XA ROLLBACK`), counted under `outcome`.
    End(&'static str),
    /// An autocommit write inside a one-statement XA whose reply is held.
    Wrap,
    /// A statement proposed before it runs, on the connection with this server thread id.
    Statement(u32),
}

/// What to run after the prelude, or nothing (answered).
pub(super) struct Prelude {
    /// The command to send (the client's, or shoal's substitute).
    pub payload: BytesMut,
    /// What to do after it.
    pub plan: XaPlan,
}

/// Why a write is refused when the leader's handover held it past `failover_buffer_ms`.
const HANDOVER_UNFINISHED: &str =
    "this node is handing the lead to another node and the handover did not finish in time (retry, or see `shoal servers`)";

fn query_payload(sql: &str) -> BytesMut {
    let mut p = BytesMut::with_capacity(sql.len() + 1);
    p.extend_from_slice(&[com::QUERY]);
    p.extend_from_slice(sql.as_bytes());
    p
}

/// The server's message in an ERR response (`bytes`: whole frames).
fn server_error(bytes: &[u8]) -> String {
    bytes.get(4..).and_then(parse_err).map_or_else(|| "unknown error".to_string(), |(c, m)| format!("{m} ({c})"))
}

/// `SIGNAL` raising the error `code` with `message`: the server answers it with that
/// error packet, as it answered the statement it stands in for.
fn signal(code: u16, message: &str) -> String {
    let text: String = message.chars().take(SIGNAL_MESSAGE_CHARS_MAX).collect();
    let text = text.replace('\\', "\\\\").replace('\'', "''");
    format!("SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = {code}, MESSAGE_TEXT = '{text}'")
}

/// `MESSAGE_TEXT` of a `SIGNAL`, at most (the server's limit is 512 characters).
const SIGNAL_MESSAGE_CHARS_MAX: usize = 500;

/// What a transaction that can never commit (its node stopped leading while it was open)
/// is answered.
fn lost_transaction() -> ProxyError {
    ProxyError::TransactionLost(
        "this node stopped leading while the transaction was open: it was rolled back and nothing of it \
         committed; retry the whole transaction (it runs on the new leader)"
            .into(),
    )
}

impl Session {
    fn capture(&self) -> Option<std::sync::Arc<Capture>> {
        self.proxy.capture.load_full()
    }

    /// Refuses a write on a node that takes none now (a cluster node with no leader to
    /// forward to, or a leader still applying the log), after waiting up to
    /// `failover_buffer_ms` for that to change (an election). While a leader hands the
    /// lead over (`writes_held`), a statement that would start a write transaction waits
    /// too; one inside an open transaction goes on, so the transaction can finish.
    async fn refuse_write_here(&self, class: &Classification) -> Result<(), ProxyError> {
        let starts_transaction = class.kind == Kind::TxnBegin;
        if !writes(class) && !starts_transaction {
            return Ok(());
        }
        let held = || self.proxy.writes_held.load(std::sync::atomic::Ordering::SeqCst) && self.backend.xa.is_none();
        let deadline = tokio::time::Instant::now() + self.proxy.failover_buffer();
        let mut waited = false;
        loop {
            let why = match self.proxy.writes_refused.load_full() {
                None if !held() => {
                    if waited {
                        crate::metrics::failover_wait(true);
                    }
                    return Ok(());
                }
                // A transaction's start is refused where it would write.
                None => None,
                Some(_) if starts_transaction => return Ok(()),
                Some(why) => Some(why),
            };
            if tokio::time::Instant::now() + super::lease::FAILOVER_POLL >= deadline {
                if waited {
                    crate::metrics::failover_wait(false);
                }
                let why = why.map_or_else(|| HANDOVER_UNFINISHED.to_string(), |w| (*w).clone());
                return Err(ProxyError::ReadOnlyNode(why));
            }
            waited = true;
            tokio::time::sleep(super::lease::FAILOVER_POLL).await;
        }
    }

    /// A transaction this session opened under a capture that is gone (this node stopped
    /// leading, or capture restarted) can never commit: it is rolled back (it was never
    /// proposed) and the statement is answered [`ProxyError::TransactionLost`].
    async fn end_lost_transaction(&mut self) -> Result<(), ProxyError> {
        let Some(xa) = &self.backend.xa else { return Ok(()) };
        if self.capture().is_some_and(|c| c.owns(&xa.open)) {
            return Ok(());
        }
        self.xa_rollback_silently(false).await;
        Err(lost_transaction())
    }

    /// In a cluster, a write inside a transaction on this node's own MariaDB that is not
    /// shoal's XA (one opened while the node changed role, `START TRANSACTION READ ONLY`,
    /// `LOCK TABLES` under `autocommit=0`) would commit there before any quorum had it,
    /// and reach the others only after the fact, as row images of this node's state. That
    /// transaction is rolled back and the statement answered
    /// [`ProxyError::TransactionLost`] (1213 / 40001: retry the whole transaction).
    ///
    /// | cluster | shoal's XA open | in a transaction | connection | statement | done |
    /// |---|---|---|---|---|---|
    /// | no | — | — | — | — | nothing |
    /// | yes | yes | — | — | — | nothing |
    /// | yes | no | yes | this node's MariaDB | a write | `ROLLBACK`, 1213 |
    /// | yes | no | no, or at the leader's proxy | — | — | nothing |
    async fn end_transaction_outside_xa(&mut self, class: &Classification) -> Result<(), ProxyError> {
        let in_trans = self.backend.status & StatusFlags::SERVER_STATUS_IN_TRANS.bits() != 0;
        let local = self.backend.held.as_ref().is_some_and(|h| !h.shoal);
        if self.proxy.cluster.load().is_none() || self.backend.xa.is_some() || !in_trans || !local || !writes(class) {
            return Ok(());
        }
        // A plain ROLLBACK does not end an XA some earlier path left active: then the
        // connection is closed, which rolls that back too.
        if !matches!(self.xa_ask("ROLLBACK").await, Ok(Ok(_))) {
            if let Some(conn) = self.backend.held.as_mut() {
                conn.mark_broken();
            }
        }
        self.backend.pin.remove(Pin::TRANSACTION);
        metrics::counter!(crate::metrics::CAPTURE_TRANSACTIONS, "outcome" => "rolled_back").increment(1);
        Err(ProxyError::TransactionLost(
            "a write inside a transaction that shoal does not run as XA (opened while this node changed role, \
             START TRANSACTION READ ONLY, or LOCK TABLES) cannot be replicated safely: the transaction was rolled \
             back and nothing of it committed; retry the whole transaction"
                .into(),
        ))
    }

    /// Whether `class` would write to a cluster node's own MariaDB with capture off: the
    /// moment a node changes role, between its capture going and its routing table
    /// pointing writes elsewhere (or the other way round). Such a write would change only
    /// this node, so it waits ([`Session::wait_for_write_path`]).
    fn escapes_capture(&self, class: &Classification) -> bool {
        self.backend.xa.is_none()
            && self.proxy.routing.load().leader().is_some_and(|l| super::lease::escapes_capture(&self.proxy, class, l))
    }

    /// Whether a write leased just now would run on this cluster node's own MariaDB with
    /// capture off: the node stopped leading (and perhaps leads again, capture not started
    /// yet) while the lease waited. Sent plain, it would change this node alone (the chaos
    /// harness found such rows on one node only); it waits like [`Session::escapes_capture`].
    /// A held connection to the leader's proxy needs no capture here: that proxy captures.
    fn lost_capture_while_leasing(&self) -> bool {
        self.capture().is_none()
            && self.proxy.cluster.load().is_some()
            && self.backend.held.as_ref().is_some_and(|h| !h.shoal)
    }

    /// Leases for a write that will run under XA (`sync`: with the session's state
    /// brought over, [`Session::xa_lease`]); `false` when capture went while the lease
    /// waited and the connection is this node's own MariaDB
    /// ([`Session::lost_capture_while_leasing`]): it waited one poll, and the caller
    /// decides again.
    async fn lease_capturing(
        &mut self,
        class: &Classification,
        sync: bool,
        deadline: tokio::time::Instant,
    ) -> Result<bool, ProxyError> {
        if sync {
            self.xa_lease(class).await?;
        } else {
            self.lease_for(class).await?;
        }
        if self.lost_capture_while_leasing() {
            self.wait_for_write_path(class, deadline).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether `plan` sends a write without XA because this cluster node does not capture
    /// (it forwards to the leader's proxy): such a write must reach that proxy, never this
    /// node's MariaDB ([`crate::frontend::lease::Leases::forwarded_only`]).
    pub(super) fn forwarded_only(&self, plan: &XaPlan, class: &Classification) -> bool {
        matches!(plan, XaPlan::Plain)
            && writes(class)
            && self.backend.xa.is_none()
            && self.capture().is_none()
            && self.proxy.cluster.load().is_some()
    }

    /// The error for a write that would have escaped capture
    /// ([`crate::frontend::lease::Leases::escapes_to_own_mariadb`]): nothing ran.
    pub(super) fn write_path_changed(&mut self) -> ProxyError {
        self.backend.release_if_free();
        ProxyError::Unavailable(
            "this node became the writer while the write waited for a connection (a leader change): nothing ran; retry"
                .into(),
        )
    }

    /// Waits one poll for the node's write path to settle (see
    /// [`Session::escapes_capture`]), refusing once `deadline` passed.
    async fn wait_for_write_path(
        &self,
        class: &Classification,
        deadline: tokio::time::Instant,
    ) -> Result<(), ProxyError> {
        if tokio::time::Instant::now() + super::lease::FAILOVER_POLL >= deadline {
            return Err(ProxyError::ReadOnlyNode(
                "this node is changing role (a leader change) and takes no writes right now (retry, or see `shoal servers`)"
                    .into(),
            ));
        }
        tokio::time::sleep(super::lease::FAILOVER_POLL).await;
        self.refuse_write_here(class).await
    }

    /// The step for a statement (`Pass` when capture is off).
    pub(super) fn xa_step_for(&self, class: &Classification, sql: &[u8]) -> XaStep {
        if self.proxy.capture.load().is_none() {
            return XaStep::Pass;
        }
        let in_trans = self.backend.status & StatusFlags::SERVER_STATUS_IN_TRANS.bits() != 0;
        let view = XaView {
            open: self.backend.xa.is_some(),
            autocommit: self.backend.autocommit(),
            other_transaction: self.backend.xa.is_none() && in_trans,
        };
        xa_step(&view, class, sql)
    }

    /// Sends `sql` on the held connection for shoal itself; the ERR message on failure.
    async fn xa_ask(&mut self, sql: &str) -> Result<Result<u16, (u16, String)>, ProxyError> {
        let conn = self.backend.conn();
        let (framer, bytes) = conn.ask(com::QUERY, sql.as_bytes(), Expect::Results).await?;
        if let Some(s) = framer.status() {
            self.backend.status = s;
        }
        Ok(match framer.error {
            None => Ok(framer.status().unwrap_or(self.backend.status)),
            Some(code) => Err((code, server_error(&bytes))),
        })
    }

    /// Leases the leader connection for `class` and brings it in line with the session.
    async fn xa_lease(&mut self, class: &Classification) -> Result<(), ProxyError> {
        self.lease_for(class).await?;
        if let crate::backend::conn::Ready::Refused(bytes) = self.sync(false).await? {
            return Err(ProxyError::Unavailable(format!(
                "the leader refused the session's state: {}",
                server_error(&bytes)
            )));
        }
        Ok(())
    }

    /// `XA START` on the held connection; false when MariaDB refuses it because work is
    /// pending outside (then the statement runs as it is and the tail captures it).
    async fn xa_start(&mut self) -> Result<bool, ProxyError> {
        let Some(capture) = self.capture() else { return Ok(false) };
        let xid = capture.next_xid();
        match self.xa_ask(&format!("XA START '{xid}'")).await? {
            Ok(_) => {
                self.backend.xa = Some(OpenXa { xid, wrote: false, open: capture.open_token() });
                // The XA lives on this connection until it ends.
                self.backend.pin.add(Pin::TRANSACTION);
                Ok(true)
            }
            Err((ER_XAER_OUTSIDE, _)) => Ok(false),
            Err((code, msg)) => Err(ProxyError::Unavailable(format!("XA START failed on the leader ({code}): {msg}"))),
        }
    }

    /// The pipelined `XA START` was refused: the statement after it ran as sent.
    ///
    /// | refused with | the statement ran | done |
    /// |---|---|---|
    /// | 1400 (work pending outside XA, `LOCK TABLES`) | on its own, outside XA | nothing: the tail captures it after the fact |
    /// | anything else (1399: an XA already active on the connection) | inside a transaction shoal does not know of: not committed | the connection is closed (rolling both back) and the statement answered [`ProxyError::TransactionLost`] instead of its OK ([`Session::xa_epilogue`]) |
    pub(super) fn xa_start_failed(&mut self, code: u16, bytes: &[u8]) {
        if code != ER_XAER_OUTSIDE {
            tracing::warn!(id = self.id, code, error = %server_error(bytes), "XA START refused: the statement ran inside a transaction left on the connection; it is rolled back");
            if let Some(conn) = self.backend.held.as_mut() {
                conn.mark_broken();
            }
            self.backend.ran_in_unknown_xa = true;
        }
        self.backend.xa = None;
        self.backend.pin.remove(Pin::TRANSACTION);
    }

    /// Rolls the open XA back (best effort: a connection that fails is closed, which
    /// rolls an unprepared XA back too).
    async fn xa_rollback_silently(&mut self, ended: bool) {
        let Some(xa) = self.backend.xa.take() else { return };
        let end = if ended { Ok(Ok(0)) } else { self.xa_ask(&format!("XA END '{}'", xa.xid)).await };
        let rolled = match end {
            Ok(_) => self.xa_ask(&format!("XA ROLLBACK '{}'", xa.xid)).await,
            Err(e) => Err(e),
        };
        if !matches!(rolled, Ok(Ok(_))) {
            if let Some(conn) = self.backend.held.as_mut() {
                conn.mark_broken();
            }
        }
        self.backend.pin.remove(Pin::TRANSACTION);
        metrics::counter!(crate::metrics::CAPTURE_TRANSACTIONS, "outcome" => "rolled_back").increment(1);
    }

    /// Writes the marker row, ends and prepares the open XA in one round trip, and waits
    /// until the tail's entry for it is durable. On failure the XA is rolled back.
    ///
    /// The capture that opened the XA must still be the published one. If it is gone or
    /// was replaced (this node stopped leading while the statement ran: the check at the
    /// statement's start passed), the transaction was never proposed: it is rolled back
    /// and answered [`ProxyError::TransactionLost`]. Committing it would change this
    /// node's MariaDB only and acknowledge a write the cluster never had (the failover
    /// test caught that once, 11 ms after a leader lost its term).
    async fn xa_prepare_durable(&mut self) -> Result<(), ProxyError> {
        let Some(xa) = self.backend.xa.clone() else { return Ok(()) };
        let Some(capture) = self.capture().filter(|c| c.owns(&xa.open)) else {
            self.xa_rollback_silently(false).await;
            return Err(lost_transaction());
        };
        let waiter = capture.expect(&xa.xid);
        let steps = [
            format!("INSERT INTO shoal_meta.txn (xid) VALUES ('{}')", xa.xid),
            format!("XA END '{}'", xa.xid),
            format!("XA PREPARE '{}'", xa.xid),
        ];
        let conn = self.backend.conn();
        let mut failed: Option<(usize, String)> = None;
        let mut status = None;
        let round_trip = async {
            for s in &steps {
                conn.send(com::QUERY, s.as_bytes()).await?;
            }
            for i in 0..steps.len() {
                let (framer, bytes) = conn.read_response(Expect::Results).await?;
                status = framer.status().or(status);
                if framer.error.is_some() && failed.is_none() {
                    failed = Some((i, server_error(&bytes)));
                }
            }
            Ok::<(), ProxyError>(())
        }
        .await;
        if let Err(e) = round_trip {
            return Err(self.prepare_broke(waiter, &xa.xid, e).await);
        }
        if let Some(s) = status {
            self.backend.status = s;
        }
        if let Some((step, msg)) = failed {
            waiter.cancel();
            // After a failed INSERT the rest still ran (separate commands): `XA END` may
            // have ended the branch, and `XA PREPARE` may have prepared it.
            let prepared = step == 0 && self.xa_ask(&format!("XA ROLLBACK '{}'", xa.xid)).await?.is_ok();
            if !prepared {
                self.xa_rollback_silently(step != 1).await;
            }
            self.backend.xa = None;
            self.backend.pin.remove(Pin::TRANSACTION);
            let hint = if step == 0 {
                " (does the account have INSERT on shoal_meta.txn? see docs/replication.md)"
            } else {
                ""
            };
            return Err(ProxyError::CommitFailed(format!(
                "the transaction could not be prepared for replication and was rolled back: {msg}{hint}"
            )));
        }
        let started = Instant::now();
        let durable = waiter.durable().await;
        metrics::histogram!(crate::metrics::CAPTURE_DURABLE_WAIT).record(started.elapsed().as_secs_f64());
        if let Ok(lsn) = &durable {
            self.backend.last_lsn = Some(*lsn);
            // Durable: it commits, here too if this connection breaks before XA COMMIT.
            crate::capture::setup::settle_later(&xa.xid, true);
        }
        if let Err(e @ CaptureError::Unknown { term, .. }) = durable {
            // The log may still commit it: it stays prepared (detached when this
            // connection closes) until the log decides.
            crate::capture::setup::orphan(&xa.xid, term);
            if let Some(conn) = self.backend.held.as_mut() {
                conn.mark_broken();
            }
            self.backend.xa = None;
            self.backend.pin.remove(Pin::TRANSACTION);
            metrics::counter!(crate::metrics::CAPTURE_TRANSACTIONS, "outcome" => "unknown").increment(1);
            return Err(ProxyError::OutcomeUnknown(format!(
                "outcome unknown: {e}; the cluster log decides it (committed everywhere or nowhere), check before retrying"
            )));
        }
        if let Err(e) = durable {
            let rolled = self.xa_ask(&format!("XA ROLLBACK '{}'", xa.xid)).await;
            self.backend.xa = None;
            self.backend.pin.remove(Pin::TRANSACTION);
            metrics::counter!(crate::metrics::CAPTURE_TRANSACTIONS, "outcome" => "failed").increment(1);
            let rolled = if matches!(rolled, Ok(Ok(_))) {
                "rolled back"
            } else {
                crate::capture::setup::settle_later(&xa.xid, false);
                "rolled back once this node's MariaDB answers again"
            };
            return Err(ProxyError::CommitFailed(format!("{e}; the transaction was {rolled}")));
        }
        Ok(())
    }

    /// The connection broke during `XA END`/`XA PREPARE` (the MariaDB died): the
    /// transaction may be prepared there, and its entry may be on its way to the log. The
    /// session waits for the log's answer and leaves the decision for when the MariaDB
    /// answers again ([`crate::capture::setup::settle_later`], or an orphan the log
    /// decides), then tells the client what it knows.
    ///
    /// | the log says | decision left | the client gets |
    /// |---|---|---|
    /// | durable | commit | 1180 `outcome unknown:` naming it durable (the session's MariaDB is gone) |
    /// | refused (never appended) | roll back | the error: not committed |
    /// | taken, then the leadership lost | the log's (orphan) | 1180 `outcome unknown:` |
    /// | nothing within the wait (never proposed, or the tail is gone) | roll back | 1180 `outcome unknown:` |
    async fn prepare_broke(&mut self, waiter: crate::capture::Waiter, xid: &str, broke: ProxyError) -> ProxyError {
        use crate::capture::setup;
        self.backend.xa = None;
        self.backend.pin.remove(Pin::TRANSACTION);
        if let Some(conn) = self.backend.held.as_mut() {
            conn.mark_broken();
        }
        let unknown = |what: &str| {
            ProxyError::OutcomeUnknown(format!(
                "outcome unknown: the connection to this node's MariaDB broke while the transaction was being prepared ({broke}); {what}"
            ))
        };
        match waiter.durable().await {
            Ok(lsn) => {
                setup::settle_later(xid, true);
                setup::commit_undelivered(xid);
                self.backend.last_lsn = Some(lsn);
                unknown("it is durable in the cluster log and commits everywhere")
            }
            Err(CaptureError::NotDurable(why)) => {
                setup::settle_later(xid, false);
                ProxyError::CommitFailed(format!(
                    "the transaction was not made durable ({why}) and is rolled back; the connection to this node's MariaDB broke ({broke})"
                ))
            }
            Err(CaptureError::Unknown { term, .. }) => {
                setup::orphan(xid, term);
                unknown("the cluster log decides it (committed everywhere or nowhere)")
            }
            Err(e) => {
                setup::settle_later(xid, false);
                unknown(&format!("{e}; it is rolled back here"))
            }
        }
    }

    /// Brings the open XA `xa` to where one statement commits it, and returns that
    /// statement: prepared and durable after a write (`XA COMMIT 'x'`), ended when it only
    /// read (`XA COMMIT 'x' ONE PHASE`, nothing binlogged). On failure it is rolled back.
    async fn xa_ready_to_commit(&mut self, xa: &OpenXa) -> Result<String, ProxyError> {
        if xa.wrote {
            self.xa_prepare_durable().await?;
            return Ok(format!("XA COMMIT '{}'", xa.xid));
        }
        if let Err((code, msg)) = self.xa_ask(&format!("XA END '{}'", xa.xid)).await? {
            self.xa_rollback_silently(false).await;
            return Err(ProxyError::CommitFailed(format!("XA END failed ({code}): {msg}")));
        }
        Ok(format!("XA COMMIT '{}' ONE PHASE", xa.xid))
    }

    /// Commits the open XA without answering the client (before a statement that
    /// commits implicitly, and for a wrapped autocommit write).
    async fn xa_commit_silently(&mut self) -> Result<u16, ProxyError> {
        let Some(xa) = self.backend.xa.clone() else { return Ok(self.backend.status) };
        let commit = self.xa_ready_to_commit(&xa).await?;
        let r = match self.xa_ask(&commit).await {
            Ok(r) => r,
            // Durable on a quorum: committed in the cluster. This MariaDB gets its
            // XA COMMIT once it answers again (`settle_later` above).
            Err(e) if xa.wrote => {
                tracing::warn!(xid = %xa.xid, error = %e, "the connection broke before XA COMMIT of a durable transaction; it commits once the local MariaDB answers");
                crate::capture::setup::commit_undelivered(&xa.xid);
                if let Some(conn) = self.backend.held.as_mut() {
                    conn.mark_broken();
                }
                self.backend.xa = None;
                self.backend.pin.remove(Pin::TRANSACTION);
                return Ok(self.backend.status);
            }
            Err(e) => return Err(e),
        };
        self.backend.xa = None;
        self.backend.pin.remove(Pin::TRANSACTION);
        if r.is_ok() {
            crate::capture::setup::settled(&xa.xid);
        }
        match r {
            Ok(status) => {
                let outcome = if xa.wrote { "committed" } else { "read_only" };
                metrics::counter!(crate::metrics::CAPTURE_TRANSACTIONS, "outcome" => outcome).increment(1);
                Ok(status)
            }
            Err((code, msg)) => Err(ProxyError::CommitFailed(format!("{commit} failed ({code}): {msg}"))),
        }
    }

    /// Everything before a text statement runs with capture on: the decision, the XA
    /// statements it needs first, and what to send instead of the client's text.
    pub(super) async fn xa_prelude(
        &mut self,
        class: &Classification,
        payload: BytesMut,
    ) -> Result<Prelude, ProxyError> {
        self.end_lost_transaction().await?;
        self.end_transaction_outside_xa(class).await?;
        self.refuse_write_here(class).await?;
        let deadline = tokio::time::Instant::now() + self.proxy.failover_buffer();
        loop {
            let step = self.xa_step_for(class, &payload[1..]);
            match step {
                XaStep::Pass if self.escapes_capture(class) => {
                    self.wait_for_write_path(class, deadline).await?;
                    continue;
                }
                XaStep::Pass => return self.ddl_prelude(class, payload).await,
                XaStep::Refuse(msg) => return Err(ProxyError::NotSupported(msg.to_string())),
                XaStep::CommitFirst => {
                    self.xa_commit_silently().await?;
                    continue;
                }
                XaStep::Begin => {
                    if !self.lease_capturing(class, true, deadline).await? {
                        continue;
                    }
                    let Some(capture) = self.capture() else { return Ok(Prelude { payload, plan: XaPlan::Plain }) };
                    let xid = capture.next_xid();
                    let sql = format!("XA START '{xid}'");
                    return Ok(Prelude {
                        payload: query_payload(&sql),
                        plan: XaPlan::Begin(xid, capture.open_token()),
                    });
                }
                XaStep::Commit => {
                    let Some(xa) = self.backend.xa.clone() else { return Ok(Prelude { payload, plan: XaPlan::Plain }) };
                    let sql = self.xa_ready_to_commit(&xa).await?;
                    let outcome = if xa.wrote { "committed" } else { "read_only" };
                    return Ok(Prelude { payload: query_payload(&sql), plan: XaPlan::End(outcome) });
                }
                XaStep::Rollback => {
                    let Some(xa) = self.backend.xa.clone() else { return Ok(Prelude { payload, plan: XaPlan::Plain }) };
                    // A branch that already failed XA END is rolled back by XA ROLLBACK alone.
                    let _ = self.xa_ask(&format!("XA END '{}'", xa.xid)).await?;
                    let sql = format!("XA ROLLBACK '{}'", xa.xid);
                    return Ok(Prelude { payload: query_payload(&sql), plan: XaPlan::End("rolled_back") });
                }
                XaStep::Wrap => {
                    // `XA START` goes in the statement's round trip (`send_first`).
                    if !self.lease_capturing(class, false, deadline).await? {
                        continue;
                    }
                    let Some(capture) = self.capture() else { return Ok(Prelude { payload, plan: XaPlan::Plain }) };
                    let xid = capture.next_xid();
                    self.backend.send_first = Some(format!("XA START '{xid}'"));
                    self.backend.xa = Some(OpenXa { xid, wrote: true, open: capture.open_token() });
                    self.backend.pin.add(Pin::TRANSACTION);
                    self.io.hold();
                    return Ok(Prelude { payload, plan: XaPlan::Wrap });
                }
                XaStep::StartFirst => {
                    if !self.lease_capturing(class, true, deadline).await? {
                        continue;
                    }
                    self.xa_start().await?;
                    return Ok(Prelude { payload, plan: XaPlan::Plain });
                }
            }
        }
    }

    /// The prelude of a prepared statement's execute; `None` when shoal answered it
    /// (a prepared `BEGIN`, `COMMIT` or `ROLLBACK`, as sysbench sends them).
    pub(super) async fn xa_prelude_execute(&mut self, class: &Classification) -> Result<Option<XaPlan>, ProxyError> {
        self.end_lost_transaction().await?;
        self.end_transaction_outside_xa(class).await?;
        self.refuse_write_here(class).await?;
        let deadline = tokio::time::Instant::now() + self.proxy.failover_buffer();
        loop {
            return match self.xa_step_for(class, b"") {
                XaStep::Pass if self.escapes_capture(class) => {
                    self.wait_for_write_path(class, deadline).await?;
                    continue;
                }
                XaStep::CommitFirst => {
                    self.xa_commit_silently().await?;
                    continue;
                }
                XaStep::Wrap => {
                    // `XA START` goes in the execute's round trip (`send_first`).
                    if !self.lease_capturing(class, false, deadline).await? {
                        continue;
                    }
                    let Some(capture) = self.capture() else { return Ok(Some(XaPlan::Plain)) };
                    let xid = capture.next_xid();
                    self.backend.send_first = Some(format!("XA START '{xid}'"));
                    self.backend.xa = Some(OpenXa { xid, wrote: true, open: capture.open_token() });
                    self.backend.pin.add(Pin::TRANSACTION);
                    self.io.hold();
                    Ok(Some(XaPlan::Wrap))
                }
                XaStep::StartFirst => {
                    if !self.lease_capturing(class, true, deadline).await? {
                        continue;
                    }
                    self.xa_start().await?;
                    Ok(Some(XaPlan::Plain))
                }
                XaStep::Begin => {
                    if !self.lease_capturing(class, true, deadline).await? {
                        continue;
                    }
                    if !self.xa_start().await? {
                        return Ok(Some(XaPlan::Plain));
                    }
                    self.reply_ok(1).await?;
                    Ok(None)
                }
                XaStep::Commit => {
                    self.xa_commit_silently().await?;
                    self.reply_ok(1).await?;
                    self.backend.release_if_free();
                    Ok(None)
                }
                XaStep::Rollback => {
                    self.xa_rollback_silently(false).await;
                    self.reply_ok(1).await?;
                    self.backend.release_if_free();
                    Ok(None)
                }
                XaStep::Refuse(msg) => Err(ProxyError::NotSupported(msg.to_string())),
                XaStep::Pass => Ok(Some(XaPlan::Plain)),
            };
        }
    }

    /// The prelude of a statement that passes: DDL (not temporary) is proposed first and
    /// then runs with shoal's mark, so every node runs it and the leader's tail knows it.
    async fn ddl_prelude(&mut self, class: &Classification, payload: BytesMut) -> Result<Prelude, ProxyError> {
        let temporary = class.flags.intersects(Flags(Flags::CREATE_TEMP_TABLE.0 | Flags::DROP_TEMP_TABLE.0));
        let Some(capture) = self.capture() else { return Ok(Prelude { payload, plan: XaPlan::Plain }) };
        if class.kind != Kind::Ddl || temporary || class.flags.contains(Flags::MULTI_STATEMENT) {
            return Ok(Prelude { payload, plan: XaPlan::Plain });
        }
        self.xa_lease(class).await?;
        let pos = self.backend.conn().query_value("SELECT @@gtid_binlog_pos").await?.flatten();
        let pos = pos.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default();
        let sql = String::from_utf8_lossy(&payload[1..]).into_owned();
        let id = capture.next_statement_id();
        let session = self.state.vars.iter().map(|(_, text)| text.to_string()).collect();
        let entry = StatementEntry { id: id.clone(), schema: self.state.schema.clone(), session, sql: sql.clone() };
        let here = capture.runs_statements_here();
        if here {
            crate::capture::setup::expect_statement_outcome(&id);
        }
        let proposed = capture.propose_statement(entry, &pos).await;
        let outcome = if here { crate::capture::setup::take_statement_outcome(&id) } else { None };
        let lsn = proposed.map_err(|e| {
            ProxyError::Unavailable(format!("the statement was not run: it could not be replicated: {e}"))
        })?;
        self.backend.last_lsn = Some(lsn);
        if here {
            // The leader's applier ran it, in log order, as every node does: the client
            // gets that outcome through a stand-in the server answers the same way.
            let stand_in = match outcome {
                Some(Ok(())) => "DO 0".to_string(),
                Some(Err((code, message))) => signal(code, &message),
                None => signal(
                    1105,
                    &format!("the statement is in the cluster log (LSN {lsn}) but this node did not report running it; compare the nodes' schema"),
                ),
            };
            return Ok(Prelude { payload: query_payload(&stand_in), plan: XaPlan::Plain });
        }
        let thread = self.backend.conn().thread_id;
        capture.expect_statement(thread);
        let marked = format!("{STATEMENT_MARK}{id}*/ {sql}");
        Ok(Prelude { payload: query_payload(&marked), plan: XaPlan::Statement(thread) })
    }

    /// What follows a statement run under `plan`. `framer` is its response's; for a
    /// wrapped write its reply (held so far) goes out here, after the commit.
    pub(super) async fn xa_epilogue(
        &mut self,
        plan: XaPlan,
        class: &Classification,
        framer: &mut Framer,
    ) -> Result<(), ProxyError> {
        match plan {
            XaPlan::Plain => match framer.error {
                Some(code) if ROLLED_BACK_BY_SERVER.contains(&code) && self.backend.xa.is_some() => {
                    self.xa_rollback_silently(false).await;
                }
                _ => {
                    if let Some(xa) = self.backend.xa.as_mut() {
                        xa.wrote |= writes(class) || class.kind == Kind::Call;
                    }
                }
            },
            XaPlan::Statement(thread) => {
                if framer.error.is_some() {
                    if let Some(capture) = self.capture() {
                        capture.forget_statement(thread);
                    }
                }
            }
            XaPlan::Begin(xid, open) => {
                // Recorded with the capture that started it, even if that capture went
                // while `XA START` ran (the node stopped leading): the next statement then
                // rolls it back as lost (`end_lost_transaction`). Left unrecorded, the XA
                // stayed active on the connection, unknown to shoal, and a later session's
                // autocommit write ran inside it: acknowledged, never committed (chaos
                // seed 515151: acked serials missing on every node).
                if framer.error.is_none() {
                    self.backend.xa = Some(OpenXa { xid, wrote: false, open });
                }
            }
            XaPlan::End(outcome) => {
                if let (Some(xa), None) = (self.backend.xa.take(), framer.error) {
                    crate::capture::setup::settled(&xa.xid);
                }
                if framer.error.is_none() {
                    metrics::counter!(crate::metrics::CAPTURE_TRANSACTIONS, "outcome" => outcome).increment(1);
                }
            }
            XaPlan::Wrap => {
                let mut held = self.io.take_held();
                if std::mem::take(&mut self.backend.ran_in_unknown_xa) {
                    // Its OK (held) is dropped: nothing of it committed.
                    return Err(ProxyError::TransactionLost(
                        "the write ran inside a transaction left open on its backend connection and was rolled back \
                         with it; nothing committed: retry it"
                            .into(),
                    ));
                } else if self.backend.xa.is_none() {
                    // XA START was refused (work pending outside XA): the statement ran as sent.
                } else if framer.error.is_some() {
                    self.xa_rollback_silently(false).await;
                } else {
                    let status = self.xa_commit_silently().await?;
                    let in_trans = StatusFlags::SERVER_STATUS_IN_TRANS.bits();
                    let autocommit = StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits();
                    let after = status & (in_trans | autocommit);
                    patch_final_status(&mut held, |s| (s & !(in_trans | autocommit)) | after);
                    if let Some(ok) = framer.last_ok.as_mut() {
                        ok.status = (ok.status & !(in_trans | autocommit)) | after;
                    }
                }
                self.io.write_raw(&held).await?;
            }
        }
        Ok(())
    }

    /// A wrapped write that did not run to an answer from MariaDB (shoal refused it, or
    /// the connection failed): the XA is rolled back; `deliver` sends what was held (a
    /// refusal shoal forwarded), else it is dropped.
    pub(super) async fn xa_abandon(&mut self, plan: &XaPlan, deliver: bool) -> Result<(), ProxyError> {
        if let (XaPlan::Statement(thread), Some(capture)) = (plan, self.capture()) {
            capture.forget_statement(*thread);
        }
        if let XaPlan::Wrap = plan {
            let held = self.io.take_held();
            self.xa_rollback_silently(false).await;
            if deliver {
                self.io.write_raw(&held).await?;
            }
        }
        Ok(())
    }
}
