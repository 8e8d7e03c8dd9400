//! Retrying many past tasks at once ([`retry_tasks`]), capped and throttled, so that fixing a
//! dependency that failed a thousand tasks does not send a thousand tasks at it in one burst.
//!
//! 1. The caller picks the tasks: explicit ids, or the newest [`BULK_RETRY_CAP`] rows of a
//!    [`super::TaskFilter`] ([`TaskHistory::bulk_retry_selection`]).
//! 2. Each task goes through [`retry_task`] (same name, exact arguments, `retried_from` link),
//!    one at a time, at most `rate` per second (a `tokio` interval; the first goes at once).
//! 3. A task that cannot be retried (arguments unknown, say) is counted and logged, and the
//!    run goes on: one bad row must not strand the other 999.

use super::query::TaskFilter;
use super::retry::retry_task;
use super::{HistoryError, TaskHistory};
use crate::producer::Producer;
use crate::worker::rate_limit::RateLimit;
use std::time::Duration;

/// The most tasks one bulk retry sends.
pub const BULK_RETRY_CAP: usize = 1_000;

/// What a bulk retry did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkRetryReport {
    /// Tasks sent again.
    pub retried: usize,
    /// Tasks that could not be sent again (each one is logged with its reason).
    pub failed: usize,
}

/// Which tasks a filter selects for a bulk retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRetrySelection {
    /// The task ids, newest first, at most [`BULK_RETRY_CAP`].
    pub task_ids: Vec<String>,
    /// True when the filter matches more tasks than the cap.
    pub capped: bool,
}

impl TaskHistory {
    /// The newest tasks `filter` matches, at most [`BULK_RETRY_CAP`], and whether there are
    /// more.
    pub async fn bulk_retry_selection(
        &self,
        filter: &TaskFilter,
    ) -> Result<BulkRetrySelection, HistoryError> {
        let page = self.list(filter, None, BULK_RETRY_CAP as u32).await?;
        Ok(BulkRetrySelection {
            task_ids: page.tasks.into_iter().map(|task| task.task_id).collect(),
            capped: page.next.is_some(),
        })
    }
}

/// Retries `task_ids` one after the other, at most `rate` per second (`None`: no limit), and
/// at most [`BULK_RETRY_CAP`] of them (module docs).
pub async fn retry_tasks(
    history: &TaskHistory,
    producer: &Producer,
    task_ids: &[String],
    rate: Option<RateLimit>,
) -> BulkRetryReport {
    let mut report = BulkRetryReport::default();
    let mut throttle = rate.map(|rate| {
        let period = Duration::from_secs_f64(1.0 / rate.tasks_per_second());
        let mut interval = tokio::time::interval(period.max(Duration::from_micros(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });
    for task_id in task_ids.iter().take(BULK_RETRY_CAP) {
        if let Some(throttle) = throttle.as_mut() {
            throttle.tick().await;
        }
        match retry_task(history, producer, task_id).await {
            Ok(_) => report.retried += 1,
            Err(error) => {
                report.failed += 1;
                tracing::warn!(task_id = %task_id, error = %error, "bulk retry skipped a task");
            }
        }
    }
    tracing::info!(
        retried = report.retried,
        failed = report.failed,
        "bulk retry finished"
    );
    report
}
