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
use capstan_scheduler::admin::{self, JobHealth};
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

impl ConfigInfo {
    fn parse(job: &str, data: Option<&[u8]>) -> ConfigInfo {
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
                Some(expr) => Zone::parse(c.time_zone.as_deref())
                    .and_then(|z| Schedule::parse(expr, z))
                    .map_err(|e| e.to_string()),
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
                    admin::job_health(v, &job),
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
        if all {
            let live: HashSet<&String> = present.iter().map(|p| &p.4).collect();
            state.by_name.retain(|k, _| live.contains(k));
        }
        for job in gone {
            state.by_name.remove(&job);
        }
        let mut reparsed = false;
        for (health, job_type, stamp, data, job) in present {
            let info = match data {
                Some(data) => {
                    reparsed = true;
                    Arc::new(ConfigInfo::parse(&job, data.as_deref()))
                }
                None => match state.by_name.get(&job) {
                    Some(e) => e.info.clone(),
                    None => Arc::new(ConfigInfo::parse(&job, None)),
                },
            };
            state.by_name.insert(
                job.clone(),
                Arc::new(JobEntry {
                    name: job,
                    health,
                    job_type,
                    info,
                    stamp,
                }),
            );
        }
        if reparsed {
            state.configs += 1;
        }
        let mut sorted: Vec<Arc<JobEntry>> = state.by_name.values().cloned().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        state.sorted = Arc::new(sorted);
        state.sorted.clone()
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
    use super::job_of;

    #[test]
    fn paths_name_their_job() {
        assert_eq!(job_of("/orderJob/sharding/0/running"), Some("orderJob"));
        assert_eq!(job_of("/orderJob"), Some("orderJob"));
        assert_eq!(job_of("/"), None);
    }
}
