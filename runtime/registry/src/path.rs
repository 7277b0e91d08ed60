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
    // Byte by byte, not by char: every registry operation checks its path (twice on the
    // embedded store), and a char-by-char pass with its range tests was some 1,400
    // instructions for a 60-byte path, a tenth of the fire clock's work in a burst.
    for segment in path.as_bytes()[1..].split(|b| *b == b'/') {
        if segment.is_empty() {
            return Err(invalid(path, "empty path segment"));
        }
        if segment == b"." || segment == b".." {
            return Err(invalid(path, "relative segments are not allowed"));
        }
    }
    // ASCII: NUL, the control characters, DEL. Beyond: the C1 controls, the private use
    // area and the specials (as ZooKeeper's check).
    let refused_ascii = |b: &u8| *b < 0x20 || *b == 0x7f;
    let refused = |c: char| {
        ('\u{80}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
    };
    if path.as_bytes().iter().any(refused_ascii) || (!path.is_ascii() && path.chars().any(refused))
    {
        return Err(invalid(path, "path contains a character ZooKeeper refuses"));
    }
    Ok(())
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
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The last segment of a valid path.
pub fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
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
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
