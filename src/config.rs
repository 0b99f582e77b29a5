//! Configuration: TOML file sections, defaults, environment overrides, and validation
//! that names the file, the field, the value and what is allowed.
//!
//! Sections follow the WolfScale layout (`[node] [database] [wal] [cluster] [api]
//! [proxy]`, plus its `[logging] [replication] [binlog]`) so a `wolfscale.toml` loads
//! unchanged; shoal adds `[users] [backends] [routing] [tls] [limits] [metrics]`. Every
//! struct is `#[serde(default)]`: an empty file is a valid configuration.
//!
//! Every field is listed once in [`FIELDS`] with its documentation and whether shoal acts
//! on it yet. That table drives the commented file `shoal init` writes
//! ([`render_commented`]), the reference in `docs/configuration.md`
//! ([`reference_markdown`], kept in sync by a test), the "not yet in effect" and
//! "unknown field" warnings of `shoal validate` ([`Loaded::warnings`]), and the
//! environment overrides (`SHOAL_SECTION__FIELD`, [`apply_env`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `[node]`: this node's identity (cluster mode).
    pub node: NodeSection,
    /// `[database]`: the local MariaDB a cluster node fronts (WolfScale layout).
    pub database: DatabaseSection,
    /// `[wal]`: write-ahead log (replication; not yet in effect).
    pub wal: WalSection,
    /// `[cluster]`: peers and elections (cluster mode when `secret_file` is set).
    pub cluster: ClusterSection,
    /// `[api]`: the HTTP API (health, status, metrics).
    pub api: ApiSection,
    /// `[proxy]`: the MySQL listener.
    pub proxy: ProxySection,
    /// `[logging]`: log level and format (the command line wins).
    pub logging: LoggingSection,
    /// `[replication]`: WolfScale's replication mode (not yet in effect).
    pub replication: ReplicationSection,
    /// `[binlog]`: WolfScale's binlog reader (`server_id`: the capture tail's replica id).
    pub binlog: BinlogSection,
    /// `[capture]`: the leader's write path (XA, binlog tail, durability).
    pub capture: CaptureSection,
    /// `[users]`: accounts shoal authenticates without asking the backend.
    pub users: BTreeMap<String, UserEntry>,
    /// `[backends]`: the servers shoal relays to (standalone proxy mode).
    pub backends: BackendsSection,
    /// `[routing]`: how servers are watched and chosen.
    pub routing: RoutingSection,
    /// `[tls]`: TLS for client connections.
    pub tls: TlsSection,
    /// `[limits]`: every bound, named with its unit.
    pub limits: LimitsSection,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: MetricsSection,
}

/// `[node]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeSection {
    /// Unique node id; shown as this node's ID in `shoal servers`.
    pub id: String,
    /// Address for cluster communication (cluster mode: `[cluster] secret_file` set).
    pub bind_address: String,
    /// Address other nodes use to reach this one (cluster mode).
    pub advertise_address: Option<String>,
    /// WAL and state directory (cluster mode).
    pub data_dir: PathBuf,
}

impl Default for NodeSection {
    fn default() -> Self {
        NodeSection {
            id: String::new(),
            bind_address: "127.0.0.1:7654".into(),
            advertise_address: None,
            data_dir: "/var/lib/shoal".into(),
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSection {
    /// Host of the local MariaDB; `host:port` becomes the primary when `[backends] primary` is empty.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Service account (used when `[backends] user` is empty).
    pub user: String,
    /// Its password (prefer `password_file`).
    pub password: String,
    /// File holding the password (first line).
    pub password_file: Option<PathBuf>,
    /// Database to replicate (not yet in effect).
    pub database: Option<String>,
    /// WolfScale's pool size (not yet in effect; see `limits.pool_connections_max`).
    pub pool_size: u32,
    /// WolfScale's connect timeout (not yet in effect; see `limits.connect_timeout_ms`).
    pub connect_timeout_secs: u64,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        DatabaseSection {
            host: String::new(),
            port: 3306,
            user: String::new(),
            password: String::new(),
            password_file: None,
            database: None,
            pool_size: 10,
            connect_timeout_secs: 30,
        }
    }
}

/// `[wal]` (not yet in effect).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WalSection {
    /// Entries per batch.
    pub batch_size: u64,
    /// Flush interval.
    pub flush_interval_ms: u64,
    /// LZ4-compress entries.
    pub compression: bool,
    /// Segment size.
    pub segment_size_mb: u64,
    /// Keep segments this long (0 = forever).
    pub retention_hours: u64,
    /// Largest log kept, in MiB (0 = unbounded; cluster mode).
    pub retention_mb: u64,
    /// fsync on flush.
    pub fsync: bool,
}

impl Default for WalSection {
    fn default() -> Self {
        WalSection {
            batch_size: 1000,
            flush_interval_ms: 100,
            compression: true,
            segment_size_mb: 64,
            retention_hours: 0,
            retention_mb: 0,
            fsync: true,
        }
    }
}

/// `[cluster]` (cluster mode when `secret_file` is set; see `cluster::settings`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSection {
    /// This node starts the cluster as leader.
    pub bootstrap: bool,
    /// The other nodes, `host:port` each.
    pub peers: Vec<String>,
    /// Heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Election timeout (legacy single value).
    pub election_timeout_ms: u64,
    /// Lower bound of the randomised election timeout (unset: 4 heartbeats).
    pub election_timeout_min_ms: Option<u64>,
    /// Upper bound of the randomised election timeout (unset: 6 heartbeats).
    pub election_timeout_max_ms: Option<u64>,
    /// This node never becomes leader.
    pub never_leader: bool,
    /// Nodes needed for quorum (0 = majority).
    pub min_quorum: u64,
    /// Entries per replication batch.
    pub max_batch_entries: u64,
    /// Only manual promotion.
    pub disable_auto_election: bool,
    /// File holding the cluster secret every node shares (peer authentication).
    pub secret_file: Option<PathBuf>,
    /// This node's PEM certificate chain for mutual TLS on the cluster port (with
    /// `tls_key_file` and `tls_ca_file`: all three or none).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificates every peer's certificate must chain to.
    pub tls_ca_file: Option<PathBuf>,
    /// How long a write waits for the cluster to take it (a quorum to hold the leader's
    /// lease) before it fails and is rolled back.
    pub write_timeout_ms: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            bootstrap: false,
            peers: Vec::new(),
            heartbeat_interval_ms: 100,
            election_timeout_ms: 2000,
            election_timeout_min_ms: None,
            election_timeout_max_ms: None,
            never_leader: false,
            min_quorum: 0,
            max_batch_entries: 5000,
            disable_auto_election: false,
            secret_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_file: None,
            write_timeout_ms: 10_000,
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiSection {
    /// Whether the HTTP API runs.
    pub enabled: bool,
    /// Address the HTTP API binds, `host:port` (loopback by default).
    pub bind_address: String,
    /// WolfScale's CORS switch (not yet in effect).
    pub cors_enabled: bool,
    /// File holding a bearer token; when set every endpoint but `/health` requires it.
    pub token_file: Option<PathBuf>,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection { enabled: true, bind_address: "127.0.0.1:8080".into(), cors_enabled: false, token_file: None }
    }
}

/// `[proxy]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ProxySection {
    /// Whether the MySQL listener runs (WolfScale field; shoal always runs it).
    pub enabled: bool,
    /// Address the MySQL protocol listener binds, `host:port`.
    pub bind_address: String,
    /// Accept PROXY protocol v1/v2 headers (from `proxy_protocol_networks` only).
    pub proxy_protocol: bool,
    /// Networks (`addr/prefix` or an address) whose connections may carry a PROXY header.
    pub proxy_protocol_networks: Vec<String>,
    /// The auth plugin the greeting names (clients that follow the server start with it).
    pub default_auth_plugin: GreetingPlugin,
    /// How a `caching_sha2_password` login without TLS proves its password the first time.
    pub caching_sha2_without_tls: Sha2WithoutTls,
}

/// `[proxy] caching_sha2_without_tls`: what a `caching_sha2_password` client without TLS
/// does when shoal has no digest cached for its account yet (`frontend::sha2`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sha2WithoutTls {
    /// Switched to `mysql_native_password` (every client in the tested matrix has it;
    /// connector-python and libmysqlclient refuse the RSA exchange without extra options).
    #[default]
    Native,
    /// MySQL's full authentication: the password RSA-encrypted to shoal's key (clients
    /// without the native plugin, e.g. MySQL 9's).
    Rsa,
}

/// `[proxy] default_auth_plugin`: the plugin shoal's greeting names. Either way shoal
/// accepts both from clients (`frontend::handshake`, `frontend::sha2`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GreetingPlugin {
    /// As MariaDB greets.
    #[default]
    MysqlNativePassword,
    /// As MySQL 8 greets: clients that follow the server (PyMySQL, node mysql2) log in with
    /// `caching_sha2_password`.
    CachingSha2Password,
}

impl GreetingPlugin {
    /// The plugin's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GreetingPlugin::MysqlNativePassword => "mysql_native_password",
            GreetingPlugin::CachingSha2Password => "caching_sha2_password",
        }
    }
}

