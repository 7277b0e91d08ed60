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
    /// A registry failure.
    #[error(transparent)]
    Registry(#[from] capstan_registry::Error),
}

/// The scheduler's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
