//! S3 operations (issue 13 §7) against `moto_server`: credentials from the environment of a
//! spawned `berth serve` (config keys win), blob GETs redirected to presigned URLs,
//! server-side encryption on every object written, the bucket check at start as `/readyz`
//! reports it, and GC aborting multipart uploads no session knows.

use crate::common::process::Proc;
use crate::common::services::{Moto, use_moto};
use crate::common::*;
use reqwest::{Client, Method, StatusCode};

const MIB: usize = 1 << 20;

fn plain() -> Client {
    Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The keys of the bucket's multipart uploads under `prefix` (moto takes unsigned calls).
async fn multipart_keys(moto: &Moto, prefix: &str) -> Vec<String> {
    let body = plain().get(format!("{}/berth?uploads&prefix={prefix}", moto.endpoint)).send().await.unwrap();
    let body = body.text().await.unwrap();
    body.split("<Key>").skip(1).filter_map(|s| s.split("</Key>").next()).map(str::to_owned).collect()
}

/// Starts a multipart upload at `key` behind berth's back (as a kill between
/// `CreateMultipartUpload` and the session's row leaves one).
async fn orphan_multipart(moto: &Moto, key: &str) {
    let resp = plain().post(format!("{}/berth/{key}?uploads", moto.endpoint)).send().await.unwrap();
    assert!(resp.status().is_success(), "create multipart: {}", resp.status());
}

/// A query parameter of a URL, still percent-encoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

/// Pushes `bytes` as one monolithic POST through a spawned server; returns the digest.
async fn proc_push(p: &Proc, token: &str, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256_digest(bytes);
    let resp = p
        .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={digest}"), token)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    expect_status(resp, 201, "monolithic push").await;
    digest
}

/// `berth serve` on moto with S3 settings only in `BERTH_*` and `extra` in its environment.
async fn serve_on_moto(dir: &std::path::Path, moto: &Moto, prefix: &str, extra: &[(&str, &str)]) -> Proc {
    let mut env = vec![
        ("BERTH_STORAGE__KIND", "s3"),
        ("BERTH_STORAGE__S3__BUCKET", "berth"),
        ("BERTH_STORAGE__S3__PREFIX", prefix),
        ("BERTH_STORAGE__S3__ENDPOINT", moto.endpoint.as_str()),
        ("BERTH_STORAGE__S3__ALLOW_HTTP", "true"),
        ("BERTH_STORAGE__S3__REDIRECT", "true"),
    ];
    env.extend_from_slice(extra);
    Proc::start_with(dir, &env).await
}

/// The presigned URL a redirected blob GET answers with.
async fn redirect_of(p: &Proc, token: &str, repo: &str, digest: &str) -> String {
    let client = plain();
    let resp = client.get(format!("{}/v2/{repo}/blobs/{digest}", p.base)).bearer_auth(token).send().await.unwrap();
    let resp = expect_status(resp, 307, "redirected GET").await;
    header(&resp, "location").expect("Location")
}

/// Credentials only in the spawned server's `AWS_*` environment (never in the test
/// process's, which other tests share) sign its requests, session token included; keys in
/// the configuration win over them.
#[tokio::test]
async fn credentials_come_from_the_environment_and_config_keys_win() {
    let moto = Moto::start().await;
    let data = test_bytes(100_000, 7);
    let aws_env = [
        ("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT"),
        ("AWS_SECRET_ACCESS_KEY", "environment-secret"),
        ("AWS_SESSION_TOKEN", "environment-session-token"),
    ];

    let dir = tempfile::tempdir().unwrap();
    let p = serve_on_moto(dir.path(), &moto, "envcreds", &aws_env).await;
    let token = p.token(&[&scope("env/app", "pull,push")]).await;
    let digest = proc_push(&p, &token, "env/app", &data).await;
    assert!(!moto.keys("envcreds/uploads/").await.is_empty(), "the blob went to the bucket");
    let url = redirect_of(&p, &token, "env/app", &digest).await;
    let credential = query_param(&url, "X-Amz-Credential").expect("a SigV4 presigned URL");
    assert!(credential.starts_with("AKIAENVIRONMENT%2F"), "signed with the environment's key: {url}");
    assert_eq!(query_param(&url, "X-Amz-Security-Token").as_deref(), Some("environment-session-token"), "{url}");
    let fetched = plain().get(&url).send().await.unwrap();
    assert_eq!(expect_status(fetched, 200, "presigned GET").await.bytes().await.unwrap().as_ref(), data.as_slice());
    p.kill().await;

    // The same environment, with keys in the configuration: those sign, without the token.
    let dir = tempfile::tempdir().unwrap();
    let mut env = aws_env.to_vec();
    env.extend([
        ("BERTH_STORAGE__S3__ACCESS_KEY_ID", "AKIACONFIGURED"),
        ("BERTH_STORAGE__S3__SECRET_ACCESS_KEY", "configured-secret"),
    ]);
    let p = serve_on_moto(dir.path(), &moto, "cfgcreds", &env).await;
    let token = p.token(&[&scope("cfg/app", "pull,push")]).await;
    let digest = proc_push(&p, &token, "cfg/app", &data).await;
    let url = redirect_of(&p, &token, "cfg/app", &digest).await;
    let credential = query_param(&url, "X-Amz-Credential").expect("a SigV4 presigned URL");
    assert!(credential.starts_with("AKIACONFIGURED%2F"), "signed with the configured key: {url}");
    assert_eq!(query_param(&url, "X-Amz-Security-Token"), None, "no session token beside static keys: {url}");
    p.kill().await;
}

/// `storage.s3.redirect`: a GET answers 307 to a presigned URL of the object, after the
/// same authorization and lookup as a streamed one; HEAD, and a manifest read as a blob,
/// are still answered directly.
#[tokio::test]
async fn blob_gets_redirect_to_a_presigned_url() {
    let moto = Moto::start().await;
    let endpoint = moto.endpoint.clone();
    let s = TestServer::start_with(move |c| {
        use_moto(c, &endpoint);
        c.storage.s3.redirect = true;
        c.storage.s3.redirect_ttl_secs = 120;
    })
    .await;
    let token = s.admin_token(&[&scope("redir/app", "pull,push")]).await;
    // Larger than a part, in chunks: a multipart object with a tail along the way.
    let data = test_bytes(17 * MIB + 12_345, 3);
    let loc = s.start_upload(&token, "redir/app").await;
    expect_status(s.patch_chunk(&token, &loc, 0, &data[..6 * MIB]).await, 202, "chunk").await;
    let digest = sha256_digest(&data);
    expect_status(s.finish_upload(&token, &loc, &digest, &data[6 * MIB..]).await, 201, "finish").await;

    let resp = expect_status(s.get(&format!("/v2/redir/app/blobs/{digest}"), Some(&token)).await, 307, "GET").await;
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
    let url = header(&resp, "location").expect("Location");
    let moto_host = moto.endpoint.trim_start_matches("http://");
    assert!(url.starts_with(&format!("http://{moto_host}/berth/reg/uploads/")), "Location on the bucket: {url}");
    assert_eq!(query_param(&url, "X-Amz-Expires").as_deref(), Some("120"), "{url}");
    assert!(resp.bytes().await.unwrap().is_empty());
    let fetched = plain().get(&url).send().await.unwrap();
    assert_eq!(expect_status(fetched, 200, "presigned GET").await.bytes().await.unwrap().as_ref(), data.as_slice());
    // A range goes along with the redirect: the client sends it to the bucket.
    let ranged =
        s.req(Method::GET, &format!("/v2/redir/app/blobs/{digest}"), Some(&token)).header("range", "bytes=5-9");
    expect_status(ranged.send().await.unwrap(), 307, "ranged GET").await;
    let part = plain().get(&url).header("range", "bytes=5-9").send().await.unwrap();
    assert_eq!(expect_status(part, 206, "ranged presigned GET").await.bytes().await.unwrap().as_ref(), &data[5..10]);

    // HEAD answers itself.
    let head = expect_status(s.head(&format!("/v2/redir/app/blobs/{digest}"), Some(&token)).await, 200, "HEAD").await;
    assert_eq!(header(&head, "content-length"), Some(data.len().to_string()));
    assert_eq!(header(&head, "location"), None);
    // Nobody learns a URL without pull: anonymous gets the challenge, an unknown blob 404.
    let anon = s.get(&format!("/v2/redir/app/blobs/{digest}"), None).await;
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&anon, "location"), None);
    let other = sha256_digest(b"never pushed");
    expect_error(s.get(&format!("/v2/redir/app/blobs/{other}"), Some(&token)).await, 404, "BLOB_UNKNOWN", "unknown")
        .await;
    // A manifest read as a blob lives in the database: streamed.
    let image = s.push_image(&token, "redir/app", "v1", "redirect").await;
    let manifest = sha256_digest(&image.manifest);
    let resp =
        expect_status(s.get(&format!("/v2/redir/app/blobs/{manifest}"), Some(&token)).await, 200, "manifest").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), image.manifest.as_slice());
}

