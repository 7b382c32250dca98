//! berth on PostgreSQL (DESIGN §9): the registry, the token service and the management API
//! on a real PostgreSQL from Debian, started by this test (`initdb` + `pg_ctl` as user
//! postgres, on loopback, stopped by this test), and two replicas sharing one database and
//! one storage directory serving the chunks of one upload in turn.
//!
//! Needs Debian's `postgresql` package (`.ci/run` installs it); without it the test fails
//! and says so rather than skipping.

use crate::common::{services::Postgres, *};
use reqwest::Method;
use serde_json::json;

async fn server_on(url: &str) -> TestServer {
    let url = url.to_owned();
    TestServer::start_with(move |c| c.database.url = Some(url.clone())).await
}

/// One PostgreSQL for every scenario (they are sequential: one server start is ~1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_on_postgresql() {
    let pg = Postgres::start();
    registry_round_trip(&pg).await;
    management_and_permissions(&pg).await;
    replicas_share_an_upload(&pg).await;
    collection_on_postgresql(&pg).await;
}

/// A pass's conditional deletes racing writers, and retention, on PostgreSQL (the same
/// scenarios as `gc_race` and `retention` on SQLite).
async fn collection_on_postgresql(pg: &Postgres) {
    let url = pg.database("gc_race").await;
    crate::gc_race::held_pass(&server_on(&url).await, Some(&url)).await;
    let url = pg.database("retention").await;
    crate::retention::retention_runs_with_gc(&server_on(&url).await, &[("BERTH_DATABASE__URL", &url)]).await;
}

/// Push, pull, tag listing in byte order with pagination, deletes, referrers.
async fn registry_round_trip(pg: &Postgres) {
    let s = server_on(&pg.database("round_trip").await).await;
    let token = s.admin_token(&[&scope("lab/app", "pull,push,delete")]).await;
    let img = s.push_image(&token, "lab/app", "v1", "pg").await;
    for tag in ["B", "a", "_x", "Z", "b1"] {
        s.push_manifest(&token, "lab/app", tag, OCI_MANIFEST, &img.manifest).await;
    }
    let resp =
        expect_status(s.get(&format!("/v2/lab/app/manifests/{}", img.digest), Some(&token)).await, 200, "GET").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), img.manifest.as_slice(), "byte-exact manifest");

    // Byte order ("C" collation), not the database locale's.
    let resp = expect_status(s.get("/v2/lab/app/tags/list?n=3", Some(&token)).await, 200, "tags").await;
    let link = header(&resp, "link").expect("Link on a full page");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["tags"], json!(["B", "Z", "_x"]));
    assert!(link.contains("last=_x"), "{link}");
    let body: serde_json::Value = s.get("/v2/lab/app/tags/list?n=3&last=_x", Some(&token)).await.json().await.unwrap();
    assert_eq!(body["tags"], json!(["a", "b1", "v1"]));

    // Chunked upload with a resume through the status endpoint.
    let data = test_bytes(300_000, 7);
    let loc = s.start_upload(&token, "lab/app").await;
    expect_status(s.patch_chunk(&token, &loc, 0, &data[..100_000]).await, 202, "chunk 1").await;
    let status = expect_status(s.get(&loc, Some(&token)).await, 204, "status").await;
    assert_eq!(header(&status, "range").as_deref(), Some("0-99999"));
    let digest = sha256_digest(&data);
    expect_status(s.finish_upload(&token, &loc, &digest, &data[100_000..]).await, 201, "finish").await;
    let resp = expect_status(s.get(&format!("/v2/lab/app/blobs/{digest}"), Some(&token)).await, 200, "blob").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());

    // Referrers through the subject column.
    let mut referrer: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
    referrer["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": img.digest, "size": img.manifest.len()});
    referrer["artifactType"] = json!("application/vnd.example.sig");
    let referrer = serde_json::to_vec(&referrer).unwrap();
    let resp = s.put_manifest(&token, "lab/app", &sha256_digest(&referrer), Some(OCI_MANIFEST), &referrer).await;
    expect_status(resp, 201, "referrer").await;
    let body: serde_json::Value =
        s.get(&format!("/v2/lab/app/referrers/{}", img.digest), Some(&token)).await.json().await.unwrap();
    assert_eq!(body["manifests"][0]["artifactType"], "application/vnd.example.sig");

    // Deleting the manifest by digest takes its tags (cascades work on PostgreSQL too).
    expect_status(s.delete(&format!("/v2/lab/app/manifests/{}", img.digest), Some(&token)).await, 202, "delete").await;
    let body: serde_json::Value = s.get("/v2/lab/app/tags/list", Some(&token)).await.json().await.unwrap();
    assert_eq!(body["tags"], json!([]));
}

