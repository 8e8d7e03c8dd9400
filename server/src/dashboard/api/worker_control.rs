//! The worker actions: remote-control commands sent to one worker, each waiting for its reply.
//!
//! Our paths: `POST /api/worker/{name}/add_consumer?queue=Q`, `/cancel_consumer?queue=Q`,
//! `/pool_grow?n=1`, `/pool_shrink?n=1`, `/rate_limit?task=T&value=10/m`,
//! `/time_limit?task=T&soft=S&hard=H`, `/shutdown`. Flower's, for its scripts:
//! `POST /api/worker/queue/add-consumer/{name}?queue=`, `/api/worker/queue/cancel-consumer/{name}`,
//! `/api/worker/pool/grow/{name}?n=`, `/api/worker/pool/shrink/{name}?n=`,
//! `/api/worker/shutdown/{name}`, `/api/task/rate-limit/{task}?workername=&ratelimit=`,
//! `/api/task/timeout/{task}?workername=&soft=&hard=`.
//!
//! Answers: 200 `{"message", "worker", "reply"}` with the worker's `{"ok": ...}`; 422 with the
//! worker's text when it answers `{"error": ...}`; 504 when a worker the monitor knows does
//! not answer within [`WORKER_TIMEOUT`]; 404 for a node nobody knows; 400 for bad parameters.
//! Operators may do all but `shutdown`, which is for admins. Every accepted action is written
//! to the audit log as `worker.<command>` on the worker's name.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use celeriac::control::{Control, ControlError, Replies};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::AppError;
use super::worker::{heartbeat, one_worker, WORKER_TIMEOUT};
use crate::dashboard::auth::{Admin, AuthUser, Operator, RequireRole};
use crate::dashboard::security::ClientContext;
use crate::dashboard::AppState;

/// The most pool slots one grow or shrink may move.
const MAX_POOL_STEP: u32 = 1_000;

/// One command for one worker, with its parameters checked.
#[derive(Debug, Clone, PartialEq)]
enum WorkerCommand {
    AddConsumer {
        queue: String,
        exchange: Option<String>,
        routing_key: Option<String>,
    },
    CancelConsumer {
        queue: String,
    },
    PoolGrow(u32),
    PoolShrink(u32),
    RateLimit {
        task_name: String,
        rate_limit: String,
    },
    TimeLimit {
        task_name: String,
        soft: Option<Duration>,
        hard: Option<Duration>,
    },
}

impl WorkerCommand {
    /// The audit log's name of the action.
    fn action(&self) -> &'static str {
        match self {
            WorkerCommand::AddConsumer { .. } => "worker.add_consumer",
            WorkerCommand::CancelConsumer { .. } => "worker.cancel_consumer",
            WorkerCommand::PoolGrow(_) => "worker.pool_grow",
            WorkerCommand::PoolShrink(_) => "worker.pool_shrink",
            WorkerCommand::RateLimit { .. } => "worker.rate_limit",
            WorkerCommand::TimeLimit { .. } => "worker.time_limit",
        }
    }

    async fn send(&self, control: &Control, worker: &str) -> Result<Replies, ControlError> {
        let options = one_worker(worker);
        match self {
            WorkerCommand::AddConsumer {
                queue,
                exchange,
                routing_key,
            } => {
                control
                    .add_consumer(queue, exchange.as_deref(), routing_key.as_deref(), &options)
                    .await
            }
            WorkerCommand::CancelConsumer { queue } => {
                control.cancel_consumer(queue, &options).await
            }
            WorkerCommand::PoolGrow(n) => control.pool_grow(*n, &options).await,
            WorkerCommand::PoolShrink(n) => control.pool_shrink(*n, &options).await,
            WorkerCommand::RateLimit {
                task_name,
                rate_limit,
            } => control.rate_limit(task_name, rate_limit, &options).await,
            WorkerCommand::TimeLimit {
                task_name,
                soft,
                hard,
            } => control.time_limit(task_name, *soft, *hard, &options).await,
        }
    }
}

