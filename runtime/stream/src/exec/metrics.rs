//! Per-vertex counters the tasks bump, and the status snapshots built from them.
//!
//! Counters are relaxed atomics: each is exact on its own, and a snapshot of several is
//! only as consistent as a monitoring read needs. Latency (arrival at the source to the
//! sink's write) goes to an HDR histogram per vertex that the sampler swaps out every
//! second, so p50/p99 are of the last second, not of all time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// One vertex's counters, shared by its partitions' tasks.
pub(crate) struct Counters {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) records_in: AtomicU64,
    pub(crate) records_out: AtomicU64,
    /// Task calls, and those that found an output queue full.
    pub(crate) calls: AtomicU64,
    pub(crate) blocked: AtomicU64,
    pub(crate) late_dropped: AtomicU64,
    /// Per partition: items waiting in its input queues.
    pub(crate) queue_depth: Vec<AtomicU64>,
    /// Per partition: its watermark (`i64::MIN`: none yet).
    pub(crate) watermark: Vec<AtomicI64>,
    /// Microseconds from arrival to emit, this second.
    pub(crate) latency: Mutex<Histogram<u64>>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 2).unwrap_or_else(|_| Histogram::new(2).expect("hdr"))
}

impl Counters {
    pub(crate) fn new(name: &str, kind: &'static str, partitions: usize) -> Counters {
        Counters {
            name: name.to_owned(),
            kind,
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            blocked: AtomicU64::new(0),
            late_dropped: AtomicU64::new(0),
            queue_depth: (0..partitions).map(|_| AtomicU64::new(0)).collect(),
            watermark: (0..partitions).map(|_| AtomicI64::new(i64::MIN)).collect(),
            latency: Mutex::new(histogram()),
        }
    }

    pub(crate) fn add_in(&self, n: u64) {
        self.records_in.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_out(&self, n: u64) {
        self.records_out.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn call(&self, blocked: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if blocked {
            self.blocked.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records a sink call's latencies (µs, how many), under one lock.
    ///
    /// Why not a task-local histogram merged once a call, as before: merging walks, and
    /// resetting zeroes, every bucket (some 45,000 instructions a call, 6 % of a map
    /// pipeline's, callgrind), for the few distinct values one call records.
    pub(crate) fn record_latencies(&self, latencies: impl ExactSizeIterator<Item = (u64, u64)>) {
        if latencies.len() == 0 {
            return;
        }
        if let Ok(mut h) = self.latency.lock() {
            for (us, n) in latencies {
                let _ = h.record_n(us, n);
            }
        }
    }

    /// The lowest watermark over partitions that have one.
    pub(crate) fn min_watermark(&self) -> Option<i64> {
        self.watermark
            .iter()
            .map(|w| w.load(Ordering::Relaxed))
            .filter(|w| *w != i64::MIN)
            .min()
    }

    fn totals(&self) -> Totals {
        Totals {
            records_in: self.records_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
            calls: self.calls.load(Ordering::Relaxed),
            blocked: self.blocked.load(Ordering::Relaxed),
        }
    }
}

#[derive(Clone, Copy, Default)]
pub(crate) struct Totals {
    records_in: u64,
    records_out: u64,
    calls: u64,
    blocked: u64,
}

/// A vertex of the pipeline's DAG, as the console shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VertexStatus {
    /// `source`, `aggregate`, `sink`…
    pub name: String,
    /// `source`, `stage` or `sink`.
    pub kind: String,
    /// What the vertex runs: the steps chained into it.
    pub detail: String,
    /// Tasks.
    pub parallelism: usize,
    /// Records in, since start.
    pub records_in: u64,
    /// Records out.
    pub records_out: u64,
    /// Per second, over the last sample.
    pub in_rate: f64,
    /// Per second.
    pub out_rate: f64,
    /// Share of task calls that found an output queue full, over the last sample.
    pub backpressure: f64,
    /// Items waiting in its input queues.
    pub queue_depth: u64,
    /// Its lowest partition watermark, ms.
    pub watermark: Option<i64>,
    /// Late records dropped.
    pub late_records_dropped: u64,
    /// Arrival-to-emit latency, last second (sinks).
    pub latency_p50_ms: Option<f64>,
    /// The same, p99.
    pub latency_p99_ms: Option<f64>,
}

/// One second of a pipeline's history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Wall clock, ms.
    pub at_ms: i64,
    /// Records read per second.
    pub in_rate: f64,
    /// Records written per second.
    pub out_rate: f64,
    /// Sink latency p99, ms.
    pub p99_ms: Option<f64>,
    /// Wall clock minus the watermark, ms.
    pub watermark_lag_ms: Option<i64>,
}

/// Previous totals, to turn counters into rates.
pub(crate) struct Sampler {
    last: Vec<Totals>,
    at: std::time::Instant,
}

impl Sampler {
    /// Rates are counted from the counters' values now (they outlive restarts).
    pub(crate) fn new(counters: &[std::sync::Arc<Counters>]) -> Sampler {
        Sampler {
            last: counters.iter().map(|c| c.totals()).collect(),
            at: std::time::Instant::now(),
        }
    }

    /// Vertex statuses now, with rates since the last call, and the latency histograms
    /// reset.
    pub(crate) fn sample(
        &mut self,
        counters: &[std::sync::Arc<Counters>],
        details: &[String],
    ) -> Vec<VertexStatus> {
        let secs = self.at.elapsed().as_secs_f64().max(1e-3);
        self.at = std::time::Instant::now();
        counters
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let now = c.totals();
                let before = self.last[i];
                self.last[i] = now;
                let calls = now.calls.saturating_sub(before.calls);
                let (p50, p99) = match c.latency.lock() {
                    Ok(mut h) if !h.is_empty() => {
                        let v = (
                            h.value_at_quantile(0.5) as f64 / 1000.0,
                            h.value_at_quantile(0.99) as f64 / 1000.0,
                        );
                        h.reset();
                        (Some(v.0), Some(v.1))
                    }
                    _ => (None, None),
                };
                VertexStatus {
                    name: c.name.clone(),
                    kind: c.kind.to_owned(),
                    detail: details.get(i).cloned().unwrap_or_default(),
                    parallelism: c.watermark.len(),
                    records_in: now.records_in,
                    records_out: now.records_out,
                    in_rate: now.records_in.saturating_sub(before.records_in) as f64 / secs,
                    out_rate: now.records_out.saturating_sub(before.records_out) as f64 / secs,
                    backpressure: if calls == 0 {
                        0.0
                    } else {
                        now.blocked.saturating_sub(before.blocked) as f64 / calls as f64
                    },
                    queue_depth: c
                        .queue_depth
                        .iter()
                        .map(|d| d.load(Ordering::Relaxed))
                        .sum(),
                    watermark: c.min_watermark(),
                    late_records_dropped: c.late_dropped.load(Ordering::Relaxed),
                    latency_p50_ms: p50,
                    latency_p99_ms: p99,
                }
            })
            .collect()
    }
}
