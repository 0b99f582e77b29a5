//! One test per row of the policy table in the module doc.

use super::*;

fn server(id: usize, role: Role, health: Health, lag_ms: Option<u64>, gtid: &str) -> Server {
    Server { health, lag_ms, gtid: GtidPos::parse(gtid), ..Server::new(id, &format!("10.0.0.{id}:3306"), role) }
}

fn table() -> RoutingTable {
    RoutingTable {
        servers: vec![
            server(0, Role::Leader, Health::Up, Some(0), "0-1-100"),
            server(1, Role::Follower, Health::Up, Some(0), "0-1-100"),
            server(2, Role::Follower, Health::Up, Some(0), "0-1-90"),
        ],
        version: 1,
    }
}

const POLICY: Policy = Policy { consistency: Consistency::Session, max_lag_ms: 1000 };

fn c(kind: Kind, flags: Flags) -> Classification {
    Classification { kind, flags }
}

fn read() -> Classification {
    c(Kind::Read, Flags::default())
}

#[test]
fn row1_pinned_session_stays() {
    let s = SessionView { pinned_to: Some(2), ..Default::default() };
    assert_eq!(route(&c(Kind::Write, Flags::default()), &s, &table(), &POLICY), Target::Server(2));
}

#[test]
fn row2_leader_hint() {
    assert_eq!(
        route(&c(Kind::Read, Flags::HINT_LEADER), &SessionView::default(), &table(), &POLICY),
        Target::Server(0)
    );
}

#[test]
fn row3_state_creating_reads_go_to_primary() {
    for f in [
        Flags::USER_VARIABLE,
        Flags::GET_LOCK,
        Flags::CALC_FOUND_ROWS,
        Flags::FOUND_ROWS,
        Flags::SEQUENCE,
        Flags::HANDLER,
    ] {
        assert_eq!(route(&c(Kind::Read, f), &SessionView::default(), &table(), &POLICY), Target::Server(0), "{f:?}");
    }
    for k in [Kind::LockTables, Kind::Prepare, Kind::Execute] {
        assert_eq!(route(&c(k, Flags::default()), &SessionView::default(), &table(), &POLICY), Target::Server(0));
    }
}

#[test]
fn row4_autocommit_off_goes_to_primary() {
    let s = SessionView { autocommit_off: true, ..Default::default() };
    assert_eq!(route(&read(), &s, &table(), &POLICY), Target::Server(0));
}

#[test]
fn row5_strong_reads_go_to_primary() {
    let p = Policy { consistency: Consistency::Strong, ..POLICY };
    assert_eq!(route(&read(), &SessionView::default(), &table(), &p), Target::Server(0));
}

#[test]
fn row6_read_your_writes() {
    let wrote = GtidPos::parse("0-1-95");
    let s = SessionView { last_write: Some(&wrote), ..Default::default() };
    let t = table();
    // Replica 1 has applied 0-1-95, replica 2 (at 90) has not: only 1 qualifies even
    // when it is busier.
    t.servers[1].in_flight.store(10, Ordering::Relaxed);
    assert_eq!(route(&read(), &s, &t, &POLICY), Target::Server(1));
    // Nobody known to have it: wait on a fresh replica.
    let wrote = GtidPos::parse("0-1-150");
    let s = SessionView { last_write: Some(&wrote), ..Default::default() };
    assert!(matches!(route(&read(), &s, &t, &POLICY), Target::WaitThenServer(1 | 2)));
    // Eventual consistency ignores the session's write.
    let p = Policy { consistency: Consistency::Eventual, ..POLICY };
    assert_eq!(route(&read(), &s, &t, &p), Target::Server(2));
}

#[test]
fn row7_reads_least_loaded_fresh_replica() {
    let t = table();
    t.servers[1].in_flight.store(3, Ordering::Relaxed);
    assert_eq!(route(&read(), &SessionView::default(), &t, &POLICY), Target::Server(2));
    assert_eq!(route(&c(Kind::Show, Flags::default()), &SessionView::default(), &t, &POLICY), Target::Server(2));
    assert_eq!(
        route(&c(Kind::TxnBeginReadOnly, Flags::default()), &SessionView::default(), &t, &POLICY),
        Target::Server(2)
    );
    // Lagging, down or replication-stopped replicas get no reads.
    let mut t = table();
    t.servers[1].lag_ms = Some(5000);
    t.servers[2].health = Health::Down;
    assert_eq!(route(&read(), &SessionView::default(), &t, &POLICY), Target::Server(0));
    t.servers[1].lag_ms = None;
    assert_eq!(route(&read(), &SessionView::default(), &t, &POLICY), Target::Server(0));
}

