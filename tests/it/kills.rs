//! Crash safety under load (DESIGN §6): concurrent pushers of the three upload shapes that
//! clients use — a monolithic `POST ?digest=` (oras, containerd), ordered `Content-Range`
//! PATCHes (the conformance suite), one streamed PATCH without `Content-Range` (docker,
//! podman) — while the real `berth serve` is killed with SIGKILL at random moments and
//! started again on the same data dir. After every restart:
//! - every push that was acknowledged (201) reads back intact;
//! - every open session either resumes from an offset between its last acknowledged one
//!   and what was sent, and completes, or answers 404 `BLOB_UPLOAD_UNKNOWN`;
//! - a completing PUT cut by the kill, sent again, answers 201 (or 404 once the session is
//!   gone, and the blob is then readable);
//! - nothing, before or after a kill, answers 5xx.
//!
//! The kill times and blob sizes come from a seed that the test prints;
//! `KILLS_SEED=<n>` replays a run. `KILLS_ROUNDS=<n>` and `KILLS_PUSHERS=<n>`
//! make a longer one (the defaults keep `cargo test` short; no `BERTH_` prefix:
//! the server refuses unknown `BERTH_*` variables).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::process::{Proc, range_end};
use crate::common::services::{Moto, Postgres};
use crate::common::*;
use bytes::Bytes;
use reqwest::{Client, Method, Response};

const PUSHERS: usize = 12;
const KILLS: usize = 8;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
/// Blobs are up to this large: small enough that many pushes complete between kills.
const MAX_BLOB: u64 = 384 << 10;

#[derive(Clone, Copy, Debug)]
enum Shape {
    Monolithic,
    Chunked,
    Streamed,
}

/// xorshift64*: reproducible from the printed seed, no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone)]
struct Blob {
    repo: String,
    data: Arc<Vec<u8>>,
    digest: String,
}

/// What a pusher was doing when the server went away.
enum InFlight {
    /// A monolithic POST: the client knows of no session.
    Monolithic(Blob),
    /// A session: the offset last acknowledged, the bytes sent beyond it, and whether the
    /// completing PUT was under way.
    Session { blob: Blob, shape: Shape, location: String, acked: usize, sent: usize, completing: bool },
}

/// What one pusher saw during one round.
#[derive(Default)]
struct Tally {
    acked: Vec<Blob>,
    in_flight: Option<InFlight>,
    failures: Vec<String>,
}

/// Counts over the whole run, for the report.
#[derive(Debug, Default)]
struct Counts {
    pushes_verified: usize,
    sessions_resumed: usize,
    sessions_404: usize,
    completions_retried_201: usize,
    completions_gone_404: usize,
    monolithic_landed: usize,
    monolithic_absent: usize,
    five_xx: usize,
}

struct Pusher {
    client: Client,
    base: String,
    token: String,
}

