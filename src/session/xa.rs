//! How a client statement maps onto the XA transaction shoal runs for it on the leader
//! when capture is on (`crate::capture`). Pure: the session's view and the statement's
//! class in, one [`XaStep`] out.
//!
//! | XA open | statement | step |
//! |---|---|---|
//! | any | a client's own `XA …` | [`XaStep::Refuse`] (shoal runs every transaction as XA itself) |
//! | any | `COMMIT AND CHAIN`, `COMMIT RELEASE` | [`XaStep::Refuse`] |
//! | yes | `COMMIT` | [`XaStep::Commit`] |
//! | yes | `ROLLBACK` | [`XaStep::Rollback`] |
//! | yes | `BEGIN`, DDL (not temporary), `LOCK TABLES`, admin (`GRANT`, `ANALYZE`, …) | [`XaStep::CommitFirst`]: they commit implicitly in MariaDB, so the XA commits, then the statement is decided again |
//! | yes | anything else | [`XaStep::Pass`] (a write marks the transaction as written) |
//! | no | inside a transaction that is not shoal's (`START TRANSACTION READ ONLY`, `LOCK TABLES`) | [`XaStep::Pass`] |
//! | no | `BEGIN`, `START TRANSACTION [READ WRITE]` | [`XaStep::Begin`]: `XA START` instead |
//! | no | a single write (`INSERT`, `UPDATE`, `CALL`, `LOAD DATA`, SQL `EXECUTE`) under autocommit | [`XaStep::Wrap`]: a one-statement XA, the reply held until durable |
//! | no | a statement that opens a transaction under `autocommit=0` (reads and writes) | [`XaStep::StartFirst`] |
//! | no | anything else (including multi-statement texts under autocommit) | [`XaStep::Pass`] |
//!
//! What passes outside XA and still writes (a multi-statement text under autocommit, a
//! write under `LOCK TABLES`, `SELECT NEXTVAL(…)`) reaches the binlog as an ordinary
//! transaction: the binlog tail replicates it after the fact and counts it
//! (`shoal_unmanaged_writes_total`); it is not held for a quorum.

use crate::classify::{Classification, Flags, Kind};

/// What the session knows when a statement arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XaView {
    /// shoal's XA transaction is open on the held connection.
    pub open: bool,
    /// The server reported autocommit on.
    pub autocommit: bool,
    /// The server reported a transaction open that is not shoal's XA (a read-only
    /// transaction, `LOCK TABLES` under `autocommit=0`).
    pub other_transaction: bool,
}

/// What to do with a statement (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XaStep {
    /// Run it as it is.
    Pass,
    /// `BEGIN`: start shoal's XA transaction instead.
    Begin,
    /// `COMMIT`: prepare, make durable, commit (or commit one-phase when nothing was written).
    Commit,
    /// `ROLLBACK`: `XA END` + `XA ROLLBACK`.
    Rollback,
    /// A write under autocommit: one-statement XA, its reply held until durable.
    Wrap,
    /// Start the XA first (`autocommit=0`), then run the statement in it.
    StartFirst,
    /// Commit the open XA first, then decide again with it closed.
    CommitFirst,
    /// Refuse with this message (error 1399-free: shoal's own error).
    Refuse(&'static str),
}

/// Message for a client's own XA statement.
pub const REFUSE_CLIENT_XA: &str =
    "XA statements are not available through shoal with replication on: shoal runs every transaction as XA itself (use BEGIN/COMMIT)";
/// Message for `COMMIT AND CHAIN` / `COMMIT RELEASE`.
pub const REFUSE_COMMIT_OPTIONS: &str =
    "COMMIT AND CHAIN and COMMIT RELEASE are not available through shoal with replication on: use COMMIT, then BEGIN (or disconnect)";

/// Whether a statement of kind `kind` is a write that autocommit runs as its own transaction.
fn autocommit_write(kind: Kind) -> bool {
    matches!(kind, Kind::Write | Kind::Call | Kind::LoadData | Kind::Execute)
}

/// Whether a statement of class `c` opens a transaction under `autocommit=0`.
fn opens_transaction(c: &Classification) -> bool {
    matches!(c.kind, Kind::Read | Kind::LockingRead | Kind::Write | Kind::Call | Kind::LoadData | Kind::Execute)
}

/// Whether a statement of class `c` commits an open transaction implicitly in MariaDB.
fn commits_implicitly(c: &Classification) -> bool {
    let temporary = c.flags.intersects(Flags(Flags::CREATE_TEMP_TABLE.0 | Flags::DROP_TEMP_TABLE.0));
    match c.kind {
        Kind::TxnBegin | Kind::TxnBeginReadOnly | Kind::LockTables | Kind::Admin => true,
        Kind::Ddl => !temporary,
        _ => false,
    }
}

