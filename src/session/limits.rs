//! Per-account limits (`[limits]`, `[limits.user.NAME]`): sessions per account, statement
//! time, idle time inside a transaction. The decisions are pure functions with their table;
//! [`UserConnections`] is the one shared count they need.
//!
//! | limit | enforced by | client sees |
//! |---|---|---|
//! | `user_connections_max` | [`UserConnections::take`] after authentication, as MariaDB checks `max_user_connections` | 1203 ER_TOO_MANY_USER_CONNECTIONS, then the close |
//! | `statement_time_max_ms` | MariaDB itself: `max_statement_time` is part of the session's replayed state ([`statement_time_assignment`]); [`statement_time_guard`] keeps a client from lifting it | 1969 ER_STATEMENT_TIMEOUT from the server |
//! | `transaction_idle_timeout_s` | the idle sweep of `registry`, with the limit [`idle_limit_s`] gives | the close, as MariaDB's `idle_transaction_timeout` |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::classify::{Classification, Flags, Kind, SetEffect, TokenKind, Tokenizer};

/// The system variable MariaDB interrupts long statements with.
pub const STATEMENT_TIME_VAR: &str = "max_statement_time";

/// Whether an account holding `open` sessions may open one more under `max`.
///
/// | `max` | `open` | admitted |
/// |---|---|---|
/// | 0 (no limit) | any | yes |
/// | n > 0 | < n | yes |
/// | n > 0 | ≥ n | no: 1203 |
pub fn admits(open: u32, max: u32) -> bool {
    max == 0 || open < max
}

/// Open sessions by account, shared by every configuration generation (a reload keeps
/// the counts of the sessions still open). Counted for every account, limited or not, so
/// a limit added by a reload sees the sessions already there.
#[derive(Debug, Default)]
pub struct UserConnections {
    open: Mutex<HashMap<String, u32>>,
}

impl UserConnections {
    /// One more session for `user` if [`admits`] says so; the slot is given back when the
    /// returned guard drops (however the session ends).
    pub fn take(self: &Arc<Self>, user: &str, max: u32) -> Option<UserSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(user.to_string()).or_insert(0);
        if !admits(*n, max) {
            if *n == 0 {
                open.remove(user);
            }
            return None;
        }
        *n += 1;
        Some(UserSlot { counts: self.clone(), user: user.to_string() })
    }

    /// Sessions `user` holds now.
    pub fn open(&self, user: &str) -> u32 {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).get(user).copied().unwrap_or(0)
    }
}

/// One session's place in its account's count.
#[derive(Debug)]
pub struct UserSlot {
    /// The count it is part of.
    counts: Arc<UserConnections>,
    /// The account it counts for.
    user: String,
}

