//! Server-only code: state, database, authentication, and the operations that server
//! functions and the REST API share. Gated once, here, behind the `ssr` feature.

pub mod allow_list;
pub mod audit;
pub mod auth;
pub mod centres;
pub mod db;
pub mod jobs;
pub mod limiter;
pub mod pipelines;
pub mod registries;
pub mod runtimes;
mod state;
pub mod users;

pub use state::{AppState, ConsoleSettings};

use crate::error::AppError;

/// The state, from the Leptos context the server provides to every render and server fn.
pub fn app_state() -> Result<AppState, AppError> {
    leptos::prelude::use_context::<AppState>()
        .ok_or_else(|| internal("AppState missing from the Leptos context"))
}

/// Logs `err` with a fresh reference and returns an [`AppError::Internal`] carrying only
/// that reference.
pub fn internal(err: impl std::fmt::Display) -> AppError {
    let reference = format!("{:08x}", rand::random::<u32>());
    tracing::error!(reference = %reference, error = %err, "internal error");
    AppError::Internal(reference)
}

/// Every server fn ends with this, to give errors the HTTP status that fits:
/// - a call from the browser's JavaScript or another client gets the error's status, so it
///   is decoded as an error;
/// - a page rendered on the server gets 401, 403 or 404 when the page itself is refused or
///   missing (so it works without JavaScript and for crawlers), but not when a secondary
///   part of the page failed (a connection test shows its error inline in a 200 page);
/// - a plain HTML form post (no JavaScript) keeps the redirect Leptos sends back to the
///   form, with the error in the URL: a 4xx would stop the browser from following it.
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    let Err(e) = &result else {
        return result;
    };
    let Some(parts) = leptos::prelude::use_context::<http::request::Parts>() else {
        return result;
    };
    let fn_call = parts.uri.path().starts_with(crate::api::SERVER_FN_PREFIX);
    let plain_form_post = fn_call
        && parts
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
    let page_level = matches!(
        e,
        AppError::NotFound(_)
            | AppError::Forbidden(_)
            | AppError::Unauthenticated
            | AppError::PasswordChangeRequired
    );
    let set = if fn_call {
        !plain_form_post
    } else {
        page_level
    };
    if set
        && let Some(opts) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>()
        && let Ok(status) = http::StatusCode::from_u16(e.status())
    {
        opts.set_status(status);
    }
    result
}

/// One page of the audit log; admins only.
pub async fn audit_query(
    state: &AppState,
    actor: &auth::Actor,
    filter: &crate::model::AuditFilter,
) -> Result<crate::model::AuditPage, AppError> {
    actor.require(crate::model::Role::Admin)?;
    if let Some(r) = filter.result.as_deref().filter(|r| !r.is_empty())
        && crate::model::AuditResult::parse(r).is_none()
    {
        return Err(AppError::field("result", "use ok, denied or failed"));
    }
    db::audit::query(&state.db, filter).await.map_err(internal)
}
