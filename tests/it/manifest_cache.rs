//! The in-process manifest cache (`src/registry/cache.rs`): manifest GET and HEAD are served
//! from memory, every write, delete, repository or collection removal and garbage-collection
//! pass of the same process is seen by the next request, and a replica on the same
//! PostgreSQL serves a tag another replica moved for at most `limits.tag_cache_ttl_ms`.

use std::time::{Duration, Instant};

use crate::common::{services::Postgres, *};
use reqwest::Method;
use serde_json::json;
use sqlx::Connection as _;

/// Long enough that nothing in these tests expires by age unless it waits for it.
const LONG_TTL_MS: u64 = 60_000;

async fn server_with_ttl(ttl_ms: u64) -> TestServer {
    TestServer::start_with(move |c| c.limits.tag_cache_ttl_ms = ttl_ms).await
}

/// The digest a manifest GET answers (asserting 200 and that the body matches it), or the
/// error code.
async fn served(s: &TestServer, token: &str, repo: &str, reference: &str) -> String {
    let resp = s.get(&format!("/v2/{repo}/manifests/{reference}"), Some(token)).await;
    if resp.status() != 200 {
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        return format!("{status} {}", error_codes_of(&body).join(","));
    }
    let digest = header(&resp, "docker-content-digest").expect("Docker-Content-Digest");
    let body = resp.bytes().await.unwrap();
    assert_eq!(sha256_digest(&body), digest, "the body is the manifest the digest names");
    let head =
        expect_status(s.head(&format!("/v2/{repo}/manifests/{reference}"), Some(token)).await, 200, "HEAD").await;
    assert_eq!(header(&head, "docker-content-digest").as_deref(), Some(digest.as_str()), "HEAD agrees with GET");
    assert_eq!(header(&head, "content-length"), Some(body.len().to_string()));
    digest
}

