//! `GET /api/workers`: Flower's map of node name → the replies of its inspect methods
//! (`stats`, `active_queues`, `registered`, `scheduled`, `active`, `reserved`, `revoked`,
//! `conf`) and a `timestamp`, plus our `heartbeat` (what the monitor's events say of it).
//!
//! Flower caches the replies and asks again on `refresh=1`; we always ask (one broadcast per
//! method, in parallel, each waiting at most [`INSPECT_TIMEOUT`]), so `refresh` is accepted
//! and changes nothing. `status=1` answers node → alive from the events alone, as Flower does.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::Json;
use celeriac::control::{BroadcastOptions, Inspect};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::AppError;
use super::tasks::flag;
use crate::dashboard::AppState;

/// How long each inspect broadcast waits for replies.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Flower's query parameters.
#[derive(Debug, Deserialize)]
pub(super) struct WorkersQuery {
    /// Only this node.
    workername: Option<String>,
    /// Node → alive only.
    status: Option<String>,
    /// Accepted for Flower's scripts; every call asks the workers.
    #[allow(dead_code, reason = "accepted so Flower's scripts are not refused")]
    refresh: Option<String>,
}

/// `GET /api/workers`.
pub(super) async fn list(
    State(state): State<AppState>,
    Query(query): Query<WorkersQuery>,
) -> Result<Json<Map<String, Value>>, AppError> {
    let now = celeriac::clock::epoch_now();
    if flag(query.status.as_deref()) {
        let alive = state
            .monitor
            .read(|cluster| cluster.workers(now))
            .into_iter()
            .map(|worker| (worker.hostname, Value::Bool(worker.alive)))
            .collect();
        return Ok(Json(alive));
    }
    let mut options = BroadcastOptions::default().timeout(INSPECT_TIMEOUT);
    if let Some(workername) = &query.workername {
        options = options.to([workername.clone()]);
    }
    let methods = [
        Inspect::Stats,
        Inspect::ActiveQueues,
        Inspect::Registered,
        Inspect::Scheduled,
        Inspect::Active,
        Inspect::Reserved,
        Inspect::Revoked,
        Inspect::Conf,
    ];
    let replies = futures::future::join_all(
        methods
            .iter()
            .map(|method| state.control.inspect(method.clone(), &options)),
    )
    .await;
    let mut workers: Map<String, Value> = Map::new();
    for (method, replies) in methods.iter().zip(replies) {
        for (node, reply) in replies.map_err(AppError::internal)? {
            let entry = workers
                .entry(node)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(fields) = entry.as_object_mut() {
                fields.insert(method.method().to_owned(), reply);
                fields.insert("timestamp".to_owned(), json!(now));
            }
        }
    }
    for (node, entry) in workers.iter_mut() {
        let heartbeat = state.monitor.read(|cluster| cluster.worker(node, now));
        if let (Some(fields), Some(worker)) = (entry.as_object_mut(), heartbeat) {
            fields.insert(
                "heartbeat".to_owned(),
                json!({
                    "alive": worker.alive,
                    "active": worker.active,
                    "processed": worker.processed,
                    "loadavg": worker.loadavg,
                    "sw_ident": worker.sw_ident,
                    "sw_ver": worker.sw_ver,
                    "last_heartbeat": worker.last_heartbeat,
                }),
            );
        }
    }
    if let Some(workername) = &query.workername {
        if !workers.contains_key(workername) {
            return Err(AppError::NotFound(format!("Unknown worker '{workername}'")));
        }
    }
    Ok(Json(workers))
}
