//! Online collection racing clients (DESIGN §6, issue 10): passes run back to back with
//! every age at zero — anything unreferenced is fair game at once — while clients push,
//! re-push, mount, tag and delete tags. No request answers 5xx, an image stays whole while a
//! tag points at it, and nothing pushed last is lost.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::*;
use berth::config::{GcConfig, Untagged};
use berth::registry::{Checkpoint, GcOptions, PauseHook, Registry};
use reqwest::Method;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

/// A registry over the server's data dir (and database, if not the SQLite file there), as
/// `berth gc` opens it.
async fn registry_of(s: &TestServer, database_url: Option<&str>) -> Registry {
    let mut config = berth::config::Config { data_dir: s.data_dir().to_path_buf(), ..Default::default() };
    config.database.url = database_url.map(str::to_owned);
    let db = berth::server::open_db(&config).await.expect("open db");
    let store = berth::storage::BlobStore::open_configured(&config).await.expect("open store");
    Registry::new(db, store, config.limits.max_manifest_bytes)
}

/// Collection passes back to back over the server's data dir, as of `ahead` seconds in the
/// future, with the given rules, until `stop`: returns (passes, blobs removed).
async fn collector(s: &TestServer, gc: GcConfig, ahead: i64, stop: Arc<AtomicBool>) -> JoinHandle<(u64, u64)> {
    let registry = registry_of(s, None).await;
    tokio::spawn(async move {
        let (mut passes, mut removed) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            let report = registry.collect_garbage(&gc, berth::db::now() + ahead).await.expect("gc pass");
            passes += 1;
            removed += report.blobs_removed;
        }
        (passes, removed)
    })
}

/// Unlink and push the same blob again and again while passes run: no request fails with a
/// 5xx, and once both stop the blob is there with the right bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_racing_pushes_loses_nothing() {
    let s = TestServer::start().await;
    let token = s.admin_token(&[&scope("gc/race", "pull,push,delete")]).await;
    let bytes = test_bytes(20_000, 5);
    let digest = s.push_blob(&token, "gc/race", &bytes).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // the row is now "old"

    let stop = Arc::new(AtomicBool::new(false));
    let gc = GcConfig { blob_grace_secs: 0, ..Default::default() };
    // As of 5 s ahead: everything unreferenced is old at once.
    let collector = collector(&s, gc, 5, stop.clone()).await;
    for round in 0..40 {
        // No manifest references the blob, so a pass may have unlinked it already.
        let resp = s.delete(&format!("/v2/gc/race/blobs/{digest}"), Some(&token)).await;
        assert!([202, 404].contains(&resp.status().as_u16()), "round {round}: unlink {}", resp.status());
        let resp = s
            .req(Method::POST, &format!("/v2/gc/race/blobs/uploads/?digest={digest}"), Some(&token))
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "round {round}: push again");
        let resp = s.get(&format!("/v2/gc/race/blobs/{digest}"), Some(&token)).await;
        assert!(resp.status().as_u16() < 500, "round {round}: GET {}", resp.status());
    }
    stop.store(true, Ordering::Relaxed);
    let (passes, removed) = collector.await.expect("collector");
    // The race was real: passes ran, and some caught the blob between unlink and push.
    assert!(passes > 0 && removed > 0, "{passes} passes removed {removed} blobs");
    s.push_blob(&token, "gc/race", &bytes).await;
    let resp = expect_status(s.get(&format!("/v2/gc/race/blobs/{digest}"), Some(&token)).await, 200, "final").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), bytes.as_slice(), "the blob survived {passes} passes");
    assert_eq!(s.blob_on_disk(&digest).as_deref(), Some(bytes.as_slice()));
}

