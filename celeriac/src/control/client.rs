//! [`Control`]: broadcasts one command and collects the replies (kombu's `Mailbox._broadcast`
//! and `_collect`); the steps are in the module docs of [`crate::control`].

use super::ControlError;
use crate::broker::RedisBroker;
use crate::clock;
use crate::config::Config;
use crate::producer::broker_options;
use crate::protocol::control::{ControlReply, ControlRequest, CONTROL_EXCHANGE, REPLY_EXCHANGE};
use crate::protocol::Envelope;
use crate::Error;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Replies by node name, in name order.
pub type Replies = BTreeMap<String, Value>;

/// Whom a broadcast addresses and how long it waits.
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastOptions {
    /// Node names to address; None = every worker.
    pub destination: Option<Vec<String>>,
    /// A glob of node names to address (`celery@*`), Celery's `pattern` with `matcher="glob"`.
    pub pattern: Option<String>,
    /// How long to wait for replies.
    pub timeout: Duration,
    /// Stop after this many replies; None = the number of destinations, or wait out the
    /// timeout when addressing everyone.
    pub limit: Option<usize>,
    /// Whether to ask for replies at all (fire-and-forget otherwise, as Flower's `revoke`).
    pub reply: bool,
}

impl Default for BroadcastOptions {
    /// Every worker, replies wanted, one second (the `celery inspect` default).
    fn default() -> Self {
        BroadcastOptions {
            destination: None,
            pattern: None,
            timeout: Duration::from_secs(1),
            limit: None,
            reply: true,
        }
    }
}

impl BroadcastOptions {
    /// Addresses only these nodes.
    pub fn to<Node: Into<String>>(mut self, nodes: impl IntoIterator<Item = Node>) -> Self {
        self.destination = Some(nodes.into_iter().map(Into::into).collect());
        self
    }

    /// Addresses the nodes whose names match a glob.
    pub fn matching(mut self, pattern: impl Into<String>) -> Self {
        self.pattern = Some(pattern.into());
        self
    }

    /// Waits this long for replies.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Stops after this many replies.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Asks for no replies.
    pub fn without_reply(mut self) -> Self {
        self.reply = false;
        self
    }
}

/// A remote-control client: Celery's `app.control`.
#[derive(Debug)]
pub struct Control {
    broker: RedisBroker,
    /// The client's Lamport clock: ticks per broadcast, and moves past every reply's clock.
    clock: AtomicU64,
}

impl Control {
    /// Connects to the broker of `config`.
    pub async fn connect(config: &Config) -> Result<Control, Error> {
        let broker = RedisBroker::connect(&config.broker_url, broker_options(config)).await?;
        Ok(Control::from_broker(broker))
    }

    /// A client over an existing broker connection.
    #[doc(hidden)] // takes the internal transport
    pub fn from_broker(broker: RedisBroker) -> Control {
        Control {
            broker,
            clock: AtomicU64::new(0),
        }
    }

    /// Sends `method` with `arguments` to the workers `options` address and returns their
    /// replies (empty without `options.reply`).
    pub async fn broadcast(
        &self,
        method: &str,
        arguments: Map<String, Value>,
        options: &BroadcastOptions,
    ) -> Result<Replies, ControlError> {
        let mut request = ControlRequest {
            method: method.to_owned(),
            arguments,
            destination: options.destination.clone(),
            pattern: options
                .pattern
                .as_ref()
                .map(|pattern| (pattern.clone(), "glob".to_owned())),
            ticket: None,
            reply_to: None,
        };
        if !options.reply {
            self.publish(&request, options.timeout).await?;
            return Ok(Replies::new());
        }
        let oid = uuid::Uuid::new_v4().to_string();
        let ticket = uuid::Uuid::new_v4().to_string();
        request.ticket = Some(ticket.clone());
        request.reply_to = Some((REPLY_EXCHANGE.to_owned(), oid.clone()));
        let mut queue = self
            .broker
            .declare_reply_queue(REPLY_EXCHANGE, &oid)
            .await?;
        let collected = match self.publish(&request, options.timeout).await {
            Ok(()) => self.collect(&mut queue, &ticket, options).await,
            Err(error) => Err(error),
        };
        if let Err(error) = queue.delete().await {
            tracing::warn!(%error, oid = %oid, "could not delete the reply queue");
        }
        collected
    }

    async fn publish(
        &self,
        request: &ControlRequest,
        timeout: Duration,
    ) -> Result<(), ControlError> {
        let clock = self.clock.fetch_add(1, Ordering::AcqRel) + 1;
        let expires = clock::epoch_now() + timeout.as_secs_f64();
        let envelope = request.to_envelope(clock, expires, uuid::Uuid::new_v4().to_string());
        tracing::debug!(method = %request.method, destination = ?request.destination, "control broadcast");
        self.broker
            .publish_fanout(CONTROL_EXCHANGE, "", &envelope.to_json())
            .await?;
        Ok(())
    }

    /// Takes replies for `ticket` until the deadline or the reply limit; other messages
    /// (malformed, or for another ticket) are skipped, as kombu stashes them unclaimed.
    async fn collect(
        &self,
        queue: &mut crate::broker::ReplyQueue,
        ticket: &str,
        options: &BroadcastOptions,
    ) -> Result<Replies, ControlError> {
        let limit = options
            .limit
            .or_else(|| options.destination.as_ref().map(Vec::len));
        let deadline = tokio::time::Instant::now() + options.timeout;
        let mut replies = Replies::new();
        while limit.is_none_or(|limit| replies.len() < limit) {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(raw) = queue.pop(remaining).await? else {
                break;
            };
            let reply = match Envelope::from_json(raw.as_bytes())
                .and_then(|envelope| ControlReply::decode(&envelope))
            {
                Ok(reply) => reply,
                Err(error) => {
                    tracing::warn!(%error, "ignoring a malformed control reply");
                    continue;
                }
            };
            if reply.ticket.as_deref() != Some(ticket) {
                continue;
            }
            if let Some(clock) = reply.clock {
                self.clock.fetch_max(clock, Ordering::AcqRel);
            }
            replies.extend(reply.results);
        }
        Ok(replies)
    }
}
