//! What the console shows of a centre, computed from its tree cache (never a registry walk
//! per request) and, for runs, from the history of this console's runtime.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use capstan_registry::cache::TreeView;
use capstan_scheduler::admin::{self, ItemState, JobStatus};
use capstan_scheduler::cron::Schedule;
use capstan_scheduler::history::{History, RunQuery, RunRecord, RunState, now_ms};

use super::open;
use crate::error::AppError;
use crate::model::{
    Dashboard, HourFires, HourOutcomes, InstanceRow, ItemRow, JobDetail, JobFilter, JobPage,
    JobRow, JobServerRow, Role, RunRow, ServerRow,
};
use crate::ssr::auth::Actor;
use crate::ssr::{AppState, internal};

const HOUR_MS: i64 = 3_600_000;
/// Fires counted one by one per job and hour before the rest of the hour is extrapolated.
const FIRES_COUNTED: u64 = 120;

fn text(view: &TreeView<'_>, path: &str) -> Option<String> {
    view.get(path)
        .map(|n| String::from_utf8_lossy(&n.data).into_owned())
}

/// `/{job}`'s value: the job type Capstan writes, or a Java class name some apps write.
fn job_type(view: &TreeView<'_>, job: &str) -> Option<String> {
    text(view, &format!("/{job}"))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Statuses a fire can follow: a crashed, disabled or paused job does not fire.
fn fires(status: JobStatus) -> bool {
    matches!(status, JobStatus::Ok | JobStatus::ShardingFlag)
}

/// Fires of `schedule` in `[start, end)`: counted one by one up to [`FIRES_COUNTED`], then
/// extrapolated from the period seen so far (exact for the periodic schedules that fire
/// that often, e.g. `0/5 * * * * ?`).
fn fires_in(schedule: &capstan_scheduler::cron::Schedule, start: i64, end: i64) -> (u64, bool) {
    let Some(first) = schedule.next_after(start - 1).filter(|t| *t < end) else {
        return (0, false);
    };
    let mut last = first;
    let mut n = 1;
    while let Some(next) = schedule.next_after(last).filter(|t| *t < end) {
        n += 1;
        last = next;
        if n == FIRES_COUNTED {
            let period = (last - first) as f64 / (n - 1) as f64;
            let total = ((end - first) as f64 / period).ceil() as u64;
            return (total.max(n), true);
        }
    }
    (n, false)
}

/// Fires in each of the 6 hours from `this_hour` (the first counted from `now`), summed
/// over `schedules`.
///
/// Each distinct schedule (expression and zone) is counted once, and its counts reused for
/// every job that shares it: a centre's jobs mostly use a few crons, and counting one
/// schedule's 6 hours is up to 720 steps of the cron, a few µs each. (10,000 jobs took
/// about a second when every job was counted.)
fn upcoming_hours<'a>(
    schedules: impl Iterator<Item = &'a Schedule>,
    now: i64,
    this_hour: i64,
) -> Vec<HourFires> {
    let mut hours: Vec<HourFires> = (0..6)
        .map(|h| HourFires {
            hour_ms: this_hour + h * HOUR_MS,
            ..HourFires::default()
        })
        .collect();
    // Per hour: fires, and whether extrapolated.
    type Counts = Vec<(u64, bool)>;
    // By expression, then told apart by zone.
    let mut counted: HashMap<&str, Vec<(&Schedule, Counts)>> = HashMap::new();
    for schedule in schedules {
        let same = counted.entry(schedule.expr()).or_default();
        let index = match same.iter().position(|(s, _)| s.same_timing(schedule)) {
            Some(i) => i,
            None => {
                let counts = hours
                    .iter()
                    .map(|h| fires_in(schedule, h.hour_ms.max(now), h.hour_ms + HOUR_MS))
                    .collect();
                same.push((schedule, counts));
                same.len() - 1
            }
        };
        for (bucket, (n, estimated)) in hours.iter_mut().zip(&same[index].1) {
            bucket.fires += n;
            bucket.estimated |= estimated;
        }
    }
    hours
}

