//! How much of the log a node keeps: snapshots and purges, decided by [`purge_upto`]
//! every [`RETENTION_INTERVAL`] by [`run`].
//!
//! The log keeps what the slowest member still needs, so a member that was down catches up
//! from it. Past the `[wal]` limits (`retention_mb`, `retention_hours`) a node purges what
//! it has applied even if a member still needs it: that member is then sent a snapshot,
//! which for MariaDB means it needs `shoal migrate` (`crate::apply::raft`).
//!
//! A purge needs a snapshot at or above its point (openraft purges only what a snapshot
//! holds): [`run`] asks for one first, then for the purge.

use std::time::{Duration, SystemTime};

use super::types::Raft;
use crate::wal::Wal;

/// How often the retention decision runs.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(2);
/// Fewest entries a purge within the limits removes (purging a handful at a time costs a
/// snapshot each for nothing).
pub const PURGE_ENTRIES_MIN: u64 = 1024;

/// Name of the file in `[node] data_dir` that says this node needs `shoal migrate` (a
/// snapshot install found its MariaDB behind the leader's log); it holds the reason.
/// `shoal migrate` removes it.
pub const NEEDS_MIGRATION_FILE: &str = "NEEDS_MIGRATION";

/// Why the node with data directory `data_dir` needs migration, if it does.
pub fn needs_migration(data_dir: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(data_dir.join(NEEDS_MIGRATION_FILE)).ok().map(|r| r.trim().to_string())
}

/// The `[wal]` limits in cluster mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Largest log, in bytes (`[wal] retention_mb`; `None`: unbounded).
    pub bytes_max: Option<u64>,
    /// Oldest entry kept (`[wal] retention_hours`; `None`: forever).
    pub age_max: Option<Duration>,
}

impl Retention {
    /// Whether a log of `bytes` whose oldest segment was written `age` ago exceeds them.
    pub fn exceeded(&self, bytes: u64, age: Duration) -> bool {
        self.bytes_max.is_some_and(|m| bytes > m) || self.age_max.is_some_and(|m| age > m)
    }
}

/// The Raft index to purge the log through, if any:
///
/// | this node | over the `[wal]` limits | purge through |
/// |---|---|---|
/// | leader | no | the slowest member's matched index (all members, those down included) |
/// | leader | yes | the last applied entry |
/// | follower | no | nothing (it may lead later, and lagging members would need the log) |
/// | follower | yes | the last applied entry |
///
/// Never more than `applied`; within the limits, nothing unless it purges at least
/// [`PURGE_ENTRIES_MIN`] entries past `purged`. `slowest` is `None` when a member has no
/// matched index (never reached, or a learner just added): nothing is purged for it.
pub fn purge_upto(
    leads: bool,
    over_limits: bool,
    applied: Option<u64>,
    slowest: Option<u64>,
    purged: Option<u64>,
) -> Option<u64> {
    let applied = applied?;
    let point = match (leads, over_limits) {
        (_, true) => applied,
        (true, false) => slowest?.min(applied),
        (false, false) => return None,
    };
    let done = purged.map_or(0, |p| p + 1);
    let enough = if over_limits { 1 } else { PURGE_ENTRIES_MIN };
    (point + 1 >= done + enough).then_some(point)
}

/// The log's size in bytes and the age of its oldest segment.
fn log_size(wal: &Wal, now: SystemTime) -> (u64, Duration) {
    let segments = wal.segments();
    let bytes = segments.iter().map(|s| s.bytes).sum();
    let age = segments
        .first()
        .and_then(|s| std::fs::metadata(wal.dir().join(&s.name)).ok())
        .and_then(|m| m.modified().ok())
        .and_then(|t| now.duration_since(t).ok())
        .unwrap_or_default();
    (bytes, age)
}

/// Applies [`purge_upto`] every [`RETENTION_INTERVAL`] until aborted.
pub async fn run(raft: Raft, wal: Wal, limits: Retention) {
    let mut tick = tokio::time::interval(RETENTION_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let m = raft.metrics().borrow().clone();
        let leads = m.state == openraft::ServerState::Leader;
        let slowest = m.replication.as_ref().and_then(|r| {
            let voters: Vec<_> = m.membership_config.membership().nodes().map(|(id, _)| *id).collect();
            voters
                .iter()
                .filter(|id| **id != m.id)
                .map(|id| r.get(id).cloned().flatten().map(|l| l.index))
                .try_fold(u64::MAX, |low, x| x.map(|x| low.min(x)))
        });
        let (bytes, age) = log_size(&wal, SystemTime::now());
        let over = limits.exceeded(bytes, age);
        let applied = m.last_applied.map(|l| l.index);
        let purged = m.purged.map(|l| l.index);
        let Some(upto) = purge_upto(leads, over, applied, slowest, purged) else { continue };
        // A newer snapshot for the next tick; openraft purges only what the current one
        // holds (it may stop short of `upto`: a transaction still prepared).
        if m.snapshot.is_none_or(|s| s.index < upto) && raft.trigger().snapshot().await.is_err() {
            return; // Raft stopped
        }
        tracing::debug!(upto, bytes, over, "purging the log");
        if raft.trigger().purge_log(upto).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_upto_rows() {
        let n = PURGE_ENTRIES_MIN;
        // leader within limits: the slowest member's matched index, in batches
        assert_eq!(purge_upto(true, false, Some(5 * n), Some(2 * n), None), Some(2 * n));
        assert_eq!(purge_upto(true, false, Some(5 * n), Some(10), None), None, "too few");
        assert_eq!(purge_upto(true, false, Some(5 * n), None, None), None, "a member never matched");
        assert_eq!(purge_upto(true, false, Some(n - 2), Some(5 * n), None), None, "never past applied, and < batch");
        assert_eq!(purge_upto(true, false, Some(3 * n), Some(5 * n), None), Some(3 * n), "never past applied");
        assert_eq!(purge_upto(true, false, Some(3 * n), Some(5 * n), Some(n)), Some(3 * n));
        // over the limits: what is applied, whoever needs it
        assert_eq!(purge_upto(true, true, Some(100), Some(3), Some(50)), Some(100));
        assert_eq!(purge_upto(false, true, Some(100), None, None), Some(100));
        assert_eq!(purge_upto(false, true, Some(100), None, Some(100)), None, "done");
        // follower within limits: nothing
        assert_eq!(purge_upto(false, false, Some(5 * n), Some(5 * n), None), None);
        assert_eq!(purge_upto(true, true, None, Some(3), None), None, "nothing applied");
    }

    #[test]
    fn limits_rows() {
        let l = Retention { bytes_max: Some(100), age_max: Some(Duration::from_secs(60)) };
        assert!(!l.exceeded(100, Duration::from_secs(60)));
        assert!(l.exceeded(101, Duration::ZERO));
        assert!(l.exceeded(0, Duration::from_secs(61)));
        assert!(!Retention::default().exceeded(u64::MAX, Duration::MAX));
    }
}
