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
