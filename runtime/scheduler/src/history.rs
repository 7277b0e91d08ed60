//! Run history in SQLite: ElasticJob's two event-trace tables (spec §8) plus a run id, an
//! explicit `RUNNING` state, captured output, hourly aggregates for charts, and retention.
//!
//! Writes never sit on the fire path: the runtime hands records to a writer task, which
//! commits them in batches (as Java posts trace events to a thread pool). [`History::flush`]
//! waits for everything handed over so far. An item that was running when its process died
//! stays `RUNNING` in the file; the next runtime on the same file marks it `ABANDONED`.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};

mod write;

use write::{write_finished, writer};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

const HOUR_MS: i64 = 3_600_000;
/// Failure causes are cut like Java's (VARCHAR(4000)).
const CAUSE_LIMIT: usize = 4000;

/// Why the history store could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The file could not be opened or is not a history database.
    #[error("cannot open run history {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file was written by a newer Capstan.
    #[error(
        "run history {path} was written by a newer Capstan (schema version {version}); run that version or move the file away. It was not changed."
    )]
    TooNew {
        /// The file.
        path: String,
        /// The unknown version.
        version: i64,
    },
    /// A query failed.
    #[error("run history query failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// How long history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Item executions and status traces older than this are deleted.
    pub max_age: Duration,
    /// At most this many item executions per job are kept (the newest).
    pub max_runs_per_job: u32,
    /// Hourly aggregates are kept this long (they are small).
    pub aggregate_age: Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            max_age: Duration::from_secs(30 * 86_400),
            max_runs_per_job: 10_000,
            aggregate_age: Duration::from_secs(400 * 86_400),
        }
    }
}

/// Where a run came from (`execution_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A cron fire or an operator's trigger (as Java records both).
    NormalTrigger,
    /// The re-run of a fire that was missed while the previous run was still going.
    Misfire,
    /// Items taken over from a crashed instance. (Java's enum has it but Lite never
    /// writes it; Capstan does, so failover re-runs are visible.)
    Failover,
}

impl Source {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::NormalTrigger => "NORMAL_TRIGGER",
            Source::Misfire => "MISFIRE",
            Source::Failover => "FAILOVER",
        }
    }
}

/// The state of an item execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunState {
    /// Still executing.
    Running,
    /// Finished without error.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Its process ended before it finished.
    Abandoned,
}

impl RunState {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "RUNNING",
            RunState::Succeeded => "SUCCEEDED",
            RunState::Failed => "FAILED",
            RunState::Abandoned => "ABANDONED",
        }
    }
}

impl FromStr for RunState {
    type Err = String;

    fn from_str(s: &str) -> Result<RunState, String> {
        [
            RunState::Running,
            RunState::Succeeded,
            RunState::Failed,
            RunState::Abandoned,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| format!("unknown run state {s:?}"))
    }
}

/// The state of a status-trace row (the values Lite writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceState {
    /// A fire begins.
    Staging,
    /// Its items start.
    Running,
    /// It ended (also: nothing to run, or skipped).
    Finished,
    /// Some item failed.
    Error,
}

impl TraceState {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceState::Staging => "TASK_STAGING",
            TraceState::Running => "TASK_RUNNING",
            TraceState::Finished => "TASK_FINISHED",
            TraceState::Error => "TASK_ERROR",
        }
    }
}

/// An item execution starting. The text a fire's records share (job, task, instance) is
/// shared, not copied: a thousand fires a second each send five records.
#[derive(Debug, Clone)]
pub(crate) struct ItemStarted {
    pub id: Arc<str>,
    pub run_id: Arc<str>,
    pub job_name: Arc<str>,
    pub task_id: Arc<str>,
    pub ip: Arc<str>,
    pub instance_id: Arc<str>,
    pub item: u32,
    pub source: Source,
    pub start_ms: i64,
}

/// An item execution ending.
#[derive(Debug, Clone)]
pub(crate) struct ItemFinished {
    pub id: Arc<str>,
    pub job_name: Arc<str>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub failure: Option<String>,
    pub output: Option<String>,
}

