//! Prometheus metrics: every name as a documented constant (listed in `docs/metrics.md`,
//! checked by a test), recording helpers for the hot path, and the scrape-time gauges.
//!
//! Recording is cheap: handles are registered once (static label values only) and kept
//! in a `OnceLock`; a statement costs two atomic adds and a histogram sample. Values
//! that already exist elsewhere (pool sizes, cached prepares, server health) are read
//! when `/metrics` is scraped, not recorded per event.
//!
//! The recorder is process-wide and installed on first use ([`handle`]).

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::classify::Kind;
use crate::session::running::Running;
use crate::session::Pin;

/// Gauge: client connections open now.
pub const CLIENT_CONNECTIONS: &str = "shoal_client_connections";
/// Counter: client connections accepted.
pub const CLIENT_CONNECTIONS_ACCEPTED: &str = "shoal_client_connections_accepted_total";
/// Counter: client connections refused because `client_connections_max` was reached.
pub const CLIENT_CONNECTIONS_REJECTED: &str = "shoal_client_connections_rejected_total";
/// Counter: client logins, labels `method` (`native`, `sha2_fast`, `sha2_full_tls`,
/// `sha2_full_rsa`, `relayed`) and `result` (`ok`, `denied`).
pub const CLIENT_LOGINS: &str = "shoal_client_logins_total";
/// Counter: HTTP API requests refused for a missing or wrong token.
pub const API_UNAUTHORIZED: &str = "shoal_api_unauthorized_total";
/// Counter: logins refused because the account held `user_connections_max` sessions
/// (`[limits]` or `[limits.user.NAME]`; the client got error 1203).
pub const USER_CONNECTIONS_REJECTED: &str = "shoal_user_connections_rejected_total";
/// Counter: sessions closed because they sat idle inside a transaction past
/// `transaction_idle_timeout_s` (the transaction was rolled back).
pub const IDLE_TRANSACTIONS_ENDED: &str = "shoal_idle_transactions_ended_total";
/// Counter: bytes received from clients (packet headers included).
pub const CLIENT_RECEIVED_BYTES: &str = "shoal_client_received_bytes_total";
/// Counter: bytes sent to clients.
pub const CLIENT_SENT_BYTES: &str = "shoal_client_sent_bytes_total";
/// Counter: statements (COM_QUERY, COM_STMT_EXECUTE), labels `kind` and `route`.
pub const STATEMENTS: &str = "shoal_statements_total";
/// Histogram: statement latency as seen by shoal (checkout to last byte relayed), label `route`.
pub const STATEMENT_DURATION: &str = "shoal_statement_duration_seconds";
/// Gauge: statements running now.
pub const STATEMENTS_RUNNING: &str = "shoal_statements_running";
/// Counter: errors sent to clients, label `code` (MySQL error number), from shoal or the backend.
pub const ERRORS: &str = "shoal_errors_total";
/// Gauge: backend connections open, label `backend`.
pub const POOL_CONNECTIONS: &str = "shoal_backend_pool_connections";
/// Gauge: backend connections checked out (running a statement or pinned), label `backend`.
pub const POOL_CONNECTIONS_IN_USE: &str = "shoal_backend_pool_connections_in_use";
/// Gauge: statements waiting for a backend connection, label `backend`.
pub const POOL_WAITERS: &str = "shoal_backend_pool_waiters";
/// Histogram: time to check out a backend connection.
pub const POOL_CHECKOUT_WAIT: &str = "shoal_backend_pool_checkout_wait_seconds";
/// Gauge: pools (backend × account × wire format).
pub const POOLS: &str = "shoal_backend_pools";
/// Counter: times a session became pinned, label `reason` (see `src/session/mod.rs`).
pub const SESSION_PINS: &str = "shoal_session_pins_total";
/// Gauge: prepare responses cached across pools.
pub const PREPARED_CACHED: &str = "shoal_prepared_statements_cached";
/// Counter: server health checks, label `result` (`ok`, `failed`).
pub const HEALTH_CHECKS: &str = "shoal_health_checks_total";
/// Gauge: 1 when the last check reached the server, label `server` and `role`.
pub const BACKEND_UP: &str = "shoal_backend_up";
/// Counter: changes of the routing table (servers added/removed, up/down, role).
pub const ROUTING_CHANGES: &str = "shoal_routing_table_changes_total";
/// Gauge: replica lag (`Seconds_Behind_Master`), label `server`; absent while unknown.
pub const REPLICA_LAG: &str = "shoal_replica_lag_seconds";
/// Counter: configuration reloads (SIGHUP), label `result` (`ok`, `failed`).
pub const CONFIG_RELOADS: &str = "shoal_config_reloads_total";
/// Gauge: always 1, label `version`.
pub const BUILD_INFO: &str = "shoal_build_info";
/// Gauge: process start, seconds since the Unix epoch.
pub const START_TIME: &str = "shoal_start_time_seconds";

