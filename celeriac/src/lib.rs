//! Celeriac: Celery's architecture in Rust, wire-compatible with Celery on Redis.
//!
//! A Python Celery producer can hand work to a Celeriac worker and a Celeriac producer can hand
//! work to a Python worker: messages, queues, in-flight bookkeeping and results are laid out in
//! Redis exactly as Celery 5 and kombu lay them out.
//!
//! # Layout
//! - [`types`]: vocabulary with no IO (task ids, states, exceptions); compiles to WASM.
//! - [`protocol`]: every byte that crosses a process: kombu envelope, task message v2 (and v1
//!   decoding), kombu's typed JSON, result documents. No IO.
//! - [`config`]: Celery's setting names, read from `celeriac.toml` and `CELERIAC_*` variables.
//! - [`routing`]: `task_routes` (exact names and glob patterns) to a queue.
//! - [`broker`]: the kombu Redis transport: priority lists, atomic fetch into `unacked`, ack,
//!   reject, visibility-timeout restore, dead letters.
//! - [`backend`]: the Redis result backend (`celery-task-meta-<id>`) and [`backend::AsyncResult`].
//! - [`producer`]: `send_task`, `apply_async`/`delay` for typed Rust tasks, batched sends.
//! - [`task`]: how a Rust task is written and registered: plain async fns, options, outcomes.
//! - [`worker`]: the runtime that consumes, executes, retries and acknowledges tasks.
//! - [`events`]: Celery events from our worker (worker heartbeats, task events).
//! - [`control`]: remote control of workers (`inspect`, `revoke`, `pool_grow`, ...) from Rust.
//! - [`db`]: the SQL database (SQLite or PostgreSQL) of the task history and beat.
//! - [`history`]: the durable task history fed by events and the result backend, and
//!   [`history::retry_task`].
//! - [`demo`]: `demo.*` tasks with exact behaviour, for tests and examples.
//! - [`beat`]: schedules (crontab with time zones and DST, interval, clocked) and periodic task
//!   entries; no IO, compiles to WASM.
//!
//! Only `types` and `beat` are available without the default `runtime` feature.

pub mod beat;
pub mod types;

#[cfg(feature = "runtime")]
pub mod backend;
#[cfg(feature = "runtime")]
pub mod broker;
#[cfg(feature = "runtime")]
pub mod clock;
#[cfg(feature = "runtime")]
pub mod config;
#[cfg(feature = "runtime")]
pub mod control;
#[cfg(feature = "runtime")]
pub mod db;
#[cfg(feature = "runtime")]
pub mod demo;
#[cfg(feature = "runtime")]
pub mod error;
#[cfg(feature = "runtime")]
pub mod events;
#[cfg(feature = "runtime")]
pub mod failpoint;
#[cfg(feature = "runtime")]
pub mod history;
#[cfg(feature = "runtime")]
pub mod producer;
#[cfg(feature = "runtime")]
pub mod protocol;
#[cfg(feature = "runtime")]
pub mod routing;
#[cfg(feature = "runtime")]
pub mod task;
#[cfg(feature = "testkit")]
pub mod testkit;
#[cfg(feature = "runtime")]
pub mod worker;

#[cfg(feature = "runtime")]
pub use error::{Error, Result};
pub use types::{ExceptionInfo, TaskId, TaskState};
