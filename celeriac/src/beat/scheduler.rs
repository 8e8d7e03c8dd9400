//! The beat process: holds or waits for the leader lease, and while it leads keeps every
//! schedule in memory ordered by its next slot and sends due tasks.
//!
//! Any number of beats may run on one database and one Redis. Each tick (at most
//! `beat_max_loop_interval` apart, sooner when a slot is due or an edit is announced) a beat:
//!
//! 1. takes or renews the lease ([`RedisBroker::beat_lease`]). A follower stops there, so
//!    followers cost one Redis call per tick. A beat whose lease value changed (it was
//!    elected, or its lease lapsed while it was frozen or cut off and it won a new one) loads
//!    every entry afresh, because another leader may have sent and recorded slots meanwhile,
//!    and repairs `last_run_at` from the Redis claims, which are ahead when the old leader
//!    died between the enqueue and the database write. When Redis does not answer, the beat
//!    keeps its lease value and sends nothing; if the lease is still its own at the next
//!    answer, nobody else can have led in between, and it carries on without a reload;
//! 2. applies the database changes since its watermark (edits through any path, see `store`),
//!    and every `beat_sync_every` compares every entry's version, which covers PostgreSQL
//!    commits that land out of version order and rows deleted behind the triggers' back;
//! 3. pops the due entries, asks `due::plan` which slots to send, and sends the batch in one
//!    round trip of fenced, claimed pushes ([`RedisBroker::beat_fire`]): a slot claimed before
//!    is not sent again, a lost lease sends nothing and makes this beat a follower;
//! 4. records the runs in one transaction (`store::runs`, monotonic, so two beats recording
//!    the same slot count it once).
//!
//! A handover takes at most the lease timeout plus one tick (plus the load); the slots that
//! passed meanwhile are recent (`due`), so the new leader sends each of them.
//!
//! The change announcements ([`RedisBroker::subscribe_beat_changes`]) are a Redis PUB/SUB
//! subscription held by [`Beat::run`]; a message wakes the loop for an immediate tick. When
//! the subscription ends (Redis restarted) the loop subscribes again at its next tick; edits
//! still apply within a tick meanwhile.

mod send;

use super::due::{plan, CatchUp};
use super::entries::Entries;
use super::store::{RunOutcome, RunRecord, ScheduleStore, StoreError, StoredTask};
use crate::broker::{BrokerError, RedisBroker};
use crate::clock;
use crate::producer::Producer;
use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// Messages of a wake-up at least this far away are built before it.
const PREPARE_LEAD: Duration = Duration::from_millis(20);

/// How a beat runs.
#[derive(Debug, Clone)]
pub struct BeatOptions {
    /// This beat's name in the lease (`beat@host`).
    pub node_name: String,
    /// How long the lease lasts without renewal (`beat_lease_timeout`): the failover time,
    /// less one tick.
    pub lease_timeout: Duration,
    /// The longest sleep between ticks (Celery's `beat_max_loop_interval`).
    pub max_loop_interval: Duration,
    /// How often every entry's version is compared (`beat_sync_every`).
    pub sync_every: Duration,
    /// The downtime policy (`beat_catch_up`).
    pub catch_up: CatchUp,
    /// Sends later than this after their slot count as late.
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

impl BeatOptions {
    /// The options the configuration sets (`beat_*` settings), for the beat `node_name`.
    pub fn from_config(config: &crate::config::Config, node_name: impl Into<String>) -> Self {
        BeatOptions {
            node_name: node_name.into(),
            lease_timeout: config.beat_lease_timeout(),
            max_loop_interval: config.beat_max_loop_interval(),
            sync_every: config.beat_sync_every(),
            catch_up: config.beat_catch_up,
            ..BeatOptions::default()
        }
    }

    /// How old a passed slot may be and still be sent in any case: the longest handover.
    pub fn replay_window(&self) -> Duration {
        self.lease_timeout + 2 * self.max_loop_interval
    }

    /// The longest sleep: one loop interval, and short enough to renew the lease in time.
    fn tick_cap(&self) -> Duration {
        self.max_loop_interval.min(self.lease_timeout / 3)
    }
}

/// Why beat could not start.
#[derive(Debug, thiserror::Error)]
pub enum BeatError {
    /// The schedule store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Redis failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
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
    /// Sends later than `late_after`.
    pub late: u64,
    /// Times this beat became leader.
    pub elections: u64,
}

/// A running beat.
#[derive(Debug)]
pub struct Beat {
    store: ScheduleStore,
    producer: Producer,
    options: BeatOptions,
    entries: Entries,
    /// True while `entries` mirrors the database for the current lease.
    loaded: bool,
    watermark: i64,
    last_full_sync: DateTime<Utc>,
    /// The lease value from the last answer that said we hold it ("" if none).
    held: String,
    /// The last lease check answered, and said we hold it.
    leading: bool,
    /// Do not send before this (after a failed push).
    retry_at: Option<DateTime<Utc>>,
    /// The messages of the next wake-up, built while waiting for it.
    ahead: Option<send::Ahead>,
    /// django-celery-beat's tables, when they are the source of truth (`beat_scheduler`).
    django: Option<super::django::DjangoSync>,
    /// Counters for logs and tests.
    pub stats: BeatStats,
}

impl Beat {
    /// A beat over `store` sending through `producer`; it loads the schedules when elected.
    pub fn new(store: ScheduleStore, producer: Producer, options: BeatOptions) -> Beat {
        Beat {
            store,
            producer,
            options,
            entries: Entries::default(),
            loaded: false,
            watermark: 0,
            last_full_sync: clock::now(),
            held: String::new(),
            leading: false,
            retry_at: None,
            ahead: None,
            django: None,
            stats: BeatStats::default(),
        }
    }

