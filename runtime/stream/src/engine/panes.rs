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

use hashbrown::HashMap;
use hashbrown::hash_map::EntryRef;
use serde::{Deserialize, Serialize};

use super::acc::Accs;
use super::key::{Spare, sorted_by_text};
use super::{KeyText, Rec, Runner};
use crate::spec::{AggOp, Aggregate, Emit, Window};
use crate::value::Val;

/// Panes per window at most: merging a window's panes costs this many lookups per key.
const MAX_PANES_PER_WINDOW: i64 = 64;

/// One key's aggregations over one pane (or, merged, over a window).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Part {
    pub(super) key: Val,
    pub(super) accs: Accs,
}

/// The panes of a hopping aggregate.
#[derive(Default)]
pub(super) struct Panes {
    /// The pane length, when the aggregate's windows are kept as panes.
    pub(super) len: Option<i64>,
    /// By pane start, then key.
    pub(super) by_start: BTreeMap<i64, HashMap<KeyText, Part>>,
    /// The table of the pane freed last, for the next new pane.
    spare: Spare<Part>,
    /// Scratch: a closing window's panes merged.
    merged: HashMap<KeyText, Part>,
}

impl Panes {
    /// Panes for `a`, if its windows are kept as panes.
    pub(super) fn for_aggregate(a: Option<&Aggregate>) -> Panes {
        Panes {
            len: a.and_then(pane_len),
            ..Panes::default()
        }
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
    /// A late record is taken if a window holding it is `open` (within the lateness),
    /// and every completed window it updates is emitted again at once.
    pub(super) fn pane_update(
        &mut self,
        a: &Aggregate,
        r: &Rec,
        (size, advance, len): (i64, i64, i64),
        open: &dyn Fn(i64) -> bool,
    ) {
        // The windows holding ts: k·advance ≤ ts < k·advance + size, k ≥ 0.
        let last = r.ts.div_euclid(advance);
        let first = (r.ts.saturating_sub(size).div_euclid(advance) + 1).max(0);
        if !(first..=last).any(|k| open(k * advance + size)) {
            self.late(r);
            return;
        }
        let mut k = std::mem::take(&mut self.agg.key_text);
        k.set(&r.key);
        let panes = &mut self.agg.panes;
        let spare = &mut panes.spare;
        let part = panes
            .by_start
            .entry(r.ts.div_euclid(len) * len)
            .or_insert_with(|| spare.take())
            .entry_ref(&k)
            .or_insert_with(|| Part {
                key: r.key.clone(),
                accs: Accs::new(a),
            });
        part.accs.add(a, r, 1.0);
        // Windows completed already (their results went out): emitted again now. Those
        // the watermark passed but that have not completed yet go out when they do.
        let completed = self.advanced_to.unwrap_or(i64::MIN);
        for j in first..=last {
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
        let mut merged: Option<Part> = None;
        for keys in self
            .agg
            .panes
            .by_start
            .range(start..end)
            .map(|(_, keys)| keys)
        {
            if let Some(p) = keys.get(k) {
                match &mut merged {
                    Some(m) => m.accs.merge(a, &p.accs),
                    None => merged = Some(p.clone()),
                }
            }
        }
        merged.map(|m| Self::window_row(a, &m.key, start, end, &m.accs))
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
            merged.clear();
            for (_, keys) in by_start.range(start..end) {
                for (k, p) in keys {
                    match merged.entry_ref(k) {
                        EntryRef::Occupied(mut m) => m.get_mut().accs.merge(a, &p.accs),
                        EntryRef::Vacant(v) => {
                            v.insert(p.clone());
                        }
                    }
                }
            }
            closing.extend(
                sorted_by_text(merged.iter())
                    .map(|(_, m)| Self::window_row(a, &m.key, start, end, &m.accs)),
            );
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
            spare.keep(entry.remove());
        }
    }
}
