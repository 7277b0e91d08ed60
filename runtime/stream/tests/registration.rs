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
    // A disabled server (what ElasticJob consoles can do) runs nothing: with no other
    // process registered, the pipeline stops and nobody leads; enabled again, it runs
    // from its checkpoint.
    registry
        .set("/temps/servers/10.0.0.7", b"DISABLED", None)
        .await
        .expect("disable");
    until("stopped by disable", || p.status().state == State::Standby).await;
    let t = Instant::now();
    while text(&registry, "/temps/leader/election/instance")
        .await
        .is_some()
    {
        assert!(t.elapsed() < Duration::from_secs(10), "still leads");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
/// requests alone. When the leader's server is disabled, or its session ends, the other
/// takes over from the leader's last checkpoint, and the items name it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_leaders_server_is_disabled_or_its_session_ends() {
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
    // The leader's server is disabled (an operator moving work off a host): it stops,
    // gives up leading, and the standby runs on from the last checkpoint.
    hand_over(&r1, &p1, &p2, &i2, || async {
        r1.set("/temps/servers/10.0.0.1", b"DISABLED", None)
            .await
            .expect("disable");
    })
    .await;
    // Enabled again, the first stands by: the second leads now.
    r1.set("/temps/servers/10.0.0.1", b"", None)
        .await
        .expect("enable");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(p1.status().state, State::Standby);
    assert_eq!(
        text(&r1, "/temps/leader/election/instance").await,
        Some(i2.clone())
    );

    // The second's session ends (a process killed, or cut off past its timeout): it
    // stops, and the first runs on from the last checkpoint.
    hand_over(&r1, &p2, &p1, &i1, || async {
        r2.expire_session().await.expect("expire");
    })
    .await;
    p2.stop();
    p1.stop();
}

/// Does `what` to the leader `from`, and checks that it stops and that `to` (instance
/// `to_instance`) takes over from the checkpoint `from` made last: the leader node and
/// the items name `to`, they run, and its checkpoints go on from `from`'s last.
async fn hand_over<F: std::future::Future<Output = ()>>(
    r: &Registry,
    from: &Pipeline,
    to: &Pipeline,
    to_instance: &str,
    what: impl FnOnce() -> F,
) {
    let made = from.status().checkpoints.last().map_or(0, |c| c.id);
    until("checkpoints", || {
        from.status()
            .checkpoints
            .last()
            .is_some_and(|c| c.id >= made + 3)
    })
    .await;
    // What `to` checkpointed when it ran before, if it did.
    let own = to.status().checkpoints.last().map_or(0, |c| c.id);
    what().await;
    until("the leader stopped", || {
        from.status().state == State::Standby
    })
    .await;
    let last = from.status().checkpoints.last().map_or(0, |c| c.id);
    until("the standby runs", || to.status().state == State::Running).await;
    let t = Instant::now();
    while text(r, "/temps/sharding/0/instance").await.as_deref() != Some(to_instance) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "items not reassigned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        text(r, "/temps/leader/election/instance").await.as_deref(),
        Some(to_instance)
    );
    until("a checkpoint after the leader's", || {
        to.status().checkpoints.last().is_some_and(|c| c.id > last)
    })
    .await;
    // It resumed the leader's last checkpoint, not one of its own nor the beginning: the
    // first it made after taking over follows the leader's last.
    let ids: Vec<u64> = to.status().checkpoints.iter().map(|c| c.id).collect();
    assert!(
        ids.iter().all(|id| *id <= own || *id > last) && ids.contains(&(last + 1)),
        "checkpoints {ids:?}: its own up to {own}, the leader's up to {last}"
    );
    assert!(
        r.exists("/temps/sharding/1/running")
            .await
            .expect("exists")
            .is_some(),
        "the new leader's items run"
    );
}
