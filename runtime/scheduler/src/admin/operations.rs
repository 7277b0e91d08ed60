//! The admin API's operations (spec §5), plus Capstan's pause, resume and trigger with a
//! parameter. Each is what ElasticJob's lifecycle module writes, so Java instances react
//! to them exactly as to ElasticJob-UI.

use capstan_registry::{CreateMode, Error as RegistryError, Op, Registry};

use crate::config::JobConfig;

use crate::protocol::nodes::JobNodes;
use crate::protocol::storage::{children, persist, remove, value};
use crate::{Error, Result};

/// The label a Capstan runtime puts in its instance node (`labels` is a known field of
/// Java's `JobInstance`, so Java's strict loader accepts it).
pub const CAPSTAN_LABEL: &str = "capstan";

async fn require_job(registry: &Registry, job: &str) -> Result<JobNodes> {
    let nodes = JobNodes::new(job);
    match registry.exists(nodes.root()).await? {
        Some(_) => Ok(nodes),
        None => Err(Error::NotFound(format!("job {job:?} does not exist"))),
    }
}

/// The server IP of an instance of `nodes`' job.
async fn instance_ip(registry: &Registry, nodes: &JobNodes, id: &str) -> Result<String> {
    let yaml = value(registry, &nodes.instance(id)).await?;
    Ok(crate::instance::server_ip(yaml.as_deref(), id))
}

/// Trigger once (§4.9): every current instance fires once. `parameter` (a Capstan
/// extension) travels in the trigger node's value; Java instances ignore it.
///
/// # Errors
/// [`Error::NotFound`] for an unknown job, or a registry error.
pub async fn trigger(registry: &Registry, job: &str, parameter: Option<&str>) -> Result<usize> {
    let nodes = require_job(registry, job).await?;
    remove(registry, &nodes.triggers()).await?;
    let instances = children(registry, &nodes.instances()).await?;
    for id in &instances {
        persist(
            registry,
            &nodes.trigger(id),
            parameter.unwrap_or("").as_bytes(),
        )
        .await?;
    }
    Ok(instances.len())
}

/// Disables or enables a job on every server it has, stale ones included (§5).
///
/// # Errors
/// [`Error::NotFound`] or a registry error.
pub async fn set_job_enabled(registry: &Registry, job: &str, enabled: bool) -> Result<()> {
    let nodes = require_job(registry, job).await?;
    let value: &[u8] = if enabled { b"ENABLED" } else { b"DISABLED" };
    for ip in children(registry, &nodes.servers()).await? {
        persist(registry, &nodes.server(&ip), value).await?;
    }
    Ok(())
}

/// Disables or enables a server in every job that has it; returns how many jobs.
///
/// # Errors
/// [`Error::NotFound`] if no job has the server, or a registry error.
pub async fn set_server_enabled(registry: &Registry, ip: &str, enabled: bool) -> Result<usize> {
    let value: &[u8] = if enabled { b"ENABLED" } else { b"DISABLED" };
    let mut count = 0;
    for job in children(registry, "/").await? {
        let nodes = JobNodes::new(&job);
        if registry.exists(&nodes.server(ip)).await?.is_some() {
            persist(registry, &nodes.server(ip), value).await?;
            count += 1;
        }
    }
    if count == 0 {
        return Err(Error::NotFound(format!("no job has server {ip}")));
    }
    Ok(count)
}

/// Disables or enables one item (`sharding/{item}/disabled`).
///
/// # Errors
/// [`Error::NotFound`] for an unknown job or item, or a registry error.
pub async fn set_item_enabled(
    registry: &Registry,
    job: &str,
    item: u32,
    enabled: bool,
) -> Result<()> {
    let nodes = require_job(registry, job).await?;
    if registry.exists(&nodes.item(item)).await?.is_none() {
        return Err(Error::NotFound(format!("job {job:?} has no item {item}")));
    }
    let flag = nodes.item_leaf(item, "disabled");
    if enabled {
        remove(registry, &flag).await
    } else {
        persist(registry, &flag, b"").await
    }
}

