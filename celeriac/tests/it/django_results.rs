//! `result_backend = "django-db"` against the real thing: the djshop project of
//! `examples/django` (Django 5.2, django-celery-results 2.6, Celery 5.4) migrated on a fresh
//! PostgreSQL schema or SQLite file, its Python worker, and ours, on both databases.
//!
//! - A Rust worker's results (success and failure) are read by Django's `AsyncResult(id).get()`
//!   and are the rows django-celery-results writes (columns checked through the ORM).
//! - A Python worker's results are read by our `AsyncResult`, caught up into the history, and
//!   retried and bulk-retried from it: the arguments come back from the stored reprs.
//! - `celery.backend_cleanup` on our worker deletes expired rows; a database without Django's
//!   tables is refused with what to run.
//! - Chords join through django-celery-results' `chordcounter`, sent by Django or by us and run
//!   by our worker; a failed member fails the body with Celery's `ChordError`.

use crate::history::{fresh_history, on_both};
use crate::support::{config, producer, RunningWorker};
use celeriac::backend::{BackendError, DjangoBackend, ResultBackend};
use celeriac::canvas::{chain, chord, Signature};
use celeriac::config::Config;
use celeriac::history::{retry_task, retry_tasks};
use celeriac::producer::SendOptions;
use celeriac::routing::{Route, TaskRoutes};
use celeriac::testkit::{DatabaseKind, DjangoProject, TestDatabase, TestEnv};
use celeriac::TaskState;
use serde_json::{json, Map};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

on_both!(
    django_reads_a_rust_workers_results,
    we_read_retry_and_bulk_retry_a_python_workers_results,
    backend_cleanup_deletes_expired_rows,
    chords_join_in_djangos_chord_counter,
);

fn django_config(env: &TestEnv, project: &DjangoProject) -> Config {
    let mut config = config(env);
    config.result_backend = Some("django-db".into());
    config.database_url = project.database_url();
    config.result_extended = true;
    config
}

/// Prints, as JSON, what Django's `AsyncResult` and ORM say about task `task_id`.
fn describe(task_id: &str) -> String {
    format!(
        r#"
import json
from celery.result import AsyncResult
from django_celery_results.models import TaskResult
result = AsyncResult("{task_id}")
value = result.get(timeout=30, propagate=False)
row = TaskResult.objects.get(task_id="{task_id}")
print(json.dumps({{
    "status": result.status,
    "value": value if result.successful() else None,
    "exception": type(value).__name__ if result.failed() else None,
    "exception_text": str(value) if result.failed() else None,
    "task_name": row.task_name, "task_args": row.task_args, "task_kwargs": row.task_kwargs,
    "worker": row.worker, "content_type": row.content_type,
    "content_encoding": row.content_encoding, "meta": row.meta,
    "traceback": row.traceback, "has_date_done": row.date_done is not None,
    "has_date_created": row.date_created is not None,
}}))
"#
    )
}

async fn django_reads_a_rust_workers_results(kind: DatabaseKind) {
    let env = TestEnv::new("django-rs").with_result_extended(true);
    let project = DjangoProject::new(&env, kind).await;
    let queue = env.queue("rust");
    let config = django_config(&env, &project);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;
    let producer = producer(&config).await;
    let options = SendOptions::new().queue(&queue);
    let mut kwargs = Map::new();
    kwargs.insert("y".into(), json!(3));
    let added = producer
        .send_task("demo.add", vec![json!(2)], kwargs, options.clone())
        .await
        .unwrap();
    let failed = producer
        .send_task("demo.fail", vec![json!("boom")], Map::new(), options)
        .await
        .unwrap();
    // Ours reads it back too (polling the table).
    assert_eq!(added.get(WAIT).await.unwrap().result, json!(5));

    let seen = project.shell(&describe(added.id.as_str())).await;
    assert_eq!(seen["status"], "SUCCESS", "{seen}");
    assert_eq!(seen["value"], 5, "{seen}");
    assert_eq!(seen["task_name"], "demo.add", "{seen}");
    // django-celery-results' encoding: the JSON of the message's argsrepr.
    assert_eq!(seen["task_args"], "\"(2,)\"", "{seen}");
    assert_eq!(seen["task_kwargs"], "\"{'y': 3}\"", "{seen}");
    assert_eq!(seen["worker"], format!("rust-{queue}@test"), "{seen}");
    assert_eq!(seen["content_type"], "application/json", "{seen}");
    assert_eq!(seen["content_encoding"], "utf-8", "{seen}");
    assert_eq!(seen["meta"], "{\"children\":[]}", "{seen}");
    assert_eq!(seen["has_date_done"], true, "{seen}");
    assert_eq!(seen["has_date_created"], true, "{seen}");

    let seen = project.shell(&describe(failed.id.as_str())).await;
    assert_eq!(seen["status"], "FAILURE", "{seen}");
    assert_eq!(seen["exception"], "ValueError", "{seen}");
    assert_eq!(seen["exception_text"], "boom", "{seen}");
    assert!(
        seen["traceback"]
            .as_str()
            .is_some_and(|text| !text.is_empty()),
        "{seen}"
    );
    worker.stop().await;
}

