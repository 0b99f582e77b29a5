//! `SET` statements (what they do to session state) and `USE db`.
//!
//! | assignment                                          | effect                               |
//! |-----------------------------------------------------|--------------------------------------|
//! | `[SESSION\|LOCAL] name = const`, `@@[session.\|local.]name = const` | Session `name = const`   |
//! | `NAMES cs [COLLATE c]`, `NAMES DEFAULT`             | Session `names`: `NAMES cs …`        |
//! | `SESSION TRANSACTION ISOLATION LEVEL …`, `… READ ONLY\|WRITE` | Session `tx_isolation`, `tx_read_only` (see `transaction_characteristics`) |
//! | `CHARACTER SET cs`, `CHARSET cs`                    | Session `character set`: `CHARACTER SET cs` |
//! | `GLOBAL\|PERSIST\|PERSIST_ONLY name = …`, `@@global.name = …`, `GLOBAL TRANSACTION …` | no session state |
//! | a variable in [`CONNECTION_BOUND`] (`profiling`, `insert_id`, …) | Opaque |
//! | `name = expr` over constants and system variables (`CONCAT(@@sql_mode, ',X')`) | Session `name`, `computed`: read back after the statement |
//! | user variable, `TRANSACTION` without `SESSION` (the next transaction only), `PASSWORD`, `ROLE`, `DEFAULT ROLE`, `STATEMENT`, a value with a user variable, subquery or `?`, non-UTF-8 text, several statements | Opaque |
//!
//! A scope keyword (`GLOBAL`, `SESSION`, …) applies to the following assignments until the
//! next one, as in the server grammar. All assignments global → `Global`; any opaque one →
//! `Opaque`; else `Session` with the session ones (the global ones need no replay).
//!
//! A constant value is a run of string, number and plain word tokens (ON, utf8mb4, DEFAULT,
//! NULL…) and `-`/`+`/`.`, with no word directly followed by `(`. Its text is rebuilt from
//! the tokens (comments and version-comment markers dropped, each gap one space), and the
//! variable name is lower-cased, so `SET  @@SESSION.SQL_MODE='ANSI'` replays as
//! `sql_mode = 'ANSI'`.

use super::scan::Kw;
use super::token::{Token, TokenKind, Tokenizer};
use super::{SessionAssign, SetEffect};

/// Session variables whose effect stays on the connection (a history, a one-shot value
/// for the next statement, the connection's insert id): setting one is never replayed
/// but pins the session.
///
/// | variable | why |
/// |---|---|
/// | `profiling`, `profiling_history_size` | the profiles collected live on the connection |
/// | `insert_id`, `rand_seed1`, `rand_seed2` | used by the next statement only |
/// | `last_insert_id`, `identity` | shoal replays the session's insert id itself |
/// | `pseudo_thread_id` | the connection's thread id in the binary log |
pub const CONNECTION_BOUND: [&str; 8] = [
    "profiling",
    "profiling_history_size",
    "insert_id",
    "rand_seed1",
    "rand_seed2",
    "last_insert_id",
    "identity",
    "pseudo_thread_id",
];

/// True when a `SET` turns on something whose history a reset keeps (`profiling`):
/// the connection must be closed when its session ends.
pub fn set_keeps_history(sql: &[u8]) -> bool {
    tokens(sql).any(|t| {
        let name = match t.kind {
            TokenKind::SysVar => t.text.get(2..).unwrap_or_default(),
            TokenKind::Word => t.text,
            _ => return false,
        };
        let name = name.rsplit(|b| *b == b'.').next().unwrap_or_default();
        name.eq_ignore_ascii_case(b"profiling")
    })
}

/// Significant tokens of the text (hints dropped), `None` past the first statement.
fn tokens(sql: &[u8]) -> impl Iterator<Item = Token<'_>> {
    Tokenizer::new(sql).filter(|t| t.kind != TokenKind::Hint)
}

/// Splits the text into its first statement's tokens, or `None` when a second statement
/// follows.
fn single_statement(sql: &[u8]) -> Option<Vec<Token<'_>>> {
    let mut out = Vec::new();
    let mut ended = false;
    for t in tokens(sql) {
        if t.kind == TokenKind::Semi {
            ended = true;
            continue;
        }
        if ended {
            return None;
        }
        out.push(t);
    }
    Some(out)
}

