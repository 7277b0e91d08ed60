//! A sink task: writes one partition's results; a file sink stages each checkpoint
//! epoch's rows in a file of its own, made durable at the barrier and committed (renamed)
//! by the coordinator.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::BATCH;
use crate::engine::output_row;
use crate::exec::metrics::Counters;
use crate::exec::route::{Item, Rx};
use crate::exec::workers::{Progress, Tasklet};
use crate::exec::{Ack, Control, MemoryTable};
use crate::value::Val;

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
    /// When each row written in this call was born; their latencies are taken once the
    /// call's rows are written, with one reading of the clock (not one per row, which
    /// was 6 % of a pass-through pipeline's CPU). A row is never measured as earlier
    /// than it was written. Rows born together (a source reads a batch at one instant)
    /// share an entry: `(born, rows)`.
    borns: Vec<(Instant, u64)>,
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
            borns: Vec::with_capacity(SINK_BATCHES as usize * BATCH),
            ack,
            control,
            counters,
        }
    }

    fn born(&mut self, born: Instant) {
        match self.borns.last_mut() {
            Some((b, n)) if *b == born => *n += 1,
            _ => self.borns.push((born, 1)),
        }
    }

    fn write(&mut self, row: &Val) -> std::io::Result<()> {
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

/// A sink takes up to this many batches per call. A row costs a sink far less than a
/// record costs a source or a stage, and a closing window hands it thousands of rows at
/// once: one batch per call, between the other tasks' turns, left the last rows of a
/// Q5-like window close waiting 7–14 ms at p99, against 5–9 ms with eight (`make bench`).
const SINK_BATCHES: u64 = 8;

/// But a call stops after a batch that took it past this: a sink whose rows are costly (a
/// file's) still gives the thread back about as often as the other tasks do.
const SINK_CALL_BUDGET: Duration = Duration::from_micros(500);

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
        let began = Instant::now();
        while moved < SINK_BATCHES * BATCH as u64 {
            if moved > 0
                && moved.is_multiple_of(BATCH as u64)
                && began.elapsed() >= SINK_CALL_BUDGET
            {
                break;
            }
            let Some(item) = self.held.take().or_else(|| self.input.try_recv()) else {
                break;
            };
            if matches!(item, Item::Row { .. } | Item::Out { .. }) {
                if !self.allowed() {
                    self.held = Some(item);
                    break;
                }
                self.second.1 += 1;
                rows += 1;
            }
            match item {
                Item::Row { row, born } => {
                    if let Err(e) = self.write(&row) {
                        self.control
                            .fail(format!("sink partition {}: {e}", self.partition));
                        return Progress::Idle;
                    }
                    self.born(born);
                }
                Item::Out { rec, table, born } => {
                    // A discarding sink never needs the row built.
                    if !matches!(self.kind, SinkKind::Discard)
                        && let Err(e) = self.write(&output_row(rec, table))
                    {
                        self.control
                            .fail(format!("sink partition {}: {e}", self.partition));
                        return Progress::Idle;
                    }
                    self.born(born);
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
                Item::Rec { .. }
                | Item::Regroup { .. }
                | Item::Watermark { .. }
                | Item::Idle { .. } => {}
            }
            moved += 1;
        }
        let now = Instant::now();
        self.counters
            .record_latencies(self.borns.drain(..).map(|(born, n)| {
                let us = now.duration_since(born).as_micros().max(1) as u64;
                (us.min(60_000_000), n)
            }));
        self.counters.add_in(rows);
        self.counters.add_out(rows);
        self.counters.queue_depth[self.partition]
            .store(self.input.depth() as u64, Ordering::Relaxed);
        if moved > 0 {
            Progress::Made
        } else {
            Progress::Idle
        }
    }
}
