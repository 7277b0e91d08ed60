//! One contract, two registries: every case runs unchanged against the embedded store and
//! against a real ZooKeeper started by the harness.

mod support;

use std::time::Duration;

use capstan_registry::cache::{CacheEvent, CacheState, TreeCache, TreeView};
use capstan_registry::recipes::election::LeaderElection;
use capstan_registry::recipes::latch::Latch;
use capstan_registry::{
    CreateMode, CreateOptions, EmbeddedStore, Error, EventKind, Op, OpResult, Registry,
    SessionEvent, ZkSettings,
};

const WAIT: Duration = Duration::from_secs(20);

/// How a case reaches its registry.
enum Backend {
    Embedded(EmbeddedStore),
    ZooKeeper(String),
}

struct Fixture {
    backend: Backend,
    namespace: String,
}

impl Fixture {
    fn embedded() -> Fixture {
        Fixture {
            backend: Backend::Embedded(EmbeddedStore::in_memory()),
            namespace: "contract".into(),
        }
    }

    fn zookeeper(connect: String, case: &str) -> Fixture {
        Fixture {
            backend: Backend::ZooKeeper(connect),
            namespace: format!("contract-{case}"),
        }
    }

    /// A new session on the case's namespace.
    async fn registry(&self) -> Registry {
        match &self.backend {
            Backend::Embedded(store) => Registry::embedded(store, &self.namespace).await,
            Backend::ZooKeeper(connect) => {
                Registry::zookeeper(ZkSettings {
                    connect: connect.parse().expect("connect"),
                    namespace: self.namespace.clone(),
                    digest: None,
                    session_timeout: Duration::from_secs(6),
                })
                .await
            }
        }
        .expect("registry")
    }

