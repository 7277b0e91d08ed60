//! A running pipeline on its registry centre, as an ElasticJob job of type `STREAM`, so any
//! ElasticJob console lists it: `/{name}` = `STREAM`, a config (no cron; items are the
//! partitions), each registering process's server and instance nodes, a leader (the
//! process that runs it), and each partition's item assigned to the leader (and `running`
//! while the pipeline runs).
//!
//! Control goes through the registry, so any console can act on it, whichever process
//! runs it: the pipeline pauses while `/{name}/paused` exists (the admin API's pause),
//! moves to another registered process (or stops) while its server is `DISABLED`, and
//! restarts from its last checkpoint when
//! `/{name}/capstan/restart` appears (see [`request_restart`]). Its status is published to
//! `/{name}/capstan/metrics` as JSON every few seconds.
//!
//! Several processes may register the same pipeline (`capstan pipeline start --registry`
//! on several hosts, with one data directory on shared storage): one runs it, the others
//! stand by ([`StartMode::Standby`](crate::exec::StartMode::Standby)). Who runs it is
//! ElasticJob's leader: the instance in the ephemeral `/{name}/leader/election/instance`,
//! created by whoever finds it missing (ZooKeeper's create is the election: one create
//! wins). When the leader's session ends, a standby creates it and takes over from the
//! last checkpoint, and the items' `instance` nodes name it. A leader whose connection is
//! suspended stops at once (Curator's advice): after its session times out another may
//! lead, and two writers of one data directory would corrupt it.
//!
//! One process runs all partitions: the registry lists them, it does not spread them over
//! instances (the executor's exchange is in-process).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capstan_registry::{CreateMode, Error as RegistryError, Registry, SessionEvent};

use crate::exec::{Pipeline, State};

/// The `/{job}` value of stream pipelines.
pub const STREAM_TYPE: &str = "STREAM";

/// How often the registry is looked at for control nodes.
const POLL: Duration = Duration::from_millis(300);
/// How often the metrics snapshot is published (and ephemeral nodes re-checked).
const PUBLISH_EVERY: u32 = 10;

fn leader_node(job: &str) -> String {
    format!("/{job}/leader/election/instance")
}

fn restart_node(job: &str) -> String {
    format!("/{job}/capstan/restart")
}

/// Where a pipeline's status snapshot is.
pub fn metrics_node(job: &str) -> String {
    format!("/{job}/capstan/metrics")
}

async fn ephemeral(registry: &Registry, path: &str, data: &[u8]) -> Result<(), RegistryError> {
    match registry.get(path).await {
        Ok((v, stat)) if v == data && stat.ephemeral_owner == registry.session_id() => Ok(()),
        Ok(_) => {
            registry.delete(path, None).await.or_else(|e| match e {
                RegistryError::NoNode(_) => Ok(()),
                e => Err(e),
            })?;
            registry
                .create_if_absent(path, data, CreateMode::Ephemeral)
                .await
                .map(|_| ())
        }
        Err(RegistryError::NoNode(_)) => registry
            .create_if_absent(path, data, CreateMode::Ephemeral)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    }
}

