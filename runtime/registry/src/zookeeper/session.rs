//! A supervised ZooKeeper session: reports connection states and, after an expiry, opens
//! a new session with exponential backoff.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tokio::sync::broadcast;
use zookeeper_client as zk;

use super::{ZkSettings, map_zk};
use crate::node::{
    CreateMode, EventKind, NodeData, Op, OpResult, SessionEvent, Stat, WatchedEvent,
};
use crate::{Error, Result, path};

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

pub(crate) struct ZkSession {
    /// The current client: replaced (never mutated) after an expiry, taken on close.
    /// Operations clone it; the session closes when the last clone is dropped.
    client: RwLock<Option<zk::Client>>,
    settings: ZkSettings,
    events: broadcast::Sender<SessionEvent>,
    supervisor: RwLock<Option<tokio::task::JoinHandle<()>>>,
}

fn mode(m: CreateMode) -> zk::CreateMode {
    match m {
        CreateMode::Persistent => zk::CreateMode::Persistent,
        CreateMode::Ephemeral => zk::CreateMode::Ephemeral,
        CreateMode::PersistentSequential => zk::CreateMode::PersistentSequential,
        CreateMode::EphemeralSequential => zk::CreateMode::EphemeralSequential,
    }
}

fn stat(s: &zk::Stat) -> Stat {
    Stat {
        czxid: s.czxid,
        mzxid: s.mzxid,
        pzxid: s.pzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        cversion: s.cversion,
        ephemeral_owner: s.ephemeral_owner,
        num_children: s.num_children,
        data_length: s.data_length,
    }
}

pub(crate) fn event(e: &zk::WatchedEvent) -> WatchedEvent {
    let kind = match e.event_type {
        zk::EventType::NodeCreated => EventKind::NodeCreated,
        zk::EventType::NodeDeleted => EventKind::NodeDeleted,
        zk::EventType::NodeDataChanged => EventKind::NodeDataChanged,
        zk::EventType::NodeChildrenChanged => EventKind::NodeChildrenChanged,
        zk::EventType::Session => EventKind::SessionEnded,
    };
    WatchedEvent {
        kind,
        path: if kind == EventKind::SessionEnded {
            String::new()
        } else {
            e.path.clone()
        },
    }
}

async fn open_client(settings: &ZkSettings) -> Result<zk::Client> {
    let mut connector = zk::Client::connector().with_session_timeout(settings.session_timeout);
    if let Some(digest) = &settings.digest {
        connector = connector.with_auth("digest", digest.as_bytes());
    }
    let timeout = settings.session_timeout;
    tokio::time::timeout(timeout, connector.connect(&settings.connect.to_string()))
        .await
        .map_err(|_| Error::Unreachable {
            connect: settings.connect.to_string(),
            timeout,
        })?
        .map_err(|e| match e {
            zk::Error::NoHosts | zk::Error::Timeout => Error::Unreachable {
                connect: settings.connect.to_string(),
                timeout,
            },
            other => map_zk("/", other),
        })
}

impl ZkSession {
    /// Connects, then watches the session in the background.
    pub async fn connect(settings: ZkSettings) -> Result<Arc<ZkSession>> {
        let client = open_client(&settings).await?;
        let (events, _) = broadcast::channel(64);
        let _ = events.send(SessionEvent::Connected);
        let session = Arc::new(ZkSession {
            client: RwLock::new(Some(client)),
            settings,
            events,
            supervisor: RwLock::new(None),
        });
        let task = tokio::spawn(supervise(Arc::downgrade(&session)));
        *session
            .supervisor
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(session)
    }

    pub fn client(&self) -> Result<zk::Client> {
        self.client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(Error::Closed)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    pub fn session_id(&self) -> i64 {
        self.client().map_or(0, |c| c.session_id().0)
    }

    /// Nodes we create get Curator's ACLs: creator-all when a digest is set (only holders
    /// of that digest can read them), open otherwise.
    fn acls(&self) -> zk::Acls<'static> {
        if self.settings.digest.is_some() {
            zk::Acls::creator_all()
        } else {
            zk::Acls::anyone_all()
        }
    }

    pub async fn create(
        &self,
        p: &str,
        data: &[u8],
        m: CreateMode,
        parents: bool,
    ) -> Result<String> {
        let client = self.client()?;
        let options = mode(m).with_acls(self.acls());
        let mut attempt = client.create(p, data, &options).await;
        if parents && matches!(attempt, Err(zk::Error::NoNode)) {
            self.create_ancestors(&client, p).await?;
            attempt = client.create(p, data, &options).await;
        }
        let (_, seq) = attempt.map_err(|e| map_zk(p, e))?;
        Ok(if m.is_sequential() {
            format!("{p}{seq}")
        } else {
            p.to_owned()
        })
    }

