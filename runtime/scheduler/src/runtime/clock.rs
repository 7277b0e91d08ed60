//! The fire clock: one timer for every job of a [`Scheduler`](super::Scheduler), which
//! fires the jobs due at the same instant as one batch.
//!
//! Why one clock and not a timer per job: a thousand jobs due on the same second each woke
//! their own actor, planned their fire, and wrote their `running` markers one create at a
//! time, so the last item started after a thousand of those in a row (tens of ms on the
//! embedded store, the registry's p99 for a thousand separate creates on ZooKeeper). The
//! clock wakes once, plans every due job from its cached snapshot without awaiting anything,
//! and holds every planned item with one multi-create per batch: one commit on the embedded
//! store, one request and one log write on ZooKeeper. Exclusivity is unchanged: an item still
//! starts only once its `running` node was created by this instance (see `run`).
//!
//! A job's fire is planned here only when nothing in it needs the registry first (no
//! pending resharding, no failover item of this instance, no clock-skew check); otherwise the
//! job's full fire runs as before, in its own task. Either way the fire takes the job's run
//! slot, so a job never has two fires at once, and a fire due while one runs is a misfire
//! (§4.7).
//!
//! **Ahead of time.** An item cannot start before its `running` create is answered, and a
//! thousand creates take the registry a while: on ZooKeeper, some 15 ms for the median
//! and 23-34 ms for the last, on this project's test machine, with no scheduler at all. So
//! the clock plans the jobs due at a time [`FireClock::start`]'s `ahead` before it (50 ms by
//! default, as Quartz acquires its triggers ahead of their fire time), holds their items
//! then, and at the time only starts them, each once it has checked that its plan still
//! stands (see `batch::Gate`). What can only be decided at the time is left to it: a job
//! whose previous fire still runs (a misfire only if it still runs then), that fires
//! nothing here, needs the registry first, or runs without `monitorExecution`. What this
//! changes for an observer: a `running` marker appears up to `ahead` before its item
//! starts, and a trigger in that window waits for the fire and runs after it (see
//! `slot`), where one during a run is dropped.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use super::batch::{Batch, Gate};
use super::job::JobShared;
use super::run::{Due, plan_ahead, plan_scheduled};
use crate::cron::Schedule;
use crate::history::now_ms;

/// The handle jobs arm and disarm. Cheap to clone. The clock's thread ends when the last
/// handle is dropped.
#[derive(Clone)]
pub(crate) struct FireClock {
    shared: Arc<Shared>,
}

struct Shared {
    timeline: Arc<Timeline>,
    /// Ends the starter's thread when dropped.
    _stop_starter: tokio::sync::oneshot::Sender<()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.timeline.lock().closed = true;
        self.timeline.changed.notify_one();
    }
}

/// The armed fires, shared by the handles and the clock's thread (which holds no handle,
/// so that dropping the last one ends it).
#[derive(Default)]
struct Timeline {
    state: Mutex<State>,
    /// Told when an entry earlier than the one the clock sleeps for is armed, and when the
    /// clock is dropped.
    changed: Condvar,
}

impl Timeline {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where fires run: the runtime the scheduler was started on, and the clock's own.
struct Runtimes {
    /// The fires, and everything they spawn.
    main: Handle,
    /// The batches' tasks, up to their fires' starts (see [`Starter`]).
    starter: Handle,
}

/// The batches' tasks run on a single-threaded runtime of their own.
///
/// Why: a batch's multi-create, when applied, wakes a cache task of every job whose
/// `running` marker it wrote (one watch event each) just before it answers. On the shared
/// runtime the batch's task queued behind those thousand wake-ups, so each batch of 256
/// fires started some 4 ms after the one before, and the last fire of a thousand-job
/// second ~15 ms after the first. Here nothing else is queued: a batch starts its fires
/// as soon as its answer comes. The fires themselves (and everything they spawn) still
/// run on the main runtime: the starter only polls each fire once, up to its items'
/// starts.
struct Starter;

impl Starter {
    fn start() -> std::io::Result<(Handle, tokio::sync::oneshot::Sender<()>)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("capstan-fire-start".into())
            .spawn(move || {
                // Until the clock is dropped; its tasks then end with the runtime.
                let _ = runtime.block_on(stopped);
            })?;
        Ok((handle, stop))
    }
}

