//! Statement kind from the first keyword(s), plus the per-text loop over statements.
//!
//! # Kind table (first keyword(s) → kind)
//!
//! | first keyword(s)                                   | kind                                   |
//! |----------------------------------------------------|----------------------------------------|
//! | `SELECT`, `VALUES`, `TABLE`, `(SELECT …`           | Read; LockingRead with FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE; Write with `INTO OUTFILE/DUMPFILE` (writes a server file) or a sequence write; `INTO @v` keeps Read/LockingRead + INTO |
//! | `WITH …` then `SELECT`/`TABLE`/`VALUES`            | as `SELECT`                            |
//! | `WITH …` then `UPDATE`/`DELETE`/`INSERT`/`REPLACE` | Write                                  |
//! | `DO`                                               | Read (Write with a sequence write)     |
//! | `HANDLER`                                          | Read + `HANDLER` (a session-scoped handle: pooling pins, routing sends it to the primary) |
//! | `INSERT`, `UPDATE`, `DELETE`, `REPLACE`            | Write                                  |
//! | `CREATE`/`ALTER`/`DROP`/`RENAME`/`TRUNCATE`        | Ddl (`CREATE TEMPORARY` + CREATE_TEMP_TABLE, `DROP TEMPORARY` + DROP_TEMP_TABLE) |
//! | `CREATE`/`ALTER`/`DROP`/`RENAME` `USER`/`ROLE`     | Admin (account management, like GRANT) |
//! | `DROP PREPARE`, `DEALLOCATE PREPARE`               | Deallocate                             |
//! | `BEGIN`, `BEGIN WORK`, `START TRANSACTION …`, `XA START/BEGIN` | TxnBegin                   |
//! | `START TRANSACTION … READ ONLY …`                   | TxnBeginReadOnly                       |
//! | `COMMIT …`, `XA COMMIT`                            | TxnCommit                              |
//! | `ROLLBACK [WORK]`, `XA ROLLBACK`                   | TxnRollback                            |
//! | `ROLLBACK [WORK] TO …`, `SAVEPOINT`, `RELEASE SAVEPOINT`, `XA END`, `XA PREPARE` | Savepoint (inside a transaction, does not end it) |
//! | `XA RECOVER`                                       | Show                                   |
//! | `SET STATEMENT … FOR <stmt>`                       | kind of `<stmt>`                       |
//! | `SET …`                                            | SessionSet                             |
//! | `USE`                                              | Use                                    |
//! | `SHOW`, `HELP`, `GET DIAGNOSTICS`                  | Show                                   |
//! | `EXPLAIN`/`DESCRIBE`/`DESC` \[ANALYZE\] …             | Show; with ANALYZE, the inner kind when it is Write/LockingRead (it runs) |
//! | `ANALYZE [FORMAT=…] <stmt>` (MariaDB, runs it)     | inner Write/LockingRead, else Show     |
//! | `ANALYZE [LOCAL\|NO_WRITE_TO_BINLOG] TABLE`        | Admin                                  |
//! | `CALL`                                             | Call                                   |
//! | `BEGIN NOT ATOMIC`, `IF`, `CASE`, `LOOP`, `WHILE`, `REPEAT` (MariaDB anonymous compound statements) | Call (runs a program) |
//! | `LOAD DATA`, `LOAD XML`                            | LoadData                               |
//! | `LOAD INDEX`                                       | Admin                                  |
//! | `PREPARE` / `EXECUTE` (also `EXECUTE IMMEDIATE`) / `DEALLOCATE` | Prepare / Execute / Deallocate |
//! | `LOCK TABLE(S)`, `LOCK INSTANCE`, `BACKUP LOCK`, `FLUSH … WITH READ LOCK`, `FLUSH … FOR EXPORT` | LockTables |
//! | `UNLOCK …`, `BACKUP UNLOCK`                        | UnlockTables                           |
//! | `INSTALL`, `UNINSTALL`, `GRANT`, `REVOKE`, `FLUSH`, `KILL`, `OPTIMIZE`, `CHECK`, `CHECKSUM`, `REPAIR`, `RESET`, `PURGE`, `CHANGE`, `START SLAVE/REPLICA/ALL`, `STOP`, `BINLOG`, `CACHE`, `SHUTDOWN`, `RESTART`, `CLONE`, `IMPORT`, `BACKUP STAGE` | Admin |
//! | empty, comments only, anything else                | Unknown                                |
//!
//! The body of `CREATE … PROCEDURE/FUNCTION/TRIGGER/EVENT/PACKAGE`, `ALTER EVENT`, and the
//! anonymous compound statements holds `;`: the rest of the text is one statement. For the
//! definitions, flags come from hints only (the body does not run now).

