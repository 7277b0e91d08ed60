//! Every job of a centre with its status and parsed config, kept up to date incrementally.
//!
//! A jobs page filters and counts every job of the centre (search, tags, status), so it
//! needs every job's status and config. Computing them for 10,000 jobs per request costs
//! ~90 ms on two cores, over the page budget. Instead, a task follows the tree cache's
//! change events and marks the jobs they touch dirty; a request recomputes only those.
//!
//! Why this never serves a stale row: the cache applies a change to its tree *before* it
//! broadcasts the event. A refresh first takes the dirty set, then reads the tree. So a
//! change is either already in the tree the refresh reads, or its event arrives after the
//! set was taken and marks the job dirty again for the next refresh. Refreshes are
//! serialised (one lock, no await inside), so a request never returns while another one
//! holds half-applied changes. A lagging event receiver marks everything dirty.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use capstan_registry::cache::{CacheEvent, TreeCache, TreeView};
use capstan_scheduler::admin::{self, JobHealth, JobServers, ServerSummary};
use capstan_scheduler::config::JobConfig;
use capstan_scheduler::cron::{Schedule, Zone};
use tokio::sync::broadcast::error::RecvError;

use crate::model::{HourFires, tags_of};

/// What the console needs of one config.
pub struct ConfigInfo {
    /// The config, if it parsed.
    pub config: Option<JobConfig>,
    /// What is wrong with the node, if anything.
    pub problem: Option<String>,
    /// The schedule, or why there is none (no cron, or a bad one).
    pub schedule: Result<Schedule, String>,
    /// Tags from `label`.
    pub tags: Vec<String>,
    /// Lower-cased name and description, for search.
    pub haystack: String,
}

/// Schedules already parsed in one refresh, by cron expression and time zone text: jobs
/// share a few schedules, and parsing one cost ~35 µs (a third of a 10,000-job centre's
/// first refresh).
type Schedules = HashMap<(String, Option<String>), Result<Schedule, String>>;

/// A job's name and config node's value, to parse (`None`: nothing to parse, the
/// config is unchanged).
type ToParse<'a> = Option<(&'a str, Option<&'a [u8]>)>;

/// Configs at least this many are parsed on every core.
const PARSE_IN_PARALLEL: usize = 512;

impl ConfigInfo {
    /// Parses each of `todo`, in order. A centre's first refresh parses every job's config
    /// (YAML at ~38 µs each), so many are split across the cores.
    fn parse_all(todo: &[ToParse<'_>]) -> Vec<Option<ConfigInfo>> {
        let parse_some = |some: &[ToParse<'_>]| {
            let mut schedules = Schedules::new();
            some.iter()
                .map(|t| t.map(|(job, data)| ConfigInfo::parse(job, data, &mut schedules)))
                .collect::<Vec<_>>()
        };
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        if todo.iter().flatten().count() < PARSE_IN_PARALLEL || cores == 1 {
            return parse_some(todo);
        }
        let part = todo.len().div_ceil(cores);
        std::thread::scope(|scope| {
            let threads: Vec<_> = todo
                .chunks(part)
                .map(|some| scope.spawn(move || parse_some(some)))
                .collect();
            // A part whose thread panicked (a bug) is parsed again here, where the panic
            // then surfaces as any other would.
            threads
                .into_iter()
                .zip(todo.chunks(part))
                .flat_map(|(thread, some)| thread.join().unwrap_or_else(|_| parse_some(some)))
                .collect()
        })
    }

    fn parse(job: &str, data: Option<&[u8]>, schedules: &mut Schedules) -> ConfigInfo {
        let (config, problem) = match data {
            None => (
                None,
                Some("no config node: not an ElasticJob job, or one being removed".to_owned()),
            ),
            Some(bytes) => match JobConfig::from_yaml(&String::from_utf8_lossy(bytes)) {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(format!("malformed config: {e}"))),
            },
        };
        let schedule = match &config {
            None => Err("no readable config".to_owned()),
            Some(c) => match c.cron.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
                None => Err("no cron: the job fires only when triggered".to_owned()),
                Some(expr) => schedules
                    .entry((expr.to_owned(), c.time_zone.clone()))
                    .or_insert_with(|| {
                        Zone::parse(c.time_zone.as_deref())
                            .and_then(|z| Schedule::parse(expr, z))
                            .map_err(|e| e.to_string())
                    })
                    .clone(),
            },
        };
        let description = config
            .as_ref()
            .and_then(|c| c.description.clone())
            .unwrap_or_default();
        ConfigInfo {
            tags: tags_of(config.as_ref().and_then(|c| c.label.as_deref())),
            haystack: format!("{job}\n{description}").to_lowercase(),
            config,
            problem,
            schedule,
        }
    }
}

