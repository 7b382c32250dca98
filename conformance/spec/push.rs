//! Spec "Workflow Categories › Push", blobs (end-4a, end-4b, end-4c, end-5, end-6, end-13):
//! POST then PUT, single POST, chunked PATCHes with `Content-Range`, upload status, other
//! digest algorithms and the empty blob. Cross-repository mounts are in
//! `push_mount.rs`, manifest pushes in `push_manifests.rs`.

use reqwest::Method;

use crate::client::{Registry, with_query};
use crate::content::*;

/// The `Location` of an upload session: relative, under the repository, naming the session
/// (spec: "MUST contain a UUID"; DESIGN §5: relative, no query).
pub fn check_session_location(location: &str, repo: &str) {
    let prefix = format!("/v2/{repo}/blobs/uploads/");
    let id =
        location.strip_prefix(&prefix).unwrap_or_else(|| panic!("session Location {location:?} not under {prefix}"));
    assert!(!id.is_empty(), "session Location without an id: {location}");
}

/// Asserts the blob is pullable with exactly `content`.
pub async fn assert_blob(reg: &Registry, repo: &str, digest: &str, content: &[u8]) {
    let r = reg.get(&format!("/v2/{repo}/blobs/{digest}")).await.expect(200);
    assert_eq!(r.body.as_ref(), content, "content of {digest}");
    r.expect_header("docker-content-digest", digest);
}

/// Spec "Push › POST then PUT" (end-4a, end-6): POST MUST answer `202` with a `Location`
/// holding the session id; PUT `<location>?digest=` with the whole blob MUST answer `201`
/// with `Location: <blob-location>` pullable; DESIGN §5 adds `Docker-Upload-UUID` and
/// `Docker-Content-Digest`.
#[tokio::test]
async fn push_blob_post_then_put() {
    let reg = Registry::start().await;
    let content = bytes(4096, 1);
    let digest = sha256(&content);
    let post = reg.req(Method::POST, "/v2/push/monolithic/blobs/uploads/").send().await.expect(202);
    let location = post.location();
    check_session_location(&location, "push/monolithic");
    let uuid = post.must_header("docker-upload-uuid");
    assert!(location.ends_with(&uuid), "{location} vs Docker-Upload-UUID {uuid}");

    // end-13 on a fresh session: 204 with Location and (DESIGN §5) `Range: 0-0`.
    let status = reg.get(&location).await.expect(204);
    status.expect_header("range", "0-0");
    assert_eq!(status.location(), location);
    status.expect_header("docker-upload-uuid", &uuid);

    let put = reg
        .req(Method::PUT, &with_query(&location, &format!("digest={digest}")))
        .octets(content.clone())
        .send()
        .await
        .expect(201);
    assert_eq!(put.location(), format!("/v2/push/monolithic/blobs/{digest}"));
    put.expect_header("docker-content-digest", &digest);
    assert_blob(&reg, "push/monolithic", &digest, &content).await;
    let again = reg.get(&put.location()).await.expect(200);
    assert_eq!(again.body.as_ref(), content.as_slice());
}

/// Spec "Push › Single POST" (end-4b): `POST …/uploads/?digest=` with the blob; success
/// MUST be `201` with a pullable `Location`.
#[tokio::test]
async fn push_blob_single_post() {
    let reg = Registry::start().await;
    let content = bytes(10_000, 2);
    let digest = sha256(&content);
    let r = reg
        .req(Method::POST, &format!("/v2/push/single/blobs/uploads/?digest={digest}"))
        .octets(content.clone())
        .send()
        .await
        .expect(201);
    assert_eq!(r.location(), format!("/v2/push/single/blobs/{digest}"));
    r.expect_header("docker-content-digest", &digest);
    assert_blob(&reg, "push/single", &digest, &content).await;
}

/// Spec "Push › Single POST": "the `<digest>` MUST match the blob's digest"; a mismatch is
/// `400 DIGEST_INVALID` (code-4, "provided digest did not match uploaded content") and
/// nothing becomes pullable under either digest.
#[tokio::test]
async fn push_blob_digest_mismatch() {
    let reg = Registry::start().await;
    let content = bytes(1000, 3);
    let claimed = sha256(b"something else");
    reg.req(Method::POST, &format!("/v2/push/mismatch/blobs/uploads/?digest={claimed}"))
        .octets(content.clone())
        .send()
        .await
        .expect_error(400, "DIGEST_INVALID");

    let location = reg.start_upload("push/mismatch").await;
    reg.req(Method::PUT, &with_query(&location, &format!("digest={claimed}")))
        .octets(content.clone())
        .send()
        .await
        .expect_error(400, "DIGEST_INVALID");
    for d in [claimed, sha256(&content)] {
        reg.get(&format!("/v2/push/mismatch/blobs/{d}")).await.expect_error(404, "BLOB_UNKNOWN");
    }
}

