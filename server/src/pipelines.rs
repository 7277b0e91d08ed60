//! The stream pipelines `capstan serve` runs on `local`: the demo (sensor readings
//! averaged per sensor over 1 s windows sliding every 100 ms, from a generator) unless
//! `--no-demo`, and every spec given with `--pipelines`.

use std::path::Path;

use anyhow::Context;
use capstan_app::model::CentreKind;
use capstan_app::ssr::AppState;
use capstan_app::ssr::db::centres;
use capstan_app::ssr::db::centres::CentreRow;
use capstan_app::ssr::runtimes::identity;
use capstan_stream::exec::{Pipeline, StartError, StartMode};

/// The demo pipeline's spec.
pub const DEMO: &str = "\
name: sensor-averages
sources:
  - name: readings
    max_out_of_orderness_ms: 200
steps:
  - key_by: sensor
  - aggregate:
      window: {hopping: {size: 1000, advance: 100}}
      ops: {readings: count, avg: {avg: value}, max: {max: value}}
run:
  partitions: 4
  workers: 2
  checkpoint_interval_ms: 2000
  inputs:
    readings: {generator: {kind: sensors, keys: 20, rate: 2000}}
  sink: memory
";

/// Starts the demo on `local`, and the `--pipelines` on `on` (default `local`), and
/// registers them there. On a ZooKeeper centre each spec starts standing by: whichever
/// console (or `capstan pipeline start --registry`) leads runs it. Returns the registry
/// sessions the pipelines hold, to close at shutdown (after [`stop_all`]), so that
/// another process takes a pipeline over at once, not when the session times out.
///
/// # Errors
/// An unreadable or invalid spec given with `--pipelines`, one whose checkpoint is of
/// another version of it, or an unknown or unreachable `--pipelines-on` centre.
pub async fn start(
    state: &AppState,
    data_dir: &Path,
    demo: bool,
    specs: &[std::path::PathBuf],
    on: Option<&str>,
) -> anyhow::Result<Vec<capstan_registry::Registry>> {
    let rows = centres::list(&state.db).await?;
    let mut sessions = Vec::new();
    let local = rows
        .iter()
        .find(|r| r.kind() == CentreKind::Embedded && r.name == "local")
        .or_else(|| rows.iter().find(|r| r.kind() == CentreKind::Embedded));
    let target = match on {
        Some(name) => Some(rows.iter().find(|r| r.name == name).ok_or_else(|| {
            anyhow::anyhow!("--pipelines-on {name}: there is no registry centre named {name:?}")
        })?),
        None => local,
    };
    let dir = data_dir.join("pipelines");
    let mut names = Vec::new();
    if demo {
        match local {
            // The demo's generator follows the wall clock, so it starts fresh with each
            // serve (resuming hours later would replay the gap at full speed); within a
            // process, "restart from checkpoint" resumes it.
            Some(row) => {
                let p = run(DEMO, &dir.join("sensor-averages"), StartMode::Fresh)
                    .await
                    .context("the demo pipeline")?;
                names.push(p.name().to_owned());
                sessions.push(register(state, row, vec![p]).await?);
            }
            None => tracing::warn!("no embedded registry centre: the demo pipeline does not run"),
        }
    }
    let Some(row) = target else {
        if !specs.is_empty() {
            tracing::warn!("no embedded registry centre: the --pipelines do not run");
        }
        return Ok(sessions);
    };
    // Another process may run a pipeline registered on ZooKeeper from the same data
    // directory: each stands by until it leads. `local` is this process's alone.
    let mode = match row.kind() {
        CentreKind::Zookeeper => StartMode::Standby,
        CentreKind::Embedded => StartMode::Resume,
    };
    let mut started = Vec::new();
    for path in specs {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--pipelines: cannot read {}", path.display()))?;
        let name = capstan_stream::PipelineSpec::from_yaml(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .name;
        if names.contains(&name) {
            anyhow::bail!(
                "{}: another pipeline is already named {name:?}; names must be unique",
                path.display()
            );
        }
        names.push(name.clone());
        let p = run(&text, &dir.join(&name), mode)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        started.push(p);
    }
    if !started.is_empty() {
        sessions.push(register(state, row, started).await?);
    }
    Ok(sessions)
}

/// Registers `pipelines` on centre `row`, in a session of their own (returned), and lists
/// them as this console's.
async fn register(
    state: &AppState,
    row: &CentreRow,
    pipelines: Vec<std::sync::Arc<Pipeline>>,
) -> anyhow::Result<capstan_registry::Registry> {
    let id = identity(row.kind(), &row.connect, &row.namespace);
    let registry = crate::runtimes::open_registry(state, row)
        .await
        .with_context(|| format!("opening {} for the pipelines", row.name))?;
    // The same server address as the console's scheduler runtime on this centre.
    let ip = state.runtimes.for_centre(row).map_or_else(
        || capstan_scheduler::instance::local_ipv4().unwrap_or_else(|| "127.0.0.1".to_owned()),
        |s| s.instance_id().ip().to_owned(),
    );
    for p in pipelines {
        let instance = format!("{ip}@-@{}-stream-{}", std::process::id(), p.name());
        if let Err(e) = capstan_stream::registration::register(
            registry.clone(),
            p.clone(),
            ip.clone(),
            instance,
        )
        .await
        {
            // Standing by, it would never run.
            if p.status().state == capstan_stream::exec::State::Standby {
                anyhow::bail!(
                    "pipeline {:?}: cannot register on {}: {e}",
                    p.name(),
                    row.name
                );
            }
            tracing::error!(pipeline = %p.name(), centre = %row.name, error = %e,
                "cannot register the pipeline; it runs, but consoles will not list it");
        }
        state.pipelines.insert(id.clone(), p);
    }
    Ok(registry)
}

async fn run(
    text: &str,
    dir: &Path,
    mode: StartMode,
) -> Result<std::sync::Arc<Pipeline>, StartError> {
    let (text, dir) = (text.to_owned(), dir.to_owned());
    // Starting reads the checkpoint and starts threads: off the async runtime.
    tokio::task::spawn_blocking(move || Pipeline::start(&text, &dir, mode))
        .await
        .map_err(|e| StartError::Io(e.to_string()))?
}

/// Stops every pipeline (at shutdown; uncommitted output is produced again at the next
/// start).
pub fn stop_all(state: &AppState) {
    for (_, p) in state.pipelines.all() {
        p.stop();
    }
}

/// Sets the pipelines' gauges for `/metrics`.
pub fn export_metrics(state: &AppState) {
    for (_, p) in state.pipelines.all() {
        let s = p.status();
        let name = s.name.clone();
        for v in &s.vertices {
            let labels = [("pipeline", name.clone()), ("vertex", v.name.clone())];
            metrics::counter!("capstan_stream_records_in_total", &labels).absolute(v.records_in);
            metrics::counter!("capstan_stream_records_out_total", &labels).absolute(v.records_out);
            metrics::gauge!("capstan_stream_records_in_per_second", &labels).set(v.in_rate);
            metrics::gauge!("capstan_stream_records_out_per_second", &labels).set(v.out_rate);
            metrics::gauge!("capstan_stream_backpressure_ratio", &labels).set(v.backpressure);
            metrics::gauge!("capstan_stream_queue_depth", &labels).set(v.queue_depth as f64);
            metrics::counter!("capstan_stream_late_records_dropped_total", &labels)
                .absolute(v.late_records_dropped);
            for (q, value) in [("0.5", v.latency_p50_ms), ("0.99", v.latency_p99_ms)] {
                if let Some(ms) = value {
                    let l = [
                        ("pipeline", name.clone()),
                        ("vertex", v.name.clone()),
                        ("quantile", q.to_owned()),
                    ];
                    metrics::gauge!("capstan_stream_latency_milliseconds", &l).set(ms);
                }
            }
        }
        let labels = [("pipeline", name.clone())];
        if let Some(lag) = s.watermark_lag_ms {
            metrics::gauge!("capstan_stream_watermark_lag_milliseconds", &labels).set(lag as f64);
        }
        if let Some(c) = s.checkpoints.last() {
            metrics::counter!("capstan_stream_checkpoints_total", &labels).absolute(c.id);
            metrics::gauge!("capstan_stream_checkpoint_duration_milliseconds", &labels)
                .set(c.duration_ms);
            metrics::gauge!("capstan_stream_checkpoint_bytes", &labels).set(c.bytes as f64);
        }
        metrics::counter!("capstan_stream_bad_records_total", &labels).absolute(s.bad_records);
        let state_name = serde_json::to_value(s.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        metrics::gauge!("capstan_stream_running", &labels).set(if state_name == "RUNNING" {
            1.0
        } else {
            0.0
        });
    }
}
