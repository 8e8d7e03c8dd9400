//! [`EventKind`]: the `type` of a Celery event, typed, so receivers match on an enum and not on
//! strings. Unknown types (Celery lets applications send their own) are kept as
//! [`EventKind::Other`] with the exact text.

use crate::types::TaskState;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The `type` field of an event (wire doc §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `task-sent`: a producer published the task (only with `task_send_sent_event`).
    TaskSent,
    /// `task-received`: a worker took the message.
    TaskReceived,
    /// `task-started`: the task body began.
    TaskStarted,
    /// `task-succeeded`: the body returned; carries `result` (a repr) and `runtime`.
    TaskSucceeded,
    /// `task-failed`: the body raised; carries `exception` and `traceback`.
    TaskFailed,
    /// `task-retried`: the body asked to run again later.
    TaskRetried,
    /// `task-revoked`: revoked, expired or terminated.
    TaskRevoked,
    /// `task-rejected`: the worker rejected the message (`requeue` says whether it went back).
    TaskRejected,
    /// `task-cancelled`: Celery 5 cancels long-running tasks on connection loss.
    TaskCancelled,
    /// `worker-online`: a worker started.
    WorkerOnline,
    /// `worker-heartbeat`: a worker is alive (every `freq` seconds).
    WorkerHeartbeat,
    /// `worker-offline`: a worker shut down cleanly.
    WorkerOffline,
    /// Any other type, spelled as it came.
    Other(String),
}

/// Which group an event belongs to: the part of its type before the first `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventGroup {
    /// `task-*`.
    Task,
    /// `worker-*`.
    Worker,
    /// Anything else.
    Other,
}

impl EventKind {
    /// Reads Celery's spelling; never fails (unknown types become [`EventKind::Other`]).
    pub fn parse(text: &str) -> EventKind {
        match text {
            "task-sent" => EventKind::TaskSent,
            "task-received" => EventKind::TaskReceived,
            "task-started" => EventKind::TaskStarted,
            "task-succeeded" => EventKind::TaskSucceeded,
            "task-failed" => EventKind::TaskFailed,
            "task-retried" => EventKind::TaskRetried,
            "task-revoked" => EventKind::TaskRevoked,
            "task-rejected" => EventKind::TaskRejected,
            "task-cancelled" => EventKind::TaskCancelled,
            "worker-online" => EventKind::WorkerOnline,
            "worker-heartbeat" => EventKind::WorkerHeartbeat,
            "worker-offline" => EventKind::WorkerOffline,
            other => EventKind::Other(other.to_owned()),
        }
    }

    /// Celery's spelling, e.g. `task-succeeded`.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::TaskSent => "task-sent",
            EventKind::TaskReceived => "task-received",
            EventKind::TaskStarted => "task-started",
            EventKind::TaskSucceeded => "task-succeeded",
            EventKind::TaskFailed => "task-failed",
            EventKind::TaskRetried => "task-retried",
            EventKind::TaskRevoked => "task-revoked",
            EventKind::TaskRejected => "task-rejected",
            EventKind::TaskCancelled => "task-cancelled",
            EventKind::WorkerOnline => "worker-online",
            EventKind::WorkerHeartbeat => "worker-heartbeat",
            EventKind::WorkerOffline => "worker-offline",
            EventKind::Other(text) => text,
        }
    }

    /// The group, as Celery's `State` dispatches on it.
    pub fn group(&self) -> EventGroup {
        let text = self.as_str();
        if text.starts_with("task-") {
            EventGroup::Task
        } else if text.starts_with("worker-") {
            EventGroup::Worker
        } else {
            EventGroup::Other
        }
    }

    /// The task state an event moves a task to, as Celery's `TASK_EVENT_TO_STATE` maps it
    /// (`task-sent` → PENDING). `None` for worker events and task events with no state of their
    /// own (`task-cancelled`, custom types).
    pub fn task_state(&self) -> Option<TaskState> {
        Some(match self {
            EventKind::TaskSent => TaskState::Pending,
            EventKind::TaskReceived => TaskState::Received,
            EventKind::TaskStarted => TaskState::Started,
            EventKind::TaskSucceeded => TaskState::Success,
            EventKind::TaskFailed => TaskState::Failure,
            EventKind::TaskRetried => TaskState::Retry,
            EventKind::TaskRevoked => TaskState::Revoked,
            EventKind::TaskRejected => TaskState::Rejected,
            _ => return None,
        })
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(EventKind::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_celerys_spelling() {
        for text in [
            "task-sent",
            "task-received",
            "task-started",
            "task-succeeded",
            "task-failed",
            "task-retried",
            "task-revoked",
            "task-rejected",
            "task-cancelled",
            "worker-online",
            "worker-heartbeat",
            "worker-offline",
            "custom-thing",
        ] {
            assert_eq!(EventKind::parse(text).as_str(), text);
        }
        assert_eq!(EventKind::parse("task-custom").group(), EventGroup::Task);
        assert_eq!(
            EventKind::parse("task-custom").task_state(),
            None,
            "custom task events carry no state of ours"
        );
        assert_eq!(EventKind::WorkerOffline.group(), EventGroup::Worker);
    }
}
