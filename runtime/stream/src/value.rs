//! [`Val`]: the values records carry between a pipeline's operators, and the pipeline
//! reads and writes as JSON.
//!
//! Why not `serde_json::Value`: its objects are `BTreeMap<String, Value>`, so every record
//! cost an allocation per field name and per tree node to build, and as many frees to drop,
//! which was two thirds of a pass-through pipeline's CPU (`make bench`). Here an object is
//! one vector of (name, value) pairs kept sorted by name, and names and short strings are
//! stored inline (up to 24 bytes), so a generated record is one allocation and shares no
//! reference count that the threads making and dropping records would bounce between them.
//!
//! JSON stays exactly as it was: numbers are `serde_json::Number` (the same integer and
//! float cases, the same formatting and equality), and objects are written with their
//! keys sorted, as a `BTreeMap` writes them. So a key's JSON text (which routes it to its
//! partition, and keys its state) and a checkpoint's bytes are what they were.

use std::cmp::Ordering;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering as Atomic};

use compact_str::CompactString;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Number;

/// A [`FieldName`]'s place in an object that does not have it.
const ABSENT: usize = usize::MAX;

/// A JSON value, as records carry it.
#[derive(Clone, PartialEq, Default)]
pub enum Val {
    /// `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as `serde_json` holds it.
    Num(Number),
    /// A string (inline up to 24 bytes).
    Str(CompactString),
    /// An array.
    Arr(Vec<Val>),
    /// An object.
    Obj(Obj),
}

/// Field names in order, compared here rather than by `str`'s `Ord`, which calls libc's
/// `memcmp`: names are a few bytes, and the calls were a fifth of a filtering pipeline's
/// CPU. The order is the same (bytewise, then shorter first).
#[inline]
pub(crate) fn name_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// Whether two field names are equal: lengths first, then the bytes as two machine words
/// that overlap (for names up to 16 bytes: nearly all), not byte by byte (some ten
/// instructions a byte) nor by a call to memcmp.
#[inline]
pub(crate) fn name_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

/// The 4 bytes of `s` from `at` (which the caller keeps in bounds) as one word.
#[inline]
fn word4(s: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(s[at..at + 4].try_into().unwrap_or_default())
}

/// The 8 bytes of `s` from `at` (which the caller keeps in bounds) as one word.
#[inline]
fn word8(s: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(s[at..at + 8].try_into().unwrap_or_default())
}

/// A field name an expression reads from record after record, with the position in the
/// object where it was found last.
///
/// Why: the records of a stream have the same fields, so the next one has it at the same
/// place and one comparison finds it. A scan compared it with every name before it: in a
/// bid, 137 instructions per lookup, 16 % of a map's pipeline (callgrind). The position is
/// an atomic only so that an expression may be shared between threads: relaxed loads and
/// stores are plain moves, and a stale position only costs the scan.
pub struct FieldName {
    /// A plain `str`, not inline: read on every lookup, and a `CompactString` decodes
    /// where its text is each time.
    name: Box<str>,
    at: AtomicUsize,
}

impl FieldName {
    /// The name, not yet found anywhere.
    pub fn new(name: impl Into<Box<str>>) -> FieldName {
        FieldName {
            name: name.into(),
            at: AtomicUsize::new(0),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl Clone for FieldName {
    fn clone(&self) -> FieldName {
        FieldName {
            name: self.name.clone(),
            at: AtomicUsize::new(self.at.load(Atomic::Relaxed)),
        }
    }
}

/// Names are equal when their text is: where they were found is no part of them.
impl PartialEq for FieldName {
    fn eq(&self, other: &FieldName) -> bool {
        self.name == other.name
    }
}

impl fmt::Debug for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.name, f)
    }
}

/// An object: fields sorted by name, each name once.
#[derive(Clone, PartialEq, Default)]
pub struct Obj(Vec<(CompactString, Val)>);

/// Fields that own no memory (numbers, inline strings and names: nearly all) are let go
/// here without a call: the drop glue called `Val`'s own, recursive and so out of line,
/// for each field, and saved and restored six registers around a tag test.
impl Drop for Obj {
    fn drop(&mut self) {
        self.truncate(0);
    }
}

