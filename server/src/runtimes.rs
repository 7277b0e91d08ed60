//! The scheduler runtimes `capstan serve` runs: one on the embedded `local` centre (with
//! the demo jobs unless `--no-demo`) and one on each centre named by `--run-jobs-on`. Each
//! runs every script and HTTP job of its registry (so jobs created in the console run)
//! and records runs in its own history file under the data directory.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use capstan_app::model::CentreKind;
use capstan_app::ssr::AppState;
use capstan_app::ssr::db::centres::{self, CentreRow};
use capstan_app::ssr::runtimes::identity;
use capstan_registry::{ConnectString, Registry, ZkSettings};
use capstan_scheduler::admin::operations as admin;
use capstan_scheduler::config::JobConfig;
use capstan_scheduler::context::ShardingContext;
use capstan_scheduler::history::{History, Retention};
use capstan_scheduler::kinds::{BoxError, DataflowJob, JobKind};
use capstan_scheduler::{JobDefinition, Scheduler};

/// Starts the runtimes and registers them in `state`. A centre that cannot be reached is
/// reported and skipped: the console must come up even when one registry is down.
///
/// # Errors
/// An unusable history file or embedded registry.
pub async fn start(
    state: &AppState,
    data_dir: &Path,
    run_on: &[String],
    demo: bool,
    bind: SocketAddr,
) -> anyhow::Result<()> {
    let rows = centres::list(&state.db).await?;
    let local = rows
        .iter()
        .find(|r| r.kind() == CentreKind::Embedded && r.name == "local")
        .or_else(|| rows.iter().find(|r| r.kind() == CentreKind::Embedded));
    if let Some(row) = local {
        let scheduler = start_one(state, row, data_dir).await?;
        if demo {
            add_demo_jobs(&scheduler, bind).await?;
        }
    }
    for name in run_on {
        let Some(row) = rows.iter().find(|r| &r.name == name) else {
            anyhow::bail!("--run-jobs-on {name}: there is no registry centre named {name:?}");
        };
        if local.is_some_and(|l| l.name == row.name) {
            continue;
        }
        if let Err(e) = start_one(state, row, data_dir).await {
            tracing::error!(centre = %name, error = %format!("{e:#}"),
                "cannot run jobs on this centre; the console serves it read-and-operate only");
        }
    }
    Ok(())
}

/// A session of its own on centre `row` (a runtime's ephemeral nodes and session events
/// are its own, not the console cache's).
///
/// # Errors
/// A bad connect string, an unreachable ZooKeeper, or the embedded store.
pub async fn open_registry(state: &AppState, row: &CentreRow) -> anyhow::Result<Registry> {
    Ok(match row.kind() {
        CentreKind::Embedded => Registry::embedded(&state.embedded, &row.namespace).await?,
        CentreKind::Zookeeper => {
            let connect: ConnectString = row.connect.parse()?;
            Registry::zookeeper(ZkSettings {
                connect,
                namespace: row.namespace.clone(),
                digest: row.digest.clone(),
                session_timeout: Duration::from_millis(row.session_timeout_ms.max(1000) as u64),
            })
            .await
            .with_context(|| format!("connecting to {}", row.name))?
        }
    })
}

async fn start_one(
    state: &AppState,
    row: &CentreRow,
    data_dir: &Path,
) -> anyhow::Result<Scheduler> {
    let registry = open_registry(state, row).await?;
    let file = data_dir.join(format!("history-{}.db", row.name));
    let history = History::open(&file, Retention::default())
        .await
        .with_context(|| format!("opening the run history {}", file.display()))?;
    let scheduler = Scheduler::builder(registry)
        .history(history.clone())
        .instance_suffix("console")
        .start()
        .await
        .with_context(|| format!("starting the scheduler runtime on {}", row.name))?;
    tracing::info!(centre = %row.name, instance = %scheduler.instance_id(), "scheduler runtime started");
    tokio::spawn({
        let s = scheduler.clone();
        async move { s.run_registry_jobs().await }
    });
    tokio::spawn(crate::agent::prune_history(history));
    state.runtimes.insert(
        identity(row.kind(), &row.connect, &row.namespace),
        scheduler.clone(),
    );
    Ok(scheduler)
}

