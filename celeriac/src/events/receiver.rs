//! [`EventReceiver`]: reads Celery events from the `celeryev` fanout, as Flower and `celery
//! events` do, and decodes them into typed [`Event`] batches.
//!
//! 1. [`EventReceiver::connect`] opens a PUB/SUB connection and `PSUBSCRIBE`s
//!    `<prefix>/<db>.celeryev/*` (every routing key: `worker.*`, `task.multi`, `task.sent`, …).
//! 2. [`EventReceiver::recv_batch`] waits for one message, then takes every message already
//!    waiting (up to 256 messages, or until [`MAX_BATCH_EVENTS`] events) without waiting
//!    again, and decodes them all into one batch: under load a batch holds many messages, so
//!    per-batch costs (a channel send, a lock in the monitor) are paid once per batch and not
//!    per event.
//! 3. A message that is not an event envelope is logged at debug and counted
//!    ([`ReceiverStats`] `malformed`), a list element that is not an event is counted
//!    (`skipped`); nothing a publisher sends can stop the receiver. Each event is bounded
//!    ([`super::weight`]): over-long texts are cut (`cut`), an event still too heavy is dropped
//!    (`refused`), so no publisher can make the monitor, the history or the metrics hold more
//!    than a few kilobytes per event.
//! 4. When the connection drops, the receiver reconnects with backoff (100 ms doubling to 5 s)
//!    and counts it (`reconnects`); events published meanwhile are lost, as PUB/SUB keeps
//!    nothing for absent subscribers (Celery's receivers lose them the same way).
//!
//! [`EventReceiver::spawn`] runs that loop in a tokio task feeding a bounded [`EventStream`].
//! The task never waits for the consumer: when the buffer is full the batch is dropped and its
//! events are counted (`dropped`), so a slow consumer shows up as a number instead of as
//! memory. (redis-rs reads the socket into an unbounded queue of its own; the loop drains it as
//! fast as it decodes, which is the receiver's ingest rate — see BENCHMARKS.md.) Dropping the
//! [`EventStream`] stops the task and closes the connection.

use super::weight::{bound, Bounded, MAX_EVENT_BYTES};
use crate::broker::{BrokerError, RedisBroker};
use crate::protocol::event::{decode_events, Event, EVENT_EXCHANGE};
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Messages decoded into one batch at most.
const MAX_BATCH_MESSAGES: usize = 256;
/// Events after which a batch takes no more messages (a message may hold many: a worker's
/// `task.multi` holds up to 24), so that buffers counted in batches are bounded in events, and
/// so in memory.
pub const MAX_BATCH_EVENTS: usize = 1_024;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why the receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// Subscribing failed (Redis unreachable, refused).
    #[error("cannot subscribe to the events exchange")]
    Subscribe(#[from] BrokerError),
}

/// What the receiver has seen; shared with whoever wants to watch (atomics, no lock).
#[derive(Debug, Default)]
pub struct ReceiverStats {
    messages: AtomicU64,
    events: AtomicU64,
    malformed: AtomicU64,
    skipped: AtomicU64,
    cut: AtomicU64,
    refused: AtomicU64,
    dropped: AtomicU64,
    dropped_batches: AtomicU64,
    reconnects: AtomicU64,
}

/// A copy of [`ReceiverStats`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverStatsSnapshot {
    /// PUB/SUB messages read.
    pub messages: u64,
    /// Events decoded from them.
    pub events: u64,
    /// Messages that were not event envelopes (bad JSON, base64, content type).
    pub malformed: u64,
    /// List elements or objects that were not events.
    pub skipped: u64,
    /// Events kept with some text cut to its limit.
    #[serde(default)]
    pub cut: u64,
    /// Events dropped because they weighed more than the limit even after cutting.
    #[serde(default)]
    pub refused: u64,
    /// Events decoded but dropped because the [`EventStream`] buffer was full.
    pub dropped: u64,
    /// Batches dropped for the same reason.
    pub dropped_batches: u64,
    /// Times the connection was lost and made again.
    pub reconnects: u64,
}

impl ReceiverStats {
    /// The counters now.
    pub fn snapshot(&self) -> ReceiverStatsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ReceiverStatsSnapshot {
            messages: read(&self.messages),
            events: read(&self.events),
            malformed: read(&self.malformed),
            skipped: read(&self.skipped),
            cut: read(&self.cut),
            refused: read(&self.refused),
            dropped: read(&self.dropped),
            dropped_batches: read(&self.dropped_batches),
            reconnects: read(&self.reconnects),
        }
    }

    fn add(counter: &AtomicU64, amount: u64) {
        if amount > 0 {
            counter.fetch_add(amount, Ordering::Relaxed);
        }
    }
}

/// A subscription to the `celeryev` fanout. See the module docs.
pub struct EventReceiver {
    broker: RedisBroker,
    stream: Option<::redis::aio::PubSubStream>,
    scratch: Vec<u8>,
    stats: Arc<ReceiverStats>,
}

