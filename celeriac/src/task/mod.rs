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
//!
//! With the default `macros` feature, `#[celeriac::task(name = "…", …)]` on the async fn
//! generates the [`Task`] (with its options), a typed [`TaskRef`] checked against the
//! function's parameters and return type, and `delay`/`apply_async` next to the function.
//!
//! A Rust error converted with `?` keeps its type: `std::io::Error` is stored as `OSError` for
//! Python's sake, and [`Task::autoretry_for_type`] retries it by its Rust type.

mod context;
mod error_type;
mod handler;
mod options;
mod outcome;
mod registry;
mod task_ref;

pub use context::{RequestInfo, SharedState, TaskContext};
pub use error_type::ErrorType;
pub use handler::{ArgumentError, BoxedRun as BoxedRunFuture, ContextHandler, Handler, RawArgs};
pub use options::TaskOptions;
pub use outcome::{IntoOutcome, Outcome, RetryRequest, TaskError};
pub use registry::{Registry, Task};
pub(crate) use task_ref::positional_args;
pub use task_ref::{TaskArgs, TaskRef};

#[cfg(all(test, feature = "macros"))]
mod tests;
