//! The log entry one captured change becomes: what the leader proposes and every other
//! node applies. Pure codec, no I/O.
//!
//! | kind | made from | applied as |
//! |---|---|---|
//! | [`Entry::Rows`] | a transaction's Table_map + row events from the leader's binlog | `BINLOG '<base64>'` statements in one transaction |
//! | [`Entry::Statement`] | a DDL statement, proposed before the leader runs it | the statement itself, in its schema and session context |
//! | [`Entry::Batch`] | captured transactions proposed together (group commit: one Raft entry, one fsync, for many) | all in one transaction, each skipped if its marker is there |
//!
//! Layout (version 1), all integers little-endian, strings and byte strings as a `u32`
//! length then the bytes:
//!
//! ```text
//! u8 version (1) | u8 kind (1 rows, 2 statement, 3 batch) | fields of the kind
//! rows:      u8 origin (1 captured, 2 unmanaged) | str xid-or-gtid | bytes format
//!            | u32 n | n × bytes statement
//! statement: str id | u8 has_schema | [str schema] | u32 n | n × str session | str sql
//! batch:     u32 n | n × bytes (an encoded captured rows entry, version byte included)
//! ```
//!
//! A batch is made by concatenating encoded entries ([`encode_batch`]), so the leader never
//! decodes what it proposes.
//!
//! The WAL record that carries an entry checksums and compresses it; nothing here does.

/// Format version written as an entry's first byte.
pub const ENTRY_VERSION: u8 = 1;

const KIND_ROWS: u8 = 1;
const KIND_STATEMENT: u8 = 2;
const KIND_BATCH: u8 = 3;
const ORIGIN_CAPTURED: u8 = 1;
const ORIGIN_UNMANAGED: u8 = 2;

/// One change in the replicated log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Row images of one transaction.
    Rows(RowsEntry),
    /// A statement every node runs itself (DDL).
    Statement(StatementEntry),
    /// Captured transactions ([`Origin::Captured`] rows entries with one Format_description)
    /// proposed as one log entry, in commit order.
    Batch(Vec<RowsEntry>),
}

/// Whether `encoded` is a captured rows entry, which may go into a batch. Pure.
pub fn batchable(encoded: &[u8]) -> bool {
    encoded.len() > 3 && encoded[0] == ENTRY_VERSION && encoded[1] == KIND_ROWS && encoded[2] == ORIGIN_CAPTURED
}

/// The Format_description bytes of an encoded rows entry (entries of one batch share one).
/// Pure.
pub fn format_of(encoded: &[u8]) -> Option<&[u8]> {
    let mut r = Reader { bytes: encoded, at: 3 };
    r.bytes().ok()?;
    r.bytes().ok()
}

/// One [`Entry::Batch`] of encoded captured rows entries (each [`batchable`]). Pure.
pub fn encode_batch(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + entries.iter().map(|e| 4 + e.len()).sum::<usize>());
    out.push(ENTRY_VERSION);
    out.push(KIND_BATCH);
    put_u32(&mut out, entries.len());
    for e in entries {
        put_bytes(&mut out, e);
    }
    out
}

impl Entry {
    /// The rows entries of a rows entry or a batch (none for a statement).
    pub fn rows(&self) -> &[RowsEntry] {
        match self {
            Entry::Rows(r) => std::slice::from_ref(r),
            Entry::Batch(b) => b,
            Entry::Statement(_) => &[],
        }
    }
}

/// Which transaction a [`RowsEntry`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A client transaction shoal ran as XA: its xid, which is also the key of the
    /// `shoal_meta.txn` marker row among the entry's rows.
    Captured { xid: String },
    /// A transaction that reached the leader's MariaDB without shoal (found in the binlog
    /// after it committed): the leader's GTID, for logs; once proposed, followed by `@`
    /// and the capture that found it (`0-1-23@shoal-n1-5f3a-`, see
    /// `Capture::is_own`).
    Unmanaged { gtid: String },
}

/// A transaction's row events, raw as the leader's binlog holds them (header through
/// CRC32).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowsEntry {
    /// Where the transaction came from.
    pub origin: Origin,
    /// The leader binlog's Format_description event: an applier sends it first on each
    /// connection (MariaDB refuses row events before one, error 1609).
    pub format: Vec<u8>,
    /// One `BINLOG` statement each: one SQL statement's Table_map events followed by its
    /// row events, concatenated (a Table_map and its rows in separate statements apply
    /// nothing, silently).
    pub statements: Vec<Vec<u8>>,
}

