//! Registry-centre operations, shared by server fns and the REST API.

use std::time::{Duration, Instant};

use capstan_registry::{ConnectString, Registry, ZkSettings};

use super::audit::Audit;
use super::auth::Actor;
use super::db::centres::{self, CentreRow, CentreWrite, is_unique_violation};
use super::{AppState, internal};
use crate::error::{AppError, FieldErrors};
use crate::model::centre::{DEFAULT_COLOR, DEFAULT_SESSION_TIMEOUT_MS};
use crate::model::{
    CentreInput, CentreKind, ProbeResult, RegistryCentre, Role, validate_centre_name,
    validate_color, validate_namespace,
};

const MAX_DIGEST_LEN: usize = 255;

/// All centres.
pub async fn list(state: &AppState, actor: &Actor) -> Result<Vec<RegistryCentre>, AppError> {
    actor.require(Role::Viewer)?;
    Ok(centres::list(&state.db)
        .await
        .map_err(internal)?
        .iter()
        .map(CentreRow::public)
        .collect())
}

async fn row(state: &AppState, name: &str) -> Result<CentreRow, AppError> {
    centres::by_name(&state.db, name)
        .await
        .map_err(internal)?
        .ok_or_else(|| AppError::NotFound(format!("there is no registry centre named {name:?}")))
}

/// One centre.
pub async fn get(state: &AppState, actor: &Actor, name: &str) -> Result<RegistryCentre, AppError> {
    actor.require(Role::Viewer)?;
    Ok(row(state, name).await?.public())
}

/// Checks `input` and turns it into what is stored. `existing` is the row being edited,
/// whose digest is kept unless the input replaces or clears it.
fn validate(
    state: &AppState,
    input: &CentreInput,
    existing: Option<&CentreRow>,
) -> Result<CentreWrite, AppError> {
    let mut errors = FieldErrors::default();
    let name = input.name.trim();
    validate_centre_name(&mut errors, name);
    let namespace = input.namespace.trim().trim_start_matches('/');
    validate_namespace(&mut errors, namespace);
    let color = input
        .color
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or(DEFAULT_COLOR)
        .to_ascii_lowercase();
    validate_color(&mut errors, &color);
    let session_timeout_ms = input
        .session_timeout_ms
        .unwrap_or(DEFAULT_SESSION_TIMEOUT_MS);
    if !(1_000..=600_000).contains(&session_timeout_ms) {
        errors.add("session_timeout_ms", "use 1000 to 600000 ms");
    }
    let connect = match input.kind {
        CentreKind::Zookeeper => match input.connect.parse::<ConnectString>() {
            Ok(cs) => {
                if let Some(refused) = state.settings.zk_allow.first_refused(&cs) {
                    errors.add(
                        "connect",
                        format!("{refused} is not in this console's ZooKeeper allow-list"),
                    );
                }
                cs.to_string()
            }
            Err(e) => {
                errors.add("connect", e.to_string());
                String::new()
            }
        },
        CentreKind::Embedded => {
            if !input.connect.trim().is_empty() {
                errors.add(
                    "connect",
                    "an embedded centre has no servers; leave this empty",
                );
            }
            String::new()
        }
    };
    let new_digest = input.digest.as_deref().filter(|d| !d.is_empty());
    if let Some(d) = new_digest {
        let well_formed = d
            .split_once(':')
            .is_some_and(|(u, p)| !u.is_empty() && !p.is_empty())
            && !d.chars().any(char::is_control);
        if d.len() > MAX_DIGEST_LEN {
            errors.add("digest", format!("use at most {MAX_DIGEST_LEN} characters"));
        } else if !well_formed {
            errors.add("digest", "use the form user:password");
        }
    }
    let digest = if input.clear_digest {
        None
    } else {
        new_digest
            .map(str::to_owned)
            .or_else(|| existing.and_then(|e| e.digest.clone()))
    };
    if input.kind == CentreKind::Embedded && digest.is_some() {
        errors.add("digest", "an embedded centre takes no digest");
    }
    errors.finish()?;
    Ok(CentreWrite {
        name: name.to_owned(),
        kind: input.kind,
        connect,
        namespace: namespace.to_owned(),
        digest,
        session_timeout_ms,
        color,
        production: input.production,
    })
}

fn public(w: &CentreWrite) -> RegistryCentre {
    RegistryCentre {
        name: w.name.clone(),
        kind: w.kind,
        connect: w.connect.clone(),
        namespace: w.namespace.clone(),
        color: w.color.clone(),
        production: w.production,
        session_timeout_ms: w.session_timeout_ms,
        has_digest: w.digest.is_some(),
    }
}

fn duplicate(name: &str) -> AppError {
    AppError::Validation {
        message: format!("a registry centre named {name:?} already exists"),
        fields: [("name".to_owned(), "this name is taken".to_owned())].into(),
    }
}

