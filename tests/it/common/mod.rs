//! Test harness shared by the integration tests: a real berth server on a kernel-chosen port
//! (`127.0.0.1:0`) over a fresh temporary data dir, plus small helpers to get tokens, push
//! blobs and manifests, read spec error bodies and inspect what landed on disk.
//!
//! Every test builds its own `TestServer`, so tests never share state or ports.

// Each test crate (`tests/*.rs`) uses a different subset of these helpers, so some are
// unused in any one of them; `#[expect(dead_code)]` would fail in the crates that use them all.
#![allow(dead_code)]

pub mod process;
pub mod services;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use berth::config::Config;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256, Sha512};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-test-password";
pub const SERVICE: &str = "berth";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

type Tweak = Arc<dyn Fn(&mut Config) + Send + Sync>;

/// A running berth server. Dropping it aborts the server task and removes the data dir.
pub struct TestServer {
    dir: TempDir,
    tweak: Tweak,
    addr: SocketAddr,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    client: Client,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn new_client() -> Client {
    Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .expect("build reqwest client")
}

#[expect(
    clippy::field_reassign_with_default,
    reason = "struct-update syntax would break if Config grows fields private to the crate"
)]
async fn launch(data_dir: &Path, tweak: &Tweak) -> (SocketAddr, JoinHandle<anyhow::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    let mut config = Config::default();
    config.listen = addr.to_string();
    config.public_url = Some(format!("http://{addr}"));
    config.data_dir = data_dir.to_path_buf();
    config.initial_admin_password = Some(ADMIN_PASSWORD.to_string());
    tweak(&mut config);
    let task = tokio::spawn(berth::server::serve(listener, config));
    (addr, task)
}

impl TestServer {
    /// A server with the DESIGN §7 defaults (public collections, user collections on).
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server whose config is adjusted by `tweak` after the harness filled in listen
    /// address, public URL, data dir and admin password. `tweak` is applied again on restart.
    pub async fn start_with(tweak: impl Fn(&mut Config) + Send + Sync + 'static) -> Self {
        let dir = tempfile::tempdir().expect("create temp data dir");
        let tweak: Tweak = Arc::new(tweak);
        let (addr, task) = launch(dir.path(), &tweak).await;
        let mut server = Self { dir, tweak, addr, task: Some(task), client: new_client() };
        server.wait_ready().await;
        server
    }

