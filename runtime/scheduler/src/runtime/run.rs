//! One fire of a job on this instance (spec §4.5): choose the items (a [`Plan`]), mark
//! them running ([`Held`]), execute them, record the outcome, clean up, and re-run misfired
//! items.
//!
//! A fire is planned either here, awaiting the registry where it must ([`fire`]: triggers,
//! failover, resharding, the clock-skew check), or by the fire clock without awaiting
//! anything ([`plan_scheduled`]), which then holds the items of every job due at the same
//! instant in batches ([`super::batch`]).
//!
//! Exclusivity: an item starts only after this instance has *created* its `running` node;
//! a node that already exists means another instance (or an earlier run here) still holds
//! the item, and the item is skipped as a misfire. So two instances can never both run an
//! item, even when their caches disagree about who owns it. Only the holder deletes the
//! node, or a failover detector once the holder's session is gone (see `failover`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use capstan_registry::CreateMode;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use super::Connection;
use super::failover;
use super::job::JobShared;
use super::slot::Taken;
use super::snapshot::Snapshot;
use crate::config::JobConfig;
use crate::context::{ShardingContext, item_parameters, task_id};
use crate::history::{ItemFinished, ItemStarted, Source, StatusTrace, TraceState, now_ms};
use crate::kinds::ItemEnv;
use crate::protocol::sharding::{ShardOutcome, ShardingPlan, shard_if_necessary};
use crate::protocol::storage::{create_if_absent, remove};
use crate::sharding::Strategy;

/// Why a fire happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The cron schedule, at this fire time.
    Schedule { at_ms: i64 },
    /// An operator's trigger, with the parameter it carried (Capstan's extension).
    Trigger { parameter: Option<String> },
    /// Look for items to take over from crashed instances (§4.6 "enquiry").
    Failover,
}

/// What a fire did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RunReport {
    /// Items executed (over all misfire re-runs).
    pub executed: usize,
    /// Of which failed.
    pub failed: usize,
    /// Items that were taken over from a crashed instance.
    pub failover: bool,
}

/// How long a follower waits for the leader to shard before giving up this fire.
const SHARDING_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What one fire runs, decided before anything is marked running.
#[derive(Clone)]
pub(crate) struct Plan {
    pub config: Arc<JobConfig>,
    pub items: Vec<u32>,
    pub source: Source,
    pub parameter: Option<String>,
    /// When the fire began: its first status trace's time.
    pub began_ms: i64,
}

/// The items of a plan this instance marked running, and those it found still running
/// elsewhere (or from an earlier run here).
#[derive(Debug, Default)]
pub(crate) struct Held {
    pub held: Vec<u32>,
    pub busy: Vec<u32>,
}

/// A fire of a job not planned by the fire clock: a trigger, a failover enquiry, or a
/// scheduled fire that needs the registry before it knows its items.
pub(crate) async fn fire(shared: Arc<JobShared>, cause: Cause) -> RunReport {
    let Some(plan) = plan(&shared, &cause).await else {
        return RunReport::default();
    };
    let mut held = hold(&shared, &plan.config, &plan.items).await;
    if plan.source == Source::Failover && !held.busy.is_empty() {
        held = Box::pin(retake_busy(&shared, &plan, held)).await;
    }
    run(shared, plan, held).await
}

/// A taken-over item found still marked running: when the marker's owner is gone, the
/// marker is stale (see `failover::flag_orphaned_items`), so it is removed and the item
/// held again. Otherwise this instance keeps the take, and its next fire tries again.
async fn retake_busy(shared: &JobShared, plan: &Plan, mut held: Held) -> Held {
    let total = total_of(&plan.config).unwrap_or(0);
    let released = failover::flag_orphans_logged(
        shared,
        total,
        false,
        "items taken over are still marked running by instances that are gone",
    )
    .await
    .released;
    let (again, still): (Vec<u32>, Vec<u32>) = held.busy.iter().partition(|i| released.contains(i));
    if !again.is_empty() {
        let retaken = hold(shared, &plan.config, &again).await;
        held.held.extend(retaken.held);
        held.held.sort_unstable();
        held.busy = still.into_iter().chain(retaken.busy).collect();
    }
    held
}

