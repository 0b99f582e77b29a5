//! TLS for client connections (rustls).

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("tls: {path}: {what}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        what: String,
    },
    /// rustls refused the certificate/key pair.
    #[error("tls: certificate and key do not form a usable pair: {0}")]
    Rustls(#[from] tokio_rustls::rustls::Error),
}

/// Builds an acceptor from PEM files.
pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, TlsError> {
    let file_err = |p: &Path, what: String| TlsError::File { path: p.display().to_string(), what };
    let certs_pem = std::fs::read(cert_file).map_err(|e| file_err(cert_file, e.to_string()))?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &certs_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_err(cert_file, "no certificate found".into()));
    }
    let key_pem = std::fs::read(key_file).map_err(|e| file_err(key_file, e.to_string()))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| file_err(key_file, e.to_string()))?
        .ok_or_else(|| file_err(key_file, "no private key found".into()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
