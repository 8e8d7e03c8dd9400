//! `POST /api/tasks/bulk_retry` and `GET /api/stats/tasks` over the real dashboard router
//! (`super::super::tests::spawn_app`): dry-run counts and the cap on seeded history rows, the
//! operator role, the audit entry, one run at a time, and real failed tasks sent again.

use axum::http::StatusCode;
use celeriac::auth::audit::AuditLog;
use celeriac::history::{TaskEvent, TaskFilter, BULK_RETRY_CAP};
use celeriac::producer::SendOptions;
use celeriac::testkit::eventually;
use celeriac::TaskState;
use serde_json::{json, Value};

use crate::dashboard::api::tests::{spawn_app, TestApp, WAIT};

const PATH: &str = "/api/tasks/bulk_retry";

/// Writes `count` failed tasks named `name` straight into the history (no worker: fast).
async fn seed_failures(app: &TestApp, name: &str, count: usize) {
    let now = celeriac::clock::now().timestamp_micros() as f64 / 1e6;
    let events: Vec<TaskEvent> = (0..count)
        .flat_map(|index| {
            let task_id = format!("{name}-{index}");
            let timestamp = now - 60.0 + index as f64 * 0.001;
            let field = |kind: &str, extra: Value| {
                let mut fields = json!({"type": kind, "uuid": task_id, "hostname": "w@h",
                    "timestamp": timestamp, "utcoffset": 0, "pid": 1, "clock": 1});
                fields
                    .as_object_mut()
                    .unwrap()
                    .extend(extra.as_object().unwrap().clone());
                TaskEvent::from_fields(fields.as_object().unwrap()).unwrap()
            };
            [
                field(
                    "task-received",
                    json!({"name": name, "args": "()", "kwargs": "{}"}),
                ),
                field(
                    "task-failed",
                    json!({"exception": "ValueError('x')", "traceback": ""}),
                ),
            ]
        })
        .collect();
    app.monitoring.history.record_events(&events).await.unwrap();
}

