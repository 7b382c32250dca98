//! Sign-in through an LDAP directory (`auth.ldap`, docs/ldap.md) against Debian's real
//! `slapd`, started by each test on a loopback port over its own temporary config and a
//! seeded tree (people, groups): bind and search, RFC 4515 escaping, group → team sync
//! with added and removed members, group → role, managed teams refusing hand edits, a
//! changed password, a removed user (login and API token), a directory that is down (503
//! for directory users, the local admin still in), `auth.local_logins = false` with the
//! CLI recovery path, StartTLS and ldaps:// with a CA the test makes, and a push by a
//! directory user into a collection their directory group owns (over the API and with
//! skopeo).

pub mod clients;
mod slapd;

use std::{path::PathBuf, time::Duration};

use berth::config::Config;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{services::Postgres, *};
use clients::{podman_login, skopeo_push};
use slapd::{BASE, READER_DN, READER_PW, Slapd, group_dn, person_dn, pki};

/// `auth.ldap` for this directory: the reader service account, people and groups, the
/// `admins` group granting `admin`, no caching of the directory's word (so each login
/// asks it), plain LDAP on loopback.
fn use_ldap(c: &mut Config, url: &str) {
    let l = &mut c.auth.ldap;
    l.url = Some(url.to_owned());
    l.starttls = false;
    l.bind_dn = READER_DN.into();
    l.bind_password = READER_PW.into();
    l.user_base = format!("ou=people,{BASE}");
    l.group_base = format!("ou=groups,{BASE}");
    l.admin_groups = vec!["admins".into()];
    l.cache_secs = Some(0);
}

async fn start(slapd: &Slapd) -> TestServer {
    let url = slapd.url();
    TestServer::start_with(move |c| use_ldap(c, &url)).await
}

async fn token_status(s: &TestServer, user: &str, password: &str) -> u16 {
    s.token_response(Some((user, password)), &[]).await.status().as_u16()
}

async fn users(s: &TestServer) -> Vec<Value> {
    api_expect(s, Method::GET, "/api/v1/users", ADMIN, None, 200).await.as_array().unwrap().clone()
}

async fn usernames(s: &TestServer) -> Vec<String> {
    users(s).await.iter().map(|u| u["username"].as_str().unwrap().to_owned()).collect()
}

