//! The console's own SQLite database: opening, migrating, and one module of queries per table.

pub mod audit;
pub mod centres;
pub mod sessions;
pub mod users;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Migrations compiled into this build.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// File name of the console database inside the data directory.
pub const DB_FILE: &str = "console.db";

/// Why the console database could not be opened. Each variant names the file and says
/// what an operator can do; none of them modifies the file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file exists but is not a readable SQLite database.
    #[error(
        "cannot read {path}: {reason}. It is not a Capstan database or it is damaged; \
         restore it from a backup or point --data-dir elsewhere. The file was not changed."
    )]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        reason: String,
    },
    /// The database was migrated by a newer Capstan.
    #[error(
        "{path} was written by a newer Capstan (schema version {version} is unknown to this \
         build). Run the newer version, or restore a backup. The file was not changed."
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// The unknown migration version.
        version: i64,
    },
    /// A migration failed for another reason.
    #[error("cannot migrate {path}: {source}")]
    Migrate {
        /// The file.
        path: PathBuf,
        /// The migration error.
        source: MigrateError,
    },
}

/// Opens (creating if missing) and migrates the console database in `data_dir`, with WAL
/// and foreign keys on.
///
/// # Errors
/// See [`OpenError`]: a damaged file or one from a newer version is refused untouched.
pub async fn open(data_dir: &Path) -> Result<SqlitePool, OpenError> {
    std::fs::create_dir_all(data_dir).map_err(|source| OpenError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    let path = data_dir.join(DB_FILE);
    let unreadable = |e: sqlx::Error| OpenError::Unreadable {
        path: path.clone(),
        reason: e.to_string(),
    };
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(unreadable)?;
    // A file that is not SQLite only fails once something reads the schema.
    sqlx::query("SELECT count(*) FROM sqlite_master")
        .execute(&pool)
        .await
        .map_err(unreadable)?;
    refuse_newer_schema(&pool, &path).await?;
    MIGRATOR.run(&pool).await.map_err(|source| match source {
        MigrateError::VersionMissing(version) => OpenError::TooNew {
            path: path.clone(),
            version,
        },
        source => OpenError::Migrate {
            path: path.clone(),
            source,
        },
    })?;
    restrict_permissions(&path);
    Ok(pool)
}

/// Checks, before any migration runs, that every applied migration is one this build knows.
async fn refuse_newer_schema(pool: &SqlitePool, path: &Path) -> Result<(), OpenError> {
    let has_table: bool = sqlx::query_scalar(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(pool)
    .await
    .map_err(|e| OpenError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if !has_table {
        return Ok(());
    }
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
        .fetch_all(pool)
        .await
        .map_err(|e| OpenError::Unreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    match applied.into_iter().find(|v| !known.contains(v)) {
        Some(version) => Err(OpenError::TooNew {
            path: path.to_owned(),
            version,
        }),
        None => Ok(()),
    }
}

/// The database holds password hashes and registry digests: keep it private to its owner.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot restrict database permissions");
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "capstan-db-{tag}-{}-{}",
            std::process::id(),
            now_ms()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[tokio::test]
    async fn fresh_database_is_migrated_with_wal_and_foreign_keys() {
        let dir = temp_dir("fresh");
        let pool = open(&dir).await.expect("open");
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .expect("pragma");
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&pool)
            .await
            .expect("pragma");
        assert_eq!(fk, 1);
        let local: i64 =
            sqlx::query_scalar("SELECT count(*) FROM registry_centres WHERE name = 'local'")
                .fetch_one(&pool)
                .await
                .expect("seeded");
        assert_eq!(local, 1);
        pool.close().await;
        // Reopening an up-to-date database is a no-op.
        open(&dir).await.expect("reopen");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn garbage_file_is_refused_and_left_untouched() {
        let dir = temp_dir("garbage");
        let path = dir.join(DB_FILE);
        let garbage = b"this is not a database, but someone's notes\n".repeat(200);
        std::fs::write(&path, &garbage).expect("write");
        let err = open(&dir).await.expect_err("must refuse");
        assert!(matches!(err, OpenError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("not changed"));
        assert_eq!(std::fs::read(&path).expect("read"), garbage);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn newer_schema_is_refused_and_left_untouched() {
        let dir = temp_dir("newer");
        let pool = open(&dir).await.expect("open");
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101000000, 'from the future', 1, x'00', 0)",
        )
        .execute(&pool)
        .await
        .expect("insert");
        sqlx::query("CREATE TABLE future_only (x INTEGER)")
            .execute(&pool)
            .await
            .expect("create");
        pool.close().await;
        let err = open(&dir).await.expect_err("must refuse");
        assert!(
            matches!(
                err,
                OpenError::TooNew {
                    version: 99990101000000,
                    ..
                }
            ),
            "{err}"
        );
        // Still there: nothing was rolled back or rewritten.
        let pool = SqlitePoolOptions::new()
            .connect_with(SqliteConnectOptions::new().filename(dir.join(DB_FILE)))
            .await
            .expect("raw open");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(n as usize, MIGRATOR.iter().count() + 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