use super::scan::{scan_statement, IntoTarget, Kw, Scan};
use super::token::{Token, TokenKind, Tokenizer};
use super::{Classification, Flags, Kind};

/// Statements examined in one text; past it the text counts as having a write.
pub const STATEMENTS_SCANNED_MAX: usize = 64;
/// Nesting of `SET STATEMENT … FOR`, `EXPLAIN ANALYZE`, `ANALYZE` followed.
pub const NESTING_LEVELS_MAX: usize = 4;
/// Tokens after `CREATE` searched for the object keyword (past `OR REPLACE`, `DEFINER=…`).
pub const CREATE_PREFIX_TOKENS_MAX: usize = 24;

/// Significant tokens of the current statement: hints skipped, `;` ends it.
#[derive(Clone)]
struct Cursor<'a> {
    toks: Tokenizer<'a>,
}

impl<'a> Cursor<'a> {
    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            let t = self.toks.next()?;
            match t.kind {
                TokenKind::Hint => continue,
                TokenKind::Semi => return None,
                _ => return Some(t),
            }
        }
    }
    fn peek(&self) -> Option<Token<'a>> {
        self.clone().next()
    }
    /// Next token as an upper-case keyword (empty for non-words or the end).
    fn kw(&mut self) -> Kw {
        match self.next() {
            Some(t) if t.kind == TokenKind::Word => Kw::of(t.text),
            _ => Kw::of(b""),
        }
    }
    fn peek_kw(&self) -> Kw {
        self.clone().kw()
    }
}

/// Classifies a whole COM_QUERY text.
pub fn classify(sql: &[u8]) -> Classification {
    let mut toks = Tokenizer::new(sql);
    let mut first: Option<Kind> = None;
    let mut flags = Flags::default();
    let mut statements = 0usize;
    let mut has_write = false;
    loop {
        if toks.clone().next().is_none() {
            break;
        }
        if statements == STATEMENTS_SCANNED_MAX {
            has_write = true;
            break;
        }
        let head = Cursor { toks: toks.clone() };
        let compound = compound_kind(&head);
        let scan = scan_statement(&mut toks, compound.is_some());
        if !scan.nonempty {
            flags |= scan.flags;
            continue;
        }
        let (kind, f) = match compound {
            Some((kind, true)) => (kind, scan.flags & Flags::HINT_LEADER),
            Some((kind, false)) => (kind, scan.flags),
            None => {
                let (kind, extra) = decide(head, &scan, 0);
                (kind, scan.flags | extra)
            }
        };
        statements += 1;
        flags |= f;
        has_write |= kind != Kind::Read;
        first.get_or_insert(kind);
    }
    if statements > 1 {
        flags |= Flags::MULTI_STATEMENT;
        if has_write {
            flags |= Flags::MULTI_HAS_WRITE;
        }
    }
    Classification { kind: first.unwrap_or(Kind::Unknown), flags }
}

