//! The REST API under `/api/v1`, described at `/api/v1/openapi.json`.
//!
//! It calls the same operations as the server functions (`capstan_app::ssr`), so roles,
//! validation and audit are identical whichever way a change arrives.

mod audit;
mod jobs;
mod pipelines;
mod registries;
mod session;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use capstan_app::error::AppError;
use capstan_app::ssr::AppState;
use capstan_app::ssr::auth::{Actor, RequestMeta, authenticate};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Routes relative to `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(session::login))
        .route("/logout", post(session::logout))
        .route(
            "/registries",
            get(registries::list).post(registries::create),
        )
        .route(
            "/registries/{name}",
            get(registries::get_one)
                .put(registries::update)
                .delete(registries::delete),
        )
        .route("/registries/{name}/test", post(registries::test))
        // Path parameters are positional in the handlers; the router wants one name per
        // position, hence `{name}` for the centre everywhere.
        .route(
            "/registries/{name}/jobs",
            get(jobs::list).post(jobs::create),
        )
        .route("/registries/{name}/jobs-export", get(jobs::export))
        .route("/registries/{name}/jobs-import", post(jobs::import))
        .route(
            "/registries/{name}/jobs/{job}",
            get(jobs::get_one).delete(jobs::delete),
        )
        .route(
            "/registries/{name}/jobs/{job}/config",
            put(jobs::put_config),
        )
        .route(
            "/registries/{name}/jobs/{job}/{action}",
            post(jobs::job_action),
        )
        .route(
            "/registries/{name}/jobs/{job}/items/{item}/{action}",
            post(jobs::item_action),
        )
        .route(
            "/registries/{name}/servers",
            get(jobs::servers).delete(jobs::delete_stale),
        )
        .route(
            "/registries/{name}/servers/{ip}",
            axum::routing::delete(jobs::delete_server),
        )
        .route(
            "/registries/{name}/servers/{ip}/{action}",
            post(jobs::server_action),
        )
        .route("/registries/{name}/pipelines", get(pipelines::list))
        .route(
            "/registries/{name}/pipelines/{pipeline}",
            get(pipelines::get_one),
        )
        .route(
            "/registries/{name}/pipelines/{pipeline}/{action}",
            post(pipelines::action),
        )
        .route("/runs", get(jobs::runs))
        .route("/audit", get(audit::list))
        .route("/openapi.json", get(openapi))
        .fallback(|| async { ApiError(AppError::NotFound("no such API route".into())) })
}

/// `{"error": {"code", "message", "fields"?}}`
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    code: String,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<std::collections::BTreeMap<String, String>>,
}

/// An [`AppError`] as a JSON response with the status that fits.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        // Unknown enum values and missing fields land here: say which, as a 400/422.
        let message = rejection.body_text();
        if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError(AppError::TooLarge);
        }
        match rejection {
            JsonRejection::JsonDataError(_) => ApiError(AppError::Validation {
                message,
                fields: Default::default(),
            }),
            _ => ApiError(AppError::Request(message)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = http::StatusCode::from_u16(e.status())
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail {
                code: e.code().to_owned(),
                message: e.to_string(),
                fields: e.fields().cloned(),
            },
        };
        let mut res = (status, Json(body)).into_response();
        if let AppError::RateLimited { retry_after_secs } = e
            && let Ok(v) = http::HeaderValue::from_str(&retry_after_secs.to_string())
        {
            res.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        res
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// The authenticated caller (bearer token or session cookie).
pub struct ApiActor(pub Actor);

impl FromRequestParts<AppState> for ApiActor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(ApiActor(
            authenticate(state, &RequestMeta::from_parts(parts)).await?,
        ))
    }
}

/// The caller's address and credentials, whether or not they are valid.
pub struct ClientMeta(pub RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for ClientMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientMeta(RequestMeta::from_parts(parts)))
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Capstan API", description = "Registry centres, jobs, items, servers, runs, audit log and sessions of a Capstan console."),
    paths(
        session::login,
        session::logout,
        registries::list,
        registries::create,
        registries::get_one,
        registries::update,
        registries::delete,
        registries::test,
        audit::list,
        jobs::list,
        jobs::get_one,
        jobs::put_config,
        jobs::job_action,
        jobs::delete,
        jobs::item_action,
        jobs::create,
        jobs::export,
        jobs::import,
        jobs::servers,
        jobs::server_action,
        jobs::delete_server,
        jobs::delete_stale,
        jobs::runs,
        pipelines::list,
        pipelines::get_one,
        pipelines::action,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
