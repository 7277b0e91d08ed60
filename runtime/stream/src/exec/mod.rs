//! The partitioned executor: a pipeline spec with a `run:` section ([`config`]) run as
//! `partitions` source, stage and sink tasks (`tasks`) on a few cooperative threads
//! (`workers`), with bounded queues, aligned checkpoints and a transactional file sink
//! (`checkpoint`), and per-vertex metrics ([`metrics`]).
//!
//! A [`Pipeline`] handle survives restarts: pause and resume act on the sources, restart
//! stops every task and starts again from the last complete checkpoint, as a restart
//! after `kill -9` does.

mod checkpoint;
pub mod config;
mod connector;
pub mod metrics;
pub mod nexmark;
mod route;
mod tasks;
mod workers;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::value::Val;

use crate::engine::{Prefix, Runner, exchange_point};
use crate::spec::{PipelineSpec, SpecError, Step};
use checkpoint::{Coordinator, Manifest, read_manifest, recover};
use config::{RunConfig, SinkConfig};
use metrics::{Counters, Sample, VertexStatus};
use route::{queue, stable_hash};
use tasks::{SinkKind, SinkTask, SourceTask, StageTask};
use workers::Tasklet;

/// Wall clock, ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What tasks tell the coordinator.
pub(crate) enum Ack {
    Source {
        partition: usize,
        id: u64,
        positions: Vec<Value>,
    },
    SourceEnded {
        partition: usize,
        positions: Vec<Value>,
    },
    Stage {
        partition: usize,
        id: u64,
        bytes: u64,
    },
    StageEnded {
        partition: usize,
    },
    Sink {
        partition: usize,
        id: u64,
        staged: Option<String>,
    },
    SinkEnded {
        partition: usize,
        staged: Option<String>,
    },
}

/// Flags and counters one run of the tasks shares.
pub(crate) struct Control {
    /// The checkpoint sources are asked for.
    pub(crate) requested: AtomicU64,
    pub(crate) paused: AtomicBool,
    pub(crate) stop: AtomicBool,
    failure: Mutex<Option<String>>,
    done: AtomicBool,
    shared: Arc<Shared>,
}

impl Control {
    pub(crate) fn fail(&self, why: String) {
        let mut f = lock(&self.failure);
        if f.is_none() {
            *f = Some(why);
        }
        self.stop.store(true, Ordering::Release);
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    pub(crate) fn finished(&self) {
        self.done.store(true, Ordering::Release);
    }

    pub(crate) fn bad_record(&self, why: String) {
        self.shared.bad_records.fetch_add(1, Ordering::Relaxed);
        *lock(&self.shared.last_bad_record) = Some(why);
    }
}

/// A finished checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Its id (1, 2, …).
    pub id: u64,
    /// When it completed, wall clock ms.
    pub at_ms: i64,
    /// From the barrier's request to the manifest's rename.
    pub duration_ms: f64,
    /// State and manifest written.
    pub bytes: u64,
}

/// The latest row per key, for the console (the memory sink). Upserts make replays after
/// a restart harmless: a key's row is replaced by the same or a newer one.
#[derive(Default)]
pub struct MemoryTable {
    rows: Mutex<BTreeMap<String, Val>>,
}

/// Keys the memory table holds at most (new keys past it are not added).
const MEMORY_TABLE_KEYS: usize = 100_000;

impl MemoryTable {
    fn upsert(&self, row: &Val) {
        let key = row.get("key").map(Val::to_string).unwrap_or_default();
        let mut rows = lock(&self.rows);
        // A table row `{key, value: null}` is a delete.
        if row.get("value").is_some_and(Val::is_null) && row.get("window_start").is_none() {
            rows.remove(&key);
        } else if rows.len() < MEMORY_TABLE_KEYS || rows.contains_key(&key) {
            rows.insert(key, row.clone());
        }
    }

