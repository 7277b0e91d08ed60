//! What an item execution is told: ElasticJob's `ShardingContext`, and the task id of a
//! run (spec §8.3, §9).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::instance::{DELIMITER, InstanceId};

/// One item's view of a run, as ElasticJob hands it to `execute`. Its JSON (the form a
/// script gets as its last argument and an HTTP job in the `shardingContext` header) has
/// Gson's field order and omits absent values, as Java's does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardingContext {
    /// The job.
    pub job_name: String,
    /// The task id of the run ([`task_id`]).
    pub task_id: String,
    /// `shardingTotalCount`.
    pub sharding_total_count: u32,
    /// `jobParameter`, or the parameter an operator gave with a trigger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_parameter: Option<String>,
    /// This item.
    pub sharding_item: u32,
    /// This item's entry of `shardingItemParameters`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharding_parameter: Option<String>,
}

impl ShardingContext {
    /// The context as Java's Gson writes it.
    pub fn to_json(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `{job}@-@{items, comma-joined}@-@READY@-@{instance id}` (spec §8.3). It names the items
/// and instance, not the run: every run of the same items on one instance shares it.
pub fn task_id(job: &str, items: &[u32], instance: &InstanceId) -> String {
    // Appended in place: one per fire, and `format!` of the joined items cost some
    // 1,800 instructions.
    let mut id = String::with_capacity(job.len() + 40 + instance.as_str().len());
    id.push_str(job);
    id.push_str(DELIMITER);
    let mut number = itoa::Buffer::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            id.push(',');
        }
        id.push_str(number.format(*item));
    }
    for part in [DELIMITER, "READY", DELIMITER, instance.as_str()] {
        id.push_str(part);
    }
    id
}

/// `shardingItemParameters` (`0=A,1=B,2=C`) as Java's `ShardingItemParameters` reads it:
/// split on `,`, each part trimmed and split on `=` into exactly two, an integer key.
///
/// # Errors
/// The first malformed entry, described.
pub fn item_parameters(text: Option<&str>) -> Result<BTreeMap<u32, String>, String> {
    let mut out = BTreeMap::new();
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(out);
    };
    for part in text.split(',') {
        let part = part.trim();
        let pieces: Vec<&str> = part.split('=').collect();
        let [key, value] = pieces[..] else {
            return Err(format!(
                "{part:?} is not item=value (values may contain neither ',' nor '=')"
            ));
        };
        let item: u32 = key
            .trim()
            .parse()
            .map_err(|_| format!("{key:?} in {part:?} is not an item number"))?;
        out.insert(item, value.trim().to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_json_and_task_id_match_java() {
        let me: InstanceId = "192.168.1.9@-@3001".parse().expect("id");
        assert_eq!(
            task_id("orderJob", &[0, 1, 2], &me),
            "orderJob@-@0,1,2@-@READY@-@192.168.1.9@-@3001"
        );
        assert_eq!(task_id("j", &[], &me), "j@-@@-@READY@-@192.168.1.9@-@3001");
        let ctx = ShardingContext {
            job_name: "orderJob".into(),
            task_id: task_id("orderJob", &[1], &me),
            sharding_total_count: 3,
            job_parameter: None,
            sharding_item: 1,
            sharding_parameter: Some("B".into()),
        };
        assert_eq!(
            ctx.to_json(),
            r#"{"jobName":"orderJob","taskId":"orderJob@-@1@-@READY@-@192.168.1.9@-@3001","shardingTotalCount":3,"shardingItem":1,"shardingParameter":"B"}"#
        );
    }

    #[test]
    fn item_parameters_parse_like_java() {
        let p = item_parameters(Some(" 0=A, 1 = B ,2=C")).expect("valid");
        assert_eq!(p.get(&1).map(String::as_str), Some("B"));
        assert_eq!(p.len(), 3);
        assert!(item_parameters(None).expect("empty").is_empty());
        assert!(item_parameters(Some("0=A=B")).is_err());
        assert!(item_parameters(Some("x=A")).is_err());
        assert!(item_parameters(Some("0A")).is_err());
    }
}
