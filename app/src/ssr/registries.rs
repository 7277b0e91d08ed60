//! One live registry session and tree cache per centre, shared by every request.
//!
//! Pages never walk the registry: they read the watch-driven [`TreeCache`] of the whole
//! namespace (console.md lesson 2), and the cache's generation drives the live updates. The
//! pool is capped, closes sessions nobody used for [`IDLE_CLOSE`], and keys each entry by
//! the centre's connection settings, so an edited centre never keeps its old session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capstan_registry::cache::TreeCache;
use capstan_registry::{ConnectString, EmbeddedStore, Registry, ZkSettings};
use tokio::sync::OnceCell;

use super::db::centres::CentreRow;
use super::jobs::JobIndex;
use crate::error::AppError;
use crate::model::CentreKind;

/// Sessions unused this long are closed.
pub const IDLE_CLOSE: Duration = Duration::from_secs(10 * 60);
/// At most this many centres are connected at once; the least recently used idle one
/// makes room.
pub const MAX_OPEN: usize = 16;
/// Upper bound on the first load of a centre's tree.
const LOAD_LIMIT: Duration = Duration::from_secs(120);

/// A connected centre.
pub struct Connection {
    /// The session, for operations.
    pub registry: Registry,
    /// The whole namespace, mirrored.
    pub cache: TreeCache,
    /// Every job's status and parsed config, kept up to date from the cache's events.
    pub jobs: Arc<JobIndex>,
}

impl Connection {
    /// Waits (at most `limit`) until the cache shows what `check` looks for: a write this
    /// console just made is then visible to its next read. Returns whether it did.
    pub async fn settle(
        &self,
        limit: Duration,
        check: impl Fn(&capstan_registry::cache::TreeView<'_>) -> bool,
    ) -> bool {
        let mut generation = self.cache.generation();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            generation.borrow_and_update();
            if self.cache.read(&check) {
                return true;
            }
            match tokio::time::timeout_at(deadline, generation.changed()).await {
                Ok(Ok(())) => {}
                _ => return false,
            }
        }
    }
}

struct Entry {
    key: String,
    conn: OnceCell<Arc<Connection>>,
    last_used: Mutex<Instant>,
}

/// The pool.
pub struct Registries {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    embedded: EmbeddedStore,
    connect_timeout: Duration,
}

/// What identifies a session: an edit of any of these needs a new one.
fn key_of(row: &CentreRow) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        row.kind,
        row.connect,
        row.namespace,
        row.digest.as_deref().map_or(0, str::len),
        row.session_timeout_ms
    ) + row.digest.as_deref().unwrap_or_default()
}

impl Registries {
    /// An empty pool; embedded centres open namespaces of `embedded`.
    pub fn new(embedded: EmbeddedStore, connect_timeout: Duration) -> Registries {
        Registries {
            entries: Mutex::new(HashMap::new()),
            embedded,
            connect_timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection of `row`, opening it on first use. Concurrent first requests share
    /// one connection attempt; a failed attempt is forgotten, so the next request retries.
    ///
    /// # Errors
    /// [`AppError::Unreachable`] when the registry cannot be reached or read.
    pub async fn get(&self, row: &CentreRow) -> Result<Arc<Connection>, AppError> {
        let key = key_of(row);
        let entry = {
            let mut entries = self.lock();
            let stale = entries.get(&row.name).is_some_and(|e| e.key != key);
            if stale && let Some(old) = entries.remove(&row.name) {
                close_later(old);
            }
            if !entries.contains_key(&row.name) && entries.len() >= MAX_OPEN {
                evict_lru(&mut entries);
            }
            entries
                .entry(row.name.clone())
                .or_insert_with(|| {
                    Arc::new(Entry {
                        key: key.clone(),
                        conn: OnceCell::new(),
                        last_used: Mutex::new(Instant::now()),
                    })
                })
                .clone()
        };
        *entry.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let result = entry.conn.get_or_try_init(|| self.open(row)).await.cloned();
        if result.is_err() {
            let mut entries = self.lock();
            if entries
                .get(&row.name)
                .is_some_and(|e| Arc::ptr_eq(e, &entry))
            {
                entries.remove(&row.name);
            }
        }
        result
    }

    async fn open(&self, row: &CentreRow) -> Result<Arc<Connection>, AppError> {
        let unreachable = |e: capstan_registry::Error| {
            AppError::Unreachable(format!("registry centre {}: {e}", row.name))
        };
        let timed_out = |what: &str, limit: Duration| {
            AppError::Unreachable(format!(
                "registry centre {}: {what} took longer than {} ms",
                row.name,
                limit.as_millis()
            ))
        };
        let connecting = async {
            Ok::<Registry, AppError>(match row.kind() {
                CentreKind::Embedded => Registry::embedded(&self.embedded, &row.namespace)
                    .await
                    .map_err(unreachable)?,
                CentreKind::Zookeeper => {
                    let connect: ConnectString = row.connect.parse().map_err(|e| {
                        AppError::Unreachable(format!("registry centre {}: {e}", row.name))
                    })?;
                    Registry::zookeeper(ZkSettings {
                        connect,
                        namespace: row.namespace.clone(),
                        digest: row.digest.clone(),
                        session_timeout: Duration::from_millis(
                            row.session_timeout_ms.max(1000) as u64
                        ),
                    })
                    .await
                    .map_err(unreachable)?
                }
            })
        };
        let registry = tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| timed_out("connecting", self.connect_timeout))??;
        // The first load of a large namespace (10,000 jobs) takes seconds on ZooKeeper; it
        // has its own, longer bound.
        let cache =
            match tokio::time::timeout(LOAD_LIMIT, TreeCache::start(registry.clone(), "/")).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    registry.close().await;
                    return Err(unreachable(e));
                }
                Err(_) => {
                    registry.close().await;
                    return Err(timed_out("loading the tree", LOAD_LIMIT));
                }
            };
        tracing::info!(centre = %row.name, "registry centre connected");
        Ok(Arc::new(Connection {
            registry,
            jobs: JobIndex::start(&cache),
            cache,
        }))
    }

    /// Drops the connection of `name` (after an edit or a delete).
    pub fn forget(&self, name: &str) {
        if let Some(old) = self.lock().remove(name) {
            close_later(old);
        }
    }

    /// Closes connections idle longer than [`IDLE_CLOSE`]; run periodically.
    pub fn close_idle(&self) {
        let mut entries = self.lock();
        let idle: Vec<String> = entries
            .iter()
            .filter(|(_, e)| {
                e.last_used
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .elapsed()
                    > IDLE_CLOSE
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in idle {
            if let Some(e) = entries.remove(&name) {
                tracing::info!(centre = %name, "closing idle registry session");
                close_later(e);
            }
        }
    }

    /// Names of the centres connected now.
    pub fn open_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().keys().cloned().collect();
        names.sort();
        names
    }
}

fn evict_lru(entries: &mut HashMap<String, Arc<Entry>>) {
    let oldest = entries
        .iter()
        .min_by_key(|(_, e)| *e.last_used.lock().unwrap_or_else(|p| p.into_inner()))
        .map(|(n, _)| n.clone());
    if let Some(name) = oldest
        && let Some(e) = entries.remove(&name)
    {
        tracing::info!(centre = %name, "closing the least recently used registry session");
        close_later(e);
    }
}

/// Closes a removed entry's session without holding the pool lock. Requests still using
/// it finish on their own clone; the cache task stops with its last clone.
fn close_later(entry: Arc<Entry>) {
    if let Some(conn) = entry.conn.get().cloned() {
        tokio::spawn(async move { conn.registry.close().await });
    }
}
