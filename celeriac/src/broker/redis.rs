//! [`RedisBroker`]: publish, atomic fetch, ack, requeue, dead letters and the kombu-compatible
//! visibility-timeout restore.
//!
//! All commands go through one `Link` (redis-rs's multiplexed `ConnectionManager`, which
//! reconnects by itself after Redis restarts, pointed at the current master under Sentinel);
//! a command issued while Redis is down returns an error to the caller. Nothing here blocks on the server (no `BRPOP`): fetching is a script that pops and
//! records atomically, and the consumer waits between empty fetches.

use super::fetch::FetchJournal;
use super::keys::Keys;
use super::scripts::{ACK, DEAD_LETTER, RESTORE};
use super::{BrokerError, Delivery};
use crate::clock;
use crate::failpoint;
use crate::protocol::envelope::{clamp_priority, mark_redelivered};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Transport settings (Celery's `broker_transport_options`).
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// `global_keyprefix`: put in front of every key.
    pub global_keyprefix: String,
    /// Seconds before an unacked delivery may be restored by any consumer.
    pub visibility_timeout: Duration,
    /// kombu's `priority_steps`.
    pub priority_steps: Vec<u8>,
    /// How long the restore lock lives if its holder dies.
    pub unacked_mutex_expire: Duration,
    /// Deliveries without an ack before a message is dead-lettered as poison (0 = no limit).
    pub max_deliveries: u32,
    /// The namespace of beat's keys (`Config::beat_namespace`), so that separate setups on one
    /// Redis elect separate leaders; empty puts the keys directly under the prefix.
    pub beat_namespace: String,
    /// Keep trying to connect at start-up (`broker_connection_retry_on_startup`).
    pub connection_retry_on_startup: bool,
    /// Attempts at start-up before giving up; 0 tries forever (`broker_connection_max_retries`).
    pub connection_max_retries: u32,
    /// How long one connection attempt may take (`broker_connection_timeout`).
    pub connection_timeout: Duration,
    /// TLS options for a `rediss://` URL (`broker_use_ssl`).
    pub ssl: Option<super::RedisSsl>,
    /// A file holding the password, when the URL has none (`broker_password_file`).
    pub password_file: Option<std::path::PathBuf>,
    /// For a `sentinel://` URL: the master's name and the sentinels' password.
    pub sentinel: super::SentinelOptions,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            global_keyprefix: String::new(),
            visibility_timeout: Duration::from_secs(3600),
            priority_steps: vec![0, 3, 6, 9],
            unacked_mutex_expire: Duration::from_secs(300),
            max_deliveries: 3,
            beat_namespace: String::new(),
            connection_retry_on_startup: true,
            connection_max_retries: 100,
            connection_timeout: Duration::from_secs(4),
            ssl: None,
            password_file: None,
            sentinel: super::SentinelOptions::default(),
        }
    }
}

/// What one fetch handed out.
#[derive(Debug)]
pub enum Fetched {
    /// A message now recorded in `unacked`, to be acked, requeued or dead-lettered.
    Delivery(Delivery),
    /// A message that could not be tracked (no delivery tag, not JSON); the fetch script
    /// already moved it to the dead-letter list.
    DeadLettered {
        /// The queue it came from.
        queue: String,
        /// The raw text, for the log line.
        raw: String,
    },
}

/// One entry of the dead-letter list.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Why the message could not be processed.
    pub reason: String,
    /// The queue it came from.
    pub queue: Option<String>,
    /// The task id, when the message had one.
    pub task_id: Option<String>,
    /// The raw envelope.
    pub message: String,
}

/// kombu's Redis transport.
#[derive(Clone)]
pub struct RedisBroker {
    /// The connection to the (current) master; [`Link::client`](super::Link) for connections
    /// of their own.
    pub(super) connection: super::Link,
    pub(super) keys: Keys,
    pub(super) options: BrokerOptions,
    declared: Arc<Mutex<HashSet<String>>>,
    pub(super) journal: Arc<FetchJournal>,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RedisBroker")
            .field("keys", &self.keys)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A connection manager with timeouts suited to a queue: a reply may take a while under load
/// (redis-rs gives up after 500 ms by default, which turned busy moments into errors), a
/// connection attempt may not, and reconnects back off to at most 2 s so a restarted Redis is
/// picked up quickly.
pub(super) fn redis_error(
    command: &'static str,
) -> impl FnOnce(::redis::RedisError) -> BrokerError {
    move |source| BrokerError::Redis { command, source }
}

impl RedisBroker {
    /// Connects to the broker at `url` (`redis://host:port/db`, or `rediss://` with TLS),
    /// retrying at start-up as `options` say.
    pub async fn connect(url: &str, options: BrokerOptions) -> Result<RedisBroker, BrokerError> {
        let connection = super::connect::open_link(url, &options, "broker").await?;
        let database = ::redis::aio::ConnectionLike::get_db(&connection);
        let keys = Keys::new(
            options.global_keyprefix.clone(),
            options.priority_steps.clone(),
        )
        .with_database(database)
        .with_beat_namespace(options.beat_namespace.clone());
        let journal = Arc::new(FetchJournal::new(&keys));
        Ok(RedisBroker {
            connection,
            keys,
            options,
            declared: Arc::default(),
            journal,
        })
    }