async fn we_read_retry_and_bulk_retry_a_python_workers_results(kind: DatabaseKind) {
    let env = TestEnv::new("django-py").with_result_extended(true);
    let project = DjangoProject::new(&env, kind).await;
    let queue = env.queue("py");
    let _python = project.worker(&[&queue], &format!("{queue}@%h"));
    let mut config = django_config(&env, &project);
    // django-db keeps no queue: a re-run goes where the routes send its name, as the team's
    // CELERY_TASK_ROUTES would.
    config.task_routes =
        TaskRoutes::new(vec![("orders.tasks.*".into(), Route::queue(&queue))]).unwrap();
    let producer = producer(&config).await;

    // Sent by Django, run by Python, read by us.
    let sent = project
        .shell(&format!(
            r#"
import json
from orders.tasks import add, divide
ok = add.apply_async((4, 5), queue="{queue}")
bad = divide.apply_async((1,), {{"b": 0}}, queue="{queue}")
ok.get(timeout=30); bad.get(timeout=30, propagate=False)
print(json.dumps({{"ok": ok.id, "bad": bad.id}}))
"#
        ))
        .await;
    let ok_id = sent["ok"].as_str().unwrap().to_owned();
    let bad_id = sent["bad"].as_str().unwrap().to_owned();
    let ok = producer
        .async_result(ok_id.as_str())
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(ok.status, TaskState::Success);
    assert_eq!(ok.result, json!(9));
    assert_eq!(ok.name.as_deref(), Some("orders.tasks.add"));
    assert_eq!(ok.args, Some(json!([4, 5])));
    let bad = producer
        .async_result(bad_id.as_str())
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(bad.status, TaskState::Failure);
    assert_eq!(
        bad.exception().map(|exception| exception.exc_type),
        Some("ZeroDivisionError".to_owned())
    );
    assert_eq!(bad.args, Some(json!([1])));
    assert_eq!(bad.kwargs, Some(json!({"b": 0})));

    // A monitor that was not running catches up from the table.
    let (_database, history) = fresh_history(kind, "django_history").await;
    let backend = producer.backend().unwrap();
    let report = history.catch_up(backend).await.unwrap();
    assert!(report.results >= 2, "{report:?}");
    let record = history.task(&bad_id).await.unwrap().unwrap().task;
    assert_eq!(record.state, TaskState::Failure);
    assert_eq!(record.name.as_deref(), Some("orders.tasks.divide"));

    // Retried from the history: the same arguments reach the Python worker again.
    let rerun = retry_task(&history, &producer, &bad_id).await.unwrap();
    let rerun_meta = rerun.get(WAIT).await.unwrap();
    assert_eq!(rerun_meta.status, TaskState::Failure);
    assert_eq!(rerun_meta.args, Some(json!([1])));
    assert_eq!(rerun_meta.kwargs, Some(json!({"b": 0})));
    assert_eq!(rerun_meta.name.as_deref(), Some("orders.tasks.divide"));

    // And in bulk, the two failures and the success all sent again.
    let report = retry_tasks(
        &history,
        &producer,
        &[bad_id.clone(), ok_id.clone(), rerun.id.0.clone()],
        None,
    )
    .await;
    assert_eq!((report.retried, report.failed), (3, 0), "{report:?}");
    let count = project
        .shell(
            r#"
import json, time
from django_celery_results.models import TaskResult
deadline = time.time() + 30
while TaskResult.objects.filter(task_name__startswith="orders.tasks.").count() < 6 and time.time() < deadline:
    time.sleep(0.2)
print(json.dumps({"rows": TaskResult.objects.filter(task_name__startswith="orders.tasks.").count(),
                  "adds": TaskResult.objects.filter(task_name="orders.tasks.add", status="SUCCESS").count()}))
"#,
        )
        .await;
    assert_eq!(count, json!({"rows": 6, "adds": 2}));
}