async fn team_members(s: &TestServer, team: &str) -> Vec<String> {
    let t = api_expect(s, Method::GET, &format!("/api/v1/teams/{team}"), ADMIN, None, 200).await;
    t["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect()
}

async fn team_names(s: &TestServer) -> Vec<String> {
    let all = api_expect(s, Method::GET, "/api/v1/teams", ADMIN, None, 200).await;
    all.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn directory_login_creates_the_user_and_refuses_bad_credentials() {
    let slapd = Slapd::start(None);
    let s = start(&slapd).await;

    let body = s.token_json(Some(("alice", "alice-pw")), &["repository:alice/app:pull"]).await;
    let (_, claims) = decode_jwt(body["token"].as_str().unwrap());
    assert_eq!(claims["sub"], "alice");
    let me = api_expect(&s, Method::GET, "/api/v1/me", Cred::Basic("alice", "alice-pw"), None, 200).await;
    assert_eq!((me["username"].as_str(), me["role"].as_str()), (Some("alice"), Some("user")));
    assert!(usernames(&s).await.contains(&"alice".to_owned()));
    // Typed in another case: the same directory entry, the same local user.
    let body = s.token_json(Some(("Alice", "alice-pw")), &[]).await;
    assert_eq!(decode_jwt(body["token"].as_str().unwrap()).1["sub"], "alice");

    // An empty password never reaches the directory as a bind (slapd answers an
    // unauthenticated bind, a DN without password, with success).
    let before = slapd.binds(&person_dn("alice"));
    assert_eq!(token_status(&s, "alice", "").await, 401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(slapd.binds(&person_dn("alice")), before, "a bind as alice for an empty password");
    assert!(before > 0, "the stats log shows binds");

    for (user, password, what) in [
        ("alice", "wrong", "wrong password"),
        ("alice", "", "empty password (an unauthenticated bind would succeed)"),
        ("nobody", "alice-pw", "unknown user"),
        ("al*", "alice-pw", "wildcard injection"),
        ("*)(uid=*", "alice-pw", "filter injection"),
        ("alice)(|(uid=*", "alice-pw", "filter injection"),
        ("reader", READER_PW, "entry outside user_base"),
    ] {
        let resp = s.token_response(Some((user, password)), &[]).await;
        expect_error(resp, 401, "UNAUTHORIZED", what).await;
        api_error(&s, Method::GET, "/api/v1/me", Cred::Basic(user, password), None, 401).await;
    }
    // The directory's entry `admin` cannot take over the local superuser.
    assert_eq!(token_status(&s, "admin", "admin-pw").await, 401);
    assert_eq!(token_status(&s, ADMIN_USER, ADMIN_PASSWORD).await, 200);
    // Failed attempts created nobody.
    assert_eq!(usernames(&s).await, ["admin", "alice"]);
    let alice = users(&s).await.into_iter().find(|u| u["username"] == "alice").unwrap();
    assert_eq!(alice["role"], "user");
}

#[tokio::test]
async fn groups_become_teams_and_membership_follows_the_directory() {
    let slapd = Slapd::start(None);
    let s = start(&slapd).await;

    assert_eq!(token_status(&s, "bob", "bob-pw").await, 200);
    assert_eq!(team_names(&s).await, ["devs", "ops"]);
    assert_eq!(team_members(&s, "devs").await, ["bob"]);
    assert_eq!(team_members(&s, "ops").await, ["bob"]);
    assert_eq!(token_status(&s, "alice", "alice-pw").await, 200);
    assert_eq!(team_members(&s, "devs").await, ["alice", "bob"]);

    // bob leaves ops, joins a new group qa and the admins.
    slapd.modify(&format!(
        "dn: {ops}\nchangetype: modify\ndelete: member\nmember: {bob}\n-\nadd: member\nmember: {alice}\n\n\
         dn: {qa}\nchangetype: add\nobjectClass: groupOfNames\ncn: qa\nmember: {bob}\n\n\
         dn: {admins}\nchangetype: modify\nadd: member\nmember: {bob}\n",
        ops = group_dn("ops"),
        qa = group_dn("qa"),
        admins = group_dn("admins"),
        bob = person_dn("bob"),
        alice = person_dn("alice"),
    ));
    // Nothing changes before bob's next login.
    assert_eq!(team_members(&s, "ops").await, ["bob"]);
    let me = api_expect(&s, Method::GET, "/api/v1/me", Cred::Basic("bob", "bob-pw"), None, 200).await;
    assert_eq!(me["role"], "admin", "the admins group grants admin");
    assert_eq!(team_members(&s, "ops").await, Vec::<String>::new(), "bob left ops");
    assert_eq!(team_members(&s, "qa").await, ["bob"]);
    assert_eq!(team_members(&s, "devs").await, ["alice", "bob"]);
    assert_eq!(team_names(&s).await, ["admins", "devs", "ops", "qa"]);

    // Out of admins again: back to user at the next login.
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n",
        group_dn("admins"),
        person_dn("bob")
    ));
    let me = api_expect(&s, Method::GET, "/api/v1/me", Cred::Basic("bob", "bob-pw"), None, 200).await;
    assert_eq!(me["role"], "user");
    assert_eq!(team_members(&s, "admins").await, Vec::<String>::new());
}

#[tokio::test]
async fn directory_users_and_teams_on_postgresql() {
    let slapd = Slapd::start(None);
    let pg = Postgres::start();
    let db = pg.database("ldap").await;
    let url = slapd.url();
    let s = TestServer::start_with(move |c| {
        use_ldap(c, &url);
        c.database.url = Some(db.clone());
    })
    .await;
    // First logins of two members of one group at once: one creates the team, the other
    // waits for it and joins it.
    let logins: Vec<_> = (0..8)
        .map(|i| if i % 2 == 0 { ("alice", "alice-pw") } else { ("bob", "bob-pw") })
        .map(|creds| s.token_response(Some(creds), &[]))
        .collect();
    for resp in futures_util::future::join_all(logins).await {
        assert_eq!(resp.status().as_u16(), 200);
    }
    assert_eq!(team_members(&s, "devs").await, ["alice", "bob"]);
    assert_eq!(team_members(&s, "ops").await, ["bob"]);
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n",
        group_dn("devs"),
        person_dn("bob")
    ));
    assert_eq!(token_status(&s, "bob", "bob-pw").await, 200);
    assert_eq!(team_members(&s, "devs").await, ["alice"]);
    assert_eq!(team_members(&s, "ops").await, ["bob"]);
    api_expect(&s, Method::PUT, "/api/v1/teams/devs/members/bob", ADMIN, None, 409).await;
    let created =
        api_expect(&s, Method::POST, "/api/v1/tokens", Cred::Basic("bob", "bob-pw"), Some(&json!({"name": "t"})), 201)
            .await;
    let pat = created["token"].as_str().unwrap().to_owned();
    api_expect(&s, Method::GET, "/api/v1/me", Cred::Bearer(&pat), None, 200).await;
    slapd.modify(&format!("dn: {}\nchangetype: delete\n", person_dn("bob")));
    api_error(&s, Method::GET, "/api/v1/me", Cred::Bearer(&pat), None, 401).await;
    assert_eq!(token_status(&s, "bob", "bob-pw").await, 401);
}

