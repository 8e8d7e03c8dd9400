//! What happens to a message between fetch and execution (Celery's `worker/strategy.py`).
//!
//! 1. Decode: a message that is not a valid Celery task message is dead-lettered with the reason
//!    and, when it has an id, a FAILURE result; the worker carries on.
//! 2. Look the task up: an unknown name is dead-lettered with a `NotRegistered` FAILURE, as
//!    Celery stores one (Celery then drops the message; we keep it).
//! 3. Expired: REVOKED with `TaskRevokedError('expired')`, acked, not run.
//! 4. ETA in the future: wait in memory, still recorded in `unacked`, without a prefetch slot.
//! 5. Rate limit: wait for a token of the task's bucket.
//! 6. Take a pool slot and hand over to the [`super::executor`].
//!
//! If the worker starts stopping during 4–6, the message is restored to its queue at once.

use super::consumer::truncate;
use super::slots::Slot;
use super::{executor, Shared};
use crate::broker::Delivery;
use crate::clock;
use crate::protocol::{Envelope, TaskMessage};
use crate::task::Task;
use crate::types::ExceptionInfo;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A decoded message this worker holds.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) delivery: Delivery,
    pub(crate) message: TaskMessage,
    pub(crate) priority: u8,
    pub(crate) redelivered: bool,
    /// When this worker decoded it, to tell whether it may have been restored meanwhile.
    pub(crate) fetched_at: std::time::Instant,
}

pub(crate) async fn handle(shared: Arc<Shared>, delivery: Delivery, prefetch_permit: Option<Slot>) {
    let limit = shared.config.worker_max_message_size;
    if limit > 0 && delivery.raw.len() as u64 > limit {
        let reason = format!(
            "the message is {} bytes, over worker_max_message_size ({limit} bytes); not decoded",
            delivery.raw.len()
        );
        return refuse_invalid(&shared, &delivery, reason).await;
    }
    let request = match decode(delivery) {
        Ok(request) => request,
        Err((reason, delivery)) => return refuse_invalid(&shared, &delivery, reason).await,
    };
    let request = Arc::new(request);
    let headers = &request.message.headers;
    let delivery = &request.delivery;
    tracing::info!(task_id = %headers.id, task_name = %headers.task, queue = %delivery.queue, "Task {}[{}] received", headers.task, headers.id);
    super::task_events::received(&shared, &request);
    shared.in_flight.describe(
        &request,
        headers
            .eta
            .filter(|eta| *eta > clock::now())
            .map(crate::protocol::time::format_iso),
    );
    if executor::discard_if_revoked(&shared, &request).await {
        return;
    }
    let Some(task) = shared.registry.get(&headers.task).cloned() else {
        let reason = format!("Received unregistered task of type {:?}", headers.task);
        let exception = ExceptionInfo {
            exc_type: "NotRegistered".into(),
            exc_message: vec![Value::String(headers.task.clone())],
            exc_module: "celery.exceptions".into(),
        };
        executor::dead_letter(
            &shared,
            delivery,
            &reason,
            Some(headers.id.as_str()),
            Some(&request),
            exception,
        )
        .await;
        return;
    };
    if executor::revoke_if_expired(&shared, &request).await {
        return;
    }
    let mut prefetch_permit = prefetch_permit;
    if let Some(eta) = headers.eta {
        let wait = (eta - clock::now()).to_std().unwrap_or(Duration::ZERO);
        if !wait.is_zero() {
            // Celery raises the prefetch limit by one per held ETA message; freeing our slot
            // has the same effect.
            drop(prefetch_permit.take());
            if !wait_unless_stopping(&shared, wait).await {
                restore(&shared, &request).await;
                return;
            }
        }
    }
    shared.in_flight.set_phase(
        &request.delivery.delivery_tag,
        super::state::Phase::Reserved,
        None,
        None,
    );
    if !wait_for_rate_limit(&shared, &task).await {
        restore(&shared, &request).await;
        return;
    }
    let mut stopping = shared.stopping.clone();
    let slot = tokio::select! {
        slot = shared.pool.acquire() => Some(slot),
        _ = stopping.wait_for(|stop| *stop) => None,
    };
    let Some(slot) = slot else {
        restore(&shared, &request).await;
        return;
    };
    executor::execute(&shared, &request, &task).await;
    drop(slot);
    drop(prefetch_permit);
}

/// Dead-letters a message that is not a task message we decode, with `reason`, naming it by
/// the id and name it seems to carry (an `InvalidTaskError` FAILURE when it has an id).
async fn refuse_invalid(shared: &Shared, delivery: &Delivery, reason: String) {
    let (task_id, _) = identify(&delivery.raw);
    let exception =
        ExceptionInfo::new("InvalidTaskError", reason.clone()).in_module("celery.exceptions");
    executor::dead_letter(
        shared,
        delivery,
        &reason,
        task_id.as_deref(),
        None,
        exception,
    )
    .await;
}

