//! `GET /api/stats/tasks?since=...&until=...`: per task name throughput and runtime
//! percentiles over a window, from the SQL history
//! ([`celeriac::history::TaskHistory::task_stats`] says why it stays fast).
//!
//! `until` is RFC 3339 (default: now); `since` is RFC 3339 or a span before `until` such as
//! `15m`, `1h`, `24h`, `7d` (default `1h`), so a page can ask for "the last hour" without a
//! clock of its own.
//!
//! A read folds up to 200,000 rows; two run at once at most, and the rest wait their turn, so
//! a page left open in many tabs costs time, not memory.

use app::model::{TaskNameStats, TaskStatsAnswer};
use axum::extract::{Query, State};
use axum::Json;
use chrono::{Duration as TimeDelta, SecondsFormat};
use serde::Deserialize;

use super::error::AppError;
use super::history::time;
use crate::dashboard::AppState;

/// Statistics reads running at once, for the whole process (see [`tasks`]).
static EXPENSIVE_READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The query parameters.
#[derive(Debug, Deserialize)]
pub(super) struct StatsQuery {
    since: Option<String>,
    until: Option<String>,
}

/// A span such as `15m`, `1h`, `24h`, `7d` (a whole number and `s`, `m`, `h` or `d`).
fn span(text: &str) -> Option<TimeDelta> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let number: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    (number > 0 && number <= 366 * 86_400)
        .then(|| TimeDelta::seconds(number.saturating_mul(seconds)))
}

/// The handler (module docs).
pub(super) async fn tasks(
    State(state): State<AppState>,
    Query(query): Query<StatsQuery>,
) -> Result<Json<TaskStatsAnswer>, AppError> {
    let non_empty = |text: Option<String>| text.filter(|text| !text.trim().is_empty());
    let until = match non_empty(query.until) {
        Some(text) => time(&text)?,
        None => celeriac::clock::now(),
    };
    let since = match non_empty(query.since) {
        Some(text) => match span(&text) {
            Some(span) => until - span,
            None => time(&text)?,
        },
        None => until - TimeDelta::hours(1),
    };
    if since >= until {
        return Err(AppError::BadRequest(
            "since must be before until".to_owned(),
        ));
    }
    let stats = {
        // At most two reads at once; more wait their turn instead of each taking memory and a
        // database connection at the same moment.
        let _turn = EXPENSIVE_READS
            .acquire()
            .await
            .map_err(AppError::internal)?;
        state
            .history
            .task_stats(since, until)
            .await
            .map_err(AppError::internal)?
    };
    Ok(Json(TaskStatsAnswer {
        since: since.to_rfc3339_opts(SecondsFormat::Secs, true),
        until: until.to_rfc3339_opts(SecondsFormat::Secs, true),
        names: stats
            .names
            .into_iter()
            .map(|name| TaskNameStats {
                name: name.name,
                count: name.finished,
                succeeded: name.succeeded,
                failed: name.failed,
                tasks_per_minute: name.tasks_per_minute,
                runtime_p50: name.runtime_p50,
                runtime_p95: name.runtime_p95,
                runtime_p99: name.runtime_p99,
            })
            .collect(),
        sampled: stats.sampled,
    }))
}
