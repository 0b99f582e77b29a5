//! What to send for a batch, decided without a server: which entries are already applied,
//! how entries group into MariaDB transactions, and the SQL text of each step. Pure.

use std::fmt::Write as _;

use crate::capture::{Entry, Origin, RowsEntry};
use crate::wal::Lsn;

use super::Committed;

/// Rows entries applied in one MariaDB transaction, at most (one commit per this many
/// small entries; more would only hold locks longer).
pub const TXN_ENTRIES_MAX: usize = 512;
/// Raw row-event bytes applied in one MariaDB transaction, at most (a single larger entry
/// still goes alone: an entry is never split).
pub const TXN_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Raw row-event bytes put in one `BINLOG` statement when several entries share it (the
/// base64 text is 4/3 of this; a single larger entry statement goes alone, in fragments
/// if it exceeds the server's `max_allowed_packet`).
pub const BINLOG_RAW_BYTES_MAX: usize = 1024 * 1024;

/// How entries group into MariaDB transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rows entries per transaction, at most.
    pub txn_entries_max: usize,
    /// Raw row-event bytes per transaction, at most.
    pub txn_bytes_max: usize,
    /// Raw row-event bytes per `BINLOG` statement shared by several entries, at most.
    pub binlog_raw_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            txn_entries_max: TXN_ENTRIES_MAX,
            txn_bytes_max: TXN_BYTES_MAX,
            binlog_raw_bytes_max: BINLOG_RAW_BYTES_MAX,
        }
    }
}

/// One step of a batch: a MariaDB transaction of rows entries, or one statement entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Consecutive rows entries with the same Format_description, within [`Limits`].
    Rows(&'a [Committed]),
    /// A statement entry, run alone (DDL commits implicitly).
    Statement(&'a Committed),
}

/// The batch is not in strictly increasing LSN order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfOrder {
    /// The LSN that came out of order.
    pub lsn: Lsn,
    /// The LSN before it.
    pub after: Lsn,
}

/// Raw row-event bytes of an entry.
pub fn rows_bytes(r: &RowsEntry) -> usize {
    r.statements.iter().map(Vec::len).sum()
}

/// Splits `batch` into steps, leaving out entries at or below `applied` (already applied
/// here). Fails if LSNs do not strictly increase (gaps are fine: blank and membership
/// entries never reach the applier).
pub fn plan<'a>(batch: &'a [Committed], applied: Lsn, limits: &Limits) -> Result<Vec<Step<'a>>, OutOfOrder> {
    for w in batch.windows(2) {
        if w[1].lsn <= w[0].lsn {
            return Err(OutOfOrder { lsn: w[1].lsn, after: w[0].lsn });
        }
    }
    let start = batch.partition_point(|c| c.lsn <= applied);
    let mut steps = Vec::new();
    let mut i = start;
    while i < batch.len() {
        // A batch is one entry: never split, and joins neighbours like any rows entry.
        let Some(first) = batch[i].entry.rows().first() else {
            steps.push(Step::Statement(&batch[i]));
            i += 1;
            continue;
        };
        let entry_bytes = |e: &Entry| e.rows().iter().map(rows_bytes).sum::<usize>();
        let same_format = |e: &Entry| e.rows().iter().all(|r| r.format == first.format);
        let mut end = i + 1;
        let mut bytes = entry_bytes(&batch[i].entry);
        while end < batch.len() && end - i < limits.txn_entries_max.max(1) {
            let e = &batch[end].entry;
            if e.rows().is_empty() || !same_format(e) || !same_format(&batch[i].entry) {
                break;
            }
            let b = entry_bytes(e);
            if bytes + b > limits.txn_bytes_max {
                break;
            }
            bytes += b;
            end += 1;
        }
        steps.push(Step::Rows(&batch[i..end]));
        i = end;
    }
    Ok(steps)
}

/// The xid of a captured rows entry (the key of its `shoal_meta.txn` marker row).
pub fn xid(r: &RowsEntry) -> Option<&str> {
    match &r.origin {
        Origin::Captured { xid } => Some(xid),
        Origin::Unmanaged { .. } => None,
    }
}

/// A string literal that means the same under every `sql_mode` (no quotes or backslashes
/// to escape): `_utf8mb4 X'…'`.
pub fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(12 + 2 * s.len());
    out.push_str("_utf8mb4 X'");
    for b in s.bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out.push('\'');
    out
}

