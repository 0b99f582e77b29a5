//! The connection phase: the greeting shoal sends, the client's handshake response it
//! reads, and the capability flags both sides settle on.
//!
//! Capabilities that change the wire format or the meaning of results
//! ([`SESSION_CAPABILITIES`]) must be identical on the client connection and on the
//! backend connection that serves it, because the relay forwards bytes untouched. They
//! are part of the backend pool key.

use bytes::BytesMut;
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, HandshakePacket, HandshakeResponse};
use mysql_common::proto::{MyDeserialize, MySerialize};

use super::auth::SCRAMBLE_BYTES;
use super::packet::lenenc_int;
use super::{CapabilityFlags as C, StatusFlags};

/// Auth plugin shoal verifies itself.
pub const NATIVE_PASSWORD: &str = "mysql_native_password";

/// Capabilities shoal can offer clients (further limited by what the backend offers).
pub const PROXY_CAPABILITIES: C = C::from_bits_truncate(
    C::CLIENT_LONG_PASSWORD.bits()
        | C::CLIENT_FOUND_ROWS.bits()
        | C::CLIENT_LONG_FLAG.bits()
        | C::CLIENT_CONNECT_WITH_DB.bits()
        | C::CLIENT_NO_SCHEMA.bits()
        | C::CLIENT_ODBC.bits()
        | C::CLIENT_LOCAL_FILES.bits()
        | C::CLIENT_IGNORE_SPACE.bits()
        | C::CLIENT_PROTOCOL_41.bits()
        | C::CLIENT_INTERACTIVE.bits()
        | C::CLIENT_IGNORE_SIGPIPE.bits()
        | C::CLIENT_TRANSACTIONS.bits()
        | C::CLIENT_RESERVED.bits()
        | C::CLIENT_SECURE_CONNECTION.bits()
        | C::CLIENT_MULTI_STATEMENTS.bits()
        | C::CLIENT_MULTI_RESULTS.bits()
        | C::CLIENT_PS_MULTI_RESULTS.bits()
        | C::CLIENT_PLUGIN_AUTH.bits()
        | C::CLIENT_CONNECT_ATTRS.bits()
        | C::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
        | C::CLIENT_SESSION_TRACK.bits()
        | C::CLIENT_DEPRECATE_EOF.bits(),
);

/// Capabilities that change what the server sends or how it reads statements; a pooled
/// backend connection serves only clients with the same set.
pub const SESSION_CAPABILITIES: C = C::from_bits_truncate(
    C::CLIENT_FOUND_ROWS.bits()
        | C::CLIENT_NO_SCHEMA.bits()
        | C::CLIENT_LOCAL_FILES.bits()
        | C::CLIENT_IGNORE_SPACE.bits()
        | C::CLIENT_MULTI_STATEMENTS.bits()
        | C::CLIENT_MULTI_RESULTS.bits()
        | C::CLIENT_PS_MULTI_RESULTS.bits()
        | C::CLIENT_SESSION_TRACK.bits()
        | C::CLIENT_DEPRECATE_EOF.bits(),
);

/// Capabilities shoal always uses on backend connections, whatever the client chose.
pub const BACKEND_BASE_CAPABILITIES: C = C::from_bits_truncate(
    C::CLIENT_LONG_PASSWORD.bits()
        | C::CLIENT_LONG_FLAG.bits()
        | C::CLIENT_PROTOCOL_41.bits()
        | C::CLIENT_TRANSACTIONS.bits()
        | C::CLIENT_SECURE_CONNECTION.bits()
        | C::CLIENT_PLUGIN_AUTH.bits()
        | C::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits(),
);

/// Builds the initial handshake (protocol 10) payload.
pub fn greeting(
    connection_id: u32,
    scramble: &[u8; SCRAMBLE_BYTES],
    server_version: &str,
    capabilities: C,
    collation: u8,
    plugin: &str,
) -> Vec<u8> {
    // Part 2 of the scramble is sent NUL-terminated (13 bytes), as MariaDB does.
    let mut part2 = scramble[8..].to_vec();
    part2.push(0);
    let packet = HandshakePacket::new(
        10,
        server_version.as_bytes(),
        connection_id,
        scramble[..8].try_into().expect("8 bytes"),
        Some(part2),
        capabilities,
        collation,
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(plugin.as_bytes()),
    );
    let mut out = Vec::with_capacity(128);
    packet.serialize(&mut out);
    out
}

