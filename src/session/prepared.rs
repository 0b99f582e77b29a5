//! Prepared statements, multiplexed.
//!
//! * [`StmtCache`] — one per proxy: the prepare response for each (schema, SQL) text, so a
//!   repeated `COM_STMT_PREPARE` is answered without a backend round trip. (Column
//!   metadata in a cached response reflects the first preparer's `character_set_results`;
//!   every execute sends fresh metadata, which is what clients decode rows with.)
//! * [`ClientStmts`] — per client: the ids shoal handed out, each pointing at a cache
//!   entry, never at a backend statement id.
//! * [`BackendStmts`] — per backend connection: which cache entries are prepared there
//!   and under which backend id, bounded (least recently used are closed).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// A statement as prepared once on some backend connection.
#[derive(Debug)]
pub struct PreparedMeta {
    /// Process-unique id: the key in every [`BackendStmts`].
    pub id: u64,
    /// Schema the statement was prepared in (names resolve against it).
    pub schema: Option<String>,
    /// The SQL text, re-sent to prepare it on other connections.
    pub sql: Bytes,
    /// Number of `?` parameters.
    pub params: u16,
    /// Classification of the SQL (routing and pinning of every execute).
    pub class: crate::classify::Classification,
    /// The backend's prepare response (frames with headers), replayed to clients with
    /// the statement id patched.
    pub response: Bytes,
}

static NEXT_META_ID: AtomicU64 = AtomicU64::new(1);

impl PreparedMeta {
    /// A new entry with a fresh id.
    pub fn new(schema: Option<String>, sql: Bytes, params: u16, response: Bytes) -> Arc<Self> {
        let id = NEXT_META_ID.fetch_add(1, Ordering::Relaxed);
        let class = crate::classify::classify(&sql);
        Arc::new(PreparedMeta { id, schema, sql, params, class, response })
    }
}

/// What a cached statement is keyed by: the schema it was prepared in and its text.
type CacheKey = (Option<String>, Bytes);

/// Prepare responses by (schema, SQL), shared by the sessions of one pool.
#[derive(Debug)]
pub struct StmtCache {
    map: Mutex<HashMap<CacheKey, Arc<PreparedMeta>>>,
    /// Most entries kept; the cache is cleared when it is full (simple and bounded).
    entries_max: usize,
}

impl StmtCache {
    /// An empty cache holding at most `entries_max` statements.
    pub fn new(entries_max: usize) -> Self {
        StmtCache { map: Mutex::new(HashMap::new()), entries_max }
    }

    /// The cached entry for `sql` in `schema`.
    pub fn get(&self, schema: &Option<String>, sql: &[u8]) -> Option<Arc<PreparedMeta>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // The key owns its bytes; look up with a borrowed key built without copying.
        map.get(&(schema.clone(), Bytes::copy_from_slice(sql))).cloned()
    }

    /// Stores an entry, unless another session stored one for the same key first: then
    /// that one is returned, so concurrent first prepares converge on one entry.
    pub fn insert(&self, meta: Arc<PreparedMeta>) -> Arc<PreparedMeta> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let key = (meta.schema.clone(), meta.sql.clone());
        if let Some(existing) = map.get(&key) {
            return existing.clone();
        }
        if map.len() >= self.entries_max {
            map.clear();
        }
        map.insert(key, meta.clone());
        meta
    }

    /// Forgets everything (after DDL, metadata may have changed).
    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Number of cached statements.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One statement a client prepared.
#[derive(Debug, Clone)]
pub struct ClientStmt {
    /// What it is.
    pub meta: Arc<PreparedMeta>,
    /// Parameter types from the last execute that sent them (2 bytes each); shared so an
    /// execute that relies on them costs a refcount, not a copy.
    pub types: Arc<[u8]>,
}

/// The statements of one client connection.
#[derive(Debug, Default)]
pub struct ClientStmts {
    map: HashMap<u32, ClientStmt>,
    next_id: u32,
}

impl ClientStmts {
    /// Registers a statement and returns the id the client will use.
    pub fn add(&mut self, meta: Arc<PreparedMeta>) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        while self.map.contains_key(&self.next_id) {
            self.next_id = self.next_id.wrapping_add(1).max(1);
        }
        self.map.insert(self.next_id, ClientStmt { meta, types: Arc::from(&[][..]) });
        self.next_id
    }

    /// Looks up a client id.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut ClientStmt> {
        self.map.get_mut(&id)
    }

    /// Forgets a client id (COM_STMT_CLOSE).
    pub fn remove(&mut self, id: u32) -> Option<ClientStmt> {
        self.map.remove(&id)
    }

    /// Number of open statements.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when none are open.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Forgets all (COM_RESET_CONNECTION, COM_CHANGE_USER).
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// Statements prepared on one backend connection: cache entry id → (backend id, last use).
#[derive(Debug, Default)]
pub struct BackendStmts {
    map: HashMap<u64, (u32, u64)>,
    tick: u64,
}

impl BackendStmts {
    /// The backend id of an entry, marking it used.
    pub fn get(&mut self, meta_id: u64) -> Option<u32> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(&meta_id).map(|e| {
            e.1 = tick;
            e.0
        })
    }

    /// Records a new backend statement; returns the backend ids to close so that at most
    /// `max` stay prepared.
    pub fn insert(&mut self, meta_id: u64, backend_id: u32, max: usize) -> Vec<u32> {
        self.tick += 1;
        self.map.insert(meta_id, (backend_id, self.tick));
        let mut evicted = Vec::new();
        while self.map.len() > max.max(1) {
            let Some((&oldest, &(id, _))) = self.map.iter().min_by_key(|(_, (_, t))| *t) else { break };
            self.map.remove(&oldest);
            evicted.push(id);
        }
        evicted
    }

    /// Number of statements prepared on the connection.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_stmts_are_bounded_lru() {
        let mut b = BackendStmts::default();
        assert!(b.insert(1, 101, 2).is_empty());
        assert!(b.insert(2, 102, 2).is_empty());
        assert_eq!(b.get(1), Some(101)); // 2 is now least recently used
        assert_eq!(b.insert(3, 103, 2), vec![102]);
        assert_eq!(b.get(2), None);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn client_ids_are_unique_and_nonzero() {
        let mut c = ClientStmts::default();
        let m = PreparedMeta::new(None, Bytes::from_static(b"select 1"), 0, Bytes::new());
        let a = c.add(m.clone());
        let b = c.add(m);
        assert!(a != 0 && b != 0 && a != b);
        assert!(c.remove(a).is_some());
        assert!(c.get_mut(a).is_none());
    }

    #[test]
    fn cache_is_keyed_by_schema_and_text() {
        let cache = StmtCache::new(10);
        let first = cache.insert(PreparedMeta::new(Some("a".into()), Bytes::from_static(b"q"), 1, Bytes::new()));
        let second = cache.insert(PreparedMeta::new(Some("a".into()), Bytes::from_static(b"q"), 1, Bytes::new()));
        assert_eq!(first.id, second.id, "a racing insert gets the first entry");
        assert!(cache.get(&Some("a".into()), b"q").is_some());
        assert!(cache.get(&Some("b".into()), b"q").is_none());
        assert!(cache.get(&Some("a".into()), b"r").is_none());
    }
}
