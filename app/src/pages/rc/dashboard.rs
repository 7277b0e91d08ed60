//! The dashboard of a centre: jobs by status, instances, stale servers, unassigned items,
//! recent failures, run outcomes over 24 h and the fires expected in the next 6 hours.

use leptos::prelude::*;

use crate::i18n::{t, use_lang};
use crate::model::{Dashboard, HourFires, HourOutcomes, format_ms};

fn hour_label(ms: i64) -> String {
    // "YYYY-MM-DD HH:MM:SS" → "HH:00"
    format_ms(ms)
        .get(11..13)
        .map(|h| format!("{h}:00"))
        .unwrap_or_default()
}

/// The dashboard panels.
#[component]
pub fn DashboardView(d: Dashboard, rc: String) -> impl IntoView {
    let lang = use_lang();
    let jobs_href = |status: &str| format!("/rc/{rc}/jobs?status={status}");
    view! {
        <div class="tiles" data-testid="dashboard">
            {d.by_status.iter().map(|(status, n)| view! {
                <a class=format!("tile status-{}", status.to_lowercase()) href=jobs_href(status) data-status=status.clone()>
                    <strong>{*n}</strong>
                    <span>{status.clone()}</span>
                </a>
            }).collect_view()}
        </div>
        <div class="tiles">
            <div class="tile" data-testid="instances-online"><strong>{d.instances_online}</strong><span>{t(lang, "dash.instances")}</span></div>
            <a class="tile" href=format!("/rc/{rc}/servers") data-testid="stale-servers"><strong>{d.stale_servers}</strong><span>{t(lang, "dash.stale")}</span></a>
            <div class="tile" data-testid="unassigned"><strong>{d.unassigned_items}</strong><span>{t(lang, "dash.unassigned")}</span></div>
            <div class="tile" data-testid="broken"><strong>{d.broken_jobs}</strong><span>{t(lang, "dash.broken")}</span></div>
            <a class="tile" href=format!("/rc/{rc}/history?state=FAILED") data-testid="failures">
                <strong>{d.failures_last_hour}</strong><span>{t(lang, "dash.failures")}</span>
            </a>
        </div>
        <div class="columns">
            <section>
                <h2>{t(lang, "dash.outcomes")}</h2>
                {if d.has_history {
                    view! { <Outcomes hours=d.outcomes.clone() /> }.into_any()
                } else {
                    view! { <p class="muted">{t(lang, "history.none_here")}</p> }.into_any()
                }}
            </section>
            <section>
                <h2>{t(lang, "dash.upcoming")}</h2>
                <Upcoming hours=d.upcoming.clone() />
            </section>
        </div>
    }
}

#[component]
fn Outcomes(hours: Vec<HourOutcomes>) -> impl IntoView {
    let lang = use_lang();
    let max = hours
        .iter()
        .map(|h| h.succeeded + h.failed + h.abandoned)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (ok, failed): (u64, u64) = hours.iter().fold((0, 0), |(o, f), h| {
        (o + h.succeeded, f + h.failed + h.abandoned)
    });
    let rate = if ok + failed == 0 {
        "—".to_owned()
    } else {
        format!("{:.1}%", ok as f64 * 100.0 / (ok + failed) as f64)
    };
    view! {
        <div class="bars" data-testid="outcomes">
            {hours.into_iter().map(|h| {
                let pct = |n: u64| format!("height:{:.1}%", n as f64 / max * 100.0);
                let title = format!(
                    "{} UTC · {} ok · {} failed · {} abandoned",
                    format_ms(h.hour_ms), h.succeeded, h.failed, h.abandoned
                );
                view! {
                    <div class="bar" title=title>
                        <span class="seg run-abandoned" style=pct(h.abandoned)></span>
                        <span class="seg run-failed" style=pct(h.failed)></span>
                        <span class="seg run-succeeded" style=pct(h.succeeded)></span>
                    </div>
                }
            }).collect_view()}
        </div>
        <p class="axis-ends small muted"><span>"−24 h"</span><span>{t(lang, "dash.now")}</span></p>
        <p class="small">
            {format!("24 h: {ok} {} · {failed} {} · {} {rate}", t(lang, "dash.ok"), t(lang, "dash.failed"), t(lang, "dash.success_rate"))}
        </p>
    }
}

#[component]
fn Upcoming(hours: Vec<HourFires>) -> impl IntoView {
    let lang = use_lang();
    let max = hours.iter().map(|h| h.fires).max().unwrap_or(0).max(1) as f64;
    view! {
        <div class="bars labelled" data-testid="upcoming">
            {hours.into_iter().map(|h| {
                let label = if h.estimated { format!("≈{}", h.fires) } else { h.fires.to_string() };
                view! {
                    <div class="bar" title=format!("{} UTC", format_ms(h.hour_ms))>
                        <span class="axis">{hour_label(h.hour_ms)}</span>
                        <span class="seg fires" style=format!("height:{:.1}%", h.fires as f64 / max * 85.0)></span>
                        <span class="count">{label}</span>
                    </div>
                }
            }).collect_view()}
        </div>
        <p class="small muted">{t(lang, "dash.upcoming_help")}</p>
    }
}
