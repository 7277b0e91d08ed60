//! Parsed job configs, kept while their node is unchanged.
//!
//! A jobs page filters and counts every job of the centre (search, tags, status), so it
//! needs every config; parsing 10,000 YAML documents per request would cost far more than
//! the page budget. A config is re-parsed only when its node's `(czxid, mzxid)` changes:
//! an edit bumps `mzxid`, a delete and re-create changes `czxid`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use capstan_registry::cache::TreeView;
use capstan_scheduler::config::JobConfig;
use capstan_scheduler::cron::{Schedule, Zone};

use crate::model::tags_of;

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

type Stamp = Option<(i64, i64)>;

/// The memo of one centre.
#[derive(Default)]
pub struct ConfigMemo {
    entries: Mutex<HashMap<String, (Stamp, Arc<ConfigInfo>)>>,
}

impl ConfigMemo {
    /// The configs of `jobs`, parsing only those whose node changed. `view` is read
    /// first and released before parsing, so the cache's writer is never held up by YAML.
    pub fn infos(
        &self,
        jobs: &[String],
        stamps: Vec<(Stamp, Option<Box<[u8]>>)>,
    ) -> Vec<Arc<ConfigInfo>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let out = jobs
            .iter()
            .zip(stamps)
            .map(|(job, (stamp, data))| match entries.get(job) {
                Some((s, info)) if *s == stamp => info.clone(),
                // Another request pruned the entry between the two steps: parse nothing,
                // cache nothing; the next request reads the node again.
                _ if stamp.is_some() && data.is_none() => Arc::new(ConfigInfo::parse(
                    job,
                    Some(b"# the config changed while it was read; reload the page"),
                )),
                _ => {
                    let info = Arc::new(ConfigInfo::parse(job, data.as_deref()));
                    entries.insert(job.clone(), (stamp, info.clone()));
                    info
                }
            })
            .collect();
        if entries.len() > jobs.len() * 2 + 64 {
            // Jobs were removed: drop their entries.
            let live: std::collections::HashSet<&String> = jobs.iter().collect();
            entries.retain(|k, _| live.contains(k));
        }
        out
    }

    /// The stamp of `job`'s config node, and its data when the memo lacks that stamp.
    pub fn stamp(&self, view: &TreeView<'_>, job: &str) -> (Stamp, Option<Box<[u8]>>) {
        let node = view.get(&format!("/{job}/config"));
        let stamp = node.map(|n| (n.stat.czxid, n.stat.mzxid));
        let known = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(job)
            .is_some_and(|(s, _)| *s == stamp);
        (
            stamp,
            if known {
                None
            } else {
                node.map(|n| n.data.clone())
            },
        )
    }
}