/// Statements run on a pipe (`backend::pipeline`).
pub const PIPE_STATEMENTS: &str = "shoal_pipe_statements_total";
/// Batches pipes wrote (statements ÷ batches = mean batch size).
pub const PIPE_BATCHES: &str = "shoal_pipe_batches_total";

/// Counter: failed cluster peer connections and requests, label `cause` (`auth_refused`,
/// `auth_failed`, `connect`, `timeout`, `io`, `tls`; see `src/cluster/network.rs`).
pub const CLUSTER_PEER_FAILURES: &str = "shoal_cluster_peer_failures_total";
/// Gauge: this node's current Raft term.
pub const CLUSTER_TERM: &str = "shoal_cluster_term";
/// Gauge: 1 while this node is the leader, else 0.
pub const CLUSTER_IS_LEADER: &str = "shoal_cluster_is_leader";
/// Gauge: 1 while this node may lead (its local MariaDB answers), else 0.
pub const CLUSTER_READY: &str = "shoal_cluster_ready";
/// Counter: leader handovers this node ran as leader, label `reason` (`switchover`,
/// `step_down`, `switchback`) and `outcome` (`handed_over`, `failed`).
pub const CLUSTER_HANDOVERS: &str = "shoal_cluster_handovers_total";
/// Counter: changes of the leader this node knows of (a new leader, or none).
pub const CLUSTER_LEADER_CHANGES: &str = "shoal_cluster_leader_changes_total";
/// Counter: elections this node started (it became a candidate).
pub const CLUSTER_ELECTIONS_STARTED: &str = "shoal_cluster_elections_started_total";
/// Counter: elections this node won (candidate to leader).
pub const CLUSTER_ELECTIONS_WON: &str = "shoal_cluster_elections_won_total";
/// Gauge: Raft index of this node's last log entry (WAL LSN − 1).
pub const CLUSTER_LAST_LOG_INDEX: &str = "shoal_cluster_last_log_index";
/// Gauge: Raft index of the last entry applied here.
pub const CLUSTER_APPLIED_INDEX: &str = "shoal_cluster_applied_index";
/// Gauge: Raft index of this node's last snapshot (0: none).
pub const CLUSTER_SNAPSHOT_INDEX: &str = "shoal_cluster_snapshot_index";
/// Gauge: Raft index this node's log is purged through (0: nothing purged).
pub const CLUSTER_PURGED_INDEX: &str = "shoal_cluster_purged_index";
/// Histogram: log append latency (encode, write, fdatasync), per `append` call.
pub const CLUSTER_APPEND_DURATION: &str = "shoal_cluster_append_duration_seconds";
/// Histogram: proposal latency on the leader (propose to committed and applied here).
pub const CLUSTER_COMMIT_DURATION: &str = "shoal_cluster_commit_duration_seconds";

