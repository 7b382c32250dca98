//! Blob reads (GET/HEAD, Range), blob DELETE, per-repository linking, cross-repository
//! mount, name and digest validation (OCI end-2, end-10, end-11; DESIGN §2, §5, §6).

use crate::common::*;
use reqwest::Method;
use reqwest::header::RANGE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_head_blob() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["lib/app"]).await;
    let data = test_bytes(10_000, 1);
    let digest = s.push_blob(&token, "lib/app", &data).await;

    let resp = s.get(&format!("/v2/lib/app/blobs/{digest}"), Some(&token)).await;
    let resp = expect_status(resp, 200, "GET blob").await;
    assert_eq!(header(&resp, "content-length").as_deref(), Some("10000"));
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());

    let resp = s.head(&format!("/v2/lib/app/blobs/{digest}"), Some(&token)).await;
    let resp = expect_status(resp, 200, "HEAD blob").await;
    assert_eq!(header(&resp, "content-length").as_deref(), Some("10000"), "HEAD has the real length");
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
    assert!(resp.bytes().await.unwrap().is_empty(), "HEAD has no body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_is_stored_content_addressed_on_disk() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["lib/app"]).await;
    let data = test_bytes(4096, 2);
    let digest = s.push_blob(&token, "lib/app", &data).await;
    let path = s.blob_path(&digest);
    let hex = digest.strip_prefix("sha256:").unwrap();
    assert!(path.ends_with(format!("blobs/sha256/{}/{hex}", &hex[..2])));
    assert_eq!(s.blob_on_disk(&digest).as_deref(), Some(data.as_slice()), "bytes at {path:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_blob() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["lib/app"]).await;
    let digest = s.push_blob(&token, "lib/app", b"").await;
    assert_eq!(digest, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    let resp = s.get(&format!("/v2/lib/app/blobs/{digest}"), Some(&token)).await;
    let resp = expect_status(resp, 200, "GET empty blob").await;
    assert_eq!(header(&resp, "content-length").as_deref(), Some("0"));
    assert!(resp.bytes().await.unwrap().is_empty());
}

async fn get_range(s: &TestServer, token: &str, digest: &str, range: &str) -> reqwest::Response {
    s.req(Method::GET, &format!("/v2/lib/app/blobs/{digest}"), Some(token)).header(RANGE, range).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_requests() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["lib/app"]).await;
    let data = test_bytes(1000, 3);
    let digest = s.push_blob(&token, "lib/app", &data).await;

    // (Range header, first byte, last byte)
    let cases = [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        ("bytes=990-", 990, 999),
        ("bytes=-25", 975, 999),
        ("bytes=500-5000", 500, 999),
        ("bytes=-5000", 0, 999),
    ];
    for (range, first, last) in cases {
        let resp = get_range(&s, &token, &digest, range).await;
        let resp = expect_status(resp, 206, &format!("Range: {range}")).await;
        assert_eq!(
            header(&resp, "content-range").as_deref(),
            Some(format!("bytes {first}-{last}/1000").as_str()),
            "Content-Range for {range}"
        );
        assert_eq!(header(&resp, "content-length"), Some((last - first + 1).to_string()), "Content-Length for {range}");
        assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
        let body = resp.bytes().await.unwrap();
        assert_eq!(body.as_ref(), &data[first..=last], "body for {range}");
    }

    for range in ["bytes=1000-", "bytes=1000-1001", "bytes=5000-6000", "bytes=-0"] {
        let resp = get_range(&s, &token, &digest, range).await;
        assert_eq!(resp.status(), 416, "Range: {range}");
        assert_eq!(header(&resp, "content-range").as_deref(), Some("bytes */1000"), "for {range}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_blob_and_unknown_repo() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["lib/app", "lib/never"]).await;
    s.push_blob(&token, "lib/app", b"something").await;
    let missing = sha256_digest(b"never pushed");

    let resp = s.get(&format!("/v2/lib/app/blobs/{missing}"), Some(&token)).await;
    expect_error(resp, 404, "BLOB_UNKNOWN", "GET unknown blob").await;
    let resp = s.head(&format!("/v2/lib/app/blobs/{missing}"), Some(&token)).await;
    assert_eq!(resp.status(), 404, "HEAD unknown blob");

    let resp = s.get(&format!("/v2/lib/never/blobs/{missing}"), Some(&token)).await;
    expect_error(resp, 404, "NAME_UNKNOWN", "GET blob in absent repository").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_digests_are_400_digest_invalid() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["lib/app"]).await;
    s.push_blob(&token, "lib/app", b"x").await;
    let short = format!("sha256:{}", "a".repeat(63));
    let upper = format!("sha256:{}", "A".repeat(64));
    let sha512_short = format!("sha512:{}", "a".repeat(64));
    for bad in [sha512_short.as_str(), "sha256:zzzz", short.as_str(), upper.as_str(), "sha256", "sha256:"] {
        let resp = s.get(&format!("/v2/lib/app/blobs/{bad}"), Some(&token)).await;
        expect_error(resp, 400, "DIGEST_INVALID", &format!("GET blob {bad}")).await;
    }
    let resp = s.delete("/v2/lib/app/blobs/sha256:nothex", Some(&token)).await;
    expect_error(resp, 400, "DIGEST_INVALID", "DELETE blob with a bad digest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_names_are_400_before_authorization() {
    let s = TestServer::start().await;
    let digest = sha256_digest(b"x");
    let long = "a".repeat(256);
    let bad_names = ["Upper/case", "-lead", "a..b", "a/-b", "a/b_", "x/.y", long.as_str(), "a/b__-c"];
    for name in bad_names {
        for path in [
            format!("/v2/{name}/blobs/{digest}"),
            format!("/v2/{name}/manifests/latest"),
            format!("/v2/{name}/tags/list"),
        ] {
            let resp = s.get(&path, None).await;
            expect_error(resp, 400, "NAME_INVALID", &format!("GET {path} without a token")).await;
        }
        let resp = s.req(Method::POST, &format!("/v2/{name}/blobs/uploads/"), None).send().await.unwrap();
        expect_error(resp, 400, "NAME_INVALID", &format!("POST upload to {name}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_unusual_names_work() {
    let s = TestServer::start().await;
    // Separators from the grammar, 255 characters, and names containing route keywords.
    let long = format!("n/{}", "b".repeat(253));
    assert_eq!(long.len(), 255);
    let names = ["a__b/c.d-e", "x/y--z", "blobs/manifests", "tags/blobs/uploads", "m/manifests/blobs", long.as_str()];
    for name in names {
        let token = s.repo_token(&[name]).await;
        let digest = s.push_blob(&token, name, name.as_bytes()).await;
        let resp = s.get(&format!("/v2/{name}/blobs/{digest}"), Some(&token)).await;
        let resp = expect_status(resp, 200, &format!("GET blob in {name}")).await;
        assert_eq!(resp.bytes().await.unwrap().as_ref(), name.as_bytes());
        let img = s.push_image(&token, name, "latest", name).await;
        let resp = s.get(&format!("/v2/{name}/manifests/latest"), Some(&token)).await;
        let resp = expect_status(resp, 200, &format!("GET manifest in {name}")).await;
        assert_eq!(resp.bytes().await.unwrap().as_ref(), img.manifest.as_slice());
        let resp = s.get(&format!("/v2/{name}/tags/list"), Some(&token)).await;
        let json: serde_json::Value = expect_status(resp, 200, "tags").await.json().await.unwrap();
        assert_eq!(json["name"], name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_is_readable_only_through_repositories_that_link_it() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["iso/a", "iso/b"]).await;
    let secret = test_bytes(2048, 4);
    let digest = s.push_blob(&token, "iso/a", &secret).await;
    s.push_blob(&token, "iso/b", b"something else so that iso/b exists").await;

    let resp = s.get(&format!("/v2/iso/b/blobs/{digest}"), Some(&token)).await;
    expect_error(resp, 404, "BLOB_UNKNOWN", "blob of iso/a read through iso/b").await;
    let resp = s.head(&format!("/v2/iso/b/blobs/{digest}"), Some(&token)).await;
    assert_eq!(resp.status(), 404, "HEAD through a repository that does not link it");

    // Linking it by uploading it to iso/b makes it readable there.
    s.push_blob(&token, "iso/b", &secret).await;
    let resp = s.get(&format!("/v2/iso/b/blobs/{digest}"), Some(&token)).await;
    let resp = expect_status(resp, 200, "after linking into iso/b").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), secret.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_blob_unlinks_it_from_that_repository_only() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["del/a", "del/b"]).await;
    let data = test_bytes(3000, 5);
    let digest = s.push_blob(&token, "del/a", &data).await;
    s.push_blob(&token, "del/b", &data).await;

    let resp = s.delete(&format!("/v2/del/a/blobs/{digest}"), Some(&token)).await;
    expect_status(resp, 202, "DELETE blob").await;
    let resp = s.get(&format!("/v2/del/a/blobs/{digest}"), Some(&token)).await;
    expect_error(resp, 404, "BLOB_UNKNOWN", "GET after DELETE").await;
    let resp = s.head(&format!("/v2/del/a/blobs/{digest}"), Some(&token)).await;
    assert_eq!(resp.status(), 404, "HEAD after DELETE");

    let resp = s.get(&format!("/v2/del/b/blobs/{digest}"), Some(&token)).await;
    let resp = expect_status(resp, 200, "still readable in the other repository").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());

    let resp = s.delete(&format!("/v2/del/a/blobs/{digest}"), Some(&token)).await;
    expect_error(resp, 404, "BLOB_UNKNOWN", "second DELETE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_blob_needs_delete_action() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["del/c"]).await;
    let digest = s.push_blob(&token, "del/c", b"keep me").await;
    let pull_push = s.admin_token(&[&scope("del/c", "pull,push")]).await;
    let resp = s.delete(&format!("/v2/del/c/blobs/{digest}"), Some(&pull_push)).await;
    expect_error(resp, 403, "DENIED", "DELETE blob with an entry lacking delete").await;
    let anon = s.anon_token(&[&scope("del/c", "pull,delete")]).await;
    let resp = s.delete(&format!("/v2/del/c/blobs/{digest}"), Some(&anon)).await;
    expect_challenge(&s, resp, Some("repository:del/c:delete"), true, "anonymous DELETE blob").await;
    let resp = s.get(&format!("/v2/del/c/blobs/{digest}"), Some(&token)).await;
    expect_status(resp, 200, "blob still there").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_from_linked_repository() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["mnt/src", "mnt/dst"]).await;
    let data = test_bytes(5000, 6);
    let digest = s.push_blob(&token, "mnt/src", &data).await;

    let resp = s
        .req(Method::POST, &format!("/v2/mnt/dst/blobs/uploads/?mount={digest}&from=mnt/src"), Some(&token))
        .send()
        .await
        .unwrap();
    let resp = expect_status(resp, 201, "mount").await;
    assert_eq!(header(&resp, "location"), Some(format!("/v2/mnt/dst/blobs/{digest}")));
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));

    let resp = s.get(&format!("/v2/mnt/dst/blobs/{digest}"), Some(&token)).await;
    let resp = expect_status(resp, 200, "GET mounted blob").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_of_unlinked_blob_falls_back_to_upload_session() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["mnt/src", "mnt/dst"]).await;
    s.push_blob(&token, "mnt/src", b"exists").await;
    let missing = sha256_digest(b"not in mnt/src");
    let resp = s
        .req(Method::POST, &format!("/v2/mnt/dst/blobs/uploads/?mount={missing}&from=mnt/src"), Some(&token))
        .send()
        .await
        .unwrap();
    let resp = expect_status(resp, 202, "mount of an unknown blob").await;
    let location = header(&resp, "location").expect("Location");
    assert!(location.starts_with("/v2/mnt/dst/blobs/uploads/"), "Location {location}");
    assert!(header(&resp, "docker-upload-uuid").is_some());
    // The session works.
    let resp = s.finish_upload(&token, &location, &missing, b"not in mnt/src").await;
    expect_status(resp, 201, "complete the fallback session").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_without_pull_on_source_is_challenged_for_both() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["mnt/src", "mnt/dst"]).await;
    let digest = s.push_blob(&token, "mnt/src", b"mount me").await;
    let only_dst = s.admin_token(&[&scope("mnt/dst", "pull,push")]).await;
    let resp = s
        .req(Method::POST, &format!("/v2/mnt/dst/blobs/uploads/?mount={digest}&from=mnt/src"), Some(&only_dst))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "mount with no entry for `from`");
    let c = challenge(&resp);
    assert_eq!(c.get("error").map(String::as_str), Some("insufficient_scope"), "{c:?}");
    let scopes: Vec<&str> = c.get("scope").map(|s| s.split(' ').collect()).unwrap_or_default();
    assert!(scopes.contains(&"repository:mnt/dst:pull,push"), "challenge scopes {scopes:?}");
    assert!(scopes.contains(&"repository:mnt/src:pull"), "challenge scopes {scopes:?}");
    let resp = s.get(&format!("/v2/mnt/dst/blobs/{digest}"), Some(&token)).await;
    assert_eq!(resp.status(), 404, "nothing was mounted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_without_from() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["mnt/src", "mnt/dst"]).await;
    let digest = s.push_blob(&token, "mnt/src", b"mount me anywhere").await;
    let resp =
        s.req(Method::POST, &format!("/v2/mnt/dst/blobs/uploads/?mount={digest}"), Some(&token)).send().await.unwrap();
    let resp = expect_status(resp, 201, "mount without from (admin may pull mnt/src)").await;
    assert_eq!(header(&resp, "location"), Some(format!("/v2/mnt/dst/blobs/{digest}")));
    let resp = s.get(&format!("/v2/mnt/dst/blobs/{digest}"), Some(&token)).await;
    expect_status(resp, 200, "GET blob mounted without from").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha512_blob() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["lib/app"]).await;
    let data = test_bytes(777, 7);
    let digest = sha512_digest(&data);
    let resp = s
        .req(Method::POST, &format!("/v2/lib/app/blobs/uploads/?digest={digest}"), Some(&token))
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    let resp = expect_status(resp, 201, "sha512 monolithic upload").await;
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
    assert_eq!(header(&resp, "location"), Some(format!("/v2/lib/app/blobs/{digest}")));
    let resp = s.get(&format!("/v2/lib/app/blobs/{digest}"), Some(&token)).await;
    let resp = expect_status(resp, 200, "GET sha512 blob").await;
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
    assert_eq!(s.blob_on_disk(&digest).as_deref(), Some(data.as_slice()), "blobs/sha512/… on disk");
}
