//! Subscribing to every routing key of a fanout exchange, as kombu's event receivers do
//! (`PSUBSCRIBE /<db>.celeryev/*`, wire doc §4.4).
//!
//! kombu also declares an auto-delete queue `celeryev.<uuid>` and a binding for it; on Redis
//! fanout delivery never reads either (publishers `PUBLISH` to the channel and nothing else), so
//! we write neither and leave no garbage behind when a receiver dies.

use super::redis::{redis_error, RedisBroker};
use super::BrokerError;

impl RedisBroker {
    /// A PUB/SUB stream of every message published on fanout exchange `exchange`, whatever its
    /// routing key. Each call opens its own connection; the stream ends when the connection
    /// does (the caller reconnects).
    pub async fn psubscribe_fanout(
        &self,
        exchange: &str,
    ) -> Result<::redis::aio::PubSubStream, BrokerError> {
        let mut pubsub = self
            .connection
            .client()
            .get_async_pubsub()
            .await
            .map_err(redis_error("PSUBSCRIBE"))?;
        pubsub
            .psubscribe(self.keys.fanout_pattern(exchange))
            .await
            .map_err(redis_error("PSUBSCRIBE"))?;
        Ok(pubsub.into_on_message())
    }
}
