use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::jobs::{EditJobConfig, ReplaceJobConfig, RunJobAction, SetItemEnabled, get_job};
use crate::components::centre_tabs::CentreTabs;
use crate::components::errors::{ErrorBox, FieldError, LastError, action_error};
use crate::components::job_actions::JobActions;
use crate::components::shell::{can, production_flag};
use crate::i18n::{t, use_lang};
use crate::model::{ItemRow, JobDetail, Role, RunRow, format_ms};

/// `/rc/{rc}/jobs/{job}`: one job: status and operations, the config with edit and the
/// next fires, the items, instances and servers, the latest run as a Gantt, recent runs.
#[component]
pub fn JobPage() -> impl IntoView {
    let lang = use_lang();
    let params = use_params_map();
    let rc = Signal::derive(move || params.with(|p| p.get("rc").unwrap_or_default()));
    let job = Signal::derive(move || params.with(|p| p.get("job").unwrap_or_default()));
    let tick = RwSignal::new(0u64);
    let is_production = production_flag();
    let action = ServerAction::<RunJobAction>::new();
    let edit = ServerAction::<EditJobConfig>::new();
    let replace = ServerAction::<ReplaceJobConfig>::new();
    let item = ServerAction::<SetItemEnabled>::new();
    let action_err = action_error(action);
    let item_err = action_error(item);
    let detail = Resource::new(
        move || {
            (
                rc.get(),
                job.get(),
                tick.get(),
                action.version().get()
                    + edit.version().get()
                    + replace.version().get()
                    + item.version().get(),
            )
        },
        |(rc, job, _, _)| get_job(rc, job),
    );
    view! {
        <p class="crumbs">
            <a href=move || format!("/rc/{}/jobs", rc.get())>{move || rc.get()} " · " {t(lang, "rc.jobs")}</a>
        </p>
        <CentreTabs rc tick />
        <ErrorBox error=action_err />
        <ErrorBox error=item_err />
        <Transition>
            {move || {
                let is_production = is_production.clone();
                Suspend::new(async move {
                    match detail.await {
                        Err(e) => view! {
                            <h1>{job.get_untracked()}</h1>
                            <ErrorBox error=Signal::stored(Some(e)) />
                        }
                        .into_any(),
                        Ok(d) => {
                            let rc = rc.get_untracked();
                            let production = is_production(&rc);
                            view! { <JobView d rc production action edit replace item /> }.into_any()
                        }
                    }
                })
            }}
        </Transition>
    }
}

