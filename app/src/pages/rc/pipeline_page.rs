use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::pipelines_page::{ms, rate};
use crate::api::pipelines::{RunPipelineAction, get_pipeline};
use crate::components::centre_tabs::CentreTabs;
use crate::components::errors::{ErrorBox, action_error};
use crate::components::poll::Poll;
use crate::components::shell::can;
use crate::i18n::{t, use_lang};
use crate::model::{PipelineDetail, Role, SampleView, VertexView, format_ms};

/// `/rc/{rc}/pipelines/{name}`: the DAG with each vertex's numbers and coloured by
/// backpressure, charts of the last five minutes, checkpoints, the memory sink's rows,
/// and pause, resume and restart.
#[component]
pub fn PipelinePage() -> impl IntoView {
    let params = use_params_map();
    let rc = Signal::derive(move || params.with(|p| p.get("rc").unwrap_or_default()));
    let name = Signal::derive(move || params.with(|p| p.get("name").unwrap_or_default()));
    let tick = RwSignal::new(0u64);
    let poll = RwSignal::new(0u64);
    let action = ServerAction::<RunPipelineAction>::new();
    let error = action_error(action);
    let detail = Resource::new(
        move || {
            (
                rc.get(),
                name.get(),
                tick.get(),
                poll.get(),
                action.version().get(),
            )
        },
        |(rc, name, _, _, _)| get_pipeline(rc, name),
    );
    view! {
        <h1>{move || rc.get()} " · " {move || name.get()}</h1>
        <CentreTabs rc tick />
        <Poll tick=poll every_ms=2000 />
        <ErrorBox error />
        <Transition>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <ErrorBox error=Signal::stored(Some(e)) /> }.into_any(),
                    Ok(d) => view! { <Detail d rc=rc.get_untracked() action /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Detail(d: PipelineDetail, rc: String, action: ServerAction<RunPipelineAction>) -> impl IntoView {
    let lang = use_lang();
    let operator = can(Role::Operator);
    let state = d.row.state.clone();
    let button = move |name: &'static str, label: &'static str| {
        if !operator {
            return view! { <button disabled title=t(lang, "auth.operator_only") data-action=name>{t(lang, label)}</button> }.into_any();
        }
        let (rc, p) = (rc.clone(), d.row.name.clone());
        view! {
            <ActionForm action attr:class="inline">
                <input type="hidden" name="rc" value=rc />
                <input type="hidden" name="name" value=p />
                <input type="hidden" name="action" value=name />
                <button type="submit" data-action=name>{t(lang, label)}</button>
            </ActionForm>
        }
        .into_any()
    };
    let pause_or_resume = if state == "PAUSED" {
        button("resume", "jobs.resume")
    } else {
        button("pause", "jobs.pause")
    };
    let restart = button("restart", "pipelines.restart");
    view! {
        <div class="pipeline-head">
            <span class=format!("badge pipeline-{}", state.to_lowercase()) data-testid="pipeline-state">{state.clone()}</span>
            <span class="small">{format!("{} × {} {}, {} {}", d.vertices.len(), d.row.partitions, t(lang, "pipelines.partitions"), d.workers, t(lang, "pipelines.threads"))}</span>
            <span class="small" data-testid="restarts" data-restarts=d.restarts.to_string()>{format!("{} {}", d.restarts, t(lang, "pipelines.restarts"))}</span>
            {d.row.runner.clone().map(|r| view! { <span class="small" data-testid="runner">{t(lang, "pipelines.run_by")} " " {r}</span> })}
            <div class="actions">{pause_or_resume}{restart}</div>
        </div>
        {d.row.error.clone().map(|e| view! { <div class="alert alert-error" data-testid="pipeline-error">{e}</div> })}
        {d.last_bad_record.clone().map(|e| view! {
            <div class="alert alert-info">{format!("{} {}: {e}", d.bad_records, t(lang, "pipelines.bad_records"))}</div>
        })}
        <Dag vertices=d.vertices.clone() edges=d.edges.clone() />
        <div class="charts">
            <Chart title=t(lang, "pipelines.throughput") samples=d.samples.clone() pick=|s: &SampleView| Some(s.in_rate) unit="/s" />
            <Chart title="p99" samples=d.samples.clone() pick=|s: &SampleView| s.p99_ms unit=" ms" />
            <Chart title=t(lang, "pipelines.lag") samples=d.samples.clone() pick=|s: &SampleView| s.lag_ms.map(|v| v as f64) unit=" ms" />
        </div>
        <h2>{t(lang, "pipelines.vertices")}</h2>
        <table class="grid" data-testid="vertices">
            <thead><tr>
                <th>{t(lang, "pipelines.vertex")}</th><th>{t(lang, "pipelines.steps")}</th><th>{t(lang, "pipelines.in")}</th><th>{t(lang, "pipelines.out")}</th>
                <th>{t(lang, "pipelines.queue")}</th><th>{t(lang, "pipelines.backpressure")}</th><th>{t(lang, "pipelines.watermark")}</th><th>{t(lang, "pipelines.late")}</th><th>"p50 / p99"</th>
            </tr></thead>
            <tbody>
                {d.vertices.iter().map(|v| view! {
                    <tr data-vertex=v.name.clone()>
                        <td>{v.name.clone()}</td>
                        <td class="small">{v.detail.clone()}</td>
                        <td class="num">{format!("{} ({})", v.records_in, rate(v.in_rate))}</td>
                        <td class="num">{format!("{} ({})", v.records_out, rate(v.out_rate))}</td>
                        <td class="num">{v.queue_depth}</td>
                        <td class="num">{format!("{:.0} %", v.backpressure * 100.0)}</td>
                        <td class="small">{v.watermark.map(format_ms).unwrap_or_else(|| "–".into())}</td>
                        <td class="num">{v.late_records_dropped}</td>
                        <td class="num">{format!("{} / {}", ms(v.p50_ms), ms(v.p99_ms))}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <h2>{t(lang, "pipelines.checkpoints")}</h2>
        {if d.checkpoints.is_empty() {
            view! { <p class="empty">{t(lang, "pipelines.no_checkpoints")}</p> }.into_any()
        } else {
            view! {
                <table class="grid" data-testid="checkpoints">
                    <thead><tr><th>"#"</th><th>{t(lang, "pipelines.completed")}</th><th>{t(lang, "pipelines.duration")}</th><th>{t(lang, "pipelines.size")}</th></tr></thead>
                    <tbody>
                        {d.checkpoints.iter().take(20).map(|c| view! {
                            <tr><td>{c.id}</td><td class="small">{format_ms(c.at_ms)}</td><td class="num">{format!("{:.1} ms", c.duration_ms)}</td><td class="num">{format!("{:.1} KiB", c.bytes as f64 / 1024.0)}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        {(!d.table_rows.is_empty()).then(|| view! {
            <h2>{t(lang, "pipelines.results")}</h2>
            <table class="grid" data-testid="results">
                <thead><tr>{d.table_columns.iter().map(|c| view! { <th>{c.clone()}</th> }).collect_view()}</tr></thead>
                <tbody>
                    {d.table_rows.iter().map(|r| view! {
                        <tr>{r.iter().map(|c| view! { <td class="small">{c.clone()}</td> }).collect_view()}</tr>
                    }).collect_view()}
                </tbody>
            </table>
        })}
    }
}

/// Fill by backpressure: calm, strained, blocked.
fn pressure_class(v: &VertexView) -> &'static str {
    if v.backpressure >= 0.5 {
        "vertex blocked"
    } else if v.backpressure >= 0.1 {
        "vertex strained"
    } else {
        "vertex calm"
    }
}

/// The DAG as SVG: vertices left to right, each with its numbers written on it.
#[component]
fn Dag(vertices: Vec<VertexView>, edges: Vec<(usize, usize)>) -> impl IntoView {
    const W: i32 = 220;
    const H: i32 = 96;
    const GAP: i32 = 60;
    let width = vertices.len() as i32 * (W + GAP) - GAP + 8;
    let x = move |i: usize| 4 + i as i32 * (W + GAP);
    view! {
        <svg class="dag" data-testid="dag" viewBox=format!("0 0 {width} {}", H + 8) width=width height=H + 8 role="img" aria-label="pipeline DAG">
            {edges.iter().map(|(a, b)| {
                let (x1, x2) = (x(*a) + W, x(*b));
                view! { <line class="edge" x1=x1 y1=H / 2 + 4 x2=x2 y2=H / 2 + 4 /> <polygon class="edge-head" points=format!("{},{} {},{} {},{}", x2, H / 2 + 4, x2 - 8, H / 2, x2 - 8, H / 2 + 8) /> }
            }).collect_view()}
            {vertices.iter().enumerate().map(|(i, v)| {
                let x0 = x(i);
                view! {
                    <g class=pressure_class(v) data-vertex=v.name.clone() data-backpressure=format!("{:.2}", v.backpressure)>
                        <rect x=x0 y=4 width=W height=H rx=8 />
                        <text x=x0 + 10 y=24 class="vertex-name">{format!("{} ×{}", v.name, v.parallelism)}</text>
                        <text x=x0 + 10 y=42 class="vertex-detail">{if v.detail.is_empty() { v.kind.clone() } else { v.detail.clone() }}</text>
                        <text x=x0 + 10 y=60>{format!("in {} · out {}", rate(v.in_rate), rate(v.out_rate))}</text>
                        <text x=x0 + 10 y=78>{format!("queue {} · bp {:.0} %", v.queue_depth, v.backpressure * 100.0)}</text>
                        <text x=x0 + 10 y=94>{match (v.p99_ms, v.late_records_dropped) {
                            (Some(p), _) => format!("p99 {p:.1} ms"),
                            (None, late) if late > 0 => format!("late dropped {late}"),
                            _ => String::new(),
                        }}</text>
                    </g>
                }
            }).collect_view()}
        </svg>
    }
}

/// A line chart of one series over the samples, scaled to its own maximum.
#[component]
fn Chart(
    title: &'static str,
    samples: Vec<SampleView>,
    pick: fn(&SampleView) -> Option<f64>,
    unit: &'static str,
) -> impl IntoView {
    const W: f64 = 300.0;
    const H: f64 = 80.0;
    let values: Vec<Option<f64>> = samples.iter().map(pick).collect();
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    let last = values.iter().rev().flatten().next().copied();
    let n = values.len().max(2) as f64 - 1.0;
    let points: String = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.map(|v| {
                let y = if max > 0.0 {
                    H - v / max * (H - 4.0)
                } else {
                    H
                };
                format!("{:.1},{:.1} ", i as f64 / n * W, y)
            })
        })
        .collect();
    let label = last.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}{unit}"));
    view! {
        <figure class="chart">
            <figcaption>{title} ": " <strong>{label}</strong> <span class="small">{format!(" (max {max:.1}{unit})")}</span></figcaption>
            <svg viewBox=format!("0 0 {W} {H}") width=W height=H role="img" aria-label=title>
                <polyline class="series" points=points />
            </svg>
        </figure>
    }
}
