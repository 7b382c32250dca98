//! Configuration: one serde struct with documented defaults, read from an optional TOML
//! file and overridden by `BERTH_*` environment variables (`__` between levels), then
//! checked once at start (and by `berth config check`): an unknown key is an error naming
//! the nearest known one ([`keys`]), secrets may come from files (`*_file`), and values are
//! validated. `docs/configuration.md` lists every key; a test keeps the two in step.

mod keys;

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use keys::listing;

#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:5000`. A wildcard address (`0.0.0.0`,
    /// `[::]`) needs `public_url`.
    pub listen: String,
    /// Public base URL, used only for the token realm. Default: `http://` (or `https://`
    /// with TLS) + the bound address.
    pub public_url: Option<String>,
    /// Where the SQLite database, blobs and uploads live. Default `./berth-data`.
    pub data_dir: PathBuf,
    /// Password of the superuser `admin` created on a first start with no users.
    /// Default: a random one, printed once to the log.
    pub initial_admin_password: Option<String>,
    /// File holding `initial_admin_password` (one line). Default unset.
    pub initial_admin_password_file: Option<PathBuf>,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub gc: GcConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub tls: TlsConfig,
    pub ui: UiConfig,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`. Default: `sqlite://<data_dir>/berth.db`.
    pub url: Option<String>,
    /// File holding `url` (it may carry a password). Default unset.
    pub url_file: Option<PathBuf>,
    /// Most connections in the pool. Default: on SQLite twice the cores, at least 4 and at
    /// most 16 (one writer at a time, and each connection keeps a page cache, a statement
    /// cache and a worker thread); on PostgreSQL 16.
    pub max_connections: Option<u32>,
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
    /// Static credentials. Default empty: the AWS credential chain from the environment
    /// (`AWS_*` variables, web identity, ECS, instance metadata). Set here, they win.
    pub access_key_id: String,
    /// File holding `access_key_id`. Default unset.
    pub access_key_id_file: Option<PathBuf>,
    pub secret_access_key: String,
    /// File holding `secret_access_key`. Default unset.
    pub secret_access_key_file: Option<PathBuf>,
    /// Allow a plain-http endpoint. Default false.
    pub allow_http: bool,
    /// Blob GETs answer 307 to a presigned URL of the object instead of streaming it.
    /// Default false.
    pub redirect: bool,
    /// Lifetime of a redirect's presigned URL. Default 300.
    pub redirect_ttl_secs: u64,
    /// Server-side encryption of every object written: `AES256` or `aws:kms`. Default unset
    /// (the bucket's default).
    pub sse: Option<String>,
    /// The KMS key of `sse = "aws:kms"`. Default unset (the account's S3 key).
    pub sse_kms_key_id: Option<String>,
    /// At start, check that the bucket exists and is writable (put and delete a probe
    /// object under the prefix); `/readyz` reports the result. Default true.
    pub check_on_start: bool,
    /// Memory, in MiB, that the part buffers of all S3 uploads in this process may hold at
    /// once (each holds at most one 16 MiB part). Default 256.
    pub buffer_budget_mib: u64,
    /// How long an upload waits for buffer space before it is answered 503 with
    /// `Retry-After`. Default 30.
    pub buffer_wait_secs: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: String::new(),
            prefix: String::new(),
            region: "us-east-1".into(),
            endpoint: None,
            access_key_id: String::new(),
            access_key_id_file: None,
            secret_access_key: String::new(),
            secret_access_key_file: None,
            allow_http: false,
            redirect: false,
            redirect_ttl_secs: 300,
            sse: None,
            sse_kms_key_id: None,
            check_on_start: true,
            buffer_budget_mib: 256,
            buffer_wait_secs: 30,
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
    /// Peers (CIDRs) whose `X-Forwarded-For` names the client: the client is the nearest
    /// address in that header not in this list. Default empty: the peer is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// Threads verifying passwords (argon2, 12 MiB each while busy). Default 0: one per core.
    pub password_workers: usize,
    /// Password checks that may wait for a thread; more are answered 429 with
    /// `Retry-After`. Default 0: 64 per thread.
    pub password_queue: usize,
    /// Seconds a verified password is remembered (keyed by an HMAC, never the password), so
    /// repeated logins skip argon2. Default 300; 0 turns the cache off.
    pub credential_cache_secs: u64,
    /// Local passwords are accepted over HTTP beside the directory. Default true; with
    /// false only directory users (and API tokens) sign in; the CLI still works.
    pub local_logins: bool,
    /// `[auth.ldap]`: sign-in through an LDAP directory (off while `url` is unset).
    pub ldap: LdapConfig,
    /// `[[auth.oidc]]`: OpenID Connect providers the web interface signs in with
    /// (docs/oidc.md). Default none.
    pub oidc: Vec<OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            service: "berth".into(),
            token_ttl_secs: 900,
            user_collections: true,
            private_registry: false,
            default_private: false,
            trusted_proxies: Vec::new(),
            password_workers: 0,
            password_queue: 0,
            credential_cache_secs: 300,
            local_logins: true,
            ldap: LdapConfig::default(),
            oidc: Vec::new(),
        }
    }
}

