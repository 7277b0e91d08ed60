//! `make bench`: the stream engine's replay path on Nexmark-shaped bids, single-threaded.
//!
//! This measures the semantic core as it exists now (one thread, JSON values between
//! operators), not the partitioned executor the stream issue's targets are for: the
//! figures are where that work starts from. Events are generated in memory first, so
//! the rates are of the engine, not of JSON parsing.
//!
//! `CAPSTAN_BENCH_EVENTS` (default 1,000,000) and `CAPSTAN_BENCH_KEYS` (state size test,
//! default 1,000,000).

use std::time::Instant;

use capstan_stream::exec::nexmark;
use capstan_stream::{PipelineSpec, Runner, Val};
use serde_json::{Value, json};

mod support;
use support::{cpu_seconds, env_or, rss_mib};

/// Nexmark's bids ([`nexmark::bid`]), event time advancing 0.1 ms per bid (Nexmark's
/// default 10,000 events a second).
fn bids(n: u64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let bid = nexmark::bid(i);
            json!({
                "ts": i / 10,
                "auction": bid.auction,
                "bidder": bid.bidder,
                "price": bid.price,
            })
        })
        .collect()
}

fn run(label: &str, spec: &str, events: &[Value]) {
    let spec = PipelineSpec::from_yaml(spec).expect("spec");
    let mut runner = Runner::new(spec);
    let input: Vec<Val> = events.iter().cloned().map(Val::from_json).collect();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut out = 0usize;
    for (i, e) in input.into_iter().enumerate() {
        runner.push(i + 1, e).expect("push");
        if i % 4096 == 0 {
            out += runner.drain().len();
        }
    }
    runner.finish();
    out += runner.drain().len();
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (cpu_seconds() - cpu0).max(0.01);
    println!(
        "{label:<34} {:>7.2} M events/s, {:>7.2} M events per CPU-second ({} out)",
        events.len() as f64 / wall / 1e6,
        events.len() as f64 / cpu / 1e6,
        out
    );
}

fn main() {
    let n = env_or("CAPSTAN_BENCH_EVENTS", 1_000_000) as usize;
    let keys = env_or("CAPSTAN_BENCH_KEYS", 1_000_000) as usize;
    println!(
        "stream replay engine, single-threaded, {n} Nexmark-shaped bids, {} cores on the machine",
        std::thread::available_parallelism().map_or(0, |c| c.get())
    );
    // State: a running count per key, `keys` distinct keys.
    let spec = PipelineSpec::from_yaml(
        "name: state\nsources: [{name: s}]\nsteps:\n  - key_by: k\n  - aggregate: {ops: {n: count}}\n",
    )
    .expect("spec");
    let mut runner = Runner::new(spec);
    let before = rss_mib();
    for i in 0..keys {
        runner
            .push(i + 1, Val::from_json(json!({"k": i, "ts": i as i64})))
            .expect("push");
        if i % 65_536 == 0 {
            runner.drain();
        }
    }
    runner.drain();
    println!(
        "state: {:.0} MiB of RSS per million keys (a running count per key)",
        (rss_mib() - before) * 1e6 / keys as f64
    );
    let events = bids(n as u64);
    run(
        "Q0 pass-through",
        "name: q0\nsources: [{name: bids}]\n",
        &events,
    );
    run(
        "Q1 price x 0.908",
        "name: q1\nsources: [{name: bids}]\nsteps:\n  - map: {auction: auction, bidder: bidder, price: 'price * 0.908'}\n",
        &events,
    );
    run(
        "Q2 auction % 123 == 0",
        "name: q2\nsources: [{name: bids}]\nsteps:\n  - filter: 'auction % 123 == 0'\n",
        &events,
    );
    run(
        "Q5 hot items (hopping 10s/2s, most bids)",
        "name: q5\nsources: [{name: bids}]\nsteps:\n  - key_by: auction\n  - aggregate: {window: {hopping: {size: 10000, advance: 2000}}, ops: {bids: count}, rank: {by: bids, top: 1}}\n",
        &events,
    );
    run(
        "Q7 highest bids (tumbling 10s, top price)",
        "name: q7\nsources: [{name: bids}]\nsteps:\n  - aggregate: {window: {tumbling: 10000}, ops: {highest: {top: {n: 1, by: price, ties: true}}}}\n",
        &events,
    );
}
