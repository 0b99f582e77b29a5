//! Peer RPCs on the cluster port (WolfScale's 7654): authenticated TCP connections
//! (mutual TLS under them when `[cluster] tls_*` is set), length-prefixed frames,
//! MessagePack messages.
//!
//! # Connection
//!
//! ```text
//! client (dialer)                                server (listener)
//!   [TLS 1.3 handshake, both certificates checked: super::tls]   ◀──▶  (only with [cluster] tls_*)
//!   Hello     magic "SHOALP1\0" | client id u64 | nonce_c [32]      ──▶
//!   ◀──  Challenge  server id u64 | nonce_s [32] | mac_s [32]
//!          client checks mac_s = HMAC(secret, "shoal-peer server" | nonce_c | nonce_s | ids)
//!   Proof     mac_c [32] = HMAC(secret, "shoal-peer client" | nonce_s | nonce_c | ids) ──▶
//!          server checks mac_c (constant time)
//!   ◀──  Verdict   1 (welcome) | 0 + reason (refused, then close)
//!   Request (JSON) ──▶  ◀── Response (JSON)   ... one at a time, in order
//! ```
//!
//! Both sides prove they hold the cluster secret without sending it, and the fresh nonces
//! of both sides go into both MACs, so a recorded exchange cannot be replayed. A peer that
//! fails is refused, logged and counted ([`PeerStats`], metric
//! [`crate::metrics::CLUSTER_PEER_FAILURES`]). There is no unauthenticated mode.
//!
//! # TLS
//!
//! With [`PeerAuth::tls`] set, the TCP stream is wrapped in TLS before the first frame,
//! both directions ([`super::tls`] says what each end checks), and the secret handshake
//! above runs inside it unchanged: the framing and everything after it see one
//! [`PeerStream`], TLS or plain. A failed TLS handshake, a plain peer talking to a TLS
//! node and a TLS peer talking to a plain node are all refused and counted with cause
//! `tls` ([`FailureCause::Tls`]) on the side that sees it:
//!
//! | dialer | listener | dialer sees | listener sees |
//! |---|---|---|---|
//! | TLS | TLS, certificate from a CA the dialer does not trust | `tls`: certificate refused (`UnknownIssuer`) | `tls`: the dialer's alert |
//! | TLS | TLS, certificate that does not name the address dialed | `tls`: certificate refused (`NotValidForName`) | `tls`: the dialer's alert |
//! | TLS, client certificate from a CA the listener does not trust | TLS | the listener's alert at the first read | `tls`: client certificate refused |
//! | TLS, no client certificate (not a shoal node) | TLS | the connection closes at the first read | `tls`: no client certificate |
//! | plain | TLS | `tls`: a TLS record where a frame was due | `tls`: not a TLS handshake |
//! | TLS | plain | `tls`: the handshake ends | `tls`: a TLS record where a frame was due |
//!
//! # Limits
//!
//! Every frame is at most [`FRAME_BYTES_MAX`]; the handshake must finish within
//! [`HANDSHAKE_TIMEOUT`]; at most [`INBOUND_CONNECTIONS_MAX`] inbound connections are
//! served at once (each handles one request at a time, so the queue per connection is one
//! request deep); a request without an answer within openraft's hard TTL fails with
//! `Timeout` and its connection is dropped.
//!
//! Messages are MessagePack (`rmp-serde`, structs as maps so openraft's optional fields
//! survive), commands as raw bytes (`serde_bytes`): an entry costs its own size on the
//! wire plus a few bytes. JSON, the first codec, cost about 3.5× the size and enough CPU
//! that an AppendEntries of a few MiB outlived its heartbeat-long timeout in debug builds.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::{BasicNode, OptionalSend, Snapshot, SnapshotMeta, Vote};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::{Framed, LengthDelimitedCodec, LengthDelimitedCodecError};

use super::tls::{explain_accept, explain_dial, rustls_error, server_name, PeerTls};
use super::types::{NodeId, Raft, SnapshotData, TypeConfig};

