//! The operational surface against a real server on port 0: health and readiness (also
//! with PostgreSQL stopped and started again), Prometheus metrics after traffic, request
//! ids, the allocator figures, the per-address login throttle (with and without a trusted proxy), and the limits
//! (header size, request deadline, uploads per principal).
//!
//! The metrics recorder is process-wide, so metric assertions are lower bounds.

use std::time::{Duration, Instant};

use crate::common::{
    ADMIN_PASSWORD, ADMIN_USER, TestServer, header, scope, services::Postgres, sha256_digest, test_bytes,
};
use berth::auth::throttle::FREE_FAILURES_PER_ADDRESS;
use reqwest::{Method, StatusCode};

/// The value of the sample `name{…}` whose labels include every `labels` pair.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        let wanted = labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        (n == name && wanted).then(|| value.parse().ok()).flatten()
    })
}

async fn metrics_text(s: &TestServer) -> String {
    let resp = s.get("/metrics", None).await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "content-type").unwrap_or_default().starts_with("text/plain"));
    resp.text().await.unwrap()
}

#[tokio::test]
async fn health_and_readiness() {
    let s = TestServer::start().await;
    let r = s.get("/healthz", None).await;
    assert_eq!(r.status(), 200);
    let r = s.get("/readyz", None).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ready", "database": "ok", "storage": "ok"}));
    // Storage gone: not ready, and the answer names which part failed.
    std::fs::rename(s.data_dir().join("blobs"), s.data_dir().join("blobs.away")).unwrap();
    let r = s.get("/readyz", None).await;
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!((body["database"].as_str(), body["storage"].as_str()), (Some("ok"), Some("failed")));
    std::fs::rename(s.data_dir().join("blobs.away"), s.data_dir().join("blobs")).unwrap();
    assert_eq!(s.get("/readyz", None).await.status(), 200);
}

#[tokio::test]
async fn readiness_follows_postgres_down_and_up() {
    let pg = Postgres::start();
    let url = pg.database("ready").await;
    let s = TestServer::start_with(move |c| c.database.url = Some(url.clone())).await;
    assert_eq!(s.get("/readyz", None).await.status(), 200);

    pg.pause();
    let started = Instant::now();
    let r = s.get("/readyz", None).await;
    assert_eq!(r.status(), 503, "readyz with PostgreSQL stopped");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_ne!(body["database"], "ok");
    assert_eq!(body["storage"], "ok");
    assert!(started.elapsed() < Duration::from_secs(5), "readyz must answer within its timeout");
    // The process itself is still up.
    assert_eq!(s.get("/healthz", None).await.status(), 200);
    let m = metrics_text(&s).await;
    assert!(sample(&m, "berth_internal_errors_total", &[("source", "database")]).unwrap_or(0.0) >= 1.0, "{m}");

    pg.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if s.get("/readyz", None).await.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "readyz did not recover after PostgreSQL came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And the registry works again.
    s.admin_token(&[&scope("back/up", "pull,push")]).await;
}

