//! The three kinds of task, one of each per partition:
//! - a **source** task reads its partition of every input, applies the stateless steps
//!   (chained, no queue between them) and routes each record by key to a stage task;
//! - a **stage** task runs the join or aggregate for its keys ([`crate::engine::Runner::stage`]); its
//!   watermark per spec source is the minimum over its inputs (source partitions);
//! - a **sink** task writes the stage's output.
//!
//! A stateless pipeline has no stage: sources write straight to their partition's sink.
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

/// Records a source task reads per call.
pub(super) const BATCH: usize = 256;

pub(super) fn write_file_synced(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// One outbox per destination: a full queue holds back only what is bound for it.
pub(super) struct Outboxes {
    outs: Vec<Tx>,
    pending: Vec<VecDeque<Item>>,
}

impl Outboxes {
    fn new(outs: Vec<Tx>) -> Outboxes {
        let n = outs.len();
        Outboxes {
            outs,
            pending: (0..n).map(|_| VecDeque::new()).collect(),
        }
    }

    fn push(&mut self, dest: usize, item: Item) {
        self.pending[dest].push_back(item);
    }

    fn broadcast(&mut self, make: impl Fn() -> Item) {
        for p in &mut self.pending {
            p.push_back(make());
        }
    }

    /// Sends what the queues take; `true` when everything went.
    fn flush(&mut self) -> bool {
        let mut all = true;
        for (tx, pending) in self.outs.iter().zip(&mut self.pending) {
            while let Some(item) = pending.pop_front() {
                if let Err(item) = tx.try_send(item) {
                    pending.push_front(item);
                    all = false;
                    break;
                }
            }
        }
        all
    }
}