/// §4.5 steps 1-4: whether to fire, and which items.
async fn plan(shared: &JobShared, cause: &Cause) -> Option<Plan> {
    let began_ms = now_ms();
    let (config, _) = gate(shared, cause)?;
    if !clock_within_tolerance(shared, &config).await {
        return None;
    }
    let (items, source) = choose_items(shared, &config, cause).await?;
    Some(Plan {
        parameter: parameter_of(&config, cause),
        config,
        items,
        source,
        began_ms,
    })
}

/// Whether a fire for `cause` goes on at all, and the config and snapshot it decides from:
/// not without a usable connection, and not while the job is paused (failover aside).
fn gate(shared: &JobShared, cause: &Cause) -> Option<(Arc<JobConfig>, Arc<Snapshot>)> {
    let config = shared.current_config();
    if !shared.connected() {
        tracing::debug!(job = %shared.name, "fire skipped: registry connection not usable");
        return None;
    }
    let snap = shared.snapshot();
    if snap.paused && *cause != Cause::Failover {
        tracing::debug!(job = %shared.name, "fire skipped: the job is paused");
        return None;
    }
    Some((config, snap))
}

/// The job parameter a fire's items get: a trigger's own, else the config's.
fn parameter_of(config: &JobConfig, cause: &Cause) -> Option<String> {
    match cause {
        Cause::Trigger { parameter: Some(p) } if !p.is_empty() => Some(p.clone()),
        _ => config.job_parameter.clone().filter(|p| !p.is_empty()),
    }
}

/// What the fire clock does with a job due at `at_ms`.
pub(crate) enum Due {
    /// Planned, with the job's run slot reserved: the clock holds its items and starts it.
    Planned { reservation: u64, plan: Plan },
    /// Its fire needs the registry first: started as a [`fire`] of its own.
    Started,
    /// No fire: paused, disconnected, nothing to run here, stopped, or (a misfire) still
    /// running the previous one.
    Skipped,
}

/// The fire clock's plan for a scheduled fire, without awaiting anything: the same
/// decisions as [`plan`] for a schedule, or [`Due::Started`] where they need the registry.
pub(crate) fn plan_scheduled(shared: &Arc<JobShared>, at_ms: i64) -> Due {
    let reservation = match shared.reserve() {
        Ok(id) => id,
        Err(Taken::Busy) => {
            // §4.7: a fire during a run is a misfire of the local items.
            tokio::spawn(note_misfire(shared.clone()));
            return Due::Skipped;
        }
        Err(Taken::Refused) => return Due::Skipped,
    };
    let cause = Cause::Schedule { at_ms };
    match plan_now(shared, &cause) {
        Quick::Ready(plan) => Due::Planned { reservation, plan },
        Quick::Skip => {
            shared.release(reservation);
            Due::Skipped
        }
        Quick::Slow => {
            shared.start_reserved(reservation, fire(shared.clone(), cause));
            Due::Started
        }
    }
}

/// The fire clock's plan for a fire due at `at_ms`, made ahead of that time so that its
/// items can be held by then (see `clock::FireClock`): the job's slot reserved and the
/// fire planned as [`plan_scheduled`] would, or `None` when it is left to be decided at
/// its time. That is, whenever the answer could differ at the time: the previous fire still
/// runs (a misfire only if it still runs then), fires are refused, nothing is planned here
/// or the fire needs the registry first, and a fire without `monitorExecution`, which holds
/// nothing and so gains nothing from being early.
pub(crate) fn plan_ahead(shared: &Arc<JobShared>, at_ms: i64) -> Option<(u64, Plan)> {
    let reservation = shared.reserve().ok()?;
    match plan_now(shared, &Cause::Schedule { at_ms }) {
        Quick::Ready(plan) if plan.config.monitor_execution => Some((reservation, plan)),
        _ => {
            shared.release(reservation);
            None
        }
    }
}

