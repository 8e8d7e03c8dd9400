//! The producer: `send_task` for any task by name, `delay`/`apply_async` for typed Rust tasks,
//! and batched sends for bulk enqueue.
//!
//! Every message is built by [`crate::protocol::TaskMessage`] with Celery's full header set and
//! checked with `validate_for_publish` before it reaches Redis, so nothing we publish can crash a
//! Python worker. A publish either reaches Redis or returns an error: there is no silent drop.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use celeriac::config::Config;
//! use celeriac::producer::{Producer, SendOptions, TaskRef};
//! use std::time::Duration;
//!
//! const ADD: TaskRef<(i64, i64), i64> = TaskRef::new("demo.add");
//! let producer = Producer::connect(&Config::default()).await?;
//! let result = producer.delay(&ADD, (2, 3)).await?;
//! producer.apply_async(&ADD, (4, 5), SendOptions::new().countdown(Duration::from_secs(10))).await?;
//! let sum: i64 = result.wait(Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```
//!
//! A task's queue, in order of precedence: `SendOptions::queue`, the handle's own queue
//! ([`TaskRef::with_queue`], Celery's `Task.queue`), `task_routes`, `task_default_queue`. Celery
//! orders them the same way: a task's `queue` attribute wins over `task_routes`.

use crate::backend::{AsyncResult, ResultBackend};
use crate::broker::{BrokerOptions, RedisBroker};
use crate::clock;
use crate::config::Config;
use crate::protocol::task_message::PublishTarget;
use crate::protocol::TaskMessage;
use crate::routing::TaskRoutes;
use crate::task::positional_args;
use crate::types::TaskId;
use crate::Error;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Duration;

pub use crate::task::{TaskArgs, TaskRef};

/// `apply_async` options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendOptions {
    /// Use this task id instead of a fresh UUID4.
    pub task_id: Option<String>,
    /// Run no earlier than this long from now (converted to an absolute `eta`).
    pub countdown: Option<Duration>,
    /// Run no earlier than this time (wins over countdown).
    pub eta: Option<DateTime<Utc>>,
    /// Revoke instead of run after this time.
    pub expires: Option<DateTime<Utc>>,
    /// Queue; otherwise `task_routes`, otherwise `task_default_queue`.
    pub queue: Option<String>,
    /// 0..=9, lower is served first on Redis.
    pub priority: Option<u8>,
    /// Extra headers merged into the message headers.
    pub headers: Map<String, Value>,
    /// Hard time limit for this call.
    pub time_limit: Option<Duration>,
    /// Soft time limit for this call.
    pub soft_time_limit: Option<Duration>,
    /// Do not store the result of this call.
    pub ignore_result: bool,
    /// Parent task id (set when a task sends a task).
    pub parent_id: Option<String>,
    /// Root task id of the workflow.
    pub root_id: Option<String>,
    /// Alternative display name.
    pub shadow: Option<String>,
    /// Refuse this send while a task with the same id is still pending (enqueued and not
    /// finished): idempotent enqueue. The id is `task_id`, or derived from `unique_key`.
    pub unique: bool,
    /// Derive the task id from the task name and this key (the object and action the task is
    /// for, e.g. `"order-42/invoice"`), so retried requests map to the same task.
    pub unique_key: Option<String>,
    /// What the message asks after it (`link`, `link_error`, the rest of a chain), as a
    /// retried workflow step carries it; empty for a plain call.
    pub workflow: crate::protocol::Embed,
}

impl SendOptions {
    /// No options: Celery's defaults.
    pub fn new() -> Self {
        SendOptions::default()
    }

    /// Idempotent enqueue with an id derived from the task name and `key`: a second send for
    /// the same key while the first task is pending is refused with [`Error::Duplicate`].
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique = true;
        self.unique_key = Some(key.into());
        self
    }

    /// Idempotent enqueue by `task_id`: refused while a task with that id is pending.
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    /// Use this task id.
    pub fn task_id(mut self, task_id: impl Into<String>) -> Self {
        self.task_id = Some(task_id.into());
        self
    }

    /// Run after `countdown`.
    pub fn countdown(mut self, countdown: Duration) -> Self {
        self.countdown = Some(countdown);
        self
    }

    /// Run at `eta`.
    pub fn eta(mut self, eta: DateTime<Utc>) -> Self {
        self.eta = Some(eta);
        self
    }

    /// Expire at `expires`.
    pub fn expires(mut self, expires: DateTime<Utc>) -> Self {
        self.expires = Some(expires);
        self
    }

    /// Expire `after` from now.
    pub fn expires_in(mut self, after: Duration) -> Self {
        self.expires = chrono::Duration::from_std(after)
            .ok()
            .map(|after| clock::now() + after);
        self
    }

    /// Send to `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Message priority.
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: Value) -> Self {
        self.headers.insert(name.into(), value);
        self
    }
}

