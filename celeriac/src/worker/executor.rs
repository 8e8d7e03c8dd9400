//! Runs one task (Celery's `trace.py`) and hands its outcome to [`super::settle`].
//!
//! 1. Bind the arguments; a mismatch is bad input: dead letter + `TypeError` FAILURE.
//! 2. Ack now unless the task is `acks_late` (Celery's early ack happens as the pool accepts
//!    the job); store STARTED with `task_track_started`. A chord header member is always acked
//!    late, so a worker killed during the header cannot lose part of a chord.
//! 3. Run the body under `catch_unwind` so a panic is caught, and drop it when the hard time
//!    limit passes. At the soft limit the context's signal flips to true.
//! 4. Settle: success, failure and revoke through [`super::settle`], retries re-published by
//!    [`super::retry`], rejects requeued or dead-lettered.
//! 5. A run stopped by shutdown is restored to its queue (re-published if it was acked early).

use super::request::{truncate, Request, REPR_LOGGED};
use super::retry::{self, Cause};
use super::settle::{self, Held, Lease};
use super::Shared;
use crate::task::{Outcome, RequestInfo, RetryRequest, Task, TaskContext};
use crate::types::{python_repr, ExceptionInfo};
use futures::FutureExt;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;

enum Ending {
    Finished(Outcome),
    TimedOut(Duration),
    Stopped,
    Terminated,
}

pub(crate) async fn execute(shared: &Shared, request: &Request, task: &Task, held: Held) {
    let headers = &request.message.headers;
    let Some(held) = settle::revoke_if_expired(shared, request, held).await else {
        return;
    };
    let Some(held) = settle::discard_if_revoked(shared, request, held).await else {
        return;
    };
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
            settle::refuse_arguments(shared, held, request, message).await;
            return;
        }
    };
    let acks_late = (task
        .options()
        .acks_late
        .unwrap_or(shared.config.task_acks_late)
        || super::canvas::in_chord(request))
        && !crate::failpoint::active("ignore_acks_late");
    let mut lease = Lease::Held(held);
    if !acks_late {
        lease = lease.ack_early(shared, request);
    }
    if shared.config.task_track_started {
        let started = json!({"pid": std::process::id(), "hostname": shared.options.node_name});
        settle::store(
            shared,
            request,
            task,
            crate::TaskState::Started,
            started,
            None,
        )
        .await;
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
            settle::succeeded(shared, request, task, value, lease).await;
            true
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
                retry::retry(
                    shared,
                    request,
                    task,
                    retry_request,
                    traceback,
                    Cause::Automatic,
                    lease,
                )
                .await
            } else {
                fail(shared, request, task, exception, traceback, lease, runtime).await;
                true
            }
        }
        Ending::Finished(Outcome::Retry(retry_request)) => {
            retry::retry(
                shared,
                request,
                task,
                retry_request,
                None,
                Cause::Requested,
                lease,
            )
            .await
        }
        Ending::Finished(Outcome::Reject { requeue }) => {
            super::task_events::rejected(shared, request, requeue);
            match lease {
                Lease::Acked => {
                    tracing::warn!(task_id = %headers.id, "task rejected after its early ack; nothing to requeue");
                }
                Lease::Held(held) if requeue => {
                    held.requeue(shared, request).await;
                    return;
                }
                Lease::Held(held) => {
                    let exception = ExceptionInfo::new("Reject", "rejected by the task")
                        .in_module("celery.exceptions");
                    settle::dead_letter(
                        shared,
                        held,
                        &request.delivery,
                        "rejected by the task (requeue=False)",
                        Some(headers.id.as_str()),
                        Some(request),
                        exception,
                    )
                    .await;
                }
            }
            true
        }
        Ending::Finished(Outcome::Ignore) => {
            lease.ack(shared, request);
            true
        }
        Ending::TimedOut(limit) => {
            let exception = ExceptionInfo {
                exc_type: "TimeLimitExceeded".into(),
                exc_message: vec![json!(limit.as_secs_f64())],
                exc_module: "billiard.exceptions".into(),
            };
            tracing::error!(task_id = %headers.id, task_name = %headers.task, hard_limit = limit.as_secs_f64(), "Hard time limit ({}s) exceeded for {}[{}]", limit.as_secs_f64(), headers.task, headers.id);
            fail(shared, request, task, exception, None, lease, runtime).await;
            true
        }
        Ending::Stopped => {
            settle::stop_and_restore(shared, request, lease).await;
            false
        }
        Ending::Terminated => {
            settle::terminated(shared, request, lease).await;
            true
        }
    };
    if finished {
        settle::finish_unique(shared, request).await;
    }
    shared.in_flight.remove(&request.delivery.delivery_tag);
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
    lease: Lease,
    runtime: f64,
) {
    let headers = &request.message.headers;
    tracing::error!(task_id = %headers.id, task_name = %headers.task, runtime, exc_type = %exception.exc_type, "Task {}[{}] raised unexpected: {}", headers.task, headers.id, truncate(&exception.repr(), REPR_LOGGED));
    settle::record_failure(shared, request, task, exception, traceback, lease).await;
}