/// Whether a fire planned ahead by [`plan_ahead`] still stands at its time `at_ms`: the
/// same config, and the same items as it would plan now, but for the `running` markers
/// it holds itself (a job disabled, paused, resharded or given failover work meanwhile
/// gives another answer).
pub(crate) fn still_planned(shared: &JobShared, plan: &Plan, at_ms: i64) -> bool {
    match decide(shared, &Cause::Schedule { at_ms }, Markers::Held) {
        Quick::Ready((config, items)) => Arc::ptr_eq(&config, &plan.config) && items == plan.items,
        Quick::Skip | Quick::Slow => false,
    }
}

enum Quick<T> {
    Ready(T),
    Skip,
    Slow,
}

/// Whether the items' `running` markers are looked at when planning.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Markers {
    /// An item marked running (by anyone) is not planned.
    Checked,
    /// The plan's own markers are held already: not looked at.
    Held,
}

fn plan_now(shared: &JobShared, cause: &Cause) -> Quick<Plan> {
    let began_ms = now_ms();
    match decide(shared, cause, Markers::Checked) {
        Quick::Ready((config, items)) => Quick::Ready(Plan {
            parameter: parameter_of(&config, cause),
            config,
            items,
            source: Source::NormalTrigger,
            began_ms,
        }),
        Quick::Skip => Quick::Skip,
        Quick::Slow => Quick::Slow,
    }
}

/// The decisions of [`plan`] for a schedule that need no awaiting: the config and the
/// items to run, or [`Quick::Slow`] where the registry must be asked first.
fn decide(
    shared: &JobShared,
    cause: &Cause,
    markers: Markers,
) -> Quick<(Arc<JobConfig>, Vec<u32>)> {
    let Some((config, snap)) = gate(shared, cause) else {
        return Quick::Skip;
    };
    let Some(total) = total_of(&config) else {
        return Quick::Skip;
    };
    let me = shared.me.as_str();
    let failover_mine = config.failover
        && snap
            .items
            .values()
            .any(|n| n.failover.as_deref() == Some(me));
    // The clock check reads the registry, failover items run alone, and resharding (or a
    // strategy name that does not parse) is decided by `shard`.
    if config.max_time_diff_seconds >= 0
        || failover_mine
        || snap.necessary
        || snap.processing
        || Strategy::from_config(config.job_sharding_strategy_type.as_deref()).is_err()
    {
        return Quick::Slow;
    }
    let items = runnable(shared, &config, &snap, snap.local_items(total), markers);
    if items.is_empty() {
        tracing::debug!(job = %shared.name, "Sharding item for job '{}' is empty.", shared.name);
        return Quick::Skip;
    }
    Quick::Ready((config, items))
}

/// §4.7, on a fire due while the previous one runs: marks the local items misfired, for
/// the run to re-run when it ends.
async fn note_misfire(shared: Arc<JobShared>) {
    let config = shared.current_config();
    let snap = shared.snapshot();
    if !config.misfire || snap.paused {
        return;
    }
    let total = config.sharding_total_count.max(0) as u32;
    mark_misfired(&shared, &snap.local_items(total)).await;
    shared.misfired.store(true, Ordering::SeqCst);
}

/// Writes the `misfire` marks of `items`.
async fn mark_misfired(shared: &JobShared, items: &[u32]) {
    for item in items {
        let _ = create_if_absent(
            &shared.registry,
            &shared.nodes.item_leaf(*item, "misfire"),
            b"",
            CreateMode::Persistent,
        )
        .await;
    }
}

/// Runs a planned fire whose items are held: executes them, then re-runs the items whose
/// fires were missed meanwhile (§4.5 step 8).
pub(crate) async fn run(shared: Arc<JobShared>, plan: Plan, held: Held) -> RunReport {
    let mut report = RunReport {
        failover: plan.source == Source::Failover,
        ..RunReport::default()
    };
    // The awaited steps are boxed: a fire's task then starts small (its spawn copies and
    // allocates a few hundred bytes, not the four KiB of every step's state), which counts
    // when a thousand fires start on the same second.
    let first: BoxFuture<'_, (usize, usize)> = Box::pin(execute(&shared, &plan, held));
    let (executed, failed) = first.await;
    report.executed += executed;
    report.failed += failed;
    if plan.config.misfire {
        let again: BoxFuture<'_, (usize, usize)> = Box::pin(misfired_again(&shared, &plan));
        let (executed, failed) = again.await;
        report.executed += executed;
        report.failed += failed;
    }
    if plan.source == Source::NormalTrigger
        && let Some(parameter) = shared.take_waiting_trigger()
    {
        let again: BoxFuture<'_, (usize, usize)> =
            Box::pin(triggered_again(&shared, &plan, parameter));
        let (executed, failed) = again.await;
        report.executed += executed;
        report.failed += failed;
    }
    report
}