impl Obj {
    /// Drops the fields from `len` on (see `Drop`).
    fn truncate(&mut self, len: usize) {
        while self.0.len() > len
            && let Some((name, value)) = self.0.pop()
        {
            if name.is_heap_allocated() {
                drop(name);
            } else {
                std::mem::forget(name);
            }
            match value {
                Val::Null | Val::Bool(_) => std::mem::forget(value),
                // A number is plain data, unless a crate in the build turns on
                // serde_json's `arbitrary_precision` (a string then).
                Val::Num(_) if !std::mem::needs_drop::<Number>() => std::mem::forget(value),
                Val::Str(s) if !s.is_heap_allocated() => std::mem::forget(s),
                value => drop(value),
            }
        }
    }

    /// An empty object with room for `n` fields.
    pub fn with_capacity(n: usize) -> Obj {
        Obj(Vec::with_capacity(n))
    }

    /// An object of these fields in any order; of a name given twice, the last wins.
    pub fn from_fields(mut fields: Vec<(CompactString, Val)>) -> Obj {
        if !fields.is_sorted_by(|a, b| name_cmp(&a.0, &b.0).is_lt()) {
            // In place, no second vector: reversed, then a stable sort puts the last of
            // equal names first, and `dedup_by` keeps the first of each run.
            fields.reverse();
            fields.sort_by(|a, b| name_cmp(&a.0, &b.0));
            fields.dedup_by(|a, b| name_eq(&a.0, &b.0));
        }
        Obj(fields)
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        // Records have a handful of fields: a scan beats the binary search's branches.
        if self.0.len() <= 8 {
            for (i, (n, _)) in self.0.iter().enumerate() {
                match name_cmp(n, name) {
                    Ordering::Less => {}
                    Ordering::Equal => return Ok(i),
                    Ordering::Greater => return Err(i),
                }
            }
            return Err(self.0.len());
        }
        self.0.binary_search_by(|(n, _)| name_cmp(n, name))
    }

    /// An object of these fields, which come in name order, each name once (checked in
    /// debug builds only): a generator's records, built in order, skip the check.
    pub fn from_sorted_fields(fields: Vec<(CompactString, Val)>) -> Obj {
        debug_assert!(fields.is_sorted_by(|a, b| name_cmp(&a.0, &b.0).is_lt()));
        Obj(fields)
    }

    /// Makes the object one of the fields `names` (in name order, each once), in place:
    /// per name in turn, a `kept` field is left as it is (null if missing), any other
    /// takes the next of `computed`; every other field goes. What a map step does to its
    /// record: no allocation, and a field it keeps is neither copied nor dropped.
    ///
    /// Where each name is in the object is looked for first where it was in the last
    /// object (see [`FieldName`]): a stream's records have one shape, so checking those
    /// places (one comparison per name) replaces a search per name.
    pub fn project(
        &mut self,
        names: &[FieldName],
        kept: &[bool],
        mut computed: impl Iterator<Item = Val>,
    ) {
        // The places, read once: another thread's map may store others meanwhile. On the
        // stack for up to 8 names (a `SmallVec` cost 50 instructions a record here).
        let (mut stack, mut heap) = ([ABSENT; 8], Vec::new());
        let at: &mut [usize] = match stack.get_mut(..names.len()) {
            Some(at) => at,
            None => {
                heap.resize(names.len(), ABSENT);
                &mut heap
            }
        };
        for (a, n) in at.iter_mut().zip(names) {
            *a = n.at.load(Atomic::Relaxed);
        }
        if !self.holds_at(names, kept, at) {
            for (a, n) in at.iter_mut().zip(names) {
                *a = self.find(&n.name).unwrap_or(ABSENT);
                n.at.store(*a, Atomic::Relaxed);
            }
        }
        // The names found, to the front in order (their places only increase, and each is
        // at or after the front), then the rest dropped.
        let mut front = 0;
        for &a in at.iter().filter(|a| **a != ABSENT) {
            if a != front {
                self.0.swap(front, a);
            }
            front += 1;
        }
        self.truncate(front);
        for (i, ((name, kept), a)) in names.iter().zip(kept).zip(&*at).enumerate() {
            if *a == ABSENT {
                self.0
                    .insert(i, (CompactString::from(name.as_str()), Val::Null));
            }
            if !kept && let Some(v) = computed.next() {
                self.0[i].1 = v;
            }
        }
    }

