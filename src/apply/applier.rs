//! [`Applier`]: one session on the local MariaDB that applies committed entries.

use std::collections::HashSet;
use std::time::Instant;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use crate::capture::{Entry, Origin, RowsEntry, StatementEntry};
use crate::wal::{Lsn, Term};

use super::error::{classify, ApplyError};
use super::plan::{self, BinlogSql, Limits, Step};
use super::{Committed, META_TABLES};

/// Bytes kept free below the server's `max_allowed_packet` for the statement around a
/// `BINLOG` payload and the packet header.
const PACKET_SLACK_BYTES: usize = 1024;
/// `innodb_lock_wait_timeout` of the applier's session, seconds. On a follower nothing
/// but shoal's own prepared transactions holds row locks the applier needs, and those
/// wait for a decision the applier delivers between attempts
/// (`RaftApplier::apply_deciding`): a short wait gets back to deciding them.
pub const APPLY_LOCK_WAIT_S: u32 = 2;

/// Why one transaction of the applier did not commit.
enum TxnError {
    /// MariaDB refused a statement (rolled back): the entry may be at fault.
    Server { code: u16, message: String },
    /// Connection lost or transient rollback: retry the whole batch later.
    Retry(ApplyError),
}

/// Applies committed entries to the local MariaDB over one connection, in LSN order,
/// exactly once. Not shared: one applier per node.
pub struct Applier {
    /// How to reach the local MariaDB again after a connection error.
    opts: Opts,
    /// host:port, for errors.
    addr: String,
    /// The set-up session; `None` after a connection error (reconnected on next use).
    conn: Option<Conn>,
    /// Format_description last sent on `conn` (MariaDB needs one per session, error 1609).
    format_sent: Option<Vec<u8>>,
    /// Largest query `conn` accepts (`max_allowed_packet` minus slack).
    query_bytes_max: usize,
    /// Last applied (LSN, term) as committed in `shoal_meta.applied`; `None` until read
    /// again (after a reconnect a COMMIT whose answer was lost may or may not have happened).
    applied: Option<(Lsn, Term)>,
    /// Transaction grouping.
    limits: Limits,
    /// The account could not turn binlogging off; said once, not on every reconnect.
    log_bin_warned: bool,
}

impl Applier {
    /// Connects to the local MariaDB and sets the session up (see the module docs).
    pub async fn connect(opts: impl Into<Opts>) -> Result<Applier, ApplyError> {
        let opts = opts.into();
        let addr = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
        let mut a = Applier {
            opts,
            addr,
            conn: None,
            format_sent: None,
            query_bytes_max: 0,
            applied: None,
            limits: Limits::default(),
            log_bin_warned: false,
        };
        a.session().await?;
        Ok(a)
    }

    /// Replaces the transaction limits (tests use small ones to commit more often).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Creates `shoal_meta` and its tables if missing ([`META_TABLES`]).
    pub async fn prepare(&mut self) -> Result<(), ApplyError> {
        for sql in META_TABLES {
            let addr = self.addr.clone();
            let conn = self.session().await?;
            if let Err(e) = conn.query_drop(sql).await {
                return Err(match classify(&e) {
                    Ok((code, message)) => ApplyError::Setup { addr, step: sql.to_string(), code, message },
                    Err(reason) => self.broken("creating shoal_meta", reason),
                });
            }
        }
        Ok(())
    }

    /// LSN of the last entry applied here (0: none).
    pub async fn applied_lsn(&mut self) -> Result<Lsn, ApplyError> {
        Ok(self.applied().await?.0)
    }

    /// LSN and term of the last entry applied here ((0, 0): none), as committed in
    /// `shoal_meta.applied`.
    pub async fn applied(&mut self) -> Result<(Lsn, Term), ApplyError> {
        if let Some(a) = self.applied {
            return Ok(a);
        }
        let addr = self.addr.clone();
        let conn = self.session().await?;
        const SQL: &str = "SELECT lsn, term FROM shoal_meta.applied WHERE id = 1";
        match conn.query_first::<(u64, u64), _>(SQL).await {
            Ok(row) => {
                let a = row.unwrap_or((0, 0));
                self.applied = Some(a);
                metrics::gauge!(crate::metrics::APPLY_APPLIED_LSN).set(a.0 as f64);
                Ok(a)
            }
            Err(e) => Err(match classify(&e) {
                Ok((code, message)) => {
                    ApplyError::Setup { addr, step: format!("{SQL} (call Applier::prepare first)"), code, message }
                }
                Err(reason) => self.broken("reading the applied LSN", reason),
            }),
        }
    }