/// A trigger that came while this fire was reserved, before it started (the fire clock
/// reserves a fire up to `fire_ahead` before its time; see `slot`): the fire's items run
/// again with the trigger's parameter, as the trigger's own fire would have run them.
///
/// Why here rather than as a fire of its own once this one ends: that fire would plan from
/// the job's cache, which shows this fire's `running` markers for a few ms after their
/// release, and would leave the items to a run that has ended.
async fn triggered_again(
    shared: &Arc<JobShared>,
    plan: &Plan,
    parameter: Option<String>,
) -> (usize, usize) {
    let cause = Cause::Trigger { parameter };
    if gate(shared, &cause).is_none() {
        return (0, 0);
    }
    let plan = Plan {
        parameter: parameter_of(&plan.config, &cause),
        began_ms: now_ms(),
        ..plan.clone()
    };
    let held = Box::pin(hold(shared, &plan.config, &plan.items)).await;
    Box::pin(execute(shared, &plan, held)).await
}

/// Re-runs, while any are marked, the items of `plan` whose fires were missed meanwhile;
/// the items executed and failed.
async fn misfired_again(shared: &Arc<JobShared>, plan: &Plan) -> (usize, usize) {
    let (mut executed, mut failed) = (0, 0);
    let mut items = plan.items.clone();
    while shared.misfired.swap(false, Ordering::SeqCst) {
        if shared.snapshot().necessary {
            break;
        }
        items = Box::pin(take_misfired(shared, &items)).await;
        if items.is_empty() {
            break;
        }
        let plan = Plan {
            items: items.clone(),
            source: Source::Misfire,
            began_ms: now_ms(),
            ..plan.clone()
        };
        let held = Box::pin(hold(shared, &plan.config, &plan.items)).await;
        let (e, f) = Box::pin(execute(shared, &plan, held)).await;
        executed += e;
        failed += f;
    }
    (executed, failed)
}

/// Of `items`, those marked misfired; their marks are removed.
async fn take_misfired(shared: &JobShared, items: &[u32]) -> Vec<u32> {
    let mut again = Vec::new();
    for item in items {
        let path = shared.nodes.item_leaf(*item, "misfire");
        if matches!(shared.registry.exists(&path).await, Ok(Some(_))) {
            let _ = remove(&shared.registry, &path).await;
            again.push(*item);
        }
    }
    again
}

/// §4.11: with `maxTimeDiffSeconds >= 0`, this machine's clock must agree with the
/// registry's within the bound. A failure goes to the error handler: `THROW` abandons the
/// fire, the others log and go on.
async fn clock_within_tolerance(shared: &JobShared, config: &JobConfig) -> bool {
    if config.max_time_diff_seconds < 0 {
        return true;
    }
    let path = shared.nodes.system_time();
    let registry_time = async {
        crate::protocol::storage::persist(&shared.registry, &path, b"").await?;
        Ok::<_, crate::Error>(shared.registry.get(&path).await?.1.mtime)
    }
    .await;
    let skew = match registry_time {
        Ok(mtime) => (now_ms() - mtime).abs(),
        Err(e) => {
            tracing::warn!(job = %shared.name, error = %e, "clock check: cannot read the registry time");
            return true;
        }
    };
    if skew <= i64::from(config.max_time_diff_seconds) * 1000 {
        return true;
    }
    let message = format!(
        "Time different between job server and register center exceed '{}' seconds, max time different is '{}' seconds.",
        skew / 1000,
        config.max_time_diff_seconds
    );
    tracing::warn!(job = %shared.name, "{message}");
    if config.job_error_handler_type.as_deref() == Some("THROW") {
        shared.trace(&[], "", TraceState::Error, message);
        return false;
    }
    true
}

