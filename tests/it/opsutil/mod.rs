//! Helpers for the operations tests: the real `berth` binary as a child process (for what
//! only a process shows: its log, its exit on SIGTERM, SIGHUP), and raw HTTP/1.1 over TCP
//! (for a request body that stalls halfway, which an HTTP client library will not send).

#![allow(dead_code)] // each test crate uses a different subset

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::{Child, Command},
};

pub const ADMIN_PASSWORD: &str = "admin-test-password";

/// A free loopback port (the child binds it itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `berth serve` on a kernel-chosen port over `data_dir`, stderr in `data_dir/serve.log`.
pub struct Berth {
    child: Child,
    pub port: u16,
    pub base: String,
    pub log: PathBuf,
}

impl Berth {
    /// Starts `berth serve` with `env` on top of the test settings; waits for `/healthz`
    /// (over plain HTTP unless `https`).
    pub async fn start(data_dir: &Path, env: &[(&str, &str)]) -> Berth {
        Self::start_scheme(data_dir, env, "http").await
    }

    pub async fn start_scheme(data_dir: &Path, env: &[(&str, &str)], scheme: &str) -> Berth {
        let port = free_port();
        let base = format!("{scheme}://127.0.0.1:{port}");
        let log = data_dir.join("serve.log");
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("serve")
            .env_remove("RUST_LOG")
            .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
            .env("BERTH_PUBLIC_URL", &base)
            .env("BERTH_DATA_DIR", data_dir)
            .env("BERTH_INITIAL_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("NO_COLOR", "1")
            .current_dir(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn berth serve");
        let mut b = Berth { child, port, base, log };
        b.wait_ready().await;
        b
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("berth serve exited with {status} during startup:\n{}", self.log_text());
            }
            let up = if self.base.starts_with("https") {
                // The listener is bound once berth is ready; TLS tests do their own handshake.
                TcpStream::connect(("127.0.0.1", self.port)).await.is_ok()
            } else {
                let client = reqwest::Client::builder().no_proxy().build().unwrap();
                client.get(format!("{}/healthz", self.base)).send().await.is_ok()
            };
            if up {
                return;
            }
            assert!(Instant::now() < deadline, "berth serve did not come up:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends `signal` (e.g. `TERM`, `HUP`) to the child, by its PID.
    pub fn signal(&self, signal: &str) {
        let status =
            std::process::Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// SIGTERM, then waits (up to `limit`) for the exit; returns how long it took.
    pub async fn terminate(mut self, limit: Duration) -> Duration {
        let started = Instant::now();
        self.signal("TERM");
        let status = tokio::time::timeout(limit, self.child.wait()).await.expect("berth did not exit").unwrap();
        assert!(status.success(), "berth exited with {status}:\n{}", self.log_text());
        started.elapsed()
    }
}

/// Runs `berth ARGS…` with `env` in `dir`; returns (success, stdout, stderr).
pub async fn berth(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args)
        .env("BERTH_DATA_DIR", dir)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output()).await.expect("berth timed out").unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A request written by hand: `head` lines (without the blank line) and the first part
/// of a body; the connection stays open, so the server waits for the rest.
pub async fn partial_request(addr: &str, head: &[String], body: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut text = head.join("\r\n");
    text.push_str("\r\n\r\n");
    s.write_all(text.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    s.flush().await.unwrap();
    s
}

/// Reads a response's status line and headers (up to the blank line) from `s`.
pub async fn read_head(s: &mut TcpStream, limit: Duration) -> (u16, String) {
    let mut buf = Vec::new();
    let deadline = Instant::now() + limit;
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut chunk = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, s.read(&mut chunk)).await.expect("no response in time").unwrap();
        assert!(n > 0, "connection closed before a response: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status line");
    (status, text)
}
