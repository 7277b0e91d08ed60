//! The stateless part of a pipeline (filter, map, flat_map, key_by) and reading input
//! lines into records: what the executor's source tasks run before the exchange.

use super::{InputError, Rec, Record, object, scope};
use crate::spec::{JoinKind, PipelineSpec, SourceKind, Step};
use crate::value::{Obj, Val};

/// A record as the pipeline's output writes it.
pub fn output_row(r: Record, table: bool) -> Val {
    if table {
        object([("key", r.key), ("value", r.value)])
    } else {
        object([("key", r.key), ("ts", r.ts.into()), ("value", r.value)])
    }
}

/// One stateless step (filter, map, flat_map, key_by) applied to `r`; results go to `out`
/// (a closure, not a vector: the executor's source task queues each straight away).
///
/// `values` is scratch for a map's new values (empty between calls), so that a map
/// allocates nothing per record once it has been used.
pub(super) fn stateless(
    step: &Step,
    r: Rec,
    table: bool,
    values: &mut Vec<Val>,
    out: &mut impl FnMut(Rec),
) {
    match step {
        Step::Filter(e) => {
            // A table row that stops matching is a delete downstream.
            if e.holds(&scope(&r)) {
                out(r);
            } else if table {
                out(Rec {
                    value: Val::Null,
                    ..r
                });
            }
        }
        Step::Map(map) if !(table && r.value.is_null()) => {
            // Every expression reads the record as it came, so the new values are made
            // first, and only then replace its fields.
            let s = scope(&r);
            values.extend(map.computed().map(|e| e.eval(&s)));
            let mut r = r;
            // The record's object is rewritten where it is: a new object per record cost
            // an allocation, the old one's free, and a copy of every field kept (see
            // `Obj::project`).
            if !matches!(r.value, Val::Obj(_)) {
                r.value = Val::Obj(Obj::with_capacity(map.names().len()));
            }
            if let Val::Obj(m) = &mut r.value {
                m.project(map.names(), map.kept(), values.drain(..));
            }
            out(r);
        }
        Step::FlatMap(e) => {
            if let Val::Arr(items) = e.eval(&scope(&r)) {
                for value in items {
                    out(Rec {
                        value,
                        key: r.key.clone(),
                        ts: r.ts,
                    });
                }
            }
        }
        Step::KeyBy(e) => {
            let key = e.eval(&scope(&r));
            out(Rec { key, ..r });
        }
        _ => out(r),
    }
}

/// The stateless steps before the exchange (`steps[..end]`), chained: what a source
/// task applies to each record before routing it by key.
pub struct Prefix {
    steps: Vec<Step>,
    table: bool,
    a: Vec<Rec>,
    b: Vec<Rec>,
    /// A map's new values, before they replace the record's fields.
    values: Vec<Val>,
}

