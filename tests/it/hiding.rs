//! Existence hiding (DESIGN §3 existence table, §4): a repository in a private collection
//! the caller may not pull, a repository in an absent collection, and an absent repository
//! inside that private collection answer alike on every endpoint family and method, for
//! anonymous and for an unrelated user, with the token each would get by following the
//! challenge as docker does. And `_catalog` (with `n`/`last`) lists exactly what the caller
//! may pull.
//!
//! Already covered in tests/access.rs and not repeated here:
//! - `hidden_and_absent_repositories_answer_alike`: reads and deletes of a hidden vs an
//!   absent-collection repository with a hand-picked `pull,delete` token and with no token;
//! - `absent_repository_where_pull_is_granted_is_404`: 404 `NAME_UNKNOWN` / empty referrers;
//! - `mount_does_not_leak_blobs_from_hidden_repositories`: the mounted blob is not linked;
//! - `catalog_lists_only_what_sub_may_pull`: the unpaged catalog for owners and anonymous.
//!
//! New here: writes (manifest PUT, upload POST/PATCH/PUT/DELETE, mount into the repository,
//! mount from it), an absent repository *inside* the private collection, the first untokened
//! answer and the token taken from its challenge, `user_collections = false` (where a user's
//! push into an absent collection is not served either), and a paged catalog with teams.

use crate::common::*;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

const PASSWORD: &str = "hiding-password";
const HIDDEN: &str = "privc/app";
const ABSENT_REPO: &str = "privc/ghost";
const ABSENT_COLLECTION: &str = "nocoll/app";

/// Real identifiers from the hidden repository, so that a hidden request names things that
/// exist there (and do not exist anywhere for the absent targets).
struct Ids {
    manifest: Vec<u8>,
    manifest_digest: String,
    layer_digest: String,
    upload: String,
}

/// One request of a probe, relative to a repository: label, method, path suffix, body.
struct Probe {
    label: &'static str,
    method: Method,
    suffix: String,
    body: Option<(String, Vec<u8>)>,
    /// Its challenge asks for `push`.
    write: bool,
}

fn probes(ids: &Ids) -> Vec<Probe> {
    let m = &ids.manifest_digest;
    let l = &ids.layer_digest;
    let u = &ids.upload;
    let p = |label, method, suffix: String, write| Probe { label, method, suffix, body: None, write };
    let octets = |label, method, suffix: String| Probe {
        label,
        method,
        suffix,
        body: Some(("application/octet-stream".to_string(), b"some bytes".to_vec())),
        write: true,
    };
    vec![
        p("manifest GET by tag", Method::GET, "manifests/v1".into(), false),
        p("manifest HEAD by tag", Method::HEAD, "manifests/v1".into(), false),
        p("manifest GET by digest", Method::GET, format!("manifests/{m}"), false),
        p("manifest HEAD by digest", Method::HEAD, format!("manifests/{m}"), false),
        Probe {
            label: "manifest PUT",
            method: Method::PUT,
            suffix: "manifests/v2".into(),
            body: Some((OCI_MANIFEST.to_string(), ids.manifest.clone())),
            write: true,
        },
        p("manifest DELETE by tag", Method::DELETE, "manifests/v1".into(), false),
        p("manifest DELETE by digest", Method::DELETE, format!("manifests/{m}"), false),
        p("blob GET", Method::GET, format!("blobs/{l}"), false),
        p("blob HEAD", Method::HEAD, format!("blobs/{l}"), false),
        p("blob DELETE", Method::DELETE, format!("blobs/{l}"), false),
        p("tags list", Method::GET, "tags/list".into(), false),
        p("tags list paged", Method::GET, "tags/list?n=1&last=a".into(), false),
        p("referrers", Method::GET, format!("referrers/{m}"), false),
        p("referrers filtered", Method::GET, format!("referrers/{m}?artifactType=application/x-test"), false),
        p("upload POST", Method::POST, "blobs/uploads/".into(), true),
        octets(
            "upload POST monolithic",
            Method::POST,
            format!("blobs/uploads/?digest={}", sha256_digest(b"some bytes")),
        ),
        octets("upload PATCH", Method::PATCH, format!("blobs/uploads/{u}")),
        octets("upload PUT", Method::PUT, format!("blobs/uploads/{u}?digest={}", sha256_digest(b"some bytes"))),
        // README "Deviations": upload status and cancel ask for `pull,push` (the session is a
        // push), so a user's token for them creates an absent collection like any push.
        p("upload GET", Method::GET, format!("blobs/uploads/{u}"), true),
        p("upload DELETE", Method::DELETE, format!("blobs/uploads/{u}"), true),
        p(
            "mount into, from a public repository",
            Method::POST,
            format!("blobs/uploads/?mount={l}&from=pubc/app"),
            true,
        ),
        p("mount into, without from", Method::POST, format!("blobs/uploads/?mount={l}"), true),
    ]
}

