//! `PeriodicTask`: one beat entry, with django-celery-beat's `PeriodicTask` fields, their
//! validation, and when the entry is next due.
//!
//! The fields and their limits follow django-celery-beat's model (`name` unique, at most 200
//! characters; `args` a JSON array; `kwargs` and `headers` JSON objects; `priority` 0-255;
//! `expires` or `expire_seconds`, not both; clocked schedules must be `one_off`). Uniqueness of
//! `name` is the store's job. The JSON fields are kept as [`Value`]s so that a bad row or form
//! can be loaded and then reported field by field by [`PeriodicTask::problems`].
//!
//! When an entry is due follows django-celery-beat's `ModelEntry`:
//! - disabled, expired (`expires` reached) and spent one-off entries are never due;
//! - otherwise the next run follows `last_run_at` ([`Schedule::next_after`]): an interval runs
//!   `every` after the last run (beat writes the time it *sent* the task as `last_run_at`, so
//!   intervals do not catch up on missed runs), a crontab at its next time after the last run;
//! - an entry that never ran is anchored at `start_time` if set (an interval or clocked entry
//!   runs at `start_time`; a crontab or solar event at its first time at or after
//!   `start_time`, where django-celery-beat would send at `start_time` itself because it
//!   backdates `last_run_at` by 30 years), else at `date_changed` (or now);
//! - nothing runs before `start_time`.

use super::schedule::Schedule;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest `name`, `task`, `queue`, `exchange` and `routing_key` (django-celery-beat's
/// `max_length=200`).
pub const MAX_NAME_LENGTH: usize = 200;

/// The highest `priority` django-celery-beat accepts.
pub const MAX_PRIORITY: u32 = 255;

/// One beat entry: a task sent on a schedule, with the options it is sent with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodicTask {
    /// The entry's unique name; also sent as the `periodic_task_name` header.
    pub name: String,
    /// The task name to send (`proj.tasks.add`).
    pub task: String,
    /// Positional arguments, a JSON array.
    #[serde(default = "empty_array")]
    pub args: Value,
    /// Keyword arguments, a JSON object.
    #[serde(default = "empty_object")]
    pub kwargs: Value,
    /// Queue override; `None` routes as usual.
    #[serde(default)]
    pub queue: Option<String>,
    /// Exchange override.
    #[serde(default)]
    pub exchange: Option<String>,
    /// Routing key override.
    #[serde(default)]
    pub routing_key: Option<String>,
    /// Extra message headers, a JSON object.
    #[serde(default = "empty_object")]
    pub headers: Value,
    /// Message priority, 0-255 (the Redis transport uses 0-9).
    #[serde(default)]
    pub priority: Option<u32>,
    /// An absolute expiry: the entry stops running, and messages expire, at this instant.
    #[serde(default)]
    pub expires: Option<DateTime<Utc>>,
    /// A relative expiry for each sent message, in seconds.
    #[serde(default)]
    pub expire_seconds: Option<u64>,
    /// Run once, then disable.
    #[serde(default)]
    pub one_off: bool,
    /// Not before this instant.
    #[serde(default)]
    pub start_time: Option<DateTime<Utc>>,
    /// Disabled entries are kept but never sent.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// When beat last sent this task (written by beat).
    #[serde(default)]
    pub last_run_at: Option<DateTime<Utc>>,
    /// How many times beat sent it (written by beat).
    #[serde(default)]
    pub total_run_count: u64,
    /// When the entry was last edited (django's `auto_now`; the store sets it).
    #[serde(default)]
    pub date_changed: Option<DateTime<Utc>>,
    /// Free text for people.
    #[serde(default)]
    pub description: String,
    /// When it runs.
    pub schedule: Schedule,
}

fn empty_array() -> Value {
    Value::Array(Vec::new())
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

fn enabled_by_default() -> bool {
    true
}

/// One invalid field of a [`PeriodicTask`]; the text starts with the field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodicTaskError {
    /// A required text is empty or only whitespace (or an optional one is set but blank).
    #[error("{field}: must not be blank")]
    Blank {
        /// The field's name.
        field: &'static str,
    },
    /// A text is longer than the column allows.
    #[error("{field}: {length} characters is more than {limit}")]
    TooLong {
        /// The field's name.
        field: &'static str,
        /// Its length in characters.
        length: usize,
        /// The most allowed.
        limit: usize,
    },
    /// A JSON field has the wrong type.
    #[error("{field}: must be a JSON {expected}, not {found}")]
    WrongJsonType {
        /// The field's name.
        field: &'static str,
        /// "array" or "object".
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// `priority` is above 255.
    #[error("priority: {value} is out of range 0-{MAX_PRIORITY}")]
    PriorityOutOfRange {
        /// The value given.
        value: u32,
    },
    /// Both `expires` and `expire_seconds` are set.
    #[error("expire_seconds: set either expires or expire_seconds, not both")]
    ExpiresConflict,
    /// A clocked schedule without `one_off`.
    #[error("one_off: a clocked schedule runs once, so one_off must be set")]
    ClockedNotOneOff,
}

impl PeriodicTaskError {
    /// The name of the field at fault, for forms.
    pub fn field(&self) -> &'static str {
        match self {
            PeriodicTaskError::Blank { field }
            | PeriodicTaskError::TooLong { field, .. }
            | PeriodicTaskError::WrongJsonType { field, .. } => field,
            PeriodicTaskError::PriorityOutOfRange { .. } => "priority",
            PeriodicTaskError::ExpiresConflict => "expire_seconds",
            PeriodicTaskError::ClockedNotOneOff => "one_off",
        }
    }
}