    /// The key names this broker uses.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The transport options.
    pub fn options(&self) -> &BrokerOptions {
        &self.options
    }

    /// Declares `queue` as kombu does: a binding in `_kombu.binding.<queue>`. Not needed for
    /// delivery through the anonymous exchange, but Python tools list queues from it. Cached, so
    /// only the first publish to a queue pays for it.
    pub async fn declare_queue(&self, queue: &str) -> Result<(), BrokerError> {
        let first = self
            .declared
            .lock()
            .map(|mut set| set.insert(queue.to_owned()))
            .unwrap_or(true);
        if !first {
            return Ok(());
        }
        let member = Keys::binding_member(queue, "", queue);
        let mut connection = self.connection.clone();
        ::redis::cmd("SADD")
            .arg(self.keys.binding(queue))
            .arg(member)
            .query_async::<i64>(&mut connection)
            .await
            .map_err(redis_error("SADD binding"))?;
        Ok(())
    }

    /// Pushes one envelope to `queue`'s list for `priority`.
    pub async fn publish(&self, queue: &str, priority: u8, raw: &str) -> Result<(), BrokerError> {
        self.declare_queue(queue).await?;
        let mut connection = self.connection.clone();
        ::redis::cmd("LPUSH")
            .arg(self.keys.queue_for_priority(queue, priority))
            .arg(raw)
            .query_async::<i64>(&mut connection)
            .await
            .map_err(redis_error("LPUSH"))?;
        Ok(())
    }

    /// Pushes many envelopes in one round trip (one `MULTI`): all or none are enqueued.
    pub async fn publish_many(&self, messages: &[(String, u8, String)]) -> Result<(), BrokerError> {
        if messages.is_empty() {
            return Ok(());
        }
        let queues: HashSet<&str> = messages
            .iter()
            .map(|(queue, _, _)| queue.as_str())
            .collect();
        for queue in queues {
            self.declare_queue(queue).await?;
        }
        // One variadic LPUSH per run of messages bound for the same list keeps their order
        // and saves Redis a command per message.
        let mut pipeline = ::redis::pipe();
        pipeline.atomic();
        let mut index = 0;
        while index < messages.len() {
            let key = self
                .keys
                .queue_for_priority(&messages[index].0, messages[index].1);
            let command = pipeline.cmd("LPUSH").arg(&key);
            while index < messages.len()
                && self
                    .keys
                    .queue_for_priority(&messages[index].0, messages[index].1)
                    == key
            {
                command.arg(&messages[index].2);
                index += 1;
            }
            command.ignore();
        }
        let mut connection = self.connection.clone();
        pipeline
            .query_async::<()>(&mut connection)
            .await
            .map_err(redis_error("LPUSH batch"))?;
        Ok(())
    }

    /// Acknowledges a delivery (kombu's `basic_ack`): deletes its in-flight record, but only
    /// while the record is still this delivery's. Returns false when it was not: already
    /// settled, or restored and taken by another consumer while this one was frozen.
    pub async fn ack(&self, delivery: &Delivery) -> Result<bool, BrokerError> {
        let expected = if failpoint::active("ack_any_owner") {
            ""
        } else {
            delivery.raw.as_str()
        };
        let mut connection = self.connection.clone();
        let acked: i64 = ACK
            .key(self.keys.unacked())
            .key(self.keys.unacked_index())
            .key(self.keys.deliveries())
            .arg(&delivery.delivery_tag)
            .arg(expected)
            .arg("envelope")
            .invoke_async(&mut connection)
            .await
            .map_err(redis_error("ack script"))?;
        Ok(acked == 1)
    }

    /// True while the in-flight record of `delivery` is still this delivery's (see [`Self::ack`]).
    pub async fn holds(&self, delivery: &Delivery) -> Result<bool, BrokerError> {
        let mut connection = self.connection.clone();
        let record: Option<String> = ::redis::cmd("HGET")
            .arg(self.keys.unacked())
            .arg(&delivery.delivery_tag)
            .query_async(&mut connection)
            .await
            .map_err(redis_error("HGET unacked"))?;
        Ok(record.is_some_and(|record| {
            record.len() > delivery.raw.len() && record[1..].starts_with(delivery.raw.as_str())
        }))
    }

