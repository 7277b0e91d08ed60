//! Running aggregation values: every kind merges (sessions), counts and sums also
//! subtract (tables).

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::{Rec, scope};
use crate::spec::{AggOp, Aggregate, RowField, RowLayout};
use crate::value::{Obj, Val};

/// One aggregation's running value; every kind merges (sessions) and counts and sums
/// also subtract (tables).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) enum Acc {
    Count(i64),
    Sum(f64, bool),
    Min(Option<f64>),
    Max(Option<f64>),
    Avg(f64, i64),
    /// Highest score first, at most `n`.
    Top(Vec<(f64, Val)>),
}

impl Acc {
    pub(super) fn new(op: &AggOp) -> Acc {
        match op {
            AggOp::Count => Acc::Count(0),
            AggOp::Sum(_) => Acc::Sum(0.0, true),
            AggOp::Min(_) => Acc::Min(None),
            AggOp::Max(_) => Acc::Max(None),
            AggOp::Avg(_) => Acc::Avg(0.0, 0),
            AggOp::Top { .. } => Acc::Top(Vec::new()),
        }
    }

    /// The number an operation takes from `r`, and whether it is a whole number (a sum
    /// of integers stays an integer); the expression is evaluated once.
    pub(super) fn input(op: &AggOp, r: &Rec) -> (Option<f64>, bool) {
        match op {
            AggOp::Count => (Some(1.0), true),
            AggOp::Sum(e) | AggOp::Min(e) | AggOp::Max(e) | AggOp::Avg(e) => e.number(&scope(r)),
            AggOp::Top { by, .. } => (by.number(&scope(r)).0, true),
        }
    }

    /// Adds a record to a top-N (a record without a numeric score is skipped); with
    /// `ties`, records scoring the same as the `n`-th stay too.
    pub(super) fn offer(
        top: &mut Vec<(f64, Val)>,
        (n, ties): (usize, bool),
        score: f64,
        value: &Val,
    ) {
        // After every equal score: the earlier record ranks first.
        let at = top.partition_point(|(s, _)| *s >= score);
        let tied = ties && top.get(n - 1).is_some_and(|(s, _)| *s == score);
        if at >= n && !tied {
            return;
        }
        top.insert(at, (score, value.clone()));
        let keep = match top.get(n - 1) {
            Some(&(last, _)) if ties => top.partition_point(|(s, _)| *s >= last),
            _ => n,
        };
        top.truncate(keep);
    }

    /// Adds record `r`'s input `x` to this value of operation `op`: a top-N offers the
    /// record, the others [`Acc::apply`] the number.
    fn add_input(&mut self, op: &AggOp, r: &Rec, x: Option<f64>, integral: bool, sign: f64) {
        if let (Acc::Top(top), AggOp::Top { n, ties, .. }) = (&mut *self, op) {
            if let Some(score) = x {
                Acc::offer(top, (*n, *ties), score, &r.value);
            }
            return;
        }
        self.apply(x, sign, integral);
    }

