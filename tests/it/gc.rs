//! Garbage collection (DESIGN §6, §3, issue 10): blobs no manifest references go after a
//! grace period (and their bytes once no repository links them), deleted tags free disk,
//! `--dry-run` lists what would go, stale upload sessions expire, and auto-created
//! collections that never got a repository go — all run online (`berth gc` beside a
//! running server). Races with pushes: `tests/gc_race.rs`.

use crate::common::*;
use reqwest::Method;
use serde_json::Value;

/// `berth gc` against the server's data dir with every age set to 0; returns its report.
async fn gc_now(s: &TestServer) -> Value {
    gc_with(s, &[], &[]).await
}

#[tokio::test]
async fn blobs_no_manifest_references_go_referenced_ones_stay() {
    let s = TestServer::start().await;
    let token = s.admin_token(&[&scope("gc/a", "pull,push,delete"), &scope("gc/b", "pull,push,delete")]).await;
    let only_a = test_bytes(5000, 1);
    let shared = test_bytes(7000, 2);
    let kept = test_bytes(3000, 3);
    let stray = test_bytes(1000, 6);
    let d_only_a = s.push_blob(&token, "gc/a", &only_a).await;
    let d_shared = s.push_blob(&token, "gc/a", &shared).await;
    s.push_blob(&token, "gc/b", &shared).await;
    let d_kept = s.push_blob(&token, "gc/a", &kept).await;
    // Linked, but no manifest ever referenced it (an abandoned push).
    let d_stray = s.push_blob(&token, "gc/a", &stray).await;
    // Tagged images keep `kept` in gc/a and `shared` in gc/b.
    for (repo, layer) in [("gc/a", &kept), ("gc/b", &shared)] {
        let config = format!("{{\"repo\":\"{repo}\"}}").into_bytes();
        s.push_blob(&token, repo, &config).await;
        s.push_manifest(&token, repo, "v1", OCI_MANIFEST, &oci_manifest(&config, &[layer])).await;
    }
    for d in [&d_only_a, &d_shared] {
        expect_status(s.delete(&format!("/v2/gc/a/blobs/{d}"), Some(&token)).await, 202, "unlink").await;
    }
    // Unlinked but not yet collected: the bytes are still on disk.
    assert!(s.blob_on_disk(&d_only_a).is_some());

    let report = gc_now(&s).await;
    assert_eq!(report["blobs_removed"], 2, "{report}");
    assert_eq!(report["bytes_freed"], 6000, "{report}");
    assert!(s.blob_on_disk(&d_only_a).is_none(), "unlinked blob deleted");
    assert!(s.blob_on_disk(&d_stray).is_none(), "unreferenced blob deleted");
    expect_error(s.get(&format!("/v2/gc/a/blobs/{d_stray}"), Some(&token)).await, 404, "BLOB_UNKNOWN", "stray").await;
    assert_eq!(s.blob_on_disk(&d_shared).as_deref(), Some(shared.as_slice()), "still referenced in gc/b");
    assert_eq!(s.blob_on_disk(&d_kept).as_deref(), Some(kept.as_slice()));
    let resp = expect_status(s.get(&format!("/v2/gc/b/blobs/{d_shared}"), Some(&token)).await, 200, "b").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), shared.as_slice());

    // Pushing the collected blob again brings it back.
    s.push_blob(&token, "gc/a", &only_a).await;
    let resp = expect_status(s.get(&format!("/v2/gc/a/blobs/{d_only_a}"), Some(&token)).await, 200, "again").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), only_a.as_slice());
    // With a grace period, that fresh link stays; nothing else is left to take.
    let report = gc_with(&s, &[], &[("BERTH_GC__BLOB_GRACE_SECS", "3600")]).await;
    assert_eq!(report["blobs_removed"], 0, "{report}");
}

/// Total size of the files under `dir`.
fn du(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| if e.path().is_dir() { du(&e.path()) } else { e.metadata().map_or(0, |m| m.len()) })
                .sum()
        })
        .unwrap_or(0)
}