#[tokio::test]
async fn metrics_after_traffic() {
    let s = TestServer::start_with(|c| {
        c.gc.interval_secs = 1;
        c.gc.blob_grace_secs = 0;
    })
    .await;
    let token = s.repo_token(&["metrics/app"]).await;
    let blob = test_bytes(300_000, 7);
    let digest = s.push_blob(&token, "metrics/app", &blob).await;
    let r = s.get(&format!("/v2/metrics/app/blobs/{digest}"), Some(&token)).await;
    assert_eq!(r.bytes().await.unwrap().len(), blob.len());
    assert_eq!(s.get("/v2/", None).await.status(), 401);
    assert_eq!(s.token_response(Some((ADMIN_USER, "wrong")), &[]).await.status(), 401);
    // An unreferenced blob for the collector (GC runs every second here).
    let orphan = test_bytes(5000, 8);
    let orphan_digest = s.push_blob(&token, "metrics/app", &orphan).await;
    assert_eq!(s.delete(&format!("/v2/metrics/app/blobs/{orphan_digest}"), Some(&token)).await.status(), 202);

    let deadline = Instant::now() + Duration::from_secs(20);
    let m = loop {
        let m = metrics_text(&s).await;
        if sample(&m, "berth_gc_freed_bytes_total", &[]).unwrap_or(0.0) >= orphan.len() as f64 {
            break m;
        }
        assert!(Instant::now() < deadline, "no GC pass freed the orphan:\n{m}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let at_least = |name: &str, labels: &[(&str, &str)], min: f64| {
        let v = sample(&m, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{m}"));
        assert!(v >= min, "{name} {labels:?} = {v}, expected at least {min}");
    };
    at_least("berth_http_requests_total", &[("family", "blobs"), ("method", "GET"), ("status", "200")], 1.0);
    at_least("berth_http_requests_total", &[("family", "uploads"), ("method", "POST"), ("status", "201")], 2.0);
    at_least("berth_http_requests_total", &[("family", "base"), ("method", "GET"), ("status", "401")], 1.0);
    at_least("berth_http_requests_total", &[("family", "token"), ("method", "GET"), ("status", "200")], 1.0);
    at_least(
        "berth_http_request_duration_seconds_bucket",
        &[("family", "blobs"), ("method", "GET"), ("le", "+Inf")],
        1.0,
    );
    at_least("berth_http_request_duration_seconds_count", &[("family", "uploads"), ("method", "POST")], 2.0);
    at_least("berth_http_received_bytes_total", &[("family", "uploads")], blob.len() as f64);
    at_least("berth_http_sent_bytes_total", &[("family", "blobs")], blob.len() as f64);
    at_least("berth_tokens_issued_total", &[], 1.0);
    at_least("berth_tokens_refused_total", &[("reason", "credentials")], 1.0);
    at_least("berth_gc_passes_total", &[("result", "ok")], 1.0);
    at_least("berth_gc_blobs_removed_total", &[], 1.0);
    at_least("berth_gc_duration_seconds_count", &[], 1.0);
    // Two pushes: each session's insert, blob record and delete went through the writer.
    at_least("berth_db_group_commits_total", &[("result", "ok")], 1.0);
    at_least("berth_db_group_writes_total", &[], 6.0);
    at_least("berth_db_group_commit_duration_seconds_count", &[], 1.0);
    assert!(sample(&m, "berth_uploads_in_flight", &[]).is_some(), "{m}");
    assert!(m.contains("# TYPE berth_http_request_duration_seconds histogram"), "{m}");
    // No repository name ever becomes a label.
    assert!(!m.contains("metrics/app"), "{m}");
}

#[tokio::test]
async fn metrics_on_a_separate_listener() {
    let port = crate::opsutil::free_port();
    let s = TestServer::start_with(move |c| c.metrics.listen = Some(format!("127.0.0.1:{port}"))).await;
    assert_eq!(s.get("/metrics", None).await.status(), 404);
    let r = s.client().get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("berth_http_requests_total"));
}

#[tokio::test]
async fn metrics_behind_a_token() {
    let s = TestServer::start_with(|c| c.metrics.token = Some("scrape-secret-1".into())).await;
    for auth in [None, Some("Bearer wrong"), Some("Basic c2NyYXBlLXNlY3JldC0x"), Some("Bearer scrape-secret-")] {
        let mut req = s.req(Method::GET, "/metrics", None);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert!(!r.text().await.unwrap().contains("berth_http_requests_total"), "{auth:?}");
    }
    let r =
        s.req(Method::GET, "/metrics", None).header("authorization", "Bearer scrape-secret-1").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("berth_http_requests_total"));
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let s = TestServer::start().await;
    let r = s.req(Method::GET, "/v2/", None).header("x-request-id", "build-42.step:7").send().await.unwrap();
    assert_eq!(header(&r, "x-request-id").as_deref(), Some("build-42.step:7"));
    let r = s.get("/v2/", None).await;
    let made = header(&r, "x-request-id").expect("a generated request id");
    assert_eq!(made.len(), 32, "{made}");
    // One that could garble a log line is replaced.
    let r = s.req(Method::GET, "/healthz", None).header("x-request-id", "a b=\"c\"").send().await.unwrap();
    let id = header(&r, "x-request-id").unwrap();
    assert!(!id.contains(' ') && id.len() == 32, "{id}");
}

/// Failed logins under distinct usernames (so no account throttle applies) from one
/// address until a 429; returns how many were answered 401 first.
async fn fail_until_throttled(s: &TestServer, forwarded_for: impl Fn(usize) -> Option<String>) -> usize {
    for i in 0..(FREE_FAILURES_PER_ADDRESS as usize + 8) {
        let mut rb = s.client().get(s.url("/token")).query(&[("service", "berth")]);
        rb = rb.basic_auth(format!("nobody{i}"), Some("wrong"));
        if let Some(xff) = forwarded_for(i) {
            rb = rb.header("x-forwarded-for", xff);
        }
        let r = rb.send().await.unwrap();
        match r.status() {
            StatusCode::UNAUTHORIZED => continue,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(header(&r, "retry-after").is_some());
                return i;
            }
            other => panic!("login {i}: unexpected {other}"),
        }
    }
    panic!("no 429 after {} failed logins from one address", FREE_FAILURES_PER_ADDRESS + 8);
}

#[tokio::test]
async fn per_address_login_throttle() {
    let s = TestServer::start().await;
    // X-Forwarded-For from an untrusted peer is ignored: varying it does not escape.
    let failures = fail_until_throttled(&s, |i| Some(format!("198.51.100.{i}"))).await;
    assert!(failures >= FREE_FAILURES_PER_ADDRESS as usize, "throttled after only {failures} failures");
    // The address is blocked even for the right password.
    let r = s.token_response(Some((ADMIN_USER, ADMIN_PASSWORD)), &[]).await;
    assert_eq!(r.status(), 429);
    let m = metrics_text(&s).await;
    assert!(sample(&m, "berth_logins_throttled_total", &[]).unwrap_or(0.0) >= 2.0, "{m}");
}

