//! Fetching: the one script that pops and records in `unacked` (with the acks of finished
//! tasks riding along), and the reclaim of a fetch whose reply was lost.

use super::keys::Keys;
use super::redis::{redis_error, RedisBroker, ACK_TAIL_BYTES};
use super::scripts::{FETCH, RECLAIM};
use super::{BrokerError, Delivery, Fetched};
use crate::clock;
use crate::failpoint;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

/// This consumer's fetch journal (`Keys::fetch_journal`): its key, unique to this process, and
/// the number of the last fetch that could hand something out.
#[derive(Debug)]
pub(super) struct FetchJournal {
    key: String,
    sequence: AtomicU64,
}

impl FetchJournal {
    pub(super) fn new(keys: &Keys) -> FetchJournal {
        FetchJournal {
            key: keys.fetch_journal(&uuid::Uuid::new_v4().simple().to_string()),
            sequence: AtomicU64::new(0),
        }
    }
}

impl RedisBroker {
    /// Takes up to `limit` messages from `queues` (in the given order within each priority
    /// step, highest priority first), recording each in `unacked` in the same atomic step.
    pub async fn fetch(
        &self,
        queues: &[String],
        limit: usize,
    ) -> Result<Vec<Fetched>, BrokerError> {
        self.fetch_and_ack(queues, limit, &[])
            .await
            .map(|(fetched, _)| fetched)
    }

    /// Acknowledges `acks` (each only while its record is still its own, as [`Self::ack`]) and
    /// then fetches, in one round trip. Returns what was fetched and how many acks were stale
    /// (the record had been restored and handed to another consumer).
    pub async fn fetch_and_ack(
        &self,
        queues: &[String],
        limit: usize,
        acks: &[Delivery],
    ) -> Result<(Vec<Fetched>, usize), BrokerError> {
        if (queues.is_empty() || limit == 0) && acks.is_empty() {
            return Ok((Vec::new(), 0));
        }
        if failpoint::active("fetch_non_atomic") {
            for delivery in acks {
                self.ack(delivery).await?;
            }
            return self
                .fetch_non_atomic(queues)
                .await
                .map(|fetched| (fetched, 0));
        }
        let max_deliveries = if failpoint::active("no_poison_limit") {
            0
        } else {
            self.options.max_deliveries
        };
        let any_owner = failpoint::active("ack_any_owner");
        let sequence = if limit > 0 {
            self.journal.sequence.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.journal.sequence.load(Ordering::Relaxed)
        };
        let mut invocation = FETCH.prepare_invoke();
        invocation
            .key(self.keys.unacked())
            .key(self.keys.unacked_index())
            .key(self.keys.dead_letter())
            .key(self.keys.deliveries())
            .key(&self.journal.key);
        invocation
            .arg(format!("{:.6}", clock::epoch_now()))
            .arg(limit)
            .arg(max_deliveries)
            .arg(acks.len())
            .arg(sequence)
            .arg(self.options.visibility_timeout.as_secs().max(1));
        for delivery in acks {
            let raw = delivery.raw.as_bytes();
            let tail = &raw[raw.len().saturating_sub(ACK_TAIL_BYTES)..];
            invocation.arg(&delivery.delivery_tag);
            if any_owner {
                invocation.arg(-1).arg("");
            } else {
                invocation.arg(raw.len()).arg(tail);
            }
        }
        for step in self.keys.priority_steps() {
            for queue in queues {
                invocation.key(self.keys.queue_bucket(queue, *step));
                invocation.arg(queue);
            }
        }
        let mut connection = self.connection.clone();
        let flat: Vec<Vec<u8>> = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(redis_error("fetch script"))?;
        let stale = flat
            .get(1)
            .and_then(|count| std::str::from_utf8(count).ok())
            .and_then(|count| count.parse().ok())
            .unwrap_or(0);
        let fetched = fetched_triples(flat.get(2..).unwrap_or_default());
        if failpoint::active("crash_after_fetch") && !fetched.is_empty() {
            tracing::error!("failpoint crash_after_fetch: aborting right after a fetch");
            std::process::abort();
        }
        Ok((fetched, stale))
    }

