//! Becoming, staying and stopping being an instance of a job (spec §4.1, §4.8, §4.12), and
//! finding the jobs an agent should run.

use std::collections::HashSet;
use std::time::Duration;

use capstan_registry::{CreateMode, EventKind};

use super::snapshot::Snapshot;
use super::{Connection, Scheduler};
use crate::config::JobConfig;
use crate::instance::InstanceId;
use crate::kinds::JobKind;
use crate::protocol::election;
use crate::protocol::storage::{
    create_if_absent, delete_if_value, persist, persist_ephemeral, remove, value,
};
use crate::runtime::job::JobShared;
use crate::{Error, Result};

/// The label Capstan puts in its instance node (shared with the admin API's pause check).
pub(crate) use crate::admin::operations::CAPSTAN_LABEL;

/// The instance node's YAML: Java's `JobInstance` keys in alphabetical order, with
/// `labels` saying this is a Capstan runtime (a known key, so Java's strict loader reads it).
pub(crate) fn instance_yaml(me: &InstanceId) -> String {
    format!(
        "jobInstanceId: {me}\nlabels: {CAPSTAN_LABEL}\nserverIp: {}\n",
        me.ip()
    )
}

/// §4.1 step 1: decides the config the job runs with. The registry's wins unless it has
/// none or the local one says `overwrite`; `/{job}` must not name another kind of job.
///
/// # Errors
/// [`Error::JobConflict`], [`Error::InvalidConfig`] (the registry's config is malformed),
/// or a registry error.
pub(crate) async fn setup_config(
    shared: &JobShared,
    local: Option<&JobConfig>,
) -> Result<JobConfig> {
    let registry = &shared.registry;
    let nodes = &shared.nodes;
    let type_name = shared.kind.type_name();
    if let Some(existing) = value(registry, nodes.root()).await?
        && !existing.trim().is_empty()
        && existing.trim() != type_name
    {
        return Err(Error::JobConflict {
            job: shared.name.clone(),
            registered: existing.trim().to_owned(),
            ours: type_name.to_owned(),
        });
    }
    let remote = value(registry, &nodes.config()).await?;
    if let Some(local) = local
        && (remote.is_none() || local.overwrite)
    {
        persist(registry, &nodes.config(), local.to_yaml().as_bytes()).await?;
        persist(registry, nodes.root(), type_name.as_bytes()).await?;
        return Ok(local.clone());
    }
    let Some(text) = remote else {
        return Err(Error::NotFound(format!(
            "job {:?} has no config in the registry",
            shared.name
        )));
    };
    let config = JobConfig::from_yaml(&text).map_err(|e| Error::InvalidConfig {
        job: shared.name.clone(),
        problems: vec![format!("the config in the registry is malformed: {e}")],
    })?;
    if value(registry, nodes.root())
        .await?
        .is_none_or(|v| v.trim().is_empty())
    {
        persist(registry, nodes.root(), type_name.as_bytes()).await?;
    }
    Ok(config)
}

/// §4.1 step 3: elect, persist `servers/{ip}`, persist the ephemeral instance node,
/// remove offline servers. Also used after a reconnection (§4.12), where the server's
/// current value is kept.
///
/// # Errors
/// A registry error.
pub(crate) async fn register(shared: &JobShared, config: &JobConfig, first: bool) -> Result<()> {
    let registry = &shared.registry;
    let nodes = &shared.nodes;
    let me = &shared.me;
    election::elect_leader(registry, nodes, me).await?;
    let server = nodes.server(me.ip());
    let current = value(registry, &server).await?;
    let wanted = server_value(current.as_deref(), config.disabled, first);
    if current.as_deref() != Some(wanted) {
        persist(registry, &server, wanted.as_bytes()).await?;
    }
    persist_ephemeral(
        registry,
        &nodes.instance(me.as_str()),
        instance_yaml(me).as_bytes(),
    )
    .await?;
    if first {
        remove_offline_servers(shared).await?;
    }
    // Java's sharding listener sees these writes and its leader flags resharding; doing
    // it here makes the flag exist before the job's first fire or trigger.
    if !(config.static_sharding && has_items(shared).await?) && is_leader(shared).await? {
        flag_resharding(shared).await?;
    }
    Ok(())
}

