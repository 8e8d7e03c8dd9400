//! The history kept current from a running monitor: our worker's task events reach SQL, and a
//! monitor started after the tasks ran catches up from the result backend.

use crate::history::fresh_history;
use crate::support::{config, producer, RunningWorker};
use celeriac::events::{Monitor, MonitorOptions};
use celeriac::history::{
    record_from_monitor, RecorderOptions, RecorderStats, TaskFilter, TaskHistory,
};

use celeriac::producer::{Producer, SendOptions};
use celeriac::testkit::{eventually, DatabaseKind, TestEnv};
use celeriac::TaskState;
use serde_json::{json, Map};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// A monitor on `producer`'s broker and a recorder into `history` (catching up from the
/// producer's backend), until the returned sender is used or dropped.
async fn spawn_recorder(
    producer: &Producer,
    history: &TaskHistory,
    options: RecorderOptions,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<RecorderStats>,
) {
    let monitor = Monitor::start(producer.broker(), MonitorOptions::default())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let history = history.clone();
    let backend = producer.backend().cloned();
    let recorder = tokio::spawn(async move {
        record_from_monitor(history, &monitor, backend, options, async {
            let _ = stopped.await;
        })
        .await
    });
    (stop, recorder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_results_both_reach_the_history() {
    let env = TestEnv::new("recorder").with_result_extended(true);
    let queue = env.queue("q");
    let mut config = config(&env);
    config.result_extended = true;
    let producer = producer(&config).await;
    let (_database, history) = fresh_history(DatabaseKind::Sqlite, "recorder").await;

    // Before any monitor runs: a task that only the result backend knows of.
    let quiet_worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let before = producer
        .send_task(
            "demo.add",
            vec![json!(1), json!(2)],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    before.get(WAIT).await.unwrap();
    quiet_worker.stop().await;

    let (stop, recorder) = spawn_recorder(&producer, &history, RecorderOptions::default()).await;
    eventually(
        WAIT,
        "the earlier task caught up from the result backend",
        || {
            let history = history.clone();
            let id = before.id.to_string();
            async move {
                let detail = history.task(&id).await.ok().flatten()?;
                (detail.task.state == TaskState::Success).then_some(())
            }
        },
    )
    .await;

    config.worker_send_task_events = true;
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    let failed = producer
        .send_task(
            "demo.fail",
            vec![json!("x")],
            Map::new(),
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let _ = failed.get(WAIT).await;
    eventually(
        WAIT,
        "the failed task recorded from events, with its worker",
        || {
            let history = history.clone();
            let id = failed.id.to_string();
            async move {
                let detail = history.task(&id).await.ok().flatten()?;
                (detail.task.state == TaskState::Failure && detail.task.worker.is_some())
                    .then_some(())
            }
        },
    )
    .await;
    let failures = TaskFilter {
        states: vec![TaskState::Failure],
        ..TaskFilter::default()
    };
    // The result backend's database is shared by every test, so the catch-up may have found
    // other tests' failures too.
    let page = history.list(&failures, None, 1_000).await.unwrap();
    assert!(page
        .tasks
        .iter()
        .any(|task| task.task_id == failed.id.to_string()));
    worker.stop().await;
    let _ = stop.send(());
    let stats = recorder.await.unwrap();
    assert!(stats.events >= 2, "{stats:?}");
    assert_eq!(stats.catch_ups, 1);
}

/// Issue 13: after Redis was down a while, the history missed tasks and kept rows in RECEIVED
/// whose results said SUCCESS: the events of the outage were lost (PUB/SUB keeps nothing),
/// the results were stored once Redis was back. The recorder now catches up after its
/// receiver reconnects and looks up rows left unfinished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_the_history_agrees_with_the_result_backend() {
    use celeriac::task::{Registry, Task, TaskError};
    use celeriac::testkit::RedisServer;
    let mut server = RedisServer::start_private_persistent();
    let env = TestEnv::new("recorder-outage");
    let queue = env.queue("q");
    let mut config = config(&env);
    config.broker_url = server.url(0);
    config.result_backend = Some(server.url(0));
    config.worker_send_task_events = true;
    config.task_acks_late = true;
    let mut registry = Registry::new();
    registry.register(
        Task::new("outage.step", |n: i64| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<i64, TaskError>(n)
        })
        .arg_names(["n"]),
    );
    let producer = producer(&config).await;
    let mut sent = Vec::new();
    for n in 0..40 {
        let result = producer
            .send_task(
                "outage.step",
                vec![json!(n)],
                Map::new(),
                SendOptions::new().queue(&queue),
            )
            .await
            .unwrap();
        sent.push(result.id.to_string());
    }
    let (_database, history) = fresh_history(DatabaseKind::Sqlite, "recorder-outage").await;
    let options = RecorderOptions {
        reconcile_every: Duration::from_secs(1),
        stuck_after: Duration::from_secs(2),
        ..RecorderOptions::default()
    };
    let (stop, recorder) = spawn_recorder(&producer, &history, options).await;
    let worker = RunningWorker::start(config.clone(), Some(registry), &[&queue], 4).await;
    let counters = worker.counters.clone();
    eventually(WAIT, "a few tasks started", || {
        let counters = counters.clone();
        async move {
            (counters
                .processed
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 8)
                .then_some(())
        }
    })
    .await;
    server.kill();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _server = server.restarted().await;
    for id in &sent {
        let what = format!("task {id} SUCCESS in the history");
        eventually(Duration::from_secs(90), &what, || {
            let history = history.clone();
            let id = id.clone();
            async move {
                let detail = history.task(&id).await.ok().flatten()?;
                (detail.task.state == TaskState::Success).then_some(())
            }
        })
        .await;
    }
    worker.stop().await;
    let _ = stop.send(());
    let stats = recorder.await.unwrap();
    assert!(stats.reconciles >= 1, "{stats:?}");
}

/// Issue 13's soak: the recorder ran each catch-up inline, so a catch-up over a large backend
/// stopped it from taking events, it fell behind the monitor's broadcast and missed batches,
/// and each miss asked for another catch-up (the history ended 350,000 tasks behind). It now
/// walks the backend a page at a time between its writes and keeps receiving meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_catch_up_does_not_make_the_recorder_miss_events() {
    use celeriac::broker::Keys;
    use celeriac::protocol::event;
    use celeriac::testkit::RedisServer;
    let server = RedisServer::start_private();
    let env = TestEnv::new("recorder-busy");
    let mut config = config(&env);
    config.broker_url = server.url(0);
    config.result_backend = Some(server.url(1));
    let producer = producer(&config).await;
    let client = redis::Client::open(server.url(1)).unwrap();
    let mut backend = client.get_multiplexed_async_connection().await.unwrap();
    for chunk in 0..40 {
        let mut pipe = redis::pipe();
        for n in 0..500 {
            let id = format!("old-{chunk}-{n}");
            let meta = json!({
                "status": "SUCCESS", "result": n, "traceback": null, "children": [],
                "date_done": "2026-12-07T10:00:00.000000", "task_id": id,
            });
            pipe.set(format!("celery-task-meta-{id}"), meta.to_string())
                .ignore();
        }
        pipe.query_async::<()>(&mut backend).await.unwrap();
    }

    let (_database, history) = fresh_history(DatabaseKind::Sqlite, "recorder-busy").await;
    let monitor = Monitor::start(
        producer.broker(),
        MonitorOptions {
            subscriber_capacity: 8,
            ..MonitorOptions::default()
        },
    )
    .await
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let recorder = {
        let history = history.clone();
        let backend = producer.backend().cloned();
        tokio::spawn(async move {
            record_from_monitor(
                history,
                &monitor,
                backend,
                RecorderOptions::default(),
                async {
                    let _ = stopped.await;
                },
            )
            .await
        })
    };

    // While the catch-up of 20,000 results runs: 300 event messages, one batch each.
    let channel =
        Keys::new(env.key_prefix.clone(), vec![0]).fanout_channel("celeryev", "task.received");
    let mut broker = redis::Client::open(server.url(0))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ids: Vec<String> = (0..300).map(|n| format!("new-{n}")).collect();
    for (clock, id) in ids.iter().enumerate() {
        let body = json!({
            "hostname": "busy@host", "utcoffset": 0, "pid": 1, "clock": clock,
            "uuid": id, "name": "demo.add", "args": "()", "kwargs": "{}",
            "timestamp": celeriac::clock::epoch_now(), "type": "task-received",
        });
        let envelope = event::envelope(&body, "busy@host", "task.received", "tag".into());
        redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(envelope.to_json())
            .query_async::<i64>(&mut broker)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for id in &ids {
        let what = format!("task {id} RECEIVED in the history");
        eventually(Duration::from_secs(90), &what, || {
            let history = history.clone();
            let id = id.clone();
            async move { history.task(&id).await.ok().flatten().map(|_| ()) }
        })
        .await;
    }
    eventually(
        Duration::from_secs(90),
        "the catch-up's last result",
        || {
            let history = history.clone();
            async move { history.task("old-39-499").await.ok().flatten().map(|_| ()) }
        },
    )
    .await;
    let _ = stop.send(());
    let stats = recorder.await.unwrap();
    assert_eq!(stats.missed_batches, 0, "{stats:?}");
    assert_eq!(stats.catch_ups, 1, "{stats:?}");
    assert_eq!(stats.events, 300, "{stats:?}");
}
