//! Session functions shoal answers itself by rewriting the statement text: a pooled
//! connection belongs to whichever session used it last, so what it would say for
//! `CONNECTION_ID()`, `ROW_COUNT()` or `FOUND_ROWS()` is not this session's answer.
//! The session knows its own: its shoal connection id (the one in the greeting and the
//! one `KILL` takes), and the affected rows and result rows of its previous statement.
//!
//! | call (no arguments) | replaced by | when |
//! |---|---|---|
//! | `CONNECTION_ID()` | `CAST(<shoal id> AS UNSIGNED)` | always |
//! | `ROW_COUNT()` | `CAST(<n> AS SIGNED)` | `row_count` given |
//! | `FOUND_ROWS()` | `CAST(<n> AS UNSIGNED)` | `found_rows` given (not after `SQL_CALC_FOUND_ROWS`, whose count only the server knows: the session is pinned for it) |
//!
//! A call inside an item of the outermost select list keeps the column name the client
//! would see: the item gets `` AS `<its original text>` `` unless it has an alias. Text in
//! strings, comments and quoted identifiers is never touched.

use super::token::{Token, TokenKind, Tokenizer};

/// Longest select item (bytes) given its original text as alias; MariaDB names columns
/// from at most this much text.
pub const ALIAS_BYTES_MAX: usize = 250;

/// This session's answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionValues {
    /// shoal's connection id.
    pub connection_id: u64,
    /// The previous statement's `ROW_COUNT()`; `None` leaves the call alone.
    pub row_count: Option<i64>,
    /// The previous statement's `FOUND_ROWS()`; `None` leaves the call alone.
    pub found_rows: Option<u64>,
}

/// Words that end a depth-0 select list.
fn ends_select_list(t: &Token<'_>) -> bool {
    const ENDS: [&[u8]; 14] = [
        b"FROM",
        b"INTO",
        b"WHERE",
        b"GROUP",
        b"HAVING",
        b"ORDER",
        b"LIMIT",
        b"UNION",
        b"WINDOW",
        b"FOR",
        b"LOCK",
        b"PROCEDURE",
        b"EXCEPT",
        b"INTERSECT",
    ];
    t.kind == TokenKind::Semi || ENDS.iter().any(|w| t.is_word(w))
}

/// Select modifiers that precede the first item (not part of its name).
fn is_select_modifier(t: &Token<'_>) -> bool {
    const MODS: [&[u8]; 12] = [
        b"ALL",
        b"DISTINCT",
        b"DISTINCTROW",
        b"HIGH_PRIORITY",
        b"STRAIGHT_JOIN",
        b"SQL_SMALL_RESULT",
        b"SQL_BIG_RESULT",
        b"SQL_BUFFER_RESULT",
        b"SQL_CACHE",
        b"SQL_NO_CACHE",
        b"SQL_CALC_FOUND_ROWS",
        b"STATEMENT",
    ];
    MODS.iter().any(|w| t.is_word(w))
}

/// A token after which a value has ended (so a following name is an alias).
fn ends_value(t: &Token<'_>) -> bool {
    matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent | TokenKind::Str | TokenKind::Num) || t.is_punct(b")")
}

/// One select item: byte span and whether it already names its column.
struct Item {
    start: usize,
    end: usize,
    aliased: bool,
    rewritten: bool,
}

/// The statement with the calls replaced, or `None` when nothing was replaced.
pub fn rewrite_session_functions(sql: &[u8], v: &SessionValues) -> Option<Vec<u8>> {
    let toks: Vec<Token<'_>> = Tokenizer::new(sql).collect();
    // (start, end, literal, inside the outermost select list)
    let mut edits: Vec<(usize, usize, String, bool)> = Vec::new();
    let mut items: Vec<Item> = Vec::new();
    let mut depth = 0usize;
    // Inside the outermost select list: the item being read (its first and last token).
    let mut list = false;
    let mut item: Option<(usize, usize)> = None;
    let close_item = |item: &mut Option<(usize, usize)>, items: &mut Vec<Item>| {
        if let Some((first, last)) = item.take() {
            let span: &[Token<'_>] = &toks[first..=last];
            let as_word = span.iter().any(|t| t.is_word(b"AS"));
            let n = span.len();
            let trailing_name = n >= 2
                && matches!(span[n - 1].kind, TokenKind::Word | TokenKind::QuotedIdent | TokenKind::Str)
                && ends_value(&span[n - 2]);
            let end = toks[last].start + toks[last].text.len();
            items.push(Item { start: toks[first].start, end, aliased: as_word || trailing_name, rewritten: false });
        }
    };
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        if depth == 0 {
            if t.is_word(b"SELECT") && !list {
                list = true;
                i += 1;
                while i < toks.len() && is_select_modifier(&toks[i]) {
                    i += 1;
                }
                continue;
            }
            if list && ends_select_list(&t) {
                close_item(&mut item, &mut items);
                list = false;
            } else if list && t.is_punct(b",") {
                close_item(&mut item, &mut items);
                i += 1;
                continue;
            }
        }
        if t.is_punct(b"(") {
            depth += 1;
        } else if t.is_punct(b")") {
            depth = depth.saturating_sub(1);
        }
        if list && t.kind != TokenKind::Hint {
            item = Some(item.map_or((i, i), |(first, _)| (first, i)));
        }
        let call = t.kind == TokenKind::Word
            && toks.get(i + 1).is_some_and(|n| n.is_punct(b"(") && !n.gap_before)
            && toks.get(i + 2).is_some_and(|n| n.is_punct(b")"));
        if call {
            let literal = if t.is_word(b"CONNECTION_ID") {
                Some(format!("CAST({} AS UNSIGNED)", v.connection_id))
            } else if t.is_word(b"ROW_COUNT") {
                v.row_count.map(|n| format!("CAST({n} AS SIGNED)"))
            } else if t.is_word(b"FOUND_ROWS") {
                v.found_rows.map(|n| format!("CAST({n} AS UNSIGNED)"))
            } else {
                None
            };
            if let Some(lit) = literal {
                let close = toks[i + 2];
                edits.push((t.start, close.start + 1, lit, list));
                if list {
                    item = Some(item.map_or((i, i + 2), |(first, _)| (first, i + 2)));
                }
                i += 3;
                continue;
            }
        }
        i += 1;
    }
    close_item(&mut item, &mut items);
    if edits.is_empty() {
        return None;
    }
    // Items that hold a call get a name (unless they have one).
    for (start, _, _, in_list) in &edits {
        if let Some(it) = items.iter_mut().find(|it| *in_list && it.start <= *start && *start < it.end) {
            it.rewritten = true;
        }
    }
    let mut out = Vec::with_capacity(sql.len() + 64);
    let mut at = 0;
    let mut aliases = items.iter().filter(|it| it.rewritten && !it.aliased).peekable();
    for (start, end, lit, _) in &edits {
        while let Some(it) = aliases.peek().filter(|it| it.end <= *start) {
            at = push_alias(&mut out, sql, at, it);
            aliases.next();
        }
        out.extend_from_slice(&sql[at..*start]);
        out.extend_from_slice(lit.as_bytes());
        at = *end;
    }
    for it in aliases {
        at = push_alias(&mut out, sql, at, it);
    }
    out.extend_from_slice(&sql[at..]);
    Some(out)
}

