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

#[cfg(test)]
mod tests {
    use super::{is_show_processlist, parse_kill};

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
