//! Durable upload sessions and state across restarts (DESIGN §4, §6): an upload begun before
//! a restart resumes after it at the stored offset, an interrupted PATCH resumes from what the
//! server reports, and tokens, manifests and tags survive a restart.

use crate::common::*;
use bytes::Bytes;
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_upload_resumes_after_restart() {
    let mut s = TestServer::start().await;
    let token = s.repo_token(&["res/app"]).await;
    let data = test_bytes(2 * 1024 * 1024 + 4321, 41);
    let digest = sha256_digest(&data);
    let half = data.len() / 2;

    let location = s.start_upload(&token, "res/app").await;
    let mut offset = 0;
    for chunk in data[..half].chunks(300_000) {
        let resp = s.patch_chunk(&token, &location, offset, chunk).await;
        expect_status(resp, 202, &format!("PATCH at {offset}")).await;
        offset += chunk.len();
    }
    let before = header(&expect_status(s.get(&location, Some(&token)).await, 204, "status").await, "range");
    assert_eq!(before, Some(format!("0-{}", half - 1)));

    s.restart().await;

    // The token minted before the restart still verifies (the key lives in the database).
    let resp = s.get(&location, Some(&token)).await;
    let resp = expect_status(resp, 204, "upload status after restart").await;
    assert_eq!(header(&resp, "range"), before, "same Range after restart");
    assert_eq!(header(&resp, "location").as_deref(), Some(location.as_str()));

    // A chunk at the wrong offset is still refused.
    let resp = s.patch_chunk(&token, &location, half + 10, &data[half + 10..half + 20]).await;
    assert_eq!(resp.status(), 416, "out-of-order chunk after restart");
    assert_eq!(header(&resp, "range"), before);

    let resp = s.patch_chunk(&token, &location, half, &data[half..half + 100_000]).await;
    let resp = expect_status(resp, 202, "PATCH after restart").await;
    assert_eq!(header(&resp, "range"), Some(format!("0-{}", half + 100_000 - 1)));
    let resp = s.finish_upload(&token, &location, &digest, &data[half + 100_000..]).await;
    let resp = expect_status(resp, 201, "complete after restart").await;
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));

    let resp = s.get(&format!("/v2/res/app/blobs/{digest}"), Some(&token)).await;
    let body = expect_status(resp, 200, "GET resumed blob").await.bytes().await.unwrap();
    assert_eq!(body.len(), data.len());
    assert!(body.as_ref() == data.as_slice(), "resumed blob bytes differ");
    assert_eq!(s.blob_on_disk(&digest).map(|b| sha256_digest(&b)), Some(digest.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_upload_resumes_after_restart() {
    // docker-style: a streamed PATCH, a restart, then another streamed PATCH and the PUT.
    let mut s = TestServer::start().await;
    let token = s.repo_token(&["res/app"]).await;
    let data = test_bytes(1_500_000, 42);
    let digest = sha256_digest(&data);
    let location = s.start_upload(&token, "res/app").await;
    let stream_patch = |part: Vec<u8>| {
        let pieces: Vec<Result<Bytes, std::io::Error>> =
            part.chunks(65_536).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        reqwest::Body::wrap_stream(futures_util::stream::iter(pieces))
    };
    let resp = s
        .req(Method::PATCH, &location, Some(&token))
        .body(stream_patch(data[..700_000].to_vec()))
        .send()
        .await
        .unwrap();
    expect_status(resp, 202, "first streamed PATCH").await;

    s.restart().await;

    let resp = s
        .req(Method::PATCH, &location, Some(&token))
        .body(stream_patch(data[700_000..].to_vec()))
        .send()
        .await
        .unwrap();
    let resp = expect_status(resp, 202, "second streamed PATCH after restart").await;
    assert_eq!(header(&resp, "range"), Some(format!("0-{}", data.len() - 1)));
    let resp = s.finish_upload(&token, &location, &digest, b"").await;
    expect_status(resp, 201, "PUT after restart").await;
    let resp = s.get(&format!("/v2/res/app/blobs/{digest}"), Some(&token)).await;
    assert!(expect_status(resp, 200, "GET").await.bytes().await.unwrap().as_ref() == data.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_patch_resumes_from_reported_offset() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["res/app"]).await;
    let data = test_bytes(1_000_000, 43);
    let digest = sha256_digest(&data);
    let location = s.start_upload(&token, "res/app").await;
    expect_status(s.patch_chunk(&token, &location, 0, &data[..200_000]).await, 202, "PATCH").await;

    // A streamed PATCH whose body fails half way: the connection is cut mid-request.
    let mut pieces: Vec<Result<Bytes, std::io::Error>> =
        data[200_000..600_000].chunks(50_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    pieces.insert(4, Err(std::io::Error::other("client gave up")));
    let result = s
        .req(Method::PATCH, &location, Some(&token))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(pieces)))
        .send()
        .await;
    assert!(result.is_err(), "the interrupted PATCH should fail on the client side");

    // Resume as a client would: ask where the upload stands, send the rest from there. The
    // server may still be winding the broken request down, so a 416 means "ask again".
    let mut resumed = false;
    for _ in 0..100 {
        let resp = s.get(&location, Some(&token)).await;
        let resp = expect_status(resp, 204, "status after an interrupted PATCH").await;
        let range = header(&resp, "range").expect("Range");
        let end: usize = range.strip_prefix("0-").expect("Range 0-N").parse().unwrap();
        let offset = if end == 0 { 0 } else { end + 1 };
        assert!(
            (200_000..=400_000).contains(&offset),
            "stored offset {offset} must lie between the last acknowledged byte and what was sent"
        );
        let resp = s.patch_chunk(&token, &location, offset, &data[offset..]).await;
        match resp.status().as_u16() {
            202 => {
                resumed = true;
                break;
            }
            416 => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            other => panic!("resume PATCH at {offset}: {other} {}", resp.text().await.unwrap_or_default()),
        }
    }
    assert!(resumed, "could not resume the interrupted upload");
    let resp = s.finish_upload(&token, &location, &digest, b"").await;
    expect_status(resp, 201, "complete after an interrupted PATCH").await;
    let resp = s.get(&format!("/v2/res/app/blobs/{digest}"), Some(&token)).await;
    assert!(expect_status(resp, 200, "GET").await.bytes().await.unwrap().as_ref() == data.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_and_credentials_survive_restart() {
    let mut s = TestServer::start().await;
    s.create_user("dora", "user", "dora-password").await;
    let dora = s.token(Some(("dora", "dora-password")), &[&scope("dora/app", "pull,push")]).await;
    let img = s.push_image(&dora, "dora/app", "v1", "persist").await;
    let refresh = {
        let resp = s
            .client()
            .get(s.url("/token"))
            .query(&[("service", "berth"), ("offline_token", "true"), ("client_id", "t")])
            .basic_auth("dora", Some("dora-password"))
            .send()
            .await
            .unwrap();
        let json: serde_json::Value = expect_status(resp, 200, "offline token").await.json().await.unwrap();
        json["refresh_token"].as_str().map(str::to_string)
    };

    s.restart().await;

    // The initial admin is not recreated or reset; the CLI-made user still logs in.
    let resp = s.token_response(Some((ADMIN_USER, ADMIN_PASSWORD)), &[]).await;
    expect_status(resp, 200, "admin after restart").await;
    let resp = s.get("/v2/dora/app/manifests/v1", Some(&dora)).await;
    let body = expect_status(resp, 200, "pre-restart token after restart").await.bytes().await.unwrap();
    assert!(body.as_ref() == img.manifest.as_slice());
    let fresh = s.token(Some(("dora", "dora-password")), &[&scope("dora/app", "pull,push")]).await;
    let mut a = granted(&fresh, "dora/app").expect("entry");
    a.sort();
    assert_eq!(a, ["pull", "push"], "dora still owns her collection");
    let resp = s.get("/v2/dora/app/tags/list", Some(&fresh)).await;
    let json: serde_json::Value = expect_status(resp, 200, "tags").await.json().await.unwrap();
    assert_eq!(json["tags"], serde_json::json!(["v1"]));
    let layer = sha256_digest(&img.layers[0]);
    let resp = s.get(&format!("/v2/dora/app/blobs/{layer}"), Some(&fresh)).await;
    expect_status(resp, 200, "blob after restart").await;

    let refresh = refresh.expect("refresh_token with offline_token=true");
    let resp = s
        .client()
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("service", "berth"),
            ("client_id", "t"),
            ("scope", "repository:dora/app:pull"),
        ])
        .send()
        .await
        .unwrap();
    expect_status(resp, 200, "refresh token after restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha512_session_resumes_after_restart() {
    let mut s = TestServer::start().await;
    let token = s.repo_token(&["res/app"]).await;
    let data = test_bytes(800_000, 44);
    let digest = sha512_digest(&data);
    let resp =
        s.req(Method::POST, "/v2/res/app/blobs/uploads/?digest-algorithm=sha512", Some(&token)).send().await.unwrap();
    let location = header(&expect_status(resp, 202, "POST sha512 session").await, "location").unwrap();
    expect_status(s.patch_chunk(&token, &location, 0, &data[..300_000]).await, 202, "PATCH").await;
    s.restart().await;
    let resp = s.get(&location, Some(&token)).await;
    assert_eq!(header(&expect_status(resp, 204, "status").await, "range").as_deref(), Some("0-299999"));
    expect_status(s.patch_chunk(&token, &location, 300_000, &data[300_000..]).await, 202, "PATCH").await;
    let resp = s.finish_upload(&token, &location, &digest, b"").await;
    let resp = expect_status(resp, 201, "complete sha512 session after restart").await;
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
    let resp = s.get(&format!("/v2/res/app/blobs/{digest}"), Some(&token)).await;
    assert!(expect_status(resp, 200, "GET").await.bytes().await.unwrap().as_ref() == data.as_slice());
}