/// The config node's identity: an edit bumps `mzxid`, a delete and re-create `czxid`.
type Stamp = Option<(i64, i64)>;

/// One job, as of the last refresh.
pub struct JobEntry {
    /// Name.
    pub name: String,
    /// Status, reason, instances.
    pub health: JobHealth,
    /// `/{job}`'s value.
    pub job_type: Option<String>,
    /// The parsed config.
    pub info: Arc<ConfigInfo>,
    /// What the job says of servers, for the centre's server summaries.
    servers: JobServers,
    stamp: Stamp,
}

#[derive(Default)]
struct Marks {
    dirty: HashSet<String>,
    all: bool,
}

struct State {
    by_name: HashMap<String, Arc<JobEntry>>,
    sorted: Arc<Vec<Arc<JobEntry>>>,
    /// Bumped whenever a config (re)parses: what the upcoming-fires memo keys on.
    configs: u64,
    upcoming: Option<(i64, u64, Arc<Vec<HourFires>>)>,
    /// Bumped whenever what a job says of servers changes, or a job goes: what the server
    /// summaries' memo keys on. A fire's `running` marker refreshes its job's entry, but
    /// leaves this alone.
    servers: u64,
    server_summaries: Option<(u64, Arc<Vec<ServerSummary>>)>,
}

/// The index of one centre.
pub struct JobIndex {
    marks: Mutex<Marks>,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn text(view: &TreeView<'_>, path: &str) -> Option<String> {
    view.get(path)
        .map(|n| String::from_utf8_lossy(&n.data).into_owned())
}

/// The job a cache path belongs to; `None` for the root.
fn job_of(path: &str) -> Option<&str> {
    path.strip_prefix('/')?
        .split('/')
        .next()
        .filter(|j| !j.is_empty())
}

impl JobIndex {
    /// An index of `cache`, following its events until the cache or the index goes.
    pub fn start(cache: &TreeCache) -> Arc<JobIndex> {
        let index = Arc::new(JobIndex {
            marks: Mutex::new(Marks {
                dirty: HashSet::new(),
                all: true,
            }),
            state: Mutex::new(State {
                by_name: HashMap::new(),
                sorted: Arc::default(),
                configs: 0,
                upcoming: None,
                servers: 0,
                server_summaries: None,
            }),
        });
        // Subscribed before the first refresh can run, so no event is missed.
        let mut events = cache.subscribe();
        let weak: Weak<JobIndex> = Arc::downgrade(&index);
        tokio::spawn(async move {
            loop {
                let event = events.recv().await;
                let Some(index) = weak.upgrade() else { return };
                let mut marks = lock(&index.marks);
                match event {
                    Ok(CacheEvent::Upserted(p) | CacheEvent::Removed(p)) => match job_of(&p) {
                        Some(job) => {
                            marks.dirty.insert(job.to_owned());
                        }
                        None => marks.all = true,
                    },
                    Ok(CacheEvent::Reloaded) | Err(RecvError::Lagged(_)) => marks.all = true,
                    Err(RecvError::Closed) => return,
                }
            }
        });
        index
    }

