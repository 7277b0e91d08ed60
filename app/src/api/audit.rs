//! The audit log (admins only).

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{AuditFilter, AuditPage};

/// One page of the audit log, filtered and paged on the server.
#[server(prefix = "/fn", endpoint = "list_audit")]
pub async fn list_audit(filter: AuditFilter) -> Result<AuditPage, AppError> {
    use crate::ssr::{app_state, audit_query, auth, respond};
    respond(
        async {
            let state = app_state()?;
            let actor = auth::current_actor(&state).await?;
            audit_query(&state, &actor, &filter).await
        }
        .await,
    )
}
