//! Source connectors: one partition of a generator or of a set of files. A connector's
//! position is what a checkpoint stores; opening at a position resumes exactly after the
//! last record the checkpoint covers, so a restored run reads what the lost one would
//! have (generators are a pure function of partition, index and the pipeline's epoch).

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;

use compact_str::CompactString;
use serde_json::{Value, json};

use super::config::{Format, GenConfig, GenKind, InputConfig, PartitionBy};
use super::nexmark;
use super::route::stable_hash;
use crate::engine::{Record, object};
use crate::spec::{Source, SourceKind};
use crate::value::{Obj, Val};

/// What a connector has next.
pub(crate) enum Next {
    /// A record (a JSON object, as a replay input line).
    Record(Val),
    /// A record read already: what [`crate::engine::parse_record`] would make of the
    /// object (a generator knows its key and time as it makes them, so nothing is looked
    /// up again).
    Parsed(Record),
    /// A line that is not a record: skipped, counted, reported.
    Bad(String),
    /// Nothing yet (a rate-limited generator ahead of the clock).
    NotYet,
    /// The input ended.
    Done,
}

/// One partition of one input.
pub(crate) trait Connector: Send {
    /// The next record, if any; `now_ms` is the wall clock.
    fn next(&mut self, now_ms: i64) -> Result<Next, String>;
    /// Where the next call reads from.
    fn position(&self) -> Value;
}

/// Opens partition `partition` of `cfg` at `position` (from a checkpoint) or the start.
pub(crate) fn open(
    cfg: &InputConfig,
    source: &Source,
    partition: usize,
    partitions: usize,
    epoch_ms: i64,
    position: Option<&Value>,
) -> Result<Box<dyn Connector>, String> {
    match cfg {
        InputConfig::Generator(g) => {
            let next = position.and_then(|p| p["next"].as_u64()).unwrap_or(0);
            let mut generator = Generator::new(g, partition, partitions, epoch_ms, next);
            generator.table = source.kind == SourceKind::Table;
            // Its records carry their time in `ts`: read already, unless the source
            // looks for the time elsewhere (then it is an error, reported per record).
            generator.parsed = !generator.table && source.timestamp == "ts";
            Ok(Box::new(generator))
        }
        InputConfig::Files { paths, format, by } => {
            let mine: Vec<PathBuf> = match by {
                PartitionBy::File => paths
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % partitions == partition)
                    .map(|(_, p)| p.clone())
                    .collect(),
                PartitionBy::Key(_) => paths.clone(),
            };
            let filter = match by {
                PartitionBy::Key(f) => Some((f.clone(), partition, partitions)),
                PartitionBy::File => None,
            };
            let mut files = Files {
                paths: mine,
                format: *format,
                filter,
                index: 0,
                offset: 0,
                line: 0,
                reader: None,
                header: None,
            };
            if let Some(p) = position {
                files.index = p["file"].as_u64().unwrap_or(0) as usize;
                files.offset = p["offset"].as_u64().unwrap_or(0);
                files.line = p["line"].as_u64().unwrap_or(0);
            }
            Ok(Box::new(files))
        }
    }
}

/// SplitMix64: cheap, deterministic pseudo-random values from an index.
pub(super) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

struct Generator {
    kind: GenKind,
    partition: u64,
    partitions: u64,
    epoch_ms: i64,
    /// Records per second in this partition.
    rate: Option<f64>,
    /// Records this partition makes in all.
    limit: Option<u64>,
    next: u64,
    /// The source is a table: records are `{key, value: {…}, ts}`.
    table: bool,
    /// Records go out as [`Next::Parsed`].
    parsed: bool,
}

