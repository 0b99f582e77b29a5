//! The command line (clap). Each subcommand maps to one function in `main.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// shoal: a MySQL/MariaDB proxy with built-in replication.
#[derive(Debug, Parser)]
#[command(name = "shoal", version, about, long_about = None)]
pub struct Cli {
    /// Log level (error, warn, info, debug, trace) or a tracing filter.
    #[arg(long, global = true, default_value = "info", env = "SHOAL_LOG")]
    pub log_level: String,
    /// Log format.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the standalone proxy in front of a MariaDB primary (and replicas).
    ///
    /// Example: shoal proxy --listen 127.0.0.1:8007 --backend 127.0.0.1:3306
    Proxy(ProxyArgs),
    /// Check a configuration file and print what is wrong.
    Validate {
        /// The file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// `shoal proxy` options; flags override the file.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Configuration file (TOML).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Address to listen on for MySQL clients.
    #[arg(long)]
    pub listen: Option<String>,
    /// The primary server, host:port.
    #[arg(long)]
    pub backend: Option<String>,
    /// A read replica, host:port (repeatable).
    #[arg(long)]
    pub replica: Vec<String>,
    /// Service account that reads account hashes from the backend.
    #[arg(long, env = "SHOAL_BACKEND_USER")]
    pub backend_user: Option<String>,
    /// File with the service account's password.
    #[arg(long)]
    pub backend_password_file: Option<PathBuf>,
    /// The service account's password (prefer the file).
    #[arg(long, env = "SHOAL_BACKEND_PASSWORD", hide_env_values = true)]
    pub backend_password: Option<String>,
}