/// One page of the centre's jobs, filtered, with statuses and next fires.
pub async fn list(
    state: &AppState,
    actor: &Actor,
    rc: &str,
    filter: &JobFilter,
) -> Result<JobPage, AppError> {
    let (_, conn) = open(state, actor, rc, Role::Viewer).await?;
    if let Some(s) = filter.status.as_deref().filter(|s| !s.is_empty())
        && !crate::model::JOB_STATUSES.contains(&s)
    {
        return Err(AppError::field(
            "status",
            format!("use one of {}", crate::model::JOB_STATUSES.join(", ")),
        ));
    }
    let per_page = filter.per_page.unwrap_or(50).clamp(1, 200);
    let page = filter.page.unwrap_or(1).max(1);
    let jobs = conn.jobs.jobs(&conn.cache);
    let q = filter
        .q
        .as_deref()
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    let status = filter.status.as_deref().filter(|s| !s.is_empty());
    let tag = filter
        .tag
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let mut tags = BTreeSet::new();
    let mut matching = Vec::new();
    // Already sorted by name.
    for job in jobs.iter() {
        let info = &job.info;
        tags.extend(info.tags.iter().cloned());
        let ok = q
            .as_ref()
            .is_none_or(|q| info.haystack.contains(q.as_str()))
            && status.is_none_or(|s| job.health.status.as_str() == s)
            && tag.is_none_or(|t| info.tags.iter().any(|x| x == t));
        if ok {
            matching.push(job);
        }
    }
    let now = now_ms();
    let start = ((page - 1) * per_page) as usize;
    let items = matching
        .iter()
        .skip(start)
        .take(per_page as usize)
        .map(|job| {
            let (h, info) = (&job.health, &job.info);
            let config = info.config.as_ref();
            JobRow {
                name: job.name.clone(),
                status: h.status.as_str().to_owned(),
                reason: match &info.problem {
                    Some(p) => format!("{}; {p}", h.reason),
                    None => h.reason.clone(),
                },
                cron: config.and_then(|c| c.cron.clone()),
                sharding_total_count: config.map_or(0, |c| c.sharding_total_count),
                instance_count: h.instance_count,
                description: config.and_then(|c| c.description.clone()),
                next_fire: fires(h.status)
                    .then(|| info.schedule.as_ref().ok()?.next_after(now))
                    .flatten(),
                tags: info.tags.clone(),
                job_type: job.job_type.clone(),
                config_problem: info.problem.clone(),
            }
        })
        .collect();
    Ok(JobPage {
        total: matching.len() as u64,
        page,
        per_page,
        items,
        tags: tags.into_iter().collect(),
    })
}

fn item_status(s: ItemState) -> &'static str {
    match s {
        ItemState::Running => "RUNNING",
        ItemState::Pending => "PENDING",
        ItemState::Disabled => "DISABLED",
        ItemState::ShardingFlag => "SHARDING_FLAG",
    }
}

/// A run as the console shows it.
pub fn run_row(r: RunRecord) -> RunRow {
    RunRow {
        id: r.id,
        run_id: r.run_id,
        job: r.job_name,
        item: r.item,
        ip: r.ip,
        instance: r.instance_id,
        source: r.source,
        state: r.state.as_str().to_owned(),
        failure_cause: r.failure_cause,
        start_ms: r.start_ms,
        complete_ms: r.complete_ms,
    }
}

