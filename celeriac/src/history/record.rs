//! [`TaskRecord`]: what the history knows about one task, and how each new observation (an
//! event, a result document) is merged into it.
//!
//! Events arrive late, twice, or out of order (task events are batched per worker, `task-sent`
//! comes from another host, two monitors may both record). The merge is therefore by state
//! precedence, as Celery's `events.state.Task.event` does, not by arrival:
//!
//! 1. Ranks, lowest first: PENDING, RETRY, REJECTED, RECEIVED, STARTED, REVOKED, FAILURE,
//!    SUCCESS (Celery's `states.PRECEDENCE`, reversed). A state of equal or higher rank replaces
//!    the current one; a lower one only contributes its fields (a late `received` never turns
//!    SUCCESS back into RECEIVED, but its name and arguments are kept).
//! 2. RETRY is the exception, because a retried task goes round again: RETRY replaces any state
//!    that is not ready if it happened at or after it, and any state replaces RETRY if it is
//!    ready or happened at or after it. (Celery lets RETRY always win, so a late `task-retried`
//!    can hide a success; we compare times instead.)
//! 3. Fields merge regardless of the state: present values replace absent ones, `retries` and
//!    the per-phase times keep the latest, `seen_at` keeps the earliest. The outcome (result,
//!    exception, traceback) and the worker come from the observation that set the state, or
//!    fill them while unknown.
//!
//! Invariant: applying an observation twice changes nothing, and the observations of one
//! attempt (no RETRY among them) give the same record in any order. Across retries the order
//! can matter when events of two attempts cross; events carry no attempt number to settle it.

use super::event::{TaskEvent, TaskEventKind};
use crate::protocol::time::parse_iso;
use crate::protocol::ResultMeta;
use crate::types::{python_args_repr, python_repr, TaskState};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// One task in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    /// The task id.
    pub task_id: String,
    /// Task name.
    pub name: Option<String>,
    /// Current state.
    pub state: TaskState,
    /// When the observation that set `state` happened.
    pub state_at: DateTime<Utc>,
    /// The earliest time the task was seen: the list's sort key.
    pub seen_at: DateTime<Utc>,
    /// Latest `task-sent`.
    pub sent_at: Option<DateTime<Utc>>,
    /// Latest `task-received`.
    pub received_at: Option<DateTime<Utc>>,
    /// Latest `task-started`.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached its ready state (or was rejected).
    pub done_at: Option<DateTime<Utc>>,
    /// Node name of the worker that holds or ran it.
    pub worker: Option<String>,
    /// The queue it was sent to.
    pub queue: Option<String>,
    /// Repr of the positional arguments (display and search).
    pub args_repr: Option<String>,
    /// Repr of the keyword arguments (display and search).
    pub kwargs_repr: Option<String>,
    /// The exact positional arguments, when known (result_extended, or sent by a retry).
    pub args: Option<Vec<Value>>,
    /// The exact keyword arguments, when known.
    pub kwargs: Option<Map<String, Value>>,
    /// The return value: a repr from events, JSON from the result backend.
    pub result: Option<String>,
    /// Repr of the exception.
    pub exception: Option<String>,
    /// Traceback text.
    pub traceback: Option<String>,
    /// Seconds it ran.
    pub runtime: Option<f64>,
    /// Retries so far.
    pub retries: Option<u32>,
    /// The workflow's first task.
    pub root_id: Option<String>,
    /// The task that sent it.
    pub parent_id: Option<String>,
    /// The group or chord header it belongs to.
    pub group_id: Option<String>,
    /// The body of its chord, when it is a chord header member.
    pub chord_body_id: Option<String>,
    /// Earliest run time.
    pub eta: Option<DateTime<Utc>>,
    /// Expiry time.
    pub expires: Option<DateTime<Utc>>,
    /// The task this one re-runs, when it was sent by [`super::retry_task`].
    pub retried_from: Option<String>,
    /// The row number (the sort order's tie-break); `None` until stored.
    pub(crate) row_id: Option<i64>,
}

