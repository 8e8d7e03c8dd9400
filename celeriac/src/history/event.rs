//! [`TaskEvent`]: the part of a Celery task event the history keeps.
//!
//! Built from the decoded event object (wire doc §4.3), so the history does not depend on how
//! events are received. `args`, `kwargs`, `result` and `exception` are Python reprs here (and
//! may be truncated), never JSON: an event alone never tells the exact arguments.
//!
//! | type | fields read |
//! |---|---|
//! | every task event | `type`, `uuid`, `hostname`, `timestamp` |
//! | `task-sent` | `name, args, kwargs, retries, eta, expires, queue/routing_key, root_id, parent_id` |
//! | `task-received` | `name, args, kwargs, retries, eta, expires, root_id, parent_id` |
//! | `task-succeeded` | `result`, `runtime` |
//! | `task-failed`, `task-retried` | `exception`, `traceback` |

use crate::protocol::time::parse_iso;
use crate::types::TaskState;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

/// The task event types, with the state each one puts a task in (Celery's
/// `TASK_EVENT_TO_STATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskEventKind {
    /// `task-sent`: a producer published it (PENDING).
    Sent,
    /// `task-received`: a worker took it (RECEIVED).
    Received,
    /// `task-started`: a worker began running it (STARTED).
    Started,
    /// `task-succeeded` (SUCCESS).
    Succeeded,
    /// `task-failed` (FAILURE).
    Failed,
    /// `task-retried`: it will run again (RETRY).
    Retried,
    /// `task-revoked` (REVOKED).
    Revoked,
    /// `task-rejected`: the worker gave the message back or dropped it (REJECTED).
    Rejected,
}

impl TaskEventKind {
    /// The kind of event type `kind` (`task-succeeded` …), if the history records it.
    pub fn from_type(kind: &str) -> Option<TaskEventKind> {
        Some(match kind {
            "task-sent" => TaskEventKind::Sent,
            "task-received" => TaskEventKind::Received,
            "task-started" => TaskEventKind::Started,
            "task-succeeded" => TaskEventKind::Succeeded,
            "task-failed" => TaskEventKind::Failed,
            "task-retried" => TaskEventKind::Retried,
            "task-revoked" => TaskEventKind::Revoked,
            "task-rejected" => TaskEventKind::Rejected,
            _ => return None,
        })
    }

    /// The event type as Celery spells it.
    pub fn as_type(self) -> &'static str {
        match self {
            TaskEventKind::Sent => "task-sent",
            TaskEventKind::Received => "task-received",
            TaskEventKind::Started => "task-started",
            TaskEventKind::Succeeded => "task-succeeded",
            TaskEventKind::Failed => "task-failed",
            TaskEventKind::Retried => "task-retried",
            TaskEventKind::Revoked => "task-revoked",
            TaskEventKind::Rejected => "task-rejected",
        }
    }

    /// The state this event puts the task in.
    pub fn state(self) -> TaskState {
        match self {
            TaskEventKind::Sent => TaskState::Pending,
            TaskEventKind::Received => TaskState::Received,
            TaskEventKind::Started => TaskState::Started,
            TaskEventKind::Succeeded => TaskState::Success,
            TaskEventKind::Failed => TaskState::Failure,
            TaskEventKind::Retried => TaskState::Retry,
            TaskEventKind::Revoked => TaskState::Revoked,
            TaskEventKind::Rejected => TaskState::Rejected,
        }
    }
}

/// One task event, as the history records it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEvent {
    /// Which event.
    pub kind: TaskEventKind,
    /// The task (`uuid`).
    pub task_id: String,
    /// The sender's node name: the producer for `task-sent`, else the worker.
    pub hostname: String,
    /// When the sender sent it.
    pub timestamp: DateTime<Utc>,
    /// Task name.
    pub name: Option<String>,
    /// `argsrepr`.
    pub args: Option<String>,
    /// `kwargsrepr`.
    pub kwargs: Option<String>,
    /// Repr of the return value (`task-succeeded`).
    pub result: Option<String>,
    /// Repr of the exception (`task-failed`, `task-retried`).
    pub exception: Option<String>,
    /// Traceback text.
    pub traceback: Option<String>,
    /// Seconds the task ran (`task-succeeded`).
    pub runtime: Option<f64>,
    /// Retries so far.
    pub retries: Option<u32>,
    /// The workflow's first task.
    pub root_id: Option<String>,
    /// The task that sent this one.
    pub parent_id: Option<String>,
    /// The group or chord header it belongs to (`group_id`: Celeriac workers add it to
    /// `task-received`; Celery's events carry none, its result document does).
    pub group_id: Option<String>,
    /// The body of the chord it is a header member of (`chord_body_id`, Celeriac workers only).
    pub chord_body_id: Option<String>,
    /// The queue (`task-sent`: `queue`, else `routing_key`).
    pub queue: Option<String>,
    /// Earliest run time.
    pub eta: Option<DateTime<Utc>>,
    /// Expiry time.
    pub expires: Option<DateTime<Utc>>,
}

impl TaskEvent {
    /// A bare event of `kind` for `task_id`; the other fields empty.
    pub fn new(
        kind: TaskEventKind,
        task_id: impl Into<String>,
        hostname: impl Into<String>,
        timestamp: DateTime<Utc>,
    ) -> TaskEvent {
        TaskEvent {
            kind,
            task_id: task_id.into(),
            hostname: hostname.into(),
            timestamp,
            name: None,
            args: None,
            kwargs: None,
            result: None,
            exception: None,
            traceback: None,
            runtime: None,
            retries: None,
            root_id: None,
            parent_id: None,
            group_id: None,
            chord_body_id: None,
            queue: None,
            eta: None,
            expires: None,
        }
    }

