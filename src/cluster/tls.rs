//! Mutual TLS on the cluster port (`[cluster] tls_cert_file`, `tls_key_file`,
//! `tls_ca_file`): the rustls configurations of both ends ([`PeerTls`]), the name a
//! dialer checks in the certificate of the peer it dials ([`server_name`]), and what a
//! failed handshake tells the operator (`explain_dial`, `explain_accept`).
//!
//! With all three files set, every peer connection, both directions, is TLS 1.3 before
//! the first frame; the HMAC handshake of [`super::network`] then runs inside it (the
//! cluster secret stays required).
//!
//! | end | shows | checks |
//! |---|---|---|
//! | listener | `tls_cert_file` | the dialer's client certificate chains to `tls_ca_file` (a dialer without one is refused); not its name: peers dial from any source address |
//! | dialer | `tls_cert_file` (as client certificate) | the listener's certificate chains to `tls_ca_file` and names the host of the address dialed ([`server_name`]) |
//!
//! One certificate per node serves both ends, so it needs both extended key usages
//! (`serverAuth, clientAuth`) or none. The files are read once at start: rotating them
//! means restarting the node (docs/cluster.md).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The TLS protocol versions peers speak: 1.3 only (every peer is a shoal node of one
/// build; there is no older client to accept).
const VERSIONS: &[&tokio_rustls::rustls::SupportedProtocolVersion] = &[&tokio_rustls::rustls::version::TLS13];

/// The three PEM files, as configured.
#[derive(Debug, Clone, Copy)]
pub struct TlsFiles<'a> {
    /// This node's certificate chain (`[cluster] tls_cert_file`), shown on both ends.
    pub cert: &'a Path,
    /// Its private key (`[cluster] tls_key_file`).
    pub key: &'a Path,
    /// The CA every peer's certificate must chain to (`[cluster] tls_ca_file`).
    pub ca: &'a Path,
}

/// A TLS file that cannot be used, naming the field and the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {path}: {what}")]
pub struct TlsFileError {
    /// `cluster.tls_cert_file`, `cluster.tls_key_file` or `cluster.tls_ca_file`.
    pub field: &'static str,
    /// The file.
    pub path: String,
    /// What is wrong with it and what to do.
    pub what: String,
}

/// Both ends of mutual TLS on the cluster port, built once at start and shared by the
/// listener and every dialer.
#[derive(Clone)]
pub struct PeerTls {
    /// Accepts inbound peers: requires a client certificate that chains to the CA.
    acceptor: TlsAcceptor,
    /// Dials peers: checks the server's chain and name, shows our certificate.
    connector: TlsConnector,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls(..)")
    }
}

fn file_error(field: &'static str, path: &Path, what: impl Into<String>) -> TlsFileError {
    TlsFileError { field, path: path.display().to_string(), what: what.into() }
}

fn read(field: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|e| file_error(field, path, format!("cannot be read: {e}")))
}

fn certs(field: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let pem = read(field, path)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(field, path, format!("is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(field, path, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    }
    Ok(certs)
}

fn key(field: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let pem = read(field, path)?;
    rustls_pemfile::private_key(&mut &pem[..])
        .map_err(|e| file_error(field, path, format!("is not PEM: {e}")))?
        .ok_or_else(|| file_error(field, path, "holds no PEM private key (-----BEGIN PRIVATE KEY-----)"))
}

impl PeerTls {
    /// Reads the three files and builds both ends; an unreadable file, one that is not
    /// PEM, or a key that does not match its certificate fails here, at start.
    pub fn load(files: TlsFiles<'_>) -> Result<PeerTls, TlsFileError> {
        const CERT: &str = "cluster.tls_cert_file";
        const KEY: &str = "cluster.tls_key_file";
        const CA: &str = "cluster.tls_ca_file";
        let chain = certs(CERT, files.cert)?;
        let key = key(KEY, files.key)?;
        let mut roots = RootCertStore::empty();
        for c in certs(CA, files.ca)? {
            roots.add(c).map_err(|e| file_error(CA, files.ca, format!("is not a usable CA certificate: {e}")))?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let rustls = |e: tokio_rustls::rustls::Error| file_error(CERT, files.cert, e.to_string());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| file_error(CA, files.ca, e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(VERSIONS)
            .map_err(rustls)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| file_error(KEY, files.key, format!("does not fit the certificate in {CERT}: {e}")))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(VERSIONS)
            .map_err(rustls)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| file_error(KEY, files.key, format!("does not fit the certificate in {CERT}: {e}")))?;
        Ok(PeerTls { acceptor: TlsAcceptor::from(Arc::new(server)), connector: TlsConnector::from(Arc::new(client)) })
    }

    /// The listener's end.
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// The dialer's end.
    pub fn connector(&self) -> &TlsConnector {
        &self.connector
    }
}

/// The name a dialer checks in the certificate of the peer at `addr` (a member address,
/// `host:port`): the host part, as an IP address when it is one, else as a DNS name.
/// Pure.
///
/// | address dialed | name checked | the peer's certificate needs |
/// |---|---|---|
/// | `10.0.0.1:7654` | IP `10.0.0.1` | an IP subject alternative name `10.0.0.1` |
/// | `[fd00::1]:7654` | IP `fd00::1` | an IP SAN `fd00::1` |
/// | `node1.db.internal:7654` | DNS `node1.db.internal` | a DNS SAN `node1.db.internal` (or `*.db.internal`) |
/// | `:7654`, `bad_name!:7654` | — | error: not a host name or IP address |
///
/// The common name is never used (webpki checks SANs only); a certificate may hold both
/// kinds, so one certificate serves nodes dialed by name and by address.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_string()).map_err(|_| {
        format!("peer address {addr:?}: {host:?} is not a host name or IP address the peer's certificate can name")
    })
}