/// Counter: entries the leader's capture proposed, label `kind` (`rows`, `statement`).
pub const CAPTURE_ENTRIES: &str = "shoal_capture_entries_total";
/// Counter: transactions and statements that reached the leader's MariaDB without shoal,
/// found in its binlog and replicated after the fact (not held for a quorum).
pub const CAPTURE_UNMANAGED: &str = "shoal_unmanaged_writes_total";
/// Counter: client transactions run as XA on the leader, label `outcome` (`committed`,
/// `read_only`, `rolled_back`, `failed`).
pub const CAPTURE_TRANSACTIONS: &str = "shoal_capture_transactions_total";
/// Histogram: from `XA PREPARE` to durable (binlog tail, proposal, quorum), per transaction.
pub const CAPTURE_DURABLE_WAIT: &str = "shoal_capture_durable_wait_seconds";
/// Counter: times the binlog tail reconnected to its MariaDB after losing the dump
/// connection (each attempt; `src/capture/tail.rs`).
pub const CAPTURE_TAIL_RECONNECTS: &str = "shoal_capture_tail_reconnects_total";
/// Counter: committed log entries this node's applier went through, label `outcome`:
/// `applied` (written to the local MariaDB) or `skipped` (it already had them).
pub const APPLY_ENTRIES: &str = "shoal_apply_entries_total";
/// Histogram: one apply step: a MariaDB transaction of rows entries (BEGIN to COMMIT), or
/// one statement entry with its LSN row.
pub const APPLY_BATCH_DURATION: &str = "shoal_apply_batch_duration_seconds";
/// Gauge: LSN of the last entry applied to the local MariaDB (`shoal_meta.applied`).
pub const APPLY_APPLIED_LSN: &str = "shoal_apply_applied_lsn";
/// Counter: statement entries (DDL) that failed on the local MariaDB; applying goes on.
pub const APPLY_STATEMENT_ERRORS: &str = "shoal_apply_statement_errors_total";
/// Histogram: transactions per proposal of the leader's capture to the Raft log (group
/// commit: one log entry, one fsync, for all of them; `src/capture/raft.rs`).
pub const CAPTURE_BATCH_ENTRIES: &str = "shoal_capture_batch_transactions";
/// Buckets of [`CAPTURE_BATCH_ENTRIES`] (transactions).
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// Counter: reads on a cluster follower that waited for an LSN before running, label
/// `outcome`: `applied` (ran on the follower) or `timeout` (went to the leader after
/// `causal_wait_ms`). Reads that found the LSN applied already are not counted.
pub const CAUSAL_WAITS: &str = "shoal_causal_waits_total";
/// Counter: statements that found no reachable leader and waited for one
/// (`[routing] failover_buffer_ms`), label `outcome`: `ran` (a leader appeared in time) or
/// `timeout` (they failed).
pub const FAILOVER_WAITS: &str = "shoal_failover_waits_total";
/// Counter: statements a cluster follower forwarded to the leader's proxy.
pub const FORWARDED: &str = "shoal_forwarded_statements_total";

/// Every metric name, for the docs test.
pub const ALL: [&str; 56] = [
    CLIENT_CONNECTIONS,
    CLIENT_CONNECTIONS_ACCEPTED,
    CLIENT_CONNECTIONS_REJECTED,
    CLIENT_LOGINS,
    API_UNAUTHORIZED,
    USER_CONNECTIONS_REJECTED,
    IDLE_TRANSACTIONS_ENDED,
    CLIENT_RECEIVED_BYTES,
    CLIENT_SENT_BYTES,
    STATEMENTS,
    STATEMENT_DURATION,
    STATEMENTS_RUNNING,
    ERRORS,
    POOL_CONNECTIONS,
    POOL_CONNECTIONS_IN_USE,
    POOL_WAITERS,
    POOL_CHECKOUT_WAIT,
    POOLS,
    SESSION_PINS,
    PIPE_STATEMENTS,
    PIPE_BATCHES,
    PREPARED_CACHED,
    HEALTH_CHECKS,
    BACKEND_UP,
    ROUTING_CHANGES,
    REPLICA_LAG,
    CONFIG_RELOADS,
    BUILD_INFO,
    START_TIME,
    CLUSTER_PEER_FAILURES,
    CLUSTER_TERM,
    CLUSTER_IS_LEADER,
    CLUSTER_READY,
    CLUSTER_HANDOVERS,
    CLUSTER_LEADER_CHANGES,
    CLUSTER_ELECTIONS_STARTED,
    CLUSTER_ELECTIONS_WON,
    CLUSTER_LAST_LOG_INDEX,
    CLUSTER_APPLIED_INDEX,
    CLUSTER_SNAPSHOT_INDEX,
    CLUSTER_PURGED_INDEX,
    CLUSTER_APPEND_DURATION,
    CLUSTER_COMMIT_DURATION,
    CAPTURE_ENTRIES,
    CAPTURE_UNMANAGED,
    CAPTURE_TRANSACTIONS,
    CAPTURE_DURABLE_WAIT,
    CAPTURE_TAIL_RECONNECTS,
    APPLY_ENTRIES,
    APPLY_BATCH_DURATION,
    APPLY_APPLIED_LSN,
    APPLY_STATEMENT_ERRORS,
    CAUSAL_WAITS,
    FORWARDED,
    CAPTURE_BATCH_ENTRIES,
    FAILOVER_WAITS,
];

