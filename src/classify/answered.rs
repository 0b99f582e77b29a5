//! Statements shoal answers itself rather than a backend (`frontend::answers`): their
//! recognition, pure.

/// Parses `KILL [QUERY | CONNECTION] <number>`; other KILL forms go to the backend.
pub fn parse_kill(sql: &[u8]) -> Option<(bool, u64)> {
    let text = std::str::from_utf8(sql).ok()?;
    let mut words = text.trim().trim_end_matches(';').split_ascii_whitespace();
    if !words.next()?.eq_ignore_ascii_case("kill") {
        return None;
    }
    let mut word = words.next()?;
    let mut query_only = false;
    if word.eq_ignore_ascii_case("query") {
        query_only = true;
        word = words.next()?;
    } else if word.eq_ignore_ascii_case("connection") {
        word = words.next()?;
    }
    let id = word.parse().ok()?;
    words.next().is_none().then_some((query_only, id))
}

/// Whether `sql` is `SHOW [FULL] PROCESSLIST`.
pub fn is_show_processlist(sql: &[u8]) -> bool {
    let text = String::from_utf8_lossy(sql);
    let mut words = text.trim().trim_end_matches(';').split_ascii_whitespace();
    if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("show")) {
        return false;
    }
    let mut w = words.next();
    if w.is_some_and(|w| w.eq_ignore_ascii_case("full")) {
        w = words.next();
    }
    w.is_some_and(|w| w.eq_ignore_ascii_case("processlist")) && words.next().is_none()
}

/// Longest text [`is_last_lsn_query`] looks at: every read asks, so longer ones are
/// refused before any work.
pub const LAST_LSN_QUERY_BYTES_MAX: usize = 64;

/// Whether `sql` is `SELECT @@shoal_last_lsn` (any case, optional `;`).
pub fn is_last_lsn_query(sql: &[u8]) -> bool {
    if sql.len() > LAST_LSN_QUERY_BYTES_MAX {
        return false;
    }
    let text = String::from_utf8_lossy(sql);
    let mut words = text.trim().trim_end_matches(';').split_ascii_whitespace();
    words.next().is_some_and(|w| w.eq_ignore_ascii_case("select"))
        && words.next().is_some_and(|w| w.eq_ignore_ascii_case("@@shoal_last_lsn"))
        && words.next().is_none()
}

/// The LSN a statement names in a leading `/*shoal:lsn=N*/` comment: the client read it
/// with `SELECT @@shoal_last_lsn` on another connection and wants this read to see it.
pub fn lsn_hint(sql: &[u8]) -> Option<u64> {
    let rest = sql.trim_ascii_start().strip_prefix(b"/*")?;
    let end = rest.windows(2).position(|w| w == b"*/")?;
    let body = std::str::from_utf8(&rest[..end]).ok()?.trim();
    let value = body.strip_prefix("shoal:lsn=")?;
    value.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{is_last_lsn_query, is_show_processlist, lsn_hint, parse_kill};

    #[test]
    fn last_lsn_forms() {
        assert!(is_last_lsn_query(b"SELECT @@shoal_last_lsn"));
        assert!(is_last_lsn_query(b" select @@SHOAL_LAST_LSN ;"));
        assert!(!is_last_lsn_query(b"SELECT @@shoal_last_lsn, 1"));
        assert!(!is_last_lsn_query(b"SELECT @@last_gtid"));
    }

    #[test]
    fn lsn_hints() {
        assert_eq!(lsn_hint(b"/*shoal:lsn=42*/ SELECT 1"), Some(42));
        assert_eq!(lsn_hint(b"  /* shoal:lsn=7 */SELECT 1"), Some(7));
        assert_eq!(lsn_hint(b"/*shoal:leader*/ SELECT 1"), None);
        assert_eq!(lsn_hint(b"SELECT 1 /*shoal:lsn=3*/"), None);
        assert_eq!(lsn_hint(b"/*shoal:lsn=x*/ SELECT 1"), None);
        assert_eq!(lsn_hint(b"/*shoal:lsn=5"), None);
    }

    #[test]
    fn kill_forms() {
        assert_eq!(parse_kill(b"KILL 5"), Some((false, 5)));
        assert_eq!(parse_kill(b" kill query 17;"), Some((true, 17)));
        assert_eq!(parse_kill(b"KILL CONNECTION 3"), Some((false, 3)));
        assert_eq!(parse_kill(b"KILL USER bob"), None);
        assert_eq!(parse_kill(b"KILL QUERY ID 4"), None);
        assert_eq!(parse_kill(b"KILLER 1"), None);
    }

    #[test]
    fn processlist_forms() {
        assert!(is_show_processlist(b"show processlist"));
        assert!(is_show_processlist(b"SHOW FULL PROCESSLIST;"));
        assert!(!is_show_processlist(b"SHOW PROCESSLIST LIKE 'x'"));
        assert!(!is_show_processlist(b"SHOW TABLES"));
    }
}
