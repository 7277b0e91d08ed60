//! `make bench`: the console on a real ZooKeeper centre holding 10,000 jobs.
//!
//! Reports the time from adding the centre to its first jobs page, the warm jobs page
//! (REST and server-rendered HTML, 50 rows with statuses), SSR latency under 100
//! concurrent clients on loopback (bounded in time), and the server's RSS.
//!
//! `CAPSTAN_BENCH_JOBS` changes the job count (default 10000); `CAPSTAN_BENCH_SECONDS`
//! the load duration (default 10).

#[path = "../../runtime/registry/tests/support/mod.rs"]
mod support;

/// The allocator the `capstan` binary runs with (see `server/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_registry::{CreateMode, Op};
use capstan_server::config::ServeArgs;
use capstan_server::{build_state, router};

const PASSWORD: &str = "bench-admin-password";

/// One job as a Java app leaves it: config, 2 instances, 2 servers, 3 items with owners.
fn job_nodes(j: usize) -> Vec<(String, Vec<u8>)> {
    let job = format!("job{j:05}");
    let config = format!(
        "cron: 0 0/{} * * * ?\ndescription: bench job {j}\ndisabled: false\nfailover: true\n\
         jobName: {job}\nlabel: team{}\nmaxTimeDiffSeconds: -1\nmisfire: true\nmonitorExecution: true\n\
         overwrite: false\nreconcileIntervalMinutes: 10\nshardingItemParameters: 0=A,1=B,2=C\n\
         shardingTotalCount: 3\nstaticSharding: false\n",
        1 + j % 30,
        j % 7
    );
    let mut n = vec![
        (format!("/{job}"), b"com.example.BenchJob".to_vec()),
        (format!("/{job}/config"), config.into_bytes()),
        (format!("/{job}/instances"), vec![]),
        (format!("/{job}/servers"), vec![]),
        (format!("/{job}/sharding"), vec![]),
    ];
    for i in 0..2 {
        let ip = format!("10.1.{}.{}", i, j % 200);
        let id = format!("{ip}@-@{}", 4000 + i);
        n.push((
            format!("/{job}/instances/{id}"),
            format!("jobInstanceId: {id}\nserverIp: {ip}\n").into_bytes(),
        ));
        n.push((format!("/{job}/servers/{ip}"), b"ENABLED".to_vec()));
    }
    for item in 0..3 {
        let owner = format!("10.1.{}.{}@-@{}", item % 2, j % 200, 4000 + item % 2);
        n.push((format!("/{job}/sharding/{item}"), vec![]));
        n.push((
            format!("/{job}/sharding/{item}/instance"),
            owner.into_bytes(),
        ));
    }
    n
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0.0, |pages| (pages * 4096) as f64 / 1048576.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn get(&self, path: &str) -> (u16, String) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.text().await.expect("body"))
    }

    async fn timed(&self, path: &str, n: usize) -> Vec<Duration> {
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let t0 = Instant::now();
            let (status, body) = self.get(path).await;
            assert_eq!(status, 200, "{path}: {body}");
            times.push(t0.elapsed());
        }
        times.sort();
        times
    }
}

fn report(what: &str, times: &[Duration]) {
    println!(
        "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} requests)",
        ms(percentile(times, 0.5)),
        ms(percentile(times, 0.99)),
        ms(*times.last().expect("times")),
        times.len()
    );
}

