use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};
use leptos_router::params::ParamsMap;

use crate::api::jobs::{RunJobAction, list_jobs};
use crate::components::centre_tabs::CentreTabs;
use crate::components::errors::{ErrorBox, action_error};
use crate::components::job_actions::JobActions;
use crate::components::shell::{can, production_flag};
use crate::components::url::{Pager, param};
use crate::i18n::{t, use_lang};
use crate::model::{JOB_STATUSES, JobFilter, JobRow, Role, format_ms};

const PER_PAGE: u32 = 50;
const KEYS: [&str; 3] = ["q", "status", "tag"];

fn filter_from(q: &ParamsMap) -> JobFilter {
    JobFilter {
        q: param(q, "q"),
        status: param(q, "status"),
        tag: param(q, "tag"),
        page: param(q, "page").and_then(|p| p.parse().ok()),
        per_page: Some(PER_PAGE),
    }
}

/// `/rc/{rc}/jobs`: the centre's jobs, searched, filtered and paged on the server, with
/// statuses as ElasticJob computes them and why; live over the centre's event stream.
#[component]
pub fn JobsPage() -> impl IntoView {
    let lang = use_lang();
    let params = use_params_map();
    let query = use_query_map();
    let rc = Signal::derive(move || params.with(|p| p.get("rc").unwrap_or_default()));
    let tick = RwSignal::new(0u64);
    let is_production = production_flag();
    let action = ServerAction::<RunJobAction>::new();
    let error = action_error(action);
    let jobs = Resource::new(
        move || {
            (
                rc.get(),
                query.with(filter_from),
                tick.get(),
                action.version().get(),
            )
        },
        |(rc, filter, _, _)| list_jobs(rc, filter),
    );
    let value = move |k: &'static str| query.with(|q| q.get(k).unwrap_or_default());
    view! {
        <div class="page-head">
            <h1>{move || rc.get()} " · " {t(lang, "rc.jobs")}</h1>
            {move || {
                let href = format!("/rc/{}/jobs/new", rc.get());
                if can(Role::Admin) {
                    view! { <a class="button primary" href=href data-testid="new-job">{t(lang, "jobs.new")}</a> }.into_any()
                } else {
                    view! { <button class="primary" disabled title=t(lang, "auth.admin_only") data-testid="new-job">{t(lang, "jobs.new")}</button> }.into_any()
                }
            }}
        </div>
        <CentreTabs rc tick />
        <Form method="GET" action="" attr:class="filters">
            <input type="search" name="q" placeholder=t(lang, "jobs.search") value=value("q") maxlength="255" data-testid="job-search" />
            <select name="status" data-testid="status-filter">
                <option value="" selected=value("status").is_empty()>{t(lang, "jobs.any_status")}</option>
                {JOB_STATUSES
                    .into_iter()
                    .map(|s| view! { <option value=s selected=value("status") == s>{s}</option> })
                    .collect_view()}
            </select>
            <input type="text" name="tag" placeholder=t(lang, "jobs.tag") value=value("tag") maxlength="64" list="job-tags" />
            <button type="submit">{t(lang, "audit.filter")}</button>
        </Form>
        <ErrorBox error />
        <Transition>
            {move || {
                let is_production = is_production.clone();
                Suspend::new(async move {
                match jobs.await {
                    Err(e) => view! { <ErrorBox error=Signal::stored(Some(e)) /> }.into_any(),
                    Ok(page) => {
                        let rc = rc.get_untracked();
                        let production = is_production(&rc);
                        let q = query.get_untracked();
                        let path = format!("/rc/{rc}/jobs");
                        view! {
                            <datalist id="job-tags">
                                {page.tags.iter().map(|t| view! { <option value=t.clone()></option> }).collect_view()}
                            </datalist>
                            <p class="muted" data-testid="jobs-total">
                                {format!("{} {}", page.total, t(lang, "jobs.count"))}
                            </p>
                            <table class="grid jobs" data-testid="jobs">
                                <thead>
                                    <tr>
                                        <th>{t(lang, "jobs.name")}</th>
                                        <th>{t(lang, "jobs.status")}</th>
                                        <th>{t(lang, "jobs.cron")}</th>
                                        <th>{t(lang, "jobs.items")}</th>
                                        <th>{t(lang, "jobs.instances")}</th>
                                        <th>{t(lang, "jobs.next_fire")}</th>
                                        <th></th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {page
                                        .items
                                        .into_iter()
                                        .map(|j| view! { <JobLine j rc=rc.clone() production action /> })
                                        .collect_view()}
                                </tbody>
                            </table>
                            <Pager path=path query=q keys=&KEYS page=page.page total=page.total per_page=page.per_page />
                        }
                        .into_any()
                    }
                }
            })
            }}
        </Transition>
    }
}

#[component]
fn JobLine(
    j: JobRow,
    rc: String,
    production: bool,
    action: ServerAction<RunJobAction>,
) -> impl IntoView {
    let href = format!("/rc/{rc}/jobs/{}", crate::components::url::encode(&j.name));
    view! {
        <tr data-job=j.name.clone() data-status=j.status.clone()>
            <td>
                <a href=href>{j.name.clone()}</a>
                {j.job_type.clone().map(|t| view! { <span class="badge muted small">{t}</span> })}
                {j.tags.iter().map(|t| view! { <span class="badge tag">{t.clone()}</span> }).collect_view()}
                <div class="muted small">{j.description.clone()}</div>
            </td>
            <td>
                <span class=format!("badge status-{}", j.status.to_lowercase()) data-testid="job-status">
                    {j.status.clone()}
                </span>
                <div class="small reason" data-testid="job-reason">{j.reason.clone()}</div>
            </td>
            <td class="mono nowrap">{j.cron.clone().unwrap_or_else(|| "—".into())}</td>
            <td>{j.sharding_total_count}</td>
            <td>{j.instance_count}</td>
            <td class="nowrap">{j.next_fire.map(format_ms).unwrap_or_else(|| "—".into())}</td>
            <td>
                <JobActions rc job=j.name.clone() status=j.status.clone() production action />
            </td>
        </tr>
    }
}
