use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::jobs::{CreateJob, ImportJobs};
use crate::components::errors::{ErrorBox, FieldError, LastError, action_error};
use crate::components::shell::can;
use crate::i18n::{t, use_lang};
use crate::model::Role;

/// `/rc/{rc}/jobs/new`: create a script or HTTP job, and export or import job configs as
/// YAML. Runtimes that run registry jobs (`capstan serve`, `capstan agent`) pick new jobs
/// up by themselves.
#[component]
pub fn NewJobPage() -> impl IntoView {
    let lang = use_lang();
    let params = use_params_map();
    let rc = move || params.with(|p| p.get("rc").unwrap_or_default());
    let admin = can(Role::Admin);
    let create = ServerAction::<CreateJob>::new();
    let import = ServerAction::<ImportJobs>::new();
    let error: LastError = action_error(create);
    let import_error: LastError = action_error(import);
    let report = move || import.value().get().and_then(Result::ok);
    view! {
        <p class="crumbs">
            <a href=move || format!("/rc/{}/jobs", rc())>{rc} " · " {t(lang, "rc.jobs")}</a>
        </p>
        <h1>{t(lang, "jobs.new")}</h1>
        {(!admin).then(|| view! { <p class="alert alert-info">{t(lang, "auth.admin_only")}</p> })}
        <ErrorBox error />
        <ActionForm action=create attr:class="card stack form" attr:data-testid="new-job-form">
            <input type="hidden" name="rc" value=rc />
            <fieldset disabled=!admin>
                <label>
                    {t(lang, "new_job.kind")}
                    <select name="new[kind]">
                        <option value="SCRIPT">"SCRIPT"</option>
                        <option value="HTTP">"HTTP"</option>
                    </select>
                    <FieldError error field="kind" />
                </label>
                <label>
                    {t(lang, "jobs.name")}
                    <input type="text" name="new[name]" required maxlength="255" data-testid="new-job-name" />
                    <FieldError error field="name" />
                </label>
                <label>
                    {t(lang, "jobs.cron")}
                    <input type="text" name="new[cron]" required class="mono" placeholder="0 0/5 * * * ?" data-testid="new-job-cron" />
                    <FieldError error field="cron" />
                </label>
                <label>
                    {t(lang, "jobs.items")}
                    <input type="number" name="new[sharding_total_count]" value="1" min="1" max="10000" required />
                    <FieldError error field="sharding_total_count" />
                </label>
                <label>
                    {t(lang, "job.item_parameters")}
                    <input type="text" name="new[sharding_item_parameters]" placeholder="0=A,1=B" />
                    <FieldError error field="sharding_item_parameters" />
                </label>
                <label>
                    {t(lang, "job.description")}
                    <input type="text" name="new[description]" maxlength="1024" />
                </label>
                <label>
                    {t(lang, "jobs.tags")}
                    <input type="text" name="new[tags]" maxlength="255" placeholder="billing,nightly" />
                </label>
                <label>
                    {t(lang, "new_job.command")}
                    <input type="text" name="new[command]" class="mono" placeholder="/opt/jobs/report.sh --daily" data-testid="new-job-command" />
                    <span class="muted small">{t(lang, "new_job.command_help")}</span>
                    <FieldError error field="command" />
                </label>
                <label>
                    {t(lang, "new_job.url")}
                    <input type="url" name="new[url]" class="mono" placeholder="http://10.0.0.5:8080/jobs/report" />
                    <FieldError error field="url" />
                </label>
                <label>
                    {t(lang, "new_job.method")}
                    <select name="new[method]">
                        {["GET", "POST", "PUT", "DELETE"].into_iter().map(|m| view! { <option value=m>{m}</option> }).collect_view()}
                    </select>
                    <FieldError error field="method" />
                </label>
                <button type="submit" class="primary" data-testid="create-job">{t(lang, "new_job.create")}</button>
            </fieldset>
        </ActionForm>
        <h2>{t(lang, "new_job.export_import")}</h2>
        <p>
            <a class="button" href=move || format!("/api/v1/registries/{}/jobs-export", rc()) rel="external" download>
                {t(lang, "new_job.export")}
            </a>
        </p>
        <ErrorBox error=import_error />
        <ActionForm action=import attr:class="card stack form">
            <input type="hidden" name="rc" value=rc />
            <label>
                {t(lang, "new_job.import_help")}
                <textarea name="yaml" rows="12" class="mono" disabled=!admin required></textarea>
                <FieldError error=import_error field="yaml" />
            </label>
            <button type="submit" disabled=!admin>{t(lang, "new_job.import")}</button>
        </ActionForm>
        {move || report().map(|r| view! {
            <div class="alert alert-ok" role="status" data-testid="import-report">
                {format!("{}: {} · {}: {}", t(lang, "new_job.created"), r.created.join(", "), t(lang, "new_job.updated"), r.updated.join(", "))}
                {r.failed.into_iter().map(|f| view! { <div class="field-error">{f.name} ": " {f.error}</div> }).collect_view()}
            </div>
        })}
    }
}
