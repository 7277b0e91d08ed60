//! Capstan's stream runtime (`stream-semantics.md`).
//!
//! - [`spec`]: the YAML pipeline spec, validated with errors that name the field, and
//!   [`builder`], the same operators chained in Rust;
//! - [`expr`]: the expression language of map, filter and key selectors;
//! - [`engine`]: the event-time semantics, run deterministically over an ordered input
//!   (`capstan pipeline run`, the golden tests) and inside each stateful task of the
//!   executor: watermarks, idle sources, tumbling, hopping and session windows,
//!   `on_close`/`on_update`, allowed lateness and a `late` output, stream and table
//!   aggregation with regrouping, stream-table, table-table and windowed stream-stream
//!   joins, snapshots;
//! - [`exec`]: the partitioned executor: cooperative tasks on a few threads, bounded
//!   queues, aligned checkpoints, a transactional file sink, generator and file sources,
//!   per-vertex metrics;
//! - [`registration`]: a running pipeline as a `STREAM` job on its registry centre, and
//!   its control through the registry;
//! - [`value`]: the values records carry, written and read as JSON.
#![warn(missing_docs)]

pub mod builder;
pub mod engine;
pub mod exec;
pub mod expr;
pub mod registration;
pub mod spec;
pub mod value;

pub use engine::{InputError, Metrics, Runner, run_lines};
pub use spec::{PipelineSpec, SpecError};
pub use value::Val;
