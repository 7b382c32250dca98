//! Manifest and tag writes share commits (`src/db/writer.rs`): many at once still get their
//! own answers. A refused write in the same commit as accepted ones stores nothing, and
//! leaves the others stored.

use std::collections::BTreeSet;

use crate::common::*;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_each_get_their_own_outcome() {
    let s = TestServer::start().await;
    api_expect(&s, Method::POST, "/api/v1/collections", ADMIN, Some(&json!({"name": "grp"})), 201).await;
    let policy = json!({"immutable_tags": ["v*"]});
    api_expect(&s, Method::PUT, "/api/v1/collections/grp/policy", ADMIN, Some(&policy), 200).await;
    let token = s.admin_token(&[&scope("grp/app", "pull,push,delete")]).await;
    let a = s.push_image(&token, "grp/app", "v1", "a").await;
    let b = s.push_image(&token, "grp/app", "latest", "b").await;
    for i in 0..16 {
        s.push_manifest(&token, "grp/app", &format!("d{i:02}"), OCI_MANIFEST, &b.manifest).await;
    }
    // A manifest whose layer was never pushed.
    let missing = oci_manifest(&a.config, &[b"never pushed"]);
    // New manifests (their blobs are here) that try to take the immutable tag: each is
    // refused inside the shared commit and must leave nothing behind.
    let intruder = |i: usize| {
        let mut m: Value = serde_json::from_slice(&b.manifest).unwrap();
        m["annotations"] = json!({"intruder": i.to_string()});
        serde_json::to_vec(&m).unwrap()
    };
    let intruders: Vec<Vec<u8>> = (0..64).map(intruder).collect();

    let (s, token) = (&s, token.as_str());
    let writes = (0..64).map(|i| {
        let (b, missing, intruder) = (&b, &missing, &intruders[i]);
        async move {
            let (what, resp) = match i % 4 {
                0 => (
                    "new tag",
                    s.put_manifest(token, "grp/app", &format!("t{i:02}"), Some(OCI_MANIFEST), &b.manifest).await,
                ),
                1 => ("move immutable", s.put_manifest(token, "grp/app", "v1", Some(OCI_MANIFEST), intruder).await),
                2 => (
                    "missing layer",
                    s.put_manifest(token, "grp/app", &format!("m{i:02}"), Some(OCI_MANIFEST), missing).await,
                ),
                _ => {
                    let tag = if i % 8 == 3 { format!("d{:02}", i / 8) } else { format!("absent{i}") };
                    ("delete", s.delete(&format!("/v2/grp/app/manifests/{tag}"), Some(token)).await)
                }
            };
            (i, what, resp.status().as_u16(), resp.text().await.unwrap_or_default())
        }
    });
    for (i, what, status, body) in join_all(writes).await {
        let want = match i % 4 {
            0 => 201,
            1 => 403,
            2 => 400,
            _ if i % 8 == 3 => 202,
            _ => 404,
        };
        assert_eq!(status, want, "write {i} ({what}): {body}");
        if want >= 400 {
            let code = serde_json::from_str::<Value>(&body).map(|v| error_codes_of(&v)).unwrap_or_default();
            let expected = match want {
                403 => "DENIED",
                400 => "MANIFEST_BLOB_UNKNOWN",
                _ => "MANIFEST_UNKNOWN",
            };
            assert_eq!(code, vec![expected.to_owned()], "write {i} ({what}): {body}");
        }
    }

    // Exactly the accepted writes are stored.
    let resp = expect_status(s.get("/v2/grp/app/tags/list", Some(token)).await, 200, "tags").await;
    let tags: BTreeSet<String> =
        serde_json::from_value(resp.json::<Value>().await.unwrap()["tags"].clone()).expect("tag list");
    let mut want: BTreeSet<String> = ["latest".to_owned(), "v1".to_owned()].into();
    want.extend((0..64).filter(|i| i % 4 == 0).map(|i| format!("t{i:02}")));
    // d00..d07 were deleted (by writes 3, 11, …, 59); d08..d15 stay.
    want.extend((8..16).map(|i| format!("d{i:02}")));
    assert_eq!(tags, want);
    let v1 = expect_status(s.get("/v2/grp/app/manifests/v1", Some(token)).await, 200, "v1").await;
    assert_eq!(header(&v1, "docker-content-digest"), Some(a.digest.clone()), "the immutable tag did not move");
    let refused = std::iter::once(&missing).chain(intruders.iter().skip(1).step_by(4));
    for m in refused {
        let gone = s.get(&format!("/v2/grp/app/manifests/{}", sha256_digest(m)), Some(token)).await;
        expect_error(gone, 404, "MANIFEST_UNKNOWN", "a refused manifest was not stored").await;
    }
}
