//! Start-up while the broker is down: a process keeps trying to connect, as Celery's worker
//! does (`broker_connection_retry_on_startup`), instead of exiting after one attempt; and when
//! it gives up, it says where it tried, never with the password.

use celeriac::config::Config;
use celeriac::producer::Producer;
use celeriac::testkit::RedisServer;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_started_before_its_broker_waits_and_connects() {
    let mut redis = RedisServer::start_private();
    let url = redis.url(0);
    redis.kill();
    let config = Config {
        broker_url: url,
        ..Config::default()
    };
    let connecting = tokio::spawn(async move { Producer::connect(&config).await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !connecting.is_finished(),
        "gave up while the broker was down"
    );
    // Kept until the end: dropping it stops the server.
    let _redis = redis.restarted().await;
    let producer = tokio::time::timeout(Duration::from_secs(60), connecting)
        .await
        .expect("connected once the broker was up")
        .expect("the connect task")
        .expect("a producer");
    let depth = producer.broker().queue_depths(&["celery"]).await;
    assert!(depth.is_ok(), "{depth:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retries_it_gives_up_at_once_naming_the_address_not_the_password() {
    let mut redis = RedisServer::start_private();
    let port = redis.port().expect("a private server");
    redis.kill();
    let config = Config {
        broker_url: format!("redis://:hunter2-secret@127.0.0.1:{port}/0"),
        broker_connection_retry_on_startup: false,
        ..Config::default()
    };
    let started = Instant::now();
    let error = match Producer::connect(&config).await {
        Ok(_) => panic!("connected to a stopped server"),
        Err(error) => error,
    };
    let message = format!("{error:#}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(30));

    // A bounded number of retries ends with the same error after them.
    let config = Config {
        broker_connection_retry_on_startup: true,
        broker_connection_max_retries: 1,
        ..config
    };
    let error = match Producer::connect(&config).await {
        Ok(_) => panic!("connected to a stopped server"),
        Err(error) => error,
    };
    assert!(format!("{error}").contains("after 2 attempt(s)"), "{error}");
}

/// Issue 13: an idle worker told to stop while Redis was down took 9.6 s, each shutdown step
/// (events, worker-offline, restoring messages) waiting out its own reconnect attempts. It
/// must stop within its grace period; what it could not restore stays in `unacked` for the
/// visibility sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_while_its_broker_is_down_stops_within_its_grace() {
    use crate::support::RunningWorker;
    let mut redis = RedisServer::start_private();
    let config = Config {
        broker_url: redis.url(0),
        worker_send_task_events: true,
        worker_soft_shutdown_timeout: 2.0,
        ..Config::default()
    };
    let worker = RunningWorker::start(config, None, &["celery"], 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    worker.stop().await;
    let took = started.elapsed();
    // The grace, then at most a second for aborted tasks and one for the farewell.
    assert!(
        took < Duration::from_secs(5),
        "a worker with a 2 s grace took {took:?} to stop"
    );
}

/// Issue 13: the result backend (here on its own Redis) was tried once at start-up, so a
/// process started while it was down exited though the broker was up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_backend_down_at_start_is_waited_for_like_the_broker() {
    let broker = RedisServer::start_private();
    let mut backend = RedisServer::start_private();
    let config = Config {
        broker_url: broker.url(0),
        result_backend: Some(backend.url(0)),
        ..Config::default()
    };
    backend.kill();
    let connecting = tokio::spawn(async move { Producer::connect(&config).await });
    // Longer than redis-rs's own reconnect attempts (about 7.5 s), after which it gave up.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(
        !connecting.is_finished(),
        "gave up while the backend was down"
    );
    let _backend = backend.restarted().await;
    let producer = tokio::time::timeout(Duration::from_secs(60), connecting)
        .await
        .expect("connected once the backend was up")
        .expect("the connect task")
        .expect("a producer");
    let missing = producer.async_result("no-such-task").meta().await;
    assert!(matches!(missing, Ok(None)), "{missing:?}");
}