/// Tagged images pushed (the same few again and again, so their blobs come back after a
/// pass took them), read, mounted into another repository and untagged, while passes that
/// expire untagged manifests at once and links after one second run back to back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_racing_tags_mounts_and_tag_deletes_breaks_nothing() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["gc/ra", "gc/rb"]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let gc = GcConfig { blob_grace_secs: 1, untagged: Untagged::AfterSecs(0), ..Default::default() };
    let running = collector(&s, gc, 0, stop.clone()).await;
    let (mut refused, mut transient) = (0, 0);
    for round in 0..30u64 {
        let config = format!("{{\"image\":{}}}", round % 6).into_bytes();
        let layer = test_bytes(30_000, 100 + round % 6);
        let manifest = oci_manifest(&config, &[&layer]);
        let tag = format!("t{round}");
        // A pass may take the links before the manifest arrives (if a push refreshed them
        // only after the pass read them): the PUT is then refused with MANIFEST_BLOB_UNKNOWN, storing nothing, and retried.
        let mut pushed = false;
        for _ in 0..10 {
            // As docker does: a blob the repository has is not pushed again. Its link may
            // be old and unreferenced, so a pass may be about to take it.
            for blob in [&config, &layer] {
                let head = s.head(&format!("/v2/gc/ra/blobs/{}", sha256_digest(blob)), Some(&token)).await;
                if head.status() != 200 {
                    s.push_blob(&token, "gc/ra", blob).await;
                }
            }
            let resp = s.put_manifest(&token, "gc/ra", &tag, Some(OCI_MANIFEST), &manifest).await;
            match resp.status().as_u16() {
                201 => {
                    pushed = true;
                    break;
                }
                400 => {
                    expect_error(resp, 400, "MANIFEST_BLOB_UNKNOWN", "refused").await;
                    refused += 1;
                }
                other => panic!("round {round}: manifest PUT {other}: {}", resp.text().await.unwrap_or_default()),
            }
        }
        assert!(pushed, "round {round}: the manifest never got in");
        // While the tag is there, the image is whole: its manifest always, its blobs too
        // (but for the documented instant in which a pass restores a blob it had trashed).
        let resp = expect_status(s.get(&format!("/v2/gc/ra/manifests/{tag}"), Some(&token)).await, 200, "tag").await;
        assert_eq!(resp.bytes().await.unwrap().as_ref(), manifest.as_slice());
        for blob in [&config, &layer] {
            let path = format!("/v2/gc/ra/blobs/{}", sha256_digest(blob));
            let mut resp = s.get(&path, Some(&token)).await;
            if resp.status() == 404 {
                transient += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                resp = s.get(&path, Some(&token)).await;
            }
            let resp = expect_status(resp, 200, &format!("round {round}: blob of a tagged image")).await;
            assert_eq!(resp.bytes().await.unwrap().as_ref(), blob.as_slice(), "round {round}");
        }
        // Mount while referenced: always there to mount.
        let digest = sha256_digest(&layer);
        let resp = s
            .req(Method::POST, &format!("/v2/gc/rb/blobs/uploads/?mount={digest}&from=gc/ra"), Some(&token))
            .send()
            .await
            .unwrap();
        expect_status(resp, 201, &format!("round {round}: mount")).await;
        let resp = s.get(&format!("/v2/gc/rb/blobs/{digest}"), Some(&token)).await;
        assert!([200, 404].contains(&resp.status().as_u16()), "round {round}: mounted blob {}", resp.status());
        expect_status(s.delete(&format!("/v2/gc/ra/manifests/{tag}"), Some(&token)).await, 202, "untag").await;
        let resp = s.get(&format!("/v2/gc/ra/manifests/{}", sha256_digest(&manifest)), Some(&token)).await;
        assert!([200, 404].contains(&resp.status().as_u16()), "round {round}: untagged manifest {}", resp.status());
        // Let untagged images age past the grace before their blobs come back.
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (passes, removed) = running.await.expect("collector");
    eprintln!("{passes} passes removed {removed} blobs; {refused} manifest PUTs refused, {transient} transient 404s");
    let registry = registry_of(&s, None).await;
    let gc = GcConfig { blob_grace_secs: 0, untagged: Untagged::AfterSecs(0), ..Default::default() };
    // Every tag is gone now: a pass with every age past its limit takes what the racing
    // passes left (how much they took depends on the machine's speed), so together they
    // must have removed blobs.
    let settled = registry.collect_garbage(&gc, berth::db::now() + 5).await.unwrap();
    let removed = removed + settled.blobs_removed;
    assert!(passes > 1 && removed > 0, "{passes} passes removed {removed} blobs");
    // The last image, pushed once more and tagged, survives a pass with every age at zero.
    let image = s.push_image(&token, "gc/ra", "final", "final").await;
    registry.collect_garbage(&gc, berth::db::now() + 5).await.unwrap();
    for blob in [&image.config, &image.layers[0]] {
        let resp = s.get(&format!("/v2/gc/ra/blobs/{}", sha256_digest(blob)), Some(&token)).await;
        assert_eq!(expect_status(resp, 200, "final image").await.bytes().await.unwrap().as_ref(), blob.as_slice());
    }
}

/// A pass held at its checkpoints: it tells `reached` where it stands, then waits for a
/// permit of `resume`. `held` picks the checkpoints it stops at.
fn gate(
    held: fn(Checkpoint<'_>) -> Option<&'static str>,
) -> (Box<PauseHook>, mpsc::UnboundedReceiver<&'static str>, Arc<Semaphore>) {
    let (tx, reached) = mpsc::unbounded_channel();
    let resume = Arc::new(Semaphore::new(0));
    let permits = resume.clone();
    let hook = move |at: Checkpoint<'_>| -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let (what, tx, permits) = (held(at), tx.clone(), permits.clone());
        Box::pin(async move {
            if let Some(what) = what {
                tx.send(what).expect("the test listens");
                permits.acquire().await.expect("semaphore open").forget();
            }
        })
    };
    (Box::new(hook), reached, resume)
}

