//! The command line (clap). Each subcommand maps to one function in `main.rs`.
//!
//! Exit codes: 0 success, 1 failure (bad configuration, cannot start, API unreachable or
//! unhealthy), 2 usage error (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  shoal init --backend 127.0.0.1:3306 --backend-user shoal   write ./shoal.toml, no questions
  shoal validate -c /etc/shoal/shoal.toml                    check a file, list ignored fields
  shoal proxy --listen 127.0.0.1:8007 --backend 127.0.0.1:3306
  shoal proxy --cluster 10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080   a proxy in front of a shoal cluster
  shoal start -c /etc/shoal/shoal.toml --bootstrap           form a new cluster (first node, or every initial peer)
  shoal start -c /etc/shoal/shoal.toml                       run (or restart) a cluster node
  shoal join 10.0.0.1:7654 -c /etc/shoal/shoal.toml          add a new node to a running cluster
  shoal leave -c /etc/shoal/shoal.toml                       take this node out of the cluster and stop it
  shoal servers                                              table of servers from the local API
  SHOAL_LIMITS__POOL_CONNECTIONS_MAX=32 shoal proxy -c shoal.toml

Exit codes: 0 ok, 1 failure (bad configuration, cannot start, API unreachable), 2 usage.
Signals: SIGTERM/SIGINT drain and stop, SIGHUP reloads users and backends.
Docs: docs/cli.md, docs/configuration.md, docs/api.md, docs/metrics.md";

/// shoal: a MySQL/MariaDB proxy with built-in replication.
#[derive(Debug, Parser)]
#[command(name = "shoal", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// Log level (error, warn, info, debug, trace) or a tracing filter (default: logging.level of the config file, else info).
    #[arg(long, global = true, env = "SHOAL_LOG")]
    pub log_level: Option<String>,
    /// Log format (default: logging.format of the config file, else text).
    #[arg(long, global = true, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented configuration file (asks only when run on a terminal without flags).
    ///
    /// Example: shoal init --node-id db1 --backend 127.0.0.1:3306 --backend-user shoal -o /etc/shoal/shoal.toml
    Init(InitArgs),
    /// Check a configuration file: errors name the file, field, value and allowed range;
    /// fields shoal accepts but does not act on yet are listed as warnings.
    ///
    /// Example: shoal validate -c config/wolfscale.toml
    Validate {
        /// The file.
        #[arg(long, short, env = "SHOAL_CONFIG", default_value = "shoal.toml")]
        config: PathBuf,
    },
    /// Print the effective configuration of a file (after environment overrides).
    ///
    /// Example: shoal info -c /etc/shoal/shoal.toml
    Info {
        /// The file.
        #[arg(long, short, env = "SHOAL_CONFIG", default_value = "shoal.toml")]
        config: PathBuf,
    },
    /// Run the standalone proxy in front of a MariaDB primary (and replicas).
    ///
    /// Example: shoal proxy --listen 127.0.0.1:8007 --backend 127.0.0.1:3306 --api 127.0.0.1:8080
    Proxy(ProxyArgs),
    /// Run as a cluster node: the proxy in front of the local database (the database section)
    /// and, when cluster.secret_file is set, the Raft node on node.bind_address (7654).
    /// Without secret_file it runs the proxy only, as before cluster mode.
    ///
    /// The Raft node agrees on a leader and a log with its peers; the leader captures the
    /// writes of its MariaDB into the log and every node applies committed entries to its own.
    ///
    /// Example: shoal start -c /etc/shoal/shoal.toml --bootstrap
    Start(StartArgs),
    /// Add this (new, empty) node to a running cluster through any member's
    /// node.bind_address: it joins as a learner, is promoted to voter once caught up, then runs
    /// like `shoal start`. Later restarts use `shoal start`.
    ///
    /// Example: shoal join 10.0.0.1:7654 -c /etc/shoal/shoal.toml
    Join(JoinArgs),
    /// Ask the running node (through its HTTP API) to leave the cluster: the leader removes
    /// it from the voters and the membership, then the node stops.
    ///
    /// Example: shoal leave -c /etc/shoal/shoal.toml
    Leave(ApiArgs),
    /// Move the lead to another node, planned: new writes wait while the leader hands
    /// over (about one election timeout), none fails. Without --to, the lowest node that
    /// is up and caught up takes over; a node chosen with --to keeps the lead until it
    /// stops leading (no automatic switchback to the preferred leader meanwhile).
    ///
    /// Example: shoal switchover --to node-2 -c /etc/shoal/shoal.toml
    Switchover(SwitchoverArgs),
    /// Re-seed this stopped node from a member: a consistent dump of that member's MariaDB
    /// (`mariadb-dump --single-transaction`, streamed from its API) replaces this node's
    /// data, and this node's log restarts at the dump's LSN. For a node that shows
    /// NEEDS_MIGRATION (the entries it needed were purged). Then `shoal start` catches up.
    ///
    /// Example: shoal migrate --from 10.0.0.2:8080 --token-file /etc/shoal/api.token -c /etc/shoal/shoal.toml
    Migrate(MigrateArgs),
    /// Show a running node's status (from its HTTP API).
    ///
    /// Example: shoal status --api 127.0.0.1:8080
    Status(ApiArgs),
    /// List the servers a running node knows: ID | STATUS | ROLE | ADDRESS | LAG.
    ///
    /// Example: shoal servers --api 127.0.0.1:8080
    Servers(ApiArgs),
    /// Print the version.
    Version,
    /// Inspect a write-ahead log directory: info, dump records, verify checksums.
    ///
    /// Example: shoal wal verify --dir /var/lib/shoal/wal
    #[command(subcommand)]
    Wal(crate::wal::WalCommand),
}

