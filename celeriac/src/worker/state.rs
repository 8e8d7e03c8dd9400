//! [`InFlight`]: the deliveries this worker holds, by delivery tag, with what remote control
//! reports about them (Celery's `active`, `reserved`, `scheduled`, `query_task`).
//!
//! The visibility loop refreshes their delivery time so no sweep restores them while we hold
//! them, and shutdown restores whatever is still here. An entry is added when a message is
//! fetched and removed once it has been acked, requeued or dead-lettered. A running entry holds
//! the `Notify` that `revoke --terminate` uses to stop it.

use super::request::Request;
use crate::broker::Delivery;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where a held message is in its life on this worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Fetched, waiting for a pool slot or a rate-limit token.
    Reserved,
    /// Waiting for its eta.
    Scheduled,
    /// Running.
    Active,
}

#[derive(Debug)]
struct Tracked {
    delivery: Delivery,
    phase: Phase,
    /// The decoded request, shared with the strategy (no copy on the hot path); remote control
    /// builds Celery's request info from it only when asked.
    request: Option<Arc<Request>>,
    eta: Option<String>,
    time_start: Option<f64>,
    terminate: Option<Arc<tokio::sync::Notify>>,
}

/// A held request as remote control reports it.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) request: Arc<Request>,
    pub(crate) phase: Phase,
    pub(crate) eta: Option<String>,
    pub(crate) time_start: Option<f64>,
}

/// The deliveries this worker holds.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    deliveries: Mutex<HashMap<String, Tracked>>,
}

impl InFlight {
    pub(crate) fn insert(&self, delivery: &Delivery) {
        if let Ok(mut deliveries) = self.deliveries.lock() {
            let tracked = Tracked {
                delivery: delivery.clone(),
                phase: Phase::Reserved,
                request: None,
                eta: None,
                time_start: None,
                terminate: None,
            };
            deliveries.insert(delivery.delivery_tag.clone(), tracked);
        }
    }

    /// Records the decoded request, and its eta when it will wait for one.
    pub(crate) fn describe(&self, request: &Arc<Request>, eta: Option<String>) {
        if let Ok(mut deliveries) = self.deliveries.lock() {
            if let Some(tracked) = deliveries.get_mut(&request.delivery.delivery_tag) {
                tracked.phase = if eta.is_some() {
                    Phase::Scheduled
                } else {
                    Phase::Reserved
                };
                tracked.request = Some(request.clone());
                tracked.eta = eta;
            }
        }
    }

    /// Moves a message to a phase, with the terminate signal when it starts running.
    pub(crate) fn set_phase(
        &self,
        delivery_tag: &str,
        phase: Phase,
        terminate: Option<Arc<tokio::sync::Notify>>,
        time_start: Option<f64>,
    ) {
        if let Ok(mut deliveries) = self.deliveries.lock() {
            if let Some(tracked) = deliveries.get_mut(delivery_tag) {
                tracked.phase = phase;
                tracked.terminate = terminate;
                tracked.time_start = time_start.or(tracked.time_start);
            }
        }
    }

    pub(crate) fn remove(&self, delivery_tag: &str) {
        if let Ok(mut deliveries) = self.deliveries.lock() {
            deliveries.remove(delivery_tag);
        }
    }

    pub(crate) fn tags(&self) -> Vec<String> {
        self.deliveries
            .lock()
            .map(|deliveries| deliveries.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn snapshot(&self) -> Vec<Delivery> {
        self.deliveries
            .lock()
            .map(|deliveries| {
                deliveries
                    .values()
                    .map(|tracked| tracked.delivery.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn held(tracked: &Tracked) -> Option<Held> {
        Some(Held {
            request: tracked.request.clone()?,
            phase: tracked.phase,
            eta: tracked.eta.clone(),
            time_start: tracked.time_start,
        })
    }

    /// The decoded requests in `phase`.
    pub(crate) fn listing(&self, phase: Phase) -> Vec<Held> {
        self.deliveries
            .lock()
            .map(|deliveries| {
                deliveries
                    .values()
                    .filter(|tracked| tracked.phase == phase)
                    .filter_map(Self::held)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn is_task(tracked: &Tracked, task_id: &str) -> bool {
        tracked
            .request
            .as_ref()
            .is_some_and(|request| request.message.headers.id.as_str() == task_id)
    }

    /// Task `task_id`, if this worker holds it.
    pub(crate) fn find(&self, task_id: &str) -> Option<Held> {
        let deliveries = self.deliveries.lock().ok()?;
        deliveries
            .values()
            .find(|tracked| Self::is_task(tracked, task_id))
            .and_then(Self::held)
    }

    /// Signals the running task `task_id` to stop; false when it is not running here.
    pub(crate) fn terminate(&self, task_id: &str) -> bool {
        let Ok(deliveries) = self.deliveries.lock() else {
            return false;
        };
        match deliveries
            .values()
            .find(|tracked| Self::is_task(tracked, task_id))
        {
            Some(Tracked {
                phase: Phase::Active,
                terminate: Some(signal),
                ..
            }) => {
                signal.notify_one();
                true
            }
            _ => false,
        }
    }
}

/// Acks waiting to ride along with the consumer's next fetch, which settles them and fetches
/// in one round trip. The executor pushes (and wakes the consumer); the consumer takes them
/// all, and puts them back when the round trip failed, so an ack survives a Redis outage.
#[derive(Debug, Default)]
pub(crate) struct PendingAcks {
    deliveries: Mutex<Vec<Delivery>>,
    wakeup: tokio::sync::Notify,
}

impl PendingAcks {
    pub(crate) fn push(&self, delivery: &Delivery) {
        if let Ok(mut deliveries) = self.deliveries.lock() {
            deliveries.push(delivery.clone());
        }
        self.wakeup.notify_one();
    }

    pub(crate) fn take(&self) -> Vec<Delivery> {
        self.deliveries
            .lock()
            .map(|mut deliveries| std::mem::take(&mut *deliveries))
            .unwrap_or_default()
    }

    pub(crate) fn put_back(&self, mut acks: Vec<Delivery>) {
        if let Ok(mut deliveries) = self.deliveries.lock() {
            acks.append(&mut deliveries);
            *deliveries = acks;
        }
    }

    /// Resolves when an ack was pushed since the last call.
    pub(crate) async fn pushed(&self) {
        self.wakeup.notified().await;
    }
}