/// What one answer shows a client, with the repository name blanked.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    codes: Vec<String>,
    challenge: Option<String>,
    body: String,
}

async fn seen(resp: reqwest::Response, repo: &str) -> Seen {
    let blank = |s: &str| s.replace(repo, "<repo>");
    let status = resp.status().as_u16();
    let challenge = header(&resp, "www-authenticate").map(|c| blank(&c));
    let body = resp.text().await.unwrap_or_default();
    let codes = serde_json::from_str::<Value>(&body).map(|v| error_codes_of(&v)).unwrap_or_default();
    Seen { status, codes, challenge, body: blank(&body) }
}

async fn send(s: &TestServer, p: &Probe, repo: &str, token: Option<&str>) -> reqwest::Response {
    let mut rb = s.req(p.method.clone(), &format!("/v2/{repo}/{}", p.suffix), token);
    if let Some((ct, bytes)) = &p.body {
        rb = rb.header(CONTENT_TYPE, ct.as_str()).body(bytes.clone());
    }
    rb.send().await.expect("probe request")
}

/// For each probe: the answer without a token, then the answer with the token `creds` gets
/// for the scope that answer's challenge asked for (as docker does).
async fn probe(
    s: &TestServer,
    creds: Option<(&str, &str)>,
    repo: &str,
    ids: &Ids,
    writes: bool,
) -> Vec<(&'static str, Seen, Seen)> {
    let mut out = Vec::new();
    for p in probes(ids).iter().filter(|p| writes || !p.write) {
        let resp = send(s, p, repo, None).await;
        let chal = (resp.status() == 401).then(|| challenge(&resp));
        let first = seen(resp, repo).await;
        let chal = chal.unwrap_or_else(|| panic!("{} {repo} without a token: {first:?}", p.label));
        let wanted = chal.get("scope").unwrap_or_else(|| panic!("{}: challenge without scope: {chal:?}", p.label));
        let scopes: Vec<&str> = wanted.split(' ').collect();
        let token = s.token(creds, &scopes).await;
        let second = seen(send(s, p, repo, Some(&token)).await, repo).await;
        out.push((p.label, first, second));
    }
    out
}

/// Users, an owner's private collection `privc` with an image, a pending upload and a
/// public `pubc/app` holding the same layer.
async fn set_up(s: &TestServer) -> Ids {
    api_user(s, "owner", PASSWORD, "user").await;
    api_user(s, "bob", PASSWORD, "user").await;
    for (coll, private) in [("privc", true), ("pubc", false)] {
        let body = json!({"name": coll, "private": private});
        api_expect(s, Method::POST, "/api/v1/collections", ADMIN, Some(&body), 201).await;
        let path = format!("/api/v1/collections/{coll}/members/users/owner");
        api_expect(s, Method::PUT, &path, ADMIN, Some(&json!({"role": "owner"})), 200).await;
    }
    let token = s
        .token(Some(("owner", PASSWORD)), &[&scope(HIDDEN, "pull,push,delete"), &scope("pubc/app", "pull,push")])
        .await;
    let img = s.push_image(&token, HIDDEN, "v1", "hidden").await;
    s.push_image(&token, "pubc/app", "v1", "hidden").await;
    let upload = s.start_upload(&token, HIDDEN).await;
    let upload = upload.rsplit('/').next().expect("uuid").to_string();
    Ids {
        manifest_digest: img.digest.clone(),
        layer_digest: sha256_digest(&img.layers[0]),
        manifest: img.manifest,
        upload,
    }
}