/// Where a statement ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The writable server.
    Primary,
    /// A read replica.
    Replica,
}

impl Route {
    /// Label value.
    pub const fn name(self) -> &'static str {
        match self {
            Route::Primary => "primary",
            Route::Replica => "replica",
        }
    }
    const ALL: [Route; 2] = [Route::Primary, Route::Replica];
}

struct Handles {
    statements: Vec<[Counter; 2]>,
    latency: [Histogram; 2],
    accepted: Counter,
    rejected: Counter,
    received: Counter,
    sent: Counter,
    checkout_wait: Histogram,
    pins: Vec<Counter>,
    pipe_statements: Counter,
    pipe_batches: Counter,
}

/// How often buffered histogram samples are folded into buckets (bounds their memory).
pub const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();
static HANDLES: OnceLock<Handles> = OnceLock::new();

/// Installs the process-wide recorder with these latency buckets (first call wins).
pub fn install(latency_buckets_seconds: &[f64]) -> &'static PrometheusHandle {
    RECORDER.get_or_init(|| {
        let buckets = if latency_buckets_seconds.is_empty() {
            &crate::config::LATENCY_BUCKETS_SECONDS[..]
        } else {
            latency_buckets_seconds
        };
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), buckets)
            .expect("buckets are not empty")
            .set_buckets_for_metric(Matcher::Full(CAPTURE_BATCH_ENTRIES.into()), &BATCH_BUCKETS)
            .expect("buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Histograms buffer every sample until upkeep folds them into their buckets: without
        // it memory grows with every statement between scrapes (~50 bytes per statement).
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new().name("shoal-metrics".into()).spawn(move || loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            upkeep.run_upkeep();
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the metrics upkeep thread; histograms grow until scraped");
        }
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics shows only shoal's own");
        }
        describe();
        // Series that should read 0 rather than be absent before their first event.
        metrics::counter!(ROUTING_CHANGES).absolute(0);
        metrics::counter!(USER_CONNECTIONS_REJECTED).absolute(0);
        metrics::counter!(IDLE_TRANSACTIONS_ENDED).absolute(0);
        for result in ["ok", "failed"] {
            metrics::counter!(CONFIG_RELOADS, "result" => result).absolute(0);
            metrics::counter!(HEALTH_CHECKS, "result" => result).absolute(0);
        }
        metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        metrics::gauge!(START_TIME).set(now.as_secs_f64());
        handle
    })
}

/// A follower read waited for an LSN; `applied`: it arrived in time.
pub fn causal_wait(applied: bool) {
    metrics::counter!(CAUSAL_WAITS, "outcome" => if applied { "applied" } else { "timeout" }).increment(1);
}

/// A statement waited for a leader; `ran`: one appeared in time.
pub fn failover_wait(ran: bool) {
    metrics::counter!(FAILOVER_WAITS, "outcome" => if ran { "ran" } else { "timeout" }).increment(1);
}

/// A statement went to the leader's proxy from a cluster follower.
pub fn forwarded() {
    metrics::counter!(FORWARDED).increment(1);
}

/// Registers every fixed series now, so they read 0 instead of being absent before their
/// first event (dashboards and `rate()` like that).
pub fn register_all() {
    h();
}

