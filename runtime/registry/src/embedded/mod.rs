//! The embedded registry: ZooKeeper's data model in-process, persisted in SQLite.
//!
//! One [`EmbeddedStore`] per file; any number of sessions on it (each
//! [`crate::Registry::embedded`] handle is one session, as each ZooKeeper client is).
//!
//! Concurrency: writes are serialised by one committer at a time (see
//! [`EmbeddedSession::transact`]). A write is staged against a read-locked tree, committed to
//! disk, and only then applied under the tree's write lock together with its watch events.
//! Reads take the read lock only, so they never wait for the disk, and never see a write
//! that is not durable.

mod persist;
mod tree;
mod watches;

use std::any::Any;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use sqlx::SqlitePool;
use tokio::sync::{broadcast, mpsc, oneshot};

pub use persist::Durability;
use tree::{Staged, Tree, Txn};
use watches::Watches;

use crate::node::{CreateMode, NodeData, Op, OpResult, SessionEvent, Stat, WatchedEvent};
use crate::{Error, Result, path};

struct Session {
    /// The ephemeral nodes it owns. A hash set, not an ordered one: a fire adds and removes
    /// a marker here, and ordered inserts compared long shared path prefixes (a sixth of the
    /// embedded store's apply, for a thousand markers a second). Order matters only when
    /// the session ends: see [`Session::ephemerals_sorted`].
    ephemerals: foldhash::HashSet<String>,
}

impl Session {
    /// The ephemeral nodes, in reverse path order: the order a session's end deletes them
    /// in, so its watch events come in the same order every time. (Ephemeral nodes have no
    /// children, so any order would be valid.)
    fn ephemerals_sorted(&self) -> Vec<String> {
        let mut paths: Vec<String> = self.ephemerals.iter().cloned().collect();
        paths.sort_unstable_by(|a, b| b.cmp(a));
        paths
    }
}

struct State {
    tree: Tree,
    watches: Watches,
    /// Live sessions by id; a session missing here is closed or expired. Hashed with
    /// foldhash, not SipHash: every write looks its session up, and the ids are this
    /// process's own, not chosen by anyone who could make them collide.
    sessions: foldhash::HashMap<i64, Session>,
}

/// A queued transaction: its staging step, erased to one type.
type Work = Box<dyn FnOnce(&mut Txn<'_>) -> Result<Box<dyn Any + Send>> + Send>;
type Reply = oneshot::Sender<Result<Box<dyn Any + Send>>>;

struct Pending {
    session: i64,
    /// The session ends with this transaction, atomically: nothing (another task reacting
    /// to its watch events, say) can see the transaction applied and the session alive.
    ends_session: bool,
    work: Work,
    reply: Reply,
}

/// Transactions waiting for the next commit, and whether a committer is draining them.
#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    committing: bool,
}

