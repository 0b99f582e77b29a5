//! Where each statement goes: the routing table (every server, its role, health, lag and
//! replication position) and the policy, a pure function.
//!
//! # Policy
//!
//! [`route`] applies the first matching row:
//!
//! | # | statement | session | goes to |
//! |---|---|---|---|
//! | 1 | anything | holds a pinned connection (transaction, locks, …) | that connection's server |
//! | 2 | hint `/* shoal:leader */` | any | primary |
//! | 3 | creates connection state (`@var`, `GET_LOCK`, temporary table, `LOCK TABLES`, SQL `PREPARE`/`EXECUTE`, `SQL_CALC_FOUND_ROWS`, `HANDLER`) | any | primary (so the pin lands where writes go) |
//! | 4 | anything | `autocommit = 0` (implicit transactions) | primary |
//! | 5 | `Read`, `Show`, `START TRANSACTION READ ONLY` | `read_consistency = "strong"` | primary |
//! | 6 | `Read`, `Show`, `START TRANSACTION READ ONLY` | wrote GTID g (`"session"`) | least-loaded healthy replica known to have applied g; else one within `max_lag_ms` after waiting up to `causal_wait_ms` for g; else primary |
//! | 6a | `Read`, `Show`, `START TRANSACTION READ ONLY` | wrote LSN n (`"session"`), or any session (`"global"`) | least-loaded healthy server that applies the cluster log (`follows_log`), after waiting up to `causal_wait_ms` for n (`"global"`: the leader's committed LSN now); none: primary, naming n to the leader's proxy (a leader that applies the log itself waits the same way: just elected, it may not have applied n). A `"global"` read whose commit point could not be learnt (no leader answers) waits and retries instead: read at the leader's proxy unchecked, a deposed leader would answer stale |
//! | 6b | `Read`, `Show`, `START TRANSACTION READ ONLY` | wrote LSN n (`"session"`), no server of 6a | least-loaded fresh follower that is a shoal node's proxy (`shoal`: `shoal proxy --cluster`): the session sends the read as `/*shoal:lsn=n*/ …` and that node waits for n itself; none: primary (`"global"` reads go to the primary) |
//! | 7 | `Read`, `Show`, `START TRANSACTION READ ONLY` | otherwise | least-loaded healthy replica within `max_lag_ms`; none: primary |
//! | 8 | `SET`, `USE`, `COMMIT`/`ROLLBACK` outside a transaction | any | primary; if it is down, any reachable replica (state replays everywhere) |
//! | 9 | `LockingRead`, `Write`, `Ddl`, `Call`, `LoadData`, multi-statement with a write, `Unknown`, everything else | any | primary |
//!
//! When the primary is down, rows that would choose it fail fast with an error that
//! names the primary and the cause, except reads, which fall back to any reachable
//! replica regardless of lag. A read of rows 6 and 6a falls back only after waiting for
//! its write there (it never reads around its own write): if the write does not arrive
//! within `causal_wait_ms`, the read needs the primary, and waits for one.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::classify::{Classification, Flags, Kind};

/// What a server is for. Whoever owns the topology says so — the configuration for a
/// standalone proxy (its primary leads, its replicas follow), Raft in a cluster — and the
/// router reads nothing else: no position in the table means anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Takes writes (a standalone proxy's primary, a cluster's Raft leader).
    Leader,
    /// Serves reads, replicating from the leader (a replica, a Raft voter).
    Follower,
    /// Catching up before it may vote (Raft learner); serves reads like a follower when
    /// fresh enough.
    Learner,
    /// A shoal proxy without a database: never a target.
    Proxy,
}

impl Role {
    /// Lower-case name for APIs and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Learner => "learner",
            Role::Proxy => "proxy",
        }
    }

    /// Whether reads may go there (when healthy and fresh enough).
    pub fn serves_reads(self) -> bool {
        matches!(self, Role::Follower | Role::Learner)
    }
}

/// Whether a server may receive statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Passed its checks.
    Up,
    /// Failed `failures_before_down` checks in a row (or was never reached).
    Down,
}

/// A MariaDB GTID position: `domain-server-seq` per replication domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos(pub Vec<(u32, u64)>);

impl GtidPos {
    /// Parses `0-1-42,1-2-7`; malformed parts are skipped.
    pub fn parse(s: &str) -> GtidPos {
        let mut out: Vec<(u32, u64)> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split('-');
            let (Some(d), Some(_server), Some(seq)) = (it.next(), it.next(), it.next()) else { continue };
            if let (Ok(d), Ok(seq)) = (d.parse::<u32>(), seq.parse::<u64>()) {
                match out.iter_mut().find(|(dd, _)| *dd == d) {
                    Some(e) => e.1 = e.1.max(seq),
                    None => out.push((d, seq)),
                }
            }
        }
        GtidPos(out)
    }

    /// True when every domain of `other` is at or behind this position.
    pub fn covers(&self, other: &GtidPos) -> bool {
        other.0.iter().all(|(d, seq)| self.0.iter().any(|(dd, s)| dd == d && s >= seq))
    }

    /// True when no domain is known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One server as the router sees it.
