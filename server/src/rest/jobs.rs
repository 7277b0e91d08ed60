//! Jobs, items, servers and runs of a registry centre.
//!
//! Destructive operations on a production centre need `?confirm=NAME` (the job name, the
//! server IP, or for the stale clean-up the centre name), as the console asks it typed.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use capstan_app::error::AppError;
use capstan_app::model::{
    ImportReport, JobDetail, JobFilter, JobPage, NewJob, RunFilter, RunPage, ServerRow,
};
use capstan_app::ssr::AppState;
use capstan_app::ssr::jobs::ops::{self, JobAction, ServerAction};
use capstan_app::ssr::jobs::{configs, read};
use serde::Deserialize;

use super::{ApiActor, ApiError, ApiJson, ErrorBody};

/// `?q=&status=&tag=&page=&per_page=`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct JobsQuery {
    /// Substring of the name or description.
    q: Option<String>,
    /// `OK | CRASHED | DISABLED | SHARDING_FLAG | PAUSED`.
    status: Option<String>,
    /// A tag.
    tag: Option<String>,
    /// Page, from 1.
    page: Option<u32>,
    /// Rows per page, at most 200 (default 50).
    per_page: Option<u32>,
}

/// The centre's jobs, filtered and paged on the server, with statuses and reasons.
#[utoipa::path(
    get, path = "/api/v1/registries/{rc}/jobs", tag = "jobs",
    params(("rc" = String, Path, description = "centre name"), JobsQuery),
    responses((status = 200, body = JobPage), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(rc): Path<String>,
    Query(q): Query<JobsQuery>,
) -> Result<Json<JobPage>, ApiError> {
    let filter = JobFilter {
        q: q.q,
        status: q.status,
        tag: q.tag,
        page: q.page,
        per_page: q.per_page,
    };
    Ok(Json(read::list(&state, &actor, &rc, &filter).await?))
}

/// One job: config, status, items, instances, servers, next fires and recent runs.
#[utoipa::path(
    get, path = "/api/v1/registries/{rc}/jobs/{job}", tag = "jobs",
    params(("rc" = String, Path), ("job" = String, Path)),
    responses((status = 200, body = JobDetail), (status = 404, body = ErrorBody))
)]
pub async fn get_one(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((rc, job)): Path<(String, String)>,
) -> Result<Json<JobDetail>, ApiError> {
    Ok(Json(read::detail(&state, &actor, &rc, &job).await?))
}

/// Replaces the job's config (admin). The body is the YAML or JSON config; unknown keys
/// of the current config are kept, and a concurrent edit is refused (409).
#[utoipa::path(
    put, path = "/api/v1/registries/{rc}/jobs/{job}/config", tag = "jobs",
    params(("rc" = String, Path), ("job" = String, Path)),
    request_body(content = String, content_type = "application/yaml"),
    responses((status = 200, body = JobDetail), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody))
)]
pub async fn put_config(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((rc, job)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<JobDetail>, ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| AppError::field("config", "the body is not UTF-8 text"))?;
    configs::replace(&state, &actor, &rc, &job, text).await?;
    Ok(Json(read::detail(&state, &actor, &rc, &job).await?))
}

/// `?confirm=` for production centres.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct Confirm {
    /// The target's name, typed (production centres only).
    confirm: Option<String>,
}

/// The body of `trigger`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TriggerBody {
    /// Passed to every item of this one fire (Capstan instances; Java ignores it).
    parameter: Option<String>,
}

/// `trigger | pause | resume | disable | enable | shutdown` (operator).
#[utoipa::path(
    post, path = "/api/v1/registries/{rc}/jobs/{job}/{action}", tag = "jobs",
    params(("rc" = String, Path), ("job" = String, Path),
        ("action" = String, Path, description = "trigger, pause, resume, disable, enable or shutdown"), Confirm),
    request_body(content = Option<TriggerBody>, description = "trigger only"),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody))
)]
pub async fn job_action(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((rc, job, action)): Path<(String, String, String)>,
    Query(confirm): Query<Confirm>,
    body: Bytes,
) -> Result<http::StatusCode, ApiError> {
    let action = JobAction::parse(&action)
        .filter(|a| *a != JobAction::Remove)
        .ok_or_else(|| AppError::NotFound(format!("no job action {action:?}")))?;
    let parameter = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<TriggerBody>(&body)
            .map_err(|e| AppError::Request(format!("the body is not {{\"parameter\"}}: {e}")))?
            .parameter
    };
    ops::job(
        &state,
        &actor,
        &rc,
        &job,
        action,
        parameter.as_deref(),
        confirm.confirm.as_deref(),
    )
    .await?;
    Ok(http::StatusCode::NO_CONTENT)
}

