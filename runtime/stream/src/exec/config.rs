//! The `run:` section of a pipeline spec: how the executor runs it (partitions, threads,
//! queues, checkpoints), where each source reads from and where results go. The replay
//! (`capstan pipeline run`) ignores it.
//!
//! ```yaml
//! run:
//!   partitions: 4                 # tasks per stage (default 1)
//!   workers: 2                    # threads all tasks share (default: min(partitions, cores))
//!   queue_capacity: 1024          # items per queue between tasks
//!   checkpoint_interval_ms: 1000  # 0: no periodic checkpoints (the end still commits)
//!   inputs:
//!     readings: {generator: {kind: sensors, keys: 100, rate: 2000}}   # or bids, persons, auctions
//!     clicks: {file: {paths: [a.jsonl, b.csv], partition_by: file}}  # or {key: FIELD}
//!   sink: {file: out}             # or log, memory, {memory: {rate: 1000}}, discard
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde_norway::Value as Yaml;

use crate::spec::{SpecError, err, int_of, known, map_of, positive, str_of};

/// What a generator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenKind {
    /// `{sensor, ts, value}` readings, `keys` sensors.
    Sensors {
        /// Distinct sensors.
        keys: u64,
    },
    /// Nexmark bids: `{auction, bidder, price, channel, ts}`, over auctions and bidders
    /// as Nexmark spreads them ([`super::nexmark`]); key `auction`.
    Bids,
    /// Nexmark people: `{id, name, city, state, ts}`, one for every three auctions; key
    /// `id` (a table source gets `{key, value: {…}}`).
    Persons,
    /// Nexmark auctions: `{id, seller, category, reserve, ts}`, each sold by a person that
    /// exists by then; key `seller`.
    Auctions,
}

/// A built-in source of records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenConfig {
    /// What it makes.
    pub kind: GenKind,
    /// Records per second over all partitions, event time following the wall clock; `None`:
    /// as fast as the pipeline takes them, event time advancing 0.1 ms per record.
    pub rate: Option<u64>,
    /// Records in all, then the source ends; `None`: never.
    pub limit: Option<u64>,
}

/// How files are split over partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionBy {
    /// File `i` is read by partition `i mod partitions`.
    File,
    /// Every partition reads every file and keeps the lines whose field hashes to it.
    Key(String),
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    JsonLines,
    /// A header line, then values; numbers are read as numbers.
    Csv,
}

/// Where one spec source reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputConfig {
    /// A generator.
    Generator(GenConfig),
    /// Files.
    Files {
        /// Paths, relative to the working directory.
        paths: Vec<PathBuf>,
        /// The format (default: by each file's extension, `.csv` or JSON lines).
        format: Option<Format>,
        /// The split.
        by: PartitionBy,
    },
}

/// Where results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkConfig {
    /// Transactional files: output becomes visible when the checkpoint covering it
    /// completes.
    File(PathBuf),
    /// The log (tracing, target `capstan_stream::sink`).
    Log,
    /// Counted and dropped (benchmarks, dry runs).
    Discard,
    /// The latest row per key, in memory, for the console; `rate` caps rows per second.
    Memory {
        /// Rows per second the sink takes at most (a slow consumer).
        rate: Option<u64>,
    },
}

/// The `run:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfig {
    /// Tasks per stage.
    pub partitions: usize,
    /// Threads.
    pub workers: usize,
    /// Items per queue.
    pub queue_capacity: usize,
    /// Between checkpoints; `None`: only the final one.
    pub checkpoint_interval: Option<Duration>,
    /// Per spec source, in spec order.
    pub inputs: Vec<InputConfig>,
    /// Where results go.
    pub sink: SinkConfig,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn count(v: &Yaml, path: &str, max: i64) -> Result<u64, SpecError> {
    let n = positive(v, path)?;
    if n > max {
        return Err(err(path, format!("must be at most {max}")));
    }
    Ok(n as u64)
}

