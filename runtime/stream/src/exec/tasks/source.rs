//! A source task: its partition of every input, the stateless steps chained in, records
//! routed by key (or, with no stage, rows straight to its sink), watermarks and barriers
//! sent in band.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{BATCH, Outboxes};
use crate::engine::{Prefix, Record, parse_record};
use crate::exec::connector::{Connector, Next};
use crate::exec::metrics::Counters;
use crate::exec::route::{Item, Tx, partition_of};
use crate::exec::workers::{Progress, Tasklet};
use crate::exec::{Ack, Control, now_ms};
use crate::spec::{PipelineSpec, SourceKind};

/// A source partition.
pub(crate) struct SourceTask {
    partition: usize,
    spec: Arc<PipelineSpec>,
    connectors: Vec<Box<dyn Connector>>,
    pub(crate) ended: Vec<bool>,
    prefix: Prefix,
    /// No stage: rows go straight to this partition's sink (`outs` has one queue).
    stateless: bool,
    outs: Outboxes,
    max_ts: Vec<i64>,
    sent_wm: Vec<i64>,
    last_record: Vec<Instant>,
    idle: Vec<bool>,
    /// Windows on processing time: records take the wall clock as they are read, and the
    /// watermark follows the clock (so windows close without records too).
    processing: bool,
    /// Per spec source: its `idle_timeout_ms`, on the wall clock here.
    idle_timeout: Vec<Option<Duration>>,
    barrier: u64,
    done: bool,
    rr: usize,
    ack: Sender<Ack>,
    control: Arc<Control>,
    counters: Arc<Counters>,
}

impl SourceTask {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        partition: usize,
        spec: Arc<PipelineSpec>,
        connectors: Vec<Box<dyn Connector>>,
        prefix: Prefix,
        stateless: bool,
        outs: Vec<Tx>,
        barrier: u64,
        ack: Sender<Ack>,
        control: Arc<Control>,
        counters: Arc<Counters>,
    ) -> SourceTask {
        let n = spec.sources.len();
        SourceTask {
            partition,
            ended: vec![false; connectors.len()],
            connectors,
            prefix,
            stateless,
            outs: Outboxes::new(outs),
            max_ts: vec![i64::MIN; n],
            sent_wm: vec![i64::MIN; n],
            last_record: vec![Instant::now(); n],
            idle: vec![false; n],
            processing: spec.processing_time(),
            idle_timeout: spec
                .sources
                .iter()
                .map(|s| s.idle_timeout_ms.map(|t| Duration::from_millis(t as u64)))
                .collect(),
            barrier,
            done: false,
            rr: 0,
            ack,
            control,
            counters,
            spec,
        }
    }

    fn positions(&self) -> Vec<Value> {
        self.connectors.iter().map(|c| c.position()).collect()
    }

    /// Applies the stateless steps and queues the results; how many.
    fn route(&mut self, source: usize, rec: Record, born: Instant) -> usize {
        let table = self.prefix.table();
        let stateless = self.stateless;
        let outs = &mut self.outs;
        let mut n = 0;
        self.prefix.apply(rec, &mut |r| {
            n += 1;
            if stateless {
                outs.push(
                    0,
                    Item::Out {
                        rec: r,
                        table,
                        born,
                    },
                );
            } else {
                let dest = partition_of(&r.key, outs.len());
                outs.push(
                    dest,
                    Item::Rec {
                        source: source as u16,
                        rec: r,
                        born,
                    },
                );
            }
        });
        n
    }

    fn watermarks(&mut self) {
        if self.stateless {
            return;
        }
        let now = Instant::now();
        let clock = now_ms();
        for (i, s) in self.spec.sources.iter().enumerate() {
            if s.kind != SourceKind::Stream {
                continue;
            }
            let w = if self.processing {
                // Every 10 ms at most: each watermark goes to every partition.
                if clock < self.sent_wm[i].saturating_add(10) {
                    continue;
                }
                clock
            } else {
                self.max_ts[i].saturating_sub(s.max_out_of_orderness_ms)
            };
            if w > self.sent_wm[i] {
                self.sent_wm[i] = w;
                self.outs.broadcast(|| Item::Watermark {
                    source: i as u16,
                    w,
                    born: now,
                });
            }
            if let Some(t) = self.idle_timeout[i]
                && !self.idle[i]
                && now.duration_since(self.last_record[i]) >= t
            {
                self.idle[i] = true;
                self.outs.broadcast(|| Item::Idle { source: i as u16 });
            }
        }
        if let Some(w) = self
            .sent_wm
            .iter()
            .copied()
            .filter(|w| *w != i64::MIN)
            .min()
        {
            self.counters.watermark[self.partition].store(w, Ordering::Relaxed);
        }
    }
}

