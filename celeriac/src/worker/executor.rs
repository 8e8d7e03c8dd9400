//! Runs one task and settles its message (Celery's `trace.py` and `Request` acks).
//!
//! 1. Bind the arguments; a mismatch is bad input: dead letter + `TypeError` FAILURE.
//! 2. Ack now unless the task is `acks_late` (Celery's early ack happens as the pool accepts
//!    the job); store STARTED with `task_track_started`.
//! 3. Run the body under `catch_unwind` so a panic is caught, and drop it when the hard time
//!    limit passes. At the soft limit the context's signal flips to true.
//! 4. Settle: SUCCESS/FAILURE stored (unless ignored), retries re-published by [`super::retry`],
//!    rejects requeued or dead-lettered, then the late ack.
//! 5. A run stopped by shutdown is restored to its queue (re-published if it was acked early).

use super::consumer::truncate;
use super::result_write::{write, write_freeing};
use super::retry;
use super::strategy::Request;
use super::Shared;
use crate::broker::Delivery;
use crate::clock;
use crate::protocol::time::format_iso;
use crate::protocol::ResultMeta;
use crate::task::{Outcome, RequestInfo, RetryRequest, Task, TaskContext};
use crate::types::{python_repr, ExceptionInfo, TaskState};
use futures::FutureExt;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;

enum Ending {
    Finished(Outcome),
    TimedOut(Duration),
    Stopped,
    Terminated,
}

pub(crate) async fn execute(shared: &Shared, request: &Request, task: &Task) {
    let headers = &request.message.headers;
    if revoke_if_expired(shared, request).await || discard_if_revoked(shared, request).await {
        return;
    }
    // Celery's `task_accepted`: every run the worker starts counts, whatever its outcome,
    // retried attempts included. Heartbeats carry it as `processed`, which Flower shows.
    shared.counters.processed.fetch_add(1, Ordering::Relaxed);
    let (soft_sender, soft_receiver) = watch::channel(false);
    let context = TaskContext::new(
        RequestInfo {
            id: headers.id.0.clone(),
            name: headers.task.clone(),
            retries: headers.retries,
            hostname: shared.options.node_name.clone(),
            queue: request.delivery.queue.clone(),
            eta: headers.eta,
            parent_id: headers.parent_id.clone(),
            root_id: headers.root_id.clone(),
            redelivered: request.redelivered,
        },
        soft_receiver,
    )
    .with_state(shared.registry.shared_state().clone());
    let run = match task.start(
        context,
        request.message.args.clone(),
        request.message.kwargs.clone(),
    ) {
        Ok(run) => run,
        Err(error) => {
            // serde quotes the offending value, which may be a 10 MB argument.
            let message = truncate(&error.message, REPR_LOGGED);
            let exception = ExceptionInfo::new("TypeError", message);
            dead_letter(
                shared,
                &request.delivery,
                message,
                Some(headers.id.as_str()),
                Some(request),
                exception,
            )
            .await;
            return;
        }
    };
    let acks_late = task
        .options()
        .acks_late
        .unwrap_or(shared.config.task_acks_late)
        && !crate::failpoint::active("ignore_acks_late");
    let mut acked = false;
    if !acks_late {
        acked = ack(shared, &request.delivery).await;
    }
    if shared.config.task_track_started {
        let started = json!({"pid": std::process::id(), "hostname": shared.options.node_name});
        store(shared, request, task, TaskState::Started, started, None).await;
    }
    let (hard, soft) = time_limits(shared, request, task);
    let started = Instant::now();
    super::task_events::started(shared, request);
    shared.counters.count_started(&headers.task);
    let terminate = std::sync::Arc::new(tokio::sync::Notify::new());
    shared.in_flight.set_phase(
        &request.delivery.delivery_tag,
        super::state::Phase::Active,
        Some(terminate.clone()),
        Some(crate::clock::epoch_now()),
    );
    let ending = supervise(shared, run, hard, soft, soft_sender, request, &terminate).await;
    let runtime = started.elapsed().as_secs_f64();
    let finished = match ending {
        Ending::Finished(Outcome::Success(value)) => {
            tracing::info!(task_id = %headers.id, task_name = %headers.task, runtime, "Task {}[{}] succeeded in {runtime:.6}s: {}", headers.task, headers.id, truncate(&python_repr(&value), REPR_LOGGED));
            super::task_events::succeeded(shared, request, &value, runtime);
            let stored = store(shared, request, task, TaskState::Success, value, None).await;
            settle(shared, request, acked, stored).await
        }
        Ending::Finished(Outcome::Fail {
            exception,
            traceback,
            error_type,
        }) => {
            if task
                .options()
                .autoretries_failure(&exception.exc_type, error_type)
            {
                let retry_request = RetryRequest {
                    reason: Some(exception),
                    ..RetryRequest::default()
                };
                retry::retry(shared, request, task, retry_request, traceback, true, acked).await
            } else {
                fail(shared, request, task, exception, traceback, acked, runtime).await;
                true
            }
        }
        Ending::Finished(Outcome::Retry(retry_request)) => {
            retry::retry(shared, request, task, retry_request, None, false, acked).await
        }
        Ending::Finished(Outcome::Reject { requeue }) => {
            super::task_events::rejected(shared, request, requeue);
            if acked {
                tracing::warn!(task_id = %headers.id, "task rejected after its early ack; nothing to requeue");
            } else if requeue {
                if let Err(error) = shared.broker.requeue(&request.delivery, false).await {
                    tracing::error!(task_id = %headers.id, %error, "could not requeue rejected task");
                }
                return shared.in_flight.remove(&request.delivery.delivery_tag);
            } else {
                let exception = ExceptionInfo::new("Reject", "rejected by the task")
                    .in_module("celery.exceptions");
                dead_letter(
                    shared,
                    &request.delivery,
                    "rejected by the task (requeue=False)",
                    Some(headers.id.as_str()),
                    Some(request),
                    exception,
                )
                .await;
            }
            true
        }
        Ending::Finished(Outcome::Ignore) => {
            if !acked {
                ack(shared, &request.delivery).await;
            }
            true
        }
        Ending::TimedOut(limit) => {
            let exception = ExceptionInfo {
                exc_type: "TimeLimitExceeded".into(),
                exc_message: vec![json!(limit.as_secs_f64())],
                exc_module: "billiard.exceptions".into(),
            };
            tracing::error!(task_id = %headers.id, task_name = %headers.task, hard_limit = limit.as_secs_f64(), "Hard time limit ({}s) exceeded for {}[{}]", limit.as_secs_f64(), headers.task, headers.id);
            fail(shared, request, task, exception, None, acked, runtime).await;
            true
        }
        Ending::Stopped => {
            stop_and_restore(shared, request, acked).await;
            false
        }
        Ending::Terminated => {
            tracing::warn!(task_id = %headers.id, task_name = %headers.task, "Terminating {}[{}] (revoked)", headers.task, headers.id);
            super::task_events::revoked_terminated(shared, request);
            let exception = json!({"exc_type": "TaskRevokedError", "exc_message": ["terminated"], "exc_module": "celery.exceptions"});
            write(
                shared,
                &result_meta(shared, request, TaskState::Revoked, exception, None),
            )
            .await;
            if !acked {
                ack(shared, &request.delivery).await;
            }
            true
        }
    };
    if finished {
        finish_unique(shared, request).await;
    }
    shared.in_flight.remove(&request.delivery.delivery_tag);
}

