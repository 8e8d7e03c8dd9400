//! Typed commands over [`Control::broadcast`], with the arguments Celery 5.4's `app.control`
//! and `celery inspect`/`celery control` send (wire doc §5.3), so Python workers accept them.

use super::client::{BroadcastOptions, Control, Replies};
use super::ControlError;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The read-only commands of `celery inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inspect {
    /// Tasks running now.
    Active,
    /// Tasks prefetched and waiting for a pool slot.
    Reserved,
    /// Tasks waiting for their eta.
    Scheduled,
    /// Worker statistics (`total`, `pool`, `rusage`, ...).
    Stats,
    /// Registered task names.
    Registered,
    /// Queues consumed now.
    ActiveQueues,
    /// Revoked task ids.
    Revoked,
    /// The worker's configuration.
    Conf,
    /// The worker's Lamport clock.
    Clock,
    /// What each worker knows of these task ids.
    QueryTask(Vec<String>),
}

impl Inspect {
    /// The command's name on the wire.
    pub fn method(&self) -> &'static str {
        match self {
            Inspect::Active => "active",
            Inspect::Reserved => "reserved",
            Inspect::Scheduled => "scheduled",
            Inspect::Stats => "stats",
            Inspect::Registered => "registered",
            Inspect::ActiveQueues => "active_queues",
            Inspect::Revoked => "revoked",
            Inspect::Conf => "conf",
            Inspect::Clock => "clock",
            Inspect::QueryTask(_) => "query_task",
        }
    }

    /// The arguments `celery inspect` sends with it.
    fn arguments(&self) -> Map<String, Value> {
        match self {
            Inspect::Active => object(json!({"safe": null})),
            Inspect::Registered => object(json!({"taskinfoitems": []})),
            Inspect::Conf => object(json!({"with_defaults": false})),
            Inspect::QueryTask(ids) => object(json!({"ids": ids})),
            _ => Map::new(),
        }
    }
}

impl Control {
    /// `ping`: every addressed worker answers `{"ok": "pong"}`.
    pub async fn ping(&self, options: &BroadcastOptions) -> Result<Replies, ControlError> {
        self.broadcast("ping", Map::new(), options).await
    }

    /// One of `celery inspect`'s commands.
    pub async fn inspect(
        &self,
        command: Inspect,
        options: &BroadcastOptions,
    ) -> Result<Replies, ControlError> {
        self.broadcast(command.method(), command.arguments(), options)
            .await
    }

    /// Revokes tasks everywhere (`app.control.revoke`); with `terminate`, a worker running one
    /// stops it (`signal` defaults to `SIGTERM`; Rust workers stop the task whatever it is).
    pub async fn revoke<Id: AsRef<str>>(
        &self,
        task_ids: &[Id],
        terminate: bool,
        signal: Option<&str>,
        options: &BroadcastOptions,
    ) -> Result<Replies, ControlError> {
        let ids: Vec<&str> = task_ids.iter().map(AsRef::as_ref).collect();
        let arguments = object(json!({
            "task_id": ids,
            "terminate": terminate,
            "signal": signal.unwrap_or("SIGTERM"),
        }));
        self.broadcast("revoke", arguments, options).await
    }

    /// Sets a task's rate limit (`"10/m"`, `"5/s"`, `"100/h"`; `"0"` removes it).
    pub async fn rate_limit(
        &self,
        task_name: &str,
        rate_limit: &str,
        options: &BroadcastOptions,
    ) -> Result<Replies, ControlError> {
        let arguments = object(json!({"task_name": task_name, "rate_limit": rate_limit}));
        self.broadcast("rate_limit", arguments, options).await
    }

    /// Sets a task's soft and hard time limits (None = no limit).
    pub async fn time_limit(
        &self,
        task_name: &str,
        soft: Option<Duration>,
        hard: Option<Duration>,
        options: &BroadcastOptions,
    ) -> Result<Replies, ControlError> {
        let seconds = |limit: Option<Duration>| limit.map(|limit| limit.as_secs_f64());
        let arguments = object(json!({
            "task_name": task_name,
            "soft": seconds(soft),
            "hard": seconds(hard),
        }));
        self.broadcast("time_limit", arguments, options).await
    }

    /// Starts consuming `queue`, bound to `exchange` (default: the queue's name, direct) under
    /// `routing_key` (default: the queue's name).
    pub async fn add_consumer(
        &self,
        queue: &str,
        exchange: Option<&str>,
        routing_key: Option<&str>,
        options: &BroadcastOptions,
    ) -> Result<Replies, ControlError> {
        let mut arguments = object(json!({"queue": queue}));
        if let Some(exchange) = exchange {
            arguments.insert("exchange".into(), json!(exchange));
        }
        if let Some(routing_key) = routing_key {
            arguments.insert("routing_key".into(), json!(routing_key));
        }
        self.broadcast("add_consumer", arguments, options).await
    }

    /// Stops consuming `queue`.
    pub async fn cancel_consumer(
        &self,
        queue: &str,
        options: &BroadcastOptions,
    ) -> Result<Replies, ControlError> {
        self.broadcast("cancel_consumer", object(json!({"queue": queue})), options)
            .await
    }

    /// Adds `n` pool slots (processes, for a Python prefork worker).
    pub async fn pool_grow(
        &self,
        n: u32,
        options: &BroadcastOptions,
    ) -> Result<Replies, ControlError> {
        self.broadcast("pool_grow", object(json!({"n": n})), options)
            .await
    }

    /// Removes `n` pool slots.
    pub async fn pool_shrink(
        &self,
        n: u32,
        options: &BroadcastOptions,
    ) -> Result<Replies, ControlError> {
        self.broadcast("pool_shrink", object(json!({"n": n})), options)
            .await
    }

    /// Changes the autoscaler's range (workers without one answer with an error).
    pub async fn autoscale(
        &self,
        max: u32,
        min: u32,
        options: &BroadcastOptions,
    ) -> Result<Replies, ControlError> {
        self.broadcast(
            "autoscale",
            object(json!({"max": max, "min": min})),
            options,
        )
        .await
    }

    /// Asks workers to shut down warmly. Workers do not answer it, so this never waits.
    pub async fn shutdown(&self, options: &BroadcastOptions) -> Result<Replies, ControlError> {
        let options = options.clone().without_reply();
        self.broadcast("shutdown", Map::new(), &options).await
    }

    /// Turns task events on.
    pub async fn enable_events(&self, options: &BroadcastOptions) -> Result<Replies, ControlError> {
        self.broadcast("enable_events", Map::new(), options).await
    }

    /// Turns task events off.
    pub async fn disable_events(
        &self,
        options: &BroadcastOptions,
    ) -> Result<Replies, ControlError> {
        self.broadcast("disable_events", Map::new(), options).await
    }

    /// Asks workers for a `worker-heartbeat` event now (no reply).
    pub async fn heartbeat(&self, options: &BroadcastOptions) -> Result<Replies, ControlError> {
        let options = options.clone().without_reply();
        self.broadcast("heartbeat", Map::new(), &options).await
    }
}

/// The object inside a `json!({...})` literal.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