/// Everything about one job.
pub async fn detail(
    state: &AppState,
    actor: &Actor,
    rc: &str,
    job: &str,
) -> Result<JobDetail, AppError> {
    let (row, conn) = open(state, actor, rc, Role::Viewer).await?;
    let history = state.runtimes.history(&row);
    let snapshot = conn.cache.read(|v| {
        v.get(&format!("/{job}"))?;
        let leader = text(v, &format!("/{job}/leader/election/instance"));
        let instances: Vec<InstanceRow> = v
            .children(&format!("/{job}/instances"))
            .into_iter()
            .map(|id| {
                let yaml = text(v, &format!("/{job}/instances/{id}"));
                InstanceRow {
                    id: id.to_owned(),
                    server_ip: capstan_scheduler::instance::server_ip(yaml.as_deref(), id),
                    leader: leader.as_deref() == Some(id),
                    capstan: yaml.as_deref().is_some_and(|y| {
                        y.lines().any(|l| {
                            l.trim() == format!("labels: {}", admin::operations::CAPSTAN_LABEL)
                        })
                    }),
                }
            })
            .collect();
        let servers: Vec<JobServerRow> = v
            .children(&format!("/{job}/servers"))
            .into_iter()
            .map(|ip| JobServerRow {
                ip: ip.to_owned(),
                disabled: text(v, &format!("/{job}/servers/{ip}"))
                    .is_some_and(|s| s.trim().eq_ignore_ascii_case("DISABLED")),
                instances: instances.iter().filter(|i| i.server_ip == ip).count(),
            })
            .collect();
        Some((
            admin::job_health(v, job),
            admin::read_config(v, job),
            text(v, &format!("/{job}/config")),
            job_type(v, job),
            admin::job_items(v, job),
            instances,
            servers,
        ))
    });
    let Some((health, (config, problem), yaml, job_type, items, instances, servers)) = snapshot
    else {
        return Err(AppError::NotFound(format!(
            "job {job:?} does not exist in {rc}"
        )));
    };
    let (recent, latest) = match &history {
        Some(h) => runs_of(h, job).await?,
        None => (Vec::new(), Vec::new()),
    };
    let parameters = config
        .as_ref()
        .and_then(|c| {
            capstan_scheduler::context::item_parameters(c.sharding_item_parameters.as_deref()).ok()
        })
        .unwrap_or_default();
    let mut rows: BTreeMap<u32, ItemRow> = items
        .into_iter()
        .map(|i| {
            (
                i.item,
                ItemRow {
                    item: i.item,
                    parameter: parameters.get(&i.item).cloned(),
                    instance: i.instance,
                    server_ip: i.server_ip,
                    status: item_status(i.state).to_owned(),
                    failover: i.failover,
                    last_run: recent.iter().find(|r| r.item == i.item).cloned(),
                },
            )
        })
        .collect();
    // Items the config declares but the registry has no node for yet (never sharded, or
    // the count was raised): shown as awaiting sharding rather than hidden.
    let total = config
        .as_ref()
        .map_or(0, |c| c.sharding_total_count.max(0) as u32);
    for item in 0..total {
        rows.entry(item).or_insert_with(|| ItemRow {
            item,
            parameter: parameters.get(&item).cloned(),
            instance: None,
            server_ip: None,
            status: "SHARDING_FLAG".to_owned(),
            failover: false,
            last_run: None,
        });
    }
    let now = now_ms();
    let schedule = match config
        .as_ref()
        .and_then(|c| c.cron.clone())
        .filter(|c| !c.trim().is_empty())
    {
        None => Err("no cron: the job fires only when triggered".to_owned()),
        Some(expr) => capstan_scheduler::cron::Zone::parse(
            config.as_ref().and_then(|c| c.time_zone.as_deref()),
        )
        .and_then(|z| capstan_scheduler::cron::Schedule::parse(&expr, z))
        .map_err(|e| e.to_string()),
    };
    let (next_fires, schedule_problem) = match schedule {
        Ok(s) => (s.next_n(now, 10), None),
        Err(e) => (Vec::new(), Some(e)),
    };
    Ok(JobDetail {
        name: job.to_owned(),
        config: config.as_ref().map(|c| c.to_json()),
        config_yaml: yaml,
        status: health.status.as_str().to_owned(),
        reason: match &problem {
            Some(p) => format!("{}; {p}", health.reason),
            None => health.reason,
        },
        config_problem: problem,
        job_type,
        items: rows.into_values().collect(),
        instances,
        servers,
        next_fires,
        schedule_problem,
        latest_run: latest,
        recent_runs: recent,
        has_history: history.is_some(),
    })
}

/// The job's recent item executions (newest first) and the items of its latest fire.
async fn runs_of(h: &History, job: &str) -> Result<(Vec<RunRow>, Vec<RunRow>), AppError> {
    let page = |q: RunQuery, per_page: u32| async move {
        Ok::<Vec<RunRow>, AppError>(
            h.runs(&q, 1, per_page)
                .await
                .map_err(internal)?
                .rows
                .into_iter()
                .map(run_row)
                .collect(),
        )
    };
    let recent = page(
        RunQuery {
            job: Some(job.to_owned()),
            ..RunQuery::default()
        },
        50,
    )
    .await?;
    let latest = match recent.first() {
        None => Vec::new(),
        Some(r) => {
            let q = RunQuery {
                run_id: Some(r.run_id.clone()),
                ..RunQuery::default()
            };
            let mut rows = page(q, 200).await?;
            rows.sort_by_key(|r| (r.start_ms, r.item));
            rows
        }
    };
    Ok((recent, latest))
}

/// Every server of the centre.
pub async fn servers(
    state: &AppState,
    actor: &Actor,
    rc: &str,
) -> Result<Vec<ServerRow>, AppError> {
    let (_, conn) = open(state, actor, rc, Role::Viewer).await?;
    Ok(conn
        .jobs
        .servers(&conn.cache)
        .iter()
        .map(|s| ServerRow {
            ip: s.ip.clone(),
            instances: s.instances.iter().cloned().collect(),
            jobs: s.jobs.iter().cloned().collect(),
            disabled_jobs: s.disabled_jobs,
            stale: s.stale,
        })
        .collect())
}

