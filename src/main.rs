use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use shoal::admin::api::{ClusterBody, NodesBody, StatusBody};
use shoal::admin::client;
use shoal::cli::{ApiArgs, Cli, Command, InitArgs, ProxyArgs, StartArgs};
use shoal::cluster::settings::{self, Plan};
use shoal::config::{read_secret, render_commented, Config};
use shoal::server::{has_cluster_state, start_cluster, ConfigSource, Mode, Server};

fn init_logging(cli: &Cli, config: Option<&Config>) {
    let level = cli.log_level.clone().or_else(|| config.map(|c| c.logging.level.clone())).unwrap_or("info".into());
    let format = cli.log_format.clone().or_else(|| config.map(|c| c.logging.format.clone())).unwrap_or("text".into());
    let filter =
        tracing_subscriber::EnvFilter::try_new(&level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The configuration of `shoal proxy`: file (or defaults) + environment + flags.
fn proxy_config(args: &ProxyArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::from_env(std::env::vars())?,
    };
    args.server.apply(&mut config);
    if !args.cluster.is_empty() {
        config.backends.cluster = args.cluster.clone();
    }
    if let Some(f) = &args.server.backend_password_file {
        config.backends.password =
            read_secret(f).with_context(|| format!("--backend-password-file {}", f.display()))?;
    } else if let Some(p) = &args.backend_password {
        config.backends.password = p.clone();
    }
    config.resolve_backends();
    config.validate()?;
    Ok(config)
}

/// The configuration of `shoal start`: the file is required.
fn start_config(args: &StartArgs) -> anyhow::Result<Config> {
    let mut config = Config::load(&args.config)?;
    if let Some(l) = &args.listen {
        config.proxy.bind_address = l.clone();
    }
    if let Some(a) = &args.api {
        config.api.bind_address = a.clone();
    }
    config.resolve_backends();
    config.validate()?;
    if config.backends.primary.is_empty() {
        bail!("{}: set [database] host (the local MariaDB this node fronts)", args.config.display());
    }
    Ok(config)
}

async fn run(
    config: Config,
    mode: Mode,
    file: Option<PathBuf>,
    source: ConfigSource,
    plan: Plan,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let node = start_cluster(&config, &plan).await?;
    let server = Server::start(config, mode, file, Some(source), node).await?;
    loop {
        tokio::select! {
            _ = server.shared.stop_requested.notified() => { tracing::info!("left the cluster: stopping"); break; }
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading users and backends");
                let _ = server.reload().await;
            }
        }
    }
    let drain = Duration::from_millis(server.shared.config.load().limits.shutdown_drain_timeout_ms);
    tokio::select! {
        _ = server.shutdown(drain) => {}
        _ = int.recv() => tracing::warn!("second SIGINT: stopping without waiting"),
    }
    tracing::info!("stopped");
    Ok(())
}

fn prompt(question: &str, default: &str) -> anyhow::Result<String> {
    let mut out = std::io::stderr();
    write!(out, "{question} [{default}]: ")?;
    out.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim();
    Ok(if line.is_empty() { default.to_string() } else { line.to_string() })
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let mut config = Config::default();
    let ask = !args.yes && !args.any_value() && std::io::stdin().is_terminal();
    if ask {
        eprintln!("Writing a shoal configuration; press Enter to keep the default shown.");
        config.node.id = prompt("Node id", "node-1")?;
        config.backends.primary = prompt("Primary MariaDB (host:port)", "127.0.0.1:3306")?;
        config.backends.user = prompt("Service account (reads mysql.user; empty = none)", "")?;
        config.proxy.bind_address = prompt("MySQL listen address", &config.proxy.bind_address)?;
        config.api.bind_address = prompt("HTTP API address", &config.api.bind_address)?;
    }
    if let Some(v) = args.node_id {
        config.node.id = v;
    }
    args.server.apply(&mut config);
    config.backends.password_file = args.server.backend_password_file;
    let text = render_commented(&config);
    // What we write must load: check before touching the file.
    Config::parse(&text, &args.output, Vec::new()).context("the generated configuration does not validate")?;
    if args.output == Path::new("-") {
        print!("{text}");
        return Ok(());
    }
    if args.output.exists() && !args.force {
        bail!("{} exists; pass --force to overwrite it", args.output.display());
    }
    std::fs::write(&args.output, text).with_context(|| format!("cannot write {}", args.output.display()))?;
    println!("wrote {}", args.output.display());
    println!("next: shoal validate -c {0} && shoal proxy -c {0}", args.output.display());
    println!();
    println!("For replication ([capture] mode, cluster mode) the local MariaDB needs, in my.cnf:");
    print!("{}", shoal::capture::setup::my_cnf_snippet(1));
    Ok(())
}