    /// Up to `limit` rows, by key.
    pub fn rows(&self, limit: usize) -> Vec<Value> {
        lock(&self.rows)
            .values()
            .take(limit)
            .map(Val::to_json)
            .collect()
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        lock(&self.rows).len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What outlives one run of the tasks: history for the console.
#[derive(Default)]
pub(crate) struct Shared {
    vertices: Mutex<Vec<VertexStatus>>,
    samples: Mutex<VecDeque<Sample>>,
    checkpoints: Mutex<VecDeque<CheckpointInfo>>,
    bad_records: AtomicU64,
    last_bad_record: Mutex<Option<String>>,
    table: Arc<MemoryTable>,
    /// The vertices' counters, kept over restarts so totals do not fall back to zero.
    counters: Mutex<Vec<Arc<Counters>>>,
}

/// Samples kept: five minutes at one a second.
const SAMPLES: usize = 300;
/// Checkpoints listed.
const CHECKPOINTS: usize = 50;

impl Shared {
    pub(crate) fn record(&self, vertices: Vec<VertexStatus>, sample: Sample) {
        *lock(&self.vertices) = vertices;
        let mut s = lock(&self.samples);
        if s.len() == SAMPLES {
            s.pop_front();
        }
        s.push_back(sample);
    }

    pub(crate) fn checkpoint(&self, info: CheckpointInfo) {
        let mut c = lock(&self.checkpoints);
        if c.len() == CHECKPOINTS {
            c.pop_front();
        }
        c.push_back(info);
    }
}

/// A pipeline's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// Tasks running.
    Running,
    /// Sources paused; queued records still drain.
    Paused,
    /// Every input ended and all output is committed.
    Finished,
    /// A task failed; see the error. Restart resumes from the last checkpoint.
    Failed,
    /// Stopped by the operator.
    Stopped,
    /// Registered, but another process runs it, or this one's server is disabled: it
    /// takes over from the last checkpoint when it may lead (the leader's session ended,
    /// its server enabled again).
    Standby,
}

/// Everything the console shows of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineStatus {
    /// The spec's name.
    pub name: String,
    /// State.
    pub state: State,
    /// Why it failed.
    pub error: Option<String>,
    /// Tasks per vertex.
    pub partitions: usize,
    /// Threads.
    pub workers: usize,
    /// The DAG's vertices, sources first.
    pub vertices: Vec<VertexStatus>,
    /// Edges by vertex index.
    pub edges: Vec<(usize, usize)>,
    /// Lowest watermark before the sink.
    pub watermark: Option<i64>,
    /// Wall clock minus that watermark.
    pub watermark_lag_ms: Option<i64>,
    /// Lines no source could read.
    pub bad_records: u64,
    /// The last of them, and why.
    pub last_bad_record: Option<String>,
    /// Recent checkpoints, oldest first.
    pub checkpoints: Vec<CheckpointInfo>,
    /// The last five minutes, a sample a second.
    pub samples: Vec<Sample>,
    /// Restarts since this process started the pipeline.
    pub restarts: u64,
}

/// Why a pipeline cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The spec or its `run:` section.
    #[error("{0}")]
    Spec(#[from] SpecError),
    /// The data directory's checkpoint is of another pipeline.
    #[error(
        "the checkpoint in {dir} is of another version of this pipeline (its spec or partitions changed); move it away or start fresh"
    )]
    Mismatch {
        /// The checkpoint directory.
        dir: String,
    },
    /// Files, threads.
    #[error("{0}")]
    Io(String),
}

/// How to treat an existing checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Resume from it (refusing one of another pipeline).
    Resume,
    /// Delete it (and a file sink's output) and start from the beginning.
    Fresh,
    /// Resume from it, but only once [`Pipeline::take_over`] is called: for a process
    /// that stands by while another runs the pipeline from the same data directory (see
    /// [`crate::registration`]). The directory is only read until then.
    Standby,
}

/// One run of the tasks.
struct Running {
    control: Arc<Control>,
    threads: Vec<JoinHandle<()>>,
}

/// A running (or ended) pipeline.
pub struct Pipeline {
    spec: Arc<PipelineSpec>,
    cfg: RunConfig,
    fingerprint: String,
    ckpt: PathBuf,
    sink_dir: Option<PathBuf>,
    shared: Arc<Shared>,
    run: Mutex<Option<Running>>,
    paused: AtomicBool,
    stopped: AtomicBool,
    /// Not to run until [`Pipeline::take_over`]: another process runs it.
    standby: AtomicBool,
    restarts: AtomicU64,
    details: Vec<String>,
    edges: Vec<(usize, usize)>,
}

