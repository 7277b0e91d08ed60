//! Hopping windows that emit when they close, kept as panes (Jet's frames, Flink's
//! slices): a record updates the one pane, `gcd(size, advance)` long, that holds it,
//! not each of the `size / advance` windows that do; a window's result is its panes
//! merged when it closes. A Nexmark-shaped 10 s / 2 s count did five hash updates per
//! record, the most expensive part of the query.
//!
//! Only where merging gives exactly what adding record by record gives: counts, sums,
//! minima, maxima and averages (a sum of floats may differ in its last digit, being added
//! in another order, as in any engine that pre-aggregates), not top-N, whose equal scores
//! rank by arrival. On-update windows emit on every record, so merging would be per
//! record too: they keep their windows.

use std::collections::BTreeMap;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

mod premerge;

use premerge::Premerged;

use super::acc::Accs;
use super::rank::Ranking;
use super::{KeyText, Rec, Runner};
use crate::spec::{AggOp, Aggregate, Emit, Window};
use crate::value::Val;

/// Panes per window at most: merging a window's panes compares this many keys per key.
const MAX_PANES_PER_WINDOW: i64 = 64;

/// One key's aggregations over one pane (or, merged, over a window).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Part {
    pub(super) key: Val,
    pub(super) accs: Accs,
}

/// One pane's keys, in a vector found by hash, and put in key order when a window that
/// holds the pane first closes.
///
/// Why ordered per pane: a window's results go out in key order. Merging its panes
/// through a hash table (a copy of each key's first part), then sorting the merged keys,
/// cost some 930 instructions a result in the Nexmark-shaped 10 s / 2 s count, a fifth of
/// the query. A pane is sorted once, although it is in `size / advance` windows, and a
/// window merges its panes' ordered keys as sorted runs, copying nothing.
#[derive(Default)]
pub(super) struct Pane {
    /// Positions in `parts`, by the hash of their key.
    index: HashTable<usize>,
    /// In arrival order: a late record may still add a key after the pane is ordered.
    parts: Vec<(KeyText, Part)>,
    /// Each part's key hash, by position: a ranked window's merge ahead looks keys up by
    /// them without hashing again (see `premerge`), and the index grows without hashing.
    hashes: Vec<u64>,
    /// A ranked aggregate's panes: each part's score (`NaN`: none), by position, kept as
    /// records come, so that a close reads scores without touching the parts.
    scores: Vec<f64>,
    /// The pane after a window's panes merged ahead: each part's position in the merge
    /// ([`NOT_AHEAD`]: not there), by position; in use while it is as long as `parts`.
    ahead: Vec<u32>,
    /// The first `order.len()` parts in the order of their key texts, as (prefix, position)
    /// (see [`KeyText::prefix`]).
    order: Vec<(u64, usize)>,
}

/// In [`Pane::ahead`]: the key is not in the merge ahead.
const NOT_AHEAD: u32 = u32::MAX;

impl Pane {
    /// The position of key `k`'s part (hashed `hash`), made by `new` if the pane has none,
    /// and whether it was made.
    fn find_or_add(&mut self, hash: u64, k: &KeyText, new: impl FnOnce() -> Part) -> (usize, bool) {
        let parts = &mut self.parts;
        match self.index.find(hash, |&i| parts[i].0 == *k) {
            Some(&i) => (i, false),
            None => {
                let i = parts.len();
                parts.push((k.clone(), new()));
                self.hashes.push(hash);
                let hashes = &self.hashes;
                self.index.insert_unique(hash, i, |&j| hashes[j]);
                (i, true)
            }
        }
    }

    fn get(&self, hasher: &DefaultHashBuilder, k: &KeyText) -> Option<&Part> {
        let parts = &self.parts;
        self.index
            .find(hasher.hash_one(k), |&i| parts[i].0 == *k)
            .map(|&i| &parts[i].1)
    }

    pub(super) fn parts(&self) -> impl Iterator<Item = (&KeyText, &Part)> {
        self.parts.iter().map(|(k, p)| (k, p))
    }