impl Prefix {
    /// The chain of `spec.steps[..end]`.
    pub fn new(spec: &PipelineSpec, end: usize) -> Prefix {
        let table = spec.join.as_ref().map_or_else(
            || spec.sources[0].kind == SourceKind::Table,
            |j| j.kind == JoinKind::TableTable,
        );
        Prefix {
            steps: spec.steps[..end.min(spec.steps.len())].to_vec(),
            table,
            a: Vec::new(),
            b: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Whether records are table rows here.
    pub fn table(&self) -> bool {
        self.table
    }

    /// Applies the chain to `r`, handing each result to `out` (the two scratch buffers
    /// are reused: no allocation per record for the chain itself).
    ///
    /// A closure, not a vector the caller drains: draining one per record, and moving
    /// each record once more through it, was some 40 instructions a record (callgrind,
    /// Nexmark Q1).
    pub fn apply(&mut self, r: Record, out: &mut impl FnMut(Record)) {
        match self.steps.as_slice() {
            [] => {
                out(r);
                return;
            }
            // One step (a map, a filter): straight to `out`, not through the buffers,
            // each of which moved the record once more.
            [step] => {
                stateless(step, r, self.table, &mut self.values, out);
                return;
            }
            _ => {}
        }
        self.a.clear();
        self.a.push(r);
        for step in &self.steps {
            self.b.clear();
            let b = &mut self.b;
            for r in self.a.drain(..) {
                stateless(step, r, self.table, &mut self.values, &mut |r| b.push(r));
            }
            std::mem::swap(&mut self.a, &mut self.b);
        }
        self.a.drain(..).for_each(out);
    }
}

/// Reads an input line into its source's index (spec order) and a record.
pub(super) fn parse_line(
    spec: &PipelineSpec,
    max_ts: &[Option<i64>],
    source: Option<usize>,
    line_no: usize,
    line: Val,
) -> Result<(usize, Record), InputError> {
    let bad = |m: String| InputError {
        line: line_no,
        message: m,
    };
    let Val::Obj(mut obj) = line else {
        return Err(bad("expected a JSON object".into()));
    };
    let named = obj.remove("source");
    let index = match named {
        _ if source.is_some() => source.unwrap_or(0),
        Some(Val::Str(s)) => spec
            .sources
            .iter()
            .position(|x| x.name == s)
            .ok_or_else(|| bad(format!("no source named {s:?}")))?,
        None if spec.sources.len() == 1 => 0,
        _ => return Err(bad("name the source: {\"source\": NAME, ...}".into())),
    };
    let src = &spec.sources[index];
    let ts = match (src.kind, obj.get(&src.timestamp).and_then(Val::as_i64)) {
        (_, Some(ts)) => ts,
        (SourceKind::Table, None) => max_ts.iter().flatten().copied().max().unwrap_or(0),
        (SourceKind::Stream, None) => {
            return Err(bad(format!(
                "no integer event time in field {:?}",
                src.timestamp
            )));
        }
    };
    let rec = match src.kind {
        SourceKind::Stream => Rec {
            key: obj.get("key").cloned().unwrap_or(Val::Null),
            value: Val::Obj(obj),
            ts,
        },
        SourceKind::Table => Rec {
            key: obj.remove("key").unwrap_or(Val::Null),
            value: obj.remove("value").unwrap_or(Val::Null),
            ts,
        },
    };
    Ok((index, rec))
}

/// Reads a record of spec source `source` (the executor's inputs: each reads one source,
/// so records need no `source` field).
///
/// # Errors
/// As [`super::Runner::parse`].
pub fn parse_record(
    spec: &PipelineSpec,
    source: usize,
    line: Val,
) -> Result<(usize, Record), InputError> {
    parse_line(spec, &[], Some(source), 0, line)
}

#[cfg(test)]
mod tests {
    use crate::spec::PipelineSpec;

    /// A map rewrites each record's object where it is (`Obj::project`): fields kept by
    /// name, computed, missing, and a value that is no object at all, both through the
    /// executor's chain (`Prefix`) and the replay's runner.
    #[test]
    fn a_map_keeps_computes_and_drops_fields_whatever_the_value() {
        let spec = PipelineSpec::from_yaml(
            "name: m\nsources: [{name: s}]\nsteps:\n  - flat_map: items\n  - map: {n: n, twice: 'n * 2', v: '$value', gone: gone}\n",
        )
        .expect("spec");
        let input = r#"{"key":"k","ts":1,"items":[{"n":3,"x":"dropped"},7,{"a":1}]}"#;
        let expected = [
            r#"{"key":"k","ts":1,"value":{"gone":null,"n":3,"twice":6,"v":{"n":3,"x":"dropped"}}}"#,
            r#"{"key":"k","ts":1,"value":{"gone":null,"n":null,"twice":null,"v":7}}"#,
            r#"{"key":"k","ts":1,"value":{"gone":null,"n":null,"twice":null,"v":{"a":1}}}"#,
        ];
        let (rows, _) = crate::engine::run_lines(&spec, input).expect("run");
        let rows: Vec<String> = rows.iter().map(ToString::to_string).collect();
        assert_eq!(rows, expected);

        let mut prefix = super::Prefix::new(&spec, spec.steps.len());
        let line = serde_json::from_str(input).expect("json");
        let (_, rec) = super::parse_record(&spec, 0, line).expect("record");
        let mut out = Vec::new();
        prefix.apply(rec, &mut |r| out.push(r));
        let rows: Vec<String> = out
            .into_iter()
            .map(|r| super::output_row(r, false).to_string())
            .collect();
        assert_eq!(rows, expected);
    }
}