    /// Every job, sorted by name, as the cache shows it now.
    pub fn jobs(&self, cache: &TreeCache) -> Arc<Vec<Arc<JobEntry>>> {
        let mut state = lock(&self.state);
        let (dirty, all) = {
            let mut marks = lock(&self.marks);
            (
                std::mem::take(&mut marks.dirty),
                std::mem::take(&mut marks.all),
            )
        };
        if !all && dirty.is_empty() {
            return state.sorted.clone();
        }
        // Read what changed under the cache's read lock; parse YAML after releasing it.
        let known = |job: &str| state.by_name.get(job).map(|e| e.stamp);
        let read = cache.read(|v| {
            let names: Vec<String> = if all {
                v.children("/").into_iter().map(str::to_owned).collect()
            } else {
                dirty.iter().cloned().collect()
            };
            let mut present = Vec::new();
            let mut gone = Vec::new();
            for job in names {
                if v.get(&format!("/{job}")).is_none() {
                    gone.push(job);
                    continue;
                }
                let node = v.get(&format!("/{job}/config"));
                let stamp = node.map(|n| (n.stat.czxid, n.stat.mzxid));
                let data = (known(&job) != Some(stamp)).then(|| node.map(|n| n.data.clone()));
                present.push((
                    (admin::job_health(v, &job), admin::job_servers(v, &job)),
                    text(v, &format!("/{job}"))
                        .map(|t| t.trim().to_owned())
                        .filter(|t| !t.is_empty()),
                    stamp,
                    data,
                    job,
                ));
            }
            (present, gone)
        });
        let (present, gone) = read;
        let before = state.by_name.len();
        if all {
            let live: HashSet<&String> = present.iter().map(|p| &p.4).collect();
            state.by_name.retain(|k, _| live.contains(k));
        }
        for job in gone {
            state.by_name.remove(&job);
        }
        let mut servers_changed = state.by_name.len() != before;
        // Per job, the config to parse (`None`: unchanged since the last refresh).
        let parsed = {
            let todo: Vec<ToParse<'_>> = present
                .iter()
                .map(|p| Some((p.4.as_str(), p.3.as_ref()?.as_deref())))
                .collect();
            ConfigInfo::parse_all(&todo)
        };
        let reparsed = parsed.iter().any(Option::is_some);
        for (((health, servers), job_type, stamp, _, job), parsed) in
            present.into_iter().zip(parsed)
        {
            servers_changed |= state.by_name.get(&job).map(|e| &e.servers) != Some(&servers);
            let info = match (parsed, state.by_name.get(&job)) {
                (Some(info), _) => Arc::new(info),
                (None, Some(e)) => e.info.clone(),
                (None, None) => Arc::new(ConfigInfo::parse(&job, None, &mut Schedules::new())),
            };
            state.by_name.insert(
                job.clone(),
                Arc::new(JobEntry {
                    name: job,
                    health,
                    job_type,
                    info,
                    servers,
                    stamp,
                }),
            );
        }
        if reparsed {
            state.configs += 1;
        }
        if servers_changed {
            state.servers += 1;
        }
        let mut sorted: Vec<Arc<JobEntry>> = state.by_name.values().cloned().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        state.sorted = Arc::new(sorted);
        state.sorted.clone()
    }

    /// Every server of the centre, as `admin::servers` gives them from the cache now;
    /// summed again only when what a job says of servers changed.
    ///
    /// Why: summing them from the tree took ~100 ms for a 10,000-job centre (a few map seeks
    /// per job in a tree of 150,000 nodes), on every dashboard view.
    pub fn servers(&self, cache: &TreeCache) -> Arc<Vec<ServerSummary>> {
        self.jobs(cache);
        // The jobs and their version are taken together (a refresh changes both under
        // this lock), and summed outside it.
        let (version, jobs) = {
            let state = lock(&self.state);
            if let Some((version, summaries)) = &state.server_summaries
                && *version == state.servers
            {
                return summaries.clone();
            }
            (state.servers, state.sorted.clone())
        };
        let summaries = Arc::new(admin::summarize_servers(
            jobs.iter().map(|e| (e.name.as_str(), &e.servers)),
        ));
        let mut state = lock(&self.state);
        if state.servers == version {
            state.server_summaries = Some((version, summaries.clone()));
        }
        summaries
    }

