//! Per task name statistics and the bulk retry selection on real databases (SQLite file and
//! PostgreSQL schema): finished tasks in a window grouped by name, runtime percentiles, and
//! the cap of a filter's selection.

use super::history::{fresh_history, on_both};
use celeriac::history::{TaskEvent, TaskFilter, BULK_RETRY_CAP};
use celeriac::testkit::DatabaseKind;
use celeriac::TaskState;
use chrono::{DateTime, Duration as TimeDelta, TimeZone, Utc};
use serde_json::{json, Value};

on_both!(
    statistics_group_finished_tasks_by_name,
    a_bulk_retry_selection_stops_at_the_cap,
);

fn base_time() -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).unwrap()
}

fn event(kind: &str, task_id: &str, seconds: f64, extra: Value) -> TaskEvent {
    let mut fields = json!({"type": kind, "uuid": task_id, "hostname": "w1@h",
        "timestamp": base_time().timestamp() as f64 + seconds, "utcoffset": 0, "pid": 1,
        "clock": 1});
    let fields = fields.as_object_mut().unwrap();
    if let Value::Object(extra) = extra {
        fields.extend(extra);
    }
    TaskEvent::from_fields(fields).expect("a task event")
}

/// A task named `name` received at `seconds` and finished as `state` one second later.
fn finished(name: &str, task_id: &str, seconds: f64, state: &str, runtime: f64) -> Vec<TaskEvent> {
    let done = match state {
        "SUCCESS" => event(
            "task-succeeded",
            task_id,
            seconds + 1.0,
            json!({"result": "1", "runtime": runtime}),
        ),
        _ => event(
            "task-failed",
            task_id,
            seconds + 1.0,
            json!({"exception": "ValueError('x')", "traceback": ""}),
        ),
    };
    vec![
        event(
            "task-received",
            task_id,
            seconds,
            json!({"name": name, "args": "()", "kwargs": "{}", "retries": 0}),
        ),
        done,
    ]
}

async fn statistics_group_finished_tasks_by_name(kind: DatabaseKind) {
    let (_database, history) = fresh_history(kind, "stats").await;
    let mut events = Vec::new();
    // demo.add: 100 successes with runtimes 0.01 .. 1.00 s, inside the window.
    for index in 1..=100 {
        events.extend(finished(
            "demo.add",
            &format!("add-{index}"),
            f64::from(index),
            "SUCCESS",
            f64::from(index) / 100.0,
        ));
    }
    // demo.fail: 3 failures inside, 1 success outside the window.
    for index in 0..3 {
        events.extend(finished(
            "demo.fail",
            &format!("fail-{index}"),
            200.0 + f64::from(index),
            "FAILURE",
            0.0,
        ));
    }
    events.extend(finished("demo.fail", "fail-old", -600.0, "SUCCESS", 9.0));
    // task-failed carries no runtime: with a task-started event it is done_at - started_at.
    events.push(event("task-started", "fail-0", 200.5, json!({})));
    history.record_events(&events).await.unwrap();

    let since = base_time();
    let until = base_time() + TimeDelta::minutes(10);
    let stats = history.task_stats(since, until).await.unwrap();
    assert!(!stats.sampled);
    assert_eq!(stats.names.len(), 2, "{stats:?}");
    let add = &stats.names[0];
    assert_eq!(add.name, "demo.add");
    assert_eq!((add.finished, add.succeeded, add.failed), (100, 100, 0));
    assert!((add.tasks_per_minute - 10.0).abs() < 1e-9, "{add:?}");
    assert_eq!(add.runtime_p50, Some(0.5));
    assert_eq!(add.runtime_p95, Some(0.95));
    assert_eq!(add.runtime_p99, Some(0.99));
    let fail = &stats.names[1];
    assert_eq!(fail.name, "demo.fail");
    assert_eq!((fail.finished, fail.succeeded, fail.failed), (3, 0, 3));
    assert_eq!(fail.runtime_p50, Some(0.5));
    assert_eq!(fail.runtime_p99, Some(0.5));

    let empty = history
        .task_stats(until, until + TimeDelta::hours(1))
        .await
        .unwrap();
    assert!(empty.names.is_empty());
}

async fn a_bulk_retry_selection_stops_at_the_cap(kind: DatabaseKind) {
    let (_database, history) = fresh_history(kind, "bulk-select").await;
    let failures = TaskFilter {
        states: vec![TaskState::Failure],
        ..TaskFilter::default()
    };
    let mut events = Vec::new();
    for index in 0..5 {
        events.extend(finished(
            "demo.fail",
            &format!("few-{index}"),
            f64::from(index),
            "FAILURE",
            0.0,
        ));
    }
    history.record_events(&events).await.unwrap();
    let selection = history.bulk_retry_selection(&failures).await.unwrap();
    assert_eq!(selection.task_ids.len(), 5);
    assert_eq!(selection.task_ids[0], "few-4", "newest first");
    assert!(!selection.capped);

    let events: Vec<TaskEvent> = (0..BULK_RETRY_CAP)
        .flat_map(|index| {
            finished(
                "demo.fail",
                &format!("many-{index}"),
                10.0 + index as f64,
                "FAILURE",
                0.0,
            )
        })
        .collect();
    history.record_events(&events).await.unwrap();
    let selection = history.bulk_retry_selection(&failures).await.unwrap();
    assert_eq!(selection.task_ids.len(), BULK_RETRY_CAP);
    assert!(selection.capped);
    assert!(!selection.task_ids.iter().any(|id| id.starts_with("few-")));
}