/// Removes the job from the registry (admin).
#[utoipa::path(
    delete, path = "/api/v1/registries/{rc}/jobs/{job}", tag = "jobs",
    params(("rc" = String, Path), ("job" = String, Path), Confirm),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn delete(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((rc, job)): Path<(String, String)>,
    Query(confirm): Query<Confirm>,
) -> Result<http::StatusCode, ApiError> {
    ops::job(
        &state,
        &actor,
        &rc,
        &job,
        JobAction::Remove,
        None,
        confirm.confirm.as_deref(),
    )
    .await?;
    Ok(http::StatusCode::NO_CONTENT)
}

/// Disables or enables one item (operator).
#[utoipa::path(
    post, path = "/api/v1/registries/{rc}/jobs/{job}/items/{item}/{action}", tag = "jobs",
    params(("rc" = String, Path), ("job" = String, Path), ("item" = u32, Path),
        ("action" = String, Path, description = "disable or enable")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn item_action(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((rc, job, item, action)): Path<(String, String, u32, String)>,
) -> Result<http::StatusCode, ApiError> {
    let enabled = match action.as_str() {
        "enable" => true,
        "disable" => false,
        other => return Err(AppError::NotFound(format!("no item action {other:?}")).into()),
    };
    ops::item(&state, &actor, &rc, &job, item, enabled).await?;
    Ok(http::StatusCode::NO_CONTENT)
}

/// Creates a script or HTTP job (admin).
#[utoipa::path(
    post, path = "/api/v1/registries/{rc}/jobs", tag = "jobs",
    params(("rc" = String, Path)),
    request_body = NewJob,
    responses((status = 201, body = JobDetail), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody))
)]
pub async fn create(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(rc): Path<String>,
    ApiJson(new): ApiJson<NewJob>,
) -> Result<(http::StatusCode, Json<JobDetail>), ApiError> {
    configs::create(&state, &actor, &rc, &new).await?;
    let detail = read::detail(&state, &actor, &rc, new.name.trim()).await?;
    Ok((http::StatusCode::CREATED, Json(detail)))
}

/// Every job config of the centre as one YAML stream.
#[utoipa::path(
    get, path = "/api/v1/registries/{rc}/jobs-export", tag = "jobs",
    params(("rc" = String, Path)),
    responses((status = 200, content_type = "application/yaml", body = String))
)]
pub async fn export(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(rc): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let yaml = configs::export(&state, &actor, &rc).await?;
    Ok((
        [
            (
                http::header::CONTENT_TYPE,
                "application/yaml; charset=utf-8".to_owned(),
            ),
            (
                http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{rc}-jobs.yaml\""),
            ),
        ],
        yaml,
    ))
}

/// Imports a YAML stream or JSON array of configs (admin): existing jobs are updated,
/// new script and HTTP jobs created; each document succeeds or fails on its own.
#[utoipa::path(
    post, path = "/api/v1/registries/{rc}/jobs-import", tag = "jobs",
    params(("rc" = String, Path)),
    request_body(content = String, content_type = "application/yaml"),
    responses((status = 200, body = ImportReport), (status = 422, body = ErrorBody))
)]
pub async fn import(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(rc): Path<String>,
    body: Bytes,
) -> Result<Json<ImportReport>, ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| AppError::field("yaml", "the body is not UTF-8 text"))?;
    Ok(Json(configs::import(&state, &actor, &rc, text).await?))
}

