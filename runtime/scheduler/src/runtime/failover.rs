//! Failover (spec §4.6): items a crashed instance was running are flagged under
//! `leader/failover/items/`, and idle instances take them one at a time under the failover
//! latch and run them.
//!
//! Why the detection runs inside the latch too (Java does it outside): a detector deletes
//! the crashed owner's `running` node. Outside the latch, a slow detector can check "no
//! `failover` node yet", lose the CPU while a taker writes `failover` and starts the item
//! (re-creating `running`), and then delete the taker's `running` node. Nothing would then
//! stop the item's next owner from starting it while the taker still runs it. Under the
//! latch the check and the delete cannot interleave with a take, and the delete only removes
//! a `running` node that still names the crashed instance.

use capstan_registry::CreateMode;
use capstan_registry::recipes::latch::Latch;

use super::job::JobShared;
use crate::Result;
use crate::instance::{DELIMITER, sort_descending};
use crate::protocol::storage::{
    children, create_if_absent, delete_if_value, persist, persist_ephemeral, remove, value,
};

/// The leaves of items `0..total` read in one batch: (instance, running, failover,
/// failovering) per item.
async fn item_leaves(shared: &JobShared, total: u32) -> Result<Vec<[Option<String>; 4]>> {
    let leaves = ["instance", "running", "failover", "failovering"];
    let paths: Vec<String> = (0..total)
        .flat_map(|i| leaves.iter().map(move |l| shared.nodes.item_leaf(i, l)))
        .collect();
    let read = shared.registry.read_nodes(&paths).await?;
    Ok(read
        .chunks(leaves.len())
        .map(|c| {
            let text = |n: &Option<capstan_registry::NodeData>| {
                n.as_ref()
                    .map(|n| String::from_utf8_lossy(&n.data).into_owned())
            };
            [text(&c[0]), text(&c[1]), text(&c[2]), text(&c[3])]
        })
        .collect())
}

/// Runs `f` holding the job's failover latch, releasing it whatever `f` returns.
async fn under_latch<T>(shared: &JobShared, f: impl AsyncFnOnce() -> Result<T>) -> Result<T> {
    let guard = Latch::new(shared.registry.clone(), shared.nodes.failover_latch())
        .acquire()
        .await?;
    let result = f().await;
    guard.release().await?;
    result
}

/// Flags `item` for failover and removes the crashed owner's `running` marker.
async fn flag(shared: &JobShared, item: u32, crashed: &str) -> Result<()> {
    create_if_absent(
        &shared.registry,
        &shared.nodes.failover_item(item),
        b"",
        CreateMode::Persistent,
    )
    .await?;
    delete_if_value(
        &shared.registry,
        &shared.nodes.item_leaf(item, "running"),
        crashed,
    )
    .await?;
    // Before 3.0.2 `running` held "" rather than the owner's id.
    delete_if_value(
        &shared.registry,
        &shared.nodes.item_leaf(item, "running"),
        "",
    )
    .await?;
    Ok(())
}

/// §4.6 on the deletion of `instances/{crashed}`: flags the items it was running. Returns
/// them.
///
/// # Errors
/// A registry error.
pub(crate) async fn flag_crashed_items(
    shared: &JobShared,
    crashed: &str,
    total: u32,
) -> Result<Vec<u32>> {
    under_latch(shared, async || {
        let leaves = item_leaves(shared, total).await?;
        // Items the crashed instance had itself taken over.
        let taken: Vec<u32> = (0..total)
            .filter(|i| leaves[*i as usize][3].as_deref() == Some(crashed))
            .collect();
        if !taken.is_empty() {
            for item in &taken {
                flag(shared, *item, crashed).await?;
                remove(
                    &shared.registry,
                    &shared.nodes.item_leaf(*item, "failovering"),
                )
                .await?;
            }
            return Ok(taken);
        }
        // A disabled server's crashed items are not failed over.
        let ip = crashed.split(DELIMITER).next().unwrap_or(crashed);
        if value(&shared.registry, &shared.nodes.server(ip))
            .await?
            .as_deref()
            != Some("ENABLED")
        {
            return Ok(Vec::new());
        }
        let mut flagged = Vec::new();
        for item in 0..total {
            let [instance, running, failover, _] = &leaves[item as usize];
            let running_there = running
                .as_deref()
                .is_some_and(|r| r == crashed || r.is_empty());
            if instance.as_deref() == Some(crashed) && running_there && failover.is_none() {
                flag(shared, item, crashed).await?;
                flagged.push(item);
            }
        }
        Ok(flagged)
    })
    .await
}

