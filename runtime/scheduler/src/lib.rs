//! Capstan's scheduler runtime: sharded cron jobs with ElasticJob-Lite 3.0.x semantics, on
//! the same registry layout (`elasticjob-registry.md`).
//!
//! - [`runtime`]: the [`Scheduler`]: one instance running jobs (cron, sharding, leader
//!   election, failover, misfire, triggers, pause, fencing on connection loss);
//! - [`kinds`]: simple and dataflow jobs in Rust, script and HTTP jobs from config alone;
//! - [`history`]: run history in SQLite, with hourly aggregates and retention;
//! - [`context`]: the sharding context an item gets, and task ids;
//! - [`instance`]: instance ids `ip@-@pid`, and Java's descending string order of them;
//! - [`protocol`]: registry protocol steps (leader election, lazy resharding, local items);
//! - [`sharding`]: the four built-in strategies, reproducing the worked examples;
//! - [`admin`]: job, item and server statuses (spec §7.4) from a tree cache, with reasons;
//! - [`config`]: the job config YAML, read leniently and written as Java's strict loader
//!   expects;
//! - [`cron`]: Quartz cron expressions with seconds, `?`, `L`, `W`, `#` and an optional year,
//!   in `GMT±hh:mm` or IANA time zones, and the next N fire times.
#![warn(missing_docs)]

pub mod admin;
pub mod config;
pub mod context;
pub mod cron;
mod error;
pub mod history;
pub mod instance;
pub mod kinds;
pub mod protocol;
pub mod runtime;
pub mod sharding;

pub use error::{Error, Result};
pub use runtime::{
    Connection, JobDefinition, JobState, Scheduler, SchedulerBuilder, parse_job_file,
};
