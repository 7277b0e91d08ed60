//! Stream pipelines of a registry centre.

use axum::Json;
use axum::extract::{Path, State};
use capstan_app::model::{PipelineDetail, PipelineRow};
use capstan_app::ssr::AppState;
use capstan_app::ssr::pipelines;

use super::{ApiActor, ApiError, ErrorBody};

/// The pipelines registered on the centre: run by this console, or by other processes
/// (`runner` names the instance; their numbers are the last they published).
#[utoipa::path(
    get, path = "/api/v1/registries/{rc}/pipelines", tag = "pipelines",
    params(("rc" = String, Path)),
    responses((status = 200, body = Vec<PipelineRow>), (status = 404, body = ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(rc): Path<String>,
) -> Result<Json<Vec<PipelineRow>>, ApiError> {
    Ok(Json(pipelines::list(&state, &actor, &rc).await?))
}

/// One pipeline: vertices with their metrics, checkpoints, the last five minutes.
#[utoipa::path(
    get, path = "/api/v1/registries/{rc}/pipelines/{pipeline}", tag = "pipelines",
    params(("rc" = String, Path), ("pipeline" = String, Path)),
    responses((status = 200, body = PipelineDetail), (status = 404, body = ErrorBody))
)]
pub async fn get_one(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((rc, name)): Path<(String, String)>,
) -> Result<Json<PipelineDetail>, ApiError> {
    Ok(Json(pipelines::detail(&state, &actor, &rc, &name).await?))
}

/// `pause | resume | restart` (from the last checkpoint) a pipeline (operator).
#[utoipa::path(
    post, path = "/api/v1/registries/{rc}/pipelines/{pipeline}/{action}", tag = "pipelines",
    params(("rc" = String, Path), ("pipeline" = String, Path),
        ("action" = String, Path, description = "pause, resume or restart")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody))
)]
pub async fn action(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((rc, name, action)): Path<(String, String, String)>,
) -> Result<http::StatusCode, ApiError> {
    pipelines::act(&state, &actor, &rc, &name, &action).await?;
    Ok(http::StatusCode::NO_CONTENT)
}
