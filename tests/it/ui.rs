//! The web interface over HTTP (docs/ui.md): sign-in, cookie and session lifetime, CSRF,
//! the login throttle shared with `/token`, and the security headers; and the `Browser`
//! helper the other `ui_*` modules use (`ui_pages`: pages and manage flows; `ui_privacy`:
//! the per-page privacy matrix).

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
