//! Capstan's stream runtime (`stream-semantics.md`).
//!
//! What exists now is the semantic core, run deterministically over an ordered input in
//! event time (`capstan pipeline run`, and the golden tests):
//! - [`spec`]: the YAML pipeline spec, validated with errors that name the field;
//! - [`expr`]: the expression language of map, filter and key selectors;
//! - [`engine`]: watermarks with bounded out-of-orderness; tumbling, hopping and session
//!   windows with `on_close`/`on_update` emission, allowed lateness and a `late` output;
//!   stream and table aggregation (count, sum, min, max, avg) with table regrouping;
//!   stream-table and table-table joins.
//!
//! Not yet: the partitioned multi-threaded executor, windowed stream-stream joins,
//! processing-time windows, idle partitions, checkpoints and exactly-once sinks, file,
//! generator and Nexmark sources, metrics, registration on a registry centre, and the
//! console view.
#![warn(missing_docs)]

pub mod engine;
pub mod exec;
pub mod expr;
pub mod registration;
pub mod spec;

pub use engine::{InputError, Metrics, Runner, run_lines};
pub use spec::{PipelineSpec, SpecError};
