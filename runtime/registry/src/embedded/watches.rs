//! Watch bookkeeping for the embedded registry, with ZooKeeper's delivery rules:
//! one-shot data watches (set by `get`/`exists`) fire on create, data change and delete;
//! one-shot child watches fire on child changes and on the node's deletion; persistent
//! recursive watches see create, data change and delete anywhere below their root.

use foldhash::HashMap;

use tokio::sync::{mpsc, oneshot};

use crate::node::{EventKind, WatchedEvent};

type Oneshots = HashMap<String, Vec<(i64, oneshot::Sender<WatchedEvent>)>>;
type Streams = HashMap<String, Vec<(i64, mpsc::UnboundedSender<WatchedEvent>)>>;

#[derive(Default)]
pub(crate) struct Watches {
    data: Oneshots,
    child: Oneshots,
    /// Persistent recursive watches by root. An event is delivered by looking up those
    /// of the event's path and its ancestors that are as long as some root (see
    /// `root_lens`), never by scanning every watch: a thousand jobs each watching their
    /// subtree must not make every write cost a thousand comparisons under the write lock.
    persistent: Streams,
    /// The distinct lengths of the roots in `persistent`. Roots are few in length (one per
    /// job, all at one depth, say), so of a path's half a dozen ancestors one or two are
    /// looked up, not all: hashing and looking up each was about a fifth of committing
    /// the fire clock's `running` markers.
    root_lens: Vec<usize>,
}

fn event(kind: EventKind, path: &str) -> WatchedEvent {
    WatchedEvent {
        kind,
        path: path.to_owned(),
    }
}

fn fire(map: &mut Oneshots, path: &str, kind: EventKind) {
    // No lookup (so no hash of the path) when nothing waits at all.
    if map.is_empty() {
        return;
    }
    for (_, tx) in map.remove(path).unwrap_or_default() {
        let _ = tx.send(event(kind, path));
    }
}

impl Watches {
    pub fn add_data(&mut self, session: i64, path: &str) -> oneshot::Receiver<WatchedEvent> {
        let (tx, rx) = oneshot::channel();
        self.data
            .entry(path.to_owned())
            .or_default()
            .push((session, tx));
        rx
    }

    pub fn add_child(&mut self, session: i64, path: &str) -> oneshot::Receiver<WatchedEvent> {
        let (tx, rx) = oneshot::channel();
        self.child
            .entry(path.to_owned())
            .or_default()
            .push((session, tx));
        rx
    }

    pub fn add_persistent(
        &mut self,
        session: i64,
        root: &str,
    ) -> mpsc::UnboundedReceiver<WatchedEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.persistent
            .entry(root.to_owned())
            .or_default()
            .push((session, tx));
        if !self.root_lens.contains(&root.len()) {
            self.root_lens.push(root.len());
        }
        rx
    }

    /// After roots went: the lengths of those left.
    fn recount_roots(&mut self) {
        self.root_lens.clear();
        for root in self.persistent.keys() {
            if !self.root_lens.contains(&root.len()) {
                self.root_lens.push(root.len());
            }
        }
    }

    /// Delivers the events of one committed transaction, in order: each node's event, and
    /// after a create or a delete the parent's children changed, as ZooKeeper orders them.
    /// A transaction's events name nodes only (see `Staged::events`).
    pub fn fire(&mut self, events: &[(EventKind, String)]) {
        for (kind, path) in events {
            fire(&mut self.data, path, *kind);
            if *kind == EventKind::NodeDeleted {
                fire(&mut self.child, path, *kind);
            }
            self.fire_persistent(*kind, path);
            if matches!(kind, EventKind::NodeCreated | EventKind::NodeDeleted)
                && let Some(parent) = crate::path::parent(path)
            {
                fire(&mut self.child, parent, EventKind::NodeChildrenChanged);
            }
        }
    }

    /// Tells the persistent watches at or above `path` (persistent watches are not told
    /// of children changes, as in ZooKeeper).
    fn fire_persistent(&mut self, kind: EventKind, path: &str) {
        let mut gone = false;
        for &len in &self.root_lens {
            let Some(root) = ancestor_of_len(path, len) else {
                continue;
            };
            let Some(list) = self.persistent.get_mut(root) else {
                continue;
            };
            // A closed receiver drops its watch.
            list.retain(|(_, tx)| tx.send(event(kind, path)).is_ok());
            if list.is_empty() {
                self.persistent.remove(root);
                gone = true;
            }
        }
        if gone {
            self.recount_roots();
        }
    }

    /// Ends every watch of `session`: each is told the session ended.
    pub fn end_session(&mut self, session: i64) {
        for map in [&mut self.data, &mut self.child] {
            for list in map.values_mut() {
                for (_, tx) in list.extract_if(.., |(s, _)| *s == session) {
                    let _ = tx.send(event(EventKind::SessionEnded, ""));
                }
            }
            map.retain(|_, list| !list.is_empty());
        }
        for list in self.persistent.values_mut() {
            for (_, tx) in list.extract_if(.., |(s, _)| *s == session) {
                let _ = tx.send(event(EventKind::SessionEnded, ""));
            }
        }
        self.persistent.retain(|_, list| !list.is_empty());
        self.recount_roots();
    }
}