fn validate(path: &Path) -> anyhow::Result<()> {
    let loaded = Config::load_with(path, std::env::vars())?;
    for w in &loaded.warnings {
        eprintln!("warning: {}: {w}", path.display());
    }
    println!("{}: ok", path.display());
    Ok(())
}

fn info(path: &Path) -> anyhow::Result<()> {
    let loaded = Config::load_with(path, std::env::vars())?;
    let mut c = loaded.config;
    c.resolve_backends();
    let or_none = |s: &str| if s.is_empty() { "(none)".to_string() } else { s.to_string() };
    println!("config file:      {}", path.display());
    println!("node id:          {}", c.node_id());
    println!("mysql listener:   {}", c.proxy.bind_address);
    let api = if c.api.enabled { c.api.bind_address.clone() } else { "off".into() };
    println!("http api:         {api}{}", if c.api.token_file.is_some() { " (bearer token)" } else { "" });
    println!("primary:          {}", or_none(&c.backends.primary));
    println!("replicas:         {}", or_none(&c.backends.replicas.join(", ")));
    println!("service account:  {}", or_none(&c.backends.user));
    println!("fixed accounts:   {}", or_none(&c.users.keys().cloned().collect::<Vec<_>>().join(", ")));
    println!("tls:              {}", if c.tls.cert_file.is_some() { "on" } else { "off" });
    // Cluster mode is on when the secret is set (settings::plan).
    let raft = if c.cluster.secret_file.is_some() { "" } else { " (proxy only: no cluster.secret_file)" };
    println!("data dir:         {}{raft}", c.node.data_dir.display());
    println!("cluster:          {}{raft}", c.node.bind_address);
    println!("cluster peers:    {}{raft}", or_none(&c.cluster.peers.join(", ")));
    let l = &c.limits;
    println!(
        "limits:           clients {} | pool {} per backend/account | checkout {} ms | drain {} ms",
        l.client_connections_max, l.pool_connections_max, l.checkout_timeout_ms, l.shutdown_drain_timeout_ms
    );
    for w in &loaded.warnings {
        println!("warning: {w}");
    }
    Ok(())
}

/// Resolves the API address and token for status/servers.
fn api_target(args: &ApiArgs) -> anyhow::Result<(String, Option<String>)> {
    let config = match &args.config {
        Some(p) => Some(Config::load(p)?),
        None if Path::new("shoal.toml").exists() => Config::load(Path::new("shoal.toml")).ok(),
        None => None,
    };
    let addr = args
        .api
        .clone()
        .or_else(|| config.as_ref().filter(|c| c.api.enabled).map(|c| c.api.bind_address.clone()))
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let token_file = args.token_file.clone().or_else(|| config.as_ref().and_then(|c| c.api.token_file.clone()));
    let token = match token_file {
        Some(f) => Some(read_secret(&f).with_context(|| format!("token file {}", f.display()))?),
        None => None,
    };
    Ok((client::connect_address(&addr), token))
}

fn api_get(addr: &str, path: &str, token: Option<&str>) -> anyhow::Result<String> {
    let r = client::get(addr, path, token, Duration::from_secs(5))
        .with_context(|| format!("cannot reach the shoal API at {addr} (is shoal running? see --api)"))?;
    match r.status {
        200 => Ok(r.body),
        401 => bail!("{addr}{path}: 401 unauthorized: pass --token-file (or [api] token_file via --config)"),
        s => bail!("{addr}{path}: HTTP {s}: {}", r.body.trim()),
    }
}

fn status(args: ApiArgs) -> anyhow::Result<()> {
    let (addr, token) = api_target(&args)?;
    let body = api_get(&addr, "/status", token.as_deref())?;
    let cluster = api_get(&addr, "/cluster", token.as_deref())?;
    let health = client::get(&addr, "/health", None, Duration::from_secs(5))?;
    if args.json {
        println!("{{\"status\":{},\"cluster\":{},\"health\":{}}}", body.trim(), cluster.trim(), health.body.trim());
        return Ok(());
    }
    let s: StatusBody = serde_json::from_str(&body).context("unexpected /status body")?;
    let raw: serde_json::Value = serde_json::from_str(&cluster).context("unexpected /cluster body")?;
    let h: serde_json::Value = serde_json::from_str(&health.body).unwrap_or_default();
    println!("node:        {} ({}, {})", s.node_id, s.mode, s.role);
    println!("version:     {}", s.version);
    println!("state:       {} for {} s, {} reloads", s.state, s.uptime_seconds, s.reloads);
    println!("health:      {}", h["reason"].as_str().map(|r| format!("unavailable: {r}")).unwrap_or("ok".into()));
    println!("mysql:       {}", s.proxy_address);
    println!("clients:     {} of {}; {} statements running", s.clients, s.clients_max, s.statements_running);
    println!("primary:     {}", s.primary);
    println!("replicas:    {}", if s.replicas.is_empty() { "(none)".into() } else { s.replicas.join(", ") });
    if raw["cluster_mode"] == "raft" {
        let leader = raw["leader_id"].as_u64().map_or("none known".to_string(), |l| l.to_string());
        let members = raw["nodes"].as_array().map_or(0, Vec::len);
        println!(
            "cluster:     {} (Raft id {}), term {}, leader {leader}",
            raw["role"].as_str().unwrap_or("?"),
            raw["node_id"],
            raw["term"]
        );
        println!(
            "log:         last {} applied {} purged {}; {members} members",
            raw["last_log_index"], raw["applied_index"], raw["purged_index"]
        );
        if let Some(why) = raw["needs_migration"].as_str() {
            println!("NEEDS MIGRATION: {why}");
        }
    } else {
        let c: ClusterBody = serde_json::from_value(raw).context("unexpected /cluster body")?;
        println!("servers up:  {} of {} (leader {})", c.nodes_up, c.nodes_total, c.leader_id);
    }
    println!("pools:       {}", s.pools.len());
    if health.status != 200 {
        bail!("node is not healthy");
    }
    Ok(())
}

