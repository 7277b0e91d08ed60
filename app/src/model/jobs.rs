//! Jobs, items, servers and runs as the console shows them (and the REST API returns them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The statuses a job can have: ElasticJob's four (spec §7.4) and Capstan's `PAUSED`.
pub const JOB_STATUSES: [&str; 5] = ["OK", "CRASHED", "DISABLED", "SHARDING_FLAG", "PAUSED"];

/// One row of the jobs page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobRow {
    /// Job name.
    pub name: String,
    /// `OK | CRASHED | DISABLED | SHARDING_FLAG | PAUSED`.
    pub status: String,
    /// Why, in words an operator can act on (odd registry data is named here).
    pub reason: String,
    /// The cron expression, if the config has one.
    pub cron: Option<String>,
    /// `shardingTotalCount` (0 when the config is unreadable).
    pub sharding_total_count: i32,
    /// Instances online.
    pub instance_count: usize,
    /// The config's description.
    pub description: Option<String>,
    /// The next fire, ms since the epoch (none for one-off jobs, bad crons and paused jobs).
    pub next_fire: Option<i64>,
    /// Tags: the config's comma-separated `label`.
    pub tags: Vec<String>,
    /// The job type from `/{job}` (`SCRIPT`, `HTTP`, a Java class name, …), if any.
    pub job_type: Option<String>,
    /// Set when the config node is missing or malformed.
    pub config_problem: Option<String>,
}

/// Filters for the jobs page; all optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobFilter {
    /// Substring of the name or description, case-insensitive.
    pub q: Option<String>,
    /// One of [`JOB_STATUSES`].
    pub status: Option<String>,
    /// A tag.
    pub tag: Option<String>,
    /// Page, from 1.
    pub page: Option<u32>,
    /// Rows per page (at most 200).
    pub per_page: Option<u32>,
}

/// One page of jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobPage {
    /// Jobs matching the filter.
    pub total: u64,
    /// This page.
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
    /// The rows.
    pub items: Vec<JobRow>,
    /// Every tag in the centre, for the filter.
    pub tags: Vec<String>,
}

/// One item of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ItemRow {
    /// Item number.
    pub item: u32,
    /// Its parameter from `shardingItemParameters`.
    pub parameter: Option<String>,
    /// Owning instance.
    pub instance: Option<String>,
    /// The owner's IP.
    pub server_ip: Option<String>,
    /// `RUNNING | PENDING | DISABLED | SHARDING_FLAG`.
    pub status: String,
    /// Taken over by failover now.
    pub failover: bool,
    /// The item's latest recorded run, if this console's runtime ran it.
    pub last_run: Option<RunRow>,
}

/// An instance of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct InstanceRow {
    /// `ip@-@pid`.
    pub id: String,
    /// Its IP.
    pub server_ip: String,
    /// The elected leader now.
    pub leader: bool,
    /// A Capstan runtime (it understands pause).
    pub capstan: bool,
}

/// A server of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobServerRow {
    /// IP.
    pub ip: String,
    /// Disabled for this job.
    pub disabled: bool,
    /// Instances of this job online on it.
    pub instances: usize,
}

/// The job detail page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobDetail {
    /// Job name.
    pub name: String,
    /// The config as JSON (keys as in the YAML), if it could be read.
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub config: Option<serde_json::Value>,
    /// The config as stored (YAML), for editing and export.
    pub config_yaml: Option<String>,
    /// What is wrong with the config, if anything.
    pub config_problem: Option<String>,
    /// Status, as in the jobs list.
    pub status: String,
    /// Why.
    pub reason: String,
    /// The job type from `/{job}`.
    pub job_type: Option<String>,
    /// Items.
    pub items: Vec<ItemRow>,
    /// Instances online.
    pub instances: Vec<InstanceRow>,
    /// Servers.
    pub servers: Vec<JobServerRow>,
    /// The next 10 fires, ms since the epoch.
    pub next_fires: Vec<i64>,
    /// Why there are no next fires, when there are none.
    pub schedule_problem: Option<String>,
    /// The items of the latest recorded fire, for the Gantt.
    pub latest_run: Vec<RunRow>,
    /// Recent item executions.
    pub recent_runs: Vec<RunRow>,
    /// Whether this console's runtime runs jobs on the centre (history exists only then).
    pub has_history: bool,
}

/// A server (IP) of a centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ServerRow {
    /// IP.
    pub ip: String,
    /// Instance ids online on it.
    pub instances: Vec<String>,
    /// Jobs it is registered for.
    pub jobs: Vec<String>,
    /// How many of them it has disabled.
    pub disabled_jobs: usize,
    /// No instance is online on it.
    pub stale: bool,
}

/// One item execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RunRow {
    /// Execution id.
    pub id: String,
    /// The fire it belongs to.
    pub run_id: String,
    /// Job.
    pub job: String,
    /// Item.
    pub item: u32,
    /// Executor IP.
    pub ip: String,
    /// Executor instance.
    pub instance: String,
    /// `NORMAL_TRIGGER | MISFIRE | FAILOVER`.
    pub source: String,
    /// `RUNNING | SUCCEEDED | FAILED | ABANDONED`.
    pub state: String,
    /// Why it failed.
    pub failure_cause: Option<String>,
    /// Start, ms.
    pub start_ms: i64,
    /// End, ms.
    pub complete_ms: Option<i64>,
}

