//! Flower's task dictionary (`Task.as_dict()` with `worker` as the node name, as its
//! `/api/tasks` and `/api/task/info` return it), built from a history row or a live task.
//!
//! Times are epoch seconds as floats, as Flower sends them; `args`, `kwargs`, `result` and
//! `exception` are Python reprs; fields we do not know are `null`, as in Flower. `root` and
//! `parent` are ids, as Celery's `Task.as_dict()` serializes them; `children` (the ids of the
//! tasks it sent) starts empty and is filled by the handler, which reads them for a whole list
//! at once.

use celeriac::events::state::TaskSnapshot;
use celeriac::history::TaskRecord;
use celeriac::TaskState;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

fn epoch(time: Option<DateTime<Utc>>) -> Value {
    time.map_or(Value::Null, |time| {
        json!(time.timestamp_micros() as f64 / 1e6)
    })
}

/// A history row as Flower's task dictionary.
pub(super) fn task_from_record(record: &TaskRecord) -> Value {
    let done = |state: TaskState| {
        if record.state == state {
            epoch(record.done_at)
        } else {
            Value::Null
        }
    };
    json!({
        "uuid": record.task_id,
        "name": record.name,
        "state": record.state.as_str(),
        "received": epoch(record.received_at),
        "sent": epoch(record.sent_at),
        "started": epoch(record.started_at),
        "succeeded": done(TaskState::Success),
        "failed": done(TaskState::Failure),
        "retried": done(TaskState::Retry),
        "revoked": done(TaskState::Revoked),
        "rejected": done(TaskState::Rejected),
        "timestamp": epoch(Some(record.state_at)),
        "args": record.args_repr,
        "kwargs": record.kwargs_repr,
        "result": record.result,
        "exception": record.exception,
        "traceback": record.traceback,
        "runtime": record.runtime,
        "retries": record.retries,
        "worker": record.worker,
        "routing_key": record.queue,
        "eta": record.eta.map(|eta| eta.to_rfc3339()),
        "expires": record.expires.map(|expires| expires.to_rfc3339()),
        "root_id": record.root_id,
        "parent_id": record.parent_id,
        "root": record.root_id,
        "parent": record.parent_id,
        "children": [],
        "client": Value::Null,
        "exchange": Value::Null,
        "clock": Value::Null,
    })
}

/// A task the monitor holds (not yet, or no longer, in the history) as Flower's dictionary.
pub(super) fn task_from_snapshot(task: &TaskSnapshot) -> Value {
    json!({
        "uuid": task.id.0,
        "name": task.name,
        "state": task.state.as_str(),
        "received": epoch(task.received),
        "sent": epoch(task.sent),
        "started": epoch(task.started),
        "succeeded": epoch(task.succeeded),
        "failed": epoch(task.failed),
        "retried": epoch(task.retried),
        "revoked": epoch(task.revoked),
        "rejected": epoch(task.rejected),
        "timestamp": Value::Null,
        "args": task.args,
        "kwargs": task.kwargs,
        "result": task.result,
        "exception": task.exception,
        "traceback": task.traceback,
        "runtime": task.runtime.map(|runtime| runtime.as_secs_f64()),
        "retries": task.retries,
        "worker": task.worker,
        "routing_key": task.routing_key,
        "eta": task.eta,
        "expires": task.expires,
        "root_id": task.root_id.as_ref().map(|id| id.0.clone()),
        "parent_id": task.parent_id.as_ref().map(|id| id.0.clone()),
        "root": task.root_id.as_ref().map(|id| id.0.clone()),
        "parent": task.parent_id.as_ref().map(|id| id.0.clone()),
        "children": [],
        "client": task.client,
        "exchange": Value::Null,
        "clock": Value::Null,
    })
}