#[test]
fn row8_neutral_statements_survive_primary_down() {
    let mut t = table();
    t.servers[0].health = Health::Down;
    for k in [Kind::SessionSet, Kind::Use, Kind::TxnCommit, Kind::TxnRollback] {
        assert!(matches!(route(&c(k, Flags::default()), &SessionView::default(), &t, &POLICY), Target::Server(1 | 2)));
    }
    assert_eq!(
        route(&c(Kind::SessionSet, Flags::default()), &SessionView::default(), &table(), &POLICY),
        Target::Server(0)
    );
}

#[test]
fn row9_writes_and_unknown_go_to_primary() {
    for (k, f) in [
        (Kind::Write, Flags::default()),
        (Kind::LockingRead, Flags::FOR_UPDATE),
        (Kind::Read, Flags::FOR_UPDATE),
        (Kind::Read, Flags::INTO),
        (Kind::Read, Flags(Flags::MULTI_STATEMENT.0 | Flags::MULTI_HAS_WRITE.0)),
        (Kind::Ddl, Flags::default()),
        (Kind::Call, Flags::default()),
        (Kind::LoadData, Flags::default()),
        (Kind::Unknown, Flags::default()),
        (Kind::TxnBegin, Flags::default()),
    ] {
        assert_eq!(route(&c(k, f), &SessionView::default(), &table(), &POLICY), Target::Server(0), "{k:?} {f:?}");
    }
}

