//! [`Task`] (a name, options and a handler) and the [`Registry`] a worker looks names up in.

use super::context::{SharedState, TaskContext};
use super::error_type::ErrorType;
use super::handler::{ArgumentError, BoxedRun, ContextHandler, Handler, RawArgs};
use super::options::TaskOptions;
use super::outcome::IntoOutcome;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

type Starter = dyn Fn(TaskContext, RawArgs) -> Result<BoxedRun, ArgumentError> + Send + Sync;

/// A registered task: its name, options and body.
#[derive(Clone)]
pub struct Task {
    name: String,
    options: TaskOptions,
    arity: Option<usize>,
    starter: Arc<Starter>,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Task")
            .field("name", &self.name)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Task {
    /// A task whose body is a plain async fn of its arguments.
    pub fn new<H: Handler<P>, P>(name: impl Into<String>, handler: H) -> Task {
        Task {
            name: name.into(),
            options: TaskOptions::default(),
            arity: Some(H::ARITY),
            starter: Arc::new(move |_context, args: RawArgs| handler.start(args.args)),
        }
    }

    /// A task whose body takes a [`TaskContext`] first.
    pub fn with_context<H: ContextHandler<P>, P>(name: impl Into<String>, handler: H) -> Task {
        Task {
            name: name.into(),
            options: TaskOptions::default(),
            arity: Some(H::ARITY),
            starter: Arc::new(move |context, args: RawArgs| handler.start(context, args.args)),
        }
    }

    /// A variadic task (`*args, **kwargs`): the body gets the raw arguments.
    pub fn raw<F, Fut, R>(name: impl Into<String>, handler: F) -> Task
    where
        F: Fn(TaskContext, RawArgs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoOutcome,
    {
        Task {
            name: name.into(),
            options: TaskOptions::default(),
            arity: None,
            starter: Arc::new(move |context, args| {
                let run = handler(context, args);
                Ok(Box::pin(async move { run.await.into_outcome() }) as BoxedRun)
            }),
        }
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The task's options.
    pub fn options(&self) -> &TaskOptions {
        &self.options
    }

    /// Replaces all options at once.
    pub fn options_mut(&mut self) -> &mut TaskOptions {
        &mut self.options
    }

    /// Names the positional parameters so keyword arguments can be bound to them.
    pub fn arg_names<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.options.arg_names = names.into_iter().map(Into::into).collect();
        self
    }

    /// Exception types, by their Python name (`exc_type`), that retry automatically (`"*"` =
    /// all); replaces the list. For failures raised by Python peers or built with
    /// [`super::TaskError::new`]; Rust errors are better matched by
    /// [`Task::autoretry_for_type`].
    pub fn autoretry_for<I: IntoIterator<Item = S>, S: Into<String>>(mut self, types: I) -> Self {
        self.options.autoretry_for = types.into_iter().map(Into::into).collect();
        self
    }

    /// Adds the Rust error type `E` to those that retry automatically, matched by type rather
    /// than by name: `autoretry_for_type::<std::io::Error>()` retries IO errors converted with
    /// `?`, and not a `serde_json::Error` that might share an `exc_type`.
    pub fn autoretry_for_type<E: 'static>(mut self) -> Self {
        self.options.autoretry_for_types.push(ErrorType::of::<E>());
        self
    }

    /// Exception types, by Python name, never retried automatically even when an
    /// `autoretry_for` rule matches (Celery's `dont_autoretry_for`); replaces the list.
    pub fn dont_autoretry_for<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        types: I,
    ) -> Self {
        self.options.dont_autoretry_for = types.into_iter().map(Into::into).collect();
        self
    }

