//! Real services for tests, started and stopped (by PID) by the test that needs them:
//! PostgreSQL from Debian (`initdb` + `pg_ctl` as user postgres, on loopback) and
//! `moto_server` (S3, from the venv `.ci/run` makes). Missing software fails the test with
//! what to install; nothing is skipped.

use std::{
    net::TcpListener as StdListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use sqlx::{Connection, Executor, postgres::PgConnection};

/// A PostgreSQL server in a temp dir, stopped on drop.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).collect())
        .unwrap_or_default();
    versions.sort();
    versions.pop().expect("PostgreSQL is not installed: apt-get install -y postgresql (see .ci/run)")
}

fn as_postgres(bin: &Path, tool: &str, args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join(tool))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().expect("chown");
        assert!(status.success(), "chown the PostgreSQL dir to postgres");
        let data = dir.path().join("data");
        let data = data.to_str().expect("utf-8 path");
        // A locale whose order is not byte order, so the schema must ask for "C" where it sorts.
        let initdb = ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"];
        as_postgres(&bin, "initdb", &[&initdb[..], &["--locale-provider=icu", "--icu-locale=en-US"]].concat());
        let port = StdListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let pg = Postgres { dir, bin, port };
        pg.resume();
        pg
    }

    /// Starts the server (again) on its port.
    pub fn resume(&self) {
        let data = self.dir.path().join("data");
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        let log = self.dir.path().join("log");
        let (data, log) = (data.to_str().expect("utf-8"), log.to_str().expect("utf-8"));
        as_postgres(&self.bin, "pg_ctl", &["-D", data, "-o", &opts, "-l", log, "-w", "start"]);
    }

    /// Stops the server (connections are cut), keeping its data for [`Postgres::resume`].
    pub fn pause(&self) {
        let data = self.dir.path().join("data");
        as_postgres(&self.bin, "pg_ctl", &["-D", data.to_str().expect("utf-8"), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A new, empty database; returns its URL.
    pub async fn database(&self, name: &str) -> String {
        let mut conn = PgConnection::connect(&self.url("postgres")).await.expect("connect to PostgreSQL");
        conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("CREATE DATABASE");
        conn.close().await.ok();
        self.url(name)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        if let Some(data) = data.to_str() {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args(["-D", data, "-m", "immediate", "stop"])
                .output();
        }
    }
}

/// A moto S3 server, killed (by PID) on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

fn moto_bin() -> PathBuf {
    let venv = std::env::var("BERTH_VENV").unwrap_or_else(|_| "/var/cache/berth-venv".into());
    let bin = PathBuf::from(venv).join("bin/moto_server");
    assert!(bin.exists(), "{} missing: pip install 'moto[server]' into the venv (see .ci/run)", bin.display());
    bin
}

impl Moto {
    pub async fn start() -> Moto {
        let port = StdListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let child = Command::new(moto_bin())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        // From here on, Drop stops the process whatever happens.
        let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        for _ in 0..200 {
            if client.get(&moto.endpoint).send().await.is_ok() {
                // moto accepts unsigned requests: create the bucket directly.
                let r = client.put(format!("{}/berth", moto.endpoint)).send().await.expect("create bucket");
                assert!(r.status().is_success(), "create bucket: {}", r.status());
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("moto_server did not start");
    }

    /// The `BERTH_*` variables that point a berth process at bucket `berth` under prefix
    /// `reg` (what [`use_moto`] does to a `Config`).
    pub fn env(&self) -> [(&'static str, &str); 7] {
        [
            ("BERTH_STORAGE__KIND", "s3"),
            ("BERTH_STORAGE__S3__BUCKET", "berth"),
            ("BERTH_STORAGE__S3__PREFIX", "reg"),
            ("BERTH_STORAGE__S3__ENDPOINT", self.endpoint.as_str()),
            ("BERTH_STORAGE__S3__ALLOW_HTTP", "true"),
            ("BERTH_STORAGE__S3__ACCESS_KEY_ID", "test"),
            ("BERTH_STORAGE__S3__SECRET_ACCESS_KEY", "test"),
        ]
    }

    /// Keys in the bucket under `prefix`.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let body = client
            .get(format!("{}/berth?list-type=2&prefix={prefix}", self.endpoint))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        body.split("<Key>").skip(1).filter_map(|s| s.split("</Key>").next()).map(str::to_owned).collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Points a config at a moto bucket `berth` under prefix `reg`.
pub fn use_moto(c: &mut berth::config::Config, endpoint: &str) {
    c.storage.kind = berth::config::StorageKind::S3;
    c.storage.s3.bucket = "berth".into();
    c.storage.s3.prefix = "reg".into();
    c.storage.s3.endpoint = Some(endpoint.to_owned());
    c.storage.s3.allow_http = true;
    c.storage.s3.access_key_id = "test".into();
    c.storage.s3.secret_access_key = "test".into();
}
