//! Bad input never panics and never gets a 5xx: the parsers run over many generated
//! inputs built from the characters that matter to them, and a live server answers
//! generated paths, methods, headers and bodies with 4xx (or success), never 500.

use crate::common::*;
use berth::{
    auth::scope,
    digest::Digest,
    manifest,
    names::{Reference, RepoName, Tag, UploadId},
    oci::{Query, endpoint::Endpoint, range},
};
use reqwest::Method;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A string of up to `max` pieces drawn from `pieces`.
    fn string(&mut self, pieces: &[&str], max: usize) -> String {
        let n = self.below(max + 1);
        (0..n).map(|_| pieces[self.below(pieces.len())]).collect()
    }
}

const PATH_PIECES: &[&str] = &[
    "a",
    "b",
    "0",
    "/",
    "//",
    ".",
    "..",
    "_",
    "__",
    "-",
    ":",
    "%2F",
    "%00",
    "manifests",
    "blobs",
    "uploads",
    "tags",
    "list",
    "referrers",
    "_catalog",
    "sha256",
    "sha512",
    "sha256:",
    "e3b0c44298fc1c149afbf4c8996fb924",
    "27ae41e4649b934ca495991b7852b855",
    "latest",
    "A",
    "é",
    " ",
    "?",
    "#",
    "\u{0}",
    "6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11",
];

#[test]
fn parsers_never_panic() {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let s = g.string(PATH_PIECES, 12);
        for m in [Method::GET, Method::POST, Method::DELETE] {
            let _ = Endpoint::parse(&m, &format!("/v2/{s}"), &Query::parse(s.split_once('?').map(|q| q.1)));
        }
        let _ = s.parse::<Digest>();
        let _ = s.parse::<RepoName>();
        let _ = s.parse::<Tag>();
        let _ = s.parse::<Reference>();
        let _ = s.parse::<UploadId>();
        let _ = scope::parse_all([s.as_str()]);
        let r = g.string(&["bytes=", "-", "0", "1", "9", "500", "18446744073709551615", ",", " ", "x", "/", "*"], 8);
        for size in [0, 1, 10, 1000, u64::MAX] {
            if let range::RangeOutcome::Partial(a, b) = range::parse_range(Some(&r), size) {
                assert!(a <= b && b < size, "{r:?} on {size} gave {a}-{b}");
            }
        }
        let _ = range::parse_content_range(&r);
    }
}

#[test]
fn manifest_parser_never_panics() {
    let pieces = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"schemaVersion\"",
        "2",
        "-1",
        "\"mediaType\"",
        "\"config\"",
        "\"layers\"",
        "\"manifests\"",
        "\"subject\"",
        "\"digest\"",
        "\"size\"",
        "\"urls\"",
        "\"sha256:abc\"",
        "null",
        "true",
        "\"application/vnd.oci.image.manifest.v1+json\"",
        "\"application/vnd.oci.image.index.v1+json\"",
        "1e999",
        "\"\\u0000\"",
    ];
    let mut g = Gen(42);
    for _ in 0..20_000 {
        let body = g.string(pieces, 30);
        for ct in [None, Some(manifest::OCI_MANIFEST), Some(manifest::OCI_INDEX), Some("")] {
            let _ = manifest::parse(ct, body.as_bytes());
        }
    }
}

#[tokio::test]
async fn server_answers_garbage_without_5xx() {
    let s = TestServer::start().await;
    let token = s.admin_token(&[&scope("fuzz/app", "pull,push,delete")]).await;
    s.push_image(&token, "fuzz/app", "v1", "fuzz").await;
    let methods = [Method::GET, Method::HEAD, Method::PUT, Method::POST, Method::PATCH, Method::DELETE];
    let mut g = Gen(7);
    for i in 0..400 {
        let tail = g.string(PATH_PIECES, 10);
        let path = if i % 2 == 0 { format!("/v2/fuzz/app/{tail}") } else { format!("/v2/{tail}") };
        // Only characters a URL may carry; the rest is the client library's business.
        let path: String = path.chars().filter(|c| c.is_ascii_graphic() && *c != '#').collect();
        let method = methods[g.below(methods.len())].clone();
        let mut rb = s.req(method.clone(), &path, Some(&token));
        match g.below(4) {
            0 => rb = rb.header("content-range", g.string(&["0", "-", "5", "9", "x", " "], 6)),
            1 => rb = rb.header("range", g.string(&["bytes=", "0", "-", "5", ",", "x"], 6)),
            2 => rb = rb.header("content-type", g.string(&["application/", "json", ";", "x=y", " "], 4)),
            _ => {}
        }
        let body = g.string(&["{", "}", "\"a\"", ":", "1", "[", "]", "x"], 20);
        let resp = rb.body(body).send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(resp.status().as_u16() < 500, "{method} {path} -> {}", resp.status());
    }
    // The server is still healthy and the image intact.
    expect_status(s.get("/v2/fuzz/app/manifests/v1", Some(&token)).await, 200, "after the garbage").await;
}
