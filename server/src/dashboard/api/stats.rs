//! `GET /api/stats/tasks?since=...&until=...`: per task name throughput and runtime
//! percentiles over a window, from the SQL history
//! ([`celeriac::history::TaskHistory::task_stats`] says why it stays fast).
//!
//! `until` is RFC 3339 (default: now); `since` is RFC 3339 or a span before `until` such as
//! `15m`, `1h`, `24h`, `7d` (default `1h`), so a page can ask for "the last hour" without a
//! clock of its own.
//!
//! A read folds up to 200,000 rows, so answers are shared: a window whose end is "now" ends
//! at the next whole second instead, and an answer is kept for [`FRESH_FOR`], so any number
//! of tabs and scripts polling "the last hour" cost one read a second and see tasks at most a
//! second late. One read runs at a time; callers that waited for it then find its answer. Eight pollers without this held the
//! dashboard at 150 % CPU and 400 MB (issue 13's soak run).

use app::model::{TaskNameStats, TaskStatsAnswer};
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Duration as TimeDelta, SecondsFormat};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::PoisonError;
use std::time::Instant;

use super::error::AppError;
use super::history::time;
use crate::dashboard::AppState;

/// How long an answer is shared, and the step "now" is rounded up to.
const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(1);
/// Windows remembered at most (a caller may ask for any window).
const CACHED_WINDOWS: usize = 32;

/// Recent answers by window `(since, until)` in microseconds, and the lock one read at a time
/// holds. One per dashboard.
#[derive(Debug)]
pub(crate) struct StatsCache {
    answers: std::sync::Mutex<HashMap<(i64, i64), (Instant, TaskStatsAnswer)>>,
    reading: tokio::sync::Mutex<()>,
}

impl Default for StatsCache {
    fn default() -> Self {
        StatsCache {
            answers: std::sync::Mutex::default(),
            reading: tokio::sync::Mutex::const_new(()),
        }
    }
}

impl StatsCache {
    fn fresh(&self, window: (i64, i64)) -> Option<TaskStatsAnswer> {
        let answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        answers
            .get(&window)
            .filter(|(at, _)| at.elapsed() < FRESH_FOR)
            .map(|(_, answer)| answer.clone())
    }

    fn keep(&self, window: (i64, i64), answer: &TaskStatsAnswer) {
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        answers.retain(|_, (at, _)| at.elapsed() < FRESH_FOR);
        if answers.len() >= CACHED_WINDOWS {
            answers.clear();
        }
        answers.insert(window, (Instant::now(), answer.clone()));
    }
}

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
        None => {
            let now = celeriac::clock::now();
            let step = FRESH_FOR.as_micros() as i64;
            let micros = now.timestamp_micros();
            let up = (step - micros.rem_euclid(step)) % step;
            DateTime::from_timestamp_micros(micros + up).unwrap_or(now)
        }
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
    let window = (since.timestamp_micros(), until.timestamp_micros());
    let cache = &state.task_stats;
    if let Some(answer) = cache.fresh(window) {
        return Ok(Json(answer));
    }
    let _turn = cache.reading.lock().await;
    // Whoever held the turn may just have read this window.
    if let Some(answer) = cache.fresh(window) {
        return Ok(Json(answer));
    }
    let stats = state
        .history
        .task_stats(since, until)
        .await
        .map_err(AppError::internal)?;
    let answer = TaskStatsAnswer {
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
    };
    cache.keep(window, &answer);
    Ok(Json(answer))
}
