//! `#[celeriac::task]` from inside the crate: the generated registration, options and handle,
//! and autoretry by Rust type through a real task body.

use crate::task::{Outcome, TaskContext, TaskError, TaskRef};
use serde_json::{json, Map, Value};
use std::time::Duration;

fn context() -> TaskContext {
    TaskContext::for_test("orders.import")
}

/// Reads an order: an IO failure (the file system) or a JSON failure (the file's content).
#[crate::task(
    name = "orders.import",
    queue = "imports",
    max_retries = None,
    autoretry_for = [std::io::Error, "ConnectionError"],
    dont_autoretry_for = ["ValueError"],
    retry_backoff = 2,
    retry_backoff_max = 60,
    retry_jitter = false,
    default_retry_delay = 0.5,
    soft_time_limit = 1.5,
    time_limit = 2,
    rate_limit = "10/m",
    acks_late = true,
    ignore_result = false
)]
pub(crate) async fn import_order(
    context: TaskContext,
    source: String,
    order_id: i64,
) -> Result<Value, TaskError> {
    match source.as_str() {
        "disk" => Err(std::io::Error::other("disk unavailable"))?,
        "json" => Ok(serde_json::from_str::<Value>("{")?),
        _ => Ok(json!({"order_id": order_id, "task": context.id()})),
    }
}

#[crate::task(name = "demo.noop")]
async fn noop() -> Outcome {
    Outcome::Ignore
}

#[test]
fn the_generated_task_carries_every_option() {
    let task = import_order::task();
    let options = task.options();
    assert_eq!(task.name(), "orders.import");
    assert_eq!(import_order::NAME, "orders.import");
    assert_eq!(options.arg_names, ["source", "order_id"]);
    assert_eq!(options.queue.as_deref(), Some("imports"));
    assert_eq!(options.max_retries, None);
    assert_eq!(options.autoretry_for, ["ConnectionError"]);
    assert_eq!(options.dont_autoretry_for, ["ValueError"]);
    assert_eq!(options.retry_backoff, 2.0);
    assert_eq!(options.retry_backoff_max, 60);
    assert!(!options.retry_jitter);
    assert_eq!(options.default_retry_delay, Duration::from_millis(500));
    assert_eq!(options.soft_time_limit, Some(Duration::from_millis(1500)));
    assert_eq!(options.time_limit, Some(Duration::from_secs(2)));
    assert_eq!(options.rate_limit.as_deref(), Some("10/m"));
    assert_eq!(options.acks_late, Some(true));
    assert_eq!(options.ignore_result, Some(false));
    assert_eq!(noop::task().options().arg_names, Vec::<String>::new());
}

#[test]
fn the_handle_is_typed_by_the_function() {
    const HANDLE: TaskRef<(String, i64), Value> = import_order::handle();
    assert_eq!(HANDLE.name(), "orders.import");
    assert_eq!(HANDLE.queue(), Some("imports"));
    let untyped: TaskRef<()> = noop::handle();
    assert_eq!(untyped.queue(), None);
}

#[tokio::test]
async fn autoretry_by_type_retries_io_errors_and_not_json_errors() {
    let task = import_order::task();
    let run = |source: &str| {
        task.start(context(), vec![json!(source), json!(7)], Map::new())
            .expect("arguments bind")
    };
    let Outcome::Fail {
        exception,
        error_type,
        ..
    } = run("disk").await
    else {
        panic!("the disk read fails");
    };
    assert_eq!(exception.exc_type, "OSError");
    assert!(error_type.is_some_and(|error_type| error_type.is::<std::io::Error>()));
    assert!(task
        .options()
        .autoretries_failure(&exception.exc_type, error_type));

    let Outcome::Fail {
        exception,
        error_type,
        ..
    } = run("json").await
    else {
        panic!("the JSON parse fails");
    };
    assert_eq!(exception.exc_type, "ValueError");
    assert!(!task
        .options()
        .autoretries_failure(&exception.exc_type, error_type));

    assert_eq!(
        run("memory").await,
        Outcome::Success(json!({"order_id": 7, "task": "id"}))
    );
}

#[tokio::test]
async fn the_function_stays_callable_and_keyword_arguments_bind() {
    let value = import_order(context(), "memory".into(), 3)
        .await
        .expect("no failure");
    assert_eq!(value, json!({"order_id": 3, "task": "id"}));
    let kwargs = json!({"order_id": 9, "source": "memory"});
    let run = import_order::task()
        .start(
            context(),
            Vec::new(),
            kwargs.as_object().cloned().unwrap_or_default(),
        )
        .expect("keyword arguments bind by the parameters' names");
    assert_eq!(
        run.await,
        Outcome::Success(json!({"order_id": 9, "task": "id"}))
    );
}
