//! The main pages load in Chromium with JavaScript on and leave nothing in the console: no
//! script error, no failed load, no Content-Security-Policy violation. The hardening
//! headers are checked on the same pages, and the console check is shown able to fail by
//! provoking a CSP violation on purpose.

use serde_json::json;

use super::Browser;
use super::setup::{PASSWORD, api_collection, api_push, image, login, users};
use crate::common::{TestServer, header};

/// Console entries that are errors or mention the CSP.
fn problems(entries: &[(String, String)]) -> Vec<&(String, String)> {
    entries.iter().filter(|(level, m)| level == "SEVERE" || m.contains("Content Security Policy")).collect()
}

#[tokio::test]
async fn main_pages_have_a_clean_console_and_strict_headers() {
    let s = TestServer::start().await;
    users(&s, &["ola"]).await;
    api_collection(&s, "demo", false, &["ola"], &[]).await;
    let digest =
        api_push(&s, "demo/app", "1.0", &image("demo", &json!({"<b>label</b>": "<script>alert(1)</script>"}))).await;
    let Some(b) = Browser::start().await else { return };

    b.goto(&s.url("/ui/login")).await;
    let login_console = b.console().await;
    assert!(problems(&login_console).is_empty(), "/ui/login: {login_console:?}");
    login(&b, &s, "ola", PASSWORD).await;
    let pages = [
        "/ui/".to_string(),
        "/ui/c/demo".to_string(),
        "/ui/c/demo/members".to_string(),
        "/ui/r/demo/app".to_string(),
        format!("/ui/r/demo/app/-/manifests/{digest}"),
        "/ui/teams".to_string(),
        "/ui/tokens".to_string(),
        "/ui/account".to_string(),
    ];
    for path in &pages {
        b.goto(&s.url(path)).await;
        assert_eq!(b.status().await, 200, "{path}");
        // The stylesheet and the script are loaded from berth, and the script ran.
        let loaded = b
            .client()
            .execute(
                "return [document.styleSheets.length, \
                 [...document.scripts].filter(s => !s.src).length, \
                 [...document.querySelectorAll('[style]')].length];",
                vec![],
            )
            .await
            .expect("inspect the page");
        assert_eq!(loaded, json!([1, 0, 0]), "{path}: [stylesheets, inline scripts, style attributes]");
        let console = b.console().await;
        assert!(problems(&console).is_empty(), "{path}: console: {console:?}");

        let resp = s.client().get(s.url(path)).header("Cookie", session_cookie(&b).await).send().await.expect("GET");
        assert_eq!(resp.status(), 200, "{path} over HTTP with the browser's cookie");
        let csp = header(&resp, "content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP"));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: CSP {csp}");
        assert!(csp.contains("default-src") || csp.contains("script-src"), "{path}: CSP {csp}");
        assert_eq!(header(&resp, "x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert!(header(&resp, "referrer-policy").is_some(), "{path}: no Referrer-Policy");
    }

    // Markup in labels reaches the page as text, never as elements.
    b.goto(&s.url(&format!("/ui/r/demo/app/-/manifests/{digest}"))).await;
    assert!(b.main_text().await.contains("<script>alert(1)</script>"), "the label's markup is not shown as text");
    assert!(!b.source().await.contains("<b>label</b>"), "a label's <b> became an element");

    // The check above can fail: an inline script added now is refused by the CSP, and the
    // refusal shows in the console.
    b.client()
        .execute(
            "const s = document.createElement('script'); s.textContent = 'window.x = 1'; document.body.append(s);",
            vec![],
        )
        .await
        .expect("add an inline script");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let console = b.console().await;
    assert!(
        console.iter().any(|(_, m)| m.contains("Content Security Policy")),
        "an inline script ran without a CSP report: {console:?}"
    );
    b.close().await;
}

async fn session_cookie(b: &Browser) -> String {
    let (value, _, _) = b.cookie("berth_session").await.expect("signed in");
    format!("berth_session={value}")
}
