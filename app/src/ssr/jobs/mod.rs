//! Jobs, items and servers of a registry centre: the reads (from the centre's tree cache)
//! and the operations (through the scheduler's admin API), shared by server functions and
//! the REST API. Every operation checks the role and lands in the audit log.

pub mod configs;
pub mod index;
pub mod ops;
pub mod read;

use std::sync::Arc;

use capstan_scheduler::Error as SchedulerError;

use super::auth::Actor;
use super::db::centres::{self, CentreRow};
use super::registries::Connection;
use super::{AppState, internal};
use crate::error::AppError;
use crate::model::Role;

pub use index::JobIndex;

/// A centre's row and live connection, for a user allowed `role`.
pub async fn open(
    state: &AppState,
    actor: &Actor,
    rc: &str,
    role: Role,
) -> Result<(CentreRow, Arc<Connection>), AppError> {
    actor.require(role)?;
    let row = centres::by_name(&state.db, rc)
        .await
        .map_err(internal)?
        .ok_or_else(|| AppError::NotFound(format!("there is no registry centre named {rc:?}")))?;
    let conn = state.registries.get(&row).await?;
    Ok((row, conn))
}

/// The scheduler's refusals as errors a user can act on.
pub(crate) fn scheduler_error(e: SchedulerError) -> AppError {
    match e {
        SchedulerError::NotFound(m) => AppError::NotFound(m),
        SchedulerError::Conflict(m) => AppError::Conflict(m),
        e @ SchedulerError::PauseNotSupported { .. } => AppError::Conflict(e.to_string()),
        SchedulerError::InvalidConfig { problems, .. } => {
            let mut fields = std::collections::BTreeMap::new();
            for p in &problems {
                if let Some((field, why)) = p.split_once(": ") {
                    fields
                        .entry(field.to_owned())
                        .or_insert_with(|| why.to_owned());
                }
            }
            AppError::Validation {
                message: problems.join("; "),
                fields,
            }
        }
        e @ (SchedulerError::Cron { .. } | SchedulerError::TimeZone(_)) => AppError::Validation {
            message: e.to_string(),
            fields: Default::default(),
        },
        SchedulerError::Registry(e) => AppError::Unreachable(e.to_string()),
        e => internal(e),
    }
}

/// Production centres need the target's name typed before a destructive operation.
pub(crate) fn confirm_destructive(
    row: &CentreRow,
    target: &str,
    confirm: Option<&str>,
) -> Result<(), AppError> {
    if row.production && confirm.map(str::trim) != Some(target) {
        return Err(AppError::field(
            "confirm",
            format!(
                "{} is a production centre: type {target} to confirm",
                row.name
            ),
        ));
    }
    Ok(())
}
