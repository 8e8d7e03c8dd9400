//! Keeps the visibility timeout working for everyone: refreshes the delivery time of the
//! messages this worker holds, and restores anybody's messages older than the timeout.
//!
//! kombu scores `unacked_index` with the delivery time and never updates it, so a task held
//! longer than the visibility timeout (a long ETA, a long `acks_late` run) is restored and run
//! twice (wire doc §8.2). Refreshing our own entries before each sweep means only deliveries
//! whose holder stopped refreshing (a dead or frozen worker, or a Python worker past the
//! timeout) are restored. The loop runs at start and then every quarter of the timeout,
//! between 0.5 s and 10 s.

use super::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub(crate) async fn run(shared: Arc<Shared>) {
    let timeout = shared.broker.options().visibility_timeout;
    let period = (timeout / 4).clamp(Duration::from_millis(500), Duration::from_secs(10));
    loop {
        if let Err(error) = shared.broker.refresh(&shared.in_flight.tags()).await {
            tracing::warn!(%error, "could not refresh in-flight deliveries");
        }
        match shared.broker.restore_visible().await {
            Ok(0) => {}
            Ok(restored) => {
                shared
                    .counters
                    .restored
                    .fetch_add(restored as u64, Ordering::Relaxed);
                tracing::warn!(
                    restored,
                    "restored messages whose worker stopped holding them (visibility timeout)"
                );
            }
            Err(error) => tracing::warn!(%error, "visibility-timeout sweep failed"),
        }
        tokio::time::sleep(period).await;
    }
}