/// §4.5 step 3: the items of this fire and where they come from; `None` for nothing to do.
async fn choose_items(
    shared: &JobShared,
    config: &JobConfig,
    cause: &Cause,
) -> Option<(Vec<u32>, Source)> {
    let total = total_of(config)?;
    let me = shared.me.as_str();
    let mut taken = Vec::new();
    if config.failover && *cause == Cause::Failover {
        match failover::take_one(shared).await {
            Ok(Some(item)) => taken.push(item),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(job = %shared.name, error = %e, "failover: cannot take an item")
            }
        }
    }
    // a. items taken over from crashed instances run alone.
    if config.failover {
        let snap = shared.snapshot();
        let cached: Vec<u32> = snap
            .items
            .iter()
            .filter(|(i, n)| n.failover.as_deref() == Some(me) && !taken.contains(i))
            .map(|(i, _)| *i)
            .collect();
        // The cache can still show a take this instance has just finished and released
        // (a fire's end looks for failover work at once, §4.5 step 9): run from it, the
        // item would run a second time. So the registry confirms what the cache says.
        let mut mine = failover::still_taken(shared, &cached).await;
        mine.extend(taken);
        mine.sort_unstable();
        if !mine.is_empty() {
            return Some((mine, Source::Failover));
        }
    }
    if *cause == Cause::Failover {
        return None;
    }
    // b. normal sharding.
    let assigned = shard(shared, config, total).await?;
    let snap = shared.snapshot();
    let items = runnable(
        shared,
        config,
        &snap,
        assigned.unwrap_or_else(|| snap.local_items(total)),
        Markers::Checked,
    );
    if items.is_empty() {
        tracing::debug!(job = %shared.name, "Sharding item for job '{}' is empty.", shared.name);
        return None;
    }
    Some((items, Source::NormalTrigger))
}

/// `shardingTotalCount` when it is a usable count.
fn total_of(config: &JobConfig) -> Option<u32> {
    u32::try_from(config.sharding_total_count)
        .ok()
        .filter(|t| *t > 0)
}

/// Of this instance's `items`, those to run now: not disabled, not taken over by another
/// instance's failover, and (with `monitorExecution`, unless `markers` are held) not still
/// marked running, which leaves them to their run (the create of the `running` node
/// decides races).
fn runnable(
    shared: &JobShared,
    config: &JobConfig,
    snap: &Snapshot,
    mut items: Vec<u32>,
    markers: Markers,
) -> Vec<u32> {
    items.retain(|i| {
        let leaves = snap.items.get(i);
        let taken_over = config.failover && leaves.is_some_and(|n| n.failover.is_some());
        let disabled = leaves.is_some_and(|n| n.disabled);
        !taken_over && !disabled
    });
    if markers == Markers::Checked && config.monitor_execution && !items.is_empty() {
        let running = shared.running_items(&items);
        items.retain(|i| !running.contains(i));
    }
    items
}

