//! Embedded durability: a child process writes and reports each acknowledged write; the
//! test kills it with SIGKILL at a random moment, reopens the store, and checks that no
//! acknowledged write is missing and that the tree is consistent.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use capstan_registry::{CreateMode, Durability, EmbeddedStore, Registry};

const CHILD_ENV: &str = "CAPSTAN_DURABILITY_CHILD";

/// In the child process: write until killed. A no-op in a normal test run.
#[tokio::test]
async fn durability_child() {
    let Ok(file) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = EmbeddedStore::open(file.as_ref(), Durability::ProcessCrash)
        .await
        .expect("open");
    let r = Registry::embedded(&store, "durable")
        .await
        .expect("registry");
    let _ = r.create("/items", b"", CreateMode::Persistent).await;
    let start = r.children("/items").await.expect("children").len();
    for i in start.. {
        let p = format!("/items/n{i:06}");
        r.create(&p, i.to_string().as_bytes(), CreateMode::Persistent)
            .await
            .expect("create");
        r.set("/items", i.to_string().as_bytes(), None)
            .await
            .expect("set");
        // Only now is the write acknowledged.
        println!("acked {i}");
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = std::env::temp_dir().join(format!("capstan-durability-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("registry.db");
    let mut last_acked: Option<usize> = None;
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args([
                "durability_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let kill_after = 20 + rand_below(200);
        let stdout = child.stdout.take().expect("stdout");
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            if let Some(i) = line.strip_prefix("acked ") {
                let i: usize = i.parse().expect("number");
                last_acked = Some(i);
                if i >= kill_after + round * 1000 || i > 5000 {
                    break;
                }
            }
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();

        let store = EmbeddedStore::open(&file, Durability::ProcessCrash)
            .await
            .expect("reopen");
        let r = Registry::embedded(&store, "durable")
            .await
            .expect("registry");
        let acked = last_acked.expect("the child acknowledged writes");
        let mut children = r.children("/items").await.expect("children");
        children.sort();
        // Every acknowledged create is there, in order, with its data; at most the one
        // write in flight when the process died may also be there.
        assert!(
            children.len() > acked,
            "round {round}: lost writes: {} <= {acked}",
            children.len()
        );
        assert!(
            children.len() <= acked + 2,
            "round {round}: invented writes"
        );
        for (i, name) in children.iter().enumerate() {
            assert_eq!(name, &format!("n{i:06}"));
            let (data, _) = r.get(&format!("/items/{name}")).await.expect("get");
            assert_eq!(data, i.to_string().as_bytes());
        }
        let (parent, stat) = r.get("/items").await.expect("parent");
        let parent: usize = String::from_utf8(parent)
            .expect("utf8")
            .parse()
            .expect("number");
        assert!(parent >= acked, "round {round}: acknowledged set lost");
        assert_eq!(stat.num_children as usize, children.len());
        r.close().await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn rand_below(n: usize) -> usize {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.subsec_nanos() as usize % n)
}

/// A commit batch is written as a few multi-row statements: each path's last state in
/// the batch is what a reopened store holds, however the batch's writes were ordered, and
/// batches larger than one statement lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stores_each_paths_last_state() {
    use capstan_registry::Op;
    let dir = std::env::temp_dir().join(format!("capstan-batch-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("registry.db");
    let many = 1_234;
    {
        let store = EmbeddedStore::open(&file, Durability::ProcessCrash)
            .await
            .expect("open");
        let r = Registry::embedded(&store, "batch").await.expect("registry");
        // More nodes in one transaction than one statement carries.
        let mut ops = vec![Op::Create {
            path: "/many".into(),
            data: Vec::new(),
            mode: CreateMode::Persistent,
        }];
        ops.extend((0..many).map(|i| Op::Create {
            path: format!("/many/n{i}"),
            data: i.to_string().into_bytes(),
            mode: CreateMode::Persistent,
        }));
        r.multi(ops).await.expect("many");
        // Writes queued in this order, without waiting for one another, share a commit:
        // created, replaced, deleted and re-created, and an ephemeral taking a deleted
        // persistent node's path.
        r.create("/gone", b"", CreateMode::Persistent)
            .await
            .expect("gone");
        let (a, b, c, d, e, f) = tokio::join!(
            r.create("/x", b"first", CreateMode::Persistent),
            r.set("/x", b"second", None),
            r.delete("/x", None),
            r.create("/x", b"last", CreateMode::Persistent),
            r.delete("/gone", None),
            r.create("/gone", b"", CreateMode::Ephemeral),
        );
        a.expect("create");
        b.expect("set");
        c.expect("delete");
        d.expect("re-create");
        e.expect("delete");
        f.expect("ephemeral");
        // Half of the many deleted in one transaction.
        let ops = (0..many)
            .step_by(2)
            .map(|i| Op::Delete {
                path: format!("/many/n{i}"),
                version: None,
            })
            .collect();
        r.multi(ops).await.expect("deletes");
        r.close().await;
    }
    let store = EmbeddedStore::open(&file, Durability::ProcessCrash)
        .await
        .expect("reopen");
    let r = Registry::embedded(&store, "batch").await.expect("registry");
    assert_eq!(r.get("/x").await.expect("x").0, b"last");
    assert!(r.exists("/gone").await.expect("gone").is_none());
    let mut kept = r.children("/many").await.expect("children");
    kept.sort_by_key(|c| c[1..].parse::<u32>().expect("name"));
    let want: Vec<String> = (0..many)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("n{i}"))
        .collect();
    assert_eq!(kept, want);
    assert_eq!(r.get("/many/n1233").await.expect("last").0, b"1233");
    r.close().await;
    let _ = std::fs::remove_dir_all(dir);
}
