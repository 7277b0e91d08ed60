//! The stream pipelines this console runs, by the registry centre they are registered on,
//! and what operators read and do with them (role-checked and audited like job
//! operations).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use capstan_stream::exec::{Pipeline, PipelineStatus, State};
use capstan_stream::registration::{STREAM_TYPE, metrics_node};

use super::db::centres::CentreRow;
use super::registries::Connection;
use super::runtimes::identity;
use crate::error::AppError;
use crate::model::{CheckpointView, PipelineDetail, PipelineRow, Role, SampleView, VertexView};
use crate::ssr::AppState;
use crate::ssr::audit::Audit;
use crate::ssr::auth::Actor;

/// Pipelines by registry identity, then name.
#[derive(Default)]
pub struct Pipelines {
    by_registry: RwLock<BTreeMap<String, BTreeMap<String, Arc<Pipeline>>>>,
}

impl Pipelines {
    /// Registers a running pipeline on the registry named by `identity`.
    pub fn insert(&self, identity: String, pipeline: Arc<Pipeline>) {
        self.by_registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(identity)
            .or_default()
            .insert(pipeline.name().to_owned(), pipeline);
    }

    /// The pipelines of a centre.
    pub fn of(&self, row: &CentreRow) -> Vec<Arc<Pipeline>> {
        self.by_registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&identity(row.kind(), &row.connect, &row.namespace))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every pipeline, with its registry identity (for `/metrics`).
    pub fn all(&self) -> Vec<(String, Arc<Pipeline>)> {
        self.by_registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .flat_map(|(id, m)| m.values().map(|p| (id.clone(), p.clone())))
            .collect()
    }
}

fn state_name(s: State) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn row_of(s: &PipelineStatus) -> PipelineRow {
    let last = s.samples.last();
    PipelineRow {
        name: s.name.clone(),
        state: state_name(s.state),
        partitions: s.partitions,
        in_rate: last.map_or(0.0, |x| x.in_rate),
        out_rate: last.map_or(0.0, |x| x.out_rate),
        watermark_lag_ms: s.watermark_lag_ms,
        p99_ms: last.and_then(|x| x.p99_ms),
        last_checkpoint_ms: s.checkpoints.last().map(|c| c.at_ms),
        error: s.error.clone(),
        runner: None,
    }
}

/// The state shown for a pipeline another process registered: its own, while a process
/// leads it, else `OFFLINE` (its last published numbers stay on show).
const OFFLINE: &str = "OFFLINE";

/// The pipelines registered on the centre by other processes (`capstan pipeline start
/// --registry`), as each last published itself, with the instance that runs it. Read
/// from the console's mirror of the registry, not the registry itself.
fn published(conn: &Connection, local: &[Arc<Pipeline>]) -> Vec<PipelineStatus> {
    conn.cache.read(|v| {
        v.children("/")
            .into_iter()
            .filter(|name| !local.iter().any(|p| p.name() == *name))
            .filter(|name| {
                v.get(&format!("/{name}"))
                    .is_some_and(|n| &*n.data == STREAM_TYPE.as_bytes())
            })
            .filter_map(|name| {
                // Not yet published (just registered): listed at the next snapshot.
                let node = v.get(&metrics_node(name))?;
                let mut status: PipelineStatus = serde_json::from_slice(&node.data).ok()?;
                status.name = name.to_owned();
                Some(status)
            })
            .collect()
    })
}

/// Who leads pipeline `name` on the centre, from the mirror.
fn runner(conn: &Connection, name: &str) -> Option<String> {
    conn.cache.read(|v| {
        v.get(&format!("/{name}/leader/election/instance"))
            .map(|n| String::from_utf8_lossy(&n.data).into_owned())
    })
}

fn published_row(conn: &Connection, s: &PipelineStatus) -> PipelineRow {
    let mut row = row_of(s);
    row.runner = runner(conn, &s.name);
    if row.runner.is_none() {
        OFFLINE.clone_into(&mut row.state);
    }
    row
}

