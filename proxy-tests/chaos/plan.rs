//! The seeded fault plan: a pure function from (seed, rounds, node count) to the faults
//! the harness injects, one per round, each held for a while and then healed.
//!
//! | fault | what is done | healed by |
//! |---|---|---|
//! | `KillShoal(t)` | SIGKILL of node t's `shoal` | `shoal start` again |
//! | `Pause(t)` | SIGSTOP of node t's `shoal` | SIGCONT |
//! | `KillMariadb(t)` | SIGKILL of node t's `mariadbd` (its shoal stays up; a leader steps down) | restart on the same data |
//! | `Isolate(t)` | every cluster link of node t cut, both ways | links restored |
//! | `CutOneWay(a, b)` | only the link a → b (a dials b) cut: asymmetric | links restored |
//! | `SplitMinorityLeader` | the leader and one follower cut from the rest (5 nodes) | links restored |
//! | `Bridge` | two halves that cannot reach each other but both reach one node (5 nodes) | links restored |
//! | `KillLeaderInBigTransaction` | the leader's shoal killed while a 20 000-row transaction commits | `shoal start` again |
//! | `KillLeaderInDdl` | the leader's shoal killed right after an `ALTER TABLE` is sent | `shoal start` again |
//!
//! A target `t` is the leader, or the k-th follower (chosen when the fault is injected,
//! from whoever leads then). The two partitions that need five nodes are drawn only for
//! five. Hold times are 1–4 s.
//!
//! On top of its fault, a round may slow every cluster link of one node by 50–250 ms per
//! chunk for the hold (`Step::slow`, about one round in three; `make chaos` only, until
//! the openraft assertion they provoked is explained: docs/reliability.md). It is drawn
//! from a second stream of the seed, so the faults of a seed stay what they were before
//! delays existed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Whom a fault hits, resolved when it is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Leader,
    /// The k-th follower (mod the followers there are).
    Follower(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    KillShoal(Target),
    Pause(Target),
    KillMariadb(Target),
    Isolate(Target),
    CutOneWay(Target, Target),
    SplitMinorityLeader,
    Bridge,
    KillLeaderInBigTransaction,
    KillLeaderInDdl,
}

impl Fault {
    /// Its kind, for the report's counts.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Fault::KillShoal(_) => "kill -9 shoal",
            Fault::Pause(_) => "SIGSTOP/SIGCONT",
            Fault::KillMariadb(_) => "kill -9 mariadbd",
            Fault::Isolate(Target::Leader) => "isolate the leader",
            Fault::Isolate(_) => "isolate a follower",
            Fault::CutOneWay(..) => "one-way link cut",
            Fault::SplitMinorityLeader => "minority with the leader",
            Fault::Bridge => "bridge partition",
            Fault::KillLeaderInBigTransaction => "leader killed in a big transaction",
            Fault::KillLeaderInDdl => "leader killed in DDL",
        }
    }
}

/// One round: the fault and how long it is held, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) fault: Fault,
    pub(crate) hold_ms: u64,
    /// Whose cluster links are slowed during the hold, and by how much per chunk, ms.
    pub(crate) slow: Option<(Target, u64)>,
}

/// Share of rounds with slowed links, and the delay range, ms.
const SLOW_SHARE: f64 = 0.33;
const SLOW_MS: (u64, u64) = (50, 250);

/// Shortest and longest hold, ms.
const HOLD_MS: (u64, u64) = (1_000, 4_000);

/// Which faults a plan draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Faults {
    /// Every kind in the table.
    All,
    /// Pauses and partitions only, no process killed: the short profile of `make test`
    /// (docs/reliability.md lists what the killing kinds still find).
    NoKills,
}

impl Faults {
    fn allows(self, f: Fault) -> bool {
        match self {
            Faults::All => true,
            Faults::NoKills => {
                matches!(
                    f,
                    Fault::Pause(_)
                        | Fault::Isolate(_)
                        | Fault::CutOneWay(..)
                        | Fault::SplitMinorityLeader
                        | Fault::Bridge
                )
            }
        }
    }
}

/// The plan for `seed` (same seed, same plan), drawn from `faults`.
pub(crate) fn plan(seed: u64, rounds: usize, nodes: usize, faults: Faults) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut delays = StdRng::seed_from_u64(seed ^ 0x5105_de1a);
    let target = |rng: &mut StdRng| {
        if rng.random_bool(0.5) {
            Target::Leader
        } else {
            Target::Follower(rng.random_range(0..nodes - 1))
        }
    };
    let kinds = if nodes >= 5 { 9 } else { 7 };
    let mut steps = Vec::with_capacity(rounds);
    while steps.len() < rounds {
        {
            let fault = match rng.random_range(0..kinds) {
                0 => Fault::KillShoal(target(&mut rng)),
                1 => Fault::Pause(target(&mut rng)),
                2 => Fault::KillMariadb(target(&mut rng)),
                3 => Fault::Isolate(target(&mut rng)),
                4 => {
                    let a = target(&mut rng);
                    let b = if a == Target::Leader {
                        Target::Follower(rng.random_range(0..nodes - 1))
                    } else {
                        Target::Leader
                    };
                    Fault::CutOneWay(a, b)
                }
                5 => Fault::KillLeaderInBigTransaction,
                6 => Fault::KillLeaderInDdl,
                7 => Fault::SplitMinorityLeader,
                _ => Fault::Bridge,
            };
            let hold_ms = rng.random_range(HOLD_MS.0..=HOLD_MS.1);
            if faults.allows(fault) {
                // Drawn for every step, so both profiles keep one delay stream per seed.
                let slowed = delays.random_bool(SLOW_SHARE);
                let slow = (slowed && faults == Faults::All).then(|| {
                    let who = target(&mut delays);
                    (who, delays.random_range(SLOW_MS.0..=SLOW_MS.1))
                });
                steps.push(Step { fault, hold_ms, slow });
            }
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_plan_and_three_nodes_get_no_five_node_partitions() {
        assert_eq!(plan(7, 50, 3, Faults::All), plan(7, 50, 3, Faults::All));
        assert_ne!(plan(7, 50, 3, Faults::All), plan(8, 50, 3, Faults::All));
        let quiet = plan(7, 200, 3, Faults::NoKills);
        assert_eq!(quiet.len(), 200);
        assert!(quiet.iter().all(|s| s.slow.is_none()), "make test's profile slows no links");
        assert!(quiet.iter().all(|s| matches!(s.fault, Fault::Pause(_) | Fault::Isolate(_) | Fault::CutOneWay(..))));
        let three = plan(1, 500, 3, Faults::All);
        assert!(three.iter().all(|s| !matches!(s.fault, Fault::SplitMinorityLeader | Fault::Bridge)));
        assert!(three.iter().all(|s| (HOLD_MS.0..=HOLD_MS.1).contains(&s.hold_ms)));
        let slowed = three.iter().filter(|s| s.slow.is_some()).count();
        assert!((100..250).contains(&slowed), "about a third of the rounds slow links: {slowed}");
        assert!(three.iter().filter_map(|s| s.slow).all(|(_, ms)| (SLOW_MS.0..=SLOW_MS.1).contains(&ms)));
        let five = plan(1, 500, 5, Faults::All);
        assert!(five.iter().any(|s| s.fault == Fault::Bridge));
        for s in &five {
            if let Fault::CutOneWay(a, b) = s.fault {
                assert_ne!(a, b, "a one-way cut joins two different nodes");
                assert!(a == Target::Leader || b == Target::Leader);
            }
        }
    }
}