/// Ends the pending state of a unique task (idempotent enqueue) once it will not run again,
/// so the same id may be enqueued anew.
pub(crate) async fn finish_unique(shared: &Shared, request: &Request) {
    let unique = request
        .message
        .headers
        .extra
        .get(crate::producer::UNIQUE_HEADER)
        == Some(&Value::Bool(true));
    if !unique {
        return;
    }
    if let Err(error) = shared
        .broker
        .clear_pending(request.message.headers.id.as_str())
        .await
    {
        tracing::warn!(task_id = %request.message.headers.id, %error, "could not clear the pending marker of a unique task; it expires by itself");
    }
}

async fn supervise(
    shared: &Shared,
    run: crate::task::BoxedRunFuture,
    hard: Option<Duration>,
    soft: Option<Duration>,
    soft_sender: watch::Sender<bool>,
    request: &Request,
    terminate: &tokio::sync::Notify,
) -> Ending {
    // The body runs inline: dropping it on a limit or an abort stops it at its next await, and
    // `catch_unwind` turns a panic into a failure, without a task spawn per run.
    let start = tokio::time::Instant::now();
    let mut run = std::panic::AssertUnwindSafe(run).catch_unwind();
    let mut soft_pending = soft.is_some();
    let mut aborting = shared.aborting.clone();
    loop {
        tokio::select! {
            finished = &mut run => {
                return match finished {
                    Ok(outcome) => Ending::Finished(outcome),
                    Err(payload) => {
                        let message = payload
                            .downcast_ref::<&str>()
                            .map(|text| (*text).to_owned())
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "task panicked".to_owned());
                        Ending::Finished(Outcome::Fail {
                            exception: ExceptionInfo::new("RuntimeError", format!("task panicked: {message}")),
                            traceback: None,
                            error_type: None,
                        })
                    }
                };
            }
            _ = tokio::time::sleep_until(start + hard.unwrap_or(Duration::MAX / 4)), if hard.is_some() => {
                return Ending::TimedOut(hard.unwrap_or_default());
            }
            _ = tokio::time::sleep_until(start + soft.unwrap_or(Duration::MAX / 4)), if soft_pending => {
                soft_pending = false;
                let _ = soft_sender.send(true);
                tracing::warn!(task_id = %request.message.headers.id, "Soft time limit ({}s) exceeded for {}[{}]", soft.unwrap_or_default().as_secs_f64(), request.message.headers.task, request.message.headers.id);
            }
            _ = terminate.notified() => {
                return Ending::Terminated;
            }
            _ = aborting.wait_for(|abort| *abort) => {
                return Ending::Stopped;
            }
        }
    }
}