    /// Ends `r`'s session as a server-side expiry would.
    async fn expire(&self, r: &Registry) {
        match &self.backend {
            Backend::Embedded(_) => r.expire_session().await.expect("expire"),
            Backend::ZooKeeper(connect) => {
                // Take over the session from a second client, then close it there: the
                // server ends the session and the first client learns it has expired. The
                // first client may win the connection back before the close is sent, so
                // repeat until the first client reports the expiry.
                let mut events = r.session_events();
                let client = r.zookeeper_client().expect("zk client");
                let session = client.session().clone();
                drop(client);
                for attempt in 1..=10 {
                    match zookeeper_client::Client::connector()
                        .with_session(session.clone())
                        .with_session_timeout(Duration::from_secs(10))
                        .connect(connect)
                        .await
                    {
                        Ok(thief) => drop(thief),
                        Err(zookeeper_client::Error::SessionExpired) => {}
                        Err(e) => eprintln!("steal attempt {attempt}: {e}"),
                    }
                    let expired = tokio::time::timeout(Duration::from_secs(3), async {
                        while let Some(e) = events.next().await {
                            if e == SessionEvent::Expired {
                                return true;
                            }
                        }
                        false
                    })
                    .await;
                    if matches!(expired, Ok(true)) {
                        return;
                    }
                }
                panic!("could not expire the session");
            }
        }
    }
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn nodes_crud_versions_and_stats(f: &Fixture) {
    let r = f.registry().await;
    assert_eq!(
        r.create("/job", b"cfg", CreateMode::Persistent)
            .await
            .expect("create"),
        "/job"
    );
    let (data, stat) = r.get("/job").await.expect("get");
    assert_eq!(data, b"cfg");
    assert_eq!(
        (stat.version, stat.num_children, stat.ephemeral_owner),
        (0, 0, 0)
    );
    assert!(stat.ctime > 0 && stat.mtime == stat.ctime);
    assert!(matches!(
        r.create("/job", b"", CreateMode::Persistent).await,
        Err(Error::NodeExists(p)) if p == "/job"
    ));
    assert!(matches!(
        r.create("/missing/child", b"", CreateMode::Persistent)
            .await,
        Err(Error::NoNode(_))
    ));
    let created = r
        .create_with(
            "/deep/er/node",
            b"x",
            CreateOptions {
                mode: CreateMode::Persistent,
                create_parents: true,
            },
        )
        .await
        .expect("create with parents");
    assert_eq!(created, "/deep/er/node");
    assert_eq!(r.get("/deep/er").await.expect("parent").0, b"");

    let stat = r.set("/job", b"v1", Some(0)).await.expect("set");
    assert_eq!(stat.version, 1);
    assert!(matches!(
        r.set("/job", b"v2", Some(0)).await,
        Err(Error::BadVersion(_))
    ));
    assert!(matches!(
        r.delete("/job", Some(0)).await,
        Err(Error::BadVersion(_))
    ));
    r.create("/job/a", b"", CreateMode::Persistent)
        .await
        .expect("child a");
    r.create("/job/b", b"", CreateMode::Persistent)
        .await
        .expect("child b");
    let mut children = r.children("/job").await.expect("children");
    children.sort();
    assert_eq!(children, ["a", "b"]);
    assert_eq!(
        r.exists("/job")
            .await
            .expect("exists")
            .map(|s| s.num_children),
        Some(2)
    );
    assert!(matches!(
        r.delete("/job", None).await,
        Err(Error::NotEmpty(_))
    ));
    r.delete_recursive("/job").await.expect("delete recursive");
    assert_eq!(r.exists("/job").await.expect("exists"), None);
    assert!(matches!(r.get("/job").await, Err(Error::NoNode(p)) if p == "/job"));
    r.close().await;
}

async fn sequential_and_ephemeral_nodes(f: &Fixture) {
    let r = f.registry().await;
    r.create("/latch", b"", CreateMode::Persistent)
        .await
        .expect("latch");
    let mut names = Vec::new();
    for _ in 0..3 {
        names.push(
            r.create(
                "/latch/_c_1234-latch-",
                b"",
                CreateMode::EphemeralSequential,
            )
            .await
            .expect("sequential"),
        );
    }
    let seqs: Vec<u64> = names
        .iter()
        .map(|n| {
            let digits = n.rsplit("latch-").next().expect("suffix");
            assert_eq!(digits.len(), 10, "{n}");
            digits.parse().expect("number")
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let (_, stat) = r.get(&names[0]).await.expect("get");
    assert_eq!(stat.ephemeral_owner, r.session_id());
    assert!(matches!(
        r.create(&format!("{}/child", names[0]), b"", CreateMode::Persistent)
            .await,
        Err(Error::NoChildrenForEphemerals(_))
    ));
    r.close().await;
    let other = f.registry().await;
    assert!(
        other.children("/latch").await.expect("children").is_empty(),
        "ephemerals outlived their session"
    );
    other.close().await;
}

async fn multi_is_all_or_nothing(f: &Fixture) {
    let r = f.registry().await;
    r.create("/m", b"", CreateMode::Persistent)
        .await
        .expect("m");
    let err = r
        .multi(vec![
            Op::Create {
                path: "/m/a".into(),
                data: b"1".to_vec(),
                mode: CreateMode::Persistent,
            },
            Op::Set {
                path: "/m".into(),
                data: b"changed".to_vec(),
                version: None,
            },
            Op::Check {
                path: "/m".into(),
                version: 7,
            },
        ])
        .await
        .expect_err("check must fail");
    assert!(matches!(err, Error::MultiFailed { index: 2, .. }), "{err}");
    assert_eq!(r.exists("/m/a").await.expect("exists"), None);
    assert_eq!(r.get("/m").await.expect("m").0, b"");

    let results = r
        .multi(vec![
            Op::Check {
                path: "/m".into(),
                version: 0,
            },
            // -1 checks existence only, as in ZooKeeper.
            Op::Check {
                path: "/".into(),
                version: -1,
            },
            Op::Create {
                path: "/m/a".into(),
                data: b"1".to_vec(),
                mode: CreateMode::Persistent,
            },
            Op::Create {
                path: "/m/a/b".into(),
                data: b"2".to_vec(),
                mode: CreateMode::Persistent,
            },
            Op::Set {
                path: "/m".into(),
                data: b"done".to_vec(),
                version: Some(0),
            },
            Op::Delete {
                path: "/m/a/b".into(),
                version: None,
            },
            Op::Create {
                path: "/m/s-".into(),
                data: b"3".to_vec(),
                mode: CreateMode::PersistentSequential,
            },
        ])
        .await
        .expect("multi");
    assert_eq!(results[0], OpResult::Check);
    assert_eq!(results[1], OpResult::Check);
    assert_eq!(results[2], OpResult::Create("/m/a".into()));
    assert!(matches!(results[4], OpResult::Set(s) if s.version == 1));
    assert_eq!(results[5], OpResult::Delete);
    // A sequential create answers with the name it got, relative to the namespace.
    assert!(
        matches!(&results[6], OpResult::Create(p) if p.len() == "/m/s-".len() + 10
            && p.starts_with("/m/s-")
            && p["/m/s-".len()..].bytes().all(|b| b.is_ascii_digit())),
        "{:?}",
        results[6]
    );
    assert_eq!(r.get("/m").await.expect("m").0, b"done");
    assert_eq!(r.exists("/m/a/b").await.expect("exists"), None);
    r.close().await;
}

async fn one_shot_watches_fire(f: &Fixture) {
    let watcher = f.registry().await;
    let writer = f.registry().await;
    writer
        .create("/w", b"0", CreateMode::Persistent)
        .await
        .expect("w");

    let (_, _, data_watch) = watcher.get_and_watch("/w").await.expect("get+watch");
    let (_, child_watch) = watcher
        .children_and_watch("/w")
        .await
        .expect("children+watch");
    let (missing, created_watch) = watcher
        .exists_and_watch("/w/new")
        .await
        .expect("exists+watch");
    assert!(missing.is_none());

    writer.set("/w", b"1", None).await.expect("set");
    let e = within("data watch", data_watch.changed()).await;
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventKind::NodeDataChanged, "/w")
    );

    writer
        .create("/w/new", b"", CreateMode::Persistent)
        .await
        .expect("child");
    let e = within("exists watch", created_watch.changed()).await;
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventKind::NodeCreated, "/w/new")
    );
    let e = within("child watch", child_watch.changed()).await;
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventKind::NodeChildrenChanged, "/w")
    );

    let (_, _, delete_watch) = watcher.get_and_watch("/w/new").await.expect("get+watch");
    writer.delete("/w/new", None).await.expect("delete");
    let e = within("delete watch", delete_watch.changed()).await;
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventKind::NodeDeleted, "/w/new")
    );
    watcher.close().await;
    writer.close().await;
}