/// A new id for a run, an item execution or a trace row: a UUID, as Java's, but ordered by
/// time (version 7), so each insert lands at the end of its index rather than on a random
/// page of it: with a thousand fires a second, random keys made most of the history's cost
/// page reads and writes all over a table bigger than SQLite's cache.
///
/// Shared text, written once in place: a fire makes two of them and shares each with
/// several records.
///
/// The 74 bits after the time are this process's random start plus a counter (not fresh
/// random bits per id, as `Uuid::now_v7` draws, with its shared clock context: some 800
/// instructions an id, a sixth of starting a fire). The counter keeps the ids of one
/// process unique and, within a millisecond, in order; the random start keeps processes
/// apart.
pub(crate) fn new_id() -> Arc<str> {
    new_id_at(now_ms())
}

/// [`new_id`] for a time the caller has read already (ms since the epoch): a clock read
/// less where a start time is taken anyway.
pub(crate) fn new_id_at(ms: i64) -> Arc<str> {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    // (the random high bits, the next counter value); the counter starts below 2^62, so
    // it does not reach the two bits the variant takes for as long as anyone will run.
    static NEXT: LazyLock<(u16, AtomicU64)> = LazyLock::new(|| {
        let seed = uuid::Uuid::new_v4().as_u128();
        (seed as u16, AtomicU64::new((seed >> 64) as u64 >> 2))
    });
    let (high, counter) = &*NEXT;
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let mut tail = [0u8; 10];
    tail[..2].copy_from_slice(&high.to_be_bytes());
    tail[2..].copy_from_slice(&n.to_be_bytes());
    let ms = u64::try_from(ms).unwrap_or(0);
    let id = uuid::Builder::from_unix_timestamp_millis(ms, &tail).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    Arc::from(&*id.hyphenated().encode_lower(&mut text))
}

/// A status transition of a run (its text shared as [`ItemStarted`]'s is).
#[derive(Debug, Clone)]
pub(crate) struct StatusTrace {
    pub run_id: Arc<str>,
    pub job_name: Arc<str>,
    pub task_id: Arc<str>,
    pub ip: Arc<str>,
    pub items: Arc<[u32]>,
    pub state: TraceState,
    pub message: Arc<str>,
    pub at_ms: i64,
}

enum Record {
    Started(ItemStarted),
    Finished(ItemFinished),
    Trace(StatusTrace),
    Flush(oneshot::Sender<()>),
}

/// A history store. Cheap to clone.
#[derive(Clone)]
pub struct History {
    pool: SqlitePool,
    tx: mpsc::UnboundedSender<Record>,
    hostname: std::sync::Arc<str>,
    retention: Retention,
    commits: tokio::sync::watch::Receiver<u64>,
}

/// One item execution, as queries return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The item execution's id.
    pub id: String,
    /// The fire it belongs to.
    pub run_id: String,
    /// Job.
    pub job_name: String,
    /// Task id (spec §8.3).
    pub task_id: String,
    /// Executor host name.
    pub hostname: String,
    /// Executor IP.
    pub ip: String,
    /// Executor instance.
    pub instance_id: String,
    /// Item.
    pub item: u32,
    /// `NORMAL_TRIGGER`, `MISFIRE` or `FAILOVER`.
    pub source: String,
    /// State.
    pub state: RunState,
    /// Why it failed.
    pub failure_cause: Option<String>,
    /// What it printed.
    pub output: Option<String>,
    /// Start, ms since the epoch.
    pub start_ms: i64,
    /// End, if it ended.
    pub complete_ms: Option<i64>,
}

/// One status-trace row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRecord {
    /// Row id.
    pub id: String,
    /// The fire it belongs to.
    pub run_id: String,
    /// Job.
    pub job_name: String,
    /// Task id.
    pub task_id: String,
    /// Executor IP (Java's `slave_id`).
    pub slave_id: String,
    /// Items, as Java prints a list (`[0, 1, 2]`).
    pub sharding_items: String,
    /// `TASK_STAGING`, `TASK_RUNNING`, `TASK_FINISHED` or `TASK_ERROR`.
    pub state: String,
    /// Message.
    pub message: Option<String>,
    /// When.
    pub at_ms: i64,
}

