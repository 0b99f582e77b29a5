//! The safety checker: what a chaos run recorded, against what the nodes hold once
//! healed. Each invariant maps to DESIGN §6:
//!
//! | invariant | violation |
//! |---|---|
//! | (1) every acknowledged write is on every node after heal | [`Violation::LostAck`] |
//! | (2) identical `CHECKSUM TABLE` on every node | [`Violation::Diverged`] |
//! | (2) a write of unknown outcome is on every node or on none | [`Violation::Partial`] |
//! | (3) no failed write is visible anywhere | [`Violation::Phantom`] |
//! | (3) no prepared xid left unresolved | [`Violation::PreparedLeft`] |
//! | (4) a session reads its own last acknowledged write (read-your-writes probes) | [`Violation::StaleRead`] |
//! | bank: the total balance is the same at every read, from any node | [`Violation::BankTotal`] |
//! | (4) `read_consistency = "global"`: the registers' history is linearizable ([`super::linear`]) | [`Violation::NotLinearizable`], or [`Violation::Undecided`] when the search gave up |
//! | at most one leader per term (every poll of every node) | [`Violation::TwoLeaders`] |
//! | a node's applied LSN never goes back while its process runs (every poll) | [`Violation::LsnBackwards`] |
//!
//! (6), no state across sessions, is `proxy-tests/isolation.rs`'s. Pure: the runner
//! gathers the history and the final states; the tests below feed it broken ones.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Instant;

use super::linear::{check_key, RegOp, Verdict};
use crate::workload::{Op, Outcome};

/// A read of the bank's total through one node.
#[derive(Debug, Clone)]
pub(crate) struct BankRead {
    pub(crate) node: u64,
    pub(crate) total: i64,
    pub(crate) at: Instant,
}

/// A read-your-writes probe: a write acknowledged on a session, then read on it.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub(crate) node: u64,
    pub(crate) id: u64,
    pub(crate) seen: bool,
    pub(crate) at: Instant,
    /// What `SELECT @@shoal_last_lsn` said on the session right after the write's ack.
    pub(crate) session_lsn: Option<u64>,
    /// The port of the MariaDB that answered the read (`@@port`).
    pub(crate) served_by: Option<u16>,
}

/// Everything the clients and the pollers saw.
#[derive(Debug, Default)]
pub(crate) struct History {
    pub(crate) serials: Vec<Op>,
    pub(crate) bank_reads: Vec<BankRead>,
    pub(crate) probes: Vec<Probe>,
    /// Register operations (every key starts at 0).
    pub(crate) registers: Vec<RegOp>,
    /// (term, leader) from every poll.
    pub(crate) leaders: Vec<(u64, u64)>,
    /// (node, its process's incarnation, applied LSN) from every poll, in poll order. A
    /// restarted node reports from its last snapshot and applies the rest again (exactly
    /// once, by marker rows), so the rule holds per incarnation.
    pub(crate) applied: Vec<(u64, u32, u64)>,
}

