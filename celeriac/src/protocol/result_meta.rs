//! The result-backend document stored at `celery-task-meta-<id>`.
//!
//! Key order follows Celery (`status, result, traceback, children, date_done, [group_id],
//! [parent_id], [extended fields], task_id`) so documents look the same whichever side wrote
//! them. `date_done` is set only for ready states; `result` holds the return value, or the
//! serialized exception (`{exc_type, exc_message, exc_module}`) for FAILURE, RETRY and REVOKED.

use crate::types::{ExceptionInfo, TaskState};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A task's state as stored by the result backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultMeta {
    /// The task's state.
    pub status: TaskState,
    /// Return value, or the serialized exception.
    #[serde(default)]
    pub result: Value,
    /// Traceback text for failures and retries.
    #[serde(default)]
    pub traceback: Option<String>,
    /// Results of subtasks this task launched.
    #[serde(default)]
    pub children: Vec<Value>,
    /// ISO-8601 UTC time the task became ready; `null` for STARTED/RETRY.
    #[serde(default)]
    pub date_done: Option<String>,
    /// Group id, only when the task belongs to a group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Parent task id, only when the task has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Task name (`result_extended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Positional arguments (`result_extended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// Keyword arguments (`result_extended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kwargs: Option<Value>,
    /// Node name of the worker (`result_extended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Retries so far (`result_extended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Delivery routing key (`result_extended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The task id.
    pub task_id: String,
    /// The message's `argsrepr` (`result_extended`): what django-celery-results stores as
    /// `task_args`, so arguments a producer chose to hide stay hidden. Not in Redis's document.
    #[serde(skip)]
    pub args_repr: Option<String>,
    /// The message's `kwargsrepr` (`result_extended`), as `args_repr`.
    #[serde(skip)]
    pub kwargs_repr: Option<String>,
    /// The `periodic_task_name` header beat sent (`result_extended`); django-celery-results
    /// keeps it in a column. Not in Redis's document.
    #[serde(skip)]
    pub periodic_task_name: Option<String>,
}

impl ResultMeta {
    /// A document in `status` with `result`; other fields empty.
    pub fn new(task_id: impl Into<String>, status: TaskState, result: Value) -> Self {
        ResultMeta {
            status,
            result,
            traceback: None,
            children: Vec::new(),
            date_done: None,
            group_id: None,
            parent_id: None,
            name: None,
            args: None,
            kwargs: None,
            worker: None,
            retries: None,
            queue: None,
            task_id: task_id.into(),
            args_repr: None,
            kwargs_repr: None,
            periodic_task_name: None,
        }
    }

    /// A FAILURE document for a task this worker did not run itself (a chain step that will
    /// never run, a chord body failed by its header, a message that does not decode): the
    /// exception, its traceback, done at `date_done`; no request fields to fill.
    pub fn failure(
        task_id: impl Into<String>,
        exception: &ExceptionInfo,
        traceback: String,
        date_done: String,
    ) -> Self {
        let result = serde_json::to_value(exception).unwrap_or(Value::Null);
        let mut meta = ResultMeta::new(task_id, TaskState::Failure, result);
        meta.traceback = Some(traceback);
        meta.date_done = Some(date_done);
        meta
    }

    /// The exception stored for FAILURE, RETRY and REVOKED, when `result` has Celery's shape.
    pub fn exception(&self) -> Option<ExceptionInfo> {
        match self.status {
            TaskState::Failure | TaskState::Retry | TaskState::Revoked => {
                serde_json::from_value(self.result.clone()).ok()
            }
            _ => None,
        }
    }

    /// Parses a stored document.
    pub fn from_json(raw: &[u8]) -> Result<ResultMeta, serde_json::Error> {
        serde_json::from_slice(raw)
    }

    /// Serializes the document for storage.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a result document is plain JSON and always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_writes_celery_documents() {
        let captured = r#"{"status": "SUCCESS", "result": 2, "traceback": null, "children": [], "date_done": "2026-11-24T02:37:29.743898+00:00", "group_id": "362f15ff-2ada-4a5a-9e26-bbb847529f8b", "name": "proj.add", "args": [1, 1], "kwargs": {}, "worker": "w4@vm", "retries": 0, "queue": "celery", "task_id": "6c9271d7-c418-4d78-8da1-7f16f2dd403b"}"#;
        let meta = ResultMeta::from_json(captured.as_bytes()).unwrap();
        assert_eq!(meta.status, TaskState::Success);
        let written: Value = serde_json::from_str(&meta.to_json()).unwrap();
        let original: Value = serde_json::from_str(captured).unwrap();
        assert_eq!(written, original);
        assert_eq!(
            meta.to_json().find("\"status\"").unwrap(),
            1,
            "status comes first as in Celery"
        );
    }

    #[test]
    fn failure_exposes_the_exception() {
        let meta = ResultMeta::new(
            "x",
            TaskState::Failure,
            json!({"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}),
        );
        assert_eq!(meta.exception().unwrap().repr(), "ValueError('boom')");
    }
}
