//! The durable task history: every task the cluster ran, kept in SQL (SQLite or PostgreSQL),
//! so a monitor that restarts still shows the past, and a past task can be run again.
//!
//! Celery keeps no history (Flower holds the last `max_tasks` tasks in memory and loses them
//! on restart). Here two sources feed one table, one row per task id:
//!
//! - events ([`TaskHistory::record_events`]): live, with the worker, times and a timeline, but
//!   arguments only as truncated reprs;
//! - the result backend ([`TaskHistory::record_results`], [`TaskHistory::catch_up`]): what
//!   happened while no monitor listened, and with `result_extended` the exact arguments.
//!
//! Both merge by Celery's state precedence (`record.rs`), so order and duplicates do not
//! matter. Reads: [`TaskHistory::list`] (filters, newest first, keyset pages),
//! [`TaskHistory::count`], [`TaskHistory::state_counts`], [`TaskHistory::task`] (row and
//! timeline), [`TaskHistory::task_stats`] (per task name throughput and runtimes). Upkeep:
//! [`TaskHistory::prune`] and [`Retention`]. Re-running: [`retry_task`], [`retry_tasks`] (bulk).
//!
//! # Layout
//! - `event.rs`: [`TaskEvent`], the input read from a decoded Celery event.
//! - `record.rs`: [`TaskRecord`] and the merge rules.
//! - `row.rs`: the table layout; `store.rs`: the one write transaction.
//! - `query.rs`: filters, pages and counts, `filter_sql.rs` their SQL; `retention.rs`: pruning.
//! - `stats.rs`: per task name statistics over a window.
//! - `catch_up.rs`: reading the result backend; `reconcile.rs`: unfinished rows checked
//!   against it; `retry.rs`: [`retry_task`];
//!   `bulk_retry.rs`: [`retry_tasks`], capped and throttled.
//! - `recorder.rs`: [`record_from_monitor`], the loop that keeps the history current from a
//!   running [`crate::events::Monitor`].
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use celeriac::db::Database;
//! use celeriac::history::{TaskFilter, TaskHistory};
//! use celeriac::TaskState;
//!
//! let history = TaskHistory::new(Database::connect("sqlite://celeriac.db").await?);
//! let failures = TaskFilter { states: vec![TaskState::Failure], ..TaskFilter::default() };
//! let page = history.list(&failures, None, 50).await?;
//! for task in &page.tasks {
//!     println!("{} {:?} {:?}", task.task_id, task.name, task.exception);
//! }
//! # Ok(()) }
//! ```

mod bulk_retry;
mod catch_up;
mod event;
mod filter_sql;
mod query;
mod reconcile;
mod record;
mod recorder;
mod retention;
mod retry;
mod row;
mod stats;
mod store;

pub use bulk_retry::{retry_tasks, BulkRetryReport, BulkRetrySelection, BULK_RETRY_CAP};
pub use catch_up::{CatchUpCursor, CatchUpReport};
pub use event::{TaskEvent, TaskEventKind};
pub use query::{
    Count, Cursor, Page, TaskDetail, TaskFilter, TimeField, TimelineEntry, WorkflowTask,
};
pub use reconcile::{ReconcilePosition, ReconcileReport};
pub use record::TaskRecord;
pub use recorder::{record_from_monitor, task_events, RecorderOptions, RecorderStats};
pub use retention::{prune_periodically, Retention};
pub use retry::{retry_task, RetryError, RETRY_OF_HEADER};
pub use stats::{TaskNameStats, TaskStats, STATS_ROW_CAP};

use crate::backend::BackendError;
use crate::db::{Database, DatabaseError};
use crate::protocol::ResultMeta;
use std::collections::HashMap;
use store::TimelineRow;

/// How a SQLite argument search picks between its trigram index and a `LIKE` walk of the
/// candidates in list order (the steps are in `query.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchTuning {
    /// A part of the term in fewer rows than this is looked up in the index (default 2,000;
    /// counting up to it costs about a millisecond).
    pub rare_below: u32,
    /// When every part is more common, the newest candidates walked before the index is asked
    /// for the whole phrase (default 50,000: at most about 30 ms).
    pub walk_window: u32,
}

