//! Metadata kept in `meta.redb` next to the segments: vote/term, commit point, purge
//! floor, last purged log id, the last snapshot (an opaque blob) and format version. Every update rewrites
//! all fields in one redb write transaction with immediate durability, so a crash leaves
//! either the old or the new metadata, never a mix.

use std::path::{Path, PathBuf};

use redb::{Database, TableDefinition};

use super::error::{Result, WalError};
use super::segment::FORMAT_VERSION;
use super::{Lsn, Term};

/// File name of the metadata database inside the WAL directory.
pub const META_FILE: &str = "meta.redb";
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("wal_meta");

/// The durable metadata of a WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Format version of the directory; refused when it is not [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Current Raft term; never decreases.
    pub term: Term,
    /// Opaque serialized vote (openraft `Vote`), saved together with `term`.
    pub vote: Option<Vec<u8>>,
    /// Highest LSN known committed; truncation below it is refused (0 = none).
    pub commit: Lsn,
    /// Retention never purges records at or above this LSN (slowest follower/snapshot).
    pub purge_floor: Lsn,
    /// The cluster layer's last snapshot (its meta and data), opaque here. Stored under
    /// the key `membership`, its first use, so older directories load unchanged.
    pub snapshot: Option<Vec<u8>>,
    /// Log id (LSN, term) of the last purged record; reads at or below it fail.
    pub last_purged: Option<(Lsn, Term)>,
}

impl Default for Meta {
    fn default() -> Self {
        Meta {
            format_version: FORMAT_VERSION,
            term: 0,
            vote: None,
            commit: 0,
            purge_floor: 0,
            snapshot: None,
            last_purged: None,
        }
    }
}

/// The open metadata database plus a cached copy of its contents.
pub(crate) struct MetaStore {
    /// The redb database; held open for the WAL's lifetime (redb locks the file).
    db: Database,
    /// Cache of the committed contents, so reads never touch the disk.
    cur: Meta,
}

impl MetaStore {
    /// Path of the metadata file in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(META_FILE)
    }

    /// Opens or creates the metadata database. Returns whether it already existed.
    pub fn open(dir: &Path) -> Result<(MetaStore, bool)> {
        let path = Self::path(dir);
        let existed = path.exists();
        let db = Database::create(&path).map_err(|e| WalError::meta("opening meta.redb", e))?;
        let mut store = MetaStore { db, cur: Meta::default() };
        if existed {
            store.cur = store.load()?;
        } else {
            store.write(&Meta::default())?;
        }
        if store.cur.format_version != FORMAT_VERSION {
            return Err(WalError::UnsupportedVersion {
                what: path.display().to_string(),
                found: store.cur.format_version,
                supported: FORMAT_VERSION,
            });
        }
        Ok((store, existed))
    }

    /// The committed metadata.
    pub fn get(&self) -> &Meta {
        &self.cur
    }

    /// Applies `f` to a copy and commits it atomically; the cache changes only on success.
    pub fn update(&mut self, f: impl FnOnce(&mut Meta)) -> Result<()> {
        let mut next = self.cur.clone();
        f(&mut next);
        if next != self.cur {
            self.write(&next)?;
            self.cur = next;
        }
        Ok(())
    }

    fn write(&self, m: &Meta) -> Result<()> {
        let op = "writing meta.redb";
        let txn = self.db.begin_write().map_err(|e| WalError::meta(op, e))?;
        {
            let mut t = txn.open_table(TABLE).map_err(|e| WalError::meta(op, e))?;
            let mut put = |k: &str, v: &[u8]| t.insert(k, v).map(|_| ()).map_err(|e| WalError::meta(op, e));
            put("format_version", &m.format_version.to_le_bytes())?;
            put("term", &m.term.to_le_bytes())?;
            put("commit", &m.commit.to_le_bytes())?;
            put("purge_floor", &m.purge_floor.to_le_bytes())?;
            put("vote", &opt_blob(&m.vote))?;
            put("membership", &opt_blob(&m.snapshot))?;
            let lp = match m.last_purged {
                Some((l, t)) => [&[1u8][..], &l.to_le_bytes(), &t.to_le_bytes()].concat(),
                None => vec![0u8],
            };
            put("last_purged", &lp)?;
        }
        txn.commit().map_err(|e| WalError::meta(op, e))
    }

    fn load(&self) -> Result<Meta> {
        let op = "reading meta.redb";
        let txn = self.db.begin_read().map_err(|e| WalError::meta(op, e))?;
        let t = txn.open_table(TABLE).map_err(|e| WalError::meta(op, e))?;
        let get = |k: &str| -> Result<Vec<u8>> {
            match t.get(k).map_err(|e| WalError::meta(op, e))? {
                Some(v) => Ok(v.value().to_vec()),
                None => Err(WalError::Meta { op, detail: format!("key {k} missing") }),
            }
        };
        let bad = |k: &str| WalError::Meta { op, detail: format!("key {k} has a malformed value") };
        let u64_of = |k: &str| -> Result<u64> {
            let v = get(k)?;
            let a: [u8; 8] = v.as_slice().try_into().map_err(|_| bad(k))?;
            Ok(u64::from_le_bytes(a))
        };
        let fv = get("format_version")?;
        let fv: [u8; 4] = fv.as_slice().try_into().map_err(|_| bad("format_version"))?;
        let lp = get("last_purged")?;
        let last_purged = match lp.as_slice() {
            [0] => None,
            [1, rest @ ..] if rest.len() == 16 => {
                let l: [u8; 8] = rest[..8].try_into().map_err(|_| bad("last_purged"))?;
                let tt: [u8; 8] = rest[8..].try_into().map_err(|_| bad("last_purged"))?;
                Some((u64::from_le_bytes(l), u64::from_le_bytes(tt)))
            }
            _ => return Err(bad("last_purged")),
        };
        Ok(Meta {
            format_version: u32::from_le_bytes(fv),
            term: u64_of("term")?,
            vote: parse_opt_blob(&get("vote")?).ok_or_else(|| bad("vote"))?,
            commit: u64_of("commit")?,
            purge_floor: u64_of("purge_floor")?,
            snapshot: parse_opt_blob(&get("membership")?).ok_or_else(|| bad("membership"))?,
            last_purged,
        })
    }
}

fn opt_blob(b: &Option<Vec<u8>>) -> Vec<u8> {
    match b {
        Some(v) => [&[1u8][..], v].concat(),
        None => vec![0u8],
    }
}

fn parse_opt_blob(v: &[u8]) -> Option<Option<Vec<u8>>> {
    match v.split_first() {
        Some((0, [])) => Some(None),
        Some((1, rest)) => Some(Some(rest.to_vec())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, existed) = MetaStore::open(dir.path()).unwrap();
        assert!(!existed);
        let want = Meta {
            format_version: FORMAT_VERSION,
            term: 9,
            vote: Some(b"v".to_vec()),
            commit: 77,
            purge_floor: 5,
            snapshot: Some(vec![]),
            last_purged: Some((4, 2)),
        };
        let w = want.clone();
        s.update(|m| *m = w).unwrap();
        drop(s);
        let (s, existed) = MetaStore::open(dir.path()).unwrap();
        assert!(existed);
        assert_eq!(s.get(), &want);
    }
}
