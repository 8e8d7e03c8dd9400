//! The beat process: keeps every schedule in memory ordered by its next slot, holds or waits
//! for the leader lease, and sends due tasks.
//!
//! Any number of beats may run on one database and one Redis. Each tick (at most
//! `beat_max_loop_interval`, sooner when a slot is due or an edit is announced) a beat:
//!
//! 1. takes or renews the lease ([`RedisBroker::beat_lease`]); a beat that just became leader
//!    reloads every entry (the old leader's bookkeeping is in the database, not in this
//!    process) and repairs `last_run_at` from the Redis claims, which are ahead when the old
//!    leader died between the enqueue and the database write;
//! 2. applies the database changes since its watermark (edits through any path, see `store`),
//!    and every `beat_sync_every` re-reads a lagged watermark, which covers PostgreSQL commits
//!    that land out of version order;
//! 3. as leader, pops the due entries, asks `due::plan` what to send, and sends the batch in
//!    one round trip of fenced, claimed pushes ([`RedisBroker::beat_fire`]); a slot that was
//!    claimed before is not sent again, a lost lease sends nothing.
//!
//! Followers do the same bookkeeping minus the sending, so a handover takes at most the lease
//! timeout plus one tick.

use super::due::{plan, CatchUp};
use super::store::{RunOutcome, RunRecord, ScheduleStore, StoreError, StoredTask};
use super::PeriodicTask;
use crate::broker::{BrokerError, FireOutcome, RedisBroker, SlotFire};
use crate::clock;
use crate::producer::{Producer, SendOptions};
use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::time::Duration;

/// The header Celery's beat puts on every message it sends.
pub const PERIODIC_TASK_NAME_HEADER: &str = "periodic_task_name";

/// Our header naming the slot (ISO 8601) a message was sent for, so a run can be traced back
/// to its schedule time and duplicates are visible; Python workers ignore it.
pub const BEAT_SLOT_HEADER: &str = "celeriac_beat_slot";

/// How a beat runs.
#[derive(Debug, Clone)]
pub struct BeatOptions {
    /// This beat's name in the lease (`beat@host`).
    pub node_name: String,
    /// How long the lease lasts without renewal: the failover time, less one tick.
    pub lease_timeout: Duration,
    /// The longest sleep between ticks (Celery's `beat_max_loop_interval`).
    pub max_loop_interval: Duration,
    /// How often the lagged full resync runs.
    pub sync_every: Duration,
    /// The downtime policy.
    pub catch_up: CatchUp,
    /// Sends later than this after their slot count as late (and, with
    /// [`CatchUp::Skip`], slots older than this are skipped).
    pub late_after: Duration,
}

impl Default for BeatOptions {
    fn default() -> Self {
        BeatOptions {
            node_name: "beat@localhost".into(),
            lease_timeout: Duration::from_secs(6),
            max_loop_interval: Duration::from_secs(1),
            sync_every: Duration::from_secs(5),
            catch_up: CatchUp::Once,
            late_after: Duration::from_secs(2),
        }
    }
}

/// Why beat stopped.
#[derive(Debug, thiserror::Error)]
pub enum BeatError {
    /// The schedule store failed at start.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Redis failed at start.
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// One schedule as the scheduler tracks it.
#[derive(Debug)]
struct Entry {
    stored: StoredTask,
    /// Bumped on every reload, so heap items of an older definition are ignored.
    generation: u64,
}

/// A running beat.
#[derive(Debug)]
pub struct Beat {
    store: ScheduleStore,
    producer: Producer,
    options: BeatOptions,
    entries: HashMap<String, Entry>,
    /// (next slot in epoch ms, name, generation), soonest first.
    due: BinaryHeap<Reverse<(i64, String, u64)>>,
    generation: u64,
    watermark: i64,
    lagged_watermark: i64,
    last_sync: DateTime<Utc>,
    /// The lease value while leader, empty otherwise.
    held: String,
    /// Counters for logs and tests.
    pub stats: BeatStats,
}

/// What this beat did, for logs, `celeriac beat` output and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BeatStats {
    /// Slots sent by this beat.
    pub sent: u64,
    /// Slots found already sent by another beat.
    pub already_sent: u64,
    /// Slots missed (downtime) or skipped.
    pub missed: u64,
    /// Times this beat became leader.
    pub elections: u64,
}

