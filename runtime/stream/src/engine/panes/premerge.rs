//! A ranked hopping window's complete panes, merged ahead of its close.
//!
//! Why: a window's results reach the sink when its last pane has been merged with the
//! others, and a ranked window has a result only once every key was scored. In Nexmark's
//! Q5 at a million bids a second, a 10 s window every 2 s holds some 600,000 auctions:
//! merging its five panes at the close took 50 ms before the one hot auction came out.
//! But four of its five panes are complete 2 s before the close (Flink merges slices the
//! same way). So after a window closes, the next one's complete panes are merged, with
//! each key's score, and at its close only the keys of its last pane are merged into
//! them. Each key of that pane is looked up in the merge when it first comes (or when
//! the merge is made, for the keys already there), so the close reads the pane's scores
//! and positions in the merge as two arrays, and merges the few keys in both. The keys
//! merged ahead and in no later pane keep their score, and only those at or above the
//! ranking's threshold are looked at.
//!
//! The merge ahead runs once the watermark is half an advance past the close, not at
//! once: every partition closes a window at the same watermark, and a merge ahead right
//! after the close kept the worker threads from the tasks that take the results on (the
//! ranking's second layer, the sink): Q5's p99 went from 50 to 129 ms. It is not state:
//! a restored runner merges at its next close as before. A late record in a pane merged
//! ahead makes the merge out of date, and the close merges every pane as before.
//!
//! The cost is memory: the merge copies its panes' keys and aggregations, with a hash,
//! score and index entry each, and a spare merge keeps its vectors for the next one.
//! Counted by the allocator (`benches/state_memory.rs`, new keys in every pane of a
//! 10 s / 2 s count), a ranked window holds 1.63 times what it holds with no merge ahead.

use std::hash::BuildHasher;

use hashbrown::DefaultHashBuilder;

use super::super::acc::Accs;
use super::super::rank::Ranking;
use super::super::{KeyText, Runner};
use super::{NOT_AHEAD, Pane, Panes, Part, merge_runs};
use crate::spec::{Aggregate, Rank, Window};
use crate::value::Val;

/// The complete panes of the window starting at `start`, merged: `[start, upto)`.
#[derive(Default)]
pub(in crate::engine) struct Premerged {
    pub(super) start: i64,
    pub(super) upto: i64,
    /// The merged keys, found by hash (not ordered), with their scores.
    merged: Pane,
    /// A bit per key hash (8 bits per key or more): a key whose bit is clear is not in
    /// `merged`, with no lookup. Most keys looked up are not there (in Q5, auctions new in
    /// the last pane), and the table's lookups miss the cache.
    seen: Vec<u64>,
}

impl Premerged {
    /// The bit of hash `h` in `seen`.
    fn bit(&self, h: u64) -> (usize, u64) {
        let i = (h.rotate_left(32) as usize) & (self.seen.len() * 64 - 1);
        (i / 64, 1 << (i % 64))
    }

    /// The position in `merged` of key `k` (hash `h`), or [`NOT_AHEAD`].
    pub(super) fn position(&self, h: u64, k: &KeyText) -> u32 {
        let (word, bit) = self.bit(h);
        if self.seen[word] & bit == 0 {
            return NOT_AHEAD;
        }
        let parts = &self.merged.parts;
        self.merged
            .index
            .find(h, |&i| parts[i].0 == *k)
            .map_or(NOT_AHEAD, |&i| i as u32)
    }

    /// Adds a merged key (hash `h`), which `merged` does not hold yet.
    fn push(&mut self, h: u64, k: &KeyText, part: Part, score: f64) {
        let (word, bit) = self.bit(h);
        self.seen[word] |= bit;
        let m = &mut self.merged;
        let i = m.parts.len();
        m.parts.push((k.clone(), part));
        m.hashes.push(h);
        m.scores.push(score);
        let hashes = &m.hashes;
        m.index.insert_unique(h, i, |&j| hashes[j]);
    }

