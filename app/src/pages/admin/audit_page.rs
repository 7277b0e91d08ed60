use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;

use crate::api::audit::list_audit;
use crate::components::errors::ErrorBox;
use crate::components::url::Pager;
use crate::i18n::{t, use_lang};
use crate::model::{AuditEntry, AuditFilter, format_ms, parse_date_ms};

const PER_PAGE: u32 = 50;

fn filter_from(q: &ParamsMap) -> AuditFilter {
    let text = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    AuditFilter {
        actor: text("actor"),
        action: text("action"),
        target: text("target"),
        result: text("result"),
        from: text("from").and_then(|d| parse_date_ms(&d)),
        // `to` is a whole day: include it.
        to: text("to")
            .and_then(|d| parse_date_ms(&d))
            .map(|ms| ms + 86_400_000),
        page: text("page").and_then(|p| p.parse().ok()),
        per_page: Some(PER_PAGE),
    }
}

/// The query keys of the filter, kept by the pager.
const AUDIT_KEYS: [&str; 6] = ["actor", "action", "target", "result", "from", "to"];

/// `/admin/audit`: the audit log, filtered and paged on the server. The filter lives in the
/// URL, so it works without JavaScript and can be bookmarked.
#[component]
pub fn AuditPage() -> impl IntoView {
    let lang = use_lang();
    let query = use_query_map();
    let entries = Resource::new(move || query.with(filter_from), list_audit);
    let value = move |k: &'static str| query.with(|q| q.get(k).unwrap_or_default());
    view! {
        <h1>{t(lang, "audit.title")}</h1>
        <Form method="GET" action="/admin/audit" attr:class="filters">
            <input type="text" name="actor" placeholder=t(lang, "audit.actor") value=value("actor") maxlength="64" />
            <input type="text" name="action" placeholder=t(lang, "audit.action") value=value("action") maxlength="64" />
            <input type="text" name="target" placeholder=t(lang, "audit.target") value=value("target") maxlength="255" />
            <select name="result">
                <option value="" selected=value("result").is_empty()>{t(lang, "audit.any_result")}</option>
                {["ok", "denied", "failed"]
                    .into_iter()
                    .map(|r| view! { <option value=r selected=value("result") == r>{t(lang, r)}</option> })
                    .collect_view()}
            </select>
            <label>{t(lang, "audit.from")} <input type="date" name="from" value=value("from") /></label>
            <label>{t(lang, "audit.to")} <input type="date" name="to" value=value("to") /></label>
            <button type="submit">{t(lang, "audit.filter")}</button>
        </Form>
        <Transition>
            {move || Suspend::new(async move {
                match entries.await {
                    Err(e) => view! { <ErrorBox error=Signal::stored(Some(e)) /> }.into_any(),
                    Ok(page) => {
                        let q = query.get_untracked();
                        view! {
                            <p class="muted" data-testid="audit-total">
                                {format!("{} {}", page.total, t(lang, "audit.entries"))}
                            </p>
                            <table class="grid audit" data-testid="audit">
                                <thead>
                                    <tr>
                                        <th>{t(lang, "audit.time")}</th>
                                        <th>{t(lang, "audit.actor")}</th>
                                        <th>{t(lang, "audit.action")}</th>
                                        <th>{t(lang, "audit.target")}</th>
                                        <th>{t(lang, "audit.result")}</th>
                                        <th>{t(lang, "audit.change")}</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {page.items.into_iter().map(|e| view! { <AuditRow e /> }).collect_view()}
                                </tbody>
                            </table>
                            <Pager path="/admin/audit".to_owned() query=q keys=&AUDIT_KEYS page=page.page total=page.total.max(0) as u64 per_page=page.per_page />
                        }
                        .into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn AuditRow(e: AuditEntry) -> impl IntoView {
    let lang = use_lang();
    let has_change = e.before.is_some() || e.after.is_some();
    view! {
        <tr data-action=e.action.clone() data-result=e.result.as_str()>
            <td class="nowrap">{format_ms(e.at)} " UTC"</td>
            <td>
                {e.actor.clone().unwrap_or_else(|| "—".into())}
                <div class="muted small">{e.source_ip.clone()}</div>
            </td>
            <td class="mono">{e.action.clone()}</td>
            <td>
                <span class="muted small">{e.target_kind.clone()} " "</span>
                {e.target.clone()}
            </td>
            <td>
                <span class=format!("badge result-{}", e.result.as_str())>{t(lang, e.result.as_str())}</span>
                <div class="small">{e.detail.clone()}</div>
            </td>
            <td>
                {has_change.then(|| view! {
                    <details>
                        <summary>{t(lang, "audit.show")}</summary>
                        <div class="diff">
                            <div><b>{t(lang, "audit.before")}</b><pre>{e.before.clone()}</pre></div>
                            <div><b>{t(lang, "audit.after")}</b><pre>{e.after.clone()}</pre></div>
                        </div>
                    </details>
                })}
            </td>
        </tr>
    }
}
