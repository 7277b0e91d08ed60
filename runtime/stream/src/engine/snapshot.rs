//! A runner's state as a checkpoint stores it (maps with composite keys as lists), and
//! back.

use std::cell::Cell;
use std::collections::BTreeMap;

use hashbrown::HashMap;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use super::acc::Accs;
use super::joins::{Buffered, StreamJoin};
use super::key::Spare;
use super::panes::{Panes, Part};
use super::{
    AggState, KeyText, Metrics, Rec, Runner, Session, Win, window_gap, windowed_aggregate,
};
use crate::spec::{PipelineSpec, Step};
use crate::value::Val;

/// A runner's state, as a checkpoint stores it (maps with composite keys as lists); read
/// back by [`Runner::restore`], written by [`Borrowed`] in the same shape.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct Snapshot {
    from_step: usize,
    max_ts: Vec<(String, i64)>,
    given: Option<Vec<i64>>,
    tables: [Vec<(KeyText, Val)>; 2],
    groups: Vec<(KeyText, Val, Accs)>,
    rows: Vec<(KeyText, Val, Rec)>,
    windows: Vec<((i64, i64, KeyText), Win)>,
    /// Hopping windows kept as panes, by (pane start, key); absent from checkpoints
    /// written before panes, which restore with their windows.
    #[serde(default)]
    panes: Vec<((i64, KeyText), Part)>,
    sessions: Vec<(KeyText, Val, Vec<Session>)>,
    #[serde(default)]
    buffered: Vec<Buffered>,
    /// Rows other tasks ranked, by window (end, start) (see [`Runner::rank_row`]).
    #[serde(default)]
    ranked: Vec<((i64, i64), Vec<Val>)>,
    metrics: Metrics,
    advanced_to: Option<i64>,
}

/// Writes an iterator's items as a JSON array as it goes, without collecting them first.
/// Taken on the first write: a `Seq` is written once.
struct Seq<I>(Cell<Option<I>>);

impl<I> Seq<I> {
    fn new(items: I) -> Seq<I> {
        Seq(Cell::new(Some(items)))
    }
}

impl<I: Iterator<Item = T>, T: Serialize> Serialize for Seq<I> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.take().into_iter().flatten())
    }
}

/// A runner's state written in [`Snapshot`]'s shape, field for field, straight from the
/// runner's own maps. Building a `Snapshot` (a copy of every window and key) and then a
/// `Value` of it (another) before writing cost 14 % of a windowed pipeline's CPU.
struct Borrowed<'a>(&'a Runner);

impl Serialize for Borrowed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let agg = &r.agg;
        let mut st = serializer.serialize_struct("Snapshot", 13)?;
        st.serialize_field("from_step", &r.from_step)?;
        let max_ts = (r.spec.sources.iter().zip(&r.max_ts))
            .filter_map(|(s, m)| m.map(|m| (s.name.as_str(), m)));
        st.serialize_field("max_ts", &Seq::new(max_ts))?;
        st.serialize_field("given", &r.given)?;
        st.serialize_field(
            "tables",
            &[Seq::new(r.tables[0].iter()), Seq::new(r.tables[1].iter())],
        )?;
        st.serialize_field(
            "groups",
            &Seq::new(agg.groups.iter().map(|(k, (g, a))| (k, g, a))),
        )?;
        st.serialize_field(
            "rows",
            &Seq::new(agg.rows.iter().map(|(k, (g, row))| (k, g, row))),
        )?;
        st.serialize_field(
            "windows",
            &Seq::new(agg.windows.iter().flat_map(|((end, start), keys)| {
                keys.iter().map(move |(k, w)| ((end, start, k), w))
            })),
        )?;
        st.serialize_field(
            "panes",
            &Seq::new(
                agg.panes
                    .by_start
                    .iter()
                    .flat_map(|(start, pane)| pane.parts().map(move |(k, p)| ((start, k), p))),
            ),
        )?;
        st.serialize_field(
            "sessions",
            &Seq::new(agg.sessions.iter().map(|(k, (v, s))| (k, v, s))),
        )?;
        st.serialize_field("buffered", &Seq::new(r.ss.entries.values()))?;
        st.serialize_field("ranked", &Seq::new(agg.ranked.iter()))?;
        st.serialize_field("metrics", &r.metrics)?;
        st.serialize_field("advanced_to", &r.advanced_to)?;
        st.end()
    }
}

impl Runner {
    /// The runner's state, for a checkpoint: JSON, as [`Runner::restore`] reads it.
    ///
    /// # Errors
    /// None expected (every key is a string); the serialiser's message if there is one.
    pub fn snapshot(&self) -> Result<Vec<u8>, String> {
        serde_json::to_vec(&Borrowed(self)).map_err(|e| e.to_string())
    }