#[tokio::test]
async fn directory_managed_teams_refuse_hand_edits() {
    let slapd = Slapd::start(None);
    let s = start(&slapd).await;
    assert_eq!(token_status(&s, "alice", "alice-pw").await, 200);
    api_user(&s, "zed", "zed-password", "user").await;

    for (method, path) in
        [(Method::PUT, "/api/v1/teams/devs/members/zed"), (Method::DELETE, "/api/v1/teams/devs/members/alice")]
    {
        let body = api_expect(&s, method.clone(), path, ADMIN, None, 409).await;
        assert_eq!(body["error"], "conflict");
        assert!(body["message"].as_str().unwrap().contains("directory"), "{method} {path}: {body}");
    }
    assert_eq!(team_members(&s, "devs").await, ["alice"]);
    // Nor does a directory user get a local password by hand.
    let body =
        api_expect(&s, Method::PATCH, "/api/v1/users/alice", ADMIN, Some(&json!({"password": "local-pw"})), 409).await;
    assert!(body["message"].as_str().unwrap().contains("directory"), "{body}");
    assert_eq!(token_status(&s, "alice", "local-pw").await, 401);
    // An account the superuser deactivated stays out, whatever the directory says.
    api_expect(&s, Method::PATCH, "/api/v1/users/alice", ADMIN, Some(&json!({"active": false})), 200).await;
    assert_eq!(token_status(&s, "alice", "alice-pw").await, 401);
    api_expect(&s, Method::PATCH, "/api/v1/users/alice", ADMIN, Some(&json!({"active": true})), 200).await;
    assert_eq!(token_status(&s, "alice", "alice-pw").await, 200);
    // The same edits through the CLI hit the same rule.
    let out = berth_cli(&s, &["team", "remove-member", "devs", "alice"]).await;
    assert!(!out.status.success(), "CLI edit of a managed team must fail");
    assert_eq!(team_members(&s, "devs").await, ["alice"]);

    // A hand-made team stays editable, and a directory group never takes it over.
    api_expect(&s, Method::POST, "/api/v1/teams", ADMIN, Some(&json!({"name": "ops"})), 201).await;
    api_expect(&s, Method::PUT, "/api/v1/teams/ops/members/zed", ADMIN, None, 200).await;
    assert_eq!(token_status(&s, "bob", "bob-pw").await, 200);
    assert_eq!(team_members(&s, "ops").await, ["zed"], "bob's group ops must not join the hand-made team");
    assert_eq!(team_members(&s, "devs").await, ["alice", "bob"]);
}