/// One node once the cluster is healed and has converged.
#[derive(Debug, Clone)]
pub(crate) struct NodeState {
    pub(crate) id: u64,
    pub(crate) serials: BTreeSet<u64>,
    /// `CHECKSUM TABLE … EXTENDED` by table.
    pub(crate) checksums: BTreeMap<String, String>,
    /// `XA RECOVER`'s output.
    pub(crate) prepared: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Violation {
    LostAck {
        serial: u64,
        node: u64,
        via: u64,
        at_ms: u128,
    },
    Phantom {
        serial: u64,
        node: u64,
        error: String,
    },
    Diverged {
        table: String,
        sums: Vec<(u64, String)>,
    },
    PreparedLeft {
        node: u64,
        xids: String,
    },
    StaleRead {
        node: u64,
        id: u64,
        at_ms: u128,
        session_lsn: Option<u64>,
        served_by: Option<u16>,
    },
    /// A write whose outcome the client could not know is on some nodes only.
    Partial {
        serial: u64,
        on: Vec<u64>,
        outcome: Outcome,
    },
    BankTotal {
        node: u64,
        total: i64,
        expected: i64,
        at_ms: u128,
    },
    TwoLeaders {
        term: u64,
        a: u64,
        b: u64,
    },
    LsnBackwards {
        node: u64,
        from: u64,
        to: u64,
    },
    NotLinearizable {
        key: i64,
        excerpt: String,
    },
    Undecided {
        key: i64,
        ops: usize,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::LostAck { serial, node, via, at_ms } => write!(
                f,
                "(1) lost write: serial {serial} was acknowledged through node {via} at +{at_ms} ms and is not on node {node}"
            ),
            Violation::Phantom { serial, node, error } => {
                write!(f, "(3) phantom write: serial {serial} failed ({error}) but is on node {node}")
            }
            Violation::Diverged { table, sums } => write!(f, "(2) {table} differs between nodes: {sums:?}"),
            Violation::PreparedLeft { node, xids } => write!(f, "(3) node {node} still has prepared xids: {xids}"),
            Violation::StaleRead { node, id, at_ms, session_lsn, served_by } => write!(
                f,
                "(4) stale read: a session on node {node} did not see its own acknowledged write {id} at +{at_ms} ms \
                 (the session's LSN at the ack: {session_lsn:?}; read on the MariaDB of port {served_by:?})"
            ),
            Violation::Partial { serial, on, outcome } => {
                write!(f, "(2) serial {serial} ({outcome:?} to its client) is on nodes {on:?} only")
            }
            Violation::BankTotal { node, total, expected, at_ms } => {
                write!(f, "bank: a read through node {node} at +{at_ms} ms saw a total of {total}, not {expected}")
            }
            Violation::TwoLeaders { term, a, b } => write!(f, "two leaders in term {term}: nodes {a} and {b}"),
            Violation::LsnBackwards { node, from, to } => {
                write!(f, "node {node}'s applied LSN went back from {from} to {to}")
            }
            Violation::NotLinearizable { key, excerpt } => {
                write!(f, "(4) register {key}: the reads and writes are not linearizable:\n    {excerpt}")
            }
            Violation::Undecided { key, ops } => write!(
                f,
                "register {key}: the linearizability search over its {ops} operations gave up (make the workload smaller)"
            ),
        }
    }
}

/// Every violation in `h` and `nodes` (`bank_total`: the total every read must see;
/// `t0`: where the report's `+ms` count from).
pub(crate) fn check(h: &History, nodes: &[NodeState], bank_total: i64, t0: Instant) -> Vec<Violation> {
    let ms = |at: Instant| at.saturating_duration_since(t0).as_millis();
    let mut out = Vec::new();
    for n in nodes {
        for op in h.serials.iter().filter(|o| o.outcome == Outcome::Acked && !n.serials.contains(&o.serial)) {
            out.push(Violation::LostAck { serial: op.serial, node: n.id, via: op.node, at_ms: ms(op.start) });
        }
        for op in h.serials.iter().filter(|o| o.outcome == Outcome::Failed && n.serials.contains(&o.serial)) {
            let error = op.error.clone().unwrap_or_default();
            out.push(Violation::Phantom { serial: op.serial, node: n.id, error });
        }
        if !n.prepared.trim().is_empty() {
            out.push(Violation::PreparedLeft { node: n.id, xids: n.prepared.trim().to_string() });
        }
    }
    let tables: BTreeSet<&String> = nodes.iter().flat_map(|n| n.checksums.keys()).collect();
    for table in tables {
        let sums: Vec<(u64, String)> =
            nodes.iter().map(|n| (n.id, n.checksums.get(table).cloned().unwrap_or_else(|| "missing".into()))).collect();
        if sums.windows(2).any(|w| w[0].1 != w[1].1) {
            out.push(Violation::Diverged { table: table.clone(), sums });
        }
    }
    for op in h.serials.iter().filter(|o| o.outcome != Outcome::Acked) {
        let on: Vec<u64> = nodes.iter().filter(|n| n.serials.contains(&op.serial)).map(|n| n.id).collect();
        if !on.is_empty() && on.len() != nodes.len() {
            out.push(Violation::Partial { serial: op.serial, on, outcome: op.outcome });
        }
    }
    for p in h.probes.iter().filter(|p| !p.seen) {
        let (session_lsn, served_by) = (p.session_lsn, p.served_by);
        out.push(Violation::StaleRead { node: p.node, id: p.id, at_ms: ms(p.at), session_lsn, served_by });
    }
    for r in h.bank_reads.iter().filter(|r| r.total != bank_total) {
        out.push(Violation::BankTotal { node: r.node, total: r.total, expected: bank_total, at_ms: ms(r.at) });
    }
    let mut keys: BTreeMap<i64, Vec<&RegOp>> = BTreeMap::new();
    for op in &h.registers {
        keys.entry(op.key).or_default().push(op);
    }
    for (key, ops) in keys {
        match check_key(0, &ops, t0) {
            Verdict::Linearizable => {}
            Verdict::Violated { excerpt } => out.push(Violation::NotLinearizable { key, excerpt }),
            Verdict::Undecided => out.push(Violation::Undecided { key, ops: ops.len() }),
        }
    }
    let mut by_term: BTreeMap<u64, u64> = BTreeMap::new();
    let mut reported = BTreeSet::new();
    for &(term, leader) in &h.leaders {
        let first = *by_term.entry(term).or_insert(leader);
        if first != leader && reported.insert(term) {
            out.push(Violation::TwoLeaders { term, a: first, b: leader });
        }
    }
    let mut last: BTreeMap<(u64, u32), u64> = BTreeMap::new();
    for &(node, incarnation, lsn) in &h.applied {
        if let Some(&before) = last.get(&(node, incarnation)) {
            if lsn < before {
                out.push(Violation::LsnBackwards { node, from: before, to: lsn });
            }
        }
        last.insert((node, incarnation), lsn);
    }
    out
}

