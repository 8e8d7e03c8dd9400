//! The API's JSON as Rust types, shared by server rendering and the browser.
//!
//! They mirror what `server/src/dashboard/api/` sends (Flower's task dictionary, our
//! overview, history pages, the SSE `snapshot`/`delta` bodies); fields the pages do not show
//! are left out, and optional ones default, so the API can grow without breaking the pages.

mod worker;

pub use worker::{
    ConsumedQueue, ScheduledRequest, WorkerActionAnswer, WorkerDetail, WorkerHeartbeat,
    WorkerRequest,
};

use std::collections::BTreeMap;

mod schedule;

pub use schedule::{
    PreviewError, PreviewRun, ScheduleAnswer, ScheduleDetail, ScheduleForm, SchedulePreview,
    ScheduleRun, ScheduleSpec, ScheduleSummary,
};
mod audit;
mod bulk_retry;
mod task_stats;

pub use audit::AuditEntry;
pub use bulk_retry::{BulkRetryAnswer, BulkRetryFilter, BulkRetryRequest};
pub use task_stats::{TaskNameStats, TaskStatsAnswer};

use celeriac::TaskState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `GET /api/overview`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// Workers alive now.
    pub workers_online: u64,
    /// Workers the monitor knows.
    pub workers_known: u64,
    /// Task count per state, from the history.
    pub states: BTreeMap<String, u64>,
    /// Tasks finished per second over the last seconds.
    pub tasks_per_second: f64,
    /// Depth of each watched queue.
    pub queues: Vec<QueueDepth>,
    /// Delivered, not yet acknowledged messages.
    pub unacked: Unacked,
    /// Succeeded and failed per minute over the last hour.
    #[serde(default)]
    pub throughput: Throughput,
    /// Beat's leader and its lease; `None` when no beat runs.
    #[serde(default)]
    pub beat: Option<BeatLeader>,
}

/// `GET /api/me`: who is logged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The login name.
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
}

/// How many unacked messages `GET /api/queues` reads to split them per queue: the page
/// reloads on every live tick of every open tab, so the scan stays small; past it the
/// per-queue counts are partial (the page says so) while the total stays exact.
pub const UNACKED_SCANNED_PER_QUEUE_SPLIT: u64 = 1_000;

/// `GET /api/queues`: the Queues page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuesDetail {
    /// Watched queues and those some worker consumes.
    pub queues: Vec<QueueDetail>,
    /// Workers that answered `active_queues`; `0` means consumers are unknown.
    pub workers_replied: usize,
    /// Delivered, not yet acknowledged messages.
    pub unacked: Unacked,
}

/// One queue of [`QueuesDetail`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueDetail {
    /// The queue's name.
    pub name: String,
    /// Messages waiting, all priority steps.
    pub messages: u64,
    /// Per priority step.
    #[serde(default)]
    pub priorities: Vec<PriorityDetail>,
    /// Seconds the oldest waiting message has waited, when its `task-sent` was seen.
    #[serde(default)]
    pub oldest_age: Option<f64>,
    /// Workers consuming it.
    #[serde(default)]
    pub consumers: Vec<String>,
    /// Its delivered, unacknowledged messages (by routing key).
    #[serde(default)]
    pub unacked: u64,
}

/// One priority step of a [`QueueDetail`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorityDetail {
    /// The step (0 is the plain list, consumed first).
    pub step: u32,
    /// Messages waiting in it.
    pub messages: u64,
    /// The next message it gives out.
    #[serde(default)]
    pub oldest_task_id: Option<String>,
    /// That message's task name.
    #[serde(default)]
    pub oldest_task_name: Option<String>,
    /// How long that message has waited, when known.
    #[serde(default)]
    pub oldest_age: Option<f64>,
}

/// The overview chart's data: one point per minute, oldest first, the last one the current
/// (partial) minute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// The minutes.
    pub points: Vec<MinutePoint>,
    /// The first second the server counted (it counts from its start).
    pub since: Option<u64>,
}

/// One minute of [`Throughput`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinutePoint {
    /// The minute's start, seconds since the epoch.
    pub minute: u64,
    /// Tasks that succeeded in it.
    pub succeeded: u64,
    /// Tasks that failed in it.
    pub failed: u64,
}

