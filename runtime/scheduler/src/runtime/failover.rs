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

/// The leaves `names` of each of `items`, read in one batch, as text.
async fn read_leaves<const N: usize>(
    shared: &JobShared,
    items: &[u32],
    names: [&str; N],
) -> Result<Vec<[Option<String>; N]>> {
    let paths: Vec<String> = items
        .iter()
        .flat_map(|i| names.iter().map(move |l| shared.nodes.item_leaf(*i, l)))
        .collect();
    let read = shared.registry.read_nodes(&paths).await?;
    Ok(read
        .chunks(N)
        .map(|c| {
            std::array::from_fn(|k| {
                c[k].as_ref()
                    .map(|n| String::from_utf8_lossy(&n.data).into_owned())
            })
        })
        .collect())
}

/// The leaves of items `0..total`: (instance, running, failover, failovering) per item.
async fn item_leaves(shared: &JobShared, total: u32) -> Result<Vec<[Option<String>; 4]>> {
    let items: Vec<u32> = (0..total).collect();
    read_leaves(
        shared,
        &items,
        ["instance", "running", "failover", "failovering"],
    )
    .await
}

/// Of `items`, which the cache shows taken over by this instance, those the registry
/// confirms: their `failover` node names this instance. None when the registry cannot be
/// read; the takes stay, and a later fire runs them.
pub(crate) async fn still_taken(shared: &JobShared, items: &[u32]) -> Vec<u32> {
    if items.is_empty() {
        return Vec::new();
    }
    match read_leaves(shared, items, ["failover"]).await {
        Ok(read) => items
            .iter()
            .zip(read)
            .filter(|(_, [taker])| taker.as_deref() == Some(shared.me.as_str()))
            .map(|(i, _)| *i)
            .collect(),
        Err(e) => {
            tracing::warn!(job = %shared.name, error = %e, "failover: cannot confirm the items taken over");
            Vec::new()
        }
    }
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

/// What [`flag_orphaned_items`] did.
#[derive(Debug, Default)]
pub(crate) struct Orphans {
    /// Items flagged for failover again.
    pub flagged: Vec<u32>,
    /// Items a live taker holds whose `running` marker, left by an owner that is gone, was
    /// removed so that the taker can start them.
    pub released: Vec<u32>,
}

/// Items left `running` or `failovering` by instances that are gone are flagged again, and
/// markers left by gone owners on items a live taker holds are removed.
///
/// Three callers:
/// - `LegacyCrashedRunningItemListener` (§4.6, `alone`): this instance starts, or comes
///   back, as the only available one (whole-cluster restarts; `running` is persistent with
///   failover on).
/// - The leader, when resharding waits for `running` items (§4.4 step 3). An instance's
///   removal is seen only by instances that watch at that moment: when every survivor is
///   itself restarting, nobody flags the dead one's items, its persistent `running` nodes
///   stay, and the leader would wait for them for ever. (Java does wait for ever.)
/// - A taker whose taken item is still marked `running` (see `run::fire`). The flag can
///   outlive the marker's owner: an earlier crash flagged the item, resharding gave it to
///   an instance that ran it and died unseen. The taker then holds `failover`, so nobody
///   else may touch the item, while the stale marker keeps the taker from starting it;
///   and the leader waits for that marker. (Java, again, waits for ever.)
///
/// Why the order of reads is safe with other instances alive: the item leaves are read
/// first, and the live instances after. An instance registers its node before it writes
/// any `running` node, so an owner read in a leaf and missing from the later list had its
/// node deleted in between: it is gone, not just arriving. A `running` node holding `""`
/// (written before 3.0.2) names nobody; the item's `instance` leaf stands for its owner,
/// and when `alone` it is orphaned whoever is named, as Java treats it. Under a live taker
/// such a node is left alone: those versions wrote it ephemeral, so its owner is alive.
///
/// # Errors
/// A registry error.
async fn flag_orphaned_items(shared: &JobShared, total: u32, alone: bool) -> Result<Orphans> {
    under_latch(shared, async || {
        let leaves = item_leaves(shared, total).await?;
        let live = children(&shared.registry, &shared.nodes.instances()).await?;
        let gone = |id: &str| !live.iter().any(|l| l == id);
        let mut orphans = Orphans::default();
        for item in 0..total {
            let [instance, running, failover, failovering] = &leaves[item as usize];
            if let Some(owner) = failovering.as_deref().filter(|o| gone(o)) {
                flag(shared, item, owner).await?;
                remove(
                    &shared.registry,
                    &shared.nodes.item_leaf(item, "failovering"),
                )
                .await?;
                orphans.flagged.push(item);
                continue;
            }
            // A taker holds the item (its ephemeral `failover` node): not orphaned, but
            // maybe kept from starting by a gone owner's marker. The taker has not started
            // it (its own create of the marker failed), so the marker guards nothing.
            if let Some(taker) = failover.as_deref() {
                if let Some(owner) = running
                    .as_deref()
                    .filter(|o| !o.is_empty() && *o != taker && gone(o))
                {
                    delete_if_value(
                        &shared.registry,
                        &shared.nodes.item_leaf(item, "running"),
                        owner,
                    )
                    .await?;
                    orphans.released.push(item);
                }
                continue;
            }
            let orphaned = match running.as_deref() {
                None => false,
                Some("") => alone || instance.as_deref().is_none_or(gone),
                Some(owner) => gone(owner),
            };
            if orphaned {
                flag(shared, item, running.as_deref().unwrap_or_default()).await?;
                orphans.flagged.push(item);
            }
        }
        Ok(orphans)
    })
    .await
}

/// [`flag_orphaned_items`], logging what it did (saying `found`, where it looked) or why it
/// could not look: a caller goes on either way, with what was done.
pub(crate) async fn flag_orphans_logged(
    shared: &JobShared,
    total: u32,
    alone: bool,
    found: &str,
) -> Orphans {
    match flag_orphaned_items(shared, total, alone).await {
        Ok(orphans) => {
            if !orphans.flagged.is_empty() {
                tracing::info!(job = %shared.name, items = ?orphans.flagged, "{found}; flagged them for failover");
            }
            if !orphans.released.is_empty() {
                tracing::info!(job = %shared.name, items = ?orphans.released, "{found}; removed the running markers of gone owners from items taken over");
            }
            orphans
        }
        Err(e) => {
            tracing::warn!(job = %shared.name, error = %e, "cannot check for items left running by instances that are gone");
            Orphans::default()
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
