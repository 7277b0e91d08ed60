//! Durable storage of the embedded registry's persistent nodes, in SQLite.
//!
//! Every write transaction is committed here before the tree changes in memory and before
//! the caller gets an answer, so an acknowledged write survives `kill -9` (WAL mode:
//! a commit is durable against a process crash; `synchronous = FULL` also covers power loss
//! at the price of an fsync per write, see [`Durability`]). Ephemeral nodes are not stored:
//! they die with their sessions, as they would with the process.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::tree::{Node, Staged};
use crate::node::Stat;
use crate::{Error, Result};

/// How hard a commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives a process crash (`kill -9`); the last commits may be lost on power loss.
    #[default]
    ProcessCrash,
    /// Survives power loss: an fsync per commit.
    PowerLoss,
}

fn storage(e: impl std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

/// Opens (creating if missing) the store at `path`.
pub(crate) async fn open(path: &Path, durability: Durability) -> Result<SqlitePool> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match durability {
            Durability::ProcessCrash => SqliteSynchronous::Normal,
            Durability::PowerLoss => SqliteSynchronous::Full,
        })
        .busy_timeout(Duration::from_secs(5));
    // One connection: writes are serialised by the store anyway, and a single connection
    // keeps commit order identical to apply order.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| storage(format!("cannot open {}: {e}", path.display())))?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS registry_nodes (
            path     TEXT PRIMARY KEY,
            data     BLOB    NOT NULL,
            czxid    INTEGER NOT NULL,
            mzxid    INTEGER NOT NULL,
            pzxid    INTEGER NOT NULL,
            ctime    INTEGER NOT NULL,
            mtime    INTEGER NOT NULL,
            version  INTEGER NOT NULL,
            cversion INTEGER NOT NULL
        )",
    )
    .execute(&pool)
    .await
    .map_err(|e| storage(format!("{} is not a registry store: {e}", path.display())))?;
    Ok(pool)
}

/// Every stored node.
pub(crate) async fn load(pool: &SqlitePool) -> Result<Vec<(String, Vec<u8>, Stat)>> {
    let rows = sqlx::query(
        "SELECT path, data, czxid, mzxid, pzxid, ctime, mtime, version, cversion FROM registry_nodes",
    )
    .fetch_all(pool)
    .await
    .map_err(storage)?;
    rows.into_iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>(0).map_err(storage)?,
                r.try_get::<Vec<u8>, _>(1).map_err(storage)?,
                Stat {
                    czxid: r.try_get(2).map_err(storage)?,
                    mzxid: r.try_get(3).map_err(storage)?,
                    pzxid: r.try_get(4).map_err(storage)?,
                    ctime: r.try_get(5).map_err(storage)?,
                    mtime: r.try_get(6).map_err(storage)?,
                    version: r.try_get(7).map_err(storage)?,
                    cversion: r.try_get(8).map_err(storage)?,
                    ..Stat::default()
                },
            ))
        })
        .collect()
}

/// Rows per statement: 9 parameters each, far below SQLite's 32,766.
const ROWS_PER_STATEMENT: usize = 500;

/// Commits the persistent part of staged transactions, in order, as one SQLite
/// transaction: all of them or none. Transactions that touch only ephemeral nodes are not
/// written (see `Staged::durable`); a batch of only those costs no disk access.
pub(crate) async fn commit(pool: &SqlitePool, batch: &[Staged]) -> Result<()> {
    if !batch.iter().any(|s| s.durable) {
        return Ok(());
    }
    // Each path's last state in the batch: a node to upsert, or a delete. A state that
    // leaves the row alone (an ephemeral node) does not count: the row stays as the
    // path's earlier state in the batch left it, as applying them one by one would.
    let mut last: HashMap<&str, Option<&Node>> = HashMap::new();
    for (path, node) in batch
        .iter()
        .filter(|s| s.durable)
        .flat_map(|s| s.nodes.iter())
    {
        match node {
            Some(n) if n.stat.ephemeral_owner != 0 => {}
            node => {
                last.insert(path.as_str(), node.as_ref());
            }
        }
    }
    let mut upserts: Vec<(&str, &Node)> = Vec::new();
    let mut deletes: Vec<&str> = Vec::new();
    for (path, node) in last {
        match node {
            Some(n) => upserts.push((path, n)),
            None => deletes.push(path),
        }
    }
    let mut tx = pool.begin().await.map_err(storage)?;
    // Many rows per statement: each statement is a round trip to SQLite's worker thread,
    // and a thousand-job second's `running` markers touch a thousand parents.
    for rows in upserts.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO registry_nodes (path, data, czxid, mzxid, pzxid, ctime, mtime, version, cversion) ",
        );
        q.push_values(rows, |mut row, (path, n)| {
            row.push_bind(*path)
                .push_bind(&n.data)
                .push_bind(n.stat.czxid)
                .push_bind(n.stat.mzxid)
                .push_bind(n.stat.pzxid)
                .push_bind(n.stat.ctime)
                .push_bind(n.stat.mtime)
                .push_bind(n.stat.version)
                .push_bind(n.stat.cversion);
        });
        q.push(
            " ON CONFLICT (path) DO UPDATE SET data = excluded.data, mzxid = excluded.mzxid,
               pzxid = excluded.pzxid, mtime = excluded.mtime, version = excluded.version,
               cversion = excluded.cversion",
        );
        q.build().execute(&mut *tx).await.map_err(storage)?;
    }
    for rows in deletes.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM registry_nodes WHERE path IN (");
        let mut paths = q.separated(", ");
        for path in rows {
            paths.push_bind(*path);
        }
        q.push(")");
        q.build().execute(&mut *tx).await.map_err(storage)?;
    }
    tx.commit().await.map_err(storage)
}
