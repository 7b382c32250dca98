//! The stricter wire (issue 8, DESIGN §4–§5), tried as a hostile client would: no path is
//! normalised into another name, a tag that cannot exist is unknown to a read, a malformed
//! mount `from` never mounts, absurdly nested manifests are refused, and an upload's status
//! and cancel take the access clients ask for while the session stays its opener's. Each
//! refused request is also checked to have stored and changed nothing.

use crate::common::*;
use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ALICE: (&str, &str) = ("alice", "alice-password");
const BOB: (&str, &str) = ("bob", "bob-password");

/// One HTTP/1.1 request over a plain socket, the target sent byte for byte (reqwest would
/// resolve dot segments before sending). Returns the status and the error codes.
async fn raw(s: &TestServer, method: &str, target: &str, token: &str, body: &[u8]) -> (u16, Vec<String>) {
    let mut sock = tokio::net::TcpStream::connect(s.addr()).await.expect("connect");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.addr(),
        body.len()
    );
    sock.write_all(head.as_bytes()).await.expect("write head");
    sock.write_all(body).await.expect("write body");
    let mut out = Vec::new();
    sock.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let codes = serde_json::from_str::<Value>(body).map(|v| error_codes_of(&v)).unwrap_or_default();
    (status, codes)
}

fn is_name_error(status: u16, codes: &[String]) -> bool {
    let has = |c: &str| codes.iter().any(|x| x == c);
    (status == 400 && has("NAME_INVALID")) || (status == 404 && has("NAME_UNKNOWN"))
}

/// `/v2//ns/repo/…` and every other spelling of `ns/repo` (doubled, leading and trailing
/// slashes, `%2F`, dot segments, upper case) is `NAME_INVALID` or `NAME_UNKNOWN` for every
/// method, with a token that grants everything on `ns/repo`; the repository is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_path_aliases_a_repository() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["ns/repo", "ns", "repo"]).await;
    let img = s.push_image(&token, "ns/repo", "v1", "alias").await;
    let other = oci_manifest(b"{\"other\":1}", &[]);
    let d = &img.digest;
    let spellings = [
        "/v2//ns/repo",
        "/v2///ns/repo",
        "/v2/ns//repo",
        "/v2/./ns/repo",
        "/v2/ns/./repo",
        "/v2/ns/x/../repo",
        "/v2/ns%2Frepo",
        "/v2/ns%2frepo",
        "/v2/NS/repo",
        "/v2/ns/Repo",
        "/v2/%6Es/repo",
    ];
    let mut failures = Vec::new();
    for base in spellings {
        for (method, rest, body) in [
            ("GET", "/manifests/v1".to_owned(), &[][..]),
            ("HEAD", "/manifests/v1".to_owned(), &[][..]),
            ("GET", format!("/blobs/{d}"), &[][..]),
            ("GET", "/tags/list".to_owned(), &[][..]),
            ("PUT", "/manifests/v1".to_owned(), other.as_slice()),
            ("DELETE", "/manifests/v1".to_owned(), &[][..]),
            ("DELETE", format!("/manifests/{d}"), &[][..]),
            ("POST", "/blobs/uploads/".to_owned(), &[][..]),
        ] {
            let target = format!("{base}{rest}");
            let (status, codes) = raw(&s, method, &target, &token, body).await;
            // HEAD has no body to carry a code: its status must still be a name error's.
            let ok = if method == "HEAD" { status == 400 || status == 404 } else { is_name_error(status, &codes) };
            if !ok {
                failures.push(format!("{method} {target}: {status} {codes:?}"));
            }
        }
    }
    // Trailing slashes name no endpoint.
    for target in ["/v2/ns/repo/manifests/v1/", "/v2/ns/repo/tags/list/", &format!("/v2/ns/repo/blobs/{d}/")] {
        for method in ["GET", "DELETE", "PUT"] {
            let (status, codes) = raw(&s, method, target, &token, &[]).await;
            if !is_name_error(status, &codes) {
                failures.push(format!("{method} {target}: {status} {codes:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "paths aliasing ns/repo were served:\n{}", failures.join("\n"));
    // Nothing changed: the tag still names the image, and nothing else was stored.
    let resp = s.get("/v2/ns/repo/manifests/v1", Some(&token)).await;
    let resp = expect_status(resp, 200, "ns/repo:v1 after the aliasing attempts").await;
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(d.as_str()));
    let tags: Value = s.get("/v2/ns/repo/tags/list", Some(&token)).await.json().await.unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
    for repo in ["ns", "repo"] {
        let resp = s.get(&format!("/v2/{repo}/tags/list"), Some(&token)).await;
        expect_error(resp, 404, "NAME_UNKNOWN", &format!("{repo} must not exist")).await;
    }
}

/// A tag that cannot exist (the official suite's `.INVALID_MANIFEST_NAME`) is unknown to
/// GET and HEAD (404 `MANIFEST_UNKNOWN`, after the usual access check), and invalid to a PUT
/// (400 `TAG_INVALID`, nothing stored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tag_is_unknown_to_reads() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["lib/app"]).await;
    let img = s.push_image(&token, "lib/app", "v1", "tags").await;
    for tag in [".INVALID_MANIFEST_NAME", "-lead", &"t".repeat(129), "a%2Bb"] {
        let path = format!("/v2/lib/app/manifests/{tag}");
        let resp = s.get(&path, Some(&token)).await;
        expect_error(resp, 404, "MANIFEST_UNKNOWN", &format!("GET {tag}")).await;
        let resp = s.head(&path, Some(&token)).await;
        assert_eq!(resp.status(), 404, "HEAD {tag}");
        // Without a token it is challenged like any read, not answered.
        let resp = s.get(&path, None).await;
        assert_eq!(resp.status(), 401, "anonymous GET {tag}");
        let resp = s.put_manifest(&token, "lib/app", tag, Some(OCI_MANIFEST), &img.manifest).await;
        expect_error(resp, 400, "TAG_INVALID", &format!("PUT {tag}")).await;
    }
    let tags: Value = s.get("/v2/lib/app/tags/list", Some(&token)).await.json().await.unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]), "nothing was tagged");
}