/// The headers of a HEAD of the object at `key` (moto refuses anonymous object reads, and
/// takes any signature).
async fn object_head(moto: &Moto, key: &str) -> reqwest::header::HeaderMap {
    let auth = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";
    let head =
        plain().head(format!("{}/berth/{key}", moto.endpoint)).header("authorization", auth).send().await.unwrap();
    assert_eq!(head.status(), 200, "HEAD {key}");
    head.headers().clone()
}

fn assert_sse(headers: &reqwest::header::HeaderMap, sse: &str, kms: Option<&str>, key: &str) {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(get("x-amz-server-side-encryption").as_deref(), Some(sse), "encryption of {key}: {headers:?}");
    if let Some(kms) = kms {
        let id = get("x-amz-server-side-encryption-aws-kms-key-id").unwrap_or_default();
        assert!(id.ends_with(kms), "KMS key of {key}: {id:?}");
    }
}

/// `storage.s3.sse`: the objects berth writes — a tail, and the blob (a completed multipart
/// upload) — carry the encryption; moto reports it on a HEAD.
#[tokio::test]
async fn server_side_encryption_on_every_write() {
    let moto = Moto::start().await;
    for (sse, kms) in [("AES256", None), ("aws:kms", Some("alias/berth-test"))] {
        let endpoint = moto.endpoint.clone();
        let prefix = if kms.is_some() { "kms" } else { "aes" };
        let s = TestServer::start_with(move |c| {
            use_moto(c, &endpoint);
            c.storage.s3.prefix = prefix.into();
            c.storage.s3.sse = Some(sse.into());
            c.storage.s3.sse_kms_key_id = kms.map(str::to_owned);
        })
        .await;
        let token = s.admin_token(&[&scope("sse/app", "pull,push")]).await;
        // A chunk under 5 MiB stays behind as a tail object until the upload completes.
        let data = test_bytes(MIB + 17, 11);
        let loc = s.start_upload(&token, "sse/app").await;
        expect_status(s.patch_chunk(&token, &loc, 0, &data[..MIB]).await, 202, "chunk").await;
        let tails: Vec<String> =
            moto.keys(&format!("{prefix}/uploads/")).await.into_iter().filter(|k| k.contains(".tails/")).collect();
        assert_eq!(tails.len(), 1, "one tail object: {tails:?}");
        let tail_head = object_head(&moto, &tails[0]).await;
        let digest = sha256_digest(&data);
        expect_status(s.finish_upload(&token, &loc, &digest, &data[MIB..]).await, 201, "finish").await;
        let objects = moto.keys(&format!("{prefix}/")).await;
        assert_eq!(objects.len(), 1, "the blob only: {objects:?}");
        assert_sse(&tail_head, sse, kms, &tails[0]);
        assert_sse(&object_head(&moto, &objects[0]).await, sse, kms, &objects[0]);
        let got = s.get(&format!("/v2/sse/app/blobs/{digest}"), Some(&token)).await;
        assert_eq!(expect_status(got, 200, "GET").await.bytes().await.unwrap().as_ref(), data.as_slice());
    }
}

