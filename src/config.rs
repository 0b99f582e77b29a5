//! Configuration: TOML file sections, defaults, and validation that names the bad field.
//!
//! Sections follow the WolfScale layout (`[node] [database] [wal] [cluster] [api]
//! [proxy]`) so a `wolfscale.toml` loads unchanged; shoal adds `[backends] [users]
//! [limits] [tls] [routing] [metrics]`. Every struct is `#[serde(default)]`: an empty file
//! is a valid configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `[proxy]`: the MySQL listener.
    pub proxy: ProxySection,
    /// `[backends]`: the servers shoal relays to (standalone proxy mode).
    pub backends: BackendsSection,
    /// `[users]`: accounts shoal authenticates without asking the backend.
    pub users: BTreeMap<String, UserEntry>,
    /// `[limits]`: every bound, named with its unit.
    pub limits: LimitsSection,
    /// `[tls]`: TLS for client connections.
    pub tls: TlsSection,
    /// `[routing]`: read/write split, read-your-writes and health checks.
    pub routing: RoutingSection,
}

/// `[routing]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RoutingSection {
    /// `session` (a session reads its own writes), `eventual` or `strong` (primary only).
    pub read_consistency: crate::route::Consistency,
    /// Replicas further behind than this get no reads.
    pub max_lag_ms: u64,
    /// How long a read waits for a replica to apply the session's last write before it
    /// goes to the primary instead.
    pub causal_wait_ms: u64,
    /// Time between two health checks of a server.
    pub health_interval_ms: u64,
    /// Limit on one health check (connect + queries).
    pub health_timeout_ms: u64,
    /// Consecutive failed checks before a server leaves the rotation.
    pub failures_before_down: u32,
    /// Consecutive good checks before it comes back.
    pub successes_before_up: u32,
}

impl Default for RoutingSection {
    fn default() -> Self {
        RoutingSection {
            read_consistency: crate::route::Consistency::Session,
            max_lag_ms: 10_000,
            causal_wait_ms: 1_000,
            health_interval_ms: 1_000,
            health_timeout_ms: 1_000,
            failures_before_down: 2,
            successes_before_up: 2,
        }
    }
}

/// `[proxy]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ProxySection {
    /// Whether the MySQL listener runs (WolfScale field; shoal always runs it in `proxy`).
    pub enabled: bool,
    /// Address the MySQL protocol listener binds, `host:port`.
    pub bind_address: String,
}

impl Default for ProxySection {
    fn default() -> Self {
        ProxySection { enabled: true, bind_address: "127.0.0.1:8007".into() }
    }
}

/// `[backends]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BackendsSection {
    /// The writable server, `host:port`.
    pub primary: String,
    /// Read replicas, `host:port` each.
    pub replicas: Vec<String>,
    /// Service account used to load account hashes (`mysql.user`) and run health checks.
    pub user: String,
    /// Its password (prefer `password_file`).
    pub password: String,
    /// File holding the password (first line).
    pub password_file: Option<PathBuf>,
}

/// One `[users.NAME]` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UserEntry {
    /// Plaintext password.
    pub password: Option<String>,
    /// File holding the plaintext password.
    pub password_file: Option<PathBuf>,
    /// Native password hash as in `mysql.user` (`*` + 40 hex digits).
    pub password_hash: Option<String>,
}

/// `[limits]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsSection {
    /// Client connections held at once; the next one gets error 1040.
    pub client_connections_max: u32,
    /// Backend connections per pool (backend × user × capabilities).
    pub pool_connections_max: u32,
    /// Idle backend connections kept open per pool.
    pub pool_connections_min: u32,
    /// How long a statement waits for a free backend connection.
    pub checkout_timeout_ms: u64,
    /// Backend connect + login time limit.
    pub connect_timeout_ms: u64,
    /// Idle backend connections are closed after this long.
    pub pool_idle_timeout_s: u64,
    /// Largest packet accepted from a client (like `max_allowed_packet`).
    pub packet_bytes_max: u64,
    /// Prepared statements one client may hold.
    pub prepared_per_client_max: u32,
    /// Prepared statements kept open on one backend connection (least recently used are closed).
    pub prepared_per_backend_max: u32,
    /// Prepare responses cached per pool.
    pub prepared_cache_entries_max: u32,
    /// Time a client has to finish the handshake.
    pub handshake_timeout_ms: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            client_connections_max: 20_000,
            pool_connections_max: 64,
            pool_connections_min: 0,
            checkout_timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
            pool_idle_timeout_s: 600,
            packet_bytes_max: 64 * 1024 * 1024,
            prepared_per_client_max: 16_382,
            prepared_per_backend_max: 1_024,
            prepared_cache_entries_max: 10_000,
            handshake_timeout_ms: 10_000,
        }
    }
}

