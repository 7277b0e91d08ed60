//! Leader election on the [`Latch`]: whoever holds the latch leads, until it resigns or
//! loses its session (Curator `LeaderLatch` semantics).

use super::latch::{Latch, LatchGuard};
use crate::{Registry, Result};

/// Candidates for one leadership, at one latch path.
#[derive(Clone)]
pub struct LeaderElection {
    latch: Latch,
}

/// Being the leader.
pub struct Leadership {
    guard: LatchGuard,
}

impl LeaderElection {
    /// An election at `latch_path`.
    pub fn new(registry: Registry, latch_path: impl Into<String>) -> LeaderElection {
        LeaderElection {
            latch: Latch::new(registry, latch_path),
        }
    }

    /// Waits until this candidate leads.
    ///
    /// # Errors
    /// As [`Latch::acquire`].
    pub async fn lead(&self) -> Result<Leadership> {
        Ok(Leadership {
            guard: self.latch.acquire().await?,
        })
    }
}

impl Leadership {
    /// Resolves when leadership is lost (session expiry, or the node removed by someone
    /// else). Stop acting as leader then: another candidate may already lead.
    pub async fn lost(&self) {
        self.guard.lost().await;
    }

    /// Steps down, letting the next candidate lead.
    ///
    /// # Errors
    /// A registry error.
    pub async fn resign(self) -> Result<()> {
        self.guard.release().await
    }
}