/// Filters for the history page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFilter {
    /// Centre.
    pub rc: String,
    /// Exact job.
    pub job: Option<String>,
    /// Exact server IP.
    pub server: Option<String>,
    /// `true` for succeeded, `false` for failed; or a state name in `state`.
    pub success: Option<bool>,
    /// `RUNNING | SUCCEEDED | FAILED | ABANDONED`.
    pub state: Option<String>,
    /// Start at or after, ms.
    pub from: Option<i64>,
    /// Start before, ms.
    pub to: Option<i64>,
    /// Page from 1.
    pub page: Option<u32>,
    /// Rows per page.
    pub per_page: Option<u32>,
}

/// A page of runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RunPage {
    /// Matching runs.
    pub total: u64,
    /// Page.
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
    /// Rows, newest first.
    pub items: Vec<RunRow>,
    /// Whether this console records runs for the centre at all.
    pub has_history: bool,
    /// Status-trace rows of the same job and range (the newest 50).
    pub traces: Vec<TraceRow>,
}

/// One status-trace row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TraceRow {
    /// Job.
    pub job: String,
    /// Task id.
    pub task_id: String,
    /// Executor IP.
    pub slave_id: String,
    /// Items.
    pub sharding_items: String,
    /// `TASK_STAGING | TASK_RUNNING | TASK_FINISHED | TASK_ERROR`.
    pub state: String,
    /// Message.
    pub message: Option<String>,
    /// When, ms.
    pub at_ms: i64,
}

/// Run outcomes of one hour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HourOutcomes {
    /// Start of the hour, ms.
    pub hour_ms: i64,
    /// Succeeded items.
    pub succeeded: u64,
    /// Failed items.
    pub failed: u64,
    /// Abandoned items.
    pub abandoned: u64,
}

/// Fires expected in one hour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HourFires {
    /// Start of the hour, ms.
    pub hour_ms: i64,
    /// Fires across all jobs.
    pub fires: u64,
    /// True when some job fires so often that its count is extrapolated.
    pub estimated: bool,
}

/// The dashboard of a centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    /// Jobs by status.
    pub by_status: BTreeMap<String, u64>,
    /// All jobs.
    pub jobs: u64,
    /// Distinct instances online.
    pub instances_online: u64,
    /// Servers with no live instance.
    pub stale_servers: u64,
    /// Items with no owner online.
    pub unassigned_items: u64,
    /// Jobs whose config is missing or malformed.
    pub broken_jobs: u64,
    /// Failed items in the last hour (of runs this console recorded).
    pub failures_last_hour: u64,
    /// The last 24 hours, oldest first.
    pub outcomes: Vec<HourOutcomes>,
    /// The next 6 hours, soonest first.
    pub upcoming: Vec<HourFires>,
    /// Whether this console records runs for the centre.
    pub has_history: bool,
}

/// The fields the job page edits; the rest of the config is kept as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigEdit {
    /// `cron` (empty: fires only when triggered).
    pub cron: String,
    /// `shardingTotalCount`, as typed.
    pub sharding_total_count: String,
    /// `shardingItemParameters`.
    pub sharding_item_parameters: String,
    /// `jobParameter`.
    pub job_parameter: String,
    /// `description`.
    pub description: String,
    /// Tags, comma-separated (`label`).
    pub label: String,
    /// `failover`: present (any value) when ticked, as a form checkbox sends it.
    pub failover: Option<String>,
    /// `misfire`, likewise.
    pub misfire: Option<String>,
    /// `monitorExecution`, likewise.
    pub monitor_execution: Option<String>,
}

/// A job created from the console: a script or an HTTP job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct NewJob {
    /// `SCRIPT` or `HTTP`.
    pub kind: String,
    /// Job name.
    pub name: String,
    /// Cron expression.
    pub cron: String,
    /// `shardingTotalCount`.
    pub sharding_total_count: Option<i32>,
    /// `shardingItemParameters`, e.g. `0=A,1=B`.
    pub sharding_item_parameters: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Comma-separated tags (stored as `label`).
    pub tags: Option<String>,
    /// SCRIPT: the command line.
    pub command: Option<String>,
    /// HTTP: the URL.
    pub url: Option<String>,
    /// HTTP: the method (default GET).
    pub method: Option<String>,
}

/// The result of importing job configs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportReport {
    /// Jobs created.
    pub created: Vec<String>,
    /// Jobs whose config was replaced.
    pub updated: Vec<String>,
    /// Jobs refused, with why.
    pub failed: Vec<ImportFailure>,
}

/// A job an import refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportFailure {
    /// The job name, or the document's position when it has none.
    pub name: String,
    /// Why.
    pub error: String,
}

/// Tags from a `label` value.
pub fn tags_of(label: Option<&str>) -> Vec<String> {
    label
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The status names of an item.
pub const ITEM_STATUSES: [&str; 4] = ["RUNNING", "PENDING", "DISABLED", "SHARDING_FLAG"];
