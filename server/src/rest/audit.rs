use axum::Json;
use axum::extract::{Query, State};
use capstan_app::model::{AuditFilter, AuditPage};
use capstan_app::ssr::{AppState, audit_query};

use super::{ApiActor, ApiError, ErrorBody};

/// The audit log, newest first, filtered and paged (admin).
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit",
    params(AuditFilter),
    responses((status = 200, body = AuditPage), (status = 403, body = ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    filter: Result<Query<AuditFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(filter) =
        filter.map_err(|e| ApiError(capstan_app::error::AppError::Request(e.body_text())))?;
    Ok(Json(audit_query(&state, &actor, &filter).await?))
}
