//! [`TreeCache`]: a subtree mirrored in memory, kept current by a persistent recursive
//! watch, so readers (the console, the scheduler's admin API) never walk the registry per
//! request.
//!
//! Consistency: the watch is registered *before* the cold load, so a change made during the
//! load is either seen by the load or arrives as an event afterwards; every event re-reads
//! the node it names, so applying events in order converges on the registry's state. After
//! a reconnection (events may have been missed while disconnected) or a session expiry, the
//! whole subtree is reloaded and swapped in atomically; meanwhile readers see the last
//! state, and [`TreeCache::state`] says it may be stale.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;

use crate::node::{EventKind, SessionEvent, Stat};
use crate::{Registry, Result, path};

/// Nodes per multi-read request during a load.
const BATCH: usize = 128;
/// Multi-read requests in flight during a load.
const IN_FLIGHT: usize = 16;
const RETRY_START: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// One cached node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedNode {
    /// Data.
    pub data: Box<[u8]>,
    /// Stat as of the last read (its `num_children` may lag; use
    /// [`TreeView::children`]).
    pub stat: Stat,
}

/// Whether the cache reflects the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheState {
    /// Loading for the first time (only seen before [`TreeCache::start`] returns).
    Loading,
    /// Connected and following changes.
    Live,
    /// Disconnected or reloading: the last known state is served.
    Stale,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheEvent {
    /// A node was added or its data changed.
    Upserted(String),
    /// A node (and everything below it) was removed.
    Removed(String),
    /// The whole subtree was reloaded (after a reconnection or an expiry).
    Reloaded,
}

type Map = BTreeMap<Box<str>, CachedNode>;
/// A batch of paths and what reading them returned.
type Batch = (Vec<String>, Result<Vec<Option<crate::NodeData>>>);

struct Shared {
    tree: RwLock<Map>,
    events: broadcast::Sender<CacheEvent>,
    state: watch::Sender<CacheState>,
    /// Bumped after every applied change: a cheap "something changed" signal.
    generation: watch::Sender<u64>,
    /// Bumped after every applied change outside the quiet paths.
    loud_generation: AtomicU64,
    /// Quiet nodes in the tree now (changed under the tree's write lock).
    quiet_nodes: AtomicUsize,
    /// Paths mirrored for their presence only, whose changes are counted in the generation
    /// but neither in the loud generation nor broadcast.
    quiet: Option<fn(&str) -> bool>,
}

impl Shared {
    fn is_quiet(&self, p: &str) -> bool {
        self.quiet.is_some_and(|quiet| quiet(p))
    }

    /// Swaps in a freshly loaded tree.
    fn replace_tree(&self, map: Map) {
        let mut tree = self.tree.write().unwrap_or_else(|e| e.into_inner());
        let quiet = map.keys().filter(|p| self.is_quiet(p)).count();
        *tree = map;
        self.quiet_nodes.store(quiet, Ordering::Release);
    }

    fn bump(&self, event: CacheEvent) {
        let quiet = match (&event, self.quiet) {
            (CacheEvent::Upserted(p) | CacheEvent::Removed(p), Some(quiet)) => quiet(p),
            _ => false,
        };
        // The loud counter first: a reader that sees the new full generation sees it too.
        if !quiet {
            self.loud_generation.fetch_add(1, Ordering::AcqRel);
        }
        self.generation.send_modify(|g| *g += 1);
        if !quiet {
            let _ = self.events.send(event);
        }
    }
}

/// A consistent, read-locked view of the cache.
pub struct TreeView<'a>(&'a Map);

