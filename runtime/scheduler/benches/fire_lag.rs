//! `make bench`: 1,000 jobs firing every second on one scheduler instance, on the embedded
//! registry (a SQLite-backed file, as `capstan serve` uses) and on a real ZooKeeper.
//!
//! Reports, over a measured window after a warm-up:
//! - the lag from each scheduled fire time to the start of its item (p50, p99, max);
//! - fires seen against fires due (a missed fire would show here);
//! - CPU of this process (and of the ZooKeeper server), as % of one core;
//! - registry reads and writes per fire, from the registry handle's own counters (the
//!   tree cache's re-reads included).
//!
//! Before each, the registry's own floor, without the scheduler: the time for that many
//! `running` creates to be answered from one client, as multi-creates of 256 sent together
//! (what the scheduler's fire clock sends: a fire cannot start its item before its create
//! is answered, so no lag can be below this), and, for comparison, as as many separate
//! creates at once (what one create per fire costs).
//!
//! Every job has one item, `monitorExecution` on (a `running` node per fire), failover and
//! misfire off, and run history on, as a console would run them. Each fire is due on a
//! whole second, so an item's lag is the time since the last whole second.
//!
//! `CAPSTAN_BENCH_FIRE_JOBS` (default 1000) and `CAPSTAN_BENCH_SECONDS` (default 20);
//! `CAPSTAN_BENCH_NO_HISTORY` turns run history off, `CAPSTAN_BENCH_EMBEDDED_ONLY` skips
//! ZooKeeper (for profiling), `CAPSTAN_BENCH_FIRE_AHEAD_MS` sets the scheduler's
//! `fire_ahead` (default: the scheduler's own; 0 plans each fire at its time).

#[path = "../../registry/tests/support/mod.rs"]
mod support;
// The stream benchmarks' readers of the environment and /proc (not all of them used here).
#[path = "../../stream/benches/support/mod.rs"]
#[allow(dead_code)]
mod bench;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capstan_registry::{CreateMode, Durability, EmbeddedStore, Op, Registry};
use capstan_scheduler::config::JobConfig;
use capstan_scheduler::context::ShardingContext;
use capstan_scheduler::history::{History, Retention};
use capstan_scheduler::kinds::{BoxError, JobKind};
use capstan_scheduler::{JobDefinition, Scheduler};

use bench::{env_or, process_cpu_seconds};

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

struct Report {
    label: &'static str,
    jobs: usize,
    seconds: f64,
    lags_ms: Vec<f64>,
    /// p50 and p99 of `jobs` simultaneous creates on the bare registry.
    floor_ms: (f64, f64),
    /// p50 and p99 of the same creates in multis of 256.
    batched_floor_ms: (f64, f64),
    cpu_pct: f64,
    zk_cpu_pct: Option<f64>,
    reads_per_fire: f64,
    writes_per_fire: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Multi-creates per batch, as the scheduler's fire clock sends them.
const BATCH: usize = 256;

/// p50 and p99 (ms) of the completion times of `n` ephemeral creates sent at once, over a
/// few rounds after two of warm-up (each create's time from the start of its round), as
/// separate creates or (`batched`) as multi-creates of [`BATCH`]. Each under a parent of
/// its own, as each job's `running` node is.
async fn registry_floor(registry: &Registry, n: usize, batched: bool) -> (f64, f64) {
    for i in 0..n {
        registry
            .create_if_absent(&format!("/floor/{i}"), b"", CreateMode::Persistent)
            .await
            .expect("floor parent");
    }
    let mut times = Vec::with_capacity(n * 5);
    for round in 0..7 {
        let start = Instant::now();
        let done: Vec<f64> = if batched {
            let ids: Vec<usize> = (0..n).collect();
            let multis = ids.chunks(BATCH).map(|chunk| async move {
                let ops = chunk
                    .iter()
                    .map(|i| Op::Create {
                        path: format!("/floor/{i}/running"),
                        data: b"x".to_vec(),
                        mode: CreateMode::Ephemeral,
                    })
                    .collect();
                registry.multi(ops).await.expect("multi");
                vec![start.elapsed().as_secs_f64() * 1000.0; chunk.len()]
            });
            futures::future::join_all(multis)
                .await
                .into_iter()
                .flatten()
                .collect()
        } else {
            let creates = (0..n).map(|i| async move {
                registry
                    .create(&format!("/floor/{i}/running"), b"x", CreateMode::Ephemeral)
                    .await
                    .expect("create");
                start.elapsed().as_secs_f64() * 1000.0
            });
            futures::future::join_all(creates).await
        };
        if round >= 2 {
            times.extend(done);
        }
        let deletes = (0..n).map(|i| async move {
            registry
                .delete(&format!("/floor/{i}/running"), None)
                .await
                .expect("delete");
        });
        futures::future::join_all(deletes).await;
    }
    times.sort_by(f64::total_cmp);
    (percentile(&times, 50.0), percentile(&times, 99.0))
}

async fn measure(
    label: &'static str,
    registry: Registry,
    jobs: usize,
    seconds: u64,
    zk_pid: Option<u32>,
) -> Report {
    let floor = registry_floor(&registry, jobs, false).await;
    let batched_floor = registry_floor(&registry, jobs, true).await;
    let dir = tempfile::tempdir().expect("dir");
    let history = History::open(&dir.path().join("history.db"), Retention::default())
        .await
        .expect("history");
    let mut builder = Scheduler::builder(registry.clone()).ip("10.9.0.1");
    if let Ok(ms) = std::env::var("CAPSTAN_BENCH_FIRE_AHEAD_MS") {
        let ms = ms
            .parse()
            .expect("CAPSTAN_BENCH_FIRE_AHEAD_MS: a number of ms");
        builder = builder.fire_ahead(Duration::from_millis(ms));
    }
    if std::env::var_os("CAPSTAN_BENCH_NO_HISTORY").is_none() {
        builder = builder.history(history);
    }
    let scheduler = builder.start().await.expect("scheduler");
    let lags: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::with_capacity(jobs * 40)));
    let measuring = Arc::new(AtomicBool::new(false));
    let kind = {
        let lags = lags.clone();
        let measuring = measuring.clone();
        JobKind::simple_fn("capstan:bench", move |_: ShardingContext| {
            let lag_us = now_us() % 1_000_000;
            if measuring.load(Ordering::Relaxed) {
                lags.lock().expect("lags").push(lag_us as f64 / 1000.0);
            }
            async { Ok::<(), BoxError>(()) }
        })
    };
    let started = Instant::now();
    let names: Vec<usize> = (0..jobs).collect();
    for chunk in names.chunks(50) {
        let adds = chunk.iter().map(|j| {
            let config = JobConfig {
                job_name: format!("bench-{j:04}"),
                cron: Some("* * * * * ?".into()),
                sharding_total_count: 1,
                monitor_execution: true,
                max_time_diff_seconds: -1,
                ..JobConfig::default()
            };
            scheduler.add_job(JobDefinition::new(config, kind.clone()))
        });
        for r in futures::future::join_all(adds).await {
            r.expect("add job");
        }
    }
    eprintln!(
        "{label}: {jobs} jobs registered in {:.1} s; warming up",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    // The window opens and closes half-way between two whole seconds, where no fire is
    // under way (lags stay well under 500 ms): it then holds exactly `seconds` fires of
    // each job, and a missed or doubled fire shows in the count.
    let to_half = (1_500_000 - now_us() % 1_000_000) % 1_000_000;
    tokio::time::sleep(Duration::from_micros(to_half)).await;
    let me = std::process::id().to_string();
    let zk = zk_pid.map(|p| p.to_string());
    let (ops0, cpu0, zk0, t0) = (
        registry.op_counts(),
        process_cpu_seconds(&me),
        zk.as_deref().map(process_cpu_seconds),
        Instant::now(),
    );
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let (ops1, cpu1, zk1, wall) = (
        registry.op_counts(),
        process_cpu_seconds(&me),
        zk.as_deref().map(process_cpu_seconds),
        t0.elapsed().as_secs_f64(),
    );
    let mut lags_ms = lags.lock().expect("lags").clone();
    lags_ms.sort_by(f64::total_cmp);
    let fires = lags_ms.len().max(1) as f64;
    scheduler.shutdown().await;
    registry.close().await;
    Report {
        label,
        jobs,
        seconds: wall,
        cpu_pct: (cpu1 - cpu0) / wall * 100.0,
        zk_cpu_pct: zk0.zip(zk1).map(|(a, b)| (b - a) / wall * 100.0),
        reads_per_fire: (ops1.reads - ops0.reads) as f64 / fires,
        writes_per_fire: (ops1.writes - ops0.writes) as f64 / fires,
        lags_ms,
        floor_ms: floor,
        batched_floor_ms: batched_floor,
    }
}

