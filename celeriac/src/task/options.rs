//! Per-task options, Celery's task attributes: retries, backoff, time and rate limits.

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
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            max_retries: Some(3),
            default_retry_delay: Duration::from_secs(180),
            autoretry_for: Vec::new(),
            dont_autoretry_for: Vec::new(),
            retry_backoff: 0.0,
            retry_backoff_max: 600,
            retry_jitter: true,
            time_limit: None,
            soft_time_limit: None,
            acks_late: None,
            rate_limit: None,
            ignore_result: None,
            arg_names: Vec::new(),
        }
    }
}

impl TaskOptions {
    /// True when a failure of `exc_type` retries automatically.
    pub fn autoretries(&self, exc_type: &str) -> bool {
        let listed = |list: &[String]| list.iter().any(|name| name == "*" || name == exc_type);
        listed(&self.autoretry_for) && !listed(&self.dont_autoretry_for)
    }
}
