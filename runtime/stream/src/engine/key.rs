//! The text a record's key is held under in state maps: its JSON, so equal keys of any
//! type meet (`1` and `"1"` stay apart) and a snapshot writes it as a plain string.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};

use compact_str::CompactString;
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use crate::value::{Val, integer_text, name_cmp, name_eq};

/// A key's JSON text, inline up to 24 bytes: a new window or group of a short key (every
/// number, most names) allocates nothing for it.
///
/// Compared byte by byte in line (the order of `str`): keys are a few bytes, and
/// `memcmp` calls to match them were a twentieth of a hopping-window aggregate.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(super) struct KeyText(CompactString);

impl KeyText {
    /// The text of `v`.
    pub(super) fn of(v: &Val) -> KeyText {
        let mut k = KeyText::default();
        k.set(v);
        k
    }

    /// Rewrites this text as that of `v` (a reused buffer: no allocation for short keys).
    ///
    /// Integers and strings with nothing to escape, the usual keys, are written here, to
    /// the same text: through serde_json and a formatter they cost some 150 instructions
    /// a record (callgrind, the hopping-window query), 6 % of its pipeline.
    pub(super) fn set(&mut self, v: &Val) {
        // A number's text is made anew, not pushed onto the cleared one: `push_str` checks
        // the capacity and where the text is for each call (85 instructions a record,
        // callgrind, the hopping-window query).
        if let Some(text) = integer_text(v, &mut itoa::Buffer::new()) {
            self.0 = CompactString::new(text);
            return;
        }
        self.0.clear();
        match v {
            // JSON escapes only quotes, backslashes and control characters.
            Val::Str(s) if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) => {
                self.0.push('"');
                self.0.push_str(s);
                self.0.push('"');
            }
            // Writing to a CompactString cannot fail.
            _ => drop(write!(self.0, "{v}")),
        }
    }

    pub(super) fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The first 8 bytes as a big-endian number, zero-padded. Ordering by it, then by the
    /// whole text, is the text's order: a zero pad sorts first, as the shorter of two
    /// texts does, and two texts that differ only past it, or in a pad against a zero
    /// byte, tie here.
    pub(super) fn prefix(&self) -> u64 {
        let bytes = self.as_str().as_bytes();
        let mut head = [0u8; 8];
        let n = bytes.len().min(8);
        head[..n].copy_from_slice(&bytes[..n]);
        u64::from_be_bytes(head)
    }
}

/// `items` in the order of their key texts.
///
/// Why not a plain sort by text: a window closes with tens of thousands of keys, and
/// their byte-by-byte comparisons were a twelfth of a hopping-window aggregate's CPU.
/// Numbers sort here by their first 8 bytes alone, as one integer; only ties (texts that
/// share them) compare the whole text.
pub(super) fn sorted_by_text<'k, T>(
    items: impl Iterator<Item = (&'k KeyText, T)>,
) -> impl Iterator<Item = (&'k KeyText, T)> {
    let mut v: Vec<(u64, &KeyText, T)> = items.map(|(k, t)| (k.prefix(), k, t)).collect();
    v.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    v.into_iter().map(|(_, k, t)| (k, t))
}

/// The key table of the window (or pane) freed last, emptied, for the next new one: that
/// holds about as many keys, so its table does not grow (and rehash) from empty.
pub(super) struct Spare<V>(Option<HashMap<KeyText, V>>);

impl<V> Default for Spare<V> {
    fn default() -> Self {
        Spare(None)
    }
}

impl<V> Spare<V> {
    /// The kept table, or a new one.
    pub(super) fn take(&mut self) -> HashMap<KeyText, V> {
        self.0.take().unwrap_or_default()
    }

    /// Keeps `table`, emptied, in place of the one kept before.
    pub(super) fn keep(&mut self, mut table: HashMap<KeyText, V>) {
        table.clear();
        self.0 = Some(table);
    }
}

/// Found by reference in `entry_ref`: the key is copied only into a new entry.
impl From<&KeyText> for KeyText {
    fn from(k: &KeyText) -> KeyText {
        k.clone()
    }
}

