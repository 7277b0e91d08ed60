//! A job's nodes as its cache holds them, read under one lock: what the actor diffs to
//! react to changes, and what a fire decides from (spec §4.5 reads "from the cache").
//!
//! Run markers (`sharding/{item}/running` and `misfire`) are left out: every fire writes
//! and removes them, and a snapshot that held them would be rebuilt at every fire of every
//! job (a thousand jobs due on one second made that a good part of each fire's cost). The
//! snapshot is therefore reused until something else changes, and a fire looks its
//! markers up live ([`JobShared::running_items`](super::job::JobShared::running_items)).

use std::collections::{BTreeMap, BTreeSet};

use capstan_registry::cache::{TreeCache, TreeView};

use crate::instance::InstanceId;
use crate::protocol::nodes::JobNodes;

/// The leaves of one item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ItemNodes {
    pub instance: Option<String>,
    pub disabled: bool,
    pub failover: Option<String>,
    pub failovering: Option<String>,
}

/// Everything under `/{job}` the runtime looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// `/{job}` exists.
    pub exists: bool,
    /// The `/{job}` value.
    pub root_value: Option<String>,
    /// The raw config node.
    pub config: Option<Vec<u8>>,
    pub instances: BTreeSet<String>,
    /// `servers/{ip}` values.
    pub servers: BTreeMap<String, String>,
    pub leader: Option<String>,
    pub necessary: bool,
    pub processing: bool,
    /// Children of `sharding/` that are item numbers.
    pub items: BTreeMap<u32, ItemNodes>,
    /// Count of every child of `sharding/` (Java compares the count, not the maximum).
    pub sharding_children: usize,
    /// Children of `leader/failover/items`.
    pub failover_pending: Vec<String>,
    /// The value of `trigger/{me}`, if present.
    pub my_trigger: Option<String>,
    /// `/{job}/paused` exists (Capstan's pause).
    pub paused: bool,
    /// This instance's server is available (`server_available` of its IP).
    pub me_available: bool,
    /// The items owned by this instance, in order.
    pub mine: Vec<u32>,
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

impl Snapshot {
    pub fn read(cache: &TreeCache, nodes: &JobNodes, me: &InstanceId) -> Snapshot {
        let mut snap = cache.read(|v| Snapshot::from_view(v, nodes, me));
        // Derived once here rather than at every fire.
        snap.me_available = snap.server_available(me.ip());
        snap.mine = snap
            .items
            .iter()
            .filter(|(_, n)| n.instance.as_deref() == Some(me.as_str()))
            .map(|(item, _)| *item)
            .collect();
        snap
    }

