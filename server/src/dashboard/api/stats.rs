//! `GET /api/stats/tasks?since=...&until=...`: per task name throughput and runtime
//! percentiles over a window, from the SQL history
//! ([`celeriac::history::TaskHistory::task_stats`] says why it stays fast).
//!
//! `until` is RFC 3339 (default: now); `since` is RFC 3339 or a span before `until` such as
//! `15m`, `1h`, `24h`, `7d` (default `1h`), so a page can ask for "the last hour" without a
//! clock of its own.
//!
//! A read folds up to 200,000 rows, so answers are shared. A window whose end is "now" ends at
//! the next whole second instead and is remembered by its span ("the last hour"), so any
//! number of tabs and scripts polling it share one answer. An answer is shared for
//! [`FRESH_FOR`] or for [`COST_FACTOR`] times as long as its read took, whichever is longer
//! (at most [`FRESH_AT_MOST`]): a read that takes 2 s on a busy history is done at most every
//! 8 s, so the reads take at most a fifth of one core whatever the polling. One read runs at a
//! time; callers that waited for it then find its answer. The answer's `until` says which
//! moment it describes. Eight pollers without sharing held the dashboard at 150 % CPU and
//! 400 MB; sharing only for a second still kept one 2.4 s read running all the time, answered
//! p99 in 10 s and, with the pool busy, 500s (issue 13's soak run).

use app::model::{TaskNameStats, TaskStatsAnswer};
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Duration as TimeDelta, SecondsFormat};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use super::error::AppError;
use super::history::time;
use crate::dashboard::AppState;

/// How long an answer is shared at least, and the step "now" is rounded up to.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// An answer is shared for this many times as long as its read took.
const COST_FACTOR: u32 = 4;
/// How long an answer is shared at most, however slow its read was.
const FRESH_AT_MOST: Duration = Duration::from_secs(30);
/// Windows remembered at most (a caller may ask for any window).
const CACHED_WINDOWS: usize = 32;

/// Which window an answer is for: a span before "now", or a fixed window, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Window {
    Last(i64),
    Fixed(i64, i64),
}

/// An answer and until when it is shared.
#[derive(Debug)]
struct Kept {
    until: Instant,
    answer: TaskStatsAnswer,
}

/// Recent answers by window, and the lock one read at a time holds. One per dashboard.
#[derive(Debug)]
pub(crate) struct StatsCache {
    answers: std::sync::Mutex<HashMap<Window, Kept>>,
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
    fn fresh(&self, window: Window) -> Option<TaskStatsAnswer> {
        let answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        answers
            .get(&window)
            .filter(|kept| Instant::now() < kept.until)
            .map(|kept| kept.answer.clone())
    }

    /// Keeps `answer`, whose read took `took`, for [`shared_for`] it.
    fn keep(&self, window: Window, answer: &TaskStatsAnswer, took: Duration) {
        let shared_for = shared_for(took);
        let now = Instant::now();
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        answers.retain(|_, kept| now < kept.until);
        if answers.len() >= CACHED_WINDOWS {
            answers.clear();
        }
        answers.insert(
            window,
            Kept {
                until: now + shared_for,
                answer: answer.clone(),
            },
        );
    }
}

/// How long an answer whose read took `took` is shared (module docs).
fn shared_for(took: Duration) -> Duration {
    took.saturating_mul(COST_FACTOR)
        .clamp(FRESH_FOR, FRESH_AT_MOST)
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
    let until_text = non_empty(query.until);
    let until_now = until_text.is_none();
    let until = match until_text {
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
    let window = if until_now {
        Window::Last((until - since).num_microseconds().unwrap_or(i64::MAX))
    } else {
        Window::Fixed(since.timestamp_micros(), until.timestamp_micros())
    };
    let cache = &state.task_stats;
    if let Some(answer) = cache.fresh(window) {
        return Ok(Json(answer));
    }
    let _turn = cache.reading.lock().await;
    // Whoever held the turn may just have read this window.
    if let Some(answer) = cache.fresh(window) {
        return Ok(Json(answer));
    }
    let started = Instant::now();
    let stats = state
        .history
        .task_stats(since, until)
        .await
        .map_err(AppError::internal)?;
    let took = started.elapsed();
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
    cache.keep(window, &answer, took);
    Ok(Json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_reads_are_shared_longer_within_bounds() {
        assert_eq!(shared_for(Duration::from_millis(3)), FRESH_FOR);
        assert_eq!(
            shared_for(Duration::from_millis(2_400)),
            Duration::from_millis(9_600)
        );
        assert_eq!(shared_for(Duration::from_secs(600)), FRESH_AT_MOST);
    }

    #[test]
    fn a_window_ending_now_is_shared_by_its_span() {
        let cache = StatsCache::default();
        let answer = TaskStatsAnswer {
            since: "a".into(),
            until: "b".into(),
            names: Vec::new(),
            sampled: false,
        };
        cache.keep(Window::Last(3_600_000_000), &answer, Duration::from_secs(2));
        assert_eq!(cache.fresh(Window::Last(3_600_000_000)), Some(answer));
        assert_eq!(cache.fresh(Window::Last(60_000_000)), None);
        assert_eq!(cache.fresh(Window::Fixed(0, 3_600_000_000)), None);
    }
}
