//! Keeping the history bounded: delete tasks first seen before a cutoff, then the oldest
//! beyond a maximum number of rows.
//!
//! Deletion goes in chunks of [`PRUNE_CHUNK`] rows, each its own short transaction holding
//! the writers' lock (so a merge never resurrects a row being deleted), so that lock is never
//! held long and event ingest keeps flowing during a large prune. Each
//! chunk returns the deleted states and moves the kept per-state counts in the same
//! transaction; the timeline rows go with their task (`ON DELETE CASCADE`).
//!
//! [`prune_periodically`] is the loop whoever runs the history (the dashboard) spawns; the
//! settings are `history_retention` and `history_max_rows` ([`Retention::from_config`]).

use super::row::micros;
use super::{HistoryError, TaskHistory};
use crate::config::Config;
use crate::db::{Database, DatabaseError};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// Rows deleted per transaction.
const PRUNE_CHUNK: i64 = 5000;

/// How much history to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Delete tasks first seen longer ago than this; `None` keeps them.
    pub max_age: Option<Duration>,
    /// Keep at most this many tasks (the newest); `None` keeps all.
    pub max_rows: Option<u64>,
}

impl Retention {
    /// The retention the settings `history_retention` and `history_max_rows` describe.
    pub fn from_config(config: &Config) -> Retention {
        Retention {
            max_age: config.history_retention(),
            max_rows: config.history_max_rows.filter(|rows| *rows > 0),
        }
    }
}

/// Which rows one prune chunk deletes.
enum Selection {
    SeenBefore(i64),
    Oldest(i64),
}

impl TaskHistory {
    /// Deletes tasks first seen before `older_than`, then the oldest until at most `max_rows`
    /// remain. Returns how many tasks were deleted.
    pub async fn prune(
        &self,
        older_than: Option<DateTime<Utc>>,
        max_rows: Option<u64>,
    ) -> Result<u64, HistoryError> {
        let mut deleted = 0;
        if let Some(cutoff) = older_than {
            loop {
                let chunk =
                    delete_chunk(&self.database, Selection::SeenBefore(micros(cutoff))).await?;
                deleted += chunk;
                if chunk < PRUNE_CHUNK as u64 {
                    break;
                }
            }
        }
        if let Some(max_rows) = max_rows {
            loop {
                let total: u64 = self
                    .state_counts()
                    .await?
                    .iter()
                    .map(|(_, tasks)| tasks)
                    .sum();
                let excess = total.saturating_sub(max_rows);
                if excess == 0 {
                    break;
                }
                let chunk_size = i64::try_from(excess)
                    .unwrap_or(PRUNE_CHUNK)
                    .min(PRUNE_CHUNK);
                let chunk = delete_chunk(&self.database, Selection::Oldest(chunk_size)).await?;
                deleted += chunk;
                if chunk == 0 {
                    break;
                }
            }
        }
        if deleted > 0 {
            tracing::info!(deleted, "pruned task history");
        }
        Ok(deleted)
    }

    /// Refreshes SQLite's planner statistics (bounded sampling: milliseconds even for millions
    /// of rows), so filters keep choosing the right index as the table grows. PostgreSQL's
    /// autovacuum does this by itself.
    pub async fn optimize(&self) -> Result<(), HistoryError> {
        if let Database::Sqlite(pool) = &self.database {
            let mut connection = pool
                .acquire()
                .await
                .map_err(DatabaseError::query("optimize"))?;
            for statement in ["PRAGMA analysis_limit = 1000", "PRAGMA optimize = 0x10002"] {
                sqlx::query(statement)
                    .execute(&mut *connection)
                    .await
                    .map_err(DatabaseError::query("optimize"))?;
            }
        }
        Ok(())
    }

    /// Applies `retention` as of now.
    pub async fn apply_retention(&self, retention: &Retention) -> Result<u64, HistoryError> {
        let cutoff = retention
            .max_age
            .and_then(|age| chrono::Duration::from_std(age).ok())
            .and_then(|age| crate::clock::now().checked_sub_signed(age));
        self.prune(cutoff, retention.max_rows).await
    }
}

/// Deletes one chunk and moves the counts; returns how many rows went.
async fn delete_chunk(database: &Database, selection: Selection) -> Result<u64, DatabaseError> {
    let dialect = database.dialect();
    // The oldest rows are those seen before the end of time.
    let (cutoff, limit) = match selection {
        Selection::SeenBefore(cutoff) => (cutoff, PRUNE_CHUNK),
        Selection::Oldest(count) => (i64::MAX, count),
    };
    let inner = format!(
        "SELECT id FROM celeriac_task_history WHERE seen_at < {} ORDER BY seen_at, id LIMIT {}",
        dialect.placeholder(1),
        dialect.placeholder(2)
    );
    let delete = format!("DELETE FROM celeriac_task_history WHERE id IN ({inner}) RETURNING state");
    let counts = "INSERT INTO celeriac_task_history_counts (state, tasks) VALUES (STATE, DELTA) \
                  ON CONFLICT (state) DO UPDATE \
                  SET tasks = celeriac_task_history_counts.tasks + excluded.tasks"
        .replace("STATE", &dialect.placeholder(1))
        .replace("DELTA", &dialect.placeholder(2));
    super::store::write_transaction!(database, |transaction| {
        let states: Vec<String> = sqlx::query_scalar(&delete)
            .bind(cutoff)
            .bind(limit)
            .fetch_all(&mut *transaction)
            .await
            .map_err(DatabaseError::query("delete old tasks"))?;
        let mut deltas: BTreeMap<String, i64> = BTreeMap::new();
        for state in &states {
            *deltas.entry(state.clone()).or_default() -= 1;
        }
        for (state, delta) in deltas {
            sqlx::query(&counts)
                .bind(state)
                .bind(delta)
                .execute(&mut *transaction)
                .await
                .map_err(DatabaseError::query("update state counts"))?;
        }
        Ok(states.len() as u64)
    })
}

/// Applies `retention` (and [`TaskHistory::optimize`]) now and then every `every`, until
/// `shutdown` completes. Errors are logged and the loop goes on (a busy database is no reason
/// to stop monitoring).
pub async fn prune_periodically(
    history: TaskHistory,
    retention: Retention,
    every: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticks.tick() => {
                if let Err(error) = history.apply_retention(&retention).await {
                    tracing::warn!(error = %error, "pruning the task history failed");
                }
                if let Err(error) = history.optimize().await {
                    tracing::warn!(error = %error, "optimizing the task history failed");
                }
            }
        }
    }
}
