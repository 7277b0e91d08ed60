//! A pipeline registered on an (embedded) registry as a STREAM job: the nodes any
//! ElasticJob console reads, and control through the registry (the admin API's paused
//! node, a disabled server, a restart request).

use std::time::{Duration, Instant};

use capstan_registry::{Durability, EmbeddedStore, Registry};
use capstan_stream::exec::{Pipeline, StartMode, State};
use capstan_stream::registration::{register, request_restart};

const SPEC: &str = "name: temps\nsources: [{name: readings}]\nsteps:\n  - key_by: sensor\n  - aggregate: {ops: {n: count}}\nrun:\n  partitions: 3\n  inputs:\n    readings: {generator: {kind: sensors, keys: 9, rate: 3000}}\n  sink: memory\n";

async fn text(r: &Registry, path: &str) -> Option<String> {
    r.get(path)
        .await
        .ok()
        .map(|(v, _)| String::from_utf8_lossy(&v).into_owned())
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_pipeline_is_a_stream_job_controlled_through_the_registry() {
    let dir = tempfile::tempdir().expect("dir");
    let store = EmbeddedStore::open(&dir.path().join("registry.db"), Durability::ProcessCrash)
        .await
        .expect("store");
    let registry = Registry::embedded(&store, "ns").await.expect("registry");
    let p = Pipeline::start(SPEC, &dir.path().join("data"), StartMode::Fresh).expect("start");
    let instance = "10.0.0.7@-@1-stream-temps".to_owned();
    let _follow = register(
        registry.clone(),
        p.clone(),
        "10.0.0.7".into(),
        instance.clone(),
    )
    .await
    .expect("register");

    assert_eq!(text(&registry, "/temps").await.as_deref(), Some("STREAM"));
    let config = text(&registry, "/temps/config").await.expect("config");
    assert!(config.contains("shardingTotalCount: 3"), "{config}");
    assert!(
        !config.contains("cron"),
        "a stream job has no schedule: {config}"
    );
    for i in 0..3 {
        assert_eq!(
            text(&registry, &format!("/temps/sharding/{i}/instance"))
                .await
                .as_deref(),
            Some(instance.as_str())
        );
    }
    assert_eq!(
        text(&registry, "/temps/servers/10.0.0.7").await.as_deref(),
        Some("")
    );
    let yaml = text(&registry, &format!("/temps/instances/{instance}"))
        .await
        .expect("instance");
    assert!(yaml.contains("labels: capstan"), "{yaml}");
    assert!(
        registry
            .exists("/temps/sharding/0/running")
            .await
            .expect("exists")
            .is_some()
    );
    // The metrics snapshot is published as JSON.
    let t = Instant::now();
    let metrics = loop {
        if let Some(m) = text(&registry, "/temps/capstan/metrics").await {
            break m;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no metrics snapshot");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let m: serde_json::Value = serde_json::from_str(&metrics).expect("json");
    assert_eq!(m["name"], "temps");

    // The admin API's pause node pauses it; removing it resumes.
    registry
        .create(
            "/temps/paused",
            b"",
            capstan_registry::CreateMode::Persistent,
        )
        .await
        .expect("pause");
    until("paused", || p.status().state == State::Paused).await;
    registry
        .delete("/temps/paused", None)
        .await
        .expect("resume");
    until("resumed", || p.status().state == State::Running).await;
    // A disabled server pauses it too (what ElasticJob consoles can do).
    registry
        .set("/temps/servers/10.0.0.7", b"DISABLED", None)
        .await
        .expect("disable");
    until("paused by disable", || p.status().state == State::Paused).await;
    registry
        .set("/temps/servers/10.0.0.7", b"", None)
        .await
        .expect("enable");
    until("enabled", || p.status().state == State::Running).await;

    // A restart request restarts it from its checkpoint and is consumed.
    request_restart(&registry, "temps").await.expect("request");
    until("restarted", || p.status().restarts == 1).await;
    let t = Instant::now();
    while registry
        .exists("/temps/capstan/restart")
        .await
        .expect("exists")
        .is_some()
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "request not consumed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(request_restart(&registry, "nothing").await.is_err());
    p.stop();
}

/// Two processes register one pipeline with one data directory (two sessions on one
/// store here): one runs it, the other stands by and leaves the leader's nodes and
/// requests alone. When the leader's session ends, the standby takes over from the
/// leader's last checkpoint, and the items name it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_the_leaders_checkpoint_when_its_session_ends() {
    let dir = tempfile::tempdir().expect("dir");
    let store = EmbeddedStore::open(&dir.path().join("registry.db"), Durability::ProcessCrash)
        .await
        .expect("store");
    let data = dir.path().join("data");
    let spec = SPEC.replace(
        "partitions: 3\n",
        "partitions: 3\n  checkpoint_interval_ms: 100\n",
    );
    let mut nodes = Vec::new();
    for n in 1..=2 {
        let registry = Registry::embedded(&store, "ns").await.expect("registry");
        let p = Pipeline::start(&spec, &data, StartMode::Standby).expect("standby");
        assert_eq!(p.status().state, State::Standby);
        let instance = format!("10.0.0.{n}@-@{n}");
        let follow = register(
            registry.clone(),
            p.clone(),
            format!("10.0.0.{n}"),
            instance.clone(),
        )
        .await
        .expect("register");
        nodes.push((registry, p, instance, follow));
    }
    let [(r1, p1, i1, _f1), (r2, p2, i2, _f2)] = <[_; 2]>::try_from(nodes).ok().expect("two");
    // The first to register leads; the second stands by.
    until("the first runs", || p1.status().state == State::Running).await;
    assert_eq!(p2.status().state, State::Standby);
    assert_eq!(
        text(&r2, "/temps/leader/election/instance").await,
        Some(i1.clone())
    );
    assert_eq!(
        text(&r2, "/temps/sharding/2/instance").await,
        Some(i1.clone())
    );
    // Both are instances; a restart request is the leader's to consume.
    assert!(text(&r2, &format!("/temps/instances/{i2}")).await.is_some());
    request_restart(&r2, "temps").await.expect("request");
    until("the leader restarted", || p1.status().restarts == 1).await;
    assert_eq!(p2.status().restarts, 0);
    assert_eq!(p2.status().state, State::Standby);
    until("checkpoints", || {
        p1.status().checkpoints.last().is_some_and(|c| c.id >= 3)
    })
    .await;

    // The leader's session ends (a process killed, or cut off past its timeout): it
    // stops, and the standby runs on from the last checkpoint.
    r1.expire_session().await.expect("expire");
    until("the leader fenced", || p1.status().state == State::Standby).await;
    let last = p1.status().checkpoints.last().map_or(0, |c| c.id);
    until("the standby runs", || p2.status().state == State::Running).await;
    assert_eq!(
        text(&r2, "/temps/leader/election/instance").await,
        Some(i2.clone())
    );
    let t = Instant::now();
    while text(&r2, "/temps/sharding/0/instance").await.as_deref() != Some(i2.as_str()) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "items not reassigned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until("a checkpoint after the leader's", || {
        p2.status().checkpoints.last().is_some_and(|c| c.id > last)
    })
    .await;
    // It resumed the leader's checkpoints, not a run of its own from the beginning.
    let first = p2.status().checkpoints.first().map_or(0, |c| c.id);
    assert!(
        first > last,
        "first checkpoint {first} after the leader's last {last}"
    );
    assert!(
        r2.exists("/temps/sharding/1/running")
            .await
            .expect("exists")
            .is_some(),
        "the new leader's items run"
    );
    p2.stop();
    p1.stop();
}
