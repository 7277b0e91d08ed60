use axum::Json;
use axum::extract::{Path, State};
use capstan_app::model::{CentreInput, ProbeResult, RegistryCentre};
use capstan_app::ssr::{AppState, centres};

use super::{ApiActor, ApiError, ApiJson, ErrorBody};

/// Every registry centre. The digest is never returned, only `has_digest`.
#[utoipa::path(
    get, path = "/api/v1/registries", tag = "registries",
    responses((status = 200, body = Vec<RegistryCentre>), (status = 401, body = ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<Json<Vec<RegistryCentre>>, ApiError> {
    Ok(Json(centres::list(&state, &actor).await?))
}

/// One registry centre.
#[utoipa::path(
    get, path = "/api/v1/registries/{name}", tag = "registries",
    params(("name" = String, Path, description = "centre name")),
    responses((status = 200, body = RegistryCentre), (status = 404, body = ErrorBody))
)]
pub async fn get_one(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(name): Path<String>,
) -> Result<Json<RegistryCentre>, ApiError> {
    Ok(Json(centres::get(&state, &actor, &name).await?))
}

/// Adds a registry centre (admin).
#[utoipa::path(
    post, path = "/api/v1/registries", tag = "registries",
    request_body = CentreInput,
    responses(
        (status = 201, body = RegistryCentre),
        (status = 403, body = ErrorBody),
        (status = 409, description = "the name is taken", body = ErrorBody),
        (status = 422, description = "invalid fields", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(input): ApiJson<CentreInput>,
) -> Result<(http::StatusCode, Json<RegistryCentre>), ApiError> {
    let created = centres::create(&state, &actor, &input).await?;
    Ok((http::StatusCode::CREATED, Json(created)))
}

/// Edits a registry centre (admin). An absent `digest` keeps the stored one.
#[utoipa::path(
    put, path = "/api/v1/registries/{name}", tag = "registries",
    params(("name" = String, Path, description = "current centre name")),
    request_body = CentreInput,
    responses(
        (status = 200, body = RegistryCentre),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(name): Path<String>,
    ApiJson(input): ApiJson<CentreInput>,
) -> Result<Json<RegistryCentre>, ApiError> {
    Ok(Json(centres::update(&state, &actor, &name, &input).await?))
}

/// Removes a registry centre from the console (admin). The registry itself is untouched.
#[utoipa::path(
    delete, path = "/api/v1/registries/{name}", tag = "registries",
    params(("name" = String, Path, description = "centre name")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn delete(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(name): Path<String>,
) -> Result<http::StatusCode, ApiError> {
    centres::delete(&state, &actor, &name).await?;
    Ok(http::StatusCode::NO_CONTENT)
}

/// Opens a session to the centre and reads its namespace.
#[utoipa::path(
    post, path = "/api/v1/registries/{name}/test", tag = "registries",
    params(("name" = String, Path, description = "centre name")),
    responses(
        (status = 200, body = ProbeResult),
        (status = 404, body = ErrorBody),
        (status = 422, description = "unreachable, or credentials refused", body = ErrorBody),
    )
)]
pub async fn test(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(name): Path<String>,
) -> Result<Json<ProbeResult>, ApiError> {
    Ok(Json(centres::test(&state, &actor, &name).await?))
}
