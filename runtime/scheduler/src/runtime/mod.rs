//! The scheduler runtime: runs jobs on a registry as ElasticJob-Lite 3.0.x instances do, so
//! Java instances and Capstan instances share jobs, leaders, shards and failover.
//!
//! Shape: a [`Scheduler`] is one instance (`ip@-@pid`) on one registry session. Each job it
//! runs is an actor task ([`job`]) that owns a [`TreeCache`] of `/{job}` and reacts to
//! changes in it (instances, servers, leader, config, triggers) as Java's listeners do. One
//! fire clock ([`clock`]) fires every job on its cron schedule, batching the jobs due at the
//! same instant; a job has at most one fire in progress ([`run`], [`slot`]), whoever started
//! it. A session task
//! turns the registry's connection states into the [`Connection`] every actor obeys
//! (fencing, §4.12): while suspended no item starts; once the session is lost (expired, or
//! suspended longer than the session timeout, after which the server has expired it) every
//! running item is abandoned, because another instance may already be failing it over.
//!
//! [`TreeCache`]: capstan_registry::cache::TreeCache

mod batch;
mod clock;
mod failover;
mod job;
mod registration;
mod release;
mod run;
mod slot;
mod snapshot;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capstan_registry::{Registry, SessionEvent};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::JobConfig;
use crate::history::History;
use crate::instance::InstanceId;
use crate::kinds::JobKind;
use crate::protocol::storage;
use crate::{Error, Result};

pub use job::JobState;
pub use registration::parse_job_file;

/// What the registry connection allows right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Connected: items may start.
    Connected,
    /// Disconnected, the session may still be alive: no new item starts.
    Suspended,
    /// The session is gone (expired, or suspended past its timeout): running items are
    /// abandoned and ownership is dropped until a new session registers again.
    Lost,
    /// The registry handle was closed: the runtime is stopping.
    Closed,
}

/// The connection state plus a counter of (re)connections: an actor re-registers its
/// ephemeral nodes whenever `epoch` moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Link {
    pub connection: Connection,
    pub epoch: u64,
}

/// One job to run: its config and what runs for an item.
#[derive(Debug, Clone)]
pub struct JobDefinition {
    /// The local config. Whether it replaces the registry's follows §4.1: when the registry
    /// has none, or `overwrite` is true; otherwise the registry's config wins.
    pub config: JobConfig,
    /// What runs.
    pub kind: JobKind,
}

impl JobDefinition {
    /// A job.
    pub fn new(config: JobConfig, kind: JobKind) -> JobDefinition {
        JobDefinition { config, kind }
    }
}

/// Settings of a [`Scheduler`].
#[derive(Clone)]
pub struct SchedulerBuilder {
    registry: Registry,
    ip: Option<String>,
    suffix: Option<String>,
    history: Option<History>,
    session_timeout: Duration,
    shutdown_grace: Duration,
    fire_ahead: Duration,
}

impl std::fmt::Debug for SchedulerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerBuilder")
            .field("ip", &self.ip)
            .field("suffix", &self.suffix)
            .field("session_timeout", &self.session_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish_non_exhaustive()
    }
}

