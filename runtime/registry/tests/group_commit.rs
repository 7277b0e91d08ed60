//! Group commit in the embedded store: concurrent writers share commits, and a writer
//! cancelled while it commits for others never strands their writes.

use std::time::Duration;

use capstan_registry::{CreateMode, Durability, EmbeddedStore, Registry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_all_land_even_when_some_are_cancelled() {
    let dir = std::env::temp_dir().join(format!("capstan-group-commit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    // A file store: commits await SQLite, so a writer can be cancelled mid-commit.
    let store = EmbeddedStore::open(&dir.join("r.db"), Durability::ProcessCrash)
        .await
        .expect("store");
    let r = Registry::embedded(&store, "ns").await.expect("session");
    r.create("/w", b"", CreateMode::Persistent)
        .await
        .expect("parent");
    for round in 0..20 {
        let mut kept = Vec::new();
        let mut cancelled = Vec::new();
        for i in 0..40 {
            let r = r.clone();
            let task = tokio::spawn(async move {
                r.create(&format!("/w/{round}-{i}"), b"x", CreateMode::Persistent)
                    .await
            });
            if i % 3 == 0 {
                cancelled.push(task);
            } else {
                kept.push((i, task));
            }
        }
        tokio::task::yield_now().await;
        for t in &cancelled {
            t.abort();
        }
        for (i, task) in kept {
            let created = tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .unwrap_or_else(|_| panic!("write {round}-{i} was stranded"))
                .expect("join");
            assert_eq!(created.expect("create"), format!("/w/{round}-{i}"));
        }
    }
    // A cancelled write either happened entirely or not at all; the others all did.
    let children = r.children("/w").await.expect("children");
    assert!(children.len() >= 20 * 26, "{} children", children.len());
    r.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
