//! The JSON of `POST /api/tasks/bulk_retry`: which tasks to send again (explicit ids, or a
//! filter over the history), and the two answers (the dry run's count, the run's acceptance).

use serde::{Deserialize, Serialize};

/// The request body: `task_ids`, or `filter` (with `dry_run` to count first).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkRetryRequest {
    /// These tasks (the page's selection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_ids: Option<Vec<String>>,
    /// Or every task this filter matches (newest first, up to the cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<BulkRetryFilter>,
    /// Only count what would be retried.
    #[serde(default)]
    pub dry_run: bool,
}

/// Which history tasks a bulk retry selects; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkRetryFilter {
    /// Celery's state name; `FAILURE` when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Exactly this task name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Exactly this worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Exactly this queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Seen at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Seen before this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Task ids starting with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Argument reprs containing this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
}

/// The answer of a dry run, and of a run (`accepted` instead of `tasks`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkRetryAnswer {
    /// Dry run: the tasks a run would retry (at most `cap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<u64>,
    /// Run: the tasks it is retrying in the background.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<u64>,
    /// More tasks match than one run retries.
    #[serde(default)]
    pub capped: bool,
    /// The most tasks one run retries.
    #[serde(default)]
    pub cap: u64,
}
