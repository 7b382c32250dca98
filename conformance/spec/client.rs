//! The suite's registry client: every request goes out without credentials first and, on
//! `401`, follows the `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge the way
//! the official conformance suite (and docker) do: `GET <realm>?service=…&scope=…` with Basic
//! auth as the superuser `admin`, then the same request again with `Authorization: Bearer`.
//!
//! Responses are read whole into a [`Reply`], so a test can assert on status, headers and
//! body in any order, and every failure message carries what was sent and what came back.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::common::{ADMIN_PASSWORD, ADMIN_USER, SERVICE, TestServer};

/// A berth server on a kernel-chosen port plus a challenge-following client for it.
pub struct Registry {
    server: TestServer,
    /// Bearer tokens already fetched, by the challenge's `scope` (`""` for none).
    tokens: Mutex<HashMap<String, String>>,
}

impl Registry {
    /// A fresh server over a fresh data dir (DESIGN §7 defaults, auth on).
    pub async fn start() -> Self {
        Self { server: TestServer::start().await, tokens: Mutex::new(HashMap::new()) }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// A request to `path`, which starts with `/` or is an absolute URL on this server.
    pub fn req(&self, method: Method, path: &str) -> Req<'_> {
        Req { reg: self, method, path: path.to_string(), headers: Vec::new(), body: None }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.req(Method::GET, path).send().await
    }

    pub async fn head(&self, path: &str) -> Reply {
        self.req(Method::HEAD, path).send().await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.req(Method::DELETE, path).send().await
    }

    /// The bearer token for a challenge, fetched once per distinct `scope`.
    async fn token_for(&self, challenge: &HashMap<String, String>) -> String {
        let scope = challenge.get("scope").cloned().unwrap_or_default();
        if let Some(t) = self.tokens.lock().expect("token cache").get(&scope) {
            return t.clone();
        }
        let realm = challenge.get("realm").unwrap_or_else(|| panic!("challenge without realm: {challenge:?}"));
        let service = challenge.get("service").unwrap_or_else(|| panic!("challenge without service: {challenge:?}"));
        let mut query = vec![("service", service.as_str())];
        if !scope.is_empty() {
            query.push(("scope", scope.as_str()));
        }
        let resp = self
            .server
            .client()
            .get(realm)
            .query(&query)
            .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {realm} failed: {e}"));
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(status, 200, "token request for scope {scope:?}: {body}");
        let json: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("token response is not JSON ({e}): {body}"));
        let token = json["token"]
            .as_str()
            .or_else(|| json["access_token"].as_str())
            .unwrap_or_else(|| panic!("no token in {body}"))
            .to_string();
        self.tokens.lock().expect("token cache").insert(scope, token.clone());
        token
    }
}

/// A request being built; [`Req::send`] performs it, following one auth challenge.
pub struct Req<'a> {
    reg: &'a Registry,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Req<'_> {
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// `Content-Type: application/octet-stream` and `body`, as blob uploads send them.
    pub fn octets(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", "application/octet-stream").body(body)
    }

    fn url(&self) -> String {
        if self.path.starts_with("http://") {
            self.path.clone()
        } else {
            format!("{}{}", self.reg.base_url(), self.path)
        }
    }

    async fn once(&self, token: Option<&str>) -> Reply {
        let mut rb = self.reg.server.client().request(self.method.clone(), self.url());
        for (k, v) in &self.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = &self.body {
            rb = rb.body(b.clone());
        }
        let what = format!("{} {}", self.method, self.path);
        let resp = rb.send().await.unwrap_or_else(|e| panic!("{what}: transport error {e}"));
        Reply {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.bytes().await.unwrap_or_else(|e| panic!("{what}: reading body: {e}")),
            what,
        }
    }

    /// Sends the request once, without credentials, and returns whatever came back.
    pub async fn send_anonymous(self) -> Reply {
        self.once(None).await
    }

    /// Sends the request with a token for `scope` fetched up front, as docker does for a
    /// mount (it asks for the source's `pull` before the first request).
    pub async fn send_scoped(self, scope: &str) -> Reply {
        let challenge = HashMap::from([
            ("realm".to_string(), format!("{}/token", self.reg.base_url())),
            ("service".to_string(), SERVICE.to_string()),
            ("scope".to_string(), scope.to_string()),
        ]);
        let token = self.reg.token_for(&challenge).await;
        self.once(Some(&token)).await
    }

    /// Sends the request; on a `401` with a Bearer challenge, gets a token and sends it again.
    pub async fn send(self) -> Reply {
        let first = self.once(None).await;
        if first.status != 401 {
            return first;
        }
        let challenge = first.challenge();
        let token = self.reg.token_for(&challenge).await;
        self.once(Some(&token)).await
    }
}