/// One call in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskCall {
    /// Task name.
    pub name: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Map<String, Value>,
    /// Options.
    pub options: SendOptions,
}

/// Publishes task messages.
#[derive(Debug, Clone)]
pub struct Producer {
    broker: RedisBroker,
    backend: Option<ResultBackend>,
    routes: TaskRoutes,
    default_queue: String,
    default_priority: Option<u8>,
    default_ignore_result: bool,
    origin: String,
    reply_to: String,
    /// Sends `task-sent` events when `task_send_sent_event` is on.
    events: Option<std::sync::Arc<crate::events::EventDispatcher>>,
}

/// One message built and checked, ready to push.
pub(crate) struct Prepared {
    pub(crate) queue: String,
    pub(crate) priority: u8,
    pub(crate) raw: String,
    pub(crate) task_id: String,
    /// The fields of its `task-sent` event, when those are sent.
    sent_event: Option<Map<String, Value>>,
}

impl Producer {
    /// Connects to the broker and (if configured) the result backend of `config`.
    pub async fn connect(config: &Config) -> Result<Producer, Error> {
        let options = broker_options(config);
        let broker = RedisBroker::connect(&config.broker_url, options.clone()).await?;
        let backend = ResultBackend::from_config(config).await?;
        Ok(Producer::from_parts(broker, backend, config))
    }

