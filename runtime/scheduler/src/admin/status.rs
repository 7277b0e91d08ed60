use std::collections::{BTreeMap, BTreeSet};

use capstan_registry::cache::TreeView;

use crate::config::JobConfig;

/// A job's status in the job list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Running normally.
    Ok,
    /// No instance is online.
    Crashed,
    /// Every server of the job is disabled (or none is registered).
    Disabled,
    /// Not sharded yet, or an owner of items is offline.
    ShardingFlag,
    /// Paused through Capstan (our extension; Java consoles do not see it).
    Paused,
}

impl JobStatus {
    /// The name consoles show (ElasticJob's, plus `PAUSED`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Ok => "OK",
            JobStatus::Crashed => "CRASHED",
            JobStatus::Disabled => "DISABLED",
            JobStatus::ShardingFlag => "SHARDING_FLAG",
            JobStatus::Paused => "PAUSED",
        }
    }
}

/// One row of the job list.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    /// Job name (the child of the namespace root).
    pub name: String,
    /// Status, computed as ElasticJob's lifecycle API does.
    pub status: JobStatus,
    /// Why, in words an operator can act on.
    pub reason: String,
    /// The config, if it could be read.
    pub config: Option<JobConfig>,
    /// What is wrong with the config node, if anything.
    pub config_problem: Option<String>,
    /// Instances online.
    pub instance_count: usize,
}

/// An item's status on the job detail page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    /// Executing now.
    Running,
    /// Assigned, waiting for its next fire ("Staging" in ElasticJob-UI).
    Pending,
    /// Disabled by an operator.
    Disabled,
    /// Its owner is offline, or it has none.
    ShardingFlag,
}

/// One item of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemStatus {
    /// Item number.
    pub item: u32,
    /// Owning instance id, if any.
    pub instance: Option<String>,
    /// The owner's server IP: from its instance node, else from its id.
    pub server_ip: Option<String>,
    /// State.
    pub state: ItemState,
    /// Taken over by failover right now.
    pub failover: bool,
}

/// One server (IP) across the jobs of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSummary {
    /// The IP.
    pub ip: String,
    /// Instance ids online on it.
    pub instances: BTreeSet<String>,
    /// Jobs that have `servers/{ip}`.
    pub jobs: BTreeSet<String>,
    /// How many of those have it disabled.
    pub disabled_jobs: usize,
    /// No instance is online on this IP (a leftover, e.g. an old Kubernetes pod).
    pub stale: bool,
}

fn text(view: &TreeView<'_>, path: &str) -> Option<String> {
    view.get(path)
        .map(|n| String::from_utf8_lossy(&n.data).into_owned())
}

fn server_ip_of(view: &TreeView<'_>, job: &str, instance: &str) -> String {
    crate::instance::server_ip(
        text(view, &format!("/{job}/instances/{instance}")).as_deref(),
        instance,
    )
}

fn item_list(items: &[u32]) -> String {
    items
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Every job of the namespace, by name, with its status and reason.
pub fn job_summaries(view: &TreeView<'_>) -> Vec<JobSummary> {
    let mut jobs: Vec<JobSummary> = view
        .children("/")
        .into_iter()
        .map(|job| summary(view, job))
        .collect();
    jobs.sort_by(|a, b| a.name.cmp(&b.name));
    jobs
}

fn summary(view: &TreeView<'_>, job: &str) -> JobSummary {
    let (config, config_problem) = read_config(view, job);
    let health = job_health(view, job);
    let reason = match &config_problem {
        Some(p) => format!("{}; {p}", health.reason),
        None => health.reason,
    };
    JobSummary {
        name: job.to_owned(),
        status: health.status,
        reason,
        config,
        config_problem,
        instance_count: health.instance_count,
    }
}

/// A job's config node, read leniently: the config, or what is wrong with the node.
pub fn read_config(view: &TreeView<'_>, job: &str) -> (Option<JobConfig>, Option<String>) {
    match text(view, &format!("/{job}/config")) {
        None => (
            None,
            Some("no config node: not an ElasticJob job, or one being removed".to_owned()),
        ),
        Some(yaml) => match JobConfig::from_yaml(&yaml) {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(format!("malformed config: {e}"))),
        },
    }
}

/// A job's status without its config (which a caller may have parsed and memoised).
#[derive(Debug, Clone, PartialEq)]
pub struct JobHealth {
    /// Status, computed as ElasticJob's lifecycle API does.
    pub status: JobStatus,
    /// Why.
    pub reason: String,
    /// Instances online.
    pub instance_count: usize,
    /// Items whose owner is missing or offline (the console's "unassigned items").
    pub unassigned_items: usize,
}

