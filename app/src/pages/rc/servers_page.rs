use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::jobs::{RunServerAction, list_servers};
use crate::components::centre_tabs::CentreTabs;
use crate::components::errors::{ErrorBox, action_error};
use crate::components::shell::{can, production_flag};
use crate::i18n::{t, use_lang};
use crate::model::{Role, ServerRow};

/// `/rc/{rc}/servers`: every server (IP) of the centre across its jobs, with a stale flag
/// (no instance online: the Kubernetes leftovers) and a bulk clean-up of those.
#[component]
pub fn ServersPage() -> impl IntoView {
    let lang = use_lang();
    let params = use_params_map();
    let rc = Signal::derive(move || params.with(|p| p.get("rc").unwrap_or_default()));
    let tick = RwSignal::new(0u64);
    let is_production = production_flag();
    let action = ServerAction::<RunServerAction>::new();
    let error = action_error(action);
    let servers = Resource::new(
        move || (rc.get(), tick.get(), action.version().get()),
        |(rc, _, _)| list_servers(rc),
    );
    view! {
        <h1>{move || rc.get()} " · " {t(lang, "rc.servers")}</h1>
        <CentreTabs rc tick />
        <ErrorBox error />
        <Transition>
            {move || {
                let is_production = is_production.clone();
                Suspend::new(async move {
                    match servers.await {
                        Err(e) => view! { <ErrorBox error=Signal::stored(Some(e)) /> }.into_any(),
                        Ok(list) => {
                            let rc = rc.get_untracked();
                            let production = is_production(&rc);
                            let stale = list.iter().filter(|s| s.stale).count();
                            view! {
                                {(stale > 0).then(|| view! {
                                    <StaleCleanup rc=rc.clone() stale production action />
                                })}
                                <table class="grid" data-testid="servers">
                                    <thead>
                                        <tr>
                                            <th>"IP"</th>
                                            <th>{t(lang, "jobs.instances")}</th>
                                            <th>{t(lang, "rc.jobs")}</th>
                                            <th>{t(lang, "servers.disabled_jobs")}</th>
                                            <th></th>
                                            <th></th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {list.into_iter().map(|s| view! { <ServerLine s rc=rc.clone() production action /> }).collect_view()}
                                    </tbody>
                                </table>
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
fn StaleCleanup(
    rc: String,
    stale: usize,
    production: bool,
    action: ServerAction<RunServerAction>,
) -> impl IntoView {
    let lang = use_lang();
    let admin = can(Role::Admin);
    view! {
        <div class="alert alert-info">
            {format!("{stale} {}", t(lang, "servers.stale_count"))}
            " "
            {if admin {
                view! {
                    <details class="confirm inline">
                        <summary class="button danger" data-action="remove_stale">{t(lang, "servers.clean_up")}</summary>
                        <ActionForm action attr:class="confirm-body">
                            <input type="hidden" name="rc" value=rc.clone() />
                            <input type="hidden" name="ip" value="" />
                            <input type="hidden" name="action" value="remove_stale" />
                            {production.then(|| view! {
                                <label>
                                    {t(lang, "confirm.type_name")} " (" {rc.clone()} ")"
                                    <input type="text" name="confirm" required autocomplete="off" />
                                </label>
                            })}
                            <button type="submit" class="danger" data-confirm="remove_stale">{t(lang, "servers.clean_up")}</button>
                        </ActionForm>
                    </details>
                }
                .into_any()
            } else {
                view! { <button disabled title=t(lang, "auth.admin_only")>{t(lang, "servers.clean_up")}</button> }.into_any()
            }}
        </div>
    }
}

#[component]
fn ServerLine(
    s: ServerRow,
    rc: String,
    production: bool,
    action: ServerAction<RunServerAction>,
) -> impl IntoView {
    let lang = use_lang();
    let operator = can(Role::Operator);
    let admin = can(Role::Admin);
    let all_disabled = s.disabled_jobs > 0 && s.disabled_jobs == s.jobs.len();
    let server_ip = s.ip.clone();
    let form = move |name: &'static str,
                     label: &'static str,
                     allowed: bool,
                     confirm: bool,
                     reason: &'static str| {
        let (rc, ip) = (rc.clone(), server_ip.clone());
        if !allowed {
            return view! { <button disabled title=t(lang, reason) data-action=name>{t(lang, label)}</button> }.into_any();
        }
        let body = move || {
            view! {
                <input type="hidden" name="rc" value=rc.clone() />
                <input type="hidden" name="ip" value=ip.clone() />
                <input type="hidden" name="action" value=name />
            }
        };
        if confirm {
            view! {
                <details class="confirm">
                    <summary class="button danger" data-action=name>{t(lang, label)}</summary>
                    <ActionForm action attr:class="confirm-body">
                        {body()}
                        {production.then(|| view! {
                            <label>
                                {t(lang, "confirm.type_name")}
                                <input type="text" name="confirm" required autocomplete="off" />
                            </label>
                        })}
                        <button type="submit" class="danger" data-confirm=name>{t(lang, "jobs.confirm")} " " {t(lang, label)}</button>
                    </ActionForm>
                </details>
            }
            .into_any()
        } else {
            view! {
                <ActionForm action attr:class="inline">
                    {body()}
                    <button type="submit" data-action=name>{t(lang, label)}</button>
                </ActionForm>
            }
            .into_any()
        }
    };
    view! {
        <tr data-server=s.ip.clone() data-stale=s.stale.to_string()>
            <td class="mono">{s.ip.clone()}</td>
            <td class="mono small">{s.instances.join(", ")}</td>
            <td class="small">{s.jobs.join(", ")}</td>
            <td>{s.disabled_jobs}</td>
            <td>{s.stale.then(|| view! { <span class="badge status-crashed">{t(lang, "servers.stale")}</span> })}</td>
            <td>
                <div class="actions">
                    {if all_disabled {
                        form("enable", "jobs.enable", operator, false, "auth.operator_only")
                    } else {
                        form("disable", "jobs.disable", operator, true, "auth.operator_only")
                    }}
                    {form("shutdown", "jobs.shutdown", operator, true, "auth.operator_only")}
                    {form("remove", "jobs.remove", admin, true, "auth.admin_only")}
                </div>
            </td>
        </tr>
    }
}