/// `worker`'s reply among `replies`, or why there is none to show as success.
fn reply_of(state: &AppState, worker: &str, mut replies: Replies) -> Result<Value, AppError> {
    let Some(reply) = replies.remove(worker) else {
        return Err(no_reply(state, worker));
    };
    if let Some(error) = reply.get("error") {
        let text = error
            .as_str()
            .map_or_else(|| error.to_string(), str::to_owned);
        return Err(AppError::Unprocessable(format!(
            "worker '{worker}' refused: {text}"
        )));
    }
    Ok(reply)
}

/// 504 for a worker the monitor knows (offline or busy), 404 for an unknown name.
fn no_reply(state: &AppState, worker: &str) -> AppError {
    if heartbeat(state, worker).is_some() {
        AppError::NoReply(format!(
            "worker '{worker}' did not reply within {} s (offline?)",
            WORKER_TIMEOUT.as_secs_f64()
        ))
    } else {
        AppError::NotFound(format!("Unknown worker '{worker}'"))
    }
}

/// Sends `command` to `worker`, audits it once the worker accepted, and answers its reply.
async fn run(
    state: &AppState,
    user: &AuthUser,
    client: Option<&ClientContext>,
    worker: &str,
    command: WorkerCommand,
) -> Result<Json<Value>, AppError> {
    let replies = command
        .send(&state.control, worker)
        .await
        .map_err(AppError::internal)?;
    let reply = reply_of(state, worker, replies)?;
    tracing::info!(worker, command = ?command, user = %user.name, "worker control from the dashboard API");
    state
        .record_action(user, client, command.action(), worker)
        .await;
    let message = reply
        .get("ok")
        .and_then(Value::as_str)
        .unwrap_or("ok")
        .to_owned();
    Ok(Json(
        json!({ "message": message, "worker": worker, "reply": reply }),
    ))
}

/// A parameter that must be present and not blank.
fn required(name: &str, value: Option<String>) -> Result<String, AppError> {
    value
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| AppError::BadRequest(format!("missing parameter '{name}'")))
}

/// A parameter that is absent when blank.
fn optional(value: Option<String>) -> Option<String> {
    value
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// `n`: 1 when absent, as in Celery.
fn pool_step(n: Option<String>) -> Result<u32, AppError> {
    let Some(n) = optional(n) else {
        return Ok(1);
    };
    n.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_POOL_STEP).contains(n))
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "'n' must be a whole number from 1 to {MAX_POOL_STEP}"
            ))
        })
}

/// Seconds of a time limit; blank means no limit.
fn limit_seconds(name: &str, value: Option<String>) -> Result<Option<Duration>, AppError> {
    optional(value)
        .map(|text| {
            text.parse::<f64>()
                .ok()
                .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
                .ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "'{name}' must be a non-negative number of seconds"
                    ))
                })
        })
        .transpose()
}

/// `queue` (and optionally `exchange`, `routing_key`) of the consumer commands.
#[derive(Debug, Deserialize)]
pub(super) struct QueueQuery {
    queue: Option<String>,
    exchange: Option<String>,
    routing_key: Option<String>,
}

/// `n` of the pool commands.
#[derive(Debug, Deserialize)]
pub(super) struct PoolQuery {
    n: Option<String>,
}

/// Our `rate_limit` parameters.
#[derive(Debug, Deserialize)]
pub(super) struct RateLimitQuery {
    task: Option<String>,
    value: Option<String>,
}

/// Our `time_limit` parameters (`soft`, `hard` in seconds).
#[derive(Debug, Deserialize)]
pub(super) struct TimeLimitQuery {
    task: Option<String>,
    soft: Option<String>,
    hard: Option<String>,
}

/// Flower's `rate-limit` parameters.
#[derive(Debug, Deserialize)]
pub(super) struct FlowerRateLimitQuery {
    workername: Option<String>,
    ratelimit: Option<String>,
}

/// Flower's `timeout` parameters.
#[derive(Debug, Deserialize)]
pub(super) struct FlowerTimeoutQuery {
    workername: Option<String>,
    soft: Option<String>,
    hard: Option<String>,
}

/// `POST /api/worker/{name}/add_consumer?queue=Q` (and Flower's `queue/add-consumer`).
pub(super) async fn add_consumer(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(worker): Path<String>,
    Query(query): Query<QueueQuery>,
) -> Result<Json<Value>, AppError> {
    let command = WorkerCommand::AddConsumer {
        queue: required("queue", query.queue)?,
        exchange: optional(query.exchange),
        routing_key: optional(query.routing_key),
    };
    run(&state, &user, client.as_deref(), &worker, command).await
}

