//! One raw connection to a MariaDB/MySQL server: login, commands, and the relay of a
//! response to the client as untouched bytes.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::tls::{decide, BackendTls, Decision};
use crate::error::ProxyError;
use crate::protocol::auth::Credential;
use crate::protocol::com;
use crate::protocol::framer::{Expect, Framer, Step};
use mysql_common::packets::{AuthPlugin, ComChangeUser, ComChangeUserMoreData};
use mysql_common::proto::MySerialize;

use crate::protocol::auth::SCRAMBLE_BYTES;
use crate::protocol::handshake::{backend_hello, parse_server_hello, NATIVE_PASSWORD};
use crate::protocol::packet::{
    begin_packet, complete_frame_len, finish_packet, put_packet, take_packet, HEADER_BYTES, PAYLOAD_MAX,
};
use crate::protocol::reply::parse_err;
use crate::protocol::stmt::set_stmt_id;
use crate::protocol::CapabilityFlags;
use crate::session::prepared::PreparedMeta;
use crate::session::state::{mark_synced, sync_plan, BackendState, SessionState};

/// Outcome of a relayed login.
pub enum Relayed {
    /// Logged in: the connection, and the client's next sequence id.
    In(Box<BackendConn>, u8),
    /// The server refused; its ERR was relayed to the client. Its message.
    Refused(String),
}

/// Outcome of bringing a backend connection in line with the session.
pub enum Ready {
    /// The connection has the session's state.
    Yes,
    /// The backend refused (e.g. the schema was dropped): its ERR response, to forward.
    Refused(BytesMut),
}

/// What [`BackendConn::advance`] made of the bytes read so far.
#[derive(Debug)]
pub enum Advance {
    /// The response is complete: these are its (remaining) bytes.
    Done(BytesMut),
    /// A large response goes on: these bytes of it can be passed on now.
    Part(BytesMut),
    /// More bytes are needed.
    NeedMore,
}

/// The client a response is relayed to, as the backend sees it: somewhere to write whole
/// frames, and (for `LOAD DATA LOCAL`) to read the file's packets from. The frontend's
/// client socket implements it; the backend never depends on the frontend.
pub trait ClientSink: Send {
    /// Writes bytes that are whole frames.
    fn write_frames(&mut self, bytes: &[u8]) -> impl std::future::Future<Output = Result<(), ProxyError>> + Send;
    /// Reads one packet (sequence id, payload).
    fn read_packet(&mut self) -> impl std::future::Future<Output = Result<(u8, BytesMut), ProxyError>> + Send;
}

/// The sink of responses shoal keeps for itself (never written to).
struct NoClient;

impl ClientSink for NoClient {
    async fn write_frames(&mut self, _: &[u8]) -> Result<(), ProxyError> {
        unreachable!("responses shoal keeps are never written to a client")
    }
    async fn read_packet(&mut self) -> Result<(u8, BytesMut), ProxyError> {
        unreachable!("responses shoal keeps are never written to a client")
    }
}

/// Where [`BackendConn::drive`] sends a response's bytes.
enum Sink<'a, C> {
    /// Kept whole and returned (commands shoal sends for itself).
    Keep,
    /// Written to the client as they arrive.
    Client(&'a mut C),
}

/// Bytes read from a backend socket at a time (also the buffer's resting size).
pub const READ_CHUNK_BYTES: usize = 64 * 1024;
/// A pooled connection idle for longer than this is probed before use (see `is_alive`).
const IDLE_PROBE_AFTER: Duration = Duration::from_millis(500);
/// A statement that empties the diagnostics area: MariaDB clears it for a statement that
/// uses a table, and this one reads no row and raises nothing (any account may read it).
const CLEAR_DIAGNOSTICS_SQL: &[u8] = b"SELECT 1 FROM information_schema.CHARACTER_SETS LIMIT 0";
/// Round trips of a relayed authentication exchange before shoal gives up.
const RELAY_ROUNDS_MAX: usize = 8;
/// MariaDB's "access denied" login error.
const ER_ACCESS_DENIED: u16 = 1045;
/// Largest packet shoal accepts from a backend during login.
const LOGIN_PACKET_BYTES_MAX: usize = 64 * 1024;
/// Length of an SSLRequest payload: capabilities, max packet, collation, 23 filler bytes
/// (MariaDB's extended capabilities in the last 4).
const SSL_REQUEST_BYTES: usize = 32;