/// The default of [`super::SchedulerBuilder::fire_ahead`]: how long before their time
/// fires are planned and their items held. It covers a thousand `running` creates on
/// ZooKeeper on this project's test machine (23-34 ms for the last to be answered, the
/// worst of a day's runs) and the planning of a thousand jobs (a few ms).
pub(crate) const FIRE_AHEAD: Duration = Duration::from_millis(50);

/// How long before a fire time the clock's thread stops sleeping, and spins instead.
///
/// Why: a thread sleeping on a condition variable until a deadline was measured waking
/// 130-280 µs after it (this 2-vCPU VM's timer and vCPU wake-up), and every fire of the
/// instant started that much late. Spinning the last half millisecond costs that much CPU
/// once per fire instant (0.05 % of a core for jobs firing every second).
const SPIN: Duration = Duration::from_micros(500);

#[derive(Default)]
struct State {
    /// Every armed fire, by time: the clock sleeps until the first.
    due: BTreeSet<(i64, u64)>,
    /// Per job key: its armed fire time (`None` while a fire of it is being dispatched,
    /// so the clock re-arms it afterwards), and the job. A key missing here is disarmed.
    jobs: HashMap<u64, (Option<i64>, Weak<JobShared>)>,
    next_key: u64,
    /// Every handle is gone: the clock's thread ends.
    closed: bool,
}

impl FireClock {
    /// A clock, with its thread and its starter's, which end with the last handle. Fires
    /// are planned and their items held `ahead` of their time (zero: at their time).
    ///
    /// Must be called in the context of the runtime the fires are to run on.
    ///
    /// # Errors
    /// A thread could not be started.
    pub fn start(ahead: Duration) -> std::io::Result<FireClock> {
        let timeline = Arc::new(Timeline::default());
        let (starter, stop_starter) = Starter::start()?;
        let runtimes = Runtimes {
            main: Handle::current(),
            starter,
        };
        let shared = Arc::new(Shared {
            timeline: timeline.clone(),
            _stop_starter: stop_starter,
        });
        std::thread::Builder::new()
            .name("capstan-fire-clock".into())
            .spawn(move || run(&timeline, &runtimes, ahead.as_millis() as i64))?;
        Ok(FireClock { shared })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.timeline.lock()
    }

    /// A key for a new job.
    pub fn key(&self) -> u64 {
        let mut state = self.state();
        state.next_key += 1;
        state.next_key
    }

    /// Arms `job`'s next fire at `at` (ms since the epoch), replacing any earlier arming;
    /// `None` disarms it.
    pub fn set(&self, key: u64, job: &Arc<JobShared>, at: Option<i64>) {
        let earliest = {
            let mut state = self.state();
            if let Some((Some(old), _)) = state.jobs.get(&key) {
                let old = *old;
                state.due.remove(&(old, key));
            }
            match at {
                Some(at) => {
                    state.jobs.insert(key, (Some(at), Arc::downgrade(job)));
                    state.due.insert((at, key));
                }
                None => {
                    state.jobs.remove(&key);
                }
            }
            state.due.first().map(|(t, _)| *t)
        };
        if at.is_some() && earliest == at {
            self.shared.timeline.changed.notify_one();
        }
    }

    /// The armed fire time of `key`, if any.
    pub fn next_fire(&self, key: u64) -> Option<i64> {
        self.state().jobs.get(&key).and_then(|(at, _)| *at)
    }
}

