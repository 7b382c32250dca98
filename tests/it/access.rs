//! Who may do what (DESIGN §3, §4): anonymous pulls, user collections, pushes into someone
//! else's collection, collection auto-creation, existence hiding, and `_catalog` filtering.
//! Users are created through the `berth user create` CLI.

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

const ALICE: (&str, &str) = ("alice", "alice-password");
const BOB: (&str, &str) = ("bob", "bob-password");

async fn with_users(s: &TestServer) {
    s.create_user(ALICE.0, "user", ALICE.1).await;
    s.create_user(BOB.0, "user", BOB.1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_created_user_can_log_in() {
    let s = TestServer::start().await;
    s.create_user("carol", "user", "carol pass with spaces").await;
    let resp = s.token_response(Some(("carol", "carol pass with spaces")), &[]).await;
    expect_status(resp, 200, "token for a CLI-created user").await;
    let resp = s.token_response(Some(("carol", "carol pass with spaces\n")), &[]).await;
    assert_eq!(resp.status(), 401, "the newline after --password-stdin is not part of the password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_pull_of_public_repository() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["pub/app"]).await;
    let img = s.push_image(&token, "pub/app", "v1", "public").await;

    let anon = s.anon_token(&[&scope("pub/app", "pull")]).await;
    assert_eq!(granted(&anon, "pub/app").expect("entry"), ["pull"]);
    let resp = s.get("/v2/pub/app/manifests/v1", Some(&anon)).await;
    let body = expect_status(resp, 200, "anonymous GET manifest").await.bytes().await.unwrap();
    assert!(body.as_ref() == img.manifest.as_slice());
    let layer = sha256_digest(&img.layers[0]);
    let resp = s.get(&format!("/v2/pub/app/blobs/{layer}"), Some(&anon)).await;
    let body = expect_status(resp, 200, "anonymous GET blob").await.bytes().await.unwrap();
    assert!(body.as_ref() == img.layers[0].as_slice());
    let resp = s.get("/v2/pub/app/tags/list", Some(&anon)).await;
    expect_status(resp, 200, "anonymous tags list").await;

    // Without any token it is still a 401 challenge: the client must fetch a token first.
    let resp = s.get("/v2/pub/app/manifests/v1", None).await;
    expect_challenge(&s, resp, Some("repository:pub/app:pull"), false, "no token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_push_is_401_and_creates_nothing() {
    let s = TestServer::start().await;
    with_users(&s).await;
    let token = s.repo_token(&["pub/app"]).await;
    s.push_image(&token, "pub/app", "v1", "anon-push").await;

    let anon = s.anon_token(&[&scope("pub/app", "pull,push"), &scope("anon/app", "pull,push")]).await;
    assert_eq!(granted(&anon, "pub/app").expect("entry"), ["pull"]);
    assert!(granted(&anon, "anon/app").unwrap_or_default().is_empty());
    for repo in ["pub/app", "anon/app"] {
        let resp = s.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), Some(&anon)).send().await.unwrap();
        expect_challenge(&s, resp, Some(&scope(repo, "pull,push")), true, &format!("anonymous push to {repo}")).await;
    }
    let resp = s.put_manifest(&anon, "pub/app", "evil", Some(OCI_MANIFEST), b"{}").await;
    assert_eq!(resp.status(), 401, "anonymous manifest PUT");

    // The anonymous push request did not create collection `anon`: alice may now create it.
    let alice = s.token(Some(ALICE), &[&scope("anon/app", "pull,push")]).await;
    let mut a = granted(&alice, "anon/app").expect("entry");
    a.sort();
    assert_eq!(a, ["pull", "push"], "alice creates collection `anon`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_pushes_into_own_collection_not_into_others() {
    let s = TestServer::start().await;
    with_users(&s).await;

    let alice = s.token(Some(ALICE), &[&scope("alice/app", "pull,push,delete")]).await;
    let mut a = granted(&alice, "alice/app").expect("entry");
    a.sort();
    assert_eq!(a, ["delete", "pull", "push"], "owner of an auto-created collection");
    let img = s.push_image(&alice, "alice/app", "v1", "alice").await;

    let bob = s.token(Some(BOB), &[&scope("alice/app", "pull,push,delete"), &scope("alice/other", "pull,push")]).await;
    assert_eq!(granted(&bob, "alice/app").expect("entry"), ["pull"], "public collection: pull only");
    assert_eq!(granted(&bob, "alice/other").expect("entry"), ["pull"]);

    let resp = s.get("/v2/alice/app/manifests/v1", Some(&bob)).await;
    expect_status(resp, 200, "bob pulls alice's public repository").await;
    for repo in ["alice/app", "alice/other"] {
        let resp = s.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), Some(&bob)).send().await.unwrap();
        expect_error(resp, 403, "DENIED", &format!("bob pushes into {repo}")).await;
    }
    let resp = s.put_manifest(&bob, "alice/app", "v1", Some(OCI_MANIFEST), &img.manifest).await;
    expect_error(resp, 403, "DENIED", "bob PUTs a manifest into alice/app").await;
    let resp = s.delete(&format!("/v2/alice/app/manifests/{}", img.digest), Some(&bob)).await;
    expect_error(resp, 403, "DENIED", "bob deletes in alice/app").await;

    // bob has his own collection.
    let bob_own = s.token(Some(BOB), &[&scope("bob/app", "pull,push")]).await;
    s.push_image(&bob_own, "bob/app", "v1", "bob").await;
    // And alice cannot push there.
    let alice2 = s.token(Some(ALICE), &[&scope("bob/app", "pull,push")]).await;
    assert_eq!(granted(&alice2, "bob/app").expect("entry"), ["pull"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_only_request_does_not_create_a_collection() {
    let s = TestServer::start().await;
    with_users(&s).await;
    let bob = s.token(Some(BOB), &[&scope("fresh/app", "pull")]).await;
    assert!(granted(&bob, "fresh/app").unwrap_or_default().is_empty(), "absent collection grants users nothing");
    let resp = s.get("/v2/fresh/app/tags/list", Some(&bob)).await;
    expect_error(resp, 403, "DENIED", "user reads an absent collection").await;

    // First to ask for push becomes the owner; the second gets only what a public collection gives.
    let alice = s.token(Some(ALICE), &[&scope("fresh/app", "pull,push")]).await;
    let mut a = granted(&alice, "fresh/app").expect("entry");
    a.sort();
    assert_eq!(a, ["pull", "push"]);
    let bob = s.token(Some(BOB), &[&scope("fresh/other", "pull,push")]).await;
    assert_eq!(granted(&bob, "fresh/other").expect("entry"), ["pull"], "collection `fresh` is alice's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_collections_off() {
    let s = TestServer::start_with(|c| c.auth.user_collections = false).await;
    with_users(&s).await;
    let alice = s.token(Some(ALICE), &[&scope("alice/app", "pull,push")]).await;
    assert!(granted(&alice, "alice/app").unwrap_or_default().is_empty(), "no user collections");
    let resp = s.req(Method::POST, "/v2/alice/app/blobs/uploads/", Some(&alice)).send().await.unwrap();
    expect_error(resp, 403, "DENIED", "user push with user_collections off").await;
    // Admins still create collections.
    let admin = s.repo_token(&["staff/app"]).await;
    s.push_image(&admin, "staff/app", "v1", "staff").await;
}

/// Status, error codes and (for 401) the challenge with the repository name blanked, for a
/// set of reads and writes on `repo` with `token`.
async fn probe(s: &TestServer, token: Option<&str>, repo: &str) -> Vec<(String, u16, Vec<String>, Option<String>)> {
    let d = sha256_digest(b"probe");
    let requests = [
        (Method::GET, format!("/v2/{repo}/manifests/v1")),
        (Method::HEAD, format!("/v2/{repo}/manifests/v1")),
        (Method::GET, format!("/v2/{repo}/manifests/{d}")),
        (Method::GET, format!("/v2/{repo}/blobs/{d}")),
        (Method::HEAD, format!("/v2/{repo}/blobs/{d}")),
        (Method::GET, format!("/v2/{repo}/tags/list")),
        (Method::GET, format!("/v2/{repo}/referrers/{d}")),
        (Method::GET, format!("/v2/{repo}/blobs/uploads/00000000-0000-4000-8000-000000000000")),
        (Method::DELETE, format!("/v2/{repo}/manifests/{d}")),
        (Method::DELETE, format!("/v2/{repo}/blobs/{d}")),
    ];
    let mut out = Vec::new();
    for (method, path) in requests {
        let resp = s.req(method.clone(), &path, token).send().await.unwrap();
        let status = resp.status().as_u16();
        let chal = header(&resp, "www-authenticate").map(|c| c.replace(repo, "<repo>"));
        let body = resp.text().await.unwrap_or_default();
        let codes = serde_json::from_str::<Value>(&body).map(|v| error_codes_of(&v)).unwrap_or_default();
        out.push((format!("{method} {}", path.replace(repo, "<repo>")), status, codes, chal));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_and_absent_repositories_answer_alike() {
    let s = TestServer::start_with(|c| c.auth.default_private = true).await;
    with_users(&s).await;
    let alice = s.token(Some(ALICE), &[&scope("alice/app", "pull,push,delete")]).await;
    s.push_image(&alice, "alice/app", "v1", "hidden").await;
    let resp = s.get("/v2/alice/app/manifests/v1", Some(&alice)).await;
    expect_status(resp, 200, "owner reads her private repository").await;

    // bob (a user): the token he asks for, for each repository.
    let hidden_tok = s.token(Some(BOB), &[&scope("alice/app", "pull,delete")]).await;
    let absent_tok = s.token(Some(BOB), &[&scope("ghost/app", "pull,delete")]).await;
    assert!(granted(&hidden_tok, "alice/app").unwrap_or_default().is_empty());
    assert!(granted(&absent_tok, "ghost/app").unwrap_or_default().is_empty());
    let hidden = probe(&s, Some(&hidden_tok), "alice/app").await;
    let absent = probe(&s, Some(&absent_tok), "ghost/app").await;
    for (h, a) in hidden.iter().zip(&absent) {
        assert_eq!(h, a, "user: hidden vs absent differ");
        assert_eq!(h.1, 403, "user on a hidden repository: {h:?}");
        assert!(h.2.iter().any(|c| c == "DENIED") || h.0.starts_with("HEAD"), "{h:?}");
    }
    // Nor does the private repo's name show in bob's view of a blob-upload on it.
    let resp = s.req(Method::POST, "/v2/alice/app/blobs/uploads/", Some(&hidden_tok)).send().await.unwrap();
    assert_eq!(resp.status(), 403);

    // Anonymous, with the token it asked for, and with no token at all.
    let anon_hidden = s.anon_token(&[&scope("alice/app", "pull,delete")]).await;
    let anon_absent = s.anon_token(&[&scope("ghost/app", "pull,delete")]).await;
    let hidden = probe(&s, Some(&anon_hidden), "alice/app").await;
    let absent = probe(&s, Some(&anon_absent), "ghost/app").await;
    for (h, a) in hidden.iter().zip(&absent) {
        assert_eq!(h, a, "anonymous: hidden vs absent differ");
        assert_eq!(h.1, 401, "anonymous on a hidden repository: {h:?}");
        assert!(h.3.is_some(), "401 without challenge: {h:?}");
    }
    let hidden = probe(&s, None, "alice/app").await;
    let absent = probe(&s, None, "ghost/app").await;
    assert_eq!(hidden, absent, "no token: hidden vs absent differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_repository_where_pull_is_granted_is_404() {
    let s = TestServer::start().await;
    with_users(&s).await;
    let token = s.repo_token(&["pubc/app"]).await;
    s.push_image(&token, "pubc/app", "v1", "pubc").await;

    let anon = s.anon_token(&[&scope("pubc/missing", "pull")]).await;
    assert_eq!(granted(&anon, "pubc/missing").expect("entry"), ["pull"]);
    let resp = s.get("/v2/pubc/missing/manifests/v1", Some(&anon)).await;
    expect_error(resp, 404, "NAME_UNKNOWN", "anonymous, absent repo in a public collection").await;
    let resp = s.get("/v2/pubc/missing/tags/list", Some(&anon)).await;
    expect_error(resp, 404, "NAME_UNKNOWN", "anonymous tags of an absent repo").await;

    let bob = s.token(Some(BOB), &[&scope("pubc/missing", "pull")]).await;
    let resp = s.get("/v2/pubc/missing/manifests/v1", Some(&bob)).await;
    expect_error(resp, 404, "NAME_UNKNOWN", "user, absent repo in a public collection").await;
    let resp = s.get(&format!("/v2/pubc/missing/referrers/{}", sha256_digest(b"x")), Some(&bob)).await;
    let index: Value = expect_status(resp, 200, "referrers of an absent repo").await.json().await.unwrap();
    assert_eq!(index["manifests"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_registry_denies_anonymous_everything() {
    let s = TestServer::start_with(|c| c.auth.private_registry = true).await;
    with_users(&s).await;
    let token = s.repo_token(&["corp/app"]).await;
    s.push_image(&token, "corp/app", "v1", "corp").await;
    let resp = s.token_response(None, &[&scope("corp/app", "pull")]).await;
    assert_eq!(resp.status(), 401, "anonymous token on a private registry");
    let resp = s.get("/v2/corp/app/manifests/v1", None).await;
    assert_eq!(resp.status(), 401);
    // Users still pull public collections.
    let bob = s.token(Some(BOB), &[&scope("corp/app", "pull")]).await;
    let resp = s.get("/v2/corp/app/manifests/v1", Some(&bob)).await;
    expect_status(resp, 200, "user pull on a private registry").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_lists_only_what_sub_may_pull() {
    let s = TestServer::start_with(|c| c.auth.default_private = true).await;
    with_users(&s).await;
    let alice = s.token(Some(ALICE), &[&scope("alice/app", "pull,push")]).await;
    s.push_image(&alice, "alice/app", "v1", "a").await;
    let bob = s.token(Some(BOB), &[&scope("bob/app", "pull,push")]).await;
    s.push_image(&bob, "bob/app", "v1", "b").await;

    async fn catalog(s: &TestServer, creds: Option<(&str, &str)>) -> Value {
        let token = s.token(creds, &["registry:catalog:*"]).await;
        let resp = s.get("/v2/_catalog", Some(&token)).await;
        let json: Value = expect_status(resp, 200, "GET /v2/_catalog").await.json().await.unwrap();
        json["repositories"].clone()
    }
    assert_eq!(catalog(&s, Some(ALICE)).await, json!(["alice/app"]));
    assert_eq!(catalog(&s, Some(BOB)).await, json!(["bob/app"]));
    assert_eq!(catalog(&s, Some((ADMIN_USER, ADMIN_PASSWORD))).await, json!(["alice/app", "bob/app"]));
    assert_eq!(catalog(&s, None).await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_contributor_may_push_but_not_delete() {
    let s = TestServer::start().await;
    with_users(&s).await;
    let alice = s.token(Some(ALICE), &[&scope("alice/app", "pull,push")]).await;
    let img = s.push_image(&alice, "alice/app", "v1", "contrib").await;

    let resp = s
        .client()
        .put(s.url("/api/v1/collections/alice/members/users/bob"))
        .basic_auth(ALICE.0, Some(ALICE.1))
        .json(&json!({"role": "contributor"}))
        .send()
        .await
        .unwrap();
    expect_status(resp, 200, "PUT contributor via /api/v1").await;

    let bob = s.token(Some(BOB), &[&scope("alice/app", "pull,push,delete")]).await;
    let mut a = granted(&bob, "alice/app").expect("entry");
    a.sort();
    assert_eq!(a, ["pull", "push"], "contributor actions");
    s.push_image(&bob, "alice/app", "v2", "by-bob").await;
    let resp = s.delete(&format!("/v2/alice/app/manifests/{}", img.digest), Some(&bob)).await;
    expect_error(resp, 403, "DENIED", "contributor delete").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_making_a_collection_private_hides_it() {
    let s = TestServer::start().await;
    with_users(&s).await;
    let alice = s.token(Some(ALICE), &[&scope("alice/app", "pull,push")]).await;
    s.push_image(&alice, "alice/app", "v1", "soon-private").await;
    let bob_before = s.token(Some(BOB), &[&scope("alice/app", "pull")]).await;
    assert_eq!(granted(&bob_before, "alice/app").expect("entry"), ["pull"]);

    let resp = s
        .client()
        .patch(s.url("/api/v1/collections/alice"))
        .basic_auth(ALICE.0, Some(ALICE.1))
        .json(&json!({"private": true}))
        .send()
        .await
        .unwrap();
    expect_status(resp, 200, "PATCH collection private via /api/v1").await;

    let bob = s.token(Some(BOB), &[&scope("alice/app", "pull")]).await;
    assert!(granted(&bob, "alice/app").unwrap_or_default().is_empty(), "private: nothing for bob");
    let resp = s.get("/v2/alice/app/manifests/v1", Some(&bob)).await;
    expect_error(resp, 403, "DENIED", "bob reads a now-private repository").await;
    let anon = s.anon_token(&[&scope("alice/app", "pull")]).await;
    let resp = s.get("/v2/alice/app/manifests/v1", Some(&anon)).await;
    assert_eq!(resp.status(), 401, "anonymous reads a now-private repository");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_does_not_leak_blobs_from_hidden_repositories() {
    let s = TestServer::start_with(|c| c.auth.default_private = true).await;
    with_users(&s).await;
    let alice = s.token(Some(ALICE), &[&scope("alice/app", "pull,push")]).await;
    let secret = s.push_blob(&alice, "alice/app", b"alice's private layer").await;

    let bob = s.token(Some(BOB), &[&scope("bob/app", "pull,push"), &scope("alice/app", "pull")]).await;
    assert!(granted(&bob, "alice/app").unwrap_or_default().is_empty());
    for query in [format!("mount={secret}&from=alice/app"), format!("mount={secret}")] {
        let resp =
            s.req(Method::POST, &format!("/v2/bob/app/blobs/uploads/?{query}"), Some(&bob)).send().await.unwrap();
        let resp = expect_status(resp, 202, &format!("bob mounts alice's private blob ({query})")).await;
        assert!(header(&resp, "location").unwrap().starts_with("/v2/bob/app/blobs/uploads/"));
        let resp = s.get(&format!("/v2/bob/app/blobs/{secret}"), Some(&bob)).await;
        assert_eq!(resp.status(), 404, "the blob must not have been linked into bob/app");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_creation_race_has_one_owner() {
    let s = TestServer::start().await;
    with_users(&s).await;
    for round in 0..5 {
        let name = format!("race{round}/app");
        let mut tasks = Vec::new();
        for who in [ALICE, BOB] {
            let client = s.client().clone();
            let url = s.url("/token");
            let scope = scope(&name, "pull,push");
            tasks.push(tokio::spawn(async move {
                let resp = client
                    .get(url)
                    .query(&[("service", "berth"), ("scope", scope.as_str())])
                    .basic_auth(who.0, Some(who.1))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200, "the loser of the race still gets a token");
                let json: Value = resp.json().await.unwrap();
                json["token"].as_str().unwrap().to_string()
            }));
        }
        let mut pushers = 0;
        for t in tasks {
            let token = t.await.unwrap();
            let actions = granted(&token, &name).unwrap_or_default();
            if actions.iter().any(|a| a == "push") {
                pushers += 1;
            } else {
                assert_eq!(actions, ["pull"], "the loser is judged against the public collection");
            }
        }
        assert_eq!(pushers, 1, "exactly one owner of {name}");
    }
}
