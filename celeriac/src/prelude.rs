//! What defining, registering and sending tasks needs, in one import:
//! `use celeriac::prelude::*;`.
//!
//! Kept to the names a task module uses every day; everything else stays behind its module
//! path, so a glob import cannot shadow the user's own names by surprise.

pub use crate::backend::{AsyncResult, ResultError};
pub use crate::producer::{Producer, SendOptions, TaskArgs, TaskRef};
pub use crate::task::{Registry, Task, TaskContext, TaskError};
/// The `#[task(...)]` attribute (see [`macro@crate::task`]).
#[cfg(feature = "macros")]
pub use celeriac_macros::task;
