//! The synthetic event stream: what a cluster of four Celery workers with `-E` and producers
//! with `task_send_sent_event` publish, built ahead of time so that publishing costs only the
//! `PUBLISH` itself, then sent at a fixed rate.
//!
//! Per task: `task-received` (name, args/kwargs reprs, root id, retries, eta, expires),
//! `task-started`, then `task-succeeded` (result repr, runtime) for 90 %, `task-failed`
//! (exception and a 600-byte traceback) for 7 %, and for 3 % a `task-retried` followed by a
//! second received/started/succeeded. Worker events go in `task.multi` lists of up to 24 per
//! worker, as Celery's event loop batches them; one task in five also has a `task-sent` single
//! from a producer, and each worker sends a `worker-heartbeat` single every 5,000 events.

use celeriac::broker::Keys;
use celeriac::protocol::event::{self, EventSource, TASK_MULTI};
use redis::aio::MultiplexedConnection;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

const WORKERS: usize = 4;
const BATCH: usize = 24;
const NAMES: [&str; 8] = [
    "orders.process",
    "orders.refund",
    "email.send",
    "email.digest",
    "render.thumbnail",
    "render.pdf",
    "carts.expire",
    "reports.daily",
];
const TRACEBACK: &str = "Traceback (most recent call last):\n  File \"/app/venv/lib/python3.11/site-packages/celery/app/trace.py\", line 453, in trace_task\n    R = retval = fun(*args, **kwargs)\n                 ^^^^^^^^^^^^^^^^^^^^\n  File \"/app/venv/lib/python3.11/site-packages/celery/app/trace.py\", line 736, in __protected_call__\n    return self.run(*args, **kwargs)\n           ^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/app/proj/orders.py\", line 42, in process\n    raise ValueError(f'invalid order {order_id}')\nValueError: invalid order\n";

/// One `PUBLISH`, encoded.
pub(crate) struct Message {
    pub(crate) channel: String,
    pub(crate) raw: String,
    /// All events in it.
    pub(crate) events: u64,
}

/// A stream ready to publish.
pub(crate) struct Stream {
    pub(crate) messages: Vec<Message>,
    pub(crate) tasks: u64,
    pub(crate) events: u64,
    pub(crate) task_events: u64,
}

struct Builder {
    keys: Keys,
    workers: Vec<EventSource>,
    producer: EventSource,
    buffers: Vec<Vec<Value>>,
    clock: u64,
    time: f64,
    stream: Stream,
    since_heartbeat: u64,
}

impl Builder {
    fn event(&mut self, source: &EventSource, kind: &str, fields: Map<String, Value>) -> Value {
        self.clock += 1;
        self.time += 0.000_01;
        event::event(source, kind, self.clock, self.time, fields)
    }

    fn push(&mut self, routing_key: &str, hostname: &str, body: &Value, task_events: u64) {
        let events = body.as_array().map_or(1, |list| list.len() as u64);
        let envelope = event::envelope(
            body,
            hostname,
            routing_key,
            uuid::Uuid::new_v4().to_string(),
        );
        self.stream.events += events;
        self.stream.task_events += task_events;
        self.since_heartbeat += events;
        self.stream.messages.push(Message {
            channel: self.keys.fanout_channel("celeryev", routing_key),
            raw: envelope.to_json(),
            events,
        });
    }

    fn task_event(&mut self, worker: usize, kind: &str, fields: Map<String, Value>) {
        let source = self.workers[worker].clone();
        let stamped = self.event(&source, kind, fields);
        self.buffers[worker].push(stamped);
        if self.buffers[worker].len() >= BATCH {
            self.flush(worker);
        }
        if self.since_heartbeat >= 5_000 {
            self.since_heartbeat = 0;
            for index in 0..WORKERS {
                let source = self.workers[index].clone();
                let mut fields = Map::new();
                fields.insert("freq".into(), json!(2.0));
                fields.insert("active".into(), json!(4));
                fields.insert("processed".into(), json!(self.stream.tasks));
                fields.insert("loadavg".into(), json!([1.5, 1.2, 0.9]));
                fields.insert("sw_ident".into(), json!("py-celery"));
                fields.insert("sw_ver".into(), json!("5.4.0"));
                fields.insert("sw_sys".into(), json!("Linux"));
                let beat = self.event(&source, "worker-heartbeat", fields);
                let hostname = source.hostname.clone();
                self.push("worker.heartbeat", &hostname, &beat, 0);
            }
        }
    }

