//! `GET /api/history`: the SQL history with every filter it has and keyset pages.
//!
//! Parameters: `state` (comma-separated Celery states), `name`, `worker`, `queue`, `task_id`
//! (prefix), `search` (argument repr substring), `time_field` (`seen`, `received`, `started`,
//! `done`) with `since`/`until` (RFC 3339), `limit` (1..=1000, default 50) and `cursor` (the
//! `next` of the previous page). The answer: `{"tasks": [...], "next": cursor or null,
//! "count": {"tasks", "capped"}}`, tasks newest first in Flower's dictionary shape.

use axum::extract::{Query, State};
use axum::Json;
use celeriac::history::{Cursor, TaskFilter, TimeField};
use chrono::DateTime;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::AppError;
use super::flower::task_from_record;
use super::tasks::parse_state;
use crate::dashboard::AppState;

/// Rows per page unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 50;
/// Counts stop here ("10,000+"), which bounds their cost.
const COUNT_CAP: u64 = 10_000;

/// The query parameters (module docs).
#[derive(Debug, Deserialize)]
pub(super) struct HistoryQuery {
    state: Option<String>,
    name: Option<String>,
    worker: Option<String>,
    queue: Option<String>,
    task_id: Option<String>,
    search: Option<String>,
    time_field: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

pub(super) fn time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, AppError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.to_utc())
        .map_err(|_| AppError::BadRequest(format!("time {text:?} is not RFC 3339")))
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|text| !text.trim().is_empty())
}

impl HistoryQuery {
    /// A NUL byte can be in no stored text, and PostgreSQL refuses it in a query parameter
    /// (a 500 before this check): it is the caller's mistake, said as such.
    fn refuse_nul(&self) -> Result<(), AppError> {
        let texts = [
            ("state", &self.state),
            ("name", &self.name),
            ("worker", &self.worker),
            ("queue", &self.queue),
            ("task_id", &self.task_id),
            ("search", &self.search),
            ("cursor", &self.cursor),
        ];
        match texts
            .iter()
            .find(|(_, text)| text.as_deref().is_some_and(|text| text.contains('\0')))
        {
            Some((parameter, _)) => Err(AppError::BadRequest(format!(
                "{parameter} contains a NUL byte"
            ))),
            None => Ok(()),
        }
    }

    fn filter(&self) -> Result<TaskFilter, AppError> {
        self.refuse_nul()?;
        let states = match self.state.as_deref() {
            Some(states) => states
                .split(',')
                .filter(|state| !state.trim().is_empty())
                .map(parse_state)
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let time_field = match self.time_field.as_deref().unwrap_or("seen") {
            "seen" => TimeField::Seen,
            "received" => TimeField::Received,
            "started" => TimeField::Started,
            "done" => TimeField::Done,
            other => {
                return Err(AppError::BadRequest(format!(
                    "time_field {other:?} is not seen, received, started or done"
                )))
            }
        };
        Ok(TaskFilter {
            states,
            name: non_empty(self.name.clone()),
            worker: non_empty(self.worker.clone()),
            queue: non_empty(self.queue.clone()),
            time_field,
            since: self.since.as_deref().map(time).transpose()?,
            until: self.until.as_deref().map(time).transpose()?,
            task_id_prefix: non_empty(self.task_id.clone()),
            args_contains: non_empty(self.search.clone()),
        })
    }
}

/// `GET /api/history`.
pub(super) async fn list(
    State(state): State<AppState>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Value>, AppError> {
    let filter = query.filter()?;
    let cursor = non_empty(query.cursor.clone())
        .map(|token| {
            Cursor::from_token(&token)
                .map_err(|_| AppError::BadRequest(format!("invalid cursor {token:?}")))
        })
        .transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, 1_000);
    let page = state
        .history
        .list(&filter, cursor, limit)
        .await
        .map_err(AppError::internal)?;
    let count = state
        .history
        .count(&filter, COUNT_CAP)
        .await
        .map_err(AppError::internal)?;
    let tasks: Vec<Value> = page.tasks.iter().map(task_from_record).collect();
    Ok(Json(json!({
        "tasks": tasks,
        "next": page.next.map(Cursor::to_token),
        "count": { "tasks": count.tasks, "capped": count.capped },
    })))
}
