//! Session rules: when a client's backend connection must stay pinned to it, and when it
//! can go back to the pool. Pure: values in, values out.
//!
//! # Pinning
//!
//! After every statement the connection returns to the pool unless the session now
//! holds state that lives only on that connection and cannot be replayed. Each such
//! state is one [`Pin`] reason; the connection is pinned while any reason holds.
//!
//! | reason | set when | cleared when |
//! |---|---|---|
//! | `TRANSACTION` | a response's status has `SERVER_STATUS_IN_TRANS` (BEGIN, `autocommit=0` + a statement, XA) | a response's status lacks it |
//! | `LOCK_TABLES` | `LOCK TABLES`, `FLUSH TABLES … WITH READ LOCK` succeeded | `UNLOCK TABLES` |
//! | `ADVISORY_LOCK` | `GET_LOCK(` was called | end of session (another lock may still be held) |
//! | `TEMP_TABLE` | `CREATE TEMPORARY TABLE` succeeded | end of session |
//! | `USER_VARIABLE` | a statement reads or writes `@var` | end of session |
//! | `OPAQUE_SET` | a `SET` shoal cannot replay (`SET TRANSACTION` for the next transaction, `SET @x`, subquery, …) succeeded (a failed `SET` changes nothing) | end of session |
//! | `SQL_PREPARE` | SQL-level `PREPARE` | end of session |
//! | `FOUND_ROWS` | `SQL_CALC_FOUND_ROWS` | after the next statement (the one reading `FOUND_ROWS()`) |
//! | `CURSOR` | `COM_STMT_EXECUTE` opened a cursor | `COM_STMT_FETCH` sent the last row, `COM_STMT_RESET`/`CLOSE` |
//! | `LONG_DATA` | `COM_STMT_SEND_LONG_DATA` | the next `COM_STMT_EXECUTE` finished |
//! | `SET_OPTION` | `COM_SET_OPTION` changed multi-statements | end of session |
//! | `HANDLER` | `HANDLER … OPEN/READ` | end of session (a handle may stay open) |
//! | `ROUTINE` | `CALL` (a procedure may leave any session state: variables, temporary tables, locks, prepared statements) | end of session |
//! | `SEQUENCE` | `NEXT VALUE FOR`, `NEXTVAL(`, `SETVAL(`, `LASTVAL(` succeeded (`PREVIOUS VALUE FOR` is per connection) | end of session |
//! | `RELAYED_LOGIN` | the server authenticated the client itself (`ed25519`, … accounts): the session's one connection | end of session |
//! | `PREVIOUS_RESULT` | `COM_STMT_PREPARE` of a statement calling `ROW_COUNT()`/`FOUND_ROWS()` (a prepared text cannot be answered by rewriting it) | end of session |
//!
//! Replayable state (schema, `SET NAMES`, `sql_mode`, `time_zone`, `autocommit`, other
//! session variables set to constants, `LAST_INSERT_ID()`) never pins: see [`state`].
//! `COM_RESET_CONNECTION` and `COM_CHANGE_USER` clear every reason. A connection that
//! still has a reason when its session ends is reset (`COM_RESET_CONNECTION`) before it
//! goes back to its pool, and the pool closes one that comes back without that reset.
//!
//! Statement-scoped state needs no pin: warnings and errors keep the connection for the
//! next statement only if it reads them (`frontend::lease::Leases::finish`), and
//! `CONNECTION_ID()`, `ROW_COUNT()` and `FOUND_ROWS()` are answered from the session's
//! own values (`classify::rewrite`).
//!
//! ```text
//!            statement sets a reason
//!   Free ───────────────────────────────▶ Pinned(reasons)
//!    ▲                                        │
//!    └──── last reason cleared / RESET ◀──────┘
//! ```

pub mod limits;
pub mod prepared;
pub mod registry;
pub mod running;
pub mod state;
pub mod xa;

use crate::classify::{Classification, Flags, Kind, SetEffect};
use crate::protocol::StatusFlags;

/// Why a session keeps its backend connection; a bit set, empty = free to multiplex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Pin(pub u16);

