//! `capstan pipeline run` end to end: files in, file out, errors named.

use capstan_server::config::{PipelineCommand, PipelineRunArgs};

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../runtime/stream/tests/cases");

#[test]
fn run_replays_a_golden_case_into_a_file() {
    let dir = tempfile::tempdir().expect("dir");
    let case = std::path::Path::new(CASES).join("table_table_inner_join");
    let output = dir.path().join("out.jsonl");
    capstan_server::pipeline::run(PipelineCommand::Run(PipelineRunArgs {
        spec: case.join("pipeline.yaml"),
        input: case.join("input.jsonl"),
        output: output.clone(),
    }))
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

#[test]
fn a_bad_spec_or_input_line_is_named() {
    let dir = tempfile::tempdir().expect("dir");
    let spec = dir.path().join("p.yaml");
    std::fs::write(
        &spec,
        "name: p\nsources: [{name: s}]\nsteps: [{filter: 'a >'}]\n",
    )
    .expect("spec");
    let e = capstan_server::pipeline::run(PipelineCommand::Check { spec: spec.clone() })
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
    let spec = dir.path().join("clicks.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: clicks\nsources: [{{name: clicks}}]\nsteps:\n  - key_by: user\n  - aggregate:\n      window: {{tumbling: 1000}}\n      ops: {{n: count, total: {{sum: amount}}}}\nrun:\n  partitions: 3\n  workers: 2\n  checkpoint_interval_ms: 50\n  inputs:\n    clicks: {{file: {{paths: [{}]}}}}\n  sink: {{file: out}}\n",
            paths.join(", ")
        ),
    )
    .expect("spec");
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
