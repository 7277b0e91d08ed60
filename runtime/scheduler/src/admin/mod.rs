//! The admin (lifecycle) API's read side: job, item and server statuses computed exactly
//! as ElasticJob's `lifecycle` module does (spec §7.4), from a [`TreeCache`] view rather
//! than a walk of the registry per request, and never failing on odd data: a vanished
//! owner, a missing node or a malformed config becomes a status with a reason.
//!
//! [`TreeCache`]: capstan_registry::cache::TreeCache

mod status;

pub use status::{
    ItemState, ItemStatus, JobStatus, JobSummary, ServerSummary, job_items, job_summaries, servers,
};