/// The beat instance holding the lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeatLeader {
    /// Its node name (`beat@host`) and instance.
    pub leader: String,
    /// The fencing token of its lease.
    pub token: u64,
    /// Seconds left on the lease unless renewed.
    pub lease_remaining: f64,
}

impl Overview {
    /// The count of one state.
    pub fn count(&self, state: TaskState) -> u64 {
        self.states.get(state.as_str()).copied().unwrap_or(0)
    }

    /// Failures among finished tasks (`FAILURE / (SUCCESS + FAILURE)`), if any finished.
    pub fn failure_rate(&self) -> Option<f64> {
        let failed = self.count(TaskState::Failure) as f64;
        let finished = failed + self.count(TaskState::Success) as f64;
        (finished > 0.0).then(|| failed / finished)
    }
}

/// One queue's depth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueDepth {
    /// Queue name.
    pub name: String,
    /// Messages waiting, all priorities.
    pub messages: u64,
    /// Messages per priority step (kombu's Redis priority lists).
    #[serde(default)]
    pub priorities: Vec<PriorityDepth>,
}

/// Messages waiting at one priority step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorityDepth {
    /// kombu's priority step (0 is the plain queue).
    pub step: u32,
    /// Messages waiting.
    pub messages: u64,
}

/// Messages delivered to workers and not acknowledged yet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Unacked {
    /// How many.
    pub messages: u64,
    /// When the oldest was delivered.
    pub oldest_delivered_at: Option<DateTime<Utc>>,
}

/// Flower's task dictionary (`/api/history` rows, `/api/task/info/{id}`), plus our
/// `timeline` and `retried_as` on the detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Task id.
    pub uuid: String,
    /// Task name, once known.
    pub name: Option<String>,
    /// Current state.
    pub state: TaskState,
    /// Epoch seconds of each step, when it happened.
    pub sent: Option<f64>,
    /// See `sent`.
    pub received: Option<f64>,
    /// See `sent`.
    pub started: Option<f64>,
    /// See `sent`.
    pub succeeded: Option<f64>,
    /// See `sent`.
    pub failed: Option<f64>,
    /// See `sent`.
    pub revoked: Option<f64>,
    /// When the current state was reached.
    #[serde(default)]
    pub timestamp: Option<f64>,
    /// Python repr of the positional arguments.
    pub args: Option<String>,
    /// Python repr of the keyword arguments.
    pub kwargs: Option<String>,
    /// Python repr of the return value.
    pub result: Option<String>,
    /// Python repr of the exception.
    pub exception: Option<String>,
    /// The traceback text.
    pub traceback: Option<String>,
    /// Seconds the body ran.
    pub runtime: Option<f64>,
    /// Retries so far.
    pub retries: Option<u32>,
    /// Node that ran it.
    pub worker: Option<String>,
    /// The queue it was routed to.
    pub routing_key: Option<String>,
    /// ETA as sent.
    pub eta: Option<String>,
    /// Root of its workflow.
    pub root_id: Option<String>,
    /// The task that sent it.
    pub parent_id: Option<String>,
    /// Every event of the task (detail only).
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// Tasks re-run from this one (detail only).
    #[serde(default)]
    pub retried_as: Vec<String>,
    /// The group or chord header it belongs to (detail only).
    #[serde(default)]
    pub group_id: Option<String>,
    /// Tasks it sent: callbacks, the next chain step, errbacks (detail only). The API's
    /// `children` is Flower's list of their ids; this is `child_tasks`, with names and states.
    #[serde(default, rename = "child_tasks")]
    pub children: Vec<WorkflowTask>,
    /// The members of its group or chord header (detail only).
    #[serde(default)]
    pub group: Vec<WorkflowTask>,
    /// Its chord's progress while the chord waits (detail only).
    #[serde(default)]
    pub chord: Option<ChordProgress>,
    /// The body of its chord, for a chord header member (detail only).
    #[serde(default)]
    pub chord_body: Option<WorkflowTask>,
}