/// What a second layer of stage tasks holds, when a spec's stateful part runs in two
/// over several partitions (in one partition one task holds both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecondLayer {
    /// A table regrouped: the first layer holds the rows by their key, the second the
    /// groups, with an exchange by group between them (see [`crate::engine::Regroup`]).
    Groups,
    /// A ranked window: the first layer ranks each partition's keys, the second ranks
    /// the rows they kept again, per window (see [`crate::engine::Runner::rank_row`]).
    Rank,
}

fn second_layer(spec: &PipelineSpec, partitions: usize) -> Option<SecondLayer> {
    if partitions < 2 {
        return None;
    }
    spec.steps.iter().find_map(|s| match s {
        Step::GroupBy(_) => Some(SecondLayer::Groups),
        Step::Aggregate(a) if a.rank.is_some() => Some(SecondLayer::Rank),
        _ => None,
    })
}

fn step_name(s: &Step) -> &'static str {
    match s {
        Step::Filter(_) => "filter",
        Step::Map(_) => "map",
        Step::FlatMap(_) => "flat_map",
        Step::KeyBy(_) => "key_by",
        Step::GroupBy(_) => "group_by",
        Step::Aggregate(_) => "aggregate",
    }
}

impl Pipeline {
    /// Parses `spec_text` (with its `run:` section) and starts it, keeping checkpoints in
    /// `data_dir`. A relative file sink directory is under `data_dir`.
    ///
    /// # Errors
    /// A bad spec, a checkpoint of another pipeline (with [`StartMode::Resume`]), or a
    /// data directory that cannot be written.
    pub fn start(
        spec_text: &str,
        data_dir: &Path,
        mode: StartMode,
    ) -> Result<Arc<Pipeline>, StartError> {
        let spec = PipelineSpec::from_yaml(spec_text)?;
        let names: Vec<String> = spec.sources.iter().map(|s| s.name.clone()).collect();
        let cfg = RunConfig::from_yaml(spec_text, &names)?;
        let split = exchange_point(&spec);
        let layer = second_layer(&spec, cfg.partitions);
        let ckpt = data_dir.join("ckpt");
        let sink_dir = match &cfg.sink {
            SinkConfig::File(d) if d.is_absolute() => Some(d.clone()),
            SinkConfig::File(d) => Some(data_dir.join(d)),
            _ => None,
        };
        if mode == StartMode::Fresh {
            let _ = std::fs::remove_dir_all(&ckpt);
            if let Some(d) = &sink_dir {
                let _ = std::fs::remove_dir_all(d);
            }
        }
        std::fs::create_dir_all(&ckpt)
            .map_err(|e| StartError::Io(format!("{}: {e}", ckpt.display())))?;
        if let Some(d) = &sink_dir {
            std::fs::create_dir_all(d)
                .map_err(|e| StartError::Io(format!("{}: {e}", d.display())))?;
        }
        let fingerprint = format!(
            "{:016x}-{}",
            stable_hash(spec_text.as_bytes()),
            cfg.partitions
        );
        // The DAG: source (with the stateless steps chained in), stage (or its two layers:
        // a regroup's rows and groups' aggregate, or a window's ranking per partition and
        // per window), sink.
        let (source_detail, mut stage_detail) = match split {
            Some(i) => (spec.steps[..i].iter().map(step_name).collect::<Vec<_>>(), {
                let mut d: Vec<&str> = Vec::new();
                if spec.join.is_some() {
                    d.push("join");
                }
                d.extend(spec.steps[i..].iter().map(step_name));
                d
            }),
            None => (spec.steps.iter().map(step_name).collect(), Vec::new()),
        };
        let mut details = vec![source_detail.join(" → ")];
        if split.is_some() {
            let second = match layer {
                Some(SecondLayer::Groups) => stage_detail.pop(),
                Some(SecondLayer::Rank) => Some("rank"),
                None => None,
            };
            details.push(stage_detail.join(" → "));
            details.extend(second.map(str::to_owned));
        }
        details.push(match &cfg.sink {
            SinkConfig::File(_) => "file (transactional)".into(),
            SinkConfig::Log => "log".into(),
            SinkConfig::Memory { .. } => "memory table".into(),
            SinkConfig::Discard => "discard".into(),
        });
        // A chain: each vertex feeds the next.
        let edges = (1..details.len()).map(|v| (v - 1, v)).collect();
        let pipeline = Arc::new(Pipeline {
            spec: Arc::new(spec),
            cfg,
            fingerprint,
            ckpt,
            sink_dir,
            shared: Arc::new(Shared::default()),
            run: Mutex::new(None),
            paused: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            standby: AtomicBool::new(mode == StartMode::Standby),
            restarts: AtomicU64::new(0),
            details,
            edges,
        });
        if mode == StartMode::Standby {
            // Refused now, not at the take-over: a standby of another version of the
            // pipeline than the one whose checkpoint it would resume.
            pipeline.check_manifest()?;
        } else {
            pipeline.launch()?;
        }
        Ok(pipeline)
    }

