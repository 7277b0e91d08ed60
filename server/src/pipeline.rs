//! `capstan pipeline run SPEC --input FILE.jsonl --output FILE.jsonl`: replays JSON-lines
//! input through a pipeline spec in event time. The output is a pure function of the
//! input and the spec, so a pipeline can be tried offline and tests can compare it.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;
use capstan_stream::exec::{Pipeline, StartMode, State};
use capstan_stream::{PipelineSpec, run_lines};

use crate::agent::{RegistryTarget, open_registry};
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
pub async fn run(cmd: PipelineCommand) -> anyhow::Result<()> {
    match cmd {
        PipelineCommand::Check { spec: path } => {
            let s = spec(&path)?;
            println!("{}: pipeline {:?} is valid", path.display(), s.name);
            Ok(())
        }
        PipelineCommand::Start(args) => start(&args).await,
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

/// `capstan pipeline start`: runs the pipeline until every input ended and its output is
/// committed, or a signal stops it. With `--registry`, registered there as a `STREAM` job,
/// standing by while another process runs it (see `capstan_stream::registration`).
async fn start(args: &crate::config::PipelineStartArgs) -> anyhow::Result<()> {
    let text = read(&args.spec)?;
    let target = args
        .registry
        .as_deref()
        .map(|r| {
            r.parse::<RegistryTarget>()
                .map_err(|e| anyhow::anyhow!("--registry: {e}"))
        })
        .transpose()?;
    if target.is_some() && args.fresh {
        anyhow::bail!(
            "--fresh with --registry: a process standing by must not delete the checkpoint \
             and output of the one that runs the pipeline; clear --data by hand first"
        );
    }
    let mode = match (&target, args.fresh) {
        (Some(_), _) => StartMode::Standby,
        (None, true) => StartMode::Fresh,
        (None, false) => StartMode::Resume,
    };
    let p = {
        let (text, dir) = (text.clone(), args.data.clone());
        // Starting reads the checkpoint and starts threads: off the async runtime.
        tokio::task::spawn_blocking(move || Pipeline::start(&text, &dir, mode))
            .await
            .context("starting the pipeline")?
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.spec.display()))?
    };
    // Kept for the run: the registry (closed on the way out, so a standby takes over at
    // once) and, for an embedded one, its store.
    let registered = match &target {
        Some(target) => {
            crate::init_tracing(&args.log);
            let (registry, store) = open_registry(target, &args.session).await?;
            let ip = args
                .session
                .ip
                .clone()
                .or_else(capstan_scheduler::instance::local_ipv4)
                .unwrap_or_else(|| "127.0.0.1".to_owned());
            let instance = format!("{ip}@-@{}", std::process::id());
            capstan_stream::registration::register(
                registry.clone(),
                p.clone(),
                ip,
                instance.clone(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("registering the pipeline: {e}"))?;
            eprintln!(
                "pipeline {:?} registered as instance {instance}: {}",
                p.name(),
                if p.status().state == State::Standby {
                    "another process runs it; standing by"
                } else {
                    "running it"
                }
            );
            Some((registry, store))
        }
        None => None,
    };
    let outcome = follow(&p, args).await;
    if let Some((registry, _store)) = registered {
        registry.close().await;
    }
    outcome
}

/// Prints the status of `p` every `--status-every` seconds until it ends or a signal
/// stops it.
async fn follow(
    p: &std::sync::Arc<Pipeline>,
    args: &crate::config::PipelineStartArgs,
) -> anyhow::Result<()> {
    let every = std::time::Duration::from_secs(args.status_every.max(1));
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
    let stop = crate::shutdown_signal();
    tokio::pin!(stop);
    loop {
        let waiting = {
            let p = p.clone();
            tokio::task::spawn_blocking(move || p.wait(every))
        };
        let state = tokio::select! {
            state = waiting => state.context("waiting for the pipeline")?,
            () = &mut stop => {
                let stopping = p.clone();
                tokio::task::spawn_blocking(move || stopping.stop()).await.context("stopping")?;
                eprintln!("{}", line(&p.status()));
                eprintln!("stopped; the next start resumes from the last checkpoint");
                return Ok(());
            }
        };
        let s = p.status();
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
