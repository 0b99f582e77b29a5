//! Statement classification: a zero-copy tokenizer over the statement bytes gives the
//! statement kind, the flags routing and pooling need, and a digest for caching.
//!
//! Pure code: no I/O, no allocation on the cache-hit path. sqlparser is not used here.
//! Bytes need not be UTF-8; nothing here panics or reads past the input on any bytes.
//!
//! * [`token`] — the tokenizer (comments, version comments, hints, quoting).
//! * [`scan`] — lexical flags of one statement.
//! * [`kind`] — the kind table and the loop over `;`-separated statements.
//! * [`set`] — `parse_set`, `use_schema`.
//! * [`digest`](mod@digest) — `normalize`, `digest`.
//! * [`cache`] — `ClassifyCache`.
//!
//! Decision tables live in each module's doc; `docs/classify.md` gathers them.

pub mod answered;
pub mod cache;
pub mod digest;
pub mod kind;
pub mod rewrite;
pub mod scan;
pub mod set;
pub mod token;

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod fuzz;

pub use cache::{CacheStats, ClassifyCache, CACHE_ENTRIES_MAX};
pub use digest::{digest, normalize};
pub use token::{Token, TokenKind, Tokenizer};

/// What a statement does, as far as routing and pooling care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// SELECT / WITH … SELECT / VALUES / TABLE / DO without locking or side effects.
    Read,
    /// SELECT … FOR UPDATE / LOCK IN SHARE MODE / FOR SHARE.
    LockingRead,
    /// INSERT, UPDATE, DELETE, REPLACE, SELECT … INTO (table), …
    Write,
    /// CREATE, ALTER, DROP, RENAME, TRUNCATE, …
    Ddl,
    /// BEGIN, START TRANSACTION [READ WRITE], XA START.
    TxnBegin,
    /// START TRANSACTION READ ONLY.
    TxnBeginReadOnly,
    /// COMMIT, XA COMMIT.
    TxnCommit,
    /// ROLLBACK, XA ROLLBACK (not ROLLBACK TO SAVEPOINT).
    TxnRollback,
    /// SAVEPOINT, ROLLBACK TO, RELEASE SAVEPOINT.
    Savepoint,
    /// SET … (session or global variables, NAMES, TRANSACTION, PASSWORD, ROLE, …).
    SessionSet,
    /// USE db.
    Use,
    /// SHOW …, DESCRIBE, EXPLAIN, HELP.
    Show,
    /// CALL proc(…).
    Call,
    /// LOAD DATA \[LOCAL\] INFILE, LOAD XML.
    LoadData,
    /// SQL-level PREPARE.
    Prepare,
    /// SQL-level EXECUTE.
    Execute,
    /// SQL-level DEALLOCATE / DROP PREPARE.
    Deallocate,
    /// LOCK TABLES / FLUSH TABLES … WITH READ LOCK.
    LockTables,
    /// UNLOCK TABLES.
    UnlockTables,
    /// KILL, FLUSH, GRANT, REVOKE, ANALYZE, OPTIMIZE, CHECK, INSTALL, …
    Admin,
    /// Anything not recognised (goes to the leader).
    Unknown,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 21] = [
        Kind::Read,
        Kind::LockingRead,
        Kind::Write,
        Kind::Ddl,
        Kind::TxnBegin,
        Kind::TxnBeginReadOnly,
        Kind::TxnCommit,
        Kind::TxnRollback,
        Kind::Savepoint,
        Kind::SessionSet,
        Kind::Use,
        Kind::Show,
        Kind::Call,
        Kind::LoadData,
        Kind::Prepare,
        Kind::Execute,
        Kind::Deallocate,
        Kind::LockTables,
        Kind::UnlockTables,
        Kind::Admin,
        Kind::Unknown,
    ];

    /// The variant name (`"LockingRead"`), for logs, metrics labels and the corpus.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Read => "Read",
            Kind::LockingRead => "LockingRead",
            Kind::Write => "Write",
            Kind::Ddl => "Ddl",
            Kind::TxnBegin => "TxnBegin",
            Kind::TxnBeginReadOnly => "TxnBeginReadOnly",
            Kind::TxnCommit => "TxnCommit",
            Kind::TxnRollback => "TxnRollback",
            Kind::Savepoint => "Savepoint",
            Kind::SessionSet => "SessionSet",
            Kind::Use => "Use",
            Kind::Show => "Show",
            Kind::Call => "Call",
            Kind::LoadData => "LoadData",
            Kind::Prepare => "Prepare",
            Kind::Execute => "Execute",
            Kind::Deallocate => "Deallocate",
            Kind::LockTables => "LockTables",
            Kind::UnlockTables => "UnlockTables",
            Kind::Admin => "Admin",
            Kind::Unknown => "Unknown",
        }
    }

    /// The kind whose `name()` is `name`.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Properties of a statement that routing, pooling and capture need; a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u32);

