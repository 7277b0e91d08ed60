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