fn servers(args: ApiArgs) -> anyhow::Result<()> {
    let (addr, token) = api_target(&args)?;
    let body = api_get(&addr, "/cluster/nodes", token.as_deref())?;
    if args.json {
        println!("{}", body.trim());
        return Ok(());
    }
    let raw: serde_json::Value = serde_json::from_str(&body).context("unexpected /cluster/nodes body")?;
    if raw["cluster_mode"] == "raft" {
        print_table(&raft_rows(&raw));
        return Ok(());
    }
    let nodes: NodesBody = serde_json::from_value(raw).context("unexpected /cluster/nodes body")?;
    let rows: Vec<[String; 5]> = nodes
        .nodes
        .iter()
        .map(|n| {
            let lag = match (n.role.as_str(), n.lag_ms) {
                (_, Some(ms)) => format!("{ms} ms"),
                ("primary", None) => "-".into(),
                (_, None) => "?".into(),
            };
            [n.id.clone(), n.status.clone(), n.role.clone(), n.address.clone(), lag]
        })
        .collect();
    print_table(&rows);
    for n in nodes.nodes.iter().filter(|n| n.error.is_some()) {
        eprintln!("{}: {}", n.id, n.error.as_deref().unwrap_or_default());
    }
    Ok(())
}

/// The rows of a cluster node's `/cluster/nodes` (`Node::status()`): LAG in entries (and
/// ms), `-` when this node does not know it (only the leader does).
fn raft_rows(raw: &serde_json::Value) -> Vec<[String; 5]> {
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let empty = Vec::new();
    raw["nodes"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|n| {
            let lag = shoal::cluster::status::lag_text(n["lag_entries"].as_u64(), n["lag_ms"].as_u64());
            [text(&n["id"]), text(&n["status"]), text(&n["role"]), text(&n["address"]), lag]
        })
        .collect()
}

