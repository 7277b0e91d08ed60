//! The fire clock's batches: the planned fires of one instant, their items held by
//! multi-creates of their `running` markers, then started.
//!
//! Each chunk of up to [`BATCH_CREATES`] creates is sent as soon as it is planned. On
//! ZooKeeper its commit overlaps the planning of the next chunk; on the embedded store,
//! where ephemeral markers need no disk, it is committed within the sending call. Its
//! answer is awaited, and its fires started, by a task on the clock's own runtime (see `clock::Starter`), so that a chunk's
//! fires start as soon as its answer comes, not after whatever the main runtime has queued
//! meanwhile. A fire whose items are held is first polled there (see
//! [`JobShared::start_reserved_now`]) and goes on in a task of the main runtime.
//!
//! A batch held ahead of its fire time (see `clock::FireClock`) waits at a [`Gate`]
//! instead: the clock opens it at the time, and each fire is checked to still stand
//! before it starts.

use std::sync::{Arc, Mutex};
use std::task::Poll;

use capstan_registry::{Op, OpResult};
use tokio::runtime::Handle;

use super::job::JobShared;
use super::run::{Cause, Held, Plan, fire, hold, run, running_mode, still_planned};
use super::slot::poll_now;
use crate::history::now_ms;
use crate::protocol::storage::delete_if_value;

/// `running` creates per multi-create of a [`Batch`]: a multi is all or nothing, so a
/// smaller one loses less to a single item found running, and lets its items start sooner;
/// a larger one costs fewer requests. (About 100 bytes each on ZooKeeper, far below its
/// 1 MB request limit.)
const BATCH_CREATES: usize = 256;

/// A planned fire of the fire clock, with its reservation of the job's run slot.
pub(crate) type Planned = (Arc<JobShared>, u64, Plan);

/// The fire clock's planned fires, gathered into chunks of up to [`BATCH_CREATES`]
/// `running` creates; each chunk is held as soon as it is full.
pub(crate) struct Batch {
    chunk: Vec<Planned>,
    creates: usize,
    /// The chunks' tasks.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Where the chunks' tasks run (the fire clock's own runtime), and where their fires
    /// go on.
    starter: Handle,
    main: Handle,
    /// Held ahead of its fire time: where its answered chunks wait for it.
    gate: Option<Arc<Gate>>,
}

impl Batch {
    pub fn new(starter: Handle, main: Handle) -> Batch {
        Batch {
            chunk: Vec::new(),
            creates: 0,
            tasks: Vec::new(),
            starter,
            main,
            gate: None,
        }
    }

    /// A batch of fires planned ahead of their time (by `run::plan_ahead`, all with
    /// `monitorExecution`), which start when `gate` opens.
    pub fn ahead(starter: Handle, main: Handle, gate: Arc<Gate>) -> Batch {
        Batch {
            gate: Some(gate),
            ..Batch::new(starter, main)
        }
    }

    /// Adds a planned fire. A fire without `monitorExecution` holds nothing and starts at
    /// once.
    pub fn push(&mut self, (job, reservation, plan): Planned) {
        if !plan.config.monitor_execution {
            let held = Held {
                held: plan.items.clone(),
                busy: Vec::new(),
            };
            start_held(&job, reservation, plan, held);
            return;
        }
        self.creates += plan.items.len();
        self.chunk.push((job, reservation, plan));
        if self.creates >= BATCH_CREATES {
            self.flush();
        }
    }

