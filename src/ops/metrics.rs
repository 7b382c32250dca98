//! Prometheus metrics through the `metrics` facade and `metrics-exporter-prometheus`. The
//! recorder is process-wide (installed once, on the first server built); every metric name
//! is defined here, and other modules record through the small functions below.
//!
//! Labels are bounded: an endpoint *family* (never a repository name), the method (known
//! methods, else `other`), the status code.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use axum::{
    http::{HeaderMap, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::{Digest as _, Sha256};

pub const REQUESTS: &str = "berth_http_requests_total";
pub const DURATION: &str = "berth_http_request_duration_seconds";
pub const RECEIVED: &str = "berth_http_received_bytes_total";
pub const SENT: &str = "berth_http_sent_bytes_total";
pub const UPLOADS_IN_FLIGHT: &str = "berth_uploads_in_flight";
pub const UPLOADS_REFUSED: &str = "berth_uploads_refused_total";
pub const TOKENS_ISSUED: &str = "berth_tokens_issued_total";
pub const TOKENS_REFUSED: &str = "berth_tokens_refused_total";
pub const LOGINS_THROTTLED: &str = "berth_logins_throttled_total";
pub const GC_PASSES: &str = "berth_gc_passes_total";
pub const GC_BYTES_FREED: &str = "berth_gc_freed_bytes_total";
pub const GC_BLOBS_REMOVED: &str = "berth_gc_blobs_removed_total";
pub const GC_DURATION: &str = "berth_gc_duration_seconds";
pub const INTERNAL_ERRORS: &str = "berth_internal_errors_total";
pub const DIRECTORY_CHECKS: &str = "berth_directory_checks_total";
pub const DIRECTORY_DURATION: &str = "berth_directory_check_duration_seconds";
pub const ALLOCATOR: &str = "berth_allocator_bytes";
pub const DB_COMMITS: &str = "berth_db_group_commits_total";
pub const DB_WRITES: &str = "berth_db_group_writes_total";
pub const DB_COMMIT_DURATION: &str = "berth_db_group_commit_duration_seconds";

const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
const GC_BUCKETS: &[f64] = &[0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns its handle; `None` if another
/// recorder was installed first (then `/metrics` answers 404).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(DURATION.into()), LATENCY_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(GC_DURATION.into()), GC_BUCKETS))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(DIRECTORY_DURATION.into()), LATENCY_BUCKETS))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(DB_COMMIT_DURATION.into()), LATENCY_BUCKETS));
            let handle = match builder.and_then(metrics_exporter_prometheus::PrometheusBuilder::install_recorder) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics is off");
                    return None;
                }
            };
            describe();
            // Histograms are drained into their buckets by the upkeep; rendering does it
            // too, but a scraper that goes away must not let samples pile up.
            let upkeep = handle.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_secs(10));
                    loop {
                        tick.tick().await;
                        upkeep.run_upkeep();
                    }
                });
            }
            Some(handle)
        })
        .clone()
}

fn describe() {
    describe_counter!(REQUESTS, "HTTP requests by endpoint family, method and status");
    describe_histogram!(DURATION, metrics::Unit::Seconds, "Time from request to the end of the response body");
    describe_counter!(RECEIVED, metrics::Unit::Bytes, "Request body bytes received");
    describe_counter!(SENT, metrics::Unit::Bytes, "Response body bytes sent");
    describe_gauge!(UPLOADS_IN_FLIGHT, "Upload requests (POST, PATCH, PUT of blobs) being served");
    describe_counter!(UPLOADS_REFUSED, "Upload requests refused by limits.uploads_per_principal");
    describe_counter!(TOKENS_ISSUED, "Access tokens issued by /token");
    describe_counter!(TOKENS_REFUSED, "Token requests refused (bad credentials, anonymous on a private registry)");
    describe_counter!(LOGINS_THROTTLED, "Logins refused with 429 by the failed-login throttle");
    describe_counter!(GC_PASSES, "Garbage-collection passes by result");
    describe_counter!(GC_BYTES_FREED, metrics::Unit::Bytes, "Blob bytes freed by garbage collection");
    describe_counter!(GC_BLOBS_REMOVED, "Blobs removed by garbage collection");
    describe_histogram!(GC_DURATION, metrics::Unit::Seconds, "Duration of garbage-collection passes");
    describe_counter!(DIRECTORY_CHECKS, "Directory (LDAP) checks by kind and result");
    describe_histogram!(DIRECTORY_DURATION, metrics::Unit::Seconds, "Duration of directory (LDAP) checks");
    describe_counter!(INTERNAL_ERRORS, "Internal errors by source (database, storage, other)");
    describe_counter!(DB_COMMITS, "Group commits of the database writer, by result");
    describe_counter!(DB_WRITES, "Writes (manifests, tags, upload sessions, blob records) in group commits");
    describe_histogram!(
        DB_COMMIT_DURATION,
        metrics::Unit::Seconds,
        "Time of one group commit, from its transaction's start to the durable commit"
    );
    describe_gauge!(
        ALLOCATOR,
        metrics::Unit::Bytes,
        "jemalloc's statistics at the scrape: allocated (live objects), active (their pages), \
         resident (pages the allocator holds in RAM, freed ones not yet returned included), \
         metadata, retained (address space kept unmapped)"
    );
}

