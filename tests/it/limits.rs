//! An upload whose body stalls: the body idle timeout ends the request, releases the
//! session and keeps what arrived, so the client resumes from there; and a graceful
//! shutdown (SIGTERM to the real binary) cuts a stalled upload at the drain deadline, exits,
//! and after a restart the upload resumes and completes.

use std::time::{Duration, Instant};

use crate::common::{TestServer, header, sha256_digest, test_bytes};
use crate::opsutil::{ADMIN_PASSWORD, Berth, partial_request, read_head};
use reqwest::{Client, Method};

/// A PATCH of `total` bytes of which only `sent` are written; the connection stays open.
async fn stalled_patch(addr: &str, location: &str, token: &str, total: usize, sent: &[u8]) -> tokio::net::TcpStream {
    let head = vec![
        format!("PATCH {location} HTTP/1.1"),
        format!("Host: {addr}"),
        format!("Authorization: Bearer {token}"),
        "Content-Type: application/octet-stream".into(),
        format!("Content-Length: {total}"),
    ];
    partial_request(addr, &head, sent).await
}

#[tokio::test]
async fn stalled_upload_times_out_and_resumes() {
    let s = TestServer::start_with(|c| c.limits.body_idle_secs = 1).await;
    let token = s.repo_token(&["idle/app"]).await;
    let blob = test_bytes(2 << 20, 3);
    let (first, rest) = blob.split_at(1 << 20);
    let location = s.start_upload(&token, "idle/app").await;
    let started = Instant::now();
    let mut conn = stalled_patch(&s.addr().to_string(), &location, &token, blob.len(), first).await;
    let (status, head) = read_head(&mut conn, Duration::from_secs(10)).await;
    assert_eq!(status, 400, "{head}");
    assert!(started.elapsed() >= Duration::from_secs(1), "answered before the idle timeout");
    drop(conn);
    // The session is free again and holds what arrived.
    let r = s.get(&location, Some(&token)).await;
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "range"), Some(format!("0-{}", first.len() - 1)));
    let r = s.patch_chunk(&token, &location, first.len(), rest).await;
    assert_eq!(r.status(), 202);
    let digest = sha256_digest(&blob);
    assert_eq!(s.finish_upload(&token, &location, &digest, &[]).await.status(), 201);
    let r = s.get(&format!("/v2/idle/app/blobs/{digest}"), Some(&token)).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), blob.as_slice());
}

async fn admin_token(c: &Client, base: &str, repo: &str) -> String {
    let r = c
        .get(format!("{base}/token"))
        .query(&[("service", "berth"), ("scope", &format!("repository:{repo}:pull,push"))])
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    r.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn upload_survives_a_graceful_restart() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("BERTH_LIMITS__SHUTDOWN_DRAIN_SECS", "1"), ("BERTH_LIMITS__BODY_IDLE_SECS", "120")];
    let c = Client::builder().no_proxy().build().unwrap();

    // Shutting down with nothing in flight (an idle keep-alive connection) is immediate.
    let b = Berth::start(dir.path(), &env).await;
    assert_eq!(c.get(format!("{}/v2/", b.base)).send().await.unwrap().status(), 401);
    let took = b.terminate(Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(1), "idle shutdown took {took:?}");

    let b = Berth::start(dir.path(), &env).await;
    let token = admin_token(&c, &b.base, "drain/app").await;
    let r = c.post(format!("{}/v2/drain/app/blobs/uploads/", b.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let blob = test_bytes(3 << 20, 11);
    let (first, rest) = blob.split_at(2 << 20);
    let mut conn = stalled_patch(&b.addr(), &location, &token, blob.len(), first).await;
    // Let the server take in what was sent before the shutdown starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let took = b.terminate(Duration::from_secs(20)).await;
    assert!(took >= Duration::from_secs(1), "exited before the drain deadline ({took:?})");
    // The stalled client was answered (its body was cut) or its connection closed.
    let mut buf = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read(&mut conn, &mut buf)).await;
    drop(conn);
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(log.contains("drain deadline passed"), "{log}");

    let b = Berth::start(dir.path(), &env).await;
    let url = format!("{}{location}", b.base);
    let r = c.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 204, "upload status after restart");
    assert_eq!(r.headers()["range"].to_str().unwrap(), format!("0-{}", first.len() - 1));
    let r = c
        .request(Method::PATCH, &url)
        .bearer_auth(&token)
        .header("content-range", format!("{}-{}", first.len(), blob.len() - 1))
        .body(rest.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let digest = sha256_digest(&blob);
    let r = c.put(format!("{url}?digest={digest}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 201);
    b.terminate(Duration::from_secs(10)).await;
}
