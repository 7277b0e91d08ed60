//! A job's nodes as its cache holds them, read under one lock: what the actor diffs to
//! react to changes, and what a fire decides from (spec §4.5 reads "from the cache").

use std::collections::{BTreeMap, BTreeSet};

use capstan_registry::cache::{TreeCache, TreeView};

use crate::instance::InstanceId;
use crate::protocol::nodes::JobNodes;

/// The leaves of one item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ItemNodes {
    pub instance: Option<String>,
    pub running: Option<String>,
    pub misfire: bool,
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
}

fn text(view: &TreeView<'_>, path: &str) -> Option<String> {
    view.get(path)
        .map(|n| String::from_utf8_lossy(&n.data).into_owned())
}

impl Snapshot {
    pub fn read(cache: &TreeCache, nodes: &JobNodes, me: &InstanceId) -> Snapshot {
        cache.read(|v| Snapshot::from_view(v, nodes, me))
    }

    fn from_view(v: &TreeView<'_>, nodes: &JobNodes, me: &InstanceId) -> Snapshot {
        let root = nodes.root();
        let Some(root_node) = v.get(root) else {
            return Snapshot::default();
        };
        let mut items = BTreeMap::new();
        let sharding = v.children(&nodes.sharding());
        for child in &sharding {
            let Ok(item) = child.parse::<u32>() else {
                continue;
            };
            let leaf = |name: &str| text(v, &nodes.item_leaf(item, name));
            items.insert(
                item,
                ItemNodes {
                    instance: leaf("instance"),
                    running: leaf("running"),
                    misfire: v.get(&nodes.item_leaf(item, "misfire")).is_some(),
                    disabled: v.get(&nodes.item_leaf(item, "disabled")).is_some(),
                    failover: leaf("failover"),
                    failovering: leaf("failovering"),
                },
            );
        }
        Snapshot {
            exists: true,
            root_value: Some(String::from_utf8_lossy(&root_node.data).into_owned()),
            config: v.get(&nodes.config()).map(|n| n.data.to_vec()),
            instances: v
                .children(&nodes.instances())
                .into_iter()
                .map(str::to_owned)
                .collect(),
            servers: v
                .children(&nodes.servers())
                .into_iter()
                .map(|ip| {
                    (
                        ip.to_owned(),
                        text(v, &nodes.server(ip)).unwrap_or_default(),
                    )
                })
                .collect(),
            leader: text(v, &nodes.leader()),
            necessary: v.get(&nodes.resharding_necessary()).is_some(),
            processing: v.get(&nodes.resharding_processing()).is_some(),
            items,
            sharding_children: sharding.len(),
            failover_pending: v
                .children(&nodes.failover_items())
                .into_iter()
                .map(str::to_owned)
                .collect(),
            my_trigger: text(v, &nodes.trigger(me.as_str())),
            paused: v.get(&nodes.paused()).is_some(),
        }
    }

    /// §2.1: `servers/{ip}` is exactly `ENABLED` and some instance id starts with the IP
    /// (a plain prefix test, as Java's).
    pub fn server_available(&self, ip: &str) -> bool {
        self.servers.get(ip).is_some_and(|v| v == "ENABLED")
            && self.instances.iter().any(|i| i.starts_with(ip))
    }

    /// Items `< total` owned by `me` (§4.3 `getLocalShardingItems`); none if its server is
    /// not available.
    pub fn local_items(&self, me: &InstanceId, total: u32) -> Vec<u32> {
        if !self.server_available(me.ip()) {
            return Vec::new();
        }
        self.items
            .iter()
            .filter(|(item, n)| **item < total && n.instance.as_deref() == Some(me.as_str()))
            .map(|(item, _)| *item)
            .collect()
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
