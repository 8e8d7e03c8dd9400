//! `GET /api/worker/{name}`: one worker's inspect replies for its detail page — `stats`,
//! `active_queues`, `registered`, `active`, `reserved`, `scheduled` — and what the monitor's
//! heartbeats say of it.
//!
//! Each inspect is addressed to that node alone, so it returns as soon as the node answers
//! (kombu's reply limit is the number of destinations) and waits at most
//! [`WORKER_TIMEOUT`]; the six run in parallel. A worker that does not answer is not an
//! error: the answer says `"replied": false` with its last heartbeat, so the page can tell
//! "offline" at once. A node neither answering nor known to the monitor is a 404.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use celeriac::control::{BroadcastOptions, Inspect};
use serde_json::{json, Map, Value};

use super::error::AppError;
use crate::dashboard::AppState;

/// How long a request to one worker waits for its reply.
pub(super) const WORKER_TIMEOUT: Duration = Duration::from_secs(1);

/// Broadcast options addressing `worker` alone.
pub(super) fn one_worker(worker: &str) -> BroadcastOptions {
    BroadcastOptions::default()
        .to([worker.to_owned()])
        .timeout(WORKER_TIMEOUT)
}

/// What the monitor knows of `worker` from its events, in the shape `/api/workers` uses;
/// None when it has never heard of it.
pub(super) fn heartbeat(state: &AppState, worker: &str) -> Option<Value> {
    let now = celeriac::clock::epoch_now();
    state
        .monitor
        .read(|cluster| cluster.worker(worker, now))
        .map(|worker| {
            json!({
                "alive": worker.alive,
                "active": worker.active,
                "processed": worker.processed,
                "loadavg": worker.loadavg,
                "sw_ident": worker.sw_ident,
                "sw_ver": worker.sw_ver,
                "last_heartbeat": worker.last_heartbeat,
                "last_seen": worker.last_seen,
            })
        })
}

/// `GET /api/worker/{name}`.
pub(super) async fn detail(
    State(state): State<AppState>,
    Path(worker): Path<String>,
) -> Result<Json<Value>, AppError> {
    let options = one_worker(&worker);
    let methods = [
        Inspect::Stats,
        Inspect::ActiveQueues,
        Inspect::Registered,
        Inspect::Active,
        Inspect::Reserved,
        Inspect::Scheduled,
    ];
    let replies = futures::future::join_all(
        methods
            .iter()
            .map(|method| state.control.inspect(method.clone(), &options)),
    )
    .await;
    let mut detail = Map::new();
    let mut replied = false;
    for (method, replies) in methods.iter().zip(replies) {
        let reply = replies
            .map_err(AppError::internal)?
            .remove(&worker)
            .unwrap_or(Value::Null);
        replied |= !reply.is_null();
        detail.insert(method.method().to_owned(), reply);
    }
    let heartbeat = heartbeat(&state, &worker);
    if !replied && heartbeat.is_none() {
        return Err(AppError::NotFound(format!("Unknown worker '{worker}'")));
    }
    let pool_size = detail
        .get("stats")
        .and_then(|stats| stats.get("pool")?.get("max-concurrency")?.as_u64());
    detail.insert("name".to_owned(), json!(worker));
    detail.insert("replied".to_owned(), json!(replied));
    detail.insert("pool_size".to_owned(), json!(pool_size));
    detail.insert("heartbeat".to_owned(), heartbeat.unwrap_or(Value::Null));
    Ok(Json(Value::Object(detail)))
}