    /// Takes back what this consumer's last fetch handed out when that fetch failed: Redis may
    /// have run the script and lost only the reply (killed right after writing its append-only
    /// file, the connection cut), leaving the messages in `unacked` with nobody running them
    /// until the visibility timeout (an hour by default). Returns those deliveries, still as
    /// that fetch recorded them; none when the fetch never ran. Call it before the next fetch,
    /// which replaces the journal. The journal is this broker's and its clones': one consumer
    /// loop fetches through it (the worker connects a broker of its own); a second concurrent
    /// fetcher would have its fetches taken for this one's, so it must connect its own.
    pub async fn reclaim_lost_fetch(&self) -> Result<Vec<Fetched>, BrokerError> {
        let mut connection = self.connection.clone();
        let flat: Vec<Vec<u8>> = RECLAIM
            .key(&self.journal.key)
            .key(self.keys.unacked())
            .key(self.keys.unacked_index())
            .arg(self.journal.sequence.load(Ordering::Relaxed))
            .invoke_async(&mut connection)
            .await
            .map_err(redis_error("reclaim script"))?;
        Ok(fetched_triples(&flat))
    }

    /// kombu's way, kept only as a failpoint to prove the chaos tests can fail: pop, then
    /// record in a second step, with a crash in between when `crash_after_pop` is also active.
    async fn fetch_non_atomic(&self, queues: &[String]) -> Result<Vec<Fetched>, BrokerError> {
        let mut connection = self.connection.clone();
        for step in self.keys.priority_steps() {
            for queue in queues {
                let raw: Option<String> = ::redis::cmd("RPOP")
                    .arg(self.keys.queue_bucket(queue, *step))
                    .query_async(&mut connection)
                    .await
                    .map_err(redis_error("RPOP"))?;
                let Some(raw) = raw else { continue };
                if failpoint::active("crash_after_pop") {
                    tracing::error!("failpoint crash_after_pop: aborting between pop and record");
                    std::process::abort();
                }
                let envelope: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
                let tag = envelope["properties"]["delivery_tag"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let record = format!("[{raw}, \"\", {}]", Value::String(queue.clone()));
                let mut pipeline = ::redis::pipe();
                pipeline
                    .atomic()
                    .cmd("ZADD")
                    .arg(self.keys.unacked_index())
                    .arg(format!("{:.6}", clock::epoch_now()))
                    .arg(&tag)
                    .ignore()
                    .cmd("HSET")
                    .arg(self.keys.unacked())
                    .arg(&tag)
                    .arg(record)
                    .ignore();
                pipeline
                    .query_async::<()>(&mut connection)
                    .await
                    .map_err(redis_error("record"))?;
                let delivery = Delivery {
                    delivery_tag: tag,
                    queue: queue.clone(),
                    raw,
                };
                return Ok(vec![Fetched::Delivery(delivery)]);
            }
        }
        Ok(Vec::new())
    }
}

/// The `(tag, queue, raw)` triples the fetch scripts return; an empty tag marks a message the
/// script moved to the dead-letter list.
fn fetched_triples(flat: &[Vec<u8>]) -> Vec<Fetched> {
    flat.chunks_exact(3)
        .map(|triple| {
            let tag = String::from_utf8_lossy(&triple[0]).into_owned();
            let queue = String::from_utf8_lossy(&triple[1]).into_owned();
            let raw = String::from_utf8_lossy(&triple[2]).into_owned();
            if tag.is_empty() {
                Fetched::DeadLettered { queue, raw }
            } else {
                Fetched::Delivery(Delivery {
                    delivery_tag: tag,
                    queue,
                    raw,
                })
            }
        })
        .collect()
}