/// One `[[auth.oidc]]` provider (docs/oidc.md). Keys are checked strictly.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// Short id used in URLs (`/ui/oidc/{name}/…`) and in the users' source. Required.
    pub name: String,
    /// Shown as "Sign in with {display_name}". Default: `name`.
    pub display_name: String,
    /// Issuer URL; its discovery document is `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// The client secret (secret).
    pub client_secret: String,
    /// File holding `client_secret`. Default unset.
    pub client_secret_file: Option<PathBuf>,
    /// Scopes requested. Default `["openid", "profile", "email"]`.
    pub scopes: Vec<String>,
    /// ID-token claim holding the user name (lower-cased). Default `preferred_username`.
    pub username_claim: String,
    /// ID-token claim holding the user's groups (a list of names). Default `groups`.
    pub groups_claim: String,
    /// Globs on group names: matching groups become provider-managed teams. Default `["*"]`.
    pub team_groups: Vec<String>,
    /// Groups whose members get the role `admin`. Default empty.
    pub admin_groups: Vec<String>,
    /// Groups whose members get the role `superuser`. Default empty.
    pub superuser_groups: Vec<String>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            name: String::new(),
            display_name: String::new(),
            issuer: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            client_secret_file: None,
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            username_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
            team_groups: vec!["*".into()],
            admin_groups: Vec::new(),
            superuser_groups: Vec::new(),
        }
    }
}

/// `[auth.ldap]`: the directory berth checks passwords against (docs/ldap.md).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LdapConfig {
    /// `ldap://host[:port]` or `ldaps://host[:port]`. Default unset: no directory.
    pub url: Option<String>,
    /// Upgrade an `ldap://` connection with StartTLS. Default true.
    pub starttls: bool,
    /// PEM file of the CA certificates that sign the directory's certificate. Default
    /// unset: the system's trusted roots.
    pub ca_file: Option<PathBuf>,
    /// DN berth binds as to search users and groups. Default empty (anonymous search).
    pub bind_dn: String,
    /// Password of `bind_dn` (secret).
    pub bind_password: String,
    /// File holding `bind_password`. Default unset.
    pub bind_password_file: Option<PathBuf>,
    /// Base DN of the user search (subtree).
    pub user_base: String,
    /// Filter finding one user; `{username}` is replaced by the escaped login name.
    /// Default `(uid={username})`.
    pub user_filter: String,
    /// Attribute holding the user name berth uses (lower-cased). Default `uid`.
    pub username_attribute: String,
    /// Attribute holding the e-mail address. Default `mail`.
    pub email_attribute: String,
    /// Attribute holding the display name. Default `displayName`.
    pub display_name_attribute: String,
    /// Base DN of the group search (subtree). Default empty: no group search.
    pub group_base: String,
    /// Filter finding a user's groups; `{dn}` and `{username}` are replaced, escaped.
    /// Default `(member={dn})`.
    pub group_filter: String,
    /// Attribute holding a group's name. Default `cn`.
    pub group_name_attribute: String,
    /// Globs on group names: matching groups become directory-managed teams. Default
    /// `["*"]`; empty: no teams.
    pub team_groups: Vec<String>,
    /// Groups (names or DNs) whose members get the role `admin`. Default empty.
    pub admin_groups: Vec<String>,
    /// Groups (names or DNs) whose members get the role `superuser`. Default empty.
    pub superuser_groups: Vec<String>,
    /// Seconds for connecting and for each directory operation. Default 5.
    pub timeout_secs: u64,
    /// Seconds the directory's word on a user counts: a remembered password and API or
    /// refresh tokens are re-checked after it. Default unset: `auth.credential_cache_secs`.
    pub cache_secs: Option<u64>,
}

