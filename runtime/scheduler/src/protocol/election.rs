//! Leader election (spec §4.2): under the job's election latch, whoever first writes the
//! ephemeral `leader/election/instance` leads.

use capstan_registry::recipes::latch::Latch;
use capstan_registry::{CreateMode, CreateOptions, Error as RegistryError, Registry};

use super::nodes::JobNodes;
use crate::Result;
use crate::instance::InstanceId;

/// `electLeader()`: takes the latch, writes the leader node if there is none, releases the
/// latch. Returns whether `me` leads afterwards.
///
/// # Errors
/// A registry error.
pub async fn elect_leader(registry: &Registry, job: &JobNodes, me: &InstanceId) -> Result<bool> {
    let guard = Latch::new(registry.clone(), job.election_latch())
        .acquire()
        .await?;
    let created = registry
        .create_with(
            &job.leader(),
            me.as_str().as_bytes(),
            CreateOptions {
                mode: CreateMode::Ephemeral,
                create_parents: true,
            },
        )
        .await;
    guard.release().await?;
    match created {
        Ok(_) | Err(RegistryError::NodeExists(_)) => is_leader(registry, job, me).await,
        Err(e) => Err(e.into()),
    }
}

/// Whether `leader/election/instance` holds `me`.
///
/// # Errors
/// A registry error.
pub async fn is_leader(registry: &Registry, job: &JobNodes, me: &InstanceId) -> Result<bool> {
    match registry.get(&job.leader()).await {
        Ok((data, _)) => Ok(data == me.as_str().as_bytes()),
        Err(RegistryError::NoNode(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
