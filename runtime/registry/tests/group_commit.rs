//! Group commit in the embedded registry: writers that give up (their task aborted, a
//! timeout) while a batch is being committed take nobody else's write with them; and a
//! session's end is one step, however its commit is scheduled.

use std::time::Duration;

use capstan_registry::{CreateMode, Durability, EmbeddedStore, Registry};

/// A directory of this test process for a store file, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("capstan-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        Scratch(dir)
    }

    fn store_file(&self) -> std::path::PathBuf {
        self.0.join("registry.db")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_writer_fails_no_other_write_of_its_batch() {
    let dir = Scratch::new("group-commit");
    // A file-backed store, so a commit awaits SQLite and there is a "mid-commit" to abandon.
    let store = EmbeddedStore::open(&dir.store_file(), Durability::ProcessCrash)
        .await
        .expect("open");
    let r = Registry::embedded(&store, "batch").await.expect("registry");
    r.create("/n", b"", CreateMode::Persistent)
        .await
        .expect("parent");
    let mut kept_total = 0;
    for round in 0..60u64 {
        let mut kept = Vec::new();
        let mut abandoned = Vec::new();
        for i in 0..24u64 {
            let r = r.clone();
            let task = tokio::spawn(async move {
                r.create(&format!("/n/r{round}-{i}"), b"x", CreateMode::Persistent)
                    .await
            });
            if i % 2 == 0 {
                abandoned.push(task);
            } else {
                kept.push(task);
            }
        }
        // Abandon half of them at varying points of the commit in flight.
        tokio::time::sleep(Duration::from_micros(50 * (round % 8))).await;
        for task in &abandoned {
            task.abort();
        }
        for task in kept {
            task.await
                .expect("task")
                .expect("a kept write must succeed");
            kept_total += 1;
        }
    }
    // The store still takes writes, and every kept write is there.
    r.create("/n/after", b"", CreateMode::Persistent)
        .await
        .expect("write after abandoned ones");
    let children = r.children("/n").await.expect("children");
    let kept_seen = children
        .iter()
        .filter(|c| {
            c.rsplit_once('-')
                .and_then(|(_, i)| i.parse::<u64>().ok())
                .is_some_and(|i| i % 2 == 1)
        })
        .count();
    assert_eq!(kept_seen, kept_total);
    r.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_session_cannot_write_once_its_ephemerals_are_gone() {
    let store = EmbeddedStore::in_memory();
    for round in 0..50 {
        let doomed = Registry::embedded(&store, "expiry").await.expect("session");
        let watcher = Registry::embedded(&store, "expiry").await.expect("session");
        let marker = format!("/marker-{round}");
        let after = format!("/after-{round}");
        doomed
            .create(&marker, b"", CreateMode::Ephemeral)
            .await
            .expect("ephemeral");
        let (_, watch) = watcher.exists_and_watch(&marker).await.expect("watch");
        // React to the deletion as fast as possible, writing as the expiring session (what
        // an instance re-registering itself would do).
        let reacting = tokio::spawn({
            let doomed = doomed.clone();
            let after = after.clone();
            async move {
                watch.changed().await;
                doomed.create(&after, b"", CreateMode::Ephemeral).await
            }
        });
        doomed.expire_session().await.expect("expire");
        let written = reacting.await.expect("task");
        assert!(
            written.is_err(),
            "round {round}: an expired session wrote {after}"
        );
        assert!(
            watcher.exists(&after).await.expect("exists").is_none(),
            "round {round}: a node of an expired session outlived it"
        );
        watcher.close().await;
    }
}

/// A committer spawned on a runtime that shuts down before running it must not leave the
/// store waiting for it: the next writer, on another runtime, gets its write through.
#[test]
fn a_committer_lost_with_its_runtime_does_not_block_the_store() {
    let dir = Scratch::new("lost-committer");
    // A file-backed store: the committer's first poll (in the writer) goes as far as
    // SQLite's first answer, and the rest of the commit is left to the committer's task.
    // (An in-memory commit would be over in that first poll, with no task to lose.) The
    // store is opened on a runtime that outlives the test's two.
    let home = tokio::runtime::Runtime::new().expect("runtime");
    let store = home
        .block_on(EmbeddedStore::open(
            &dir.store_file(),
            Durability::ProcessCrash,
        ))
        .expect("open");
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    first.block_on(async {
        let r = Registry::embedded(&store, "lost").await.expect("registry");
        // Poll a write once: it queues itself and starts the committer, whose task this
        // single-threaded runtime has not run yet; then give the write up. On a loaded
        // machine SQLite's worker thread can answer each step before the writer's poll
        // looks again, and the whole commit ends in that poll, leaving no task to lose
        // (seen once in `make test`): then another write tries again, a bounded number
        // of times.
        for i in 0..50 {
            let path = format!("/a{i}");
            let mut write = std::pin::pin!(r.create(&path, b"", CreateMode::Persistent));
            let pending = tokio::select! {
                biased;
                _ = &mut write => false,
                () = std::future::ready(()) => true,
            };
            if pending {
                return;
            }
        }
        panic!("50 writes each ended in their first poll: no committer task was left to lose");
    });
    // The committer task goes with the runtime, never polled.
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    second.block_on(async {
        // Opening the session writes too (the namespace's root): all of it is bounded.
        let everything = async {
            let r = Registry::embedded(&store, "lost").await.expect("registry");
            r.create("/b", b"", CreateMode::Persistent)
                .await
                .expect("write");
            r.close().await;
        };
        tokio::time::timeout(Duration::from_secs(10), everything)
            .await
            .expect("writes after the lost committer must not hang");
    });
    drop(store);
    drop(home);
}

/// A write that needs no disk (an ephemeral node under a parent: every fire's `running`
/// marker) is committed, applied and answered within the writer's own first poll when no
/// commit is under way: no runtime thread has to wake up for a committer task first. On a
/// single-threaded runtime, so that a committer task could not have run meanwhile (and the
/// one of the write before has stood down: it does so in the poll that answers).
#[tokio::test]
async fn a_write_without_disk_is_answered_in_its_first_poll() {
    let dir = Scratch::new("first-poll");
    let store = EmbeddedStore::open(&dir.store_file(), Durability::ProcessCrash)
        .await
        .expect("open");
    let r = Registry::embedded(&store, "first-poll")
        .await
        .expect("registry");
    r.create("/job", b"", CreateMode::Persistent)
        .await
        .expect("parent");
    let mut write = std::pin::pin!(r.create("/job/running", b"me", CreateMode::Ephemeral));
    let noop = &mut std::task::Context::from_waker(std::task::Waker::noop());
    match std::future::Future::poll(write.as_mut(), noop) {
        std::task::Poll::Ready(created) => assert_eq!(created.expect("create"), "/job/running"),
        std::task::Poll::Pending => panic!("an ephemeral create waited for a committer task"),
    }
    assert!(r.exists("/job/running").await.expect("exists").is_some());
    r.close().await;
}