impl Default for SearchTuning {
    fn default() -> Self {
        SearchTuning {
            rare_below: 2000,
            walk_window: 50_000,
        }
    }
}

/// Why a history operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// The result backend could not be read (catch-up).
    #[error("cannot read the result backend")]
    Backend(#[from] BackendError),
    /// A pagination cursor that this history did not make.
    #[error("invalid page cursor {cursor:?}")]
    InvalidCursor {
        /// The text given.
        cursor: String,
    },
}

/// The task history over one database. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct TaskHistory {
    database: Database,
    /// How a SQLite argument search picks between the trigram index and a walk.
    search_tuning: SearchTuning,
}

impl TaskHistory {
    /// The history stored in `database` (already migrated by [`Database::connect`]).
    pub fn new(database: Database) -> TaskHistory {
        TaskHistory {
            database,
            search_tuning: SearchTuning::default(),
        }
    }

    /// Changes how a SQLite argument search picks between the trigram index and a walk of
    /// the candidates (PostgreSQL's planner makes this choice itself).
    pub fn with_search_tuning(mut self, search_tuning: SearchTuning) -> TaskHistory {
        self.search_tuning = search_tuning;
        self
    }

    /// The database underneath.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Records a batch of task events in one transaction; returns how many task rows changed.
    /// Order within and across batches does not matter, and duplicates are ignored.
    pub async fn record_events(&self, events: &[TaskEvent]) -> Result<usize, HistoryError> {
        if events.is_empty() {
            return Ok(0);
        }
        let task_ids: Vec<String> = events.iter().map(|event| event.task_id.clone()).collect();
        let mut timeline: Vec<TimelineRow> = events
            .iter()
            .map(|event| TimelineRow {
                task_id: event.task_id.clone(),
                event_type: event.kind.as_type().to_owned(),
                occurred_at: row::micros(event.timestamp),
                hostname: Some(event.hostname.clone()).filter(|host| !host.is_empty()),
            })
            .collect();
        timeline.sort_by(|left, right| {
            (&left.task_id, left.occurred_at, &left.event_type).cmp(&(
                &right.task_id,
                right.occurred_at,
                &right.event_type,
            ))
        });
        timeline.dedup();
        let merge = |records: &mut HashMap<String, TaskRecord>| {
            for event in events {
                records
                    .entry(event.task_id.clone())
                    .and_modify(|record| record.apply_event(event))
                    .or_insert_with(|| TaskRecord::from_event(event));
            }
        };
        Ok(store::merge(&self.database, &task_ids, merge, &timeline).await?)
    }

    /// Records result documents (from the result backend) in one transaction; returns how many
    /// task rows changed.
    pub async fn record_results(&self, results: &[ResultMeta]) -> Result<usize, HistoryError> {
        if results.is_empty() {
            return Ok(0);
        }
        let observed_at = crate::clock::now();
        let task_ids: Vec<String> = results.iter().map(|meta| meta.task_id.clone()).collect();
        let merge = |records: &mut HashMap<String, TaskRecord>| {
            for meta in results {
                records
                    .entry(meta.task_id.clone())
                    .and_modify(|record| record.apply_result(meta, observed_at))
                    .or_insert_with(|| TaskRecord::from_result(meta, observed_at));
            }
        };
        Ok(store::merge(&self.database, &task_ids, merge, &[]).await?)
    }

    /// Replaces task `task_id`'s row with what `merge` makes of the stored one (if any), in
    /// the same locked transaction as every other write.
    pub(crate) async fn upsert_with<F>(
        &self,
        task_id: &str,
        merge: F,
    ) -> Result<usize, HistoryError>
    where
        F: FnOnce(Option<TaskRecord>) -> TaskRecord,
    {
        let task_ids = [task_id.to_owned()];
        let merge = |records: &mut HashMap<String, TaskRecord>| {
            let stored = records.get(task_id).cloned();
            let row_id = stored.as_ref().and_then(|record| record.row_id);
            let mut record = merge(stored);
            record.row_id = row_id;
            records.insert(task_id.to_owned(), record);
        };
        Ok(store::merge(&self.database, &task_ids, merge, &[]).await?)
    }
}
