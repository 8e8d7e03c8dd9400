//! Celery's built-in tasks (`celery/app/builtins.py`) that canvas sends to whichever worker
//! consumes the queue, registered in every worker unless the application registered a task of
//! the same name:
//!
//! - `celery.accumulate(*args, index=None)`: `args[index]`, or all of them (the chord body of
//!   `Task.replace` with a group);
//! - `celery.backend_cleanup()`: deletes the results older than `result_expires` from a
//!   database backend (`django-db`), as Celery's does; nothing on Redis, whose results expire
//!   by themselves;
//! - `celery.map(task, it)` / `celery.starmap(task, it)`: the task run inline once per item
//!   (with the item, or the item's elements, as its arguments), when this worker has it;
//! - `celery.chunks(task, it, n)`: a group of `celery.starmap` over parts of `it`;
//! - `celery.chain`: Celery's own refuses to run (`NotImplementedError`); so does this one.
//!
//! `celery.chord_unlock` is not here: Celery sends it only for result backends without a
//! native chord join (SQLAlchemy's), which Celeriac does not have.

use crate::canvas::Signature;
use crate::producer::Producer;
use crate::task::{Outcome, RawArgs, Registry, Task, TaskContext, TaskError};
use serde_json::{json, Value};

/// Deletes expired results where the backend does not expire them by itself.
async fn backend_cleanup(producer: &Producer) -> Result<Value, TaskError> {
    let Some(backend) = producer.backend() else {
        return Ok(Value::Null);
    };
    let deleted = backend
        .cleanup()
        .await
        .map_err(|error| TaskError::new("BackendError", crate::error::chain(&error)))?;
    if deleted > 0 {
        tracing::info!(
            deleted,
            backend = backend.kind(),
            "expired task results deleted"
        );
    }
    Ok(Value::Null)
}

/// Adds the built-ins `registry` lacks; `producer` sends what `celery.chunks` asks.
pub(crate) fn register(registry: &mut Registry, producer: &Producer) {
    let inner = registry.clone();
    let producer = producer.clone();
    let builtins = [
        Task::raw("celery.accumulate", accumulate),
        Task::raw("celery.backend_cleanup", {
            let producer = producer.clone();
            move |_context, _args| {
                let producer = producer.clone();
                async move { backend_cleanup(&producer).await }
            }
        }),
        Task::raw("celery.chain", |_context, _args| async {
            Err::<Value, _>(TaskError::new(
                "NotImplementedError",
                "chain is not a real task",
            ))
        }),
        map_task("celery.map", inner.clone(), false),
        map_task("celery.starmap", inner, true),
        Task::raw("celery.chunks", move |_context, args: RawArgs| {
            let producer = producer.clone();
            async move { chunks(&producer, args).await }
        }),
    ];
    for task in builtins {
        if registry.get(task.name()).is_none() {
            registry.register(task);
        }
    }
}

async fn accumulate(_context: TaskContext, args: RawArgs) -> Result<Value, TaskError> {
    match args.kwargs.get("index") {
        None | Some(Value::Null) => Ok(Value::Array(args.args)),
        Some(index) => index
            .as_u64()
            .and_then(|index| args.args.get(index as usize).cloned())
            .ok_or_else(|| TaskError::new("IndexError", "tuple index out of range")),
    }
}

/// The `task` signature and `it` list of a map call, positional or by keyword.
fn map_arguments(args: &RawArgs) -> Result<(Signature, Vec<Value>), TaskError> {
    let task = args
        .kwargs
        .get("task")
        .or_else(|| args.args.first())
        .ok_or_else(|| TaskError::new("TypeError", "missing the argument 'task'"))?;
    let items = args
        .kwargs
        .get("it")
        .or_else(|| args.args.get(1))
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| TaskError::new("TypeError", "the argument 'it' is not a list"))?;
    let task = Signature::from_value(task)
        .map_err(|error| TaskError::new("TypeError", error.to_string()))?;
    Ok((task, items))
}

fn map_task(name: &'static str, registry: Registry, star: bool) -> Task {
    Task::raw(name, move |context: TaskContext, args: RawArgs| {
        let registry = registry.clone();
        async move {
            let (signature, items) = match map_arguments(&args) {
                Ok(parsed) => parsed,
                Err(error) => return fail(error),
            };
            let Some(task) = registry.get(&signature.task).cloned() else {
                return fail(TaskError::Fail {
                    exception: crate::ExceptionInfo::not_registered(&signature.task),
                    traceback: None,
                    error_type: None,
                });
            };
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                let call_args = match (star, item) {
                    (true, Value::Array(elements)) => elements,
                    (_, item) => vec![item],
                };
                let run = match task.start(context.clone(), call_args, signature.kwargs.clone()) {
                    Ok(run) => run,
                    Err(error) => return fail(TaskError::new("TypeError", error.message)),
                };
                match run.await {
                    Outcome::Success(value) => results.push(value),
                    other => return other,
                }
            }
            Outcome::Success(Value::Array(results))
        }
    })
}

async fn chunks(producer: &Producer, args: RawArgs) -> Result<Value, TaskError> {
    let (task, items) = map_arguments(&args)?;
    let size = args
        .kwargs
        .get("n")
        .or_else(|| args.args.get(2))
        .and_then(Value::as_u64)
        .filter(|size| *size > 0)
        .ok_or_else(|| TaskError::new("TypeError", "the argument 'n' is not a positive integer"))?;
    let mut kwargs = serde_json::Map::new();
    kwargs.insert("task".into(), task.to_value());
    kwargs.insert("it".into(), Value::Array(items));
    kwargs.insert("n".into(), json!(size));
    let mut signature = Signature::new("celery.chunks").kwargs(kwargs);
    signature.subtask_type = Some("chunks".into());
    let sent = producer
        .apply_signature(signature)
        .await
        .map_err(|error| TaskError::new("RuntimeError", crate::error::chain(&error)))?;
    Ok(sent.child())
}

/// The outcome of a body that raised `error`, for the map bodies, which return an [`Outcome`].
fn fail(error: TaskError) -> Outcome {
    crate::task::IntoOutcome::into_outcome(Err::<Value, _>(error))
}