/// Adds a centre.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    input: &CentreInput,
) -> Result<RegistryCentre, AppError> {
    let mut audit = Audit::new("centre.create", "centre", input.name.trim()).by(actor);
    let result = async {
        actor.require(Role::Admin)?;
        let write = validate(state, input, None)?;
        audit = audit.clone().after(&public(&write));
        centres::insert(&state.db, &write).await.map_err(|e| {
            if is_unique_violation(&e) {
                AppError::Conflict(duplicate(&write.name).to_string())
            } else {
                internal(e)
            }
        })?;
        Ok(public(&write))
    }
    .await;
    audit.finish(state, &result).await;
    result
}

/// Edits the centre currently named `name` (the input may rename it).
pub async fn update(
    state: &AppState,
    actor: &Actor,
    name: &str,
    input: &CentreInput,
) -> Result<RegistryCentre, AppError> {
    let mut audit = Audit::new("centre.update", "centre", name).by(actor);
    let result = async {
        actor.require(Role::Admin)?;
        let current = row(state, name).await?;
        audit = audit.clone().before(&current.public());
        let write = validate(state, input, Some(&current))?;
        audit = audit.clone().after(&public(&write));
        centres::update(&state.db, current.id, &write)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    AppError::Conflict(duplicate(&write.name).to_string())
                } else {
                    internal(e)
                }
            })?;
        // The old session (and a renamed centre's entry) must not serve the new settings.
        state.registries.forget(name);
        Ok(public(&write))
    }
    .await;
    audit.finish(state, &result).await;
    result
}

/// Removes a centre from the console (the registry itself is untouched).
pub async fn delete(state: &AppState, actor: &Actor, name: &str) -> Result<(), AppError> {
    let mut audit = Audit::new("centre.delete", "centre", name).by(actor);
    let result = async {
        actor.require(Role::Admin)?;
        let current = row(state, name).await?;
        audit = audit.clone().before(&current.public());
        centres::delete(&state.db, current.id)
            .await
            .map_err(internal)?;
        state.registries.forget(name);
        Ok(())
    }
    .await;
    audit.finish(state, &result).await;
    result
}

async fn probe_write(state: &AppState, w: &CentreWrite) -> Result<ProbeResult, AppError> {
    match w.kind {
        CentreKind::Embedded => {
            let started = Instant::now();
            let unreachable = |e: capstan_registry::Error| AppError::Unreachable(e.to_string());
            let registry = Registry::embedded(&state.embedded, &w.namespace)
                .await
                .map_err(unreachable)?;
            let jobs = registry.children("/").await.map_err(unreachable);
            registry.close().await;
            Ok(ProbeResult {
                latency_ms: started.elapsed().as_millis() as u64,
                session_timeout_ms: 0,
                namespace_exists: true,
                jobs: jobs?.len(),
            })
        }
        CentreKind::Zookeeper => {
            let connect: ConnectString = w.connect.parse().map_err(internal)?;
            let settings = ZkSettings {
                connect,
                namespace: w.namespace.clone(),
                digest: w.digest.clone(),
                session_timeout: Duration::from_millis(u64::from(w.session_timeout_ms)),
            };
            let timeout = state
                .settings
                .probe_timeout
                .min(settings.session_timeout.max(Duration::from_secs(1)));
            let report = capstan_registry::probe(&settings, timeout)
                .await
                .map_err(|e| AppError::Unreachable(e.to_string()))?;
            Ok(ProbeResult {
                latency_ms: report.latency.as_millis() as u64,
                session_timeout_ms: report.negotiated_session_timeout.as_millis() as u64,
                namespace_exists: report.namespace_exists,
                jobs: report.children,
            })
        }
    }
}

/// Tests the connection of a saved centre.
pub async fn test(state: &AppState, actor: &Actor, name: &str) -> Result<ProbeResult, AppError> {
    let audit = Audit::new("centre.test", "centre", name).by(actor);
    let result = async {
        actor.require(Role::Viewer)?;
        let current = row(state, name).await?;
        let write = validate(state, &input_of(&current), Some(&current))?;
        probe_write(state, &write).await
    }
    .await;
    let audit = match &result {
        Ok(r) => audit.after(r),
        Err(_) => audit,
    };
    audit.finish(state, &result).await;
    result
}

fn input_of(row: &CentreRow) -> CentreInput {
    CentreInput {
        name: row.name.clone(),
        kind: row.kind(),
        connect: row.connect.clone(),
        namespace: row.namespace.clone(),
        digest: None,
        clear_digest: false,
        session_timeout_ms: u32::try_from(row.session_timeout_ms).ok(),
        color: Some(row.color.clone()),
        production: row.production,
    }
}
