//! Endpoint parsing and the access table (DESIGN §4), from the spec's own URLs.

use super::*;

const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const U: &str = "6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11";

fn parse_q(method: &Method, target: &str) -> Result<Endpoint, OciError> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Endpoint::parse(method, path, &Query::parse(Some(query)))
}

fn get(path: &str) -> Endpoint {
    parse_q(&Method::GET, path).unwrap()
}

fn code(method: Method, path: &str) -> (u16, &'static str) {
    let e = parse_q(&method, path).unwrap_err();
    (e.status().as_u16(), e.code())
}

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

#[test]
fn spec_endpoints() {
    assert_eq!(get("/v2/"), Endpoint::Base);
    assert_eq!(get("/v2"), Endpoint::Base);
    assert_eq!(get("/v2/_catalog"), Endpoint::Catalog);
    assert_eq!(get("/v2/a/b/tags/list"), Endpoint::Tags(repo("a/b")));
    assert!(
        matches!(get("/v2/a/manifests/latest"), Endpoint::GetManifest(r, Some(Reference::Tag(_))) if r.as_str() == "a")
    );
    assert!(matches!(get(&format!("/v2/a/manifests/{D}")), Endpoint::GetManifest(_, Some(Reference::Digest(_)))));
    assert!(matches!(get(&format!("/v2/a/blobs/{D}")), Endpoint::GetBlob(..)));
    assert!(matches!(parse_q(&Method::POST, "/v2/a/blobs/uploads/"), Ok(Endpoint::StartUpload(_, Mount::No))));
    assert!(matches!(parse_q(&Method::POST, "/v2/a/blobs/uploads"), Ok(Endpoint::StartUpload(_, Mount::No))));
    assert!(matches!(get(&format!("/v2/a/blobs/uploads/{U}")), Endpoint::UploadStatus(..)));
    assert!(matches!(get(&format!("/v2/a/referrers/{D}")), Endpoint::Referrers(..)));
}

#[test]
fn names_containing_route_words() {
    assert_eq!(get("/v2/x/blobs/manifests/tags/list"), Endpoint::Tags(repo("x/blobs/manifests")));
    assert!(
        matches!(get(&format!("/v2/manifests/blobs/blobs/{D}")), Endpoint::GetBlob(r, _) if r.as_str() == "manifests/blobs")
    );
    assert!(
        matches!(get("/v2/blobs/uploads/manifests/v1"), Endpoint::GetManifest(r, _) if r.as_str() == "blobs/uploads")
    );
}

#[test]
fn errors() {
    assert_eq!(code(Method::GET, "/v2/UPPER/tags/list"), (400, "NAME_INVALID"));
    assert_eq!(code(Method::GET, "/v2/a/blobs/sha256:zz"), (400, "DIGEST_INVALID"));
    assert_eq!(code(Method::GET, "/v2/a/manifests/sha256:zz"), (400, "DIGEST_INVALID"));
    assert_eq!(code(Method::GET, "/v2/a/blobs/uploads/not-a-uuid"), (404, "BLOB_UPLOAD_UNKNOWN"));
    assert_eq!(code(Method::GET, "/v2/a/whatever"), (404, "NAME_UNKNOWN"));
    assert_eq!(code(Method::POST, "/v2/a/manifests/x"), (405, "UNSUPPORTED"));
    assert_eq!(code(Method::POST, "/v2/a/blobs/uploads/?mount=sha256:zz&from=b"), (400, "DIGEST_INVALID"));
}

/// A tag that cannot exist is unknown to a read, and invalid to a write.
#[test]
fn invalid_tag_reads_as_unknown() {
    for tag in ["-lead", ".INVALID_MANIFEST_NAME", "a+b", "a%2Bb", ""] {
        let path = format!("/v2/a/manifests/{tag}");
        assert_eq!(get(&path), Endpoint::GetManifest(repo("a"), None), "{tag}");
        assert_eq!(parse_q(&Method::HEAD, &path).unwrap(), Endpoint::GetManifest(repo("a"), None));
        assert_eq!(code(Method::PUT, &path), (400, "TAG_INVALID"), "{tag}");
        assert_eq!(code(Method::DELETE, &path), (400, "TAG_INVALID"), "{tag}");
    }
}

