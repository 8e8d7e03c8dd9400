//! Settling a run's message: its one way from held to gone (Celery's `Request` acks and
//! `backend.mark_as_*`).
//!
//! A fetched message is [`Held`]: the broker keeps it in `unacked` until this worker acks,
//! requeues, restores or dead-letters it, and each of those consumes the `Held`, so a message
//! cannot be settled twice, and one not settled stays in `unacked` for the visibility sweep
//! rather than being lost. A run carries a [`Lease`]: still `Held` (late ack), or `Acked`
//! early (Celery's default ack as the pool accepts the job).
//!
//! The states of a run's message, in order:
//!
//! 1. **Held**: fetched, decoded, waiting (eta, rate limit, pool slot). Revoked or expired:
//!    REVOKED stored, chord part joined, acked. Undecodable, unknown task or arguments the task
//!    refuses: dead-lettered with a FAILURE (the last also fails its workflow, as Celery's
//!    `TypeError` does). Shutdown: restored to its queue.
//! 2. **Running**, held or acked early.
//! 3. **Outcome sent on**: on success the workflow's next messages are published (`link`
//!    callbacks, the next chain step; [`super::canvas`]), so the stored result can list them
//!    as `children`.
//! 4. **Stored**: SUCCESS, FAILURE, RETRY (after the retry message is published) or REVOKED,
//!    unless the task ignores results.
//! 5. **Joined**: a chord header member adds its outcome to the chord; the member that
//!    completes the chord fires the body. A failure also fails the rest of its chain and calls
//!    its errbacks. Not for RETRY: the retried run joins later.
//! 6. **Acked** (late ack), or given back to the queue when the result could not be stored.
//!
//! Joining before the late ack is what makes a chord survive a worker killed mid-header: its
//! messages come back and join again, and the join counts each member once.

use super::request::{identify, truncate, Request, REPR_LOGGED};
use super::result_write::{write, write_freeing};
use super::{canvas, Shared};
use crate::broker::Delivery;
use crate::clock;
use crate::protocol::time::format_iso;
use crate::protocol::ResultMeta;
use crate::task::Task;
use crate::types::{ExceptionInfo, TaskState};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

/// A delivery this worker owes the broker an answer for. Settling it consumes it.
#[must_use = "a held delivery stays in `unacked` until it is acked, requeued, restored or dead-lettered"]
#[derive(Debug)]
pub(crate) struct Held {
    _owed: (),
}

/// The message of a run: still held (acked once settled), or acked when the run started.
#[must_use = "a run's lease ends with `finish`, `restore` or `dead_letter`"]
#[derive(Debug)]
pub(crate) enum Lease {
    Held(Held),
    Acked,
}

impl Held {
    /// The claim on a message just fetched; made once per delivery, by the strategy.
    pub(crate) fn fetched() -> Held {
        Held { _owed: () }
    }

    /// Acks: queued for the consumer, whose next fetch settles it in the same round trip (see
    /// `PendingAcks`); the consumer keeps it until Redis has confirmed it.
    pub(crate) fn ack(self, shared: &Shared, delivery: &Delivery) {
        shared.acks.push(delivery);
    }

    /// Puts the message back at the front of its queue (a task's `Reject(requeue=True)`).
    pub(crate) async fn requeue(self, shared: &Shared, request: &Request) {
        if let Err(error) = shared.broker.requeue(&request.delivery, false).await {
            tracing::error!(task_id = %request.id(), %error, "could not requeue rejected task; it stays in unacked for the visibility sweep");
        }
        shared.in_flight.remove(&request.delivery.delivery_tag);
    }
}

impl Lease {
    /// Acks now when the task is not `acks_late`.
    pub(crate) fn ack_early(self, shared: &Shared, request: &Request) -> Lease {
        if let Lease::Held(held) = self {
            held.ack(shared, &request.delivery);
        }
        Lease::Acked
    }

    /// The late ack of a run whose outcome is settled; nothing when it was acked early.
    pub(crate) fn ack(self, shared: &Shared, request: &Request) {
        if let Lease::Held(held) = self {
            held.ack(shared, &request.delivery);
        }
    }

    /// Acked once its outcome is stored; given back to the queue when it could not be (the
    /// task then runs again rather than its result being lost).
    pub(crate) async fn finish(self, shared: &Shared, request: &Request, stored: bool) {
        match self {
            Lease::Acked => {}
            Lease::Held(held) if stored => held.ack(shared, &request.delivery),
            Lease::Held(held) => give_back(shared, held, request).await,
        }
    }
}

/// A run that succeeded: its workflow's next messages, then SUCCESS with them as `children`,
/// then its chord part, then the ack.
pub(crate) async fn succeeded(
    shared: &Shared,
    request: &Request,
    task: &Task,
    value: Value,
    lease: Lease,
) {
    let children = canvas::after_success(shared, request, &value).await;
    // Only a chord member needs the value after storing it: no copy of a large result else.
    let joined = canvas::in_chord(request).then(|| value.clone());
    let stored = store_with_children(
        shared,
        request,
        task,
        TaskState::Success,
        value,
        None,
        children,
    )
    .await;
    if let Some(value) = joined {
        canvas::join_chord(shared, request, TaskState::Success, &value).await;
    }
    lease.finish(shared, request, stored).await;
}

