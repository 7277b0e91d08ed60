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

#[inline]
pub(crate) fn name_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && name_cmp(a, b).is_eq()
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

impl Obj {
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
}