    async fn create_ancestors(&self, client: &zk::Client, p: &str) -> Result<()> {
        let mut ancestors = Vec::new();
        let mut cur = path::parent(p);
        while let Some(a) = cur.filter(|a| *a != "/") {
            ancestors.push(a.to_owned());
            cur = path::parent(a);
        }
        let options = zk::CreateMode::Persistent.with_acls(self.acls());
        for a in ancestors.iter().rev() {
            match client.create(a, b"", &options).await {
                Ok(_) | Err(zk::Error::NodeExists) => {}
                Err(e) => return Err(map_zk(a, e)),
            }
        }
        Ok(())
    }

    pub async fn get(&self, p: &str) -> Result<(Vec<u8>, Stat)> {
        let (data, s) = self.client()?.get_data(p).await.map_err(|e| map_zk(p, e))?;
        Ok((data, stat(&s)))
    }

    pub async fn get_and_watch(&self, p: &str) -> Result<(Vec<u8>, Stat, zk::OneshotWatcher)> {
        let (data, s, w) = self
            .client()?
            .get_and_watch_data(p)
            .await
            .map_err(|e| map_zk(p, e))?;
        Ok((data, stat(&s), w))
    }

    pub async fn exists(&self, p: &str) -> Result<Option<Stat>> {
        let s = self
            .client()?
            .check_stat(p)
            .await
            .map_err(|e| map_zk(p, e))?;
        Ok(s.as_ref().map(stat))
    }

    pub async fn exists_and_watch(&self, p: &str) -> Result<(Option<Stat>, zk::OneshotWatcher)> {
        let (s, w) = self
            .client()?
            .check_and_watch_stat(p)
            .await
            .map_err(|e| map_zk(p, e))?;
        Ok((s.as_ref().map(stat), w))
    }

    pub async fn children(&self, p: &str) -> Result<Vec<String>> {
        self.client()?
            .list_children(p)
            .await
            .map_err(|e| map_zk(p, e))
    }

    pub async fn children_and_watch(&self, p: &str) -> Result<(Vec<String>, zk::OneshotWatcher)> {
        self.client()?
            .list_and_watch_children(p)
            .await
            .map_err(|e| map_zk(p, e))
    }

    pub async fn set(&self, p: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        let s = self
            .client()?
            .set_data(p, data, version)
            .await
            .map_err(|e| map_zk(p, e))?;
        Ok(stat(&s))
    }

    pub async fn delete(&self, p: &str, version: Option<i32>) -> Result<()> {
        self.client()?
            .delete(p, version)
            .await
            .map_err(|e| map_zk(p, e))
    }

    /// Depth-first delete. Not atomic: a child created concurrently makes a parent delete
    /// fail with `NotEmpty`, which is retried a few times before giving up.
    pub async fn delete_recursive(&self, p: &str) -> Result<()> {
        let client = self.client()?;
        for _ in 0..5 {
            let mut order = Vec::new();
            let mut stack = vec![p.to_owned()];
            while let Some(cur) = stack.pop() {
                match client.list_children(&cur).await {
                    Ok(children) => stack.extend(children.iter().map(|c| path::join(&cur, c))),
                    Err(zk::Error::NoNode) if cur != p => continue,
                    Err(e) => return Err(map_zk(&cur, e)),
                }
                order.push(cur);
            }
            let mut raced = false;
            for node in order.iter().rev() {
                match client.delete(node, None).await {
                    Ok(()) | Err(zk::Error::NoNode) => {}
                    Err(zk::Error::NotEmpty) => {
                        raced = true;
                        break;
                    }
                    Err(e) => return Err(map_zk(node, e)),
                }
            }
            if !raced {
                return Ok(());
            }
        }
        Err(Error::NotEmpty(p.to_owned()))
    }

    pub async fn multi(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        let client = self.client()?;
        let mut writer = client.new_multi_writer();
        let acls = self.acls();
        for (index, op) in ops.iter().enumerate() {
            let added = match op {
                Op::Check { path, version } => writer.add_check_version(path, *version),
                Op::Create {
                    path,
                    data,
                    mode: m,
                } => writer.add_create(path, data, &mode(*m).with_acls(acls)),
                Op::Set {
                    path,
                    data,
                    version,
                } => writer.add_set_data(path, data, *version),
                Op::Delete { path, version } => writer.add_delete(path, *version),
            };
            added.map_err(|e| Error::MultiFailed {
                index,
                source: Box::new(map_zk(op_path(op), e)),
            })?;
        }
        let results = writer.commit().await.map_err(|e| match e {
            zk::MultiWriteError::OperationFailed { index, source } => Error::MultiFailed {
                index,
                source: Box::new(map_zk(ops.get(index).map_or("/", op_path), source)),
            },
            zk::MultiWriteError::RequestFailed { source } => map_zk("/", source),
        })?;
        results
            .into_iter()
            .map(|r| match r {
                zk::MultiWriteResult::Check => Ok(OpResult::Check),
                zk::MultiWriteResult::Delete => Ok(OpResult::Delete),
                zk::MultiWriteResult::Create { path, .. } => Ok(OpResult::Create(path)),
                zk::MultiWriteResult::SetData { stat: s } => Ok(OpResult::Set(stat(&s))),
                other => Err(Error::ZooKeeper(zk::Error::UnexpectedError(format!(
                    "unexpected multi result {other:?}"
                )))),
            })
            .collect()
    }

