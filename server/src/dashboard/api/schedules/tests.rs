//! The periodic task API over a real socket (the app of `api/tests.rs`: real Redis, a SQLite
//! file): list, edit, a bad crontab field answered 422 with the field's name, viewers refused,
//! and every change in the audit log.

use app::model::ScheduleSpec;
use axum::http::StatusCode;
use celeriac::auth::users::UserStore;
use celeriac::auth::Role;
use celeriac::beat::{Crontab, CrontabSpec, PeriodicTask, Schedule, ScheduleStore};
use serde_json::{json, Value};

use crate::dashboard::api::tests::{spawn_app, TestApp, PASSWORD};
use crate::dashboard::auth::password::Hasher;

/// Sends `body` (JSON, or none) as `user` and reads the JSON answer: `TestApp::json_as`.
async fn call(
    app: &TestApp,
    user: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.json_as(user, method, path, body).await
}

async fn add_users(app: &TestApp) {
    let users = UserStore::new(app.monitoring.history.database().clone());
    let hasher = Hasher::new().unwrap();
    for (name, role) in [("ada", Role::Admin), ("vic", Role::Viewer)] {
        let hash = hasher.hash(PASSWORD.to_owned()).await.unwrap();
        users.add(name, role, &hash).await.unwrap();
    }
}