impl UserSlot {
    /// The account this slot counts for.
    pub fn user(&self) -> &str {
        &self.user
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// MariaDB's message for error 1203.
pub fn too_many_user_connections(user: &str) -> String {
    format!("User {user} already has more than 'max_user_connections' active connections")
}

/// The replayable assignment that sets a limit of `ms` milliseconds (`None`: no limit,
/// the variable is left to the server's default). MariaDB takes seconds with microsecond
/// precision.
pub fn statement_time_assignment(ms: u64) -> Option<String> {
    (ms > 0).then(|| format!("{STATEMENT_TIME_VAR} = {}.{:03}", ms / 1000, ms % 1000))
}

/// What to do with a client statement of a session whose statements are limited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// Run it.
    Run,
    /// Refuse it with this message (error 1227): it could lift the limit.
    Refuse(String),
}

/// Whether statement `sql` may run under a statement time limit of `limit_ms` (> 0).
/// `set` is its `SET` effect when it is a `SET`.
///
/// | statement | decision |
/// |---|---|
/// | text does not mention `max_statement_time` | run |
/// | a single read or `SHOW` (`SELECT @@max_statement_time`), not `SET STATEMENT … FOR` | run |
/// | `SET [SESSION] max_statement_time = v` with a constant 0 < v ≤ the limit (a lower limit, as MariaDB lets any user set) | run |
/// | `SET GLOBAL …` (the session's value is replayed; the server checks the privilege) | run |
/// | `SET … = 0`, above the limit, `DEFAULT`, computed, `SET STATEMENT … FOR`, `PREPARE`, `EXECUTE IMMEDIATE`, several statements, anything else | refuse |
pub fn statement_time_guard(limit_ms: u64, sql: &[u8], class: &Classification, set: Option<&SetEffect>) -> Guard {
    if !mentions_statement_time(sql) {
        return Guard::Run;
    }
    let single = !class.flags.contains(Flags::MULTI_STATEMENT);
    let first_is_set = Tokenizer::new(sql).find(|t| t.kind != TokenKind::Hint).is_some_and(|t| t.is_word(b"SET"));
    if single && !first_is_set && matches!(class.kind, Kind::Read | Kind::Show) {
        return Guard::Run;
    }
    let refuse = |what: &str| {
        Guard::Refuse(format!(
            "shoal limits this account's statements to {limit_ms} ms ([limits] statement_time_max_ms): {what}; \
             a session may only lower it, with SET max_statement_time = seconds (0 < seconds <= {})",
            limit_ms as f64 / 1000.0
        ))
    };
    match set {
        Some(SetEffect::Global) if single => Guard::Run,
        Some(SetEffect::Session(items)) if single => {
            for a in items.iter().filter(|a| a.name == STATEMENT_TIME_VAR) {
                let value = a.text.split_once('=').and_then(|(_, v)| v.trim().parse::<f64>().ok());
                match value {
                    Some(s) if !a.computed && s > 0.0 && s * 1000.0 <= limit_ms as f64 => {}
                    _ => return refuse("this statement would lift or replace it"),
                }
            }
            Guard::Run
        }
        _ => refuse("this statement mentions max_statement_time"),
    }
}

/// Whether `sql` mentions `max_statement_time` anywhere (a string literal included: a
/// `PREPARE … FROM '…'` could set it).
pub fn mentions_statement_time(sql: &[u8]) -> bool {
    let needle = STATEMENT_TIME_VAR.as_bytes();
    sql.len() >= needle.len() && sql.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

/// Whether a statement of `kind` may have changed session variables out of shoal's sight
/// (a routine or dynamic SQL), so a limited session's `max_statement_time` is set on its
/// connection again before the next statement.
///
/// | kind | may hide a `SET` |
/// |---|---|
/// | `CALL`, SQL `EXECUTE` (`EXECUTE IMMEDIATE` too) | yes |
/// | anything else | no |
pub fn may_hide_set(kind: Kind) -> bool {
    matches!(kind, Kind::Call | Kind::Execute)
}

/// Why the idle sweep would end a session now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleCause {
    /// `wait_timeout` (`client_wait_timeout_s`, `client_interactive_timeout_s`, or the
    /// session's own `SET wait_timeout`).
    Wait,
    /// `transaction_idle_timeout_s`: idle with a transaction open.
    Transaction,
}

/// How long a session may stay idle, and what ends it past that, as MariaDB's
/// `THD::get_net_wait_timeout`: inside a transaction the transaction limit replaces
/// `wait_timeout` (longer or shorter).
///
/// | in a transaction | `transaction_idle_timeout_s` | limit |
/// |---|---|---|
/// | no | any | `wait_s`, `Wait` |
/// | yes | 0 (off) | `wait_s`, `Wait` |
/// | yes | t > 0 | t, `Transaction` |
pub fn idle_limit_s(wait_s: u64, transaction_s: u64, in_transaction: bool) -> (u64, IdleCause) {
    match (in_transaction, transaction_s) {
        (true, t) if t > 0 => (t, IdleCause::Transaction),
        _ => (wait_s, IdleCause::Wait),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{classify, parse_set};

    #[test]
    fn admits_table() {
        for (open, max, want) in [(0, 0, true), (99, 0, true), (0, 1, true), (1, 1, false), (2, 3, true), (3, 3, false)]
        {
            assert_eq!(admits(open, max), want, "open {open} max {max}");
        }
    }

    #[test]
    fn slots_count_and_free_on_drop() {
        let counts = Arc::new(UserConnections::default());
        let a = counts.take("app", 2).unwrap();
        let b = counts.take("app", 2).unwrap();
        assert!(counts.take("app", 2).is_none());
        assert_eq!(counts.open("app"), 2);
        // Another account is not affected, and unlimited accounts are counted too.
        let other = counts.take("other", 0).unwrap();
        assert_eq!(counts.open("other"), 1);
        drop(a);
        let c = counts.take("app", 2).unwrap();
        drop((b, c, other));
        assert_eq!(counts.open("app"), 0);
        assert!(counts.open.lock().unwrap().is_empty());
        // A refused login leaves no entry behind.
        assert!(counts.take("none", 0).is_some());
        assert!(counts.open.lock().unwrap().is_empty());
    }

    #[test]
    fn statement_time_assignment_is_in_seconds() {
        assert_eq!(statement_time_assignment(0), None);
        assert_eq!(statement_time_assignment(500).as_deref(), Some("max_statement_time = 0.500"));
        assert_eq!(statement_time_assignment(30_250).as_deref(), Some("max_statement_time = 30.250"));
    }

    #[test]
    fn guard_table() {
        let run = |sql: &str| {
            let class = classify(sql.as_bytes());
            let set = (class.kind == Kind::SessionSet).then(|| parse_set(sql.as_bytes()));
            statement_time_guard(500, sql.as_bytes(), &class, set.as_ref()) == Guard::Run
        };
        for (sql, want) in [
            ("SELECT 1", true),
            ("UPDATE t SET v = 1", true),
            ("SELECT @@max_statement_time", true),
            ("SHOW VARIABLES LIKE 'max_statement_time'", true),
            ("SET max_statement_time = 0.1", true),
            ("SET SESSION MAX_STATEMENT_TIME = 0.5", true),
            ("SET @@session.max_statement_time = 0.25, sql_mode = 'ANSI'", true),
            ("SET GLOBAL max_statement_time = 0", true),
            ("SET max_statement_time = 0", false),
            ("SET max_statement_time = 0.6", false),
            ("SET max_statement_time = DEFAULT", false),
            ("SET max_statement_time = @@global.max_statement_time", false),
            ("SET max_statement_time = @x", false),
            ("SET STATEMENT max_statement_time = 0 FOR SELECT SLEEP(5)", false),
            ("PREPARE s FROM 'SET max_statement_time = 0'", false),
            ("EXECUTE IMMEDIATE 'SET max_statement_time = 0'", false),
            ("SELECT 1; SET max_statement_time = 0", false),
        ] {
            assert_eq!(run(sql), want, "{sql}");
        }
    }

    #[test]
    fn hidden_sets_table() {
        assert!(may_hide_set(Kind::Call));
        assert!(may_hide_set(Kind::Execute));
        assert!(!may_hide_set(Kind::Read));
        assert!(!may_hide_set(Kind::Write));
        assert_eq!(classify(b"EXECUTE IMMEDIATE CONCAT('SET ', 'x=1')").kind, Kind::Execute);
    }

    #[test]
    fn idle_limit_table() {
        assert_eq!(idle_limit_s(28_800, 0, false), (28_800, IdleCause::Wait));
        assert_eq!(idle_limit_s(28_800, 30, false), (28_800, IdleCause::Wait));
        assert_eq!(idle_limit_s(28_800, 0, true), (28_800, IdleCause::Wait));
        assert_eq!(idle_limit_s(28_800, 30, true), (30, IdleCause::Transaction));
        // Longer than wait_timeout: MariaDB uses the transaction limit all the same.
        assert_eq!(idle_limit_s(10, 30, true), (30, IdleCause::Transaction));
    }
}