// A static, not a const: a const array indexed at run time is built and dropped per use.
static CHANNELS: [CompactString; 4] = [
    CompactString::const_new("apple"),
    CompactString::const_new("google"),
    CompactString::const_new("facebook"),
    CompactString::const_new("baidu"),
];
// A bid's field names.
const AUCTION: CompactString = CompactString::const_new("auction");
const BIDDER: CompactString = CompactString::const_new("bidder");
const CHANNEL: CompactString = CompactString::const_new("channel");
const KEY: CompactString = CompactString::const_new("key");
const PRICE: CompactString = CompactString::const_new("price");
const TS: CompactString = CompactString::const_new("ts");
const FIRST: [&str; 8] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie",
];
const LAST: [&str; 8] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones",
];
const CITIES: [&str; 6] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
];
const STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];

impl Generator {
    fn new(g: &GenConfig, partition: usize, partitions: usize, epoch_ms: i64, next: u64) -> Self {
        let (p, n) = (partition as u64, partitions as u64);
        Generator {
            kind: g.kind,
            partition: p,
            partitions: n,
            epoch_ms,
            rate: g.rate.map(|r| r as f64 / n as f64),
            limit: g.limit.map(|l| l / n + u64::from(p < l % n)),
            next,
            table: false,
            parsed: false,
        }
    }

    fn ts(&self, j: u64) -> i64 {
        match self.rate {
            Some(r) => self.epoch_ms + (j as f64 * 1000.0 / r) as i64,
            // Full speed, as Nexmark's generator: 10 events per event-time millisecond
            // (1 person, 3 auctions and 46 bids in 50), so people and auctions are spaced
            // to meet the bids' time.
            None => {
                let g = j * self.partitions + self.partition;
                self.epoch_ms
                    + match self.kind {
                        GenKind::Persons => (g * 5) as i64,
                        GenKind::Auctions => (g * 5 / 3) as i64,
                        _ => (j / 10) as i64,
                    }
            }
        }
    }

    fn keyed(&self, key: Val, fields: Val, ts: i64) -> (Val, Val) {
        if self.table {
            (
                key.clone(),
                object([("key", key), ("value", fields), ("ts", ts.into())]),
            )
        } else {
            let mut v = fields;
            if let Val::Obj(m) = &mut v {
                m.insert("key", key.clone());
                m.insert("ts", ts.into());
            }
            (key, v)
        }
    }

    /// Record `j`: its key, the object (with its `key` and `ts` fields) and its time.
    fn record(&self, j: u64) -> (Val, Val, i64) {
        let ts = self.ts(j);
        match self.kind {
            GenKind::Sensors { keys } => {
                // This partition's sensors are those with `s mod partitions = partition`,
                // so one sensor's readings all come from one partition.
                let (p, n) = (self.partition, self.partitions);
                let owned = (keys - p).div_ceil(n);
                let h = mix((p << 40) ^ j);
                let s = p + n * (h % owned);
                let value = 15.0 + ((h >> 20) % 2000) as f64 / 100.0;
                let name = Val::from(format!("sensor-{s}"));
                let v = object([
                    ("key", name.clone()),
                    ("sensor", name.clone()),
                    ("ts", ts.into()),
                    ("value", value.into()),
                ]);
                (name, v, ts)
            }
            GenKind::Bids => {
                let bid = nexmark::bid(j * self.partitions + self.partition);
                // In name order, as an object keeps its fields.
                let v = Val::Obj(Obj::from_sorted_fields(vec![
                    (AUCTION, bid.auction.into()),
                    (BIDDER, bid.bidder.into()),
                    (CHANNEL, Val::Str(CHANNELS[bid.channel].clone())),
                    (KEY, bid.auction.into()),
                    (PRICE, bid.price.into()),
                    (TS, ts.into()),
                ]));
                (bid.auction.into(), v, ts)
            }
            GenKind::Persons => {
                let g = j * self.partitions + self.partition;
                let id = 1000 + g;
                let h = mix(g ^ 0x5EED);
                let (key, v) = self.keyed(
                    id.into(),
                    object([
                        ("id", id.into()),
                        (
                            "name",
                            format!(
                                "{} {}",
                                FIRST[(h % 8) as usize],
                                LAST[((h >> 8) % 8) as usize]
                            )
                            .into(),
                        ),
                        ("city", CITIES[((h >> 16) % 6) as usize].into()),
                        ("state", STATES[((h >> 24) % 6) as usize].into()),
                    ]),
                    ts,
                );
                (key, v, ts)
            }
            GenKind::Auctions => {
                let g = j * self.partitions + self.partition;
                let h = mix(g ^ 0xA0C7);
                // People are made at a third of the auctions' rate: person g/3 exists.
                let seller = 1000 + g / 3;
                let (key, v) = self.keyed(
                    seller.into(),
                    object([
                        ("id", (1000 + g).into()),
                        ("seller", seller.into()),
                        ("category", (10 + h % 5).into()),
                        ("reserve", (100 + (h >> 8) % 10_000).into()),
                    ]),
                    ts,
                );
                (key, v, ts)
            }
        }
    }
}