/// Three images sharing one layer; deleting two tags and collecting frees their own
/// layers and configs, and only with untagged manifests set to expire. A dry run first
/// lists exactly that, removing nothing.
#[tokio::test]
async fn deleting_tags_then_gc_frees_disk() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["gc/app"]).await;
    let shared = test_bytes(128 << 10, 10);
    let mut images = Vec::new();
    for (i, tag) in ["v1", "v2", "v3"].iter().enumerate() {
        let config = format!("{{\"image\":{i}}}").into_bytes();
        let own = test_bytes(256 << 10, 11 + i as u64);
        for blob in [&config, &shared, &own] {
            s.push_blob(&token, "gc/app", blob).await;
        }
        let manifest = oci_manifest(&config, &[&shared, &own]);
        let digest = s.push_manifest(&token, "gc/app", tag, OCI_MANIFEST, &manifest).await;
        images.push((config, own, digest));
    }
    let blobs_dir = s.data_dir().join("blobs");
    let before = du(&blobs_dir);
    for tag in ["v1", "v2"] {
        expect_status(s.delete(&format!("/v2/gc/app/manifests/{tag}"), Some(&token)).await, 202, tag).await;
    }
    let expect_freed: u64 = images[..2].iter().map(|(c, o, _)| (c.len() + o.len()) as u64).sum();

    // Untagged manifests are kept by default: nothing can go.
    let report = gc_now(&s).await;
    assert_eq!((report["manifests_removed"].as_array().map(Vec::len), &report["bytes_freed"]), (Some(0), &0.into()));
    assert_eq!(du(&blobs_dir), before);

    let expire = [("BERTH_GC__UNTAGGED", "0s")];
    let dry = gc_with(&s, &["--dry-run"], &expire).await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["manifests_removed"].as_array().map(Vec::len), Some(2), "{dry}");
    assert_eq!(dry["links_removed"].as_array().map(Vec::len), Some(4), "{dry}");
    assert_eq!(dry["bytes_freed"], expect_freed, "{dry}");
    assert_eq!(du(&blobs_dir), before, "a dry run removes nothing");
    expect_status(s.get(&format!("/v2/gc/app/manifests/{}", images[0].2), Some(&token)).await, 200, "v1").await;

    let report = gc_with(&s, &[], &expire).await;
    let after = du(&blobs_dir);
    eprintln!("blobs on disk: {before} bytes before, {after} after deleting 2 of 3 tags and collecting");
    assert_eq!(report["bytes_freed"], expect_freed, "{report}");
    assert_eq!(report["blobs"], dry["blobs"], "the dry run listed what went");
    assert_eq!(before - after, expect_freed);
    for (config, own, digest) in &images[..2] {
        let m = s.get(&format!("/v2/gc/app/manifests/{digest}"), Some(&token)).await;
        expect_error(m, 404, "MANIFEST_UNKNOWN", "untagged manifest collected").await;
        assert!(s.blob_on_disk(&sha256_digest(config)).is_none() && s.blob_on_disk(&sha256_digest(own)).is_none());
    }
    let (config, own, _) = &images[2];
    for blob in [config, own, &shared] {
        let resp = s.get(&format!("/v2/gc/app/blobs/{}", sha256_digest(blob)), Some(&token)).await;
        assert_eq!(expect_status(resp, 200, "v3's blobs").await.bytes().await.unwrap().as_ref(), blob.as_slice());
    }
    expect_status(s.get("/v2/gc/app/manifests/v3", Some(&token)).await, 200, "v3").await;
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

/// `size_bytes` in the management API and the CLI: a repository's blobs and manifests, a
/// collection's with a layer its repositories share counted once; smaller after a pass.
#[tokio::test]
async fn size_bytes_per_repository_and_collection() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["sz/x", "sz/y"]).await;
    let layer = test_bytes(100_000, 20);
    let mut sizes = Vec::new();
    for repo in ["sz/x", "sz/y"] {
        let config = format!("{{\"repo\":\"{repo}\"}}").into_bytes();
        s.push_blob(&token, repo, &config).await;
        s.push_blob(&token, repo, &layer).await;
        let manifest = oci_manifest(&config, &[&layer]);
        s.push_manifest(&token, repo, "v1", OCI_MANIFEST, &manifest).await;
        sizes.push((config.len() + manifest.len()) as i64);
    }
    let x = api_expect(&s, Method::GET, "/api/v1/repositories/sz/x", ADMIN, None, 200).await;
    assert_eq!(x["size_bytes"], sizes[0] + layer.len() as i64, "{x}");
    let c = api_expect(&s, Method::GET, "/api/v1/collections/sz", ADMIN, None, 200).await;
    assert_eq!(c["size_bytes"], sizes[0] + sizes[1] + layer.len() as i64, "the shared layer once: {c}");
    let out = berth_cli(&s, &["repository", "show", "sz/x"]).await;
    let cli: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(cli["size_bytes"], x["size_bytes"]);
    let out = berth_cli(&s, &["collection", "show", "sz"]).await;
    let cli: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(cli["size_bytes"], c["size_bytes"]);

    // Deleting sz/y's image: the collection keeps the layer (sz/x still has it).
    expect_status(s.delete("/v2/sz/y/manifests/v1", Some(&token)).await, 202, "untag").await;
    gc_with(&s, &[], &[("BERTH_GC__UNTAGGED", "0")]).await;
    let c = api_expect(&s, Method::GET, "/api/v1/collections/sz", ADMIN, None, 200).await;
    assert_eq!(c["size_bytes"], sizes[0] + layer.len() as i64, "{c}");
    let y = api_expect(&s, Method::GET, "/api/v1/repositories/sz/y", ADMIN, None, 200).await;
    assert_eq!(y["size_bytes"], 0, "{y}");
}