/// A response read whole.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `METHOD path`, for failure messages.
    pub what: String,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(2000).collect();
        write!(f, "{} -> {}\nheaders: {:?}\nbody: {body}", self.what, self.status, self.headers)
    }
}

impl Reply {
    /// A header's value (the first one) as a string.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().expect("header is ASCII").to_string())
    }

    /// Every value of a header, comma-separated lists split and trimmed.
    pub fn header_list(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .flat_map(|v| {
                v.to_str().expect("header is ASCII").split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// A header that must be present.
    pub fn must_header(&self, name: &str) -> String {
        self.header(name).unwrap_or_else(|| panic!("missing header {name}: {self:?}"))
    }

    /// Asserts the status; hands the reply back.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "unexpected status: {self:?}");
        self
    }

    /// Asserts a header's exact value.
    #[track_caller]
    pub fn expect_header(&self, name: &str, value: &str) -> &Self {
        assert_eq!(self.header(name).as_deref(), Some(value), "header {name}: {self:?}");
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:?}"))
    }

    /// Asserts `status` and the spec's error body `{"errors":[{"code": code, …}]}`
    /// (spec "Error Codes": a JSON 4XX body MUST have that shape, `code` in upper case and
    /// underscores). HEAD replies have no body; then only the status is checked.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "expected {status} {code}: {self:?}");
        if self.what.starts_with("HEAD ") {
            assert!(self.body.is_empty(), "HEAD reply with a body: {self:?}");
            return;
        }
        let codes = self.error_codes();
        assert!(codes.iter().any(|c| c == code), "expected error code {code}, got {codes:?}: {self:?}");
    }

    /// The codes of a spec error body, checking its shape.
    #[track_caller]
    pub fn error_codes(&self) -> Vec<String> {
        let json = self.json();
        let errors =
            json["errors"].as_array().unwrap_or_else(|| panic!("error body without an \"errors\" array: {self:?}"));
        assert!(!errors.is_empty(), "empty \"errors\" array: {self:?}");
        errors
            .iter()
            .map(|e| {
                let code = e["code"].as_str().unwrap_or_else(|| panic!("error without a string code: {self:?}"));
                assert!(
                    !code.is_empty() && code.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                    "code {code:?} is not upper case and underscores: {self:?}"
                );
                if let Some(m) = e.get("message") {
                    assert!(m.is_string(), "message is not a string: {self:?}");
                }
                code.to_string()
            })
            .collect()
    }

    /// The Bearer challenge of a 401, parsed (keys lower-cased), checked for realm/service.
    #[track_caller]
    pub fn challenge(&self) -> HashMap<String, String> {
        let value = self.must_header("www-authenticate");
        let c = parse_challenge(&value).unwrap_or_else(|| panic!("challenge is not Bearer: {value:?}: {self:?}"));
        assert!(c.contains_key("realm"), "challenge without realm: {value}");
        assert!(c.contains_key("service"), "challenge without service: {value}");
        c
    }

    /// The `Location` header as a path on this server (absolute URLs are stripped of
    /// scheme and host, as the spec lets a registry answer either).
    pub fn location(&self) -> String {
        let loc = self.must_header("location");
        match loc.strip_prefix("http://") {
            Some(rest) => rest.find('/').map(|i| rest[i..].to_string()).unwrap_or_else(|| "/".into()),
            None => loc,
        }
    }
}

/// Appends `query` (already encoded, without `?`) to a location that may carry a query.
pub fn with_query(location: &str, query: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}{query}")
}

/// `Bearer k="v",k2=v2` → map (the shared parser of tests/it/common); `None` unless the
/// scheme is Bearer.
pub fn parse_challenge(value: &str) -> Option<HashMap<String, String>> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| crate::common::parse_challenge(&format!("Bearer {rest}")))
}