/// Ends a task in FAILURE: counts it, stores it, fails the rest of its workflow (chord part,
/// chain, errbacks), and settles the message as `task_acks_on_failure_or_timeout` says (ack,
/// or dead letter when it is off).
pub(crate) async fn record_failure(
    shared: &Shared,
    request: &Request,
    task: &Task,
    exception: ExceptionInfo,
    traceback: Option<String>,
    lease: Lease,
) {
    shared.counters.failed.fetch_add(1, Ordering::Relaxed);
    let traceback = traceback_text(request, &exception, traceback);
    super::task_events::failed(shared, request, &exception, &traceback);
    let stored = store(
        shared,
        request,
        task,
        TaskState::Failure,
        json!(exception),
        Some(traceback.clone()),
    )
    .await;
    canvas::after_failure(shared, request, &exception, &traceback).await;
    let held = match lease {
        Lease::Acked => return,
        Lease::Held(held) => held,
    };
    if !stored {
        give_back(shared, held, request).await;
    } else if shared.config.task_acks_on_failure_or_timeout {
        held.ack(shared, &request.delivery);
    } else {
        let reason = format!("task failed: {}", exception.repr());
        dead_letter_only(shared, held, &request.delivery, &reason, Some(request.id())).await;
    }
}

/// A running task stopped by `revoke --terminate`: REVOKED stored, chord part joined, acked.
pub(crate) async fn terminated(shared: &Shared, request: &Request, lease: Lease) {
    tracing::warn!(task_id = %request.id(), task_name = %request.name(), "Terminating {}[{}] (revoked)", request.name(), request.id());
    super::task_events::revoked_terminated(shared, request);
    revoke(shared, request, "terminated").await;
    lease.ack(shared, request);
}

/// Stores REVOKED with Celery's `TaskRevokedError(reason)` and joins the chord: a revoked
/// header member fails its chord instead of stalling it.
async fn revoke(shared: &Shared, request: &Request, reason: &str) {
    let exception = ExceptionInfo::revoked(reason);
    let result = json!(exception);
    write(
        shared,
        &result_meta(shared, request, TaskState::Revoked, result.clone(), None),
    )
    .await;
    canvas::join_chord(shared, request, TaskState::Revoked, &result).await;
}

/// Python readers show `traceback` verbatim; a Rust task has no Python frames, so we say
/// where it ran and what it raised, plus any detail the task supplied.
pub(crate) fn traceback_text(
    request: &Request,
    exception: &ExceptionInfo,
    detail: Option<String>,
) -> String {
    let mut text = format!(
        "Traceback (most recent call last):\n  Rust task {}[{}]\n",
        request.name(),
        request.id()
    );
    if let Some(detail) = detail {
        text.push_str(&detail);
        text.push('\n');
    }
    text.push_str(&format!("{}: {}", exception.exc_type, exception.message()));
    text
}

/// A run stopped by shutdown goes back to its queue: requeued while held, published again
/// (flagged redelivered) when it was acked early, so the stopped run is not lost.
pub(crate) async fn stop_and_restore(shared: &Shared, request: &Request, lease: Lease) {
    if crate::failpoint::active("no_shutdown_restore") {
        tracing::error!(task_id = %request.id(), "failpoint no_shutdown_restore: leaving the stopped task in unacked");
        return;
    }
    let restored = match lease {
        Lease::Acked => {
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
        }
        Lease::Held(_held) => shared.broker.requeue(&request.delivery, true).await.is_ok(),
    };
    if restored {
        shared.counters.restored.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(task_id = %request.id(), task_name = %request.name(), "stopped running task at shutdown and restored it to its queue");
    } else {
        tracing::error!(task_id = %request.id(), "could not restore stopped task; it stays in unacked for the visibility sweep");
    }
}

/// Puts a message we will not run back at the front of its queue (warm shutdown).
pub(crate) async fn restore(shared: &Shared, _held: Held, request: &Request) {
    match shared.broker.requeue(&request.delivery, true).await {
        Ok(_) => {
            shared.counters.restored.fetch_add(1, Ordering::Relaxed);
            shared.in_flight.remove(&request.delivery.delivery_tag);
            tracing::info!(task_id = %request.id(), "restored unstarted task to its queue");
        }
        Err(error) => tracing::error!(
            task_id = %request.id(),
            %error,
            message = %truncate(&request.delivery.raw, 120),
            "could not restore task; it stays in unacked for the visibility sweep"
        ),
    }
}