/// Filters for [`History::runs`]; `None` matches everything. Times are half-open,
/// `[from, to)`, on the start time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    /// Exact job name.
    pub job: Option<String>,
    /// Exact executor IP.
    pub ip: Option<String>,
    /// Exact state.
    pub state: Option<RunState>,
    /// Start at or after, ms.
    pub from_ms: Option<i64>,
    /// Start before, ms.
    pub to_ms: Option<i64>,
    /// Exact run id (the items of one fire).
    pub run_id: Option<String>,
}

/// Filters for [`History::traces`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceQuery {
    /// Exact job name.
    pub job: Option<String>,
    /// Exact state (`TASK_…`).
    pub state: Option<String>,
    /// At or after, ms.
    pub from_ms: Option<i64>,
    /// Before, ms.
    pub to_ms: Option<i64>,
}

/// A page of results, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// How many rows match in all.
    pub total: u64,
    /// This page's rows.
    pub rows: Vec<T>,
}

/// Finished item executions of one hour and outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlyCount {
    /// Start of the hour, ms since the epoch (UTC).
    pub hour_ms: i64,
    /// `SUCCEEDED`, `FAILED` or `ABANDONED`.
    pub outcome: RunState,
    /// How many.
    pub runs: u64,
    /// Their summed duration.
    pub total_ms: u64,
    /// The longest.
    pub max_ms: u64,
}

