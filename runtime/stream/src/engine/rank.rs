//! A window's ranking (`rank: {by, top}`, Flink's window top-N with ties): when a window
//! closes, only the keys with fewer than `top` keys strictly above them are emitted.
//!
//! A key ranks iff its score is at least the `top`-th highest score of the window (counting
//! equal scores apart): then at most `top − 1` scores are above it. So one pass over the
//! window's keys keeps the `top` highest scores and, in key order, the rows whose score
//! reached the least of them when offered; the rows below the final least are dropped at
//! the end. Only a ranked key's row is built, not one per key.
//!
//! Over several partitions each closes its own keys' windows with its own ranking, which
//! keeps every key of the whole ranking (a key's partition has at most as many keys above
//! it as the whole window has), and the rows go to one task per window, which ranks them
//! again ([`Runner::rank_row`]): Flink's local-global aggregation.

use std::collections::BTreeMap;

use super::{KeyText, Runner};
use crate::spec::{Aggregate, Rank};
use crate::value::Val;

/// One closing window's ranking.
pub(super) struct Ranking {
    top: usize,
    /// The highest scores offered, highest first, `top` at most.
    best: Vec<f64>,
    /// Rows whose score reached the least of `best` when offered, in offer order.
    kept: Vec<(f64, Val)>,
}

impl Ranking {
    pub(super) fn new(rank: Rank) -> Ranking {
        Ranking {
            top: rank.top,
            best: Vec::with_capacity(rank.top),
            kept: Vec::new(),
        }
    }

    /// The least score that still ranks, once `top` scores were offered.
    fn threshold(&self) -> Option<f64> {
        (self.best.len() == self.top)
            .then(|| self.best.last().copied())
            .flatten()
    }

    /// Whether a key scoring `score` ranks so far (`NaN`: no number, never).
    pub(super) fn takes(&self, score: f64) -> bool {
        !score.is_nan() && self.threshold().is_none_or(|t| score >= t)
    }

    /// Offers a key whose aggregation scores `score` (`None`: no number, not ranked);
    /// `row` makes its row, called only if the key ranks so far.
    pub(super) fn offer(&mut self, score: Option<f64>, row: impl FnOnce() -> Val) {
        let Some(score) = score.filter(|s| !s.is_nan()) else {
            return;
        };
        if self.threshold().is_some_and(|t| score < t) {
            return;
        }
        let at = self.best.partition_point(|b| *b >= score);
        self.best.insert(at, score);
        self.best.truncate(self.top);
        self.kept.push((score, row()));
    }

    /// The ranked rows, in offer order, into `out`.
    pub(super) fn finish(self, out: &mut Vec<Val>) {
        let t = self.threshold().unwrap_or(f64::NEG_INFINITY);
        out.extend(
            self.kept
                .into_iter()
                .filter(|(s, _)| *s >= t)
                .map(|(_, row)| row),
        );
    }
}

/// A ranked row's window: its `window_start` and `window_end` fields.
pub fn row_window(row: &Val) -> Option<(i64, i64)> {
    let start = row.get("window_start")?.as_i64()?;
    let end = row.get("window_end")?.as_i64()?;
    Some((start, end))
}

/// Rows ranked by other tasks, by window (end, start), until the window closes here.
pub(super) type Ranked = BTreeMap<(i64, i64), Vec<Val>>;

impl Runner {
    /// Makes this runner the first layer of a ranked window over several partitions: its
    /// rows are the keys its own ranking kept, for the task of their window to rank again.
    pub fn hand_over_ranked(&mut self) {
        self.ranked_apart = true;
    }

    /// Whether this runner's rows go to be ranked again (see [`Runner::hand_over_ranked`]).
    pub fn hands_over_ranked(&self) -> bool {
        self.ranked_apart
    }

    /// Takes a row that another task's ranking kept (the task of its window, over several
    /// partitions): it is ranked again with the other tasks' rows of the window when the
    /// window closes here. A row of no window (a late record, with `late_output`) is
    /// emitted as it is.
    pub fn rank_row(&mut self, row: Val) {
        match row_window(&row) {
            Some((start, end)) => self.agg.ranked.entry((end, start)).or_default().push(row),
            None => self.emit(row),
        }
    }

