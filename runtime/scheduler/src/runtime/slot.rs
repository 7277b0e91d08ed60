//! A job's run slot: at most one fire of a job at a time on this instance, whoever starts it
//! (the fire clock, a trigger, a failover enquiry), and none while the job is fenced or
//! stopped here.
//!
//! The fire clock plans many jobs first and holds their items in one batch, so it
//! *reserves* each job's slot while planning and starts the fire only once the batch is
//! written. A reservation counts as a fire in progress (a second scheduled fire is a
//! misfire), and fencing or a stop cancels it: the fire then never starts, and what the
//! batch held for it is released. A trigger during a run is dropped, as ElasticJob drops
//! it; one during a reservation (the clock plans fires up to `fire_ahead` before their
//! time) waits: the fire runs its items again for it once they ran (`run::run`), or, if
//! the fire runs nothing, the trigger fires once the slot is free again. It came before
//! the fire began.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::FutureExt;
use tokio::task::JoinHandle;

use super::job::JobShared;
use super::run::{Cause, RunReport, fire};

/// See the module docs.
#[derive(Default)]
pub(crate) struct RunSlot {
    current: Current,
    next_id: u64,
    /// No fire may start: the session was lost (until this instance registers again), or
    /// the job was stopped here.
    refused: bool,
    /// A trigger (its parameter) that came while a fire was reserved: it fires when the
    /// slot is free again.
    waiting_trigger: Option<Option<String>>,
}

impl RunSlot {
    /// Reserves the slot, which is idle and accepts fires; the reservation's id.
    fn reserve_idle(&mut self) -> u64 {
        self.next_id += 1;
        self.current = Current::Reserved(self.next_id);
        self.next_id
    }

    /// Reservation `id` stands and fires are accepted.
    fn holds(&self, id: u64) -> bool {
        !self.refused && matches!(self.current, Current::Reserved(r) if r == id)
    }
}

/// `fire`, with a panic turned into an empty report: a fire that panics (a bug) must not
/// hold the slot for ever, or the job would never fire here again.
fn guarded<F>(shared: &Arc<JobShared>, fire: F) -> Pin<Box<dyn Future<Output = RunReport> + Send>>
where
    F: Future<Output = RunReport> + Send + 'static,
{
    let name = shared.name.clone();
    Box::pin(async move {
        match std::panic::AssertUnwindSafe(fire).catch_unwind().await {
            Ok(report) => report,
            Err(_) => {
                tracing::error!(job = %name, "a fire panicked; the job fires again at its next time");
                RunReport::default()
            }
        }
    })
}

#[derive(Default)]
enum Current {
    #[default]
    Idle,
    /// Planned by the fire clock, not started yet.
    Reserved(u64),
    /// Its task: aborted by fencing, awaited by a graceful stop.
    Running(u64, JoinHandle<()>),
}

/// Polls `f` once, here, with a no-op waker: what it can do without waiting happens now
/// (a request is sent, an item starts). Whoever awaits it afterwards polls it again with a
/// real waker, and a future registers the waker of every poll, so no wake-up is lost.
pub(crate) fn poll_now<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(Waker::noop()))
}

/// What became of a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Triggered {
    Started,
    /// A fire was reserved, not started: the trigger fires after it.
    Waiting,
    /// A fire runs (as ElasticJob does), or fires are refused.
    Dropped,
}

/// Why a slot could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// A fire is in progress (or reserved).
    Busy,
    /// Fires are refused (fenced or stopped).
    Refused,
}

impl JobShared {
    fn slot(&self) -> MutexGuard<'_, RunSlot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves the slot for a fire about to be planned; its id.
    pub fn reserve(&self) -> Result<u64, Taken> {
        let mut slot = self.slot();
        if slot.refused {
            return Err(Taken::Refused);
        }
        if !matches!(slot.current, Current::Idle) {
            return Err(Taken::Busy);
        }
        Ok(slot.reserve_idle())
    }

    /// Gives back reservation `id`, unused.
    pub fn release(self: &Arc<Self>, id: u64) {
        let mut slot = self.slot();
        if matches!(slot.current, Current::Reserved(r) if r == id) {
            slot.current = Current::Idle;
            let waiting = slot.waiting_trigger.take();
            drop(slot);
            self.trigger_waiting(waiting);
        }
    }

    /// Fires a trigger with `parameter`, unless a fire runs (see [`Triggered`]).
    pub fn trigger(self: &Arc<Self>, parameter: Option<String>) -> Triggered {
        let mut slot = self.slot();
        if slot.refused {
            return Triggered::Dropped;
        }
        match slot.current {
            Current::Idle => {
                // Reserved under the same lock: the clock cannot take the slot in between.
                let id = slot.reserve_idle();
                drop(slot);
                let fire = fire(self.clone(), Cause::Trigger { parameter });
                if self.start_reserved(id, fire) {
                    Triggered::Started
                } else {
                    Triggered::Dropped
                }
            }
            Current::Reserved(_) => {
                slot.waiting_trigger = Some(parameter);
                Triggered::Waiting
            }
            Current::Running(..) => Triggered::Dropped,
        }
    }

