//! A runner's state as a checkpoint stores it (maps with composite keys as lists), and
//! back.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::acc::Accs;
use super::joins::{Buffered, StreamJoin};
use super::{AggState, Metrics, Rec, Runner, Session, Win, window_gap, windowed_aggregate};
use crate::spec::{PipelineSpec, Step};

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

impl Runner {
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
}
