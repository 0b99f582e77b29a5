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

/// Bits of the RSA key shoal makes for itself when `[tls] rsa_private_key_file` is unset:
/// `rsa`'s default, NIST's 128-bit strength (MySQL makes 2048).
pub const RSA_KEY_BITS: usize = rsa::PrivateKey::DEFAULT_BITS;

/// The RSA key pair of `caching_sha2_password`'s key exchange (`frontend::sha2`): clients
/// without TLS encrypt the password to its public half.
pub struct RsaKey {
    private: rsa::PrivateKey,
    /// The public key as clients read it (PEM, SubjectPublicKeyInfo).
    pub public_pem: String,
}

impl RsaKey {
    /// Reads a PEM private key (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`).
    pub fn from_file(path: &Path) -> Result<RsaKey, TlsError> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let file_err = |what: String| TlsError::File { path: path.display().to_string(), what };
        let pem = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let private = rsa::PrivateKey::from_pkcs8_pem(&pem)
            .or_else(|_| rsa::PrivateKey::from_pkcs1_pem(&pem))
            .map_err(|e| file_err(format!("not a PEM RSA private key (PKCS#8 or PKCS#1): {e}")))?;
        RsaKey::new(private).map_err(file_err)
    }

    /// A fresh key of [`RSA_KEY_BITS`] (about 0.1–1 s of CPU: run it off the runtime).
    pub fn generate() -> Result<RsaKey, String> {
        use rsa::Generate;
        // `Generate` makes `DEFAULT_BITS` keys from the operating system's random source.
        let private = rsa::PrivateKey::try_generate().map_err(|e| format!("could not make an RSA key: {e}"))?;
        RsaKey::new(private)
    }

    fn new(private: rsa::PrivateKey) -> Result<RsaKey, String> {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| format!("could not encode the RSA public key: {e}"))?;
        Ok(RsaKey { private, public_pem })
    }

    /// Bytes of a ciphertext made with this key.
    pub fn ciphertext_bytes(&self) -> usize {
        use rsa::traits::PublicKeyParts;
        self.private.size()
    }

    /// Decrypts what a client encrypted with RSA-OAEP over SHA-1 (MySQL clients'
    /// `RSA_PKCS1_OAEP_PADDING`); `None` for anything else. Blinded (constant-time in
    /// `rsa` 0.10).
    pub fn decrypt(&self, ciphertext: &[u8]) -> Option<Vec<u8>> {
        self.private.oaep_decrypt::<oaep_sha1::Sha1>(ciphertext).ok()
    }
}
