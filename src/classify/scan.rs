//! Lexical scan of one statement: the flags (see the table in `Flags`) and the few facts
//! the kind decision needs from past the first keywords (`INTO` target, sequence writes).
//!
//! Flags are lexical: a `NOW(` anywhere in the statement sets `NON_DETERMINISTIC`, even in a
//! column default of a `CREATE TABLE`. Only the body of a stored-program definition is
//! left out (see `kind::compound_kind`), because it does not run when it is defined.
//!
//! | tokens                                        | flag                     |
//! |-----------------------------------------------|--------------------------|
//! | `FOR UPDATE`                                  | FOR_UPDATE               |
//! | `FOR SHARE`, `LOCK IN SHARE MODE`             | FOR_SHARE                |
//! | `INTO` at depth 0 (recorded; kind decides)    | INTO (SELECT-like only)  |
//! | `GET_LOCK(`                                   | GET_LOCK                 |
//! | `RELEASE_LOCK(`, `RELEASE_ALL_LOCKS(`         | RELEASE_LOCK             |
//! | `LAST_INSERT_ID(`, `@@last_insert_id`, `@@identity` | LAST_INSERT_ID           |
//! | `FOUND_ROWS(`                                 | FOUND_ROWS               |
//! | `SQL_CALC_FOUND_ROWS`                         | CALC_FOUND_ROWS          |
//! | `NEXT VALUE FOR`, `NEXTVAL(`, `SETVAL(`       | SEQUENCE (+ writes)      |
//! | `PREVIOUS VALUE FOR`, `LASTVAL(`              | SEQUENCE                 |
//! | `UUID(` `UUID_SHORT(` `RAND(` `SYSDATE(` `NOW(` `CURDATE(` `CURTIME(` `UTC_*(` `UNIX_TIMESTAMP(` `CONNECTION_ID(` `RANDOM_BYTES(` `SYS_GUID(` `CURRENT_TIMESTAMP` `CURRENT_DATE` `CURRENT_TIME` `LOCALTIME` `LOCALTIMESTAMP` | NON_DETERMINISTIC |
//! | `@name` not glued to a preceding name/string (`'u'@'host'` is an account) | USER_VARIABLE |
//! | hint token containing `shoal:leader`          | HINT_LEADER              |
//! | `ROW_COUNT(`                                  | ROW_COUNT                |
//! | `CONNECTION_ID(`                              | CONNECTION_ID (+ NON_DETERMINISTIC) |
//! | `@@[scope.]warning_count`, `@@[scope.]error_count`; `WARNINGS`/`ERRORS` in a statement that starts with `SHOW`; `DIAGNOSTICS` after `GET`, `CURRENT` or `STACKED` | DIAGNOSTICS |

use super::token::{TokenKind, Tokenizer};
use super::Flags;

/// Longest keyword compared by value; longer words are identifiers.
pub const KEYWORD_BYTES_MAX: usize = 24;

/// A word upper-cased into a stack buffer, for `match` on keywords without allocating.
#[derive(Clone, Copy)]
pub struct Kw {
    buf: [u8; KEYWORD_BYTES_MAX],
    len: usize,
}

impl Kw {
    /// Upper-cased `word`, or an empty keyword when it is too long to be one.
    pub fn of(word: &[u8]) -> Kw {
        let mut kw = Kw { buf: [0; KEYWORD_BYTES_MAX], len: 0 };
        if word.len() <= KEYWORD_BYTES_MAX {
            for (d, s) in kw.buf.iter_mut().zip(word) {
                *d = s.to_ascii_uppercase();
            }
            kw.len = word.len();
        }
        kw
    }
    /// The upper-cased bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Where a depth-0 `INTO` sends the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntoTarget {
    /// `INTO OUTFILE` / `INTO DUMPFILE`: a file on the server.
    File,
    /// `INTO @var` or a stored-program variable, or a table (`INSERT INTO`).
    Other,
}

/// What the lexical scan of one statement found.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scan {
    /// Lexical flags (no INTO: the kind decision adds it for SELECT-like statements).
    pub flags: Flags,
    /// First `INTO` at parenthesis depth 0.
    pub into: Option<IntoTarget>,
    /// `NEXT VALUE FOR`, `NEXTVAL(` or `SETVAL(`: the sequence changes.
    pub sequence_write: bool,
    /// The statement had at least one token besides hints.
    pub nonempty: bool,
}

/// Flag for a function name seen right before `(`.
fn function_flag(kw: &[u8]) -> Option<(Flags, bool)> {
    let f = match kw {
        b"GET_LOCK" => Flags::GET_LOCK,
        b"RELEASE_LOCK" | b"RELEASE_ALL_LOCKS" => Flags::RELEASE_LOCK,
        b"LAST_INSERT_ID" => Flags::LAST_INSERT_ID,
        b"FOUND_ROWS" => Flags::FOUND_ROWS,
        b"NEXTVAL" | b"SETVAL" => return Some((Flags::SEQUENCE, true)),
        b"LASTVAL" => Flags::SEQUENCE,
        b"ROW_COUNT" => Flags::ROW_COUNT,
        b"CONNECTION_ID" => Flags::CONNECTION_ID | Flags::NON_DETERMINISTIC,
        b"UUID" | b"UUID_SHORT" | b"RAND" | b"SYSDATE" | b"NOW" | b"CURDATE" | b"CURTIME" | b"UTC_DATE"
        | b"UTC_TIME" | b"UTC_TIMESTAMP" | b"UNIX_TIMESTAMP" | b"RANDOM_BYTES" | b"SYS_GUID" => {
            Flags::NON_DETERMINISTIC
        }
        _ => return None,
    };
    Some((f, false))
}

