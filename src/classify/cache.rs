//! A fixed-size classification cache keyed by statement digest.
//!
//! Two-way set-associative: each digest maps to a bucket of two slots kept in
//! most-recently-used order, so two hot statements that share a bucket do not evict each
//! other on every call. The table is allocated once in `new`; `classify` never allocates
//! (the digest is hashed while tokenizing, and `Classification` is `Copy`). Keyed by the
//! full 64-bit digest: two different normalized statements share a key with probability
//! 2^-64 per pair.
//!
//! Not shared: it takes `&mut self`, so keep one per worker or connection task (sized to
//! taste with `new`), which also keeps hits free of atomics and locks.

use super::digest::digest;
use super::{classify, Classification};

/// Largest table `new` builds (entries; 16 bytes each: key and classification).
pub const CACHE_ENTRIES_MAX: usize = 1 << 16;
/// Slots per bucket.
const WAYS: usize = 2;

/// Digest-keyed cache of `classify` results.
#[derive(Debug, Clone)]
pub struct ClassifyCache {
    /// `WAYS` consecutive slots per bucket, most recently used first.
    slots: Box<[Option<(u64, Classification)>]>,
    bucket_mask: usize,
    hits: u64,
    misses: u64,
}

impl ClassifyCache {
    /// A cache of `entries` slots, rounded up to a power of two, within
    /// `WAYS..=CACHE_ENTRIES_MAX`.
    pub fn new(entries: usize) -> Self {
        let n = entries.clamp(WAYS, CACHE_ENTRIES_MAX).next_power_of_two();
        ClassifyCache { slots: vec![None; n].into_boxed_slice(), bucket_mask: n / WAYS - 1, hits: 0, misses: 0 }
    }

    /// First slot of the bucket for `key`.
    fn bucket(&self, key: u64) -> usize {
        // Fold the high bits in: FNV mixes them best.
        (((key ^ (key >> 32)) as usize) & self.bucket_mask) * WAYS
    }

    /// `classify(sql)`, from the cache when a statement of the same digest was seen.
    pub fn classify(&mut self, sql: &[u8]) -> Classification {
        let key = digest(sql);
        let b = self.bucket(key);
        match (self.slots[b], self.slots[b + 1]) {
            (Some((k, c)), _) if k == key => {
                self.hits += 1;
                return c;
            }
            (_, Some((k, c))) if k == key => {
                self.hits += 1;
                self.slots.swap(b, b + 1);
                return c;
            }
            _ => {}
        }
        self.misses += 1;
        let c = classify(sql);
        self.slots[b + 1] = self.slots[b];
        self.slots[b] = Some((key, c));
        c
    }

    /// The cached classification for a digest, if present.
    pub fn get(&self, key: u64) -> Option<Classification> {
        let b = self.bucket(key);
        self.slots[b..b + WAYS].iter().flatten().find(|(k, _)| *k == key).map(|&(_, c)| c)
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// (hits, misses) since creation.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Kind;

    #[test]
    fn hits_after_first_and_same_digest() {
        let mut c = ClassifyCache::new(100);
        assert_eq!(c.capacity(), 128);
        assert_eq!(c.classify(b"SELECT * FROM t WHERE id = 1").kind, Kind::Read);
        assert_eq!(c.classify(b"select * from t where id=2").kind, Kind::Read);
        assert_eq!(c.classify(b"SELECT * FROM t WHERE id = 1 FOR UPDATE").kind, Kind::LockingRead);
        assert_eq!(c.stats(), (1, 2));
        assert!(c.get(digest(b"SELECT * FROM t WHERE id = 9")).is_some());
    }

    #[test]
    fn slot_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Option<(u64, Classification)>>(), 16);
    }

    #[test]
    fn two_statements_in_one_bucket_both_stay() {
        let mut c = ClassifyCache::new(2); // one bucket
        for _ in 0..3 {
            c.classify(b"SELECT 1");
            c.classify(b"UPDATE t SET a = 1");
        }
        assert_eq!(c.stats(), (4, 2));
        c.classify(b"DELETE FROM t"); // evicts the least recently used (SELECT)
        c.classify(b"UPDATE t SET a = 2");
        assert_eq!(c.stats(), (5, 3));
    }
}