impl PeriodicTask {
    /// An enabled entry with no arguments and no options.
    pub fn new(name: impl Into<String>, task: impl Into<String>, schedule: Schedule) -> Self {
        PeriodicTask {
            name: name.into(),
            task: task.into(),
            args: empty_array(),
            kwargs: empty_object(),
            queue: None,
            exchange: None,
            routing_key: None,
            headers: empty_object(),
            priority: None,
            expires: None,
            expire_seconds: None,
            one_off: matches!(schedule, Schedule::Clocked { .. }),
            start_time: None,
            enabled: true,
            last_run_at: None,
            total_run_count: 0,
            date_changed: None,
            description: String::new(),
            schedule,
        }
    }

    /// The first invalid field, if any.
    pub fn validate(&self) -> Result<(), PeriodicTaskError> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Every invalid field, in field order (for forms that show them all at once).
    pub fn problems(&self) -> Vec<PeriodicTaskError> {
        let mut problems = Vec::new();
        check_name(&mut problems, "name", Some(&self.name));
        check_name(&mut problems, "task", Some(&self.task));
        check_json(&mut problems, "args", &self.args, "array");
        check_json(&mut problems, "kwargs", &self.kwargs, "object");
        check_name(&mut problems, "queue", self.queue.as_deref());
        check_name(&mut problems, "exchange", self.exchange.as_deref());
        check_name(&mut problems, "routing_key", self.routing_key.as_deref());
        check_json(&mut problems, "headers", &self.headers, "object");
        if let Some(value) = self.priority.filter(|priority| *priority > MAX_PRIORITY) {
            problems.push(PeriodicTaskError::PriorityOutOfRange { value });
        }
        if self.expires.is_some() && self.expire_seconds.is_some() {
            problems.push(PeriodicTaskError::ExpiresConflict);
        }
        if matches!(self.schedule, Schedule::Clocked { .. }) && !self.one_off {
            problems.push(PeriodicTaskError::ClockedNotOneOff);
        }
        problems
    }

    /// When the entry is next due (possibly already past), or `None` if it will not run again:
    /// see the module docs for the rules. `now` stands in for `date_changed` on an entry that
    /// never ran and has no `start_time`.
    pub fn due_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let spent = self.one_off && self.total_run_count > 0;
        if !self.enabled || spent || self.expires.is_some_and(|expires| now >= expires) {
            return None;
        }
        let due = match (self.last_run_at, self.start_time) {
            (Some(last_run_at), _) => self.schedule.next_after(last_run_at)?,
            (None, Some(start_time)) => match &self.schedule {
                Schedule::Interval(_) => start_time,
                Schedule::Clocked { at } => *at,
                schedule @ (Schedule::Crontab(_) | Schedule::Solar(_)) => schedule
                    .next_after(start_time.checked_sub_signed(TimeDelta::nanoseconds(1))?)?,
            },
            (None, None) => match &self.schedule {
                Schedule::Clocked { at } => *at,
                schedule => schedule.next_after(self.date_changed.unwrap_or(now))?,
            },
        };
        let due = self
            .start_time
            .map_or(due, |start_time| due.max(start_time));
        match self.expires {
            Some(expires) if due >= expires => None,
            _ => Some(due),
        }
    }

    /// Whether beat should send the task at `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.due_at(now).is_some_and(|due| due <= now)
    }
}

/// `None` is fine (an unset option); set texts must be non-blank and at most 200 characters.
fn check_name(problems: &mut Vec<PeriodicTaskError>, field: &'static str, text: Option<&str>) {
    let Some(text) = text else {
        return;
    };
    let length = text.chars().count();
    if text.trim().is_empty() {
        problems.push(PeriodicTaskError::Blank { field });
    } else if length > MAX_NAME_LENGTH {
        problems.push(PeriodicTaskError::TooLong {
            field,
            length,
            limit: MAX_NAME_LENGTH,
        });
    }
}

fn check_json(
    problems: &mut Vec<PeriodicTaskError>,
    field: &'static str,
    value: &Value,
    expected: &'static str,
) {
    let found = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if found != expected {
        problems.push(PeriodicTaskError::WrongJsonType {
            field,
            expected,
            found,
        });
    }
}

#[cfg(test)]
mod tests;