/// What [`History::prune`] deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Item executions.
    pub runs: u64,
    /// Status-trace rows.
    pub traces: u64,
    /// Hourly aggregate rows.
    pub aggregates: u64,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl History {
    /// Opens (creating if missing) and migrates a history file, and starts its writer.
    ///
    /// # Errors
    /// [`HistoryError::Open`] for an unusable file, [`HistoryError::TooNew`] for one from
    /// a newer version (left unchanged).
    pub async fn open(path: &Path, retention: Retention) -> Result<History, HistoryError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            // 16 MiB of page cache per connection (SQLite's default is 2 MiB): the pages
            // the writer touches stay in memory instead of being read back at every batch.
            .pragma("cache_size", "-16384")
            .busy_timeout(Duration::from_secs(5));
        Self::connect(options, &path.display().to_string(), retention).await
    }

    /// A history that lives in memory (tests, throw-away runs).
    ///
    /// # Errors
    /// As [`History::open`].
    pub async fn in_memory() -> Result<History, HistoryError> {
        let options =
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(|e| HistoryError::Open {
                path: ":memory:".into(),
                reason: e.to_string(),
            })?;
        Self::connect(options, ":memory:", Retention::default()).await
    }

    async fn connect(
        options: SqliteConnectOptions,
        name: &str,
        retention: Retention,
    ) -> Result<History, HistoryError> {
        let open_error = |e: sqlx::Error| HistoryError::Open {
            path: name.to_owned(),
            reason: e.to_string(),
        };
        // One connection for an in-memory database (each connection would get its own);
        // a few for a file, so queries from the console run beside the writer.
        let max = if name == ":memory:" { 1 } else { 4 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(if name == ":memory:" { 1 } else { 0 })
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        MIGRATOR.run(&pool).await.map_err(|e| match e {
            MigrateError::VersionMissing(version) => HistoryError::TooNew {
                path: name.to_owned(),
                version,
            },
            other => HistoryError::Open {
                path: name.to_owned(),
                reason: other.to_string(),
            },
        })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (commits_tx, commits) = tokio::sync::watch::channel(0);
        tokio::spawn(writer(pool.clone(), rx, commits_tx));
        Ok(History {
            pool,
            tx,
            hostname: host_name().into(),
            retention,
            commits,
        })
    }

    pub(crate) fn started(&self, r: ItemStarted) {
        let _ = self.tx.send(Record::Started(r));
    }

    pub(crate) fn finished(&self, r: ItemFinished) {
        let _ = self.tx.send(Record::Finished(r));
    }

    pub(crate) fn trace(&self, r: StatusTrace) {
        let _ = self.tx.send(Record::Trace(r));
    }

    /// A counter bumped after each committed batch of records: what a live view waits on
    /// to show new runs.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.clone()
    }

    /// This host's name, as recorded.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Waits until every record handed over so far is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Record::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Marks items still `RUNNING` for instances other than `current` as `ABANDONED`:
    /// their process ended without finishing them. Returns how many.
    ///
    /// # Errors
    /// A query error.
    pub async fn abandon_others(&self, current: &str) -> Result<u64, HistoryError> {
        self.flush().await;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let stale = sqlx::query(
            "SELECT id, job_name, start_time FROM job_execution_log WHERE state = 'RUNNING' AND instance_id <> ?",
        )
        .bind(current)
        .fetch_all(&mut *tx)
        .await?;
        for row in &stale {
            let finished = ItemFinished {
                id: Arc::from(row.try_get::<String, _>("id")?),
                job_name: Arc::from(row.try_get::<String, _>("job_name")?),
                start_ms: row.try_get("start_time")?,
                end_ms: now,
                failure: Some(
                    "the process running this item ended before it finished (killed or crashed)"
                        .into(),
                ),
                output: None,
            };
            write_finished(&mut tx, &finished, RunState::Abandoned).await?;
        }
        tx.commit().await?;
        Ok(stale.len() as u64)
    }

    /// Item executions matching `q`, newest first; `page` counts from 1.
    ///
    /// # Errors
    /// A query error.
    pub async fn runs(
        &self,
        q: &RunQuery,
        page: u32,
        per_page: u32,
    ) -> Result<Page<RunRecord>, HistoryError> {
        let filter = |b: &mut QueryBuilder<Sqlite>| {
            b.push(" WHERE 1 = 1");
            if let Some(j) = &q.job {
                b.push(" AND job_name = ").push_bind(j.clone());
            }
            if let Some(ip) = &q.ip {
                b.push(" AND ip = ").push_bind(ip.clone());
            }
            if let Some(s) = q.state {
                b.push(" AND state = ").push_bind(s.as_str());
            }
            if let Some(f) = q.from_ms {
                b.push(" AND start_time >= ").push_bind(f);
            }
            if let Some(t) = q.to_ms {
                b.push(" AND start_time < ").push_bind(t);
            }
            if let Some(r) = &q.run_id {
                b.push(" AND run_id = ").push_bind(r.clone());
            }
        };
        let mut count = QueryBuilder::new("SELECT count(*) FROM job_execution_log");
        filter(&mut count);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut select = QueryBuilder::new(
            "SELECT id, run_id, job_name, task_id, hostname, ip, instance_id, sharding_item, \
             execution_source, state, failure_cause, output, start_time, complete_time \
             FROM job_execution_log",
        );
        filter(&mut select);
        select
            .push(" ORDER BY start_time DESC, sharding_item LIMIT ")
            .push_bind(i64::from(per_page.clamp(1, 1000)))
            .push(" OFFSET ")
            .push_bind(i64::from(page.max(1) - 1) * i64::from(per_page.clamp(1, 1000)));
        let rows = select.build().fetch_all(&self.pool).await?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(RunRecord {
                    id: r.try_get("id")?,
                    run_id: r.try_get("run_id")?,
                    job_name: r.try_get("job_name")?,
                    task_id: r.try_get("task_id")?,
                    hostname: r.try_get("hostname")?,
                    ip: r.try_get("ip")?,
                    instance_id: r.try_get("instance_id")?,
                    item: r.try_get::<i64, _>("sharding_item")? as u32,
                    source: r.try_get("execution_source")?,
                    state: r
                        .try_get::<String, _>("state")?
                        .parse()
                        .unwrap_or(RunState::Failed),
                    failure_cause: r.try_get("failure_cause")?,
                    output: r.try_get("output")?,
                    start_ms: r.try_get("start_time")?,
                    complete_ms: r.try_get("complete_time")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Page {
            total: total as u64,
            rows,
        })
    }

    /// Status-trace rows matching `q`, newest first; `page` counts from 1.
    ///
    /// # Errors
    /// A query error.
    pub async fn traces(
        &self,
        q: &TraceQuery,
        page: u32,
        per_page: u32,
    ) -> Result<Page<TraceRecord>, HistoryError> {
        let filter = |b: &mut QueryBuilder<Sqlite>| {
            b.push(" WHERE 1 = 1");
            if let Some(j) = &q.job {
                b.push(" AND job_name = ").push_bind(j.clone());
            }
            if let Some(s) = &q.state {
                b.push(" AND state = ").push_bind(s.clone());
            }
            if let Some(f) = q.from_ms {
                b.push(" AND creation_time >= ").push_bind(f);
            }
            if let Some(t) = q.to_ms {
                b.push(" AND creation_time < ").push_bind(t);
            }
        };
        let mut count = QueryBuilder::new("SELECT count(*) FROM job_status_trace_log");
        filter(&mut count);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut select = QueryBuilder::new(
            "SELECT id, run_id, job_name, task_id, slave_id, sharding_item, state, message, \
             creation_time FROM job_status_trace_log",
        );
        filter(&mut select);
        let per_page = per_page.clamp(1, 1000);
        select
            .push(" ORDER BY creation_time DESC, rowid DESC LIMIT ")
            .push_bind(i64::from(per_page))
            .push(" OFFSET ")
            .push_bind(i64::from(page.max(1) - 1) * i64::from(per_page));
        let rows = select
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(TraceRecord {
                    id: r.try_get("id")?,
                    run_id: r.try_get("run_id")?,
                    job_name: r.try_get("job_name")?,
                    task_id: r.try_get("task_id")?,
                    slave_id: r.try_get("slave_id")?,
                    sharding_items: r.try_get("sharding_item")?,
                    state: r.try_get("state")?,
                    message: r.try_get("message")?,
                    at_ms: r.try_get("creation_time")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Page {
            total: total as u64,
            rows,
        })
    }

    /// Finished item executions per hour and outcome in `[from_ms, to_ms)`, for one job
    /// or all, oldest hour first.
    ///
    /// # Errors
    /// A query error.
    pub async fn hourly(
        &self,
        job: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<HourlyCount>, HistoryError> {
        let mut b = QueryBuilder::new(
            "SELECT hour, outcome, sum(runs) AS runs, sum(total_ms) AS total_ms, max(max_ms) AS max_ms \
             FROM job_run_hourly WHERE hour >= ",
        );
        b.push_bind(from_ms - from_ms.rem_euclid(HOUR_MS))
            .push(" AND hour < ")
            .push_bind(to_ms);
        if let Some(j) = job {
            b.push(" AND job_name = ").push_bind(j.to_owned());
        }
        b.push(" GROUP BY hour, outcome ORDER BY hour, outcome");
        let rows = b.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(HourlyCount {
                    hour_ms: r.try_get("hour")?,
                    outcome: r
                        .try_get::<String, _>("outcome")?
                        .parse()
                        .unwrap_or(RunState::Failed),
                    runs: r.try_get::<i64, _>("runs")? as u64,
                    total_ms: r.try_get::<i64, _>("total_ms")? as u64,
                    max_ms: r.try_get::<i64, _>("max_ms")? as u64,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(HistoryError::from)
    }

    /// Distinct job names in the history, for filters.
    ///
    /// # Errors
    /// A query error.
    pub async fn job_names(&self) -> Result<Vec<String>, HistoryError> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT job_name FROM job_execution_log ORDER BY job_name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Applies the retention policy as of `now_ms`. Running items are never deleted.
    ///
    /// # Errors
    /// A query error.
    pub async fn prune(&self, now_ms: i64) -> Result<Pruned, HistoryError> {
        let r = self.retention;
        let cutoff = now_ms - r.max_age.as_millis() as i64;
        let mut pruned = Pruned::default();
        pruned.runs += sqlx::query(
            "DELETE FROM job_execution_log WHERE start_time < ? AND state <> 'RUNNING'",
        )
        .bind(cutoff)
        .execute(&self.pool)
        .await?
        .rows_affected();
        pruned.traces += sqlx::query("DELETE FROM job_status_trace_log WHERE creation_time < ?")
            .bind(cutoff)
            .execute(&self.pool)
            .await?
            .rows_affected();
        // Per job, everything older than the newest `max_runs_per_job` executions.
        let keep = i64::from(r.max_runs_per_job.max(1));
        let crowded: Vec<String> = sqlx::query_scalar(
            "SELECT job_name FROM job_execution_log GROUP BY job_name HAVING count(*) > ?",
        )
        .bind(keep)
        .fetch_all(&self.pool)
        .await?;
        for job in crowded {
            let oldest_kept: Option<i64> = sqlx::query_scalar(
                "SELECT start_time FROM job_execution_log WHERE job_name = ? \
                 ORDER BY start_time DESC LIMIT 1 OFFSET ?",
            )
            .bind(&job)
            .bind(keep - 1)
            .fetch_optional(&self.pool)
            .await?;
            let Some(oldest_kept) = oldest_kept else {
                continue;
            };
            pruned.runs += sqlx::query(
                "DELETE FROM job_execution_log WHERE job_name = ? AND start_time < ? AND state <> 'RUNNING'",
            )
            .bind(&job)
            .bind(oldest_kept)
            .execute(&self.pool)
            .await?
            .rows_affected();
            pruned.traces += sqlx::query(
                "DELETE FROM job_status_trace_log WHERE job_name = ? AND creation_time < ?",
            )
            .bind(&job)
            .bind(oldest_kept)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        pruned.aggregates += sqlx::query("DELETE FROM job_run_hourly WHERE hour < ?")
            .bind(now_ms - r.aggregate_age.as_millis() as i64)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(pruned)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids are version-7 UUIDs of this millisecond, distinct, and in the order they were
    /// made (the history's indexes rely on it), from several threads at once too.
    #[test]
    fn ids_are_time_ordered_unique_v7_uuids() {
        let before = now_ms();
        let ids: Vec<Arc<str>> = (0..10_000).map(|_| new_id()).collect();
        let after = now_ms();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "out of order");
        for id in [&ids[0], &ids[9_999]] {
            let u = uuid::Uuid::parse_str(id).expect("a uuid");
            assert_eq!(u.get_version_num(), 7, "{id}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{id}");
            let (secs, nanos) = u.get_timestamp().expect("time").to_unix();
            let ms = secs as i64 * 1000 + i64::from(nanos / 1_000_000);
            assert!(
                (before..=after).contains(&ms),
                "{id}: {ms} not in {before}..={after}"
            );
        }
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..5_000).map(|_| new_id()).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<Arc<str>> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread"))
            .chain(ids)
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "an id was made twice");
    }

    fn started(id: &str, job: &str, start: i64) -> ItemStarted {
        ItemStarted {
            id: id.into(),
            run_id: format!("run-{start}").into(),
            job_name: job.into(),
            task_id: format!("{job}@-@0@-@READY@-@10.0.0.1@-@1").into(),
            ip: "10.0.0.1".into(),
            instance_id: "10.0.0.1@-@1".into(),
            item: 0,
            source: Source::NormalTrigger,
            start_ms: start,
        }
    }

    fn finished(id: &str, job: &str, start: i64, failure: Option<&str>) -> ItemFinished {
        ItemFinished {
            id: id.into(),
            job_name: job.into(),
            start_ms: start,
            end_ms: start + 250,
            failure: failure.map(Into::into),
            output: Some("out".into()),
        }
    }

    #[tokio::test]
    async fn running_items_read_as_running_and_aggregates_follow() {
        let h = History::in_memory().await.expect("history");
        let t0 = 1_764_000_000_000; // an hour boundary is not needed: aggregates floor it
        h.started(started("a", "job", t0));
        h.started(started("b", "job", t0 + 1000));
        h.started(started("c", "other", t0 + 2000));
        h.flush().await;
        let page = h.runs(&RunQuery::default(), 1, 10).await.expect("runs");
        assert_eq!(page.total, 3);
        assert!(page.rows.iter().all(|r| r.state == RunState::Running));
        assert_eq!(page.rows[0].id, "c", "newest first");

        h.finished(finished("a", "job", t0, None));
        h.finished(finished("b", "job", t0 + 1000, Some("boom")));
        h.flush().await;
        let failed = h
            .runs(
                &RunQuery {
                    state: Some(RunState::Failed),
                    ..RunQuery::default()
                },
                1,
                10,
            )
            .await
            .expect("runs");
        assert_eq!(failed.total, 1);
        assert_eq!(failed.rows[0].failure_cause.as_deref(), Some("boom"));
        let hours = h
            .hourly(Some("job"), t0 - HOUR_MS, t0 + HOUR_MS)
            .await
            .expect("hourly");
        let total: u64 = hours.iter().map(|c| c.runs).sum();
        assert_eq!(total, 2);
        assert!(hours.iter().all(|c| c.max_ms == 250));

        // A later runtime marks what an ended process left running.
        assert_eq!(h.abandon_others("10.0.0.1@-@2").await.expect("abandon"), 1);
        let c = h
            .runs(
                &RunQuery {
                    job: Some("other".into()),
                    ..RunQuery::default()
                },
                1,
                10,
            )
            .await
            .expect("runs");
        assert_eq!(c.rows[0].state, RunState::Abandoned);
    }

    /// A batch of more rows than one statement takes (`ROWS_PER_INSERT`) is written whole,
    /// each value in its column: starts, finishes and traces, shared text and all, and a
    /// message longer than Java's column is cut.
    #[tokio::test]
    async fn a_batch_of_several_statements_writes_every_row_as_it_was_sent() {
        let h = History::in_memory().await.expect("history");
        let t0 = 1_764_000_000_000;
        let n = 450;
        let long = "x".repeat(CAUSE_LIMIT + 10);
        for i in 0..n {
            let s = started(&format!("item-{i:03}"), "job", t0 + i);
            // Traces share the start's text, as a fire's records do.
            let trace = |state, message: &str| StatusTrace {
                run_id: s.run_id.clone(),
                job_name: s.job_name.clone(),
                task_id: s.task_id.clone(),
                ip: s.ip.clone(),
                items: Arc::from([0u32, 2]),
                state,
                message: message.into(),
                at_ms: t0 + i,
            };
            h.trace(trace(TraceState::Staging, "begin"));
            h.started(s.clone());
            h.trace(trace(TraceState::Running, if i == 7 { &long } else { "" }));
            if i % 2 == 0 {
                h.finished(finished(&format!("item-{i:03}"), "job", t0 + i, None));
            }
        }
        h.flush().await;
        let runs = h.runs(&RunQuery::default(), 1, 1000).await.expect("runs");
        assert_eq!(runs.total, n as u64);
        let done = runs
            .rows
            .iter()
            .filter(|r| r.state == RunState::Succeeded)
            .count();
        assert_eq!(done, (n as usize).div_ceil(2));
        let r = runs.rows.iter().find(|r| r.id == "item-123").expect("row");
        assert_eq!(
            (&*r.job_name, &*r.ip, &*r.instance_id, r.start_ms, r.state),
            (
                "job",
                "10.0.0.1",
                "10.0.0.1@-@1",
                t0 + 123,
                RunState::Running
            )
        );
        assert_eq!(r.hostname, h.hostname());
        let r = runs.rows.iter().find(|r| r.id == "item-124").expect("row");
        assert_eq!(
            (r.output.as_deref(), r.complete_ms),
            (Some("out"), Some(t0 + 124 + 250))
        );

        let traces = h
            .traces(&TraceQuery::default(), 1, 1000)
            .await
            .expect("traces");
        assert_eq!(traces.total, 2 * n as u64);
        let t = traces
            .rows
            .iter()
            .find(|t| t.state == "TASK_RUNNING" && t.at_ms == t0 + 7)
            .expect("trace");
        assert_eq!(t.message.as_deref().map(str::len), Some(CAUSE_LIMIT));
        assert_eq!(
            (&*t.run_id, &*t.slave_id, &*t.sharding_items),
            (&*format!("run-{}", t0 + 7), "10.0.0.1", "[0, 2]")
        );
        let ids: std::collections::HashSet<&str> = traces.rows.iter().map(|t| &*t.id).collect();
        assert_eq!(ids.len(), 2 * n as usize, "each trace its own id");
    }

    /// A start and its finish in one batch are written as one finished row; a finish of
    /// an item that started in an earlier batch still updates its row.
    #[tokio::test]
    async fn items_that_end_in_the_batch_they_start_in_are_written_as_they_ended() {
        let h = History::in_memory().await.expect("history");
        let t0 = 1_764_000_000_000;
        h.started(started("early", "job", t0));
        h.flush().await;
        h.started(started("ok", "job", t0 + 1000));
        h.started(started("bad", "job", t0 + 2000));
        h.started(started("live", "job", t0 + 3000));
        h.finished(finished("early", "job", t0, None));
        h.finished(finished("ok", "job", t0 + 1000, None));
        h.finished(finished("bad", "job", t0 + 2000, Some("boom")));
        h.flush().await;
        let page = h.runs(&RunQuery::default(), 1, 10).await.expect("runs");
        let by_id = |id: &str| {
            page.rows
                .iter()
                .find(|r| r.id == id)
                .unwrap_or_else(|| panic!("{id} missing"))
                .clone()
        };
        assert_eq!(page.total, 4);
        for (id, state, failure) in [
            ("early", RunState::Succeeded, None),
            ("ok", RunState::Succeeded, None),
            ("bad", RunState::Failed, Some("boom")),
        ] {
            let r = by_id(id);
            assert_eq!(
                (r.state, r.failure_cause.as_deref()),
                (state, failure),
                "{id}"
            );
            assert_eq!(r.output.as_deref(), Some("out"), "{id}");
            assert_eq!(r.complete_ms, Some(r.start_ms + 250), "{id}");
        }
        let live = by_id("live");
        assert_eq!((live.state, live.complete_ms), (RunState::Running, None));
        let hours = h
            .hourly(Some("job"), t0 - HOUR_MS, t0 + HOUR_MS)
            .await
            .expect("hourly");
        assert_eq!(hours.iter().map(|c| c.runs).sum::<u64>(), 3);
    }

    #[tokio::test]
    async fn retention_by_age_and_count() {
        let h = History::in_memory().await.expect("history");
        let h = History {
            retention: Retention {
                max_age: Duration::from_secs(3600),
                max_runs_per_job: 3,
                aggregate_age: Duration::from_secs(86_400),
            },
            ..h
        };
        let now = 1_764_000_000_000;
        for i in 0..6 {
            let id = format!("r{i}");
            let start = now - 1000 * (6 - i);
            h.started(started(&id, "busy", start));
            h.finished(finished(&id, "busy", start, None));
        }
        let old = now - 2 * 3_600_000;
        h.started(started("old", "quiet", old));
        h.finished(finished("old", "quiet", old, None));
        h.started(started("live", "quiet", old));
        h.flush().await;
        let pruned = h.prune(now).await.expect("prune");
        assert_eq!(pruned.runs, 4, "3 surplus of busy, 1 too old of quiet");
        let left = h.runs(&RunQuery::default(), 1, 100).await.expect("runs");
        let ids: Vec<&str> = left.rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            ["r5", "r4", "r3", "live"],
            "a running item is never pruned"
        );
    }
}
