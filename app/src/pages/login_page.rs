use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::auth::{Login, guest_lang};
use crate::components::errors::{ErrorBox, action_error};
use crate::components::frame::Frame;
use crate::components::shell::refresh_session_after;
use crate::i18n::t;
use crate::model::{Lang, Theme};

/// Sign-in. Language comes from `?lang=` or the browser's `Accept-Language`.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let login = ServerAction::<Login>::new();
    // The session was loaded (empty) with this page; the next page needs the user.
    refresh_session_after(login);
    let error = action_error(login);
    let detected = Resource::new(|| (), |_| guest_lang());
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                let lang = query
                    .with(|q| q.get("lang").and_then(|l| Lang::parse(&l)))
                    .unwrap_or(detected.await.unwrap_or_default());
                provide_context(lang);
                let next = query.with(|q| q.get("next")).unwrap_or_default();
                view! {
                    <Frame theme=Theme::Auto lang>
                        <main class="login">
                            <h1>"Capstan"</h1>
                            <p class="muted">{t(lang, "login.tagline")}</p>
                            <ErrorBox error />
                            <ActionForm action=login attr:class="card stack">
                                <input type="hidden" name="next" value=next />
                                <label>
                                    {t(lang, "login.username")}
                                    <input
                                        type="text"
                                        name="username"
                                        autocomplete="username"
                                        required
                                        maxlength="64"
                                        autofocus
                                    />
                                </label>
                                <label>
                                    {t(lang, "login.password")}
                                    <input
                                        type="password"
                                        name="password"
                                        autocomplete="current-password"
                                        required
                                        maxlength="128"
                                    />
                                </label>
                                <button type="submit" class="primary">{t(lang, "login.submit")}</button>
                            </ActionForm>
                            <p class="langs">
                                <a href="/login?lang=en" rel="external">"English"</a>
                                " · "
                                <a href="/login?lang=zh-CN" rel="external">"简体中文"</a>
                            </p>
                        </main>
                    </Frame>
                }
            })}
        </Suspense>
    }
}
