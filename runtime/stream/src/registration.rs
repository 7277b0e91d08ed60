//! A running pipeline on its registry centre, as an ElasticJob job of type `STREAM`, so any
//! ElasticJob console lists it: `/{name}` = `STREAM`, a config (no cron; items are the
//! partitions), this process's server and instance nodes, each partition's item assigned
//! to this instance (and `running` while the pipeline runs), and a leader.
//!
//! Control goes through the registry, so any console can act on it, whichever process
//! runs it: the pipeline pauses while `/{name}/paused` exists (the admin API's pause) or
//! its server is `DISABLED`, and restarts from its last checkpoint when
//! `/{name}/capstan/restart` appears (see [`request_restart`]). Its status is published to
//! `/{name}/capstan/metrics` as JSON every few seconds.
//!
//! One process runs all partitions: the registry lists them, it does not spread them over
//! instances (the executor's exchange is in-process).

use std::sync::Arc;
use std::time::Duration;

use capstan_registry::{CreateMode, Error as RegistryError, Registry};

use crate::exec::{Pipeline, State};

/// The `/{job}` value of stream pipelines.
pub const STREAM_TYPE: &str = "STREAM";

/// How often the registry is looked at for control nodes.
const POLL: Duration = Duration::from_millis(300);
/// How often the metrics snapshot is published (and ephemeral nodes re-checked).
const PUBLISH_EVERY: u32 = 10;

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
        for i in 0..status.partitions {
            registry
                .put(
                    &format!("{root}/sharding/{i}/instance"),
                    instance.as_bytes(),
                )
                .await?;
        }
        Ok::<(), RegistryError>(())
    };
    setup.await.map_err(|e| e.to_string())?;
    let mut follower = Follower {
        registry,
        pipeline,
        root,
        ip,
        instance,
        running: None,
        paused_by_registry: false,
    };
    // The first round writes the ephemeral nodes before this returns.
    follower.round(0).await.map_err(|e| e.to_string())?;
    Ok(tokio::spawn(follower.run()))
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
}

impl Follower {
    async fn run(mut self) {
        let mut round = 1u32;
        loop {
            if let Err(e) = self.round(round).await {
                if matches!(e, RegistryError::Closed) {
                    return;
                }
                tracing::warn!(pipeline = %self.pipeline.name(), error = %e, "pipeline registration: registry unavailable; retrying");
            }
            round = round.wrapping_add(1);
            tokio::time::sleep(POLL).await;
        }
    }

    async fn round(&mut self, round: u32) -> Result<(), RegistryError> {
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
            ephemeral(
                r,
                &format!("{}/leader/election/instance", self.root),
                self.instance.as_bytes(),
            )
            .await?;
            let mut s = self.pipeline.status();
            s.samples.clear();
            s.checkpoints = s
                .checkpoints
                .split_off(s.checkpoints.len().saturating_sub(5));
            if let Ok(json) = serde_json::to_vec(&s) {
                r.put(&metrics_node(self.pipeline.name()), &json).await?;
            }
            self.running = None; // re-assert below
        }
        // Control: paused while the admin API's paused node exists or the server is
        // disabled; a pause this follower did not make is left alone.
        let paused_node = r.exists(&format!("{}/paused", self.root)).await?.is_some();
        let disabled = match r.get(&format!("{}/servers/{}", self.root, self.ip)).await {
            Ok((v, _)) => v == b"DISABLED",
            Err(RegistryError::NoNode(_)) => false,
            Err(e) => return Err(e),
        };
        let want_paused = paused_node || disabled;
        if want_paused && !self.paused_by_registry {
            self.pipeline.pause();
            self.paused_by_registry = true;
        } else if !want_paused && self.paused_by_registry {
            self.pipeline.resume();
            self.paused_by_registry = false;
        }
        if r.exists(&restart_node(self.pipeline.name()))
            .await?
            .is_some()
        {
            let p = self.pipeline.clone();
            // Restarting joins the task threads: off the async runtime.
            let outcome = tokio::task::spawn_blocking(move || p.restart()).await;
            match outcome {
                Ok(Ok(())) => {
                    tracing::info!(pipeline = %self.pipeline.name(), "restarted from the last checkpoint on request")
                }
                Ok(Err(e)) => {
                    tracing::error!(pipeline = %self.pipeline.name(), error = %e, "restart requested but failed")
                }
                Err(e) => {
                    tracing::error!(pipeline = %self.pipeline.name(), error = %e, "restart task failed")
                }
            }
            gone(r, &restart_node(self.pipeline.name())).await?;
        }
        let running = self.pipeline.status().state == State::Running;
        if self.running != Some(running) {
            let partitions = self.pipeline.status().partitions;
            for i in 0..partitions {
                let path = format!("{}/sharding/{i}/running", self.root);
                if running {
                    ephemeral(r, &path, b"").await?;
                } else {
                    gone(r, &path).await?;
                }
            }
            self.running = Some(running);
        }
        Ok(())
    }
}
