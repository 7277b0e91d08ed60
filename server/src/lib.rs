//! The Capstan console server: builds the axum [`router`] (so tests can drive it without a
//! socket) and runs `capstan serve`.

pub mod agent;
pub mod config;
mod guard;
mod metrics;
pub mod pipeline;
pub mod pipelines;
pub mod rest;
pub mod runtimes;
mod sse;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use capstan_app::ssr::allow_list::AllowList;
use capstan_app::ssr::audit::Audit;
use capstan_app::ssr::auth::{Bootstrap, ensure_admin, generate_password, hash_password};
use capstan_app::ssr::registries::Registries;
use capstan_app::ssr::{AppState, ConsoleSettings, db};
use capstan_app::{App, shell};
use capstan_registry::{Durability, EmbeddedStore};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::limit::RequestBodyLimitLayer;

use crate::config::{ResetPasswordArgs, ServeArgs};

/// Largest request body accepted anywhere (forms and JSON are far smaller).
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Opens the database, creates the first admin if needed, and assembles the state.
///
/// # Errors
/// An unusable data directory or database, or an invalid setting.
pub async fn build_state(args: &ServeArgs) -> anyhow::Result<AppState> {
    let zk_allow = AllowList::parse(&args.zk_allow)
        .map_err(|e| anyhow::anyhow!("--zk-allow / CAPSTAN_ZK_ALLOW: {e}"))?;
    let pool = db::open(&args.data_dir).await?;
    let registry_file = args.data_dir.join("registry.db");
    let embedded = EmbeddedStore::open(&registry_file, Durability::ProcessCrash)
        .await
        .with_context(|| format!("opening the embedded registry {}", registry_file.display()))?;
    let leptos_options = LeptosOptions::builder()
        .output_name("capstan")
        .site_root(args.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(args.bind)
        .build();
    let state = AppState {
        leptos_options,
        db: pool,
        limiter: Arc::default(),
        settings: Arc::new(ConsoleSettings {
            zk_allow,
            session_ttl: Duration::from_secs(args.session_hours.max(1) * 3600),
            secure_cookies: args.secure_cookies,
            probe_timeout: Duration::from_millis(args.probe_timeout_ms.max(100)),
        }),
        registries: Arc::new(Registries::new(
            embedded.clone(),
            Duration::from_millis(args.probe_timeout_ms.max(100)),
        )),
        runtimes: Arc::default(),
        pipelines: Arc::default(),
        embedded,
    };
    let outcome = ensure_admin(&state.db, args.admin_password.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("creating the first admin: {e}"))?;
    if outcome != Bootstrap::Existing {
        let ok: Result<(), capstan_app::error::AppError> = Ok(());
        Audit::new("user.create", "user", "admin")
            .after(&serde_json::json!({"role": "admin", "bootstrap": true}))
            .finish(&state, &ok)
            .await;
    }
    if let Bootstrap::Generated(password) = outcome {
        // Printed exactly once: the user is created only when the database has none.
        tracing::warn!(
            "\n\n    First start: created user `admin` with the generated password\n\n        {password}\n\n    \
             It must be changed at first sign-in. It will not be shown again.\n"
        );
    }
    Ok(state)
}

/// The whole HTTP surface: pages, server functions, REST API, health and metrics.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let context = {
        let state = state.clone();
        move || provide_context(state.clone())
    };
    // This also mounts every server fn (under `/fn/`), with the same context.
    let pages = Router::new()
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::require_session,
        ));
    Router::new()
        .nest("/api/v1", rest::router())
        .route("/healthz", get(healthz))
        .route("/rc/{rc}/events", get(sse::events))
        .route("/metrics", get(metrics::render))
        .merge(pages)
        // A route layer sees the matched route, so metric labels stay bounded.
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match sqlx::query("SELECT 1").execute(&state.db).await {
        Ok(_) => (http::StatusCode::OK, "ok"),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unavailable");
            (
                http::StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable",
            )
        }
    }
}

pub(crate) fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

/// `capstan serve`.
///
/// # Errors
/// Startup failures (database, bind); once serving, only a fatal server error.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing(&args.log);
    metrics::install();
    let state = build_state(&args).await?;
    if !args.site_root.join("pkg").join("capstan.js").exists() {
        tracing::warn!(site_root = %args.site_root.display(),
            "no browser bundle found: pages render but will not hydrate (run `make site`)");
    }
    runtimes::start(
        &state,
        &args.data_dir,
        &args.run_jobs_on,
        !args.no_demo,
        args.bind,
    )
    .await?;
    let pipeline_sessions = pipelines::start(
        &state,
        &args.data_dir,
        !args.no_demo,
        &args.pipelines,
        args.pipelines_on.as_deref(),
    )
    .await?;
    let app = router(state.clone());
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    tracing::info!("Capstan console on http://{}", args.bind);
    tokio::spawn(purge_sessions(state.clone()));
    tokio::spawn(close_idle_registries(state.clone()));
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("server error");
    // Running items may finish; then this process's instance and leader nodes go, so the
    // other instances take over at once instead of after the session timeout.
    for scheduler in state.runtimes.all() {
        scheduler.shutdown().await;
    }
    // Stopped, then their sessions closed: a process standing by for one of them takes
    // it over now.
    pipelines::stop_all(&state);
    for session in pipeline_sessions {
        session.close().await;
    }
    served
}

async fn close_idle_registries(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.registries.close_idle();
    }
}

/// Expired sessions are refused anyway; this only keeps the table small.
async fn purge_sessions(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        if let Err(e) = db::sessions::purge_expired(&state.db).await {
            tracing::warn!(error = %e, "could not purge expired sessions");
        }
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// `capstan reset-password USER`: prints a new generated password, to be changed at the
/// next sign-in, and ends the user's sessions.
///
/// # Errors
/// An unusable database or an unknown user.
pub async fn reset_password(args: ResetPasswordArgs) -> anyhow::Result<()> {
    let pool = db::open(&args.data_dir).await?;
    let user = db::users::by_name(&pool, &args.username)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user named {:?}", args.username))?;
    let password = generate_password();
    let hash = hash_password(password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    db::users::set_password(&pool, user.id, &hash, true).await?;
    db::sessions::delete_for_user(&pool, user.id, None).await?;
    db::audit::insert(
        &pool,
        &db::audit::NewEntry {
            actor: None,
            source_ip: None,
            action: "user.password_reset".into(),
            target_kind: "user".into(),
            target: user.username.clone(),
            before: None,
            after: None,
            result: capstan_app::model::AuditResult::Ok,
            detail: Some("reset from the command line".into()),
        },
    )
    .await?;
    println!(
        "New password for {}: {password}\nIt must be changed at the next sign-in.",
        user.username
    );
    Ok(())
}
