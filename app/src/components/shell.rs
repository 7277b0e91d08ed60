//! The navigation shell around every signed-in page: the registry-centre switcher, the
//! navigation, the production banner.

use leptos::prelude::*;
use leptos_router::components::{A, Outlet};
use leptos_router::hooks::use_location;

use crate::api::auth::{Logout, SessionInfo, SetPreferences, get_session};
use crate::components::frame::Frame;
use crate::error::AppError;
use crate::i18n::t;
use crate::model::{Lang, Me, RegistryCentre, Role, Theme};

/// The centre named in the current URL (`/rc/{name}/…`) and the rest of the path.
pub fn centre_in_path(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/rc/")?;
    let (name, tail) = rest.split_once('/').map_or((rest, ""), |(n, t)| (n, t));
    (!name.is_empty()).then(|| {
        (
            name.to_owned(),
            if tail.is_empty() {
                String::new()
            } else {
                format!("/{tail}")
            },
        )
    })
}

/// The signed-in user and the centre list, loaded once per page load at the root of the
/// app (so their hydration ids never depend on how routes render) and refetched when
/// preferences are saved.
#[derive(Clone, Copy)]
pub struct Session(pub Resource<Result<Option<SessionInfo>, AppError>>);

impl Session {
    /// Creates the resource and provides it, and the preferences action, as context.
    pub fn provide() {
        let prefs = ServerAction::<SetPreferences>::new();
        provide_context(prefs);
        provide_context(Session(Resource::new(
            move || prefs.version().get(),
            |_| get_session(),
        )));
    }
}

/// Refetches the session after `action` succeeds: the centre switcher lists what a page
/// just added, renamed or removed.
pub fn refresh_session_after<S>(action: ServerAction<S>)
where
    S: leptos::server_fn::ServerFn + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
    S::Error: Clone + Send + Sync + 'static,
{
    if let Some(Session(session)) = use_context::<Session>() {
        Effect::watch(
            move || action.version().get(),
            move |_, _, _| {
                if matches!(action.value().get_untracked(), Some(Ok(_))) {
                    session.refetch();
                }
            },
            false,
        );
    }
}

/// The centres the signed-in user sees, for pages that need a centre's flags.
#[derive(Clone)]
pub struct Centres(pub Vec<RegistryCentre>);

/// Whether centre `rc` is flagged production, as a function of the centre name. Reads
/// the context once, where components are built, so it can be called anywhere later.
pub fn production_flag() -> impl Fn(&str) -> bool + Clone + Send + Sync + 'static {
    let centres = use_context::<Centres>().map(|c| c.0).unwrap_or_default();
    move |rc: &str| centres.iter().any(|c| c.name == rc && c.production)
}

/// Whether the signed-in user has `role`.
pub fn can(role: Role) -> bool {
    use_context::<Me>().is_some_and(|m| m.role.allows(role))
}

/// Layout of every signed-in page.
#[component]
pub fn Layout() -> impl IntoView {
    let Session(session) = expect_context::<Session>();
    view! {
        <Suspense fallback=|| view! { <div class="app loading"></div> }>
            {move || Suspend::new(async move {
                match session.await {
                    Ok(Some(SessionInfo { me, centres })) => {
                        provide_context(me.clone());
                        provide_context(Centres(centres.clone()));
                        view! { <Shell me centres /> }.into_any()
                    }
                    Ok(None) => view! {
                        <Frame theme=Theme::Auto lang=Lang::En>
                            <main class="narrow">
                                <p>
                                    "Your session has ended. "
                                    <a href="/login" rel="external">"Sign in again"</a>
                                </p>
                            </main>
                        </Frame>
                    }
                    .into_any(),
                    Err(e) => view! {
                        <Frame theme=Theme::Auto lang=Lang::En>
                            <main class="narrow">
                                <div class="alert alert-error">{e.to_string()}</div>
                            </main>
                        </Frame>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Shell(me: Me, centres: Vec<RegistryCentre>) -> impl IntoView {
    let lang = me.lang;
    let location = use_location();
    let current = Memo::new(move |_| centre_in_path(&location.pathname.get()));
    let centres = StoredValue::new(centres);
    let logout = ServerAction::<Logout>::new();
    refresh_session_after(logout);
    let is_admin = me.role == Role::Admin;
    let banner = move || {
        let (name, _) = current.get()?;
        let c = centres.with_value(|cs| cs.iter().find(|c| c.name == name).cloned())?;
        c.production.then(|| {
            view! {
                <div class="prod-banner" style=format!("background:{}", c.color) role="status">
                    {t(lang, "shell.production")}
                    " · "
                    <strong>{c.name.clone()}</strong>
                </div>
            }
        })
    };
    view! {
        <Frame theme=me.theme lang>
            <header class="topbar">
                <a class="brand" href="/">
                    "Capstan"
                </a>
                <details class="switcher">
                    <summary>
                        <span class="label">{t(lang, "shell.centre")}</span>
                        {move || {
                            let name = current.get().map(|(n, _)| n);
                            let color = name
                                .as_ref()
                                .and_then(|n| {
                                    centres
                                        .with_value(|cs| {
                                            cs.iter().find(|c| &c.name == n).map(|c| c.color.clone())
                                        })
                                });
                            view! {
                                <span
                                    class="dot"
                                    style=color.map(|c| format!("background:{c}")).unwrap_or_default()
                                ></span>
                                <span class="current" data-testid="current-centre">
                                    {name.unwrap_or_else(|| t(lang, "shell.none").to_owned())}
                                </span>
                            }
                        }}
                    </summary>
                    <ul>
                        {move || {
                            let tail = current.get().map(|(_, tail)| tail).unwrap_or_default();
                            centres
                                .get_value()
                                .into_iter()
                                .map(|c| {
                                    let href = format!("/rc/{}{}", c.name, tail);
                                    view! {
                                        <li>
                                            <a href=href data-centre=c.name.clone()>
                                                <span class="dot" style=format!("background:{}", c.color)></span>
                                                {c.name.clone()}
                                                {c.production.then(|| view! { <span class="badge prod">"prod"</span> })}
                                            </a>
                                        </li>
                                    }
                                })
                                .collect_view()
                        }}
                    </ul>
                </details>
                <nav>
                    <A href="/" exact=true>{t(lang, "nav.overview")}</A>
                    <A href="/centres">{t(lang, "nav.centres")}</A>
                    {is_admin.then(|| view! {
                        <A href="/admin/users">{t(lang, "nav.users")}</A>
                        <A href="/admin/audit">{t(lang, "nav.audit")}</A>
                    })}
                </nav>
                <div class="user">
                    <A href="/account">
                        <span data-testid="username">{me.username.clone()}</span>
                        " "
                        <span class="badge">{t(lang, me.role.as_str())}</span>
                    </A>
                    <ActionForm action=logout attr:class="inline">
                        <button type="submit" class="link">{t(lang, "nav.logout")}</button>
                    </ActionForm>
                </div>
            </header>
            {banner}
            <main>
                <Outlet />
            </main>
        </Frame>
    }
}

#[cfg(test)]
mod tests {
    use super::centre_in_path;

    #[test]
    fn centre_from_path() {
        assert_eq!(
            centre_in_path("/rc/local"),
            Some(("local".into(), "".into()))
        );
        assert_eq!(
            centre_in_path("/rc/prod-zk/jobs/x"),
            Some(("prod-zk".into(), "/jobs/x".into()))
        );
        assert_eq!(centre_in_path("/centres"), None);
        assert_eq!(centre_in_path("/rc/"), None);
    }
}
