//! The real OpenID provider of these tests: npm `oidc-provider` 9 run by Node
//! (`provider.mjs` beside this file; `npm ci --prefix tests/it/oidc` installs it, as
//! `.ci/run` does), on a loopback port, stopped by PID on drop.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;
use tempfile::TempDir;

/// The secret of every client of the provider.
pub const CLIENT_SECRET: &str = "client-secret";

/// A running provider.
pub struct OidcProvider {
    child: Child,
    dir: TempDir,
    pub port: u16,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn module_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/oidc")
}

/// A free loopback port (the kernel's choice, released for the provider to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// Whether the OIDC tests must be skipped: only when `BERTH_SKIP_BROWSER=1`; otherwise a
/// missing `oidc-provider` module fails them with the way to install it.
pub fn skipped() -> bool {
    if std::env::var("BERTH_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("!!!!! BERTH_SKIP_BROWSER=1: OIDC test SKIPPED, sign-in with a provider was NOT tested !!!!!");
        return true;
    }
    let module = module_dir().join("node_modules/oidc-provider/package.json");
    assert!(
        module.is_file(),
        "the OIDC tests need npm's oidc-provider under tests/it/oidc/node_modules: run \
         `npm ci --prefix tests/it/oidc` (as .ci/run does; Node >= 20.12), or set BERTH_SKIP_BROWSER=1 to skip"
    );
    false
}

impl OidcProvider {
    /// Starts the provider on `port` for clients redirecting to `redirect_uris`, with the
    /// users and their groups of `accounts`.
    pub async fn start(port: u16, redirect_uris: &[String], accounts: &[(&str, &[&str])]) -> OidcProvider {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("provider.log")).expect("log");
        let child = Command::new("node")
            .arg(module_dir().join("provider.mjs"))
            .env("PORT", port.to_string())
            .env("REDIRECT_URIS", json!(redirect_uris).to_string())
            .env("ACCOUNTS_FILE", dir.path().join("accounts.json"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("node (the OIDC tests run npm's oidc-provider with Node >= 20.12)");
        // From here on, Drop stops the process whatever happens.
        let p = OidcProvider { child, dir, port };
        p.set_accounts(accounts);
        let http = reqwest::Client::builder().no_proxy().build().expect("client");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if http.get(format!("{}/.well-known/openid-configuration", p.issuer())).send().await.is_ok() {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the OpenID provider did not start; log:\n{}", p.log());
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sets the users and their groups (read by the provider at each sign-in).
    pub fn set_accounts(&self, accounts: &[(&str, &[&str])]) {
        let map: HashMap<&str, &[&str]> = accounts.iter().copied().collect();
        std::fs::write(self.dir.path().join("accounts.json"), json!(map).to_string()).expect("accounts file");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("provider.log")).unwrap_or_default()
    }
}
