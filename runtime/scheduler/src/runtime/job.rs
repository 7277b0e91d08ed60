//! The actor that runs one job on one instance.
//!
//! It owns the cron timer and at most one fire in progress, and reacts to the job's cache
//! the way Java's listeners do (spec §4.2-§4.13). Reactions are computed by diffing the
//! cache's state against the last one seen rather than from individual events: the cache
//! coalesces events under load, and a diff cannot miss an instance that came and went, or
//! apply a change twice.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use capstan_registry::Registry;
use capstan_registry::cache::TreeCache;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use super::clock::FireClock;
use super::registration::{self, register, setup_config};
use super::release::Releaser;
use super::run::{Cause, fire};
use super::slot::{RunSlot, Triggered};
use super::snapshot::Snapshot;
use super::{Command, Connection, Inner, Link, Scheduler, failover};
use crate::config::JobConfig;
use crate::cron::{Schedule, Zone};
use crate::history::{History, ItemFinished, ItemStarted, now_ms};
use crate::instance::InstanceId;
use crate::kinds::JobKind;
use crate::protocol::nodes::JobNodes;
use crate::protocol::sharding::available_instances;
use crate::protocol::storage::{create_if_absent, remove};
use crate::{Error, Result};

/// Where a job's config comes from.
pub(crate) enum Source {
    /// Defined by the embedding application (or a job file).
    Local(Box<JobConfig>),
    /// Found in the registry (an agent running a console-created job).
    Registry(String),
}

impl Source {
    pub fn name(&self) -> &str {
        match self {
            Source::Local(c) => &c.job_name,
            Source::Registry(n) => n,
        }
    }
}

/// A job's state on this instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    /// The job.
    pub name: String,
    /// This instance leads the job.
    pub leader: bool,
    /// A fire is in progress here.
    pub running: bool,
    /// The job no longer runs here, and why (for example an operator's shutdown).
    pub stopped: Option<String>,
    /// The next scheduled fire, ms since the epoch.
    pub next_fire_ms: Option<i64>,
    /// Fires that executed at least one item here.
    pub fires: u64,
    /// Items executed here.
    pub items_executed: u64,
    /// Of which failed.
    pub items_failed: u64,
    /// What is wrong with the registry's config, if it could not be used.
    pub config_problem: Option<String>,
}

/// What every part of a job on this instance shares.
pub(crate) struct JobShared {
    pub name: String,
    /// The text every record of this job repeats, shared rather than copied per record.
    pub text: RecordText,
    pub nodes: JobNodes,
    pub me: InstanceId,
    pub registry: Registry,
    pub cache: TreeCache,
    pub kind: JobKind,
    pub history: Option<History>,
    pub link: watch::Receiver<Link>,
    pub cpu_threads: usize,
    /// Set when a fire time passed during a run and misfire nodes were written; the run
    /// checks it when it ends (§4.7).
    pub misfired: AtomicBool,
    /// The config in force, replaced when the registry's changes.
    config: RwLock<Arc<JobConfig>>,
    /// Item executions started and not yet finished, so an abandoned run can record them.
    ///
    /// A vector, searched by the id's pointer: it holds the items of one fire on this
    /// instance (usually a few), and a map hashed each 36-byte id with SipHash as the item
    /// started and again as it ended (some 300 instructions a fire on the fire clock's
    /// starter thread, which every later start of the same second waits for; callgrind).
    in_flight: Mutex<Vec<ItemStarted>>,
    /// The last snapshot and the cache's loud generation it was read at: a fire and the
    /// actor ask for the snapshot several times per fire, and rebuilding it was most of a
    /// fire's cost. Run markers are quiet in the cache and not part of a snapshot, so
    /// fires alone never make it stale.
    last_snapshot: Mutex<(u64, Arc<Snapshot>)>,
    /// The scheduler's fire clock, which fires this job on its schedule, and the job's key
    /// there.
    clock: FireClock,
    clock_key: u64,
    /// Releases this instance's `running` markers in batches.
    pub releaser: Releaser,
    /// The cron schedule in force; `None`: the job fires on triggers and failover only.
    schedule: Mutex<Option<Schedule>>,
    /// The one fire at a time (see `slot`).
    pub(super) slot: Mutex<RunSlot>,
    pub(super) counters: RunCounters,
}