    /// A runner of `spec` in the state [`Runner::snapshot`] gave.
    ///
    /// # Errors
    /// A snapshot that is not one, or of another shape of pipeline.
    pub fn restore(spec: PipelineSpec, snapshot: &[u8]) -> Result<Runner, String> {
        let s: Snapshot =
            serde_json::from_slice(snapshot).map_err(|e| format!("not a runner snapshot: {e}"))?;
        if s.given
            .as_ref()
            .is_some_and(|g| g.len() != spec.sources.len())
            || s.from_step > spec.steps.len()
        {
            return Err("the snapshot is of a pipeline with other sources or steps".into());
        }
        let had_windows = !s.windows.is_empty();
        let windowed = windowed_aggregate(&spec);
        let mut ss = StreamJoin::default();
        if let Some(w) = spec.join.as_ref().and_then(|j| j.window) {
            for b in s.buffered {
                ss.insert(&w, b);
            }
        }
        Ok(Runner {
            ss,
            from_step: s.from_step,
            // By name: a source the spec no longer has is dropped.
            max_ts: spec
                .sources
                .iter()
                .map(|src| {
                    s.max_ts
                        .iter()
                        .find(|(name, _)| *name == src.name)
                        .map(|(_, m)| *m)
                })
                .collect(),
            given_min: s
                .given
                .as_deref()
                .map_or(i64::MIN, |g| super::given_min(&spec, g)),
            given: s.given,
            tables: s.tables.map(|t| t.into_iter().collect()),
            agg: AggState {
                groups: s.groups.into_iter().map(|(k, g, a)| (k, (g, a))).collect(),
                rows: s.rows.into_iter().map(|(k, g, r)| (k, (g, r))).collect(),
                windows: {
                    let mut m: BTreeMap<(i64, i64), HashMap<KeyText, Win>> = BTreeMap::new();
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
                key_text: KeyText::default(),
                spare_window: Spare::default(),
                panes: {
                    // Windows kept as windows by an older checkpoint stay windows.
                    let mut panes =
                        Panes::for_aggregate(windowed.as_ref().filter(|_| !had_windows));
                    for ((start, k), p) in s.panes {
                        panes.restore(start, k, p);
                    }
                    panes
                },
                ranked: s.ranked.into_iter().collect(),
            },
            out: Vec::new(),
            map_values: Vec::new(),
            metrics: s.metrics,
            advanced_to: s.advanced_to,
            regroups: None,
            ranked_apart: false,
            steps: std::sync::Arc::new(spec.steps.clone()),
            join_spec: spec.join.clone().map(std::sync::Arc::new),
            windowed: windowed.map(std::sync::Arc::new),
            spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checkpoints written before [`Borrowed`] came from `Snapshot`'s derived `Serialize`:
    /// for every golden case (windows, sessions, tables, joins), cut halfway, what
    /// `Borrowed` writes must read back into a `Snapshot` that writes the very same JSON.
    #[test]
    fn the_borrowed_writer_writes_what_the_snapshot_struct_would() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
        let mut kinds = std::collections::BTreeSet::new();
        for case in std::fs::read_dir(&dir).expect("cases") {
            let case = case.expect("entry").path();
            let read = |f: &str| std::fs::read_to_string(case.join(f)).expect("file");
            let spec = PipelineSpec::from_yaml(&read("pipeline.yaml")).expect("spec");
            let input = read("input.jsonl");
            let lines: Vec<&str> = input.lines().filter(|l| !l.trim().is_empty()).collect();
            let mut runner = Runner::new(spec);
            for (i, line) in lines[..lines.len() / 2].iter().enumerate() {
                let _ = runner.push(i + 1, serde_json::from_str(line).expect("json"));
            }
            let bytes = runner.snapshot().expect("snapshot");
            let written: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            let owned: Snapshot = serde_json::from_slice(&bytes).expect("a Snapshot");
            for (field, v) in written.as_object().expect("object") {
                if v.as_array().is_some_and(|a| !a.is_empty()) {
                    kinds.insert(field.clone());
                }
            }
            assert_eq!(
                serde_json::to_value(&owned).expect("value"),
                written,
                "{}",
                case.display()
            );
        }
        // The cases hold state of every kind, so each field's shape was compared.
        for field in [
            "max_ts", "tables", "groups", "rows", "windows", "panes", "sessions", "buffered",
        ] {
            assert!(
                kinds.contains(field),
                "no golden case has {field} state: {kinds:?}"
            );
        }
    }
}
