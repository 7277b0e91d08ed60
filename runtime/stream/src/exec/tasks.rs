//! The three kinds of task, one of each per partition:
//! - a **source** task reads its partition of every input, applies the stateless steps
//!   (chained, no queue between them) and routes each record by key to a stage task;
//! - a **stage** task runs the join or aggregate for its keys ([`Runner::stage`]); its
//!   watermark per spec source is the minimum over its inputs (source partitions);
//! - a **sink** task writes the stage's output.
//!
//! A stateless pipeline has no stage: sources write straight to their partition's sink.
//! Checkpoints are aligned: a stage stops reading an input once that input's barrier
//! arrived, until every input's has, then snapshots and passes the barrier on.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::Value;

use super::connector::{Connector, Next};
use super::metrics::{Counters, local_histogram};
use super::route::{Item, Rx, Tx, partition_of};
use super::workers::{Progress, Tasklet};
use super::{Ack, Control, MemoryTable, now_ms};
use crate::engine::{Prefix, Record, Runner, output_row, parse_record};
use crate::spec::{PipelineSpec, SourceKind};

/// Records a source task reads per call.
const BATCH: usize = 256;

fn write_file_synced(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// One outbox per destination: a full queue holds back only what is bound for it.
struct Outboxes {
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
    scratch: Vec<Record>,
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
            scratch: Vec::new(),
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
        self.prefix.apply(rec, &mut self.scratch);
        let table = self.prefix.table();
        let n = self.scratch.len();
        for r in self.scratch.drain(..) {
            if self.stateless {
                self.outs.push(
                    0,
                    Item::Row {
                        row: output_row(r, table),
                        born,
                    },
                );
            } else {
                let dest = partition_of(&r.key, self.outs.outs.len());
                self.outs.push(
                    dest,
                    Item::Rec {
                        source: source as u16,
                        rec: r,
                        born,
                    },
                );
            }
        }
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
            let i = self.rr % self.connectors.len();
            self.rr = self.rr.wrapping_add(1);
            if self.ended[i] {
                waiting += 1;
                continue;
            }
            match self.connectors[i].next(now) {
                Ok(Next::Record(v)) => {
                    waiting = 0;
                    read += 1;
                    match parse_record(&self.spec, i, v) {
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
                Ok(Next::Bad(e)) => {
                    waiting = 0;
                    self.control.bad_record(e);
                }
                Ok(Next::NotYet) => waiting += 1,
                Ok(Next::Done) => self.ended[i] = true,
                Err(e) => {
                    self.control.fail(format!(
                        "source {:?} partition {}: {e}",
                        self.spec.sources[i].name, self.partition
                    ));
                    return Progress::Idle;
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

/// What a stage task knows of one input (one source partition).
struct Input {
    rx: Rx,
    aligned: bool,
    ended: bool,
    /// Per spec source.
    wm: Vec<i64>,
    idle: Vec<bool>,
}

/// The stateful part of one partition.
pub(crate) struct StageTask {
    pub(crate) partition: usize,
    runner: Runner,
    inputs: Vec<Input>,
    pending: Option<u64>,
    out: Outboxes,
    rows: Vec<Value>,
    ckpt_dir: PathBuf,
    done: bool,
    late_seen: u64,
    rr: usize,
    ack: Sender<Ack>,
    control: Arc<Control>,
    counters: Arc<Counters>,
}

impl StageTask {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        partition: usize,
        runner: Runner,
        inputs: Vec<Rx>,
        out: Tx,
        ckpt_dir: PathBuf,
        ack: Sender<Ack>,
        control: Arc<Control>,
        counters: Arc<Counters>,
    ) -> StageTask {
        let n = runner.spec().sources.len();
        let late_seen = runner.metrics().late_records_dropped;
        StageTask {
            partition,
            inputs: inputs
                .into_iter()
                .map(|rx| Input {
                    rx,
                    aligned: false,
                    ended: false,
                    wm: vec![i64::MIN; n],
                    idle: vec![false; n],
                })
                .collect(),
            runner,
            pending: None,
            out: Outboxes::new(vec![out]),
            rows: Vec::new(),
            ckpt_dir,
            done: false,
            late_seen,
            rr: 0,
            ack,
            control,
            counters,
        }
    }

    /// The watermark of spec source `s`: the minimum over inputs still running and not
    /// idle. All ended: +∞. All idle: unchanged (an idle operator does not advance).
    fn recompute(&mut self, s: usize) {
        let live = self
            .inputs
            .iter()
            .filter(|i| !i.ended && !i.idle[s])
            .map(|i| i.wm[s])
            .min();
        let w = match live {
            Some(w) => w,
            None if self.inputs.iter().all(|i| i.ended) => i64::MAX,
            None => return,
        };
        self.runner.set_watermark(s, w);
    }

    fn push_rows(&mut self, born: Instant) {
        self.runner.drain_into(&mut self.rows);
        let n = self.rows.len() as u64;
        for row in self.rows.drain(..) {
            self.out.push(0, Item::Row { row, born });
        }
        self.counters.add_out(n);
    }

    fn checkpoint(&mut self, id: u64) -> Result<(), String> {
        let dir = self.ckpt_dir.join(id.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let bytes = serde_json::to_vec(&self.runner.snapshot()).map_err(|e| e.to_string())?;
        let path = dir.join(format!("part-{}.json", self.partition));
        write_file_synced(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = self.ack.send(Ack::Stage {
            partition: self.partition,
            id,
            bytes: bytes.len() as u64,
        });
        Ok(())
    }
}

impl Tasklet for StageTask {
    fn name(&self) -> String {
        format!("stage#{}", self.partition)
    }

    fn call(&mut self) -> Progress {
        if !self.out.flush() {
            self.counters.call(true);
            return Progress::Idle;
        }
        if self.done {
            return Progress::Done;
        }
        self.counters.call(false);
        let mut moved = 0usize;
        let n = self.inputs.len();
        let mut records = 0u64;
        for k in 0..n {
            let i = (self.rr + k) % n;
            let mut taken = 0;
            while taken < BATCH {
                let input = &mut self.inputs[i];
                if input.aligned || input.ended {
                    break;
                }
                let Some(item) = input.rx.try_recv() else {
                    break;
                };
                taken += 1;
                match item {
                    Item::Rec { source, rec, born } => {
                        let s = source as usize;
                        if input.idle[s] {
                            input.idle[s] = false;
                        }
                        records += 1;
                        self.runner.apply(s, rec);
                        self.push_rows(born);
                    }
                    Item::Watermark { source, w } => {
                        let s = source as usize;
                        input.wm[s] = input.wm[s].max(w);
                        input.idle[s] = false;
                        self.recompute(s);
                        self.push_rows(Instant::now());
                    }
                    Item::Idle { source } => {
                        input.idle[source as usize] = true;
                        self.recompute(source as usize);
                        self.push_rows(Instant::now());
                    }
                    Item::Barrier(id) => {
                        input.aligned = true;
                        self.pending = Some(id);
                    }
                    Item::End => {
                        input.ended = true;
                        for s in 0..self.runner.spec().sources.len() {
                            self.recompute(s);
                        }
                        self.push_rows(Instant::now());
                    }
                    Item::Row { .. } => {}
                }
            }
            moved += taken;
        }
        self.rr = self.rr.wrapping_add(1);
        self.counters.add_in(records);
        let late = self.runner.metrics().late_records_dropped;
        if late > self.late_seen {
            self.counters
                .late_dropped
                .fetch_add(late - self.late_seen, Ordering::Relaxed);
            self.late_seen = late;
        }
        let depth: usize = self.inputs.iter().map(|i| i.rx.depth()).sum();
        self.counters.queue_depth[self.partition].store(depth as u64, Ordering::Relaxed);
        let w = self.runner.watermark();
        if w != i64::MIN {
            self.counters.watermark[self.partition].store(w, Ordering::Relaxed);
        }
        if let Some(id) = self.pending
            && self.inputs.iter().all(|i| i.aligned || i.ended)
        {
            if let Err(e) = self.checkpoint(id) {
                self.control.fail(format!("checkpoint {id}: {e}"));
                return Progress::Idle;
            }
            self.out.push(0, Item::Barrier(id));
            self.pending = None;
            self.inputs.iter_mut().for_each(|i| i.aligned = false);
            moved += 1;
        }
        if self.inputs.iter().all(|i| i.ended) {
            self.runner.finish();
            self.push_rows(Instant::now());
            self.out.push(0, Item::End);
            let _ = self.ack.send(Ack::StageEnded {
                partition: self.partition,
            });
            self.done = true;
        }
        self.out.flush();
        if moved > 0 {
            Progress::Made
        } else {
            Progress::Idle
        }
    }
}

/// Where a sink task writes.
pub(crate) enum SinkKind {
    /// Staged files in `dir/.staged`, committed (renamed into `dir`) by the coordinator.
    File {
        dir: PathBuf,
        current: Option<BufWriter<File>>,
    },
    Log {
        pipeline: String,
    },
    Memory(Arc<MemoryTable>),
    Discard,
}

/// The staged and committed names of partition `p`'s output for checkpoint epoch `e`.
pub(crate) fn staged_name(p: usize, e: u64) -> String {
    format!("part-{p:04}-{e:010}.staged")
}

/// A sink partition.
pub(crate) struct SinkTask {
    pub(crate) partition: usize,
    input: Rx,
    kind: SinkKind,
    /// The epoch being written: output after checkpoint `epoch - 1`.
    epoch: u64,
    /// Rows per second at most (a slow consumer), and this second's count.
    rate: Option<u64>,
    second: (Instant, u64),
    held: Option<Item>,
    done: bool,
    hist: Histogram<u64>,
    ack: Sender<Ack>,
    control: Arc<Control>,
    counters: Arc<Counters>,
}

impl SinkTask {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        partition: usize,
        input: Rx,
        kind: SinkKind,
        epoch: u64,
        rate: Option<u64>,
        ack: Sender<Ack>,
        control: Arc<Control>,
        counters: Arc<Counters>,
    ) -> SinkTask {
        SinkTask {
            partition,
            input,
            kind,
            epoch,
            rate,
            second: (Instant::now(), 0),
            held: None,
            done: false,
            hist: local_histogram(),
            ack,
            control,
            counters,
        }
    }

    fn write(&mut self, row: &Value) -> std::io::Result<()> {
        match &mut self.kind {
            SinkKind::File { dir, current } => {
                if current.is_none() {
                    let staged = dir.join(".staged");
                    std::fs::create_dir_all(&staged)?;
                    let f = File::create(staged.join(staged_name(self.partition, self.epoch)))?;
                    *current = Some(BufWriter::with_capacity(1 << 16, f));
                }
                if let Some(w) = current {
                    serde_json::to_writer(&mut *w, row)?;
                    w.write_all(b"\n")?;
                }
                Ok(())
            }
            SinkKind::Log { pipeline } => {
                tracing::info!(target: "capstan_stream::sink", pipeline = %pipeline, "{row}");
                Ok(())
            }
            SinkKind::Memory(table) => {
                table.upsert(row);
                Ok(())
            }
            SinkKind::Discard => Ok(()),
        }
    }

    /// Makes the current epoch's file durable; its name if one was written.
    fn seal(&mut self) -> std::io::Result<Option<String>> {
        if let SinkKind::File { current, .. } = &mut self.kind
            && let Some(mut w) = current.take()
        {
            w.flush()?;
            w.get_ref().sync_all()?;
            return Ok(Some(staged_name(self.partition, self.epoch)));
        }
        Ok(None)
    }

    fn allowed(&mut self) -> bool {
        let Some(rate) = self.rate else {
            return true;
        };
        if self.second.0.elapsed() >= Duration::from_secs(1) {
            self.second = (Instant::now(), 0);
        }
        self.second.1 < rate
    }
}

impl Tasklet for SinkTask {
    fn name(&self) -> String {
        format!("sink#{}", self.partition)
    }

    fn call(&mut self) -> Progress {
        if self.done {
            return Progress::Done;
        }
        self.counters.call(false);
        let mut moved = 0u64;
        let mut rows = 0u64;
        while moved < BATCH as u64 {
            let Some(item) = self.held.take().or_else(|| self.input.try_recv()) else {
                break;
            };
            match item {
                Item::Row { row, born } => {
                    if !self.allowed() {
                        self.held = Some(Item::Row { row, born });
                        break;
                    }
                    self.second.1 += 1;
                    if let Err(e) = self.write(&row) {
                        self.control
                            .fail(format!("sink partition {}: {e}", self.partition));
                        return Progress::Idle;
                    }
                    let us = born.elapsed().as_micros().max(1) as u64;
                    let _ = self.hist.record(us.min(60_000_000));
                    rows += 1;
                }
                Item::Barrier(id) => match self.seal() {
                    Ok(staged) => {
                        let _ = self.ack.send(Ack::Sink {
                            partition: self.partition,
                            id,
                            staged,
                        });
                        self.epoch = id + 1;
                    }
                    Err(e) => {
                        self.control.fail(format!("sink checkpoint {id}: {e}"));
                        return Progress::Idle;
                    }
                },
                Item::End => {
                    match self.seal() {
                        Ok(staged) => {
                            let _ = self.ack.send(Ack::SinkEnded {
                                partition: self.partition,
                                staged,
                            });
                        }
                        Err(e) => self.control.fail(format!("sink end: {e}")),
                    }
                    self.done = true;
                    break;
                }
                Item::Rec { .. } | Item::Watermark { .. } | Item::Idle { .. } => {}
            }
            moved += 1;
        }
        self.counters.add_in(rows);
        self.counters.add_out(rows);
        self.counters.queue_depth[self.partition]
            .store(self.input.depth() as u64, Ordering::Relaxed);
        self.counters.record_latency(&mut self.hist);
        if moved > 0 {
            Progress::Made
        } else {
            Progress::Idle
        }
    }
}
