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
    /// Any other error reported by the ZooKeeper client.
    #[error("ZooKeeper error: {0}")]
    ZooKeeper(#[from] zookeeper_client::Error),
}

impl Error {
    /// Whether trying the same operation again later might succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::SessionExpired => true,
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
