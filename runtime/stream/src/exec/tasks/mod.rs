//! The three kinds of task, one of each per partition:
//! - a **source** task reads its partition of every input, applies the stateless steps
//!   (chained, no queue between them) and routes each record by key to a stage task;
//! - a **stage** task runs the join or aggregate for its keys ([`crate::engine::Runner::stage`]); its
//!   watermark per spec source is the minimum over its inputs (source partitions);
//! - a **sink** task writes the stage's output.
//!
//! A stateless pipeline has no stage: sources write straight to their partition's sink.
//! A table regrouped over several partitions has two stages per partition: the rows (by
//! key), then the groups (by group), with an exchange between (see `stage`); a ranked
//! window too: each partition's ranking, then each window's (by window).
//! Checkpoints are aligned: a stage stops reading an input once that input's barrier
//! arrived, until every input's has, then snapshots and passes the barrier on.

mod sink;
mod source;
mod stage;

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;

use super::route::{Item, Tx};

pub(crate) use sink::{SinkKind, SinkTask};
pub(crate) use source::SourceTask;
pub(crate) use stage::StageTask;

/// Records a source task reads per call, as many as a queue message holds.
pub(super) use super::route::BATCH;

pub(super) fn write_file_synced(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// One outbox per destination: a full queue holds back only what is bound for it. Items
/// go out as batches of up to [`BATCH`].
pub(super) struct Outboxes {
    outs: Vec<Tx>,
    /// Per destination: the batch being filled, and full batches the queue has not taken.
    filling: Vec<Vec<Item>>,
    queued: Vec<VecDeque<Vec<Item>>>,
}

impl Outboxes {
    fn new(outs: Vec<Tx>) -> Outboxes {
        let n = outs.len();
        Outboxes {
            outs,
            filling: (0..n).map(|_| Vec::new()).collect(),
            queued: (0..n).map(|_| VecDeque::new()).collect(),
        }
    }

    /// Destinations.
    fn len(&self) -> usize {
        self.outs.len()
    }

    fn push(&mut self, dest: usize, item: Item) {
        let filling = &mut self.filling[dest];
        let batch = self.outs[dest].batch();
        if filling.capacity() == 0 {
            // Allocated at the first item, whole: a quiet destination costs nothing.
            filling.reserve_exact(batch);
        }
        filling.push(item);
        if filling.len() >= batch {
            let full = std::mem::take(filling);
            self.queued[dest].push_back(full);
        }
    }

    fn broadcast(&mut self, make: impl Fn() -> Item) {
        for dest in 0..self.outs.len() {
            self.push(dest, make());
        }
    }

    /// Sends what the queues take; `true` when everything went.
    fn flush(&mut self) -> bool {
        let mut all = true;
        for ((tx, filling), queued) in self
            .outs
            .iter()
            .zip(&mut self.filling)
            .zip(&mut self.queued)
        {
            if !filling.is_empty() {
                queued.push_back(std::mem::take(filling));
            }
            while let Some(batch) = queued.pop_front() {
                if let Err(batch) = tx.try_send(batch) {
                    queued.push_front(batch);
                    all = false;
                    break;
                }
            }
        }
        all
    }
}