/// Another task of a task's workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowTask {
    /// The task.
    pub task_id: String,
    /// Its name, once known.
    pub name: Option<String>,
    /// Its state.
    pub state: TaskState,
}

/// How many header results a chord has of how many.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChordProgress {
    /// Header results in.
    pub done: u64,
    /// The chord's size.
    pub size: u64,
}

impl TaskInfo {
    /// The newest moment known of the task, for ordering.
    pub fn last_seen(&self) -> f64 {
        [
            self.timestamp,
            self.sent,
            self.received,
            self.started,
            self.succeeded,
            self.failed,
            self.revoked,
        ]
        .into_iter()
        .flatten()
        .fold(0.0, f64::max)
    }

    /// This task with what a live event says newer: state, worker, result, failure.
    pub fn overlay(&mut self, live: &LiveTask) {
        let live = live.to_info();
        self.state = live.state;
        for (field, newer) in [
            (&mut self.name, live.name),
            (&mut self.worker, live.worker),
            (&mut self.routing_key, live.routing_key),
            (&mut self.args, live.args),
            (&mut self.kwargs, live.kwargs),
            (&mut self.result, live.result),
            (&mut self.exception, live.exception),
            (&mut self.traceback, live.traceback),
        ] {
            if newer.is_some() {
                *field = newer;
            }
        }
        for (field, newer) in [
            (&mut self.sent, live.sent),
            (&mut self.received, live.received),
            (&mut self.started, live.started),
            (&mut self.succeeded, live.succeeded),
            (&mut self.failed, live.failed),
            (&mut self.revoked, live.revoked),
            (&mut self.runtime, live.runtime),
        ] {
            if newer.is_some() {
                *field = newer;
            }
        }
    }
}

/// One event of a task's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// `task-received`, `task-started`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Epoch seconds.
    pub timestamp: f64,
    /// The node that sent it.
    pub hostname: Option<String>,
}

/// `GET /api/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// Newest first.
    pub tasks: Vec<TaskInfo>,
    /// Cursor of the next page.
    pub next: Option<String>,
    /// How many match.
    pub count: HistoryCount,
}

/// The match count of a history query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryCount {
    /// Matching tasks, up to the cap.
    pub tasks: u64,
    /// The count stopped at the cap.
    pub capped: bool,
}

/// `POST /api/task/retry/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryAnswer {
    /// The new task's id.
    #[serde(rename = "task-id")]
    pub task_id: String,
}

/// `POST /api/task/revoke/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokeAnswer {
    /// Flower's confirmation text.
    pub message: String,
}

/// A worker as the monitor sees it (SSE bodies and `/api/snapshot`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveWorker {
    /// Node name.
    pub hostname: String,
    /// A sign of life recently and no `worker-offline` since.
    pub alive: bool,
    /// Tasks running.
    pub active: u64,
    /// Tasks processed.
    pub processed: u64,
    /// 1, 5, 15 minute load averages.
    pub loadavg: [f64; 3],
    /// `py-celery` or `celeriac`.
    pub sw_ident: Option<String>,
    /// Its version.
    pub sw_ver: Option<String>,
    /// When the last sign of life was received.
    pub last_seen: Option<DateTime<Utc>>,
    /// State version of its last change.
    pub version: u64,
}

/// `std::time::Duration` as serde writes it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WireDuration {
    /// Whole seconds.
    pub secs: u64,
    /// The rest.
    pub nanos: u32,
}

/// A task as the monitor sees it (SSE bodies and `/api/snapshot`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveTask {
    /// Task id.
    pub id: String,
    /// Name, once known.
    pub name: Option<String>,
    /// State.
    pub state: TaskState,
    /// Node of the deciding event.
    pub worker: Option<String>,
    /// Queue.
    pub routing_key: Option<String>,
    /// Step times.
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
    pub revoked: Option<DateTime<Utc>>,
    /// Body run time.
    pub runtime: Option<WireDuration>,
    /// Retries.
    pub retries: u32,
    /// Argument reprs.
    pub args: Option<String>,
    /// See `args`.
    pub kwargs: Option<String>,
    /// ETA as sent.
    pub eta: Option<String>,
    /// Result repr.
    pub result: Option<String>,
    /// Exception repr.
    pub exception: Option<String>,
    /// Traceback.
    pub traceback: Option<String>,
    /// Parent task.
    pub parent_id: Option<String>,
    /// Root task.
    pub root_id: Option<String>,
    /// State version of its last change.
    pub version: u64,
}

