//! What the two SQL result backends (`django-db`, Celery's `db+…`) share: errors, skipping
//! unreadable rows, UTC times as text, the result window, and waiting by polling.

use super::BackendError;
use crate::protocol::ResultMeta;
use chrono::{DateTime, NaiveDateTime, Utc};
use std::future::Future;
use std::time::Duration;

/// How often a waiting reader looks again (Celery's `subpolling_interval` for its database
/// backends).
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// A [`BackendError::Database`] maker for `map_err`.
pub(super) fn query_error(operation: &'static str) -> impl FnOnce(sqlx::Error) -> BackendError {
    move |source| BackendError::Database {
        source: crate::db::DatabaseError::Query { operation, source },
    }
}

/// One row read: its id and result, or why it could not be read.
pub(super) type RowResult = Result<(i64, ResultMeta), BackendError>;

/// The rows that could be read; the others are skipped with a warning, as the Redis backend
/// skips documents that are not Celery's JSON.
pub(super) fn readable(rows: Vec<RowResult>) -> impl Iterator<Item = (i64, ResultMeta)> {
    rows.into_iter().filter_map(|row| match row {
        Ok(row) => Some(row),
        Err(error) => {
            tracing::warn!(error = %crate::error::chain(&error), "skipping a task result row that cannot be read");
            None
        }
    })
}

/// The first row's result, for a lookup of one task: None when it is not stored, the error
/// when its row cannot be read.
pub(super) fn first(rows: Vec<RowResult>) -> Result<Option<ResultMeta>, BackendError> {
    rows.into_iter()
        .next()
        .map(|row| row.map(|(_, meta)| meta))
        .transpose()
}

/// `task_ids` in chunks of at most 500 (under SQLite's bound-parameter limit), each with the
/// placeholder list of an `IN (…)` over it.
pub(super) fn id_chunks(
    dialect: crate::db::Dialect,
    task_ids: &[String],
) -> impl Iterator<Item = (String, &[String])> {
    task_ids.chunks(500).map(move |chunk| {
        let placeholders: Vec<String> = (1..=chunk.len())
            .map(|index| dialect.placeholder(index))
            .collect();
        (placeholders.join(", "), chunk)
    })
}

/// A page of a walk in row-id order that asked for `count` rows: the cursor to go on from
/// (the last id when the page was full, 0 when the walk is complete) and the readable results.
pub(super) fn page(rows: Vec<RowResult>, count: usize) -> (u64, Vec<ResultMeta>) {
    let full_page = rows.len() >= count.max(1);
    let rows: Vec<(i64, ResultMeta)> = readable(rows).collect();
    let next = match rows.last() {
        Some((id, _)) if full_page => u64::try_from(*id).unwrap_or(0),
        _ => 0,
    };
    (next, rows.into_iter().map(|(_, meta)| meta).collect())
}

/// A UTC time as Django and SQLAlchemy write it to SQLite (PostgreSQL casts it).
pub(super) fn utc_text(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// [`utc_text`] read back (also with a `+00:00` suffix, or without fractions).
pub(super) fn parse_utc_text(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim_end_matches("+00:00");
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc())
}

/// The oldest `date_done` a catch-up reads, or a cleanup keeps: `result_expires` ago (a day
/// when results never expire, so a table nobody prunes is not read whole at every start).
pub(super) fn window_start(result_expires: Option<Duration>) -> DateTime<Utc> {
    let window = result_expires.unwrap_or(Duration::from_secs(86_400));
    crate::clock::now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::days(1))
}

/// Reads with `get` until the task is ready or `timeout` passes.
pub(super) async fn wait_polling<F, Fut>(
    task_id: &str,
    timeout: Duration,
    mut get: F,
) -> Result<ResultMeta, BackendError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<ResultMeta>, BackendError>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(meta) = get().await? {
            if meta.status.is_ready() {
                return Ok(meta);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(BackendError::Timeout {
                task_id: task_id.to_owned(),
                seconds: timeout.as_secs_f64(),
            });
        }
        tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + POLL_INTERVAL)).await;
    }
}
