//! User management (admins) and preferences (everyone), shared by server fns and the API.

use super::audit::Audit;
use super::auth::{Actor, hash_password};
use super::db::users;
use super::{AppState, internal};
use crate::error::{AppError, FieldErrors};
use crate::model::{Lang, Role, Theme, UserSummary, validate_new_password, validate_username};

/// All users.
pub async fn list(state: &AppState, actor: &Actor) -> Result<Vec<UserSummary>, AppError> {
    actor.require(Role::Admin)?;
    Ok(users::list(&state.db)
        .await
        .map_err(internal)?
        .iter()
        .map(users::UserRow::summary)
        .collect())
}

/// Adds a user with an initial password they must change at first login.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    username: &str,
    role: Role,
    password: &str,
) -> Result<UserSummary, AppError> {
    let audit = Audit::new("user.create", "user", username).by(actor);
    let result = async {
        actor.require(Role::Admin)?;
        let mut errors = FieldErrors::default();
        validate_username(&mut errors, username);
        errors.finish()?;
        validate_new_password("password", password)?;
        if users::by_name(&state.db, username)
            .await
            .map_err(internal)?
            .is_some()
        {
            return Err(AppError::Conflict(format!(
                "a user named {username:?} already exists"
            )));
        }
        let hash = hash_password(password.to_owned()).await?;
        users::insert(&state.db, username, &hash, role, true)
            .await
            .map_err(internal)?;
        Ok(UserSummary {
            username: username.to_owned(),
            role,
            must_change_password: true,
            created_at: super::db::now_ms(),
        })
    }
    .await;
    let audit = match &result {
        Ok(u) => audit.after(&serde_json::json!({"role": u.role})),
        Err(_) => audit,
    };
    audit.finish(state, &result).await;
    result
}

async fn existing(state: &AppState, username: &str) -> Result<users::UserRow, AppError> {
    users::by_name(&state.db, username)
        .await
        .map_err(internal)?
        .ok_or_else(|| AppError::NotFound(format!("no user named {username:?}")))
}

/// Refuses a change that would leave the console without an admin.
async fn keep_an_admin(state: &AppState, target: &users::UserRow) -> Result<(), AppError> {
    if target.role() == Role::Admin && users::count_admins(&state.db).await.map_err(internal)? <= 1
    {
        return Err(AppError::Conflict(
            "this is the last admin; make another user admin first".into(),
        ));
    }
    Ok(())
}

/// Changes a user's role.
pub async fn set_role(
    state: &AppState,
    actor: &Actor,
    username: &str,
    role: Role,
) -> Result<(), AppError> {
    let mut audit = Audit::new("user.role", "user", username)
        .by(actor)
        .after(&serde_json::json!({"role": role}));
    let result = async {
        actor.require(Role::Admin)?;
        let target = existing(state, username).await?;
        audit = audit
            .clone()
            .before(&serde_json::json!({"role": target.role()}));
        if target.role() != role && role != Role::Admin {
            keep_an_admin(state, &target).await?;
        }
        users::set_role(&state.db, target.id, role)
            .await
            .map_err(internal)
    }
    .await;
    audit.finish(state, &result).await;
    result
}

/// Removes a user. Admins cannot remove themselves or the last admin.
pub async fn delete(state: &AppState, actor: &Actor, username: &str) -> Result<(), AppError> {
    let mut audit = Audit::new("user.delete", "user", username).by(actor);
    let result = async {
        actor.require(Role::Admin)?;
        let target = existing(state, username).await?;
        audit = audit
            .clone()
            .before(&serde_json::json!({"role": target.role()}));
        if target.id == actor.user.id {
            return Err(AppError::Conflict("you cannot remove yourself".into()));
        }
        keep_an_admin(state, &target).await?;
        users::delete(&state.db, target.id).await.map_err(internal)
    }
    .await;
    audit.finish(state, &result).await;
    result
}

/// Stores the actor's language and theme.
pub async fn set_preferences(
    state: &AppState,
    actor: &Actor,
    lang: Lang,
    theme: Theme,
) -> Result<(), AppError> {
    let before = actor.user.me();
    let result = users::set_preferences(&state.db, actor.user.id, lang, theme)
        .await
        .map_err(internal);
    Audit::new("user.preferences", "user", &actor.user.username)
        .by(actor)
        .before(&serde_json::json!({"lang": before.lang, "theme": before.theme}))
        .after(&serde_json::json!({"lang": lang, "theme": theme}))
        .finish(state, &result)
        .await;
    result
}
