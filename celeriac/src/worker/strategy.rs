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

use super::request::Request;
use super::settle::{self, Held};
use super::slots::Slot;
use super::{executor, Shared};
use crate::broker::Delivery;
use crate::clock;
use crate::task::Task;
use crate::types::ExceptionInfo;
use std::sync::Arc;
use std::time::Duration;

pub(crate) async fn handle(shared: Arc<Shared>, delivery: Delivery, prefetch_permit: Option<Slot>) {
    let held = Held::fetched();
    let limit = shared.config.worker_max_message_size;
    if limit > 0 && delivery.raw.len() as u64 > limit {
        let reason = format!(
            "the message is {} bytes, over worker_max_message_size ({limit} bytes); not decoded",
            delivery.raw.len()
        );
        return settle::refuse_invalid(&shared, held, &delivery, reason).await;
    }
    let request = match Request::decode(delivery) {
        Ok(request) => request,
        Err((reason, delivery)) => {
            return settle::refuse_invalid(&shared, held, &delivery, reason).await
        }
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
    let Some(held) = settle::discard_if_revoked(&shared, &request, held).await else {
        return;
    };
    let Some(task) = shared.registry.get(&headers.task).cloned() else {
        let reason = format!("Received unregistered task of type {:?}", headers.task);
        let exception = ExceptionInfo::not_registered(&headers.task);
        settle::dead_letter(
            &shared,
            held,
            delivery,
            &reason,
            Some(headers.id.as_str()),
            Some(&request),
            exception,
        )
        .await;
        return;
    };
    let Some(held) = settle::revoke_if_expired(&shared, &request, held).await else {
        return;
    };
    let mut prefetch_permit = prefetch_permit;
    if let Some(eta) = headers.eta {
        let wait = (eta - clock::now()).to_std().unwrap_or(Duration::ZERO);
        if !wait.is_zero() {
            // Celery raises the prefetch limit by one per held ETA message; freeing our slot
            // has the same effect.
            drop(prefetch_permit.take());
            if !wait_unless_stopping(&shared, wait).await {
                settle::restore(&shared, held, &request).await;
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
        settle::restore(&shared, held, &request).await;
        return;
    }
    let mut stopping = shared.stopping.clone();
    let slot = tokio::select! {
        slot = shared.pool.acquire() => Some(slot),
        _ = stopping.wait_for(|stop| *stop) => None,
    };
    let Some(slot) = slot else {
        settle::restore(&shared, held, &request).await;
        return;
    };
    executor::execute(&shared, &request, &task, held).await;
    drop(slot);
    drop(prefetch_permit);
}

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