    /// Makes django-celery-beat's tables the source of truth: the leader mirrors them into
    /// the store at every tick, and pushes the store's edits back (see `beat::django`).
    pub fn with_django(mut self, sync: super::django::DjangoSync) -> Beat {
        self.django = Some(sync);
        self
    }

    /// Whether the last lease check said this beat leads.
    pub fn is_leader(&self) -> bool {
        self.leading
    }

    /// How many entries the leader tracks (0 on a follower).
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Runs until `shutdown` resolves, then gives the lease up so a peer takes over at once.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> BeatStats {
        let broker = self.producer.broker().clone();
        let mut changes = None;
        tokio::pin!(shutdown);
        loop {
            if changes.is_none() {
                changes = match broker.subscribe_beat_changes().await {
                    Ok(pubsub) => Some(pubsub.into_on_message()),
                    Err(error) => {
                        tracing::debug!(%error, "no change announcements yet");
                        None
                    }
                };
            }
            self.tick().await;
            let mut sleep = self.sleep_time();
            if self.leading && self.loaded && sleep >= PREPARE_LEAD {
                if let Some(wake_ms) = self.entries.next_wake() {
                    let at = DateTime::<Utc>::from_timestamp_millis(wake_ms);
                    if let Some(at) = at.filter(|at| *at - clock::now() <= delta(sleep)) {
                        self.prepare(at);
                        sleep = self.sleep_time();
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(sleep) => {}
                change = next_change(&mut changes) => {
                    if change.is_none() {
                        changes = None;
                    }
                }
            }
        }
        if !self.held.is_empty() {
            if let Err(error) = broker.beat_release(&self.held).await {
                tracing::warn!(%error, "could not release the beat lease");
            }
        }
        tracing::info!(node = %self.options.node_name, stats = ?self.stats, "beat stopped");
        self.stats
    }

    /// One round: send what is due, lease, sync, send what became due. Errors are logged and
    /// retried next tick: beat never stops for a passing Redis or database failure.
    ///
    /// Sending comes first so that a slot's messages are not held up by the lease round trip
    /// and the database reads; it is safe before the renewal because every push is fenced.
    pub async fn tick(&mut self) {
        let broker = self.producer.broker().clone();
        if self.leading && self.loaded {
            self.send_if_allowed(&broker).await;
        }
        if !self.check_lease(&broker).await {
            return;
        }
        if let Some(django) = self.django.as_mut() {
            if let Err(error) = django.sync(&self.store).await {
                tracing::warn!(%error, "beat could not sync with django-celery-beat's tables");
            }
        }
        if !self.loaded {
            if let Err(error) = self.take_over(&broker).await {
                tracing::warn!(%error, "beat could not load its schedules; not sending yet");
                return;
            }
        } else if let Err(error) = self.sync().await {
            tracing::warn!(%error, "beat could not read schedule changes");
        }
        if self.leading {
            self.send_if_allowed(&broker).await;
        }
    }

    async fn send_if_allowed(&mut self, broker: &RedisBroker) {
        let now = clock::now();
        if self.retry_at.is_none_or(|retry_at| retry_at <= now) {
            self.retry_at = None;
            self.send_due(broker).await;
        }
    }

    /// Takes or renews the lease; true when this beat leads now.
    async fn check_lease(&mut self, broker: &RedisBroker) -> bool {
        let node = &self.options.node_name;
        match broker
            .beat_lease(node, self.options.lease_timeout, &self.held)
            .await
        {
            Ok(lease) if lease.held => {
                if lease.value != self.held {
                    self.stats.elections += 1;
                    tracing::info!(node = %node, lease = %lease.value, "beat is leader");
                    self.held = lease.value;
                    self.step_down_memory();
                }
                self.leading = true;
            }
            Ok(lease) => {
                if self.leading || !self.held.is_empty() {
                    tracing::warn!(node = %node, leader = %lease.owner(), "beat lost the lease");
                }
                self.held.clear();
                self.leading = false;
                self.step_down_memory();
            }
            Err(error) => {
                tracing::warn!(%error, "beat lease check failed");
                self.leading = false;
            }
        }
        self.leading
    }

    /// Forgets the in-memory schedule: it is only valid for the lease it was loaded under.
    fn step_down_memory(&mut self) {
        self.ahead = None;
        self.entries.clear();
        self.loaded = false;
        self.retry_at = None;
    }

    /// How long to sleep: until the next slot, at most one tick.
    fn sleep_time(&mut self) -> Duration {
        let cap = self.options.tick_cap();
        if !self.leading || !self.loaded {
            return cap;
        }
        let now = clock::now();
        let wake = match self.retry_at {
            Some(retry_at) => Some(retry_at.timestamp_millis()),
            None => {
                let ahead = self.ahead.as_ref().map(|ahead| ahead.at.timestamp_millis());
                match (ahead, self.entries.next_wake()) {
                    (Some(ahead), Some(next)) => Some(ahead.min(next)),
                    (ahead, next) => ahead.or(next),
                }
            }
        };
        match wake {
            Some(wake_ms) => {
                let wait = wake_ms - now.timestamp_millis();
                Duration::from_millis(wait.max(0) as u64).min(cap)
            }
            None => cap,
        }
    }

    /// Loads every entry for a new lease and repairs `last_run_at` from the claims.
    async fn take_over(&mut self, broker: &RedisBroker) -> Result<(), BeatError> {
        let started = std::time::Instant::now();
        let all = self.store.list().await?;
        let claims = broker.beat_claims().await?;
        self.entries.clear();
        self.watermark = 0;
        for stored in all {
            self.watermark = self.watermark.max(stored.version);
            self.entries.put(stored);
        }
        self.last_full_sync = clock::now();
        let now = clock::now();
        let mut repairs = Vec::new();
        for (name, slot_ms) in claims {
            let (Some(stored), Some(slot)) = (
                self.entries.get(&name),
                DateTime::<Utc>::from_timestamp_millis(slot_ms),
            ) else {
                continue;
            };
            if stored.task.last_run_at.is_none_or(|last| last < slot) {
                repairs.push(RunRecord {
                    name,
                    slot,
                    sent_at: now,
                    task_id: None,
                    outcome: RunOutcome::AlreadySent,
                    missed: 0,
                    late: false,
                    disable: stored.task.one_off,
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
        let names: Vec<String> = self.entries.names().map(str::to_owned).collect();
        for name in names {
            self.wake(&name, now);
        }
        self.loaded = true;
        tracing::info!(
            entries = self.entries.len(),
            repaired = repairs.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "beat loaded its schedules"
        );
        Ok(())
    }

    async fn sync(&mut self) -> Result<(), StoreError> {
        let now = clock::now();
        let changes = self.store.changes_since(self.watermark).await?;
        if !changes.deleted.is_empty() || !changes.upserted.is_empty() {
            self.discard_ahead();
        }
        for name in &changes.deleted {
            if self.entries.remove(name) {
                tracing::info!(schedule = %name, "schedule deleted");
            }
        }
        self.watermark = self.watermark.max(changes.version);
        for stored in changes.upserted {
            self.apply(stored, now);
        }
        if now - self.last_full_sync >= delta(self.options.sync_every) {
            self.last_full_sync = now;
            self.full_sync(now).await?;
        }
        Ok(())
    }

    /// Compares every entry's version with the database's.
    async fn full_sync(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let known = (
            self.entries.len() as i64,
            self.entries.versions().sum::<i64>(),
        );
        if self.store.version_checksum().await? == known {
            return Ok(());
        }
        let versions: HashMap<String, i64> = self.store.versions().await?.into_iter().collect();
        let gone: Vec<String> = self
            .entries
            .names()
            .filter(|name| !versions.contains_key(*name))
            .map(str::to_owned)
            .collect();
        if !gone.is_empty() {
            self.discard_ahead();
        }
        for name in gone {
            tracing::info!(schedule = %name, "schedule deleted (found by the full sync)");
            self.entries.remove(&name);
        }
        for (name, version) in versions {
            let known = self.entries.get(&name).map(|stored| stored.version);
            if known != Some(version) {
                match self.store.get(&name).await {
                    Ok(stored) => self.apply(stored, now),
                    Err(StoreError::NotFound { .. }) => {}
                    Err(error) => tracing::error!(schedule = %name, %error, "unreadable schedule"),
                }
            }
        }
        Ok(())
    }

    /// Tracks an edited entry, unless this version is tracked already.
    fn apply(&mut self, stored: StoredTask, now: DateTime<Utc>) {
        let name = stored.task.name.clone();
        if self
            .entries
            .get(&name)
            .is_some_and(|known| known.version == stored.version)
        {
            return;
        }
        tracing::debug!(schedule = %name, version = stored.version, "schedule loaded");
        self.discard_ahead();
        self.entries.put(stored);
        self.wake(&name, now);
    }

    /// Schedules the entry's next look: now if slots are due, else its next slot.
    fn wake(&mut self, name: &str, now: DateTime<Utc>) {
        let Some(stored) = self.entries.get(name) else {
            return;
        };
        let decision = plan(
            &stored.task,
            stored.anchor_at,
            now,
            self.options.catch_up,
            delta(self.options.replay_window()),
        );
        if decision.settled.is_some() {
            self.entries.schedule_now(name);
        } else {
            self.entries.schedule(name, decision.next);
        }
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