/// Puts back the message of a run whose outcome could not be stored (only when the grace
/// period of a shutdown ran out while the backend was unreachable): at least once beats lost.
async fn give_back(shared: &Shared, held: Held, request: &Request) {
    tracing::warn!(
        task_id = %request.id(),
        "the result could not be stored; the message goes back to its queue and the task will run again"
    );
    restore(shared, held, request).await;
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
    if let Err(error) = shared.broker.clear_pending(request.id()).await {
        tracing::warn!(task_id = %request.id(), %error, "could not clear the pending marker of a unique task; it expires by itself");
    }
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
    store_with_children(shared, request, task, status, result, traceback, Vec::new()).await
}

async fn store_with_children(
    shared: &Shared,
    request: &Request,
    task: &Task,
    status: TaskState,
    result: Value,
    traceback: Option<String>,
    children: Vec<Value>,
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
            task_id = %request.id(),
            status = %status,
            "result of a stale run dropped: the message was restored and redelivered while this worker held it past the visibility timeout"
        );
        return true;
    }
    let mut meta = result_meta(shared, request, status, result, traceback);
    meta.children = children;
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
        meta.args_repr = Some(request.message.args_repr());
        meta.kwargs_repr = Some(request.message.kwargs_repr());
        meta.periodic_task_name = request
            .message
            .headers
            .extra
            .get(crate::beat::PERIODIC_TASK_NAME_HEADER)
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    meta
}

/// Discards a revoked message (REVOKED result `revoked`, `task-revoked` event, chord part,
/// ack); the message back when it is not revoked.
pub(crate) async fn discard_if_revoked(
    shared: &Shared,
    request: &Request,
    held: Held,
) -> Option<Held> {
    if !shared.revoked.contains(request.id()) {
        return Some(held);
    }
    tracing::info!(task_id = %request.id(), task_name = %request.name(), "Discarding revoked task: {}[{}]", request.name(), request.id());
    super::task_events::revoked(shared, request, false);
    revoke(shared, request, "revoked").await;
    held.ack(shared, &request.delivery);
    finish_unique(shared, request).await;
    shared.in_flight.remove(&request.delivery.delivery_tag);
    None
}

/// Revokes an expired message (REVOKED result, chord part, ack); the message back when it has
/// not expired.
pub(crate) async fn revoke_if_expired(
    shared: &Shared,
    request: &Request,
    held: Held,
) -> Option<Held> {
    let expired = request
        .message
        .headers
        .expires
        .is_some_and(|expires| expires <= clock::now());
    if !expired {
        return Some(held);
    }
    shared.counters.expired.fetch_add(1, Ordering::Relaxed);
    tracing::info!(task_id = %request.id(), task_name = %request.name(), "Discarding revoked task: {}[{}] (expired)", request.name(), request.id());
    super::task_events::revoked(shared, request, true);
    revoke(shared, request, "expired").await;
    held.ack(shared, &request.delivery);
    shared.in_flight.remove(&request.delivery.delivery_tag);
    finish_unique(shared, request).await;
    None
}

/// Arguments the task refuses: Celery raises `TypeError` in the task and fails it like any
/// other error, so its workflow fails too (chord part, chain, errbacks); the message itself is
/// bad input and goes to the dead-letter list with the reason.
pub(crate) async fn refuse_arguments(
    shared: &Shared,
    held: Held,
    request: &Request,
    message: &str,
) {
    let exception = ExceptionInfo::new("TypeError", message);
    let traceback = traceback_text(request, &exception, None);
    dead_letter(
        shared,
        held,
        &request.delivery,
        message,
        Some(request.id()),
        Some(request),
        exception.clone(),
    )
    .await;
    canvas::after_failure(shared, request, &exception, &traceback).await;
}

/// Dead-letters a message that is not a task message we decode, with `reason`, naming it by
/// the id and name it seems to carry (an `InvalidTaskError` FAILURE when it has an id).
pub(crate) async fn refuse_invalid(
    shared: &Shared,
    held: Held,
    delivery: &Delivery,
    reason: String,
) {
    let (task_id, _) = identify(&delivery.raw);
    let exception =
        ExceptionInfo::new("InvalidTaskError", reason.clone()).in_module("celery.exceptions");
    dead_letter(
        shared,
        held,
        delivery,
        &reason,
        task_id.as_deref(),
        None,
        exception,
    )
    .await;
}

/// Bad input: moves the message to the dead-letter list with `reason`, logs it, and stores a
/// FAILURE with `exception` when the message has an id.
pub(crate) async fn dead_letter(
    shared: &Shared,
    held: Held,
    delivery: &Delivery,
    reason: &str,
    task_id: Option<&str>,
    request: Option<&Request>,
    exception: ExceptionInfo,
) {
    let reason = truncate(reason, REPR_LOGGED);
    dead_letter_only(shared, held, delivery, reason, task_id).await;
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
            let traceback = format!("{}: {}", exception.exc_type, exception.message());
            ResultMeta::failure(task_id, &exception, traceback, format_iso(clock::now()))
        }
    };
    let traceback = meta.traceback.as_deref().unwrap_or_default();
    super::task_events::dead_lettered(shared, task_id, &exception, traceback);
    write(shared, &meta).await;
}

async fn dead_letter_only(
    shared: &Shared,
    _held: Held,
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