/// The recorder (installed with default buckets if nothing installed it before).
pub fn handle() -> &'static PrometheusHandle {
    install(&[])
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(CLIENT_CONNECTIONS, "Client connections open now.");
    describe_counter!(CLIENT_CONNECTIONS_ACCEPTED, "Client connections accepted.");
    describe_counter!(CLIENT_CONNECTIONS_REJECTED, "Client connections refused by client_connections_max.");
    describe_counter!(CLIENT_LOGINS, "Client logins by method and result.");
    describe_counter!(API_UNAUTHORIZED, "HTTP API requests refused for a missing or wrong token.");
    describe_counter!(USER_CONNECTIONS_REJECTED, "Logins refused by user_connections_max (error 1203).");
    describe_counter!(
        IDLE_TRANSACTIONS_ENDED,
        "Sessions closed idle in a transaction past transaction_idle_timeout_s."
    );
    describe_counter!(CLIENT_RECEIVED_BYTES, Unit::Bytes, "Bytes received from clients.");
    describe_counter!(CLIENT_SENT_BYTES, Unit::Bytes, "Bytes sent to clients.");
    describe_counter!(STATEMENTS, "Statements by kind and route.");
    describe_histogram!(STATEMENT_DURATION, Unit::Seconds, "Statement latency by route.");
    describe_gauge!(STATEMENTS_RUNNING, "Statements running now.");
    describe_counter!(ERRORS, "Errors sent to clients by MySQL error code.");
    describe_gauge!(POOL_CONNECTIONS, "Backend connections open.");
    describe_gauge!(POOL_CONNECTIONS_IN_USE, "Backend connections checked out.");
    describe_gauge!(POOL_WAITERS, "Statements waiting for a backend connection.");
    describe_histogram!(POOL_CHECKOUT_WAIT, Unit::Seconds, "Time to check out a backend connection.");
    describe_gauge!(POOLS, "Backend connection pools.");
    describe_counter!(SESSION_PINS, "Times a session became pinned, by reason.");
    describe_counter!(PIPE_STATEMENTS, "Statements run on a pipe (plain autocommit reads sharing a connection).");
    describe_counter!(PIPE_BATCHES, "Batches written by pipes.");
    describe_gauge!(PREPARED_CACHED, "Prepare responses cached.");
    describe_counter!(HEALTH_CHECKS, "Server health checks by result.");
    describe_gauge!(BACKEND_UP, "1 when the last health check reached the server.");
    describe_counter!(ROUTING_CHANGES, "Routing table changes.");
    describe_gauge!(REPLICA_LAG, Unit::Seconds, "Replica lag (Seconds_Behind_Master).");
    describe_counter!(CONFIG_RELOADS, "Configuration reloads by result.");
    describe_gauge!(BUILD_INFO, "Build information.");
    describe_gauge!(START_TIME, Unit::Seconds, "Process start time, Unix epoch.");
    describe_counter!(CAPTURE_TAIL_RECONNECTS, "Binlog tail reconnect attempts after a lost dump connection.");
    describe_counter!(CAPTURE_ENTRIES, "Entries the leader's capture proposed, by kind.");
    describe_counter!(CAPTURE_UNMANAGED, "Writes found in the leader's binlog that did not come through shoal.");
    describe_counter!(CAPTURE_TRANSACTIONS, "Client transactions run as XA on the leader, by outcome.");
    describe_histogram!(CAPTURE_DURABLE_WAIT, Unit::Seconds, "XA PREPARE to durable, per captured transaction.");
    describe_counter!(APPLY_ENTRIES, "Committed log entries the applier went through, by outcome (applied, skipped).");
    describe_histogram!(
        APPLY_BATCH_DURATION,
        Unit::Seconds,
        "One apply transaction (rows entries) or statement entry."
    );
    describe_gauge!(APPLY_APPLIED_LSN, "LSN of the last entry applied to the local MariaDB.");
    describe_counter!(APPLY_STATEMENT_ERRORS, "Statement entries (DDL) that failed on the local MariaDB.");
}

fn h() -> &'static Handles {
    HANDLES.get_or_init(|| {
        handle();
        Handles {
            statements: Kind::ALL
                .iter()
                .map(|k| Route::ALL.map(|r| metrics::counter!(STATEMENTS, "kind" => k.name(), "route" => r.name())))
                .collect(),
            latency: Route::ALL.map(|r| metrics::histogram!(STATEMENT_DURATION, "route" => r.name())),
            accepted: metrics::counter!(CLIENT_CONNECTIONS_ACCEPTED),
            rejected: metrics::counter!(CLIENT_CONNECTIONS_REJECTED),
            received: metrics::counter!(CLIENT_RECEIVED_BYTES),
            sent: metrics::counter!(CLIENT_SENT_BYTES),
            checkout_wait: metrics::histogram!(POOL_CHECKOUT_WAIT),
            pins: Pin::NAMES.iter().map(|(_, name)| metrics::counter!(SESSION_PINS, "reason" => *name)).collect(),
            pipe_statements: metrics::counter!(PIPE_STATEMENTS),
            pipe_batches: metrics::counter!(PIPE_BATCHES),
        }
    })
}

