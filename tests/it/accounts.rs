//! Credentials and memberships as the token service sees them (DESIGN §3, §4, §8): API tokens
//! as `docker login` passwords, read-only and revoked API tokens, refresh tokens dying with a
//! password change or deactivation, team ownership, and tokens older than their collection.
//! The management API is used only to set the scene; assertions are on `/token` and `/v2/`.

use crate::common::*;
use reqwest::{Method, Response};
use serde_json::{Value, json};

const ALICE: (&str, &str) = ("alice", "alice-password");
const BOB: (&str, &str) = ("bob", "bob-password");

async fn with_users(s: &TestServer) {
    s.create_user(ALICE.0, "user", ALICE.1).await;
    s.create_user(BOB.0, "user", BOB.1).await;
}

/// A management API call with Basic credentials and an optional JSON body.
async fn api(s: &TestServer, method: Method, path: &str, creds: (&str, &str), body: Option<Value>) -> Response {
    let mut rb = s.client().request(method, s.url(path)).basic_auth(creds.0, Some(creds.1));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    rb.send().await.expect("management API request")
}

/// `GET /token?offline_token=true` as `creds`; returns the refresh token.
async fn refresh_token_for(s: &TestServer, creds: (&str, &str)) -> String {
    let resp = s
        .client()
        .get(s.url("/token"))
        .query(&[("service", "berth"), ("offline_token", "true"), ("client_id", "test")])
        .basic_auth(creds.0, Some(creds.1))
        .send()
        .await
        .unwrap();
    let json: Value = expect_status(resp, 200, "offline token").await.json().await.unwrap();
    json["refresh_token"].as_str().expect("refresh_token").to_string()
}

async fn refresh(s: &TestServer, refresh_token: &str, scope_value: &str) -> Response {
    s.client()
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("service", "berth"),
            ("client_id", "test"),
            ("scope", scope_value),
        ])
        .send()
        .await
        .unwrap()
}

