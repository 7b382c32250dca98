//! Blob upload sessions (OCI end-4a, end-4b, end-5, end-6 and cancel; DESIGN §5, §6):
//! POST sessions, monolithic POST and PUT, streamed and chunked PATCH, status, cancel,
//! digest verification and "nothing stored" on failure.

use crate::common::*;
use bytes::Bytes;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;

fn uuid_of(location: &str) -> &str {
    location.rsplit('/').next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_starts_a_session() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let resp = s.req(Method::POST, "/v2/up/app/blobs/uploads/", Some(&token)).send().await.unwrap();
    let resp = expect_status(resp, 202, "POST upload").await;
    let location = header(&resp, "location").expect("Location");
    let uuid = location
        .strip_prefix("/v2/up/app/blobs/uploads/")
        .unwrap_or_else(|| panic!("Location must be relative /v2/<name>/blobs/uploads/<uuid>: {location}"));
    assert!(!uuid.is_empty() && !uuid.contains('?') && !uuid.contains('/'), "Location {location}");
    assert_eq!(header(&resp, "docker-upload-uuid").as_deref(), Some(uuid), "Docker-Upload-UUID");
    assert_eq!(header(&resp, "range").as_deref(), Some("0-0"), "Range of an empty session");
    assert_eq!(header(&resp, "content-length").as_deref(), Some("0"));

    // Also without the trailing slash.
    let resp = s.req(Method::POST, "/v2/up/app/blobs/uploads", Some(&token)).send().await.unwrap();
    expect_status(resp, 202, "POST upload without trailing slash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monolithic_post_with_digest() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let data = test_bytes(50_000, 11);
    let digest = sha256_digest(&data);
    let resp = s
        .req(Method::POST, &format!("/v2/up/app/blobs/uploads/?digest={digest}"), Some(&token))
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    let resp = expect_status(resp, 201, "monolithic POST").await;
    assert_eq!(header(&resp, "location"), Some(format!("/v2/up/app/blobs/{digest}")));
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
    let resp = s.get(&format!("/v2/up/app/blobs/{digest}"), Some(&token)).await;
    assert_eq!(expect_status(resp, 200, "GET").await.bytes().await.unwrap().as_ref(), data.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monolithic_post_digest_mismatch_stores_nothing() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let data = test_bytes(20_000, 12);
    let real = sha256_digest(&data);
    let claimed = sha256_digest(b"something else entirely");
    let before = s.blob_files();
    let resp = s
        .req(Method::POST, &format!("/v2/up/app/blobs/uploads/?digest={claimed}"), Some(&token))
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(data)
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "DIGEST_INVALID", "monolithic POST with a wrong digest").await;
    assert_nothing_stored(&s, &token, &[&claimed, &real], &before).await;
}

async fn assert_nothing_stored(
    s: &TestServer,
    token: &str,
    digests: &[&str],
    before: &std::collections::BTreeSet<std::path::PathBuf>,
) {
    for d in digests {
        assert!(!s.blob_path(d).exists(), "{d} must not be stored at {:?}", s.blob_path(d));
        let resp = s.get(&format!("/v2/up/app/blobs/{d}"), Some(token)).await;
        assert_eq!(resp.status(), 404, "GET {d} after a failed upload");
        let resp = s.head(&format!("/v2/up/app/blobs/{d}"), Some(token)).await;
        assert_eq!(resp.status(), 404, "HEAD {d} after a failed upload");
    }
    assert_eq!(&s.blob_files(), before, "files under blobs/ changed after a failed upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_patch_without_content_range() {
    // docker/podman: one PATCH, chunked transfer encoding, no Content-Range or Content-Length.
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let data = test_bytes(3 * 1024 * 1024 + 123, 13);
    let digest = sha256_digest(&data);
    let location = s.start_upload(&token, "up/app").await;

    let pieces: Vec<Result<Bytes, std::io::Error>> =
        data.chunks(64 * 1024 + 7).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(pieces));
    let resp = s
        .req(Method::PATCH, &location, Some(&token))
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    let resp = expect_status(resp, 202, "streamed PATCH").await;
    assert_eq!(header(&resp, "range"), Some(format!("0-{}", data.len() - 1)));
    assert_eq!(header(&resp, "location").as_deref(), Some(location.as_str()));
    assert_eq!(header(&resp, "docker-upload-uuid").as_deref(), Some(uuid_of(&location)));

    let resp = s.finish_upload(&token, &location, &digest, b"").await;
    let resp = expect_status(resp, 201, "PUT ?digest= with empty body").await;
    assert_eq!(header(&resp, "location"), Some(format!("/v2/up/app/blobs/{digest}")));
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));

    let resp = s.get(&format!("/v2/up/app/blobs/{digest}"), Some(&token)).await;
    let got = expect_status(resp, 200, "GET").await.bytes().await.unwrap();
    assert!(got.as_ref() == data.as_slice(), "blob bytes differ");
    assert_eq!(s.blob_on_disk(&digest).map(|b| b.len()), Some(data.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_content_range_chunks() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let data = test_bytes(30_000, 14);
    let digest = sha256_digest(&data);
    let location = s.start_upload(&token, "up/app").await;

    let mut offset = 0;
    for chunk in data[..25_000].chunks(10_000) {
        let resp = s.patch_chunk(&token, &location, offset, chunk).await;
        let resp = expect_status(resp, 202, &format!("PATCH at {offset}")).await;
        offset += chunk.len();
        assert_eq!(header(&resp, "range"), Some(format!("0-{}", offset - 1)), "Range after chunk");
        assert_eq!(header(&resp, "location").as_deref(), Some(location.as_str()));
        assert_eq!(header(&resp, "docker-upload-uuid").as_deref(), Some(uuid_of(&location)));
    }
    // The final chunk travels with the PUT.
    let resp = s.finish_upload(&token, &location, &digest, &data[25_000..]).await;
    let resp = expect_status(resp, 201, "PUT with the final chunk").await;
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
    let resp = s.get(&format!("/v2/up/app/blobs/{digest}"), Some(&token)).await;
    assert!(expect_status(resp, 200, "GET").await.bytes().await.unwrap().as_ref() == data.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_chunk_is_416_with_range_and_location() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let data = test_bytes(300, 15);
    let digest = sha256_digest(&data);
    let location = s.start_upload(&token, "up/app").await;

    // A first chunk that does not start at 0.
    let resp = s.patch_chunk(&token, &location, 10, &data[10..20]).await;
    assert_eq!(resp.status(), 416, "first chunk not at offset 0");
    assert_eq!(header(&resp, "location").as_deref(), Some(location.as_str()));
    assert_eq!(header(&resp, "range").as_deref(), Some("0-0"));

    let resp = s.patch_chunk(&token, &location, 0, &data[..100]).await;
    expect_status(resp, 202, "first chunk").await;

    for (start, end) in [(150, 200), (50, 150), (99, 120), (0, 100)] {
        let resp = s.patch_chunk(&token, &location, start, &data[start..end]).await;
        assert_eq!(resp.status(), 416, "chunk at {start} when the offset is 100");
        assert_eq!(header(&resp, "location").as_deref(), Some(location.as_str()), "416 Location");
        assert_eq!(header(&resp, "range").as_deref(), Some("0-99"), "416 Range");
    }

    // The session is intact: status unchanged, and it can be completed.
    let resp = s.get(&location, Some(&token)).await;
    let resp = expect_status(resp, 204, "status after 416").await;
    assert_eq!(header(&resp, "range").as_deref(), Some("0-99"));
    let resp = s.patch_chunk(&token, &location, 100, &data[100..]).await;
    expect_status(resp, 202, "in-order chunk after 416").await;
    let resp = s.finish_upload(&token, &location, &digest, b"").await;
    expect_status(resp, 201, "complete after 416").await;
    let resp = s.get(&format!("/v2/up/app/blobs/{digest}"), Some(&token)).await;
    assert!(expect_status(resp, 200, "GET").await.bytes().await.unwrap().as_ref() == data.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_content_range_is_416() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let location = s.start_upload(&token, "up/app").await;
    let resp = s
        .req(Method::PATCH, &location, Some(&token))
        .header("content-range", "garbage")
        .body(b"abc".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 416, "invalid Content-Range format");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monolithic_put_after_post() {
    // oras/containerd: POST, then one PUT with the whole blob.
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let data = test_bytes(100_000, 16);
    let digest = sha256_digest(&data);
    let location = s.start_upload(&token, "up/app").await;
    let resp = s.finish_upload(&token, &location, &digest, &data).await;
    let resp = expect_status(resp, 201, "monolithic PUT").await;
    assert_eq!(header(&resp, "location"), Some(format!("/v2/up/app/blobs/{digest}")));
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
    assert_eq!(s.blob_on_disk(&digest).as_deref(), Some(data.as_slice()));

    // The session is gone once completed.
    let resp = s.get(&location, Some(&token)).await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "status of a completed session").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_status() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let location = s.start_upload(&token, "up/app").await;

    let resp = s.get(&location, Some(&token)).await;
    let resp = expect_status(resp, 204, "status of an empty session").await;
    assert_eq!(header(&resp, "range").as_deref(), Some("0-0"));
    assert_eq!(header(&resp, "location").as_deref(), Some(location.as_str()));
    assert_eq!(header(&resp, "docker-upload-uuid").as_deref(), Some(uuid_of(&location)));

    s.patch_chunk(&token, &location, 0, &test_bytes(1234, 17)).await;
    let resp = s.get(&location, Some(&token)).await;
    let resp = expect_status(resp, 204, "status").await;
    assert_eq!(header(&resp, "range").as_deref(), Some("0-1233"));
    assert_eq!(header(&resp, "location").as_deref(), Some(location.as_str()));
    assert_eq!(header(&resp, "docker-upload-uuid").as_deref(), Some(uuid_of(&location)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_upload() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let location = s.start_upload(&token, "up/app").await;
    let data = test_bytes(5000, 18);
    expect_status(s.patch_chunk(&token, &location, 0, &data).await, 202, "PATCH").await;
    let upload_dir = s.upload_path(uuid_of(&location));
    assert!(upload_dir.exists(), "upload data lives under {upload_dir:?} (DESIGN §6)");

    let resp = s.delete(&location, Some(&token)).await;
    expect_status(resp, 204, "DELETE upload").await;
    assert!(!upload_dir.exists(), "cancelled upload data must be removed: {upload_dir:?}");

    let resp = s.get(&location, Some(&token)).await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "status after cancel").await;
    let resp = s.patch_chunk(&token, &location, 5000, b"more").await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "PATCH after cancel").await;
    let resp = s.finish_upload(&token, &location, &sha256_digest(&data), b"").await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "PUT after cancel").await;
    let resp = s.delete(&location, Some(&token)).await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "second DELETE").await;
    assert!(!s.blob_path(&sha256_digest(&data)).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_session_is_404_blob_upload_unknown() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    s.push_blob(&token, "up/app", b"repo exists").await;
    let bogus = "/v2/up/app/blobs/uploads/00000000-0000-4000-8000-000000000000";
    let resp = s.get(bogus, Some(&token)).await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "GET unknown session").await;
    let resp = s.patch_chunk(&token, bogus, 0, b"x").await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "PATCH unknown session").await;
    let resp = s.delete(bogus, Some(&token)).await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "DELETE unknown session").await;
    let resp = s.get("/v2/up/app/blobs/uploads/not-even-a-uuid", Some(&token)).await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "GET malformed session id").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_is_bound_to_its_repository_and_user() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/a", "up/b"]).await;
    let location = s.start_upload(&token, "up/a").await;
    s.patch_chunk(&token, &location, 0, b"hello").await;
    let uuid = uuid_of(&location).to_string();

    let other_repo = format!("/v2/up/b/blobs/uploads/{uuid}");
    let resp = s.get(&other_repo, Some(&token)).await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "session used through another repository").await;
    let resp = s.patch_chunk(&token, &other_repo, 5, b" world").await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "PATCH through another repository").await;

    // Another user with push on the same repository cannot touch it either.
    s.create_user("root2", "superuser", "root2-password").await;
    let other = s.token(Some(("root2", "root2-password")), &[&scope("up/a", "pull,push,delete")]).await;
    let resp = s.get(&location, Some(&other)).await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "session used by another user").await;

    // Still intact for its owner.
    let resp = s.get(&location, Some(&token)).await;
    assert_eq!(header(&expect_status(resp, 204, "owner status").await, "range").as_deref(), Some("0-4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_digest_mismatch_after_chunks_stores_nothing() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let data = test_bytes(40_000, 19);
    let real = sha256_digest(&data);
    let claimed = sha256_digest(b"a different blob");
    let before = s.blob_files();

    let location = s.start_upload(&token, "up/app").await;
    expect_status(s.patch_chunk(&token, &location, 0, &data[..20_000]).await, 202, "PATCH 1").await;
    expect_status(s.patch_chunk(&token, &location, 20_000, &data[20_000..]).await, 202, "PATCH 2").await;
    let resp = s.finish_upload(&token, &location, &claimed, b"").await;
    expect_error(resp, 400, "DIGEST_INVALID", "PUT with a digest that does not match").await;
    assert_nothing_stored(&s, &token, &[&claimed, &real], &before).await;

    // Same with the data in the PUT body.
    let location = s.start_upload(&token, "up/app").await;
    let resp = s.finish_upload(&token, &location, &claimed, &data).await;
    expect_error(resp, 400, "DIGEST_INVALID", "monolithic PUT with a wrong digest").await;
    assert_nothing_stored(&s, &token, &[&claimed, &real], &before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_without_digest_is_rejected() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let location = s.start_upload(&token, "up/app").await;
    let resp = s.req(Method::PUT, &location, Some(&token)).body(b"data".to_vec()).send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 400, "PUT without ?digest=: {body}");
    let resp = s.req(Method::PUT, &format!("{location}?digest=sha256:nothex"), Some(&token)).send().await.unwrap();
    expect_error(resp, 400, "DIGEST_INVALID", "PUT with a malformed digest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_algorithm_sha512_session() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let data = test_bytes(70_000, 20);
    let digest = sha512_digest(&data);
    let resp =
        s.req(Method::POST, "/v2/up/app/blobs/uploads/?digest-algorithm=sha512", Some(&token)).send().await.unwrap();
    let location = header(&expect_status(resp, 202, "POST ?digest-algorithm=sha512").await, "location").unwrap();
    assert!(!location.contains('?'), "Location carries no query: {location}");
    expect_status(s.patch_chunk(&token, &location, 0, &data[..30_000]).await, 202, "PATCH").await;
    let resp = s.finish_upload(&token, &location, &digest, &data[30_000..]).await;
    let resp = expect_status(resp, 201, "PUT sha512").await;
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
    let resp = s.get(&format!("/v2/up/app/blobs/{digest}"), Some(&token)).await;
    assert!(expect_status(resp, 200, "GET").await.bytes().await.unwrap().as_ref() == data.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_with_other_algorithm_than_session() {
    // Default (sha256) session completed with a sha512 digest: the server re-reads once.
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let data = test_bytes(50_000, 21);
    let digest = sha512_digest(&data);
    let location = s.start_upload(&token, "up/app").await;
    expect_status(s.patch_chunk(&token, &location, 0, &data).await, 202, "PATCH").await;
    let resp = s.finish_upload(&token, &location, &digest, b"").await;
    expect_status(resp, 201, "PUT with a sha512 digest on a sha256 session").await;
    let resp = s.get(&format!("/v2/up/app/blobs/{digest}"), Some(&token)).await;
    assert!(expect_status(resp, 200, "GET").await.bytes().await.unwrap().as_ref() == data.as_slice());
    // The wrong sha512 is still caught.
    let location = s.start_upload(&token, "up/app").await;
    expect_status(s.patch_chunk(&token, &location, 0, &data[1..]).await, 202, "PATCH").await;
    let resp = s.finish_upload(&token, &location, &digest, b"").await;
    expect_error(resp, 400, "DIGEST_INVALID", "sha512 mismatch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_blob_uploaded_twice_and_concurrently() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app", "up/other"]).await;
    let data = test_bytes(500_000, 22);
    let digest = sha256_digest(&data);
    s.push_blob(&token, "up/app", &data).await;
    s.push_blob(&token, "up/app", &data).await;

    let mut tasks = Vec::new();
    for repo in ["up/app", "up/other", "up/app", "up/other"] {
        let client = s.client().clone();
        let url = s.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}"));
        let token = token.clone();
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(data)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201, "concurrent upload of the same blob");
    }
    for repo in ["up/app", "up/other"] {
        let resp = s.get(&format!("/v2/{repo}/blobs/{digest}"), Some(&token)).await;
        assert!(expect_status(resp, 200, "GET").await.bytes().await.unwrap().as_ref() == data.as_slice());
    }
    assert_eq!(s.blob_on_disk(&digest).as_deref(), Some(data.as_slice()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_needs_push() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let location = s.start_upload(&token, "up/app").await;
    let pull_only = s.admin_token(&[&scope("up/app", "pull")]).await;
    // An entry that lacks the action, with a non-empty `sub`: 403 DENIED (DESIGN §4).
    let resp = s.patch_chunk(&pull_only, &location, 0, b"abc").await;
    expect_error(resp, 403, "DENIED", "PATCH with a pull-only token").await;
    let resp = s.req(Method::POST, "/v2/up/app/blobs/uploads/", Some(&pull_only)).send().await.unwrap();
    expect_error(resp, 403, "DENIED", "POST with a pull-only token").await;
    // No entry at all for the repository: 401 insufficient_scope.
    let other = s.admin_token(&[&scope("up/elsewhere", "pull,push")]).await;
    let resp = s.patch_chunk(&other, &location, 0, b"abc").await;
    expect_challenge(&s, resp, Some("repository:up/app:pull,push"), true, "PATCH with a token for another repo").await;
    let resp = s.get(&location, Some(&token)).await;
    assert_eq!(header(&resp, "range").as_deref(), Some("0-0"), "the refused PATCH wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_put_with_content_range() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let data = test_bytes(9000, 23);
    let digest = sha256_digest(&data);
    let location = s.start_upload(&token, "up/app").await;
    expect_status(s.patch_chunk(&token, &location, 0, &data[..5000]).await, 202, "PATCH").await;

    // A final chunk whose Content-Range does not start at the offset: 416, session intact.
    let resp = s
        .req(Method::PUT, &format!("{location}?digest={digest}"), Some(&token))
        .header("content-range", "4000-8999")
        .body(data[4000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 416, "final chunk at the wrong offset");
    assert_eq!(header(&resp, "range").as_deref(), Some("0-4999"));
    assert_eq!(header(&resp, "location").as_deref(), Some(location.as_str()));
    assert_eq!(header(&resp, "docker-upload-uuid").as_deref(), Some(uuid_of(&location)));
    assert!(!s.blob_path(&digest).exists());

    let resp = s
        .req(Method::PUT, &format!("{location}?digest={digest}"), Some(&token))
        .header("content-range", "5000-8999")
        .body(data[5000..].to_vec())
        .send()
        .await
        .unwrap();
    expect_status(resp, 201, "final chunk with Content-Range").await;
    assert_eq!(s.blob_on_disk(&digest).as_deref(), Some(data.as_slice()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_416_carries_upload_uuid() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["up/app"]).await;
    let location = s.start_upload(&token, "up/app").await;
    let resp = s.patch_chunk(&token, &location, 7, b"abc").await;
    assert_eq!(resp.status(), 416);
    assert_eq!(header(&resp, "docker-upload-uuid").as_deref(), Some(uuid_of(&location)));
}
