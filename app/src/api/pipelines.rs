//! Stream pipelines of a registry centre.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{PipelineDetail, PipelineRow};

/// The pipelines this console runs on the centre.
#[server(prefix = "/fn", endpoint = "list_pipelines")]
pub async fn list_pipelines(rc: String) -> Result<Vec<PipelineRow>, AppError> {
    use crate::ssr::{app_state, auth, pipelines, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            pipelines::list(&state, &actor, &rc).await
        }
        .await,
    )
}

/// One pipeline: DAG, metrics, checkpoints, history.
#[server(prefix = "/fn", endpoint = "get_pipeline")]
pub async fn get_pipeline(rc: String, name: String) -> Result<PipelineDetail, AppError> {
    use crate::ssr::{app_state, auth, pipelines, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            pipelines::detail(&state, &actor, &rc, &name).await
        }
        .await,
    )
}

/// `pause | resume | restart` a pipeline.
#[server(prefix = "/fn", endpoint = "run_pipeline_action")]
pub async fn run_pipeline_action(
    rc: String,
    name: String,
    action: String,
) -> Result<String, AppError> {
    use crate::ssr::{app_state, auth, pipelines, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            pipelines::act(&state, &actor, &rc, &name, &action).await?;
            Ok(action)
        }
        .await,
    )
}