    /// The ranked results of window `[start, end)`: these merged panes and `rest`, its
    /// panes from `upto` on (ordered, if more than one), into `closing` in key order.
    pub(super) fn close<'p>(
        &self,
        a: &Aggregate,
        rank: Rank,
        rest: impl Iterator<Item = &'p Pane> + Clone,
        (hasher, scratch): (&DefaultHashBuilder, &mut Option<Accs>),
        (start, end): (i64, i64),
        closing: &mut Vec<Val>,
    ) {
        let mut ranking = Ranking::new(rank);
        let mut both: Option<Accs> = None;
        // A key of the later panes, and its part merged ahead if it has one.
        let mut offer =
            |ranking: &mut Ranking, ahead: Option<&Part>, key: &Val, accs: &Accs| match ahead {
                Some(ahead) => {
                    let m = both.get_or_insert_with(|| ahead.accs.clone());
                    m.clone_from(&ahead.accs);
                    m.merge(a, accs);
                    ranking.offer(m.score(rank.by), || {
                        Runner::window_row(a, key, start, end, m)
                    });
                }
                None => ranking.offer(accs.score(rank.by), || {
                    Runner::window_row(a, key, start, end, accs)
                }),
            };
        let mut panes = rest.clone();
        match (panes.next(), panes.next()) {
            (None, _) => {}
            // One pane (the usual case, panes as long as the advance), its keys found in
            // the merge as they came: two arrays read, a part touched only to be merged
            // or to make a row.
            (Some(one), None) if one.ahead.len() == one.parts.len() => {
                for (i, (&at, &score)) in one.ahead.iter().zip(&one.scores).enumerate() {
                    if at == NOT_AHEAD && !ranking.takes(score) {
                        continue;
                    }
                    let ahead = (at != NOT_AHEAD).then(|| &self.merged.parts[at as usize].1);
                    let p = &one.parts[i].1;
                    offer(&mut ranking, ahead, &p.key, &p.accs);
                }
            }
            (Some(one), None) => {
                for (i, (k, p)) in one.parts.iter().enumerate() {
                    let at = self.position(one.hashes[i], k);
                    let ahead = (at != NOT_AHEAD).then(|| &self.merged.parts[at as usize].1);
                    offer(&mut ranking, ahead, &p.key, &p.accs);
                }
            }
            _ => merge_runs(a, rest.clone(), scratch, |k, key, accs| {
                let at = self.position(hasher.hash_one(k), k);
                let ahead = (at != NOT_AHEAD).then(|| &self.merged.parts[at as usize].1);
                offer(&mut ranking, ahead, key, accs);
            }),
        }
        for (i, &score) in self.merged.scores.iter().enumerate() {
            if !ranking.takes(score) {
                continue;
            }
            let (k, part) = &self.merged.parts[i];
            if rest.clone().any(|p| p.get(hasher, k).is_some()) {
                continue; // Offered with its later panes above.
            }
            ranking.offer(Some(score), || {
                Runner::window_row(a, &part.key, start, end, &part.accs)
            });
        }
        // In key order, as every window's results are.
        let from = closing.len();
        ranking.finish(closing);
        closing[from..].sort_by_cached_key(|row| KeyText::of(row.get("key").unwrap_or(&Val::Null)));
    }
}

impl Panes {
    /// A late record went to the pane starting at `pane`: a merge ahead holding it is out
    /// of date.
    pub(super) fn forget_premerge(&mut self, pane: i64) {
        if self
            .premerged
            .as_ref()
            .is_some_and(|p| p.start <= pane && pane < p.upto)
        {
            self.spare_merge = self.premerged.take();
        }
    }
}

impl Runner {
    /// Half an advance after a ranked hopping window closed, merges the complete panes of
    /// the next one to close, ahead of its close (see the module's notes). Cheap to call
    /// at any time: it does nothing otherwise.
    pub fn merge_ahead(&mut self) {
        let panes = &mut self.agg.panes;
        let Some(w) = self.advanced_to.filter(|w| *w != i64::MAX) else {
            return;
        };
        if panes.premerge_due.is_none_or(|due| w < due) {
            return;
        }
        panes.premerge_due = None;
        if std::mem::take(&mut panes.spare_dirty)
            && let Some(spare) = &mut panes.spare
        {
            spare.clear();
        }
        let Some(a) = self.windowed.clone() else {
            return;
        };
        let (Some(rank), Some(Window::Hopping { size, advance }), Some(len)) =
            (a.rank, a.window, panes.len)
        else {
            return;
        };
        // The next window to close: the first that does not end by `w`.
        let start = ((w.saturating_sub(size)).div_euclid(advance) + 1).max(0) * advance;
        // Its panes that ended by `w`: only a late record can change them now.
        let upto = (w.div_euclid(len) * len).min(start + size);
        if upto <= start {
            return;
        }
        let Panes {
            by_start,
            hasher,
            merged: scratch,
            spare_merge,
            premerged,
            ..
        } = panes;
        for (_, pane) in by_start.range_mut(start..upto) {
            pane.order();
        }
        let mut ahead = spare_merge.take().unwrap_or_default();
        ahead.merged.clear();
        ahead.start = start;
        ahead.upto = upto;
        let runs = by_start.range(start..upto).map(|(_, p)| p);
        let keys: usize = by_start
            .range(start..upto)
            .map(|(_, p)| p.parts.len())
            .sum();
        ahead.seen.clear();
        ahead
            .seen
            .resize((keys * 8).next_power_of_two().max(64) / 64, 0);
        merge_runs(&a, runs, scratch, |k, key, accs| {
            let part = Part {
                key: key.clone(),
                accs: accs.clone(),
            };
            let score = accs.score(rank.by).unwrap_or(f64::NAN);
            ahead.push(hasher.hash_one(k), k, part, score);
        });
        // The keys the pane after holds so far; those it gets from now on are found as
        // they come (`Panes::update`).
        if let Some(next) = by_start.get_mut(&upto) {
            let found: Vec<u32> = (next.parts.iter().zip(&next.hashes))
                .map(|((k, _), &h)| ahead.position(h, k))
                .collect();
            next.ahead = found;
        }
        *premerged = Some(ahead);
    }
}
