//! Queries on `users`.

use sqlx::SqlitePool;

use super::now_ms;
use crate::model::{Lang, Me, Role, Theme, UserSummary};

/// A `users` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// argon2 PHC string.
    pub password_hash: String,
    /// Stored role name.
    pub role: String,
    /// Generated password not yet replaced.
    pub must_change_password: bool,
    /// Stored language tag.
    pub locale: String,
    /// Stored theme.
    pub theme: String,
    /// Creation time.
    pub created_at: i64,
}

impl UserRow {
    /// The role; an unknown stored value (hand-edited database) gets the least privilege.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Viewer)
    }

    /// The UI's view of this user.
    pub fn me(&self) -> Me {
        Me {
            username: self.username.clone(),
            role: self.role(),
            must_change_password: self.must_change_password,
            lang: Lang::parse(&self.locale).unwrap_or_default(),
            theme: Theme::parse(&self.theme).unwrap_or_default(),
        }
    }

    /// The users page's view of this user.
    pub fn summary(&self) -> UserSummary {
        UserSummary {
            username: self.username.clone(),
            role: self.role(),
            must_change_password: self.must_change_password,
            created_at: self.created_at,
        }
    }
}

macro_rules! columns {
    () => {
        "id, username, password_hash, role, must_change_password, locale, theme, created_at"
    };
}

/// Number of users.
pub async fn count(pool: &SqlitePool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(pool)
        .await
}

/// Number of admins.
pub async fn count_admins(pool: &SqlitePool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'admin'")
        .fetch_one(pool)
        .await
}

/// A user by name (case-insensitive).
pub async fn by_name(pool: &SqlitePool, username: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM users WHERE username = ?"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await
}

/// All users, by name.
pub async fn list(pool: &SqlitePool) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM users ORDER BY username"
    ))
    .fetch_all(pool)
    .await
}

/// Adds a user.
pub async fn insert(
    pool: &SqlitePool,
    username: &str,
    password_hash: &str,
    role: Role,
    must_change_password: bool,
) -> sqlx::Result<i64> {
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO users (username, password_hash, role, must_change_password, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(username)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(must_change_password)
    .bind(now)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(res.last_insert_rowid())
}

/// Replaces a user's password hash.
pub async fn set_password(
    pool: &SqlitePool,
    id: i64,
    password_hash: &str,
    must_change_password: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET password_hash = ?, must_change_password = ?, updated_at = ? WHERE id = ?",
    )
    .bind(password_hash)
    .bind(must_change_password)
    .bind(now_ms())
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Changes a user's role.
pub async fn set_role(pool: &SqlitePool, id: i64, role: Role) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET role = ?, updated_at = ? WHERE id = ?")
        .bind(role.as_str())
        .bind(now_ms())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Stores language and theme.
pub async fn set_preferences(
    pool: &SqlitePool,
    id: i64,
    lang: Lang,
    theme: Theme,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET locale = ?, theme = ?, updated_at = ? WHERE id = ?")
        .bind(lang.code())
        .bind(theme.code())
        .bind(now_ms())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes a user (their sessions go with them).
pub async fn delete(pool: &SqlitePool, id: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
