//! The worker's mailbox for remote control (Celery's pidbox), so `celery inspect`, Flower and
//! our own [`crate::control::Control`] client can reach Rust workers.
//!
//! 1. Subscribe to the `celery.pidbox` broadcast channel on a connection of its own.
//! 2. For each command addressed to this node (all, a destination list, or a glob pattern),
//!    run it and, when the client waits (a `ticket` and `reply_to`), send `{node: result}`
//!    back through the reply exchange's binding table.
//! 3. If the subscription drops (Redis restarted), subscribe again after a second.
//!
//! The commands, one file per group, answer with Celery 5.4's reply shapes (wire doc §5.3):
//! - [`inspect`]: `ping`, `registered`, `stats`, `active_queues`, `conf`, `clock`, `active`,
//!   `reserved`, `scheduled`, `revoked`, `query_task`, `hello` (mingle).
//! - [`tasks`]: `revoke` (with `terminate`), `terminate`, `rate_limit`, `time_limit`.
//! - [`consumers`]: `add_consumer`, `cancel_consumer`.
//! - [`pool`]: `pool_grow`, `pool_shrink`, `autoscale`, `pool_restart`.
//! - here: `shutdown`, `enable_events`, `disable_events`, `heartbeat`.
//!
//! Any other command gets Celery's `{"error": "No such control command: <name>"}`.

mod consumers;
mod inspect;
mod pool;
mod tasks;

use super::{heartbeat, Shared};
use crate::protocol::control::{
    error_reply, ok_reply, reply_envelope, ControlRequest, CONTROL_EXCHANGE,
};
use crate::protocol::Envelope;
use futures::StreamExt;
use serde_json::{json, Map, Value};
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

/// Runs a command; None when it sends no reply (`shutdown`, `heartbeat`).
async fn execute(shared: &Shared, request: &ControlRequest, started: Instant) -> Option<Value> {
    let arguments = &request.arguments;
    let reply = match request.method.as_str() {
        "ping" => ok_reply("pong"),
        "registered" | "dump_tasks" => inspect::registered(shared),
        "clock" => json!({"clock": shared.events.tick()}),
        "stats" => inspect::stats(shared, started),
        "active_queues" => inspect::active_queues(shared),
        "conf" => inspect::conf(shared),
        "active" | "dump_active" => inspect::active(shared),
        "reserved" | "dump_reserved" => inspect::reserved(shared),
        "scheduled" | "dump_schedule" => inspect::scheduled(shared),
        "revoked" | "dump_revoked" => json!(shared.revoked.ids()),
        "query_task" => inspect::query_task(shared, arguments),
        "hello" => inspect::hello(shared, arguments).await,
        "revoke" => tasks::revoke(shared, arguments, false).await,
        "terminate" => tasks::revoke(shared, arguments, true).await,
        "rate_limit" => tasks::rate_limit(shared, arguments),
        "time_limit" => tasks::time_limit(shared, arguments),
        "add_consumer" => consumers::add_consumer(shared, arguments).await,
        "cancel_consumer" => consumers::cancel_consumer(shared, arguments),
        "pool_grow" => pool::pool_grow(shared, arguments),
        "pool_shrink" => pool::pool_shrink(shared, arguments),
        "autoscale" => pool::autoscale(),
        "pool_restart" => pool::pool_restart(),
        "enable_events" => {
            let was = shared.events.task_events();
            shared.events.set_task_events(true);
            ok_reply(if was {
                "task events already enabled"
            } else {
                "task events enabled"
            })
        }
        "disable_events" => {
            let was = shared.events.task_events();
            shared.events.set_task_events(false);
            ok_reply(if was {
                "task events disabled"
            } else {
                "task events already disabled"
            })
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
        other => error_reply(format!("No such control command: {other}")),
    };
    Some(reply)
}

/// A text argument (Celery's CLI sends every argument it parsed as its declared type, Flower
/// and Python clients send JSON values).
fn text_argument(arguments: &Map<String, Value>, key: &str) -> Option<String> {
    match arguments.get(key)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// An integer argument given as a number or as text (`"2"`).
fn integer_argument(arguments: &Map<String, Value>, key: &str) -> Option<i64> {
    match arguments.get(key)? {
        Value::Number(number) => number
            .as_i64()
            .or_else(|| number.as_f64().map(|float| float as i64)),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// `task_id` (or `ids`) as Celery sends it: one string or a list.
fn task_ids(arguments: &Map<String, Value>, key: &str) -> Vec<String> {
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