/// The centre's dashboard.
pub async fn dashboard(state: &AppState, actor: &Actor, rc: &str) -> Result<Dashboard, AppError> {
    let (row, conn) = open(state, actor, rc, Role::Viewer).await?;
    let servers = conn.jobs.servers(&conn.cache);
    let jobs = conn.jobs.jobs(&conn.cache);
    let instances = servers
        .iter()
        .flat_map(|s| &s.instances)
        .collect::<BTreeSet<&String>>()
        .len() as u64;
    let stale = servers.iter().filter(|s| s.stale).count() as u64;
    let mut by_status: BTreeMap<String, u64> = crate::model::JOB_STATUSES
        .iter()
        .map(|s| ((*s).to_owned(), 0))
        .collect();
    for job in jobs.iter() {
        *by_status
            .entry(job.health.status.as_str().to_owned())
            .or_default() += 1;
    }
    let now = now_ms();
    let this_hour = now - now.rem_euclid(HOUR_MS);
    // Upcoming fires: counted per job and hour, extrapolated past FIRES_COUNTED so a
    // job firing every second cannot make the dashboard slow; memoised for a minute.
    let upcoming = conn.jobs.upcoming(now, 60_000, || {
        let firing = jobs
            .iter()
            .filter(|job| fires(job.health.status))
            .filter_map(|job| job.info.schedule.as_ref().ok());
        upcoming_hours(firing, now, this_hour)
    });
    let history = state.runtimes.history(&row);
    let mut outcomes: Vec<HourOutcomes> = (0..24)
        .rev()
        .map(|h| HourOutcomes {
            hour_ms: this_hour - h * HOUR_MS,
            ..HourOutcomes::default()
        })
        .collect();
    let mut failures_last_hour = 0;
    if let Some(h) = &history {
        for c in h
            .hourly(None, this_hour - 23 * HOUR_MS, now + 1)
            .await
            .map_err(internal)?
        {
            if let Some(b) = outcomes.iter_mut().find(|b| b.hour_ms == c.hour_ms) {
                match c.outcome {
                    RunState::Succeeded => b.succeeded += c.runs,
                    RunState::Failed => b.failed += c.runs,
                    _ => b.abandoned += c.runs,
                }
            }
        }
        let q = RunQuery {
            state: Some(RunState::Failed),
            from_ms: Some(now - HOUR_MS),
            ..RunQuery::default()
        };
        failures_last_hour = h.runs(&q, 1, 1).await.map_err(internal)?.total;
    }
    Ok(Dashboard {
        by_status,
        jobs: jobs.len() as u64,
        instances_online: instances,
        stale_servers: stale,
        unassigned_items: jobs.iter().map(|j| j.health.unassigned_items as u64).sum(),
        broken_jobs: jobs.iter().filter(|j| j.info.problem.is_some()).count() as u64,
        failures_last_hour,
        outcomes,
        upcoming: upcoming.as_ref().clone(),
        has_history: history.is_some(),
    })
}

/// Runs recorded by this console's runtime on the centre, filtered and paged, with the
/// status trace of the same filter.
pub async fn runs(
    state: &AppState,
    actor: &Actor,
    filter: &crate::model::RunFilter,
) -> Result<crate::model::RunPage, AppError> {
    use capstan_scheduler::history::TraceQuery;
    actor.require(Role::Viewer)?;
    let row = crate::ssr::db::centres::by_name(&state.db, &filter.rc)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            AppError::NotFound(format!("there is no registry centre named {:?}", filter.rc))
        })?;
    let per_page = filter.per_page.unwrap_or(50).clamp(1, 200);
    let page = filter.page.unwrap_or(1).max(1);
    let Some(history) = state.runtimes.history(&row) else {
        return Ok(crate::model::RunPage {
            total: 0,
            page,
            per_page,
            items: Vec::new(),
            has_history: false,
            traces: Vec::new(),
        });
    };
    let state_filter = match (
        filter.state.as_deref().filter(|s| !s.is_empty()),
        filter.success,
    ) {
        (Some(s), _) => Some(s.parse::<RunState>().map_err(|_| {
            AppError::field("state", "use RUNNING, SUCCEEDED, FAILED or ABANDONED")
        })?),
        (None, Some(true)) => Some(RunState::Succeeded),
        (None, Some(false)) => Some(RunState::Failed),
        (None, None) => None,
    };
    let text = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let q = RunQuery {
        job: text(&filter.job),
        ip: text(&filter.server),
        state: state_filter,
        from_ms: filter.from,
        to_ms: filter.to,
        run_id: None,
    };
    let found = history.runs(&q, page, per_page).await.map_err(internal)?;
    let traces = history
        .traces(
            &TraceQuery {
                job: q.job.clone(),
                state: None,
                from_ms: q.from_ms,
                to_ms: q.to_ms,
            },
            1,
            50,
        )
        .await
        .map_err(internal)?
        .rows
        .into_iter()
        .map(|t| crate::model::TraceRow {
            job: t.job_name,
            task_id: t.task_id,
            slave_id: t.slave_id,
            sharding_items: t.sharding_items,
            state: t.state,
            message: t.message,
            at_ms: t.at_ms,
        })
        .collect();
    Ok(crate::model::RunPage {
        total: found.total,
        page,
        per_page,
        items: found.rows.into_iter().map(run_row).collect(),
        has_history: true,
        traces,
    })
}

