//! Releasing `running` markers in batches: the end of §4.5 (`registerJobCompleted`) for
//! every job of a [`Scheduler`](super::Scheduler), as one multi-delete per batch.
//!
//! Why: the thousand fires of one second also end together, and a delete each was a
//! transaction each on the embedded store (several µs of the committer's time apiece,
//! competing with the next fires' starts) and a request each on ZooKeeper. A fire still
//! waits for its own release, so nothing changes for it but the cost. A multi is all or
//! nothing, so a batch whose multi fails (a marker already gone: a failover detector or a
//! reconnection's clean-up removed it) is released one delete at a time, each with its own
//! outcome.

use capstan_registry::{Error as RegistryError, Op, Registry};
use tokio::sync::{mpsc, oneshot};

/// Deletes per multi: as `run::BATCH_CREATES`.
const BATCH: usize = 256;

/// How long a release waits for others to share its batch. Releasing is never urgent (the
/// next fire of a job is at least a second away), while the fires of the same instant are
/// still starting: waiting moves the releases' commits (their cache events, and the fires'
/// ends that wait for them) after a burst of starts shorter than this, and makes a few
/// multis of what would be hundreds of deletes. The wait is not cut short when a batch is
/// full: a thousand-fire second filled its first batch of 256 some 4 ms into the burst, and
/// its delete then competed with the remaining starts for the CPU.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

struct Release {
    path: String,
    done: oneshot::Sender<Result<(), RegistryError>>,
}

/// The handle runs release through. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Releaser {
    tx: mpsc::UnboundedSender<Release>,
}

impl Releaser {
    /// A releaser on `registry` and its task (which ends with the last handle).
    pub fn start(registry: Registry) -> (Releaser, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Releaser { tx }, tokio::spawn(run(registry, rx)))
    }

    /// Deletes the node at `path` (a `running` marker this instance created), with the
    /// next batch. A missing node counts as released.
    ///
    /// # Errors
    /// What the delete reported, other than a missing node.
    ///
    /// # Cancellation safety
    /// Dropping the future does not withdraw the delete.
    pub async fn release(&self, path: String) -> Result<(), RegistryError> {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Release { path, done }).is_err() {
            return Err(RegistryError::Closed);
        }
        rx.await.unwrap_or(Err(RegistryError::Closed))
    }
}

async fn run(registry: Registry, mut rx: mpsc::UnboundedReceiver<Release>) {
    let mut gathered: Vec<Release> = Vec::new();
    while let Some(first) = rx.recv().await {
        gathered.push(first);
        let deadline = tokio::time::Instant::now() + GATHER;
        while let Ok(Some(r)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            gathered.push(r);
        }
        // Every batch's multi goes out at once: their commits and answers overlap.
        let mut batches = Vec::with_capacity(gathered.len().div_ceil(BATCH));
        while !gathered.is_empty() {
            let rest = gathered.split_off(gathered.len().min(BATCH));
            batches.push(std::mem::replace(&mut gathered, rest));
        }
        futures::future::join_all(batches.into_iter().map(|b| release(&registry, b))).await;
    }
}

async fn release(registry: &Registry, batch: Vec<Release>) {
    let outcome = if let [one] = batch.as_slice() {
        registry.delete(&one.path, None).await
    } else {
        let ops = batch
            .iter()
            .map(|r| Op::Delete {
                path: r.path.clone(),
                version: None,
            })
            .collect();
        registry.multi(ops).await.map(drop)
    };
    match outcome {
        Ok(()) => {
            for r in batch {
                let _ = r.done.send(Ok(()));
            }
        }
        Err(RegistryError::NoNode(_)) if batch.len() == 1 => {
            for r in batch {
                let _ = r.done.send(Ok(()));
            }
        }
        // One at a time, each with its own outcome.
        Err(_) => {
            let deletes = batch.into_iter().map(|r| async move {
                let result = match registry.delete(&r.path, None).await {
                    Ok(()) | Err(RegistryError::NoNode(_)) => Ok(()),
                    Err(e) => Err(e),
                };
                let _ = r.done.send(result);
            });
            futures::future::join_all(deletes).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_registry::{CreateMode, EmbeddedStore};

    /// More releases than one multi holds still wait out the whole window, then all go:
    /// a full batch does not cut the wait short (it did, and the first 256 deletes of a
    /// thousand-fire second then competed with the fires still starting).
    #[tokio::test(start_paused = true)]
    async fn a_full_batch_waits_for_the_window_and_every_release_goes() {
        let store = EmbeddedStore::in_memory();
        let registry = Registry::embedded(&store, "release")
            .await
            .expect("registry");
        registry
            .create("/r", b"", CreateMode::Persistent)
            .await
            .expect("parent");
        let n = BATCH + 44;
        for i in 0..n {
            registry
                .create(&format!("/r/{i}"), b"me", CreateMode::Ephemeral)
                .await
                .expect("marker");
        }
        let (releaser, task) = Releaser::start(registry.clone());
        let releases = tokio::spawn({
            let releaser = releaser.clone();
            async move {
                let all = (0..n).map(|i| releaser.release(format!("/r/{i}")));
                futures::future::join_all(all).await
            }
        });
        tokio::time::sleep(GATHER / 2).await;
        assert_eq!(
            registry.children("/r").await.expect("children").len(),
            n,
            "a release went out before the window ended"
        );
        let outcomes = releases.await.expect("releases");
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        assert!(registry.children("/r").await.expect("children").is_empty());
        drop(releaser);
        task.await.expect("the releaser ends with its last handle");
    }
}
