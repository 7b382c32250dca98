//! The OpenAPI document of `/api/v1` (`GET /api/v1/openapi.json`, issue 13 §9): served
//! without credentials; its operations are exactly DESIGN §8's routes (plus the policy
//! routes of issue 10), each one served by the router (and no other method on its path);
//! every `$ref` resolves; the statuses follow §8; and what the server really answers matches
//! the documented schemas.

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// DESIGN §8's list, with the policy routes of issue 10 (README "Retention").
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/me"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users"),
    ("PATCH", "/api/v1/users/{username}"),
    ("DELETE", "/api/v1/users/{username}"),
    ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{id}"),
    ("POST", "/api/v1/teams"),
    ("GET", "/api/v1/teams"),
    ("GET", "/api/v1/teams/{team}"),
    ("PUT", "/api/v1/teams/{team}/members/{username}"),
    ("DELETE", "/api/v1/teams/{team}/members/{username}"),
    ("DELETE", "/api/v1/teams/{team}"),
    ("POST", "/api/v1/collections"),
    ("GET", "/api/v1/collections"),
    ("GET", "/api/v1/collections/{name}"),
    ("PATCH", "/api/v1/collections/{name}"),
    ("DELETE", "/api/v1/collections/{name}"),
    ("PUT", "/api/v1/collections/{name}/members/users/{username}"),
    ("PUT", "/api/v1/collections/{name}/members/teams/{team}"),
    ("DELETE", "/api/v1/collections/{name}/members/users/{username}"),
    ("DELETE", "/api/v1/collections/{name}/members/teams/{team}"),
    ("GET", "/api/v1/repositories/{name}"),
    ("DELETE", "/api/v1/repositories/{name}"),
    ("PATCH", "/api/v1/teams/{team}"),
    ("GET", "/api/v1/collections/{name}/policy"),
    ("PUT", "/api/v1/collections/{name}/policy"),
];

const METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "PATCH"];

async fn document(s: &TestServer) -> Value {
    let resp = s.get("/api/v1/openapi.json", None).await;
    assert_eq!(resp.status().as_u16(), 200, "the document needs no credentials");
    assert_eq!(header(&resp, "content-type").as_deref(), Some("application/json"));
    let text = resp.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `(METHOD, path)` of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    let mut ops = BTreeSet::new();
    for (path, item) in paths {
        for m in METHODS {
            if item.get(m.to_lowercase()).is_some() {
                ops.insert(((*m).to_string(), path.clone()));
            }
        }
    }
    ops
}

fn op<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let o = &doc["paths"][path][method.to_lowercase()];
    assert!(o.is_object(), "no {method} {path} in the document");
    o
}

/// Follows `{"$ref": "#/components/…"}` to what it names.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external $ref {r}"));
            doc.pointer(pointer).unwrap_or_else(|| panic!("$ref {r} names nothing"))
        }
        None => v,
    }
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// Whether `value` has the shape of `schema` (the subset of JSON Schema utoipa emits):
/// objects must carry every required property and nothing undocumented.
fn conforms(doc: &Value, value: &Value, schema: &Value) -> Result<(), String> {
    let schema = resolve(doc, schema);
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            let errs: Vec<String> = alts.iter().filter_map(|a| conforms(doc, value, a).err()).collect();
            return if errs.len() < alts.len() { Ok(()) } else { Err(format!("{value} matches no {key}: {errs:?}")) };
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ if schema.get("properties").is_some() => vec!["object"],
        _ => return Ok(()), // any value
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let integer_as_number = actual == "integer" && types.contains(&"number");
    if !types.contains(&actual) && !integer_as_number {
        return Err(format!("{value} is {actual}, documented as {types:?}"));
    }
    if let Some(enum_values) = schema["enum"].as_array()
        && !enum_values.contains(value)
    {
        return Err(format!("{value} is not one of {enum_values:?}"));
    }
    match value {
        Value::Array(items) => {
            for item in items {
                conforms(doc, item, &schema["items"])?;
            }
        }
        Value::Object(fields) => {
            let props = schema["properties"].as_object().cloned().unwrap_or_default();
            for req in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !fields.contains_key(req) {
                    return Err(format!("{value} lacks required {req}"));
                }
            }
            for (k, v) in fields {
                let p = props.get(k).ok_or_else(|| format!("{k} of {value} is not documented"))?;
                conforms(doc, v, p).map_err(|e| format!("{k}: {e}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `path` with each `{param}` replaced by a plausible value.
fn concrete(path: &str) -> String {
    path.replace("{name}/", "dummy-coll/")
        .replace("repositories/{name}", "repositories/dummy-coll/app")
        .replace("{name}", "dummy-coll")
        .replace("{username}", "dummy-user")
        .replace("{team}", "dummy-team")
        .replace("{id}", "dummy-id")
}

#[tokio::test]
async fn document_is_openapi_3_with_both_security_schemes() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    let version = doc["openapi"].as_str().unwrap_or_else(|| panic!("no openapi version: {doc}"));
    assert!(version.starts_with("3."), "openapi {version}");
    assert!(doc["info"]["title"].as_str().is_some_and(|t| !t.is_empty()));
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["basic"]["type"], "http");
    assert_eq!(schemes["basic"]["scheme"], "basic");
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(doc["security"], json!([{ "basic": [] }, { "bearer": [] }]));
    // Credentials change nothing.
    let again: Value = api_expect(&s, Method::GET, "/api/v1/openapi.json", ADMIN, None, 200).await;
    assert_eq!(again, doc);
}

#[tokio::test]
async fn operations_are_exactly_design_section_8() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    let documented = operations(&doc);
    let expected: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(m, p)| ((*m).to_string(), (*p).to_string())).collect();
    assert_eq!(ROUTES.len(), expected.len(), "ROUTES has duplicates");
    let missing: Vec<_> = expected.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&expected).collect();
    assert!(missing.is_empty() && extra.is_empty(), "undocumented: {missing:?}; not in DESIGN §8: {extra:?}");
}