/// Times one statement; when dropped, counts it by kind and route and records its latency.
#[must_use = "the statement is timed until this guard is dropped"]
#[derive(Debug)]
pub struct StatementTimer {
    started: Instant,
    kind: Kind,
    route: Route,
    /// False once discarded.
    count: bool,
    /// Counts the statement as running (drain, `/status`) until the timer is dropped.
    _running: Running,
}

/// Starts timing a statement of `kind` (route: primary unless [`StatementTimer::done`] says otherwise).
pub fn statement(kind: Kind, running: Running) -> StatementTimer {
    StatementTimer { started: Instant::now(), kind, route: Route::Primary, count: true, _running: running }
}

impl StatementTimer {
    /// The backend answered: records its error code, if any, and where it ran.
    pub fn done(&mut self, error: Option<u16>, on_replica: bool) {
        backend_error(error);
        self.route = if on_replica { Route::Replica } else { Route::Primary };
    }

    /// The statement did not run here and is timed afresh where it runs: not counted.
    pub fn discard(mut self) {
        self.count = false;
    }
}

impl Drop for StatementTimer {
    fn drop(&mut self) {
        if !self.count {
            return;
        }
        let h = h();
        h.statements[self.kind as usize][self.route as usize].increment(1);
        h.latency[self.route as usize].record(self.started.elapsed().as_secs_f64());
    }
}

/// Times a backend connection checkout until dropped.
#[must_use = "the checkout is timed until this guard is dropped"]
pub struct CheckoutTimer(Instant);

/// Starts timing a checkout.
pub fn checkout_wait() -> CheckoutTimer {
    CheckoutTimer(Instant::now())
}

impl Drop for CheckoutTimer {
    fn drop(&mut self) {
        h().checkout_wait.record(self.0.elapsed().as_secs_f64());
    }
}

/// A client connection was accepted.
pub fn client_accepted() {
    h().accepted.increment(1);
}

/// A client connection was refused by `client_connections_max`.
pub fn client_rejected() {
    h().rejected.increment(1);
}

/// How a client proved who it is (`shoal_client_logins_total`'s `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// `mysql_native_password`, checked by shoal.
    Native,
    /// `caching_sha2_password` against the cached digest.
    Sha2Fast,
    /// `caching_sha2_password` with the password sent over TLS.
    Sha2FullTls,
    /// `caching_sha2_password` with the password RSA-encrypted.
    Sha2FullRsa,
    /// Another plugin, checked by the server (`BackendConn::relay_login`).
    Relayed,
}

impl LoginMethod {
    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            LoginMethod::Native => "native",
            LoginMethod::Sha2Fast => "sha2_fast",
            LoginMethod::Sha2FullTls => "sha2_full_tls",
            LoginMethod::Sha2FullRsa => "sha2_full_rsa",
            LoginMethod::Relayed => "relayed",
        }
    }
}

/// A client login ended: accepted (`ok`) or denied.
pub fn client_login(method: LoginMethod, ok: bool) {
    let result = if ok { "ok" } else { "denied" };
    metrics::counter!(CLIENT_LOGINS, "method" => method.name(), "result" => result).increment(1);
}

/// An API request was refused for its token.
pub fn api_unauthorized() {
    metrics::counter!(API_UNAUTHORIZED).increment(1);
}

/// A login was refused by the account's `user_connections_max`.
pub fn user_connection_rejected() {
    metrics::counter!(USER_CONNECTIONS_REJECTED).increment(1);
}

/// The idle sweep closed `n` sessions idle inside a transaction.
pub fn idle_transactions_ended(n: usize) {
    metrics::counter!(IDLE_TRANSACTIONS_ENDED).increment(n as u64);
}

/// Bytes read from a client.
pub fn client_received(bytes: usize) {
    h().received.increment(bytes as u64);
}

/// Bytes written to a client.
pub fn client_sent(bytes: usize) {
    h().sent.increment(bytes as u64);
}

/// An error packet went to a client (shoal's own errors).
pub fn error(code: u16) {
    metrics::counter!(ERRORS, "code" => code.to_string()).increment(1);
}

/// A pipe wrote a batch of `statements`.
pub fn pipe_batch(statements: usize) {
    let h = h();
    h.pipe_batches.increment(1);
    h.pipe_statements.increment(statements as u64);
}

/// A backend's response ended in an error (relayed to the client); `None` does nothing.
pub fn backend_error(code: Option<u16>) {
    if let Some(code) = code {
        error(code);
    }
}

