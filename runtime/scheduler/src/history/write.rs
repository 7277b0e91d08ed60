//! The history's writer task: records handed over by the runtime, committed in batches
//! of a few multi-row statements each.

use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, AssertSqlSafe, Encode, Sqlite, SqlitePool, Type};
use tokio::sync::mpsc;

use super::{
    CAUSE_LIMIT, HOUR_MS, ItemFinished, ItemStarted, Record, RunState, StatusTrace, cut, host_name,
    new_id,
};

/// Records taken off the channel at a time.
const BATCH: usize = 512;
/// Records per write transaction, at most: the writer gathers a burst up to this many
/// before it writes. A thousand jobs due on one second send 5,000 (a start, a finish and
/// three traces each); a cap of 4,096 began the write while the last fires of a slow burst
/// were still starting.
const MAX_BATCH: usize = 32_768;

/// Java's `List.toString()`: `[0, 1, 2]`.
fn java_list(items: &[u32]) -> String {
    let parts: Vec<String> = items.iter().map(u32::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// One multi-row statement: its SQL text, written as its values are added, and its
/// arguments.
///
/// Not sqlx's `QueryBuilder`, which writes each `?` through `fmt` and binds an `Arc<str>`
/// by reference, copying the text into a new `String` in a new `Arc`: with five records a
/// fire and up to 15 values a row, that was some 445 instructions a value, three quarters
/// of the writer task's CPU at 1,000 fires a second (callgrind). Here a `?` is pushed as
/// a byte, and shared text is bound by value (`Arc<str>`: sqlx hands that `Arc` on to
/// SQLite). A statement's text depends only on its number of rows, so sqlx's statement
/// cache still prepares each shape once.
struct Rows {
    sql: String,
    args: SqliteArguments,
    /// Rows started so far.
    rows: usize,
    /// Values written in the current row.
    in_row: usize,
    error: Option<sqlx::Error>,
}

impl Rows {
    /// A statement that starts with `head`, for `rows` rows of `width` values.
    fn new(head: &str, rows: usize, width: usize) -> Rows {
        let mut sql = String::with_capacity(head.len() + 16 + rows * (width * 2 + 4));
        sql.push_str(head);
        sql.push_str("VALUES ");
        let mut args = SqliteArguments::default();
        args.reserve(rows * width, 0);
        Rows {
            sql,
            args,
            rows: 0,
            in_row: 0,
            error: None,
        }
    }

    /// Starts a row.
    fn row(&mut self) -> &mut Rows {
        if self.rows > 0 {
            self.sql.push(',');
        }
        self.sql.push('(');
        self.rows += 1;
        self.in_row = 0;
        self
    }

    /// Separates a value from the one before it in the row.
    fn comma(&mut self) {
        if self.in_row > 0 {
            self.sql.push(',');
        }
        self.in_row += 1;
    }

    /// A bound value.
    fn bind<'t, T: Encode<'t, Sqlite> + Type<Sqlite>>(&mut self, value: T) -> &mut Rows {
        self.comma();
        self.sql.push('?');
        if let Err(e) = self.args.add(value)
            && self.error.is_none()
        {
            self.error = Some(sqlx::Error::Encode(e));
        }
        self
    }

    /// A constant of the SQL text.
    fn sql(&mut self, constant: &'static str) -> &mut Rows {
        self.comma();
        self.sql.push_str(constant);
        self
    }

    /// Ends the row.
    fn end(&mut self) {
        self.sql.push(')');
    }

    /// Runs the statement, `tail` appended.
    async fn execute(
        mut self,
        tail: &str,
        tx: &mut sqlx::SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.sql.push_str(tail);
        sqlx::query_with(AssertSqlSafe(self.sql), self.args)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

/// Rows per multi-row INSERT (SQLite allows 32,766 bound values; rows here bind 15 at most).
const ROWS_PER_INSERT: usize = 200;

/// Writes one batch in one transaction, with as few statements as possible: every
/// statement is a round trip to SQLite's worker thread, and at 1,000 fires a second those
/// round trips, not SQLite, were the cost. Starts are inserted before finishes are
/// applied, so a finish always finds its row (a start is sent before its finish, so it is
/// in the same batch or an earlier one).
async fn write_batch(
    tx: &mut sqlx::SqliteConnection,
    batch: &[Record],
    hostname: &Arc<str>,
) -> Result<(), sqlx::Error> {
    let finishes: Vec<(&ItemFinished, RunState)> = batch
        .iter()
        .filter_map(|r| match r {
            Record::Finished(f) => Some(f),
            _ => None,
        })
        .map(|f| {
            let state = if f.failure.is_some() {
                RunState::Failed
            } else {
                RunState::Succeeded
            };
            (f, state)
        })
        .collect();
    // An item that started and finished within the batch (most do: the batch gathers a
    // burst for 20 ms or more) is inserted as it ended, not inserted running and then
    // updated, which wrote the row and its indexes twice.
    let finished_here: std::collections::HashMap<&str, &(&ItemFinished, RunState)> =
        finishes.iter().map(|f| (&*f.0.id, f)).collect();
    let started: Vec<(&ItemStarted, Option<&(&ItemFinished, RunState)>)> = batch
        .iter()
        .filter_map(|r| match r {
            Record::Started(s) => Some((s, finished_here.get(&*s.id).copied())),
            _ => None,
        })
        .collect();
    for chunk in started.chunks(ROWS_PER_INSERT) {
        let mut q = Rows::new(
            "INSERT INTO job_execution_log (id, run_id, job_name, task_id, hostname, ip, instance_id, \
             sharding_item, execution_source, state, is_success, start_time, failure_cause, output, \
             complete_time) ",
            chunk.len(),
            15,
        );
        for (s, end) in chunk {
            q.row()
                .bind(s.id.clone())
                .bind(s.run_id.clone())
                .bind(s.job_name.clone())
                .bind(s.task_id.clone())
                .bind(hostname.clone())
                .bind(s.ip.clone())
                .bind(s.instance_id.clone())
                .bind(i64::from(s.item))
                .bind(s.source.as_str());
            match end {
                None => {
                    q.sql("'RUNNING'")
                        .sql("0")
                        .bind(s.start_ms)
                        .sql("NULL")
                        .sql("NULL")
                        .sql("NULL");
                }
                Some((f, state)) => {
                    q.bind(state.as_str())
                        .bind(i64::from(*state == RunState::Succeeded))
                        .bind(s.start_ms)
                        .bind(f.failure.as_deref().map(|c| cut(c, CAUSE_LIMIT)))
                        .bind(f.output.as_deref())
                        .bind(f.end_ms);
                }
            }
            q.end();
        }
        q.execute("", tx).await?;
    }
    let traces: Vec<&StatusTrace> = batch
        .iter()
        .filter_map(|r| match r {
            Record::Trace(t) => Some(t),
            _ => None,
        })
        .collect();
    for chunk in traces.chunks(ROWS_PER_INSERT) {
        let mut q = Rows::new(
            "INSERT INTO job_status_trace_log (id, run_id, job_name, original_task_id, task_id, slave_id, \
             execution_type, sharding_item, state, message, creation_time) ",
            chunk.len(),
            11,
        );
        for t in chunk {
            let message = if t.message.len() <= CAUSE_LIMIT {
                t.message.clone()
            } else {
                cut(&t.message, CAUSE_LIMIT).into()
            };
            q.row()
                .bind(new_id())
                .bind(t.run_id.clone())
                .bind(t.job_name.clone())
                .sql("''")
                .bind(t.task_id.clone())
                .bind(t.ip.clone())
                .sql("'READY'")
                .bind(java_list(&t.items))
                .bind(t.state.as_str())
                .bind(message)
                .bind(t.at_ms);
            q.end();
        }
        q.execute("", tx).await?;
    }
    // Finishes of items that started in an earlier batch: one UPDATE per chunk, from a
    // VALUES list (a thousand finishes of a burst are a few statements, not a thousand
    // round trips). Then the hourly aggregates of every finish, summed per (job, hour,
    // outcome) first, so they are a few upserts.
    let started_here: std::collections::HashSet<&str> =
        started.iter().map(|(s, _)| &*s.id).collect();
    let updates: Vec<&(&ItemFinished, RunState)> = finishes
        .iter()
        .filter(|(f, _)| !started_here.contains(&*f.id))
        .collect();
    for chunk in updates.chunks(ROWS_PER_INSERT) {
        let mut q = Rows::new(
            "WITH f (id, state, is_success, failure_cause, output, complete_time) AS (",
            chunk.len(),
            6,
        );
        for &&(f, state) in chunk {
            q.row()
                .bind(f.id.clone())
                .bind(state.as_str())
                .bind(i64::from(state == RunState::Succeeded))
                .bind(f.failure.as_deref().map(|c| cut(c, CAUSE_LIMIT)))
                .bind(f.output.as_deref())
                .bind(f.end_ms);
            q.end();
        }
        q.execute(
            ") UPDATE job_execution_log SET state = f.state, is_success = f.is_success, \
             failure_cause = f.failure_cause, output = f.output, complete_time = f.complete_time \
             FROM f WHERE job_execution_log.id = f.id",
            tx,
        )
        .await?;
    }
    let mut hourly: std::collections::HashMap<(&str, i64, RunState), (i64, i64, i64)> =
        std::collections::HashMap::new();
    for (f, state) in &finishes {
        let duration = (f.end_ms - f.start_ms).max(0);
        let agg = hourly
            .entry((
                &*f.job_name,
                f.end_ms - f.end_ms.rem_euclid(HOUR_MS),
                *state,
            ))
            .or_default();
        agg.0 += 1;
        agg.1 += duration;
        agg.2 = agg.2.max(duration);
    }
    for ((job, hour, state), (runs, total, max)) in hourly {
        add_hourly(tx, job, hour, state, (runs, total, max)).await?;
    }
    Ok(())
}

/// Marks an item execution finished.
async fn update_finished(
    tx: &mut sqlx::SqliteConnection,
    f: &ItemFinished,
    state: RunState,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE job_execution_log SET state = ?, is_success = ?, failure_cause = ?, output = ?, \
         complete_time = ? WHERE id = ?",
    )
    .bind(state.as_str())
    .bind(i64::from(state == RunState::Succeeded))
    .bind(f.failure.as_deref().map(|c| cut(c, CAUSE_LIMIT)))
    .bind(f.output.as_deref())
    .bind(f.end_ms)
    .bind(&f.id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Adds `(runs, total_ms, max_ms)` to one hourly aggregate.
async fn add_hourly(
    tx: &mut sqlx::SqliteConnection,
    job: &str,
    hour: i64,
    state: RunState,
    (runs, total, max): (i64, i64, i64),
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO job_run_hourly (job_name, hour, outcome, runs, total_ms, max_ms) VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (job_name, hour, outcome) DO UPDATE SET runs = runs + excluded.runs, \
         total_ms = total_ms + excluded.total_ms, max_ms = max(max_ms, excluded.max_ms)",
    )
    .bind(job)
    .bind(hour)
    .bind(state.as_str())
    .bind(runs)
    .bind(total)
    .bind(max)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Finishes one item execution and counts it in its hour (the abandoned-items path).
pub(super) async fn write_finished(
    tx: &mut sqlx::SqliteConnection,
    f: &ItemFinished,
    state: RunState,
) -> Result<(), sqlx::Error> {
    update_finished(tx, f, state).await?;
    let duration = (f.end_ms - f.start_ms).max(0);
    let hour = f.end_ms - f.end_ms.rem_euclid(HOUR_MS);
    add_hourly(tx, &f.job_name, hour, state, (1, duration, duration)).await
}

/// After the first record of a batch, the writer waits in slices of this long for as long
/// as more keep coming (up to [`COALESCE_MAX`]): fires come in bursts (every job due on the
/// same second), and the burst is done before the history is written, rather than
/// sharing the CPU with it. A slice is a sleep, not a wait on the channel, so a burst's
/// records do not wake the writer one by one.
const COALESCE: Duration = Duration::from_millis(20);
/// The longest a record waits before it is written (unless the writer is busy).
const COALESCE_MAX: Duration = Duration::from_millis(250);

/// Commits records in batches; answers flushes once what came before them is committed.
pub(super) async fn writer(
    pool: SqlitePool,
    mut rx: mpsc::UnboundedReceiver<Record>,
    commits: tokio::sync::watch::Sender<u64>,
) {
    let hostname: Arc<str> = host_name().into();
    let mut batch: Vec<Record> = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        // A flush is waited on: answer it without the coalescing pause.
        let flush_waiting = |batch: &[Record]| batch.iter().any(|r| matches!(r, Record::Flush(_)));
        let give_up = tokio::time::Instant::now() + COALESCE_MAX;
        while !flush_waiting(&batch) && batch.len() < MAX_BATCH {
            tokio::time::sleep(COALESCE).await;
            let before = batch.len();
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            if batch.len() == before || tokio::time::Instant::now() >= give_up {
                break;
            }
        }
        let mut attempt = 0;
        loop {
            let result = async {
                let mut tx = pool.begin().await?;
                write_batch(&mut tx, &batch, &hostname).await?;
                tx.commit().await
            }
            .await;
            match result {
                Ok(()) => break,
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "run history: write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, records = batch.len(), "run history: records could not be written and are lost");
                    break;
                }
            }
        }
        commits.send_modify(|n| *n += 1);
        for r in batch.drain(..) {
            if let Record::Flush(done) = r {
                let _ = done.send(());
            }
        }
    }
}
