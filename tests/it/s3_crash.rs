//! S3 upload sessions and a crash between a checkpoint's writes to S3 and its record in the
//! database (issue 10): resuming from the recorded state must read the tail as it was
//! recorded — not one that the crashed request wrote after it — and complete with the
//! right bytes. (Completion trusts the recorded hash state, so a changed tail would publish
//! wrong bytes under a digest that "verified".) Runs against `moto_server`.

use crate::common::services::{Moto, use_moto};
use crate::common::*;
use berth::{config::Config, names::UploadId, storage::S3Store};
use futures_util::TryStreamExt;

const MIB: usize = 1 << 20;

#[tokio::test]
async fn a_checkpoint_never_recorded_leaves_the_recorded_tail_alone() {
    let moto = Moto::start().await;
    let mut config = Config::default();
    use_moto(&mut config, &moto.endpoint);
    let store = S3Store::new(&config.storage.s3).unwrap();
    let id = UploadId::new_random();
    let first = test_bytes(MIB, 1);
    // Enough to fill a part with the recorded tail, and leave a new, different tail.
    let unrecorded = test_bytes(15 * MIB + MIB / 2, 2);
    let rest = test_bytes(3 * MIB, 3);

    let mut w = store.upload_writer(&id, store.upload_create(&id).await.unwrap()).await.unwrap();
    w.write(&first).await.unwrap();
    let recorded = w.checkpoint().await.unwrap();
    w.committed().await.unwrap();
    assert_eq!(recorded.tail_len, MIB as u64, "1 MiB stays behind as a tail");

    // A request continues, checkpoints to S3, and dies before the database records it.
    let mut w = store.upload_writer(&id, recorded.clone()).await.unwrap();
    w.write(&unrecorded).await.unwrap();
    let never_recorded = w.checkpoint().await.unwrap();
    assert_eq!(never_recorded.tail_len, (MIB / 2) as u64);
    drop(w);

    // After the restart the session continues from what the database holds.
    let mut w = store.upload_writer(&id, recorded).await.unwrap();
    w.write(&rest).await.unwrap();
    let key = w.finish().await.unwrap();
    let mut expected = first;
    expected.extend_from_slice(&rest);
    let stream = store.read(&key, 0, expected.len() as u64).await.unwrap();
    let got: Vec<u8> = stream.map_ok(|b| b.to_vec()).try_concat().await.unwrap();
    assert!(got == expected, "the blob holds other bytes than the recorded session plus the rest");
    assert!(moto.keys("reg/uploads/").await.iter().all(|k| !k.contains(".tail")), "tails left behind");
}