    /// The trigger waiting for the fire in progress, taken: that fire runs it.
    pub fn take_waiting_trigger(&self) -> Option<Option<String>> {
        self.slot().waiting_trigger.take()
    }

    fn trigger_waiting(self: &Arc<Self>, waiting: Option<Option<String>>) {
        if let Some(parameter) = waiting
            && self.trigger(parameter) == Triggered::Waiting
        {
            tracing::debug!(job = %self.name, "a waiting trigger waits again, for the next fire");
        }
    }

    /// Starts `fire` under reservation `id`; `false` (and `fire` dropped unpolled) if the
    /// reservation was cancelled meanwhile.
    pub fn start_reserved<F>(self: &Arc<Self>, id: u64, fire: F) -> bool
    where
        F: Future<Output = RunReport> + Send + 'static,
    {
        let mut slot = self.slot();
        if !slot.holds(id) {
            return false;
        }
        slot.current = Current::Running(id, self.spawn_fire(id, guarded(self, fire)));
        true
    }

    /// [`Self::start_reserved`], except that the fire's first poll happens right here, on
    /// the caller's task, before a task of its own takes it over.
    ///
    /// Why: the fire clock starts a thousand fires as their batch of `running` markers is
    /// written, and that same write has just woken a thousand cache tasks (one per job,
    /// for the marker's event). A fire spawned now would queue behind them; polled here, it
    /// starts its items (the first poll runs up to the items' own first awaits) before the
    /// caller yields. The poll uses a no-op waker: the fire's task polls it again as soon
    /// as it runs, and a future re-registers its waker on every poll.
    pub fn start_reserved_now<F>(self: &Arc<Self>, id: u64, fire: F) -> bool
    where
        F: Future<Output = RunReport> + Send + 'static,
    {
        if !self.slot().holds(id) {
            return false;
        }
        let mut fire = guarded(self, fire);
        if let Poll::Ready(report) = poll_now(fire.as_mut()) {
            self.finished(id, report);
            return true;
        }
        let mut slot = self.slot();
        if !slot.holds(id) {
            // Fenced or stopped during that first poll: as if aborted then.
            drop(slot);
            drop(fire);
            self.abandon_in_flight("abandoned: the job was stopped here as its fire started");
            return true;
        }
        slot.current = Current::Running(id, self.spawn_fire(id, fire));
        true
    }

    /// The fire's task; spawned with the slot locked, so that it cannot finish (and clear
    /// the slot) before its handle is in it.
    fn spawn_fire<F>(self: &Arc<Self>, id: u64, fire: F) -> JoinHandle<()>
    where
        F: Future<Output = RunReport> + Send + 'static,
    {
        let shared = self.clone();
        tokio::spawn(async move {
            let report = fire.await;
            shared.finished(id, report);
        })
    }

    /// Starts `fire` unless a fire is in progress or fires are refused; whether it started.
    pub fn start_run<F>(self: &Arc<Self>, fire: F) -> bool
    where
        F: Future<Output = RunReport> + Send + 'static,
    {
        match self.reserve() {
            Ok(id) => self.start_reserved(id, fire),
            Err(_) => false,
        }
    }

    /// A fire is in progress or reserved.
    pub fn run_in_progress(&self) -> bool {
        !matches!(self.slot().current, Current::Idle)
    }

    /// Refuses fires from now on (fencing, a stop), or accepts them again. A waiting
    /// trigger is dropped: no item starts while fenced.
    pub fn refuse(&self, refused: bool) {
        let mut slot = self.slot();
        slot.refused = refused;
        if refused {
            slot.waiting_trigger = None;
        }
    }

    /// Takes the fire in progress out of the slot: its task, to abort or await. A
    /// reservation is cancelled (its fire will not start).
    pub fn take_run(&self) -> Option<JoinHandle<()>> {
        match std::mem::take(&mut self.slot().current) {
            Current::Running(_, task) => Some(task),
            Current::Idle | Current::Reserved(_) => None,
        }
    }

    /// Fire `id` ended with `report`: counts it, frees the slot, and looks for failover
    /// work (§4.5 step 9).
    fn finished(self: &Arc<Self>, id: u64, report: RunReport) {
        if report.executed > 0 {
            self.counters.fires.fetch_add(1, Ordering::Relaxed);
        }
        self.counters
            .executed
            .fetch_add(report.executed as u64, Ordering::Relaxed);
        self.counters
            .failed
            .fetch_add(report.failed as u64, Ordering::Relaxed);
        let waiting = {
            let mut slot = self.slot();
            if matches!(slot.current, Current::Running(r, _) | Current::Reserved(r) if r == id) {
                slot.current = Current::Idle;
                slot.waiting_trigger.take()
            } else {
                None
            }
        };
        self.trigger_waiting(waiting);
        // The config first: the snapshot after a run is a fresh one, worth reading only
        // when there can be failover work.
        if !self.current_config().failover {
            return;
        }
        let snap = self.snapshot();
        let mine = snap
            .items
            .values()
            .any(|n| n.failover.as_deref() == Some(self.me.as_str()));
        if !snap.failover_pending.is_empty() || mine {
            self.start_run(fire(self.clone(), Cause::Failover));
        }
    }
}
