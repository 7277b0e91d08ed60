//! A mutex with Curator `LeaderLatch`'s layout.
//!
//! Each participant creates an ephemeral-sequential child `_c_<uuid>-latch-<seq>` of the
//! latch path (`_c_<uuid>-` is Curator's "protection" prefix). The participant whose text
//! after the last `latch-` sorts lowest holds the latch; every other participant watches
//! only its predecessor, so a release wakes exactly one waiter. Java's sorter compares the
//! same suffix, so a Java instance and a Capstan instance agree on who holds it
//! (`elasticjob-registry.md` §1).

use rand::Rng;

use crate::node::{CreateMode, CreateOptions, EventKind};
use crate::{Error, Registry, Result, path};

const MARKER: &str = "latch-";

/// A latch at one path.
#[derive(Clone)]
pub struct Latch {
    registry: Registry,
    path: String,
}

/// Curator's protection id: a random UUID, written the way Java prints one.
fn protection_id() -> String {
    let b: [u8; 16] = rand::rng().random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Curator's `fixForSorting`: the text after the last `latch-`.
fn sequence(name: &str) -> &str {
    name.rfind(MARKER)
        .map_or(name, |i| &name[i + MARKER.len()..])
}

/// Participants in holding order.
pub(crate) fn sorted_participants(mut children: Vec<String>) -> Vec<String> {
    children.retain(|c| c.contains(MARKER));
    children.sort_by(|a, b| sequence(a).cmp(sequence(b)));
    children
}

impl Latch {
    /// A latch at `path` (created on first use, as Curator does).
    pub fn new(registry: Registry, path: impl Into<String>) -> Latch {
        Latch {
            registry,
            path: path.into(),
        }
    }

    /// Waits until this participant holds the latch.
    ///
    /// # Errors
    /// [`Error::SessionExpired`] if the session ends while waiting (the participant node
    /// is then gone), or a registry error. The participant node is removed on error.
    ///
    /// # Cancellation safety
    /// Not cancel-safe: a cancelled acquire leaves its participant node until the session
    /// ends. Use [`LatchGuard::release`] on success, or close the session.
    pub async fn acquire(&self) -> Result<LatchGuard> {
        path::validate(&self.path)?;
        let prefix = format!("{}/_c_{}-{MARKER}", self.path, protection_id());
        let node = self
            .registry
            .create_with(
                &prefix,
                b"",
                CreateOptions {
                    mode: CreateMode::EphemeralSequential,
                    create_parents: true,
                },
            )
            .await?;
        let guard = LatchGuard {
            registry: self.registry.clone(),
            node: Some(node),
        };
        match self.wait_for_turn(guard.node()).await {
            Ok(()) => Ok(guard),
            Err(e) => {
                let _ = guard.release().await;
                Err(e)
            }
        }
    }

    async fn wait_for_turn(&self, node: &str) -> Result<()> {
        let ours = path::name(node).to_owned();
        loop {
            let participants = sorted_participants(self.registry.children(&self.path).await?);
            let Some(index) = participants.iter().position(|p| *p == ours) else {
                // Our ephemeral node is gone: the session ended under us.
                return Err(Error::SessionExpired);
            };
            if index == 0 {
                return Ok(());
            }
            let predecessor = path::join(&self.path, &participants[index - 1]);
            let (stat, watch) = self.registry.exists_and_watch(&predecessor).await?;
            if stat.is_none() {
                continue;
            }
            if watch.changed().await.kind == EventKind::SessionEnded {
                return Err(Error::SessionExpired);
            }
        }
    }
}

/// Holding a latch. Release it explicitly; dropping it releases it in the background.
pub struct LatchGuard {
    registry: Registry,
    /// `None` once released.
    node: Option<String>,
}

impl LatchGuard {
    /// This participant's node.
    pub fn node(&self) -> &str {
        self.node.as_deref().unwrap_or("")
    }

    /// Resolves when the latch is no longer held: the node was deleted (by an operator,
    /// or because the session expired) or the session ended.
    pub async fn lost(&self) {
        loop {
            match self.registry.exists_and_watch(self.node()).await {
                Ok((Some(_), watch)) => {
                    let e = watch.changed().await;
                    if matches!(e.kind, EventKind::NodeDeleted | EventKind::SessionEnded) {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// Releases the latch, waking the next participant.
    ///
    /// # Errors
    /// A registry error other than the node being gone already.
    pub async fn release(mut self) -> Result<()> {
        match self.node.take() {
            Some(node) => match self.registry.delete(&node, None).await {
                Ok(()) | Err(Error::NoNode(_)) | Err(Error::SessionExpired) => Ok(()),
                Err(e) => Err(e),
            },
            None => Ok(()),
        }
    }
}

impl Drop for LatchGuard {
    fn drop(&mut self) {
        let Some(node) = self.node.take() else { return };
        let registry = self.registry.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = registry.delete(&node, None).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_curator() {
        let children = vec![
            "_c_b-latch-0000000012".to_owned(),
            "_c_a-latch-0000000003".to_owned(),
            "unrelated".to_owned(),
            "_c_9f-latch-0000000007".to_owned(),
        ];
        assert_eq!(
            sorted_participants(children),
            [
                "_c_a-latch-0000000003",
                "_c_9f-latch-0000000007",
                "_c_b-latch-0000000012"
            ]
        );
        let id = protection_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
    }
}
