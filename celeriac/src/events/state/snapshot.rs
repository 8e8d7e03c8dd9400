//! What readers get out of a [`ClusterState`]: owned, serde-serialisable copies (the
//! dashboard maps them to its own DTOs), and the queries that build them.

use super::names::TaskNameStats;
use super::table::TaskKey;
use super::task::{TaskRecord, EXPIRED, KINDS, REQUEUED, TERMINATED};
use super::worker::WorkerRecord;
use super::ClusterState;
use crate::types::{TaskId, TaskState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Counts kept by the state itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounters {
    /// Events applied (all kinds, repeats included).
    pub events: u64,
    /// `task-*` events.
    pub task_events: u64,
    /// `worker-*` events.
    pub worker_events: u64,
    /// Events of other groups (ignored).
    pub other_events: u64,
    /// Task events that repeated one already applied (ignored).
    pub repeats: u64,
    /// Task events without a `uuid` (ignored).
    pub without_uuid: u64,
    /// Tasks evicted to stay within `max_tasks`.
    pub tasks_evicted: u64,
    /// Workers evicted to stay within `max_workers`.
    pub workers_evicted: u64,
    /// Tasks retained now.
    pub tasks_retained: u64,
    /// Workers retained now.
    pub workers_retained: u64,
}

/// One worker node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSnapshot {
    /// Node name, e.g. `celery@host`.
    pub hostname: String,
    /// Celery's `Worker.alive`: a sign of life within `freq × 2`, and no later `worker-offline`.
    pub alive: bool,
    /// Main process id.
    pub pid: u32,
    /// Heartbeat interval the worker announced.
    pub freq: Duration,
    /// Tasks running at the last worker event.
    pub active: u64,
    /// Tasks the worker has processed, at the last worker event.
    pub processed: u64,
    /// 1, 5 and 15 minute load averages.
    pub loadavg: [f64; 3],
    /// Software: `py-celery` or `celeriac`.
    pub sw_ident: Option<String>,
    /// Software version.
    pub sw_ver: Option<String>,
    /// Operating system.
    pub sw_sys: Option<String>,
    /// When the last sign of life was sent (worker's clock).
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// When it was received (our clock).
    pub last_seen: Option<DateTime<Utc>>,
    /// When it stops counting as alive without further news (our clock).
    pub heartbeat_expires: Option<DateTime<Utc>>,
    /// Sender time of the last `worker-online`.
    pub online_at: Option<DateTime<Utc>>,
    /// Sender time of the last `worker-offline`.
    pub offline_at: Option<DateTime<Utc>>,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Our clock minus the worker's at the last sign of life, in milliseconds; Celery warns
    /// past [`super::HEARTBEAT_DRIFT_MAX`] seconds.
    pub clock_drift_ms: i64,
    /// State version of the last change.
    pub version: u64,
}

/// One task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSnapshot {
    /// Task id.
    pub id: TaskId,
    /// Task name, once a `task-sent` or `task-received` told it.
    pub name: Option<String>,
    /// State by precedence over all its events.
    pub state: TaskState,
    /// Node that sent the event deciding the state.
    pub worker: Option<String>,
    /// Producer node, from `task-sent`.
    pub client: Option<String>,
    /// Routing key (the queue, on the default exchange), from `task-sent`.
    pub routing_key: Option<String>,
    /// Sender times of the newest event of each kind.
    pub sent: Option<DateTime<Utc>>,
    /// See `sent`.
    pub received: Option<DateTime<Utc>>,
    /// See `sent`.
    pub started: Option<DateTime<Utc>>,
    /// See `sent`.
    pub succeeded: Option<DateTime<Utc>>,
    /// See `sent`.
    pub failed: Option<DateTime<Utc>>,
    /// See `sent`.
    pub retried: Option<DateTime<Utc>>,
    /// See `sent`.
    pub revoked: Option<DateTime<Utc>>,
    /// See `sent`.
    pub rejected: Option<DateTime<Utc>>,
    /// How long the body ran, from `task-succeeded`.
    pub runtime: Option<Duration>,
    /// Retries of the newest attempt seen.
    pub retries: u32,
    /// `argsrepr` (clipped).
    pub args: Option<String>,
    /// `kwargsrepr` (clipped).
    pub kwargs: Option<String>,
    /// ETA as sent (ISO 8601).
    pub eta: Option<String>,
    /// Expiry as sent (ISO 8601).
    pub expires: Option<String>,
    /// Result repr (clipped).
    pub result: Option<String>,
    /// Exception repr of the failure (or the last retry).
    pub exception: Option<String>,
    /// Traceback (clipped).
    pub traceback: Option<String>,
    /// Parent task id.
    pub parent_id: Option<TaskId>,
    /// Root task id.
    pub root_id: Option<TaskId>,
    /// Revoked by terminating it.
    pub terminated: bool,
    /// Revoked because it expired.
    pub expired: bool,
    /// Rejected and put back in the queue.
    pub requeued: bool,
    /// State version of the last change.
    pub version: u64,
}

