//! The binlog tail: one dedicated COM_BINLOG_DUMP connection to the leader's own MariaDB,
//! its events grouped per GTID event group ([`super::binlog::Grouper`]) and sent, in
//! binlog order, as [`Captured`] values on a bounded channel to the coordinator.
//!
//! **Why shoal's own [`BackendConn`] and not `mysql_async`'s binlog stream:** the tail must
//! keep every event's raw bytes (header through CRC) to replay them as `BINLOG '<base64>'`,
//! and must read MariaDB-only events (Gtid 162 with its XA xid, XA_prepare 38) exactly as
//! `log_event.h` lays them out; mysql_common's binlog module parses into MySQL's model and
//! its MariaDB support is partial. `BackendConn` already logs in, and its
//! [`BackendConn::read_stream_packet`] joins the 0xFFFFFF-byte frames of events of 16 MiB
//! or more, so the decoding here stays a small pure module.
//!
//! Connection setup, in order: login (an account with `REPLICATION SLAVE`, and
//! `BINLOG MONITOR` or `SUPER` for `SHOW MASTER STATUS`), `log_bin` and `binlog_format=ROW`
//! checked, `SET @master_binlog_checksum = @@global.binlog_checksum` (events come with
//! their CRC, byte for byte as in the file), `@mariadb_slave_capability = 4` (Gtid events
//! are sent as such, not as BEGIN), `@master_heartbeat_period` (a silent connection is
//! detected), the start position (`SHOW MASTER STATUS` for [`StartAt::End`]), then
//! COM_BINLOG_DUMP (no Annotate_rows asked for). Each setup answer is awaited at most
//! [`SILENCE_MAX`]: `SHOW MASTER STATUS` can hang while commits wait for a semi-sync ACK
//! (`../shared/research/mariadb-semisync.md`; shoal does not run semi-sync), and a hang
//! becomes a retry, not a stuck tail.
//!
//! | event (type) | what the tail does |
//! |---|---|
//! | Rotate (4), real or the dump's fake one (log_pos 0) | position moves to the file (and offset) it names |
//! | Format_description (15) | kept as received; every `RowsEntry.format` of the file is a copy |
//! | Gtid (162) | starts a group; flags2 (STANDALONE, PREPARED_XA, COMPLETED_XA) and the xid decide its kind |
//! | Table_map (19), Write/Update/Delete_rows v1 (23–25) and v2 (30–32) | appended to the current SQL statement; STMT_END_F closes it |
//! | Annotate_rows (160), Intvar (5), Rand (13), User_var (14) | skipped |
//! | Query `SAVEPOINT …` / `ROLLBACK TO …` / `XA END …` inside a group | skipped |
//! | any other Query inside a row group (the `CREATE TABLE` of `CREATE TABLE … SELECT`) | not replicated, logged as a warning; the group's rows still are |
//! | Query `COMMIT` / `ROLLBACK`, Xid (16) | end a plain transaction: `Unmanaged`, or `Skipped` when it had no rows |
//! | XA_prepare (38) | ends the prepared part: `Prepared` when the gtrid starts with [`super::XID_PREFIX`], else `Unmanaged` |
//! | Query in a STANDALONE group | `Statement` (DDL, id from [`super::STATEMENT_MARK`]); `Skipped` when COMPLETED_XA (XA COMMIT / XA ROLLBACK) |
//! | Heartbeat (27), Stop (3), Binlog_checkpoint (161), Gtid_list (163), Start_encryption (164) | ignored |
//! | Incident (26), compressed events (165–171) | fatal: the tail stops and says why |
//!
//! **Position and reconnects.** [`BinlogTail::position`] is the end of the last complete
//! group sent (or the start position). When the connection breaks (killed thread, server
//! restart, no event or heartbeat for [`SILENCE_MAX`]) the tail reconnects from that
//! position with a backoff between [`RECONNECT_BACKOFF_MIN`] and [`RECONNECT_BACKOFF_MAX`],
//! counting each attempt in `shoal_capture_tail_reconnects_total`; a group cut by the
//! break is read again whole, so no group is sent twice or skipped. It retries for as long
//! as the handle lives, except after a fatal error (the binlog cannot be replicated, or
//! its position was purged): then it stops, [`BinlogTail::failure`] says why, and the
//! channel closes. Dropping the [`BinlogTail`] stops the task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BufMut;
use tokio::sync::mpsc;

