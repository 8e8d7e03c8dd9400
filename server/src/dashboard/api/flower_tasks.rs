//! Flower's task-sending and result endpoints, for the scripts that drive Celery through
//! Flower: `POST /api/task/async-apply/{name}`, `/send-task/{name}`, `/apply/{name}`,
//! `/abort/{id}`, `GET /api/task/result/{id}` and `GET /api/task/types`.
//!
//! Bodies and answers are Flower 2.2's: the body is `{"args": [...], "kwargs": {...}}` with
//! `apply_async`'s options beside them (`countdown`, `eta`, `expires`, `queue`, `priority`,
//! `task_id`, ...; an `options` object is read too); answers are `{"task-id", "state"}` and,
//! once the task is ready, `result` (`traceback` too on failure). Errors are the API's
//! `{"error": ...}` with Flower's status and wording.
//!
//! Flower refuses `async-apply` and `apply` for a task its own Celery app does not define; a
//! dashboard has no task code, so a name is known when it is one of Celery's built-in tasks,
//! the monitor has seen it in events, or a worker lists it as registered. `send-task` sends
//! any name. Sending is an operator's action and is written to the audit log as `task.send`
//! on `name[id]`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use celeriac::backend::BackendError;
use celeriac::control::{BroadcastOptions, Inspect};
use celeriac::producer::SendOptions;
use celeriac::protocol::ResultMeta;
use celeriac::TaskState;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::AppError;
use crate::dashboard::auth::{AuthUser, Operator, RequireRole};
use crate::dashboard::security::ClientContext;
use crate::dashboard::AppState;

/// Celery's own tasks, which Flower's app always defines.
const CELERY_BUILTINS: [&str; 9] = [
    "celery.accumulate",
    "celery.backend_cleanup",
    "celery.chain",
    "celery.chord",
    "celery.chord_unlock",
    "celery.chunks",
    "celery.group",
    "celery.map",
    "celery.starmap",
];

/// The longest `apply` or `result?timeout=` waits (Flower waits without end; an HTTP request
/// held for hours helps no one). Past it the answer is the task's state so far, as Flower
/// answers a timeout.
const MAX_WAIT: Duration = Duration::from_secs(600);

/// How long asking the workers whether they know a task name may take.
const REGISTERED_TIMEOUT: Duration = Duration::from_secs(1);

/// Flower's date format for `eta` and `expires`.
const FLOWER_DATE: &str = "%Y-%m-%d %H:%M:%S%.f";

/// A task call read from Flower's request body.
struct Call {
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    options: SendOptions,
    /// `apply`'s wait.
    timeout: Option<Duration>,
}

fn invalid_option() -> AppError {
    AppError::BadRequest("Invalid option".to_owned())
}

/// Seconds given as a number or numeric text.
fn seconds(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
    .filter(|seconds: &f64| seconds.is_finite() && *seconds >= 0.0)
}

fn duration(value: &Value) -> Result<Duration, AppError> {
    seconds(value)
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .ok_or_else(invalid_option)
}

/// Flower's `%Y-%m-%d %H:%M:%S.%f` (UTC), or RFC 3339.
fn date(value: &Value) -> Result<DateTime<Utc>, AppError> {
    let text = value.as_str().ok_or_else(invalid_option)?.trim();
    NaiveDateTime::parse_from_str(text, FLOWER_DATE)
        .map(|time| time.and_utc())
        .or_else(|_| DateTime::parse_from_rfc3339(text).map(|time| time.to_utc()))
        .map_err(|_| invalid_option())
}

fn text(value: &Value) -> Result<String, AppError> {
    value
        .as_str()
        .map(str::to_owned)
        .filter(|text| !text.is_empty())
        .ok_or_else(invalid_option)
}

/// Reads Flower's body: 400 with Flower's messages for what it refuses.
fn read_call(body: &[u8]) -> Result<Call, AppError> {
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|error| AppError::BadRequest(error.to_string()))?
    };
    let Value::Object(mut fields) = body else {
        return Err(AppError::BadRequest("invalid options".to_owned()));
    };
    let args = match fields.remove("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(args)) => args,
        Some(_) => return Err(AppError::BadRequest("args must be an array".to_owned())),
    };
    let kwargs = match fields.remove("kwargs") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(kwargs)) => kwargs,
        Some(_) => return Err(AppError::BadRequest("kwargs must be an object".to_owned())),
    };
    if let Some(Value::Object(nested)) = fields.remove("options") {
        for (name, value) in nested {
            fields.entry(name).or_insert(value);
        }
    }
    let mut options = SendOptions::new();
    let mut timeout = None;
    for (name, value) in &fields {
        if value.is_null() {
            continue;
        }
        match name.as_str() {
            "timeout" => {
                timeout = Some(
                    duration(value)
                        .map_err(|_| AppError::BadRequest("Invalid timeout".to_owned()))?,
                );
            }
            "countdown" => options.countdown = Some(duration(value)?),
            "eta" => options.eta = Some(date(value)?),
            "expires" => {
                options.expires = Some(match seconds(value) {
                    Some(after) => {
                        let after = chrono::Duration::from_std(duration(&json!(after))?)
                            .map_err(|_| invalid_option())?;
                        celeriac::clock::now() + after
                    }
                    None => date(value)?,
                });
            }
            "queue" => options.queue = Some(text(value)?),
            "task_id" => options.task_id = Some(text(value)?),
            "shadow" => options.shadow = Some(text(value)?),
            "priority" => {
                let priority = value
                    .as_u64()
                    .and_then(|priority| u8::try_from(priority).ok())
                    .filter(|priority| *priority <= 9)
                    .ok_or_else(invalid_option)?;
                options.priority = Some(priority);
            }
            "time_limit" => options.time_limit = Some(duration(value)?),
            "soft_time_limit" => options.soft_time_limit = Some(duration(value)?),
            "ignore_result" => {
                options.ignore_result = value.as_bool().ok_or_else(invalid_option)?;
            }
            other => {
                tracing::debug!(option = other, "an apply_async option the API does not use");
            }
        }
    }
    Ok(Call {
        args,
        kwargs,
        options,
        timeout,
    })
}

