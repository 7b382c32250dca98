//! Two writers on one upload session never interleave: while one request streams into the
//! session, another — here through a second server on the same data directory and
//! database, as a second replica on a shared filesystem would — gets 416 and writes
//! nothing, and the first completes with the right bytes.

use std::time::Duration;

use crate::common::*;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_is_refused_while_the_first_streams() {
    let a = TestServer::start().await;
    let dir = a.data_dir().to_path_buf();
    let b = TestServer::start_with(move |c| c.data_dir = dir.clone()).await;
    let token = a.admin_token(&[&scope("lock/app", "pull,push")]).await;
    let loc = a.start_upload(&token, "lock/app").await;

    // A's PATCH streams slowly: 1 MiB now, the rest after B has tried.
    let first = test_bytes(1 << 20, 31);
    let rest = test_bytes(1 << 20, 32);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let slow = tokio::spawn(a.req(Method::PATCH, &loc, Some(&token)).body(body).send());
    tx.send(Ok(Bytes::from(first.clone()))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let intruder = test_bytes(5000, 33);
    let resp = b.patch_chunk(&token, &loc, 0, &intruder).await;
    assert_eq!(resp.status(), 416, "the session is being written by another request");
    let resp = b.req(Method::PATCH, &loc, Some(&token)).body(intruder.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 416, "also without Content-Range");

    tx.send(Ok(Bytes::from(rest.clone()))).await.unwrap();
    drop(tx);
    let resp = slow.await.unwrap().unwrap();
    let resp = expect_status(resp, 202, "the streaming PATCH").await;
    assert_eq!(header(&resp, "range").as_deref(), Some("0-2097151"));

    let mut all = first;
    all.extend_from_slice(&rest);
    let digest = sha256_digest(&all);
    expect_status(b.finish_upload(&token, &loc, &digest, b"").await, 201, "finish on B").await;
    let resp = expect_status(a.get(&format!("/v2/lock/app/blobs/{digest}"), Some(&token)).await, 200, "GET").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), all.as_slice(), "no intruding bytes");
}

/// A stream over a channel's items (no extra dependency for `ReceiverStream`).
fn tokio_stream_from<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed()
}