/// No path is normalised into another: every spelling that is not the name itself is
/// `NAME_INVALID` (the part left for the name fails the grammar) or `NAME_UNKNOWN` (no
/// route), never the endpoint of `a/b`.
#[test]
fn no_normalisation() {
    let cases = [
        "/v2//a/b/tags/list",
        "/v2///a/b/tags/list",
        "/v2/a//b/tags/list",
        "/v2/a/b//tags/list",
        "/v2/a/./b/tags/list",
        "/v2/./a/b/tags/list",
        "/v2/a/c/../b/tags/list",
        "/v2/a%2Fb/tags/list",
        "/v2/a%2fb/tags/list",
        "/v2/%61/b/tags/list",
        "/v2/A/b/tags/list",
        "/v2/a/B/tags/list",
        "/v2/a/b/tags/list/",
        "/v2/a/b/manifests/v1/",
        "/v2/a/b/Manifests/v1",
        "/v2/a/b//manifests/v1",
        "/v2//a/b/manifests/v1",
        "/v2//a/b/blobs/uploads/",
        "/v2/a/b/blobs/uploads//",
        "/v2/_catalog/",
        "/v2//_catalog",
        "/v2//",
        "/v2/a/b/",
    ];
    for path in cases {
        for method in [Method::GET, Method::HEAD, Method::PUT, Method::POST, Method::PATCH, Method::DELETE] {
            let got = parse_q(&method, path);
            let repo_ab = got.as_ref().ok().and_then(|e| e.needs().first().cloned());
            assert!(
                repo_ab.is_none_or(|n| n.resource != Resource::Repository(repo("a/b"))),
                "{method} {path} aliases a/b: {got:?}"
            );
            if let Err(e) = got {
                assert!(
                    matches!((e.status().as_u16(), e.code()), (400, "NAME_INVALID") | (404, "NAME_UNKNOWN")),
                    "{method} {path}: {} {}",
                    e.status(),
                    e.code()
                );
            } else {
                panic!("{method} {path} was served: {got:?}");
            }
        }
    }
}

/// A mount's `from` that is no repository name never mounts (not even from "anywhere").
#[test]
fn malformed_mount_source() {
    // (`from` is a query value, so `a%2Fb` is `a/b`, spelled as docker sends it.)
    for from in ["", "A/b", "a//b", "a/../b", "a%2F%2Fb", "/a", "a/", "a%00"] {
        let path = format!("/v2/t/blobs/uploads/?mount={D}&from={from}");
        let e = parse_q(&Method::POST, &path).unwrap();
        assert_eq!(e, Endpoint::StartUpload(repo("t"), Mount::Invalid), "from={from:?}");
    }
    let e = parse_q(&Method::POST, &format!("/v2/t/blobs/uploads/?mount={D}&from=s%2Fr")).unwrap();
    assert!(matches!(e, Endpoint::StartUpload(_, Mount::From(_, f)) if f.as_str() == "s/r"));
    let e = parse_q(&Method::POST, &format!("/v2/t/blobs/uploads/?mount={D}")).unwrap();
    assert!(matches!(e, Endpoint::StartUpload(_, Mount::Anywhere(_))));
}

