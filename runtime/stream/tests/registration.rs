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
