//! The token service (DESIGN §4): `GET /v2/` challenges, `/token` responses and JWT claims,
//! JWKS, refresh tokens, and how the registry judges a token (401 vs 403,
//! `insufficient_scope`).

use crate::common::*;
use reqwest::Method;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_without_token_is_401_with_challenge_without_scope() {
    let s = TestServer::start().await;
    let resp = s.get("/v2/", None).await;
    assert_eq!(
        header(&resp, "docker-distribution-api-version").as_deref(),
        Some("registry/2.0"),
        "401 from /v2/ must carry Docker-Distribution-API-Version"
    );
    let raw = header(&resp, "www-authenticate").expect("challenge");
    assert_eq!(raw, format!("Bearer realm=\"{}\",service=\"berth\"", s.url("/token")), "bare GET /v2/ challenge");
    expect_challenge(&s, resp, None, false, "GET /v2/ without token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_with_token_is_200() {
    let s = TestServer::start().await;
    for token in [s.admin_token(&[]).await, s.anon_token(&[]).await] {
        let resp = s.get("/v2/", Some(&token)).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "docker-distribution-api-version").as_deref(), Some("registry/2.0"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_tampered_tokens_are_401_unauthorized() {
    let s = TestServer::start().await;
    let resp = s.get("/v2/", Some("not.a.jwt")).await;
    expect_error(resp, 401, "UNAUTHORIZED", "garbage bearer token").await;

    // Re-sign nothing: swap in claims granting push on a repo; the signature no longer matches.
    let token = s.anon_token(&[&scope("lib/app", "pull")]).await;
    let parts: Vec<&str> = token.split('.').collect();
    let (_, mut claims) = decode_jwt(&token);
    claims["access"] = serde_json::json!([{"type":"repository","name":"lib/app","actions":["pull","push"]}]);
    claims["sub"] = Value::String("admin".into());
    use base64::Engine as _;
    let forged_claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
    let resp = s.req(Method::POST, "/v2/lib/app/blobs/uploads/", Some(&forged)).send().await.unwrap();
    expect_error(resp, 401, "UNAUTHORIZED", "token with forged claims").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_response_fields_and_claims() {
    let s = TestServer::start().await;
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let json = s.token_json(Some((ADMIN_USER, ADMIN_PASSWORD)), &[&scope("team1/app", "pull,push")]).await;
    let token = json["token"].as_str().expect("token");
    assert_eq!(json["access_token"].as_str(), Some(token), "access_token must equal token: {json}");
    let expires_in = json["expires_in"].as_i64().expect("expires_in is a number");
    assert!(expires_in >= 60, "expires_in {expires_in} < 60");
    assert!(json["issued_at"].is_string(), "issued_at missing: {json}");

    let (jhead, claims) = decode_jwt(token);
    let alg = jhead["alg"].as_str().unwrap_or_default();
    assert!(alg == "ES256" || alg == "EdDSA", "alg {alg}");
    assert!(jhead["kid"].is_string(), "kid missing in {jhead}");
    assert_eq!(claims["sub"], "admin");
    assert_eq!(claims["aud"], "berth");
    assert!(claims["iss"].is_string(), "iss in {claims}");
    assert!(claims["jti"].is_string(), "jti in {claims}");
    let (iat, nbf, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["nbf"].as_i64().expect("nbf"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert!(iat >= before - 5 && iat <= before + 60, "iat {iat} vs now {before}");
    assert!(nbf <= iat + 1, "nbf {nbf} after iat {iat}");
    assert_eq!(exp - iat, 900, "default token TTL is 15 minutes");
    let access = claims["access"].as_array().expect("access array");
    assert_eq!(access.len(), 1, "one access entry per requested repository: {access:?}");
    assert_eq!(access[0]["type"], "repository");
    assert_eq!(access[0]["name"], "team1/app");
    let mut actions: Vec<&str> = access[0]["actions"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    actions.sort();
    assert_eq!(actions, ["pull", "push"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_signature_verifies_against_jwks() {
    let s = TestServer::start().await;
    let token = s.admin_token(&[&scope("team1/app", "pull")]).await;
    let resp = s.get("/token/jwks.json", None).await;
    let resp = expect_status(resp, 200, "GET /token/jwks.json").await;
    let jwks: jsonwebtoken::jwk::JwkSet = resp.json().await.expect("JWKS parses as a JWK set");
    let head = jsonwebtoken::decode_header(&token).expect("JWT header");
    let kid = head.kid.clone().expect("kid");
    let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("kid {kid} not in JWKS"));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("usable JWK");
    let mut validation = jsonwebtoken::Validation::new(head.alg);
    validation.set_audience(&["berth"]);
    let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("signature verifies");
    assert_eq!(data.claims["sub"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_and_multiple_scopes_and_catalog() {
    let s = TestServer::start().await;
    // Several scopes in one `scope` value, space-separated, plus a separate one.
    let json = s
        .token_json(
            Some((ADMIN_USER, ADMIN_PASSWORD)),
            &["repository:one/a:* repository:two/b:pull", "registry:catalog:*"],
        )
        .await;
    let token = json["token"].as_str().unwrap();
    let mut star = granted(token, "one/a").expect("entry for one/a");
    star.sort();
    assert_eq!(star, ["delete", "pull", "push"], "`*` lists the granted actions explicitly");
    assert_eq!(granted(token, "two/b").expect("entry for two/b"), ["pull"]);
    let (_, claims) = decode_jwt(token);
    let catalog = claims["access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "registry" && a["name"] == "catalog")
        .unwrap_or_else(|| panic!("no registry:catalog entry in {claims}"));
    assert_eq!(catalog["actions"], serde_json::json!(["*"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_scope_gives_empty_access_and_invalid_names_get_nothing() {
    let s = TestServer::start().await;
    let token = s.admin_token(&[]).await;
    let (_, claims) = decode_jwt(&token);
    let access = claims["access"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(access, 0, "empty scope must give an empty access: {claims}");

    let token = s.admin_token(&[&scope("Bad/Name", "pull,push")]).await;
    if let Some(actions) = granted(&token, "Bad/Name") {
        assert!(actions.is_empty(), "invalid name granted {actions:?}");
    }
    // Unknown types and actions are ignored, not errors.
    let token = s.admin_token(&["weird:thing:zap", &scope("team1/app", "pull,fly")]).await;
    assert_eq!(granted(&token, "team1/app").expect("entry"), ["pull"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_with_host_port_splits_on_first_and_last_colon() {
    let s = TestServer::start().await;
    // `repository(plugin)` counts as `repository`; the name holds no colon here but the
    // scope parser must still accept the type suffix.
    let token = s.admin_token(&["repository(plugin):team1/plug:pull"]).await;
    let (_, claims) = decode_jwt(&token);
    let entry = claims["access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "team1/plug")
        .unwrap_or_else(|| panic!("no entry for repository(plugin) scope: {claims}"))
        .clone();
    assert_eq!(entry["actions"], serde_json::json!(["pull"]));
    // A name with host:port fails the name grammar: an entry with [] (or none), and no error.
    let token = s.admin_token(&["repository:localhost:5000/team1/app:pull"]).await;
    if let Some(actions) = granted(&token, "localhost:5000/team1/app") {
        assert!(actions.is_empty(), "host:port name granted {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_password_and_unknown_user_are_401() {
    let s = TestServer::start().await;
    let resp = s.token_response(Some((ADMIN_USER, "wrong")), &[&scope("a/b", "pull")]).await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 401, "bad password: {body}");
    assert!(!error_codes_of(&body).is_empty(), "/token errors use the OCI error JSON: {body}");

    let resp = s.token_response(Some(("nobody", "whatever")), &[]).await;
    assert_eq!(resp.status(), 401, "unknown user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_parameter_does_not_decide_sub() {
    let s = TestServer::start().await;
    let resp = s
        .client()
        .get(s.url("/token"))
        .query(&[("service", "berth"), ("account", "someone-else"), ("scope", "repository:x/y:pull")])
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    let json: Value = expect_status(resp, 200, "token with account").await.json().await.unwrap();
    let (_, claims) = decode_jwt(json["token"].as_str().unwrap());
    assert_eq!(claims["sub"], "admin");

    let token = s.anon_token(&[&scope("x/y", "pull")]).await;
    let (_, claims) = decode_jwt(&token);
    assert_eq!(claims["sub"], "", "anonymous sub is empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_token_refresh_flow() {
    let s = TestServer::start().await;
    let resp = s
        .client()
        .get(s.url("/token"))
        .query(&[("service", "berth"), ("offline_token", "true"), ("client_id", "test")])
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    let json: Value = expect_status(resp, 200, "offline token").await.json().await.unwrap();
    let refresh = json["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh_token with offline_token=true: {json}"))
        .to_string();

    // Without offline_token there is no refresh token.
    let plain = s.token_json(Some((ADMIN_USER, ADMIN_PASSWORD)), &[]).await;
    assert!(plain.get("refresh_token").is_none(), "refresh_token without offline_token: {plain}");

    let resp = s
        .client()
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("service", "berth"),
            ("client_id", "test"),
            ("scope", "repository:rt/app:pull,push"),
        ])
        .send()
        .await
        .unwrap();
    let json: Value = expect_status(resp, 200, "POST /token refresh_token").await.json().await.unwrap();
    let access = json["access_token"].as_str().expect("access_token").to_string();
    assert!(json["expires_in"].as_i64().unwrap_or(0) >= 60, "{json}");
    assert!(json.get("scope").is_some(), "POST /token returns scope: {json}");
    // The refreshed token is the user's: it can push (and so created collection `rt`).
    s.push_blob(&access, "rt/app", b"pushed with a refreshed token").await;

    // A wrong refresh token is refused.
    let resp = s
        .client()
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "definitely-not-a-refresh-token"),
            ("service", "berth"),
            ("client_id", "test"),
        ])
        .send()
        .await
        .unwrap();
    assert!(resp.status() == 401 || resp.status() == 400, "bogus refresh token answered {}", resp.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_token_password_grant() {
    let s = TestServer::start().await;
    let resp = s
        .client()
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", ADMIN_USER),
            ("password", ADMIN_PASSWORD),
            ("service", "berth"),
            ("client_id", "test"),
            ("access_type", "offline"),
            ("scope", "repository:pw/app:pull,push repository:pw/other:pull"),
        ])
        .send()
        .await
        .unwrap();
    let json: Value = expect_status(resp, 200, "POST /token password").await.json().await.unwrap();
    let token = json["access_token"].as_str().expect("access_token");
    assert!(json["refresh_token"].is_string(), "access_type=offline gives a refresh_token: {json}");
    let mut a = granted(token, "pw/app").expect("pw/app entry");
    a.sort();
    assert_eq!(a, ["pull", "push"]);
    assert!(granted(token, "pw/other").is_some(), "second space-separated scope: {json}");

    let resp = s
        .client()
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", ADMIN_USER),
            ("password", "wrong"),
            ("service", "berth"),
            ("client_id", "test"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "POST /token with a bad password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_scopes_per_method() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["chal/app"]).await;
    let img = s.push_image(&token, "chal/app", "v1", "chal").await;
    let d = &img.digest;

    let cases: Vec<(Method, String, &str)> = vec![
        (Method::GET, "/v2/chal/app/manifests/v1".to_string(), "repository:chal/app:pull"),
        (Method::HEAD, format!("/v2/chal/app/manifests/{d}"), "repository:chal/app:pull"),
        (Method::GET, format!("/v2/chal/app/blobs/{d}"), "repository:chal/app:pull"),
        (Method::GET, "/v2/chal/app/tags/list".to_string(), "repository:chal/app:pull"),
        (Method::POST, "/v2/chal/app/blobs/uploads/".to_string(), "repository:chal/app:pull,push"),
        (Method::PUT, "/v2/chal/app/manifests/v2".to_string(), "repository:chal/app:pull,push"),
        (Method::DELETE, format!("/v2/chal/app/manifests/{d}"), "repository:chal/app:delete"),
        (Method::GET, "/v2/_catalog".to_string(), "registry:catalog:*"),
    ];
    for (method, path, want) in cases {
        let resp = s.req(method.clone(), &path, None).send().await.unwrap();
        expect_challenge(&s, resp, Some(want), false, &format!("{method} {path} without token")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_for_other_repo_is_insufficient_scope() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["ins/a", "ins/b"]).await;
    s.push_image(&token, "ins/b", "v1", "b").await;

    let only_a = s.admin_token(&[&scope("ins/a", "pull,push")]).await;
    let resp = s.get("/v2/ins/b/manifests/v1", Some(&only_a)).await;
    expect_challenge(&s, resp, Some("repository:ins/b:pull"), true, "GET with a token for another repo").await;

    let resp = s.req(Method::POST, "/v2/ins/b/blobs/uploads/", Some(&only_a)).send().await.unwrap();
    expect_challenge(&s, resp, Some("repository:ins/b:pull,push"), true, "POST with a token for another repo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_action_is_403_for_users_and_401_for_anonymous() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["pubc/app"]).await;
    let img = s.push_image(&token, "pubc/app", "v1", "pubc").await;
    s.create_user("bob", "user", "bob-password").await;

    // bob asks pull,push on a public collection he does not own: gets pull only.
    let bob = s.token(Some(("bob", "bob-password")), &[&scope("pubc/app", "pull,push,delete")]).await;
    assert_eq!(granted(&bob, "pubc/app").expect("entry"), ["pull"]);
    let resp = s.get("/v2/pubc/app/manifests/v1", Some(&bob)).await;
    assert_eq!(resp.status(), 200, "bob may pull a public repo");
    let resp = s.req(Method::POST, "/v2/pubc/app/blobs/uploads/", Some(&bob)).send().await.unwrap();
    expect_error(resp, 403, "DENIED", "user push without the push action").await;
    let resp = s.delete(&format!("/v2/pubc/app/manifests/{}", img.digest), Some(&bob)).await;
    expect_error(resp, 403, "DENIED", "user delete without the delete action").await;

    // Anonymous with the same request: the 401 challenge instead (so clients prompt for login).
    let anon = s.anon_token(&[&scope("pubc/app", "pull,push")]).await;
    assert_eq!(granted(&anon, "pubc/app").expect("entry"), ["pull"]);
    let resp = s.req(Method::POST, "/v2/pubc/app/blobs/uploads/", Some(&anon)).send().await.unwrap();
    expect_challenge(&s, resp, Some("repository:pubc/app:pull,push"), true, "anonymous push").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_registry_refuses_anonymous_tokens() {
    let s = TestServer::start_with(|c| c.auth.private_registry = true).await;
    let resp = s.token_response(None, &[&scope("a/b", "pull")]).await;
    assert_eq!(resp.status(), 401, "anonymous /token on a private registry");
    // Authenticated users still get tokens.
    let token = s.admin_token(&[&scope("a/b", "pull")]).await;
    assert_eq!(granted(&token, "a/b").expect("entry"), ["pull"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_service_name_is_used_for_aud_and_challenge() {
    let s = TestServer::start_with(|c| c.auth.service = "registry.test".to_string()).await;
    let resp = s.get("/v2/", None).await;
    let c = challenge(&resp);
    assert_eq!(c.get("service").map(String::as_str), Some("registry.test"));
    let resp = s
        .client()
        .get(s.url("/token"))
        .query(&[("service", "registry.test"), ("scope", "repository:svc/app:pull")])
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    let json: Value = expect_status(resp, 200, "token for configured service").await.json().await.unwrap();
    let (_, claims) = decode_jwt(json["token"].as_str().unwrap());
    assert_eq!(claims["aud"], "registry.test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_ttl_is_configurable() {
    let s = TestServer::start_with(|c| c.auth.token_ttl_secs = 120).await;
    let json = s.token_json(Some((ADMIN_USER, ADMIN_PASSWORD)), &[]).await;
    assert_eq!(json["expires_in"].as_i64(), Some(120), "{json}");
    let (_, claims) = decode_jwt(json["token"].as_str().unwrap());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_api_version_header() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["hdr/app"]).await;
    for path in ["/v2/", "/v2/hdr/app/tags/list", "/v2/hdr/app/manifests/nope"] {
        let resp = s.get(path, Some(&token)).await;
        assert_eq!(
            header(&resp, "docker-distribution-api-version").as_deref(),
            Some("registry/2.0"),
            "GET {path} ({})",
            resp.status()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realm_comes_from_public_url_and_locations_stay_relative() {
    let s = TestServer::start_with(|c| c.public_url = Some("https://registry.example.test".to_string())).await;
    let resp = s.get("/v2/", None).await;
    let c = challenge(&resp);
    assert_eq!(c.get("realm").map(String::as_str), Some("https://registry.example.test/token"));
    let token = s.repo_token(&["rel/app"]).await;
    let resp = s
        .req(Method::POST, "/v2/rel/app/blobs/uploads/", Some(&token))
        .header("host", "evil.example.test")
        .send()
        .await
        .unwrap();
    let resp = expect_status(resp, 202, "POST upload").await;
    let location = header(&resp, "location").unwrap();
    assert!(location.starts_with("/v2/rel/app/blobs/uploads/"), "relative Location: {location}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realm_is_derived_from_bound_address_without_public_url() {
    let s = TestServer::start_with(|c| c.public_url = None).await;
    let resp = s.get("/v2/", None).await;
    let c = challenge(&resp);
    assert_eq!(c.get("realm").map(String::as_str), Some(s.url("/token").as_str()));
    // Never from the Host header.
    let resp = s.req(Method::GET, "/v2/", None).header("host", "evil.example.test").send().await.unwrap();
    let c = challenge(&resp);
    assert_eq!(c.get("realm").map(String::as_str), Some(s.url("/token").as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_for_another_audience_is_rejected() {
    // Same data dir (so the same signing key), but the service name changes across a restart:
    // a token minted for the old audience must no longer be accepted.
    let service = std::sync::Arc::new(std::sync::Mutex::new("berth".to_string()));
    let svc = service.clone();
    let mut s = TestServer::start_with(move |c| c.auth.service = svc.lock().unwrap().clone()).await;
    let token = s.repo_token(&["aud/app"]).await;
    s.push_blob(&token, "aud/app", b"aud").await;
    *service.lock().unwrap() = "other-service".to_string();
    s.restart().await;
    let resp = s.get("/v2/aud/app/tags/list", Some(&token)).await;
    expect_error(resp, 401, "UNAUTHORIZED", "token whose aud is not the service").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_repository_in_two_scopes_gives_one_entry() {
    let s = TestServer::start().await;
    let token = s.admin_token(&[&scope("dup/app", "pull"), &scope("dup/app", "push")]).await;
    let (_, claims) = decode_jwt(&token);
    let entries: Vec<&serde_json::Value> =
        claims["access"].as_array().unwrap().iter().filter(|a| a["name"] == "dup/app").collect();
    assert_eq!(entries.len(), 1, "one access entry per requested repository: {claims}");
    let mut actions: Vec<&str> =
        entries[0]["actions"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    actions.sort();
    assert_eq!(actions, ["pull", "push"]);
}