/// Counts the pin reasons `after` adds to `before`; returns `after`.
pub fn pins(before: Pin, after: Pin) -> Pin {
    let added = after.0 & !before.0;
    if added != 0 {
        for (i, (p, _)) in Pin::NAMES.iter().enumerate() {
            if added & p.0 != 0 {
                h().pins[i].increment(1);
            }
        }
    }
    after
}

/// A health check of one server finished.
pub fn health_check(ok: bool) {
    metrics::counter!(HEALTH_CHECKS, "result" => if ok { "ok" } else { "failed" }).increment(1);
}

/// The routing table changed.
pub fn routing_changed() {
    metrics::counter!(ROUTING_CHANGES).increment(1);
}

/// A configuration reload finished.
pub fn config_reload(ok: bool) {
    metrics::counter!(CONFIG_RELOADS, "result" => if ok { "ok" } else { "failed" }).increment(1);
}

/// One server as the health checker saw it.
#[derive(Debug, Clone)]
pub struct ServerGauge {
    /// Address (label `server`).
    pub address: String,
    /// `primary` or `replica`.
    pub role: &'static str,
    /// Reachable.
    pub up: bool,
    /// Replica lag, when known.
    pub lag: Option<Duration>,
}

/// One pool's numbers at scrape time.
#[derive(Debug, Clone, Default)]
pub struct PoolGauge {
    /// Backend address.
    pub backend: String,
    /// Connections open.
    pub connections: u64,
    /// Checked out.
    pub in_use: u64,
    /// Waiting for a connection.
    pub waiters: u64,
}

