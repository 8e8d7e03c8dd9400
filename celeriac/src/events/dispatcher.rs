//! [`EventDispatcher`]: stamps events with the Lamport clock and publishes them.
//!
//! Task events go into a buffer; a flusher task owned by the worker publishes the buffer as one
//! `task.multi` message every 100 ms, or at once when 24 events are waiting (Celery's limit).
//! Events are best effort, as in Celery: a publish that fails is logged and dropped, and
//! nobody listening means nobody receives them.

use crate::broker::RedisBroker;
use crate::clock;
use crate::protocol::event::{self, EventSource, EVENT_EXCHANGE, TASK_MULTI};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

const BUFFER_LIMIT: usize = 24;
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Publishes one node's events.
#[derive(Debug)]
pub struct EventDispatcher {
    broker: RedisBroker,
    source: EventSource,
    clock: AtomicU64,
    task_events: AtomicBool,
    buffer: Mutex<Vec<Value>>,
    full: Notify,
}

impl EventDispatcher {
    /// A dispatcher for node `hostname`; task events only when `task_events` is on.
    #[doc(hidden)] // takes the internal transport
    pub fn new(broker: RedisBroker, hostname: &str, task_events: bool) -> Arc<EventDispatcher> {
        Arc::new(EventDispatcher {
            broker,
            source: EventSource {
                hostname: hostname.to_owned(),
                pid: std::process::id(),
                utcoffset: event::python_utcoffset(clock::local_minus_utc_seconds()),
            },
            clock: AtomicU64::new(0),
            task_events: AtomicBool::new(task_events),
            buffer: Mutex::default(),
            full: Notify::new(),
        })
    }

    /// Whether task events are sent.
    pub fn task_events(&self) -> bool {
        self.task_events.load(Ordering::Relaxed)
    }

    /// Turns task events on or off (`enable_events` / `disable_events`).
    pub fn set_task_events(&self, enabled: bool) {
        self.task_events.store(enabled, Ordering::Relaxed);
    }

    /// Advances the node's Lamport clock (shared by events and control replies) and returns it.
    pub fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn stamp(&self, kind: &str, fields: Map<String, Value>) -> Value {
        let clock = self.tick();
        event::event(&self.source, kind, clock, clock::epoch_now(), fields)
    }

    /// Queues a task event for the next `task.multi` message (dropped when task events are off).
    pub fn task(&self, kind: &str, fields: Map<String, Value>) {
        if !self.task_events() {
            return;
        }
        let stamped = self.stamp(kind, fields);
        let waiting = match self.buffer.lock() {
            Ok(mut buffer) => {
                buffer.push(stamped);
                buffer.len()
            }
            Err(_) => return,
        };
        if waiting >= BUFFER_LIMIT {
            self.full.notify_one();
        }
    }

    /// Sends a worker event at once.
    pub async fn worker(&self, kind: &str, fields: Map<String, Value>) {
        self.send_now(kind, fields).await;
    }

    /// Sends an event at once, on its own routing key (producers send `task-sent` this way).
    pub async fn send_now(&self, kind: &str, fields: Map<String, Value>) {
        let stamped = self.stamp(kind, fields);
        self.publish(&stamped, &event::routing_key(kind)).await;
    }

    /// Publishes the buffered task events as one `task.multi` list.
    pub async fn flush(&self) {
        let events = self
            .buffer
            .lock()
            .map(|mut buffer| std::mem::take(&mut *buffer))
            .unwrap_or_default();
        if !events.is_empty() {
            self.publish(&Value::Array(events), TASK_MULTI).await;
        }
    }

    /// Flushes every 100 ms, or when the buffer is full, until the task is aborted by its owner
    /// (the worker, at shutdown, after a last [`Self::flush`]).
    pub async fn run_flusher(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(FLUSH_EVERY) => {}
                _ = self.full.notified() => {}
            }
            self.flush().await;
        }
    }

    async fn publish(&self, body: &Value, routing_key: &str) {
        let envelope = event::envelope(
            body,
            &self.source.hostname,
            routing_key,
            uuid::Uuid::new_v4().to_string(),
        );
        if let Err(error) = self
            .broker
            .publish_fanout(EVENT_EXCHANGE, routing_key, &envelope.to_json())
            .await
        {
            tracing::debug!(%error, routing_key, "event not sent");
        }
    }
}
