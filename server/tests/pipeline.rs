//! `capstan pipeline run` end to end: files in, file out, errors named.

#[path = "../../runtime/registry/tests/support/mod.rs"]
mod support;

use capstan_server::config::{PipelineCommand, PipelineRunArgs};

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../runtime/stream/tests/cases");

#[tokio::test]
async fn run_replays_a_golden_case_into_a_file() {
    let dir = tempfile::tempdir().expect("dir");
    let case = std::path::Path::new(CASES).join("table_table_inner_join");
    let output = dir.path().join("out.jsonl");
    capstan_server::pipeline::run(PipelineCommand::Run(PipelineRunArgs {
        spec: case.join("pipeline.yaml"),
        input: case.join("input.jsonl"),
        output: output.clone(),
    }))
    .await
    .expect("run");
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    };
    let got = parse(&std::fs::read_to_string(&output).expect("output"));
    let want = parse(&std::fs::read_to_string(case.join("expected.jsonl")).expect("expected"));
    assert_eq!(got, want);
    assert!(!output.with_extension("partial").exists());
}

#[tokio::test]
async fn a_bad_spec_or_input_line_is_named() {
    let dir = tempfile::tempdir().expect("dir");
    let spec = dir.path().join("p.yaml");
    std::fs::write(
        &spec,
        "name: p\nsources: [{name: s}]\nsteps: [{filter: 'a >'}]\n",
    )
    .expect("spec");
    let e = capstan_server::pipeline::run(PipelineCommand::Check { spec: spec.clone() })
        .await
        .expect_err("bad spec");
    assert!(e.to_string().contains("steps[0].filter"), "{e}");
    std::fs::write(&spec, "name: p\nsources: [{name: s}]\n").expect("spec");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"ts\": 1}\n[1, 2]\n").expect("input");
    let e = capstan_server::pipeline::run(PipelineCommand::Run(PipelineRunArgs {
        spec,
        input,
        output: dir.path().join("out.jsonl"),
    }))
    .await
    .expect_err("bad line");
    assert!(e.to_string().contains("input line 2"), "{e}");
}

/// Clicks in `files` files, each in time order (so no record is late at any
/// interleaving, and the windows' results are a function of the input alone).
fn click_files(dir: &std::path::Path, files: usize, per_file: usize) -> Vec<String> {
    (0..files)
        .map(|f| {
            let path = dir.join(format!("clicks-{f}.jsonl"));
            let text: String = (0..per_file)
                .map(|i| {
                    format!(
                        "{{\"ts\": {}, \"user\": \"u{}\", \"amount\": {}}}\n",
                        i * 3,
                        (i * 17 + f) % 101,
                        i % 7
                    )
                })
                .collect();
            std::fs::write(&path, text).expect("input");
            format!("\"{}\"", path.display())
        })
        .collect()
}

