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

/// One stateless step (filter, map, flat_map, key_by) applied to `r`; results go to `out`.
pub(super) fn stateless(step: &Step, r: Rec, table: bool, out: &mut Vec<Rec>) {
    match step {
        Step::Filter(e) => {
            // A table row that stops matching is a delete downstream.
            if e.holds(&scope(&r)) {
                out.push(r);
            } else if table {
                out.push(Rec {
                    value: Val::Null,
                    ..r
                });
            }
        }
        Step::Map(fields) if !(table && r.value.is_null()) => {
            let s = scope(&r);
            // The spec keeps a map's fields in name order.
            let m = Obj::from_sorted_fields(
                fields
                    .iter()
                    .map(|(f, e)| (f.clone(), e.eval(&s)))
                    .collect(),
            );
            out.push(Rec {
                value: Val::Obj(m),
                ..r
            });
        }
        Step::FlatMap(e) => {
            if let Val::Arr(items) = e.eval(&scope(&r)) {
                out.extend(items.into_iter().map(|value| Rec {
                    value,
                    key: r.key.clone(),
                    ts: r.ts,
                }));
            }
        }
        Step::KeyBy(e) => {
            let key = e.eval(&scope(&r));
            out.push(Rec { key, ..r });
        }
        _ => out.push(r),
    }
}

/// The stateless steps before the exchange (`steps[..end]`), chained: what a source
/// task applies to each record before routing it by key.
pub struct Prefix {
    steps: Vec<Step>,
    table: bool,
    a: Vec<Rec>,
    b: Vec<Rec>,
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
        }
    }

    /// Whether records are table rows here.
    pub fn table(&self) -> bool {
        self.table
    }

    /// Applies the chain to `r`, appending the results to `out` (the two scratch buffers
    /// are reused: no allocation per record for the chain itself).
    pub fn apply(&mut self, r: Record, out: &mut Vec<Record>) {
        match self.steps.as_slice() {
            [] => {
                out.push(r);
                return;
            }
            // One step (a map, a filter): straight into `out`, not through the buffers,
            // each of which moved the record once more.
            [step] => {
                stateless(step, r, self.table, out);
                return;
            }
            _ => {}
        }
        self.a.clear();
        self.a.push(r);
        for step in &self.steps {
            self.b.clear();
            for r in self.a.drain(..) {
                stateless(step, r, self.table, &mut self.b);
            }
            std::mem::swap(&mut self.a, &mut self.b);
        }
        out.append(&mut self.a);
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