impl Default for LdapConfig {
    fn default() -> Self {
        LdapConfig {
            url: None,
            starttls: true,
            ca_file: None,
            bind_dn: String::new(),
            bind_password: String::new(),
            bind_password_file: None,
            user_base: String::new(),
            user_filter: "(uid={username})".into(),
            username_attribute: "uid".into(),
            email_attribute: "mail".into(),
            display_name_attribute: "displayName".into(),
            group_base: String::new(),
            group_filter: "(member={dn})".into(),
            group_name_attribute: "cn".into(),
            team_groups: vec!["*".into()],
            admin_groups: Vec::new(),
            superuser_groups: Vec::new(),
            timeout_secs: 5,
            cache_secs: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// Largest accepted manifest in bytes. Default 4 MiB.
    pub max_manifest_bytes: usize,
    /// A request body that sends nothing for this long is cut off; an upload keeps what
    /// arrived and stays resumable. Default 60; 0 turns it off.
    pub body_idle_secs: u64,
    /// Requests without a streamed body (everything but uploads and manifest PUTs) must be
    /// answered within this many seconds, else 503. Default 60; 0 turns it off.
    pub request_timeout_secs: u64,
    /// Largest total size of a request's headers in bytes (431 above). Default 65536.
    pub max_header_bytes: usize,
    /// Upload requests (POST, PATCH, PUT of blobs) one principal may have in flight at
    /// once; more get 429. Default 256 (a CI farm often pushes through one account); 0: no limit.
    pub uploads_per_principal: usize,
    /// On SIGTERM, requests in flight get this many seconds to finish before the process
    /// exits (an upload cut off then stays resumable). Default 30.
    pub shutdown_drain_secs: u64,
    /// Memory for manifests served from the in-process cache (bytes and tag entries).
    /// Default 8 MiB; 0 turns the cache off.
    pub manifest_cache_bytes: usize,
    /// How long a tag read from the database is trusted without reading it again: the
    /// bound on serving a tag another replica moved or deleted. Default 1000; 0: no cache.
    pub tag_cache_ttl_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_manifest_bytes: 4 * 1024 * 1024,
            body_idle_secs: 60,
            request_timeout_secs: 60,
            max_header_bytes: 64 * 1024,
            uploads_per_principal: 256,
            shutdown_drain_secs: 30,
            manifest_cache_bytes: 8 * 1024 * 1024,
            tag_cache_ttl_ms: 1000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct GcConfig {
    /// Seconds between garbage-collection passes in `serve`; 0 turns the task off
    /// (`berth gc` still runs one pass). Default 3600.
    pub interval_secs: u64,
    /// Links and manifests younger than this are never collected; an unreferenced blob's
    /// bytes go once its row is at least this old. Default 3600.
    pub blob_grace_secs: u64,
    /// An upload session untouched this long expires. Default 86400.
    pub upload_ttl_secs: u64,
    /// An auto-created collection still without repositories after this long is removed.
    /// Default 86400 (DESIGN §3).
    pub empty_collection_secs: u64,
    /// Manifests no tag points at (and no kept manifest references): `"keep"` (the
    /// default), or a duration (`"7d"`, `"12h"`, or seconds) after their last push at which
    /// they go. A collection's retention policy may set its own.
    pub untagged: Untagged,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            interval_secs: 3600,
            blob_grace_secs: 3600,
            upload_ttl_secs: 86_400,
            empty_collection_secs: 86_400,
            untagged: Untagged::Keep,
        }
    }
}

/// `gc.untagged`: keep untagged manifests, or remove them this many seconds after their
/// last push.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Untagged {
    #[default]
    Keep,
    AfterSecs(u64),
}