/// A statement (DDL) proposed before any node runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementEntry {
    /// Unique id (node, epoch, sequence): how the leader's binlog tail recognises the
    /// statement when the leader's own MariaDB logs it.
    pub id: String,
    /// Default schema it ran in.
    pub schema: Option<String>,
    /// Session assignments it depends on (`sql_mode = '…'`, `time_zone = '+00:00'`).
    pub session: Vec<String>,
    /// The statement text.
    pub sql: String,
}

impl Entry {
    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        let str_len = |s: &[u8]| 4 + s.len();
        2 + match self {
            Entry::Rows(r) => rows_fields_len(r),
            Entry::Statement(s) => {
                str_len(s.id.as_bytes())
                    + 1
                    + s.schema.as_ref().map_or(0, |d| str_len(d.as_bytes()))
                    + 4
                    + s.session.iter().map(|v| str_len(v.as_bytes())).sum::<usize>()
                    + str_len(s.sql.as_bytes())
            }
            // Each: its length, then a whole rows entry (version and kind bytes included).
            Entry::Batch(b) => 4 + b.iter().map(|r| 4 + 2 + rows_fields_len(r)).sum::<usize>(),
        }
    }

    /// The entry as bytes (see the module docs for the layout).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(ENTRY_VERSION);
        match self {
            Entry::Rows(r) => {
                out.push(KIND_ROWS);
                put_rows_fields(&mut out, r);
            }
            Entry::Statement(s) => {
                out.push(KIND_STATEMENT);
                put_bytes(&mut out, s.id.as_bytes());
                match &s.schema {
                    Some(d) => {
                        out.push(1);
                        put_bytes(&mut out, d.as_bytes());
                    }
                    None => out.push(0),
                }
                put_u32(&mut out, s.session.len());
                for v in &s.session {
                    put_bytes(&mut out, v.as_bytes());
                }
                put_bytes(&mut out, s.sql.as_bytes());
            }
            Entry::Batch(b) => {
                out.push(KIND_BATCH);
                put_u32(&mut out, b.len());
                for r in b {
                    put_u32(&mut out, 2 + rows_fields_len(r));
                    out.extend_from_slice(&[ENTRY_VERSION, KIND_ROWS]);
                    put_rows_fields(&mut out, r);
                }
            }
        }
        out
    }

    /// Decodes what [`Entry::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        let mut r = Reader { bytes, at: 0 };
        let version = r.u8()?;
        if version != ENTRY_VERSION {
            return Err(EntryError::Version(version));
        }
        let entry = match r.u8()? {
            KIND_ROWS => {
                let origin = r.u8()?;
                let name = r.string()?;
                let origin = match origin {
                    ORIGIN_CAPTURED => Origin::Captured { xid: name },
                    ORIGIN_UNMANAGED => Origin::Unmanaged { gtid: name },
                    other => return Err(EntryError::Malformed(format!("unknown origin {other}"))),
                };
                let format = r.bytes()?.to_vec();
                let n = r.count()?;
                let mut statements = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    statements.push(r.bytes()?.to_vec());
                }
                Entry::Rows(RowsEntry { origin, format, statements })
            }
            KIND_STATEMENT => {
                let id = r.string()?;
                let schema = match r.u8()? {
                    0 => None,
                    1 => Some(r.string()?),
                    other => return Err(EntryError::Malformed(format!("schema flag {other}"))),
                };
                let n = r.count()?;
                let mut session = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    session.push(r.string()?);
                }
                let sql = r.string()?;
                Entry::Statement(StatementEntry { id, schema, session, sql })
            }
            KIND_BATCH => {
                let n = r.count()?;
                let mut rows = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    match Entry::decode(r.bytes()?)? {
                        Entry::Rows(row @ RowsEntry { origin: Origin::Captured { .. }, .. }) => rows.push(row),
                        other => {
                            return Err(EntryError::Malformed(format!(
                                "a batch holds only captured rows entries, not {}",
                                match other {
                                    Entry::Statement(_) => "a statement",
                                    Entry::Batch(_) => "a batch",
                                    Entry::Rows(_) => "unmanaged rows",
                                }
                            )))
                        }
                    }
                }
                Entry::Batch(rows)
            }
            other => return Err(EntryError::Malformed(format!("unknown entry kind {other}"))),
        };
        if r.at != bytes.len() {
            return Err(EntryError::Malformed(format!("{} bytes after the entry", bytes.len() - r.at)));
        }
        Ok(entry)
    }
}

/// Why bytes do not decode as an [`Entry`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// Written by a newer shoal.
    #[error(
        "log entry format version {0} is not known to this shoal (it reads version {ENTRY_VERSION}); upgrade this node"
    )]
    Version(u8),
    /// Cut or corrupt.
    #[error("malformed log entry: {0}")]
    Malformed(String),
}