    /// Adds the Rust error type `E` to those never retried automatically, so a broad rule
    /// (`autoretry_for(["*"])`) can exclude one type.
    pub fn dont_autoretry_for_type<E: 'static>(mut self) -> Self {
        self.options
            .dont_autoretry_for_types
            .push(ErrorType::of::<E>());
        self
    }

    /// The queue the task's typed handle sends to (Celery's `Task.queue`). Informational for
    /// the worker: producers take it from [`super::TaskRef::with_queue`], which
    /// `#[celeriac::task(queue = "…")]` sets too, and `send_task` by name does not see it.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.options.queue = Some(queue.into());
        self
    }

    /// Retries allowed (None = forever).
    pub fn max_retries(mut self, max_retries: Option<u32>) -> Self {
        self.options.max_retries = max_retries;
        self
    }

    /// Exponential backoff factor for automatic retries (1.0 = Celery's `retry_backoff=True`).
    pub fn retry_backoff(mut self, factor: f64) -> Self {
        self.options.retry_backoff = factor;
        self
    }

    /// Cap of the backoff, in seconds.
    pub fn retry_backoff_max(mut self, seconds: u64) -> Self {
        self.options.retry_backoff_max = seconds;
        self
    }

    /// Full jitter on the backoff.
    pub fn retry_jitter(mut self, jitter: bool) -> Self {
        self.options.retry_jitter = jitter;
        self
    }

    /// Countdown of explicit retries that give none.
    pub fn default_retry_delay(mut self, delay: Duration) -> Self {
        self.options.default_retry_delay = delay;
        self
    }

    /// Hard and soft time limits.
    pub fn time_limits(mut self, hard: Option<Duration>, soft: Option<Duration>) -> Self {
        self.options.time_limit = hard;
        self.options.soft_time_limit = soft;
        self
    }

    /// Hard time limit: the run is dropped after this long. Named, unlike
    /// [`Task::time_limits`], so hard and soft cannot be swapped by position.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.options.time_limit = Some(limit);
        self
    }

    /// Soft time limit: after this long [`TaskContext::soft_time_limit`] resolves so the task
    /// can clean up before the hard limit.
    pub fn soft_time_limit(mut self, limit: Duration) -> Self {
        self.options.soft_time_limit = Some(limit);
        self
    }

    /// Rate limit such as `"10/s"`.
    pub fn rate_limit(mut self, rate: impl Into<String>) -> Self {
        self.options.rate_limit = Some(rate.into());
        self
    }

    /// Ack after running instead of before.
    pub fn acks_late(mut self, acks_late: bool) -> Self {
        self.options.acks_late = Some(acks_late);
        self
    }

    /// Do not store results.
    pub fn ignore_result(mut self, ignore: bool) -> Self {
        self.options.ignore_result = Some(ignore);
        self
    }

    /// Binds the message's arguments and starts the body. Keyword arguments are placed by
    /// `arg_names`; unknown or duplicate ones, and a wrong count, are argument errors with
    /// Python's wording.
    pub fn start(
        &self,
        context: TaskContext,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<BoxedRun, ArgumentError> {
        let Some(arity) = self.arity else {
            return (self.starter)(context, RawArgs { args, kwargs });
        };
        let positional = self.bind_keywords(args, kwargs)?;
        if positional.len() != arity {
            return Err(ArgumentError {
                message: format!(
                    "{}() takes {arity} positional argument{} but {} were given",
                    self.name,
                    if arity == 1 { "" } else { "s" },
                    positional.len()
                ),
            });
        }
        (self.starter)(
            context,
            RawArgs {
                args: positional,
                kwargs: Map::new(),
            },
        )
    }

    fn bind_keywords(
        &self,
        mut args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<Vec<Value>, ArgumentError> {
        if kwargs.is_empty() {
            return Ok(args);
        }
        let names = &self.options.arg_names;
        let mut slots: Vec<Option<Value>> = args.drain(..).map(Some).collect();
        for (key, value) in kwargs {
            let Some(index) = names.iter().position(|name| *name == key) else {
                return Err(ArgumentError {
                    message: format!("{}() got an unexpected keyword argument '{key}'", self.name),
                });
            };
            if slots.len() <= index {
                slots.resize(index + 1, None);
            }
            if slots[index].is_some() {
                return Err(ArgumentError {
                    message: format!("{}() got multiple values for argument '{key}'", self.name),
                });
            }
            slots[index] = Some(value);
        }
        slots
            .into_iter()
            .enumerate()
            .map(|(index, slot)| {
                slot.ok_or_else(|| ArgumentError {
                    message: format!(
                        "{}() missing required argument '{}'",
                        self.name,
                        names.get(index).map(String::as_str).unwrap_or("?")
                    ),
                })
            })
            .collect()
    }
}

/// The tasks a worker can run, by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    tasks: BTreeMap<String, Task>,
    state: SharedState,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds (or replaces) a task.
    pub fn register(&mut self, task: Task) -> &mut Self {
        self.tasks.insert(task.name.clone(), task);
        self
    }

    /// The task registered under `name`.
    pub fn get(&self, name: &str) -> Option<&Task> {
        self.tasks.get(name)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tasks.keys().map(String::as_str)
    }

    /// Every registered task.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    /// Shares `value` with every task this registry's workers run, read with
    /// [`TaskContext::state`](super::TaskContext::state); one value per type, a later one
    /// replacing an earlier. Share handles that are cheap to clone or hold an `Arc` (a pool,
    /// a client): each run borrows the same value.
    pub fn provide<T: Send + Sync + 'static>(&mut self, value: T) -> &mut Self {
        self.state.insert(value);
        self
    }

    /// What [`Registry::provide`] put in, for the executor to hand to each run.
    pub(crate) fn shared_state(&self) -> &SharedState {
        &self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Outcome, TaskError};
    use serde_json::json;

    fn context() -> TaskContext {
        TaskContext::for_test("demo.add")
    }

    async fn add(x: i64, y: i64) -> Result<i64, TaskError> {
        Ok(x + y)
    }

    #[tokio::test]
    async fn binds_positional_and_keyword_arguments() {
        let task = Task::new("demo.add", add).arg_names(["x", "y"]);
        let run = task
            .start(
                context(),
                vec![json!(2)],
                json!({"y": 3}).as_object().unwrap().clone(),
            )
            .unwrap();
        assert_eq!(run.await, Outcome::Success(json!(5)));
    }

    #[tokio::test]
    async fn wrong_arguments_are_errors_with_python_wording() {
        let task = Task::new("demo.add", add).arg_names(["x", "y"]);
        let error = task
            .start(context(), vec![json!(1), json!(2), json!(3)], Map::new())
            .err()
            .unwrap();
        assert_eq!(
            error.message,
            "demo.add() takes 2 positional arguments but 3 were given"
        );
        let error = task
            .start(context(), vec![json!("a"), json!(2)], Map::new())
            .err()
            .unwrap();
        assert!(error.message.contains("wrong type"), "{}", error.message);
        let error = task
            .start(
                context(),
                vec![],
                json!({"z": 1}).as_object().unwrap().clone(),
            )
            .err()
            .unwrap();
        assert_eq!(
            error.message,
            "demo.add() got an unexpected keyword argument 'z'"
        );
    }

    #[test]
    fn builders_set_the_options_the_worker_reads() {
        let task = Task::new("demo.add", add)
            .queue("math")
            .autoretry_for(["OSError"])
            .autoretry_for_type::<std::io::Error>()
            .dont_autoretry_for(["ValueError"])
            .dont_autoretry_for_type::<serde_json::Error>()
            .time_limit(Duration::from_secs(300))
            .soft_time_limit(Duration::from_secs(240))
            .rate_limit("10/m")
            .acks_late(true)
            .ignore_result(true);
        let options = task.options();
        assert_eq!(options.queue.as_deref(), Some("math"));
        assert_eq!(options.autoretry_for, ["OSError"]);
        assert_eq!(
            options.autoretry_for_types,
            [ErrorType::of::<std::io::Error>()]
        );
        assert_eq!(options.dont_autoretry_for, ["ValueError"]);
        assert_eq!(
            options.dont_autoretry_for_types,
            [ErrorType::of::<serde_json::Error>()]
        );
        assert_eq!(options.time_limit, Some(Duration::from_secs(300)));
        assert_eq!(options.soft_time_limit, Some(Duration::from_secs(240)));
        assert_eq!(options.rate_limit.as_deref(), Some("10/m"));
        assert_eq!(options.acks_late, Some(true));
        assert_eq!(options.ignore_result, Some(true));
    }

    #[tokio::test]
    async fn context_tasks_and_raw_tasks() {
        let task = Task::with_context(
            "demo.id",
            |context: TaskContext, suffix: String| async move {
                Ok::<_, TaskError>(format!("{}{suffix}", context.id()))
            },
        );
        let run = task.start(context(), vec![json!("!")], Map::new()).unwrap();
        assert_eq!(run.await, Outcome::Success(json!("id!")));
        let echo = Task::raw("demo.echo", |_context, raw: RawArgs| async move {
            Ok::<_, TaskError>(json!({"args": raw.args, "kwargs": raw.kwargs}))
        });
        let run = echo
            .start(
                context(),
                vec![json!(1)],
                json!({"k": 2}).as_object().unwrap().clone(),
            )
            .unwrap();
        assert_eq!(
            run.await,
            Outcome::Success(json!({"args": [1], "kwargs": {"k": 2}}))
        );
    }
}