/// Largest frame either side sends or accepts, bytes (an AppendEntries of
/// `READ_BYTES_MAX` payload as JSON fits).
pub const FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Time allowed for the whole handshake (TLS and secret), either side.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed to open a TCP connection to a peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Inbound peer connections served at once; more wait in the listen backlog.
pub const INBOUND_CONNECTIONS_MAX: usize = 64;
/// Time allowed for a snapshot transfer and install (snapshots are small until they are
/// MariaDB dumps with their own transport).
pub const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);
/// Time allowed for an admin request ([`AdminRequest`]).
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a forwarded [`AdminRequest::Switchover`] may take (drain, catch-up, the
/// election and its deadline, with room).
pub const SWITCHOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed `accept` (e.g. out of file descriptors) before the next.
pub const ACCEPT_RETRY_AFTER: Duration = Duration::from_millis(50);
/// Shortest accepted cluster secret, bytes.
pub const SECRET_BYTES_MIN: usize = 16;
/// Handshake nonce length, bytes.
const NONCE_BYTES: usize = 32;
/// HMAC-SHA256 output length, bytes.
const MAC_BYTES: usize = 32;
/// First bytes of a Hello: protocol name and version.
const MAGIC: &[u8; 8] = b"SHOALP1\0";

type HmacSha256 = Hmac<Sha256>;

/// The cluster secret every node shares (`[cluster] secret_file`), kept as a keyed HMAC
/// state: the secret bytes themselves are not stored.
#[derive(Clone)]
pub struct Secret(HmacSha256);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A secret of at least [`SECRET_BYTES_MIN`] bytes.
    pub fn new(bytes: &[u8]) -> Result<Secret, String> {
        if bytes.len() < SECRET_BYTES_MIN {
            return Err(format!(
                "the cluster secret has {} bytes; use at least {SECRET_BYTES_MIN} random bytes (e.g. `openssl rand -hex 32 > secret`)",
                bytes.len()
            ));
        }
        <HmacSha256 as Mac>::new_from_slice(bytes)
            .map(Secret)
            .map_err(|e| format!("the cluster secret cannot key HMAC-SHA256: {e}"))
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> HmacSha256 {
        let mut m = self.0.clone();
        m.update(label);
        for p in parts {
            m.update(p);
        }
        m
    }
}

/// What a node proves and checks on every peer connection: the cluster secret always,
/// and mutual TLS under it when `[cluster] tls_*` is set.
#[derive(Debug, Clone)]
pub struct PeerAuth {
    /// The key of the HMAC handshake (`[cluster] secret_file`).
    pub secret: Secret,
    /// Both ends of mutual TLS; `None`: plain TCP.
    pub tls: Option<PeerTls>,
}

impl PeerAuth {
    /// The secret alone, over plain TCP.
    pub fn plain(secret: Secret) -> PeerAuth {
        PeerAuth { secret, tls: None }
    }
}

/// The MAC the server sends: proves it holds the secret. Pure.
fn server_mac(s: &Secret, nonce_c: &[u8], nonce_s: &[u8], client: NodeId, server: NodeId) -> HmacSha256 {
    s.mac(b"shoal-peer server", &[nonce_c, nonce_s, &client.to_le_bytes(), &server.to_le_bytes()])
}

/// The MAC the client sends. Pure.
fn client_mac(s: &Secret, nonce_c: &[u8], nonce_s: &[u8], client: NodeId, server: NodeId) -> HmacSha256 {
    s.mac(b"shoal-peer client", &[nonce_s, nonce_c, &client.to_le_bytes(), &server.to_le_bytes()])
}

/// Why a peer connection failed (the `cause` label of the failure metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// An inbound peer did not prove the secret (or spoke another protocol).
    AuthRefused,
    /// The peer we dialed did not prove the secret, or refused us.
    AuthFailed,
    /// TCP connect failed or timed out.
    Connect,
    /// A request got no answer in time.
    Timeout,
    /// A broken frame, a message that does not decode, or a closed connection.
    Io,
    /// The TLS handshake failed either way (a certificate refused, no client
    /// certificate), or one side speaks TLS and the other does not.
    Tls,
}

impl FailureCause {
    /// The metric label.
    pub const fn label(self) -> &'static str {
        match self {
            FailureCause::AuthRefused => "auth_refused",
            FailureCause::AuthFailed => "auth_failed",
            FailureCause::Connect => "connect",
            FailureCause::Timeout => "timeout",
            FailureCause::Io => "io",
            FailureCause::Tls => "tls",
        }
    }
}

/// Counters of peer connection failures, by cause (tests read them; the same events go to
/// the Prometheus counter).
#[derive(Debug, Default)]
pub struct PeerStats {
    /// Inbound connections refused because the peer did not prove the secret.
    pub auth_refused: AtomicU64,
    /// Outbound connections where the peer did not prove the secret or refused us.
    pub auth_failed: AtomicU64,
    /// Outbound TCP connects that failed.
    pub connect: AtomicU64,
    /// Requests without an answer in time.
    pub timeout: AtomicU64,
    /// Broken frames or connections.
    pub io: AtomicU64,
    /// Connections, inbound or outbound, refused over TLS.
    pub tls: AtomicU64,
    /// Inbound connections that passed the handshake.
    pub accepted: AtomicU64,
}

impl PeerStats {
    fn count(&self, cause: FailureCause) {
        let c = match cause {
            FailureCause::AuthRefused => &self.auth_refused,
            FailureCause::AuthFailed => &self.auth_failed,
            FailureCause::Connect => &self.connect,
            FailureCause::Timeout => &self.timeout,
            FailureCause::Io => &self.io,
            FailureCause::Tls => &self.tls,
        };
        c.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::CLUSTER_PEER_FAILURES, "cause" => cause.label()).increment(1);
    }
}

/// A peer connection error: what happened, and its cause.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct PeerError {
    /// Why, for counting.
    pub cause: FailureCause,
    /// What happened and what to do.
    pub what: String,
}