/// A state's precedence; higher wins (Celery's `states.PRECEDENCE`, reversed).
fn rank(state: TaskState) -> u8 {
    match state {
        TaskState::Pending => 0,
        TaskState::Retry => 1,
        TaskState::Rejected => 2,
        TaskState::Received => 3,
        TaskState::Started => 4,
        TaskState::Revoked => 5,
        TaskState::Failure => 7,
        TaskState::Success => 8,
    }
}

/// Whether an observation of `new` at `new_at` replaces the current state (module docs, rules
/// 1 and 2).
pub(crate) fn supersedes(
    new: TaskState,
    new_at: DateTime<Utc>,
    current: TaskState,
    current_at: DateTime<Utc>,
) -> bool {
    if new == TaskState::Retry {
        !current.is_ready() && new_at >= current_at
    } else if current == TaskState::Retry {
        new.is_ready() || new_at >= current_at
    } else {
        rank(new) >= rank(current)
    }
}

impl TaskRecord {
    /// A record that knows only `task_id` in `state` at `at`.
    pub fn new(task_id: impl Into<String>, state: TaskState, at: DateTime<Utc>) -> TaskRecord {
        TaskRecord {
            task_id: task_id.into(),
            name: None,
            state,
            state_at: at,
            seen_at: at,
            sent_at: None,
            received_at: None,
            started_at: None,
            done_at: None,
            worker: None,
            queue: None,
            args_repr: None,
            kwargs_repr: None,
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
            eta: None,
            expires: None,
            retried_from: None,
            row_id: None,
        }
    }

    /// A record made from its first event.
    pub fn from_event(event: &TaskEvent) -> TaskRecord {
        let mut record = TaskRecord::new(&event.task_id, event.kind.state(), event.timestamp);
        record.apply_event(event);
        record
    }

    /// A record made from a result document read at `observed_at`.
    pub fn from_result(meta: &ResultMeta, observed_at: DateTime<Utc>) -> TaskRecord {
        let at = result_time(meta, observed_at);
        let mut record = TaskRecord::new(&meta.task_id, meta.status, at);
        record.apply_result(meta, observed_at);
        record
    }

    /// Merges one event (module docs).
    pub fn apply_event(&mut self, event: &TaskEvent) {
        let at = event.timestamp;
        let state = event.kind.state();
        let replaces = supersedes(state, at, self.state, self.state_at);
        if replaces {
            self.state = state;
            self.state_at = at;
        }
        self.seen_at = self.seen_at.min(at);
        let phase_time = match event.kind {
            TaskEventKind::Sent => Some(&mut self.sent_at),
            TaskEventKind::Received => Some(&mut self.received_at),
            TaskEventKind::Started => Some(&mut self.started_at),
            TaskEventKind::Succeeded
            | TaskEventKind::Failed
            | TaskEventKind::Revoked
            | TaskEventKind::Rejected => Some(&mut self.done_at),
            TaskEventKind::Retried => None,
        };
        if let Some(phase_time) = phase_time {
            *phase_time = Some(phase_time.map_or(at, |known| known.max(at)));
        }
        if event.kind != TaskEventKind::Sent
            && !event.hostname.is_empty()
            && (replaces || self.worker.is_none())
        {
            self.worker = Some(event.hostname.clone());
        }
        fill(&mut self.name, &event.name);
        fill(&mut self.args_repr, &event.args);
        fill(&mut self.kwargs_repr, &event.kwargs);
        // The outcome belongs to the state: a late retry must not relabel a failure.
        if replaces || self.exception.is_none() {
            fill(&mut self.exception, &event.exception);
            fill(&mut self.traceback, &event.traceback);
        }
        if replaces || self.result.is_none() {
            fill(&mut self.result, &event.result);
        }
        fill(&mut self.root_id, &event.root_id);
        fill(&mut self.parent_id, &event.parent_id);
        fill(&mut self.group_id, &event.group_id);
        fill(&mut self.chord_body_id, &event.chord_body_id);
        fill(&mut self.queue, &event.queue);
        fill(&mut self.eta, &event.eta);
        fill(&mut self.expires, &event.expires);
        fill(&mut self.runtime, &event.runtime);
        self.retries = latest_retries(self.retries, event.retries);
    }