/// A mount whose `from` is not a repository name never mounts, not even from "anywhere":
/// 202 with an ordinary session, and the blob is not linked in the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_mount_source_never_mounts() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["src/a", "dst/b"]).await;
    let digest = s.push_blob(&token, "src/a", b"mountable bytes").await;
    for from in ["", "SRC/a", "src//a", "src/a/", "/src/a", "src/./a", "src%2F%2Fa", "src/a%00"] {
        let path = format!("/v2/dst/b/blobs/uploads/?mount={digest}&from={from}");
        let resp = s.req(Method::POST, &path, Some(&token)).send().await.unwrap();
        let resp = expect_status(resp, 202, &format!("mount from {from:?}")).await;
        let location = header(&resp, "location").expect("Location");
        assert!(location.starts_with("/v2/dst/b/blobs/uploads/"), "{location}");
        let resp = s.head(&format!("/v2/dst/b/blobs/{digest}"), Some(&token)).await;
        assert_eq!(resp.status(), 404, "from={from:?} mounted the blob into dst/b");
    }
    // The well-formed `from` (percent-encoded, as docker sends it) still mounts.
    let path = format!("/v2/dst/b/blobs/uploads/?mount={digest}&from=src%2Fa");
    let resp = s.req(Method::POST, &path, Some(&token)).send().await.unwrap();
    expect_status(resp, 201, "mount from src/a").await;
}

/// A manifest nested deeper than 64 JSON levels, in a field berth does not read, is 400
/// `MANIFEST_INVALID` and not stored; 64 levels are fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_manifest_is_refused() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["deep/app"]).await;
    let config = b"{}".to_vec();
    s.push_blob(&token, "deep/app", &config).await;
    let with_nesting = |levels: usize| {
        let mut m: Value = serde_json::from_slice(&oci_manifest(&config, &[])).unwrap();
        m["x-unread"] = Value::Null;
        let text = m.to_string();
        text.replace("null", &format!("{}{}", "[".repeat(levels), "]".repeat(levels))).into_bytes()
    };
    for levels in [64, 10_000] {
        let body = with_nesting(levels);
        let resp = s.put_manifest(&token, "deep/app", "deep", Some(OCI_MANIFEST), &body).await;
        expect_error(resp, 400, "MANIFEST_INVALID", &format!("{levels} levels")).await;
        let resp = s.get(&format!("/v2/deep/app/manifests/{}", sha256_digest(&body)), Some(&token)).await;
        expect_error(resp, 404, "MANIFEST_UNKNOWN", "refused manifest by digest").await;
    }
    let resp = s.get("/v2/deep/app/manifests/deep", Some(&token)).await;
    expect_error(resp, 404, "MANIFEST_UNKNOWN", "refused manifest by tag").await;
    // The top-level object is level 1, so 63 more are the most a manifest may carry.
    let body = with_nesting(63);
    let resp = s.put_manifest(&token, "deep/app", "ok", Some(OCI_MANIFEST), &body).await;
    expect_status(resp, 201, "63 levels in an unread field").await;
}

