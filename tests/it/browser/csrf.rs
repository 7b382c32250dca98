//! Cross-site request forgery, from a real page on another origin: a small server started
//! by the test on another 127.0.0.1 port serves forms that post to berth. Another port is
//! the same *site*, so the browser sends the `SameSite=Lax` session cookie along; only the
//! CSRF field stands between the forged post and the victim's rights. Each forged post must
//! answer 403 and change nothing, while the same browser's genuine forms still work.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;
use reqwest::Method;
use serde_json::json;

use super::Browser;
use super::setup::{PASSWORD, api_collection, collection, login, users};
use crate::common::{ADMIN, TestServer, api_expect};

/// A forged form: where it posts, and its fields.
type Forged = (String, Vec<(&'static str, &'static str)>);

/// The attacker's pages: `/{n}` is a form posting `fields` to berth's `action`.
fn forms(berth: &str) -> Vec<Forged> {
    vec![
        // No CSRF field at all.
        (format!("{berth}/ui/collections"), vec![("name", "forged"), ("private", "on")]),
        // A made-up CSRF value.
        (
            format!("{berth}/ui/collections"),
            vec![("name", "forged"), ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
        ),
        // Make the attacker an owner of the victim's collection.
        (format!("{berth}/ui/c/mine/members"), vec![("kind", "user"), ("name", "mallory"), ("role", "owner")]),
        // Sign the victim out.
        (format!("{berth}/ui/logout"), vec![]),
        // Sign the victim in as the attacker (login CSRF).
        (format!("{berth}/ui/login"), vec![("username", "mallory"), ("password", PASSWORD)]),
    ]
}

async fn attacker_page(State(forms): State<std::sync::Arc<Vec<Forged>>>, Path(n): Path<usize>) -> Html<String> {
    let (action, fields) = &forms[n];
    let inputs: String =
        fields.iter().map(|(k, v)| format!("<input type=hidden name=\"{k}\" value=\"{v}\">")).collect();
    Html(format!(
        "<!doctype html><title>win a prize</title><form id=evil method=post action=\"{action}\">{inputs}<button type=submit>Claim</button></form>"
    ))
}

#[tokio::test]
async fn forged_posts_from_another_origin_are_refused() {
    let s = TestServer::start().await;
    users(&s, &["vic", "mallory"]).await;
    api_collection(&s, "mine", false, &["vic"], &[]).await;
    let members_before = collection(&s, "mine").await.expect("mine");

    let forms = std::sync::Arc::new(forms(&s.base_url()));
    let count = forms.len();
    let app = Router::new().route("/{n}", get(attacker_page)).with_state(forms);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let evil = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let Some(b) = Browser::start().await else { return };
    login(&b, &s, "vic", PASSWORD).await;
    for n in 0..count {
        b.goto(&format!("{evil}/{n}")).await;
        let form = b.find("#evil").await;
        b.click_submit(&form).await;
        let landed = b.client().current_url().await.expect("url");
        assert_eq!(landed.as_str().split('/').take(3).collect::<Vec<_>>().join("/"), s.base_url(), "form {n}");
        assert_eq!(b.status().await, 403, "forged form {n} to {} was not refused: {}", landed, b.main_text().await);
    }

    assert_eq!(collection(&s, "forged").await, None, "a forged post created a collection");
    assert_eq!(collection(&s, "mine").await.as_ref(), Some(&members_before), "a forged post changed the members");
    // Still signed in as the victim, not signed out and not signed in as the attacker.
    b.goto(&s.url("/ui/tokens")).await;
    assert_eq!(b.path().await, "/ui/tokens");
    assert!(b.text("#logout-form").await.contains("Sign out") || b.exists("#logout-form").await);
    let who = b.body_text().await;
    assert!(who.contains("vic") && !who.contains("mallory"), "signed in as someone else: {who}");

    // The same browser's genuine form does what the forged one could not.
    b.goto(&s.url("/ui/")).await;
    b.submit_form("#create-collection-form", &[("name", "genuine")]).await;
    assert_eq!(b.path().await, "/ui/c/genuine");
    let genuine = collection(&s, "genuine").await.expect("the genuine form created its collection");
    assert_eq!(genuine["owners"], json!([{"user": "vic"}]));
    let mine = api_expect(&s, Method::GET, "/api/v1/collections/mine", ADMIN, None, 200).await;
    assert!(!mine.to_string().contains("mallory"), "{mine}");

    b.close().await;
    server.abort();
}
