//! Stream pipelines as the console shows them (built from the executor's status).

use serde::{Deserialize, Serialize};

/// A line of the Pipelines page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PipelineRow {
    /// The spec's name.
    pub name: String,
    /// RUNNING, PAUSED, FINISHED, FAILED, STOPPED, STANDBY, or OFFLINE for one
    /// registered by another process that no process runs now.
    pub state: String,
    /// Tasks per vertex.
    pub partitions: usize,
    /// Records read per second (last second).
    pub in_rate: f64,
    /// Records written per second.
    pub out_rate: f64,
    /// Wall clock minus the watermark.
    pub watermark_lag_ms: Option<i64>,
    /// Sink latency p99, last second.
    pub p99_ms: Option<f64>,
    /// When the last checkpoint completed.
    pub last_checkpoint_ms: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The instance (`ip@-@pid`) that runs it, when another process does; `None` when
    /// this console runs it. Such a pipeline's numbers are the ones it last published
    /// to the registry (every few seconds).
    #[serde(default)]
    pub runner: Option<String>,
}

/// A vertex of the DAG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VertexView {
    /// Its name.
    pub name: String,
    /// `source`, `stage` or `sink`.
    pub kind: String,
    /// The steps chained into it.
    pub detail: String,
    /// Tasks.
    pub parallelism: usize,
    /// Records in since start.
    pub records_in: u64,
    /// Records out since start.
    pub records_out: u64,
    /// Per second.
    pub in_rate: f64,
    /// Per second.
    pub out_rate: f64,
    /// Share of calls blocked by a full output queue, 0–1.
    pub backpressure: f64,
    /// Items waiting in its input queues.
    pub queue_depth: u64,
    /// Lowest partition watermark.
    pub watermark: Option<i64>,
    /// Late records dropped.
    pub late_records_dropped: u64,
    /// Arrival-to-emit latency p50, ms (sinks).
    pub p50_ms: Option<f64>,
    /// The same, p99.
    pub p99_ms: Option<f64>,
}

/// One second of history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SampleView {
    /// Wall clock, ms.
    pub at_ms: i64,
    /// Records read per second.
    pub in_rate: f64,
    /// Records written per second.
    pub out_rate: f64,
    /// Sink latency p99.
    pub p99_ms: Option<f64>,
    /// Watermark lag.
    pub lag_ms: Option<i64>,
}

/// A completed checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CheckpointView {
    /// Its id.
    pub id: u64,
    /// When it completed.
    pub at_ms: i64,
    /// Barrier request to manifest rename.
    pub duration_ms: f64,
    /// State and manifest bytes.
    pub bytes: u64,
}

/// The pipeline page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PipelineDetail {
    /// The summary line.
    pub row: PipelineRow,
    /// Threads.
    pub workers: usize,
    /// Vertices, sources first.
    pub vertices: Vec<VertexView>,
    /// Edges by vertex index.
    pub edges: Vec<(usize, usize)>,
    /// Lowest watermark before the sink.
    pub watermark: Option<i64>,
    /// Lines no source could read.
    pub bad_records: u64,
    /// The last one, and why.
    pub last_bad_record: Option<String>,
    /// Recent checkpoints, newest first.
    pub checkpoints: Vec<CheckpointView>,
    /// The last five minutes.
    pub samples: Vec<SampleView>,
    /// The memory sink's columns: key, window bounds, then the rest.
    pub table_columns: Vec<String>,
    /// Its latest rows, by key, as text.
    pub table_rows: Vec<Vec<String>>,
    /// Restarts by operators since the console started it.
    pub restarts: u64,
}
