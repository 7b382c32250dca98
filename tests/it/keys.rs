//! Signing-key rotation across replicas (`berth keys rotate`): a token signed with the new
//! key on replica A is accepted on replica B, which has not re-read the keys yet, and
//! tokens signed with the old key stay valid until they expire.

use crate::common::*;
use berth::{auth::keys, db::Db};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_signed_after_rotation_on_one_replica_is_accepted_on_another() {
    let mut a = TestServer::start().await;
    let db_url = format!("sqlite://{}/berth.db", a.data_dir().display());
    let shared = db_url.clone();
    let b = TestServer::start_with(move |c| c.database.url = Some(shared.clone())).await;

    let old = a.admin_token(&[]).await;
    expect_status(b.get("/v2/", Some(&old)).await, 200, "B accepts A's token").await;
    let jwks: Value = b.get("/token/jwks.json", None).await.json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);

    // Rotate (as the CLI does), and restart A so it signs with the new key at once.
    let db = Db::connect(&db_url).await.unwrap();
    let kid = keys::rotate(&db).await.unwrap();
    a.restart().await;
    let new = a.admin_token(&[]).await;
    assert_ne!(new, old);
    expect_status(b.get("/v2/", Some(&new)).await, 200, "B accepts the new key's token").await;
    // Both keys verify, and both are published, while the old key's tokens may live.
    expect_status(a.get("/v2/", Some(&old)).await, 200, "A still accepts the old key's token").await;
    let jwks: Value = b.get("/token/jwks.json", None).await.json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().filter_map(|k| k["kid"].as_str()).collect();
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&kid.as_str()));
}
