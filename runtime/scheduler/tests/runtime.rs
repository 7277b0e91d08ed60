//! The scheduler runtime with several instances on one embedded registry (each instance a
//! session of its own, as separate processes would be), driven through the admin API.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capstan_registry::{EmbeddedStore, Registry};
use capstan_scheduler::admin::operations;
use capstan_scheduler::config::JobConfig;
use capstan_scheduler::context::ShardingContext;
use capstan_scheduler::history::{History, Page, RunQuery, RunRecord, RunState};
use capstan_scheduler::kinds::{BoxError, JobKind};
use capstan_scheduler::{JobDefinition, Scheduler};

const NS: &str = "ns";

/// One item that ran: (instance id, item, job parameter).
type Ran = (String, u32, Option<String>);

/// What items ran.
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<Vec<Ran>>>);

impl Runs {
    fn all(&self) -> Vec<Ran> {
        self.0.lock().expect("lock").clone()
    }
    fn clear(&self) {
        self.0.lock().expect("lock").clear();
    }
}

fn instance_of(ctx: &ShardingContext) -> String {
    ctx.task_id
        .split_once("@-@READY@-@")
        .map(|(_, i)| i.to_owned())
        .unwrap_or_default()
}

/// Counts an item future dropped before it finished (a fenced or killed run).
struct DropGuard(Arc<AtomicUsize>, bool);

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn recording(runs: &Runs, hold: Duration, aborted: &Arc<AtomicUsize>) -> JobKind {
    let runs = runs.clone();
    let aborted = aborted.clone();
    JobKind::simple_fn("capstan:test", move |ctx: ShardingContext| {
        let runs = runs.clone();
        let aborted = aborted.clone();
        async move {
            let mut guard = DropGuard(aborted, false);
            runs.0.lock().expect("lock").push((
                instance_of(&ctx),
                ctx.sharding_item,
                ctx.job_parameter.clone(),
            ));
            tokio::time::sleep(hold).await;
            guard.1 = true;
            Ok::<(), BoxError>(())
        }
    })
}

fn config(name: &str, cron: Option<&str>, total: i32) -> JobConfig {
    JobConfig {
        job_name: name.into(),
        cron: cron.map(Into::into),
        sharding_total_count: total,
        monitor_execution: true,
        max_time_diff_seconds: -1,
        ..JobConfig::default()
    }
}

/// Adds `cfg` to each of `schedulers`, its items recorded in `runs` and held for `hold`.
async fn add_recording(
    schedulers: &[&Scheduler],
    cfg: &JobConfig,
    runs: &Runs,
    hold: Duration,
    aborted: &Arc<AtomicUsize>,
) {
    for s in schedulers {
        s.add_job(JobDefinition::new(
            cfg.clone(),
            recording(runs, hold, aborted),
        ))
        .await
        .expect("add");
    }
}

