//! Basic-auth logins through the verified-credential cache (the resources issue): a cached
//! password stops working the moment the account changes, also when the change is made by
//! another process (a second replica, or the CLI) that cannot tell this server's cache.

use crate::common::*;
use berth::{auth::password, db};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_password_dies_with_a_change_made_elsewhere() {
    let s = TestServer::start().await;
    s.create_user("alice", "user", "pw-one").await;
    // Verified once, then served from the cache.
    s.token(Some(("alice", "pw-one")), &[]).await;
    s.token(Some(("alice", "pw-one")), &[]).await;

    // Another replica, with its own connection to the database, changes the password.
    let other = db::Db::connect(&format!("sqlite://{}/berth.db", s.data_dir().display())).await.unwrap();
    let alice = db::users::by_name(&other, "alice").await.unwrap().expect("alice");
    let hash = password::hash("pw-two".into()).await.unwrap();
    db::users::set_password(&other, alice.id, &hash).await.unwrap();
    let resp = s.token_response(Some(("alice", "pw-one")), &[]).await;
    assert_eq!(resp.status(), 401, "the old, cached password after a change elsewhere");
    s.token(Some(("alice", "pw-two")), &[]).await;
    s.token(Some(("alice", "pw-two")), &[]).await;

    // ... and deactivates her.
    db::users::set_active(&other, alice.id, false).await.unwrap();
    let resp = s.token_response(Some(("alice", "pw-two")), &[]).await;
    assert_eq!(resp.status(), 401, "a deactivated user with a cached password");
    db::users::set_active(&other, alice.id, true).await.unwrap();
    s.token(Some(("alice", "pw-two")), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_all_get_their_tokens() {
    let s = TestServer::start().await;
    s.create_user("bob", "user", "bob-pw").await;
    // 32 at once, nothing cached: they share one verification; none is refused.
    let logins = (0..32).map(|_| s.token_response(Some(("bob", "bob-pw")), &[]));
    for resp in futures_util::future::join_all(logins).await {
        assert_eq!(resp.status(), 200);
    }
    // A wrong password is still refused while the right one is cached.
    assert_eq!(s.token_response(Some(("bob", "bob-pW")), &[]).await.status(), 401);
    // An unknown user is refused like a wrong password.
    assert_eq!(s.token_response(Some(("nobody", "bob-pw")), &[]).await.status(), 401);
}