    /// Data, stat and children of many nodes in one round trip (a ZooKeeper multi-read).
    /// A missing node is `None`.
    pub async fn read_nodes(&self, paths: &[String]) -> Result<Vec<Option<NodeData>>> {
        let client = self.client()?;
        let mut reader = client.new_multi_reader();
        for p in paths {
            reader.add_get_data(p).map_err(|e| map_zk(p, e))?;
            reader.add_get_children(p).map_err(|e| map_zk(p, e))?;
        }
        let results = reader.commit().await.map_err(|e| map_zk("/", e))?;
        let mut out = Vec::with_capacity(paths.len());
        let mut it = results.into_iter();
        for p in paths {
            let (Some(data), Some(children)) = (it.next(), it.next()) else {
                return Err(Error::ZooKeeper(zk::Error::UnexpectedError(
                    "multi-read returned too few results".into(),
                )));
            };
            out.push(match (data, children) {
                (
                    zk::MultiReadResult::Data { data, stat: s },
                    zk::MultiReadResult::Children { children },
                ) => Some(NodeData {
                    data,
                    stat: stat(&s),
                    children,
                }),
                (
                    zk::MultiReadResult::Error {
                        err: zk::Error::NoNode,
                    },
                    _,
                )
                | (
                    _,
                    zk::MultiReadResult::Error {
                        err: zk::Error::NoNode,
                    },
                ) => None,
                (zk::MultiReadResult::Error { err }, _)
                | (_, zk::MultiReadResult::Error { err }) => {
                    return Err(map_zk(p, err));
                }
                _ => {
                    return Err(Error::ZooKeeper(zk::Error::UnexpectedError(
                        "multi-read results out of order".into(),
                    )));
                }
            });
        }
        Ok(out)
    }

    pub async fn watch_recursive(&self, p: &str) -> Result<zk::PersistentWatcher> {
        self.client()?
            .watch(p, zk::AddWatchMode::PersistentRecursive)
            .await
            .map_err(|e| map_zk(p, e))
    }

    pub async fn close(&self) {
        if let Some(task) = self
            .supervisor
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
        // Dropping the last clone of a client closes its session. Ours is the last unless
        // an operation is in flight; that one finishes first.
        drop(
            self.client
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        let _ = self.events.send(SessionEvent::Closed);
    }
}

fn op_path(op: &Op) -> &str {
    match op {
        Op::Check { path, .. }
        | Op::Create { path, .. }
        | Op::Set { path, .. }
        | Op::Delete { path, .. } => path,
    }
}

/// Follows the session's state for as long as the session handle lives. A disconnection
/// is reported as `Suspended`; a recovery as `Reconnected`; an expiry as `Expired`,
/// followed by a new session (with backoff) and `Reconnected`.
async fn supervise(session: Weak<ZkSession>) {
    loop {
        let Some(Ok(client)) = session.upgrade().map(|s| s.client()) else {
            return;
        };
        let mut watcher = client.state_watcher();
        drop(client);
        let terminal = loop {
            let state = watcher.changed().await;
            let Some(s) = session.upgrade() else { return };
            match state {
                zk::SessionState::Disconnected => {
                    let _ = s.events.send(SessionEvent::Suspended);
                }
                zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                    let _ = s.events.send(SessionEvent::Reconnected);
                }
                zk::SessionState::Expired | zk::SessionState::AuthFailed => {
                    let _ = s.events.send(SessionEvent::Expired);
                    break true;
                }
                zk::SessionState::Closed => {
                    let _ = s.events.send(SessionEvent::Closed);
                    return;
                }
            }
        };
        if !terminal {
            return;
        }
        let mut backoff = BACKOFF_START;
        loop {
            let Some(settings) = session.upgrade().map(|s| s.settings.clone()) else {
                return;
            };
            match open_client(&settings).await {
                Ok(client) => {
                    let Some(s) = session.upgrade() else { return };
                    *s.client.write().unwrap_or_else(|p| p.into_inner()) = Some(client);
                    let _ = s.events.send(SessionEvent::Reconnected);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                        "ZooKeeper session expired; reconnecting");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

impl Drop for ZkSession {
    fn drop(&mut self) {
        if let Some(task) = self
            .supervisor
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }
}