/// Of `path` and its ancestors (`/` included), the one `len` bytes long, if any.
fn ancestor_of_len(path: &str, len: usize) -> Option<&str> {
    match len {
        1 => Some("/"),
        _ if len == path.len() => Some(path),
        _ if len < path.len() && path.as_bytes()[len] == b'/' => path.get(..len),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_rules() {
        let mut w = Watches::default();
        let mut data = w.add_data(1, "/a");
        let mut child = w.add_child(1, "/a");
        let mut tree = w.add_persistent(1, "/a");
        let mut other = w.add_persistent(1, "/b");
        // A create tells its parent's child watch, after the node's own event.
        w.fire(&[(EventKind::NodeCreated, "/a/x".into())]);
        assert_eq!(
            child.try_recv().expect("child").kind,
            EventKind::NodeChildrenChanged
        );
        assert!(
            data.try_recv().is_err(),
            "data watch must not see child changes"
        );
        assert_eq!(tree.try_recv().expect("tree").path, "/a/x");
        assert!(other.try_recv().is_err(), "/b must not see /a");
        w.fire(&[(EventKind::NodeDataChanged, "/a".into())]);
        assert_eq!(
            data.try_recv().expect("data").kind,
            EventKind::NodeDataChanged
        );
        assert_eq!(
            tree.try_recv().expect("tree").kind,
            EventKind::NodeDataChanged
        );
        // Siblings with a common prefix are not "below".
        w.fire(&[(EventKind::NodeDataChanged, "/ab".into())]);
        assert!(tree.try_recv().is_err());
        let mut everything = w.add_persistent(1, "/");
        w.fire(&[(EventKind::NodeDeleted, "/b/c/d".into())]);
        assert_eq!(everything.try_recv().expect("root").path, "/b/c/d");
        assert_eq!(other.try_recv().expect("b").path, "/b/c/d");
        assert!(tree.try_recv().is_err());
        let ancestors: Vec<&str> = (1..=6)
            .filter_map(|len| ancestor_of_len("/a/b/c", len))
            .collect();
        assert_eq!(ancestors, ["/", "/a", "/a/b", "/a/b/c"]);
        assert_eq!(ancestor_of_len("/", 1), Some("/"));
        assert_eq!(ancestor_of_len("/ab", 2), None, "/a is no ancestor of /ab");
        // Roots of several lengths below one path each see its events, and a root whose
        // receivers went stops being looked up.
        let mut deep = w.add_persistent(3, "/b/c");
        w.fire(&[(EventKind::NodeCreated, "/b/c/d/e".into())]);
        assert_eq!(deep.try_recv().expect("deep").path, "/b/c/d/e");
        assert_eq!(other.try_recv().expect("b").path, "/b/c/d/e");
        assert_eq!(everything.try_recv().expect("root").path, "/b/c/d/e");
        drop(deep);
        w.fire(&[(EventKind::NodeDeleted, "/b/c/d/e".into())]);
        assert!(!w.persistent.contains_key("/b/c"));
        assert!(!w.root_lens.contains(&4), "{:?}", w.root_lens);
        assert_eq!(other.try_recv().expect("b").kind, EventKind::NodeDeleted);
        let mut gone = w.add_data(2, "/c");
        w.end_session(2);
        assert_eq!(
            gone.try_recv().expect("ended").kind,
            EventKind::SessionEnded
        );
    }
}
