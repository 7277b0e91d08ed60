//! ZooKeeper path rules, checked before anything reaches a backend.

use crate::{Error, Result};

/// Longest accepted path, in bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// Largest node data accepted, in bytes (ZooKeeper's default `jute.maxbuffer` is 1 MiB,
/// which must also hold the request's framing).
pub const MAX_DATA_LEN: usize = 1_000_000;

fn invalid(path: &str, reason: &'static str) -> Error {
    Error::InvalidPath {
        path: path.chars().take(200).collect(),
        reason,
    }
}

/// Checks a path the way ZooKeeper's `PathUtils.validatePath` does.
///
/// # Errors
/// [`Error::InvalidPath`] saying what is wrong.
pub fn validate(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(invalid(path, "path is empty"));
    }
    if !path.starts_with('/') {
        return Err(invalid(path, "path must start with '/'"));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(invalid(path, "path is too long"));
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(invalid(path, "path must not end with '/'"));
    }
    // Every registry operation checks its path, so the usual path is checked eight bytes
    // at a time (`Scan`): a char-by-char pass with its range tests was some 1,400
    // instructions for a 60-byte path, two passes of byte folds still 570 for a 30-byte
    // one (callgrind, the fire clock's `running` markers).
    let scan = Scan::of(path.as_bytes());
    if scan.refused_ascii {
        return Err(refused_character(path));
    }
    // Empty, `.` and `..` segments all start "//" or "/.": only then are the segments
    // looked at one by one.
    if scan.suspect {
        for segment in path.as_bytes()[1..].split(|b| *b == b'/') {
            check_segment(path, segment)?;
        }
    }
    // Beyond ASCII: the C1 controls, the private use area and the specials (as
    // ZooKeeper's check).
    let refused = |c: char| {
        ('\u{80}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
    };
    if scan.beyond_ascii && path.chars().any(refused) {
        return Err(refused_character(path));
    }
    Ok(())
}

/// What one pass over a path's bytes finds, eight bytes at a time (SWAR: each byte's
/// answer in its top bit, computed without carries between bytes, so exact).
#[derive(Debug, PartialEq, Eq)]
struct Scan {
    /// NUL, a control character or DEL.
    refused_ascii: bool,
    /// A byte beyond ASCII (a multi-byte character).
    beyond_ascii: bool,
    /// A `/` followed by `/` or `.`.
    suspect: bool,
}

/// Each byte's top bit.
const HIGH: u64 = 0x8080_8080_8080_8080;
/// Each byte's low seven bits.
const LOW7: u64 = !HIGH;
/// `b` in every byte.
const fn splat(b: u8) -> u64 {
    b as u64 * 0x0101_0101_0101_0101
}

/// The top bit of each byte of `x` that is zero.
fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// The top bit of each byte of `x` below `n` (at most 0x80).
fn bytes_below(x: u64, n: u8) -> u64 {
    !(((x & LOW7) + splat(0x80 - n)) | x) & HIGH
}

impl Scan {
    fn of(bytes: &[u8]) -> Scan {
        let (mut refused, mut beyond, mut suspect) = (0u64, 0u64, false);
        // Whether the last byte of the word before was a '/'.
        let mut slash_before = false;
        let mut step = |x: u64| {
            refused |= bytes_below(x, 0x20) | zero_bytes(x ^ splat(0x7f));
            beyond |= x & HIGH;
            let slash = zero_bytes(x ^ splat(b'/'));
            let next = slash | zero_bytes(x ^ splat(b'.'));
            // Little-endian: the byte after byte i is the next byte up.
            suspect |= slash & (next >> 8) != 0 || (slash_before && next & 0x80 != 0);
            slash_before = slash >> 56 != 0;
        };
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            step(u64::from_le_bytes(word.try_into().unwrap_or([b'a'; 8])));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            // Padded with 'a', which none of the checks notices.
            let mut word = [b'a'; 8];
            word[..rest.len()].copy_from_slice(rest);
            step(u64::from_le_bytes(word));
        }
        Scan {
            refused_ascii: refused != 0,
            beyond_ascii: beyond != 0,
            suspect,
        }
    }
}

fn check_segment(path: &str, segment: &[u8]) -> Result<()> {
    match segment {
        [] => Err(invalid(path, "empty path segment")),
        b"." | b".." => Err(invalid(path, "relative segments are not allowed")),
        _ => Ok(()),
    }
}

fn refused_character(path: &str) -> Error {
    invalid(path, "path contains a character ZooKeeper refuses")
}

/// Checks the size of node data.
///
/// # Errors
/// [`Error::DataTooLarge`].
pub fn validate_data(data: &[u8]) -> Result<()> {
    if data.len() > MAX_DATA_LEN {
        return Err(Error::DataTooLarge {
            len: data.len(),
            max: MAX_DATA_LEN,
        });
    }
    Ok(())
}

/// The parent of a valid, non-root path.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match last_slash(path) {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The last segment of a valid path.
pub fn name(path: &str) -> &str {
    last_slash(path).map_or(path, |i| &path[i + 1..])
}

/// Where the last `/` is: a byte search, not `str::rfind` with a `char` pattern, which
/// searches for the character's last UTF-8 byte and then checks the whole character (some
/// 400 instructions per create on the fire clock's thread, for two of these).
fn last_slash(path: &str) -> Option<usize> {
    path.as_bytes().iter().rposition(|&b| b == b'/')
}

/// `parent` joined with a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_paths() {
        for ok in [
            "/",
            "/a",
            "/a/b-c/_c_x-latch-0000000001",
            "/日本",
            "/.a/..b/c.",
            "/a/.../b",
            "/a\u{a0}b\u{f900}\u{10000}",
        ] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//a",
            "/a//b",
            "/a/./b",
            "/a/..",
            "/.",
            "/..",
            "/../a",
            "/a\u{1}/./b",
            "/a\0b",
            "/a\u{1}",
            "/a\u{1f}",
            "/a\u{7f}",
            "/é\u{85}",
            "/a\u{9f}",
            "/a\u{e000}",
            "/a\u{f8ff}",
            "/a\u{fff0}",
            "/a\u{ffff}",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        assert!(validate(&format!("/{}", "a".repeat(MAX_PATH_LEN))).is_err());
    }

    /// The word-at-a-time scan finds exactly what a byte-by-byte look finds, for every
    /// placement of the bytes that matter within and across words.
    #[test]
    fn the_scan_finds_what_a_byte_by_byte_look_finds() {
        let reference = |b: &[u8]| Scan {
            refused_ascii: b.iter().any(|&c| c < 0x20 || c == 0x7f),
            beyond_ascii: b.iter().any(|&c| c >= 0x80),
            suspect: b
                .windows(2)
                .any(|w| w[0] == b'/' && (w[1] == b'/' || w[1] == b'.')),
        };
        let specials = [
            b'/', b'.', 0, 0x1f, 0x20, 0x7f, 0x7e, 0x80, 0xff, b'a', b'0',
        ];
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        for len in 0..40 {
            for _ in 0..400 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        specials[(seed % specials.len() as u64) as usize]
                    })
                    .collect();
                assert_eq!(Scan::of(&bytes), reference(&bytes), "{bytes:?}");
            }
        }
    }

    #[test]
    fn parents_and_names() {
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(name("/a/b"), "b");
        assert_eq!(name("/a"), "a");
        assert_eq!(name("/"), "");
        assert_eq!(parent("/日本/b"), Some("/日本"));
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
