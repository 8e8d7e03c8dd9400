//! How a periodic task becomes a Celery message: the entry's task, arguments and options, with
//! the `periodic_task_name` header Celery's beat sends, so Python workers run it as they run a
//! task from `celery beat`. Shared by the scheduler (one message per slot) and `run-now`.

use super::PeriodicTask;
use crate::producer::SendOptions;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

/// The header Celery's beat puts on every message it sends.
pub const PERIODIC_TASK_NAME_HEADER: &str = "periodic_task_name";

/// Our header naming the slot (ISO 8601) a message was sent for, so a run can be traced back
/// to its schedule time and duplicates are visible; Python workers ignore it. `run-now`
/// messages have none.
pub const BEAT_SLOT_HEADER: &str = "celeriac_beat_slot";

/// The send options for `task`: headers (the entry's own, `periodic_task_name`, and the slot
/// when there is one), queue (`queue`, else `routing_key`, else routing), priority, and
/// expiry (`expires`, else `expire_seconds` after the slot or `now`).
pub fn send_options(
    task: &PeriodicTask,
    slot: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> SendOptions {
    let mut options = SendOptions::new();
    if let Value::Object(headers) = &task.headers {
        for (name, value) in headers {
            options = options.header(name.clone(), value.clone());
        }
    }
    options = options.header(PERIODIC_TASK_NAME_HEADER, Value::String(task.name.clone()));
    if let Some(slot) = slot {
        options = options.header(
            BEAT_SLOT_HEADER,
            Value::String(slot.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
    }
    if let Some(queue) = task.queue.as_ref().or(task.routing_key.as_ref()) {
        options = options.queue(queue.clone());
    }
    if let Some(priority) = task.priority {
        options = options.priority(u8::try_from(priority).unwrap_or(u8::MAX));
    }
    let expires = match (task.expires, task.expire_seconds) {
        (Some(expires), _) => Some(expires),
        (None, Some(seconds)) => {
            let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
            slot.unwrap_or(now)
                .checked_add_signed(TimeDelta::try_seconds(seconds).unwrap_or(TimeDelta::MAX))
        }
        (None, None) => None,
    };
    if let Some(expires) = expires {
        options = options.expires(expires);
    }
    options
}

/// The positional and keyword arguments (validated entries always have an array and an
/// object; anything else sends none).
pub fn arguments(task: &PeriodicTask) -> (Vec<Value>, Map<String, Value>) {
    let args = match &task.args {
        Value::Array(args) => args.clone(),
        _ => Vec::new(),
    };
    let kwargs = match &task.kwargs {
        Value::Object(kwargs) => kwargs.clone(),
        _ => Map::new(),
    };
    (args, kwargs)
}
