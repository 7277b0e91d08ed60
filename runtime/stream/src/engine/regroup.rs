//! Table aggregation with regrouping (`group_by`, then `aggregate`), in two halves:
//! - the **rows** half keeps each table row's group and value (by the row's key), and turns
//!   an upsert into a [`Regroup`]: the old contribution to subtract, the new one to add;
//! - the **groups** half applies a `Regroup` to the groups' accumulators and emits each
//!   changed group's new row.
//!
//! One runner does both in a row (the replay, an executor of one partition). Over several
//! partitions the executor runs them in two layers of tasks: the rows half keyed by the
//! row's key, the groups half by the group, with an exchange between them (Kafka Streams'
//! repartition of a `KGroupedTable`). A row's subtraction and addition then go to the
//! partitions of their groups, unless the row stays in its group: then both go to it in
//! one change, which emits once, as in one runner.

use super::{Accs, Expr, KeyText, Rec, Runner, scope};
use crate::spec::{Aggregate, Step};
use crate::value::Val;

/// A table row's change of group: what the rows half hands to the groups half.
#[derive(Debug, Clone, PartialEq)]
pub struct Regroup {
    /// The group the row counted in, and the row as it was: to subtract.
    pub old: Option<(Val, Rec)>,
    /// The group it counts in now, and the row: to add.
    pub new: Option<(Val, Rec)>,
}

impl Regroup {
    /// The change as the groups' partitions take it: one change when the row stays in its
    /// group, else its subtraction and its addition apart (each `Some` when there is one),
    /// each with the group it goes to.
    pub fn by_group(self) -> [Option<(Val, Regroup)>; 2] {
        match (self.old, self.new) {
            (Some(old), Some(new)) if old.0 == new.0 => [
                Some((
                    new.0.clone(),
                    Regroup {
                        old: Some(old),
                        new: Some(new),
                    },
                )),
                None,
            ],
            (old, new) => [
                old.map(|o| {
                    (
                        o.0.clone(),
                        Regroup {
                            old: Some(o),
                            new: None,
                        },
                    )
                }),
                new.map(|n| {
                    (
                        n.0.clone(),
                        Regroup {
                            old: None,
                            new: Some(n),
                        },
                    )
                }),
            ],
        }
    }
}

impl Runner {
    /// Makes this runner the rows half of a regroup: changes are handed out by
    /// [`Runner::regroups`] instead of applied here.
    pub fn hand_over_regroups(&mut self) {
        self.regroups.get_or_insert_with(Vec::new);
    }

    /// Whether this runner is the rows half of a regroup.
    pub fn hands_over_regroups(&self) -> bool {
        self.regroups.is_some()
    }

    /// The changes of group made so far (rows half only; see
    /// [`Runner::hand_over_regroups`]).
    pub fn regroups(&mut self) -> impl Iterator<Item = Regroup> + '_ {
        self.regroups
            .iter_mut()
            .flat_map(|changes| changes.drain(..))
    }

    /// Applies a change of group made by a rows half (groups half: a runner made by
    /// [`Runner::stage`] from the aggregate's table side), emitting the changed groups'
    /// rows.
    pub fn apply_regroup(&mut self, change: Regroup) {
        let steps = self.steps.clone();
        let Some(a) = steps[self.from_step..].iter().find_map(|s| match s {
            Step::Aggregate(a) => Some(a),
            _ => None,
        }) else {
            return;
        };
        self.apply_change(a, change);
    }

    /// The aggregate of table row `r`, regrouped by `group` (by its key without one).
    pub(super) fn table_aggregate(&mut self, a: &Aggregate, group: Option<&Expr>, r: Rec) {
        let Some(change) = self.regroup_row(group, r) else {
            return;
        };
        match &mut self.regroups {
            Some(out) => out.push(change),
            None => self.apply_change(a, change),
        }
    }

    /// The rows half: the row's group now, and what it replaces. `None` for a row
    /// without a key, which is no row.
    fn regroup_row(&mut self, group: Option<&Expr>, r: Rec) -> Option<Regroup> {
        if r.key.is_null() {
            return None;
        }
        let k = KeyText::of(&r.key);
        let new_group = if r.value.is_null() {
            Val::Null
        } else {
            match group {
                Some(e) => e.eval(&scope(&r)),
                None => r.key.clone(),
            }
        };
        let old = self.agg.rows.remove(&k);
        // A delete, or a row whose group is null, counts nowhere from now on.
        let new = (!new_group.is_null()).then(|| {
            self.agg.rows.insert(k, (new_group.clone(), r.clone()));
            (new_group, r)
        });
        Some(Regroup { old, new })
    }

    /// The groups half: subtracts the row's old contribution from its old group, then
    /// adds the new one to its new group; each changed group emits its new state, once (a
    /// row that stays in its group is one change).
    fn apply_change(&mut self, a: &Aggregate, Regroup { old, new }: Regroup) {
        let same = matches!((&old, &new), (Some((g, _)), Some((h, _))) if g == h);
        if let Some((old_group, old)) = &old {
            let g = KeyText::of(old_group);
            if let Some((gk, accs)) = self.agg.groups.get_mut(&g) {
                accs.add(a, old, -1.0);
                if !same {
                    let row = Self::group_row(a, gk, accs);
                    self.emit(row);
                }
            }
        }
        let Some((new_group, r)) = new else {
            return;
        };
        let (gk, accs) = self
            .agg
            .groups
            .entry(KeyText::of(&new_group))
            .or_insert_with(|| (new_group, Accs::new(a)));
        accs.add(a, &r, 1.0);
        let row = Self::group_row(a, gk, accs);
        self.emit(row);
    }
}