/// Backends and (server, role) pairs set at the last scrape, so vanished ones can be zeroed.
type Seen = (Vec<String>, Vec<(String, &'static str)>);
static SEEN: Mutex<Seen> = Mutex::new((Vec::new(), Vec::new()));

/// Sets the scrape-time gauges.
pub fn set_gauges(
    clients: usize,
    statements_running: usize,
    prepared_cached: usize,
    pools: &[PoolGauge],
    servers: &[ServerGauge],
) {
    handle();
    metrics::gauge!(CLIENT_CONNECTIONS).set(clients as f64);
    metrics::gauge!(STATEMENTS_RUNNING).set(statements_running as f64);
    metrics::gauge!(POOLS).set(pools.len() as f64);
    let mut per_backend: Vec<PoolGauge> = Vec::new();
    for p in pools {
        match per_backend.iter_mut().find(|b| b.backend == p.backend) {
            Some(b) => {
                b.connections += p.connections;
                b.in_use += p.in_use;
                b.waiters += p.waiters;
            }
            None => per_backend.push(p.clone()),
        }
    }
    metrics::gauge!(PREPARED_CACHED).set(prepared_cached as f64);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    for old in &seen.0 {
        if !per_backend.iter().any(|b| &b.backend == old) {
            per_backend.push(PoolGauge { backend: old.clone(), ..Default::default() });
        }
    }
    for b in &per_backend {
        let label = [("backend", b.backend.clone())];
        metrics::gauge!(POOL_CONNECTIONS, &label).set(b.connections as f64);
        metrics::gauge!(POOL_CONNECTIONS_IN_USE, &label).set(b.in_use as f64);
        metrics::gauge!(POOL_WAITERS, &label).set(b.waiters as f64);
    }
    seen.0 = per_backend.into_iter().map(|b| b.backend).collect();
    for (address, role) in &seen.1 {
        if !servers.iter().any(|s| &s.address == address && s.role == *role) {
            metrics::gauge!(BACKEND_UP, "server" => address.clone(), "role" => *role).set(0.0);
        }
    }
    for s in servers {
        metrics::gauge!(BACKEND_UP, "server" => s.address.clone(), "role" => s.role).set(if s.up { 1.0 } else { 0.0 });
        if let Some(lag) = s.lag {
            metrics::gauge!(REPLICA_LAG, "server" => s.address.clone()).set(lag.as_secs_f64());
        }
    }
    seen.1 = servers.iter().map(|s| (s.address.clone(), s.role)).collect();
}

/// The text exposition format.
pub fn render() -> String {
    handle().render()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name is in `docs/metrics.md`, and every `shoal_…` name there is a constant.
    #[test]
    fn names_match_docs() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
        for name in ALL {
            assert!(doc.contains(&format!("`{name}`")), "{name} is not documented in docs/metrics.md");
            assert!(name.starts_with("shoal_"), "{name}");
        }
        let mut rest = doc.as_str();
        while let Some(i) = rest.find("`shoal_") {
            let tail = &rest[i + 1..];
            let end = tail.find('`').unwrap();
            let name = &tail[..end];
            let base = name.split('{').next().unwrap();
            let known = ALL.contains(&base)
                || ["_bucket", "_sum", "_count"].iter().any(|s| base.strip_suffix(s).is_some_and(|b| ALL.contains(&b)));
            assert!(known, "docs/metrics.md names {name}, which src/metrics.rs does not define");
            rest = &tail[end..];
        }
    }

    /// The Grafana dashboard uses only names defined here.
    #[test]
    fn dashboard_uses_defined_names() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/grafana-dashboard.json")).unwrap();
        let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(dash["panels"].as_array().is_some_and(|p| p.len() > 10));
        let mut rest = text.as_str();
        let mut used = 0;
        while let Some(i) = rest.find("shoal_") {
            let tail = &rest[i..];
            let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
            let name = &tail[..end];
            let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
            assert!(ALL.contains(&base) || ALL.contains(&name), "dashboard uses {name}, not defined in src/metrics.rs");
            used += 1;
            rest = &tail[end..];
        }
        assert!(used > 15);
    }

    /// Prometheus conventions: base units (seconds, bytes), counters end in `_total`.
    #[test]
    fn conventions() {
        let counters = [
            CLIENT_CONNECTIONS_ACCEPTED,
            CLIENT_CONNECTIONS_REJECTED,
            CLIENT_LOGINS,
            API_UNAUTHORIZED,
            USER_CONNECTIONS_REJECTED,
            IDLE_TRANSACTIONS_ENDED,
            CLIENT_RECEIVED_BYTES,
            CLIENT_SENT_BYTES,
            STATEMENTS,
            ERRORS,
            SESSION_PINS,
            PIPE_STATEMENTS,
            PIPE_BATCHES,
            HEALTH_CHECKS,
            ROUTING_CHANGES,
            CONFIG_RELOADS,
            CLUSTER_PEER_FAILURES,
            CLUSTER_LEADER_CHANGES,
            CLUSTER_ELECTIONS_STARTED,
            CLUSTER_ELECTIONS_WON,
            CAPTURE_ENTRIES,
            CAPTURE_UNMANAGED,
            CAPTURE_TRANSACTIONS,
            CAPTURE_TAIL_RECONNECTS,
            APPLY_ENTRIES,
            APPLY_STATEMENT_ERRORS,
            CAUSAL_WAITS,
            FORWARDED,
            FAILOVER_WAITS,
            CLUSTER_HANDOVERS,
        ];
        for name in ALL {
            assert!(!name.contains("_ms") && !name.contains("_millis") && !name.contains("_kb"), "{name}");
            assert_eq!(counters.contains(&name), name.ends_with("_total"), "{name}");
        }
    }

    #[test]
    fn recording_shows_in_render() {
        let running = std::sync::Arc::new(crate::session::running::Statements::default());
        let mut t = statement(Kind::Read, running.start());
        assert_eq!(running.count(), 1);
        t.done(None, false);
        drop(t);
        assert_eq!(running.count(), 0, "the timer carries the running guard");
        client_received(10);
        pins(Pin::default(), Pin::TRANSACTION);
        error(1064);
        set_gauges(3, 5, 4, &[PoolGauge { backend: "b:1".into(), connections: 2, in_use: 1, waiters: 0 }], &[]);
        let text = render();
        assert!(text.contains("shoal_statements_total{kind=\"Read\",route=\"primary\"}"), "{text}");
        assert!(text.contains("shoal_statement_duration_seconds_bucket{route=\"primary\""), "{text}");
        assert!(text.contains("shoal_session_pins_total{reason=\"transaction\"}"), "{text}");
        assert!(text.contains("shoal_errors_total{code=\"1064\"}"), "{text}");
        assert!(text.contains("shoal_backend_pool_connections{backend=\"b:1\"} 2"), "{text}");
        assert!(text.contains("shoal_prepared_statements_cached 4"), "{text}");
        assert!(text.contains("shoal_statements_running 5"), "{text}");
    }
}
