//! The embedded registry's in-memory tree and its transactions.
//!
//! A write is staged in a [`Txn`] (copy-on-write over the tree), so a `multi` sees its own
//! earlier operations and a failure anywhere leaves the tree untouched. The store persists
//! the staged result first and only then [`Tree::apply`]s it, so nobody ever observes a
//! write that is not durable.
//!
//! Paths here are absolute and already checked: the store is reached only through
//! [`crate::Registry`], which validates every path it is given before prefixing its
//! validated namespace. Checking again here was a second pass over every path of every
//! write (a twentieth of the fire clock's work in a thousand-fire burst); debug builds
//! still assert it.

use std::collections::BTreeSet;
use std::collections::hash_map::Entry;

use foldhash::{HashMap, HashMapExt};

use crate::node::{CreateMode, EventKind, Stat};
use crate::path::{self, parent};
use crate::{Error, Result};

/// Debug builds check what release builds trust (see the module docs).
fn debug_assert_valid(p: &str) {
    debug_assert!(path::validate(p).is_ok(), "unchecked path {p:?}");
}

/// One node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub data: Vec<u8>,
    pub stat: Stat,
    pub children: BTreeSet<String>,
}

impl Node {
    fn root() -> Node {
        Node {
            data: Vec::new(),
            stat: Stat::default(),
            children: BTreeSet::new(),
        }
    }
}

/// The whole tree, by absolute path.
#[derive(Debug)]
pub(crate) struct Tree {
    pub nodes: HashMap<String, Node>,
    /// Last transaction id used.
    pub zxid: i64,
}

impl Tree {
    /// An empty tree (just `/`).
    pub fn new() -> Tree {
        Tree {
            nodes: {
                let mut nodes = HashMap::new();
                nodes.insert("/".to_owned(), Node::root());
                nodes
            },
            zxid: 0,
        }
    }

    /// Rebuilds the tree from persisted persistent nodes: children sets and counts are
    /// derived, never stored. Rows whose parent is missing are dropped (they cannot exist
    /// in a tree written through [`Txn`]); their paths are returned.
    pub fn from_rows(rows: Vec<(String, Vec<u8>, Stat)>) -> (Tree, Vec<String>) {
        let mut tree = Tree::new();
        let mut rows = rows;
        // Parents before children.
        rows.sort_by_key(|(p, _, _)| (p != "/", p.matches('/').count()));
        let mut orphans = Vec::new();
        for (p, data, mut stat) in rows {
            tree.zxid = tree.zxid.max(stat.czxid).max(stat.mzxid).max(stat.pzxid);
            if p == "/" {
                let root = tree.nodes.get_mut("/").expect("root exists");
                root.data = data;
                root.stat = Stat {
                    num_children: 0,
                    ..stat
                };
                continue;
            }
            let Some(parent_path) = parent(&p) else {
                continue;
            };
            let Some(parent_node) = tree.nodes.get_mut(parent_path) else {
                orphans.push(p);
                continue;
            };
            parent_node.children.insert(path::name(&p).to_owned());
            parent_node.stat.num_children = parent_node.children.len() as i32;
            stat.num_children = 0;
            stat.ephemeral_owner = 0;
            stat.data_length = data.len() as i32;
            tree.nodes.insert(
                p,
                Node {
                    data,
                    stat,
                    children: BTreeSet::new(),
                },
            );
        }
        (tree, orphans)
    }

    /// Replaces the nodes a transaction touched with its final state.
    pub fn apply(&mut self, staged: Staged) {
        for (p, node) in staged.nodes {
            match node {
                Some(n) => {
                    self.nodes.insert(p, n);
                }
                None => {
                    self.nodes.remove(&p);
                }
            }
        }
        self.zxid = staged.zxid;
    }
}

/// What a committed transaction changes.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    /// Final state of every touched node; `None` = deleted.
    pub nodes: HashMap<String, Option<Node>>,
    /// The transaction's id.
    pub zxid: i64,
    /// Watch events of the nodes created, deleted or changed, in order. A create or a
    /// delete also changes its parent's children: [`Watches::fire`] derives that event
    /// (a path copied per create for it was read only when the parent had a child watch).
    ///
    /// [`Watches::fire`]: super::watches::Watches::fire
    pub events: Vec<(EventKind, String)>,
    /// Ephemeral nodes created, with their owner.
    pub ephemerals_created: Vec<(i64, String)>,
    /// Ephemeral nodes deleted, with their owner.
    pub ephemerals_deleted: Vec<(i64, String)>,
    /// Whether a stored (persistent) node was created, changed or deleted. A transaction
    /// that only creates or deletes ephemeral nodes changes nothing but its parents'
    /// child counters, which matter only while ephemeral nodes can exist, that is while
    /// the process lives: it needs no commit to disk. (After a restart every ephemeral
    /// node is gone, and a counter read back from disk is still above the number of every
    /// stored sequential child, because creating one stores its parent.)
    pub durable: bool,
}