/// `shardingIfNecessary`: `Some(Some(items))` when this instance just sharded (its own
/// items, known before the cache catches up), `Some(None)` to use the cache's assignment,
/// `None` to give this fire up.
async fn shard(shared: &JobShared, config: &JobConfig, total: u32) -> Option<Option<Vec<u32>>> {
    let strategy = Strategy::from_config(config.job_sharding_strategy_type.as_deref()).ok()?;
    let plan = ShardingPlan {
        job_name: shared.name.clone(),
        total,
        strategy,
        monitor_execution: config.monitor_execution,
    };
    let deadline = tokio::time::Instant::now() + SHARDING_WAIT;
    let mut generation = shared.cache.generation();
    let mut elected = false;
    // The live instances when the leader last looked for orphaned items: it looks again
    // when they change (an owner that was live then may have gone since).
    let mut orphans_checked: Option<std::collections::BTreeSet<String>> = None;
    loop {
        let snap = shared.snapshot();
        if !snap.necessary && !snap.processing {
            return Some(None);
        }
        // The cache says resharding is pending; the registry decides who does it (the
        // cache may not show the leader node yet).
        match shard_if_necessary(&shared.registry, &shared.nodes, &shared.me, &plan, now_ms()).await
        {
            Ok(ShardOutcome::Sharded(owners)) => {
                tracing::info!(job = %shared.name, ?owners, "resharded");
                let mine = owners
                    .into_iter()
                    .find(|(id, _)| *id == shared.me)
                    .map(|(_, items)| items)
                    .unwrap_or_default();
                return Some(Some(mine));
            }
            // The registry has no flag but the cache still shows it: the leader has just
            // sharded, and the cache will show its owners with the flag gone (one
            // transaction), so wait for that rather than read stale owners.
            // (Or no instance is available at all, and the flag stays: nothing to wait for.)
            Ok(ShardOutcome::NotNeeded) => {
                let flagged = crate::protocol::storage::exists(
                    &shared.registry,
                    &shared.nodes.resharding_necessary(),
                )
                .await
                .unwrap_or(true);
                if flagged || !snap.necessary {
                    return Some(None);
                }
            }
            Ok(ShardOutcome::LeaderWillShard) if !elected => {
                // §4.2 isLeaderUntilBlock: a leaderless job with an available server
                // elects before waiting; then the loop asks again at once.
                elected = true;
                let leaderless = matches!(
                    crate::protocol::storage::value(&shared.registry, &shared.nodes.leader()).await,
                    Ok(None)
                );
                if leaderless && snap.server_available(shared.me.ip()) {
                    let _ = crate::protocol::election::elect_leader(
                        &shared.registry,
                        &shared.nodes,
                        &shared.me,
                    )
                    .await;
                    continue;
                }
            }
            Ok(ShardOutcome::WaitForRunningItems)
                if config.failover && orphans_checked.as_ref() != Some(&snap.instances) =>
            {
                // A `running` item whose owner is gone ends only by failover.
                orphans_checked = Some(snap.instances.clone());
                failover::flag_orphans_logged(
                    shared,
                    total,
                    false,
                    "resharding waits for items left running by instances that are gone",
                )
                .await;
            }
            Ok(ShardOutcome::LeaderWillShard | ShardOutcome::WaitForRunningItems) => {}
            Err(e) => {
                tracing::warn!(job = %shared.name, error = %e, "sharding failed");
                return None;
            }
        }
        // Wait for the leader's sharding, or for running items to finish.
        let wait = tokio::time::timeout_at(deadline, generation.changed()).await;
        if wait.is_err() {
            tracing::warn!(
                job = %shared.name,
                "waited {} s for resharding; skipping this fire",
                SHARDING_WAIT.as_secs()
            );
            return None;
        }
        if !shared.connected() {
            return None;
        }
    }
}

/// The `running` node of an item, as §4.5 steps 5 and 7 write it: persistent with failover
/// on, so a crash leaves it for the failover detector; ephemeral otherwise.
pub(super) fn running_mode(config: &JobConfig) -> CreateMode {
    if config.failover {
        CreateMode::Persistent
    } else {
        CreateMode::Ephemeral
    }
}

/// Holds each of `items` by creating its `running` node (see the module docs), one create
/// each. Without `monitorExecution` nothing is marked, and every item is held.
pub(super) async fn hold(shared: &JobShared, config: &JobConfig, items: &[u32]) -> Held {
    let mut held = Held::default();
    if !config.monitor_execution {
        held.held.extend_from_slice(items);
        return held;
    }
    let me = shared.me.as_str();
    let mode = running_mode(config);
    let creates = items.iter().map(|item| {
        let path = shared.nodes.item_leaf(*item, "running");
        async move {
            (
                *item,
                create_if_absent(&shared.registry, &path, me.as_bytes(), mode).await,
            )
        }
    });
    for (item, created) in futures::future::join_all(creates).await {
        match created {
            Ok(true) => held.held.push(item),
            Ok(false) => held.busy.push(item),
            Err(e) => {
                tracing::warn!(job = %shared.name, item, error = %e, "cannot mark item running; skipped");
            }
        }
    }
    held
}

