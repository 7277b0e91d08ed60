use axum::Json;
use axum::extract::State;
use capstan_app::ssr::AppState;
use capstan_app::ssr::auth;
use capstan_app::ssr::db::sessions::SessionKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiActor, ApiError, ApiJson, ClientMeta, ErrorBody};

/// Credentials.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    username: String,
    password: String,
}

/// A bearer token for `Authorization: Bearer …`.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    token: String,
}

/// Exchanges a username and password for a token.
#[utoipa::path(
    post, path = "/api/v1/login", tag = "session", security(),
    request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "wrong username or password", body = ErrorBody),
        (status = 429, description = "too many failed attempts", body = ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let (token, _) = auth::login(
        &state,
        req.username.trim(),
        &req.password,
        meta.source_ip,
        SessionKind::Api,
    )
    .await?;
    Ok(Json(TokenResponse { token }))
}

/// Ends the session or token used for this request.
#[utoipa::path(
    post, path = "/api/v1/logout", tag = "session",
    responses((status = 204), (status = 401, body = ErrorBody))
)]
pub async fn logout(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<http::StatusCode, ApiError> {
    auth::logout(&state, &actor).await?;
    Ok(http::StatusCode::NO_CONTENT)
}
