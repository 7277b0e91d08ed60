use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::pipelines::list_pipelines;
use crate::components::centre_tabs::CentreTabs;
use crate::components::errors::ErrorBox;
use crate::components::poll::Poll;
use crate::i18n::{t, use_lang};
use crate::model::format_ms;

/// A rate as operators read it: `12.3k/s`.
pub fn rate(r: f64) -> String {
    if r >= 1_000_000.0 {
        format!("{:.2}M/s", r / 1_000_000.0)
    } else if r >= 1000.0 {
        format!("{:.1}k/s", r / 1000.0)
    } else {
        format!("{r:.0}/s")
    }
}

/// A duration in ms, or a dash.
pub fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1} ms"))
}

/// `/rc/{rc}/pipelines`: the stream pipelines registered on the centre (run by this
/// console, or by other processes, with the instance that runs them), with state,
/// throughput and lag; refreshed every two seconds.
#[component]
pub fn PipelinesPage() -> impl IntoView {
    let lang = use_lang();
    let params = use_params_map();
    let rc = Signal::derive(move || params.with(|p| p.get("rc").unwrap_or_default()));
    let tick = RwSignal::new(0u64);
    let poll = RwSignal::new(0u64);
    let list = Resource::new(
        move || (rc.get(), tick.get(), poll.get()),
        |(rc, _, _)| list_pipelines(rc),
    );
    view! {
        <h1>{move || rc.get()} " · " {t(lang, "rc.pipelines")}</h1>
        <CentreTabs rc tick />
        <Poll tick=poll every_ms=2000 />
        <Transition>
            {move || Suspend::new(async move {
                match list.await {
                    Err(e) => view! { <ErrorBox error=Signal::stored(Some(e)) /> }.into_any(),
                    Ok(rows) if rows.is_empty() => view! {
                        <p class="empty" data-testid="no-pipelines">{t(lang, "pipelines.none")}</p>
                    }.into_any(),
                    Ok(rows) => {
                        let rc = rc.get_untracked();
                        view! {
                            <table class="grid" data-testid="pipelines">
                                <thead>
                                    <tr>
                                        <th>{t(lang, "pipelines.name")}</th>
                                        <th>{t(lang, "jobs.status")}</th>
                                        <th>{t(lang, "pipelines.partitions")}</th>
                                        <th>{t(lang, "pipelines.in")}</th>
                                        <th>{t(lang, "pipelines.out")}</th>
                                        <th>{t(lang, "pipelines.lag")}</th>
                                        <th>"p99"</th>
                                        <th>{t(lang, "pipelines.last_checkpoint")}</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {rows.into_iter().map(|p| {
                                        let href = format!("/rc/{rc}/pipelines/{}", crate::components::url::encode(&p.name));
                                        view! {
                                            <tr data-pipeline=p.name.clone()>
                                                <td><a href=href>{p.name.clone()}</a>
                                                    {p.runner.clone().map(|r| view! { <div class="small" data-testid="runner">{t(lang, "pipelines.run_by")} " " {r}</div> })}
                                                </td>
                                                <td><span class=format!("badge pipeline-{}", p.state.to_lowercase()) data-testid="pipeline-state">{p.state.clone()}</span>
                                                    {p.error.clone().map(|e| view! { <div class="small error-text">{e}</div> })}
                                                </td>
                                                <td>{p.partitions}</td>
                                                <td class="num" data-testid="in-rate">{rate(p.in_rate)}</td>
                                                <td class="num">{rate(p.out_rate)}</td>
                                                <td class="num">{ms(p.watermark_lag_ms.map(|v| v as f64))}</td>
                                                <td class="num">{ms(p.p99_ms)}</td>
                                                <td class="small">{p.last_checkpoint_ms.map(format_ms).unwrap_or_else(|| "–".into())}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
