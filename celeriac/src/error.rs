//! The engine's top-level error, wrapping one error enum per boundary.

use crate::backend::BackendError;
use crate::config::ConfigError;
use crate::control::ControlError;
use crate::db::DatabaseError;
use crate::protocol::ProtocolError;

// Their modules are internal; the errors are part of `Error`, so they are documented here.
pub use crate::broker::BrokerError;
pub use crate::history::HistoryError;

/// Every error the engine returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A message could not be encoded or decoded.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The broker failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The result backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// An idempotent send was refused: a task with this id is still pending.
    #[error("task {task_id} is already enqueued and not finished")]
    Duplicate {
        /// The pending task's id; its result is the one to wait for.
        task_id: String,
    },
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A remote-control broadcast failed.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The SQL database failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// The task history failed.
    #[error(transparent)]
    History(#[from] HistoryError),
}

impl Error {
    /// True when the broker or the result backend could not be reached or cannot serve yet:
    /// trying again later may succeed.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::Broker(error) => error.is_unreachable(),
            Error::Backend(error) => error.is_unreachable(),
            _ => false,
        }
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `error` and its sources, `: `-separated, for a log line: the engine's errors name the step
/// that failed and leave the cause (what Redis said) to their source.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