#[tokio::test]
async fn changed_and_removed_directory_users_are_refused_and_their_tokens_stop() {
    let slapd = Slapd::start(None);
    let s = start(&slapd).await;
    let carol = Cred::Basic("carol", "carol-pw");
    assert_eq!(token_status(&s, "carol", "carol-pw").await, 200);
    let created = api_expect(&s, Method::POST, "/api/v1/tokens", carol, Some(&json!({"name": "ci"})), 201).await;
    let pat = created["token"].as_str().unwrap().to_owned();
    api_expect(&s, Method::GET, "/api/v1/me", Cred::Bearer(&pat), None, 200).await;
    assert_eq!(token_status(&s, "carol", &pat).await, 200, "API token as the docker password");
    let refresh = s.token_json(Some(("carol", "carol-pw")), &[]).await;
    assert!(refresh.get("refresh_token").is_none());
    let offline = s
        .client()
        .get(s.url("/token?service=berth&offline_token=true"))
        .basic_auth("carol", Some("carol-pw"))
        .send()
        .await
        .unwrap();
    let rt = expect_status(offline, 200, "offline token").await.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // A changed password: the old one is refused, the new one works.
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: userPassword\nuserPassword: carol-new\n",
        person_dn("carol")
    ));
    assert_eq!(token_status(&s, "carol", "carol-pw").await, 401);
    assert_eq!(token_status(&s, "carol", "carol-new").await, 200);

    // Removed from the directory: password, API token and refresh token all refused.
    slapd.modify(&format!("dn: {}\nchangetype: delete\n", person_dn("carol")));
    assert_eq!(token_status(&s, "carol", "carol-new").await, 401);
    api_error(&s, Method::GET, "/api/v1/me", Cred::Bearer(&pat), None, 401).await;
    assert_eq!(token_status(&s, "carol", &pat).await, 401);
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt.as_str()), ("service", "berth")];
    let resp = s.client().post(s.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401, "refresh token of a removed user");
}

#[tokio::test]
async fn a_remembered_directory_login_lasts_the_cache_lifetime_only() {
    let slapd = Slapd::start(None);
    let url = slapd.url();
    let s = TestServer::start_with(move |c| {
        use_ldap(c, &url);
        c.auth.ldap.cache_secs = Some(4);
    })
    .await;
    assert_eq!(token_status(&s, "frank", "frank-pw").await, 200);
    let created = api_expect(
        &s,
        Method::POST,
        "/api/v1/tokens",
        Cred::Basic("frank", "frank-pw"),
        Some(&json!({"name": "t"})),
        201,
    )
    .await;
    let pat = created["token"].as_str().unwrap().to_owned();
    slapd.modify(&format!("dn: {}\nchangetype: delete\n", person_dn("frank")));
    // Within the lifetime the remembered password and the token still count …
    assert_eq!(token_status(&s, "frank", "frank-pw").await, 200);
    api_expect(&s, Method::GET, "/api/v1/me", Cred::Bearer(&pat), None, 200).await;
    // … and not after it.
    tokio::time::sleep(Duration::from_millis(5200)).await;
    assert_eq!(token_status(&s, "frank", "frank-pw").await, 401);
    api_error(&s, Method::GET, "/api/v1/me", Cred::Bearer(&pat), None, 401).await;
}

