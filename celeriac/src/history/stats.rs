//! Per task name statistics over a time window: how many tasks finished, how many succeeded
//! and failed, the throughput, and the runtime percentiles (p50, p95, p99).
//!
//! One indexed range read on `done_at` (the `celeriac_task_history_done` index, on both backends)
//! selects three narrow columns of the tasks that finished in the window; grouping and the
//! percentiles are computed here, so SQLite and PostgreSQL answer the same way (SQLite has no
//! `percentile_cont`). The rows are streamed and folded one by one, so a read holds one entry
//! per name and one number per runtime, not the rows. The read stops at [`STATS_ROW_CAP`] rows,
//! newest first: a busier window is described by its newest tasks and says so (`sampled`),
//! which bounds the cost of the Tasks page whatever the traffic.
//!
//! The runtime is the one the worker reported (`task-succeeded` carries it); Celery's
//! `task-failed` carries none, so a failed task's runtime is its `done_at - started_at` when
//! its `task-started` event was recorded.

use super::filter_sql::{bound_query, Sql};
use super::row::micros;
use super::{HistoryError, TaskHistory};
use crate::db::DatabaseError;
use crate::types::TaskState;
use crate::with_pool;
use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use sqlx::Row;
use std::collections::HashMap;

/// The most finished tasks one statistics read looks at (module docs).
pub const STATS_ROW_CAP: i64 = 200_000;

/// The statistics of one task name in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskNameStats {
    /// The task name.
    pub name: String,
    /// Tasks of this name that finished in the window (any final state).
    pub finished: u64,
    /// Of those, how many succeeded.
    pub succeeded: u64,
    /// Of those, how many failed.
    pub failed: u64,
    /// Finished tasks per minute over the window.
    pub tasks_per_minute: f64,
    /// Runtime percentiles in seconds (nearest rank), over the tasks that report a runtime;
    /// `None` when none did.
    pub runtime_p50: Option<f64>,
    /// 95th percentile runtime, seconds.
    pub runtime_p95: Option<f64>,
    /// 99th percentile runtime, seconds.
    pub runtime_p99: Option<f64>,
}

/// The statistics of every task name that finished tasks in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskStats {
    /// By task name, busiest first (ties by name).
    pub names: Vec<TaskNameStats>,
    /// True when the window held more than [`STATS_ROW_CAP`] finished tasks and only the
    /// newest were counted.
    pub sampled: bool,
}

/// The value at percentile `percent` of `sorted` (ascending), by the nearest-rank method.
pub(crate) fn nearest_rank(sorted: &[f64], percent: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Per name: finished, succeeded, failed, runtimes.
type Fold = HashMap<String, (u64, u64, u64, Vec<f64>)>;

/// Adds one row (`name, state, runtime, started_at, done_at`) to the fold.
fn fold_row<R: Row>(row: &R, by_name: &mut Fold) -> Result<(), sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<f64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let Some(name) = row.try_get::<Option<String>, _>("name")? else {
        return Ok(());
    };
    let state = row.try_get::<String, _>("state")?;
    let runtime = match row.try_get::<Option<f64>, _>("runtime")? {
        Some(runtime) => Some(runtime),
        None => match (
            row.try_get::<Option<i64>, _>("started_at")?,
            row.try_get::<Option<i64>, _>("done_at")?,
        ) {
            (Some(started), Some(done)) if done >= started => Some((done - started) as f64 / 1e6),
            _ => None,
        },
    };
    let entry = by_name.entry(name).or_default();
    entry.0 += 1;
    if state == TaskState::Success.as_str() {
        entry.1 += 1;
    } else if state == TaskState::Failure.as_str() {
        entry.2 += 1;
    }
    if let Some(runtime) = runtime.filter(|runtime| runtime.is_finite()) {
        entry.3.push(runtime);
    }
    Ok(())
}

impl TaskHistory {
    /// Statistics per task name of the tasks that finished at or after `since` and before
    /// `until` (module docs).
    pub async fn task_stats(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<TaskStats, HistoryError> {
        let mut sql = Sql::new(self.database.dialect());
        let since_placeholder = sql.integer(micros(since));
        let until_placeholder = sql.integer(micros(until));
        let limit = sql.integer(STATS_ROW_CAP + 1);
        sql.text = format!(
            "SELECT name, state, runtime, started_at, done_at FROM celeriac_task_history \
             WHERE done_at >= {since_placeholder} AND done_at < {until_placeholder} \
             ORDER BY done_at DESC, id DESC LIMIT {limit}"
        );
        // Rows are streamed and folded as they come, never collected: a busy window is 200,000
        // rows, and eight readers at once each holding them took the server to 2 GB (issue 13).
        // What is kept is one entry per name and one f64 per runtime.
        let mut by_name = Fold::new();
        let mut seen: i64 = 0;
        with_pool!(&self.database, |pool| {
            let mut rows = bound_query!(sql).fetch(pool);
            while let Some(row) = rows
                .try_next()
                .await
                .map_err(DatabaseError::query("read task statistics"))?
            {
                seen += 1;
                if seen > STATS_ROW_CAP {
                    break;
                }
                let folded = fold_row(&row, &mut by_name);
                folded.map_err(DatabaseError::query("read task statistics"))?;
            }
        });
        let sampled = seen > STATS_ROW_CAP;
        let minutes = ((until - since).num_milliseconds() as f64 / 60_000.0).max(1.0 / 60.0);
        let mut names: Vec<TaskNameStats> = by_name
            .into_iter()
            .map(|(name, (finished, succeeded, failed, mut runtimes))| {
                runtimes.sort_by(f64::total_cmp);
                TaskNameStats {
                    name,
                    finished,
                    succeeded,
                    failed,
                    tasks_per_minute: finished as f64 / minutes,
                    runtime_p50: nearest_rank(&runtimes, 50.0),
                    runtime_p95: nearest_rank(&runtimes, 95.0),
                    runtime_p99: nearest_rank(&runtimes, 99.0),
                }
            })
            .collect();
        names.sort_by(|left, right| {
            right
                .finished
                .cmp(&left.finished)
                .then_with(|| left.name.cmp(&right.name))
        });
        Ok(TaskStats { names, sampled })
    }
}

#[cfg(test)]
mod tests {
    use super::nearest_rank;

    #[test]
    fn percentiles_are_nearest_rank() {
        let runtimes: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(nearest_rank(&runtimes, 50.0), Some(50.0));
        assert_eq!(nearest_rank(&runtimes, 95.0), Some(95.0));
        assert_eq!(nearest_rank(&runtimes, 99.0), Some(99.0));
        assert_eq!(nearest_rank(&[0.5], 99.0), Some(0.5));
        assert_eq!(nearest_rank(&[], 50.0), None);
        assert_eq!(nearest_rank(&[1.0, 2.0], 0.0), Some(1.0));
    }
}
