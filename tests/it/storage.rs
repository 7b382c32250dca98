//! One suite against every storage backend, through the interface the registry uses
//! (`berth::storage::BlobStore`): a session written in two requests, sealed, committed under
//! its digest, read by location and range, a duplicate that loses to the first commit, a
//! discarded upload, and a removal. The filesystem runs over a temp dir, S3 over moto.

use std::io;

use berth::{
    config::Config,
    digest::{Algorithm, Digest},
    names::UploadId,
    storage::{BlobStore, Location, Removal},
};
use futures_util::TryStreamExt;

use crate::common::services::{Moto, use_moto};
use crate::common::*;

const MIB: usize = 1 << 20;

async fn read(store: &BlobStore, location: &Location, start: u64, len: u64) -> Option<Vec<u8>> {
    let stream = store.open(location, start, len).await.unwrap()?;
    Some(stream.map_ok(|b| b.to_vec()).try_concat().await.unwrap())
}

/// Writes `parts` to a new session, one request each (resumed from the recorded state), and
/// seals it.
async fn upload(store: &BlobStore, parts: &[&[u8]]) -> berth::storage::Sealed {
    let id = UploadId::new_random();
    let mut state = store.create_session(&id).await.unwrap();
    let mut offset = 0u64;
    let mut last = None;
    for part in parts {
        // The previous request ends (and releases the session) before the next takes it.
        drop(last.take());
        let lock = store.take_session(&id).await.unwrap();
        let mut w = store.resume(lock, &id, offset, state.as_deref(), None).await.unwrap().expect("session bytes");
        w.write(bytes::Bytes::copy_from_slice(part)).await.unwrap();
        if let Some(s) = w.checkpoint().await.unwrap() {
            state = Some(s);
        }
        w.committed().await.unwrap();
        offset += part.len() as u64;
        assert!(store.session_holds(&id, offset).await.unwrap());
        last = Some(w);
    }
    store.seal(last.expect("a part")).await.unwrap().expect("sealed")
}

/// The scenario; what each backend leaves behind is checked by its caller.
async fn exercise(store: &BlobStore) {
    let data = test_bytes(6 * MIB + 123, 42);
    let digest = Digest::of(Algorithm::Sha256, &data);

    let sealed = upload(store, &[&data[..MIB], &data[MIB..]]).await;
    let mut recorded = None;
    let location = store
        .commit(sealed, &digest, |l: Location| {
            recorded = Some(l.clone());
            async move { Ok::<_, io::Error>(l) }
        })
        .await
        .unwrap();
    assert_eq!(recorded.as_ref(), Some(&location), "the row records where the bytes are");
    assert!(store.contains(&location).await.unwrap());
    assert_eq!(read(store, &location, 0, data.len() as u64).await.as_deref(), Some(data.as_slice()));
    assert_eq!(read(store, &location, 5, 10).await.as_deref(), Some(&data[5..15]));
    // Through the database's record and back.
    let again = Location::from_record(&digest, location.record().map(str::to_owned));
    assert_eq!(read(store, &again, 0, 3).await.as_deref(), Some(&data[..3]));

    // A second upload of the same bytes loses to the first row: the first location stays.
    let duplicate = upload(store, &[&data]).await;
    let first = location.clone();
    let winner = store.commit(duplicate, &digest, |_| async move { Ok::<_, io::Error>(first) }).await.unwrap();
    assert_eq!(winner, location);
    assert_eq!(read(store, &location, 0, data.len() as u64).await.as_deref(), Some(data.as_slice()));

    // Bytes whose digest did not verify are dropped.
    let wrong = upload(store, &[b"not what was promised"]).await;
    store.discard(wrong).await.unwrap();

    // Removal: the bytes go (on S3 once the deferred purge runs); nothing pushed them again.
    match store.remove(&location, || async { Ok::<_, io::Error>(false) }).await.unwrap() {
        Removal::Removed => {}
        Removal::Deferred(record) => {
            assert!(read(store, &location, 0, 1).await.is_some(), "a deferred removal keeps the bytes readable");
            store.purge(&record).await.unwrap();
        }
        Removal::Kept => panic!("nothing pushed the blob again"),
    }
    assert!(read(store, &location, 0, 1).await.is_none(), "removed");
}

#[tokio::test]
async fn filesystem_backend() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
    let store = BlobStore::open_configured(&config).await.unwrap();
    exercise(&store).await;
    // Nothing left: no blob, no session directory.
    for sub in ["blobs", "uploads", "trash"] {
        let mut files = Vec::new();
        let mut todo = vec![dir.path().join(sub)];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() { todo.push(e.path()) } else { files.push(e.path()) }
            }
        }
        assert!(files.is_empty(), "left under {sub}: {files:?}");
    }
    assert!(store.blob_files().await.unwrap().is_empty());
}

#[tokio::test]
async fn s3_backend() {
    let moto = Moto::start().await;
    let mut config = Config::default();
    use_moto(&mut config, &moto.endpoint);
    let store = BlobStore::open_configured(&config).await.unwrap();
    exercise(&store).await;
    assert_eq!(moto.keys("reg/").await, Vec::<String>::new(), "no object left (duplicate, discarded, removed)");
}