impl PeerError {
    fn new(cause: FailureCause, what: impl Into<String>) -> Self {
        PeerError { cause, what: what.into() }
    }
}

/// Operations a node asks another node to do (the preferred-leader switchback, join).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Turn this node's election timer off for at most `ms` milliseconds (capped at
    /// `ELECT_PAUSE_MAX` in `node.rs`); it comes back on by itself if no
    /// [`AdminRequest::ResumeElect`] arrives, so a leader that dies mid-switchback cannot
    /// leave the cluster unable to elect.
    PauseElect {
        /// How long, milliseconds.
        ms: u64,
    },
    /// Turn this node's election timer back on (unless `disable_auto_election`).
    ResumeElect,
    /// Start an election now (`trigger().elect()`); `hold`: once leading, keep the lead
    /// (an operator's switchover chose this node: no automatic switchback).
    Elect {
        /// Keep the lead once won.
        hold: bool,
    },
    /// Whether this node may lead (its local MariaDB is up).
    Ready,
    /// A planned leader change to `to`, or to the lowest ready, caught-up voter
    /// (answered by the leader only).
    Switchover {
        /// The node to hand the lead to.
        to: Option<NodeId>,
    },
    /// Add the node as a learner, wait until it caught up, then make it a voter
    /// (answered by the leader only).
    Join {
        /// The joining node's id.
        id: NodeId,
        /// Its cluster address, host:port.
        addr: String,
    },
    /// Remove the node from the voters and the cluster (answered by the leader only).
    Leave {
        /// The leaving node's id.
        id: NodeId,
    },
    /// Where this node serves clients (its proxy and HTTP API addresses).
    Endpoints,
    /// This node's committed LSN, if it leads and holds a quorum's lease (a follower's
    /// read under `read_consistency = "global"` waits until it has applied this much).
    Committed,
}

/// Where a node serves clients, as [`AdminRequest::Endpoints`] answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// The MySQL proxy, host:port (`[proxy] bind_address`, a wildcard host replaced by the
    /// host of the node's cluster address).
    pub proxy: String,
    /// The HTTP API, host:port, if enabled.
    pub api: Option<String>,
}

/// Where this node serves clients, for peers: the proxy's and API's bound addresses, a
/// wildcard host replaced by the host of `advertise` (the cluster address peers dial).
pub fn endpoints(proxy: std::net::SocketAddr, api: Option<std::net::SocketAddr>, advertise: &str) -> Endpoints {
    let host = advertise.rsplit_once(':').map_or(advertise, |(h, _)| h).to_string();
    let show = |a: std::net::SocketAddr| {
        if a.ip().is_unspecified() {
            format!("{host}:{}", a.port())
        } else {
            a.to_string()
        }
    };
    Endpoints { proxy: show(proxy), api: api.map(show) }
}

/// The answer to an [`AdminRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminReply {
    /// Done.
    Done,
    /// This node is not the leader; ask this one (if known).
    NotLeader {
        /// The leader this node knows of.
        leader: Option<(NodeId, String)>,
    },
    /// To [`AdminRequest::Endpoints`] (`None`: the node serves no clients yet).
    Endpoints(Option<Endpoints>),
    /// To [`AdminRequest::Committed`].
    Committed {
        /// The leader's committed LSN (0: nothing committed yet).
        lsn: u64,
    },
    /// To [`AdminRequest::Ready`].
    Ready {
        /// The node may lead.
        ok: bool,
    },
    /// To [`AdminRequest::Switchover`]: what the handover did.
    Switched(super::node::SwitchReport),
    /// To [`AdminRequest::Switchover`]: why it did not run.
    Refused(String),
}

/// One request frame.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Request {
    /// Raft AppendEntries (also the heartbeat).
    Append(AppendEntriesRequest<TypeConfig>),
    /// Raft RequestVote.
    Vote(VoteRequest<NodeId>),
    /// A whole snapshot.
    Snapshot {
        /// The leader's vote.
        vote: Vote<NodeId>,
        /// What the snapshot covers.
        meta: SnapshotMeta<NodeId, BasicNode>,
        /// The snapshot's data.
        data: SnapshotData,
    },
    /// An operation on the node ([`AdminRequest`]).
    Admin(AdminRequest),
}

/// One response frame.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Response {
    /// To [`Request::Append`].
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// To [`Request::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// To [`Request::Snapshot`].
    Snapshot(Result<SnapshotResponse<NodeId>, Fatal<NodeId>>),
    /// To [`Request::Admin`]: the reply, or what failed.
    Admin(Result<AdminReply, String>),
}

/// The byte stream under the frames: a TCP stream, or TLS over one.
pub trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> PeerStream for T {}

/// One peer connection: frames over a TLS or plain stream (one code path for both).
pub type Conn = Framed<Box<dyn PeerStream>, LengthDelimitedCodec>;

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().max_frame_length(FRAME_BYTES_MAX).new_codec()
}