fn config(
    name: &str,
    cron: &str,
    items: i32,
    params: Option<&str>,
    description: &str,
) -> JobConfig {
    JobConfig {
        job_name: name.to_owned(),
        cron: Some(cron.to_owned()),
        sharding_total_count: items,
        sharding_item_parameters: params.map(str::to_owned),
        description: Some(description.to_owned()),
        label: Some("demo".to_owned()),
        monitor_execution: true,
        misfire: true,
        failover: true,
        max_time_diff_seconds: -1,
        reconcile_interval_minutes: 10,
        ..JobConfig::default()
    }
}

/// A dataflow demo: each item has a queue that refills every fire; `fetch` takes up to
/// 10 entries, `process` "handles" them.
struct Backlog {
    pending: Arc<[AtomicU64; 2]>,
}

impl DataflowJob for Backlog {
    type Item = u64;

    async fn fetch(&self, ctx: &ShardingContext) -> Result<Vec<u64>, BoxError> {
        let slot = &self.pending[ctx.sharding_item as usize % 2];
        let n = slot.load(Ordering::Relaxed).min(10);
        slot.fetch_sub(n, Ordering::Relaxed);
        Ok((0..n).collect())
    }

    async fn process(&self, _ctx: &ShardingContext, data: Vec<u64>) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_millis(20 * data.len() as u64)).await;
        Ok(())
    }
}

/// The demo jobs: a simple job with 3 items and a dataflow job run by this process, and
/// a script and an HTTP job written to the registry (so they show the "created from the
/// console" path and run on any Capstan runtime of the centre).
async fn add_demo_jobs(scheduler: &Scheduler, bind: SocketAddr) -> anyhow::Result<()> {
    let simple = config(
        "demo-simple",
        "0/10 * * * * ?",
        3,
        Some("0=Beijing,1=Shanghai,2=Guangzhou"),
        "Simple job: three items, each sleeps a moment",
    );
    let kind = JobKind::simple_fn(
        "capstan.demo.SimpleJob",
        |ctx: ShardingContext| async move {
            let ms = 100 + u64::from(ctx.sharding_item) * 150;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        },
    );
    scheduler.add_job(JobDefinition::new(simple, kind)).await?;
    let pending = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let backlog = Backlog {
        pending: pending.clone(),
    };
    tokio::spawn(async move {
        // Work arrives continuously, a little faster on item 0.
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            pending[0].fetch_add(7, Ordering::Relaxed);
            pending[1].fetch_add(3, Ordering::Relaxed);
        }
    });
    let mut dataflow = config(
        "demo-dataflow",
        "0/15 * * * * ?",
        2,
        None,
        "Dataflow job: drains a backlog in batches of 10",
    );
    dataflow
        .props
        .insert("streaming.process".into(), "false".into());
    scheduler
        .add_job(JobDefinition::new(
            dataflow,
            JobKind::dataflow("capstan.demo.DataflowJob", backlog),
        ))
        .await?;
    let registry = scheduler.registry();
    let mut script = config(
        "demo-script",
        "0/30 * * * * ?",
        2,
        None,
        "Script job: echoes its sharding context",
    );
    script
        .props
        .insert("script.command.line".into(), "echo capstan demo".into());
    create_if_absent(registry, &script, capstan_scheduler::kinds::SCRIPT_TYPE).await?;
    let port = bind.port();
    let host = if bind.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        bind.ip().to_string()
    };
    let mut http = config(
        "demo-http",
        "0/20 * * * * ?",
        1,
        None,
        "HTTP job: calls this console's /healthz",
    );
    http.props
        .insert("http.uri".into(), format!("http://{host}:{port}/healthz"));
    http.props.insert("http.method".into(), "GET".into());
    create_if_absent(registry, &http, capstan_scheduler::kinds::HTTP_TYPE).await?;
    tracing::info!("demo jobs registered on local (disable with --no-demo)");
    Ok(())
}

/// Writes a registry job unless it exists: an operator's edits of a demo job survive a
/// restart.
async fn create_if_absent(
    registry: &Registry,
    config: &JobConfig,
    kind: &str,
) -> anyhow::Result<()> {
    match admin::create_job(registry, config, kind).await {
        Ok(()) | Err(capstan_scheduler::Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
