//! How a Rust task is written and registered.
//!
//! A task is a plain async fn whose parameters are the task's positional arguments (any
//! `serde::Deserialize` types) and whose return is `Result<T: Serialize, E: Into<TaskError>>`:
//!
//! ```
//! use celeriac::task::{Registry, Task, TaskError};
//!
//! async fn add(x: i64, y: i64) -> Result<i64, TaskError> {
//!     Ok(x + y)
//! }
//!
//! let mut registry = Registry::new();
//! registry.register(Task::new("demo.add", add).arg_names(["x", "y"]));
//! assert!(registry.get("demo.add").is_some());
//! ```
//!
//! Tasks that need their request (id, retries) or want to retry explicitly or watch the soft
//! time limit take a [`TaskContext`] first and are registered with [`Task::with_context`].

mod context;
mod handler;
mod options;
mod outcome;
mod registry;

pub use context::{RequestInfo, TaskContext};
pub use handler::{ArgumentError, BoxedRun as BoxedRunFuture, ContextHandler, Handler, RawArgs};
pub use options::TaskOptions;
pub use outcome::{IntoOutcome, Outcome, RetryRequest, TaskError};
pub use registry::{Registry, Task};