/// Where shoal listens and which servers it fronts: the flags `init` and `proxy` share.
#[derive(Debug, Args, Clone, Default)]
pub struct ServerFlags {
    /// Sets proxy.bind_address: where MySQL clients connect.
    #[arg(long)]
    pub listen: Option<String>,
    /// Sets api.bind_address: the HTTP API (health, status, metrics).
    #[arg(long)]
    pub api: Option<String>,
    /// Sets backends.primary: `host:port` or `unix:/path/mysqld.sock`.
    #[arg(long)]
    pub backend: Option<String>,
    /// Sets backends.replicas (repeatable).
    #[arg(long)]
    pub replica: Vec<String>,
    /// Sets backends.user: the service account that reads account hashes from the backend.
    #[arg(long, env = "SHOAL_BACKEND_USER")]
    pub backend_user: Option<String>,
    /// File with the service account's password.
    #[arg(long)]
    pub backend_password_file: Option<PathBuf>,
}

impl ServerFlags {
    /// Whether any value was given on the command line.
    pub fn any_value(&self) -> bool {
        self.listen.is_some()
            || self.api.is_some()
            || self.backend.is_some()
            || !self.replica.is_empty()
            || self.backend_user.is_some()
            || self.backend_password_file.is_some()
    }

    /// Writes the given values over `config` (the password file is each command's
    /// business: `init` stores the path, `proxy` reads the secret).
    pub fn apply(&self, config: &mut crate::config::Config) {
        if let Some(l) = &self.listen {
            config.proxy.bind_address = l.clone();
        }
        if let Some(a) = &self.api {
            config.api.bind_address = a.clone();
            config.api.enabled = true;
        }
        if let Some(b) = &self.backend {
            config.backends.primary = b.clone();
        }
        if !self.replica.is_empty() {
            config.backends.replicas = self.replica.clone();
        }
        if let Some(u) = &self.backend_user {
            config.backends.user = u.clone();
        }
    }
}