/// A backend socket: TCP, TLS over TCP (`[backends] tls`), or a unix socket for a server
/// on the same host (`unix:/path`), which saves the loopback TCP stack on every packet.
#[derive(Debug)]
pub enum BackendStream {
    /// host:port.
    Tcp(TcpStream),
    /// host:port after the SSLRequest and the TLS handshake (boxed: rustls' state is large).
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Unix domain socket.
    Unix(UnixStream),
}

impl BackendStream {
    /// Connects to `host:port` or `unix:/path`.
    pub async fn connect(addr: &str) -> std::io::Result<Self> {
        match crate::config::unix_path(addr) {
            Some(path) => Ok(BackendStream::Unix(UnixStream::connect(path).await?)),
            None => {
                let s = TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                Ok(BackendStream::Tcp(s))
            }
        }
    }

    /// Reads without waiting. On TLS this reads the raw socket: any byte there on an idle
    /// connection (data, an alert, EOF) means it is not usable, and the caller discards
    /// it then, so the consumed byte does not matter.
    fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            BackendStream::Tcp(s) => s.try_read(buf),
            BackendStream::Tls(s) => s.get_ref().0.try_read(buf),
            BackendStream::Unix(s) => s.try_read(buf),
        }
    }

    async fn read_buf(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            BackendStream::Tcp(s) => s.read_buf(buf).await,
            BackendStream::Tls(s) => s.read_buf(buf).await,
            BackendStream::Unix(s) => s.read_buf(buf).await,
        }
    }

    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            BackendStream::Tcp(s) => s.write_all(buf).await,
            // rustls buffers records: flush so the command leaves now.
            BackendStream::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
            BackendStream::Unix(s) => s.write_all(buf).await,
        }
    }
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// host:port.
    pub addr: Arc<str>,
    /// Account name.
    pub user: String,
    /// Proof of password.
    pub credential: Credential,
    /// Capabilities for the connection (base ∪ the session capabilities of the pool key).
    pub capabilities: CapabilityFlags,
    /// Handshake collation of the clients this connection serves.
    pub collation: u8,
    /// Limit on TCP connect + login.
    pub connect_timeout: Duration,
    /// The account's plugin when its logins are relayed to the server (shoal holds no
    /// credential): no further connection can be opened for it.
    pub relayed: Option<String>,
    /// `[backends] tls` of the proxy generation that built this target: every connection
    /// opened from it (pool, pipe, dump) negotiates TLS the same way.
    pub tls: Arc<BackendTls>,
}

/// A logged-in backend connection.
pub struct BackendConn {
    stream: BackendStream,
    /// Bytes read from the server not yet relayed or consumed.
    rbuf: BytesMut,
    /// Command bytes being assembled for the server.
    wbuf: BytesMut,
    /// host:port, for errors and metrics.
    pub addr: Arc<str>,
    /// The server's thread id (what `KILL QUERY` on the server takes).
    pub thread_id: u32,
    /// Server version string from the greeting.
    pub server_version: String,
    /// Negotiated capabilities; `deprecate_eof` is read from them on every response.
    pub capabilities: CapabilityFlags,
    /// Session state this connection currently has (schema, variables, statements).
    pub state: BackendState,
    /// The session that held it kept state here that no other session may see (a pin
    /// reason held): it must be reset ([`Self::reset`]) before anyone else uses it, and
    /// the pool discards it if it comes back so (a session that ended without the reset).
    pub needs_reset: bool,
    /// The connection collected what `COM_RESET_CONNECTION` keeps (the profiles of
    /// `SET profiling = 1`): it is closed, not reset, when its session ends.
    pub keeps_history: bool,
    /// Who it is logged in as (for COM_CHANGE_USER).
    login: Arc<Target>,
    /// The greeting's nonce (COM_CHANGE_USER answers it again).
    scramble: Vec<u8>,
    /// A command was sent and its response not read to the end: unusable if returned so.
    busy: bool,
    /// An I/O or protocol error happened: the pool must discard this connection.
    broken: bool,
    /// When the last response finished (decides whether `is_alive` probes).
    last_used: std::time::Instant,
    /// The server offered TLS and this connection logged in without it (`disabled`, or a
    /// unix socket): a refused login then says that TLS may be what is missing.
    tls_plain_offered: bool,
}

impl std::fmt::Debug for BackendConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendConn").field("addr", &self.addr).field("thread_id", &self.thread_id).finish()
    }
}

