//! The operations of a job, as forms that work with and without JavaScript. Buttons the
//! user's role does not allow are shown disabled with the reason; the server checks anyway.
//! Destructive operations open a confirmation first, and on a production centre the job's
//! name must be typed.

use leptos::prelude::*;

use crate::api::jobs::RunJobAction;
use crate::components::shell::can;
use crate::i18n::{t, use_lang};
use crate::model::Role;

/// One job's action buttons.
#[component]
pub fn JobActions(
    rc: String,
    job: String,
    status: String,
    production: bool,
    action: ServerAction<RunJobAction>,
) -> impl IntoView {
    let lang = use_lang();
    let operator = can(Role::Operator);
    let admin = can(Role::Admin);
    let paused = status == "PAUSED";
    let disabled = status == "DISABLED";
    let hidden = {
        let (rc, job) = (rc.clone(), job.clone());
        move || {
            view! {
                <input type="hidden" name="rc" value=rc.clone() />
                <input type="hidden" name="job" value=job.clone() />
            }
        }
    };
    let (h1, h2, h3) = (hidden.clone(), hidden.clone(), hidden);
    let simple = move |name: &'static str, label: &'static str, allowed: bool| {
        let hidden = h1.clone();
        if allowed {
            view! {
                <ActionForm action attr:class="inline">
                    {hidden()}
                    <input type="hidden" name="action" value=name />
                    <button type="submit" data-action=name>{t(lang, label)}</button>
                </ActionForm>
            }
            .into_any()
        } else {
            view! {
                <button disabled title=t(lang, "auth.operator_only") data-action=name>
                    {t(lang, label)}
                </button>
            }
            .into_any()
        }
    };
    let confirmed = move |name: &'static str,
                          label: &'static str,
                          allowed: bool,
                          reason: &'static str| {
        let hidden = h2.clone();
        if allowed {
            view! {
                <details class="confirm">
                    <summary class="button danger" data-action=name>{t(lang, label)}</summary>
                    <ActionForm action attr:class="confirm-body">
                        {hidden()}
                        <input type="hidden" name="action" value=name />
                        {production.then(|| view! {
                            <label>
                                {t(lang, "confirm.type_name")}
                                <input type="text" name="confirm" required autocomplete="off" data-testid="confirm-input" />
                            </label>
                        })}
                        <button type="submit" class="danger" data-confirm=name>
                            {t(lang, "jobs.confirm")} " " {t(lang, label)}
                        </button>
                    </ActionForm>
                </details>
            }
            .into_any()
        } else {
            view! {
                <button disabled class="danger" title=t(lang, reason) data-action=name>
                    {t(lang, label)}
                </button>
            }
            .into_any()
        }
    };
    let trigger = if operator {
        let hidden = h3;
        view! {
            <details class="confirm">
                <summary class="button primary" data-action="trigger">{t(lang, "jobs.trigger")}</summary>
                <ActionForm action attr:class="confirm-body">
                    {hidden()}
                    <input type="hidden" name="action" value="trigger" />
                    <label>
                        {t(lang, "jobs.parameter")}
                        <input type="text" name="parameter" maxlength="4096" autocomplete="off" />
                    </label>
                    <button type="submit" class="primary" data-confirm="trigger">{t(lang, "jobs.trigger_now")}</button>
                </ActionForm>
            </details>
        }
        .into_any()
    } else {
        view! {
            <button disabled title=t(lang, "auth.operator_only") data-action="trigger">
                {t(lang, "jobs.trigger")}
            </button>
        }
        .into_any()
    };
    view! {
        <div class="actions" data-job=job.clone()>
            {trigger}
            {if paused {
                simple("resume", "jobs.resume", operator)
            } else {
                simple("pause", "jobs.pause", operator)
            }}
            {if disabled {
                simple("enable", "jobs.enable", operator)
            } else {
                confirmed("disable", "jobs.disable", operator, "auth.operator_only")
            }}
            {confirmed("shutdown", "jobs.shutdown", operator, "auth.operator_only")}
            {confirmed("remove", "jobs.remove", admin, "auth.admin_only")}
        </div>
    }
}
