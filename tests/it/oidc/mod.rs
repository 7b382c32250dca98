//! Sign-in with OpenID Connect (`[[auth.oidc]]`, docs/oidc.md) against a real provider:
//! npm's certified `oidc-provider`, started by each test with Node on a loopback port
//! ([`provider`]). The happy path runs in headless Chromium (click "Sign in with …", the
//! provider's login and consent pages, back in berth signed in), then the API token made
//! on the token page is used by `docker login` (the page's command) and a real `docker
//! push` into a collection the user's provider group owns (a private dockerd, [`docker`]),
//! and by podman and skopeo. The refusals go through the flow by hand over HTTP (a cookie
//! jar, the provider's interaction pages followed as a browser would): a wrong, missing or
//! replayed `state`, an ID token for another audience and an expired one, a user
//! deactivated here; groups → teams and roles at each login; a provider that is down.

mod docker;
mod provider;

use std::collections::HashMap;

use berth::config::{Config, OidcConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    browser::Browser,
    common::*,
    ldap::clients::{podman_login, skopeo_push},
};
use docker::Dockerd;
use provider::{CLIENT_SECRET, OidcProvider, free_port, skipped};

/// berth's providers, all at the test provider: `dev` (client `berth`), `foreign` (whose
/// ID tokens come for another audience) and `expired` (whose ID tokens expired).
const PROVIDERS: [(&str, &str); 3] = [("dev", "berth"), ("foreign", "berth-foreign"), ("expired", "berth-expired")];

fn use_provider(c: &mut Config, issuer: &str) {
    c.auth.oidc = PROVIDERS
        .iter()
        .map(|(name, client)| OidcConfig {
            name: (*name).into(),
            display_name: if *name == "dev" { "Dev ID".into() } else { String::new() },
            issuer: issuer.into(),
            client_id: (*client).into(),
            client_secret: CLIENT_SECRET.into(),
            team_groups: vec!["team-*".into()],
            admin_groups: vec!["registry-admins".into()],
            ..OidcConfig::default()
        })
        .collect();
}

/// berth with the three providers, and the provider knowing berth's redirect URIs.
async fn start(accounts: &[(&str, &[&str])]) -> Option<(TestServer, OidcProvider)> {
    if skipped() {
        return None;
    }
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let s = TestServer::start_with(move |c| use_provider(c, &issuer)).await;
    let redirects: Vec<String> = PROVIDERS.iter().map(|(n, _)| s.url(&format!("/ui/oidc/{n}/callback"))).collect();
    let p = OidcProvider::start(port, &redirects, accounts).await;
    Some((s, p))
}

