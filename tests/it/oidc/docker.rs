//! A private Docker engine for the OIDC test's `docker login` and `docker push` (as
//! CLIENTS.md and `conformance/lib.sh` run it: no networking, vfs storage, its own socket),
//! stopped through its process group (dockerd and the containerd it starts) on drop.

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use tempfile::TempDir;

pub struct Dockerd {
    child: Child,
    dir: TempDir,
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
    }
}

/// Debian's docker CLI (conformance/ uses the same).
fn docker_cli() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/docker");
    if debian.is_file() { debian } else { PathBuf::from("docker") }
}

impl Dockerd {
    pub async fn start() -> Dockerd {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::write(d.join("daemon.json"), "{}").expect("daemon.json");
        let log = std::fs::File::create(d.join("dockerd.log")).expect("log");
        let child = Command::new("dockerd")
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs"])
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("pid"))
            .arg("--host")
            .arg(format!("unix://{}", d.join("sock").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .process_group(0)
            .spawn()
            .expect("dockerd (apt-get install docker.io)");
        // From here on, Drop stops it whatever happens.
        let engine = Dockerd { child, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if engine.docker(&["version"], None).await.status.success() {
                return engine;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let log = std::fs::read_to_string(engine.dir.path().join("dockerd.log")).unwrap_or_default();
        panic!("dockerd did not start; log:\n{log}");
    }

    /// Runs the docker CLI against this engine, with its own `DOCKER_CONFIG`, `stdin` piped
    /// in if given.
    pub async fn docker(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let d = self.dir.path();
        let mut cmd = tokio::process::Command::new(docker_cli());
        cmd.args(args)
            .env("DOCKER_HOST", format!("unix://{}", d.join("sock").display()))
            .env("DOCKER_CONFIG", d.join("config"))
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("docker CLI");
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use tokio::io::AsyncWriteExt as _;
            pipe.write_all(input.as_bytes()).await.expect("stdin");
        }
        child.wait_with_output().await.expect("docker CLI output")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
