//! The JSON of `GET /api/stats/tasks?since=...`: per task name throughput and runtime
//! percentiles over a window, for the Tasks page.

use serde::{Deserialize, Serialize};

/// The statistics of every task name that finished tasks in the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskStatsAnswer {
    /// The window's start (RFC 3339).
    pub since: String,
    /// The window's end (RFC 3339).
    pub until: String,
    /// By task name, busiest first.
    pub names: Vec<TaskNameStats>,
    /// The window held more finished tasks than one read looks at; only the newest counted.
    #[serde(default)]
    pub sampled: bool,
}

/// One task name's statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskNameStats {
    /// The task name.
    pub name: String,
    /// Tasks that finished in the window.
    pub count: u64,
    /// Of those, succeeded.
    pub succeeded: u64,
    /// Of those, failed.
    pub failed: u64,
    /// Finished tasks per minute.
    pub tasks_per_minute: f64,
    /// Runtime percentiles, seconds (none when no task reported a runtime).
    pub runtime_p50: Option<f64>,
    /// 95th percentile.
    pub runtime_p95: Option<f64>,
    /// 99th percentile.
    pub runtime_p99: Option<f64>,
}