/// The rustls error inside an I/O error of a TLS stream, if that is what it is.
pub(super) fn rustls_error(e: &std::io::Error) -> Option<&tokio_rustls::rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<tokio_rustls::rustls::Error>())
}

/// Why a dialer's TLS handshake with `addr` failed, and what to do. Pure.
pub(super) fn explain_dial(addr: &str, e: &std::io::Error) -> String {
    use tokio_rustls::rustls::{CertificateError, Error};
    let hint = match rustls_error(e) {
        Some(Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })) => {
            "its certificate does not name the host of its member address (a name must be a DNS SAN, an IP address an \
             IP SAN): reissue the peer's certificate with that name, or dial it by a name the certificate holds"
                .to_string()
        }
        Some(Error::InvalidCertificate(c)) => format!(
            "its certificate was refused ({c:?}): is it signed by the CA in this node's [cluster] tls_ca_file?"
        ),
        Some(Error::AlertReceived(a)) => format!(
            "it refused this node's certificate ({a:?}): is this node's tls_cert_file signed by the CA in the peer's tls_ca_file?"
        ),
        Some(other) => format!("{other}"),
        None => "the peer ended the handshake: does it run with [cluster] tls_cert_file, tls_key_file and tls_ca_file set?"
            .to_string(),
    };
    format!("TLS with peer {addr} failed: {e}; {hint}")
}

/// Why a listener's TLS handshake with a dialer failed, and what to do. Pure.
pub(super) fn explain_accept(e: &std::io::Error) -> String {
    use tokio_rustls::rustls::Error;
    let hint = match rustls_error(e) {
        Some(Error::NoCertificatesPresented) => {
            "the peer showed no client certificate: set [cluster] tls_cert_file and tls_key_file on it".to_string()
        }
        Some(Error::InvalidCertificate(c)) => {
            format!("its client certificate was refused ({c:?}): is it signed by the CA in this node's [cluster] tls_ca_file?")
        }
        Some(Error::AlertReceived(a)) => {
            format!("it refused this node's certificate ({a:?}): is this node's tls_cert_file signed by the CA in its tls_ca_file?")
        }
        Some(Error::InvalidMessage(_)) => {
            "the peer did not begin TLS: set [cluster] tls_cert_file, tls_key_file and tls_ca_file on every node, or on none"
                .to_string()
        }
        Some(other) => format!("{other}"),
        None => "the peer ended the handshake".to_string(),
    };
    format!("TLS handshake failed: {e}; {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of [`server_name`]'s table.
    #[test]
    fn server_name_rows() {
        let ip = |s: &str| ServerName::IpAddress(s.parse::<IpAddr>().unwrap().into());
        assert_eq!(server_name("10.0.0.1:7654").unwrap(), ip("10.0.0.1"));
        assert_eq!(server_name("[fd00::1]:7654").unwrap(), ip("fd00::1"));
        assert_eq!(
            server_name("node1.db.internal:7654").unwrap(),
            ServerName::try_from("node1.db.internal").unwrap().to_owned()
        );
        assert!(matches!(server_name("localhost:7654").unwrap(), ServerName::DnsName(_)));
        assert!(server_name(":7654").unwrap_err().contains("not a host name"));
        assert!(server_name("bad_name!:7654").is_err());
    }

    #[test]
    fn unreadable_and_non_pem_files_name_field_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let missing = dir.path().join("missing.pem");
        let files = TlsFiles { cert: &missing, key: &junk, ca: &junk };
        let e = PeerTls::load(files).unwrap_err();
        assert_eq!((e.field, e.path.as_str()), ("cluster.tls_cert_file", missing.to_str().unwrap()));
        assert!(e.to_string().contains("cannot be read"), "{e}");
        let files = TlsFiles { cert: &junk, key: &junk, ca: &junk };
        let e = PeerTls::load(files).unwrap_err();
        assert_eq!(e.field, "cluster.tls_cert_file");
        assert!(e.what.contains("no PEM certificate"), "{e}");
    }
}