struct Shared {
    /// See [`EmbeddedSession::transact`].
    queue: std::sync::Mutex<Queue>,
    state: RwLock<State>,
    db: Option<SqlitePool>,
    next_session: AtomicI64,
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave the tree half-applied (apply is a
        // plain map update), so a poisoned lock is still consistent.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Drains the queue batch by batch until it is empty, then stands down. Runs as its own
/// task, so no caller's cancellation can interrupt a commit that other callers' writes
/// share.
fn commit_loop(shared: Arc<Shared>) -> impl std::future::Future<Output = ()> + Send {
    /// Stands the committer down however it ends. If it ends early (its runtime shuts
    /// down and drops the task, even before ever running it), the writes still queued are
    /// dropped, and their callers hear that the write was interrupted instead of waiting
    /// forever; the next writer starts a new committer.
    struct StandDown {
        shared: Arc<Shared>,
        finished: bool,
    }
    impl StandDown {
        /// The queue is empty and `committing` already cleared: nothing left to undo.
        fn finish(&mut self) {
            self.finished = true;
        }
    }
    impl Drop for StandDown {
        fn drop(&mut self) {
            if !self.finished {
                let mut queue = self.shared.queue();
                queue.committing = false;
                queue.pending.clear();
            }
        }
    }
    // Made before the future, so that dropping the future unpolled still stands it down.
    let mut guard = StandDown {
        shared,
        finished: false,
    };
    async move {
        loop {
            let batch = {
                let mut queue = guard.shared.queue();
                if queue.pending.is_empty() {
                    // Under the queue's lock: a caller that queues after this sees
                    // `committing == false` and starts the next committer.
                    queue.committing = false;
                    drop(queue);
                    guard.finish();
                    return;
                }
                std::mem::take(&mut queue.pending)
            };
            commit_batch(&guard.shared, batch).await;
            // More writes came meanwhile: let whoever polls go on (a writer committing in
            // its own call, see `submit`, hands the rest to the committer's task here,
            // instead of committing other writers' work for as long as they keep coming).
            if !guard.shared.queue().pending.is_empty() {
                tokio::task::yield_now().await;
            }
        }
    }
}

/// An embedded registry's data: one SQLite file, or memory only.
#[derive(Clone)]
pub struct EmbeddedStore {
    shared: Arc<Shared>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl EmbeddedStore {
    /// Opens (creating if missing) a store persisted at `file`.
    ///
    /// # Errors
    /// [`Error::Storage`] when the file cannot be opened or is not a registry store.
    pub async fn open(file: &Path, durability: Durability) -> Result<EmbeddedStore> {
        let db = persist::open(file, durability).await?;
        let (tree, orphans) = Tree::from_rows(persist::load(&db).await?);
        for orphan in orphans {
            tracing::warn!(path = %orphan, "registry store holds a node without a parent; ignored");
        }
        Ok(Self::with(tree, Some(db)))
    }

    /// A store that lives in memory only (for tests and throw-away runs).
    pub fn in_memory() -> EmbeddedStore {
        Self::with(Tree::new(), None)
    }

    fn with(tree: Tree, db: Option<SqlitePool>) -> EmbeddedStore {
        EmbeddedStore {
            shared: Arc::new(Shared {
                queue: std::sync::Mutex::new(Queue::default()),
                state: RwLock::new(State {
                    tree,
                    watches: Watches::default(),
                    sessions: foldhash::HashMap::default(),
                }),
                db,
                next_session: AtomicI64::new(now_ms() << 16),
            }),
        }
    }

    /// Opens a new session on this store.
    pub(crate) fn session(&self) -> EmbeddedSession {
        let id = self.shared.next_session.fetch_add(1, Ordering::Relaxed);
        let (events, _) = broadcast::channel(64);
        let _ = events.send(SessionEvent::Connected);
        self.shared.write().sessions.insert(
            id,
            Session {
                ephemerals: foldhash::HashSet::default(),
            },
        );
        EmbeddedSession {
            shared: self.shared.clone(),
            id,
            events,
            background_end: false,
        }
    }

    /// Number of nodes, the root included.
    pub fn node_count(&self) -> usize {
        self.shared.read().tree.nodes.len()
    }
}

/// Stages, commits and applies a batch of queued transactions (by the one committer).
async fn commit_batch(shared: &Shared, batch: Vec<Pending>) {
    let now = now_ms();
    let mut staged_all: Vec<Staged> = Vec::with_capacity(batch.len());
    // Per staged transaction: the session it ends, if it does.
    let mut ends: Vec<Option<i64>> = Vec::with_capacity(batch.len());
    let mut answers: Vec<(Reply, Box<dyn Any + Send>)> = Vec::with_capacity(batch.len());
    {
        let state = shared.read();
        let mut overlay = tree::Overlay::default();
        // How many of `staged_all` the overlay indexes.
        let mut indexed = 0;
        let mut last_zxid = state.tree.zxid;
        // Sessions that end earlier in this batch: their later writes find them expired.
        let mut ending: Vec<i64> = Vec::new();
        for Pending {
            session,
            ends_session,
            work,
            reply,
        } in batch
        {
            // A caller that gave up before its turn: its write never happens.
            if reply.is_closed() {
                continue;
            }
            if !state.sessions.contains_key(&session) || ending.contains(&session) {
                let _ = reply.send(Err(Error::SessionExpired));
                continue;
            }
            // The transactions staged before this one are indexed only now that another
            // follows them: the last of a batch never needs it, and a batch is often one
            // multi (the fire clock's `running` markers), whose index copied every path
            // it touched into the overlay for nothing.
            for (i, staged) in staged_all.iter().enumerate().skip(indexed) {
                overlay.reserve(staged.nodes.len());
                for path in staged.nodes.keys() {
                    overlay.insert(path.clone(), i);
                }
            }
            indexed = staged_all.len();
            let mut txn = Txn::after(&state.tree, &overlay, &staged_all, last_zxid, session, now);
            match work(&mut txn) {
                Ok(value) => {
                    let staged = txn.finish();
                    last_zxid = staged.zxid;
                    if ends_session {
                        ending.push(session);
                    }
                    staged_all.push(staged);
                    ends.push(ends_session.then_some(session));
                    answers.push((reply, value));
                }
                // Failed during staging: nothing of it is kept; the rest go on.
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }
    if staged_all.is_empty() {
        return;
    }
    if let Some(db) = &shared.db
        && let Err(e) = persist::commit(db, &staged_all).await
    {
        // None of the batch is applied: every caller hears why.
        for (reply, _) in answers {
            let _ = reply.send(Err(Error::Storage(e.to_string())));
        }
        return;
    }
    // Each caller hears as soon as its own transaction is applied (all of them are durable
    // by now): a batch of a thousand writes lets its first writers go on while the rest
    // are applied.
    for ((staged, ends), (reply, value)) in staged_all.into_iter().zip(ends).zip(answers) {
        apply(shared, staged, ends);
        let _ = reply.send(Ok(value));
    }
}

/// Applies one staged transaction and fires its watches; with `ends`, that session ends in
/// the same step (its watches told, and no later write of it accepted).
fn apply(shared: &Shared, mut staged: Staged, ends: Option<i64>) {
    let mut state = shared.write();
    // Moved into their sessions, not copied: nothing reads them after.
    for (owner, p) in std::mem::take(&mut staged.ephemerals_created) {
        if let Some(s) = state.sessions.get_mut(&owner) {
            s.ephemerals.insert(p);
        }
    }
    for (owner, p) in &staged.ephemerals_deleted {
        if let Some(s) = state.sessions.get_mut(owner) {
            s.ephemerals.remove(p);
        }
    }
    let events = std::mem::take(&mut staged.events);
    state.tree.apply(staged);
    state.watches.fire(&events);
    if let Some(session) = ends {
        end_session_locked(&mut state, session);
    }
}

/// Ends `id` under the write lock: removes the session and whatever ephemeral nodes it
/// still owns, in memory only (ephemeral nodes are never stored), and ends its watches.
fn end_session_locked(state: &mut State, id: i64) {
    let Some(session) = state.sessions.remove(&id) else {
        return;
    };
    let mut staged = {
        let mut txn = Txn::new(&state.tree, id, now_ms());
        for p in session.ephemerals_sorted() {
            if txn.get(&p).is_some() {
                let _ = txn.delete(&p, None);
            }
        }
        txn.finish()
    };
    let events = std::mem::take(&mut staged.events);
    state.tree.apply(staged);
    state.watches.fire(&events);
    state.watches.end_session(id);
}

/// One session on an [`EmbeddedStore`]. Its paths are absolute and were validated by the
/// [`Registry`](crate::Registry) that owns it (see `tree`'s module docs).
pub(crate) struct EmbeddedSession {
    shared: Arc<Shared>,
    id: i64,
    events: broadcast::Sender<SessionEvent>,
    /// Set on the copy that ends a dropped session in the background: if that task is
    /// cancelled (runtime shutdown), the copy ends the session in memory instead of
    /// spawning yet another task.
    background_end: bool,
}

impl EmbeddedSession {
    pub fn id(&self) -> i64 {
        self.id
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    fn alive(&self, state: &State) -> Result<()> {
        if state.sessions.contains_key(&self.id) {
            Ok(())
        } else {
            Err(Error::SessionExpired)
        }
    }

    /// Stages `f` as one transaction of `session`, commits it, applies it, and returns
    /// what `f` returned.
    ///
    /// Group commit: the caller queues its work; the first caller to find no committer at
    /// work starts one (a task of its own). The committer drains the whole queue: it stages
    /// each transaction in order (each sees the ones before it), commits them all in one
    /// SQLite transaction, then applies them in order, firing each one's watches and
    /// answering its caller; and again, until the queue is empty. Writers that queue while a commit
    /// is in progress thus share the next one, so concurrent writes cost one disk commit
    /// per batch rather than one each, and a caller waits only for its own answer (never
    /// for a lock handed from caller to caller, which would serialise a thousand
    /// simultaneous writers into a thousand task switches). Nothing is visible before it is
    /// durable, and the order of application is the order of staging.
    async fn transact<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Txn<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.submit(false, f).await
    }

    /// [`Self::transact`], for work of `session` on behalf of this session, ending it with
    /// the transaction when `ends_session`.
    async fn submit<T: Send + 'static>(
        &self,
        ends_session: bool,
        f: impl FnOnce(&mut Txn<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let session = self.id;
        let (tx, rx) = oneshot::channel();
        let work: Work = Box::new(move |txn| f(txn).map(|v| Box::new(v) as Box<dyn Any + Send>));
        let start = {
            let mut queue = self.shared.queue();
            queue.pending.push(Pending {
                session,
                ends_session,
                work,
                reply: tx,
            });
            !std::mem::replace(&mut queue.committing, true)
        };
        if start {
            let mut committer = Box::pin(commit_loop(self.shared.clone()));
            match tokio::runtime::Handle::try_current() {
                // The committer's first poll happens here, in this caller: what needs no
                // disk (a batch of ephemeral `running` markers) is applied and answered
                // before this returns, instead of after a runtime thread wakes up for a
                // new task (0.4-0.9 ms measured on an idle 2-vCPU VM, for every fire of a
                // second's burst). This is one synchronous call, so no cancellation of the
                // caller can cut it short; whatever waits for the disk, or comes after the
                // first batch, goes on in a task of its own, which polls it again with a
                // real waker.
                Ok(runtime) => {
                    let noop = &mut std::task::Context::from_waker(std::task::Waker::noop());
                    if committer.as_mut().poll(noop).is_pending() {
                        drop(runtime.spawn(committer));
                    }
                }
                // Outside a Tokio runtime (a plain executor): commit in this caller.
                Err(_) => committer.await,
            }
        }
        match rx.await {
            Ok(Ok(value)) => Ok(*value
                .downcast::<T>()
                .map_err(|_| Error::Storage("transaction result of an unexpected type".into()))?),
            Ok(Err(e)) => Err(e),
            // The committer is gone without an answer (the runtime shut down mid-commit).
            Err(_) => Err(Error::Storage("the write was interrupted".into())),
        }
    }

    pub async fn create(
        &self,
        p: &str,
        data: &[u8],
        mode: CreateMode,
        parents: bool,
    ) -> Result<String> {
        let (p, data) = (p.to_owned(), data.to_vec());
        self.transact(move |txn| {
            if parents {
                let mut missing = Vec::new();
                let mut cur = path::parent(&p);
                while let Some(ancestor) = cur.filter(|a| *a != "/") {
                    if txn.get(ancestor).is_some() {
                        break;
                    }
                    missing.push(ancestor.to_owned());
                    cur = path::parent(ancestor);
                }
                for ancestor in missing.iter().rev() {
                    txn.create(ancestor, b"", CreateMode::Persistent)?;
                }
            }
            txn.create(&p, &data, mode)
        })
        .await
    }

    pub async fn set(&self, p: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        let (p, data) = (p.to_owned(), data.to_vec());
        self.transact(move |txn| txn.set(&p, &data, version)).await
    }

    pub async fn delete(&self, p: &str, version: Option<i32>) -> Result<()> {
        let p = p.to_owned();
        self.transact(move |txn| txn.delete(&p, version)).await
    }

    /// Deletes `p` and everything below it in one transaction.
    pub async fn delete_recursive(&self, p: &str) -> Result<()> {
        let p = p.to_owned();
        self.transact(move |txn| {
            let mut order = Vec::new();
            let mut stack = vec![p];
            while let Some(cur) = stack.pop() {
                let node = txn.get(&cur).ok_or_else(|| Error::NoNode(cur.clone()))?;
                stack.extend(node.children.iter().map(|c| path::join(&cur, c)));
                order.push(cur);
            }
            for node in order.iter().rev() {
                txn.delete(node, None)?;
            }
            Ok(())
        })
        .await
    }

    pub async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        self.transact(move |txn| {
            // Each operation touches its node and (creates, deletes) its parent.
            txn.reserve(ops.len() * 2);
            ops.iter()
                .enumerate()
                .map(|(index, op)| {
                    match op {
                        Op::Check { path, version } => {
                            txn.check(path, *version).map(|()| OpResult::Check)
                        }
                        Op::Create { path, data, mode } => {
                            txn.create(path, data, *mode).map(OpResult::Create)
                        }
                        Op::Set {
                            path,
                            data,
                            version,
                        } => txn.set(path, data, *version).map(OpResult::Set),
                        Op::Delete { path, version } => {
                            txn.delete(path, *version).map(|()| OpResult::Delete)
                        }
                    }
                    .map_err(|e| Error::MultiFailed {
                        index,
                        source: Box::new(e),
                    })
                })
                .collect()
        })
        .await
    }

    /// Runs `f` on the node at `p` under the read lock.
    fn with_node<T>(&self, p: &str, f: impl FnOnce(&tree::Node) -> T) -> Result<T> {
        let state = self.shared.read();
        self.alive(&state)?;
        let node = state
            .tree
            .nodes
            .get(p)
            .ok_or_else(|| Error::NoNode(p.to_owned()))?;
        Ok(f(node))
    }

    pub fn get(&self, p: &str) -> Result<(Vec<u8>, Stat)> {
        self.with_node(p, |n| (n.data.clone(), n.stat))
    }

    pub fn exists(&self, p: &str) -> Result<Option<Stat>> {
        let state = self.shared.read();
        self.alive(&state)?;
        Ok(state.tree.nodes.get(p).map(|n| n.stat))
    }

    pub fn children(&self, p: &str) -> Result<Vec<String>> {
        self.with_node(p, |n| n.children.iter().cloned().collect())
    }

    pub fn read_nodes(&self, paths: &[String]) -> Result<Vec<Option<NodeData>>> {
        let state = self.shared.read();
        self.alive(&state)?;
        Ok(paths
            .iter()
            .map(|p| {
                state.tree.nodes.get(p).map(|n| NodeData {
                    data: n.data.clone(),
                    stat: n.stat,
                    children: n.children.iter().cloned().collect(),
                })
            })
            .collect())
    }

    // The watch-setting reads take the write lock: reading and registering must be atomic
    // with respect to writers, or an event between the two would be lost.

    pub fn get_and_watch(
        &self,
        p: &str,
    ) -> Result<(Vec<u8>, Stat, oneshot::Receiver<WatchedEvent>)> {
        let mut state = self.shared.write();
        self.alive(&state)?;
        let (data, stat) = {
            let node = state
                .tree
                .nodes
                .get(p)
                .ok_or_else(|| Error::NoNode(p.to_owned()))?;
            (node.data.clone(), node.stat)
        };
        Ok((data, stat, state.watches.add_data(self.id, p)))
    }

    pub fn exists_and_watch(
        &self,
        p: &str,
    ) -> Result<(Option<Stat>, oneshot::Receiver<WatchedEvent>)> {
        let mut state = self.shared.write();
        self.alive(&state)?;
        let stat = state.tree.nodes.get(p).map(|n| n.stat);
        Ok((stat, state.watches.add_data(self.id, p)))
    }

    pub fn children_and_watch(
        &self,
        p: &str,
    ) -> Result<(Vec<String>, oneshot::Receiver<WatchedEvent>)> {
        let mut state = self.shared.write();
        self.alive(&state)?;
        let children = state
            .tree
            .nodes
            .get(p)
            .ok_or_else(|| Error::NoNode(p.to_owned()))?
            .children
            .iter()
            .cloned()
            .collect();
        Ok((children, state.watches.add_child(self.id, p)))
    }

    pub fn watch_recursive(&self, p: &str) -> Result<mpsc::UnboundedReceiver<WatchedEvent>> {
        let mut state = self.shared.write();
        self.alive(&state)?;
        Ok(state.watches.add_persistent(self.id, p))
    }

    /// Ends the session: its ephemeral nodes are deleted (firing watches), its own
    /// watches are told, and `event` (Closed or Expired) is published.
    pub async fn end(&self, event: SessionEvent) {
        let ephemerals: Vec<String> = {
            let state = self.shared.read();
            match state.sessions.get(&self.id) {
                Some(s) => s.ephemerals_sorted(),
                None => return,
            }
        };
        // Through a normal transaction, so the parents' counters are stored, and ending the
        // session in the same step (as a ZooKeeper server expires a session: its ephemeral
        // nodes and the session go together; nobody reacting to the deletions can still
        // write as the session).
        let deleted = self
            .submit(true, move |txn| {
                for p in &ephemerals {
                    if txn.get(p).is_some() {
                        txn.delete(p, None)?;
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = deleted {
            tracing::error!(error = %e, session = self.id, "storing the end of an embedded session");
        }
        self.end_in_memory();
        let _ = self.events.send(event);
    }

    /// Removes the session and whatever ephemeral nodes it still owns, in memory only
    /// (ephemeral nodes are never stored), and ends its watches.
    fn end_in_memory(&self) {
        end_session_locked(&mut self.shared.write(), self.id);
    }

    pub fn is_alive(&self) -> bool {
        self.shared.read().sessions.contains_key(&self.id)
    }
}

impl Drop for EmbeddedSession {
    fn drop(&mut self) {
        // The last handle of a live session went away without close(): end it, as
        // ZooKeeper would after the session timeout, so its ephemeral nodes do not
        // outlive it.
        if !self.is_alive() {
            return;
        }
        let runtime = tokio::runtime::Handle::try_current();
        match runtime {
            Ok(rt) if !self.background_end => {
                let session = EmbeddedSession {
                    shared: self.shared.clone(),
                    id: self.id,
                    events: self.events.clone(),
                    background_end: true,
                };
                rt.spawn(async move { session.end(SessionEvent::Closed).await });
            }
            _ => {
                self.end_in_memory();
                let _ = self.events.send(SessionEvent::Closed);
            }
        }
    }
}