/// Rebuilds text from tokens: one space where the source had a gap.
fn join(toks: &[Token<'_>]) -> Option<String> {
    let mut s = String::new();
    for (i, t) in toks.iter().enumerate() {
        if i > 0 && t.gap_before {
            s.push(' ');
        }
        s.push_str(std::str::from_utf8(t.text).ok()?);
    }
    Some(s)
}

/// True when `toks` is a constant value.
fn is_constant(toks: &[Token<'_>]) -> bool {
    !toks.is_empty()
        && toks.iter().enumerate().all(|(i, t)| match t.kind {
            TokenKind::Str | TokenKind::Num => true,
            TokenKind::Word => {
                let call = toks.get(i + 1).is_some_and(|n| n.is_punct(b"("));
                !call && !matches!(Kw::of(t.text).as_bytes(), b"SELECT" | b"VALUES" | b"TABLE" | b"WITH")
            }
            TokenKind::Punct => matches!(t.text, b"-" | b"+" | b"."),
            _ => false,
        })
}

/// True when `toks` is an expression the session's own connection evaluates the same
/// way whenever it runs (functions of constants and system variables, such as
/// `CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')`): no user variable, no placeholder, no
/// subquery, nothing that reads tables.
fn is_computable(toks: &[Token<'_>]) -> bool {
    !toks.is_empty()
        && toks.iter().all(|t| match t.kind {
            TokenKind::Str | TokenKind::Num | TokenKind::SysVar => true,
            TokenKind::Word => !matches!(Kw::of(t.text).as_bytes(), b"SELECT" | b"VALUES" | b"TABLE" | b"WITH"),
            TokenKind::Punct => true,
            _ => false,
        })
}

#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Session,
    Global,
}

/// Reads a `SET` statement; anything that is not a single `SET` is `Opaque`.
pub fn parse_set(sql: &[u8]) -> SetEffect {
    parse(sql).unwrap_or(SetEffect::Opaque)
}

fn parse(sql: &[u8]) -> Option<SetEffect> {
    // Most texts routed here are not SETs: answer those without collecting tokens.
    if !tokens(sql).next()?.is_word(b"SET") {
        return None;
    }
    let toks = single_statement(sql)?;
    let (first, rest) = toks.split_first()?;
    if !first.is_word(b"SET") {
        return None;
    }
    // Assignments separated by depth-0 commas.
    let mut parts: Vec<&[Token<'_>]> = Vec::new();
    let mut depth = 0usize;
    let mut from = 0usize;
    for (i, t) in rest.iter().enumerate() {
        if t.is_punct(b"(") {
            depth += 1;
        } else if t.is_punct(b")") {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && t.is_punct(b",") {
            parts.push(&rest[from..i]);
            from = i + 1;
        }
    }
    parts.push(&rest[from..]);

    let mut scope = Scope::Session;
    let mut session = Vec::new();
    let mut globals = 0usize;
    for (n, part) in parts.iter().enumerate() {
        let mut p: &[Token<'_>] = part;
        let mut explicit_scope = false;
        if let Some(t) = p.first().filter(|t| t.kind == TokenKind::Word) {
            match Kw::of(t.text).as_bytes() {
                b"GLOBAL" | b"PERSIST" | b"PERSIST_ONLY" => {
                    scope = Scope::Global;
                    explicit_scope = true;
                    p = &p[1..];
                }
                b"SESSION" | b"LOCAL" => {
                    scope = Scope::Session;
                    explicit_scope = true;
                    p = &p[1..];
                }
                _ => {}
            }
        }
        let head = p.first()?;
        let head_kw = if head.kind == TokenKind::Word { Kw::of(head.text) } else { Kw::of(b"") };
        match head_kw.as_bytes() {
            b"TRANSACTION" => {
                // Its characteristics hold commas: it must be the whole statement. Without
                // a scope keyword it sets the next transaction only: not replayable.
                if n != 0 {
                    return None;
                }
                return match scope {
                    Scope::Global => Some(SetEffect::Global),
                    Scope::Session if explicit_scope => {
                        let characteristics: Vec<&[Token<'_>]> =
                            std::iter::once(&p[1..]).chain(parts[1..].iter().copied()).collect();
                        transaction_characteristics(&characteristics).map(SetEffect::Session)
                    }
                    Scope::Session => None,
                };
            }
            b"NAMES" => {
                let value = &p[1..];
                if !is_constant(value) {
                    return None;
                }
                session.push(SessionAssign {
                    name: "names".into(),
                    text: format!("NAMES {}", join(value)?),
                    computed: false,
                });
                continue;
            }
            b"CHARACTER" | b"CHARSET" => {
                let skip = if head_kw.as_bytes() == b"CHARACTER" {
                    if !p.get(1)?.is_word(b"SET") {
                        return None;
                    }
                    2
                } else {
                    1
                };
                let value = &p[skip..];
                if !is_constant(value) {
                    return None;
                }
                let text = format!("CHARACTER SET {}", join(value)?);
                session.push(SessionAssign { name: "character set".into(), text, computed: false });
                continue;
            }
            _ => {}
        }
        // Variable name: `name[.name]`, `` `name` ``, or `@@[scope.]name`.
        let (var_scope, name, rest) = variable_name(p, scope)?;
        let (eq, value) = rest.split_first()?;
        if !(eq.is_punct(b"=") || eq.is_punct(b":=")) {
            return None;
        }
        let computed = !is_constant(value);
        if computed && !is_computable(value) {
            return None;
        }
        if var_scope == Scope::Global {
            globals += 1;
            continue;
        }
        if CONNECTION_BOUND.contains(&name.as_str()) {
            return None;
        }
        if computed && !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        let text = format!("{name} = {}", join(value)?);
        session.push(SessionAssign { name, text, computed });
    }
    Some(if session.is_empty() {
        if globals > 0 {
            SetEffect::Global
        } else {
            return None;
        }
    } else {
        SetEffect::Session(session)
    })
}

/// `SET SESSION TRANSACTION` characteristics as the variables they set:
///
/// | characteristic | replayed as |
/// |---|---|
/// | `ISOLATION LEVEL READ UNCOMMITTED` | `tx_isolation = 'READ-UNCOMMITTED'` |
/// | `ISOLATION LEVEL READ COMMITTED` | `tx_isolation = 'READ-COMMITTED'` |
/// | `ISOLATION LEVEL REPEATABLE READ` | `tx_isolation = 'REPEATABLE-READ'` |
/// | `ISOLATION LEVEL SERIALIZABLE` | `tx_isolation = 'SERIALIZABLE'` |
/// | `READ ONLY` | `tx_read_only = 1` |
/// | `READ WRITE` | `tx_read_only = 0` |
///
/// Anything else (or nothing) is `None`: the statement stays opaque.
fn transaction_characteristics(parts: &[&[Token<'_>]]) -> Option<Vec<SessionAssign>> {
    let mut out = Vec::new();
    for part in parts {
        let words: Vec<Vec<u8>> = part
            .iter()
            .map(|t| (t.kind == TokenKind::Word).then(|| t.text.to_ascii_uppercase()))
            .collect::<Option<_>>()?;
        let words: Vec<&[u8]> = words.iter().map(Vec::as_slice).collect();
        let (name, value) = match words.as_slice() {
            [b"ISOLATION", b"LEVEL", b"READ", b"UNCOMMITTED"] => ("tx_isolation", "'READ-UNCOMMITTED'"),
            [b"ISOLATION", b"LEVEL", b"READ", b"COMMITTED"] => ("tx_isolation", "'READ-COMMITTED'"),
            [b"ISOLATION", b"LEVEL", b"REPEATABLE", b"READ"] => ("tx_isolation", "'REPEATABLE-READ'"),
            [b"ISOLATION", b"LEVEL", b"SERIALIZABLE"] => ("tx_isolation", "'SERIALIZABLE'"),
            [b"READ", b"ONLY"] => ("tx_read_only", "1"),
            [b"READ", b"WRITE"] => ("tx_read_only", "0"),
            _ => return None,
        };
        out.push(SessionAssign { name: name.into(), text: format!("{name} = {value}"), computed: false });
    }
    (!out.is_empty()).then_some(out)
}

/// Scope, lower-cased name and the remaining tokens of an assignment's left side.
fn variable_name<'t, 'a>(p: &'t [Token<'a>], scope: Scope) -> Option<(Scope, String, &'t [Token<'a>])> {
    let head = p.first()?;
    let (scope, mut name) = match head.kind {
        TokenKind::SysVar => {
            let body = head.text.get(2..)?;
            let lower = std::str::from_utf8(body).ok()?.to_ascii_lowercase();
            let (scope, name) = match lower.split_once('.') {
                Some(("global" | "persist" | "persist_only", n)) => (Scope::Global, n.to_string()),
                Some(("session" | "local", n)) => (Scope::Session, n.to_string()),
                _ => (Scope::Session, lower),
            };
            (scope, name.trim_matches('`').to_string())
        }
        TokenKind::Word => (scope, std::str::from_utf8(head.text).ok()?.to_ascii_lowercase()),
        TokenKind::QuotedIdent => {
            let inner = head.text.get(1..head.text.len().saturating_sub(1))?;
            (scope, std::str::from_utf8(inner).ok()?.replace("``", "`").to_ascii_lowercase())
        }
        _ => return None,
    };
    if head.kind == TokenKind::Word
        && matches!(Kw::of(head.text).as_bytes(), b"PASSWORD" | b"ROLE" | b"DEFAULT" | b"STATEMENT")
    {
        return None;
    }
    let mut i = 1;
    // Structured variables: `keycache.key_buffer_size`.
    while p.get(i).is_some_and(|t| t.is_punct(b".")) {
        let part = p.get(i + 1).filter(|t| t.kind == TokenKind::Word)?;
        name.push('.');
        name.push_str(&std::str::from_utf8(part.text).ok()?.to_ascii_lowercase());
        i += 2;
    }
    if name.is_empty() {
        return None;
    }
    // `@@x` has its own scope and leaves the sticky one alone.
    Some((scope, name, &p[i..]))
}

/// The schema named by a `USE db` statement (backquotes removed), if `sql` is exactly one.
///
/// `None` for several statements (the caller sees MULTI_STATEMENT and must treat the schema
/// as unknown) and for a name that is not UTF-8 (guessing its charset could pick the wrong
/// schema).
pub fn use_schema(sql: &[u8]) -> Option<String> {
    let toks = single_statement(sql)?;
    match toks.as_slice() {
        [u, db] if u.is_word(b"USE") => match db.kind {
            TokenKind::Word => std::str::from_utf8(db.text).ok().map(str::to_string),
            TokenKind::QuotedIdent if db.text.len() >= 2 && db.text.ends_with(b"`") => {
                let inner = std::str::from_utf8(&db.text[1..db.text.len() - 1]).ok()?;
                (!inner.is_empty()).then(|| inner.replace("``", "`"))
            }
            _ => None,
        },
        _ => None,
    }
}