/// See [`JobShared::text`].
pub(crate) struct RecordText {
    pub job: Arc<str>,
    pub ip: Arc<str>,
    pub instance: Arc<str>,
    /// The message of a fire's first status trace.
    pub begin: Arc<str>,
}

/// Fires and items run on this instance.
#[derive(Default)]
pub(super) struct RunCounters {
    /// Fires that executed at least one item.
    pub fires: AtomicU64,
    pub executed: AtomicU64,
    pub failed: AtomicU64,
}

impl JobShared {
    /// The job's nodes as the cache holds them now (run markers aside); rebuilt only when
    /// something else in the cache changed.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        // Read the generation before the view (see `current_loud_generation`): a snapshot
        // kept under generation g is never older than g.
        let generation = self.cache.current_loud_generation();
        let mut last = self.last_snapshot.lock().unwrap_or_else(|p| p.into_inner());
        if last.0 != generation {
            *last = (
                generation,
                Arc::new(Snapshot::read(&self.cache, &self.nodes, &self.me)),
            );
        }
        last.1.clone()
    }

    /// Which of `items` have a `running` node in the cache now. (Run markers are quiet in
    /// the job's cache, held for their presence only: who holds one takes a read.)
    pub fn running_items(&self, items: &[u32]) -> Vec<u32> {
        // Most of the time no marker at all is held: nothing to look up.
        if self.cache.quiet_nodes() == 0 {
            return Vec::new();
        }
        self.cache.read(|v| {
            items
                .iter()
                .copied()
                .filter(|item| v.get(&self.nodes.item_leaf(*item, "running")).is_some())
                .collect()
        })
    }

    /// The job's key on the fire clock.
    pub fn clock_key(&self) -> u64 {
        self.clock_key
    }

    /// The first fire time of the schedule in force after `after_ms`.
    pub fn next_fire_after(&self, after_ms: i64) -> Option<i64> {
        self.next_fire_memo(after_ms, &mut Vec::new())
    }

    /// [`Self::next_fire_after`], reusing the answer `memo` holds for the same schedule
    /// and time: jobs share cron expressions, and a thousand jobs due on one second would
    /// otherwise each walk the calendar for the same answer.
    pub fn next_fire_memo(
        &self,
        after_ms: i64,
        memo: &mut Vec<(Schedule, Option<i64>)>,
    ) -> Option<i64> {
        let schedule = self.schedule.lock().unwrap_or_else(|p| p.into_inner());
        let schedule = schedule.as_ref()?;
        if let Some((_, next)) = memo.iter().find(|(s, _)| s.same_timing(schedule)) {
            return *next;
        }
        let next = schedule.next_after(after_ms);
        memo.push((schedule.clone(), next));
        next
    }

    /// Puts `schedule` in force and arms the clock for its next fire.
    fn set_schedule(self: &Arc<Self>, schedule: Option<Schedule>) {
        *self.schedule.lock().unwrap_or_else(|p| p.into_inner()) = schedule;
        self.arm();
    }

    /// Arms the clock for the schedule's next fire from now.
    fn arm(self: &Arc<Self>) {
        let next = self.next_fire_after(now_ms());
        self.clock.set(self.clock_key, self, next);
    }

    /// No more scheduled fires here.
    fn disarm(self: &Arc<Self>) {
        self.clock.set(self.clock_key, self, None);
    }

    pub fn connected(&self) -> bool {
        self.link.borrow().connection == Connection::Connected
    }

    /// The config in force (shared, not copied: a fire reads it many times).
    pub fn current_config(&self) -> Arc<JobConfig> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_config(&self, config: JobConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    pub fn in_flight_insert(&self, s: &ItemStarted) {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(s.clone());
    }

    pub fn in_flight_remove(&self, id: &Arc<str>) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        // The item's own `Arc` (a pointer compared per entry, even for a fire of many
        // items), or failing that the same text.
        let at = in_flight
            .iter()
            .position(|s| Arc::ptr_eq(&s.id, id))
            .or_else(|| in_flight.iter().position(|s| s.id == *id));
        if let Some(i) = at {
            in_flight.swap_remove(i);
        }
    }

    /// Records every unfinished item of an abandoned run as failed, with `why`.
    pub(super) fn abandon_in_flight(&self, why: &str) {
        let items: Vec<ItemStarted> = self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for s in items {
            tracing::warn!(job = %self.name, item = s.item, "{why}");
            if let Some(h) = &self.history {
                h.finished(ItemFinished {
                    id: s.id,
                    job_name: s.job_name,
                    start_ms: s.start_ms,
                    end_ms: now_ms(),
                    failure: Some(why.to_owned()),
                    output: None,
                });
            }
        }
    }
}

