//! [`ClusterState`]: the cluster as Celery events describe it — workers, tasks, per task name
//! counters and runtimes — bounded in memory and indifferent to the order events arrive in.
//!
//! It plays the part of Celery's `celery.events.state.State` (what Flower and `celery events`
//! keep), with three differences:
//! - **Order.** A task's state and fields are a join over its events (see `task`), so the
//!   same events shuffled or repeated give the same result and a late event never takes a task
//!   back (Celery lets a late `task-retried` override SUCCESS).
//! - **Bounds.** At most `max_tasks` tasks (Celery's `max_tasks_in_memory`, 10,000), least
//!   recently updated evicted first; task ids are kept as 16 bytes, node and task names are
//!   shared, reprs are clipped; at most `max_workers` workers and `max_task_names` names.
//! - **Changes.** Every change bumps [`ClusterState::version`] and stamps the records it touched,
//!   so [`ClusterState::changes_since`] gives a consumer (the dashboard's SSE) exactly what
//!   changed since the version it last saw, however many events went by in between.
//!
//! The state is plain data with no IO and no clock of its own: callers pass the receiver's
//! time (`received_at`, `now`, epoch seconds), which makes it deterministic to test. The
//! [`super::Monitor`] feeds it from an [`super::EventReceiver`].

mod names;
#[cfg(test)]
mod proptests;
mod snapshot;
mod table;
mod task;
#[cfg(test)]
mod tests;
mod worker;

pub use snapshot::{
    Changes, ClusterSnapshot, RuntimePercentiles, StateCounters, TaskEventCounts, TaskNameSnapshot,
    TaskQuery, TaskSnapshot, WorkerSnapshot,
};
pub use worker::{HEARTBEAT_DRIFT_MAX, HEARTBEAT_EXPIRE_WINDOW};

use crate::protocol::event::{Event, EventGroup, EventKind};
use names::TaskNameStats;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use table::{TaskKey, TaskTable};
use task::{kind_index, Applied};
use worker::WorkerRecord;

/// The name stats of names past `max_task_names` are summed under this name.
pub const OTHER_TASK_NAMES: &str = "(other)";

/// Bounds of a [`ClusterState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateOptions {
    /// Tasks retained (Celery's `max_tasks_in_memory`); the least recently updated go first.
    pub max_tasks: usize,
    /// Workers retained (Celery's `max_workers_in_memory`); offline ones go first.
    pub max_workers: usize,
    /// Task names with their own counters; later names count under [`OTHER_TASK_NAMES`].
    pub max_task_names: usize,
    /// Successes per task name whose runtimes feed the percentiles.
    pub runtime_window: usize,
    /// Longest `args`, `kwargs`, `result` or `exception` repr kept, in bytes (Celery's own
    /// `argsrepr`/`resultrepr` limit is 1,024 characters).
    pub max_repr_len: usize,
    /// Longest traceback kept, in bytes.
    pub max_traceback_len: usize,
}

impl Default for StateOptions {
    fn default() -> Self {
        StateOptions {
            max_tasks: 10_000,
            max_workers: 5_000,
            max_task_names: 1_000,
            runtime_window: 1_000,
            max_repr_len: 1_024,
            max_traceback_len: 4_096,
        }
    }
}

/// Clipping limits handed to task records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) repr: usize,
    pub(crate) traceback: usize,
}

/// The cluster as seen through events. See the module docs.
#[derive(Debug)]
pub struct ClusterState {
    options: StateOptions,
    limits: Limits,
    tasks: TaskTable,
    workers: HashMap<Arc<str>, WorkerRecord>,
    names: HashMap<Arc<str>, TaskNameStats>,
    /// Shared node names, task names and routing keys (bounded; past the bound, copies).
    strings: HashSet<Arc<str>>,
    version: u64,
    clock: u64,
    counters: StateCounters,
}

impl Default for ClusterState {
    fn default() -> Self {
        ClusterState::new(StateOptions::default())
    }
}