#[tokio::test]
async fn a_directory_that_is_down_answers_503_and_local_accounts_still_work() {
    let mut slapd = Slapd::start(None);
    let s = start(&slapd).await;
    assert_eq!(token_status(&s, "alice", "alice-pw").await, 200);
    let created = api_expect(
        &s,
        Method::POST,
        "/api/v1/tokens",
        Cred::Basic("alice", "alice-pw"),
        Some(&json!({"name": "t"})),
        201,
    )
    .await;
    let pat = created["token"].as_str().unwrap().to_owned();

    slapd.stop();
    let resp = s.token_response(Some(("alice", "alice-pw")), &[]).await;
    expect_error(resp, 503, "UNKNOWN", "directory user while the directory is down").await;
    let body = api_expect(&s, Method::GET, "/api/v1/me", Cred::Basic("alice", "alice-pw"), None, 503).await;
    assert_eq!(body["error"], "unavailable");
    api_expect(&s, Method::GET, "/api/v1/me", Cred::Bearer(&pat), None, 503).await;
    // An unknown name might be the directory's: 503 as well, not a 401 that guesses.
    assert_eq!(token_status(&s, "nobody", "nobody-pw").await, 503);
    // Operators see it (the recorder is the process's, so other tests' checks add up too).
    let metrics = s.get("/metrics", None).await.text().await.unwrap();
    let unavailable = metrics
        .lines()
        .find(|l| {
            l.starts_with("berth_directory_checks_total{")
                && l.contains("result=\"unavailable\"")
                && l.contains("kind=\"login\"")
        })
        .unwrap_or_else(|| panic!("no unavailable directory checks in /metrics:\n{metrics}"));
    assert!(unavailable.rsplit(' ').next().unwrap().parse::<f64>().unwrap() >= 2.0, "{unavailable}");
    // Not a silent fallback, and no failed-login count: the local superuser still gets in.
    assert_eq!(token_status(&s, ADMIN_USER, ADMIN_PASSWORD).await, 200);
    api_expect(&s, Method::GET, "/api/v1/me", ADMIN, None, 200).await;
    // Repeated 503s are not failures that throttle alice.
    for _ in 0..8 {
        assert_eq!(token_status(&s, "alice", "alice-pw").await, 503);
    }

    slapd.resume();
    assert_eq!(token_status(&s, "alice", "alice-pw").await, 200);
    api_expect(&s, Method::GET, "/api/v1/me", Cred::Bearer(&pat), None, 200).await;
}