impl Default for ProxySection {
    fn default() -> Self {
        ProxySection {
            enabled: true,
            bind_address: "127.0.0.1:8007".into(),
            proxy_protocol: false,
            proxy_protocol_networks: vec!["127.0.0.1/32".into(), "::1/128".into()],
            default_auth_plugin: GreetingPlugin::default(),
            caching_sha2_without_tls: Sha2WithoutTls::default(),
        }
    }
}

impl ProxySection {
    /// The trusted networks, parsed (`validate` has checked them).
    pub fn trusted_networks(&self) -> Vec<crate::protocol::proxy_header::Network> {
        self.proxy_protocol_networks.iter().filter_map(|n| n.parse().ok()).collect()
    }
}

/// `[logging]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LoggingSection {
    /// Level (`error`, `warn`, `info`, `debug`, `trace`) or a tracing filter.
    pub level: String,
    /// `text` (alias `pretty`) or `json`.
    pub format: String,
    /// Log file (not yet in effect: logs go to stderr / the journal).
    pub file: Option<PathBuf>,
}

impl Default for LoggingSection {
    fn default() -> Self {
        LoggingSection { level: "info".into(), format: "text".into(), file: None }
    }
}

/// `[replication]` (not yet in effect).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplicationSection {
    /// `proxy` or `binlog`.
    pub mode: String,
}

impl Default for ReplicationSection {
    fn default() -> Self {
        ReplicationSection { mode: "proxy".into() }
    }
}

/// `[capture]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CaptureSection {
    /// `off`: statements run as sent. `local`: client write transactions run as XA on
    /// the primary and commit once their row images are durable in this node's WAL
    /// (`[node] data_dir`/capture-wal): the cluster's write path with a quorum of one.
    pub mode: String,
    /// Largest entry (one transaction's row images), MiB.
    pub entry_bytes_max_mb: u64,
}

impl Default for CaptureSection {
    fn default() -> Self {
        CaptureSection { mode: "off".into(), entry_bytes_max_mb: 48 }
    }
}

/// `[binlog]` (not yet in effect).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BinlogSection {
    /// Server id used when reading the binlog.
    pub server_id: u32,
    /// First binlog file.
    pub start_file: Option<String>,
    /// First position.
    pub start_position: Option<u64>,
}

impl Default for BinlogSection {
    fn default() -> Self {
        BinlogSection { server_id: 1001, start_file: None, start_position: None }
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
    /// TLS to the backends: cloud databases refuse plain TCP (see [`BackendTlsMode`]).
    pub tls: BackendTlsMode,
    /// PEM CA certificates the backends' certificates must chain to (the verify modes).
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate chain, for servers that require one (`REQUIRE X509`).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// A shoal cluster's HTTP APIs, `host:port` each (`shoal proxy --cluster`): the proxy
    /// learns the members and the leader from them and relays to the nodes' proxies
    /// instead of `primary`/`replicas` (`crate::server::over_cluster`).
    pub cluster: Vec<String>,
    /// File holding the nodes' API bearer token (first line), when their `[api] token_file`
    /// is set.
    pub cluster_token_file: Option<PathBuf>,
}

/// `[backends] tls`: whether and how shoal's connections to the backends use TLS, named
/// like the MariaDB/MySQL clients' `--ssl-mode`. The decision per connection is
/// `crate::backend::tls::decide`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendTlsMode {
    /// Never: plain TCP even when the server offers TLS.
    #[default]
    Disabled,
    /// TLS when the server offers it, plain otherwise; the certificate is not verified.
    Preferred,
    /// TLS or fail; the certificate is not verified (encryption against eavesdropping
    /// only, like MariaDB's `--ssl` without `--ssl-verify-server-cert`).
    Required,
    /// TLS, and the certificate must chain to `tls_ca_file`; the host name is not checked.
    VerifyCa,
    /// TLS, chain to `tls_ca_file`, and the certificate must name the backend's host (an
    /// IP address must be an IP subject alternative name).
    VerifyIdentity,
}

impl BackendTlsMode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendTlsMode::Disabled => "disabled",
            BackendTlsMode::Preferred => "preferred",
            BackendTlsMode::Required => "required",
            BackendTlsMode::VerifyCa => "verify_ca",
            BackendTlsMode::VerifyIdentity => "verify_identity",
        }
    }

    /// Whether the server's certificate is checked against `tls_ca_file`.
    pub fn verifies(self) -> bool {
        matches!(self, BackendTlsMode::VerifyCa | BackendTlsMode::VerifyIdentity)
    }
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
    /// In front of a shoal cluster: how long a statement that needs the leader waits while
    /// there is none (an election) or it cannot be reached, before it fails.
    pub failover_buffer_ms: u64,
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
            failover_buffer_ms: 5_000,
            health_interval_ms: 1_000,
            health_timeout_ms: 1_000,
            failures_before_down: 2,
            successes_before_up: 2,
        }
    }
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
    /// Pipes per pool and schema for plain autocommit reads (0 turns pipelining off; see
    /// `backend::pipeline`).
    pub pipes_per_pool: u32,
    /// A pipe whose next response has been awaited this long takes no new statements
    /// (they go to other pipes or to connections of their own).
    pub pipe_stall_ms: u64,
    /// Prepare responses cached per pool.
    pub prepared_cache_entries_max: u32,
    /// Time a client has to finish the handshake.
    pub handshake_timeout_ms: u64,
    /// A client idle this long is disconnected, as MariaDB does with `wait_timeout` (a
    /// session's own `SET wait_timeout` takes precedence); seconds.
    pub client_wait_timeout_s: u64,
    /// The same for interactive clients (`CLIENT_INTERACTIVE`, e.g. the `mariadb` CLI),
    /// as MariaDB's `interactive_timeout`; seconds.
    pub client_interactive_timeout_s: u64,
    /// On SIGTERM/SIGINT, how long running statements may take to finish.
    pub shutdown_drain_timeout_ms: u64,
    /// Client sessions one account may hold at once (MariaDB's `max_user_connections`,
    /// ProxySQL's `mysql_users.max_connections`); the next login gets error 1203. 0 = no limit.
    pub user_connections_max: u32,
    /// A statement running longer is interrupted with error 1969 (MariaDB's
    /// `max_statement_time`, set on the session's backend connections); milliseconds, 0 = off.
    pub statement_time_max_ms: u64,
    /// A session idle this long inside a transaction is disconnected and the transaction
    /// rolled back (MariaDB's `idle_transaction_timeout`); seconds, 0 = off.
    pub transaction_idle_timeout_s: u64,
    /// Per-account overrides of the three limits above (`[limits.user.NAME]`), by account name.
    pub user: BTreeMap<String, UserLimits>,
}

/// `[limits.user.NAME]`: one account's limits; an unset field takes the `[limits]` value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserLimits {
    /// `user_connections_max` for this account (0 = no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections_max: Option<u32>,
    /// `statement_time_max_ms` for this account (0 = off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement_time_max_ms: Option<u64>,
    /// `transaction_idle_timeout_s` for this account (0 = off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_idle_timeout_s: Option<u64>,
}

/// The limits in effect for one account: its `[limits.user.NAME]` fields, else `[limits]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountLimits {
    /// Sessions at once (0 = no limit).
    pub connections_max: u32,
    /// Statement time limit, milliseconds (0 = off).
    pub statement_time_max_ms: u64,
    /// Idle time allowed inside a transaction, seconds (0 = off).
    pub transaction_idle_timeout_s: u64,
}

impl LimitsSection {
    /// The limits of account `user`.
    pub fn for_user(&self, user: &str) -> AccountLimits {
        let own = self.user.get(user);
        AccountLimits {
            connections_max: own.and_then(|u| u.connections_max).unwrap_or(self.user_connections_max),
            statement_time_max_ms: own.and_then(|u| u.statement_time_max_ms).unwrap_or(self.statement_time_max_ms),
            transaction_idle_timeout_s: own
                .and_then(|u| u.transaction_idle_timeout_s)
                .unwrap_or(self.transaction_idle_timeout_s),
        }
    }
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
            pipes_per_pool: 2,
            pipe_stall_ms: 10,
            prepared_cache_entries_max: 10_000,
            handshake_timeout_ms: 10_000,
            client_wait_timeout_s: 28_800,
            client_interactive_timeout_s: 28_800,
            shutdown_drain_timeout_ms: 30_000,
            user_connections_max: 0,
            statement_time_max_ms: 0,
            transaction_idle_timeout_s: 0,
            user: BTreeMap::new(),
        }
    }
}

/// Largest `user_connections_max` (the `client_connections_max` ceiling).
const USER_CONNECTIONS_MAX: u64 = 1_000_000;
/// Largest `statement_time_max_ms`: one day.
const STATEMENT_TIME_MAX_MS: u64 = 86_400_000;
/// Largest `transaction_idle_timeout_s`: one year, MariaDB's bound for `idle_transaction_timeout`.
const TRANSACTION_IDLE_TIMEOUT_MAX_S: u64 = 31_536_000;

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
    /// PEM RSA private key for `caching_sha2_password`'s key exchange with clients that do
    /// not use TLS; unset, shoal makes one per process (`frontend::sha2`).
    pub rsa_private_key_file: Option<PathBuf>,
}