/// Executes held items, records them, and cleans up: returns (executed, failed).
async fn execute(shared: &Arc<JobShared>, plan: &Plan, held: Held) -> (usize, usize) {
    let Plan {
        config,
        items,
        source,
        parameter,
        began_ms,
    } = plan;
    let source = *source;
    let fire = FireIds {
        run_id: crate::history::new_id(),
        task: task_id(&shared.name, items, &shared.me).into(),
    };
    let Held { held, busy } = held;
    let parameters =
        item_parameters(config.sharding_item_parameters.as_deref()).unwrap_or_default();
    let limit = match config.thread_pool_type.as_deref() {
        Some("SINGLE_THREAD") => 1,
        _ => shared.cpu_threads,
    };
    let start = |item: u32| {
        let ctx = ShardingContext {
            job_name: shared.name.clone(),
            task_id: fire.task.to_string(),
            sharding_total_count: config.sharding_total_count.max(0) as u32,
            job_parameter: parameter.clone(),
            sharding_item: item,
            sharding_parameter: parameters.get(&item).cloned(),
        };
        run_item(shared.clone(), config.clone(), ctx, &fire, source)
    };
    // A fire of one item (the usual share of an instance) runs it as it is, without the
    // pool's bookkeeping (two shared allocations, and one per item), which was a tenth of
    // starting a thousand one-item fires.
    let mut running = std::pin::pin!(match held.as_slice() {
        [item] => futures::stream::once(start(*item)).left_stream(),
        _ => futures::stream::iter(held.iter().copied())
            .map(start)
            .buffer_unordered(limit.max(1))
            .right_stream(),
    });
    // The items start first, each running to its first await (see `run_item`), and the
    // fire's records come after a yield: when a thousand fires start on the same second,
    // every fire's items then start before any fire's bookkeeping.
    let started_ms = now_ms();
    let mut outcomes: Vec<(u32, Option<String>)> = Vec::with_capacity(held.len());
    if !held.is_empty() {
        if let std::task::Poll::Ready(Some(outcome)) = futures::poll!(running.next()) {
            outcomes.push(outcome);
        }
        tokio::task::yield_now().await;
    }
    shared.trace_fire(
        &fire,
        items.as_slice().into(),
        TraceState::Staging,
        shared.text.begin.clone(),
        *began_ms,
    );
    if !busy.is_empty() {
        if config.misfire {
            Box::pin(mark_misfired(shared, &busy)).await;
        }
        let set: Vec<String> = busy.iter().map(u32::to_string).collect();
        shared.trace_fire(
            &fire,
            busy.as_slice().into(),
            TraceState::Finished,
            format!(
                "Previous job '{}' - shardingItems '[{}]' is still running, misfired job will start after previous job completed.",
                shared.name,
                set.join(", ")
            )
            .into(),
            now_ms(),
        );
    }
    if held.is_empty() {
        return (0, 0);
    }
    let held_items: Arc<[u32]> = held.as_slice().into();
    shared.trace_fire(
        &fire,
        held_items.clone(),
        TraceState::Running,
        Arc::default(),
        started_ms,
    );
    while let Some(outcome) = running.next().await {
        outcomes.push(outcome);
    }
    // §4.5 `registerJobCompleted`: release what this run held.
    let cleanup = held.iter().map(|item| {
        let item = *item;
        let config = config.clone();
        async move {
            // This run created the node, and nobody else deletes a live holder's node (a
            // failover detector only acts once the holder's session is gone), so a plain
            // delete releases it, as Java's does, without reading it back first; batched
            // with the other fires' releases (see `release`).
            if config.monitor_execution
                && let Err(e) = shared
                    .releaser
                    .release(shared.nodes.item_leaf(item, "running"))
                    .await
            {
                tracing::warn!(job = %shared.name, item, error = %e, "cannot release the running marker");
            }
            if config.failover && source == Source::Failover {
                let _ = remove(&shared.registry, &shared.nodes.item_leaf(item, "failover")).await;
                let _ = remove(
                    &shared.registry,
                    &shared.nodes.item_leaf(item, "failovering"),
                )
                .await;
            }
        }
    });
    futures::future::join_all(cleanup).await;
    let failures: BTreeMap<u32, String> = outcomes
        .iter()
        .filter_map(|(i, f)| f.clone().map(|f| (*i, f)))
        .collect();
    if failures.is_empty() {
        shared.trace_fire(
            &fire,
            held_items,
            TraceState::Finished,
            Arc::default(),
            now_ms(),
        );
    } else {
        let text: Vec<String> = failures.iter().map(|(i, f)| format!("{i}={f}")).collect();
        shared.trace_fire(
            &fire,
            held_items,
            TraceState::Error,
            format!("{{{}}}", text.join(", ")).into(),
            now_ms(),
        );
    }
    (held.len(), failures.len())
}

