//! `GET /api/stats/tasks?since=...&until=...`: per task name throughput and runtime
//! percentiles over a window (RFC 3339 times; the last hour by default), from the SQL history
//! ([`celeriac::history::TaskHistory::task_stats`] says why it stays fast).

use app::model::{TaskNameStats, TaskStatsAnswer};
use axum::extract::{Query, State};
use axum::Json;
use chrono::{Duration as TimeDelta, SecondsFormat};
use serde::Deserialize;

use super::error::AppError;
use super::history::time;
use crate::dashboard::AppState;

/// The query parameters.
#[derive(Debug, Deserialize)]
pub(super) struct StatsQuery {
    since: Option<String>,
    until: Option<String>,
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
        Some(text) => time(&text)?,
        None => until - TimeDelta::hours(1),
    };
    if since >= until {
        return Err(AppError::BadRequest(
            "since must be before until".to_owned(),
        ));
    }
    let stats = state
        .history
        .task_stats(since, until)
        .await
        .map_err(AppError::internal)?;
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
