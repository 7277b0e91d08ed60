//! The scheduler runtimes this console runs jobs with, by the registry they run on.
//!
//! `capstan serve` runs one on the embedded `local` centre (the demo jobs) and one on each
//! centre named with `--run-jobs-on`. They are keyed by the registry's identity, not the
//! centre's name, so renaming a centre in the console does not lose its runtime.

use std::collections::HashMap;
use std::sync::RwLock;

use capstan_scheduler::Scheduler;
use capstan_scheduler::history::History;

use super::db::centres::CentreRow;
use crate::model::CentreKind;

/// The runtimes, by registry identity.
#[derive(Default)]
pub struct Runtimes {
    by_registry: RwLock<HashMap<String, Scheduler>>,
}

/// What names one registry namespace, whatever the centre is called.
pub fn identity(kind: CentreKind, connect: &str, namespace: &str) -> String {
    match kind {
        CentreKind::Embedded => format!("embedded:/{namespace}"),
        CentreKind::Zookeeper => format!("zookeeper:{connect}/{namespace}"),
    }
}

impl Runtimes {
    /// Registers the runtime of a registry.
    pub fn insert(&self, identity: String, scheduler: Scheduler) {
        self.by_registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(identity, scheduler);
    }

    /// The runtime running jobs on `row`'s registry, if any.
    pub fn for_centre(&self, row: &CentreRow) -> Option<Scheduler> {
        self.by_registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&identity(row.kind(), &row.connect, &row.namespace))
            .cloned()
    }

    /// The run history of `row`'s runtime, if this console runs jobs there.
    pub fn history(&self, row: &CentreRow) -> Option<History> {
        self.for_centre(row).and_then(|s| s.history().cloned())
    }

    /// Every runtime (for shutdown).
    pub fn all(&self) -> Vec<Scheduler> {
        self.by_registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}