/// Hard and soft limits: the message's `timelimit` header, else limits set by the `time_limit`
/// command, else the task's options, else the `task_time_limit` / `task_soft_time_limit`
/// settings.
fn time_limits(
    shared: &Shared,
    request: &Request,
    task: &Task,
) -> (Option<Duration>, Option<Duration>) {
    let (header_hard, header_soft) = request.message.headers.timelimit;
    let seconds = |value: Option<f64>| {
        value
            .filter(|seconds| *seconds > 0.0)
            .map(Duration::from_secs_f64)
    };
    let (set_hard, set_soft) = shared
        .time_limits
        .lock()
        .ok()
        .and_then(|limits| limits.get(task.name()).copied())
        .unwrap_or((None, None));
    let hard = seconds(header_hard)
        .or(set_hard)
        .or(task.options().time_limit)
        .or_else(|| shared.config.task_time_limit());
    let soft = seconds(header_soft)
        .or(set_soft)
        .or(task.options().soft_time_limit)
        .or_else(|| shared.config.task_soft_time_limit());
    (hard, soft)
}

async fn fail(
    shared: &Shared,
    request: &Request,
    task: &Task,
    exception: ExceptionInfo,
    traceback: Option<String>,
    acked: bool,
    runtime: f64,
) {
    let headers = &request.message.headers;
    tracing::error!(task_id = %headers.id, task_name = %headers.task, runtime, exc_type = %exception.exc_type, "Task {}[{}] raised unexpected: {}", headers.task, headers.id, truncate(&exception.repr(), REPR_LOGGED));
    record_failure(shared, request, task, exception, traceback, acked).await;
}

/// Ends a task in FAILURE: counts it, stores it, and settles the message as
/// `task_acks_on_failure_or_timeout` says (ack, or dead letter when it is off).
pub(crate) async fn record_failure(
    shared: &Shared,
    request: &Request,
    task: &Task,
    exception: ExceptionInfo,
    traceback: Option<String>,
    acked: bool,
) {
    let headers = &request.message.headers;
    shared.counters.failed.fetch_add(1, Ordering::Relaxed);
    let traceback = traceback_text(request, &exception, traceback);
    super::task_events::failed(shared, request, &exception, &traceback);
    let stored = store(
        shared,
        request,
        task,
        TaskState::Failure,
        json!(exception),
        Some(traceback),
    )
    .await;
    if acked {
        return;
    }
    if !stored {
        give_back(shared, request).await;
        return;
    }
    if shared.config.task_acks_on_failure_or_timeout {
        ack(shared, &request.delivery).await;
    } else {
        dead_letter_only(
            shared,
            &request.delivery,
            &format!("task failed: {}", exception.repr()),
            Some(headers.id.as_str()),
        )
        .await;
    }
}

/// Python readers show `traceback` verbatim; a Rust task has no Python frames, so we say
/// where it ran and what it raised, plus any detail the task supplied.
pub(crate) fn traceback_text(
    request: &Request,
    exception: &ExceptionInfo,
    detail: Option<String>,
) -> String {
    let headers = &request.message.headers;
    let mut text = format!(
        "Traceback (most recent call last):\n  Rust task {}[{}]\n",
        headers.task, headers.id
    );
    if let Some(detail) = detail {
        text.push_str(&detail);
        text.push('\n');
    }
    text.push_str(&format!("{}: {}", exception.exc_type, exception.message()));
    text
}

