//! Raft metrics to Prometheus: a task follows openraft's metrics stream and records the
//! gauges and counters of `crate::metrics` (`shoal_cluster_*`); which counters an update
//! bumps is decided by [`events`] (pure).

use openraft::ServerState;

use super::types::{NodeId, Raft};
use crate::metrics as m;

/// What this module looks at in one metrics update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Leader, follower, candidate, learner.
    pub state: ServerState,
    /// Current term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<NodeId>,
}

/// Counters one update bumps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    /// The known leader changed.
    pub leader_changed: bool,
    /// This node became a candidate (or started another round as one, in a new term).
    pub election_started: bool,
    /// This node became leader.
    pub election_won: bool,
}

/// Which counters the step from `prev` to `now` bumps. Pure.
///
/// | from → to | counts |
/// |---|---|
/// | leader `a` → leader `b ≠ a` (or none) | leader change |
/// | any non-candidate → candidate, or candidate → candidate in a higher term | election started |
/// | not leader → leader | election won |
pub fn events(prev: Option<Seen>, now: Seen) -> Events {
    let Some(p) = prev else {
        return Events { leader_changed: now.leader.is_some(), ..Events::default() };
    };
    Events {
        leader_changed: p.leader != now.leader,
        election_started: now.state == ServerState::Candidate
            && (p.state != ServerState::Candidate || now.term > p.term),
        election_won: now.state == ServerState::Leader && p.state != ServerState::Leader,
    }
}

/// Records every metrics update of `raft` until it shuts down. `lease` is
/// `election_timeout_max`: a leader without quorum acks for longer is not counted as
/// leader (see `node::serving_leader`).
pub async fn record(
    raft: Raft,
    lease: std::time::Duration,
    clock: std::sync::Arc<std::sync::Mutex<super::status::LogClock>>,
) {
    let mut rx = raft.metrics();
    let mut prev = None;
    loop {
        let x = rx.borrow_and_update().clone();
        let now = Seen { state: x.state, term: x.current_term, leader: x.current_leader };
        let e = events(prev, now);
        prev = Some(now);
        metrics::gauge!(m::CLUSTER_TERM).set(x.current_term as f64);
        let serving = super::node::serving_leader(x.state, x.millis_since_quorum_ack, lease);
        metrics::gauge!(m::CLUSTER_IS_LEADER).set(if serving { 1.0 } else { 0.0 });
        metrics::gauge!(m::CLUSTER_LAST_LOG_INDEX).set(x.last_log_index.unwrap_or(0) as f64);
        if let Some(last) = x.last_log_index {
            clock.lock().unwrap_or_else(|e| e.into_inner()).record(last, std::time::Instant::now());
        }
        metrics::gauge!(m::CLUSTER_APPLIED_INDEX).set(x.last_applied.map_or(0, |l| l.index) as f64);
        metrics::gauge!(m::CLUSTER_SNAPSHOT_INDEX).set(x.snapshot.map_or(0, |l| l.index) as f64);
        metrics::gauge!(m::CLUSTER_PURGED_INDEX).set(x.purged.map_or(0, |l| l.index) as f64);
        if e.leader_changed {
            metrics::counter!(m::CLUSTER_LEADER_CHANGES).increment(1);
        }
        if e.election_started {
            metrics::counter!(m::CLUSTER_ELECTIONS_STARTED).increment(1);
        }
        if e.election_won {
            metrics::counter!(m::CLUSTER_ELECTIONS_WON).increment(1);
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServerState::*;

    fn s(state: ServerState, term: u64, leader: Option<NodeId>) -> Seen {
        Seen { state, term, leader }
    }

    /// Every row of `events`' table.
    #[test]
    fn event_rows() {
        let e = events(Some(s(Follower, 2, Some(1))), s(Follower, 3, Some(2)));
        assert_eq!(e, Events { leader_changed: true, ..Default::default() });
        let e = events(Some(s(Follower, 2, Some(1))), s(Follower, 2, None));
        assert!(e.leader_changed);
        let e = events(Some(s(Follower, 2, Some(1))), s(Candidate, 3, None));
        assert_eq!(e, Events { leader_changed: true, election_started: true, election_won: false });
        let e = events(Some(s(Candidate, 3, None)), s(Candidate, 4, None));
        assert_eq!(e, Events { election_started: true, ..Default::default() });
        let e = events(Some(s(Candidate, 3, None)), s(Candidate, 3, None));
        assert_eq!(e, Events::default());
        let e = events(Some(s(Candidate, 3, None)), s(Leader, 3, Some(2)));
        assert_eq!(e, Events { leader_changed: true, election_won: true, election_started: false });
        assert_eq!(events(None, s(Follower, 0, None)), Events::default());
    }
}