    /// Moves the applied position up to (`lsn`, `term`) without applying anything (never
    /// down): a snapshot vouches that everything up to there is in this MariaDB already
    /// (the leader's own transactions, committed by their sessions).
    pub async fn record_applied(&mut self, lsn: Lsn, term: Term) -> Result<(), ApplyError> {
        let sql = plan::applied_raise(lsn, term);
        self.applied = None;
        self.run_or_retry(&sql, "recording the applied LSN").await?;
        self.applied().await.map(|_| ())
    }

    /// Applies one captured transaction's rows again, out of log order, unless its marker
    /// is here: for a transaction the log holds that this MariaDB lost before it was
    /// prepared (`capture::setup::take_lost`). The applied position stays where it is.
    pub async fn reapply(&mut self, rows: crate::capture::RowsEntry) -> Result<(), ApplyError> {
        let (lsn, term) = self.applied().await?;
        let again = Committed { lsn, term, entry: crate::capture::Entry::Rows(rows) };
        self.rows(std::slice::from_ref(&again)).await
    }

    /// Applies `batch` (strictly increasing LSNs) and returns the applied LSN after it.
    /// Entries at or below the applied LSN, and captured entries whose marker this
    /// MariaDB already holds, are skipped (counted, and the applied LSN still advances).
    /// On [`ApplyError::Connection`] call again with the same batch.
    pub async fn apply(&mut self, batch: &[Committed]) -> Result<Lsn, ApplyError> {
        let (applied, _) = self.applied().await?;
        let steps = plan::plan(batch, applied, &self.limits)
            .map_err(|o| ApplyError::OutOfOrder { lsn: o.lsn, after: o.after })?;
        let below = batch.partition_point(|c| c.lsn <= applied);
        if below > 0 {
            metrics::counter!(crate::metrics::APPLY_ENTRIES, "outcome" => "skipped").increment(below as u64);
        }
        for step in steps {
            let started = Instant::now();
            match step {
                Step::Rows(entries) => self.rows(entries).await?,
                Step::Statement(c) => self.statement(c).await?,
            }
            metrics::histogram!(crate::metrics::APPLY_BATCH_DURATION).record(started.elapsed().as_secs_f64());
        }
        Ok(self.applied.map_or(applied, |a| a.0))
    }