/// The Pipelines page.
///
/// # Errors
/// No such centre; not signed in.
pub async fn list(state: &AppState, actor: &Actor, rc: &str) -> Result<Vec<PipelineRow>, AppError> {
    let (row, conn) = crate::ssr::jobs::open(state, actor, rc, Role::Viewer).await?;
    let (running, standing_by) = split_local(state, &row);
    let mut rows: Vec<PipelineRow> = running.iter().map(|p| row_of(&p.status())).collect();
    let published = published(&conn, &running);
    rows.extend(published.iter().map(|s| published_row(&conn, s)));
    // Standing by with nothing published yet: as it is here.
    for p in standing_by {
        if !published.iter().any(|s| s.name == p.name()) {
            rows.push(standby_row(&conn, &p.status()));
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// A pipeline this console stands by for, before its runner has published: as it is
/// here, with who runs it.
fn standby_row(conn: &Connection, s: &PipelineStatus) -> PipelineRow {
    let mut row = row_of(s);
    row.runner = runner(conn, &s.name);
    row
}

/// This console's pipelines on the centre: those it runs, and those it stands by for
/// (shown as the process that runs them publishes them).
fn split_local(state: &AppState, row: &CentreRow) -> (Vec<Arc<Pipeline>>, Vec<Arc<Pipeline>>) {
    state
        .pipelines
        .of(row)
        .into_iter()
        .partition(|p| p.status().state != State::Standby)
}

/// One pipeline.
///
/// # Errors
/// No such centre or pipeline.
pub async fn detail(
    state: &AppState,
    actor: &Actor,
    rc: &str,
    name: &str,
) -> Result<PipelineDetail, AppError> {
    let (row, conn) = crate::ssr::jobs::open(state, actor, rc, Role::Viewer).await?;
    let (running, standing_by) = split_local(state, &row);
    if let Some(p) = running.iter().find(|p| p.name() == name) {
        let (table_columns, table_rows) = table(&p.table().rows(20));
        return Ok(detail_of(
            &p.status(),
            row_of(&p.status()),
            table_columns,
            table_rows,
        ));
    }
    if let Some(s) = published(&conn, &running)
        .into_iter()
        .find(|s| s.name == name)
    {
        // A memory sink's rows are in the process that runs it, not in the registry.
        return Ok(detail_of(
            &s,
            published_row(&conn, &s),
            Vec::new(),
            Vec::new(),
        ));
    }
    let p = standing_by
        .iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "no stream pipeline named {name:?} is registered on {}",
                row.name
            ))
        })?;
    let s = p.status();
    Ok(detail_of(
        &s,
        standby_row(&conn, &s),
        Vec::new(),
        Vec::new(),
    ))
}

fn detail_of(
    s: &PipelineStatus,
    row: PipelineRow,
    table_columns: Vec<String>,
    table_rows: Vec<Vec<String>>,
) -> PipelineDetail {
    PipelineDetail {
        row,
        workers: s.workers,
        vertices: s
            .vertices
            .iter()
            .map(|v| VertexView {
                name: v.name.clone(),
                kind: v.kind.clone(),
                detail: v.detail.clone(),
                parallelism: v.parallelism,
                records_in: v.records_in,
                records_out: v.records_out,
                in_rate: v.in_rate,
                out_rate: v.out_rate,
                backpressure: v.backpressure,
                queue_depth: v.queue_depth,
                watermark: v.watermark.filter(|w| *w < i64::MAX),
                late_records_dropped: v.late_records_dropped,
                p50_ms: v.latency_p50_ms,
                p99_ms: v.latency_p99_ms,
            })
            .collect(),
        edges: s.edges.clone(),
        watermark: s.watermark.filter(|w| *w < i64::MAX),
        bad_records: s.bad_records,
        last_bad_record: s.last_bad_record.clone(),
        checkpoints: s
            .checkpoints
            .iter()
            .rev()
            .map(|c| CheckpointView {
                id: c.id,
                at_ms: c.at_ms,
                duration_ms: c.duration_ms,
                bytes: c.bytes,
            })
            .collect(),
        samples: s
            .samples
            .iter()
            .map(|x| SampleView {
                at_ms: x.at_ms,
                in_rate: x.in_rate,
                out_rate: x.out_rate,
                p99_ms: x.p99_ms,
                lag_ms: x.watermark_lag_ms,
            })
            .collect(),
        table_columns,
        table_rows,
        restarts: s.restarts,
    }
}

