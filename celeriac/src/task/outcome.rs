//! What a task body produced: data, not errors, so the executor can decide acks, retries and
//! results in one place.

use super::error_type::{exc_type_of, ErrorType};
use crate::types::ExceptionInfo;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// The result of running a task body once.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Returned a value.
    Success(Value),
    /// Raised an error; `traceback` is free text for the result backend.
    Fail {
        /// The error as Celery serializes exceptions.
        exception: ExceptionInfo,
        /// Extra detail shown where Python shows a traceback.
        traceback: Option<String>,
        /// The Rust error type it came from, when it came from one, for `autoretry_for` by type.
        error_type: Option<ErrorType>,
    },
    /// Asked to run again later.
    Retry(RetryRequest),
    /// Refused the message: requeue it, or dead-letter it.
    Reject {
        /// Put it back in its queue instead of the dead-letter list.
        requeue: bool,
    },
    /// Finished without storing any state (Celery's `Ignore`).
    Ignore,
}

/// An explicit retry, Celery's `self.retry(exc=…, countdown=…, eta=…, max_retries=…)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RetryRequest {
    /// Run again after this long (default: the task's `default_retry_delay`).
    pub countdown: Option<Duration>,
    /// Run again at this time (wins over countdown).
    pub eta: Option<DateTime<Utc>>,
    /// The error that caused the retry; stored with the RETRY state and, when retries run
    /// out, as the final FAILURE.
    pub reason: Option<ExceptionInfo>,
    /// Overrides the task's `max_retries` for this decision (`Some(None)` = forever).
    pub max_retries: Option<Option<u32>>,
}

impl RetryRequest {
    /// Retry after `countdown`.
    pub fn countdown(mut self, countdown: Duration) -> Self {
        self.countdown = Some(countdown);
        self
    }

    /// Retry at `eta`.
    pub fn eta(mut self, eta: DateTime<Utc>) -> Self {
        self.eta = Some(eta);
        self
    }

    /// The error that caused the retry.
    pub fn reason(mut self, reason: ExceptionInfo) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Overrides `max_retries` for this retry.
    pub fn max_retries(mut self, max_retries: Option<u32>) -> Self {
        self.max_retries = Some(max_retries);
        self
    }
}

/// The error side of a task body: a failure, or a request to retry, reject or ignore.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskError {
    /// The task failed with this exception.
    Fail {
        /// The error as Celery serializes exceptions.
        exception: ExceptionInfo,
        /// Extra detail shown where Python shows a traceback.
        traceback: Option<String>,
        /// The Rust error type it was converted from (by `?` or `.into()`), so
        /// [`super::Task::autoretry_for_type`] can match it; `None` for errors built from a
        /// Python-style name with [`TaskError::new`].
        error_type: Option<ErrorType>,
    },
    /// Run the task again later.
    Retry(RetryRequest),
    /// Refuse the message.
    Reject {
        /// Requeue instead of dead-lettering.
        requeue: bool,
    },
    /// Finish without storing any state.
    Ignore,
}

impl TaskError {
    /// A failure with a Python-style exception type and message, e.g.
    /// `TaskError::new("ValueError", "bad order id")`. `autoretry_for` matches on the type.
    pub fn new(exc_type: impl Into<String>, message: impl Into<String>) -> Self {
        TaskError::Fail {
            exception: ExceptionInfo::new(exc_type, message),
            traceback: None,
            error_type: None,
        }
    }

    /// Starts an explicit retry request; convert it with `.into()` or `?`.
    pub fn retry() -> RetryRequest {
        RetryRequest::default()
    }

    /// The exception this error carries, if it is a failure.
    pub fn exception(&self) -> Option<&ExceptionInfo> {
        match self {
            TaskError::Fail { exception, .. } => Some(exception),
            _ => None,
        }
    }

    /// The Rust type this failure was converted from, if any: what `autoretry_for` by type
    /// compares against.
    pub fn error_type(&self) -> Option<ErrorType> {
        match self {
            TaskError::Fail { error_type, .. } => *error_type,
            _ => None,
        }
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskError::Fail { exception, .. } => write!(formatter, "{exception}"),
            TaskError::Retry(_) => formatter.write_str("retry requested"),
            TaskError::Reject { requeue } => write!(formatter, "rejected (requeue: {requeue})"),
            TaskError::Ignore => formatter.write_str("ignored"),
        }
    }
}

impl From<RetryRequest> for TaskError {
    fn from(request: RetryRequest) -> Self {
        TaskError::Retry(request)
    }
}

impl From<ExceptionInfo> for TaskError {
    fn from(exception: ExceptionInfo) -> Self {
        TaskError::Fail {
            exception,
            traceback: None,
            error_type: None,
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for TaskError {
    /// Any Rust error fails the task. Its `exc_type` is the Python builtin it corresponds to
    /// (`std::io::Error` is `OSError`; `ParseIntError`, `ParseFloatError` and
    /// `serde_json::Error` are `ValueError`), else its type name without path or generics; its
    /// source chain becomes the traceback text, and its Rust type is kept for
    /// `autoretry_for` by type.
    fn from(error: E) -> Self {
        let mut chain = Vec::new();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push(format!("caused by: {cause}"));
            source = cause.source();
        }
        TaskError::Fail {
            exception: ExceptionInfo::new(exc_type_of::<E>(), error.to_string()),
            traceback: (!chain.is_empty()).then(|| chain.join("\n")),
            error_type: Some(ErrorType::of::<E>()),
        }
    }
}

/// What a task body may return.
pub trait IntoOutcome {
    /// Converts the return value into an [`Outcome`].
    fn into_outcome(self) -> Outcome;
}

impl IntoOutcome for Outcome {
    fn into_outcome(self) -> Outcome {
        self
    }
}

impl<T: Serialize, E: Into<TaskError>> IntoOutcome for Result<T, E> {
    fn into_outcome(self) -> Outcome {
        match self {
            Ok(value) => match serde_json::to_value(value) {
                Ok(value) => Outcome::Success(value),
                Err(error) => Outcome::Fail {
                    exception: ExceptionInfo::new("EncodeError", error.to_string())
                        .in_module("kombu.exceptions"),
                    traceback: None,
                    error_type: None,
                },
            },
            Err(error) => match error.into() {
                TaskError::Fail {
                    exception,
                    traceback,
                    error_type,
                } => Outcome::Fail {
                    exception,
                    traceback,
                    error_type,
                },
                TaskError::Retry(request) => Outcome::Retry(request),
                TaskError::Reject { requeue } => Outcome::Reject { requeue },
                TaskError::Ignore => Outcome::Ignore,
            },
        }
    }
}
