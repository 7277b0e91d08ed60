//! Pages check the session on the server before they render.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use capstan_app::api::SERVER_FN_PREFIX;
use capstan_app::error::AppError;
use capstan_app::ssr::AppState;
use capstan_app::ssr::auth::{RequestMeta, authenticate};

/// Redirects to `/login` without a valid session, and to `/account` while a generated
/// password has not been changed. Role checks happen in every server fn the page calls.
///
/// Leptos mounts the server fns (`/fn/…`) on the same router as the pages; they answer for
/// themselves (a JSON 401 or 403, never a redirect), so they pass through here.
pub async fn require_session(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/login" || path.starts_with(SERVER_FN_PREFIX) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    match authenticate(&state, &RequestMeta::from_parts(&parts)).await {
        Ok(actor) if actor.user.must_change_password && path != "/account" => {
            Redirect::to("/account?first=1").into_response()
        }
        Ok(_) => next.run(Request::from_parts(parts, body)).await,
        Err(AppError::Unauthenticated) => {
            let target = parts
                .uri
                .path_and_query()
                .map_or_else(|| path.clone(), |pq| pq.as_str().to_owned());
            Redirect::to(&format!("/login?next={}", urlencode(&target))).into_response()
        }
        Err(e) => crate::rest::ApiError(e).into_response(),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