use super::binlog::{GroupError, Grouper, Step};
use super::Captured;
use crate::backend::conn::{BackendConn, Target};
use crate::backend::tls::BackendTls;
use crate::error::ProxyError;
use crate::protocol::auth::Credential;
use crate::protocol::com;
use crate::protocol::framer::Expect;
use crate::protocol::handshake::BACKEND_BASE_CAPABILITIES;
use crate::protocol::reply::{parse_err, rows_of};

/// Largest single event the tail accepts (plus the packet's leading `0x00`): 1 GiB,
/// MariaDB's ceiling for `max_allowed_packet`, so any event the server could write fits.
pub const EVENT_BYTES_MAX: usize = 1 << 30;
/// Groups buffered between the tail and the coordinator; a slow coordinator stops the
/// tail reading (the server keeps the binlog), it never drops a group.
pub const CHANNEL_GROUPS_MAX: usize = 64;
/// How often the server sends a heartbeat on an idle dump (`@master_heartbeat_period`).
pub const HEARTBEAT_PERIOD: Duration = Duration::from_secs(1);
/// A dump that sends no byte for this long (no event, no heartbeat) is treated as lost;
/// also the limit on each setup statement's answer.
pub const SILENCE_MAX: Duration = Duration::from_secs(5);
/// First wait before a reconnect attempt.
pub const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest wait between reconnect attempts (the backoff doubles up to it).
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Login timeout of the dump connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// COM_BINLOG_DUMP command byte.
const COM_BINLOG_DUMP: u8 = 0x12;
/// `@mariadb_slave_capability` value MARIA_SLAVE_CAPABILITY_GTID: Gtid events as such.
const SLAVE_CAPABILITY_GTID: u8 = 4;
/// ER_MASTER_FATAL_ERROR_READING_BINLOG: the requested file/position does not exist
/// (purged, or never written): reconnecting cannot help.
const ER_MASTER_FATAL_ERROR_READING_BINLOG: u16 = 1236;
/// ER_SPECIFIC_ACCESS_DENIED_ERROR: the account lacks a privilege (REPLICATION SLAVE).
const ER_SPECIFIC_ACCESS_DENIED: u16 = 1227;
/// Collation of the dump connection (utf8mb4_general_ci); it carries no text shoal reads
/// except binlog file names.
const DUMP_COLLATION: u8 = 45;

/// Where a binlog position is: the file, the offset just past the last complete group
/// there, and that group's GTID (`None` until a group was read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Binlog file name (`mariadb-bin.000002`).
    pub file: String,
    /// Byte offset in it where the next group starts.
    pub pos: u64,
    /// GTID of the last complete group sent.
    pub gtid: Option<String>,
}

/// Where the tail starts reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// The binlog's current end (`SHOW MASTER STATUS`): only groups written from now on.
    End,
    /// A position from an earlier tail ([`BinlogTail::position`]), to resume.
    At(Position),
}

/// Why the tail could not (or can no longer) read the binlog.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// Connecting or logging in failed; retried on reconnect.
    #[error("binlog tail cannot log in to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: ProxyError,
    },
    /// The server answered a setup statement or the dump with an error.
    #[error("MariaDB at {addr} refused {what}: error {code}: {message}")]
    Refused { addr: String, what: &'static str, code: u16, message: String },
    /// The server's binlog is not one the tail can replicate; fix its configuration.
    #[error("MariaDB at {addr} cannot be tailed: {what}")]
    NotReplicable { addr: String, what: String },
    /// The dump connection broke; retried from the last complete group.
    #[error("binlog dump from {addr} broke: {source}")]
    Lost {
        addr: String,
        #[source]
        source: ProxyError,
    },
    /// No byte (event or heartbeat) for [`SILENCE_MAX`], or a setup statement unanswered
    /// that long; retried.
    #[error("MariaDB at {addr} sent nothing for {} ms (heartbeats every {} ms); reconnecting", SILENCE_MAX.as_millis(), HEARTBEAT_PERIOD.as_millis())]
    Silent { addr: String },
    /// The binlog itself cannot be grouped into transactions (see the message).
    #[error("binlog from {addr}: {source}")]
    Binlog {
        addr: String,
        #[source]
        source: GroupError,
    },
}

