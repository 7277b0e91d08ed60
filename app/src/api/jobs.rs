//! Jobs, items, servers, runs and the dashboard of a registry centre.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{
    ConfigEdit, Dashboard, ImportReport, JobDetail, JobFilter, JobPage, NewJob, RunFilter, RunPage,
    ServerRow,
};

/// The centre's dashboard.
#[server(prefix = "/fn", endpoint = "get_dashboard")]
pub async fn get_dashboard(rc: String) -> Result<Dashboard, AppError> {
    use crate::ssr::{app_state, auth, jobs::read, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            read::dashboard(&state, &actor, &rc).await
        }
        .await,
    )
}

/// One page of the centre's jobs.
#[server(prefix = "/fn", endpoint = "list_jobs")]
pub async fn list_jobs(rc: String, filter: JobFilter) -> Result<JobPage, AppError> {
    use crate::ssr::{app_state, auth, jobs::read, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            read::list(&state, &actor, &rc, &filter).await
        }
        .await,
    )
}

/// One job.
#[server(prefix = "/fn", endpoint = "get_job")]
pub async fn get_job(rc: String, job: String) -> Result<JobDetail, AppError> {
    use crate::ssr::{app_state, auth, jobs::read, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            read::detail(&state, &actor, &rc, &job).await
        }
        .await,
    )
}

/// `trigger | pause | resume | disable | enable | shutdown | remove` on a job.
#[server(prefix = "/fn", endpoint = "run_job_action")]
pub async fn run_job_action(
    rc: String,
    job: String,
    action: String,
    parameter: Option<String>,
    confirm: Option<String>,
) -> Result<String, AppError> {
    use crate::ssr::jobs::ops::{self, JobAction};
    use crate::ssr::{app_state, auth, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            let a = JobAction::parse(&action)
                .ok_or_else(|| AppError::Request(format!("no job action {action:?}")))?;
            ops::job(
                &state,
                &actor,
                &rc,
                &job,
                a,
                parameter.as_deref(),
                confirm.as_deref(),
            )
            .await?;
            if a == JobAction::Remove {
                leptos_axum::redirect(&format!("/rc/{rc}/jobs"));
            }
            Ok(action)
        }
        .await,
    )
}

/// Disables or enables an item.
#[server(prefix = "/fn", endpoint = "set_item_enabled")]
pub async fn set_item_enabled(
    rc: String,
    job: String,
    item: u32,
    enabled: bool,
) -> Result<(), AppError> {
    use crate::ssr::{app_state, auth, jobs::ops, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            ops::item(&state, &actor, &rc, &job, item, enabled).await
        }
        .await,
    )
}

/// Saves the job page's config edit (admin).
#[server(prefix = "/fn", endpoint = "edit_job_config")]
pub async fn edit_job_config(rc: String, job: String, edit: ConfigEdit) -> Result<(), AppError> {
    use crate::ssr::{app_state, auth, jobs::configs, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            configs::edit(&state, &actor, &rc, &job, &edit)
                .await
                .map(drop)
        }
        .await,
    )
}

/// Replaces a job's config with YAML (admin).
#[server(prefix = "/fn", endpoint = "replace_job_config")]
pub async fn replace_job_config(rc: String, job: String, yaml: String) -> Result<(), AppError> {
    use crate::ssr::{app_state, auth, jobs::configs, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            configs::replace(&state, &actor, &rc, &job, &yaml)
                .await
                .map(drop)
        }
        .await,
    )
}

/// The next 10 fires of a cron expression, for the editor.
#[server(prefix = "/fn", endpoint = "preview_cron")]
pub async fn preview_cron(cron: String, time_zone: Option<String>) -> Result<Vec<i64>, AppError> {
    use crate::ssr::{app_state, auth, jobs::configs, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            actor.require(crate::model::Role::Viewer)?;
            configs::preview(&cron, time_zone.as_deref().filter(|z| !z.is_empty()), 10)
        }
        .await,
    )
}

/// Creates a script or HTTP job (admin), then shows it.
#[server(prefix = "/fn", endpoint = "create_job")]
pub async fn create_job(rc: String, new: NewJob) -> Result<(), AppError> {
    use crate::ssr::{app_state, auth, jobs::configs, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            configs::create(&state, &actor, &rc, &new).await?;
            leptos_axum::redirect(&format!("/rc/{rc}/jobs/{}", new.name.trim()));
            Ok(())
        }
        .await,
    )
}

/// Imports job configs (admin).
#[server(prefix = "/fn", endpoint = "import_jobs")]
pub async fn import_jobs(rc: String, yaml: String) -> Result<ImportReport, AppError> {
    use crate::ssr::{app_state, auth, jobs::configs, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            configs::import(&state, &actor, &rc, &yaml).await
        }
        .await,
    )
}

/// The centre's servers.
#[server(prefix = "/fn", endpoint = "list_servers")]
pub async fn list_servers(rc: String) -> Result<Vec<ServerRow>, AppError> {
    use crate::ssr::{app_state, auth, jobs::read, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            read::servers(&state, &actor, &rc).await
        }
        .await,
    )
}

/// `disable | enable | shutdown | remove` a server, or `remove_stale` for all stale ones.
#[server(prefix = "/fn", endpoint = "run_server_action")]
pub async fn run_server_action(
    rc: String,
    ip: String,
    action: String,
    confirm: Option<String>,
) -> Result<String, AppError> {
    use crate::ssr::jobs::ops::{self, ServerAction};
    use crate::ssr::{app_state, auth, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            if action == "remove_stale" {
                let removed =
                    ops::remove_stale_servers(&state, &actor, &rc, confirm.as_deref()).await?;
                return Ok(removed.join(", "));
            }
            let a = ServerAction::parse(&action)
                .ok_or_else(|| AppError::Request(format!("no server action {action:?}")))?;
            ops::server(&state, &actor, &rc, &ip, a, confirm.as_deref()).await?;
            Ok(action)
        }
        .await,
    )
}

/// Runs of a centre.
#[server(prefix = "/fn", endpoint = "list_runs")]
pub async fn list_runs(filter: RunFilter) -> Result<RunPage, AppError> {
    use crate::ssr::{app_state, auth, jobs::read, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            read::runs(&state, &actor, &filter).await
        }
        .await,
    )
}
