//! Deterministic execution of a pipeline spec over an ordered input, in event time: what
//! `capstan pipeline run` does, and the reference the golden tests check. Results are a
//! pure function of the input and the spec (`stream-semantics.md`): no wall clock.
//!
//! The watermark of the windowing operator is the minimum over the stream sources of
//! `max_ts_seen − max_out_of_orderness` (tables carry no event-time progress). It is
//! read *before* a record is applied (lateness), and advanced after it (completion). At
//! the end of the input it becomes +∞, so every open window completes.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::expr::{Expr, Scope, truthy};
use crate::spec::{
    AggOp, Aggregate, Emit, JoinKind, JoinType, PipelineSpec, SourceKind, Step, Window,
};

/// A record between operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The key (`Null` when none was set).
    pub key: Value,
    /// For tables, `Null` is a delete.
    pub value: Value,
    /// Event time, ms.
    pub ts: i64,
}

type Rec = Record;

/// Counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Input lines read.
    pub records_in: u64,
    /// Output records written.
    pub records_out: u64,
    /// Late records no window would take.
    pub late_records_dropped: u64,
}

/// A bad input line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("input line {line}: {message}")]
pub struct InputError {
    /// 1-based.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn key_text(v: &Value) -> String {
    v.to_string()
}

fn scope<'a>(r: &'a Rec) -> Scope<'a> {
    Scope {
        key: &r.key,
        value: &r.value,
        ts: r.ts,
    }
}

/// One aggregation's running value; every kind merges (sessions) and counts and sums
/// also subtract (tables).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Acc {
    Count(i64),
    Sum(f64, bool),
    Min(Option<f64>),
    Max(Option<f64>),
    Avg(f64, i64),
    /// Highest score first, at most `n`.
    Top(Vec<(f64, Value)>),
}

impl Acc {
    fn new(op: &AggOp) -> Acc {
        match op {
            AggOp::Count => Acc::Count(0),
            AggOp::Sum(_) => Acc::Sum(0.0, true),
            AggOp::Min(_) => Acc::Min(None),
            AggOp::Max(_) => Acc::Max(None),
            AggOp::Avg(_) => Acc::Avg(0.0, 0),
            AggOp::Top { .. } => Acc::Top(Vec::new()),
        }
    }

    fn input(op: &AggOp, r: &Rec) -> Option<f64> {
        match op {
            AggOp::Count => Some(1.0),
            AggOp::Sum(e) | AggOp::Min(e) | AggOp::Max(e) | AggOp::Avg(e) => {
                e.eval(&scope(r)).as_f64()
            }
            AggOp::Top { by, .. } => by.eval(&scope(r)).as_f64(),
        }
    }

    /// Adds a record to a top-N (a record without a numeric score is skipped).
    fn offer(top: &mut Vec<(f64, Value)>, n: usize, score: f64, value: &Value) {
        // After every equal score: the earlier record ranks first.
        let at = top.partition_point(|(s, _)| *s >= score);
        if at < n {
            top.insert(at, (score, value.clone()));
            top.truncate(n);
        }
    }

    /// Adds (`sign` 1) or subtracts (`sign` -1) one input; a non-number is skipped.
    fn apply(&mut self, x: Option<f64>, sign: f64, integral: bool) {
        match (self, x) {
            (Acc::Count(n), _) => *n += sign as i64,
            (Acc::Sum(s, int), Some(x)) => {
                *s += sign * x;
                *int &= integral;
            }
            (Acc::Min(m), Some(x)) => *m = Some(m.map_or(x, |m| m.min(x))),
            (Acc::Max(m), Some(x)) => *m = Some(m.map_or(x, |m| m.max(x))),
            (Acc::Avg(s, n), Some(x)) => {
                *s += sign * x;
                *n += sign as i64;
            }
            _ => {}
        }
    }

    fn merge(&mut self, other: &Acc) {
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) => *a += b,
            (Acc::Sum(a, ia), Acc::Sum(b, ib)) => {
                *a += b;
                *ia &= ib;
            }
            (Acc::Min(a), Acc::Min(b)) => *a = a.zip(*b).map(|(x, y)| x.min(y)).or(*a).or(*b),
            (Acc::Max(a), Acc::Max(b)) => *a = a.zip(*b).map(|(x, y)| x.max(y)).or(*a).or(*b),
            (Acc::Avg(a, n), Acc::Avg(b, m)) => {
                *a += b;
                *n += m;
            }
            _ => {}
        }
    }

    fn value(&self) -> Value {
        let num = |f: f64, integral: bool| {
            if integral && f.fract() == 0.0 {
                json!(f as i64)
            } else {
                json!(f)
            }
        };
        match self {
            Acc::Count(n) => json!(n),
            Acc::Sum(s, int) => num(*s, *int),
            Acc::Min(m) | Acc::Max(m) => m.map_or(Value::Null, |m| num(m, true)),
            Acc::Avg(_, 0) => Value::Null,
            Acc::Avg(s, n) => json!(s / *n as f64),
            Acc::Top(top) => Value::Array(top.iter().map(|(_, v)| v.clone()).collect()),
        }
    }
}

