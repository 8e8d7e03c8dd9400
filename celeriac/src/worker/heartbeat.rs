//! Worker presence for monitors: `worker-online` at start, `worker-heartbeat` every 2 s (a
//! monitor considers a worker gone after two missed beats), `worker-offline` at shutdown
//! (sent by [`super::Worker::run`]).

use super::Shared;
use crate::protocol::event::WorkerPresence;
use serde_json::{Map, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Celery's heartbeat interval (`freq`).
const FREQUENCY: Duration = Duration::from_secs(2);

pub(crate) async fn run(shared: Arc<Shared>) {
    shared.events.worker("worker-online", fields(&shared)).await;
    let mut ticks = tokio::time::interval(FREQUENCY);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        shared
            .events
            .worker("worker-heartbeat", fields(&shared))
            .await;
    }
}

/// The fields of the worker events, as Celery sends them.
pub(crate) fn fields(shared: &Shared) -> Map<String, Value> {
    WorkerPresence {
        frequency: FREQUENCY.as_secs_f64(),
        active: shared.pool.in_use(),
        processed: shared.counters.processed.load(Ordering::Relaxed),
        load_average: load_average(),
        version: env!("CARGO_PKG_VERSION"),
    }
    .fields()
}

/// The 1, 5 and 15 minute load averages rounded to two places, as Celery reports them.
fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut values = text
        .split_whitespace()
        .map(|value| value.parse::<f64>().unwrap_or(0.0));
    let mut next = || (values.next().unwrap_or(0.0) * 100.0).round() / 100.0;
    [next(), next(), next()]
}
