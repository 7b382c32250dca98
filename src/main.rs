//! The `berth` binary: parses the command line (see `berth::cli`), loads the configuration,
//! sets up logging (`log.format`, `log.level` unless `RUST_LOG` is set) and runs the command.
//! `berth completions SHELL` prints a completion script; `--version` names the git commit.

use anyhow::Context;
use berth::{
    cli::{Cli, Command, ConfigCommand, run_management},
    config::{Config, LogFormat},
    ops::logout,
    server,
};
use clap::{CommandFactory, FromArgMatches};
use tracing_subscriber::EnvFilter;

/// jemalloc, with a background thread that hands freed pages back to the system within
/// about a second (`.cargo/config.toml` sets its options at build time): glibc's malloc
/// kept the memory of a burst of uploads or logins for the life of the process.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `berth --version`: the crate version and the git commit it was built from.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("BUILD_COMMIT"), ")");

/// The command line: `berth::cli::Cli` plus `completions SHELL`, which needs the whole
/// command to describe it.
fn command() -> clap::Command {
    Cli::command().version(VERSION).subcommand(
        clap::Command::new("completions")
            .about("Print a shell completion script (bash, zsh, fish, elvish, powershell)")
            .arg(clap::Arg::new("shell").required(true).value_parser(clap::value_parser!(clap_complete::Shell))),
    )
}

/// Logs go to stderr in batches (`berth::ops::logout`); the guard writes what is left when
/// dropped, so it lives as long as `main`.
fn init_logging(config: &Config) -> logout::FlushOnDrop<std::io::Stderr> {
    // sqlx logs every statement at info; its errors reach us as errors anyway.
    let default = format!("{},sqlx=warn", config.log.level);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: a log file or journald gets plain text (and the access
    // line costs less without them).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = logout::Batched::start(std::io::stderr());
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    match config.log.format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt.json().flatten_event(true).with_current_span(false).init(),
    }
    guard
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let matches = command().get_matches();
    if let Some(("completions", m)) = matches.subcommand()
        && let Some(shell) = m.get_one::<clap_complete::Shell>("shell")
    {
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut command(), "berth", &mut script);
        return Ok(std::io::Write::write_all(&mut std::io::stdout(), &script)?);
    }
    let cli = Cli::from_arg_matches(&matches)?;
    let config = Config::load(cli.config.as_deref())?;
    let _log = init_logging(&config);
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
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        return ctrl_c.await.unwrap_or_default();
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutdown requested");
}