async fn recursive_watch_streams_changes(f: &Fixture) {
    let r = f.registry().await;
    r.create("/tree", b"", CreateMode::Persistent)
        .await
        .expect("tree");
    r.create("/treeish", b"", CreateMode::Persistent)
        .await
        .expect("sibling");
    let mut stream = r.watch_recursive("/tree").await.expect("watch");
    let writer = f.registry().await;
    writer
        .create("/tree/a", b"", CreateMode::Persistent)
        .await
        .expect("a");
    writer
        .set("/treeish", b"not mine", None)
        .await
        .expect("sibling");
    writer.set("/tree/a", b"1", None).await.expect("set a");
    writer
        .create("/tree/a/b", b"", CreateMode::Ephemeral)
        .await
        .expect("b");
    writer.delete("/tree/a/b", None).await.expect("delete b");
    let mut seen = Vec::new();
    for _ in 0..4 {
        let e = within("recursive event", stream.next())
            .await
            .expect("event");
        seen.push((e.kind, e.path));
    }
    assert_eq!(
        seen,
        [
            (EventKind::NodeCreated, "/tree/a".to_owned()),
            (EventKind::NodeDataChanged, "/tree/a".to_owned()),
            (EventKind::NodeCreated, "/tree/a/b".to_owned()),
            (EventKind::NodeDeleted, "/tree/a/b".to_owned()),
        ]
    );
    r.close().await;
    writer.close().await;
}