async fn stop_and_restore(shared: &Shared, request: &Request, acked: bool) {
    let headers = &request.message.headers;
    if crate::failpoint::active("no_shutdown_restore") {
        tracing::error!(task_id = %headers.id, "failpoint no_shutdown_restore: leaving the stopped task in unacked");
        return;
    }
    let restored = if acked {
        // Acked early, so the broker no longer has it: publish the same envelope again,
        // flagged redelivered, so the stopped run is not lost.
        let mut envelope: Value =
            serde_json::from_str(&request.delivery.raw).unwrap_or(Value::Null);
        crate::protocol::envelope::mark_redelivered(&mut envelope);
        shared
            .broker
            .publish(
                &request.delivery.queue,
                request.priority,
                &envelope.to_string(),
            )
            .await
            .is_ok()
    } else {
        shared.broker.requeue(&request.delivery, true).await.is_ok()
    };
    if restored {
        shared.counters.restored.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(task_id = %headers.id, task_name = %headers.task, "stopped running task at shutdown and restored it to its queue");
    } else {
        tracing::error!(task_id = %headers.id, "could not restore stopped task; it stays in unacked for the visibility sweep");
    }
}

/// Acks a delivery: queued for the consumer, whose next fetch settles it in the same round
/// trip (see `PendingAcks`); the consumer keeps it until Redis has confirmed it.
pub(crate) async fn ack(shared: &Shared, delivery: &Delivery) -> bool {
    shared.acks.push(delivery);
    true
}

/// Characters of a result or exception repr in a log line or event, Celery's
/// `resultrepr_maxsize`: the stored result keeps it whole.
pub(crate) const REPR_LOGGED: usize = 1_024;

/// Settles a finished run's message: acked once its outcome is stored, put back in its queue
/// when it could not be (the task then runs again rather than its result being lost). Returns
/// true: the run finished either way.
async fn settle(shared: &Shared, request: &Request, acked: bool, stored: bool) -> bool {
    if acked {
        return true;
    }
    if stored {
        ack(shared, &request.delivery).await;
    } else {
        give_back(shared, request).await;
    }
    true
}

/// Puts back the message of a run whose outcome could not be stored (only when the grace
/// period of a shutdown ran out while the backend was unreachable): at least once beats lost.
async fn give_back(shared: &Shared, request: &Request) {
    tracing::warn!(
        task_id = %request.message.headers.id,
        "the result could not be stored; the message goes back to its queue and the task will run again"
    );
    super::strategy::restore(shared, request).await;
}

/// Stores a state unless results are ignored for this call or task (errors are kept unless
/// ignored too, as Celery's default `task_store_errors_even_if_ignored = False`). False when
/// a state that should be stored was not (see [`write`]).
pub(crate) async fn store(
    shared: &Shared,
    request: &Request,
    task: &Task,
    status: TaskState,
    result: Value,
    traceback: Option<String>,
) -> bool {
    let ignore = request.message.headers.ignore_result
        || task
            .options()
            .ignore_result
            .unwrap_or(shared.config.task_ignore_result);
    if ignore && status != TaskState::Started {
        return true;
    }
    if status.is_ready() && !still_ours(shared, request).await {
        tracing::warn!(
            task_id = %request.message.headers.id,
            status = %status,
            "result of a stale run dropped: the message was restored and redelivered while this worker held it past the visibility timeout"
        );
        return true;
    }
    let meta = result_meta(shared, request, status, result, traceback);
    let frees = status.is_ready().then_some(&request.delivery);
    write_freeing(shared, &meta, frees).await
}

/// A delivery held longer than half the visibility timeout may have been restored and handed
/// to another worker (this one was frozen, or its refreshes failed); its result must not
/// overwrite the redelivery's. Quick runs skip the check.
async fn still_ours(shared: &Shared, request: &Request) -> bool {
    if request.fetched_at.elapsed() < shared.broker.options().visibility_timeout / 2 {
        return true;
    }
    shared.broker.holds(&request.delivery).await.unwrap_or(true)
}

