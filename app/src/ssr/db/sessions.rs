//! Queries on `sessions`. Only SHA-256 hashes of tokens are stored.

use sqlx::SqlitePool;

use super::now_ms;
use super::users::UserRow;

/// Browser cookie or API bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// Set by the login page as an HttpOnly cookie.
    Browser,
    /// Returned by `POST /api/v1/login`.
    Api,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            SessionKind::Browser => "browser",
            SessionKind::Api => "api",
        }
    }
}

/// Records a new session.
pub async fn insert(
    pool: &SqlitePool,
    token_hash: &[u8],
    user_id: i64,
    kind: SessionKind,
    ttl_ms: i64,
) -> sqlx::Result<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, kind, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(kind.as_str())
    .bind(now)
    .bind(now + ttl_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// The user behind an unexpired session.
pub async fn user_for(pool: &SqlitePool, token_hash: &[u8]) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(
        "SELECT u.id, u.username, u.password_hash, u.role, u.must_change_password, u.locale, u.theme, u.created_at \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = ? AND s.expires_at > ?",
    )
    .bind(token_hash)
    .bind(now_ms())
    .fetch_optional(pool)
    .await
}

/// Ends one session.
pub async fn delete(pool: &SqlitePool, token_hash: &[u8]) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
        .bind(token_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends every session of a user except `keep` (after a password or role change).
pub async fn delete_for_user(
    pool: &SqlitePool,
    user_id: i64,
    keep: Option<&[u8]>,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE user_id = ? AND token_hash IS NOT ?")
        .bind(user_id)
        .bind(keep)
        .execute(pool)
        .await?;
    Ok(())
}

/// Drops expired sessions; returns how many.
pub async fn purge_expired(pool: &SqlitePool) -> sqlx::Result<u64> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
        .bind(now_ms())
        .execute(pool)
        .await?
        .rows_affected())
}
