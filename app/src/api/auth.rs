//! Sign-in, sign-out, the current user, password and preferences.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{Lang, Me, RegistryCentre};

/// Where to go after signing in: only same-site paths, so `?next=` is no open redirect.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Signs in with a username and password; sets the session cookie and redirects to `next`.
#[server(prefix = "/fn", endpoint = "login")]
pub async fn login(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::ssr::db::sessions::SessionKind;
    use crate::ssr::{app_state, auth, respond};
    respond(
        async {
            let state = app_state()?;
            let meta = auth::request_meta();
            let (token, user) = auth::login(
                &state,
                username.trim(),
                &password,
                meta.source_ip,
                SessionKind::Browser,
            )
            .await?;
            let opts = expect_context::<leptos_axum::ResponseOptions>();
            let cookie = http::HeaderValue::from_str(&auth::session_cookie(&state, &token))
                .map_err(crate::ssr::internal)?;
            opts.append_header(http::header::SET_COOKIE, cookie);
            let target = if user.must_change_password {
                "/account?first=1".to_owned()
            } else {
                safe_next(next.as_deref())
            };
            leptos_axum::redirect(&target);
            Ok(())
        }
        .await,
    )
}

/// Signs out: ends the session and clears the cookie.
#[server(prefix = "/fn", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::ssr::{app_state, auth, respond};
    respond(
        async {
            let state = app_state()?;
            if let Ok(actor) = auth::current_actor(&state).await {
                auth::logout(&state, &actor).await?;
            }
            let opts = expect_context::<leptos_axum::ResponseOptions>();
            let cookie = http::HeaderValue::from_str(&auth::clear_session_cookie(&state))
                .map_err(crate::ssr::internal)?;
            opts.append_header(http::header::SET_COOKIE, cookie);
            leptos_axum::redirect("/login");
            Ok(())
        }
        .await,
    )
}

/// What every signed-in page needs: who is signed in and the centres for the switcher.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionInfo {
    /// The user.
    pub me: Me,
    /// Every registry centre.
    pub centres: Vec<RegistryCentre>,
}

/// The signed-in user and the centre list, or `None` when nobody is signed in.
#[server(prefix = "/fn", endpoint = "session")]
pub async fn get_session() -> Result<Option<SessionInfo>, AppError> {
    use crate::ssr::{app_state, auth, centres, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = match auth::current_actor(&state).await {
                Ok(actor) => actor,
                Err(AppError::Unauthenticated) => return Ok(None),
                Err(e) => return Err(e),
            };
            // Listing centres needs a changed password; the shell does not.
            let centres = match centres::list(&state, &actor).await {
                Ok(list) => list,
                Err(AppError::PasswordChangeRequired) => Vec::new(),
                Err(e) => return Err(e),
            };
            Ok(Some(SessionInfo {
                me: actor.user.me(),
                centres,
            }))
        }
        .await,
    )
}

/// The language for someone not signed in, from `Accept-Language`.
#[server(prefix = "/fn", endpoint = "guest_lang")]
pub async fn guest_lang() -> Result<Lang, AppError> {
    let header = use_context::<http::request::Parts>()
        .and_then(|p| {
            p.headers
                .get(http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Ok(Lang::from_accept_language(&header))
}

/// Changes the signed-in user's password.
#[server(prefix = "/fn", endpoint = "change_password")]
pub async fn change_password(
    current: String,
    new: String,
    confirm: String,
) -> Result<(), AppError> {
    use crate::ssr::{app_state, auth, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            if new != confirm {
                return Err(AppError::field("confirm", "the two new passwords differ"));
            }
            let first = actor.user.must_change_password;
            auth::change_own_password(&state, &actor, &current, &new).await?;
            if first {
                leptos_axum::redirect("/");
            }
            Ok(())
        }
        .await,
    )
}

/// Stores the signed-in user's language and theme.
#[server(prefix = "/fn", endpoint = "set_preferences")]
pub async fn set_preferences(lang: String, theme: String) -> Result<(), AppError> {
    use crate::model::Theme;
    use crate::ssr::{app_state, auth, respond, users};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            let lang =
                Lang::parse(&lang).ok_or_else(|| AppError::field("lang", "unknown language"))?;
            let theme =
                Theme::parse(&theme).ok_or_else(|| AppError::field("theme", "unknown theme"))?;
            users::set_preferences(&state, &actor, lang, theme).await
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_site() {
        assert_eq!(safe_next(Some("/rc/local")), "/rc/local");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