/// How long until `fire_ms` (a wall-clock time), from the wall clock in microseconds: a
/// deadline computed from whole milliseconds would wake up to a millisecond late.
fn wait_for(fire_ms: i64) -> Duration {
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    Duration::from_micros(fire_ms.saturating_mul(1000).saturating_sub(now_us).max(0) as u64)
}

/// The clock's thread: sleeps until the next thing to do (or an earlier arming), spins its
/// last [`SPIN`], and does it, here: plans and holds the jobs due `ahead_ms` later, starts
/// the fires held for now, or dispatches what is due now and was not held ahead.
///
/// Why a thread: Tokio's timer counts whole milliseconds and fires on the first tick at or
/// after a deadline, so a sleep ends up to a millisecond (on a busy machine more) after it
/// was due, and every fire of the instant would start that much late. And why start the
/// fires here rather than wake a task to do it: the wake-up of a task on a parked runtime
/// thread cost another 0.4 ms before the first fire started.
fn run(timeline: &Arc<Timeline>, runtimes: &Runtimes, ahead_ms: i64) {
    // The fires held ahead, by time.
    let mut held: VecDeque<Ahead> = VecDeque::new();
    let mut state = timeline.lock();
    loop {
        if state.closed {
            drop(state);
            for ahead in held {
                ahead.gate.cancel(&runtimes.main);
            }
            return;
        }
        let first = state.due.first().map(|&(at, _)| at);
        let next = [held.front().map(|a| a.at), first.map(|at| at - ahead_ms)]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else {
            state = timeline
                .changed
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
            continue;
        };
        let wait = wait_for(next);
        if wait > SPIN {
            state = timeline
                .changed
                .wait_timeout(state, wait - SPIN)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            continue;
        }
        if !wait.is_zero() {
            // Unlocked, so jobs can still be armed and disarmed; the set is looked at
            // again afterwards.
            drop(state);
            let until = Instant::now() + wait;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            state = timeline.lock();
            continue;
        }
        let now = now_ms();
        if let Some(ahead) = held.pop_front_if(|a| a.at <= now) {
            drop(state);
            ahead.open(timeline, runtimes);
        } else if let Some(at) = first {
            let due = take_due(&mut state, at.max(now));
            drop(state);
            if at <= now {
                dispatch(timeline, runtimes, due);
            } else {
                let ahead = hold_ahead(timeline, runtimes, at, due);
                held.insert(held.partition_point(|a| a.at <= at), ahead);
            }
        } else {
            continue;
        }
        state = timeline.lock();
    }
}

/// The fires of one time held ahead of it, and the jobs due then that were not.
struct Ahead {
    at: i64,
    gate: Arc<Gate>,
    /// Decided at the time, as if they were due then.
    later: Vec<(Arc<JobShared>, i64)>,
}

impl Ahead {
    /// The time came: starts the fires held (those answered; the others as their answers
    /// come), then dispatches the jobs left to it.
    fn open(self, timeline: &Arc<Timeline>, runtimes: &Runtimes) {
        self.gate.open(&runtimes.main, &runtimes.starter);
        if !self.later.is_empty() {
            dispatch(timeline, runtimes, self.later);
        }
    }
}

/// Plans the jobs `due` at `at` (in the future) and holds the items of those it can plan
/// now (see `run::plan_ahead`); their fires wait for the clock to open the gate at `at`.
fn hold_ahead(
    timeline: &Arc<Timeline>,
    runtimes: &Runtimes,
    at: i64,
    due: Vec<(Arc<JobShared>, i64)>,
) -> Ahead {
    let _main = runtimes.main.enter();
    let gate = Arc::new(Gate::new(at));
    let mut batch = Batch::ahead(
        runtimes.starter.clone(),
        runtimes.main.clone(),
        gate.clone(),
    );
    let (mut planned, mut later) = (Vec::new(), Vec::new());
    for (job, at) in due {
        match plan_ahead(&job, at) {
            Some((reservation, plan)) => {
                batch.push((job.clone(), reservation, plan));
                planned.push((job, at));
            }
            None => later.push((job, at)),
        }
    }
    batch.flush();
    if !planned.is_empty() {
        // Re-armed once their markers are answered, which is before their time unless the
        // registry is slower than the lead: off the path of their starts.
        rearm_after(timeline, batch.tasks, planned);
    }
    Ahead { at, gate, later }
}

