//! What `/cluster`, `/cluster/nodes` and `shoal servers` show on a cluster node
//! (`admin/api.rs`, `main.rs`): one [`NodeStatus`] per member, built by [`statuses`] (pure)
//! from what this node knows, and the WolfScale-style table ([`render_servers`]).
//!
//! | this node is | it knows about the others | so their rows show |
//! |---|---|---|
//! | the serving leader | replication progress (matched index) of every follower and learner | `LAG` = its last index − their matched index, and in ms: how long ago its log first held an entry they lack ([`LogClock`]); `STATUS` `up` if they acknowledged anything, else `unknown` |
//! | anything else | only the membership | `LAG` and `STATUS` `unknown` (ask the leader) |
//!
//! Its own row always shows its role, term, last log index and applied index.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::node::Role;
use super::types::NodeId;

/// One member as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// Raft node id.
    pub id: NodeId,
    /// Cluster address.
    pub address: String,
    /// `leader`, `leader-no-quorum`, `follower`, `candidate`, `learner`, `stopped`, or
    /// `voter` / `learner` for other nodes (their own view is theirs).
    pub role: &'static str,
    /// `up`, `unknown` (see the module table).
    pub status: &'static str,
    /// Entries behind the leader, when this node leads.
    pub lag_entries: Option<u64>,
    /// Milliseconds behind the leader (how long ago the leader's log first held an entry
    /// this member lacks), when this node leads.
    pub lag_ms: Option<u64>,
    /// For this node: current term.
    pub term: Option<u64>,
    /// For this node: Raft index of its last log entry.
    pub last_log_index: Option<u64>,
    /// For this node: Raft index of the last applied entry.
    pub applied_index: Option<u64>,
    /// For another node, on the serving leader: the Raft index the leader knows it holds
    /// (its matched index; `null` elsewhere).
    pub matched_index: Option<u64>,
}

/// Samples kept by a [`LogClock`] (at one per metrics update, minutes of a busy leader's
/// log; an older lag reads as at least the oldest sample's age).
pub const LOG_CLOCK_SAMPLES_MAX: usize = 4096;

/// When this node's log reached each length: (last index, when), oldest first. The lag
/// of a member in time is how long ago the log first held an entry the member lacks.
#[derive(Debug, Default)]
pub struct LogClock {
    samples: VecDeque<(u64, Instant)>,
}

impl LogClock {
    /// The log's last index is `last` at `at` (samples that do not move are dropped).
    pub fn record(&mut self, last: u64, at: Instant) {
        if self.samples.back().is_some_and(|(l, _)| *l >= last) {
            return;
        }
        self.samples.push_back((last, at));
        if self.samples.len() > LOG_CLOCK_SAMPLES_MAX {
            self.samples.pop_front();
        }
    }

    /// How far behind in time a member holding entries through `matched` is, when the log
    /// ends at `last`. Pure.
    ///
    /// | member | lag |
    /// |---|---|
    /// | holds everything (`matched >= last`) | 0 |
    /// | lacks entries the clock saw appear | now − when the first of them appeared |
    /// | lacks entries older than every sample | now − the oldest sample (a lower bound) |
    /// | lacks entries, no samples yet | unknown |
    pub fn lag(&self, matched: u64, last: u64, now: Instant) -> Option<Duration> {
        if matched >= last {
            return Some(Duration::ZERO);
        }
        let since = self.samples.iter().find(|(l, _)| *l > matched).or(self.samples.front());
        since.map(|(_, at)| now.saturating_duration_since(*at))
    }
}

/// What [`statuses`] reads about this node.
#[derive(Debug, Clone)]
pub struct Local {
    /// This node's id.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Current term.
    pub term: u64,
    /// Last log index.
    pub last_log_index: Option<u64>,
    /// Applied index.
    pub applied_index: Option<u64>,
}

/// The role's label.
pub const fn role_label(role: Role) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::LeaderWithoutQuorum => "leader-no-quorum",
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::Learner => "learner",
        Role::Stopped => "stopped",
    }
}

