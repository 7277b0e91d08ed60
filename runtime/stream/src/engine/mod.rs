//! Deterministic execution of a pipeline spec over an ordered input, in event time: what
//! `capstan pipeline run` does, and the reference the golden tests check. Results are a
//! pure function of the input and the spec (`stream-semantics.md`): no wall clock.
//!
//! The watermark of the windowing operator is the minimum over the stream sources of
//! `max_ts_seen − max_out_of_orderness` (tables carry no event-time progress). It is
//! read *before* a record is applied (lateness), and advanced after it (completion). At
//! the end of the input it becomes +∞, so every open window completes.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use serde::{Deserialize, Serialize};

mod acc;
mod joins;
mod key;
mod panes;
mod rank;
mod regroup;
mod snapshot;
mod stateless;

use acc::Accs;
use joins::StreamJoin;
use key::{KeyText, Spare, sorted_by_text};
use panes::Panes;
pub use rank::row_window;
use rank::{Ranked, Ranking};
pub use regroup::Regroup;
pub use stateless::{Prefix, output_row, parse_record};
use stateless::{parse_line, stateless};

use crate::expr::{Expr, Scope};
use crate::spec::{Aggregate, Emit, JoinKind, PipelineSpec, SourceKind, Step, Window};
use crate::value::{Obj, Val};

/// A record between operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The key (`Null` when none was set).
    pub key: Val,
    /// For tables, `Null` is a delete.
    pub value: Val,
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

/// A JSON object of these fields, taking their values as they are.
pub(crate) fn object<const N: usize>(fields: [(&str, Val); N]) -> Val {
    Val::Obj(Obj::from_fields(
        fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
    ))
}