fn framed(stream: impl PeerStream + 'static) -> Conn {
    Framed::new(Box::new(stream) as Box<dyn PeerStream>, codec())
}

fn io_error(e: impl std::fmt::Display, doing: &str) -> PeerError {
    PeerError::new(FailureCause::Io, format!("{doing}: {e}"))
}

/// An error of the stream under the frames, classified: TLS when rustls made it, else I/O.
fn stream_error(e: std::io::Error, doing: &str) -> PeerError {
    match rustls_error(&e) {
        Some(t) => PeerError::new(FailureCause::Tls, format!("{doing}: TLS: {t}")),
        None => io_error(e, doing),
    }
}

/// Whether the error is a frame length above [`FRAME_BYTES_MAX`]: where the first frame
/// of a plain peer was due, that is a TLS record (its type and version bytes, `16 03` or
/// `15 03`, read as a length are over 300 MiB).
fn is_oversized_frame(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<LengthDelimitedCodecError>())
}

async fn recv_frame(conn: &mut Conn, doing: &str) -> Result<BytesMut, PeerError> {
    match conn.next().await {
        Some(Ok(f)) => Ok(f),
        Some(Err(e)) => Err(stream_error(e, doing)),
        None => Err(io_error("the peer closed the connection", doing)),
    }
}

/// The first frame of a handshake: as [`recv_frame`], and a TLS record instead of a
/// frame is a [`FailureCause::Tls`] (this end is plain, the other speaks TLS).
async fn recv_first_frame(conn: &mut Conn, peer: &str, doing: &str) -> Result<BytesMut, PeerError> {
    match conn.next().await {
        Some(Err(e)) if is_oversized_frame(&e) => Err(PeerError::new(
            FailureCause::Tls,
            format!(
                "{doing}: peer {peer} speaks TLS and this node does not: set [cluster] tls_cert_file, tls_key_file \
                 and tls_ca_file on every node, or on none"
            ),
        )),
        Some(Ok(f)) => Ok(f),
        Some(Err(e)) => Err(stream_error(e, doing)),
        None => Err(io_error("the peer closed the connection", doing)),
    }
}

async fn send_frame(conn: &mut Conn, frame: Bytes, doing: &str) -> Result<(), PeerError> {
    conn.send(frame).await.map_err(|e| stream_error(e, doing))
}

/// The dialer's stream to `addr`: `tcp` itself, or TLS over it.
async fn dial_stream(tcp: TcpStream, addr: &str, tls: Option<&PeerTls>) -> Result<Conn, PeerError> {
    let Some(tls) = tls else { return Ok(framed(tcp)) };
    let name = server_name(addr).map_err(|e| PeerError::new(FailureCause::Tls, e))?;
    match tls.connector().connect(name, tcp).await {
        Ok(s) => Ok(framed(s)),
        Err(e) => Err(PeerError::new(FailureCause::Tls, explain_dial(addr, &e))),
    }
}

/// The listener's stream from an accepted `tcp`: itself, or TLS over it.
async fn accept_stream(tcp: TcpStream, tls: Option<&PeerTls>) -> Result<Conn, PeerError> {
    let Some(tls) = tls else { return Ok(framed(tcp)) };
    match tls.acceptor().accept(tcp).await {
        Ok(s) => Ok(framed(s)),
        Err(e) => Err(PeerError::new(FailureCause::Tls, explain_accept(&e))),
    }
}

fn encode<T: Serialize>(msg: &T) -> Result<Bytes, PeerError> {
    rmp_serde::to_vec_named(msg).map(Bytes::from).map_err(|e| io_error(e, "encoding a peer message"))
}

/// Dials `addr` and runs the client side of the handshake (TLS first, if configured).
pub async fn connect(addr: &str, me: NodeId, auth: &PeerAuth) -> Result<(NodeId, Conn), PeerError> {
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(PeerError::new(FailureCause::Connect, format!("connecting to peer {addr}: {e}"))),
        Err(_) => {
            return Err(PeerError::new(
                FailureCause::Connect,
                format!("connecting to peer {addr}: no answer within {CONNECT_TIMEOUT:?}"),
            ))
        }
    };
    let _ = tcp.set_nodelay(true);
    let handshake = async {
        let mut conn = dial_stream(tcp, addr, auth.tls.as_ref()).await?;
        let server = client_handshake(&mut conn, addr, me, &auth.secret).await?;
        Ok((server, conn))
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(r) => r,
        Err(_) => Err(PeerError::new(
            FailureCause::AuthFailed,
            format!("peer {addr} did not finish the handshake within {HANDSHAKE_TIMEOUT:?}"),
        )),
    }
}