    /// Closes the connection (a new one is made on next use).
    pub async fn disconnect(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = c.disconnect().await;
        }
    }

    /// A rows step: all entries in one transaction; on a refused statement, again entry
    /// by entry, to commit the good ones and name the bad one.
    async fn rows(&mut self, entries: &[Committed]) -> Result<(), ApplyError> {
        match self.rows_txn(entries).await {
            Ok(()) => return Ok(()),
            Err(TxnError::Retry(e)) => return Err(e),
            Err(TxnError::Server { code, message }) if entries.len() == 1 => {
                return Err(entry_error(&entries[0], code, message))
            }
            Err(TxnError::Server { code, message }) => {
                tracing::info!(first = entries[0].lsn, n = entries.len(), code, %message, "apply transaction refused; retrying its entries one by one to find the failing one");
            }
        }
        for i in 0..entries.len() {
            match self.rows_txn(&entries[i..=i]).await {
                Ok(()) => {}
                Err(TxnError::Retry(e)) => return Err(e),
                Err(TxnError::Server { code, message }) => return Err(entry_error(&entries[i], code, message)),
            }
        }
        Ok(())
    }

    /// One MariaDB transaction: marker check, `BINLOG` statements, applied LSN, COMMIT.
    /// Rolled back (or the connection dropped) on any error.
    async fn rows_txn(&mut self, entries: &[Committed]) -> Result<(), TxnError> {
        let Some(last) = entries.last() else { return Ok(()) };
        let format = match entries[0].entry.rows().first() {
            Some(r) => r.format.clone(),
            None => unreachable!("plan puts statement entries in their own step"),
        };
        self.send_format(&format).await?;
        let result = self.rows_txn_inner(entries).await;
        match result {
            Ok(skipped) => {
                self.applied = Some((last.lsn, last.term));
                metrics::gauge!(crate::metrics::APPLY_APPLIED_LSN).set(last.lsn as f64);
                // `skipped` counts transactions (a batch entry holds many).
                let transactions: usize = entries.iter().map(|c| c.entry.rows().len()).sum();
                let applied = transactions.saturating_sub(skipped) as u64;
                metrics::counter!(crate::metrics::APPLY_ENTRIES, "outcome" => "applied").increment(applied);
                if skipped > 0 {
                    metrics::counter!(crate::metrics::APPLY_ENTRIES, "outcome" => "skipped").increment(skipped as u64);
                }
                Ok(())
            }
            Err(e) => {
                // A refused BINLOG statement does not end the transaction, and rows it
                // applied before the failing event stay: roll back whatever happened.
                let rolled_back = match self.conn.as_mut() {
                    Some(c) => {
                        c.query_drop("ROLLBACK").await.is_ok() && c.query_drop("SET TIMESTAMP = DEFAULT").await.is_ok()
                    }
                    None => true,
                };
                if !rolled_back {
                    // Disconnecting rolls the transaction back server-side.
                    self.conn = None;
                }
                Err(e)
            }
        }
    }

    /// Returns how many entries were skipped because their marker was present.
    async fn rows_txn_inner(&mut self, entries: &[Committed]) -> Result<usize, TxnError> {
        let last = entries.last().expect("not empty");
        self.run("START TRANSACTION", "starting an apply transaction").await?;
        // Every transaction of the step (a batch entry holds several), each skipped when its
        // marker is here already.
        let all: Vec<&RowsEntry> = entries.iter().flat_map(|c| c.entry.rows()).collect();
        let xids: Vec<&str> = all.iter().filter_map(|r| plan::xid(r)).collect();
        let present: HashSet<String> = match plan::marker_query(&xids) {
            Some(q) => self.query_strings(&q, "checking shoal_meta.txn markers").await?.into_iter().collect(),
            None => HashSet::new(),
        };
        let todo: Vec<&RowsEntry> =
            all.iter().copied().filter(|r| plan::xid(r).is_none_or(|x| !present.contains(x))).collect();
        let payloads = plan::binlog_payloads(todo.iter().copied(), self.limits.binlog_raw_bytes_max);
        for raw in &payloads {
            match plan::binlog_sql(raw, self.query_bytes_max) {
                Some(BinlogSql::Whole(sql)) => self.run(&sql, "applying row events").await?,
                Some(BinlogSql::Fragments(parts)) => {
                    for sql in &parts {
                        self.run(sql, "applying row events in fragments").await?;
                    }
                }
                None => {
                    return Err(TxnError::Server {
                        code: 0,
                        message: format!(
                            "a row-event statement of {} bytes does not fit in two packets of max_allowed_packet ({} bytes) on this node; raise max_allowed_packet here to at least {} bytes",
                            raw.len(),
                            self.query_bytes_max + PACKET_SLACK_BYTES,
                            raw.len().div_ceil(3) * 2 + PACKET_SLACK_BYTES + 64
                        ),
                    })
                }
            }
        }
        self.run(&plan::applied_upsert(last.lsn, last.term), "recording the applied LSN").await?;
        self.run("COMMIT", "committing an apply transaction").await?;
        if !payloads.is_empty() {
            // BINLOG pins the session timestamp to the events' time.
            self.run("SET TIMESTAMP = DEFAULT", "resetting the session timestamp").await?;
        }
        Ok(all.len() - todo.len())
    }

    /// A statement entry: its schema and session context, the statement, the context
    /// reset, then the applied LSN (autocommit). A refused statement is recorded, not
    /// fatal: every node, the leader included, runs it and gets the same outcome.
    async fn statement(&mut self, c: &Committed) -> Result<(), ApplyError> {
        let Entry::Statement(s) = &c.entry else { unreachable!("plan puts rows entries in rows steps") };
        let mut set = Vec::new();
        let outcome = self.statement_run(s, &mut set).await;
        for reset in set {
            self.run_or_retry(&reset, "resetting a statement's session variable").await?;
        }
        match &outcome {
            Ok(()) => crate::capture::setup::statement_ran(&s.id, Ok(())),
            Err(TxnError::Server { code, message }) => {
                crate::capture::setup::statement_ran(&s.id, Err((*code, message.clone())))
            }
            Err(TxnError::Retry(_)) => {}
        }
        match outcome {
            Ok(()) => {}
            Err(TxnError::Retry(e)) => return Err(e),
            Err(TxnError::Server { code, message }) => {
                metrics::counter!(crate::metrics::APPLY_STATEMENT_ERRORS).increment(1);
                tracing::warn!(lsn = c.lsn, id = %s.id, code, %message, sql = %s.sql, "statement entry failed here; applying goes on (every node runs it and gets the leader's outcome; compare nodes if the leader's differed)");
            }
        }
        self.run_or_retry(&plan::applied_upsert(c.lsn, c.term), "recording the applied LSN").await?;
        self.applied = Some((c.lsn, c.term));
        metrics::gauge!(crate::metrics::APPLY_APPLIED_LSN).set(c.lsn as f64);
        metrics::counter!(crate::metrics::APPLY_ENTRIES, "outcome" => "applied").increment(1);
        Ok(())
    }

    async fn statement_run(&mut self, s: &StatementEntry, set: &mut Vec<String>) -> Result<(), TxnError> {
        if let Some(schema) = &s.schema {
            self.run(&format!("USE {}", plan::quote_ident(schema)), "selecting a statement's schema").await?;
        }
        for a in &s.session {
            let (run, reset) = plan::session_statements(a).map_err(|message| TxnError::Server { code: 0, message })?;
            self.run(&run, "setting a statement's session variable").await?;
            set.push(reset);
        }
        // With shoal's mark, as the leader's session ran it before: a binlog that records
        // the applier's statements (no BINLOG ADMIN) shows the tail it is proposed already.
        let marked = format!("{}{}*/ {}", crate::capture::STATEMENT_MARK, s.id, s.sql);
        self.run(&marked, "running a statement entry").await
    }

    /// Sends the Format_description if this session has not had this one yet.
    async fn send_format(&mut self, format: &[u8]) -> Result<(), TxnError> {
        if self.conn.is_some() && self.format_sent.as_deref() == Some(format) {
            return Ok(());
        }
        let mut sql = String::from("BINLOG '");
        plan::base64_into(format, &mut sql);
        sql.push('\'');
        match self.run(&sql, "sending the Format_description event").await {
            Ok(()) => {
                self.format_sent = Some(format.to_vec());
                Ok(())
            }
            Err(TxnError::Server { code, message }) => Err(TxnError::Retry(ApplyError::Setup {
                addr: self.addr.clone(),
                step: "BINLOG '<Format_description event>'".into(),
                code,
                message,
            })),
            Err(e) => Err(e),
        }
    }

    /// Runs one statement on the session; a broken connection is dropped.
    async fn run(&mut self, sql: &str, during: &'static str) -> Result<(), TxnError> {
        let conn = self.session().await.map_err(TxnError::Retry)?;
        match conn.query_drop(sql).await {
            Ok(()) => Ok(()),
            Err(e) => Err(match classify(&e) {
                Ok((code, message)) => TxnError::Server { code, message },
                Err(reason) => TxnError::Retry(self.broken(during, reason)),
            }),
        }
    }

    /// Like [`Applier::run`], for statements that must not fail: a refusal is an error
    /// of the applier's own bookkeeping, reported as a setup problem.
    async fn run_or_retry(&mut self, sql: &str, during: &'static str) -> Result<(), ApplyError> {
        match self.run(sql, during).await {
            Ok(()) => Ok(()),
            Err(TxnError::Retry(e)) => Err(e),
            Err(TxnError::Server { code, message }) => {
                Err(ApplyError::Setup { addr: self.addr.clone(), step: sql.to_string(), code, message })
            }
        }
    }

    async fn query_strings(&mut self, sql: &str, during: &'static str) -> Result<Vec<String>, TxnError> {
        let conn = self.session().await.map_err(TxnError::Retry)?;
        match conn.query::<String, _>(sql).await {
            Ok(v) => Ok(v),
            Err(e) => Err(match classify(&e) {
                Ok((code, message)) => TxnError::Server { code, message },
                Err(reason) => TxnError::Retry(self.broken(during, reason)),
            }),
        }
    }

    /// Drops the connection after an error that broke it.
    fn broken(&mut self, during: &'static str, reason: String) -> ApplyError {
        self.conn = None;
        ApplyError::Connection { addr: self.addr.clone(), during, reason }
    }

    /// The session, connected and set up.
    async fn session(&mut self) -> Result<&mut Conn, ApplyError> {
        if self.conn.is_none() {
            let conn = self.open().await?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }

    /// Connects and sets the session up:
    ///
    /// * `sql_log_bin = 0`: applied rows need not be in this node's binlog (its MariaDB
    ///   assigns its own GTIDs anyway, and would log each `BINLOG` text in an
    ///   Annotate_rows event, doubling the size). Without BINLOG ADMIN it stays on, said once.
    /// * `max_statement_time = 0`: a large entry must not be cut by a global limit.
    /// * `READ COMMITTED`: applying rows takes no gap locks, so a prepared transaction whose
    ///   fate the log has not told yet (`capture::setup::orphan`) holds up only entries
    ///   that touch its very rows (none can: MariaDB serialized them on this node while
    ///   it led), not the neighbours that decide it.
    /// * `foreign_key_checks` and `unique_checks` are left alone: every rows event carries
    ///   the leader session's values as flags and MariaDB applies them per event (as its
    ///   replica SQL thread does), restoring the session's after each `BINLOG`. Checks
    ///   must stay on by default: InnoDB's cascaded changes are not in the binlog, the
    ///   follower's InnoDB redoes them.
    async fn open(&mut self) -> Result<Conn, ApplyError> {
        self.format_sent = None;
        self.applied = None;
        // A refused login (wrong password, unknown account) is a setup error, not retried.
        let mut conn = Conn::new(self.opts.clone()).await.map_err(|e| setup_or_broken(&self.addr, "connecting", e))?;
        let broken = |addr: &str, e: mysql_async::Error| ApplyError::Connection {
            addr: addr.to_string(),
            during: "setting up the applier session",
            reason: e.to_string(),
        };
        match conn.query_drop("SET SESSION sql_log_bin = 0").await {
            Ok(()) => {}
            Err(mysql_async::Error::Server(s)) if s.code == 1227 => {
                if !self.log_bin_warned {
                    self.log_bin_warned = true;
                    tracing::warn!(addr = %self.addr, error = %s.message, "the applier account cannot SET sql_log_bin (needs BINLOG ADMIN): applied rows also go to this node's binlog");
                }
            }
            Err(e) => return Err(setup_or_broken(&self.addr, "SET SESSION sql_log_bin = 0", e)),
        }
        let lock_wait = format!("SET SESSION innodb_lock_wait_timeout = {APPLY_LOCK_WAIT_S}");
        for set in
            ["SET SESSION max_statement_time = 0", "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", &lock_wait]
        {
            if let Err(e) = conn.query_drop(set).await {
                return Err(setup_or_broken(&self.addr, set, e));
            }
        }
        let packet: Option<u64> =
            conn.query_first("SELECT @@max_allowed_packet").await.map_err(|e| broken(&self.addr, e))?;
        self.query_bytes_max = (packet.unwrap_or(16 << 20) as usize).saturating_sub(PACKET_SLACK_BYTES).max(1024);
        Ok(conn)
    }
}