impl Flags {
    /// `FOR UPDATE`.
    pub const FOR_UPDATE: Flags = Flags(1 << 0);
    /// `LOCK IN SHARE MODE` / `FOR SHARE`.
    pub const FOR_SHARE: Flags = Flags(1 << 1);
    /// `SELECT … INTO @var / OUTFILE / DUMPFILE`.
    pub const INTO: Flags = Flags(1 << 2);
    /// `GET_LOCK(` is called.
    pub const GET_LOCK: Flags = Flags(1 << 3);
    /// `RELEASE_LOCK(` or `RELEASE_ALL_LOCKS(` is called.
    pub const RELEASE_LOCK: Flags = Flags(1 << 4);
    /// `LAST_INSERT_ID(` is called.
    pub const LAST_INSERT_ID: Flags = Flags(1 << 5);
    /// `FOUND_ROWS(` is called.
    pub const FOUND_ROWS: Flags = Flags(1 << 6);
    /// `SQL_CALC_FOUND_ROWS` appears.
    pub const CALC_FOUND_ROWS: Flags = Flags(1 << 7);
    /// `NEXT VALUE FOR`, `NEXTVAL(`, `LASTVAL(`, `SETVAL(`.
    pub const SEQUENCE: Flags = Flags(1 << 8);
    /// `CREATE TEMPORARY TABLE`.
    pub const CREATE_TEMP_TABLE: Flags = Flags(1 << 9);
    /// `DROP TEMPORARY TABLE`.
    pub const DROP_TEMP_TABLE: Flags = Flags(1 << 10);
    /// A function whose result differs between servers: `UUID(`, `UUID_SHORT(`, `RAND(`,
    /// `SYSDATE(`, `NOW(`, `CURRENT_TIMESTAMP`, `CONNECTION_ID(`, …
    pub const NON_DETERMINISTIC: Flags = Flags(1 << 11);
    /// A user variable `@name` is read or written (not `@@system`).
    pub const USER_VARIABLE: Flags = Flags(1 << 12);
    /// The hint `/* shoal:leader */` (or `/*+ shoal:leader */`) is present.
    pub const HINT_LEADER: Flags = Flags(1 << 13);
    /// More than one statement in the text (separated by `;` outside quotes/comments).
    pub const MULTI_STATEMENT: Flags = Flags(1 << 14);
    /// Some statement of a multi-statement text is not a plain `Read`.
    pub const MULTI_HAS_WRITE: Flags = Flags(1 << 15);
    /// `HANDLER …`: opens or reads a table handle that lives on the connection.
    pub const HANDLER: Flags = Flags(1 << 16);
    /// Reads the previous statement's diagnostics: `SHOW WARNINGS`, `SHOW ERRORS`,
    /// `SHOW COUNT(*) WARNINGS|ERRORS`, `GET DIAGNOSTICS`, `@@warning_count`, `@@error_count`.
    pub const DIAGNOSTICS: Flags = Flags(1 << 17);
    /// `ROW_COUNT(` is called (the previous statement's affected rows).
    pub const ROW_COUNT: Flags = Flags(1 << 18);
    /// `CONNECTION_ID(` is called (also `NON_DETERMINISTIC`).
    pub const CONNECTION_ID: Flags = Flags(1 << 19);

