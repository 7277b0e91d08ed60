//! Job configs: edit, create (script and HTTP jobs), export and import as YAML.

use std::collections::BTreeMap;

use capstan_scheduler::admin::operations as admin;
use capstan_scheduler::config::JobConfig;
use capstan_scheduler::cron::{Schedule, Zone};
use capstan_scheduler::history::now_ms;
use capstan_scheduler::kinds::{HTTP_TYPE, SCRIPT_TYPE};

use super::{open, scheduler_error};
use crate::error::AppError;
use crate::model::{ConfigEdit, ImportFailure, ImportReport, NewJob, Role};
use crate::ssr::AppState;
use crate::ssr::audit::Audit;
use crate::ssr::auth::Actor;

/// Largest config document accepted (Java's are a few hundred bytes).
const MAX_YAML: usize = 64 * 1024;
/// How long a write waits to be visible in the centre's cache before answering.
pub(crate) const SETTLE: std::time::Duration = std::time::Duration::from_secs(3);
/// Most documents one import takes.
const MAX_IMPORT: usize = 1000;

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The next `n` fires of `cron` in `time_zone`, for the editor's preview.
///
/// # Errors
/// A validation error on `cron` or `timeZone`.
pub fn preview(cron: &str, time_zone: Option<&str>, n: usize) -> Result<Vec<i64>, AppError> {
    let zone = Zone::parse(time_zone).map_err(|e| AppError::field("timeZone", e.to_string()))?;
    let schedule =
        Schedule::parse(cron.trim(), zone).map_err(|e| AppError::field("cron", e.to_string()))?;
    Ok(schedule.next_n(now_ms(), n))
}

/// Applies the page's edit to the current config and saves it (admin).
pub async fn edit(
    state: &AppState,
    actor: &Actor,
    rc: &str,
    job: &str,
    edit: &ConfigEdit,
) -> Result<JobConfig, AppError> {
    let (_, conn) = open(state, actor, rc, Role::Admin).await?;
    let mut config = admin::job_config(&conn.registry, job)
        .await
        .map_err(scheduler_error)?;
    config.cron = opt(&edit.cron);
    config.sharding_total_count = match edit.sharding_total_count.trim().parse() {
        Ok(n) => n,
        Err(_) => {
            return Err(AppError::field(
                "shardingTotalCount",
                "enter a whole number of items",
            ));
        }
    };
    config.sharding_item_parameters = opt(&edit.sharding_item_parameters);
    config.job_parameter = opt(&edit.job_parameter);
    config.description = opt(&edit.description);
    config.label = opt(&edit.label);
    // Checkboxes: present when ticked.
    config.failover = edit.failover.is_some();
    config.misfire = edit.misfire.is_some();
    config.monitor_execution = edit.monitor_execution.is_some();
    save(state, actor, rc, job, config).await
}

/// Replaces a job's config with `text`, YAML or JSON (admin).
pub async fn replace(
    state: &AppState,
    actor: &Actor,
    rc: &str,
    job: &str,
    text: &str,
) -> Result<JobConfig, AppError> {
    actor.require(Role::Admin)?;
    let config = parse(text).map_err(|e| AppError::field("config", e))?;
    save(state, actor, rc, job, config).await
}

async fn save(
    state: &AppState,
    actor: &Actor,
    rc: &str,
    job: &str,
    config: JobConfig,
) -> Result<JobConfig, AppError> {
    let mut audit = Audit::new("job.config", "job", format!("{rc}/{job}")).by(actor);
    let result = async {
        let (_, conn) = open(state, actor, rc, Role::Admin).await?;
        if let Ok(before) = admin::job_config(&conn.registry, job).await {
            audit = audit.clone().before(&before.to_json());
        }
        audit = audit.clone().after(&config.to_json());
        let saved = admin::update_config(&conn.registry, job, config)
            .await
            .map_err(scheduler_error)?;
        let (path, yaml) = (format!("/{job}/config"), saved.to_yaml());
        conn.settle(SETTLE, |v| {
            v.get(&path).is_some_and(|n| *n.data == *yaml.as_bytes())
        })
        .await;
        Ok(saved)
    }
    .await;
    audit.finish(state, &result).await;
    result
}

