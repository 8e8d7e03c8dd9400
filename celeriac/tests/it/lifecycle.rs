//! Acknowledgement, shutdown and sending in bulk: when a message leaves `unacked`, what a warm
//! shutdown does with running and reserved tasks, batches, ignored results and typed sends.

use crate::support::{config, producer, RunningWorker};
use celeriac::producer::{SendOptions, TaskCall};
use celeriac::testkit::{eventually, TestEnv};
use celeriac::TaskState;
use redis::AsyncCommands;
use serde_json::{json, Map, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn args(values: Value) -> Vec<Value> {
    values.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_late_keeps_the_message_in_unacked_until_the_task_ends() {
    let env = TestEnv::new("acks-late");
    let queue = env.queue("q");
    let mut config = config(&env);
    config.task_acks_late = true;
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let producer = producer(&config).await;
    let result = producer
        .send_task(
            "demo.sleep",
            args(json!([1.0])),
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let mut redis = env.redis().await;
    let unacked_key = format!("{}unacked", env.key_prefix);
    eventually(WAIT, "running task recorded in unacked", || {
        let mut redis = redis.clone();
        let key = unacked_key.clone();
        async move { (redis.hlen::<_, i64>(key).await.unwrap() == 1).then_some(()) }
    })
    .await;
    assert_eq!(result.get(WAIT).await.unwrap().status, TaskState::Success);
    eventually(WAIT, "acked after the run", || {
        let mut redis = redis.clone();
        let key = unacked_key.clone();
        async move { (redis.hlen::<_, i64>(key).await.unwrap() == 0).then_some(()) }
    })
    .await;
    let index: i64 = redis
        .zcard(format!("{}unacked_index", env.key_prefix))
        .await
        .unwrap();
    assert_eq!(index, 0);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_shutdown_finishes_running_tasks_and_restores_reserved_ones() {
    let env = TestEnv::new("shutdown").with_result_extended(true);
    let queue = env.queue("q");
    let mut config = config(&env);
    config.task_acks_late = true;
    config.worker_prefetch_multiplier = 4;
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let producer = producer(&config).await;
    let long = producer
        .send_task(
            "demo.sleep",
            args(json!([1.0])),
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    // The long task takes the only slot before the others arrive, so they can only be reserved.
    let broker = producer.broker().clone();
    eventually(WAIT, "the long task taken", || {
        let broker = broker.clone();
        let queue = queue.clone();
        async move { (broker.queue_length(&queue).await.unwrap() == 0).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut waiting = Vec::new();
    for number in 0..3 {
        waiting.push(
            producer
                .send_task(
                    "demo.add",
                    args(json!([number, 1])),
                    Map::new(),
                    SendOptions::new().queue(&queue),
                )
                .await
                .unwrap(),
        );
    }
    eventually(WAIT, "all four reserved", || {
        let broker = broker.clone();
        let queue = queue.clone();
        async move { (broker.queue_length(&queue).await.unwrap() == 0).then_some(()) }
    })
    .await;
    worker.stop().await;
    assert_eq!(
        long.meta().await.unwrap().map(|meta| meta.status),
        Some(TaskState::Success),
        "the running task finished"
    );
    assert_eq!(
        broker.queue_length(&queue).await.unwrap(),
        3,
        "reserved tasks are back in the queue"
    );
    assert_eq!(broker.unacked_count().await.unwrap(), 0);
    let mut redis = env.redis().await;
    let restored: Vec<String> = redis
        .lrange(format!("{}{}", env.key_prefix, queue), 0, -1)
        .await
        .unwrap();
    assert!(
        restored
            .iter()
            .all(|raw| raw.contains("\"redelivered\":true")),
        "restored messages are flagged redelivered"
    );
    let next = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    for result in waiting {
        assert_eq!(result.get(WAIT).await.unwrap().status, TaskState::Success);
    }
    next.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_grace_period_stops_long_tasks_and_requeues_them() {
    let env = TestEnv::new("grace");
    let queue = env.queue("q");
    let mut config = config(&env);
    config.task_acks_late = true;
    config.worker_soft_shutdown_timeout = 0.3;
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let producer = producer(&config).await;
    let long = producer
        .send_task(
            "demo.sleep",
            args(json!([30])),
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let broker = producer.broker().clone();
    eventually(WAIT, "long task started", || {
        let broker = broker.clone();
        async move {
            (broker.unacked_count().await.unwrap() == 1 && broker.queue_length("x").await.is_ok())
                .then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    worker.stop().await;
    assert_eq!(
        broker.queue_length(&queue).await.unwrap(),
        1,
        "the stopped task is back in its queue"
    );
    assert!(
        long.meta().await.unwrap().is_none(),
        "no result was stored for the stopped run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_send_enqueues_everything_at_once() {
    let env = TestEnv::new("batch");
    let queue = env.queue("q");
    let config = config(&env);
    let producer = producer(&config).await;
    let calls: Vec<TaskCall> = (0..500)
        .map(|number| TaskCall {
            name: "demo.add".into(),
            args: args(json!([number, 1])),
            kwargs: Map::new(),
            options: SendOptions::new().queue(&queue),
        })
        .collect();
    let results = producer.send_batch(calls).await.unwrap();
    assert_eq!(producer.broker().queue_length(&queue).await.unwrap(), 500);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 8).await;
    let last = results.last().unwrap();
    assert_eq!(last.get(WAIT).await.unwrap().result, json!(500));
    eventually(WAIT, "all processed", || async {
        (worker
            .counters
            .processed
            .load(std::sync::atomic::Ordering::Relaxed)
            == 500)
            .then_some(())
    })
    .await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_result_stores_nothing() {
    let env = TestEnv::new("ignore");
    let queue = env.queue("q");
    let config = config(&env);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let producer = producer(&config).await;
    let mut options = SendOptions::new().queue(&queue);
    options.ignore_result = true;
    let ignored = producer
        .send_task("demo.add", args(json!([1, 1])), Map::new(), options)
        .await
        .unwrap();
    let stored = producer
        .send_task(
            "demo.add",
            args(json!([1, 2])),
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    assert_eq!(stored.get(WAIT).await.unwrap().result, json!(3));
    assert!(ignored.meta().await.unwrap().is_none());
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_delay_and_apply_async() {
    use celeriac::producer::TaskRef;
    const ADD: TaskRef<(i64, i64)> = TaskRef::new("demo.add");
    let env = TestEnv::new("typed");
    let queue = env.queue("q");
    let mut config = config(&env);
    config.task_default_queue = queue.clone();
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let producer = producer(&config).await;
    let delayed = producer.delay(&ADD, (20, 22)).await.unwrap();
    let applied = producer
        .apply_async(&ADD, (1, 2), SendOptions::new().task_id("my-own-id"))
        .await
        .unwrap();
    assert_eq!(applied.id.as_str(), "my-own-id");
    assert_eq!(delayed.get(WAIT).await.unwrap().result, json!(42));
    assert_eq!(applied.get(WAIT).await.unwrap().result, json!(3));
    worker.stop().await;
}