    /// Whether `names` are where `at` says, in increasing places, with every `kept` one
    /// present. A name said [`ABSENT`] and computed is not checked: should it be there
    /// after all, that field goes and the computed one takes its name, as it would have.
    fn holds_at(&self, names: &[FieldName], kept: &[bool], at: &[usize]) -> bool {
        let mut next = 0;
        for ((name, kept), &a) in names.iter().zip(kept).zip(at) {
            if a == ABSENT {
                if *kept {
                    return false;
                }
                continue;
            }
            match self.0.get(a) {
                Some((n, _)) if a >= next && name_eq(n, &name.name) => next = a + 1,
                _ => return false,
            }
        }
        true
    }

    /// The field `name`.
    pub fn get(&self, name: &str) -> Option<&Val> {
        self.find(name).ok().map(|i| &self.0[i].1)
    }

    /// The field `name` names, looked for first where it was found last (see
    /// [`FieldName`]).
    pub fn get_named(&self, name: &FieldName) -> Option<&Val> {
        let at = name.at.load(Atomic::Relaxed);
        // Compared in line (`name_eq`: lengths, then bytes), not by a call to memcmp,
        // which cost more than the few bytes of a name.
        if let Some((n, v)) = self.0.get(at)
            && name_eq(n, &name.name)
        {
            return Some(v);
        }
        let i = self.find(&name.name).ok()?;
        name.at.store(i, Atomic::Relaxed);
        Some(&self.0[i].1)
    }

    /// Sets the field `name`.
    pub fn insert(&mut self, name: impl Into<CompactString> + AsRef<str>, value: Val) {
        match self.find(name.as_ref()) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (name.into(), value)),
        }
    }

    /// Takes the field `name` out.
    pub fn remove(&mut self, name: &str) -> Option<Val> {
        self.find(name).ok().map(|i| self.0.remove(i).1)
    }

    /// The fields, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Val)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Val {
    /// A float as JSON holds it: `null` for NaN and infinities.
    pub fn float(f: f64) -> Val {
        Number::from_f64(f).map_or(Val::Null, Val::Num)
    }

    /// Whether it is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    /// The number as an `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Num(n) => n.as_f64(),
            _ => None,
        }
    }

    /// The number as an `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Val::Num(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The number as a `u64`, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Val::Num(n) => n.as_u64(),
            _ => None,
        }
    }

    /// Whether it is an integer that fits an `i64`.
    pub fn is_i64(&self) -> bool {
        matches!(self, Val::Num(n) if n.is_i64())
    }

    /// The string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The array.
    pub fn as_array(&self) -> Option<&[Val]> {
        match self {
            Val::Arr(a) => Some(a),
            _ => None,
        }
    }

    /// The object.
    pub fn as_object(&self) -> Option<&Obj> {
        match self {
            Val::Obj(o) => Some(o),
            _ => None,
        }
    }

    /// A field of an object; `None` for a missing field or a non-object.
    pub fn get(&self, name: &str) -> Option<&Val> {
        self.as_object()?.get(name)
    }

    /// The field `name` names of an object (see [`FieldName`]).
    pub fn get_named(&self, name: &FieldName) -> Option<&Val> {
        self.as_object()?.get_named(name)
    }

    /// As a `serde_json::Value`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Null => serde_json::Value::Null,
            Val::Bool(b) => serde_json::Value::Bool(*b),
            Val::Num(n) => serde_json::Value::Number(n.clone()),
            Val::Str(s) => serde_json::Value::String(s.to_string()),
            Val::Arr(a) => serde_json::Value::Array(a.iter().map(Val::to_json).collect()),
            Val::Obj(o) => serde_json::Value::Object(
                o.iter().map(|(k, v)| (k.to_owned(), v.to_json())).collect(),
            ),
        }
    }

    /// From a `serde_json::Value`.
    pub fn from_json(v: serde_json::Value) -> Val {
        match v {
            serde_json::Value::Null => Val::Null,
            serde_json::Value::Bool(b) => Val::Bool(b),
            serde_json::Value::Number(n) => Val::Num(n),
            serde_json::Value::String(s) => Val::Str(s.into()),
            serde_json::Value::Array(a) => Val::Arr(a.into_iter().map(Val::from_json).collect()),
            // A map's keys come sorted and unique.
            serde_json::Value::Object(m) => Val::Obj(Obj(m
                .into_iter()
                .map(|(k, v)| (k.into(), Val::from_json(v)))
                .collect())),
        }
    }
}

