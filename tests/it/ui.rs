//! The web interface over HTTP (docs/ui.md): sign-in, cookie and session lifetime, CSRF,
//! the login throttle shared with `/token`, escaping, security headers, and the manage
//! flows, each checked against what the API then reports. `ui_privacy` holds the
//! per-page privacy matrix.

use reqwest::{Method, Response, header};
use serde_json::json;

use crate::common::*;

/// A browser's view of the interface: a session cookie (if signed in) and its CSRF secret.
pub struct Browser<'a> {
    pub s: &'a TestServer,
    pub cookie: Option<String>,
    pub csrf: String,
}

/// The value of the first `name="csrf"` input of a page.
pub fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").map(|i| i + 19).unwrap_or_else(|| panic!("no csrf in {html}"));
    html[start..].split('"').next().unwrap_or_default().to_owned()
}

/// `name=value` of a `Set-Cookie` header for `name`, and the whole header.
pub fn set_cookie(r: &Response, name: &str) -> Option<(String, String)> {
    headers_all(r, "set-cookie").into_iter().find(|c| c.starts_with(&format!("{name}="))).map(|c| {
        let value = c.split(';').next().unwrap_or_default().to_owned();
        (value, c)
    })
}

impl<'a> Browser<'a> {
    pub fn anonymous(s: &'a TestServer) -> Browser<'a> {
        Browser { s, cookie: None, csrf: String::new() }
    }

    /// The login form's response and its double-submit cookie and field.
    pub async fn login_form(s: &TestServer) -> (String, String) {
        let r = s.client().get(s.url("/ui/login")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let (cookie, _) = set_cookie(&r, "berth_login").expect("berth_login cookie");
        let body = r.text().await.unwrap();
        assert!(body.contains("id=\"login-form\""), "{body}");
        (cookie, csrf_of(&body))
    }

    /// POSTs the login form as a browser would (after loading it).
    pub async fn try_login(s: &TestServer, user: &str, password: &str) -> Response {
        let (cookie, csrf) = Self::login_form(s).await;
        s.client()
            .post(s.url("/ui/login"))
            .header(header::COOKIE, cookie)
            .form(&[("csrf", csrf.as_str()), ("username", user), ("password", password)])
            .send()
            .await
            .unwrap()
    }

    pub async fn login(s: &'a TestServer, user: &str, password: &str) -> Browser<'a> {
        let r = Self::try_login(s, user, password).await;
        assert_eq!(r.status(), 303, "login as {user}");
        let (cookie, _) = set_cookie(&r, "berth_session").expect("session cookie");
        let mut b = Browser { s, cookie: Some(cookie), csrf: String::new() };
        let (status, body) = b.get("/ui/").await;
        assert_eq!(status, 200);
        b.csrf = csrf_of(&body);
        b
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self.s.client().request(method, self.s.url(path));
        if let Some(c) = &self.cookie {
            rb = rb.header(header::COOKIE, c);
        }
        rb
    }

    pub async fn get_response(&self, path: &str) -> Response {
        self.req(Method::GET, path).header(header::ACCEPT, "text/html").send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self.get_response(path).await;
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// A form post with this session's CSRF secret.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut f: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        f.extend_from_slice(fields);
        self.post_raw(path, &f).await
    }

    /// A form post exactly as given (no CSRF field added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.req(Method::POST, path).form(fields).send().await.unwrap()
    }
}

pub fn location(r: &Response) -> String {
    header(r, "location").unwrap_or_default()
}

async fn user(s: &TestServer, name: &str, role: &str) {
    api_user(s, name, &format!("{name}-pw"), role).await;
}

#[tokio::test]
async fn sign_in_sets_a_session_cookie_and_sign_out_ends_it() {
    let s = TestServer::start().await;
    let r = Browser::try_login(&s, ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/ui/");
    let (cookie, full) = set_cookie(&r, "berth_session").expect("session cookie");
    for attr in ["Path=/ui", "Max-Age=43200", "HttpOnly", "SameSite=Lax"] {
        assert!(full.contains(attr), "{attr} missing in {full}");
    }
    assert!(!full.contains("Secure"), "plain HTTP: no Secure flag: {full}");
    let b = Browser { s: &s, cookie: Some(cookie.clone()), csrf: String::new() };
    let (status, body) = b.get("/ui/tokens").await;
    assert_eq!(status, 200);
    assert!(body.contains("id=\"logout-form\"") && body.contains("Signed in as <strong>admin</strong>"));
    let b = Browser { csrf: csrf_of(&body), ..b };

    let out = b.post("/ui/logout", &[]).await;
    assert_eq!(out.status(), 303);
    assert_eq!(location(&out), "/ui/login");
    let (_, cleared) = set_cookie(&out, "berth_session").expect("cleared cookie");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie no longer opens anything, nor can it post.
    let r = b.get_response("/ui/tokens").await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/ui/login"), "{}", location(&r));
    let r = b.post("/ui/collections", &[("name", "after-logout")]).await;
    assert_eq!(r.status(), 403);
    api_expect(&s, Method::GET, "/api/v1/collections/after-logout", ADMIN, None, 404).await;
}

#[tokio::test]
async fn secure_cookie_behind_an_https_public_url_and_configured_lifetime() {
    let s = TestServer::start_with(|c| {
        c.public_url = Some("https://registry.example.test".into());
        c.ui.session_ttl_secs = 600;
    })
    .await;
    let r = Browser::try_login(&s, ADMIN_USER, ADMIN_PASSWORD).await;
    let (_, full) = set_cookie(&r, "berth_session").expect("session cookie");
    assert!(full.contains("; Secure") && full.contains("Max-Age=600"), "{full}");
}

#[tokio::test]
async fn bad_credentials_show_the_form_again_and_open_nothing() {
    let s = TestServer::start().await;
    let r = Browser::try_login(&s, ADMIN_USER, "wrong").await;
    assert_eq!(r.status(), 401);
    assert!(set_cookie(&r, "berth_session").is_none());
    let body = r.text().await.unwrap();
    assert!(body.contains("id=\"login-form\"") && body.contains("Invalid username or password"), "{body}");
    // An unknown user reads the same.
    let r = Browser::try_login(&s, "nobody", "wrong").await;
    assert_eq!(r.status(), 401);
    // An API token is not a browser password.
    let t = api_expect(&s, Method::POST, "/api/v1/tokens", ADMIN, Some(&json!({"name": "t"})), 201).await;
    let r = Browser::try_login(&s, ADMIN_USER, t["token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 401);
    assert!(set_cookie(&r, "berth_session").is_none());
}

#[tokio::test]
async fn login_form_needs_its_double_submit_secret() {
    let s = TestServer::start().await;
    let creds = [("username", ADMIN_USER), ("password", ADMIN_PASSWORD)];
    // A cross-site post has neither the cookie nor a matching field.
    let mut f = vec![("csrf", "forged")];
    f.extend_from_slice(&creds);
    let r = s.client().post(s.url("/ui/login")).form(&f).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(set_cookie(&r, "berth_session").is_none());
    let (cookie, _) = Browser::login_form(&s).await;
    let r = s.client().post(s.url("/ui/login")).header(header::COOKIE, cookie).form(&f).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(set_cookie(&r, "berth_session").is_none());
}

#[tokio::test]
async fn next_stays_on_the_interface() {
    let s = TestServer::start().await;
    for (next, expected) in
        [("/ui/teams", "/ui/teams"), ("//evil.example/x", "/ui/"), ("https://evil.example/", "/ui/")]
    {
        let (cookie, csrf) = Browser::login_form(&s).await;
        let r = s
            .client()
            .post(s.url("/ui/login"))
            .header(header::COOKIE, cookie)
            .form(&[("csrf", csrf.as_str()), ("username", ADMIN_USER), ("password", ADMIN_PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), expected, "next={next}");
    }
}

#[tokio::test]
async fn forms_without_a_valid_csrf_secret_change_nothing() {
    let s = TestServer::start().await;
    api_expect(&s, Method::POST, "/api/v1/collections", ADMIN, Some(&json!({"name": "lab"})), 201).await;
    user(&s, "carl", "user").await;
    let b = Browser::login(&s, ADMIN_USER, ADMIN_PASSWORD).await;
    let attempts: [(&str, Vec<(&str, &str)>); 5] = [
        ("/ui/collections", vec![("name", "forged")]),
        ("/ui/c/lab/visibility", vec![("private", "on")]),
        ("/ui/c/lab/members", vec![("kind", "user"), ("name", "carl"), ("role", "owner")]),
        ("/ui/tokens", vec![("name", "forged")]),
        ("/ui/users", vec![("username", "mallory"), ("password", "pw"), ("role", "superuser")]),
    ];
    for (path, fields) in &attempts {
        let r = b.post_raw(path, fields).await;
        assert_eq!(r.status(), 403, "{path} without csrf");
        let mut wrong = vec![("csrf", "not-the-secret")];
        wrong.extend_from_slice(fields);
        let r = b.post_raw(path, &wrong).await;
        assert_eq!(r.status(), 403, "{path} with a wrong csrf");
        // Another session's secret is no better.
        let other = Browser::login(&s, ADMIN_USER, ADMIN_PASSWORD).await;
        let mut theirs = vec![("csrf", other.csrf.as_str())];
        theirs.extend_from_slice(fields);
        assert_eq!(b.post_raw(path, &theirs).await.status(), 403, "{path} with another session's csrf");
    }
    api_expect(&s, Method::GET, "/api/v1/collections/forged", ADMIN, None, 404).await;
    let lab = api_expect(&s, Method::GET, "/api/v1/collections/lab", ADMIN, None, 200).await;
    assert_eq!(lab["private"], false);
    assert_eq!(lab["owners"], json!([{"user": "admin"}]));
    assert_eq!(lab["contributors"], json!([]));
    let tokens = api_expect(&s, Method::GET, "/api/v1/tokens", ADMIN, None, 200).await;
    assert_eq!(tokens, json!([]));
    api_expect(&s, Method::GET, "/api/v1/users?n=1000", ADMIN, None, 200)
        .await
        .as_array()
        .unwrap()
        .iter()
        .for_each(|u| assert_ne!(u["username"], "mallory"));
    // The same post with the secret goes through.
    let r = b.post("/ui/c/lab/visibility", &[("private", "on")]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(api_expect(&s, Method::GET, "/api/v1/collections/lab", ADMIN, None, 200).await["private"], true);
}

/// Fails `user`'s login (in the interface or at `/token`) until 9 failures are recorded,
/// waiting out the shorter blocks on the way, so the account is then blocked for 8 s.
async fn fail_until_blocked(s: &TestServer, user: &str, via_ui: bool) {
    let mut failures = 0;
    while failures < 9 {
        let r = if via_ui {
            Browser::try_login(s, user, "wrong").await
        } else {
            s.token_response(Some((user, "wrong")), &[]).await
        };
        match r.status().as_u16() {
            401 => failures += 1,
            429 => {
                let secs: u64 = header(&r, "retry-after").and_then(|v| v.parse().ok()).expect("Retry-After");
                tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
            }
            other => panic!("failed login of {user}: {other}"),
        }
    }
}

#[tokio::test]
async fn the_login_throttle_is_shared_with_the_token_endpoint() {
    let s = TestServer::start().await;
    user(&s, "tina", "user").await;
    user(&s, "ursula", "user").await;
    // Failures at /token block the interface's sign-in...
    fail_until_blocked(&s, "tina", false).await;
    let r = Browser::try_login(&s, "tina", "tina-pw").await;
    assert_eq!(r.status(), 429, "the right password while blocked");
    assert!(header(&r, "retry-after").is_some());
    assert!(set_cookie(&r, "berth_session").is_none());
    let body = r.text().await.unwrap();
    assert!(body.contains("id=\"login-form\"") && body.contains("Too many failed sign-ins"), "{body}");
    // ... and failures in the interface block /token.
    fail_until_blocked(&s, "ursula", true).await;
    let r = s.token_response(Some(("ursula", "ursula-pw")), &[]).await;
    assert_eq!(r.status(), 429);
}

#[tokio::test]
async fn a_deactivated_or_repassworded_user_loses_their_session() {
    let s = TestServer::start().await;
    user(&s, "dora", "user").await;
    user(&s, "pete", "user").await;
    let dora = Browser::login(&s, "dora", "dora-pw").await;
    let pete = Browser::login(&s, "pete", "pete-pw").await;
    assert_eq!(dora.get("/ui/tokens").await.0, 200);
    api_expect(&s, Method::PATCH, "/api/v1/users/dora", ADMIN, Some(&json!({"active": false})), 200).await;
    let r = dora.get_response("/ui/tokens").await;
    assert_eq!(r.status(), 303, "deactivated");
    assert_eq!(dora.post("/ui/tokens", &[("name", "x")]).await.status(), 403);
    // Reactivation does not bring the session back.
    api_expect(&s, Method::PATCH, "/api/v1/users/dora", ADMIN, Some(&json!({"active": true})), 200).await;
    assert_eq!(dora.get_response("/ui/tokens").await.status(), 303, "reactivated");
    // A password set by the superuser ends the session too.
    api_expect(&s, Method::PATCH, "/api/v1/users/pete", ADMIN, Some(&json!({"password": "new-pw"})), 200).await;
    assert_eq!(pete.get_response("/ui/tokens").await.status(), 303, "password changed");
    let again = Browser::login(&s, "pete", "new-pw").await;
    assert_eq!(again.get("/ui/tokens").await.0, 200);
}

#[tokio::test]
async fn own_password_change_keeps_this_browser_and_ends_the_others() {
    let s = TestServer::start().await;
    user(&s, "ann", "user").await;
    let here = Browser::login(&s, "ann", "ann-pw").await;
    let elsewhere = Browser::login(&s, "ann", "ann-pw").await;
    // A wrong current password changes nothing.
    let r = here.post("/ui/account/password", &[("current_password", "nope"), ("new_password", "x")]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(s.token_response(Some(("ann", "ann-pw")), &[]).await.status(), 200);
    let r = here.post("/ui/account/password", &[("current_password", "ann-pw"), ("new_password", "ann-new")]).await;
    assert_eq!(r.status(), 303);
    let (fresh, _) = set_cookie(&r, "berth_session").expect("a fresh session");
    assert_eq!(elsewhere.get_response("/ui/account").await.status(), 303);
    assert_eq!(here.get_response("/ui/account").await.status(), 303, "the old cookie of this browser too");
    let renewed = Browser { s: &s, cookie: Some(fresh), csrf: String::new() };
    assert_eq!(renewed.get("/ui/account").await.0, 200);
    assert_eq!(s.token_response(Some(("ann", "ann-pw")), &[]).await.status(), 401);
    assert_eq!(s.token_response(Some(("ann", "ann-new")), &[]).await.status(), 200);
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_no_inline_script() {
    let s = TestServer::start().await;
    let admin = Browser::login(&s, ADMIN_USER, ADMIN_PASSWORD).await;
    let anon = Browser::anonymous(&s);
    for (b, path) in [
        (&anon, "/ui/"),
        (&anon, "/ui/login"),
        (&anon, "/ui/c/absent"),
        (&admin, "/ui/"),
        (&admin, "/ui/tokens"),
        (&admin, "/ui/users"),
        (&admin, "/ui/account"),
        (&admin, "/ui/teams"),
        (&anon, "/ui/static/app.css"),
        (&anon, "/ui/static/app.js"),
    ] {
        let r = b.get_response(path).await;
        let csp = header(&r, "content-security-policy").unwrap_or_default();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header(&r, "x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert_eq!(header(&r, "referrer-policy").as_deref(), Some("same-origin"), "{path}");
        assert_eq!(header(&r, "x-content-type-options").as_deref(), Some("nosniff"), "{path}");
        let html = header(&r, "content-type").unwrap_or_default().starts_with("text/html");
        let body = r.text().await.unwrap();
        if html {
            assert!(!body.contains("<script>") && !body.contains(" style="), "{path}: inline script or style");
            assert!(body.contains("<script src=\"/ui/static/app.js?v="), "{path}");
        }
    }
    let r = s.client().get(s.url("/")).header(header::ACCEPT, "text/html,*/*").send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/ui/");
    assert_eq!(s.client().get(s.url("/")).send().await.unwrap().status(), 404, "non-browsers keep the 404");
}

/// An image whose config and annotations hold markup, and a referrer to it.
async fn push_marked_image(s: &TestServer, token: &str, repo: &str) -> (String, String) {
    let config = serde_json::to_vec(&json!({
        "architecture": "arm64", "os": "linux", "variant": "v8",
        "created": "2026-01-02T03:04:05Z",
        "config": {
            "Entrypoint": ["/bin/<b>tool</b>"], "Cmd": ["--flag", "x&y"],
            "Labels": {"org.example.<script>": "<script>alert(1)</script>", "plain": "value"}
        }
    }))
    .unwrap();
    let layer = b"some layer bytes".repeat(1000);
    s.push_blob(token, repo, &config).await;
    s.push_blob(token, repo, &layer).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [descriptor(OCI_LAYER, &layer)],
        "annotations": {"org.opencontainers.image.title": "<img src=x onerror=alert(2)>"}
    }))
    .unwrap();
    let digest = s.push_manifest(token, repo, "v1", OCI_MANIFEST, &manifest).await;
    let empty = b"{}";
    s.push_blob(token, repo, empty).await;
    let sig = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": descriptor("application/vnd.oci.empty.v1+json", empty),
        "layers": [descriptor("application/vnd.oci.empty.v1+json", empty)],
        "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": manifest.len()}
    }))
    .unwrap();
    let sig_digest = sha256_digest(&sig);
    s.push_manifest(token, repo, &sig_digest, OCI_MANIFEST, &sig).await;
    (digest, sig_digest)
}

#[tokio::test]
async fn manifest_page_shows_layers_config_annotations_and_referrers_escaped() {
    let s = TestServer::start().await;
    let token = s.admin_token(&[&scope("lab/app", "pull,push")]).await;
    let (digest, sig) = push_marked_image(&s, &token, "lab/app").await;
    let b = Browser::login(&s, ADMIN_USER, ADMIN_PASSWORD).await;

    let (status, tags) = b.get("/ui/r/lab/app").await;
    assert_eq!(status, 200);
    assert!(tags.contains("<tr data-tag=\"v1\">"), "{tags}");
    assert!(tags.contains(&format!("<code class=\"digest\" title=\"{digest}\">{digest}</code>")), "{tags}");
    assert!(tags.contains(&format!("docker pull {}/lab/app:v1", s.addr())), "{tags}");
    assert!(tags.contains("class=\"delete-tag\""), "admins may delete");

    let (status, page) = b.get(&format!("/ui/r/lab/app/-/manifests/{digest}")).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("<code id=\"manifest-digest\">{digest}</code>")), "{page}");
    assert!(page.contains("linux/arm64/v8") && page.contains("2026-01-02T03:04:05Z"), "{page}");
    assert!(page.contains("16.0 kB"), "layer size in human form: {page}");
    assert!(page.contains("title=\"16,000 bytes\""), "exact size on hover: {page}");
    assert!(page.contains("application/vnd.example.signature") && page.contains(&sig), "referrer: {page}");
    // Markup from labels, annotations, entrypoint and cmd is text, never markup.
    for raw in ["<script>alert(1)</script>", "<img src=x", "<b>tool</b>", "org.example.<script>", "x&y"] {
        assert!(!page.contains(raw), "{raw} unescaped in the page");
    }
    for escaped in [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&lt;img src=x onerror=alert(2)&gt;",
        "/bin/&lt;b&gt;tool&lt;/b&gt;",
        "x&amp;y",
    ] {
        assert!(page.contains(escaped), "{escaped} missing: {page}");
    }
    // The referrer's own page links back to its subject.
    let (status, sig_page) = b.get(&format!("/ui/r/lab/app/-/manifests/{sig}")).await;
    assert_eq!(status, 200);
    assert!(sig_page.contains(&digest) && sig_page.contains("Artifact"), "{sig_page}");
}

#[tokio::test]
async fn index_tags_list_their_platforms() {
    let s = TestServer::start().await;
    let token = s.admin_token(&[&scope("lab/multi", "pull,push")]).await;
    let img = s.push_image(&token, "lab/multi", "amd64-only", "a").await;
    let index = oci_index(&[&img.manifest]);
    let digest = s.push_manifest(&token, "lab/multi", "latest", OCI_INDEX, &index).await;
    let b = Browser::anonymous(&s);
    let (status, body) = b.get("/ui/r/lab/multi").await;
    assert_eq!(status, 200);
    let row = body.split("<tr data-tag=\"latest\">").nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(row.contains(&digest) && row.contains("<td class=\"platforms\">linux/amd64</td>"), "{row}");
    assert!(!body.contains("delete-tag"), "anonymous may not delete");
    assert!(body.contains(&format!("podman pull {}/lab/multi:latest", s.addr())), "latest is the default tag");
    let (_, index_page) = b.get(&format!("/ui/r/lab/multi/-/manifests/{digest}")).await;
    assert!(index_page.contains("id=\"platforms\"") && index_page.contains(&img.digest), "{index_page}");
}

#[tokio::test]
async fn owners_manage_members_and_the_contributor_can_then_push_with_a_ui_token() {
    let s = TestServer::start().await;
    user(&s, "olive", "user").await;
    user(&s, "carl", "user").await;
    let olive = Browser::login(&s, "olive", "olive-pw").await;
    let r = olive.post("/ui/collections", &[("name", "proj"), ("private", "on")]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/ui/c/proj");
    let r = olive.post("/ui/c/proj/members", &[("kind", "user"), ("name", "carl"), ("role", "contributor")]).await;
    assert_eq!(r.status(), 303);
    let c = api_expect(&s, Method::GET, "/api/v1/collections/proj", ADMIN, None, 200).await;
    assert_eq!(c["private"], true);
    assert_eq!(c["contributors"], json!([{"user": "carl"}]));
    let (_, members) = olive.get("/ui/c/proj/members").await;
    assert!(members.contains("data-member=\"user:carl\"") && members.contains("id=\"add-member-form\""), "{members}");
    let (_, found) = olive.get("/ui/c/proj/members?q=CAR").await;
    assert!(found.contains("data-member=\"user:carl\"") && !found.contains("data-member=\"user:olive\""), "{found}");

    // carl makes an API token in the interface and pushes with it.
    let carl = Browser::login(&s, "carl", "carl-pw").await;
    let r = carl.post("/ui/tokens", &[("name", "ci <push>"), ("expires_in_days", "7")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
    let page = r.text().await.unwrap();
    let secret = page.split("<code id=\"token-secret\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(secret.starts_with("berth_pat_"), "{page}");
    assert!(
        page.contains(&format!("<code id=\"docker-login\">docker login {} -u carl --password-stdin</code>", s.addr()))
    );
    let push = s.token(Some(("carl", &secret)), &[&scope("proj/app", "pull,push")]).await;
    assert_eq!(granted_sorted(&push, "proj/app"), vec!["pull", "push"]);
    s.push_image(&push, "proj/app", "v1", "carl").await;
    // The token list escapes the name and never shows the secret again.
    let (_, list) = carl.get("/ui/tokens").await;
    assert!(list.contains("ci &lt;push&gt;") && !list.contains(&secret), "{list}");
    // A contributor sees the tags but no delete and no member forms.
    let (_, tags) = carl.get("/ui/r/proj/app").await;
    assert!(tags.contains("data-tag=\"v1\"") && !tags.contains("delete-tag"));
    let r = carl.post("/ui/r/proj/app/-/tags/v1/delete", &[]).await;
    assert_eq!(r.status(), 403);
    let r = carl.post("/ui/c/proj/members", &[("kind", "user"), ("name", "carl"), ("role", "owner")]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        api_expect(&s, Method::GET, "/api/v1/collections/proj", ADMIN, None, 200).await["owners"],
        json!([{"user": "olive"}])
    );

    // Revoking the token in the interface ends it.
    let id = list.split("data-token=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert_eq!(carl.post("/ui/tokens/revoke", &[("id", &id)]).await.status(), 303);
    assert_eq!(s.token_response(Some(("carl", &secret)), &[]).await.status(), 401);

    // The owner deletes the tag; removing the last owner is refused.
    let r = olive.post("/ui/r/proj/app/-/tags/v1/delete", &[]).await;
    assert_eq!(r.status(), 303);
    let repo = api_expect(&s, Method::GET, "/api/v1/repositories/proj/app", ADMIN, None, 200).await;
    assert_eq!(repo["tags"], json!([]));
    let r = olive.post("/ui/c/proj/members/remove", &[("kind", "user"), ("name", "olive")]).await;
    assert_eq!(r.status(), 409);
    let r = olive.post("/ui/c/proj/members/remove", &[("kind", "user"), ("name", "carl")]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        api_expect(&s, Method::GET, "/api/v1/collections/proj", ADMIN, None, 200).await["contributors"],
        json!([])
    );

    // Repository and collection deletes: owners only, then gone for the API too.
    assert_eq!(carl.post("/ui/r/proj/app/-/delete", &[]).await.status(), 404, "carl no longer sees proj");
    let r = olive.post("/ui/r/proj/app/-/delete", &[]).await;
    assert_eq!((r.status().as_u16(), location(&r)), (303, "/ui/c/proj".to_owned()));
    api_expect(&s, Method::GET, "/api/v1/repositories/proj/app", ADMIN, None, 404).await;
    let r = olive.post("/ui/c/proj/delete", &[]).await;
    assert_eq!((r.status().as_u16(), location(&r)), (303, "/ui/".to_owned()));
    api_expect(&s, Method::GET, "/api/v1/collections/proj", ADMIN, None, 404).await;
}

#[tokio::test]
async fn teams_and_users_follow_the_api_rights() {
    let s = TestServer::start().await;
    user(&s, "tess", "user").await;
    user(&s, "adam", "admin").await;
    user(&s, "walt", "user").await;
    let tess = Browser::login(&s, "tess", "tess-pw").await;
    let r = tess.post("/ui/teams", &[("name", "devs")]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/ui/teams/devs");
    assert_eq!(tess.post("/ui/teams/devs/members", &[("username", "walt")]).await.status(), 303);
    let t = api_expect(&s, Method::GET, "/api/v1/teams/devs", ADMIN, None, 200).await;
    assert_eq!(t["members"], json!(["walt"]));
    // walt sees the team but does not manage it; others do not see it at all.
    let walt = Browser::login(&s, "walt", "walt-pw").await;
    let (status, page) = walt.get("/ui/teams/devs").await;
    assert_eq!(status, 200);
    assert!(!page.contains("add-team-member-form"));
    assert_eq!(walt.post("/ui/teams/devs/members", &[("username", "walt")]).await.status(), 403);
    user(&s, "zed", "user").await;
    let zed = Browser::login(&s, "zed", "zed-pw").await;
    let (hidden, hidden_body) = zed.get("/ui/teams/devs").await;
    let (absent, absent_body) = zed.get("/ui/teams/nothing").await;
    assert_eq!((hidden, absent), (404, 404));
    assert_eq!(hidden_body, absent_body);

    // Users: superusers only; an admin gets the 404 of a page that is not there.
    let adam = Browser::login(&s, "adam", "adam-pw").await;
    let (status, body) = adam.get("/ui/users").await;
    let (_, nothing) = adam.get("/ui/no-such-page").await;
    assert_eq!(status, 404);
    assert_eq!(body, nothing);
    assert_eq!(
        adam.post("/ui/users", &[("username", "eve"), ("password", "pw"), ("role", "user")]).await.status(),
        404
    );
    let root = Browser::login(&s, ADMIN_USER, ADMIN_PASSWORD).await;
    let (status, users) = root.get("/ui/users").await;
    assert_eq!(status, 200);
    assert!(users.contains("data-user=\"tess\"") && users.contains("id=\"create-user-form\""));
    let r = root.post("/ui/users", &[("username", "eve"), ("password", "eve-pw"), ("role", "user")]).await;
    assert_eq!(r.status(), 303);
    let eve = Browser::login(&s, "eve", "eve-pw").await;
    assert_eq!(eve.get("/ui/account").await.0, 200);
    assert_eq!(root.post("/ui/users/eve", &[("active", "false")]).await.status(), 303);
    assert_eq!(eve.get_response("/ui/account").await.status(), 303, "deactivated in the interface");
    assert_eq!(root.post("/ui/users/eve", &[("role", "admin")]).await.status(), 303);
    let u = api_expect(&s, Method::GET, "/api/v1/users", ADMIN, None, 200).await;
    let eve_row = u.as_array().unwrap().iter().find(|u| u["username"] == "eve").unwrap().clone();
    assert_eq!((eve_row["role"].as_str(), eve_row["active"].as_bool()), (Some("admin"), Some(false)));
    assert_eq!(root.post("/ui/users/eve", &[("role", "god")]).await.status(), 400);
}

#[tokio::test]
async fn search_and_pages() {
    let s = TestServer::start().await;
    for i in 0..55 {
        api_expect(&s, Method::POST, "/api/v1/collections", ADMIN, Some(&json!({"name": format!("c{i:02}")})), 201)
            .await;
    }
    api_expect(&s, Method::POST, "/api/v1/collections", ADMIN, Some(&json!({"name": "zeta"})), 201).await;
    let b = Browser::anonymous(&s);
    let (_, first) = b.get("/ui/").await;
    assert_eq!(first.matches("data-collection=").count(), 50);
    assert!(first.contains("Page 1 of 2") && first.contains("href=\"/ui/?page=2\""), "{first}");
    let (_, second) = b.get("/ui/?page=2").await;
    assert_eq!(second.matches("data-collection=").count(), 6);
    assert!(second.contains("data-collection=\"zeta\""));
    let (_, found) = b.get("/ui/?q=ZET").await;
    assert_eq!(found.matches("data-collection=").count(), 1);
    assert!(found.contains("value=\"ZET\""));
    let (status, _) = b.get("/ui/?page=nonsense").await;
    assert_eq!(status, 200);
    // The query is shown back as text, and kept in the pager's links, encoded.
    let (status, echoed) = b.get("/ui/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E%22").await;
    assert_eq!(status, 200);
    assert!(
        !echoed.contains("<script>alert") && echoed.contains("value=\"&lt;script&gt;alert(1)&lt;/script&gt;&quot;\""),
        "{echoed}"
    );
    let (_, paged) = b.get("/ui/?q=c&page=1").await;
    assert!(paged.contains("href=\"/ui/?q=c&amp;page=2\""), "{paged}");
}

/// The session table's SQL on PostgreSQL: sign in, a page, a form post, deactivation, sign out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_postgresql() {
    let pg = services::Postgres::start();
    let url = pg.database("ui_sessions").await;
    let s = TestServer::start_with(move |c| c.database.url = Some(url.clone())).await;
    user(&s, "paula", "user").await;
    let b = Browser::login(&s, "paula", "paula-pw").await;
    assert_eq!(b.post("/ui/collections", &[("name", "pgcoll")]).await.status(), 303);
    let (status, page) = b.get("/ui/c/pgcoll").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"visibility-form\""));
    let other = Browser::login(&s, "paula", "paula-pw").await;
    assert_eq!(other.post("/ui/logout", &[]).await.status(), 303);
    assert_eq!(other.get_response("/ui/account").await.status(), 303);
    assert_eq!(b.get("/ui/account").await.0, 200, "the other session lives on");
    api_expect(&s, Method::PATCH, "/api/v1/users/paula", ADMIN, Some(&json!({"active": false})), 200).await;
    assert_eq!(b.get_response("/ui/account").await.status(), 303);
}