impl PartialEq for KeyText {
    fn eq(&self, other: &KeyText) -> bool {
        name_eq(self.as_str(), other.as_str())
    }
}

impl Eq for KeyText {}

impl Ord for KeyText {
    fn cmp(&self, other: &KeyText) -> Ordering {
        name_cmp(self.as_str(), other.as_str())
    }
}

impl PartialOrd for KeyText {
    fn partial_cmp(&self, other: &KeyText) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for KeyText {
    // In line: hashed once a record, by windows and panes alike; out of line it cost a
    // call a record (Q7-like 824 against 834 M instructions, callgrind).
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_different_types_stay_apart_and_order_as_text() {
        let one = KeyText::of(&Val::from(1i64));
        let text = KeyText::of(&Val::from("1"));
        assert_ne!(one, text);
        assert_eq!(text.as_str(), "\"1\"");
        let mut keys: Vec<KeyText> = [1000i64, 999, 10_000]
            .into_iter()
            .map(|n| KeyText::of(&Val::from(n)))
            .collect();
        keys.sort();
        let texts: Vec<&str> = keys.iter().map(KeyText::as_str).collect();
        assert_eq!(texts, ["1000", "10000", "999"]);
        // A long key spills to the heap and still compares by its text.
        let long = "k".repeat(40);
        let mut k = KeyText::of(&Val::from(long.as_str()));
        assert_eq!(k, KeyText::of(&Val::from(long.as_str())));
        k.set(&Val::from(7i64));
        assert_eq!(k.as_str(), "7");
    }

    /// The direct texts of integers and plain strings are JSON's, as every other key's.
    #[test]
    fn key_texts_are_json() {
        let values = [
            serde_json::json!(0),
            serde_json::json!(-42),
            serde_json::json!(i64::MIN),
            serde_json::json!(u64::MAX),
            serde_json::json!(1.5),
            serde_json::json!("plain"),
            serde_json::json!("é and 😀"),
            serde_json::json!("a \"quote\""),
            serde_json::json!("back\\slash"),
            serde_json::json!("tab\tnew\nline\u{1}"),
            serde_json::json!("a key long enough to be stored on the heap"),
            serde_json::json!(null),
            serde_json::json!([1, "x"]),
            serde_json::json!({"b": 1, "a": 2}),
        ];
        let mut reused = KeyText::of(&Val::from("previous"));
        for v in values {
            let json = serde_json::to_string(&v).expect("json");
            assert_eq!(KeyText::of(&Val::from_json(v.clone())).as_str(), json);
            reused.set(&Val::from_json(v));
            assert_eq!(reused.as_str(), json);
        }
    }

    /// The prefix sort gives exactly the texts' order: shorter texts, zero bytes against
    /// the pad, texts equal in their first 8 bytes, non-ASCII.
    #[test]
    fn sorting_by_prefix_keeps_the_text_order() {
        let texts = [
            "",
            "1",
            "10",
            "1000",
            "10000",
            "999",
            "12345678",
            "123456789",
            "12345678\0",
            "123456780",
            "\"a\"",
            "\"a\\u0000\"",
            "\"abcdefgh-2\"",
            "\"abcdefgh-10\"",
            "\"é\"",
            "\"z\"",
            "[1,2]",
            "null",
            "-5",
            "-50",
            "1.5",
            "{\"a\":1}",
        ];
        let mut keys: Vec<KeyText> = texts
            .iter()
            .map(|t| KeyText(CompactString::from(*t)))
            .collect();
        // Zero bytes inside a text (not JSON, but the order must still hold).
        keys.push(KeyText(CompactString::from("ab\0")));
        keys.push(KeyText(CompactString::from("ab")));
        keys.push(KeyText(CompactString::from("ab\0\0\0\0\0\0\0")));
        let mut expected: Vec<&KeyText> = keys.iter().collect();
        expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let got: Vec<&KeyText> = sorted_by_text(keys.iter().rev().map(|k| (k, ())))
            .map(|(k, ())| k)
            .collect();
        let text = |v: &[&KeyText]| v.iter().map(|k| k.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(text(&got), text(&expected));
    }
}