    /// Merges a result document read at `observed_at` (STARTED and RETRY documents have no
    /// `date_done`, so they count as happening when read).
    pub fn apply_result(&mut self, meta: &ResultMeta, observed_at: DateTime<Utc>) {
        let at = result_time(meta, observed_at);
        let replaces = supersedes(meta.status, at, self.state, self.state_at);
        if replaces {
            self.state = meta.status;
            self.state_at = at;
        }
        self.seen_at = self.seen_at.min(at);
        if meta.status.is_ready() {
            self.done_at = Some(self.done_at.map_or(at, |known| known.max(at)));
        }
        match meta.exception() {
            Some(exception) if replaces || self.exception.is_none() => {
                self.exception = Some(exception.repr());
                fill(&mut self.traceback, &meta.traceback);
            }
            None if meta.status == TaskState::Success && (replaces || self.result.is_none()) => {
                self.result = Some(meta.result.to_string());
            }
            _ => {}
        }
        fill(&mut self.parent_id, &meta.parent_id);
        fill(&mut self.group_id, &meta.group_id);
        fill(&mut self.name, &meta.name);
        fill(&mut self.queue, &meta.queue);
        if let Some(worker) = &meta.worker {
            if replaces || self.worker.is_none() {
                self.worker = Some(worker.clone());
            }
        }
        self.retries = latest_retries(self.retries, meta.retries);
        if let Some(Value::Array(args)) = &meta.args {
            self.args = Some(args.clone());
            if self.args_repr.is_none() {
                self.args_repr = Some(python_args_repr(args));
            }
        }
        if let Some(Value::Object(kwargs)) = &meta.kwargs {
            self.kwargs = Some(kwargs.clone());
            if self.kwargs_repr.is_none() {
                self.kwargs_repr = Some(python_repr(&Value::Object(kwargs.clone())));
            }
        }
    }

    /// The time `field` names, if known.
    pub fn time_of(&self, field: super::TimeField) -> Option<DateTime<Utc>> {
        match field {
            super::TimeField::Seen => Some(self.seen_at),
            super::TimeField::Received => self.received_at,
            super::TimeField::Started => self.started_at,
            super::TimeField::Done => self.done_at,
        }
    }

    /// Sets the exact arguments (and their reprs when unknown), for a task we sent ourselves.
    pub fn set_arguments(&mut self, args: Vec<Value>, kwargs: Map<String, Value>) {
        if self.args_repr.is_none() {
            self.args_repr = Some(python_args_repr(&args));
        }
        if self.kwargs_repr.is_none() {
            self.kwargs_repr = Some(python_repr(&Value::Object(kwargs.clone())));
        }
        self.args = Some(args);
        self.kwargs = Some(kwargs);
    }
}

/// When a result document's state happened.
fn result_time(meta: &ResultMeta, observed_at: DateTime<Utc>) -> DateTime<Utc> {
    meta.date_done
        .as_deref()
        .and_then(parse_iso)
        .unwrap_or(observed_at)
}

/// Replaces `current` with `new` when `new` is present.
fn fill<T: Clone>(current: &mut Option<T>, new: &Option<T>) {
    if let Some(new) = new {
        *current = Some(new.clone());
    }
}

/// The larger retry count: retries only go up.
fn latest_retries(current: Option<u32>, new: Option<u32>) -> Option<u32> {
    match (current, new) {
        (Some(current), Some(new)) => Some(current.max(new)),
        (current, new) => current.or(new),
    }
}

#[cfg(test)]
mod tests;
