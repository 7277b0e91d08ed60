//! Checkpoints: the coordinator asks sources for barrier `id`, collects every task's ack,
//! then makes the checkpoint count by writing its manifest (temp file, fsync, rename, fsync
//! of the directory), and only then commits the sinks' staged files for it (renames).
//!
//! A crash anywhere leaves one of two states, and [`recover`] handles both:
//! - before the manifest's rename: the previous manifest holds, and the staged files of
//!   the lost checkpoint are deleted (their rows will be produced again);
//! - after it: the manifest holds, and any of its staged files not yet renamed are renamed
//!   now (a roll forward; renaming is idempotent).
//!
//! Layout under the pipeline's data dir: `ckpt/manifest.json`, `ckpt/<id>/part-<s>.json`
//! (the state of stage slot `s`: partition `s`, or where a second layer runs over `p`
//! partitions, a regroup's groups or a ranked window's windows, that layer's partition
//! `s - p` from `s = p` on), and for a file sink
//! `<dir>/.staged/*.staged` and `<dir>/*.jsonl`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::metrics::{Counters, Sample, Sampler};
use super::{Ack, CheckpointInfo, Control, Shared, now_ms};

/// What a complete checkpoint holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) version: u32,
    /// Of the spec text and partitions: a checkpoint restores only the pipeline it is of.
    pub(crate) fingerprint: String,
    /// The wall clock the pipeline first started at (generators' event time base).
    pub(crate) epoch_ms: i64,
    pub(crate) id: u64,
    /// Every sink ended and committed: nothing more to run.
    pub(crate) finished: bool,
    /// Per source partition, per input: where to resume.
    pub(crate) sources: Vec<Vec<Value>>,
    pub(crate) sources_ended: Vec<bool>,
    /// Per stage slot: its state is `ckpt/<id>/part-<slot>.json`, unless it finished.
    pub(crate) stages_finished: Vec<bool>,
    /// Per sink partition: ended and committed.
    pub(crate) sinks_finished: Vec<bool>,
    /// The staged files this checkpoint commits.
    pub(crate) commit: Vec<String>,
}

pub(crate) fn manifest_path(ckpt: &Path) -> PathBuf {
    ckpt.join("manifest.json")
}