fn scope<'a>(r: &'a Rec) -> Scope<'a> {
    Scope {
        key: &r.key,
        value: &r.value,
        ts: r.ts,
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Win {
    key: Val,
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

/// State of the one aggregate step.
#[derive(Default)]
struct AggState {
    /// Unwindowed streams and tables: per group.
    groups: HashMap<KeyText, (Val, Accs)>,
    /// Tables: each row's group and the row, to subtract on change.
    rows: HashMap<KeyText, (Val, Rec)>,
    /// Tumbling and hopping windows by (end, start), then key: windows are few and keys
    /// many, so the ordered map compares integers only (completion and expiry go by end)
    /// and a key is found by hash. Hopping windows that [`Panes`] can hold are not here.
    windows: BTreeMap<(i64, i64), HashMap<KeyText, Win>>,
    /// Sessions per key.
    sessions: BTreeMap<KeyText, (Val, Vec<Session>)>,
    /// Every held session by (end, start, key): completion and expiry look at the due
    /// ones only, not at every key.
    session_ends: std::collections::BTreeSet<(i64, i64, KeyText)>,
    /// Scratch for a record's key text: written per record, copied only into a new
    /// window (not part of the state).
    key_text: KeyText,
    /// The table of the window freed last, for the next new window.
    spare_window: Spare<Win>,
    /// Hopping windows closed on completion, as panes (then `windows` stays empty).
    panes: Panes,
    /// Rows of a ranked aggregate that other tasks ranked, to rank again here (see
    /// [`Runner::rank_row`]).
    ranked: Ranked,
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
    /// Per source (spec order): the highest timestamp seen, for stream sources. By index,
    /// not by name: every record updates it, and hashing the source's name twice per
    /// record (here and for the watermark) was 8 % of a windowed stage's instructions.
    max_ts: Vec<Option<i64>>,
    /// Per source (spec order), the watermark its inputs gave; `None` when the watermark
    /// is computed from `max_ts` instead.
    given: Option<Vec<i64>>,
    /// The least of `given` over stream sources (`i64::MIN` if none), kept with it: read
    /// for every record, and computing it each time was 50 instructions a record (2 % of
    /// a windowed stage, callgrind).
    given_min: i64,
    /// Join state: the tables' rows by key, per side (`left`, `right`).
    tables: [HashMap<KeyText, Val>; 2],
    /// Stream-stream join state.
    ss: StreamJoin,
    agg: AggState,
    out: Vec<Val>,
    /// Scratch for a map step's new values (see `stateless`): kept, so that a map
    /// allocates nothing per record.
    map_values: Vec<Val>,
    metrics: Metrics,
    /// The watermark windows were last completed at.
    advanced_to: Option<i64>,
    /// `Some` when this runner holds a regrouped table's rows, and the groups are held by
    /// other tasks (the executor, over several partitions): each row's change of group is
    /// handed out ([`Runner::regroups`]) instead of applied here. Not state: the
    /// executor sets it on every start.
    regroups: Option<Vec<Regroup>>,
    /// Whether a ranked window's rows go to another task to be ranked again there (see
    /// [`Runner::rank_row`]). Not state, as `regroups`.
    ranked_apart: bool,
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

/// The least watermark `given` for a stream source of `spec`; `i64::MIN` if it has none.
fn given_min(spec: &PipelineSpec, given: &[i64]) -> i64 {
    spec.sources
        .iter()
        .zip(given)
        .filter(|(s, _)| s.kind == SourceKind::Stream)
        .map(|(_, g)| *g)
        .min()
        .unwrap_or(i64::MIN)
}

impl Runner {
    /// A runner for `spec`.
    pub fn new(spec: PipelineSpec) -> Runner {
        let windowed = windowed_aggregate(&spec);
        let panes = Panes::for_aggregate(windowed.as_ref());
        let sources = spec.sources.len();
        Runner {
            steps: std::sync::Arc::new(spec.steps.clone()),
            join_spec: spec.join.clone().map(std::sync::Arc::new),
            windowed: windowed.map(std::sync::Arc::new),
            spec,
            from_step: 0,
            max_ts: vec![None; sources],
            given: None,
            given_min: i64::MIN,
            tables: [HashMap::new(), HashMap::new()],
            ss: StreamJoin::default(),
            agg: AggState {
                panes,
                ..AggState::default()
            },
            out: Vec::new(),
            map_values: Vec::new(),
            metrics: Metrics::default(),
            advanced_to: None,
            regroups: None,
            ranked_apart: false,
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
        let computed = match &self.given {
            Some(_) => Some(self.given_min),
            None => {
                let streams = self
                    .spec
                    .sources
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.kind == SourceKind::Stream);
                let clock = self.max_ts.iter().flatten().copied().max();
                streams
                    .filter_map(|(i, s)| {
                        let max = self.max_ts[i];
                        let idle = s.idle_timeout_ms.is_some_and(|t| {
                            max.zip(clock)
                                .is_some_and(|(m, c)| c.saturating_sub(m) >= t)
                        });
                        (!idle).then(|| {
                            max.map_or(i64::MIN, |m| m.saturating_sub(s.max_out_of_orderness_ms))
                        })
                    })
                    .min()
            }
        };
        computed
            .unwrap_or(i64::MIN)
            .max(self.advanced_to.unwrap_or(i64::MIN))
    }

    /// Moves source `source`'s watermark (in spec order) to `w` if that is later, and
    /// completes the windows it completes. Only for runners made by [`Runner::stage`].
    pub fn set_watermark(&mut self, source: usize, w: i64) {
        if let Some(given) = &mut self.given
            && let Some(g) = given.get_mut(source)
            && w > *g
        {
            *g = w;
            self.given_min = given_min(&self.spec, given);
            self.advance(self.watermark());
        }
    }

    /// Spec source `source`'s watermark as its inputs gave it (runners made by
    /// [`Runner::stage`]).
    pub fn given_watermark(&self, source: usize) -> Option<i64> {
        self.given.as_ref()?.get(source).copied()
    }

    fn emit(&mut self, v: Val) {
        self.metrics.records_out += 1;
        self.out.push(v);
    }

    /// Takes what was emitted so far.
    pub fn drain(&mut self) -> Vec<Val> {
        std::mem::take(&mut self.out)
    }

    /// What was emitted so far, taken one by one: the buffer keeps its size for what
    /// comes next (a window closing with tens of thousands of keys, again and again).
    pub fn emitted(&mut self) -> std::vec::Drain<'_, Val> {
        self.out.drain(..)
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
    pub fn parse(&self, line_no: usize, line: Val) -> Result<(usize, Record), InputError> {
        parse_line(&self.spec, &self.max_ts, None, line_no, line)
    }

    /// Applies one input line (a JSON object).
    ///
    /// # Errors
    /// As [`Runner::parse`].
    pub fn push(&mut self, line_no: usize, line: Val) -> Result<(), InputError> {
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
        // A given watermark moves only by `set_watermark`, which completes windows
        // itself: a record cannot move it.
        if self.given.is_none() {
            self.advance(self.watermark());
            self.merge_ahead();
        }
    }

    fn note_ts(&mut self, source: usize, kind: SourceKind, ts: i64) {
        if kind != SourceKind::Stream {
            return;
        }
        if let Some(m) = self.max_ts.get_mut(source) {
            *m = Some(m.map_or(ts, |m| m.max(ts)));
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
            self.given_min = given_min(&self.spec, given);
        }
        self.advance(i64::MAX);
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
                    _ => stateless(step, r, table, &mut self.map_values, &mut |r| next.push(r)),
                }
            }
            recs = next;
        }
        for r in recs {
            let v = output_row(r, table);
            self.emit(v);
        }
    }

    fn group_row(a: &Aggregate, key: &Val, accs: &Accs) -> Val {
        accs.row(&a.group_row, key, (0, 0))
    }

    fn window_row(a: &Aggregate, key: &Val, start: i64, end: i64, accs: &Accs) -> Val {
        accs.row(&a.window_row, key, (start, end))
    }

    fn late(&mut self, r: &Rec) {
        self.metrics.late_records_dropped += 1;
        if self.spec.late_output {
            let v = object([(
                "late",
                object([
                    ("key", r.key.clone()),
                    ("ts", r.ts.into()),
                    ("value", r.value.clone()),
                ]),
            )]);
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
                let mut k = std::mem::take(&mut self.agg.key_text);
                k.set(&r.key);
                let (gk, accs) = self
                    .agg
                    .groups
                    .entry_ref(&k)
                    .or_insert_with(|| (r.key.clone(), Accs::new(a)));
                accs.add(a, &r, 1.0);
                let row = Self::group_row(a, gk, accs);
                self.agg.key_text = k;
                self.emit(row);
            }
            Some(Window::Tumbling { size }) => {
                let start = r.ts.div_euclid(size) * size;
                self.window_update(a, &r, &[(start, start + size)], w, &open);
            }
            Some(Window::Hopping { size, advance }) => {
                if let Some(len) = self.agg.panes.len {
                    self.pane_update(a, &r, (size, advance, len), late, &open);
                    return;
                }
                // Every [k·advance, k·advance+size), k ≥ 0, holding ts.
                // k·advance ≤ ts < k·advance + size: k from ⌊(ts − size)/advance⌋ + 1
                // to ⌊ts/advance⌋, in start order.
                let last = r.ts.div_euclid(advance);
                let first = (r.ts.saturating_sub(size).div_euclid(advance) + 1).max(0);
                let windows: Vec<(i64, i64)> = (first..=last)
                    .map(|k| (k * advance, k * advance + size))
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
        // Not collected: a vector of the accepted windows was an allocation per record.
        let accepted = windows.iter().copied().filter(|(_, e)| open(*e));
        if accepted.clone().next().is_none() {
            self.late(r);
            return;
        }
        let mut k = std::mem::take(&mut self.agg.key_text);
        k.set(&r.key);
        let inputs = Accs::inputs(a, r);
        for (start, end) in accepted {
            let spare = &mut self.agg.spare_window;
            let keys = self
                .agg
                .windows
                .entry((end, start))
                .or_insert_with(|| spare.take());
            // Found by reference, one lookup: a key's text is copied only when its
            // window is new.
            let win = keys.entry_ref(&k).or_insert_with(|| Win {
                key: r.key.clone(),
                accs: Accs::new(a),
                closed: false,
            });
            win.accs.add_inputs(a, r, &inputs, 1.0);
            // on_update: every change; on_close: a change to a window that already
            // completed (a late record within the lateness) is emitted at once.
            if a.emit == Emit::OnUpdate || win.closed || end <= w {
                win.closed |= end <= w;
                let row = Self::window_row(a, &win.key, start, end, &win.accs);
                self.emit(row);
            }
        }
        self.agg.key_text = k;
    }

    fn session_update(
        &mut self,
        a: &Aggregate,
        r: Rec,
        gap: i64,
        w: i64,
        open: &dyn Fn(i64) -> bool,
    ) {
        let k = KeyText::of(&r.key);
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
                retractions.push(object([
                    ("key", key.clone()),
                    ("window_start", old.0.into()),
                    ("window_end", old.1.into()),
                    ("retract", true.into()),
                ]));
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
        let k = KeyText::of(&key);
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
        let before = self.advanced_to.replace(w);
        if self.from_step == 0 {
            self.expire_join(w);
        }
        let Some(a) = self.windowed.clone() else {
            return;
        };
        let l = a.allowed_lateness_ms;
        // Results in (end, start, key) order. Both loops below make them in that order
        // already (windows by (end, start), then keys sorted; sessions from their index
        // by (end, start, key)), and a pipeline has one aggregate, windowed or by
        // session, so only one of them adds any: no sort of the results (and no copy of
        // every key to sort by) is needed.
        //
        // They go straight to the output, after what is there: its buffer keeps its size
        // from call to call, where a new vector grew by doubling for every closing.
        let mut closing = std::mem::take(&mut self.out);
        let emitted = closing.len();
        for ((end, start), keys) in self.agg.windows.range_mut(..=(w, i64::MAX)) {
            let due = sorted_by_text(keys.iter_mut().filter(|(_, win)| !win.closed));
            let mut ranking = a.rank.map(Ranking::new);
            for (_, win) in due {
                win.closed = true;
                if a.emit != Emit::OnClose {
                    continue;
                }
                let row = || Self::window_row(&a, &win.key, *start, *end, &win.accs);
                match (&mut ranking, a.rank) {
                    (Some(ranking), Some(rank)) => ranking.offer(win.accs.score(rank.by), row),
                    _ => closing.push(row()),
                }
            }
            if let Some(ranking) = ranking {
                ranking.finish(&mut closing);
            }
        }
        // Sessions due: those whose end the watermark reached, from the index.
        let due: Vec<(i64, i64, KeyText)> = self
            .agg
            .session_ends
            .range(..(w.saturating_add(1), i64::MIN, KeyText::default()))
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
                    closing.push(Self::window_row(&a, key, s.start, end, &s.accs));
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
        if let (Some(_), Some(Window::Hopping { size, advance })) = (self.agg.panes.len, a.window) {
            self.close_panes(&a, (size, advance), before, w, &mut closing);
        }
        self.close_ranked(&a, w, &mut closing);
        self.metrics.records_out += (closing.len() - emitted) as u64;
        self.out = closing;
        // Free what no late record can reach any more: windows are ordered by end, so
        // only the oldest are looked at.
        while let Some(entry) = self.agg.windows.first_entry() {
            if entry.key().0.saturating_add(l) > w {
                break;
            }
            self.agg.spare_window.keep(entry.remove());
        }
    }
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
pub fn run_lines(spec: &PipelineSpec, input: &str) -> Result<(Vec<Val>, Metrics), InputError> {
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
        let v: Val = serde_json::from_str(line).map_err(|e| InputError {
            line: i + 1,
            message: format!("not JSON: {e}"),
        })?;
        runner.push(i + 1, v)?;
    }
    runner.finish();
    let out = runner.drain();
    Ok((out, runner.metrics().clone()))
}
