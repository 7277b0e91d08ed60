//! The scheduler's error type.

/// Everything the scheduler can refuse or fail at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cron expression Quartz would not accept.
    #[error("invalid cron expression {expr:?}: {reason}")]
    Cron {
        /// The expression.
        expr: String,
        /// Why.
        reason: String,
    },
    /// A time zone that is neither `GMT±hh:mm` nor an IANA name.
    #[error("invalid time zone {0:?}: use GMT+08:00 or an IANA name such as Asia/Shanghai")]
    TimeZone(String),
    /// An unknown sharding strategy type.
    #[error(
        "unknown sharding strategy {0:?}: use AVG_ALLOCATION, ODEVITY, ROUND_ROBIN or SINGLE_SHARDING_BALANCE"
    )]
    UnknownStrategy(String),
    /// The job name's hash is `Integer.MIN_VALUE`, where Java's strategy throws.
    #[error(
        "job name {0:?} hashes to Integer.MIN_VALUE; ElasticJob's {1} strategy fails for it too"
    )]
    HashOverflow(String, &'static str),
    /// A malformed instance id.
    #[error("invalid instance id {0:?}: expected ip@-@pid")]
    InstanceId(String),
    /// The job or server named does not exist in the registry.
    #[error("{0}")]
    NotFound(String),
    /// Pause is a Capstan extension; Java instances would keep firing.
    #[error(
        "pause is not supported for {job}: instances {instances} are not Capstan runtimes and would ignore it"
    )]
    PauseNotSupported {
        /// The job.
        job: String,
        /// The non-Capstan instances, comma-separated.
        instances: String,
    },
    /// A job config that fails validation, with every problem found.
    #[error("job {job:?} cannot run: {}", problems.join("; "))]
    InvalidConfig {
        /// The job.
        job: String,
        /// What is wrong, one entry per field.
        problems: Vec<String>,
    },
    /// The registry holds another kind of job under this name (§4.1 "job conflict").
    #[error(
        "job {job:?} is registered as {registered:?}, not {ours:?}; pick another name or remove the old job"
    )]
    JobConflict {
        /// The job.
        job: String,
        /// The `/{job}` value found.
        registered: String,
        /// Ours.
        ours: String,
    },
    /// The change conflicts with the registry's state (it changed meanwhile, or the job
    /// exists already).
    #[error("{0}")]
    Conflict(String),
    /// The job already runs on this instance.
    #[error("job {0:?} is already running here")]
    AlreadyRunning(String),
    /// No IP was given and this machine has no non-loopback IPv4 address.
    #[error("no non-loopback IPv4 address found on this machine; give the IP to register under")]
    NoAddress,
    /// A registry failure.
    #[error(transparent)]
    Registry(#[from] capstan_registry::Error),
    /// The runtime's fire-clock thread could not be started.
    #[error("cannot start the scheduler's clock thread: {0}")]
    Thread(std::io::Error),
}

/// The scheduler's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
