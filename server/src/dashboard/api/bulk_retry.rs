//! `POST /api/tasks/bulk_retry`: sends many failed tasks again, for operators.
//!
//! The body ([`BulkRetryRequest`]) names the tasks, `{"task_ids": [...]}`, or a filter over
//! the history, `{"filter": {"state", "name", "worker", "queue", "since", "until", "task_id",
//! "search"}}` (state `FAILURE` when missing; `task_id` a prefix, `search` an argument
//! substring, as in `/api/history`). With `"dry_run": true` it only answers how many tasks a run would
//! retry (`{"tasks", "capped", "cap"}`); nothing changes, so a dry run is not audited.
//!
//! A run picks at most [`BULK_RETRY_CAP`] tasks (a filter: the newest), records
//! `task.bulk_retry` in the audit log, answers `202 {"accepted", "capped", "cap"}` at once and
//! retries them in a background tokio task at the `dashboard_bulk_retry_rate`
//! ([`retry_tasks`]); the new tasks appear in the history as they are sent. Only one run at a
//! time: a second one gets 409 until the first ends. The background task holds a
//! [`RunningGuard`] that clears the flag when it ends, panics included; it is not stopped by
//! the server's shutdown (a run lasts at most 1,000 / rate seconds).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use app::model::{BulkRetryAnswer, BulkRetryFilter, BulkRetryRequest};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use celeriac::history::{retry_tasks, TaskFilter, BULK_RETRY_CAP};
use celeriac::TaskState;

use super::error::AppError;
use super::history::time;
use super::tasks::parse_state;
use crate::dashboard::auth::{Operator, RequireRole};
use crate::dashboard::security::ClientContext;
use crate::dashboard::AppState;

/// Clears the "a bulk retry runs" flag when dropped.
struct RunningGuard(Arc<AtomicBool>);

impl RunningGuard {
    /// Sets the flag; `None` when it was already set (a run is under way).
    fn acquire(flag: &Arc<AtomicBool>) -> Option<RunningGuard> {
        flag.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| RunningGuard(flag.clone()))
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The history filter of a request's `filter`, and its audit description.
fn task_filter(filter: &BulkRetryFilter) -> Result<(TaskFilter, String), AppError> {
    let non_empty = |text: &Option<String>| text.clone().filter(|text| !text.trim().is_empty());
    let state = match non_empty(&filter.state) {
        Some(state) => parse_state(&state)?,
        None => TaskState::Failure,
    };
    let task_filter = TaskFilter {
        states: vec![state],
        name: non_empty(&filter.name),
        worker: non_empty(&filter.worker),
        queue: non_empty(&filter.queue),
        since: non_empty(&filter.since).as_deref().map(time).transpose()?,
        until: non_empty(&filter.until).as_deref().map(time).transpose()?,
        task_id_prefix: non_empty(&filter.task_id),
        args_contains: non_empty(&filter.search),
        ..TaskFilter::default()
    };
    let mut description = vec![format!("state={}", state.as_str())];
    for (field, value) in [
        ("name", &task_filter.name),
        ("worker", &task_filter.worker),
        ("queue", &task_filter.queue),
        ("since", &non_empty(&filter.since)),
        ("until", &non_empty(&filter.until)),
        ("task_id", &task_filter.task_id_prefix),
        ("search", &task_filter.args_contains),
    ] {
        if let Some(value) = value {
            description.push(format!("{field}={value}"));
        }
    }
    Ok((task_filter, description.join(" ")))
}

/// The handler (module docs).
pub(super) async fn bulk_retry(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Json(request): Json<BulkRetryRequest>,
) -> Result<(StatusCode, Json<BulkRetryAnswer>), AppError> {
    let cap = BULK_RETRY_CAP as u64;
    let (task_ids, capped, description) = match (&request.task_ids, &request.filter) {
        (Some(task_ids), None) => {
            let mut task_ids: Vec<String> = task_ids
                .iter()
                .filter(|task_id| !task_id.trim().is_empty())
                .cloned()
                .collect();
            let mut seen = std::collections::HashSet::new();
            task_ids.retain(|task_id| seen.insert(task_id.clone()));
            let capped = task_ids.len() > BULK_RETRY_CAP;
            task_ids.truncate(BULK_RETRY_CAP);
            (task_ids, capped, "selected".to_owned())
        }
        (None, Some(filter)) => {
            let (task_filter, description) = task_filter(filter)?;
            let selection = state
                .history
                .bulk_retry_selection(&task_filter)
                .await
                .map_err(AppError::internal)?;
            (selection.task_ids, selection.capped, description)
        }
        _ => {
            return Err(AppError::BadRequest(
                "give either task_ids or filter".to_owned(),
            ))
        }
    };
    if request.dry_run {
        return Ok((
            StatusCode::OK,
            Json(BulkRetryAnswer {
                tasks: Some(task_ids.len() as u64),
                capped,
                cap,
                ..BulkRetryAnswer::default()
            }),
        ));
    }
    let Some(guard) = RunningGuard::acquire(&state.bulk_retry_running) else {
        return Err(AppError::Conflict(
            "a bulk retry is already running; wait until it ends".to_owned(),
        ));
    };
    let accepted = task_ids.len();
    tracing::info!(tasks = accepted, filter = %description, user = %user.name, "bulk retry accepted");
    state
        .record_action(
            &user,
            client.as_deref(),
            "task.bulk_retry",
            &format!("{accepted} tasks: {description}"),
        )
        .await;
    let history = state.history.clone();
    let producer = state.producer.clone();
    let rate = state.bulk_retry_rate;
    tokio::spawn(async move {
        let _guard = guard;
        retry_tasks(&history, &producer, &task_ids, rate).await;
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(BulkRetryAnswer {
            accepted: Some(accepted as u64),
            capped,
            cap,
            ..BulkRetryAnswer::default()
        }),
    ))
}

#[cfg(test)]
mod tests;
