//! Queries on `registry_centres`.

use sqlx::SqlitePool;

use super::now_ms;
use crate::model::{CentreKind, RegistryCentre};

/// A `registry_centres` row, digest included: it never leaves the server.
#[derive(Clone, sqlx::FromRow)]
pub struct CentreRow {
    /// Row id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Stored kind.
    pub kind: String,
    /// Connect string (empty for embedded).
    pub connect: String,
    /// Namespace.
    pub namespace: String,
    /// `user:password`, if any.
    pub digest: Option<String>,
    /// Session timeout, ms.
    pub session_timeout_ms: i64,
    /// `#rrggbb`.
    pub color: String,
    /// Production flag.
    pub production: bool,
}

impl std::fmt::Debug for CentreRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CentreRow")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("connect", &self.connect)
            .field("namespace", &self.namespace)
            .field("digest", &self.digest.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl CentreRow {
    /// The kind; rows are written through validation, so an unknown value means a
    /// hand-edited database and is shown as ZooKeeper (the kind with no local state).
    pub fn kind(&self) -> CentreKind {
        CentreKind::parse(&self.kind).unwrap_or(CentreKind::Zookeeper)
    }

    /// What the browser and the API may see.
    pub fn public(&self) -> RegistryCentre {
        RegistryCentre {
            name: self.name.clone(),
            kind: self.kind(),
            connect: self.connect.clone(),
            namespace: self.namespace.clone(),
            color: self.color.clone(),
            production: self.production,
            session_timeout_ms: self.session_timeout_ms.clamp(0, i64::from(u32::MAX)) as u32,
            has_digest: self.digest.is_some(),
        }
    }
}

/// What is written for a create or an update (already validated).
#[derive(Clone)]
pub struct CentreWrite {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: CentreKind,
    /// Normalised connect string.
    pub connect: String,
    /// Namespace.
    pub namespace: String,
    /// Digest to store.
    pub digest: Option<String>,
    /// Session timeout, ms.
    pub session_timeout_ms: u32,
    /// Colour.
    pub color: String,
    /// Production flag.
    pub production: bool,
}

macro_rules! columns {
    () => {
        "id, name, kind, connect, namespace, digest, session_timeout_ms, color, production"
    };
}

/// All centres, `local` first, then by name.
pub async fn list(pool: &SqlitePool) -> sqlx::Result<Vec<CentreRow>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM registry_centres ORDER BY name <> 'local', name"
    ))
    .fetch_all(pool)
    .await
}

/// One centre by name.
pub async fn by_name(pool: &SqlitePool, name: &str) -> sqlx::Result<Option<CentreRow>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM registry_centres WHERE name = ?"
    ))
    .bind(name)
    .fetch_optional(pool)
    .await
}

/// Adds a centre. A duplicate name is a unique-constraint error.
pub async fn insert(pool: &SqlitePool, c: &CentreWrite) -> sqlx::Result<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO registry_centres \
         (name, kind, connect, namespace, digest, session_timeout_ms, color, production, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&c.name)
    .bind(c.kind.as_str())
    .bind(&c.connect)
    .bind(&c.namespace)
    .bind(&c.digest)
    .bind(c.session_timeout_ms)
    .bind(&c.color)
    .bind(c.production)
    .bind(now)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Rewrites the centre with row id `id` (renames included).
pub async fn update(pool: &SqlitePool, id: i64, c: &CentreWrite) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE registry_centres SET name = ?, kind = ?, connect = ?, namespace = ?, digest = ?, \
         session_timeout_ms = ?, color = ?, production = ?, updated_at = ? WHERE id = ?",
    )
    .bind(&c.name)
    .bind(c.kind.as_str())
    .bind(&c.connect)
    .bind(&c.namespace)
    .bind(&c.digest)
    .bind(c.session_timeout_ms)
    .bind(&c.color)
    .bind(c.production)
    .bind(now_ms())
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes a centre.
pub async fn delete(pool: &SqlitePool, id: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM registry_centres WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Whether `e` is a unique-constraint violation (a duplicate name).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}
