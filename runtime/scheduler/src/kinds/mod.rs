//! Job kinds: what runs for one item.
//!
//! - **Simple**: a Rust closure or a [`SimpleJob`] implementation, called once per item.
//! - **Dataflow**: a [`DataflowJob`]: fetch, then process; with `streaming.process=true`
//!   it loops while data keeps coming and no resharding is pending (spec §9).
//! - **Script** and **HTTP**: defined entirely by the config's props
//!   (`script.command.line`, `http.uri`, …), so a console can create them without code.
//!
//! Every kind reports an [`ItemOutcome`]; a failure carries the text an operator reads in
//! the run history.

mod http;
mod script;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use self::http::HttpSettings;
pub use self::script::ScriptSettings;
use crate::config::JobConfig;
use crate::context::ShardingContext;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The error a job's own code returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The `/{job}` value of script jobs (Java's typed job type).
pub const SCRIPT_TYPE: &str = "SCRIPT";
/// The `/{job}` value of HTTP jobs.
pub const HTTP_TYPE: &str = "HTTP";

/// How one item execution ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemOutcome {
    /// `None` on success; otherwise why it failed.
    pub failure: Option<String>,
    /// What the item printed or answered (scripts: stdout and stderr; HTTP: status and
    /// the start of the body), kept in the run record.
    pub output: Option<String>,
}

impl ItemOutcome {
    /// Success without output.
    pub fn ok() -> ItemOutcome {
        ItemOutcome::default()
    }

    /// A failure.
    pub fn failed(why: impl Into<String>) -> ItemOutcome {
        ItemOutcome {
            failure: Some(why.into()),
            output: None,
        }
    }

    fn from_result(r: Result<(), BoxError>) -> ItemOutcome {
        match r {
            Ok(()) => ItemOutcome::ok(),
            Err(e) => ItemOutcome::failed(error_chain(e.as_ref())),
        }
    }
}

/// An error and its sources, one per line: what Java's stack trace text gives an operator.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str("\ncaused by: ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What an item execution may ask the runtime while it runs.
#[derive(Clone)]
pub struct ItemEnv {
    /// The item's context.
    pub context: ShardingContext,
    /// The job's config as of the start of the run.
    pub config: Arc<JobConfig>,
    /// Whether a dataflow job in streaming mode may fetch again: no resharding pending, the
    /// prop still on, and the instance still fenced in.
    pub keep_streaming: Arc<dyn Fn() -> bool + Send + Sync>,
}

/// A job whose item runs once per fire. Implement it, or pass a closure to
/// [`JobKind::simple_fn`].
pub trait SimpleJob: Send + Sync + 'static {
    /// Runs one item.
    fn execute(&self, ctx: ShardingContext) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// A job that fetches data and processes it (ElasticJob's `DataflowJob`).
pub trait DataflowJob: Send + Sync + 'static {
    /// What `fetch` returns.
    type Item: Send + 'static;

    /// Fetches the next batch for an item; an empty batch ends a streaming loop.
    fn fetch(
        &self,
        ctx: &ShardingContext,
    ) -> impl Future<Output = Result<Vec<Self::Item>, BoxError>> + Send;

    /// Processes a non-empty batch.
    fn process(
        &self,
        ctx: &ShardingContext,
        data: Vec<Self::Item>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// The type-erased form every kind takes inside the runtime.
pub(crate) trait Execute: Send + Sync + 'static {
    fn run(&self, env: ItemEnv) -> BoxFuture<ItemOutcome>;
}

/// What a job runs.
#[derive(Clone)]
pub struct JobKind {
    pub(crate) exec: Arc<dyn Execute>,
    /// The `/{job}` value: a type string (`SCRIPT`, `HTTP`) or a class-like name.
    pub(crate) type_name: String,
}

impl std::fmt::Debug for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobKind")
            .field("type_name", &self.type_name)
            .finish()
    }
}

struct Simple<J>(Arc<J>);

impl<J: SimpleJob> Execute for Simple<J> {
    fn run(&self, env: ItemEnv) -> BoxFuture<ItemOutcome> {
        let job = self.0.clone();
        Box::pin(async move { ItemOutcome::from_result(job.execute(env.context).await) })
    }
}

