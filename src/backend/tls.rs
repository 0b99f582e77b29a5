//! TLS from shoal to its backends (`[backends] tls`): the per-connection decision
//! ([`decide`]), the rustls client configuration of each mode ([`BackendTls`]), and the
//! same settings for the service account's mysql_async connections
//! ([`BackendTls::ssl_opts`]).
//!
//! | mode | verifies | server offers TLS | server does not |
//! |---|---|---|---|
//! | `disabled` | — | plain | plain |
//! | `preferred` | nothing | TLS | plain |
//! | `required` | nothing (encryption only) | TLS | error |
//! | `verify_ca` | chain to `tls_ca_file` | TLS | error |
//! | `verify_identity` | chain + host name of the backend address | TLS | error |
//!
//! Unix sockets (`unix:/path`) are always plain: the socket is local, and MariaDB counts
//! it as secure transport.

use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use crate::config::{BackendTlsMode, BackendsSection};

/// What one connection does, given the mode and the server's greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Log in over the plain socket.
    Plain,
    /// Send the SSLRequest, upgrade, then log in over TLS.
    Tls,
    /// Fail: the mode needs TLS and the server does not offer it.
    Refuse,
}

/// The decision table of the module doc: `mode` × whether the greeting offers
/// `CLIENT_SSL` → [`Decision`].
///
/// | mode | offered | not offered |
/// |---|---|---|
/// | `disabled` | `Plain` | `Plain` |
/// | `preferred` | `Tls` | `Plain` |
/// | `required` | `Tls` | `Refuse` |
/// | `verify_ca` | `Tls` | `Refuse` |
/// | `verify_identity` | `Tls` | `Refuse` |
pub fn decide(mode: BackendTlsMode, offered: bool) -> Decision {
    match (mode, offered) {
        (BackendTlsMode::Disabled, _) => Decision::Plain,
        (_, true) => Decision::Tls,
        (BackendTlsMode::Preferred, false) => Decision::Plain,
        (BackendTlsMode::Required | BackendTlsMode::VerifyCa | BackendTlsMode::VerifyIdentity, false) => {
            Decision::Refuse
        }
    }
}

/// Why the backend TLS settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BackendTlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("backends.{field} {path}: {what}")]
    File {
        /// The config field naming it.
        field: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        what: String,
    },
    /// rustls refused the settings (e.g. the client key does not match its certificate).
    #[error("backends.tls: {0}")]
    Rustls(#[from] tokio_rustls::rustls::Error),
}

/// The backend TLS settings of a proxy generation, shared by every [`super::conn::Target`]
/// it builds (so no connection can forget them); a reload builds new ones.
pub struct BackendTls {
    /// The configured mode.
    pub mode: BackendTlsMode,
    /// The rustls client configuration (`None` when `disabled`).
    connector: Option<TlsConnector>,
    /// The config, kept for the mysql_async connections, which load the files themselves.
    files: BackendsSection,
}

impl std::fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendTls").field("mode", &self.mode).finish()
    }
}

fn read_pem(field: &'static str, path: &Path) -> Result<Vec<u8>, BackendTlsError> {
    std::fs::read(path).map_err(|e| BackendTlsError::File {
        field,
        path: path.display().to_string(),
        what: e.to_string(),
    })
}

fn certs(field: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, BackendTlsError> {
    let err = |what: String| BackendTlsError::File { field, path: path.display().to_string(), what };
    let pem = read_pem(field, path)?;
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut &pem[..]).collect::<Result<_, _>>().map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate found".into()));
    }
    Ok(certs)
}

impl BackendTls {
    /// No TLS (tests and tools that build targets by hand).
    pub fn disabled() -> Arc<BackendTls> {
        Arc::new(BackendTls { mode: BackendTlsMode::Disabled, connector: None, files: BackendsSection::default() })
    }