/// A pass held after it decided — links and an untagged manifest of `gc/held` to go, then a
/// blob no repository links — and before it deletes: meanwhile a manifest comes to
/// reference the links, the untagged manifest is tagged again and the blob pushed into
/// another repository. Every conditional delete must then see the change and keep all of
/// it (without the re-checks in `db::gc`, the pass deletes the links and the blob under a
/// tagged manifest, and this test fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_while_a_pass_is_held_win_over_its_decisions() {
    held_pass(&TestServer::start().await, None).await;
}

/// The scenario of `writes_while_a_pass_is_held_win_over_its_decisions` on `s`, whose
/// database is `database_url` (the SQLite file in its data dir if `None`).
pub(crate) async fn held_pass(s: &TestServer, database_url: Option<&str>) {
    let token = s.repo_token(&["gc/held", "gc/other"]).await;
    // Blobs linked by no manifest; an image whose tag is gone; a blob unlinked everywhere.
    let config = br#"{"architecture":"amd64","os":"linux","held":true}"#.to_vec();
    let layer = test_bytes(40_000, 71);
    s.push_blob(&token, "gc/held", &config).await;
    s.push_blob(&token, "gc/held", &layer).await;
    let untagged = s.push_image(&token, "gc/held", "tmp", "held-untagged").await;
    expect_status(s.delete("/v2/gc/held/manifests/tmp", Some(&token)).await, 202, "untag").await;
    let loose = test_bytes(30_000, 72);
    let loose_digest = s.push_blob(&token, "gc/held", &loose).await;
    expect_status(s.delete(&format!("/v2/gc/held/blobs/{loose_digest}"), Some(&token)).await, 202, "unlink").await;

    // Every age past its limit: the pass as of 5 s ahead takes anything unreferenced, even
    // what a client refreshes meanwhile — only the re-checks in its deletes can save it.
    let gc = GcConfig { blob_grace_secs: 0, untagged: Untagged::AfterSecs(0), ..Default::default() };
    let now = berth::db::now() + 5;
    let registry = registry_of(s, database_url).await;
    let plan = registry.collect(&gc, now, GcOptions { dry_run: true, ..Default::default() }).await.unwrap();
    let linked = [&config, &layer, &untagged.config, &untagged.layers[0]].map(|b| sha256_digest(b));
    for digest in &linked {
        assert!(plan.links_removed.iter().any(|l| &l.digest == digest), "planned: link {digest}: {plan:?}");
    }
    assert!(plan.manifests_removed.iter().any(|m| m.digest == untagged.digest), "planned: {plan:?}");
    assert!(plan.blobs.iter().any(|b| b.digest == loose_digest), "planned: blob {loose_digest}: {plan:?}");

    let (hook, mut reached, resume) = gate(|at| match at {
        Checkpoint::Planned { repository: "gc/held" } => Some("planned"),
        Checkpoint::BlobsListed => Some("blobs listed"),
        Checkpoint::Planned { .. } => None,
    });
    let pass = tokio::spawn(async move {
        registry.collect(&gc, now, GcOptions { pause: Some(&*hook), ..Default::default() }).await
    });
    assert_eq!(reached.recv().await, Some("planned"));
    let manifest = oci_manifest(&config, &[&layer]);
    let digest = s.push_manifest(&token, "gc/held", "v1", OCI_MANIFEST, &manifest).await;
    s.push_manifest(&token, "gc/held", "back", OCI_MANIFEST, &untagged.manifest).await;
    resume.add_permits(1);
    assert_eq!(reached.recv().await, Some("blobs listed"));
    s.push_blob(&token, "gc/other", &loose).await;
    resume.add_permits(1);
    let report = pass.await.expect("pass task").expect("pass");

    let removed: Vec<&str> = report.links_removed.iter().map(|l| l.digest.as_str()).collect();
    for d in &linked {
        assert!(!removed.contains(&d.as_str()), "link {d} removed under a manifest: {report:?}");
    }
    assert!(report.manifests_removed.iter().all(|m| m.digest != untagged.digest), "{report:?}");
    assert!(report.blobs.iter().all(|b| b.digest != loose_digest), "{report:?}");
    for (repo, reference, body) in [("gc/held", "v1", &manifest), ("gc/held", "back", &untagged.manifest)] {
        let resp = s.get(&format!("/v2/{repo}/manifests/{reference}"), Some(&token)).await;
        assert_eq!(expect_status(resp, 200, reference).await.bytes().await.unwrap().as_ref(), body.as_slice());
    }
    for (repo, blob) in
        [("gc/held", &config), ("gc/held", &layer), ("gc/held", &untagged.layers[0]), ("gc/other", &loose)]
    {
        let d = sha256_digest(blob);
        let resp = expect_status(s.get(&format!("/v2/{repo}/blobs/{d}"), Some(&token)).await, 200, &d).await;
        assert_eq!(resp.bytes().await.unwrap().as_ref(), blob.as_slice(), "{repo} {d}");
        assert_eq!(s.blob_on_disk(&d).as_deref(), Some(blob.as_slice()), "{d} on disk");
    }
    assert_eq!(digest, sha256_digest(&manifest));
}
