//! The web interface's privacy matrix: every page of a collection, its members, a repository
//! and a manifest, for anonymous, a non-member, a contributor, an owner and an admin, on a
//! public and a private collection. Whatever the API hides, the interface hides, and a
//! hidden page is byte for byte the 404 of an absent one. Management controls appear exactly
//! where the API would allow the change, and refused posts change nothing.

use reqwest::Method;
use serde_json::json;

use super::ui::{Browser, location};
use crate::common::*;

struct World {
    s: TestServer,
    /// Manifest digest of `pub/app:v1` and `priv/app:v1`.
    digest: std::collections::HashMap<&'static str, String>,
}

async fn world() -> World {
    let s = TestServer::start().await;
    for (u, role) in [("olive", "user"), ("carl", "user"), ("nina", "user"), ("adam", "admin")] {
        api_user(&s, u, &format!("{u}-pw"), role).await;
    }
    let mut digest = std::collections::HashMap::new();
    for (c, private) in [("pub", false), ("priv", true)] {
        let body = json!({"name": c, "private": private});
        api_expect(&s, Method::POST, "/api/v1/collections", ADMIN, Some(&body), 201).await;
        for (u, role) in [("olive", "owner"), ("carl", "contributor")] {
            let path = format!("/api/v1/collections/{c}/members/users/{u}");
            api_expect(&s, Method::PUT, &path, ADMIN, Some(&json!({"role": role})), 200).await;
        }
        let repo = format!("{c}/app");
        let token = s.admin_token(&[&scope(&repo, "pull,push")]).await;
        let img = s.push_image(&token, &repo, "v1", c).await;
        digest.insert(c, img.digest);
    }
    World { s, digest }
}

/// The four pages of collection `c` (with the digest `d` for the manifest page).
fn pages(c: &str, d: &str) -> Vec<String> {
    vec![
        format!("/ui/c/{c}"),
        format!("/ui/c/{c}/members"),
        format!("/ui/r/{c}/app"),
        format!("/ui/r/{c}/app/-/manifests/{d}"),
    ]
}

#[tokio::test]
async fn each_page_shows_exactly_what_the_api_shows() {
    let w = world().await;
    let s = &w.s;
    let anon = Browser::anonymous(s);
    let mut viewers = vec![("anonymous", anon)];
    for u in ["nina", "carl", "olive", "adam"] {
        viewers.push((u, Browser::login(s, u, &format!("{u}-pw")).await));
    }
    for (who, b) in &viewers {
        for c in ["pub", "priv"] {
            let d = &w.digest[c];
            let visible = c == "pub" || ["carl", "olive", "adam"].contains(who);
            let manages = ["olive", "adam"].contains(who);
            let (_, listing) = b.get("/ui/").await;
            assert_eq!(listing.contains(&format!("data-collection=\"{c}\"")), visible, "{who} listing {c}");
            // The same pages of a collection that does not exist (the digest exists elsewhere).
            let absent = pages("absent", d);
            for (page, absent_page) in pages(c, d).iter().zip(&absent) {
                let (status, body) = b.get(page).await;
                let (absent_status, absent_body) = b.get(absent_page).await;
                assert_eq!(absent_status, 404, "{who} {absent_page}");
                if visible {
                    assert_eq!(status, 200, "{who} {page}: {body}");
                } else {
                    assert_eq!(status, 404, "{who} {page}");
                    assert_eq!(body, absent_body, "{who}: hidden {page} differs from absent {absent_page}");
                }
            }
            // A repository that does not exist in a visible collection is the same 404 too.
            if visible {
                let (status, body) = b.get(&format!("/ui/r/{c}/nothing")).await;
                let (_, absent_body) = b.get("/ui/r/absent/app").await;
                assert_eq!((status, &body), (404, &absent_body), "{who} missing repo in {c}");
                let (_, coll) = b.get(&format!("/ui/c/{c}")).await;
                assert_eq!(coll.contains("id=\"visibility-form\""), manages, "{who} visibility form in {c}");
                assert_eq!(coll.contains("id=\"delete-collection-form\""), manages, "{who} delete form in {c}");
                let (_, members) = b.get(&format!("/ui/c/{c}/members")).await;
                assert_eq!(members.contains("id=\"add-member-form\""), manages, "{who} member form in {c}");
                assert_eq!(members.contains("class=\"remove-member\""), manages, "{who} remove forms in {c}");
                assert!(
                    members.contains("data-member=\"user:olive\"") && members.contains("data-member=\"user:carl\"")
                );
                let (_, tags) = b.get(&format!("/ui/r/{c}/app")).await;
                assert!(tags.contains(&format!("<code class=\"digest\" title=\"{d}\">{d}</code>")), "{who} {c}");
                assert_eq!(tags.contains("class=\"delete-tag\""), manages, "{who} delete-tag in {c}");
                assert_eq!(tags.contains("id=\"delete-repository-form\""), manages, "{who} delete-repository in {c}");
                let (_, manifest) = b.get(&format!("/ui/r/{c}/app/-/manifests/{d}")).await;
                assert!(manifest.contains(&format!("<code id=\"manifest-digest\">{d}</code>")));
                assert_eq!(manifest.contains("id=\"delete-manifest-form\""), manages, "{who} delete-manifest in {c}");
            }
        }
    }
}