async fn backend_cleanup_deletes_expired_rows(kind: DatabaseKind) {
    let env = TestEnv::new("django-clean");
    let project = DjangoProject::new(&env, kind).await;
    let queue = env.queue("rust");
    let mut config = django_config(&env, &project);
    config.result_expires = Some(3600.0);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 1).await;
    let producer = producer(&config).await;
    let options = SendOptions::new().queue(&queue);
    let old = producer
        .send_task(
            "demo.add",
            vec![json!(1), json!(1)],
            Map::new(),
            options.clone(),
        )
        .await
        .unwrap();
    let fresh = producer
        .send_task(
            "demo.add",
            vec![json!(2), json!(2)],
            Map::new(),
            options.clone(),
        )
        .await
        .unwrap();
    old.get(WAIT).await.unwrap();
    fresh.get(WAIT).await.unwrap();
    project
        .shell(&format!(
            r#"
import json, datetime
from django.utils import timezone
from django_celery_results.models import TaskResult
n = TaskResult.objects.filter(task_id="{}").update(date_done=timezone.now() - datetime.timedelta(hours=2))
print(json.dumps(n))
"#,
            old.id
        ))
        .await;
    let cleanup = producer
        .send_task("celery.backend_cleanup", Vec::new(), Map::new(), options)
        .await
        .unwrap();
    cleanup.get(WAIT).await.unwrap();
    assert!(
        old.get(Duration::from_millis(10)).await.is_err(),
        "expired row kept"
    );
    assert_eq!(
        producer
            .async_result(old.id.as_str())
            .state()
            .await
            .unwrap(),
        TaskState::Pending
    );
    assert_eq!(fresh.get(WAIT).await.unwrap().result, json!(4));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_djangos_tables_is_refused_with_what_to_run() {
    let database = TestDatabase::new(DatabaseKind::Sqlite, "django_missing");
    // A database that exists but was never migrated by Django.
    celeriac::db::Database::connect(&database.url)
        .await
        .unwrap();
    let error = DjangoBackend::connect(&database.url, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::TablesMissing { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("django_celery_results_taskresult"), "{text}");
    assert!(
        text.contains("manage.py migrate django_celery_results"),
        "{text}"
    );
    // Through the configuration, as `celeriac worker` would meet it.
    let config = Config {
        result_backend: Some("django-db".into()),
        database_url: database.url.clone(),
        ..Config::default()
    };
    let refused = ResultBackend::from_config(&config).await.unwrap_err();
    assert!(matches!(refused, BackendError::TablesMissing { .. }));
}

async fn chords_join_in_djangos_chord_counter(kind: DatabaseKind) {
    let env = TestEnv::new("django-chord").with_result_extended(true);
    let project = DjangoProject::new(&env, kind).await;
    let queue = env.queue("rust");
    let config = django_config(&env, &project);
    let worker = RunningWorker::start(config.clone(), None, &[&queue], 2).await;

    // Sent by Django: its apply_chord creates the counter, our worker counts and fires.
    let from_django = project
        .shell(&format!(
            r#"
import json
from celery import chord, signature
from django_celery_results.models import ChordCounter
q = "{queue}"
result = chord([signature("demo.add", (i, i), queue=q) for i in (1, 2, 3)], signature("demo.tsum", queue=q)).apply_async()
print(json.dumps({{"sum": result.get(timeout=30), "counters": ChordCounter.objects.count()}}))
"#
        ))
        .await;
    assert_eq!(from_django, json!({"sum": 12, "counters": 0}));

    // Sent by us, read by Django; a failed member fails the body.
    let producer = producer(&config).await;
    let member = |name: &str, args: serde_json::Value| {
        Signature::new(name)
            .args(args.as_array().cloned().unwrap_or_default())
            .option("queue", json!(queue))
    };
    let sent = producer
        .apply_signature(chord(
            [
                member("demo.add", json!([5, 5])),
                member("demo.add", json!([1, 1])),
            ],
            member("demo.tsum", json!([])),
        ))
        .await
        .unwrap();
    let body = producer.async_result(sent.id()).get(WAIT).await.unwrap();
    assert_eq!(body.result, json!(12));
    let seen = project.shell(&describe(sent.id())).await;
    assert_eq!(seen["value"], 12, "{seen}");
    let failing = producer
        .apply_signature(chord(
            [
                member("demo.add", json!([1, 1])),
                member("demo.fail", json!(["header"])),
            ],
            member("demo.tsum", json!([])),
        ))
        .await
        .unwrap();
    let body = producer.async_result(failing.id()).get(WAIT).await.unwrap();
    assert_eq!(body.status, TaskState::Failure);
    let exception = body.exception().unwrap();
    assert_eq!(exception.exc_type, "ChordError");
    assert!(
        exception.message().contains("raised ValueError('header')"),
        "{exception:?}"
    );
    // Members that are not plain tasks cannot be counted here: refused before anything is sent.
    let nested = producer
        .apply_signature(chord(
            [chain([
                member("demo.add", json!([1, 1])),
                member("demo.add", json!([2])),
            ])],
            member("demo.tsum", json!([])),
        ))
        .await
        .unwrap_err();
    let text = celeriac::error::chain(&nested);
    assert!(text.contains("plain tasks"), "{text}");
    worker.stop().await;
}
