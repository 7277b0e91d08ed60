use serde::{Deserialize, Serialize};

use crate::error::FieldErrors;

/// Where a registry centre's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CentreKind {
    /// In-process registry persisted in the data directory.
    Embedded,
    /// A ZooKeeper ensemble.
    Zookeeper,
}

impl CentreKind {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            CentreKind::Embedded => "embedded",
            CentreKind::Zookeeper => "zookeeper",
        }
    }

    /// Parses a stored value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "embedded" => Some(CentreKind::Embedded),
            "zookeeper" => Some(CentreKind::Zookeeper),
            _ => None,
        }
    }
}

/// A registry centre as the browser and the API see it. The digest is write-only: only
/// whether one is set ever leaves the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RegistryCentre {
    /// Unique, URL-safe name (`[a-z0-9-]`).
    pub name: String,
    /// `embedded` or `zookeeper`.
    pub kind: CentreKind,
    /// `host:port[,host:port…]`; empty for embedded centres.
    pub connect: String,
    /// The namespace (Curator chroot) under which jobs live.
    pub namespace: String,
    /// Display colour, `#rrggbb`.
    pub color: String,
    /// Production centres show a banner and ask for typed confirmation.
    pub production: bool,
    /// ZooKeeper session timeout to ask for, in ms.
    pub session_timeout_ms: u32,
    /// Whether a digest credential is stored.
    pub has_digest: bool,
}

/// Create or edit a registry centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CentreInput {
    /// Unique, URL-safe name (`[a-z0-9-]`, at most 63 characters).
    pub name: String,
    /// `embedded` or `zookeeper`.
    pub kind: CentreKind,
    /// `host:port[,host:port…]`; required for ZooKeeper, empty for embedded.
    #[serde(default)]
    pub connect: String,
    /// Namespace, e.g. `elasticjob-demo` (segments of `[A-Za-z0-9._-]`, joined by `/`).
    pub namespace: String,
    /// `user:password` for digest auth. Write-only. On edit, absent keeps the stored one.
    #[serde(default)]
    pub digest: Option<String>,
    /// On edit, remove the stored digest.
    #[serde(default)]
    pub clear_digest: bool,
    /// Session timeout in ms (1000 to 600000, default 60000).
    #[serde(default)]
    pub session_timeout_ms: Option<u32>,
    /// `#rrggbb` (default `#2563eb`).
    #[serde(default)]
    pub color: Option<String>,
    /// Production flag.
    #[serde(default)]
    pub production: bool,
}

/// Default ZooKeeper session timeout, as Curator's.
pub const DEFAULT_SESSION_TIMEOUT_MS: u32 = 60_000;
/// Default centre colour.
pub const DEFAULT_COLOR: &str = "#2563eb";

/// The result of testing a centre's connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProbeResult {
    /// Round trip to an established session and the namespace read, in ms.
    pub latency_ms: u64,
    /// Session timeout the server granted, in ms.
    pub session_timeout_ms: u64,
    /// Whether the namespace node exists yet.
    pub namespace_exists: bool,
    /// Children of the namespace root (for ElasticJob: jobs).
    pub jobs: usize,
}

/// Centre names: 1 to 63 of `[a-z0-9-]`, not starting or ending with `-`.
pub fn validate_centre_name(errors: &mut FieldErrors, name: &str) {
    let ok = (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        errors.add(
            "name",
            "use 1 to 63 lower-case letters, digits or '-' (not at either end)",
        );
    }
}

/// Namespaces: segments of `[A-Za-z0-9._-]` joined by `/`, at most 255 characters.
pub fn validate_namespace(errors: &mut FieldErrors, namespace: &str) {
    let segments_ok = namespace.split('/').all(|s| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    });
    if namespace.is_empty() || namespace.len() > 255 || !segments_ok {
        errors.add(
            "namespace",
            "use segments of letters, digits, '.', '_' or '-' joined by '/' (at most 255 characters, no leading '/')",
        );
    } else if namespace == "zookeeper" || namespace.starts_with("zookeeper/") {
        errors.add("namespace", "'/zookeeper' is reserved by ZooKeeper");
    }
}

/// Colours: `#rrggbb`.
pub fn validate_color(errors: &mut FieldErrors, color: &str) {
    let ok = color.len() == 7
        && color.starts_with('#')
        && color[1..].chars().all(|c| c.is_ascii_hexdigit());
    if !ok {
        errors.add("color", "use a colour of the form #rrggbb");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(f: impl FnOnce(&mut FieldErrors)) -> bool {
        let mut e = FieldErrors::default();
        f(&mut e);
        e.finish().is_err()
    }

    #[test]
    fn names() {
        assert!(!errs(|e| validate_centre_name(e, "prod-zk-1")));
        for bad in ["", "-a", "a-", "Prod", "a_b", "a/b", &"a".repeat(64)] {
            assert!(errs(|e| validate_centre_name(e, bad)), "{bad:?}");
        }
    }

    #[test]
    fn namespaces() {
        assert!(!errs(|e| validate_namespace(e, "elasticjob-demo")));
        assert!(!errs(|e| validate_namespace(e, "team/jobs.v2")));
        for bad in ["", "/abs", "a//b", "a/", "a/../b", "zookeeper", "sp ace"] {
            assert!(errs(|e| validate_namespace(e, bad)), "{bad:?}");
        }
    }

    #[test]
    fn colors() {
        assert!(!errs(|e| validate_color(e, "#a1B2c3")));
        for bad in ["", "red", "#abc", "#abcdeg", "a1b2c3d"] {
            assert!(errs(|e| validate_color(e, bad)), "{bad:?}");
        }
    }
}
