//! The two Redis primitives that let any number of beat processes run without double firing:
//! a fenced leader lease, and a per-schedule claim of the latest enqueued slot.
//!
//! The lease alone is not enough: a leader frozen past its lease (SIGSTOP, a long GC-like
//! pause, a partition) wakes up believing it still leads, and a new leader that takes over
//! right after an enqueue, before the schedule's `last_run_at` reached the database, would
//! compute the same slot again. So every firing is one script that checks, atomically with
//! the push, that the caller's exact lease value is still current (fencing) and that no
//! equal or later slot of the schedule was enqueued before (the claim). The claims are one
//! hash field per schedule, so their memory is bounded by the number of schedules, not by
//! the number of firings.
//!
//! The lease, the fence, the claims and the change channel live under the setup's beat
//! namespace (`Config::beat_namespace`, derived from `database_url` unless set): two separate
//! setups on one Redis, each with its own schedules, elect one leader each instead of one
//! between them, and a schedule of one never looks claimed to the other.

use super::redis::{redis_error, RedisBroker};
use super::scripts::{BEAT_FIRE, BEAT_LEASE, RELEASE_LOCK};
use super::BrokerError;
use std::time::Duration;

/// Firings per script call: big enough that the per-call cost vanishes, small enough that one
/// call does not block Redis for long (about a millisecond).
const FIRE_CHUNK: usize = 500;

/// What the lease script answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseState {
    /// True when the caller holds the lease now.
    pub held: bool,
    /// The current lease value `<token>|<owner>` (the caller's when `held`).
    pub value: String,
}

impl LeaseState {
    /// The fencing token: grows with every new lease, so successors compare greater.
    pub fn token(&self) -> u64 {
        self.value
            .split_once('|')
            .and_then(|(token, _)| token.parse().ok())
            .unwrap_or(0)
    }

    /// The node that holds the lease.
    pub fn owner(&self) -> &str {
        self.value
            .split_once('|')
            .map(|(_, owner)| owner)
            .unwrap_or("")
    }
}

/// The current leader, as anyone may read it (dashboard, `celeriac beat status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// The lease value's owner part.
    pub owner: String,
    /// The fencing token.
    pub token: u64,
    /// How long the lease lasts unless renewed.
    pub remaining: Duration,
}

/// One firing to enqueue under the lease.
#[derive(Debug, Clone)]
pub struct SlotFire {
    /// The schedule's unique name.
    pub schedule: String,
    /// The slot: the instant the schedule was due, epoch milliseconds.
    pub slot_ms: i64,
    /// The queue and priority the message goes to.
    pub queue: String,
    /// Priority 0-255 as the message says; mapped to a kombu priority step.
    pub priority: u8,
    /// The kombu envelope JSON.
    pub raw: String,
}

/// What became of one [`SlotFire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireOutcome {
    /// Enqueued now.
    Enqueued,
    /// Not enqueued: this slot or a later one of the schedule was enqueued before (the epoch-ms
    /// slot that was).
    AlreadyClaimed(i64),
    /// Not enqueued: the lease is not the caller's any more.
    NotLeader,
}

impl RedisBroker {
    /// Takes the beat lease if it is free, or renews it if `held` is the current value.
    /// `held` is the value from the caller's last successful call (empty when it has none).
    pub async fn beat_lease(
        &self,
        owner: &str,
        ttl: Duration,
        held: &str,
    ) -> Result<LeaseState, BrokerError> {
        let mut connection = self.connection.clone();
        let (held_now, value): (i64, String) = BEAT_LEASE
            .key(self.keys.beat_leader())
            .key(self.keys.beat_fence())
            .arg(owner)
            .arg(ttl.as_millis().max(1) as u64)
            .arg(held)
            .invoke_async(&mut connection)
            .await
            .map_err(redis_error("beat lease script"))?;
        Ok(LeaseState {
            held: held_now == 1,
            value,
        })
    }

    /// Gives the lease up (at shutdown) so another beat takes over at its next tick rather
    /// than after the TTL. Does nothing if the lease is no longer `held`.
    pub async fn beat_release(&self, held: &str) -> Result<(), BrokerError> {
        let mut connection = self.connection.clone();
        RELEASE_LOCK
            .key(self.keys.beat_leader())
            .arg(held)
            .invoke_async::<i64>(&mut connection)
            .await
            .map_err(redis_error("beat release script"))?;
        Ok(())
    }