/// The request `delivery` holds, or why it is not one (with the delivery back, to dead-letter).
/// The delivery is moved in, not copied: its envelope may be megabytes.
fn decode(delivery: Delivery) -> Result<Request, (String, Delivery)> {
    match decode_parts(&delivery) {
        Ok((message, priority, redelivered)) => Ok(Request {
            delivery,
            priority,
            redelivered,
            message,
            fetched_at: std::time::Instant::now(),
        }),
        Err(reason) => Err((reason, delivery)),
    }
}

fn decode_parts(delivery: &Delivery) -> Result<(TaskMessage, u8, bool), String> {
    let envelope =
        Envelope::from_json(delivery.raw.as_bytes()).map_err(|error| error.to_string())?;
    let message = TaskMessage::decode(&envelope).map_err(|error| error.to_string())?;
    for (field, text) in [
        ("id", &message.headers.id.0),
        ("task", &message.headers.task),
    ] {
        // Every log line and event names the task by these; no real one is this long.
        if text.len() > MAX_NAME_CHARS * 4 {
            return Err(format!(
                "header {field} is {} bytes, longer than any task {field} ({} bytes at most)",
                text.len(),
                MAX_NAME_CHARS * 4
            ));
        }
    }
    let redelivered = envelope
        .properties
        .delivery_info
        .redelivered
        .unwrap_or(false)
        || envelope
            .headers
            .get("redelivered")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    Ok((message, envelope.priority(), redelivered))
}

/// Best effort at the id and name of a message that failed to decode, so its FAILURE result
/// can be stored and the log line names it.
fn identify(raw: &str) -> (Option<String>, Option<String>) {
    /// Only the two headers: the body and everything else are skipped, not built, so naming a
    /// huge message costs no copy of it.
    #[derive(serde::Deserialize)]
    struct Named {
        #[serde(default)]
        headers: Ids,
    }
    #[derive(serde::Deserialize, Default)]
    struct Ids {
        #[serde(default)]
        id: Option<Value>,
        #[serde(default)]
        task: Option<Value>,
    }
    let Ok(named) = serde_json::from_str::<Named>(raw) else {
        return (None, None);
    };
    fn text(value: &Option<Value>) -> Option<&str> {
        value
            .as_ref()
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
    }
    // An id longer than any real one is garbage: no FAILURE is stored under a cut one. A name
    // that long is cut; it still names the message in the log without filling it.
    let id = text(&named.headers.id)
        .filter(|id| id.len() <= MAX_NAME_CHARS * 4)
        .map(str::to_owned);
    let name = text(&named.headers.task).map(|name| truncate(name, MAX_NAME_CHARS).to_owned());
    (id, name)
}

/// The longest task id or task name a dead-letter log line and FAILURE carry; a message whose
/// id or name is over four times this is refused as invalid.
const MAX_NAME_CHARS: usize = 256;

async fn wait_unless_stopping(shared: &Shared, wait: Duration) -> bool {
    let mut stopping = shared.stopping.clone();
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = stopping.wait_for(|stop| *stop) => false,
    }
}

async fn wait_for_rate_limit(shared: &Shared, task: &Task) -> bool {
    loop {
        let wait = {
            let Ok(mut buckets) = shared.rate_limits.lock() else {
                return true;
            };
            let Some(bucket) = bucket_for(shared, &mut buckets, task) else {
                return true;
            };
            match bucket.try_acquire(std::time::Instant::now()) {
                Ok(()) => return true,
                Err(wait) => wait,
            }
        };
        if !wait_unless_stopping(shared, wait).await {
            return false;
        }
    }
}

fn bucket_for<'a>(
    shared: &Shared,
    buckets: &'a mut std::collections::HashMap<String, Option<super::rate_limit::TokenBucket>>,
    task: &Task,
) -> Option<&'a mut super::rate_limit::TokenBucket> {
    if !buckets.contains_key(task.name()) {
        let text = task
            .options()
            .rate_limit
            .clone()
            .or_else(|| shared.config.task_default_rate_limit.clone())?;
        let rate = match super::rate_limit::RateLimit::parse(&text) {
            Ok(Some(rate)) => rate,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(task_name = task.name(), %error, "ignoring invalid rate limit");
                return None;
            }
        };
        buckets.insert(
            task.name().to_owned(),
            Some(super::rate_limit::TokenBucket::new(
                rate,
                std::time::Instant::now(),
            )),
        );
    }
    buckets.get_mut(task.name()).and_then(Option::as_mut)
}

/// Puts a message we will not run back at the front of its queue (warm shutdown).
pub(crate) async fn restore(shared: &Shared, request: &Request) {
    match shared.broker.requeue(&request.delivery, true).await {
        Ok(_) => {
            shared.counters.restored.fetch_add(1, Ordering::Relaxed);
            shared.in_flight.remove(&request.delivery.delivery_tag);
            tracing::info!(task_id = %request.message.headers.id, "restored unstarted task to its queue");
        }
        Err(error) => tracing::error!(
            task_id = %request.message.headers.id,
            %error,
            message = %truncate(&request.delivery.raw, 120),
            "could not restore task; it stays in unacked for the visibility sweep"
        ),
    }
}