/// Events seen per kind (each distinct event once).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEventCounts {
    /// `task-sent`.
    pub sent: u64,
    /// `task-received`.
    pub received: u64,
    /// `task-started`.
    pub started: u64,
    /// `task-succeeded`.
    pub succeeded: u64,
    /// `task-failed`.
    pub failed: u64,
    /// `task-retried`.
    pub retried: u64,
    /// `task-revoked`.
    pub revoked: u64,
    /// `task-rejected`.
    pub rejected: u64,
}

/// Runtime percentiles over the latest successes of one name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimePercentiles {
    /// Successes in the window.
    pub samples: usize,
    /// Median.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

/// Counters and runtimes of one task name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskNameSnapshot {
    /// Task name (or [`super::OTHER_TASK_NAMES`]).
    pub name: String,
    /// Events per kind.
    pub counts: TaskEventCounts,
    /// Runtime percentiles, once a success with a runtime was seen.
    pub runtime: Option<RuntimePercentiles>,
    /// State version of the last change.
    pub version: u64,
}

/// Workers, names and counters (tasks are read with [`ClusterState::tasks`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSnapshot {
    /// The state's version.
    pub version: u64,
    /// Workers by node name.
    pub workers: Vec<WorkerSnapshot>,
    /// Task names by name.
    pub task_names: Vec<TaskNameSnapshot>,
    /// Counters.
    pub counters: StateCounters,
}

/// What changed after a version: each record changed since, in its current form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// The version these changes bring a reader to.
    pub version: u64,
    /// Changed workers.
    pub workers: Vec<WorkerSnapshot>,
    /// Changed tasks, most recently updated first.
    pub tasks: Vec<TaskSnapshot>,
    /// Changed task names.
    pub task_names: Vec<TaskNameSnapshot>,
    /// More tasks changed than the limit asked for; re-read the task list.
    pub truncated: bool,
}

/// Which tasks [`ClusterState::tasks`] returns.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    /// At most this many (0: no limit).
    pub limit: usize,
    /// Only tasks in this state.
    pub state: Option<TaskState>,
    /// Only tasks of this name.
    pub name: Option<String>,
}

fn time(epoch: f64) -> Option<DateTime<Utc>> {
    if !epoch.is_finite() {
        return None;
    }
    let nanos = (epoch * 1e9).round();
    if nanos.abs() > i64::MAX as f64 {
        return None;
    }
    Some(DateTime::from_timestamp_nanos(nanos as i64))
}

fn duration(seconds: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(seconds).ok()
}

fn text(value: &Option<Box<str>>) -> Option<String> {
    value.as_deref().map(str::to_owned)
}

fn task_id(key: &Option<TaskKey>) -> Option<TaskId> {
    key.as_ref().map(|key| TaskId(key.to_text()))
}

impl WorkerRecord {
    fn snapshot(&self, now: f64) -> WorkerSnapshot {
        WorkerSnapshot {
            hostname: self.hostname.to_string(),
            alive: self.alive(now),
            pid: self.pid,
            freq: duration(self.freq).unwrap_or_default(),
            active: self.active,
            processed: self.processed,
            loadavg: self.loadavg,
            sw_ident: text(&self.sw_ident),
            sw_ver: text(&self.sw_ver),
            sw_sys: text(&self.sw_sys),
            last_heartbeat: time(self.last_alive_time),
            last_seen: time(self.last_seen),
            heartbeat_expires: time(self.heartbeat_expires()),
            online_at: time(self.online_time),
            offline_at: time(self.offline_time),
            heartbeats: self.heartbeats,
            clock_drift_ms: (self.drift * 1000.0).round() as i64,
            version: self.version,
        }
    }
}

impl TaskRecord {
    fn snapshot(&self) -> TaskSnapshot {
        let at = |index: usize| time(self.times[index]);
        TaskSnapshot {
            id: TaskId(self.key.to_text()),
            name: self.name.as_deref().map(str::to_owned),
            state: self.state,
            worker: self.worker.as_deref().map(str::to_owned),
            client: self.client.as_deref().map(str::to_owned),
            routing_key: self.routing_key.as_deref().map(str::to_owned),
            sent: at(0),
            received: at(1),
            started: at(2),
            succeeded: at(3),
            failed: at(4),
            retried: at(5),
            revoked: at(6),
            rejected: at(7),
            runtime: duration(self.runtime),
            retries: self.retries,
            args: text(&self.args),
            kwargs: text(&self.kwargs),
            eta: text(&self.eta),
            expires: text(&self.expires),
            result: text(&self.result),
            exception: text(&self.exception),
            traceback: text(&self.traceback),
            parent_id: task_id(&self.parent_id),
            root_id: task_id(&self.root_id),
            terminated: self.flags & TERMINATED != 0,
            expired: self.flags & EXPIRED != 0,
            requeued: self.flags & REQUEUED != 0,
            version: self.version,
        }
    }
}