#[cfg(test)]
mod tests {
    use super::Regroup;
    use crate::engine::{Record, Runner, run_lines};
    use crate::spec::PipelineSpec;
    use crate::value::Val;

    const SPEC: &str = "name: regroup\nsources: [{name: users, kind: table}]\nsteps:\n  - group_by: $value\n  - aggregate: {ops: {total: {sum: len($key)}}}\n";

    /// The golden case's table rows run through a rows half and a groups half, as the
    /// executor runs them apart: each change split by group (as it is routed), then
    /// applied. The groups half emits what one runner emits.
    #[test]
    fn the_two_halves_apart_emit_what_one_runner_does() {
        let spec = PipelineSpec::from_yaml(SPEC).expect("spec");
        let input = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/cases/table_regroup/input.jsonl"
        ))
        .expect("case input");
        let (whole, _) = run_lines(&spec, &input).expect("replay");

        let mut rows = Runner::stage(spec.clone(), 0);
        rows.hand_over_regroups();
        let mut groups = Runner::stage(spec.clone(), 0);
        let mut emitted = Vec::new();
        let mut moves = 0;
        for (i, line) in input.lines().enumerate() {
            let (source, rec) = rows
                .parse(i + 1, serde_json::from_str(line).expect("json"))
                .expect("line");
            rows.apply(source, rec);
            assert!(rows.drain().is_empty(), "the rows half emits nothing");
            for change in rows.regroups().collect::<Vec<_>>() {
                let parts = change.by_group();
                moves += usize::from(parts.iter().all(Option::is_some));
                for (_, part) in parts.into_iter().flatten() {
                    groups.apply_regroup(part);
                    emitted.extend(groups.drain());
                }
            }
        }
        assert!(moves > 0, "the case moves a row between groups");
        assert_eq!(emitted, whole);
    }

    /// A row that stays in its group is one change to one group; a move is two.
    #[test]
    fn a_change_is_split_only_when_the_group_changes() {
        let rec = |v: &str| Record {
            key: Val::from("k"),
            value: Val::from(v),
            ts: 0,
        };
        let stay = Regroup {
            old: Some((Val::from("A"), rec("A"))),
            new: Some((Val::from("A"), rec("A"))),
        };
        let [first, second] = stay.clone().by_group();
        assert_eq!(first, Some((Val::from("A"), stay)));
        assert_eq!(second, None);
        let [old, new] = Regroup {
            old: Some((Val::from("A"), rec("A"))),
            new: Some((Val::from("B"), rec("B"))),
        }
        .by_group();
        assert_eq!(
            old.map(|(g, c)| (g, c.new.is_none())),
            Some((Val::from("A"), true))
        );
        assert_eq!(
            new.map(|(g, c)| (g, c.old.is_none())),
            Some((Val::from("B"), true))
        );
    }
}