/// Each documented operation reaches its handler (which asks for credentials: 401 with the
/// documented error body), and every other method on a documented path is 405: the document
/// and the router describe the same routes.
#[tokio::test]
async fn every_documented_operation_is_served_and_nothing_else_on_its_path() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    let ops = operations(&doc);
    let paths: BTreeSet<&String> = ops.iter().map(|(_, p)| p).collect();
    for path in paths {
        let url = concrete(path);
        for m in METHODS {
            let method = Method::from_bytes(m.as_bytes()).expect("method");
            let resp = api_call(&s, method, &url, Cred::Nobody, Some(&json!({}))).await;
            let status = resp.status().as_u16();
            if ops.contains(&((*m).to_string(), path.clone())) {
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                assert_eq!(status, 401, "{m} {url} (documented as {path}): {body}");
                assert_eq!(body["error"], "unauthorized", "{m} {url}: {body}");
                let documented = &op(&doc, m, path)["responses"]["401"]["content"]["application/json"]["schema"];
                conforms(&doc, &body, documented).unwrap_or_else(|e| panic!("{m} {path} 401: {e}"));
            } else {
                assert_eq!(status, 405, "{m} {url} is served but not documented on {path}");
            }
        }
    }
}

/// Every `$ref` names a component; §8's statuses: POST creates (201), DELETE is 204, the rest
/// 200; every error status is documented with the `{"error","message"}` body.
#[tokio::test]
async fn references_resolve_and_statuses_follow_design() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.iter().any(|r| r == "#/components/schemas/ErrorBody"), "{all:?}");
    for r in &all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(doc["components"]["schemas"][name].is_object(), "$ref {r} has no schema");
    }
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], json!(["error", "message"]), "{error}");
    let ids: Vec<&str> =
        operations(&doc).iter().map(|(m, p)| op(&doc, m, p)["operationId"].as_str().unwrap_or("")).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert!(!unique.contains("") && unique.len() == ids.len(), "operationIds must be unique: {ids:?}");
    for (m, path) in operations(&doc) {
        let responses = op(&doc, &m, &path)["responses"].as_object().expect("responses");
        let success = match m.as_str() {
            "POST" => "201",
            "DELETE" => "204",
            _ => "200",
        };
        let codes: Vec<&str> = responses.keys().map(String::as_str).collect();
        assert!(codes.contains(&success), "{m} {path}: no {success} in {codes:?}");
        assert!(codes.contains(&"401"), "{m} {path}: no 401 in {codes:?}");
        if m != "GET" || path.contains('{') {
            assert!(codes.iter().any(|c| ["400", "403", "404"].contains(c)), "{m} {path}: no 4xx but 401");
        }
        for (code, resp) in responses {
            if code.starts_with('4') || code.starts_with('5') {
                let schema = &resp["content"]["application/json"]["schema"];
                assert_eq!(schema["$ref"], "#/components/schemas/ErrorBody", "{m} {path} {code}: {resp}");
            }
        }
        for p in op(&doc, &m, &path)["parameters"].as_array().into_iter().flatten() {
            if p["in"] == "path" {
                let name = p["name"].as_str().expect("name");
                assert!(path.contains(&format!("{{{name}}}")), "{m} {path}: parameter {name} not in the path");
            }
        }
        for seg in path.split('/').filter(|s| s.starts_with('{')) {
            let name = seg.trim_matches(['{', '}']);
            let params = op(&doc, &m, &path)["parameters"].as_array().cloned().unwrap_or_default();
            assert!(params.iter().any(|p| p["name"] == name && p["in"] == "path"), "{m} {path}: {name} undocumented");
        }
    }
}

/// `(method, documented path, requested path, credentials, body, expected status)`.
type Call<'a> = (&'a str, &'a str, &'a str, Cred<'a>, Option<Value>, u16);

