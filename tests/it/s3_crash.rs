//! S3 upload sessions and a crash between a checkpoint's writes to S3 and its record in the
//! database (issue 10): resuming from the recorded state must read the tail as it was
//! recorded — not one that the crashed request wrote after it — and complete with the
//! right bytes. (Completion trusts the recorded hash state, so a changed tail would publish
//! wrong bytes under a digest that "verified".) Runs against `moto_server`, through the
//! storage interface the registry uses.

use crate::common::services::{Moto, use_moto};
use crate::common::*;
use berth::{
    config::{Config, StorageKind},
    names::UploadId,
    storage::BlobStore,
};
use futures_util::TryStreamExt;

const MIB: usize = 1 << 20;

/// The tail length a recorded S3 session state holds.
fn tail_len(state: &Option<String>) -> u64 {
    let v: serde_json::Value = serde_json::from_str(state.as_deref().expect("an S3 state")).unwrap();
    v["tail_len"].as_u64().expect("tail_len")
}

#[tokio::test]
async fn a_checkpoint_never_recorded_leaves_the_recorded_tail_alone() {
    let moto = Moto::start().await;
    let mut config = Config::default();
    use_moto(&mut config, &moto.endpoint);
    assert_eq!(config.storage.kind, StorageKind::S3);
    let store = BlobStore::open_configured(&config).await.unwrap();
    let id = UploadId::new_random();
    let first = test_bytes(MIB, 1);
    // Enough to fill a part with the recorded tail, and leave a new, different tail.
    let unrecorded = test_bytes(15 * MIB + MIB / 2, 2);
    let rest = test_bytes(3 * MIB, 3);

    let created = store.create_session(&id).await.unwrap();
    let lock = store.take_session(&id).await.unwrap();
    let mut w = store.resume(lock, &id, 0, created.as_deref(), None).await.unwrap().expect("session");
    w.write(first.clone().into()).await.unwrap();
    let recorded = w.checkpoint().await.unwrap();
    w.committed().await.unwrap();
    assert_eq!(tail_len(&recorded), MIB as u64, "1 MiB stays behind as a tail");

    // A request continues, checkpoints to S3, and dies before the database records it.
    let lock = store.take_session(&id).await.unwrap();
    let mut w = store.resume(lock, &id, MIB as u64, recorded.as_deref(), None).await.unwrap().expect("session");
    w.write(unrecorded.clone().into()).await.unwrap();
    let never_recorded = w.checkpoint().await.unwrap();
    assert_eq!(tail_len(&never_recorded), (MIB / 2) as u64);
    drop(w);

    // After the restart the session continues from what the database holds.
    let lock = store.take_session(&id).await.unwrap();
    let mut w = store.resume(lock, &id, MIB as u64, recorded.as_deref(), None).await.unwrap().expect("session");
    w.write(rest.clone().into()).await.unwrap();
    let sealed = store.seal(w).await.unwrap().expect("completes");
    let mut expected = first;
    expected.extend_from_slice(&rest);
    let stream = store.read_sealed(&sealed, expected.len() as u64).await.unwrap();
    let got: Vec<u8> = stream.map_ok(|b| b.to_vec()).try_concat().await.unwrap();
    assert!(got == expected, "the blob holds other bytes than the recorded session plus the rest");
    assert!(moto.keys("reg/uploads/").await.iter().all(|k| !k.contains(".tail")), "tails left behind");
}