impl SchedulerBuilder {
    /// The IP this instance registers under (`servers/{ip}`, and its instance id). Unset:
    /// the first non-loopback IPv4 address of this machine, as Java picks it.
    pub fn ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(ip.into());
        self
    }

    /// Appended to the pid in the instance id (`ip@-@pid-suffix`), so several runtimes
    /// can share one process or host (tests, benchmarks).
    pub fn instance_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.suffix = Some(suffix.into());
        self
    }

    /// Where item executions and status traces are recorded.
    pub fn history(mut self, history: History) -> Self {
        self.history = Some(history);
        self
    }

    /// The registry session timeout: a connection suspended this long counts as lost, as
    /// the server has expired the session by then. Default 15 s.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How long a graceful shutdown waits for running items before abandoning them.
    /// Default 30 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// How long before their fire time scheduled fires are planned and their items marked
    /// `running`, so that at the time they only start (see the fire clock). A marker then
    /// shows up to this long before its item starts, and a trigger in that window runs
    /// right after the fire (one during a run is dropped). Default 50 ms; zero plans each
    /// fire at its time.
    pub fn fire_ahead(mut self, ahead: Duration) -> Self {
        self.fire_ahead = ahead;
        self
    }

    /// Starts the runtime: this instance's identity and the session watcher. Jobs are
    /// added with [`Scheduler::add_job`].
    ///
    /// # Errors
    /// [`Error::InstanceId`] for an unusable IP or suffix, or [`Error::NoAddress`] when no
    /// IP was given and none can be found.
    pub async fn start(self) -> Result<Scheduler> {
        let ip = match self.ip {
            Some(ip) => ip,
            None => crate::instance::local_ipv4().ok_or(Error::NoAddress)?,
        };
        let pid = match &self.suffix {
            Some(s) => format!("{}-{s}", std::process::id()),
            None => std::process::id().to_string(),
        };
        let me = InstanceId::new(&ip, &pid)?;
        if let Some(h) = &self.history {
            match h.abandon_others(me.as_str()).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    items = n,
                    "run history: marked items left running by an ended process as abandoned"
                ),
                Err(e) => tracing::warn!(error = %e, "run history: cannot mark abandoned items"),
            }
        }
        let (link, _) = watch::channel(Link {
            connection: Connection::Connected,
            epoch: 0,
        });
        let link = Arc::new(link);
        let watcher = tokio::spawn(watch_session(
            self.registry.clone(),
            link.clone(),
            self.session_timeout,
        ));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
        let clock = clock::FireClock::start(self.fire_ahead).map_err(Error::Thread)?;
        let (releaser, releaser_task) = release::Releaser::start(self.registry.clone());
        Ok(Scheduler {
            inner: Arc::new(Inner {
                registry: self.registry,
                me,
                history: self.history,
                link,
                jobs: Mutex::new(HashMap::new()),
                shutdown_grace: self.shutdown_grace,
                cpu_threads: threads,
                clock,
                releaser,
                _watcher: AbortOnDrop(watcher),
                _releaser: AbortOnDrop(releaser_task),
            }),
        })
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) struct Inner {
    pub registry: Registry,
    pub me: InstanceId,
    pub history: Option<History>,
    pub link: Arc<watch::Sender<Link>>,
    /// Running jobs by name. Locked only to insert, look up or remove a handle.
    jobs: Mutex<HashMap<String, JobHandle>>,
    pub shutdown_grace: Duration,
    /// Concurrency of a run's items for `CPU` thread pools (2 × processors, as Java's).
    pub cpu_threads: usize,
    /// Fires every job of this instance on its schedule.
    pub clock: clock::FireClock,
    /// Deletes the `running` markers of ended fires, in batches.
    pub releaser: release::Releaser,
    _watcher: AbortOnDrop,
    _releaser: AbortOnDrop,
}

/// Commands to a job actor.
pub(crate) enum Command {
    /// Stop: let the current run finish (up to the grace period), then unregister.
    Shutdown(oneshot::Sender<()>),
    /// Report the actor's state.
    State(oneshot::Sender<JobState>),
}

#[derive(Clone)]
struct JobHandle {
    commands: mpsc::Sender<Command>,
    task: tokio::task::AbortHandle,
}