/// What the server really answers (success and error bodies) has the documented shape, and
/// what the document says a request body is, the server accepts.
#[tokio::test]
async fn real_answers_match_the_documented_schemas() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    let check = |m: &str, path: &str, status: u16, body: &Value| {
        let schema = &op(&doc, m, path)["responses"][status.to_string()]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{m} {path}: {status} has no documented body");
        conforms(&doc, body, schema).unwrap_or_else(|e| panic!("{m} {path} {status}: {e}"));
    };
    let alice = Cred::Basic("alice", "openapi-pass");
    let calls: Vec<Call<'_>> = vec![
        (
            "POST",
            "/api/v1/users",
            "/api/v1/users",
            ADMIN,
            Some(json!({"username": "alice", "password": "openapi-pass", "role": "user"})),
            201,
        ),
        ("POST", "/api/v1/users", "/api/v1/users", ADMIN, Some(json!({"username": "alice", "password": "x"})), 409),
        ("POST", "/api/v1/users", "/api/v1/users", ADMIN, Some(json!({"username": "bob"})), 400),
        ("GET", "/api/v1/me", "/api/v1/me", alice, None, 200),
        ("GET", "/api/v1/users", "/api/v1/users", ADMIN, None, 200),
        ("GET", "/api/v1/users", "/api/v1/users", alice, None, 403),
        ("PATCH", "/api/v1/users/{username}", "/api/v1/users/alice", ADMIN, Some(json!({"active": true})), 200),
        (
            "POST",
            "/api/v1/tokens",
            "/api/v1/tokens",
            alice,
            Some(json!({"name": "ci", "read_only": true, "expires_in_days": 3})),
            201,
        ),
        ("GET", "/api/v1/tokens", "/api/v1/tokens", alice, None, 200),
        ("POST", "/api/v1/teams", "/api/v1/teams", alice, Some(json!({"name": "devs"})), 201),
        ("GET", "/api/v1/teams", "/api/v1/teams", alice, None, 200),
        ("GET", "/api/v1/teams/{team}", "/api/v1/teams/devs", alice, None, 200),
        ("GET", "/api/v1/teams/{team}", "/api/v1/teams/nope", alice, None, 404),
        ("PUT", "/api/v1/teams/{team}/members/{username}", "/api/v1/teams/devs/members/admin", alice, None, 200),
        (
            "POST",
            "/api/v1/collections",
            "/api/v1/collections",
            alice,
            Some(json!({"name": "oa", "private": true})),
            201,
        ),
        ("GET", "/api/v1/collections", "/api/v1/collections", alice, None, 200),
        (
            "PUT",
            "/api/v1/collections/{name}/members/teams/{team}",
            "/api/v1/collections/oa/members/teams/devs",
            alice,
            Some(json!({"role": "contributor"})),
            200,
        ),
        (
            "PUT",
            "/api/v1/collections/{name}/members/users/{username}",
            "/api/v1/collections/oa/members/users/admin",
            alice,
            Some(json!({"role": "owner"})),
            200,
        ),
        (
            "DELETE",
            "/api/v1/collections/{name}/members/users/{username}",
            "/api/v1/collections/oa/members/users/alice",
            alice,
            None,
            204,
        ),
        ("GET", "/api/v1/collections/{name}", "/api/v1/collections/oa", ADMIN, None, 200),
        ("PATCH", "/api/v1/collections/{name}", "/api/v1/collections/oa", ADMIN, Some(json!({"private": false})), 200),
        (
            "PUT",
            "/api/v1/collections/{name}/policy",
            "/api/v1/collections/oa/policy",
            ADMIN,
            Some(
                json!({"keep_newest": 3, "keep_tags": ["v*"], "untagged_after": "7d", "immutable_tags": ["release-*"]}),
            ),
            200,
        ),
        ("GET", "/api/v1/collections/{name}/policy", "/api/v1/collections/oa/policy", alice, None, 200),
        ("GET", "/api/v1/repositories/{name}", "/api/v1/repositories/oa/app", ADMIN, None, 200),
        ("DELETE", "/api/v1/collections/{name}", "/api/v1/collections/oa", alice, None, 403),
    ];
    // A repository to show: push one image into oa/app as admin.
    let mut pushed = false;
    for (m, path, url, cred, body, status) in calls {
        if url.starts_with("/api/v1/repositories/") && !pushed {
            let token = s.admin_token(&[&scope("oa/app", "pull,push")]).await;
            s.push_image(&token, "oa/app", "v1", "openapi").await;
            pushed = true;
        }
        let method = Method::from_bytes(m.as_bytes()).expect("method");
        let got = api_expect(&s, method, url, cred, body.as_ref(), status).await;
        if status == 204 {
            assert!(op(&doc, m, path)["responses"]["204"].is_object(), "{m} {path}: 204 undocumented");
            continue;
        }
        check(m, path, status, &got);
    }
}
