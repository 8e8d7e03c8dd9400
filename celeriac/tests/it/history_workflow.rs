//! Retrying a failed chain step from the task history continues the chain (issue 14): the
//! Celeriac worker keeps the failed message's workflow, and `retry_task` sends it along, as
//! Celery's `Task.retry` sends the message again with its workflow. A step run alone would
//! leave the rest of the chain FAILED.

use crate::history::fresh_history;
use crate::support::{config, producer, RunningWorker};
use celeriac::backend::RedisBackend;
use celeriac::canvas::{chain, Signature};
use celeriac::history::{retry_task, TaskEvent, TaskEventKind};
use celeriac::testkit::{eventually, DatabaseKind, TestEnv};
use celeriac::TaskState;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_failed_chain_step_continues_the_chain() {
    let (_database, history) = fresh_history(DatabaseKind::Sqlite, "retry_chain").await;
    let env = TestEnv::new("hist-chain").with_result_extended(true);
    let queue = env.queue("q");
    let config = config(&env);
    let producer = producer(&config).await;
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    // The first step fails until its dependency is back (3 s from now).
    let until = celeriac::clock::epoch_now() + 3.0;
    let first = Signature::new("demo.fail_until")
        .args(vec![json!(until)])
        .option("queue", json!(queue))
        .option("task_id", json!("step-one"));
    let second = Signature::new("demo.echo").option("queue", json!(queue));
    let sent = producer
        .apply_signature(chain([first, second]))
        .await
        .unwrap();
    let last = producer.async_result(sent.id());
    let failed = last.get(WAIT).await.unwrap();
    assert_eq!(
        failed.status,
        TaskState::Failure,
        "the chain's last step fails with the first"
    );

    let mut received = TaskEvent::new(
        TaskEventKind::Received,
        "step-one",
        format!("rust-{queue}@test"),
        celeriac::clock::now(),
    );
    received.name = Some("demo.fail_until".into());
    history.record_events(&[received]).await.unwrap();
    let backend = RedisBackend::connect(&env.backend_url, None).await.unwrap();
    history.catch_up(&backend.clone().into()).await.unwrap();
    tokio::time::sleep(Duration::from_secs_f64(
        (until - celeriac::clock::epoch_now()).max(0.0) + 0.2,
    ))
    .await;

    let rerun = retry_task(&history, &producer, "step-one").await.unwrap();
    assert_eq!(rerun.get(WAIT).await.unwrap().result, json!("ok"));
    let finished = eventually(WAIT, "the chain's last step to succeed", || async {
        let meta = last.get(WAIT).await.ok()?;
        (meta.status == TaskState::Success).then_some(meta)
    })
    .await;
    assert_eq!(finished.result, json!({"args": ["ok"], "kwargs": {}}));
    assert_eq!(finished.parent_id.as_deref(), Some(rerun.id.as_str()));
    worker.stop().await;
}
