//! Serde types both targets share. No sqlx, tokio or runtime types here: this compiles to wasm.

mod audit;
pub mod centre;
mod jobs;
mod pipelines;
mod prefs;
mod time;
mod user;

pub use audit::{AuditEntry, AuditFilter, AuditPage, AuditResult};
pub use centre::{
    CentreInput, CentreKind, ProbeResult, RegistryCentre, validate_centre_name, validate_color,
    validate_namespace,
};
pub use jobs::{
    ConfigEdit, Dashboard, HourFires, HourOutcomes, ITEM_STATUSES, ImportFailure, ImportReport,
    InstanceRow, ItemRow, JOB_STATUSES, JobDetail, JobFilter, JobPage, JobRow, JobServerRow,
    NewJob, RunFilter, RunPage, RunRow, ServerRow, TraceRow, tags_of,
};
pub use pipelines::{CheckpointView, PipelineDetail, PipelineRow, SampleView, VertexView};
pub use prefs::{Lang, Theme};
pub use time::{format_ms, format_ms_precise, parse_date_ms};
pub use user::{Me, Role, UserSummary, validate_new_password, validate_username};
