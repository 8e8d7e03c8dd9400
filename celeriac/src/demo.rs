//! `demo.*`: small tasks with exact behaviour, used by tests, examples and the `celeriac`
//! binary. Python's `tests/python/peer.py` defines the same names, so either side can run them.

use crate::task::{RawArgs, Registry, Task, TaskContext, TaskError};
use crate::ExceptionInfo;
use serde_json::{json, Number, Value};
use std::time::Duration;

/// A registry holding [`tasks`], for a worker that runs the demo tasks.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    for task in tasks() {
        registry.register(task);
    }
    registry
}

/// `demo.noop`, `demo.add`, `demo.mul`, `demo.tsum`, `demo.sleep`, `demo.fail`,
/// `demo.fail_until`, `demo.flaky` and `demo.echo`.
pub fn tasks() -> Vec<Task> {
    vec![
        Task::new("demo.noop", noop),
        Task::new("demo.add", add).arg_names(["x", "y"]),
        Task::new("demo.mul", mul).arg_names(["x", "y"]),
        Task::new("demo.tsum", tsum).arg_names(["numbers"]),
        Task::with_context("demo.sleep", sleep).arg_names(["seconds"]),
        Task::new("demo.fail", fail).arg_names(["message"]),
        Task::new("demo.fail_until", fail_until).arg_names(["until"]),
        Task::with_context("demo.flaky", flaky)
            .arg_names(["times"])
            .max_retries(None),
        Task::raw("demo.echo", echo),
    ]
}

/// Does nothing and returns `null`: the drain benchmark's task (`examples/shop/benches/drain`).
async fn noop() -> Result<Value, TaskError> {
    Ok(Value::Null)
}

async fn add(x: Number, y: Number) -> Result<Value, TaskError> {
    match (x.as_i64(), y.as_i64()) {
        (Some(x), Some(y)) => match x.checked_add(y) {
            Some(sum) => Ok(json!(sum)),
            None => Err(TaskError::new("OverflowError", "integer overflow")),
        },
        _ => {
            let sum = x.as_f64().unwrap_or(f64::NAN) + y.as_f64().unwrap_or(f64::NAN);
            Ok(json!(sum))
        }
    }
}

async fn mul(x: i64, y: i64) -> Result<Value, TaskError> {
    x.checked_mul(y)
        .map(|product| json!(product))
        .ok_or_else(|| TaskError::new("OverflowError", "integer overflow"))
}

/// The sum of a list: a chord body's usual shape (it gets the header's results).
async fn tsum(numbers: Vec<i64>) -> Result<Value, TaskError> {
    numbers
        .iter()
        .try_fold(0_i64, |sum, number| sum.checked_add(*number))
        .map(|sum| json!(sum))
        .ok_or_else(|| TaskError::new("OverflowError", "integer overflow"))
}

/// Sleeps, but stops at the soft time limit like a well-behaved Python task that catches
/// `SoftTimeLimitExceeded`.
async fn sleep(context: TaskContext, seconds: f64) -> Result<f64, TaskError> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(TaskError::new(
            "ValueError",
            format!("cannot sleep {seconds} seconds"),
        ));
    }
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs_f64(seconds.min(86_400.0))) => Ok(seconds),
        _ = context.soft_time_limit() => Err(TaskError::Fail {
            exception: ExceptionInfo::new("SoftTimeLimitExceeded", "soft time limit exceeded")
                .in_module("billiard.exceptions"),
            traceback: None,
            error_type: None,
        }),
    }
}

async fn fail(message: String) -> Result<Value, TaskError> {
    Err(TaskError::new("ValueError", message))
}

/// Fails with `ConnectionError` until the epoch second `until`, then returns `"ok"`: a
/// dependency that was down and came back, so a failed task retried by hand succeeds (the
/// dashboard's browser test retries one).
async fn fail_until(until: f64) -> Result<Value, TaskError> {
    if crate::clock::epoch_now() < until {
        return Err(TaskError::new(
            "ConnectionError",
            format!("the dependency is down until {until}"),
        ));
    }
    Ok(json!("ok"))
}

/// Fails `times` times per task id, then succeeds with the number of attempts. Counting with
/// the retries header makes it independent of which worker runs each attempt.
async fn flaky(context: TaskContext, times: u32) -> Result<u32, TaskError> {
    let attempt = context.retries() + 1;
    if context.retries() < times {
        return Err(context
            .retry()
            .countdown(Duration::from_millis(200))
            .reason(ExceptionInfo::new(
                "RuntimeError",
                format!("flaky attempt {attempt} of {}", times + 1),
            ))
            .into());
    }
    Ok(attempt)
}

async fn echo(_context: TaskContext, raw: RawArgs) -> Result<Value, TaskError> {
    Ok(json!({"args": raw.args, "kwargs": raw.kwargs}))
}

/// The chaos suite's tasks, registered by the `celeriac` binary only when
/// `CELERIAC_CHAOS_TRUTH` names a file (the ground truth, kept outside the broker):
///
/// - `chaos.record(token, milliseconds)` sleeps, then appends one JSON line
///   `{"token", "task_id", "worker", "redelivered", "retries", "started_at", "finished_at"}`
///   (times in epoch seconds) to the file;
/// - `chaos.crash()` aborts the whole process, every time (a poison message);
/// - `chaos.tally(results)` (a chord body) appends `{"token": "tally", "results", "task_id"}`
///   and returns how many results it got, so a test counts how often a chord fired.
pub fn chaos_tasks() -> Vec<Task> {
    vec![
        Task::with_context("chaos.record", record).arg_names(["token", "milliseconds"]),
        Task::new("chaos.crash", crash),
        Task::with_context("chaos.tally", tally).arg_names(["results"]),
    ]
}

async fn tally(context: TaskContext, results: Vec<Value>) -> Result<usize, TaskError> {
    let line = json!({"token": "tally", "results": results, "task_id": context.request().id});
    append_truth(line)?;
    Ok(results.len())
}

/// Appends one line to the ground truth file (`CELERIAC_CHAOS_TRUTH`).
fn append_truth(line: Value) -> Result<(), TaskError> {
    use std::io::Write;
    let Ok(path) = std::env::var("CELERIAC_CHAOS_TRUTH") else {
        return Err(TaskError::new(
            "RuntimeError",
            "CELERIAC_CHAOS_TRUTH is not set",
        ));
    };
    let mut line = line.to_string();
    line.push('\n');
    // One short `write` on an O_APPEND file is atomic, so concurrent workers never interleave.
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    file.write_all(line.as_bytes())?;
    Ok(())
}

/// Returns its token, so a chord over `chaos.record` members gets the tokens in header order.
async fn record(
    context: TaskContext,
    token: String,
    milliseconds: u64,
) -> Result<String, TaskError> {
    let started_at = crate::clock::epoch_now();
    tokio::time::sleep(Duration::from_millis(milliseconds)).await;
    let request = context.request();
    append_truth(json!({
        "token": token,
        "task_id": request.id,
        "worker": request.hostname,
        "redelivered": request.redelivered,
        "retries": request.retries,
        "started_at": started_at,
        "finished_at": crate::clock::epoch_now(),
    }))?;
    Ok(token)
}

async fn crash() -> Result<(), TaskError> {
    tracing::error!("chaos.crash: aborting the worker process on purpose");
    std::process::abort()
}
