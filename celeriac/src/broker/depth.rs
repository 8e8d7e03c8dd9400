//! Queue depths for monitors: how many messages wait in each priority list of a queue, which
//! one has waited longest, and what is held unacked.
//!
//! What Redis can tell, and what it cannot:
//! - **Waiting messages**: `LLEN` of each priority list (`Q`, `Q\x06\x163`, …), exact.
//! - **Oldest waiting message**: the right end of each list (`LINDEX -1`) is the next one
//!   consumed and the longest waiting in that list. kombu's envelope and Celery's headers carry
//!   no publish time, so its *age* is not in Redis; we return its task id and name, and a
//!   monitor that receives `task-sent` events (`task_send_sent_event`) can look the sent time up
//!   in its [`crate::events::ClusterState`].
//! - **Unacked**: `HLEN unacked` is exact; `unacked_index` scores are delivery times, so the
//!   lowest is the oldest unacked delivery, exact. The `unacked` hash is shared by every queue,
//!   so counting per routing key needs reading the records (`HSCAN`), which is bounded by a limit
//!   and reported as partial when it stops early.

use super::redis::{redis_error, RedisBroker};
use super::BrokerError;
use crate::protocol::{Envelope, TaskMessage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One priority list of a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorityDepth {
    /// The priority step (0, 3, 6, 9 with kombu's defaults; 0 is served first).
    pub step: u8,
    /// Messages waiting in it.
    pub messages: u64,
    /// Task id of the message waiting longest (the next one consumed), when it decodes.
    pub oldest_task_id: Option<String>,
    /// Its task name.
    pub oldest_task_name: Option<String>,
}

/// Messages waiting in one queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueDepth {
    /// Queue name (without key prefix).
    pub queue: String,
    /// Messages waiting, all priorities.
    pub messages: u64,
    /// Per priority step, highest priority (lowest step) first.
    pub priorities: Vec<PriorityDepth>,
}

/// Messages delivered to consumers and not yet acked (all queues).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnackedDepth {
    /// Records in `unacked`.
    pub messages: u64,
    /// Delivery time of the oldest record (`unacked_index`'s lowest score).
    pub oldest_delivered_at: Option<DateTime<Utc>>,
    /// Records per routing key (the queue name on Celery's default exchanges), from the records
    /// scanned.
    pub by_routing_key: BTreeMap<String, u64>,
    /// Whether every record was scanned (false when the scan limit stopped it).
    pub complete: bool,
}

impl RedisBroker {
    /// Depth of each of `queues`, read in one round trip.
    pub async fn queue_depths(&self, queues: &[&str]) -> Result<Vec<QueueDepth>, BrokerError> {
        let steps = self.keys.priority_steps().to_vec();
        let mut pipeline = ::redis::pipe();
        for queue in queues {
            for step in &steps {
                let key = self.keys.queue_bucket(queue, *step);
                pipeline
                    .cmd("LLEN")
                    .arg(&key)
                    .cmd("LINDEX")
                    .arg(&key)
                    .arg(-1);
            }
        }
        let mut connection = self.connection.clone();
        let replies: Vec<(u64, Option<Vec<u8>>)> = pipeline
            .query_async::<Vec<::redis::Value>>(&mut connection)
            .await
            .map_err(redis_error("LLEN"))?
            .chunks(2)
            .map(|pair| {
                let length = match pair.first() {
                    Some(::redis::Value::Int(length)) => u64::try_from(*length).unwrap_or(0),
                    _ => 0,
                };
                let oldest = match pair.get(1) {
                    Some(::redis::Value::BulkString(bytes)) => Some(bytes.clone()),
                    _ => None,
                };
                (length, oldest)
            })
            .collect();
        let mut replies = replies.into_iter();
        let mut depths = Vec::with_capacity(queues.len());
        for queue in queues {
            let mut priorities = Vec::with_capacity(steps.len());
            for step in &steps {
                let (messages, oldest) = replies.next().unwrap_or((0, None));
                let headers = oldest
                    .and_then(|raw| Envelope::from_json(&raw).ok())
                    .and_then(|envelope| TaskMessage::decode(&envelope).ok())
                    .map(|message| message.headers);
                priorities.push(PriorityDepth {
                    step: *step,
                    messages,
                    oldest_task_id: headers.as_ref().map(|headers| headers.id.0.clone()),
                    oldest_task_name: headers.map(|headers| headers.task),
                });
            }
            depths.push(QueueDepth {
                queue: (*queue).to_owned(),
                messages: priorities.iter().map(|priority| priority.messages).sum(),
                priorities,
            });
        }
        Ok(depths)
    }

    /// The unacked records: count, oldest delivery, and per routing key from at most
    /// `scan_limit` records.
    pub async fn unacked_depth(&self, scan_limit: usize) -> Result<UnackedDepth, BrokerError> {
        let mut connection = self.connection.clone();
        let (messages, oldest): (u64, Vec<(String, f64)>) = ::redis::pipe()
            .cmd("HLEN")
            .arg(self.keys.unacked())
            .cmd("ZRANGE")
            .arg(self.keys.unacked_index())
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .query_async(&mut connection)
            .await
            .map_err(redis_error("HLEN unacked"))?;
        let mut by_routing_key = BTreeMap::new();
        let mut scanned = 0usize;
        let mut cursor: u64 = 0;
        let complete = loop {
            if scanned >= scan_limit && messages > 0 {
                break false;
            }
            let (next, entries): (u64, Vec<(String, Vec<u8>)>) = ::redis::cmd("HSCAN")
                .arg(self.keys.unacked())
                .arg(cursor)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut connection)
                .await
                .map_err(redis_error("HSCAN unacked"))?;
            for (_tag, record) in entries {
                scanned += 1;
                let routing_key =
                    serde_json::from_slice::<(serde::de::IgnoredAny, String, String)>(&record)
                        .map(|(_, _exchange, routing_key)| routing_key)
                        .unwrap_or_else(|_| "(malformed)".to_owned());
                *by_routing_key.entry(routing_key).or_insert(0) += 1;
            }
            if next == 0 {
                break true;
            }
            cursor = next;
        };
        let oldest_delivered_at = oldest.first().and_then(|(_, score)| {
            DateTime::from_timestamp_nanos((score * 1e9).round() as i64).into()
        });
        Ok(UnackedDepth {
            messages,
            oldest_delivered_at,
            by_routing_key,
            complete,
        })
    }
}
