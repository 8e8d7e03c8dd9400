//! Events from our worker: read raw from Redis, and by real Celery's event receiver and State
//! (what Flower and `celery events` use).

use crate::support::{config, producer, RunningWorker};
use celeriac::broker::Keys;
use celeriac::producer::SendOptions;
use celeriac::protocol::{event, Envelope};
use celeriac::testkit::{CeleryPeer, TestEnv};
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_and_task_events_are_published_as_celery_does() {
    let env = TestEnv::new("events");
    let queue = env.queue("q");
    let mut config = config(&env);
    config.worker_send_task_events = true;
    config.task_send_sent_event = true;
    let client = redis::Client::open(env.redis_url.as_str()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    let channels = Keys::new(env.key_prefix.clone(), vec![0]).fanout_channel("celeryev", "*");
    pubsub.psubscribe(&channels).await.unwrap();
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    let producer = producer(&config).await;
    let ok = producer
        .send_task(
            "demo.add",
            vec![json!(2), json!(3)],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let failed = producer
        .send_task(
            "demo.fail",
            vec![json!("x")],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    ok.get(Duration::from_secs(10)).await.unwrap();
    failed.get(Duration::from_secs(10)).await.unwrap();
    let mut seen: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut messages = pubsub.on_message();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, messages.next()).await {
        let channel = message.get_channel_name().to_owned();
        let payload: Vec<u8> = message.get_payload().unwrap();
        let envelope = Envelope::from_json(&payload).unwrap();
        for decoded in event::decode(&envelope).unwrap() {
            seen.push((channel.clone(), decoded));
        }
        if seen
            .iter()
            .any(|(_, event)| event["type"] == json!("worker-heartbeat"))
        {
            break;
        }
    }
    drop(messages);
    let types: Vec<&str> = seen
        .iter()
        .map(|(_, event)| event["type"].as_str().unwrap())
        .collect();
    for expected in [
        "task-sent",
        "worker-online",
        "task-received",
        "task-started",
        "task-succeeded",
        "task-failed",
        "worker-heartbeat",
    ] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }
    let (channel, sent) = seen
        .iter()
        .find(|(_, event)| event["type"] == json!("task-sent"))
        .unwrap();
    assert!(channel.ends_with("/0.celeryev/task.sent"), "{channel}");
    assert_eq!(sent["queue"], json!(queue));
    assert!(
        sent["hostname"].as_str().unwrap().starts_with("gen"),
        "the producer's own node name"
    );
    let (channel, succeeded) = seen
        .iter()
        .find(|(_, event)| event["type"] == json!("task-succeeded"))
        .unwrap();
    assert!(
        channel.ends_with("/0.celeryev/task.multi"),
        "task events are batched on task.multi: {channel}"
    );
    assert_eq!(succeeded["result"], json!("5"));
    assert_eq!(succeeded["uuid"], json!(ok.id.0));
    let (_, failure) = seen
        .iter()
        .find(|(_, event)| event["type"] == json!("task-failed"))
        .unwrap();
    assert_eq!(failure["exception"], json!("ValueError('x')"));
    let (channel, heartbeat) = seen
        .iter()
        .find(|(_, event)| event["type"] == json!("worker-heartbeat"))
        .unwrap();
    assert!(channel.ends_with("/0.celeryev/worker.heartbeat"));
    assert_eq!(heartbeat["freq"], json!(2.0));
    assert_eq!(heartbeat["processed"], json!(2));
    assert_eq!(heartbeat["hostname"], json!(format!("rust-{queue}@test")));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn celerys_own_event_receiver_tracks_our_worker_and_tasks() {
    let env = TestEnv::new("events-py");
    let queue = env.queue("q");
    let mut config = config(&env);
    config.worker_send_task_events = true;
    let listener = {
        let env = env.clone();
        tokio::spawn(
            async move { CeleryPeer::cli_async(&env, &["events", "--seconds", "7"]).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    let producer = producer(&config).await;
    let ok = producer
        .send_task(
            "demo.add",
            vec![json!(20), json!(22)],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let failed = producer
        .send_task(
            "demo.fail",
            vec![json!("boom")],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let heard = listener.await.unwrap();
    worker.stop().await;
    let node = format!("rust-{queue}@test");
    let seen_worker = &heard["workers"][&node];
    assert_eq!(
        seen_worker["alive"],
        json!(true),
        "Celery's State sees our worker alive: {heard}"
    );
    assert_eq!(seen_worker["processed"], json!(2), "{heard}");
    assert_eq!(
        heard["tasks"][&ok.id.0]["state"],
        json!("SUCCESS"),
        "{heard}"
    );
    assert_eq!(heard["tasks"][&ok.id.0]["name"], json!("demo.add"));
    assert_eq!(heard["tasks"][&ok.id.0]["result"], json!("42"));
    assert_eq!(
        heard["tasks"][&failed.id.0]["state"],
        json!("FAILURE"),
        "{heard}"
    );
}
