//! What `/cluster`, `/cluster/nodes` and `shoal servers` show on a cluster node
//! (`admin/api.rs`, `main.rs`): one [`NodeStatus`] per member, built by [`statuses`] (pure)
//! from what this node knows, and the WolfScale-style table ([`render_servers`]).
//!
//! | this node is | it knows about the others | so their rows show |
//! |---|---|---|
//! | the serving leader | replication progress (matched index) of every follower and learner | `LAG` = its last index − their matched index; `STATUS` `up` if they acknowledged anything, else `unknown` |
//! | anything else | only the membership | `LAG` and `STATUS` `unknown` (ask the leader) |
//!
//! Its own row always shows its role, term, last log index and applied index.

use std::collections::BTreeMap;
use std::fmt::Write as _;

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
        rows.push(NodeStatus {
            id: *id,
            address: addr.clone(),
            role: if *voter { "voter" } else { "learner" },
            status,
            lag_entries: lag,
            term: None,
            last_log_index: None,
            applied_index: None,
            matched_index: progress.flatten(),
        });
    }
    rows
}

/// `shoal servers`' table: `ID | STATUS | ROLE | ADDRESS | LAG` (LAG in entries, `-` when
/// unknown). Pure.
pub fn render_servers(rows: &[NodeStatus]) -> String {
    let mut out = String::from("ID | STATUS | ROLE | ADDRESS | LAG\n");
    for r in rows {
        let lag = r.lag_entries.map_or("-".to_string(), |l| l.to_string());
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
    fn status_rows() {
        let me = Local { id: 1, role: Role::Leader, term: 3, last_log_index: Some(50), applied_index: Some(50) };
        let matched = BTreeMap::from([(1, Some(50)), (2, Some(42)), (4, None)]);
        let rows = statuses(&me, &members(), Some(&matched));
        assert_eq!(rows[0].role, "leader");
        assert_eq!((rows[1].id, rows[1].status, rows[1].lag_entries), (2, "up", Some(8)));
        assert_eq!((rows[2].id, rows[2].role, rows[2].status, rows[2].lag_entries), (4, "learner", "unknown", None));
        assert_eq!(
            render_servers(&rows),
            "ID | STATUS | ROLE | ADDRESS | LAG\n1 | up | leader | a:7654 | 0\n2 | up | voter | b:7654 | 8\n4 | unknown | learner | d:7654 | -\n"
        );

        let me = Local { id: 2, role: Role::Follower, term: 3, last_log_index: Some(42), applied_index: Some(40) };
        let rows = statuses(&me, &members(), Some(&matched));
        assert_eq!((rows[0].id, rows[0].role, rows[0].applied_index), (2, "follower", Some(40)));
        assert!(rows[1..].iter().all(|r| r.status == "unknown" && r.lag_entries.is_none()), "{rows:?}");

        let me =
            Local { id: 1, role: Role::LeaderWithoutQuorum, term: 3, last_log_index: Some(50), applied_index: None };
        let rows = statuses(&me, &members(), Some(&matched));
        assert_eq!(rows[0].role, "leader-no-quorum");
        assert!(rows[1..].iter().all(|r| r.lag_entries.is_none()), "a cut-off leader's progress is stale");
    }
}