/// One row per member (`members`: id → (address, is voter)), this node first. `matched`
/// is the leader's replication progress (only used when this node is the serving leader).
/// Pure.
pub fn statuses(
    me: &Local,
    members: &BTreeMap<NodeId, (String, bool)>,
    matched: Option<&BTreeMap<NodeId, Option<u64>>>,
    clock: &LogClock,
    now: Instant,
) -> Vec<NodeStatus> {
    let leading = me.role == Role::Leader;
    let mut rows = Vec::with_capacity(members.len());
    let address = |id: &NodeId| members.get(id).map(|(a, _)| a.clone()).unwrap_or_default();
    rows.push(NodeStatus {
        id: me.id,
        address: address(&me.id),
        role: role_label(me.role),
        status: if me.role == Role::Stopped { "down" } else { "up" },
        lag_entries: leading.then_some(0),
        lag_ms: leading.then_some(0),
        term: Some(me.term),
        last_log_index: me.last_log_index,
        applied_index: me.applied_index,
        matched_index: None,
    });
    for (id, (addr, voter)) in members.iter().filter(|(id, _)| **id != me.id) {
        let progress = if leading { matched.and_then(|m| m.get(id).copied()) } else { None };
        let (status, lag) = match progress {
            Some(Some(m)) => ("up", me.last_log_index.map(|l| l.saturating_sub(m))),
            _ => ("unknown", None),
        };
        let lag_ms = match (progress, me.last_log_index) {
            (Some(Some(m)), Some(last)) => clock.lag(m, last, now).map(|d| d.as_millis() as u64),
            _ => None,
        };
        rows.push(NodeStatus {
            id: *id,
            address: addr.clone(),
            role: if *voter { "voter" } else { "learner" },
            status,
            lag_entries: lag,
            lag_ms,
            term: None,
            last_log_index: None,
            applied_index: None,
            matched_index: progress.flatten(),
        });
    }
    rows
}

/// The `LAG` cell: entries, and milliseconds when known (`8 (120 ms)`); `-` when unknown.
/// Pure.
pub fn lag_text(entries: Option<u64>, ms: Option<u64>) -> String {
    match (entries, ms) {
        (Some(e), Some(ms)) if e > 0 => format!("{e} ({ms} ms)"),
        (Some(e), _) => e.to_string(),
        (None, _) => "-".into(),
    }
}

/// `shoal servers`' table: `ID | STATUS | ROLE | ADDRESS | LAG` (LAG in entries and ms,
/// `-` when unknown). Pure.
pub fn render_servers(rows: &[NodeStatus]) -> String {
    let mut out = String::from("ID | STATUS | ROLE | ADDRESS | LAG\n");
    for r in rows {
        let lag = lag_text(r.lag_entries, r.lag_ms);
        let _ = writeln!(out, "{} | {} | {} | {} | {}", r.id, r.status, r.role, r.address, lag);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> BTreeMap<NodeId, (String, bool)> {
        [(1, ("a:7654".to_string(), true)), (2, ("b:7654".to_string(), true)), (4, ("d:7654".to_string(), false))]
            .into()
    }

    /// Both rows of the module table.
    #[test]
    fn log_clock_rows() {
        let t0 = Instant::now();
        let mut c = LogClock::default();
        c.record(10, t0);
        c.record(10, t0 + Duration::from_millis(5));
        c.record(20, t0 + Duration::from_millis(100));
        let now = t0 + Duration::from_millis(300);
        assert_eq!(c.lag(20, 20, now), Some(Duration::ZERO));
        assert_eq!(c.lag(15, 20, now), Some(Duration::from_millis(200)), "entry 16 appeared at +100 ms");
        assert_eq!(c.lag(5, 20, now), Some(Duration::from_millis(300)), "older than the samples: at least the oldest");
        assert_eq!(LogClock::default().lag(5, 20, now), None);
        assert_eq!(lag_text(Some(3), Some(200)), "3 (200 ms)");
        assert_eq!(lag_text(Some(0), Some(0)), "0");
        assert_eq!(lag_text(None, None), "-");
    }

    #[test]
    fn status_rows() {
        let (clock, now) = (LogClock::default(), Instant::now());
        let me = Local { id: 1, role: Role::Leader, term: 3, last_log_index: Some(50), applied_index: Some(50) };
        let matched = BTreeMap::from([(1, Some(50)), (2, Some(42)), (4, None)]);
        let rows = statuses(&me, &members(), Some(&matched), &clock, now);
        assert_eq!(rows[0].role, "leader");
        assert_eq!((rows[1].id, rows[1].status, rows[1].lag_entries), (2, "up", Some(8)));
        assert_eq!((rows[2].id, rows[2].role, rows[2].status, rows[2].lag_entries), (4, "learner", "unknown", None));
        assert_eq!(
            render_servers(&rows),
            "ID | STATUS | ROLE | ADDRESS | LAG\n1 | up | leader | a:7654 | 0\n2 | up | voter | b:7654 | 8\n4 | unknown | learner | d:7654 | -\n"
        );

        let me = Local { id: 2, role: Role::Follower, term: 3, last_log_index: Some(42), applied_index: Some(40) };
        let rows = statuses(&me, &members(), Some(&matched), &clock, now);
        assert_eq!((rows[0].id, rows[0].role, rows[0].applied_index), (2, "follower", Some(40)));
        assert!(rows[1..].iter().all(|r| r.status == "unknown" && r.lag_entries.is_none()), "{rows:?}");

        let me =
            Local { id: 1, role: Role::LeaderWithoutQuorum, term: 3, last_log_index: Some(50), applied_index: None };
        let rows = statuses(&me, &members(), Some(&matched), &clock, now);
        assert_eq!(rows[0].role, "leader-no-quorum");
        assert!(rows[1..].iter().all(|r| r.lag_entries.is_none()), "a cut-off leader's progress is stale");
    }
}
