//! The core flows of the web interface, clicked through in Chromium: sign in and browse to
//! a manifest a real client pushed; create a collection, add a contributor, and push with
//! an API token that contributor made in the interface; delete a tag; sign out.

use serde_json::json;

use super::Browser;
use super::setup::{PASSWORD, collection, image, login, registry_digest, registry_tags, skopeo_push, users};
use crate::common::{TestServer, granted_sorted};

/// Signs in through the form (checking the session cookie's flags), then follows links
/// from the collections list down to the manifest skopeo pushed, whose digest the
/// repository and manifest pages must show exactly.
#[tokio::test]
async fn sign_in_and_browse_to_a_pushed_manifest() {
    let s = TestServer::start().await;
    users(&s, &["alice"]).await;
    let img = image("shop-web", &json!({"org.opencontainers.image.title": "web"}));
    let pushed = skopeo_push(&s, "alice", PASSWORD, "shop/web", "1.0", &img).await;
    assert_eq!(registry_digest(&s, "shop/web", "1.0").await.as_deref(), Some(pushed.as_str()));

    let Some(b) = Browser::start().await else { return };
    login(&b, &s, "alice", PASSWORD).await;
    let (value, http_only, same_site) = b.cookie("berth_session").await.expect("a berth_session cookie after sign-in");
    assert!(value.len() >= 32, "session cookie too short to be a secret: {value:?}");
    assert!(http_only, "berth_session must be HttpOnly");
    assert_eq!(same_site.as_deref(), Some("Lax"), "berth_session must be SameSite=Lax");
    assert!(b.text("#logout-form").await.contains("Sign out") || b.exists("#logout-form button").await);

    b.follow("a[href=\"/ui/c/shop\"]").await;
    assert_eq!(b.path().await, "/ui/c/shop");
    assert_eq!(b.status().await, 200);
    b.follow("a[href=\"/ui/r/shop/web\"]").await;
    assert_eq!(b.path().await, "/ui/r/shop/web");
    assert_eq!(b.status().await, 200);

    let row = "tr[data-tag=\"1.0\"]";
    let shown = b.find(&format!("{row} code.digest")).await;
    let text = shown.text().await.expect("digest text");
    let title = shown.attr("title").await.expect("title").unwrap_or_default();
    assert!(
        text == pushed || title == pushed,
        "the tags table shows {text:?} (title {title:?}) for 1.0, skopeo pushed {pushed}"
    );
    let host = s.addr().to_string();
    let commands: Vec<String> = texts(&b, "code.pull-command").await;
    for client in ["docker pull", "podman pull", "oras pull"] {
        assert!(
            commands.iter().any(|c| c.starts_with(client) && c.contains(&format!("{host}/shop/web"))),
            "no `{client} {host}/shop/web…` among the pull commands {commands:?}"
        );
    }

    b.follow(&format!("{row} a[href*=\"/-/manifests/\"]")).await;
    assert_eq!(b.path().await, format!("/ui/r/shop/web/-/manifests/{pushed}"));
    assert_eq!(b.status().await, 200);
    assert_eq!(b.text("#manifest-digest").await, pushed, "the manifest page shows another digest");
    let page = b.main_text().await;
    for expected in ["/bin/app", "linux", "amd64", "org.opencontainers.image.title", "https://example.invalid/shop-web"]
    {
        assert!(page.contains(expected), "the manifest page lacks {expected:?}:\n{page}");
    }
    b.close().await;
}

/// Texts of every element matching `css`.
async fn texts(b: &Browser, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in b.find_all(css).await {
        out.push(e.text().await.expect("text"));
    }
    out
}

