//! `make bench`: TreeCache on a real ZooKeeper holding a namespace shaped like 10,000
//! ElasticJob jobs. Reports the cold load against reading the same nodes one at a time,
//! the delay from a write to its appearance in the cache, and cache memory.
//!
//! `CAPSTAN_BENCH_JOBS` changes the job count (default 10000).

#[path = "../tests/support/mod.rs"]
mod support;

/// The allocator the `capstan` binary runs with (see `server/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use capstan_registry::cache::TreeCache;
use capstan_registry::{CreateMode, Op, Registry, ZkSettings, path};

const CONFIG: &str = "cron: 0/5 * * * * ?\ndescription: ''\ndisabled: false\nfailover: true\n\
jobName: JOB\nmaxTimeDiffSeconds: -1\nmisfire: true\nmonitorExecution: true\noverwrite: false\n\
reconcileIntervalMinutes: 10\nshardingItemParameters: 0=A,1=B,2=C\nshardingTotalCount: 10\n\
staticSharding: false\n";

/// Every node of one job, parents first.
fn job_nodes(job: &str) -> Vec<(String, Vec<u8>)> {
    let mut n = vec![
        (format!("/{job}"), b"com.example.BenchJob".to_vec()),
        (
            format!("/{job}/config"),
            CONFIG.replace("JOB", job).into_bytes(),
        ),
        (format!("/{job}/instances"), vec![]),
        (format!("/{job}/servers"), vec![]),
        (format!("/{job}/sharding"), vec![]),
        (format!("/{job}/leader"), vec![]),
        (format!("/{job}/leader/election"), vec![]),
        (format!("/{job}/leader/sharding"), vec![]),
    ];
    for i in 0..3 {
        let ip = format!("10.0.{}.{}", i, job.len() % 250);
        let id = format!("{ip}@-@{}", 1000 + i);
        n.push((
            format!("/{job}/instances/{id}"),
            format!("jobInstanceId: {id}\nserverIp: {ip}\n").into_bytes(),
        ));
        n.push((format!("/{job}/servers/{ip}"), b"ENABLED".to_vec()));
    }
    n.push((
        format!("/{job}/leader/election/instance"),
        b"10.0.0.1@-@1000".to_vec(),
    ));
    for item in 0..10 {
        n.push((format!("/{job}/sharding/{item}"), vec![]));
        n.push((
            format!("/{job}/sharding/{item}/instance"),
            b"10.0.0.1@-@1000".to_vec(),
        ));
        n.push((
            format!("/{job}/sharding/{item}/running"),
            b"10.0.0.1@-@1000".to_vec(),
        ));
    }
    n
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let jobs: usize = std::env::var("CAPSTAN_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // `make bench` gives ZooKeeper a 1 GiB heap through CAPSTAN_ZK_HEAP.
    let zk = support::ZooKeeper::start();
    let settings = ZkSettings {
        connect: zk.connect().parse().expect("connect"),
        namespace: "bench".into(),
        digest: None,
        session_timeout: Duration::from_secs(30),
    };
    let r = Registry::zookeeper(settings.clone())
        .await
        .expect("connect");

    // Populate with multi-creates of ~500 nodes, 8 in flight.
    let started = Instant::now();
    let per_job: Vec<Vec<(String, Vec<u8>)>> = (0..jobs)
        .map(|j| job_nodes(&format!("job{j:05}")))
        .collect();
    let all: Vec<(String, Vec<u8>)> = per_job.iter().flatten().cloned().collect();
    let total = all.len() + 1;
    let mut set: tokio::task::JoinSet<capstan_registry::Result<()>> = tokio::task::JoinSet::new();
    // Whole jobs per transaction, so no batch depends on another one in flight.
    for chunk in per_job.chunks(12) {
        let ops: Vec<Op> = chunk
            .iter()
            .flatten()
            .map(|(p, d)| Op::Create {
                path: p.clone(),
                data: d.clone(),
                mode: CreateMode::Persistent,
            })
            .collect();
        let r = r.clone();
        if set.len() >= 8 {
            set.join_next()
                .await
                .expect("task")
                .expect("join")
                .expect("multi");
        }
        set.spawn(async move { r.multi(ops).await.map(drop) });
    }
    while let Some(done) = set.join_next().await {
        done.expect("join").expect("multi");
    }
    let data_bytes: usize = all.iter().map(|(_, d)| d.len()).sum();
    println!(
        "machine: {} cores; {} jobs, {} nodes, populated in {:.1} s",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        jobs,
        total,
        started.elapsed().as_secs_f64()
    );

    // Baseline: nodes one at a time, each a data read and a children read, walking the
    // tree as a console without a cache does. Round trips are strictly sequential, so
    // the time is linear in the node count: walk the first SAMPLE_JOBS jobs and scale.
    const SAMPLE_JOBS: usize = 1000;
    let sample = jobs.min(SAMPLE_JOBS);
    let started = Instant::now();
    let mut stack: Vec<String> = (0..sample).map(|j| format!("/job{j:05}")).collect();
    let mut seen = 0usize;
    while let Some(p) = stack.pop() {
        let _ = r.get(&p).await.expect("get");
        let children = r.children(&p).await.expect("children");
        stack.extend(children.iter().map(|c| path::join(&p, c)));
        seen += 1;
    }
    let sequential_sample = started.elapsed();
    let sequential = sequential_sample.mul_f64(total as f64 / seen as f64);
    println!(
        "sequential reads: {seen} nodes in {:.2} s ({:.0} us/node), {:.1} s scaled to {total} nodes",
        sequential_sample.as_secs_f64(),
        sequential_sample.as_secs_f64() * 1e6 / seen as f64,
        sequential.as_secs_f64()
    );

    // Cold load through the cache (a fresh session, so nothing is warm client-side).
    let reader = Registry::zookeeper(settings.clone()).await.expect("reader");
    let rss_before = rss_bytes();
    let started = Instant::now();
    let cache = TreeCache::start(reader.clone(), "/").await.expect("cache");
    let cold = started.elapsed();
    let rss_after = rss_bytes();
    assert_eq!(cache.read(|v| v.len()), total);
    println!(
        "cold load: cache {:.2} s vs sequential {:.2} s: {:.1}x faster",
        cold.as_secs_f64(),
        sequential.as_secs_f64(),
        sequential.as_secs_f64() / cold.as_secs_f64()
    );
    let rss = rss_after.saturating_sub(rss_before);
    println!(
        "cache memory (RSS growth): {:.1} MiB for {} nodes with {:.1} MiB of data: {:.0} bytes/node overhead beyond data",
        rss as f64 / 1048576.0,
        total,
        data_bytes as f64 / 1048576.0,
        (rss as f64 - data_bytes as f64) / total as f64
    );

    // Write-to-cache delay: one write at a time, wait until the cache shows it.
    let mut delays = Vec::new();
    let mut generation = cache.generation();
    for i in 0..2000 {
        let p = format!("/job{:05}/sharding/{}/running", (i * 7919) % jobs, i % 10);
        let value = format!("10.0.0.9@-@{i}");
        let t0 = Instant::now();
        r.set(&p, value.as_bytes(), None).await.expect("set");
        while !cache.read(|v| v.get(&p).is_some_and(|n| *n.data == *value.as_bytes())) {
            tokio::time::timeout(Duration::from_secs(10), generation.changed())
                .await
                .expect("the write reached the cache")
                .expect("cache alive");
        }
        delays.push(t0.elapsed());
    }
    delays.sort();
    println!(
        "write -> cache: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (2000 writes)",
        percentile(&delays, 0.5).as_secs_f64() * 1e3,
        percentile(&delays, 0.99).as_secs_f64() * 1e3,
        delays.last().expect("delays").as_secs_f64() * 1e3
    );
    drop(cache);
    reader.close().await;
    r.close().await;
}