/// For each path that transactions staged earlier in the same batch (not yet applied)
/// touched, the index among them of the last one that did: its final state of the node is
/// what a later transaction sees. An index, not a copy of the node, so staging a batch of a
/// thousand writes does not copy every node they touch (a parent's child list included)
/// once more each.
pub(crate) type Overlay = HashMap<String, usize>;

/// The node at `p` in `base` changed by `prior` (transactions staged before, in one batch).
fn before<'a>(base: &'a Tree, prior: Prior<'a>, p: &str) -> Option<&'a Node> {
    match prior.and_then(|(overlay, staged)| staged.get(*overlay.get(p)?)?.nodes.get(p)) {
        Some(n) => n.as_ref(),
        None => base.nodes.get(p),
    }
}

/// Transactions staged earlier in the same batch, and the index of their touched paths.
type Prior<'a> = Option<(&'a Overlay, &'a [Staged])>;

/// A transaction being staged against a tree (and the batch staged before it).
pub(crate) struct Txn<'a> {
    base: &'a Tree,
    prior: Prior<'a>,
    staged: Staged,
    now: i64,
    session: i64,
}

impl<'a> Txn<'a> {
    /// Starts a transaction for `session` at wall time `now`.
    pub fn new(base: &'a Tree, session: i64, now: i64) -> Txn<'a> {
        Txn {
            base,
            prior: None,
            staged: Staged {
                zxid: base.zxid + 1,
                ..Staged::default()
            },
            now,
            session,
        }
    }

    /// Starts a transaction that sees `base` changed by `prior` (transactions staged
    /// before it in one batch, indexed by `overlay`, whose last id is `last_zxid`).
    pub fn after(
        base: &'a Tree,
        overlay: &'a Overlay,
        prior: &'a [Staged],
        last_zxid: i64,
        session: i64,
        now: i64,
    ) -> Txn<'a> {
        Txn {
            base,
            prior: Some((overlay, prior)),
            staged: Staged {
                zxid: last_zxid + 1,
                ..Staged::default()
            },
            now,
            session,
        }
    }

    /// Room for `n` more touched nodes: a multi knows its size, and growing the map node
    /// by node rehashed it over and over (a quarter of a batch's commit).
    pub fn reserve(&mut self, n: usize) {
        self.staged.nodes.reserve(n);
    }