impl TaskNameStats {
    fn snapshot(&self, name: &str) -> TaskNameSnapshot {
        let [sent, received, started, succeeded, failed, retried, revoked, rejected] = self.counts;
        debug_assert_eq!(KINDS.len(), 8);
        TaskNameSnapshot {
            name: name.to_owned(),
            counts: TaskEventCounts {
                sent,
                received,
                started,
                succeeded,
                failed,
                retried,
                revoked,
                rejected,
            },
            runtime: self.percentiles().map(|percentiles| RuntimePercentiles {
                samples: percentiles.samples,
                p50: duration(percentiles.p50).unwrap_or_default(),
                p95: duration(percentiles.p95).unwrap_or_default(),
                p99: duration(percentiles.p99).unwrap_or_default(),
            }),
            version: self.version,
        }
    }
}

impl ClusterState {
    /// Workers (sorted by node name), task names and counters, liveness judged at `now`
    /// (receiver's epoch seconds).
    pub fn snapshot(&self, now: f64) -> ClusterSnapshot {
        ClusterSnapshot {
            version: self.version,
            workers: self.workers(now),
            task_names: self.task_names(),
            counters: self.counters(),
        }
    }

    /// Workers sorted by node name, liveness judged at `now`.
    pub fn workers(&self, now: f64) -> Vec<WorkerSnapshot> {
        let mut workers: Vec<_> = self
            .workers
            .values()
            .map(|worker| worker.snapshot(now))
            .collect();
        workers.sort_by(|left, right| left.hostname.cmp(&right.hostname));
        workers
    }

    /// One worker, liveness judged at `now`.
    pub fn worker(&self, hostname: &str, now: f64) -> Option<WorkerSnapshot> {
        self.workers
            .get(hostname)
            .map(|worker| worker.snapshot(now))
    }

    /// Task names sorted by name.
    pub fn task_names(&self) -> Vec<TaskNameSnapshot> {
        let mut names: Vec<_> = self
            .names
            .iter()
            .map(|(name, stats)| stats.snapshot(name))
            .collect();
        names.sort_by(|left, right| left.name.cmp(&right.name));
        names
    }

    /// One retained task.
    pub fn task(&self, id: &str) -> Option<TaskSnapshot> {
        self.tasks
            .get(&TaskKey::parse(id))
            .map(TaskRecord::snapshot)
    }

    /// Retained tasks matching `query`, most recently updated first.
    pub fn tasks(&self, query: &TaskQuery) -> Vec<TaskSnapshot> {
        let limit = if query.limit == 0 {
            usize::MAX
        } else {
            query.limit
        };
        self.tasks
            .iter_newest_first()
            .filter(|record| query.state.is_none_or(|state| record.state == state))
            .filter(|record| {
                query
                    .name
                    .as_deref()
                    .is_none_or(|name| record.name.as_deref() == Some(name))
            })
            .take(limit)
            .map(TaskRecord::snapshot)
            .collect()
    }

    /// How many retained tasks are in each state.
    pub fn state_counts(&self) -> Vec<(TaskState, usize)> {
        let mut counts: Vec<(TaskState, usize)> = Vec::new();
        for record in self.tasks.iter_newest_first() {
            match counts.iter_mut().find(|(state, _)| *state == record.state) {
                Some((_, count)) => *count += 1,
                None => counts.push((record.state, 1)),
            }
        }
        counts.sort_by_key(|(state, _)| state.as_str());
        counts
    }

    /// Everything changed after `version`: workers and names in full, tasks most recently
    /// updated first up to `task_limit` (0: no limit). Liveness judged at `now`.
    pub fn changes_since(&self, version: u64, now: f64, task_limit: usize) -> Changes {
        let limit = if task_limit == 0 {
            usize::MAX
        } else {
            task_limit
        };
        let mut tasks = Vec::new();
        let mut truncated = false;
        // A repeated event moves a task up the recency list without changing it, so versions
        // are not sorted along the list: scan it all (10,000 comparisons, microseconds).
        for record in self.tasks.iter_newest_first() {
            if record.version <= version {
                continue;
            }
            if tasks.len() == limit {
                truncated = true;
                break;
            }
            tasks.push(record.snapshot());
        }
        let mut workers: Vec<_> = self
            .workers
            .values()
            .filter(|worker| worker.version > version)
            .map(|worker| worker.snapshot(now))
            .collect();
        workers.sort_by(|left, right| left.hostname.cmp(&right.hostname));
        let mut task_names: Vec<_> = self
            .names
            .iter()
            .filter(|(_, stats)| stats.version > version)
            .map(|(name, stats)| stats.snapshot(name))
            .collect();
        task_names.sort_by(|left, right| left.name.cmp(&right.name));
        Changes {
            version: self.version,
            workers,
            tasks,
            task_names,
            truncated,
        }
    }
}