impl Tasklet for SourceTask {
    fn name(&self) -> String {
        format!("source#{}", self.partition)
    }

    fn call(&mut self) -> Progress {
        if !self.outs.flush() {
            self.counters.call(true);
            return Progress::Idle;
        }
        if self.done {
            return Progress::Done;
        }
        self.counters.call(false);
        // Barriers go first, with the position they cut at: every record read before is
        // already in an outbox ahead of them.
        let requested = self.control.requested.load(Ordering::Acquire);
        if requested > self.barrier {
            self.barrier = requested;
            self.outs.broadcast(|| Item::Barrier(requested));
            let _ = self.ack.send(Ack::Source {
                partition: self.partition,
                id: requested,
                positions: self.positions(),
            });
        }
        if self.ended.iter().all(|e| *e) {
            self.outs.broadcast(|| Item::End);
            let _ = self.ack.send(Ack::SourceEnded {
                partition: self.partition,
                positions: self.positions(),
            });
            self.done = true;
            self.outs.flush();
            return Progress::Made;
        }
        if self.control.paused.load(Ordering::Relaxed) {
            self.watermarks();
            self.outs.flush();
            return Progress::Idle;
        }
        let now = now_ms();
        let born = Instant::now();
        let mut read = 0;
        let mut routed = 0;
        let mut waiting = 0;
        while read < BATCH && waiting < self.connectors.len() {
            // Round robin without a division per record (tens of cycles each).
            let i = self.rr;
            self.rr = if i + 1 >= self.connectors.len() {
                0
            } else {
                i + 1
            };
            if self.ended[i] {
                waiting += 1;
                continue;
            }
            let read_one = match self.connectors[i].next(now) {
                Ok(Next::Record(v)) => Some(parse_record(&self.spec, i, v)),
                Ok(Next::Parsed(rec)) => Some(Ok((i, rec))),
                Ok(Next::Bad(e)) => {
                    waiting = 0;
                    self.control.bad_record(e);
                    None
                }
                Ok(Next::NotYet) => {
                    waiting += 1;
                    None
                }
                Ok(Next::Done) => {
                    self.ended[i] = true;
                    None
                }
                Err(e) => {
                    self.control.fail(format!(
                        "source {:?} partition {}: {e}",
                        self.spec.sources[i].name, self.partition
                    ));
                    return Progress::Idle;
                }
            };
            if let Some(parsed) = read_one {
                waiting = 0;
                read += 1;
                match parsed {
                    Ok((source, mut rec)) => {
                        if self.processing {
                            rec.ts = now;
                        }
                        self.max_ts[source] = self.max_ts[source].max(rec.ts);
                        self.last_record[source] = born;
                        self.idle[source] = false;
                        routed += self.route(source, rec, born);
                    }
                    Err(e) => self.control.bad_record(e.message),
                }
            }
        }
        self.counters.add_in(read as u64);
        self.counters.add_out(routed as u64);
        self.watermarks();
        self.outs.flush();
        if read > 0 {
            Progress::Made
        } else {
            Progress::Idle
        }
    }
}