    /// Loads `[backends] tls*`: reads the CA and client certificate files now, so a bad
    /// file fails the start (or the reload) rather than every connection.
    pub fn from_config(b: &BackendsSection) -> Result<Arc<BackendTls>, BackendTlsError> {
        if b.tls == BackendTlsMode::Disabled {
            return Ok(Arc::new(BackendTls { mode: b.tls, connector: None, files: b.clone() }));
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = if b.tls.verifies() {
            let Some(ca) = &b.tls_ca_file else {
                return Err(BackendTlsError::File {
                    field: "tls_ca_file",
                    path: String::new(),
                    what: format!("backends.tls = \"{}\" needs a CA file", b.tls.as_str()),
                });
            };
            let mut roots = RootCertStore::empty();
            for c in certs("tls_ca_file", ca)? {
                roots.add(c).map_err(|e| BackendTlsError::File {
                    field: "tls_ca_file",
                    path: ca.display().to_string(),
                    what: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| BackendTlsError::File {
                    field: "tls_ca_file",
                    path: ca.display().to_string(),
                    what: e.to_string(),
                })?;
            if b.tls == BackendTlsMode::VerifyCa {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            }
        } else {
            Arc::new(AnyCertificate(provider.clone()))
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&b.tls_cert_file, &b.tls_key_file) {
            (Some(cert), Some(key)) => {
                let chain = certs("tls_cert_file", cert)?;
                let pem = read_pem("tls_key_file", key)?;
                let key_err = |what: String| BackendTlsError::File {
                    field: "tls_key_file",
                    path: key.display().to_string(),
                    what,
                };
                let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &pem[..])
                    .map_err(|e| key_err(e.to_string()))?
                    .ok_or_else(|| key_err("no PEM private key found".into()))?;
                builder.with_client_auth_cert(chain, key)?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Arc::new(BackendTls {
            mode: b.tls,
            connector: Some(TlsConnector::from(Arc::new(config))),
            files: b.clone(),
        }))
    }

    /// Runs the TLS handshake on `tcp` (the SSLRequest already sent) for the backend at
    /// `addr` (`host:port`; the host is the name `verify_identity` checks). The error says
    /// what failed and what to set.
    pub async fn upgrade(&self, tcp: TcpStream, addr: &str) -> Result<TlsStream<TcpStream>, String> {
        let Some(connector) = &self.connector else {
            return Err("backends.tls is disabled: no TLS configuration".into());
        };
        let host = host_of(addr);
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("TLS: {host:?} is not a host name or IP address ({e})"))?;
        connector.connect(name, tcp).await.map_err(|e| self.explain(host, &e))
    }

    /// A handshake error, with what to do about it.
    fn explain(&self, host: &str, e: &std::io::Error) -> String {
        let inner = e.get_ref().and_then(|i| i.downcast_ref::<tokio_rustls::rustls::Error>());
        let hint = match inner {
            Some(tokio_rustls::rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => format!(
                "the backend's certificate does not name {host:?} (backends.tls = \"verify_identity\" checks the host \
                 of the backend address; an IP address must be an IP subject alternative name): connect by a name \
                 the certificate holds, reissue the certificate, or use tls = \"verify_ca\""
            ),
            Some(tokio_rustls::rustls::Error::InvalidCertificate(c)) => format!(
                "the backend's certificate was refused ({c:?}): is backends.tls_ca_file ({}) the CA that signed it?",
                self.files.tls_ca_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
            ),
            _ => "check that the server's TLS works (ssl_cert/ssl_key set, `SHOW VARIABLES LIKE 'have_ssl'` = YES)"
                .into(),
        };
        format!("TLS handshake with {host} failed: {e}; {hint}")
    }

    /// The same settings for mysql_async (the service account's connections: account
    /// loading, health checks, KILL, capture setup). `None` means plain. mysql_async
    /// cannot fall back to plain, so `preferred` is plain there (a limit, documented).
    pub fn ssl_opts(&self) -> Option<mysql_async::SslOpts> {
        use mysql_async::{ClientIdentity, SslOpts};
        let b = &self.files;
        let opts = match self.mode {
            BackendTlsMode::Disabled | BackendTlsMode::Preferred => return None,
            BackendTlsMode::Required => SslOpts::default().with_danger_accept_invalid_certs(true),
            BackendTlsMode::VerifyCa | BackendTlsMode::VerifyIdentity => SslOpts::default()
                .with_root_certs(b.tls_ca_file.iter().map(|p| p.clone().into()).collect())
                .with_disable_built_in_roots(true)
                .with_danger_skip_domain_validation(self.mode == BackendTlsMode::VerifyCa),
        };
        let identity = match (&b.tls_cert_file, &b.tls_key_file) {
            (Some(c), Some(k)) => Some(ClientIdentity::new(c.clone().into(), k.clone().into())),
            _ => None,
        };
        Some(opts.with_client_identity(identity))
    }
}

impl BackendTls {
    /// What to set, for an error of a service-account (mysql_async) connection that TLS
    /// explains; `None` when TLS has nothing to do with it. mysql_async's own messages
    /// say what happened but not which shoal setting to change.
    pub fn service_hint(&self, message: &str) -> Option<String> {
        let ca = || self.files.tls_ca_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        if message.contains("invalid peer certificate") && message.contains("not valid for name") {
            Some(format!(
                "the backend's certificate does not name the host of the backend address (backends.tls = \"{}\"; \
                 the service account's connections check the name under verify_ca too): connect by a name the \
                 certificate holds, reissue it, or use tls = \"required\"",
                self.mode.as_str()
            ))
        } else if message.contains("invalid peer certificate") {
            Some(format!("is backends.tls_ca_file ({}) the CA that signed the backend's certificate?", ca()))
        } else if message.contains("server does not have this capability") {
            Some(format!(
                "backends.tls = \"{}\" but the server does not offer TLS: enable TLS on the server or set \
                 backends.tls = \"preferred\" or \"disabled\"",
                self.mode.as_str()
            ))
        } else if message.contains("Access denied") && self.ssl_opts().is_none() {
            Some(format!(
                "this login ran without TLS (backends.tls = \"{}\"): if the server requires secure transport, set \
                 backends.tls = \"required\" or a verify mode",
                self.mode.as_str()
            ))
        } else {
            None
        }
    }
}

/// The host part of `host:port` (`[::1]:3306` → `::1`).
pub fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// `required`/`preferred`: accepts any certificate (encryption without authentication),
/// but still checks the handshake signatures so the session keys are the server's.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify_ca`: the webpki verifier with the name check waived. webpki checks the chain
/// before the name, so a name error means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(tokio_rustls::rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BackendTlsMode::*;

    /// Walks every row of the table in [`decide`]'s doc comment.
    #[test]
    fn decision_table() {
        let rows = [
            (Disabled, Decision::Plain, Decision::Plain),
            (Preferred, Decision::Tls, Decision::Plain),
            (Required, Decision::Tls, Decision::Refuse),
            (VerifyCa, Decision::Tls, Decision::Refuse),
            (VerifyIdentity, Decision::Tls, Decision::Refuse),
        ];
        for (mode, offered, not_offered) in rows {
            assert_eq!(decide(mode, true), offered, "{mode:?}, offered");
            assert_eq!(decide(mode, false), not_offered, "{mode:?}, not offered");
        }
    }

    #[test]
    fn service_errors_get_a_hint() {
        let b = BackendsSection { tls: Required, ..BackendsSection::default() };
        let t = BackendTls::from_config(&b).unwrap();
        let h = t.service_hint("Client asked for SSL but server does not have this capability").unwrap();
        assert!(h.contains("set backends.tls = \"preferred\""), "{h}");
        assert!(t.service_hint("Access denied for user 'root'").is_none(), "TLS was used");
        assert!(BackendTls::disabled().service_hint("Access denied for user 'root'").unwrap().contains("required"));
        assert!(t.service_hint("Table 't' doesn't exist").is_none());
    }

    #[test]
    fn host_of_addresses() {
        assert_eq!(host_of("127.0.0.1:3306"), "127.0.0.1");
        assert_eq!(host_of("db.example:3306"), "db.example");
        assert_eq!(host_of("[::1]:3306"), "::1");
    }

    #[test]
    fn verify_modes_need_a_readable_ca() {
        let b = BackendsSection {
            tls: VerifyCa,
            tls_ca_file: Some("/nonexistent/ca.pem".into()),
            ..BackendsSection::default()
        };
        let e = BackendTls::from_config(&b).unwrap_err().to_string();
        assert!(e.contains("backends.tls_ca_file /nonexistent/ca.pem"), "{e}");
    }
}
