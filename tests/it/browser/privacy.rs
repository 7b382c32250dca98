//! The privacy matrix in the browser (issue 11 §4): every page of a collection, seen by
//! anonymous, a non-member, a contributor, an owner (directly and through a team) and staff
//! (admin and superuser), on a public and a private collection. A page the viewer may not see must be exactly the page of an absent
//! collection (same status, same document once the name is blanked out); a page they may
//! see shows its content, and management forms appear only for owners and staff.

use serde_json::json;

use super::Browser;
use super::setup::{PASSWORD, api_collection, api_push, forget, image, login, users};
use crate::common::{ADMIN, ADMIN_PASSWORD, ADMIN_USER, TestServer, api_expect};
use reqwest::Method;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Anonymous,
    Outsider,
    Contributor,
    Owner,
    TeamOwner,
    Admin,
    Staff,
}

impl Who {
    fn credentials(self) -> Option<(&'static str, &'static str)> {
        match self {
            Who::Anonymous => None,
            Who::Outsider => Some(("nina", PASSWORD)),
            Who::Contributor => Some(("cora", PASSWORD)),
            Who::Owner => Some(("ola", PASSWORD)),
            Who::TeamOwner => Some(("tom", PASSWORD)),
            Who::Admin => Some(("adam", PASSWORD)),
            Who::Staff => Some((ADMIN_USER, ADMIN_PASSWORD)),
        }
    }

    fn sees(self, private: bool) -> bool {
        !private || !matches!(self, Who::Anonymous | Who::Outsider)
    }

    fn manages(self) -> bool {
        matches!(self, Who::Owner | Who::TeamOwner | Who::Admin | Who::Staff)
    }
}

/// One page of a collection `c`: its path, what shows it is really there, and the
/// management control owners and staff get on it.
struct Page {
    path: String,
    content: String,
    manage: &'static str,
}

fn pages(c: &str, digest: &str) -> Vec<Page> {
    vec![
        Page {
            path: format!("/ui/c/{c}"),
            content: format!("li[data-repository=\"{c}/app\"] a[href=\"/ui/r/{c}/app\"]"),
            manage: "#visibility-form",
        },
        Page {
            path: format!("/ui/c/{c}/members"),
            content: "tr[data-member=\"user:ola\"]".to_string(),
            manage: "#add-member-form",
        },
        Page { path: format!("/ui/r/{c}/app"), content: "tr[data-tag=\"1\"]".to_string(), manage: "form.delete-tag" },
        Page {
            path: format!("/ui/r/{c}/app/-/manifests/{digest}"),
            content: "#manifest-digest".to_string(),
            manage: "#delete-manifest-form",
        },
    ]
}

/// The document with `name` blanked out, so that a hidden and an absent collection's pages
/// can be compared.
fn normalised(source: &str, name: &str) -> String {
    source.replace(name, "NAME")
}

