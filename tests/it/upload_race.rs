//! Lock, then load (DESIGN §6, issue 10): requests race to append to one upload session,
//! through two registries on one data dir and database (as two replicas would). Whatever
//! the interleaving, the session's bytes must be exactly those of the acknowledged appends,
//! in order. A request that read the offset before another one recorded a chunk, and took
//! the session after it, would cut that chunk (or zero-extend the file) while the recorded
//! hash state still "verified": wrong bytes published under a digest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use berth::{
    config::Config,
    digest::{Algorithm, Digest},
    names::RepoName,
    registry::{Caller, Registry, RegistryError},
    storage::BlobStore,
};
use bytes::Bytes;

const ROUNDS: usize = 12;
const WRITERS: usize = 8;
const ROUND_TIME: Duration = Duration::from_millis(400);

fn body(bytes: Bytes) -> impl futures_util::Stream<Item = Result<Bytes, berth::registry::BoxError>> + Unpin {
    futures_util::stream::iter([Ok(bytes)])
}

async fn registry(config: &Config) -> Registry {
    let db = berth::server::open_db(config).await.expect("open db");
    let store = BlobStore::open_configured(config).await.expect("open store");
    Registry::new(db, store, config.limits.max_manifest_bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_appends_never_cut_recorded_bytes() {
    let s = TestServer::start().await;
    // The push token creates the collection.
    s.admin_token(&[&scope("race/app", "pull,push")]).await;
    let config = Config { data_dir: s.data_dir().to_path_buf(), ..Default::default() };
    let replicas = [Arc::new(registry(&config).await), Arc::new(registry(&config).await)];
    let caller = Caller { sub: ADMIN_USER.into(), iat: berth::db::now() + 60 };
    let repo: RepoName = "race/app".parse().unwrap();

    let (mut acknowledged, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        let session = replicas[0].start_upload(&caller, &repo, Algorithm::Sha256).await.unwrap();
        let deadline = Instant::now() + ROUND_TIME;
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (registry, caller, repo, id) =
                    (replicas[w % 2].clone(), caller.clone(), repo.clone(), session.id.clone());
                tokio::spawn(async move {
                    let (mut ok, mut refused, mut i) = (Vec::new(), 0, 0u64);
                    while Instant::now() < deadline {
                        i += 1;
                        let len = 1 + ((w as u64 * 7919 + i * 104_729) % (16 << 10)) as usize;
                        let bytes = Bytes::from(test_bytes(len, (w as u64) << 32 | i));
                        match registry.append_upload(&caller, &repo, &id, None, body(bytes.clone())).await {
                            Ok(state) => ok.push((state.offset, bytes)),
                            Err(RegistryError::RangeInvalid { .. }) => refused += 1,
                            Err(e) => panic!("append: {e:#}"),
                        }
                    }
                    (ok, refused)
                })
            })
            .collect();
        let mut appended = Vec::new();
        for writer in writers {
            let (ok, r) = writer.await.unwrap();
            appended.extend(ok);
            refused += r;
        }
        acknowledged += appended.len();
        // Each acknowledged append ends at the offset it was answered with; in that order
        // they must tile the session from 0.
        appended.sort_by_key(|(end, _)| *end);
        let mut expected = Vec::new();
        for (end, bytes) in &appended {
            assert_eq!(expected.len() + bytes.len(), *end as usize, "round {round}: appends overlap or leave a gap");
            expected.extend_from_slice(bytes);
        }
        let digest = Digest::of(Algorithm::Sha256, &expected);
        replicas[1].finish_upload(&caller, &repo, &session.id, &digest, None, body(Bytes::new())).await.unwrap();
        let stored = s.blob_on_disk(digest.as_str()).expect("published");
        assert!(stored == expected, "round {round}: the published bytes are not the acknowledged ones");
    }
    eprintln!("{ROUNDS} rounds: {acknowledged} appends acknowledged, {refused} refused with 416");
    assert!(refused > 0 && acknowledged > ROUNDS, "the writers did not contend");
}
