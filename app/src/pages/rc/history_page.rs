use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};
use leptos_router::params::ParamsMap;

use crate::api::jobs::list_runs;
use crate::components::centre_tabs::CentreTabs;
use crate::components::errors::ErrorBox;
use crate::components::url::{Pager, param};
use crate::i18n::{t, use_lang};
use crate::model::{RunFilter, format_ms, parse_date_ms};
use crate::pages::rc::job_page::RunTable;

const PER_PAGE: u32 = 50;
const KEYS: [&str; 5] = ["job", "server", "state", "from", "to"];

fn filter_from(rc: String, q: &ParamsMap) -> RunFilter {
    RunFilter {
        rc,
        job: param(q, "job"),
        server: param(q, "server"),
        success: None,
        state: param(q, "state"),
        from: param(q, "from").and_then(|d| parse_date_ms(&d)),
        // `to` is a whole day: include it.
        to: param(q, "to")
            .and_then(|d| parse_date_ms(&d))
            .map(|ms| ms + 86_400_000),
        page: param(q, "page").and_then(|p| p.parse().ok()),
        per_page: Some(PER_PAGE),
    }
}

/// `/rc/{rc}/history`: item executions and the status trace recorded by this console's
/// runtime on the centre, filtered and paged on the server.
#[component]
pub fn HistoryPage() -> impl IntoView {
    let lang = use_lang();
    let params = use_params_map();
    let query = use_query_map();
    let rc = Signal::derive(move || params.with(|p| p.get("rc").unwrap_or_default()));
    let tick = RwSignal::new(0u64);
    let runs = Resource::new(
        move || (query.with(|q| filter_from(rc.get(), q)), tick.get()),
        |(f, _)| list_runs(f),
    );
    let value = move |k: &'static str| query.with(|q| q.get(k).unwrap_or_default());
    view! {
        <h1>{move || rc.get()} " · " {t(lang, "rc.history")}</h1>
        <CentreTabs rc tick />
        <Form method="GET" action="" attr:class="filters">
            <input type="text" name="job" placeholder=t(lang, "jobs.name") value=value("job") maxlength="255" />
            <input type="text" name="server" placeholder="IP" value=value("server") maxlength="64" />
            <select name="state">
                <option value="" selected=value("state").is_empty()>{t(lang, "audit.any_result")}</option>
                {["RUNNING", "SUCCEEDED", "FAILED", "ABANDONED"]
                    .into_iter()
                    .map(|s| view! { <option value=s selected=value("state") == s>{s}</option> })
                    .collect_view()}
            </select>
            <label>{t(lang, "audit.from")} <input type="date" name="from" value=value("from") /></label>
            <label>{t(lang, "audit.to")} <input type="date" name="to" value=value("to") /></label>
            <button type="submit">{t(lang, "audit.filter")}</button>
        </Form>
        <Transition>
            {move || Suspend::new(async move {
                match runs.await {
                    Err(e) => view! { <ErrorBox error=Signal::stored(Some(e)) /> }.into_any(),
                    Ok(page) if !page.has_history => view! {
                        <p class="alert alert-info">{t(lang, "history.none_here")}</p>
                    }
                    .into_any(),
                    Ok(page) => {
                        let q = query.get_untracked();
                        let path = format!("/rc/{}/history", rc.get_untracked());
                        view! {
                            <p class="muted" data-testid="runs-total">{format!("{} {}", page.total, t(lang, "history.runs"))}</p>
                            <RunTable runs=page.items />
                            <Pager path=path query=q keys=&KEYS page=page.page total=page.total per_page=page.per_page />
                            <h2>{t(lang, "history.trace")}</h2>
                            <table class="grid" data-testid="traces">
                                <thead>
                                    <tr>
                                        <th>{t(lang, "audit.time")}</th>
                                        <th>{t(lang, "jobs.name")}</th>
                                        <th>"IP"</th>
                                        <th>{t(lang, "job.items")}</th>
                                        <th>{t(lang, "jobs.status")}</th>
                                        <th></th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {page.traces.into_iter().map(|tr| view! {
                                        <tr>
                                            <td class="nowrap">{format_ms(tr.at_ms)}</td>
                                            <td>{tr.job}</td>
                                            <td class="mono">{tr.slave_id}</td>
                                            <td class="mono">{tr.sharding_items}</td>
                                            <td>{tr.state}</td>
                                            <td class="small">{tr.message}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }
                        .into_any()
                    }
                }
            })}
        </Transition>
    }
}
