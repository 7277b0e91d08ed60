//! `capstan agent`: the scheduler runtime without the console, one per machine. It
//! registers as an instance of every script and HTTP job it finds in the registry or in
//! job files, runs their items, records runs in its own history file, and on SIGTERM stops
//! gracefully (running items finish, its instance nodes go).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use capstan_registry::{ConnectString, Durability, EmbeddedStore, Registry, ZkSettings};
use capstan_scheduler::history::{History, Retention, now_ms};
use capstan_scheduler::{JobDefinition, Scheduler, parse_job_file};

use crate::config::{AgentArgs, SessionArgs};

/// The namespace of an embedded registry file: the one the console's `local` centre uses.
pub const EMBEDDED_NAMESPACE: &str = "capstan";

/// Where the agent's registry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryTarget {
    /// `zookeeper://HOST:PORT[,HOST:PORT]/NAMESPACE`.
    ZooKeeper {
        /// The servers.
        connect: ConnectString,
        /// The namespace.
        namespace: String,
    },
    /// `embedded:PATH`.
    Embedded(PathBuf),
}

impl FromStr for RegistryTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<RegistryTarget, String> {
        if let Some(path) = s.strip_prefix("embedded:") {
            if path.is_empty() {
                return Err("embedded: needs a file, e.g. embedded:data/registry.db".into());
            }
            return Ok(RegistryTarget::Embedded(PathBuf::from(path)));
        }
        let Some(rest) = s.strip_prefix("zookeeper://") else {
            return Err(format!(
                "{s:?}: use zookeeper://HOST:PORT[,HOST:PORT]/NAMESPACE or embedded:PATH"
            ));
        };
        let Some((hosts, namespace)) = rest.split_once('/') else {
            return Err(format!(
                "{s:?} names no namespace: add /NAMESPACE, e.g. zookeeper://10.0.0.5:2181/elasticjob"
            ));
        };
        let namespace = namespace.trim_matches('/');
        if namespace.is_empty() || namespace.contains('/') {
            return Err(format!(
                "{namespace:?} is not a namespace: one path segment, e.g. elasticjob"
            ));
        }
        let connect = hosts.parse::<ConnectString>().map_err(|e| e.to_string())?;
        Ok(RegistryTarget::ZooKeeper {
            connect,
            namespace: namespace.to_owned(),
        })
    }
}

/// Opens the registry `target` (and, for an embedded one, its store, to be kept open as
/// long as the registry is used).
///
/// # Errors
/// An unreachable ZooKeeper, an unreadable digest file (or one given for an embedded
/// registry), or an embedded file that cannot be opened.
pub async fn open_registry(
    target: &RegistryTarget,
    session: &SessionArgs,
) -> anyhow::Result<(Registry, Option<EmbeddedStore>)> {
    let digest_file = session.digest_file.as_deref();
    let session_timeout = Duration::from_millis(session.session_timeout_ms.max(1000));
    match target {
        RegistryTarget::ZooKeeper { connect, namespace } => {
            let digest = digest_file.map(read_digest).transpose()?;
            let registry = Registry::zookeeper(ZkSettings {
                connect: connect.clone(),
                namespace: namespace.clone(),
                digest,
                session_timeout,
            })
            .await
            .with_context(|| {
                format!("connecting to ZooKeeper at {connect}, namespace {namespace}")
            })?;
            Ok((registry, None))
        }
        RegistryTarget::Embedded(path) => {
            if digest_file.is_some() {
                anyhow::bail!("--digest-file applies to ZooKeeper registries only");
            }
            let store = EmbeddedStore::open(path, Durability::ProcessCrash)
                .await
                .with_context(|| format!("opening the embedded registry {}", path.display()))?;
            let registry = Registry::embedded(&store, EMBEDDED_NAMESPACE).await?;
            Ok((registry, Some(store)))
        }
    }
}

/// Reads a digest (`user:password`) from a file, trimmed.
fn read_digest(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the digest file {}", path.display()))?;
    let digest = text.trim().to_owned();
    if !digest.contains(':') {
        anyhow::bail!("the digest file {} must hold user:password", path.display());
    }
    Ok(digest)
}

/// Every `*.yaml` / `*.yml` job file under `dir`, parsed. A bad file stops the agent with
/// its name and problems: running a subset of what the operator wrote would be worse.
fn load_job_files(dir: &Path) -> anyhow::Result<Vec<JobDefinition>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the jobs directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut jobs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (config, kind) =
            parse_job_file(&stem, &text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        jobs.push(JobDefinition::new(config, kind));
    }
    Ok(jobs)
}

