//! The declarative pipeline spec (YAML), validated with errors that name the offending
//! field (`steps[2].aggregate.window.hopping.advance: must be at most size`).
//!
//! ```yaml
//! name: clicks-per-user
//! sources:
//!   - name: clicks          # input lines carry {"source": "clicks", ...} when there are two
//!     kind: stream          # or table: lines {"key": k, "value": v}, value null = delete
//!     timestamp: ts         # field with event time, ms (default ts)
//!     max_out_of_orderness_ms: 2000
//! steps:
//!   - filter: "amount > 0"
//!   - map: {user: user, amount: "amount * 100"}
//!   - key_by: user
//!   - aggregate:
//!       window: {tumbling: 5000}          # or {hopping: {size, advance}}, {session: {gap}}
//!       emit: on_close                    # or on_update
//!       allowed_lateness_ms: 1000
//!       ops: {clicks: count, total: {sum: amount}}
//! late_output: true                       # late records as {"late": record}
//! ```
//!
//! A tumbling or hopping window emitting on close (no allowed lateness) may rank its keys:
//! `rank: {by: clicks, top: 3}` emits per window only the keys with fewer than 3 keys
//! above them by `clicks`, ties included (see [`Rank`]).
//!
//! Joins take two sources and no steps before them:
//! `join: {left: L, right: R, kind: stream_table | table_table, type: inner | left | outer}`.

use compact_str::CompactString;
use serde_norway::Value as Yaml;

use crate::expr::Expr;
use crate::value::FieldName;

/// A spec error: the field's path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SpecError {
    /// e.g. `steps[1].filter`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

pub(crate) fn err(path: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError {
        path: path.into(),
        message: message.into(),
    }
}

/// Stream or table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Independent facts.
    Stream,
    /// An upsert changelog; a null value deletes.
    Table,
}

/// One input.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Name, as input lines' `source` field gives it.
    pub name: String,
    /// Stream or table.
    pub kind: SourceKind,
    /// The event-time field.
    pub timestamp: String,
    /// The watermark bound.
    pub max_out_of_orderness_ms: i64,
    /// A source (partition) without records this long is idle and stops holding the
    /// watermark back. In a replay the clock is the input's event time (the highest
    /// timestamp seen over all sources); the executor uses the wall clock.
    pub idle_timeout_ms: Option<i64>,
}

/// Window kinds (`stream-semantics.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `[k·size, (k+1)·size)`.
    Tumbling {
        /// Width, ms.
        size: i64,
    },
    /// Every `[k·advance, k·advance+size)`, `k ≥ 0`, containing the record.
    Hopping {
        /// Width, ms.
        size: i64,
        /// Distance between starts, ms.
        advance: i64,
    },
    /// Per key; records at most `gap` apart share a session.
    Session {
        /// Inactivity that ends a session, ms.
        gap: i64,
    },
}

/// When a windowed aggregation emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// Once per window, when it completes (and again if a late record updates it).
    OnClose,
    /// After every change.
    OnUpdate,
}

/// A built-in aggregation.
#[derive(Debug, Clone, PartialEq)]
pub enum AggOp {
    /// Records.
    Count,
    /// Sum of an expression.
    Sum(Expr),
    /// Minimum.
    Min(Expr),
    /// Maximum.
    Max(Expr),
    /// Mean.
    Avg(Expr),
    /// The `n` records with the highest `by`, highest first (ties: the earlier first).
    Top {
        /// How many.
        n: usize,
        /// The score.
        by: Expr,
        /// Whether records scoring the same as the `n`-th are kept too (Nexmark's Q7: the
        /// bids at the window's highest price, however many).
        ties: bool,
    },
}

/// `aggregate:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// Windowing, if any (none: a running table per key).
    pub window: Option<Window>,
    /// Emission.
    pub emit: Emit,
    /// Allowed lateness.
    pub allowed_lateness_ms: i64,
    /// Windows over processing time (the wall clock when a record is read) instead of
    /// event time: the executor only, since a replay has no clock.
    pub processing_time: bool,
    /// Output field → aggregation, in spec order.
    pub ops: Vec<(String, AggOp)>,
    /// Per window, only the keys that rank in the top N by one aggregation.
    pub rank: Option<Rank>,
    /// A windowed result row's fields, in name order (see [`RowLayout`]).
    pub(crate) window_row: RowLayout,
    /// An unwindowed result row's fields, in name order.
    pub(crate) group_row: RowLayout,
}

