//! The access log of the real binary, in text and in JSON: one line per request with
//! method, path, status, bytes, duration, principal and request id; and no password, Basic
//! credentials, access, refresh or API token anywhere in the log, even at `trace`.

use std::time::Duration;

use crate::opsutil::{ADMIN_PASSWORD, Berth};
use base64::Engine as _;
use reqwest::Client;
use serde_json::Value;

const ALICE_PASSWORD: &str = "alice-very-secret-pw";

/// Exercises every way a secret reaches berth; returns the secrets to look for.
async fn traffic(b: &Berth) -> Vec<String> {
    let c = Client::builder().no_proxy().build().unwrap();
    let url = |p: &str| format!("{}{p}", b.base);
    let admin = ("admin", Some(ADMIN_PASSWORD));

    // A user created through the API (the password travels in a JSON body).
    let r = c
        .post(url("/api/v1/users"))
        .basic_auth(admin.0, admin.1)
        .json(&serde_json::json!({"username": "alice", "password": ALICE_PASSWORD, "role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // docker login: GET /token with Basic and offline_token, then the refresh grant.
    let r = c
        .get(url("/token"))
        .query(&[("service", "berth"), ("scope", "repository:alice/app:pull,push"), ("offline_token", "true")])
        .basic_auth("alice", Some(ALICE_PASSWORD))
        .header("x-request-id", "login-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let j: Value = r.json().await.unwrap();
    let access = j["token"].as_str().unwrap().to_owned();
    let refresh = j["refresh_token"].as_str().unwrap().to_owned();
    let form = [("grant_type", "refresh_token"), ("refresh_token", &refresh), ("service", "berth"), ("client_id", "t")];
    let r = c.post(url("/token")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let access2 = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    // OAuth2 password grant (containerd).
    let form = [("grant_type", "password"), ("username", "alice"), ("password", ALICE_PASSWORD), ("service", "berth")];
    assert_eq!(c.post(url("/token")).form(&form).send().await.unwrap().status(), 200);
    // Bearer on the registry.
    let r = c.get(url("/v2/")).bearer_auth(&access).header("x-request-id", "probe-7").send().await.unwrap();
    assert_eq!(r.status(), 200);
    // An API token, used as Bearer on /api/v1 and as a password on /token.
    let r = c
        .post(url("/api/v1/tokens"))
        .basic_auth("alice", Some(ALICE_PASSWORD))
        .json(&serde_json::json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let api_token = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    assert_eq!(c.get(url("/api/v1/me")).bearer_auth(&api_token).send().await.unwrap().status(), 200);
    let r = c.get(url("/token")).query(&[("service", "berth")]).basic_auth("alice", Some(&api_token)).send().await;
    assert_eq!(r.unwrap().status(), 200);
    // Failed logins, with a password that is someone's other secret.
    let r = c.get(url("/token")).query(&[("service", "berth")]).basic_auth("alice", Some("typo-of-a-secret")).send();
    assert_eq!(r.await.unwrap().status(), 401);
    let r = c.get(url("/api/v1/me")).basic_auth("admin", Some("typo-of-a-secret")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let basic = |u: &str, p: &str| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
    let jwt_parts = |t: &str| t.split('.').map(str::to_owned).collect::<Vec<_>>();
    let mut secrets = vec![
        ADMIN_PASSWORD.to_owned(),
        ALICE_PASSWORD.to_owned(),
        "typo-of-a-secret".to_owned(),
        basic("admin", ADMIN_PASSWORD),
        basic("alice", ALICE_PASSWORD),
        basic("alice", &api_token),
        refresh,
        api_token,
    ];
    for t in [access, access2] {
        secrets.extend(jwt_parts(&t).into_iter().skip(1)); // payload and signature
        secrets.push(t);
    }
    secrets
}

fn assert_no_secret(log: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!log.contains(s.as_str()), "a secret ({}…) is in the log:\n{log}", &s[..6.min(s.len())]);
    }
}

#[tokio::test]
async fn text_access_log_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let b = Berth::start(dir.path(), &[("BERTH_LOG__LEVEL", "trace")]).await;
    let secrets = traffic(&b).await;
    let addr = b.addr();
    b.terminate(Duration::from_secs(30)).await;
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert_no_secret(&log, &secrets);
    let line = log
        .lines()
        .find(|l| l.contains("berth::access") && l.contains("request_id=probe-7"))
        .unwrap_or_else(|| panic!("no access line for probe-7 in:\n{log}"));
    for field in
        ["method=GET", "path=/v2/", "status=200", "bytes_in=0", "bytes_out=2", "principal=alice", "client=127.0.0.1"]
    {
        assert!(line.contains(field), "{field} missing in {line}");
    }
    assert!(line.contains("duration_ms="), "{line}");
    // The query of the login (scope, offline_token) is not logged, only the path.
    let login = log.lines().find(|l| l.contains("request_id=login-1")).expect("login line");
    assert!(login.contains("path=/token ") && !login.contains("offline_token"), "{login}");
    assert!(login.contains("principal=alice"), "{login}");
    // One line per request: the failed API login is there with no principal.
    assert!(
        log.lines().any(|l| l.contains("path=/api/v1/me") && l.contains("status=401") && l.contains("principal=-"))
    );
    let _ = addr;
}

#[tokio::test]
async fn json_access_log_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let b = Berth::start(dir.path(), &[("BERTH_LOG__FORMAT", "json"), ("BERTH_LOG__LEVEL", "trace")]).await;
    let secrets = traffic(&b).await;
    b.terminate(Duration::from_secs(30)).await;
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert_no_secret(&log, &secrets);
    let lines: Vec<Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let access: Vec<&Value> = lines.iter().filter(|l| l["target"] == "berth::access").collect();
    assert!(access.len() >= 10, "{} access lines", access.len());
    let probe = access.iter().find(|l| l["request_id"] == "probe-7").expect("probe-7 line");
    assert_eq!(probe["method"], "GET");
    assert_eq!(probe["path"], "/v2/");
    assert_eq!(probe["status"], 200);
    assert_eq!(probe["principal"], "alice");
    assert_eq!(probe["bytes_out"], 2);
    assert!(probe["duration_ms"].as_f64().is_some(), "{probe}");
    assert!(access.iter().all(|l| l["request_id"].as_str().is_some_and(|s| !s.is_empty())));
}