fn setup_or_broken(addr: &str, step: &str, e: mysql_async::Error) -> ApplyError {
    match classify(&e) {
        Ok((code, message)) => ApplyError::Setup { addr: addr.to_string(), step: step.to_string(), code, message },
        Err(reason) => {
            ApplyError::Connection { addr: addr.to_string(), during: "setting up the applier session", reason }
        }
    }
}

/// The fatal error for one entry.
fn entry_error(c: &Committed, code: u16, message: String) -> ApplyError {
    ApplyError::Entry { lsn: c.lsn, what: describe(&c.entry), code, message }
}

/// An entry in a few words, for errors.
pub(crate) fn describe(e: &Entry) -> String {
    match e {
        Entry::Rows(r) => match &r.origin {
            Origin::Captured { xid } => format!("rows of transaction {xid}"),
            Origin::Unmanaged { gtid } => format!("rows of unmanaged transaction {gtid}"),
        },
        Entry::Statement(s) => {
            let head: String = s.sql.chars().take(80).collect();
            format!("statement {}: {head}", s.id)
        }
        Entry::Batch(b) => format!(
            "a batch of {} transactions ({} … {})",
            b.len(),
            b.first().and_then(plan::xid).unwrap_or("?"),
            b.last().and_then(plan::xid).unwrap_or("?")
        ),
    }
}
