//! Delivery guarantees that need no process to die: idempotent enqueue, a producer call while
//! Redis is down returning an error instead of dropping the task, and results surviving a
//! Redis outage longer than a minute.

use crate::support::{config, producer, RunningWorker};
use celeriac::producer::{derived_task_id, SendOptions};
use celeriac::task::{Registry, Task, TaskError};
use celeriac::testkit::{eventually, RedisServer, TestEnv};
use celeriac::{Error, TaskState};
use serde_json::{json, Map};
use std::sync::atomic::Ordering;
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

/// Issue 13: with Redis (broker and results) down 65 s while runs were in flight, the worker
/// gave their result writes up after 60 s and acked the messages anyway, so those results
/// never existed. Now a write waits for the backend as long as it takes, and the message is
/// acked only once its result is stored. The restarted Redis then spends seconds loading its
/// append-only file, answering `LOADING`: the first answer those held writes got, which they
/// took as a refusal past the 60 s and gave up on, so all the held tasks ran a second time
/// (8 of 20,000 in a 120 s outage run). Each must run once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_of_runs_in_flight_survive_a_redis_outage_longer_than_a_minute() {
    let mut server = RedisServer::start_private_persistent();
    let env = TestEnv::new("result-outage");
    let mut config = config(&env);
    config.broker_url = server.url(0);
    config.result_backend = Some(server.url(1));
    config.task_acks_late = true;
    config.worker_prefetch_multiplier = 1;
    let runs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut registry = Registry::new();
    let counted = runs.clone();
    registry.register(
        Task::new("outage.slow", move |n: i64| {
            let counted = counted.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                counted.lock().unwrap().push(n);
                Ok::<i64, TaskError>(n)
            }
        })
        .arg_names(["n"]),
    );
    // Enough data that the restarted server answers LOADING for seconds (see below).
    let mut filler = redis::Client::open(server.url(2))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut pipeline = redis::pipe();
    for key in 0..20_000 {
        pipeline.set(format!("filler:{key}"), key).ignore();
    }
    pipeline.query_async::<()>(&mut filler).await.unwrap();
    let queue = env.queue("outage");
    let producer = producer(&config).await;
    let mut sent = Vec::new();
    for n in 0..8 {
        let result = producer
            .send_task(
                "outage.slow",
                vec![json!(n)],
                Map::new(),
                SendOptions::new().queue(&queue),
            )
            .await
            .unwrap();
        sent.push((n, result.id));
    }
    let worker = RunningWorker::start(config.clone(), Some(registry), &[&queue], 4).await;
    let counters = worker.counters.clone();
    eventually(Duration::from_secs(20), "four runs in flight", || {
        let counters = counters.clone();
        async move { (counters.processed.load(Ordering::Relaxed) >= 4).then_some(()) }
    })
    .await;
    server.kill();
    // Longer than the 60 s after which results used to be given up.
    tokio::time::sleep(Duration::from_secs(65)).await;
    // 250 µs per key: about 5 s of LOADING after the server answers PING.
    let server = tokio::task::spawn_blocking(move || {
        server.restart_with(&["--key-load-delay", "250"]);
        server
    })
    .await
    .unwrap();
    // The producer's own connection reconnects on its first command after the restart, so
    // reads are retried until the results are there.
    for (n, id) in sent {
        let what = format!("the result of task {n} ({id})");
        let meta = eventually(Duration::from_secs(90), &what, || {
            let result = producer.async_result(id.clone());
            async move {
                result
                    .meta()
                    .await
                    .ok()
                    .flatten()
                    .filter(|meta| meta.status.is_ready())
            }
        })
        .await;
        assert_eq!(meta.status, TaskState::Success, "task {n}");
        assert_eq!(meta.result, json!(n));
    }
    worker.stop().await;
    let mut runs = runs.lock().unwrap().clone();
    runs.sort_unstable();
    assert_eq!(runs, (0..8).collect::<Vec<i64>>(), "each task ran once");
    drop(server);
}

/// Issue 13: with the queue filling Redis (`maxmemory`, `noeviction`, results in the same
/// Redis), every result write was refused while every worker held its message waiting for
/// it: nothing drained. A refused write now acks its message first, which frees the memory
/// the result needs. The queue drains, and every task's result is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_that_filled_redis_drains_and_every_result_is_stored() {
    let server = RedisServer::start_private();
    let env = TestEnv::new("oom");
    let queue = env.queue("oom");
    let mut config = config(&env);
    config.broker_url = server.url(0);
    config.result_backend = Some(server.url(0));
    config.task_acks_late = true;
    let mut redis = redis::Client::open(server.url(0))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for (name, value) in [("maxmemory", "6mb"), ("maxmemory-policy", "noeviction")] {
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    let producer = producer(&config).await;
    let pad = "p".repeat(2_000);
    let mut sent = Vec::new();
    loop {
        let result = producer
            .send_task(
                "oom.pad",
                vec![json!(pad)],
                Map::new(),
                SendOptions::new().queue(&queue),
            )
            .await;
        match result {
            Ok(result) => sent.push(result.id.to_string()),
            Err(error) => {
                let chain = celeriac::error::chain(&error);
                assert!(chain.contains("OOM"), "{chain}");
                break;
            }
        }
        assert!(sent.len() < 20_000, "Redis never filled");
    }
    assert!(sent.len() > 500, "{} tasks filled Redis", sent.len());
    let mut registry = Registry::new();
    registry.register(
        Task::new("oom.pad", |pad: String| async move {
            Ok::<usize, TaskError>(pad.len())
        })
        .arg_names(["pad"]),
    );
    let worker = RunningWorker::start(config.clone(), Some(registry), &[&queue], 8).await;
    let broker = producer.broker().clone();
    eventually(Duration::from_secs(120), "the full queue drained", || {
        let broker = broker.clone();
        let queue = queue.clone();
        async move {
            let waiting = broker.queue_length(&queue).await.ok()?;
            let held = broker.unacked_count().await.ok()?;
            (waiting == 0 && held == 0).then_some(())
        }
    })
    .await;
    let backend = producer.backend().unwrap().clone();
    eventually(Duration::from_secs(60), "every result stored", || {
        let backend = backend.clone();
        let sent = sent.clone();
        async move {
            let mut stored = 0;
            for ids in sent.chunks(500) {
                stored += backend
                    .get_many(ids)
                    .await
                    .ok()?
                    .iter()
                    .filter(|meta| meta.status == TaskState::Success)
                    .count();
            }
            (stored == sent.len()).then_some(())
        }
    })
    .await;
    assert!(
        worker.counters.acked_before_result.load(Ordering::Relaxed) > 0,
        "Redis was full when the results came"
    );
    worker.stop().await;
}