    /// One ordered pass over the job's subtree, each node placed by its path below the
    /// root. (A fire reads the snapshot anew after its own run markers changed it, so this
    /// is on every fire's path: one scan, where a lookup per node wanted meant a formatted
    /// path and a map seek each.)
    fn from_view(v: &TreeView<'_>, nodes: &JobNodes, me: &InstanceId) -> Snapshot {
        let root = nodes.root();
        let Some(root_node) = v.get(root) else {
            return Snapshot::default();
        };
        let mut snap = Snapshot {
            exists: true,
            root_value: Some(text(&root_node.data)),
            ..Snapshot::default()
        };
        for (path, node) in v.subtree(root) {
            let Some(rel) = path.strip_prefix(root).and_then(|r| r.strip_prefix('/')) else {
                continue;
            };
            let mut parts = rel.split('/');
            let parts: [Option<&str>; 5] = std::array::from_fn(|_| parts.next());
            match parts {
                [Some("config"), None, ..] => snap.config = Some(node.data.to_vec()),
                [Some("paused"), None, ..] => snap.paused = true,
                [Some("instances"), Some(id), None, ..] => {
                    snap.instances.insert(id.to_owned());
                }
                [Some("servers"), Some(ip), None, ..] => {
                    snap.servers.insert(ip.to_owned(), text(&node.data));
                }
                [Some("trigger"), Some(id), None, ..] if id == me.as_str() => {
                    snap.my_trigger = Some(text(&node.data));
                }
                [Some("leader"), Some("election"), Some("instance"), None, _] => {
                    snap.leader = Some(text(&node.data));
                }
                [Some("leader"), Some("sharding"), Some("necessary"), None, _] => {
                    snap.necessary = true;
                }
                [
                    Some("leader"),
                    Some("sharding"),
                    Some("processing"),
                    None,
                    _,
                ] => {
                    snap.processing = true;
                }
                [
                    Some("leader"),
                    Some("failover"),
                    Some("items"),
                    Some(item),
                    None,
                ] => {
                    snap.failover_pending.push(item.to_owned());
                }
                [Some("sharding"), Some(child), None, ..] => {
                    snap.sharding_children += 1;
                    if let Ok(item) = child.parse::<u32>() {
                        snap.items.insert(item, ItemNodes::default());
                    }
                }
                // The subtree is in path order, so an item's node comes before its leaves.
                [Some("sharding"), Some(child), Some(leaf), None, _] => {
                    let Some(leaves) = child
                        .parse::<u32>()
                        .ok()
                        .and_then(|item| snap.items.get_mut(&item))
                    else {
                        continue;
                    };
                    match leaf {
                        "instance" => leaves.instance = Some(text(&node.data)),
                        "disabled" => leaves.disabled = true,
                        "failover" => leaves.failover = Some(text(&node.data)),
                        "failovering" => leaves.failovering = Some(text(&node.data)),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        snap
    }

    /// §2.1: `servers/{ip}` is exactly `ENABLED` and some instance id starts with the IP
    /// (a plain prefix test, as Java's).
    pub fn server_available(&self, ip: &str) -> bool {
        self.servers.get(ip).is_some_and(|v| v == "ENABLED")
            && self.instances.iter().any(|i| i.starts_with(ip))
    }

    /// Items `< total` owned by the instance this snapshot was read for (§4.3
    /// `getLocalShardingItems`); none if its server is not available.
    pub fn local_items(&self, total: u32) -> Vec<u32> {
        if !self.me_available {
            return Vec::new();
        }
        self.mine.iter().copied().filter(|i| *i < total).collect()
    }

    /// §4.3 `hasShardingInfoInOfflineServers`: an item `< total` whose owner is missing or
    /// not a current instance.
    pub fn owners_offline(&self, total: u32) -> bool {
        (0..total).any(|i| {
            self.items
                .get(&i)
                .and_then(|n| n.instance.as_ref())
                .is_none_or(|owner| !self.instances.contains(owner))
        })
    }
}

#[cfg(test)]
mod tests {
    use capstan_registry::{EmbeddedStore, Registry};

    use super::*;

    #[tokio::test]
    async fn every_node_lands_in_its_field_and_nothing_else_does() {
        let store = EmbeddedStore::in_memory();
        let r = Registry::embedded(&store, "snap").await.expect("registry");
        let me = "10.0.0.1@-@1";
        for (path, data) in [
            ("/job", "SIMPLE"),
            ("/job/config", "cron: 0 * * * * ?"),
            ("/job/paused", ""),
            ("/job/instances/10.0.0.1@-@1", "jobInstanceId: x"),
            ("/job/instances/10.0.0.2@-@2", ""),
            ("/job/servers/10.0.0.1", "ENABLED"),
            ("/job/servers/10.0.0.2", "DISABLED"),
            ("/job/leader/election/instance", me),
            ("/job/leader/election/latch", ""),
            ("/job/leader/sharding/necessary", ""),
            ("/job/leader/failover/items/1", ""),
            ("/job/leader/failover/items/3", ""),
            ("/job/sharding/0/instance", me),
            ("/job/sharding/0/running", me),
            ("/job/sharding/0/misfire", ""),
            ("/job/sharding/1/instance", "10.0.0.2@-@2"),
            ("/job/sharding/1/disabled", ""),
            ("/job/sharding/1/failover", me),
            ("/job/sharding/1/failovering", me),
            ("/job/sharding/1/unknown", "ignored"),
            ("/job/sharding/notAnItem/instance", "ignored"),
            ("/job/trigger/10.0.0.1@-@1", "param"),
            ("/job/trigger/10.0.0.2@-@2", "not mine"),
            // A job whose name extends this one's is not part of it.
            ("/jobX/config", "other"),
            ("/jobX/sharding/0/instance", "other"),
        ] {
            r.put(path, data.as_bytes()).await.expect("create");
        }
        let cache = TreeCache::start(r.clone(), "/").await.expect("cache");
        let me: InstanceId = me.parse().expect("id");
        let snap = Snapshot::read(&cache, &JobNodes::new("job"), &me);
        let item = |instance: &str| ItemNodes {
            instance: Some(instance.into()),
            ..ItemNodes::default()
        };
        let expected = Snapshot {
            exists: true,
            root_value: Some("SIMPLE".into()),
            config: Some(b"cron: 0 * * * * ?".to_vec()),
            instances: ["10.0.0.1@-@1", "10.0.0.2@-@2"].map(String::from).into(),
            servers: [("10.0.0.1", "ENABLED"), ("10.0.0.2", "DISABLED")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
            leader: Some(me.as_str().into()),
            necessary: true,
            processing: false,
            items: [
                // Its `running` and `misfire` markers are not part of a snapshot.
                (0, item(me.as_str())),
                (
                    1,
                    ItemNodes {
                        disabled: true,
                        failover: Some(me.as_str().into()),
                        failovering: Some(me.as_str().into()),
                        ..item("10.0.0.2@-@2")
                    },
                ),
            ]
            .into(),
            sharding_children: 3,
            failover_pending: vec!["1".into(), "3".into()],
            my_trigger: Some("param".into()),
            paused: true,
            me_available: true,
            mine: vec![0],
        };
        assert_eq!(snap, expected);
        assert_eq!(
            Snapshot::read(&cache, &JobNodes::new("missing"), &me),
            Snapshot::default()
        );
        r.close().await;
    }
}