impl BackendConn {
    /// Opens the socket, reads the server's greeting and, when `[backends] tls` says so
    /// ([`decide`]), sends the SSLRequest and upgrades to TLS (no login yet). Returns the
    /// connection and the sequence id of the login reply (1, or 2 after an SSLRequest).
    async fn open(t: &Target) -> Result<(BackendConn, u8), ProxyError> {
        let fail = |reason: String, code: u16| ProxyError::BackendConnect { addr: t.addr.to_string(), reason, code };
        let io = |e: std::io::Error| ProxyError::BackendIo { addr: t.addr.to_string(), source: e };
        let mut stream = BackendStream::connect(&t.addr).await.map_err(|e| fail(e.to_string(), 2003))?;
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
        let greeting = loop {
            match take_packet(&mut rbuf, LOGIN_PACKET_BYTES_MAX) {
                Ok(Some((_, p))) => break p,
                Ok(None) => {}
                Err(e) => return Err(ProxyError::BackendProtocol { addr: t.addr.to_string(), what: e.to_string() }),
            }
            if stream.read_buf(&mut rbuf).await.map_err(io)? == 0 {
                return Err(fail("closed the connection before its greeting".into(), 2013));
            }
        };
        if greeting.first() == Some(&0xFF) {
            let (code, msg) = parse_err(&greeting).unwrap_or((2003, "refused".into()));
            return Err(fail(msg, code));
        }
        let hello = parse_server_hello(&greeting).ok_or_else(|| fail("unreadable greeting".into(), 2003))?;
        let mut capabilities = t.capabilities & hello.capabilities;
        let mut login_seq = 1;
        let offered = hello.capabilities.contains(CapabilityFlags::CLIENT_SSL);
        match decide(t.tls.mode, offered) {
            Decision::Plain => {}
            // A unix socket is local: plain whatever the mode (MariaDB counts it as secure).
            _ if matches!(stream, BackendStream::Unix(_)) => {}
            Decision::Refuse => {
                return Err(fail(
                    format!(
                        "backends.tls = \"{}\" but the server does not offer TLS: enable TLS on the server \
                         (ssl_cert, ssl_key) or set backends.tls = \"preferred\" or \"disabled\"",
                        t.tls.mode.as_str()
                    ),
                    2026,
                ))
            }
            Decision::Tls => {
                // The SSLRequest is the login reply's first 32 bytes with CLIENT_SSL set.
                capabilities |= CapabilityFlags::CLIENT_SSL;
                let reply = backend_hello(capabilities, t.collation, "", &[]);
                let mut request = BytesMut::with_capacity(HEADER_BYTES + SSL_REQUEST_BYTES);
                put_packet(&mut request, 1, &reply[..SSL_REQUEST_BYTES]);
                stream.write_all(&request).await.map_err(io)?;
                stream = match stream {
                    BackendStream::Tcp(tcp) => BackendStream::Tls(Box::new(
                        t.tls.upgrade(tcp, &t.addr).await.map_err(|reason| fail(reason, 2026))?,
                    )),
                    other => other,
                };
                login_seq = 2;
            }
        }
        let conn = BackendConn {
            stream,
            rbuf,
            wbuf: BytesMut::with_capacity(1024),
            addr: t.addr.clone(),
            thread_id: hello.connection_id,
            server_version: hello.version,
            capabilities,
            state: BackendState::default(),
            needs_reset: false,
            keeps_history: false,
            login: Arc::new(t.clone()),
            scramble: hello.scramble,
            busy: false,
            broken: false,
            last_used: std::time::Instant::now(),
            tls_plain_offered: offered && login_seq == 1,
        };
        Ok((conn, login_seq))
    }