async fn expiry_removes_ephemerals_and_fires_watches(f: &Fixture) {
    let owner = f.registry().await;
    let observer = f.registry().await;
    let mut states = owner.session_events();
    owner
        .create("/instances", b"", CreateMode::Persistent)
        .await
        .expect("parent");
    owner
        .create("/instances/a", b"me", CreateMode::Ephemeral)
        .await
        .expect("ephemeral");
    let (stat, gone) = observer
        .exists_and_watch("/instances/a")
        .await
        .expect("watch");
    assert!(stat.is_some());
    let (_, children_changed) = observer
        .children_and_watch("/instances")
        .await
        .expect("watch");

    f.expire(&owner).await;

    let e = within("deletion of the ephemeral node", gone.changed()).await;
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventKind::NodeDeleted, "/instances/a")
    );
    let e = within("child change", children_changed.changed()).await;
    assert_eq!(e.kind, EventKind::NodeChildrenChanged);
    assert_eq!(observer.exists("/instances/a").await.expect("exists"), None);
    loop {
        match within("Expired", states.next()).await {
            Some(SessionEvent::Expired) => break,
            Some(_) => continue,
            None => panic!("session events ended before Expired"),
        }
    }
    observer.close().await;
    owner.close().await;
}

async fn bad_input_is_an_error_not_a_panic(f: &Fixture) {
    let r = f.registry().await;
    for bad in [
        "",
        "relative",
        "/trailing/",
        "//double",
        "/a/../b",
        "/nul\0",
    ] {
        assert!(
            matches!(
                r.create(bad, b"", CreateMode::Persistent).await,
                Err(Error::InvalidPath { .. })
            ),
            "{bad:?}"
        );
        assert!(
            matches!(r.get(bad).await, Err(Error::InvalidPath { .. })),
            "{bad:?}"
        );
    }
    let huge = vec![7u8; 2 * 1024 * 1024];
    assert!(matches!(
        r.create("/huge", &huge, CreateMode::Persistent).await,
        Err(Error::DataTooLarge { .. })
    ));
    r.create("/ok", b"", CreateMode::Persistent)
        .await
        .expect("ok");
    assert!(matches!(
        r.set("/ok", &huge, None).await,
        Err(Error::DataTooLarge { .. })
    ));
    assert!(matches!(
        r.multi(vec![Op::Create {
            path: "bad".into(),
            data: vec![],
            mode: CreateMode::Persistent
        }])
        .await,
        Err(Error::MultiFailed { index: 0, .. })
    ));
    r.close().await;
}

async fn namespaces_are_isolated(f: &Fixture) {
    let r = f.registry().await;
    r.create("/only-here", b"", CreateMode::Persistent)
        .await
        .expect("create");
    let other = match &f.backend {
        Backend::Embedded(store) => Registry::embedded(store, "elsewhere").await.expect("other"),
        Backend::ZooKeeper(connect) => Registry::zookeeper(ZkSettings {
            connect: connect.parse().expect("connect"),
            namespace: format!("{}-elsewhere", f.namespace),
            digest: None,
            session_timeout: Duration::from_secs(6),
        })
        .await
        .expect("other"),
    };
    assert_eq!(other.exists("/only-here").await.expect("exists"), None);
    assert!(other.children("/").await.expect("root").is_empty());
    r.close().await;
    other.close().await;
}

