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
    /// Persistent recursive watches by root. An event is delivered by looking up the
    /// event's path and each of its ancestors (a few lookups), never by scanning every
    /// watch: a thousand jobs each watching their subtree must not make every write cost
    /// a thousand comparisons under the write lock.
    persistent: Streams,
}

fn event(kind: EventKind, path: &str) -> WatchedEvent {
    WatchedEvent {
        kind,
        path: path.to_owned(),
    }
}

/// `path`, each of its ancestors, and `/`.
fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let cur = next?;
        next = match cur.rfind('/') {
            _ if cur == "/" => None,
            Some(0) => Some("/"),
            Some(i) => Some(&cur[..i]),
            None => None,
        };
        Some(cur)
    })
}

fn fire(map: &mut Oneshots, path: &str, kind: EventKind) {
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
        rx
    }

    /// Delivers the events of one committed transaction, in order.
    pub fn fire(&mut self, events: &[(EventKind, String)]) {
        for (kind, path) in events {
            match kind {
                EventKind::NodeCreated | EventKind::NodeDataChanged => {
                    fire(&mut self.data, path, *kind);
                }
                EventKind::NodeDeleted => {
                    fire(&mut self.data, path, *kind);
                    fire(&mut self.child, path, *kind);
                }
                EventKind::NodeChildrenChanged => fire(&mut self.child, path, *kind),
                EventKind::SessionEnded => {}
            }
            if *kind != EventKind::NodeChildrenChanged {
                for root in self_and_ancestors(path) {
                    let Some(list) = self.persistent.get_mut(root) else {
                        continue;
                    };
                    // A closed receiver drops its watch.
                    list.retain(|(_, tx)| tx.send(event(*kind, path)).is_ok());
                    if list.is_empty() {
                        self.persistent.remove(root);
                    }
                }
            }
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
        w.fire(&[
            (EventKind::NodeCreated, "/a/x".into()),
            (EventKind::NodeChildrenChanged, "/a".into()),
        ]);
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
        assert_eq!(
            self_and_ancestors("/a/b/c").collect::<Vec<_>>(),
            ["/a/b/c", "/a/b", "/a", "/"]
        );
        assert_eq!(self_and_ancestors("/").collect::<Vec<_>>(), ["/"]);
        let mut gone = w.add_data(2, "/c");
        w.end_session(2);
        assert_eq!(
            gone.try_recv().expect("ended").kind,
            EventKind::SessionEnded
        );
    }
}