/// `shoal init` options.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write; `-` prints to stdout.
    #[arg(long, short, default_value = "shoal.toml")]
    pub output: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
    /// Never ask; use defaults for what no flag gives.
    #[arg(long, short)]
    pub yes: bool,
    /// Sets node.id.
    #[arg(long)]
    pub node_id: Option<String>,
    /// Listener and backends.
    #[command(flatten)]
    pub server: ServerFlags,
}

impl InitArgs {
    /// Whether any value was given on the command line.
    pub fn any_value(&self) -> bool {
        self.node_id.is_some() || self.server.any_value()
    }
}

/// `shoal proxy` options; flags override the file.
#[derive(Debug, Args, Clone)]
pub struct ProxyArgs {
    /// Configuration file (TOML).
    #[arg(long, short, env = "SHOAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listener and backends.
    #[command(flatten)]
    pub server: ServerFlags,
    /// The service account's password (prefer the file).
    #[arg(long, env = "SHOAL_BACKEND_PASSWORD", hide_env_values = true)]
    pub backend_password: Option<String>,
    /// Sets backends.cluster: a shoal cluster's HTTP APIs, comma-separated; the proxy
    /// learns the members and the leader from them and relays to the nodes' proxies
    /// (no --backend). Their bearer token: backends.cluster_token_file.
    ///
    /// Example: shoal proxy --cluster 10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 --listen 0.0.0.0:8007
    #[arg(long, value_delimiter = ',')]
    pub cluster: Vec<String>,
}

/// `shoal start` options.
#[derive(Debug, Args, Clone)]
pub struct StartArgs {
    /// Configuration file (TOML).
    #[arg(long, short, env = "SHOAL_CONFIG", default_value = "shoal.toml")]
    pub config: PathBuf,
    /// Form a new cluster from this node and every cluster.peers address (all must be
    /// running; they may start at the same moment). Ignored when this node already holds a
    /// log (a restart). Same as cluster.bootstrap = true.
    #[arg(long)]
    pub bootstrap: bool,
    /// Override proxy.bind_address.
    #[arg(long)]
    pub listen: Option<String>,
    /// Override api.bind_address.
    #[arg(long)]
    pub api: Option<String>,
}

/// `shoal join` options.
#[derive(Debug, Args, Clone)]
pub struct JoinArgs {
    /// Any member's cluster address (node.bind_address), host:port.
    pub via: String,
    /// Configuration file (TOML).
    #[arg(long, short, env = "SHOAL_CONFIG", default_value = "shoal.toml")]
    pub config: PathBuf,
    /// Override proxy.bind_address.
    #[arg(long)]
    pub listen: Option<String>,
    /// Override api.bind_address.
    #[arg(long)]
    pub api: Option<String>,
}

impl JoinArgs {
    /// The `shoal start` options this join runs with (never `--bootstrap`).
    pub fn start(&self) -> StartArgs {
        StartArgs { config: self.config.clone(), bootstrap: false, listen: self.listen.clone(), api: self.api.clone() }
    }
}

/// `shoal switchover`.
#[derive(Debug, Args)]
pub struct SwitchoverArgs {
    /// The node to hand the lead to (node-2, or its id 2).
    #[arg(long)]
    pub to: Option<String>,
    /// Which node to ask (any member: a follower asks the leader).
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Options of `shoal migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The source member's API address, host:port (an up-to-date member; a follower spares the leader).
    #[arg(long)]
    pub from: String,
    /// This node's configuration (its database section and node.data_dir are used).
    #[arg(long, short, env = "SHOAL_CONFIG", default_value = "shoal.toml")]
    pub config: PathBuf,
    /// File with the source API's bearer token (default: api.token_file of --config).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// Options of commands that talk to a running node's HTTP API.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// API address, host:port (default: api.bind_address of --config or ./shoal.toml, else 127.0.0.1:8080).
    #[arg(long, env = "SHOAL_API")]
    pub api: Option<String>,
    /// Configuration file to read api.bind_address and api.token_file from.
    #[arg(long, short, env = "SHOAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// File with the API bearer token (default: api.token_file of --config).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}
