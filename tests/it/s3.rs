//! berth on S3 (DESIGN §6) against `moto_server` (PyPI `moto[server]`, in the venv that
//! `.ci/run` makes), started and stopped by this test on a free loopback port: chunked,
//! streamed and monolithic uploads across 16 MiB parts and sub-5 MiB tails, resume after a
//! restart, range reads, dedup of a blob pushed twice, digest mismatch, sha512 completion
//! of a sha256 session, and garbage collection deleting the object.
//!
//! Without moto_server the test fails and says how to install it rather than skipping.

use std::time::Duration;

use crate::common::{
    services::{Moto, use_moto},
    *,
};
use reqwest::Method;

async fn server_on(moto: &Moto) -> TestServer {
    let endpoint = moto.endpoint.clone();
    TestServer::start_with(move |c| use_moto(c, &endpoint)).await
}

const MIB: usize = 1 << 20;

async fn get_blob(s: &TestServer, token: &str, repo: &str, digest: &str) -> Vec<u8> {
    let resp = expect_status(s.get(&format!("/v2/{repo}/blobs/{digest}"), Some(token)).await, 200, "GET blob").await;
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_on_s3() {
    let moto = Moto::start().await;
    let mut s = server_on(&moto).await;
    let token = s.admin_token(&[&scope("s3/app", "pull,push,delete")]).await;

    // Chunks of 7 MiB: parts of 16 MiB form across chunk boundaries, and each request ends
    // with a remainder that is either a part (>= 5 MiB) or a tail object (< 5 MiB).
    let data = test_bytes(40 * MIB + 12345, 11);
    let digest = sha256_digest(&data);
    let resp = expect_status(
        s.req(Method::POST, "/v2/s3/app/blobs/uploads/", Some(&token)).send().await.unwrap(),
        202,
        "POST",
    )
    .await;
    assert_eq!(header(&resp, "oci-chunk-min-length").as_deref(), Some("5242880"));
    let loc = header(&resp, "location").unwrap();
    let chunks: Vec<&[u8]> = data.chunks(7 * MIB).collect();
    let mut offset = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        if i == 3 {
            // Restart mid-upload: the session (parts, tail) lives in the database and S3.
            s.restart().await;
            let token = s.admin_token(&[&scope("s3/app", "pull,push,delete")]).await;
            let status = expect_status(s.get(&loc, Some(&token)).await, 204, "status after restart").await;
            assert_eq!(header(&status, "range"), Some(format!("0-{}", offset - 1)));
        }
        let token = s.admin_token(&[&scope("s3/app", "pull,push,delete")]).await;
        if i + 1 == chunks.len() {
            // The last chunk rides on the closing PUT.
            let r = s.finish_upload(&token, &loc, &digest, chunk).await;
            expect_status(r, 201, "closing PUT").await;
        } else {
            expect_status(s.patch_chunk(&token, &loc, offset, chunk).await, 202, "PATCH").await;
        }
        offset += chunk.len();
    }
    let token = s.admin_token(&[&scope("s3/app", "pull,push,delete"), &scope("s3/other", "pull,push,delete")]).await;
    assert_eq!(get_blob(&s, &token, "s3/app", &digest).await, data, "40 MiB blob round trip");
    let resp = s
        .req(Method::GET, &format!("/v2/s3/app/blobs/{digest}"), Some(&token))
        .header("range", "bytes=20971000-20971999")
        .send()
        .await
        .unwrap();
    let resp = expect_status(resp, 206, "range").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[20_971_000..20_972_000]);
    // The blob is the completed multipart object itself; no tail objects are left.
    let keys = moto.keys("reg/uploads/").await;
    assert_eq!(keys.len(), 1, "{keys:?}");

    // A streamed PATCH (no Content-Range), then the same bytes pushed again elsewhere:
    // the second copy loses to the first row and its object is deleted.
    let small = test_bytes(3 * MIB, 12);
    let small_digest = sha256_digest(&small);
    let loc = s.start_upload(&token, "s3/app").await;
    let resp = s.req(Method::PATCH, &loc, Some(&token)).body(small.clone()).send().await.unwrap();
    expect_status(resp, 202, "streamed PATCH").await;
    expect_status(s.finish_upload(&token, &loc, &small_digest, b"").await, 201, "finish").await;
    s.push_blob(&token, "s3/other", &small).await;
    assert_eq!(get_blob(&s, &token, "s3/other", &small_digest).await, small);
    assert_eq!(moto.keys("reg/uploads/").await.len(), 2, "one object per distinct blob");
    assert!(moto.keys("reg/").await.iter().all(|k| !k.contains(".tail")), "no tail objects left");

    // 3 MiB chunks: each request ends with a remainder under 5 MiB, kept as a tail object
    // and prepended to the next part.
    let tails = test_bytes(11 * MIB + 5, 15);
    let tails_digest = sha256_digest(&tails);
    let loc = s.start_upload(&token, "s3/app").await;
    for (i, chunk) in tails.chunks(3 * MIB).enumerate() {
        expect_status(s.patch_chunk(&token, &loc, i * 3 * MIB, chunk).await, 202, "3 MiB chunk").await;
        let has_tail = moto.keys("reg/uploads/").await.iter().any(|k| k.contains(".tail"));
        assert_eq!(has_tail, i % 2 == 0, "chunk {i}: a tail after 3, 9 MiB; a part after 6, 12 MiB");
    }
    expect_status(s.finish_upload(&token, &loc, &tails_digest, b"").await, 201, "finish").await;
    assert_eq!(get_blob(&s, &token, "s3/app", &tails_digest).await, tails);
    // Unlinked now, so that the final collection below counts it too.
    expect_status(s.delete(&format!("/v2/s3/app/blobs/{tails_digest}"), Some(&token)).await, 202, "unlink").await;

    // The empty blob: a multipart upload of one empty part.
    let empty = s.push_blob(&token, "s3/app", b"").await;
    assert!(get_blob(&s, &token, "s3/app", &empty).await.is_empty());
    let resp = expect_status(s.head(&format!("/v2/s3/app/blobs/{empty}"), Some(&token)).await, 200, "HEAD").await;
    assert_eq!(header(&resp, "content-length").as_deref(), Some("0"));

    // A digest mismatch stores nothing.
    let before = moto.keys("reg/").await;
    let wrong = sha256_digest(b"something else");
    let resp = s
        .req(Method::POST, &format!("/v2/s3/app/blobs/uploads/?digest={wrong}"), Some(&token))
        .body(test_bytes(1000, 13))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "DIGEST_INVALID", "mismatch").await;
    assert_eq!(moto.keys("reg/").await, before, "nothing left behind");

    // A sha256 session completed with a sha512 digest: hashed again from the object.
    let bytes512 = test_bytes(6 * MIB + 7, 14);
    let d512 = sha512_digest(&bytes512);
    let loc = s.start_upload(&token, "s3/app").await;
    expect_status(s.finish_upload(&token, &loc, &d512, &bytes512).await, 201, "sha512 finish").await;
    assert_eq!(get_blob(&s, &token, "s3/app", &d512).await, bytes512);

    // A manifest over the big blob, then delete everything and collect: objects go.
    let config = b"{}".to_vec();
    s.push_blob(&token, "s3/app", &config).await;
    let manifest = oci_manifest(&config, &[&data]);
    s.push_manifest(&token, "s3/app", "v1", OCI_MANIFEST, &manifest).await;
    expect_status(s.get("/v2/s3/app/manifests/v1", Some(&token)).await, 200, "manifest").await;
    for d in [&digest, &small_digest, &d512, &sha256_digest(&config), &empty] {
        expect_status(s.delete(&format!("/v2/s3/app/blobs/{d}"), Some(&token)).await, 202, "unlink").await;
    }
    expect_status(s.delete(&format!("/v2/s3/other/blobs/{small_digest}"), Some(&token)).await, 202, "unlink").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("gc")
        .env("BERTH_DATA_DIR", s.data_dir())
        .env("BERTH_GC__BLOB_GRACE_SECS", "0")
        .env("BERTH_STORAGE__KIND", "s3")
        .env("BERTH_STORAGE__S3__BUCKET", "berth")
        .env("BERTH_STORAGE__S3__PREFIX", "reg")
        .env("BERTH_STORAGE__S3__ENDPOINT", &moto.endpoint)
        .env("BERTH_STORAGE__S3__ALLOW_HTTP", "true")
        .env("BERTH_STORAGE__S3__ACCESS_KEY_ID", "test")
        .env("BERTH_STORAGE__S3__SECRET_ACCESS_KEY", "test")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "berth gc: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["blobs_removed"], 6, "{report}");
    assert!(moto.keys("reg/uploads/").await.is_empty(), "objects deleted: {:?}", moto.keys("reg/").await);
}