async fn start(store: &EmbeddedStore, ip: &str, suffix: &str) -> (Scheduler, Registry, History) {
    // CAPSTAN_TEST_LOG=debug shows what the runtime did.
    if let Ok(filter) = std::env::var("CAPSTAN_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    let registry = Registry::embedded(store, NS).await.expect("session");
    let history = History::in_memory().await.expect("history");
    let scheduler = Scheduler::builder(registry.clone())
        .ip(ip)
        .instance_suffix(suffix)
        .history(history.clone())
        .session_timeout(Duration::from_secs(2))
        .shutdown_grace(Duration::from_secs(5))
        .start()
        .await
        .expect("scheduler");
    (scheduler, registry, history)
}

/// Waits until `f` holds, checking every 20 ms, for at most `secs` seconds.
async fn eventually(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The first page of `job`'s recorded runs, once the history has written what it holds.
async fn job_runs(history: &History, job: &str, size: u32) -> Page<RunRecord> {
    history.flush().await;
    history
        .runs(
            &RunQuery {
                job: Some(job.into()),
                ..RunQuery::default()
            },
            1,
            size,
        )
        .await
        .expect("runs")
}

async fn owners(r: &Registry, job: &str, total: u32) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for i in 0..total {
        if let Ok((v, _)) = r.get(&format!("/{job}/sharding/{i}/instance")).await {
            out.insert(i, String::from_utf8_lossy(&v).into_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_split_items_and_a_disabled_server_hands_them_over() {
    let store = EmbeddedStore::in_memory();
    let (a, ra, _) = start(&store, "10.0.0.1", "a").await;
    let (b, _, _) = start(&store, "10.0.0.2", "b").await;
    let runs = Runs::default();
    let aborted = Arc::new(AtomicUsize::new(0));
    let cfg = config("orders", Some("* * * * * ?"), 3);
    add_recording(&[&a, &b], &cfg, &runs, Duration::from_millis(50), &aborted).await;
    let (ia, ib) = (a.instance_id().to_string(), b.instance_id().to_string());
    // Descending Java order puts 10.0.0.2 first, so AVG_ALLOCATION gives it [0,2].
    let expected = BTreeMap::from([(0, ib.clone()), (1, ia.clone()), (2, ib.clone())]);
    eventually("the leader shards over both instances", 10, async || {
        owners(&ra, "orders", 3).await == expected
    })
    .await;
    runs.clear();
    eventually("every item runs on its owner", 10, async || {
        let seen: BTreeSet<u32> = runs.all().iter().map(|r| r.1).collect();
        seen.len() == 3
    })
    .await;
    for (instance, item, _) in runs.all() {
        assert_eq!(expected[&item], instance, "item {item} ran off its owner");
    }

    // Disable B's server: at the next fire A owns, and runs, every item.
    operations::set_server_enabled(&ra, "10.0.0.2", false)
        .await
        .expect("disable");
    let all_a = BTreeMap::from([(0, ia.clone()), (1, ia.clone()), (2, ia.clone())]);
    eventually("items move to the enabled server", 10, async || {
        owners(&ra, "orders", 3).await == all_a
    })
    .await;
    runs.clear();
    eventually("A runs all three items", 10, async || {
        runs.all()
            .iter()
            .filter(|r| r.0 == ia)
            .map(|r| r.1)
            .collect::<BTreeSet<_>>()
            .len()
            == 3
    })
    .await;
    assert!(
        runs.all().iter().all(|r| r.0 == ia),
        "a disabled server ran items: {:?}",
        runs.all()
    );
    // Enable it again: the items come back.
    operations::set_server_enabled(&ra, "10.0.0.2", true)
        .await
        .expect("enable");
    eventually("items return to both servers", 10, async || {
        owners(&ra, "orders", 3).await == expected
    })
    .await;
    assert_eq!(aborted.load(Ordering::SeqCst), 0);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_fires_every_instance_once_with_its_parameter() {
    let store = EmbeddedStore::in_memory();
    let (a, ra, _) = start(&store, "10.0.0.1", "a").await;
    let (b, _, _) = start(&store, "10.0.0.2", "b").await;
    let runs = Runs::default();
    let aborted = Arc::new(AtomicUsize::new(0));
    // No cron: the job runs only when triggered.
    let cfg = config("report", None, 4);
    add_recording(&[&a, &b], &cfg, &runs, Duration::from_millis(10), &aborted).await;
    eventually("both instances registered", 5, async || {
        ra.children("/report/instances")
            .await
            .map(|c| c.len())
            .unwrap_or(0)
            == 2
    })
    .await;
    assert_eq!(
        operations::trigger(&ra, "report", Some("date=2026-12-01"))
            .await
            .expect("trigger"),
        2
    );
    eventually("all four items run", 10, async || runs.all().len() >= 4).await;
    // Settle: a trigger is one run per instance, so nothing more may come.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = runs.all();
    let items: Vec<u32> = {
        let mut v: Vec<u32> = all.iter().map(|r| r.1).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(items, [0, 1, 2, 3], "each item exactly once: {all:?}");
    assert!(
        all.iter()
            .all(|r| r.2.as_deref() == Some("date=2026-12-01"))
    );
    let instances: BTreeSet<&str> = all.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(instances.len(), 2, "both instances fired");
    assert!(
        ra.children("/report/trigger")
            .await
            .expect("trigger")
            .is_empty()
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_skips_fires_without_resharding_and_resume_restarts_them() {
    let store = EmbeddedStore::in_memory();
    let (a, ra, _) = start(&store, "10.0.0.1", "a").await;
    let runs = Runs::default();
    let aborted = Arc::new(AtomicUsize::new(0));
    a.add_job(JobDefinition::new(
        config("sync", Some("* * * * * ?"), 2),
        recording(&runs, Duration::from_millis(10), &aborted),
    ))
    .await
    .expect("add");
    eventually("the job runs", 10, async || runs.all().len() >= 2).await;
    let before = owners(&ra, "sync", 2).await;
    operations::pause(&ra, "sync").await.expect("pause");
    // A fire that had already started may finish; give it a moment, then watch.
    tokio::time::sleep(Duration::from_millis(300)).await;
    runs.clear();
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert!(runs.all().is_empty(), "paused job fired: {:?}", runs.all());
    assert_eq!(
        owners(&ra, "sync", 2).await,
        before,
        "pause must not reshard"
    );
    operations::resume(&ra, "sync").await.expect("resume");
    eventually("fires resume", 5, async || runs.all().len() >= 2).await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_instance_is_fenced_and_its_items_fail_over() {
    let store = EmbeddedStore::in_memory();
    let (a, ra, _) = start(&store, "10.0.0.1", "a").await;
    let (b, rb, hb) = start(&store, "10.0.0.2", "b").await;
    let runs = Runs::default();
    let aborted = Arc::new(AtomicUsize::new(0));
    let mut cfg = config("billing", Some("0/2 * * * * ?"), 2);
    cfg.failover = true;
    add_recording(
        &[&a, &b],
        &cfg,
        &runs,
        Duration::from_millis(2500),
        &aborted,
    )
    .await;
    let ia = a.instance_id().to_string();
    // Wait for A to be running its item: its body has started (the `running` node alone
    // is not enough: it is created just before the item starts, and an expiry in between
    // rightly keeps the item from starting at all).
    let mut a_item = None;
    eventually("A runs an item", 15, async || {
        a_item = runs.all().iter().find(|r| r.0 == ia).map(|r| r.1);
        a_item.is_some()
    })
    .await;
    let a_item = a_item.expect("item");
    runs.clear();
    ra.expire_session().await.expect("expire");
    eventually("A abandons its running item (fencing)", 5, async || {
        aborted.load(Ordering::SeqCst) == 1
    })
    .await;
    eventually("B takes A's item over", 15, async || {
        runs.all()
            .iter()
            .any(|r| r.1 == a_item && r.0 == b.instance_id().as_str())
    })
    .await;
    hb.flush().await;
    eventually(
        "B records the take-over as a failover run",
        10,
        async || {
            hb.flush().await;
            let page = hb
                .runs(&RunQuery::default(), 1, 100)
                .await
                .expect("history");
            page.rows.iter().any(|r| {
                r.item == a_item && r.source == "FAILOVER" && r.state == RunState::Succeeded
            })
        },
    )
    .await;
    eventually("failover markers are cleaned up", 10, async || {
        rb.exists(&format!("/billing/sharding/{a_item}/failovering"))
            .await
            .expect("exists")
            .is_none()
            && rb
                .children("/billing/leader/failover/items")
                .await
                .map(|c| c.is_empty())
                .unwrap_or(true)
    })
    .await;
    b.shutdown().await;
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_missed_during_a_run_is_run_again_as_a_misfire() {
    let store = EmbeddedStore::in_memory();
    let (a, _, history) = start(&store, "10.0.0.1", "a").await;
    let runs = Runs::default();
    let aborted = Arc::new(AtomicUsize::new(0));
    let mut cfg = config("slow", Some("* * * * * ?"), 1);
    cfg.misfire = true;
    a.add_job(JobDefinition::new(
        cfg,
        recording(&runs, Duration::from_millis(1600), &aborted),
    ))
    .await
    .expect("add");
    eventually("the first run is recorded as running", 10, async || {
        history.flush().await;
        let page = history
            .runs(&RunQuery::default(), 1, 10)
            .await
            .expect("runs");
        page.rows
            .first()
            .is_some_and(|r| r.state == RunState::Running && r.complete_ms.is_none())
    })
    .await;
    eventually("a misfire run follows the slow run", 15, async || {
        history.flush().await;
        let page = history
            .runs(&RunQuery::default(), 1, 10)
            .await
            .expect("runs");
        page.rows.iter().any(|r| r.source == "MISFIRE")
    })
    .await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_unregisters_and_the_others_take_over() {
    let store = EmbeddedStore::in_memory();
    let (a, ra, _) = start(&store, "10.0.0.1", "a").await;
    let (b, _, _) = start(&store, "10.0.0.2", "b").await;
    let runs = Runs::default();
    let aborted = Arc::new(AtomicUsize::new(0));
    let cfg = config("mail", Some("* * * * * ?"), 2);
    add_recording(&[&a, &b], &cfg, &runs, Duration::from_millis(20), &aborted).await;
    eventually("both own items", 10, async || {
        owners(&ra, "mail", 2)
            .await
            .values()
            .collect::<BTreeSet<_>>()
            .len()
            == 2
    })
    .await;
    b.shutdown().await;
    let ia = a.instance_id().to_string();
    assert_eq!(
        ra.children("/mail/instances").await.expect("instances"),
        std::slice::from_ref(&ia)
    );
    eventually("A owns everything", 10, async || {
        owners(&ra, "mail", 2).await.values().all(|o| *o == ia)
    })
    .await;
    // An operator's shutdown of A (deleting its instance node) stops the job there.
    operations::shutdown(&ra, "mail", None)
        .await
        .expect("shutdown");
    eventually("A reports the job stopped", 5, async || {
        a.job_state("mail")
            .await
            .is_some_and(|s| s.stopped.is_some())
    })
    .await;
    runs.clear();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(runs.all().is_empty(), "a shut-down instance fired");
    // Removing the job ends it on A entirely.
    operations::remove_job(&ra, "mail").await.expect("remove");
    eventually("A forgets the removed job", 5, async || a.jobs().is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_jobs_created_in_the_registry_are_found_and_run() {
    let store = EmbeddedStore::in_memory();
    let (a, ra, history) = start(&store, "10.0.0.1", "a").await;
    let discovery = tokio::spawn({
        let a = a.clone();
        async move { a.run_registry_jobs().await }
    });
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("out.txt");
    // What the console writes when an operator creates a script job.
    let yaml = format!(
        "cron: '* * * * * ?'\njobName: echo\nmonitorExecution: true\nprops:\n  script.command.line: /bin/sh -c 'echo \"$1\" >> {}' sh\nshardingTotalCount: 2\n",
        out.display()
    );
    ra.create_with(
        "/echo",
        b"SCRIPT",
        capstan_registry::CreateOptions {
            mode: capstan_registry::CreateMode::Persistent,
            create_parents: true,
        },
    )
    .await
    .expect("root");
    ra.create(
        "/echo/config",
        yaml.as_bytes(),
        capstan_registry::CreateMode::Persistent,
    )
    .await
    .expect("config");
    eventually("both items of the script ran", 15, async || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        text.contains("\"shardingItem\":0") && text.contains("\"shardingItem\":1")
    })
    .await;
    let page = job_runs(&history, "echo", 10).await;
    assert!(page.total >= 2);
    // A class-based job (a Java application's) is left alone.
    ra.create(
        "/javaJob",
        b"com.example.OrderJob",
        capstan_registry::CreateMode::Persistent,
    )
    .await
    .expect("java");
    ra.create(
        "/javaJob/config",
        b"jobName: javaJob\ncron: 0 * * * * ?\nshardingTotalCount: 1\n",
        capstan_registry::CreateMode::Persistent,
    )
    .await
    .expect("java config");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.jobs(), ["echo"]);
    operations::remove_job(&ra, "echo").await.expect("remove");
    eventually("the removed job stops", 5, async || a.jobs().is_empty()).await;
    discovery.abort();
}

/// The fire clock fires every job due on a second in one batch: over a few seconds each of
/// many jobs with the same cron runs each of its items once per second, never twice and
/// never skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_due_on_the_same_second_each_fire_once_per_second() {
    let store = EmbeddedStore::in_memory();
    let (a, ra, _history) = start(&store, "10.0.0.1", "a").await;
    // (job, item, second) of every item start.
    let starts: Arc<Mutex<Vec<(String, u32, i64)>>> = Arc::default();
    let kind = {
        let starts = starts.clone();
        JobKind::simple_fn("capstan:test", move |ctx: ShardingContext| {
            let second = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            starts
                .lock()
                .expect("lock")
                .push((ctx.job_name, ctx.sharding_item, second));
            async { Ok::<(), BoxError>(()) }
        })
    };
    let jobs: Vec<String> = (0..60).map(|i| format!("same-{i:02}")).collect();
    for name in &jobs {
        a.add_job(JobDefinition::new(
            config(name, Some("* * * * * ?"), 2),
            kind.clone(),
        ))
        .await
        .expect("add");
    }
    eventually("every job fired on three seconds", 15, async || {
        let starts = starts.lock().expect("lock");
        jobs.iter().all(|j| {
            starts
                .iter()
                .filter(|(n, _, _)| n == j)
                .map(|(_, _, s)| *s)
                .collect::<BTreeSet<_>>()
                .len()
                >= 3
        })
    })
    .await;
    a.shutdown().await;
    let starts = starts.lock().expect("lock").clone();
    let mut per: BTreeMap<(String, u32, i64), usize> = BTreeMap::new();
    for s in &starts {
        *per.entry(s.clone()).or_default() += 1;
    }
    let twice: Vec<_> = per.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "items started twice in one second: {twice:?}"
    );
    // Each job ran both items on each second it fired.
    let mut seconds: BTreeMap<(String, i64), BTreeSet<u32>> = BTreeMap::new();
    for (job, item, second) in starts {
        seconds.entry((job, second)).or_default().insert(item);
    }
    let partial: Vec<_> = seconds
        .iter()
        .filter(|(_, items)| items.len() != 2)
        .collect();
    assert!(
        partial.is_empty(),
        "fires that ran one item of two: {partial:?}"
    );
    ra.close().await;
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Sleeps until 300 ms before the next even second at least 600 ms away; that second.
async fn to_300_ms_before_an_even_second() -> i64 {
    let mut next = (wall_ms() / 2000 + 1) * 2000;
    if next - wall_ms() < 600 {
        next += 2000;
    }
    tokio::time::sleep(Duration::from_millis((next - 300 - wall_ms()) as u64)).await;
    next
}

/// Fires are planned and their items marked `running` ahead of their time (here 800 ms,
/// to watch it), yet no item starts before its time; a change in that window (an item
/// disabled after its marker was written) is obeyed at the time: the fire is decided
/// afresh, the disabled item does not run, and its marker goes; a trigger in that window
/// is not dropped, as one during a run is, but fires after the fire; and a shutdown in
/// that window lets the markers go and starts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_held_ahead_starts_on_time_and_obeys_a_change_meanwhile() {
    let store = EmbeddedStore::in_memory();
    if let Ok(filter) = std::env::var("CAPSTAN_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    let registry = Registry::embedded(&store, NS).await.expect("session");
    let a = Scheduler::builder(registry.clone())
        .ip("10.0.0.1")
        .instance_suffix("a")
        .fire_ahead(Duration::from_millis(800))
        .start()
        .await
        .expect("scheduler");
    // (item, wall ms, parameter) of every item start.
    type Start = (u32, i64, Option<String>);
    let starts: Arc<Mutex<Vec<Start>>> = Arc::default();
    let kind = {
        let starts = starts.clone();
        JobKind::simple_fn("capstan:test", move |ctx: ShardingContext| {
            starts.lock().expect("lock").push((
                ctx.sharding_item,
                wall_ms(),
                ctx.job_parameter.clone(),
            ));
            async { Ok::<(), BoxError>(()) }
        })
    };
    let starts_from = |from: usize| starts.lock().expect("lock")[from..].to_vec();
    a.add_job(JobDefinition::new(
        config("early", Some("*/2 * * * * ?"), 2),
        kind,
    ))
    .await
    .expect("add");
    eventually("two fires", 10, async || starts_from(0).len() >= 4).await;

    // 300 ms before a fire: its markers are written, its items not started.
    let next = to_300_ms_before_an_even_second().await;
    let before = starts_from(0).len();
    assert!(
        starts_from(0).iter().all(|(_, ms, _)| *ms < next - 1000),
        "an item of the fire at {next} started early"
    );
    for item in 0..2 {
        assert!(
            registry
                .exists(&format!("/early/sharding/{item}/running"))
                .await
                .expect("exists")
                .is_some(),
            "item {item}: no running marker 300 ms before its fire"
        );
    }
    operations::set_item_enabled(&registry, "early", 0, false)
        .await
        .expect("disable");
    eventually("the fire after the change", 5, async || {
        !starts_from(before).is_empty()
    })
    .await;
    // Item 1 started once it was due; item 0 did not, and its marker is gone.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after = starts_from(before);
    assert!(
        after.iter().all(|(item, ms, _)| *item == 1 && *ms >= next),
        "a disabled item ran, or an item ran early: {after:?}"
    );
    assert!(
        registry
            .exists("/early/sharding/0/running")
            .await
            .expect("exists")
            .is_none(),
        "the disabled item's marker stayed"
    );

    // A trigger 300 ms before a fire, while its slot is reserved: it fires after it.
    let next = to_300_ms_before_an_even_second().await;
    let before = starts_from(0).len();
    operations::trigger(&registry, "early", Some("now"))
        .await
        .expect("trigger");
    eventually("the trigger fires after the fire", 5, async || {
        starts_from(before)
            .iter()
            .any(|(_, _, p)| p.as_deref() == Some("now"))
    })
    .await;
    let fired = starts_from(before);
    assert!(
        matches!(fired.as_slice(), [(1, at, None), (1, _, Some(p))] if *at >= next && p == "now"),
        "expected the fire at {next}, then the trigger's: {fired:?}"
    );

    // A shutdown while a fire is held: its markers are let go, and it never starts.
    let next = to_300_ms_before_an_even_second().await;
    let before = starts_from(0).len();
    assert!(
        registry
            .exists("/early/sharding/1/running")
            .await
            .expect("exists")
            .is_some(),
        "no marker held before the shutdown"
    );
    a.shutdown().await;
    eventually("the held marker is let go", 3, async || {
        registry
            .exists("/early/sharding/1/running")
            .await
            .is_ok_and(|m| m.is_none())
    })
    .await;
    tokio::time::sleep(Duration::from_millis((next + 300 - wall_ms()).max(0) as u64)).await;
    assert_eq!(
        starts_from(before),
        vec![],
        "an item started after the shutdown"
    );
    // No scheduled item ever started before its time (an even second), though its marker
    // was written 800 ms before.
    let early: Vec<_> = starts_from(0)
        .into_iter()
        .filter(|(_, ms, p)| p.is_none() && ms.rem_euclid(2000) > 1000)
        .collect();
    assert!(
        early.is_empty(),
        "items started before their time: {early:?}"
    );
    registry.close().await;
}

/// A panic in an item's code fails that item and nothing else: it is recorded as failed,
/// its `running` marker is released, and the job fires again at its next time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_item_fails_and_the_job_fires_on() {
    let store = EmbeddedStore::in_memory();
    let (a, ra, history) = start(&store, "10.0.0.1", "a").await;
    let calls = Arc::new(AtomicUsize::new(0));
    let kind = {
        let calls = calls.clone();
        JobKind::simple_fn("capstan:test", move |_: ShardingContext| {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                assert!(!first, "kaboom");
                Ok::<(), BoxError>(())
            }
        })
    };
    a.add_job(JobDefinition::new(
        config("boom", Some("* * * * * ?"), 1),
        kind,
    ))
    .await
    .expect("add");
    // The second call needs the first fire's marker gone (the job skips an item still
    // marked running) and its run slot free.
    eventually("a fire after the panicking one", 10, async || {
        calls.load(Ordering::SeqCst) >= 2
    })
    .await;
    let page = job_runs(&history, "boom", 50).await;
    let failed: Vec<_> = page
        .rows
        .iter()
        .filter(|r| r.state == RunState::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", page.rows);
    assert!(
        failed[0]
            .failure_cause
            .as_deref()
            .is_some_and(|c| c.contains("panicked") && c.contains("kaboom")),
        "{:?}",
        failed[0]
    );
    assert!(
        page.rows
            .iter()
            .all(|r| r.state != RunState::Running || r.start_ms > failed[0].start_ms),
        "the panicking item must not stay RUNNING: {:?}",
        page.rows
    );
    a.shutdown().await;
    ra.close().await;
}

/// An instance that dies while no survivor watches (every survivor was itself restarting)
/// leaves its persistent `running` node and its ownership behind, and no removal event ever
/// names it. Resharding waits for running items, so without the leader's check for owners
/// that are gone the job would wait for ever; with it, the item fails over and the job
/// reshards onto the live instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_left_running_by_an_unseen_dead_instance_fails_over_and_resharding_goes_on() {
    left_running_by_a_ghost(false).await;
}

/// The same, with the item already flagged for failover when the ghost's `running` node
/// appears (an earlier crash flagged it, resharding gave it to the ghost, and the ghost ran
/// it and died unseen). A live instance takes the flag and finds the item still marked
/// running: it must not hold the item for ever (so that neither its own failover fires nor
/// the leader's wait for running items could ever end), but clear the ghost's marker and
/// run it. Seen in CI as a 240 s stall of the agents' chaos test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flagged_item_left_running_by_an_unseen_dead_instance_is_taken_and_run() {
    left_running_by_a_ghost(true).await;
}

/// Two instances running the failover job `ledger` of two items, each owning one.
struct Ledger {
    store: EmbeddedStore,
    a: (Scheduler, Registry, History),
    b: (Scheduler, Registry, History),
    runs: Runs,
    live: BTreeSet<String>,
}

/// An instance that is gone: no node, no session.
const GHOST: &str = "10.0.0.9@-@4242";

impl Ledger {
    async fn start() -> Ledger {
        let store = EmbeddedStore::in_memory();
        let a = start(&store, "10.0.0.1", "a").await;
        let b = start(&store, "10.0.0.2", "b").await;
        let runs = Runs::default();
        let aborted = Arc::new(AtomicUsize::new(0));
        let mut cfg = config("ledger", Some("* * * * * ?"), 2);
        cfg.failover = true;
        add_recording(
            &[&a.0, &b.0],
            &cfg,
            &runs,
            Duration::from_millis(50),
            &aborted,
        )
        .await;
        let live: BTreeSet<String> =
            [a.0.instance_id().to_string(), b.0.instance_id().to_string()].into();
        eventually("both instances own an item", 15, async || {
            owners(&a.1, "ledger", 2)
                .await
                .into_values()
                .collect::<BTreeSet<_>>()
                == live
        })
        .await;
        Ledger {
            store,
            a,
            b,
            runs,
            live,
        }
    }

    /// What the ghost left of item 1: its ownership and its persistent `running` marker.
    fn ghost_ops() -> Vec<capstan_registry::Op> {
        use capstan_registry::{CreateMode, Op};
        vec![
            Op::Set {
                path: "/ledger/sharding/1/instance".into(),
                data: GHOST.into(),
                version: None,
            },
            Op::Create {
                path: "/ledger/sharding/1/running".into(),
                data: GHOST.into(),
                mode: CreateMode::Persistent,
            },
        ]
    }

    /// Writes `ops` in one transaction of `session`, between two runs of item 1 (a run
    /// holds its `running` marker, and the transaction creates it).
    async fn write_between_runs(session: &Registry, ops: Vec<capstan_registry::Op>) {
        eventually(
            "the state is written between two runs of item 1",
            10,
            async || session.multi(ops.clone()).await.is_ok(),
        )
        .await;
    }

    async fn shutdown(self) {
        self.a.0.shutdown().await;
        self.b.0.shutdown().await;
    }
}

/// A taker that never looks again (as a Java instance does: it tries a taken item at its
/// next fires, skipping it while it is marked running) holds an item whose marker an
/// unseen dead instance left. The leader, waiting to reshard, removes that stale marker and
/// leaves the take alone; the job reshards and nobody else runs the taken item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_clears_a_gone_owners_marker_under_another_instances_take() {
    use capstan_registry::{CreateMode, Op};
    let ledger = Ledger::start().await;
    let ra = &ledger.a.1;
    // The taker: a live session with an instance node (no server node, so it gets no
    // items), its take ephemeral on that session.
    let taker_session = Registry::embedded(&ledger.store, NS)
        .await
        .expect("taker session");
    let taker = "10.0.0.7@-@777";
    taker_session
        .create(
            &format!("/ledger/instances/{taker}"),
            b"jobInstanceId: 10.0.0.7@-@777\n",
            CreateMode::Ephemeral,
        )
        .await
        .expect("taker instance");
    let mut state = Ledger::ghost_ops();
    state.extend([
        Op::Create {
            path: "/ledger/sharding/1/failover".into(),
            data: taker.into(),
            mode: CreateMode::Ephemeral,
        },
        Op::Create {
            path: "/ledger/sharding/1/failovering".into(),
            data: taker.into(),
            mode: CreateMode::Persistent,
        },
    ]);
    Ledger::write_between_runs(&taker_session, state).await;
    // Resharding wanted (as the taker's own arrival asked): it waits for item 1's marker.
    let _ = ra
        .create(
            "/ledger/leader/sharding/necessary",
            b"",
            CreateMode::Persistent,
        )
        .await;
    ledger.runs.clear();
    eventually("the job reshards", 20, async || {
        ra.exists("/ledger/leader/sharding/necessary")
            .await
            .expect("exists")
            .is_none()
    })
    .await;
    assert!(
        ra.exists("/ledger/sharding/1/running")
            .await
            .expect("exists")
            .is_none(),
        "the gone owner's marker stays"
    );
    let (take, _) = ra.get("/ledger/sharding/1/failover").await.expect("take");
    assert_eq!(take, taker.as_bytes(), "the take must stay the taker's");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        ledger.runs.all().iter().all(|r| r.1 != 1),
        "item 1 ran here while another instance holds it: {:?}",
        ledger.runs.all()
    );
    ledger.shutdown().await;
}

/// Two live instances run a job of two items; then one transaction writes what an unseen
/// dead instance leaves: item 1 owned and marked running by an instance with no node,
/// resharding flagged, and (when `flagged`) item 1 flagged for failover. The job must
/// reshard onto the live instances and run item 1 once as a failover.
async fn left_running_by_a_ghost(flagged: bool) {
    use capstan_registry::{CreateMode, Op};
    let ledger = Ledger::start().await;
    let (ra, ha, hb) = (&ledger.a.1, &ledger.a.2, &ledger.b.2);
    let mut ghost_state = Ledger::ghost_ops();
    ghost_state.push(Op::Create {
        path: "/ledger/leader/sharding/necessary".into(),
        data: Vec::new(),
        mode: CreateMode::Persistent,
    });
    if flagged {
        let parent = ra
            .create_with(
                "/ledger/leader/failover/items",
                b"",
                capstan_registry::CreateOptions {
                    mode: CreateMode::Persistent,
                    create_parents: true,
                },
            )
            .await;
        assert!(
            matches!(parent, Ok(_) | Err(capstan_registry::Error::NodeExists(_))),
            "{parent:?}"
        );
        ghost_state.push(Op::Create {
            path: "/ledger/leader/failover/items/1".into(),
            data: Vec::new(),
            mode: CreateMode::Persistent,
        });
    }
    Ledger::write_between_runs(ra, ghost_state).await;
    let (runs, live) = (&ledger.runs, &ledger.live);
    runs.clear();
    eventually("the job reshards onto the live instances", 20, async || {
        ra.exists("/ledger/leader/sharding/necessary")
            .await
            .expect("exists")
            .is_none()
            && owners(ra, "ledger", 2)
                .await
                .into_values()
                .collect::<BTreeSet<_>>()
                == *live
    })
    .await;
    let failovers = async || {
        let mut failovers = 0;
        for h in [ha, hb] {
            failovers += job_runs(h, "ledger", 200)
                .await
                .rows
                .iter()
                .filter(|r| r.item == 1 && r.source == "FAILOVER")
                .count();
        }
        failovers
    };
    eventually("item 1 is run again as a failover", 10, async || {
        failovers().await > 0
    })
    .await;
    // Once only: a fire after the take's end must not run the item again from a cache
    // that still shows the take.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        failovers().await,
        1,
        "item 1 ran as a failover more than once"
    );
    assert!(runs.all().iter().all(|r| live.contains(&r.0)));
    ledger.shutdown().await;
}

/// Exclusivity under random kills: one item never runs on two instances at once. A kill
/// is what `kill -9` does: the instance stops at once (its items with it), and its session
/// is expired afterwards, when the server notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_never_runs_twice_at_once_across_random_kills() {
    const JOBS: usize = 4;
    const TOTAL: i32 = 3;
    let store = EmbeddedStore::in_memory();
    let admin = Registry::embedded(&store, NS).await.expect("admin");
    // (job, item) -> the instance running it now.
    let holders: Arc<Mutex<BTreeMap<(String, u32), String>>> = Arc::default();
    let violations: Arc<Mutex<Vec<String>>> = Arc::default();
    let fires = Arc::new(AtomicUsize::new(0));
    let kind = {
        let holders = holders.clone();
        let violations = violations.clone();
        let fires = fires.clone();
        move || {
            let holders = holders.clone();
            let violations = violations.clone();
            let fires = fires.clone();
            JobKind::simple_fn("capstan:exclusive", move |ctx: ShardingContext| {
                let holders = holders.clone();
                let violations = violations.clone();
                let fires = fires.clone();
                async move {
                    let key = (ctx.job_name.clone(), ctx.sharding_item);
                    let me = instance_of(&ctx);
                    {
                        let mut h = holders.lock().expect("lock");
                        if let Some(other) = h.get(&key) {
                            violations
                                .lock()
                                .expect("lock")
                                .push(format!("{key:?} started on {me} while {other} runs it"));
                        }
                        h.insert(key.clone(), me.clone());
                    }
                    fires.fetch_add(1, Ordering::SeqCst);
                    struct Release(
                        Arc<Mutex<BTreeMap<(String, u32), String>>>,
                        (String, u32),
                        String,
                    );
                    impl Drop for Release {
                        fn drop(&mut self) {
                            let mut h = self.0.lock().expect("lock");
                            if h.get(&self.1) == Some(&self.2) {
                                h.remove(&self.1);
                            }
                        }
                    }
                    let _release = Release(holders.clone(), key, me);
                    let hold = 50 + (ctx.sharding_item as u64 * 131 + rand_ms()) % 900;
                    tokio::time::sleep(Duration::from_millis(hold)).await;
                    Ok::<(), BoxError>(())
                }
            })
        }
    };
    let cfg = |job: usize| {
        let mut c = config(&format!("ex{job}"), Some("* * * * * ?"), TOTAL);
        c.failover = true;
        c
    };
    let mut live: Vec<(Scheduler, Registry)> = Vec::new();
    let mut next = 0;
    let spawn = async |live: &mut Vec<(Scheduler, Registry)>, next: &mut usize| {
        *next += 1;
        let ip = format!("10.0.1.{}", *next % 3 + 1);
        let (s, r, _) = start(&store, &ip, &format!("i{next}")).await;
        for j in 0..JOBS {
            s.add_job(JobDefinition::new(cfg(j), kind()))
                .await
                .expect("add");
        }
        live.push((s, r));
    };
    for _ in 0..3 {
        spawn(&mut live, &mut next).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
    let mut kills = 0;
    while fires.load(Ordering::SeqCst) < 200 || kills < 8 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} fires and {kills} kills in 150 s",
            fires.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(2000 + rand_ms() % 1500)).await;
        let victim = (rand_ms() as usize) % live.len();
        let (s, r) = live.remove(victim);
        s.kill();
        // The server notices the death a moment later.
        tokio::time::sleep(Duration::from_millis(rand_ms() % 300)).await;
        r.expire_session().await.expect("expire");
        kills += 1;
        spawn(&mut live, &mut next).await;
    }
    let v = violations.lock().expect("lock").clone();
    assert!(v.is_empty(), "exclusivity violated: {v:#?}");
    eprintln!(
        "exclusivity: {} item fires, {kills} kills, no overlap",
        fires.load(Ordering::SeqCst)
    );
    for (s, _) in &live {
        s.shutdown().await;
    }
    drop(admin);
}

/// A cheap pseudo-random number (the test needs variety, not quality).
fn rand_ms() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .elapsed()
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish() % 10_000
}
