//! The management API of DESIGN §8 (`/api/v1`): every route's success status and JSON
//! shape, the error statuses (400, 401, 403, 404, 409) with their `{"error","message"}`
//! body, Bearer and Basic authentication with API tokens, paging, visibility, repository
//! and collection deletion; API token features (read-only, expiry, revocation, the CLI's
//! docker config); and brute-force throttling of logins.

use crate::common::*;
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

const PW: &str = "api-test-password";
const ALICE: Cred<'static> = Cred::Basic("alice", PW);
const BOB: Cred<'static> = Cred::Basic("bob", PW);
const CAROL: Cred<'static> = Cred::Basic("carol", PW);
const STAFF: Cred<'static> = Cred::Basic("staff", PW);

async fn people(s: &TestServer) {
    api_user(s, "staff", PW, "admin").await;
    for u in ["alice", "bob", "carol"] {
        api_user(s, u, PW, "user").await;
    }
}

async fn get(s: &TestServer, path: &str, cred: Cred<'_>, status: u16) -> Value {
    api_expect(s, Method::GET, path, cred, None, status).await
}

async fn post(s: &TestServer, path: &str, cred: Cred<'_>, body: Value, status: u16) -> Value {
    api_expect(s, Method::POST, path, cred, Some(&body), status).await
}

async fn put(s: &TestServer, path: &str, cred: Cred<'_>, body: Option<Value>, status: u16) -> Value {
    api_expect(s, Method::PUT, path, cred, body.as_ref(), status).await
}

async fn patch(s: &TestServer, path: &str, cred: Cred<'_>, body: Value, status: u16) -> Value {
    api_expect(s, Method::PATCH, path, cred, Some(&body), status).await
}

async fn delete(s: &TestServer, path: &str, cred: Cred<'_>, status: u16) -> Value {
    api_expect(s, Method::DELETE, path, cred, None, status).await
}

/// `POST /api/v1/tokens` as `cred`; returns `(id, secret)`.
async fn api_token(s: &TestServer, cred: Cred<'_>, body: Value) -> (String, String) {
    let t = post(s, "/api/v1/tokens", cred, body, 201).await;
    let id = t["id"].as_str().unwrap_or_else(|| panic!("no id in {t}")).to_string();
    let secret = t["token"].as_str().unwrap_or_else(|| panic!("no token in {t}")).to_string();
    (id, secret)
}

/// Members of a collection listing as sorted JSON strings.
fn members(c: &Value, key: &str) -> Vec<String> {
    let mut v: Vec<String> =
        c[key].as_array().unwrap_or_else(|| panic!("no {key} in {c}")).iter().map(Value::to_string).collect();
    v.sort();
    v
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|x| x[key].as_str().unwrap_or_else(|| panic!("no {key} in {x}")).to_string())
        .collect()
}

/// Pushes an image into `repo` as `user` (who gets or creates push there).
async fn push_as(s: &TestServer, user: &str, repo: &str, tag: &str) -> Image {
    let token = s.token(Some((user, PW)), &[&scope(repo, "pull,push")]).await;
    assert!(
        granted_sorted(&token, repo).contains(&"push".to_string()),
        "{user} may push to {repo}: {:?}",
        decode_jwt(&token).1
    );
    s.push_image(&token, repo, tag, &format!("{repo}:{tag}")).await
}