/// Every committed row of a file sink's directory, sorted.
fn committed_rows(out: &std::path::Path) -> Vec<String> {
    let mut rows: Vec<String> = std::fs::read_dir(out)
        .expect("output dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .flat_map(|p| {
            std::fs::read_to_string(&p)
                .expect("read")
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn kill_9_at_random_points_commits_exactly_the_output_of_a_run_without_crashes() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("dir");
    let paths = click_files(dir.path(), 3, 150_000);
    let spec = clicks_spec(dir.path(), &paths);
    let capstan = env!("CARGO_BIN_EXE_capstan");
    let start = |data: &std::path::Path| {
        Command::new(capstan)
            .args(["pipeline", "start"])
            .arg(&spec)
            .arg("--data")
            .arg(data)
            .args(["--status-every", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("capstan")
    };
    // The reference: one run, no crash.
    let clean = dir.path().join("clean");
    let out = start(&clean).wait_with_output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = committed_rows(&clean.join("out"));
    assert!(want.len() > 1000, "{} rows", want.len());

    // The same, killed with SIGKILL at pseudo-random moments, restarted each time
    // (bounded: 40 kills, 3 minutes).
    let crashed = dir.path().join("crashed");
    let began = Instant::now();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut kills = 0;
    loop {
        let mut child = start(&crashed);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(30 + seed % 250);
        std::thread::sleep(delay);
        if child.try_wait().expect("wait").is_some()
            || kills >= 40
            || began.elapsed() > Duration::from_secs(180)
        {
            let out = child.wait_with_output().expect("finish");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            break;
        }
        child.kill().expect("kill -9"); // SIGKILL: no cleanup runs
        let _ = child.wait();
        kills += 1;
        // What is visible at any moment is a prefix of the final output: never a row
        // the clean run does not have.
        let partial = committed_rows(&crashed.join("out"));
        let extra: Vec<&String> = partial
            .iter()
            .filter(|r| want.binary_search(r).is_err())
            .collect();
        assert!(
            extra.is_empty(),
            "after kill {kills}: rows the clean run lacks: {:?}",
            &extra[..extra.len().min(3)]
        );
    }
    eprintln!("{kills} kills, {} rows committed", want.len());
    assert!(
        kills >= 3,
        "the run finished after {kills} kills: make the input longer"
    );
    assert_eq!(
        committed_rows(&crashed.join("out")),
        want,
        "after {kills} kills"
    );
}

/// The clicks spec over `paths`, windowed per user, into a transactional file sink.
fn clicks_spec(dir: &std::path::Path, paths: &[String]) -> std::path::PathBuf {
    let spec = dir.join("clicks.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: clicks\nsources: [{{name: clicks}}]\nsteps:\n  - key_by: user\n  - aggregate:\n      window: {{tumbling: 1000}}\n      ops: {{n: count, total: {{sum: amount}}}}\nrun:\n  partitions: 3\n  workers: 2\n  checkpoint_interval_ms: 50\n  inputs:\n    clicks: {{file: {{paths: [{}]}}}}\n  sink: {{file: out}}\n",
            paths.join(", ")
        ),
    )
    .expect("spec");
    spec
}

/// Two `capstan pipeline start` processes on one ZooKeeper with one data directory (as on
/// shared storage): one runs the pipeline, the other stands by. The runner is killed with
/// SIGKILL mid-run; once its session times out the standby takes over from its last
/// checkpoint and finishes, and the committed output is exactly a clean run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_process_finishes_a_killed_runners_pipeline_with_the_same_output() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let zk = support::ZooKeeper::start();
    let dir = tempfile::tempdir().expect("dir");
    let paths = click_files(dir.path(), 3, 300_000);
    let spec = clicks_spec(dir.path(), &paths);
    let capstan = env!("CARGO_BIN_EXE_capstan");
    let start = |data: &std::path::Path, registry: Option<&str>| {
        let mut c = Command::new(capstan);
        c.args(["pipeline", "start"])
            .arg(&spec)
            .arg("--data")
            .arg(data)
            .args([
                "--status-every",
                "0",
                "--session-timeout-ms",
                "4000",
                "--ip",
                "127.0.0.1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(r) = registry {
            c.args(["--registry", r]);
        }
        c.spawn().expect("capstan")
    };
    let clean = dir.path().join("clean");
    let out = start(&clean, None).wait_with_output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = committed_rows(&clean.join("out"));

    let url = format!("zookeeper://{}/streams", zk.connect());
    let admin = zk.session("streams", Duration::from_secs(10)).await;
    let leader = || async {
        admin
            .get("/clicks/leader/election/instance")
            .await
            .ok()
            .map(|(v, _)| String::from_utf8_lossy(&v).into_owned())
    };
    let until = |what: &str, t: Instant| {
        assert!(t.elapsed() < Duration::from_secs(60), "timed out: {what}");
    };
    let shared = dir.path().join("shared");
    let mut runner = start(&shared, Some(&url));
    let t = Instant::now();
    while leader().await != Some(format!("127.0.0.1@-@{}", runner.id())) {
        until("the first process leads", t);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let standby = start(&shared, Some(&url));
    let standby_instance = format!("127.0.0.1@-@{}", standby.id());
    while admin
        .exists(&format!("/clicks/instances/{standby_instance}"))
        .await
        .expect("exists")
        .is_none()
    {
        until("the second process registers", t);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Killed once it has committed some output, before it finishes.
    while committed_rows(&shared.join("out")).is_empty() {
        until("the runner commits", t);
        assert!(
            runner.try_wait().expect("wait").is_none(),
            "the runner finished first: make the input longer"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    runner.kill().expect("kill -9");
    let _ = runner.wait();
    let at_kill = committed_rows(&shared.join("out")).len();
    assert!(at_kill < want.len(), "the runner had finished");
    assert_eq!(
        leader().await.as_deref().map(|l| l == standby_instance),
        Some(false),
        "the standby led before the runner's session ended"
    );

    // How long the pipeline had no runner (printed for the record, not asserted: the
    // session timeout is 4 s).
    let killed = Instant::now();
    while leader().await.as_deref() != Some(standby_instance.as_str()) {
        if killed.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "the standby led {} ms after the kill",
        killed.elapsed().as_millis()
    );
    // Bounded: a standby that never takes over is killed and fails the test.
    let mut standby = standby;
    let t = Instant::now();
    while standby.try_wait().expect("wait").is_none() && t.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = standby.kill();
    let out = standby.wait_with_output().expect("standby");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    assert!(log.contains("standing by"), "{log}");
    assert!(log.contains("leading"), "{log}");
    assert_eq!(
        committed_rows(&shared.join("out")),
        want,
        "{at_kill} rows committed at the kill"
    );
    admin.close().await;
}
