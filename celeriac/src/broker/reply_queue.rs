//! [`ReplyQueue`]: the list a remote-control client collects worker replies from.
//!
//! Workers send replies to the direct exchange `reply.celery.pidbox`, which kombu routes
//! through its binding table, so the client must bind its queue there **before** it
//! broadcasts, or every reply is dropped (wire doc §3.2, §5.2). The queue is
//! `<oid>.reply.celery.pidbox`, bound under routing key `<oid>`.
//!
//! Waiting uses `BRPOP`, as kombu does, on a connection of the queue's own: a blocking command
//! on the broker's shared multiplexed connection would stall every other command behind it.
//! The client deletes the queue when done ([`ReplyQueue::delete`]: `SREM` the binding, `DEL`
//! the lists); if a `ReplyQueue` is dropped undeleted (its future was cancelled), the drop
//! spawns the same cleanup on the current tokio runtime.

use super::keys::Keys;
use super::redis::{redis_error, RedisBroker};
use super::BrokerError;
use ::redis::aio::MultiplexedConnection;
use ::redis::AsyncConnectionConfig;
use std::time::Duration;

/// A bound reply queue with its own connection; see the module docs.
pub struct ReplyQueue {
    broker: RedisBroker,
    connection: MultiplexedConnection,
    exchange: String,
    routing_key: String,
    queue: String,
    bound: bool,
}

impl std::fmt::Debug for ReplyQueue {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ReplyQueue")
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl RedisBroker {
    /// Opens a connection for waiting and binds queue `<routing_key>.<exchange>` to
    /// `exchange` under `routing_key`, so replies routed there land in it.
    pub async fn declare_reply_queue(
        &self,
        exchange: &str,
        routing_key: &str,
    ) -> Result<ReplyQueue, BrokerError> {
        // No response timeout: BRPOP waits on the server; `pop` bounds the wait itself.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(None);
        let connection = self
            .connection
            .client()
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(redis_error("connect"))?;
        let queue = Keys::reply_queue(routing_key, exchange);
        self.bind_queue(exchange, routing_key, &queue).await?;
        Ok(ReplyQueue {
            broker: self.clone(),
            connection,
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            queue,
            bound: true,
        })
    }
}

impl ReplyQueue {
    /// The queue's name (without the key prefix).
    pub fn name(&self) -> &str {
        &self.queue
    }

    /// The next message, waiting up to `timeout`; None when none came in time.
    pub async fn pop(&mut self, timeout: Duration) -> Result<Option<String>, BrokerError> {
        // BRPOP counts in seconds with millisecond precision, and 0 means "forever".
        if timeout < Duration::from_millis(1) {
            return Ok(None);
        }
        let mut command = ::redis::cmd("BRPOP");
        for bucket in self.broker.keys.queue_buckets(&self.queue) {
            command.arg(bucket);
        }
        command.arg(format!("{:.3}", timeout.as_secs_f64()));
        let query = command.query_async::<Option<(Vec<u8>, Vec<u8>)>>(&mut self.connection);
        // A server that stops answering must not hold the client past its own timeout.
        match tokio::time::timeout(timeout + Duration::from_secs(2), query).await {
            Ok(reply) => Ok(reply
                .map_err(redis_error("BRPOP reply"))?
                .map(|(_, raw)| String::from_utf8_lossy(&raw).into_owned())),
            Err(_elapsed) => {
                tracing::warn!(queue = %self.queue, "Redis did not answer BRPOP in time");
                Ok(None)
            }
        }
    }

    /// Unbinds the queue and deletes its lists (kombu's auto-delete of reply queues).
    pub async fn delete(mut self) -> Result<(), BrokerError> {
        self.bound = false;
        remove(&self.broker, &self.exchange, &self.routing_key, &self.queue).await
    }
}

impl Drop for ReplyQueue {
    fn drop(&mut self) {
        if !self.bound {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let broker = self.broker.clone();
        let (exchange, routing_key, queue) = (
            self.exchange.clone(),
            self.routing_key.clone(),
            self.queue.clone(),
        );
        runtime.spawn(async move {
            if let Err(error) = remove(&broker, &exchange, &routing_key, &queue).await {
                tracing::debug!(%error, queue = %queue, "could not delete an abandoned reply queue");
            }
        });
    }
}

async fn remove(
    broker: &RedisBroker,
    exchange: &str,
    routing_key: &str,
    queue: &str,
) -> Result<(), BrokerError> {
    let mut pipeline = ::redis::pipe();
    pipeline.atomic();
    pipeline
        .cmd("SREM")
        .arg(broker.keys.binding(exchange))
        .arg(Keys::binding_member(routing_key, "", queue))
        .ignore();
    pipeline
        .cmd("DEL")
        .arg(broker.keys.queue_buckets(queue))
        .ignore();
    let mut connection = broker.connection.clone();
    pipeline
        .query_async::<()>(&mut connection)
        .await
        .map_err(redis_error("delete reply queue"))
}