impl TreeView<'_> {
    /// One node.
    pub fn get(&self, p: &str) -> Option<&CachedNode> {
        self.0.get(p)
    }

    /// Names of the direct children of `p`, in ascending order. Costs one map seek per
    /// child and one per child subtree, however large the subtrees are.
    pub fn children(&self, p: &str) -> Vec<&str> {
        let prefix = if p == "/" {
            "/".to_owned()
        } else {
            format!("{p}/")
        };
        let mut out: Vec<&str> = Vec::new();
        let mut lower = Bound::Included(prefix.clone());
        loop {
            let next = self
                .0
                .range::<str, _>((lower.as_ref().map(String::as_str), Bound::Unbounded))
                .next();
            let Some((key, _)) = next else { break };
            let Some(rest) = key.strip_prefix(prefix.as_str()) else {
                break;
            };
            if rest.is_empty() {
                lower = Bound::Excluded(key.to_string());
                continue;
            }
            match rest.split_once('/') {
                // A descendant: skip the rest of that child's subtree in one seek
                // ('/' + U+10FFFF sorts after every descendant). Siblings such as `a-b`
                // sort between `a` and `a/…`, so they were visited already.
                Some((child, _)) => {
                    if out.last() != Some(&child) {
                        out.push(&key[prefix.len()..prefix.len() + child.len()]);
                    }
                    lower = Bound::Excluded(format!("{prefix}{child}/\u{10FFFF}"));
                }
                None => {
                    out.push(&key[prefix.len()..]);
                    lower = Bound::Excluded(key.to_string());
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Every node at or below `p`: `p` first, then its descendants in path order.
    pub fn subtree<'s>(
        &'s self,
        p: &'s str,
    ) -> impl Iterator<Item = (&'s str, &'s CachedNode)> + 's {
        subtree_entries(self.0, p)
    }

    /// Number of cached nodes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `p` (if cached) and then its descendants. Descendants are the contiguous key range
/// starting at `p/`; a sibling like `p-x` sorts between `p` and `p/`, so a plain range from
/// `p` would wrongly include it.
fn subtree_keys<'m>(map: &'m Map, p: &str) -> impl Iterator<Item = &'m str> + 'm {
    subtree_entries(map, p).map(|(k, _)| k)
}

/// `p` and everything below it, in path order, by one range scan.
fn subtree_entries<'m>(
    map: &'m Map,
    p: &str,
) -> impl Iterator<Item = (&'m str, &'m CachedNode)> + 'm {
    // One string, not a `format!` and a copy: a cache removes a subtree for every
    // deleted node (each fire's `running` marker).
    let mut prefix = String::with_capacity(p.len() + 1);
    prefix.push_str(p);
    if p != "/" {
        prefix.push('/');
    }
    let own = if p == "/" {
        None
    } else {
        map.get_key_value(p).map(|(k, v)| (&**k, v))
    };
    // The range keeps no borrow of its bound, so `prefix` can move into the filter.
    let below = map.range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded));
    own.into_iter().chain(
        below
            .map(|(k, v)| (&**k, v))
            .take_while(move |(k, _)| k.starts_with(prefix.as_str())),
    )
}

/// A watched, in-memory mirror of a subtree. Cheap to clone; the background task stops
/// when the last clone is dropped.
#[derive(Clone)]
pub struct TreeCache {
    shared: Arc<Shared>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TreeCache {
    /// Mirrors `root` (within the registry's namespace) and returns once the first load is
    /// complete.
    ///
    /// # Errors
    /// A registry error during the first load; later errors are retried in the
    /// background and show as [`CacheState::Stale`].
    pub async fn start(registry: Registry, root: &str) -> Result<TreeCache> {
        Self::start_with_quiet(registry, root, None).await
    }

    /// As [`TreeCache::start`], except for paths for which `quiet` holds: their changes are
    /// not sent to [`TreeCache::subscribe`]rs, nor counted in
    /// [`TreeCache::current_loud_generation`] (the generation still counts them), and they
    /// are mirrored for their presence only, with empty data and a default stat. For nodes
    /// that change all the time and whose existence is what matters (a scheduler's run
    /// markers): each event a subscriber would only discard still costs it a wake-up, and
    /// each re-read a request.
    ///
    /// # Errors
    /// As [`TreeCache::start`].
    pub async fn start_with_quiet(
        registry: Registry,
        root: &str,
        quiet: Option<fn(&str) -> bool>,
    ) -> Result<TreeCache> {
        path::validate(root)?;
        let (events, _) = broadcast::channel(4096);
        let (state, _) = watch::channel(CacheState::Loading);
        let (generation, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            tree: RwLock::new(Map::new()),
            events,
            state,
            generation,
            loud_generation: AtomicU64::new(0),
            quiet_nodes: AtomicUsize::new(0),
            quiet,
        });
        let session = registry.session_events();
        let stream = registry.watch_recursive(root).await?;
        let loaded = load_quietly(&registry, root, quiet).await?;
        shared.replace_tree(loaded);
        shared.state.send_replace(CacheState::Live);
        shared.bump(CacheEvent::Reloaded);
        let task = tokio::spawn(follow(
            registry,
            root.to_owned(),
            Arc::downgrade(&shared),
            stream,
            session,
        ));
        Ok(TreeCache {
            shared,
            _task: Arc::new(AbortOnDrop(task)),
        })
    }