    /// The last complete checkpoint's manifest, if there is one, refused if it is of
    /// another version of the pipeline.
    fn check_manifest(&self) -> Result<Option<Manifest>, StartError> {
        let manifest = read_manifest(&self.ckpt).map_err(StartError::Io)?;
        if let Some(m) = &manifest
            && m.fingerprint != self.fingerprint
        {
            return Err(StartError::Mismatch {
                dir: self.ckpt.display().to_string(),
            });
        }
        Ok(manifest)
    }

    /// Starts the tasks from the last complete checkpoint (or the beginning).
    // Partition indexes run over several parallel vectors (queues, manifest entries).
    #[allow(clippy::needless_range_loop)]
    fn launch(&self) -> Result<(), StartError> {
        let manifest = self.check_manifest()?;
        recover(&self.ckpt, self.sink_dir.as_deref(), manifest.as_ref()).map_err(StartError::Io)?;
        let p = self.cfg.partitions;
        let spec = self.spec.clone();
        let manifest = manifest.unwrap_or_else(|| Manifest {
            version: 1,
            fingerprint: self.fingerprint.clone(),
            epoch_ms: now_ms(),
            id: 0,
            finished: false,
            sources: vec![Vec::new(); p],
            sources_ended: vec![false; p],
            stages_finished: vec![false; self.stage_slots()],
            sinks_finished: vec![false; p],
            commit: Vec::new(),
        });
        let control = Arc::new(Control {
            requested: AtomicU64::new(manifest.id),
            paused: AtomicBool::new(self.paused.load(Ordering::Relaxed)),
            stop: AtomicBool::new(false),
            failure: Mutex::new(None),
            done: AtomicBool::new(manifest.finished),
            shared: self.shared.clone(),
        });
        if manifest.finished {
            *lock(&self.run) = Some(Running {
                control,
                threads: Vec::new(),
            });
            return Ok(());
        }
        let split = exchange_point(&spec);
        let stateless = split.is_none();
        let layer = second_layer(&spec, p);
        let counters = self.counters();
        let (ack_tx, ack_rx) = std::sync::mpsc::channel();
        let cap = self.cfg.queue_capacity;
        let mut tasks: Vec<Box<dyn Tasklet>> = Vec::new();
        // Queues: source p → stage q (p × q of them), stage q → sink q.
        let mut sink_rx = Vec::new();
        let mut sink_tx = Vec::new();
        for _ in 0..p {
            let (tx, rx) = queue(cap);
            sink_tx.push(Some(tx));
            sink_rx.push(Some(rx));
        }
        let mut source_outs: Vec<Vec<route::Tx>> = (0..p).map(|_| Vec::new()).collect();
        let sink_of = |sink_tx: &mut Vec<Option<route::Tx>>, q: usize| {
            sink_tx[q]
                .take()
                .ok_or_else(|| StartError::Io("queue".into()))
        };
        if let Some(split) = split {
            // A second layer: first-layer task q → second-layer task r, p × p queues.
            let mut rows_outs: Vec<Vec<route::Tx>> = (0..p).map(|_| Vec::new()).collect();
            let mut groups_ins: Vec<Vec<route::Rx>> = (0..p).map(|_| Vec::new()).collect();
            if layer.is_some() {
                for ins in &mut groups_ins {
                    for outs in &mut rows_outs {
                        let (tx, rx) = queue(cap);
                        outs.push(tx);
                        ins.push(rx);
                    }
                }
            }
            for q in 0..p {
                let mut inputs = Vec::new();
                for outs in source_outs.iter_mut() {
                    let (tx, rx) = queue(cap);
                    outs.push(tx);
                    inputs.push(rx);
                }
                let outs = if layer.is_some() {
                    std::mem::take(&mut rows_outs[q])
                } else {
                    vec![sink_of(&mut sink_tx, q)?]
                };
                // A stage that ended before the checkpoint: so did every task after it
                // (the groups tasks, the sink). It ended on the sources' ends with no
                // barrier from any of them, as each sends its barrier to every stage, so
                // no task after it got the barrier either: each had to end to complete
                // the checkpoint.
                if manifest.stages_finished[q] {
                    continue;
                }
                let mut runner = self.stage_runner(&manifest, q, split)?;
                match layer {
                    Some(SecondLayer::Groups) => runner.hand_over_regroups(),
                    Some(SecondLayer::Rank) => runner.hand_over_ranked(),
                    None => {}
                }
                tasks.push(Box::new(StageTask::new(
                    (q, q),
                    runner,
                    inputs,
                    outs,
                    self.ckpt.clone(),
                    ack_tx.clone(),
                    control.clone(),
                    counters[1].clone(),
                )));
            }
            for (r, inputs) in groups_ins
                .into_iter()
                .enumerate()
                .filter(|_| layer.is_some())
            {
                let slot = p + r;
                if manifest.stages_finished[slot] {
                    continue;
                }
                tasks.push(Box::new(StageTask::new(
                    (r, slot),
                    self.stage_runner(&manifest, slot, split)?,
                    inputs,
                    vec![sink_of(&mut sink_tx, r)?],
                    self.ckpt.clone(),
                    ack_tx.clone(),
                    control.clone(),
                    counters[2].clone(),
                )));
            }
        } else {
            for (q, outs) in source_outs.iter_mut().enumerate() {
                if let Some(tx) = sink_tx[q].take() {
                    outs.push(tx);
                }
            }
        }
        for (part, outs) in source_outs.into_iter().enumerate() {
            let positions = manifest.sources.get(part).cloned().unwrap_or_default();
            let connectors = self
                .cfg
                .inputs
                .iter()
                .enumerate()
                .map(|(i, input)| {
                    connector::open(
                        input,
                        &spec.sources[i],
                        part,
                        p,
                        manifest.epoch_ms,
                        positions.get(i),
                    )
                    .map_err(StartError::Io)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut task = SourceTask::new(
                part,
                spec.clone(),
                connectors,
                Prefix::new(&spec, split.unwrap_or(spec.steps.len())),
                stateless,
                outs,
                manifest.id,
                ack_tx.clone(),
                control.clone(),
                counters[0].clone(),
            );
            if manifest.sources_ended[part] {
                task.ended.iter_mut().for_each(|e| *e = true);
            }
            tasks.push(Box::new(task));
        }
        for q in 0..p {
            if manifest.sinks_finished[q] {
                continue;
            }
            let Some(rx) = sink_rx[q].take() else {
                continue;
            };
            let kind = match &self.cfg.sink {
                SinkConfig::File(_) => SinkKind::File {
                    dir: self.sink_dir.clone().unwrap_or_default(),
                    current: None,
                },
                SinkConfig::Log => SinkKind::Log {
                    pipeline: spec.name.clone(),
                },
                SinkConfig::Memory { .. } => SinkKind::Memory(self.shared.table.clone()),
                SinkConfig::Discard => SinkKind::Discard,
            };
            let rate = match &self.cfg.sink {
                SinkConfig::Memory { rate } => rate.map(|r| (r / p as u64).max(1)),
                _ => None,
            };
            let sink_counters = counters
                .last()
                .cloned()
                .ok_or_else(|| StartError::Io("counters".into()))?;
            tasks.push(Box::new(SinkTask::new(
                q,
                rx,
                kind,
                manifest.id + 1,
                rate,
                ack_tx.clone(),
                control.clone(),
                sink_counters,
            )));
        }
        drop(ack_tx);
        let coordinator = Coordinator {
            ckpt: self.ckpt.clone(),
            sink_dir: self.sink_dir.clone(),
            partitions: p,
            stages: if stateless { 0 } else { self.stage_slots() },
            interval: self.cfg.checkpoint_interval,
            sources_ended: (0..p)
                .map(|i| manifest.sources_ended[i].then(|| manifest.sources[i].clone()))
                .collect(),
            stages_ended: manifest.stages_finished.clone(),
            sinks_ended: (0..p)
                .map(|i| manifest.sinks_finished[i].then_some(None))
                .collect(),
            manifest,
            acks: ack_rx,
            control: control.clone(),
            shared: self.shared.clone(),
            counters,
            details: self.details.clone(),
        };
        let mut threads = workers::spawn(self.cfg.workers, tasks, control.clone());
        let c = control.clone();
        threads.push(
            std::thread::Builder::new()
                .name("capstan-stream-ckpt".into())
                .spawn(move || {
                    coordinator.run();
                    // Tasks may still be draining when the final checkpoint is done; once it
                    // is, nothing they do matters, so stop them.
                    if c.done.load(Ordering::Acquire) {
                        c.stop.store(true, Ordering::Release);
                    }
                })
                .map_err(|e| StartError::Io(format!("cannot start a thread: {e}")))?,
        );
        *lock(&self.run) = Some(Running { control, threads });
        Ok(())
    }

    /// The state of stage `slot` in `manifest`'s checkpoint, or (none yet) a new stage
    /// from step `split`.
    fn stage_runner(
        &self,
        manifest: &Manifest,
        slot: usize,
        split: usize,
    ) -> Result<Runner, StartError> {
        if manifest.id == 0 {
            return Ok(Runner::stage((*self.spec).clone(), split));
        }
        let path = self
            .ckpt
            .join(manifest.id.to_string())
            .join(format!("part-{slot}.json"));
        let bytes =
            std::fs::read(&path).map_err(|e| StartError::Io(format!("{}: {e}", path.display())))?;
        Runner::restore((*self.spec).clone(), &bytes)
            .map_err(|e| StartError::Io(format!("{}: {e}", path.display())))
    }

    /// Stage tasks, each with its state in a checkpoint: one per partition, two where a
    /// second layer runs (see [`SecondLayer`]).
    fn stage_slots(&self) -> usize {
        let p = self.cfg.partitions;
        if second_layer(&self.spec, p).is_some() {
            2 * p
        } else {
            p
        }
    }

    /// The vertices' counters: the previous run's, or new ones.
    fn counters(&self) -> Vec<Arc<Counters>> {
        let mut kept = lock(&self.shared.counters);
        if kept.is_empty() {
            let p = self.cfg.partitions;
            let spec = &self.spec;
            let sources: Vec<&str> = spec.sources.iter().map(|s| s.name.as_str()).collect();
            kept.push(Arc::new(Counters::new(&sources.join(" + "), "source", p)));
            let layer = second_layer(spec, p);
            if exchange_point(spec).is_some() {
                let name = if spec.join.is_some() {
                    "join"
                } else if layer == Some(SecondLayer::Groups) {
                    "group_by"
                } else {
                    "aggregate"
                };
                kept.push(Arc::new(Counters::new(name, "stage", p)));
            }
            match layer {
                Some(SecondLayer::Groups) => {
                    kept.push(Arc::new(Counters::new("aggregate", "stage", p)));
                }
                Some(SecondLayer::Rank) => {
                    kept.push(Arc::new(Counters::new("rank", "stage", p)));
                }
                None => {}
            }
            kept.push(Arc::new(Counters::new("sink", "sink", p)));
        }
        kept.clone()
    }

    fn stop_tasks(&self) {
        let running = lock(&self.run).take();
        if let Some(r) = running {
            r.control.stop.store(true, Ordering::Release);
            for t in r.threads {
                let _ = t.join();
            }
            // A failure is kept for the status until the next launch.
            *lock(&self.run) = Some(Running {
                control: r.control,
                threads: Vec::new(),
            });
        }
    }

    /// Pauses the sources (queued records still drain, checkpoints continue).
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Relaxed);
        if let Some(r) = &*lock(&self.run) {
            r.control.paused.store(true, Ordering::Relaxed);
        }
    }

