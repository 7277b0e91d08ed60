//! [`Registry`]: one handle, one behaviour, over ZooKeeper or the embedded store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{broadcast, mpsc, oneshot};
use zookeeper_client as zk;

use crate::embedded::{EmbeddedSession, EmbeddedStore};
use crate::node::{
    CreateMode, CreateOptions, EventKind, NodeData, Op, OpResult, SessionEvent, Stat, WatchedEvent,
};
use crate::zookeeper::{ZkSession, ZkSettings};
use crate::{Error, Result, path};

#[derive(Clone)]
enum Backend {
    Embedded(Arc<EmbeddedSession>),
    Zk(Arc<ZkSession>),
}

/// A session on a registry, rooted at a namespace. Cheap to clone; clones share the
/// session (and its ephemeral nodes).
///
/// Paths are absolute within the namespace: `/orderJob/config` is
/// `/{namespace}/orderJob/config` on the server.
#[derive(Clone)]
pub struct Registry {
    backend: Backend,
    /// `""` for no namespace, else `/{namespace}`.
    root: Arc<str>,
    /// Operations issued through this handle and its clones.
    counts: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    reads: AtomicU64,
    writes: AtomicU64,
}

/// How many node operations a [`Registry`] handle (and its clones) has issued: what a
/// benchmark divides by fires to get "reads and writes per fire".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpCounts {
    /// Nodes read: `get`, `exists`, `children` (with or without a watch), and each node
    /// of a `read_nodes` batch.
    pub reads: u64,
    /// Nodes written: `create`, `set`, `delete`, each node of a `delete_recursive`
    /// counted once, and each write operation of a `multi` (checks excluded).
    pub writes: u64,
}

fn root_of(namespace: &str) -> Result<Arc<str>> {
    let ns = namespace.trim_matches('/');
    if ns.is_empty() {
        return Ok(Arc::from(""));
    }
    let root = format!("/{ns}");
    path::validate(&root)?;
    Ok(Arc::from(root))
}

fn strip(root: &str, abs: &str) -> String {
    if root.is_empty() {
        return abs.to_owned();
    }
    match abs.strip_prefix(root) {
        Some("") => "/".to_owned(),
        Some(rest) if rest.starts_with('/') => rest.to_owned(),
        _ => abs.to_owned(),
    }
}

impl Registry {
    /// Opens a session on a ZooKeeper ensemble and makes sure the namespace node exists.
    ///
    /// # Errors
    /// [`Error::Unreachable`], [`Error::AuthFailed`], or what creating the namespace
    /// reports (for example [`Error::NoAuth`]).
    pub async fn zookeeper(settings: ZkSettings) -> Result<Registry> {
        let root = root_of(&settings.namespace)?;
        let session = ZkSession::connect(settings).await?;
        let registry = Registry {
            backend: Backend::Zk(session),
            root,
            counts: Arc::default(),
        };
        registry.ensure_root().await?;
        Ok(registry)
    }

    /// Opens a session on an embedded store, rooted at `namespace`.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] for a malformed namespace, [`Error::Storage`] if the
    /// namespace node cannot be stored.
    pub async fn embedded(store: &EmbeddedStore, namespace: &str) -> Result<Registry> {
        let root = root_of(namespace)?;
        let registry = Registry {
            backend: Backend::Embedded(Arc::new(store.session())),
            root,
            counts: Arc::default(),
        };
        registry.ensure_root().await?;
        Ok(registry)
    }

