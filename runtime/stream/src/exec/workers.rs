//! The cooperative worker pool (the Jet model): a few threads, each calling its share of
//! the tasks in turn. A task's `call` does a bounded amount of work and returns, never
//! blocking on a queue, so thousands of tasks share two threads and a full queue only
//! makes its producer return early.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Control;

/// What a call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Moved something.
    Made,
    /// Had nothing to do, or was blocked by a full queue.
    Idle,
    /// Finished for good.
    Done,
}

/// A cooperative task.
pub(crate) trait Tasklet: Send {
    /// Does at most a batch of work.
    fn call(&mut self) -> Progress;
    /// For error messages: `aggregate#3`.
    fn name(&self) -> String;
}

/// Starts `workers` threads sharing `tasks` round-robin. They return when every task is
/// done or `control.stop` is set; a panicking task fails the pipeline (it is recorded in
/// `control` and every thread stops), never the process.
pub(crate) fn spawn(
    workers: usize,
    tasks: Vec<Box<dyn Tasklet>>,
    control: Arc<Control>,
) -> Vec<JoinHandle<()>> {
    let workers = workers.max(1);
    let mut shares: Vec<Vec<Box<dyn Tasklet>>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, t) in tasks.into_iter().enumerate() {
        shares[i % workers].push(t);
    }
    shares
        .into_iter()
        .enumerate()
        .map(|(i, share)| {
            let control = control.clone();
            std::thread::Builder::new()
                .name(format!("capstan-stream-{i}"))
                .spawn(move || run(share, &control))
                .unwrap_or_else(|e| panic!("cannot start a stream worker thread: {e}"))
        })
        .collect()
}

fn run(mut tasks: Vec<Box<dyn Tasklet>>, control: &Control) {
    let stop: &AtomicBool = &control.stop;
    let mut idle_rounds = 0u32;
    while !tasks.is_empty() && !stop.load(Ordering::Relaxed) {
        let mut made = false;
        let mut i = 0;
        while i < tasks.len() {
            let outcome = catch_unwind(AssertUnwindSafe(|| tasks[i].call()));
            match outcome {
                Ok(Progress::Made) => {
                    made = true;
                    i += 1;
                }
                Ok(Progress::Idle) => i += 1,
                Ok(Progress::Done) => {
                    tasks.swap_remove(i);
                }
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_else(|| "a panic".to_owned());
                    control.fail(format!("task {} failed: {what}", tasks[i].name()));
                    return;
                }
            }
        }
        // Idle strategy: spin a little (latency), then back off to sleeping up to 1 ms
        // (a pipeline waiting on a rate-limited source costs next to no CPU).
        if made {
            idle_rounds = 0;
        } else {
            idle_rounds = idle_rounds.saturating_add(1);
            if idle_rounds < 16 {
                std::thread::yield_now();
            } else {
                let us = 20u64 << (idle_rounds - 16).min(6);
                std::thread::sleep(Duration::from_micros(us.min(1000)));
            }
        }
    }
}