struct FnJob<F>(F);

impl<F, Fut> SimpleJob for FnJob<F>
where
    F: Fn(ShardingContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send,
{
    fn execute(&self, ctx: ShardingContext) -> impl Future<Output = Result<(), BoxError>> + Send {
        (self.0)(ctx)
    }
}

struct Dataflow<J>(Arc<J>);

impl<J: DataflowJob> Execute for Dataflow<J> {
    fn run(&self, env: ItemEnv) -> BoxFuture<ItemOutcome> {
        let job = self.0.clone();
        Box::pin(async move {
            let streaming = env
                .config
                .props
                .get("streaming.process")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
            let mut batches = 0u64;
            let mut records = 0u64;
            loop {
                let data = match job.fetch(&env.context).await {
                    Ok(d) => d,
                    Err(e) => return ItemOutcome::failed(error_chain(e.as_ref())),
                };
                if data.is_empty() {
                    break;
                }
                records += data.len() as u64;
                batches += 1;
                if let Err(e) = job.process(&env.context, data).await {
                    return ItemOutcome::failed(error_chain(e.as_ref()));
                }
                if !streaming || !(env.keep_streaming)() {
                    break;
                }
            }
            ItemOutcome {
                failure: None,
                output: Some(format!("{records} record(s) in {batches} batch(es)")),
            }
        })
    }
}

impl JobKind {
    /// A simple job from an implementation of [`SimpleJob`]. `type_name` is written to
    /// `/{job}` (Java writes the job's class name there).
    pub fn simple<J: SimpleJob>(type_name: impl Into<String>, job: J) -> JobKind {
        JobKind {
            exec: Arc::new(Simple(Arc::new(job))),
            type_name: type_name.into(),
        }
    }

    /// A simple job from an async closure.
    pub fn simple_fn<F, Fut>(type_name: impl Into<String>, f: F) -> JobKind
    where
        F: Fn(ShardingContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        JobKind::simple(type_name, FnJob(f))
    }

    /// A dataflow job.
    pub fn dataflow<J: DataflowJob>(type_name: impl Into<String>, job: J) -> JobKind {
        JobKind {
            exec: Arc::new(Dataflow(Arc::new(job))),
            type_name: type_name.into(),
        }
    }

    /// A script job: runs `script.command.line` from the config (read at each run).
    pub fn script() -> JobKind {
        JobKind {
            exec: Arc::new(script::Script),
            type_name: SCRIPT_TYPE.into(),
        }
    }

    /// An HTTP job: calls `http.uri` from the config (read at each run).
    pub fn http() -> JobKind {
        JobKind {
            exec: Arc::new(self::http::Http),
            type_name: HTTP_TYPE.into(),
        }
    }

    /// The kind a config alone defines, for jobs found in a registry or a job file:
    /// from the `/{job}` value (`SCRIPT`, `HTTP`), else from the props. `None` for
    /// class-based jobs, which only their own application can run.
    pub fn from_config(root_value: Option<&str>, config: &JobConfig) -> Option<JobKind> {
        match root_value.map(str::trim) {
            Some(SCRIPT_TYPE) => return Some(JobKind::script()),
            Some(HTTP_TYPE) => return Some(JobKind::http()),
            Some(v) if !v.is_empty() => return None,
            _ => {}
        }
        if config.props.contains_key(script::COMMAND_LINE) {
            Some(JobKind::script())
        } else if config.props.contains_key(self::http::URI) {
            Some(JobKind::http())
        } else {
            None
        }
    }

    /// The `/{job}` value.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }
}

/// Problems with a script or HTTP job's props, by prop name, for the console's form.
pub fn validate_props(type_name: &str, config: &JobConfig) -> Vec<(String, String)> {
    match type_name {
        SCRIPT_TYPE => ScriptSettings::from_props(&config.props)
            .err()
            .into_iter()
            .collect(),
        HTTP_TYPE => HttpSettings::from_props(&config.props)
            .err()
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// A prop as a number of milliseconds.
fn millis_prop(
    props: &std::collections::BTreeMap<String, String>,
    key: &str,
    default: u64,
) -> Result<std::time::Duration, (String, String)> {
    match props.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(std::time::Duration::from_millis(default)),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .map(std::time::Duration::from_millis)
            .ok_or_else(|| {
                (
                    key.to_owned(),
                    format!("{v:?} is not a positive number of milliseconds"),
                )
            }),
    }
}

/// Keeps at most `max` bytes of `text`, cut at a character boundary, saying so.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}\n… ({} more bytes not kept)",
        &text[..cut],
        text.len() - cut
    )
}

