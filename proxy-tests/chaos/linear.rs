//! Linearizability of single-key registers: the Wing & Gong search with Lowe's
//! memoisation, as `porcupine` implements it (P-compositionality: each key on its own).
//!
//! A history is every operation a client saw, with the instant it was sent and the
//! instant its answer came:
//!
//! | client saw | in the history as |
//! |---|---|
//! | a write acknowledged | `Write(v)` over [start, end] |
//! | a write of unknown outcome | `Write(v)` over [start, ∞): it may take effect at any later point, or never (then it is linearized after everything) |
//! | a write that failed | left out: it never took effect (if a read returns its value, no linearization exists) |
//! | a read answered | `Read(v)` over [start, end] |
//! | a read that failed or got no answer | left out (it observed nothing) |
//!
//! The history is linearizable when the operations can be put in one order that keeps
//! every operation that ended before another started ahead of it, in which each read
//! returns the value of the last write before it (or the initial value). Values written
//! are unique, so a read names the write it saw.
//!
//! The search walks the events in time order and linearizes a call as soon as the
//! register allows it, backtracking when an operation's return comes before it could be
//! linearized; a cache of (linearized set, value) cuts the states already explored. It
//! is exponential in the worst case: [`SEARCH_STATES_MAX`] bounds it, and a history that
//! exceeds it is reported as undecided, never as passed.

use std::collections::HashSet;
use std::time::Instant;

/// Cached search states per key at most; beyond that the key is undecided.
pub(crate) const SEARCH_STATES_MAX: usize = 2_000_000;
/// Operations around the stuck point that a failure report shows.
const EXCERPT_OPS_MAX: usize = 16;

/// What a register operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegKind {
    Write(i64),
    Read(i64),
}

/// One register operation as a client saw it (module table).
#[derive(Debug, Clone)]
pub(crate) struct RegOp {
    pub(crate) client: usize,
    pub(crate) node: u64,
    pub(crate) key: i64,
    pub(crate) kind: RegKind,
    pub(crate) start: Instant,
    /// `None`: a write whose outcome the client does not know.
    pub(crate) end: Option<Instant>,
}

/// What the search concluded about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Linearizable,
    /// No order exists; the excerpt shows the operations around the point the deepest
    /// attempt could not pass.
    Violated {
        excerpt: String,
    },
    /// The search gave up after [`SEARCH_STATES_MAX`] states.
    Undecided,
}

/// One event of the search's list: an operation's call or its return.
#[derive(Clone, Copy)]
struct Event {
    op: usize,
    call: bool,
}

/// A fixed-size bit set of operation indices (the linearized set).
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// Whether the operations of one key (`ops`, all with that key) are linearizable from
/// `initial` (module doc).
pub(crate) fn check_key(initial: i64, ops: &[&RegOp], t0: Instant) -> Verdict {
    let ops = &bound_unknown_writes(ops);
    let n = ops.len();
    // Events in time order; at equal instants calls first (treated as concurrent, the
    // lenient reading). Unknown returns go last, in any order.
    let mut events: Vec<(bool, Instant, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        events.push((false, o.start, false, i));
        events.push((o.end.is_none(), o.end.unwrap_or(o.start).max(o.start), true, i));
    }
    events.sort_unstable();
    if events.is_empty() {
        return Verdict::Linearizable;
    }
    // A doubly linked list over the events, with a head sentinel at index `len`.
    const END: usize = usize::MAX;
    let len = events.len();
    let head = len;
    let mut next: Vec<usize> = (1..len).chain([END, 0]).collect();
    let mut prev: Vec<usize> = std::iter::once(head).chain(0..len - 1).chain([head]).collect();
    let ev: Vec<Event> = events.iter().map(|&(_, _, ret, op)| Event { op, call: !ret }).collect();
    let mut ret_of = vec![0usize; n];
    for (i, e) in ev.iter().enumerate() {
        if !e.call {
            ret_of[e.op] = i;
        }
    }
    let lift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, i: usize| {
        for j in [i, ret_of[ev[i].op]] {
            let (p, nx) = (prev[j], next[j]);
            next[p] = nx;
            if nx != END {
                prev[nx] = p;
            }
        }
    };
    let unlift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, i: usize| {
        for j in [ret_of[ev[i].op], i] {
            let (p, nx) = (prev[j], next[j]);
            next[p] = j;
            if nx != END {
                prev[nx] = j;
            }
        }
    };

    let mut state = initial;
    let mut linearized = Bits::new(n);
    let mut cache: HashSet<(Bits, i64)> = HashSet::new();
    let mut calls: Vec<(usize, i64)> = Vec::new();
    // The deepest point reached: how many were linearized and which return stopped it.
    let mut deepest = (0usize, None::<usize>, initial);
    let mut at = next[head];
    while next[head] != END {
        let e = ev[at];
        if e.call {
            let after = match ops[e.op].kind {
                RegKind::Write(v) => Some(v),
                RegKind::Read(v) => (v == state).then_some(state),
            };
            let mut moved = false;
            if let Some(new_state) = after {
                let mut l = linearized.clone();
                l.set(e.op);
                if cache.len() >= SEARCH_STATES_MAX {
                    return Verdict::Undecided;
                }
                if cache.insert((l, new_state)) {
                    calls.push((at, state));
                    state = new_state;
                    linearized.set(e.op);
                    lift(&mut next, &mut prev, at);
                    at = next[head];
                    moved = true;
                }
            }
            if !moved {
                at = next[at];
            }
        } else {
            if calls.len() > deepest.0 || deepest.1.is_none() {
                deepest = (calls.len(), Some(e.op), state);
            }
            let Some((call_at, before)) = calls.pop() else {
                return Verdict::Violated { excerpt: excerpt(ops, deepest, t0) };
            };
            state = before;
            linearized.clear(ev[call_at].op);
            unlift(&mut next, &mut prev, call_at);
            at = next[call_at];
        }
    }
    Verdict::Linearizable
}

