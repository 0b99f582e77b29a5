//! Wiring: from a [`Config`] to a listening proxy.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::backend::users::{ServiceAccount, Stage2, Users};
use crate::config::{read_secret, Config};
use crate::frontend::{tls, Proxy};
use crate::protocol::auth::{parse_stored_hash, Credential};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Configuration is incomplete or wrong.
    #[error("{0}")]
    Config(String),
    /// TLS files are unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn fixed_users(config: &Config) -> Result<HashMap<String, Vec<Stage2>>, StartError> {
    let mut out = HashMap::new();
    for (name, u) in &config.users {
        let stage2 = if let Some(h) = &u.password_hash {
            Some(parse_stored_hash(h).ok_or_else(|| {
                StartError::Config(format!("users.{name}.password_hash: expected '*' and 40 hex digits"))
            })?)
        } else {
            let pw = match (&u.password, &u.password_file) {
                (Some(p), _) => p.clone(),
                (None, Some(f)) => read_secret(f)
                    .map_err(|e| StartError::Config(format!("users.{name}.password_file {}: {e}", f.display())))?,
                (None, None) => String::new(),
            };
            Credential::from_password(pw.as_bytes()).stage2()
        };
        out.insert(name.clone(), vec![stage2]);
    }
    Ok(out)
}

/// Builds the proxy and binds its listener.
pub async fn bind(config: &Config) -> Result<(Arc<Proxy>, TcpListener), StartError> {
    if config.backends.primary.is_empty() {
        return Err(StartError::Config(
            "no backend: set [backends] primary = \"host:port\" or pass --backend host:port".into(),
        ));
    }
    let b = &config.backends;
    let service = if b.user.is_empty() {
        None
    } else {
        let password = match &b.password_file {
            Some(f) => read_secret(f)
                .map_err(|e| StartError::Config(format!("backends.password_file {}: {e}", f.display())))?,
            None => b.password.clone(),
        };
        Some(ServiceAccount { addr: b.primary.clone(), user: b.user.clone(), password })
    };
    let users = Users::new(fixed_users(config)?, service.clone());
    if let Err(e) = users.reload().await {
        tracing::warn!(error = %e, "could not load accounts from the backend yet; will retry on login");
    }
    let acceptor = match (&config.tls.cert_file, &config.tls.key_file) {
        (Some(c), Some(k)) => Some(tls::acceptor(c, k)?),
        _ => None,
    };
    let proxy = Proxy::new(
        config.limits.clone(),
        config.tls.clone(),
        acceptor,
        users,
        &b.primary,
        &b.replicas,
        config.routing.clone(),
    );
    // First health round before serving, then keep checking in the background.
    crate::backend::health::start(proxy.routing.clone(), service, config.routing.clone()).await;
    let addr = &config.proxy.bind_address;
    let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr: addr.clone(), source })?;
    // Warm the greeting facts so the first client does not pay for the probe.
    proxy.server_info().await;
    Ok((proxy, listener))
}