/// `storage.s3.check_on_start`: a bucket that is missing makes `/readyz` answer 503 naming
/// the storage, until the bucket exists; a good one passes and leaves no probe behind.
#[tokio::test]
async fn bucket_check_at_start_is_reported_by_readyz() {
    let moto = Moto::start().await;
    let endpoint = moto.endpoint.clone();
    let s = TestServer::start_with(move |c| {
        use_moto(c, &endpoint);
        c.storage.s3.bucket = "later".into();
    })
    .await;
    let resp = s.get("/readyz", None).await;
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["storage"], "failed", "{body}");
    assert_eq!(body["database"], "ok", "{body}");
    // The bucket appears: the next readiness check writes the probe and passes.
    let created = plain().put(format!("{}/later", moto.endpoint)).send().await.unwrap();
    assert!(created.status().is_success());
    let resp = expect_status(s.get("/readyz", None).await, 200, "ready once the bucket exists").await;
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["storage"], "ok", "{body}");
    let listing = plain().get(format!("{}/later?list-type=2", moto.endpoint)).send().await.unwrap();
    assert!(!listing.text().await.unwrap().contains("<Key>"), "the probe object was deleted");

    // Without the check, a missing bucket is not written to at start.
    let endpoint = moto.endpoint.clone();
    let s = TestServer::start_with(move |c| {
        use_moto(c, &endpoint);
        c.storage.s3.bucket = "never".into();
        c.storage.s3.check_on_start = false;
    })
    .await;
    let _ = s.get("/readyz", None).await;
    let resp = plain().head(format!("{}/never", moto.endpoint)).send().await.unwrap();
    assert_eq!(resp.status(), 404, "nothing created the bucket");
}

