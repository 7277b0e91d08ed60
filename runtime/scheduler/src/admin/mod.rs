//! The admin (lifecycle) API. [`operations`] write exactly what ElasticJob's lifecycle
//! module writes (spec §5), plus pause, resume and trigger with a parameter. The read side
//! computes job, item and server statuses as that module does (spec §7.4), from a
//! [`TreeCache`] view rather than a walk of the registry per request, and never fails on
//! odd data: a vanished owner, a missing node or a malformed config becomes a status with
//! a reason.
//!
//! [`TreeCache`]: capstan_registry::cache::TreeCache

pub mod operations;
mod status;

pub use status::{
    ItemState, ItemStatus, JobHealth, JobServers, JobStatus, JobSummary, ServerSummary, job_health,
    job_items, job_servers, job_summaries, read_config, servers, summarize_servers,
};