#[tokio::main]
async fn main() {
    let jobs: usize = std::env::var("CAPSTAN_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seconds: u64 = std::env::var("CAPSTAN_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let zk = support::ZooKeeper::start();
    let r = zk.session("bench", Duration::from_secs(30)).await;
    let started = Instant::now();
    let per_job: Vec<Vec<(String, Vec<u8>)>> = (0..jobs).map(job_nodes).collect();
    let nodes: usize = per_job.iter().map(Vec::len).sum();
    let mut set = tokio::task::JoinSet::new();
    for chunk in per_job.chunks(25) {
        let ops: Vec<Op> = chunk
            .iter()
            .flatten()
            .map(|(p, d)| Op::Create {
                path: p.clone(),
                data: d.clone(),
                mode: CreateMode::Persistent,
            })
            .collect();
        if set.len() >= 8 {
            set.join_next().await.expect("task").expect("join");
        }
        let r = r.clone();
        set.spawn(async move { r.multi(ops).await.expect("multi") });
    }
    while let Some(done) = set.join_next().await {
        done.expect("join");
    }
    r.close().await;
    println!(
        "machine: {} cores; {jobs} jobs, {nodes} nodes in ZooKeeper, populated in {:.1} s",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let args = ServeArgs {
        bind: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().join("data"),
        site_root: dir.path().join("site"),
        admin_password: Some(PASSWORD.into()),
        zk_allow: String::new(),
        session_hours: 1,
        secure_cookies: false,
        probe_timeout_ms: 5000,
        log: "warn".into(),
        no_demo: true,
        run_jobs_on: Vec::new(),
        pipelines: Vec::new(),
        pipelines_on: None,
    };
    let state = build_state(&args).await.expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        axum::serve(
            listener,
            router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    // The workspace builds reqwest without a bundled crypto provider (see the HTTP job).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(200)
        .build()
        .expect("client");
    let login = http
        .post(format!("{base}/api/v1/login"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"username": "admin", "password": PASSWORD}).to_string())
        .send()
        .await
        .expect("login")
        .text()
        .await
        .expect("body");
    let login: serde_json::Value = serde_json::from_str(&login).expect("json");
    let client = Arc::new(Client {
        http,
        base,
        token: login["token"].as_str().expect("token").to_owned(),
    });
    let rss_idle = rss_mib();

    let t0 = Instant::now();
    let added = client
        .http
        .post(format!("{}/api/v1/registries", client.base))
        .bearer_auth(&client.token)
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"name": "zk", "kind": "zookeeper", "connect": zk.connect(), "namespace": "bench"})
                .to_string(),
        )
        .send()
        .await
        .expect("add centre");
    assert_eq!(added.status().as_u16(), 201);
    let (status, body) = client.get("/api/v1/registries/zk/jobs?page=1").await;
    let first = t0.elapsed();
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(page["total"], jobs, "{}", &body[..body.len().min(300)]);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(50.min(jobs)));
    assert_eq!(page["items"][0]["status"], "OK");
    println!(
        "add the centre -> first jobs page: {:.0} ms (session, cold load of {nodes} nodes, statuses of {jobs} jobs)",
        ms(first)
    );
    let rss_loaded = rss_mib();

    report(
        "jobs page, REST, warm (50 rows, statuses of all jobs for counts and filters)",
        &client.timed("/api/v1/registries/zk/jobs?page=1", 200).await,
    );
    report(
        "jobs page, REST, warm, filtered (?q=job09&status=OK&tag=team3, page 2)",
        &client
            .timed(
                "/api/v1/registries/zk/jobs?q=job0&status=OK&tag=team3&page=2",
                200,
            )
            .await,
    );
    report(
        "jobs page, server-rendered HTML, warm",
        &client.timed("/rc/zk/jobs", 200).await,
    );
    report(
        "job detail page, server-rendered HTML, warm",
        &client.timed("/rc/zk/jobs/job04242", 200).await,
    );
    report(
        "dashboard page, server-rendered HTML, warm (statuses, 6 h of upcoming fires of every job)",
        &client.timed("/rc/zk", 20).await,
    );

    // 100 concurrent clients on the SSR jobs page, bounded in time.
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let client = client.clone();
        tasks.spawn(async move {
            let mut times = Vec::new();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let (status, _) = client.get("/rc/zk/jobs").await;
                assert_eq!(status, 200);
                times.push(t0.elapsed());
            }
            times
        });
    }
    let mut all = Vec::new();
    while let Some(t) = tasks.join_next().await {
        all.extend(t.expect("client"));
    }
    all.sort();
    println!(
        "SSR jobs page under 100 concurrent clients for {seconds} s: {:.0} req/s",
        all.len() as f64 / seconds as f64
    );
    report("  latency", &all);
    println!(
        "server RSS: {:.0} MiB idle, {:.0} MiB with the {jobs}-job centre loaded, {:.0} MiB after the load test",
        rss_idle,
        rss_loaded,
        rss_mib()
    );
    drop(zk);
}