/// The object keyword of a `CREATE`: the first of a known set within the prefix tokens.
fn create_object(c: &mut Cursor<'_>) -> Kw {
    for _ in 0..CREATE_PREFIX_TOKENS_MAX {
        let Some(t) = c.next() else { break };
        if t.is_punct(b"(") {
            break;
        }
        if t.kind != TokenKind::Word {
            continue;
        }
        let kw = Kw::of(t.text);
        if matches!(
            kw.as_bytes(),
            b"TABLE"
                | b"TEMPORARY"
                | b"VIEW"
                | b"INDEX"
                | b"UNIQUE"
                | b"FULLTEXT"
                | b"SPATIAL"
                | b"DATABASE"
                | b"SCHEMA"
                | b"SEQUENCE"
                | b"USER"
                | b"ROLE"
                | b"SERVER"
                | b"TABLESPACE"
                | b"LOGFILE"
                | b"PROCEDURE"
                | b"FUNCTION"
                | b"TRIGGER"
                | b"EVENT"
                | b"PACKAGE"
                | b"RESOURCE"
                | b"SYNONYM"
        ) {
            return kw;
        }
    }
    Kw::of(b"")
}

/// For statements whose body holds `;`: the kind and whether body flags are dropped.
fn compound_kind(head: &Cursor<'_>) -> Option<(Kind, bool)> {
    let mut c = head.clone();
    // `(SELECT …)` never starts a compound statement.
    match c.kw().as_bytes() {
        b"CREATE" => match create_object(&mut c).as_bytes() {
            b"PROCEDURE" | b"FUNCTION" | b"TRIGGER" | b"EVENT" | b"PACKAGE" => Some((Kind::Ddl, true)),
            _ => None,
        },
        b"ALTER" => match c.kw().as_bytes() {
            b"EVENT" => Some((Kind::Ddl, true)),
            b"DEFINER" => (create_object(&mut c).as_bytes() == b"EVENT").then_some((Kind::Ddl, true)),
            _ => None,
        },
        b"BEGIN" => (c.kw().as_bytes() == b"NOT").then_some((Kind::Call, false)),
        b"IF" | b"CASE" | b"LOOP" | b"WHILE" | b"REPEAT" => Some((Kind::Call, false)),
        _ => None,
    }
}

/// Kind of a SELECT-like statement given its scan.
fn select_kind(scan: &Scan) -> (Kind, Flags) {
    let locking = scan.flags.intersects(Flags::FOR_UPDATE | Flags::FOR_SHARE);
    let mut kind = if locking { Kind::LockingRead } else { Kind::Read };
    let mut extra = Flags::default();
    match scan.into {
        Some(IntoTarget::File) => {
            kind = Kind::Write;
            extra |= Flags::INTO;
        }
        Some(IntoTarget::Other) => extra |= Flags::INTO,
        None => {}
    }
    if scan.sequence_write {
        kind = Kind::Write;
    }
    (kind, extra)
}

