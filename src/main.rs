//! The `berth` command line: `serve`, `migrate`, `config check`, `user create`.

use std::{io::Read, path::PathBuf};

use anyhow::Context;
use berth::{
    auth::{rules::Role, users},
    config::Config,
    server,
};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "berth", version, about = "An OCI container registry")]
struct Cli {
    /// TOML configuration file; every key can also be set as BERTH_<KEY> (`__` between levels).
    #[arg(long, global = true, env = "BERTH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print it (secrets redacted).
    Check,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user.
    Create {
        name: String,
        #[arg(long, value_enum, default_value = "user")]
        role: RoleArg,
        /// Read the password from standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Superuser,
    Admin,
    User,
}

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
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            println!("{config:#?}");
            println!("configuration is valid");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    name,
                    role,
                    password_stdin: _,
                },
        } => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let db = server::open_db(&config).await?;
            let role = match role {
                RoleArg::Superuser => Role::Superuser,
                RoleArg::Admin => Role::Admin,
                RoleArg::User => Role::User,
            };
            users::create(&db, &name, password, role).await?;
            println!("created user {name}");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or_default(),
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or_default();
}