/// `shoal servers`' table: ID | STATUS | ROLE | ADDRESS | LAG, columns padded.
fn print_table(rows: &[[String; 5]]) {
    let header = ["ID", "STATUS", "ROLE", "ADDRESS", "LAG"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |r: &[String; 5]| {
        r.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join(" | ").trim_end().to_string()
    };
    println!("{}", line(&header));
    println!("{}", widths.map(|w| "-".repeat(w)).join("-+-"));
    for r in rows {
        println!("{}", line(r));
    }
}

/// `shoal start` / `shoal join`: the proxy, and the Raft node when the plan says so.
fn start_node(cli: &Cli, args: &StartArgs, command: settings::Command) -> anyhow::Result<()> {
    let config = start_config(args)?;
    let command = match command {
        settings::Command::Start { bootstrap } => {
            settings::Command::Start { bootstrap: bootstrap || config.cluster.bootstrap }
        }
        join => join,
    };
    let plan = settings::plan(&config, &command, has_cluster_state(&config))
        .with_context(|| args.config.display().to_string())?;
    if plan == Plan::ProxyOnly && args.bootstrap {
        eprintln!("shoal: --bootstrap: [cluster] secret_file is not set, so this runs the proxy only (no Raft node)");
    }
    let a = args.clone();
    serve(cli, config, Mode::Node, Some(args.config.clone()), Arc::new(move || start_config(&a)), plan)
}

/// `shoal leave`: asks the running node to leave the cluster (it stops once it has).
fn leave(args: &ApiArgs) -> anyhow::Result<()> {
    let (addr, token) = api_target(args)?;
    let r = client::post(&addr, "/cluster/leave", token.as_deref(), LEAVE_TIMEOUT)
        .with_context(|| format!("cannot reach the shoal API at {addr} (is shoal running? see --api)"))?;
    match r.status {
        200 => {
            println!("{}", r.body.trim());
            Ok(())
        }
        401 => bail!("{addr}/cluster/leave: 401 unauthorized: pass --token-file (or [api] token_file via --config)"),
        s => bail!("{addr}/cluster/leave: HTTP {s}: {}", r.body.trim()),
    }
}

fn switchover(args: &shoal::cli::SwitchoverArgs) -> anyhow::Result<()> {
    let (addr, token) = api_target(&args.api)?;
    let path = match &args.to {
        Some(to) => format!("/cluster/switchover?to={to}"),
        None => "/cluster/switchover".to_string(),
    };
    let r = client::post(&addr, &path, token.as_deref(), SWITCHOVER_TIMEOUT)
        .with_context(|| format!("cannot reach the shoal API at {addr} (is shoal running? see --api)"))?;
    match r.status {
        200 => {
            let body: shoal::admin::api::SwitchoverBody =
                serde_json::from_str(&r.body).with_context(|| format!("{addr}: unexpected answer {}", r.body))?;
            if !body.handed_over {
                bail!(
                    "node {} did not take over within the deadline; a normal election ran (see `shoal servers`)",
                    body.target
                );
            }
            println!("node {} leads now; new writes waited {} ms", body.target, body.paused_ms);
            Ok(())
        }
        401 => {
            bail!("{addr}/cluster/switchover: 401 unauthorized: pass --token-file (or [api] token_file via --config)")
        }
        s => bail!("{addr}/cluster/switchover: HTTP {s}: {}", r.body.trim()),
    }
}

/// `shoal migrate`: re-seed this stopped node from a member's dump.
fn migrate(args: &shoal::cli::MigrateArgs) -> anyhow::Result<()> {
    let mut config = Config::load(&args.config)?;
    config.resolve_backends();
    let token_file = args.token_file.clone().or_else(|| config.api.token_file.clone());
    let token = match token_file {
        Some(f) => Some(read_secret(&f).with_context(|| format!("token file {}", f.display()))?),
        None => None,
    };
    let m = shoal::server::migrate::migrate(&config, &args.from, token.as_deref(), true)?;
    println!(
        "migrated from {}: {:.1} MiB, {} rows in {:.1} s; the log resumes after LSN {} (term {}). Start the node: shoal start -c {}",
        args.from,
        m.bytes as f64 / (1024.0 * 1024.0),
        m.rows,
        m.took.as_secs_f64(),
        m.lsn,
        m.term,
        args.config.display()
    );
    Ok(())
}

/// Longest `shoal switchover` waits (drain, catch-up, election: a few seconds).
const SWITCHOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest `shoal leave` waits for the membership change (two Raft commits).
const LEAVE_TIMEOUT: Duration = Duration::from_secs(30);

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")
}

fn serve(
    cli: &Cli,
    config: Config,
    mode: Mode,
    file: Option<PathBuf>,
    source: ConfigSource,
    plan: Plan,
) -> anyhow::Result<()> {
    init_logging(cli, Some(&config));
    let rt = runtime()?;
    let r = rt.block_on(run(config, mode, file, source, plan));
    rt.shutdown_timeout(Duration::from_millis(200));
    r
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Proxy(args) => proxy_config(args).and_then(|config| {
            let a = args.clone();
            serve(&cli, config, Mode::Proxy, args.config.clone(), Arc::new(move || proxy_config(&a)), Plan::ProxyOnly)
        }),
        Command::Start(args) => start_node(&cli, args, settings::Command::Start { bootstrap: args.bootstrap }),
        Command::Join(args) => start_node(&cli, &args.start(), settings::Command::Join { via: args.via.clone() }),
        Command::Leave(args) => leave(args),
        Command::Switchover(args) => switchover(args),
        Command::Migrate(args) => migrate(args),
        Command::Init(_) | Command::Validate { .. } | Command::Info { .. } => Ok(()),
        Command::Status(_) | Command::Servers(_) | Command::Version | Command::Wal(_) => Ok(()),
    };
    let result = result.and_then(|()| match cli.command {
        Command::Init(args) => init(args),
        Command::Validate { config } => validate(&config),
        Command::Info { config } => info(&config),
        Command::Status(args) => status(args),
        Command::Servers(args) => servers(args),
        Command::Version => {
            println!("shoal {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Wal(cmd) => shoal::wal::inspect::run(&cmd, &mut std::io::stdout().lock()).map_err(Into::into),
        Command::Proxy(_)
        | Command::Start(_)
        | Command::Join(_)
        | Command::Leave(_)
        | Command::Switchover(_)
        | Command::Migrate(_) => Ok(()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal: {e:#}");
            ExitCode::FAILURE
        }
    }
}
