//! A session whose last handle is dropped ends, even when its runtime is shutting down.

use capstan_registry::{CreateMode, EmbeddedStore, Registry};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn dropped_sessions_end_even_at_runtime_shutdown() {
    let store = EmbeddedStore::in_memory();
    let rt = runtime();
    rt.block_on(async {
        let r = Registry::embedded(&store, "ns").await.expect("registry");
        r.create("/owned", b"", CreateMode::Ephemeral)
            .await
            .expect("ephemeral");
        // Dropped without close(): ending it is left to a background task...
        drop(r);
    });
    // ...which never runs: the runtime goes away first. (This used to recurse until the
    // stack overflowed.)
    drop(rt);
    runtime().block_on(async {
        let r = Registry::embedded(&store, "ns").await.expect("registry");
        assert_eq!(r.exists("/owned").await.expect("exists"), None);
        r.close().await;
    });
}
