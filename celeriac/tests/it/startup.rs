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
    let _redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .expect("redis restarts");
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
