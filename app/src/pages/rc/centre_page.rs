use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::centres::{get_centre, test_centre};
use crate::api::jobs::get_dashboard;
use crate::components::centre_tabs::CentreTabs;
use crate::components::errors::ErrorBox;
use crate::i18n::{t, use_lang};
use crate::model::{CentreKind, ProbeResult, RegistryCentre};
use crate::pages::rc::dashboard::DashboardView;

/// `/rc/{name}`: one registry centre. `?test=1` runs a connection test on the server, so
/// the button is a plain GET form that works with and without JavaScript.
#[component]
pub fn CentrePage() -> impl IntoView {
    let lang = use_lang();
    let params = use_params_map();
    let query = use_query_map();
    let name = move || params.with(|p| p.get("rc").unwrap_or_default());
    let rc = Signal::derive(name);
    let tick = RwSignal::new(0u64);
    let centre = Resource::new(name, get_centre);
    let board = Resource::new(move || (name(), tick.get()), |(rc, _)| get_dashboard(rc));
    let probe = Resource::new(
        move || (name(), query.with(|q| q.get("test").is_some())),
        |(name, wanted)| async move {
            if wanted {
                Some(test_centre(name).await)
            } else {
                None
            }
        },
    );
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                match centre.await {
                    Err(e) => view! {
                        <h1>{name()}</h1>
                        <ErrorBox error=Signal::stored(Some(e)) />
                        <p>
                            <a href="/centres">{t(lang, "centres.title")}</a>
                        </p>
                    }
                    .into_any(),
                    Ok(c) => {
                        let result = probe.await;
                        view! { <CentreDetail c result /> }.into_any()
                    }
                }
            })}
        </Suspense>
        <CentreTabs rc tick />
        <Transition>
            {move || Suspend::new(async move {
                match board.await {
                    Err(e) => view! { <ErrorBox error=Signal::stored(Some(e)) /> }.into_any(),
                    Ok(d) => view! { <DashboardView d rc=name() /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn CentreDetail(
    c: RegistryCentre,
    result: Option<Result<ProbeResult, crate::error::AppError>>,
) -> impl IntoView {
    let lang = use_lang();
    let embedded = c.kind == CentreKind::Embedded;
    view! {
        <h1>
            <span class="dot big" style=format!("background:{}", c.color)></span>
            {c.name.clone()}
        </h1>
        <dl class="facts">
            <dt>{t(lang, "centres.kind")}</dt>
            <dd>{t(lang, c.kind.as_str())}</dd>
            <dt>{t(lang, "centres.namespace")}</dt>
            <dd class="mono">{format!("/{}", c.namespace)}</dd>
            {(!embedded).then(|| view! {
                <dt>{t(lang, "centres.connect")}</dt>
                <dd class="mono">{c.connect.clone()}</dd>
                <dt>{t(lang, "centres.session_timeout")}</dt>
                <dd>{format!("{} ms", c.session_timeout_ms)}</dd>
                <dt>{t(lang, "centres.digest")}</dt>
                <dd>{if c.has_digest { t(lang, "centres.digest_set") } else { t(lang, "centres.digest_none") }}</dd>
            })}
        </dl>
        <Form method="GET" action="">
            <input type="hidden" name="test" value="1" />
            <button type="submit" data-testid="test-connection">{t(lang, "centres.test")}</button>
        </Form>
        {result.map(|r| match r {
            Ok(p) => view! {
                <div class="alert alert-ok" role="status" data-testid="probe-ok">
                    <strong>{t(lang, "rc.connected")}</strong>
                    " "
                    {format!(
                        "{} ms · {} {} · session {} ms",
                        p.latency_ms,
                        p.jobs,
                        t(lang, "rc.children"),
                        p.session_timeout_ms,
                    )}
                    {(!p.namespace_exists).then(|| view! { " · " {t(lang, "rc.namespace_missing")} })}
                </div>
            }
            .into_any(),
            Err(e) => view! { <ErrorBox error=Signal::stored(Some(e)) /> }.into_any(),
        })}
    }
}
