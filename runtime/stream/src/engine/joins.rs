//! Joins: stream-table and table-table (the latest row per key, per side), and windowed
//! stream-stream joins (records buffered until the watermark passes their window plus
//! grace).

use std::collections::BTreeMap;

use hashbrown::HashMap;

use serde::{Deserialize, Serialize};

use super::{KeyText, Rec, Runner, object};
use crate::spec::{JoinKind, JoinType};
use crate::value::Val;

/// A stream-stream join's buffered record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Buffered {
    pub(super) left: bool,
    pub(super) key: Val,
    pub(super) ts: i64,
    pub(super) value: Val,
    pub(super) matched: bool,
}

/// Stream-stream join state: records by arrival number, looked up by side and key, and
/// expired in order of the end of their window.
#[derive(Default)]
pub(super) struct StreamJoin {
    pub(super) next: u64,
    pub(super) entries: BTreeMap<u64, Buffered>,
    pub(super) by_key: [HashMap<KeyText, Vec<u64>>; 2],
    pub(super) expiry: BTreeMap<(i64, u64), ()>,
}

impl StreamJoin {
    /// The last watermark (minus grace) at which the record can still be matched.
    pub(super) fn expires(w: &crate::spec::JoinWindow, b: &Buffered) -> i64 {
        b.ts.saturating_add(if b.left { w.after } else { w.before })
    }

    pub(super) fn insert(&mut self, w: &crate::spec::JoinWindow, b: Buffered) {
        let seq = self.next;
        self.next += 1;
        self.by_key[usize::from(!b.left)]
            .entry(KeyText::of(&b.key))
            .or_default()
            .push(seq);
        self.expiry.insert((Self::expires(w, &b), seq), ());
        self.entries.insert(seq, b);
    }
}

impl Runner {
    pub(super) fn join(&mut self, j: &crate::spec::Join, left: bool, r: Rec, w: i64) -> Vec<Rec> {
        let k = KeyText::of(&r.key);
        if r.key.is_null() {
            return Vec::new();
        }
        let joined = |l: Option<&Val>, rt: Option<&Val>| -> Option<Val> {
            let present = match j.join_type {
                JoinType::Inner => l.is_some() && rt.is_some(),
                JoinType::Left => l.is_some(),
                JoinType::Outer => l.is_some() || rt.is_some(),
            };
            present.then(|| {
                object([
                    ("left", l.cloned().unwrap_or(Val::Null)),
                    ("right", rt.cloned().unwrap_or(Val::Null)),
                ])
            })
        };
        match j.kind {
            JoinKind::StreamStream => self.stream_join(j, left, r, w),
            JoinKind::StreamTable if left => {
                let right = self.tables[1].get(&k);
                if right.is_none() && j.join_type == JoinType::Inner {
                    return Vec::new();
                }
                vec![Rec {
                    value: object([
                        ("left", r.value),
                        ("right", right.cloned().unwrap_or(Val::Null)),
                    ]),
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
                        value: Val::Null,
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
    pub(super) fn stream_join(
        &mut self,
        j: &crate::spec::Join,
        left: bool,
        r: Rec,
        w: i64,
    ) -> Vec<Rec> {
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
        let k = KeyText::of(&r.key);
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
                    value: object([("left", l.clone()), ("right", rt.clone())]),
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
    pub(super) fn expire_join(&mut self, w: i64) {
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
            let k = KeyText::of(&b.key);
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
                    object([("left", b.value), ("right", Val::Null)])
                } else {
                    object([("left", Val::Null), ("right", b.value)])
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
}
