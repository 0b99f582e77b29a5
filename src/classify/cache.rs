//! A fixed-size classification cache.
//!
//! Two tables of the same shape (four-way set-associative, most recently used first in each
//! bucket, allocated once in `new`), and two entry points:
//!
//! | method               | key                                           | hit when                               | hit cost (bench) |
//! |----------------------|-----------------------------------------------|----------------------------------------|------------------|
//! | `classify`           | keyed hash of the statement bytes             | the same text was seen (`COMMIT`, pings, connector set-up, ORM statements with placeholders, repeated queries) | ~20 ns |
//! | `classify_by_digest` | keyed hash of the normalized text (`normalize`) | a statement of the same shape was seen (literals, spacing, case differ) | ~ one `classify` |
//!
//! Why `classify` does not fall back to the digest table: computing a digest needs a full
//! tokenizing pass plus normalization, which costs about what `classify` itself costs
//! (`benches/classify.rs`: ~240 ns against ~225 ns per corpus statement), so on a text miss
//! classifying directly is the cheaper path. The digest table stays for callers that want
//! shape-level caching (and for when classification grows costlier). Neither path
//! allocates.
//!
//! Keys are SipHash-1-3 with a random key per cache (`RandomState`), not the public FNV
//! `digest`: FNV collisions can be crafted, and a client that could make its write collide
//! with a cached read would get it routed as a read. With a secret key, two different texts
//! share a key with probability 2^-64.
//!
//! Not shared: it takes `&mut self`, so keep one per worker or connection task (sized to
//! taste with `new`), which also keeps hits free of atomics and locks.

use super::digest::{emit, HashSink};
use super::{classify, Classification};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Largest table `new` builds (entries per table; 16 bytes each: key and classification).
pub const CACHE_ENTRIES_MAX: usize = 1 << 16;
/// Slots per bucket: four 16-byte slots fill one 64-byte cache line, and make a bucket
/// overflow (three hot statements thrashing two slots) rare at any fill below capacity.
const WAYS: usize = 4;

type Slot = Option<(u64, Classification)>;

/// Four-way set-associative map from a 64-bit key to a classification.
#[derive(Debug, Clone)]
struct Table {
    /// `WAYS` consecutive slots per bucket, most recently used first.
    slots: Box<[Slot]>,
    bucket_mask: usize,
}

impl Table {
    fn new(n: usize) -> Self {
        Table { slots: vec![None; n].into_boxed_slice(), bucket_mask: n / WAYS - 1 }
    }

    fn bucket(&self, key: u64) -> usize {
        (key as usize & self.bucket_mask) * WAYS
    }

    /// The entry for `key`, made most recently used.
    fn get(&mut self, key: u64) -> Option<Classification> {
        let b = self.bucket(key);
        let bucket = &mut self.slots[b..b + WAYS];
        let i = bucket.iter().position(|s| matches!(s, Some((k, _)) if *k == key))?;
        let c = bucket[i].map(|(_, c)| c);
        bucket[..=i].rotate_right(1);
        c
    }

    fn peek(&self, key: u64) -> Option<Classification> {
        let b = self.bucket(key);
        self.slots[b..b + WAYS].iter().flatten().find(|(k, _)| *k == key).map(|&(_, c)| c)
    }

    /// Inserts as most recently used, evicting the least recently used of the bucket.
    fn insert(&mut self, key: u64, c: Classification) {
        let b = self.bucket(key);
        let bucket = &mut self.slots[b..b + WAYS];
        bucket.rotate_right(1);
        bucket[0] = Some((key, c));
    }
}

/// Hit and miss counts of a `ClassifyCache`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// `classify` answered from the exact-text table.
    pub text_hits: u64,
    /// `classify_by_digest` answered from the digest table.
    pub digest_hits: u64,
    /// Classified afresh (either entry point).
    pub misses: u64,
}

/// Cache of `classify` results keyed by exact text or by digest.
#[derive(Debug, Clone)]
pub struct ClassifyCache {
    keys: RandomState,
    text: Table,
    shapes: Table,
    stats: CacheStats,
}

impl ClassifyCache {
    /// A cache of `entries` slots per table, rounded up to a power of two, within
    /// `WAYS..=CACHE_ENTRIES_MAX`.
    pub fn new(entries: usize) -> Self {
        let n = entries.clamp(WAYS, CACHE_ENTRIES_MAX).next_power_of_two();
        ClassifyCache {
            keys: RandomState::new(),
            text: Table::new(n),
            shapes: Table::new(n),
            stats: CacheStats::default(),
        }
    }

