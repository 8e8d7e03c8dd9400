//! Queue depths (Flower's `GET /api/queues/length`), our `GET /api/overview` (the numbers the
//! dashboard's first screen shows, read in one request) and `GET /api/queues` (the Queues
//! page: per priority step, oldest message, consumers, unacked per routing key).

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

/// How many unacked records `/api/queues` reads to count them per routing key (see the
/// constant's doc in `app::model`).
const UNACKED_SCAN_LIMIT: usize = app::model::UNACKED_SCANNED_PER_QUEUE_SPLIT as usize;

/// `GET /api/queues`: every watched queue, and every queue a worker consumes, with its depth
/// per priority step, its oldest waiting message (id, name, and age when the monitor saw it
/// sent), the workers consuming it and its unacked messages; plus the unacked totals.
pub(super) async fn detail(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let now = celeriac::clock::epoch_now();
    let alive = state.monitor.read(|cluster| {
        cluster
            .workers(now)
            .iter()
            .filter(|worker| worker.alive)
            .count()
    });
    let consumers = state.consumers.get(&state.control, alive).await;
    let mut names: Vec<String> = state.queues.to_vec();
    for queue in consumers.by_queue.keys() {
        if !names.contains(queue) {
            names.push(queue.clone());
        }
    }
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let broker = state.producer.broker();
    let depths = broker
        .queue_depths(&name_refs)
        .await
        .map_err(AppError::internal)?;
    let unacked = broker
        .unacked_depth(UNACKED_SCAN_LIMIT)
        .await
        .map_err(AppError::internal)?;
    let queues: Vec<Value> = depths
        .iter()
        .map(|depth| {
            let priorities: Vec<Value> = depth
                .priorities
                .iter()
                .map(|priority| {
                    let sent = state.monitor.read(|cluster| {
                        cluster
                            .task(priority.oldest_task_id.as_deref()?)?
                            .sent
                            .map(|sent| sent.timestamp_micros() as f64 / 1e6)
                    });
                    json!({
                        "step": priority.step,
                        "messages": priority.messages,
                        "oldest_task_id": priority.oldest_task_id,
                        "oldest_task_name": priority.oldest_task_name,
                        "oldest_age": sent.map(|sent| (now - sent).max(0.0)),
                    })
                })
                .collect();
            let oldest_age = priorities
                .iter()
                .filter_map(|priority| priority["oldest_age"].as_f64())
                .reduce(f64::max);
            let consumers: Vec<&String> = consumers
                .by_queue
                .get(&depth.queue)
                .map(|workers| workers.iter().collect())
                .unwrap_or_default();
            json!({
                "name": depth.queue,
                "messages": depth.messages,
                "priorities": priorities,
                "oldest_age": oldest_age,
                "consumers": consumers,
                "unacked": unacked.by_routing_key.get(&depth.queue).copied().unwrap_or(0),
            })
        })
        .collect();
    Ok(Json(json!({
        "queues": queues,
        "workers_replied": consumers.workers_replied,
        "unacked": {
            "messages": unacked.messages,
            "oldest_delivered_at": unacked.oldest_delivered_at,
            "complete": unacked.complete,
        },
    })))
}
