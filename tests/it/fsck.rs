//! `berth fsck [--repair]` (issue 10): a flipped byte and a deleted file are found by
//! re-hashing, files and sessions no row accounts for are found by comparing both ways, the
//! exit status says so, and a repair makes the lost blobs answer 404 (not wrong bytes or
//! 500) until they are pushed again, and removes the orphans.

use std::time::{Duration, SystemTime};

use crate::common::*;
use reqwest::Method;
use serde_json::Value;

/// `berth fsck ARGS`: (exit success, report).
async fn fsck(s: &TestServer, args: &[&str]) -> (bool, Value) {
    let mut all = vec!["fsck"];
    all.extend_from_slice(args);
    let out = berth_cli(s, &all).await;
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("fsck prints a JSON report ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), report)
}

fn list(report: &Value, key: &str) -> Vec<String> {
    let mut v: Vec<String> =
        report[key].as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_owned)).collect();
    v.sort();
    v
}

#[tokio::test]
async fn fsck_finds_a_flipped_byte_a_deleted_file_and_orphans_and_repairs() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["fsck/app"]).await;
    let config = b"{\"fsck\":true}".to_vec();
    let (flipped, deleted) = (test_bytes(64 << 10, 1), test_bytes(64 << 10, 2));
    for blob in [&config, &flipped, &deleted] {
        s.push_blob(&token, "fsck/app", blob).await;
    }
    let manifest = oci_manifest(&config, &[&flipped, &deleted]);
    let m_digest = s.push_manifest(&token, "fsck/app", "v1", OCI_MANIFEST, &manifest).await;
    // A session with acknowledged bytes, which will lose its file.
    let loc = s.start_upload(&token, "fsck/app").await;
    expect_status(s.patch_chunk(&token, &loc, 0, &test_bytes(1000, 3)).await, 202, "chunk").await;

    let (ok, clean) = fsck(&s, &[]).await;
    assert!(ok, "a healthy store: {clean}");
    assert_eq!(clean["blobs_checked"], 3, "{clean}");

    let (d_flipped, d_deleted) = (sha256_digest(&flipped), sha256_digest(&deleted));
    let path = s.blob_path(&d_flipped);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    std::fs::remove_file(s.blob_path(&d_deleted)).unwrap();
    // Bytes no row accounts for: one where a blob would be, one junk file.
    let orphan = test_bytes(5000, 4);
    let orphan_path = s.blob_path(&sha256_digest(&orphan));
    std::fs::create_dir_all(orphan_path.parent().unwrap()).unwrap();
    std::fs::write(&orphan_path, &orphan).unwrap();
    std::fs::write(s.data_dir().join("blobs/junk.txt"), b"junk").unwrap();
    // An old upload directory without a session, and the session's file gone.
    let stray = "0b0e6a55-1c0f-4a5e-9d6c-2f1e3d4c5b6a";
    std::fs::create_dir_all(s.upload_path(stray)).unwrap();
    let data = std::fs::File::create(s.upload_path(stray).join("data")).unwrap();
    data.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();
    let uuid = loc.rsplit('/').next().unwrap();
    std::fs::remove_dir_all(s.upload_path(uuid)).unwrap();

    // Before any repair, reads serve the flipped byte: what fsck is for.
    let resp = expect_status(s.get(&format!("/v2/fsck/app/blobs/{d_flipped}"), Some(&token)).await, 200, "GET").await;
    assert_ne!(resp.bytes().await.unwrap().as_ref(), flipped.as_slice());

    let (ok, found) = fsck(&s, &[]).await;
    assert!(!ok, "fsck exits non-zero when it finds anything");
    assert_eq!(list(&found, "corrupt"), std::slice::from_ref(&d_flipped), "{found}");
    assert_eq!(list(&found, "missing"), std::slice::from_ref(&d_deleted), "{found}");
    let orphan_rel = orphan_path.strip_prefix(s.data_dir()).unwrap().to_string_lossy().into_owned();
    assert_eq!(list(&found, "orphan_files"), ["blobs/junk.txt".to_string(), orphan_rel.clone()], "{found}");
    let leftovers = list(&found, "leftovers");
    assert_eq!(leftovers.len(), 2, "{found}");
    assert!(leftovers.iter().any(|l| l.contains(uuid)) && leftovers.contains(&format!("uploads/{stray}")));
    eprintln!(
        "fsck found: corrupt {:?}, missing {:?}, orphan files {}, leftovers {}",
        list(&found, "corrupt"),
        list(&found, "missing"),
        list(&found, "orphan_files").len(),
        leftovers.len()
    );
    assert!(orphan_path.exists(), "fsck without --repair changes nothing");

    let (ok, repaired) = fsck(&s, &["--repair"]).await;
    assert!(!ok && repaired["repaired"] == true, "{repaired}");
    assert_eq!(list(&repaired, "lost"), sorted(&[&d_flipped, &d_deleted]), "{repaired}");
    for d in [&d_flipped, &d_deleted] {
        let resp = s.get(&format!("/v2/fsck/app/blobs/{d}"), Some(&token)).await;
        expect_error(resp, 404, "BLOB_UNKNOWN", "a lost blob").await;
    }
    assert!(!orphan_path.exists() && !s.data_dir().join("blobs/junk.txt").exists() && !s.upload_path(stray).exists());
    expect_error(s.get(&loc, Some(&token)).await, 404, "BLOB_UPLOAD_UNKNOWN", "lost session").await;

    // Afterwards only the loss is reported: the lost blobs and the image they broke.
    let (ok, after) = fsck(&s, &[]).await;
    assert!(!ok);
    for key in ["corrupt", "missing", "orphan_files", "leftovers"] {
        assert_eq!(list(&after, key), Vec::<String>::new(), "{key}: {after}");
    }
    assert_eq!(list(&after, "dangling").len(), 2, "{after}");
    assert!(list(&after, "dangling")[0].starts_with(&format!("fsck/app@{m_digest} -> ")), "{after}");

    // Pushing a lost blob again brings it back.
    s.push_blob(&token, "fsck/app", &flipped).await;
    let resp = expect_status(s.get(&format!("/v2/fsck/app/blobs/{d_flipped}"), Some(&token)).await, 200, "again").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), flipped.as_slice());
    let (_, last) = fsck(&s, &[]).await;
    assert_eq!(list(&last, "lost"), std::slice::from_ref(&d_deleted), "{last}");
    let resp = s.req(Method::HEAD, &format!("/v2/fsck/app/blobs/{d_deleted}"), Some(&token)).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

fn sorted(items: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(std::string::ToString::to_string).collect();
    v.sort();
    v
}
