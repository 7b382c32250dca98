//! The `berth` command line. Management commands call the same domain functions as the
//! `/api/v1` handlers, directly against the database, acting with superuser rights (whoever
//! can run them can already read the database).

use std::{io::Read, path::PathBuf};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::STANDARD};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::{
    auth::rules::{AccountRole, Membership},
    config::Config,
    db::Db,
    manage::{Actor, Manager, MemberKind, UserPatch},
    server,
};

#[derive(Parser)]
#[command(name = "berth", version, about = "An OCI container registry")]
pub struct Cli {
    /// TOML configuration file; every key can also be set as BERTH_<KEY> (`__` between levels).
    #[arg(long, global = true, env = "BERTH_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Manage teams.
    Team {
        #[command(subcommand)]
        command: TeamCommand,
    },
    /// Manage collections and their members.
    Collection {
        #[command(subcommand)]
        command: CollectionCommand,
    },
    /// Re-hash every blob and compare database and storage both ways; exits non-zero if
    /// anything is wrong.
    Fsck {
        /// Remove orphans and leftovers, and mark missing or corrupt blobs lost (reads then
        /// answer 404 until they are pushed again).
        #[arg(long)]
        repair: bool,
    },
    /// Show repositories (tags, size).
    Repository {
        #[command(subcommand)]
        command: RepositoryCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Run one garbage-collection pass (safe while servers run) and print what it removed.
    Gc {
        /// Only list what the pass would remove (tags, manifests, links, blobs with bytes).
        #[arg(long)]
        dry_run: bool,
    },
    /// Token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key. Running servers sign with it within a minute and accept its
    /// tokens at once; the old key verifies until the tokens it signed have expired.
    Rotate,
    /// List the signing keys (newest last).
    List,
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print it (secrets redacted).
    Check,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Superuser,
    Admin,
    User,
}

impl From<RoleArg> for AccountRole {
    fn from(r: RoleArg) -> AccountRole {
        match r {
            RoleArg::Superuser => AccountRole::Superuser,
            RoleArg::Admin => AccountRole::Admin,
            RoleArg::User => AccountRole::User,
        }
    }
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create {
        name: String,
        #[arg(long, value_enum, default_value = "user")]
        role: RoleArg,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    List,
    /// Change a user's role, password (from standard input) or active flag.
    Set {
        name: String,
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        active: Option<bool>,
    },
    Delete {
        name: String,
    },
}

#[derive(Subcommand)]
pub enum TeamCommand {
    Create {
        name: String,
        #[arg(long)]
        owner: String,
    },
    List,
    Show {
        name: String,
    },
    AddMember {
        team: String,
        user: String,
    },
    RemoveMember {
        team: String,
        user: String,
    },
    /// Make another user the team's owner.
    Transfer {
        team: String,
        owner: String,
    },
    Delete {
        name: String,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct MemberArg {
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    team: Option<String>,
}

impl MemberArg {
    fn split(&self) -> (MemberKind, &str) {
        match (&self.user, &self.team) {
            (Some(u), _) => (MemberKind::User, u),
            (None, Some(t)) => (MemberKind::Team, t),
            (None, None) => (MemberKind::User, ""),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Visibility {
    Public,
    Private,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum MemberRole {
    Owner,
    Contributor,
}

#[derive(Subcommand)]
pub enum CollectionCommand {
    Create {
        name: String,
        #[arg(long)]
        owner: String,
        /// Private (default: the `auth.default_private` setting).
        #[arg(long)]
        private: bool,
    },
    List,
    Show {
        name: String,
    },
    SetVisibility {
        name: String,
        visibility: Visibility,
    },
    Delete {
        name: String,
    },
    AddMember {
        name: String,
        #[command(flatten)]
        member: MemberArg,
        #[arg(long, value_enum)]
        role: MemberRole,
    },
    RemoveMember {
        name: String,
        #[command(flatten)]
        member: MemberArg,
    },
    /// Show the retention and immutable-tag policy; with any option, replace it.
    Policy {
        name: String,
        /// Retention keeps the newest N tags…
        #[arg(long)]
        keep_newest: Option<i64>,
        /// …and tags matching this glob (repeatable); every other tag goes at GC.
        #[arg(long = "keep-tag")]
        keep_tags: Vec<String>,
        /// Untagged manifests go this long after their last push (`7d`, `12h`).
        #[arg(long)]
        untagged_after: Option<String>,
        /// Tags matching this glob can be neither moved nor deleted (repeatable).
        #[arg(long = "immutable-tag")]
        immutable_tags: Vec<String>,
        /// Remove the policy.
        #[arg(long)]
        clear: bool,
    },
}

#[derive(Subcommand)]
pub enum RepositoryCommand {
    /// A repository's tags and the bytes it holds (`size_bytes`).
    Show { name: String },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token for USER; it is printed once.
    Create {
        user: String,
        name: String,
        #[arg(long)]
        read_only: bool,
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Print a docker `config.json` with an auth entry for this registry host instead.
        #[arg(long, value_name = "REGISTRY")]
        docker_config: Option<String>,
    },
    List {
        user: String,
    },
    Revoke {
        user: String,
        id: String,
    },
}

/// Progress lines of a long pass, on standard error when it is a terminal (rewritten in
/// place, at most ten times a second); nothing otherwise, so scripts get clean output.
struct Progress {
    what: &'static str,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Progress {
    fn on_terminal(what: &'static str) -> Option<Progress> {
        use std::io::IsTerminal;
        std::io::stderr().is_terminal().then(|| Progress { what, last: std::sync::Mutex::new(None) })
    }

    fn show(&self, line: &str) {
        let Ok(mut last) = self.last.lock() else { return };
        if last.is_some_and(|t| t.elapsed() < std::time::Duration::from_millis(100)) {
            return;
        }
        *last = Some(std::time::Instant::now());
        eprint!("\r\x1b[K{}: {line}", self.what);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.last.get_mut().is_ok_and(|l| l.is_some()) {
            eprintln!();
        }
    }
}

fn print<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password).context("reading the password from standard input")?;
    Ok(password.trim_end_matches(['\r', '\n']).to_owned())
}

/// Runs a management command against the configured database.
pub async fn run_management(config: &Config, command: Command) -> anyhow::Result<()> {
    let db: Db = server::open_db(config).await?;
    let m = Manager { db: &db, auth: &config.auth };
    let sys = Actor::system();
    match command {
        Command::User { command } => match command {
            UserCommand::Create { name, role, .. } => {
                print(&m.create_user(&sys, &name, &read_password()?, role.into()).await?)?;
            }
            UserCommand::List => print(&m.list_users(&sys, "", u32::MAX - 1).await?.0)?,
            UserCommand::Set { name, role, password_stdin, active } => {
                let password = if password_stdin { Some(read_password()?) } else { None };
                let patch = UserPatch { role: role.map(AccountRole::from), password, active };
                print(&m.update_user(&sys, &name, patch).await?)?;
            }
            UserCommand::Delete { name } => m.delete_user(&sys, &name).await?,
        },
        Command::Team { command } => match command {
            TeamCommand::Create { name, owner } => print(&m.create_team(&sys, &name, Some(&owner)).await?)?,
            TeamCommand::List => print(&m.list_teams(&sys, "", u32::MAX - 1).await?.0)?,
            TeamCommand::Show { name } => print(&m.show_team(&sys, &name).await?)?,
            TeamCommand::AddMember { team, user } => print(&m.add_team_member(&sys, &team, &user).await?)?,
            TeamCommand::RemoveMember { team, user } => m.remove_team_member(&sys, &team, &user).await?,
            TeamCommand::Transfer { team, owner } => print(&m.transfer_team(&sys, &team, &owner).await?)?,
            TeamCommand::Delete { name } => m.delete_team(&sys, &name).await?,
        },
        Command::Collection { command } => match command {
            CollectionCommand::Create { name, owner, private } => {
                let private = private.then_some(true);
                print(&m.create_collection(&sys, &name, private, Some(&owner)).await?)?;
            }
            CollectionCommand::List => print(&m.list_collections(&sys, "", u32::MAX - 1).await?.0)?,
            CollectionCommand::Show { name } => print(&m.show_collection(&sys, &name).await?)?,
            CollectionCommand::SetVisibility { name, visibility } => {
                let private = matches!(visibility, Visibility::Private);
                print(&m.set_collection_private(&sys, &name, private).await?)?;
            }
            CollectionCommand::Delete { name } => m.delete_collection(&sys, &name).await?,
            CollectionCommand::AddMember { name, member, role } => {
                let (kind, who) = member.split();
                let role = match role {
                    MemberRole::Owner => Membership::Owner,
                    MemberRole::Contributor => Membership::Contributor,
                };
                print(&m.put_member(&sys, &name, kind, who, role).await?)?;
            }
            CollectionCommand::Policy { name, keep_newest, keep_tags, untagged_after, immutable_tags, clear } => {
                let policy = crate::manage::PolicyIn {
                    keep_newest,
                    keep_tags,
                    untagged_after: untagged_after.map(crate::manage::DurationIn::Text),
                    immutable_tags,
                };
                let set = clear
                    || policy.keep_newest.is_some()
                    || !policy.keep_tags.is_empty()
                    || policy.untagged_after.is_some()
                    || !policy.immutable_tags.is_empty();
                if set {
                    print(&m.set_policy(&sys, &name, policy).await?)?;
                } else {
                    print(&m.get_policy(&sys, &name).await?)?;
                }
            }
            CollectionCommand::RemoveMember { name, member } => {
                let (kind, who) = member.split();
                m.remove_member(&sys, &name, kind, who).await?;
            }
        },
        Command::Repository { command: RepositoryCommand::Show { name } } => {
            print(&m.show_repository(&sys, &name).await?)?;
        }
        Command::Token { command } => match command {
            TokenCommand::Create { user, name, read_only, expires_in_days, docker_config } => {
                let u = m.user(&user).await?;
                let t = m.create_token(u.id, &name, read_only, expires_in_days).await?;
                let secret = t.token.clone().unwrap_or_default();
                match docker_config {
                    Some(host) => {
                        let auth = STANDARD.encode(format!("{user}:{secret}"));
                        print(&serde_json::json!({ "auths": { host: { "auth": auth } } }))?;
                    }
                    None => print(&t)?,
                }
            }
            TokenCommand::List { user } => {
                let u = m.user(&user).await?;
                print(&m.list_tokens(u.id).await?)?;
            }
            TokenCommand::Revoke { user, id } => {
                let u = m.user(&user).await?;
                m.delete_token(u.id, &id).await?;
            }
        },
        Command::Gc { dry_run } => {
            let store = crate::storage::BlobStore::open_configured(config).await?;
            let registry = crate::registry::Registry::new(db.clone(), store, config.limits.max_manifest_bytes);
            let progress = Progress::on_terminal("gc");
            let show = progress.as_ref().map(|p| move |line: &str| p.show(line));
            let opts = crate::registry::GcOptions {
                dry_run,
                progress: show.as_ref().map(|f| f as &(dyn Fn(&str) + Sync)),
                pause: None,
            };
            let report = registry.collect(&config.gc, crate::db::now(), opts).await;
            drop(progress);
            print(&report?)?;
        }
        Command::Keys { command: KeysCommand::Rotate } => {
            print(&serde_json::json!({ "kid": crate::auth::keys::rotate(&db).await? }))?;
        }
        Command::Keys { command: KeysCommand::List } => {
            let keys: Vec<_> = crate::db::keys::all(&db)
                .await?
                .into_iter()
                .map(|k| serde_json::json!({ "kid": k.kid, "generation": k.generation, "created_at": k.created_at }))
                .collect();
            print(&keys)?;
        }
        Command::Fsck { repair } => {
            let store = crate::storage::BlobStore::open_configured(config).await?;
            let registry = crate::registry::Registry::new(db.clone(), store, config.limits.max_manifest_bytes);
            let progress = Progress::on_terminal("fsck");
            let show = progress.as_ref().map(|p| move |line: &str| p.show(line));
            let opts = crate::registry::GcOptions {
                dry_run: !repair,
                progress: show.as_ref().map(|f| f as &(dyn Fn(&str) + Sync)),
                pause: None,
            };
            let report = registry.fsck(repair, crate::db::now(), opts).await;
            drop(progress);
            let report = report?;
            print(&report)?;
            if report.problems() > 0 {
                anyhow::bail!("fsck found {} problem(s)", report.problems());
            }
        }
        Command::Serve | Command::Migrate | Command::Config { .. } => anyhow::bail!("not a management command"),
    }
    Ok(())
}