/// `[metrics]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsSection {
    /// Serve `/metrics` on the HTTP API.
    pub enabled: bool,
    /// Upper bounds of the latency histogram buckets, in seconds, ascending.
    pub latency_buckets_seconds: Vec<f64>,
}

/// Default latency buckets: 250 µs to 10 s.
pub const LATENCY_BUCKETS_SECONDS: [f64; 15] =
    [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection { enabled: true, latency_buckets_seconds: LATENCY_BUCKETS_SECONDS.to_vec() }
    }
}

/// One documented field.
#[derive(Debug, Clone, Copy)]
pub struct FieldDoc {
    /// Section (`limits`).
    pub section: &'static str,
    /// Field (`pool_connections_max`).
    pub name: &'static str,
    /// What it does, with its unit.
    pub doc: &'static str,
    /// Whether shoal acts on it yet.
    pub in_effect: bool,
    /// Example value (TOML) for fields without a default.
    pub example: &'static str,
}

const fn f(section: &'static str, name: &'static str, doc: &'static str) -> FieldDoc {
    FieldDoc { section, name, doc, in_effect: true, example: "" }
}
const fn later(section: &'static str, name: &'static str, doc: &'static str) -> FieldDoc {
    FieldDoc { section, name, doc, in_effect: false, example: "" }
}
const fn opt(section: &'static str, name: &'static str, doc: &'static str, example: &'static str) -> FieldDoc {
    FieldDoc { section, name, doc, in_effect: true, example }
}
const fn opt_later(section: &'static str, name: &'static str, doc: &'static str, example: &'static str) -> FieldDoc {
    FieldDoc { section, name, doc, in_effect: false, example }
}

/// Sections in file order, with a one-line description.
pub const SECTIONS: [(&str, &str); 17] = [
    ("node", "This node's identity. WolfScale layout."),
    ("database", "The local MariaDB a cluster node (`shoal start`) fronts. WolfScale layout."),
    ("wal", "Write-ahead log for replication. WolfScale layout; replication has not landed yet."),
    ("cluster", "Peers and leader election. WolfScale layout; `secret_file` turns cluster mode on (the Raft node of `shoal start`)."),
    ("api", "The HTTP API: /health, /status, /cluster, /cluster/nodes, /metrics."),
    ("proxy", "The MySQL protocol listener."),
    ("logging", "Logs go to stderr (the journal under systemd); --log-level/--log-format win."),
    ("replication", "WolfScale's replication mode."),
    ("binlog", "WolfScale's binlog reader."),
    ("capture", "The leader's write path: client transactions as XA, row images from the binlog, commit once durable (docs/replication.md)."),
    (
        "users",
        "Accounts shoal verifies itself, one [users.NAME] table each; others are read from the backend's mysql.user.",
    ),
    ("backends", "The servers a standalone proxy (`shoal proxy`) relays to."),
    ("routing", "Read/write split, read-your-writes and health checks (needs the service account)."),
    ("tls", "TLS for client connections."),
    ("limits", "Every bound, named with its unit."),
    (
        "limits.user",
        "One account's limits, one [limits.user.NAME] table each; an unset field takes the [limits] value. Not an account: passwords stay in [users.NAME] or mysql.user.",
    ),
    ("metrics", "The Prometheus endpoint /metrics on the HTTP API."),
];