/// Rows of the memory sink as a table: `key`, the window bounds, then the other fields in
/// the order the first row has them.
fn table(rows: &[serde_json::Value]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut columns: Vec<String> = ["key", "window_start", "window_end"]
        .into_iter()
        .filter(|c| rows.iter().any(|r| r.get(c).is_some()))
        .map(str::to_owned)
        .collect();
    for r in rows {
        if let Some(m) = r.as_object() {
            for k in m.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let cell = |c: &str, v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "–".to_owned(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) if c.starts_with("window_") => v
            .as_i64()
            .map_or_else(|| v.to_string(), crate::model::format_ms_precise),
        Some(v) => match v.as_f64() {
            Some(f) if !v.is_i64() && !v.is_u64() => format!("{f:.3}"),
            _ => v.to_string(),
        },
    };
    let body = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell(c, r.get(c))).collect())
        .collect();
    (columns, body)
}

/// `pause | resume | restart` (restart: from the last complete checkpoint).
///
/// # Errors
/// Not an operator; no such pipeline or action; the checkpoint cannot be restored.
pub async fn act(
    state: &AppState,
    actor: &Actor,
    rc: &str,
    name: &str,
    action: &str,
) -> Result<(), AppError> {
    let audit = Audit::new(
        &format!("pipeline.{action}"),
        "pipeline",
        format!("{rc}/{name}"),
    )
    .by(actor);
    let result = async {
        // Through the registry (the admin API), so whichever process runs the pipeline
        // reacts; when it is this one, wait until it has, so the next read shows it.
        let (row, conn) = crate::ssr::jobs::open(state, actor, rc, Role::Operator).await?;
        // Only one that runs here changes here; one standing by, where it runs.
        let local = split_local(state, &row)
            .0
            .into_iter()
            .find(|p| p.name() == name);
        let restarts = local.as_ref().map(|p| p.status().restarts);
        let registry = &conn.registry;
        // Only a STREAM job: this route must not pause a cron job of the same name.
        match registry.get(&format!("/{name}")).await {
            Ok((v, _)) if v == capstan_stream::registration::STREAM_TYPE.as_bytes() => {}
            _ => {
                return Err(AppError::NotFound(format!(
                    "there is no stream pipeline named {name:?} on {rc}"
                )));
            }
        }
        let done: Box<dyn Fn(&PipelineStatus) -> bool + Send> = match action {
            "pause" => {
                capstan_scheduler::admin::operations::pause(registry, name)
                    .await
                    .map_err(crate::ssr::jobs::scheduler_error)?;
                Box::new(|s| s.state != State::Running)
            }
            "resume" => {
                capstan_scheduler::admin::operations::resume(registry, name)
                    .await
                    .map_err(crate::ssr::jobs::scheduler_error)?;
                Box::new(|s| s.state != State::Paused)
            }
            "restart" => {
                capstan_stream::registration::request_restart(registry, name)
                    .await
                    .map_err(AppError::Conflict)?;
                let before = restarts.unwrap_or(0);
                Box::new(move |s| s.restarts > before)
            }
            other => {
                return Err(AppError::Request(format!(
                    "no pipeline action {other:?}: use pause, resume or restart"
                )));
            }
        };
        if let Some(p) = local {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !done(&p.status()) && std::time::Instant::now() < until {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }
    .await;
    audit.finish(state, &result).await;
    result
}
