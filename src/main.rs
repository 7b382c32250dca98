//! The `berth` binary: parses the command line (see `berth::cli`) and runs it.

use anyhow::Context;
use berth::{
    cli::{Cli, Command, ConfigCommand, run_management},
    config::Config,
    server,
};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
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
            println!("{config:#?}");
            println!("configuration is valid");
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
}