impl TailError {
    /// Whether reconnecting cannot help: the tail stops instead of retrying.
    pub fn is_fatal(&self) -> bool {
        match self {
            TailError::Connect { .. } | TailError::Lost { .. } | TailError::Silent { .. } => false,
            TailError::Refused { code, .. } => *code == ER_MASTER_FATAL_ERROR_READING_BINLOG,
            TailError::NotReplicable { .. } | TailError::Binlog { .. } => true,
        }
    }
}

/// A login for the tail's dump connection: `mysql_native_password` (or an empty password).
pub fn dump_target(addr: &str, user: &str, password: &str, tls: Arc<BackendTls>) -> Target {
    Target {
        addr: addr.into(),
        user: user.to_string(),
        credential: Credential::from_password(password.as_bytes()),
        capabilities: BACKEND_BASE_CAPABILITIES,
        collation: DUMP_COLLATION,
        connect_timeout: CONNECT_TIMEOUT,
        relayed: None,
        tls,
    }
}

/// What the handle and the task share.
#[derive(Debug)]
struct Shared {
    /// End of the last complete group sent: where a reconnect resumes, what the
    /// coordinator records.
    position: Mutex<Position>,
    /// Why the task stopped, when it stopped on a fatal error.
    failure: Mutex<Option<String>>,
    /// Server thread id of the current dump connection (for operators and tests).
    thread_id: Mutex<Option<u32>>,
    /// Dump connections opened so far (the first one included).
    connections: AtomicU64,
}

/// Handle of a running tail; dropping it stops the task.
#[derive(Debug)]
pub struct BinlogTail {
    /// State the task keeps current.
    shared: Arc<Shared>,
    /// The task, aborted on drop.
    task: tokio::task::JoinHandle<()>,
}

impl BinlogTail {
    /// Connects to `target` as replica `server_id` (unique among the server's replicas; a
    /// second dump with the same id makes MariaDB end the first) and starts the tail at
    /// `from`. Errors of this first connection are returned, not retried.
    pub async fn start(
        target: Target,
        server_id: u32,
        from: StartAt,
    ) -> Result<(BinlogTail, mpsc::Receiver<Captured>), TailError> {
        let dump = Dump::open(&target, server_id, &from).await?;
        let shared = Arc::new(Shared {
            position: Mutex::new(dump.start.clone()),
            failure: Mutex::new(None),
            thread_id: Mutex::new(Some(dump.conn.thread_id)),
            connections: AtomicU64::new(1),
        });
        let (tx, rx) = mpsc::channel(CHANNEL_GROUPS_MAX);
        let task = tokio::spawn(run(target, server_id, shared.clone(), tx, dump));
        Ok((BinlogTail { shared, task }, rx))
    }

    /// End of the last complete group sent on the channel (where a resume starts).
    pub fn position(&self) -> Position {
        self.shared.position.lock().expect("tail position lock").clone()
    }

    /// Why the tail stopped, if it stopped on a fatal error (the channel is closed then).
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.lock().expect("tail failure lock").clone()
    }

    /// Dump connections opened so far: 1 plus the successful reconnects.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Server thread id of the dump connection, while one is open.
    pub fn thread_id(&self) -> Option<u32> {
        *self.shared.thread_id.lock().expect("tail thread lock")
    }
}

