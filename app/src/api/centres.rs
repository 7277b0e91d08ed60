//! Registry centres.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{CentreInput, ProbeResult, RegistryCentre};

/// All registry centres.
#[server(prefix = "/fn", endpoint = "list_centres")]
pub async fn list_centres() -> Result<Vec<RegistryCentre>, AppError> {
    use crate::ssr::{app_state, auth, centres, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            centres::list(&state, &actor).await
        }
        .await,
    )
}

/// One registry centre; a 404 for an unknown name.
#[server(prefix = "/fn", endpoint = "get_centre")]
pub async fn get_centre(name: String) -> Result<RegistryCentre, AppError> {
    use crate::ssr::{app_state, auth, centres, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            centres::get(&state, &actor, &name).await
        }
        .await,
    )
}

/// Adds a centre (`original` empty) or edits the one named `original`; then shows the list.
#[server(prefix = "/fn", endpoint = "save_centre")]
pub async fn save_centre(original: String, input: CentreInput) -> Result<RegistryCentre, AppError> {
    use crate::ssr::{app_state, auth, centres, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            let saved = if original.is_empty() {
                centres::create(&state, &actor, &input).await?
            } else {
                centres::update(&state, &actor, &original, &input).await?
            };
            leptos_axum::redirect("/centres");
            Ok(saved)
        }
        .await,
    )
}

/// Removes a centre from the console. A production centre needs its name typed into
/// `confirm`.
#[server(prefix = "/fn", endpoint = "delete_centre")]
pub async fn delete_centre(name: String, confirm: Option<String>) -> Result<(), AppError> {
    use crate::ssr::{app_state, auth, centres, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            let centre = centres::get(&state, &actor, &name).await?;
            if centre.production && confirm.as_deref().map(str::trim) != Some(name.as_str()) {
                return Err(AppError::field(
                    "confirm",
                    format!("{name} is a production centre: type its name to confirm"),
                ));
            }
            centres::delete(&state, &actor, &name).await
        }
        .await,
    )
}

/// Tests a saved centre's connection.
#[server(prefix = "/fn", endpoint = "test_centre")]
pub async fn test_centre(name: String) -> Result<ProbeResult, AppError> {
    use crate::ssr::{app_state, auth, centres, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            centres::test(&state, &actor, &name).await
        }
        .await,
    )
}