#[derive(Debug, Clone)]
pub struct Server {
    /// Index in the table (stable for the process life).
    pub id: usize,
    /// host:port.
    pub addr: Arc<str>,
    /// Role from configuration (and, for the primary, confirmed by `read_only = 0`).
    pub role: Role,
    /// Health from the checker.
    pub health: Health,
    /// Replication lag in milliseconds (`Seconds_Behind_Master` × 1000); `None` if
    /// unknown or replication is stopped.
    pub lag_ms: Option<u64>,
    /// `@@gtid_current_pos` at the last check.
    pub gtid: GtidPos,
    /// Relative share of reads.
    pub weight: u32,
    /// Statements running on it now through this proxy (least-loaded choice).
    pub in_flight: Arc<AtomicU32>,
    /// Why it is down, for errors and `/health`.
    pub last_error: Option<String>,
    /// A shoal node's proxy port rather than a MariaDB (a cluster's leader seen from a
    /// follower: writes are forwarded there, and it tells the LSN of a write).
    pub shoal: bool,
    /// Applies the cluster log (a cluster node's own MariaDB): its position is the applied
    /// LSN, which the session side can wait for (row 6a); its lag comes from the cluster,
    /// not from replication status.
    pub follows_log: bool,
}

impl Server {
    /// A server entry as configuration or the cluster first describes it: optimistic
    /// (`Up`, no lag) until the first check says otherwise.
    pub fn new(id: usize, addr: &str, role: Role) -> Server {
        Server {
            id,
            addr: addr.into(),
            role,
            health: Health::Up,
            lag_ms: Some(0),
            gtid: GtidPos::default(),
            weight: 1,
            in_flight: Arc::default(),
            last_error: None,
            shoal: false,
            follows_log: false,
        }
    }
}

/// Every server; swapped whole (arc-swap) when health, positions or roles change.
#[derive(Debug, Clone, Default)]
pub struct RoutingTable {
    /// Servers, by their stable index (`Server::id`); roles say what each is for.
    pub servers: Vec<Server>,
    /// Bumped on every change.
    pub version: u64,
}

impl RoutingTable {
    /// The server that takes writes, if the table has one.
    pub fn leader(&self) -> Option<&Server> {
        self.servers.iter().find(|s| s.role == Role::Leader)
    }

    /// Whether server `id` is the leader.
    pub fn is_leader(&self, id: usize) -> bool {
        self.servers.get(id).is_some_and(|s| s.role == Role::Leader)
    }
}

/// Read-your-writes policy (`[routing] read_consistency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// A session never reads older data than its own last write.
    #[default]
    Session,
    /// A read sees every write acknowledged before it started, by any session: on a
    /// cluster follower it waits until the node applied the leader's committed LSN (asked
    /// at read time); elsewhere reads go to the leader.
    Global,
    /// Any healthy replica within `max_lag_ms`.
    Eventual,
    /// Reads go to the primary.
    Strong,
}

/// Routing knobs (`[routing]`).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Read-your-writes policy.
    pub consistency: Consistency,
    /// Replicas further behind than this get no reads.
    pub max_lag_ms: u64,
}

/// What the session tells the router.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionView<'a> {
    /// Server of the pinned connection, if the session holds one between statements.
    pub pinned_to: Option<usize>,
    /// The session turned autocommit off.
    pub autocommit_off: bool,
    /// GTID of the session's last write, if any.
    pub last_write: Option<&'a GtidPos>,
    /// LSN of the session's last write in a cluster (or one the client named), if any.
    pub last_lsn: Option<u64>,
}

/// The router's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Run it on this server.
    Server(usize),
    /// Run it on this replica after waiting for the session's write (`MASTER_GTID_WAIT`,
    /// or the applied LSN on a server that `follows_log`); if the wait times out, on the
    /// primary.
    WaitThenServer(usize),
    /// Nothing can run it: the message names the cause.
    Unavailable(String),
}

/// Whether a statement must run where connection state lives (row 3).
fn creates_state(c: &Classification) -> bool {
    const STATEFUL: Flags = Flags(
        Flags::USER_VARIABLE.0
            | Flags::GET_LOCK.0
            | Flags::CREATE_TEMP_TABLE.0
            | Flags::CALC_FOUND_ROWS.0
            | Flags::FOUND_ROWS.0
            | Flags::SEQUENCE.0
            | Flags::HANDLER.0,
    );
    c.flags.intersects(STATEFUL) || matches!(c.kind, Kind::LockTables | Kind::Prepare | Kind::Execute)
}

