//! Queries on `audit_log`.

use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use super::now_ms;
use crate::model::{AuditEntry, AuditFilter, AuditPage, AuditResult};

/// An entry about to be written.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Username, or `None` when nobody is signed in.
    pub actor: Option<String>,
    /// Client address.
    pub source_ip: Option<String>,
    /// Dotted action name.
    pub action: String,
    /// Kind of target.
    pub target_kind: String,
    /// Target.
    pub target: String,
    /// Before, as JSON.
    pub before: Option<String>,
    /// After, as JSON.
    pub after: Option<String>,
    /// Outcome.
    pub result: AuditResult,
    /// Explanation.
    pub detail: Option<String>,
}

/// Appends an entry.
pub async fn insert(pool: &SqlitePool, e: &NewEntry) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, source_ip, action, target_kind, target, before_json, after_json, result, detail) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(now_ms())
    .bind(&e.actor)
    .bind(&e.source_ip)
    .bind(&e.action)
    .bind(&e.target_kind)
    .bind(&e.target)
    .bind(&e.before)
    .bind(&e.after)
    .bind(e.result.as_str())
    .bind(&e.detail)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    at: i64,
    actor: Option<String>,
    source_ip: Option<String>,
    action: String,
    target_kind: String,
    target: String,
    before_json: Option<String>,
    after_json: Option<String>,
    result: String,
    detail: Option<String>,
}

fn push_filter(q: &mut QueryBuilder<Sqlite>, f: &AuditFilter) {
    q.push(" WHERE 1 = 1");
    if let Some(actor) = f.actor.as_ref().filter(|s| !s.is_empty()) {
        q.push(" AND actor = ").push_bind(actor.clone());
    }
    if let Some(action) = f.action.as_ref().filter(|s| !s.is_empty()) {
        // Prefix match: `centre.` finds every centre action. Escape LIKE's wildcards.
        let escaped = action
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        q.push(" AND action LIKE ")
            .push_bind(format!("{escaped}%"))
            .push(" ESCAPE '\\'");
    }
    if let Some(target) = f.target.as_ref().filter(|s| !s.is_empty()) {
        q.push(" AND instr(target, ")
            .push_bind(target.clone())
            .push(") > 0");
    }
    if let Some(result) = f.result.as_ref().filter(|s| !s.is_empty()) {
        q.push(" AND result = ").push_bind(result.clone());
    }
    if let Some(from) = f.from {
        q.push(" AND at >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        q.push(" AND at < ").push_bind(to);
    }
}

/// One page of entries matching `filter`, newest first.
pub async fn query(pool: &SqlitePool, filter: &AuditFilter) -> sqlx::Result<AuditPage> {
    let per_page = filter.per_page.unwrap_or(50).clamp(1, 200);
    let page = filter.page.unwrap_or(1).max(1);
    let mut count = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM audit_log");
    push_filter(&mut count, filter);
    let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
    let mut rows = QueryBuilder::<Sqlite>::new(
        "SELECT id, at, actor, source_ip, action, target_kind, target, before_json, after_json, result, detail FROM audit_log",
    );
    push_filter(&mut rows, filter);
    rows.push(" ORDER BY at DESC, id DESC LIMIT ")
        .push_bind(i64::from(per_page))
        .push(" OFFSET ")
        .push_bind(i64::from(page - 1) * i64::from(per_page));
    let items = rows
        .build_query_as::<Row>()
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: r.at,
            actor: r.actor,
            source_ip: r.source_ip,
            action: r.action,
            target_kind: r.target_kind,
            target: r.target,
            before: r.before_json,
            after: r.after_json,
            result: AuditResult::parse(&r.result).unwrap_or(AuditResult::Failed),
            detail: r.detail,
        })
        .collect();
    Ok(AuditPage {
        total,
        page,
        per_page,
        items,
    })
}