    /// Abort the server task and start a new one on the same data dir (on a new port).
    pub async fn restart(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        // A fresh client drops the pooled keep-alive connections to the old server, which
        // ends the old per-connection tasks (and whatever state they still hold).
        self.client = new_client();
        let (addr, task) = launch(self.dir.path(), &self.tweak).await;
        self.addr = addr;
        self.task = Some(task);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.task.as_ref().is_some_and(tokio::task::JoinHandle::is_finished) {
                let result = self.task.take().expect("task").await;
                panic!("berth server stopped during startup: {result:?}");
            }
            let answer = self.client.get(self.url("/v2/")).timeout(Duration::from_secs(5)).send().await;
            if answer.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "berth did not answer GET /v2/ within 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // ----- addresses and raw requests -------------------------------------------------

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, which is also the configured `public_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A request to `path` (which starts with `/`), with `Authorization: Bearer` if given.
    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let rb = self.client.request(method, self.url(path));
        match token {
            Some(t) => rb.header(AUTHORIZATION, format!("Bearer {t}")),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.req(Method::GET, path, token).send().await.expect("GET")
    }

    pub async fn head(&self, path: &str, token: Option<&str>) -> Response {
        self.req(Method::HEAD, path, token).send().await.expect("HEAD")
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.req(Method::DELETE, path, token).send().await.expect("DELETE")
    }

    // ----- tokens ------------------------------------------------------------------

    /// `GET /token?service=berth&scope=…` with Basic auth when `creds` is given.
    pub async fn token_response(&self, creds: Option<(&str, &str)>, scopes: &[&str]) -> Response {
        let mut query: Vec<(&str, &str)> = vec![("service", SERVICE)];
        for s in scopes {
            query.push(("scope", s));
        }
        let mut rb = self.client.get(self.url("/token")).query(&query);
        if let Some((user, password)) = creds {
            rb = rb.basic_auth(user, Some(password));
        }
        rb.send().await.expect("GET /token")
    }

    /// The full JSON of a successful token response (asserts 200).
    pub async fn token_json(&self, creds: Option<(&str, &str)>, scopes: &[&str]) -> Value {
        let resp = self.token_response(creds, scopes).await;
        let status = resp.status();
        let body = resp.text().await.expect("token body");
        assert_eq!(status, 200, "token request {scopes:?} as {:?}: {body}", creds.map(|c| c.0));
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("token body is not JSON ({e}): {body}"))
    }

    /// The bearer token for `scopes`, as `creds` (anonymous when `None`).
    pub async fn token(&self, creds: Option<(&str, &str)>, scopes: &[&str]) -> String {
        let json = self.token_json(creds, scopes).await;
        json["token"].as_str().unwrap_or_else(|| panic!("no \"token\" in {json}")).to_string()
    }

    pub async fn admin_token(&self, scopes: &[&str]) -> String {
        self.token(Some((ADMIN_USER, ADMIN_PASSWORD)), scopes).await
    }

    pub async fn anon_token(&self, scopes: &[&str]) -> String {
        self.token(None, scopes).await
    }

    /// An admin token with pull, push and delete on each of `repos`.
    pub async fn repo_token(&self, repos: &[&str]) -> String {
        let scopes: Vec<String> = repos.iter().map(|r| scope(r, "pull,push,delete")).collect();
        let refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
        self.admin_token(&refs).await
    }

    // ----- users ---------------------------------------------------------------------

    /// `berth user create NAME --role ROLE --password-stdin` against this server's data dir.
    pub async fn create_user(&self, name: &str, role: &str, password: &str) {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["user", "create", name, "--role", role, "--password-stdin"])
            .env("BERTH_DATA_DIR", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn berth user create");
        let mut stdin = child.stdin.take().expect("stdin");
        // As `echo "$PW" | berth user create … --password-stdin` would send it.
        stdin.write_all(format!("{password}\n").as_bytes()).await.expect("write password");
        drop(stdin);
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .expect("berth user create timed out")
            .expect("berth user create");
        assert!(
            out.status.success(),
            "berth user create {name} failed: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // ----- on-disk storage (DESIGN §6) ---------------------------------------------------

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `data_dir/blobs/<alg>/<2 hex>/<hex>`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (alg, hex) = digest.split_once(':').expect("digest has a colon");
        self.dir.path().join("blobs").join(alg).join(&hex[..2]).join(hex)
    }

    /// The bytes stored under `digest`, if any.
    pub fn blob_on_disk(&self, digest: &str) -> Option<Vec<u8>> {
        std::fs::read(self.blob_path(digest)).ok()
    }

    /// `data_dir/uploads/<uuid>`.
    pub fn upload_path(&self, uuid: &str) -> PathBuf {
        self.dir.path().join("uploads").join(uuid)
    }

    /// Every file under `data_dir/blobs`, relative to it.
    pub fn blob_files(&self) -> BTreeSet<PathBuf> {
        let root = self.dir.path().join("blobs");
        let mut out = BTreeSet::new();
        walk(&root, &root, &mut out);
        out
    }

    // ----- pushing ---------------------------------------------------------------------

    /// Monolithic `POST /v2/<repo>/blobs/uploads/?digest=` (asserts 201); returns the digest.
    pub async fn push_blob(&self, token: &str, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let resp = self
            .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={digest}"), Some(token))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("POST blob");
        expect_status(resp, 201, &format!("monolithic push of {digest} to {repo}")).await;
        digest
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with an optional `Content-Type`.
    pub async fn put_manifest(
        &self,
        token: &str,
        repo: &str,
        reference: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Response {
        let mut rb = self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"), Some(token));
        if let Some(ct) = content_type {
            rb = rb.header(CONTENT_TYPE, ct);
        }
        rb.body(body.to_vec()).send().await.expect("PUT manifest")
    }

    /// `put_manifest` that must answer 201; returns the sha256 digest of `body`.
    pub async fn push_manifest(
        &self,
        token: &str,
        repo: &str,
        reference: &str,
        content_type: &str,
        body: &[u8],
    ) -> String {
        let resp = self.put_manifest(token, repo, reference, Some(content_type), body).await;
        expect_status(resp, 201, &format!("PUT manifest {repo}:{reference}")).await;
        sha256_digest(body)
    }

    /// Pushes a config and one layer derived from `seed`, then an OCI manifest for them
    /// under `reference`.
    pub async fn push_image(&self, token: &str, repo: &str, reference: &str, seed: &str) -> Image {
        let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"{seed}\"}}").into_bytes();
        let layer = format!("layer bytes for {seed}").repeat(37).into_bytes();
        self.push_blob(token, repo, &config).await;
        self.push_blob(token, repo, &layer).await;
        let manifest = oci_manifest(&config, &[&layer]);
        let digest = self.push_manifest(token, repo, reference, OCI_MANIFEST, &manifest).await;
        Image { config, layers: vec![layer], manifest, digest }
    }

    /// Starts an upload session (asserts 202); returns its relative `Location`.
    pub async fn start_upload(&self, token: &str, repo: &str) -> String {
        let resp = self
            .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), Some(token))
            .send()
            .await
            .expect("POST upload");
        let resp = expect_status(resp, 202, &format!("POST /v2/{repo}/blobs/uploads/")).await;
        header(&resp, "location").expect("Location on 202")
    }

    /// `PATCH <location>` with `Content-Range: start-end` (inclusive) and `chunk` as body.
    pub async fn patch_chunk(&self, token: &str, location: &str, start: usize, chunk: &[u8]) -> Response {
        self.req(Method::PATCH, location, Some(token))
            .header(CONTENT_TYPE, "application/octet-stream")
            .header("content-range", format!("{}-{}", start, start + chunk.len() - 1))
            .body(chunk.to_vec())
            .send()
            .await
            .expect("PATCH chunk")
    }

    /// `PUT <location>?digest=<digest>` with `body` (possibly empty).
    pub async fn finish_upload(&self, token: &str, location: &str, digest: &str, body: &[u8]) -> Response {
        self.req(Method::PUT, &format!("{location}?digest={digest}"), Some(token))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(body.to_vec())
            .send()
            .await
            .expect("PUT upload")
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            out.insert(path.strip_prefix(root).expect("under root").to_path_buf());
        }
    }
}

/// What `push_image` pushed.
pub struct Image {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
    pub digest: String,
}

// ----- digests, scopes, manifests ---------------------------------------------------------

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub fn sha512_digest(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(bytes)))
}

/// `repository:<repo>:<actions>`.
pub fn scope(repo: &str, actions: &str) -> String {
    format!("repository:{repo}:{actions}")
}

/// Deterministic pseudo-random bytes (so data is not trivially compressible or periodic).
pub fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len()})
}

/// An OCI image manifest for `config` and `layers`, pretty-printed with an unknown field so
/// that byte-exact storage is observable.
pub fn oci_manifest(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let layers: Vec<Value> = layers.iter().map(|l| descriptor(OCI_LAYER, l)).collect();
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": layers,
        "x-berth-test-unknown-field": {"kept": true},
    });
    let mut bytes = serde_json::to_vec_pretty(&body).expect("serialize");
    bytes.extend_from_slice(b"\n\n");
    bytes
}

/// An OCI image index over `manifests` (each an OCI image manifest's bytes).
pub fn oci_index(manifests: &[&[u8]]) -> Vec<u8> {
    let manifests: Vec<Value> = manifests
        .iter()
        .map(|m| {
            let mut d = descriptor(OCI_MANIFEST, m);
            d["platform"] = json!({"architecture": "amd64", "os": "linux"});
            d
        })
        .collect();
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})).expect("serialize")
}

// ----- responses ---------------------------------------------------------------------

/// A header's value as a string.
pub fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers().get(name).map(|v| v.to_str().expect("header is ASCII").to_string())
}

/// All values of a header.
pub fn headers_all(resp: &Response, name: &str) -> Vec<String> {
    resp.headers().get_all(name).iter().map(|v| v.to_str().expect("header is ASCII").to_string()).collect()
}

/// Panics with the body when the status is not `expected`; otherwise hands `resp` back.
pub async fn expect_status(resp: Response, expected: u16, what: &str) -> Response {
    let status = resp.status().as_u16();
    if status != expected {
        let headers = format!("{:?}", resp.headers());
        let body = resp.text().await.unwrap_or_default();
        panic!("{what}: expected {expected}, got {status}\nheaders: {headers}\nbody: {body}");
    }
    resp
}

/// The spec error body `{"errors":[{"code":…}]}` of `resp`, with the status checked.
/// Returns the parsed body.
pub async fn expect_error(resp: Response, status: u16, code: &str, what: &str) -> Value {
    let got = resp.status().as_u16();
    let headers = format!("{:?}", resp.headers());
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(got, status, "{what}: status (expected {status} {code})\nheaders: {headers}\nbody: {body}");
    let json: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: error body is not JSON ({e}): {body:?}"));
    let codes = error_codes_of(&json);
    assert!(codes.iter().any(|c| c == code), "{what}: expected error code {code}, got {codes:?} in {body}");
    json
}

pub fn error_codes_of(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errs| errs.iter().filter_map(|e| e["code"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Parses `Bearer realm="…",service="…",scope="…",error="…"` into its parameters
/// (keys lower-cased). Panics unless the scheme is Bearer.
pub fn parse_challenge(value: &str) -> HashMap<String, String> {
    let rest = value.strip_prefix("Bearer ").unwrap_or_else(|| panic!("challenge is not Bearer: {value:?}"));
    let mut out = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                val.push(*c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), val);
    }
    out
}

/// The challenge of a 401 response, parsed.
pub fn challenge(resp: &Response) -> HashMap<String, String> {
    let value = header(resp, "www-authenticate")
        .unwrap_or_else(|| panic!("401 without WWW-Authenticate: {:?}", resp.headers()));
    parse_challenge(&value)
}

/// Asserts a 401 whose challenge has realm, service and exactly `scope` (`None`: no scope
/// parameter) and, when `insufficient`, `error="insufficient_scope"`.
pub async fn expect_challenge(
    server: &TestServer,
    resp: Response,
    scope: Option<&str>,
    insufficient: bool,
    what: &str,
) {
    let status = resp.status().as_u16();
    let c = if status == 401 { Some(challenge(&resp)) } else { None };
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(status, 401, "{what}: expected 401, body {body}");
    let c = c.expect("challenge");
    assert_eq!(c.get("realm").map(String::as_str), Some(server.url("/token").as_str()), "{what}: realm in {c:?}");
    assert_eq!(c.get("service").map(String::as_str), Some(SERVICE), "{what}: service in {c:?}");
    assert_eq!(c.get("scope").map(String::as_str), scope, "{what}: scope in {c:?}");
    if insufficient {
        assert_eq!(c.get("error").map(String::as_str), Some("insufficient_scope"), "{what}: error in {c:?}");
    }
    if body.is_empty() {
        return; // HEAD: no body to judge.
    }
    let json: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: 401 body not JSON ({e}): {body:?}"));
    let codes = error_codes_of(&json);
    assert!(codes.iter().any(|c| c == "UNAUTHORIZED" || c == "DENIED"), "{what}: 401 body codes {codes:?}");
}

/// The (header, claims) of a JWT, without verifying it.
pub fn decode_jwt(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut part = || {
        let p = parts.next().unwrap_or_else(|| panic!("not a JWT: {token}"));
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p.trim_end_matches('='))
            .unwrap_or_else(|e| panic!("JWT part is not base64url ({e}): {p}"));
        serde_json::from_slice::<Value>(&raw).expect("JWT part is JSON")
    };
    let header = part();
    let claims = part();
    (header, claims)
}

/// The actions granted for `repository:<name>` in a token's `access` claim (None: no entry).
pub fn granted(token: &str, name: &str) -> Option<Vec<String>> {
    let (_, claims) = decode_jwt(token);
    claims["access"].as_array()?.iter().find_map(|a| {
        (a["type"] == "repository" && a["name"] == name).then(|| {
            a["actions"]
                .as_array()
                .map(|xs| xs.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        })
    })
}

// ----- settings, management API and CLI helpers (tests/matrix.rs, api.rs, hiding.rs) ------

/// A server with the given `auth.user_collections` and `auth.private_registry` (DESIGN §3
/// settings); everything else as in [`TestServer::start`].
pub async fn start_with_settings(user_collections: bool, private_registry: bool) -> TestServer {
    TestServer::start_with(move |c| {
        c.auth.user_collections = user_collections;
        c.auth.private_registry = private_registry;
    })
    .await
}

/// Credentials for a `/api/v1` request.
#[derive(Clone, Copy, Debug)]
pub enum Cred<'a> {
    Nobody,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

/// The superuser `admin` with its password.
pub const ADMIN: Cred<'static> = Cred::Basic(ADMIN_USER, ADMIN_PASSWORD);

/// A `/api/v1` request (`path` starts with `/`) with `cred` and, if given, a JSON body.
pub async fn api_call(s: &TestServer, method: Method, path: &str, cred: Cred<'_>, body: Option<&Value>) -> Response {
    let mut rb = s.client().request(method.clone(), s.url(path));
    rb = match cred {
        Cred::Nobody => rb,
        Cred::Basic(u, p) => rb.basic_auth(u, Some(p)),
        Cred::Bearer(t) => rb.header(AUTHORIZATION, format!("Bearer {t}")),
    };
    if let Some(b) = body {
        rb = rb.json(b);
    }
    rb.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// `api_call` that must answer `status`; returns the JSON body (`Null` when empty).
pub async fn api_expect(
    s: &TestServer,
    method: Method,
    path: &str,
    cred: Cred<'_>,
    body: Option<&Value>,
    status: u16,
) -> Value {
    let resp = api_call(s, method.clone(), path, cred, body).await;
    let got = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(got, status, "{method} {path} as {cred:?} with {body:?}: expected {status}, got {got}: {text}");
    if text.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: body is not JSON ({e}): {text}"))
}

/// Asserts a management API error: `status` with a JSON `{"error","message"}` body.
pub async fn api_error(s: &TestServer, method: Method, path: &str, cred: Cred<'_>, body: Option<&Value>, status: u16) {
    let json = api_expect(s, method.clone(), path, cred, body, status).await;
    assert!(
        json["error"].is_string() && json["message"].is_string(),
        "{method} {path}: error body must be {{\"error\",\"message\"}}: {json}"
    );
}

/// Creates a user through `POST /api/v1/users` as the superuser (asserts 201).
pub async fn api_user(s: &TestServer, name: &str, password: &str, role: &str) {
    let body = json!({"username": name, "password": password, "role": role});
    api_expect(s, Method::POST, "/api/v1/users", ADMIN, Some(&body), 201).await;
}

/// Runs `berth ARGS…` against this server's data dir; returns the process output.
pub async fn berth_cli(s: &TestServer, args: &[&str]) -> std::process::Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env("BERTH_DATA_DIR", s.data_dir())
        .current_dir(s.data_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn berth");
    tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("berth CLI timed out")
        .expect("berth CLI")
}

/// The granted actions of `name` in `token`, sorted (empty when there is no entry).
pub fn granted_sorted(token: &str, name: &str) -> Vec<String> {
    let mut a = granted(token, name).unwrap_or_default();
    a.sort();
    a
}

/// `berth gc ARGS` with every age set to 0 and the extra `env`; returns its report.
pub async fn gc_with(s: &TestServer, args: &[&str], env: &[(&str, &str)]) -> Value {
    // Rows are stamped in whole seconds and collected when strictly older.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("gc")
        .args(args)
        .env("BERTH_DATA_DIR", s.data_dir())
        .env("BERTH_GC__BLOB_GRACE_SECS", "0")
        .env("BERTH_GC__UPLOAD_TTL_SECS", "0")
        .env("BERTH_GC__EMPTY_COLLECTION_SECS", "0")
        .envs(env.iter().copied())
        .current_dir(s.data_dir())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run berth gc");
    assert!(out.status.success(), "berth gc failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("berth gc prints a JSON report")
}