/// Kind of the statement at `c` (its lexical scan is `scan`); extra flags (INTO, temp).
fn decide(mut c: Cursor<'_>, scan: &Scan, nest: usize) -> (Kind, Flags) {
    let none = Flags::default();
    if nest > NESTING_LEVELS_MAX {
        return (Kind::Unknown, none);
    }
    let Some(mut first) = c.next() else {
        return (Kind::Unknown, none);
    };
    // `(SELECT …) UNION (SELECT …)`: the kind of what the parentheses open (a loop, not
    // recursion: a text of a million `(` must not exhaust the stack).
    while first.is_punct(b"(") {
        let Some(next) = c.next() else {
            return (Kind::Unknown, none);
        };
        first = next;
    }
    if first.kind != TokenKind::Word {
        return (Kind::Unknown, none);
    }
    let kw = Kw::of(first.text);
    let kind = match kw.as_bytes() {
        b"SELECT" | b"VALUES" | b"TABLE" => return select_kind(scan),
        b"WITH" => return with_kind(c, scan),
        b"DO" => {
            let k = if scan.sequence_write { Kind::Write } else { Kind::Read };
            return (k, none);
        }
        b"HANDLER" => return (Kind::Read, Flags::HANDLER),
        b"INSERT" | b"UPDATE" | b"DELETE" | b"REPLACE" => Kind::Write,
        b"CREATE" => {
            return match create_object(&mut c).as_bytes() {
                b"TEMPORARY" => (Kind::Ddl, Flags::CREATE_TEMP_TABLE),
                b"USER" | b"ROLE" => (Kind::Admin, none),
                _ => (Kind::Ddl, none),
            }
        }
        b"DROP" => {
            return match c.kw().as_bytes() {
                b"TEMPORARY" => (Kind::Ddl, Flags::DROP_TEMP_TABLE),
                b"PREPARE" => (Kind::Deallocate, none),
                b"USER" | b"ROLE" => (Kind::Admin, none),
                _ => (Kind::Ddl, none),
            }
        }
        b"ALTER" | b"RENAME" => match c.kw().as_bytes() {
            b"USER" | b"ROLE" => Kind::Admin,
            _ => Kind::Ddl,
        },
        b"TRUNCATE" => Kind::Ddl,
        b"BEGIN" => match c.peek() {
            None => Kind::TxnBegin,
            Some(t) if t.is_word(b"WORK") => Kind::TxnBegin,
            _ => Kind::Unknown,
        },
        b"START" => match c.kw().as_bytes() {
            b"TRANSACTION" => start_transaction_kind(c),
            b"SLAVE" | b"REPLICA" | b"ALL" | b"GROUP_REPLICATION" => Kind::Admin,
            _ => Kind::Unknown,
        },
        b"COMMIT" => Kind::TxnCommit,
        b"ROLLBACK" => {
            let mut k = c.kw();
            if k.as_bytes() == b"WORK" {
                k = c.kw();
            }
            if k.as_bytes() == b"TO" {
                Kind::Savepoint
            } else {
                Kind::TxnRollback
            }
        }
        b"SAVEPOINT" => Kind::Savepoint,
        b"RELEASE" => match c.kw().as_bytes() {
            b"SAVEPOINT" => Kind::Savepoint,
            _ => Kind::Unknown,
        },
        b"XA" => match c.kw().as_bytes() {
            b"START" | b"BEGIN" => Kind::TxnBegin,
            b"END" | b"PREPARE" => Kind::Savepoint,
            b"COMMIT" => Kind::TxnCommit,
            b"ROLLBACK" => Kind::TxnRollback,
            b"RECOVER" => Kind::Show,
            _ => Kind::Unknown,
        },
        b"SET" => {
            if c.peek_kw().as_bytes() == b"STATEMENT" {
                return set_statement_kind(c, scan, nest);
            }
            Kind::SessionSet
        }
        b"USE" => Kind::Use,
        b"SHOW" | b"HELP" => Kind::Show,
        b"GET" => {
            let mut k = c.kw();
            if matches!(k.as_bytes(), b"CURRENT" | b"STACKED") {
                k = c.kw();
            }
            if k.as_bytes() == b"DIAGNOSTICS" {
                Kind::Show
            } else {
                Kind::Unknown
            }
        }
        b"EXPLAIN" | b"DESCRIBE" | b"DESC" => return explain_kind(c, scan, nest, false),
        b"ANALYZE" => match c.peek_kw().as_bytes() {
            b"TABLE" | b"TABLES" | b"LOCAL" | b"NO_WRITE_TO_BINLOG" => Kind::Admin,
            _ => return explain_kind(c, scan, nest, true),
        },
        b"CALL" => Kind::Call,
        b"LOAD" => match c.kw().as_bytes() {
            b"DATA" | b"XML" => Kind::LoadData,
            b"INDEX" => Kind::Admin,
            _ => Kind::Unknown,
        },
        b"PREPARE" => Kind::Prepare,
        b"EXECUTE" => Kind::Execute,
        b"DEALLOCATE" => Kind::Deallocate,
        b"LOCK" => match c.kw().as_bytes() {
            b"TABLE" | b"TABLES" | b"INSTANCE" => Kind::LockTables,
            _ => Kind::Unknown,
        },
        b"UNLOCK" => Kind::UnlockTables,
        b"FLUSH" => {
            // FLUSH TABLES … WITH READ LOCK / FOR EXPORT hold locks until UNLOCK TABLES.
            let mut locks = false;
            while let Some(t) = c.next() {
                locks |= t.is_word(b"LOCK") || t.is_word(b"EXPORT");
            }
            if locks {
                Kind::LockTables
            } else {
                Kind::Admin
            }
        }
        b"BACKUP" => match c.kw().as_bytes() {
            b"LOCK" => Kind::LockTables,
            b"UNLOCK" => Kind::UnlockTables,
            _ => Kind::Admin,
        },
        b"INSTALL" | b"UNINSTALL" | b"GRANT" | b"REVOKE" | b"KILL" | b"OPTIMIZE" | b"CHECK" | b"CHECKSUM"
        | b"REPAIR" | b"RESET" | b"PURGE" | b"CHANGE" | b"STOP" | b"BINLOG" | b"CACHE" | b"SHUTDOWN" | b"RESTART"
        | b"CLONE" | b"IMPORT" => Kind::Admin,
        _ => Kind::Unknown,
    };
    (kind, none)
}

