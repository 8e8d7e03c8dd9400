//! The fields of each task event a worker sends, as Celery's worker sends them (wire doc
//! §4.3): `args`/`kwargs` are repr strings, `result` and `exception` Python-style reprs cut at
//! `resultrepr_maxsize`, as monitors display them. The worker adds only the sending.

use crate::protocol::time::format_iso;
use crate::protocol::TaskMessage;
use crate::types::{python_repr, ExceptionInfo};
use serde_json::{json, Map, Value};

/// Characters of a result or exception repr in an event (Celery's `resultrepr_maxsize`).
pub const REPR_MAX: usize = 1_024;

/// `text` cut to at most `limit` characters (not bytes): a repr in an event or a log line
/// must not carry a megabyte argument whole.
pub fn truncate_chars(text: &str, limit: usize) -> &str {
    match text.char_indices().nth(limit) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

fn with_uuid(task_id: &str) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("uuid".into(), json!(task_id));
    fields
}

/// `task-received`. Celeriac adds `group_id` for a group or chord member, and a chord member's
/// `chord_body_id` (Celery's event has neither; monitors that do not know them ignore them).
pub fn received(message: &TaskMessage) -> Map<String, Value> {
    let headers = &message.headers;
    let mut fields = with_uuid(headers.id.as_str());
    fields.insert("name".into(), json!(headers.task));
    let args = message.args_repr();
    let kwargs = message.kwargs_repr();
    fields.insert("args".into(), json!(args));
    fields.insert("kwargs".into(), json!(kwargs));
    fields.insert("root_id".into(), json!(headers.root_id));
    fields.insert("parent_id".into(), json!(headers.parent_id));
    fields.insert("retries".into(), json!(headers.retries));
    fields.insert("eta".into(), json!(headers.eta.map(format_iso)));
    fields.insert("expires".into(), json!(headers.expires.map(format_iso)));
    if let Some(group) = &headers.group {
        fields.insert("group_id".into(), json!(group));
        let body = message
            .embed
            .chord
            .get("options")
            .and_then(|options| options.get("task_id"));
        if let Some(Value::String(body)) = body {
            fields.insert("chord_body_id".into(), json!(body));
        }
    }
    fields
}

/// `task-started`.
pub fn started(task_id: &str) -> Map<String, Value> {
    with_uuid(task_id)
}

/// `task-succeeded`.
pub fn succeeded(task_id: &str, result: &Value, runtime: f64) -> Map<String, Value> {
    let mut fields = with_uuid(task_id);
    fields.insert(
        "result".into(),
        json!(truncate_chars(&python_repr(result), REPR_MAX)),
    );
    fields.insert("runtime".into(), json!(runtime));
    fields
}

/// `task-failed` and `task-retried`.
pub fn with_exception(
    task_id: &str,
    exception: &ExceptionInfo,
    traceback: &str,
) -> Map<String, Value> {
    let mut fields = with_uuid(task_id);
    fields.insert("exception".into(), json!(exception.repr()));
    fields.insert("traceback".into(), json!(traceback));
    fields
}

/// `task-revoked`: SIGTERM's 15 as `signum` when a running task was terminated.
pub fn revoked(task_id: &str, terminated: bool, expired: bool) -> Map<String, Value> {
    let mut fields = with_uuid(task_id);
    fields.insert("terminated".into(), json!(terminated));
    fields.insert(
        "signum".into(),
        if terminated { json!(15) } else { Value::Null },
    );
    fields.insert("expired".into(), json!(expired));
    fields
}

/// `task-rejected`.
pub fn rejected(task_id: &str, requeue: bool) -> Map<String, Value> {
    let mut fields = with_uuid(task_id);
    fields.insert("requeue".into(), json!(requeue));
    fields
}
