//! [`AsyncResult`]: a handle on one task's result, like Celery's `AsyncResult`.

use super::{BackendError, RedisBackend};
use crate::protocol::ResultMeta;
use crate::types::{TaskId, TaskState};
use std::time::Duration;

/// A task id plus the backend its result is stored in.
#[derive(Debug, Clone)]
pub struct AsyncResult {
    /// The task.
    pub id: TaskId,
    backend: Option<RedisBackend>,
}

impl AsyncResult {
    /// A handle for `id`; without a backend only the id is known.
    pub fn new(id: TaskId, backend: Option<RedisBackend>) -> Self {
        AsyncResult { id, backend }
    }

    /// The current state; PENDING when nothing is stored or no backend is configured.
    pub async fn state(&self) -> Result<TaskState, BackendError> {
        Ok(self
            .meta()
            .await?
            .map(|meta| meta.status)
            .unwrap_or(TaskState::Pending))
    }

    /// The stored document, if any.
    pub async fn meta(&self) -> Result<Option<ResultMeta>, BackendError> {
        match &self.backend {
            Some(backend) => backend.get(self.id.as_str()).await,
            None => Ok(None),
        }
    }

    /// Waits for a ready state (SUCCESS, FAILURE or REVOKED) and returns the document; the
    /// caller decides what a FAILURE means for it (Celery's `get(propagate=False)`).
    pub async fn get(&self, timeout: Duration) -> Result<ResultMeta, BackendError> {
        match &self.backend {
            Some(backend) => backend.wait_ready(self.id.as_str(), timeout).await,
            None => Err(BackendError::NotConfigured),
        }
    }
}
