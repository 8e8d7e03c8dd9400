//! Reconciling: rows the events left unfinished are checked against the result backend.
//!
//! Events are fire-and-forget: while Redis is down a worker's `task-succeeded` is lost, though
//! its result is stored once Redis is back (the worker waits for that). After a 60 s outage
//! the history kept rows in RECEIVED whose results said SUCCESS (issue 13). So now and then the
//! recorder takes the rows that are not finished and have not changed for a while, oldest
//! first, reads their results with one `MGET` per page, and merges what it finds (by state
//! precedence, as any result). A position is kept between rounds, so a few thousand tasks
//! that really run for hours do not hide the rows behind them: each round goes on where the
//! last stopped, and starts over when it reaches the end.

use super::filter_sql::Sql;
use super::query::fetch_rows;
use super::row::micros;
use super::{HistoryError, TaskHistory};
use crate::backend::ResultBackend;
use crate::db::DatabaseError;
use crate::types::TaskState;
use crate::with_pool;
use chrono::{DateTime, Utc};
use sqlx::Row;

/// Rows read and looked up per page.
const PAGE_ROWS: i64 = 500;
/// Pages per round at most, so one round stays short whatever the table holds.
const PAGES_PER_ROUND: usize = 4;

/// Where the next round goes on: the `(state_at, id)` of the last row checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcilePosition(Option<(i64, i64)>);

/// What a round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Unfinished rows looked up.
    pub checked: u64,
    /// Rows whose stored result told something new.
    pub changed: u64,
}

impl TaskHistory {
    /// Up to `limit` unfinished rows that have not changed since `before`, after `position`,
    /// oldest first: their task ids and the position after the last.
    async fn unfinished(
        &self,
        before: DateTime<Utc>,
        position: ReconcilePosition,
        limit: i64,
    ) -> Result<(Vec<String>, ReconcilePosition), HistoryError> {
        let mut sql = Sql::new(self.database.dialect());
        let states: Vec<String> = [
            TaskState::Pending,
            TaskState::Received,
            TaskState::Started,
            TaskState::Retry,
        ]
        .iter()
        .map(|state| sql.text(state.as_str()))
        .collect();
        let before = sql.integer(micros(before));
        let after = match position.0 {
            Some((state_at, id)) => {
                let state_at = sql.integer(state_at);
                let id = sql.integer(id);
                format!("AND (state_at > {state_at} OR (state_at = {state_at} AND id > {id}))")
            }
            None => String::new(),
        };
        let limit = sql.integer(limit);
        sql.text = format!(
            "SELECT task_id, state_at, id FROM celeriac_task_history \
             WHERE state IN ({}) AND state_at < {before} {after} \
             ORDER BY state_at, id LIMIT {limit}",
            states.join(", ")
        );
        let rows: Vec<(String, i64, i64)> =
            fetch_rows!(self, sql, "read unfinished tasks", |row| Ok((
                row.try_get::<String, _>("task_id")?,
                row.try_get::<i64, _>("state_at")?,
                row.try_get::<i64, _>("id")?,
            )));
        let last = rows.last().map(|(_, state_at, id)| (*state_at, *id));
        let task_ids = rows.into_iter().map(|(task_id, _, _)| task_id).collect();
        Ok((task_ids, ReconcilePosition(last)))
    }

    /// One round (module docs): rows unfinished and unchanged since `before`, looked up in
    /// `backend` from `position` on. Moves `position` on, back to the start at the end.
    pub async fn reconcile(
        &self,
        backend: &ResultBackend,
        before: DateTime<Utc>,
        position: &mut ReconcilePosition,
    ) -> Result<ReconcileReport, HistoryError> {
        let mut report = ReconcileReport::default();
        for _ in 0..PAGES_PER_ROUND {
            let (task_ids, next) = self.unfinished(before, *position, PAGE_ROWS).await?;
            report.checked += task_ids.len() as u64;
            let results = backend.get_many(&task_ids).await?;
            report.changed += self.record_results(&results).await? as u64;
            if (task_ids.len() as i64) < PAGE_ROWS {
                *position = ReconcilePosition::default();
                break;
            }
            *position = next;
        }
        Ok(report)
    }
}