/// `POST /api/worker/{name}/cancel_consumer?queue=Q` (and Flower's `queue/cancel-consumer`).
pub(super) async fn cancel_consumer(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(worker): Path<String>,
    Query(query): Query<QueueQuery>,
) -> Result<Json<Value>, AppError> {
    let command = WorkerCommand::CancelConsumer {
        queue: required("queue", query.queue)?,
    };
    run(&state, &user, client.as_deref(), &worker, command).await
}

/// `POST /api/worker/{name}/pool_grow?n=1` (and Flower's `pool/grow`).
pub(super) async fn pool_grow(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(worker): Path<String>,
    Query(query): Query<PoolQuery>,
) -> Result<Json<Value>, AppError> {
    let command = WorkerCommand::PoolGrow(pool_step(query.n)?);
    run(&state, &user, client.as_deref(), &worker, command).await
}

/// `POST /api/worker/{name}/pool_shrink?n=1` (and Flower's `pool/shrink`).
pub(super) async fn pool_shrink(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(worker): Path<String>,
    Query(query): Query<PoolQuery>,
) -> Result<Json<Value>, AppError> {
    let command = WorkerCommand::PoolShrink(pool_step(query.n)?);
    run(&state, &user, client.as_deref(), &worker, command).await
}

/// `POST /api/worker/{name}/rate_limit?task=T&value=10/m` (`0` removes the limit).
pub(super) async fn rate_limit(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(worker): Path<String>,
    Query(query): Query<RateLimitQuery>,
) -> Result<Json<Value>, AppError> {
    let command = WorkerCommand::RateLimit {
        task_name: required("task", query.task)?,
        rate_limit: required("value", query.value)?,
    };
    run(&state, &user, client.as_deref(), &worker, command).await
}

/// Flower's `POST /api/task/rate-limit/{task}?workername=W&ratelimit=10/m`.
pub(super) async fn flower_rate_limit(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(task_name): Path<String>,
    Query(query): Query<FlowerRateLimitQuery>,
) -> Result<Json<Value>, AppError> {
    let worker = required("workername", query.workername)?;
    let command = WorkerCommand::RateLimit {
        task_name,
        rate_limit: required("ratelimit", query.ratelimit)?,
    };
    run(&state, &user, client.as_deref(), &worker, command).await
}

/// `POST /api/worker/{name}/time_limit?task=T&soft=S&hard=H` (blank = no limit).
pub(super) async fn time_limit(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(worker): Path<String>,
    Query(query): Query<TimeLimitQuery>,
) -> Result<Json<Value>, AppError> {
    let command = WorkerCommand::TimeLimit {
        task_name: required("task", query.task)?,
        soft: limit_seconds("soft", query.soft)?,
        hard: limit_seconds("hard", query.hard)?,
    };
    run(&state, &user, client.as_deref(), &worker, command).await
}

/// Flower's `POST /api/task/timeout/{task}?workername=W&soft=S&hard=H`.
pub(super) async fn flower_timeout(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(task_name): Path<String>,
    Query(query): Query<FlowerTimeoutQuery>,
) -> Result<Json<Value>, AppError> {
    let worker = required("workername", query.workername)?;
    let command = WorkerCommand::TimeLimit {
        task_name,
        soft: limit_seconds("soft", query.soft)?,
        hard: limit_seconds("hard", query.hard)?,
    };
    run(&state, &user, client.as_deref(), &worker, command).await
}

/// `POST /api/worker/{name}/shutdown` (and Flower's `shutdown/{name}`), admins only.
///
/// Workers do not answer `shutdown`, so a `ping` first checks the worker is there to hear it
/// (404/504 otherwise); the answer is Flower's `Shutting down!`.
pub(super) async fn shutdown(
    RequireRole { user, .. }: RequireRole<Admin>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(worker): Path<String>,
) -> Result<Json<Value>, AppError> {
    let options = one_worker(&worker);
    let pong = state
        .control
        .ping(&options)
        .await
        .map_err(AppError::internal)?;
    reply_of(&state, &worker, pong)?;
    state
        .control
        .shutdown(&options)
        .await
        .map_err(AppError::internal)?;
    tracing::warn!(worker = %worker, user = %user.name, "worker shutdown from the dashboard API");
    state
        .record_action(&user, client.as_deref(), "worker.shutdown", &worker)
        .await;
    Ok(Json(
        json!({ "message": "Shutting down!", "worker": worker }),
    ))
}