/// Takes every entry due by `now`, leaving each job's entry marked "being dispatched".
fn take_due(state: &mut State, now: i64) -> Vec<(Arc<JobShared>, i64)> {
    let mut due = Vec::new();
    while let Some(&(at, key)) = state.due.first() {
        if at > now {
            break;
        }
        state.due.pop_first();
        let job = match state.jobs.get_mut(&key) {
            Some((armed, job)) => {
                *armed = None;
                job.upgrade()
            }
            None => None,
        };
        match job {
            Some(job) => due.push((job, at)),
            // The job is gone: forget it.
            None => {
                state.jobs.remove(&key);
            }
        }
    }
    due
}

/// Fires `due`: plans each job (no awaiting), starts the fires that plan themselves, and
/// holds the planned items in batches (see [`Batch`]); then re-arms the jobs.
fn dispatch(timeline: &Arc<Timeline>, runtimes: &Runtimes, due: Vec<(Arc<JobShared>, i64)>) {
    // What the planning spawns (fires that plan themselves, fires without markers) is the
    // main runtime's.
    let _main = runtimes.main.enter();
    let mut batch = Batch::new(runtimes.starter.clone(), runtimes.main.clone());
    for (job, at) in &due {
        match plan_scheduled(job, *at) {
            Due::Planned { reservation, plan } => batch.push((job.clone(), reservation, plan)),
            Due::Started | Due::Skipped => {}
        }
    }
    batch.flush();
    if batch.tasks.is_empty() {
        rearm(timeline, due);
        return;
    }
    // Re-arming waits for the batch's fires to have started: it takes a few µs per job
    // (the next cron time), and they would otherwise wait for it.
    rearm_after(timeline, batch.tasks, due);
}

/// Re-arms `due` (see [`rearm`]) once `tasks` (a batch's chunks) have ended, in a task of
/// the main runtime.
fn rearm_after(
    timeline: &Arc<Timeline>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    due: Vec<(Arc<JobShared>, i64)>,
) {
    let timeline = timeline.clone();
    tokio::spawn(async move {
        for task in tasks {
            let _ = task.await;
        }
        rearm(&timeline, due);
    });
}

/// Arms each dispatched job for its next fire time after `at` (Quartz "do nothing": fire
/// times missed while busy or asleep are not replayed).
fn rearm(timeline: &Timeline, due: Vec<(Arc<JobShared>, i64)>) {
    let now = now_ms();
    let mut earliest = i64::MAX;
    // Per distinct time to compute from (one, when the jobs were due together).
    let mut memos: HashMap<i64, Vec<(Schedule, Option<i64>)>> = HashMap::new();
    for (job, at) in due {
        let after = at.max(now);
        let next = job.next_fire_memo(after, memos.entry(after).or_default());
        let mut state = timeline.lock();
        let key = job.clock_key();
        // Re-armed by its actor meanwhile (a new cron) or disarmed (stopped): leave it.
        if !matches!(state.jobs.get(&key), Some((None, _))) {
            continue;
        }
        match next {
            Some(next) => {
                state.jobs.insert(key, (Some(next), Arc::downgrade(&job)));
                state.due.insert((next, key));
                earliest = earliest.min(next);
            }
            None => {
                state.jobs.remove(&key);
            }
        }
    }
    // Outside the clock's thread: wake it if it sleeps for something later.
    if timeline
        .lock()
        .due
        .first()
        .is_some_and(|(t, _)| *t == earliest)
    {
        timeline.changed.notify_one();
    }
}
