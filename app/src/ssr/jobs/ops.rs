//! Operations on jobs, items and servers. Each writes what ElasticJob's lifecycle module
//! writes (through `capstan_scheduler::admin::operations`), so Java instances react as to
//! ElasticJob-UI, and each is role-checked and audited, refusals included.

use capstan_scheduler::admin::operations as admin;
use serde::{Deserialize, Serialize};

use capstan_registry::cache::TreeView;

use super::configs::SETTLE;
use super::{confirm_destructive, open, scheduler_error};
use crate::error::AppError;
use crate::model::Role;
use crate::ssr::AppState;
use crate::ssr::audit::Audit;
use crate::ssr::auth::Actor;

/// What an operator can do to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobAction {
    /// Fire once on every instance now.
    Trigger,
    /// Skip fires until resumed (Capstan instances only).
    Pause,
    /// Undo pause.
    Resume,
    /// Disable on every server.
    Disable,
    /// Enable on every server.
    Enable,
    /// Stop the job on every instance (they leave; the job stays registered).
    Shutdown,
    /// Remove the job from the registry.
    Remove,
}

impl JobAction {
    /// The URL and audit name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Trigger => "trigger",
            JobAction::Pause => "pause",
            JobAction::Resume => "resume",
            JobAction::Disable => "disable",
            JobAction::Enable => "enable",
            JobAction::Shutdown => "shutdown",
            JobAction::Remove => "remove",
        }
    }

    /// From the URL.
    pub fn parse(s: &str) -> Option<JobAction> {
        [
            JobAction::Trigger,
            JobAction::Pause,
            JobAction::Resume,
            JobAction::Disable,
            JobAction::Enable,
            JobAction::Shutdown,
            JobAction::Remove,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }

    /// The role it needs (console.md lesson 7: removal is for admins).
    pub fn role(self) -> Role {
        match self {
            JobAction::Remove => Role::Admin,
            _ => Role::Operator,
        }
    }

    /// Whether it needs typed confirmation on a production centre.
    pub fn destructive(self) -> bool {
        matches!(
            self,
            JobAction::Disable | JobAction::Shutdown | JobAction::Remove
        )
    }
}

/// Applies `action` to `job`. `parameter` goes with a trigger; `confirm` is the typed
/// name a production centre asks for.
pub async fn job(
    state: &AppState,
    actor: &Actor,
    rc: &str,
    job: &str,
    action: JobAction,
    parameter: Option<&str>,
    confirm: Option<&str>,
) -> Result<(), AppError> {
    let mut audit = Audit::new(
        &format!("job.{}", action.as_str()),
        "job",
        format!("{rc}/{job}"),
    )
    .by(actor);
    if let Some(p) = parameter.filter(|p| !p.is_empty()) {
        audit = audit.after(&serde_json::json!({ "parameter": p }));
    }
    let result = async {
        let (row, conn) = open(state, actor, rc, action.role()).await?;
        if action.destructive() {
            confirm_destructive(&row, job, confirm)?;
        }
        let r = &conn.registry;
        match action {
            JobAction::Trigger => {
                // A stream pipeline runs continuously: a trigger would do nothing.
                if let Ok((root, _)) = r.get(&format!("/{job}")).await
                    && root == capstan_stream::registration::STREAM_TYPE.as_bytes()
                {
                    return Err(AppError::Conflict(format!(
                        "{job} is a stream pipeline: it runs continuously; pause, resume or restart it on its pipeline page"
                    )));
                }
                let parameter = parameter.map(str::trim).filter(|p| !p.is_empty());
                if parameter.is_some_and(|p| p.len() > 4096) {
                    return Err(AppError::field("parameter", "use at most 4096 bytes"));
                }
                let n = admin::trigger(r, job, parameter)
                    .await
                    .map_err(scheduler_error)?;
                if n == 0 {
                    return Err(AppError::Conflict(format!(
                        "{job} has no instance online: nothing would run the trigger"
                    )));
                }
                Ok(())
            }
            JobAction::Pause => admin::pause(r, job).await,
            JobAction::Resume => admin::resume(r, job).await,
            JobAction::Disable => admin::set_job_enabled(r, job, false).await,
            JobAction::Enable => admin::set_job_enabled(r, job, true).await,
            JobAction::Shutdown => admin::shutdown(r, job, None).await.map(drop),
            JobAction::Remove => admin::remove_job(r, job).await,
        }
        .map_err(scheduler_error)?;
        // Read-your-writes: what the caller reads next (the page, or an API client's
        // GET) comes from the cache, so wait until the cache shows the change.
        let root = format!("/{job}");
        let paused = format!("/{job}/paused");
        let servers = format!("/{job}/servers");
        let instances = format!("/{job}/instances");
        let all_servers = |v: &TreeView<'_>, value: &str| {
            v.children(&servers).iter().all(|ip| {
                v.get(&format!("{servers}/{ip}"))
                    .is_some_and(|n| n.data.eq_ignore_ascii_case(value.as_bytes()))
            })
        };
        conn.settle(SETTLE, |v| match action {
            JobAction::Trigger => true,
            JobAction::Pause => v.get(&paused).is_some(),
            JobAction::Resume => v.get(&paused).is_none(),
            JobAction::Disable => all_servers(v, "DISABLED"),
            JobAction::Enable => all_servers(v, "ENABLED"),
            JobAction::Shutdown => v.children(&instances).is_empty(),
            JobAction::Remove => v.get(&root).is_none(),
        })
        .await;
        Ok(())
    }
    .await;
    audit.finish(state, &result).await;
    result
}