    /// The current leader, if any beat holds the lease.
    pub async fn beat_leader(&self) -> Result<Option<LeaderInfo>, BrokerError> {
        let mut connection = self.connection.clone();
        let (value, remaining_ms): (Option<String>, i64) = ::redis::pipe()
            .cmd("GET")
            .arg(self.keys.beat_leader())
            .cmd("PTTL")
            .arg(self.keys.beat_leader())
            .query_async(&mut connection)
            .await
            .map_err(redis_error("GET beat leader"))?;
        Ok(value.map(|value| {
            let state = LeaseState { held: false, value };
            LeaderInfo {
                owner: state.owner().to_owned(),
                token: state.token(),
                remaining: Duration::from_millis(remaining_ms.max(0) as u64),
            }
        }))
    }

    /// Enqueues firings under the lease `held`, in one round trip; outcomes in input order.
    /// With `enforce_claims` false (only the `beat_no_claim` failpoint does that) a slot may
    /// be enqueued twice, which the chaos test must detect.
    pub async fn beat_fire(
        &self,
        held: &str,
        fires: &[SlotFire],
        enforce_claims: bool,
    ) -> Result<Vec<FireOutcome>, BrokerError> {
        if fires.is_empty() {
            return Ok(Vec::new());
        }
        let mut queues: Vec<&str> = fires.iter().map(|fire| fire.queue.as_str()).collect();
        queues.sort_unstable();
        queues.dedup();
        for queue in queues {
            self.declare_queue(queue).await?;
        }
        let mut pipe = ::redis::pipe();
        pipe.load_script(&BEAT_FIRE).ignore();
        let enforce = if enforce_claims { "1" } else { "0" };
        for chunk in fires.chunks(FIRE_CHUNK) {
            let mut invocation = BEAT_FIRE.key(self.keys.beat_leader());
            invocation.key(self.keys.beat_claims());
            invocation.arg(held).arg(enforce);
            for fire in chunk {
                invocation
                    .key(self.keys.queue_for_priority(&fire.queue, fire.priority))
                    .arg(&fire.schedule)
                    .arg(fire.slot_ms)
                    .arg(&fire.raw);
            }
            pipe.invoke_script(&invocation);
        }
        let mut connection = self.connection.clone();
        let replies: Vec<Vec<String>> = pipe
            .query_async(&mut connection)
            .await
            .map_err(redis_error("beat fire script"))?;
        let mut outcomes = Vec::with_capacity(fires.len());
        for (chunk, reply) in fires.chunks(FIRE_CHUNK).zip(replies) {
            if reply.len() < 2 * chunk.len() {
                // `{-1}`: the lease is not ours; nothing of this batch was pushed.
                outcomes.extend(chunk.iter().map(|_| FireOutcome::NotLeader));
                continue;
            }
            outcomes.extend(reply.chunks(2).map(|pair| match pair[0].as_str() {
                "1" => FireOutcome::Enqueued,
                _ => FireOutcome::AlreadyClaimed(pair[1].parse().unwrap_or(i64::MAX)),
            }));
        }
        Ok(outcomes)
    }

    /// The latest enqueued slot (epoch ms) per schedule, to repair `last_run_at` after a
    /// leader died between the enqueue and the database update.
    pub async fn beat_claims(&self) -> Result<Vec<(String, i64)>, BrokerError> {
        let mut connection = self.connection.clone();
        let claims: Vec<(String, String)> = ::redis::cmd("HGETALL")
            .arg(self.keys.beat_claims())
            .query_async(&mut connection)
            .await
            .map_err(redis_error("HGETALL beat claims"))?;
        Ok(claims
            .into_iter()
            .filter_map(|(name, slot)| Some((name, slot.parse().ok()?)))
            .collect())
    }

    /// Forgets a deleted schedule's claim.
    pub async fn beat_forget(&self, schedule: &str) -> Result<(), BrokerError> {
        let mut connection = self.connection.clone();
        ::redis::cmd("HDEL")
            .arg(self.keys.beat_claims())
            .arg(schedule)
            .query_async::<i64>(&mut connection)
            .await
            .map_err(redis_error("HDEL beat claim"))?;
        Ok(())
    }

    /// Announces that schedules changed, so every beat resyncs now instead of at its next
    /// periodic resync.
    pub async fn beat_announce_change(&self) -> Result<(), BrokerError> {
        let mut connection = self.connection.clone();
        ::redis::cmd("PUBLISH")
            .arg(self.keys.beat_changes())
            .arg("1")
            .query_async::<i64>(&mut connection)
            .await
            .map_err(redis_error("PUBLISH beat change"))?;
        Ok(())
    }

    /// A subscription to schedule-change announcements.
    pub async fn subscribe_beat_changes(&self) -> Result<::redis::aio::PubSub, BrokerError> {
        let mut pubsub = self
            .connection
            .client()
            .get_async_pubsub()
            .await
            .map_err(redis_error("SUBSCRIBE"))?;
        pubsub
            .subscribe(self.keys.beat_changes())
            .await
            .map_err(redis_error("SUBSCRIBE"))?;
        Ok(pubsub)
    }
}