/// Every server (IP) of the centre, with a stale flag.
#[utoipa::path(
    get, path = "/api/v1/registries/{rc}/servers", tag = "servers",
    params(("rc" = String, Path)),
    responses((status = 200, body = Vec<ServerRow>), (status = 404, body = ErrorBody))
)]
pub async fn servers(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(rc): Path<String>,
) -> Result<Json<Vec<ServerRow>>, ApiError> {
    Ok(Json(read::servers(&state, &actor, &rc).await?))
}

/// `disable | enable | shutdown` a server in every job (operator).
#[utoipa::path(
    post, path = "/api/v1/registries/{rc}/servers/{ip}/{action}", tag = "servers",
    params(("rc" = String, Path), ("ip" = String, Path),
        ("action" = String, Path, description = "disable, enable or shutdown"), Confirm),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn server_action(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((rc, ip, action)): Path<(String, String, String)>,
    Query(confirm): Query<Confirm>,
) -> Result<http::StatusCode, ApiError> {
    let action = ServerAction::parse(&action)
        .filter(|a| *a != ServerAction::Remove)
        .ok_or_else(|| AppError::NotFound(format!("no server action {action:?}")))?;
    ops::server(&state, &actor, &rc, &ip, action, confirm.confirm.as_deref()).await?;
    Ok(http::StatusCode::NO_CONTENT)
}

/// Removes a server from every job, shutting its instances down (admin).
#[utoipa::path(
    delete, path = "/api/v1/registries/{rc}/servers/{ip}", tag = "servers",
    params(("rc" = String, Path), ("ip" = String, Path), Confirm),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn delete_server(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((rc, ip)): Path<(String, String)>,
    Query(confirm): Query<Confirm>,
) -> Result<http::StatusCode, ApiError> {
    ops::server(
        &state,
        &actor,
        &rc,
        &ip,
        ServerAction::Remove,
        confirm.confirm.as_deref(),
    )
    .await?;
    Ok(http::StatusCode::NO_CONTENT)
}

/// Removes every stale server (admin); returns their IPs.
#[utoipa::path(
    delete, path = "/api/v1/registries/{rc}/servers", tag = "servers",
    params(("rc" = String, Path), ("stale" = bool, Query, description = "must be true"), Confirm),
    responses((status = 200, body = Vec<String>), (status = 403, body = ErrorBody))
)]
pub async fn delete_stale(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(rc): Path<String>,
    Query(q): Query<StaleQuery>,
) -> Result<Json<Vec<String>>, ApiError> {
    if q.stale != Some(true) {
        return Err(AppError::field(
            "stale",
            "only ?stale=true (remove stale servers) is supported",
        )
        .into());
    }
    Ok(Json(
        ops::remove_stale_servers(&state, &actor, &rc, q.confirm.as_deref()).await?,
    ))
}

/// `?stale=true&confirm=`
#[derive(Debug, Deserialize)]
pub struct StaleQuery {
    stale: Option<bool>,
    confirm: Option<String>,
}

/// `?rc=&job=&server=&success=&state=&from=&to=&page=&per_page=`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RunsQuery {
    /// Centre (required).
    rc: String,
    /// Job.
    job: Option<String>,
    /// Executor IP.
    server: Option<String>,
    /// `true`: succeeded; `false`: failed.
    success: Option<bool>,
    /// `RUNNING | SUCCEEDED | FAILED | ABANDONED`.
    state: Option<String>,
    /// Start at or after, ms since the epoch.
    from: Option<i64>,
    /// Start before, ms.
    to: Option<i64>,
    /// Page from 1.
    page: Option<u32>,
    /// Rows per page (default 50, at most 200).
    per_page: Option<u32>,
}

/// Item executions this console's runtime recorded on a centre, newest first.
#[utoipa::path(
    get, path = "/api/v1/runs", tag = "runs",
    params(RunsQuery),
    responses((status = 200, body = RunPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody))
)]
pub async fn runs(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Query(q): Query<RunsQuery>,
) -> Result<Json<RunPage>, ApiError> {
    let filter = RunFilter {
        rc: q.rc,
        job: q.job,
        server: q.server,
        success: q.success,
        state: q.state,
        from: q.from,
        to: q.to,
        page: q.page,
        per_page: q.per_page,
    };
    Ok(Json(read::runs(&state, &actor, &filter).await?))
}
