//! Lazy resharding (spec §4.3): anyone's change flags it, the leader performs it at its
//! next execution, and followers wait for it.

use capstan_registry::{CreateMode, CreateOptions, Error as RegistryError, Op, Registry};

use super::election::is_leader;
use super::nodes::JobNodes;
use super::storage::{create_if_absent, exists};
use crate::Result;
use crate::instance::{InstanceId, sort_descending};
use crate::sharding::Strategy;

/// What a job's sharding needs from its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardingPlan {
    /// The job name (the strategies hash it).
    pub job_name: String,
    /// `shardingTotalCount`.
    pub total: u32,
    /// `jobShardingStrategyType`.
    pub strategy: Strategy,
    /// `monitorExecution`: the leader waits for running items before resharding.
    pub monitor_execution: bool,
}

/// What [`shard_if_necessary`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardOutcome {
    /// No resharding flag, or no available instance: nothing to do.
    NotNeeded,
    /// Resharding is pending and another instance leads: wait until the flag is gone.
    LeaderWillShard,
    /// This instance leads, but items are still running: try again shortly.
    WaitForRunningItems,
    /// Resharded: the owners, in the order the strategy saw them.
    Sharded(Vec<(InstanceId, Vec<u32>)>),
}

/// `setReshardingFlag`: creates `leader/sharding/necessary`.
///
/// # Errors
/// A registry error.
pub async fn set_resharding_flag(registry: &Registry, job: &JobNodes) -> Result<()> {
    create_if_absent(
        registry,
        &job.resharding_necessary(),
        b"",
        CreateMode::Persistent,
    )
    .await
    .map(drop)
}