/// `START TRANSACTION` characteristics: READ ONLY makes it read-only.
fn start_transaction_kind(mut c: Cursor<'_>) -> Kind {
    let mut prev_read = false;
    while let Some(t) = c.next() {
        if prev_read && t.is_word(b"ONLY") {
            return Kind::TxnBeginReadOnly;
        }
        prev_read = t.is_word(b"READ");
    }
    Kind::TxnBegin
}

/// `WITH [RECURSIVE] name [(cols)] AS (…), … <main statement>`: kind of the main statement,
/// the first depth-0 DML keyword after the CTE list.
fn with_kind(mut c: Cursor<'_>, scan: &Scan) -> (Kind, Flags) {
    let mut depth = 0usize;
    while let Some(t) = c.next() {
        if t.is_punct(b"(") {
            depth += 1;
        } else if t.is_punct(b")") {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && t.kind == TokenKind::Word {
            match Kw::of(t.text).as_bytes() {
                b"SELECT" | b"TABLE" | b"VALUES" => return select_kind(scan),
                b"UPDATE" | b"DELETE" | b"INSERT" | b"REPLACE" => return (Kind::Write, Flags::default()),
                _ => {}
            }
        }
    }
    (Kind::Unknown, Flags::default())
}

/// `SET STATEMENT var = value, … FOR <stmt>`: the kind of `<stmt>`.
fn set_statement_kind(mut c: Cursor<'_>, scan: &Scan, nest: usize) -> (Kind, Flags) {
    let mut depth = 0usize;
    while let Some(t) = c.next() {
        if t.is_punct(b"(") {
            depth += 1;
        } else if t.is_punct(b")") {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && t.is_word(b"FOR") {
            return decide(c, scan, nest + 1);
        }
    }
    (Kind::Unknown, Flags::default())
}

/// `EXPLAIN`/`DESCRIBE` (`analyze` false) and MariaDB `ANALYZE <stmt>` (`analyze` true).
/// Plain EXPLAIN never runs the statement; an analyzing one does, so a write stays a write.
fn explain_kind(mut c: Cursor<'_>, scan: &Scan, nest: usize, mut analyze: bool) -> (Kind, Flags) {
    loop {
        let Some(t) = c.peek() else {
            return (Kind::Show, Flags::default());
        };
        let kw = if t.kind == TokenKind::Word { Kw::of(t.text) } else { Kw::of(b"") };
        match kw.as_bytes() {
            b"ANALYZE" => analyze = true,
            b"EXTENDED" | b"PARTITIONS" => {}
            b"FORMAT" => {
                c.next();
                if c.peek().is_some_and(|t| t.is_punct(b"=")) {
                    c.next();
                }
            }
            b"SELECT" | b"WITH" | b"TABLE" | b"VALUES" | b"INSERT" | b"UPDATE" | b"DELETE" | b"REPLACE" => {
                let (inner, extra) = decide(c, scan, nest + 1);
                return match inner {
                    Kind::Write | Kind::LockingRead if analyze => (inner, extra),
                    _ => (Kind::Show, Flags::default()),
                };
            }
            _ if t.is_punct(b"(") => {
                let (inner, extra) = decide(c, scan, nest + 1);
                return match inner {
                    Kind::Write | Kind::LockingRead if analyze => (inner, extra),
                    _ => (Kind::Show, Flags::default()),
                };
            }
            _ => return (Kind::Show, Flags::default()),
        }
        c.next();
    }
}