/// Every field of the file (`[users.NAME]` fields use the section `users.NAME`).
pub const FIELDS: &[FieldDoc] = &[
    f("node", "id", "Unique node id, shown as this node's ID by `shoal servers`; empty = \"primary\"."),
    f("node", "bind_address", "Address for cluster communication (the Raft peer port), host:port; cluster mode."),
    opt("node", "advertise_address", "Address other nodes use to reach this node (required when bind_address is 0.0.0.0); cluster mode.", "\"10.0.0.1:7654\""),
    f("node", "data_dir", "Directory for the WAL and node state (the Raft log is data_dir/wal); cluster mode."),
    f("database", "host", "Local MariaDB host; host:port is the primary when [backends] primary is empty."),
    f("database", "port", "Local MariaDB port (1-65535)."),
    f("database", "user", "Service account, used when [backends] user is empty."),
    f("database", "password", "Its password (prefer password_file)."),
    opt("database", "password_file", "File whose first line is the password.", "\"/etc/shoal/db-password\""),
    opt_later("database", "database", "Database to replicate (empty = the whole server).", "\"myapp\""),
    later("database", "pool_size", "WolfScale's pool size; shoal uses limits.pool_connections_max."),
    later("database", "connect_timeout_secs", "WolfScale's connect timeout; shoal uses limits.connect_timeout_ms."),
    later("wal", "batch_size", "Entries per WAL batch."),
    later("wal", "flush_interval_ms", "WAL flush interval, milliseconds."),
    later("wal", "compression", "LZ4-compress WAL entries."),
    f("wal", "segment_size_mb", "WAL segment size, megabytes; cluster mode (the Raft log)."),
    f("wal", "retention_hours", "Cluster mode: purge log entries older than this even if a member still needs them (it then needs `shoal migrate`); 0 = no age limit."),
    f("wal", "retention_mb", "Cluster mode: largest log, in MiB; past it entries are purged even if a member still needs them (it then needs `shoal migrate`); 0 = no size limit."),
    f("wal", "fsync", "fsync the WAL on every flush; cluster mode (the Raft log)."),
    f("cluster", "bootstrap", "Same as `shoal start --bootstrap`: form a new cluster with `peers` when this node holds no log yet."),
    f("cluster", "peers", "The initial nodes, host:port each (this node may be listed); used by a bootstrap."),
    f("cluster", "heartbeat_interval_ms", "Heartbeat interval, milliseconds; below election_timeout_min_ms."),
    later("cluster", "election_timeout_ms", "Election timeout, milliseconds (legacy single value)."),
    opt("cluster", "election_timeout_min_ms", "Lower bound of the cluster's election window, milliseconds; each node draws its timeout from its own slice of the window, lower ids first; unset: 2.5 heartbeats (250 with the default heartbeat).", "250"),
    opt("cluster", "election_timeout_max_ms", "Upper bound of the cluster's election window, milliseconds; a node's leader lease is the end of its slice; unset: 4 heartbeats (400).", "400"),
    later("cluster", "never_leader", "This node never becomes leader."),
    later("cluster", "min_quorum", "Nodes needed for quorum (0 = majority)."),
    later("cluster", "max_batch_entries", "Entries per replication batch."),
    f("cluster", "disable_auto_election", "Only manual promotion: no election timer, no preferred-leader switchback."),
    f("cluster", "write_timeout_ms", "How long a write on the leader waits for a quorum to take it before it fails (rolled back, error 1180), milliseconds."),
    opt(
        "cluster",
        "secret_file",
        "File whose first line is the cluster secret (at least 16 bytes, the same on every node); peers that cannot prove it are refused. Setting it turns cluster mode on: `shoal start` runs the Raft node.",
        "\"/etc/shoal/cluster.secret\"",
    ),
    opt(
        "cluster",
        "tls_cert_file",
        "PEM certificate chain of this node for mutual TLS on the cluster port, shown to peers both ways; set with tls_key_file and tls_ca_file (all three or none). It must name the host of this node's address as peers dial it (DNS or IP SAN). See docs/cluster.md, Mutual TLS.",
        "\"/etc/shoal/node-1.pem\"",
    ),
    opt("cluster", "tls_key_file", "PEM private key of tls_cert_file.", "\"/etc/shoal/node-1-key.pem\""),
    opt(
        "cluster",
        "tls_ca_file",
        "PEM CA certificates every peer's certificate must chain to (both ways: the listener requires a client certificate).",
        "\"/etc/shoal/cluster-ca.pem\"",
    ),
    f("api", "enabled", "Run the HTTP API."),
    f("api", "bind_address", "HTTP API address, host:port. Loopback by default; 0.0.0.0 exposes it."),
    later("api", "cors_enabled", "WolfScale's CORS switch."),
    opt(
        "api",
        "token_file",
        "File whose first line is a bearer token; when set, every endpoint but /health needs `Authorization: Bearer TOKEN`.",
        "\"/etc/shoal/api-token\"",
    ),
    later("proxy", "enabled", "WolfScale's proxy switch; shoal always runs the MySQL listener."),
    f("proxy", "bind_address", "MySQL protocol listener, host:port."),
    f("proxy", "proxy_protocol", "Accept PROXY protocol v1/v2 headers from load balancers (the real client address is used)."),
    f("proxy", "proxy_protocol_networks", "Networks (addr/prefix) whose connections may send a PROXY header; others sending one are refused."),
    f("proxy", "default_auth_plugin", "The auth plugin the greeting names: \"mysql_native_password\" (as MariaDB) or \"caching_sha2_password\" (as MySQL 8; clients that follow the server, e.g. PyMySQL and node mysql2, then log in with it). Both are accepted either way. See docs/proxy.md, Authentication."),
    f("proxy", "caching_sha2_without_tls", "A caching_sha2_password login without TLS whose account has no cached digest yet: \"native\" switches it to mysql_native_password (works with every tested client), \"rsa\" asks for the password RSA-encrypted as MySQL does (for clients without the native plugin, e.g. MySQL 9's; connector-python then needs TLS). Over TLS the password is sent inside it either way. See docs/proxy.md, Authentication."),
    f("logging", "level", "error, warn, info, debug, trace, or a tracing filter such as \"shoal=debug\"."),
    f("logging", "format", "text (alias pretty) or json."),
    opt_later("logging", "file", "Log file; logs go to stderr for now.", "\"/var/log/shoal/shoal.log\""),
    later("replication", "mode", "proxy or binlog."),
    f("binlog", "server_id", "Replica server id of the capture tail's binlog dump (unique among the primary's replicas)."),
    opt_later("binlog", "start_file", "First binlog file.", "\"mariadb-bin.000001\""),
    opt_later("binlog", "start_position", "First binlog position.", "4"),
    f("capture", "mode", "`off` (statements run as sent) or `local` (write transactions run as XA on the primary and commit once durable in this node's WAL under data_dir)."),
    f("capture", "entry_bytes_max_mb", "Largest replicated entry (one transaction's row images), MiB; a larger transaction is rolled back with an error."),
    opt("users.NAME", "password", "Plaintext password of account NAME.", "\"app-password\""),
    opt("users.NAME", "password_file", "File whose first line is the password.", "\"/etc/shoal/app-password\""),
    opt("users.NAME", "password_hash", "Native password hash as in mysql.user (* and 40 hex digits).", "\"*hash\""),
    f("backends", "primary", "The writable server, host:port or unix:/path/to/socket."),
    f("backends", "replicas", "Read replicas, host:port or unix:/path each; reads go to them per [routing]."),
    f("backends", "user", "Service account: reads mysql.user so shoal can verify logins, runs health checks."),
    f("backends", "password", "Its password (prefer password_file)."),
    opt("backends", "password_file", "File whose first line is the password.", "\"/etc/shoal/service-password\""),
    f("backends", "tls", "TLS to the backends (every connection: pools, pipes, service account, binlog dump): \"disabled\", \"preferred\" (TLS when the server offers it, unverified), \"required\" (TLS or fail, unverified), \"verify_ca\" (chain to tls_ca_file), \"verify_identity\" (chain and host name). Unix sockets stay plain. See docs/proxy.md, TLS to backends."),
    opt("backends", "tls_ca_file", "PEM CA certificates the backends' certificates must chain to; required by verify_ca and verify_identity.", "\"/etc/shoal/backend-ca.pem\""),
    opt("backends", "tls_cert_file", "PEM client certificate chain shown to the backends (for accounts with REQUIRE X509); set with tls_key_file.", "\"/etc/shoal/client-cert.pem\""),
    opt("backends", "tls_key_file", "PEM private key of tls_cert_file.", "\"/etc/shoal/client-key.pem\""),
    f("backends", "cluster", "A shoal cluster's HTTP APIs, host:port each (shoal proxy --cluster): the proxy learns the members and the leader from their /cluster and relays to the nodes' proxies; set instead of primary and replicas. See docs/cluster.md, A standalone proxy over a cluster."),
    opt("backends", "cluster_token_file", "File whose first line is the cluster nodes' API bearer token (their api.token_file).", "\"/etc/shoal/cluster-api-token\""),
    f(
        "routing",
        "read_consistency",
        "\"session\" (a session reads its own writes: reads go to a replica that has applied them), \"eventual\" (any healthy replica within max_lag_ms) or \"strong\" (reads go to the primary).",
    ),
    f("routing", "max_lag_ms", "Replicas further behind get no reads, milliseconds (0-86400000)."),
    f("routing", "causal_wait_ms", "How long a read waits for a replica to apply the session's last write before it goes to the primary, milliseconds (0-60000)."),
    f("routing", "failover_buffer_ms", "In front of a shoal cluster (a node, or shoal proxy --cluster): how long a statement that needs the leader waits while there is none or it cannot be reached, then runs on the new leader or fails, milliseconds (0-60000)."),
    f("routing", "health_interval_ms", "Time between two health checks of a server, milliseconds (10-3600000)."),
    f("routing", "health_timeout_ms", "Limit on one health check (connect + queries), milliseconds (10-600000)."),
    f("routing", "failures_before_down", "Consecutive failed checks before a server leaves the rotation (1-1000)."),
    f("routing", "successes_before_up", "Consecutive good checks before it comes back (1-1000)."),
    opt("tls", "cert_file", "PEM certificate chain; TLS is offered to clients when set with key_file.", "\"/etc/shoal/cert.pem\""),
    opt("tls", "key_file", "PEM private key.", "\"/etc/shoal/key.pem\""),
    f("tls", "require_secure_transport", "Refuse clients that do not use TLS."),
    opt("tls", "rsa_private_key_file", "PEM RSA private key (PKCS#8 or PKCS#1) for caching_sha2_password logins without TLS: clients encrypt the password to its public key. Unset: shoal makes a 3072-bit key at the first such login, new at every start (clients that pin the server's public key need this set). See docs/proxy.md, Authentication.", "\"/etc/shoal/rsa-key.pem\""),
    f("limits", "client_connections_max", "Client connections at once (1-1000000); the next gets error 1040."),
    f("limits", "pool_connections_max", "Backend connections per pool (1-10000); a pool is backend x user x wire format."),
    f("limits", "pool_connections_min", "Idle backend connections kept per pool (0-pool_connections_max)."),
    f("limits", "checkout_timeout_ms", "How long a statement waits for a free backend connection, milliseconds."),
    f("limits", "connect_timeout_ms", "Backend connect + login time limit, milliseconds."),
    f("limits", "pool_idle_timeout_s", "Idle backend connections are closed after this many seconds."),
    f("limits", "packet_bytes_max", "Largest packet accepted from a client, bytes (1024-1073741824)."),
    f("limits", "prepared_per_client_max", "Prepared statements one client may hold."),
    f("limits", "prepared_per_backend_max", "Prepared statements kept open per backend connection (LRU)."),
    f("limits", "pipes_per_pool", "Shared connections per pool and schema that run plain autocommit reads back to back (0-64; 0 = off)."),
    f("limits", "pipe_stall_ms", "A pipe whose next response is this late (a slow read) takes no new reads until it answers, milliseconds."),
    f("limits", "prepared_cache_entries_max", "Prepare responses cached per pool."),
    f("limits", "handshake_timeout_ms", "Time a client has to finish the handshake, milliseconds."),
    f("limits", "client_wait_timeout_s", "A client idle this long is disconnected (MariaDB's wait_timeout; a session's own SET wait_timeout wins), seconds."),
    f("limits", "client_interactive_timeout_s", "The same for interactive clients such as the mariadb CLI (MariaDB's interactive_timeout), seconds."),
    f("limits", "shutdown_drain_timeout_ms", "On SIGTERM/SIGINT, how long running statements may take to finish."),
    f("limits", "user_connections_max", "Client sessions one account may hold at once (MariaDB's max_user_connections; 0-1000000, 0 = no limit); the next login gets error 1203."),
    f("limits", "statement_time_max_ms", "A statement running longer is interrupted with error 1969 (MariaDB's max_statement_time on the session's backend connections; 0-86400000, 0 = off), milliseconds."),
    f("limits", "transaction_idle_timeout_s", "A session idle this long inside a transaction is disconnected and the transaction rolled back (MariaDB's idle_transaction_timeout; 0-31536000, 0 = off), seconds."),
    opt("limits.user.NAME", "connections_max", "limits.user_connections_max for account NAME.", "10"),
    opt("limits.user.NAME", "statement_time_max_ms", "limits.statement_time_max_ms for account NAME.", "30000"),
    opt("limits.user.NAME", "transaction_idle_timeout_s", "limits.transaction_idle_timeout_s for account NAME.", "60"),
    f("metrics", "enabled", "Serve /metrics on the HTTP API."),
    f("metrics", "latency_buckets_seconds", "Latency histogram bucket bounds, seconds, ascending (read at start)."),
];

/// A configuration problem, naming the file, the field, the value and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The TOML did not parse or a field has the wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the line and the field).
        message: String,
    },
    /// An environment override is malformed or names no field.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("{}config field {field} = {value}: {allowed}", file.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Invalid {
        /// The file the value came from, when there is one.
        file: Option<PathBuf>,
        /// Dotted field name, e.g. `limits.pool_connections_max`.
        field: String,
        /// The value found.
        value: String,
        /// What is allowed.
        allowed: String,
    },
}

impl ConfigError {
    fn invalid(field: impl Into<String>, value: impl ToString, allowed: impl Into<String>) -> Self {
        ConfigError::Invalid { file: None, field: field.into(), value: value.to_string(), allowed: allowed.into() }
    }

    /// Attaches the file name to a validation error.
    pub fn in_file(self, path: &Path) -> Self {
        match self {
            ConfigError::Invalid { field, value, allowed, .. } => {
                ConfigError::Invalid { file: Some(path.into()), field, value, allowed }
            }
            other => other,
        }
    }
}