/// `[tls]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsSection {
    /// PEM certificate chain; TLS is offered to clients when set (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key.
    pub key_file: Option<PathBuf>,
    /// Refuse clients that do not use TLS.
    pub require_secure_transport: bool,
}

/// A configuration problem, naming the file, the field, the value and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TOML did not parse or a field has the wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the line and the field).
        message: String,
    },
    /// A value is out of range.
    #[error("config field {field} = {value}: {allowed}")]
    Invalid {
        /// Dotted field name, e.g. `limits.pool_connections_max`.
        field: &'static str,
        /// The value found.
        value: String,
        /// What is allowed.
        allowed: String,
    },
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let config: Config =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let range = |field: &'static str, v: u64, lo: u64, hi: u64| {
            if v < lo || v > hi {
                Err(ConfigError::Invalid {
                    field,
                    value: v.to_string(),
                    allowed: format!("must be between {lo} and {hi}"),
                })
            } else {
                Ok(())
            }
        };
        range("limits.client_connections_max", l.client_connections_max.into(), 1, 1_000_000)?;
        range("limits.pool_connections_max", l.pool_connections_max.into(), 1, 10_000)?;
        range("limits.pool_connections_min", l.pool_connections_min.into(), 0, l.pool_connections_max.into())?;
        range("limits.checkout_timeout_ms", l.checkout_timeout_ms, 1, 3_600_000)?;
        range("limits.connect_timeout_ms", l.connect_timeout_ms, 1, 600_000)?;
        range("limits.packet_bytes_max", l.packet_bytes_max, 1024, 1 << 30)?;
        range("limits.prepared_per_client_max", l.prepared_per_client_max.into(), 1, 1_048_576)?;
        range("limits.prepared_per_backend_max", l.prepared_per_backend_max.into(), 1, 1_048_576)?;
        range("limits.prepared_cache_entries_max", l.prepared_cache_entries_max.into(), 1, 10_000_000)?;
        range("limits.handshake_timeout_ms", l.handshake_timeout_ms, 1, 600_000)?;
        let r = &self.routing;
        range("routing.max_lag_ms", r.max_lag_ms, 0, 86_400_000)?;
        range("routing.causal_wait_ms", r.causal_wait_ms, 0, 60_000)?;
        range("routing.health_interval_ms", r.health_interval_ms, 10, 3_600_000)?;
        range("routing.health_timeout_ms", r.health_timeout_ms, 10, 600_000)?;
        range("routing.failures_before_down", r.failures_before_down.into(), 1, 1000)?;
        range("routing.successes_before_up", r.successes_before_up.into(), 1, 1000)?;
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return Err(ConfigError::Invalid {
                field: "tls.cert_file",
                value: format!("{:?}", self.tls.cert_file),
                allowed: "tls.cert_file and tls.key_file must be set together".into(),
            });
        }
        if self.tls.require_secure_transport && self.tls.cert_file.is_none() {
            return Err(ConfigError::Invalid {
                field: "tls.require_secure_transport",
                value: "true".into(),
                allowed: "needs tls.cert_file and tls.key_file".into(),
            });
        }
        for (name, u) in &self.users {
            let set = [u.password.is_some(), u.password_file.is_some(), u.password_hash.is_some()];
            if set.iter().filter(|x| **x).count() > 1 {
                return Err(ConfigError::Invalid {
                    field: "users.*",
                    value: name.clone(),
                    allowed: "set only one of password, password_file, password_hash".into(),
                });
            }
        }
        Ok(())
    }
}

/// Reads the first line of a secret file.
pub fn read_secret(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_valid() {
        let c: Config = toml::from_str("").unwrap();
        c.validate().unwrap();
        assert_eq!(c.proxy.bind_address, "127.0.0.1:8007");
    }

    #[test]
    fn out_of_range_names_the_field() {
        let c: Config = toml::from_str("[limits]\npool_connections_max = 0\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("limits.pool_connections_max = 0"), "{e}");
    }
}