impl Pusher {
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{}", self.base, path)).bearer_auth(&self.token)
    }

    /// Pushes blobs of `shape` until the server goes away.
    async fn run(self, repo: String, shape: Shape, seed: u64) -> Tally {
        let mut rng = Rng(seed | 1);
        let mut tally = Tally::default();
        loop {
            let len = 1 + rng.below(MAX_BLOB) as usize;
            let data = Arc::new(test_bytes(len, rng.next()));
            let blob = Blob { repo: repo.clone(), digest: sha256_digest(&data), data };
            match self.push(&blob, shape, rng.below(3) as usize + 2, &mut tally).await {
                Ok(true) => tally.acked.push(blob),
                Ok(false) => return tally,
                Err(in_flight) => {
                    tally.in_flight = in_flight;
                    return tally;
                }
            }
        }
    }

    /// One push: `Ok(true)` acknowledged, `Ok(false)` refused (a failure is recorded),
    /// `Err` the server went away, with what was under way.
    async fn push(
        &self,
        blob: &Blob,
        shape: Shape,
        pieces: usize,
        tally: &mut Tally,
    ) -> Result<bool, Option<InFlight>> {
        let repo = &blob.repo;
        if let Shape::Monolithic = shape {
            let resp = self
                .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={}", blob.digest))
                .body(blob.data.to_vec())
                .send()
                .await
                .map_err(|_| Some(InFlight::Monolithic(blob.clone())))?;
            return Ok(expect(resp, 201, "monolithic POST", tally).await);
        }
        let resp = self.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).send().await.map_err(|_| None)?;
        let Some(location) = header(&resp, "location") else {
            return Ok(expect(resp, 202, "POST", tally).await);
        };
        let len = blob.data.len();
        let in_flight = |acked, sent, completing| {
            Some(InFlight::Session { blob: blob.clone(), shape, location: location.clone(), acked, sent, completing })
        };
        match shape {
            Shape::Chunked => {
                let step = len.div_ceil(pieces);
                let mut offset = 0;
                for chunk in blob.data.chunks(step) {
                    let resp = self
                        .req(Method::PATCH, &location)
                        .header("content-range", format!("{}-{}", offset, offset + chunk.len() - 1))
                        .body(chunk.to_vec())
                        .send()
                        .await
                        .map_err(|_| in_flight(offset, chunk.len(), false))?;
                    if !expect(resp, 202, "Content-Range PATCH", tally).await {
                        return Ok(false);
                    }
                    offset += chunk.len();
                }
            }
            Shape::Streamed => {
                let parts: Vec<Bytes> = blob.data.chunks(32 << 10).map(Bytes::copy_from_slice).collect();
                let stream = futures_util::stream::iter(parts.into_iter().map(Ok::<_, std::io::Error>));
                let resp = self
                    .req(Method::PATCH, &location)
                    .body(reqwest::Body::wrap_stream(stream))
                    .send()
                    .await
                    .map_err(|_| in_flight(0, len, false))?;
                if !expect(resp, 202, "streamed PATCH", tally).await {
                    return Ok(false);
                }
            }
            Shape::Monolithic => unreachable!("handled above"),
        }
        let resp = self
            .req(Method::PUT, &format!("{location}?digest={}", blob.digest))
            .send()
            .await
            .map_err(|_| in_flight(len, 0, true))?;
        Ok(expect(resp, 201, "completing PUT", tally).await)
    }
}

/// Every 5xx any request of the test got.
static FIVE_XX: AtomicUsize = AtomicUsize::new(0);

/// The response's status, counting it if it is a 5xx.
fn status_of(resp: &Response) -> u16 {
    let status = resp.status().as_u16();
    if status >= 500 {
        FIVE_XX.fetch_add(1, Ordering::Relaxed);
    }
    status
}

/// Whether `resp` has the `want`ed status; records anything else as a failure.
async fn expect(resp: Response, want: u16, what: &str, tally: &mut Tally) -> bool {
    let status = status_of(&resp);
    if status == want {
        return true;
    }
    let body = resp.text().await.unwrap_or_default();
    tally.failures.push(format!("{what}: {status} {body}"));
    false
}

/// After a restart: the round's acknowledged pushes read back, its open sessions resume
/// or are unknown, its cut completions finish. Failures go into `failures`.
async fn verify(p: &Proc, token: &str, tally: Tally, counts: &mut Counts, failures: &mut Vec<String>) {
    for blob in &tally.acked {
        match read_back(p, token, blob).await {
            Ok(true) => counts.pushes_verified += 1,
            Ok(false) => failures.push(format!("acknowledged {} in {} is gone", blob.digest, blob.repo)),
            Err(e) => failures.push(e),
        }
    }
    let result = match tally.in_flight {
        None => Ok(()),
        Some(InFlight::Monolithic(blob)) => read_back(p, token, &blob).await.map(|landed| {
            if landed {
                counts.monolithic_landed += 1;
            } else {
                counts.monolithic_absent += 1;
            }
        }),
        Some(InFlight::Session { blob, location, acked, completing: true, .. }) => {
            finish(p, token, &blob, &location, acked, counts).await
        }
        Some(InFlight::Session { blob, shape, location, acked, sent, completing: false }) => {
            resume(p, token, &blob, shape, &location, acked, sent, counts).await
        }
    };
    if let Err(e) = result {
        failures.push(e);
    }
}

