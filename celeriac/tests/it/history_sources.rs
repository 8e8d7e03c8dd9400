//! Where the history's facts come from, on both databases: a catch-up from a real Redis result
//! backend written by our worker and by Python Celery 5.4 (both with `result_extended`), and
//! `retry_task` running a past failed task again on each worker, linked to the original, or
//! refusing when the original arguments are unknown.

use crate::history::{fresh_history, on_both};
use crate::support::{config, producer, RunningWorker};
use celeriac::backend::{RedisBackend, ResultBackend};
use celeriac::history::{retry_task, RetryError, TaskEvent, TaskEventKind, RETRY_OF_HEADER};
use celeriac::producer::SendOptions;
use celeriac::protocol::{Envelope, ResultMeta, TaskMessage};
use celeriac::testkit::{CeleryPeer, DatabaseKind, TestEnv};
use celeriac::TaskState;
use redis::AsyncCommands;
use serde_json::{json, Map, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

on_both!(
    catch_up_reads_our_workers_extended_results,
    catch_up_and_retry_with_python_celery,
    retry_of_a_past_failed_task_runs_again_and_is_linked,
    retry_refuses_when_the_arguments_are_unknown,
);

async fn backend(env: &TestEnv) -> ResultBackend {
    RedisBackend::connect(&env.backend_url, Some(Duration::from_secs(3600)))
        .await
        .unwrap()
        .into()
}

async fn catch_up_reads_our_workers_extended_results(kind: DatabaseKind) {
    let (_database, history) = fresh_history(kind, "catchup_rust").await;
    let env = TestEnv::new("hist-rs").with_result_extended(true);
    let queue = env.queue("q");
    let config = config(&env);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    let producer = producer(&config).await;
    let options = SendOptions::new().queue(&queue);
    let add = producer
        .send_task(
            "demo.add",
            vec![json!(2), json!(3)],
            Map::new(),
            options.clone(),
        )
        .await
        .unwrap();
    let fail = producer
        .send_task("demo.fail", vec![json!("boom")], Map::new(), options)
        .await
        .unwrap();
    assert_eq!(add.get(WAIT).await.unwrap().status, TaskState::Success);
    assert_eq!(fail.get(WAIT).await.unwrap().status, TaskState::Failure);
    worker.stop().await;

    // The monitor was not listening: the history is empty until it catches up.
    assert!(history.task(add.id.as_str()).await.unwrap().is_none());
    let report = history.catch_up(&backend(&env).await).await.unwrap();
    assert!(report.results >= 2, "{report:?}");

    let added = history.task(add.id.as_str()).await.unwrap().unwrap().task;
    assert_eq!(added.state, TaskState::Success);
    assert_eq!(added.name.as_deref(), Some("demo.add"));
    assert_eq!(added.args, Some(vec![json!(2), json!(3)]));
    assert_eq!(added.kwargs, Some(Map::new()));
    assert_eq!(added.args_repr.as_deref(), Some("(2, 3)"));
    assert_eq!(added.result.as_deref(), Some("5"));
    assert_eq!(added.worker, Some(format!("rust-{queue}@test")));
    assert_eq!(added.queue.as_deref(), Some(queue.as_str()));
    assert_eq!(added.retries, Some(0));
    assert!(added.done_at.is_some());
    let failed = history.task(fail.id.as_str()).await.unwrap().unwrap().task;
    assert_eq!(failed.state, TaskState::Failure);
    assert_eq!(failed.exception.as_deref(), Some("ValueError('boom')"));

    // A second catch-up finds the same facts and leaves the rows as they were.
    history.catch_up(&backend(&env).await).await.unwrap();
    let again = history.task(add.id.as_str()).await.unwrap().unwrap().task;
    assert_eq!(again, added);
}

async fn python_send(env: &TestEnv, args: &[&str]) -> String {
    let mut command = vec!["send"];
    command.extend_from_slice(args);
    let sent = CeleryPeer::cli_async(env, &command).await;
    sent["task_id"].as_str().expect("a task id").to_owned()
}

async fn python_result(env: &TestEnv, task_id: &str) -> Value {
    CeleryPeer::cli_async(env, &["result", task_id, "--timeout", "30"]).await
}

async fn catch_up_and_retry_with_python_celery(kind: DatabaseKind) {
    let (_database, history) = fresh_history(kind, "catchup_py").await;
    let env = TestEnv::new("hist-py").with_result_extended(true);
    let queue = env.queue("q");
    let peer = CeleryPeer::worker(&env, &[&queue], "hist-py@%h");
    let add = python_send(&env, &["demo.add", "--args", "[4, 5]", "--queue", &queue]).await;
    let fail = python_send(
        &env,
        &[
            "demo.fail",
            "--args",
            "[\"kaput\"]",
            "--kwargs",
            "{}",
            "--queue",
            &queue,
        ],
    )
    .await;
    assert_eq!(python_result(&env, &add).await["status"], json!("SUCCESS"));
    assert_eq!(python_result(&env, &fail).await["status"], json!("FAILURE"));

    history.catch_up(&backend(&env).await).await.unwrap();
    let added = history.task(&add).await.unwrap().unwrap().task;
    assert_eq!(added.state, TaskState::Success);
    assert_eq!(added.name.as_deref(), Some("demo.add"));
    assert_eq!(added.args, Some(vec![json!(4), json!(5)]));
    assert_eq!(added.result.as_deref(), Some("9"));
    assert!(
        added
            .worker
            .as_deref()
            .is_some_and(|worker| worker.starts_with("hist-py@")),
        "{:?}",
        added.worker
    );
    assert_eq!(added.queue.as_deref(), Some(queue.as_str()));
    let failed = history.task(&fail).await.unwrap().unwrap().task;
    assert_eq!(failed.state, TaskState::Failure);
    assert_eq!(failed.exception.as_deref(), Some("ValueError('kaput')"));
    assert!(failed.traceback.as_deref().unwrap_or("").contains("kaput"));

    // Run the failed Python task again: same name, arguments and queue, on the Python worker.
    let producer = producer(&config(&env)).await;
    let rerun = retry_task(&history, &producer, &fail).await.unwrap();
    assert_ne!(rerun.id.as_str(), fail);
    let result = python_result(&env, rerun.id.as_str()).await;
    assert_eq!(result["status"], json!("FAILURE"), "{result}");
    assert_eq!(result["result"]["message"], json!("kaput"));
    let meta = CeleryPeer::cli_async(&env, &["meta", rerun.id.as_str()]).await;
    assert_eq!(meta["args"], json!(["kaput"]), "{meta}");
    assert_eq!(meta["queue"], json!(queue));
    let original = history.task(&fail).await.unwrap().unwrap();
    assert_eq!(original.retried_as, [rerun.id.as_str().to_owned()]);
    let linked = history.task(rerun.id.as_str()).await.unwrap().unwrap().task;
    assert_eq!(linked.retried_from.as_deref(), Some(fail.as_str()));
    drop(peer);
}

async fn retry_of_a_past_failed_task_runs_again_and_is_linked(kind: DatabaseKind) {
    let (_database, history) = fresh_history(kind, "retry_rust").await;
    let env = TestEnv::new("hist-retry").with_result_extended(true);
    let queue = env.queue("q");
    let config = config(&env);
    let producer = producer(&config).await;
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let kwargs = Map::from_iter([("message".to_owned(), json!("it broke"))]);
    let original = producer
        .send_task(
            "demo.fail",
            vec![],
            kwargs,
            SendOptions::new().queue(&queue),
        )
        .await
        .unwrap();
    let meta = original.get(WAIT).await.unwrap();
    assert_eq!(meta.status, TaskState::Failure);
    worker.stop().await;
    // The monitor saw the worker's events (only reprs) and caught up with the backend.
    let mut received = TaskEvent::new(
        TaskEventKind::Received,
        original.id.as_str(),
        format!("rust-{queue}@test"),
        celeriac::clock::now(),
    );
    received.name = Some("demo.fail".into());
    received.kwargs = Some("{'message': 'it broke'}".into());
    history.record_events(&[received]).await.unwrap();
    history.catch_up(&backend(&env).await).await.unwrap();

    let rerun = retry_task(&history, &producer, original.id.as_str())
        .await
        .unwrap();

    // The new message waits in the same queue, with a new id and the link header.
    let mut redis = env.redis().await;
    let waiting: Vec<String> = redis
        .lrange(format!("{}{}", env.key_prefix, queue), 0, -1)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
    let envelope = Envelope::from_json(waiting[0].as_bytes()).unwrap();
    let message = TaskMessage::decode(&envelope).unwrap();
    assert_eq!(message.headers.id.as_str(), rerun.id.as_str());
    assert_eq!(message.headers.task, "demo.fail");
    assert_eq!(message.kwargs["message"], json!("it broke"));
    assert_eq!(
        message.headers.extra.get(RETRY_OF_HEADER),
        Some(&json!(original.id.as_str()))
    );
    assert_eq!(
        message.headers.root_id.as_deref(),
        Some(rerun.id.as_str()),
        "a stand-alone task's re-run is its own root"
    );
    let pending = history.task(rerun.id.as_str()).await.unwrap().unwrap().task;
    assert_eq!(pending.state, TaskState::Pending);
    assert_eq!(pending.retried_from.as_deref(), Some(original.id.as_str()));

    // A worker runs it again.
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let rerun_meta = rerun.get(WAIT).await.unwrap();
    worker.stop().await;
    assert_eq!(rerun_meta.status, TaskState::Failure);
    assert_eq!(
        rerun_meta.exception().unwrap().repr(),
        "ValueError('it broke')"
    );
    history.catch_up(&backend(&env).await).await.unwrap();
    let linked = history.task(rerun.id.as_str()).await.unwrap().unwrap().task;
    assert_eq!(linked.state, TaskState::Failure);
    assert_eq!(linked.retried_from.as_deref(), Some(original.id.as_str()));
    let detail = history.task(original.id.as_str()).await.unwrap().unwrap();
    assert_eq!(detail.retried_as, [rerun.id.as_str().to_owned()]);

    // The re-run can itself be re-run: its arguments are in the history.
    let second = retry_task(&history, &producer, rerun.id.as_str())
        .await
        .unwrap();
    let second_task = history
        .task(second.id.as_str())
        .await
        .unwrap()
        .unwrap()
        .task;
    assert_eq!(second_task.retried_from.as_deref(), Some(rerun.id.as_str()));
}

async fn retry_refuses_when_the_arguments_are_unknown(kind: DatabaseKind) {
    let (_database, history) = fresh_history(kind, "retry_refused").await;
    let env = TestEnv::new("hist-refuse");
    let producer = producer(&config(&env)).await;
    // Known from events only, and the backend holds a result without result_extended.
    let task_id = uuid::Uuid::new_v4().to_string();
    let mut received = TaskEvent::new(
        TaskEventKind::Received,
        &task_id,
        "w1@h",
        celeriac::clock::now(),
    );
    received.name = Some("demo.add".into());
    received.args = Some("(1, 2)".into());
    history.record_events(&[received]).await.unwrap();
    let plain = ResultMeta::new(
        &task_id,
        TaskState::Failure,
        json!({"exc_type": "ValueError", "exc_message": ["x"], "exc_module": "builtins"}),
    );
    backend(&env).await.store(&plain).await.unwrap();

    let error = retry_task(&history, &producer, &task_id).await.unwrap_err();
    assert!(
        matches!(&error, RetryError::ArgumentsUnknown { task_id: refused, .. } if refused == &task_id),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("original arguments are not known"), "{text}");
    assert!(text.contains("result_extended"), "{text}");

    let unknown = uuid::Uuid::new_v4().to_string();
    let error = retry_task(&history, &producer, &unknown).await.unwrap_err();
    assert!(matches!(error, RetryError::UnknownTask { .. }), "{error:?}");
    // Nothing was sent.
    assert_eq!(
        history.count(&Default::default(), 10).await.unwrap().tasks,
        1
    );
}
