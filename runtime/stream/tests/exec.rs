//! The partitioned executor against the replay: the same spec and input give the same
//! committed output (as a multiset: nothing is promised across partitions), with and
//! without restarts from checkpoints, and a slow sink bounds what the sources read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use capstan_stream::exec::{Pipeline, StartMode, State};
use capstan_stream::{PipelineSpec, Val, run_lines};
use serde_json::{Value, json};

static DIRS: AtomicU64 = AtomicU64::new(0);

fn temp_dir(name: &str) -> PathBuf {
    let n = DIRS.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("capstan-exec-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Clicks over `files` files, ordered by time within each file, no late data.
fn write_inputs(dir: &Path, files: usize, per_file: usize) -> Vec<PathBuf> {
    (0..files)
        .map(|f| {
            let path = dir.join(format!("in-{f}.jsonl"));
            let mut text = String::new();
            for i in 0..per_file {
                let ts = (i * 7) as i64;
                let user = format!("u{}", (i * 31 + f * 7) % 23);
                text.push_str(
                    &json!({"ts": ts, "user": user, "amount": (i % 13) as i64}).to_string(),
                );
                text.push('\n');
            }
            std::fs::write(&path, text).expect("input");
            path
        })
        .collect()
}

fn spec_text(inputs: &[PathBuf], partitions: usize, interval_ms: u64, steps: &str) -> String {
    let paths: Vec<String> = inputs
        .iter()
        .map(|p| format!("\"{}\"", p.display()))
        .collect();
    format!(
        "name: clicks\nsources:\n  - name: clicks\n    max_out_of_orderness_ms: 0\nsteps:\n{steps}run:\n  partitions: {partitions}\n  workers: 2\n  queue_capacity: 64\n  checkpoint_interval_ms: {interval_ms}\n  inputs:\n    clicks: {{file: {{paths: [{}]}}}}\n  sink: {{file: out}}\n",
        paths.join(", ")
    )
}

const WINDOWED: &str = "  - key_by: user\n  - aggregate:\n      window: {tumbling: 500}\n      ops: {n: count, total: {sum: amount}}\n";
const STATELESS: &str =
    "  - filter: \"amount > 3\"\n  - map: {user: user, cents: \"amount * 100\"}\n";

/// Starts `text` fresh in `dir` and waits (at most a minute) until it finished.
fn run_to_end(text: &str, dir: &Path) -> std::sync::Arc<Pipeline> {
    let p = Pipeline::start(text, dir, StartMode::Fresh).expect("start");
    assert_eq!(
        p.wait(Duration::from_secs(60)),
        State::Finished,
        "{:?}",
        p.status().error
    );
    p
}

/// The committed output: every committed file's rows, as a sorted multiset.
fn committed(out: &Path) -> Vec<String> {
    let mut rows: Vec<String> = committed_in_order(out)
        .iter()
        .map(Value::to_string)
        .collect();
    rows.sort();
    rows
}

/// Every committed row, in file name order (partition, then checkpoint): each
/// partition's rows in the order its sink wrote them.
fn committed_in_order(out: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("out dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("read")
                .lines()
                .map(|l| serde_json::from_str(l).expect("json row"))
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// The input files as one stream for the replay: merged by time, each file's rows in
/// their order (keys do not span files' order).
fn merged(inputs: &[PathBuf]) -> String {
    let mut all: Vec<(i64, usize, String)> = Vec::new();
    for (f, p) in inputs.iter().enumerate() {
        for line in std::fs::read_to_string(p).expect("read").lines() {
            let v: Value = serde_json::from_str(line).expect("json");
            all.push((v["ts"].as_i64().expect("ts"), f, line.to_owned()));
        }
    }
    all.sort_by_key(|(ts, f, _)| (*ts, *f));
    all.iter().map(|(_, _, l)| format!("{l}\n")).collect()
}

/// What the replay gives for the same input, as a sorted multiset.
fn replayed(text: &str, inputs: &[PathBuf]) -> Vec<String> {
    let spec = PipelineSpec::from_yaml(text).expect("spec");
    let (out, _) = run_lines(&spec, &merged(inputs)).expect("replay");
    let mut rows: Vec<String> = out.iter().map(Val::to_string).collect();
    rows.sort();
    rows
}

#[test]
fn a_partitioned_windowed_run_commits_what_the_replay_gives() {
    let dir = temp_dir("windowed");
    let inputs = write_inputs(&dir, 3, 2000);
    let text = spec_text(&inputs, 4, 20, WINDOWED);
    let p = run_to_end(&text, &dir);
    let got = committed(&dir.join("out"));
    let want = replayed(&text, &inputs);
    assert!(!want.is_empty());
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    let status = p.status();
    assert!(!status.checkpoints.is_empty(), "no checkpoint completed");
    assert_eq!(status.vertices.len(), 3);
    assert_eq!(status.vertices[0].records_in, 6000);
    // Nothing left staged.
    let staged = std::fs::read_dir(dir.join("out/.staged")).map_or(0, |d| d.count());
    assert_eq!(staged, 0);
}

#[test]
fn a_stateless_run_commits_every_row_once() {
    let dir = temp_dir("stateless");
    let inputs = write_inputs(&dir, 2, 3000);
    let text = spec_text(&inputs, 2, 20, STATELESS);
    run_to_end(&text, &dir);
    assert_eq!(committed(&dir.join("out")), replayed(&text, &inputs));
}

/// Restarts `p` at pseudo-random moments until it finishes (bounded: `max` restarts, 60
/// s), each `pause(random)` ms after the last one or, with `after_checkpoint`, after the
/// next checkpoint completed; then waits for it to finish. The restarts made, and the
/// checkpoint the last one restored from.
fn restart_until_finished(
    p: &Pipeline,
    max: usize,
    after_checkpoint: bool,
    mut seed: u64,
    pause: fn(u64) -> u64,
) -> (usize, u64) {
    let last = |p: &Pipeline| p.status().checkpoints.last().map_or(0, |c| c.id);
    let started = Instant::now();
    let (mut restarts, mut restored_from) = (0, 0);
    while restarts < max && started.elapsed() < Duration::from_secs(60) {
        let seen = last(p);
        while after_checkpoint && last(p) == seen && p.wait(Duration::ZERO) != State::Finished {
            std::thread::sleep(Duration::from_millis(1));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(pause(seed)));
        if p.wait(Duration::ZERO) == State::Finished {
            break;
        }
        restored_from = last(p);
        p.restart().expect("restart");
        restarts += 1;
    }
    assert_eq!(
        p.wait(Duration::from_secs(60)),
        State::Finished,
        "{:?}",
        p.status().error
    );
    (restarts, restored_from)
}

/// Runs `steps` over 3 partitions, restarting at pseudo-random moments (drawn from
/// `seed`; bounded: at most 12 restarts, 60 s), and checks that what it committed is
/// exactly what the replay gives.
fn restarts_commit_what_the_replay_gives(name: &str, steps: &str, seed: u64) {
    let dir = temp_dir(name);
    let inputs = write_inputs(&dir, 3, 20_000);
    let text = spec_text(&inputs, 3, 10, steps);
    let want = replayed(&text, &inputs);
    let p = Pipeline::start(&text, &dir, StartMode::Fresh).expect("start");
    let (restarts, _) = restart_until_finished(&p, 12, false, seed, |r| 5 + r % 40);
    assert!(
        restarts > 0,
        "finished before any restart: make the input longer"
    );
    let got = committed(&dir.join("out"));
    assert_eq!(got.len(), want.len(), "rows after {restarts} restarts");
    assert_eq!(got, want, "after {restarts} restarts");
}

#[test]
fn restarts_from_checkpoints_commit_exactly_what_a_run_without_them_does() {
    restarts_commit_what_the_replay_gives("restarts", WINDOWED, 0x2545_F491_4F6C_DD1D);
}

/// Per hopping window, the two users with the highest total (ties included): each
/// partition ranks its own users, a second layer ranks each window's rows again.
const RANKED: &str = "  - key_by: user\n  - aggregate:\n      window: {hopping: {size: 500, advance: 100}}\n      ops: {n: count, total: {sum: amount}}\n      rank: {by: total, top: 2}\n";

#[test]
fn a_ranked_window_over_partitions_commits_what_the_replay_gives_with_and_without_restarts() {
    let dir = temp_dir("ranked");
    let inputs = write_inputs(&dir, 3, 5_000);
    let text = spec_text(&inputs, 4, 20, RANKED);
    let want = replayed(&text, &inputs);
    let unranked = replayed(
        &text.replace("      rank: {by: total, top: 2}\n", ""),
        &inputs,
    );
    // The ranking keeps some of each window's users, not all.
    assert!(!want.is_empty() && want.len() < unranked.len() / 4);
    let p = run_to_end(&text, &dir);
    let got = committed(&dir.join("out"));
    assert_eq!(got.len(), want.len(), "rows ranked");
    assert_eq!(got, want);
    let status = p.status();
    let names: Vec<&str> = status.vertices.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["clicks", "aggregate", "rank", "sink"]);

    restarts_commit_what_the_replay_gives("ranked-restarts", RANKED, 0x9E37_79B9_7F4A_7C15);
}

#[test]
fn a_checkpoint_of_another_pipeline_is_refused() {
    let dir = temp_dir("mismatch");
    let inputs = write_inputs(&dir, 1, 100);
    let p = Pipeline::start(&spec_text(&inputs, 2, 20, WINDOWED), &dir, StartMode::Fresh)
        .expect("start");
    assert_eq!(p.wait(Duration::from_secs(30)), State::Finished);
    drop(p);
    let err = Pipeline::start(
        &spec_text(&inputs, 3, 20, WINDOWED),
        &dir,
        StartMode::Resume,
    )
    .err()
    .expect("refused");
    assert!(err.to_string().contains("another version"), "{err}");
}

#[test]
fn a_slow_sink_holds_back_the_source_and_memory_stays_bounded() {
    let dir = temp_dir("backpressure");
    let text = "name: slow\nsources: [{name: readings}]\nsteps:\n  - key_by: sensor\n  - aggregate: {ops: {n: count}}\nrun:\n  partitions: 2\n  workers: 2\n  queue_capacity: 64\n  inputs:\n    readings: {generator: {kind: sensors, keys: 50}}\n  sink: {memory: {rate: 2000}}\n";
    let p = Pipeline::start(text, &dir, StartMode::Fresh).expect("start");
    std::thread::sleep(Duration::from_millis(2500));
    let s = p.status();
    p.stop();
    let source = &s.vertices[0];
    let sink = &s.vertices[2];
    // The generator runs at full speed unless held back: millions a second. Held back,
    // it reads at most what the sink took plus what the queues and outboxes hold
    // (2×2 queues of 64 into the stage, 2 of 64 into the sink, a batch per outbox).
    let slack = 2 * 2 * 64 + 2 * 64 + 2 * 2 * 256 + 2 * 256;
    assert!(sink.records_in > 1000, "the sink took {}", sink.records_in);
    // Arrival-to-emit latency is measured at the sink, a second at a time.
    assert!(
        sink.latency_p99_ms.is_some_and(|p99| p99 > 0.0)
            && sink.latency_p50_ms.is_some_and(|p50| p50 > 0.0),
        "{sink:#?}"
    );
    assert!(
        source.records_in <= sink.records_in + slack as u64 + 512,
        "source read {} while the sink took {}",
        source.records_in,
        sink.records_in
    );
    assert!(
        source.backpressure > 0.5 || s.vertices[1].backpressure > 0.5,
        "{s:#?}"
    );
}

#[test]
fn pause_stops_the_sources_and_resume_restarts_them() {
    let dir = temp_dir("pause");
    let text = "name: gen\nsources: [{name: readings}]\nsteps:\n  - filter: \"value > 0\"\nrun:\n  partitions: 2\n  inputs:\n    readings: {generator: {kind: sensors, keys: 10, rate: 20000}}\n  sink: memory\n";
    let p = Pipeline::start(text, &dir, StartMode::Fresh).expect("start");
    std::thread::sleep(Duration::from_millis(1200));
    p.pause();
    std::thread::sleep(Duration::from_millis(1200));
    let a = p.status().vertices[0].records_in;
    assert_eq!(p.status().state, State::Paused);
    std::thread::sleep(Duration::from_millis(1100));
    let b = p.status().vertices[0].records_in;
    assert!(a > 0);
    assert_eq!(a, b, "paused sources kept reading");
    p.resume();
    std::thread::sleep(Duration::from_millis(1100));
    assert!(p.status().vertices[0].records_in > b);
    let rows: BTreeMap<String, Value> = p
        .table()
        .rows(100)
        .into_iter()
        .map(|r| (r["key"].to_string(), r))
        .collect();
    assert_eq!(rows.len(), 10, "one row per sensor: {rows:?}");
    p.stop();
}

#[test]
fn csv_files_partitioned_by_key_give_the_replay_result_and_bad_lines_are_counted() {
    let dir = temp_dir("csv");
    // Two CSV files; each user's rows may sit in either file, so partitions read every
    // file and keep their keys' rows.
    let mut a = String::from("ts,user,amount\n");
    let mut b = String::from("ts,user,amount\n");
    let mut replay = String::new();
    for i in 0..400 {
        let user = format!("u{}", i % 9);
        let line = format!("{},{user},{}\n", i * 10, i % 5);
        if i % 2 == 0 {
            a.push_str(&line)
        } else {
            b.push_str(&line)
        }
        replay.push_str(&json!({"ts": i * 10, "user": user, "amount": i % 5}).to_string());
        replay.push('\n');
    }
    b.push_str("oops,only-two\n");
    std::fs::write(dir.join("a.csv"), a).expect("a");
    std::fs::write(dir.join("b.csv"), b).expect("b");
    let text = format!(
        "name: csv\nsources: [{{name: clicks, max_out_of_orderness_ms: 1000}}]\nsteps:\n{WINDOWED}run:\n  partitions: 3\n  inputs:\n    clicks: {{file: {{paths: [\"{}\", \"{}\"], partition_by: {{key: user}}}}}}\n  sink: {{file: out}}\n",
        dir.join("a.csv").display(),
        dir.join("b.csv").display()
    );
    let p = run_to_end(&text, &dir);
    let spec = PipelineSpec::from_yaml(&text).expect("spec");
    let (out, _) = run_lines(&spec, &replay).expect("replay");
    let mut want: Vec<String> = out.iter().map(Val::to_string).collect();
    want.sort();
    assert_eq!(committed(&dir.join("out")), want);
    let s = p.status();
    assert_eq!(s.bad_records, 1);
    let why = s.last_bad_record.unwrap_or_default();
    assert!(
        why.contains("b.csv line 202") && why.contains("2 fields"),
        "{why}"
    );
    // Each row was read by exactly one partition.
    assert_eq!(s.vertices[0].records_in, 400);
}

#[test]
fn an_unreadable_input_fails_the_pipeline_with_the_reason() {
    let dir = temp_dir("missing");
    let text = spec_text(&[dir.join("nope.jsonl")], 1, 20, WINDOWED);
    let p = Pipeline::start(&text, &dir, StartMode::Fresh).expect("start");
    assert_eq!(p.wait(Duration::from_secs(30)), State::Failed);
    let e = p.status().error.unwrap_or_default();
    assert!(e.contains("nope.jsonl"), "{e}");
}

#[test]
fn processing_time_windows_close_on_the_wall_clock() {
    let dir = temp_dir("processing");
    let text = "name: pt\nsources: [{name: readings}]\nsteps:\n  - key_by: sensor\n  - aggregate: {window: {tumbling: 200}, time: processing, ops: {n: count}}\nrun:\n  partitions: 2\n  inputs:\n    readings: {generator: {kind: sensors, keys: 4, rate: 2000}}\n  sink: memory\n";
    // A replay has no clock: refused with the reason.
    let spec = PipelineSpec::from_yaml(text).expect("spec");
    let e = run_lines(&spec, "").expect_err("refused");
    assert!(e.message.contains("wall clock"), "{e}");
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let p = Pipeline::start(text, &dir, StartMode::Fresh).expect("start");
    std::thread::sleep(Duration::from_millis(1500));
    let rows = p.table().rows(10);
    p.stop();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for r in &rows {
        let (start, end) = (
            r["window_start"].as_i64().expect("start"),
            r["window_end"].as_i64().expect("end"),
        );
        assert_eq!(start % 200, 0);
        assert_eq!(end - start, 200);
        // Windows of the run's own wall-clock time, closed while it ran.
        assert!(start >= started - 200 && end <= started + 2000, "{r}");
        assert!(r["n"].as_i64().expect("n") > 0);
    }
}

#[test]
fn a_two_source_join_gives_the_same_results_on_one_partition_and_on_three() {
    let run = |partitions: usize| {
        let dir = temp_dir(&format!("join{partitions}"));
        let text = format!(
            "name: new-sellers\nsources: [{{name: persons}}, {{name: auctions}}]\njoin: {{left: persons, right: auctions, kind: stream_stream, type: left, within_ms: 2}}\nsteps:\n  - map: {{person: left.id, auction: right.id}}\nrun:\n  partitions: {partitions}\n  checkpoint_interval_ms: 20\n  inputs:\n    persons: {{generator: {{kind: persons, limit: 900}}}}\n    auctions: {{generator: {{kind: auctions, limit: 2700}}}}\n  sink: {{file: out}}\n"
        );
        let p = run_to_end(&text, &dir);
        assert_eq!(
            p.status().bad_records,
            0,
            "{:?}",
            p.status().last_bad_record
        );
        // Event time starts at the run's start: compare what was joined, not when.
        let mut rows: Vec<String> = committed(&dir.join("out"))
            .iter()
            .map(|r| serde_json::from_str::<Value>(r).expect("row")["value"].to_string())
            .collect();
        rows.sort();
        rows
    };
    let one = run(1);
    // Person g sells auctions 3g, 3g+1 and 3g+2, made at 5g, 5g+1 and 5g+3 ms: two of
    // them are within 2 ms.
    assert_eq!(one.len(), 1800, "{:?}", &one[..one.len().min(5)]);
    assert!(one.iter().all(|r| !r.contains("\"auction\":null")));
    let three = run(3);
    assert!(
        three == one,
        "{} rows on three partitions, {} on one",
        three.len(),
        one.len()
    );
}

/// Table rows of 30 users, each user's rows in one of `files` files (so each user's
/// changes keep their order): a region and an amount, or a delete now and then.
fn write_table_inputs(dir: &Path, files: usize, per_file: usize) -> Vec<PathBuf> {
    (0..files)
        .map(|f| {
            let path = dir.join(format!("users-{f}.jsonl"));
            let mut text = String::new();
            for i in 0..per_file {
                let user = format!("u{}", files * ((i * 7) % 10) + f);
                let value = if i % 17 == 5 {
                    Value::Null
                } else {
                    // A user's region changes from one row to its next.
                    json!({"region": format!("r{}", (i / 10 + i % 3 + f) % 5), "amount": (i % 11) as i64})
                };
                text.push_str(&json!({"key": user, "value": value, "ts": (i * 5) as i64}).to_string());
                text.push('\n');
            }
            std::fs::write(&path, text).expect("input");
            path
        })
        .collect()
}

/// Each group's last row: its state at the end. Rows of one group come from one
/// partition, in order (files by name: partition, then checkpoint).
fn final_groups(rows: impl IntoIterator<Item = Value>) -> BTreeMap<String, Value> {
    rows.into_iter()
        .map(|r| (r["key"].to_string(), r))
        .collect()
}

/// Each group's last row in the replay of `input` (ordered lines) through `text`.
fn replayed_groups(text: &str, input: &str) -> BTreeMap<String, Value> {
    let spec = PipelineSpec::from_yaml(text).expect("spec");
    let (rows, _) = run_lines(&spec, input).expect("replay");
    final_groups(
        rows.iter()
            .map(|v| serde_json::from_str(&v.to_string()).expect("row")),
    )
}

/// A table regrouped over three partitions (its rows by user, its groups by region, an
/// exchange between) ends in the state the replay ends in, with and without restarts
/// from checkpoints; every move between regions was a subtraction in one partition and
/// an addition in another.
#[test]
fn a_regroup_over_partitions_ends_as_the_replay_does_with_and_without_restarts() {
    let dir = temp_dir("regroup");
    let inputs = write_table_inputs(&dir, 3, 20_000);
    let paths: Vec<String> = inputs
        .iter()
        .map(|p| format!("\"{}\"", p.display()))
        .collect();
    let text = format!(
        "name: regions\nsources: [{{name: users, kind: table}}]\nsteps:\n  - group_by: region\n  - aggregate: {{ops: {{users: count, total: {{sum: amount}}}}}}\nrun:\n  partitions: 3\n  workers: 2\n  queue_capacity: 64\n  checkpoint_interval_ms: 10\n  inputs:\n    users: {{file: {{paths: [{}]}}}}\n  sink: {{file: out}}\n",
        paths.join(", ")
    );
    let want = replayed_groups(&text, &merged(&inputs));
    assert_eq!(want.len(), 5, "{want:?}");

    let p = run_to_end(&text, &dir);
    let status = p.status();
    let names: Vec<&str> = status.vertices.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["users", "group_by", "aggregate", "sink"]);
    assert_eq!(status.edges, [(0, 1), (1, 2), (2, 3)]);
    assert!(!status.checkpoints.is_empty(), "no checkpoint completed");
    assert_eq!(final_groups(committed_in_order(&dir.join("out"))), want);
    drop(p);

    // Restarts, each once a new checkpoint completed (so that the groups' state is
    // restored from one, not rebuilt from the start), at a pseudo-random moment after it.
    let dir = temp_dir("regroup-restarts");
    let p = Pipeline::start(&text, &dir, StartMode::Fresh).expect("start");
    let (restarts, restored_from) =
        restart_until_finished(&p, 8, true, 0x9E37_79B9_7F4A_7C15, |r| r % 8);
    assert!(
        restarts >= 3 && restored_from > 0,
        "{restarts} restarts, the last from checkpoint {restored_from}: make the input longer"
    );
    assert_eq!(
        final_groups(committed_in_order(&dir.join("out"))),
        want,
        "after {restarts} restarts"
    );
}

/// A table-table join regrouped over three partitions (the join and the rows in the
/// first layer, the groups in the second) ends as the replay does.
#[test]
fn a_joined_table_regrouped_over_partitions_ends_as_the_replay_does() {
    let dir = temp_dir("join-regroup");
    // Accounts (an amount) and users (a region), keyed by user; both change often, a
    // few rows are deleted. Each table in one file, so each key's changes keep order.
    let mut accounts = String::new();
    let mut users = String::new();
    let mut merged = String::new();
    for i in 0..6000usize {
        let user = format!("u{}", (i / 2 * 7) % 40);
        let (source, value) = if i % 2 == 0 {
            ("accounts", json!({"amount": (i % 9) as i64}))
        } else if i % 23 == 1 {
            ("users", Value::Null)
        } else {
            (
                "users",
                json!({"region": format!("r{}", (i / 40 + i % 3) % 4)}),
            )
        };
        let row = json!({"key": user, "value": value, "ts": i as i64});
        let file = if source == "accounts" {
            &mut accounts
        } else {
            &mut users
        };
        file.push_str(&format!("{row}\n"));
        let mut tagged = row;
        tagged["source"] = json!(source);
        merged.push_str(&format!("{tagged}\n"));
    }
    std::fs::write(dir.join("accounts.jsonl"), accounts).expect("accounts");
    std::fs::write(dir.join("users.jsonl"), users).expect("users");
    let text = format!(
        "name: regions\nsources: [{{name: accounts, kind: table}}, {{name: users, kind: table}}]\njoin: {{left: accounts, right: users, kind: table_table, type: inner}}\nsteps:\n  - group_by: right.region\n  - aggregate: {{ops: {{accounts: count, total: {{sum: left.amount}}}}}}\nrun:\n  partitions: 3\n  checkpoint_interval_ms: 10\n  inputs:\n    accounts: {{file: {{paths: [\"{0}/accounts.jsonl\"]}}}}\n    users: {{file: {{paths: [\"{0}/users.jsonl\"]}}}}\n  sink: {{file: out}}\n",
        dir.display()
    );
    let want = replayed_groups(&text, &merged);
    assert_eq!(want.len(), 4, "{want:?}");
    let p = run_to_end(&text, &dir);
    let names: Vec<String> = p.status().vertices.iter().map(|v| v.name.clone()).collect();
    assert_eq!(names, ["accounts + users", "join", "aggregate", "sink"]);
    assert_eq!(final_groups(committed_in_order(&dir.join("out"))), want);
}