impl Serialize for Untagged {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Untagged::Keep => s.serialize_str("keep"),
            Untagged::AfterSecs(n) => s.serialize_str(&format!("{n}s")),
        }
    }
}

impl<'de> Deserialize<'de> for Untagged {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // An environment variable of digits arrives as a number.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Ok(Untagged::AfterSecs(n)),
            Raw::Text(t) if t == "keep" => Ok(Untagged::Keep),
            Raw::Text(t) => humantime::parse_duration(&t).map(|d| Untagged::AfterSecs(d.as_secs())).map_err(|e| {
                serde::de::Error::custom(format!("gc.untagged: {t:?} is neither \"keep\" nor a duration ({e})"))
            }),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines. The default.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `text` or `json`. Default `text`.
    pub format: LogFormat,
    /// One line per request (target `berth::access`). Default true.
    pub access: bool,
    /// Log filter when `RUST_LOG` is unset. Default `info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::Text, access: true, level: "info".into() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsConfig {
    /// Serve Prometheus metrics at `/metrics`. Default true.
    pub enabled: bool,
    /// Serve `/metrics` on this separate address instead of the main listener (for example
    /// a private interface). Default unset: on the main listener.
    pub listen: Option<String>,
    /// When set, `/metrics` answers only requests with `Authorization: Bearer <token>`
    /// (Prometheus' `authorization` / `bearer_token_file`). Default unset: open.
    pub token: Option<String>,
    /// File holding `token`. Default unset.
    pub token_file: Option<PathBuf>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true, listen: None, token: None, token_file: None }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key`, the listener speaks HTTPS. Reloaded on SIGHUP.
    /// Default unset (plain HTTP).
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1). Default unset.
    pub key: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct UiConfig {
    /// Seconds a web-interface sign-in lasts (the session cookie's `Max-Age`). Default
    /// 43200 (12 hours); at least 60.
    pub session_ttl_secs: u64,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig { session_ttl_secs: 43_200 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:5000".into(),
            public_url: None,
            data_dir: PathBuf::from("./berth-data"),
            initial_admin_password: None,
            initial_admin_password_file: None,
            database: DatabaseConfig::default(),
            storage: StorageConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            gc: GcConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            tls: TlsConfig::default(),
            ui: UiConfig::default(),
        }
    }
}

/// Secrets stay out of logs: this prints the same redacted listing as `config check`.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&listing(self))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// `BERTH_*` variables that are not settings: the `--config` flag's variable, and the
/// Python venv the test tooling (`.ci/run`, `conformance/`) exports around berth.
const NOT_SETTINGS: &[&str] = &["config", "venv"];

impl Config {
    /// Defaults, then the TOML file if given, then `BERTH_*` environment variables; unknown
    /// keys, secret files and values are checked.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!("config file {} not found", file.display())));
            }
            let toml = Toml::file_exact(file);
            keys::check_unknown(&toml, keys::Origin::File(file))?;
            fig = fig.merge(toml);
        }
        let env = Env::prefixed("BERTH_").split("__").ignore(NOT_SETTINGS);
        keys::check_unknown(&env, keys::Origin::Env)?;
        let mut config: Config = fig.merge(env).extract().map_err(Box::new)?;
        config.read_secret_files()?;
        config.validate()?;
        Ok(config)
    }

    /// Fills each secret whose `*_file` key is set from that file (trailing newline
    /// dropped); setting both a secret and its file is an error.
    fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        fn read(key: &str, file: &Option<PathBuf>, set: bool) -> Result<Option<String>, ConfigError> {
            let Some(path) = file else { return Ok(None) };
            if set {
                return Err(ConfigError::Invalid(format!("{key} and {key}_file are both set; keep one")));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::Invalid(format!("{key}_file: reading {}: {e}", path.display())))?;
            Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
        }
        if let Some(v) =
            read("initial_admin_password", &self.initial_admin_password_file, self.initial_admin_password.is_some())?
        {
            self.initial_admin_password = Some(v);
        }
        if let Some(v) = read("database.url", &self.database.url_file, self.database.url.is_some())? {
            self.database.url = Some(v);
        }
        if let Some(v) = read("metrics.token", &self.metrics.token_file, self.metrics.token.is_some())? {
            self.metrics.token = Some(v);
        }
        let s3 = &mut self.storage.s3;
        if let Some(v) = read("storage.s3.access_key_id", &s3.access_key_id_file, !s3.access_key_id.is_empty())? {
            s3.access_key_id = v;
        }
        if let Some(v) =
            read("storage.s3.secret_access_key", &s3.secret_access_key_file, !s3.secret_access_key.is_empty())?
        {
            s3.secret_access_key = v;
        }
        let ldap = &mut self.auth.ldap;
        if let Some(v) = read("auth.ldap.bind_password", &ldap.bind_password_file, !ldap.bind_password.is_empty())? {
            ldap.bind_password = v;
        }
        for p in &mut self.auth.oidc {
            let key = format!("auth.oidc.{}.client_secret", p.name);
            if let Some(v) = read(&key, &p.client_secret_file, !p.client_secret.is_empty())? {
                p.client_secret = v;
            }
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let Ok(listen) = self.listen.parse::<SocketAddr>() else {
            return bad(format!("listen: {:?} is not an address like 127.0.0.1:5000", self.listen));
        };
        if listen.ip().is_unspecified() && self.public_url.is_none() {
            return bad(format!(
                "listen = {:?} is a wildcard address, so berth cannot know the URL clients reach it by: \
                 set public_url (e.g. https://registry.example.com), which becomes the token realm",
                self.listen
            ));
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
        if let Some(n) = self.database.max_connections
            && !(1..=1000).contains(&n)
        {
            return bad(format!("database.max_connections: {n} must be 1 to 1000"));
        }
        if self.storage.kind == StorageKind::S3 && self.storage.s3.bucket.is_empty() {
            return bad("storage.s3.bucket is required when storage.kind = \"s3\"".into());
        }
        let s3 = &self.storage.s3;
        if let Some(sse) = &s3.sse
            && sse != "AES256"
            && sse != "aws:kms"
        {
            return bad(format!("storage.s3.sse: {sse:?} is not \"AES256\" or \"aws:kms\""));
        }
        if s3.sse_kms_key_id.is_some() && s3.sse.as_deref() != Some("aws:kms") {
            return bad("storage.s3.sse_kms_key_id needs storage.s3.sse = \"aws:kms\"".into());
        }
        if s3.buffer_budget_mib < 16 {
            return bad("storage.s3.buffer_budget_mib must be at least 16 (one part)".into());
        }
        if s3.redirect && !(1..=604_800).contains(&s3.redirect_ttl_secs) {
            return bad("storage.s3.redirect_ttl_secs must be between 1 and 604800 (7 days)".into());
        }
        if self.auth.token_ttl_secs < 60 {
            return bad("auth.token_ttl_secs must be at least 60".into());
        }
        if self.ui.session_ttl_secs < 60 {
            return bad("ui.session_ttl_secs must be at least 60".into());
        }
        if self.auth.service.is_empty() {
            return bad("auth.service must not be empty".into());
        }
        if self.limits.max_manifest_bytes == 0 {
            return bad("limits.max_manifest_bytes must be positive".into());
        }
        if self.limits.tag_cache_ttl_ms > 60_000 {
            return bad("limits.tag_cache_ttl_ms must be at most 60000 (a minute)".into());
        }
        if self.limits.max_header_bytes < 1024 {
            return bad("limits.max_header_bytes must be at least 1024".into());
        }
        if let Some(m) = &self.metrics.listen
            && m.parse::<SocketAddr>().is_err()
        {
            return bad(format!("metrics.listen: {m:?} is not an address like 127.0.0.1:9090"));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return bad("tls.cert and tls.key go together: set both or neither".into());
        }
        self.auth.ldap.validate()?;
        OidcConfig::validate_all(&self.auth.oidc)?;
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad(format!("log.level: {:?} is not a filter like info or info,berth=debug", self.log.level));
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
mod tests;

impl LdapConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let Some(url) = &self.url else { return Ok(()) };
        if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) {
            return bad(format!("auth.ldap.url: {url:?} must start with ldap:// or ldaps://"));
        }
        if self.user_base.is_empty() {
            return bad("auth.ldap.user_base is required with auth.ldap.url".into());
        }
        if !self.user_filter.contains("{username}") {
            return bad("auth.ldap.user_filter must contain {username}".into());
        }
        if !self.group_base.is_empty()
            && !self.group_filter.contains("{dn}")
            && !self.group_filter.contains("{username}")
        {
            return bad("auth.ldap.group_filter must contain {dn} or {username}".into());
        }
        for g in &self.team_groups {
            if globset::Glob::new(g).is_err() {
                return bad(format!("auth.ldap.team_groups: {g:?} is not a glob"));
            }
        }
        if self.timeout_secs == 0 {
            return bad("auth.ldap.timeout_secs must be positive".into());
        }
        if let Some(ca) = &self.ca_file
            && !ca.is_file()
        {
            return bad(format!("auth.ldap.ca_file: {} is not a readable file", ca.display()));
        }
        Ok(())
    }
}

impl OidcConfig {
    fn validate_all(providers: &[OidcConfig]) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for p in providers {
            p.validate()?;
            if !seen.insert(p.name.as_str()) {
                return Err(ConfigError::Invalid(format!("auth.oidc: two providers are named {:?}", p.name)));
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let name = &self.name;
        let bad = |m: String| Err(ConfigError::Invalid(format!("auth.oidc (provider {name:?}): {m}")));
        let valid_name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if name.is_empty() || name.len() > 32 || !name.chars().all(valid_name) {
            return bad("name must be 1 to 32 of a-z, 0-9, - and _ (it is part of URLs)".into());
        }
        let issuer = &self.issuer;
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return bad(format!("issuer {issuer:?} must start with https:// (or http://)"));
        }
        if self.client_id.is_empty() {
            return bad("client_id is required".into());
        }
        if self.client_secret.is_empty() {
            return bad("client_secret (or client_secret_file) is required: berth is a confidential client".into());
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return bad("scopes must include \"openid\"".into());
        }
        if self.username_claim.is_empty() || self.groups_claim.is_empty() {
            return bad("username_claim and groups_claim must not be empty".into());
        }
        for g in &self.team_groups {
            if globset::Glob::new(g).is_err() {
                return bad(format!("team_groups: {g:?} is not a glob"));
            }
        }
        Ok(())
    }

    /// The text of the "Sign in with …" link.
    pub fn shown_name(&self) -> &str {
        if self.display_name.is_empty() { &self.name } else { &self.display_name }
    }
}
