//! One worker's detail (`GET /api/worker/{name}`) and the answer of its actions
//! (`POST /api/worker/{name}/<command>`), as the worker detail page reads them.
//!
//! The inspect replies come from Rust and Python workers alike, so every field beyond the
//! few the page shows is left out and everything optional defaults.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /api/worker/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerDetail {
    /// Node name.
    pub name: String,
    /// The worker answered the inspect commands (false: offline or too slow).
    pub replied: bool,
    /// Pool slots (`stats.pool.max-concurrency`).
    #[serde(default)]
    pub pool_size: Option<u64>,
    /// What the monitor's events say of it; None when it never sent any.
    #[serde(default)]
    pub heartbeat: Option<WorkerHeartbeat>,
    /// Queues consumed now.
    #[serde(default)]
    pub active_queues: Option<Vec<ConsumedQueue>>,
    /// Registered task names.
    #[serde(default)]
    pub registered: Option<Vec<String>>,
    /// Tasks running.
    #[serde(default)]
    pub active: Option<Vec<WorkerRequest>>,
    /// Tasks prefetched, waiting for a pool slot.
    #[serde(default)]
    pub reserved: Option<Vec<WorkerRequest>>,
    /// Tasks waiting for their eta.
    #[serde(default)]
    pub scheduled: Option<Vec<ScheduledRequest>>,
}

/// A worker's last heartbeat, as the monitor keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerHeartbeat {
    /// Alive by its heartbeats.
    pub alive: bool,
    /// Tasks running.
    #[serde(default)]
    pub active: u64,
    /// Tasks processed.
    #[serde(default)]
    pub processed: u64,
    /// 1, 5, 15 minute load averages.
    #[serde(default)]
    pub loadavg: [f64; 3],
    /// `py-celery` or `celeriac`.
    #[serde(default)]
    pub sw_ident: Option<String>,
    /// Its version.
    #[serde(default)]
    pub sw_ver: Option<String>,
    /// When the last sign of life was received.
    #[serde(default)]
    pub last_seen: Option<DateTime<Utc>>,
}

/// One consumed queue (kombu's `Queue.as_dict()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumedQueue {
    /// Queue name.
    pub name: String,
    /// Its routing key.
    #[serde(default)]
    pub routing_key: Option<String>,
}

/// A task a worker holds (Celery's `Request.info()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRequest {
    /// Task id.
    pub id: String,
    /// Task name.
    #[serde(default)]
    pub name: Option<String>,
    /// Python repr of the positional arguments.
    #[serde(default)]
    pub argsrepr: Option<String>,
    /// The positional arguments, when no repr was sent.
    #[serde(default)]
    pub args: Value,
    /// Epoch seconds it started (active tasks).
    #[serde(default)]
    pub time_start: Option<f64>,
}

impl WorkerRequest {
    /// The arguments as text.
    pub fn arguments(&self) -> String {
        self.argsrepr.clone().unwrap_or_else(|| match &self.args {
            Value::Null => String::new(),
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
    }
}

/// A task waiting for its eta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledRequest {
    /// The eta as the worker reports it.
    #[serde(default)]
    pub eta: Option<Value>,
    /// The task.
    pub request: WorkerRequest,
}

/// What a worker action answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerActionAnswer {
    /// The worker's `ok` text (or Flower's message).
    pub message: String,
}