fn epoch(time: Option<DateTime<Utc>>) -> Option<f64> {
    time.map(|time| time.timestamp_micros() as f64 / 1e6)
}

impl LiveTask {
    /// The same task in Flower's shape, so lists and the detail page show both alike.
    pub fn to_info(&self) -> TaskInfo {
        TaskInfo {
            uuid: self.id.clone(),
            name: self.name.clone(),
            state: self.state,
            sent: epoch(self.sent),
            received: epoch(self.received),
            started: epoch(self.started),
            succeeded: epoch(self.succeeded),
            failed: epoch(self.failed),
            revoked: epoch(self.revoked),
            timestamp: None,
            args: self.args.clone(),
            kwargs: self.kwargs.clone(),
            result: self.result.clone(),
            exception: self.exception.clone(),
            traceback: self.traceback.clone(),
            runtime: self
                .runtime
                .map(|runtime| runtime.secs as f64 + f64::from(runtime.nanos) / 1e9),
            retries: Some(self.retries),
            worker: self.worker.clone(),
            routing_key: self.routing_key.clone(),
            eta: self.eta.clone(),
            root_id: self.root_id.clone(),
            parent_id: self.parent_id.clone(),
            timeline: Vec::new(),
            retried_as: Vec::new(),
            group_id: None,
            children: Vec::new(),
            group: Vec::new(),
            chord: None,
            chord_body: None,
        }
    }
}

/// The SSE `snapshot` event, and `GET /api/snapshot`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveSnapshot {
    /// The monitor's version.
    pub version: u64,
    /// Every worker.
    pub workers: Vec<LiveWorker>,
    /// The newest tasks.
    pub tasks: Vec<LiveTask>,
    /// Tasks per state among those the monitor retains.
    #[serde(default)]
    pub state_counts: BTreeMap<String, u64>,
}

/// The SSE `delta` event: what changed since the previous event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveDelta {
    /// The version it brings the page to.
    pub version: u64,
    /// Changed workers.
    pub workers: Vec<LiveWorker>,
    /// Changed tasks.
    pub tasks: Vec<LiveTask>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_task_from_the_monitor_reads_as_flower_shape() {
        let json = r#"{"id":"t1","name":"demo.add","state":"SUCCESS","worker":"w@h","client":null,
            "routing_key":"celery","sent":null,"received":"2025-01-01T00:00:01Z","started":null,
            "succeeded":"2025-01-01T00:00:02.5Z","failed":null,"retried":null,"revoked":null,
            "rejected":null,"runtime":{"secs":1,"nanos":500000000},"retries":0,"args":"(2, 3)",
            "kwargs":"{}","eta":null,"expires":null,"result":"5","exception":null,
            "traceback":null,"parent_id":null,"root_id":"t1","terminated":false,"expired":false,
            "requeued":false,"version":7}"#;
        let live: LiveTask = serde_json::from_str(json).unwrap();
        let info = live.to_info();
        assert_eq!(info.state, TaskState::Success);
        assert_eq!(info.runtime, Some(1.5));
        assert_eq!(info.received, Some(1_735_689_601.0));
        assert_eq!(info.last_seen(), 1_735_689_602.5);
    }

    #[test]
    fn failure_rate_counts_finished_tasks_only() {
        let overview = Overview {
            workers_online: 1,
            workers_known: 1,
            states: BTreeMap::from([
                ("SUCCESS".to_owned(), 3),
                ("FAILURE".to_owned(), 1),
                ("STARTED".to_owned(), 9),
            ]),
            tasks_per_second: 0.0,
            queues: Vec::new(),
            unacked: Unacked::default(),
            throughput: Throughput::default(),
            beat: None,
        };
        assert_eq!(overview.failure_rate(), Some(0.25));
    }
}
