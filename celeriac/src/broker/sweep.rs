//! kombu's visibility-timeout restore (`QoS.restore_visible`), shared with Python consumers.
//!
//! Any consumer restores any delivery older than the visibility timeout, whoever took it: the
//! lock `unacked_mutex` makes one consumer at a time do it, and each record is moved with the
//! same compare-and-move script as a requeue, so a record that changed meanwhile is left alone.

use super::redis::{envelope_priority, redis_error, Expected, RedisBroker};
use super::scripts::RELEASE_LOCK;
use super::{BrokerError, Delivery};
use crate::clock;
use crate::protocol::envelope::mark_redelivered;
use serde_json::Value;

const MIN_MUTEX_HOLD: std::time::Duration = std::time::Duration::from_secs(1);
const MAX_MUTEX_HOLD: std::time::Duration = std::time::Duration::from_secs(10);

impl RedisBroker {
    /// kombu's `QoS.restore_visible`: under `unacked_mutex`, puts every delivery older than the
    /// visibility timeout back at the consuming end of its queue, flagged `redelivered`. Works
    /// on anyone's deliveries, Python's included. Returns how many were restored; 0 when another
    /// consumer holds the lock.
    pub async fn restore_visible(&self) -> Result<usize, BrokerError> {
        let mut connection = self.connection.clone();
        let token = uuid::Uuid::new_v4().simple().to_string();
        // kombu holds the lock up to 300 s; a consumer killed mid-sweep then blocks every
        // restore for that long. Our sweep takes milliseconds and each record moves with its
        // own compare-and-move script, so overlapping sweeps are harmless: hold it no longer
        // than the visibility timeout (between 1 s and 10 s).
        let hold = self
            .options
            .visibility_timeout
            .clamp(MIN_MUTEX_HOLD, MAX_MUTEX_HOLD);
        let expire = self.options.unacked_mutex_expire.min(hold);
        let expire_ms = expire.as_millis().max(1) as u64;
        let acquired: Option<String> = ::redis::cmd("SET")
            .arg(self.keys.unacked_mutex())
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(expire_ms)
            .query_async(&mut connection)
            .await
            .map_err(redis_error("SET unacked_mutex"))?;
        if acquired.is_none() {
            return Ok(0);
        }
        let outcome = self.restore_expired(&mut connection).await;
        let released = RELEASE_LOCK
            .key(self.keys.unacked_mutex())
            .arg(&token)
            .invoke_async::<i64>(&mut connection)
            .await
            .map_err(redis_error("release unacked_mutex"));
        let restored = outcome?;
        released?;
        Ok(restored)
    }

    async fn restore_expired(&self, connection: &mut super::Link) -> Result<usize, BrokerError> {
        let ceiling = clock::epoch_now() - self.options.visibility_timeout.as_secs_f64();
        let tags: Vec<String> = ::redis::cmd("ZREVRANGEBYSCORE")
            .arg(self.keys.unacked_index())
            .arg(format!("{ceiling:.6}"))
            .arg(0)
            .query_async(connection)
            .await
            .map_err(redis_error("ZREVRANGEBYSCORE"))?;
        let mut restored = 0;
        for tag in tags {
            let record: Option<String> = ::redis::cmd("HGET")
                .arg(self.keys.unacked())
                .arg(&tag)
                .query_async(connection)
                .await
                .map_err(redis_error("HGET unacked"))?;
            let Some(record) = record else {
                ::redis::cmd("ZREM")
                    .arg(self.keys.unacked_index())
                    .arg(&tag)
                    .query_async::<i64>(connection)
                    .await
                    .map_err(redis_error("ZREM"))?;
                continue;
            };
            match self.restore_destination(&tag, &record, connection).await {
                Ok((raw, destination)) => {
                    if self
                        .move_record(
                            &tag,
                            Expected::Record(&record),
                            &raw,
                            &destination,
                            true,
                            false,
                        )
                        .await?
                        == 1
                    {
                        restored += 1;
                        tracing::info!(delivery_tag = %tag, queue = %destination, "restored unacknowledged message");
                    }
                }
                Err(error) => {
                    tracing::error!(delivery_tag = %tag, %error, "unacked record cannot be restored; dead-lettering it");
                    let delivery = Delivery {
                        delivery_tag: tag.clone(),
                        queue: String::new(),
                        raw: record.clone(),
                    };
                    let expected = Expected::Record(&record);
                    self.dead_letter_record(&delivery, expected, &error.to_string(), None)
                        .await?;
                }
            }
        }
        Ok(restored)
    }

    /// Works out where kombu would put a restored record back: the routing key for the
    /// anonymous exchange, the binding table for a named one.
    async fn restore_destination(
        &self,
        tag: &str,
        record: &str,
        connection: &mut super::Link,
    ) -> Result<(String, String), BrokerError> {
        let malformed = |reason: &str| BrokerError::MalformedRecord {
            delivery_tag: tag.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed: Value = serde_json::from_str(record).map_err(|_| malformed("not JSON"))?;
        let Some([envelope, exchange, routing_key]) = parsed
            .as_array()
            .map(Vec::as_slice)
            .and_then(|items| <&[Value; 3]>::try_from(items).ok())
        else {
            return Err(malformed("not [envelope, exchange, routing_key]"));
        };
        let exchange = exchange.as_str().unwrap_or_default();
        let routing_key = routing_key
            .as_str()
            .ok_or_else(|| malformed("routing key is not a string"))?;
        let queue = if exchange.is_empty() {
            routing_key.to_owned()
        } else {
            let members: Vec<String> = ::redis::cmd("SMEMBERS")
                .arg(self.keys.binding(exchange))
                .query_async(connection)
                .await
                .map_err(redis_error("SMEMBERS binding"))?;
            members
                .iter()
                .filter_map(|member| {
                    let mut parts = member.split(super::keys::SEP);
                    let key = parts.next()?;
                    let _pattern = parts.next()?;
                    let queue = parts.next()?;
                    (key == routing_key || key.is_empty()).then(|| queue.to_owned())
                })
                .next()
                .ok_or_else(|| malformed("no binding routes it to a queue"))?
        };
        let mut envelope = envelope.clone();
        let priority = envelope_priority(&envelope);
        mark_redelivered(&mut envelope);
        Ok((
            envelope.to_string(),
            self.keys.queue_for_priority(&queue, priority),
        ))
    }
}