#[tokio::test]
async fn directory_logins_are_remembered_and_throttled_like_local_ones() {
    let mut slapd = Slapd::start(None);
    let url = slapd.url();
    let s = TestServer::start_with(move |c| {
        use_ldap(c, &url);
        c.auth.ldap.cache_secs = Some(300);
    })
    .await;
    assert_eq!(token_status(&s, "grace", "grace-pw").await, 200);
    // Remembered: the same password needs no directory while the check is fresh; any other
    // password does (and gets 503, not a guess).
    slapd.stop();
    assert_eq!(token_status(&s, "grace", "grace-pw").await, 200);
    assert_eq!(token_status(&s, "grace", "other-pw").await, 503);
    slapd.resume();

    // Wrong directory passwords count towards the throttle: bad passwords until a block of
    // at least 3 s, inside which even the right password waits.
    let mut blocked = false;
    for _ in 0..40 {
        let resp = s.token_response(Some(("bob", "wrong")), &[]).await;
        match resp.status().as_u16() {
            401 => {}
            429 => {
                let retry: u64 = header(&resp, "retry-after").expect("Retry-After").parse().unwrap();
                if retry >= 3 {
                    blocked = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            other => panic!("bad directory password: {other}"),
        }
    }
    assert!(blocked, "40 bad directory passwords and never a block of 3 s");
    let resp = s.token_response(Some(("bob", "bob-pw")), &[]).await;
    assert_eq!(resp.status().as_u16(), 429);
    assert!(header(&resp, "retry-after").is_some());
}

#[tokio::test]
async fn concurrent_logins_share_one_directory_bind() {
    let slapd = Slapd::start(None);
    let s = start(&slapd).await;
    let before = slapd.binds(&person_dn("alice"));
    let logins: Vec<_> = (0..16).map(|_| s.token_response(Some(("alice", "alice-pw")), &[])).collect();
    for resp in futures_util::future::join_all(logins).await {
        assert_eq!(resp.status().as_u16(), 200);
    }
    // slapd writes its log as it answers; give the last line a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let binds = slapd.binds(&person_dn("alice")) - before;
    eprintln!("16 concurrent logins: {binds} binds as alice");
    assert!((1..16).contains(&binds), "16 concurrent logins made {binds} binds as alice");

    // First logins of different members of one group at once (SQLite): all in, one team.
    let logins: Vec<_> = ["bob", "carol", "dave", "erin"]
        .iter()
        .flat_map(|u| [*u; 3])
        .map(|u| {
            let pw = format!("{u}-pw");
            let s = &s;
            async move { s.token_response(Some((u, pw.as_str())), &[]).await.status().as_u16() }
        })
        .collect();
    assert!(futures_util::future::join_all(logins).await.iter().all(|st| *st == 200));
    assert_eq!(team_members(&s, "devs").await, ["alice", "bob"]);
    assert_eq!(usernames(&s).await, ["admin", "alice", "bob", "carol", "dave", "erin"]);
}

#[tokio::test]
async fn without_local_logins_only_the_directory_and_the_cli_let_people_in() {
    let slapd = Slapd::start(None);
    let url = slapd.url();
    let s = TestServer::start_with(move |c| {
        use_ldap(c, &url);
        c.auth.local_logins = false;
    })
    .await;
    assert_eq!(token_status(&s, ADMIN_USER, ADMIN_PASSWORD).await, 401);
    api_error(&s, Method::GET, "/api/v1/me", ADMIN, None, 401).await;
    assert_eq!(token_status(&s, "alice", "alice-pw").await, 200);

    // Recovery: the CLI works on the database directly and mints the superuser a token.
    let out = berth_cli(&s, &["token", "create", ADMIN_USER, "recovery"]).await;
    assert!(out.status.success(), "berth token create: {}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).expect("token JSON");
    let pat = printed["token"].as_str().expect("token printed").to_owned();
    let me = api_expect(&s, Method::GET, "/api/v1/me", Cred::Bearer(&pat), None, 200).await;
    assert_eq!(me["role"], "superuser");
    assert_eq!(token_status(&s, ADMIN_USER, &pat).await, 200);
}

async fn tls_login(ldap_url: String, ca: PathBuf, starttls: bool) -> u16 {
    let s = TestServer::start_with(move |c| {
        use_ldap(c, &ldap_url);
        c.auth.ldap.starttls = starttls;
        c.auth.ldap.ca_file = Some(ca.clone());
    })
    .await;
    token_status(&s, "alice", "alice-pw").await
}

#[tokio::test]
async fn starttls_and_ldaps_with_a_ca_the_test_makes() {
    let slapd = Slapd::start(Some(&pki()));
    let ldaps = format!("ldaps://127.0.0.1:{}", slapd.tls_port.unwrap());
    assert_eq!(tls_login(slapd.url(), slapd.ca_file(), true).await, 200, "StartTLS");
    assert_eq!(tls_login(ldaps.clone(), slapd.ca_file(), true).await, 200, "ldaps://");

    // Another CA: the certificate is not trusted, so the directory is unavailable.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("ca.pem");
    std::fs::write(&other_ca, pki().ca_pem).unwrap();
    assert_eq!(tls_login(slapd.url(), other_ca.clone(), true).await, 503, "StartTLS, untrusted certificate");
    assert_eq!(tls_login(ldaps, other_ca, true).await, 503, "ldaps://, untrusted certificate");
}

#[tokio::test]
async fn a_directory_user_pushes_into_the_collection_their_group_owns() {
    let slapd = Slapd::start(None);
    let url = slapd.url();
    let s = TestServer::start_with(move |c| {
        use_ldap(c, &url);
        c.auth.user_collections = false;
    })
    .await;
    // alice's first login brings the team devs; the admin makes it owner of a private
    // collection.
    assert_eq!(token_status(&s, "alice", "alice-pw").await, 200);
    api_expect(&s, Method::POST, "/api/v1/collections", ADMIN, Some(&json!({"name": "devs", "private": true})), 201)
        .await;
    api_expect(
        &s,
        Method::PUT,
        "/api/v1/collections/devs/members/teams/devs",
        ADMIN,
        Some(&json!({"role": "owner"})),
        200,
    )
    .await;

    let scope = "repository:devs/app:pull,push";
    let token = s.token(Some(("alice", "alice-pw")), &[scope]).await;
    assert_eq!(granted_sorted(&token, "devs/app"), ["pull", "push"]);
    let config = b"{\"architecture\":\"amd64\",\"os\":\"linux\"}".to_vec();
    let layer = test_bytes(4096, 7);
    s.push_blob(&token, "devs/app", &config).await;
    let layer_digest = s.push_blob(&token, "devs/app", &layer).await;
    let manifest = oci_manifest(&config, &[&layer]);
    let digest = s.push_manifest(&token, "devs/app", "1.0", OCI_MANIFEST, &manifest).await;
    let got = s.get("/v2/devs/app/manifests/1.0", Some(&token)).await;
    let got = expect_status(got, 200, "GET pushed manifest").await;
    assert_eq!(header(&got, "docker-content-digest").as_deref(), Some(digest.as_str()));
    assert_eq!(s.blob_on_disk(&layer_digest).as_deref(), Some(layer.as_slice()));

    // erin is in no group: no push, and the private collection does not show.
    assert_eq!(token_status(&s, "erin", "erin-pw").await, 200);
    let erin = s.token(Some(("erin", "erin-pw")), &[scope]).await;
    assert_eq!(granted_sorted(&erin, "devs/app"), Vec::<String>::new());
    let resp = s.put_manifest(&erin, "devs/app", "2.0", Some(OCI_MANIFEST), &manifest).await;
    assert_eq!(resp.status().as_u16(), 403);

    // Removed from the group in the directory: the next token grants nothing.
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n",
        group_dn("devs"),
        person_dn("alice")
    ));
    let token = s.token(Some(("alice", "alice-pw")), &[scope]).await;
    assert_eq!(granted_sorted(&token, "devs/app"), Vec::<String>::new());

    // bob (still in devs) logs in with podman and pushes with a real client: skopeo, Basic
    // credentials on /token.
    podman_login(&s, "bob", "bob-pw", true).await;
    podman_login(&s, "bob", "wrong", false).await;
    skopeo_push(&s, "bob", "bob-pw", "devs/tool:1").await;
    let token = s.token(Some(("bob", "bob-pw")), &["repository:devs/tool:pull"]).await;
    expect_status(s.get("/v2/devs/tool/manifests/1", Some(&token)).await, 200, "manifest pushed by skopeo").await;
}

#[tokio::test]
async fn a_directory_users_web_session_ends_with_their_directory_entry() {
    let slapd = Slapd::start(None);
    let s = start(&slapd).await;
    let b = crate::ui::Browser::login(&s, "carol", "carol-pw").await;
    let (status, body) = b.get("/ui/account").await;
    assert_eq!(status, 200);
    assert!(body.contains("carol"), "{body}");

    // Gone from the directory: with no caching of its word, the next page asks it again
    // and the session no longer signs carol in.
    slapd.modify(&format!("dn: {}\nchangetype: delete\n", person_dn("carol")));
    let r = b.get_response("/ui/account").await;
    assert_eq!(r.status(), 303, "a removed directory user's session");
    assert!(crate::ui::location(&r).starts_with("/ui/login"), "{}", crate::ui::location(&r));

    // The directory down: the session's check answers 503, never a silent pass.
    let d = crate::ui::Browser::login(&s, "dave", "dave-pw").await;
    drop(slapd);
    assert_eq!(d.get_response("/ui/account").await.status(), 503);
}
