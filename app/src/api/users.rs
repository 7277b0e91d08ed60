//! User management (admins only).

use leptos::prelude::*;

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::model::Role;
use crate::model::UserSummary;

#[cfg(feature = "ssr")]
fn parse_role(role: &str) -> Result<Role, AppError> {
    Role::parse(role).ok_or_else(|| AppError::field("role", "choose viewer, operator or admin"))
}

/// All users.
#[server(prefix = "/fn", endpoint = "list_users")]
pub async fn list_users() -> Result<Vec<UserSummary>, AppError> {
    use crate::ssr::{app_state, auth, respond, users};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            users::list(&state, &actor).await
        }
        .await,
    )
}

/// Adds a user; they must change the initial password at first login.
#[server(prefix = "/fn", endpoint = "create_user")]
pub async fn create_user(
    username: String,
    role: String,
    password: String,
) -> Result<UserSummary, AppError> {
    use crate::ssr::{app_state, auth, respond, users};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            let role = parse_role(&role)?;
            users::create(&state, &actor, username.trim(), role, &password).await
        }
        .await,
    )
}

/// Changes a user's role.
#[server(prefix = "/fn", endpoint = "set_user_role")]
pub async fn set_user_role(username: String, role: String) -> Result<(), AppError> {
    use crate::ssr::{app_state, auth, respond, users};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            let role = parse_role(&role)?;
            users::set_role(&state, &actor, &username, role).await
        }
        .await,
    )
}

/// Removes a user.
#[server(prefix = "/fn", endpoint = "delete_user")]
pub async fn delete_user(username: String) -> Result<(), AppError> {
    use crate::ssr::{app_state, auth, respond, users};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            users::delete(&state, &actor, &username).await
        }
        .await,
    )
}