#[tokio::test]
async fn trusted_proxy_names_the_client() {
    let s = TestServer::start_with(|c| c.auth.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let failures = fail_until_throttled(&s, |_| Some("203.0.113.5, 198.51.100.7".into())).await;
    assert!(failures >= FREE_FAILURES_PER_ADDRESS as usize);
    let login = |xff: &'static str| {
        s.client()
            .get(s.url("/token"))
            .query(&[("service", "berth")])
            .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
            .header("x-forwarded-for", xff)
            .send()
    };
    // The client behind the proxy is blocked, whatever it claims left of itself…
    assert_eq!(login("10.0.0.1, 198.51.100.7").await.unwrap().status(), 429);
    // …while another client of the same proxy is not.
    assert_eq!(login("198.51.100.8").await.unwrap().status(), 200);
}

#[tokio::test]
async fn header_size_limit() {
    let s = TestServer::start_with(|c| c.limits.max_header_bytes = 4096).await;
    let r = s.req(Method::GET, "/v2/", None).header("x-padding", "a".repeat(3000)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s.req(Method::GET, "/v2/", None).header("x-padding", "a".repeat(5000)).send().await.unwrap();
    assert_eq!(r.status(), 431);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "SIZE_INVALID");
    // hyper's own bound holds for a huge header on the default settings.
    let s = TestServer::start().await;
    let r = s.req(Method::GET, "/v2/", None).header("x-padding", "a".repeat(600_000)).send().await.unwrap();
    assert_eq!(r.status(), 431);
}

#[tokio::test]
async fn requests_without_a_body_have_a_deadline() {
    let s = TestServer::start_with(|c| c.limits.request_timeout_secs = 1).await;
    // Hold SQLite's write lock: issuing a push token that creates a collection must wait.
    use sqlx::{Connection, Executor};
    let url = format!("sqlite://{}/berth.db", s.data_dir().display());
    let mut lock = sqlx::SqliteConnection::connect(&url).await.unwrap();
    lock.execute("BEGIN IMMEDIATE").await.unwrap();
    let started = Instant::now();
    let r = s.token_response(Some((ADMIN_USER, ADMIN_PASSWORD)), &[&scope("slow/app", "pull,push")]).await;
    assert_eq!(r.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    lock.execute("ROLLBACK").await.unwrap();
    lock.close().await.unwrap();
    // Uploads are not bound by it (the body idle timeout guards them): a slow-arriving
    // body is covered in tests/limits.rs.
    s.admin_token(&[&scope("slow/app", "pull,push")]).await;
}

#[tokio::test]
async fn uploads_per_principal() {
    let s = TestServer::start_with(|c| c.limits.uploads_per_principal = 1).await;
    s.create_user("alice", "user", "alice-password").await;
    let admin = s.repo_token(&["quota/app"]).await;
    let location = s.start_upload(&admin, "quota/app").await;
    // A PATCH whose body stalls holds admin's one slot.
    let head = vec![
        format!("PATCH {location} HTTP/1.1"),
        format!("Host: {}", s.addr()),
        format!("Authorization: Bearer {admin}"),
        "Content-Type: application/octet-stream".into(),
        "Content-Length: 2000".into(),
    ];
    let stalled = crate::opsutil::partial_request(&s.addr().to_string(), &head, &[7u8; 1000]).await;
    let post = |token: String| {
        let s = &s;
        async move { s.req(Method::POST, "/v2/quota/app/blobs/uploads/", Some(&token)).send().await.unwrap().status() }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = post(admin.clone()).await;
        if st == 429 {
            break;
        }
        assert_eq!(st, 202);
        assert!(Instant::now() < deadline, "the stalled PATCH never took the slot");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Another principal is not affected.
    let alice = s.token(Some(("alice", "alice-password")), &[&scope("alice/app", "pull,push")]).await;
    assert_eq!(s.req(Method::POST, "/v2/alice/app/blobs/uploads/", Some(&alice)).send().await.unwrap().status(), 202);
    // The client goes away: the slot comes back, and the upload kept what arrived.
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(5);
    while post(admin.clone()).await != 202 {
        assert!(Instant::now() < deadline, "the slot was not released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = s.get(&location, Some(&admin)).await;
    assert_eq!(header(&r, "range").as_deref(), Some("0-999"));
    let rest = [7u8; 1000];
    let r = s.finish_upload(&admin, &location, &sha256_digest(&[7u8; 2000]), &rest).await;
    assert_eq!(r.status(), 201);
}

/// The allocator's own figures are in `/metrics`, read at the scrape: live bytes are
/// positive and never more than the pages holding them, nor those more than resident.
#[tokio::test]
async fn metrics_carry_the_allocator_figures() {
    let s = TestServer::start().await;
    let m = metrics_text(&s).await;
    let get =
        |kind: &str| sample(&m, "berth_allocator_bytes", &[("kind", kind)]).unwrap_or_else(|| panic!("{kind}: {m}"));
    let (allocated, active, resident) = (get("allocated"), get("active"), get("resident"));
    assert!(allocated > 0.0, "{m}");
    assert!(allocated <= active && active <= resident, "allocated {allocated}, active {active}, resident {resident}");
    get("metadata");
    get("retained");
}