impl Beat {
    /// A beat over `store` sending through `producer`.
    pub async fn new(
        store: ScheduleStore,
        producer: Producer,
        options: BeatOptions,
    ) -> Result<Beat, BeatError> {
        let mut beat = Beat {
            store,
            producer,
            options,
            entries: HashMap::new(),
            due: BinaryHeap::new(),
            generation: 0,
            watermark: 0,
            lagged_watermark: 0,
            last_sync: clock::now(),
            held: String::new(),
            stats: BeatStats::default(),
        };
        beat.reload().await?;
        Ok(beat)
    }

    /// Whether this beat holds the lease.
    pub fn is_leader(&self) -> bool {
        !self.held.is_empty()
    }

    /// Runs until `shutdown` resolves, then gives the lease up so a peer takes over at once.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<BeatStats, BeatError> {
        let broker = self.producer.broker().clone();
        let mut changes = match broker.subscribe_beat_changes().await {
            Ok(pubsub) => Some(pubsub.into_on_message()),
            Err(error) => {
                tracing::warn!(%error, "no change announcements; edits apply at the next tick");
                None
            }
        };
        tokio::pin!(shutdown);
        loop {
            self.tick().await;
            let sleep = self.sleep_time();
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(sleep) => {}
                Some(_) = next_change(&mut changes) => {}
            }
        }
        if self.is_leader() {
            if let Err(error) = broker.beat_release(&self.held).await {
                tracing::warn!(%error, "could not release the beat lease");
            }
        }
        tracing::info!(node = %self.options.node_name, stats = ?self.stats, "beat stopped");
        Ok(self.stats)
    }

    /// One round: lease, sync, send. Errors are logged and retried next tick: beat never
    /// stops for a passing Redis or database failure.
    pub async fn tick(&mut self) {
        let broker = self.producer.broker().clone();
        let was_leader = self.is_leader();
        match broker
            .beat_lease(
                &self.options.node_name,
                self.options.lease_timeout,
                &self.held,
            )
            .await
        {
            Ok(lease) if lease.held => self.held = lease.value,
            Ok(_) => self.held.clear(),
            Err(error) => {
                tracing::warn!(%error, "beat lease check failed");
                self.held.clear();
            }
        }
        if self.is_leader() && !was_leader {
            self.stats.elections += 1;
            tracing::info!(node = %self.options.node_name, lease = %self.held, "beat is leader");
            if let Err(error) = self.take_over(&broker).await {
                tracing::warn!(%error, "beat could not load its schedules; not sending yet");
                self.held.clear();
                return;
            }
        } else if was_leader && !self.is_leader() {
            tracing::warn!(node = %self.options.node_name, "beat lost the lease");
        }
        if let Err(error) = self.sync().await {
            tracing::warn!(%error, "beat could not read schedule changes");
        }
        if self.is_leader() {
            self.send_due(&broker).await;
        }
    }

    /// How long to sleep: until the next slot, at most one loop interval, and short enough to
    /// renew the lease in time.
    fn sleep_time(&self) -> Duration {
        let cap = self
            .options
            .max_loop_interval
            .min(self.options.lease_timeout / 3);
        if !self.is_leader() {
            return cap;
        }
        match self.due.peek() {
            Some(Reverse((due_ms, _, _))) => {
                let wait = due_ms - clock::now().timestamp_millis();
                Duration::from_millis(wait.max(0) as u64).min(cap)
            }
            None => cap,
        }
    }

    async fn take_over(&mut self, broker: &RedisBroker) -> Result<(), BeatError> {
        self.reload().await?;
        let now = clock::now();
        let mut repairs = Vec::new();
        for (name, slot_ms) in broker.beat_claims().await? {
            let Some(entry) = self.entries.get(&name) else {
                continue;
            };
            let Some(slot) = DateTime::<Utc>::from_timestamp_millis(slot_ms) else {
                continue;
            };
            if entry.stored.task.last_run_at.is_none_or(|last| last < slot) {
                repairs.push(RunRecord {
                    name,
                    slot,
                    sent_at: now,
                    task_id: None,
                    outcome: RunOutcome::AlreadySent,
                    missed: 0,
                    late: false,
                    disable: entry.stored.task.one_off,
                });
            }
        }
        if !repairs.is_empty() {
            tracing::info!(count = repairs.len(), "repairing last_run_at from claims");
            self.store.record_runs(&repairs).await?;
            self.stats.already_sent += repairs.len() as u64;
            for run in &repairs {
                self.settle(run);
            }
        }
        Ok(())
    }

    /// Reads every entry afresh.
    async fn reload(&mut self) -> Result<(), StoreError> {
        let all = self.store.list().await?;
        self.entries.clear();
        self.due.clear();
        let mut watermark = 0;
        for stored in all {
            watermark = watermark.max(stored.version);
            self.put(stored);
        }
        self.watermark = self.watermark.max(watermark);
        self.lagged_watermark = self.watermark;
        self.last_sync = clock::now();
        Ok(())
    }

    async fn sync(&mut self) -> Result<(), StoreError> {
        let now = clock::now();
        let lagged = now - self.last_sync >= delta(self.options.sync_every);
        let from = if lagged {
            self.lagged_watermark
        } else {
            self.watermark
        };
        let changes = self.store.changes_since(from).await?;
        if lagged {
            self.lagged_watermark = self.watermark;
            self.last_sync = now;
        }
        for name in changes.deleted {
            if self.entries.remove(&name).is_some() {
                tracing::info!(schedule = %name, "schedule deleted");
            }
        }
        for stored in changes.upserted {
            let unchanged = self
                .entries
                .get(&stored.task.name)
                .is_some_and(|entry| entry.stored.version == stored.version);
            if !unchanged {
                tracing::debug!(schedule = %stored.task.name, version = stored.version, "schedule loaded");
                self.put(stored);
            }
        }
        self.watermark = self.watermark.max(changes.version);
        Ok(())
    }

    /// Tracks `stored`, replacing what was tracked under its name.
    fn put(&mut self, stored: StoredTask) {
        self.generation += 1;
        let generation = self.generation;
        let name = stored.task.name.clone();
        self.entries
            .insert(name.clone(), Entry { stored, generation });
        self.schedule(&name);
    }

    /// Pushes the entry's next slot onto the heap.
    fn schedule(&mut self, name: &str) {
        let Some(entry) = self.entries.get(name) else {
            return;
        };
        let now = clock::now();
        let next = plan(
            &entry.stored.task,
            entry.stored.anchor_at,
            now,
            self.options.catch_up,
            delta(self.options.late_after),
        );
        let at = match (next.fire, next.next) {
            (Some(_), _) => Some(now),
            (None, Some(next)) => Some(next),
            (None, None) if next.missed > 0 => Some(now),
            (None, None) => None,
        };
        if let Some(at) = at {
            self.due.push(Reverse((
                at.timestamp_millis(),
                name.to_owned(),
                entry.generation,
            )));
        }
    }

    async fn send_due(&mut self, broker: &RedisBroker) {
        let now = clock::now();
        let mut fires = Vec::new();
        let mut records = Vec::new();
        while let Some(Reverse((due_ms, _, _))) = self.due.peek() {
            if *due_ms > now.timestamp_millis() {
                break;
            }
            let Some(Reverse((_, name, generation))) = self.due.pop() else {
                break;
            };
            let Some(entry) = self.entries.get(&name) else {
                continue;
            };
            if entry.generation != generation {
                continue;
            }
            let decision = plan(
                &entry.stored.task,
                entry.stored.anchor_at,
                now,
                self.options.catch_up,
                delta(self.options.late_after),
            );
            let Some(slot) = decision.settled else {
                self.schedule(&name);
                continue;
            };
            let late = now - slot > delta(self.options.late_after);
            let record = RunRecord {
                name: name.clone(),
                slot,
                sent_at: now,
                task_id: None,
                outcome: RunOutcome::Skipped,
                missed: decision.missed,
                late,
                disable: entry.stored.task.one_off && decision.fire.is_some(),
            };
            match decision.fire {
                Some(_) => match self.message(&entry.stored.task, slot) {
                    Ok((fire, task_id)) => {
                        fires.push(fire);
                        records.push(RunRecord {
                            task_id: Some(task_id),
                            outcome: RunOutcome::Sent,
                            ..record
                        });
                    }
                    Err(error) => {
                        tracing::error!(schedule = %name, %error, "cannot build the periodic task's message; skipping the slot");
                        records.push(record);
                    }
                },
                None => records.push(record),
            }
        }
        if records.is_empty() {
            return;
        }
        let enforce = !crate::failpoint::active("beat_no_claim");
        let outcomes = match broker.beat_fire(&self.held, &fires, enforce).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                tracing::warn!(%error, count = fires.len(), "beat could not send; retrying next tick");
                self.requeue(&records);
                return;
            }
        };
        let mut outcomes = outcomes.into_iter();
        let mut settled = Vec::with_capacity(records.len());
        for mut record in records {
            if record.outcome == RunOutcome::Sent {
                match outcomes.next() {
                    Some(FireOutcome::Enqueued) => self.stats.sent += 1,
                    Some(FireOutcome::AlreadyClaimed(claimed_ms)) => {
                        self.stats.already_sent += 1;
                        record.outcome = RunOutcome::AlreadySent;
                        record.task_id = None;
                        if let Some(claimed) = DateTime::<Utc>::from_timestamp_millis(claimed_ms) {
                            record.slot = record.slot.max(claimed);
                        }
                    }
                    Some(FireOutcome::NotLeader) | None => {
                        // Fenced off: whoever leads now sends it; drop our claim to the slot.
                        self.held.clear();
                        self.schedule(&record.name);
                        continue;
                    }
                }
            }
            self.stats.missed += record.missed + u64::from(record.outcome == RunOutcome::Skipped);
            settled.push(record);
        }
        if let Err(error) = self.store.record_runs(&settled).await {
            // The claims in Redis keep the slots from being sent twice; the next leader's
            // take-over repairs last_run_at.
            tracing::warn!(%error, "beat could not record its runs");
        }
        for record in &settled {
            self.settle(record);
        }
        if !self.is_leader() {
            tracing::warn!(node = %self.options.node_name, "beat was fenced off by a newer leader");
        }
    }

    /// Applies a settled run to the in-memory entry and schedules its next slot.
    fn settle(&mut self, record: &RunRecord) {
        if let Some(entry) = self.entries.get_mut(&record.name) {
            let task = &mut entry.stored.task;
            match record.outcome {
                RunOutcome::Sent | RunOutcome::AlreadySent => {
                    task.last_run_at = Some(record.slot);
                    task.total_run_count += u64::from(record.outcome == RunOutcome::Sent);
                }
                RunOutcome::Skipped => entry.stored.anchor_at = Some(record.slot),
            }
            entry.stored.missed_count += record.missed;
            if record.disable {
                task.enabled = false;
            }
        }
        self.schedule(&record.name);
    }

    fn requeue(&mut self, records: &[RunRecord]) {
        for record in records {
            self.schedule(&record.name);
        }
    }

    /// The Celery message for one slot: the entry's task, arguments and options, with the
    /// `periodic_task_name` header as Celery's beat sends it.
    fn message(
        &self,
        task: &PeriodicTask,
        slot: DateTime<Utc>,
    ) -> Result<(SlotFire, String), crate::Error> {
        let mut options = SendOptions::new().header(
            PERIODIC_TASK_NAME_HEADER,
            serde_json::Value::String(task.name.clone()),
        );
        options = options.header(
            BEAT_SLOT_HEADER,
            serde_json::Value::String(slot.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        if let serde_json::Value::Object(headers) = &task.headers {
            for (name, value) in headers {
                options = options.header(name.clone(), value.clone());
            }
        }
        if let Some(queue) = task.queue.as_ref().or(task.routing_key.as_ref()) {
            options = options.queue(queue.clone());
        }
        if let Some(priority) = task.priority {
            options = options.priority(priority.min(255) as u8);
        }
        let expires = match (task.expires, task.expire_seconds) {
            (Some(expires), _) => Some(expires),
            (None, Some(seconds)) => {
                Some(slot + TimeDelta::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 1000)))
            }
            (None, None) => None,
        };
        if let Some(expires) = expires {
            options = options.expires(expires);
        }
        let args = match &task.args {
            serde_json::Value::Array(args) => args.clone(),
            _ => Vec::new(),
        };
        let kwargs = match &task.kwargs {
            serde_json::Value::Object(kwargs) => kwargs.clone(),
            _ => serde_json::Map::new(),
        };
        let prepared = self
            .producer
            .prepare_message(&task.task, args, kwargs, &options)?;
        Ok((
            SlotFire {
                schedule: task.name.clone(),
                slot_ms: slot.timestamp_millis(),
                queue: prepared.queue,
                priority: prepared.priority,
                raw: prepared.raw,
            },
            prepared.task_id,
        ))
    }
}

fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

async fn next_change<S: futures::Stream + Unpin>(changes: &mut Option<S>) -> Option<S::Item> {
    match changes {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}
