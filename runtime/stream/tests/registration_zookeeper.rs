//! A pipeline registered on a real ZooKeeper stops while its connection is lost (another
//! process may lead once its session times out, and two runners of one data directory
//! would corrupt it), and runs again when the same session comes back still leading.

#[path = "../../registry/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use capstan_stream::exec::{Pipeline, StartMode, State};
use capstan_stream::registration::register;

const SPEC: &str = "name: temps\nsources: [{name: readings}]\nsteps:\n  - key_by: sensor\n  - aggregate: {ops: {n: count}}\nrun:\n  partitions: 2\n  checkpoint_interval_ms: 100\n  inputs:\n    readings: {generator: {kind: sensors, keys: 9, rate: 3000}}\n  sink: memory\n";

async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The leader node names `instance`.
async fn assert_leads(registry: &capstan_registry::Registry, instance: &str) {
    let (leader, _) = registry
        .get("/temps/leader/election/instance")
        .await
        .expect("leader");
    assert_eq!(leader, instance.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_zookeeper_stops_and_runs_again_when_its_session_returns() {
    let mut zk = support::ZooKeeper::start();
    let registry = zk
        // Long enough to outlive the server's restart: the same session comes back.
        .session("streams", Duration::from_secs(30))
        .await;
    let dir = tempfile::tempdir().expect("dir");
    let p = Pipeline::start(SPEC, dir.path(), StartMode::Standby).expect("standby");
    let instance = "127.0.0.1@-@1".to_owned();
    let _follow = register(
        registry.clone(),
        p.clone(),
        "127.0.0.1".into(),
        instance.clone(),
    )
    .await
    .expect("register");
    until("running as leader", Duration::from_secs(10), || {
        p.status().state == State::Running
    })
    .await;
    assert_leads(&registry, &instance).await;

    zk.stop();
    until("stopped while cut off", Duration::from_secs(10), || {
        p.status().state == State::Standby
    })
    .await;
    // Still stopped a while later: nothing restarts it without the registry.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(p.status().state, State::Standby);

    zk.restart();
    until("running again", Duration::from_secs(60), || {
        p.status().state == State::Running
    })
    .await;
    assert_leads(&registry, &instance).await;
    p.stop();
    registry.close().await;
}