impl std::fmt::Debug for EventReceiver {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EventReceiver")
            .field("broker", &self.broker)
            .field("connected", &self.stream.is_some())
            .field("stats", &self.stats.snapshot())
            .finish()
    }
}

impl EventReceiver {
    /// Subscribes to every event published on `broker`'s database and key prefix. Events sent
    /// before this returns are not seen.
    #[doc(hidden)] // takes the internal transport
    pub async fn connect(broker: &RedisBroker) -> Result<EventReceiver, ReceiverError> {
        let stream = broker.psubscribe_fanout(EVENT_EXCHANGE).await?;
        Ok(EventReceiver {
            broker: broker.clone(),
            stream: Some(stream),
            scratch: Vec::new(),
            stats: Arc::default(),
        })
    }

    /// The counters, shared.
    pub fn stats(&self) -> Arc<ReceiverStats> {
        self.stats.clone()
    }

    /// Waits for events and appends the next batch to `out` (at least one event, unless only
    /// garbage arrived). Reconnects by itself when the connection drops, so it only returns with
    /// events; cancelling it loses nothing that was not already read.
    pub async fn recv_batch(&mut self, out: &mut Vec<Event>) {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                self.reconnect().await;
                continue;
            };
            let Some(first) = stream.next().await else {
                tracing::warn!("event receiver lost its Redis connection; reconnecting");
                self.stream = None;
                continue;
            };
            let mut messages = 1;
            self.decode(first.get_payload_bytes(), out);
            while messages < MAX_BATCH_MESSAGES && out.len() < MAX_BATCH_EVENTS {
                let Some(stream) = self.stream.as_mut() else {
                    break;
                };
                match stream.next().now_or_never() {
                    Some(Some(message)) => {
                        messages += 1;
                        self.decode(message.get_payload_bytes(), out);
                    }
                    Some(None) => {
                        tracing::warn!("event receiver lost its Redis connection; reconnecting");
                        self.stream = None;
                    }
                    None => break,
                }
            }
            ReceiverStats::add(&self.stats.messages, messages as u64);
            if !out.is_empty() {
                return;
            }
        }
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<Event>) {
        let before = out.len();
        match decode_events(payload, &mut self.scratch, out) {
            Ok(skipped) => ReceiverStats::add(&self.stats.skipped, skipped as u64),
            Err(error) => {
                ReceiverStats::add(&self.stats.malformed, 1);
                tracing::debug!(%error, bytes = payload.len(), "not an event; ignored");
            }
        }
        let (mut cut, mut refused) = (0, 0);
        let mut index = before;
        while index < out.len() {
            match bound(&mut out[index]) {
                Bounded::Whole => index += 1,
                Bounded::Cut => {
                    cut += 1;
                    index += 1;
                }
                Bounded::Refused => {
                    refused += 1;
                    out.remove(index);
                }
            }
        }
        if refused > 0 {
            tracing::warn!(
                refused,
                limit = MAX_EVENT_BYTES,
                "events heavier than the limit even with their texts cut; dropped"
            );
        }
        ReceiverStats::add(&self.stats.cut, cut);
        ReceiverStats::add(&self.stats.refused, refused);
        ReceiverStats::add(&self.stats.events, (out.len() - before) as u64);
    }

    async fn reconnect(&mut self) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            tokio::time::sleep(backoff).await;
            match self.broker.psubscribe_fanout(EVENT_EXCHANGE).await {
                Ok(stream) => {
                    ReceiverStats::add(&self.stats.reconnects, 1);
                    tracing::info!("event receiver subscribed again");
                    self.stream = Some(stream);
                    return;
                }
                Err(error) => {
                    tracing::debug!(%error, "event receiver cannot subscribe yet");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Runs the receiver in a tokio task that feeds a stream buffering at most `capacity`
    /// batches; batches that find it full are dropped and counted.
    pub fn spawn(mut self, capacity: usize) -> EventStream {
        let (sender, receiver) = mpsc::channel::<Vec<Event>>(capacity.max(1));
        let stats = self.stats.clone();
        let task_stats = self.stats.clone();
        let task = tokio::spawn(async move {
            loop {
                let mut batch = Vec::new();
                self.recv_batch(&mut batch).await;
                let events = batch.len() as u64;
                match sender.try_send(batch) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        ReceiverStats::add(&task_stats.dropped, events);
                        ReceiverStats::add(&task_stats.dropped_batches, 1);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
        });
        EventStream {
            receiver,
            stats,
            task,
        }
    }
}

/// Batches of events from a spawned [`EventReceiver`], bounded. Dropping it stops the receiver
/// task and closes its connection.
#[derive(Debug)]
pub struct EventStream {
    receiver: mpsc::Receiver<Vec<Event>>,
    stats: Arc<ReceiverStats>,
    task: JoinHandle<()>,
}

impl EventStream {
    /// The next batch; `None` only if the receiver task ended (it does not by itself).
    pub async fn recv(&mut self) -> Option<Vec<Event>> {
        self.receiver.recv().await
    }

    /// The receiver's counters.
    pub fn stats(&self) -> Arc<ReceiverStats> {
        self.stats.clone()
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