    /// Runs `f` on a consistent view (a read lock: keep `f` short, never await in it).
    pub fn read<R>(&self, f: impl FnOnce(&TreeView<'_>) -> R) -> R {
        let tree = self.shared.tree.read().unwrap_or_else(|p| p.into_inner());
        f(&TreeView(&tree))
    }

    /// Change notifications from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CacheEvent> {
        self.shared.events.subscribe()
    }

    /// A counter bumped after every change: wait on it to refresh a view.
    pub fn generation(&self) -> watch::Receiver<u64> {
        self.shared.generation.subscribe()
    }

    /// The generation counter's value now. A view read after this call is at least as new
    /// as this generation, so whatever is derived from it may be reused for as long as the
    /// counter stays the same.
    pub fn current_generation(&self) -> u64 {
        *self.shared.generation.borrow()
    }

    /// A counter of the changes outside the quiet paths (see
    /// [`TreeCache::start_with_quiet`]), read as [`TreeCache::current_generation`] is: a
    /// view read after this call is at least as new as this count, so whatever is derived
    /// from the loud part of the tree may be reused for as long as it stays the same, however
    /// often the quiet paths change.
    pub fn current_loud_generation(&self) -> u64 {
        self.shared.loud_generation.load(Ordering::Acquire)
    }

    /// How many quiet nodes the cache holds now: none means that no quiet path needs
    /// looking up.
    pub fn quiet_nodes(&self) -> usize {
        self.shared.quiet_nodes.load(Ordering::Acquire)
    }

    /// Whether the cache is following the registry right now.
    pub fn state(&self) -> CacheState {
        *self.shared.state.borrow()
    }
}

/// Reads the whole subtree: a queue of paths, read in multi-read batches with several
/// batches in flight (never one round trip per node).
async fn load(registry: &Registry, root: &str) -> Result<Map> {
    let mut map = Map::new();
    let mut queue: VecDeque<String> = VecDeque::from([root.to_owned()]);
    let mut in_flight: JoinSet<Batch> = JoinSet::new();
    loop {
        while in_flight.len() < IN_FLIGHT && !queue.is_empty() {
            let batch: Vec<String> = queue.drain(..queue.len().min(BATCH)).collect();
            let r = registry.clone();
            in_flight.spawn(async move {
                let read = r.read_nodes(&batch).await;
                (batch, read)
            });
        }
        let Some(done) = in_flight.join_next().await else {
            break;
        };
        let (batch, read) =
            done.map_err(|e| crate::Error::Storage(format!("cache loader: {e}")))?;
        for (p, node) in batch.into_iter().zip(read?) {
            let Some(node) = node else { continue };
            queue.extend(node.children.iter().map(|c| path::join(&p, c)));
            map.insert(
                p.into_boxed_str(),
                CachedNode {
                    data: node.data.into_boxed_slice(),
                    stat: node.stat,
                },
            );
        }
    }
    Ok(map)
}

/// Removes `p` and everything below it; the paths removed.
fn remove_subtree(map: &mut Map, p: &str) -> Vec<Box<str>> {
    let doomed: Vec<Box<str>> = subtree_keys(map, p).map(Box::from).collect();
    for k in &doomed {
        map.remove(k);
    }
    doomed
}

/// Applies one watch event by re-reading the node it names. A quiet node is mirrored for
/// its presence only (see [`TreeCache::start_with_quiet`]): nothing is read for it.
async fn apply(registry: &Registry, shared: &Shared, kind: EventKind, p: &str) -> Result<()> {
    let quiet = shared.is_quiet(p);
    let node = match kind {
        EventKind::NodeCreated | EventKind::NodeDataChanged if quiet => Some(presence()),
        EventKind::NodeCreated | EventKind::NodeDataChanged => registry
            .read_nodes(&[p.to_owned()])
            .await?
            .pop()
            .flatten()
            .map(|n| CachedNode {
                data: n.data.into_boxed_slice(),
                stat: n.stat,
            }),
        _ => None,
    };
    let mut tree = shared.tree.write().unwrap_or_else(|e| e.into_inner());
    let event = match node {
        Some(n) => {
            if tree.insert(p.into(), n).is_none() && quiet {
                shared.quiet_nodes.fetch_add(1, Ordering::AcqRel);
            }
            CacheEvent::Upserted(p.to_owned())
        }
        None => {
            let gone = remove_subtree(&mut tree, p);
            let gone_quiet = gone.iter().filter(|k| shared.is_quiet(k)).count();
            if gone_quiet > 0 {
                shared.quiet_nodes.fetch_sub(gone_quiet, Ordering::AcqRel);
            }
            CacheEvent::Removed(p.to_owned())
        }
    };
    drop(tree);
    shared.bump(event);
    Ok(())
}