/// An upload's status GET needs `pull` and its cancel `delete` (or `push`), as clients ask
/// by method; the session is its opener's: another user with the same access gets 404
/// `BLOB_UPLOAD_UNKNOWN` and cannot cancel it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_status_and_cancel_take_the_clients_scopes() {
    let s = TestServer::start().await;
    s.create_user(ALICE.0, "user", ALICE.1).await;
    s.create_user(BOB.0, "user", BOB.1).await;
    let push = s.token(Some(ALICE), &[&scope("alice/app", "pull,push,delete")]).await;
    // bob contributes to alice's collection: pull and push, no delete.
    let resp = s
        .client()
        .put(s.url("/api/v1/collections/alice/members/users/bob"))
        .basic_auth(ALICE.0, Some(ALICE.1))
        .json(&serde_json::json!({"role": "contributor"}))
        .send()
        .await
        .unwrap();
    expect_status(resp, 200, "bob becomes a contributor").await;

    let location = s.start_upload(&push, "alice/app").await;
    let resp = s.patch_chunk(&push, &location, 0, b"0123456789").await;
    expect_status(resp, 202, "first chunk").await;

    // Status with a pull-only token (what a client asks for a GET).
    let pull = s.token(Some(ALICE), &[&scope("alice/app", "pull")]).await;
    let resp = s.get(&location, Some(&pull)).await;
    let resp = expect_status(resp, 204, "status with pull").await;
    assert_eq!(header(&resp, "range").as_deref(), Some("0-9"));

    // bob may pull and push there, but the session is not his.
    let bob = s.token(Some(BOB), &[&scope("alice/app", "pull,push,delete")]).await;
    assert_eq!(granted(&bob, "alice/app").unwrap_or_default(), ["pull", "push"]);
    let resp = s.get(&location, Some(&bob)).await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "bob reads alice's session").await;
    let resp = s.delete(&location, Some(&bob)).await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "bob cancels alice's session").await;
    let resp = s.get(&location, Some(&pull)).await;
    expect_status(resp, 204, "alice's session survives bob").await;

    // Cancel with a delete-only token (what a client asks for a DELETE).
    let delete = s.token(Some(ALICE), &[&scope("alice/app", "delete")]).await;
    let resp = s.delete(&location, Some(&delete)).await;
    expect_status(resp, 204, "cancel with delete").await;
    let resp = s.get(&location, Some(&pull)).await;
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "cancelled session").await;

    // Cancel with push still works (docker's token), and a pull-only token may not cancel.
    let location = s.start_upload(&push, "alice/app").await;
    let resp = s.delete(&location, Some(&pull)).await;
    expect_error(resp, 403, "DENIED", "cancel with pull only").await;
    let push_only = s.token(Some(ALICE), &[&scope("alice/app", "pull,push")]).await;
    let resp = s.delete(&location, Some(&push_only)).await;
    expect_status(resp, 204, "cancel with push").await;
}

/// Sends a request with a large body while reading the answer, as a client streaming a
/// chunk does. Returns the status line; an error if either the write of the whole body or
/// the read failed (Go's client reports the failed write, "broken pipe", not the answer).
async fn streamed(s: &TestServer, head: String, body: Vec<u8>) -> Result<String, std::io::Error> {
    let sock = tokio::net::TcpStream::connect(s.addr()).await?;
    let (mut rd, mut wr) = sock.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        wr.write_all(&body).await?;
        Ok::<_, std::io::Error>(wr)
    });
    let mut out = Vec::new();
    let read = rd.read_to_end(&mut out).await;
    writer.await.map_err(std::io::Error::other)??;
    read?;
    Ok(String::from_utf8_lossy(&out).lines().next().unwrap_or("").to_owned())
}

/// A refused chunk of many megabytes (S3 makes clients send at least 5 MiB) is answered,
/// not reset: berth reads what the client sends before it answers 416 or 401, so the client
/// finishes writing and sees the answer instead of "broken pipe" (the official suites'
/// out-of-order checks on S3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_large_chunk_is_answered() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["big/app"]).await;
    let location = s.start_upload(&token, "big/app").await;
    let chunk = test_bytes(16 << 20, 7);
    let head = |auth: &str, range: &str| {
        format!(
            "PATCH {location} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/octet-stream\r\n\
             Content-Range: {range}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            s.addr(),
            chunk.len()
        )
    };
    let out_of_order = head(&format!("Authorization: Bearer {token}\r\n"), &format!("1000-{}", 999 + chunk.len()));
    let status = streamed(&s, out_of_order, chunk.clone()).await.expect("answer to an out-of-order chunk");
    assert!(status.starts_with("HTTP/1.1 416"), "{status}");
    let no_token = head("", &format!("0-{}", chunk.len() - 1));
    let status = streamed(&s, no_token, chunk.clone()).await.expect("answer to a chunk without a token");
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    // Nothing of either was kept.
    let resp = s.get(&location, Some(&token)).await;
    let resp = expect_status(resp, 204, "status after the refused chunks").await;
    assert_eq!(header(&resp, "range").as_deref(), Some("0-0"));
}