/// `min` and `max` of Flower's autoscale, both required.
#[derive(Debug, Deserialize)]
pub(super) struct AutoscaleQuery {
    min: Option<String>,
    max: Option<String>,
}

/// Sends a pool command the way Flower's pool actions do: 404 for a worker the monitor has
/// never heard of, then 200 with `message` when the worker answers `ok`, else Flower's 403
/// with `failure` and the worker's reason (`Unknown reason` when it did not answer).
#[allow(
    clippy::too_many_arguments,
    reason = "the request's parts and the two answers, all needed"
)]
async fn flower_pool_command(
    state: &AppState,
    user: &AuthUser,
    client: Option<&ClientContext>,
    worker: &str,
    method: &str,
    arguments: serde_json::Map<String, Value>,
    message: String,
    failure: String,
) -> Result<Json<Value>, AppError> {
    if heartbeat(state, worker).is_none() {
        return Err(AppError::NotFound(format!("Unknown worker '{worker}'")));
    }
    let mut replies = state
        .control
        .broadcast(method, arguments, &one_worker(worker))
        .await
        .map_err(AppError::internal)?;
    let reply = replies.remove(worker);
    if reply
        .as_ref()
        .is_some_and(|reply| reply.get("ok").is_some())
    {
        tracing::info!(worker, method, user = %user.name, "worker pool command from the dashboard API");
        state
            .record_action(user, client, &format!("worker.{method}"), worker)
            .await;
        return Ok(Json(json!({ "message": message })));
    }
    let reason = reply
        .as_ref()
        .and_then(|reply| reply.get("error"))
        .map_or_else(
            || "Unknown reason".to_owned(),
            |error| {
                error
                    .as_str()
                    .map_or_else(|| error.to_string(), str::to_owned)
            },
        );
    tracing::warn!(worker, method, %reason, "a worker refused a pool command");
    Err(AppError::Forbidden(format!("{failure}: {reason}")))
}

/// Flower's `POST /api/worker/pool/restart/{name}`: Celery's `pool_restart` (without module
/// reloading). Workers refuse it unless started with pool restarts enabled, and Celeriac's
/// never enable them, so the usual answer is Flower's 403 with the worker's reason.
pub(super) async fn flower_pool_restart(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(worker): Path<String>,
) -> Result<Json<Value>, AppError> {
    let arguments = json!({ "reload": false });
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    flower_pool_command(
        &state,
        &user,
        client.as_deref(),
        &worker,
        "pool_restart",
        arguments,
        format!("Restarting '{worker}' worker's pool"),
        format!("Failed to restart the '{worker}' pool"),
    )
    .await
}

/// Flower's `POST /api/worker/pool/autoscale/{name}?min=&max=`: Celery's `autoscale`; 403 with
/// the worker's reason from a worker without an autoscaler (all of Celeriac's).
pub(super) async fn flower_autoscale(
    RequireRole { user, .. }: RequireRole<Operator>,
    client: Option<Extension<ClientContext>>,
    State(state): State<AppState>,
    Path(worker): Path<String>,
    Query(query): Query<AutoscaleQuery>,
) -> Result<Json<Value>, AppError> {
    let bound = |name: &str, value: Option<String>| -> Result<u32, AppError> {
        required(name, value)?
            .parse::<u32>()
            .map_err(|_| AppError::BadRequest(format!("'{name}' must be a whole number")))
    };
    let min = bound("min", query.min)?;
    let max = bound("max", query.max)?;
    let arguments = json!({ "min": min, "max": max });
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    flower_pool_command(
        &state,
        &user,
        client.as_deref(),
        &worker,
        "autoscale",
        arguments,
        format!("Autoscaling '{worker}' worker (min={min}, max={max})"),
        format!("Failed to autoscale '{worker}' worker"),
    )
    .await
}