async fn client_handshake(conn: &mut Conn, addr: &str, me: NodeId, secret: &Secret) -> Result<NodeId, PeerError> {
    let nonce_c: [u8; NONCE_BYTES] = rand::random();
    let mut hello = BytesMut::with_capacity(MAGIC.len() + 8 + NONCE_BYTES);
    hello.put_slice(MAGIC);
    hello.put_u64_le(me);
    hello.put_slice(&nonce_c);
    send_frame(conn, hello.freeze(), "sending the handshake").await?;
    let ch = recv_first_frame(conn, addr, "reading the handshake challenge").await?;
    if ch.len() != 8 + NONCE_BYTES + MAC_BYTES {
        return Err(PeerError::new(
            FailureCause::AuthFailed,
            format!("peer {addr} sent a challenge of {} bytes: it is not a shoal node of this version", ch.len()),
        ));
    }
    let server = u64::from_le_bytes(ch[..8].try_into().unwrap_or_default());
    let nonce_s = &ch[8..8 + NONCE_BYTES];
    let mac_s = &ch[8 + NONCE_BYTES..];
    if server_mac(secret, &nonce_c, nonce_s, me, server).verify_slice(mac_s).is_err() {
        return Err(PeerError::new(
            FailureCause::AuthFailed,
            format!("peer {addr} (node {server}) does not hold this cluster's secret: check [cluster] secret_file on both nodes"),
        ));
    }
    let proof = client_mac(secret, &nonce_c, nonce_s, me, server).finalize().into_bytes();
    send_frame(conn, Bytes::copy_from_slice(&proof), "sending the handshake proof").await?;
    let verdict = recv_frame(conn, "reading the handshake verdict").await?;
    match verdict.first() {
        Some(1) => Ok(server),
        _ => Err(PeerError::new(
            FailureCause::AuthFailed,
            format!("peer {addr} refused us: {}", String::from_utf8_lossy(verdict.get(1..).unwrap_or_default())),
        )),
    }
}

/// Runs the server side of the handshake; returns the client's node id.
async fn server_handshake(conn: &mut Conn, from: &str, me: NodeId, secret: &Secret) -> Result<NodeId, PeerError> {
    let refused = |what: String| PeerError::new(FailureCause::AuthRefused, what);
    let hello = recv_first_frame(conn, from, "reading the handshake").await?;
    if hello.len() != MAGIC.len() + 8 + NONCE_BYTES || &hello[..MAGIC.len()] != MAGIC {
        return Err(refused(format!("a {}-byte first frame that is not a shoal peer hello", hello.len())));
    }
    let client = u64::from_le_bytes(hello[8..16].try_into().unwrap_or_default());
    let nonce_c = &hello[16..];
    let nonce_s: [u8; NONCE_BYTES] = rand::random();
    let mac_s = server_mac(secret, nonce_c, &nonce_s, client, me).finalize().into_bytes();
    let mut ch = BytesMut::with_capacity(8 + NONCE_BYTES + MAC_BYTES);
    ch.put_u64_le(me);
    ch.put_slice(&nonce_s);
    ch.put_slice(&mac_s);
    send_frame(conn, ch.freeze(), "sending the handshake challenge").await?;
    let proof = recv_frame(conn, "reading the handshake proof").await?;
    if client_mac(secret, nonce_c, &nonce_s, client, me).verify_slice(&proof).is_err() {
        let reason = "wrong cluster secret: check [cluster] secret_file";
        let mut v = BytesMut::new();
        v.put_u8(0);
        v.put_slice(reason.as_bytes());
        let _ = send_frame(conn, v.freeze(), "refusing").await;
        return Err(refused(format!("node {client} does not hold this cluster's secret")));
    }
    send_frame(conn, Bytes::from_static(&[1]), "sending the handshake verdict").await?;
    Ok(client)
}

/// Answers admin requests; `node.rs` supplies it.
pub type AdminHandler =
    Arc<dyn Fn(AdminRequest) -> Pin<Box<dyn Future<Output = Result<AdminReply, String>> + Send>> + Send + Sync>;

/// Serves peers on `listener` until the task is aborted (which also ends every
/// connection it accepted): each connection is authenticated (TLS first, if configured),
/// then its requests are answered one at a time by `raft` (and `admin`).
pub async fn serve(
    listener: TcpListener,
    me: NodeId,
    auth: PeerAuth,
    raft: Raft,
    admin: AdminHandler,
    stats: Arc<PeerStats>,
) {
    let slots = Arc::new(Semaphore::new(INBOUND_CONNECTIONS_MAX));
    // Owning the connection tasks here means aborting `serve` closes them all.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let (tcp, from) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(ACCEPT_RETRY_AFTER).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (auth, raft, admin, stats) = (auth.clone(), raft.clone(), admin.clone(), stats.clone());
        conns.spawn(async move {
            let _permit = permit;
            serve_one(tcp, from, me, auth, raft, admin, stats).await;
        });
    }
}

