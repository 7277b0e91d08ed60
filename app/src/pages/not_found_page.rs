use leptos::prelude::*;

use crate::components::frame::Frame;
use crate::i18n::{t, use_lang};
use crate::model::Theme;

/// Any path no route matches. Answers 404 on the server.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
        opts.set_status(http::StatusCode::NOT_FOUND);
    }
    let lang = use_lang();
    view! {
        <Frame theme=Theme::Auto lang>
            <main class="narrow">
                <h1>{t(lang, "notfound.title")}</h1>
                <p>
                    <a href="/">{t(lang, "notfound.home")}</a>
                </p>
            </main>
        </Frame>
    }
}