/// Spec "Push › Pushing a blob in chunks" (end-5, end-6): each in-order PATCH with
/// `Content-Range: <start>-<end>` MUST answer `202` with `Location` and
/// `Range: 0-<end-of-range>`; the closing PUT with only `?digest=` MUST answer `201`.
#[tokio::test]
async fn push_blob_chunked_in_order() {
    let reg = Registry::start().await;
    let content = bytes(3 * 1024 + 17, 4);
    let digest = sha256(&content);
    let mut location = reg.start_upload("push/chunked").await;
    for (start, chunk) in [(0, &content[..1024]), (1024, &content[1024..2048]), (2048, &content[2048..])] {
        let end = start + chunk.len() - 1;
        let r = reg
            .req(Method::PATCH, &location)
            .header("content-range", format!("{start}-{end}"))
            .octets(chunk.to_vec())
            .send()
            .await
            .expect(202);
        r.expect_header("range", &format!("0-{end}"));
        location = r.location();
        check_session_location(&location, "push/chunked");
    }
    let put = reg
        .req(Method::PUT, &with_query(&location, &format!("digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(Vec::new())
        .send()
        .await
        .expect(201);
    assert_eq!(put.location(), format!("/v2/push/chunked/blobs/{digest}"));
    assert_blob(&reg, "push/chunked", &digest, &content).await;
}

/// Spec "Push › Pushing a blob in chunks": "If a chunk is uploaded out of order, the
/// registry MUST respond with a `416`" — here the very first PATCH starts past 0.
#[tokio::test]
async fn push_blob_chunk_out_of_order_is_416() {
    let reg = Registry::start().await;
    let content = bytes(2048, 5);
    let location = reg.start_upload("push/outoforder").await;
    let r = reg
        .req(Method::PATCH, &location)
        .header("content-range", "1024-2047")
        .octets(content[1024..].to_vec())
        .send()
        .await;
    assert_eq!(r.status, 416, "{r:?}");
}

/// Spec "Pushing a blob in chunks": `Content-Range` is the chunk's byte range ("`<length>`
/// is the content-length … of the current chunk"); a range that disagrees with the body is
/// refused with a 4xx (`400` or `416`, the spec names neither), and the session's offset
/// does not move (end-13 still says `0-999`).
#[tokio::test]
async fn push_blob_chunk_range_disagrees_with_body() {
    let reg = Registry::start().await;
    let content = bytes(2000, 5);
    let location = reg.start_upload("push/badrange").await;
    let r = reg
        .req(Method::PATCH, &location)
        .header("content-range", "0-999")
        .octets(content[..1000].to_vec())
        .send()
        .await
        .expect(202);
    let location = r.location();
    let r = reg
        .req(Method::PATCH, &location)
        .header("content-range", "1000-1999")
        .octets(content[1000..1500].to_vec())
        .send()
        .await;
    assert!(r.status == 400 || r.status == 416, "{r:?}");
    reg.get(&location).await.expect(204).expect_header("range", "0-999");
}

/// Spec "Push › Pushing a blob in chunks" (end-5, end-13): re-sending an accepted chunk is
/// out of order (`416`); then "To get the current status after a 416 error, issue a GET"
/// which MUST answer `204` with `Location` and `Range: 0-<end-of-range>`; the upload then
/// resumes from that `Location` and completes.
#[tokio::test]
async fn push_blob_retried_chunk_is_416_then_resumes() {
    let reg = Registry::start().await;
    let content = bytes(2000, 6);
    let digest = sha256(&content);
    let first = reg.start_upload("push/retry").await;
    let r = reg
        .req(Method::PATCH, &first)
        .header("content-range", "0-999")
        .octets(content[..1000].to_vec())
        .send()
        .await
        .expect(202);
    r.expect_header("range", "0-999");

    let retry =
        reg.req(Method::PATCH, &first).header("content-range", "0-999").octets(content[..1000].to_vec()).send().await;
    assert_eq!(retry.status, 416, "{retry:?}");
    // DESIGN §5: the 416 says where the session stands.
    retry.expect_header("range", "0-999");
    check_session_location(&retry.location(), "push/retry");

    let status = reg.get(&first).await.expect(204);
    status.expect_header("range", "0-999");
    let location = status.location();
    check_session_location(&location, "push/retry");

    reg.req(Method::PATCH, &location)
        .header("content-range", "1000-1999")
        .octets(content[1000..].to_vec())
        .send()
        .await
        .expect(202)
        .expect_header("range", "0-1999");
    reg.req(Method::PUT, &with_query(&location, &format!("digest={digest}"))).body(Vec::new()).send().await.expect(201);
    assert_blob(&reg, "push/retry", &digest, &content).await;
}

/// Spec "Push › Pushing a blob in chunks": "The final chunk MAY be uploaded … in the closing
/// PUT request" with its `Content-Range`.
#[tokio::test]
async fn push_blob_final_chunk_in_put() {
    let reg = Registry::start().await;
    let content = bytes(1500, 7);
    let digest = sha256(&content);
    let location = reg.start_upload("push/finalput").await;
    let r = reg
        .req(Method::PATCH, &location)
        .header("content-range", "0-999")
        .octets(content[..1000].to_vec())
        .send()
        .await
        .expect(202);
    reg.req(Method::PUT, &with_query(&r.location(), &format!("digest={digest}")))
        .header("content-range", "1000-1499")
        .octets(content[1000..].to_vec())
        .send()
        .await
        .expect(201);
    assert_blob(&reg, "push/finalput", &digest, &content).await;
}

/// Official suite "Blob Upload Streamed": one PATCH with the whole blob and no
/// `Content-Range` (as docker sends it) answers `202`; the PUT closes it (`201`).
#[tokio::test]
async fn push_blob_streamed_patch() {
    let reg = Registry::start().await;
    let content = bytes(5000, 8);
    let digest = sha256(&content);
    let location = reg.start_upload("push/streamed").await;
    let r = reg.req(Method::PATCH, &location).octets(content.clone()).send().await.expect(202);
    r.expect_header("range", "0-4999");
    reg.req(Method::PUT, &with_query(&r.location(), &format!("digest={digest}")))
        .body(Vec::new())
        .send()
        .await
        .expect(201);
    assert_blob(&reg, "push/streamed", &digest, &content).await;
}

/// Spec "Push" (end-4c, `?digest-algorithm=`) and image-spec "Digests" (sha512 is a
/// registered algorithm): a session opened for sha512, chunked, closed with a `sha512:`
/// digest gives `201`, `Docker-Content-Digest` in sha512 and a pullable sha512 Location.
#[tokio::test]
async fn push_blob_sha512_session() {
    let reg = Registry::start().await;
    let content = bytes(2500, 9);
    let digest = sha512(&content);
    let post = reg
        .req(Method::POST, "/v2/push/sha512/blobs/uploads/?digest-algorithm=sha512")
        .body(Vec::new())
        .send()
        .await
        .expect(202);
    let r = reg
        .req(Method::PATCH, &post.location())
        .header("content-range", "0-1249")
        .octets(content[..1250].to_vec())
        .send()
        .await
        .expect(202);
    let put = reg
        .req(Method::PUT, &with_query(&r.location(), &format!("digest={digest}")))
        .header("content-range", "1250-2499")
        .octets(content[1250..].to_vec())
        .send()
        .await
        .expect(201);
    put.expect_header("docker-content-digest", &digest);
    assert_eq!(put.location(), format!("/v2/push/sha512/blobs/{digest}"));
    assert_blob(&reg, "push/sha512", &digest, &content).await;
}

/// Spec "Push › Single POST" and "POST then PUT" with a `sha512:` digest and no
/// `digest-algorithm` hint (the official suite never sends one): both `201`, and the blob is
/// pullable by its sha512 digest with `Docker-Content-Digest` in sha512.
#[tokio::test]
async fn push_blob_sha512_without_hint() {
    let reg = Registry::start().await;
    let a = bytes(777, 10);
    let da = sha512(&a);
    reg.req(Method::POST, &format!("/v2/push/sha512b/blobs/uploads/?digest={da}"))
        .octets(a.clone())
        .send()
        .await
        .expect(201)
        .expect_header("docker-content-digest", &da);
    assert_blob(&reg, "push/sha512b", &da, &a).await;

    let b = bytes(1777, 11);
    let db = sha512(&b);
    let location = reg.start_upload("push/sha512b").await;
    let r =
        reg.req(Method::PATCH, &location).header("content-range", "0-1776").octets(b.clone()).send().await.expect(202);
    reg.req(Method::PUT, &with_query(&r.location(), &format!("digest={db}")))
        .body(Vec::new())
        .send()
        .await
        .expect(201)
        .expect_header("docker-content-digest", &db);
    assert_blob(&reg, "push/sha512b", &db, &b).await;
}

/// Spec "Push" with zero-length content (the official suite's empty layer): the sha256 of
/// nothing, by single POST and by POST then PUT, is `201` and pulls back empty.
#[tokio::test]
async fn push_empty_blob() {
    let reg = Registry::start().await;
    assert_eq!(sha256(b""), EMPTY_SHA256);
    reg.req(Method::POST, &format!("/v2/push/empty/blobs/uploads/?digest={EMPTY_SHA256}"))
        .octets(Vec::new())
        .send()
        .await
        .expect(201);
    let r = reg.get(&format!("/v2/push/empty/blobs/{EMPTY_SHA256}")).await.expect(200);
    assert!(r.body.is_empty());
    r.expect_header("content-length", "0");

    let location = reg.start_upload("push/empty2").await;
    reg.req(Method::PUT, &with_query(&location, &format!("digest={EMPTY_SHA256}")))
        .octets(Vec::new())
        .send()
        .await
        .expect(201);
    reg.head(&format!("/v2/push/empty2/blobs/{EMPTY_SHA256}")).await.expect(200).expect_header("content-length", "0");
}