/// The status of `job` (spec §7.4, plus `PAUSED`), from the registry nodes alone.
pub fn job_health(view: &TreeView<'_>, job: &str) -> JobHealth {
    let instances: BTreeSet<&str> = view
        .children(&format!("/{job}/instances"))
        .into_iter()
        .collect();
    let servers = view.children(&format!("/{job}/servers"));
    let disabled = servers
        .iter()
        .filter(|ip| text(view, &format!("/{job}/servers/{ip}")).as_deref() == Some("DISABLED"))
        .count();
    // Owners of items, as ElasticJob reads them: non-empty `sharding/*/instance` values.
    let mut owners: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut ownerless = 0;
    for item in view.children(&format!("/{job}/sharding")) {
        let Ok(n) = item.parse::<u32>() else { continue };
        match text(view, &format!("/{job}/sharding/{item}/instance")).filter(|o| !o.is_empty()) {
            Some(owner) => owners.entry(owner).or_default().push(n),
            None => ownerless += 1,
        }
    }
    let offline: Vec<(&String, &Vec<u32>)> = owners
        .iter()
        .filter(|(o, _)| !instances.contains(o.as_str()))
        .collect();
    let (status, reason) = if instances.is_empty() {
        (JobStatus::Crashed, "no instance is online".to_owned())
    } else if disabled == servers.len() {
        let reason = if servers.is_empty() {
            "no server is registered".to_owned()
        } else {
            format!("{disabled} of {} servers disabled", servers.len())
        };
        (JobStatus::Disabled, reason)
    } else if view.get(&format!("/{job}/paused")).is_some() {
        (
            JobStatus::Paused,
            "paused: new fires are skipped until resumed".to_owned(),
        )
    } else if owners.is_empty() {
        (
            JobStatus::ShardingFlag,
            "not sharded yet: the leader shards at the next fire".to_owned(),
        )
    } else if !offline.is_empty() {
        let what: Vec<String> = offline
            .iter()
            .map(|(o, items)| format!("owner {o} of items {} is offline", item_list(items)))
            .collect();
        (JobStatus::ShardingFlag, what.join("; "))
    } else {
        (
            JobStatus::Ok,
            format!("{} instance(s) online", instances.len()),
        )
    };
    let unassigned_items = ownerless + offline.iter().map(|(_, items)| items.len()).sum::<usize>();
    JobHealth {
        status,
        reason,
        instance_count: instances.len(),
        unassigned_items,
    }
}

/// The items of one job, by item number (ElasticJob's `ShardingStatisticsAPI`, without its
/// crash on a vanished owner).
pub fn job_items(view: &TreeView<'_>, job: &str) -> Vec<ItemStatus> {
    let mut items: Vec<ItemStatus> = view
        .children(&format!("/{job}/sharding"))
        .into_iter()
        .filter_map(|item| {
            let n: u32 = item.parse().ok()?;
            let base = format!("/{job}/sharding/{item}");
            let owner = text(view, &format!("{base}/instance")).filter(|o| !o.is_empty());
            let owner_online = owner
                .as_deref()
                .is_some_and(|o| view.get(&format!("/{job}/instances/{o}")).is_some());
            let state = if view.get(&format!("{base}/disabled")).is_some() {
                ItemState::Disabled
            } else if view.get(&format!("{base}/running")).is_some() {
                ItemState::Running
            } else if !owner_online {
                ItemState::ShardingFlag
            } else {
                ItemState::Pending
            };
            Some(ItemStatus {
                item: n,
                server_ip: owner.as_deref().map(|o| server_ip_of(view, job, o)),
                instance: owner,
                state,
                failover: view.get(&format!("{base}/failover")).is_some(),
            })
        })
        .collect();
    items.sort_by_key(|i| i.item);
    items
}

/// What one job says of servers: its `servers/{ip}` (and whether each is disabled), and
/// its online instances with their server IPs. The part of [`servers`] that depends on one
/// job only, so that an index of jobs can keep it per job and re-read it only for jobs
/// that changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobServers {
    /// `(ip, disabled)`, per `servers/{ip}` node.
    pub servers: Vec<(String, bool)>,
    /// `(instance id, server ip)`, per `instances/{id}` node.
    pub instances: Vec<(String, String)>,
}

