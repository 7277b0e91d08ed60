//! The tabs of a registry centre: dashboard, jobs, servers, history, pipelines.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::components::live::Live;
use crate::i18n::{t, use_lang};

/// The tab bar, with the live indicator of the view.
#[component]
pub fn CentreTabs(#[prop(into)] rc: Signal<String>, tick: RwSignal<u64>) -> impl IntoView {
    let lang = use_lang();
    let href = move |tail: &'static str| format!("/rc/{}{tail}", rc.get());
    view! {
        <nav class="tabs" data-testid="centre-tabs">
            <A href=move || href("") exact=true>{t(lang, "rc.dashboard")}</A>
            <A href=move || href("/jobs")>{t(lang, "rc.jobs")}</A>
            <A href=move || href("/servers")>{t(lang, "rc.servers")}</A>
            <A href=move || href("/history")>{t(lang, "rc.history")}</A>
            <A href=move || href("/pipelines")>{t(lang, "rc.pipelines")}</A>
            <Live rc tick />
        </nav>
    }
}
