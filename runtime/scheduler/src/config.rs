//! `/{job}/config`: the YAML of ElasticJob's `JobConfigurationPOJO` (spec §3).
//!
//! Reading is lenient: unknown keys are kept, both spellings of the thread-pool key are
//! accepted, and tags are ignored. Writing is what Java's strict SnakeYAML bean loader
//! accepts: keys in alphabetical order, null and empty values dropped, booleans and numbers
//! always written, and every top-level entry we do not model (unknown keys,
//! `jobExtraConfigurations` with its `!!org.apache…` tags) re-emitted verbatim, as read.

use std::collections::BTreeMap;

use serde_norway::Value;

use crate::cron::{Schedule, Zone};
use crate::sharding::Strategy;

/// Which key names the executor thread-pool type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThreadPoolKey {
    /// `jobExecutorThreadPoolSizeProviderType` (3.0.5+).
    #[default]
    SizeProvider,
    /// `jobExecutorServiceHandlerType` (3.0.4 and older).
    ServiceHandler,
}

impl ThreadPoolKey {
    fn name(self) -> &'static str {
        match self {
            ThreadPoolKey::SizeProvider => "jobExecutorThreadPoolSizeProviderType",
            ThreadPoolKey::ServiceHandler => "jobExecutorServiceHandlerType",
        }
    }
}

/// A job's configuration. Field defaults are the POJO defaults (what an absent key means).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobConfig {
    /// `jobName`.
    pub job_name: String,
    /// `cron`; empty or absent for one-off jobs.
    pub cron: Option<String>,
    /// `timeZone`.
    pub time_zone: Option<String>,
    /// `shardingTotalCount`.
    pub sharding_total_count: i32,
    /// `shardingItemParameters`, e.g. `0=A,1=B`.
    pub sharding_item_parameters: Option<String>,
    /// `jobParameter`.
    pub job_parameter: Option<String>,
    /// `monitorExecution`.
    pub monitor_execution: bool,
    /// `failover`.
    pub failover: bool,
    /// `misfire`.
    pub misfire: bool,
    /// `maxTimeDiffSeconds` (-1 disables the check).
    pub max_time_diff_seconds: i32,
    /// `reconcileIntervalMinutes` (0 disables reconcile).
    pub reconcile_interval_minutes: i32,
    /// `jobShardingStrategyType`.
    pub job_sharding_strategy_type: Option<String>,
    /// The executor thread-pool type (`CPU` or `SINGLE_THREAD`), under either key.
    pub thread_pool_type: Option<String>,
    /// Which key the thread-pool type is written under (the one it was read from).
    pub thread_pool_key: ThreadPoolKey,
    /// `jobErrorHandlerType`.
    pub job_error_handler_type: Option<String>,
    /// `jobListenerTypes`.
    pub job_listener_types: Vec<String>,
    /// `description`.
    pub description: Option<String>,
    /// `props`.
    pub props: BTreeMap<String, String>,
    /// `disabled` (read by Java only at instance start-up).
    pub disabled: bool,
    /// `overwrite`.
    pub overwrite: bool,
    /// `label`.
    pub label: Option<String>,
    /// `staticSharding`.
    pub static_sharding: bool,
    /// Top-level entries this type does not model, by key: their YAML exactly as read
    /// (`key:` line included), written back unchanged.
    pub preserved: BTreeMap<String, String>,
}

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The YAML key.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Why a config could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not YAML, or not a mapping.
    #[error("the job config is not a YAML mapping: {0}")]
    Syntax(String),
    /// A known key holds a value of the wrong type.
    #[error("{field}: {message}")]
    Type {
        /// The YAML key.
        field: &'static str,
        /// What was expected.
        message: String,
    },
}