async fn gone(registry: &Registry, path: &str) -> Result<(), RegistryError> {
    match registry.delete(path, None).await {
        Ok(()) | Err(RegistryError::NoNode(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes `path` if this session's ephemeral node.
async fn gone_if_mine(registry: &Registry, path: &str) -> Result<(), RegistryError> {
    match registry.get(path).await {
        Ok((_, stat)) if stat.ephemeral_owner == registry.session_id() => {
            match registry.delete(path, Some(stat.version)).await {
                Ok(()) | Err(RegistryError::NoNode(_) | RegistryError::BadVersion(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Ok(_) | Err(RegistryError::NoNode(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The job config, in ElasticJob's YAML (keys Java's loader knows; no cron: the job is
/// not fired by a schedule).
fn config_yaml(name: &str, partitions: usize, description: &str) -> String {
    let items: Vec<String> = (0..partitions)
        .map(|i| format!("{i}=partition-{i}"))
        .collect();
    format!(
        "jobName: {name}\nshardingTotalCount: {partitions}\nshardingItemParameters: {}\njobParameter: ''\nmonitorExecution: true\nfailover: false\nmisfire: false\nmaxTimeDiffSeconds: -1\nreconcileIntervalMinutes: 0\ndescription: '{}'\nprops:\n  capstan.type: STREAM\ndisabled: false\noverwrite: true\n",
        items.join(","),
        description.replace('\'', "''")
    )
}

/// Asks whichever process runs pipeline `job` on this registry to restart it from its
/// last checkpoint.
///
/// # Errors
/// No such stream job, or a registry error.
pub async fn request_restart(registry: &Registry, job: &str) -> Result<(), String> {
    match registry.get(&format!("/{job}")).await {
        Ok((v, _)) if String::from_utf8_lossy(&v).trim() == STREAM_TYPE => {}
        Ok(_) => return Err(format!("{job} is not a stream pipeline")),
        Err(RegistryError::NoNode(_)) => return Err(format!("there is no job named {job:?}")),
        Err(e) => return Err(e.to_string()),
    }
    registry
        .put(&restart_node(job), b"requested")
        .await
        .map_err(|e| e.to_string())
}

/// Registers `pipeline` on `registry` as instance `instance` on server `ip`, and follows
/// the registry's control nodes until the pipeline is dropped elsewhere or the registry
/// closes. Returns once the nodes are written; the follow-up runs as a task.
///
/// # Errors
/// A job of another type with the same name, or a registry error.
pub async fn register(
    registry: Registry,
    pipeline: Arc<Pipeline>,
    ip: String,
    instance: String,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let name = pipeline.name().to_owned();
    let root = format!("/{name}");
    match registry.get(&root).await {
        Ok((v, _)) => {
            let v = String::from_utf8_lossy(&v).trim().to_owned();
            if !v.is_empty() && v != STREAM_TYPE {
                return Err(format!(
                    "a {v} job named {name:?} is already registered; rename the pipeline"
                ));
            }
            registry
                .set(&root, STREAM_TYPE.as_bytes(), None)
                .await
                .map_err(|e| e.to_string())?;
        }
        Err(RegistryError::NoNode(_)) => {
            registry
                .create_if_absent(&root, STREAM_TYPE.as_bytes(), CreateMode::Persistent)
                .await
                .map_err(|e| e.to_string())?;
        }
        Err(e) => return Err(e.to_string()),
    }
    let status = pipeline.status();
    let description = format!("Capstan stream pipeline: {}", pipeline.dag());
    let setup = async {
        registry
            .put(
                &format!("{root}/config"),
                config_yaml(&name, status.partitions, &description).as_bytes(),
            )
            .await?;
        registry
            .create_if_absent(&format!("{root}/servers/{ip}"), b"", CreateMode::Persistent)
            .await?;
        Ok::<(), RegistryError>(())
    };
    setup.await.map_err(|e| e.to_string())?;
    // Subscribed before the first round: a suspension from then on is seen.
    let events = registry.session_events();
    let mut follower = Follower {
        registry,
        pipeline,
        root,
        ip,
        instance,
        running: None,
        paused_by_registry: false,
        items_written: false,
        lifecycle: Arc::new(Mutex::new(())),
        fences: Arc::new(AtomicU64::new(0)),
    };
    // The first round elects, and writes the ephemeral nodes, before this returns.
    follower.round(0).await.map_err(|e| e.to_string())?;
    Ok(tokio::spawn(follower.run(events)))
}

struct Follower {
    registry: Registry,
    pipeline: Arc<Pipeline>,
    root: String,
    ip: String,
    instance: String,
    /// Whether the items' `running` nodes are up.
    running: Option<bool>,
    paused_by_registry: bool,
    /// Whether the items' `instance` nodes name this process since it leads.
    items_written: bool,
    /// Taking over and stepping down, one at a time (each runs on a blocking thread).
    lifecycle: Arc<Mutex<()>>,
    /// Counts the fences (step-downs on a suspended or ended session). A take-over
    /// decided before a fence must not run after it: it checks this count under
    /// `lifecycle`, and the fence adds to it before taking `lifecycle`.
    fences: Arc<AtomicU64>,
}

/// What woke the follower.
enum Next {
    Session(Option<SessionEvent>),
    Round(Result<(), RegistryError>),
}

impl Follower {
    async fn run(mut self, mut events: capstan_registry::SessionEvents) {
        let mut round = 1u32;
        loop {
            // A round's registry calls can wait through a disconnection; the session's
            // events are watched meanwhile, so a leader whose connection is suspended
            // stops at once, not when its calls give up.
            let next = tokio::select! {
                biased;
                e = events.next() => Next::Session(e),
                r = async {
                    let r = self.round(round).await;
                    tokio::time::sleep(POLL).await;
                    r
                } => Next::Round(r),
            };
            match next {
                Next::Session(Some(SessionEvent::Suspended | SessionEvent::Expired)) => {
                    self.fence("the registry connection is suspended or its session ended")
                        .await;
                }
                Next::Session(None | Some(SessionEvent::Closed)) => {
                    self.fence("the registry is closed").await;
                    return;
                }
                Next::Session(Some(_)) => {}
                Next::Round(Ok(())) => round = round.wrapping_add(1),
                Next::Round(Err(RegistryError::Closed)) => {
                    self.fence("the registry is closed").await;
                    return;
                }
                Next::Round(Err(e)) => {
                    round = round.wrapping_add(1);
                    tracing::warn!(pipeline = %self.pipeline.name(), error = %e, "pipeline registration: registry unavailable; retrying");
                }
            }
        }
    }

    /// Stops the pipeline if it runs: this process may no longer lead.
    async fn fence(&mut self, why: &str) {
        self.fences.fetch_add(1, Ordering::SeqCst);
        if self.pipeline.status().state == State::Standby {
            return;
        }
        tracing::warn!(pipeline = %self.pipeline.name(), "{why}: stopping the pipeline until this process leads again");
        let (p, lifecycle) = (self.pipeline.clone(), self.lifecycle.clone());
        // Stepping down joins the task threads: off the async runtime.
        let _ = tokio::task::spawn_blocking(move || {
            let _one = lifecycle.lock().unwrap_or_else(|e| e.into_inner());
            p.step_down();
        })
        .await;
        self.running = None;
    }

    /// Whether this process leads (runs the pipeline), electing it if nobody does.
    async fn lead(&self) -> Result<bool, RegistryError> {
        let r = &self.registry;
        let path = leader_node(self.pipeline.name());
        match r.get(&path).await {
            Ok((v, stat)) => {
                Ok(v == self.instance.as_bytes() && stat.ephemeral_owner == r.session_id())
            }
            Err(RegistryError::NoNode(_)) => {
                r.create_with(
                    &path,
                    self.instance.as_bytes(),
                    capstan_registry::CreateOptions {
                        mode: CreateMode::Ephemeral,
                        create_parents: true,
                    },
                )
                .await
                .map(|_| true)
                .or_else(|e| match e {
                    // Another candidate's create came first.
                    RegistryError::NodeExists(_) => Ok(false),
                    e => Err(e),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Runs `f` on the pipeline on a blocking thread (it starts or joins task threads),
    /// unless a fence came after the `seen`-th: what `f` does was decided as leader.
    /// `None` if it did not run.
    async fn as_leader<T: Send + 'static>(
        &self,
        seen: u64,
        f: impl FnOnce(&Pipeline) -> T + Send + 'static,
    ) -> Option<T> {
        let (p, lifecycle, fences) = (
            self.pipeline.clone(),
            self.lifecycle.clone(),
            self.fences.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let _one = lifecycle.lock().unwrap_or_else(|e| e.into_inner());
            (fences.load(Ordering::SeqCst) == seen).then(|| f(&p))
        })
        .await
        .ok()
        .flatten()
    }

    /// Whether this process's server is `DISABLED` (by an ElasticJob console or the admin
    /// API).
    async fn server_disabled(&self) -> Result<bool, RegistryError> {
        match self
            .registry
            .get(&format!("{}/servers/{}", self.root, self.ip))
            .await
        {
            Ok((v, _)) => Ok(v == b"DISABLED"),
            Err(RegistryError::NoNode(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives up leading, if this process leads: stops the pipeline first, then deletes
    /// the leader node, so that whoever creates it next starts after this one stopped.
    async fn resign(&mut self) -> Result<(), RegistryError> {
        let path = leader_node(self.pipeline.name());
        let r = &self.registry;
        match r.get(&path).await {
            Ok((v, stat))
                if v == self.instance.as_bytes() && stat.ephemeral_owner == r.session_id() =>
            {
                self.fence("this server is disabled").await;
                match self.registry.delete(&path, Some(stat.version)).await {
                    Ok(()) | Err(RegistryError::NoNode(_) | RegistryError::BadVersion(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Ok(_) | Err(RegistryError::NoNode(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs the pipeline if this process leads, stands it by if another does. A process
    /// whose server is disabled does not lead: ElasticJob runs nothing on a disabled
    /// server, so the pipeline moves to another process (from its checkpoint), or stops if
    /// there is none. Returns whether it leads, and the fence count its decision was made
    /// at.
    async fn follow_leadership(&mut self) -> Result<(bool, u64), RegistryError> {
        let seen = self.fences.load(Ordering::SeqCst);
        let leads = if self.server_disabled().await? {
            self.resign().await?;
            false
        } else {
            self.lead().await?
        };
        let standing_by = self.pipeline.status().state == State::Standby;
        if leads && standing_by {
            match self.as_leader(seen, Pipeline::take_over).await {
                Some(Ok(())) => {
                    tracing::info!(pipeline = %self.pipeline.name(), instance = %self.instance, "leading: running the pipeline from its last checkpoint");
                    self.running = None;
                }
                // Tried again next round; meanwhile no other process runs it either.
                Some(Err(e)) => {
                    tracing::error!(pipeline = %self.pipeline.name(), error = %e, "leading, but the pipeline cannot start");
                }
                None => return Ok((false, seen)),
            }
        } else if !leads && !standing_by {
            self.fence("another process leads").await;
        }
        // The items name their leader once it leads (ElasticJob's sharding result).
        if leads && !self.items_written {
            for i in 0..self.pipeline.status().partitions {
                self.registry
                    .put(
                        &format!("{}/sharding/{i}/instance", self.root),
                        self.instance.as_bytes(),
                    )
                    .await?;
            }
        }
        self.items_written = leads;
        Ok((leads, seen))
    }

    async fn round(&mut self, round: u32) -> Result<(), RegistryError> {
        let (leads, seen) = self.follow_leadership().await?;
        let r = &self.registry;
        let instance_yaml = format!(
            "jobInstanceId: {}\nlabels: capstan\nserverIp: {}\n",
            self.instance, self.ip
        );
        if round.is_multiple_of(PUBLISH_EVERY) {
            // Ephemeral nodes go with a lost session: put them back.
            ephemeral(
                r,
                &format!("{}/instances/{}", self.root, self.instance),
                instance_yaml.as_bytes(),
            )
            .await?;
            if leads {
                let mut s = self.pipeline.status();
                // The last minute, for the charts of consoles in other processes.
                s.samples = s.samples.split_off(s.samples.len().saturating_sub(60));
                s.checkpoints = s
                    .checkpoints
                    .split_off(s.checkpoints.len().saturating_sub(5));
                if let Ok(json) = serde_json::to_vec(&s) {
                    r.put(&metrics_node(self.pipeline.name()), &json).await?;
                }
            }
            self.running = None; // re-assert below
        }
        // Control: paused while the admin API's paused node exists; a pause this follower
        // did not make is left alone.
        let want_paused = r.exists(&format!("{}/paused", self.root)).await?.is_some();
        if want_paused && !self.paused_by_registry {
            self.pipeline.pause();
            self.paused_by_registry = true;
        } else if !want_paused && self.paused_by_registry {
            self.pipeline.resume();
            self.paused_by_registry = false;
        }
        // The leader restarts (and consumes the request); a standby leaves it.
        if leads
            && r.exists(&restart_node(self.pipeline.name()))
                .await?
                .is_some()
        {
            match self.as_leader(seen, Pipeline::restart).await {
                Some(Ok(())) => {
                    tracing::info!(pipeline = %self.pipeline.name(), "restarted from the last checkpoint on request");
                }
                Some(Err(e)) => {
                    tracing::error!(pipeline = %self.pipeline.name(), error = %e, "restart requested but failed");
                }
                // Fenced meanwhile: the request stays for whoever leads.
                None => return Ok(()),
            }
            gone(r, &restart_node(self.pipeline.name())).await?;
        }
        let running = leads && self.pipeline.status().state == State::Running;
        if self.running != Some(running) {
            let partitions = self.pipeline.status().partitions;
            for i in 0..partitions {
                let path = format!("{}/sharding/{i}/running", self.root);
                if running {
                    ephemeral(r, &path, b"").await?;
                } else if leads {
                    gone(r, &path).await?;
                } else {
                    // Not the leader's to remove: the process that runs it now writes
                    // its own.
                    gone_if_mine(r, &path).await?;
                }
            }
            self.running = Some(running);
        }
        Ok(())
    }
}