/// N sessions contend for one latch over many rounds: never two holders at once, and
/// everyone gets through (no lost wake-ups).
async fn latch_never_has_two_holders(f: &Fixture) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const PARTICIPANTS: usize = 6;
    const ROUNDS: usize = 25;
    let holders = Arc::new(AtomicUsize::new(0));
    let acquired = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..PARTICIPANTS {
        let r = f.registry().await;
        let holders = holders.clone();
        let acquired = acquired.clone();
        tasks.push(tokio::spawn(async move {
            let latch = Latch::new(r.clone(), "/leader/election/latch");
            for _ in 0..ROUNDS {
                let guard = latch.acquire().await.expect("acquire");
                assert_eq!(
                    holders.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two holders at once"
                );
                acquired.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                holders.fetch_sub(1, Ordering::SeqCst);
                guard.release().await.expect("release");
            }
            r.close().await;
        }));
    }
    for t in tasks {
        within("latch rounds", t)
            .await
            .expect("participant panicked");
    }
    assert_eq!(acquired.load(Ordering::SeqCst), PARTICIPANTS * ROUNDS);
    let r = f.registry().await;
    assert!(
        r.children("/leader/election/latch")
            .await
            .expect("latch")
            .is_empty()
    );
    r.close().await;
}

/// The leader's session expires: the next candidate leads, and the old leader learns it
/// lost leadership.
async fn leadership_moves_when_the_leader_expires(f: &Fixture) {
    let a = f.registry().await;
    let b = f.registry().await;
    let leader = LeaderElection::new(a.clone(), "/job/leader/election/latch")
        .lead()
        .await
        .expect("a leads");
    let election_b = LeaderElection::new(b.clone(), "/job/leader/election/latch");
    let waiting = tokio::spawn(async move { election_b.lead().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "b leads while a holds the latch");
    f.expire(&a).await;
    within("a to notice", leader.lost()).await;
    let b_leads = within("b to lead", waiting)
        .await
        .expect("task")
        .expect("b leads");
    b_leads.resign().await.expect("resign");
    a.close().await;
    b.close().await;
}

/// Waits until `cond` holds on the cache.
async fn eventually(cache: &TreeCache, what: &str, cond: impl Fn(&TreeView<'_>) -> bool) {
    let mut generation = cache.generation();
    within(what, async {
        while !cache.read(&cond) {
            generation.changed().await.expect("cache alive");
        }
    })
    .await;
}

async fn tree_cache_loads_and_follows(f: &Fixture) {
    let writer = f.registry().await;
    for job in ["orderJob", "billingJob"] {
        for p in ["config", "servers/10.0.0.1", "sharding/0/instance"] {
            writer
                .create_with(
                    &format!("/{job}/{p}"),
                    job.as_bytes(),
                    CreateOptions {
                        mode: CreateMode::Persistent,
                        create_parents: true,
                    },
                )
                .await
                .expect("seed");
        }
    }
    let reader = f.registry().await;
    let cache = TreeCache::start(reader.clone(), "/").await.expect("cache");
    assert_eq!(cache.state(), CacheState::Live);
    cache.read(|v| {
        assert_eq!(v.children("/"), ["billingJob", "orderJob"]);
        assert_eq!(v.children("/orderJob"), ["config", "servers", "sharding"]);
        assert_eq!(
            &*v.get("/orderJob/config").expect("config").data,
            b"orderJob"
        );
        assert_eq!(v.subtree("/orderJob").count(), 7);
    });

    writer
        .set("/orderJob/config", b"v2", None)
        .await
        .expect("set");
    eventually(&cache, "data change", |v| {
        v.get("/orderJob/config").is_some_and(|n| &*n.data == b"v2")
    })
    .await;
    writer
        .create("/orderJob/instances", b"", CreateMode::Persistent)
        .await
        .expect("instances");
    let owner = f.registry().await;
    owner
        .create(
            "/orderJob/instances/10.0.0.1@-@42",
            b"jobInstanceId: x",
            CreateMode::Ephemeral,
        )
        .await
        .expect("instance");
    eventually(&cache, "ephemeral instance", |v| {
        v.children("/orderJob/instances").len() == 1
    })
    .await;
    f.expire(&owner).await;
    eventually(&cache, "instance gone with its session", |v| {
        v.children("/orderJob/instances").is_empty()
    })
    .await;
    writer
        .delete_recursive("/billingJob")
        .await
        .expect("delete");
    eventually(&cache, "subtree removal", |v| {
        v.children("/") == ["orderJob"]
    })
    .await;
    cache.read(|v| assert!(v.subtree("/billingJob").next().is_none()));
    drop(cache);
    reader.close().await;
    writer.close().await;
    owner.close().await;
}

/// Changes to quiet paths show in the view and the generation, and are neither broadcast nor
/// counted in the loud generation.
async fn tree_cache_quiet_paths_are_not_broadcast(f: &Fixture) {
    let writer = f.registry().await;
    writer
        .create("/q", b"", CreateMode::Persistent)
        .await
        .expect("root");
    let reader = f.registry().await;
    let cache =
        TreeCache::start_with_quiet(reader.clone(), "/q", Some(|p| p.ends_with("/running")))
            .await
            .expect("cache");
    let mut events = cache.subscribe();
    let before = cache.current_generation();
    let loud_before = cache.current_loud_generation();
    writer
        .create("/q/running", b"me", CreateMode::Ephemeral)
        .await
        .expect("quiet");
    eventually(&cache, "quiet node", |v| v.get("/q/running").is_some()).await;
    assert!(
        cache.current_generation() > before,
        "the generation counts quiet changes"
    );
    assert!(
        cache.read(|v| v.get("/q/running").is_some_and(|n| n.data.is_empty())),
        "a quiet node is mirrored for its presence, not its data"
    );
    assert_eq!(cache.quiet_nodes(), 1);
    assert_eq!(
        cache.current_loud_generation(),
        loud_before,
        "the loud generation does not count quiet changes"
    );
    writer
        .create("/q/loud", b"", CreateMode::Persistent)
        .await
        .expect("loud");
    // The first event a subscriber hears is the loud one: the quiet one was never sent.
    let first = within("loud event", events.recv()).await.expect("event");
    assert_eq!(first, CacheEvent::Upserted("/q/loud".into()));
    assert!(
        cache.current_loud_generation() > loud_before,
        "the loud generation counts loud changes"
    );
    writer
        .delete("/q/running", None)
        .await
        .expect("delete quiet");
    writer.delete("/q/loud", None).await.expect("delete loud");
    let next = within("loud removal", events.recv()).await.expect("event");
    assert_eq!(next, CacheEvent::Removed("/q/loud".into()));
    // The quiet removal was applied before the loud one that came after it.
    assert_eq!(cache.quiet_nodes(), 0);
    drop(cache);
    reader.close().await;
    writer.close().await;
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&super::Fixture::embedded()).await;
                }
            )*
        }

        /// All cases, one after another, on one ZooKeeper server (each in its own
        /// namespace): one JVM start instead of one per case.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn zookeeper() {
            let zk = support::ZooKeeper::start();
            $(
                eprintln!("zookeeper: {}", stringify!($case));
                $case(&Fixture::zookeeper(zk.connect(), stringify!($case))).await;
            )*
        }
    };
}

contract!(
    nodes_crud_versions_and_stats,
    sequential_and_ephemeral_nodes,
    multi_is_all_or_nothing,
    one_shot_watches_fire,
    recursive_watch_streams_changes,
    expiry_removes_ephemerals_and_fires_watches,
    bad_input_is_an_error_not_a_panic,
    namespaces_are_isolated,
    latch_never_has_two_holders,
    leadership_moves_when_the_leader_expires,
    tree_cache_loads_and_follows,
    tree_cache_quiet_paths_are_not_broadcast,
);
