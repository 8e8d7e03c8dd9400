//! The result backend: where workers store task states and results, and where producers wait
//! for them.
//!
//! Only Celery's Redis backend is implemented: `celery-task-meta-<id>` JSON with a TTL of
//! `result_expires`, and a PUBLISH of the same document on the channel of the same name at every
//! write, which is what `AsyncResult.get()` in Python (and here) waits on.

mod async_result;
mod redis;

pub use self::redis::{ChordPart, RedisBackend};
pub use async_result::{AsyncResult, ResultError};

/// Why a result-backend operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend URL could not be parsed.
    #[error("invalid result backend url {url:?}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// The parser's complaint.
        #[source]
        source: ::redis::RedisError,
    },
    /// The backend could not be reached at start-up within the attempts the configuration
    /// allows (the broker's `broker_connection_retry_on_startup`, `_max_retries`).
    #[error("cannot reach the result backend at {address} after {attempts} attempt(s)")]
    Unreachable {
        /// `host:port` (never the password).
        address: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's failure.
        #[source]
        source: ::redis::RedisError,
    },
    /// Redis refused a command or the connection failed.
    #[error("redis command {command} failed")]
    Redis {
        /// Which operation.
        command: &'static str,
        /// What Redis said.
        #[source]
        source: ::redis::RedisError,
    },
    /// The stored document is not Celery's result JSON.
    #[error("result of task {task_id} is not a valid result document")]
    InvalidDocument {
        /// The task.
        task_id: String,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// No `result_backend` is configured, so results cannot be read.
    #[error("no result backend is configured (set result_backend)")]
    NotConfigured,
    /// No ready state arrived within the timeout.
    #[error("task {task_id} did not finish within {seconds} s")]
    Timeout {
        /// The task.
        task_id: String,
        /// How long we waited.
        seconds: f64,
    },
}

impl BackendError {
    /// True when Redis refused the write because it is full (`maxmemory` with
    /// `noeviction`): "OOM command not allowed when used memory > 'maxmemory'". Worth
    /// retrying once something frees memory.
    pub fn is_out_of_memory(&self) -> bool {
        match self {
            BackendError::Redis { source, .. } => {
                // A script's error may come wrapped (redis-rs retries a script as a pipeline),
                // with the code then displayed apart from the text: match Redis's wording too.
                source.code() == Some("OOM")
                    || source
                        .to_string()
                        .contains("command not allowed when used memory")
            }
            _ => false,
        }
    }

    /// True when Redis could not be reached (refused, dropped, timed out) or answered that it
    /// cannot serve yet: `LOADING` while a restarted server reads its append-only file (after
    /// a long outage the first answer a held result write gets), `MASTERDOWN`, `TRYAGAIN`,
    /// `CLUSTERDOWN`, and `READONLY` from a master demoted in a failover. Worth retrying for
    /// as long as it takes, unlike most errors Redis answers with (wrong type), which waiting
    /// does not cure.
    pub fn is_unreachable(&self) -> bool {
        match self {
            BackendError::Redis { source, .. } => crate::broker::is_unreachable(source),
            _ => false,
        }
    }
}