#[tokio::test]
async fn refused_posts_change_nothing_and_hidden_ones_read_as_absent() {
    let w = world().await;
    let s = &w.s;
    let nina = Browser::login(s, "nina", "nina-pw").await;
    let carl = Browser::login(s, "carl", "carl-pw").await;
    let olive = Browser::login(s, "olive", "olive-pw").await;
    let d = &w.digest["priv"];
    let posts = |c: &str| -> Vec<(String, Vec<(&'static str, &'static str)>)> {
        vec![
            (format!("/ui/c/{c}/visibility"), vec![]),
            (format!("/ui/c/{c}/members"), vec![("kind", "user"), ("name", "nina"), ("role", "owner")]),
            (format!("/ui/c/{c}/members/remove"), vec![("kind", "user"), ("name", "carl")]),
            (format!("/ui/r/{c}/app/-/tags/v1/delete"), vec![]),
            (format!("/ui/r/{c}/app/-/manifests/{d}/delete"), vec![]),
            (format!("/ui/r/{c}/app/-/delete"), vec![]),
            (format!("/ui/c/{c}/delete"), vec![]),
        ]
    };
    // nina may not see priv: every post is the 404 of the absent collection.
    for ((path, fields), (absent, _)) in posts("priv").iter().zip(posts("absent")) {
        let r = nina.post(path, fields).await;
        assert_eq!(r.status(), 404, "nina {path}");
        let body = r.text().await.unwrap();
        let absent_body = nina.post(&absent, fields).await.text().await.unwrap();
        assert_eq!(body, absent_body, "nina {path} vs {absent}");
    }
    // carl sees priv but manages nothing: 403.
    for (path, fields) in posts("priv") {
        assert_eq!(carl.post(&path, &fields).await.status(), 403, "carl {path}");
    }
    let c = api_expect(s, Method::GET, "/api/v1/collections/priv", ADMIN, None, 200).await;
    assert_eq!(c["private"], true);
    assert_eq!(c["owners"], json!([{"user": "admin"}, {"user": "olive"}]));
    assert_eq!(c["contributors"], json!([{"user": "carl"}]));
    let repo = api_expect(s, Method::GET, "/api/v1/repositories/priv/app", ADMIN, None, 200).await;
    assert_eq!(repo["tags"][0]["name"], "v1");
    // The owner's delete goes through (and the manifest page is then 404).
    let r = olive.post(&format!("/ui/r/priv/app/-/manifests/{d}/delete"), &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/ui/r/priv/app");
    let repo = api_expect(s, Method::GET, "/api/v1/repositories/priv/app", ADMIN, None, 200).await;
    assert_eq!(repo["tags"], json!([]));
    assert_eq!(olive.get(&format!("/ui/r/priv/app/-/manifests/{d}")).await.0, 404);
}

#[tokio::test]
async fn a_private_registry_shows_anonymous_nothing() {
    let s = start_with_settings(true, true).await;
    let token = s.admin_token(&[&scope("pub/app", "pull,push")]).await;
    let img = s.push_image(&token, "pub/app", "v1", "x").await;
    let anon = Browser::anonymous(&s);
    for page in ["/ui/", "/ui/c/pub", "/ui/c/pub/members", "/ui/r/pub/app", "/ui/teams", "/ui/c/absent"] {
        let r = anon.get_response(page).await;
        assert_eq!(r.status(), 303, "{page}");
        assert!(location(&r).starts_with("/ui/login"), "{page}: {}", location(&r));
        let body = r.text().await.unwrap();
        assert!(!body.contains("pub"), "{page}: {body}");
    }
    let r = anon.get_response(&format!("/ui/r/pub/app/-/manifests/{}", img.digest)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(anon.get("/ui/login").await.0, 200);
    // Signed in, the same pages are there.
    let admin = Browser::login(&s, ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(admin.get("/ui/r/pub/app").await.0, 200);
}