/// The marker check for `xids`: a plain (consistent) read. It never waits on a prepared
/// XA transaction on this node: the leader does not apply what it captured itself
/// (`RaftApplier::skipping_own`), and a prepared transaction whose entry arrives committed
/// (an orphan: its session lost the leadership, or the node restarted) is committed
/// before its entry is looked at (`RaftApplier::committing_orphans`). A locking read here
/// would wait on the marker rows of orphans the log has not decided yet — and an index
/// scan locks rows it does not return — holding up the very entries that decide them.
/// `None` when there is nothing to check.
pub fn marker_query(xids: &[&str]) -> Option<String> {
    if xids.is_empty() {
        return None;
    }
    let list: Vec<String> = xids.iter().map(|x| string_literal(x)).collect();
    Some(format!("SELECT xid FROM shoal_meta.txn WHERE xid IN ({})", list.join(",")))
}

/// The upsert that records the applied position, in the same transaction as the rows.
pub fn applied_upsert(lsn: Lsn, term: u64) -> String {
    format!(
        "INSERT INTO shoal_meta.applied (id, lsn, term) VALUES (1, {lsn}, {term}) \
         ON DUPLICATE KEY UPDATE lsn = VALUES(lsn), term = VALUES(term)"
    )
}

/// The upsert that raises the applied position to (`lsn`, `term`), never lowering it
/// (`term` is set first: MariaDB assigns left to right).
pub fn applied_raise(lsn: Lsn, term: u64) -> String {
    format!(
        "INSERT INTO shoal_meta.applied (id, lsn, term) VALUES (1, {lsn}, {term}) \
         ON DUPLICATE KEY UPDATE term = IF(VALUES(lsn) > lsn, VALUES(term), term), lsn = GREATEST(lsn, VALUES(lsn))"
    )
}

/// Standard base64 with padding, appended to `out` (what `BINLOG` decodes).
pub fn base64_into(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.reserve(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63] as char);
        out.push(ALPHABET[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 { ALPHABET[(n >> 6) as usize & 63] as char } else { '=' });
        out.push(if chunk.len() > 2 { ALPHABET[n as usize & 63] as char } else { '=' });
    }
}

/// The `BINLOG` payloads (raw event bytes) for `entries`: their statements concatenated in
/// order, several per payload up to `raw_max` bytes. One payload holds whole statements
/// only (a Table_map and its rows must share one `BINLOG`), and MariaDB applies the events
/// of one `BINLOG` statement in order, closing tables at each statement end, as its replica
/// SQL thread does with a relay log.
pub fn binlog_payloads<'a>(entries: impl IntoIterator<Item = &'a RowsEntry>, raw_max: usize) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    for r in entries {
        for s in &r.statements {
            if !cur.is_empty() && cur.len() + s.len() > raw_max {
                out.push(std::mem::take(&mut cur));
            }
            cur.extend_from_slice(s);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// How one `BINLOG` payload is sent, given the largest query the server accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinlogSql {
    /// One `BINLOG '<base64>'` statement.
    Whole(String),
    /// Too long for one packet: two user variables, then
    /// `BINLOG @binlog_fragment_0, @binlog_fragment_1` (how `mariadb-binlog` prints large
    /// events), then the variables are cleared.
    Fragments([String; 4]),
}

/// The SQL for one payload; `None` if even two fragments exceed `query_bytes_max`.
pub fn binlog_sql(raw: &[u8], query_bytes_max: usize) -> Option<BinlogSql> {
    let mut b64 = String::new();
    base64_into(raw, &mut b64);
    const WHOLE_OVERHEAD: usize = "BINLOG ''".len();
    if b64.len() + WHOLE_OVERHEAD <= query_bytes_max {
        return Some(BinlogSql::Whole(format!("BINLOG '{b64}'")));
    }
    const SET_OVERHEAD: usize = "SET @binlog_fragment_0 = ''".len();
    let half = b64.len().div_ceil(2);
    if half + SET_OVERHEAD > query_bytes_max {
        return None;
    }
    let (a, b) = b64.split_at(half);
    Some(BinlogSql::Fragments([
        format!("SET @binlog_fragment_0 = '{a}'"),
        format!("SET @binlog_fragment_1 = '{b}'"),
        "BINLOG @binlog_fragment_0, @binlog_fragment_1".to_string(),
        "SET @binlog_fragment_0 = NULL, @binlog_fragment_1 = NULL".to_string(),
    ]))
}

/// A backquoted identifier.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A statement entry's session assignment as the applier runs it and then undoes it.
///
/// | recorded (the client's `SET` clause) | runs | reset |
/// |---|---|---|
/// | `name = value` (plain system variable) | `SET SESSION name = value` | `SET SESSION name = DEFAULT` |
/// | `NAMES cs [COLLATE c]` | `SET NAMES cs [COLLATE c]` | `SET NAMES DEFAULT` |
/// | `CHARACTER SET cs` / `CHARSET cs` | `SET CHARACTER SET cs` | `SET NAMES DEFAULT` |
/// | anything else | refused (the statement is not run) | — |
pub fn session_statements(s: &str) -> Result<(String, String), String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let charset = ["names ", "character set ", "charset "].iter().find(|p| lower.starts_with(*p));
    if let Some(p) = charset {
        let rest = &t[p.len()..];
        let safe = rest.chars().all(|c| c.is_ascii_alphanumeric() || "_ '`\"".contains(c));
        if !safe || rest.trim().is_empty() {
            return Err(format!("session assignment {s:?}: not a character set clause"));
        }
        let verb = if p.starts_with('n') { "NAMES" } else { "CHARACTER SET" };
        return Ok((format!("SET {verb} {rest}"), "SET NAMES DEFAULT".into()));
    }
    let (name, value) = session_assignment(t)?;
    Ok((format!("SET SESSION {name} = {value}"), format!("SET SESSION {name} = DEFAULT")))
}