// ----- every route, success path ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_answers_with_its_shape() {
    let s = TestServer::start().await;

    let me = get(&s, "/api/v1/me", ADMIN, 200).await;
    assert_eq!(me["username"], ADMIN_USER, "{me}");
    assert_eq!(me["role"], "superuser", "{me}");

    // Users.
    let u = post(&s, "/api/v1/users", ADMIN, json!({"username": "alice", "password": PW, "role": "user"}), 201).await;
    assert_eq!((u["username"].as_str(), u["role"].as_str()), (Some("alice"), Some("user")), "{u}");
    assert!(u.get("password").is_none() && u.get("password_hash").is_none(), "no secret in {u}");
    post(&s, "/api/v1/users", ADMIN, json!({"username": "bob", "password": PW, "role": "user"}), 201).await;
    let list = get(&s, "/api/v1/users", ADMIN, 200).await;
    assert_eq!(names(&list, "username"), ["admin", "alice", "bob"]);
    let u = patch(&s, "/api/v1/users/bob", ADMIN, json!({"role": "admin"}), 200).await;
    assert_eq!(u["role"], "admin", "{u}");
    let u = patch(&s, "/api/v1/users/bob", ADMIN, json!({"role": "user"}), 200).await;
    assert_eq!(u["role"], "user", "{u}");
    let u = patch(&s, "/api/v1/users/bob", ADMIN, json!({"active": false}), 200).await;
    assert_eq!(u["active"], false, "{u}");
    assert_eq!(s.token_response(Some(("bob", PW)), &[]).await.status(), 401, "an inactive user cannot log in");
    api_error(&s, Method::GET, "/api/v1/me", BOB, None, 401).await;
    patch(&s, "/api/v1/users/bob", ADMIN, json!({"active": true}), 200).await;
    patch(&s, "/api/v1/users/bob", ADMIN, json!({"password": "bob-new-password"}), 200).await;
    assert_eq!(s.token_response(Some(("bob", PW)), &[]).await.status(), 401, "old password");
    expect_status(s.token_response(Some(("bob", "bob-new-password")), &[]).await, 200, "new password").await;
    const BOB: Cred<'static> = Cred::Basic("bob", "bob-new-password");

    // Own API tokens.
    let t = post(&s, "/api/v1/tokens", ALICE, json!({"name": "ci"}), 201).await;
    let id = t["id"].as_str().expect("id").to_string();
    assert!(t["token"].is_string(), "the secret is shown once: {t}");
    assert_eq!(t["name"], "ci", "{t}");
    assert_eq!(t["read_only"], false, "{t}");
    let list = get(&s, "/api/v1/tokens", ALICE, 200).await;
    let listed = list.as_array().expect("array");
    assert_eq!(listed.len(), 1, "{list}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(listed[0].get("token").is_none(), "the secret is never listed: {list}");
    assert_eq!(get(&s, "/api/v1/tokens", BOB, 200).await, json!([]), "tokens are per user");
    delete(&s, &format!("/api/v1/tokens/{id}"), ALICE, 204).await;

    // Teams.
    let t = post(&s, "/api/v1/teams", ADMIN, json!({"name": "devs"}), 201).await;
    assert_eq!(t["name"], "devs", "{t}");
    assert_eq!(t["owner"], ADMIN_USER, "the creator owns the team: {t}");
    let m = put(&s, "/api/v1/teams/devs/members/alice", ADMIN, None, 200).await;
    assert_eq!((m["team"].as_str(), m["user"].as_str()), (Some("devs"), Some("alice")), "membership: {m}");
    put(&s, "/api/v1/teams/devs/members/bob", ADMIN, None, 200).await;
    let t = get(&s, "/api/v1/teams/devs", ADMIN, 200).await;
    assert_eq!(t["members"], json!(["alice", "bob"]), "{t}");
    assert_eq!(names(&get(&s, "/api/v1/teams", ADMIN, 200).await, "name"), ["devs"]);
    delete(&s, "/api/v1/teams/devs/members/bob", ADMIN, 204).await;
    assert_eq!(get(&s, "/api/v1/teams/devs", ADMIN, 200).await["members"], json!(["alice"]));
    let t = patch(&s, "/api/v1/teams/devs", ADMIN, json!({"owner": "alice"}), 200).await;
    assert_eq!(t["owner"], "alice", "{t}");
    // The new owner manages it.
    put(&s, "/api/v1/teams/devs/members/bob", ALICE, None, 200).await;

    // Collections and members.
    let c = post(&s, "/api/v1/collections", ALICE, json!({"name": "lab"}), 201).await;
    assert_eq!(c["name"], "lab", "{c}");
    assert_eq!(c["private"], false, "default_private is false: {c}");
    assert_eq!(c["owners"], json!([{"user": "alice"}]), "{c}");
    assert_eq!(c["contributors"], json!([]), "{c}");
    assert_eq!(c["repositories"], json!([]), "{c}");
    let c = post(&s, "/api/v1/collections", ALICE, json!({"name": "vault", "private": true}), 201).await;
    assert_eq!(c["private"], true, "{c}");
    let c = patch(&s, "/api/v1/collections/lab", ALICE, json!({"private": true}), 200).await;
    assert_eq!(c["private"], true, "{c}");
    let c = patch(&s, "/api/v1/collections/lab", ALICE, json!({"private": false}), 200).await;
    assert_eq!(c["private"], false, "{c}");
    let m =
        put(&s, "/api/v1/collections/lab/members/users/bob", ALICE, Some(json!({"role": "contributor"})), 200).await;
    assert_eq!((m["user"].as_str(), m["role"].as_str()), (Some("bob"), Some("contributor")), "membership: {m}");
    let m = put(&s, "/api/v1/collections/lab/members/teams/devs", ALICE, Some(json!({"role": "owner"})), 200).await;
    assert_eq!((m["team"].as_str(), m["role"].as_str()), (Some("devs"), Some("owner")), "membership: {m}");
    let c = get(&s, "/api/v1/collections/lab", ALICE, 200).await;
    assert_eq!(members(&c, "owners"), [r#"{"team":"devs"}"#, r#"{"user":"alice"}"#], "{c}");
    assert_eq!(members(&c, "contributors"), [r#"{"user":"bob"}"#], "{c}");
    let list = get(&s, "/api/v1/collections", ALICE, 200).await;
    assert_eq!(names(&list, "name"), ["lab", "vault"]);
    delete(&s, "/api/v1/collections/lab/members/users/bob", ALICE, 204).await;
    delete(&s, "/api/v1/collections/lab/members/teams/devs", ALICE, 204).await;
    let c = get(&s, "/api/v1/collections/lab", ALICE, 200).await;
    assert_eq!((c["owners"].clone(), c["contributors"].clone()), (json!([{"user": "alice"}]), json!([])));

    // Repositories.
    let img = push_as(&s, "alice", "lab/app", "v1").await;
    let c = get(&s, "/api/v1/collections/lab", ALICE, 200).await;
    assert_eq!(c["repositories"], json!(["lab/app"]), "{c}");
    let r = get(&s, "/api/v1/repositories/lab/app", ALICE, 200).await;
    assert_eq!(r["name"], "lab/app", "{r}");
    let tags = r["tags"].as_array().unwrap_or_else(|| panic!("no tags in {r}"));
    assert_eq!(tags.len(), 1, "{r}");
    assert_eq!(tags[0]["name"], "v1", "{r}");
    assert_eq!(tags[0]["digest"], img.digest.as_str(), "{r}");
    assert!(tags[0]["size"].as_u64().is_some_and(|n| n > 0), "size: {r}");
    assert!(tags[0]["updated_at"].is_number() || tags[0]["updated_at"].is_string(), "updated_at: {r}");
    delete(&s, "/api/v1/repositories/lab/app", ALICE, 204).await;
    get(&s, "/api/v1/repositories/lab/app", ALICE, 404).await;

    // Deletions.
    delete(&s, "/api/v1/collections/lab", ALICE, 204).await;
    get(&s, "/api/v1/collections/lab", ALICE, 404).await;
    delete(&s, "/api/v1/teams/devs", ALICE, 204).await;
    get(&s, "/api/v1/teams/devs", ADMIN, 404).await;
    delete(&s, "/api/v1/collections/vault", ALICE, 204).await;
    delete(&s, "/api/v1/users/bob", ADMIN, 204).await;
    assert_eq!(names(&get(&s, "/api/v1/users", ADMIN, 200).await, "username"), ["admin", "alice"]);
    assert_eq!(s.token_response(Some(("bob", "bob-new-password")), &[]).await.status(), 401, "deleted user");
}

// ----- errors -----------------------------------------------------------------------------

/// Sends a raw (possibly malformed) body.
async fn raw(s: &TestServer, method: Method, path: &str, cred: Cred<'_>, body: &str) -> (u16, Value) {
    let mut rb =
        s.client().request(method, s.url(path)).header("content-type", "application/json").body(body.to_string());
    if let Cred::Basic(u, p) = cred {
        rb = rb.basic_auth(u, Some(p));
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_400() {
    let s = TestServer::start().await;
    people(&s).await;
    post(&s, "/api/v1/collections", ALICE, json!({"name": "lab"}), 201).await;
    post(&s, "/api/v1/teams", ALICE, json!({"name": "devs"}), 201).await;

    // Malformed JSON, wrong types, missing fields.
    for (method, path) in [
        (Method::POST, "/api/v1/users"),
        (Method::PATCH, "/api/v1/users/alice"),
        (Method::POST, "/api/v1/tokens"),
        (Method::POST, "/api/v1/teams"),
        (Method::PATCH, "/api/v1/teams/devs"),
        (Method::POST, "/api/v1/collections"),
        (Method::PATCH, "/api/v1/collections/lab"),
        (Method::PUT, "/api/v1/collections/lab/members/users/bob"),
        (Method::PUT, "/api/v1/collections/lab/members/teams/devs"),
    ] {
        for body in ["{not json", "[]", "\"x\""] {
            let (status, json) = raw(&s, method.clone(), path, ADMIN, body).await;
            assert_eq!(status, 400, "{method} {path} with {body:?}: {json}");
            assert!(json["error"].is_string() && json["message"].is_string(), "{json}");
        }
    }
    let bad = |b: Value| Some(b);
    for (method, path, body) in [
        (Method::POST, "/api/v1/users", bad(json!({"username": "dave"}))),
        (Method::POST, "/api/v1/users", bad(json!({"username": "Not A Name", "password": PW}))),
        (Method::POST, "/api/v1/users", bad(json!({"username": "", "password": PW}))),
        (Method::POST, "/api/v1/users", bad(json!({"username": "dave", "password": ""}))),
        (Method::POST, "/api/v1/users", bad(json!({"username": "dave", "password": PW, "role": "god"}))),
        (Method::PATCH, "/api/v1/users/alice", bad(json!({"role": "god"}))),
        (Method::PATCH, "/api/v1/users/alice", bad(json!({"active": "yes"}))),
        (Method::POST, "/api/v1/tokens", bad(json!({}))),
        (Method::POST, "/api/v1/tokens", bad(json!({"name": "ci", "expires_in_days": -1}))),
        (Method::POST, "/api/v1/tokens", bad(json!({"name": "ci", "read_only": "no"}))),
        (Method::POST, "/api/v1/teams", bad(json!({"name": "Bad Team"}))),
        (Method::POST, "/api/v1/teams", bad(json!({"name": "a/b"}))),
        (Method::POST, "/api/v1/collections", bad(json!({"name": "UPPER"}))),
        (Method::POST, "/api/v1/collections", bad(json!({"name": "lab/sub"}))),
        (Method::POST, "/api/v1/collections", bad(json!({"name": "-lab"}))),
        (Method::POST, "/api/v1/collections", bad(json!({"name": ""}))),
        (Method::POST, "/api/v1/collections", bad(json!({"name": "ok", "private": "yes"}))),
        (Method::PATCH, "/api/v1/collections/lab", bad(json!({"private": "yes"}))),
        (Method::PATCH, "/api/v1/collections/lab", bad(json!({}))),
        (Method::PUT, "/api/v1/collections/lab/members/users/bob", bad(json!({"role": "boss"}))),
        (Method::PUT, "/api/v1/collections/lab/members/users/bob", bad(json!({}))),
        (Method::PUT, "/api/v1/collections/lab/members/teams/devs", bad(json!({"role": "admin"}))),
        (Method::GET, "/api/v1/collections?n=abc", None),
        (Method::GET, "/api/v1/users?n=-1", None),
    ] {
        api_error(&s, method, path, ADMIN, body.as_ref(), 400).await;
    }
    // Nothing of that was stored.
    assert_eq!(
        names(&get(&s, "/api/v1/users", ADMIN, 200).await, "username"),
        ["admin", "alice", "bob", "carol", "staff"]
    );
    assert_eq!(names(&get(&s, "/api/v1/collections", ADMIN, 200).await, "name"), ["lab"]);
    assert_eq!(names(&get(&s, "/api/v1/teams", ADMIN, 200).await, "name"), ["devs"]);
    assert_eq!(get(&s, "/api/v1/users", ADMIN, 200).await[1]["role"], "user", "alice's role unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_or_bad_credentials_are_401() {
    let s = TestServer::start().await;
    people(&s).await;
    post(&s, "/api/v1/collections", ALICE, json!({"name": "lab"}), 201).await;
    let (_, secret) = api_token(&s, ALICE, json!({"name": "ci"})).await;
    let registry_jwt = s.token(Some(("alice", PW)), &[&scope("lab/app", "pull")]).await;
    let routes: &[(Method, &str)] = &[
        (Method::GET, "/api/v1/me"),
        (Method::GET, "/api/v1/users"),
        (Method::POST, "/api/v1/users"),
        (Method::GET, "/api/v1/tokens"),
        (Method::POST, "/api/v1/tokens"),
        (Method::GET, "/api/v1/teams"),
        (Method::POST, "/api/v1/teams"),
        (Method::GET, "/api/v1/collections"),
        (Method::POST, "/api/v1/collections"),
        (Method::GET, "/api/v1/collections/lab"),
        (Method::PATCH, "/api/v1/collections/lab"),
        (Method::DELETE, "/api/v1/collections/lab"),
        (Method::PUT, "/api/v1/collections/lab/members/users/bob"),
        (Method::GET, "/api/v1/repositories/lab/app"),
        (Method::DELETE, "/api/v1/repositories/lab/app"),
    ];
    let body = json!({"name": "x", "role": "owner", "private": true});
    // No credentials, and Bearer values that are not API tokens, on every route.
    let not_tokens = [
        Cred::Nobody,
        Cred::Bearer("berth_pat_not-a-real-token"),
        Cred::Bearer("garbage"),
        Cred::Bearer(PW),            // Bearer takes API tokens only, not passwords
        Cred::Bearer(&registry_jwt), // nor registry JWTs
    ];
    for cred in not_tokens {
        for (method, path) in routes {
            api_error(&s, method.clone(), path, cred, Some(&body), 401).await;
        }
    }
    // Bad Basic credentials count as failed logins (throttled after 5 per account), so only
    // a few routes each.
    let bad_basic = [
        Cred::Basic("alice", "wrong-password"),
        Cred::Basic("nobody-at-all", PW),
        Cred::Basic("bob", &secret), // alice's API token under another name
    ];
    for cred in bad_basic {
        for (method, path) in routes.iter().step_by(4) {
            api_error(&s, method.clone(), path, cred, Some(&body), 401).await;
        }
    }
    // Nothing changed.
    let c = get(&s, "/api/v1/collections/lab", ADMIN, 200).await;
    assert_eq!(c["private"], false, "{c}");

    // The API token works as Bearer and as Basic user:token.
    assert_eq!(get(&s, "/api/v1/me", Cred::Bearer(&secret), 200).await["username"], "alice");
    assert_eq!(get(&s, "/api/v1/me", Cred::Basic("alice", &secret), 200).await["username"], "alice");
    let c = patch(&s, "/api/v1/collections/lab", Cred::Bearer(&secret), json!({"private": true}), 200).await;
    assert_eq!(c["private"], true, "a full API token writes: {c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn not_allowed_is_403() {
    let s = TestServer::start().await;
    people(&s).await;
    post(&s, "/api/v1/collections", ALICE, json!({"name": "lab"}), 201).await;
    put(&s, "/api/v1/collections/lab/members/users/bob", ALICE, Some(json!({"role": "contributor"})), 200).await;
    post(&s, "/api/v1/teams", ALICE, json!({"name": "devs"}), 201).await;
    put(&s, "/api/v1/teams/devs/members/bob", ALICE, None, 200).await;
    let new_user = json!({"username": "eve", "password": PW, "role": "user"});

    // Only a superuser manages users; admins do not.
    for who in [ALICE, STAFF] {
        api_error(&s, Method::POST, "/api/v1/users", who, Some(&new_user), 403).await;
        api_error(&s, Method::PATCH, "/api/v1/users/carol", who, Some(&json!({"role": "superuser"})), 403).await;
        api_error(&s, Method::DELETE, "/api/v1/users/carol", who, None, 403).await;
    }
    api_error(&s, Method::GET, "/api/v1/users", ALICE, None, 403).await;
    api_error(&s, Method::PATCH, "/api/v1/users/alice", ALICE, Some(&json!({"role": "superuser"})), 403).await;

    // A contributor (bob) may not manage the collection; a user who merely sees it neither.
    for who in [BOB, CAROL] {
        api_error(&s, Method::PATCH, "/api/v1/collections/lab", who, Some(&json!({"private": true})), 403).await;
        let body = json!({"role": "owner"});
        api_error(&s, Method::PUT, "/api/v1/collections/lab/members/users/carol", who, Some(&body), 403).await;
        api_error(&s, Method::DELETE, "/api/v1/collections/lab/members/users/alice", who, None, 403).await;
        api_error(&s, Method::DELETE, "/api/v1/collections/lab", who, None, 403).await;
    }
    // A team member who does not own the team may not manage it.
    api_error(&s, Method::PUT, "/api/v1/teams/devs/members/carol", BOB, None, 403).await;
    api_error(&s, Method::DELETE, "/api/v1/teams/devs", BOB, None, 403).await;
    api_error(&s, Method::PATCH, "/api/v1/teams/devs", BOB, Some(&json!({"owner": "bob"})), 403).await;
    // Admins manage all collections and teams.
    patch(&s, "/api/v1/collections/lab", STAFF, json!({"private": true}), 200).await;
    put(&s, "/api/v1/teams/devs/members/carol", STAFF, None, 200).await;

    // A read-only API token may only GET, as Bearer or as Basic user:token.
    let (_, ro) = api_token(&s, ALICE, json!({"name": "ro", "read_only": true})).await;
    for cred in [Cred::Bearer(&ro), Cred::Basic("alice", &ro)] {
        let me = get(&s, "/api/v1/me", cred, 200).await;
        assert_eq!(me["username"], "alice");
        get(&s, "/api/v1/collections/lab", cred, 200).await;
        api_error(&s, Method::POST, "/api/v1/collections", cred, Some(&json!({"name": "rocoll"})), 403).await;
        api_error(&s, Method::POST, "/api/v1/teams", cred, Some(&json!({"name": "roteam"})), 403).await;
        api_error(&s, Method::POST, "/api/v1/tokens", cred, Some(&json!({"name": "more"})), 403).await;
        api_error(&s, Method::PATCH, "/api/v1/collections/lab", cred, Some(&json!({"private": false})), 403).await;
        api_error(&s, Method::DELETE, "/api/v1/collections/lab", cred, None, 403).await;
    }
    get(&s, "/api/v1/collections/rocoll", ADMIN, 404).await;
    get(&s, "/api/v1/teams/roteam", ADMIN, 404).await;
    assert_eq!(get(&s, "/api/v1/collections/lab", ADMIN, 200).await["private"], true, "unchanged by the 403s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_or_invisible_is_404() {
    let s = TestServer::start().await;
    people(&s).await;
    post(&s, "/api/v1/collections", ALICE, json!({"name": "vault", "private": true}), 201).await;
    push_as(&s, "alice", "vault/app", "v1").await;
    post(&s, "/api/v1/teams", ALICE, json!({"name": "devs"}), 201).await;

    // Unknown things, even for the superuser.
    get(&s, "/api/v1/collections/nope", ADMIN, 404).await;
    api_error(&s, Method::PATCH, "/api/v1/collections/nope", ADMIN, Some(&json!({"private": true})), 404).await;
    api_error(&s, Method::DELETE, "/api/v1/collections/nope", ADMIN, None, 404).await;
    api_error(&s, Method::PATCH, "/api/v1/users/ghost", ADMIN, Some(&json!({"active": false})), 404).await;
    api_error(&s, Method::DELETE, "/api/v1/users/ghost", ADMIN, None, 404).await;
    api_error(&s, Method::GET, "/api/v1/teams/ghosts", ADMIN, None, 404).await;
    api_error(&s, Method::PUT, "/api/v1/teams/ghosts/members/bob", ADMIN, None, 404).await;
    api_error(&s, Method::PUT, "/api/v1/teams/devs/members/ghost", ADMIN, None, 404).await;
    api_error(&s, Method::DELETE, "/api/v1/teams/devs/members/bob", ADMIN, None, 404).await;
    let role = json!({"role": "contributor"});
    api_error(&s, Method::PUT, "/api/v1/collections/vault/members/users/ghost", ADMIN, Some(&role), 404).await;
    api_error(&s, Method::PUT, "/api/v1/collections/vault/members/teams/ghosts", ADMIN, Some(&role), 404).await;
    api_error(&s, Method::DELETE, "/api/v1/collections/vault/members/users/bob", ADMIN, None, 404).await;
    api_error(&s, Method::GET, "/api/v1/repositories/vault/missing", ADMIN, None, 404).await;
    api_error(&s, Method::DELETE, "/api/v1/repositories/vault/missing", ADMIN, None, 404).await;
    api_error(&s, Method::DELETE, "/api/v1/tokens/0123456789abcdef", ALICE, None, 404).await;

    // alice's private collection does not exist for bob: every route on it is 404, and
    // answers exactly as for a collection that does not exist.
    for path in ["vault", "nope"] {
        let c = format!("/api/v1/collections/{path}");
        api_error(&s, Method::GET, &c, BOB, None, 404).await;
        api_error(&s, Method::PATCH, &c, BOB, Some(&json!({"private": false})), 404).await;
        api_error(&s, Method::DELETE, &c, BOB, None, 404).await;
        api_error(&s, Method::PUT, &format!("{c}/members/users/bob"), BOB, Some(&json!({"role": "owner"})), 404).await;
        api_error(&s, Method::DELETE, &format!("{c}/members/users/alice"), BOB, None, 404).await;
        api_error(&s, Method::GET, &format!("/api/v1/repositories/{path}/app"), BOB, None, 404).await;
        api_error(&s, Method::DELETE, &format!("/api/v1/repositories/{path}/app"), BOB, None, 404).await;
    }
    let a = api_call(&s, Method::GET, "/api/v1/collections/vault", BOB, None).await.text().await.unwrap();
    let b = api_call(&s, Method::GET, "/api/v1/collections/nope", BOB, None).await.text().await.unwrap();
    assert_eq!(a.replace("vault", "X"), b.replace("nope", "X"), "hidden and absent bodies differ");
    // bob cannot revoke alice's token.
    let (id, _) = api_token(&s, ALICE, json!({"name": "ci"})).await;
    api_error(&s, Method::DELETE, &format!("/api/v1/tokens/{id}"), BOB, None, 404).await;
    assert_eq!(get(&s, "/api/v1/tokens", ALICE, 200).await.as_array().map(Vec::len), Some(1));
    // And still nothing changed for alice.
    let c = get(&s, "/api/v1/collections/vault", ALICE, 200).await;
    assert_eq!((c["private"].clone(), c["owners"].clone()), (json!(true), json!([{"user": "alice"}])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicts_are_409() {
    let s = TestServer::start().await;
    people(&s).await;
    let dup_user = json!({"username": "alice", "password": "other", "role": "user"});
    api_error(&s, Method::POST, "/api/v1/users", ADMIN, Some(&dup_user), 409).await;
    post(&s, "/api/v1/teams", ALICE, json!({"name": "devs"}), 201).await;
    api_error(&s, Method::POST, "/api/v1/teams", BOB, Some(&json!({"name": "devs"})), 409).await;
    post(&s, "/api/v1/collections", ALICE, json!({"name": "lab", "private": true}), 201).await;
    // Collection names are visible to whoever may create collections (§3): bob learns that
    // `lab` exists, though it is private, and nothing else.
    for who in [ALICE, BOB, ADMIN] {
        api_error(&s, Method::POST, "/api/v1/collections", who, Some(&json!({"name": "lab"})), 409).await;
    }
    // A collection auto-created by a push token is taken too.
    push_as(&s, "bob", "auto/app", "v1").await;
    api_error(&s, Method::POST, "/api/v1/collections", ALICE, Some(&json!({"name": "auto"})), 409).await;

    // The last owner can be neither removed nor demoted, nor deleted as a user.
    let owner = json!({"role": "owner"});
    let contributor = json!({"role": "contributor"});
    api_error(&s, Method::DELETE, "/api/v1/collections/lab/members/users/alice", ALICE, None, 409).await;
    api_error(&s, Method::PUT, "/api/v1/collections/lab/members/users/alice", ALICE, Some(&contributor), 409).await;
    api_error(&s, Method::DELETE, "/api/v1/users/alice", ADMIN, None, 409).await;
    let c = get(&s, "/api/v1/collections/lab", ADMIN, 200).await;
    assert_eq!(c["owners"], json!([{"user": "alice"}]), "still the owner: {c}");
    get(&s, "/api/v1/me", ALICE, 200).await;

    // With a second owner (a team), alice may step down, and then the team is the last owner.
    put(&s, "/api/v1/teams/devs/members/carol", ALICE, None, 200).await;
    put(&s, "/api/v1/collections/lab/members/teams/devs", ALICE, Some(owner.clone()), 200).await;
    put(&s, "/api/v1/collections/lab/members/users/alice", ALICE, Some(contributor.clone()), 200).await;
    api_error(&s, Method::DELETE, "/api/v1/collections/lab/members/teams/devs", ADMIN, None, 409).await;
    api_error(&s, Method::PUT, "/api/v1/collections/lab/members/teams/devs", ADMIN, Some(&contributor), 409).await;
    put(&s, "/api/v1/collections/lab/members/users/bob", ADMIN, Some(owner), 200).await;
    delete(&s, "/api/v1/collections/lab/members/teams/devs", ADMIN, 204).await;
    // alice owns nothing now, so she can be deleted; bob owns lab and auto.
    delete(&s, "/api/v1/users/alice", ADMIN, 204).await;
    api_error(&s, Method::DELETE, "/api/v1/users/bob", ADMIN, None, 409).await;
    let c = get(&s, "/api/v1/collections/lab", ADMIN, 200).await;
    assert_eq!(c["owners"], json!([{"user": "bob"}]), "{c}");
    assert_eq!(c["contributors"], json!([]), "the deleted user's membership is gone: {c}");
}

// ----- lists ------------------------------------------------------------------------------

/// Follows `Link` from `path` with `n`; returns every item's `key`, checking page sizes.
async fn walk(s: &TestServer, path: &str, key: &str, n: usize, cred: Cred<'_>) -> Vec<String> {
    let mut next = format!("{path}?n={n}");
    let mut all = Vec::new();
    for _ in 0..50 {
        let resp = api_call(s, Method::GET, &next, cred, None).await;
        let resp = expect_status(resp, 200, &format!("GET {next}")).await;
        let link = header(&resp, "link");
        let page: Value = resp.json().await.unwrap();
        let items = names(&page, key);
        assert!(items.len() <= n, "{next}: {} items for n={n}", items.len());
        all.extend(items);
        match link {
            None => return all,
            Some(l) => {
                assert!(l.ends_with("rel=\"next\""), "Link: {l}");
                next = l[l.find('<').expect("<") + 1..l.find('>').expect(">")].to_string();
                assert!(next.starts_with(path) && next.contains("last="), "Link target: {next}");
            }
        }
    }
    panic!("paging {path} did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lists_are_sorted_by_name_and_paged() {
    let s = TestServer::start().await;
    // Created out of order on purpose.
    let users = ["zed", "mike", "amy", "bea", "kim"];
    for u in users {
        api_user(&s, u, PW, "user").await;
    }
    for c in ["tools", "apps", "lab", "base", "zoo", "mid"] {
        post(&s, "/api/v1/collections", ADMIN, json!({"name": c}), 201).await;
        post(&s, "/api/v1/teams", ADMIN, json!({"name": format!("t-{c}")}), 201).await;
    }
    let mut want_users: Vec<String> =
        users.iter().map(std::string::ToString::to_string).chain([ADMIN_USER.to_string()]).collect();
    want_users.sort();
    let mut want_colls: Vec<String> =
        ["tools", "apps", "lab", "base", "zoo", "mid"].iter().map(std::string::ToString::to_string).collect();
    want_colls.sort();
    let want_teams: Vec<String> = want_colls.iter().map(|c| format!("t-{c}")).collect();

    assert_eq!(names(&get(&s, "/api/v1/users", ADMIN, 200).await, "username"), want_users);
    assert_eq!(names(&get(&s, "/api/v1/collections", ADMIN, 200).await, "name"), want_colls);
    assert_eq!(names(&get(&s, "/api/v1/teams", ADMIN, 200).await, "name"), want_teams);
    for n in [1, 2, 4, 100] {
        assert_eq!(walk(&s, "/api/v1/users", "username", n, ADMIN).await, want_users, "users n={n}");
        assert_eq!(walk(&s, "/api/v1/collections", "name", n, ADMIN).await, want_colls, "collections n={n}");
        assert_eq!(walk(&s, "/api/v1/teams", "name", n, ADMIN).await, want_teams, "teams n={n}");
    }
    // `last` is exclusive and need not exist.
    let page = get(&s, "/api/v1/collections?n=2&last=b", ADMIN, 200).await;
    assert_eq!(names(&page, "name"), ["base", "lab"]);
    let page = get(&s, "/api/v1/users?last=kim", ADMIN, 200).await;
    assert_eq!(names(&page, "username"), ["mike", "zed"]);
    let resp = api_call(&s, Method::GET, "/api/v1/teams?n=2&last=t-tools", ADMIN, None).await;
    let resp = expect_status(resp, 200, "last page").await;
    assert!(header(&resp, "link").is_none(), "no Link after the last page");
    assert_eq!(names(&resp.json().await.unwrap(), "name"), ["t-zoo"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collection_list_shows_only_what_the_caller_may_see() {
    let s = TestServer::start().await;
    people(&s).await;
    api_user(&s, "dave", PW, "user").await;
    post(&s, "/api/v1/collections", ALICE, json!({"name": "apriv", "private": true}), 201).await;
    post(&s, "/api/v1/collections", BOB, json!({"name": "bpub"}), 201).await;
    post(&s, "/api/v1/collections", BOB, json!({"name": "bpriv", "private": true}), 201).await;
    post(&s, "/api/v1/collections", ADMIN, json!({"name": "cteam", "private": true}), 201).await;
    post(&s, "/api/v1/teams", ADMIN, json!({"name": "crew"}), 201).await;
    put(&s, "/api/v1/teams/crew/members/carol", ADMIN, None, 200).await;
    put(&s, "/api/v1/collections/cteam/members/teams/crew", ADMIN, Some(json!({"role": "contributor"})), 200).await;
    put(&s, "/api/v1/collections/bpriv/members/users/alice", BOB, Some(json!({"role": "contributor"})), 200).await;

    let dave = Cred::Basic("dave", PW);
    for (who, cred, want) in [
        ("superuser", ADMIN, vec!["apriv", "bpriv", "bpub", "cteam"]),
        ("admin", STAFF, vec!["apriv", "bpriv", "bpub", "cteam"]),
        ("alice", ALICE, vec!["apriv", "bpriv", "bpub"]),
        ("bob", BOB, vec!["bpriv", "bpub"]),
        ("carol (team)", CAROL, vec!["bpub", "cteam"]),
        ("dave", dave, vec!["bpub"]),
    ] {
        let list = get(&s, "/api/v1/collections", cred, 200).await;
        assert_eq!(names(&list, "name"), want, "{who}: {list}");
        assert_eq!(walk(&s, "/api/v1/collections", "name", 1, cred).await, want, "{who}, paged");
        for c in list.as_array().unwrap() {
            let private = c["private"].as_bool().expect("private");
            assert_eq!(private, c["name"] != "bpub", "{c}");
        }
    }
    api_error(&s, Method::GET, "/api/v1/collections", Cred::Nobody, None, 401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn user_collections_off_forbids_users_to_create() {
    let s = start_with_settings(false, false).await;
    people(&s).await;
    api_error(&s, Method::POST, "/api/v1/collections", ALICE, Some(&json!({"name": "lab"})), 403).await;
    api_error(&s, Method::POST, "/api/v1/teams", ALICE, Some(&json!({"name": "devs"})), 403).await;
    get(&s, "/api/v1/collections/lab", ADMIN, 404).await;
    get(&s, "/api/v1/teams/devs", ADMIN, 404).await;
    // Admins and superusers still do, and may then make a user owner, who acts there.
    post(&s, "/api/v1/collections", STAFF, json!({"name": "lab"}), 201).await;
    post(&s, "/api/v1/teams", ADMIN, json!({"name": "devs"}), 201).await;
    put(&s, "/api/v1/collections/lab/members/users/alice", STAFF, Some(json!({"role": "owner"})), 200).await;
    put(&s, "/api/v1/collections/lab/members/users/bob", ALICE, Some(json!({"role": "contributor"})), 200).await;
    push_as(&s, "alice", "lab/app", "v1").await;
}

// ----- repositories and collection deletion ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repositories_show_and_delete() {
    let s = TestServer::start().await;
    people(&s).await;
    post(&s, "/api/v1/collections", ALICE, json!({"name": "lab"}), 201).await;
    put(&s, "/api/v1/collections/lab/members/users/bob", ALICE, Some(json!({"role": "contributor"})), 200).await;
    push_as(&s, "alice", "lab/one", "v1").await;
    push_as(&s, "alice", "lab/two", "v1").await;
    push_as(&s, "alice", "lab/three", "v1").await;
    let img = push_as(&s, "bob", "lab/one", "v2").await;

    // Visible to anyone who may pull (public collection); tags sorted with details.
    for who in [ALICE, BOB, CAROL, STAFF] {
        let r = get(&s, "/api/v1/repositories/lab/one", who, 200).await;
        assert_eq!(names(&r["tags"], "name"), ["v1", "v2"], "{r}");
        assert_eq!(r["tags"][1]["digest"], img.digest.as_str(), "{r}");
    }
    // Contributors and users who merely see it may not delete.
    api_error(&s, Method::DELETE, "/api/v1/repositories/lab/one", BOB, None, 403).await;
    api_error(&s, Method::DELETE, "/api/v1/repositories/lab/one", CAROL, None, 403).await;
    get(&s, "/api/v1/repositories/lab/one", ALICE, 200).await;
    // Owners and admins delete.
    delete(&s, "/api/v1/repositories/lab/one", ALICE, 204).await;
    delete(&s, "/api/v1/repositories/lab/two", STAFF, 204).await;
    get(&s, "/api/v1/repositories/lab/one", ALICE, 404).await;
    get(&s, "/api/v1/repositories/lab/two", ALICE, 404).await;
    let c = get(&s, "/api/v1/collections/lab", ALICE, 200).await;
    assert_eq!(c["repositories"], json!(["lab/three"]), "{c}");
    // Gone from the registry too.
    let admin = s.repo_token(&["lab/one", "lab/two"]).await;
    for repo in ["lab/one", "lab/two"] {
        let resp = s.get(&format!("/v2/{repo}/manifests/v1"), Some(&admin)).await;
        expect_error(resp, 404, "NAME_UNKNOWN", &format!("{repo} after DELETE /api/v1/repositories")).await;
        let resp = s.get(&format!("/v2/{repo}/tags/list"), Some(&admin)).await;
        expect_error(resp, 404, "NAME_UNKNOWN", &format!("{repo} tags after the delete")).await;
    }
    let resp = s.get(&format!("/v2/lab/one/manifests/{}", img.digest), Some(&admin)).await;
    assert_eq!(resp.status(), 404, "the manifest by digest is gone too");
    // Invalid names are 400, not 404.
    api_error(&s, Method::GET, "/api/v1/repositories/Lab/One", ALICE, None, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_collection_removes_its_repositories() {
    let s = TestServer::start().await;
    people(&s).await;
    let img = push_as(&s, "alice", "lab/app", "v1").await;
    push_as(&s, "alice", "lab/deep/tool", "v1").await;
    push_as(&s, "alice", "other/app", "v1").await;
    let old = s.token(Some(("alice", PW)), &[&scope("lab/app", "pull,push,delete")]).await;
    assert_eq!(granted_sorted(&old, "lab/app"), ["delete", "pull", "push"]);

    delete(&s, "/api/v1/collections/lab", ALICE, 204).await;
    get(&s, "/api/v1/collections/lab", ADMIN, 404).await;
    get(&s, "/api/v1/repositories/lab/app", ADMIN, 404).await;
    // Pull only: an admin asking for push would create the collection again (§3).
    let admin = s.admin_token(&[&scope("lab/app", "pull"), &scope("lab/deep/tool", "pull")]).await;
    for repo in ["lab/app", "lab/deep/tool"] {
        let resp = s.get(&format!("/v2/{repo}/manifests/v1"), Some(&admin)).await;
        expect_error(resp, 404, "NAME_UNKNOWN", &format!("{repo} after the collection was deleted")).await;
    }
    let resp = s.get(&format!("/v2/lab/app/blobs/{}", sha256_digest(&img.layers[0])), Some(&admin)).await;
    assert_eq!(resp.status(), 404, "blobs are no longer readable through the deleted repository");
    let cat = s.admin_token(&["registry:catalog:*"]).await;
    let json: Value = s.get("/v2/_catalog", Some(&cat)).await.json().await.unwrap();
    assert_eq!(json["repositories"], json!(["other/app"]));

    // Someone else takes the name. alice's token was issued before that collection existed,
    // so it grants nothing there (§4), though its claims name `lab/app`.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let bobs = push_as(&s, "bob", "lab/app", "v1").await;
    let c = get(&s, "/api/v1/collections/lab", ADMIN, 200).await;
    assert_eq!(c["owners"], json!([{"user": "bob"}]), "{c}");
    // "Grants nothing" for a named user is 403 DENIED (§4), as for any missing action.
    let resp = s.get("/v2/lab/app/manifests/v1", Some(&old)).await;
    expect_error(resp, 403, "DENIED", "an older token reads the new collection").await;
    let resp = s.req(Method::POST, "/v2/lab/app/blobs/uploads/", Some(&old)).send().await.unwrap();
    expect_error(resp, 403, "DENIED", "an older token pushes into the new collection").await;
    let resp = s.delete(&format!("/v2/lab/app/manifests/{}", bobs.digest), Some(&old)).await;
    expect_error(resp, 403, "DENIED", "an older token deletes in the new collection").await;
    let resp = s.get("/v2/lab/app/manifests/v1", Some(&s.admin_token(&[&scope("lab/app", "pull")]).await)).await;
    let body = expect_status(resp, 200, "bob's image is intact").await.bytes().await.unwrap();
    assert_eq!(body.as_ref(), bobs.manifest.as_slice());
}

// ----- API tokens -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_only_token_pulls_but_never_pushes() {
    let s = TestServer::start().await;
    people(&s).await;
    push_as(&s, "alice", "lab/app", "v1").await;
    let (_, ro) = api_token(&s, ALICE, json!({"name": "ro", "read_only": true})).await;
    let t =
        s.token(Some(("alice", &ro)), &[&scope("lab/app", "pull,push,delete"), &scope("fresh/app", "pull,push")]).await;
    assert_eq!(granted_sorted(&t, "lab/app"), ["pull"], "a read-only token gets pull only, even as owner");
    assert_eq!(granted_sorted(&t, "fresh/app"), Vec::<String>::new(), "and creates no collection");
    get(&s, "/api/v1/collections/fresh", ADMIN, 404).await;
    let resp = s.get("/v2/lab/app/manifests/v1", Some(&t)).await;
    expect_status(resp, 200, "read-only pull").await;
    let resp = s.req(Method::POST, "/v2/lab/app/blobs/uploads/", Some(&t)).send().await.unwrap();
    expect_error(resp, 403, "DENIED", "read-only push").await;
    let resp = s.delete("/v2/lab/app/manifests/v1", Some(&t)).await;
    expect_error(resp, 403, "DENIED", "read-only delete").await;
    // A refresh token minted from it inherits the limit (§4).
    let json = offline_token(&s, "alice", &ro).await;
    let refresh = json["refresh_token"].as_str().expect("refresh_token").to_string();
    let json = refresh_grant(&s, &refresh, &scope("lab/app", "pull,push")).await;
    assert_eq!(json.0, 200, "{:?}", json.1);
    let access = json.1["access_token"].as_str().expect("access_token");
    assert_eq!(granted_sorted(access, "lab/app"), ["pull"], "refresh token from a read-only token");
}

async fn offline_token(s: &TestServer, user: &str, secret: &str) -> Value {
    let resp = s
        .client()
        .get(s.url("/token"))
        .query(&[("service", SERVICE), ("offline_token", "true")])
        .basic_auth(user, Some(secret))
        .send()
        .await
        .unwrap();
    expect_status(resp, 200, "offline token").await.json().await.unwrap()
}

async fn refresh_grant(s: &TestServer, refresh: &str, scope: &str) -> (u16, Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh), ("service", SERVICE), ("scope", scope)];
    let resp = s.client().post(s.url("/token")).form(&form).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expiring_tokens_expire() {
    let s = TestServer::start().await;
    people(&s).await;
    let before = berth::db::now();
    let t = post(&s, "/api/v1/tokens", ALICE, json!({"name": "short", "expires_in_days": 2}), 201).await;
    let expires = t["expires_at"].as_i64().unwrap_or_else(|| panic!("expires_at: {t}"));
    assert!((before + 2 * 86_400 - 5..=berth::db::now() + 2 * 86_400 + 5).contains(&expires), "{t}");
    let id = t["id"].as_str().unwrap().to_string();
    let secret = t["token"].as_str().unwrap().to_string();
    let never = post(&s, "/api/v1/tokens", ALICE, json!({"name": "forever"}), 201).await;
    assert!(never["expires_at"].is_null(), "no expiry unless asked: {never}");
    api_error(&s, Method::POST, "/api/v1/tokens", ALICE, Some(&json!({"name": "z", "expires_in_days": 0})), 400).await;

    expect_status(s.token_response(Some(("alice", &secret)), &[]).await, 200, "before expiry").await;
    get(&s, "/api/v1/me", Cred::Bearer(&secret), 200).await;

    // Two days pass: move the expiry into the past rather than wait.
    let db = berth::db::Db::connect(&format!("sqlite://{}/berth.db", s.data_dir().display())).await.unwrap();
    let moved = sqlx::query("UPDATE api_tokens SET expires_at = $1 WHERE id = $2")
        .bind(berth::db::now() - 1)
        .bind(&id)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(moved.rows_affected(), 1);
    assert_eq!(s.token_response(Some(("alice", &secret)), &[]).await.status(), 401, "expired token at /token");
    api_error(&s, Method::GET, "/api/v1/me", Cred::Bearer(&secret), None, 401).await;
    api_error(&s, Method::GET, "/api/v1/me", Cred::Basic("alice", &secret), None, 401).await;
    get(&s, "/api/v1/me", ALICE, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoked_tokens_stop_working() {
    let s = TestServer::start().await;
    people(&s).await;
    push_as(&s, "alice", "lab/app", "v1").await;
    let (id, secret) = api_token(&s, ALICE, json!({"name": "ci"})).await;
    let (_, other) = api_token(&s, ALICE, json!({"name": "other"})).await;
    let t = s.token(Some(("alice", &secret)), &[&scope("lab/app", "pull,push")]).await;
    assert_eq!(granted_sorted(&t, "lab/app"), ["pull", "push"], "a full API token grants like the password");
    get(&s, "/api/v1/me", Cred::Bearer(&secret), 200).await;
    let refresh = offline_token(&s, "alice", &secret).await["refresh_token"].as_str().expect("refresh").to_string();
    assert_eq!(refresh_grant(&s, &refresh, &scope("lab/app", "pull")).await.0, 200);

    // Revoked with itself as the credential.
    delete(&s, &format!("/api/v1/tokens/{id}"), Cred::Bearer(&secret), 204).await;
    assert_eq!(s.token_response(Some(("alice", &secret)), &[]).await.status(), 401, "/token after revocation");
    api_error(&s, Method::GET, "/api/v1/me", Cred::Bearer(&secret), None, 401).await;
    api_error(&s, Method::GET, "/api/v1/me", Cred::Basic("alice", &secret), None, 401).await;
    assert_eq!(refresh_grant(&s, &refresh, &scope("lab/app", "pull")).await.0, 401, "its refresh token dies too");
    let listed = get(&s, "/api/v1/tokens", ALICE, 200).await;
    assert!(
        listed.as_array().unwrap().iter().all(|t| t["id"] != id.as_str() || t["revoked"] == true),
        "a revoked token is not listed as live: {listed}"
    );
    api_error(&s, Method::DELETE, &format!("/api/v1/tokens/{id}"), ALICE, None, 404).await;
    // Other tokens are untouched.
    get(&s, "/api/v1/me", Cred::Bearer(&other), 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_docker_config_holds_working_credentials() {
    let s = TestServer::start().await;
    people(&s).await;
    push_as(&s, "alice", "lab/app", "v1").await;
    let host = "registry.example.com:5000";
    let out = berth_cli(&s, &["token", "create", "alice", "laptop", "--docker-config", host]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "berth token create: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let config: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    let auth = config["auths"][host]["auth"].as_str().unwrap_or_else(|| panic!("no auths.{host}.auth: {config}"));
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(auth).expect("base64")).unwrap();
    let (user, secret) = decoded.split_once(':').expect("user:token");
    assert_eq!(user, "alice");
    assert_ne!(secret, PW, "the docker config holds an API token, not the password");

    // Exactly what docker sends: `Authorization: Basic <auth>`.
    let resp = s
        .client()
        .get(s.url("/token"))
        .query(&[("service", SERVICE), ("scope", &scope("lab/app", "pull,push"))])
        .header("authorization", format!("Basic {auth}"))
        .send()
        .await
        .unwrap();
    let json: Value = expect_status(resp, 200, "docker-config credentials at /token").await.json().await.unwrap();
    let token = json["token"].as_str().unwrap();
    assert_eq!(decode_jwt(token).1["sub"], "alice");
    assert_eq!(granted_sorted(token, "lab/app"), ["pull", "push"]);
    assert_eq!(get(&s, "/api/v1/me", Cred::Basic(user, secret), 200).await["username"], "alice");
    let listed = get(&s, "/api/v1/tokens", ALICE, 200).await;
    assert_eq!(names(&listed, "name"), ["laptop"], "the CLI token is alice's");
}

// ----- brute force ------------------------------------------------------------------------

/// Sends bad passwords for `user` with `attempt` until a 429 arrives whose `Retry-After` is
/// at least 3 s (so the checks that follow run inside the block); returns the 429 count.
async fn guess_until_blocked<F, Fut>(attempt: F) -> usize
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let mut throttled = 0;
    for i in 0..40 {
        let resp = attempt().await;
        match resp.status().as_u16() {
            401 => {}
            429 => {
                throttled += 1;
                let retry = header(&resp, "retry-after").unwrap_or_else(|| panic!("429 without Retry-After"));
                let secs: u64 = retry.parse().unwrap_or_else(|_| panic!("Retry-After {retry:?}"));
                assert!(secs >= 1, "Retry-After {secs}");
                if secs >= 3 {
                    return throttled;
                }
                tokio::time::sleep(std::time::Duration::from_millis(secs * 1000 + 100)).await;
            }
            other => panic!("bad password attempt {i}: {other}"),
        }
    }
    panic!("40 bad passwords and never a 429 with Retry-After >= 3");
}

async fn assert_throttled(s: &TestServer, what: &str) {
    // The right password is refused while the account is blocked, on every login path.
    // (GET /token is checked in `brute_force_on_get_token_is_throttled`.)
    let mut problems = Vec::new();
    let form = [("grant_type", "password"), ("username", "alice"), ("password", PW), ("service", SERVICE)];
    let resp = s.client().post(s.url("/token")).form(&form).send().await.unwrap();
    let (status, retry) = (resp.status().as_u16(), header(&resp, "retry-after"));
    if status != 429 || retry.is_none() {
        problems.push(format!("POST /token: expected 429 with Retry-After, got {status} (Retry-After {retry:?})"));
    }

    let resp = api_call(s, Method::GET, "/api/v1/me", ALICE, None).await;
    let (status, retry) = (resp.status().as_u16(), header(&resp, "retry-after"));
    if status != 429 || retry.is_none() {
        problems.push(format!("/api/v1: expected 429 with Retry-After, got {status} (Retry-After {retry:?})"));
    } else {
        let json: Value = resp.json().await.unwrap();
        assert!(json["error"].is_string(), "{json}");
    }

    // Other accounts are not blocked, and the CLI still works on the server itself.
    get(s, "/api/v1/me", BOB, 200).await;
    let out = berth_cli(s, &["user", "list"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "berth user list: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("alice"), "berth user list: {stdout}");
    assert!(problems.is_empty(), "{what}, while alice is blocked:\n{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn brute_force_on_the_api_is_throttled() {
    let s = TestServer::start().await;
    people(&s).await;
    let n = guess_until_blocked(|| api_call(&s, Method::GET, "/api/v1/me", Cred::Basic("alice", "guess"), None)).await;
    assert!(n >= 1);
    assert_throttled(&s, "after guessing on /api/v1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn brute_force_on_post_token_is_throttled() {
    let s = TestServer::start().await;
    people(&s).await;
    let form = [("grant_type", "password"), ("username", "alice"), ("password", "guess"), ("service", SERVICE)];
    let n = guess_until_blocked(|| async { s.client().post(s.url("/token")).form(&form).send().await.unwrap() }).await;
    assert!(n >= 1);
    assert_throttled(&s, "after guessing on POST /token").await;
}

/// `docker login` and every docker pull/push authenticate with GET /token and Basic auth,
/// so that is where guessing happens: it must count failures and honour a block.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn brute_force_on_get_token_is_throttled() {
    let s = TestServer::start().await;
    people(&s).await;
    let mut problems = Vec::new();
    // Guessing through GET /token itself.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let resp = s.token_response(Some(("alice", "guess")), &[]).await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            if header(&resp, "retry-after").is_none() {
                problems.push("GET /token 429 without Retry-After".to_string());
            }
            break;
        }
    }
    if !statuses.contains(&429) {
        problems.push(format!("10 bad passwords on GET /token, never a 429: {statuses:?}"));
    }
    // A block earned elsewhere applies to GET /token as well.
    // First wait out any block from above; a good login clears the count.
    for _ in 0..20 {
        let resp = api_call(&s, Method::GET, "/api/v1/me", ALICE, None).await;
        match resp.status().as_u16() {
            200 => break,
            429 => {
                let secs: u64 = header(&resp, "retry-after").and_then(|r| r.parse().ok()).unwrap_or(1);
                tokio::time::sleep(std::time::Duration::from_millis(secs * 1000 + 100)).await;
            }
            other => panic!("alice's good login: {other}"),
        }
    }
    guess_until_blocked(|| api_call(&s, Method::GET, "/api/v1/me", Cred::Basic("alice", "guess"), None)).await;
    let resp = s.token_response(Some(("alice", PW)), &[]).await;
    let (status, retry) = (resp.status().as_u16(), header(&resp, "retry-after"));
    if status != 429 || retry.is_none() {
        problems.push(format!(
            "GET /token with the right password while alice is blocked: expected 429 with Retry-After, got {status}"
        ));
    }
    assert!(problems.is_empty(), "GET /token and brute force:\n{}", problems.join("\n"));
}
