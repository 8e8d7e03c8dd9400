//! The test harness itself: private Redis servers, the Python Celery peer, and the kombu
//! unacked/restore behaviour that later interop tests rely on.

use std::time::Duration;

use celeriac::testkit::{eventually, CeleryPeer, RedisServer, TestEnv};
use redis::AsyncCommands;
use serde_json::{json, Value};

async fn connect(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await
}

#[tokio::test]
async fn shared_redis_server_answers_ping() {
    let env = TestEnv::new("ping");
    assert_eq!(env.redis_url, RedisServer::shared().url(0));
    assert!(env.backend_url.ends_with("/1"));

    let mut redis = env.redis().await;
    let pong: String = redis.ping().await.unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn private_redis_server_can_be_killed_and_restarted() {
    let mut server = RedisServer::start_private();
    let port = server.port().unwrap();
    assert_ne!(port, 6379, "tests must not use the machine's shared Redis");
    let mut redis = connect(&server.url(0)).await.unwrap();
    let () = redis.set("before-kill", "1").await.unwrap();

    server.kill();
    assert!(!server.is_up());
    assert!(
        connect(&server.url(0)).await.is_err(),
        "a killed server refuses connections"
    );

    server.restart();
    assert_eq!(server.port(), Some(port), "restart keeps the port");
    assert!(server.is_up());
    let mut redis = connect(&server.url(0)).await.unwrap();
    let value: Option<String> = redis.get("before-kill").await.unwrap();
    assert_eq!(value, None, "a restarted server starts empty");
}

#[tokio::test]
async fn python_worker_runs_a_task_sent_from_python() {
    let env = TestEnv::new("py-round-trip");
    let queue = env.queue("math");
    let worker = CeleryPeer::worker(&env, &[queue.as_str()], "selftest@%h");

    let sent = CeleryPeer::cli_async(
        &env,
        &["send", "demo.add", "--args", "[2, 3]", "--queue", &queue],
    )
    .await;
    let task_id = sent["task_id"].as_str().unwrap();
    let result = CeleryPeer::cli_async(&env, &["result", task_id, "--timeout", "20"]).await;

    assert_eq!(result["status"], "SUCCESS", "{result}");
    assert_eq!(result["result"], 5);
    assert!(worker.log().contains("demo.add"), "{}", worker.log());
    worker.stop();
}

#[tokio::test]
async fn kombu_restores_a_python_orphan_after_the_visibility_timeout() {
    let env = TestEnv::new("py-orphan").with_visibility_timeout(Duration::from_secs(1));
    let queue = env.queue("orphans");
    let sent = CeleryPeer::cli_async(
        &env,
        &["send", "demo.add", "--args", "[1, 1]", "--queue", &queue],
    )
    .await;
    let task_id = sent["task_id"].as_str().unwrap().to_string();

    let fetched = CeleryPeer::cli_async(&env, &["fetch_unacked", &queue]).await;
    assert_eq!(fetched["task_id"], task_id.as_str());
    let delivery_tag = fetched["delivery_tag"].as_str().unwrap().to_string();

    let mut redis = env.redis().await;
    let queue_key = env.key(&queue);
    let queued: usize = redis.llen(&queue_key).await.unwrap();
    assert_eq!(queued, 0, "the orphan left the queue");
    let unacked: Option<String> = redis.hget(env.key("unacked"), &delivery_tag).await.unwrap();
    let unacked: Value = serde_json::from_str(&unacked.expect("orphan is in unacked")).unwrap();
    assert_eq!(unacked[0]["headers"]["id"], task_id.as_str());
    assert_eq!(unacked[1], "", "anonymous exchange");
    assert_eq!(unacked[2], queue.as_str(), "routing key = queue");
    let score: Option<f64> = redis
        .zscore(env.key("unacked_index"), &delivery_tag)
        .await
        .unwrap();
    assert!(score.is_some(), "orphan is in unacked_index");

    // Each sweep before the 1 s visibility timeout has passed restores nothing.
    let restored = eventually(
        Duration::from_secs(15),
        "kombu's restore to put the orphan back in its queue",
        || {
            let (env, mut redis, queue_key) = (env.clone(), redis.clone(), queue_key.clone());
            async move {
                let reply = CeleryPeer::cli_async(&env, &["restore"]).await;
                assert_eq!(reply, json!({"restored": true}));
                let messages: Vec<String> = redis.lrange(&queue_key, 0, -1).await.unwrap();
                messages.into_iter().next()
            }
        },
    )
    .await;

    let restored: Value = serde_json::from_str(&restored).unwrap();
    assert_eq!(restored["headers"]["id"], task_id.as_str());
    assert_eq!(restored["headers"]["redelivered"], true);
    assert_eq!(
        restored["properties"]["delivery_tag"],
        delivery_tag.as_str()
    );
    assert_eq!(restored["properties"]["delivery_info"]["redelivered"], true);
    let still_unacked: bool = redis
        .hexists(env.key("unacked"), &delivery_tag)
        .await
        .unwrap();
    assert!(!still_unacked, "restore removes the tag from unacked");
}
