//! `add_consumer` and `cancel_consumer`: the queues this worker consumes, changed at run time.
//!
//! Both reply at once, as Celery does (it schedules the change with `call_soon`); the consumer
//! picks the new queue list up before its next fetch. Adding a queue also declares its binding
//! as kombu does, so a producer publishing to the named exchange reaches it.

use super::super::queues::ConsumedQueue;
use super::super::Shared;
use super::text_argument;
use crate::protocol::control::{error_reply, ok_reply};
use serde_json::{Map, Value};

pub(super) async fn add_consumer(shared: &Shared, arguments: &Map<String, Value>) -> Value {
    let Some(name) = text_argument(arguments, "queue").filter(|name| !name.is_empty()) else {
        return error_reply(
            "TypeError(\"add_consumer() missing 1 required positional argument: 'queue'\")",
        );
    };
    let exchange = text_argument(arguments, "exchange").unwrap_or_else(|| name.clone());
    let queue = ConsumedQueue {
        exchange_type: text_argument(arguments, "exchange_type")
            .unwrap_or_else(|| "direct".to_owned()),
        routing_key: text_argument(arguments, "routing_key").unwrap_or_else(|| name.clone()),
        exchange,
        name: name.clone(),
    };
    if let Err(error) = shared
        .broker
        .bind_queue(&queue.exchange, &queue.routing_key, &queue.name)
        .await
    {
        tracing::warn!(queue = %name, %error, "could not declare the binding of an added queue");
    }
    if shared.queues.add(queue) {
        tracing::info!(queue = %name, "Started consuming from {name}");
    } else {
        tracing::info!(queue = %name, "already consuming from {name}");
    }
    ok_reply(format!("add consumer {name}"))
}

pub(super) fn cancel_consumer(shared: &Shared, arguments: &Map<String, Value>) -> Value {
    let Some(name) = text_argument(arguments, "queue") else {
        return error_reply(
            "TypeError(\"cancel_consumer() missing 1 required positional argument: 'queue'\")",
        );
    };
    if shared.queues.cancel(&name) {
        tracing::info!(queue = %name, "Canceling queue {name}");
    }
    ok_reply(format!("no longer consuming from {name}"))
}