fn print(r: &Report) {
    let due = r.jobs as f64 * r.seconds.round();
    println!(
        "{:<10} fires {:>6} of {:>6.0} due | lag p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms | CPU {:>5.1} %{} | per fire: {:.2} reads, {:.2} writes",
        r.label,
        r.lags_ms.len(),
        due,
        percentile(&r.lags_ms, 50.0),
        percentile(&r.lags_ms, 99.0),
        r.lags_ms.last().copied().unwrap_or(f64::NAN),
        r.cpu_pct,
        r.zk_cpu_pct
            .map(|z| format!(" (ZooKeeper server {z:.1} %)"))
            .unwrap_or_default(),
        r.reads_per_fire,
        r.writes_per_fire,
    );
    // The shape of a second: when its first, middle and last items started.
    let spread: Vec<String> = [1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0]
        .iter()
        .map(|p| format!("p{p} {:.1}", percentile(&r.lags_ms, *p)))
        .collect();
    println!("{:<10} lag spread (ms): {}", "", spread.join(", "));
    println!(
        "{:<10} registry floor: {} creates in multis of {BATCH} answered in p50 {:.2} ms, p99 {:.2} ms; as separate creates p50 {:.2} ms, p99 {:.2} ms",
        "", r.jobs, r.batched_floor_ms.0, r.batched_floor_ms.1, r.floor_ms.0, r.floor_ms.1
    );
}

fn main() {
    let jobs = env_or("CAPSTAN_BENCH_FIRE_JOBS", 1000) as usize;
    let seconds = env_or("CAPSTAN_BENCH_SECONDS", 20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "scheduler fire lag: {jobs} jobs x 1 item, cron every second, {seconds} s measured, {cores} cores"
    );
    let embedded = runtime.block_on(async {
        let dir = tempfile::tempdir().expect("dir");
        let store = EmbeddedStore::open(&dir.path().join("registry.db"), Durability::ProcessCrash)
            .await
            .expect("store");
        let registry = Registry::embedded(&store, "bench").await.expect("registry");
        measure("embedded", registry, jobs, seconds, None).await
    });
    print(&embedded);
    if std::env::var_os("CAPSTAN_BENCH_EMBEDDED_ONLY").is_some() {
        return;
    }
    let zk = support::ZooKeeper::start();
    let zookeeper = runtime.block_on(async {
        let registry = zk.session("bench", Duration::from_secs(30)).await;
        measure("zookeeper", registry, jobs, seconds, Some(zk.pid())).await
    });
    print(&zookeeper);
}