/// The largest `--fire-ahead-ms`: a fire planned further ahead is ever likelier to be
/// decided afresh at its time (a change meanwhile), and jobs firing every second would
/// find their previous fire still reserved.
const MAX_FIRE_AHEAD_MS: u64 = 1000;

/// `--fire-ahead-ms`, checked.
fn fire_ahead(ms: u64) -> anyhow::Result<Duration> {
    if ms > MAX_FIRE_AHEAD_MS {
        anyhow::bail!(
            "--fire-ahead-ms: {ms} is more than {MAX_FIRE_AHEAD_MS} ms; markers written that early \
             would mostly be let go again"
        );
    }
    Ok(Duration::from_millis(ms))
}

/// `capstan agent`.
///
/// # Errors
/// A bad option or job file, an unreachable registry, or an unusable data directory.
pub async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    crate::init_tracing(&args.log);
    let target: RegistryTarget = args
        .registry
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--registry: {e}"))?;
    let jobs = match &args.jobs {
        Some(dir) => load_job_files(dir)?,
        None => Vec::new(),
    };
    let session_timeout = Duration::from_millis(args.session.session_timeout_ms.max(1000));
    let fire_ahead = fire_ahead(args.fire_ahead_ms)?;
    // Kept alive for the agent's lifetime: the embedded store behind the registry.
    let (registry, _store) = open_registry(&target, &args.session).await?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let history_file = args.data_dir.join("agent-history.db");
    let history = History::open(&history_file, Retention::default()).await?;
    let mut builder = Scheduler::builder(registry.clone())
        .history(history.clone())
        .session_timeout(session_timeout)
        .fire_ahead(fire_ahead);
    if let Some(ip) = &args.session.ip {
        builder = builder.ip(ip.clone());
    }
    let scheduler = builder.start().await?;
    tracing::info!(instance = %scheduler.instance_id(), registry = %args.registry, "agent started");
    for def in jobs {
        let name = def.config.job_name.clone();
        scheduler
            .add_job(def)
            .await
            .with_context(|| format!("starting job {name:?}"))?;
        tracing::info!(job = %name, "running job from the jobs directory");
    }
    let discovery = tokio::spawn({
        let scheduler = scheduler.clone();
        async move { scheduler.run_registry_jobs().await }
    });
    let prune = tokio::spawn(prune_history(history));
    crate::shutdown_signal().await;
    discovery.abort();
    prune.abort();
    scheduler.shutdown().await;
    registry.close().await;
    tracing::info!("agent stopped");
    Ok(())
}

/// Applies the history retention every ten minutes.
pub(crate) async fn prune_history(history: History) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        match history.prune(now_ms()).await {
            Ok(p) if p.runs + p.traces > 0 => {
                tracing::info!(runs = p.runs, traces = p.traces, "run history pruned");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "run history: pruning failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fire_ahead_takes_up_to_a_second_and_says_why_not_more() {
        assert_eq!(super::fire_ahead(0).ok(), Some(Duration::ZERO));
        assert_eq!(
            super::fire_ahead(1000).ok(),
            Some(Duration::from_millis(1000))
        );
        let e = super::fire_ahead(1001).expect_err("too far ahead");
        assert!(
            e.to_string()
                .contains("--fire-ahead-ms: 1001 is more than 1000 ms"),
            "{e}"
        );
    }

    #[test]
    fn registry_targets_parse_or_say_what_is_wrong() {
        assert_eq!(
            "zookeeper://10.0.0.5:2181,10.0.0.6:2181/elasticjob"
                .parse::<RegistryTarget>()
                .expect("valid"),
            RegistryTarget::ZooKeeper {
                connect: "10.0.0.5:2181,10.0.0.6:2181".parse().expect("connect"),
                namespace: "elasticjob".into(),
            }
        );
        assert_eq!(
            "embedded:data/registry.db"
                .parse::<RegistryTarget>()
                .expect("valid"),
            RegistryTarget::Embedded("data/registry.db".into())
        );
        for bad in [
            "10.0.0.5:2181/ns",
            "zookeeper://10.0.0.5:2181",
            "zookeeper://10.0.0.5:2181/",
            "zookeeper://10.0.0.5:2181/a/b",
            "zookeeper://user@evil:2181/ns",
            "embedded:",
        ] {
            assert!(bad.parse::<RegistryTarget>().is_err(), "{bad} accepted");
        }
    }
}
