//! [`InFlight`]: the deliveries this worker holds, by delivery tag.
//!
//! The visibility loop refreshes their delivery time so no sweep restores them while we hold
//! them, and shutdown restores whatever is still here. An entry is added when a message is
//! fetched and removed once it has been acked, requeued or dead-lettered.

use crate::broker::Delivery;
use std::collections::HashMap;
use std::sync::Mutex;

/// The deliveries this worker holds.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    deliveries: Mutex<HashMap<String, Delivery>>,
}

impl InFlight {
    pub(crate) fn insert(&self, delivery: &Delivery) {
        if let Ok(mut deliveries) = self.deliveries.lock() {
            deliveries.insert(delivery.delivery_tag.clone(), delivery.clone());
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
            .map(|deliveries| deliveries.values().cloned().collect())
            .unwrap_or_default()
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