/// Users, collections, members and the rules, on PostgreSQL.
async fn management_and_permissions(pg: &Postgres) {
    let s = server_on(&pg.database("management").await).await;
    api_user(&s, "alice", "alice-pw", "user").await;
    api_user(&s, "bob", "bob-pw", "user").await;

    // A push token for a new collection makes alice its owner.
    let alice = s.token(Some(("alice", "alice-pw")), &[&scope("team/app", "pull,push,delete")]).await;
    assert_eq!(granted_sorted(&alice, "team/app"), ["delete", "pull", "push"]);
    s.push_image(&alice, "team/app", "v1", "alice").await;
    let c = api_expect(&s, Method::GET, "/api/v1/collections/team", ADMIN, None, 200).await;
    assert_eq!(c["owners"], json!([{"user": "alice"}]));
    assert_eq!(c["repositories"], json!(["team/app"]));

    // bob: pull only on the public collection; contributor after alice adds him (via a team).
    let bob = s.token(Some(("bob", "bob-pw")), &[&scope("team/app", "pull,push,delete")]).await;
    assert_eq!(granted_sorted(&bob, "team/app"), ["pull"]);
    let alice_cred = Cred::Basic("alice", "alice-pw");
    api_expect(&s, Method::POST, "/api/v1/teams", alice_cred, Some(&json!({"name": "devs"})), 201).await;
    api_expect(&s, Method::PUT, "/api/v1/teams/devs/members/bob", alice_cred, None, 200).await;
    let role = json!({"role": "contributor"});
    api_expect(&s, Method::PUT, "/api/v1/collections/team/members/teams/devs", alice_cred, Some(&role), 200).await;
    let bob = s.token(Some(("bob", "bob-pw")), &[&scope("team/app", "pull,push,delete")]).await;
    assert_eq!(granted_sorted(&bob, "team/app"), ["pull", "push"]);

    // Private: bob still pulls (member), an unrelated user and anonymous get nothing.
    api_expect(&s, Method::PATCH, "/api/v1/collections/team", alice_cred, Some(&json!({"private": true})), 200).await;
    api_user(&s, "carol", "carol-pw", "user").await;
    let carol = s.token(Some(("carol", "carol-pw")), &[&scope("team/app", "pull")]).await;
    assert!(granted_sorted(&carol, "team/app").is_empty());
    let anon = s.anon_token(&[&scope("team/app", "pull")]).await;
    assert!(granted_sorted(&anon, "team/app").is_empty());
    let catalog = s.token(Some(("bob", "bob-pw")), &["registry:catalog:*"]).await;
    let body: serde_json::Value = s.get("/v2/_catalog", Some(&catalog)).await.json().await.unwrap();
    assert_eq!(body["repositories"], json!(["team/app"]));
    let catalog = s.token(Some(("carol", "carol-pw")), &["registry:catalog:*"]).await;
    let body: serde_json::Value = s.get("/v2/_catalog", Some(&catalog)).await.json().await.unwrap();
    assert_eq!(body["repositories"], json!([]));

    // The last owner cannot leave; deleting the collection removes its repositories.
    api_error(&s, Method::DELETE, "/api/v1/collections/team/members/users/alice", alice_cred, None, 409).await;
    api_expect(&s, Method::DELETE, "/api/v1/collections/team", alice_cred, None, 204).await;
    let admin = s.admin_token(&[&scope("team/app", "pull")]).await;
    expect_error(s.get("/v2/team/app/tags/list", Some(&admin)).await, 404, "NAME_UNKNOWN", "after delete").await;

    // Two users racing for one new collection: exactly one owner.
    let race = scope("race/app", "pull,push");
    let scopes = [race.as_str()];
    let (a, b) =
        tokio::join!(s.token(Some(("alice", "alice-pw")), &scopes), s.token(Some(("carol", "carol-pw")), &scopes));
    let pushers = [&a, &b].iter().filter(|t| granted_sorted(t, "race/app").contains(&"push".to_string())).count();
    assert_eq!(pushers, 1, "exactly one racer may push");
    let c = api_expect(&s, Method::GET, "/api/v1/collections/race", ADMIN, None, 200).await;
    assert_eq!(c["owners"].as_array().map(Vec::len), Some(1));
}

/// Two replicas, one database and one storage directory: an upload started on one is
/// continued and completed on the other, with a token minted by the first.
async fn replicas_share_an_upload(pg: &Postgres) {
    let url = pg.database("replicas").await;
    let shared = tempfile::tempdir().expect("shared data dir");
    let shared_path = shared.path().to_path_buf();
    let (u1, p1) = (url.clone(), shared_path.clone());
    let a = TestServer::start_with(move |c| {
        c.database.url = Some(u1.clone());
        c.data_dir = p1.clone();
    })
    .await;
    let (u2, p2) = (url.clone(), shared_path.clone());
    let b = TestServer::start_with(move |c| {
        c.database.url = Some(u2.clone());
        c.data_dir = p2.clone();
    })
    .await;

    // One signing key in the database: a token from replica A works on replica B.
    let token = a.admin_token(&[&scope("scale/app", "pull,push")]).await;
    let data = test_bytes(250_000, 9);
    let loc = a.start_upload(&token, "scale/app").await;
    expect_status(a.patch_chunk(&token, &loc, 0, &data[..100_000]).await, 202, "chunk 1 on A").await;
    let status = expect_status(b.get(&loc, Some(&token)).await, 204, "status on B").await;
    assert_eq!(header(&status, "range").as_deref(), Some("0-99999"));
    expect_status(b.patch_chunk(&token, &loc, 100_000, &data[100_000..200_000]).await, 202, "chunk 2 on B").await;
    // A chunk that A thinks is next but B already took is refused.
    let stale = a.patch_chunk(&token, &loc, 100_000, &data[100_000..200_000]).await;
    expect_status(stale, 416, "repeated chunk on A").await;
    let digest = sha256_digest(&data);
    expect_status(a.finish_upload(&token, &loc, &digest, &data[200_000..]).await, 201, "finish on A").await;
    let resp =
        expect_status(b.get(&format!("/v2/scale/app/blobs/{digest}"), Some(&token)).await, 200, "GET on B").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());

    // A manifest pushed through B is served by A.
    let config = b"{}".to_vec();
    b.push_blob(&token, "scale/app", &config).await;
    let manifest = oci_manifest(&config, &[&data]);
    b.push_manifest(&token, "scale/app", "v1", OCI_MANIFEST, &manifest).await;
    let resp = expect_status(a.get("/v2/scale/app/manifests/v1", Some(&token)).await, 200, "manifest on A").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), manifest.as_slice());
    drop((a, b));
}
