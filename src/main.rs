//! The `berth` binary: parses the command line (see `berth::cli`), loads the configuration,
//! sets up logging (`log.format`, `log.level` unless `RUST_LOG` is set) and runs the command.

use anyhow::Context;
use berth::{
    cli::{Cli, Command, ConfigCommand, run_management},
    config::{Config, LogFormat},
    server,
};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn init_logging(config: &Config) {
    // sqlx logs every statement at info; its errors reach us as errors anyway.
    let default = format!("{},sqlx=warn", config.log.level);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt.json().flatten_event(true).with_current_span(false).init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    init_logging(&config);
    match cli.command {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(&config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            server::serve_with_shutdown(listener, config, shutdown_signal()).await
        }
        Command::Migrate => {
            server::open_db(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Config { command: ConfigCommand::Check } => {
            print!("{}", berth::config::listing(&config));
            println!("# configuration is valid");
            Ok(())
        }
        other => run_management(&config, other).await,
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return ctrl_c.await.unwrap_or_default(),
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutdown requested");
}
