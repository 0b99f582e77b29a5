//! Pure decoding of MariaDB binlog events and their grouping into [`Captured`]: the
//! decisions of the binlog tail (`tail.rs`), unit-tested without a server. No I/O.
//!
//! An event is the raw bytes COM_BINLOG_DUMP delivers after its `0x00` byte: a 19-byte
//! header (`timestamp u32 | type u8 | server_id u32 | event_size u32 | log_pos u32 |
//! flags u16`), the body, and a CRC32 when the binlog's Format_description says so.
//!
//! [`Grouper`] is the state machine over those events:
//!
//! ```text
//!            Gtid (162)                       row/Table_map/skipped events
//!  Between ─────────────▶ InGroup ◀──────────────────────────────┐
//!     ▲                     │ └──────────────────────────────────┘
//!     │   Xid / COMMIT / ROLLBACK / XA_prepare / the Query of a
//!     └──────────── STANDALONE group: emit one Captured ─────────┘
//! ```
//!
//! Anything that breaks the shape (a row event outside a group, a Gtid or Rotate inside
//! one, a group above [`GROUP_BYTES_MAX`]) is a [`GroupError`]: the binlog is not what the
//! tail can replicate, and reading on would skip or split a transaction.

use super::{Captured, Origin, RowsEntry, STATEMENT_MARK, XID_PREFIX};

/// Bytes of the common event header (binlog v4).
pub const EVENT_HEADER_BYTES: usize = 19;
/// Bytes of the CRC32 trailer when the binlog checksum is CRC32.
pub const CRC_BYTES: usize = 4;
/// Largest event group (one transaction's Table_map + row events) the tail holds in
/// memory: the whole group becomes one log entry. 1 GiB, MariaDB's own ceiling for
/// `max_allowed_packet`; a bigger transaction must be split by the application.
pub const GROUP_BYTES_MAX: usize = 1 << 30;

/// Event type codes (MariaDB `log_event.h`, `enum Log_event_type`).
pub mod kind {
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const INTVAR: u8 = 5;
    pub const RAND: u8 = 13;
    pub const USER_VAR: u8 = 14;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const TABLE_MAP: u8 = 19;
    pub const WRITE_ROWS_V1: u8 = 23;
    pub const UPDATE_ROWS_V1: u8 = 24;
    pub const DELETE_ROWS_V1: u8 = 25;
    pub const INCIDENT: u8 = 26;
    pub const HEARTBEAT: u8 = 27;
    pub const WRITE_ROWS_V2: u8 = 30;
    pub const UPDATE_ROWS_V2: u8 = 31;
    pub const DELETE_ROWS_V2: u8 = 32;
    pub const XA_PREPARE: u8 = 38;
    pub const ANNOTATE_ROWS: u8 = 160;
    pub const BINLOG_CHECKPOINT: u8 = 161;
    pub const GTID: u8 = 162;
    pub const GTID_LIST: u8 = 163;
    pub const START_ENCRYPTION: u8 = 164;
    pub const QUERY_COMPRESSED: u8 = 165;
    pub const WRITE_ROWS_COMPRESSED_V1: u8 = 166;
    pub const DELETE_ROWS_COMPRESSED_V2: u8 = 171;
}

/// Gtid event `flags2` bits (MariaDB `Gtid_log_event`).
pub mod gtid_flag {
    /// No terminating COMMIT/Xid: the group is the one event after the Gtid (DDL, XA COMMIT).
    pub const STANDALONE: u8 = 1;
    /// An 8-byte commit id follows the flags.
    pub const GROUP_COMMIT_ID: u8 = 2;
    /// The prepared part of an XA transaction (ends with XA_prepare).
    pub const PREPARED_XA: u8 = 64;
    /// XA COMMIT / XA ROLLBACK of a prepared transaction.
    pub const COMPLETED_XA: u8 = 128;
}