/// Whether a statement may run on a replica at all (rows 5–7).
pub fn is_read(c: &Classification) -> bool {
    let readish = matches!(c.kind, Kind::Read | Kind::Show | Kind::TxnBeginReadOnly);
    readish
        && !c
            .flags
            .intersects(Flags(Flags::INTO.0 | Flags::MULTI_HAS_WRITE.0 | Flags::FOR_UPDATE.0 | Flags::FOR_SHARE.0))
}

/// The policy table above.
pub fn route(c: &Classification, s: &SessionView<'_>, table: &RoutingTable, policy: &Policy) -> Target {
    if let Some(id) = s.pinned_to {
        return Target::Server(id);
    }
    let read = is_read(c)
        && !c.flags.contains(Flags::HINT_LEADER)
        && !creates_state(c)
        && !s.autocommit_off
        && policy.consistency != Consistency::Strong;
    let primary = table.leader();
    let primary_up = primary.filter(|p| p.health == Health::Up);
    let neutral = matches!(c.kind, Kind::SessionSet | Kind::Use | Kind::TxnCommit | Kind::TxnRollback)
        && !c.flags.intersects(Flags(Flags::MULTI_STATEMENT.0 | Flags::USER_VARIABLE.0));
    if neutral && primary_up.is_none() {
        if let Some(r) = table.servers.iter().find(|sv| sv.role.serves_reads() && sv.health == Health::Up) {
            return Target::Server(r.id);
        }
    }
    if !read {
        return match (primary_up, primary) {
            (Some(p), _) => Target::Server(p.id),
            (None, Some(p)) => Target::Unavailable(format!(
                "primary {} is down ({}); writes are unavailable until it is back, reads continue on replicas",
                p.addr,
                p.last_error.as_deref().unwrap_or("failed health checks")
            )),
            (None, None) => Target::Unavailable("no primary is configured".into()),
        };
    }
    let fresh = |sv: &&Server| {
        sv.role.serves_reads() && sv.health == Health::Up && sv.lag_ms.is_some_and(|l| l <= policy.max_lag_ms)
    };
    let least_loaded = |pred: &dyn Fn(&&Server) -> bool| {
        table
            .servers
            .iter()
            .filter(|sv| pred(sv))
            .min_by_key(|sv| (sv.in_flight.load(Ordering::Relaxed) as u64 * 1000) / sv.weight.max(1) as u64)
            .map(|sv| sv.id)
    };
    let by_lsn = match policy.consistency {
        Consistency::Session => s.last_lsn.is_some(),
        Consistency::Global => true,
        _ => false,
    };
    if by_lsn {
        if let Some(id) = least_loaded(&|sv: &&Server| fresh(sv) && sv.follows_log) {
            return Target::WaitThenServer(id);
        }
        if policy.consistency == Consistency::Session {
            if let Some(id) = least_loaded(&|sv: &&Server| fresh(sv) && sv.shoal) {
                return Target::Server(id);
            }
        }
        // A cluster node's own MariaDB that leads still waits: just elected, it may not
        // have applied the write yet ("global": its commit point confirmed by a quorum).
        if let Some(p) = primary_up {
            return if p.follows_log { Target::WaitThenServer(p.id) } else { Target::Server(p.id) };
        }
    }
    match (policy.consistency, s.last_write) {
        (Consistency::Session, Some(g)) if !g.is_empty() => {
            if let Some(id) = least_loaded(&|sv: &&Server| fresh(sv) && sv.gtid.covers(g)) {
                return Target::Server(id);
            }
            if primary_up.is_some() {
                if let Some(id) = least_loaded(&fresh) {
                    return Target::WaitThenServer(id);
                }
            }
        }
        _ => {
            if let Some(id) = least_loaded(&fresh) {
                return Target::Server(id);
            }
        }
    }
    if let Some(p) = primary_up {
        return Target::Server(p.id);
    }
    // Primary down: any reachable replica beats an error for reads — but a session that
    // wrote (or a global read) still reads only where the write is: it waits there, and
    // with no primary to fall back to, the read waits for one (`failover_buffer_ms`).
    let reachable = |sv: &&Server| sv.role.serves_reads() && sv.health == Health::Up;
    let must_see =
        by_lsn || (policy.consistency == Consistency::Session && s.last_write.is_some_and(|g| !g.is_empty()));
    match least_loaded(&reachable) {
        Some(id) if must_see => Target::WaitThenServer(id),
        Some(id) => Target::Server(id),
        None => Target::Unavailable("no server is reachable for reads: primary and every replica are down".into()),
    }
}

#[cfg(test)]
mod tests;