#[test]
fn primary_down_fails_writes_clearly_and_keeps_reads() {
    let mut t = table();
    t.servers[0].health = Health::Down;
    t.servers[0].last_error = Some("connection refused".into());
    match route(&c(Kind::Write, Flags::default()), &SessionView::default(), &t, &POLICY) {
        Target::Unavailable(msg) => {
            assert!(msg.contains("10.0.0.0:3306") && msg.contains("connection refused"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    // Reads: even a lagging replica beats an error.
    t.servers[1].lag_ms = Some(60_000);
    t.servers[2].health = Health::Down;
    assert_eq!(route(&read(), &SessionView::default(), &t, &POLICY), Target::Server(1));
    // A session that wrote waits for its write on that replica (then needs the primary).
    let gtid = GtidPos::parse("0-1-100");
    let wrote = SessionView { last_write: Some(&gtid), ..SessionView::default() };
    assert_eq!(route(&read(), &wrote, &t, &POLICY), Target::WaitThenServer(1));
    t.servers[1].health = Health::Down;
    assert!(matches!(route(&read(), &SessionView::default(), &t, &POLICY), Target::Unavailable(_)));
}

#[test]
fn gtid_positions() {
    let p = GtidPos::parse("0-1-100, 1-2-7");
    assert!(p.covers(&GtidPos::parse("0-3-100")));
    assert!(p.covers(&GtidPos::parse("1-2-5,0-1-1")));
    assert!(!p.covers(&GtidPos::parse("0-1-101")));
    assert!(!p.covers(&GtidPos::parse("2-1-1")));
    assert!(p.covers(&GtidPos::default()));
    assert_eq!(GtidPos::parse("garbage,0-1-x,3-1-4").0, vec![(3, 4)]);
}

#[test]
fn roles_not_positions_decide() {
    // The leader sits last: writes follow the role, reads avoid it.
    let mut t = table();
    t.servers[0].role = Role::Follower;
    t.servers[2].role = Role::Leader;
    let s = SessionView::default();
    assert_eq!(route(&c(Kind::Write, Flags::default()), &s, &t, &POLICY), Target::Server(2));
    assert_eq!(route(&c(Kind::Read, Flags::HINT_LEADER), &s, &t, &POLICY), Target::Server(2));
    assert!(matches!(route(&read(), &s, &t, &POLICY), Target::Server(0 | 1)));
    assert_eq!(t.leader().map(|l| l.id), Some(2));
    // A proxy-only node takes nothing, not even reads.
    t.servers[0].role = Role::Proxy;
    t.servers[1].role = Role::Proxy;
    assert_eq!(route(&read(), &s, &t, &POLICY), Target::Server(2));
}

/// A cluster follower's table: its own MariaDB (applies the log) and the leader's proxy.
fn cluster_table() -> RoutingTable {
    let local = Server { follows_log: true, ..server(0, Role::Follower, Health::Up, Some(0), "") };
    let leader = Server { shoal: true, ..server(1, Role::Leader, Health::Up, Some(0), "") };
    RoutingTable { servers: vec![local, leader], version: 1 }
}

#[test]
fn row_6a_a_session_write_lsn_waits_on_the_local_node() {
    let t = cluster_table();
    let read = read();
    let wrote = SessionView { last_lsn: Some(42), ..SessionView::default() };
    assert_eq!(route(&read, &wrote, &t, &POLICY), Target::WaitThenServer(0));
    // No write yet: an ordinary read on the local node.
    assert_eq!(route(&read, &SessionView::default(), &t, &POLICY), Target::Server(0));
    // Writes go to the leader's proxy.
    assert_eq!(route(&c(Kind::Write, Flags::default()), &wrote, &t, &POLICY), Target::Server(1));
}

/// Found by the chaos harness: a follower that lost its leader (a candidate: no leader
/// known, its own lag unknown) read a session's row before its write had arrived.
#[test]
fn row_6a_without_a_leader_a_session_write_still_waits_on_the_local_node() {
    let mut t = cluster_table();
    t.servers[0].lag_ms = None;
    t.servers[1].role = Role::Proxy;
    let wrote = SessionView { last_lsn: Some(42), ..SessionView::default() };
    assert_eq!(route(&read(), &wrote, &t, &POLICY), Target::WaitThenServer(0));
    let global = Policy { consistency: Consistency::Global, ..POLICY };
    assert_eq!(route(&read(), &SessionView::default(), &t, &global), Target::WaitThenServer(0));
    // A session that never wrote reads there at once.
    assert_eq!(route(&read(), &SessionView::default(), &t, &POLICY), Target::Server(0));
}

/// Found by the chaos harness: a leader just elected had not applied a write the old
/// leader acknowledged, and served the writer's next read.
#[test]
fn row_6a_a_leader_that_applies_the_log_waits_too() {
    let local = Server { follows_log: true, ..server(0, Role::Leader, Health::Up, Some(0), "") };
    let t = RoutingTable { servers: vec![local], version: 1 };
    let wrote = SessionView { last_lsn: Some(42), ..SessionView::default() };
    assert_eq!(route(&read(), &wrote, &t, &POLICY), Target::WaitThenServer(0));
    let global = Policy { consistency: Consistency::Global, ..POLICY };
    assert_eq!(route(&read(), &SessionView::default(), &t, &global), Target::WaitThenServer(0));
    assert_eq!(route(&read(), &SessionView::default(), &t, &POLICY), Target::Server(0));
}

#[test]
fn row_6a_global_reads_wait_for_the_leaders_commit_point() {
    let t = cluster_table();
    let global = Policy { consistency: Consistency::Global, ..POLICY };
    assert_eq!(route(&read(), &SessionView::default(), &t, &global), Target::WaitThenServer(0));
    // Without a server that applies the log (standalone proxy): the leader.
    assert_eq!(route(&read(), &SessionView::default(), &table(), &global), Target::Server(0));
    // A local node that is down: the leader.
    let mut down = cluster_table();
    down.servers[0].health = Health::Down;
    assert_eq!(route(&read(), &SessionView::default(), &down, &global), Target::Server(1));
}

/// `shoal proxy --cluster`: every server is a node's proxy.
fn over_cluster_table() -> RoutingTable {
    let node = |id, role| Server { shoal: true, ..server(id, role, Health::Up, Some(0), "") };
    RoutingTable { servers: vec![node(0, Role::Leader), node(1, Role::Follower), node(2, Role::Follower)], version: 1 }
}

#[test]
fn row_6b_a_session_write_lsn_reads_on_a_follower_node_that_waits_itself() {
    let t = over_cluster_table();
    let wrote = SessionView { last_lsn: Some(42), ..SessionView::default() };
    assert!(matches!(route(&read(), &wrote, &t, &POLICY), Target::Server(1 | 2)));
    // Global reads go to the leader in this mode.
    let global = Policy { consistency: Consistency::Global, ..POLICY };
    assert_eq!(route(&read(), &wrote, &t, &global), Target::Server(0));
    assert_eq!(route(&read(), &SessionView::default(), &t, &global), Target::Server(0));
    // No fresh follower node: the leader.
    let mut t = t;
    t.servers[1].health = Health::Down;
    t.servers[2].lag_ms = None;
    assert_eq!(route(&read(), &wrote, &t, &POLICY), Target::Server(0));
}