const KNOWN: &[&str] = &[
    "cron",
    "description",
    "disabled",
    "failover",
    "jobErrorHandlerType",
    "jobExecutorServiceHandlerType",
    "jobExecutorThreadPoolSizeProviderType",
    "jobListenerTypes",
    "jobName",
    "jobParameter",
    "jobShardingStrategyType",
    "label",
    "maxTimeDiffSeconds",
    "misfire",
    "monitorExecution",
    "overwrite",
    "props",
    "reconcileIntervalMinutes",
    "shardingItemParameters",
    "shardingTotalCount",
    "staticSharding",
    "timeZone",
];

/// Splits a block-style document into top-level entries: each starts at a line with
/// `key:` at column 0; indented lines and `- ` items at column 0 (SnakeYAML's list style)
/// continue it.
fn top_level_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let starts_entry = !line.starts_with([' ', '\t', '-', '#'])
            && !line.is_empty()
            && line != "---"
            && line.contains(':');
        if starts_entry {
            let key = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(['\'', '"']);
            blocks.push((key.to_owned(), format!("{line}\n")));
        } else if let Some((_, block)) = blocks.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks
}

fn type_error(field: &'static str, message: &str) -> ConfigError {
    ConfigError::Type {
        field,
        message: message.to_owned(),
    }
}

fn get_str(v: Option<&Value>, field: &'static str) -> Result<Option<String>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(type_error(field, "expected text")),
    }
}

fn get_bool(v: Option<&Value>, field: &'static str, default: bool) -> Result<bool, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(_) => Err(type_error(field, "expected true or false")),
    }
}

