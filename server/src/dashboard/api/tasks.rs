//! Tasks: Flower's `GET /api/tasks`, `GET /api/task/info/{id}` and
//! `POST /api/task/revoke/{id}`, read from the SQL history (the live state as a fallback for a
//! task the recorder has not written yet), and our `POST /api/task/retry/{id}`.

use crate::dashboard::auth::{Operator, RequireRole};
use crate::dashboard::security::ClientContext;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use celeriac::control::BroadcastOptions;
use celeriac::history::{retry_task, Cursor, RetryError, TaskFilter, TimeField};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::AppError;
use super::flower::{task_from_record, task_from_snapshot};
use super::search::{Query as SearchQuery, SortBy};
use crate::dashboard::AppState;

/// The most tasks one `/api/tasks` call returns (Flower returns all it holds, at most its
/// `max_tasks`, 10,000).
const MAX_TASKS: usize = 10_000;
/// Rows read per history page while walking to `offset + limit`.
const PAGE_ROWS: u32 = 1_000;

/// Flower's query parameters of `/api/tasks`.
#[derive(Debug, Deserialize)]
pub(super) struct TasksQuery {
    limit: Option<usize>,
    #[serde(default)]
    offset: usize,
    state: Option<String>,
    workername: Option<String>,
    taskname: Option<String>,
    /// Flower's `%Y-%m-%d %H:%M` (UTC).
    received_start: Option<String>,
    received_end: Option<String>,
    /// `name`, `state`, `received`, `started`, `-` first for descending.
    sort_by: Option<String>,
    /// Flower's search syntax (`search.rs`).
    search: Option<String>,
}

/// Reads Celery's state names (`SUCCESS`, case-insensitive).
pub(super) fn parse_state(text: &str) -> Result<celeriac::TaskState, AppError> {
    serde_json::from_value(Value::String(text.trim().to_ascii_uppercase()))
        .map_err(|_| AppError::BadRequest(format!("unknown task state {text:?}")))
}

fn flower_time(text: &str) -> Result<DateTime<Utc>, AppError> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .map(|time| time.and_utc())
        .or_else(|_| DateTime::parse_from_rfc3339(text).map(|time| time.to_utc()))
        .map_err(|_| {
            AppError::BadRequest(format!(
                "time {text:?} is neither YYYY-MM-DD HH:MM nor RFC 3339"
            ))
        })
}

/// Flower's filter parameters: blank or `All` (its page's "any" choice) means no filter.
fn chosen(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.is_empty() && value != "All")
}