/// Whether Flower would know `name`: a Celery built-in, seen in events, or registered on a
/// worker that answers within [`REGISTERED_TIMEOUT`].
async fn task_known(state: &AppState, name: &str) -> Result<bool, AppError> {
    if CELERY_BUILTINS.contains(&name) {
        return Ok(true);
    }
    let seen = state
        .monitor
        .read(|cluster| cluster.task_names().iter().any(|known| known.name == name));
    if seen {
        return Ok(true);
    }
    let replies = state
        .control
        .inspect(
            Inspect::Registered,
            &BroadcastOptions::default().timeout(REGISTERED_TIMEOUT),
        )
        .await
        .map_err(AppError::internal)?;
    // Celery lists `name [rate_limit=...]` when asked for task details; the name comes first.
    Ok(replies.values().any(|registered| {
        registered.as_array().is_some_and(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .any(|entry| entry == name || entry.split_whitespace().next() == Some(name))
        })
    }))
}

/// Flower's 404 for a name no worker or event has shown.
async fn require_known(state: &AppState, name: &str) -> Result<(), AppError> {
    if task_known(state, name).await? {
        Ok(())
    } else {
        Err(AppError::NotFound(format!("Unknown task '{name}'")))
    }
}

/// Publishes `call` as task `name`, audits it, and answers the new task's id.
async fn send(
    state: &AppState,
    user: &AuthUser,
    client: Option<&ClientContext>,
    name: &str,
    call: Call,
) -> Result<String, AppError> {
    let sent = state
        .producer
        .send_task(name, call.args, call.kwargs, call.options)
        .await
        .map_err(|error| match error {
            celeriac::Error::Protocol(error) => AppError::BadRequest(error.to_string()),
            error => AppError::internal(error),
        })?;
    let task_id = sent.id.0.clone();
    tracing::info!(task_id = %task_id, task_name = name, user = %user.name, "task sent from the dashboard API");
    state
        .record_action(user, client, "task.send", &format!("{name}[{task_id}]"))
        .await;
    Ok(task_id)
}

/// The backend's state of `task_id`, PENDING when nothing is stored; a custom state (Celery's
/// `ABORTED`) is read as written.
async fn current_state(
    state: &AppState,
    task_id: &str,
) -> Result<(String, Option<ResultMeta>), AppError> {
    let Some(backend) = state.producer.backend() else {
        return Err(no_backend());
    };
    match backend.get(task_id).await {
        Ok(Some(meta)) => Ok((meta.status.as_str().to_owned(), Some(meta))),
        Ok(None) => Ok((TaskState::Pending.as_str().to_owned(), None)),
        Err(BackendError::InvalidDocument { .. }) => {
            Ok((custom_state(state, task_id).await?, None))
        }
        Err(error) => Err(AppError::internal(error)),
    }
}

async fn custom_state(state: &AppState, task_id: &str) -> Result<String, AppError> {
    let raw = match &state.abort_store {
        Some(store) => store.raw_state(task_id).await.map_err(AppError::internal)?,
        None => None,
    };
    Ok(raw.unwrap_or_else(|| TaskState::Pending.as_str().to_owned()))
}

fn no_backend() -> AppError {
    AppError::Unavailable("the result backend is not configured".to_owned())
}

/// Flower's answer for a task: `task-id` and `state`, and once it is ready `result` (an
/// exception as its repr, as Flower's `safe_result` shows it) and, on failure, `traceback`.
fn answer(task_id: &str, state: &str, meta: Option<&ResultMeta>) -> Value {
    let mut answer = json!({ "task-id": task_id, "state": state });
    if let (Some(meta), Some(fields)) = (
        meta.filter(|meta| meta.status.is_ready()),
        answer.as_object_mut(),
    ) {
        let result = match meta.status {
            TaskState::Success => meta.result.clone(),
            _ => meta
                .exception()
                .map_or_else(|| meta.result.clone(), |exception| json!(exception.repr())),
        };
        fields.insert("result".into(), result);
        if meta.status == TaskState::Failure {
            fields.insert("traceback".into(), json!(meta.traceback));
        }
    }
    answer
}

