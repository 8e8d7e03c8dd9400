//! `#[celeriac::task]` end to end: a task defined by the macro, sent through its typed handle
//! to the queue named in the attribute, retried by Rust error type, and read back typed.

use crate::support::{config, producer, RunningWorker};
use celeriac::prelude::*;
use celeriac::testkit::{eventually, TestEnv};
use celeriac::TaskState;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The queue both tasks name in their attribute; the env's key prefix keeps it apart from
/// other tests.
const QUEUE: &str = "typed-email";

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Invoice {
    order_id: i64,
    attempts: u32,
}

/// Fails with an IO error on its first two runs, as a flaky SMTP relay would.
#[task(
    name = "typed.send_invoice_email",
    queue = "typed-email",
    max_retries = 3,
    autoretry_for = [std::io::Error],
    default_retry_delay = 0
)]
async fn send_invoice_email(context: TaskContext, order_id: i64) -> Result<Invoice, TaskError> {
    if context.retries() < 2 {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "421 service not available",
        ))?;
    }
    Ok(Invoice {
        order_id,
        attempts: context.retries() + 1,
    })
}

/// Fails with a JSON error: a bug in the data, which retrying would not fix.
#[task(
    name = "typed.parse_order",
    queue = "typed-email",
    autoretry_for = [std::io::Error],
    default_retry_delay = 0
)]
async fn parse_order(text: String) -> Result<i64, TaskError> {
    Ok(serde_json::from_str(&text)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_macro_task_retries_io_errors_by_type_and_returns_its_result_typed() {
    assert_eq!(send_invoice_email::handle().queue(), Some(QUEUE));
    let env = TestEnv::new("typed-task");
    let config = config(&env);
    let mut registry = Registry::new();
    registry
        .register(send_invoice_email::task())
        .register(parse_order::task());
    let worker = RunningWorker::start(config.clone(), Some(registry), &[QUEUE], 2).await;
    let producer = producer(&config).await;

    let invoice = send_invoice_email::delay(&producer, 42)
        .await
        .unwrap()
        .wait(WAIT)
        .await
        .unwrap();
    assert_eq!(
        invoice,
        Invoice {
            order_id: 42,
            attempts: 3
        }
    );

    let parsed = parse_order::delay(&producer, "{".to_owned()).await.unwrap();
    let error = parsed.wait(WAIT).await.unwrap_err();
    let ResultError::Failed {
        state, exception, ..
    } = &error
    else {
        panic!("a JSON error fails the task, got {error:?}");
    };
    assert_eq!(*state, TaskState::Failure);
    assert_eq!(exception.exc_type, "ValueError");
    // The untyped document stays readable through the same handle.
    assert_eq!(parsed.get(WAIT).await.unwrap().status, TaskState::Failure);
    // Two retries, both of the invoice: the JSON error was not retried.
    let counters = worker.counters.clone();
    eventually(WAIT, "three invoice runs and one parse counted", || {
        let counters = counters.clone();
        async move { (counters.processed.load(Ordering::Relaxed) == 4).then_some(()) }
    })
    .await;
    assert_eq!(worker.counters.retried.load(Ordering::Relaxed), 2);
    assert_eq!(worker.counters.failed.load(Ordering::Relaxed), 1);
    worker.stop().await;
}

/// What a binary shares with its tasks: here a stand-in for a mail client.
struct Mailer {
    sender: String,
}

/// Reads the shared [`Mailer`] the worker's registry was given.
#[task(name = "typed.welcome", queue = "typed-email")]
async fn welcome(context: TaskContext, to: String) -> Result<String, TaskError> {
    let mailer = context.state::<Mailer>()?;
    Ok(format!("{} -> {to}", mailer.sender))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_reads_the_state_its_registry_provides_and_fails_loudly_without_it() {
    let env = TestEnv::new("typed-state");
    let config = config(&env);
    let mut registry = Registry::new();
    registry.register(welcome::task()).provide(Mailer {
        sender: "shop@example.com".to_owned(),
    });
    let worker = RunningWorker::start(config.clone(), Some(registry), &[QUEUE], 2).await;
    let producer = producer(&config).await;
    let sent = welcome::delay(&producer, "ada@example.com".to_owned())
        .await
        .unwrap()
        .wait(WAIT)
        .await
        .unwrap();
    assert_eq!(sent, "shop@example.com -> ada@example.com");
    worker.stop().await;

    // The same task on a worker whose binary forgot to provide it: a failure naming the type.
    let mut forgetful = Registry::new();
    forgetful.register(welcome::task());
    let worker = RunningWorker::start(config.clone(), Some(forgetful), &[QUEUE], 2).await;
    let error = welcome::delay(&producer, "bob@example.com".to_owned())
        .await
        .unwrap()
        .wait(WAIT)
        .await
        .unwrap_err();
    let ResultError::Failed { exception, .. } = &error else {
        panic!("a missing state fails the task, got {error:?}");
    };
    assert_eq!(exception.exc_type, "LookupError");
    assert!(
        format!("{:?}", exception.exc_message).contains("Mailer"),
        "{exception:?}"
    );
    worker.stop().await;
}