async fn audit_entries(app: &TestApp) -> Vec<(String, String, String)> {
    AuditLog::new(app.monitoring.history.database().clone())
        .recent(50)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| (entry.actor, entry.action, entry.target))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_count_up_to_the_cap_and_runs_are_audited_one_at_a_time() {
    let app = spawn_app("dash-bulk").await;
    seed_failures(&app, "seed.few", 3).await;
    let dry_run = json!({"filter": {"name": "seed.few"}, "dry_run": true});
    let (_, answer) = app.json_as("tester", "POST", PATH, Some(dry_run)).await;
    assert_eq!(answer["tasks"], json!(3));
    let dry_run = json!({"filter": {"name": "seed.few", "task_id": "seed.few-1"}, "dry_run": true});
    let (_, answer) = app.json_as("tester", "POST", PATH, Some(dry_run)).await;
    assert_eq!(answer["tasks"], json!(1));
    let dry_run = json!({"filter": {"name": "seed.few"}, "dry_run": true});
    let (status, answer) = app.json_as("tester", "POST", PATH, Some(dry_run)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"tasks": 3, "capped": false, "cap": 1000}));

    seed_failures(&app, "seed.many", BULK_RETRY_CAP + 5).await;
    let dry_run = json!({"filter": {"state": "FAILURE"}, "dry_run": true});
    let (status, answer) = app.json_as("tester", "POST", PATH, Some(dry_run)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"tasks": 1000, "capped": true, "cap": 1000}));
    assert!(
        audit_entries(&app).await.is_empty(),
        "a dry run changes nothing"
    );

    // Viewers may look but not retry; a body with neither ids nor filter is refused.
    let (status, _) = app
        .json_as("viewer", "POST", PATH, Some(json!({"task_ids": ["x"]})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .json_as("tester", "POST", PATH, Some(json!({"dry_run": true})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let bad_time = json!({"filter": {"since": "yesterday"}, "dry_run": true});
    let (status, _) = app.json_as("tester", "POST", PATH, Some(bad_time)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A capped run (the seeded rows have no exact arguments, so each retry is refused and
    // counted, at 50 per second: the run lasts long enough for a second one to meet it).
    let run = json!({"filter": {"state": "FAILURE"}});
    let (status, answer) = app.json_as("tester", "POST", PATH, Some(run.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(
        answer,
        json!({"accepted": 1000, "capped": true, "cap": 1000})
    );
    let (status, answer) = app.json_as("tester", "POST", PATH, Some(run)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(
        audit_entries(&app).await,
        [(
            "tester".to_owned(),
            "task.bulk_retry".to_owned(),
            "1000 tasks: state=FAILURE".to_owned()
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selected_failed_tasks_are_sent_again_and_counted_in_the_statistics() {
    let app = spawn_app("dash-bulk-run").await;
    let _worker = app.start_worker("bulk-worker@test").await;
    let producer = app.producer().await;
    let mut failed = Vec::new();
    for message in ["first", "second"] {
        let sent = producer
            .send_task(
                "demo.fail",
                vec![json!(message)],
                Default::default(),
                SendOptions::new().queue(&app.queue),
            )
            .await
            .unwrap();
        failed.push(sent.id.0.clone());
    }
    let failures = TaskFilter {
        states: vec![TaskState::Failure],
        ..TaskFilter::default()
    };
    eventually(WAIT, "both tasks failed in the history", || async {
        let page = app
            .monitoring
            .history
            .list(&failures, None, 10)
            .await
            .unwrap();
        (page.tasks.len() == 2).then_some(())
    })
    .await;

    let selection = json!({"task_ids": failed});
    let (status, answer) = app
        .json_as("tester", "POST", PATH, Some(selection.clone()))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["accepted"], json!(2));
    for task_id in &failed {
        eventually(WAIT, "the retry of each selected task", || async {
            let (_, info) = app.json("GET", &format!("/api/task/info/{task_id}")).await;
            (info["retried_as"]
                .as_array()
                .is_some_and(|runs| runs.len() == 1))
            .then_some(())
        })
        .await;
    }
    // The retried tasks fail again; then the statistics of the last hour show four failures.
    let stats = eventually(
        WAIT,
        "four demo.fail failures in the statistics",
        || async {
            let (status, stats) = app.json("GET", "/api/stats/tasks").await;
            assert_eq!(status, StatusCode::OK, "{stats}");
            (stats["names"][0]["failed"] == json!(4)).then_some(stats)
        },
    )
    .await;
    let row = &stats["names"][0];
    assert_eq!(row["name"], json!("demo.fail"));
    assert_eq!(row["count"], json!(4));
    assert_eq!(row["succeeded"], json!(0));
    assert!(row["runtime_p50"].is_number(), "{row}");
    assert!(row["tasks_per_minute"].as_f64().unwrap() > 0.0);
    let answer: app::model::TaskStatsAnswer = serde_json::from_value(stats.clone()).unwrap();
    assert_eq!(answer.names.len(), 1);
    let (status, empty) = app
        .json(
            "GET",
            "/api/stats/tasks?since=2020-01-01T00:00:00Z&until=2020-01-01T01:00:00Z",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["names"], json!([]));
    assert_eq!(empty["since"], json!("2020-01-01T00:00:00Z"));
    let (status, last_day) = app.json("GET", "/api/stats/tasks?since=24h").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(last_day["names"][0]["count"], json!(4));
    let (status, _) = app
        .json(
            "GET",
            "/api/stats/tasks?since=2020-01-01T01:00:00Z&until=2020-01-01T00:00:00Z",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let audit = audit_entries(&app).await;
    assert!(
        audit.contains(&(
            "tester".to_owned(),
            "task.bulk_retry".to_owned(),
            "2 tasks: selected".to_owned()
        )),
        "{audit:?}"
    );
}