/// Non-deterministic keywords usable without parentheses.
fn bare_nondeterministic(kw: &[u8]) -> bool {
    matches!(kw, b"CURRENT_TIMESTAMP" | b"CURRENT_DATE" | b"CURRENT_TIME" | b"LOCALTIME" | b"LOCALTIMESTAMP")
}

/// Flag for reading system variable `text` (`@@name`, `@@session.name`, …):
///
/// | variable | flag |
/// |---|---|
/// | `warning_count`, `error_count` | DIAGNOSTICS |
/// | `last_insert_id`, `identity` | LAST_INSERT_ID (the insert id, as `LAST_INSERT_ID()` gives it) |
fn sysvar_flag(text: &[u8]) -> Option<Flags> {
    let name = text.get(2..).unwrap_or_default();
    let name = match name.iter().position(|b| *b == b'.') {
        Some(dot) => &name[dot + 1..],
        None => name,
    };
    if is(name, b"WARNING_COUNT") || is(name, b"ERROR_COUNT") {
        Some(Flags::DIAGNOSTICS)
    } else if is(name, b"LAST_INSERT_ID") || is(name, b"IDENTITY") {
        Some(Flags::LAST_INSERT_ID)
    } else {
        None
    }
}

/// True when `text` contains `shoal:leader`, ignoring ASCII case.
fn has_leader_hint(text: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"shoal:leader";
    text.windows(NEEDLE.len()).any(|w| w.eq_ignore_ascii_case(NEEDLE))
}

/// `word` equals the upper-case keyword `kw`, ignoring ASCII case (length checked first:
/// most words are rejected without touching their bytes).
fn is(word: &[u8], kw: &[u8]) -> bool {
    word.len() == kw.len() && word.eq_ignore_ascii_case(kw)
}

/// Scans one statement from `toks` up to and including its `;` (or to the end of the input
/// when `to_end`, for compound statements whose body holds `;`).
pub fn scan_statement(toks: &mut Tokenizer<'_>, to_end: bool) -> Scan {
    let mut scan = Scan::default();
    let mut depth: usize = 0;
    // Texts of the last two significant tokens when they are words, else empty.
    let mut p1: &[u8] = b"";
    let mut p2: &[u8] = b"";
    let mut prev_end_glue = false; // previous token can own an `@host` part
    let mut pending_into = false;
    let mut starts_with_show = None;
    for tok in toks.by_ref() {
        if tok.kind == TokenKind::Semi && !to_end {
            break;
        }
        if tok.kind == TokenKind::Hint {
            if has_leader_hint(tok.text) {
                scan.flags |= Flags::HINT_LEADER;
            }
            continue;
        }
        scan.nonempty = true;
        let word: &[u8] = if tok.kind == TokenKind::Word { tok.text } else { b"" };
        let show = *starts_with_show.get_or_insert(is(word, b"SHOW"));
        if pending_into {
            pending_into = false;
            let file = is(word, b"OUTFILE") || is(word, b"DUMPFILE");
            scan.into.get_or_insert(if file { IntoTarget::File } else { IntoTarget::Other });
        }
        match tok.kind {
            TokenKind::Word => match word.len() {
                3 if is(word, b"FOR") && is(p1, b"VALUE") => {
                    if is(p2, b"NEXT") {
                        scan.flags |= Flags::SEQUENCE;
                        scan.sequence_write = true;
                    } else if is(p2, b"PREVIOUS") {
                        scan.flags |= Flags::SEQUENCE;
                    }
                }
                4 if depth == 0 && is(word, b"INTO") => pending_into = true,
                5 if is(word, b"SHARE") && (is(p1, b"FOR") || (is(p1, b"IN") && is(p2, b"LOCK"))) => {
                    scan.flags |= Flags::FOR_SHARE
                }
                6 if is(word, b"UPDATE") && is(p1, b"FOR") => scan.flags |= Flags::FOR_UPDATE,
                6 | 8 if show && (is(word, b"ERRORS") || is(word, b"WARNINGS")) => scan.flags |= Flags::DIAGNOSTICS,
                11 if is(word, b"DIAGNOSTICS") && (is(p1, b"GET") || is(p1, b"CURRENT") || is(p1, b"STACKED")) => {
                    scan.flags |= Flags::DIAGNOSTICS
                }
                19 if is(word, b"SQL_CALC_FOUND_ROWS") => scan.flags |= Flags::CALC_FOUND_ROWS,
                9 | 12 | 14 | 17 if bare_nondeterministic(Kw::of(word).as_bytes()) => {
                    scan.flags |= Flags::NON_DETERMINISTIC
                }
                _ => {}
            },
            TokenKind::Punct if tok.text == b"(" => {
                depth += 1;
                if !p1.is_empty() {
                    if let Some((f, writes)) = function_flag(Kw::of(p1).as_bytes()) {
                        scan.flags |= f;
                        scan.sequence_write |= writes;
                    }
                }
            }
            TokenKind::Punct if tok.text == b")" => depth = depth.saturating_sub(1),
            TokenKind::UserVar if tok.gap_before || !prev_end_glue => scan.flags |= Flags::USER_VARIABLE,
            TokenKind::SysVar => scan.flags |= sysvar_flag(tok.text).unwrap_or_default(),
            _ => {}
        }
        prev_end_glue = matches!(tok.kind, TokenKind::Word | TokenKind::Str | TokenKind::QuotedIdent);
        p2 = p1;
        p1 = word;
    }
    if pending_into {
        scan.into.get_or_insert(IntoTarget::Other);
    }
    scan
}