/// The text a panic was raised with, when it has one.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

/// Runs one item and records it.
async fn run_item(
    shared: Arc<JobShared>,
    config: Arc<JobConfig>,
    ctx: ShardingContext,
    fire: &FireIds,
    source: Source,
) -> (u32, Option<String>) {
    let item = ctx.sharding_item;
    if !shared.connected() {
        // Fenced between marking and starting: leave the item to its next owner.
        return (
            item,
            Some("not started: the registry connection was lost".into()),
        );
    }
    let start_ms = now_ms();
    let id = crate::history::new_id_at(start_ms);
    let started = ItemStarted {
        id: id.clone(),
        run_id: fire.run_id.clone(),
        job_name: shared.text.job.clone(),
        task_id: fire.task.clone(),
        ip: shared.text.ip.clone(),
        instance_id: shared.text.instance.clone(),
        item,
        source,
        start_ms,
    };
    if let Some(h) = &shared.history {
        h.started(started.clone());
    }
    shared.in_flight_insert(&started);
    let env = ItemEnv {
        context: ctx,
        config,
        keep_streaming: {
            let shared = shared.clone();
            Arc::new(move || {
                let snap = shared.snapshot();
                let still_on = shared
                    .current_config()
                    .props
                    .get("streaming.process")
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
                still_on
                    && !snap.necessary
                    && shared.link.borrow().connection == Connection::Connected
            })
        },
    };
    // A panic in the item's own code fails the item, as an error would: unwinding through
    // the fire would leave its `running` marker and its history row behind.
    let mut work = std::panic::AssertUnwindSafe(shared.kind.exec.run(env)).catch_unwind();
    let result = match futures::poll!(&mut work) {
        // Done at once: what follows (its records, the fire's end) waits a turn, so that
        // the other fires due now start their items first (see `execute`).
        std::task::Poll::Ready(result) => {
            tokio::task::yield_now().await;
            result
        }
        std::task::Poll::Pending => work.await,
    };
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(panic) => crate::kinds::ItemOutcome::failed(format!(
            "the item panicked: {}",
            panic_message(panic.as_ref())
        )),
    };
    shared.in_flight_remove(&id);
    if let Some(h) = &shared.history {
        h.finished(ItemFinished {
            id,
            job_name: shared.text.job.clone(),
            start_ms,
            end_ms: now_ms(),
            failure: outcome.failure.clone(),
            output: outcome.output.clone(),
        });
    }
    if let Some(f) = &outcome.failure {
        tracing::warn!(job = %shared.name, item, failure = %f, "item failed");
    }
    (item, outcome.failure)
}

/// The ids a fire's records share.
struct FireIds {
    run_id: Arc<str>,
    task: Arc<str>,
}

impl JobShared {
    fn trace_fire(
        &self,
        fire: &FireIds,
        items: Arc<[u32]>,
        state: TraceState,
        message: Arc<str>,
        at_ms: i64,
    ) {
        if let Some(h) = &self.history {
            h.trace(StatusTrace {
                run_id: fire.run_id.clone(),
                job_name: self.text.job.clone(),
                task_id: fire.task.clone(),
                ip: self.text.ip.clone(),
                items,
                state,
                message,
                at_ms,
            });
        }
    }

    /// A status trace outside any run (e.g. a failed clock check).
    pub(crate) fn trace(&self, items: &[u32], run_id: &str, state: TraceState, message: String) {
        let fire = FireIds {
            run_id: run_id.into(),
            task: task_id(&self.name, items, &self.me).into(),
        };
        self.trace_fire(&fire, items.into(), state, message.into(), now_ms());
    }
}
