//! The vocabulary shared by every part of Celeriac: task ids, names, queues and states.
//!
//! This module does no IO and compiles to WASM, so the dashboard's browser code can use the same
//! types as the engine. States serialize to Celery's exact strings because they cross the wire
//! in result-backend documents and events.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A task id as Celery uses it: usually a UUID4 string, but Celery accepts any string a producer
/// passes as `task_id`, so it is kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub String);

impl TaskId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl From<&str> for TaskId {
    fn from(text: &str) -> Self {
        TaskId(text.to_owned())
    }
}

impl From<String> for TaskId {
    fn from(text: String) -> Self {
        TaskId(text)
    }
}

/// The states a task moves through, spelled as Celery spells them on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskState {
    /// Unknown to the result backend: never stored, the absence of a key means pending.
    Pending,
    /// Received by a worker (an event only; the Redis backend does not store it).
    Received,
    /// Started by a worker (stored only with `task_track_started`).
    Started,
    /// Finished with a return value.
    Success,
    /// Finished with an error.
    Failure,
    /// Failed and was published again to run later.
    Retry,
    /// Revoked, expired or terminated before it could finish.
    Revoked,
    /// Rejected by the worker (an event only).
    Rejected,
}

impl TaskState {
    /// Celery's "ready" states: the task will not change state again.
    pub fn is_ready(self) -> bool {
        matches!(
            self,
            TaskState::Success | TaskState::Failure | TaskState::Revoked
        )
    }

    /// Celery's spelling of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "PENDING",
            TaskState::Received => "RECEIVED",
            TaskState::Started => "STARTED",
            TaskState::Success => "SUCCESS",
            TaskState::Failure => "FAILURE",
            TaskState::Retry => "RETRY",
            TaskState::Revoked => "REVOKED",
            TaskState::Rejected => "REJECTED",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A Python exception as Celery serializes it in results: `{exc_type, exc_message, exc_module}`.
///
/// `exc_message` is the exception's `args` tuple as a JSON list, which is why it is a list and
/// not a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExceptionInfo {
    /// The exception class's qualified name, e.g. `ValueError`.
    pub exc_type: String,
    /// The exception's arguments.
    pub exc_message: Vec<serde_json::Value>,
    /// The module the class lives in; `builtins` for portable errors.
    pub exc_module: String,
}

impl ExceptionInfo {
    /// An exception with one message argument, the shape most Python exceptions have.
    pub fn new(exc_type: impl Into<String>, message: impl Into<String>) -> Self {
        ExceptionInfo {
            exc_type: exc_type.into(),
            exc_message: vec![serde_json::Value::String(message.into())],
            exc_module: "builtins".to_owned(),
        }
    }

    /// Celery's `TaskRevokedError(reason)`: `revoked`, `expired` or `terminated`.
    pub fn revoked(reason: &str) -> Self {
        ExceptionInfo::new("TaskRevokedError", reason).in_module("celery.exceptions")
    }

    /// Celery's `NotRegistered(name)`: a message for a task this worker does not have.
    pub fn not_registered(task_name: &str) -> Self {
        ExceptionInfo::new("NotRegistered", task_name).in_module("celery.exceptions")
    }

    /// The same exception declared in another module (e.g. `celery.exceptions`).
    pub fn in_module(mut self, module: impl Into<String>) -> Self {
        self.exc_module = module.into();
        self
    }

    /// The text Python's `repr()` would show, e.g. `ValueError('boom')`; used in events and logs.
    pub fn repr(&self) -> String {
        let arguments: Vec<String> = self.exc_message.iter().map(python_repr).collect();
        format!("{}({})", self.exc_type, arguments.join(", "))
    }

    /// The first argument as text, which is what people mean by "the message".
    pub fn message(&self) -> String {
        match self.exc_message.first() {
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}

impl fmt::Display for ExceptionInfo {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.exc_type, self.message())
    }
}

/// An approximation of Python's `repr()` for JSON values, used for `argsrepr`, `kwargsrepr` and
/// event fields so that logs and Flower look the same for Rust and Python producers.
pub fn python_repr(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => python_string_repr(text),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(key, item)| format!("{}: {}", python_string_repr(key), python_repr(item)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// Python's `repr()` of positional arguments, which are a tuple: `(2, 3)`, `(1,)`, `()`.
pub fn python_args_repr(args: &[serde_json::Value]) -> String {
    let parts: Vec<String> = args.iter().map(python_repr).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

fn python_string_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn states_serialize_as_celery_spells_them() {
        assert_eq!(
            serde_json::to_string(&TaskState::Success).unwrap(),
            "\"SUCCESS\""
        );
        let state: TaskState = serde_json::from_str("\"RETRY\"").unwrap();
        assert_eq!(state, TaskState::Retry);
    }

    #[test]
    fn repr_matches_python() {
        assert_eq!(python_args_repr(&[json!(2), json!(3)]), "(2, 3)");
        assert_eq!(python_args_repr(&[json!("a")]), "('a',)");
        assert_eq!(python_args_repr(&[]), "()");
        assert_eq!(
            python_repr(&json!({"x": 1, "y": null})),
            "{'x': 1, 'y': None}"
        );
        assert_eq!(
            ExceptionInfo::new("ValueError", "boom").repr(),
            "ValueError('boom')"
        );
    }
}