fn parse(text: &str) -> Result<JobConfig, String> {
    if text.len() > MAX_YAML {
        return Err(format!("a config is at most {} KiB", MAX_YAML / 1024));
    }
    JobConfig::from_yaml(text).map_err(|e| e.to_string())
}

/// The console form's field for each config key a problem names.
fn form_field(key: &str) -> &str {
    match key {
        "jobName" => "name",
        "shardingTotalCount" => "sharding_total_count",
        "shardingItemParameters" => "sharding_item_parameters",
        "type" => "kind",
        "props.script.command.line" => "command",
        "props.http.uri" => "url",
        "props.http.method" => "method",
        other => other,
    }
}

/// Creates a script or HTTP job from the console form (admin). The runtimes that run
/// registry jobs (`capstan serve`, `capstan agent`) pick it up.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    rc: &str,
    new: &NewJob,
) -> Result<(), AppError> {
    let name = new.name.trim();
    let mut audit = Audit::new("job.create", "job", format!("{rc}/{name}")).by(actor);
    let result = async {
        let (_, conn) = open(state, actor, rc, Role::Admin).await?;
        let kind = new.kind.trim().to_ascii_uppercase();
        let mut props = BTreeMap::new();
        match kind.as_str() {
            SCRIPT_TYPE => {
                props.insert(
                    "script.command.line".to_owned(),
                    new.command.as_deref().unwrap_or_default().trim().to_owned(),
                );
            }
            HTTP_TYPE => {
                props.insert(
                    "http.uri".to_owned(),
                    new.url.as_deref().unwrap_or_default().trim().to_owned(),
                );
                props.insert(
                    "http.method".to_owned(),
                    new.method
                        .as_deref()
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .unwrap_or("GET")
                        .to_ascii_uppercase(),
                );
            }
            _ => return Err(AppError::field("kind", "choose SCRIPT or HTTP")),
        }
        let config = JobConfig {
            job_name: name.to_owned(),
            cron: opt(&new.cron),
            sharding_total_count: new.sharding_total_count.unwrap_or(1),
            sharding_item_parameters: new.sharding_item_parameters.as_deref().and_then(opt),
            description: new.description.as_deref().and_then(opt),
            label: new.tags.as_deref().and_then(opt),
            props,
            // ElasticJob's builder defaults.
            monitor_execution: true,
            misfire: true,
            max_time_diff_seconds: -1,
            reconcile_interval_minutes: 10,
            ..JobConfig::default()
        };
        if config.cron.is_none() {
            return Err(AppError::field("cron", "a cron expression is required"));
        }
        audit = audit.clone().after(&config.to_json());
        admin::create_job(&conn.registry, &config, &kind)
            .await
            .map_err(|e| match scheduler_error(e) {
                AppError::Validation { message, fields } => AppError::Validation {
                    message,
                    fields: fields
                        .into_iter()
                        .map(|(k, v)| (form_field(&k).to_owned(), v))
                        .collect(),
                },
                other => other,
            })?;
        // Read-your-writes: the job page the user lands on next reads the cache.
        let config_path = format!("/{}/config", config.job_name);
        conn.settle(SETTLE, |v| v.get(&config_path).is_some()).await;
        Ok(())
    }
    .await;
    audit.finish(state, &result).await;
    result
}