fn schedule_of(config: &JobConfig) -> Result<Option<Schedule>> {
    let Some(cron) = config.cron.as_deref().filter(|c| !c.trim().is_empty()) else {
        return Ok(None);
    };
    let zone = Zone::parse(config.time_zone.as_deref())?;
    Ok(Some(Schedule::parse(cron, zone)?))
}

fn invalid(job: &str, config: &JobConfig) -> Option<Error> {
    let problems: Vec<String> = config
        .validate()
        .into_iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    (!problems.is_empty()).then(|| Error::InvalidConfig {
        job: job.to_owned(),
        problems,
    })
}

/// Sets the job up in the registry and starts its actor.
pub(crate) async fn spawn(
    inner: Arc<Inner>,
    source: Source,
    kind: JobKind,
) -> Result<(mpsc::Sender<Command>, tokio::task::AbortHandle)> {
    let name = source.name().to_owned();
    if let Source::Local(config) = &source
        && let Some(e) = invalid(&name, config)
    {
        return Err(e);
    }
    let nodes = JobNodes::new(&name);
    if crate::protocol::storage::value(&inner.registry, nodes.root())
        .await?
        .is_none()
    {
        create_if_absent(
            &inner.registry,
            nodes.root(),
            b"",
            capstan_registry::CreateMode::Persistent,
        )
        .await?;
    }
    // Run markers change twice per fire and call for no reaction (see `is_run_marker`).
    let cache =
        TreeCache::start_with_quiet(inner.registry.clone(), nodes.root(), Some(is_run_marker))
            .await?;
    let shared = Arc::new(JobShared {
        text: RecordText {
            job: name.as_str().into(),
            ip: inner.me.ip().into(),
            instance: inner.me.as_str().into(),
            begin: format!("Job '{name}' execute begin.").into(),
        },
        name: name.clone(),
        nodes,
        me: inner.me.clone(),
        registry: inner.registry.clone(),
        cache,
        kind,
        history: inner.history.clone(),
        link: inner.link.subscribe(),
        cpu_threads: inner.cpu_threads,
        misfired: AtomicBool::new(false),
        config: RwLock::new(Arc::new(JobConfig::default())),
        in_flight: Mutex::new(Vec::new()),
        // Generation 0 is the cache before its first load; it has loaded by now, so the
        // first call reads it.
        last_snapshot: Mutex::new((0, Arc::new(Snapshot::default()))),
        clock_key: inner.clock.key(),
        clock: inner.clock.clone(),
        releaser: inner.releaser.clone(),
        schedule: Mutex::new(None),
        slot: Mutex::new(RunSlot::default()),
        counters: RunCounters::default(),
    });
    let local = match &source {
        Source::Local(c) => Some(&**c),
        Source::Registry(_) => None,
    };
    let config = setup_config(&shared, local).await?;
    if let Some(e) = invalid(&name, &config) {
        return Err(e);
    }
    let schedule = schedule_of(&config)?;
    shared.set_config(config.clone());
    register(&shared, &config, true).await?;
    if config.failover {
        flag_legacy_if_alone(&shared, &config).await;
    }
    let (tx, rx) = mpsc::channel(16);
    let epoch = shared.link.borrow().epoch;
    let actor = Actor {
        scheduler: inner,
        commands: rx,
        seen: Arc::new(Snapshot::default()),
        stopped: None,
        epoch,
        lost: false,
        side: JoinSet::new(),
        config_problem: None,
        last_reconcile: tokio::time::Instant::now(),
        total_changed: false,
        shared,
    };
    // The actor arms the clock once it has looked at the cache (`Actor::run`).
    let task = tokio::spawn(actor.run(schedule));
    Ok((tx, task.abort_handle()))
}