    /// The node at `p` before this transaction.
    fn before(&self, p: &str) -> Option<&'a Node> {
        before(self.base, self.prior, p)
    }

    /// The node at `p` as this transaction sees it.
    pub fn get(&self, p: &str) -> Option<&Node> {
        match self.staged.nodes.get(p) {
            Some(n) => n.as_ref(),
            None => self.before(p),
        }
    }

    /// The node at `p`, staged for change: copied from before this transaction the first
    /// time. One map lookup if it is staged already, three the first time (here, the
    /// batch's overlay, the tree).
    fn get_mut(&mut self, p: &str) -> Option<&mut Node> {
        let (base, prior) = (self.base, self.prior);
        match self.staged.nodes.entry(p.to_owned()) {
            Entry::Occupied(e) => e.into_mut().as_mut(),
            Entry::Vacant(e) => {
                let copy = before(base, prior, p)?.clone();
                e.insert(Some(copy)).as_mut()
            }
        }
    }

    /// Creates a node; returns its actual path.
    pub fn create(&mut self, p: &str, data: &[u8], mode: CreateMode) -> Result<String> {
        debug_assert_valid(p);
        path::validate_data(data)?;
        if p == "/" {
            return Err(Error::NodeExists(p.to_owned()));
        }
        let parent_path = parent(p).unwrap_or("/");
        let zxid = self.staged.zxid;
        let now = self.now;
        // Staged for change at once, as a create that succeeds changes it: looking it up
        // first and staging it afterwards took twice the lookups (a thousand creates a
        // second on the fire clock's thread). If the create fails, so does the whole
        // transaction, and the unchanged copy is dropped with it.
        let parent_node = self
            .get_mut(parent_path)
            .ok_or_else(|| Error::NoNode(parent_path.to_owned()))?;
        if parent_node.stat.ephemeral_owner != 0 {
            return Err(Error::NoChildrenForEphemerals(parent_path.to_owned()));
        }
        let actual = if mode.is_sequential() {
            // ZooKeeper numbers sequential children with the parent's cversion.
            format!("{p}{:010}", parent_node.stat.cversion)
        } else {
            p.to_owned()
        };
        if self.get(&actual).is_some() {
            return Err(Error::NodeExists(actual));
        }
        let name = path::name(&actual).to_owned();
        let owner = if mode.is_ephemeral() { self.session } else { 0 };
        self.staged.durable |= owner == 0;
        let parent_node = self
            .staged
            .nodes
            .get_mut(parent_path)
            .and_then(Option::as_mut)
            .expect("parent staged above");
        parent_node.children.insert(name);
        parent_node.stat.cversion += 1;
        parent_node.stat.pzxid = zxid;
        parent_node.stat.num_children = parent_node.children.len() as i32;
        self.staged.nodes.insert(
            actual.clone(),
            Some(Node {
                data: data.to_vec(),
                stat: Stat {
                    czxid: zxid,
                    mzxid: zxid,
                    pzxid: zxid,
                    ctime: now,
                    mtime: now,
                    version: 0,
                    cversion: 0,
                    ephemeral_owner: owner,
                    num_children: 0,
                    data_length: data.len() as i32,
                },
                children: BTreeSet::new(),
            }),
        );
        if owner != 0 {
            self.staged.ephemerals_created.push((owner, actual.clone()));
        }
        self.staged
            .events
            .push((EventKind::NodeCreated, actual.clone()));
        Ok(actual)
    }

    /// Sets data.
    pub fn set(&mut self, p: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        debug_assert_valid(p);
        path::validate_data(data)?;
        let (zxid, now) = (self.staged.zxid, self.now);
        let node = self.get_mut(p).ok_or_else(|| Error::NoNode(p.to_owned()))?;
        if version.is_some_and(|v| v != node.stat.version) {
            return Err(Error::BadVersion(p.to_owned()));
        }
        node.data = data.to_vec();
        node.stat.version += 1;
        node.stat.mzxid = zxid;
        node.stat.mtime = now;
        node.stat.data_length = data.len() as i32;
        let stat = node.stat;
        self.staged.durable |= stat.ephemeral_owner == 0;
        self.staged
            .events
            .push((EventKind::NodeDataChanged, p.to_owned()));
        Ok(stat)
    }

    /// Deletes a childless node.
    pub fn delete(&mut self, p: &str, version: Option<i32>) -> Result<()> {
        debug_assert_valid(p);
        if p == "/" {
            return Err(Error::InvalidPath {
                path: p.to_owned(),
                reason: "the root cannot be deleted",
            });
        }
        let zxid = self.staged.zxid;
        let node = self.get(p).ok_or_else(|| Error::NoNode(p.to_owned()))?;
        if version.is_some_and(|v| v != node.stat.version) {
            return Err(Error::BadVersion(p.to_owned()));
        }
        if !node.children.is_empty() {
            return Err(Error::NotEmpty(p.to_owned()));
        }
        let owner = node.stat.ephemeral_owner;
        self.staged.durable |= owner == 0;
        let parent_path = parent(p).unwrap_or("/");
        self.staged.nodes.insert(p.to_owned(), None);
        if let Some(parent_node) = self.get_mut(parent_path) {
            parent_node.children.remove(path::name(p));
            parent_node.stat.cversion += 1;
            parent_node.stat.pzxid = zxid;
            parent_node.stat.num_children = parent_node.children.len() as i32;
        }
        if owner != 0 {
            self.staged.ephemerals_deleted.push((owner, p.to_owned()));
        }
        self.staged
            .events
            .push((EventKind::NodeDeleted, p.to_owned()));
        Ok(())
    }

    /// Fails unless the node exists with data version `version` (-1: any version, as in
    /// ZooKeeper; Curator's "check exists" is a check at -1).
    pub fn check(&self, p: &str, version: i32) -> Result<()> {
        debug_assert_valid(p);
        let node = self.get(p).ok_or_else(|| Error::NoNode(p.to_owned()))?;
        if version != -1 && node.stat.version != version {
            return Err(Error::BadVersion(p.to_owned()));
        }
        Ok(())
    }

    /// The staged result.
    pub fn finish(self) -> Staged {
        self.staged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(tree: &mut Tree, f: impl FnOnce(&mut Txn<'_>) -> Result<()>) -> Result<()> {
        let mut txn = Txn::new(tree, 7, 1000);
        f(&mut txn)?;
        let staged = txn.finish();
        tree.apply(staged);
        Ok(())
    }

    #[test]
    fn sequential_names_use_the_parent_cversion() {
        let mut tree = Tree::new();
        commit(&mut tree, |t| {
            t.create("/latch", b"", CreateMode::Persistent).map(drop)
        })
        .expect("create");
        let mut names = Vec::new();
        for _ in 0..3 {
            commit(&mut tree, |t| {
                names.push(t.create("/latch/_c_x-latch-", b"", CreateMode::EphemeralSequential)?);
                Ok(())
            })
            .expect("create seq");
        }
        assert_eq!(
            names,
            [
                "/latch/_c_x-latch-0000000000",
                "/latch/_c_x-latch-0000000001",
                "/latch/_c_x-latch-0000000002"
            ]
        );
        commit(&mut tree, |t| {
            t.delete("/latch/_c_x-latch-0000000002", None)
        })
        .expect("delete");
        // Deletes count too: numbers are never reused.
        commit(&mut tree, |t| {
            assert_eq!(
                t.create("/latch/n-", b"", CreateMode::PersistentSequential)?,
                "/latch/n-0000000004"
            );
            Ok(())
        })
        .expect("create seq");
    }

    #[test]
    fn failed_transactions_change_nothing() {
        let mut tree = Tree::new();
        commit(&mut tree, |t| {
            t.create("/a", b"1", CreateMode::Persistent).map(drop)
        })
        .expect("create");
        let before = tree.nodes.clone();
        let mut txn = Txn::new(&tree, 7, 2000);
        txn.set("/a", b"2", Some(0)).expect("set");
        assert_eq!(txn.get("/a").map(|n| n.data.clone()), Some(b"2".to_vec()));
        assert!(matches!(
            txn.set("/a", b"3", Some(0)),
            Err(Error::BadVersion(_))
        ));
        drop(txn);
        assert_eq!(tree.nodes, before);
    }

    #[test]
    fn rules_match_zookeeper() {
        let mut tree = Tree::new();
        commit(&mut tree, |t| {
            t.create("/e", b"", CreateMode::Ephemeral)?;
            t.create("/p", b"", CreateMode::Persistent)?;
            t.create("/p/c", b"", CreateMode::Persistent)?;
            Ok(())
        })
        .expect("setup");
        let mut txn = Txn::new(&tree, 7, 3000);
        assert!(matches!(
            txn.create("/e/x", b"", CreateMode::Persistent),
            Err(Error::NoChildrenForEphemerals(_))
        ));
        assert!(matches!(
            txn.create("/missing/x", b"", CreateMode::Persistent),
            Err(Error::NoNode(_))
        ));
        assert!(matches!(
            txn.create("/p", b"", CreateMode::Persistent),
            Err(Error::NodeExists(_))
        ));
        assert!(matches!(txn.delete("/p", None), Err(Error::NotEmpty(_))));
        assert!(matches!(
            txn.set("/p", &vec![0; crate::path::MAX_DATA_LEN + 1], None),
            Err(Error::DataTooLarge { .. })
        ));
        assert_eq!(tree.nodes["/p"].stat.num_children, 1);
        assert_eq!(tree.nodes["/e"].stat.ephemeral_owner, 7);
    }

    #[test]
    fn rebuilds_from_rows() {
        let mut tree = Tree::new();
        commit(&mut tree, |t| {
            t.create("/a", b"x", CreateMode::Persistent)?;
            t.create("/a/b", b"y", CreateMode::Persistent)?;
            Ok(())
        })
        .expect("setup");
        let rows = tree
            .nodes
            .iter()
            .map(|(p, n)| (p.clone(), n.data.clone(), n.stat))
            .chain([("/gone/child".to_owned(), vec![], Stat::default())])
            .collect();
        let (rebuilt, orphans) = Tree::from_rows(rows);
        assert_eq!(orphans, ["/gone/child"]);
        assert_eq!(rebuilt.nodes, tree.nodes);
        assert_eq!(rebuilt.zxid, tree.zxid);
    }
}