/// Disables or enables one item of a job.
pub async fn item(
    state: &AppState,
    actor: &Actor,
    rc: &str,
    job: &str,
    item: u32,
    enabled: bool,
) -> Result<(), AppError> {
    let action = if enabled {
        "item.enable"
    } else {
        "item.disable"
    };
    let audit = Audit::new(action, "item", format!("{rc}/{job}/{item}")).by(actor);
    let result = async {
        let (_, conn) = open(state, actor, rc, Role::Operator).await?;
        admin::set_item_enabled(&conn.registry, job, item, enabled)
            .await
            .map_err(scheduler_error)?;
        let flag = format!("/{job}/sharding/{item}/disabled");
        conn.settle(SETTLE, |v| v.get(&flag).is_some() != enabled)
            .await;
        Ok(())
    }
    .await;
    audit.finish(state, &result).await;
    result
}

/// What an operator can do to a server (an IP, across the centre's jobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerAction {
    /// Disable on every job.
    Disable,
    /// Enable on every job.
    Enable,
    /// Stop every instance on it.
    Shutdown,
    /// Remove it from every job (its instances too).
    Remove,
}

impl ServerAction {
    /// The URL and audit name.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerAction::Disable => "disable",
            ServerAction::Enable => "enable",
            ServerAction::Shutdown => "shutdown",
            ServerAction::Remove => "remove",
        }
    }

    /// From the URL.
    pub fn parse(s: &str) -> Option<ServerAction> {
        [
            ServerAction::Disable,
            ServerAction::Enable,
            ServerAction::Shutdown,
            ServerAction::Remove,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// Applies `action` to the server `ip`.
pub async fn server(
    state: &AppState,
    actor: &Actor,
    rc: &str,
    ip: &str,
    action: ServerAction,
    confirm: Option<&str>,
) -> Result<(), AppError> {
    let audit = Audit::new(
        &format!("server.{}", action.as_str()),
        "server",
        format!("{rc}/{ip}"),
    )
    .by(actor);
    let result = async {
        let role = if action == ServerAction::Remove {
            Role::Admin
        } else {
            Role::Operator
        };
        let (row, conn) = open(state, actor, rc, role).await?;
        if action != ServerAction::Enable {
            confirm_destructive(&row, ip, confirm)?;
        }
        let r = &conn.registry;
        let touched = match action {
            ServerAction::Disable => admin::set_server_enabled(r, ip, false).await,
            ServerAction::Enable => admin::set_server_enabled(r, ip, true).await,
            ServerAction::Shutdown => admin::shutdown_server(r, ip).await,
            ServerAction::Remove => admin::remove_server(r, ip).await,
        }
        .map_err(scheduler_error)?;
        let value = match action {
            ServerAction::Disable => Some("DISABLED"),
            ServerAction::Enable => Some("ENABLED"),
            _ => None,
        };
        if let Some(value) = value {
            conn.settle(SETTLE, |v| {
                v.children("/").iter().all(|job| {
                    v.get(&format!("/{job}/servers/{ip}"))
                        .is_none_or(|n| n.data.eq_ignore_ascii_case(value.as_bytes()))
                })
            })
            .await;
        }
        if touched == 0 && action != ServerAction::Shutdown {
            return Err(AppError::NotFound(format!(
                "no job of {rc} has the server {ip}"
            )));
        }
        Ok(())
    }
    .await;
    audit.finish(state, &result).await;
    result
}

/// Removes every stale server (no instance online) of the centre; returns their IPs.
pub async fn remove_stale_servers(
    state: &AppState,
    actor: &Actor,
    rc: &str,
    confirm: Option<&str>,
) -> Result<Vec<String>, AppError> {
    let mut audit = Audit::new("server.remove_stale", "centre", rc).by(actor);
    let result = async {
        let (row, conn) = open(state, actor, rc, Role::Admin).await?;
        confirm_destructive(&row, rc, confirm)?;
        let stale: Vec<String> = conn.cache.read(|v| {
            capstan_scheduler::admin::servers(v)
                .into_iter()
                .filter(|s| s.stale)
                .map(|s| s.ip)
                .collect()
        });
        for ip in &stale {
            // Re-checked per server against the registry: an instance may have come back
            // since the cache was read, and then the server is not stale any more.
            if admin::server_has_instances(&conn.registry, ip)
                .await
                .map_err(scheduler_error)?
            {
                continue;
            }
            admin::remove_server(&conn.registry, ip)
                .await
                .map_err(scheduler_error)?;
        }
        Ok(stale)
    }
    .await;
    if let Ok(ips) = &result {
        audit = audit.after(ips);
    }
    audit.finish(state, &result).await;
    result
}