fn cfg(d: &JobDetail, key: &str) -> String {
    match d.config.as_ref().and_then(|c| c.get(key)) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn cfg_bool(d: &JobDetail, key: &str) -> bool {
    d.config
        .as_ref()
        .and_then(|c| c.get(key))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

#[component]
fn JobView(
    d: JobDetail,
    rc: String,
    production: bool,
    action: ServerAction<RunJobAction>,
    edit: ServerAction<EditJobConfig>,
    replace: ServerAction<ReplaceJobConfig>,
    item: ServerAction<SetItemEnabled>,
) -> impl IntoView {
    let lang = use_lang();
    let admin = can(Role::Admin);
    let operator = can(Role::Operator);
    let edit_err: LastError = action_error(edit);
    let replace_err: LastError = action_error(replace);
    let status_class = format!("badge big status-{}", d.status.to_lowercase());
    let items = d.items.clone();
    let latest = d.latest_run.clone();
    let recent = d.recent_runs.clone();
    let name = d.name.clone();
    let c_cron = cfg(&d, "cron");
    let c_total = cfg(&d, "shardingTotalCount");
    let c_params = cfg(&d, "shardingItemParameters");
    let c_job_param = cfg(&d, "jobParameter");
    let c_description = cfg(&d, "description");
    let c_label = cfg(&d, "label");
    let b_failover = cfg_bool(&d, "failover");
    let b_misfire = cfg_bool(&d, "misfire");
    let b_monitor = cfg_bool(&d, "monitorExecution");
    let yaml = d.config_yaml.clone().unwrap_or_default();
    let (rc_edit, job_edit) = (rc.clone(), name.clone());
    let (rc_yaml, job_yaml) = (rc.clone(), name.clone());
    let (rc_items, job_items) = (rc.clone(), name.clone());
    view! {
        <div class="page-head">
            <h1 data-testid="job-name">{d.name.clone()}</h1>
            <JobActions rc=rc job=name status=d.status.clone() production action />
        </div>
        <p>
            <span class=status_class data-testid="job-status">{d.status.clone()}</span>
            " "
            <span data-testid="job-reason">{d.reason.clone()}</span>
            {d.job_type.clone().map(|t| view! { " · " <span class="mono">{t}</span> })}
        </p>
        {d.config_problem.clone().map(|p| view! { <div class="alert alert-error" role="alert">{p}</div> })}
        <div class="columns">
            <section>
                <h2>{t(lang, "job.config")}</h2>
                <ErrorBox error=edit_err />
                <ActionForm action=edit attr:class="stack form" attr:data-testid="config-form">
                    <input type="hidden" name="rc" value=rc_edit />
                    <input type="hidden" name="job" value=job_edit />
                    <fieldset disabled=!admin>
                        <label>
                            {t(lang, "jobs.cron")}
                            <input type="text" name="edit[cron]" value=c_cron class="mono" data-testid="cron-input" />
                            <FieldError error=edit_err field="cron" />
                            <FieldError error=edit_err field="timeZone" />
                        </label>
                        <label>
                            {t(lang, "jobs.items")}
                            <input type="number" name="edit[sharding_total_count]" min="1" max="10000" value=c_total />
                            <FieldError error=edit_err field="shardingTotalCount" />
                        </label>
                        <label>
                            {t(lang, "job.item_parameters")}
                            <input type="text" name="edit[sharding_item_parameters]" value=c_params placeholder="0=A,1=B" />
                            <FieldError error=edit_err field="shardingItemParameters" />
                        </label>
                        <label>
                            {t(lang, "job.job_parameter")}
                            <input type="text" name="edit[job_parameter]" value=c_job_param />
                        </label>
                        <label>
                            {t(lang, "job.description")}
                            <input type="text" name="edit[description]" value=c_description />
                        </label>
                        <label>
                            {t(lang, "jobs.tags")}
                            <input type="text" name="edit[label]" value=c_label placeholder="billing,nightly" />
                        </label>
                        <div class="checks">
                            <label class="check"><input type="checkbox" name="edit[failover]" value="on" checked=b_failover /> "failover"</label>
                            <label class="check"><input type="checkbox" name="edit[misfire]" value="on" checked=b_misfire /> "misfire"</label>
                            <label class="check"><input type="checkbox" name="edit[monitor_execution]" value="on" checked=b_monitor /> "monitorExecution"</label>
                        </div>
                        <button type="submit" class="primary" data-testid="save-config" title=(!admin).then(|| t(lang, "auth.admin_only"))>
                            {t(lang, "job.save")}
                        </button>
                    </fieldset>
                </ActionForm>
                <details>
                    <summary>{t(lang, "job.yaml")}</summary>
                    <ErrorBox error=replace_err />
                    <ActionForm action=replace attr:class="stack">
                        <input type="hidden" name="rc" value=rc_yaml />
                        <input type="hidden" name="job" value=job_yaml />
                        <textarea name="yaml" rows="14" class="mono" disabled=!admin>{yaml}</textarea>
                        <button type="submit" disabled=!admin>{t(lang, "job.save")}</button>
                    </ActionForm>
                </details>
            </section>
            <section>
                <h2>{t(lang, "job.next_fires")}</h2>
                {d.schedule_problem.clone().map(|p| view! { <p class="muted">{p}</p> })}
                <ol class="fires mono" data-testid="next-fires">
                    {d.next_fires.iter().map(|f| view! { <li>{format_ms(*f)} " UTC"</li> }).collect_view()}
                </ol>
                <h2>{t(lang, "jobs.instances")}</h2>
                <table class="grid" data-testid="instances">
                    <thead><tr><th>{t(lang, "job.instance")}</th><th>"IP"</th><th></th></tr></thead>
                    <tbody>
                        {d.instances.iter().map(|i| view! {
                            <tr>
                                <td class="mono">{i.id.clone()}</td>
                                <td class="mono">{i.server_ip.clone()}</td>
                                <td>
                                    {i.leader.then(|| view! { <span class="badge">{t(lang, "job.leader")}</span> })}
                                    {(!i.capstan).then(|| view! { <span class="badge muted">"Java"</span> })}
                                </td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <h2>{t(lang, "rc.servers")}</h2>
                <table class="grid" data-testid="job-servers">
                    <thead><tr><th>"IP"</th><th>{t(lang, "jobs.instances")}</th><th>{t(lang, "jobs.status")}</th></tr></thead>
                    <tbody>
                        {d.servers.iter().map(|s| view! {
                            <tr>
                                <td class="mono">{s.ip.clone()}</td>
                                <td>{s.instances}</td>
                                <td>{if s.disabled { "DISABLED" } else { "ENABLED" }}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        </div>
        <h2>{t(lang, "job.items")}</h2>
        <table class="grid" data-testid="items">
            <thead>
                <tr>
                    <th>{t(lang, "job.item")}</th>
                    <th>{t(lang, "job.parameter")}</th>
                    <th>{t(lang, "job.instance")}</th>
                    <th>"IP"</th>
                    <th>{t(lang, "jobs.status")}</th>
                    <th>"failover"</th>
                    <th>{t(lang, "job.last_run")}</th>
                    <th></th>
                </tr>
            </thead>
            <tbody>
                {items
                    .into_iter()
                    .map(|i| view! { <ItemLine i rc=rc_items.clone() job=job_items.clone() operator item /> })
                    .collect_view()}
            </tbody>
        </table>
        <h2>{t(lang, "job.latest_run")}</h2>
        {if d.has_history {
            view! { <Gantt runs=latest /> }.into_any()
        } else {
            view! { <p class="muted">{t(lang, "history.none_here")}</p> }.into_any()
        }}
        <h2>{t(lang, "job.recent_runs")}</h2>
        <RunTable runs=recent />
    }
}

#[component]
fn ItemLine(
    i: ItemRow,
    rc: String,
    job: String,
    operator: bool,
    item: ServerAction<SetItemEnabled>,
) -> impl IntoView {
    let lang = use_lang();
    let disabled = i.status == "DISABLED";
    let label = if disabled {
        "jobs.enable"
    } else {
        "jobs.disable"
    };
    view! {
        <tr data-item=i.item data-status=i.status.clone() data-server=i.server_ip.clone().unwrap_or_default()>
            <td>{i.item}</td>
            <td class="mono">{i.parameter.clone()}</td>
            <td class="mono">{i.instance.clone().unwrap_or_else(|| "—".into())}</td>
            <td class="mono" data-testid="item-server">{i.server_ip.clone().unwrap_or_else(|| "—".into())}</td>
            <td><span class=format!("badge status-{}", i.status.to_lowercase())>{i.status.clone()}</span></td>
            <td>{i.failover.then_some("✓")}</td>
            <td class="small">
                {i.last_run.as_ref().map(|r| view! {
                    <span class=format!("badge run-{}", r.state.to_lowercase())>{r.state.clone()}</span>
                    " " {format_ms(r.start_ms)}
                })}
            </td>
            <td>
                <ActionForm action=item attr:class="inline">
                    <input type="hidden" name="rc" value=rc />
                    <input type="hidden" name="job" value=job />
                    <input type="hidden" name="item" value=i.item />
                    <input type="hidden" name="enabled" value=disabled.to_string() />
                    <button type="submit" disabled=!operator title=(!operator).then(|| t(lang, "auth.operator_only"))>
                        {t(lang, label)}
                    </button>
                </ActionForm>
            </td>
        </tr>
    }
}

/// The items of one fire on a shared time axis: skew and failover re-runs stand out.
#[component]
fn Gantt(runs: Vec<RunRow>) -> impl IntoView {
    let lang = use_lang();
    if runs.is_empty() {
        return view! { <p class="muted">{t(lang, "job.no_runs")}</p> }.into_any();
    }
    let now = runs.iter().filter_map(|r| r.complete_ms).max().unwrap_or(0);
    let start = runs.iter().map(|r| r.start_ms).min().unwrap_or(0);
    let end = runs
        .iter()
        .map(|r| r.complete_ms.unwrap_or(now.max(r.start_ms + 1)))
        .max()
        .unwrap_or(start + 1)
        .max(start + 1);
    let span = (end - start) as f64;
    view! {
        <div class="gantt" data-testid="gantt">
            <p class="muted small">{format_ms(start)} " UTC · " {format!("{} ms", end - start)}</p>
            {runs.into_iter().map(|r| {
                let stop = r.complete_ms.unwrap_or(end);
                let left = (r.start_ms - start) as f64 / span * 100.0;
                let width = ((stop - r.start_ms) as f64 / span * 100.0).max(0.5);
                let title = format!(
                    "item {} · {} · {} · {} ms",
                    r.item,
                    r.instance,
                    r.state,
                    stop - r.start_ms
                );
                view! {
                    <div class="gantt-row">
                        <span class="gantt-label mono">{format!("#{} {}", r.item, r.ip)}</span>
                        <span class="gantt-track">
                            <span
                                class=format!("gantt-bar run-{}", r.state.to_lowercase())
                                style=format!("left:{left:.2}%;width:{width:.2}%")
                                title=title
                            ></span>
                        </span>
                        <span class="small">{format!("{} ms", stop - r.start_ms)}</span>
                    </div>
                }
            }).collect_view()}
        </div>
    }
    .into_any()
}

/// Item executions, newest first.
#[component]
pub fn RunTable(runs: Vec<RunRow>) -> impl IntoView {
    let lang = use_lang();
    view! {
        <table class="grid" data-testid="runs">
            <thead>
                <tr>
                    <th>{t(lang, "audit.time")}</th>
                    <th>{t(lang, "jobs.name")}</th>
                    <th>{t(lang, "job.item")}</th>
                    <th>"IP"</th>
                    <th>{t(lang, "history.source")}</th>
                    <th>{t(lang, "audit.result")}</th>
                    <th>{t(lang, "history.duration")}</th>
                </tr>
            </thead>
            <tbody>
                {runs.into_iter().map(|r| view! {
                    <tr data-run=r.id.clone() data-state=r.state.clone()>
                        <td class="nowrap">{format_ms(r.start_ms)}</td>
                        <td>{r.job.clone()}</td>
                        <td>{r.item}</td>
                        <td class="mono">{r.ip.clone()}</td>
                        <td class="small">{r.source.clone()}</td>
                        <td>
                            <span class=format!("badge run-{}", r.state.to_lowercase())>{r.state.clone()}</span>
                            <div class="small">{r.failure_cause.clone()}</div>
                        </td>
                        <td>{r.complete_ms.map(|c| format!("{} ms", c - r.start_ms)).unwrap_or_else(|| "…".into())}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}
