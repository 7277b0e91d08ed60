//! The registry's error type.

use std::time::Duration;

/// Everything that can go wrong talking to a registry.
///
/// Each variant says what an operator would want to know; [`Error::is_retryable`] tells a
/// caller whether trying again later could help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connect string is malformed.
    #[error("invalid connect string: {0}")]
    InvalidConnectString(String),
    /// A namespace or node path is malformed.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The offending path.
        path: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// No server in the connect string answered within the timeout.
    #[error("no ZooKeeper server answered at {connect} within {}ms", timeout.as_millis())]
    Unreachable {
        /// The connect string that was tried.
        connect: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// The server rejected the digest credentials.
    #[error("ZooKeeper rejected the digest credentials")]
    AuthFailed,
    /// The node is protected by an ACL these credentials do not satisfy.
    #[error("not authorised to read {0} (ACL); set the digest this namespace was written with")]
    NoAuth(String),
    /// The session expired; ephemeral nodes are gone and a new session is needed.
    #[error("ZooKeeper session expired")]
    SessionExpired,
    /// The node does not exist.
    #[error("node {0} does not exist")]
    NoNode(String),
    /// The node already exists.
    #[error("node {0} already exists")]
    NodeExists(String),
    /// The node has children and the delete was not recursive.
    #[error("node {0} has children")]
    NotEmpty(String),
    /// The node's version is not the expected one (someone else changed it).
    #[error("node {0} changed meanwhile (version mismatch)")]
    BadVersion(String),
    /// Ephemeral nodes cannot have children.
    #[error("node {0} is ephemeral and cannot have children")]
    NoChildrenForEphemerals(String),
    /// Node data above the size limit.
    #[error("node data of {len} bytes exceeds the limit of {max} bytes")]
    DataTooLarge {
        /// Size given.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// One operation of a `multi` failed, so none took effect.
    #[error("operation {index} of the transaction failed, nothing was applied: {source}")]
    MultiFailed {
        /// Index of the failing operation.
        index: usize,
        /// Why it failed.
        source: Box<Error>,
    },
    /// The connection is lost for now; the session may still be alive.
    #[error("connection to the registry lost")]
    ConnectionLoss,
    /// The registry handle was closed.
    #[error("the registry session is closed")]
    Closed,
    /// The embedded registry's storage failed.
    #[error("embedded registry storage: {0}")]
    Storage(String),
    /// Any other error reported by the ZooKeeper client.
    #[error("ZooKeeper error: {0}")]
    ZooKeeper(#[from] zookeeper_client::Error),
}

impl Error {
    /// Whether trying the same operation again later might succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::SessionExpired | Error::ConnectionLoss => true,
            Error::ZooKeeper(e) => matches!(
                e,
                zookeeper_client::Error::ConnectionLoss
                    | zookeeper_client::Error::Timeout
                    | zookeeper_client::Error::NoHosts
                    | zookeeper_client::Error::Throttled
            ),
            _ => false,
        }
    }
}

/// The registry's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