/// Rows event flag: the last row event of its SQL statement.
const STMT_END_F: u16 = 1;
/// Byte offset of the post-header length array in a Format_description body.
const FD_POST_HEADER_AT: usize = 2 + 50 + 4 + 1;
/// Query event post-header length when no Format_description says otherwise.
const QUERY_POST_HEADER_DEFAULT: usize = 13;
/// Rows event post-header length when no Format_description says otherwise (v1).
const ROWS_POST_HEADER_DEFAULT: usize = 8;
/// `binlog_checksum` value of CRC32 in a Format_description.
const CHECKSUM_CRC32: u8 = 1;

/// The binlog is not in a shape the tail can read on from; reading further would skip or
/// split a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// An event is shorter than its header or its declared fields.
    #[error("binlog event of type {kind} at log_pos {log_pos} is truncated or malformed: {what}")]
    Malformed { kind: u8, log_pos: u32, what: &'static str },
    /// An event arrived where the group structure does not allow it.
    #[error(
        "binlog event of type {kind} at log_pos {log_pos} arrived {what}; the binlog is not one shoal can replicate"
    )]
    OutOfPlace { kind: u8, log_pos: u32, what: &'static str },
    /// The event type cannot be replicated as raw bytes.
    #[error("binlog event of type {kind} at log_pos {log_pos} is not supported: {what}")]
    Unsupported { kind: u8, log_pos: u32, what: &'static str },
    /// A group exceeds [`GROUP_BYTES_MAX`].
    #[error("transaction {gtid} has more than {max} bytes of row events (GROUP_BYTES_MAX); split it into smaller transactions")]
    TooLarge { gtid: String, max: usize },
}

/// The 19-byte common header of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Event type code ([`kind`]).
    pub kind: u8,
    /// Server that wrote it (part of the GTID).
    pub server_id: u32,
    /// Whole event, header and CRC included.
    pub event_size: u32,
    /// Position right after this event in its binlog file; 0 for events the dump made up.
    pub log_pos: u32,
    /// Header flags.
    pub flags: u16,
}

impl Header {
    /// Parses the header at the start of `ev`.
    pub fn parse(ev: &[u8]) -> Result<Header, GroupError> {
        if ev.len() < EVENT_HEADER_BYTES {
            let kind = ev.get(4).copied().unwrap_or(0);
            return Err(GroupError::Malformed { kind, log_pos: 0, what: "shorter than the 19-byte header" });
        }
        let u32_at = |i: usize| u32::from_le_bytes([ev[i], ev[i + 1], ev[i + 2], ev[i + 3]]);
        let h = Header {
            kind: ev[4],
            server_id: u32_at(5),
            event_size: u32_at(9),
            log_pos: u32_at(13),
            flags: u16::from_le_bytes([ev[17], ev[18]]),
        };
        if h.event_size as usize != ev.len() {
            return Err(h.malformed("event_size differs from the bytes received"));
        }
        Ok(h)
    }

    fn malformed(&self, what: &'static str) -> GroupError {
        GroupError::Malformed { kind: self.kind, log_pos: self.log_pos, what }
    }

    fn out_of_place(&self, what: &'static str) -> GroupError {
        GroupError::OutOfPlace { kind: self.kind, log_pos: self.log_pos, what }
    }
}

/// An XA transaction id as MariaDB stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xid {
    pub format_id: u32,
    pub gtrid: Vec<u8>,
    pub bqual: Vec<u8>,
}

/// What a Gtid event says about the group it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gtid {
    pub domain: u32,
    pub server_id: u32,
    pub seq: u64,
    /// [`gtid_flag`] bits.
    pub flags2: u8,
    /// Present when PREPARED_XA or COMPLETED_XA is set.
    pub xid: Option<Xid>,
}

impl Gtid {
    /// `domain-server-seq`, as `@@gtid_binlog_pos` writes it.
    pub fn text(&self) -> String {
        format!("{}-{}-{}", self.domain, self.server_id, self.seq)
    }

