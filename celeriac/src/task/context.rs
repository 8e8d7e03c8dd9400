//! [`TaskContext`]: what a running task knows about its request (Celery's `self.request`) and
//! the soft time limit it can watch.

use super::outcome::{RetryRequest, TaskError};
use chrono::{DateTime, Utc};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// Values a binary shares with its tasks (a database pool, an HTTP client), one per type:
/// [`super::Registry::provide`] puts them in, [`TaskContext::state`] hands them to a run.
///
/// Injected rather than global, so two registries in one process (tests, two apps) each have
/// their own, and a task's dependencies show in the binary that registers it.
#[derive(Clone, Default)]
pub struct SharedState(Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl SharedState {
    /// Adds `value`, replacing any earlier value of its type.
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        Arc::make_mut(&mut self.0).insert(TypeId::of::<T>(), Arc::new(value));
    }

    fn get<T: 'static>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>())?.downcast_ref::<T>()
    }
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "SharedState({} values)", self.0.len())
    }
}

/// The request a task is running for.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestInfo {
    /// The task id.
    pub id: String,
    /// The task name.
    pub name: String,
    /// Retries before this run.
    pub retries: u32,
    /// The node name of the worker running it.
    pub hostname: String,
    /// The queue it was delivered from.
    pub queue: String,
    /// The eta it was scheduled for, if any.
    pub eta: Option<DateTime<Utc>>,
    /// The parent task id.
    pub parent_id: Option<String>,
    /// The root task id.
    pub root_id: Option<String>,
    /// True when the message was restored after a worker died or shut down holding it.
    pub redelivered: bool,
}

/// Handed to tasks registered with [`super::Task::with_context`].
///
/// The soft time limit is a `watch` channel: the executor holds the sender and flips it to
/// true when the soft limit passes; it is dropped when the run ends.
#[derive(Debug, Clone)]
pub struct TaskContext {
    request: Arc<RequestInfo>,
    soft_limit: watch::Receiver<bool>,
    state: SharedState,
}

impl TaskContext {
    /// A context for `request`, with the receiving end of the soft-limit signal.
    pub fn new(request: RequestInfo, soft_limit: watch::Receiver<bool>) -> Self {
        TaskContext {
            request: Arc::new(request),
            soft_limit,
            state: SharedState::default(),
        }
    }

    /// The same context, with the registry's shared state.
    pub(crate) fn with_state(mut self, state: SharedState) -> Self {
        self.state = state;
        self
    }

    /// The value of type `T` the binary provided ([`super::Registry::provide`],
    /// `App::provide`): a database pool, an HTTP client. Its absence is a programming error
    /// the task reports as a failure (`LookupError`) naming the type, never a panic.
    ///
    /// ```
    /// use celeriac::prelude::*;
    ///
    /// #[derive(Clone)]
    /// struct Mailer { from: String }
    ///
    /// #[task(name = "email.welcome")]
    /// async fn welcome(context: TaskContext, to: String) -> Result<String, TaskError> {
    ///     let mailer = context.state::<Mailer>()?;
    ///     Ok(format!("{} -> {to}", mailer.from))
    /// }
    ///
    /// let mut registry = Registry::new();
    /// registry.register(welcome::task()).provide(Mailer { from: "shop@example.com".into() });
    /// ```
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&T, TaskError> {
        self.state.get::<T>().ok_or_else(|| {
            TaskError::new(
                "LookupError",
                format!(
                    "no shared state of type {} was provided to this worker \
                     (Registry::provide, App::provide)",
                    std::any::type_name::<T>()
                ),
            )
        })
    }

    /// The request (id, name, retries, …).
    pub fn request(&self) -> &RequestInfo {
        &self.request
    }

    /// The task id.
    pub fn id(&self) -> &str {
        &self.request.id
    }

    /// Retries before this run.
    pub fn retries(&self) -> u32 {
        self.request.retries
    }

    /// Starts an explicit retry (`self.retry()` in Celery); return it as the error.
    pub fn retry(&self) -> RetryRequest {
        RetryRequest::default()
    }

    /// True once the soft time limit has passed: clean up and return.
    pub fn soft_time_limit_exceeded(&self) -> bool {
        *self.soft_limit.borrow()
    }

    /// Resolves when the soft time limit passes (never, if the task has none). Use it in a
    /// `tokio::select!` next to the work to stop cleanly, as Python tasks catch
    /// `SoftTimeLimitExceeded`.
    pub async fn soft_time_limit(&self) {
        let mut receiver = self.soft_limit.clone();
        if receiver.wait_for(|exceeded| *exceeded).await.is_err() {
            // The sender is gone: the run has ended, so the limit can no longer pass.
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
impl TaskContext {
    /// A first attempt of `name` on `celery` whose soft limit never fires, for unit tests.
    pub(crate) fn for_test(name: &str) -> TaskContext {
        let (_sender, receiver) = watch::channel(false);
        TaskContext::new(
            RequestInfo {
                id: "id".into(),
                name: name.into(),
                retries: 0,
                hostname: "w@h".into(),
                queue: "celery".into(),
                eta: None,
                parent_id: None,
                root_id: None,
                redelivered: false,
            },
            receiver,
        )
    }
}