/// Something `shoal validate` reports without failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Dotted field name.
    pub field: String,
    /// What is worth knowing.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A loaded file: the configuration and what `validate` would warn about.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration (file + environment overrides).
    pub config: Config,
    /// Not-yet-in-effect and unknown fields.
    pub warnings: Vec<Warning>,
}

impl Config {
    /// Reads, applies `SHOAL_SECTION__FIELD` environment overrides, and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with(path, std::env::vars()).map(|l| l.config)
    }

    /// Same, with explicit environment variables; also returns the warnings.
    pub fn load_with(path: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<Loaded, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.into(), error })?;
        Self::parse(&text, path, env)
    }

    /// Parses text as if read from `path`.
    pub fn parse(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let parse_err = |e: toml::de::Error| ConfigError::Parse { path: path.into(), message: e.to_string() };
        let mut value: toml::Value = toml::from_str(text).map_err(parse_err)?;
        // Type errors in the file itself, reported with their line.
        toml::from_str::<Config>(text).map_err(parse_err)?;
        let warnings = file_warnings(&value);
        apply_env(&mut value, env)?;
        let config: Config = value.try_into().map_err(|e: toml::de::Error| ConfigError::Env {
            var: "SHOAL_*".into(),
            message: format!("after environment overrides: {e}"),
        })?;
        config.validate().map_err(|e| e.in_file(path))?;
        Ok(Loaded { config, warnings })
    }

    /// The defaults with environment overrides applied (no file).
    pub fn from_env(env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut value = toml::Value::Table(Default::default());
        apply_env(&mut value, env)?;
        let config: Config = value
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Env { var: "SHOAL_*".into(), message: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    /// The primary's `host:port`: `[backends] primary`, else `[database] host:port`.
    pub fn primary(&self) -> String {
        if !self.backends.primary.is_empty() {
            self.backends.primary.clone()
        } else if !self.database.host.is_empty() {
            let host = if self.database.host == "localhost" { "127.0.0.1" } else { &self.database.host };
            format!("{host}:{}", self.database.port)
        } else {
            String::new()
        }
    }

    /// The id this node reports for itself (and for the primary it fronts).
    pub fn node_id(&self) -> String {
        if self.node.id.is_empty() {
            "primary".into()
        } else {
            self.node.id.clone()
        }
    }

    /// Fills `[backends]` from `[database]` where empty, so the proxy core sees one place.
    pub fn resolve_backends(&mut self) {
        self.backends.primary = self.primary();
        if self.backends.user.is_empty() && !self.database.user.is_empty() {
            self.backends.user = self.database.user.clone();
            self.backends.password = self.database.password.clone();
            self.backends.password_file = self.database.password_file.clone();
        }
    }

    /// Checks ranges and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let range = |field: &'static str, v: u64, lo: u64, hi: u64| {
            if v < lo || v > hi {
                Err(ConfigError::invalid(field, v, format!("must be between {lo} and {hi}")))
            } else {
                Ok(())
            }
        };
        for n in &self.proxy.proxy_protocol_networks {
            if let Err(e) = n.parse::<crate::protocol::proxy_header::Network>() {
                return Err(ConfigError::invalid("proxy.proxy_protocol_networks", n, e));
            }
        }
        let b = &self.backends;
        if b.tls.verifies() && b.tls_ca_file.is_none() {
            return Err(ConfigError::invalid(
                "backends.tls",
                b.tls.as_str(),
                "verifies the backends' certificates: set backends.tls_ca_file to the PEM file of their CA",
            ));
        }
        if b.tls_cert_file.is_some() != b.tls_key_file.is_some() {
            return Err(ConfigError::invalid(
                "backends.tls_cert_file",
                b.tls_cert_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                "a client certificate needs its key: set both backends.tls_cert_file and backends.tls_key_file, or neither",
            ));
        }
        cluster_tls_complete(&self.cluster)?;
        range("limits.client_connections_max", l.client_connections_max.into(), 1, 1_000_000)?;
        range("limits.pool_connections_max", l.pool_connections_max.into(), 1, 10_000)?;
        range("limits.pool_connections_min", l.pool_connections_min.into(), 0, l.pool_connections_max.into())?;
        range("limits.checkout_timeout_ms", l.checkout_timeout_ms, 1, 3_600_000)?;
        range("limits.connect_timeout_ms", l.connect_timeout_ms, 1, 600_000)?;
        range("limits.pool_idle_timeout_s", l.pool_idle_timeout_s, 1, 86_400 * 7)?;
        range("limits.packet_bytes_max", l.packet_bytes_max, 1024, 1 << 30)?;
        range("limits.prepared_per_client_max", l.prepared_per_client_max.into(), 1, 1_048_576)?;
        range("limits.prepared_per_backend_max", l.prepared_per_backend_max.into(), 1, 1_048_576)?;
        range("limits.pipes_per_pool", l.pipes_per_pool.into(), 0, 64)?;
        range("limits.pipe_stall_ms", l.pipe_stall_ms, 1, 600_000)?;
        range("limits.prepared_cache_entries_max", l.prepared_cache_entries_max.into(), 1, 10_000_000)?;
        range("limits.handshake_timeout_ms", l.handshake_timeout_ms, 1, 600_000)?;
        range("limits.client_wait_timeout_s", l.client_wait_timeout_s, 1, 31_536_000)?;
        range("limits.client_interactive_timeout_s", l.client_interactive_timeout_s, 1, 31_536_000)?;
        if !matches!(self.capture.mode.as_str(), "off" | "local") {
            return Err(ConfigError::invalid("capture.mode", &self.capture.mode, "must be \"off\" or \"local\""));
        }
        range("capture.entry_bytes_max_mb", self.capture.entry_bytes_max_mb, 1, 1024)?;
        let r = &self.routing;
        range("routing.max_lag_ms", r.max_lag_ms, 0, 86_400_000)?;
        range("routing.causal_wait_ms", r.causal_wait_ms, 0, 60_000)?;
        range("routing.failover_buffer_ms", r.failover_buffer_ms, 0, 60_000)?;
        range("routing.health_interval_ms", r.health_interval_ms, 10, 3_600_000)?;
        range("routing.health_timeout_ms", r.health_timeout_ms, 10, 600_000)?;
        range("routing.failures_before_down", r.failures_before_down.into(), 1, 1000)?;
        range("routing.successes_before_up", r.successes_before_up.into(), 1, 1000)?;
        range("limits.shutdown_drain_timeout_ms", l.shutdown_drain_timeout_ms, 0, 3_600_000)?;
        range("limits.user_connections_max", l.user_connections_max.into(), 0, USER_CONNECTIONS_MAX)?;
        range("limits.statement_time_max_ms", l.statement_time_max_ms, 0, STATEMENT_TIME_MAX_MS)?;
        range("limits.transaction_idle_timeout_s", l.transaction_idle_timeout_s, 0, TRANSACTION_IDLE_TIMEOUT_MAX_S)?;
        for (name, u) in &l.user {
            let user_range = |field: &str, v: Option<u64>, hi: u64| match v {
                Some(v) if v > hi => Err(ConfigError::invalid(
                    format!("limits.user.{name}.{field}"),
                    v,
                    format!("must be between 0 and {hi}"),
                )),
                _ => Ok(()),
            };
            user_range("connections_max", u.connections_max.map(u64::from), USER_CONNECTIONS_MAX)?;
            user_range("statement_time_max_ms", u.statement_time_max_ms, STATEMENT_TIME_MAX_MS)?;
            user_range("transaction_idle_timeout_s", u.transaction_idle_timeout_s, TRANSACTION_IDLE_TIMEOUT_MAX_S)?;
        }
        range("database.port", self.database.port.into(), 1, 65_535)?;
        address("proxy.bind_address", &self.proxy.bind_address, false)?;
        address("api.bind_address", &self.api.bind_address, false)?;
        address("backends.primary", &self.backends.primary, true)?;
        for r in &self.backends.replicas {
            address("backends.replicas", r, false)?;
        }
        for a in &self.backends.cluster {
            address("backends.cluster", a, false)?;
        }
        if !self.backends.cluster.is_empty()
            && (!self.backends.primary.is_empty() || !self.backends.replicas.is_empty())
        {
            return Err(ConfigError::invalid(
                "backends.cluster",
                self.backends.cluster.join(","),
                "the cluster's nodes are the backends: unset backends.primary, backends.replicas and [database] host (or drop --cluster)",
            ));
        }
        let level = self.logging.level.to_ascii_lowercase();
        if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
            return Err(ConfigError::invalid(
                "logging.level",
                &self.logging.level,
                "must be error, warn, info, debug, trace or a tracing filter",
            ));
        }
        if !matches!(self.logging.format.as_str(), "text" | "pretty" | "json") {
            return Err(ConfigError::invalid("logging.format", &self.logging.format, "must be text, pretty or json"));
        }
        let b = &self.metrics.latency_buckets_seconds;
        if b.is_empty() || b.iter().any(|x| !x.is_finite() || *x <= 0.0) || b.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ConfigError::invalid(
                "metrics.latency_buckets_seconds",
                format!("{b:?}"),
                "must be positive numbers of seconds in ascending order",
            ));
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return Err(ConfigError::invalid(
                "tls.cert_file",
                format!("{:?}", self.tls.cert_file),
                "tls.cert_file and tls.key_file must be set together",
            ));
        }
        if self.tls.require_secure_transport && self.tls.cert_file.is_none() {
            return Err(ConfigError::invalid(
                "tls.require_secure_transport",
                "true",
                "needs tls.cert_file and tls.key_file",
            ));
        }
        for (name, u) in &self.users {
            let set = [u.password.is_some(), u.password_file.is_some(), u.password_hash.is_some()];
            if set.iter().filter(|x| **x).count() > 1 {
                return Err(ConfigError::invalid(
                    format!("users.{name}"),
                    "several passwords",
                    "set only one of password, password_file, password_hash",
                ));
            }
            if let Some(h) = &u.password_hash {
                if crate::protocol::auth::parse_stored_hash(h).is_none() {
                    return Err(ConfigError::invalid(
                        format!("users.{name}.password_hash"),
                        h,
                        "must be '*' followed by 40 hex digits (as in mysql.user)",
                    ));
                }
            }
        }
        let mut files: Vec<(String, &Option<PathBuf>)> = vec![
            ("backends.password_file".into(), &self.backends.password_file),
            ("backends.cluster_token_file".into(), &self.backends.cluster_token_file),
            ("database.password_file".into(), &self.database.password_file),
            ("api.token_file".into(), &self.api.token_file),
            ("tls.cert_file".into(), &self.tls.cert_file),
            ("tls.key_file".into(), &self.tls.key_file),
        ];
        for (name, u) in &self.users {
            files.push((format!("users.{name}.password_file"), &u.password_file));
        }
        for (field, p) in files.into_iter().filter_map(|(f, p)| p.as_ref().map(|p| (f, p))) {
            if let Err(e) = std::fs::File::open(p) {
                return Err(ConfigError::invalid(field, p.display(), format!("must be a readable file ({e})")));
            }
        }
        Ok(())
    }
}