    /// Ranks the rows of windows ending by `w` that other tasks kept, in (end, start, key)
    /// order, into `closing`.
    pub(super) fn close_ranked(&mut self, a: &Aggregate, w: i64, closing: &mut Vec<Val>) {
        let Some(rank) = a.rank else { return };
        let name = a.ops[rank.by].0.as_str();
        while let Some(entry) = self.agg.ranked.first_entry() {
            if entry.key().0 > w {
                break;
            }
            let mut rows: Vec<(KeyText, Val)> = entry
                .remove()
                .into_iter()
                .map(|row| (KeyText::of(row.get("key").unwrap_or(&Val::Null)), row))
                .collect();
            rows.sort_by(|x, y| x.0.cmp(&y.0));
            let mut ranking = Ranking::new(rank);
            for (_, row) in rows {
                let score = row.get(name).and_then(Val::as_f64);
                ranking.offer(score, || row);
            }
            ranking.finish(closing);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Ranking;
    use crate::engine::Runner;
    use crate::spec::{PipelineSpec, Rank};
    use crate::value::Val;

    /// The second layer ranks each window's rows when the window closes there, and lets
    /// a late record's row through at once.
    #[test]
    fn the_second_layer_ranks_each_windows_rows_and_passes_late_rows_on() {
        let spec = PipelineSpec::from_yaml(
            "name: r\nsources: [{name: s}]\nlate_output: true\nsteps:\n  - key_by: k\n  - aggregate: {window: {tumbling: 10}, ops: {n: count}, rank: {by: n, top: 1}}\n",
        )
        .expect("spec");
        let mut r = Runner::stage(spec, 1);
        let row = |k: &str, n: i64, start: i64| {
            crate::engine::object([
                ("key", k.into()),
                ("n", n.into()),
                ("window_start", start.into()),
                ("window_end", (start + 10).into()),
            ])
        };
        r.rank_row(row("b", 3, 0));
        r.rank_row(row("a", 3, 0));
        r.rank_row(row("c", 2, 0));
        r.rank_row(row("d", 9, 10));
        let late = crate::engine::object([("late", Val::from(1i64))]);
        r.rank_row(late.clone());
        assert_eq!(r.drain(), vec![late]);
        r.set_watermark(0, 10);
        assert_eq!(r.drain(), vec![row("a", 3, 0), row("b", 3, 0)]);
        r.finish();
        assert_eq!(r.drain(), vec![row("d", 9, 10)]);
    }

    fn ranked(top: usize, scores: &[Option<f64>]) -> Vec<i64> {
        let mut r = Ranking::new(Rank { by: 0, top });
        for (i, s) in scores.iter().enumerate() {
            r.offer(*s, || Val::from(i as i64));
        }
        let mut out = Vec::new();
        r.finish(&mut out);
        out.iter().filter_map(Val::as_i64).collect()
    }

    #[test]
    fn a_ranking_keeps_the_top_places_with_their_ties_in_offer_order() {
        let s = |v: &[f64]| v.iter().map(|x| Some(*x)).collect::<Vec<_>>();
        assert_eq!(ranked(1, &s(&[3.0, 5.0, 1.0, 5.0, 4.0])), vec![1, 3]);
        // Two places: 5 and 5 take them; 4 has two above it.
        assert_eq!(ranked(2, &s(&[3.0, 5.0, 1.0, 5.0, 4.0])), vec![1, 3]);
        assert_eq!(ranked(3, &s(&[3.0, 5.0, 1.0, 5.0, 4.0])), vec![1, 3, 4]);
        // Ties with the last place all rank.
        assert_eq!(ranked(2, &s(&[2.0, 7.0, 2.0, 2.0])), vec![0, 1, 2, 3]);
        // Fewer keys than places: all rank; keys without a number never do.
        assert_eq!(ranked(5, &[Some(1.0), None, Some(2.0)]), vec![0, 2]);
        assert_eq!(ranked(1, &[]), Vec::<i64>::new());
    }
}
