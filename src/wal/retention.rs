//! Retention: which sealed segments to purge by age and size. Pure; the clock is a
//! parameter.

use std::time::{Duration, SystemTime};

use super::{Lsn, Term};

/// A sealed segment as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seg {
    /// Its last record.
    pub last: (Lsn, Term),
    /// Its size in bytes.
    pub bytes: u64,
    /// When it was last written (its newest record's age).
    pub modified: Option<SystemTime>,
}

/// Chooses the log id to purge through: the longest prefix of `sealed` (oldest first,
/// excluding the tail) where each segment is older than `retention_hours` or the log
/// (`total_bytes`) is still above `retention_bytes_max`, and whose last LSN is below
/// `floor`. A floor of 0 (never set) purges nothing.
pub fn plan(
    sealed: &[Seg],
    total_bytes: u64,
    now: SystemTime,
    retention_hours: Option<u64>,
    retention_bytes_max: Option<u64>,
    floor: Lsn,
) -> Option<(Lsn, Term)> {
    let max_age = retention_hours.map(|h| Duration::from_secs(h.saturating_mul(3600)));
    let mut remaining = total_bytes;
    let mut chosen = None;
    for s in sealed {
        if s.last.0 >= floor {
            break;
        }
        let too_old = match (max_age, s.modified) {
            (Some(max), Some(m)) => now.duration_since(m).is_ok_and(|age| age > max),
            _ => false,
        };
        let too_big = retention_bytes_max.is_some_and(|max| remaining > max);
        if !(too_old || too_big) {
            break;
        }
        remaining = remaining.saturating_sub(s.bytes);
        chosen = Some(s.last);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(last: Lsn, bytes: u64, age_h: u64, now: SystemTime) -> Seg {
        Seg { last: (last, 1), bytes, modified: Some(now - Duration::from_secs(age_h * 3600)) }
    }

    #[test]
    fn age_size_and_floor() {
        let now = SystemTime::now();
        let s = [seg(10, 100, 50, now), seg(20, 100, 30, now), seg(30, 100, 1, now)];
        // By age: first two are older than 24h.
        assert_eq!(plan(&s, 400, now, Some(24), None, 1000), Some((20, 1)));
        // The floor stops it.
        assert_eq!(plan(&s, 400, now, Some(24), None, 20), Some((10, 1)));
        assert_eq!(plan(&s, 400, now, Some(24), None, 0), None);
        // By size: 400 total, max 250 → drop two segments (400 → 300 → 200).
        assert_eq!(plan(&s, 400, now, None, Some(250), 1000), Some((20, 1)));
        // Nothing configured: nothing purged.
        assert_eq!(plan(&s, 400, now, None, None, 1000), None);
    }
}