impl From<bool> for Val {
    fn from(b: bool) -> Val {
        Val::Bool(b)
    }
}

impl From<i64> for Val {
    fn from(n: i64) -> Val {
        Val::Num(n.into())
    }
}

impl From<u64> for Val {
    fn from(n: u64) -> Val {
        Val::Num(n.into())
    }
}

impl From<usize> for Val {
    fn from(n: usize) -> Val {
        Val::Num((n as u64).into())
    }
}

impl From<f64> for Val {
    fn from(f: f64) -> Val {
        Val::float(f)
    }
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Str(s.into())
    }
}

impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Str(s.into())
    }
}

impl From<CompactString> for Val {
    fn from(s: CompactString) -> Val {
        Val::Str(s)
    }
}

impl From<Obj> for Val {
    fn from(o: Obj) -> Val {
        Val::Obj(o)
    }
}

impl Serialize for Val {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Null => s.serialize_unit(),
            Val::Bool(b) => s.serialize_bool(*b),
            Val::Num(n) => n.serialize(s),
            Val::Str(t) => s.serialize_str(t),
            Val::Arr(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Val::Obj(o) => o.serialize(s),
        }
    }
}

impl Serialize for Obj {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Val {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Val, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Val;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Val, E> {
        Ok(Val::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Val, E> {
        Ok(Val::from(n))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Val, E> {
        Ok(Val::from(n))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Val, E> {
        Ok(Val::float(f))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Val, E> {
        Ok(Val::Str(s.into()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Val, E> {
        Ok(Val::Str(s.into()))
    }

    fn visit_none<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }

    fn visit_unit<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
        Val::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Val::Arr(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((k, v)) = map.next_entry::<CompactString, Val>()? {
            fields.push((k, v));
        }
        Ok(Val::Obj(Obj::from_fields(fields)))
    }
}

impl<'de> Deserialize<'de> for Obj {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Obj, D::Error> {
        match Val::deserialize(d)? {
            Val::Obj(o) => Ok(o),
            _ => Err(de::Error::custom("expected a JSON object")),
        }
    }
}

/// Forwards what `serde_json` writes to a formatter. Its writes are whole UTF-8 pieces
/// (escapes are ASCII, and text is cut only around them).
struct FmtWriter<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl std::io::Write for FmtWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(buf).map_err(std::io::Error::other)?;
        self.0.write_str(text).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The JSON text of an integer (as serde_json writes it: the same `itoa`), written in
/// `buf`; `None` for anything else. For a key's text, made once or twice per record.
pub(crate) fn integer_text<'b>(v: &Val, buf: &'b mut itoa::Buffer) -> Option<&'b str> {
    let Val::Num(n) = v else { return None };
    if let Some(i) = n.as_i64() {
        Some(buf.format(i))
    } else {
        n.as_u64().map(|u| buf.format(u))
    }
}

/// Its JSON text, exactly as `serde_json` writes the same value.
impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        serde_json::to_writer(FmtWriter(f), self).map_err(|_| fmt::Error)
    }
}

impl fmt::Debug for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for Obj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        serde_json::to_writer(FmtWriter(f), self).map_err(|_| fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same JSON in, the same JSON out, and the same text as `serde_json` writes:
    /// keys and state depend on it.
    #[test]
    fn json_round_trips_as_serde_json_writes_it() {
        for text in [
            r#"{"b":1,"a":[1,2.5,-3,18446744073709551615],"c":{"z":null,"y":"é\"\n"},"d":true}"#,
            r#"{"key":"sensor-1","ts":1000,"value":0.1}"#,
            r#"[{"x":1.0},{"x":1}]"#,
            r#""just a string""#,
            "12345678901234567890",
            "-0.0",
            "1e300",
            r#"{"dup":1,"dup":2}"#,
        ] {
            let ours: Val = serde_json::from_str(text).expect(text);
            let theirs: serde_json::Value = serde_json::from_str(text).expect(text);
            assert_eq!(ours.to_string(), theirs.to_string(), "{text}");
            assert_eq!(
                serde_json::to_string(&ours).expect("json"),
                theirs.to_string()
            );
            assert_eq!(ours.to_json(), theirs, "{text}");
            assert_eq!(Val::from_json(theirs), ours, "{text}");
        }
    }

    #[test]
    fn objects_stay_sorted_and_equal_whatever_the_order_of_building() {
        let a = Obj::from_fields(vec![
            ("price".into(), Val::from(3i64)),
            ("auction".into(), Val::from(1i64)),
            ("price".into(), Val::from(4i64)),
        ]);
        let mut b = Obj::with_capacity(2);
        b.insert("price", Val::from(4i64));
        b.insert("auction", Val::from(1i64));
        assert_eq!(a, b);
        assert_eq!(
            Val::from(a.clone()).to_string(),
            r#"{"auction":1,"price":4}"#
        );
        assert_eq!(a.get("price"), Some(&Val::from(4i64)));
        assert_eq!(a.get("missing"), None);
        let mut c = a;
        assert_eq!(c.remove("auction"), Some(Val::from(1i64)));
        assert_eq!(c.len(), 1);
        // Numbers keep serde_json's cases: 1 and 1.0 differ, as they did.
        assert_ne!(Val::from(1i64), Val::float(1.0));
        assert_eq!(Val::float(f64::NAN), Val::Null);
    }

    #[test]
    fn names_are_equal_byte_for_byte_at_every_length() {
        let text = "abcdefghijklmnopqrstuvwxyz0123456789";
        for n in 0..=text.len() {
            let a = &text[..n];
            let copy = String::from(a);
            assert!(name_eq(a, &copy), "{a}");
            // One byte different, at each place in turn, is told apart.
            for i in 0..n {
                let mut b = a.as_bytes().to_vec();
                b[i] = b'_';
                let b = String::from_utf8(b).expect("ascii");
                assert!(!name_eq(a, &b), "{a} {b}");
            }
            assert!(!name_eq(a, &text[..n.saturating_sub(1)]) || n == 0);
        }
    }

    #[test]
    fn projecting_keeps_sets_drops_and_adds_fields_in_order() {
        let obj = |text: &str| match Val::from_json(serde_json::from_str(text).expect(text)) {
            Val::Obj(o) => o,
            _ => panic!("{text} is no object"),
        };
        let names = ["a", "bb", "c", "zz"].map(FieldName::new);
        let kept = [true, false, true, false];
        let project = |text: &str, computed: [i64; 2]| {
            let mut o = obj(text);
            o.project(&names, &kept, computed.into_iter().map(Val::from));
            Val::from(o).to_string()
        };
        let shapes = [
            (
                r#"{"a":1,"b":2,"bb":"x","c":{"d":3},"z":4}"#,
                r#"{"a":1,"bb":7,"c":{"d":3},"zz":8}"#,
            ),
            // The same shape again: the places found last time hold.
            (
                r#"{"a":5,"b":2,"bb":"x","c":6,"z":4}"#,
                r#"{"a":5,"bb":7,"c":6,"zz":8}"#,
            ),
            // Kept but missing: null, where it sorts; a computed one there already is
            // replaced; nothing else of the input is left.
            (
                r#"{"b":2,"y":1,"zz":0}"#,
                r#"{"a":null,"bb":7,"c":null,"zz":8}"#,
            ),
            // Fewer fields, at other places: the places found before do not hold.
            (r#"{"c":9,"a":3}"#, r#"{"a":3,"bb":7,"c":9,"zz":8}"#),
            (r#"{}"#, r#"{"a":null,"bb":7,"c":null,"zz":8}"#),
            (
                r#"{"a":1,"b":2,"bb":"x","c":{"d":3},"z":4}"#,
                r#"{"a":1,"bb":7,"c":{"d":3},"zz":8}"#,
            ),
        ];
        for (input, expected) in shapes {
            assert_eq!(project(input, [7, 8]), expected, "{input}");
        }
    }
}