    /// The upcoming-fires histogram, recomputed when a config changed or `max_age_ms`
    /// passed (each distinct schedule is counted once: see `read::upcoming_hours`).
    pub fn upcoming(
        &self,
        now_ms: i64,
        max_age_ms: i64,
        compute: impl FnOnce() -> Vec<HourFires>,
    ) -> Arc<Vec<HourFires>> {
        let configs = lock(&self.state).configs;
        if let Some((at, version, fires)) = &lock(&self.state).upcoming
            && *version == configs
            && now_ms - at < max_age_ms
        {
            return fires.clone();
        }
        let fires = Arc::new(compute());
        lock(&self.state).upcoming = Some((now_ms, configs, fires.clone()));
        fires
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use capstan_registry::cache::{TreeCache, TreeView};
    use capstan_registry::{CreateMode, EmbeddedStore, Registry};
    use capstan_scheduler::admin;

    use super::{JobIndex, job_of};

    /// Waits until the cache shows what `seen` looks for (its writes land asynchronously).
    async fn settle(cache: &TreeCache, what: &str, seen: impl Fn(&TreeView<'_>) -> bool) {
        for _ in 0..500 {
            if cache.read(&seen) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the cache never showed {what}");
    }

    /// Many configs, parsed across the cores with shared schedules, come out in order and
    /// as each would alone: a zone or an expression told apart, a bad one reported.
    #[test]
    fn configs_parsed_together_read_as_each_alone() {
        let texts: Vec<(String, String)> = (0..(super::PARSE_IN_PARALLEL * 3))
            .map(|i| {
                let zone = ["", "timeZone: GMT+08:00\n", "timeZone: Asia/Tokyo\n"][i % 3];
                let cron = match i % 7 {
                    0 => "cron: 0 0/5 * * * ?\n".to_owned(),
                    1 => "cron: not a cron\n".to_owned(),
                    2 => "cron: [unclosed\n".to_owned(),
                    n => format!("cron: 0 {n} * * * ?\n"),
                };
                (
                    format!("job{i}"),
                    format!("{cron}{zone}label: team{}\n", i % 4),
                )
            })
            .collect();
        let todo: Vec<super::ToParse<'_>> = texts
            .iter()
            .enumerate()
            .map(|(i, (job, text))| (i % 5 != 0).then_some((job.as_str(), Some(text.as_bytes()))))
            .collect();
        let seen = |info: &super::ConfigInfo| {
            (
                info.problem.clone(),
                info.schedule
                    .as_ref()
                    .map(|s| format!("{s:?}"))
                    .map_err(Clone::clone),
                info.tags.clone(),
                info.haystack.clone(),
            )
        };
        let together = super::ConfigInfo::parse_all(&todo);
        assert_eq!(together.len(), todo.len());
        for (one, info) in todo.iter().zip(&together) {
            let alone = one.map(|(job, data)| {
                super::ConfigInfo::parse(job, data, &mut super::Schedules::new())
            });
            assert_eq!(info.as_ref().map(seen), alone.as_ref().map(seen));
        }
        assert!(together.iter().flatten().any(|i| i.problem.is_some()));
        assert!(
            together
                .iter()
                .flatten()
                .any(|i| i.schedule.is_err() && i.problem.is_none())
        );
    }

    /// The memoised summaries are what `admin::servers` reads from the tree, whatever
    /// changed: kept through a fire's marker, summed again when a server is disabled, an
    /// instance goes or a job is removed.
    #[tokio::test]
    async fn server_summaries_follow_the_tree_and_survive_run_markers() {
        let store = EmbeddedStore::in_memory();
        let r = Registry::embedded(&store, "ns").await.expect("registry");
        for job in ["a", "b"] {
            r.put(
                &format!("/{job}/config"),
                b"cron: 0 * * * * ?\nshardingTotalCount: 1\n",
            )
            .await
            .expect("config");
            for (ip, pid) in [("10.0.0.1", 1), ("10.0.0.2", 2)] {
                r.put(&format!("/{job}/servers/{ip}"), b"ENABLED")
                    .await
                    .expect("server");
                r.put(
                    &format!("/{job}/instances/{ip}@-@{pid}"),
                    format!("jobInstanceId: {ip}@-@{pid}\nserverIp: {ip}\n").as_bytes(),
                )
                .await
                .expect("instance");
            }
        }
        let cache = TreeCache::start(r.clone(), "/").await.expect("cache");
        let index = JobIndex::start(&cache);
        let same_as_tree = |index: &JobIndex| {
            let memo = index.servers(&cache);
            assert_eq!(*memo, cache.read(admin::servers));
            memo
        };

        let first = same_as_tree(&index);
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|s| s.jobs.len() == 2 && !s.stale));

        r.put("/a/sharding/0", b"").await.expect("item");
        r.create("/a/sharding/0/running", b"", CreateMode::Ephemeral)
            .await
            .expect("marker");
        settle(&cache, "the marker", |v| {
            v.get("/a/sharding/0/running").is_some()
        })
        .await;
        assert!(
            Arc::ptr_eq(&first, &same_as_tree(&index)),
            "a run marker re-summed the servers"
        );

        r.put("/a/servers/10.0.0.1", b"DISABLED")
            .await
            .expect("disable");
        settle(&cache, "the disabled server", |v| {
            v.get("/a/servers/10.0.0.1")
                .is_some_and(|n| &*n.data == b"DISABLED")
        })
        .await;
        assert_eq!(same_as_tree(&index)[0].disabled_jobs, 1);

        for job in ["a", "b"] {
            r.delete(&format!("/{job}/instances/10.0.0.2@-@2"), None)
                .await
                .expect("instance gone");
        }
        settle(&cache, "the instances gone", |v| {
            v.get("/b/instances/10.0.0.2@-@2").is_none()
        })
        .await;
        assert!(same_as_tree(&index)[1].stale);

        r.delete_recursive("/b").await.expect("job gone");
        settle(&cache, "the job gone", |v| v.get("/b").is_none()).await;
        assert!(same_as_tree(&index).iter().all(|s| s.jobs.len() == 1));
    }

    #[test]
    fn paths_name_their_job() {
        assert_eq!(job_of("/orderJob/sharding/0/running"), Some("orderJob"));
        assert_eq!(job_of("/orderJob"), Some("orderJob"));
        assert_eq!(job_of("/"), None);
    }
}