    /// Sends the chunk being filled to be held: its multi-create goes out now (the first
    /// poll sends it, or on the embedded store commits it); the answer is awaited, and the
    /// fires started, on the clock's runtime, while the next chunk is planned.
    ///
    /// Called in the main runtime's context (the clock's dispatch enters it): on the
    /// embedded store, the write may start the store's committer task, which must not live
    /// on the clock's runtime (it serves every session of the store, and would end with
    /// this scheduler).
    pub fn flush(&mut self) {
        let chunk = std::mem::take(&mut self.chunk);
        let Some(registry) = chunk.first().map(|(job, _, _)| job.registry.clone()) else {
            return;
        };
        self.creates = 0;
        let ops: Vec<Op> = chunk
            .iter()
            .flat_map(|(job, _, plan)| {
                let mode = running_mode(&plan.config);
                plan.items.iter().map(move |item| Op::Create {
                    path: job.nodes.item_leaf(*item, "running"),
                    data: job.me.as_str().as_bytes().to_vec(),
                    mode,
                })
            })
            .collect();
        let mut answer = Box::pin(async move { registry.multi(ops).await });
        let first = poll_now(answer.as_mut());
        let main = self.main.clone();
        let gate = self.gate.clone();
        self.tasks.push(self.starter.spawn(async move {
            let answer = match first {
                Poll::Ready(answer) => answer,
                Poll::Pending => answer.await,
            };
            match gate {
                None => start_chunk(chunk, answer, &main, None),
                Some(gate) => gate.arrive(chunk, answer, &main),
            }
        }));
    }
}

type Answer = capstan_registry::Result<Vec<OpResult>>;

/// Where the answered chunks of a batch held ahead wait for their fire time.
///
/// Chunks answered before the clock opens it wait here, and the clock's thread starts
/// them when it does (it wakes on time, where a task woken then would start a fraction of
/// a millisecond late), with the starter's thread; a chunk answered later (a registry
/// slower than the lead) starts as its answer comes.
pub(crate) struct Gate {
    /// The fire time.
    at: i64,
    state: Mutex<GateState>,
}

enum GateState {
    Shut(Vec<(Vec<Planned>, Answer)>),
    Open,
    /// The clock ended first: nothing starts, what was held is released.
    Cancelled,
}