/// An item environment for tests: job `j`, item 0 of 1, with `props`.
#[cfg(test)]
pub(crate) fn test_env(props: &[(&str, &str)]) -> ItemEnv {
    let mut config = JobConfig {
        job_name: "j".into(),
        sharding_total_count: 1,
        ..JobConfig::default()
    };
    for (k, v) in props {
        config.props.insert((*k).into(), (*v).into());
    }
    ItemEnv {
        context: ShardingContext {
            job_name: "j".into(),
            task_id: "j@-@0@-@READY@-@10.0.0.1@-@1".into(),
            sharding_total_count: 1,
            job_parameter: None,
            sharding_item: 0,
            sharding_parameter: None,
        },
        config: Arc::new(config),
        keep_streaming: Arc::new(|| true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(props: &[(&str, &str)]) -> ItemEnv {
        test_env(props)
    }

    struct Batches(std::sync::Mutex<Vec<Vec<u32>>>);

    impl DataflowJob for Batches {
        type Item = u32;
        async fn fetch(&self, _: &ShardingContext) -> Result<Vec<u32>, BoxError> {
            Ok(self
                .0
                .lock()
                .map_err(|_| "poisoned")?
                .pop()
                .unwrap_or_default())
        }
        async fn process(&self, _: &ShardingContext, data: Vec<u32>) -> Result<(), BoxError> {
            if data.contains(&13) {
                return Err("unlucky record".into());
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn dataflow_honours_streaming_process() {
        let kind = JobKind::dataflow("D", Batches(vec![vec![3], vec![1, 2]].into()));
        let once = kind.exec.run(env(&[])).await;
        assert_eq!(once.output.as_deref(), Some("2 record(s) in 1 batch(es)"));
        let kind = JobKind::dataflow("D", Batches(vec![vec![3], vec![1, 2]].into()));
        let all = kind.exec.run(env(&[("streaming.process", "true")])).await;
        assert_eq!(all.output.as_deref(), Some("3 record(s) in 2 batch(es)"));
        let kind = JobKind::dataflow("D", Batches(vec![vec![13]].into()));
        let failed = kind.exec.run(env(&[])).await;
        assert_eq!(failed.failure.as_deref(), Some("unlucky record"));
    }

    #[tokio::test]
    async fn simple_closures_report_errors() {
        let kind = JobKind::simple_fn("S", |ctx: ShardingContext| async move {
            if ctx.sharding_item == 0 {
                Err::<(), BoxError>(std::io::Error::other("disk full").into())
            } else {
                Ok(())
            }
        });
        assert_eq!(
            kind.exec.run(env(&[])).await.failure.as_deref(),
            Some("disk full")
        );
    }

    #[test]
    fn kinds_come_from_the_root_value_or_the_props() {
        let mut c = JobConfig::default();
        assert!(JobKind::from_config(None, &c).is_none());
        assert_eq!(
            JobKind::from_config(Some("HTTP"), &c).map(|k| k.type_name),
            Some("HTTP".into())
        );
        c.props
            .insert("script.command.line".into(), "echo hi".into());
        assert_eq!(
            JobKind::from_config(Some(""), &c).map(|k| k.type_name),
            Some("SCRIPT".into())
        );
        assert!(JobKind::from_config(Some("com.example.OrderJob"), &c).is_none());
        assert_eq!(truncate("héllo", 2), "h\n… (5 more bytes not kept)");
    }
}