impl Pin {
    /// An explicit or implicit transaction is open.
    pub const TRANSACTION: Pin = Pin(1 << 0);
    /// Table locks are held.
    pub const LOCK_TABLES: Pin = Pin(1 << 1);
    /// An advisory lock may be held.
    pub const ADVISORY_LOCK: Pin = Pin(1 << 2);
    /// A temporary table exists.
    pub const TEMP_TABLE: Pin = Pin(1 << 3);
    /// User variables are in use.
    pub const USER_VARIABLE: Pin = Pin(1 << 4);
    /// A SET shoal could not parse into replayable assignments.
    pub const OPAQUE_SET: Pin = Pin(1 << 5);
    /// SQL-level prepared statements exist.
    pub const SQL_PREPARE: Pin = Pin(1 << 6);
    /// `FOUND_ROWS()` must run where `SQL_CALC_FOUND_ROWS` ran.
    pub const FOUND_ROWS: Pin = Pin(1 << 7);
    /// A server-side cursor is open.
    pub const CURSOR: Pin = Pin(1 << 8);
    /// Long data was sent for a statement not executed yet.
    pub const LONG_DATA: Pin = Pin(1 << 9);
    /// `COM_SET_OPTION` changed the connection.
    pub const SET_OPTION: Pin = Pin(1 << 10);
    /// A `HANDLER` table handle may be open.
    pub const HANDLER: Pin = Pin(1 << 11);
    /// A stored procedure ran: it may have left any session state.
    pub const ROUTINE: Pin = Pin(1 << 12);
    /// A sequence was used: `PREVIOUS VALUE FOR` lives on the connection.
    pub const SEQUENCE: Pin = Pin(1 << 13);
    /// A prepared statement reads the previous statement's results.
    pub const PREVIOUS_RESULT: Pin = Pin(1 << 14);
    /// The login was relayed to the server: this connection is the only one there is.
    pub const RELAYED_LOGIN: Pin = Pin(1 << 15);

    /// Names of the reasons, for logs and metrics labels.
    pub const NAMES: [(Pin, &'static str); 16] = [
        (Pin::TRANSACTION, "transaction"),
        (Pin::LOCK_TABLES, "lock_tables"),
        (Pin::ADVISORY_LOCK, "advisory_lock"),
        (Pin::TEMP_TABLE, "temp_table"),
        (Pin::USER_VARIABLE, "user_variable"),
        (Pin::OPAQUE_SET, "opaque_set"),
        (Pin::SQL_PREPARE, "sql_prepare"),
        (Pin::FOUND_ROWS, "found_rows"),
        (Pin::CURSOR, "cursor"),
        (Pin::LONG_DATA, "long_data"),
        (Pin::SET_OPTION, "set_option"),
        (Pin::HANDLER, "handler"),
        (Pin::ROUTINE, "routine"),
        (Pin::SEQUENCE, "sequence"),
        (Pin::PREVIOUS_RESULT, "previous_result"),
        (Pin::RELAYED_LOGIN, "relayed_login"),
    ];

    /// No reason holds.
    pub const fn is_free(self) -> bool {
        self.0 == 0
    }
    /// Whether `r` holds.
    pub const fn has(self, r: Pin) -> bool {
        self.0 & r.0 != 0
    }
    /// Adds `r`.
    pub fn add(&mut self, r: Pin) {
        self.0 |= r.0;
    }
    /// Removes `r`.
    pub fn remove(&mut self, r: Pin) {
        self.0 &= !r.0;
    }
}

/// What a finished COM_QUERY tells the pinning rules.
#[derive(Debug, Clone, Copy)]
pub struct QueryOutcome<'a> {
    /// The statement's classification.
    pub class: Classification,
    /// For `SET`s, what it did.
    pub set: Option<&'a SetEffect>,
    /// Status flags of the last OK/EOF (none when the server only sent an ERR).
    pub status: Option<u16>,
    /// Whether the response ended with an error.
    pub failed: bool,
}

/// What decides whether a statement may run on a pipe (`backend::pipeline`).
#[derive(Debug, Clone, Copy)]
pub struct PipeView {
    /// Pipelining is on (`[limits] pipes_per_pool` > 0).
    pub enabled: bool,
    /// The session holds a backend connection (a pin, or a statement in progress).
    pub leased: bool,
    /// The server reported autocommit on.
    pub autocommit: bool,
    /// The session has replayable variables (`SET NAMES`, `sql_mode`, …): pipe
    /// connections carry none.
    pub has_vars: bool,
}

/// Whether a statement may run pipelined on a connection shared with other sessions.
/// Pipe connections carry only the session's schema, so only statements that neither
/// read nor leave connection state qualify:
///
/// | condition | pipelined |
/// |---|---|
/// | pipelining off | no |
/// | session holds a connection (pinned: transaction, locks, temp tables, …) | no |
/// | autocommit off | no (the read would open a transaction) |
/// | session has replayable variables | no (the pipe connection does not have them) |
/// | kind is not `Read` (writes, SHOW, SET, CALL, …) | no |
/// | any flag but `NON_DETERMINISTIC` (locking read, INTO, user variable, LAST_INSERT_ID, FOUND_ROWS, sequence, lock functions, hint, multi-statement, HANDLER, temp tables) | no |
/// | otherwise (a plain autocommit `SELECT`) | yes |
///
/// The route is decided as for any read; reads that must first wait for a replica to
/// catch up (read-your-writes) take a leased connection.
pub fn pipelinable(c: &Classification, v: PipeView) -> bool {
    v.enabled
        && !v.leased
        && v.autocommit
        && !v.has_vars
        && c.kind == Kind::Read
        && c.flags.0 & !Flags::NON_DETERMINISTIC.0 == 0
}