impl ClusterState {
    /// An empty state with `options` as bounds.
    pub fn new(options: StateOptions) -> ClusterState {
        ClusterState {
            limits: Limits {
                repr: options.max_repr_len.max(8),
                traceback: options.max_traceback_len.max(8),
            },
            tasks: TaskTable::new(options.max_tasks),
            workers: HashMap::new(),
            names: HashMap::new(),
            strings: HashSet::new(),
            version: 0,
            clock: 0,
            counters: StateCounters::default(),
            options,
        }
    }

    /// The bounds.
    pub fn options(&self) -> &StateOptions {
        &self.options
    }

    /// Bumped by every change; records carry the version of their last change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The receiver's Lamport clock: `max(own, event clock) + 1` over worker events and task
    /// events from workers (producers' clocks are not synchronised, so `task-sent` is left out,
    /// as in Celery).
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Event and eviction counts.
    pub fn counters(&self) -> StateCounters {
        let mut counters = self.counters.clone();
        counters.tasks_retained = self.tasks.len() as u64;
        counters.workers_retained = self.workers.len() as u64;
        counters
    }

    /// Applies a batch of events received at `received_at` (receiver's epoch seconds) and
    /// returns the version after it.
    pub fn apply_batch(&mut self, events: &[Event], received_at: f64) -> u64 {
        for event in events {
            self.apply(event, received_at);
        }
        self.version
    }

    /// Applies one event received at `received_at`; false when it changed nothing (a repeat,
    /// a task event without `uuid`, a type this state does not track).
    pub fn apply(&mut self, event: &Event, received_at: f64) -> bool {
        self.counters.events += 1;
        if event.kind != EventKind::TaskSent {
            self.clock = self.clock.max(event.clock) + 1;
        }
        match event.kind.group() {
            EventGroup::Worker => {
                self.counters.worker_events += 1;
                self.version += 1;
                let version = self.version;
                let worker = self.worker_mut(&event.hostname, received_at);
                worker.apply_worker_event(event, received_at);
                worker.seen_alive = worker.alive(received_at);
                worker.version = version;
                true
            }
            EventGroup::Task => {
                self.counters.task_events += 1;
                self.apply_task_event(event, received_at)
            }
            EventGroup::Other => {
                self.counters.other_events += 1;
                false
            }
        }
    }

    fn apply_task_event(&mut self, event: &Event, received_at: f64) -> bool {
        let Some(uuid) = event.uuid() else {
            self.counters.without_uuid += 1;
            return false;
        };
        let fingerprint = fingerprint(event);
        let strings = &mut self.strings;
        let intern_limit = self.options.max_workers + self.options.max_task_names + 1_024;
        let mut intern = |text: &str| intern(strings, intern_limit, text);
        let (record, evicted) = self.tasks.touch(TaskKey::parse(uuid));
        if evicted.is_some() {
            self.counters.tasks_evicted += 1;
        }
        let learned_name = match record.apply(event, fingerprint, &self.limits, &mut intern) {
            Applied::Repeat => {
                self.counters.repeats += 1;
                return false;
            }
            Applied::Merged { learned_name } => learned_name,
        };
        self.version += 1;
        let version = self.version;
        record.version = version;
        if let Some(name) = record.name.clone() {
            let stats = name_stats(&mut self.names, &self.options, name);
            stats.version = version;
            if learned_name || !record.counted {
                record.counted = true;
                for applied in &record.applied {
                    count(stats, (applied & 0xF) as usize, record.runtime);
                }
            } else {
                count(
                    stats,
                    (fingerprint & 0xF) as usize,
                    event.f64_field("runtime").unwrap_or(f64::NAN),
                );
            }
        }
        if event.kind != EventKind::TaskSent && !event.hostname.is_empty() {
            let worker = self.worker_mut(&event.hostname, received_at);
            worker.sign_of_life(event.timestamp, received_at);
            if !worker.seen_alive {
                worker.seen_alive = worker.alive(received_at);
                worker.version = version;
            }
        }
        true
    }