/// A client's handshake response, read leniently: unknown trailing data is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// Capabilities the client asked for.
    pub capabilities: C,
    /// The collation (character set) the client wants for the session.
    pub collation: u8,
    /// Account name.
    pub user: String,
    /// The auth plugin's response to the scramble.
    pub auth_response: Vec<u8>,
    /// The schema to start in (CLIENT_CONNECT_WITH_DB).
    pub database: Option<String>,
    /// The auth plugin the client used to compute `auth_response`.
    pub auth_plugin: Option<String>,
}

/// Byte count of an SSLRequest: capabilities, max packet, charset, 23 filler bytes.
pub const SSL_REQUEST_BYTES: usize = 32;

/// True when a handshake-response payload is really an SSLRequest.
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == SSL_REQUEST_BYTES && client_capabilities(payload).contains(C::CLIENT_SSL)
}

/// The capability flags at the start of a handshake response or SSLRequest.
pub fn client_capabilities(payload: &[u8]) -> C {
    match payload.get(..4) {
        Some(b) => C::from_bits_truncate(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        None => C::empty(),
    }
}

fn null_str(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = buf.iter().position(|b| *b == 0)?;
    Some((&buf[..end], &buf[end + 1..]))
}

/// Parses a HandshakeResponse41. `None` means the packet is malformed.
pub fn parse_client_hello(payload: &[u8]) -> Option<ClientHello> {
    if payload.len() < SSL_REQUEST_BYTES {
        return None;
    }
    let capabilities = client_capabilities(payload);
    if !capabilities.contains(C::CLIENT_PROTOCOL_41) {
        return None;
    }
    let collation = payload[8];
    let (user, mut rest) = null_str(&payload[SSL_REQUEST_BYTES..])?;
    let auth_response;
    if capabilities.contains(C::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
        let (len, used) = lenenc_int(rest)?;
        let len = usize::try_from(len).ok()?;
        auth_response = rest.get(used..used.checked_add(len)?)?.to_vec();
        rest = &rest[used + len..];
    } else if capabilities.contains(C::CLIENT_SECURE_CONNECTION) {
        let len = *rest.first()? as usize;
        auth_response = rest.get(1..1 + len)?.to_vec();
        rest = &rest[1 + len..];
    } else {
        let (a, r) = null_str(rest)?;
        auth_response = a.to_vec();
        rest = r;
    }
    let mut database = None;
    if capabilities.contains(C::CLIENT_CONNECT_WITH_DB) {
        // Some clients set the flag and send nothing: treat a missing field as no schema.
        if let Some((db, r)) = null_str(rest) {
            database = (!db.is_empty()).then(|| String::from_utf8_lossy(db).into_owned());
            rest = r;
        } else {
            rest = &[];
        }
    }
    let mut auth_plugin = None;
    if capabilities.contains(C::CLIENT_PLUGIN_AUTH) {
        let name = match null_str(rest) {
            Some((name, _)) => name,
            None => rest,
        };
        auth_plugin = (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned());
    }
    Some(ClientHello {
        capabilities,
        collation,
        user: String::from_utf8_lossy(user).into_owned(),
        auth_response,
        database,
        auth_plugin,
    })
}

/// An AuthSwitchRequest asking the client to redo auth with `mysql_native_password`.
pub fn auth_switch_native(scramble: &[u8; SCRAMBLE_BYTES]) -> Vec<u8> {
    auth_switch(NATIVE_PASSWORD, scramble)
}

/// An AuthSwitchRequest to `plugin` on `scramble`.
pub fn auth_switch(plugin: &str, scramble: &[u8; SCRAMBLE_BYTES]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + plugin.len() + SCRAMBLE_BYTES + 1);
    out.push(0xFE);
    out.extend_from_slice(plugin.as_bytes());
    out.push(0);
    out.extend_from_slice(scramble);
    out.push(0);
    out
}

/// What a backend's greeting tells us.
#[derive(Debug, Clone)]
pub struct ServerHello {
    /// Version string, e.g. `10.11.6-MariaDB-0+deb12u1`.
    pub version: String,
    /// The backend's thread id for this connection (what `KILL` takes).
    pub connection_id: u32,
    /// Capabilities the server offers.
    pub capabilities: C,
    /// The 20-byte nonce.
    pub scramble: Vec<u8>,
    /// The server's default collation.
    pub collation: u8,
    /// The plugin the server wants.
    pub auth_plugin: Option<String>,
}

