//! A fixed-size classification cache keyed by statement digest.
//!
//! Direct-mapped: each digest has one slot; a new statement evicts the old one there. The
//! table is allocated once in `new`; `classify` never allocates (the digest is hashed while
//! tokenizing, and `Classification` is `Copy`). Keyed by the full 64-bit digest: two
//! different normalized statements share a key with probability 2^-64 per pair.
//!
//! Not shared: it takes `&mut self`, so keep one per worker or connection task (sized to
//! taste with `new`), which also keeps hits free of atomics and locks.

use super::digest::digest;
use super::{classify, Classification};

/// Largest table `new` builds (entries; 16 bytes each with the key).
pub const CACHE_ENTRIES_MAX: usize = 1 << 16;

/// Digest-keyed cache of `classify` results.
#[derive(Debug, Clone)]
pub struct ClassifyCache {
    slots: Box<[Option<(u64, Classification)>]>,
    mask: usize,
    hits: u64,
    misses: u64,
}

impl ClassifyCache {
    /// A cache of `entries` slots, rounded up to a power of two, within 1..=CACHE_ENTRIES_MAX.
    pub fn new(entries: usize) -> Self {
        let n = entries.clamp(1, CACHE_ENTRIES_MAX).next_power_of_two();
        ClassifyCache {
            slots: vec![None; n].into_boxed_slice(),
            mask: n - 1,
            hits: 0,
            misses: 0,
        }
    }

    fn slot(&self, key: u64) -> usize {
        // The high bits of FNV mix best; fold them into the index.
        ((key ^ (key >> 32)) as usize) & self.mask
    }

    /// `classify(sql)`, from the cache when a statement of the same digest was seen.
    pub fn classify(&mut self, sql: &[u8]) -> Classification {
        let key = digest(sql);
        let i = self.slot(key);
        if let Some((k, c)) = self.slots[i] {
            if k == key {
                self.hits += 1;
                return c;
            }
        }
        self.misses += 1;
        let c = classify(sql);
        self.slots[i] = Some((key, c));
        c
    }

    /// The cached classification for a digest, if present.
    pub fn get(&self, key: u64) -> Option<Classification> {
        self.slots[self.slot(key)]
            .filter(|(k, _)| *k == key)
            .map(|(_, c)| c)
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
        assert_eq!(
            c.classify(b"SELECT * FROM t WHERE id = 1 FOR UPDATE").kind,
            Kind::LockingRead
        );
        assert_eq!(c.stats(), (1, 2));
        assert!(c.get(digest(b"SELECT * FROM t WHERE id = 9")).is_some());
    }
}
