//! One run through every part that talks to Redis, for each way of connecting to it (TLS,
//! an ACL user): a producer and a worker with results, task events, remote control and beat.

use crate::support::{producer, wait_for_mailbox, RunningWorker};
use celeriac::beat::{Beat, BeatOptions, PeriodicTask, Schedule, ScheduleStore};
use celeriac::broker::RedisBroker;
use celeriac::config::Config;
use celeriac::control::{BroadcastOptions, Control};
use celeriac::db::Database;
use celeriac::producer::{broker_options, SendOptions};
use celeriac::protocol::{event, Envelope};
use celeriac::testkit::{eventually, DatabaseKind, TestDatabase, TestEnv};
use celeriac::TaskState;
use futures::StreamExt;
use serde_json::{json, Map};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Sends `demo.add` through `config` to a worker on `queue` and checks the result.
pub async fn add_round_trip(config: &Config, queue: &str) {
    let producer = producer(config).await;
    let result = producer
        .send_task(
            "demo.add",
            vec![json!(20), json!(22)],
            Map::new(),
            SendOptions::new().queue(queue),
        )
        .await
        .expect("send over TLS");
    let meta = result.get(WAIT).await.expect("result over TLS");
    assert_eq!(meta.status, TaskState::Success);
    assert_eq!(meta.result, json!(42));
}

/// Runs a worker on `env`'s queue with `config` (task events on) and checks each part in turn;
/// returns the running worker, for more checks.
pub async fn every_part_works(env: &TestEnv, mut config: Config) -> RunningWorker {
    let queue = env.queue("q");
    config.worker_send_task_events = true;

    // Events: subscribe before the worker starts, through a TLS broker connection.
    let broker = RedisBroker::connect(&config.broker_url, broker_options(&config))
        .await
        .expect("broker");
    let mut messages = broker.psubscribe_fanout("celeryev").await.expect("events");

    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    add_round_trip(&config, &queue).await;

    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, messages.next()).await {
        let payload: Vec<u8> = message.get_payload().unwrap_or_default();
        let Ok(envelope) = Envelope::from_json(&payload) else {
            continue;
        };
        for decoded in event::decode(&envelope).unwrap_or_default() {
            seen.push(decoded["type"].as_str().unwrap_or_default().to_owned());
        }
        if seen.iter().any(|kind| kind == "task-succeeded") {
            break;
        }
    }
    drop(messages);
    assert!(seen.iter().any(|kind| kind == "task-succeeded"), "{seen:?}");

    // Remote control.
    let node = format!("rust-{queue}@test");
    wait_for_mailbox(&config, &node).await;
    let control = Control::connect(&config).await.expect("control");
    let pong = control
        .ping(
            &BroadcastOptions::default()
                .to([node.as_str()])
                .timeout(Duration::from_secs(3)),
        )
        .await
        .expect("ping");
    assert_eq!(pong.get(&node), Some(&json!({"ok": "pong"})), "{pong:?}");

    // Beat: a one-second interval entry is sent and run.
    let database = TestDatabase::new(DatabaseKind::Sqlite, "all_parts_beat");
    let store = ScheduleStore::new(Database::connect(&database.url).await.expect("database"));
    let mut entry = PeriodicTask::new(
        "all-parts-tick",
        "demo.add",
        Schedule::Interval("1s".parse().unwrap()),
    );
    entry.args = json!([1, 1]);
    entry.queue = Some(queue.clone());
    store.add(&entry).await.expect("schedule");
    let beat = Beat::new(
        store.clone(),
        producer(&config).await,
        BeatOptions {
            node_name: "beat-all-parts@test".to_owned(),
            max_loop_interval: Duration::from_millis(500),
            ..BeatOptions::default()
        },
    );
    let (stop_beat, stopped) = tokio::sync::oneshot::channel::<()>();
    let beat = tokio::spawn(beat.run(async move {
        let _ = stopped.await;
    }));
    eventually(WAIT, "beat to send", || async {
        let stored = store.get("all-parts-tick").await.ok()?;
        (stored.task.total_run_count >= 2).then_some(())
    })
    .await;
    let _ = stop_beat.send(());
    beat.await.expect("beat task");

    worker
}
