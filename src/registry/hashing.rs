//! Hashing an upload's body beside receiving it. SHA-256 is the largest cost of a push
//! (about 0.6 s of one core per GiB), so while few uploads are open the body's frames are
//! hashed in batches on the blocking pool, each batch while the next one arrives, and the
//! request's own task only receives and copies. With many uploads open every core is busy
//! anyway, and batches would only hold more frames in memory: then each frame is hashed
//! where it arrives, as before.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::digest::Hasher;

/// Frames gathered before they go to be hashed.
const BATCH: usize = 256 << 10;

/// Uploads receiving a body in this process.
static RECEIVING: AtomicUsize = AtomicUsize::new(0);

/// Whether a new batch is worth its hand-off: no more uploads receiving than cores.
fn spare_cores() -> bool {
    RECEIVING.load(Ordering::Relaxed) <= crate::cores()
}

/// A hasher that one request's body goes through (see the module).
pub(super) struct BodyHasher {
    /// The hasher, when no batch is being hashed.
    idle: Option<Hasher>,
    /// The batch being hashed, which gives the hasher back.
    running: Option<JoinHandle<Hasher>>,
    batch: Vec<Bytes>,
    batched: usize,
}

impl BodyHasher {
    pub(super) fn new(hasher: Hasher) -> BodyHasher {
        RECEIVING.fetch_add(1, Ordering::Relaxed);
        BodyHasher { idle: Some(hasher), running: None, batch: Vec::new(), batched: 0 }
    }

    /// Takes the next frame of the body, in order.
    pub(super) async fn update(&mut self, frame: Bytes) {
        if self.batch.is_empty() && !spare_cores() {
            let hasher = self.hasher().await;
            hasher.update(&frame);
            return;
        }
        self.batched += frame.len();
        self.batch.push(frame);
        if self.batched >= BATCH {
            let batch = std::mem::take(&mut self.batch);
            self.batched = 0;
            let mut hasher = self.take().await;
            self.running = Some(tokio::task::spawn_blocking(move || {
                for frame in &batch {
                    hasher.update(frame);
                }
                hasher
            }));
        }
    }

    /// Waits for the batch being hashed and returns the hasher, idle.
    async fn take(&mut self) -> Hasher {
        if let Some(running) = self.running.take() {
            match running.await {
                Ok(hasher) => return hasher,
                // Hashing does not panic; if it ever did, carry the panic on here.
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        self.idle.take().expect("a BodyHasher holds its hasher, idle or running")
    }

    /// The hasher with every frame so far in it.
    pub(super) async fn hasher(&mut self) -> &mut Hasher {
        let mut hasher = self.take().await;
        for frame in self.batch.drain(..) {
            hasher.update(&frame);
        }
        self.batched = 0;
        self.idle.insert(hasher)
    }

    /// Ends it: the hasher with every frame in it.
    pub(super) async fn finish(mut self) -> Hasher {
        self.hasher().await;
        self.idle.take().expect("hasher() left it idle")
    }
}

impl Drop for BodyHasher {
    fn drop(&mut self) {
        RECEIVING.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;

    fn frames(n: usize) -> Vec<Bytes> {
        // Sizes that cross BATCH boundaries at odd places.
        (0..n).map(|i| Bytes::from(vec![(i % 251) as u8; 1 + (i * 7919) % 90_000])).collect()
    }

    fn at_once(frames: &[Bytes]) -> String {
        let mut h = Hasher::new(Algorithm::Sha256);
        for f in frames {
            h.update(f);
        }
        h.finish().to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_hash_what_one_pass_hashes() {
        let frames = frames(40);
        let mut body = BodyHasher::new(Hasher::new(Algorithm::Sha256));
        for (i, f) in frames.iter().enumerate() {
            body.update(f.clone()).await;
            if i == 17 {
                // A checkpoint in the middle sees exactly the frames so far.
                let state = body.hasher().await.clone().finish().to_string();
                assert_eq!(state, at_once(&frames[..18]));
            }
        }
        assert_eq!(body.finish().await.finish().to_string(), at_once(&frames));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_every_core_busy_frames_are_hashed_in_place() {
        let frames = frames(12);
        // Other uploads receiving: more than the cores.
        let others: Vec<BodyHasher> = (0..64).map(|_| BodyHasher::new(Hasher::new(Algorithm::Sha256))).collect();
        let mut body = BodyHasher::new(Hasher::new(Algorithm::Sha256));
        for f in &frames {
            body.update(f.clone()).await;
            assert!(body.batch.is_empty() && body.running.is_none(), "nothing batched while cores are busy");
        }
        drop(others);
        assert_eq!(body.finish().await.finish().to_string(), at_once(&frames));
    }
}
