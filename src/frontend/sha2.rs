//! `caching_sha2_password` from the server's side: MySQL 8 and 9 clients' default plugin
//! (MySQL 9 clients have no `mysql_native_password` to switch to).
//!
//! ```text
//! client                                                     shoal
//!   handshake response (or COM_CHANGE_USER): caching_sha2_password, token  ──▶
//!      empty token: an account with an empty password, or denied
//!      the digest cached for the account matches the token (fast path):
//!   ◀── AuthMoreData 0x03 "fast auth success", then OK
//!      otherwise (first login of the account since start, or a wrong password):
//!      without TLS and `[proxy] caching_sha2_without_tls = "native"` (the default):
//!   ◀── AuthSwitchRequest mysql_native_password (same nonce); native token ──▶
//!      otherwise:
//!   ◀── AuthMoreData 0x04 "perform full authentication"
//!   over TLS:    password ‖ NUL                                            ──▶
//!   without TLS: 0x02 "request public key"                                 ──▶
//!                ◀── AuthMoreData: the RSA public key, PEM
//!                RSA-OAEP-SHA1(password ‖ NUL XOR scramble)                ──▶
//!                (a client that already has the key sends this at once)
//!   ◀── OK (sent by the session), or ERR 1045
//! ```
//!
//! The password is checked against the account's native hash (`protocol::auth` has the
//! math); its digest is then cached ([`Users::sha2_fast`](crate::backend::users::Users::sha2_fast))
//! and the native credential it gives opens backend connections as for any other login.
//! The RSA key is `[tls] rsa_private_key_file`, or one shoal makes at the first login that
//! needs it (per process, so a restart changes it: clients that pin a key file need the
//! configured one).

use std::sync::{Arc, OnceLock};

use super::io::ClientIo;
use super::tls::RsaKey;
use super::Proxy;
use crate::config::Sha2WithoutTls;
use crate::error::ProxyError;
use crate::metrics::{client_login, LoginMethod};
use crate::protocol::auth::{unmask_password, Credential, SCRAMBLE_BYTES};
use crate::protocol::handshake::auth_switch_native;

/// The plugin's name on the wire.
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";

/// AuthMoreData status bytes (MySQL's `sha2_password.h`).
const FAST_AUTH_SUCCESS: u8 = 0x03;
const PERFORM_FULL_AUTHENTICATION: u8 = 0x04;
/// What a client without TLS sends to ask for the public key.
const REQUEST_PUBLIC_KEY: u8 = 0x02;
/// The first byte of an AuthMoreData packet.
const AUTH_MORE_DATA: u8 = 0x01;

/// The key shoal made for itself (no `[tls] rsa_private_key_file`), shared by every
/// proxy generation of the process.
static GENERATED_KEY: tokio::sync::OnceCell<Arc<RsaKey>> = tokio::sync::OnceCell::const_new();

/// The key of the exchange: the configured one, else the process's own (made once).
async fn rsa_key(configured: &OnceLock<Arc<RsaKey>>) -> Result<Arc<RsaKey>, ProxyError> {
    if let Some(k) = configured.get() {
        return Ok(k.clone());
    }
    let key = GENERATED_KEY
        .get_or_try_init(|| async {
            let made = tokio::task::spawn_blocking(RsaKey::generate).await;
            made.map_err(|e| e.to_string()).and_then(|k| k).map(Arc::new)
        })
        .await
        .map_err(|e| {
            ProxyError::ClientProtocol(format!("caching_sha2_password: {e}; set [tls] rsa_private_key_file"))
        })?;
    tracing::info!(bits = super::tls::RSA_KEY_BITS, "made an RSA key for caching_sha2_password's key exchange");
    Ok(key.clone())
}

/// Runs the exchange after a client's `caching_sha2_password` `token`; `seq` is the
/// sequence id of the client's packet that carried it. Returns the credential (`None`:
/// denied) and the sequence id of the server's next packet (the OK or the ERR).
pub async fn login(
    proxy: &Proxy,
    io: &mut ClientIo,
    user: &str,
    scramble: &[u8; SCRAMBLE_BYTES],
    token: &[u8],
    seq: u8,
) -> Result<(Option<Credential>, u8), ProxyError> {
    let users = &proxy.users;
    if token.is_empty() {
        let credential = users.authenticate(user, scramble, token).await;
        client_login(LoginMethod::Native, credential.is_some());
        return Ok((credential, seq.wrapping_add(1)));
    }
    if let Some(credential) = users.sha2_fast(user, scramble, token) {
        client_login(LoginMethod::Sha2Fast, true);
        io.queue(seq.wrapping_add(1), &[AUTH_MORE_DATA, FAST_AUTH_SUCCESS]);
        return Ok((Some(credential), seq.wrapping_add(2)));
    }
    if !io.is_tls() && proxy.sha2_without_tls == Sha2WithoutTls::Native {
        // `[proxy] caching_sha2_without_tls = "native"`: the native plugin on the same nonce.
        io.queue(seq.wrapping_add(1), &auth_switch_native(scramble));
        io.flush().await?;
        let (seq, token) = io.read_packet().await?;
        let credential = users.authenticate(user, scramble, &token).await;
        client_login(LoginMethod::Native, credential.is_some());
        return Ok((credential, seq.wrapping_add(1)));
    }
    io.queue(seq.wrapping_add(1), &[AUTH_MORE_DATA, PERFORM_FULL_AUTHENTICATION]);
    io.flush().await?;
    let (mut seq, mut packet) = io.read_packet().await?;
    let method = if io.is_tls() { LoginMethod::Sha2FullTls } else { LoginMethod::Sha2FullRsa };
    let password = if io.is_tls() {
        // `password ‖ NUL` in the clear, inside TLS.
        let mut p = packet.to_vec();
        if p.last() == Some(&0) {
            p.pop();
        }
        Some(p)
    } else {
        let key = rsa_key(&proxy.rsa_key).await?;
        if packet[..] == [REQUEST_PUBLIC_KEY] {
            let mut more = Vec::with_capacity(1 + key.public_pem.len());
            more.push(AUTH_MORE_DATA);
            more.extend_from_slice(key.public_pem.as_bytes());
            io.queue(seq.wrapping_add(1), &more);
            io.flush().await?;
            (seq, packet) = io.read_packet().await?;
        }
        // Anything but a ciphertext of this key (a password in the clear over plain TCP
        // included) is refused like a wrong password.
        let ciphertext = packet.to_vec();
        let decrypted = if ciphertext.len() == key.ciphertext_bytes() {
            let key = key.clone();
            tokio::task::spawn_blocking(move || key.decrypt(&ciphertext)).await.ok().flatten()
        } else {
            None
        };
        decrypted.and_then(|d| unmask_password(&d, scramble))
    };
    let credential = match password {
        Some(p) => users.authenticate_password(user, &p).await,
        None => None,
    };
    client_login(method, credential.is_some());
    Ok((credential, seq.wrapping_add(1)))
}