impl Gate {
    pub fn new(at: i64) -> Gate {
        Gate {
            at,
            state: Mutex::new(GateState::Shut(Vec::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leaves the shut state for `next`; the chunks that waited.
    fn end_wait(&self, next: GateState) -> Vec<(Vec<Planned>, Answer)> {
        match std::mem::replace(&mut *self.lock(), next) {
            GateState::Shut(waiting) => waiting,
            GateState::Open | GateState::Cancelled => Vec::new(),
        }
    }

    /// A chunk's answer came: it waits, or starts now if the gate is open.
    fn arrive(&self, chunk: Vec<Planned>, answer: Answer, main: &Handle) {
        let mut state = self.lock();
        match &mut *state {
            GateState::Shut(waiting) => waiting.push((chunk, answer)),
            GateState::Open => {
                drop(state);
                start_chunk(chunk, answer, main, Some(self.at));
            }
            GateState::Cancelled => {
                drop(state);
                let _main = main.enter();
                cancel_chunk(chunk, &answer);
            }
        }
    }

    /// The fire time came: starts the chunks answered, every other one here (the clock's
    /// thread) and the others on the starter's thread.
    ///
    /// Why two threads: starting a fire (its check, its first poll up to its items' starts)
    /// took the clock's thread about 5 µs, so the last of a thousand started 6-8 ms after
    /// the first; split over two, 4.5-5 ms (1,000 jobs a second, embedded store, the
    /// 2-vCPU test machine). The starter's thread is idle at the time: its chunks were
    /// answered before it.
    pub fn open(&self, main: &Handle, starter: &Handle) {
        let waiting = self.end_wait(GateState::Open);
        let at = self.at;
        let mut here = Vec::with_capacity(waiting.len().div_ceil(2));
        for (i, (chunk, answer)) in waiting.into_iter().enumerate() {
            if i % 2 == 0 {
                here.push((chunk, answer));
            } else {
                let main = main.clone();
                starter.spawn(async move { start_chunk(chunk, answer, &main, Some(at)) });
            }
        }
        for (chunk, answer) in here {
            start_chunk(chunk, answer, main, Some(at));
        }
    }

    /// The clock ends before the fire time: gives back the reservations, and releases
    /// the markers held.
    pub fn cancel(&self, main: &Handle) {
        let waiting = self.end_wait(GateState::Cancelled);
        let _main = main.enter();
        for (chunk, answer) in waiting {
            cancel_chunk(chunk, &answer);
        }
    }
}

fn cancel_chunk(chunk: Vec<Planned>, answer: &Answer) {
    for (job, reservation, plan) in chunk {
        job.release(reservation);
        if answer.is_ok() {
            spawn_release(job, plan.items);
        }
    }
}

/// Starts a chunk's fires once its multi-create is answered. A multi that fails (an item
/// found running after all, a connection lost) leaves its fires to hold their items one
/// create at a time, as a fire of its own does, so the outcome per item is what it would
/// have been (see [`super::run::fire`]). All jobs of a scheduler share its registry session.
///
/// `ahead`: the fire time of a chunk planned ahead of it. Each fire is then checked to
/// still stand; one that does not (its job disabled, paused, resharded, reconfigured
/// meanwhile) releases its markers and is decided afresh, as a fire of its own.
fn start_chunk(chunk: Vec<Planned>, answer: Answer, main: &Handle, ahead: Option<i64>) {
    // The fires' tasks (and what their first polls spawn) are the main runtime's.
    let _main = main.enter();
    match answer {
        Ok(_) => {
            for (job, reservation, mut plan) in chunk {
                if let Some(at) = ahead {
                    if !still_planned(&job, &plan, at) {
                        refire(&job, reservation, plan.items, at);
                        continue;
                    }
                    plan.began_ms = now_ms();
                }
                let held = Held {
                    held: plan.items.clone(),
                    busy: Vec::new(),
                };
                start_held(&job, reservation, plan, held);
            }
        }
        Err(e) if let Some(at) = ahead => {
            // Nothing was held (a multi is all or nothing), and the plans are old by now.
            tracing::debug!(error = %e, fires = chunk.len(), "batched running markers failed; each fire is decided afresh");
            for (job, reservation, _) in chunk {
                job.start_reserved(
                    reservation,
                    fire(job.clone(), Cause::Schedule { at_ms: at }),
                );
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, fires = chunk.len(), "batched running markers failed; each fire marks its own");
            for (job, reservation, plan) in chunk {
                let shared = job.clone();
                job.start_reserved(reservation, async move {
                    let held = hold(&shared, &plan.config, &plan.items).await;
                    run(shared, plan, held).await
                });
            }
        }
    }
}

/// Starts a batched fire whose items are held (its first poll here: see
/// [`JobShared::start_reserved_now`]); if its reservation was cancelled meanwhile
/// (fencing, a stop), releases what was held for it instead.
fn start_held(job: &Arc<JobShared>, reservation: u64, plan: Plan, held: Held) {
    let marked = plan.config.monitor_execution.then(|| held.held.clone());
    if job.start_reserved_now(reservation, run(job.clone(), plan, held)) {
        return;
    }
    if let Some(items) = marked {
        spawn_release(job.clone(), items);
    }
}

/// A fire held ahead that no longer stands at its time `at`: its markers go first, then
/// it is decided as a fire of its own (which may plan other items, or none).
fn refire(job: &Arc<JobShared>, reservation: u64, items: Vec<u32>, at: i64) {
    let shared = job.clone();
    let marked = items.clone();
    let started = job.start_reserved(reservation, async move {
        release(&shared, &marked).await;
        fire(shared, Cause::Schedule { at_ms: at }).await
    });
    if !started {
        spawn_release(job.clone(), items);
    }
}

/// Deletes this instance's `running` markers of `items`, in a task of its own.
fn spawn_release(job: Arc<JobShared>, items: Vec<u32>) {
    tokio::spawn(async move { release(&job, &items).await });
}

async fn release(job: &JobShared, items: &[u32]) {
    for item in items {
        let _ = delete_if_value(
            &job.registry,
            &job.nodes.item_leaf(*item, "running"),
            job.me.as_str(),
        )
        .await;
    }
}
