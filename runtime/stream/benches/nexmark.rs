//! `make bench`: Nexmark-shaped queries on the partitioned executor, with the built-in bid
//! generator in the same process at full speed and a discarding sink.
//!
//! Reports, per query: events/s, events per CPU-second of the whole process (every
//! worker, the coordinator), then sink p99 latency at 50 % of the measured maximum rate,
//! and memory per million keys of aggregation state. Q3 joins auctions to a table of
//! people; Q8-like joins new people and their auctions within 10 s (an interval join, where
//! Nexmark's Q8 uses tumbling windows).
//!
//! Each query runs `CAPSTAN_BENCH_ROUNDS` times (default 3), the queries in turn each
//! round, and the summary gives the median and the range. Why: on the shared 2-core test
//! machine one run of a query was measured anywhere between two levels a third apart,
//! depending on the pipeline run before it in the process, and a single figure said
//! little.
//!
//! `CAPSTAN_BENCH_EVENTS` (default 10,000,000: at millions a second, fewer leave the
//! start-up, the first checkpoint and the teardown a visible share of the CPU), `CAPSTAN_BENCH_PARTITIONS` (default: cores),
//! `CAPSTAN_BENCH_KEYS` (state test, default 500,000). `CAPSTAN_BENCH_ONLY=Q5` runs only
//! the queries whose label starts with it (and their latency test), no state test;
//! `CAPSTAN_BENCH_NO_LATENCY` skips the latency tests; `CAPSTAN_BENCH_CHECKPOINT_MS`
//! (default 1,000) spaces the checkpoints. Those two are for counting instructions under
//! callgrind (README, Development). `CAPSTAN_BENCH_LATENCY_RATE` sets the latency tests'
//! rate (events/s; default half the measured maximum), to compare runs at one rate.

use std::time::{Duration, Instant};

use capstan_stream::exec::{Pipeline, PipelineStatus, StartMode, State};

mod support;
use support::{cpu_seconds, env_or, rss_mib};

const QUERIES: [(&str, &str); 5] = [
    ("Q0 pass-through", ""),
    (
        "Q1 price x 0.908",
        "  - map: {auction: auction, bidder: bidder, price: 'price * 0.908'}\n",
    ),
    (
        "Q2 auction % 123 == 0",
        "  - filter: 'auction % 123 == 0'\n",
    ),
    (
        "Q5 hot items (hopping 10s/2s, most bids)",
        "  - key_by: auction\n  - aggregate: {window: {hopping: {size: 10000, advance: 2000}}, ops: {bids: count}, rank: {by: bids, top: 1}}\n",
    ),
    (
        "Q7 highest bids (tumbling 10s, top price)",
        "  - aggregate: {window: {tumbling: 10000}, ops: {highest: {top: {n: 1, by: price, ties: true}}}}\n",
    ),
];

/// Milliseconds between checkpoints: `CAPSTAN_BENCH_CHECKPOINT_MS`, default 1,000. (Under
/// callgrind a run is some fifty times slower, so a second's checkpoints would come fifty
/// times as often per event.)
fn checkpoint_every() -> u64 {
    env_or("CAPSTAN_BENCH_CHECKPOINT_MS", 1000)
}

fn spec(steps: &str, partitions: u64, generator: &str) -> String {
    let every = checkpoint_every();
    let steps = if steps.is_empty() {
        "steps: []\n".to_owned()
    } else {
        format!("steps:\n{steps}")
    };
    format!(
        "name: bench\nsources: [{{name: bids}}]\n{steps}run:\n  partitions: {partitions}\n  workers: {partitions}\n  checkpoint_interval_ms: {every}\n  inputs:\n    bids: {{generator: {{{generator}}}}}\n  sink: discard\n"
    )
}

/// Runs `text` to its end; events per second. Prints the rates and `what` the run made.
fn run_to_end(
    label: &str,
    text: &str,
    events: u64,
    what: impl Fn(&PipelineStatus) -> String,
) -> Rates {
    let dir = tempfile::tempdir().expect("dir");
    let cpu = cpu_seconds();
    let t = Instant::now();
    let p = Pipeline::start(text, dir.path(), StartMode::Fresh).expect("start");
    let state = p.wait(Duration::from_secs(600));
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    assert_eq!(state, State::Finished, "{label}: {:?}", p.status().error);
    let rates = Rates {
        per_s: events as f64 / wall,
        per_cpu_s: events as f64 / cpu.max(1e-3),
    };
    println!(
        "{label:<44} {:>7.3} M events/s   {:>7.3} M events/CPU-s   ({events} events, {wall:.2} s, {})",
        rates.per_s / 1e6,
        rates.per_cpu_s / 1e6,
        what(&p.status()),
    );
    rates
}