/// What a quiet node is cached as: that it exists, without its data or stat.
fn presence() -> CachedNode {
    CachedNode {
        data: Box::new([]),
        stat: Stat::default(),
    }
}

/// A cold load with the quiet nodes' data and stats dropped, as events would leave them.
async fn load_quietly(
    registry: &Registry,
    root: &str,
    quiet: Option<fn(&str) -> bool>,
) -> Result<Map> {
    let mut map = load(registry, root).await?;
    if let Some(quiet) = quiet {
        for (path, node) in &mut map {
            if quiet(path) {
                *node = presence();
            }
        }
    }
    Ok(map)
}

/// How long the first quiet event of a burst waits (see `follow`).
const QUIET_PAUSE: std::time::Duration = std::time::Duration::from_millis(15);

async fn follow(
    registry: Registry,
    root: String,
    shared: std::sync::Weak<Shared>,
    mut stream: crate::EventStream,
    mut session: crate::SessionEvents,
) {
    // When the last pause for a quiet event ended.
    let mut paused: Option<tokio::time::Instant> = None;
    loop {
        // Follow until something says events may have been missed.
        loop {
            tokio::select! {
                event = stream.next() => {
                    let Some(event) = event.filter(|e| e.kind != EventKind::SessionEnded) else { break };
                    let Some(mut live) = shared.upgrade() else { return };
                    if live.is_quiet(&event.path) {
                        // Quiet paths change in bursts (a scheduler's run markers: a
                        // thousand jobs due on one second write a thousand at once), and
                        // nothing waits on them: the first event of a burst waits out the
                        // burst, so that a thousand caches following it do not take the
                        // CPU from the fires still starting. Once per burst: what comes
                        // in the meantime is applied after it, in order, at once.
                        let now = tokio::time::Instant::now();
                        if paused.is_none_or(|end| now.duration_since(end) > QUIET_PAUSE) {
                            // Not held while waiting: a cache dropped meanwhile ends here.
                            drop(live);
                            tokio::time::sleep(QUIET_PAUSE).await;
                            paused = Some(tokio::time::Instant::now());
                            let Some(again) = shared.upgrade() else { return };
                            live = again;
                        }
                    }
                    if let Err(e) = apply(&registry, &live, event.kind, &event.path).await {
                        tracing::warn!(error = %e, path = %event.path, "cache: re-read failed; reloading");
                        break;
                    }
                }
                state = session.next() => {
                    let Some(shared) = shared.upgrade() else { return };
                    match state {
                        Some(SessionEvent::Suspended | SessionEvent::Expired) => {
                            shared.state.send_replace(CacheState::Stale);
                        }
                        Some(SessionEvent::Reconnected) => break,
                        Some(SessionEvent::Connected) => {}
                        Some(SessionEvent::Closed) | None => {
                            shared.state.send_replace(CacheState::Stale);
                            return;
                        }
                    }
                }
            }
        }
        // Re-register the watch, then reload and swap.
        let mut retry = RETRY_START;
        loop {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            shared.state.send_replace(CacheState::Stale);
            let attempt = async {
                let s = registry.watch_recursive(&root).await?;
                let map = load_quietly(&registry, &root, shared.quiet).await?;
                Ok::<_, crate::Error>((s, map))
            }
            .await;
            match attempt {
                Ok((s, map)) => {
                    stream = s;
                    shared.replace_tree(map);
                    shared.state.send_replace(CacheState::Live);
                    shared.bump(CacheEvent::Reloaded);
                    break;
                }
                Err(e) => {
                    drop(shared);
                    tracing::debug!(error = %e, "cache: reload failed; retrying");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> CachedNode {
        CachedNode {
            data: Box::new([]),
            stat: Stat::default(),
        }
    }

    #[test]
    fn children_skip_subtrees_and_respect_prefixes() {
        let mut map = Map::new();
        for p in ["/", "/a", "/a/x", "/a/x/y", "/a-b", "/a-b/z", "/ab", "/b"] {
            map.insert(p.into(), node());
        }
        let view = TreeView(&map);
        assert_eq!(view.children("/"), ["a", "a-b", "ab", "b"]);
        assert_eq!(view.children("/a"), ["x"]);
        assert!(view.children("/b").is_empty());
        let sub: Vec<&str> = view.subtree("/a").map(|(k, _)| k).collect();
        assert_eq!(sub, ["/a", "/a/x", "/a/x/y"]);
        remove_subtree(&mut map, "/a");
        assert_eq!(TreeView(&map).children("/"), ["a-b", "ab", "b"]);
    }
}