impl RunConfig {
    /// The `run:` section of a spec document.
    ///
    /// # Errors
    /// A missing or bad field, with its path; an input for no source; a source without
    /// an input.
    pub fn from_yaml(text: &str, source_names: &[String]) -> Result<RunConfig, SpecError> {
        let doc: Yaml =
            serde_norway::from_str(text).map_err(|e| err("(document)", e.to_string()))?;
        let Some(run) = map_of(&doc, "(document)")?.get("run") else {
            return Err(err(
                "run",
                "say how to run the pipeline: run: {inputs: {...}, sink: ...}",
            ));
        };
        let m = map_of(run, "run")?;
        known(
            m,
            "run",
            &[
                "partitions",
                "workers",
                "queue_capacity",
                "checkpoint_interval_ms",
                "inputs",
                "sink",
            ],
        )?;
        let partitions = m
            .get("partitions")
            .map(|v| count(v, "run.partitions", 4096))
            .transpose()?
            .unwrap_or(1) as usize;
        let workers = m
            .get("workers")
            .map(|v| count(v, "run.workers", 256))
            .transpose()?
            .map_or_else(|| partitions.min(cores()), |w| w as usize);
        let queue_capacity = m
            .get("queue_capacity")
            .map(|v| count(v, "run.queue_capacity", 1 << 20))
            .transpose()?
            .unwrap_or(1024) as usize;
        let checkpoint_interval = match m.get("checkpoint_interval_ms") {
            None => Some(Duration::from_secs(1)),
            Some(v) => match int_of(v, "run.checkpoint_interval_ms")? {
                0 => None,
                n if n < 10 => {
                    return Err(err(
                        "run.checkpoint_interval_ms",
                        "must be 0 (off) or at least 10",
                    ));
                }
                n => Some(Duration::from_millis(n as u64)),
            },
        };
        let inputs_map = match m.get("inputs") {
            Some(v) => map_of(v, "run.inputs")?,
            None => return Err(err("run.inputs", "give each source an input")),
        };
        for k in inputs_map.keys() {
            let name = str_of(k, "run.inputs")?;
            if !source_names.contains(&name) {
                return Err(err(
                    format!("run.inputs.{name}"),
                    format!("no source named {name:?}"),
                ));
            }
        }
        let inputs = source_names
            .iter()
            .map(|name| {
                let path = format!("run.inputs.{name}");
                let v = inputs_map
                    .get(name.as_str())
                    .ok_or_else(|| err(&path, "this source has no input"))?;
                input(v, &path, partitions)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sink = match m.get("sink") {
            None => return Err(err("run.sink", "say where results go: file, log or memory")),
            Some(v) => sink(v)?,
        };
        Ok(RunConfig {
            partitions,
            workers,
            queue_capacity,
            checkpoint_interval,
            inputs,
            sink,
        })
    }
}

fn input(v: &Yaml, path: &str, partitions: usize) -> Result<InputConfig, SpecError> {
    let m = map_of(v, path)?;
    known(m, path, &["generator", "file"])?;
    if let Some(g) = m.get("generator") {
        let at = format!("{path}.generator");
        let gm = map_of(g, &at)?;
        known(gm, &at, &["kind", "keys", "rate", "limit"])?;
        let kind = match gm
            .get("kind")
            .map(|k| str_of(k, &format!("{at}.kind")))
            .transpose()?
            .as_deref()
        {
            None | Some("sensors") => GenKind::Sensors {
                keys: gm
                    .get("keys")
                    .map(|k| count(k, &format!("{at}.keys"), 1 << 40))
                    .transpose()?
                    .unwrap_or(100),
            },
            Some("bids") => GenKind::Bids,
            Some("persons") => GenKind::Persons,
            Some("auctions") => GenKind::Auctions,
            Some(k) => {
                return Err(err(
                    format!("{at}.kind"),
                    format!("{k:?}: use sensors, bids, persons or auctions"),
                ));
            }
        };
        if let GenKind::Sensors { keys } = kind
            && keys < partitions as u64
        {
            return Err(err(
                format!("{at}.keys"),
                format!("fewer sensors than the {partitions} partitions"),
            ));
        }
        return Ok(InputConfig::Generator(GenConfig {
            kind,
            rate: gm
                .get("rate")
                .map(|r| count(r, &format!("{at}.rate"), 100_000_000))
                .transpose()?,
            limit: gm
                .get("limit")
                .map(|r| count(r, &format!("{at}.limit"), i64::MAX))
                .transpose()?,
        }));
    }
    let Some(f) = m.get("file") else {
        return Err(err(path, "use generator or file"));
    };
    let at = format!("{path}.file");
    let fm = map_of(f, &at)?;
    known(fm, &at, &["paths", "format", "partition_by"])?;
    let paths = match fm.get("paths") {
        Some(Yaml::Sequence(list)) if !list.is_empty() => list
            .iter()
            .enumerate()
            .map(|(i, p)| str_of(p, &format!("{at}.paths[{i}]")).map(PathBuf::from))
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(err(format!("{at}.paths"), "list at least one file")),
    };
    let format = match fm
        .get("format")
        .map(|f| str_of(f, &format!("{at}.format")))
        .transpose()?
        .as_deref()
    {
        None => None,
        Some("jsonl") => Some(Format::JsonLines),
        Some("csv") => Some(Format::Csv),
        Some(f) => {
            return Err(err(
                format!("{at}.format"),
                format!("{f:?}: use jsonl or csv"),
            ));
        }
    };
    let by = match fm.get("partition_by") {
        None => PartitionBy::File,
        Some(Yaml::String(s)) if s == "file" => PartitionBy::File,
        Some(v @ Yaml::Mapping(_)) => {
            let pm = map_of(v, &format!("{at}.partition_by"))?;
            known(pm, &format!("{at}.partition_by"), &["key"])?;
            let field = pm
                .get("key")
                .map(|k| str_of(k, &format!("{at}.partition_by.key")))
                .transpose()?
                .ok_or_else(|| err(format!("{at}.partition_by.key"), "name the field"))?;
            PartitionBy::Key(field)
        }
        Some(_) => {
            return Err(err(
                format!("{at}.partition_by"),
                "use file or {key: FIELD}",
            ));
        }
    };
    Ok(InputConfig::Files { paths, format, by })
}

fn sink(v: &Yaml) -> Result<SinkConfig, SpecError> {
    match v {
        Yaml::String(s) if s == "log" => Ok(SinkConfig::Log),
        Yaml::String(s) if s == "memory" => Ok(SinkConfig::Memory { rate: None }),
        Yaml::String(s) if s == "discard" => Ok(SinkConfig::Discard),
        Yaml::Mapping(m) => {
            known(m, "run.sink", &["file", "memory", "log"])?;
            if let Some(dir) = m.get("file") {
                return Ok(SinkConfig::File(PathBuf::from(str_of(
                    dir,
                    "run.sink.file",
                )?)));
            }
            if let Some(mem) = m.get("memory") {
                let mm = map_of(mem, "run.sink.memory")?;
                known(mm, "run.sink.memory", &["rate"])?;
                return Ok(SinkConfig::Memory {
                    rate: mm
                        .get("rate")
                        .map(|r| count(r, "run.sink.memory.rate", 100_000_000))
                        .transpose()?,
                });
            }
            Ok(SinkConfig::Log)
        }
        _ => Err(err("run.sink", "use {file: DIR}, log, memory or discard")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["readings".into()]
    }

    #[test]
    fn a_full_run_section_parses() {
        let c = RunConfig::from_yaml(
            "run:\n  partitions: 4\n  workers: 2\n  checkpoint_interval_ms: 500\n  inputs:\n    readings: {generator: {kind: sensors, keys: 8, rate: 100}}\n  sink: {file: out}\n",
            &names(),
        )
        .expect("valid");
        assert_eq!(c.partitions, 4);
        assert_eq!(c.workers, 2);
        assert_eq!(c.checkpoint_interval, Some(Duration::from_millis(500)));
        assert_eq!(c.sink, SinkConfig::File("out".into()));
        assert_eq!(
            c.inputs,
            vec![InputConfig::Generator(GenConfig {
                kind: GenKind::Sensors { keys: 8 },
                rate: Some(100),
                limit: None
            })]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = |text: &str| {
            RunConfig::from_yaml(text, &names())
                .expect_err("invalid")
                .path
        };
        assert_eq!(e("name: x\n"), "run");
        assert_eq!(e("run: {inputs: {}, sink: log}\n"), "run.inputs.readings");
        assert_eq!(
            e("run: {inputs: {other: {generator: {}}}, sink: log}\n"),
            "run.inputs.other"
        );
        assert_eq!(
            e("run: {partitions: 0, inputs: {readings: {generator: {}}}, sink: log}\n"),
            "run.partitions"
        );
        assert_eq!(
            e("run: {inputs: {readings: {generator: {kind: lava}}}, sink: log}\n"),
            "run.inputs.readings.generator.kind"
        );
        assert_eq!(
            e("run: {inputs: {readings: {file: {paths: []}}}, sink: log}\n"),
            "run.inputs.readings.file.paths"
        );
        assert_eq!(
            e("run: {inputs: {readings: {generator: {}}}, sink: 3}\n"),
            "run.sink"
        );
    }
}
