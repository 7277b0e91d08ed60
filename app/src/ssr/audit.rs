//! Recording audit entries. Every mutating operation builds one [`Audit`] up front and
//! finishes it with the operation's result, so refusals and failures are recorded too.

use serde::Serialize;

use super::AppState;
use super::auth::Actor;
use super::db::audit::{NewEntry, insert};
use crate::error::AppError;
use crate::model::AuditResult;

/// An audit entry under construction.
#[derive(Debug, Clone)]
pub struct Audit(NewEntry);

impl Audit {
    /// Starts an entry for `action` on `target`.
    pub fn new(action: &str, target_kind: &str, target: impl Into<String>) -> Self {
        Audit(NewEntry {
            actor: None,
            source_ip: None,
            action: action.to_owned(),
            target_kind: target_kind.to_owned(),
            target: target.into(),
            before: None,
            after: None,
            result: AuditResult::Ok,
            detail: None,
        })
    }

    /// Attributes the entry to a signed-in user.
    pub fn by(mut self, actor: &Actor) -> Self {
        self.0.actor = Some(actor.user.username.clone());
        self.0.source_ip = actor.source_ip.clone();
        self
    }

    /// Attributes the entry to whoever is at `source_ip`, claiming to be `username`.
    pub fn from_addr(mut self, username: Option<&str>, source_ip: Option<String>) -> Self {
        self.0.actor = username.map(str::to_owned);
        self.0.source_ip = source_ip;
        self
    }

    /// Records the state before the change.
    pub fn before(mut self, value: &impl Serialize) -> Self {
        self.0.before = serde_json::to_string(value).ok();
        self
    }

    /// Records the state after the change.
    pub fn after(mut self, value: &impl Serialize) -> Self {
        self.0.after = serde_json::to_string(value).ok();
        self
    }

    /// Writes the entry with the outcome of `result`: `ok`, `denied` for refusals
    /// (credentials, role, rate limit) and `failed` for everything else.
    ///
    /// A failure to write is logged, not returned: the operation has already happened and
    /// its result must reach the user.
    pub async fn finish<T>(mut self, state: &AppState, result: &Result<T, AppError>) {
        if let Err(e) = result {
            self.0.result = match e {
                AppError::Unauthenticated
                | AppError::BadCredentials
                | AppError::Forbidden(_)
                | AppError::PasswordChangeRequired
                | AppError::RateLimited { .. } => AuditResult::Denied,
                _ => AuditResult::Failed,
            };
            self.0.detail = Some(e.to_string());
        }
        if let Err(e) = insert(&state.db, &self.0).await {
            tracing::error!(action = %self.0.action, target = %self.0.target, error = %e,
                "could not write audit entry");
        }
    }
}
