//! A stage task: the join or aggregate of one partition's keys, its watermark the
//! minimum over its inputs, its checkpoint taken once every input's barrier arrived.
//!
//! A regroup over several partitions has two layers of stage tasks (see
//! `crate::engine::Regroup`): the rows side sends each change of group to the groups
//! side's task of that group, and passes barriers and ends on to all of them. So does a
//! ranked window (`rank`): each partition's task ranks its keys and sends the rows it
//! kept to the task of their window, then passes its watermark on to every task of the
//! second layer, which ranks each window's rows again when it closes there.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::time::Instant;

use super::{BATCH, Outboxes, write_file_synced};
use crate::engine::Runner;
use crate::exec::metrics::Counters;
use crate::exec::route::{Item, Rx, Tx, partition_of};
use crate::exec::workers::{Progress, Tasklet};
use crate::exec::{Ack, Control};

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
    /// Its partition of its vertex (the metrics' slot).
    pub(crate) partition: usize,
    /// Its state's slot in a checkpoint (`part-<slot>.json`, the coordinator's acks): the
    /// partition, past the first layer's for the groups side of a regroup.
    slot: usize,
    runner: Runner,
    inputs: Vec<Input>,
    pending: Option<u64>,
    out: Outboxes,
    ckpt_dir: PathBuf,
    done: bool,
    /// Per spec source, the watermark last passed on to a second layer (see
    /// `forward_watermark`).
    forwarded: Vec<i64>,
    late_seen: u64,
    rr: usize,
    ack: Sender<Ack>,
    control: Arc<Control>,
    counters: Arc<Counters>,
}

