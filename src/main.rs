use std::process::ExitCode;

use clap::Parser;
use shoal::cli::{Cli, Command, ProxyArgs};
use shoal::config::{read_secret, Config};

fn init_logging(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cli.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn proxy_config(args: &ProxyArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(l) = &args.listen {
        config.proxy.bind_address = l.clone();
    }
    if let Some(b) = &args.backend {
        config.backends.primary = b.clone();
    }
    if !args.replica.is_empty() {
        config.backends.replicas = args.replica.clone();
    }
    if let Some(u) = &args.backend_user {
        config.backends.user = u.clone();
    }
    if let Some(f) = &args.backend_password_file {
        config.backends.password = read_secret(f)?;
    } else if let Some(p) = &args.backend_password {
        config.backends.password = p.clone();
    }
    config.validate()?;
    Ok(config)
}

async fn run_proxy(args: ProxyArgs) -> anyhow::Result<()> {
    let config = proxy_config(&args)?;
    let (proxy, listener) = shoal::server::bind(&config).await?;
    tracing::info!(listen = %listener.local_addr()?, primary = %config.backends.primary, "shoal proxy ready");
    tokio::select! {
        r = proxy.serve(listener) => r?,
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, stopping"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("shoal: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Proxy(args) => runtime.block_on(run_proxy(args)),
        Command::Validate { config } => {
            Config::load(&config).map(|_| println!("{}: ok", config.display())).map_err(Into::into)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal: {e:#}");
            ExitCode::FAILURE
        }
    }
}