/// The pin reasons after a COM_QUERY: the rules table above, for text queries.
pub fn pins_after_query(before: Pin, q: &QueryOutcome<'_>) -> Pin {
    let mut pin = before;
    // The statement that read FOUND_ROWS() has run: that pin has done its job.
    pin.remove(Pin::FOUND_ROWS);
    apply_status(&mut pin, q.status);
    let f = q.class.flags;
    if f.contains(Flags::USER_VARIABLE) {
        pin.add(Pin::USER_VARIABLE);
    }
    if f.contains(Flags::GET_LOCK) {
        pin.add(Pin::ADVISORY_LOCK);
    }
    if f.contains(Flags::HANDLER) {
        pin.add(Pin::HANDLER);
    }
    if f.contains(Flags::CALC_FOUND_ROWS) && !q.failed {
        pin.add(Pin::FOUND_ROWS);
    }
    if f.contains(Flags::CREATE_TEMP_TABLE) && !q.failed {
        pin.add(Pin::TEMP_TABLE);
    }
    if f.contains(Flags::SEQUENCE) && !q.failed {
        pin.add(Pin::SEQUENCE);
    }
    match q.class.kind {
        Kind::LockTables if !q.failed => pin.add(Pin::LOCK_TABLES),
        Kind::UnlockTables if !q.failed => pin.remove(Pin::LOCK_TABLES),
        Kind::Prepare => pin.add(Pin::SQL_PREPARE),
        Kind::Call => pin.add(Pin::ROUTINE),
        Kind::SessionSet if matches!(q.set, Some(SetEffect::Opaque)) && !q.failed => pin.add(Pin::OPAQUE_SET),
        _ => {}
    }
    // A multi-statement text may hide any of the above behind its first statement.
    if f.contains(Flags::MULTI_STATEMENT) && f.contains(Flags::MULTI_HAS_WRITE) {
        pin.add(Pin::OPAQUE_SET);
    }
    pin
}

/// The status to judge pins by. An ERR carries no status flags, yet with autocommit off a
/// failed statement may have opened a transaction (a failed `INSERT` holds the table's
/// metadata lock): then one is assumed open until the next OK or EOF says otherwise.
///
/// | response status | last known status | judged as |
/// |---|---|---|
/// | `Some(s)` | any | `Some(s)` |
/// | `None` (ERR only) | autocommit on | `None`: pins unchanged |
/// | `None` (ERR only) | autocommit off | `Some(last \| IN_TRANS)` |
pub fn effective_status(response: Option<u16>, last: u16) -> Option<u16> {
    let autocommit = StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits();
    match response {
        Some(s) => Some(s),
        None if last & autocommit == 0 => Some(last | StatusFlags::SERVER_STATUS_IN_TRANS.bits()),
        None => None,
    }
}