impl Drop for BinlogTail {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One open dump connection.
struct Dump {
    conn: BackendConn,
    /// Where it was asked to start.
    start: Position,
    /// The first packet, read by `open` to see whether the server accepted the dump.
    first: Option<bytes::BytesMut>,
    /// Whether the connection declared CRC32 checksums (events before the first
    /// Format_description carry one).
    crc: bool,
}

impl Dump {
    async fn open(t: &Target, server_id: u32, from: &StartAt) -> Result<Dump, TailError> {
        let addr = t.addr.to_string();
        let mut conn =
            BackendConn::connect(t).await.map_err(|source| TailError::Connect { addr: addr.clone(), source })?;
        let lost = |source| TailError::Lost { addr: addr.clone(), source };
        let settings = query(
            &mut conn,
            "SELECT @@global.log_bin, @@global.binlog_format, @@global.binlog_checksum",
            "the settings query",
        )
        .await?;
        let cell = |i: usize| settings.first().and_then(|r| r.get(i)).cloned().flatten().unwrap_or_default();
        if cell(0) != b"1" {
            return Err(TailError::NotReplicable {
                addr,
                what: "the binary log is off; start MariaDB with --log-bin".into(),
            });
        }
        if !cell(1).eq_ignore_ascii_case(b"ROW") {
            return Err(TailError::NotReplicable {
                addr,
                what: format!(
                    "binlog_format is {}; shoal replicates row images only: set binlog_format=ROW",
                    String::from_utf8_lossy(&cell(1))
                ),
            });
        }
        let set = format!(
            "SET @master_binlog_checksum = @@global.binlog_checksum, @mariadb_slave_capability = {SLAVE_CAPABILITY_GTID}, \
             @master_heartbeat_period = {}",
            HEARTBEAT_PERIOD.as_nanos()
        );
        query(&mut conn, &set, "the dump settings").await?;
        let start = match from {
            StartAt::At(p) => p.clone(),
            StartAt::End => {
                let rows = query(&mut conn, "SHOW MASTER STATUS", "SHOW MASTER STATUS (grant BINLOG MONITOR)").await?;
                let row = rows.first();
                let file = row.and_then(|r| r.first()).cloned().flatten();
                let pos = row.and_then(|r| r.get(1)).cloned().flatten();
                let pos = pos.and_then(|p| String::from_utf8_lossy(&p).parse::<u64>().ok());
                let (Some(file), Some(pos)) = (file, pos) else {
                    return Err(TailError::NotReplicable {
                        addr,
                        what: "SHOW MASTER STATUS returned no position; the account needs BINLOG MONITOR".into(),
                    });
                };
                Position { file: String::from_utf8_lossy(&file).into_owned(), pos, gtid: None }
            }
        };
        let Ok(pos) = u32::try_from(start.pos) else {
            return Err(TailError::NotReplicable {
                addr,
                what: format!("binlog position {} is beyond COM_BINLOG_DUMP's 4 GiB; lower max_binlog_size", start.pos),
            });
        };
        let dump = conn.send_command_with(|b| {
            b.put_u8(COM_BINLOG_DUMP);
            b.put_u32_le(pos);
            b.put_u16_le(0); // flags: blocking, no Annotate_rows
            b.put_u32_le(server_id);
            b.put_slice(start.file.as_bytes());
        });
        dump.await.map_err(lost)?;
        let crc = cell(2).eq_ignore_ascii_case(b"CRC32");
        let mut dump = Dump { conn, start, first: None, crc };
        let first = dump.next_packet(&addr).await?;
        dump.first = Some(first);
        Ok(dump)
    }