/// GET the blob: `Ok(true)` intact, `Ok(false)` 404, `Err` anything else.
async fn read_back(p: &Proc, token: &str, blob: &Blob) -> Result<bool, String> {
    let path = format!("/v2/{}/blobs/{}", blob.repo, blob.digest);
    let resp = p.req(Method::GET, &path, token).send().await.map_err(|e| format!("GET {path}: {e}"))?;
    match status_of(&resp) {
        200 => {
            let body = resp.bytes().await.map_err(|e| format!("GET {path}: {e}"))?;
            if body.as_ref() == blob.data.as_slice() { Ok(true) } else { Err(format!("GET {path}: wrong bytes")) }
        }
        404 => Ok(false),
        s => Err(format!("GET {path}: {s} {}", resp.text().await.unwrap_or_default())),
    }
}

/// A completing PUT cut by the kill, sent again.
async fn finish(
    p: &Proc,
    token: &str,
    blob: &Blob,
    location: &str,
    acked: usize,
    c: &mut Counts,
) -> Result<(), String> {
    let resp = p.req(Method::PUT, &format!("{location}?digest={}", blob.digest), token).send().await;
    let resp = resp.map_err(|e| format!("PUT again: {e}"))?;
    let status = status_of(&resp);
    match status {
        201 => c.completions_retried_201 += 1,
        404 => c.completions_gone_404 += 1,
        _ => return Err(format!("PUT again: {status} {}", resp.text().await.unwrap_or_default())),
    }
    // Every byte was acknowledged before the PUT, so the blob must be there either way.
    match read_back(p, token, blob).await? {
        true => Ok(()),
        false if acked < blob.data.len() => Ok(()),
        false => Err(format!("PUT again answered {status} but {} is not readable", blob.digest)),
    }
}