/// The access every endpoint × method needs, against DESIGN §4: GET/HEAD `pull`,
/// POST/PATCH/PUT `pull,push`, DELETE `delete`, `_catalog` `registry:catalog:*`, a mount
/// also `pull` on its source (an entry is required; without pull it does not mount), an
/// upload's status `pull` and its cancel `delete` or `push`. A route that parses and is not
/// in this table fails the test; a new `Endpoint` variant fails to compile in `kind`.
/// (`!CODE`: refused with that code before any access check.)
#[test]
fn access_table() {
    fn kind(e: &Endpoint) -> &'static str {
        match e {
            Endpoint::Base => "Base",
            Endpoint::Catalog => "Catalog",
            Endpoint::Tags(..) => "Tags",
            Endpoint::Referrers(..) => "Referrers",
            Endpoint::GetManifest(..) => "GetManifest",
            Endpoint::PutManifest(..) => "PutManifest",
            Endpoint::DeleteManifest(..) => "DeleteManifest",
            Endpoint::GetBlob(..) => "GetBlob",
            Endpoint::DeleteBlob(..) => "DeleteBlob",
            Endpoint::StartUpload(..) => "StartUpload",
            Endpoint::UploadStatus(..) => "UploadStatus",
            Endpoint::UploadChunk(..) => "UploadChunk",
            Endpoint::UploadFinish(..) => "UploadFinish",
            Endpoint::UploadCancel(..) => "UploadCancel",
        }
    }
    const KINDS: usize = 14;
    fn describe(needs: &[Need]) -> String {
        let one = |n: &Need| {
            let mut s = n.resource.scope(n.actions);
            if let Some(or) = n.or {
                s.push_str(&format!("|{or}"));
            }
            if n.rule == Rule::Entry {
                s.push_str("(entry)");
            }
            s
        };
        needs.iter().map(one).collect::<Vec<_>>().join(" ")
    }
    const PULL: &str = "repository:a/b:pull";
    const PUSH: &str = "repository:a/b:pull,push";
    const DELETE: &str = "repository:a/b:delete";
    const MOUNT: &str = "repository:a/b:pull,push repository:c/d:pull(entry)";
    let o = |s: &str| s.to_owned();
    let paths: Vec<(String, &[(&str, &str)])> = vec![
        (o("/v2/"), &[("GET", ""), ("HEAD", "")]),
        (o("/v2"), &[("GET", ""), ("HEAD", "")]),
        (o("/v2/_catalog"), &[("GET", "registry:catalog:*(entry)")]),
        (o("/v2/a/b/tags/list"), &[("GET", PULL)]),
        (format!("/v2/a/b/referrers/{D}"), &[("GET", PULL)]),
        (o("/v2/a/b/manifests/v1"), &[("GET", PULL), ("HEAD", PULL), ("PUT", PUSH), ("DELETE", DELETE)]),
        (format!("/v2/a/b/manifests/{D}"), &[("GET", PULL), ("HEAD", PULL), ("PUT", PUSH), ("DELETE", DELETE)]),
        (
            o("/v2/a/b/manifests/-x"),
            &[("GET", PULL), ("HEAD", PULL), ("PUT", "!TAG_INVALID"), ("DELETE", "!TAG_INVALID")],
        ),
        (format!("/v2/a/b/blobs/{D}"), &[("GET", PULL), ("HEAD", PULL), ("DELETE", DELETE)]),
        (o("/v2/a/b/blobs/uploads/"), &[("POST", PUSH)]),
        (format!("/v2/a/b/blobs/uploads/?mount={D}"), &[("POST", PUSH)]),
        (format!("/v2/a/b/blobs/uploads/?mount={D}&from=c/d"), &[("POST", MOUNT)]),
        (format!("/v2/a/b/blobs/uploads/?mount={D}&from=C/d"), &[("POST", PUSH)]),
        (
            format!("/v2/a/b/blobs/uploads/{U}"),
            &[("GET", PULL), ("PATCH", PUSH), ("PUT", PUSH), ("DELETE", "repository:a/b:delete|push")],
        ),
    ];
    let methods = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "TRACE"];
    let mut seen = std::collections::BTreeSet::new();
    for (path, table) in &paths {
        for method in methods {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let got = parse_q(&m, path);
            match (table.iter().find(|(tm, _)| *tm == method), got) {
                (Some((_, want)), Ok(e)) => {
                    assert_eq!(describe(&e.needs()), *want, "{method} {path}");
                    seen.insert(kind(&e));
                }
                (Some((_, want)), Err(e)) if want.starts_with('!') => assert_eq!(e.code(), &want[1..]),
                (Some(_), Err(e)) => panic!("{method} {path}: expected to be served, got {}", e.code()),
                (None, Ok(e)) => panic!("{method} {path} is served ({e:?}) but not in the access table"),
                (None, Err(e)) => assert_eq!(e.status().as_u16(), 405, "{method} {path}"),
            }
        }
    }
    assert_eq!(seen.len(), KINDS, "every endpoint appears in the table: {seen:?}");
}