/// A session assignment of a statement entry (`name = value`), split and checked: the
/// name must be a plain system variable name, so that `SET SESSION name = value` and the
/// reset `SET SESSION name = DEFAULT` cannot mean anything else.
pub fn session_assignment(s: &str) -> Result<(&str, &str), String> {
    let (name, value) =
        s.split_once('=').ok_or_else(|| format!("session assignment {s:?} is not of the form `name = value`"))?;
    let name = name.trim();
    let name = name.strip_prefix("@@session.").or_else(|| name.strip_prefix("@@")).unwrap_or(name);
    let plain = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !plain {
        return Err(format!("session assignment {s:?}: {name:?} is not a system variable name"));
    }
    Ok((name, value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::StatementEntry;

    #[test]
    fn session_statement_rows() {
        let run = |s: &str| session_statements(s).map(|(a, b)| format!("{a} | {b}"));
        assert_eq!(run("sql_mode = 'ANSI'").unwrap(), "SET SESSION sql_mode = 'ANSI' | SET SESSION sql_mode = DEFAULT");
        assert_eq!(run("NAMES utf8mb4").unwrap(), "SET NAMES utf8mb4 | SET NAMES DEFAULT");
        assert_eq!(
            run("names 'latin1' COLLATE latin1_bin").unwrap(),
            "SET NAMES 'latin1' COLLATE latin1_bin | SET NAMES DEFAULT"
        );
        assert_eq!(run("CHARACTER SET latin1").unwrap(), "SET CHARACTER SET latin1 | SET NAMES DEFAULT");
        assert!(run("NAMES x; DROP TABLE t").is_err());
        assert!(run("@x := 1").is_err());
    }

    fn rows(lsn: Lsn, format: &[u8], bytes: usize, xid: Option<&str>) -> Committed {
        let origin = match xid {
            Some(x) => Origin::Captured { xid: x.into() },
            None => Origin::Unmanaged { gtid: "0-1-1".into() },
        };
        Committed {
            lsn,
            term: 1,
            entry: Entry::Rows(RowsEntry { origin, format: format.to_vec(), statements: vec![vec![7; bytes]] }),
        }
    }

    fn stmt(lsn: Lsn) -> Committed {
        let s = StatementEntry { id: "s".into(), schema: None, session: vec![], sql: "CREATE TABLE t (i INT)".into() };
        Committed { lsn, term: 1, entry: Entry::Statement(s) }
    }

    fn shape(steps: &[Step]) -> Vec<Vec<Lsn>> {
        steps
            .iter()
            .map(|s| match s {
                Step::Rows(r) => r.iter().map(|c| c.lsn).collect(),
                Step::Statement(c) => vec![1000 + c.lsn],
            })
            .collect()
    }

    #[test]
    fn applied_entries_are_left_out_and_statements_run_alone() {
        let batch = [rows(3, b"f", 1, None), rows(4, b"f", 1, None), stmt(5), rows(6, b"f", 1, None)];
        let l = Limits::default();
        assert_eq!(shape(&plan(&batch, 0, &l).unwrap()), vec![vec![3, 4], vec![1005], vec![6]]);
        assert_eq!(shape(&plan(&batch, 3, &l).unwrap()), vec![vec![4], vec![1005], vec![6]]);
        assert_eq!(shape(&plan(&batch, 5, &l).unwrap()), vec![vec![6]]);
        assert!(plan(&batch, 6, &l).unwrap().is_empty());
    }

    #[test]
    fn transactions_are_bounded_by_count_bytes_and_format() {
        let batch: Vec<Committed> = (1..=5).map(|i| rows(i, b"f", 10, None)).collect();
        let l = Limits { txn_entries_max: 2, ..Limits::default() };
        assert_eq!(shape(&plan(&batch, 0, &l).unwrap()), vec![vec![1, 2], vec![3, 4], vec![5]]);
        let l = Limits { txn_bytes_max: 25, ..Limits::default() };
        assert_eq!(shape(&plan(&batch, 0, &l).unwrap()), vec![vec![1, 2], vec![3, 4], vec![5]]);
        // A single entry above the byte limit still goes (alone).
        let big = [rows(1, b"f", 100, None), rows(2, b"f", 1, None)];
        assert_eq!(shape(&plan(&big, 0, &l).unwrap()), vec![vec![1], vec![2]]);
        let mixed = [rows(1, b"f", 1, None), rows(2, b"g", 1, None), rows(3, b"g", 1, None)];
        assert_eq!(shape(&plan(&mixed, 0, &Limits::default()).unwrap()), vec![vec![1], vec![2, 3]]);
    }

    #[test]
    fn out_of_order_batches_are_refused() {
        let batch = [rows(3, b"f", 1, None), rows(3, b"f", 1, None)];
        assert_eq!(plan(&batch, 0, &Limits::default()), Err(OutOfOrder { lsn: 3, after: 3 }));
        let batch = [rows(4, b"f", 1, None), rows(2, b"f", 1, None)];
        assert_eq!(plan(&batch, 0, &Limits::default()), Err(OutOfOrder { lsn: 2, after: 4 }));
    }

    #[test]
    fn marker_query_uses_hex_literals() {
        assert_eq!(marker_query(&[]), None);
        let q = marker_query(&["shoal-1", "a'b\\"]).unwrap();
        assert_eq!(q, "SELECT xid FROM shoal_meta.txn WHERE xid IN (_utf8mb4 X'73686f616c2d31',_utf8mb4 X'6127625c')");
        assert_eq!(xid(&rows(1, b"f", 1, Some("x")).entry.rows()[0]), Some("x"));
        assert_eq!(xid(&rows(1, b"f", 1, None).entry.rows()[0]), None);
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (raw, want) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")]
        {
            let mut s = String::new();
            base64_into(raw.as_bytes(), &mut s);
            assert_eq!(s, want, "{raw}");
        }
        let mut s = String::new();
        base64_into(&[0xfb, 0xff, 0xbf], &mut s);
        assert_eq!(s, "+/+/");
    }

    #[test]
    fn payloads_keep_statements_whole() {
        let a = RowsEntry {
            origin: Origin::Unmanaged { gtid: String::new() },
            format: vec![],
            statements: vec![vec![1; 4], vec![2; 4]],
        };
        let b = RowsEntry { statements: vec![vec![3; 10]], ..a.clone() };
        let p = binlog_payloads([&a, &b], 8);
        assert_eq!(p, vec![[vec![1; 4], vec![2; 4]].concat(), vec![3; 10]]);
        assert_eq!(binlog_payloads([&a, &b], 100).len(), 1);
        assert!(binlog_payloads(std::iter::empty::<&RowsEntry>(), 8).is_empty());
    }

    #[test]
    fn large_payloads_go_in_two_fragments_or_not_at_all() {
        let raw = vec![0u8; 300]; // 400 base64 characters
        assert!(matches!(binlog_sql(&raw, 1000), Some(BinlogSql::Whole(s)) if s.len() == 409));
        let Some(BinlogSql::Fragments(f)) = binlog_sql(&raw, 300) else { panic!("fragments expected") };
        assert!(f[0].len() <= 300 && f[1].len() <= 300);
        assert_eq!(f[0].len() + f[1].len(), 400 + 2 * "SET @binlog_fragment_0 = ''".len());
        assert_eq!(binlog_sql(&raw, 150), None);
    }

    #[test]
    fn session_assignments_are_checked() {
        assert_eq!(session_assignment("sql_mode = 'ANSI_QUOTES'"), Ok(("sql_mode", "'ANSI_QUOTES'")));
        assert_eq!(session_assignment("@@session.time_zone='+00:00'"), Ok(("time_zone", "'+00:00'")));
        assert!(session_assignment("sql_mode").is_err());
        assert!(session_assignment("x; DROP TABLE t = 1").is_err());
        assert!(session_assignment(" = 1").is_err());
        assert_eq!(quote_ident("a`b"), "`a``b`");
    }
}
