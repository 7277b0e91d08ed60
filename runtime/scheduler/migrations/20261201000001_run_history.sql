-- Run history: ElasticJob's event-trace tables (elasticjob-registry.md §8) with Capstan's
-- additions. Times are milliseconds since the Unix epoch.

-- One row per item execution. `id` is the item execution (a random UUID, as Java's);
-- `run_id` groups the items of one fire on one instance, which Java's task id cannot.
-- `state` says RUNNING while the item runs, so a running item never reads as a failure.
CREATE TABLE job_execution_log (
    id               TEXT PRIMARY KEY NOT NULL,
    run_id           TEXT NOT NULL,
    job_name         TEXT NOT NULL,
    task_id          TEXT NOT NULL,
    hostname         TEXT NOT NULL,
    ip               TEXT NOT NULL,
    instance_id      TEXT NOT NULL,
    sharding_item    INTEGER NOT NULL,
    execution_source TEXT NOT NULL,
    state            TEXT NOT NULL,
    is_success       INTEGER NOT NULL DEFAULT 0,
    failure_cause    TEXT,
    output           TEXT,
    start_time       INTEGER NOT NULL,
    complete_time    INTEGER
);
CREATE INDEX job_execution_log_by_time ON job_execution_log (start_time);
CREATE INDEX job_execution_log_by_job ON job_execution_log (job_name, start_time);
CREATE INDEX job_execution_log_by_ip ON job_execution_log (ip, start_time);
CREATE INDEX job_execution_log_by_run ON job_execution_log (run_id);
CREATE INDEX job_execution_log_running ON job_execution_log (state) WHERE state = 'RUNNING';

-- One row per status transition of a run (TASK_STAGING, TASK_RUNNING, TASK_FINISHED,
-- TASK_ERROR), as Lite writes them.
CREATE TABLE job_status_trace_log (
    id               TEXT PRIMARY KEY NOT NULL,
    run_id           TEXT NOT NULL,
    job_name         TEXT NOT NULL,
    original_task_id TEXT NOT NULL DEFAULT '',
    task_id          TEXT NOT NULL,
    slave_id         TEXT NOT NULL,
    execution_type   TEXT NOT NULL,
    sharding_item    TEXT NOT NULL,
    state            TEXT NOT NULL,
    message          TEXT,
    creation_time    INTEGER NOT NULL
);
CREATE INDEX job_status_trace_log_by_time ON job_status_trace_log (creation_time);
CREATE INDEX job_status_trace_log_by_job ON job_status_trace_log (job_name, creation_time);
CREATE INDEX task_id_state_index ON job_status_trace_log (task_id, state);

-- Finished item executions per job, hour and outcome, kept up to date as items finish,
-- so charts never scan the log.
CREATE TABLE job_run_hourly (
    job_name TEXT NOT NULL,
    hour     INTEGER NOT NULL,
    outcome  TEXT NOT NULL,
    runs     INTEGER NOT NULL,
    total_ms INTEGER NOT NULL,
    max_ms   INTEGER NOT NULL,
    PRIMARY KEY (job_name, hour, outcome)
) WITHOUT ROWID;
