//! The worker's mailbox for remote control (Celery's pidbox), so `celery inspect`, Flower and
//! our own control client can reach Rust workers.
//!
//! 1. Subscribe to the `celery.pidbox` broadcast channel on a connection of its own.
//! 2. For each command addressed to this node (all, a destination list, or a glob pattern),
//!    run it and, when the client waits (a `ticket` and `reply_to`), send `{node: result}`
//!    back through the reply exchange's binding table.
//! 3. If the subscription drops (Redis restarted), subscribe again after a second.
//!
//! Implemented: `ping`, `registered`, `stats`, `active_queues`, `conf`, `clock`, `active`,
//! `reserved`, `scheduled`, `revoked`, `query_task`, `revoke` (with `terminate`), `terminate`,
//! `rate_limit`, `time_limit`, `shutdown`, `enable_events`, `disable_events`, `heartbeat`.
//! Any other command gets an `error` reply.

use super::state::Held;
use super::state::Phase;
use super::{heartbeat, revoke, Shared};
use crate::protocol::control::{reply_envelope, ControlRequest, CONTROL_EXCHANGE};
use crate::protocol::Envelope;
use crate::types::{python_args_repr, python_repr};
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) async fn run(shared: Arc<Shared>) {
    let started = Instant::now();
    loop {
        match shared.broker.subscribe_fanout(CONTROL_EXCHANGE).await {
            Ok(mut pubsub) => {
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    let payload: Vec<u8> = message.get_payload().unwrap_or_default();
                    handle(&shared, &payload, started).await;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot subscribe to remote control; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn handle(shared: &Shared, payload: &[u8], started: Instant) {
    let request =
        match Envelope::from_json(payload).and_then(|envelope| ControlRequest::decode(&envelope)) {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(%error, "ignoring a malformed control message");
                return;
            }
        };
    let node = &shared.options.node_name;
    if !request.is_for(node) {
        return;
    }
    tracing::debug!(method = %request.method, "control command");
    let Some(result) = execute(shared, &request, started).await else {
        return;
    };
    let (Some(ticket), Some((exchange, routing_key))) = (&request.ticket, &request.reply_to) else {
        return;
    };
    let envelope = reply_envelope(
        node,
        result,
        ticket,
        shared.events.tick(),
        routing_key,
        uuid::Uuid::new_v4().to_string(),
    );
    match shared
        .broker
        .publish_direct(exchange, routing_key, &envelope.to_json())
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(routing_key = %routing_key, "no reply queue is bound; reply dropped as kombu does")
        }
        Err(error) => tracing::warn!(%error, "could not send control reply"),
    }
}

/// Runs a command; None when it sends no reply (`heartbeat`).
async fn execute(shared: &Shared, request: &ControlRequest, started: Instant) -> Option<Value> {
    let reply = match request.method.as_str() {
        "ping" => json!({"ok": "pong"}),
        "registered" | "dump_tasks" => json!(shared.registry.names().collect::<Vec<_>>()),
        "clock" => json!({"clock": shared.events.tick()}),
        "stats" => stats(shared, started),
        "active_queues" => json!(shared
            .options
            .queues
            .iter()
            .map(|queue| active_queue(queue))
            .collect::<Vec<_>>()),
        "conf" => json!({
            "broker_url": redact(&shared.config.broker_url),
            "task_default_queue": shared.config.task_default_queue,
            "task_acks_late": shared.config.task_acks_late,
            "worker_prefetch_multiplier": shared.config.worker_prefetch_multiplier,
            "worker_concurrency": shared.options.concurrency,
            "worker_send_task_events": shared.events.task_events(),
        }),
        "enable_events" => {
            let was = shared.events.task_events();
            shared.events.set_task_events(true);
            json!({"ok": if was { "task events already enabled" } else { "task events enabled" }})
        }
        "disable_events" => {
            let was = shared.events.task_events();
            shared.events.set_task_events(false);
            json!({"ok": if was { "task events disabled" } else { "task events already disabled" }})
        }
        "active" | "dump_active" => json!(infos(shared, Phase::Active)),
        "reserved" | "dump_reserved" => json!(infos(shared, Phase::Reserved)),
        "scheduled" | "dump_schedule" => json!(shared
            .in_flight
            .listing(Phase::Scheduled)
            .into_iter()
            .map(|held| json!({"eta": held.eta, "priority": 6, "request": request_info(shared, &held)}))
            .collect::<Vec<_>>()),
        "revoked" | "dump_revoked" => json!(shared.revoked.ids()),
        "query_task" => {
            let ids = task_ids(&request.arguments, "ids");
            let mut found = serde_json::Map::new();
            for id in ids {
                if let Some(held) = shared.in_flight.find(&id) {
                    let info = request_info(shared, &held);
                    let state = match held.phase {
                        Phase::Active => "active",
                        Phase::Reserved => "reserved",
                        Phase::Scheduled => "scheduled",
                    };
                    found.insert(id, json!([state, info]));
                }
            }
            Value::Object(found)
        }
        "revoke" | "terminate" => {
            let ids = task_ids(&request.arguments, "task_id");
            revoke::revoke(shared, &ids).await;
            let terminate = request.method == "terminate"
                || matches!(request.arguments.get("terminate"), Some(Value::Bool(true)))
                || request
                    .arguments
                    .get("terminate")
                    .and_then(Value::as_i64)
                    .is_some_and(|flag| flag != 0);
            if terminate {
                let stopped: Vec<&String> = ids
                    .iter()
                    .filter(|id| shared.in_flight.terminate(id))
                    .collect();
                if stopped.is_empty() {
                    json!({"ok": "terminate: tasks unknown"})
                } else {
                    json!({"ok": format!("terminate: {}", stopped.iter().map(|id| id.as_str()).collect::<Vec<_>>().join(", "))})
                }
            } else {
                let listed: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
                json!({"ok": format!("tasks {{{}}} flagged as revoked", listed.join(", "))})
            }
        }
        "rate_limit" => {
            let task_name = request
                .arguments
                .get("task_name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if shared.registry.get(task_name).is_none() {
                json!({"error": format!("unknown task {task_name:?}")})
            } else {
                let text = match request.arguments.get("rate_limit") {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Number(number)) => number.to_string(),
                    _ => String::new(),
                };
                match super::rate_limit::RateLimit::parse(&text) {
                    Ok(rate) => {
                        let bucket = rate
                            .map(|rate| super::rate_limit::TokenBucket::new(rate, Instant::now()));
                        if let Ok(mut buckets) = shared.rate_limits.lock() {
                            buckets.insert(task_name.to_owned(), bucket);
                        }
                        json!({"ok": "new rate limit set successfully"})
                    }
                    Err(error) => json!({"error": format!("invalid rate limit string: {error}")}),
                }
            }
        }
        "time_limit" => {
            let task_name = request
                .arguments
                .get("task_name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if shared.registry.get(task_name).is_none() {
                json!({"error": format!("unknown task {task_name:?}")})
            } else {
                let limit = |key: &str| {
                    request
                        .arguments
                        .get(key)
                        .and_then(Value::as_f64)
                        .filter(|seconds| *seconds > 0.0)
                        .map(Duration::from_secs_f64)
                };
                if let Ok(mut limits) = shared.time_limits.lock() {
                    limits.insert(task_name.to_owned(), (limit("hard"), limit("soft")));
                }
                json!({"ok": "time limits set successfully"})
            }
        }
        "shutdown" => {
            shared.shutdown_requested.notify_one();
            return None;
        }
        "heartbeat" => {
            shared
                .events
                .worker("worker-heartbeat", heartbeat::fields(shared))
                .await;
            return None;
        }
        other => json!({"error": format!("No such control command: {other}")}),
    };
    Some(reply)
}