fn get_int(v: Option<&Value>, field: &'static str, default: i32) -> Result<i32, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|i| i32::try_from(i).ok())
            .ok_or_else(|| type_error(field, "expected a 32-bit integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| type_error(field, "expected an integer")),
        Some(_) => Err(type_error(field, "expected an integer")),
    }
}

impl JobConfig {
    /// Reads a config leniently.
    ///
    /// # Errors
    /// [`ConfigError`] for text that is not a YAML mapping, or a known key of the wrong
    /// type. Unknown keys are never an error.
    pub fn from_yaml(text: &str) -> Result<JobConfig, ConfigError> {
        let value: Value =
            serde_norway::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let Value::Mapping(map) = value else {
            return Err(ConfigError::Syntax("the document is not a mapping".into()));
        };
        let get = |k: &str| map.get(k);
        let (thread_pool_type, thread_pool_key) = match (
            get_str(
                get("jobExecutorThreadPoolSizeProviderType"),
                "jobExecutorThreadPoolSizeProviderType",
            )?,
            get_str(
                get("jobExecutorServiceHandlerType"),
                "jobExecutorServiceHandlerType",
            )?,
        ) {
            (Some(t), _) => (Some(t), ThreadPoolKey::SizeProvider),
            (None, Some(t)) => (Some(t), ThreadPoolKey::ServiceHandler),
            (None, None) => (None, ThreadPoolKey::SizeProvider),
        };
        let job_listener_types = match get("jobListenerTypes") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(|i| get_str(Some(i), "jobListenerTypes").map(Option::unwrap_or_default))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(type_error("jobListenerTypes", "expected a list")),
        };
        let props = match get("props") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Mapping(m)) => m
                .iter()
                .map(|(k, v)| {
                    Ok((
                        get_str(Some(k), "props")?.unwrap_or_default(),
                        get_str(Some(v), "props")?.unwrap_or_default(),
                    ))
                })
                .collect::<Result<_, ConfigError>>()?,
            Some(_) => return Err(type_error("props", "expected a mapping")),
        };
        // Everything else, verbatim. Block-style text (what Java writes) keeps its exact
        // form; anything else falls back to re-serialising the value.
        let blocks = top_level_blocks(text);
        let mut preserved = BTreeMap::new();
        for (k, v) in &map {
            let Some(key) = k.as_str() else { continue };
            if KNOWN.contains(&key) {
                continue;
            }
            let raw = blocks
                .iter()
                .find(|(bk, _)| bk == key)
                .map(|(_, b)| b.clone())
                .unwrap_or_else(|| {
                    let mut single = serde_norway::Mapping::new();
                    single.insert(k.clone(), v.clone());
                    serde_norway::to_string(&single).unwrap_or_default()
                });
            preserved.insert(key.to_owned(), raw);
        }
        Ok(JobConfig {
            job_name: get_str(get("jobName"), "jobName")?.unwrap_or_default(),
            cron: get_str(get("cron"), "cron")?,
            time_zone: get_str(get("timeZone"), "timeZone")?,
            sharding_total_count: get_int(get("shardingTotalCount"), "shardingTotalCount", 0)?,
            sharding_item_parameters: get_str(
                get("shardingItemParameters"),
                "shardingItemParameters",
            )?,
            job_parameter: get_str(get("jobParameter"), "jobParameter")?,
            monitor_execution: get_bool(get("monitorExecution"), "monitorExecution", false)?,
            failover: get_bool(get("failover"), "failover", false)?,
            misfire: get_bool(get("misfire"), "misfire", false)?,
            max_time_diff_seconds: get_int(get("maxTimeDiffSeconds"), "maxTimeDiffSeconds", -1)?,
            reconcile_interval_minutes: get_int(
                get("reconcileIntervalMinutes"),
                "reconcileIntervalMinutes",
                0,
            )?,
            job_sharding_strategy_type: get_str(
                get("jobShardingStrategyType"),
                "jobShardingStrategyType",
            )?,
            thread_pool_type,
            thread_pool_key,
            job_error_handler_type: get_str(get("jobErrorHandlerType"), "jobErrorHandlerType")?,
            job_listener_types,
            description: get_str(get("description"), "description")?,
            props,
            disabled: get_bool(get("disabled"), "disabled", false)?,
            overwrite: get_bool(get("overwrite"), "overwrite", false)?,
            label: get_str(get("label"), "label")?,
            static_sharding: get_bool(get("staticSharding"), "staticSharding", false)?,
            preserved,
        })
    }

    /// Writes the config as Java's SnakeYAML `dumpAsMap` would: alphabetical keys, nulls
    /// and empty collections dropped, preserved entries verbatim.
    pub fn to_yaml(&self) -> String {
        let mut entries: BTreeMap<String, String> = self.preserved.clone();
        let mut put = |key: &str, text: Option<String>| {
            if let Some(t) = text {
                entries.insert(key.to_owned(), t);
            }
        };
        let scalar =
            |key: &str, v: &Option<String>| v.as_ref().map(|s| format!("{key}: {}\n", quote(s)));
        let plain = |key: &str, v: String| Some(format!("{key}: {v}\n"));
        put("cron", scalar("cron", &self.cron));
        put("description", scalar("description", &self.description));
        put("disabled", plain("disabled", self.disabled.to_string()));
        put("failover", plain("failover", self.failover.to_string()));
        put(
            "jobErrorHandlerType",
            scalar("jobErrorHandlerType", &self.job_error_handler_type),
        );
        let pool_key = self.thread_pool_key.name();
        put(pool_key, scalar(pool_key, &self.thread_pool_type));
        if !self.job_listener_types.is_empty() {
            let items: String = self
                .job_listener_types
                .iter()
                .map(|t| format!("- {}\n", quote(t)))
                .collect();
            put(
                "jobListenerTypes",
                Some(format!("jobListenerTypes:\n{items}")),
            );
        }
        put(
            "jobName",
            Some(format!("jobName: {}\n", quote(&self.job_name))),
        );
        put("jobParameter", scalar("jobParameter", &self.job_parameter));
        put(
            "jobShardingStrategyType",
            scalar("jobShardingStrategyType", &self.job_sharding_strategy_type),
        );
        put("label", scalar("label", &self.label));
        put(
            "maxTimeDiffSeconds",
            plain("maxTimeDiffSeconds", self.max_time_diff_seconds.to_string()),
        );
        put("misfire", plain("misfire", self.misfire.to_string()));
        put(
            "monitorExecution",
            plain("monitorExecution", self.monitor_execution.to_string()),
        );
        put("overwrite", plain("overwrite", self.overwrite.to_string()));
        if !self.props.is_empty() {
            let items: String = self
                .props
                .iter()
                .map(|(k, v)| format!("  {}: {}\n", quote(k), quote(v)))
                .collect();
            put("props", Some(format!("props:\n{items}")));
        }
        put(
            "reconcileIntervalMinutes",
            plain(
                "reconcileIntervalMinutes",
                self.reconcile_interval_minutes.to_string(),
            ),
        );
        put(
            "shardingItemParameters",
            scalar("shardingItemParameters", &self.sharding_item_parameters),
        );
        put(
            "shardingTotalCount",
            plain("shardingTotalCount", self.sharding_total_count.to_string()),
        );
        put(
            "staticSharding",
            plain("staticSharding", self.static_sharding.to_string()),
        );
        put("timeZone", scalar("timeZone", &self.time_zone));
        entries.into_values().collect()
    }

    /// The config as JSON, keys as in the YAML (what an API returns).
    pub fn to_json(&self) -> serde_json::Value {
        serde_norway::from_str(&self.to_yaml()).unwrap_or(serde_json::Value::Null)
    }

    /// Checks every field; returns all problems at once.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut err =
            |field: &'static str, message: String| errors.push(FieldError { field, message });
        let name = self.job_name.trim();
        if name.is_empty() {
            err("jobName", "a job name is required".into());
        } else if name.contains('/')
            || name.contains(crate::instance::DELIMITER)
            || name.len() > 255
        {
            err(
                "jobName",
                "use at most 255 characters, without '/' or '@-@'".into(),
            );
        }
        if self.sharding_total_count <= 0 {
            err("shardingTotalCount", "must be at least 1".into());
        }
        let zone = match Zone::parse(self.time_zone.as_deref()) {
            Ok(z) => Some(z),
            Err(e) => {
                err("timeZone", e.to_string());
                None
            }
        };
        if let (Some(cron), Some(zone)) =
            (self.cron.as_deref().filter(|c| !c.trim().is_empty()), zone)
            && let Err(e) = Schedule::parse(cron, zone)
        {
            err("cron", e.to_string());
        }
        if let Err(e) = crate::context::item_parameters(self.sharding_item_parameters.as_deref()) {
            err(
                "shardingItemParameters",
                format!("{e}; write item=value pairs such as 0=A,1=B"),
            );
        }
        if let Err(e) = Strategy::from_config(self.job_sharding_strategy_type.as_deref()) {
            err("jobShardingStrategyType", e.to_string());
        }
        if let Some(t) = self.thread_pool_type.as_deref().filter(|t| !t.is_empty())
            && !matches!(t, "CPU" | "SINGLE_THREAD")
        {
            err(
                "jobExecutorThreadPoolSizeProviderType",
                format!("{t:?}: use CPU or SINGLE_THREAD"),
            );
        }
        if let Some(t) = self
            .job_error_handler_type
            .as_deref()
            .filter(|t| !t.is_empty())
            && !matches!(
                t,
                "LOG" | "THROW" | "IGNORE" | "EMAIL" | "WECHAT" | "DINGTALK"
            )
        {
            err(
                "jobErrorHandlerType",
                format!("{t:?}: use LOG, THROW, IGNORE, EMAIL, WECHAT or DINGTALK"),
            );
        }
        if self.max_time_diff_seconds < -1 {
            err(
                "maxTimeDiffSeconds",
                "use -1 (off) or a number of seconds".into(),
            );
        }
        if self.reconcile_interval_minutes < 0 {
            err(
                "reconcileIntervalMinutes",
                "use 0 (off) or a number of minutes".into(),
            );
        }
        errors
    }
}

