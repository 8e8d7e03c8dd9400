//! Commands that act on tasks: `revoke` (optionally terminating), `terminate`, `rate_limit`
//! and `time_limit`.

use super::super::rate_limit::{RateLimit, TokenBucket};
use super::super::{revoke, Shared};
use super::{task_ids, text_argument};
use crate::protocol::control::{error_reply, ok_reply};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// `revoke` (and `terminate`, which always terminates). `task_id` may be one id or a list,
/// `terminate` a bool or Flower's `1`; the signal is accepted and ignored, since our tasks are
/// tokio tasks, not processes: terminating stops the task at its next await point.
pub(super) async fn revoke(
    shared: &Shared,
    arguments: &Map<String, Value>,
    always_terminate: bool,
) -> Value {
    let ids = task_ids(arguments, "task_id");
    revoke::revoke(shared, &ids).await;
    let terminate = always_terminate
        || match arguments.get("terminate") {
            Some(Value::Bool(flag)) => *flag,
            Some(Value::Number(flag)) => flag.as_i64().is_some_and(|flag| flag != 0),
            _ => false,
        };
    if terminate {
        let stopped: Vec<&str> = ids
            .iter()
            .filter(|id| shared.in_flight.terminate(id))
            .map(String::as_str)
            .collect();
        if stopped.is_empty() {
            ok_reply("terminate: tasks unknown")
        } else {
            ok_reply(format!("terminate: {}", stopped.join(", ")))
        }
    } else {
        let listed: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
        ok_reply(format!(
            "tasks {{{}}} flagged as revoked",
            listed.join(", ")
        ))
    }
}

pub(super) fn rate_limit(shared: &Shared, arguments: &Map<String, Value>) -> Value {
    let task_name = text_argument(arguments, "task_name").unwrap_or_default();
    if shared.registry.get(&task_name).is_none() {
        return error_reply(format!("unknown task {task_name:?}"));
    }
    let text = text_argument(arguments, "rate_limit").unwrap_or_default();
    match RateLimit::parse(&text) {
        Ok(rate) => {
            let bucket = rate.map(|rate| TokenBucket::new(rate, Instant::now()));
            if let Ok(mut buckets) = shared.rate_limits.lock() {
                buckets.insert(task_name, bucket);
            }
            ok_reply("new rate limit set successfully")
        }
        Err(error) => error_reply(format!("invalid rate limit string: {error}")),
    }
}

pub(super) fn time_limit(shared: &Shared, arguments: &Map<String, Value>) -> Value {
    let task_name = text_argument(arguments, "task_name").unwrap_or_default();
    if shared.registry.get(&task_name).is_none() {
        return error_reply(format!("unknown task {task_name:?}"));
    }
    let limit = |key: &str| {
        arguments
            .get(key)
            .and_then(|value| match value {
                Value::String(text) => text.trim().parse::<f64>().ok(),
                other => other.as_f64(),
            })
            .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
            .map(Duration::from_secs_f64)
    };
    if let Ok(mut limits) = shared.time_limits.lock() {
        limits.insert(task_name, (limit("hard"), limit("soft")));
    }
    ok_reply("time limits set successfully")
}