/// Items left `running` or `failovering` by instances that are gone are flagged again.
/// Returns them.
///
/// Two callers:
/// - `LegacyCrashedRunningItemListener` (§4.6, `alone`): this instance starts, or comes
///   back, as the only available one (whole-cluster restarts; `running` is persistent with
///   failover on).
/// - The leader, when resharding waits for `running` items (§4.4 step 3). An instance's
///   removal is seen only by instances that watch at that moment: when every survivor is
///   itself restarting, nobody flags the dead one's items, its persistent `running` nodes
///   stay, and the leader would wait for them for ever. (Java does wait for ever.)
///
/// Why the order of reads is safe with other instances alive: the item leaves are read
/// first, and the live instances after. An instance registers its node before it writes
/// any `running` node, so an owner read in a leaf and missing from the later list had its
/// node deleted in between: it is gone, not just arriving. A `running` node holding `""`
/// (written before 3.0.2) names nobody; the item's `instance` leaf stands for its owner,
/// and when `alone` it is orphaned whoever is named, as Java treats it.
///
/// # Errors
/// A registry error.
async fn flag_orphaned_items(shared: &JobShared, total: u32, alone: bool) -> Result<Vec<u32>> {
    under_latch(shared, async || {
        let leaves = item_leaves(shared, total).await?;
        let live = children(&shared.registry, &shared.nodes.instances()).await?;
        let gone = |id: &str| !live.iter().any(|l| l == id);
        let mut flagged = Vec::new();
        for item in 0..total {
            let [instance, running, failover, failovering] = &leaves[item as usize];
            if let Some(owner) = failovering.as_deref().filter(|o| gone(o)) {
                flag(shared, item, owner).await?;
                remove(
                    &shared.registry,
                    &shared.nodes.item_leaf(item, "failovering"),
                )
                .await?;
                flagged.push(item);
                continue;
            }
            // A taker holds the item (its ephemeral `failover` node): not orphaned.
            if failover.is_some() {
                continue;
            }
            let orphaned = match running.as_deref() {
                None => false,
                Some("") => alone || instance.as_deref().is_none_or(gone),
                Some(owner) => gone(owner),
            };
            if orphaned {
                flag(shared, item, running.as_deref().unwrap_or_default()).await?;
                flagged.push(item);
            }
        }
        Ok(flagged)
    })
    .await
}

/// [`flag_orphaned_items`], logging what it flagged (saying `found`, where it looked) or
/// why it could not look: a caller goes on either way.
pub(crate) async fn flag_orphans_logged(shared: &JobShared, total: u32, alone: bool, found: &str) {
    match flag_orphaned_items(shared, total, alone).await {
        Ok(items) if !items.is_empty() => {
            tracing::info!(job = %shared.name, ?items, "{found}; flagged them for failover");
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(job = %shared.name, error = %e, "cannot check for items left running by instances that are gone");
        }
    }
}

/// `failoverIfNecessary` (§4.6): takes one flagged item, if any, under the latch: writes
/// `failover` (ephemeral) and `failovering` (persistent) with this instance's id and
/// removes the flag. The first flag in descending string order is taken, as in Java.
///
/// # Errors
/// A registry error.
pub(crate) async fn take_one(shared: &JobShared) -> Result<Option<u32>> {
    if children(&shared.registry, &shared.nodes.failover_items())
        .await?
        .is_empty()
    {
        return Ok(None);
    }
    under_latch(shared, async || {
        let mut pending = children(&shared.registry, &shared.nodes.failover_items()).await?;
        sort_descending(&mut pending);
        let Some(first) = pending.first() else {
            return Ok(None);
        };
        let Ok(item) = first.parse::<u32>() else {
            // Not an item: a stray node someone wrote; drop it so it cannot block others.
            remove(
                &shared.registry,
                &format!("{}/{first}", shared.nodes.failover_items()),
            )
            .await?;
            return Ok(None);
        };
        let me = shared.me.as_str().as_bytes();
        persist_ephemeral(
            &shared.registry,
            &shared.nodes.item_leaf(item, "failover"),
            me,
        )
        .await?;
        persist(
            &shared.registry,
            &shared.nodes.item_leaf(item, "failovering"),
            me,
        )
        .await?;
        remove(&shared.registry, &shared.nodes.failover_item(item)).await?;
        Ok(Some(item))
    })
    .await
}
