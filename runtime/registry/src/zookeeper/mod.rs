//! The ZooKeeper side of the registry, through the `zookeeper-client` crate.

mod probe;
mod session;

use std::time::Duration;

pub use probe::{ProbeReport, probe};
pub(crate) use session::{ZkSession, event};

use crate::{ConnectString, Error};

/// How to reach one ZooKeeper namespace.
#[derive(Clone)]
pub struct ZkSettings {
    /// The servers.
    pub connect: ConnectString,
    /// The namespace (Curator's chroot), without a leading slash, e.g. `elasticjob-demo`.
    pub namespace: String,
    /// Optional `user:password` for the `digest` scheme.
    pub digest: Option<String>,
    /// Session timeout asked of the server.
    pub session_timeout: Duration,
}

impl std::fmt::Debug for ZkSettings {
    // The digest is a credential: never let it reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkSettings")
            .field("connect", &self.connect.to_string())
            .field("namespace", &self.namespace)
            .field("digest", &self.digest.as_ref().map(|_| "<set>"))
            .field("session_timeout", &self.session_timeout)
            .finish()
    }
}

/// Translates a client error about `path` into the registry's error.
pub(crate) fn map_zk(path: &str, e: zookeeper_client::Error) -> Error {
    use zookeeper_client::Error as Zk;
    match e {
        Zk::AuthFailed => Error::AuthFailed,
        Zk::NoAuth => Error::NoAuth(path.to_owned()),
        Zk::SessionExpired => Error::SessionExpired,
        Zk::NoNode => Error::NoNode(path.to_owned()),
        Zk::NodeExists => Error::NodeExists(path.to_owned()),
        Zk::NotEmpty => Error::NotEmpty(path.to_owned()),
        Zk::BadVersion => Error::BadVersion(path.to_owned()),
        Zk::NoChildrenForEphemerals => Error::NoChildrenForEphemerals(path.to_owned()),
        Zk::ConnectionLoss => Error::ConnectionLoss,
        Zk::ClientClosed => Error::Closed,
        other => Error::ZooKeeper(other),
    }
}
