//! Retries, exactly as Celery does them (wire doc §7).
//!
//! 1. Decide: `retries + 1 > max_retries` (unless None = forever) ends the task in FAILURE with
//!    the error that caused the retry, or `MaxRetriesExceededError` when there was none.
//! 2. When: the request's eta, else its countdown, else for automatic retries with
//!    `retry_backoff` Celery's backoff formula (cap, full jitter), else `default_retry_delay`.
//! 3. Publish a new message with the same id, `retries + 1`, the new eta, `parent_id` set to
//!    the task itself when it had none, to the queue it came from, with its priority.
//! 4. Only then store RETRY and ack the original, so a crash in between re-runs the task
//!    instead of losing it. If the publish fails, the original is restored instead.
//!
//! [`retry`] returns true when the task ended for good (retries ran out).

use super::backoff::Backoff;
use super::request::{truncate, Request, REPR_LOGGED};
use super::settle::{self, record_failure, store, traceback_text, Lease};
use super::Shared;
use crate::clock;
use crate::task::{RetryRequest, Task};
use crate::types::{python_args_repr, python_repr, ExceptionInfo, TaskState};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Why a task is retried: it asked (`Outcome::Retry`), or it raised an error its
/// `autoretry_for` lists, which alone gets the exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    Requested,
    Automatic,
}

pub(crate) async fn retry(
    shared: &Shared,
    request: &Request,
    task: &Task,
    retry_request: RetryRequest,
    traceback: Option<String>,
    cause: Cause,
    lease: Lease,
) -> bool {
    let headers = &request.message.headers;
    let options = task.options();
    let max_retries = retry_request.max_retries.unwrap_or(options.max_retries);
    let next = headers.retries.saturating_add(1);
    if max_retries.is_some_and(|max| next > max) {
        let exception = retry_request.reason.unwrap_or_else(|| ExceptionInfo {
            exc_type: "MaxRetriesExceededError".into(),
            exc_message: vec![json!(format!(
                "Can't retry {}[{}] args:{} kwargs:{}",
                headers.task,
                headers.id,
                python_args_repr(&request.message.args),
                python_repr(&Value::Object(request.message.kwargs.clone()))
            ))],
            exc_module: "celery.exceptions".into(),
        });
        give_up(shared, request, task, exception, traceback, lease).await;
        return true;
    }
    let now = clock::now();
    let eta = match (retry_request.eta, retry_request.countdown) {
        (Some(eta), _) => eta,
        (None, Some(countdown)) => now + chrono::Duration::from_std(countdown).unwrap_or_default(),
        (None, None) => {
            let delay = if cause == Cause::Automatic && options.retry_backoff > 0.0 {
                let backoff = Backoff {
                    retry_backoff: options.retry_backoff,
                    retry_backoff_max: options.retry_backoff_max,
                    retry_jitter: options.retry_jitter,
                };
                Duration::from_secs(backoff.countdown(headers.retries, &mut rand::thread_rng()))
            } else {
                options.default_retry_delay
            };
            now + chrono::Duration::from_std(delay).unwrap_or_default()
        }
    };
    let mut message = request.message.clone();
    message.headers.retries = next;
    message.headers.eta = Some(eta);
    if message.headers.parent_id.is_none() {
        message.headers.parent_id = Some(headers.id.0.clone());
    }
    message.headers.extra.remove("redelivered");
    if let Err(error) = shared
        .producer
        .publish_message(&message, &request.delivery.queue, request.priority)
        .await
    {
        tracing::error!(task_id = %headers.id, %error, "could not publish retry; restoring the original message");
        if let Lease::Held(held) = lease {
            settle::restore(shared, held, request).await;
        }
        return false;
    }
    let seconds = (eta - now).num_milliseconds() as f64 / 1000.0;
    let reason = retry_request.reason.unwrap_or_else(|| {
        ExceptionInfo::new("Retry", format!("Retry in {seconds}s")).in_module("celery.exceptions")
    });
    shared.counters.retried.fetch_add(1, Ordering::Relaxed);
    tracing::info!(task_id = %headers.id, task_name = %headers.task, retries = next, countdown = seconds, "Task {}[{}] retry: Retry in {seconds}s: {}", headers.task, headers.id, reason.repr());
    let traceback = traceback_text(request, &reason, traceback);
    super::task_events::retried(shared, request, &reason, &traceback);
    store(
        shared,
        request,
        task,
        TaskState::Retry,
        json!(reason),
        Some(traceback),
    )
    .await;
    lease.ack(shared, request);
    false
}

async fn give_up(
    shared: &Shared,
    request: &Request,
    task: &Task,
    exception: ExceptionInfo,
    traceback: Option<String>,
    lease: Lease,
) {
    let headers = &request.message.headers;
    tracing::error!(task_id = %headers.id, task_name = %headers.task, retries = headers.retries, "Task {}[{}] failed after {} retries: {}", headers.task, headers.id, headers.retries, truncate(&exception.repr(), REPR_LOGGED));
    record_failure(shared, request, task, exception, traceback, lease).await;
}