/// A string as SnakeYAML would accept it back as the same string: plain when that is
/// unambiguous, otherwise single-quoted (or double-quoted when it holds control
/// characters). Quoting more than SnakeYAML would is harmless to Java's loader.
fn quote(s: &str) -> String {
    let resolves_to_other_type = {
        let lower = s.to_ascii_lowercase();
        matches!(
            lower.as_str(),
            "" | "~"
                | "null"
                | "true"
                | "false"
                | "yes"
                | "no"
                | "on"
                | "off"
                | "y"
                | "n"
                | "="
                | "<<"
        ) || s.parse::<f64>().is_ok()
            || s.starts_with(['.', '+', '-']) && s[1..].parse::<f64>().is_ok()
            || s.chars().next().is_some_and(|c| c.is_ascii_digit())
                && s.chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '_' | ':' | '-' | 'x' | '.'))
    };
    let needs_quotes = resolves_to_other_type
        || s.starts_with([
            '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%',
            '@', '`', ' ',
        ])
        || s.ends_with([' ', ':'])
        || s.contains(": ")
        || s.contains(" #")
        || s.contains('\t');
    if s.chars().any(|c| c.is_control()) {
        let escaped: String = s
            .chars()
            .map(|c| match c {
                '"' => "\\\"".to_owned(),
                '\\' => "\\\\".to_owned(),
                '\n' => "\\n".to_owned(),
                '\t' => "\\t".to_owned(),
                '\r' => "\\r".to_owned(),
                c if c.is_control() => format!("\\u{:04x}", c as u32),
                c => c.to_string(),
            })
            .collect();
        format!("\"{escaped}\"")
    } else if needs_quotes {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `elasticjob-registry.md` §3.2, the upstream test fixture's text.
    const SPEC_EXAMPLE: &str = "cron: 0/5 * * * * ?
description: ''
disabled: false
failover: false
jobErrorHandlerType: IGNORE
jobExecutorThreadPoolSizeProviderType: CPU
jobListenerTypes:
- LOG
jobName: orderJob
jobParameter: param
jobShardingStrategyType: AVG_ALLOCATION
maxTimeDiffSeconds: -1
misfire: true
monitorExecution: true
overwrite: false
props:
  streaming.process: 'true'
reconcileIntervalMinutes: 10
shardingItemParameters: 0=A,1=B,2=C
shardingTotalCount: 3
staticSharding: false
";

    #[test]
    fn the_spec_example_round_trips_exactly() {
        let c = JobConfig::from_yaml(SPEC_EXAMPLE).expect("read");
        assert_eq!(c.job_name, "orderJob");
        assert_eq!(c.sharding_total_count, 3);
        assert_eq!(c.props["streaming.process"], "true");
        assert_eq!(c.thread_pool_key, ThreadPoolKey::SizeProvider);
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.to_yaml(), SPEC_EXAMPLE);
    }

    #[test]
    fn lenient_reading_keeps_what_it_does_not_know() {
        // Hand-ordered, the old thread-pool key, an unknown key, and a tracing entry with
        // Java class tags: all must survive an edit.
        let text = "shardingTotalCount: 2
jobName: tracedJob
jobExecutorServiceHandlerType: SINGLE_THREAD
cron: 0 0/1 * * * ?
someFutureKey: 42
jobExtraConfigurations:
- !!org.apache.shardingsphere.elasticjob.tracing.yaml.YamlTracingConfiguration
  tracingStorageConfiguration: !!org.apache.shardingsphere.elasticjob.tracing.rdb.yaml.YamlDataSourceConfiguration
    dataSourceClassName: com.zaxxer.hikari.HikariDataSource
    props:
      url: jdbc:h2:mem:job_event_storage
  type: RDB
";
        let mut c = JobConfig::from_yaml(text).expect("read");
        assert_eq!(c.thread_pool_type.as_deref(), Some("SINGLE_THREAD"));
        assert_eq!(c.thread_pool_key, ThreadPoolKey::ServiceHandler);
        c.cron = Some("0 0/2 * * * ?".into());
        let out = c.to_yaml();
        assert!(
            out.contains("jobExecutorServiceHandlerType: SINGLE_THREAD\n"),
            "{out}"
        );
        assert!(out.contains("someFutureKey: 42\n"), "{out}");
        assert!(out.contains(
            "jobExtraConfigurations:\n- !!org.apache.shardingsphere.elasticjob.tracing.yaml.YamlTracingConfiguration\n"
        ));
        assert!(
            out.contains("    dataSourceClassName: com.zaxxer.hikari.HikariDataSource\n"),
            "{out}"
        );
        // Alphabetical, nulls dropped, booleans and ints written.
        let keys: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with([' ', '-']))
            .map(|l| l.split(':').next().unwrap_or(""))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(
            out.contains("monitorExecution: false\n") && out.contains("maxTimeDiffSeconds: -1\n")
        );
        assert!(!out.contains("description"));
        // And it reads back to the same config.
        assert_eq!(JobConfig::from_yaml(&out).expect("reread"), c);
    }

    #[test]
    fn strings_that_look_like_other_types_are_quoted() {
        for (s, yaml) in [
            ("true", "'true'"),
            ("", "''"),
            ("123", "'123'"),
            ("-1", "'-1'"),
            ("null", "'null'"),
            ("a: b", "'a: b'"),
            ("it's", "it's"),
            ("#x", "'#x'"),
            ("0/5 * * * * ?", "0/5 * * * * ?"),
            ("line\nbreak", "\"line\\nbreak\""),
        ] {
            assert_eq!(quote(s), yaml, "{s:?}");
            let doc = format!("k: {yaml}\n");
            let back: BTreeMap<String, String> = serde_norway::from_str(&doc).expect("yaml");
            assert_eq!(back["k"], s, "{doc}");
        }
    }

    #[test]
    fn validation_reports_every_field() {
        let c = JobConfig {
            job_name: "bad/name".into(),
            cron: Some("0 0 25 * * ?".into()),
            time_zone: Some("Nowhere/Land".into()),
            sharding_total_count: 0,
            sharding_item_parameters: Some("0=A,x=B".into()),
            job_sharding_strategy_type: Some("RANDOM".into()),
            thread_pool_type: Some("GPU".into()),
            job_error_handler_type: Some("PAGER".into()),
            max_time_diff_seconds: -5,
            reconcile_interval_minutes: -1,
            ..JobConfig::default()
        };
        let fields: Vec<&str> = c.validate().iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "jobName",
                "shardingTotalCount",
                "timeZone",
                "shardingItemParameters",
                "jobShardingStrategyType",
                "jobExecutorThreadPoolSizeProviderType",
                "jobErrorHandlerType",
                "maxTimeDiffSeconds",
                "reconcileIntervalMinutes",
            ]
        );
        let mut ok = c.clone();
        ok.time_zone = Some("GMT+08:00".into());
        assert!(
            ok.validate().iter().any(|e| e.field == "cron"),
            "bad cron reported once the zone is valid"
        );
    }

    #[test]
    fn malformed_yaml_is_a_clear_error() {
        assert!(matches!(
            JobConfig::from_yaml("jobName: [unclosed"),
            Err(ConfigError::Syntax(_))
        ));
        assert!(matches!(
            JobConfig::from_yaml("- a list"),
            Err(ConfigError::Syntax(_))
        ));
        assert!(matches!(
            JobConfig::from_yaml("jobName: x\nshardingTotalCount: many\n"),
            Err(ConfigError::Type {
                field: "shardingTotalCount",
                ..
            })
        ));
    }
}
