//! A one-off connection test.

use std::time::{Duration, Instant};

use super::{ZkSettings, map_zk};
use crate::{Error, Result};

/// What a successful [`probe`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// Time from the first connection attempt to an established session and the namespace read.
    pub latency: Duration,
    /// The session timeout the server granted.
    pub negotiated_session_timeout: Duration,
    /// Whether `/{namespace}` exists.
    pub namespace_exists: bool,
    /// Children of `/{namespace}`: for an ElasticJob namespace, the jobs.
    pub children: usize,
}

/// Opens a session, authenticates, reads the namespace root and closes the session.
///
/// The whole probe is bounded by `timeout`; a server that accepts TCP but never answers
/// counts as unreachable.
///
/// # Errors
/// [`Error::Unreachable`] when no server answers in time, [`Error::AuthFailed`] when the
/// digest is rejected, [`Error::NoAuth`] when the namespace root is ACL-protected against
/// these credentials, and [`Error::ZooKeeper`] for anything else the server reports.
///
/// # Cancellation safety
/// Safe to drop: the session is closed when its client is dropped.
pub async fn probe(settings: &ZkSettings, timeout: Duration) -> Result<ProbeReport> {
    let started = Instant::now();
    let root = format!("/{}", settings.namespace.trim_matches('/'));
    let unreachable = || Error::Unreachable {
        connect: settings.connect.to_string(),
        timeout,
    };
    let work = async {
        let mut connector = zookeeper_client::Client::connector()
            .with_session_timeout(settings.session_timeout)
            .with_fail_eagerly();
        if let Some(digest) = &settings.digest {
            connector = connector.with_auth("digest", digest.as_bytes());
        }
        let client = connector
            .connect(&settings.connect.to_string())
            .await
            .map_err(|e| match e {
                zookeeper_client::Error::NoHosts | zookeeper_client::Error::Timeout => {
                    unreachable()
                }
                other => map_zk(&root, other),
            })?;
        let negotiated = client.session_timeout();
        let (namespace_exists, children) = match client.list_children(&root).await {
            Ok(children) => (true, children.len()),
            Err(zookeeper_client::Error::NoNode) => (false, 0),
            Err(e) => return Err(map_zk(&root, e)),
        };
        Ok(ProbeReport {
            latency: started.elapsed(),
            negotiated_session_timeout: negotiated,
            namespace_exists,
            children,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| unreachable())?
}
