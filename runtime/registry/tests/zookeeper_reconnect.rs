//! Real-ZooKeeper behaviour the embedded store has no equivalent for: the server process
//! stopped and started again, and digest ACLs.

mod support;

use std::time::Duration;

use capstan_registry::cache::{CacheState, TreeCache};
use capstan_registry::{CreateMode, CreateOptions, Error, Registry, SessionEvent, ZkSettings};
use support::ZooKeeper;

const WAIT: Duration = Duration::from_secs(30);

fn settings(zk: &ZooKeeper, digest: Option<&str>) -> ZkSettings {
    ZkSettings {
        connect: zk.connect().parse().expect("connect"),
        namespace: "reconnect".into(),
        digest: digest.map(str::to_owned),
        session_timeout: Duration::from_secs(20),
    }
}

async fn next_state(events: &mut capstan_registry::SessionEvents, want: SessionEvent) {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.next().await {
                Some(e) if e == want => return,
                Some(_) => continue,
                None => panic!("session events ended before {want:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {want:?} within {WAIT:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_a_server_restart_and_the_cache_catches_up() {
    let mut zk = ZooKeeper::start();
    let r = Registry::zookeeper(settings(&zk, None))
        .await
        .expect("connect");
    r.create("/job", b"v0", CreateMode::Persistent)
        .await
        .expect("seed");
    let cache = TreeCache::start(r.clone(), "/").await.expect("cache");
    let mut events = r.session_events();

    zk.stop();
    next_state(&mut events, SessionEvent::Suspended).await;
    // Readers keep the last known state.
    cache.read(|v| assert_eq!(&*v.get("/job").expect("cached").data, b"v0"));

    zk.restart();
    next_state(&mut events, SessionEvent::Reconnected).await;
    let writer = Registry::zookeeper(settings(&zk, None))
        .await
        .expect("writer");
    writer
        .set("/job", b"v1", None)
        .await
        .expect("write after restart");
    writer
        .create("/job/child", b"", CreateMode::Persistent)
        .await
        .expect("child");
    let mut generation = cache.generation();
    tokio::time::timeout(WAIT, async {
        loop {
            let caught_up = cache.state() == CacheState::Live
                && cache.read(|v| {
                    v.get("/job").is_some_and(|n| &*n.data == b"v1")
                        && v.children("/job") == ["child"]
                });
            if caught_up {
                return;
            }
            generation.changed().await.expect("cache alive");
        }
    })
    .await
    .expect("the cache caught up after the restart");
    assert_eq!(r.get("/job").await.expect("read").0, b"v1");
    writer.close().await;
    r.close().await;
}

#[tokio::test]
async fn digest_protected_nodes_are_unreadable_without_the_digest() {
    let zk = ZooKeeper::start();
    let owner = Registry::zookeeper(settings(&zk, Some("ops:secret")))
        .await
        .expect("owner");
    owner
        .create_with(
            "/orderJob/config",
            b"cron: 0/5 * * * * ?",
            CreateOptions {
                mode: CreateMode::Persistent,
                create_parents: true,
            },
        )
        .await
        .expect("create");
    let mut anonymous = settings(&zk, None);
    anonymous.namespace = String::new();
    let stranger = Registry::zookeeper(anonymous).await.expect("stranger");
    assert!(matches!(
        stranger.get("/reconnect/orderJob/config").await,
        Err(Error::NoAuth(p)) if p == "/reconnect/orderJob/config"
    ));
    let mut wrong = settings(&zk, Some("ops:wrong"));
    wrong.namespace = String::new();
    let wrong = Registry::zookeeper(wrong)
        .await
        .expect("wrong digest connects");
    assert!(matches!(
        wrong.get("/reconnect/orderJob/config").await,
        Err(Error::NoAuth(_))
    ));
    let friend = Registry::zookeeper(settings(&zk, Some("ops:secret")))
        .await
        .expect("friend");
    assert_eq!(
        friend.get("/orderJob/config").await.expect("read").0,
        b"cron: 0/5 * * * * ?"
    );
    for r in [owner, stranger, wrong, friend] {
        r.close().await;
    }
}
