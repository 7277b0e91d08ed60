//! The Rust pipeline API: the same operators as the YAML spec, chained in code.
//!
//! A builder writes the spec document and hands it to [`PipelineSpec::from_yaml`], so a
//! pipeline built in Rust is validated exactly as one written in YAML (errors name the same
//! field paths) and can be run by the replay or the executor alike.
//!
//! ```
//! use capstan_stream::builder::{Agg, PipelineBuilder, Src};
//!
//! let b = PipelineBuilder::new("clicks-per-user")
//!     .source(Src::stream("clicks").max_out_of_orderness_ms(2000))
//!     .filter("amount > 0")
//!     .key_by("user")
//!     .aggregate(Agg::tumbling(5000).lateness_ms(1000).count("clicks").sum("total", "amount"));
//! let spec = b.build().expect("valid");
//! assert_eq!(spec.name, "clicks-per-user");
//! ```

use serde_norway::{Mapping, Value as Yaml};

use crate::spec::{PipelineSpec, SpecError};

fn s(v: &str) -> Yaml {
    Yaml::String(v.to_owned())
}

fn i(v: i64) -> Yaml {
    Yaml::Number(v.into())
}

fn map(entries: impl IntoIterator<Item = (&'static str, Yaml)>) -> Yaml {
    let mut m = Mapping::new();
    for (k, v) in entries {
        m.insert(s(k), v);
    }
    Yaml::Mapping(m)
}

/// A source.
#[derive(Debug, Clone)]
pub struct Src(Mapping);

impl Src {
    fn new(name: &str, kind: &str) -> Src {
        let mut m = Mapping::new();
        m.insert(s("name"), s(name));
        m.insert(s("kind"), s(kind));
        Src(m)
    }

    /// A stream of independent records.
    pub fn stream(name: &str) -> Src {
        Src::new(name, "stream")
    }

    /// A table: an upsert changelog (`{key, value}`, a null value deletes).
    pub fn table(name: &str) -> Src {
        Src::new(name, "table")
    }

    /// The event-time field (default `ts`).
    pub fn timestamp(mut self, field: &str) -> Src {
        self.0.insert(s("timestamp"), s(field));
        self
    }

    /// The watermark bound.
    pub fn max_out_of_orderness_ms(mut self, ms: i64) -> Src {
        self.0.insert(s("max_out_of_orderness_ms"), i(ms));
        self
    }

    /// Idle after this long without records.
    pub fn idle_timeout_ms(mut self, ms: i64) -> Src {
        self.0.insert(s("idle_timeout_ms"), i(ms));
        self
    }
}

/// An aggregation: its window, emission and operations.
#[derive(Debug, Clone, Default)]
pub struct Agg {
    m: Mapping,
    ops: Mapping,
}

impl Agg {
    fn windowed(window: Yaml) -> Agg {
        let mut a = Agg::default();
        a.m.insert(s("window"), window);
        a
    }

    /// A running aggregate per key (a table).
    pub fn running() -> Agg {
        Agg::default()
    }

    /// Tumbling windows of `size` ms.
    pub fn tumbling(size: i64) -> Agg {
        Agg::windowed(map([("tumbling", i(size))]))
    }

    /// Hopping windows.
    pub fn hopping(size: i64, advance: i64) -> Agg {
        Agg::windowed(map([(
            "hopping",
            map([("size", i(size)), ("advance", i(advance))]),
        )]))
    }

    /// Session windows.
    pub fn session(gap: i64) -> Agg {
        Agg::windowed(map([("session", map([("gap", i(gap))]))]))
    }

    /// Emit after every change instead of when the window completes.
    pub fn on_update(mut self) -> Agg {
        self.m.insert(s("emit"), s("on_update"));
        self
    }

    /// Allowed lateness.
    pub fn lateness_ms(mut self, ms: i64) -> Agg {
        self.m.insert(s("allowed_lateness_ms"), i(ms));
        self
    }

    /// Windows over processing time (the executor only).
    pub fn processing_time(mut self) -> Agg {
        self.m.insert(s("time"), s("processing"));
        self
    }

    fn op(mut self, name: &str, op: Yaml) -> Agg {
        self.ops.insert(s(name), op);
        self
    }

    /// Records.
    pub fn count(self, name: &str) -> Agg {
        self.op(name, s("count"))
    }

    /// Sum of an expression.
    pub fn sum(self, name: &str, expr: &str) -> Agg {
        self.op(name, map([("sum", s(expr))]))
    }

    /// Minimum.
    pub fn min(self, name: &str, expr: &str) -> Agg {
        self.op(name, map([("min", s(expr))]))
    }

    /// Maximum.
    pub fn max(self, name: &str, expr: &str) -> Agg {
        self.op(name, map([("max", s(expr))]))
    }

    /// Mean.
    pub fn avg(self, name: &str, expr: &str) -> Agg {
        self.op(name, map([("avg", s(expr))]))
    }

    /// The `n` records with the highest `by`.
    pub fn top(self, name: &str, n: i64, by: &str) -> Agg {
        self.op(name, map([("top", map([("n", i(n)), ("by", s(by))]))]))
    }
}

/// A pipeline being put together.
#[derive(Debug, Clone)]
pub struct PipelineBuilder {
    name: String,
    sources: Vec<Yaml>,
    join: Option<Yaml>,
    steps: Vec<Yaml>,
    late_output: bool,
    run: Option<Yaml>,
}

impl PipelineBuilder {
    /// A pipeline named `name`.
    pub fn new(name: &str) -> PipelineBuilder {
        PipelineBuilder {
            name: name.to_owned(),
            sources: Vec::new(),
            join: None,
            steps: Vec::new(),
            late_output: false,
            run: None,
        }
    }

    /// Adds a source.
    pub fn source(mut self, src: Src) -> PipelineBuilder {
        self.sources.push(Yaml::Mapping(src.0));
        self
    }

    /// Joins the two sources: `kind` `stream_table`, `table_table` or `stream_stream`,
    /// `join_type` `inner`, `left` or `outer`; `window` (`within_ms`, `grace_ms`) for
    /// stream-stream joins.
    pub fn join(
        mut self,
        left: &str,
        right: &str,
        kind: &str,
        join_type: &str,
        window: Option<(i64, i64)>,
    ) -> PipelineBuilder {
        let mut m = Mapping::new();
        for (k, v) in [
            ("left", left),
            ("right", right),
            ("kind", kind),
            ("type", join_type),
        ] {
            m.insert(s(k), s(v));
        }
        if let Some((within, grace)) = window {
            m.insert(s("within_ms"), i(within));
            m.insert(s("grace_ms"), i(grace));
        }
        self.join = Some(Yaml::Mapping(m));
        self
    }

    fn step(mut self, name: &'static str, body: Yaml) -> PipelineBuilder {
        self.steps.push(map([(name, body)]));
        self
    }

    /// Keeps records where `expr` is true.
    pub fn filter(self, expr: &str) -> PipelineBuilder {
        self.step("filter", s(expr))
    }

    /// Replaces the value by these fields.
    pub fn map(self, fields: &[(&str, &str)]) -> PipelineBuilder {
        let mut m = Mapping::new();
        for (f, e) in fields {
            m.insert(s(f), s(e));
        }
        self.step("map", Yaml::Mapping(m))
    }

    /// One record per element of the array `expr` gives.
    pub fn flat_map(self, expr: &str) -> PipelineBuilder {
        self.step("flat_map", s(expr))
    }

    /// Re-keys a stream.
    pub fn key_by(self, expr: &str) -> PipelineBuilder {
        self.step("key_by", s(expr))
    }

    /// Regroups a table.
    pub fn group_by(self, expr: &str) -> PipelineBuilder {
        self.step("group_by", s(expr))
    }

    /// Aggregates per key.
    pub fn aggregate(self, agg: Agg) -> PipelineBuilder {
        let mut m = agg.m;
        m.insert(s("ops"), Yaml::Mapping(agg.ops));
        self.step("aggregate", Yaml::Mapping(m))
    }

    /// Sends late records to the output as `{"late": record}`.
    pub fn late_output(mut self) -> PipelineBuilder {
        self.late_output = true;
        self
    }

    /// The executor's `run:` section, as YAML text (see [`crate::exec::config`]).
    ///
    /// # Errors
    /// Text that is not YAML.
    pub fn run_yaml(mut self, yaml: &str) -> Result<PipelineBuilder, SpecError> {
        let v: Yaml =
            serde_norway::from_str(yaml).map_err(|e| crate::spec::err("run", e.to_string()))?;
        self.run = Some(v);
        Ok(self)
    }

    /// The spec document.
    pub fn to_yaml(&self) -> String {
        let mut m = Mapping::new();
        m.insert(s("name"), s(&self.name));
        m.insert(s("sources"), Yaml::Sequence(self.sources.clone()));
        if let Some(j) = &self.join {
            m.insert(s("join"), j.clone());
        }
        m.insert(s("steps"), Yaml::Sequence(self.steps.clone()));
        if self.late_output {
            m.insert(s("late_output"), Yaml::Bool(true));
        }
        if let Some(r) = &self.run {
            m.insert(s("run"), r.clone());
        }
        serde_norway::to_string(&Yaml::Mapping(m)).unwrap_or_default()
    }

    /// Validates and compiles the pipeline.
    ///
    /// # Errors
    /// What [`PipelineSpec::from_yaml`] finds, with the same field paths.
    pub fn build(&self) -> Result<PipelineSpec, SpecError> {
        PipelineSpec::from_yaml(&self.to_yaml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_pipeline_is_the_spec_its_yaml_gives() {
        let built = PipelineBuilder::new("stats")
            .source(Src::stream("readings").max_out_of_orderness_ms(1000))
            .filter("temp > -50")
            .key_by("sensor")
            .aggregate(
                Agg::hopping(10000, 5000)
                    .count("n")
                    .avg("mean", "temp")
                    .top("hot", 2, "temp"),
            )
            .late_output()
            .build()
            .expect("valid");
        let yaml = PipelineSpec::from_yaml(
            "name: stats\nsources: [{name: readings, max_out_of_orderness_ms: 1000}]\nlate_output: true\nsteps:\n  - filter: 'temp > -50'\n  - key_by: sensor\n  - aggregate: {window: {hopping: {size: 10000, advance: 5000}}, ops: {n: count, mean: {avg: temp}, hot: {top: {n: 2, by: temp}}}}\n",
        )
        .expect("valid");
        assert_eq!(built, yaml);
    }

    #[test]
    fn a_bad_step_is_named_as_in_yaml() {
        let e = PipelineBuilder::new("p")
            .source(Src::stream("s"))
            .filter("a >")
            .build()
            .expect_err("bad expression");
        assert_eq!(e.path, "steps[0].filter");
        let e = PipelineBuilder::new("p")
            .source(Src::stream("s"))
            .aggregate(Agg::hopping(100, 200).count("n"))
            .build()
            .expect_err("bad window");
        assert_eq!(e.path, "steps[0].aggregate.window.hopping.advance");
    }
}