#[tokio::test]
async fn hidden_pages_are_the_absent_page_for_every_principal() {
    let s = TestServer::start().await;
    users(&s, &["nina", "cora", "ola", "tom"]).await;
    crate::common::api_user(&s, "adam", PASSWORD, "admin").await;
    api_expect(&s, Method::POST, "/api/v1/teams", ADMIN, Some(&json!({"name": "crew"})), 201).await;
    api_expect(&s, Method::PUT, "/api/v1/teams/crew/members/tom", ADMIN, None, 200).await;
    let mut digests = Vec::new();
    for (c, private) in [("pubc", false), ("privc", true)] {
        api_collection(&s, c, private, &["ola"], &["cora"]).await;
        let team = format!("/api/v1/collections/{c}/members/teams/crew");
        api_expect(&s, Method::PUT, &team, ADMIN, Some(&json!({"role": "owner"})), 200).await;
        let d = api_push(&s, &format!("{c}/app"), "1", &image(c, &json!({}))).await;
        digests.push((c, private, d));
    }
    let Some(b) = Browser::start().await else { return };

    for who in [Who::Anonymous, Who::Outsider, Who::Contributor, Who::Owner, Who::TeamOwner, Who::Admin, Who::Staff] {
        forget(&b).await;
        if let Some((user, password)) = who.credentials() {
            login(&b, &s, user, password).await;
        }
        b.goto(&s.url("/ui/")).await;
        for (c, private, _) in &digests {
            let listed = b.exists(&format!("a[href=\"/ui/c/{c}\"]")).await;
            assert_eq!(listed, who.sees(*private), "{who:?}: collections list shows {c}: {listed}");
        }
        b.goto(&s.url("/ui/?q=privc")).await;
        assert_eq!(b.exists("a[href=\"/ui/c/privc\"]").await, who.sees(true), "{who:?}: search for privc");

        for (c, private, digest) in &digests {
            // `absnt` has as many letters as a real name would not matter: it is blanked too.
            let absent_pages = pages("absnt", digest);
            for (page, absent) in pages(c, digest).iter().zip(&absent_pages) {
                b.goto(&s.url(&page.path)).await;
                let status = b.status().await;
                let source = b.source().await;
                let what = format!("{who:?} on {} ({})", page.path, if *private { "private" } else { "public" });
                if who.sees(*private) {
                    assert_eq!(status, 200, "{what}: {}", b.main_text().await);
                    assert!(b.exists(&page.content).await, "{what}: shows no `{}`", page.content);
                    if page.path.ends_with(digest.as_str()) {
                        assert_eq!(&b.text("#manifest-digest").await, digest, "{what}");
                    }
                    if page.path.ends_with("/members") {
                        assert!(
                            b.exists("tr[data-member=\"user:cora\"]").await,
                            "{what}: the contributor is not listed"
                        );
                        assert_eq!(
                            b.exists("form.remove-member").await,
                            who.manages(),
                            "{what}: remove-member offered"
                        );
                    }
                    assert_eq!(b.exists(page.manage).await, who.manages(), "{what}: `{}` offered", page.manage);
                } else {
                    b.goto(&s.url(&absent.path)).await;
                    let absent_status = b.status().await;
                    let absent_source = b.source().await;
                    assert_eq!(status, 404, "{what}: a hidden page must answer 404");
                    assert_eq!(absent_status, 404, "{who:?} on {}", absent.path);
                    assert_eq!(
                        normalised(&source, c),
                        normalised(&absent_source, "absnt"),
                        "{what}: the hidden page differs from the absent one"
                    );
                    assert!(!source.contains(digest.as_str()) || page.path.contains(digest.as_str()), "{what}");
                }
            }
        }
    }
    b.close().await;
}

/// On a private registry anonymous sees nothing: every page sends the browser to the sign-in
/// form, which brings it back to the page it asked for once signed in.
#[tokio::test]
async fn private_registry_sends_anonymous_to_sign_in_and_back() {
    let s = crate::common::start_with_settings(true, true).await;
    users(&s, &["cora"]).await;
    api_collection(&s, "pubc", false, &[], &["cora"]).await;
    let digest = api_push(&s, "pubc/app", "1", &image("pubc", &json!({}))).await;
    let Some(b) = Browser::start().await else { return };

    for path in [
        "/ui/".to_string(),
        "/ui/c/pubc".to_string(),
        "/ui/r/pubc/app".to_string(),
        format!("/ui/r/pubc/app/-/manifests/{digest}"),
    ] {
        b.goto(&s.url(&path)).await;
        let landed = b.path().await;
        assert!(landed.starts_with("/ui/login"), "anonymous on {path} of a private registry landed on {landed}");
        assert!(b.exists("#login-form").await);
        // What the page says must not depend on whether the thing asked for exists.
        let shown = normalised(&b.source().await, "pubc");
        b.goto(&s.url(&path.replace("pubc", "absnt"))).await;
        assert_eq!(normalised(&b.source().await, "absnt"), shown, "{path}: differs from an absent page's");
    }
    b.goto(&s.url("/ui/r/pubc/app")).await;
    b.submit_form("#login-form", &[("username", "cora"), ("password", PASSWORD)]).await;
    assert_eq!(b.path().await, "/ui/r/pubc/app", "signing in goes back to the page asked for");
    assert!(b.exists("tr[data-tag=\"1\"]").await);
    b.close().await;
}