    /// Decodes a Gtid event body (after the header, CRC removed). Layout (MariaDB
    /// `Gtid_log_event::Gtid_log_event(const uchar *buf, …)`): `seq_no u64 | domain u32 |
    /// flags2 u8 | [commit_id u64 if GROUP_COMMIT_ID] | [formatID u32 | gtrid_len u8 |
    /// bqual_len u8 | gtrid | bqual, if PREPARED_XA or COMPLETED_XA]`.
    pub fn parse(h: &Header, body: &[u8]) -> Result<Gtid, GroupError> {
        let short = || h.malformed("Gtid body too short");
        let fixed = body.get(..13).ok_or_else(short)?;
        let seq = u64::from_le_bytes(fixed[0..8].try_into().expect("8 bytes"));
        let domain = u32::from_le_bytes(fixed[8..12].try_into().expect("4 bytes"));
        let flags2 = fixed[12];
        let mut at = 13;
        if flags2 & gtid_flag::GROUP_COMMIT_ID != 0 {
            at += 8;
        }
        let xid = if flags2 & (gtid_flag::PREPARED_XA | gtid_flag::COMPLETED_XA) != 0 {
            let x = body.get(at..at + 6).ok_or_else(short)?;
            let format_id = u32::from_le_bytes(x[0..4].try_into().expect("4 bytes"));
            let (g, b) = (x[4] as usize, x[5] as usize);
            let data = body.get(at + 6..at + 6 + g + b).ok_or_else(short)?;
            Some(Xid { format_id, gtrid: data[..g].to_vec(), bqual: data[g..].to_vec() })
        } else {
            None
        };
        Ok(Gtid { domain, server_id: h.server_id, seq, flags2, xid })
    }

    /// The gtrid when this is the prepared part of an XA transaction shoal started.
    fn shoal_xid(&self) -> Option<String> {
        if self.flags2 & gtid_flag::PREPARED_XA == 0 {
            return None;
        }
        let gtrid = std::str::from_utf8(&self.xid.as_ref()?.gtrid).ok()?;
        gtrid.starts_with(XID_PREFIX).then(|| gtrid.to_string())
    }
}

/// The parts of a Query event the tail uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Server thread (connection) id of the session that ran it.
    pub thread_id: u32,
    /// Default schema (`None` when the event names none).
    pub schema: Option<String>,
    /// Statement text (non-UTF-8 bytes replaced).
    pub sql: String,
}

impl Query {
    /// Decodes a Query event body: post-header `thread_id u32 | exec_time u32 | db_len u8 |
    /// error_code u16 | status_vars_len u16` (of `post_header` bytes), status variables,
    /// schema, NUL, statement.
    pub fn parse(h: &Header, body: &[u8], post_header: usize) -> Result<Query, GroupError> {
        let short = || h.malformed("Query body too short");
        let ph = body.get(..post_header.max(QUERY_POST_HEADER_DEFAULT)).ok_or_else(short)?;
        let db_len = ph[8] as usize;
        let status_len = u16::from_le_bytes([ph[11], ph[12]]) as usize;
        let db_at = post_header + status_len;
        let db = body.get(db_at..db_at + db_len).ok_or_else(short)?;
        let sql = body.get(db_at + db_len + 1..).ok_or_else(short)?;
        Ok(Query {
            thread_id: u32::from_le_bytes([ph[0], ph[1], ph[2], ph[3]]),
            schema: (!db.is_empty()).then(|| String::from_utf8_lossy(db).into_owned()),
            sql: String::from_utf8_lossy(sql).into_owned(),
        })
    }

    /// The statement's first one or two words, upper-cased (`"XA END"`, `"SAVEPOINT"`).
    fn verb(&self) -> String {
        self.sql.split_whitespace().take(2).collect::<Vec<_>>().join(" ").to_ascii_uppercase()
    }
}

/// The id in a leading `/*shoal:<id>*/` comment.
pub fn statement_id(sql: &str) -> Option<String> {
    let rest = sql.trim_start().strip_prefix(STATEMENT_MARK)?;
    Some(rest[..rest.find("*/")?].to_string())
}