#[tokio::test]
async fn schedules_are_listed_edited_validated_guarded_and_audited() {
    let app = spawn_app("api-schedules").await;
    add_users(&app).await;
    let store = ScheduleStore::new(app.monitoring.history.database().clone());
    let crontab = Crontab::parse_cron("*/5 * * * *", "UTC").unwrap();
    store
        .add(&PeriodicTask::new(
            "carts.cleanup",
            "demo.add",
            Schedule::Crontab(crontab),
        ))
        .await
        .unwrap();

    // Viewers read.
    let (status, list) = call(&app, "vic", "GET", "/api/schedules", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list[0]["name"], "carts.cleanup");
    assert_eq!(list[0]["description"], "Every 5 minutes");
    assert_eq!(list[0]["schedule"]["kind"], "crontab");
    assert!(list[0]["next_run_at"].is_string(), "{list}");
    let (status, detail) = call(&app, "vic", "GET", "/api/schedules/carts.cleanup", None).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["summary"]["task"], "demo.add");
    assert_eq!(detail["runs"], json!([]));

    // Viewers and operators do not edit.
    let edit = json!({"schedule": {"kind": "crontab", "minute": "0", "hour": "9"}});
    for user in ["vic", "tester"] {
        let (status, _) = call(
            &app,
            user,
            "POST",
            "/api/schedules/carts.cleanup",
            Some(edit.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{user}");
    }

    // A bad field is named, and nothing changes.
    let invalid = json!({"schedule": {"kind": "crontab", "minute": "0", "hour": "24"}});
    let (status, error) = call(
        &app,
        "ada",
        "POST",
        "/api/schedules/carts.cleanup",
        Some(invalid),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error, json!({"error": "hour: 24 is out of range 0-23"}));

    // Admins edit; the store has it.
    let (status, answer) = call(
        &app,
        "ada",
        "POST",
        "/api/schedules/carts.cleanup",
        Some(edit),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let stored = store.get("carts.cleanup").await.unwrap();
    assert_eq!(stored.task.schedule.describe(), "At 09:00");

    // The pages render it on the server (the in-process API), for any logged-in user.
    let (status, page) = call(&app, "vic", "GET", "/periodic", None).await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap_or_default().to_owned();
    assert!(
        page.contains("carts.cleanup") && page.contains("At 09:00"),
        "{page}"
    );
    let (status, page) = call(&app, "vic", "GET", "/periodic/carts.cleanup", None).await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap_or_default().to_owned();
    assert!(page.contains("data-testid=\"crontab-hour\""), "{page}");

    // Create, disable, run now, delete.
    let create = json!({
        "name": "reports.hourly", "task": "demo.add", "args": [1, 2],
        "schedule": {"kind": "interval", "every": 1, "period": "hours"},
    });
    let (status, answer) = call(&app, "ada", "POST", "/api/schedules", Some(create.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _) = call(&app, "ada", "POST", "/api/schedules", Some(create)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Issue 13: every microsecond was accepted; beat then sent about 95 tasks a second.
    let flood = json!({
        "name": "reports.flood", "task": "demo.add",
        "schedule": {"kind": "interval", "every": 1, "period": "microseconds"},
    });
    let (status, error) = call(&app, "ada", "POST", "/api/schedules", Some(flood)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|text| text.starts_with("every: ")),
        "{error}"
    );
    let (status, metrics) = call(&app, "vic", "GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains("celeriac_beat_runs_total{schedule=\"reports.hourly\"} 0"),
        "{metrics}"
    );
    let path = "/api/schedules/reports.hourly/enabled?value=false";
    let (status, _) = call(&app, "ada", "POST", path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!store.get("reports.hourly").await.unwrap().task.enabled);
    let (status, answer) = call(
        &app,
        "ada",
        "POST",
        "/api/schedules/reports.hourly/run",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["task_id"].is_string());
    let (status, _) = call(
        &app,
        "ada",
        "POST",
        "/api/schedules/reports.hourly/delete",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, "vic", "GET", "/api/schedules/reports.hourly", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Every change is in the audit log, by ada, newest first.
    let audit = celeriac::auth::audit::AuditLog::new(app.monitoring.history.database().clone());
    let entries: Vec<(String, String, String)> = audit
        .recent(10)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.action.starts_with("schedule."))
        .map(|entry| (entry.actor, entry.action, entry.target))
        .collect();
    let expected = [
        ("schedule.delete", "reports.hourly"),
        ("schedule.run_now", "reports.hourly"),
        ("schedule.disable", "reports.hourly"),
        ("schedule.create", "reports.hourly"),
        ("schedule.edit", "carts.cleanup"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(action, target)| ("ada".to_owned(), (*action).to_owned(), (*target).to_owned()))
        .collect();
    assert_eq!(entries, expected);
}

#[tokio::test]
async fn a_draft_is_previewed_for_any_role_with_the_field_named_when_invalid() {
    let app = spawn_app("api-schedule-preview").await;
    add_users(&app).await;
    // The paths the editors ask for (`ScheduleSpec::preview_path`).
    let crontab = |fields: CrontabSpec| ScheduleSpec::Crontab(fields).preview_path();
    let berlin = crontab(CrontabSpec {
        minute: "30".into(),
        hour: "2".into(),
        timezone: "Europe/Berlin".into(),
        ..CrontabSpec::default()
    });
    let (status, answer) = call(&app, "vic", "GET", &berlin, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["description"], "At 02:30 (Europe/Berlin)");
    assert_eq!(answer["error"], Value::Null);
    let runs = answer["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 5, "{answer}");
    assert!(
        runs[0]["local"].as_str().unwrap().contains(":30 CE"),
        "{answer}"
    );

    let bad_hour = crontab(CrontabSpec {
        hour: "24".into(),
        ..CrontabSpec::default()
    });
    let (status, answer) = call(&app, "vic", "GET", &bad_hour, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["error"]["part"], "hour");
    assert_eq!(answer["error"]["message"], "hour: 24 is out of range 0-23");
    assert_eq!(answer["runs"], json!([]));

    let bad_zone = crontab(CrontabSpec {
        timezone: "Mars/Olympus".into(),
        ..CrontabSpec::default()
    });
    let (_, answer) = call(&app, "vic", "GET", &bad_zone, None).await;
    assert_eq!(answer["error"]["part"], "timezone");

    let (status, answer) = call(&app, "vic", "GET", "/api/schedule-preview?spec=nope", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}
