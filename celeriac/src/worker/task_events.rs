//! The task events a worker sends (with `worker_send_task_events`); their fields are
//! [`crate::protocol::event::task_fields`], Celery's for each type (wire doc §4.3).

use super::request::Request;
use super::Shared;
use crate::protocol::event::task_fields;
use crate::types::ExceptionInfo;
use serde_json::Value;

pub(crate) fn received(shared: &Shared, request: &Request) {
    if !shared.events.task_events() {
        return;
    }
    shared
        .events
        .task("task-received", task_fields::received(&request.message));
}

pub(crate) fn started(shared: &Shared, request: &Request) {
    shared
        .events
        .task("task-started", task_fields::started(request.id()));
}

pub(crate) fn succeeded(shared: &Shared, request: &Request, result: &Value, runtime: f64) {
    if !shared.events.task_events() {
        return;
    }
    let fields = task_fields::succeeded(request.id(), result, runtime);
    shared.events.task("task-succeeded", fields);
}

pub(crate) fn failed(
    shared: &Shared,
    request: &Request,
    exception: &ExceptionInfo,
    traceback: &str,
) {
    let fields = task_fields::with_exception(request.id(), exception, traceback);
    shared.events.task("task-failed", fields);
}

/// `task-failed` for a message moved to the dead-letter list (unknown task, arguments the task
/// refuses, a message that does not decode but names its id), as Celery's consumer sends for an
/// unregistered task: monitors and the history then show it failed, with the reason, instead of
/// received forever.
pub(crate) fn dead_lettered(
    shared: &Shared,
    task_id: &str,
    exception: &ExceptionInfo,
    traceback: &str,
) {
    let fields = task_fields::with_exception(task_id, exception, traceback);
    shared.events.task("task-failed", fields);
}

pub(crate) fn retried(
    shared: &Shared,
    request: &Request,
    exception: &ExceptionInfo,
    traceback: &str,
) {
    let fields = task_fields::with_exception(request.id(), exception, traceback);
    shared.events.task("task-retried", fields);
}

pub(crate) fn revoked(shared: &Shared, request: &Request, expired: bool) {
    let fields = task_fields::revoked(request.id(), false, expired);
    shared.events.task("task-revoked", fields);
}

pub(crate) fn revoked_terminated(shared: &Shared, request: &Request) {
    let fields = task_fields::revoked(request.id(), true, false);
    shared.events.task("task-revoked", fields);
}

pub(crate) fn rejected(shared: &Shared, request: &Request, requeue: bool) {
    let fields = task_fields::rejected(request.id(), requeue);
    shared.events.task("task-rejected", fields);
}