/// Whether a server's value is exactly `ENABLED` (3.0.2+: empty or missing is not).
async fn server_enabled(registry: &Registry, job: &JobNodes, ip: &str) -> Result<bool> {
    match registry.get(&job.server(ip)).await {
        Ok((data, _)) => Ok(data == b"ENABLED"),
        Err(RegistryError::NoNode(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The instances sharding may use: children of `instances/` in descending Java string
/// order, whose server is `ENABLED`. Malformed ids are skipped.
///
/// # Errors
/// A registry error.
pub async fn available_instances(registry: &Registry, job: &JobNodes) -> Result<Vec<InstanceId>> {
    let mut children = match registry.children(&job.instances()).await {
        Ok(c) => c,
        Err(RegistryError::NoNode(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    sort_descending(&mut children);
    let mut out = Vec::new();
    for child in children {
        let Ok(id) = child.parse::<InstanceId>() else {
            continue;
        };
        if server_enabled(registry, job, id.ip()).await? {
            out.push(id);
        }
    }
    Ok(out)
}

/// `shardingIfNecessary`, the leader's part. Followers get
/// [`ShardOutcome::LeaderWillShard`] instead of Java's busy wait, so the caller can wait on
/// a watch of the flag.
///
/// # Errors
/// A registry error; the transaction that writes the assignment is all or nothing.
pub async fn shard_if_necessary(
    registry: &Registry,
    job: &JobNodes,
    me: &InstanceId,
    plan: &ShardingPlan,
    now_ms: i64,
) -> Result<ShardOutcome> {
    if !exists(registry, &job.resharding_necessary()).await? {
        return Ok(ShardOutcome::NotNeeded);
    }
    let available = available_instances(registry, job).await?;
    if available.is_empty() {
        return Ok(ShardOutcome::NotNeeded);
    }
    if !is_leader(registry, job, me).await? {
        return Ok(ShardOutcome::LeaderWillShard);
    }
    if plan.monitor_execution {
        for item in 0..plan.total {
            if exists(registry, &job.item_leaf(item, "running")).await? {
                return Ok(ShardOutcome::WaitForRunningItems);
            }
        }
    }
    // Marks sharding in progress; ephemeral, so a leader that dies mid-way leaves no trace.
    match registry
        .create_with(
            &job.resharding_processing(),
            b"",
            CreateOptions {
                mode: CreateMode::Ephemeral,
                create_parents: true,
            },
        )
        .await
    {
        Ok(_) => {}
        Err(RegistryError::NodeExists(_)) => return Ok(ShardOutcome::LeaderWillShard),
        Err(e) => return Err(e.into()),
    }
    // Reset: clear owners of items 0..total, make sure the items exist, drop surplus items
    // (by count, as Java does). Flags such as `disabled` on surviving items stay.
    for item in 0..plan.total {
        match registry
            .delete(&job.item_leaf(item, "instance"), None)
            .await
        {
            Ok(()) | Err(RegistryError::NoNode(_)) => {}
            Err(e) => return Err(e.into()),
        }
        create_if_absent(registry, &job.item(item), b"", CreateMode::Persistent).await?;
    }
    let count = registry.children(&job.sharding()).await?.len() as u32;
    for item in plan.total..count {
        match registry.delete_recursive(&job.item(item)).await {
            Ok(()) | Err(RegistryError::NoNode(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let assignment: Vec<(InstanceId, Vec<u32>)> = plan
        .strategy
        .assign(&plan.job_name, &available, plan.total, now_ms)?
        .into_iter()
        .map(|(id, items)| (id.clone(), items))
        .collect();
    // One transaction: the namespace still exists, every owner written, both flags gone.
    let mut ops = vec![Op::Check {
        path: "/".into(),
        version: -1,
    }];
    for (id, items) in &assignment {
        for item in items {
            ops.push(Op::Create {
                path: job.item_leaf(*item, "instance"),
                data: id.as_str().as_bytes().to_vec(),
                mode: CreateMode::Persistent,
            });
        }
    }
    ops.push(Op::Delete {
        path: job.resharding_necessary(),
        version: None,
    });
    ops.push(Op::Delete {
        path: job.resharding_processing(),
        version: None,
    });
    registry.multi(ops).await?;
    flag_if_instances_changed(registry, job, &available).await?;
    Ok(ShardOutcome::Sharded(assignment))
}

/// After a sharding that assigned items to `used`: flags resharding again if the
/// available instances are no longer those.
///
/// Why: the leader's listener flags resharding when instances or servers change, but not
/// while its cache still shows the flag set, and the flag is set while a sharding is
/// under way. An instance that registered after the sharding read `available`, and
/// before its commit deleted the flag, was then left without items until some other
/// change (the browser tests saw it: a second agent joining during the first agent's
/// first fire). Anything that changes after this read is seen by the listener with the
/// flag already gone.
async fn flag_if_instances_changed(
    registry: &Registry,
    job: &JobNodes,
    used: &[InstanceId],
) -> Result<bool> {
    if available_instances(registry, job).await? == used {
        return Ok(false);
    }
    tracing::info!(job = %job.root(), "the instances changed while sharding; flagging resharding again");
    set_resharding_flag(registry, job).await?;
    Ok(true)
}

/// `getLocalShardingItems`: items `< total` owned by `me`, empty if its server is not
/// enabled.
///
/// # Errors
/// A registry error.
pub async fn local_items(
    registry: &Registry,
    job: &JobNodes,
    me: &InstanceId,
    total: u32,
) -> Result<Vec<u32>> {
    if !server_enabled(registry, job, me.ip()).await? {
        return Ok(Vec::new());
    }
    let mut items = Vec::new();
    for item in 0..total {
        match registry.get(&job.item_leaf(item, "instance")).await {
            Ok((owner, _)) if owner == me.as_str().as_bytes() => items.push(item),
            Ok(_) | Err(RegistryError::NoNode(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use capstan_registry::cache::TreeCache;
    use capstan_registry::{CreateMode, EmbeddedStore, Registry};

    use super::*;
    use crate::admin::{ItemState, JobStatus, job_items, job_summaries};
    use crate::protocol::election::elect_leader;

    const A: &str = "192.168.1.9@-@3001";
    const B: &str = "192.168.1.10@-@2001";

    /// Steps 1-2 of spec §6: an instance registers its server, instance node and config.
    async fn start_instance(r: &Registry, job: &JobNodes, id: &str, ip: &str) -> InstanceId {
        let me: InstanceId = id.parse().expect("id");
        create_if_absent(r, job.root(), b"", CreateMode::Persistent)
            .await
            .expect("root");
        let _ = r
            .create(
                &job.config(),
                b"jobName: orderJob\nshardingTotalCount: 3\ncron: 0/5 * * * * ?\n",
                CreateMode::Persistent,
            )
            .await;
        elect_leader(r, job, &me).await.expect("elect");
        let _ = r
            .create_with(
                &job.server(ip),
                b"ENABLED",
                CreateOptions {
                    mode: CreateMode::Persistent,
                    create_parents: true,
                },
            )
            .await;
        r.create_with(
            &job.instance(id),
            format!("jobInstanceId: {id}\nserverIp: {ip}\n").as_bytes(),
            CreateOptions {
                mode: CreateMode::Ephemeral,
                create_parents: true,
            },
        )
        .await
        .expect("instance");
        set_resharding_flag(r, job).await.expect("flag");
        me
    }

    /// Whether the resharding flag is set.
    async fn flagged(r: &Registry, job: &JobNodes) -> bool {
        r.exists(&job.resharding_necessary())
            .await
            .expect("flag")
            .is_some()
    }

    /// An instance that registers while a sharding is under way (after it read the
    /// instances, before it deleted the flag) gets the flag set again, so the next fire
    /// gives it items; an unchanged set leaves the flag gone.
    #[tokio::test]
    async fn instances_that_join_during_a_sharding_flag_it_again() {
        let store = EmbeddedStore::in_memory();
        let ra = Registry::embedded(&store, "ns").await.expect("a");
        let rb = Registry::embedded(&store, "ns").await.expect("b");
        let job = JobNodes::new("orderJob");
        let a = start_instance(&ra, &job, A, "192.168.1.9").await;
        let used = available_instances(&ra, &job).await.expect("available");
        assert_eq!(used, std::slice::from_ref(&a));
        ra.delete(&job.resharding_necessary(), None)
            .await
            .expect("the sharding's commit deletes the flag");
        assert!(
            !flag_if_instances_changed(&ra, &job, &used)
                .await
                .expect("unchanged")
        );
        assert!(!flagged(&ra, &job).await);
        // B registers (and, as a follower, sets no flag); A's sharding used only A.
        let b = start_instance(&rb, &job, B, "192.168.1.10").await;
        rb.delete(&job.resharding_necessary(), None)
            .await
            .expect("as if never set");
        assert!(
            flag_if_instances_changed(&ra, &job, &used)
                .await
                .expect("changed")
        );
        assert!(flagged(&ra, &job).await);
        let plan = ShardingPlan {
            job_name: "orderJob".into(),
            total: 2,
            strategy: Strategy::AvgAllocation,
            monitor_execution: false,
        };
        let ShardOutcome::Sharded(owners) = shard_if_necessary(&ra, &job, &a, &plan, 0)
            .await
            .expect("a")
        else {
            panic!("A leads and must shard");
        };
        assert_eq!(owners, [(a, vec![0]), (b, vec![1])]);
        assert!(!flagged(&ra, &job).await);
    }

    #[tokio::test]
    async fn the_worked_timeline_of_the_spec() {
        let store = EmbeddedStore::in_memory();
        let ra = Registry::embedded(&store, "ns").await.expect("a");
        let rb = Registry::embedded(&store, "ns").await.expect("b");
        let job = JobNodes::new("orderJob");
        let a = start_instance(&ra, &job, A, "192.168.1.9").await;
        let b = start_instance(&rb, &job, B, "192.168.1.10").await;
        let plan = ShardingPlan {
            job_name: "orderJob".into(),
            total: 3,
            strategy: Strategy::AvgAllocation,
            monitor_execution: true,
        };
        let cache = TreeCache::start(ra.clone(), "/").await.expect("cache");
        cache.read(|v| assert_eq!(job_summaries(v)[0].status, JobStatus::ShardingFlag));

        // Step 3: the follower waits, the leader (A, first to start) shards.
        assert_eq!(
            shard_if_necessary(&rb, &job, &b, &plan, 0)
                .await
                .expect("b"),
            ShardOutcome::LeaderWillShard
        );
        let ShardOutcome::Sharded(owners) = shard_if_necessary(&ra, &job, &a, &plan, 0)
            .await
            .expect("a")
        else {
            panic!("A leads and must shard");
        };
        // Available list in descending order is [.9, .10], so A=[0,2], B=[1].
        assert_eq!(owners, [(a.clone(), vec![0, 2]), (b.clone(), vec![1])]);
        assert_eq!(
            local_items(&ra, &job, &a, 3).await.expect("a items"),
            [0, 2]
        );
        assert_eq!(local_items(&rb, &job, &b, 3).await.expect("b items"), [1]);
        assert!(
            ra.exists(&job.resharding_necessary())
                .await
                .expect("flag")
                .is_none()
        );
        assert!(
            ra.exists(&job.resharding_processing())
                .await
                .expect("flag")
                .is_none()
        );
        let mut generation = cache.generation();
        while !cache.read(|v| job_summaries(v)[0].status == JobStatus::Ok) {
            generation.changed().await.expect("cache");
        }
        cache.read(|v| {
            assert!(
                job_items(v, "orderJob")
                    .iter()
                    .all(|i| i.state == ItemState::Pending)
            );
        });

        // A running item holds back resharding (monitorExecution).
        ra.create(
            &job.item_leaf(0, "running"),
            A.as_bytes(),
            CreateMode::Persistent,
        )
        .await
        .expect("running");
        set_resharding_flag(&ra, &job).await.expect("flag");
        assert_eq!(
            shard_if_necessary(&ra, &job, &a, &plan, 0)
                .await
                .expect("a"),
            ShardOutcome::WaitForRunningItems
        );
        ra.delete(&job.item_leaf(0, "running"), None)
            .await
            .expect("done");

        // Disable B's server: at the next sharding A owns everything, B runs nothing.
        ra.set(&job.server("192.168.1.10"), b"DISABLED", None)
            .await
            .expect("disable");
        let ShardOutcome::Sharded(owners) = shard_if_necessary(&ra, &job, &a, &plan, 0)
            .await
            .expect("a")
        else {
            panic!("must reshard");
        };
        assert_eq!(owners, [(a.clone(), vec![0, 1, 2])]);
        assert!(local_items(&rb, &job, &b, 3).await.expect("b").is_empty());

        // Fewer items: surplus items are removed.
        set_resharding_flag(&ra, &job).await.expect("flag");
        let two = ShardingPlan { total: 2, ..plan };
        shard_if_necessary(&ra, &job, &a, &two, 0)
            .await
            .expect("reshard");
        let mut items = ra.children(&job.sharding()).await.expect("items");
        items.sort();
        assert_eq!(items, ["0", "1"]);
    }
}
