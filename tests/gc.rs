//! Garbage collection (DESIGN §6, §3): unreferenced blobs after a grace period, stale
//! upload sessions, and auto-created collections that never got a repository, run online
//! (`berth gc` beside a running server) and without losing a blob that is pushed again
//! while a pass runs.

mod common;

use std::{process::Stdio, time::Duration};

use common::*;
use reqwest::Method;
use serde_json::Value;

/// `berth gc` against the server's data dir with every age set to 0; returns its report.
async fn gc_now(s: &TestServer) -> Value {
    // Rows are stamped in whole seconds and collected when strictly older.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("gc")
        .env("BERTH_DATA_DIR", s.data_dir())
        .env("BERTH_GC__BLOB_GRACE_SECS", "0")
        .env("BERTH_GC__UPLOAD_TTL_SECS", "0")
        .env("BERTH_GC__EMPTY_COLLECTION_SECS", "0")
        .current_dir(s.data_dir())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run berth gc");
    assert!(out.status.success(), "berth gc failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("berth gc prints a JSON report")
}

#[tokio::test]
async fn unreferenced_blobs_go_linked_ones_stay() {
    let s = TestServer::start().await;
    let token = s.admin_token(&[&scope("gc/a", "pull,push,delete"), &scope("gc/b", "pull,push,delete")]).await;
    let only_a = test_bytes(5000, 1);
    let shared = test_bytes(7000, 2);
    let kept = test_bytes(3000, 3);
    let d_only_a = s.push_blob(&token, "gc/a", &only_a).await;
    let d_shared = s.push_blob(&token, "gc/a", &shared).await;
    s.push_blob(&token, "gc/b", &shared).await;
    let d_kept = s.push_blob(&token, "gc/a", &kept).await;
    for d in [&d_only_a, &d_shared] {
        expect_status(s.delete(&format!("/v2/gc/a/blobs/{d}"), Some(&token)).await, 202, "unlink").await;
    }
    // Unlinked but not yet collected: the bytes are still on disk.
    assert!(s.blob_on_disk(&d_only_a).is_some());

    let report = gc_now(&s).await;
    assert_eq!(report["blobs_removed"], 1, "{report}");
    assert_eq!(report["bytes_freed"], 5000, "{report}");
    assert!(s.blob_on_disk(&d_only_a).is_none(), "unreferenced blob deleted");
    assert_eq!(s.blob_on_disk(&d_shared).as_deref(), Some(shared.as_slice()), "still linked in gc/b");
    assert_eq!(s.blob_on_disk(&d_kept).as_deref(), Some(kept.as_slice()));
    let resp = expect_status(s.get(&format!("/v2/gc/b/blobs/{d_shared}"), Some(&token)).await, 200, "b").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), shared.as_slice());

    // Pushing the collected blob again brings it back.
    s.push_blob(&token, "gc/a", &only_a).await;
    let resp = expect_status(s.get(&format!("/v2/gc/a/blobs/{d_only_a}"), Some(&token)).await, 200, "again").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), only_a.as_slice());
    // A second pass finds nothing.
    assert_eq!(gc_now(&s).await["blobs_removed"], 0);
}

#[tokio::test]
async fn stale_uploads_expire() {
    let s = TestServer::start().await;
    let token = s.admin_token(&[&scope("gc/up", "pull,push")]).await;
    let loc = s.start_upload(&token, "gc/up").await;
    expect_status(s.patch_chunk(&token, &loc, 0, &test_bytes(1000, 4)).await, 202, "chunk").await;
    let uuid = loc.rsplit('/').next().unwrap().to_owned();
    assert!(s.upload_path(&uuid).exists());

    let report = gc_now(&s).await;
    assert_eq!(report["uploads_expired"], 1, "{report}");
    assert!(!s.upload_path(&uuid).exists(), "upload data removed");
    expect_error(s.get(&loc, Some(&token)).await, 404, "BLOB_UPLOAD_UNKNOWN", "expired session").await;
}

#[tokio::test]
async fn empty_auto_created_collections_go() {
    let s = TestServer::start().await;
    api_user(&s, "alice", "alice-pw", "user").await;
    // A push token creates `ghost`, but nothing is ever pushed there.
    let ghost = s.token(Some(("alice", "alice-pw")), &[&scope("ghost/app", "pull,push")]).await;
    assert_eq!(granted_sorted(&ghost, "ghost/app"), ["pull", "push"]);
    // `kept` gets a repository; `made` is created through the API (not implicitly).
    let kept = s.token(Some(("alice", "alice-pw")), &[&scope("kept/app", "pull,push")]).await;
    s.push_blob(&kept, "kept/app", b"x").await;
    let alice = Cred::Basic("alice", "alice-pw");
    api_expect(&s, Method::POST, "/api/v1/collections", alice, Some(&serde_json::json!({"name": "made"})), 201).await;

    let report = gc_now(&s).await;
    assert_eq!(report["collections_removed"], serde_json::json!(["ghost"]), "{report}");
    api_error(&s, Method::GET, "/api/v1/collections/ghost", ADMIN, None, 404).await;
    api_expect(&s, Method::GET, "/api/v1/collections/kept", ADMIN, None, 200).await;
    api_expect(&s, Method::GET, "/api/v1/collections/made", ADMIN, None, 200).await;
}

/// Unlink and push the same blob again and again while collection passes run back to back:
/// no request fails with a 5xx, and once both stop the blob is there with the right bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_racing_pushes_loses_nothing() {
    let s = TestServer::start().await;
    let token = s.admin_token(&[&scope("gc/race", "pull,push,delete")]).await;
    let bytes = test_bytes(20_000, 5);
    let digest = s.push_blob(&token, "gc/race", &bytes).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // the row is now "old"

    let config = berth::config::Config { data_dir: s.data_dir().to_path_buf(), ..Default::default() };
    let db = berth::server::open_db(&config).await.expect("open db");
    let store = berth::storage::BlobStore::Fs(berth::storage::FsStore::open(s.data_dir()).await.expect("open store"));
    let registry = berth::registry::Registry::new(db, store, config.limits.max_manifest_bytes);
    let gc_config = berth::config::GcConfig { blob_grace_secs: 0, ..Default::default() };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut passes, mut removed) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let report = registry.collect_garbage(&gc_config, berth::db::now() + 5).await.expect("gc pass");
                passes += 1;
                removed += report.blobs_removed;
            }
            (passes, removed)
        })
    };
    for round in 0..40 {
        let resp = s.delete(&format!("/v2/gc/race/blobs/{digest}"), Some(&token)).await;
        assert_eq!(resp.status(), 202, "round {round}: unlink");
        let resp = s
            .req(Method::POST, &format!("/v2/gc/race/blobs/uploads/?digest={digest}"), Some(&token))
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "round {round}: push again");
        let resp = s.get(&format!("/v2/gc/race/blobs/{digest}"), Some(&token)).await;
        assert!(resp.status().as_u16() < 500, "round {round}: GET {}", resp.status());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (passes, removed) = collector.await.expect("collector");
    // The race was real: passes ran, and some caught the blob between unlink and push.
    assert!(passes > 0 && removed > 0, "{passes} passes removed {removed} blobs");
    let resp = expect_status(s.get(&format!("/v2/gc/race/blobs/{digest}"), Some(&token)).await, 200, "final").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), bytes.as_slice(), "the blob survived {passes} passes");
    assert_eq!(s.blob_on_disk(&digest).as_deref(), Some(bytes.as_slice()));
}