    /// Resumes the sources.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::Relaxed);
        if let Some(r) = &*lock(&self.run) {
            r.control.paused.store(false, Ordering::Relaxed);
        }
    }

    /// Stops every task and starts again from the last complete checkpoint: what a
    /// restart after a crash does. Output after that checkpoint is produced again and
    /// committed once.
    ///
    /// # Errors
    /// The checkpoint cannot be read.
    pub fn restart(&self) -> Result<(), StartError> {
        if self.standby.load(Ordering::Acquire) {
            return Err(StartError::Io(
                "this process stands by; the process that runs the pipeline restarts it".into(),
            ));
        }
        self.stop_tasks();
        self.stopped.store(false, Ordering::Relaxed);
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.launch()
    }

    /// Runs a pipeline started with [`StartMode::Standby`] (or stepped down), from the
    /// last complete checkpoint in its data directory: whatever the process that ran it
    /// before committed. Nothing if it runs already.
    ///
    /// # Errors
    /// The checkpoint cannot be read, or is of another version of the pipeline.
    pub fn take_over(&self) -> Result<(), StartError> {
        if !self.standby.load(Ordering::Acquire) {
            return Ok(());
        }
        self.stop_tasks();
        self.launch()?;
        self.standby.store(false, Ordering::Release);
        Ok(())
    }

    /// Stops every task and stands by: another process may run the pipeline from the
    /// same data directory now, so this one must not write there any more.
    pub fn step_down(&self) {
        self.standby.store(true, Ordering::Release);
        self.stop_tasks();
    }

    /// Stops every task (uncommitted output is discarded at the next start).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.stop_tasks();
    }

    /// Waits up to `timeout` for the pipeline to finish or fail; its state then.
    pub fn wait(&self, timeout: Duration) -> State {
        let until = Instant::now() + timeout;
        loop {
            let s = self.state();
            if matches!(s, State::Finished | State::Failed | State::Stopped)
                || Instant::now() >= until
            {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn state(&self) -> State {
        if self.standby.load(Ordering::Acquire) {
            return State::Standby;
        }
        let run = lock(&self.run);
        let Some(r) = &*run else {
            return State::Stopped;
        };
        if r.control.done.load(Ordering::Acquire) {
            State::Finished
        } else if lock(&r.control.failure).is_some() {
            State::Failed
        } else if self.stopped.load(Ordering::Relaxed) || r.control.stopping() {
            State::Stopped
        } else if self.paused.load(Ordering::Relaxed) {
            State::Paused
        } else {
            State::Running
        }
    }

    /// The DAG's vertices: `readings → aggregate → sink`.
    pub fn dag(&self) -> String {
        self.counters()
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
            .join(" → ")
    }

    /// The spec's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The memory sink's table (empty for other sinks).
    pub fn table(&self) -> Arc<MemoryTable> {
        self.shared.table.clone()
    }

    /// Where a file sink commits its output.
    pub fn output_dir(&self) -> Option<&Path> {
        self.sink_dir.as_deref()
    }

    /// A snapshot for the console and `/metrics`.
    pub fn status(&self) -> PipelineStatus {
        let error = lock(&self.run)
            .as_ref()
            .and_then(|r| lock(&r.control.failure).clone());
        let vertices = lock(&self.shared.vertices).clone();
        let samples: Vec<Sample> = lock(&self.shared.samples).iter().cloned().collect();
        let watermark = vertices
            .iter()
            .filter(|v| v.kind != "sink")
            .filter_map(|v| v.watermark)
            .min();
        PipelineStatus {
            name: self.spec.name.clone(),
            state: self.state(),
            error,
            partitions: self.cfg.partitions,
            workers: self.cfg.workers,
            vertices,
            edges: self.edges.clone(),
            watermark,
            watermark_lag_ms: samples.last().and_then(|s| s.watermark_lag_ms),
            bad_records: self.shared.bad_records.load(Ordering::Relaxed),
            last_bad_record: lock(&self.shared.last_bad_record).clone(),
            checkpoints: lock(&self.shared.checkpoints).iter().cloned().collect(),
            samples,
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}
