//! The task events a worker sends (with `worker_send_task_events`), with Celery's fields for
//! each type (wire doc §4.3). `args`/`kwargs` are the repr strings, `result` and `exception`
//! Python-style reprs, as monitors display them.

use super::request::{truncate, Request, REPR_LOGGED};
use super::Shared;
use crate::protocol::time::format_iso;
use crate::types::{python_args_repr, python_repr, ExceptionInfo};
use serde_json::{json, Map, Value};

fn base(request: &Request) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("uuid".into(), json!(request.message.headers.id.0));
    fields
}

pub(crate) fn received(shared: &Shared, request: &Request) {
    if !shared.events.task_events() {
        return;
    }
    let message = &request.message;
    let headers = &message.headers;
    let mut fields = base(request);
    fields.insert("name".into(), json!(headers.task));
    let args = headers
        .argsrepr
        .clone()
        .unwrap_or_else(|| python_args_repr(&message.args));
    let kwargs = headers
        .kwargsrepr
        .clone()
        .unwrap_or_else(|| python_repr(&Value::Object(message.kwargs.clone())));
    fields.insert("args".into(), json!(args));
    fields.insert("kwargs".into(), json!(kwargs));
    fields.insert("root_id".into(), json!(headers.root_id));
    fields.insert("parent_id".into(), json!(headers.parent_id));
    fields.insert("retries".into(), json!(headers.retries));
    fields.insert("eta".into(), json!(headers.eta.map(format_iso)));
    fields.insert("expires".into(), json!(headers.expires.map(format_iso)));
    // Not in Celery's event: monitors that know it (our history) show the task's group or
    // chord; others ignore an unknown field.
    if let Some(group) = &headers.group {
        fields.insert("group_id".into(), json!(group));
    }
    shared.events.task("task-received", fields);
}

pub(crate) fn started(shared: &Shared, request: &Request) {
    shared.events.task("task-started", base(request));
}

pub(crate) fn succeeded(shared: &Shared, request: &Request, result: &Value, runtime: f64) {
    let mut fields = base(request);
    // Celery cuts the result repr at `resultrepr_maxsize` (1,024) in the event, as in the log.
    let repr = python_repr(result);
    fields.insert("result".into(), json!(truncate(&repr, REPR_LOGGED)));
    fields.insert("runtime".into(), json!(runtime));
    shared.events.task("task-succeeded", fields);
}

pub(crate) fn failed(
    shared: &Shared,
    request: &Request,
    exception: &ExceptionInfo,
    traceback: &str,
) {
    with_exception(shared, request, "task-failed", exception, traceback);
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
    let mut fields = Map::new();
    fields.insert("uuid".into(), json!(task_id));
    fields.insert("exception".into(), json!(exception.repr()));
    fields.insert("traceback".into(), json!(traceback));
    shared.events.task("task-failed", fields);
}

pub(crate) fn retried(
    shared: &Shared,
    request: &Request,
    exception: &ExceptionInfo,
    traceback: &str,
) {
    with_exception(shared, request, "task-retried", exception, traceback);
}

fn with_exception(
    shared: &Shared,
    request: &Request,
    kind: &str,
    exception: &ExceptionInfo,
    traceback: &str,
) {
    let mut fields = base(request);
    fields.insert("exception".into(), json!(exception.repr()));
    fields.insert("traceback".into(), json!(traceback));
    shared.events.task(kind, fields);
}

pub(crate) fn revoked(shared: &Shared, request: &Request, expired: bool) {
    let mut fields = base(request);
    fields.insert("terminated".into(), json!(false));
    fields.insert("signum".into(), Value::Null);
    fields.insert("expired".into(), json!(expired));
    shared.events.task("task-revoked", fields);
}

pub(crate) fn revoked_terminated(shared: &Shared, request: &Request) {
    let mut fields = base(request);
    fields.insert("terminated".into(), json!(true));
    fields.insert("signum".into(), json!(15));
    fields.insert("expired".into(), json!(false));
    shared.events.task("task-revoked", fields);
}

pub(crate) fn rejected(shared: &Shared, request: &Request, requeue: bool) {
    let mut fields = base(request);
    fields.insert("requeue".into(), json!(requeue));
    shared.events.task("task-rejected", fields);
}