/// A browser by hand: no automatic redirects, and one cookie jar for berth and the
/// provider (both on 127.0.0.1; their cookie names differ).
struct Agent {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Agent {
    fn new() -> Agent {
        let http =
            reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Agent { http, cookies: HashMap::new() }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> reqwest::Response {
        let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let req = if cookie.is_empty() { req } else { req.header("cookie", cookie.join("; ")) };
        let resp = req.send().await.expect("request");
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().expect("ascii cookie");
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            let gone = value.is_empty() || attrs.contains("Max-Age=0") || attrs.contains("1970");
            if gone {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        resp
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let req = self.http.get(url);
        self.send(req).await
    }

    fn has(&self, cookie: &str) -> bool {
        self.cookies.contains_key(cookie)
    }
}

/// The `Location` of a redirect, resolved against the URL that answered.
fn location(resp: &reqwest::Response, base: &str) -> String {
    let loc = header(resp, "location").unwrap_or_else(|| panic!("{} from {base} without Location", resp.status()));
    url::Url::parse(base).and_then(|b| b.join(&loc)).expect("location URL").to_string()
}

/// The value of the first `attr="…"` after `after` in a page.
fn attr_after(html: &str, after: &str, attr: &str) -> String {
    let from = html.find(after).map_or(html, |i| &html[i..]);
    let start = from.find(&format!("{attr}=\"")).unwrap_or_else(|| panic!("no {attr} in {html}")) + attr.len() + 2;
    from[start..].split('"').next().expect("quoted").replace("&amp;", "&")
}

/// Starts a sign-in at berth with provider `name` and goes through the provider's login
/// (as `user`, any password) and consent pages, as a browser would; returns the URL the
/// provider sends the browser back to (berth's callback with `code` and `state`), not yet
/// visited.
async fn through_provider(a: &mut Agent, s: &TestServer, name: &str, user: &str) -> String {
    let start = s.url(&format!("/ui/oidc/{name}/start?next=/ui/teams"));
    let resp = a.get(&start).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "start: {}", resp.text().await.unwrap_or_default());
    assert!(a.has("berth_oidc"), "start sets the pending sign-in's cookie");
    let mut url = location(&resp, &start);
    for _ in 0..12 {
        if url.starts_with(&s.base_url()) {
            return url;
        }
        let resp = a.get(&url).await;
        if resp.status().is_redirection() {
            url = location(&resp, &url);
            continue;
        }
        let status = resp.status();
        let html = resp.text().await.expect("page");
        assert_eq!(status, StatusCode::OK, "provider page {url}: {html}");
        let action = url::Url::parse(&url).unwrap().join(&attr_after(&html, "<form", "action")).unwrap();
        let fields: Vec<(&str, &str)> = match attr_after(&html, "name=\"prompt\"", "value").as_str() {
            "login" => vec![("prompt", "login"), ("login", user), ("password", "any")],
            "consent" => vec![("prompt", "consent")],
            other => panic!("unexpected provider prompt {other:?}: {html}"),
        };
        let req = a.http.post(action.as_str()).form(&fields);
        let resp = a.send(req).await;
        assert!(resp.status().is_redirection(), "posting the {} form: {}", fields[0].1, resp.status());
        url = location(&resp, action.as_str());
    }
    panic!("the provider never sent the browser back to berth (last URL {url})");
}

/// The whole sign-in: through the provider and back; asserts berth signed the user in and
/// sent them on to the `next` page.
async fn sign_in(a: &mut Agent, s: &TestServer, user: &str) {
    let callback = through_provider(a, s, "dev", user).await;
    let resp = a.get(&callback).await;
    let status = resp.status();
    let to = header(&resp, "location");
    assert_eq!(status, StatusCode::SEE_OTHER, "callback: {}", resp.text().await.unwrap_or_default());
    assert_eq!(to.as_deref(), Some("/ui/teams"), "on to next");
    assert!(a.has("berth_session") && !a.has("berth_oidc"), "a session; the pending sign-in spent: {:?}", a.cookies);
}

async fn user(s: &TestServer, name: &str) -> Option<Value> {
    let all = api_expect(s, Method::GET, "/api/v1/users", ADMIN, None, 200).await;
    all.as_array().unwrap().iter().find(|u| u["username"] == name).cloned()
}

async fn team_members(s: &TestServer, team: &str) -> Vec<String> {
    let t = api_expect(s, Method::GET, &format!("/api/v1/teams/{team}"), ADMIN, None, 200).await;
    t["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect()
}

/// Visits a callback URL; asserts a refusal with `status` whose page says `reason`, and
/// no session.
async fn refused(a: &mut Agent, url: &str, status: u16, reason: &str) {
    let resp = a.get(url).await;
    assert_eq!(resp.status().as_u16(), status, "{url}");
    let page = resp.text().await.unwrap();
    assert!(page.contains(reason), "refusal page should say {reason:?}: {page}");
    assert!(!a.has("berth_session"), "no session after a refusal");
}

#[tokio::test]
async fn groups_become_teams_and_roles_at_each_login() {
    let Some((s, p)) = start(&[("alice", &["team-devs", "registry-admins", "other"])]).await else { return };
    assert!(user(&s, "alice").await.is_none());
    sign_in(&mut Agent::new(), &s, "alice").await;
    let alice = user(&s, "alice").await.expect("the first sign-in creates alice");
    assert_eq!(alice["role"], "admin", "registry-admins grants admin: {alice}");
    assert_eq!(team_members(&s, "team-devs").await, ["alice"]);
    api_expect(&s, Method::GET, "/api/v1/teams/other", ADMIN, None, 404).await;
    // A provider-managed team refuses hand edits, like an LDAP one.
    api_expect(&s, Method::PUT, "/api/v1/teams/team-devs/members/admin", ADMIN, None, 409).await;

    // The provider moves alice: out of team-devs and the admins, into team-ops.
    p.set_accounts(&[("alice", &["team-ops"])]);
    sign_in(&mut Agent::new(), &s, "alice").await;
    assert_eq!(user(&s, "alice").await.unwrap()["role"], "user");
    assert_eq!(team_members(&s, "team-devs").await, Vec::<String>::new(), "left team-devs at the next login");
    assert_eq!(team_members(&s, "team-ops").await, ["alice"]);

    // No local password: a password login for alice fails cleanly, the form too.
    assert_eq!(s.token_response(Some(("alice", "any")), &[]).await.status(), 401);
}

#[tokio::test]
async fn wrong_missing_and_replayed_state_are_refused() {
    let Some((s, _p)) = start(&[("alice", &["team-devs"])]).await else { return };
    let mut a = Agent::new();
    let callback = through_provider(&mut a, &s, "dev", "alice").await;
    let mut wrong = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = wrong.query_pairs().into_owned().collect();
    let code = pairs.iter().find(|(k, _)| k == "code").map(|(_, v)| v.clone()).expect("code");
    wrong.query_pairs_mut().clear().append_pair("code", &code).append_pair("state", "forged-state");
    refused(&mut a, wrong.as_str(), 400, "state does not match").await;
    assert!(user(&s, "alice").await.is_none(), "a refused callback creates no user");
    // The refusal spent the pending sign-in: the right state no longer helps.
    refused(&mut a, &callback, 400, "not started in this browser").await;

    // Login CSRF: another browser (no pending sign-in) handed a victim's callback.
    let mut b = Agent::new();
    let callback = through_provider(&mut b, &s, "dev", "alice").await;
    let mut victim = Agent::new();
    refused(&mut victim, &callback, 400, "not started in this browser").await;
    // Missing state, in the browser that started.
    let pending = b.cookies.get("berth_oidc").cloned().expect("pending sign-in");
    let mut missing = url::Url::parse(&callback).unwrap();
    let code = missing.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).unwrap();
    missing.query_pairs_mut().clear().append_pair("code", &code);
    refused(&mut b, missing.as_str(), 400, "state does not match").await;
    assert!(user(&s, "alice").await.is_none());

    // A replay: the callback that signed in, again, even with a saved copy of the pending
    // cookie: the provider takes each code once.
    let mut c = Agent::new();
    let callback = through_provider(&mut c, &s, "dev", "alice").await;
    let saved = c.cookies.get("berth_oidc").cloned().unwrap();
    let resp = c.get(&callback).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(user(&s, "alice").await.is_some());
    let mut replay = Agent::new();
    refused(&mut replay, &callback, 400, "not started in this browser").await;
    replay.cookies.insert("berth_oidc".into(), saved);
    refused(&mut replay, &callback, 400, "refused the code").await;
    // And the other browser's old pending cookie for the first code: refused too.
    let mut old = Agent::new();
    old.cookies.insert("berth_oidc".into(), pending);
    refused(&mut old, &callback, 400, "state does not match").await;
}

#[tokio::test]
async fn foreign_audience_and_expired_id_tokens_are_refused() {
    let Some((s, p)) = start(&[("mallory", &["team-devs"])]).await else { return };
    for (provider, reason) in [("foreign", "InvalidAudience"), ("expired", "ExpiredSignature")] {
        let mut a = Agent::new();
        let callback = through_provider(&mut a, &s, provider, "mallory").await;
        refused(&mut a, &callback, 400, reason).await;
        assert!(user(&s, "mallory").await.is_none(), "{provider}: no user");
        api_expect(&s, Method::GET, "/api/v1/teams/team-devs", ADMIN, None, 404).await;
    }
    assert!(!p.log().contains("server_error"), "the provider itself did fine: {}", p.log());
}

#[tokio::test]
async fn a_user_deactivated_here_is_refused() {
    let Some((s, _p)) = start(&[("dora", &[])]).await else { return };
    sign_in(&mut Agent::new(), &s, "dora").await;
    api_expect(&s, Method::PATCH, "/api/v1/users/dora", ADMIN, Some(&json!({"active": false})), 200).await;
    let mut a = Agent::new();
    let callback = through_provider(&mut a, &s, "dev", "dora").await;
    refused(&mut a, &callback, 403, "may not sign in here").await;
    // A local account holding the provider user's name is never taken over either.
    api_user(&s, "lena", "lena-password-1", "user").await;
    let mut a = Agent::new();
    let callback = through_provider(&mut a, &s, "dev", "lena").await;
    refused(&mut a, &callback, 403, "may not sign in here").await;
}

#[tokio::test]
async fn a_provider_that_is_down_answers_503_and_local_logins_work() {
    if skipped() {
        return;
    }
    let issuer = format!("http://127.0.0.1:{}", free_port());
    let s = TestServer::start_with(move |c| use_provider(c, &issuer)).await;
    let mut a = Agent::new();
    let login = a.get(&s.url("/ui/login")).await;
    let page = login.text().await.unwrap();
    assert!(page.contains(r#"<a class="oidc-login" href="/ui/oidc/dev/start">Sign in with Dev ID</a>"#), "{page}");
    assert!(page.contains("id=\"login-form\""), "local logins stay on: the password form is there");
    let resp = a.get(&s.url("/ui/oidc/dev/start")).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.text().await.unwrap().contains("Dev ID does not answer"));
    assert!(!a.has("berth_oidc"), "nothing pending");
    let resp = a.get(&s.url("/ui/oidc/nope/start")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "an unknown provider");

    // The local admin signs in with the password form meanwhile.
    let csrf = attr_after(&page, "name=\"csrf\"", "value");
    let form = [("csrf", csrf.as_str()), ("username", ADMIN_USER), ("password", ADMIN_PASSWORD)];
    let req = a.http.post(s.url("/ui/login")).form(&form);
    let resp = a.send(req).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(a.has("berth_session"));

    // Local passwords off and no directory: the page offers the providers only.
    let issuer = format!("http://127.0.0.1:{}", free_port());
    let s = TestServer::start_with(move |c| {
        use_provider(c, &issuer);
        c.auth.local_logins = false;
    })
    .await;
    let page = Agent::new().get(&s.url("/ui/login?next=/ui/teams")).await.text().await.unwrap();
    assert!(page.contains(r#"href="/ui/oidc/dev/start?next=%2Fui%2Fteams">Sign in with Dev ID"#), "{page}");
    assert!(!page.contains("login-form"), "no password form that could sign no one in: {page}");
}

#[tokio::test]
async fn a_provider_going_down_mid_sign_in_answers_503() {
    let Some((s, p)) = start(&[("alice", &["team-devs"])]).await else { return };
    let mut a = Agent::new();
    let callback = through_provider(&mut a, &s, "dev", "alice").await;
    drop(p);
    // Discovery is cached; the token endpoint does not answer.
    refused(&mut a, &callback, 503, "Dev ID does not answer").await;
    assert!(user(&s, "alice").await.is_none());
}

/// The happy path in Chromium, then the API token from the token page: the page's
/// `docker login` command as shown, a real `docker push` into the collection alice's
/// provider group owns; podman and skopeo too.
#[tokio::test]
async fn browser_sign_in_then_push_with_a_ui_token() {
    let Some((s, p)) = start(&[("alice", &["team-devs"])]).await else { return };
    let Some(b) = Browser::start().await else { return };
    b.goto(&s.url("/ui/login")).await;
    b.follow("a.oidc-login").await;
    // The provider's development login page, then its consent page.
    let on_provider = b.client().current_url().await.unwrap();
    assert_eq!(on_provider.port(), Some(p.port), "at the provider: {on_provider}");
    b.submit_form("form", &[("login", "alice"), ("password", "anything")]).await;
    let form = b.find("form").await;
    b.click_submit(&form).await;
    assert_eq!(b.path().await, "/ui/", "back in berth: {}", b.main_text().await);
    assert!(b.body_text().await.contains("alice"), "signed in as alice: {}", b.body_text().await);
    let alice = user(&s, "alice").await.expect("alice was created");
    assert_eq!(alice["role"], "user");
    assert_eq!(team_members(&s, "team-devs").await, ["alice"]);

    // The admin gives the team a private collection; alice makes a token in the UI.
    api_expect(&s, Method::POST, "/api/v1/collections", ADMIN, Some(&json!({"name": "devs", "private": true})), 201)
        .await;
    let owner = json!({"role": "owner"});
    api_expect(&s, Method::PUT, "/api/v1/collections/devs/members/teams/team-devs", ADMIN, Some(&owner), 200).await;
    b.goto(&s.url("/ui/tokens")).await;
    b.submit_form("#create-token-form", &[("name", "laptop"), ("expires_in_days", ""), ("read_only", "off")]).await;
    let secret = b.text("#token-secret").await;
    let docker_login = b.text("#docker-login").await;
    assert_eq!(docker_login, format!("docker login {} -u alice --password-stdin", s.addr()));
    b.close().await;

    // The ready command, run as shown with the token on stdin, then a real docker push.
    let docker = Dockerd::start().await;
    let registry = s.addr().to_string();
    let args: Vec<&str> = docker_login.split_whitespace().skip(1).collect();
    let out = docker.docker(&args, Some("not-the-token")).await;
    assert!(!out.status.success(), "docker login with a wrong token must fail");
    let out = docker.docker(&args, Some(&secret)).await;
    assert!(out.status.success(), "docker login with the UI token: {}", String::from_utf8_lossy(&out.stderr));
    let rootfs = docker.dir().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::write(rootfs.join("hello.txt"), test_bytes(50_000, 12)).unwrap();
    let tar = docker.dir().join("rootfs.tar");
    let ok = std::process::Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".").status().unwrap();
    assert!(ok.success(), "tar");
    let image = format!("{registry}/devs/app:1");
    let out = docker.docker(&["import", tar.to_str().unwrap(), &image], None).await;
    assert!(out.status.success(), "docker import: {}", String::from_utf8_lossy(&out.stderr));
    let out = docker.docker(&["push", &image], None).await;
    assert!(out.status.success(), "docker push: {}", String::from_utf8_lossy(&out.stderr));
    let pushed = String::from_utf8_lossy(&out.stdout).split("digest: ").nth(1).map(|r| r[..71].to_owned());
    let token = s.token(Some(("alice", &secret)), &["repository:devs/app:pull"]).await;
    let got = expect_status(s.get("/v2/devs/app/manifests/1", Some(&token)).await, 200, "manifest docker pushed").await;
    assert_eq!(header(&got, "docker-content-digest"), pushed, "the digest docker reported");

    // podman and skopeo take the token the same way.
    podman_login(&s, "alice", &secret, true).await;
    skopeo_push(&s, "alice", &secret, "devs/tool:1").await;
    let token = s.token(Some(("alice", &secret)), &["repository:devs/tool:pull"]).await;
    expect_status(s.get("/v2/devs/tool/manifests/1", Some(&token)).await, 200, "manifest pushed by skopeo").await;
}