/// One inbound connection: handshake, then requests until it closes.
async fn serve_one(
    tcp: TcpStream,
    from: std::net::SocketAddr,
    me: NodeId,
    auth: PeerAuth,
    raft: Raft,
    admin: AdminHandler,
    stats: Arc<PeerStats>,
) {
    let handshake = async {
        let mut conn = accept_stream(tcp, auth.tls.as_ref()).await?;
        let client = server_handshake(&mut conn, &from.to_string(), me, &auth.secret).await?;
        Ok::<_, PeerError>((client, conn))
    };
    let (client, mut conn) = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            // A broken connection mid-handshake is a refusal too (the peer did not prove
            // the secret); TLS failures keep their own cause.
            let cause = if e.cause == FailureCause::Tls { FailureCause::Tls } else { FailureCause::AuthRefused };
            stats.count(cause);
            tracing::warn!(peer = %from, error = %e, "peer refused");
            return;
        }
        Err(_) => {
            stats.count(FailureCause::AuthRefused);
            tracing::warn!(peer = %from, "peer refused: no handshake within {HANDSHAKE_TIMEOUT:?}");
            return;
        }
    };
    stats.accepted.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(peer = %from, node = client, "peer connected");
    while let Some(frame) = conn.next().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                stats.count(FailureCause::Io);
                tracing::warn!(peer = %from, node = client, error = %e, "broken frame from peer; closing");
                return;
            }
        };
        let req: Request = match rmp_serde::from_slice(&frame) {
            Ok(r) => r,
            Err(e) => {
                stats.count(FailureCause::Io);
                tracing::warn!(peer = %from, node = client, error = %e, "peer message does not decode; closing");
                return;
            }
        };
        let resp = answer(&raft, &admin, req).await;
        let Ok(bytes) = encode(&resp) else { return };
        if conn.send(bytes).await.is_err() {
            return;
        }
    }
}

async fn answer(raft: &Raft, admin: &AdminHandler, req: Request) -> Response {
    match req {
        Request::Append(r) => Response::Append(raft.append_entries(r).await),
        Request::Vote(r) => Response::Vote(raft.vote(r).await),
        Request::Snapshot { vote, meta, data } => {
            Response::Snapshot(raft.install_full_snapshot(vote, Snapshot { meta, snapshot: Box::new(data) }).await)
        }
        Request::Admin(a) => Response::Admin(admin(a).await),
    }
}

/// One authenticated connection that sends requests and waits for each answer.
pub struct PeerLink {
    /// Node id on our side.
    me: NodeId,
    /// The peer's address.
    addr: String,
    /// The secret both hold, and TLS if configured.
    auth: PeerAuth,
    /// The connection, opened on first use and after any failure.
    conn: Option<Conn>,
    /// Where failures are counted.
    stats: Arc<PeerStats>,
}

impl PeerLink {
    /// A link to `addr` (not connected until the first request).
    pub fn new(me: NodeId, addr: String, auth: PeerAuth, stats: Arc<PeerStats>) -> Self {
        PeerLink { me, addr, auth, conn: None, stats }
    }

    /// Sends `req` and waits up to `ttl` for its answer. Any failure drops the connection.
    pub async fn call(&mut self, req: &Request, ttl: Duration) -> Result<Response, PeerError> {
        let r = tokio::time::timeout(ttl, self.call_inner(req)).await;
        let r = match r {
            Ok(r) => r,
            Err(_) => {
                Err(PeerError::new(FailureCause::Timeout, format!("peer {} gave no answer within {ttl:?}", self.addr)))
            }
        };
        if let Err(e) = &r {
            self.conn = None;
            self.stats.count(e.cause);
        }
        r
    }

    /// One exchange. The connection is out of `self.conn` while it runs and goes back
    /// only after the whole answer was read: openraft drops a call that outlives its own
    /// deadline (one heartbeat interval for AppendEntries), and a connection kept after
    /// such a drop would hold that request's late answer, which the next call would read as
    /// its own — a stale `Success` counted as the follower holding entries it never got.
    async fn call_inner(&mut self, req: &Request) -> Result<Response, PeerError> {
        let bytes = encode(req)?;
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => connect(&self.addr, self.me, &self.auth).await?.1,
        };
        send_frame(&mut conn, bytes, "sending a request").await?;
        let frame = recv_frame(&mut conn, "reading a response").await?;
        self.conn = Some(conn);
        rmp_serde::from_slice(&frame).map_err(|e| io_error(e, "decoding a response"))
    }
}

