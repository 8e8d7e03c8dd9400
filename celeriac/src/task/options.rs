//! Per-task options, Celery's task attributes: retries, backoff, time and rate limits.

use super::error_type::ErrorType;
use std::time::Duration;

/// Options of one task, with Celery's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskOptions {
    /// Retries allowed before the task fails for good; None = retry forever. Celery: 3.
    pub max_retries: Option<u32>,
    /// Countdown of an explicit retry that gives none. Celery: 180 s.
    pub default_retry_delay: Duration,
    /// Exception types (`exc_type`) that retry automatically; `"*"` matches every failure.
    pub autoretry_for: Vec<String>,
    /// Exception types never retried automatically, even when `autoretry_for` matches.
    pub dont_autoretry_for: Vec<String>,
    /// Rust error types that retry automatically, matched by type identity, so that two error
    /// types stored under the same `exc_type` (`ValueError`, say) stay apart.
    pub autoretry_for_types: Vec<ErrorType>,
    /// Rust error types never retried automatically, even when an `autoretry_for` rule matches.
    pub dont_autoretry_for_types: Vec<ErrorType>,
    /// Exponential backoff factor for automatic retries; 0 = off, 1 = Celery's `True`.
    pub retry_backoff: f64,
    /// Cap of the backoff countdown in seconds. Celery: 600.
    pub retry_backoff_max: u64,
    /// Full jitter on the backoff countdown. Celery: true.
    pub retry_jitter: bool,
    /// Hard time limit; overrides `task_time_limit`.
    pub time_limit: Option<Duration>,
    /// Soft time limit; overrides `task_soft_time_limit`.
    pub soft_time_limit: Option<Duration>,
    /// Ack after the task ran instead of before; overrides `task_acks_late`.
    pub acks_late: Option<bool>,
    /// Rate limit such as `"10/s"`; overrides `task_default_rate_limit`.
    pub rate_limit: Option<String>,
    /// Do not store results; overrides `task_ignore_result`.
    pub ignore_result: Option<bool>,
    /// Names of the positional parameters, so keyword arguments can be bound to them.
    pub arg_names: Vec<String>,
    /// The queue the task's typed handle sends to (Celery's `Task.queue`). Producers read it
    /// from [`crate::producer::TaskRef`], not from here: a worker's registry is not visible to
    /// a producer in another process, and `send_task` by name does not consult it.
    pub queue: Option<String>,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            max_retries: Some(3),
            default_retry_delay: Duration::from_secs(180),
            autoretry_for: Vec::new(),
            dont_autoretry_for: Vec::new(),
            autoretry_for_types: Vec::new(),
            dont_autoretry_for_types: Vec::new(),
            retry_backoff: 0.0,
            retry_backoff_max: 600,
            retry_jitter: true,
            time_limit: None,
            soft_time_limit: None,
            acks_late: None,
            rate_limit: None,
            ignore_result: None,
            arg_names: Vec::new(),
            queue: None,
        }
    }
}

impl TaskOptions {
    /// True when a failure of `exc_type` retries automatically, by name only (a failure from
    /// Python or from [`super::TaskError::new`]); see [`TaskOptions::autoretries_failure`].
    pub fn autoretries(&self, exc_type: &str) -> bool {
        self.autoretries_failure(exc_type, None)
    }

    /// True when a failure retries automatically: its `exc_type` or its Rust `error_type` is
    /// listed in `autoretry_for`, and neither is listed in `dont_autoretry_for`.
    pub fn autoretries_failure(&self, exc_type: &str, error_type: Option<ErrorType>) -> bool {
        let named = |list: &[String]| list.iter().any(|name| name == "*" || name == exc_type);
        let typed =
            |list: &[ErrorType]| error_type.is_some_and(|error_type| list.contains(&error_type));
        (named(&self.autoretry_for) || typed(&self.autoretry_for_types))
            && !(named(&self.dont_autoretry_for) || typed(&self.dont_autoretry_for_types))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::TaskError;

    fn failure_of(error: impl Into<TaskError>) -> (String, Option<ErrorType>) {
        let error = error.into();
        let exc_type = error
            .exception()
            .map(|exception| exception.exc_type.clone())
            .unwrap_or_default();
        (exc_type, error.error_type())
    }

    fn io_error() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "smtp refused")
    }

    fn json_error() -> serde_json::Error {
        serde_json::from_str::<i64>("{").expect_err("not JSON")
    }

    #[test]
    fn a_question_mark_on_io_error_gives_os_error() {
        fn connect() -> Result<(), std::io::Error> {
            Err(io_error())
        }
        fn send() -> Result<(), TaskError> {
            connect()?;
            Ok(())
        }
        let error = send().expect_err("fails");
        assert_eq!(
            error
                .exception()
                .map(|exception| exception.exc_type.as_str()),
            Some("OSError")
        );
        assert_eq!(error.error_type(), Some(ErrorType::of::<std::io::Error>()));
    }

    #[test]
    fn autoretry_by_type_retries_io_errors_but_not_json_errors() {
        let options = TaskOptions {
            autoretry_for_types: vec![ErrorType::of::<std::io::Error>()],
            ..TaskOptions::default()
        };
        let (exc_type, error_type) = failure_of(io_error());
        assert!(options.autoretries_failure(&exc_type, error_type));
        let (exc_type, error_type) = failure_of(json_error());
        assert_eq!(exc_type, "ValueError");
        assert!(!options.autoretries_failure(&exc_type, error_type));
        // A failure named OSError by Python or by hand has no Rust type: not matched by type.
        assert!(!options.autoretries_failure("OSError", None));
    }

    #[test]
    fn names_still_match_and_dont_autoretry_wins() {
        let options = TaskOptions {
            autoretry_for: vec!["OSError".into()],
            ..TaskOptions::default()
        };
        let (exc_type, error_type) = failure_of(io_error());
        assert!(options.autoretries_failure(&exc_type, error_type));
        assert!(options.autoretries("OSError"));
        assert!(!options.autoretries("ValueError"));
        let everything_but_io = TaskOptions {
            autoretry_for: vec!["*".into()],
            dont_autoretry_for_types: vec![ErrorType::of::<std::io::Error>()],
            ..TaskOptions::default()
        };
        assert!(!everything_but_io.autoretries_failure(&exc_type, error_type));
        let (exc_type, error_type) = failure_of(json_error());
        assert!(everything_but_io.autoretries_failure(&exc_type, error_type));
    }
}
