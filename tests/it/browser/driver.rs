//! A headless Debian Chromium driven over WebDriver (fantoccini → chromedriver), owned by one
//! test. `Browser::start` launches chromedriver on a kernel-chosen 127.0.0.1 port in a process
//! group of its own, with a fresh profile directory; dropping the `Browser` kills that whole
//! group (chromedriver and every Chromium process it started), so nothing outlives a test,
//! even one that panicked.
//!
//! Chromium is required: where it is missing the test fails (CI installs it, see `.ci/run`),
//! unless `BERTH_SKIP_BROWSER=1` is set explicitly, which skips with a loud line.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::{Semaphore, SemaphorePermit};

/// At most this many browsers at once in one test binary: each Chromium is a few hundred MB
/// and several processes, and the tests' machines have 2 cores.
static SLOTS: Semaphore = Semaphore::const_new(2);

/// Chromium's switches. Besides headless/root needs, they turn off every background service
/// that would reach outside (updates, metrics, safe browsing), and the resolver maps every
/// host name to "not found": the tests only ever talk to 127.0.0.1.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--window-size=1280,800",
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,OptimizationHints,MediaRouter,PasswordLeakDetection",
    "--metrics-recording-only",
    "--no-pings",
    "--password-store=basic",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
];

/// A running chromedriver + Chromium and the WebDriver session on it.
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    profile: TempDir,
    _slot: SemaphorePermit<'static>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver was started as the leader of its own process group, and Chromium
        // inherits the group: one signal to the group ends them all.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.driver.wait();
    }
}

/// `PATH` lookup of an executable, with an override from `env_var`.
fn executable(env_var: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Whether the browser tests must be skipped; panics when Chromium is missing and skipping
/// was not asked for.
fn binaries() -> Option<(PathBuf, PathBuf)> {
    if std::env::var("BERTH_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!(
            "!!!!! BERTH_SKIP_BROWSER=1: browser test SKIPPED, the web interface was NOT tested in a browser !!!!!"
        );
        return None;
    }
    let chromium = executable("BERTH_CHROMIUM", "chromium");
    let driver = executable("BERTH_CHROMEDRIVER", "chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        (c, d) => panic!(
            "browser tests need Debian's chromium and chromedriver (found chromium: {c:?}, chromedriver: {d:?}); \
             install them with `apt-get install -y --no-install-recommends chromium chromium-driver` \
             (as .ci/run does), or set BERTH_SKIP_BROWSER=1 to skip these tests knowingly"
        ),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().expect("local_addr").port()
}

/// Waits until chromedriver's `/status` answers ready; false when it died or timed out.
async fn driver_ready(driver: &mut Child, port: u16) -> bool {
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build().expect("client");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if driver.try_wait().ok().flatten().is_some() {
            return false;
        }
        if let Ok(resp) = http.get(format!("http://127.0.0.1:{port}/status")).send().await
            && let Ok(v) = resp.json::<Value>().await
            && v["value"]["ready"] == json!(true)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

impl Browser {
    /// A fresh headless Chromium at 1280x800 with an empty profile, or `None` when
    /// `BERTH_SKIP_BROWSER=1` (see the module doc).
    pub async fn start() -> Option<Browser> {
        let (chromium, chromedriver) = binaries()?;
        let slot = SLOTS.acquire().await.expect("semaphore is never closed");
        let profile = tempfile::tempdir().expect("profile dir");
        // The port is the kernel's choice, released just before chromedriver binds it; a
        // lost race shows as a driver that never gets ready, so try a few ports.
        for _ in 0..3 {
            let port = free_port();
            let log = std::fs::File::create(profile.path().join("chromedriver.log")).expect("log file");
            let mut driver = Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone().expect("log")))
                .stderr(Stdio::from(log))
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", chromedriver.display()));
            if !driver_ready(&mut driver, port).await {
                let _ = driver.kill();
                let _ = driver.wait();
                continue;
            }
            let mut browser = Browser { client: None, driver, profile, _slot: slot };
            let client = ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities(&chromium, &browser.profile.path().join("chromium")))
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
                .unwrap_or_else(|e| panic!("WebDriver session on chromedriver: {e}; log:\n{}", browser.driver_log()));
            browser.client = Some(client);
            return Some(browser);
        }
        panic!("chromedriver did not get ready on three ports; last log:\n{}", read_log(profile.path()));
    }

    fn driver_log(&self) -> String {
        read_log(self.profile.path())
    }

    /// chromedriver's pid, which is also the id of the process group it leads.
    pub fn driver_pid(&self) -> u32 {
        self.driver.id()
    }

    /// The WebDriver client.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("session is open until close()")
    }

    /// Ends the WebDriver session (Chromium quits); `Drop` then ends chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }

    /// Console messages since the last call (chromedriver's log of the page: console calls,
    /// failed loads, CSP violations), as `(level, message)`.
    pub async fn console(&self) -> Vec<(String, String)> {
        let v = self.client().issue_cmd(BrowserLog).await.expect("read the browser log");
        v.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or_default().to_string(),
                            e["message"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets the viewport (CSS pixels) through the DevTools protocol, e.g. a phone's 390x844,
    /// which a window cannot be resized to.
    pub async fn set_viewport(&self, width: u32, height: u32, mobile: bool) {
        let params = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile});
        self.client()
            .issue_cmd(Cdp { cmd: "Emulation.setDeviceMetricsOverride", params })
            .await
            .expect("set the viewport");
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client().screenshot().await.expect("screenshot")
    }

    /// The value of the cookie `name` and whether it is HttpOnly, as the browser holds it.
    pub async fn cookie(&self, name: &str) -> Option<(String, bool, Option<String>)> {
        let cookies = self.client().get_all_cookies().await.expect("cookies");
        cookies
            .iter()
            .find(|c| c.name() == name)
            .map(|c| (c.value().to_string(), c.http_only().unwrap_or(false), c.same_site().map(|s| format!("{s:?}"))))
    }
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("chromedriver.log")).unwrap_or_default()
}

fn capabilities(chromium: &Path, profile: &Path) -> Capabilities {
    let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(ToString::to_string).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium, "args": args},
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    match caps {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// chromedriver's `POST /session/{id}/se/log` for the `browser` log.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

/// chromedriver's `POST /session/{id}/goog/cdp/execute`: one DevTools protocol command.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"cmd": self.cmd, "params": self.params}).to_string()))
    }
}
