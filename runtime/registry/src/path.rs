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
    // Every registry operation checks its path (twice on the embedded store), so the
    // usual path costs two passes without branches per byte, which the compiler
    // vectorises: a char-by-char pass with its range tests was some 1,400 instructions
    // for a 60-byte path, a split into segments and a scan for refused bytes still about
    // 550 (callgrind, the fire clock's `running` markers).
    let bytes = path.as_bytes();
    // NUL, the control characters, DEL; and whether anything is beyond ASCII.
    let (refused_ascii, beyond) = bytes.iter().fold((false, false), |(r, n), &b| {
        (r | (b < 0x20) | (b == 0x7f), n | (b >= 0x80))
    });
    if refused_ascii {
        return Err(refused_character(path));
    }
    // Empty, `.` and `..` segments all start "//" or "/.": only then are the segments
    // looked at one by one.
    let suspect = bytes.windows(2).fold(false, |acc, w| {
        acc | ((w[0] == b'/') & ((w[1] == b'/') | (w[1] == b'.')))
    });
    if suspect {
        for segment in bytes[1..].split(|b| *b == b'/') {
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
    if beyond && path.chars().any(refused) {
        return Err(refused_character(path));
    }
    Ok(())
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
