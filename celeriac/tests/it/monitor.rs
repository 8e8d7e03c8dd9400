//! The receiving side of events against real workers: our [`Monitor`] follows our worker and a
//! real Python Celery 5.4 worker (`-E`), agrees with Celery's own `events.state.State`, marks a
//! killed worker offline when its heartbeats stop, and shrugs off garbage on the channel. Also
//! the queue depths a dashboard reads.

use crate::support::{config, producer, RunningWorker};
use celeriac::broker::Keys;
use celeriac::clock;
use celeriac::events::state::{ClusterState, TaskSnapshot};
use celeriac::events::{Monitor, MonitorOptions};
use celeriac::producer::SendOptions;
use celeriac::protocol::event;
use celeriac::testkit::{eventually, CeleryPeer, TestEnv};
use celeriac::TaskState;
use serde_json::{json, Map, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Publishes a raw message on the env's events channel with routing key `routing_key`.
async fn publish_raw(env: &TestEnv, routing_key: &str, raw: &[u8]) {
    let channel =
        Keys::new(env.key_prefix.clone(), vec![0]).fanout_channel("celeryev", routing_key);
    let mut redis = env.redis().await;
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(raw)
        .query_async::<i64>(&mut redis)
        .await
        .unwrap();
}

async fn publish_event(env: &TestEnv, body: Value, routing_key: &str) {
    let envelope = event::envelope(&body, "test@host", routing_key, "tag".into());
    publish_raw(env, routing_key, envelope.to_json().as_bytes()).await;
}

/// Waits until `read` finds what it wants in the monitor's state.
async fn wait_for<T>(
    monitor: &Monitor,
    what: &str,
    read: impl Fn(&ClusterState) -> Option<T>,
) -> T {
    eventually(WAIT, what, || {
        let found = monitor.read(&read);
        async move { found }
    })
    .await
}

fn task(state: &ClusterState, id: &str, wanted: TaskState) -> Option<TaskSnapshot> {
    state.task(id).filter(|task| task.state == wanted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_follows_our_worker_and_its_tasks() {
    let env = TestEnv::new("monitor");
    let queue = env.queue("q");
    let mut config = config(&env);
    config.worker_send_task_events = true;
    config.task_send_sent_event = true;
    let producer = producer(&config).await;
    let monitor = Monitor::start(producer.broker(), MonitorOptions::default())
        .await
        .unwrap();
    let mut versions = monitor.versions();
    let mut batches = monitor.subscribe();
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    let options = || SendOptions::new().queue(&queue);
    let ok = producer
        .send_task("demo.add", vec![json!(2), json!(3)], Map::new(), options())
        .await
        .unwrap();
    let failed = producer
        .send_task("demo.fail", vec![json!("x")], Map::new(), options())
        .await
        .unwrap();
    ok.get(WAIT).await.unwrap();
    failed.get(WAIT).await.unwrap();
    let node = format!("rust-{queue}@test");
    let (succeeded, failure) = wait_for(&monitor, "both tasks finished in the state", |state| {
        Some((
            task(state, ok.id.as_str(), TaskState::Success)?,
            task(state, failed.id.as_str(), TaskState::Failure)?,
        ))
    })
    .await;
    assert_eq!(succeeded.name.as_deref(), Some("demo.add"));
    assert_eq!(succeeded.result.as_deref(), Some("5"));
    assert_eq!(succeeded.args.as_deref(), Some("(2, 3)"));
    assert_eq!(succeeded.worker.as_deref(), Some(node.as_str()));
    assert_eq!(succeeded.routing_key.as_deref(), Some(queue.as_str()));
    assert!(succeeded.client.as_deref().unwrap().starts_with("gen"));
    assert!(succeeded.runtime.is_some() && succeeded.started.is_some());
    assert_eq!(failure.exception.as_deref(), Some("ValueError('x')"));
    let heartbeat = wait_for(&monitor, "a heartbeat from our worker", |state| {
        state
            .worker(&node, clock::epoch_now())
            .filter(|worker| worker.heartbeats >= 1 && worker.processed == 2)
    })
    .await;
    assert!(heartbeat.alive);
    assert_eq!(heartbeat.sw_ident.as_deref(), Some("celeriac"));
    assert_eq!(heartbeat.freq, Duration::from_secs(2));
    let names = monitor.read(|state| state.task_names());
    let add = names.iter().find(|name| name.name == "demo.add").unwrap();
    assert_eq!(
        (
            add.counts.sent,
            add.counts.received,
            add.counts.started,
            add.counts.succeeded
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(add.runtime.as_ref().unwrap().samples, 1);
    assert!(*versions.borrow_and_update() > 0, "the change feed moved");
    let batch = batches.recv().await.unwrap();
    assert!(!batch.is_empty(), "subscribers get the batches");
    // A warm shutdown sends worker-offline: offline at once, not after the heartbeat expires.
    worker.stop().await;
    wait_for(&monitor, "our stopped worker offline", |state| {
        state
            .worker(&node, clock::epoch_now())
            .filter(|worker| !worker.alive && worker.offline_at.is_some())
    })
    .await;
    let stats = monitor.receiver_stats();
    assert_eq!((stats.malformed, stats.dropped), (0, 0), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_events_channel_is_counted_and_ignored() {
    let env = TestEnv::new("monitor-garbage");
    let config = config(&env);
    let producer = producer(&config).await;
    let monitor = Monitor::start(producer.broker(), MonitorOptions::default())
        .await
        .unwrap();
    for raw in [
        &b"not json at all"[..],
        br#"{"body": "%%%", "content-type": "application/json", "properties": {"body_encoding": "base64"}}"#,
        b"\xff\xfe",
    ] {
        publish_raw(&env, "task.multi", raw).await;
    }
    publish_event(&env, json!([1, {"no": "type"}]), "task.multi").await;
    publish_event(
        &env,
        json!([{"type": "task-received", "uuid": "after-garbage", "name": "demo.add",
                "hostname": "w@h", "timestamp": 1.0, "clock": 1}]),
        "task.multi",
    )
    .await;
    wait_for(&monitor, "the good event after the garbage", |state| {
        state.task("after-garbage")
    })
    .await;
    let stats = monitor.receiver_stats();
    assert_eq!(
        (stats.malformed, stats.skipped, stats.events),
        (3, 2, 1),
        "{stats:?}"
    );
}

/// Issue 13's soak: buffers counted in batches held batches of up to 256 messages, and a
/// worker's `task.multi` message holds up to 24 events, so 1,024 buffered batches could be six
/// million events. A batch now stops taking messages once it holds `MAX_BATCH_EVENTS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_holds_at_most_max_batch_events() {
    use celeriac::events::{EventReceiver, MAX_BATCH_EVENTS};
    let env = TestEnv::new("monitor-batch");
    let producer = producer(&config(&env)).await;
    let mut receiver = EventReceiver::connect(producer.broker()).await.unwrap();
    let messages = 100;
    for message in 0..messages {
        let events: Vec<Value> = (0..24)
            .map(|n| {
                json!({"type": "task-received", "uuid": format!("b-{message}-{n}"),
                       "name": "demo.add", "hostname": "w@h", "timestamp": 1.0, "clock": n})
            })
            .collect();
        publish_event(&env, Value::Array(events), "task.multi").await;
    }
    // Every message is waiting before the first batch is taken.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut sizes = Vec::new();
    let mut total = 0;
    while total < messages * 24 {
        let mut batch = Vec::new();
        tokio::time::timeout(WAIT, receiver.recv_batch(&mut batch))
            .await
            .expect("the events arrive");
        total += batch.len();
        sizes.push(batch.len());
    }
    assert_eq!(total, 2_400);
    assert!(
        sizes.iter().all(|size| *size < MAX_BATCH_EVENTS + 24),
        "batch sizes {sizes:?}"
    );
}

/// Issue 13: events with 1 MiB names, hostnames and reprs were kept whole by the monitor (and so
/// by the history, the metrics and every snapshot); an event of a million numbers likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_events_are_cut_at_the_door_or_refused() {
    use celeriac::events::weight::{MAX_LABEL_BYTES, MAX_REPR_BYTES};
    let env = TestEnv::new("monitor-heavy");
    let config = config(&env);
    let producer = producer(&config).await;
    let monitor = Monitor::start(producer.broker(), MonitorOptions::default())
        .await
        .unwrap();
    let mib = "n".repeat(1 << 20);
    publish_event(
        &env,
        json!([{"type": "worker-heartbeat", "hostname": "w@h", "timestamp": 1.0,
                "loadavg": vec![0.5; 200_000]},
               {"type": "task-received", "uuid": "heavy", "name": mib, "hostname": mib,
                "args": mib, "kwargs": mib, "timestamp": 1.0, "clock": 1}]),
        "task.multi",
    )
    .await;
    let heavy = wait_for(&monitor, "the heavy task, cut", |state| state.task("heavy")).await;
    let name = heavy.name.as_deref().unwrap_or_default();
    assert!(
        name.len() <= MAX_LABEL_BYTES && name.ends_with('…'),
        "{}",
        name.len()
    );
    let worker = heavy.worker.as_deref().unwrap_or_default();
    assert!(worker.len() <= MAX_LABEL_BYTES, "{}", worker.len());
    assert!(heavy.args.as_deref().unwrap_or_default().len() <= MAX_REPR_BYTES);
    let stats = monitor.receiver_stats();
    assert_eq!(
        (stats.cut, stats.refused, stats.events),
        (1, 1, 1),
        "{stats:?}"
    );
    assert!(
        monitor
            .read(|state| state.worker("w@h", clock::epoch_now()))
            .is_none(),
        "the refused heartbeat made no worker"
    );
}

/// Starts Celery's own receiver (`peer_cli.py events`) and waits until it hears a probe.
async fn start_celery_listener(env: &TestEnv, seconds: u32) -> tokio::task::JoinHandle<Value> {
    let listener = {
        let env = env.clone();
        let seconds = seconds.to_string();
        tokio::spawn(async move {
            CeleryPeer::cli_async(&env, &["events", "--seconds", &seconds]).await
        })
    };
    let ready_key = env.key("events-ready");
    let mut redis = env.redis().await;
    eventually(WAIT, "Celery's event receiver to hear a probe", || {
        let env = env.clone();
        let ready_key = ready_key.clone();
        let mut redis = redis.clone();
        async move {
            publish_event(
                &env,
                json!({"type": "peer-probe", "hostname": "probe@test"}),
                "peer.probe",
            )
            .await;
            let ready: Option<String> = redis::cmd("GET")
                .arg(&ready_key)
                .query_async(&mut redis)
                .await
                .unwrap();
            ready.map(|_| ())
        }
    })
    .await;
    let _: () = redis::cmd("DEL")
        .arg(&ready_key)
        .query_async(&mut redis)
        .await
        .unwrap();
    listener
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_workers_tasks_and_heartbeats_match_celerys_own_state() {
    let env = TestEnv::new("monitor-py");
    let queue = env.queue("q");
    let config = config(&env);
    let producer = producer(&config).await;
    let monitor = Monitor::start(producer.broker(), MonitorOptions::default())
        .await
        .unwrap();
    let listener = start_celery_listener(&env, 14).await;
    let node = format!("py-{queue}@test");
    let mut peer = {
        let env = env.clone();
        let (queue, node) = (queue.clone(), node.clone());
        tokio::task::spawn_blocking(move || {
            CeleryPeer::worker_with_args(&env, &[&queue], &node, &["-E"])
        })
        .await
        .unwrap()
    };
    let options = || SendOptions::new().queue(&queue);
    let ok = producer
        .send_task("demo.add", vec![json!(2), json!(3)], Map::new(), options())
        .await
        .unwrap();
    let failed = producer
        .send_task("demo.fail", vec![json!("boom")], Map::new(), options())
        .await
        .unwrap();
    let flaky = producer
        .send_task("demo.flaky", vec![json!(1)], Map::new(), options())
        .await
        .unwrap();
    for result in [&ok, &failed, &flaky] {
        result.get(WAIT).await.unwrap();
    }
    let (succeeded, failure, retried) = wait_for(&monitor, "the Python worker's tasks", |state| {
        Some((
            task(state, ok.id.as_str(), TaskState::Success)?,
            task(state, failed.id.as_str(), TaskState::Failure)?,
            task(state, flaky.id.as_str(), TaskState::Success)?,
        ))
    })
    .await;
    assert_eq!(succeeded.result.as_deref(), Some("5"));
    assert_eq!(succeeded.worker.as_deref(), Some(node.as_str()));
    assert_eq!(failure.exception.as_deref(), Some("ValueError('boom')"));
    assert!(failure
        .traceback
        .as_deref()
        .unwrap()
        .contains("ValueError: boom"));
    assert_eq!(
        retried.retries, 1,
        "the second attempt was received with retries=1"
    );
    assert_eq!(retried.result.as_deref(), Some("2"));
    assert!(retried.retried.is_some());
    assert!(retried
        .exception
        .as_deref()
        .unwrap()
        .contains("flaky attempt 1 of 1"));
    let python_worker = wait_for(&monitor, "a heartbeat counting the three tasks", |state| {
        state
            .worker(&node, clock::epoch_now())
            .filter(|worker| worker.processed >= 3)
    })
    .await;
    assert!(python_worker.alive);
    assert_eq!(python_worker.sw_ident.as_deref(), Some("py-celery"));
    assert_eq!(python_worker.freq, Duration::from_secs(2));
    let names = monitor.read(|state| state.task_names());
    let flaky_counts = &names
        .iter()
        .find(|name| name.name == "demo.flaky")
        .unwrap()
        .counts;
    assert_eq!(
        (
            flaky_counts.received,
            flaky_counts.retried,
            flaky_counts.succeeded
        ),
        (2, 1, 1)
    );

    // Celery's own State saw the same.
    let heard = listener.await.unwrap();
    for (id, ours) in [
        (&ok.id, &succeeded),
        (&failed.id, &failure),
        (&flaky.id, &retried),
    ] {
        let theirs = &heard["tasks"][id.as_str()];
        assert_eq!(theirs["state"], json!(ours.state.as_str()), "{id}: {heard}");
        assert_eq!(theirs["name"], json!(ours.name), "{id}");
        assert_eq!(theirs["worker"], json!(node), "{id}");
    }
    assert_eq!(heard["tasks"][flaky.id.as_str()]["retries"], json!(1));
    assert_eq!(heard["workers"][&node]["alive"], json!(true), "{heard}");

    // Killed: no worker-offline, so only the heartbeat expiry (2 s × 200 %) can tell.
    let version = monitor.read(ClusterState::version);
    tokio::task::spawn_blocking(move || {
        peer.kill();
        peer
    })
    .await
    .unwrap();
    // The monitor notices the expiry by itself (no event announces it) and says so on the
    // change feed.
    let changes = wait_for(
        &monitor,
        "the killed worker's expiry on the change feed",
        |state| {
            let changes = state.changes_since(version, clock::epoch_now(), 0);
            changes
                .workers
                .iter()
                .any(|worker| worker.hostname == node && !worker.alive)
                .then_some(changes)
        },
    )
    .await;
    let gone = changes
        .workers
        .iter()
        .find(|worker| worker.hostname == node)
        .unwrap();
    assert_eq!(gone.offline_at, None, "no offline event was sent");
    assert!(
        gone.heartbeat_expires.unwrap() <= clock::now(),
        "expired by the heartbeat window: {gone:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_depths_per_priority_and_unacked() {
    let env = TestEnv::new("depth");
    let queue = env.queue("q");
    let config = config(&env);
    let producer = producer(&config).await;
    let mut first = None;
    for priority in [0u8, 0, 0, 5, 5, 9] {
        let sent = producer
            .send_task(
                "demo.add",
                vec![json!(1), json!(2)],
                Map::new(),
                SendOptions::new().queue(&queue).priority(priority),
            )
            .await
            .unwrap();
        first.get_or_insert(sent.id);
    }
    let broker = producer.broker();
    let depths = broker.queue_depths(&[&queue, "nobody"]).await.unwrap();
    assert_eq!(depths[0].messages, 6);
    let per_step: Vec<(u8, u64)> = depths[0]
        .priorities
        .iter()
        .map(|priority| (priority.step, priority.messages))
        .collect();
    assert_eq!(per_step, [(0, 3), (3, 2), (6, 0), (9, 1)]);
    assert_eq!(
        depths[0].priorities[0].oldest_task_id.as_deref(),
        first.as_ref().map(|id| id.as_str())
    );
    assert_eq!(
        depths[0].priorities[0].oldest_task_name.as_deref(),
        Some("demo.add")
    );
    assert_eq!(depths[1].messages, 0);
    let before = clock::now();
    let fetched = broker.fetch(std::slice::from_ref(&queue), 2).await.unwrap();
    assert_eq!(fetched.len(), 2);
    let unacked = broker.unacked_depth(10_000).await.unwrap();
    assert_eq!(unacked.messages, 2);
    assert!(unacked.complete);
    assert_eq!(unacked.by_routing_key.get(&queue), Some(&2));
    let oldest = unacked.oldest_delivered_at.unwrap();
    assert!(
        (oldest - before).num_seconds().abs() < 5,
        "{oldest} vs {before}"
    );
    let partial = broker.unacked_depth(1).await.unwrap();
    assert_eq!(partial.messages, 2);
}