/// Waits up to `timeout` for `task_id` to be ready and answers as Flower does.
async fn wait_answer(
    state: &AppState,
    task_id: &str,
    timeout: Duration,
) -> Result<Value, AppError> {
    let Some(backend) = state.producer.backend() else {
        return Err(no_backend());
    };
    match backend.wait_ready(task_id, timeout.min(MAX_WAIT)).await {
        Ok(meta) => Ok(answer(task_id, meta.status.as_str(), Some(&meta))),
        Err(BackendError::Timeout { .. } | BackendError::InvalidDocument { .. }) => {
            let (current, meta) = current_state(state, task_id).await?;
            Ok(answer(task_id, &current, meta.as_ref()))
        }
        Err(error) => Err(AppError::internal(error)),
    }
}

/// `{"task-id"}` plus the state the backend has right after sending, when there is one.
async fn sent_answer(state: &AppState, task_id: &str) -> Result<Json<Value>, AppError> {
    if state.producer.backend().is_none() {
        return Ok(Json(json!({ "task-id": task_id })));
    }
    let (current, _) = current_state(state, task_id).await?;
    Ok(Json(json!({ "task-id": task_id, "state": current })))
}

/// `POST /api/task/async-apply/{name}`: sends a known task; 404 for an unknown name.
pub(super) async fn async_apply(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let call = read_call(&body)?;
    require_known(&state, &name).await?;
    let task_id = send(&state, &user, client.as_deref(), &name, call).await?;
    sent_answer(&state, &task_id).await
}

/// `POST /api/task/send-task/{name}`: sends any task name (Celery's `send_task`).
pub(super) async fn send_task(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let call = read_call(&body)?;
    let task_id = send(&state, &user, client.as_deref(), &name, call).await?;
    sent_answer(&state, &task_id).await
}

/// `POST /api/task/apply/{name}`: sends a known task and waits for its result (the body's
/// `timeout`, at most [`MAX_WAIT`]).
pub(super) async fn apply(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let mut call = read_call(&body)?;
    require_known(&state, &name).await?;
    if state.producer.backend().is_none() {
        return Err(no_backend());
    }
    let timeout = call.timeout.take().unwrap_or(MAX_WAIT);
    let task_id = send(&state, &user, client.as_deref(), &name, call).await?;
    wait_answer(&state, &task_id, timeout).await.map(Json)
}

/// `timeout` of `GET /api/task/result/{id}`.
#[derive(Debug, Deserialize)]
pub(super) struct ResultQuery {
    timeout: Option<String>,
}

/// `GET /api/task/result/{task_id}?timeout=`: the backend's state, and the result once ready;
/// with `timeout` (seconds) it waits that long for the task to be ready first.
pub(super) async fn result(
    State(state): State<AppState>,
    Path(task_id): Path<String>,
    Query(query): Query<ResultQuery>,
) -> Result<Json<Value>, AppError> {
    let timeout = query
        .timeout
        .as_deref()
        .filter(|timeout| !timeout.trim().is_empty())
        .map(|timeout| {
            duration(&json!(timeout))
                .map_err(|_| AppError::BadRequest(format!("invalid timeout {timeout:?}")))
        })
        .transpose()?
        .filter(|timeout| !timeout.is_zero());
    if let Some(timeout) = timeout {
        return wait_answer(&state, &task_id, timeout).await.map(Json);
    }
    let (current, meta) = current_state(&state, &task_id).await?;
    Ok(Json(answer(&task_id, &current, meta.as_ref())))
}

/// `POST /api/task/abort/{task_id}`: sets Celery's `ABORTED` state, which an `AbortableTask`
/// checks (a task that already succeeded keeps its result, as in Celery).
pub(super) async fn abort(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(task_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let Some(store) = &state.abort_store else {
        return Err(AppError::Unavailable(
            "aborting needs the Redis result backend".to_owned(),
        ));
    };
    let written = store.abort(&task_id).await.map_err(AppError::internal)?;
    tracing::info!(task_id = %task_id, written, user = %user.name, "task aborted from the dashboard API");
    state
        .record_action(&user, client.as_deref(), "task.abort", &task_id)
        .await;
    Ok(Json(json!({ "message": format!("Aborted '{task_id}'") })))
}

/// `GET /api/task/types`: the task names seen in events, sorted (Flower's `task-types`).
pub(super) async fn types(State(state): State<AppState>) -> Json<Value> {
    let names: Vec<String> = state.monitor.read(|cluster| {
        cluster
            .task_names()
            .into_iter()
            .map(|stats| stats.name)
            .filter(|name| name != celeriac::events::state::OTHER_TASK_NAMES)
            .collect()
    });
    Json(json!({ "task-types": names }))
}
