//! `capstan pipeline run SPEC --input FILE.jsonl --output FILE.jsonl`: replays JSON-lines
//! input through a pipeline spec in event time. The output is a pure function of the
//! input and the spec, so a pipeline can be tried offline and tests can compare it.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;
use capstan_stream::exec::{Pipeline, StartMode, State};
use capstan_stream::{PipelineSpec, run_lines};

use crate::config::PipelineCommand;

fn read(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn spec(path: &Path) -> anyhow::Result<PipelineSpec> {
    PipelineSpec::from_yaml(&read(path)?).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Runs a `capstan pipeline` subcommand.
///
/// # Errors
/// An unreadable file, an invalid spec (with the field's path) or a bad input line (with
/// its number).
pub fn run(cmd: PipelineCommand) -> anyhow::Result<()> {
    match cmd {
        PipelineCommand::Check { spec: path } => {
            let s = spec(&path)?;
            println!("{}: pipeline {:?} is valid", path.display(), s.name);
            Ok(())
        }
        PipelineCommand::Start(args) => start(&args),
        PipelineCommand::Run(args) => {
            let s = spec(&args.spec)?;
            let input = read(&args.input)?;
            let (out, metrics) = run_lines(&s, &input)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.input.display()))?;
            let mut text = String::with_capacity(out.len() * 64);
            for v in &out {
                text.push_str(&v.to_string());
                text.push('\n');
            }
            if args.output == Path::new("-") {
                std::io::stdout()
                    .write_all(text.as_bytes())
                    .context("writing standard output")?;
            } else {
                // Written whole, then renamed: a crash never leaves half an output file.
                let tmp = args.output.with_extension("partial");
                std::fs::write(&tmp, text)
                    .with_context(|| format!("cannot write {}", tmp.display()))?;
                std::fs::rename(&tmp, &args.output)
                    .with_context(|| format!("cannot write {}", args.output.display()))?;
            }
            eprintln!(
                "pipeline {:?}: {} records in, {} out, {} late records dropped",
                s.name, metrics.records_in, metrics.records_out, metrics.late_records_dropped
            );
            Ok(())
        }
    }
}

fn start(args: &crate::config::PipelineStartArgs) -> anyhow::Result<()> {
    let text = read(&args.spec)?;
    let mode = if args.fresh {
        StartMode::Fresh
    } else {
        StartMode::Resume
    };
    let p = Pipeline::start(&text, &args.data, mode)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.spec.display()))?;
    let every = std::time::Duration::from_secs(args.status_every.max(1));
    loop {
        let state = p.wait(every);
        let s = p.status();
        let line = |s: &capstan_stream::exec::PipelineStatus| {
            let read = s.vertices.first().map_or(0, |v| v.records_in);
            let written = s.vertices.last().map_or(0, |v| v.records_out);
            format!(
                "pipeline {:?}: {:?}, {read} records read, {written} written, {} checkpoints, {} bad records",
                s.name,
                s.state,
                s.checkpoints.last().map_or(0, |c| c.id),
                s.bad_records
            )
        };
        if let Some(bad) = &s.last_bad_record {
            eprintln!("last unreadable record: {bad}");
        }
        match state {
            State::Finished => {
                eprintln!("{}", line(&s));
                if let Some(dir) = p.output_dir() {
                    eprintln!("output committed in {}", dir.display());
                }
                return Ok(());
            }
            State::Failed | State::Stopped => {
                anyhow::bail!(
                    "pipeline {:?} failed: {}",
                    s.name,
                    s.error.unwrap_or_else(|| "stopped".into())
                );
            }
            _ if args.status_every > 0 => eprintln!("{}", line(&s)),
            _ => {}
        }
    }
}
