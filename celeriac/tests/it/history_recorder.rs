//! The history kept current from a running monitor: our worker's task events reach SQL, and a
//! monitor started after the tasks ran catches up from the result backend.

use crate::history::fresh_history;
use crate::support::{config, producer, RunningWorker};
use celeriac::events::{Monitor, MonitorOptions};
use celeriac::history::{record_from_monitor, RecorderOptions, TaskFilter};
use celeriac::producer::SendOptions;
use celeriac::testkit::{eventually, DatabaseKind, TestEnv};
use celeriac::TaskState;
use serde_json::{json, Map};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

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

    let monitor = Monitor::start(producer.broker(), MonitorOptions::default())
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