    /// Puts the parts added since the last call in key order with the others.
    fn order(&mut self) {
        let Pane { parts, order, .. } = self;
        if order.len() == parts.len() {
            return;
        }
        let first = order.is_empty();
        order.extend((order.len()..parts.len()).map(|i| (parts[i].0.prefix(), i)));
        let by_text = |a: &(u64, usize), b: &(u64, usize)| {
            a.0.cmp(&b.0).then_with(|| parts[a.1].0.cmp(&parts[b.1].0))
        };
        if first {
            order.sort_unstable_by(by_text);
        } else {
            // A sorted run and a few late keys: the stable sort merges them in one pass.
            order.sort_by(by_text);
        }
    }

    fn clear(&mut self) {
        self.index.clear();
        self.parts.clear();
        self.hashes.clear();
        self.scores.clear();
        self.ahead.clear();
        self.order.clear();
    }
}

/// The panes of a hopping aggregate.
#[derive(Default)]
pub(super) struct Panes {
    /// The pane length, when the aggregate's windows are kept as panes.
    pub(super) len: Option<i64>,
    /// A ranked aggregate's: the aggregation ranked by, whose score each part keeps.
    rank_by: Option<usize>,
    /// By pane start.
    pub(super) by_start: BTreeMap<i64, Pane>,
    /// The keys' hasher, for every pane.
    hasher: DefaultHashBuilder,
    /// The pane freed last, emptied, for the next new one: that holds about as many keys,
    /// so its vectors and table do not grow from empty.
    spare: Option<Pane>,
    /// Whether `spare` is still to be emptied.
    spare_dirty: bool,
    /// Scratch: a closing window's merged aggregations of one key.
    merged: Option<Accs>,
    /// A ranked window's complete panes, merged ahead of its close (not state: made again
    /// after a restore, at the next close).
    premerged: Option<Premerged>,
    /// The last one used, emptied, for the next.
    spare_merge: Option<Premerged>,
    /// When to merge the next window's panes ahead: the watermark half an advance past
    /// the close of the last window (see `premerge`).
    premerge_due: Option<i64>,
}

impl Panes {
    /// Panes for `a`, if its windows are kept as panes.
    pub(super) fn for_aggregate(a: Option<&Aggregate>) -> Panes {
        let len = a.and_then(pane_len);
        Panes {
            len,
            rank_by: len.and(a.and_then(|a| a.rank)).map(|r| r.by),
            ..Panes::default()
        }
    }

    /// Changes (`add`) the part of key `k` in the pane starting at `start`, made by `new`
    /// (and the pane from the spare) if missing; a ranked aggregate's part keeps its score.
    fn update(
        &mut self,
        start: i64,
        k: &KeyText,
        new: impl FnOnce() -> Part,
        add: impl FnOnce(&mut Accs),
    ) {
        let Panes {
            by_start,
            hasher,
            spare,
            spare_dirty,
            rank_by,
            premerged,
            ..
        } = self;
        let pane = by_start.entry(start).or_insert_with(|| {
            let mut pane = spare.take().unwrap_or_default();
            if std::mem::take(spare_dirty) {
                pane.clear();
            }
            pane
        });
        let hash = hasher.hash_one(k);
        let (i, made) = pane.find_or_add(hash, k, new);
        let accs = &mut pane.parts[i].1.accs;
        add(accs);
        let Some(by) = *rank_by else { return };
        let score = accs.score(by).unwrap_or(f64::NAN);
        if !made {
            pane.scores[i] = score;
            return;
        }
        pane.scores.push(score);
        // A key new in the pane after a window's panes merged ahead: found in the merge
        // now, on its first record, not at the close.
        if let Some(ahead) = premerged.as_ref().filter(|p| p.upto == start)
            && pane.ahead.len() == i
        {
            pane.ahead.push(ahead.position(hash, k));
        }
    }

    /// Adds a part read from a checkpoint (one per key and pane was written).
    pub(super) fn restore(&mut self, start: i64, k: KeyText, p: Part) {
        self.update(start, &k, move || p, |_| {});
    }
}