/// The binlog file's Format_description, kept for every [`RowsEntry`] made from it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Format {
    /// The event as received (header through CRC).
    raw: Vec<u8>,
    /// Whether the events of this file end in a CRC32.
    crc: bool,
    /// Post-header length per event type (index = type - 1).
    post_header: Vec<u8>,
}

impl Format {
    fn parse(h: &Header, ev: &[u8]) -> Result<Format, GroupError> {
        // A checksum-aware server's Format_description always ends in `alg u8 | crc u32`,
        // whatever the algorithm (MariaDB `Format_description_log_event::write`).
        let body = ev.get(EVENT_HEADER_BYTES..ev.len().saturating_sub(1 + CRC_BYTES)).unwrap_or_default();
        if body.len() < FD_POST_HEADER_AT {
            return Err(h.malformed("Format_description body too short"));
        }
        let alg = ev[ev.len() - 1 - CRC_BYTES];
        Ok(Format { raw: ev.to_vec(), crc: alg == CHECKSUM_CRC32, post_header: body[FD_POST_HEADER_AT..].to_vec() })
    }

    fn post_header(&self, kind: u8, default: usize) -> usize {
        self.post_header.get(kind as usize - 1).map_or(default, |n| *n as usize)
    }
}

/// What one event did to the grouping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to report (inside a group, or an event that carries no group).
    Nothing,
    /// A group is complete; `end` is the `log_pos` of its last event (where to resume).
    Group { captured: Captured, end: u32 },
    /// The following events are in binlog `file`, from `pos` on (a Rotate event).
    Rotate { file: String, pos: u64 },
}

/// The group being read.
#[derive(Debug)]
struct Group {
    gtid: Gtid,
    /// Finished SQL statements (Table_maps + rows up to STMT_END_F).
    statements: Vec<Vec<u8>>,
    /// The statement being collected.
    current: Vec<u8>,
    /// Row bytes so far (bounded by [`GROUP_BYTES_MAX`]).
    bytes: usize,
    /// A statement (not transaction control) logged inside the group: `CREATE TABLE …
    /// SELECT` is its `CREATE TABLE` followed by the rows it inserted.
    ddl: Option<Query>,
}

/// Grouping state machine over the events of one dump connection (see the module doc).
/// A new connection starts a new `Grouper`: a group cut by a disconnect is read again.
#[derive(Debug)]
pub struct Grouper {
    /// The current binlog file's Format_description: how to read bodies, and what every
    /// [`RowsEntry`] carries.
    format: Option<Format>,
    /// `Some` between a Gtid event and the end of its group.
    group: Option<Group>,
    /// Checksum of events before the first Format_description.
    crc_before_format: bool,
}

impl Grouper {
    /// A grouper before any event; `crc` says whether the events before the first
    /// Format_description (the dump's fake Rotate) end in a CRC32, i.e. whether the
    /// connection declared `@master_binlog_checksum` CRC32.
    pub fn new(crc: bool) -> Grouper {
        Grouper { format: None, group: None, crc_before_format: crc }
    }

    /// Whether a group is in progress (the stream's position is mid-transaction).
    pub fn in_group(&self) -> bool {
        self.group.is_some()
    }

