//! The admin API's operations (spec §5), plus Capstan's pause, resume and trigger with a
//! parameter. Each is what ElasticJob's lifecycle module writes, so Java instances react
//! to them exactly as to ElasticJob-UI.

use capstan_registry::{Error as RegistryError, Registry};

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
}