#[cfg(test)]
mod tests {
    use capstan_scheduler::cron::{Schedule, Zone};

    use super::{FIRES_COUNTED, HOUR_MS, fires_in, upcoming_hours};

    fn schedule(expr: &str) -> Schedule {
        Schedule::parse(expr, Zone::parse(Some("UTC")).expect("zone")).expect("cron")
    }

    #[test]
    fn upcoming_fires_are_counted_or_extrapolated_exactly_for_periodic_schedules() {
        let hour = 1_796_140_800_000; // 2026-12-01 16:00:00 UTC
        assert_eq!(hour % HOUR_MS, 0);
        assert_eq!(
            fires_in(&schedule("0 0/10 * * * ?"), hour, hour + HOUR_MS),
            (6, false)
        );
        // 720 fires: more than FIRES_COUNTED, so extrapolated, and still exact.
        const { assert!(720 > FIRES_COUNTED) };
        assert_eq!(
            fires_in(&schedule("0/5 * * * * ?"), hour, hour + HOUR_MS),
            (720, true)
        );
        // From the middle of the hour, and a schedule that does not fire in it.
        assert_eq!(
            fires_in(
                &schedule("0 0/10 * * * ?"),
                hour + 25 * 60_000,
                hour + HOUR_MS
            ),
            (3, false)
        );
        assert_eq!(
            fires_in(&schedule("0 0 3 * * ?"), hour, hour + HOUR_MS),
            (0, false)
        );
    }

    #[test]
    fn jobs_sharing_a_schedule_count_as_if_each_were_counted() {
        let hour = 1_796_140_800_000; // 2026-12-01 16:00:00 UTC
        let now = hour + 25 * 60_000;
        let at_20 = |zone: &str| {
            Schedule::parse("0 0 20 * * ?", Zone::parse(Some(zone)).expect("zone")).expect("cron")
        };
        // The same expression in two zones fires in different hours (20:00 and 18:00 UTC).
        let jobs = [
            schedule("0 0/10 * * * ?"),
            schedule("0/5 * * * * ?"),
            schedule("0 0/10 * * * ?"),
            at_20("UTC"),
            at_20("GMT+02:00"),
            at_20("UTC"),
        ];
        let hours = upcoming_hours(jobs.iter(), now, hour);
        assert_eq!(hours.len(), 6);
        for (h, bucket) in hours.iter().enumerate() {
            let start = hour + h as i64 * HOUR_MS;
            assert_eq!(bucket.hour_ms, start);
            let each: Vec<(u64, bool)> = jobs
                .iter()
                .map(|s| fires_in(s, start.max(now), start + HOUR_MS))
                .collect();
            assert_eq!(
                bucket.fires,
                each.iter().map(|e| e.0).sum::<u64>(),
                "hour {h}"
            );
            assert!(bucket.estimated, "the 5 s job is extrapolated in hour {h}");
        }
        // 35 minutes of the first hour: 3 ten-minute fires each for two jobs, 420 of 5 s.
        assert_eq!(hours[0].fires, 2 * 3 + 420);
        // 18:00 UTC: one zone's job; 20:00 UTC: the other two.
        assert_eq!(hours[2].fires, 2 * 6 + 720 + 1);
        assert_eq!(hours[4].fires, 2 * 6 + 720 + 2);
    }
}