    async fn ensure_root(&self) -> Result<()> {
        if self.root.is_empty() {
            return Ok(());
        }
        let created = match &self.backend {
            Backend::Embedded(s) => {
                s.create(&self.root, b"", CreateMode::Persistent, true)
                    .await
            }
            Backend::Zk(s) => {
                s.create(&self.root, b"", CreateMode::Persistent, true)
                    .await
            }
        };
        match created {
            Ok(_) | Err(Error::NodeExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn abs(&self, p: &str) -> Result<String> {
        path::validate(p)?;
        Ok(match (self.root.is_empty(), p) {
            (true, _) => p.to_owned(),
            (false, "/") => self.root.to_string(),
            // Not `format!`: every operation makes one.
            (false, _) => {
                let mut abs = String::with_capacity(self.root.len() + p.len());
                abs.push_str(&self.root);
                abs.push_str(p);
                abs
            }
        })
    }

    fn rel(&self, abs: &str) -> String {
        strip(&self.root, abs)
    }

    fn count_reads(&self, n: usize) {
        self.counts.reads.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn count_writes(&self, n: usize) {
        self.counts.writes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Operations issued so far through this handle and its clones.
    pub fn op_counts(&self) -> OpCounts {
        OpCounts {
            reads: self.counts.reads.load(Ordering::Relaxed),
            writes: self.counts.writes.load(Ordering::Relaxed),
        }
    }

    /// This session's id (ZooKeeper's, or the embedded store's).
    pub fn session_id(&self) -> i64 {
        match &self.backend {
            Backend::Embedded(s) => s.id(),
            Backend::Zk(s) => s.session_id(),
        }
    }

    /// Creates a node; returns its path (with the counter for sequential modes).
    ///
    /// # Errors
    /// [`Error::NodeExists`], [`Error::NoNode`] (missing parent), [`Error::InvalidPath`],
    /// [`Error::DataTooLarge`], [`Error::NoChildrenForEphemerals`], or a connection error.
    pub async fn create(&self, p: &str, data: &[u8], mode: CreateMode) -> Result<String> {
        self.create_with(p, data, mode.into()).await
    }

    /// [`Registry::create`] with options (creating missing parents).
    ///
    /// # Errors
    /// As [`Registry::create`].
    pub async fn create_with(&self, p: &str, data: &[u8], opts: CreateOptions) -> Result<String> {
        let abs = self.abs(p)?;
        self.count_writes(1);
        path::validate_data(data)?;
        let created = match &self.backend {
            Backend::Embedded(s) => s.create(&abs, data, opts.mode, opts.create_parents).await,
            Backend::Zk(s) => s.create(&abs, data, opts.mode, opts.create_parents).await,
        }
        .map_err(|e| self.relative_error(e))?;
        Ok(self.rel(&created))
    }

    /// Creates a node in `mode`, with missing parents; `Ok(false)` if it exists already.
    ///
    /// # Errors
    /// As [`Registry::create`], except [`Error::NodeExists`].
    pub async fn create_if_absent(&self, p: &str, data: &[u8], mode: CreateMode) -> Result<bool> {
        let opts = CreateOptions {
            mode,
            create_parents: true,
        };
        match self.create_with(p, data, opts).await {
            Ok(_) => Ok(true),
            Err(Error::NodeExists(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a persistent node (with missing parents), or sets its value if it exists.
    ///
    /// # Errors
    /// As [`Registry::create`] and [`Registry::set`].
    pub async fn put(&self, p: &str, data: &[u8]) -> Result<()> {
        if !self
            .create_if_absent(p, data, CreateMode::Persistent)
            .await?
        {
            self.set(p, data, None).await?;
        }
        Ok(())
    }

    /// Data and stat of a node.
    ///
    /// # Errors
    /// [`Error::NoNode`], [`Error::NoAuth`], or a connection error.
    pub async fn get(&self, p: &str) -> Result<(Vec<u8>, Stat)> {
        let abs = self.abs(p)?;
        self.count_reads(1);
        match &self.backend {
            Backend::Embedded(s) => s.get(&abs),
            Backend::Zk(s) => s.get(&abs).await,
        }
        .map_err(|e| self.relative_error(e))
    }

    /// [`Registry::get`], plus a watch that fires once on the node's next data change or
    /// deletion.
    ///
    /// # Errors
    /// As [`Registry::get`] (no watch is set on a missing node).
    pub async fn get_and_watch(&self, p: &str) -> Result<(Vec<u8>, Stat, Watch)> {
        let abs = self.abs(p)?;
        self.count_reads(1);
        let (data, stat, inner) = match &self.backend {
            Backend::Embedded(s) => s
                .get_and_watch(&abs)
                .map(|(d, st, w)| (d, st, WatchInner::Embedded(w))),
            Backend::Zk(s) => s
                .get_and_watch(&abs)
                .await
                .map(|(d, st, w)| (d, st, WatchInner::Zk(w))),
        }
        .map_err(|e| self.relative_error(e))?;
        Ok((data, stat, self.watch(inner)))
    }

    /// The node's stat, or `None` if it does not exist.
    ///
    /// # Errors
    /// A connection error.
    pub async fn exists(&self, p: &str) -> Result<Option<Stat>> {
        let abs = self.abs(p)?;
        self.count_reads(1);
        match &self.backend {
            Backend::Embedded(s) => s.exists(&abs),
            Backend::Zk(s) => s.exists(&abs).await,
        }
        .map_err(|e| self.relative_error(e))
    }

    /// [`Registry::exists`], plus a watch that fires once when the node is created,
    /// changed or deleted.
    ///
    /// # Errors
    /// A connection error.
    pub async fn exists_and_watch(&self, p: &str) -> Result<(Option<Stat>, Watch)> {
        let abs = self.abs(p)?;
        self.count_reads(1);
        let (stat, inner) = match &self.backend {
            Backend::Embedded(s) => s
                .exists_and_watch(&abs)
                .map(|(st, w)| (st, WatchInner::Embedded(w))),
            Backend::Zk(s) => s
                .exists_and_watch(&abs)
                .await
                .map(|(st, w)| (st, WatchInner::Zk(w))),
        }
        .map_err(|e| self.relative_error(e))?;
        Ok((stat, self.watch(inner)))
    }

    /// Names of the node's children (unsorted, as ZooKeeper returns them).
    ///
    /// # Errors
    /// [`Error::NoNode`] or a connection error.
    pub async fn children(&self, p: &str) -> Result<Vec<String>> {
        let abs = self.abs(p)?;
        self.count_reads(1);
        match &self.backend {
            Backend::Embedded(s) => s.children(&abs),
            Backend::Zk(s) => s.children(&abs).await,
        }
        .map_err(|e| self.relative_error(e))
    }

    /// [`Registry::children`], plus a watch that fires once when a child is added or
    /// removed, or the node is deleted.
    ///
    /// # Errors
    /// As [`Registry::children`].
    pub async fn children_and_watch(&self, p: &str) -> Result<(Vec<String>, Watch)> {
        let abs = self.abs(p)?;
        self.count_reads(1);
        let (children, inner) = match &self.backend {
            Backend::Embedded(s) => s
                .children_and_watch(&abs)
                .map(|(c, w)| (c, WatchInner::Embedded(w))),
            Backend::Zk(s) => s
                .children_and_watch(&abs)
                .await
                .map(|(c, w)| (c, WatchInner::Zk(w))),
        }
        .map_err(|e| self.relative_error(e))?;
        Ok((children, self.watch(inner)))
    }

    /// Sets data, optionally only if the node is at `version`.
    ///
    /// # Errors
    /// [`Error::NoNode`], [`Error::BadVersion`], [`Error::DataTooLarge`], or a
    /// connection error.
    pub async fn set(&self, p: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        let abs = self.abs(p)?;
        self.count_writes(1);
        path::validate_data(data)?;
        match &self.backend {
            Backend::Embedded(s) => s.set(&abs, data, version).await,
            Backend::Zk(s) => s.set(&abs, data, version).await,
        }
        .map_err(|e| self.relative_error(e))
    }

    /// Deletes a childless node, optionally only if it is at `version`.
    ///
    /// # Errors
    /// [`Error::NoNode`], [`Error::NotEmpty`], [`Error::BadVersion`], or a connection
    /// error.
    pub async fn delete(&self, p: &str, version: Option<i32>) -> Result<()> {
        let abs = self.abs(p)?;
        self.count_writes(1);
        match &self.backend {
            Backend::Embedded(s) => s.delete(&abs, version).await,
            Backend::Zk(s) => s.delete(&abs, version).await,
        }
        .map_err(|e| self.relative_error(e))
    }

    /// Deletes a node and everything below it. Atomic on the embedded store; on ZooKeeper
    /// it is depth-first, retried if children appear meanwhile.
    ///
    /// # Errors
    /// [`Error::NoNode`] for a missing node, or a connection error.
    pub async fn delete_recursive(&self, p: &str) -> Result<()> {
        let abs = self.abs(p)?;
        self.count_writes(1);
        match &self.backend {
            Backend::Embedded(s) => s.delete_recursive(&abs).await,
            Backend::Zk(s) => s.delete_recursive(&abs).await,
        }
        .map_err(|e| self.relative_error(e))
    }

    /// Data, stat and children of many nodes at once: one round trip on ZooKeeper (a
    /// multi-read), one lock on the embedded store. A missing node is `None`.
    ///
    /// # Errors
    /// An invalid path, an ACL refusal, or a connection error.
    pub async fn read_nodes(&self, paths: &[String]) -> Result<Vec<Option<NodeData>>> {
        let abs = paths
            .iter()
            .map(|p| self.abs(p))
            .collect::<Result<Vec<_>>>()?;
        self.count_reads(abs.len());
        match &self.backend {
            Backend::Embedded(s) => s.read_nodes(&abs),
            Backend::Zk(s) => s.read_nodes(&abs).await,
        }
        .map_err(|e| self.relative_error(e))
    }

    /// Applies every operation or none.
    ///
    /// # Errors
    /// [`Error::MultiFailed`] naming the first failing operation; nothing was applied.
    pub async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        // Each create's path as given: what it answers with, unless the create was
        // sequential (a create of a thousand `running` markers copied each answer back
        // out of its absolute path).
        let mut given: Vec<Option<String>> = Vec::with_capacity(ops.len());
        let ops = ops
            .into_iter()
            .enumerate()
            .map(|(index, op)| {
                let wrap = |e| Error::MultiFailed {
                    index,
                    source: Box::new(e),
                };
                Ok(match op {
                    Op::Check { path, version } => {
                        given.push(None);
                        Op::Check {
                            path: self.abs(&path).map_err(wrap)?,
                            version,
                        }
                    }
                    Op::Create { path, data, mode } => {
                        path::validate_data(&data).map_err(wrap)?;
                        let abs = self.abs(&path).map_err(wrap)?;
                        given.push(Some(path));
                        Op::Create {
                            path: abs,
                            data,
                            mode,
                        }
                    }
                    Op::Set {
                        path,
                        data,
                        version,
                    } => {
                        path::validate_data(&data).map_err(wrap)?;
                        given.push(None);
                        Op::Set {
                            path: self.abs(&path).map_err(wrap)?,
                            data,
                            version,
                        }
                    }
                    Op::Delete { path, version } => {
                        given.push(None);
                        Op::Delete {
                            path: self.abs(&path).map_err(wrap)?,
                            version,
                        }
                    }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.count_writes(
            ops.iter()
                .filter(|op| !matches!(op, Op::Check { .. }))
                .count(),
        );
        let results = match &self.backend {
            Backend::Embedded(s) => s.multi(ops).await,
            Backend::Zk(s) => s.multi(&ops).await,
        }
        .map_err(|e| self.relative_error(e))?;
        Ok(results
            .into_iter()
            .zip(given)
            .map(|(r, given)| match (r, given) {
                // Created where asked (the same length: a sequential create's name has
                // ten digits more).
                (OpResult::Create(p), Some(given)) if p.len() == self.root.len() + given.len() => {
                    OpResult::Create(given)
                }
                (OpResult::Create(p), _) => OpResult::Create(self.rel(&p)),
                (other, _) => other,
            })
            .collect())
    }

    /// A persistent, recursive watch: every create, data change and delete at or below
    /// `p`, until the session ends.
    ///
    /// # Errors
    /// A connection error.
    pub async fn watch_recursive(&self, p: &str) -> Result<EventStream> {
        let abs = self.abs(p)?;
        let inner = match &self.backend {
            Backend::Embedded(s) => s.watch_recursive(&abs).map(StreamInner::Embedded),
            Backend::Zk(s) => s
                .watch_recursive(&abs)
                .await
                .map(|w| StreamInner::Zk(Box::new(w))),
        }
        .map_err(|e| self.relative_error(e))?;
        Ok(EventStream {
            inner: Some(inner),
            root: self.root.clone(),
        })
    }

    /// Connection-state changes from now on.
    pub fn session_events(&self) -> SessionEvents {
        SessionEvents(match &self.backend {
            Backend::Embedded(s) => s.subscribe(),
            Backend::Zk(s) => s.subscribe(),
        })
    }

    /// Closes the session: its ephemeral nodes go, its watches end.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Embedded(s) => s.end(SessionEvent::Closed).await,
            Backend::Zk(s) => s.close().await,
        }
    }

    /// Expires the session as the server would after a timeout (embedded registries
    /// only; for ZooKeeper, tests steal the session instead).
    ///
    /// # Errors
    /// [`Error::Closed`] on a ZooKeeper registry.
    pub async fn expire_session(&self) -> Result<()> {
        match &self.backend {
            Backend::Embedded(s) => {
                s.end(SessionEvent::Expired).await;
                Ok(())
            }
            Backend::Zk(_) => Err(Error::Closed),
        }
    }

    /// The ZooKeeper client of this session, for tests that need raw access.
    #[doc(hidden)]
    pub fn zookeeper_client(&self) -> Option<zk::Client> {
        match &self.backend {
            Backend::Zk(s) => s.client().ok(),
            Backend::Embedded(_) => None,
        }
    }

    fn watch(&self, inner: WatchInner) -> Watch {
        Watch {
            inner,
            root: self.root.clone(),
        }
    }

    /// Errors name paths relative to the namespace, as the caller wrote them.
    fn relative_error(&self, e: Error) -> Error {
        match e {
            Error::NoNode(p) => Error::NoNode(self.rel(&p)),
            Error::NodeExists(p) => Error::NodeExists(self.rel(&p)),
            Error::NotEmpty(p) => Error::NotEmpty(self.rel(&p)),
            Error::BadVersion(p) => Error::BadVersion(self.rel(&p)),
            Error::NoAuth(p) => Error::NoAuth(self.rel(&p)),
            Error::NoChildrenForEphemerals(p) => Error::NoChildrenForEphemerals(self.rel(&p)),
            Error::MultiFailed { index, source } => Error::MultiFailed {
                index,
                source: Box::new(self.relative_error(*source)),
            },
            other => other,
        }
    }
}

enum WatchInner {
    Embedded(oneshot::Receiver<WatchedEvent>),
    Zk(zk::OneshotWatcher),
}

/// A one-shot watch.
pub struct Watch {
    inner: WatchInner,
    root: Arc<str>,
}

impl Watch {
    /// Waits for the event. A session that ends first yields [`EventKind::SessionEnded`].
    ///
    /// # Cancellation safety
    /// Dropping the future drops the watch.
    pub async fn changed(self) -> WatchedEvent {
        let mut event = match self.inner {
            WatchInner::Embedded(rx) => rx.await.unwrap_or(WatchedEvent {
                kind: EventKind::SessionEnded,
                path: String::new(),
            }),
            WatchInner::Zk(w) => crate::zookeeper::event(&w.changed().await),
        };
        event.path = strip(&self.root, &event.path);
        event
    }
}

enum StreamInner {
    Embedded(mpsc::UnboundedReceiver<WatchedEvent>),
    Zk(Box<zk::PersistentWatcher>),
}

/// Events of a persistent recursive watch.
pub struct EventStream {
    inner: Option<StreamInner>,
    root: Arc<str>,
}

impl EventStream {
    /// The next event; after [`EventKind::SessionEnded`], `None`.
    ///
    /// # Cancellation safety
    /// Cancel-safe: no event is lost if the future is dropped.
    pub async fn next(&mut self) -> Option<WatchedEvent> {
        let mut event = loop {
            let event = match self.inner.as_mut()? {
                StreamInner::Embedded(rx) => rx.recv().await.unwrap_or(WatchedEvent {
                    kind: EventKind::SessionEnded,
                    path: String::new(),
                }),
                StreamInner::Zk(w) => {
                    let raw = w.changed().await;
                    if raw.event_type == zk::EventType::Session
                        && !raw.session_state.is_terminated()
                    {
                        // Disconnections and reconnections: the watch survives them.
                        continue;
                    }
                    crate::zookeeper::event(&raw)
                }
            };
            break event;
        };
        if event.kind == EventKind::SessionEnded {
            self.inner = None;
        }
        event.path = strip(&self.root, &event.path);
        Some(event)
    }
}

/// Connection-state changes of a [`Registry`] session.
pub struct SessionEvents(broadcast::Receiver<SessionEvent>);

impl SessionEvents {
    /// The next state change; `None` once the session handle is gone.
    ///
    /// # Cancellation safety
    /// Cancel-safe.
    pub async fn next(&mut self) -> Option<SessionEvent> {
        loop {
            match self.0.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