fn integral(op: &AggOp, r: &Rec) -> bool {
    match op {
        AggOp::Sum(e) => e.eval(&scope(r)).is_i64(),
        _ => true,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Accs(Vec<Acc>);

impl Accs {
    fn new(a: &Aggregate) -> Accs {
        Accs(a.ops.iter().map(|(_, op)| Acc::new(op)).collect())
    }

    fn add(&mut self, a: &Aggregate, r: &Rec, sign: f64) {
        for (acc, (_, op)) in self.0.iter_mut().zip(&a.ops) {
            if let (Acc::Top(top), AggOp::Top { n, .. }) = (&mut *acc, op) {
                if let Some(score) = Acc::input(op, r) {
                    Acc::offer(top, *n, score, &r.value);
                }
                continue;
            }
            acc.apply(Acc::input(op, r), sign, integral(op, r));
        }
    }

    fn merge(&mut self, a: &Aggregate, other: &Accs) {
        for ((acc, b), (_, op)) in self.0.iter_mut().zip(&other.0).zip(&a.ops) {
            if let (Acc::Top(top), Acc::Top(more), AggOp::Top { n, .. }) = (&mut *acc, b, op) {
                // Sessions merge in start order, so `top` holds the earlier records.
                for (score, v) in more {
                    Acc::offer(top, *n, *score, v);
                }
                continue;
            }
            acc.merge(b);
        }
    }

    fn fields(&self, a: &Aggregate, out: &mut Map<String, Value>) {
        for (acc, (name, _)) in self.0.iter().zip(&a.ops) {
            out.insert(name.clone(), acc.value());
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Win {
    key: Value,
    accs: Accs,
    closed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    start: i64,
    last: i64,
    accs: Accs,
    /// The window last emitted for this session, if any.
    emitted: Option<(i64, i64)>,
    closed: bool,
}

/// A stream-stream join's buffered record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Buffered {
    left: bool,
    key: Value,
    ts: i64,
    value: Value,
    matched: bool,
}

/// Stream-stream join state: records by arrival number, looked up by side and key, and
/// expired in order of the end of their window.
#[derive(Default)]
struct StreamJoin {
    next: u64,
    entries: BTreeMap<u64, Buffered>,
    by_key: [HashMap<String, Vec<u64>>; 2],
    expiry: BTreeMap<(i64, u64), ()>,
}

impl StreamJoin {
    /// The last watermark (minus grace) at which the record can still be matched.
    fn expires(w: &crate::spec::JoinWindow, b: &Buffered) -> i64 {
        b.ts.saturating_add(if b.left { w.after } else { w.before })
    }

    fn insert(&mut self, w: &crate::spec::JoinWindow, b: Buffered) {
        let seq = self.next;
        self.next += 1;
        self.by_key[usize::from(!b.left)]
            .entry(key_text(&b.key))
            .or_default()
            .push(seq);
        self.expiry.insert((Self::expires(w, &b), seq), ());
        self.entries.insert(seq, b);
    }
}

/// State of the one aggregate step.
#[derive(Default)]
struct AggState {
    /// Unwindowed streams and tables: per group.
    groups: HashMap<String, (Value, Accs)>,
    /// Tables: each row's group and the row, to subtract on change.
    rows: HashMap<String, (Value, Rec)>,
    /// Tumbling and hopping windows by (end, start), then key: windows are few and keys
    /// many, so the ordered map compares integers only (completion and expiry go by end)
    /// and a key is found by hash.
    windows: BTreeMap<(i64, i64), HashMap<String, Win>>,
    /// Sessions per key.
    sessions: BTreeMap<String, (Value, Vec<Session>)>,
    /// Every held session by (end, start, key): completion and expiry look at the due
    /// ones only, not at every key.
    session_ends: std::collections::BTreeSet<(i64, i64, String)>,
}

/// A pipeline being run, or the stateful part of one partition's task in the executor
/// (`crate::exec`): then it starts at the aggregate or the join (`from_step`) and its
/// watermark is given by its inputs ([`Runner::set_watermark`]) instead of computed from
/// the records it sees, since those come from many source partitions.
pub struct Runner {
    spec: PipelineSpec,
    /// Shared views of the spec for the per-record path (no clone per record).
    steps: std::sync::Arc<Vec<Step>>,
    join_spec: Option<std::sync::Arc<crate::spec::Join>>,
    windowed: Option<std::sync::Arc<Aggregate>>,
    /// The first step this runner applies (the ones before ran upstream).
    from_step: usize,
    /// Per stream source: the highest timestamp seen.
    max_ts: HashMap<String, i64>,
    /// Per source (spec order), the watermark its inputs gave; `None` when the watermark
    /// is computed from `max_ts` instead.
    given: Option<Vec<i64>>,
    /// Join state: the tables' rows by key, per side (`left`, `right`).
    tables: [HashMap<String, Value>; 2],
    /// Stream-stream join state.
    ss: StreamJoin,
    agg: AggState,
    out: Vec<Value>,
    metrics: Metrics,
    /// The watermark windows were last completed at.
    advanced_to: Option<i64>,
}

/// A runner's state, as a checkpoint stores it (maps with composite keys as lists).
#[derive(Serialize, Deserialize)]
struct Snapshot {
    from_step: usize,
    max_ts: Vec<(String, i64)>,
    given: Option<Vec<i64>>,
    tables: [Vec<(String, Value)>; 2],
    groups: Vec<(String, Value, Accs)>,
    rows: Vec<(String, Value, Rec)>,
    windows: Vec<((i64, i64, String), Win)>,
    sessions: Vec<(String, Value, Vec<Session>)>,
    #[serde(default)]
    buffered: Vec<Buffered>,
    metrics: Metrics,
    advanced_to: Option<i64>,
}

/// Where the executor splits a spec: the steps before this index are stateless and run in
/// the source tasks, before the exchange by key; the rest (the join, the aggregate) runs
/// in the partition's stateful task. `None`: the pipeline has no state and no exchange.
pub fn exchange_point(spec: &PipelineSpec) -> Option<usize> {
    if spec.join.is_some() || spec.sources[0].kind == SourceKind::Table {
        return Some(0);
    }
    spec.steps
        .iter()
        .position(|s| matches!(s, Step::Aggregate(_)))
}

impl Runner {
    /// A runner for `spec`.
    pub fn new(spec: PipelineSpec) -> Runner {
        Runner {
            steps: std::sync::Arc::new(spec.steps.clone()),
            join_spec: spec.join.clone().map(std::sync::Arc::new),
            windowed: windowed_aggregate(&spec).map(std::sync::Arc::new),
            spec,
            from_step: 0,
            max_ts: HashMap::new(),
            given: None,
            tables: [HashMap::new(), HashMap::new()],
            ss: StreamJoin::default(),
            agg: AggState::default(),
            out: Vec::new(),
            metrics: Metrics::default(),
            advanced_to: None,
        }
    }

    /// The stateful part of a partition: steps from `from_step`, with watermarks given by
    /// [`Runner::set_watermark`] (every source starts at `i64::MIN`).
    pub fn stage(spec: PipelineSpec, from_step: usize) -> Runner {
        let n = spec.sources.len();
        Runner {
            from_step,
            given: Some(vec![i64::MIN; n]),
            ..Runner::new(spec)
        }
    }

    /// The spec run.
    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    /// The watermark now: `i64::MIN` until every stream source has a record; it never
    /// moves back. Idle sources (replay: `idle_timeout_ms` of event time behind the
    /// highest timestamp seen) do not hold it back.
    pub fn watermark(&self) -> i64 {
        let clock = self.max_ts.values().copied().max().unwrap_or(i64::MIN);
        let computed = self
            .spec
            .sources
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == SourceKind::Stream)
            .filter_map(|(i, s)| match &self.given {
                Some(given) => Some(given[i]),
                None => {
                    let max = self.max_ts.get(&s.name).copied();
                    let idle = s
                        .idle_timeout_ms
                        .is_some_and(|t| max.is_some_and(|m| clock.saturating_sub(m) >= t));
                    (!idle).then(|| {
                        max.map_or(i64::MIN, |m| m.saturating_sub(s.max_out_of_orderness_ms))
                    })
                }
            })
            .min()
            .unwrap_or(i64::MIN);
        computed.max(self.advanced_to.unwrap_or(i64::MIN))
    }

    /// Moves source `source`'s watermark (in spec order) to `w` if that is later, and
    /// completes the windows it completes. Only for runners made by [`Runner::stage`].
    pub fn set_watermark(&mut self, source: usize, w: i64) {
        if let Some(given) = &mut self.given
            && let Some(g) = given.get_mut(source)
            && w > *g
        {
            *g = w;
            self.advance(self.watermark());
        }
    }

    fn emit(&mut self, v: Value) {
        self.metrics.records_out += 1;
        self.out.push(v);
    }

    /// Takes what was emitted so far.
    pub fn drain(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.out)
    }

    /// Moves what was emitted so far to the end of `out`.
    pub fn drain_into(&mut self, out: &mut Vec<Value>) {
        out.append(&mut self.out);
    }

    /// Counters so far.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Reads one input line (a JSON object) into its source's index and a record. Table
    /// rows without a timestamp take the latest stream time seen.
    ///
    /// # Errors
    /// A line that is not an object, names no or an unknown source, or lacks its
    /// timestamp.
    pub fn parse(&self, line_no: usize, line: Value) -> Result<(usize, Record), InputError> {
        parse_line(&self.spec, &self.max_ts, None, line_no, line)
    }

    /// Applies one input line (a JSON object).
    ///
    /// # Errors
    /// As [`Runner::parse`].
    pub fn push(&mut self, line_no: usize, line: Value) -> Result<(), InputError> {
        self.metrics.records_in += 1;
        let (source, rec) = self.parse(line_no, line)?;
        self.apply(source, rec);
        Ok(())
    }

    /// Applies one parsed record of source `source` (spec order).
    pub fn apply(&mut self, source: usize, rec: Record) {
        let kind = self.spec.sources[source].kind;
        let ts = rec.ts;
        // Lateness is judged against the watermark before this record.
        let w = self.watermark();
        let recs = match self.join_spec.clone() {
            Some(j) if self.from_step == 0 => {
                let left = self.spec.sources[source].name == j.left;
                Some(self.join(&j, left, rec, w))
            }
            _ => {
                self.note_ts(source, kind, ts);
                self.steps(rec, w);
                None
            }
        };
        if let Some(recs) = recs {
            self.note_ts(source, kind, ts);
            for r in recs {
                self.steps(r, w);
            }
        }
        self.advance(self.watermark());
    }

    fn note_ts(&mut self, source: usize, kind: SourceKind, ts: i64) {
        if kind != SourceKind::Stream {
            return;
        }
        let name = &self.spec.sources[source].name;
        match self.max_ts.get_mut(name.as_str()) {
            Some(m) => *m = (*m).max(ts),
            None => {
                self.max_ts.insert(name.clone(), ts);
            }
        }
    }

    /// Counts one record read by the executor's source task (`records_in` is the
    /// pipeline's input count, which the stateful stage sees only after the exchange).
    pub fn count_in(&mut self, n: u64) {
        self.metrics.records_in += n;
    }

    /// The end of the input: every window completes.
    pub fn finish(&mut self) {
        if let Some(given) = &mut self.given {
            given.iter_mut().for_each(|g| *g = i64::MAX);
        }
        self.advance(i64::MAX);
    }

    /// The runner's state, for a checkpoint.
    pub fn snapshot(&self) -> Value {
        let s = Snapshot {
            from_step: self.from_step,
            max_ts: self.max_ts.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            given: self.given.clone(),
            tables: [0, 1].map(|i| {
                self.tables[i]
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
            groups: self
                .agg
                .groups
                .iter()
                .map(|(k, (g, a))| (k.clone(), g.clone(), a.clone()))
                .collect(),
            rows: self
                .agg
                .rows
                .iter()
                .map(|(k, (g, r))| (k.clone(), g.clone(), r.clone()))
                .collect(),
            windows: self
                .agg
                .windows
                .iter()
                .flat_map(|((end, start), keys)| {
                    keys.iter().map(move |(k, w)| {
                        (
                            (*end, *start, k.clone()),
                            Win {
                                key: w.key.clone(),
                                accs: w.accs.clone(),
                                closed: w.closed,
                            },
                        )
                    })
                })
                .collect(),
            sessions: self
                .agg
                .sessions
                .iter()
                .map(|(k, (v, s))| (k.clone(), v.clone(), s.clone()))
                .collect(),
            buffered: self.ss.entries.values().cloned().collect(),
            metrics: self.metrics.clone(),
            advanced_to: self.advanced_to,
        };
        serde_json::to_value(s).unwrap_or(Value::Null)
    }

    /// A runner of `spec` in the state [`Runner::snapshot`] gave.
    ///
    /// # Errors
    /// A snapshot that is not one, or of another shape of pipeline.
    pub fn restore(spec: PipelineSpec, snapshot: Value) -> Result<Runner, String> {
        let s: Snapshot =
            serde_json::from_value(snapshot).map_err(|e| format!("not a runner snapshot: {e}"))?;
        if s.given
            .as_ref()
            .is_some_and(|g| g.len() != spec.sources.len())
            || s.from_step > spec.steps.len()
        {
            return Err("the snapshot is of a pipeline with other sources or steps".into());
        }
        let mut ss = StreamJoin::default();
        if let Some(w) = spec.join.as_ref().and_then(|j| j.window) {
            for b in s.buffered {
                ss.insert(&w, b);
            }
        }
        Ok(Runner {
            ss,
            from_step: s.from_step,
            max_ts: s.max_ts.into_iter().collect(),
            given: s.given,
            tables: s.tables.map(|t| t.into_iter().collect()),
            agg: AggState {
                groups: s.groups.into_iter().map(|(k, g, a)| (k, (g, a))).collect(),
                rows: s.rows.into_iter().map(|(k, g, r)| (k, (g, r))).collect(),
                windows: {
                    let mut m: BTreeMap<(i64, i64), HashMap<String, Win>> = BTreeMap::new();
                    for ((end, start, k), w) in s.windows {
                        m.entry((end, start)).or_default().insert(k, w);
                    }
                    m
                },
                session_ends: {
                    let gap = spec
                        .steps
                        .iter()
                        .find_map(|st| match st {
                            Step::Aggregate(a) => Some(window_gap(a)),
                            _ => None,
                        })
                        .unwrap_or(0);
                    s.sessions
                        .iter()
                        .flat_map(|(k, _, ss)| {
                            ss.iter().map(move |x| (x.last + gap, x.start, k.clone()))
                        })
                        .collect()
                },
                sessions: s
                    .sessions
                    .into_iter()
                    .map(|(k, v, ss)| (k, (v, ss)))
                    .collect(),
            },
            out: Vec::new(),
            metrics: s.metrics,
            advanced_to: s.advanced_to,
            steps: std::sync::Arc::new(spec.steps.clone()),
            join_spec: spec.join.clone().map(std::sync::Arc::new),
            windowed: windowed_aggregate(&spec).map(std::sync::Arc::new),
            spec,
        })
    }

    fn join(&mut self, j: &crate::spec::Join, left: bool, r: Rec, w: i64) -> Vec<Rec> {
        let k = key_text(&r.key);
        if r.key.is_null() {
            return Vec::new();
        }
        let joined = |l: Option<&Value>, rt: Option<&Value>| -> Option<Value> {
            let present = match j.join_type {
                JoinType::Inner => l.is_some() && rt.is_some(),
                JoinType::Left => l.is_some(),
                JoinType::Outer => l.is_some() || rt.is_some(),
            };
            present.then(|| json!({"left": l.cloned(), "right": rt.cloned()}))
        };
        match j.kind {
            JoinKind::StreamStream => self.stream_join(j, left, r, w),
            JoinKind::StreamTable if left => {
                let right = self.tables[1].get(&k);
                if right.is_none() && j.join_type == JoinType::Inner {
                    return Vec::new();
                }
                vec![Rec {
                    value: json!({"left": r.value, "right": right.cloned()}),
                    ..r
                }]
            }
            JoinKind::StreamTable => {
                // A table update never re-joins earlier stream records.
                if r.value.is_null() {
                    self.tables[1].remove(&k);
                } else {
                    self.tables[1].insert(k, r.value);
                }
                Vec::new()
            }
            JoinKind::TableTable => {
                let side = usize::from(!left);
                let before = joined(self.tables[0].get(&k), self.tables[1].get(&k));
                if r.value.is_null() {
                    self.tables[side].remove(&k);
                } else {
                    self.tables[side].insert(k.clone(), r.value.clone());
                }
                let after = joined(self.tables[0].get(&k), self.tables[1].get(&k));
                match (before, after) {
                    (_, Some(v)) => vec![Rec { value: v, ..r }],
                    (Some(_), None) => vec![Rec {
                        value: Value::Null,
                        ..r
                    }],
                    (None, None) => Vec::new(),
                }
            }
        }
    }

    /// A stream-stream join: `r` matches the other side's buffered records of its key
    /// within the window; it is buffered itself until the watermark passes its window
    /// plus grace (then, unmatched, it is emitted alone for left and outer joins).
    fn stream_join(&mut self, j: &crate::spec::Join, left: bool, r: Rec, w: i64) -> Vec<Rec> {
        let Some(win) = j.window else {
            return Vec::new();
        };
        if r.ts.saturating_add(win.grace) < w {
            self.late(&r);
            return Vec::new();
        }
        let (lo, hi) = if left {
            (
                r.ts.saturating_sub(win.before),
                r.ts.saturating_add(win.after),
            )
        } else {
            (
                r.ts.saturating_sub(win.after),
                r.ts.saturating_add(win.before),
            )
        };
        let k = key_text(&r.key);
        let other = usize::from(left);
        let mut out = Vec::new();
        let mut matched = false;
        if let Some(seqs) = self.ss.by_key[other].get(&k) {
            for seq in seqs {
                let Some(e) = self.ss.entries.get_mut(seq) else {
                    continue;
                };
                if e.ts < lo || e.ts > hi {
                    continue;
                }
                e.matched = true;
                matched = true;
                let (l, rt) = if left {
                    (&r.value, &e.value)
                } else {
                    (&e.value, &r.value)
                };
                out.push(Rec {
                    key: r.key.clone(),
                    value: json!({"left": l, "right": rt}),
                    ts: r.ts.max(e.ts),
                });
            }
        }
        self.ss.insert(
            &win,
            Buffered {
                left,
                key: r.key,
                ts: r.ts,
                value: r.value,
                matched,
            },
        );
        out
    }

    /// Frees stream-join records no later record can match (`W − grace` past their
    /// window), emitting the unmatched ones the join type keeps, in window-end order.
    fn expire_join(&mut self, w: i64) {
        let Some(j) = self.join_spec.clone() else {
            return;
        };
        let Some(win) = j.window else {
            return;
        };
        let limit = w.saturating_sub(win.grace);
        while let Some(entry) = self.ss.expiry.first_entry() {
            let (end, seq) = *entry.key();
            if end >= limit {
                break;
            }
            entry.remove();
            let Some(b) = self.ss.entries.remove(&seq) else {
                continue;
            };
            let side = usize::from(!b.left);
            let k = key_text(&b.key);
            if let Some(seqs) = self.ss.by_key[side].get_mut(&k) {
                seqs.retain(|s| *s != seq);
                if seqs.is_empty() {
                    self.ss.by_key[side].remove(&k);
                }
            }
            let keep = match j.join_type {
                JoinType::Inner => false,
                JoinType::Left => b.left,
                JoinType::Outer => true,
            };
            if !b.matched && keep {
                let value = if b.left {
                    json!({"left": b.value, "right": null})
                } else {
                    json!({"left": null, "right": b.value})
                };
                let rec = Rec {
                    key: b.key,
                    value,
                    ts: b.ts,
                };
                self.steps(rec, w);
            }
        }
    }

    fn is_table(&self) -> bool {
        match &self.spec.join {
            Some(j) => j.kind == JoinKind::TableTable,
            None => self.spec.sources[0].kind == SourceKind::Table,
        }
    }

    fn steps(&mut self, rec: Rec, w: i64) {
        let table = self.is_table();
        let steps = self.steps.clone();
        // The stateful stage of the executor: just the aggregate.
        if let [Step::Aggregate(a)] = &steps[self.from_step..] {
            if table {
                self.table_aggregate(a, None, rec);
            } else {
                self.stream_aggregate(a, rec, w);
            }
            return;
        }
        let mut recs = vec![rec];
        // For tables, `group_by` does not re-key the row here: the aggregate needs the
        // row's own key to subtract its previous contribution.
        let mut group: Option<Expr> = None;
        for step in &steps[self.from_step..] {
            let mut next = Vec::with_capacity(recs.len());
            for r in recs {
                match step {
                    Step::GroupBy(e) => {
                        group = Some(e.clone());
                        next.push(r);
                    }
                    Step::Aggregate(a) => {
                        if table {
                            self.table_aggregate(a, group.as_ref(), r);
                        } else {
                            self.stream_aggregate(a, r, w);
                        }
                    }
                    _ => stateless(step, r, table, &mut next),
                }
            }
            recs = next;
        }
        for r in recs {
            let v = output_row(r, table);
            self.emit(v);
        }
    }

    fn group_row(a: &Aggregate, key: &Value, accs: &Accs) -> Value {
        let mut m = Map::new();
        m.insert("key".into(), key.clone());
        accs.fields(a, &mut m);
        Value::Object(m)
    }

    fn table_aggregate(&mut self, a: &Aggregate, group: Option<&Expr>, r: Rec) {
        if r.key.is_null() {
            return; // a row without a key is no row
        }
        let k = key_text(&r.key);
        let new_group = if r.value.is_null() {
            Value::Null
        } else {
            match group {
                Some(e) => e.eval(&scope(&r)),
                None => r.key.clone(),
            }
        };
        // Subtract the row's old contribution from its old group, then add the new one
        // to its new group; each changed group emits its new state, once (a row that
        // stays in its group is one change).
        let old = self.agg.rows.remove(&k);
        let same = old.as_ref().is_some_and(|(g, _)| *g == new_group);
        if let Some((old_group, old)) = &old {
            let g = key_text(old_group);
            if let Some((gk, accs)) = self.agg.groups.get_mut(&g) {
                accs.add(a, old, -1.0);
                if !same {
                    let row = Self::group_row(a, gk, accs);
                    self.emit(row);
                }
            }
        }
        if new_group.is_null() {
            return;
        }
        let g = key_text(&new_group);
        let (gk, accs) = self
            .agg
            .groups
            .entry(g)
            .or_insert_with(|| (new_group.clone(), Accs::new(a)));
        accs.add(a, &r, 1.0);
        let row = Self::group_row(a, gk, accs);
        self.agg.rows.insert(k, (new_group, r));
        self.emit(row);
    }

    fn window_row(a: &Aggregate, key: &Value, start: i64, end: i64, accs: &Accs) -> Value {
        let mut m = Map::new();
        m.insert("key".into(), key.clone());
        m.insert("window_start".into(), json!(start));
        m.insert("window_end".into(), json!(end));
        accs.fields(a, &mut m);
        Value::Object(m)
    }

    fn late(&mut self, r: &Rec) {
        self.metrics.late_records_dropped += 1;
        if self.spec.late_output {
            let v = json!({"late": {"key": r.key, "ts": r.ts, "value": r.value}});
            self.emit(v);
        }
    }

    fn stream_aggregate(&mut self, a: &Aggregate, r: Rec, w: i64) {
        let late = r.ts < w;
        let l = a.allowed_lateness_ms;
        // A late record still updates a window that is not past its lateness.
        let open = |end: i64| !late || end.saturating_add(l) > w;
        match a.window {
            None => {
                let k = key_text(&r.key);
                let (gk, accs) = self
                    .agg
                    .groups
                    .entry(k)
                    .or_insert_with(|| (r.key.clone(), Accs::new(a)));
                accs.add(a, &r, 1.0);
                let row = Self::group_row(a, gk, accs);
                self.emit(row);
            }
            Some(Window::Tumbling { size }) => {
                let start = r.ts.div_euclid(size) * size;
                self.window_update(a, &r, &[(start, start + size)], w, &open);
            }
            Some(Window::Hopping { size, advance }) => {
                // Every [k·advance, k·advance+size), k ≥ 0, holding ts.
                let last = r.ts.div_euclid(advance);
                let windows: Vec<(i64, i64)> = (0..=last)
                    .rev()
                    .map(|k| (k * advance, k * advance + size))
                    .take_while(|(s, e)| *s <= r.ts && r.ts < *e)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                self.window_update(a, &r, &windows, w, &open);
            }
            Some(Window::Session { gap }) => self.session_update(a, r, gap, w, &open),
        }
    }

    fn window_update(
        &mut self,
        a: &Aggregate,
        r: &Rec,
        windows: &[(i64, i64)],
        w: i64,
        open: &dyn Fn(i64) -> bool,
    ) {
        let accepted: Vec<(i64, i64)> = windows.iter().copied().filter(|(_, e)| open(*e)).collect();
        if accepted.is_empty() {
            self.late(r);
            return;
        }
        let k = key_text(&r.key);
        for (start, end) in accepted {
            let keys = self.agg.windows.entry((end, start)).or_default();
            // Found by `&str`: a key's text is copied only when its window is new.
            if !keys.contains_key(k.as_str()) {
                keys.insert(
                    k.clone(),
                    Win {
                        key: r.key.clone(),
                        accs: Accs::new(a),
                        closed: false,
                    },
                );
            }
            let Some(win) = keys.get_mut(k.as_str()) else {
                continue;
            };
            win.accs.add(a, r, 1.0);
            // on_update: every change; on_close: a change to a window that already
            // completed (a late record within the lateness) is emitted at once.
            if a.emit == Emit::OnUpdate || win.closed || end <= w {
                win.closed |= end <= w;
                let row = Self::window_row(a, &win.key, start, end, &win.accs);
                self.emit(row);
            }
        }
    }

    fn session_update(
        &mut self,
        a: &Aggregate,
        r: Rec,
        gap: i64,
        w: i64,
        open: &dyn Fn(i64) -> bool,
    ) {
        let k = key_text(&r.key);
        let (key, sessions) = self
            .agg
            .sessions
            .entry(k)
            .or_insert_with(|| (r.key.clone(), Vec::new()));
        // Sessions that overlap or touch [ts, ts + gap) merge with the record.
        let (merging, rest): (Vec<Session>, Vec<Session>) = std::mem::take(sessions)
            .into_iter()
            .partition(|s| s.start <= r.ts + gap && r.ts <= s.last + gap);
        let mut merged = Session {
            start: r.ts,
            last: r.ts,
            accs: Accs::new(a),
            emitted: None,
            closed: false,
        };
        for s in &merging {
            merged.start = merged.start.min(s.start);
            merged.last = merged.last.max(s.last);
            merged.accs.merge(a, &s.accs);
        }
        let end = merged.last + gap;
        if !open(end) {
            *sessions = merging.into_iter().chain(rest).collect();
            sessions.sort_by_key(|s| s.start);
            self.late(&r);
            return;
        }
        merged.accs.add(a, &r, 1.0);
        let key = key.clone();
        let window = (merged.start, end);
        let mut retractions = Vec::new();
        for s in &merging {
            if let Some(old) = s.emitted
                && old != window
            {
                retractions.push(json!({"key": key, "window_start": old.0, "window_end": old.1, "retract": true}));
            }
        }
        // Complete only if its (possibly extended) end is behind the watermark: a merge
        // can reopen a completed session, whose old result was retracted above.
        merged.closed = end <= w;
        let emit_now = a.emit == Emit::OnUpdate || merged.closed;
        if emit_now {
            merged.emitted = Some(window);
        }
        let row = Self::window_row(a, &key, window.0, window.1, &merged.accs);
        let k = key_text(&key);
        for s in &merging {
            self.agg
                .session_ends
                .remove(&(s.last + gap, s.start, k.clone()));
        }
        self.agg.session_ends.insert((end, merged.start, k.clone()));
        let (_, sessions) = self.agg.sessions.get_mut(&k).expect("entry");
        *sessions = rest;
        sessions.push(merged);
        sessions.sort_by_key(|s| s.start);
        for v in retractions {
            self.emit(v);
        }
        if emit_now {
            self.emit(row);
        }
    }

    /// Completes windows with `end ≤ w` (on_close emits them), in (end, start, key)
    /// order, and frees those past their lateness.
    fn advance(&mut self, w: i64) {
        // Nothing completes or expires unless the watermark moved.
        if self.advanced_to == Some(w) {
            return;
        }
        self.advanced_to = Some(w);
        if self.from_step == 0 {
            self.expire_join(w);
        }
        let Some(a) = self.windowed.clone() else {
            return;
        };
        let l = a.allowed_lateness_ms;
        let mut closing: Vec<((i64, i64, String), Value)> = Vec::new();
        for ((end, start), keys) in self.agg.windows.range_mut(..=(w, i64::MAX)) {
            // In key order within a window, as (end, start, key) orders every result.
            let mut due: Vec<(&String, &mut Win)> =
                keys.iter_mut().filter(|(_, win)| !win.closed).collect();
            due.sort_unstable_by(|x, y| x.0.cmp(y.0));
            for (k, win) in due {
                win.closed = true;
                if a.emit == Emit::OnClose {
                    closing.push((
                        (*end, *start, k.clone()),
                        Self::window_row(&a, &win.key, *start, *end, &win.accs),
                    ));
                }
            }
        }
        // Sessions due: those whose end the watermark reached, from the index.
        let due: Vec<(i64, i64, String)> = self
            .agg
            .session_ends
            .range(..(w.saturating_add(1), i64::MIN, String::new()))
            .cloned()
            .collect();
        for (end, start, k) in due {
            let Some((key, sessions)) = self.agg.sessions.get_mut(&k) else {
                continue;
            };
            if let Some(s) = sessions.iter_mut().find(|s| s.start == start)
                && !s.closed
            {
                s.closed = true;
                if a.emit == Emit::OnClose {
                    s.emitted = Some((s.start, end));
                    closing.push((
                        (end, s.start, k.clone()),
                        Self::window_row(&a, key, s.start, end, &s.accs),
                    ));
                }
            }
            // Freed once no late record can reach it.
            if end.saturating_add(l) <= w {
                sessions.retain(|s| s.start != start);
                if sessions.is_empty() {
                    self.agg.sessions.remove(&k);
                }
                self.agg.session_ends.remove(&(end, start, k));
            }
        }
        closing.sort_by(|x, y| x.0.cmp(&y.0));
        for (_, v) in closing {
            self.emit(v);
        }
        // Free what no late record can reach any more: windows are ordered by end, so
        // only the oldest are looked at.
        while let Some(entry) = self.agg.windows.first_entry() {
            if entry.key().0.saturating_add(l) > w {
                break;
            }
            entry.remove();
        }
    }
}

/// A record as the pipeline's output writes it.
pub fn output_row(r: Record, table: bool) -> Value {
    if table {
        json!({"key": r.key, "value": r.value})
    } else {
        json!({"key": r.key, "ts": r.ts, "value": r.value})
    }
}

/// One stateless step (filter, map, flat_map, key_by) applied to `r`; results go to `out`.
fn stateless(step: &Step, r: Rec, table: bool, out: &mut Vec<Rec>) {
    match step {
        Step::Filter(e) => {
            // A table row that stops matching is a delete downstream.
            if truthy(&e.eval(&scope(&r))) {
                out.push(r);
            } else if table {
                out.push(Rec {
                    value: Value::Null,
                    ..r
                });
            }
        }
        Step::Map(fields) if !(table && r.value.is_null()) => {
            let s = scope(&r);
            let value = Value::Object(
                fields
                    .iter()
                    .map(|(f, e)| (f.clone(), e.eval(&s)))
                    .collect(),
            );
            out.push(Rec { value, ..r });
        }
        Step::FlatMap(e) => {
            if let Value::Array(items) = e.eval(&scope(&r)) {
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
        if self.steps.is_empty() {
            out.push(r);
            return;
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
fn parse_line(
    spec: &PipelineSpec,
    max_ts: &HashMap<String, i64>,
    source: Option<usize>,
    line_no: usize,
    line: Value,
) -> Result<(usize, Record), InputError> {
    let bad = |m: String| InputError {
        line: line_no,
        message: m,
    };
    let Value::Object(mut obj) = line else {
        return Err(bad("expected a JSON object".into()));
    };
    let named = obj.remove("source");
    let index = match named {
        _ if source.is_some() => source.unwrap_or(0),
        Some(Value::String(s)) => spec
            .sources
            .iter()
            .position(|x| x.name == s)
            .ok_or_else(|| bad(format!("no source named {s:?}")))?,
        None if spec.sources.len() == 1 => 0,
        _ => return Err(bad("name the source: {\"source\": NAME, ...}".into())),
    };
    let src = &spec.sources[index];
    let ts = match (src.kind, obj.get(&src.timestamp).and_then(Value::as_i64)) {
        (_, Some(ts)) => ts,
        (SourceKind::Table, None) => max_ts.values().copied().max().unwrap_or(0),
        (SourceKind::Stream, None) => {
            return Err(bad(format!(
                "no integer event time in field {:?}",
                src.timestamp
            )));
        }
    };
    let rec = match src.kind {
        SourceKind::Stream => Rec {
            key: obj.get("key").cloned().unwrap_or(Value::Null),
            value: Value::Object(obj),
            ts,
        },
        SourceKind::Table => Rec {
            key: obj.get("key").cloned().unwrap_or(Value::Null),
            value: obj.get("value").cloned().unwrap_or(Value::Null),
            ts,
        },
    };
    Ok((index, rec))
}

/// Reads a record of spec source `source` (the executor's inputs: each reads one source,
/// so records need no `source` field).
///
/// # Errors
/// As [`Runner::parse`].
pub fn parse_record(
    spec: &PipelineSpec,
    source: usize,
    line: Value,
) -> Result<(usize, Record), InputError> {
    parse_line(spec, &HashMap::new(), Some(source), 0, line)
}

/// The spec's windowed aggregation, if any.
fn windowed_aggregate(spec: &PipelineSpec) -> Option<Aggregate> {
    spec.steps.iter().find_map(|s| match s {
        Step::Aggregate(a) if a.window.is_some() => Some(a.clone()),
        _ => None,
    })
}

fn window_gap(a: &Aggregate) -> i64 {
    match a.window {
        Some(Window::Session { gap }) => gap,
        _ => 0,
    }
}

/// Runs a spec over JSON-lines input text; returns the output records and counters.
///
/// # Errors
/// The first bad input line.
pub fn run_lines(spec: &PipelineSpec, input: &str) -> Result<(Vec<Value>, Metrics), InputError> {
    if spec.processing_time() {
        return Err(InputError {
            line: 1,
            message: "processing-time windows follow the wall clock, which a replay does not have; run the pipeline with `capstan pipeline start`".into(),
        });
    }
    let mut runner = Runner::new(spec.clone());
    for (i, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| InputError {
            line: i + 1,
            message: format!("not JSON: {e}"),
        })?;
        runner.push(i + 1, v)?;
    }
    runner.finish();
    let out = runner.drain();
    Ok((out, runner.metrics().clone()))
}
