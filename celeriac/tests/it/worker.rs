//! Our producer and our worker together, on a real Redis: results, retries, time limits,
//! expiry, priorities, routes, rate limits, acks and warm shutdown.

use crate::support::{config, producer, RunningWorker};
use celeriac::broker::Keys;
use celeriac::producer::{SendOptions, TaskCall};
use celeriac::routing::{Route, TaskRoutes};
use celeriac::task::{Task, TaskError};
use celeriac::testkit::{eventually, TestEnv};
use celeriac::TaskState;
use redis::AsyncCommands;
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn args(values: Value) -> Vec<Value> {
    values.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_is_stored_with_celery_fields() {
    let env = TestEnv::new("success").with_result_extended(true);
    let queue = env.queue("q");
    let config = config(&env);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    let producer = producer(&config).await;
    let result = producer
        .send_task(
            "demo.add",
            args(json!([2, 3])),
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let meta = result.get(WAIT).await.unwrap();
    assert_eq!(meta.status, TaskState::Success);
    assert_eq!(meta.result, json!(5));
    assert!(meta.date_done.is_some());
    assert_eq!(meta.name.as_deref(), Some("demo.add"));
    assert_eq!(meta.args, Some(json!([2, 3])));
    assert_eq!(meta.queue.as_deref(), Some(queue.as_str()));
    assert_eq!(meta.retries, Some(0));
    let mut redis = env.backend_redis().await;
    let ttl: i64 = redis
        .ttl(Keys::task_meta(result.id.as_str()))
        .await
        .unwrap();
    assert!(
        ttl > 86_000 && ttl <= 86_400,
        "result_expires defaults to one day, ttl {ttl}"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_stores_the_exception_and_a_traceback() {
    let env = TestEnv::new("failure");
    let queue = env.queue("q");
    let config = config(&env);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let producer = producer(&config).await;
    let result = producer
        .send_task(
            "demo.fail",
            args(json!(["boom"])),
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let meta = result.get(WAIT).await.unwrap();
    assert_eq!(meta.status, TaskState::Failure);
    assert_eq!(
        meta.result,
        json!({"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"})
    );
    assert!(meta.traceback.unwrap().contains("ValueError: boom"));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoretry_backs_off_stores_retry_and_fails_after_max_retries() {
    let env = TestEnv::new("autoretry").with_result_extended(true);
    let queue = env.queue("q");
    let config = config(&env);
    let mut registry = celeriac::demo::registry();
    registry.register(
        Task::new("test.smtp", || async {
            Err::<(), _>(TaskError::new("SMTPError", "421 try later"))
        })
        .autoretry_for(["SMTPError"])
        .retry_backoff(1.0)
        .retry_backoff_max(1)
        .retry_jitter(false)
        .max_retries(Some(2)),
    );
    let worker = RunningWorker::start(config.clone(), Some(registry), &[&queue], 1).await;
    let producer = producer(&config).await;
    let started = Instant::now();
    let result = producer
        .send_task(
            "test.smtp",
            vec![],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let retry = eventually(WAIT, "RETRY state stored", || async {
        result
            .meta()
            .await
            .unwrap()
            .filter(|meta| meta.status == TaskState::Retry)
    })
    .await;
    assert_eq!(retry.result["exc_type"], json!("SMTPError"));
    let meta = result.get(WAIT).await.unwrap();
    assert_eq!(meta.status, TaskState::Failure);
    assert_eq!(
        meta.result["exc_type"],
        json!("SMTPError"),
        "the last error is the final FAILURE"
    );
    assert_eq!(meta.retries, Some(2), "max_retries=2 means three runs");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "two backoff countdowns of 1 s each"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_retry_keeps_the_id_and_counts_retries() {
    let env = TestEnv::new("flaky").with_result_extended(true);
    let queue = env.queue("q");
    let config = config(&env);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let producer = producer(&config).await;
    let result = producer
        .send_task(
            "demo.flaky",
            args(json!([2])),
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let meta = result.get(WAIT).await.unwrap();
    assert_eq!(meta.status, TaskState::Success);
    assert_eq!(meta.result, json!(3));
    assert_eq!(meta.retries, Some(2));
    assert_eq!(meta.task_id, result.id.0);
    assert_eq!(
        worker.counters.processed.load(Ordering::Relaxed),
        3,
        "like Celery's heartbeat `processed` (all_total_count), every run counts, retried ones too"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_time_limit_is_observable_and_hard_limit_aborts_without_stopping_the_worker() {
    let env = TestEnv::new("limits");
    let queue = env.queue("q");
    let mut config = config(&env);
    config.task_time_limit = Some(30.0);
    let mut registry = celeriac::demo::registry();
    registry.register(Task::new("test.stubborn", || async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, TaskError>(())
    }));
    registry.register(
        Task::new("test.limited", || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, TaskError>(())
        })
        .time_limits(Some(Duration::from_millis(300)), None),
    );
    let worker = RunningWorker::start(config.clone(), Some(registry), &[&queue], 1).await;
    let producer = producer(&config).await;

    let mut soft = SendOptions::new().queue(&queue);
    soft.soft_time_limit = Some(Duration::from_millis(200));
    let sleeper = producer
        .send_task("demo.sleep", args(json!([30])), Map::new(), soft)
        .await
        .unwrap();
    let meta = sleeper.get(WAIT).await.unwrap();
    assert_eq!(meta.status, TaskState::Failure);
    assert_eq!(meta.result["exc_type"], json!("SoftTimeLimitExceeded"));

    let mut hard = SendOptions::new().queue(&queue);
    hard.time_limit = Some(Duration::from_millis(300));
    let stubborn = producer
        .send_task("test.stubborn", vec![], Map::new(), hard)
        .await
        .unwrap();
    let meta = stubborn.get(WAIT).await.unwrap();
    assert_eq!(meta.status, TaskState::Failure);
    assert_eq!(
        meta.result,
        json!({"exc_type": "TimeLimitExceeded", "exc_message": [0.3], "exc_module": "billiard.exceptions"})
    );

    let limited = producer
        .send_task(
            "test.limited",
            vec![],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    assert_eq!(
        limited.get(WAIT).await.unwrap().result["exc_type"],
        json!("TimeLimitExceeded"),
        "per-task option"
    );

    let after = producer
        .send_task(
            "demo.add",
            args(json!([1, 1])),
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    assert_eq!(
        after.get(WAIT).await.unwrap().result,
        json!(2),
        "the worker keeps serving"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_time_limit_setting_applies() {
    let env = TestEnv::new("global-limit");
    let queue = env.queue("q");
    let mut config = config(&env);
    config.task_time_limit = Some(0.3);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let producer = producer(&config).await;
    let result = producer
        .send_task(
            "demo.sleep",
            args(json!([30])),
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    assert_eq!(
        result.get(WAIT).await.unwrap().result["exc_type"],
        json!("TimeLimitExceeded")
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tasks_are_revoked_not_run() {
    let env = TestEnv::new("expires");
    let queue = env.queue("q");
    let config = config(&env);
    let producer = producer(&config).await;
    let expired = producer
        .send_task(
            "demo.add",
            args(json!([1, 2])),
            Map::new(),
            SendOptions::new()
                .queue(&queue)
                .expires_in(Duration::from_millis(1)),
        )
        .await
        .unwrap();
    // Expires before its countdown is reached: revoked at execution time.
    let late = producer
        .send_task(
            "demo.add",
            args(json!([1, 2])),
            Map::new(),
            SendOptions::new()
                .queue(&queue)
                .countdown(Duration::from_millis(800))
                .expires_in(Duration::from_millis(400)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    for result in [expired, late] {
        let meta = result.get(WAIT).await.unwrap();
        assert_eq!(meta.status, TaskState::Revoked);
        assert_eq!(
            meta.result,
            json!({"exc_type": "TaskRevokedError", "exc_message": ["expired"], "exc_module": "celery.exceptions"})
        );
    }
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn countdown_and_eta_are_never_early() {
    let env = TestEnv::new("countdown");
    let queue = env.queue("q");
    let config = config(&env);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    let producer = producer(&config).await;
    let sent = celeriac::clock::now();
    let countdown = producer
        .send_task(
            "demo.add",
            args(json!([1, 1])),
            Map::new(),
            SendOptions::new()
                .queue(&queue)
                .countdown(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    let eta = producer
        .send_task(
            "demo.add",
            args(json!([2, 2])),
            Map::new(),
            SendOptions::new()
                .queue(&queue)
                .eta(sent + chrono::Duration::milliseconds(1500)),
        )
        .await
        .unwrap();
    for (result, delay) in [(countdown, 1000), (eta, 1500)] {
        let meta = result.get(WAIT).await.unwrap();
        let done = celeriac::protocol::time::parse_iso(meta.date_done.as_deref().unwrap()).unwrap();
        let waited = (done - sent).num_milliseconds();
        assert!(
            waited >= delay,
            "ran after {waited} ms, expected at least {delay} ms"
        );
        assert!(
            waited < delay + 3000,
            "ran {waited} ms after sending, far past its eta"
        );
    }
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lower_priority_numbers_are_served_first_and_queues_are_selected() {
    let env = TestEnv::new("priority");
    let queue = env.queue("q");
    let other = env.queue("other");
    let config = config(&env);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut registry = celeriac::demo::registry();
    let recorder = order.clone();
    registry.register(Task::new("test.record", move |label: String| {
        let recorder = recorder.clone();
        async move {
            recorder.lock().unwrap().push(label);
            Ok::<_, TaskError>(())
        }
    }));
    let producer = producer(&config).await;
    for (label, priority) in [("low", 9), ("mid", 5), ("high", 0)] {
        producer
            .send_task(
                "test.record",
                args(json!([label])),
                Map::new(),
                SendOptions::new().queue(&queue).priority(priority),
            )
            .await
            .unwrap();
    }
    producer
        .send_task(
            "test.record",
            args(json!(["other-queue"])),
            Map::new(),
            SendOptions::new().queue(&other),
        )
        .await
        .unwrap();
    let mut redis = env.redis().await;
    let nine: i64 = redis
        .llen(format!("{}{}\x06\x169", env.key_prefix, queue))
        .await
        .unwrap();
    assert_eq!(
        nine, 1,
        "priority 9 goes to the Q\\x06\\x169 list as kombu does"
    );
    let mut worker_config = config.clone();
    worker_config.worker_prefetch_multiplier = 1;
    let worker = RunningWorker::start(worker_config, Some(registry), &[&queue], 1).await;
    eventually(WAIT, "three tasks ran", || async {
        (order.lock().unwrap().len() == 3).then_some(())
    })
    .await;
    assert_eq!(*order.lock().unwrap(), vec!["high", "mid", "low"]);
    let waiting: i64 = redis
        .llen(format!("{}{}", env.key_prefix, other))
        .await
        .unwrap();
    assert_eq!(
        waiting, 1,
        "a queue the worker does not consume is left alone"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_routes_pick_the_queue() {
    let env = TestEnv::new("routes");
    let mut config = config(&env);
    let email = env.queue("email");
    let render = env.queue("render");
    config.task_routes = TaskRoutes::new(vec![
        (
            "orders.send_invoice_email".into(),
            Route::queue(email.clone()),
        ),
        ("orders.*".into(), Route::queue(render.clone())),
    ])
    .unwrap();
    let producer = producer(&config).await;
    producer
        .send_task(
            "orders.send_invoice_email",
            args(json!([1])),
            Map::new(),
            SendOptions::new(),
        )
        .await
        .unwrap();
    producer
        .send_task(
            "orders.render_pdf",
            args(json!([1])),
            Map::new(),
            SendOptions::new(),
        )
        .await
        .unwrap();
    producer
        .send_task(
            "orders.render_pdf",
            args(json!([1])),
            Map::new(),
            SendOptions::new().queue("explicit"),
        )
        .await
        .unwrap();
    let broker = producer.broker();
    assert_eq!(broker.queue_length(&email).await.unwrap(), 1);
    assert_eq!(broker.queue_length(&render).await.unwrap(), 1);
    assert_eq!(
        broker.queue_length("explicit").await.unwrap(),
        1,
        "an explicit queue wins over routes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_spaces_task_starts() {
    let env = TestEnv::new("rate");
    let queue = env.queue("q");
    let config = config(&env);
    let starts = Arc::new(Mutex::new(Vec::new()));
    let mut registry = celeriac::demo::registry();
    let recorder = starts.clone();
    registry.register(
        Task::new("test.limited", move || {
            let recorder = recorder.clone();
            async move {
                recorder.lock().unwrap().push(Instant::now());
                Ok::<_, TaskError>(())
            }
        })
        .rate_limit("10/s"),
    );
    let worker = RunningWorker::start(config.clone(), Some(registry), &[&queue], 4).await;
    let producer = producer(&config).await;
    let calls = (0..6)
        .map(|_| TaskCall {
            name: "test.limited".into(),
            args: vec![],
            kwargs: Map::new(),
            options: SendOptions::new().queue(&queue),
        })
        .collect();
    producer.send_batch(calls).await.unwrap();
    eventually(WAIT, "six tasks ran", || async {
        (starts.lock().unwrap().len() == 6).then_some(())
    })
    .await;
    let starts = starts.lock().unwrap().clone();
    let spread = *starts.last().unwrap() - *starts.first().unwrap();
    assert!(
        spread >= Duration::from_millis(450),
        "10/s over six tasks takes at least 0.5 s, took {spread:?}"
    );
    worker.stop().await;
}
