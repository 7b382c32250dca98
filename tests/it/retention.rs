//! Retention and immutable tags per collection (issue 10): set by the collection's owners
//! through the API and the CLI; a push that would move an immutable tag, and a delete of
//! one (or of its manifest), get 403 DENIED with a clear message; retention runs with GC,
//! and `--dry-run` shows its choices.

use std::time::Duration;

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn tags(s: &TestServer, token: &str, repo: &str) -> Value {
    let resp = expect_status(s.get(&format!("/v2/{repo}/tags/list"), Some(token)).await, 200, "tags").await;
    resp.json::<Value>().await.unwrap()["tags"].clone()
}

#[tokio::test]
async fn immutable_tags_neither_move_nor_go() {
    let s = TestServer::start().await;
    api_user(&s, "alice", "alice-pw", "user").await;
    api_user(&s, "bob", "bob-pw", "user").await;
    let alice = Cred::Basic("alice", "alice-pw");
    api_expect(&s, Method::POST, "/api/v1/collections", alice, Some(&json!({"name": "imm"})), 201).await;
    let member = json!({"role": "contributor"});
    api_expect(&s, Method::PUT, "/api/v1/collections/imm/members/users/bob", alice, Some(&member), 200).await;

    let policy = json!({"immutable_tags": ["v*.*.*"]});
    let bob = Cred::Basic("bob", "bob-pw");
    api_error(&s, Method::PUT, "/api/v1/collections/imm/policy", bob, Some(&policy), 403).await;
    let bad = json!({"immutable_tags": ["v[1"]});
    api_error(&s, Method::PUT, "/api/v1/collections/imm/policy", alice, Some(&bad), 400).await;
    let set = api_expect(&s, Method::PUT, "/api/v1/collections/imm/policy", alice, Some(&policy), 200).await;
    assert_eq!(set["immutable_tags"], json!(["v*.*.*"]), "{set}");
    let got = api_expect(&s, Method::GET, "/api/v1/collections/imm/policy", bob, None, 200).await;
    assert_eq!(got["immutable_tags"], json!(["v*.*.*"]), "{got}");

    let token = s.token(Some(("alice", "alice-pw")), &[&scope("imm/app", "pull,push,delete")]).await;
    let a = s.push_image(&token, "imm/app", "v1.0.0", "a").await;
    let b = s.push_image(&token, "imm/app", "latest", "b").await;
    // Moving the immutable tag, by tag or through ?tag=, is refused and changes nothing.
    let resp = s.put_manifest(&token, "imm/app", "v1.0.0", Some(OCI_MANIFEST), &b.manifest).await;
    let body = expect_error(resp, 403, "DENIED", "move an immutable tag").await;
    assert!(body.to_string().contains("v1.0.0 is immutable"), "{body}");
    let by_digest = format!("{}?tag=v1.0.0", b.digest);
    let resp = s.put_manifest(&token, "imm/app", &by_digest, Some(OCI_MANIFEST), &b.manifest).await;
    expect_error(resp, 403, "DENIED", "move it with ?tag=").await;
    let resp = expect_status(s.get("/v2/imm/app/manifests/v1.0.0", Some(&token)).await, 200, "GET").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), a.manifest.as_slice(), "still the first image");
    // Pushing the same manifest under it again is no move; other tags move freely.
    s.push_manifest(&token, "imm/app", "v1.0.0", OCI_MANIFEST, &a.manifest).await;
    s.push_manifest(&token, "imm/app", "latest", OCI_MANIFEST, &a.manifest).await;
    // Neither the tag nor its manifest can be deleted; an unprotected manifest can.
    for reference in ["v1.0.0", a.digest.as_str()] {
        let resp = s.delete(&format!("/v2/imm/app/manifests/{reference}"), Some(&token)).await;
        expect_error(resp, 403, "DENIED", &format!("delete {reference}")).await;
    }
    expect_status(s.delete(&format!("/v2/imm/app/manifests/{}", b.digest), Some(&token)).await, 202, "b").await;
    assert_eq!(tags(&s, &token, "imm/app").await, json!(["latest", "v1.0.0"]));
}