    /// Reads a decoded Celery event object. `None` for events the history does not record
    /// (worker events, unknown types) and for task events without a `uuid`.
    pub fn from_fields(fields: &Map<String, Value>) -> Option<TaskEvent> {
        TaskEvent::from_parts(
            fields.get("type")?.as_str()?,
            fields.get("hostname").and_then(Value::as_str),
            fields.get("timestamp").and_then(Value::as_f64),
            fields,
        )
    }

    /// Reads a typed event from the receiver without turning it back into JSON first (the
    /// recorder's path, once per event).
    pub fn from_event(event: &crate::protocol::event::Event) -> Option<TaskEvent> {
        TaskEvent::from_parts(
            event.kind.as_str(),
            Some(&event.hostname),
            Some(event.timestamp),
            &event.fields,
        )
    }

    /// The common reading: the envelope parts, then the type-specific `fields`.
    fn from_parts(
        kind: &str,
        hostname: Option<&str>,
        timestamp: Option<f64>,
        fields: &Map<String, Value>,
    ) -> Option<TaskEvent> {
        let kind = TaskEventKind::from_type(kind)?;
        let task_id = text(fields, "uuid").filter(|task_id| !task_id.is_empty())?;
        let timestamp = timestamp
            .and_then(from_epoch_seconds)
            .unwrap_or_else(crate::clock::now);
        let mut event = TaskEvent::new(
            kind,
            task_id,
            hostname.unwrap_or_default().to_owned(),
            timestamp,
        );
        event.name = text(fields, "name");
        event.args = text(fields, "args");
        event.kwargs = text(fields, "kwargs");
        event.result = match fields.get("result") {
            None | Some(Value::Null) => None,
            Some(Value::String(repr)) => Some(repr.clone()),
            Some(other) => Some(other.to_string()),
        };
        event.exception = text(fields, "exception");
        event.traceback = text(fields, "traceback");
        event.runtime = fields.get("runtime").and_then(Value::as_f64);
        event.retries = fields
            .get("retries")
            .and_then(Value::as_u64)
            .and_then(|retries| u32::try_from(retries).ok());
        event.root_id = text(fields, "root_id");
        event.parent_id = text(fields, "parent_id");
        event.group_id = text(fields, "group_id");
        event.chord_body_id = text(fields, "chord_body_id");
        event.queue = text(fields, "queue").or_else(|| text(fields, "routing_key"));
        event.eta = text(fields, "eta").and_then(|eta| parse_iso(&eta));
        event.expires = text(fields, "expires").and_then(|expires| parse_iso(&expires));
        Some(event)
    }
}

/// A non-empty string field.
fn text(fields: &Map<String, Value>, name: &str) -> Option<String> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

/// Epoch seconds (a float, as events carry them) as a time; `None` when out of range.
pub(crate) fn from_epoch_seconds(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() {
        return None;
    }
    let micros = (seconds * 1_000_000.0).round();
    if micros.abs() > 9.0e15 {
        return None;
    }
    Utc.timestamp_micros(micros as i64).single()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_captured_received_event() {
        let captured = json!({"hostname": "w1@vm", "utcoffset": 0, "pid": 12579, "clock": 61,
            "uuid": "9e3b8caa-0000", "name": "proj.fail", "args": "()", "kwargs": "{}",
            "root_id": "9e3b8caa-0000", "parent_id": null, "retries": 0, "eta": null,
            "expires": null, "timestamp": 1795487562.72485, "type": "task-received"});
        let event = TaskEvent::from_fields(captured.as_object().unwrap()).unwrap();
        assert_eq!(event.kind, TaskEventKind::Received);
        assert_eq!(event.task_id, "9e3b8caa-0000");
        assert_eq!(event.hostname, "w1@vm");
        assert_eq!(event.name.as_deref(), Some("proj.fail"));
        assert_eq!(event.args.as_deref(), Some("()"));
        assert_eq!(event.retries, Some(0));
        assert_eq!(event.parent_id, None);
        assert_eq!(event.timestamp.timestamp_micros(), 1_795_487_562_724_850);
    }

    #[test]
    fn worker_events_and_events_without_uuid_are_skipped() {
        let heartbeat = json!({"hostname": "w1@vm", "type": "worker-heartbeat", "timestamp": 1.0});
        assert!(TaskEvent::from_fields(heartbeat.as_object().unwrap()).is_none());
        let no_uuid = json!({"hostname": "w1@vm", "type": "task-started", "timestamp": 1.0});
        assert!(TaskEvent::from_fields(no_uuid.as_object().unwrap()).is_none());
    }

    #[test]
    fn sent_events_name_their_queue() {
        let sent = json!({"type": "task-sent", "uuid": "t", "hostname": "gen1@h",
            "timestamp": 2.5, "queue": "hipri", "routing_key": "hipri", "name": "demo.add"});
        let event = TaskEvent::from_fields(sent.as_object().unwrap()).unwrap();
        assert_eq!(event.queue.as_deref(), Some("hipri"));
        assert_eq!(event.kind.state(), TaskState::Pending);
    }
}
