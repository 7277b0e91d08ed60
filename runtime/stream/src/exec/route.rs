//! Routing by key, and the bounded queues between tasks.
//!
//! The hash is FNV-1a, not std's randomly seeded one: a key must reach the same partition
//! after a restart, because that partition's restored state holds it.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::Instant;

use crate::engine::{Record, Regroup};
use crate::value::{Val, integer_text};

/// FNV-1a, 64 bits.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The partition of `key` among `n`.
pub(crate) fn partition_of(key: &Val, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let h = match key {
        Val::Str(s) => stable_hash(s.as_bytes()),
        // An integer's text straight from `itoa`, not through serde and a formatter: 80
        // instructions a record (callgrind).
        other => match integer_text(other, &mut itoa::Buffer::new()) {
            Some(text) => stable_hash(text.as_bytes()),
            None => {
                // The key's JSON text, as ever (restored state depends on it), written on
                // the stack: a number's text fits, and keys are mostly numbers or strings.
                let mut text = StackText::default();
                if write!(text, "{other}").is_ok() {
                    stable_hash(text.bytes())
                } else {
                    stable_hash(other.to_string().as_bytes())
                }
            }
        },
    };
    (h % n as u64) as usize
}

/// Text written into a fixed buffer; a write that does not fit fails.
#[derive(Default)]
struct StackText {
    buf: [u8; 32],
    len: usize,
}

impl StackText {
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// What flows between tasks. Barriers and ends are in-band, so a queue's order is the
/// order a checkpoint cuts.
pub(crate) enum Item {
    /// To a stateful stage: a record of spec source `source`, read at `born`.
    Rec {
        source: u16,
        rec: Record,
        born: Instant,
    },
    /// To the groups' side of a regroup: a table row's change of group, caused by
    /// something read at `born`. Boxed: two rows inline made every item of every
    /// pipeline three times larger, and each move of one cost that much more (Q5-like
    /// took 9 % more instructions).
    Regroup { change: Box<Regroup>, born: Instant },
    /// To a sink: an output row, caused by something read at `born`.
    Row { row: Val, born: Instant },
    /// To a sink: a record of a stateless pipeline, read at `born`; its output row
    /// ([`crate::engine::output_row`]) is made only by a sink that writes it.
    Out {
        rec: Record,
        table: bool,
        born: Instant,
    },
    /// Spec source `source`'s watermark in the sending partition, made at `born` (just
    /// after the records that moved it were read): a window it closes has its results'
    /// latency counted from then.
    Watermark { source: u16, w: i64, born: Instant },
    /// Spec source `source` went idle in the sending partition.
    Idle { source: u16 },
    /// Checkpoint `id`: everything before belongs to it.
    Barrier(u64),
    /// The sender has no more.
    End,
}

/// Items per message of a queue at most: a message is a batch, so a record's trip between
/// tasks costs a fraction of a channel operation (one each was a seventh of a pass-through
/// pipeline's CPU).
pub(crate) const BATCH: usize = 256;

/// The sending end of a bounded queue.
pub(crate) struct Tx {
    tx: SyncSender<Vec<Item>>,
    depth: Arc<AtomicUsize>,
    /// Items per message at most.
    batch: usize,
}

/// The receiving end.
pub(crate) struct Rx {
    rx: Receiver<Vec<Item>>,
    depth: Arc<AtomicUsize>,
    /// The batch being taken apart.
    batch: std::vec::IntoIter<Item>,
}

/// A queue of `capacity` items (rounded up to whole messages), as messages of up to
/// [`BATCH`] items, and at least four messages so that a sender fills one while its
/// receiver empties another. `std`'s bounded channel is an array: no allocation per
/// message.
pub(crate) fn queue(capacity: usize) -> (Tx, Rx) {
    let batch = (capacity / 4).clamp(1, BATCH);
    let (tx, rx) = sync_channel(capacity.max(1).div_ceil(batch));
    let depth = Arc::new(AtomicUsize::new(0));
    (
        Tx {
            tx,
            depth: depth.clone(),
            batch,
        },
        Rx {
            rx,
            depth,
            batch: Vec::new().into_iter(),
        },
    )
}

impl Tx {
    /// Items per message at most.
    pub(crate) fn batch(&self) -> usize {
        self.batch
    }

    /// Sends a batch unless the queue is full; a full queue gives it back (backpressure).
    /// A queue whose receiver is gone (the pipeline is stopping) swallows it.
    ///
    /// The depth is counted before the send: counted after, a receiver could take the
    /// batch and subtract it first, and the depth wrapped below zero (a stage summing its
    /// inputs' depths then overflowed). The send orders the addition before the
    /// receiver's subtraction; a full queue only overstates the depth for a moment.
    pub(crate) fn try_send(&self, batch: Vec<Item>) -> Result<(), Vec<Item>> {
        let n = batch.len();
        self.depth.fetch_add(n, Ordering::Relaxed);
        match self.tx.try_send(batch) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(batch)) => {
                self.depth.fetch_sub(n, Ordering::Relaxed);
                Err(batch)
            }
            Err(TrySendError::Disconnected(_)) => {
                self.depth.fetch_sub(n, Ordering::Relaxed);
                Ok(())
            }
        }
    }
}

impl Rx {
    /// The next item, if any.
    pub(crate) fn try_recv(&mut self) -> Option<Item> {
        if let Some(item) = self.batch.next() {
            return Some(item);
        }
        match self.rx.try_recv() {
            Ok(batch) => {
                self.depth.fetch_sub(batch.len(), Ordering::Relaxed);
                self.batch = batch.into_iter();
                self.batch.next()
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
        }
    }

    /// Items waiting (those of the batch being taken apart aside).
    pub(crate) fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue's depth never goes below zero, even when the receiver takes a batch the
    /// moment it is sent (it did: the depth was counted after the send, a receiver could
    /// subtract first, and a stage summing its inputs' depths overflowed).
    #[test]
    fn a_queue_depth_never_goes_below_zero() {
        let (tx, mut rx) = queue(64);
        let sender = std::thread::spawn(move || {
            for _ in 0..200_000 {
                let mut batch = vec![Item::End];
                while let Err(back) = tx.try_send(batch) {
                    batch = back;
                    std::thread::yield_now();
                }
            }
        });
        let mut received = 0;
        while received < 200_000 {
            if rx.try_recv().is_some() {
                received += 1;
            }
            assert!(rx.depth() <= 64, "depth {} of a 64-item queue", rx.depth());
        }
        sender.join().expect("sender");
        assert_eq!(rx.depth(), 0);
    }

    /// Restored state depends on a key reaching the partition it reached before: the
    /// hash is of the key's JSON text, whether it is written on the stack or not.
    #[test]
    fn a_key_goes_where_its_json_text_sends_it() {
        let long = serde_json::Value::Array((0..40).map(serde_json::Value::from).collect());
        for key in [
            serde_json::Value::from(1042u64),
            serde_json::Value::from(-7i64),
            serde_json::Value::from(0.908),
            serde_json::Value::from(u64::MAX),
            serde_json::Value::Bool(true),
            serde_json::Value::Null,
            serde_json::json!({"b": 1, "a": [2.5, "x"]}),
            long,
        ] {
            let expected = (stable_hash(key.to_string().as_bytes()) % 7) as usize;
            assert_eq!(
                partition_of(&Val::from_json(key.clone()), 7),
                expected,
                "{key}"
            );
        }
        assert_eq!(
            partition_of(&Val::from("sensor-3"), 7),
            (stable_hash(b"sensor-3") % 7) as usize
        );
    }
}