    /// Every flag with its name (the const's name), lowest bit first.
    pub const NAMED: [(&'static str, Flags); 20] = [
        ("FOR_UPDATE", Flags::FOR_UPDATE),
        ("FOR_SHARE", Flags::FOR_SHARE),
        ("INTO", Flags::INTO),
        ("GET_LOCK", Flags::GET_LOCK),
        ("RELEASE_LOCK", Flags::RELEASE_LOCK),
        ("LAST_INSERT_ID", Flags::LAST_INSERT_ID),
        ("FOUND_ROWS", Flags::FOUND_ROWS),
        ("CALC_FOUND_ROWS", Flags::CALC_FOUND_ROWS),
        ("SEQUENCE", Flags::SEQUENCE),
        ("CREATE_TEMP_TABLE", Flags::CREATE_TEMP_TABLE),
        ("DROP_TEMP_TABLE", Flags::DROP_TEMP_TABLE),
        ("NON_DETERMINISTIC", Flags::NON_DETERMINISTIC),
        ("USER_VARIABLE", Flags::USER_VARIABLE),
        ("HINT_LEADER", Flags::HINT_LEADER),
        ("MULTI_STATEMENT", Flags::MULTI_STATEMENT),
        ("MULTI_HAS_WRITE", Flags::MULTI_HAS_WRITE),
        ("HANDLER", Flags::HANDLER),
        ("DIAGNOSTICS", Flags::DIAGNOSTICS),
        ("ROW_COUNT", Flags::ROW_COUNT),
        ("CONNECTION_ID", Flags::CONNECTION_ID),
    ];

    /// The flag whose const name is `name`.
    pub fn from_name(name: &str) -> Option<Flags> {
        Flags::NAMED.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
    }

    /// Names of the set flags, lowest bit first.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMED.into_iter().filter(move |&(_, f)| self.contains(f)).map(|(n, _)| n)
    }

    /// True when every bit of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// True when any bit of `other` is set in `self`.
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl std::ops::BitAnd for Flags {
    type Output = Flags;
    fn bitand(self, rhs: Flags) -> Flags {
        Flags(self.0 & rhs.0)
    }
}

impl std::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

/// The result of classifying one COM_QUERY text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// Kind of the first statement.
    pub kind: Kind,
    /// Union of the flags of every statement in the text.
    pub flags: Flags,
}

/// What a `SET` statement does to session state (see `parse_set`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetEffect {
    /// Every assignment sets a session system variable (or NAMES / CHARACTER SET) to a
    /// constant expression: the session can replay these on another connection.
    Session(Vec<SessionAssign>),
    /// Only global variables are set (`SET GLOBAL`, `SET @@global.`): no session state.
    Global,
    /// Anything else (user variables, `SET TRANSACTION`, `SET PASSWORD`, `SET ROLE`,
    /// subqueries, function calls such as `@@x = @y`): not replayable.
    Opaque,
}

/// One replayable session assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAssign {
    /// Lower-cased variable name without scope prefix (`sql_mode`); `names` for
    /// `SET NAMES`, `character set` for `SET CHARACTER SET`/`CHARSET`.
    pub name: String,
    /// The assignment text to replay after `SET `, e.g. `sql_mode = 'ANSI'` or
    /// `NAMES utf8mb4 COLLATE utf8mb4_bin`; for a computed one, the assignment as written.
    pub text: String,
    /// The value is an expression over the session's own state (`CONCAT(@@sql_mode,
    /// ',X')`): replaying the text elsewhere could give another value, so once the
    /// statement succeeded shoal reads the value back and replays that.
    pub computed: bool,
}

/// True when the text calls `LAST_INSERT_ID(expr)` (with an argument): that call sets
/// the connection's insert id, which `SELECT` answers do not report.
pub fn sets_last_insert_id(sql: &[u8]) -> bool {
    let toks: Vec<token::Token<'_>> = token::Tokenizer::new(sql).filter(|t| t.kind != token::TokenKind::Hint).collect();
    toks.windows(3).any(|w| {
        w[0].kind == token::TokenKind::Word
            && w[0].text.eq_ignore_ascii_case(b"LAST_INSERT_ID")
            && w[1].is_punct(b"(")
            && !w[2].is_punct(b")")
    })
}

/// Classifies one COM_QUERY text (possibly several `;`-separated statements).
pub fn classify(sql: &[u8]) -> Classification {
    kind::classify(sql)
}

/// Reads a `SET` statement; anything that is not a `SET` is `Opaque`.
pub fn parse_set(sql: &[u8]) -> SetEffect {
    set::parse_set(sql)
}

/// The schema named by a `USE db` statement (backquotes removed), if `sql` is one.
pub fn use_schema(sql: &[u8]) -> Option<String> {
    set::use_schema(sql)
}