    fn flush(&mut self, worker: usize) {
        let batch = std::mem::take(&mut self.buffers[worker]);
        if batch.is_empty() {
            return;
        }
        let count = batch.len() as u64;
        let hostname = self.workers[worker].hostname.clone();
        self.push(TASK_MULTI, &hostname, &Value::Array(batch), count);
    }
}

fn fields(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

/// A stream of `tasks` tasks starting at epoch `start`.
pub(crate) fn build(tasks: u64, start: f64) -> Stream {
    let mut builder = Builder {
        keys: Keys::new("", vec![0]),
        workers: (0..WORKERS)
            .map(|index| EventSource {
                hostname: format!("celery@bench-worker-{index}"),
                pid: 1000 + index as u32,
                utcoffset: 0,
            })
            .collect(),
        producer: EventSource {
            hostname: "gen4242@bench-web".into(),
            pid: 4242,
            utcoffset: 0,
        },
        buffers: vec![Vec::new(); WORKERS],
        clock: 0,
        time: start,
        stream: Stream {
            messages: Vec::new(),
            tasks,
            events: 0,
            task_events: 0,
        },
        since_heartbeat: 0,
    };
    for index in 0..tasks {
        let id = uuid::Uuid::new_v4().to_string();
        let name = NAMES[(index % NAMES.len() as u64) as usize];
        let worker = (index % WORKERS as u64) as usize;
        let args = format!("({index}, 'order-{index}')");
        let kwargs = "{'priority': 'high', 'notify': True}";
        let identity = |retries: u64| {
            fields(vec![
                ("uuid", json!(id)),
                ("name", json!(name)),
                ("args", json!(args)),
                ("kwargs", json!(kwargs)),
                ("root_id", json!(id)),
                ("parent_id", Value::Null),
                ("retries", json!(retries)),
                ("eta", Value::Null),
                ("expires", Value::Null),
            ])
        };
        if index % 5 == 0 {
            let mut sent = identity(0);
            sent.insert("queue".into(), json!("celery"));
            sent.insert("exchange".into(), json!(""));
            sent.insert("routing_key".into(), json!("celery"));
            let producer = builder.producer.clone();
            let body = builder.event(&producer, "task-sent", sent);
            builder.push("task.sent", &producer.hostname, &body, 1);
        }
        let uuid_only = || fields(vec![("uuid", json!(id))]);
        let succeeded = || {
            fields(vec![
                ("uuid", json!(id)),
                (
                    "result",
                    json!(format!("{{'status': 'ok', 'order': {index}}}")),
                ),
                ("runtime", json!(0.0123 + (index % 100) as f64 / 1000.0)),
            ])
        };
        builder.task_event(worker, "task-received", identity(0));
        builder.task_event(worker, "task-started", uuid_only());
        match index % 100 {
            0..=89 => builder.task_event(worker, "task-succeeded", succeeded()),
            90..=96 => {
                let mut failed = uuid_only();
                failed.insert(
                    "exception".into(),
                    json!(format!("ValueError('invalid order {index}')")),
                );
                failed.insert("traceback".into(), json!(TRACEBACK));
                builder.task_event(worker, "task-failed", failed);
            }
            _ => {
                let mut retried = uuid_only();
                retried.insert("exception".into(), json!("ConnectionError('smtp timeout')"));
                retried.insert("traceback".into(), json!(TRACEBACK));
                builder.task_event(worker, "task-retried", retried);
                builder.task_event(worker, "task-received", identity(1));
                builder.task_event(worker, "task-started", uuid_only());
                builder.task_event(worker, "task-succeeded", succeeded());
            }
        }
    }
    for worker in 0..WORKERS {
        builder.flush(worker);
    }
    builder.stream
}

/// Publishes `stream` at `rate` events per second (paced every 2 ms, pipelined); returns how
/// long it took.
pub(crate) async fn publish(
    connection: &mut MultiplexedConnection,
    stream: &Stream,
    rate: f64,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut next = 0;
    let mut published_events = 0u64;
    let mut ticks = tokio::time::interval(Duration::from_millis(2));
    while next < stream.messages.len() {
        ticks.tick().await;
        let due = (started.elapsed().as_secs_f64() * rate) as u64;
        let mut pipeline = redis::pipe();
        let mut queued = 0;
        while next < stream.messages.len() && published_events < due && queued < 2_000 {
            let message = &stream.messages[next];
            pipeline
                .cmd("PUBLISH")
                .arg(&message.channel)
                .arg(&message.raw)
                .ignore();
            published_events += message.events;
            next += 1;
            queued += 1;
        }
        if queued > 0 {
            pipeline.query_async::<()>(connection).await?;
        }
    }
    Ok(started.elapsed())
}
