//! Configuration: one serde struct with documented defaults, read from an optional TOML
//! file and overridden by `BERTH_*` environment variables (`__` between levels), then
//! validated once at start (and by `berth config check`).

use std::{fmt, net::SocketAddr, path::PathBuf};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:5000`.
    pub listen: String,
    /// Public base URL, used only for the token realm. Default: `http://` + the bound address.
    pub public_url: Option<String>,
    /// Where the SQLite database, blobs and uploads live. Default `./berth-data`.
    pub data_dir: PathBuf,
    /// Password of the superuser `admin` created on a first start with no users.
    /// Default: a random one, printed once to the log.
    pub initial_admin_password: Option<String>,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub gc: GcConfig,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`. Default: `sqlite://<data_dir>/berth.db`.
    pub url: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// Blobs under `<data_dir>/blobs`, uploads under `<data_dir>/uploads`. The default.
    #[default]
    Filesystem,
    /// S3-compatible object storage, configured in `[storage.s3]`.
    S3,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    pub kind: StorageKind,
    pub s3: S3Config,
}

/// `[storage.s3]`: where blobs and uploads go when `storage.kind = "s3"`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct S3Config {
    /// Bucket name (required for S3).
    pub bucket: String,
    /// Key prefix inside the bucket. Default empty.
    pub prefix: String,
    /// Default `us-east-1`.
    pub region: String,
    /// Endpoint URL for S3-compatible services (MinIO, Ceph…). Default: AWS.
    pub endpoint: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow a plain-http endpoint. Default false.
    pub allow_http: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: String::new(),
            prefix: String::new(),
            region: "us-east-1".into(),
            endpoint: None,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            allow_http: false,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Token `aud` and the challenge's `service`. Default `berth`.
    pub service: String,
    /// Access-token lifetime in seconds. Default 900; at least 60.
    pub token_ttl_secs: u64,
    /// Users may create collections and teams. Default true.
    pub user_collections: bool,
    /// Anonymous gets nothing at all. Default false.
    pub private_registry: bool,
    /// Visibility of newly created collections. Default false (public).
    pub default_private: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            service: "berth".into(),
            token_ttl_secs: 900,
            user_collections: true,
            private_registry: false,
            default_private: false,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// Largest accepted manifest in bytes. Default 4 MiB.
    pub max_manifest_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig { max_manifest_bytes: 4 * 1024 * 1024 }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct GcConfig {
    /// Seconds between garbage-collection passes in `serve`; 0 turns the task off
    /// (`berth gc` still runs one pass). Default 3600.
    pub interval_secs: u64,
    /// An unreferenced blob is removed once its row is at least this old. Default 3600.
    pub blob_grace_secs: u64,
    /// An upload session untouched this long expires. Default 86400.
    pub upload_ttl_secs: u64,
    /// An auto-created collection still without repositories after this long is removed.
    /// Default 86400 (DESIGN §3).
    pub empty_collection_secs: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig { interval_secs: 3600, blob_grace_secs: 3600, upload_ttl_secs: 86_400, empty_collection_secs: 86_400 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:5000".into(),
            public_url: None,
            data_dir: PathBuf::from("./berth-data"),
            initial_admin_password: None,
            database: DatabaseConfig::default(),
            storage: StorageConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            gc: GcConfig::default(),
        }
    }
}

// Secrets stay out of logs.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("data_dir", &self.data_dir)
            .field("initial_admin_password", &self.initial_admin_password.as_ref().map(|_| "<redacted>"))
            .field("database.url", &self.database.url.as_ref().map(|u| redact_url(u)))
            .field("storage.kind", &self.storage.kind)
            .field("storage.s3.bucket", &self.storage.s3.bucket)
            .field("storage.s3.endpoint", &self.storage.s3.endpoint)
            .field("storage.s3.access_key_id", &self.storage.s3.access_key_id)
            .field("storage.s3.credentials", &"<redacted>")
            .field("auth.service", &self.auth.service)
            .field("auth.user_collections", &self.auth.user_collections)
            .field("auth.private_registry", &self.auth.private_registry)
            .field("auth.default_private", &self.auth.default_private)
            .finish()
    }
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}<redacted>{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then the TOML file if given, then `BERTH_*` environment variables.
    pub fn load(file: Option<&std::path::Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!("config file {} not found", file.display())));
            }
            fig = fig.merge(Toml::file(file));
        }
        let config: Config = fig.merge(Env::prefixed("BERTH_").split("__")).extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.listen.parse::<SocketAddr>().is_err() {
            return bad(format!("listen: {:?} is not an address like 127.0.0.1:5000", self.listen));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad(format!("public_url: {url:?} must start with http:// or https://"));
        }
        if let Some(url) = &self.database.url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return bad("database.url must be sqlite:… or postgres://…".into());
        }
        if self.storage.kind == StorageKind::S3 && self.storage.s3.bucket.is_empty() {
            return bad("storage.s3.bucket is required when storage.kind = \"s3\"".into());
        }
        if self.auth.token_ttl_secs < 60 {
            return bad("auth.token_ttl_secs must be at least 60".into());
        }
        if self.auth.service.is_empty() {
            return bad("auth.service must not be empty".into());
        }
        if self.limits.max_manifest_bytes == 0 {
            return bad("limits.max_manifest_bytes must be positive".into());
        }
        Ok(())
    }

    /// The database URL, defaulting to a SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}/berth.db", self.data_dir.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.database_url(), "sqlite://./berth-data/berth.db");
    }

    #[test]
    #[expect(clippy::result_large_err, reason = "figment::Jail fixes the closure's error type")]
    fn env_overrides() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BERTH_AUTH__USER_COLLECTIONS", "false");
            jail.set_env("BERTH_LISTEN", "127.0.0.1:6000");
            let c = Config::load(None).unwrap();
            assert!(!c.auth.user_collections);
            assert_eq!(c.listen, "127.0.0.1:6000");
            Ok(())
        });
    }

    #[test]
    fn rejects_bad_values() {
        let c = Config { listen: "nope".into(), ..Config::default() };
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.auth.token_ttl_secs = 5;
        assert!(c.validate().is_err());
    }

    #[test]
    fn debug_redacts() {
        let mut c = Config { initial_admin_password: Some("hunter2".into()), ..Config::default() };
        c.database.url = Some("postgres://u:secret@h/db".into());
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2") && !s.contains("secret"), "{s}");
    }
}