/// Narrows writes of unknown outcome, which would otherwise stay open to the end and
/// multiply the search by two each: one whose value no read returned is left out (it may
/// never have taken effect, and nothing depends on it); one that a read returned must
/// take effect before that read ends, so it ends at the earliest such read's end. Both
/// keep every linearization the full history has.
fn bound_unknown_writes<'a>(ops: &[&'a RegOp]) -> Vec<std::borrow::Cow<'a, RegOp>> {
    use std::borrow::Cow;
    use std::collections::HashMap;
    let mut first_seen: HashMap<i64, Instant> = HashMap::new();
    for o in ops {
        if let (RegKind::Read(v), Some(end)) = (o.kind, o.end) {
            first_seen.entry(v).and_modify(|e| *e = (*e).min(end)).or_insert(end);
        }
    }
    ops.iter()
        .filter_map(|o| match (o.kind, o.end) {
            (RegKind::Write(v), None) => {
                first_seen.get(&v).map(|&end| Cow::Owned(RegOp { end: Some(end.max(o.start)), ..(*o).clone() }))
            }
            _ => Some(Cow::Borrowed(*o)),
        })
        .collect()
}

/// The operations overlapping the one whose return the deepest attempt could not pass.
fn excerpt(
    ops: &[std::borrow::Cow<'_, RegOp>],
    (depth, stuck, value): (usize, Option<usize>, i64),
    t0: Instant,
) -> String {
    let ms = |t: Instant| t.saturating_duration_since(t0).as_millis();
    let Some(stuck) = stuck.map(|i| &*ops[i]) else { return String::new() };
    let from = stuck.start.checked_sub(std::time::Duration::from_millis(500)).unwrap_or(stuck.start);
    let until = stuck.end.unwrap_or(stuck.start);
    let mut near: Vec<&RegOp> =
        ops.iter().map(|o| &**o).filter(|o| o.start <= until && o.end.is_none_or(|e| e >= from)).collect();
    near.sort_by_key(|o| o.start);
    let mut out = format!(
        "key {}: {depth} operations linearize, then the register holds {value} and this one cannot: {:?} by client {} via node {} at +{} ms\n",
        stuck.key,
        stuck.kind,
        stuck.client,
        stuck.node,
        ms(stuck.start)
    );
    for o in near.iter().rev().take(EXCERPT_OPS_MAX).rev() {
        let end = o.end.map_or("unknown".to_string(), |e| format!("+{} ms", ms(e)));
        out += &format!("      client {} node {} {:?} +{} ms .. {end}\n", o.client, o.node, o.kind, ms(o.start));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An operation from `a` to `b` ms (`b = None`: unknown outcome).
    fn op(t0: Instant, client: usize, kind: RegKind, a: u64, b: Option<u64>) -> RegOp {
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        RegOp { client, node: 1, key: 1, kind, start: at(a), end: b.map(at) }
    }

    fn verdict(ops: &[RegOp], t0: Instant) -> Verdict {
        check_key(0, &ops.iter().collect::<Vec<_>>(), t0)
    }

    use RegKind::{Read, Write};

    #[test]
    fn sequential_and_overlapping_histories_pass() {
        let t0 = Instant::now();
        // Sequential: w1, r1, w2, r2.
        let seq = [op(t0, 0, Write(1), 0, Some(1)), op(t0, 1, Read(1), 2, Some(3)), op(t0, 0, Write(2), 4, Some(5))];
        assert_eq!(verdict(&seq, t0), Verdict::Linearizable);
        // A read overlapping a write may see either value; two overlapping reads may
        // see old then new, but not new then old once the new one was seen and ended.
        let overlap = [
            op(t0, 0, Write(1), 0, Some(10)),
            op(t0, 1, Read(0), 1, Some(2)),
            op(t0, 2, Read(1), 3, Some(4)),
            op(t0, 1, Read(1), 5, Some(6)),
        ];
        assert_eq!(verdict(&overlap, t0), Verdict::Linearizable);
        // The initial value read before anything was written.
        assert_eq!(verdict(&[op(t0, 1, Read(0), 0, Some(1))], t0), Verdict::Linearizable);
        assert_eq!(verdict(&[], t0), Verdict::Linearizable);
    }

    #[test]
    fn unknown_writes_may_land_late_or_never() {
        let t0 = Instant::now();
        // The unknown write is seen long after its client gave up on it.
        let late = [op(t0, 0, Write(7), 0, None), op(t0, 1, Read(0), 5, Some(6)), op(t0, 1, Read(7), 50, Some(51))];
        assert_eq!(verdict(&late, t0), Verdict::Linearizable);
        // Or never seen: it is linearized after everything.
        let never = [op(t0, 0, Write(7), 0, None), op(t0, 1, Read(0), 50, Some(51))];
        assert_eq!(verdict(&never, t0), Verdict::Linearizable);
    }

    /// Hundreds of writes of unknown outcome, a few of them read: decided, not undecided.
    #[test]
    fn many_unknown_writes_stay_decidable() {
        let t0 = Instant::now();
        let mut ops = Vec::new();
        for i in 0..300u64 {
            ops.push(op(t0, 0, Write(1_000 + i as i64), i * 10, None));
            ops.push(op(t0, 1, Write(i as i64 + 1), i * 10 + 1, Some(i * 10 + 2)));
            let seen = if i % 50 == 0 { 1_000 + i as i64 } else { i as i64 + 1 };
            ops.push(op(t0, 2, Read(seen), i * 10 + 3, Some(i * 10 + 4)));
        }
        assert_eq!(verdict(&ops, t0), Verdict::Linearizable);
    }

    /// A stale read: the value acknowledged before the read started is not what it saw.
    #[test]
    fn a_stale_read_is_a_violation_with_an_excerpt() {
        let t0 = Instant::now();
        let stale = [
            op(t0, 0, Write(1), 0, Some(1)),
            op(t0, 0, Write(2), 2, Some(3)),
            op(t0, 1, Read(2), 4, Some(5)),
            op(t0, 2, Read(1), 6, Some(7)),
        ];
        let Verdict::Violated { excerpt } = verdict(&stale, t0) else { panic!("a stale read passed") };
        assert!(excerpt.contains("Read(1) by client 2"), "{excerpt}");
        assert!(excerpt.contains("client 0 node 1 Write(2) +2 ms .. +3 ms"), "{excerpt}");
    }

    /// A read of a value nobody wrote (a failed write that took effect after all, left
    /// out of the history as failed writes are).
    #[test]
    fn a_read_of_a_value_never_written_is_a_violation() {
        let t0 = Instant::now();
        let phantom = [op(t0, 0, Write(1), 0, Some(1)), op(t0, 1, Read(9), 2, Some(3))];
        assert!(matches!(verdict(&phantom, t0), Verdict::Violated { .. }));
    }

    /// Two sessions each see the other's write first: no single order explains both.
    #[test]
    fn reads_in_two_orders_are_a_violation() {
        let t0 = Instant::now();
        let split = [
            op(t0, 0, Write(1), 0, Some(100)),
            op(t0, 1, Write(2), 0, Some(100)),
            op(t0, 2, Read(1), 10, Some(11)),
            op(t0, 2, Read(2), 12, Some(13)),
            op(t0, 3, Read(2), 14, Some(15)),
            op(t0, 3, Read(1), 16, Some(17)),
        ];
        assert!(matches!(verdict(&split, t0), Verdict::Violated { .. }));
    }

    /// Many concurrent clients over a real register: linearizable by construction, and
    /// the cache keeps the search small.
    #[test]
    fn a_long_concurrent_history_is_decided() {
        let t0 = Instant::now();
        let mut ops = Vec::new();
        let mut value = 0;
        // Four clients in lock step: each round two write and two read, overlapping,
        // and the register changes at the middle of each write.
        for round in 0..2_000u64 {
            let base = round * 10;
            let (w1, w2) = (round as i64 * 2 + 1, round as i64 * 2 + 2);
            ops.push(op(t0, 0, Write(w1), base, Some(base + 4)));
            ops.push(op(t0, 1, Read(value), base, Some(base + 1)));
            ops.push(op(t0, 2, Write(w2), base + 5, Some(base + 9)));
            ops.push(op(t0, 3, Read(w1), base + 3, Some(base + 6)));
            value = w2;
        }
        ops.push(op(t0, 4, Write(-1), 3, None));
        assert_eq!(verdict(&ops, t0), Verdict::Linearizable);
    }
}
