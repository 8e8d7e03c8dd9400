//! [`AsyncResult`]: a handle on one task's result, like Celery's `AsyncResult`, typed by the
//! task's return type when it came from a typed send.
//!
//! Two ways to read it, as Celery has two: [`AsyncResult::get`] returns the stored document
//! whatever the state (Celery's `get(propagate=False)`), and [`AsyncResult::wait`] returns the
//! return value decoded as `R`, with a FAILURE or REVOKED as a [`ResultError`] (Celery's
//! default `get()`, which re-raises the task's exception).

use super::{BackendError, ResultBackend};
use crate::protocol::content::decode_typed;
use crate::protocol::ResultMeta;
use crate::types::{ExceptionInfo, TaskId, TaskState};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::marker::PhantomData;
use std::time::Duration;

/// A task id plus the backend its result is stored in; `R` is what the task returns
/// (`serde_json::Value` when the sender did not say).
pub struct AsyncResult<R = Value> {
    /// The task.
    pub id: TaskId,
    backend: Option<ResultBackend>,
    result_type: PhantomData<fn() -> R>,
}

/// Why [`AsyncResult::wait`] has no return value to give.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The result could not be read: no backend, a Redis failure, or the timeout passed.
    #[error("could not read the task result")]
    Backend {
        /// What the backend said.
        #[from]
        source: BackendError,
    },
    /// The task ended in FAILURE, or was revoked; Celery's `get()` raises `exception` here.
    #[error("task {task_id} ended in {state}: {exception}")]
    Failed {
        /// The task.
        task_id: String,
        /// FAILURE or REVOKED.
        state: TaskState,
        /// What the task raised (`exc_type`, `exc_message`, `exc_module`).
        exception: ExceptionInfo,
        /// The traceback text stored with it.
        traceback: Option<String>,
    },
    /// The task succeeded, but its result does not decode as the handle's result type: the
    /// handle and the task disagree about what it returns.
    #[error("result of task {task_id} does not decode as {type_name}")]
    Decode {
        /// The task.
        task_id: String,
        /// The Rust type it was read as.
        type_name: &'static str,
        /// The stored result, untouched.
        result: Value,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

impl AsyncResult {
    /// A handle for `id`; without a backend only the id is known.
    pub fn new(id: TaskId, backend: Option<ResultBackend>) -> Self {
        AsyncResult {
            id,
            backend,
            result_type: PhantomData,
        }
    }
}

impl<R> AsyncResult<R> {
    /// The same handle, reading the result as `T`: for a result handle made from a task id
    /// (`producer.async_result(id).typed::<Invoice>()`).
    pub fn typed<T>(self) -> AsyncResult<T> {
        AsyncResult {
            id: self.id,
            backend: self.backend,
            result_type: PhantomData,
        }
    }

    /// The same handle, untyped.
    pub fn untyped(self) -> AsyncResult {
        self.typed()
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
    /// caller decides what a FAILURE means for it (Celery's `get(propagate=False)`). See
    /// [`AsyncResult::wait`] for the typed return value.
    pub async fn get(&self, timeout: Duration) -> Result<ResultMeta, BackendError> {
        match &self.backend {
            Some(backend) => backend.wait_ready(self.id.as_str(), timeout).await,
            None => Err(BackendError::NotConfigured),
        }
    }
}

impl<R: DeserializeOwned> AsyncResult<R> {
    /// Waits up to `timeout` for the task to finish and returns what it returned, decoded as
    /// `R`; a FAILURE or REVOKED is [`ResultError::Failed`] with the task's exception. This is
    /// Celery's default `get()` (which Celery also spells `wait`), typed.
    ///
    /// ```no_run
    /// # use celeriac::producer::Producer;
    /// # async fn example(producer: &Producer) -> Result<(), Box<dyn std::error::Error>> {
    /// use celeriac::producer::TaskRef;
    /// use std::time::Duration;
    ///
    /// const ADD: TaskRef<(i64, i64), i64> = TaskRef::new("demo.add");
    /// let sum: i64 = producer.delay(&ADD, (2, 3)).await?.wait(Duration::from_secs(10)).await?;
    /// assert_eq!(sum, 5);
    /// # Ok(()) }
    /// ```
    pub async fn wait(&self, timeout: Duration) -> Result<R, ResultError> {
        decode_result(self.get(timeout).await?)
    }
}

/// A ready document as `R`, or the failure it records. Results from Python may hold kombu's
/// typed values (datetimes, decimals, UUIDs), which are unwrapped first, as arguments are.
fn decode_result<R: DeserializeOwned>(meta: ResultMeta) -> Result<R, ResultError> {
    match meta.status {
        TaskState::Success => {
            let result = decode_typed(meta.result);
            serde_json::from_value(result.clone()).map_err(|source| ResultError::Decode {
                task_id: meta.task_id,
                type_name: std::any::type_name::<R>(),
                result,
                source,
            })
        }
        state => {
            let exception = meta.exception().unwrap_or_else(|| match state {
                TaskState::Revoked => ExceptionInfo::revoked("revoked"),
                _ => ExceptionInfo::new("Exception", meta.result.to_string()),
            });
            Err(ResultError::Failed {
                task_id: meta.task_id,
                state,
                exception,
                traceback: meta.traceback,
            })
        }
    }
}

impl<R> Clone for AsyncResult<R> {
    fn clone(&self) -> Self {
        AsyncResult {
            id: self.id.clone(),
            backend: self.backend.clone(),
            result_type: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for AsyncResult<R> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AsyncResult")
            .field("id", &self.id)
            .field("backend", &self.backend)
            .field("result_type", &std::any::type_name::<R>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Invoice {
        order_id: i64,
        sent_to: String,
    }

    #[test]
    fn success_decodes_as_the_result_type() {
        let meta = ResultMeta::new(
            "id",
            TaskState::Success,
            json!({"order_id": 42, "sent_to": "a@example.com"}),
        );
        let invoice: Invoice = decode_result(meta).unwrap();
        assert_eq!(
            invoice,
            Invoice {
                order_id: 42,
                sent_to: "a@example.com".into()
            }
        );
        let meta = ResultMeta::new(
            "id",
            TaskState::Success,
            json!({"__type__": "datetime", "__value__": "2024-01-01T00:00:00+00:00"}),
        );
        let when: String = decode_result(meta).unwrap();
        assert_eq!(when, "2024-01-01T00:00:00+00:00");
    }

    #[test]
    fn failure_is_an_error_with_the_exception() {
        let mut meta = ResultMeta::new(
            "id",
            TaskState::Failure,
            json!({"exc_type": "OSError", "exc_message": ["smtp refused"], "exc_module": "builtins"}),
        );
        meta.traceback = Some("caused by: refused".into());
        let error = decode_result::<Invoice>(meta).unwrap_err();
        let ResultError::Failed {
            task_id,
            state,
            exception,
            traceback,
        } = &error
        else {
            panic!("expected Failed, got {error:?}");
        };
        assert_eq!(task_id, "id");
        assert_eq!(*state, TaskState::Failure);
        assert_eq!(exception.exc_type, "OSError");
        assert_eq!(traceback.as_deref(), Some("caused by: refused"));
        assert_eq!(
            error.to_string(),
            "task id ended in FAILURE: OSError: smtp refused"
        );
    }

    #[test]
    fn revoked_and_undecodable_results_are_errors() {
        let meta = ResultMeta::new("id", TaskState::Revoked, Value::Null);
        let Err(ResultError::Failed { exception, .. }) = decode_result::<i64>(meta) else {
            panic!("revoked is a failure");
        };
        assert_eq!(exception.exc_type, "TaskRevokedError");
        let meta = ResultMeta::new("id", TaskState::Success, json!("five"));
        let Err(ResultError::Decode {
            type_name, result, ..
        }) = decode_result::<i64>(meta)
        else {
            panic!("a string is not an i64");
        };
        assert_eq!(type_name, "i64");
        assert_eq!(result, json!("five"));
    }
}