/// Reads jemalloc's statistics into [`ALLOCATOR`] gauges (the binary's allocator; in a
/// test binary, which keeps the system allocator, they cover little).
fn allocator_gauges() {
    use tikv_jemalloc_ctl::{epoch, stats};
    if epoch::advance().is_err() {
        return;
    }
    type Read = fn() -> tikv_jemalloc_ctl::Result<usize>;
    let reads: [(&'static str, Read); 5] = [
        ("allocated", stats::allocated::read),
        ("active", stats::active::read),
        ("resident", stats::resident::read),
        ("metadata", stats::metadata::read),
        ("retained", stats::retained::read),
    ];
    for (kind, read) in reads {
        if let Ok(v) = read() {
            gauge!(ALLOCATOR, "kind" => kind).set(v as f64);
        }
    }
}

/// `GET /metrics`: the Prometheus text exposition.
/// The `/metrics` handler; with a `token`, only for requests bearing it (a missing or wrong
/// one is 401; the SHA-256 of each side is compared, so timing tells nothing of the token).
pub async fn render(token: Option<Arc<str>>, headers: HeaderMap) -> Response {
    if let Some(want) = token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, t)| t.trim());
        if Sha256::digest(given.as_bytes()) != Sha256::digest(want.as_bytes()) {
            return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")])
                .into_response();
        }
    }
    match HANDLE.get().cloned().flatten() {
        Some(h) => {
            allocator_gauges();
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], h.render()).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The endpoint family of a path: a bounded label. Judged from the path's shape alone (the
/// way the Distribution API routes match from the end); whether the name in it is valid is
/// the handler's business and shows in the status.
pub fn family(path: &str) -> &'static str {
    if let Some(rest) = path.strip_prefix("/v2") {
        return match rest.strip_prefix('/') {
            None if rest.is_empty() => "base",
            None => "other",
            Some(rest) => v2_family(rest),
        };
    }
    match path {
        "/token" => "token",
        "/token/jwks.json" => "jwks",
        "/healthz" | "/readyz" => "health",
        "/metrics" => "metrics",
        p if p == "/api/v1" || p.starts_with("/api/v1/") => "api",
        p if p == "/" || p == "/ui" || p.starts_with("/ui/") => "ui",
        _ => "other",
    }
}

fn v2_family(rest: &str) -> &'static str {
    if rest.is_empty() {
        return "base";
    }
    if rest == "_catalog" {
        return "catalog";
    }
    if rest.ends_with("/tags/list") {
        return "tags";
    }
    if rest.ends_with("/blobs/uploads/") || rest.ends_with("/blobs/uploads") {
        return "uploads";
    }
    let Some((head, _)) = rest.rsplit_once('/') else { return "v2_other" };
    if head.ends_with("/blobs/uploads") {
        "uploads"
    } else if head.ends_with("/blobs") {
        "blobs"
    } else if head.ends_with("/manifests") {
        "manifests"
    } else if head.ends_with("/referrers") {
        "referrers"
    } else {
        "v2_other"
    }
}

/// A bounded method label.
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// One finished request.
pub fn request(family: &'static str, method: &'static str, status: u16, secs: f64, bytes_in: u64, bytes_out: u64) {
    counter!(REQUESTS, "family" => family, "method" => method, "status" => status.to_string()).increment(1);
    histogram!(DURATION, "family" => family, "method" => method).record(secs);
    if bytes_in > 0 {
        counter!(RECEIVED, "family" => family).increment(bytes_in);
    }
    if bytes_out > 0 {
        counter!(SENT, "family" => family).increment(bytes_out);
    }
}