fn compare(who: &str, a_name: &str, a: &[(&str, Seen, Seen)], b_name: &str, b: &[(&str, Seen, Seen)]) -> Vec<String> {
    assert_eq!(a.len(), b.len());
    let mut diffs = Vec::new();
    for (x, y) in a.iter().zip(b) {
        if x.1 != y.1 {
            diffs.push(format!("{who} {}: untokened {a_name} {:?} vs {b_name} {:?}", x.0, x.1, y.1));
        }
        if x.2 != y.2 {
            diffs.push(format!("{who} {}: with token {a_name} {:?} vs {b_name} {:?}", x.0, x.2, y.2));
        }
    }
    diffs
}

/// The expected answer with the token: 401 for anonymous, 403 `DENIED` for a user.
fn check_kind(who: &str, named_user: bool, rows: &[(&str, Seen, Seen)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (label, first, second) in rows {
        if first.status != 401 || first.challenge.is_none() {
            bad.push(format!("{who} {label}: without token expected 401 with a challenge, got {first:?}"));
        }
        let ok = if named_user {
            second.status == 403 && (label.contains("HEAD") || second.codes.iter().any(|c| c == "DENIED"))
        } else {
            second.status == 401 && second.challenge.is_some()
        };
        if !ok {
            bad.push(format!(
                "{who} {label}: with its token expected {}, got {second:?}",
                if named_user { "403 DENIED" } else { "401" }
            ));
        }
    }
    bad
}

async fn hidden_equals_absent(user_collections: bool) {
    let s = start_with_settings(user_collections, false).await;
    let ids = set_up(&s).await;
    let mut problems = Vec::new();
    for (who, creds) in [("anonymous", None), ("bob", Some(("bob", PASSWORD)))] {
        // A user asking for push in an absent collection creates it while user_collections
        // is on (§3, "served for the creator"), so that one comparison runs only when off.
        let writes_to_absent_collection = creds.is_none() || !user_collections;
        let hidden = probe(&s, creds, HIDDEN, &ids, true).await;
        let absent_repo = probe(&s, creds, ABSENT_REPO, &ids, true).await;
        problems.extend(check_kind(who, creds.is_some(), &hidden));
        problems.extend(compare(who, HIDDEN, &hidden, ABSENT_REPO, &absent_repo));
        let hidden = probe(&s, creds, HIDDEN, &ids, writes_to_absent_collection).await;
        let absent_coll = probe(&s, creds, ABSENT_COLLECTION, &ids, writes_to_absent_collection).await;
        problems.extend(compare(who, HIDDEN, &hidden, ABSENT_COLLECTION, &absent_coll));
    }
    assert!(problems.is_empty(), "existence leaks (user_collections={user_collections}):\n{}", problems.join("\n"));

    // Nothing was created by any of this, and the hidden repository is intact.
    api_expect(&s, Method::GET, "/api/v1/collections/nocoll", ADMIN, None, 404).await;
    let c = api_expect(&s, Method::GET, "/api/v1/collections/privc", ADMIN, None, 200).await;
    assert_eq!(c["repositories"], json!([HIDDEN]), "{c}");
    let admin = s.repo_token(&[HIDDEN]).await;
    let resp = s.get(&format!("/v2/{HIDDEN}/manifests/v1"), Some(&admin)).await;
    expect_status(resp, 200, "the hidden image survived every probe").await;
    let resp = s.get(&format!("/v2/{HIDDEN}/blobs/uploads/{}", ids.upload), Some(&admin)).await;
    assert_eq!(resp.status(), 404, "the owner's upload session is not the superuser's (§6: bound to sub)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hidden_and_absent_answer_alike_on_every_endpoint() {
    hidden_equals_absent(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hidden_and_absent_answer_alike_without_user_collections() {
    hidden_equals_absent(false).await;
}

/// A user mounting into their own repository *from* a hidden vs an absent repository sees
/// the same thing (202, a fresh session, nothing linked).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mount_from_hidden_or_absent_answers_alike() {
    let s = TestServer::start().await;
    let ids = set_up(&s).await;
    let bob = ("bob", PASSWORD);
    let own = s.token(Some(bob), &[&scope("bobc/app", "pull,push")]).await;
    s.push_blob(&own, "bobc/app", b"bob's own blob").await;
    let mut seen_by_from = Vec::new();
    for from in [HIDDEN, ABSENT_REPO, ABSENT_COLLECTION] {
        let path = format!("/v2/bobc/app/blobs/uploads/?mount={}&from={from}", ids.layer_digest);
        let resp = s.req(Method::POST, &path, None).send().await.unwrap();
        let chal = challenge(&resp);
        let first = seen(resp, from).await;
        assert_eq!(first.status, 401, "{from}: {first:?}");
        let wanted = chal.get("scope").expect("scope").clone();
        let mut scopes: Vec<&str> = wanted.split(' ').collect();
        scopes.sort();
        assert_eq!(scopes, [scope("bobc/app", "pull,push"), scope(from, "pull")], "§4: a mount challenges both");
        let token = s.token(Some(bob), &scopes).await;
        let resp = s.req(Method::POST, &path, Some(&token)).send().await.unwrap();
        let status = resp.status().as_u16();
        let location = header(&resp, "location").unwrap_or_default();
        assert_eq!(status, 202, "{from}: mount of an invisible blob falls back to a session");
        assert!(location.starts_with("/v2/bobc/app/blobs/uploads/"), "{from}: {location}");
        let resp = s.head(&format!("/v2/bobc/app/blobs/{}", ids.layer_digest), Some(&own)).await;
        assert_eq!(resp.status(), 404, "{from}: nothing linked into bobc/app");
        seen_by_from.push(first);
    }
    assert_eq!(seen_by_from[0], seen_by_from[1]);
    assert_eq!(seen_by_from[0], seen_by_from[2]);
}

// ----- _catalog ---------------------------------------------------------------------------

/// Walks `_catalog?n=<n>` (and `last`) following `Link`; returns every name and checks page
/// sizes along the way.
async fn walk_catalog(s: &TestServer, token: &str, n: usize, last: Option<&str>) -> Vec<String> {
    let mut path = match last {
        Some(l) => format!("/v2/_catalog?n={n}&last={l}"),
        None => format!("/v2/_catalog?n={n}"),
    };
    let mut all = Vec::new();
    for _ in 0..100 {
        let resp = s.get(&path, Some(token)).await;
        let resp = expect_status(resp, 200, &format!("GET {path}")).await;
        let link = header(&resp, "link");
        let json: Value = resp.json().await.unwrap();
        let page: Vec<String> = json["repositories"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: no repositories array: {json}"))
            .iter()
            .map(|v| v.as_str().expect("string").to_string())
            .collect();
        assert!(page.len() <= n, "{path}: {} entries for n={n}", page.len());
        all.extend(page);
        match link {
            None => return all,
            Some(l) => {
                assert!(l.ends_with("rel=\"next\""), "Link: {l}");
                path = l[l.find('<').expect("<") + 1..l.find('>').expect(">")].to_string();
                assert!(path.starts_with("/v2/_catalog?"), "Link target: {path}");
            }
        }
    }
    panic!("_catalog paging did not end");
}

/// (collection, private, members as (kind, name, role), repositories)
type Layout = (&'static str, bool, &'static [(&'static str, &'static str, &'static str)], &'static [&'static str]);
type Creds = Option<(&'static str, &'static str)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalog_pages_list_exactly_what_the_caller_may_pull() {
    let s = TestServer::start().await;
    api_user(&s, "staff", PASSWORD, "admin").await;
    for u in ["alice", "bob", "carol", "dave"] {
        api_user(&s, u, PASSWORD, "user").await;
    }
    api_expect(&s, Method::POST, "/api/v1/teams", ADMIN, Some(&json!({"name": "crew"})), 201).await;
    api_expect(&s, Method::PUT, "/api/v1/teams/crew/members/carol", ADMIN, None, 200).await;
    let layout: &[Layout] = &[
        ("apub", false, &[("users", "alice", "owner")], &["apub/one", "apub/two"]),
        ("bpriv", true, &[("users", "bob", "owner")], &["bpriv/x"]),
        ("cteam", true, &[("teams", "crew", "contributor")], &["cteam/a", "cteam/b/c"]),
        ("dpub", false, &[], &["dpub/z"]),
        ("epriv", true, &[("users", "alice", "contributor")], &["epriv/secret"]),
    ];
    for (coll, private, members, repos) in layout {
        let body = json!({"name": coll, "private": private});
        api_expect(&s, Method::POST, "/api/v1/collections", ADMIN, Some(&body), 201).await;
        for (kind, m, role) in *members {
            let path = format!("/api/v1/collections/{coll}/members/{kind}/{m}");
            api_expect(&s, Method::PUT, &path, ADMIN, Some(&json!({"role": role})), 200).await;
        }
        let token = s.repo_token(repos).await;
        for r in *repos {
            s.push_image(&token, r, "v1", r).await;
        }
    }
    let everything: Vec<String> =
        layout.iter().flat_map(|l| l.3.iter().map(std::string::ToString::to_string)).collect();
    let public = ["apub/one", "apub/two", "dpub/z"];
    let with = |extra: &[&str]| {
        let mut v: Vec<String> = public.iter().chain(extra).map(std::string::ToString::to_string).collect();
        v.sort();
        v
    };
    let cases: Vec<(&str, Creds, Vec<String>)> = vec![
        ("superuser", Some((ADMIN_USER, ADMIN_PASSWORD)), everything.clone()),
        ("admin", Some(("staff", PASSWORD)), everything.clone()),
        ("alice (owner of apub, contributor of epriv)", Some(("alice", PASSWORD)), with(&["epriv/secret"])),
        ("bob (owner of bpriv)", Some(("bob", PASSWORD)), with(&["bpriv/x"])),
        ("carol (via team crew)", Some(("carol", PASSWORD)), with(&["cteam/a", "cteam/b/c"])),
        ("dave (unrelated)", Some(("dave", PASSWORD)), with(&[])),
        ("anonymous", None, with(&[])),
    ];
    for (who, creds, want) in cases {
        let token = s.token(creds, &["registry:catalog:*"]).await;
        for n in [1, 2, 3, 1000] {
            assert_eq!(walk_catalog(&s, &token, n, None).await, want, "{who}, n={n}");
        }
        // `last` is exclusive and need not exist.
        for last in ["apub/one", "b", "cteam/a", "zzz"] {
            let tail: Vec<String> = want.iter().filter(|r| r.as_str() > last).cloned().collect();
            assert_eq!(walk_catalog(&s, &token, 2, Some(last)).await, tail, "{who}, last={last}");
        }
        let resp = s.get("/v2/_catalog?n=0", Some(&token)).await;
        let resp = expect_status(resp, 200, "n=0").await;
        assert!(header(&resp, "link").is_none(), "n=0 gives no Link");
        let json: Value = resp.json().await.unwrap();
        assert_eq!(json["repositories"], json!([]), "{who}: n=0");
    }
}