/// An owner creates a private collection and adds a contributor in the interface; the
/// contributor signs in, creates an API token there (secret shown once), and skopeo pushes
/// into the collection with it, which it could not do before being added.
#[tokio::test]
async fn owner_adds_contributor_who_pushes_with_a_ui_token() {
    let s = TestServer::start().await;
    users(&s, &["olga", "carl"]).await;
    let Some(b) = Browser::start().await else { return };

    login(&b, &s, "olga", PASSWORD).await;
    b.submit_form("#create-collection-form", &[("name", "team1"), ("private", "on")]).await;
    assert_eq!(b.path().await, "/ui/c/team1", "creating a collection leads to its page");
    let c = collection(&s, "team1").await.expect("the form created team1");
    assert_eq!(c["private"], json!(true), "{c}");
    assert_eq!(c["owners"], json!([{"user": "olga"}]), "{c}");

    let push = format!("repository:team1/app:{}", "pull,push");
    let before = s.token(Some(("carl", PASSWORD)), &[&push]).await;
    assert!(granted_sorted(&before, "team1/app").is_empty(), "carl may not push before being added");

    b.goto(&s.url("/ui/c/team1/members")).await;
    b.submit_form("#add-member-form", &[("kind", "user"), ("name", "carl"), ("role", "contributor")]).await;
    assert_eq!(b.status().await, 200);
    assert!(b.exists("tr[data-member=\"user:carl\"]").await, "the members page lists carl after adding him");
    let c = collection(&s, "team1").await.expect("team1");
    assert_eq!(c["contributors"], json!([{"user": "carl"}]), "{c}");
    let after = s.token(Some(("carl", PASSWORD)), &[&push]).await;
    assert_eq!(granted_sorted(&after, "team1/app"), ["pull", "push"]);

    let form = b.find("#logout-form").await;
    b.click_submit(&form).await;
    login(&b, &s, "carl", PASSWORD).await;
    b.goto(&s.url("/ui/tokens")).await;
    b.submit_form("#create-token-form", &[("name", "ci"), ("expires_in_days", "30"), ("read_only", "off")]).await;
    let secret = b.text("#token-secret").await;
    assert!(secret.len() >= 20, "token secret {secret:?}");
    let docker_login = b.text("#docker-login").await;
    assert!(
        docker_login.starts_with(&format!("docker login {} -u carl", s.addr())),
        "docker login line: {docker_login:?}"
    );
    b.goto(&s.url("/ui/tokens")).await;
    let listing = b.source().await;
    assert_eq!(b.find_all("table#tokens tr[data-token]").await.len(), 1, "the token list shows the new token");
    assert!(b.text("table#tokens").await.contains("ci"), "the token list names the new token");
    assert!(!listing.contains(&secret), "the secret is shown once, not on the token list");

    let img = image("team1-app", &json!({}));
    let pushed = skopeo_push(&s, "carl", &secret, "team1/app", "v1", &img).await;
    assert_eq!(registry_digest(&s, "team1/app", "v1").await.as_deref(), Some(pushed.as_str()));
    b.close().await;
}

/// An owner deletes a tag from the repository page: the row goes, the registry no longer
/// lists or serves the tag, and the other tag stays. A contributor is offered no delete.
#[tokio::test]
async fn owner_deletes_a_tag() {
    let s = TestServer::start().await;
    users(&s, &["otto", "cleo"]).await;
    super::setup::api_collection(&s, "del", false, &["otto"], &["cleo"]).await;
    let keep = super::setup::api_push(&s, "del/app", "keep", &image("keep", &json!({}))).await;
    super::setup::api_push(&s, "del/app", "gone", &image("gone", &json!({}))).await;
    let Some(b) = Browser::start().await else { return };

    login(&b, &s, "cleo", PASSWORD).await;
    b.goto(&s.url("/ui/r/del/app")).await;
    assert!(b.exists("tr[data-tag=\"gone\"]").await);
    assert!(!b.exists("form.delete-tag").await, "a contributor must not be offered tag deletes");
    super::setup::forget(&b).await;

    login(&b, &s, "otto", PASSWORD).await;
    b.goto(&s.url("/ui/r/del/app")).await;
    let form = b.find("tr[data-tag=\"gone\"] form.delete-tag").await;
    b.click_submit(&form).await;
    assert_eq!(b.status().await, 200, "post/redirect/get lands on a page");
    assert!(!b.exists("tr[data-tag=\"gone\"]").await, "the deleted tag is still listed");
    assert!(b.exists("tr[data-tag=\"keep\"]").await, "the other tag went too");

    assert_eq!(registry_tags(&s, "del/app").await, ["keep"]);
    assert_eq!(registry_digest(&s, "del/app", "gone").await, None);
    assert_eq!(registry_digest(&s, "del/app", "keep").await, Some(keep));
    b.close().await;
}