    /// The next event's bytes (the packet's `0x00` stripped), or why there is none.
    async fn next_packet(&mut self, addr: &str) -> Result<bytes::BytesMut, TailError> {
        let (_, mut p) = match self.conn.read_stream_packet(EVENT_BYTES_MAX + 1, SILENCE_MAX).await {
            Ok(r) => r,
            Err(ProxyError::BackendIo { source, .. }) if source.kind() == std::io::ErrorKind::TimedOut => {
                return Err(TailError::Silent { addr: addr.to_string() })
            }
            Err(source) => return Err(TailError::Lost { addr: addr.to_string(), source }),
        };
        match p.first() {
            Some(0x00) => {
                let _ = p.split_to(1);
                Ok(p)
            }
            Some(0xFF) => {
                let (code, message) = parse_err(&p).unwrap_or((0, "unreadable error packet".into()));
                let what = match code {
                    ER_MASTER_FATAL_ERROR_READING_BINLOG => {
                        "COM_BINLOG_DUMP (the position is not in its binlog, purged or never written: \
                         start a new tail at the end and resynchronise this node's followers)"
                    }
                    ER_SPECIFIC_ACCESS_DENIED => "COM_BINLOG_DUMP (grant the account REPLICATION SLAVE)",
                    _ => "COM_BINLOG_DUMP",
                };
                Err(TailError::Refused { addr: addr.to_string(), what, code, message })
            }
            Some(0xFE) if p.len() < 9 => Err(TailError::Lost {
                addr: addr.to_string(),
                source: ProxyError::BackendProtocol {
                    addr: addr.to_string(),
                    what: "the server ended the dump".into(),
                },
            }),
            _ => Err(TailError::Lost {
                addr: addr.to_string(),
                source: ProxyError::BackendProtocol { addr: addr.to_string(), what: "unexpected dump packet".into() },
            }),
        }
    }
}

/// Runs `sql` and returns its rows.
async fn query(conn: &mut BackendConn, sql: &str, what: &'static str) -> Result<Vec<Vec<Option<Vec<u8>>>>, TailError> {
    let addr = conn.addr.to_string();
    let (framer, raw) =
        match tokio::time::timeout(SILENCE_MAX, conn.ask(com::QUERY, sql.as_bytes(), Expect::Results)).await {
            Ok(Ok(r)) => r,
            Ok(Err(source)) => return Err(TailError::Lost { addr, source }),
            Err(_) => return Err(TailError::Silent { addr }),
        };
    if framer.error.is_some() {
        let (code, message) = raw.get(4..).and_then(parse_err).unwrap_or((0, "unreadable error".into()));
        return Err(TailError::Refused { addr, what, code, message });
    }
    Ok(rows_of(&raw, conn.deprecate_eof()))
}

/// The task: stream, and on a non-fatal error reconnect from the last complete group.
async fn run(target: Target, server_id: u32, shared: Arc<Shared>, tx: mpsc::Sender<Captured>, first: Dump) {
    let addr = target.addr.to_string();
    let mut dump = Some(first);
    let mut backoff = RECONNECT_BACKOFF_MIN;
    loop {
        let d = match dump.take() {
            Some(d) => d,
            None => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
                metrics::counter!(crate::metrics::CAPTURE_TAIL_RECONNECTS).increment(1);
                let from = StartAt::At(shared.position.lock().expect("tail position lock").clone());
                match Dump::open(&target, server_id, &from).await {
                    Ok(d) => {
                        tracing::info!(addr = %addr, file = %d.start.file, pos = d.start.pos, "binlog tail reconnected");
                        *shared.thread_id.lock().expect("tail thread lock") = Some(d.conn.thread_id);
                        shared.connections.fetch_add(1, Ordering::Relaxed);
                        d
                    }
                    Err(e) if e.is_fatal() => return stop(&shared, e),
                    Err(e) => {
                        tracing::warn!(error = %e, "binlog tail reconnect failed; retrying");
                        continue;
                    }
                }
            }
        };
        let mut sent = false;
        match stream(d, &addr, &shared, &tx, &mut sent).await {
            Ok(()) => return, // the coordinator dropped its receiver
            Err(e) if e.is_fatal() => return stop(&shared, e),
            Err(e) => {
                *shared.thread_id.lock().expect("tail thread lock") = None;
                if sent {
                    backoff = RECONNECT_BACKOFF_MIN;
                }
                tracing::warn!(error = %e, "binlog tail lost its connection; reconnecting after the last complete group");
            }
        }
    }
}

fn stop(shared: &Shared, e: TailError) {
    tracing::error!(error = %e, "binlog tail stopped");
    *shared.failure.lock().expect("tail failure lock") = Some(e.to_string());
    *shared.thread_id.lock().expect("tail thread lock") = None;
}

/// Reads events until an error or until the receiver is gone (`Ok`).
async fn stream(
    mut d: Dump,
    addr: &str,
    shared: &Shared,
    tx: &mpsc::Sender<Captured>,
    sent: &mut bool,
) -> Result<(), TailError> {
    let mut grouper = Grouper::new(d.crc);
    let mut file = d.start.file.clone();
    loop {
        let ev = match d.first.take() {
            Some(p) => p,
            None => d.next_packet(addr).await?,
        };
        let step = grouper.on_event(&ev).map_err(|source| TailError::Binlog { addr: addr.to_string(), source })?;
        match step {
            Step::Nothing => {}
            Step::Rotate { file: next, pos } => {
                file = next;
                let mut p = shared.position.lock().expect("tail position lock");
                p.file = file.clone();
                p.pos = pos;
            }
            Step::Group { captured, end } => {
                let gtid = captured.gtid().to_string();
                if tx.send(captured).await.is_err() {
                    return Ok(());
                }
                *sent = true;
                *shared.position.lock().expect("tail position lock") =
                    Position { file: file.clone(), pos: u64::from(end), gtid: Some(gtid) };
            }
        }
    }
}