/// Transaction pinning follows the server's own status flag.
pub fn apply_status(pin: &mut Pin, status: Option<u16>) {
    if let Some(s) = status {
        if s & StatusFlags::SERVER_STATUS_IN_TRANS.bits() != 0 {
            pin.add(Pin::TRANSACTION);
        } else {
            pin.remove(Pin::TRANSACTION);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_with_autocommit_off_assumes_a_transaction() {
        use super::effective_status;
        use crate::protocol::StatusFlags;
        let ac = StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits();
        let tx = StatusFlags::SERVER_STATUS_IN_TRANS.bits();
        assert_eq!(effective_status(Some(ac), 0), Some(ac));
        assert_eq!(effective_status(None, ac), None);
        assert_eq!(effective_status(None, 0), Some(tx));
        assert_eq!(effective_status(Some(0), tx), Some(0), "an OK ends the assumption");
    }

    #[test]
    fn pipelinable_rows() {
        use super::{pipelinable, PipeView};
        use crate::classify::classify;
        let free = PipeView { enabled: true, leased: false, autocommit: true, has_vars: false };
        let read = classify(b"SELECT c FROM sbtest1 WHERE id = 7");
        assert!(pipelinable(&read, free));
        assert!(pipelinable(&classify(b"SELECT NOW(), RAND()"), free), "non-deterministic reads qualify");
        assert!(!pipelinable(&read, PipeView { enabled: false, ..free }), "off");
        assert!(!pipelinable(&read, PipeView { leased: true, ..free }), "pinned");
        assert!(!pipelinable(&read, PipeView { autocommit: false, ..free }), "autocommit off");
        assert!(!pipelinable(&read, PipeView { has_vars: true, ..free }), "session variables");
        for sql in [
            "INSERT INTO t VALUES (1)",
            "SHOW TABLES",
            "SET NAMES latin1",
            "CALL p()",
            "BEGIN",
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t LOCK IN SHARE MODE",
            "SELECT a INTO @x FROM t",
            "SELECT @x",
            "SELECT LAST_INSERT_ID()",
            "SELECT SQL_CALC_FOUND_ROWS * FROM t",
            "SELECT FOUND_ROWS()",
            "SELECT GET_LOCK('a', 1)",
            "SELECT NEXTVAL(s)",
            "SELECT 1; SELECT 2",
            "/* shoal:leader */ SELECT 1",
            "HANDLER t READ FIRST",
        ] {
            assert!(!pipelinable(&classify(sql.as_bytes()), free), "{sql}");
        }
    }

    use super::*;

    const IN_TRANS: u16 = 0x0001;
    const AUTOCOMMIT: u16 = 0x0002;

    fn q(kind: Kind, flags: Flags, status: Option<u16>) -> QueryOutcome<'static> {
        QueryOutcome { class: Classification { kind, flags }, set: None, status, failed: false }
    }

    #[test]
    fn transaction_follows_status() {
        let p = pins_after_query(Pin::default(), &q(Kind::TxnBegin, Flags::default(), Some(IN_TRANS)));
        assert!(p.has(Pin::TRANSACTION));
        // An error carries no status: the transaction is still open.
        let p = pins_after_query(p, &QueryOutcome { failed: true, ..q(Kind::Write, Flags::default(), None) });
        assert!(p.has(Pin::TRANSACTION));
        let p = pins_after_query(p, &q(Kind::TxnCommit, Flags::default(), Some(AUTOCOMMIT)));
        assert!(p.is_free());
    }

    #[test]
    fn lock_tables_until_unlock() {
        let p = pins_after_query(Pin::default(), &q(Kind::LockTables, Flags::default(), Some(AUTOCOMMIT)));
        assert!(p.has(Pin::LOCK_TABLES));
        let p = pins_after_query(p, &q(Kind::Read, Flags::default(), Some(AUTOCOMMIT)));
        assert!(p.has(Pin::LOCK_TABLES));
        let p = pins_after_query(p, &q(Kind::UnlockTables, Flags::default(), Some(AUTOCOMMIT)));
        assert!(p.is_free());
    }

    #[test]
    fn session_lifetime_reasons() {
        for (flag, reason) in [
            (Flags::USER_VARIABLE, Pin::USER_VARIABLE),
            (Flags::GET_LOCK, Pin::ADVISORY_LOCK),
            (Flags::CREATE_TEMP_TABLE, Pin::TEMP_TABLE),
            (Flags::HANDLER, Pin::HANDLER),
        ] {
            let p = pins_after_query(Pin::default(), &q(Kind::Read, flag, Some(AUTOCOMMIT)));
            assert!(p.has(reason));
            let p = pins_after_query(p, &q(Kind::Read, Flags::default(), Some(AUTOCOMMIT)));
            assert!(p.has(reason), "{reason:?} must last the session");
        }
        let p = pins_after_query(Pin::default(), &q(Kind::Prepare, Flags::default(), Some(AUTOCOMMIT)));
        assert!(p.has(Pin::SQL_PREPARE));
        // A procedure may leave anything behind, even when it failed halfway.
        let failed_call = QueryOutcome { failed: true, ..q(Kind::Call, Flags::default(), None) };
        assert!(pins_after_query(Pin::default(), &failed_call).has(Pin::ROUTINE));
        let p = pins_after_query(Pin::default(), &q(Kind::Read, Flags::SEQUENCE, Some(AUTOCOMMIT)));
        assert!(p.has(Pin::SEQUENCE));
    }

    #[test]
    fn found_rows_lasts_one_statement() {
        let p = pins_after_query(Pin::default(), &q(Kind::Read, Flags::CALC_FOUND_ROWS, Some(AUTOCOMMIT)));
        assert!(p.has(Pin::FOUND_ROWS));
        let p = pins_after_query(p, &q(Kind::Read, Flags::FOUND_ROWS, Some(AUTOCOMMIT)));
        assert!(p.is_free());
    }

    #[test]
    fn opaque_set_pins_replayable_set_does_not() {
        let opaque = SetEffect::Opaque;
        let mut o = q(Kind::SessionSet, Flags::default(), Some(AUTOCOMMIT));
        o.set = Some(&opaque);
        assert!(pins_after_query(Pin::default(), &o).has(Pin::OPAQUE_SET));
        let replayable = SetEffect::Session(vec![]);
        o.set = Some(&replayable);
        assert!(pins_after_query(Pin::default(), &o).is_free());
    }

    #[test]
    fn failed_create_temp_does_not_pin() {
        let mut o = q(Kind::Ddl, Flags::CREATE_TEMP_TABLE, None);
        o.failed = true;
        assert!(pins_after_query(Pin::default(), &o).is_free());
    }
}