    /// The server's `maxmemory-policy` when it is anything but `noeviction`: with eviction,
    /// Redis silently deletes queued messages under memory pressure. None when the policy is
    /// safe or cannot be read (managed Redis often disables `CONFIG`).
    pub async fn unsafe_eviction_policy(&self) -> Option<String> {
        let mut connection = self.connection.clone();
        let reply: Vec<String> = ::redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut connection)
            .await
            .ok()?;
        let policy = reply.get(1)?.clone();
        (policy != "noeviction").then_some(policy)
    }

    /// `used_memory` and `maxmemory` (0: no limit) from `INFO memory`, in bytes: how close a
    /// `noeviction` Redis is to refusing new tasks and results. None when they cannot be read.
    pub async fn memory(&self) -> Option<(u64, u64)> {
        let mut connection = self.connection.clone();
        let info: String = ::redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut connection)
            .await
            .ok()?;
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|value| value.trim().parse::<u64>().ok())
        };
        Some((field("used_memory")?, field("maxmemory")?))
    }

    /// Puts a delivery back in its queue. `restore = true` is kombu's restore (consuming end,
    /// flagged `redelivered`, delivered next); `false` is `reject(requeue=True)` (back of the
    /// queue, unchanged). Returns false when the record was already gone (acked or restored by
    /// someone else), in which case nothing is pushed.
    pub async fn requeue(&self, delivery: &Delivery, restore: bool) -> Result<bool, BrokerError> {
        let expected = Expected::Envelope(&delivery.raw);
        let (raw, priority) = match serde_json::from_str::<Value>(&delivery.raw) {
            Ok(mut envelope) => {
                let priority = envelope_priority(&envelope);
                if restore {
                    mark_redelivered(&mut envelope);
                }
                (envelope.to_string(), priority)
            }
            Err(_) => (delivery.raw.clone(), 0),
        };
        let destination = self.keys.queue_for_priority(&delivery.queue, priority);
        self.move_record(
            &delivery.delivery_tag,
            expected,
            &raw,
            &destination,
            restore,
            true,
        )
        .await
        .map(|moved| moved == 1)
    }

    pub(super) async fn move_record(
        &self,
        delivery_tag: &str,
        expected: Expected<'_>,
        raw: &str,
        destination: &str,
        restore: bool,
        graceful: bool,
    ) -> Result<i64, BrokerError> {
        let mut connection = self.connection.clone();
        let (expected, mode) = expected.arguments();
        RESTORE
            .key(self.keys.unacked())
            .key(self.keys.unacked_index())
            .key(destination)
            .key(self.keys.deliveries())
            .arg(delivery_tag)
            .arg(expected)
            .arg(mode)
            .arg(raw)
            .arg(if restore { "R" } else { "L" })
            .arg(if graceful { "graceful" } else { "crash" })
            .invoke_async(&mut connection)
            .await
            .map_err(redis_error("restore script"))
    }

    /// Moves a delivery to the dead-letter list with `reason`, atomically with removing its
    /// in-flight record, so the message is never in neither place.
    pub async fn dead_letter(
        &self,
        delivery: &Delivery,
        reason: &str,
        task_id: Option<&str>,
    ) -> Result<(), BrokerError> {
        self.dead_letter_record(delivery, Expected::Envelope(&delivery.raw), reason, task_id)
            .await
    }

    pub(super) async fn dead_letter_record(
        &self,
        delivery: &Delivery,
        expected: Expected<'_>,
        reason: &str,
        task_id: Option<&str>,
    ) -> Result<(), BrokerError> {
        let (expected, mode) = expected.arguments();
        let entry = json!({
            "reason": reason,
            "queue": delivery.queue,
            "task_id": task_id,
            "dead_lettered_at": clock::epoch_now(),
            "message": delivery.raw,
        });
        let mut connection = self.connection.clone();
        DEAD_LETTER
            .key(self.keys.unacked())
            .key(self.keys.unacked_index())
            .key(self.keys.dead_letter())
            .key(self.keys.deliveries())
            .arg(&delivery.delivery_tag)
            .arg(expected)
            .arg(mode)
            .arg(entry.to_string())
            .invoke_async::<i64>(&mut connection)
            .await
            .map_err(redis_error("dead-letter script"))?;
        Ok(())
    }

    /// The dead-letter list, newest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, BrokerError> {
        let mut connection = self.connection.clone();
        // Bytes, not `String`: one entry that is not UTF-8 (written by anyone with access to
        // the list) made the whole listing fail; it is shown with its bytes escaped instead.
        let entries: Vec<Vec<u8>> = ::redis::cmd("LRANGE")
            .arg(self.keys.dead_letter())
            .arg(0)
            .arg(-1)
            .query_async(&mut connection)
            .await
            .map_err(redis_error("LRANGE dead letters"))?;
        Ok(entries
            .into_iter()
            .map(|bytes| match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(not_utf8) => not_utf8.as_bytes().escape_ascii().to_string(),
            })
            .map(|entry| match serde_json::from_str::<Value>(&entry) {
                Ok(value) => DeadLetter {
                    reason: value["reason"].as_str().unwrap_or_default().to_owned(),
                    queue: value["queue"].as_str().map(str::to_owned),
                    task_id: value["task_id"].as_str().map(str::to_owned),
                    message: value["message"].as_str().unwrap_or_default().to_owned(),
                },
                Err(_) => DeadLetter {
                    reason: "unreadable dead-letter entry".to_owned(),
                    queue: None,
                    task_id: None,
                    message: entry,
                },
            })
            .collect())
    }

    /// Moves the delivery time of live deliveries to now, so the restore sweep of any consumer
    /// does not hand them to another worker while this one still holds them (long-running
    /// `acks_late` tasks and held ETA tasks, the duplicate pitfall of wire doc §8.2). Only
    /// existing entries are touched (`XX`): an acked tag is not brought back.
    pub async fn refresh(&self, delivery_tags: &[String]) -> Result<(), BrokerError> {
        if delivery_tags.is_empty() || failpoint::active("no_refresh") {
            return Ok(());
        }
        let now = format!("{:.6}", clock::epoch_now());
        let mut pipeline = ::redis::pipe();
        for chunk in delivery_tags.chunks(500) {
            let command = pipeline
                .cmd("ZADD")
                .arg(self.keys.unacked_index())
                .arg("XX");
            for tag in chunk {
                command.arg(&now).arg(tag);
            }
            command.ignore();
        }
        let mut connection = self.connection.clone();
        pipeline
            .query_async::<()>(&mut connection)
            .await
            .map_err(redis_error("ZADD XX refresh"))
    }

    /// Number of messages waiting in `queue`, all priority lists together.
    pub async fn queue_length(&self, queue: &str) -> Result<u64, BrokerError> {
        let mut pipeline = ::redis::pipe();
        for bucket in self.keys.queue_buckets(queue) {
            pipeline.cmd("LLEN").arg(bucket);
        }
        let mut connection = self.connection.clone();
        let lengths: Vec<u64> = pipeline
            .query_async(&mut connection)
            .await
            .map_err(redis_error("LLEN"))?;
        Ok(lengths.iter().sum())
    }

    /// Number of deliveries recorded in `unacked`.
    pub async fn unacked_count(&self) -> Result<u64, BrokerError> {
        let mut connection = self.connection.clone();
        ::redis::cmd("HLEN")
            .arg(self.keys.unacked())
            .query_async(&mut connection)
            .await
            .map_err(redis_error("HLEN unacked"))
    }

    /// Deletes every waiting message of `queue` (`celery purge`). Returns how many.
    pub async fn purge(&self, queue: &str) -> Result<u64, BrokerError> {
        let waiting = self.queue_length(queue).await?;
        let mut pipeline = ::redis::pipe();
        pipeline.atomic();
        for bucket in self.keys.queue_buckets(queue) {
            pipeline.cmd("DEL").arg(bucket).ignore();
        }
        let mut connection = self.connection.clone();
        pipeline
            .query_async::<()>(&mut connection)
            .await
            .map_err(redis_error("DEL queue"))?;
        Ok(waiting)
    }
}

/// How much of the end of an envelope a batched ack sends: the properties, with the delivery
/// tag and `delivery_info`, which a restore rewrites.
pub(super) const ACK_TAIL_BYTES: usize = 160;

/// What a settle script checks the in-flight record against before touching it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Expected<'a> {
    /// The envelope this consumer fetched (the record starts with it).
    Envelope(&'a str),
    /// The whole record, as the visibility sweep read it.
    Record(&'a str),
}

impl<'a> Expected<'a> {
    fn arguments(self) -> (&'a str, &'static str) {
        match self {
            Expected::Envelope(raw) => (raw, "envelope"),
            Expected::Record(record) => (record, "record"),
        }
    }
}

pub(super) fn envelope_priority(envelope: &Value) -> u8 {
    clamp_priority(
        envelope
            .get("properties")
            .and_then(|properties| properties.get("priority"))
            .and_then(Value::as_i64),
    )
}