/// The last complete checkpoint, if any.
pub(crate) fn read_manifest(ckpt: &Path) -> Result<Option<Manifest>, String> {
    let path = manifest_path(ckpt);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{} is not a checkpoint manifest: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn write_manifest(ckpt: &Path, m: &Manifest) -> std::io::Result<u64> {
    let bytes = serde_json::to_vec_pretty(m).map_err(std::io::Error::other)?;
    let tmp = ckpt.join("manifest.json.tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, manifest_path(ckpt))?;
    sync_dir(ckpt)?;
    Ok(bytes.len() as u64)
}

/// Commits staged files: renamed from `dir/.staged/x.staged` to `dir/x.jsonl`.
fn commit(sink_dir: &Path, names: &[String]) -> std::io::Result<()> {
    let staged = sink_dir.join(".staged");
    for name in names {
        let from = staged.join(name);
        let to = sink_dir.join(name.replace(".staged", ".jsonl"));
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            // Already committed before a crash: the rename is the commit, done once.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && to.exists() => {}
            Err(e) => return Err(e),
        }
    }
    if !names.is_empty() {
        sync_dir(sink_dir)?;
    }
    Ok(())
}

/// After a crash: rolls the last manifest's commits forward, deletes staged files and
/// state directories no manifest covers.
pub(crate) fn recover(
    ckpt: &Path,
    sink_dir: Option<&Path>,
    m: Option<&Manifest>,
) -> Result<(), String> {
    if let Some(dir) = sink_dir {
        let committed: Vec<String> = m.map(|m| m.commit.clone()).unwrap_or_default();
        commit(dir, &committed).map_err(|e| format!("committing {}: {e}", dir.display()))?;
        let staged = dir.join(".staged");
        if let Ok(entries) = std::fs::read_dir(&staged) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(ckpt) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(id) = name.parse::<u64>()
                && m.is_none_or(|m| m.id != id)
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(())
}

/// A checkpoint being taken.
struct InFlight {
    id: u64,
    started: Instant,
    sources: Vec<Option<Vec<Value>>>,
    stages: Vec<Option<u64>>,
    sinks: Vec<Option<Option<String>>>,
}

/// Drives checkpoints and samples metrics, on its own thread, until the pipeline ends or
/// stops.
pub(crate) struct Coordinator {
    pub(crate) ckpt: PathBuf,
    pub(crate) sink_dir: Option<PathBuf>,
    pub(crate) partitions: usize,
    /// Stage tasks (slots of state): none for a stateless pipeline, one per partition, or
    /// two where a second layer runs (a regroup, a ranked window, over several).
    pub(crate) stages: usize,
    pub(crate) interval: Option<Duration>,
    pub(crate) manifest: Manifest,
    pub(crate) acks: Receiver<Ack>,
    pub(crate) control: Arc<Control>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) counters: Vec<Arc<Counters>>,
    pub(crate) details: Vec<String>,
    /// Sources ended, with their final positions.
    pub(crate) sources_ended: Vec<Option<Vec<Value>>>,
    pub(crate) stages_ended: Vec<bool>,
    /// Sinks ended, with their final staged file (taken when committed).
    pub(crate) sinks_ended: Vec<Option<Option<String>>>,
}

impl Coordinator {
    pub(crate) fn run(mut self) {
        let mut sampler = Sampler::new(&self.counters);
        // The first sample comes at once, so a new pipeline shows its vertices.
        let mut last_sample = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        let mut last_done = Instant::now();
        let mut flight: Option<InFlight> = None;
        loop {
            if self.control.stopping() {
                return;
            }
            match self.acks.recv_timeout(Duration::from_millis(20)) {
                Ok(ack) => self.take(ack, flight.as_mut()),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {}
            }
            while let Ok(ack) = self.acks.try_recv() {
                self.take(ack, flight.as_mut());
            }
            let all_ended = self.sinks_ended.iter().all(Option::is_some);
            if flight.is_none()
                && (all_ended || self.interval.is_some_and(|i| last_done.elapsed() >= i))
            {
                let id = self.manifest.id + 1;
                flight = Some(InFlight {
                    id,
                    started: Instant::now(),
                    sources: vec![None; self.partitions],
                    stages: vec![None; self.stages],
                    sinks: vec![None; self.partitions],
                });
                self.control
                    .requested
                    .store(id, std::sync::atomic::Ordering::Release);
            }
            if let Some(f) = &flight
                && self.complete(f)
            {
                let f = flight.take().expect("in flight");
                if let Err(e) = self.finish(&f) {
                    self.control.fail(format!("checkpoint {}: {e}", f.id));
                    return;
                }
                last_done = Instant::now();
                if self.manifest.finished {
                    self.control.finished();
                    self.sample(&mut sampler);
                    return;
                }
            }
            if last_sample.elapsed() >= Duration::from_secs(1) {
                last_sample = Instant::now();
                self.sample(&mut sampler);
            }
        }
    }

    fn sample(&self, sampler: &mut Sampler) {
        let vertices = sampler.sample(&self.counters, &self.details);
        let now = now_ms();
        let w = vertices
            .iter()
            .filter(|v| v.kind != "sink")
            .filter_map(|v| v.watermark)
            .min();
        let sink = vertices.iter().find(|v| v.kind == "sink");
        let sample = Sample {
            at_ms: now,
            in_rate: vertices.first().map_or(0.0, |v| v.in_rate),
            out_rate: sink.map_or(0.0, |v| v.out_rate),
            p99_ms: sink.and_then(|v| v.latency_p99_ms),
            watermark_lag_ms: w.filter(|w| *w < i64::MAX).map(|w| now - w),
        };
        self.shared.record(vertices, sample);
    }

    fn take(&mut self, ack: Ack, flight: Option<&mut InFlight>) {
        let current = |f: &Option<&mut InFlight>, id: u64| f.as_ref().is_some_and(|f| f.id == id);
        match ack {
            Ack::Source {
                partition,
                id,
                positions,
            } => {
                if current(&flight, id)
                    && let Some(f) = flight
                {
                    f.sources[partition] = Some(positions);
                }
            }
            Ack::SourceEnded {
                partition,
                positions,
            } => self.sources_ended[partition] = Some(positions),
            Ack::Stage {
                partition,
                id,
                bytes,
            } => {
                if current(&flight, id)
                    && let Some(f) = flight
                {
                    f.stages[partition] = Some(bytes);
                }
            }
            Ack::StageEnded { partition } => self.stages_ended[partition] = true,
            Ack::Sink {
                partition,
                id,
                staged,
            } => {
                if current(&flight, id)
                    && let Some(f) = flight
                {
                    f.sinks[partition] = Some(staged);
                }
            }
            Ack::SinkEnded { partition, staged } => self.sinks_ended[partition] = Some(staged),
        }
    }

    /// Every task acked `f`, or ended before its barrier reached it.
    fn complete(&self, f: &InFlight) -> bool {
        (0..self.stages).all(|s| f.stages[s].is_some() || self.stages_ended[s])
            && (0..self.partitions).all(|p| {
                (f.sources[p].is_some() || self.sources_ended[p].is_some())
                    && (f.sinks[p].is_some() || self.sinks_ended[p].is_some())
            })
    }

    fn finish(&mut self, f: &InFlight) -> Result<(), String> {
        let mut m = self.manifest.clone();
        m.id = f.id;
        let mut commit_files = Vec::new();
        for p in 0..self.partitions {
            // A task that acked this checkpoint and ended after is restored from the
            // ack: the end came after the barrier.
            match (&f.sources[p], &self.sources_ended[p]) {
                (Some(pos), _) => {
                    m.sources[p] = pos.clone();
                    m.sources_ended[p] = false;
                }
                (None, Some(pos)) => {
                    m.sources[p] = pos.clone();
                    m.sources_ended[p] = true;
                }
                (None, None) => {}
            }
            match &f.sinks[p] {
                Some(staged) => {
                    commit_files.extend(staged.clone());
                    m.sinks_finished[p] = false;
                }
                None => {
                    if let Some(staged) = self.sinks_ended[p].take() {
                        commit_files.extend(staged);
                        // Taken: committed once; the slot stays "ended".
                        self.sinks_ended[p] = Some(None);
                    }
                    m.sinks_finished[p] = true;
                }
            }
        }
        for s in 0..self.stages {
            m.stages_finished[s] = f.stages[s].is_none() && self.stages_ended[s];
        }
        m.finished = m.sinks_finished.iter().all(|f| *f);
        m.commit = commit_files;
        let manifest_bytes = write_manifest(&self.ckpt, &m).map_err(|e| e.to_string())?;
        if let Some(dir) = &self.sink_dir {
            commit(dir, &m.commit).map_err(|e| format!("committing: {e}"))?;
        }
        let previous = self.manifest.id;
        self.manifest = m;
        if previous > 0 {
            let _ = std::fs::remove_dir_all(self.ckpt.join(previous.to_string()));
        }
        let state: u64 = f.stages.iter().flatten().sum();
        self.shared.checkpoint(CheckpointInfo {
            id: f.id,
            at_ms: now_ms(),
            duration_ms: f.started.elapsed().as_secs_f64() * 1000.0,
            bytes: state + manifest_bytes,
        });
        Ok(())
    }
}