impl Connector for Generator {
    fn next(&mut self, now_ms: i64) -> Result<Next, String> {
        if self.limit.is_some_and(|l| self.next >= l) {
            return Ok(Next::Done);
        }
        if self.rate.is_some() && self.ts(self.next) > now_ms {
            return Ok(Next::NotYet);
        }
        let (key, value, ts) = self.record(self.next);
        self.next += 1;
        Ok(if self.parsed {
            Next::Parsed(Record { key, value, ts })
        } else {
            Next::Record(value)
        })
    }

    fn position(&self) -> Value {
        json!({"next": self.next})
    }
}

struct Files {
    paths: Vec<PathBuf>,
    format: Option<Format>,
    /// By key: (field, partition, partitions).
    filter: Option<(String, usize, usize)>,
    index: usize,
    offset: u64,
    /// Lines read in the current file, for error messages.
    line: u64,
    reader: Option<BufReader<File>>,
    header: Option<Vec<String>>,
}

impl Files {
    fn format(&self) -> Format {
        self.format.unwrap_or_else(|| {
            match self.paths[self.index].extension().and_then(|e| e.to_str()) {
                Some("csv") => Format::Csv,
                _ => Format::JsonLines,
            }
        })
    }

    fn open_current(&mut self) -> Result<(), String> {
        let path = &self.paths[self.index];
        let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut reader = BufReader::new(file);
        self.header = None;
        if self.format() == Format::Csv {
            let mut first = String::new();
            let n = reader
                .read_line(&mut first)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            self.header = Some(csv_fields(first.trim_end_matches(['\r', '\n'])));
            if self.offset == 0 {
                self.offset = n as u64;
                self.line = 1;
            }
        }
        reader
            .seek(SeekFrom::Start(self.offset))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        self.reader = Some(reader);
        Ok(())
    }

    fn parse(&self, text: &str) -> Result<Val, String> {
        match &self.header {
            None => serde_json::from_str(text).map_err(|e| format!("not JSON: {e}")),
            Some(header) => {
                let fields = csv_fields(text);
                if fields.len() != header.len() {
                    return Err(format!(
                        "{} fields where the header has {}",
                        fields.len(),
                        header.len()
                    ));
                }
                let fields = header
                    .iter()
                    .zip(fields)
                    .map(|(name, v)| {
                        let value = v
                            .parse::<i64>()
                            .map(Val::from)
                            .or_else(|_| v.parse::<f64>().map(Val::from))
                            .unwrap_or(Val::from(v));
                        (name.as_str().into(), value)
                    })
                    .collect();
                Ok(Val::Obj(Obj::from_fields(fields)))
            }
        }
    }
}