/// One run's throughput: events per second of wall time, and per CPU-second.
#[derive(Clone, Copy)]
struct Rates {
    per_s: f64,
    per_cpu_s: f64,
}

/// Each query's runs, in the order the queries first ran.
#[derive(Default)]
struct Runs(Vec<(&'static str, Vec<Rates>)>);

impl Runs {
    fn add(&mut self, label: &'static str, r: Rates) {
        match self.0.iter_mut().find(|(l, _)| *l == label) {
            Some((_, runs)) => runs.push(r),
            None => self.0.push((label, vec![r])),
        }
    }

    /// The median events/s of `label`'s runs.
    fn median_rate(&self, label: &str) -> f64 {
        self.0
            .iter()
            .find(|(l, _)| *l == label)
            .map_or(0.0, |(_, runs)| median(runs.iter().map(|r| r.per_s)).1)
    }

    fn print(&self) {
        println!("summary: median (min-max) of each query's runs");
        for (label, runs) in &self.0 {
            let (lo, mid, hi) = median(runs.iter().map(|r| r.per_cpu_s));
            println!(
                "{label:<44} {:>7.3} M events/CPU-s ({:.3}-{:.3})   {:>7.3} M events/s   ({} runs)",
                mid / 1e6,
                lo / 1e6,
                hi / 1e6,
                median(runs.iter().map(|r| r.per_s)).1 / 1e6,
                runs.len()
            );
        }
    }
}

/// (min, median, max); the upper median of an even count.
fn median(xs: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let mut v: Vec<f64> = xs.collect();
    v.sort_by(f64::total_cmp);
    match (v.first(), v.get(v.len() / 2), v.last()) {
        (Some(lo), Some(mid), Some(hi)) => (*lo, *mid, *hi),
        _ => (0.0, 0.0, 0.0),
    }
}

/// A bid query run to the end of `events` bids.
fn throughput(label: &str, steps: &str, events: u64, partitions: u64) -> Rates {
    let text = spec(steps, partitions, &format!("kind: bids, limit: {events}"));
    run_to_end(label, &text, events, |s| {
        format!("{} checkpoints", s.checkpoints.last().map_or(0, |c| c.id))
    })
}

/// The join queries: (label, sources, join and steps, inputs with `{auctions}` and
/// `{persons}` for their counts).
const JOINS: [(&str, &str, &str, &str); 2] = [
    (
        "Q3 local sellers (auctions x persons table)",
        "sources: [{name: auctions}, {name: persons, kind: table}]\n",
        "join: {left: auctions, right: persons, kind: stream_table, type: inner}\nsteps:\n  - filter: \"left.category == 10 and (right.state == 'OR' or right.state == 'ID' or right.state == 'CA')\"\n  - map: {name: right.name, city: right.city, state: right.state, auction: left.id}\n",
        "auctions: {generator: {kind: auctions, limit: {auctions}}}, persons: {generator: {kind: persons, limit: {persons}}}",
    ),
    (
        "Q8-like new sellers (persons x auctions, 10 s)",
        "sources: [{name: persons}, {name: auctions}]\n",
        "join: {left: persons, right: auctions, kind: stream_stream, type: inner, within_ms: 10000}\nsteps:\n  - map: {person: left.id, name: left.name, auction: right.id}\n",
        "persons: {generator: {kind: persons, limit: {persons}}}, auctions: {generator: {kind: auctions, limit: {auctions}}}",
    ),
];

fn join_throughput(
    label: &str,
    sources: &str,
    body: &str,
    inputs: &str,
    events: u64,
    partitions: u64,
) -> Rates {
    // Nexmark's mix: three auctions for each person.
    let inputs = inputs
        .replace("{auctions}", &(events / 4 * 3).to_string())
        .replace("{persons}", &(events / 4).to_string());
    let every = checkpoint_every();
    let text = format!(
        "name: join\n{sources}{body}run:\n  partitions: {partitions}\n  workers: {partitions}\n  checkpoint_interval_ms: {every}\n  inputs: {{{inputs}}}\n  sink: discard\n"
    );
    run_to_end(label, &text, events, |s| {
        format!("{} results", s.vertices.last().map_or(0, |v| v.records_out))
    })
}

/// Runs at `rate` events/s for `seconds`; the median of the per-second sink p99s (of the
/// seconds with results: a 2 s hopping window has results every other second).
fn latency(label: &str, steps: &str, rate: u64, partitions: u64, seconds: u64) {
    let dir = tempfile::tempdir().expect("dir");
    let text = spec(steps, partitions, &format!("kind: bids, rate: {rate}"));
    let p = Pipeline::start(&text, dir.path(), StartMode::Fresh).expect("start");
    std::thread::sleep(Duration::from_secs(seconds));
    let s = p.status();
    p.stop();
    let mut p99: Vec<f64> = s.samples.iter().skip(2).filter_map(|x| x.p99_ms).collect();
    p99.sort_by(f64::total_cmp);
    let median = p99.get(p99.len() / 2).copied();
    let worst = p99.last().copied();
    let read: u64 = s.vertices.first().map_or(0, |v| v.records_in);
    println!(
        "{label:<44} at {rate} events/s: sink p99 median {} ms, worst second {} ms, over {} seconds with results ({read} events read)",
        median.map_or("–".into(), |v| format!("{v:.2}")),
        worst.map_or("–".into(), |v| format!("{v:.2}")),
        p99.len(),
    );
}

fn state_memory(keys: u64, partitions: u64) {
    let dir = tempfile::tempdir().expect("dir");
    let events = keys * 5;
    let text = format!(
        "name: state\nsources: [{{name: r}}]\nsteps:\n  - key_by: sensor\n  - aggregate: {{ops: {{n: count}}}}\nrun:\n  partitions: {partitions}\n  workers: {partitions}\n  checkpoint_interval_ms: 0\n  inputs:\n    r: {{generator: {{kind: sensors, keys: {keys}, limit: {events}}}}}\n  sink: discard\n"
    );
    let before = rss_mib();
    let p = Pipeline::start(&text, dir.path(), StartMode::Fresh).expect("start");
    assert_eq!(p.wait(Duration::from_secs(600)), State::Finished);
    let after = rss_mib();
    // Five draws per key: all but e^-5 (0.7 %) of the keys are hit.
    let distinct = keys as f64 * (1.0 - (-5.0f64).exp());
    println!(
        "state: {keys} keys ({events} events): RSS {before:.0} → {after:.0} MiB, {:.0} MiB per million keys",
        (after - before) / distinct * 1e6
    );
    drop(p);
}

/// The queries whose latency is measured (Q1 and Q5), by index in [`QUERIES`], and for
/// how long: Q5's windows close every 2 s, so it runs long enough for several closes.
const LATENCY: [(usize, u64); 2] = [(1, 7), (3, 20)];

/// `CAPSTAN_BENCH_ONLY`: the query label prefix to run alone.
fn only() -> Option<String> {
    std::env::var("CAPSTAN_BENCH_ONLY")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Events per throughput run unless `CAPSTAN_BENCH_EVENTS` says otherwise.
const EVENTS: u64 = 10_000_000;

fn main() {
    let events = env_or("CAPSTAN_BENCH_EVENTS", EVENTS);
    let rounds = env_or("CAPSTAN_BENCH_ROUNDS", 3).max(1);
    let prefix = only();
    // For instruction counts under callgrind, where a paced run would only add noise.
    let no_latency = std::env::var_os("CAPSTAN_BENCH_NO_LATENCY").is_some();
    let cores = std::thread::available_parallelism().map_or(2, |c| c.get() as u64);
    let partitions = env_or("CAPSTAN_BENCH_PARTITIONS", cores);
    let wanted = |label: &str| {
        prefix
            .as_ref()
            .is_none_or(|p| label.starts_with(p.as_str()))
    };
    println!(
        "executor: {partitions} partitions on {partitions} worker threads, {cores} cores, bid generator in process, discard sink; {rounds} rounds"
    );
    if prefix.is_none() {
        // First, while the heap is fresh: freed memory of earlier runs would hide growth.
        state_memory(env_or("CAPSTAN_BENCH_KEYS", 500_000), partitions);
    }
    let mut runs = Runs::default();
    for _ in 0..rounds {
        for (label, steps) in QUERIES.iter().filter(|q| wanted(q.0)) {
            runs.add(label, throughput(label, steps, events, partitions));
        }
        for (label, sources, body, inputs) in JOINS.iter().filter(|j| wanted(j.0)) {
            let r = join_throughput(label, sources, body, inputs, events / 2, partitions);
            runs.add(label, r);
        }
    }
    runs.print();
    for (i, seconds) in LATENCY {
        let (label, steps) = QUERIES[i];
        if wanted(label) && !no_latency {
            let half = (runs.median_rate(label) * 0.5) as u64;
            let rate = env_or("CAPSTAN_BENCH_LATENCY_RATE", half);
            latency(label, steps, rate, partitions, seconds);
        }
    }
}