/// `[cluster] tls_cert_file`, `tls_key_file`, `tls_ca_file`: all three or none, and only
/// with `secret_file` (the secret handshake runs inside TLS). Pure.
///
/// | files set | `secret_file` | result |
/// |---|---|---|
/// | none | any | ok: plain TCP |
/// | all three | set | ok: mutual TLS |
/// | all three | unset | error naming `cluster.secret_file` |
/// | one or two | any | error naming the first set field and the missing ones |
fn cluster_tls_complete(c: &ClusterSection) -> Result<(), ConfigError> {
    let fields = [
        ("cluster.tls_cert_file", &c.tls_cert_file),
        ("cluster.tls_key_file", &c.tls_key_file),
        ("cluster.tls_ca_file", &c.tls_ca_file),
    ];
    let Some((first, path)) = fields.iter().find_map(|(f, p)| p.as_ref().map(|p| (*f, p))) else { return Ok(()) };
    let missing: Vec<&str> = fields.iter().filter(|(_, p)| p.is_none()).map(|(f, _)| *f).collect();
    if !missing.is_empty() {
        return Err(ConfigError::invalid(
            first,
            path.display(),
            format!(
                "mutual TLS on the cluster port needs cluster.tls_cert_file, cluster.tls_key_file and cluster.tls_ca_file: set {} too, or none of them",
                missing.join(" and ")
            ),
        ));
    }
    if c.secret_file.is_none() {
        return Err(ConfigError::invalid(
            "cluster.secret_file",
            "",
            "cluster.tls_* are set but cluster.secret_file is not: the secret handshake runs inside TLS and cluster mode needs it; set secret_file",
        ));
    }
    Ok(())
}

fn address(field: &'static str, v: &str, empty_ok: bool) -> Result<(), ConfigError> {
    if v.is_empty() && empty_ok {
        return Ok(());
    }
    // MariaDB addresses may be sockets; the cluster's APIs are HTTP over TCP.
    let database = field.starts_with("backends.") && field != "backends.cluster";
    let unix_ok = database && unix_path(v).is_some_and(|p| p.len() > 1);
    let ok = match v.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
        None => false,
    };
    if ok || unix_ok {
        Ok(())
    } else if database {
        Err(ConfigError::invalid(
            field,
            format!("{v:?}"),
            "must be host:port (e.g. 127.0.0.1:3306) or unix:/path/to/socket",
        ))
    } else {
        Err(ConfigError::invalid(field, format!("{v:?}"), "must be host:port, e.g. 127.0.0.1:8007"))
    }
}

/// Reads the first line of a secret file.
impl BackendsSection {
    /// The service account's password: `password_file` (read now, so a rotated file is
    /// picked up), else `password`.
    pub fn service_password(&self) -> Result<String, String> {
        match &self.password_file {
            Some(f) => read_secret(f).map_err(|e| format!("backends.password_file {}: {e}", f.display())),
            None => Ok(self.password.clone()),
        }
    }
}

pub fn read_secret(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().next().unwrap_or_default().trim_end().to_string())
}

fn doc_of(section: &str, name: &str) -> Option<&'static FieldDoc> {
    let section = if section.starts_with("users.") {
        "users.NAME"
    } else if section.starts_with("limits.user.") {
        "limits.user.NAME"
    } else {
        section
    };
    FIELDS.iter().find(|d| d.section == section && d.name == name)
}

fn is_section(name: &str) -> bool {
    SECTIONS.iter().any(|(s, _)| *s == name)
}

/// Unknown and not-yet-in-effect fields present in a parsed file.
fn file_warnings(value: &toml::Value) -> Vec<Warning> {
    let mut out = Vec::new();
    let Some(top) = value.as_table() else { return out };
    for (section, v) in top {
        if !is_section(section) {
            out.push(Warning { field: section.clone(), message: "unknown section, ignored".into() });
            continue;
        }
        let Some(table) = v.as_table() else { continue };
        if section == "users" {
            for (user, entry) in table {
                for key in entry.as_table().map(|t| t.keys().collect::<Vec<_>>()).unwrap_or_default() {
                    if doc_of("users.NAME", key).is_none() {
                        out.push(Warning {
                            field: format!("users.{user}.{key}"),
                            message: "unknown field, ignored".into(),
                        });
                    }
                }
            }
            continue;
        }
        for key in table.keys() {
            if section == "limits" && key == "user" {
                let users = table[key].as_table().into_iter().flatten();
                for (user, entry) in users {
                    for key in entry.as_table().map(|t| t.keys().collect::<Vec<_>>()).unwrap_or_default() {
                        if doc_of("limits.user.NAME", key).is_none() {
                            out.push(Warning {
                                field: format!("limits.user.{user}.{key}"),
                                message: "unknown field, ignored".into(),
                            });
                        }
                    }
                }
                continue;
            }
            match doc_of(section, key) {
                None => {
                    out.push(Warning { field: format!("{section}.{key}"), message: "unknown field, ignored".into() })
                }
                Some(d) if !d.in_effect => out
                    .push(Warning { field: format!("{section}.{key}"), message: "accepted, not yet in effect".into() }),
                Some(_) => {}
            }
        }
    }
    out
}

/// Applies `SHOAL_SECTION__FIELD=value` variables (`SHOAL_USERS__APP__PASSWORD` for
/// `[users.app] password`). Values parse as TOML (`10`, `true`, `["a:1", "b:2"]`) unless
/// the field is a string; anything that does not parse is taken as a string.
pub fn apply_env(value: &mut toml::Value, env: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
    let defaults = toml::Value::try_from(Config::default()).expect("defaults serialise");
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix("SHOAL_") else { continue };
        if !rest.contains("__") {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        let err = |message: String| ConfigError::Env { var: var.clone(), message };
        let (section, field) = match path.as_slice() {
            [s, field] if s != "users" => (s.clone(), field.clone()),
            [s, user, field] if s == "users" => (format!("users.{user}"), field.clone()),
            [s, u, user, field] if s == "limits" && u == "user" => (format!("limits.user.{user}"), field.clone()),
            _ => {
                return Err(err(
                    "expected SHOAL_SECTION__FIELD, SHOAL_USERS__NAME__FIELD or SHOAL_LIMITS__USER__NAME__FIELD".into(),
                ))
            }
        };
        if doc_of(&section, &field).is_none() {
            return Err(err(format!("no field {field} in [{section}]")));
        }
        let default = defaults.get(&path[0]).and_then(|s| s.get(&field));
        let parsed = if matches!(default, Some(toml::Value::String(_))) {
            toml::Value::String(raw.clone())
        } else {
            toml::from_str::<toml::Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(raw.clone()))
        };
        let top = value.as_table_mut().expect("a TOML document is a table");
        let mut table = top.entry(path[0].clone()).or_insert_with(|| toml::Value::Table(Default::default()));
        for p in &path[1..path.len() - 1] {
            table = table
                .as_table_mut()
                .ok_or_else(|| err(format!("[{}] is not a table", path[0])))?
                .entry(p.clone())
                .or_insert_with(|| toml::Value::Table(Default::default()));
        }
        table.as_table_mut().ok_or_else(|| err(format!("[{section}] is not a table")))?.insert(field, parsed);
    }
    Ok(())
}