fn stats(shared: &Shared, started: Instant) -> Value {
    json!({
        "total": {},
        "pid": std::process::id(),
        "clock": shared.events.tick().to_string(),
        "uptime": started.elapsed().as_secs(),
        "pool": {
            "implementation": "celeriac:tokio",
            "max-concurrency": shared.options.concurrency,
            "processes": [std::process::id()],
            "max-tasks-per-child": null,
            "put-guarded-by-semaphore": false,
            "timeouts": [shared.config.task_soft_time_limit, shared.config.task_time_limit],
            "writes": {},
        },
        "broker": {"transport": "redis", "hostname": redact(&shared.config.broker_url)},
        "prefetch_count": shared.options.prefetch_limit(),
        "processed": shared.counters.processed.load(Ordering::Relaxed),
        "rusage": {},
    })
}

fn active_queue(queue: &str) -> Value {
    json!({
        "name": queue,
        "exchange": {"name": queue, "type": "direct", "arguments": null, "durable": true, "passive": false,
                     "auto_delete": false, "delivery_mode": null, "no_declare": false},
        "routing_key": queue,
        "queue_arguments": null, "binding_arguments": null, "consumer_arguments": null,
        "durable": true, "exclusive": false, "auto_delete": false, "no_ack": false, "alias": null,
        "bindings": [], "no_declare": null, "expires": null, "message_ttl": null, "max_length": null,
        "max_length_bytes": null, "max_priority": null,
    })
}

/// A broker URL without its password, for replies anyone on the broker can read.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// `task_id` (or `ids`) as Celery sends it: one string or a list.
fn task_ids(arguments: &serde_json::Map<String, Value>, key: &str) -> Vec<String> {
    match arguments.get(key) {
        Some(Value::String(id)) => vec![id.clone()],
        Some(Value::Array(ids)) => ids
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn infos(shared: &Shared, phase: Phase) -> Vec<Value> {
    shared
        .in_flight
        .listing(phase)
        .into_iter()
        .map(|held| request_info(shared, &held))
        .collect()
}

/// Celery's `Request.info()`: what `inspect active/reserved/scheduled` report of a request,
/// built only when a monitor asks.
fn request_info(shared: &Shared, held: &Held) -> Value {
    let request = &held.request;
    let message = &request.message;
    let headers = &message.headers;
    json!({
        "id": headers.id.0,
        "name": headers.task,
        "args": message.args,
        "kwargs": message.kwargs,
        "type": headers.task,
        "hostname": shared.options.node_name,
        "time_start": held.time_start,
        "acknowledged": false,
        "delivery_info": {
            "exchange": "",
            "routing_key": request.delivery.queue,
            "priority": request.priority,
            "redelivered": request.redelivered,
        },
        "worker_pid": std::process::id(),
        "argsrepr": headers.argsrepr.clone().unwrap_or_else(|| python_args_repr(&message.args)),
        "kwargsrepr": headers.kwargsrepr.clone().unwrap_or_else(|| python_repr(&Value::Object(message.kwargs.clone()))),
    })
}
