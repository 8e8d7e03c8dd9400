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
//! - [`backend`]: the Redis result backend (`celery-task-meta-<id>`) and [`backend::AsyncResult`].
//! - [`producer`]: `send_task`, `apply_async`/`delay` for typed Rust tasks, batched sends.
//! - [`task`](mod@task): how a Rust task is written and registered: plain async fns, options,
//!   outcomes.
//! - [`worker`]: the runtime that consumes, executes, retries and acknowledges tasks.
//! - [`events`]: Celery events from our worker (worker heartbeats, task events).
//! - [`control`]: remote control of workers (`inspect`, `revoke`, `pool_grow`, ...) from Rust.
//! - [`db`]: the SQL database (SQLite or PostgreSQL) of the task history and beat.
//! - [`beat`]: schedules (crontab with time zones and DST, interval, clocked) and periodic task
//!   entries; no IO, compiles to WASM.
//!
//! - [`prelude`]: what defining and sending tasks needs, for `use celeriac::prelude::*`.
//!
//! The other public modules (the kombu Redis transport, the durable task history, the
//! dashboard's accounts, the clock, failpoints, the `demo.*` tasks and the test kit) are public
//! only so that Celeriac's own crates can use them. They are hidden from these docs and carry
//! no stability promise: build on the modules above.
//!
//! Only `types` and `beat` are available without the default `runtime` feature. The default
//! `macros` feature adds [`macro@task`], the `#[celeriac::task(...)]` attribute.
//!
//! # Hello Celeriac
//!
//! ```
//! use celeriac::prelude::*;
//! use std::time::Duration;
//!
//! #[task(name = "orders.send_invoice_email", queue = "email", max_retries = 5,
//!        autoretry_for = [std::io::Error], retry_backoff = true, time_limit = 300)]
//! async fn send_invoice_email(
//!     context: TaskContext,
//!     order_id: i64,
//! ) -> Result<String, std::io::Error> {
//!     Ok(format!("invoice {order_id}, attempt {}", context.retries() + 1))
//! }
//!
//! // Worker: register the task (options included).
//! let mut registry = Registry::new();
//! registry.register(send_invoice_email::task());
//!
//! // Producer: the arguments are checked against the function, the result comes back typed.
//! async fn send(producer: &Producer) -> Result<String, Box<dyn std::error::Error>> {
//!     let result = send_invoice_email::delay(producer, 42).await?;
//!     Ok(result.wait(Duration::from_secs(10)).await?)
//! }
//! # assert!(registry.get("orders.send_invoice_email").is_some());
//! ```

// The code `#[celeriac::task]` generates names `::celeriac`, which this makes valid inside the
// crate's own unit tests.
#[cfg(all(test, feature = "macros"))]
extern crate self as celeriac;

pub mod beat;
pub mod types;

#[cfg(feature = "runtime")]
pub mod canvas;

#[cfg(feature = "runtime")]
pub mod backend;
#[cfg(feature = "runtime")]
pub mod config;
#[cfg(feature = "runtime")]
pub mod control;
#[cfg(feature = "runtime")]
pub mod db;
#[cfg(feature = "runtime")]
pub mod error;
#[cfg(feature = "runtime")]
pub mod events;
#[cfg(feature = "runtime")]
pub mod producer;
#[cfg(feature = "runtime")]
pub mod protocol;
#[cfg(feature = "runtime")]
pub mod routing;
#[cfg(feature = "runtime")]
pub mod task;
#[cfg(feature = "runtime")]
pub mod worker;

#[cfg(feature = "runtime")]
pub mod prelude;

// Hidden: public only for Celeriac's own crates (`celeriac-server`, the demo, the tests), with
// no stability promise.
#[cfg(feature = "runtime")]
#[doc(hidden)]
pub mod auth;
#[cfg(feature = "runtime")]
#[doc(hidden)]
pub mod broker;
#[cfg(feature = "runtime")]
#[doc(hidden)]
pub mod clock;
#[cfg(feature = "runtime")]
#[doc(hidden)]
pub mod demo;
#[cfg(feature = "runtime")]
#[doc(hidden)]
pub mod failpoint;
#[cfg(feature = "runtime")]
#[doc(hidden)]
pub mod history;
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod testkit;

/// The `#[celeriac::task(...)]` attribute; a macro, so it shares the name of the [`mod@task`]
/// module without clashing.
#[cfg(feature = "macros")]
pub use celeriac_macros::task;
#[cfg(feature = "runtime")]
pub use error::{Error, Result};
pub use types::{ExceptionInfo, TaskId, TaskState};