/// A window's ranking (Flink's window top-N, with ties): when a window closes, only the
/// keys with fewer than `top` keys strictly above them by aggregation `by` are emitted.
/// Keys whose aggregation is no number (a max of nothing) are not ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rank {
    /// The index in `ops` of the aggregation ranked by.
    pub by: usize,
    /// How many places: ties with the last place are all kept.
    pub top: usize,
}

/// Where a field of an aggregate's result row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowField {
    Key,
    WindowStart,
    WindowEnd,
    /// The aggregation at this index of `ops`.
    Op(usize),
}

/// A result row's fields in name order (an object's), each name once, worked out when
/// the spec is read. Why: a row built field by field in spec order had to be sorted, and
/// a closing window writes a row per key (tens of thousands at once).
pub(crate) type RowLayout = Vec<(CompactString, RowField)>;

/// The row of `fixed` fields, then one per aggregation, in name order. (Aggregations
/// cannot take a fixed field's name, and are named once each; were a name given twice,
/// the last would win, as in an object built from the fields in that order.)
fn row_layout(fixed: &[(&str, RowField)], ops: &[(String, AggOp)]) -> RowLayout {
    let fields: Vec<(CompactString, crate::value::Val)> = fixed
        .iter()
        .map(|(n, _)| CompactString::from(*n))
        .chain(ops.iter().map(|(n, _)| CompactString::from(n.as_str())))
        .enumerate()
        .map(|(i, n)| (n, crate::value::Val::from(i)))
        .collect();
    // The object's own ordering and last-wins rule, so a row is exactly the object it
    // was before; each field's value here is its position in `fixed` then `ops`.
    let sorted = crate::value::Obj::from_fields(fields);
    sorted
        .iter()
        .map(|(name, at)| {
            let at = at.as_u64().unwrap_or_default() as usize;
            let source = match fixed.get(at) {
                Some((_, f)) => *f,
                None => RowField::Op(at - fixed.len()),
            };
            (CompactString::from(name), source)
        })
        .collect()
}

/// One step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Keep records where the expression is true.
    Filter(Expr),
    /// Replace the value by these fields.
    Map(MapFields),
    /// One value to many: the array an expression gives, one record per element.
    FlatMap(Expr),
    /// Re-key a stream.
    KeyBy(Expr),
    /// Re-group a table (its rows move between groups: subtract, then add).
    GroupBy(Expr),
    /// Aggregate per key.
    Aggregate(Aggregate),
}

/// A map step's output fields, kept in name order (an object's), so a mapped record's
/// fields need no sorting.
#[derive(Debug, Clone, PartialEq)]
pub struct MapFields {
    names: Vec<FieldName>,
    exprs: Vec<Expr>,
    /// Per field: whether it is the input's field of the same name (`price: price`),
    /// which a map leaves where it is rather than copying it.
    kept: Vec<bool>,
}

impl MapFields {
    /// The map of `fields` (names distinct), in any order.
    pub fn new(mut fields: Vec<(CompactString, Expr)>) -> MapFields {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let kept = fields.iter().map(|(f, e)| e.is_value_field(f)).collect();
        let (names, exprs) = fields
            .into_iter()
            .map(|(f, e)| (FieldName::new(f.as_str()), e))
            .unzip();
        MapFields { names, exprs, kept }
    }

    /// The output fields' names, in name order.
    pub fn names(&self) -> &[FieldName] {
        &self.names
    }

    /// The expressions of the fields a map computes (those not
    /// [kept](MapFields::kept)), in name order.
    pub fn computed(&self) -> impl Iterator<Item = &Expr> {
        self.exprs
            .iter()
            .zip(&self.kept)
            .filter(|(_, kept)| !**kept)
            .map(|(e, _)| e)
    }

    /// Per field, in name order: whether it is the input's field of the same name.
    pub fn kept(&self) -> &[bool] {
        &self.kept
    }
}

/// Join kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Stream records look the table up.
    StreamTable,
    /// Both sides are tables.
    TableTable,
    /// Both sides are streams, matched within a time window.
    StreamStream,
}

/// The window of a stream-stream join: a left record at `t` matches right records in
/// `[t − before, t + after]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindow {
    /// How far a matching right record may be earlier, ms.
    pub before: i64,
    /// How far it may be later, ms.
    pub after: i64,
    /// How long past the window records are still accepted (and unmatched results wait).
    pub grace: i64,
}

