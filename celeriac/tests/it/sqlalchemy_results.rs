//! Celery's SQLAlchemy result backend (`db+postgresql+psycopg://…`, `db+sqlite:///…`) shared by
//! a real Celery 5.4 worker and ours, on both databases: each reads the other's
//! `celery_taskmeta` rows (pickled results, JSON arguments), a Python task is retried from the
//! history with its exact arguments, `celery.backend_cleanup` deletes expired rows, and a chord
//! (which Celery joins there by polling with `celery.chord_unlock`) is refused before anything
//! is sent.

use crate::history::{fresh_history, on_both};
use crate::support::{config, producer, RunningWorker};
use celeriac::canvas::{chord, Signature};
use celeriac::db::{Database, DatabaseOptions};
use celeriac::history::retry_task;
use celeriac::producer::SendOptions;
use celeriac::testkit::{CeleryPeer, DatabaseKind, TestDatabase, TestEnv};
use celeriac::TaskState;
use serde_json::{json, Map};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

on_both!(sqlalchemy_results_cross_between_python_and_rust);

/// The `db+` URL of a fresh database of `kind`, and SQL access to it for the test.
async fn results_database(kind: DatabaseKind) -> (TestDatabase, String, Database) {
    let database = TestDatabase::new(kind, "sqlalchemy");
    match kind {
        DatabaseKind::Sqlite => {
            let path = database.url.trim_start_matches("sqlite://").to_owned();
            let url = format!("db+sqlite:///{path}");
            let sql = Database::connect_new_file(&DatabaseOptions::new(database.url.clone()))
                .await
                .unwrap();
            (database, url, sql)
        }
        DatabaseKind::Postgres => {
            let schema = database.schema.clone().unwrap();
            let sql =
                Database::connect_with(&DatabaseOptions::new(database.url.clone()).schema(&schema))
                    .await
                    .unwrap();
            let base = database
                .url
                .replace("postgres://", "db+postgresql+psycopg://");
            let url = format!("{base}?options=-c%20search_path%3D{schema}");
            (database, url, sql)
        }
    }
}

async fn sqlalchemy_results_cross_between_python_and_rust(kind: DatabaseKind) {
    let (_database, url, sql) = results_database(kind).await;
    let mut env = TestEnv::new("sqla").with_result_extended(true);
    env.backend_url = url.clone();
    let python = env.queue("py");
    let rust = env.queue("rs");
    let mut config = config(&env);
    config.result_backend = Some(url.clone());
    config.result_expires = Some(3600.0);
    // Ours first: it creates Celery's tables, with every extended column, as Celery would.
    let worker = RunningWorker::start(config.clone(), None, &[&rust], 2).await;
    let _peer = CeleryPeer::worker(&env, &[&python], "py-sqla@%h");
    let producer = producer(&config).await;

    // Python runs, we read: the pickled result, the JSON arguments, the exception.
    let options = SendOptions::new().queue(&python);
    let added = producer
        .send_task(
            "demo.add",
            vec![json!(2), json!(3)],
            Map::new(),
            options.clone(),
        )
        .await
        .unwrap();
    let meta = added.get(WAIT).await.unwrap();
    assert_eq!(meta.result, json!(5));
    assert_eq!(meta.name.as_deref(), Some("demo.add"));
    assert_eq!(meta.args, Some(json!([2, 3])));
    assert_eq!(meta.queue.as_deref(), Some(python.as_str()));
    let failed = producer
        .send_task("demo.fail", vec![json!("boom")], Map::new(), options)
        .await
        .unwrap();
    let meta = failed.get(WAIT).await.unwrap();
    assert_eq!(meta.status, TaskState::Failure);
    let exception = meta.exception().unwrap();
    assert_eq!(
        (exception.exc_type.as_str(), exception.message()),
        ("ValueError", "boom".to_owned())
    );

    // We run, Python reads.
    let sent = CeleryPeer::cli_async(
        &env,
        &["send", "demo.add", "--args", "[4, 4]", "--queue", &rust],
    )
    .await;
    let task_id = sent["task_id"].as_str().unwrap().to_owned();
    let read = CeleryPeer::cli_async(&env, &["result", &task_id, "--timeout", "30"]).await;
    assert_eq!(
        (read["status"].clone(), read["result"].clone()),
        (json!("SUCCESS"), json!(8)),
        "{read}"
    );
    let sent = CeleryPeer::cli_async(
        &env,
        &[
            "send",
            "demo.fail",
            "--args",
            "[\"rust boom\"]",
            "--queue",
            &rust,
        ],
    )
    .await;
    let task_id = sent["task_id"].as_str().unwrap().to_owned();
    let read = CeleryPeer::cli_async(&env, &["result", &task_id, "--timeout", "30"]).await;
    assert_eq!(read["status"], "FAILURE", "{read}");
    assert_eq!(read["result"]["exc_type"], "ValueError", "{read}");
    assert_eq!(read["result"]["message"], "rust boom", "{read}");

    // A failed Python task retried from the history: the exact arguments, its own queue.
    let (_history_database, history) = fresh_history(kind, "sqla_history").await;
    let rerun = retry_task(&history, &producer, failed.id.as_str())
        .await
        .unwrap();
    let meta = rerun.get(WAIT).await.unwrap();
    assert_eq!(meta.status, TaskState::Failure);
    assert_eq!(meta.args, Some(json!(["boom"])));
    assert_eq!(
        meta.worker
            .as_deref()
            .map(|worker| worker.starts_with("py-sqla@")),
        Some(true)
    );

    // Expired rows go with celery.backend_cleanup.
    let backdate = "UPDATE celery_taskmeta SET date_done = date_done - INTERVAL '2 hours'";
    let backdate_sqlite = "UPDATE celery_taskmeta SET date_done = datetime(date_done, '-2 hours')";
    match &sql {
        Database::Postgres(pool) => {
            sqlx::query(backdate).execute(pool).await.unwrap();
        }
        Database::Sqlite(pool) => {
            sqlx::query(backdate_sqlite).execute(pool).await.unwrap();
        }
    }
    let cleanup = producer
        .send_task(
            "celery.backend_cleanup",
            Vec::new(),
            Map::new(),
            SendOptions::new().queue(&rust),
        )
        .await
        .unwrap();
    cleanup.get(WAIT).await.unwrap();
    assert_eq!(
        producer
            .async_result(added.id.as_str())
            .state()
            .await
            .unwrap(),
        TaskState::Pending
    );

    // Chords are refused here, before anything is sent.
    let member = |name: &str| {
        Signature::new(name)
            .args(vec![json!(1), json!(1)])
            .option("queue", json!(rust))
    };
    let refused = producer
        .apply_signature(chord([member("demo.add")], Signature::new("demo.tsum")))
        .await
        .unwrap_err();
    let text = celeriac::error::chain(&refused);
    assert!(text.contains("celery.chord_unlock"), "{text}");
    worker.stop().await;
}
