//! The command line. Every option also reads a `CAPSTAN_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Capstan: operations console and embedded runtime for sharded scheduled jobs and stream
/// pipelines.
#[derive(Debug, Parser)]
#[command(name = "capstan", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web console and the REST API.
    Serve(ServeArgs),
    /// Set a new generated password for a console user (for a lost admin password).
    ResetPassword(ResetPasswordArgs),
    /// Run the scheduler runtime without the console: every script and HTTP job of a
    /// registry, and those in job files.
    Agent(AgentArgs),
    /// Stream pipelines.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
}

/// `capstan pipeline …`.
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Replay JSON-lines input through a pipeline spec, deterministically, in event time.
    Run(PipelineRunArgs),
    /// Validate a pipeline spec.
    Check {
        /// The pipeline spec (YAML).
        spec: PathBuf,
    },
    /// Run a pipeline spec with its `run:` section on the partitioned executor, with
    /// checkpoints in `--data`; a second start resumes from the last checkpoint. Returns
    /// when every input ended and all output is committed.
    Start(PipelineStartArgs),
}

/// `capstan pipeline start`.
#[derive(Debug, Clone, Args)]
pub struct PipelineStartArgs {
    /// The pipeline spec (YAML) with a `run:` section.
    pub spec: PathBuf,
    /// Checkpoints, and a relative file sink's output, go here.
    #[arg(long)]
    pub data: PathBuf,
    /// Delete the checkpoint and output in `--data` and start from the beginning.
    #[arg(long)]
    pub fresh: bool,
    /// Print the pipeline's status every this many seconds (0: never).
    #[arg(long, default_value_t = 5)]
    pub status_every: u64,

    /// Register the pipeline on this registry as a `STREAM` job:
    /// `zookeeper://HOST:PORT[,HOST:PORT]/NAMESPACE` or `embedded:PATH`. Several processes
    /// may start the same spec on one registry: one runs it, the others stand by and take
    /// over from the last checkpoint in `--data` (so give them one directory on shared
    /// storage) when its session ends or its server is disabled.
    #[arg(long, env = "CAPSTAN_REGISTRY")]
    pub registry: Option<String>,

    /// The session on it (the timeout is how long after this process dies, or is cut
    /// off, a standby takes over).
    #[command(flatten)]
    pub session: SessionArgs,

    /// Log filter, in `tracing` env-filter syntax.
    #[arg(long, env = "CAPSTAN_LOG", default_value = "info")]
    pub log: String,
}

/// `capstan pipeline run`.
#[derive(Debug, Clone, Args)]
pub struct PipelineRunArgs {
    /// The pipeline spec (YAML).
    pub spec: PathBuf,
    /// JSON-lines input, in processing order (`-` for standard input).
    #[arg(long)]
    pub input: PathBuf,
    /// Where the output goes, JSON lines (`-` for standard output).
    #[arg(long, default_value = "-")]
    pub output: PathBuf,
}