/// Encoded size of a rows entry's fields (after the version and kind bytes).
fn rows_fields_len(r: &RowsEntry) -> usize {
    let str_len = |s: &[u8]| 4 + s.len();
    let name = match &r.origin {
        Origin::Captured { xid } => xid,
        Origin::Unmanaged { gtid } => gtid,
    };
    1 + str_len(name.as_bytes()) + str_len(&r.format) + 4 + r.statements.iter().map(|s| str_len(s)).sum::<usize>()
}

/// Writes a rows entry's fields (after the version and kind bytes).
fn put_rows_fields(out: &mut Vec<u8>, r: &RowsEntry) {
    let (origin, name) = match &r.origin {
        Origin::Captured { xid } => (ORIGIN_CAPTURED, xid),
        Origin::Unmanaged { gtid } => (ORIGIN_UNMANAGED, gtid),
    };
    out.push(origin);
    put_bytes(out, name.as_bytes());
    put_bytes(out, &r.format);
    put_u32(out, r.statements.len());
    for s in &r.statements {
        put_bytes(out, s);
    }
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EntryError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| EntryError::Malformed(format!("cut at byte {} (wanted {n} more)", self.at)))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, EntryError> {
        Ok(self.take(1)?[0])
    }

    fn count(&mut self) -> Result<usize, EntryError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], EntryError> {
        let n = self.count()?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, EntryError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec())
            .map_err(|_| EntryError::Malformed(format!("string at byte {} is not UTF-8", self.at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry() -> impl Strategy<Value = Entry> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..64);
        let rows = (any::<bool>(), ".{0,20}", bytes(), proptest::collection::vec(bytes(), 0..5)).prop_map(
            |(captured, name, format, statements)| {
                let origin = if captured { Origin::Captured { xid: name } } else { Origin::Unmanaged { gtid: name } };
                Entry::Rows(RowsEntry { origin, format, statements })
            },
        );
        let statement =
            (".{0,20}", proptest::option::of(".{0,10}"), proptest::collection::vec(".{0,20}", 0..4), ".{0,40}")
                .prop_map(|(id, schema, session, sql)| Entry::Statement(StatementEntry { id, schema, session, sql }));
        let batch = proptest::collection::vec((".{0,20}", bytes(), proptest::collection::vec(bytes(), 0..3)), 1..4)
            .prop_map(|v| {
                Entry::Batch(
                    v.into_iter()
                        .map(|(xid, format, statements)| RowsEntry {
                            origin: Origin::Captured { xid },
                            format,
                            statements,
                        })
                        .collect(),
                )
            });
        prop_oneof![rows, statement, batch]
    }

    proptest! {
        #[test]
        fn entries_round_trip(e in entry()) {
            let bytes = e.encode();
            prop_assert_eq!(bytes.len(), e.encoded_len());
            prop_assert_eq!(Entry::decode(&bytes), Ok(e));
        }

        #[test]
        fn cut_or_extended_entries_are_refused(e in entry(), cut in 0usize..200) {
            let bytes = e.encode();
            let cut = cut.min(bytes.len().saturating_sub(1));
            prop_assert!(Entry::decode(&bytes[..cut]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(Entry::decode(&longer).is_err());
        }
    }

    #[test]
    fn a_batch_is_its_entries_concatenated() {
        let rows = |x: &str| RowsEntry {
            origin: Origin::Captured { xid: x.into() },
            format: vec![1],
            statements: vec![vec![2]],
        };
        let (a, b) = (Entry::Rows(rows("a")).encode(), Entry::Rows(rows("b")).encode());
        assert!(batchable(&a));
        assert_eq!(format_of(&a), Some(&[1u8][..]));
        assert!(!batchable(
            &Entry::Rows(RowsEntry { origin: Origin::Unmanaged { gtid: "g".into() }, ..rows("c") }).encode()
        ));
        let batch = encode_batch(&[a, b]);
        assert_eq!(Entry::decode(&batch), Ok(Entry::Batch(vec![rows("a"), rows("b")])));
        assert_eq!(Entry::Batch(vec![rows("a"), rows("b")]).encode(), batch);
        let unmanaged = Entry::Rows(RowsEntry { origin: Origin::Unmanaged { gtid: "g".into() }, ..rows("c") }).encode();
        assert!(Entry::decode(&encode_batch(&[unmanaged])).is_err());
    }

    #[test]
    fn a_newer_version_names_the_fix() {
        let err = Entry::decode(&[2, 1]).unwrap_err();
        assert!(err.to_string().contains("upgrade this node"), "{err}");
    }
}