/// Signing out ends the session on the server: protected pages send the browser to the
/// sign-in form, and the old cookie, replayed, opens nothing.
#[tokio::test]
async fn sign_out_ends_the_session() {
    let s = TestServer::start().await;
    users(&s, &["lou"]).await;
    let Some(b) = Browser::start().await else { return };
    login(&b, &s, "lou", PASSWORD).await;
    b.goto(&s.url("/ui/tokens")).await;
    assert_eq!(b.path().await, "/ui/tokens");
    assert!(b.exists("#create-token-form").await);
    let (old, _, _) = b.cookie("berth_session").await.expect("session cookie");

    let form = b.find("#logout-form").await;
    b.click_submit(&form).await;
    assert_eq!(b.path().await, "/ui/login");
    assert!(b.exists("#login-form").await);
    assert!(b.cookie("berth_session").await.is_none(), "the session cookie outlived sign-out");

    b.goto(&s.url("/ui/tokens")).await;
    assert!(b.path().await.starts_with("/ui/login"), "a protected page after sign-out: {}", b.path().await);
    assert!(b.exists("#login-form").await);
    assert!(!b.exists("#logout-form").await);

    let replay = s
        .client()
        .get(s.url("/ui/tokens"))
        .header("Cookie", format!("berth_session={old}"))
        .send()
        .await
        .expect("replay the old cookie");
    assert_eq!(replay.status(), 303, "the old session cookie still opens /ui/tokens");
    let location = crate::common::header(&replay, "location").unwrap_or_default();
    assert!(location.starts_with("/ui/login"), "redirected to {location}");
    b.close().await;
}

/// A wrong password gives the form again with an error (401) and no session; the form works
/// from the keyboard alone: type, Tab to the password, Enter.
#[tokio::test]
async fn bad_password_then_keyboard_sign_in() {
    let s = TestServer::start().await;
    users(&s, &["kim"]).await;
    let Some(b) = Browser::start().await else { return };
    b.goto(&s.url("/ui/login")).await;
    b.submit_form("#login-form", &[("username", "kim"), ("password", "not-the-password")]).await;
    assert_eq!(b.status().await, 401);
    assert_eq!(b.path().await, "/ui/login");
    assert!(b.text("p.error").await.contains("Invalid"), "no error shown");
    assert!(b.cookie("berth_session").await.is_none(), "a failed sign-in set a session cookie");

    let user = b.find("#login-form input[name=\"username\"]").await;
    user.clear().await.expect("clear");
    user.send_keys("kim").await.expect("type the username");
    user.send_keys(TAB).await.expect("Tab");
    let focused = b.client().active_element().await.expect("focused element");
    assert_eq!(
        focused.attr("name").await.expect("name").as_deref(),
        Some("password"),
        "Tab does not reach the password"
    );
    let before = b.path().await;
    focused.send_keys(&format!("{PASSWORD}{ENTER}")).await.expect("type the password and Enter");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while b.path().await == before {
        assert!(std::time::Instant::now() < deadline, "Enter did not submit the form");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(b.path().await, "/ui/");
    assert!(b.body_text().await.contains("kim"), "not signed in as kim");
    b.close().await;
}

/// WebDriver's Tab and Enter keys.
const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