async fn create_api_token(s: &TestServer, creds: (&str, &str), body: Value) -> (String, String) {
    let resp = api(s, Method::POST, "/api/v1/tokens", creds, Some(body)).await;
    let json: Value = expect_status(resp, 201, "POST /api/v1/tokens").await.json().await.unwrap();
    let id = match &json["id"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    (id, json["token"].as_str().expect("token shown once").to_string())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_token_works_as_password_and_revocation_kills_it() {
    let s = TestServer::start().await;
    with_users(&s).await;
    let (id, pat) = create_api_token(&s, ALICE, json!({"name": "ci"})).await;

    let token = s.token(Some((ALICE.0, &pat)), &[&scope("alice/app", "pull,push")]).await;
    assert_eq!(sorted(granted(&token, "alice/app").expect("entry")), ["pull", "push"]);
    let (_, claims) = decode_jwt(&token);
    assert_eq!(claims["sub"], "alice", "sub comes from the API token's owner");
    s.push_blob(&token, "alice/app", b"pushed with a PAT").await;
    let refresh_from_pat = refresh_token_for(&s, (ALICE.0, &pat)).await;
    expect_status(refresh(&s, &refresh_from_pat, "repository:alice/app:pull").await, 200, "refresh from PAT").await;

    let resp = api(&s, Method::DELETE, &format!("/api/v1/tokens/{id}"), ALICE, None).await;
    expect_status(resp, 204, "DELETE /api/v1/tokens/{id}").await;
    let resp = s.token_response(Some((ALICE.0, &pat)), &[&scope("alice/app", "pull")]).await;
    assert_eq!(resp.status(), 401, "revoked API token as password");
    let resp = refresh(&s, &refresh_from_pat, "repository:alice/app:pull").await;
    assert!(
        resp.status() == 401 || resp.status() == 400,
        "refresh token minted from a revoked API token answered {}",
        resp.status()
    );
    // The password still works.
    s.token(Some(ALICE), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_api_token_gets_no_push_and_creates_nothing() {
    let s = TestServer::start().await;
    with_users(&s).await;
    let alice = s.token(Some(ALICE), &[&scope("alice/app", "pull,push")]).await;
    s.push_image(&alice, "alice/app", "v1", "ro").await;
    let (_, ro) = create_api_token(&s, ALICE, json!({"name": "ro", "read_only": true})).await;

    let token = s
        .token(Some((ALICE.0, &ro)), &[&scope("alice/app", "pull,push,delete"), &scope("newcol/app", "pull,push")])
        .await;
    assert_eq!(granted(&token, "alice/app").expect("entry"), ["pull"], "read-only token: pull only");
    assert!(granted(&token, "newcol/app").unwrap_or_default().is_empty(), "read-only tokens create no collection");
    let resp = s.req(Method::POST, "/v2/alice/app/blobs/uploads/", Some(&token)).send().await.unwrap();
    expect_error(resp, 403, "DENIED", "push with a read-only API token").await;

    // A refresh token minted from it inherits the read-only flag.
    let rt = refresh_token_for(&s, (ALICE.0, &ro)).await;
    let resp = refresh(&s, &rt, "repository:alice/app:pull,push").await;
    let json: Value = expect_status(resp, 200, "refresh from read-only PAT").await.json().await.unwrap();
    assert_eq!(granted(json["access_token"].as_str().unwrap(), "alice/app").expect("entry"), ["pull"]);

    // `newcol` was not created: bob can create it.
    let bob = s.token(Some(BOB), &[&scope("newcol/app", "pull,push")]).await;
    assert_eq!(sorted(granted(&bob, "newcol/app").expect("entry")), ["pull", "push"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_and_deactivation_kill_refresh_tokens() {
    let s = TestServer::start().await;
    with_users(&s).await;
    let alice_rt = refresh_token_for(&s, ALICE).await;
    let bob_rt = refresh_token_for(&s, BOB).await;
    expect_status(refresh(&s, &alice_rt, "").await, 200, "alice refresh before").await;

    let admin = (ADMIN_USER, ADMIN_PASSWORD);
    let resp = api(&s, Method::PATCH, "/api/v1/users/alice", admin, Some(json!({"password": "new-alice-pw"}))).await;
    assert!(resp.status().is_success(), "PATCH password: {}", resp.status());
    let resp = refresh(&s, &alice_rt, "").await;
    assert!(resp.status() == 401 || resp.status() == 400, "refresh after password change: {}", resp.status());
    let resp = s.token_response(Some(ALICE), &[]).await;
    assert_eq!(resp.status(), 401, "old password");
    s.token(Some((ALICE.0, "new-alice-pw")), &[]).await;

    let resp = api(&s, Method::PATCH, "/api/v1/users/bob", admin, Some(json!({"active": false}))).await;
    assert!(resp.status().is_success(), "PATCH active=false: {}", resp.status());
    let resp = refresh(&s, &bob_rt, "").await;
    assert!(resp.status() == 401 || resp.status() == 400, "refresh of a deactivated user: {}", resp.status());
    let resp = s.token_response(Some(BOB), &[]).await;
    assert_eq!(resp.status(), 401, "deactivated user logs in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_owner_of_a_collection() {
    let s = TestServer::start().await;
    with_users(&s).await;
    s.create_user("carol", "user", "carol-password").await;
    let alice = s.token(Some(ALICE), &[&scope("alice/app", "pull,push")]).await;
    let img = s.push_image(&alice, "alice/app", "v1", "team").await;

    let resp = api(&s, Method::POST, "/api/v1/teams", ALICE, Some(json!({"name": "devs"}))).await;
    expect_status(resp, 201, "POST /api/v1/teams").await;
    let resp = api(&s, Method::PUT, "/api/v1/teams/devs/members/bob", ALICE, Some(json!({}))).await;
    assert!(resp.status().is_success(), "add bob to devs: {}", resp.status());
    let resp =
        api(&s, Method::PUT, "/api/v1/collections/alice/members/teams/devs", ALICE, Some(json!({"role": "owner"})))
            .await;
    expect_status(resp, 200, "team devs owns collection alice").await;

    let bob = s.token(Some(BOB), &[&scope("alice/app", "pull,push,delete")]).await;
    assert_eq!(sorted(granted(&bob, "alice/app").expect("entry")), ["delete", "pull", "push"]);
    let resp = s.delete(&format!("/v2/alice/app/manifests/{}", img.digest), Some(&bob)).await;
    expect_status(resp, 202, "team owner deletes").await;
    let carol = s.token(Some(("carol", "carol-password")), &[&scope("alice/app", "pull,push")]).await;
    assert_eq!(granted(&carol, "alice/app").expect("entry"), ["pull"], "not in the team");

    // Leaving the team applies from the next token.
    let resp = api(&s, Method::DELETE, "/api/v1/teams/devs/members/bob", ALICE, None).await;
    assert!(resp.status().is_success(), "remove bob from devs: {}", resp.status());
    let bob = s.token(Some(BOB), &[&scope("alice/app", "pull,push,delete")]).await;
    assert_eq!(granted(&bob, "alice/app").expect("entry"), ["pull"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_older_than_its_collection_grants_nothing_there() {
    let s = TestServer::start().await;
    with_users(&s).await;
    // alice creates collection `shared` (no repository yet) and keeps her token.
    let old = s.token(Some(ALICE), &[&scope("shared/app", "pull,push,delete")]).await;
    assert_eq!(sorted(granted(&old, "shared/app").expect("entry")), ["delete", "pull", "push"]);
    let resp = api(&s, Method::DELETE, "/api/v1/collections/shared", ALICE, None).await;
    expect_status(resp, 204, "DELETE empty collection").await;

    // Token times have one-second resolution: let the next creation be strictly later.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let bob = s.token(Some(BOB), &[&scope("shared/app", "pull,push")]).await;
    assert_eq!(sorted(granted(&bob, "shared/app").expect("entry")), ["pull", "push"], "bob recreates `shared`");

    // Grants nothing: the entry's actions are void, so it is judged like an entry lacking
    // them (DESIGN §4: 403 DENIED for a named `sub`), and nothing is written.
    let resp = s.req(Method::POST, "/v2/shared/app/blobs/uploads/", Some(&old)).send().await.unwrap();
    expect_error(resp, 403, "DENIED", "POST upload with a token older than the collection").await;
    let blob = b"written with a stale token".to_vec();
    let digest = sha256_digest(&blob);
    let resp = s
        .req(Method::POST, &format!("/v2/shared/app/blobs/uploads/?digest={digest}"), Some(&old))
        .body(blob)
        .send()
        .await
        .unwrap();
    expect_error(resp, 403, "DENIED", "monolithic push with a token older than the collection").await;
    s.push_blob(&bob, "shared/app", b"bob's").await;
    let resp = s.get(&format!("/v2/shared/app/blobs/{digest}"), Some(&bob)).await;
    assert_eq!(resp.status(), 404, "the stale token wrote a blob into bob's collection");
}
