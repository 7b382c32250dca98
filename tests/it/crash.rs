//! Crash safety (DESIGN §6, STYLE "verify, then publish"): the real `berth serve` binary is
//! killed with SIGKILL in the middle of a request, started again on the same data dir, and
//! the upload must resume from the stored offset and nothing unverified may be visible.
//!
//! Many concurrent pushers killed at random points: `tests/kills.rs`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::process::Proc;
use crate::common::*;
use bytes::Bytes;
use reqwest::Method;
use tokio::sync::mpsc;

/// Total size of the files under `dir`.
fn du(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() { du(&p) } else { e.metadata().map(|m| m.len()).unwrap_or(0) }
        })
        .sum()
}

/// A request body fed through a channel, so the test decides when bytes go out.
fn channel_body() -> (mpsc::Sender<Bytes>, reqwest::Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, std::io::Error>(b), rx))
    });
    (tx, reqwest::Body::wrap_stream(stream))
}

/// Waits (bounded) until the upload's files hold at least `bytes` bytes.
async fn wait_for_upload_bytes(dir: &Path, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while du(dir) < bytes && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("upload bytes on disk before the kill: {} (waited for {bytes})", du(dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_resumes_after_sigkill_mid_patch() {
    let dir = tempfile::tempdir().unwrap();
    let data = test_bytes(4 * 1024 * 1024, 51);
    let digest = sha256_digest(&data);
    let first = 1024 * 1024;

    let p = Proc::start(dir.path()).await;
    let token = p.token(&[&scope("crash/app", "pull,push")]).await;
    let resp = p.req(Method::POST, "/v2/crash/app/blobs/uploads/", &token).send().await.unwrap();
    let location = header(&expect_status(resp, 202, "POST").await, "location").unwrap();
    let uuid = location.rsplit('/').next().unwrap().to_string();
    let resp = p
        .req(Method::PATCH, &location, &token)
        .header("content-range", format!("0-{}", first - 1))
        .body(data[..first].to_vec())
        .send()
        .await
        .unwrap();
    expect_status(resp, 202, "first PATCH").await;

    // A streamed PATCH that is cut by a crash after 1.5 MiB went out: more than the server
    // may buffer, so some of it reaches the upload file without being acknowledged.
    let (tx, body) = channel_body();
    let request = tokio::spawn(p.req(Method::PATCH, &location, &token).body(body).send());
    for piece in data[first..first + 1536 * 1024].chunks(64 * 1024) {
        tx.send(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    wait_for_upload_bytes(&dir.path().join("uploads").join(&uuid), (first + 1024 * 1024) as u64).await;
    p.kill().await;
    assert!(request.await.unwrap().is_err(), "the PATCH cut by the crash cannot have succeeded");
    drop(tx);

    let p = Proc::start(dir.path()).await;
    let offset = p.offset(&location, &token).await;
    assert!(
        (first..=first + 1536 * 1024).contains(&offset),
        "stored offset {offset} after the crash (acknowledged: {first})"
    );
    let resp = p
        .req(Method::PATCH, &location, &token)
        .header("content-range", format!("{}-{}", offset, data.len() - 1))
        .body(data[offset..].to_vec())
        .send()
        .await
        .unwrap();
    let resp = expect_status(resp, 202, "resume after the crash").await;
    assert_eq!(header(&resp, "range"), Some(format!("0-{}", data.len() - 1)));
    let resp = p.req(Method::PUT, &format!("{location}?digest={digest}"), &token).send().await.unwrap();
    expect_status(resp, 201, "complete after the crash").await;
    let resp = p.req(Method::GET, &format!("/v2/crash/app/blobs/{digest}"), &token).send().await.unwrap();
    let body = expect_status(resp, 200, "GET").await.bytes().await.unwrap();
    assert!(body.as_ref() == data.as_slice(), "blob differs after crash and resume");
    p.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_during_final_put_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = test_bytes(2 * 1024 * 1024, 52);
    let digest = sha256_digest(&data);

    let p = Proc::start(dir.path()).await;
    let token = p.token(&[&scope("crash/app", "pull,push")]).await;
    let resp = p.req(Method::POST, "/v2/crash/app/blobs/uploads/", &token).send().await.unwrap();
    let location = header(&expect_status(resp, 202, "POST").await, "location").unwrap();
    let uuid = location.rsplit('/').next().unwrap().to_string();

    let (tx, body) = channel_body();
    let request = tokio::spawn(p.req(Method::PUT, &format!("{location}?digest={digest}"), &token).body(body).send());
    for piece in data[..1536 * 1024].chunks(64 * 1024) {
        tx.send(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    wait_for_upload_bytes(&dir.path().join("uploads").join(&uuid), 1024 * 1024).await;
    p.kill().await;
    assert!(request.await.unwrap().is_err());
    drop(tx);

    let p = Proc::start(dir.path()).await;
    let hex = digest.strip_prefix("sha256:").unwrap();
    let stored = dir.path().join("blobs/sha256").join(&hex[..2]).join(hex);
    assert!(!stored.exists(), "an unverified blob was published at {stored:?}");
    let resp = p.req(Method::GET, &format!("/v2/crash/app/blobs/{digest}"), &token).send().await.unwrap();
    assert_eq!(resp.status(), 404, "blob visible after a crash during its PUT");

    // Pushing it again works.
    let resp = p
        .req(Method::POST, &format!("/v2/crash/app/blobs/uploads/?digest={digest}"), &token)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    expect_status(resp, 201, "push after the crash").await;
    let resp = p.req(Method::GET, &format!("/v2/crash/app/blobs/{digest}"), &token).send().await.unwrap();
    assert!(expect_status(resp, 200, "GET").await.bytes().await.unwrap().as_ref() == data.as_slice());
    p.kill().await;
}
