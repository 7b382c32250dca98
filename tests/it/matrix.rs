//! The whole DESIGN §3 permission matrix through real `/token` requests and real registry
//! calls: every principal × collection visibility × `user_collections` × `private_registry`.
//! Users, teams, collections and memberships are set up through the management API (§8).
//! The expected grants come from [`expected`], a transcription of the §3 table written for
//! this test (it deliberately does not call berth's own rules function).
//!
//! Also the collection-creation race of §3 ("the unique name decides a race").

use std::fmt;

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

const PASSWORD: &str = "matrix-password";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anonymous,
    Superuser,
    Admin,
    Owner,
    Contributor,
    TeamContributor,
    TeamOwner,
    Unrelated,
}

const EVERYONE: [Who; 8] = [
    Who::Anonymous,
    Who::Superuser,
    Who::Admin,
    Who::Owner,
    Who::Contributor,
    Who::TeamContributor,
    Who::TeamOwner,
    Who::Unrelated,
];

impl Who {
    /// The username this principal logs in with (`None`: anonymous).
    fn user(self) -> Option<&'static str> {
        match self {
            Who::Anonymous => None,
            Who::Superuser => Some(ADMIN_USER),
            Who::Admin => Some("staff"),
            Who::Owner => Some("own"),
            Who::Contributor => Some("contrib"),
            Who::TeamContributor => Some("tcontrib"),
            Who::TeamOwner => Some("towner"),
            Who::Unrelated => Some("stranger"),
        }
    }

    fn creds(self) -> Option<(&'static str, &'static str)> {
        self.user().map(|u| if u == ADMIN_USER { (u, ADMIN_PASSWORD) } else { (u, PASSWORD) })
    }
}

/// What a principal may do: (pull, push, delete).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Grant {
    pull: bool,
    push: bool,
    delete: bool,
}

impl Grant {
    const ALL: Grant = Grant { pull: true, push: true, delete: true };
    const PULL_PUSH: Grant = Grant { pull: true, push: true, delete: false };
    const PULL: Grant = Grant { pull: true, push: false, delete: false };
    const NONE: Grant = Grant { pull: false, push: false, delete: false };

    fn names(self) -> Vec<String> {
        let mut v: Vec<String> = [(self.pull, "pull"), (self.push, "push"), (self.delete, "delete")]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| n.to_string())
            .collect();
        v.sort();
        v
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.names().join(","))
    }
}

/// DESIGN §3, row by row, for an existing collection. `user_collections` only decides who
/// may *create* collections, so no row of the table depends on it for an existing one; it
/// is still a parameter so that the matrix shows it does not change anything.
fn expected(who: Who, private_collection: bool, _user_collections: bool, private_registry: bool) -> Grant {
    match who {
        // superuser, admin, owner of C (directly or via a team): everything.
        Who::Superuser | Who::Admin | Who::Owner | Who::TeamOwner => Grant::ALL,
        // contributor of C (directly or via a team): pull and push.
        Who::Contributor | Who::TeamContributor => Grant::PULL_PUSH,
        // user, C public: pull.
        Who::Unrelated if !private_collection => Grant::PULL,
        // anonymous, C public, registry not private: pull.
        Who::Anonymous if !private_collection && !private_registry => Grant::PULL,
        // anyone else: nothing.
        _ => Grant::NONE,
    }
}

/// Settings of one server in the matrix.
#[derive(Clone, Copy, Debug)]
struct Settings {
    user_collections: bool,
    private_registry: bool,
}