/// A session cut mid-PATCH: its status, then the rest from the reported offset.
#[expect(clippy::too_many_arguments, reason = "one call site; a struct would only rename them")]
async fn resume(
    p: &Proc,
    token: &str,
    blob: &Blob,
    shape: Shape,
    location: &str,
    acked: usize,
    sent: usize,
    c: &mut Counts,
) -> Result<(), String> {
    let resp = p.req(Method::GET, location, token).send().await.map_err(|e| format!("status: {e}"))?;
    let offset = match status_of(&resp) {
        204 => range_end(&resp).ok_or("status without Range")?,
        404 => {
            let body = resp.text().await.unwrap_or_default();
            c.sessions_404 += 1;
            return if body.contains("BLOB_UPLOAD_UNKNOWN") { Ok(()) } else { Err(format!("status 404: {body}")) };
        }
        s => return Err(format!("status of a {shape:?} session: {s} {}", resp.text().await.unwrap_or_default())),
    };
    let allowed = match shape {
        // A Content-Range chunk counts whole or not at all.
        Shape::Chunked => offset == acked || offset == acked + sent,
        _ => (acked..=acked + sent).contains(&offset),
    };
    if !allowed {
        return Err(format!("{shape:?} session at {offset} after the kill (acked {acked}, sent {sent} more)"));
    }
    let data = &blob.data;
    if offset < data.len() {
        let resp = p
            .req(Method::PATCH, location, token)
            .header("content-range", format!("{}-{}", offset, data.len() - 1))
            .body(data[offset..].to_vec())
            .send()
            .await
            .map_err(|e| format!("resume PATCH: {e}"))?;
        if status_of(&resp) != 202 {
            return Err(format!(
                "resume PATCH at {offset}: {} {}",
                status_of(&resp),
                resp.text().await.unwrap_or_default()
            ));
        }
    }
    let resp = p.req(Method::PUT, &format!("{location}?digest={}", blob.digest), token).send().await;
    let resp = resp.map_err(|e| format!("PUT after resume: {e}"))?;
    if status_of(&resp) != 201 {
        return Err(format!("PUT after resume: {} {}", status_of(&resp), resp.text().await.unwrap_or_default()));
    }
    c.sessions_resumed += 1;
    match read_back(p, token, blob).await? {
        true => Ok(()),
        false => Err(format!("{} not readable after its resumed upload", blob.digest)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushers_survive_random_kills() {
    survive_kills(&[], KILLS, PUSHERS).await;
}

/// The same on S3 (moto) and PostgreSQL: sessions are multipart uploads with tail objects,
/// rows live in another process that the kill does not touch. Fewer rounds: each restart
/// reconnects to both.
///
/// Ignored until the S3 completion window is closed: a completing PUT cut by the kill and
/// sent again can answer 500 (its part goes to a multipart upload already completed;
/// moto answers that with a 500), or 404 with the blob not readable (session gone, no blob
/// row). Run it with `--ignored` (about 15 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fails: a completing PUT retried after a kill on S3 (see the doc comment)"]
async fn concurrent_pushers_survive_random_kills_on_s3_and_postgresql() {
    let moto = Moto::start().await;
    let pg = Postgres::start();
    let url = pg.database("kills").await;
    let mut env = vec![("BERTH_DATABASE__URL", url.as_str())];
    env.extend(moto.env());
    survive_kills(&env, KILLS / 2, PUSHERS / 2).await;
}

/// `kills` rounds (`KILLS_ROUNDS` overrides) of `pushers` pushers (`KILLS_PUSHERS`) against
/// the binary started with `env`.
async fn survive_kills(env: &[(&str, &str)], kills: usize, pushers: usize) {
    let seed = std::env::var("KILLS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("KILLS_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let (kills, pushers) = (env_or("KILLS_ROUNDS", kills), env_or("KILLS_PUSHERS", pushers));
    let dir = tempfile::tempdir().unwrap();
    let repos: Vec<String> = (0..pushers).map(|i| format!("kills/p{i}")).collect();
    let scopes: Vec<String> = repos.iter().map(|r| scope(r, "pull,push")).collect();
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();

    let mut p = Proc::start_with(dir.path(), env).await;
    // The signing key lives in the database: one token serves every restart.
    let token = p.token(&scopes).await;
    let (mut counts, mut failures, mut all_acked) = (Counts::default(), Vec::new(), Vec::new());
    for round in 0..kills {
        let shapes = [Shape::Monolithic, Shape::Chunked, Shape::Streamed];
        let pushers: Vec<_> = repos
            .iter()
            .enumerate()
            .map(|(i, repo)| {
                let pusher = Pusher { client: p.client.clone(), base: p.base.clone(), token: token.clone() };
                tokio::spawn(pusher.run(repo.clone(), shapes[i % 3], rng.next()))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(150 + rng.below(650))).await;
        p.kill().await;
        let mut tallies = Vec::new();
        for pusher in pushers {
            tallies.push(pusher.await.expect("pusher"));
        }
        p = Proc::start_with(dir.path(), env).await;
        for mut tally in tallies {
            failures.extend(tally.failures.drain(..).map(|f| format!("round {round}: {f}")));
            all_acked.extend(tally.acked.iter().cloned());
            let mut found = Vec::new();
            verify(&p, &token, tally, &mut counts, &mut found).await;
            failures.extend(found.into_iter().map(|f| format!("round {round}, after restart: {f}")));
        }
    }
    // At the end, every acknowledged push of every round once more.
    let mut lost = 0;
    for blob in &all_acked {
        if !matches!(read_back(&p, &token, blob).await, Ok(true)) {
            lost += 1;
        }
    }
    p.kill().await;
    counts.five_xx = FIVE_XX.load(Ordering::Relaxed);
    eprintln!("{kills} kills survived, {} acknowledged pushes, {lost} lost at the end; {counts:?}", all_acked.len());
    if !failures.is_empty() || counts.five_xx > 0 {
        // The server's side of it: what it logged as errors.
        let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
        log.lines().filter(|l| l.contains("ERROR")).take(20).for_each(|l| eprintln!("serve.log: {l}"));
    }
    assert!(failures.is_empty(), "{} failures (seed {seed}):\n{}", failures.len(), failures.join("\n"));
    assert_eq!(lost, 0, "acknowledged pushes lost by the end (seed {seed})");
    assert_eq!(counts.five_xx, 0, "5xx answers (seed {seed})");
    assert!(all_acked.len() > kills * 2, "too few pushes to mean anything: {}", all_acked.len());
}