impl Connector for Files {
    fn next(&mut self, _now_ms: i64) -> Result<Next, String> {
        loop {
            if self.index >= self.paths.len() {
                return Ok(Next::Done);
            }
            if self.reader.is_none() {
                self.open_current()?;
            }
            let mut text = String::new();
            let reader = self.reader.as_mut().ok_or("no reader")?;
            let n = reader
                .read_line(&mut text)
                .map_err(|e| format!("{}: {e}", self.paths[self.index].display()))?;
            if n == 0 {
                self.reader = None;
                self.index += 1;
                self.offset = 0;
                self.line = 0;
                continue;
            }
            self.offset += n as u64;
            self.line += 1;
            let line = text.trim_end_matches(['\r', '\n']);
            if line.trim().is_empty() {
                continue;
            }
            let where_ = || format!("{} line {}", self.paths[self.index].display(), self.line);
            let v = match self.parse(line) {
                Ok(v) => v,
                Err(e) => {
                    // Every partition reads a file split by key: one of them reports it.
                    if let Some((_, p, n)) = &self.filter
                        && stable_hash(line.as_bytes()) % *n as u64 != *p as u64
                    {
                        continue;
                    }
                    return Ok(Next::Bad(format!("{}: {e}", where_())));
                }
            };
            if let Some((field, p, n)) = &self.filter {
                let k = v.get(field).map(Val::to_string).unwrap_or_default();
                if stable_hash(k.as_bytes()) % *n as u64 != *p as u64 {
                    continue;
                }
            }
            return Ok(Next::Record(v));
        }
    }

    fn position(&self) -> Value {
        json!({"file": self.index, "offset": self.offset, "line": self.line})
    }
}

/// Splits a CSV line: commas, double-quoted fields with `""` for a quote.
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_handle_quotes() {
        assert_eq!(csv_fields(r#"a,"b,c","d""e""#), vec!["a", "b,c", "d\"e"]);
        assert_eq!(csv_fields(""), vec![""]);
    }

    /// A generator's records read already are what reading its objects gives, for every
    /// kind; a source that looks for its time in another field gets the objects.
    #[test]
    fn a_generators_read_records_are_its_objects_read() {
        let spec =
            crate::spec::PipelineSpec::from_yaml("name: g\nsources: [{name: s}]\nsteps: []\n")
                .expect("spec");
        let kinds = [
            GenKind::Sensors { keys: 10 },
            GenKind::Bids,
            GenKind::Persons,
            GenKind::Auctions,
        ];
        for kind in kinds {
            let config = GenConfig {
                kind,
                rate: None,
                limit: Some(50),
            };
            let input = InputConfig::Generator(config.clone());
            let mut parsed = open(&input, &spec.sources[0], 1, 2, 1_000, None).expect("open");
            let mut objects = Generator::new(&config, 1, 2, 1_000, 0);
            for _ in 0..25 {
                let (Ok(Next::Parsed(rec)), Ok(Next::Record(v))) =
                    (parsed.next(0), objects.next(0))
                else {
                    panic!("{kind:?}: expected a read record and an object");
                };
                let (_, read) = crate::engine::parse_record(&spec, 0, v).expect("reads");
                assert_eq!(rec, read, "{kind:?}");
            }
        }
        let mut elsewhere = spec.sources[0].clone();
        elsewhere.timestamp = "time".into();
        let input = InputConfig::Generator(GenConfig {
            kind: GenKind::Bids,
            rate: None,
            limit: Some(1),
        });
        let mut g = open(&input, &elsewhere, 0, 1, 0, None).expect("open");
        assert!(matches!(g.next(0), Ok(Next::Record(_))));
    }

    #[test]
    fn a_generator_resumes_where_its_position_says() {
        let cfg = GenConfig {
            kind: GenKind::Sensors { keys: 10 },
            rate: None,
            limit: Some(20),
        };
        let mut a = Generator::new(&cfg, 1, 2, 0, 0);
        let all: Vec<Val> = std::iter::from_fn(|| match a.next(0) {
            Ok(Next::Record(v)) => Some(v),
            _ => None,
        })
        .collect();
        assert_eq!(all.len(), 10);
        // Partition 1 of 2 owns the odd sensors only.
        assert!(all.iter().all(|v| {
            let s = v.get("sensor").and_then(Val::as_str).unwrap_or("");
            s.trim_start_matches("sensor-").parse::<u64>().unwrap_or(0) % 2 == 1
        }));
        let mut b = Generator::new(&cfg, 1, 2, 0, 4);
        match b.next(0) {
            Ok(Next::Record(v)) => assert_eq!(v, all[4]),
            _ => panic!("no record"),
        }
    }
}
