//! Golden cases: `tests/cases/<name>/{pipeline.yaml, input.jsonl, expected.jsonl}`, and an
//! optional `metrics.json` with counters to check. Each case is replayed in event time
//! and its output compared record by record (as JSON values, so key order is free).

use std::path::Path;

use capstan_stream::{PipelineSpec, Runner, Val, run_lines};
use serde::de::DeserializeOwned;
use serde_json::Value;

fn lines<T: DeserializeOwned>(text: &str) -> Vec<T> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn every_golden_case_replays_to_its_expected_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    assert!(names.len() >= 12, "cases missing: {names:?}");
    let mut failures = Vec::new();
    for case in &names {
        let name = case
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let read = |f: &str| {
            std::fs::read_to_string(case.join(f)).unwrap_or_else(|e| panic!("{name}/{f}: {e}"))
        };
        let spec = PipelineSpec::from_yaml(&read("pipeline.yaml"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (out, metrics) =
            run_lines(&spec, &read("input.jsonl")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected: Vec<Value> = lines(&read("expected.jsonl"));
        let out: Vec<Value> = out.iter().map(Val::to_json).collect();
        if out != expected {
            let got: Vec<String> = out.iter().map(Value::to_string).collect();
            failures.push(format!("{name}: got\n  {}", got.join("\n  ")));
        }
        if case.join("metrics.json").exists() {
            let want: Value = serde_json::from_str(&read("metrics.json")).expect("metrics.json");
            if want["late_records_dropped"] != metrics.late_records_dropped {
                failures.push(format!(
                    "{name}: late_records_dropped {}",
                    metrics.late_records_dropped
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn replay_is_deterministic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/session_gap");
    let spec =
        PipelineSpec::from_yaml(&std::fs::read_to_string(dir.join("pipeline.yaml")).expect("spec"))
            .expect("spec");
    let input = std::fs::read_to_string(dir.join("input.jsonl")).expect("input");
    let first = run_lines(&spec, &input).expect("run");
    for _ in 0..10 {
        assert_eq!(run_lines(&spec, &input).expect("run"), first);
    }
}

#[test]
fn bad_input_lines_are_named() {
    let spec = PipelineSpec::from_yaml("name: p\nsources: [{name: s}]\n").expect("spec");
    let e = run_lines(&spec, "{\"ts\": 1}\n{\"no_ts\": 2}\n").expect_err("missing ts");
    assert_eq!(e.line, 2);
    let e = run_lines(&spec, "not json\n").expect_err("not json");
    assert_eq!(e.line, 1);
}

/// A checkpoint anywhere changes nothing: for every golden case and every cut point, the
/// output before the cut, plus that of a runner restored from a snapshot taken there,
/// is the uninterrupted output.
#[test]
fn every_case_resumes_from_a_snapshot_at_any_record() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut failures = Vec::new();
    for case in std::fs::read_dir(&dir).expect("cases") {
        let case = case.expect("entry").path();
        let name = case
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let read = |f: &str| std::fs::read_to_string(case.join(f)).expect("file");
        let spec = PipelineSpec::from_yaml(&read("pipeline.yaml")).expect("spec");
        let input: Vec<Val> = lines(&read("input.jsonl"));
        let (whole, _) = run_lines(&spec, &read("input.jsonl")).expect("run");
        for cut in 0..=input.len() {
            let mut a = Runner::new(spec.clone());
            for (i, v) in input[..cut].iter().enumerate() {
                a.push(i + 1, v.clone()).expect("push");
            }
            let mut out = a.drain();
            let mut b =
                Runner::restore(spec.clone(), &a.snapshot().expect("snapshot")).expect("restore");
            for (i, v) in input[cut..].iter().enumerate() {
                b.push(cut + i + 1, v.clone()).expect("push");
            }
            b.finish();
            out.extend(b.drain());
            if out != whole {
                failures.push(format!("{name}: cut at {cut}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