    /// Takes one event (header through CRC).
    pub fn on_event(&mut self, ev: &[u8]) -> Result<Step, GroupError> {
        let h = Header::parse(ev)?;
        if h.kind == kind::FORMAT_DESCRIPTION {
            if self.group.is_some() {
                return Err(h.out_of_place("inside a transaction"));
            }
            self.format = Some(Format::parse(&h, ev)?);
            return Ok(Step::Nothing);
        }
        let crc = self.format.as_ref().map_or(self.crc_before_format, |f| f.crc);
        let end = ev.len() - if crc { CRC_BYTES } else { 0 };
        let body = ev.get(EVENT_HEADER_BYTES..end).ok_or_else(|| h.malformed("shorter than header + CRC"))?;
        match (h.kind, self.group.is_some()) {
            (kind::HEARTBEAT | kind::STOP | kind::BINLOG_CHECKPOINT | kind::GTID_LIST | kind::START_ENCRYPTION, _) => {
                Ok(Step::Nothing)
            }
            (kind::ROTATE, false) => {
                // Both the real Rotate at a file's end and the dump's fake one (log_pos 0,
                // sent first and whenever the dump opens the next file, e.g. after a crash
                // left a file without a Rotate) name the file the following events are in.
                let pos = body.get(..8).ok_or_else(|| h.malformed("Rotate body too short"))?;
                let pos = u64::from_le_bytes(pos.try_into().expect("8 bytes"));
                Ok(Step::Rotate { file: String::from_utf8_lossy(&body[8..]).into_owned(), pos })
            }
            (kind::GTID, false) => {
                self.group = Some(Group {
                    gtid: Gtid::parse(&h, body)?,
                    statements: Vec::new(),
                    current: Vec::new(),
                    bytes: 0,
                    ddl: None,
                });
                Ok(Step::Nothing)
            }
            (kind::ROTATE | kind::GTID, true) => Err(h.out_of_place("inside a transaction")),
            (kind::INCIDENT, _) => Err(GroupError::Unsupported {
                kind: h.kind,
                log_pos: h.log_pos,
                what: "an Incident event: the server lost changes it could not binlog; resynchronise the followers",
            }),
            (kind::QUERY_COMPRESSED | kind::WRITE_ROWS_COMPRESSED_V1..=kind::DELETE_ROWS_COMPRESSED_V2, _) => {
                Err(GroupError::Unsupported {
                    kind: h.kind,
                    log_pos: h.log_pos,
                    what: "a compressed event; set log_bin_compress=OFF on the leader's MariaDB",
                })
            }
            (_, false) => {
                // Only a group's events carry data; anything else outside one is unknown here.
                tracing::debug!(kind = h.kind, log_pos = h.log_pos, "binlog event outside a group ignored");
                Ok(Step::Nothing)
            }
            (_, true) => self.in_group_event(&h, ev, body),
        }
    }

    fn in_group_event(&mut self, h: &Header, ev: &[u8], body: &[u8]) -> Result<Step, GroupError> {
        let rows_post_header = |k: u8| self.format.as_ref().map_or(ROWS_POST_HEADER_DEFAULT, |f| f.post_header(k, 8));
        let query_post_header =
            self.format.as_ref().map_or(QUERY_POST_HEADER_DEFAULT, |f| f.post_header(kind::QUERY, 13));
        let group = self.group.as_mut().expect("in_group_event runs inside a group");
        match h.kind {
            kind::TABLE_MAP => {
                group.push(ev)?;
                Ok(Step::Nothing)
            }
            kind::WRITE_ROWS_V1..=kind::DELETE_ROWS_V1 | kind::WRITE_ROWS_V2..=kind::DELETE_ROWS_V2 => {
                // Post-header: table_id (6 bytes, 4 in the old 6-byte post-header), flags u16.
                let id_bytes = if rows_post_header(h.kind) == 6 { 4 } else { 6 };
                let flags = body.get(id_bytes..id_bytes + 2).ok_or_else(|| h.malformed("Rows body too short"))?;
                group.push(ev)?;
                if u16::from_le_bytes([flags[0], flags[1]]) & STMT_END_F != 0 {
                    let s = std::mem::take(&mut group.current);
                    group.statements.push(s);
                }
                Ok(Step::Nothing)
            }
            kind::ANNOTATE_ROWS | kind::INTVAR | kind::RAND | kind::USER_VAR => Ok(Step::Nothing),
            kind::XID | kind::XA_PREPARE => self.finish(h),
            kind::QUERY => {
                let q = Query::parse(h, body, query_post_header)?;
                if group.gtid.flags2 & gtid_flag::STANDALONE != 0 {
                    return self.finish_statement(h, q);
                }
                let verb = q.verb();
                if verb == "COMMIT" || verb == "ROLLBACK" {
                    return self.finish(h);
                }
                if !(verb.starts_with("SAVEPOINT")
                    || verb.starts_with("ROLLBACK TO")
                    || verb.starts_with("RELEASE SAVEPOINT")
                    || verb == "XA END"
                    || verb == "BEGIN")
                {
                    if group.ddl.is_some() {
                        tracing::warn!(gtid = %group.gtid.text(), sql = %q.sql,
                            "a second statement inside a row transaction is not replicated; only its row events are");
                    } else {
                        group.ddl = Some(q);
                    }
                }
                Ok(Step::Nothing)
            }
            _ => {
                tracing::debug!(kind = h.kind, log_pos = h.log_pos, "binlog event inside a group ignored");
                Ok(Step::Nothing)
            }
        }
    }