/// §4.6 legacy crashed items: only when this instance is the only available one.
async fn flag_legacy_if_alone(shared: &JobShared, config: &JobConfig) {
    let alone = match available_instances(&shared.registry, &shared.nodes).await {
        Ok(list) => list.len() == 1 && list[0] == shared.me,
        Err(_) => false,
    };
    if alone {
        let total = config.sharding_total_count.max(0) as u32;
        failover::flag_orphans_logged(
            shared,
            total,
            true,
            "found items left running by instances that are gone, starting alone",
        )
        .await;
    }
}

struct Actor {
    shared: Arc<JobShared>,
    scheduler: Arc<Inner>,
    commands: mpsc::Receiver<Command>,
    /// The cache state reactions were last computed from.
    seen: Arc<Snapshot>,
    /// Why the job no longer runs here (operator shutdown); the actor then only waits
    /// for the job's removal.
    stopped: Option<String>,
    /// The connection epoch this instance's ephemeral nodes belong to.
    epoch: u64,
    /// The session was lost and nothing has been re-registered since.
    lost: bool,
    /// Background reactions (failover detection) that take a latch.
    side: JoinSet<()>,
    config_problem: Option<String>,
    last_reconcile: tokio::time::Instant,
    /// The last config change altered `shardingTotalCount` (§4.3 trigger 1).
    total_changed: bool,
}

impl Drop for Actor {
    /// However the actor ends, the job fires no more here; an actor that is aborted (the
    /// runtime killed) takes its fire with it, as a dying process would.
    fn drop(&mut self) {
        self.shared.refuse(true);
        self.shared.disarm();
        if let Some(run) = self.shared.take_run() {
            run.abort();
        }
    }
}

/// `…/sharding/{item}/running` and `…/misfire`: written and removed by every fire (this
/// instance's own, mostly), and never a reason for the actor to react, so the job's cache
/// does not tell it of them; keeps a fire from costing two wake-ups and two diffs.
fn is_run_marker(path: &str) -> bool {
    (path.ends_with("/running") || path.ends_with("/misfire")) && path.contains("/sharding/")
}