/// The pane length of `a`'s windows, if they are kept as panes.
pub(super) fn pane_len(a: &Aggregate) -> Option<i64> {
    let Some(Window::Hopping { size, advance }) = a.window else {
        return None;
    };
    let exact = a.ops.iter().all(|(_, op)| !matches!(op, AggOp::Top { .. }));
    let len = gcd(size, advance);
    (a.emit == Emit::OnClose && exact && len > 0 && size / len <= MAX_PANES_PER_WINDOW)
        .then_some(len)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

impl Runner {
    /// Adds `r` to its pane: `len` long, of hopping windows `size` long every `advance`.
    /// A `late` record is taken if a window holding it is `open` (within the lateness),
    /// and every completed window it updates is emitted again at once.
    pub(super) fn pane_update(
        &mut self,
        a: &Aggregate,
        r: &Rec,
        (size, advance, len): (i64, i64, i64),
        late: bool,
        open: &dyn Fn(i64) -> bool,
    ) {
        // The windows holding ts: k·advance ≤ ts < k·advance + size, k ≥ 0. Only a late
        // record needs them: one on time is in open windows only, none completed.
        let windows = || {
            let last = r.ts.div_euclid(advance);
            let first = (r.ts.saturating_sub(size).div_euclid(advance) + 1).max(0);
            first..=last
        };
        if late && !windows().any(|k| open(k * advance + size)) {
            self.late(r);
            return;
        }
        let mut k = std::mem::take(&mut self.agg.key_text);
        k.set(&r.key);
        let pane = r.ts.div_euclid(len) * len;
        // A late record in a pane merged ahead: that merge is out of date.
        if late {
            self.agg.panes.forget_premerge(pane);
        }
        self.agg.panes.update(
            pane,
            &k,
            || Part {
                key: r.key.clone(),
                accs: Accs::new(a),
            },
            |accs| accs.add(a, r, 1.0),
        );
        // Windows completed already (their results went out): emitted again now. Those
        // the watermark passed but that have not completed yet go out when they do.
        let completed = self.advanced_to.unwrap_or(i64::MIN);
        // A window ends after every record it holds: a record at or after the completed
        // time (every record on time) is in no completed window, and skips the loop.
        let reopened = (r.ts < completed).then(windows);
        for j in reopened.into_iter().flatten() {
            let (start, end) = (j * advance, j * advance + size);
            if end <= completed
                && open(end)
                && let Some(row) = self.window_of_key(a, &k, start, end)
            {
                self.emit(row);
            }
        }
        self.agg.key_text = k;
    }

    /// Key `k`'s result for window `[start, end)`, from its panes.
    fn window_of_key(&self, a: &Aggregate, k: &KeyText, start: i64, end: i64) -> Option<Val> {
        let panes = &self.agg.panes;
        let mut merged: Option<Accs> = None;
        let mut key = None;
        for (_, pane) in panes.by_start.range(start..end) {
            if let Some(p) = pane.get(&panes.hasher, k) {
                match &mut merged {
                    Some(m) => m.merge(a, &p.accs),
                    None => merged = Some(p.accs.clone()),
                }
                key = Some(&p.key);
            }
        }
        Some(Self::window_row(a, key?, start, end, &merged?))
    }

    /// Results of the windows that completed since watermark `before` (exclusive) up to
    /// `w`, in (end, start, key) order, into `closing`; then frees the panes no late
    /// record can reach.
    pub(super) fn close_panes(
        &mut self,
        a: &Aggregate,
        (size, advance): (i64, i64),
        before: Option<i64>,
        w: i64,
        closing: &mut Vec<Val>,
    ) {
        let Panes {
            by_start,
            merged,
            spare,
            hasher,
            premerged,
            spare_merge,
            premerge_due,
            spare_dirty,
            ..
        } = &mut self.agg.panes;
        let Some(&oldest) = by_start.keys().next() else {
            return;
        };
        // From the first window holding the oldest pane, or after the last one completed.
        let mut j = (oldest.saturating_sub(size).div_euclid(advance) + 1).max(0);
        if let Some(before) = before {
            j = j.max(before.saturating_sub(size).div_euclid(advance) + 1);
        }
        while j.saturating_mul(advance).saturating_add(size) <= w {
            let (start, end) = (j * advance, j * advance + size);
            if by_start.range(start..end).next().is_none() {
                // No data in this window: on to the first window holding the next pane.
                match by_start.range(end..).next() {
                    Some((&next, _)) => {
                        j = (j + 1).max(next.saturating_sub(size).div_euclid(advance) + 1);
                        continue;
                    }
                    None => break,
                }
            }
            // Ordered for the merge. A window merged ahead merges only its panes after
            // that, and one alone is taken as it is (see `premerge`).
            let ahead = premerged
                .take()
                .filter(|p| a.rank.is_some() && p.start == start && p.upto <= end);
            let from = ahead.as_ref().map_or(start, |p| p.upto);
            if ahead.is_none() || by_start.range(from..end).nth(1).is_some() {
                for (_, pane) in by_start.range_mut(from..end) {
                    pane.order();
                }
            }
            let panes = by_start.range(start..end).map(|(_, p)| p);
            match (a.rank, ahead) {
                (Some(rank), Some(ahead)) => {
                    let rest = by_start.range(ahead.upto..end).map(|(_, p)| p);
                    ahead.close(a, rank, rest, (hasher, merged), (start, end), closing);
                    *spare_merge = Some(ahead);
                }
                (Some(rank), None) => {
                    let mut ranking = Ranking::new(rank);
                    merge_runs(a, panes, merged, |_, key, accs| {
                        ranking.offer(accs.score(rank.by), || {
                            Self::window_row(a, key, start, end, accs)
                        });
                    });
                    ranking.finish(closing);
                }
                (None, _) => merge_runs(a, panes, merged, |_, key, accs| {
                    closing.push(Self::window_row(a, key, start, end, accs));
                }),
            }
            *premerge_due = a.rank.map(|_| end.saturating_add(advance / 2));
            j += 1;
        }
        // A pane's last window is the one starting at or before it, latest: freed once no
        // late record can reach that window.
        let l = a.allowed_lateness_ms;
        while let Some(entry) = by_start.first_entry() {
            let last_end = entry.key().div_euclid(advance) * advance + size;
            if last_end.saturating_add(l) > w {
                break;
            }
            let mut pane = entry.remove();
            // A ranked window's results wait for this close only: the pane (some 150,000
            // keys in Q5, 2 ms) is emptied when the next merge ahead is made, or when the
            // spare is taken.
            if a.rank.is_some() {
                *spare_dirty = true;
            } else {
                pane.clear();
            }
            *spare = Some(pane);
        }
    }
}

/// A pane's parts in key order, from its head on.
struct Run<'p> {
    rest: std::slice::Iter<'p, (u64, usize)>,
    parts: &'p [(KeyText, Part)],
    /// The next part, with its key and the key's prefix; `None` once the run is merged.
    head: Option<(u64, &'p KeyText, &'p Part)>,
}