    fn text_key(&self, sql: &[u8]) -> u64 {
        let mut h = self.keys.build_hasher();
        h.write(sql);
        h.finish()
    }

    fn digest_key(&self, sql: &[u8]) -> u64 {
        let mut h = HashSink::new(self.keys.build_hasher());
        emit(sql, &mut h);
        h.finish()
    }

    /// `classify(sql)`, from the cache when the same text was seen.
    pub fn classify(&mut self, sql: &[u8]) -> Classification {
        let key = self.text_key(sql);
        if let Some(c) = self.text.get(key) {
            self.stats.text_hits += 1;
            return c;
        }
        self.stats.misses += 1;
        let c = classify(sql);
        self.text.insert(key, c);
        c
    }

    /// `classify(sql)`, from the cache when a statement of the same digest was seen.
    pub fn classify_by_digest(&mut self, sql: &[u8]) -> Classification {
        let key = self.digest_key(sql);
        if let Some(c) = self.shapes.get(key) {
            self.stats.digest_hits += 1;
            return c;
        }
        self.stats.misses += 1;
        let c = classify(sql);
        self.shapes.insert(key, c);
        c
    }

    /// The cached classification of `sql` (by text, then by digest), without inserting.
    pub fn peek(&self, sql: &[u8]) -> Option<Classification> {
        self.text.peek(self.text_key(sql)).or_else(|| self.shapes.peek(self.digest_key(sql)))
    }

    /// Slots per table.
    pub fn capacity(&self) -> usize {
        self.text.slots.len()
    }

    /// Hits and misses since creation.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Kind;

    fn stats(text_hits: u64, digest_hits: u64, misses: u64) -> CacheStats {
        CacheStats { text_hits, digest_hits, misses }
    }

    #[test]
    fn by_text_and_by_digest() {
        let mut c = ClassifyCache::new(100);
        assert_eq!(c.capacity(), 128);
        assert_eq!(c.classify(b"SELECT * FROM t WHERE id = 1").kind, Kind::Read);
        assert_eq!(c.classify(b"SELECT * FROM t WHERE id = 1").kind, Kind::Read);
        assert_eq!(c.classify(b"select * from t where id=2").kind, Kind::Read);
        assert_eq!(c.stats(), stats(1, 0, 2));
        assert_eq!(c.classify_by_digest(b"SELECT * FROM t WHERE id = 1").kind, Kind::Read);
        assert_eq!(c.classify_by_digest(b"select * from t where id=2").kind, Kind::Read);
        let locking = c.classify_by_digest(b"SELECT * FROM t WHERE id = 1 FOR UPDATE");
        assert_eq!(locking.kind, Kind::LockingRead);
        assert_eq!(c.stats(), stats(1, 1, 4));
        assert!(c.peek(b"SELECT * FROM t WHERE id = 9").is_some());
        assert!(c.peek(b"DELETE FROM t").is_none());
    }

    #[test]
    fn slot_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 16);
    }

    #[test]
    fn bucket_keeps_the_most_recently_used() {
        let mut c = ClassifyCache::new(1); // one bucket of WAYS slots
        assert_eq!(c.capacity(), WAYS);
        let shapes: [&[u8]; 4] = [b"SELECT 1", b"UPDATE t SET a = 1", b"DELETE FROM t", b"COMMIT"];
        for _ in 0..3 {
            for s in shapes {
                c.classify_by_digest(s);
            }
        }
        assert_eq!(c.stats(), stats(0, 8, 4));
        c.classify_by_digest(b"SELECT 2"); // SELECT becomes most recently used
        c.classify_by_digest(b"ROLLBACK"); // evicts the least recently used: UPDATE
        c.classify_by_digest(b"SELECT 3");
        c.classify_by_digest(b"UPDATE t SET a = 2");
        assert_eq!(c.stats(), stats(0, 10, 6));
    }

    #[test]
    fn keys_differ_between_caches() {
        let (a, b) = (ClassifyCache::new(8), ClassifyCache::new(8));
        assert_ne!(a.text_key(b"SELECT 1"), b.text_key(b"SELECT 1"));
    }
}