/// `GET /api/tasks`: task id → Flower's task dictionary, newest first, or in `sort_by` order;
/// `search` filters with Flower's syntax.
///
/// Without `sort_by` and `search` the history is read only down to `offset + limit`. With
/// either, the newest 10,000 tasks the other filters select are read, then searched and
/// sorted, which is what Flower does over the (at most 10,000) tasks it keeps.
pub(super) async fn list(
    State(state): State<AppState>,
    Query(query): Query<TasksQuery>,
) -> Result<Json<Map<String, Value>>, AppError> {
    let sort_by = query
        .sort_by
        .as_deref()
        .filter(|sort_by| !sort_by.is_empty())
        .map(SortBy::parse)
        .transpose()
        .map_err(AppError::BadRequest)?;
    let search = query
        .search
        .as_deref()
        .map(SearchQuery::parse)
        .transpose()
        .map_err(|error| AppError::BadRequest(error.to_string()))?
        .filter(|search| *search != SearchQuery::All);
    let limit = query.limit.unwrap_or(MAX_TASKS).min(MAX_TASKS);
    let filter = TaskFilter {
        states: chosen(query.state)
            .as_deref()
            .map(parse_state)
            .transpose()?
            .into_iter()
            .collect(),
        name: chosen(query.taskname),
        worker: chosen(query.workername),
        time_field: TimeField::Received,
        since: query
            .received_start
            .as_deref()
            .map(flower_time)
            .transpose()?,
        until: query.received_end.as_deref().map(flower_time).transpose()?,
        ..TaskFilter::default()
    };
    let whole = sort_by.is_some() || search.is_some();
    let (skip, wanted) = if whole {
        (0, MAX_TASKS)
    } else {
        (
            query.offset,
            query.offset.saturating_add(limit).min(MAX_TASKS),
        )
    };
    let mut tasks: Vec<(String, Value)> = Vec::new();
    let mut seen = 0usize;
    let mut cursor: Option<Cursor> = None;
    while seen < wanted {
        let page = state
            .history
            .list(&filter, cursor, PAGE_ROWS)
            .await
            .map_err(AppError::internal)?;
        for record in &page.tasks {
            if seen >= skip && seen < wanted {
                tasks.push((record.task_id.clone(), task_from_record(record)));
            }
            seen += 1;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if whole {
        if let Some(search) = &search {
            tasks.retain(|(_, task)| search.matches(task));
        }
        if let Some(sort_by) = sort_by {
            sort_by.sort(&mut tasks);
        }
        tasks = tasks.into_iter().skip(query.offset).take(limit).collect();
    }
    add_children(&state, &mut tasks).await?;
    Ok(Json(tasks.into_iter().collect()))
}

/// Fills Flower's `children` (the ids of the tasks each one sent) from the history.
async fn add_children(state: &AppState, tasks: &mut [(String, Value)]) -> Result<(), AppError> {
    let ids: Vec<String> = tasks.iter().map(|(id, _)| id.clone()).collect();
    let mut children = state
        .history
        .children_of(&ids)
        .await
        .map_err(AppError::internal)?;
    for (id, task) in tasks.iter_mut() {
        if let (Some(fields), Some(ids)) = (task.as_object_mut(), children.remove(id)) {
            fields.insert("children".into(), json!(ids));
        }
    }
    Ok(())
}

/// `GET /api/task/info/{task_id}`: Flower's dictionary (`children` as ids), plus our
/// `timeline`, `retried_as` and the workflow: `group_id`, `child_tasks` and `group`
/// (`{task_id, name, state}` each), a chord member's `chord_body` (the same shape) and, while
/// its chord waits, `chord: {done, size}`.
pub(super) async fn info(
    State(state): State<AppState>,
    Path(task_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let detail = state
        .history
        .task(&task_id)
        .await
        .map_err(AppError::internal)?;
    if let Some(detail) = detail {
        let mut task = task_from_record(&detail.task);
        let timeline: Vec<Value> = detail
            .timeline
            .iter()
            .map(|entry| timeline_entry(entry.kind.as_type(), entry.at, entry.hostname.as_deref()))
            .collect();
        let redis_backend = state
            .producer
            .backend()
            .and_then(|backend| backend.as_redis());
        let chord = match (&detail.task.group_id, redis_backend) {
            (Some(group_id), Some(backend)) => backend
                .chord_progress(group_id)
                .await
                .ok()
                .flatten()
                .map(|(done, size)| json!({"done": done, "size": size})),
            _ => None,
        };
        let entry = |task: &celeriac::history::WorkflowTask| -> Value {
            json!({"task_id": task.task_id, "name": task.name, "state": task.state.as_str()})
        };
        let workflow = |tasks: &[celeriac::history::WorkflowTask]| -> Value {
            tasks.iter().map(entry).collect()
        };
        if let Some(fields) = task.as_object_mut() {
            fields.insert("timeline".into(), Value::Array(timeline));
            fields.insert("retried_as".into(), json!(detail.retried_as));
            fields.insert("group_id".into(), json!(detail.task.group_id));
            let child_ids: Vec<&str> = detail
                .children
                .iter()
                .map(|child| child.task_id.as_str())
                .collect();
            fields.insert("children".into(), json!(child_ids));
            fields.insert("child_tasks".into(), workflow(&detail.children));
            fields.insert("group".into(), workflow(&detail.group));
            fields.insert("chord".into(), json!(chord));
            fields.insert(
                "chord_body".into(),
                detail.chord_body.as_ref().map_or(Value::Null, entry),
            );
        }
        return Ok(Json(task));
    }
    // Not written to the history yet (the recorder batches): the live state, with the
    // timeline its timestamps give, so the page shows the same sections either way.
    match state.monitor.read(|cluster| cluster.task(&task_id)) {
        Some(live) => {
            let mut task = task_from_snapshot(&live);
            let mut timeline: Vec<(DateTime<Utc>, &str)> = [
                (live.sent, "task-sent"),
                (live.received, "task-received"),
                (live.started, "task-started"),
                (live.retried, "task-retried"),
                (live.succeeded, "task-succeeded"),
                (live.failed, "task-failed"),
                (live.revoked, "task-revoked"),
                (live.rejected, "task-rejected"),
            ]
            .into_iter()
            .filter_map(|(at, kind)| Some((at?, kind)))
            .collect();
            timeline.sort_by_key(|(at, _)| *at);
            let timeline: Vec<Value> = timeline
                .into_iter()
                .map(|(at, kind)| timeline_entry(kind, at, live.worker.as_deref()))
                .collect();
            if let Some(fields) = task.as_object_mut() {
                fields.insert("timeline".into(), Value::Array(timeline));
                fields.insert("retried_as".into(), json!([]));
            }
            Ok(Json(task))
        }
        None => Err(AppError::NotFound(format!("Unknown task '{task_id}'"))),
    }
}

/// One line of a task's timeline as the detail page reads it, whichever source it came from.
fn timeline_entry(kind: &str, at: DateTime<Utc>, hostname: Option<&str>) -> Value {
    json!({
        "type": kind,
        "timestamp": at.timestamp_micros() as f64 / 1e6,
        "hostname": hostname,
    })
}

/// Flower's `revoke` parameters.
#[derive(Debug, Deserialize)]
pub(super) struct RevokeQuery {
    /// `true`/`1`/`yes` stops a running task too.
    terminate: Option<String>,
    /// The signal for `terminate` (default `SIGTERM`).
    signal: Option<String>,
}

/// Flower's boolean parameters: `true`, `1`, `yes`, `on` (any case) are true.
pub(super) fn flag(value: Option<&str>) -> bool {
    value.is_some_and(|value| {
        matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "true" | "1" | "yes" | "on"
        )
    })
}

/// `POST /api/task/revoke/{task_id}?terminate=true&signal=SIGKILL`: broadcasts the revoke (no
/// replies awaited, as Flower) and answers Flower's message.
pub(super) async fn revoke(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(task_id): Path<String>,
    Query(query): Query<RevokeQuery>,
) -> Result<Json<Value>, AppError> {
    let terminate = flag(query.terminate.as_deref());
    let signal = query.signal.as_deref().filter(|signal| !signal.is_empty());
    state
        .control
        .revoke(
            &[task_id.as_str()],
            terminate,
            signal,
            &BroadcastOptions::default().without_reply(),
        )
        .await
        .map_err(AppError::internal)?;
    tracing::info!(task_id = %task_id, terminate, user = %user.name, "task revoked from the dashboard API");
    let action = if terminate {
        "task.terminate"
    } else {
        "task.revoke"
    };
    state
        .record_action(&user, client.as_deref(), action, &task_id)
        .await;
    Ok(Json(json!({ "message": format!("Revoked '{task_id}'") })))
}

/// `POST /api/task/retry/{task_id}`: sends the task again with its exact arguments; 404 for an
/// unknown task, 409 when its name is unknown, 422 when its arguments are.
pub(super) async fn retry(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(task_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    match retry_task(&state.history, &state.producer, &task_id).await {
        Ok(result) => {
            tracing::info!(task_id = %task_id, retry = %result.id, user = %user.name, "task retried from the dashboard API");
            state
                .record_action(&user, client.as_deref(), "task.retry", &task_id)
                .await;
            Ok(Json(json!({ "task-id": result.id.0, "retry_of": task_id })))
        }
        Err(error @ RetryError::UnknownTask { .. }) => Err(AppError::NotFound(error.to_string())),
        Err(error @ RetryError::NameUnknown { .. }) => Err(AppError::Conflict(error.to_string())),
        Err(error @ RetryError::ArgumentsUnknown { .. }) => {
            Err(AppError::Unprocessable(error.to_string()))
        }
        Err(error) => Err(AppError::internal(error)),
    }
}
