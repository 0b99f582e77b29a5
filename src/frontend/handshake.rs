//! The connection phase, server side: greeting → [SSLRequest → TLS] → handshake response →
//! [auth switch] → verified credential. The OK that ends it is sent by the session once
//! the initial schema is confirmed by a backend.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use rand::Rng;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::io::{ClientIo, ClientStream};
use super::sha2::CACHING_SHA2_PASSWORD;
use super::{Proxy, ServerInfo};
use crate::backend::conn::{BackendConn, Relayed};
use crate::config::{GreetingPlugin, Sha2WithoutTls};
use crate::error::{ProxyError, ER_ACCESS_DENIED, ER_HANDSHAKE, ER_SECURE_TRANSPORT_REQUIRED};
use crate::metrics::{client_login, LoginMethod};
use crate::protocol::auth::{Credential, SCRAMBLE_BYTES};
use crate::protocol::handshake::{
    auth_switch, auth_switch_native, greeting, is_ssl_request, parse_client_hello, ClientHello, NATIVE_PASSWORD,
};
use crate::protocol::proxy_header::{Network, Peeked};
use crate::protocol::reply::put_err;
use crate::protocol::CapabilityFlags;

/// A client that proved who it is.
#[derive(Debug)]
pub struct Authenticated {
    /// Account name.
    pub user: String,
    /// What opens backend connections as this user.
    pub credential: Credential,
    /// Capabilities in effect (client's ∩ offered).
    pub capabilities: CapabilityFlags,
    /// Handshake collation.
    pub collation: u8,
    /// Schema requested at connect.
    pub database: Option<String>,
    /// Sequence id for the packet that ends the connection phase.
    pub next_seq: u8,
    /// The nonce, kept for COM_CHANGE_USER.
    pub scramble: [u8; SCRAMBLE_BYTES],
    /// The account's plugin is one shoal cannot answer: the server authenticated the
    /// client through this connection (`BackendConn::relay_login`), the session's only one.
    pub relayed: Option<Box<BackendConn>>,
}

/// A nonce without NUL bytes (part 2 is sent NUL-terminated).
pub fn new_scramble() -> [u8; SCRAMBLE_BYTES] {
    let mut rng = rand::rng();
    std::array::from_fn(|_| rng.random_range(33u8..127))
}

/// Answers a connection shoal will not serve with one ERR packet, then closes it.
pub async fn refuse(mut stream: TcpStream, e: &ProxyError) {
    let m = e.mysql();
    let mut b = BytesMut::new();
    put_err(&mut b, 0, m.code, m.state, &m.message);
    let _ = stream.write_all(&b).await;
    let _ = stream.shutdown().await;
}

/// Sends an ERR during the connection phase and returns the error to end the session.
pub async fn fail(io: &mut ClientIo, seq: u8, code: u16, state: &str, msg: String) -> ProxyError {
    crate::metrics::error(code);
    put_err(&mut io.wbuf, seq, code, state, &msg);
    let _ = io.flush().await;
    ProxyError::ClientProtocol(msg)
}

/// How long a refused PROXY header's client has to send its first packet (the refusal
/// answers it).
const UNTRUSTED_HEADER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The client's real address: the PROXY header's source when a trusted balancer sent
/// one (`protocol::proxy_header` has the table), else the connection's peer.
async fn proxied_peer(io: &mut ClientIo, trusted: &[Network], peer: SocketAddr) -> Result<SocketAddr, ProxyError> {
    match io.take_proxy_header().await? {
        // (`take_proxy_header` waits out a header that is still arriving.)
        Peeked::NotAHeader | Peeked::NeedMore => Ok(peer),
        Peeked::Header { .. } if !trusted.iter().any(|n| n.contains(peer.ip())) => {
            // The refusal answers the client's first packet (it sent it without waiting).
            let seq = match tokio::time::timeout(UNTRUSTED_HEADER_WAIT, io.read_packet_exact()).await {
                Ok(Ok((seq, _))) => seq.wrapping_add(1),
                _ => 1,
            };
            let msg = format!("Proxy header is not accepted from {}", peer.ip());
            Err(fail(io, seq, ER_HANDSHAKE, "08S01", msg).await)
        }
        Peeked::Header { source, .. } => Ok(source.unwrap_or(peer)),
        Peeked::Invalid(what) => Err(fail(io, 1, ER_HANDSHAKE, "08S01", format!("Bad handshake: {what}")).await),
    }
}