pub(crate) fn result_meta(
    shared: &Shared,
    request: &Request,
    status: TaskState,
    result: Value,
    traceback: Option<String>,
) -> ResultMeta {
    let headers = &request.message.headers;
    let mut meta = ResultMeta::new(headers.id.0.clone(), status, result);
    meta.traceback = traceback;
    if status.is_ready() {
        meta.date_done = Some(format_iso(clock::now()));
    }
    meta.group_id = headers.group.clone();
    meta.parent_id = headers.parent_id.clone();
    if shared.config.result_extended {
        meta.name = Some(headers.task.clone());
        meta.args = Some(Value::Array(request.message.args.clone()));
        meta.kwargs = Some(Value::Object(request.message.kwargs.clone()));
        meta.worker = Some(shared.options.node_name.clone());
        meta.retries = Some(headers.retries);
        meta.queue = Some(request.delivery.queue.clone());
    }
    meta
}

/// Discards a revoked message (REVOKED result `revoked`, `task-revoked` event, ack) and says
/// whether it did.
pub(crate) async fn discard_if_revoked(shared: &Shared, request: &Request) -> bool {
    let headers = &request.message.headers;
    if !shared.revoked.contains(headers.id.as_str()) {
        return false;
    }
    tracing::info!(task_id = %headers.id, task_name = %headers.task, "Discarding revoked task: {}[{}]", headers.task, headers.id);
    super::task_events::revoked(shared, request, false);
    let exception = json!({"exc_type": "TaskRevokedError", "exc_message": ["revoked"], "exc_module": "celery.exceptions"});
    write(
        shared,
        &result_meta(shared, request, TaskState::Revoked, exception, None),
    )
    .await;
    ack(shared, &request.delivery).await;
    finish_unique(shared, request).await;
    shared.in_flight.remove(&request.delivery.delivery_tag);
    true
}

/// Revokes an expired message (REVOKED result, ack) and says whether it did.
pub(crate) async fn revoke_if_expired(shared: &Shared, request: &Request) -> bool {
    let headers = &request.message.headers;
    let Some(expires) = headers.expires else {
        return false;
    };
    if expires > clock::now() {
        return false;
    }
    shared.counters.expired.fetch_add(1, Ordering::Relaxed);
    tracing::info!(task_id = %headers.id, task_name = %headers.task, "Discarding revoked task: {}[{}] (expired)", headers.task, headers.id);
    let exception = json!({"exc_type": "TaskRevokedError", "exc_message": ["expired"], "exc_module": "celery.exceptions"});
    super::task_events::revoked(shared, request, true);
    let meta = result_meta(shared, request, TaskState::Revoked, exception, None);
    write(shared, &meta).await;
    ack(shared, &request.delivery).await;
    shared.in_flight.remove(&request.delivery.delivery_tag);
    finish_unique(shared, request).await;
    true
}

/// Bad input: moves the message to the dead-letter list with `reason`, logs it, and stores a
/// FAILURE with `exception` when the message has an id.
pub(crate) async fn dead_letter(
    shared: &Shared,
    delivery: &Delivery,
    reason: &str,
    task_id: Option<&str>,
    request: Option<&Request>,
    exception: ExceptionInfo,
) {
    let reason = truncate(reason, REPR_LOGGED);
    dead_letter_only(shared, delivery, reason, task_id).await;
    if let Some(request) = request {
        finish_unique(shared, request).await;
    }
    let Some(task_id) = task_id else { return };
    let meta = match request {
        Some(request) => {
            let traceback = traceback_text(request, &exception, None);
            result_meta(
                shared,
                request,
                TaskState::Failure,
                json!(exception),
                Some(traceback),
            )
        }
        None => {
            let mut meta = ResultMeta::new(task_id, TaskState::Failure, json!(exception));
            meta.traceback = Some(format!("{}: {}", exception.exc_type, exception.message()));
            meta.date_done = Some(format_iso(clock::now()));
            meta
        }
    };
    let traceback = meta.traceback.as_deref().unwrap_or_default();
    super::task_events::dead_lettered(shared, task_id, &exception, traceback);
    write(shared, &meta).await;
}

async fn dead_letter_only(
    shared: &Shared,
    delivery: &Delivery,
    reason: &str,
    task_id: Option<&str>,
) {
    shared
        .counters
        .dead_lettered
        .fetch_add(1, Ordering::Relaxed);
    tracing::error!(
        delivery_tag = %delivery.delivery_tag,
        queue = %delivery.queue,
        task_id = task_id.unwrap_or("-"),
        reason,
        "message moved to the dead-letter list"
    );
    if let Err(error) = shared.broker.dead_letter(delivery, reason, task_id).await {
        tracing::error!(delivery_tag = %delivery.delivery_tag, %error, "could not dead-letter message; it stays in unacked");
    }
    shared.in_flight.remove(&delivery.delivery_tag);
}