/// What `job` says of servers (see [`JobServers`]).
pub fn job_servers(view: &TreeView<'_>, job: &str) -> JobServers {
    JobServers {
        servers: view
            .children(&format!("/{job}/servers"))
            .into_iter()
            .map(|ip| {
                let disabled = view
                    .get(&format!("/{job}/servers/{ip}"))
                    .is_some_and(|n| n.data.eq_ignore_ascii_case(b"DISABLED"));
                (ip.to_owned(), disabled)
            })
            .collect(),
        instances: view
            .children(&format!("/{job}/instances"))
            .into_iter()
            .map(|id| (id.to_owned(), server_ip_of(view, job, id)))
            .collect(),
    }
}

/// Every server IP across the namespace's jobs, sorted by IP text.
pub fn servers(view: &TreeView<'_>) -> Vec<ServerSummary> {
    let jobs: Vec<(&str, JobServers)> = view
        .children("/")
        .into_iter()
        .map(|job| (job, job_servers(view, job)))
        .collect();
    summarize_servers(jobs.iter().map(|(job, s)| (*job, s)))
}

/// The servers of a namespace from what each of its jobs says of them (see
/// [`job_servers`]), sorted by IP text.
pub fn summarize_servers<'a>(
    jobs: impl IntoIterator<Item = (&'a str, &'a JobServers)>,
) -> Vec<ServerSummary> {
    // An IP is looked up by `&str` and its summary made once, rather than each summary
    // taken out of the map and put back under a new key.
    let mut by_ip: BTreeMap<String, ServerSummary> = BTreeMap::new();
    for (job, said) in jobs {
        for (ip, disabled) in &said.servers {
            if let Some(s) = server_summary(&mut by_ip, ip) {
                s.jobs.insert(job.to_owned());
                s.disabled_jobs += usize::from(*disabled);
            }
        }
        for (instance, ip) in &said.instances {
            if let Some(s) = server_summary(&mut by_ip, ip) {
                s.instances.insert(instance.clone());
                s.stale = false;
            }
        }
    }
    by_ip.into_values().collect()
}

/// `ip`'s summary in `by_ip`, added (stale until an instance is seen) if missing.
fn server_summary<'m>(
    by_ip: &'m mut BTreeMap<String, ServerSummary>,
    ip: &str,
) -> Option<&'m mut ServerSummary> {
    if !by_ip.contains_key(ip) {
        by_ip.insert(
            ip.to_owned(),
            ServerSummary {
                ip: ip.to_owned(),
                instances: BTreeSet::new(),
                jobs: BTreeSet::new(),
                disabled_jobs: 0,
                stale: true,
            },
        );
    }
    by_ip.get_mut(ip)
}

#[cfg(test)]
mod tests {
    use capstan_registry::cache::TreeCache;
    use capstan_registry::{EmbeddedStore, Registry};

    use super::*;

    async fn tree(nodes: &[(&str, &str)]) -> TreeCache {
        let store = EmbeddedStore::in_memory();
        let r = Registry::embedded(&store, "ns").await.expect("registry");
        for (p, data) in nodes {
            r.put(p, data.as_bytes()).await.expect("node");
        }
        TreeCache::start(r, "/").await.expect("cache")
    }

    const CONFIG: &str = "cron: 0/5 * * * * ?\njobName: orderJob\nshardingTotalCount: 3\n";
    const A: &str = "192.168.1.9@-@3001";
    const B: &str = "192.168.1.10@-@2001";

    fn base() -> Vec<(String, String)> {
        vec![
            ("/orderJob/config".into(), CONFIG.into()),
            ("/orderJob/servers/192.168.1.9".into(), "ENABLED".into()),
            ("/orderJob/servers/192.168.1.10".into(), "ENABLED".into()),
            (
                format!("/orderJob/instances/{A}"),
                format!("jobInstanceId: {A}\nserverIp: 192.168.1.9\n"),
            ),
            (
                format!("/orderJob/instances/{B}"),
                format!("jobInstanceId: {B}\nserverIp: 192.168.1.10\n"),
            ),
        ]
    }

    async fn view_of(extra: &[(String, String)], drop_prefix: Option<&str>) -> TreeCache {
        // `drop_prefix` removes base nodes; `extra` is added after, so it can replace them.
        let mut nodes = base();
        if let Some(p) = drop_prefix {
            nodes.retain(|(n, _)| !n.starts_with(p));
        }
        nodes.extend(extra.iter().cloned());
        let refs: Vec<(&str, &str)> = nodes
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        tree(&refs).await
    }

    fn sharded() -> Vec<(String, String)> {
        vec![
            ("/orderJob/sharding/0/instance".into(), A.into()),
            ("/orderJob/sharding/0/running".into(), A.into()),
            ("/orderJob/sharding/1/instance".into(), B.into()),
            ("/orderJob/sharding/1/disabled".into(), String::new()),
            ("/orderJob/sharding/2/instance".into(), A.into()),
            ("/orderJob/sharding/2/failover".into(), B.into()),
        ]
    }