/// Runs the connection phase up to a verified credential; returns it with the client's
/// address (which a trusted balancer's PROXY header may have named).
pub async fn authenticate(
    proxy: &Arc<Proxy>,
    io: &mut ClientIo,
    conn_id: u32,
    peer: SocketAddr,
) -> Result<(Authenticated, SocketAddr), ProxyError> {
    let info = proxy.server_info().await;
    let scramble = new_scramble();
    let g =
        greeting(conn_id, &scramble, &info.version, info.capabilities, info.collation, proxy.greeting_plugin.as_str());
    io.queue(0, &g);
    io.flush().await?;
    let peer = match &proxy.proxy_protocol {
        Some(trusted) => proxied_peer(io, trusted, peer).await?,
        None => peer,
    };

    let (mut seq, mut payload) = io.read_packet_exact().await?;
    if is_ssl_request(&payload) {
        let Some(acceptor) = proxy.tls.clone() else {
            return Err(fail(
                io,
                seq.wrapping_add(1),
                ER_HANDSHAKE,
                "08S01",
                "Bad handshake: TLS is not configured on this proxy".into(),
            )
            .await);
        };
        // Nothing else holds the socket during the handshake.
        let Some(tcp) = io.stream.take().and_then(ClientStream::into_tcp) else {
            return Err(ProxyError::ClientProtocol("second SSLRequest".into()));
        };
        let tls = acceptor.accept(tcp).await.map_err(ProxyError::ClientIo)?;
        io.stream = Some(ClientStream::Tls(Box::new(tls)));
        (seq, payload) = io.read_packet().await?;
    } else if proxy.tls_settings.require_secure_transport {
        let msg = "Connections using insecure transport are prohibited while --require_secure_transport=ON.";
        return Err(fail(io, seq.wrapping_add(1), ER_SECURE_TRANSPORT_REQUIRED, "08004", msg.into()).await);
    }

    let Some(hello) = parse_client_hello(&payload) else {
        return Err(fail(io, seq.wrapping_add(1), ER_HANDSHAKE, "08S01", "Bad handshake".into()).await);
    };
    if let Some(plugin) = proxy.users.relayed_plugin(&hello.user).await {
        let relayed = relay(proxy, io, hello, seq.wrapping_add(1), plugin, &info, scramble).await;
        return relayed.map(|a| (a, peer));
    }
    // libmysqlclient and libmariadb answer a greeting that names another plugin with an
    // empty caching_sha2_password response and wait for a switch: without TLS and with
    // `caching_sha2_without_tls = "native"`, that switch goes to native password at once
    // (libmysqlclient takes one switch only).
    let empty_sha2 = hello.auth_response.is_empty() && proxy.greeting_plugin != GreetingPlugin::CachingSha2Password;
    let sha2 = hello.auth_plugin.as_deref() == Some(CACHING_SHA2_PASSWORD)
        && !(empty_sha2 && !io.is_tls() && proxy.sha2_without_tls == Sha2WithoutTls::Native);
    let (credential, next_seq, using) = if sha2 {
        let mut token = hello.auth_response.clone();
        if empty_sha2 {
            io.queue(seq.wrapping_add(1), &auth_switch(CACHING_SHA2_PASSWORD, &scramble));
            io.flush().await?;
            let (s, p) = io.read_packet().await?;
            seq = s;
            token = p.to_vec();
        }
        let (c, next) = super::sha2::login(proxy, io, &hello.user, &scramble, &token, seq).await?;
        (c, next, !token.is_empty())
    } else {
        let mut token = hello.auth_response.clone();
        if hello.auth_plugin.as_deref().is_some_and(|p| p != NATIVE_PASSWORD) {
            // Other plugins (sha256_password, …): ask for native password on the same nonce.
            io.queue(seq.wrapping_add(1), &auth_switch_native(&scramble));
            io.flush().await?;
            let (s, p) = io.read_packet().await?;
            seq = s;
            token = p.to_vec();
        }
        let credential = proxy.users.authenticate(&hello.user, &scramble, &token).await;
        client_login(LoginMethod::Native, credential.is_some());
        (credential, seq.wrapping_add(1), !token.is_empty())
    };
    match credential {
        Some(credential) => Ok((
            Authenticated {
                user: hello.user,
                credential,
                capabilities: hello.capabilities & info.capabilities,
                collation: hello.collation,
                database: hello.database,
                next_seq,
                scramble,
                relayed: None,
            },
            peer,
        )),
        None => {
            let msg = access_denied(&hello.user, peer, using);
            Err(fail(io, next_seq, ER_ACCESS_DENIED, "28000", msg).await)
        }
    }
}

/// MariaDB's 1045 text. Loopback clients show as 'localhost', as MariaDB resolves them.
pub fn access_denied(user: &str, peer: SocketAddr, using_password: bool) -> String {
    let using = if using_password { "YES" } else { "NO" };
    let host = if peer.ip().is_loopback() { "localhost".to_string() } else { peer.ip().to_string() };
    format!("Access denied for user '{user}'@'{host}' (using password: {using})")
}

/// The connection phase of an account whose plugin shoal cannot check (`ed25519`, …):
/// the leader authenticates the client through a connection of the session's own.
async fn relay(
    proxy: &Arc<Proxy>,
    io: &mut ClientIo,
    hello: ClientHello,
    seq: u8,
    plugin: String,
    info: &ServerInfo,
    scramble: [u8; SCRAMBLE_BYTES],
) -> Result<Authenticated, ProxyError> {
    let capabilities = hello.capabilities & info.capabilities;
    let leader = proxy.leader_addr();
    let mut target = proxy.pools.target(&leader, &hello.user, &Credential::Empty, capabilities, hello.collation);
    target.relayed = Some(plugin.clone());
    match BackendConn::relay_login(&target, io, seq).await {
        Ok(Relayed::In(conn, next_seq)) => {
            client_login(LoginMethod::Relayed, true);
            tracing::debug!(user = %hello.user, %plugin, "login relayed to the server");
            Ok(Authenticated {
                user: hello.user,
                credential: Credential::Empty,
                capabilities,
                collation: hello.collation,
                database: hello.database,
                next_seq,
                scramble,
                relayed: Some(conn),
            })
        }
        Ok(Relayed::Refused(msg)) => {
            client_login(LoginMethod::Relayed, false);
            crate::metrics::error(ER_ACCESS_DENIED);
            Err(ProxyError::ClientProtocol(msg))
        }
        Err(e) => {
            let m = e.mysql();
            Err(fail(io, seq, m.code, m.state, m.message).await)
        }
    }
}