impl StageTask {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        (partition, slot): (usize, usize),
        runner: Runner,
        inputs: Vec<Rx>,
        outs: Vec<Tx>,
        ckpt_dir: PathBuf,
        ack: Sender<Ack>,
        control: Arc<Control>,
        counters: Arc<Counters>,
    ) -> StageTask {
        let n = runner.spec().sources.len();
        let late_seen = runner.metrics().late_records_dropped;
        StageTask {
            partition,
            slot,
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
            out: Outboxes::new(outs),
            ckpt_dir,
            done: false,
            forwarded: vec![i64::MIN; n],
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

    /// Sends the rows the runner emitted to the sink (and, on the rows side of a
    /// regroup, its changes of group to their groups' tasks; in a ranked window's first
    /// layer, the rows to their window's task).
    #[inline]
    fn push_rows(&mut self, born: Instant) {
        if self.runner.hands_over_ranked() {
            self.push_ranked(born);
            return;
        }
        let rows = self.runner.emitted();
        let n = rows.len() as u64;
        for row in rows {
            self.out.push(0, Item::Row { row, born });
        }
        self.counters.add_out(n);
        if self.runner.hands_over_regroups() {
            self.push_regroups(born);
        }
    }

    /// Sends each row a partition's ranking kept to the task of its window, which ranks
    /// every partition's rows of the window again.
    #[inline(never)]
    fn push_ranked(&mut self, born: Instant) {
        let parts = self.out.len();
        let mut n = 0;
        for row in self.runner.emitted() {
            n += 1;
            let to = row
                .get("window_start")
                .map_or(0, |start| partition_of(start, parts));
            self.out.push(to, Item::Row { row, born });
        }
        self.counters.add_out(n);
    }

    /// In a ranked window's first layer, passes spec source `s`'s watermark on to every
    /// task of the second, after the rows it closed (each queue keeps its order), so a
    /// window's task has every partition's rows of it when the window closes there.
    fn forward_watermark(&mut self, s: usize, born: Instant) {
        if !self.runner.hands_over_ranked() {
            return;
        }
        let Some(w) = self.runner.given_watermark(s) else {
            return;
        };
        if w > self.forwarded[s] {
            self.forwarded[s] = w;
            let source = s as u16;
            self.out.broadcast(|| Item::Watermark { source, w, born });
        }
    }

    /// Sends each change of group to the task of its group. Kept out of `push_rows`,
    /// which every record of every stage goes through and which stays inlined: Q5-like
    /// took 983.7 M instructions before regroups existed, 994.4 M with `push_rows` not
    /// inlined, 988.6 M so (callgrind, 300,000 events).
    #[inline(never)]
    fn push_regroups(&mut self, born: Instant) {
        let parts = self.out.len();
        let mut n = 0;
        for change in self.runner.regroups() {
            for (group, change) in change.by_group().into_iter().flatten() {
                n += 1;
                let change = Box::new(change);
                self.out
                    .push(partition_of(&group, parts), Item::Regroup { change, born });
            }
        }
        self.counters.add_out(n);
    }

    fn checkpoint(&mut self, id: u64) -> Result<(), String> {
        let dir = self.ckpt_dir.join(id.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let bytes = self.runner.snapshot()?;
        let path = dir.join(format!("part-{}.json", self.slot));
        write_file_synced(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = self.ack.send(Ack::Stage {
            partition: self.slot,
            id,
            bytes: bytes.len() as u64,
        });
        Ok(())
    }
}

impl Tasklet for StageTask {
    fn name(&self) -> String {
        format!("stage#{}", self.slot)
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
                    Item::Regroup { change, born } => {
                        records += 1;
                        self.runner.apply_regroup(*change);
                        self.push_rows(born);
                    }
                    // What a watermark (an idle input, an end) emits is the windows it
                    // closes: their latency counts from the watermark's birth, so that
                    // it includes the closing itself.
                    Item::Watermark { source, w, born } => {
                        let s = source as usize;
                        input.wm[s] = input.wm[s].max(w);
                        input.idle[s] = false;
                        self.recompute(s);
                        self.push_rows(born);
                        self.forward_watermark(s, born);
                    }
                    Item::Idle { source } => {
                        let born = Instant::now();
                        input.idle[source as usize] = true;
                        self.recompute(source as usize);
                        self.push_rows(born);
                        self.forward_watermark(source as usize, born);
                    }
                    Item::Barrier(id) => {
                        input.aligned = true;
                        self.pending = Some(id);
                    }
                    Item::End => {
                        let born = Instant::now();
                        input.ended = true;
                        for s in 0..self.runner.spec().sources.len() {
                            self.recompute(s);
                        }
                        self.push_rows(born);
                        for s in 0..self.runner.spec().sources.len() {
                            self.forward_watermark(s, born);
                        }
                    }
                    // A ranked window's second layer: rows the first ranked.
                    Item::Row { row, born } => {
                        records += 1;
                        self.runner.rank_row(row);
                        self.push_rows(born);
                    }
                    Item::Out { .. } => {}
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
            self.out.broadcast(|| Item::Barrier(id));
            self.pending = None;
            self.inputs.iter_mut().for_each(|i| i.aligned = false);
            moved += 1;
        }
        if self.inputs.iter().all(|i| i.ended) {
            let born = Instant::now();
            self.runner.finish();
            self.push_rows(born);
            self.out.broadcast(|| Item::End);
            let _ = self.ack.send(Ack::StageEnded {
                partition: self.slot,
            });
            self.done = true;
        }
        self.out.flush();
        // A ranked window's next complete panes, when due: after this call's output went.
        self.runner.merge_ahead();
        if moved > 0 {
            Progress::Made
        } else {
            Progress::Idle
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::time::{Duration, Instant};

    use super::StageTask;
    use crate::engine::{Record, Runner};
    use crate::exec::metrics::Counters;
    use crate::exec::route::{Item, Rx, Tx, partition_of, queue};
    use crate::exec::workers::Tasklet;
    use crate::exec::{Control, Shared};
    use crate::spec::PipelineSpec;

    /// Stage task 0 of a test: `runner`, reading `input`, writing to `outs`, with its
    /// checkpoints in `dir`.
    fn stage_task(runner: Runner, input: Rx, outs: Vec<Tx>, dir: &std::path::Path) -> StageTask {
        let (ack, _) = std::sync::mpsc::channel();
        let control = Arc::new(Control {
            requested: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            failure: std::sync::Mutex::new(None),
            done: AtomicBool::new(false),
            shared: Arc::new(Shared::default()),
        });
        let counters = Arc::new(Counters::new("aggregate", "stage", 1));
        StageTask::new(
            (0, 0),
            runner,
            vec![input],
            outs,
            dir.to_path_buf(),
            ack,
            control,
            counters,
        )
    }

    /// A ranked window's first layer sends each kept row to its window's task, then the
    /// watermark that closed the window to every task, behind the rows: so the window's
    /// task ranks it as soon as every partition closed it, not at the end of the input.
    #[test]
    fn a_ranked_windows_first_layer_passes_its_rows_then_its_watermark_on() {
        let spec = PipelineSpec::from_yaml(
            "name: w\nsources: [{name: s}]\nsteps:\n  - key_by: k\n  - aggregate: {window: {tumbling: 1000}, ops: {n: count}, rank: {by: n, top: 1}}\n",
        )
        .expect("spec");
        let (in_tx, in_rx) = queue(64);
        let outs: Vec<_> = (0..2).map(|_| queue(64)).collect();
        let (txs, mut rxs): (Vec<_>, Vec<_>) = outs.into_iter().unzip();
        let dir = tempfile::tempdir().expect("dir");
        let mut runner = Runner::stage(spec, 1);
        runner.hand_over_ranked();
        let mut task = stage_task(runner, in_rx, txs, dir.path());
        let born = Instant::now();
        // Windows [0,1000) and [1000,2000): k1 ranks first in each.
        let mut items: Vec<Item> = [("k1", 100), ("k2", 200), ("k1", 300), ("k1", 1100)]
            .into_iter()
            .map(|(k, ts)| Item::Rec {
                source: 0,
                rec: Record {
                    key: k.into(),
                    value: crate::value::Val::Null,
                    ts,
                },
                born,
            })
            .collect();
        items.push(Item::Watermark {
            source: 0,
            w: 1000,
            born,
        });
        assert!(in_tx.try_send(items).is_ok());
        task.call();
        let mut seen: Vec<Vec<String>> = vec![Vec::new(); 2];
        for (q, rx) in rxs.iter_mut().enumerate() {
            while let Some(item) = rx.try_recv() {
                match item {
                    Item::Row { row, .. } => {
                        let start = row.get("window_start").expect("start").clone();
                        assert_eq!(partition_of(&start, 2), q, "routed by window");
                        seen[q].push(format!("row {}", row.get("key").expect("key")));
                    }
                    Item::Watermark { w, .. } => seen[q].push(format!("watermark {w}")),
                    _ => {}
                }
            }
        }
        // Each queue in its order: the row before the watermark on its window's queue.
        let q = partition_of(&0i64.into(), 2);
        assert_eq!(seen[q], ["row \"k1\"", "watermark 1000"]);
        assert_eq!(seen[1 - q], ["watermark 1000"]);
    }

    /// The results a watermark's arrival emits (the windows it closes) carry the instant
    /// the watermark was made, not one taken after the windows were closed: their latency
    /// must count the closing. The test fails if a result is stamped at or after the
    /// stage's call.
    #[test]
    fn a_closed_windows_results_count_their_latency_from_the_watermark() {
        let spec = PipelineSpec::from_yaml(
            "name: w\nsources: [{name: s}]\nsteps:\n  - key_by: k\n  - aggregate: {window: {tumbling: 1000}, ops: {n: count}}\n",
        )
        .expect("spec");
        let (in_tx, in_rx) = queue(64);
        let (out_tx, mut out_rx) = queue(64);
        let dir = tempfile::tempdir().expect("dir");
        let mut task = stage_task(Runner::stage(spec, 1), in_rx, vec![out_tx], dir.path());
        let read = Instant::now();
        let mut items: Vec<Item> = (0..3)
            .map(|i| Item::Rec {
                source: 0,
                rec: Record {
                    key: format!("k{i}").into(),
                    value: crate::value::Val::Null,
                    ts: 100 * i,
                },
                born: read,
            })
            .collect();
        // Made a while ago: the stage takes it now.
        let made = read.checked_sub(Duration::from_millis(50)).unwrap_or(read);
        items.push(Item::Watermark {
            source: 0,
            w: 1000,
            born: made,
        });
        assert!(in_tx.try_send(items).is_ok());
        let called = Instant::now();
        task.call();
        let mut rows = Vec::new();
        while let Some(item) = out_rx.try_recv() {
            if let Item::Row { born, .. } = item {
                rows.push(born);
            }
        }
        assert_eq!(rows.len(), 3, "one window result per key");
        assert!(
            rows.iter().all(|born| *born == made && *born < called),
            "results stamped after the watermark was made"
        );
    }
}