/// Join types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinType {
    /// Both sides.
    Inner,
    /// The left side.
    Left,
    /// Either side (tables only).
    Outer,
}

/// `join:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    /// Left source.
    pub left: String,
    /// Right source.
    pub right: String,
    /// Kind.
    pub kind: JoinKind,
    /// Type.
    pub join_type: JoinType,
    /// Stream-stream joins: the window.
    pub window: Option<JoinWindow>,
}

/// A whole pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSpec {
    /// Name.
    pub name: String,
    /// Inputs.
    pub sources: Vec<Source>,
    /// The join of two sources, if any; steps apply after it.
    pub join: Option<Join>,
    /// Steps, in order.
    pub steps: Vec<Step>,
    /// Send late records to the output as `{"late": record}`.
    pub late_output: bool,
}

pub(crate) fn map_of<'a>(v: &'a Yaml, path: &str) -> Result<&'a serde_norway::Mapping, SpecError> {
    v.as_mapping()
        .ok_or_else(|| err(path, "expected a mapping"))
}

pub(crate) fn str_of(v: &Yaml, path: &str) -> Result<String, SpecError> {
    match v {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Bool(b) => Ok(b.to_string()),
        _ => Err(err(path, "expected text")),
    }
}

pub(crate) fn int_of(v: &Yaml, path: &str) -> Result<i64, SpecError> {
    v.as_i64()
        .ok_or_else(|| err(path, "expected a whole number of milliseconds"))
}

pub(crate) fn positive(v: &Yaml, path: &str) -> Result<i64, SpecError> {
    let n = int_of(v, path)?;
    if n <= 0 {
        return Err(err(path, "must be more than 0"));
    }
    Ok(n)
}

fn expr_of(v: &Yaml, path: &str) -> Result<Expr, SpecError> {
    let text = str_of(v, path)?;
    Expr::parse(&text).map_err(|e| err(path, format!("{e} in {text:?}")))
}

pub(crate) fn known(m: &serde_norway::Mapping, path: &str, keys: &[&str]) -> Result<(), SpecError> {
    for k in m.keys() {
        let name = k.as_str().unwrap_or_default();
        if !keys.contains(&name) {
            let at = if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            };
            return Err(err(at, format!("unknown key; use {}", keys.join(", "))));
        }
    }
    Ok(())
}