/// An instance of the scheduler runtime. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl Scheduler {
    /// Configures a runtime on `registry`.
    pub fn builder(registry: Registry) -> SchedulerBuilder {
        SchedulerBuilder {
            registry,
            ip: None,
            suffix: None,
            history: None,
            session_timeout: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(30),
            fire_ahead: clock::FIRE_AHEAD,
        }
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &InstanceId {
        &self.inner.me
    }

    /// The registry session.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The run history, if one was configured.
    pub fn history(&self) -> Option<&History> {
        self.inner.history.as_ref()
    }

    /// The connection state the runtime acts on.
    pub fn connection(&self) -> Connection {
        self.inner.link.borrow().connection
    }

    /// Starts running a job: sets up its config (§4.1), registers this instance under it
    /// and schedules it.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a config that fails validation, [`Error::JobConflict`]
    /// when the registry holds another kind of job under the name, [`Error::AlreadyRunning`],
    /// or a registry error.
    pub async fn add_job(&self, def: JobDefinition) -> Result<()> {
        self.start_job(job::Source::Local(Box::new(def.config)), def.kind)
            .await
    }

    async fn start_job(&self, source: job::Source, kind: JobKind) -> Result<()> {
        let name = source.name().to_owned();
        if self.jobs_lock().contains_key(&name) {
            return Err(Error::AlreadyRunning(name));
        }
        let (commands, task) = job::spawn(self.inner.clone(), source, kind).await?;
        let inserted = {
            let mut jobs = self.jobs_lock();
            let fresh = !jobs.contains_key(&name);
            if fresh {
                jobs.insert(
                    name.clone(),
                    JobHandle {
                        commands: commands.clone(),
                        task,
                    },
                );
            }
            fresh
        };
        if !inserted {
            // Lost a race with another add of the same job: stop the one just started.
            let (tx, rx) = oneshot::channel();
            let _ = commands.send(Command::Shutdown(tx)).await;
            let _ = rx.await;
            return Err(Error::AlreadyRunning(name));
        }
        Ok(())
    }

    fn jobs_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, JobHandle>> {
        self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Names of the jobs this instance runs (including ones the registry shut down).
    pub fn jobs(&self) -> Vec<String> {
        let mut names: Vec<String> = self.jobs_lock().keys().cloned().collect();
        names.sort();
        names
    }

    /// The state of one job on this instance.
    pub async fn job_state(&self, name: &str) -> Option<JobState> {
        let handle = self.jobs_lock().get(name).cloned()?;
        let (tx, rx) = oneshot::channel();
        handle.commands.send(Command::State(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Stops one job on this instance, gracefully (§4.8): the running fire finishes (up to
    /// the grace period), the leader node goes if this instance led, the instance node
    /// goes, so the others reshard and fail over.
    pub async fn remove_job(&self, name: &str) {
        let handle = self.jobs_lock().remove(name);
        if let Some(handle) = handle {
            let (tx, rx) = oneshot::channel();
            if handle.commands.send(Command::Shutdown(tx)).await.is_ok() {
                let _ = rx.await;
            }
        }
    }

    /// Stops every job gracefully; the session stays open (close the registry after).
    pub async fn shutdown(&self) {
        let names = self.jobs();
        let stops = names.iter().map(|n| self.remove_job(n));
        futures::future::join_all(stops).await;
    }

    /// Stops everything at once, as `kill -9` would: every job's actor and running items
    /// are dropped on the spot, nothing is unregistered, and the session is left to
    /// expire. For tests of what other instances do when one dies.
    #[doc(hidden)]
    pub fn kill(&self) {
        for (_, handle) in self.jobs_lock().drain() {
            handle.task.abort();
        }
    }

    /// Runs, and keeps running, every script and HTTP job found in the registry (the
    /// agent's mode): jobs whose `/{job}` value is `SCRIPT` or `HTTP`, or whose config
    /// names `script.command.line` or `http.uri`. New jobs are picked up as they appear;
    /// a removed job stops. Returns when the runtime's session ends.
    pub async fn run_registry_jobs(&self) {
        registration::discover(self.clone()).await;
    }

    pub(crate) async fn adopt(&self, name: &str) -> Result<bool> {
        let nodes = crate::protocol::nodes::JobNodes::new(name);
        let registry = &self.inner.registry;
        let Some(config_text) = storage::value(registry, &nodes.config()).await? else {
            return Ok(false);
        };
        let Ok(config) = JobConfig::from_yaml(&config_text) else {
            return Ok(false);
        };
        let root = storage::value(registry, nodes.root()).await?;
        let Some(kind) = JobKind::from_config(root.as_deref(), &config) else {
            return Ok(false);
        };
        match self
            .start_job(job::Source::Registry(name.to_owned()), kind)
            .await
        {
            Ok(()) | Err(Error::AlreadyRunning(_)) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Forgets a job whose actor has ended on its own (its subtree was removed).
    pub(crate) fn forget(&self, name: &str) {
        self.jobs_lock().remove(name);
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Scheduler {
        Scheduler { inner }
    }
}

/// Turns session events into [`Link`] states. A suspension that outlasts the session
/// timeout counts as lost: by then the server has expired the session and other instances
/// may own what this one was running.
async fn watch_session(registry: Registry, link: Arc<watch::Sender<Link>>, timeout: Duration) {
    let mut events = registry.session_events();
    let set = |connection: Connection, bump: bool| {
        link.send_modify(|l| {
            l.connection = connection;
            if bump {
                l.epoch += 1;
            }
        });
    };
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let event = match deadline {
            Some(d) => match tokio::time::timeout_at(d, events.next()).await {
                Ok(e) => e,
                Err(_) => {
                    tracing::warn!(
                        "registry connection suspended longer than the session timeout: treating the session as lost"
                    );
                    set(Connection::Lost, false);
                    deadline = None;
                    continue;
                }
            },
            None => events.next().await,
        };
        match event {
            Some(SessionEvent::Connected) => {}
            Some(SessionEvent::Suspended) => {
                if link.borrow().connection == Connection::Connected {
                    set(Connection::Suspended, false);
                    deadline = Some(tokio::time::Instant::now() + timeout);
                }
            }
            Some(SessionEvent::Reconnected) => {
                deadline = None;
                set(Connection::Connected, true);
            }
            Some(SessionEvent::Expired) => {
                deadline = None;
                set(Connection::Lost, false);
            }
            Some(SessionEvent::Closed) | None => {
                set(Connection::Closed, false);
                return;
            }
        }
    }
}