/// Every readable job config of the centre, as one YAML stream (`---` between jobs).
pub async fn export(state: &AppState, actor: &Actor, rc: &str) -> Result<String, AppError> {
    let (_, conn) = open(state, actor, rc, Role::Viewer).await?;
    let docs: Vec<String> = conn.cache.read(|v| {
        v.children("/")
            .into_iter()
            .filter_map(|job| {
                let (config, _) = capstan_scheduler::admin::read_config(v, job);
                let config = config?;
                let kind = v
                    .get(&format!("/{job}"))
                    .map(|n| String::from_utf8_lossy(&n.data).trim().to_owned())
                    .filter(|t| !t.is_empty());
                let head = match kind {
                    Some(k) => format!("# {job} ({k})\n"),
                    None => format!("# {job}\n"),
                };
                Some(head + &config.to_yaml())
            })
            .collect()
    });
    Ok(docs.join("---\n"))
}

/// Splits a YAML stream (`---` lines) or a JSON array into config documents.
fn documents(text: &str) -> Result<Vec<String>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(trimmed).map_err(|e| format!("not a JSON array: {e}"))?;
        return Ok(values.iter().map(serde_json::Value::to_string).collect());
    }
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(last) = docs.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    docs.retain(|d| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    Ok(docs)
}

/// Imports configs (admin): an existing job's config is replaced, a new script or HTTP
/// job is created. Each document succeeds or fails on its own.
pub async fn import(
    state: &AppState,
    actor: &Actor,
    rc: &str,
    text: &str,
) -> Result<ImportReport, AppError> {
    let mut audit = Audit::new("job.import", "centre", rc).by(actor);
    let result = async {
        let (_, conn) = open(state, actor, rc, Role::Admin).await?;
        let docs = documents(text).map_err(|e| AppError::field("yaml", e))?;
        if docs.is_empty() {
            return Err(AppError::field("yaml", "no job config found"));
        }
        if docs.len() > MAX_IMPORT {
            return Err(AppError::field(
                "yaml",
                format!("at most {MAX_IMPORT} jobs per import"),
            ));
        }
        let mut report = ImportReport::default();
        for (i, doc) in docs.iter().enumerate() {
            let config = match parse(doc) {
                Ok(c) if !c.job_name.trim().is_empty() => c,
                Ok(_) => {
                    report.failed.push(ImportFailure {
                        name: format!("document {}", i + 1),
                        error: "no jobName".into(),
                    });
                    continue;
                }
                Err(e) => {
                    report.failed.push(ImportFailure {
                        name: format!("document {}", i + 1),
                        error: e,
                    });
                    continue;
                }
            };
            let name = config.job_name.clone();
            let exists = conn.cache.read(|v| v.get(&format!("/{name}")).is_some());
            let outcome = if exists {
                admin::update_config(&conn.registry, &name, config)
                    .await
                    .map(|_| true)
            } else {
                let kind = if config.props.contains_key("script.command.line") {
                    SCRIPT_TYPE
                } else if config.props.contains_key("http.uri") {
                    HTTP_TYPE
                } else {
                    report.failed.push(ImportFailure {
                        name,
                        error: "a new job needs props script.command.line or http.uri: \
                                other jobs register themselves when their application starts"
                            .into(),
                    });
                    continue;
                };
                admin::create_job(&conn.registry, &config, kind)
                    .await
                    .map(|()| false)
            };
            match outcome {
                Ok(true) => report.updated.push(name),
                Ok(false) => report.created.push(name),
                Err(e) => report.failed.push(ImportFailure {
                    name,
                    error: scheduler_error(e).to_string(),
                }),
            }
        }
        Ok(report)
    }
    .await;
    if let Ok(r) = &result {
        audit = audit.after(r);
    }
    audit.finish(state, &result).await;
    result
}

#[cfg(test)]
mod tests {
    use super::documents;

    #[test]
    fn a_yaml_stream_splits_into_jobs_and_comments_alone_are_no_job() {
        let docs = documents("# a (SCRIPT)\njobName: a\n---\n# b\njobName: b\n---\n# only\n")
            .expect("docs");
        assert_eq!(docs.len(), 2);
        assert!(docs[1].contains("jobName: b"));
        let docs = documents(r#"[{"jobName":"a","cron":"0 * * * * ?"}]"#).expect("json");
        assert_eq!(docs.len(), 1);
        assert!(documents("[1,").is_err());
    }
}
