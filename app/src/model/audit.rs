use serde::{Deserialize, Serialize};

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AuditResult {
    /// Done.
    Ok,
    /// Refused: bad credentials, missing role, rate limit.
    Denied,
    /// Attempted and failed (validation, conflict, unreachable registry…).
    Failed,
}

impl AuditResult {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Ok => "ok",
            AuditResult::Denied => "denied",
            AuditResult::Failed => "failed",
        }
    }

    /// Parses a stored value.
    pub fn parse(s: &str) -> Option<Self> {
        [AuditResult::Ok, AuditResult::Denied, AuditResult::Failed]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// One audit-log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When, in ms since the epoch.
    pub at: i64,
    /// Who: a username, or `None` for an anonymous attempt.
    pub actor: Option<String>,
    /// The client address the request came from.
    pub source_ip: Option<String>,
    /// What, e.g. `login`, `centre.update`.
    pub action: String,
    /// The kind of thing acted on: `session`, `user`, `centre`…
    pub target_kind: String,
    /// Which one.
    pub target: String,
    /// State before, as JSON text (secrets removed).
    pub before: Option<String>,
    /// State after, as JSON text (secrets removed).
    pub after: Option<String>,
    /// The outcome.
    pub result: AuditResult,
    /// A short explanation, for refusals and failures.
    pub detail: Option<String>,
}

/// Audit-log query; every field is optional and they combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
pub struct AuditFilter {
    /// Exact username.
    pub actor: Option<String>,
    /// Action prefix, e.g. `centre.` or `login`.
    pub action: Option<String>,
    /// Substring of the target.
    pub target: Option<String>,
    /// `ok`, `denied` or `failed`.
    pub result: Option<String>,
    /// From this time, ms since the epoch, inclusive.
    pub from: Option<i64>,
    /// Until this time, ms since the epoch, exclusive.
    pub to: Option<i64>,
    /// 1-based page.
    pub page: Option<u32>,
    /// Rows per page (1 to 200, default 50).
    pub per_page: Option<u32>,
}

/// One page of audit entries, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// Entries matching the filter, on all pages.
    pub total: i64,
    /// This page, 1-based.
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
    /// The entries.
    pub items: Vec<AuditEntry>,
}