    /// Adds (`sign` 1) or subtracts (`sign` -1) one input; a non-number is skipped.
    pub(super) fn apply(&mut self, x: Option<f64>, sign: f64, integral: bool) {
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

    pub(super) fn merge(&mut self, other: &Acc) {
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

    pub(super) fn value(&self) -> Val {
        // A whole integral result is written as an integer, as an expression's is.
        let num = |f: f64, integral: bool| {
            if integral {
                crate::expr::number(f)
            } else {
                Val::float(f)
            }
        };
        match self {
            Acc::Count(n) => Val::from(*n),
            Acc::Sum(s, int) => num(*s, *int),
            Acc::Min(m) | Acc::Max(m) => m.map_or(Val::Null, |m| num(m, true)),
            Acc::Avg(_, 0) => Val::Null,
            Acc::Avg(s, n) => Val::float(s / *n as f64),
            Acc::Top(top) => Val::Arr(top.iter().map(|(_, v)| v.clone()).collect()),
        }
    }
}

/// What a record gives each aggregation: on the stack for up to four (no allocation per
/// record).
pub(super) type Inputs = SmallVec<[(Option<f64>, bool); 4]>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Accs(SmallVec<[Acc; 2]>);

impl Accs {
    pub(super) fn new(a: &Aggregate) -> Accs {
        Accs(a.ops.iter().map(|(_, op)| Acc::new(op)).collect())
    }

    /// What each operation takes from `r` (evaluated once, however many windows the
    /// record updates).
    pub(super) fn inputs(a: &Aggregate, r: &Rec) -> Inputs {
        a.ops.iter().map(|(_, op)| Acc::input(op, r)).collect()
    }

    /// Adds (`sign` 1) or subtracts (`sign` -1) a record, each operation's input taken
    /// as it is added: no vector of them (an aggregate with one window to update needs
    /// none, and collecting one was a tenth of a pane's update).
    pub(super) fn add(&mut self, a: &Aggregate, r: &Rec, sign: f64) {
        for (acc, (_, op)) in self.0.iter_mut().zip(&a.ops) {
            // A count takes nothing from the record: counted here, not through the input
            // and the match of every kind (80 instructions a record for a windowed
            // count, callgrind, Nexmark Q5-like).
            if let Acc::Count(n) = acc {
                *n += sign as i64;
                continue;
            }
            let (x, integral) = Acc::input(op, r);
            acc.add_input(op, r, x, integral, sign);
        }
    }

    /// Adds (`sign` 1) or subtracts (`sign` -1) a record whose inputs are known.
    pub(super) fn add_inputs(
        &mut self,
        a: &Aggregate,
        r: &Rec,
        inputs: &[(Option<f64>, bool)],
        sign: f64,
    ) {
        for ((acc, (_, op)), &(x, integral)) in self.0.iter_mut().zip(&a.ops).zip(inputs) {
            acc.add_input(op, r, x, integral, sign);
        }
    }

    pub(super) fn merge(&mut self, a: &Aggregate, other: &Accs) {
        for ((acc, b), (_, op)) in self.0.iter_mut().zip(&other.0).zip(&a.ops) {
            if let (Acc::Top(top), Acc::Top(more), AggOp::Top { n, ties, .. }) = (&mut *acc, b, op)
            {
                // Sessions merge in start order, so `top` holds the earlier records.
                for (score, v) in more {
                    Acc::offer(top, (*n, *ties), *score, v);
                }
                continue;
            }
            acc.merge(b);
        }
    }

    /// Aggregation `i`'s value as a number to rank by: `None` for no number (an average
    /// or a minimum of nothing, a top-N).
    pub(super) fn score(&self, i: usize) -> Option<f64> {
        match self.0.get(i)? {
            Acc::Count(n) => Some(*n as f64),
            Acc::Sum(s, _) => Some(*s),
            Acc::Min(m) | Acc::Max(m) => *m,
            Acc::Avg(_, 0) | Acc::Top(_) => None,
            Acc::Avg(s, n) => Some(s / *n as f64),
        }
    }

    /// The result row of `key` (over window `[start, end)`, if the layout has one), its
    /// fields made in the layout's order: the object's, so nothing is sorted.
    pub(super) fn row(&self, layout: &RowLayout, key: &Val, (start, end): (i64, i64)) -> Val {
        let fields = layout
            .iter()
            .map(|(name, from)| {
                let v = match from {
                    RowField::Key => key.clone(),
                    RowField::WindowStart => start.into(),
                    RowField::WindowEnd => end.into(),
                    RowField::Op(i) => self.0.get(*i).map_or(Val::Null, Acc::value),
                };
                (name.clone(), v)
            })
            .collect();
        Val::Obj(Obj::from_sorted_fields(fields))
    }
}