    /// The record of `hostname`, created (evicting the longest-silent worker at the bound) if
    /// new.
    fn worker_mut(&mut self, hostname: &str, now: f64) -> &mut WorkerRecord {
        if !self.workers.contains_key(hostname) {
            if self.workers.len() >= self.options.max_workers.max(1) {
                let victim = self
                    .workers
                    .values()
                    .min_by(|left, right| {
                        (left.alive(now), left.last_seen)
                            .partial_cmp(&(right.alive(now), right.last_seen))
                            .unwrap_or(std::cmp::Ordering::Equal)
                    })
                    .map(|worker| worker.hostname.clone());
                if let Some(victim) = victim {
                    self.workers.remove(&victim);
                    self.counters.workers_evicted += 1;
                }
            }
            let shared = intern(&mut self.strings, usize::MAX, hostname);
            self.workers
                .insert(shared.clone(), WorkerRecord::new(shared));
        }
        self.workers
            .get_mut(hostname)
            .expect("the worker was just inserted")
    }

    /// Notices workers whose heartbeat expired by `now` (no event announces that) and bumps
    /// the version for each, so change consumers hear about it; true when any did. The
    /// [`super::Monitor`] calls it every second.
    pub fn expire_workers(&mut self, now: f64) -> bool {
        let mut changed = false;
        for worker in self.workers.values_mut() {
            let alive = worker.alive(now);
            if alive != worker.seen_alive {
                worker.seen_alive = alive;
                self.version += 1;
                worker.version = self.version;
                changed = true;
            }
        }
        changed
    }

    /// Bytes the retained tasks take, estimated from the structures (records, index, the
    /// strings each task owns; shared names counted once in [`Self::memory_bytes`]); allocator
    /// overhead is not included, so the real figure (RSS) is somewhat higher.
    pub fn task_memory_bytes(&self) -> usize {
        self.tasks.overhead_bytes()
            + self
                .tasks
                .iter_newest_first()
                .map(task::TaskRecord::heap_bytes)
                .sum::<usize>()
    }

    /// Estimated bytes of the whole state: tasks, workers, names and shared strings.
    pub fn memory_bytes(&self) -> usize {
        let strings: usize = self.strings.iter().map(|text| text.len() + 16).sum();
        let names: usize = self
            .names
            .values()
            .map(|stats| stats.heap_bytes() + std::mem::size_of::<TaskNameStats>() + 24)
            .sum();
        let workers = self.workers.len() * (std::mem::size_of::<WorkerRecord>() + 24);
        self.task_memory_bytes() + strings + names + workers
    }
}

/// Counts one event of kind index `index` under a name (with its runtime for a success).
fn count(stats: &mut TaskNameStats, index: usize, runtime: f64) {
    if let Some(counter) = stats.counts.get_mut(index) {
        *counter += 1;
        if Some(index) == kind_index(&EventKind::TaskSucceeded) {
            stats.record_runtime(runtime);
        }
    }
}

fn name_stats<'a>(
    names: &'a mut HashMap<Arc<str>, TaskNameStats>,
    options: &StateOptions,
    name: Arc<str>,
) -> &'a mut TaskNameStats {
    let name = if names.contains_key(&name) || names.len() < options.max_task_names {
        name
    } else {
        Arc::from(OTHER_TASK_NAMES)
    };
    names
        .entry(name)
        .or_insert_with(|| TaskNameStats::new(options.runtime_window))
}

/// `text` shared from `strings`, added while fewer than `limit` are held.
fn intern(strings: &mut HashSet<Arc<str>>, limit: usize, text: &str) -> Arc<str> {
    if let Some(shared) = strings.get(text) {
        return shared.clone();
    }
    let shared: Arc<str> = Arc::from(text);
    if strings.len() < limit {
        strings.insert(shared.clone());
    }
    shared
}

/// Identifies one event among a task's events: kind, sender, sender timestamp and clock; a
/// repeat of the same event has the same fingerprint. The low 4 bits hold the kind's counter
/// index (15 for kinds without a counter).
fn fingerprint(event: &Event) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    event.kind.as_str().hash(&mut hasher);
    event.hostname.hash(&mut hasher);
    event.timestamp.to_bits().hash(&mut hasher);
    event.clock.hash(&mut hasher);
    let index = kind_index(&event.kind).map_or(0xF, |index| index as u64);
    (hasher.finish() & !0xF) | index
}
