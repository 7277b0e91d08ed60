use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use capstan_registry::EmbeddedStore;
use leptos::config::LeptosOptions;
use sqlx::SqlitePool;

use super::allow_list::AllowList;
use super::limiter::LoginLimiter;
use super::pipelines::Pipelines;
use super::registries::Registries;
use super::runtimes::Runtimes;

/// Console settings that come from the command line.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// ZooKeeper addresses operators may add; empty allows any.
    pub zk_allow: AllowList,
    /// How long a session or API token lives.
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` (serve over HTTPS).
    pub secure_cookies: bool,
    /// Upper bound on a connection test.
    pub probe_timeout: Duration,
}

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// Leptos' own options (site root, output name).
    pub leptos_options: LeptosOptions,
    /// The console database.
    pub db: SqlitePool,
    /// Failed-login throttling, shared by the login page and the API.
    pub limiter: Arc<LoginLimiter>,
    /// Command-line settings.
    pub settings: Arc<ConsoleSettings>,
    /// The store behind every embedded registry centre (`data/registry.db`); each
    /// embedded centre is a namespace in it.
    pub embedded: EmbeddedStore,
    /// One live session and tree cache per connected centre.
    pub registries: Arc<Registries>,
    /// The scheduler runtimes this console runs jobs with.
    pub runtimes: Arc<Runtimes>,
    /// The stream pipelines this console runs, by centre.
    pub pipelines: Arc<Pipelines>,
}
