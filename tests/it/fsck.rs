//! `berth fsck [--repair]` (issue 10): a flipped byte and a deleted file are found by
//! re-hashing, files and sessions no row accounts for are found by comparing both ways, the
//! exit status says so, and a repair makes the lost blobs answer 404 (not wrong bytes or
//! 500) until they are pushed again, and removes the orphans.

use std::time::{Duration, SystemTime};

use crate::common::{
    services::{Moto, use_moto},
    *,
};
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

/// On S3 (moto): objects under the prefix that no row accounts for — a completed upload
/// object with neither blob row nor session, a tail object of no session, a key of no
/// layout — are reported once old enough (never while a push may still record them), and
/// `--repair` deletes exactly those: the image's objects and an open session's stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_on_s3_finds_and_removes_orphan_objects() {
    let moto = Moto::start().await;
    let endpoint = moto.endpoint.clone();
    let s = TestServer::start_with(move |c| use_moto(c, &endpoint)).await;
    let token = s.repo_token(&["fsck/s3"]).await;
    let image = s.push_image(&token, "fsck/s3", "v1", "s3").await;
    let open = test_bytes(1000, 3);
    let loc = s.start_upload(&token, "fsck/s3").await;
    expect_status(s.patch_chunk(&token, &loc, 0, &open).await, 202, "chunk of an open session").await;
    // Left by crashes, put straight into the bucket (moto takes unsigned requests).
    let strays = [
        "uploads/0b7e6c1e-2f4a-4d7b-9c1e-5a6b7c8d9e0f",
        "uploads/1c8f7d2f-3a5b-4e8c-8d2f-6b7c8d9e0f1a.tails/0af3",
        "elsewhere/thing",
    ];
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for key in strays {
        let r = http.put(format!("{}/berth/reg/{key}", moto.endpoint)).body("stray").send().await.unwrap();
        assert!(r.status().is_success(), "put {key}: {}", r.status());
    }
    let before = moto.keys("reg/").await;

    let mut config = berth::config::Config { data_dir: s.data_dir().to_path_buf(), ..Default::default() };
    use_moto(&mut config, &moto.endpoint);
    let db = berth::server::open_db(&config).await.unwrap();
    let store = berth::storage::BlobStore::open_configured(&config).await.unwrap();
    let registry = berth::registry::Registry::new(db, store, config.limits.max_manifest_bytes);
    let fsck = |repair, ahead| registry.fsck(repair, berth::db::now() + ahead, Default::default());
    let young = fsck(false, 0).await.unwrap();
    assert!(young.orphan_files.is_empty() && young.leftovers.is_empty(), "young objects are left alone: {young:?}");

    // An hour on, they are reported; a check removes nothing.
    let found = fsck(false, 3600).await.unwrap();
    assert_eq!(sorted(&found.orphan_files.iter().collect::<Vec<_>>()), [strays[2], strays[0]], "{found:?}");
    assert_eq!(found.leftovers, [strays[1]], "{found:?}");
    assert!(found.corrupt.is_empty() && found.missing.is_empty(), "{found:?}");
    assert_eq!(moto.keys("reg/").await, before);

    let repaired = fsck(true, 3600).await.unwrap();
    assert_eq!((repaired.orphan_files.len(), repaired.leftovers.len()), (2, 1), "{repaired:?}");
    let mut expected: Vec<String> = before.into_iter().filter(|k| !strays.iter().any(|s| k.ends_with(s))).collect();
    expected.sort();
    let mut after = moto.keys("reg/").await;
    after.sort();
    assert_eq!(after, expected, "exactly the strays went");
    assert_eq!(fsck(false, 3600).await.unwrap().problems(), 0);
    // The image reads whole, and the open session goes on from its offset.
    for blob in [&image.config, &image.layers[0]] {
        let resp = s.get(&format!("/v2/fsck/s3/blobs/{}", sha256_digest(blob)), Some(&token)).await;
        assert_eq!(expect_status(resp, 200, "blob").await.bytes().await.unwrap().as_ref(), blob.as_slice());
    }
    let status = expect_status(s.get(&loc, Some(&token)).await, 204, "session status").await;
    assert_eq!(header(&status, "range").as_deref(), Some("0-999"));
}