/// Wraps a doc line at about 90 columns behind `# `.
fn comment(out: &mut String, text: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + word.len() > 88 {
            let _ = writeln!(out, "# {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "# {line}");
    }
}

/// The commented configuration file `shoal init` writes, with `config`'s values.
pub fn render_commented(config: &Config) -> String {
    let value = toml::Value::try_from(config).expect("config serialises");
    let mut out = String::new();
    out.push_str(
        "# shoal configuration. Every field is optional; the values shown are the defaults unless\n\
         # `shoal init` was told otherwise. Fields marked \"not yet in effect\" are accepted (WolfScale\n\
         # layout) and reported by `shoal validate`. Any field can be overridden from the environment:\n\
         # SHOAL_SECTION__FIELD=value, e.g. SHOAL_LIMITS__POOL_CONNECTIONS_MAX=32.\n\
         # Reference: docs/configuration.md\n",
    );
    for (section, about) in SECTIONS {
        out.push('\n');
        comment(&mut out, about);
        if section == "users" {
            let users = config.users.iter().collect::<Vec<_>>();
            if users.is_empty() {
                out.push_str("# [users.app]\n");
                for d in FIELDS.iter().filter(|d| d.section == "users.NAME") {
                    comment(&mut out, d.doc);
                    let _ = writeln!(out, "# {} = {}", d.name, d.example);
                }
            }
            for (name, _) in users {
                let _ = writeln!(out, "[users.{name}]");
                let entry = value.get("users").and_then(|u| u.get(name)).and_then(|e| e.as_table());
                for (k, v) in entry.into_iter().flatten() {
                    let _ = writeln!(out, "{k} = {v}");
                }
            }
            continue;
        }
        if section == "limits.user" {
            if config.limits.user.is_empty() {
                out.push_str("# [limits.user.app]\n");
                for d in FIELDS.iter().filter(|d| d.section == "limits.user.NAME") {
                    comment(&mut out, d.doc);
                    let _ = writeln!(out, "# {} = {}", d.name, d.example);
                }
            }
            for name in config.limits.user.keys() {
                let _ = writeln!(out, "[limits.user.{name}]");
                let entry = value.get("limits").and_then(|l| l.get("user")).and_then(|u| u.get(name));
                for (k, v) in entry.and_then(|e| e.as_table()).into_iter().flatten() {
                    let _ = writeln!(out, "{k} = {v}");
                }
            }
            continue;
        }
        let _ = writeln!(out, "[{section}]");
        let table = value.get(section);
        for d in FIELDS.iter().filter(|d| d.section == section) {
            let mut doc = d.doc.to_string();
            if !d.in_effect {
                doc.push_str(" (not yet in effect)");
            }
            comment(&mut out, &doc);
            match table.and_then(|t| t.get(d.name)) {
                Some(v) => {
                    let _ = writeln!(out, "{} = {v}", d.name);
                }
                None => {
                    let _ = writeln!(out, "# {} = {}", d.name, d.example);
                }
            }
        }
    }
    out
}

/// The reference table of every field, for `docs/configuration.md`.
pub fn reference_markdown() -> String {
    let defaults = toml::Value::try_from(Config::default()).expect("defaults serialise");
    let mut out = String::new();
    for (section, about) in SECTIONS {
        let key = match section {
            "users" => "users.NAME",
            "limits.user" => "limits.user.NAME",
            other => other,
        };
        let header = format!("[{key}]");
        let _ = writeln!(out, "### `{header}`\n\n{about}\n");
        let _ = writeln!(out, "| field | default | in effect | meaning | environment |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for d in FIELDS.iter().filter(|d| d.section == key) {
            let default = defaults
                .get(section)
                .and_then(|t| t.get(d.name))
                .map(|v| format!("`{v}`"))
                .unwrap_or_else(|| format!("unset (e.g. `{}`)", d.example));
            let env = format!("SHOAL_{}__{}", key.replace('.', "__"), d.name).to_ascii_uppercase();
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | `{env}` |",
                d.name,
                default.replace('|', "\\|"),
                if d.in_effect { "yes" } else { "not yet" },
                d.doc.replace('|', "\\|"),
            );
        }
        out.push('\n');
    }
    out
}