async fn has_items(shared: &JobShared) -> Result<bool> {
    Ok(
        !crate::protocol::storage::children(&shared.registry, &shared.nodes.sharding())
            .await?
            .is_empty(),
    )
}

/// How long a `servers/{ip}` node must have been untouched before start-up removes it as
/// offline.
const OFFLINE_SERVER_AGE_MS: i64 = 10 * 60 * 1000;

/// 3.0.5's `removeOfflineServers`: deletes every `servers/{ip}` with a non-blank value
/// whose IP has no live instance, but only when the node is old. Java removes it at once,
/// which races an instance starting on that IP (it writes its server, then its instance
/// node): the new instance's server vanishes and it never gets items. Recent leftovers go
/// at the next start, or through the console's stale-server clean-up.
async fn remove_offline_servers(shared: &JobShared) -> Result<()> {
    let registry = &shared.registry;
    let nodes = &shared.nodes;
    let instances = crate::protocol::storage::children(registry, &nodes.instances()).await?;
    let now = crate::history::now_ms();
    for ip in crate::protocol::storage::children(registry, &nodes.servers()).await? {
        if instances.iter().any(|i| i.starts_with(&ip)) {
            continue;
        }
        let Ok((data, stat)) = registry.get(&nodes.server(&ip)).await else {
            continue;
        };
        if data.iter().all(u8::is_ascii_whitespace) || now - stat.mtime < OFFLINE_SERVER_AGE_MS {
            continue;
        }
        tracing::info!(job = %shared.name, ip, "removing offline server");
        match registry
            .delete(&nodes.server(&ip), Some(stat.version))
            .await
        {
            Ok(())
            | Err(capstan_registry::Error::NoNode(_) | capstan_registry::Error::BadVersion(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Writes this instance's `servers/{ip}` back when it vanished while the instance is
/// still registered (another instance's clean-up, or a Java 3.0.5 instance's race above).
/// An operator's "remove server" shuts the instance down first, so it never gets here.
pub(crate) async fn restore_server(shared: &JobShared, config: &JobConfig) -> Result<()> {
    let server = shared.nodes.server(shared.me.ip());
    let wanted = server_value(None, config.disabled, false);
    // No parents: while the whole job is being removed, `servers/` goes too, and a
    // restore must not resurrect a skeleton of the job.
    match shared
        .registry
        .create(&server, wanted.as_bytes(), CreateMode::Persistent)
        .await
    {
        Ok(_) => {
            tracing::warn!(job = %shared.name, "this instance's server node was removed while it ran; written back");
            Ok(())
        }
        Err(capstan_registry::Error::NodeExists(_) | capstan_registry::Error::NoNode(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The `servers/{ip}` value to write when registering. An operator's `DISABLED` stays,
/// across restarts and reconnections alike: Java overwrites it at start-up (EJ#2393, a
/// console disable lost on restart) and writes `DISABLED` over a missing node after a
/// reconnection; Capstan does neither. `config.disabled` still disables at start-up.
fn server_value(current: Option<&str>, config_disabled: bool, first: bool) -> &'static str {
    match current {
        Some("DISABLED") => "DISABLED",
        _ if first && config_disabled => "DISABLED",
        Some("ENABLED") => "ENABLED",
        // Missing or odd (a 2.x-style empty value): what the config says.
        _ if config_disabled => "DISABLED",
        _ => "ENABLED",
    }
}

/// After a reconnection: this instance's `running` markers for items it is not executing
/// are stale (§4.12 "delete running for the local items").
pub(crate) async fn clear_stale_running(
    shared: &JobShared,
    snap: &Snapshot,
    executing: &[u32],
) -> Result<()> {
    let items: Vec<u32> = snap.items.keys().copied().collect();
    for item in shared.running_items(&items) {
        // Deleted only if it names this instance (the delete reads it).
        if !executing.contains(&item) {
            delete_if_value(
                &shared.registry,
                &shared.nodes.item_leaf(item, "running"),
                shared.me.as_str(),
            )
            .await?;
        }
    }
    Ok(())
}

/// Graceful stop (§4.8): the leader node if this instance leads, then the instance node.
pub(crate) async fn unregister(shared: &JobShared) {
    let registry = &shared.registry;
    let leader = delete_if_value(registry, &shared.nodes.leader(), shared.me.as_str()).await;
    let instance = remove(registry, &shared.nodes.instance(shared.me.as_str())).await;
    for e in [leader.err(), instance.err()].into_iter().flatten() {
        tracing::warn!(job = %shared.name, error = %e, "unregistering at shutdown");
    }
}

/// Persists `necessary` (the caller checked it leads).
pub(crate) async fn flag_resharding(shared: &JobShared) -> Result<()> {
    create_if_absent(
        &shared.registry,
        &shared.nodes.resharding_necessary(),
        b"",
        CreateMode::Persistent,
    )
    .await
    .map(drop)
}

/// Watches the namespace root and runs every job there an agent can run, as it appears.
pub(crate) async fn discover(scheduler: Scheduler) {
    let registry = scheduler.registry().clone();
    // Jobs not runnable by an agent (class-based, or config missing for now) are looked
    // at again when their subtree changes; `waiting` holds their watch tasks.
    let mut waiting: HashSet<String> = HashSet::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    loop {
        if scheduler.connection() == Connection::Closed {
            return;
        }
        let (children, watch) = match registry.children_and_watch("/").await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "job discovery: cannot list jobs; retrying");
                if !e.is_retryable() && matches!(e, capstan_registry::Error::Closed) {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let running: HashSet<String> = scheduler.jobs().into_iter().collect();
        for name in children {
            if running.contains(&name) || waiting.contains(&name) {
                continue;
            }
            // The job's watch is set before the attempt reads anything: whatever lands
            // after those reads (a console writes the root first and the config next) is
            // then an event, and nothing can land unseen in between.
            let changes = registry.watch_recursive(&format!("/{name}")).await;
            match scheduler.adopt(&name).await {
                Ok(true) => {
                    tracing::info!(job = %name, "running job found in the registry");
                    continue;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(job = %name, error = %e, "cannot run job found in the registry")
                }
            }
            waiting.insert(name.clone());
            tokio::spawn(wait_for_change(changes, name, ready_tx.clone()));
        }
        tokio::select! {
            event = watch.changed() => {
                if event.kind == EventKind::SessionEnded {
                    // Wait for a new session (ZooKeeper reconnects after an expiry).
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Some(name) = ready_rx.recv() => {
                waiting.remove(&name);
            }
        }
    }
}

/// Waits for a change under the job's root (at most a minute), then asks discovery to look
/// at the job again.
async fn wait_for_change(
    changes: capstan_registry::Result<capstan_registry::EventStream>,
    name: String,
    ready: tokio::sync::mpsc::UnboundedSender<String>,
) {
    match changes {
        Ok(mut stream) => {
            let _ = tokio::time::timeout(Duration::from_secs(60), stream.next()).await;
        }
        // No watch: look again later.
        Err(_) => tokio::time::sleep(Duration::from_secs(5)).await,
    }
    let _ = ready.send(name);
}

/// A job file (`--jobs DIR`): the config YAML of §3, plus an optional `type` key
/// (`SCRIPT` or `HTTP`) that goes to `/{job}`, not into the config.
///
/// # Errors
/// [`Error::InvalidConfig`] naming the file's problems.
pub fn parse_job_file(name: &str, text: &str) -> Result<(JobConfig, JobKind)> {
    let invalid = |problems: Vec<String>| Error::InvalidConfig {
        job: name.to_owned(),
        problems,
    };
    let mut config = JobConfig::from_yaml(text).map_err(|e| invalid(vec![e.to_string()]))?;
    let declared = config.preserved.remove("type").map(|block| {
        block
            .trim_start_matches("type:")
            .trim()
            .trim_matches(['\'', '"'])
            .to_owned()
    });
    let mut problems: Vec<String> = config
        .validate()
        .into_iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    let kind = match declared.as_deref() {
        Some(t @ (crate::kinds::SCRIPT_TYPE | crate::kinds::HTTP_TYPE)) => {
            JobKind::from_config(Some(t), &config)
        }
        Some(other) => {
            problems.push(format!("type: {other:?}; use SCRIPT or HTTP"));
            None
        }
        None => JobKind::from_config(None, &config),
    };
    let Some(kind) = kind else {
        if problems.is_empty() {
            problems.push(
                "nothing to run: set type: SCRIPT with props script.command.line, or type: HTTP with props http.uri and http.method"
                    .into(),
            );
        }
        return Err(invalid(problems));
    };
    problems.extend(
        crate::kinds::validate_props(kind.type_name(), &config)
            .into_iter()
            .map(|(prop, why)| format!("props.{prop}: {why}")),
    );
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    Ok((config, kind))
}

/// Leader check straight from the registry, for decisions that must not trust a cache.
pub(crate) async fn is_leader(shared: &JobShared) -> Result<bool> {
    election::is_leader(&shared.registry, &shared.nodes, &shared.me).await
}

/// Runs `electLeader` when there is no leader and this instance's server is available
/// (active and passive election, §4.2).
pub(crate) async fn elect_if_leaderless(shared: &JobShared, snap: &Snapshot) -> Result<()> {
    if snap.leader.is_none() && snap.server_available(shared.me.ip()) {
        election::elect_leader(&shared.registry, &shared.nodes, &shared.me).await?;
    }
    Ok(())
}

/// Steps down (§4.2 abdication): deletes the leader node if it holds this instance.
pub(crate) async fn abdicate(shared: &JobShared) -> Result<()> {
    delete_if_value(&shared.registry, &shared.nodes.leader(), shared.me.as_str())
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_disable_survives_restarts() {
        assert_eq!(server_value(Some("DISABLED"), false, true), "DISABLED");
        assert_eq!(server_value(Some("DISABLED"), false, false), "DISABLED");
        assert_eq!(server_value(Some("ENABLED"), true, true), "DISABLED");
        assert_eq!(server_value(Some("ENABLED"), true, false), "ENABLED");
        assert_eq!(server_value(None, false, false), "ENABLED");
        assert_eq!(server_value(Some(""), true, true), "DISABLED");
        assert_eq!(server_value(None, false, true), "ENABLED");
    }

    #[test]
    fn job_files_take_their_type_out_of_the_config() {
        let (config, kind) = parse_job_file(
            "backup",
            "jobName: backup\ntype: SCRIPT\ncron: 0 0 2 * * ?\nshardingTotalCount: 2\nprops:\n  script.command.line: /usr/local/bin/backup.sh\n",
        )
        .expect("valid");
        assert_eq!(kind.type_name(), "SCRIPT");
        assert!(!config.to_yaml().contains("type:"), "{}", config.to_yaml());
        let (_, kind) = parse_job_file(
            "ping",
            "jobName: ping\ncron: 0/10 * * * * ?\nshardingTotalCount: 1\nprops:\n  http.uri: http://127.0.0.1:3000/healthz\n  http.method: GET\n",
        )
        .expect("inferred");
        assert_eq!(kind.type_name(), "HTTP");
        let err = parse_job_file(
            "bad",
            "jobName: bad\ntype: SCRIPT\ncron: 61 * * * * ?\nshardingTotalCount: 0\n",
        )
        .expect_err("invalid")
        .to_string();
        assert!(err.contains("cron"), "{err}");
        assert!(err.contains("shardingTotalCount"), "{err}");
        assert!(err.contains("script.command.line"), "{err}");
        let err = parse_job_file(
            "x",
            "jobName: x\ntype: JAVA\ncron: 0 * * * * ?\nshardingTotalCount: 1\n",
        )
        .expect_err("type")
        .to_string();
        assert!(err.contains("use SCRIPT or HTTP"), "{err}");
    }
}