impl PipelineSpec {
    /// Parses and validates a spec.
    ///
    /// # Errors
    /// The first problem, with the path of the field.
    pub fn from_yaml(text: &str) -> Result<PipelineSpec, SpecError> {
        let doc: Yaml =
            serde_norway::from_str(text).map_err(|e| err("(document)", e.to_string()))?;
        let root = map_of(&doc, "(document)")?;
        known(
            root,
            "",
            &["name", "sources", "steps", "join", "late_output", "run"],
        )?;
        let name = match root.get("name") {
            Some(v) => str_of(v, "name")?,
            None => return Err(err("name", "a pipeline needs a name")),
        };
        let sources = match root.get("sources") {
            Some(Yaml::Sequence(list)) if !list.is_empty() => list
                .iter()
                .enumerate()
                .map(|(i, s)| source(s, &format!("sources[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(err("sources", "list at least one source")),
        };
        for (i, s) in sources.iter().enumerate() {
            if sources[..i].iter().any(|o| o.name == s.name) {
                return Err(err(format!("sources[{i}].name"), "names must be unique"));
            }
        }
        let join = root.get("join").map(|j| join(j, &sources)).transpose()?;
        if join.is_none() && sources.len() > 1 {
            return Err(err("join", "two sources need a join"));
        }
        let steps = match root.get("steps") {
            None => Vec::new(),
            Some(Yaml::Sequence(list)) => list
                .iter()
                .enumerate()
                .map(|(i, s)| step(s, &format!("steps[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(err("steps", "expected a list")),
        };
        let late_output = match root.get("late_output") {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| err("late_output", "expected true or false"))?,
        };
        let spec = PipelineSpec {
            name,
            sources,
            join,
            steps,
            late_output,
        };
        spec.check_flow()?;
        Ok(spec)
    }

    /// Whether a windowed aggregation runs on processing time.
    pub fn processing_time(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, Step::Aggregate(a) if a.processing_time))
    }

    /// Whether records are a table at the input of step `i` (after the join).
    fn check_flow(&self) -> Result<(), SpecError> {
        let mut table = match &self.join {
            Some(j) => j.kind == JoinKind::TableTable,
            None => self.sources[0].kind == SourceKind::Table,
        };
        let mut aggregated = false;
        for (i, s) in self.steps.iter().enumerate() {
            let at = format!("steps[{i}]");
            if aggregated {
                return Err(err(at, "nothing may follow an aggregate yet"));
            }
            match s {
                Step::KeyBy(_) if table => {
                    return Err(err(
                        format!("{at}.key_by"),
                        "a table is regrouped with group_by",
                    ));
                }
                Step::GroupBy(_) if !table => {
                    return Err(err(
                        format!("{at}.group_by"),
                        "a stream is re-keyed with key_by",
                    ));
                }
                Step::FlatMap(_) if table => {
                    return Err(err(format!("{at}.flat_map"), "flat_map applies to streams"));
                }
                Step::Aggregate(a) => {
                    if table && a.window.is_some() {
                        return Err(err(
                            format!("{at}.aggregate.window"),
                            "tables are not windowed",
                        ));
                    }
                    if table
                        && let Some((name, _)) = a.ops.iter().find(|(_, op)| {
                            matches!(op, AggOp::Min(_) | AggOp::Max(_) | AggOp::Top { .. })
                        })
                    {
                        return Err(err(
                            format!("{at}.aggregate.ops.{name}"),
                            "min, max and top cannot subtract a changed row; use them on streams",
                        ));
                    }
                    aggregated = true;
                    table = true;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn source(v: &Yaml, path: &str) -> Result<Source, SpecError> {
    let m = map_of(v, path)?;
    known(
        m,
        path,
        &[
            "name",
            "kind",
            "timestamp",
            "max_out_of_orderness_ms",
            "idle_timeout_ms",
        ],
    )?;
    let name = m
        .get("name")
        .map(|n| str_of(n, &format!("{path}.name")))
        .transpose()?
        .unwrap_or_else(|| "in".to_owned());
    let kind = match m
        .get("kind")
        .map(|k| str_of(k, &format!("{path}.kind")))
        .transpose()?
    {
        None => SourceKind::Stream,
        Some(k) if k == "stream" => SourceKind::Stream,
        Some(k) if k == "table" => SourceKind::Table,
        Some(k) => {
            return Err(err(
                format!("{path}.kind"),
                format!("{k:?}: use stream or table"),
            ));
        }
    };
    let timestamp = m
        .get("timestamp")
        .map(|t| str_of(t, &format!("{path}.timestamp")))
        .transpose()?
        .unwrap_or_else(|| "ts".to_owned());
    let max_out_of_orderness_ms = match m.get("max_out_of_orderness_ms") {
        None => 0,
        Some(v) => {
            let n = int_of(v, &format!("{path}.max_out_of_orderness_ms"))?;
            if n < 0 {
                return Err(err(
                    format!("{path}.max_out_of_orderness_ms"),
                    "must be 0 or more",
                ));
            }
            n
        }
    };
    let idle_timeout_ms = m
        .get("idle_timeout_ms")
        .map(|v| positive(v, &format!("{path}.idle_timeout_ms")))
        .transpose()?;
    Ok(Source {
        name,
        kind,
        timestamp,
        max_out_of_orderness_ms,
        idle_timeout_ms,
    })
}

fn join(v: &Yaml, sources: &[Source]) -> Result<Join, SpecError> {
    let m = map_of(v, "join")?;
    known(
        m,
        "join",
        &[
            "left",
            "right",
            "kind",
            "type",
            "within_ms",
            "before_ms",
            "after_ms",
            "grace_ms",
        ],
    )?;
    let side = |k: &str| -> Result<String, SpecError> {
        let name = m
            .get(k)
            .map(|s| str_of(s, &format!("join.{k}")))
            .transpose()?
            .ok_or_else(|| err(format!("join.{k}"), "name a source"))?;
        if !sources.iter().any(|s| s.name == name) {
            return Err(err(
                format!("join.{k}"),
                format!("no source named {name:?}"),
            ));
        }
        Ok(name)
    };
    let (left, right) = (side("left")?, side("right")?);
    if sources.len() != 2 || left == right {
        return Err(err("join", "a join takes exactly two different sources"));
    }
    let kind_of = |n: &str| sources.iter().find(|s| s.name == n).map(|s| s.kind);
    let kind = match (kind_of(&left), kind_of(&right)) {
        (Some(SourceKind::Stream), Some(SourceKind::Table)) => JoinKind::StreamTable,
        (Some(SourceKind::Table), Some(SourceKind::Table)) => JoinKind::TableTable,
        (Some(SourceKind::Stream), Some(SourceKind::Stream)) => JoinKind::StreamStream,
        _ => {
            return Err(err(
                "join",
                "supported: stream-table (left a stream, right a table), table-table and stream-stream",
            ));
        }
    };
    let bound = |k: &str| -> Result<Option<i64>, SpecError> {
        m.get(k)
            .map(|v| {
                let n = int_of(v, &format!("join.{k}"))?;
                if n < 0 {
                    return Err(err(format!("join.{k}"), "must be 0 or more"));
                }
                Ok(n)
            })
            .transpose()
    };
    let (within, before, after, grace) = (
        bound("within_ms")?,
        bound("before_ms")?,
        bound("after_ms")?,
        bound("grace_ms")?,
    );
    let window = if kind == JoinKind::StreamStream {
        let (before, after) = match (within, before, after) {
            (Some(w), None, None) => (w, w),
            (None, Some(b), Some(a)) => (b, a),
            (Some(_), _, _) => {
                return Err(err(
                    "join.within_ms",
                    "give within_ms, or before_ms and after_ms",
                ));
            }
            _ => {
                return Err(err(
                    "join.within_ms",
                    "a stream-stream join needs a window: within_ms, or before_ms and after_ms",
                ));
            }
        };
        Some(JoinWindow {
            before,
            after,
            grace: grace.unwrap_or(0),
        })
    } else {
        if let Some(k) = ["within_ms", "before_ms", "after_ms", "grace_ms"]
            .into_iter()
            .find(|k| m.get(*k).is_some())
        {
            return Err(err(
                format!("join.{k}"),
                "only stream-stream joins have a window",
            ));
        }
        None
    };
    if let Some(k) = m.get("kind") {
        let want = str_of(k, "join.kind")?;
        let have = match kind {
            JoinKind::StreamTable => "stream_table",
            JoinKind::TableTable => "table_table",
            JoinKind::StreamStream => "stream_stream",
        };
        if want != have {
            return Err(err(
                "join.kind",
                format!("the sources make this a {have} join"),
            ));
        }
    }
    let join_type = match m
        .get("type")
        .map(|t| str_of(t, "join.type"))
        .transpose()?
        .as_deref()
    {
        None | Some("inner") => JoinType::Inner,
        Some("left") => JoinType::Left,
        Some("outer") if kind != JoinKind::StreamTable => JoinType::Outer,
        Some(t) => {
            return Err(err(
                "join.type",
                format!("{t:?}: use inner, left or (not stream-table) outer"),
            ));
        }
    };
    Ok(Join {
        left,
        right,
        kind,
        join_type,
        window,
    })
}

fn step(v: &Yaml, path: &str) -> Result<Step, SpecError> {
    let m = map_of(v, path)?;
    if m.len() != 1 {
        return Err(err(
            path,
            "a step is one of filter, map, flat_map, key_by, group_by, aggregate",
        ));
    }
    let (k, body) = m.iter().next().expect("one entry");
    let name = k.as_str().unwrap_or_default();
    let at = format!("{path}.{name}");
    Ok(match name {
        "filter" => Step::Filter(expr_of(body, &at)?),
        "key_by" => Step::KeyBy(expr_of(body, &at)?),
        "group_by" => Step::GroupBy(expr_of(body, &at)?),
        "flat_map" => Step::FlatMap(expr_of(body, &at)?),
        "map" => {
            let fields = map_of(body, &at)?;
            if fields.is_empty() {
                return Err(err(at, "name at least one output field"));
            }
            let fields = fields
                .iter()
                .map(|(f, e)| {
                    let f = str_of(f, &at)?;
                    Ok((f.as_str().into(), expr_of(e, &format!("{at}.{f}"))?))
                })
                .collect::<Result<Vec<(CompactString, Expr)>, SpecError>>()?;
            Step::Map(MapFields::new(fields))
        }
        "aggregate" => Step::Aggregate(aggregate(body, &at)?),
        other => {
            return Err(err(
                at,
                format!(
                    "unknown step {other:?}; use filter, map, flat_map, key_by, group_by or aggregate"
                ),
            ));
        }
    })
}

fn aggregate(v: &Yaml, path: &str) -> Result<Aggregate, SpecError> {
    let m = map_of(v, path)?;
    known(
        m,
        path,
        &[
            "window",
            "emit",
            "allowed_lateness_ms",
            "ops",
            "time",
            "rank",
        ],
    )?;
    let processing_time = match m
        .get("time")
        .map(|t| str_of(t, &format!("{path}.time")))
        .transpose()?
        .as_deref()
    {
        None | Some("event") => false,
        Some("processing") if m.get("window").is_some() => true,
        Some("processing") => {
            return Err(err(
                format!("{path}.time"),
                "processing time applies to windows",
            ));
        }
        Some(t) => {
            return Err(err(
                format!("{path}.time"),
                format!("{t:?}: use event or processing"),
            ));
        }
    };
    let window = m
        .get("window")
        .map(|w| window(w, &format!("{path}.window")))
        .transpose()?;
    let emit = match m
        .get("emit")
        .map(|e| str_of(e, &format!("{path}.emit")))
        .transpose()?
        .as_deref()
    {
        None if window.is_some() => Emit::OnClose,
        None | Some("on_update") => Emit::OnUpdate,
        Some("on_close") if window.is_some() => Emit::OnClose,
        Some("on_close") => {
            return Err(err(
                format!("{path}.emit"),
                "on_close needs a window (a table never closes)",
            ));
        }
        Some(e) => {
            return Err(err(
                format!("{path}.emit"),
                format!("{e:?}: use on_close or on_update"),
            ));
        }
    };
    let allowed_lateness_ms = match m.get("allowed_lateness_ms") {
        None => 0,
        Some(v) => {
            let n = int_of(v, &format!("{path}.allowed_lateness_ms"))?;
            if n < 0 {
                return Err(err(
                    format!("{path}.allowed_lateness_ms"),
                    "must be 0 or more",
                ));
            }
            n
        }
    };
    let ops_path = format!("{path}.ops");
    let ops = map_of(
        m.get("ops")
            .ok_or_else(|| err(&ops_path, "name at least one aggregation"))?,
        &ops_path,
    )?;
    if ops.is_empty() {
        return Err(err(ops_path, "name at least one aggregation"));
    }
    let ops = ops
        .iter()
        .map(|(name, op)| {
            let name = str_of(name, &ops_path)?;
            let at = format!("{ops_path}.{name}");
            if ["key", "window_start", "window_end", "retract", "late"].contains(&name.as_str()) {
                return Err(err(&at, "this output name is reserved"));
            }
            let op = match op {
                Yaml::String(s) if s == "count" => AggOp::Count,
                Yaml::Mapping(om) if om.len() == 1 && om.get("top").is_some() => {
                    let tat = format!("{at}.top");
                    let body = om.get("top").expect("top");
                    let tm = map_of(body, &tat)?;
                    known(tm, &tat, &["n", "by", "ties"])?;
                    let n = positive(
                        tm.get("n")
                            .ok_or_else(|| err(format!("{tat}.n"), "required"))?,
                        &format!("{tat}.n"),
                    )?;
                    if n > 1000 {
                        return Err(err(format!("{tat}.n"), "must be at most 1000"));
                    }
                    let by = expr_of(
                        tm.get("by")
                            .ok_or_else(|| err(format!("{tat}.by"), "required"))?,
                        &format!("{tat}.by"),
                    )?;
                    let ties = match tm.get("ties") {
                        None => false,
                        Some(t) => t
                            .as_bool()
                            .ok_or_else(|| err(format!("{tat}.ties"), "expected true or false"))?,
                    };
                    AggOp::Top {
                        n: n as usize,
                        by,
                        ties,
                    }
                }
                Yaml::Mapping(om) if om.len() == 1 => {
                    let (k, e) = om.iter().next().expect("one");
                    let kind = k.as_str().unwrap_or_default();
                    let e = expr_of(e, &format!("{at}.{kind}"))?;
                    match kind {
                        "sum" => AggOp::Sum(e),
                        "min" => AggOp::Min(e),
                        "max" => AggOp::Max(e),
                        "avg" => AggOp::Avg(e),
                        _ => {
                            return Err(err(
                                format!("{at}.{kind}"),
                                "use count, sum, min, max, avg or top",
                            ));
                        }
                    }
                }
                _ => {
                    return Err(err(
                        at,
                        "use count, {sum|min|max|avg: expression} or {top: {n, by}}",
                    ));
                }
            };
            Ok((name, op))
        })
        .collect::<Result<Vec<_>, SpecError>>()?;
    let rank = m
        .get("rank")
        .map(|r| {
            rank(
                r,
                &format!("{path}.rank"),
                &ops,
                (window, emit, allowed_lateness_ms),
            )
        })
        .transpose()?;
    Ok(Aggregate {
        window,
        emit,
        allowed_lateness_ms,
        processing_time,
        rank,
        window_row: row_layout(
            &[
                ("key", RowField::Key),
                ("window_start", RowField::WindowStart),
                ("window_end", RowField::WindowEnd),
            ],
            &ops,
        ),
        group_row: row_layout(&[("key", RowField::Key)], &ops),
        ops,
    })
}

/// `rank: {by: OP, top: N}`: only where a window's ranking is final when it closes.
fn rank(
    v: &Yaml,
    path: &str,
    ops: &[(String, AggOp)],
    (window, emit, lateness): (Option<Window>, Emit, i64),
) -> Result<Rank, SpecError> {
    let m = map_of(v, path)?;
    known(m, path, &["by", "top"])?;
    match window {
        Some(Window::Tumbling { .. } | Window::Hopping { .. }) => {}
        Some(Window::Session { .. }) => {
            return Err(err(
                path,
                "sessions are windows of one key each: rank needs a tumbling or hopping window",
            ));
        }
        None => return Err(err(path, "rank orders the keys of a window: add a window")),
    }
    if emit != Emit::OnClose {
        return Err(err(
            path,
            "a window's ranking is known when it closes: use emit: on_close",
        ));
    }
    if lateness != 0 {
        return Err(err(
            path,
            "a late record would change a ranking already emitted: set allowed_lateness_ms to 0",
        ));
    }
    let by_path = format!("{path}.by");
    let by = str_of(
        m.get("by").ok_or_else(|| err(&by_path, "required"))?,
        &by_path,
    )?;
    let Some(at) = ops.iter().position(|(n, _)| *n == by) else {
        return Err(err(by_path, format!("{by:?} is not an aggregation in ops")));
    };
    if matches!(ops[at].1, AggOp::Top { .. }) {
        return Err(err(by_path, "a top-N is a list: rank by a number"));
    }
    let top_path = format!("{path}.top");
    let top = positive(
        m.get("top").ok_or_else(|| err(&top_path, "required"))?,
        &top_path,
    )?;
    if top > 1000 {
        return Err(err(top_path, "must be at most 1000"));
    }
    Ok(Rank {
        by: at,
        top: top as usize,
    })
}

fn window(v: &Yaml, path: &str) -> Result<Window, SpecError> {
    let m = map_of(v, path)?;
    if m.len() != 1 {
        return Err(err(path, "one of tumbling, hopping, session"));
    }
    let (k, body) = m.iter().next().expect("one");
    let kind = k.as_str().unwrap_or_default();
    let at = format!("{path}.{kind}");
    match kind {
        "tumbling" => Ok(Window::Tumbling {
            size: positive(body, &at)?,
        }),
        "session" => {
            let gap = match body {
                Yaml::Mapping(b) => {
                    known(b, &at, &["gap"])?;
                    positive(
                        b.get("gap")
                            .ok_or_else(|| err(format!("{at}.gap"), "required"))?,
                        &format!("{at}.gap"),
                    )?
                }
                other => positive(other, &at)?,
            };
            Ok(Window::Session { gap })
        }
        "hopping" => {
            let b = map_of(body, &at)?;
            known(b, &at, &["size", "advance"])?;
            let size = positive(
                b.get("size")
                    .ok_or_else(|| err(format!("{at}.size"), "required"))?,
                &format!("{at}.size"),
            )?;
            let advance = positive(
                b.get("advance")
                    .ok_or_else(|| err(format!("{at}.advance"), "required"))?,
                &format!("{at}.advance"),
            )?;
            if advance > size {
                return Err(err(
                    format!("{at}.advance"),
                    "must be at most size (records would fall between windows)",
                ));
            }
            Ok(Window::Hopping { size, advance })
        }
        other => Err(err(
            at,
            format!("{other:?}: use tumbling, hopping or session"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows are built in this order with no sort, so it must be the object's: by name.
    #[test]
    fn result_rows_are_laid_out_in_name_order() {
        let spec = PipelineSpec::from_yaml(
            "name: p\nsources: [{name: s}]\nsteps:\n  - key_by: a\n  - aggregate: {window: {tumbling: 10}, ops: {zeta: count, window_count: count, bids: count}}\n",
        )
        .expect("spec");
        let Some(Step::Aggregate(a)) = spec.steps.last() else {
            panic!("no aggregate: {:?}", spec.steps);
        };
        let layout = |row: &RowLayout| {
            row.iter()
                .map(|(n, f)| (n.to_string(), *f))
                .collect::<Vec<_>>()
        };
        let field = |n: &str, f| (n.to_owned(), f);
        assert_eq!(
            layout(&a.window_row),
            [
                field("bids", RowField::Op(2)),
                field("key", RowField::Key),
                field("window_count", RowField::Op(1)),
                field("window_end", RowField::WindowEnd),
                field("window_start", RowField::WindowStart),
                field("zeta", RowField::Op(0)),
            ]
        );
        assert_eq!(
            layout(&a.group_row),
            [
                field("bids", RowField::Op(2)),
                field("key", RowField::Key),
                field("window_count", RowField::Op(1)),
                field("zeta", RowField::Op(0)),
            ]
        );
    }

    #[test]
    fn errors_point_at_the_offending_field() {
        let base = "name: p\nsources: [{name: s}]\nsteps:\n";
        let cases = [
            ("  - filter: 'amount >'\n", "steps[0].filter"),
            (
                "  - aggregate: {window: {hopping: {size: 10, advance: 20}}, ops: {n: count}}\n",
                "steps[0].aggregate.window.hopping.advance",
            ),
            (
                "  - aggregate: {ops: {n: {median: x}}}\n",
                "steps[0].aggregate.ops.n.median",
            ),
            (
                "  - aggregate: {emit: on_close, ops: {n: count}}\n",
                "steps[0].aggregate.emit",
            ),
            ("  - key_by: user\n  - explode: x\n", "steps[1].explode"),
            ("  - group_by: region\n", "steps[0].group_by"),
            (
                "  - aggregate: {window: {tumbling: 0}, ops: {n: count}}\n",
                "steps[0].aggregate.window.tumbling",
            ),
        ];
        for (steps, path) in cases {
            let e = PipelineSpec::from_yaml(&format!("{base}{steps}")).expect_err(steps);
            assert_eq!(e.path, path, "{e}");
        }
        let win = "window: {tumbling: 10}, ops: {n: count, t: {top: {n: 2, by: x}}}";
        let ranks = [
            (
                format!("{{{win}, rank: {{by: m, top: 1}}}}"),
                "rank.by",
                "not an",
            ),
            (
                format!("{{{win}, rank: {{by: t, top: 1}}}}"),
                "rank.by",
                "a list",
            ),
            (
                format!("{{{win}, rank: {{by: n, top: 0}}}}"),
                "rank.top",
                "",
            ),
            (
                format!("{{{win}, rank: {{by: n}}}}"),
                "rank.top",
                "required",
            ),
            (
                format!("{{{win}, emit: on_update, rank: {{by: n, top: 1}}}}"),
                "rank",
                "on_close",
            ),
            (
                format!("{{{win}, allowed_lateness_ms: 5, rank: {{by: n, top: 1}}}}"),
                "rank",
                "late record",
            ),
            (
                "{window: {session: 5}, ops: {n: count}, rank: {by: n, top: 1}}".into(),
                "rank",
                "tumbling or hopping",
            ),
            (
                "{ops: {n: count}, rank: {by: n, top: 1}}".into(),
                "rank",
                "add a window",
            ),
        ];
        for (agg, field, says) in ranks {
            let text = format!("{base}  - key_by: k\n  - aggregate: {agg}\n");
            let e = PipelineSpec::from_yaml(&text).expect_err(&agg);
            assert_eq!(e.path, format!("steps[1].aggregate.{field}"), "{e}");
            assert!(e.message.contains(says), "{e}");
        }
        let ok =
            format!("{base}  - key_by: k\n  - aggregate: {{{win}, rank: {{by: n, top: 3}}}}\n");
        let spec = PipelineSpec::from_yaml(&ok).expect("a ranked window");
        assert!(matches!(
            &spec.steps[1],
            Step::Aggregate(a) if a.rank == Some(Rank { by: 0, top: 3 })
        ));
        let e = PipelineSpec::from_yaml("name: p\nsources: [{name: s, kind: river}]\n")
            .expect_err("kind");
        assert_eq!(e.path, "sources[0].kind");
        let e = PipelineSpec::from_yaml("sources: [{name: s}]\n").expect_err("name");
        assert_eq!(e.path, "name");
        let e =
            PipelineSpec::from_yaml("name: p\nsources: [{name: s}]\nstep: []\n").expect_err("typo");
        assert_eq!(e.path, "step");
    }
}