    /// Whether the connection runs over TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, BackendStream::Tls(_))
    }

    /// Connects and logs in with `mysql_native_password`.
    pub async fn connect(t: &Target) -> Result<Self, ProxyError> {
        let fail = |reason: String, code: u16| ProxyError::BackendConnect { addr: t.addr.to_string(), reason, code };
        if let Some(plugin) = &t.relayed {
            return Err(fail(
                format!(
                    "account {} authenticates with {plugin}: shoal relayed its client's login to the server and \
                     cannot open more connections for it (give it a mysql_native_password account to pool it)",
                    t.user
                ),
                1045,
            ));
        }
        let login = async {
            let (mut conn, seq) = Self::open(t).await?;
            let token = t.credential.token(&conn.scramble);
            let reply = backend_hello(conn.capabilities, t.collation, &t.user, &token);
            conn.write_packet(seq, &reply).await?;
            let (seq, resp) = conn.read_packet().await?;
            let resp = match resp.first() {
                // Auth switch: the account uses another plugin than announced; only native
                // password can be answered without the plaintext.
                Some(0xFE) if resp.len() > 1 => {
                    let body = &resp[1..];
                    let name_end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
                    if &body[..name_end] != NATIVE_PASSWORD.as_bytes() {
                        let plugin = String::from_utf8_lossy(&body[..name_end]).into_owned();
                        return Err(fail(
                            format!(
                                "account {} uses auth plugin {plugin}; shoal needs mysql_native_password on backends",
                                t.user
                            ),
                            1045,
                        ));
                    }
                    let nonce = body.get(name_end + 1..).unwrap_or_default();
                    let nonce = &nonce[..nonce.len().min(20)];
                    let token = t.credential.token(nonce);
                    conn.write_packet(seq.wrapping_add(1), &token).await?;
                    conn.read_packet().await?.1
                }
                _ => resp,
            };
            match resp.first() {
                Some(0x00) => Ok(conn),
                Some(0xFF) => {
                    let (code, mut msg) = parse_err(&resp).unwrap_or((1045, "login refused".into()));
                    if code == ER_ACCESS_DENIED && conn.tls_plain_offered {
                        // MariaDB refuses a plain login under require_secure_transport
                        // with a plain "access denied" (3159 only on MySQL).
                        msg.push_str(&format!(
                            " (this login ran without TLS, which the server offers: if it requires secure \
                             transport, set backends.tls = \"required\" or a verify mode; backends.tls is \"{}\")",
                            t.tls.mode.as_str()
                        ));
                    }
                    Err(fail(msg, code))
                }
                _ => Err(fail("unexpected login reply".into(), 2003)),
            }
        };
        match tokio::time::timeout(t.connect_timeout, login).await {
            Ok(r) => r,
            Err(_) => Err(fail(format!("no login within {} ms", t.connect_timeout.as_millis()), 2003)),
        }
    }

    /// Logs in as `t.user` by relaying the server's authentication exchange to the client
    /// and back, for accounts whose plugin shoal cannot answer itself (`client_ed25519`,
    /// PAM, …): the server authenticates the client. `client_seq` is the sequence id of
    /// the client's next packet. Returns the connection and the client's next sequence
    /// id, or `Refused` when the server refused the login (its ERR went to the client).
    pub async fn relay_login<C: ClientSink>(
        t: &Target,
        client: &mut C,
        mut client_seq: u8,
    ) -> Result<Relayed, ProxyError> {
        let (mut conn, seq) = Self::open(t).await?;
        // Announce native password with no proof: the server switches to the account's
        // own plugin, and that exchange is the client's to answer.
        let reply = backend_hello(conn.capabilities, t.collation, &t.user, &[]);
        conn.write_packet(seq, &reply).await?;
        for _ in 0..RELAY_ROUNDS_MAX {
            let (seq, packet) = conn.read_packet().await?;
            match packet.first() {
                Some(0x00) => return Ok(Relayed::In(Box::new(conn), client_seq)),
                Some(0xFF) => {
                    let mut frame = BytesMut::new();
                    put_packet(&mut frame, client_seq, &packet);
                    client.write_frames(&frame).await?;
                    let (_, msg) = parse_err(&packet).unwrap_or((1045, "login refused".into()));
                    return Ok(Relayed::Refused(msg));
                }
                _ => {
                    // An auth switch (0xFE) or more auth data (0x01): the client answers.
                    let mut frame = BytesMut::new();
                    put_packet(&mut frame, client_seq, &packet);
                    client.write_frames(&frame).await?;
                    let (cseq, answer) = client.read_packet().await?;
                    client_seq = cseq.wrapping_add(1);
                    conn.write_packet(seq.wrapping_add(1), &answer).await?;
                }
            }
        }
        Err(conn.protocol_err("authentication exchange did not end"))
    }

    /// Who it is logged in as.
    pub fn login(&self) -> &Target {
        &self.login
    }

    /// True when the connection cannot be used further: broken, or in the middle of a
    /// response.
    pub fn is_unusable(&self) -> bool {
        self.broken || self.busy
    }

    /// `COM_RESET_CONNECTION`: the server rolls back, unlocks tables, releases advisory
    /// locks, drops temporary tables, forgets user variables, prepared statements,
    /// session variables and diagnostics; only the login and the schema stay.
    pub async fn reset(&mut self) -> Result<(), ProxyError> {
        let (framer, _) = self.ask(com::RESET_CONNECTION, &[], Expect::Single).await?;
        if framer.error.is_some() {
            return Err(self.protocol_err("COM_RESET_CONNECTION refused"));
        }
        let schema = self.state.schema.take();
        self.state = BackendState { schema, ..BackendState::default() };
        self.needs_reset = false;
        Ok(())
    }

    /// `COM_CHANGE_USER` to the same account without a schema: everything
    /// [`Self::reset`] clears, and the current schema too (MariaDB cannot otherwise leave
    /// a schema once one is selected).
    pub async fn change_user(&mut self) -> Result<(), ProxyError> {
        let t = self.login.clone();
        let token = t.credential.token(&self.scramble);
        let more =
            ComChangeUserMoreData::new(t.collation as u16).with_auth_plugin(Some(AuthPlugin::MysqlNativePassword));
        let packet = ComChangeUser::new()
            .with_user(Some(t.user.as_bytes()))
            .with_auth_plugin_data(Some(&token[..]))
            .with_database(None::<&[u8]>)
            .with_more_data(Some(more));
        let mut body = Vec::with_capacity(64 + t.user.len());
        packet.serialize(&mut body);
        self.busy = true;
        self.write_packet(0, &body).await?;
        let (seq, resp) = self.read_packet().await?;
        let resp = if resp.first() == Some(&0xFE) && resp.len() > 1 {
            // Auth switch to native password with a fresh nonce.
            let body = &resp[1..];
            let name_end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
            let nonce = body.get(name_end + 1..).unwrap_or_default();
            let nonce = &nonce[..nonce.len().min(SCRAMBLE_BYTES)];
            self.scramble = nonce.to_vec();
            let token = t.credential.token(nonce);
            self.write_packet(seq.wrapping_add(1), &token).await?;
            self.read_packet().await?.1
        } else {
            resp
        };
        self.busy = false;
        if resp.first() != Some(&0x00) {
            return Err(self.protocol_err("COM_CHANGE_USER refused"));
        }
        self.state = BackendState::default();
        self.needs_reset = false;
        Ok(())
    }

    /// Empties the connection's diagnostics area (warnings, errors of its last statement
    /// that had any) when another session left some: a statement that reads a table and
    /// raises nothing clears it.
    pub async fn clear_diagnostics(&mut self) -> Result<(), ProxyError> {
        if !self.state.da_dirty {
            return Ok(());
        }
        let (framer, _) = self.ask(com::QUERY, CLEAR_DIAGNOSTICS_SQL, Expect::Results).await?;
        self.state.da_dirty = framer.left_diagnostics();
        Ok(())
    }

    /// Asks the server for one short value shoal needs (a value a statement changed that
    /// shoal cannot compute itself): `Some(None)` for SQL `NULL`, `None` when the answer
    /// is an error or has no row.
    pub async fn query_value(&mut self, sql: &str) -> Result<Option<Option<Vec<u8>>>, ProxyError> {
        let (framer, raw) = self.ask(com::QUERY, sql.as_bytes(), Expect::Results).await?;
        if framer.error.is_some() {
            return Ok(None);
        }
        Ok(crate::protocol::reply::first_value(&raw, self.deprecate_eof()))
    }

    /// Cheap liveness check for a connection coming out of the pool: a server that closed
    /// it (restart, `wait_timeout`) has left an EOF or an error packet to read. Checked
    /// only after `IDLE_PROBE_AFTER` of idleness (unless `probe_always`): a connection used a moment ago is alive
    /// or fails its next command anyway, and the probe costs a syscall.
    pub fn is_alive(&mut self, probe_always: bool) -> bool {
        if self.broken || !self.rbuf.is_empty() {
            // Unread bytes on an idle connection mean it is out of step.
            return false;
        }
        if !probe_always && self.last_used.elapsed() < IDLE_PROBE_AFTER {
            return true;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Marks the connection as not reusable (e.g. its session state is unknown).
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    fn io_err(&mut self, e: std::io::Error) -> ProxyError {
        self.broken = true;
        ProxyError::BackendIo { addr: self.addr.to_string(), source: e }
    }

    fn protocol_err(&mut self, what: impl Into<String>) -> ProxyError {
        self.broken = true;
        ProxyError::BackendProtocol { addr: self.addr.to_string(), what: what.into() }
    }

    async fn fill(&mut self) -> Result<(), ProxyError> {
        self.rbuf.reserve(READ_CHUNK_BYTES);
        match self.stream.read_buf(&mut self.rbuf).await {
            Ok(0) => Err(self.io_err(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => Ok(()),
            Err(e) => Err(self.io_err(e)),
        }
    }

    async fn read_packet(&mut self) -> Result<(u8, BytesMut), ProxyError> {
        loop {
            match take_packet(&mut self.rbuf, LOGIN_PACKET_BYTES_MAX) {
                Ok(Some(p)) => return Ok(p),
                Ok(None) => self.fill().await?,
                Err(e) => return Err(self.protocol_err(e.to_string())),
            }
        }
    }

    /// Reads one logical packet of a stream shoal consumes itself (the binlog dump): its
    /// frames joined, so a payload of 16 MiB or more arrives whole. `limit` bounds it;
    /// `idle_max` bounds each wait for more bytes (not the whole packet, which may be
    /// large), and expires as an I/O error of kind `TimedOut`.
    pub async fn read_stream_packet(&mut self, limit: usize, idle_max: Duration) -> Result<(u8, BytesMut), ProxyError> {
        loop {
            match take_packet(&mut self.rbuf, limit) {
                Ok(Some(p)) => return Ok(p),
                Ok(None) => match tokio::time::timeout(idle_max, self.fill()).await {
                    Ok(r) => r?,
                    Err(_) => return Err(self.io_err(std::io::ErrorKind::TimedOut.into())),
                },
                Err(e) => return Err(self.protocol_err(e.to_string())),
            }
        }
    }

    async fn write_packet(&mut self, seq: u8, payload: &[u8]) -> Result<(), ProxyError> {
        self.wbuf.clear();
        put_packet(&mut self.wbuf, seq, payload);
        self.flush_wbuf().await
    }

    async fn flush_wbuf(&mut self) -> Result<(), ProxyError> {
        let r = self.stream.write_all(&self.wbuf).await;
        self.wbuf.clear();
        if self.wbuf.capacity() > READ_CHUNK_BYTES {
            self.wbuf = BytesMut::with_capacity(1024);
        }
        r.map_err(|e| self.io_err(e))
    }

    /// Sends a command (sequence id 0). The response must then be read with
    /// [`Self::relay`] or [`Self::read_response`].
    pub async fn send_command(&mut self, payload: &[u8]) -> Result<(), ProxyError> {
        self.busy = true;
        self.write_packet(0, payload).await
    }

    /// Sends a command whose payload `build` writes straight into the write buffer.
    pub async fn send_command_with(&mut self, build: impl FnOnce(&mut BytesMut)) -> Result<(), ProxyError> {
        self.busy = true;
        self.wbuf.clear();
        let at = begin_packet(&mut self.wbuf, 0);
        build(&mut self.wbuf);
        if self.wbuf.len() - at - HEADER_BYTES < PAYLOAD_MAX {
            finish_packet(&mut self.wbuf, at);
        } else {
            // 16 MiB or more (a huge parameter): re-frame as split packets.
            let payload = self.wbuf.split_off(HEADER_BYTES);
            self.wbuf.clear();
            put_packet(&mut self.wbuf, 0, &payload);
        }
        self.flush_wbuf().await
    }

    /// Sends a command that has no response (com::STMT_CLOSE, COM_STMT_SEND_LONG_DATA).
    pub async fn send_no_reply(&mut self, payload: &[u8]) -> Result<(), ProxyError> {
        self.write_packet(0, payload).await
    }

    /// Sends `command` with `body` (e.g. `com::QUERY` and SQL text) as one command packet.
    pub async fn send(&mut self, command: u8, body: &[u8]) -> Result<(), ProxyError> {
        self.send_command_with(|b| {
            b.put_u8(command);
            b.put_slice(body);
        })
        .await
    }

    /// Runs a command shoal sends for itself and returns its whole response.
    pub async fn ask(&mut self, command: u8, body: &[u8], expect: Expect) -> Result<(Framer, BytesMut), ProxyError> {
        self.send(command, body).await?;
        self.read_response(expect).await
    }

    /// Whether result sets end with OK instead of EOF on this connection.
    pub fn deprecate_eof(&self) -> bool {
        self.capabilities.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }

    /// Reads a whole response for shoal itself (state replay, prepare), returning the
    /// framer and the raw response bytes (frames with headers).
    pub async fn read_response(&mut self, expect: Expect) -> Result<(Framer, BytesMut), ProxyError> {
        self.drive::<NoClient>(expect, Sink::Keep).await
    }

    /// Relays the response to the command just sent to `client`, frames as they come.
    /// Memory stays bounded: complete frames are written out before more is read.
    pub async fn relay<C: ClientSink>(&mut self, expect: Expect, client: &mut C) -> Result<Framer, ProxyError> {
        self.drive(expect, Sink::Client(client)).await.map(|(framer, _)| framer)
    }

    /// Moves a pipelined response forward with the bytes already read: `framer` and
    /// `scan` (bytes of it already framed) belong to the response at the front of the
    /// read buffer. Never waits; [`Self::read_more`] brings more bytes.
    pub fn advance(&mut self, framer: &mut Framer, scan: &mut usize) -> Result<Advance, ProxyError> {
        while let Some(n) = complete_frame_len(&self.rbuf[*scan..]) {
            let step = framer.on_frame(&self.rbuf[*scan + HEADER_BYTES..*scan + n]);
            *scan += n;
            match step {
                Step::More => {}
                Step::Done => {
                    // Busy again as soon as the next response is read; a pipe returns its
                    // connection only when nothing is in flight.
                    self.busy = false;
                    self.state.da_dirty |= framer.left_diagnostics();
                    self.last_used = std::time::Instant::now();
                    let out = self.rbuf.split_to(std::mem::take(scan));
                    if framer.error == Some(0) {
                        return Err(self.protocol_err("unframeable response"));
                    }
                    return Ok(Advance::Done(out));
                }
                // Only reads are pipelined; a file request means the pipe is out of step.
                Step::LocalInfile => return Err(self.protocol_err("LOCAL INFILE request in a pipelined read")),
            }
        }
        if *scan >= READ_CHUNK_BYTES {
            return Ok(Advance::Part(self.rbuf.split_to(std::mem::take(scan))));
        }
        Ok(Advance::NeedMore)
    }

    /// Reads whatever the server sent next (at least one byte).
    pub async fn read_more(&mut self) -> Result<(), ProxyError> {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 4 * READ_CHUNK_BYTES {
            self.rbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
        }
        self.fill().await
    }

    /// Whether this connection has `meta` prepared.
    pub fn has_prepared(&mut self, meta: &PreparedMeta) -> bool {
        self.state.stmts.get(meta.id).is_some()
    }

    /// Sends several complete command frames (sequence 0 each) in one write: a pipeline.
    pub async fn send_frames<'a>(&mut self, frames: impl Iterator<Item = &'a [u8]>) -> Result<(), ProxyError> {
        self.busy = true;
        self.wbuf.clear();
        for f in frames {
            self.wbuf.extend_from_slice(f);
        }
        self.flush_wbuf().await
    }

    /// Runs the session's sync plan on this connection.
    pub async fn sync(
        &mut self,
        state: &SessionState,
        needs_insert_id: bool,
        charset: &str,
    ) -> Result<Ready, ProxyError> {
        let mut plan = sync_plan(state, &self.state, needs_insert_id, charset);
        if plan.forget_schema {
            self.change_user().await?;
            plan = sync_plan(state, &self.state, needs_insert_id, charset);
        }
        if plan.is_empty() {
            self.state.synced = Some((state.id, state.version));
            return Ok(Ready::Yes);
        }
        if let Some(db) = &plan.init_db {
            let (framer, bytes) = self.ask(com::INIT_DB, db.as_bytes(), Expect::Single).await?;
            if framer.error.is_some() {
                return Ok(Ready::Refused(bytes));
            }
        }
        if let Some(set) = &plan.set {
            let (framer, bytes) = self.ask(com::QUERY, set.as_bytes(), Expect::Results).await?;
            if framer.error.is_some() {
                return Ok(Ready::Refused(bytes));
            }
        }
        mark_synced(state, &mut self.state, needs_insert_id);
        Ok(Ready::Yes)
    }

    /// Makes sure `meta` is prepared on this connection; returns its backend id, or the
    /// backend's ERR response when preparing failed.
    pub async fn ensure_prepared(
        &mut self,
        meta: &PreparedMeta,
        per_backend_max: usize,
    ) -> Result<Result<u32, BytesMut>, ProxyError> {
        if let Some(id) = self.state.stmts.get(meta.id) {
            return Ok(Ok(id));
        }
        let (framer, bytes) = self.ask(com::STMT_PREPARE, &meta.sql, Expect::Prepare).await?;
        let Some((backend_id, _)) = framer.prepared.filter(|_| framer.error.is_none()) else {
            return Ok(Err(bytes));
        };
        for old in self.state.stmts.insert(meta.id, backend_id, per_backend_max) {
            let mut close = [com::STMT_CLOSE, 0, 0, 0, 0];
            set_stmt_id(&mut close, old);
            self.send_no_reply(&close).await?;
        }
        Ok(Ok(backend_id))
    }

    /// Frames one response. With a client, frames are written to it as they complete and
    /// LOCAL INFILE requests are served from it; without one, the whole response is
    /// returned (and a LOCAL INFILE request gets an empty file: shoal never asks for one).
    async fn drive<C: ClientSink>(
        &mut self,
        expect: Expect,
        mut sink: Sink<'_, C>,
    ) -> Result<(Framer, BytesMut), ProxyError> {
        let mut framer = Framer::new(expect, self.deprecate_eof());
        let mut scan = 0;
        loop {
            while let Some(n) = complete_frame_len(&self.rbuf[scan..]) {
                let seq = self.rbuf[scan + 3];
                let step = framer.on_frame(&self.rbuf[scan + HEADER_BYTES..scan + n]);
                scan += n;
                match step {
                    Step::More => {}
                    Step::Done => {
                        self.busy = false;
                        self.state.da_dirty |= framer.left_diagnostics();
                        self.last_used = std::time::Instant::now();
                        let out = self.rbuf.split_to(scan);
                        if let Sink::Client(c) = &mut sink {
                            c.write_frames(&out).await?;
                        }
                        if framer.error == Some(0) {
                            return Err(self.protocol_err("unframeable response"));
                        }
                        return Ok((framer, out));
                    }
                    Step::LocalInfile => match &mut sink {
                        Sink::Client(c) => {
                            let out = self.rbuf.split_to(scan);
                            scan = 0;
                            c.write_frames(&out).await?;
                            self.relay_infile(*c, seq.wrapping_add(1)).await?;
                        }
                        // Only a client can send the file: refuse with an empty packet.
                        Sink::Keep => {
                            self.wbuf.clear();
                            put_packet(&mut self.wbuf, seq.wrapping_add(1), &[]);
                            self.flush_wbuf().await?;
                        }
                    },
                }
            }
            if !matches!(sink, Sink::Keep) {
                if scan > 0 {
                    let out = self.rbuf.split_to(scan);
                    scan = 0;
                    if let Sink::Client(c) = &mut sink {
                        c.write_frames(&out).await?;
                    }
                }
                if self.rbuf.is_empty() && self.rbuf.capacity() > 4 * READ_CHUNK_BYTES {
                    self.rbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
                }
            }
            self.fill().await?;
        }
    }

    /// LOAD DATA LOCAL: forwards the client's file packets until the empty one.
    async fn relay_infile<C: ClientSink>(&mut self, client: &mut C, mut seq: u8) -> Result<(), ProxyError> {
        loop {
            let (_, payload) = client.read_packet().await?;
            self.wbuf.clear();
            seq = put_packet(&mut self.wbuf, seq, &payload);
            self.flush_wbuf().await?;
            if payload.is_empty() {
                return Ok(());
            }
        }
    }
}

/// Reads a server's greeting without logging in (version and capabilities for clients).
pub async fn probe(addr: &str, timeout: Duration) -> Result<crate::protocol::handshake::ServerHello, ProxyError> {
    let fail = |reason: String| ProxyError::BackendConnect { addr: addr.to_string(), reason, code: 2003 };
    let work = async {
        let mut stream = BackendStream::connect(addr).await.map_err(|e| fail(e.to_string()))?;
        let mut buf = BytesMut::with_capacity(1024);
        loop {
            if let Ok(Some((_, p))) = take_packet(&mut buf, LOGIN_PACKET_BYTES_MAX) {
                if p.first() == Some(&0xFF) {
                    let (_, msg) = parse_err(&p).unwrap_or((0, "refused".into()));
                    return Err(fail(msg));
                }
                return parse_server_hello(&p).ok_or_else(|| fail("unreadable greeting".into()));
            }
            if stream.read_buf(&mut buf).await.map_err(|e| fail(e.to_string()))? == 0 {
                return Err(fail("closed before greeting".into()));
            }
        }
    };
    tokio::time::timeout(timeout, work).await.unwrap_or_else(|_| Err(fail("no greeting in time".into())))
}