impl Actor {
    async fn run(mut self, schedule: Option<Schedule>) {
        let mut events = self.shared.cache.subscribe();
        let mut link = self.shared.link.clone();
        let mut reconcile = tokio::time::interval(Duration::from_secs(60));
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        self.on_change().await;
        if self.stopped.is_none() {
            self.shared.set_schedule(schedule);
        }
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::State(tx)) => {
                        let _ = tx.send(self.state());
                    }
                    Some(Command::Shutdown(done)) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.stop().await;
                        return;
                    }
                },
                changed = link.changed() => {
                    if changed.is_err() || !self.on_link().await {
                        return;
                    }
                }
                event = events.recv() => {
                    match event {
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                            if !self.on_change().await {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
                _ = reconcile.tick() => self.reconcile().await,
                Some(_) = self.side.join_next(), if !self.side.is_empty() => {}
            }
        }
    }

    fn state(&self) -> JobState {
        let counters = &self.shared.counters;
        JobState {
            name: self.shared.name.clone(),
            leader: self.seen.leader.as_deref() == Some(self.shared.me.as_str()),
            running: self.shared.run_in_progress(),
            stopped: self.stopped.clone(),
            next_fire_ms: self
                .shared
                .clock
                .next_fire(self.shared.clock_key)
                .filter(|_| self.stopped.is_none()),
            fires: counters.fires.load(Ordering::Relaxed),
            items_executed: counters.executed.load(Ordering::Relaxed),
            items_failed: counters.failed.load(Ordering::Relaxed),
            config_problem: self.config_problem.clone(),
        }
    }

    /// Starts a fire for `cause` unless one is in progress (or fires are refused: the job
    /// is fenced or stopped here); whether it started.
    fn start(&mut self, cause: Cause) -> bool {
        self.shared.start_run(fire(self.shared.clone(), cause))
    }

    fn config(&self) -> JobConfig {
        (*self.shared.current_config()).clone()
    }

    /// Stops fires here, and takes the one in progress out of the slot (a planned one that
    /// has not started never will).
    fn fence(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        self.shared.refuse(true);
        self.shared.take_run()
    }

    /// Reacts to a connection change; `false` ends the actor.
    async fn on_link(&mut self) -> bool {
        let link = *self.shared.link.borrow();
        match link.connection {
            Connection::Suspended => {
                tracing::warn!(job = %self.shared.name, "registry connection suspended: no item starts until it is back");
            }
            Connection::Lost => {
                if !self.lost {
                    self.lost = true;
                    // Fencing: another instance may fail these items over now.
                    if let Some(run) = self.fence() {
                        run.abort();
                        self.shared.abandon_in_flight(
                            "abandoned: the registry session was lost, so the item may be failing over elsewhere",
                        );
                    }
                    tracing::warn!(job = %self.shared.name, "registry session lost: running items abandoned, ownership dropped");
                }
            }
            Connection::Connected if link.epoch != self.epoch => {
                self.epoch = link.epoch;
                if self.stopped.is_none() {
                    self.reregister().await;
                }
            }
            Connection::Connected => {}
            Connection::Closed => {
                if let Some(run) = self.fence() {
                    run.abort();
                    self.shared
                        .abandon_in_flight("abandoned: the registry session was closed");
                }
                return false;
            }
        }
        true
    }

    /// §4.12 RECONNECTED: servers, instance node, stale running markers, election.
    async fn reregister(&mut self) {
        let config = self.config();
        let result = async {
            register(&self.shared, &config, false).await?;
            let snap = self.shared.snapshot();
            let executing: Vec<u32> = self
                .shared
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|s| s.item)
                .collect();
            registration::clear_stale_running(&self.shared, &snap, &executing).await
        }
        .await;
        match result {
            Ok(()) => {
                if self.lost && self.stopped.is_none() {
                    self.shared.refuse(false);
                }
                self.lost = false;
                tracing::info!(job = %self.shared.name, "registered again after reconnecting");
                if config.failover {
                    flag_legacy_if_alone(&self.shared, &config).await;
                }
            }
            Err(e) => {
                tracing::warn!(job = %self.shared.name, error = %e, "cannot register again; will retry on the next change");
                // Force another attempt at the next connection change.
                self.epoch = self.epoch.wrapping_sub(1);
            }
        }
    }

    /// Reacts to the cache; `false` ends the actor.
    async fn on_change(&mut self) -> bool {
        let snap = self.shared.snapshot();
        let prev = std::mem::replace(&mut self.seen, snap.clone());
        if !snap.exists && (prev.exists || self.stopped.is_some()) {
            // The job was removed: this instance is done with it.
            tracing::info!(job = %self.shared.name, "job removed from the registry; stopping it here");
            if let Some(run) = self.fence() {
                let _ = run.await;
            }
            Scheduler::from_inner(self.scheduler.clone()).forget(&self.shared.name);
            return false;
        }
        if self.stopped.is_some() || self.lost || !self.shared.connected() {
            return true;
        }
        let shared = self.shared.clone();
        let me = shared.me.as_str();
        if prev.instances.contains(me) && !snap.instances.contains(me) {
            // §4.8 instance shutdown: deleted while connected means an operator did it.
            if matches!(
                self.shared
                    .registry
                    .exists(&self.shared.nodes.instance(me))
                    .await,
                Ok(None)
            ) {
                self.stop_by_registry().await;
                return true;
            }
        }
        if snap.instances.contains(me)
            && !snap.servers.contains_key(shared.me.ip())
            && let Err(e) = registration::restore_server(&shared, &self.config()).await
        {
            tracing::warn!(job = %shared.name, error = %e, "cannot write this instance's server node back");
        }
        if snap.config != prev.config && prev.exists {
            self.on_config(&snap);
        }
        let config = self.config();
        let added = snap.instances.difference(&prev.instances).count();
        let removed: Vec<String> = prev
            .instances
            .difference(&snap.instances)
            .cloned()
            .collect();
        let static_hold = config.static_sharding && snap.sharding_children > 0;
        let total_changed = prev.exists && prev.config.is_some() && self.total_changed;
        self.total_changed = false;
        // The first look (prev empty) counts every instance as added, as Java's listener
        // sees this instance's own registration: that is what first flags sharding.
        if (added > 0 || !removed.is_empty() || snap.servers != prev.servers) && !static_hold
            || total_changed
        {
            self.flag_resharding(&snap).await;
        }
        let my_server = snap.servers.get(self.shared.me.ip()).map(String::as_str);
        if snap.leader.as_deref() == Some(me) && my_server == Some("DISABLED") {
            if let Err(e) = registration::abdicate(&self.shared).await {
                tracing::warn!(job = %self.shared.name, error = %e, "cannot step down as leader");
            }
        } else if let Err(e) = registration::elect_if_leaderless(&self.shared, &snap).await {
            tracing::warn!(job = %self.shared.name, error = %e, "election failed");
        }
        if config.failover {
            let total = config.sharding_total_count.max(0) as u32;
            for crashed in removed.into_iter().filter(|x| x != me) {
                let shared = self.shared.clone();
                self.side.spawn(async move {
                    match failover::flag_crashed_items(&shared, &crashed, total).await {
                        Ok(items) if !items.is_empty() => {
                            tracing::info!(job = %shared.name, crashed, ?items, "flagged items for failover");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(job = %shared.name, crashed, error = %e, "failover detection failed"),
                    }
                });
            }
        }
        if snap.my_trigger.is_some() && prev.my_trigger.is_none() {
            let _ = remove(&self.shared.registry, &self.shared.nodes.trigger(me)).await;
            let parameter = snap.my_trigger.clone().filter(|p| !p.is_empty());
            match self.shared.trigger(parameter) {
                Triggered::Started => {}
                Triggered::Waiting => {
                    tracing::info!(job = %self.shared.name, "trigger waits for the fire about to start here, and fires after it");
                }
                Triggered::Dropped => {
                    tracing::info!(job = %self.shared.name, "trigger dropped: the job is running here (as ElasticJob does), or stopped");
                }
            }
        }
        if config.failover && !snap.failover_pending.is_empty() {
            self.start(Cause::Failover);
        }
        true
    }

    /// §4.13: what a config change causes.
    fn on_config(&mut self, snap: &Snapshot) {
        let Some(raw) = &snap.config else {
            self.config_problem = Some("the config node was removed".into());
            return;
        };
        let new = match JobConfig::from_yaml(&String::from_utf8_lossy(raw)) {
            Ok(c) => c,
            Err(e) => {
                let problem = format!(
                    "the registry's config is malformed, still using the previous one: {e}"
                );
                tracing::warn!(job = %self.shared.name, "{problem}");
                self.config_problem = Some(problem);
                return;
            }
        };
        let old = self.config();
        if new.cron != old.cron || new.time_zone != old.time_zone {
            match schedule_of(&new) {
                Ok(s) if self.stopped.is_none() => self.shared.set_schedule(s),
                Ok(_) => {}
                Err(e) => {
                    let problem = format!(
                        "the new cron or time zone is invalid, still using the previous schedule: {e}"
                    );
                    tracing::warn!(job = %self.shared.name, "{problem}");
                    self.config_problem = Some(problem);
                    return;
                }
            }
        }
        self.total_changed = new.sharding_total_count != old.sharding_total_count;
        let drop_failover = old.failover && !new.failover;
        let drop_running = old.monitor_execution && !new.monitor_execution;
        if drop_failover || drop_running {
            let shared = self.shared.clone();
            let items: Vec<u32> = snap.items.keys().copied().collect();
            self.side.spawn(async move {
                for item in items {
                    if drop_failover {
                        let _ = remove(&shared.registry, &shared.nodes.item_leaf(item, "failover"))
                            .await;
                    }
                    if drop_running {
                        let _ = remove(&shared.registry, &shared.nodes.item_leaf(item, "running"))
                            .await;
                    }
                }
            });
        }
        self.config_problem = None;
        self.shared.set_config(new);
    }

    /// `setReshardingFlag` (§4.3): only the leader flags; a leaderless job elects first.
    async fn flag_resharding(&mut self, snap: &Snapshot) {
        let me = self.shared.me.as_str();
        let leads = match snap.leader.as_deref() {
            Some(l) => l == me,
            None => {
                let _ = registration::elect_if_leaderless(&self.shared, snap).await;
                registration::is_leader(&self.shared).await.unwrap_or(false)
            }
        };
        if leads
            && !snap.necessary
            && let Err(e) = registration::flag_resharding(&self.shared).await
        {
            tracing::warn!(job = %self.shared.name, error = %e, "cannot flag resharding");
        }
    }

    /// §4.10: every `reconcileIntervalMinutes`, owners that are offline cause resharding.
    async fn reconcile(&mut self) {
        let config = self.config();
        if config.reconcile_interval_minutes <= 0 || self.stopped.is_some() || self.lost {
            return;
        }
        let interval = Duration::from_secs(config.reconcile_interval_minutes as u64 * 60);
        if self.last_reconcile.elapsed() < interval {
            return;
        }
        self.last_reconcile = tokio::time::Instant::now();
        let snap = self.shared.snapshot();
        let total = config.sharding_total_count.max(0) as u32;
        let static_hold = config.static_sharding && snap.sharding_children > 0;
        if !snap.necessary && snap.owners_offline(total) && !static_hold {
            tracing::info!(job = %self.shared.name, "reconcile: owners offline, flagging resharding");
            self.flag_resharding(&snap).await;
        }
    }

    /// An operator deleted this instance's node (§4.8): stop here until restarted.
    async fn stop_by_registry(&mut self) {
        tracing::warn!(job = %self.shared.name, "instance shut down from the registry (an operator's shutdown); the job stays stopped here until this process restarts");
        self.stopped = Some("shut down by an operator: the instance node was deleted".into());
        self.shared.disarm();
        if let Some(run) = self.fence() {
            let _ = run.await;
        }
        let _ = registration::abdicate(&self.shared).await;
    }

    /// Graceful shutdown: the run finishes (up to the grace period), then unregister.
    async fn stop(&mut self) {
        self.shared.disarm();
        if let Some(mut run) = self.fence() {
            let grace = self.scheduler.shutdown_grace;
            if tokio::time::timeout(grace, &mut run).await.is_err() {
                run.abort();
                self.shared.abandon_in_flight(&format!(
                    "abandoned: the runtime stopped and the item did not finish within {} s",
                    grace.as_secs()
                ));
            }
        }
        self.side.abort_all();
        if self.stopped.is_none() && self.shared.connected() {
            registration::unregister(&self.shared).await;
        }
    }
}
