//! [`Consumers`]: which workers consume which queue, asked of the workers themselves
//! (`inspect active_queues`) and remembered for a few seconds.
//!
//! Events do not say which queues a worker consumes, so the Queues page has to ask. Asking
//! is a broadcast with a reply wait, and the page reloads on every live tick, so the answer is
//! kept and refreshed in the background once older than [`FRESH_FOR`] (see
//! [`Consumers::get`]). The broadcast stops as soon as every worker the monitor sees alive has
//! replied, so it usually takes one round trip, and never longer than [`REPLY_WAIT`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use celeriac::control::{BroadcastOptions, Control, Inspect};
use serde_json::Value;

/// How long an answer is reused.
const FRESH_FOR: Duration = Duration::from_secs(5);
/// The longest wait for replies.
const REPLY_WAIT: Duration = Duration::from_millis(800);

/// Queue name → the workers consuming it, as last asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct QueueConsumers {
    /// The workers that replied, by queue.
    pub(crate) by_queue: BTreeMap<String, BTreeSet<String>>,
    /// How many workers replied at all; `0` means nobody answered, so "no consumers" is
    /// unknown rather than true.
    pub(crate) workers_replied: usize,
}

/// The cache; one per dashboard.
#[derive(Debug, Default)]
pub(crate) struct Consumers {
    last: Mutex<Option<(Instant, QueueConsumers)>>,
    /// True while a background refresh runs, so a burst of page loads starts one.
    refreshing: AtomicBool,
}

impl Consumers {
    /// The consumers as last asked; `alive_workers` (the monitor's count) lets a broadcast
    /// end early.
    ///
    /// Only the first call waits for the workers. Later ones answer from the cache at once
    /// and, when it is older than [`FRESH_FOR`], start one refresh in the background: a
    /// worker that never replies (a Python worker without remote control, say) would
    /// otherwise cost every page load the whole [`REPLY_WAIT`].
    pub(crate) async fn get(
        self: &Arc<Self>,
        control: &Arc<Control>,
        alive_workers: usize,
    ) -> QueueConsumers {
        let cached = self.lock().clone();
        match cached {
            Some((at, consumers)) => {
                if at.elapsed() >= FRESH_FOR && !self.refreshing.swap(true, Ordering::AcqRel) {
                    let cache = self.clone();
                    let control = control.clone();
                    tokio::spawn(async move {
                        let consumers = ask(&control, alive_workers).await;
                        *cache.lock() = Some((Instant::now(), consumers));
                        cache.refreshing.store(false, Ordering::Release);
                    });
                }
                consumers
            }
            None => {
                let consumers = ask(control, alive_workers).await;
                *self.lock() = Some((Instant::now(), consumers.clone()));
                consumers
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, QueueConsumers)>> {
        // A panic elsewhere leaves a complete value (it is replaced whole); keep using it.
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One `inspect active_queues` broadcast.
async fn ask(control: &Control, alive_workers: usize) -> QueueConsumers {
    let mut options = BroadcastOptions::default().timeout(REPLY_WAIT);
    if alive_workers > 0 {
        options = options.limit(alive_workers);
    }
    match control.inspect(Inspect::ActiveQueues, &options).await {
        Ok(replies) => from_replies(&replies),
        Err(error) => {
            tracing::warn!(%error, "inspect active_queues failed");
            QueueConsumers::default()
        }
    }
}

/// Reads `active_queues` replies: `{node: [{"name": queue, ...}, ...]}`.
fn from_replies(replies: &BTreeMap<String, Value>) -> QueueConsumers {
    let mut consumers = QueueConsumers {
        workers_replied: replies.len(),
        ..QueueConsumers::default()
    };
    for (node, reply) in replies {
        let Some(queues) = reply.as_array() else {
            continue;
        };
        for queue in queues {
            if let Some(name) = queue.get("name").and_then(Value::as_str) {
                consumers
                    .by_queue
                    .entry(name.to_owned())
                    .or_default()
                    .insert(node.clone());
            }
        }
    }
    consumers
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies_become_consumers_per_queue() {
        let replies = BTreeMap::from([
            (
                "a@h".to_owned(),
                json!([{"name": "celery", "exchange": {"name": "celery"}}, {"name": "email"}]),
            ),
            ("b@h".to_owned(), json!([{"name": "celery"}])),
            ("c@h".to_owned(), json!({"error": "not a list"})),
        ]);
        let consumers = from_replies(&replies);
        assert_eq!(consumers.workers_replied, 3);
        assert_eq!(
            consumers.by_queue["celery"],
            BTreeSet::from(["a@h".to_owned(), "b@h".to_owned()])
        );
        assert_eq!(
            consumers.by_queue["email"],
            BTreeSet::from(["a@h".to_owned()])
        );
    }
}