/// Parses a backend's initial handshake.
pub fn parse_server_hello(payload: &[u8]) -> Option<ServerHello> {
    if payload.first() != Some(&10) {
        return None;
    }
    // mysql_common computes `auth_plugin_data_len as i8 - 8`, which overflows for lengths
    // of 128 and up (never sent by a real server, max is 21): refuse those first.
    // Layout: version NUL-string, thread id 4, scramble 8, filler 1, caps 2, collation 1,
    // status 2, caps 2, then the length byte.
    let version_end = payload.iter().skip(1).position(|b| *b == 0)? + 1;
    let len_at = version_end + 1 + 4 + 8 + 1 + 2 + 1 + 2 + 2;
    if payload.get(len_at).is_some_and(|l| *l >= 0x80) {
        return None;
    }
    let p = HandshakePacket::deserialize((), &mut ParseBuf(payload)).ok()?;
    Some(ServerHello {
        version: p.server_version_str().into_owned(),
        connection_id: p.connection_id(),
        capabilities: p.capabilities(),
        scramble: p.nonce(),
        collation: p.default_collation(),
        auth_plugin: p.auth_plugin_name_str().map(|s| s.into_owned()),
    })
}

/// Builds the handshake response shoal sends to a backend.
pub fn backend_hello(capabilities: C, collation: u8, user: &str, auth_response: &[u8]) -> BytesMut {
    let mut p = HandshakeResponse::new(
        Some(auth_response),
        (0, 0, 0),
        Some(user.as_bytes()),
        None::<&[u8]>,
        Some(AuthPlugin::MysqlNativePassword),
        capabilities,
        None,
        super::packet::PAYLOAD_MAX as u32,
    );
    // `new` derives the collation from the version; we want the client's.
    let mut out = Vec::with_capacity(128);
    p = p.with_mariadb_ext_capabilities(mysql_common::constants::MariadbCapabilities::empty());
    p.serialize(&mut out);
    out[8] = collation;
    BytesMut::from(&out[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_parses_back() {
        let scramble = *b"0123456789abcdefghij";
        let caps = PROXY_CAPABILITIES | C::CLIENT_SSL;
        let g = greeting(42, &scramble, "10.11.6-MariaDB-shoal", caps, 45, NATIVE_PASSWORD);
        let s = parse_server_hello(&g).unwrap();
        assert_eq!(s.connection_id, 42);
        assert_eq!(s.scramble, scramble.to_vec());
        assert_eq!(s.version, "10.11.6-MariaDB-shoal");
        assert_eq!(s.capabilities, caps);
        assert_eq!(s.collation, 45);
        assert_eq!(s.auth_plugin.as_deref(), Some(NATIVE_PASSWORD));
    }

    #[test]
    fn backend_hello_parses_as_client_hello() {
        let caps = BACKEND_BASE_CAPABILITIES | C::CLIENT_DEPRECATE_EOF;
        let out = backend_hello(caps, 224, "app", &[9; 20]);
        let h = parse_client_hello(&out).unwrap();
        assert_eq!(h.user, "app");
        assert_eq!(h.collation, 224);
        assert_eq!(h.auth_response, vec![9; 20]);
        assert!(h.capabilities.contains(C::CLIENT_DEPRECATE_EOF));
        assert_eq!(h.auth_plugin.as_deref(), Some(NATIVE_PASSWORD));
    }

    #[test]
    fn truncated_hellos_are_rejected_not_panicking() {
        let out = backend_hello(BACKEND_BASE_CAPABILITIES, 8, "app", &[9; 20]);
        for cut in 0..out.len() - 1 {
            let _ = parse_client_hello(&out[..cut]);
        }
        assert!(parse_client_hello(&out[..20]).is_none());
        assert!(parse_server_hello(&[10, 1, 2]).is_none());
        // An auth-data length of 0x80+ made mysql_common overflow (found by the fuzz test).
        let mut g = greeting(1, &[1; 20], "x", PROXY_CAPABILITIES, 8, NATIVE_PASSWORD);
        g[2 + 1 + 4 + 8 + 1 + 2 + 1 + 2 + 2] = 0x80;
        assert!(parse_server_hello(&g).is_none());
    }
}
