//! Publishing beyond a plain push: unique (idempotent) tasks, fanout messages, direct
//! exchanges through the binding table, and fanout subscriptions.

use super::redis::{redis_error, RedisBroker};
use super::scripts::PUBLISH_UNIQUE;
use super::BrokerError;
use std::time::Duration;

impl RedisBroker {
    /// Publishes a message on a fanout exchange (events, broadcast control): kombu's Redis
    /// transport sends those over PUB/SUB, so only subscribers present now receive it.
    pub async fn publish_fanout(
        &self,
        exchange: &str,
        routing_key: &str,
        raw: &str,
    ) -> Result<(), BrokerError> {
        let mut connection = self.connection.clone();
        ::redis::cmd("PUBLISH")
            .arg(self.keys.fanout_channel(exchange, routing_key))
            .arg(raw)
            .query_async::<i64>(&mut connection)
            .await
            .map_err(redis_error("PUBLISH"))?;
        Ok(())
    }

    /// Publishes a unique task: refused (false) while a task with the same id is pending, that
    /// is enqueued and not yet finished. The pending marker lives `ttl` at most.
    pub async fn publish_unique(
        &self,
        queue: &str,
        priority: u8,
        raw: &str,
        task_id: &str,
        ttl: Duration,
    ) -> Result<bool, BrokerError> {
        self.declare_queue(queue).await?;
        let mut connection = self.connection.clone();
        let published: i64 = PUBLISH_UNIQUE
            .key(self.keys.pending(task_id))
            .key(self.keys.queue_for_priority(queue, priority))
            .arg(ttl.as_secs().max(1))
            .arg(raw)
            .invoke_async(&mut connection)
            .await
            .map_err(redis_error("publish unique script"))?;
        Ok(published == 1)
    }

    /// Ends a unique task's pending state, so the same id may be enqueued again.
    pub async fn clear_pending(&self, task_id: &str) -> Result<(), BrokerError> {
        let mut connection = self.connection.clone();
        ::redis::cmd("DEL")
            .arg(self.keys.pending(task_id))
            .query_async::<i64>(&mut connection)
            .await
            .map_err(redis_error("DEL pending"))?;
        Ok(())
    }

    /// Keeps the workflow of a failed task (`embed`, the message's JSON embed) for `ttl`, for a
    /// later retry of that task to continue it.
    pub async fn remember_workflow(
        &self,
        task_id: &str,
        embed: &str,
        ttl: std::time::Duration,
    ) -> Result<(), BrokerError> {
        let mut connection = self.connection.clone();
        ::redis::cmd("SET")
            .arg(self.keys.workflow(task_id))
            .arg(embed)
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .query_async::<()>(&mut connection)
            .await
            .map_err(redis_error("SET workflow"))
    }

    /// The workflow kept by [`RedisBroker::remember_workflow`], if any.
    pub async fn workflow(&self, task_id: &str) -> Result<Option<String>, BrokerError> {
        let mut connection = self.connection.clone();
        ::redis::cmd("GET")
            .arg(self.keys.workflow(task_id))
            .query_async(&mut connection)
            .await
            .map_err(redis_error("GET workflow"))
    }

    /// Publishes to a named direct exchange the way kombu does: the binding table
    /// `_kombu.binding.<exchange>` names the queue for `routing_key`. Returns false when no
    /// binding matches (kombu then drops the message; control replies rely on this routing).
    pub async fn publish_direct(
        &self,
        exchange: &str,
        routing_key: &str,
        raw: &str,
    ) -> Result<bool, BrokerError> {
        let mut connection = self.connection.clone();
        let members: Vec<String> = ::redis::cmd("SMEMBERS")
            .arg(self.keys.binding(exchange))
            .query_async(&mut connection)
            .await
            .map_err(redis_error("SMEMBERS binding"))?;
        let queue = members.iter().find_map(|member| {
            let mut parts = member.split(super::keys::SEP);
            let key = parts.next()?;
            let _pattern = parts.next()?;
            let queue = parts.next()?;
            (key == routing_key).then(|| queue.to_owned())
        });
        let Some(queue) = queue else { return Ok(false) };
        ::redis::cmd("LPUSH")
            .arg(self.keys.queue_bucket(&queue, 0))
            .arg(raw)
            .query_async::<i64>(&mut connection)
            .await
            .map_err(redis_error("LPUSH reply"))?;
        Ok(true)
    }

    /// Binds `queue` to `exchange` under `routing_key` in the binding table, as kombu does when
    /// a consumer declares a queue (`add_consumer` with an exchange).
    pub async fn bind_queue(
        &self,
        exchange: &str,
        routing_key: &str,
        queue: &str,
    ) -> Result<(), BrokerError> {
        let mut connection = self.connection.clone();
        ::redis::cmd("SADD")
            .arg(self.keys.binding(exchange))
            .arg(super::Keys::binding_member(routing_key, "", queue))
            .query_async::<i64>(&mut connection)
            .await
            .map_err(redis_error("SADD binding"))?;
        Ok(())
    }

    /// A PUB/SUB connection subscribed to fanout exchange `exchange` (routing key `""`), for
    /// broadcast control commands. Each call opens its own connection.
    pub async fn subscribe_fanout(
        &self,
        exchange: &str,
    ) -> Result<::redis::aio::PubSub, BrokerError> {
        let mut pubsub = self
            .connection
            .client()
            .get_async_pubsub()
            .await
            .map_err(redis_error("SUBSCRIBE"))?;
        pubsub
            .subscribe(self.keys.fanout_channel(exchange, ""))
            .await
            .map_err(redis_error("SUBSCRIBE"))?;
        Ok(pubsub)
    }

    /// Records task ids as revoked until `until` (epoch seconds), and forgets expired ones.
    pub async fn persist_revokes(
        &self,
        task_ids: &[String],
        until: f64,
    ) -> Result<(), BrokerError> {
        if task_ids.is_empty() {
            return Ok(());
        }
        let mut pipeline = ::redis::pipe();
        let command = pipeline.cmd("ZADD").arg(self.keys.revoked());
        for task_id in task_ids {
            command.arg(format!("{until:.3}")).arg(task_id);
        }
        command.ignore();
        pipeline
            .cmd("ZREMRANGEBYSCORE")
            .arg(self.keys.revoked())
            .arg("-inf")
            .arg(format!("{:.3}", crate::clock::epoch_now()))
            .ignore();
        let mut connection = self.connection.clone();
        pipeline
            .query_async::<()>(&mut connection)
            .await
            .map_err(redis_error("ZADD revoked"))
    }

    /// Every task id still revoked, with the epoch second its revoke expires.
    pub async fn revokes(&self) -> Result<Vec<(String, f64)>, BrokerError> {
        let mut connection = self.connection.clone();
        ::redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.revoked())
            .arg(format!("{:.3}", crate::clock::epoch_now()))
            .arg("+inf")
            .arg("WITHSCORES")
            .query_async(&mut connection)
            .await
            .map_err(redis_error("ZRANGEBYSCORE revoked"))
    }
}
