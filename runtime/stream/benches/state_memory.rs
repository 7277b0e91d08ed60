//! `make bench`: the bytes an aggregate's state holds per key, counted by the allocator
//! (live bytes: allocated minus freed), not read from RSS, which also holds what the
//! allocator keeps for later and what earlier work left.
//!
//! - A running count per key (no window).
//! - A hopping window of 10 s every 2 s counting per key, plain and ranked (`rank: {by:
//!   n, top: 10}`), where a ranked window also holds the merge ahead of the next
//!   window's complete panes (`engine/panes/premerge.rs`). Measured at the end of each
//!   2 s pane, once the windows run steady, when five panes are open: the figure is bytes
//!   per key per open pane, each key in one pane.
//!
//! Single-threaded, on the replay engine (the executor's stage tasks hold the same
//! `Runner`). `CAPSTAN_BENCH_KEYS` (default 200,000): keys per pane.

use capstan_stream::{PipelineSpec, Runner, Val};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

/// The system allocator, counting what it hands out and takes back (so not the benches'
/// `support`, which sets mimalloc).
#[global_allocator]
static ALLOCATOR: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Bytes live now, against `region`'s start.
fn live(region: &Region<'_, std::alloc::System>) -> f64 {
    let c = region.change();
    (c.bytes_allocated as f64 - c.bytes_deallocated as f64) + c.bytes_reallocated as f64
}

fn record(key: u64, ts: i64) -> Val {
    Val::from_json(serde_json::json!({"k": key, "ts": ts}))
}

/// A running count per key, `keys` keys: bytes per key.
fn running_count(keys: u64) -> f64 {
    let spec = PipelineSpec::from_yaml(
        "name: state\nsources: [{name: s}]\nsteps:\n  - key_by: k\n  - aggregate: {ops: {n: count}}\n",
    )
    .expect("spec");
    let mut runner = Runner::new(spec);
    let region = Region::new(ALLOCATOR);
    for i in 0..keys {
        runner
            .push(i as usize + 1, record(i, i as i64))
            .expect("push");
        if i % 65_536 == 0 {
            drop(runner.drain());
        }
    }
    drop(runner.drain());
    live(&region) / keys as f64
}

/// A hopping window's steady state: `keys` keys in each 2 s pane, each key in one pane,
/// twelve panes. Bytes per key per open pane, the most of the steady panes.
fn hopping(keys: u64, rank: &str) -> f64 {
    let spec = PipelineSpec::from_yaml(&format!(
        "name: w\nsources: [{{name: s}}]\nsteps:\n  - key_by: k\n  - aggregate: {{window: {{hopping: {{size: 10000, advance: 2000}}}}, ops: {{n: count}}{rank}}}\n"
    ))
    .expect("spec");
    let mut runner = Runner::new(spec);
    let region = Region::new(ALLOCATOR);
    let mut most: f64 = 0.0;
    let mut line = 0usize;
    for pane in 0..12u64 {
        for i in 0..keys {
            line += 1;
            // Spread over the pane in time order; a few keys (one in 50) get a second
            // record, so counts differ and a ranking has something to rank.
            let ts = (pane * 2000 + i * 2000 / keys) as i64;
            let key = pane * keys + i;
            runner.push(line, record(key, ts)).expect("push");
            if i % 50 == 0 {
                line += 1;
                runner.push(line, record(key, ts)).expect("push");
            }
            if i % 65_536 == 0 {
                drop(runner.drain());
            }
        }
        drop(runner.drain());
        // Steady from the sixth pane: five open, windows closing every pane.
        if pane >= 5 {
            most = most.max(live(&region));
        }
    }
    most / (5 * keys) as f64
}

fn main() {
    let keys: u64 = std::env::var("CAPSTAN_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    println!("aggregate state, live bytes counted by the allocator, {keys} keys per pane");
    let count = running_count(keys * 5);
    println!(
        "running count per key ({} keys): {count:.0} bytes per key ({:.0} MiB per million keys)",
        keys * 5,
        count * 1e6 / 1048576.0
    );
    let plain = hopping(keys, "");
    println!(
        "hopping 10 s / 2 s count, plain: {plain:.0} bytes per key per open pane ({:.0} MiB per million)",
        plain * 1e6 / 1048576.0
    );
    let ranked = hopping(keys, ", rank: {by: n, top: 10}");
    println!(
        "hopping 10 s / 2 s count, ranked top 10 (with the merge ahead): {ranked:.0} bytes per key per open pane ({:.0} MiB per million); {:.2} times the plain window's",
        ranked * 1e6 / 1048576.0,
        ranked / plain
    );
}
