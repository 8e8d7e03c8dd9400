//! Real `celery control` changing our worker while it runs: `add_consumer`/`cancel_consumer`
//! change the queues it takes tasks from, `pool_grow`/`pool_shrink` how many run at once,
//! `autoscale` gets Celery's "not enabled" error, and `inspect stats` reports the live pool,
//! per-task totals and resource usage.

use crate::control::celery;
use crate::support::{config, producer, wait_for_mailbox, RunningWorker};
use celeriac::control::{BroadcastOptions, Control, Inspect};
use celeriac::producer::SendOptions;
use celeriac::testkit::{eventually, TestEnv};
use celeriac::TaskState;
use serde_json::{json, Map, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn queue_names(reply: &Value) -> Vec<String> {
    reply
        .as_array()
        .map(|queues| {
            queues
                .iter()
                .filter_map(|queue| queue["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn celery_adds_and_cancels_our_consumers() {
    let env = TestEnv::new("add-consumer");
    let queue = env.queue("q");
    let extra = env.queue("extra");
    let config = config(&env);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    let node = format!("rust-{queue}@test");
    wait_for_mailbox(&config, &node).await;
    let producer = producer(&config).await;
    let add = |queue: &str, x: i64| {
        let options = SendOptions::new().queue(queue);
        let producer = &producer;
        async move {
            producer
                .send_task("demo.add", vec![json!(x), json!(1)], Map::new(), options)
                .await
                .unwrap()
        }
    };

    // Not consumed yet: a task sent to `extra` first is still there after one sent to `queue`
    // later has run.
    let waiting = add(&extra, 1).await;
    let meta = add(&queue, 2).await.get(WAIT).await.unwrap();
    assert_eq!(meta.result, json!(3));
    assert_eq!(producer.broker().queue_length(&extra).await.unwrap(), 1);

    let added = celery(
        &env,
        &["control", "add_consumer", "--json", "-d", &node, &extra],
    )
    .await;
    assert_eq!(
        added[&node],
        json!({"ok": format!("add consumer {extra}")}),
        "{added}"
    );
    let meta = waiting.get(WAIT).await.unwrap();
    assert_eq!(
        (meta.status, meta.result),
        (TaskState::Success, json!(2)),
        "the added queue's task ran"
    );
    let queues = celery(&env, &["inspect", "active_queues", "--json", "-d", &node]).await;
    assert_eq!(
        queue_names(&queues[&node]),
        vec![queue.clone(), extra.clone()],
        "{queues}"
    );

    let cancelled = celery(
        &env,
        &["control", "cancel_consumer", "--json", "-d", &node, &extra],
    )
    .await;
    assert_eq!(
        cancelled[&node],
        json!({"ok": format!("no longer consuming from {extra}")}),
        "{cancelled}"
    );
    let queues = celery(&env, &["inspect", "active_queues", "--json", "-d", &node]).await;
    assert_eq!(queue_names(&queues[&node]), vec![queue.clone()], "{queues}");
    let stranded = add(&extra, 5).await;
    let meta = add(&queue, 6).await.get(WAIT).await.unwrap();
    assert_eq!(meta.result, json!(7));
    assert_eq!(
        producer.broker().queue_length(&extra).await.unwrap(),
        1,
        "a cancelled queue is no longer consumed"
    );
    assert_eq!(stranded.meta().await.unwrap(), None);

    let stats = celery(&env, &["inspect", "stats", "--json", "-d", &node]).await;
    assert_eq!(stats[&node]["total"], json!({"demo.add": 3}), "{stats}");
    worker.stop().await;
}

/// Polls `inspect active` and `reserved` (through our client, which is quicker than starting
/// Python each time) until the counts are as expected.
async fn wait_for_counts(control: &Control, node: &str, active: usize, reserved: usize) {
    let options = &BroadcastOptions::default().to([node]);
    eventually(
        WAIT,
        &format!("{active} active and {reserved} reserved on {node}"),
        move || async move {
            let count = |replies: celeriac::control::Replies| {
                replies.get(node).and_then(Value::as_array).map(Vec::len)
            };
            let now_active = count(control.inspect(Inspect::Active, options).await.ok()?)?;
            let now_reserved = count(control.inspect(Inspect::Reserved, options).await.ok()?)?;
            (now_active == active && now_reserved == reserved).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn celery_grows_and_shrinks_our_pool() {
    let env = TestEnv::new("pool-grow");
    let queue = env.queue("q");
    let config = config(&env);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let node = format!("rust-{queue}@test");
    wait_for_mailbox(&config, &node).await;
    let control = Control::connect(&config).await.unwrap();
    let producer = producer(&config).await;
    let sleep = || {
        let options = SendOptions::new().queue(&queue);
        let producer = &producer;
        async move {
            producer
                .send_task("demo.sleep", vec![json!(60)], Map::new(), options)
                .await
                .unwrap()
        }
    };
    let mut sleepers = vec![sleep().await, sleep().await];
    wait_for_counts(&control, &node, 1, 1).await;

    let grown = celery(&env, &["control", "pool_grow", "--json", "-d", &node, "1"]).await;
    assert_eq!(grown[&node], json!({"ok": "pool will grow"}), "{grown}");
    wait_for_counts(&control, &node, 2, 0).await;
    let stats = celery(&env, &["inspect", "stats", "--json", "-d", &node]).await;
    let stats = &stats[&node];
    assert_eq!(stats["pool"]["max-concurrency"], json!(2), "{stats}");
    assert_eq!(
        stats["prefetch_count"],
        json!(8),
        "4 × the grown pool: {stats}"
    );
    assert_eq!(stats["total"], json!({"demo.sleep": 2}), "{stats}");
    assert!(stats["rusage"]["maxrss"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["rusage"]["utime"].is_f64(), "{stats}");

    let shrunk = celery(
        &env,
        &["control", "pool_shrink", "--json", "-d", &node, "1"],
    )
    .await;
    assert_eq!(shrunk[&node], json!({"ok": "pool will shrink"}), "{shrunk}");
    let stats = celery(&env, &["inspect", "stats", "--json", "-d", &node]).await;
    assert_eq!(stats[&node]["pool"]["max-concurrency"], json!(1), "{stats}");
    // The shrink completes as running tasks end: stop both, and of two new tasks one runs.
    let ids: Vec<String> = sleepers.iter().map(|result| result.id.0.clone()).collect();
    let options = BroadcastOptions::default().to([node.as_str()]);
    control.revoke(&ids, true, None, &options).await.unwrap();
    for sleeper in &sleepers {
        assert_eq!(sleeper.get(WAIT).await.unwrap().status, TaskState::Revoked);
    }
    sleepers = vec![sleep().await, sleep().await];
    wait_for_counts(&control, &node, 1, 1).await;

    let autoscale = celery(
        &env,
        &["control", "autoscale", "--json", "-d", &node, "3", "1"],
    )
    .await;
    assert_eq!(
        autoscale[&node],
        json!({"error": "ValueError('Autoscale not enabled')"}),
        "as a Celery worker without --autoscale answers: {autoscale}"
    );

    let ids: Vec<String> = sleepers.iter().map(|result| result.id.0.clone()).collect();
    control.revoke(&ids, true, None, &options).await.unwrap();
    for sleeper in &sleepers {
        assert_eq!(sleeper.get(WAIT).await.unwrap().status, TaskState::Revoked);
    }
    worker.stop().await;
}
