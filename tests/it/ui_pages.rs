//! The web interface's pages over HTTP (docs/ui.md): a repository's tags, a manifest's
//! layers, config, annotations and referrers (escaped), index platforms, the manage flows
//! of owners, team owners and superusers checked against what the API then reports, and
//! search and paging.

use reqwest::Method;
use serde_json::json;

use super::ui::{Browser, location};
use crate::common::*;

async fn user(s: &TestServer, name: &str, role: &str) {
    api_user(s, name, &format!("{name}-pw"), role).await;
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
    assert!(page.contains("linux/arm64/v8"), "{page}");
    assert!(page.contains("<time datetime=\"2026-01-02T03:04:05Z\" title=\"2026-01-02T03:04:05Z\">"), "{page}");
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