    /// Ends a row group (Xid, COMMIT, ROLLBACK, XA_prepare).
    fn finish(&mut self, h: &Header) -> Result<Step, GroupError> {
        let mut g = self.group.take().expect("finish runs inside a group");
        if !g.current.is_empty() {
            // A statement without STMT_END_F: keep its events together rather than drop them.
            tracing::warn!(gtid = %g.gtid.text(), "row events without STMT_END_F at the end of a transaction");
            g.statements.push(std::mem::take(&mut g.current));
        }
        let gtid = g.gtid.text();
        let format = self.format.as_ref().map(|f| f.raw.clone()).unwrap_or_default();
        if let Some(q) = g.ddl.take() {
            // `CREATE TABLE … SELECT`: the statement as logged, then its rows.
            let rows = (!g.statements.is_empty()).then(|| RowsEntry {
                origin: Origin::Unmanaged { gtid: gtid.clone() },
                format,
                statements: g.statements,
            });
            let captured = Captured::Statement {
                gtid,
                id: statement_id(&q.sql),
                thread_id: q.thread_id,
                schema: q.schema,
                sql: q.sql,
                rows,
            };
            return Ok(Step::Group { captured, end: h.log_pos });
        }
        let captured = if let Some(xid) = g.gtid.shoal_xid() {
            let rows = RowsEntry { origin: Origin::Captured { xid: xid.clone() }, format, statements: g.statements };
            Captured::Prepared { gtid, xid, rows }
        } else if g.statements.is_empty() {
            Captured::Skipped { gtid }
        } else {
            let rows = RowsEntry { origin: Origin::Unmanaged { gtid: gtid.clone() }, format, statements: g.statements };
            Captured::Unmanaged { gtid, rows }
        };
        Ok(Step::Group { captured, end: h.log_pos })
    }

    /// Ends a STANDALONE group with its one Query event.
    fn finish_statement(&mut self, h: &Header, q: Query) -> Result<Step, GroupError> {
        let g = self.group.take().expect("finish_statement runs inside a group");
        let gtid = g.gtid.text();
        if !g.statements.is_empty() || !g.current.is_empty() {
            return Err(h.out_of_place("as the end of a standalone group that had row events"));
        }
        let captured = if g.gtid.flags2 & gtid_flag::COMPLETED_XA != 0 {
            Captured::Skipped { gtid }
        } else {
            let id = statement_id(&q.sql);
            Captured::Statement { gtid, id, thread_id: q.thread_id, schema: q.schema, sql: q.sql, rows: None }
        };
        Ok(Step::Group { captured, end: h.log_pos })
    }
}

impl Group {
    fn push(&mut self, ev: &[u8]) -> Result<(), GroupError> {
        self.bytes += ev.len();
        if self.bytes > GROUP_BYTES_MAX {
            return Err(GroupError::TooLarge { gtid: self.gtid.text(), max: GROUP_BYTES_MAX });
        }
        self.current.extend_from_slice(ev);
        Ok(())
    }
}

#[cfg(test)]
#[path = "binlog_tests.rs"]
mod tests;