/// The unix socket path of a backend address written `unix:/path` (or just `/path`).
pub fn unix_path(addr: &str) -> Option<&str> {
    addr.strip_prefix("unix:").or_else(|| addr.starts_with('/').then_some(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Loaded, ConfigError> {
        Config::parse(text, Path::new("test.toml"), Vec::new())
    }

    #[test]
    fn empty_file_is_valid() {
        let c: Config = toml::from_str("").unwrap();
        c.validate().unwrap();
        assert_eq!(c.proxy.bind_address, "127.0.0.1:8007");
        assert_eq!(c.api.bind_address, "127.0.0.1:8080");
    }

    #[test]
    fn out_of_range_names_the_file_field_value_and_range() {
        let e = parse("[limits]\npool_connections_max = 0\n").unwrap_err().to_string();
        assert_eq!(e, "test.toml: config field limits.pool_connections_max = 0: must be between 1 and 10000");
        let e = parse("[proxy]\nbind_address = \"localhost\"\n").unwrap_err().to_string();
        assert!(e.contains("proxy.bind_address = \"localhost\": must be host:port"), "{e}");
        parse("[backends]\nprimary = \"unix:/run/mysqld/mysqld.sock\"\n").unwrap();
        let e = parse("[backends]\nreplicas = [\"db2\"]\n").unwrap_err().to_string();
        assert!(
            e.contains("backends.replicas = \"db2\": must be host:port (e.g. 127.0.0.1:3306) or unix:/path"),
            "{e}"
        );
        let e = parse("[logging]\nformat = \"xml\"\n").unwrap_err().to_string();
        assert!(e.contains("logging.format = xml: must be text, pretty or json"), "{e}");
        let e = parse("[metrics]\nlatency_buckets_seconds = [0.1, 0.01]\n").unwrap_err().to_string();
        assert!(e.contains("metrics.latency_buckets_seconds"), "{e}");
        let e = parse("[users.app]\npassword_hash = \"nope\"\n").unwrap_err().to_string();
        assert!(e.contains("users.app.password_hash = nope"), "{e}");
        let e = parse("[api]\ntoken_file = \"/no/such/file\"\n").unwrap_err().to_string();
        assert!(e.contains("api.token_file = /no/such/file: must be a readable file"), "{e}");
    }

    #[test]
    fn backend_tls_fields() {
        let c = parse("[backends]\ntls = \"required\"\n").unwrap().config;
        assert_eq!(c.backends.tls, BackendTlsMode::Required);
        assert_eq!(Config::default().backends.tls, BackendTlsMode::Disabled);
        let e = parse("[backends]\ntls = \"verify_identity\"\n").unwrap_err().to_string();
        assert!(e.contains("backends.tls = verify_identity") && e.contains("set backends.tls_ca_file"), "{e}");
        let e = parse("[backends]\ntls = \"required\"\ntls_cert_file = \"/c.pem\"\n").unwrap_err().to_string();
        assert!(e.contains("set both backends.tls_cert_file and backends.tls_key_file"), "{e}");
        let e = parse("[backends]\ntls = \"on\"\n").unwrap_err().to_string();
        assert!(e.contains("tls"), "{e}");
    }

    /// The rows of [`cluster_tls_complete`]'s table.
    #[test]
    fn cluster_tls_fields() {
        let files = "tls_cert_file = \"/c.pem\"\ntls_key_file = \"/k.pem\"\ntls_ca_file = \"/ca.pem\"\n";
        assert!(parse("[cluster]\n").is_ok());
        let c = parse(&format!("[cluster]\nsecret_file = \"/s\"\n{files}")).unwrap().config;
        assert_eq!(c.cluster.tls_ca_file.as_deref(), Some(Path::new("/ca.pem")));
        let e = parse(&format!("[cluster]\n{files}")).unwrap_err().to_string();
        assert!(e.contains("cluster.secret_file") && e.contains("set secret_file"), "{e}");
        let e = parse("[cluster]\nsecret_file = \"/s\"\ntls_key_file = \"/k.pem\"\n").unwrap_err().to_string();
        assert!(e.contains("cluster.tls_key_file = /k.pem"), "{e}");
        assert!(e.contains("set cluster.tls_cert_file and cluster.tls_ca_file too"), "{e}");
        let e = parse("[cluster]\nsecret_file = \"/s\"\ntls_cert_file = \"/c.pem\"\ntls_key_file = \"/k.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("set cluster.tls_ca_file too"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = parse("[limits]\npool_connections_max = \"many\"\n").unwrap_err().to_string();
        assert!(e.starts_with("config file test.toml:") && e.contains("pool_connections_max"), "{e}");
    }

    #[test]
    fn wolfscale_file_loads_with_warnings() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/wolfscale.toml");
        let loaded = Config::load_with(&path, Vec::new()).unwrap();
        let c = &loaded.config;
        assert_eq!(c.node.id, "node-1");
        assert_eq!(c.primary(), "127.0.0.1:3306");
        assert_eq!(c.cluster.peers.len(), 2);
        assert_eq!(c.proxy.bind_address, "0.0.0.0:8007");
        let fields: Vec<&str> = loaded.warnings.iter().map(|w| w.field.as_str()).collect();
        for f in ["wal.batch_size", "cluster.election_timeout_ms", "wal.compression", "database.database"] {
            assert!(fields.contains(&f), "{f} not reported: {fields:?}");
        }
        assert!(loaded.warnings.iter().all(|w| w.message == "accepted, not yet in effect"), "{:?}", loaded.warnings);
        assert!(!fields.contains(&"proxy.bind_address"));
    }

    #[test]
    fn unknown_fields_are_warnings() {
        let loaded = parse("[proxy]\nbind_adress = \"1.2.3.4:1\"\n[loadbalancer]\nlisten = \"x\"\n").unwrap();
        let w: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
        assert!(w.contains(&"proxy.bind_adress: unknown field, ignored".to_string()), "{w:?}");
        assert!(w.contains(&"loadbalancer: unknown section, ignored".to_string()), "{w:?}");
    }

    #[test]
    fn environment_overrides() {
        let env = [
            ("SHOAL_LIMITS__POOL_CONNECTIONS_MAX", "7"),
            ("SHOAL_PROXY__BIND_ADDRESS", "127.0.0.1:9999"),
            ("SHOAL_BACKENDS__REPLICAS", "[\"127.0.0.1:1\", \"127.0.0.1:2\"]"),
            ("SHOAL_NODE__ID", "42"),
            ("SHOAL_USERS__APP__PASSWORD", "pw"),
            ("SHOAL_LOG", "debug"),
            ("PATH", "/bin"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let c = parse("[limits]\npool_connections_max = 3\n").unwrap().config;
        assert_eq!(c.limits.pool_connections_max, 3);
        let c = Config::parse("[limits]\npool_connections_max = 3\n", Path::new("t.toml"), env.clone()).unwrap().config;
        assert_eq!(c.limits.pool_connections_max, 7);
        assert_eq!(c.proxy.bind_address, "127.0.0.1:9999");
        assert_eq!(c.backends.replicas, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(c.node.id, "42");
        assert_eq!(c.users["app"].password.as_deref(), Some("pw"));
        let c = Config::from_env(env).unwrap();
        assert_eq!(c.limits.pool_connections_max, 7);
        let e = Config::from_env([("SHOAL_LIMITS__NOPE".to_string(), "1".to_string())]).unwrap_err().to_string();
        assert_eq!(e, "environment variable SHOAL_LIMITS__NOPE: no field nope in [limits]");
        let e = Config::from_env([("SHOAL_LIMITS__POOL_CONNECTIONS_MAX".into(), "0".into())]).unwrap_err();
        assert!(e.to_string().contains("limits.pool_connections_max = 0"), "{e}");
    }

    #[test]
    fn database_section_supplies_primary_and_service_account() {
        let mut c =
            parse("[database]\nhost = \"localhost\"\nport = 3307\nuser = \"svc\"\npassword = \"pw\"\n").unwrap().config;
        c.resolve_backends();
        assert_eq!(c.backends.primary, "127.0.0.1:3307");
        assert_eq!(c.backends.user, "svc");
        assert_eq!(c.backends.password, "pw");
    }

    /// Every serialised field is documented in FIELDS, and every FIELDS entry exists.
    #[test]
    fn fields_table_matches_the_structs() {
        let mut c = Config::default();
        c.node.advertise_address = Some("x:1".into());
        c.cluster.election_timeout_min_ms = Some(400);
        c.cluster.election_timeout_max_ms = Some(600);
        c.database.password_file = Some("x".into());
        c.database.database = Some("x".into());
        c.api.token_file = Some("x".into());
        c.logging.file = Some("x".into());
        c.binlog.start_file = Some("x".into());
        c.binlog.start_position = Some(4);
        c.backends.password_file = Some("x".into());
        c.backends.tls_ca_file = Some("x".into());
        c.backends.tls_cert_file = Some("x".into());
        c.backends.tls_key_file = Some("x".into());
        c.backends.cluster_token_file = Some("x".into());
        c.cluster.secret_file = Some("x".into());
        c.cluster.tls_cert_file = Some("x".into());
        c.cluster.tls_key_file = Some("x".into());
        c.cluster.tls_ca_file = Some("x".into());
        c.tls.cert_file = Some("x".into());
        c.tls.key_file = Some("x".into());
        c.tls.rsa_private_key_file = Some("x".into());
        c.users.insert(
            "NAME".into(),
            UserEntry { password: Some("x".into()), password_file: Some("x".into()), password_hash: Some("x".into()) },
        );
        c.limits.user.insert(
            "NAME".into(),
            UserLimits {
                connections_max: Some(1),
                statement_time_max_ms: Some(1),
                transaction_idle_timeout_s: Some(1),
            },
        );
        let v = toml::Value::try_from(&c).unwrap();
        let mut found = Vec::new();
        for (section, t) in v.as_table().unwrap() {
            assert!(is_section(section), "section {section} missing from SECTIONS");
            if section == "users" {
                for (k, _) in t["NAME"].as_table().unwrap() {
                    found.push(format!("users.NAME.{k}"));
                }
            } else {
                for (k, v) in t.as_table().unwrap() {
                    if section == "limits" && k == "user" {
                        for (k, _) in v["NAME"].as_table().unwrap() {
                            found.push(format!("limits.user.NAME.{k}"));
                        }
                    } else {
                        found.push(format!("{section}.{k}"));
                    }
                }
            }
        }
        let mut documented: Vec<String> = FIELDS.iter().map(|d| format!("{}.{}", d.section, d.name)).collect();
        found.sort();
        documented.sort();
        assert_eq!(found, documented);
    }

    #[test]
    fn commented_template_loads_and_matches_defaults() {
        let text = render_commented(&Config::default());
        let loaded = parse(&text).unwrap();
        assert!(loaded.warnings.iter().all(|w| w.message == "accepted, not yet in effect"), "{:?}", loaded.warnings);
        assert_eq!(toml::Value::try_from(&loaded.config).unwrap(), toml::Value::try_from(Config::default()).unwrap());
        let mut c = Config::default();
        c.users.insert("app".into(), UserEntry { password: Some("pw".into()), ..Default::default() });
        let loaded = parse(&render_commented(&c)).unwrap();
        assert_eq!(loaded.config.users["app"].password.as_deref(), Some("pw"));
    }

    #[test]
    fn account_limits_take_the_user_table_else_limits() {
        let text = "[limits]\nuser_connections_max = 5\nstatement_time_max_ms = 1000\n\
                    [limits.user.app]\nconnections_max = 2\ntransaction_idle_timeout_s = 30\n\
                    [limits.user.batch]\nstatement_time_max_ms = 0\n";
        let loaded = parse(text).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let l = &loaded.config.limits;
        // | account | connections_max | statement_time_max_ms | transaction_idle_timeout_s |
        // | app     | own 2           | [limits] 1000         | own 30                     |
        // | batch   | [limits] 5      | own 0 (off)           | [limits] 0                 |
        // | other   | [limits] 5      | [limits] 1000         | [limits] 0                 |
        let want =
            |c, s, t| AccountLimits { connections_max: c, statement_time_max_ms: s, transaction_idle_timeout_s: t };
        assert_eq!(l.for_user("app"), want(2, 1000, 30));
        assert_eq!(l.for_user("batch"), want(5, 0, 0));
        assert_eq!(l.for_user("other"), want(5, 1000, 0));
        // An account's limits are not an account: [users] stays empty.
        assert!(loaded.config.users.is_empty());
        let e = parse("[limits.user.app]\nstatement_time_max_ms = 100000000\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "test.toml: config field limits.user.app.statement_time_max_ms = 100000000: must be between 0 and 86400000"
        );
        let w = parse("[limits.user.app]\nmax_connections = 2\n").unwrap().warnings;
        assert_eq!(w[0].field, "limits.user.app.max_connections");
        let env = [("SHOAL_LIMITS__USER__APP__CONNECTIONS_MAX".to_string(), "3".to_string())];
        let c = Config::parse("", Path::new("t.toml"), env).unwrap().config;
        assert_eq!(c.limits.for_user("app").connections_max, 3);
        let mut c = Config::default();
        c.limits.user.insert("app".into(), UserLimits { connections_max: Some(4), ..Default::default() });
        let loaded = parse(&render_commented(&c)).unwrap();
        assert_eq!(loaded.config.limits.user["app"].connections_max, Some(4));
    }

    /// `docs/configuration.md` carries the generated reference; `SHOAL_BLESS=1` rewrites it.
    #[test]
    fn reference_doc_is_in_sync() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (begin, end) = ("<!-- BEGIN GENERATED REFERENCE -->\n", "<!-- END GENERATED REFERENCE -->");
        let start = doc.find(begin).expect("begin marker") + begin.len();
        let stop = doc.find(end).expect("end marker");
        let generated = reference_markdown();
        if doc[start..stop] != generated {
            if std::env::var_os("SHOAL_BLESS").is_some() {
                let new = format!("{}{generated}{}", &doc[..start], &doc[stop..]);
                std::fs::write(&path, new).unwrap();
            } else {
                panic!("docs/configuration.md is out of date: run SHOAL_BLESS=1 cargo test --lib reference_doc");
            }
        }
    }
}
