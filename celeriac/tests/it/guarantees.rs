//! Delivery guarantees that need no process to die: idempotent enqueue, and a producer call
//! while Redis is down returning an error instead of dropping the task.

use crate::support::{config, producer, RunningWorker};
use celeriac::producer::{derived_task_id, SendOptions};
use celeriac::testkit::{RedisServer, TestEnv};
use celeriac::{Error, TaskState};
use serde_json::{json, Map};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_task_is_enqueued_once_while_pending_and_again_once_finished() {
    let env = TestEnv::new("unique");
    let queue = env.queue("q");
    let config = config(&env);
    let producer = producer(&config).await;
    let send = || {
        producer.send_task(
            "demo.add",
            vec![json!(1), json!(2)],
            Map::new(),
            SendOptions::new()
                .queue(&queue)
                .unique_key("order-42/invoice"),
        )
    };
    let first = send().await.unwrap();
    assert_eq!(
        first.id.as_str(),
        derived_task_id("demo.add", "order-42/invoice")
    );
    match send().await {
        Err(Error::Duplicate { task_id }) => assert_eq!(task_id, first.id.0),
        other => panic!("a second enqueue while pending must be refused, got {other:?}"),
    }
    assert_eq!(producer.broker().queue_length(&queue).await.unwrap(), 1);
    let by_id = producer
        .send_task(
            "demo.add",
            vec![],
            Map::new(),
            SendOptions::new()
                .queue(&queue)
                .task_id(first.id.0.clone())
                .unique(),
        )
        .await;
    assert!(
        matches!(by_id, Err(Error::Duplicate { .. })),
        "the same id passed explicitly is refused too"
    );

    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    assert_eq!(
        first.get(Duration::from_secs(10)).await.unwrap().status,
        TaskState::Success
    );
    let mut again = None;
    for _ in 0..50 {
        match send().await {
            Ok(result) => {
                again = Some(result);
                break;
            }
            Err(Error::Duplicate { .. }) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(error) => panic!("{error}"),
        }
    }
    assert!(
        again.is_some(),
        "once finished, the same key can be enqueued again"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_while_redis_is_down_is_an_error_and_sends_resume_after() {
    let mut server = RedisServer::start_private();
    let env = TestEnv::new("outage");
    let mut config = config(&env);
    config.broker_url = server.url(0);
    config.result_backend = None;
    let producer = producer(&config).await;
    producer
        .send_task(
            "demo.add",
            vec![json!(1), json!(1)],
            Map::new(),
            SendOptions::new(),
        )
        .await
        .unwrap();
    server.kill();
    let during = producer
        .send_task(
            "demo.add",
            vec![json!(1), json!(1)],
            Map::new(),
            SendOptions::new(),
        )
        .await;
    assert!(
        during.is_err(),
        "a send during the outage returns an error to the caller"
    );
    server.restart();
    let mut resumed = false;
    for _ in 0..100 {
        if producer
            .send_task(
                "demo.add",
                vec![json!(1), json!(1)],
                Map::new(),
                SendOptions::new(),
            )
            .await
            .is_ok()
        {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        resumed,
        "the same producer works again once Redis is back, without a restart"
    );
}