/// Shuts down instances of a job: all, or those on `ip`. Each stops the job until it
/// restarts; the others fail over and reshard. Returns how many.
///
/// # Errors
/// [`Error::NotFound`] or a registry error.
pub async fn shutdown(registry: &Registry, job: &str, ip: Option<&str>) -> Result<usize> {
    let nodes = require_job(registry, job).await?;
    let mut count = 0;
    for id in children(registry, &nodes.instances()).await? {
        if ip.is_none() || ip == Some(instance_ip(registry, &nodes, &id).await?.as_str()) {
            match registry.delete(&nodes.instance(&id), None).await {
                Ok(()) | Err(RegistryError::NoNode(_)) => count += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(count)
}

/// Removes a server from every job: shuts its instances down, then deletes
/// `servers/{ip}` (the clean-up for stale servers). Returns how many jobs had it.
///
/// # Errors
/// A registry error.
pub async fn remove_server(registry: &Registry, ip: &str) -> Result<usize> {
    let mut count = 0;
    for job in children(registry, "/").await? {
        let nodes = JobNodes::new(&job);
        shutdown(registry, &job, Some(ip)).await?;
        if registry.exists(&nodes.server(ip)).await?.is_some() {
            remove(registry, &nodes.server(ip)).await?;
            count += 1;
        }
    }
    Ok(count)
}

/// Whether any job has an instance online on `ip`, read from the registry (not a cache):
/// the check a stale-server clean-up makes right before removing a server.
///
/// # Errors
/// A registry error.
pub async fn server_has_instances(registry: &Registry, ip: &str) -> Result<bool> {
    for job in children(registry, "/").await? {
        let nodes = JobNodes::new(&job);
        for id in children(registry, &nodes.instances()).await? {
            if instance_ip(registry, &nodes, &id).await? == ip {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Removes a job's whole subtree.
///
/// # Errors
/// [`Error::NotFound`] or a registry error.
pub async fn remove_job(registry: &Registry, job: &str) -> Result<()> {
    let nodes = require_job(registry, job).await?;
    remove(registry, nodes.root()).await
}

/// Pauses (Capstan extension): our instances skip fires until resumed, without
/// resharding. Refused while any instance of the job is not a Capstan runtime.
///
/// # Errors
/// [`Error::PauseNotSupported`], [`Error::NotFound`] or a registry error.
pub async fn pause(registry: &Registry, job: &str) -> Result<()> {
    let nodes = require_job(registry, job).await?;
    let mut foreign = Vec::new();
    for id in children(registry, &nodes.instances()).await? {
        let Some(yaml) = value(registry, &nodes.instance(&id)).await? else {
            continue;
        };
        if !yaml
            .lines()
            .any(|l| l.trim() == format!("labels: {CAPSTAN_LABEL}"))
        {
            foreign.push(id);
        }
    }
    if !foreign.is_empty() {
        return Err(Error::PauseNotSupported {
            job: job.to_owned(),
            instances: foreign.join(", "),
        });
    }
    persist(registry, &nodes.paused(), b"").await
}

/// Resumes a paused job.
///
/// # Errors
/// [`Error::NotFound`] or a registry error.
pub async fn resume(registry: &Registry, job: &str) -> Result<()> {
    let nodes = require_job(registry, job).await?;
    remove(registry, &nodes.paused()).await
}

/// Disables or enables one job on one server (§5 `disable(job, ip)`).
///
/// # Errors
/// [`Error::NotFound`] for an unknown job or a server the job does not have, or a
/// registry error.
pub async fn set_job_server_enabled(
    registry: &Registry,
    job: &str,
    ip: &str,
    enabled: bool,
) -> Result<()> {
    let nodes = require_job(registry, job).await?;
    if value(registry, &nodes.server(ip)).await?.is_none() {
        return Err(Error::NotFound(format!("job {job:?} has no server {ip}")));
    }
    let v: &[u8] = if enabled { b"ENABLED" } else { b"DISABLED" };
    persist(registry, &nodes.server(ip), v).await
}

/// Shuts down every instance on `ip`, in every job (§5 `shutdown(null, ip)`). Returns how
/// many instances.
///
/// # Errors
/// A registry error.
pub async fn shutdown_server(registry: &Registry, ip: &str) -> Result<usize> {
    let mut count = 0;
    for job in children(registry, "/").await? {
        count += shutdown(registry, &job, Some(ip)).await?;
    }
    Ok(count)
}

/// Removes one job's server (§5 `remove(job, ip)`): its instances there shut down, then
/// `servers/{ip}` goes.
///
/// # Errors
/// [`Error::NotFound`] or a registry error.
pub async fn remove_job_server(registry: &Registry, job: &str, ip: &str) -> Result<()> {
    let nodes = require_job(registry, job).await?;
    shutdown(registry, job, Some(ip)).await?;
    remove(registry, &nodes.server(ip)).await
}

/// A job's config (§5 `getJobConfiguration`).
///
/// # Errors
/// [`Error::NotFound`] without a config node; [`Error::InvalidConfig`] for one that is
/// not a config.
pub async fn job_config(registry: &Registry, job: &str) -> Result<JobConfig> {
    let nodes = JobNodes::new(job);
    let text = value(registry, &nodes.config())
        .await?
        .ok_or_else(|| Error::NotFound(format!("job {job:?} has no config")))?;
    JobConfig::from_yaml(&text).map_err(|e| Error::InvalidConfig {
        job: job.to_owned(),
        problems: vec![e.to_string()],
    })
}

fn invalid(job: &str, problems: Vec<String>) -> Error {
    Error::InvalidConfig {
        job: job.to_owned(),
        problems,
    }
}

fn problems_of(config: &JobConfig) -> Vec<String> {
    config
        .validate()
        .into_iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect()
}

/// Replaces a job's config (§5 `updateJobConfiguration`): validated, and written only
/// over the config it was read as (a concurrent edit is refused, not lost). What the new
/// config does not model is kept from the current one: unknown keys and the tagged
/// `jobExtraConfigurations` (tracing, with its data-source password), and the thread-pool
/// key spelling the registry's Java version reads.
///
/// # Errors
/// [`Error::InvalidConfig`] (every problem, field by field), [`Error::NotFound`],
/// [`Error::Conflict`] when the config changed meanwhile, or a registry error.
pub async fn update_config(
    registry: &Registry,
    job: &str,
    mut new: JobConfig,
) -> Result<JobConfig> {
    let nodes = require_job(registry, job).await?;
    if new.job_name != job {
        return Err(invalid(
            job,
            vec![format!(
                "jobName: {:?} cannot be renamed to {:?}",
                job, new.job_name
            )],
        ));
    }
    let problems = problems_of(&new);
    if !problems.is_empty() {
        return Err(invalid(job, problems));
    }
    let (data, stat) = match registry.get(&nodes.config()).await {
        Ok(x) => x,
        Err(RegistryError::NoNode(_)) => {
            return Err(Error::NotFound(format!("job {job:?} has no config")));
        }
        Err(e) => return Err(e.into()),
    };
    if let Ok(current) = JobConfig::from_yaml(&String::from_utf8_lossy(&data)) {
        for (k, v) in current.preserved {
            new.preserved.entry(k).or_insert(v);
        }
        new.thread_pool_key = current.thread_pool_key;
    }
    match registry
        .set(
            &nodes.config(),
            new.to_yaml().as_bytes(),
            Some(stat.version),
        )
        .await
    {
        Ok(_) => Ok(new),
        Err(RegistryError::BadVersion(_)) => Err(Error::Conflict(format!(
            "the config of {job:?} changed meanwhile; reload it and apply the edit again"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Creates a job from its config alone (a script or HTTP job, `type_name` `SCRIPT` or
/// `HTTP`): `/{job}` holds the type, `/{job}/config` the YAML. Agents and `capstan
/// serve` pick it up and run it.
///
/// # Errors
/// [`Error::InvalidConfig`] (config or props), [`Error::Conflict`] if the job exists, or a
/// registry error.
pub async fn create_job(registry: &Registry, config: &JobConfig, type_name: &str) -> Result<()> {
    let job = config.job_name.as_str();
    let mut problems = problems_of(config);
    if !matches!(
        type_name,
        crate::kinds::SCRIPT_TYPE | crate::kinds::HTTP_TYPE
    ) {
        problems.push(format!("type: {type_name:?}; use SCRIPT or HTTP"));
    }
    problems.extend(
        crate::kinds::validate_props(type_name, config)
            .into_iter()
            .map(|(prop, why)| format!("props.{prop}: {why}")),
    );
    if !problems.is_empty() {
        return Err(invalid(job, problems));
    }
    let nodes = JobNodes::new(job);
    let ops = vec![
        Op::Create {
            path: nodes.root().to_owned(),
            data: type_name.as_bytes().to_vec(),
            mode: CreateMode::Persistent,
        },
        Op::Create {
            path: nodes.config(),
            data: config.to_yaml().into_bytes(),
            mode: CreateMode::Persistent,
        },
    ];
    match registry.multi(ops).await {
        Ok(_) => Ok(()),
        Err(RegistryError::MultiFailed { source, .. })
            if matches!(*source, RegistryError::NodeExists(_)) =>
        {
            Err(Error::Conflict(format!(
                "a job named {job:?} exists already"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use capstan_registry::{EmbeddedStore, Registry};

    use super::*;

    const JAVA: &str = "jobInstanceId: 10.0.0.1@-@100\nserverIp: 10.0.0.1\n";
    const OURS: &str = "jobInstanceId: 10.0.0.2@-@200\nlabels: capstan\nserverIp: 10.0.0.2\n";

    async fn seeded() -> Registry {
        let store = EmbeddedStore::in_memory();
        let r = Registry::embedded(&store, "ns").await.expect("registry");
        for (p, v) in [
            ("/a/config", "jobName: a\n"),
            ("/a/servers/10.0.0.1", "ENABLED"),
            ("/a/servers/10.0.0.2", "ENABLED"),
            ("/a/instances/10.0.0.1@-@100", JAVA),
            ("/a/instances/10.0.0.2@-@200", OURS),
            ("/a/sharding/0/instance", "10.0.0.1@-@100"),
            ("/b/config", "jobName: b\n"),
            ("/b/servers/10.0.0.2", "ENABLED"),
            ("/b/servers/10.9.9.9", "ENABLED"),
            ("/b/instances/10.0.0.2@-@200", OURS),
        ] {
            persist(&r, p, v.as_bytes()).await.expect("seed");
        }
        r
    }

    async fn value(r: &Registry, p: &str) -> String {
        String::from_utf8(r.get(p).await.expect("get").0).expect("utf8")
    }

    #[tokio::test]
    async fn operations_write_what_elasticjob_ui_writes() {
        let r = seeded().await;
        assert_eq!(
            trigger(&r, "a", Some("date=2026-11-22"))
                .await
                .expect("trigger"),
            2
        );
        assert_eq!(
            value(&r, "/a/trigger/10.0.0.2@-@200").await,
            "date=2026-11-22"
        );
        assert_eq!(trigger(&r, "b", None).await.expect("trigger"), 1);
        assert_eq!(value(&r, "/b/trigger/10.0.0.2@-@200").await, "");

        set_job_enabled(&r, "a", false).await.expect("disable");
        assert_eq!(value(&r, "/a/servers/10.0.0.1").await, "DISABLED");
        assert_eq!(value(&r, "/a/servers/10.0.0.2").await, "DISABLED");
        assert_eq!(value(&r, "/b/servers/10.0.0.2").await, "ENABLED");
        set_job_enabled(&r, "a", true).await.expect("enable");

        assert_eq!(
            set_server_enabled(&r, "10.0.0.2", false)
                .await
                .expect("disable server"),
            2
        );
        assert_eq!(value(&r, "/b/servers/10.0.0.2").await, "DISABLED");
        assert!(matches!(
            set_server_enabled(&r, "1.2.3.4", false).await,
            Err(Error::NotFound(_))
        ));

        set_item_enabled(&r, "a", 0, false)
            .await
            .expect("disable item");
        assert!(
            r.exists("/a/sharding/0/disabled")
                .await
                .expect("exists")
                .is_some()
        );
        set_item_enabled(&r, "a", 0, true)
            .await
            .expect("enable item");
        assert!(
            r.exists("/a/sharding/0/disabled")
                .await
                .expect("exists")
                .is_none()
        );
        assert!(matches!(
            set_item_enabled(&r, "a", 7, false).await,
            Err(Error::NotFound(_))
        ));

        assert_eq!(
            shutdown(&r, "a", Some("10.0.0.1")).await.expect("shutdown"),
            1
        );
        assert_eq!(
            r.children("/a/instances").await.expect("instances"),
            ["10.0.0.2@-@200"]
        );
        // The stale server of job b goes; jobs that never had it are untouched.
        assert_eq!(remove_server(&r, "10.9.9.9").await.expect("remove"), 1);
        assert!(
            r.exists("/b/servers/10.9.9.9")
                .await
                .expect("exists")
                .is_none()
        );

        remove_job(&r, "b").await.expect("remove job");
        assert!(r.exists("/b").await.expect("exists").is_none());
        assert!(matches!(
            trigger(&r, "b", None).await,
            Err(Error::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn pause_is_refused_while_java_instances_hold_the_job() {
        let r = seeded().await;
        let err = pause(&r, "a").await.expect_err("java instance");
        assert!(
            matches!(err, Error::PauseNotSupported { ref instances, .. } if instances == "10.0.0.1@-@100"),
            "{err}"
        );
        assert!(r.exists("/a/paused").await.expect("exists").is_none());
        pause(&r, "b").await.expect("only capstan instances");
        assert!(r.exists("/b/paused").await.expect("exists").is_some());
        resume(&r, "b").await.expect("resume");
        assert!(r.exists("/b/paused").await.expect("exists").is_none());
    }

    #[tokio::test]
    async fn config_updates_keep_what_they_do_not_model_and_refuse_races() {
        let r = seeded().await;
        let tagged = "jobName: a\nshardingTotalCount: 2\ncron: 0 * * * * ?\njobExecutorServiceHandlerType: CPU\n\
                      jobExtraConfigurations:\n- !!org.apache.shardingsphere.elasticjob.tracing.yaml.YamlTracingConfiguration\n  type: RDB\n";
        r.set("/a/config", tagged.as_bytes(), None)
            .await
            .expect("seed");
        let mut c = job_config(&r, "a").await.expect("config");
        c.cron = Some("0/5 * * * * ?".into());
        c.thread_pool_type = Some("SINGLE_THREAD".into());
        let edited = JobConfig {
            preserved: Default::default(),
            thread_pool_key: Default::default(),
            ..c.clone()
        };
        update_config(&r, "a", edited).await.expect("update");
        let written = crate::protocol::storage::value(&r, "/a/config")
            .await
            .expect("get")
            .expect("config");
        assert!(written.contains("cron: 0/5 * * * * ?"), "{written}");
        assert!(
            written.contains("jobExecutorServiceHandlerType: SINGLE_THREAD"),
            "{written}"
        );
        assert!(
            written.contains(
                "!!org.apache.shardingsphere.elasticjob.tracing.yaml.YamlTracingConfiguration"
            ),
            "{written}"
        );

        let mut bad = c.clone();
        bad.cron = Some("0 0 25 * * ?".into());
        bad.sharding_total_count = 0;
        let Err(Error::InvalidConfig { problems, .. }) = update_config(&r, "a", bad).await else {
            panic!("invalid config accepted");
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
        let mut renamed = c.clone();
        renamed.job_name = "b2".into();
        assert!(update_config(&r, "a", renamed).await.is_err());

        let mut script = c.clone();
        script.job_name = "nightly".into();
        assert!(matches!(
            create_job(&r, &script, "SCRIPT").await,
            Err(Error::InvalidConfig { .. })
        ));
        script
            .props
            .insert("script.command.line".into(), "/usr/bin/true".into());
        create_job(&r, &script, "SCRIPT").await.expect("create");
        assert_eq!(
            crate::protocol::storage::value(&r, "/nightly")
                .await
                .expect("root")
                .as_deref(),
            Some("SCRIPT")
        );
        assert!(matches!(
            create_job(&r, &script, "SCRIPT").await,
            Err(Error::Conflict(_))
        ));

        set_job_server_enabled(&r, "a", "10.0.0.1", false)
            .await
            .expect("disable");
        assert_eq!(
            crate::protocol::storage::value(&r, "/a/servers/10.0.0.1")
                .await
                .expect("v")
                .as_deref(),
            Some("DISABLED")
        );
        assert_eq!(
            crate::protocol::storage::value(&r, "/a/servers/10.0.0.2")
                .await
                .expect("v")
                .as_deref(),
            Some("ENABLED")
        );
        assert!(matches!(
            set_job_server_enabled(&r, "a", "1.1.1.1", false).await,
            Err(Error::NotFound(_))
        ));
        assert_eq!(shutdown_server(&r, "10.0.0.2").await.expect("shutdown"), 2);
        remove_job_server(&r, "a", "10.0.0.1")
            .await
            .expect("remove");
        assert!(
            crate::protocol::storage::value(&r, "/a/servers/10.0.0.1")
                .await
                .expect("v")
                .is_none()
        );
    }
}