/// Users, teams and the two collections `pubc` (public) and `privc` (private), each with a
/// direct owner, a direct contributor, a contributor team and an owner team, and an image
/// `app:base` pushed by the superuser. Everything through `/api/v1` as the superuser.
async fn set_up(s: &TestServer) -> Vec<u8> {
    api_user(s, "staff", PASSWORD, "admin").await;
    for u in ["own", "contrib", "tcontrib", "towner", "stranger"] {
        api_user(s, u, PASSWORD, "user").await;
    }
    for (team, member) in [("tc", "tcontrib"), ("to", "towner")] {
        let t = api_expect(s, Method::POST, "/api/v1/teams", ADMIN, Some(&json!({"name": team})), 201).await;
        assert_eq!(t["name"], team, "POST /api/v1/teams answers the team: {t}");
        let path = format!("/api/v1/teams/{team}/members/{member}");
        api_expect(s, Method::PUT, &path, ADMIN, None, 200).await;
    }
    let mut manifest = Vec::new();
    for coll in ["pubc", "privc"] {
        let c = api_expect(s, Method::POST, "/api/v1/collections", ADMIN, Some(&json!({"name": coll})), 201).await;
        assert_eq!(c["name"], coll, "{c}");
        if coll == "privc" {
            let path = format!("/api/v1/collections/{coll}");
            let c = api_expect(s, Method::PATCH, &path, ADMIN, Some(&json!({"private": true})), 200).await;
            assert_eq!(c["private"], true, "{c}");
        }
        for (kind, member, role) in [
            ("users", "own", "owner"),
            ("users", "contrib", "contributor"),
            ("teams", "tc", "contributor"),
            ("teams", "to", "owner"),
        ] {
            let path = format!("/api/v1/collections/{coll}/members/{kind}/{member}");
            api_expect(s, Method::PUT, &path, ADMIN, Some(&json!({"role": role})), 200).await;
        }
        // The creator (the superuser) leaves, so the memberships are exactly the designed ones.
        api_expect(
            s,
            Method::DELETE,
            &format!("/api/v1/collections/{coll}/members/users/{ADMIN_USER}"),
            ADMIN,
            None,
            204,
        )
        .await;
        let c = api_expect(s, Method::GET, &format!("/api/v1/collections/{coll}"), ADMIN, None, 200).await;
        let mut owners: Vec<String> = c["owners"].as_array().expect("owners").iter().map(Value::to_string).collect();
        let mut contributors: Vec<String> =
            c["contributors"].as_array().expect("contributors").iter().map(Value::to_string).collect();
        owners.sort();
        contributors.sort();
        assert_eq!(owners, [r#"{"team":"to"}"#, r#"{"user":"own"}"#], "owners of {coll}: {c}");
        assert_eq!(contributors, [r#"{"team":"tc"}"#, r#"{"user":"contrib"}"#], "contributors of {coll}: {c}");
        assert_eq!(c["private"], coll == "privc", "{c}");

        let token = s.repo_token(&[&format!("{coll}/app")]).await;
        manifest = s.push_image(&token, &format!("{coll}/app"), "base", "matrix").await.manifest;
    }
    manifest
}

/// What a denied registry request must answer (§4): 401 for an empty `sub` (or no token),
/// 403 `DENIED` for a named user.
async fn check_denied(resp: reqwest::Response, who: Who, what: &str, failures: &mut Vec<String>) {
    let status = resp.status().as_u16();
    let chal = header(&resp, "www-authenticate");
    let body = resp.text().await.unwrap_or_default();
    let codes = serde_json::from_str::<Value>(&body).map(|v| error_codes_of(&v)).unwrap_or_default();
    if who == Who::Anonymous {
        if status != 401 || chal.is_none() {
            failures.push(format!("{what}: expected 401 with a challenge, got {status} {chal:?} {body}"));
        }
    } else if status != 403 || !codes.iter().any(|c| c == "DENIED") {
        failures.push(format!("{what}: expected 403 DENIED, got {status} {body}"));
    }
}

/// Checks one cell; returns how many checks ran. Problems are appended to `failures`.
#[expect(clippy::too_many_arguments, reason = "one matrix cell is described by all of these")]
async fn check_cell(
    s: &TestServer,
    set: Settings,
    who: Who,
    coll: &str,
    private_collection: bool,
    cell: usize,
    manifest: &[u8],
    failures: &mut Vec<String>,
) -> usize {
    let repo = format!("{coll}/app");
    let want = expected(who, private_collection, set.user_collections, set.private_registry);
    let label = format!("[{set:?} {who:?} {coll}]");
    let admin = s.repo_token(&[&repo]).await;

    // A fresh tag for this cell, so that one cell's delete does not disturb another.
    let tag = format!("cell{cell}");
    s.push_manifest(&admin, &repo, &tag, OCI_MANIFEST, manifest).await;

    // 1. The token.
    let resp = s.token_response(who.creds(), &[&scope(&repo, "pull,push,delete")]).await;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let token: Option<String> = if who == Who::Anonymous && set.private_registry {
        // §4: no credentials on a private registry is a 401 from /token: no access at all.
        if status != 401 {
            failures.push(format!("{label} anonymous /token on a private registry: expected 401, got {status} {body}"));
        }
        None
    } else if status != 200 {
        failures.push(format!("{label} /token: expected 200, got {status} {body}"));
        None
    } else {
        let json: Value = serde_json::from_str(&body).expect("token JSON");
        let token = json["token"].as_str().expect("token").to_string();
        match granted(&token, &repo) {
            None => failures.push(format!("{label} token has no access entry for {repo}")),
            Some(_) => {
                let got = granted_sorted(&token, &repo);
                if got != want.names() {
                    failures.push(format!("{label} token grants {got:?}, DESIGN §3 says {want}"));
                }
            }
        }
        Some(token)
    };
    let t = token.as_deref();

    // 2. Pull.
    let resp = s.get(&format!("/v2/{repo}/manifests/{tag}"), t).await;
    if want.pull {
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        if status != 200 || body.as_ref() != manifest {
            failures.push(format!("{label} pull: expected 200 with the manifest, got {status}"));
        }
    } else {
        check_denied(resp, who, &format!("{label} pull"), failures).await;
    }

    // 3. Push: a blob of its own per cell, POST then PUT.
    let blob = format!("blob pushed by {who:?} into {coll} in cell {cell}").into_bytes();
    let digest = sha256_digest(&blob);
    let resp = s.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), t).send().await.expect("POST upload");
    if want.push {
        let status = resp.status().as_u16();
        match header(&resp, "location") {
            Some(loc) if status == 202 => {
                let resp = s.finish_upload(t.unwrap_or_default(), &loc, &digest, &blob).await;
                let status = resp.status().as_u16();
                if status != 201 {
                    let body = resp.text().await.unwrap_or_default();
                    failures.push(format!("{label} push PUT: expected 201, got {status} {body}"));
                }
            }
            _ => {
                let body = resp.text().await.unwrap_or_default();
                failures.push(format!("{label} push POST: expected 202 with Location, got {status} {body}"));
            }
        }
    } else {
        check_denied(resp, who, &format!("{label} push"), failures).await;
    }
    let stored = s.head(&format!("/v2/{repo}/blobs/{digest}"), Some(&admin)).await.status().as_u16();
    if stored != if want.push { 200 } else { 404 } {
        failures.push(format!("{label} after the push the blob answers {stored} to the superuser"));
    }

    // 4. Delete the cell's tag.
    let resp = s.delete(&format!("/v2/{repo}/manifests/{tag}"), t).await;
    if want.delete {
        let status = resp.status().as_u16();
        if status != 202 {
            let body = resp.text().await.unwrap_or_default();
            failures.push(format!("{label} delete: expected 202, got {status} {body}"));
        }
    } else {
        check_denied(resp, who, &format!("{label} delete"), failures).await;
    }
    let left = s.get(&format!("/v2/{repo}/manifests/{tag}"), Some(&admin)).await.status().as_u16();
    if left != if want.delete { 404 } else { 200 } {
        failures.push(format!("{label} after the delete the tag answers {left} to the superuser"));
    }
    4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permission_matrix_through_real_tokens_and_requests() {
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    let mut cells = 0;
    let mut checks = 0;
    for user_collections in [true, false] {
        for private_registry in [false, true] {
            let set = Settings { user_collections, private_registry };
            let s = start_with_settings(user_collections, private_registry).await;
            let manifest = set_up(&s).await;
            for who in EVERYONE {
                for (coll, private_collection) in [("pubc", false), ("privc", true)] {
                    checks += check_cell(&s, set, who, coll, private_collection, cells, &manifest, &mut failures).await;
                    cells += 1;
                }
            }
        }
    }
    println!(
        "permission matrix: {cells} cells, {checks} checks (token, pull, push, delete) in {:?}",
        started.elapsed()
    );
    assert_eq!(cells, 64, "8 principals × 2 visibilities × 2 user_collections × 2 private_registry");
    assert!(failures.is_empty(), "{} of {checks} checks failed:\n{}", failures.len(), failures.join("\n"));
}

/// Two users ask for push in the same new collection at once, over many rounds: exactly one
/// becomes its only owner, the other still gets a 200 token judged against the collection
/// that now exists (no push), and no collection is half-created (§3).
async fn race(default_private: bool) {
    let s = TestServer::start_with(move |c| c.auth.default_private = default_private).await;
    api_user(&s, "alice", PASSWORD, "user").await;
    api_user(&s, "bob", PASSWORD, "user").await;
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        let coll = format!("race{round}");
        let repo = format!("{coll}/app");
        let sc = scope(&repo, "pull,push");
        let scopes = [sc.as_str()];
        let (a, b) = tokio::join!(
            s.token_response(Some(("alice", PASSWORD)), &scopes),
            s.token_response(Some(("bob", PASSWORD)), &scopes),
        );
        let mut tokens = Vec::new();
        for (who, resp) in [("alice", a), ("bob", b)] {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            assert_eq!(status, 200, "round {round}: {who}'s token request (the loser still gets a token): {body}");
            let json: Value = serde_json::from_str(&body).expect("token JSON");
            tokens.push((who, json["token"].as_str().expect("token").to_string()));
        }
        let winners: Vec<&str> =
            tokens.iter().filter(|(_, t)| granted_sorted(t, &repo).contains(&"push".into())).map(|(w, _)| *w).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one push grant, got {winners:?}");
        let winner = winners[0];
        for (who, t) in &tokens {
            let got = granted_sorted(t, &repo);
            if *who == winner {
                assert_eq!(got, ["pull", "push"], "round {round}: the owner's grant");
            } else {
                let want: Vec<String> = if default_private { vec![] } else { vec!["pull".into()] };
                assert_eq!(got, want, "round {round}: the loser is judged against the existing collection");
            }
        }
        let c = api_expect(&s, Method::GET, &format!("/api/v1/collections/{coll}"), ADMIN, None, 200).await;
        assert_eq!(c["owners"], json!([{"user": winner}]), "round {round}: the winner is the only owner: {c}");
        assert_eq!(c["contributors"], json!([]), "round {round}: {c}");
        assert_eq!(c["private"], default_private, "round {round}: visibility is default_private: {c}");
        // The winner's grant works; the loser's does not push.
        let (_, wt) = tokens.iter().find(|(w, _)| *w == winner).expect("winner");
        s.push_blob(wt, &repo, format!("round {round}").as_bytes()).await;
        let (loser, lt) = tokens.iter().find(|(w, _)| *w != winner).expect("loser");
        let resp = s.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), Some(lt)).send().await.unwrap();
        expect_error(resp, 403, "DENIED", &format!("round {round}: {loser} pushes into {winner}'s collection")).await;
    }
    // Every race produced exactly one collection, each with exactly one owner.
    let list = api_expect(&s, Method::GET, "/api/v1/collections?n=1000", ADMIN, None, 200).await;
    let names: Vec<&str> = list.as_array().expect("array").iter().filter_map(|c| c["name"].as_str()).collect();
    let mut want: Vec<String> = (0..ROUNDS).map(|r| format!("race{r}")).collect();
    want.sort();
    assert_eq!(names, want, "one collection per round, no more, no less");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collection_creation_race_public() {
    race(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collection_creation_race_private_by_default() {
    race(true).await;
}
