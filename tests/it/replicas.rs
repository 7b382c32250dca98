//! Stateless replicas (DESIGN §9): two berth servers sharing one PostgreSQL database and
//! one S3 bucket, each with its own, separate data directory (no shared filesystem), serve
//! any request: the chunks of one upload alternate between them, a token from one works on
//! the other, and what one stored the other serves.

use crate::common::{
    services::{Moto, Postgres, use_moto},
    *,
};

const MIB: usize = 1 << 20;

async fn replica(db_url: &str, s3: &str) -> TestServer {
    let (db_url, s3) = (db_url.to_owned(), s3.to_owned());
    TestServer::start_with(move |c| {
        c.database.url = Some(db_url.clone());
        use_moto(c, &s3);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgresql_and_s3() {
    let pg = Postgres::start();
    let moto = Moto::start().await;
    let url = pg.database("replicas_s3").await;
    let a = replica(&url, &moto.endpoint).await;
    let b = replica(&url, &moto.endpoint).await;
    assert_ne!(a.data_dir(), b.data_dir(), "no shared filesystem");

    let token = a.admin_token(&[&scope("fleet/app", "pull,push")]).await;
    // 22 MiB in 6 MiB chunks, alternating replicas: parts and tails cross replicas.
    let data = test_bytes(22 * MIB + 99, 21);
    let digest = sha256_digest(&data);
    let loc = a.start_upload(&token, "fleet/app").await;
    let chunks: Vec<&[u8]> = data.chunks(6 * MIB).collect();
    let mut offset = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let s = if i % 2 == 0 { &b } else { &a };
        let status = expect_status(s.get(&loc, Some(&token)).await, 204, "status").await;
        let want = if offset == 0 { "0-0".to_owned() } else { format!("0-{}", offset - 1) };
        assert_eq!(header(&status, "range"), Some(want), "chunk {i}: both replicas agree on the offset");
        expect_status(s.patch_chunk(&token, &loc, offset, chunk).await, 202, "PATCH").await;
        offset += chunk.len();
    }
    expect_status(b.finish_upload(&token, &loc, &digest, b"").await, 201, "finish on B").await;

    let config = b"{\"replicas\":true}".to_vec();
    a.push_blob(&token, "fleet/app", &config).await;
    let manifest = oci_manifest(&config, &[&data]);
    b.push_manifest(&token, "fleet/app", "v1", OCI_MANIFEST, &manifest).await;
    for s in [&a, &b] {
        let resp = expect_status(s.get("/v2/fleet/app/manifests/v1", Some(&token)).await, 200, "manifest").await;
        assert_eq!(resp.bytes().await.unwrap().as_ref(), manifest.as_slice());
        let resp =
            expect_status(s.get(&format!("/v2/fleet/app/blobs/{digest}"), Some(&token)).await, 200, "blob").await;
        assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
    }
    // Nothing of the blobs landed on either replica's local disk.
    assert!(a.blob_files().is_empty() && b.blob_files().is_empty());
}