    #[tokio::test]
    async fn the_steady_state_example_of_the_spec() {
        // elasticjob-registry.md §2.2: OK; items 0 RUNNING, 1 DISABLED, 2 PENDING.
        let cache = view_of(&sharded(), None).await;
        cache.read(|v| {
            let jobs = job_summaries(v);
            assert_eq!(jobs[0].status, JobStatus::Ok, "{}", jobs[0].reason);
            let items = job_items(v, "orderJob");
            let states: Vec<ItemState> = items.iter().map(|i| i.state).collect();
            assert_eq!(
                states,
                [ItemState::Running, ItemState::Disabled, ItemState::Pending]
            );
            assert!(items[2].failover);
            assert_eq!(items[1].server_ip.as_deref(), Some("192.168.1.10"));
            let servers = servers(v);
            assert_eq!(servers.len(), 2);
            assert!(
                servers
                    .iter()
                    .all(|s| !s.stale && s.jobs.len() == 1 && s.disabled_jobs == 0)
            );
        });
    }

    #[tokio::test]
    async fn statuses_in_elasticjob_order_with_reasons() {
        // Not sharded yet.
        let cache = view_of(&[], None).await;
        cache.read(|v| assert_eq!(job_summaries(v)[0].status, JobStatus::ShardingFlag));
        // An owner vanished (A's instance node gone): SHARDING_FLAG naming it, and the
        // detail page still works (ElasticJob's throws here).
        let cache = view_of(&sharded(), Some(&format!("/orderJob/instances/{A}"))).await;
        cache.read(|v| {
            let job = &job_summaries(v)[0];
            assert_eq!(job.status, JobStatus::ShardingFlag);
            assert!(
                job.reason
                    .contains(&format!("owner {A} of items 0,2 is offline")),
                "{}",
                job.reason
            );
            let items = job_items(v, "orderJob");
            assert_eq!(items[0].state, ItemState::Running);
            assert_eq!(items[2].server_ip.as_deref(), Some("192.168.1.9"));
            assert!(servers(v).iter().any(|s| s.ip == "192.168.1.9" && s.stale));
        });
        // Every server disabled.
        let disabled = vec![
            (
                "/orderJob/servers/192.168.1.9".to_owned(),
                "DISABLED".to_owned(),
            ),
            (
                "/orderJob/servers/192.168.1.10".to_owned(),
                "DISABLED".to_owned(),
            ),
        ];
        let cache = view_of(&disabled, Some("/orderJob/servers")).await;
        cache.read(|v| {
            let job = &job_summaries(v)[0];
            assert_eq!(
                (job.status, job.reason.as_str()),
                (JobStatus::Disabled, "2 of 2 servers disabled")
            );
            let servers = servers(v);
            assert_eq!(servers.len(), 2);
            assert!(servers.iter().all(|s| s.disabled_jobs == 1 && !s.stale));
        });
        // No instance at all wins over everything.
        let cache = view_of(&sharded(), Some("/orderJob/instances")).await;
        cache.read(|v| assert_eq!(job_summaries(v)[0].status, JobStatus::Crashed));
        // Paused.
        let cache = view_of(&[("/orderJob/paused".to_owned(), String::new())], None).await;
        cache.read(|v| assert_eq!(job_summaries(v)[0].status, JobStatus::Paused));
    }

    #[tokio::test]
    async fn odd_data_gives_reasons_not_errors() {
        let odd = vec![
            ("/orderJob/config".to_owned(), "jobName: [broken".to_owned()),
            ("/strayNode/leftover".to_owned(), "x".to_owned()),
            (
                "/orderJob/sharding/notAnItem/instance".to_owned(),
                A.to_owned(),
            ),
        ];
        let cache = view_of(&odd, Some("/orderJob/config")).await;
        cache.read(|v| {
            let jobs = job_summaries(v);
            assert_eq!(jobs.len(), 2);
            assert!(
                jobs[0]
                    .config_problem
                    .as_deref()
                    .is_some_and(|p| p.starts_with("malformed config"))
            );
            assert!(
                jobs[1]
                    .config_problem
                    .as_deref()
                    .is_some_and(|p| p.starts_with("no config node"))
            );
            assert_eq!(jobs[1].status, JobStatus::Crashed);
            assert!(job_items(v, "orderJob").is_empty());
            assert!(job_items(v, "noSuchJob").is_empty());
        });
    }
}