/// What a tag points at, written straight into the server's SQLite file as another process
/// could: the server learns of it only by reading the database again.
async fn retag_behind_the_servers_back(s: &TestServer, tag: &str, digest: &str) {
    let url = format!("sqlite://{}/berth.db", s.data_dir().display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open the server's database");
    let r = sqlx::query("UPDATE tags SET digest = $1 WHERE name = $2").bind(digest).bind(tag).execute(&mut conn).await;
    assert_eq!(r.expect("UPDATE tags").rows_affected(), 1);
    conn.close().await.ok();
}

#[tokio::test]
async fn reads_come_from_memory_and_this_servers_writes_are_seen_at_once() {
    let s = server_with_ttl(LONG_TTL_MS).await;
    let token = s.admin_token(&[&scope("cache/app", "pull,push,delete")]).await;
    let a = s.push_image(&token, "cache/app", "latest", "a").await;
    let b = s.push_image(&token, "cache/app", "b", "b").await;
    assert_eq!(served(&s, &token, "cache/app", "latest").await, a.digest);

    // A change the server did not make is not seen while the entry lives: the cache serves.
    retag_behind_the_servers_back(&s, "latest", &b.digest).await;
    assert_eq!(served(&s, &token, "cache/app", "latest").await, a.digest, "served from memory");
    // Any write of this server to the repository drops its entries.
    s.push_manifest(&token, "cache/app", "other", OCI_MANIFEST, &a.manifest).await;
    assert_eq!(served(&s, &token, "cache/app", "latest").await, b.digest, "re-read after a write");

    // Moving a tag, by tag and through `?tag=`.
    s.push_manifest(&token, "cache/app", "latest", OCI_MANIFEST, &a.manifest).await;
    assert_eq!(served(&s, &token, "cache/app", "latest").await, a.digest, "moved by PUT");
    let by_digest = format!("{}?tag=latest", b.digest);
    s.push_manifest(&token, "cache/app", &by_digest, OCI_MANIFEST, &b.manifest).await;
    assert_eq!(served(&s, &token, "cache/app", "latest").await, b.digest, "moved by ?tag=");

    // Deleting the tag, then the manifest (which takes its tags along).
    assert_eq!(served(&s, &token, "cache/app", &a.digest).await, a.digest);
    expect_status(s.delete("/v2/cache/app/manifests/latest", Some(&token)).await, 202, "delete tag").await;
    assert_eq!(served(&s, &token, "cache/app", "latest").await, "404 MANIFEST_UNKNOWN");
    assert_eq!(served(&s, &token, "cache/app", "other").await, a.digest);
    expect_status(s.delete(&format!("/v2/cache/app/manifests/{}", a.digest), Some(&token)).await, 202, "delete").await;
    assert_eq!(served(&s, &token, "cache/app", &a.digest).await, "404 MANIFEST_UNKNOWN");
    assert_eq!(served(&s, &token, "cache/app", "other").await, "404 MANIFEST_UNKNOWN");

    // Deleting the repository through the management API.
    assert_eq!(served(&s, &token, "cache/app", "b").await, b.digest);
    api_expect(&s, Method::DELETE, "/api/v1/repositories/cache/app", ADMIN, None, 204).await;
    assert_eq!(served(&s, &token, "cache/app", "b").await, "404 NAME_UNKNOWN");
    assert_eq!(served(&s, &token, "cache/app", &b.digest).await, "404 NAME_UNKNOWN");
}

#[tokio::test]
async fn a_deleted_collection_is_gone_at_once_and_an_old_token_gets_nothing_from_its_successor() {
    let s = server_with_ttl(LONG_TTL_MS).await;
    api_expect(&s, Method::POST, "/api/v1/collections", ADMIN, Some(&json!({"name": "coll"})), 201).await;
    let old = s.admin_token(&[&scope("coll/app", "pull,push"), &scope("coll/none", "pull")]).await;
    let img = s.push_image(&old, "coll/app", "v1", "old").await;
    assert_eq!(served(&s, &old, "coll/app", "v1").await, img.digest);
    // What a caller gets for a repository that does not exist.
    let absent = served(&s, &old, "coll/none", "v1").await;

    api_expect(&s, Method::DELETE, "/api/v1/collections/coll", ADMIN, None, 204).await;
    assert_eq!(served(&s, &old, "coll/app", "v1").await, absent, "deleted with its collection");

    // Created again (a whole second later: times are in seconds) with the same content.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    api_expect(&s, Method::POST, "/api/v1/collections", ADMIN, Some(&json!({"name": "coll"})), 201).await;
    let new = s.admin_token(&[&scope("coll/app", "pull,push")]).await;
    s.push_image(&new, "coll/app", "v1", "old").await;
    // The old token grants nothing in the new collection, from the database…
    let refused = served(&s, &old, "coll/app", "v1").await;
    assert_ne!(refused, img.digest);
    assert_eq!(served(&s, &new, "coll/app", "v1").await, img.digest, "cached for the new token");
    // … nor from the cache.
    assert_eq!(served(&s, &old, "coll/app", "v1").await, refused);
}

#[tokio::test]
async fn a_caller_who_may_not_pull_learns_nothing_from_a_cached_manifest() {
    let s = server_with_ttl(LONG_TTL_MS).await;
    api_user(&s, "eve", "eve-pw", "user").await;
    let private = json!({"name": "secret", "private": true});
    api_expect(&s, Method::POST, "/api/v1/collections", ADMIN, Some(&private), 201).await;
    let admin = s.admin_token(&[&scope("secret/app", "pull,push")]).await;
    let img = s.push_image(&admin, "secret/app", "v1", "s").await;
    let eve = s.token(Some(("eve", "eve-pw")), &[&scope("secret/app", "pull"), &scope("secret/none", "pull")]).await;
    let absent = served(&s, &eve, "secret/none", "v1").await;
    let absent_head = s.head("/v2/secret/none/manifests/v1", Some(&eve)).await.status();
    assert_ne!(absent_head, 200);

    for round in ["before", "after"] {
        assert_eq!(served(&s, &eve, "secret/app", "v1").await, absent, "{round} the manifest is cached");
        assert_eq!(served(&s, &eve, "secret/app", &img.digest).await, absent, "by digest, {round}");
        let head = s.head("/v2/secret/app/manifests/v1", Some(&eve)).await;
        assert_eq!(head.status(), absent_head, "HEAD {round}");
        assert_eq!(served(&s, &admin, "secret/app", "v1").await, img.digest);
    }
}

#[tokio::test]
async fn garbage_collection_in_the_server_drops_what_it_removed() {
    let s = TestServer::start_with(|c| {
        c.limits.tag_cache_ttl_ms = LONG_TTL_MS;
        c.gc.interval_secs = 1;
        // Long enough for a push's blobs to be linked by its manifest before a pass runs.
        c.gc.blob_grace_secs = 10;
        c.gc.untagged = berth::config::Untagged::AfterSecs(0);
    })
    .await;
    let token = s.admin_token(&[&scope("gc/app", "pull,push")]).await;
    let a = s.push_image(&token, "gc/app", "latest", "a").await;
    s.push_image(&token, "gc/app", "latest", "b").await;
    // Read after the last write, so only the collector's removal can void the entry.
    assert_eq!(served(&s, &token, "gc/app", &a.digest).await, a.digest);
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let got = served(&s, &token, "gc/app", &a.digest).await;
        if got == "404 MANIFEST_UNKNOWN" {
            break;
        }
        assert_eq!(got, a.digest);
        assert!(Instant::now() < deadline, "the untagged manifest is still served 45 s on");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Two replicas on one PostgreSQL: a tag moved or deleted on A is served by B for at most
/// `limits.tag_cache_ttl_ms` after A answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_serves_a_moved_tag_for_at_most_the_ttl() {
    const TTL_MS: u64 = 700;
    let pg = Postgres::start();
    let url = pg.database("cache_ttl").await;
    let shared = tempfile::tempdir().expect("shared data dir");
    let replica = |url: String, dir: std::path::PathBuf| {
        TestServer::start_with(move |c| {
            c.database.url = Some(url.clone());
            c.data_dir = dir.clone();
            c.limits.tag_cache_ttl_ms = TTL_MS;
        })
    };
    let a = replica(url.clone(), shared.path().to_path_buf()).await;
    let b = replica(url, shared.path().to_path_buf()).await;
    let token = a.admin_token(&[&scope("fleet/app", "pull,push,delete")]).await;
    let one = a.push_image(&token, "fleet/app", "latest", "one").await;
    let two = a.push_image(&token, "fleet/app", "two", "two").await;
    assert_eq!(served(&b, &token, "fleet/app", "latest").await, one.digest);

    a.push_manifest(&token, "fleet/app", "latest", OCI_MANIFEST, &two.manifest).await;
    assert_eq!(served(&a, &token, "fleet/app", "latest").await, two.digest, "A sees its own write at once");
    // B read the tag before A's write answered, so its entry is older than the write.
    tokio::time::sleep(Duration::from_millis(TTL_MS)).await;
    assert_eq!(served(&b, &token, "fleet/app", "latest").await, two.digest, "B after the TTL");

    expect_status(a.delete("/v2/fleet/app/manifests/latest", Some(&token)).await, 202, "delete tag").await;
    tokio::time::sleep(Duration::from_millis(TTL_MS)).await;
    assert_eq!(served(&b, &token, "fleet/app", "latest").await, "404 MANIFEST_UNKNOWN", "B after the TTL");

    assert_eq!(served(&b, &token, "fleet/app", &two.digest).await, two.digest);
    expect_status(a.delete(&format!("/v2/fleet/app/manifests/{}", two.digest), Some(&token)).await, 202, "delete")
        .await;
    tokio::time::sleep(Duration::from_millis(TTL_MS)).await;
    assert_eq!(served(&b, &token, "fleet/app", &two.digest).await, "404 MANIFEST_UNKNOWN", "B after the TTL");
}