/// GC aborts (and fsck reports) multipart uploads under berth's prefix that no upload
/// session knows (a kill between creating one and recording it), and leaves alone the live
/// session's and those outside its prefix. (moto reports every upload as initiated in 2010, so the grace
/// period cannot be told apart here; the session check is what protects the live one.)
#[tokio::test]
async fn gc_aborts_multipart_uploads_no_session_knows() {
    let moto = Moto::start().await;
    let endpoint = moto.endpoint.clone();
    let s = TestServer::start_with(move |c| use_moto(c, &endpoint)).await;
    let token = s.admin_token(&[&scope("mp/app", "pull,push")]).await;
    let live = s.start_upload(&token, "mp/app").await;
    let data = test_bytes(6 * MIB, 5);
    expect_status(s.patch_chunk(&token, &live, 0, &data[..5 * MIB]).await, 202, "chunk").await;
    let orphan = "reg/uploads/0b6c1a52-4e0a-4a53-9a8e-0d0a1f8b7c11";
    orphan_multipart(&moto, orphan).await;
    orphan_multipart(&moto, "reg/elsewhere/0b6c1a52-4e0a-4a53-9a8e-0d0a1f8b7c12").await;
    orphan_multipart(&moto, "other/uploads/0b6c1a52-4e0a-4a53-9a8e-0d0a1f8b7c13").await;
    assert_eq!(multipart_keys(&moto, "").await.len(), 4);

    let env = [
        ("BERTH_STORAGE__KIND", "s3"),
        ("BERTH_STORAGE__S3__BUCKET", "berth"),
        ("BERTH_STORAGE__S3__PREFIX", "reg"),
        ("BERTH_STORAGE__S3__ENDPOINT", moto.endpoint.as_str()),
        ("BERTH_STORAGE__S3__ALLOW_HTTP", "true"),
        ("BERTH_STORAGE__S3__ACCESS_KEY_ID", "test"),
        ("BERTH_STORAGE__S3__SECRET_ACCESS_KEY", "test"),
        // Sessions idle for an hour expire; the live one was written just now.
        ("BERTH_GC__UPLOAD_TTL_SECS", "3600"),
    ];
    // fsck reports the orphan as a leftover (and changes nothing without --repair).
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("fsck")
        .env("BERTH_DATA_DIR", s.data_dir())
        .envs(env.iter().copied())
        .current_dir(s.data_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "fsck finds the orphan");
    let fsck: serde_json::Value = serde_json::from_slice(&out.stdout).expect("fsck prints a JSON report");
    assert_eq!(fsck["leftovers"], serde_json::json!(["uploads/0b6c1a52-4e0a-4a53-9a8e-0d0a1f8b7c11"]), "{fsck}");
    let dry = gc_with(&s, &["--dry-run"], &env).await;
    assert_eq!(dry["abandoned_sessions_removed"], 1, "a dry run counts the orphan: {dry}");
    assert_eq!(multipart_keys(&moto, "").await.len(), 4, "a dry run aborts nothing");
    let report = gc_with(&s, &[], &env).await;
    assert_eq!(report["abandoned_sessions_removed"], 1, "{report}");
    assert_eq!(report["uploads_expired"], 0, "{report}");
    let mut left = multipart_keys(&moto, "").await;
    left.sort();
    let live_key = format!("reg/uploads/{}", live.rsplit('/').next().unwrap());
    let mut expected = vec![
        "other/uploads/0b6c1a52-4e0a-4a53-9a8e-0d0a1f8b7c13".to_owned(),
        "reg/elsewhere/0b6c1a52-4e0a-4a53-9a8e-0d0a1f8b7c12".to_owned(),
        live_key,
    ];
    expected.sort();
    assert_eq!(left, expected, "only the orphan under berth's uploads went");
    // The live session still completes.
    let digest = sha256_digest(&data);
    expect_status(s.finish_upload(&token, &live, &digest, &data[5 * MIB..]).await, 201, "finish").await;
    let got = s.get(&format!("/v2/mp/app/blobs/{digest}"), Some(&token)).await;
    assert_eq!(expect_status(got, 200, "GET").await.bytes().await.unwrap().as_ref(), data.as_slice());
}