/// Sends one admin request to `addr` on a fresh connection.
pub async fn admin_call(
    me: NodeId,
    addr: &str,
    auth: &PeerAuth,
    stats: Arc<PeerStats>,
    req: AdminRequest,
) -> Result<AdminReply, String> {
    let mut link = PeerLink::new(me, addr.to_string(), auth.clone(), stats);
    let timeout = match req {
        AdminRequest::Switchover { .. } => SWITCHOVER_TIMEOUT,
        _ => ADMIN_TIMEOUT,
    };
    match link.call(&Request::Admin(req), timeout).await {
        Ok(Response::Admin(r)) => r,
        Ok(other) => Err(format!("peer {addr} answered an admin request with {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// openraft's network factory: one [`PeerClient`] per replication stream.
#[derive(Clone)]
pub struct Network {
    /// Our node id (sent in the handshake).
    me: NodeId,
    /// The cluster secret, and TLS if configured.
    auth: PeerAuth,
    /// Failure counters shared with the listener.
    stats: Arc<PeerStats>,
}

impl Network {
    /// A factory for node `me`.
    pub fn new(me: NodeId, auth: PeerAuth, stats: Arc<PeerStats>) -> Self {
        Network { me, auth, stats }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient { target, link: PeerLink::new(self.me, node.addr.clone(), self.auth.clone(), self.stats.clone()) }
    }
}

/// openraft's client to one peer.
pub struct PeerClient {
    /// The peer's node id.
    target: NodeId,
    /// The connection.
    link: PeerLink,
}

type RpcErr = RPCError<NodeId, BasicNode, RaftError<NodeId>>;

impl PeerClient {
    fn rpc_error(&self, e: PeerError, action: RPCTypes, ttl: Duration) -> RpcErr {
        match e.cause {
            FailureCause::Timeout => {
                RPCError::Timeout(Timeout { action, id: self.link.me, target: self.target, timeout: ttl })
            }
            // Unreachable makes openraft back off before retrying: a peer that cannot be
            // dialed, does not hold the secret or fails TLS will not start working in the
            // next ms.
            FailureCause::Connect | FailureCause::AuthFailed | FailureCause::Tls => {
                RPCError::Unreachable(Unreachable::new(&e))
            }
            _ => RPCError::Network(NetworkError::new(&e)),
        }
    }

    fn unexpected(&self, what: &str, got: Response) -> RpcErr {
        let e = PeerError::new(FailureCause::Io, format!("peer {} answered {what} with {got:?}", self.target));
        RPCError::Network(NetworkError::new(&e))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        // openraft drops the call itself after one heartbeat interval (its replication
        // loop wraps every AppendEntries in that timeout, entries or not), so a longer
        // deadline here would never be reached; the link closes a dropped call's
        // connection (`PeerLink::call_inner`).
        let ttl = option.hard_ttl();
        match self.link.call(&Request::Append(rpc), ttl).await {
            Ok(Response::Append(Ok(r))) => Ok(r),
            Ok(Response::Append(Err(e))) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Ok(other) => Err(self.unexpected("AppendEntries", other)),
            Err(e) => Err(self.rpc_error(e, RPCTypes::AppendEntries, ttl)),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RpcErr> {
        let ttl = option.hard_ttl();
        match self.link.call(&Request::Vote(rpc), ttl).await {
            Ok(Response::Vote(Ok(r))) => Ok(r),
            Ok(Response::Vote(Err(e))) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Ok(other) => Err(self.unexpected("Vote", other)),
            Err(e) => Err(self.rpc_error(e, RPCTypes::Vote, ttl)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let req = Request::Snapshot { vote, meta: snapshot.meta, data: *snapshot.snapshot };
        let call = self.link.call(&req, SNAPSHOT_TIMEOUT);
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = call => match r {
                Ok(Response::Snapshot(Ok(r))) => Ok(r),
                Ok(Response::Snapshot(Err(e))) => Err(StreamingError::RemoteError(RemoteError::new(self.target, e))),
                Ok(other) => {
                    let e = PeerError::new(FailureCause::Io, format!("peer {} answered a snapshot with {other:?}", self.target));
                    Err(StreamingError::Network(NetworkError::new(&e)))
                }
                Err(e) if e.cause == FailureCause::Timeout => Err(StreamingError::Timeout(Timeout {
                    action: RPCTypes::InstallSnapshot,
                    id: self.link.me,
                    target: self.target,
                    timeout: SNAPSHOT_TIMEOUT,
                })),
                Err(e) if matches!(e.cause, FailureCause::Connect | FailureCause::AuthFailed | FailureCause::Tls) => {
                    Err(StreamingError::Unreachable(Unreachable::new(&e)))
                }
                Err(e) => Err(StreamingError::Network(NetworkError::new(&e))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s.as_bytes()).unwrap()
    }

    /// Accepts one connection and runs the server handshake as node 1.
    async fn one_server(s: Secret) -> (String, tokio::task::JoinHandle<Result<NodeId, PeerError>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = tokio::spawn(async move {
            let (tcp, from) = l.accept().await.unwrap();
            let mut conn = framed(tcp);
            server_handshake(&mut conn, &from.to_string(), 1, &s).await
        });
        (addr, h)
    }

    /// A server that answers admin requests with `Committed { lsn: n }`, n counting the
    /// requests it got (on any connection); the first answer comes after `first_delay`.
    async fn counting_server(s: Secret, first_delay: Duration) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
        tokio::spawn(async move {
            while let Ok((tcp, from)) = l.accept().await {
                let (s, seen) = (s.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut conn = framed(tcp);
                    server_handshake(&mut conn, &from.to_string(), 1, &s).await.unwrap();
                    while let Some(Ok(frame)) = conn.next().await {
                        let _: Request = rmp_serde::from_slice(&frame).unwrap();
                        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                        if n == 1 {
                            tokio::time::sleep(first_delay).await;
                        }
                        let resp = Response::Admin(Ok(AdminReply::Committed { lsn: n }));
                        if conn.send(encode(&resp).unwrap()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    /// openraft drops an AppendEntries call after one heartbeat interval, from outside.
    /// The next call on the same link must get its own answer, never the dropped one's
    /// (a late `Success` read as the answer to a longer request counts entries the
    /// follower never got).
    #[tokio::test]
    async fn a_call_dropped_midway_leaves_no_answer_for_the_next() {
        let s = secret("0123456789abcdef-drop");
        let addr = counting_server(s.clone(), Duration::from_millis(300)).await;
        let stats = Arc::new(PeerStats::default());
        let mut link = PeerLink::new(2, addr, PeerAuth::plain(s), stats);
        let ask = Request::Admin(AdminRequest::Committed);
        let dropped = tokio::time::timeout(Duration::from_millis(50), link.call(&ask, Duration::from_secs(5))).await;
        assert!(dropped.is_err(), "the first call should have been cut: {dropped:?}");
        tokio::time::sleep(Duration::from_millis(400)).await; // the first answer is sent meanwhile
        match link.call(&ask, Duration::from_secs(5)).await {
            Ok(Response::Admin(Ok(AdminReply::Committed { lsn }))) => {
                assert_eq!(lsn, 2, "the second call read the first call's answer")
            }
            other => panic!("unexpected answer: {other:?}"),
        }
    }

    #[tokio::test]
    async fn same_secret_connects_both_ways() {
        let (addr, server) = one_server(secret("0123456789abcdef-same")).await;
        let (server_id, _conn) = connect(&addr, 2, &PeerAuth::plain(secret("0123456789abcdef-same"))).await.unwrap();
        assert_eq!(server_id, 1);
        assert_eq!(server.await.unwrap().unwrap(), 2);
    }

    #[tokio::test]
    async fn wrong_secret_is_refused() {
        let (addr, server) = one_server(secret("0123456789abcdef-right")).await;
        let Err(e) = connect(&addr, 2, &PeerAuth::plain(secret("0123456789abcdef-wrong"))).await else {
            panic!("a wrong secret connected")
        };
        assert_eq!(e.cause, FailureCause::AuthFailed, "{e}");
        assert!(e.what.contains("does not hold this cluster's secret"), "{e}");
        // The dialer stopped at the server's MAC; the server saw the connection close.
        assert!(server.await.unwrap().is_err());
    }

    /// A dialer that does not check the server's MAC and sends a made-up proof is refused
    /// by the server with a reason.
    #[tokio::test]
    async fn forged_proof_is_refused_by_the_server() {
        let (addr, server) = one_server(secret("0123456789abcdef-right")).await;
        let mut conn = framed(TcpStream::connect(&addr).await.unwrap());
        let mut hello = BytesMut::new();
        hello.put_slice(MAGIC);
        hello.put_u64_le(9);
        hello.put_slice(&[7u8; NONCE_BYTES]);
        conn.send(hello.freeze()).await.unwrap();
        let _challenge = conn.next().await.unwrap().unwrap();
        conn.send(Bytes::from_static(&[0u8; MAC_BYTES])).await.unwrap();
        let verdict = conn.next().await.unwrap().unwrap();
        assert_eq!(verdict[0], 0);
        assert!(String::from_utf8_lossy(&verdict[1..]).contains("wrong cluster secret"));
        let e = server.await.unwrap().unwrap_err();
        assert_eq!(e.cause, FailureCause::AuthRefused);
    }

    #[tokio::test]
    async fn a_stranger_protocol_is_refused() {
        let (addr, server) = one_server(secret("0123456789abcdef-right")).await;
        let mut conn = framed(TcpStream::connect(&addr).await.unwrap());
        conn.send(Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n")).await.unwrap();
        let e = server.await.unwrap().unwrap_err();
        assert_eq!(e.cause, FailureCause::AuthRefused, "{e}");
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(Secret::new(b"short").unwrap_err().contains("at least 16"));
    }

    #[test]
    fn macs_bind_both_nonces_ids_and_direction() {
        let s = secret("0123456789abcdef");
        let m = |f: fn(&Secret, &[u8], &[u8], NodeId, NodeId) -> HmacSha256, a: &[u8], b: &[u8], c, d| {
            f(&s, a, b, c, d).finalize().into_bytes().to_vec()
        };
        let base = m(server_mac, b"nc", b"ns", 1, 2);
        assert_ne!(base, m(client_mac, b"nc", b"ns", 1, 2), "direction");
        assert_ne!(base, m(server_mac, b"nX", b"ns", 1, 2), "client nonce");
        assert_ne!(base, m(server_mac, b"nc", b"nX", 1, 2), "server nonce");
        assert_ne!(base, m(server_mac, b"nc", b"ns", 3, 2), "client id");
        assert_ne!(base, m(server_mac, b"nc", b"ns", 1, 3), "server id");
    }
}
