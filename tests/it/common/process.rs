//! The real `berth serve` binary as a child process, for tests that must crash it with
//! SIGKILL (aborting the in-process server task, as `TestServer::restart` does, does not
//! stop connections already being served, so a true crash needs a separate process), or
//! that read what only a process of its own shows, such as its peak memory
//! (`/proc/<pid>/status`, tests/memory.rs).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::{Client, Method};
use serde_json::Value;
use tokio::process::{Child, Command};

use super::{ADMIN_PASSWORD, ADMIN_USER, expect_status, header};

pub struct Proc {
    child: Child,
    pub base: String,
    pub client: Client,
}

impl Proc {
    /// `berth serve` on a kernel-chosen port over `data_dir` with extra `BERTH_*`
    /// variables; waits until `/v2/` answers.
    pub async fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Proc {
        Proc::start_binary(Path::new(env!("CARGO_BIN_EXE_berth")), data_dir, env).await
    }

    /// As [`Proc::start_with`], with another build of berth (`binary`), e.g. an older one.
    pub async fn start_binary(binary: &Path, data_dir: &Path, env: &[(&str, &str)]) -> Proc {
        // The child binds the port itself, so ask the kernel for a free one and hand it over.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(data_dir.join("serve.log")).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
            .env("BERTH_PUBLIC_URL", &base)
            .env("BERTH_DATA_DIR", data_dir)
            .env("BERTH_INITIAL_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .envs(env.iter().copied())
            .current_dir(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn berth serve");
        let client = Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap();
        let mut p = Proc { child, base, client };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = p.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(data_dir.join("serve.log")).unwrap_or_default();
                panic!("berth serve exited with {status} during startup:\n{log}");
            }
            if p.client.get(format!("{}/v2/", p.base)).send().await.is_ok() {
                return p;
            }
            assert!(Instant::now() < deadline, "berth serve did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn start(data_dir: &Path) -> Proc {
        Proc::start_with(data_dir, &[]).await
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("berth serve is running")
    }

    /// A `kB` field of `/proc/<pid>/status` (`VmHWM`, `VmRSS`, …) in KiB.
    pub fn status_kib(&self, field: &str) -> u64 {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {path}:\n{status}"))
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    pub fn req(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{}", self.base, path)).bearer_auth(token)
    }

    pub async fn token(&self, scopes: &[&str]) -> String {
        let mut q = vec![("service", "berth")];
        q.extend(scopes.iter().map(|s| ("scope", *s)));
        let resp = self
            .client
            .get(format!("{}/token", self.base))
            .query(&q)
            .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        let json: Value = expect_status(resp, 200, "token").await.json().await.unwrap();
        json["token"].as_str().unwrap().to_string()
    }

    /// The offset an upload status GET reports (asserts 204).
    pub async fn offset(&self, location: &str, token: &str) -> usize {
        let resp = self.req(Method::GET, location, token).send().await.unwrap();
        let resp = expect_status(resp, 204, "upload status").await;
        range_end(&resp).expect("Range")
    }
}

/// The offset a `Range: 0-<end>` header stands for (`0-0` is empty, as berth writes it).
pub fn range_end(resp: &reqwest::Response) -> Option<usize> {
    let range = header(resp, "range")?;
    let end: usize = range.strip_prefix("0-")?.parse().ok()?;
    Some(if end == 0 { 0 } else { end + 1 })
}