/// The step for a statement of class `c`; `sql` is its text (for `XA …` and the COMMIT
/// options, which the classifier does not tell apart).
pub fn xa_step(view: &XaView, c: &Classification, sql: &[u8]) -> XaStep {
    let words = leading_words(sql, 3);
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    if word(0) == "XA" {
        return XaStep::Refuse(REFUSE_CLIENT_XA);
    }
    if c.kind == Kind::TxnCommit && words.iter().any(|w| w == "CHAIN" || w == "RELEASE") && word(2) != "NO" {
        return XaStep::Refuse(REFUSE_COMMIT_OPTIONS);
    }
    if view.open {
        return match c.kind {
            Kind::TxnCommit => XaStep::Commit,
            Kind::TxnRollback => XaStep::Rollback,
            _ if commits_implicitly(c) => XaStep::CommitFirst,
            _ => XaStep::Pass,
        };
    }
    if view.other_transaction {
        return XaStep::Pass;
    }
    let multi = c.flags.contains(Flags::MULTI_STATEMENT);
    match c.kind {
        Kind::TxnBegin => XaStep::Begin,
        k if view.autocommit && autocommit_write(k) && !multi => XaStep::Wrap,
        _ if !view.autocommit && opens_transaction(c) && !multi => XaStep::StartFirst,
        _ => XaStep::Pass,
    }
}

/// The first `n` words of `sql`, upper-cased, comments skipped.
fn leading_words(sql: &[u8], n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for t in crate::classify::Tokenizer::new(sql) {
        if out.len() == n {
            break;
        }
        match t.kind {
            crate::classify::TokenKind::Word => out.push(String::from_utf8_lossy(t.text).to_ascii_uppercase()),
            crate::classify::TokenKind::Hint => {}
            _ => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;

    fn step(open: bool, autocommit: bool, sql: &str) -> XaStep {
        let view = XaView { open, autocommit, other_transaction: false };
        xa_step(&view, &classify(sql.as_bytes()), sql.as_bytes())
    }

    #[test]
    fn the_table_in_the_module_docs() {
        use XaStep::*;
        let rows: &[(bool, bool, &str, XaStep)] = &[
            (false, true, "XA START 'a'", Refuse(REFUSE_CLIENT_XA)),
            (true, true, "xa end 'a'", Refuse(REFUSE_CLIENT_XA)),
            (true, true, "COMMIT AND CHAIN", Refuse(REFUSE_COMMIT_OPTIONS)),
            (true, true, "COMMIT WORK RELEASE", Refuse(REFUSE_COMMIT_OPTIONS)),
            (true, true, "COMMIT AND NO CHAIN", Commit),
            (true, true, "COMMIT", Commit),
            (true, true, "commit work", Commit),
            (true, true, "ROLLBACK", Rollback),
            (true, true, "ROLLBACK TO SAVEPOINT a", Pass),
            (true, true, "BEGIN", CommitFirst),
            (true, true, "ALTER TABLE t ADD c INT", CommitFirst),
            (true, true, "CREATE TEMPORARY TABLE x (a INT)", Pass),
            (true, true, "LOCK TABLES t WRITE", CommitFirst),
            (true, true, "INSERT INTO t VALUES (1)", Pass),
            (true, false, "SELECT 1", Pass),
            (false, true, "BEGIN", Begin),
            (false, true, "START TRANSACTION", Begin),
            (false, true, "START TRANSACTION READ ONLY", Pass),
            (false, true, "INSERT INTO t VALUES (1)", Wrap),
            (false, true, "UPDATE t SET a = 1", Wrap),
            (false, true, "CALL p()", Wrap),
            (false, true, "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", Pass),
            (false, true, "SELECT * FROM t", Pass),
            (false, true, "CREATE TABLE t (a INT)", Pass),
            (false, false, "SELECT * FROM t", StartFirst),
            (false, false, "INSERT INTO t VALUES (1)", StartFirst),
            (false, false, "SET @a = 1", Pass),
            (false, false, "COMMIT", Pass),
        ];
        for (open, autocommit, sql, want) in rows {
            assert_eq!(step(*open, *autocommit, sql), *want, "open={open} autocommit={autocommit} {sql}");
        }
        let other = XaView { open: false, autocommit: true, other_transaction: true };
        let c = classify(b"INSERT INTO t VALUES (1)");
        assert_eq!(xa_step(&other, &c, b"INSERT INTO t VALUES (1)"), Pass);
    }
}
