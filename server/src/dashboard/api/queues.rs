//! Queue depths (Flower's `GET /api/queues/length`) and our `GET /api/overview`: the numbers the
//! dashboard's first screen shows, read in one request.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};

use super::error::AppError;
use crate::dashboard::AppState;

/// `GET /api/queues/length`: `{"active_queues": [{"name", "messages"}]}` for the watched
/// queues.
pub(super) async fn length(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let names: Vec<&str> = state.queues.iter().map(String::as_str).collect();
    let depths = state
        .producer
        .broker()
        .queue_depths(&names)
        .await
        .map_err(AppError::internal)?;
    let active_queues: Vec<Value> = depths
        .iter()
        .map(|depth| json!({ "name": depth.queue, "messages": depth.messages }))
        .collect();
    Ok(Json(json!({ "active_queues": active_queues })))
}

/// `GET /api/overview`: workers online, tasks per state (the history's exact counts), tasks
/// finished per second (last ten seconds of events), succeeded and failed per minute over the
/// last hour, queue depths, unacked messages, and beat's leader with its lease (`null` when
/// no beat holds it).
pub(super) async fn overview(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let now = celeriac::clock::epoch_now();
    let workers = state.monitor.read(|cluster| cluster.workers(now));
    let online = workers.iter().filter(|worker| worker.alive).count();
    let state_counts = state
        .history
        .state_counts()
        .await
        .map_err(AppError::internal)?;
    let states: Map<String, Value> = state_counts
        .into_iter()
        .map(|(task_state, count)| (task_state.as_str().to_owned(), json!(count)))
        .collect();
    let names: Vec<&str> = state.queues.iter().map(String::as_str).collect();
    let broker = state.producer.broker();
    let depths = broker
        .queue_depths(&names)
        .await
        .map_err(AppError::internal)?;
    let unacked = broker.unacked_depth(0).await.map_err(AppError::internal)?;
    let beat = broker.beat_leader().await.map_err(AppError::internal)?;
    let (points, counted_since) = state.metrics.throughput(now);
    let queues: Vec<Value> = depths
        .iter()
        .map(|depth| {
            json!({
                "name": depth.queue,
                "messages": depth.messages,
                "priorities": depth.priorities.iter().map(|priority| json!({
                    "step": priority.step,
                    "messages": priority.messages,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({
        "workers_online": online,
        "workers_known": workers.len(),
        "states": states,
        "tasks_per_second": state.metrics.completion_rate(now),
        "queues": queues,
        "unacked": {
            "messages": unacked.messages,
            "oldest_delivered_at": unacked.oldest_delivered_at,
        },
        "version": state.monitor.read(|cluster| cluster.version()),
        "throughput": { "points": points, "since": counted_since },
        "beat": beat.map(|leader| json!({
            "leader": leader.owner,
            "token": leader.token,
            "lease_remaining": leader.remaining.as_secs_f64(),
        })),
    })))
}