/// Copies up to the end of `it` and names its column after its original text.
fn push_alias(out: &mut Vec<u8>, sql: &[u8], at: usize, it: &Item) -> usize {
    out.extend_from_slice(&sql[at..it.end]);
    let text = &sql[it.start..it.end];
    if text.len() <= ALIAS_BYTES_MAX {
        out.extend_from_slice(b" AS `");
        for &b in text {
            if b == b'`' {
                out.push(b'`');
            }
            out.push(b);
        }
        out.push(b'`');
    }
    it.end
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: SessionValues = SessionValues { connection_id: 42, row_count: Some(3), found_rows: Some(7) };

    fn rw(sql: &str) -> Option<String> {
        rewrite_session_functions(sql.as_bytes(), &V).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn select_items_keep_their_column_names() {
        assert_eq!(rw("SELECT CONNECTION_ID()").unwrap(), "SELECT CAST(42 AS UNSIGNED) AS `CONNECTION_ID()`");
        assert_eq!(
            rw("select connection_id(), row_count() , 1").unwrap(),
            "select CAST(42 AS UNSIGNED) AS `connection_id()`, CAST(3 AS SIGNED) AS `row_count()` , 1"
        );
        assert_eq!(
            rw("SELECT CONNECTION_ID() + 1 FROM t").unwrap(),
            "SELECT CAST(42 AS UNSIGNED) + 1 AS `CONNECTION_ID() + 1` FROM t"
        );
        assert_eq!(
            rw("SELECT DISTINCT FOUND_ROWS()").unwrap(),
            "SELECT DISTINCT CAST(7 AS UNSIGNED) AS `FOUND_ROWS()`"
        );
    }

    #[test]
    fn aliased_items_and_other_clauses_are_only_replaced() {
        assert_eq!(rw("SELECT CONNECTION_ID() AS id").unwrap(), "SELECT CAST(42 AS UNSIGNED) AS id");
        assert_eq!(rw("SELECT CONNECTION_ID() id").unwrap(), "SELECT CAST(42 AS UNSIGNED) id");
        assert_eq!(
            rw("SELECT a FROM t WHERE owner = CONNECTION_ID()").unwrap(),
            "SELECT a FROM t WHERE owner = CAST(42 AS UNSIGNED)"
        );
        assert_eq!(
            rw("INSERT INTO t VALUES (CONNECTION_ID())").unwrap(),
            "INSERT INTO t VALUES (CAST(42 AS UNSIGNED))"
        );
        assert_eq!(
            rw("SELECT (SELECT ROW_COUNT())").unwrap(),
            "SELECT (SELECT CAST(3 AS SIGNED)) AS `(SELECT ROW_COUNT())`"
        );
    }

    #[test]
    fn strings_comments_and_other_functions_are_left_alone() {
        assert_eq!(rw("SELECT 'CONNECTION_ID()', `CONNECTION_ID()` FROM t /* CONNECTION_ID() */"), None);
        assert_eq!(rw("SELECT LAST_INSERT_ID(), NOW()"), None);
        assert_eq!(rw("SELECT ROW_COUNT(1)"), None, "not the argument-less call");
        let v = SessionValues { connection_id: 1, row_count: None, found_rows: None };
        assert_eq!(rewrite_session_functions(b"SELECT ROW_COUNT(), FOUND_ROWS()", &v), None);
    }

    #[test]
    fn backquotes_in_an_alias_are_doubled() {
        assert_eq!(
            rw("SELECT CONNECTION_ID() + `x`").unwrap(),
            "SELECT CAST(42 AS UNSIGNED) + `x` AS `CONNECTION_ID() + ``x```"
        );
    }
}