/// One group commit of the database writer: how many writes it carried, how long it took.
pub fn db_group_commit(writes: usize, secs: f64, ok: bool) {
    counter!(DB_COMMITS, "result" => if ok { "ok" } else { "error" }).increment(1);
    counter!(DB_WRITES).increment(writes as u64);
    histogram!(DB_COMMIT_DURATION).record(secs);
}

pub fn upload_started() {
    gauge!(UPLOADS_IN_FLIGHT).increment(1.0);
}

pub fn upload_ended() {
    gauge!(UPLOADS_IN_FLIGHT).decrement(1.0);
}

pub fn upload_refused() {
    counter!(UPLOADS_REFUSED).increment(1);
}

pub fn token_issued() {
    counter!(TOKENS_ISSUED).increment(1);
}

/// `reason`: `credentials`, `anonymous` or `directory` (unavailable).
pub fn token_refused(reason: &'static str) {
    counter!(TOKENS_REFUSED, "reason" => reason).increment(1);
}

/// One check against the directory: `kind` `login` (a password) or `recheck` (an API or
/// refresh token's user); `result` `ok`, `refused` or `unavailable`.
pub fn directory_check(kind: &'static str, result: &'static str, secs: f64) {
    counter!(DIRECTORY_CHECKS, "kind" => kind, "result" => result).increment(1);
    histogram!(DIRECTORY_DURATION, "kind" => kind).record(secs);
}

pub fn login_throttled() {
    counter!(LOGINS_THROTTLED).increment(1);
}

/// One garbage-collection pass.
pub fn gc_pass(ok: bool, secs: f64, blobs_removed: u64, bytes_freed: u64) {
    counter!(GC_PASSES, "result" => if ok { "ok" } else { "error" }).increment(1);
    histogram!(GC_DURATION).record(secs);
    counter!(GC_BLOBS_REMOVED).increment(blobs_removed);
    counter!(GC_BYTES_FREED).increment(bytes_freed);
}

/// Where an internal error came from, judged by the error chain.
pub fn error_source(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        if cause.is::<sqlx::Error>() {
            return "database";
        }
        if cause.is::<object_store::Error>() || cause.is::<std::io::Error>() {
            return "storage";
        }
    }
    "other"
}

/// Counts an internal error by its source.
pub fn internal_error(e: &anyhow::Error) {
    counter!(INTERNAL_ERRORS, "source" => error_source(e)).increment(1);
}

/// Counts a failed readiness check of `source` (`database` or `storage`).
pub fn unready(source: &'static str) {
    counter!(INTERNAL_ERRORS, "source" => source).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for (path, want) in [
            ("/v2/", "base"),
            ("/v2", "base"),
            ("/v2/_catalog", "catalog"),
            ("/v2/a/b/tags/list", "tags"),
            ("/v2/a/manifests/latest", "manifests"),
            (&format!("/v2/a/blobs/{d}"), "blobs"),
            ("/v2/a/blobs/uploads/", "uploads"),
            (&format!("/v2/a/referrers/{d}"), "referrers"),
            ("/v2/A/manifests/x", "manifests"),
            ("/v2/a/whatever", "v2_other"),
            ("/v2/a/blobs/uploads/6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11", "uploads"),
            ("/v2x", "other"),
            ("/token", "token"),
            ("/token/jwks.json", "jwks"),
            ("/api/v1/users", "api"),
            ("/api/v10", "other"),
            ("/healthz", "health"),
            ("/metrics", "metrics"),
            ("/favicon.ico", "other"),
            ("/ui/r/a/b/-/manifests/x", "ui"),
            ("/", "ui"),
            ("/uix", "other"),
        ] {
            assert_eq!(family(path), want, "{path}");
        }
    }

    #[test]
    fn error_sources() {
        let db = anyhow::Error::from(sqlx::Error::PoolTimedOut).context("loading");
        assert_eq!(error_source(&db), "database");
        let io = anyhow::Error::from(std::io::Error::other("disk")).context("writing");
        assert_eq!(error_source(&io), "storage");
        assert_eq!(error_source(&anyhow::anyhow!("x")), "other");
    }
}
