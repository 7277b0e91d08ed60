//! ElasticJob's node-storage primitives (spec §1, `JobNodeStorage`): each creates missing
//! parents as persistent empty nodes, and "already there" or "already gone" is not an
//! error where Java swallows it.

use capstan_registry::{CreateMode, Error as RegistryError, Registry};

use crate::Result;

/// Whether a node exists.
///
/// # Errors
/// A registry error.
pub async fn exists(registry: &Registry, path: &str) -> Result<bool> {
    Ok(registry.exists(path).await?.is_some())
}

/// A node's value, or `None` if it is missing.
///
/// # Errors
/// A registry error.
pub async fn value(registry: &Registry, path: &str) -> Result<Option<String>> {
    match registry.get(path).await {
        Ok((data, _)) => Ok(Some(String::from_utf8_lossy(&data).into_owned())),
        Err(RegistryError::NoNode(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Children of a node, or none if it is missing.
///
/// # Errors
/// A registry error.
pub async fn children(registry: &Registry, path: &str) -> Result<Vec<String>> {
    match registry.children(path).await {
        Ok(c) => Ok(c),
        Err(RegistryError::NoNode(_)) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Creates a node in `mode`; `Ok(false)` if it exists already.
///
/// # Errors
/// A registry error.
pub async fn create_if_absent(
    registry: &Registry,
    path: &str,
    value: &[u8],
    mode: CreateMode,
) -> Result<bool> {
    Ok(registry.create_if_absent(path, value, mode).await?)
}

/// `persist`: creates a persistent node, or sets its value if it exists.
///
/// # Errors
/// A registry error.
pub async fn persist(registry: &Registry, path: &str, value: &[u8]) -> Result<()> {
    Ok(registry.put(path, value).await?)
}

/// `persistEphemeral`: deletes the node (recursively) if present, then creates it
/// ephemeral, owned by this session.
///
/// # Errors
/// A registry error.
pub async fn persist_ephemeral(registry: &Registry, path: &str, value: &[u8]) -> Result<()> {
    remove(registry, path).await?;
    create_if_absent(registry, path, value, CreateMode::Ephemeral).await?;
    Ok(())
}

/// `remove`: deletes a node and everything below it; a missing node is fine.
///
/// # Errors
/// A registry error.
pub async fn remove(registry: &Registry, path: &str) -> Result<()> {
    match registry.delete_recursive(path).await {
        Ok(()) | Err(RegistryError::NoNode(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a childless node only if it holds `expected`, so a node someone else has
/// re-created meanwhile is left alone. `Ok(false)` if it was missing or held another
/// value.
///
/// # Errors
/// A registry error.
pub async fn delete_if_value(registry: &Registry, path: &str, expected: &str) -> Result<bool> {
    match registry.get(path).await {
        Ok((data, stat)) if data == expected.as_bytes() => {
            match registry.delete(path, Some(stat.version)).await {
                Ok(()) => Ok(true),
                Err(RegistryError::NoNode(_) | RegistryError::BadVersion(_)) => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        Ok(_) | Err(RegistryError::NoNode(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