#[tokio::test]
async fn retention_keeps_the_newest_and_matching_tags_and_runs_with_gc() {
    let s = TestServer::start().await;
    // The owners set it through the CLI as well as the API.
    s.push_image(&s.repo_token(&["cli/app"]).await, "cli/app", "v1", "cli").await;
    let out = berth_cli(&s, &["collection", "policy", "cli", "--keep-newest", "2", "--keep-tag", "release-*"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let policy: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((policy["keep_newest"].clone(), policy["keep_tags"].clone()), (json!(2), json!(["release-*"])));
    let got = api_expect(&s, Method::GET, "/api/v1/collections/cli/policy", ADMIN, None, 200).await;
    assert_eq!(got["keep_tags"], json!(["release-*"]), "{got}");
    assert!(berth_cli(&s, &["collection", "policy", "cli", "--clear"]).await.status.success());
    let got = api_expect(&s, Method::GET, "/api/v1/collections/cli/policy", ADMIN, None, 200).await;
    assert_eq!(got["keep_newest"], Value::Null, "{got}");
    retention_runs_with_gc(&s, &[]).await;
}

/// Keep the newest 2 and `release-*` in collection `ret`: a dry run shows what goes, a pass
/// removes it and frees its bytes, clearing the policy stops it. `env` goes to `berth gc`
/// (the database URL, when not the SQLite file in the data dir).
pub(crate) async fn retention_runs_with_gc(s: &TestServer, env: &[(&str, &str)]) {
    let gc = |args: &'static [&'static str]| gc_with(s, args, env);
    let token = s.repo_token(&["ret/app"]).await;
    let mut digests = Vec::new();
    // Oldest first, a second apart (tags are ordered by their last push, in seconds).
    for tag in ["release-1", "t1", "t2", "t3"] {
        digests.push(s.push_image(&token, "ret/app", tag, tag).await);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let policy = json!({"keep_newest": 2, "keep_tags": ["release-*"]});
    api_expect(s, Method::PUT, "/api/v1/collections/ret/policy", ADMIN, Some(&policy), 200).await;

    let dry = gc(&["--dry-run"]).await;
    assert_eq!(dry["tags_removed"], json!([{"repository": "ret/app", "tag": "t1", "digest": digests[1].digest}]));
    assert_eq!(dry["manifests_removed"].as_array().map(Vec::len), Some(1), "{dry}");
    assert_eq!(tags(s, &token, "ret/app").await, json!(["release-1", "t1", "t2", "t3"]), "a dry run keeps all");

    let report = gc(&[]).await;
    assert_eq!(report["tags_removed"], dry["tags_removed"]);
    assert_eq!(report["bytes_freed"], dry["bytes_freed"]);
    let own = (digests[1].config.len() + digests[1].layers[0].len()) as u64;
    assert_eq!(report["bytes_freed"], own, "t1's config and layer: {report}");
    assert_eq!(tags(s, &token, "ret/app").await, json!(["release-1", "t2", "t3"]));
    let resp = s.get(&format!("/v2/ret/app/manifests/{}", digests[1].digest), Some(&token)).await;
    expect_error(resp, 404, "MANIFEST_UNKNOWN", "t1's image").await;
    for blob in [&digests[1].config, &digests[1].layers[0]] {
        assert!(s.blob_on_disk(&sha256_digest(blob)).is_none(), "t1's bytes are gone");
    }

    // Clearing the policy stops retention.
    api_expect(s, Method::PUT, "/api/v1/collections/ret/policy", ADMIN, Some(&json!({})), 200).await;
    s.push_image(&token, "ret/app", "t4", "t4").await;
    assert_eq!(gc(&[]).await["tags_removed"], json!([]));
    assert_eq!(tags(s, &token, "ret/app").await, json!(["release-1", "t2", "t3", "t4"]));
}
