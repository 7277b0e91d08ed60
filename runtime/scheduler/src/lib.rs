//! Capstan's scheduler runtime: sharded cron jobs with ElasticJob-Lite 3.0.x semantics, on
//! the same registry layout (`elasticjob-registry.md`).
//!
//! What is here so far, each matching Java exactly:
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
pub mod cron;
mod error;
pub mod instance;
pub mod protocol;
pub mod sharding;

pub use error::{Error, Result};