impl<'p> Run<'p> {
    /// The run of an ordered pane (see [`Pane::order`]).
    fn new(pane: &'p Pane) -> Run<'p> {
        let mut run = Run {
            rest: pane.order.iter(),
            parts: &pane.parts,
            head: None,
        };
        run.advance();
        run
    }

    fn advance(&mut self) {
        let parts = self.parts;
        self.head = self.rest.next().map(|&(prefix, at)| {
            let (k, p) = &parts[at];
            (prefix, k, p)
        });
    }
}

/// Merges ordered panes key by key, and gives `out` each key (its text and value) with
/// its aggregations over all of them, in key order. `scratch` holds the merged aggregations of a key found in
/// more than one pane.
///
/// The least key of the runs' heads is found by looking at each: a window has a few panes
/// ([`MAX_PANES_PER_WINDOW`] at most). Heads are kept, not looked up again at each look,
/// and compared by prefix first: two keys' texts are compared only when their first 8
/// bytes tie.
fn merge_runs<'p>(
    a: &Aggregate,
    panes: impl Iterator<Item = &'p Pane>,
    scratch: &mut Option<Accs>,
    mut out: impl FnMut(&KeyText, &Val, &Accs),
) {
    let mut runs: SmallVec<[Run<'p>; 8]> = panes.map(Run::new).collect();
    loop {
        let mut least: Option<(u64, &KeyText)> = None;
        for run in &runs {
            if let Some((prefix, k, _)) = run.head
                && least.is_none_or(|(lp, lk)| prefix < lp || (prefix == lp && k < lk))
            {
                least = Some((prefix, k));
            }
        }
        let Some((lp, lk)) = least else { return };
        let mut first: Option<&Part> = None;
        let mut several = false;
        for run in &mut runs {
            let Some((prefix, k, part)) = run.head else {
                continue;
            };
            if prefix != lp || !(std::ptr::eq(k, lk) || k == lk) {
                continue;
            }
            run.advance();
            match first {
                None => first = Some(part),
                Some(f) => {
                    let m = match scratch {
                        Some(m) if several => m,
                        Some(m) => {
                            m.clone_from(&f.accs);
                            m
                        }
                        None => scratch.insert(f.accs.clone()),
                    };
                    several = true;
                    m.merge(a, &part.accs);
                }
            }
        }
        let Some(first) = first else { return };
        match scratch.as_ref().filter(|_| several) {
            Some(m) => out(lk, &first.key, m),
            None => out(lk, &first.key, &first.accs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::PipelineSpec;

    /// Pseudo-random draws below `n`, the same for the same `seed`.
    fn draws(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        }
    }

    /// Records of 40 keys over 60 s, out of order, a tenth of them late by up to 15 s
    /// (some past the lateness): late keys land in panes already put in key order.
    fn input() -> Vec<Val> {
        let mut next = draws(7);
        (0..3_000)
            .map(|i: i64| {
                let mut ts = i * 20 + next(300) as i64;
                if next(10) == 0 {
                    ts -= next(15_000) as i64;
                }
                let key = next(40) as i64;
                let v = next(100) as i64;
                // Numbers and strings, short and long (prefixes that tie).
                let key = match key % 3 {
                    0 => Val::from(key * 1_000_000_007),
                    1 => Val::from(format!("sensor-with-a-long-name-{key}").as_str()),
                    _ => Val::from(key),
                };
                crate::engine::object([("key", key), ("ts", ts.max(0).into()), ("v", v.into())])
            })
            .collect()
    }

    fn run(spec: &PipelineSpec, as_panes: bool) -> Vec<Val> {
        let mut runner = Runner::new(spec.clone());
        assert!(runner.agg.panes.len.is_some(), "this spec is kept as panes");
        if !as_panes {
            runner.agg.panes.len = None;
        }
        for (i, line) in input().into_iter().enumerate() {
            runner.push(i + 1, line).expect("record");
        }
        runner.finish();
        runner.drain()
    }

    /// Panes merged in key order give exactly what windows updated record by record give,
    /// in the same order, late updates included.
    #[test]
    fn panes_give_what_windows_give() {
        let spec = PipelineSpec::from_yaml(
            "name: panes
sources: [{name: in, max_out_of_orderness_ms: 400}]
late_output: true
steps:
  - aggregate:
      window: {hopping: {size: 10000, advance: 2000}}
      emit: on_close
      allowed_lateness_ms: 3000
      ops: {n: count, total: {sum: v}, low: {min: v}, high: {max: v}, mean: {avg: v}}
",
        )
        .expect("spec");
        let panes = run(&spec, true);
        let windows = run(&spec, false);
        assert!(panes.len() > 500, "{} results", panes.len());
        // Some results were updated by late records, and some late records dropped.
        let windows_of = |rows: &[Val]| {
            let mut seen: Vec<String> = rows
                .iter()
                .filter(|v| v.get("late").is_none())
                .map(|v| format!("{:?} {:?}", v.get("key"), v.get("window_start")))
                .collect();
            seen.sort();
            seen.dedup();
            seen.len()
        };
        assert!(windows_of(&panes) < panes.len() - 10, "too few updates");
        assert!(
            panes.iter().any(|v| v.get("late").is_some()),
            "none dropped"
        );
        assert_eq!(panes, windows);
    }

    /// A ranked window merged ahead of its close (see `premerge`) gives what windows
    /// updated record by record give, late records in merged panes included; and the
    /// merge ahead was made and used.
    #[test]
    fn ranked_panes_merged_ahead_give_what_windows_give() {
        // By count, the eight busiest keys and the busiest one (many keys of a window are
        // in its panes merged ahead only); by maximum, the highest, which sparse keys hold.
        for rank in ["{by: n, top: 8}", "{by: n, top: 1}", "{by: high, top: 1}"] {
            ranked_panes_check(rank);
        }
    }

    fn ranked_panes_check(rank: &str) {
        let spec = PipelineSpec::from_yaml(&format!(
            "name: ranked
sources: [{{name: in, max_out_of_orderness_ms: 400}}]
late_output: true
steps:
  - aggregate:
      window: {{hopping: {{size: 10000, advance: 2000}}}}
      ops: {{n: count, total: {{sum: v}}, high: {{max: v}}}}
      rank: {rank}
"
        ))
        .expect("spec");
        // Keys that come and go, as auctions do: most are in one or two panes, so many of
        // a window's keys are in its panes merged ahead only. One record in 150 is late,
        // by up to 6 s: into panes merged ahead, but not into every one. One in 100 is
        // for one of five sparse keys, with a value above all others: seen in earlier
        // panes, they come back in a window's last pane after its merge ahead was made.
        let mut next = draws(11);
        let input: Vec<Val> = (0..4_000)
            .map(|i: i64| {
                let mut ts = i * 20 + next(300) as i64;
                if next(150) == 0 {
                    ts -= next(6_000) as i64;
                }
                // By the record's time, late or not: a late record adds to keys of its
                // time, which rank there.
                let (key, v) = if next(100) == 0 {
                    (Val::from(format!("sparse-{}", next(5)).as_str()), 1000)
                } else {
                    ((ts.max(0) / 800 + next(3) as i64).into(), next(100) as i64)
                };
                crate::engine::object([("key", key), ("ts", ts.max(0).into()), ("v", v.into())])
            })
            .collect();
        let mut windows = Runner::new(spec.clone());
        windows.agg.panes.len = None;
        for (i, line) in input.iter().enumerate() {
            windows.push(i + 1, line.clone()).expect("record");
        }
        windows.finish();
        let windows = windows.drain();
        // Record by record, to see each merge ahead and what a late record does to it.
        let mut runner = Runner::new(spec);
        let (mut used, mut forgotten) = (0, 0);
        let mut panes = Vec::new();
        for (i, line) in input.into_iter().enumerate() {
            let before = runner.agg.panes.premerged.as_ref().map(|p| p.start);
            let w = runner.watermark();
            let late = line
                .get("ts")
                .and_then(Val::as_i64)
                .is_some_and(|ts| ts < w);
            runner.push(i + 1, line).expect("record");
            let after = runner.agg.panes.premerged.as_ref().map(|p| p.start);
            forgotten += usize::from(late && before.is_some() && after.is_none());
            let rows = runner.drain();
            // The window merged ahead closed with this record.
            let start = |v: &Val| v.get("window_start").and_then(Val::as_i64);
            used += usize::from(before.is_some() && rows.iter().any(|v| start(v) == before));
            panes.extend(rows);
        }
        // Each part's score is its aggregations' now, as the close reads it.
        let by = runner.agg.panes.rank_by.expect("ranked");
        for pane in runner.agg.panes.by_start.values() {
            assert_eq!(pane.scores.len(), pane.parts.len());
            for ((_, part), score) in pane.parts.iter().zip(&pane.scores) {
                let now = part.accs.score(by).unwrap_or(f64::NAN);
                assert!(now == *score || now.is_nan() && score.is_nan(), "{rank}");
            }
        }
        runner.finish();
        panes.extend(runner.drain());
        assert!(used > 20, "{rank}: {used} windows closed merged ahead");
        assert!(forgotten > 0, "{rank}: no late record hit a merge ahead");
        let ranked = panes.iter().filter(|v| v.get("late").is_none()).count();
        assert!(ranked > 20, "{rank}: {ranked} results");
        assert_eq!(panes.len(), windows.len(), "{rank}");
        assert_eq!(panes, windows, "{rank}");
    }
}