/// `capstan serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CAPSTAN_BIND", default_value = "127.0.0.1:3000")]
    pub bind: SocketAddr,

    /// Directory for the console database and other state; created if missing.
    #[arg(long, env = "CAPSTAN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Directory holding the built browser bundle (`pkg/`) and static files.
    #[arg(long, env = "CAPSTAN_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Password for the first admin user, used only when the database has no users yet.
    /// Unset: a password is generated, printed once, and must be changed at first login.
    #[arg(long, env = "CAPSTAN_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// ZooKeeper addresses that may be registered, comma-separated: `host`, `*.domain`,
    /// `10.0.0.0/8`, each optionally with `:port`. Empty allows any valid address.
    #[arg(long, env = "CAPSTAN_ZK_ALLOW", default_value = "")]
    pub zk_allow: String,

    /// Lifetime of a browser session or API token, in hours.
    #[arg(long, env = "CAPSTAN_SESSION_HOURS", default_value_t = 12)]
    pub session_hours: u64,

    /// Mark the session cookie `Secure`; set this when the console is served over HTTPS.
    #[arg(long, env = "CAPSTAN_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// Upper bound on a registry connection test, in milliseconds.
    #[arg(long, env = "CAPSTAN_PROBE_TIMEOUT_MS", default_value_t = 5000)]
    pub probe_timeout_ms: u64,

    /// Log filter, in `tracing` env-filter syntax.
    #[arg(long, env = "CAPSTAN_LOG", default_value = "info")]
    pub log: String,

    /// Do not register the demo jobs on `local`, nor run the demo pipeline.
    #[arg(long, env = "CAPSTAN_NO_DEMO", default_value_t = false)]
    pub no_demo: bool,

    /// Also run script and HTTP jobs on these registry centres (names, comma-separated),
    /// besides `local`.
    #[arg(long, env = "CAPSTAN_RUN_JOBS_ON", value_delimiter = ',')]
    pub run_jobs_on: Vec<String>,

    /// Stream pipeline specs (with a `run:` section) to run, comma-separated; each resumes
    /// from its checkpoint in `DATA_DIR/pipelines/NAME`.
    #[arg(long, env = "CAPSTAN_PIPELINES", value_delimiter = ',')]
    pub pipelines: Vec<PathBuf>,

    /// The registry centre the `--pipelines` are registered on (default `local`). On a
    /// ZooKeeper centre, consoles started with the same specs (and one shared data
    /// directory) run each pipeline in one process, the others standing by.
    #[arg(long, env = "CAPSTAN_PIPELINES_ON")]
    pub pipelines_on: Option<String>,
}

/// `capstan reset-password`.
#[derive(Debug, Clone, Args)]
pub struct ResetPasswordArgs {
    /// The user whose password to reset.
    pub username: String,

    /// Directory holding the console database.
    #[arg(long, env = "CAPSTAN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// How a process (`capstan agent`, `capstan pipeline start --registry`) holds its session
/// on a registry, and the server it registers as.
#[derive(Debug, Clone, Args)]
pub struct SessionArgs {
    /// A file holding the ZooKeeper digest `user:password`.
    #[arg(long, env = "CAPSTAN_DIGEST_FILE")]
    pub digest_file: Option<PathBuf>,

    /// The registry session timeout, in milliseconds.
    #[arg(long, env = "CAPSTAN_SESSION_TIMEOUT_MS", default_value_t = 15_000)]
    pub session_timeout_ms: u64,

    /// The IP to register under (as ElasticJob's `elasticjob.preferred.network.ip`).
    /// Unset: the first non-loopback IPv4 address of this machine.
    #[arg(long, env = "CAPSTAN_IP")]
    pub ip: Option<String>,
}

/// `capstan agent`.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// The registry: `zookeeper://HOST:PORT[,HOST:PORT]/NAMESPACE`, or `embedded:PATH` for
    /// an embedded registry file (namespace `capstan`, as the console's `local`; the file
    /// must not be open in another process).
    #[arg(long, env = "CAPSTAN_REGISTRY")]
    pub registry: String,

    /// The session on it.
    #[command(flatten)]
    pub session: SessionArgs,

    /// A directory of job files (`*.yaml`): the job config YAML, plus an optional
    /// `type: SCRIPT|HTTP`.
    #[arg(long, env = "CAPSTAN_JOBS_DIR")]
    pub jobs: Option<PathBuf>,

    /// How long before their time fires are planned and their items marked `running`
    /// (at most 1000; 0 plans each fire at its time).
    #[arg(long, env = "CAPSTAN_FIRE_AHEAD_MS", default_value_t = 50)]
    pub fire_ahead_ms: u64,

    /// Directory for the agent's run history (`agent-history.db`).
    #[arg(long, env = "CAPSTAN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Log filter, in `tracing` env-filter syntax.
    #[arg(long, env = "CAPSTAN_LOG", default_value = "info")]
    pub log: String,
}
