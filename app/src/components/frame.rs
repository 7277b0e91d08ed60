//! The outermost element: theme and the hydration marker.

use leptos::prelude::*;

use crate::model::{Lang, Theme};

/// Wraps a whole page. `data-hydrated` turns `true` once the browser has hydrated the page
/// (effects run only in the browser), which is what browser tests wait for.
#[component]
pub fn Frame(theme: Theme, lang: Lang, children: Children) -> impl IntoView {
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    view! {
        <div
            class="app"
            data-theme=theme.code()
            lang=lang.code()
            data-hydrated=move || if hydrated.get() { "true" } else { "false" }
        >
            {children()}
        </div>
    }
}