/// The report of a failed run: each violation, and for lost and phantom writes the
/// operations of that client around it (a minimal history excerpt).
pub(crate) fn report(violations: &[Violation], h: &History, t0: Instant) -> String {
    let mut out = format!("{} invariant violations:\n", violations.len());
    for v in violations.iter().take(20) {
        out += &format!("* {v}\n");
        let serial = match v {
            Violation::LostAck { serial, .. }
            | Violation::Phantom { serial, .. }
            | Violation::Partial { serial, .. } => *serial,
            _ => continue,
        };
        let Some(op) = h.serials.iter().find(|o| o.serial == serial) else { continue };
        let mut around: Vec<&Op> = h.serials.iter().filter(|o| o.client == op.client).collect();
        around.sort_by_key(|o| o.start);
        let i = around.iter().position(|o| o.serial == serial).unwrap_or(0);
        for o in &around[i.saturating_sub(2)..(i + 3).min(around.len())] {
            out += &format!(
                "    client {} serial {} via node {} +{} ms, {} ms: {:?} {}\n",
                o.client,
                o.serial,
                o.node,
                o.start.saturating_duration_since(t0).as_millis(),
                (o.end - o.start).as_millis(),
                o.outcome,
                o.error.as_deref().unwrap_or("")
            );
        }
    }
    if violations.len() > 20 {
        out += &format!("… and {} more\n", violations.len() - 20);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(serial: u64, outcome: Outcome, t0: Instant) -> Op {
        Op { client: 0, serial, node: 1, start: t0, end: t0, outcome, error: None }
    }

    fn node(id: u64, serials: &[u64], sum: &str) -> NodeState {
        NodeState {
            id,
            serials: serials.iter().copied().collect(),
            checksums: [("chaos.s".to_string(), sum.to_string())].into(),
            prepared: String::new(),
        }
    }

    #[test]
    fn a_clean_history_passes() {
        let t0 = Instant::now();
        let h = History {
            serials: vec![op(1, Outcome::Acked, t0), op(2, Outcome::Failed, t0), op(3, Outcome::Unknown, t0)],
            bank_reads: vec![BankRead { node: 2, total: 100, at: t0 }],
            probes: vec![Probe { node: 3, id: 9, seen: true, at: t0, session_lsn: None, served_by: None }],
            registers: vec![],
            leaders: vec![(1, 1), (1, 1), (2, 2)],
            applied: vec![(1, 1, 5), (1, 1, 5), (1, 1, 7), (1, 2, 3), (1, 2, 8)],
        };
        // An unknown outcome may or may not have happened: on every node alike is fine.
        let nodes = [node(1, &[1, 3], "c"), node(2, &[1, 3], "c"), node(3, &[1, 3], "c")];
        assert_eq!(check(&h, &nodes, 100, t0), vec![]);
    }

    /// An ack before a quorum held the write: the leader that acked it died, the others
    /// never had it.
    #[test]
    fn an_ack_before_quorum_is_a_lost_write_and_a_divergence() {
        let t0 = Instant::now();
        let h = History { serials: vec![op(1, Outcome::Acked, t0), op(2, Outcome::Acked, t0)], ..History::default() };
        let nodes = [node(1, &[1, 2], "a"), node(2, &[1], "b"), node(3, &[1], "b")];
        let v = check(&h, &nodes, 0, t0);
        assert!(v.contains(&Violation::LostAck { serial: 2, node: 2, via: 1, at_ms: 0 }), "{v:?}");
        assert!(v.contains(&Violation::LostAck { serial: 2, node: 3, via: 1, at_ms: 0 }), "{v:?}");
        assert!(v.iter().any(|v| matches!(v, Violation::Diverged { .. })), "{v:?}");
        let text = report(&v, &h, t0);
        assert!(text.contains("lost write: serial 2 was acknowledged through node 1"), "{text}");
        assert!(text.contains("client 0 serial 2 via node 1"), "the excerpt: {text}");
    }

    #[test]
    fn an_unknown_write_on_some_nodes_only_is_partial() {
        let t0 = Instant::now();
        let h = History { serials: vec![op(5, Outcome::Unknown, t0)], ..History::default() };
        let nodes = [node(1, &[5], "a"), node(2, &[], "b"), node(3, &[], "b")];
        let v = check(&h, &nodes, 0, t0);
        assert!(v.contains(&Violation::Partial { serial: 5, on: vec![1], outcome: Outcome::Unknown }), "{v:?}");
    }

    /// A follower skipped applying an entry.
    #[test]
    fn a_skipped_apply_is_reported_for_that_node() {
        let t0 = Instant::now();
        let h = History { serials: (1..=3).map(|n| op(n, Outcome::Acked, t0)).collect(), ..History::default() };
        let nodes = [node(1, &[1, 2, 3], "a"), node(2, &[1, 3], "b"), node(3, &[1, 2, 3], "a")];
        let v = check(&h, &nodes, 0, t0);
        assert_eq!(v[0], Violation::LostAck { serial: 2, node: 2, via: 1, at_ms: 0 });
        assert!(matches!(&v[1], Violation::Diverged { table, .. } if table == "chaos.s"), "{v:?}");
        assert_eq!(v.len(), 2, "{v:?}");
    }

    #[test]
    fn stale_reads_phantoms_bank_totals_leaders_and_lsns_are_reported() {
        let t0 = Instant::now();
        let mut failed = op(4, Outcome::Failed, t0);
        failed.error = Some("1180 not durable".into());
        let h = History {
            serials: vec![failed],
            bank_reads: vec![BankRead { node: 3, total: 90, at: t0 }, BankRead { node: 1, total: 100, at: t0 }],
            probes: vec![Probe { node: 2, id: 7, seen: false, at: t0, session_lsn: Some(12), served_by: Some(3306) }],
            registers: vec![],
            leaders: vec![(3, 1), (3, 2), (3, 2)],
            applied: vec![(2, 1, 10), (2, 1, 9)],
        };
        let mut n1 = node(1, &[4], "a");
        n1.prepared = "1\t10\t0\tshoal-1".into();
        let v = check(&h, &[n1], 100, t0);
        let want = [
            Violation::Phantom { serial: 4, node: 1, error: "1180 not durable".into() },
            Violation::PreparedLeft { node: 1, xids: "1\t10\t0\tshoal-1".into() },
            Violation::StaleRead { node: 2, id: 7, at_ms: 0, session_lsn: Some(12), served_by: Some(3306) },
            Violation::BankTotal { node: 3, total: 90, expected: 100, at_ms: 0 },
            Violation::TwoLeaders { term: 3, a: 1, b: 2 },
            Violation::LsnBackwards { node: 2, from: 10, to: 9 },
        ];
        assert_eq!(v, want);
    }

    /// A stale register read in global mode: the checker names the key and the read.
    #[test]
    fn a_stale_register_read_is_not_linearizable() {
        use super::super::linear::RegKind;
        let t0 = Instant::now();
        let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
        let reg = |client, kind, a, b| RegOp { client, node: 3, key: 4, kind, start: at(a), end: Some(at(b)) };
        let h = History {
            registers: vec![reg(0, RegKind::Write(5), 0, 2), reg(1, RegKind::Read(0), 3, 4)],
            ..History::default()
        };
        let v = check(&h, &[], 0, t0);
        assert!(matches!(&v[..], [Violation::NotLinearizable { key: 4, .. }]), "{v:?}");
        let text = report(&v, &h, t0);
        assert!(text.contains("register 4") && text.contains("Read(0) by client 1 via node 3"), "{text}");
    }
}