    /// A producer over existing connections (the worker shares its own).
    #[doc(hidden)] // takes the internal transport; build one with `Producer::connect`
    pub fn from_parts(
        broker: RedisBroker,
        backend: Option<ResultBackend>,
        config: &Config,
    ) -> Producer {
        let host = crate::worker::node_name::hostname();
        let origin = format!("gen{}@{}", std::process::id(), host);
        let events = config
            .task_send_sent_event
            .then(|| crate::events::EventDispatcher::new(broker.clone(), &origin, false));
        Producer {
            events,
            broker,
            backend,
            routes: config.task_routes.clone(),
            default_queue: config.task_default_queue.clone(),
            default_priority: config.task_default_priority,
            default_ignore_result: config.task_ignore_result,
            origin,
            reply_to: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// The broker this producer publishes to.
    #[doc(hidden)] // the internal transport, for Celeriac's own crates
    pub fn broker(&self) -> &RedisBroker {
        &self.broker
    }

    /// The result backend, if configured.
    pub fn backend(&self) -> Option<&ResultBackend> {
        self.backend.as_ref()
    }

    /// A handle on `task_id`'s result.
    pub fn async_result(&self, task_id: impl Into<TaskId>) -> AsyncResult {
        AsyncResult::new(task_id.into(), self.backend.clone())
    }

    /// Sends task `name` (Celery's `send_task`): the task may be Rust or Python.
    pub async fn send_task(
        &self,
        name: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        options: SendOptions,
    ) -> Result<AsyncResult, Error> {
        let Prepared {
            queue,
            priority,
            raw,
            task_id,
            sent_event,
        } = self.prepare(name, args, kwargs, &options)?;
        if options.unique {
            let ttl = unique_ttl(&options);
            let published = self
                .broker
                .publish_unique(&queue, priority, &raw, &task_id, ttl)
                .await?;
            if !published {
                return Err(Error::Duplicate { task_id });
            }
        } else {
            self.broker.publish(&queue, priority, &raw).await?;
        }
        tracing::debug!(task_id = %task_id, task_name = name, queue = %queue, "task sent");
        if let (Some(events), Some(fields)) = (&self.events, sent_event) {
            events.send_now("task-sent", fields).await;
        }
        Ok(self.async_result(task_id))
    }

    /// Sends a typed Rust task with default options (Celery's `delay`); the result handle reads
    /// back the task's return type.
    pub async fn delay<Args: TaskArgs + Serialize, R>(
        &self,
        task: &TaskRef<Args, R>,
        args: Args,
    ) -> Result<AsyncResult<R>, Error> {
        self.apply_async(task, args, SendOptions::new()).await
    }

    /// Sends a typed Rust task with options (Celery's `apply_async`). Each element of the
    /// `args` tuple is one positional argument; the handle's queue applies unless `options`
    /// names one.
    pub async fn apply_async<Args: TaskArgs + Serialize, R>(
        &self,
        task: &TaskRef<Args, R>,
        args: Args,
        mut options: SendOptions,
    ) -> Result<AsyncResult<R>, Error> {
        let args = positional_args(args).map_err(|error| {
            Error::Protocol(crate::protocol::ProtocolError::Unpublishable {
                reason: format!("arguments do not serialize to JSON: {error}"),
            })
        })?;
        if options.queue.is_none() {
            options.queue = task.queue().map(str::to_owned);
        }
        let result = self
            .send_task(task.name(), args, Map::new(), options)
            .await?;
        Ok(result.typed())
    }

    /// Sends many tasks in one Redis round trip; all are enqueued or none (one `MULTI`).
    pub async fn send_batch(&self, calls: Vec<TaskCall>) -> Result<Vec<AsyncResult>, Error> {
        let mut messages = Vec::with_capacity(calls.len());
        let mut results = Vec::with_capacity(calls.len());
        let mut sent_events = Vec::new();
        for call in calls {
            let prepared = self.prepare(&call.name, call.args, call.kwargs, &call.options)?;
            messages.push((prepared.queue, prepared.priority, prepared.raw));
            results.push(self.async_result(prepared.task_id));
            sent_events.extend(prepared.sent_event);
        }
        self.broker.publish_many(&messages).await?;
        if let Some(events) = &self.events {
            for fields in sent_events {
                events.send_now("task-sent", fields).await;
            }
        }
        Ok(results)
    }

    /// Publishes an already built message (retries reuse the original's headers).
    pub async fn publish_message(
        &self,
        message: &TaskMessage,
        queue: &str,
        priority: u8,
    ) -> Result<(), Error> {
        message.validate_for_publish()?;
        let raw = self.envelope_json(message, queue, priority);
        self.broker.publish(queue, priority, &raw).await?;
        Ok(())
    }

    /// Routes and publishes a message canvas built: the queue and priority of the call's
    /// options, else the task routes (by `route_name` when given: `celery.starmap` goes where
    /// its inner task goes), else the defaults. Stamps this producer's `origin`.
    pub(crate) async fn send_message(
        &self,
        mut message: TaskMessage,
        queue: Option<&str>,
        priority: Option<u8>,
        route_name: Option<&str>,
    ) -> Result<(), Error> {
        let name = route_name.unwrap_or(&message.headers.task);
        let (queue, priority) = self.route(name, queue, priority);
        message.headers.origin = Some(self.origin.clone());
        if self.default_ignore_result {
            message.headers.ignore_result = true;
        }
        self.publish_message(&message, &queue, priority).await?;
        if let Some(events) = &self.events {
            events
                .send_now("task-sent", sent_fields(&message, &queue))
                .await;
        }
        Ok(())
    }

    /// Where task `name` goes: the call's queue and priority, else its `task_routes` entry's,
    /// else `task_default_queue` and `task_default_priority` (0 when unset).
    fn route(&self, name: &str, queue: Option<&str>, priority: Option<u8>) -> (String, u8) {
        let route = self.routes.route(name);
        let queue = queue
            .map(str::to_owned)
            .or_else(|| route.map(|route| route.queue.clone()))
            .unwrap_or_else(|| self.default_queue.clone());
        let priority = priority
            .or_else(|| route.and_then(|route| route.priority))
            .or(self.default_priority)
            .unwrap_or(0);
        (queue, priority)
    }

    /// Builds a message without sending it, for senders with their own publish path (beat's
    /// fenced, claimed push).
    pub(crate) fn prepare_message(
        &self,
        name: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        options: &SendOptions,
    ) -> Result<Prepared, Error> {
        self.prepare(name, args, kwargs, options)
    }

    /// Builds and validates one message: (queue, priority, envelope JSON, task id).
    fn prepare(
        &self,
        name: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        options: &SendOptions,
    ) -> Result<Prepared, Error> {
        let task_id = match (&options.task_id, &options.unique_key) {
            (Some(task_id), _) => task_id.clone(),
            (None, Some(key)) => derived_task_id(name, key),
            (None, None) => uuid::Uuid::new_v4().to_string(),
        };
        let (queue, priority) = self.route(name, options.queue.as_deref(), options.priority);
        let mut message = TaskMessage::new(name, TaskId(task_id.clone()), args, kwargs);
        let headers = &mut message.headers;
        headers.eta = match (options.eta, options.countdown) {
            (Some(eta), _) => Some(eta),
            (None, Some(countdown)) => chrono::Duration::from_std(countdown)
                .ok()
                .map(|countdown| clock::now() + countdown),
            (None, None) => None,
        };
        headers.expires = options.expires;
        headers.timelimit = (
            options.time_limit.map(|limit| limit.as_secs_f64()),
            options.soft_time_limit.map(|limit| limit.as_secs_f64()),
        );
        headers.origin = Some(self.origin.clone());
        headers.ignore_result = options.ignore_result || self.default_ignore_result;
        headers.parent_id = options.parent_id.clone();
        if let Some(root_id) = &options.root_id {
            headers.root_id = Some(root_id.clone());
        }
        headers.shadow = options.shadow.clone();
        headers.extra = options.headers.clone();
        if options.unique {
            headers
                .extra
                .insert(UNIQUE_HEADER.to_owned(), Value::Bool(true));
        }
        message.embed = options.workflow.clone();
        message.validate_for_publish()?;
        let raw = self.envelope_json(&message, &queue, priority);
        let sent_event = self.events.as_ref().map(|_| sent_fields(&message, &queue));
        Ok(Prepared {
            queue,
            priority,
            raw,
            task_id,
            sent_event,
        })
    }

    fn envelope_json(&self, message: &TaskMessage, queue: &str, priority: u8) -> String {
        let target = PublishTarget {
            exchange: String::new(),
            routing_key: queue.to_owned(),
            priority,
            reply_to: self.reply_to.clone(),
        };
        message
            .to_envelope(&target, uuid::Uuid::new_v4().to_string(), clock::now())
            .to_json()
    }
}

/// The broker options a [`Config`] describes.
pub fn broker_options(config: &Config) -> BrokerOptions {
    let transport = &config.broker_transport_options;
    BrokerOptions {
        global_keyprefix: transport.global_keyprefix.clone(),
        visibility_timeout: transport.visibility_timeout(),
        priority_steps: transport.priority_steps.clone(),
        unacked_mutex_expire: transport.unacked_mutex_expire(),
        max_deliveries: config.worker_max_deliveries,
        beat_namespace: config.beat_namespace(),
        connection_retry_on_startup: config.broker_connection_retry_on_startup,
        connection_max_retries: config.broker_connection_max_retries,
        connection_timeout: Duration::try_from_secs_f64(config.broker_connection_timeout)
            .unwrap_or(Duration::from_secs(4)),
        ssl: config.broker_use_ssl.clone(),
        password_file: config.broker_password_file.clone(),
        sentinel: transport.sentinel(),
    }
}

/// The header that marks a unique task, so the worker ends its pending state when it finishes.
/// Python workers ignore unknown headers.
pub const UNIQUE_HEADER: &str = "celeriac_unique";

/// The task id idempotent enqueue derives from a task name and a key: a UUID5, stable across
/// processes and languages (`uuid.uuid5(uuid.NAMESPACE_URL, "celeriac:<name>/<key>")`).
pub fn derived_task_id(name: &str, key: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("celeriac:{name}/{key}").as_bytes(),
    )
    .to_string()
}

/// How long a unique task stays pending at most: until it expires, else a day past its eta.
fn unique_ttl(options: &SendOptions) -> Duration {
    let now = clock::now();
    let until = options.expires.or_else(|| {
        let eta = options.eta.or_else(|| {
            options
                .countdown
                .and_then(|countdown| chrono::Duration::from_std(countdown).ok())
                .map(|countdown| now + countdown)
        });
        Some(eta.unwrap_or(now) + chrono::Duration::days(1))
    });
    until
        .and_then(|until| (until - now).to_std().ok())
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_secs(1))
}

/// The fields of a `task-sent` event, as Celery's producer sends them.
fn sent_fields(message: &TaskMessage, queue: &str) -> Map<String, Value> {
    let headers = message.headers_json();
    let mut fields = Map::new();
    fields.insert("uuid".into(), headers["id"].clone());
    fields.insert("root_id".into(), headers["root_id"].clone());
    fields.insert("parent_id".into(), headers["parent_id"].clone());
    fields.insert("name".into(), headers["task"].clone());
    fields.insert("args".into(), headers["argsrepr"].clone());
    fields.insert("kwargs".into(), headers["kwargsrepr"].clone());
    fields.insert("retries".into(), headers["retries"].clone());
    fields.insert("eta".into(), headers["eta"].clone());
    fields.insert("expires".into(), headers["expires"].clone());
    fields.insert("queue".into(), Value::String(queue.to_owned()));
    fields.insert("exchange".into(), Value::String(String::new()));
    fields.insert("routing_key".into(), Value::String(queue.to_owned()));
    fields
}
