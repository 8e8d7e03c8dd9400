//! Unit tests of the cluster state: Celery's lifecycle, precedence against late and repeated
//! events, retries, worker liveness and expiry, eviction, the change feed and memory per task.

use super::*;
use crate::types::TaskState;
use serde_json::{json, Value};

pub(super) fn task_event(
    kind: &str,
    uuid: &str,
    worker: &str,
    timestamp: f64,
    extra: Value,
) -> Event {
    let mut event = Event::new(EventKind::parse(kind), worker, 1, timestamp);
    event.fields.insert("uuid".into(), json!(uuid));
    if let Value::Object(extra) = extra {
        event.fields.extend(extra);
    }
    event
}

pub(super) fn heartbeat(kind: &str, worker: &str, timestamp: f64, processed: u64) -> Event {
    let mut event = Event::new(EventKind::parse(kind), worker, 1, timestamp);
    for (key, value) in [
        ("freq", json!(2.0)),
        ("active", json!(0)),
        ("processed", json!(processed)),
        ("loadavg", json!([0.5, 0.25, 0.1])),
        ("sw_ident", json!("py-celery")),
        ("sw_ver", json!("5.4.0")),
        ("sw_sys", json!("Linux")),
    ] {
        event.fields.insert(key.into(), value);
    }
    event
}

const ID: &str = "9e3b8caa-a771-4516-aea9-2c15269e123c";

fn lifecycle() -> Vec<Event> {
    vec![
        task_event(
            "task-sent",
            ID,
            "gen1@host",
            100.0,
            json!({"name": "proj.add", "args": "(2, 3)", "kwargs": "{}", "retries": 0,
                   "root_id": ID, "parent_id": null, "routing_key": "celery", "queue": "celery"}),
        ),
        task_event(
            "task-received",
            ID,
            "w1@host",
            100.5,
            json!({"name": "proj.add", "args": "(2, 3)", "kwargs": "{}", "retries": 0, "root_id": ID}),
        ),
        task_event("task-started", ID, "w1@host", 100.6, json!({})),
        task_event(
            "task-succeeded",
            ID,
            "w1@host",
            100.7,
            json!({"result": "5", "runtime": 0.0157}),
        ),
    ]
}

#[test]
fn a_task_goes_through_celerys_states() {
    let mut state = ClusterState::default();
    let mut seen = Vec::new();
    for event in lifecycle() {
        assert!(state.apply(&event, 101.0));
        seen.push(state.task(ID).unwrap().state);
    }
    assert_eq!(
        seen,
        [
            TaskState::Pending,
            TaskState::Received,
            TaskState::Started,
            TaskState::Success
        ]
    );
    let task = state.task(ID).unwrap();
    assert_eq!(task.name.as_deref(), Some("proj.add"));
    assert_eq!(task.worker.as_deref(), Some("w1@host"));
    assert_eq!(task.client.as_deref(), Some("gen1@host"));
    assert_eq!(task.routing_key.as_deref(), Some("celery"));
    assert_eq!(task.result.as_deref(), Some("5"));
    assert_eq!(task.args.as_deref(), Some("(2, 3)"));
    assert_eq!(task.root_id.as_ref().map(|id| id.as_str()), Some(ID));
    assert_eq!(
        task.runtime,
        Some(std::time::Duration::from_secs_f64(0.0157))
    );
    assert_eq!(
        task.succeeded.map(|time| time.timestamp_millis()),
        Some(100_700)
    );
    let names = state.task_names();
    assert_eq!(names.len(), 1);
    assert_eq!(
        (
            names[0].counts.sent,
            names[0].counts.received,
            names[0].counts.succeeded
        ),
        (1, 1, 1)
    );
    assert_eq!(names[0].runtime.as_ref().unwrap().samples, 1);
    let worker = state.worker("w1@host", 101.0).unwrap();
    assert!(worker.alive, "task events count as signs of life");
    assert!(
        state.worker("gen1@host", 101.0).is_none(),
        "producers are not workers"
    );
}

#[test]
fn late_and_repeated_events_never_take_a_task_back() {
    let events = lifecycle();
    let mut state = ClusterState::default();
    // Succeeded first, then everything (again), then a stray retry from before the success.
    state.apply(&events[3], 101.0);
    for event in events.iter().chain(events.iter()) {
        state.apply(event, 101.0);
    }
    state.apply(
        &task_event(
            "task-retried",
            ID,
            "w1@host",
            100.55,
            json!({"exception": "KeyError('x')"}),
        ),
        101.0,
    );
    let task = state.task(ID).unwrap();
    assert_eq!(
        task.state,
        TaskState::Success,
        "Celery's State would say RETRY here"
    );
    assert_eq!(
        task.name.as_deref(),
        Some("proj.add"),
        "fields still merge in"
    );
    let counts = &state.task_names()[0].counts;
    assert_eq!(
        (
            counts.sent,
            counts.received,
            counts.started,
            counts.succeeded,
            counts.retried
        ),
        (1, 1, 1, 1, 1),
        "each distinct event counted once, even the one that arrived before the name"
    );
    assert_eq!(state.counters().repeats, 5);
}

#[test]
fn retries_run_again_and_the_newest_attempt_wins() {
    let attempt = |retries: u64, start: f64| {
        vec![
            task_event(
                "task-received",
                ID,
                "w1@host",
                start,
                json!({"name": "proj.flaky", "args": format!("({retries},)"), "retries": retries}),
            ),
            task_event("task-started", ID, "w1@host", start + 0.1, json!({})),
        ]
    };
    let mut events = attempt(0, 10.0);
    events.push(task_event(
        "task-retried",
        ID,
        "w1@host",
        10.2,
        json!({"exception": "KeyError('missing 0')", "traceback": "Traceback ..."}),
    ));
    events.extend(attempt(1, 11.0));
    let mut state = ClusterState::default();
    state.apply_batch(&events, 12.0);
    let task = state.task(ID).unwrap();
    assert_eq!(task.state, TaskState::Started);
    assert_eq!(task.retries, 1);
    assert_eq!(task.args.as_deref(), Some("(1,)"));
    assert_eq!(task.exception.as_deref(), Some("KeyError('missing 0')"));
    // Reversed order, same picture.
    let mut reversed = ClusterState::default();
    for event in events.iter().rev() {
        reversed.apply(event, 12.0);
    }
    let mut expected = task.clone();
    expected.version = 0;
    let mut got = reversed.task(ID).unwrap();
    got.version = 0;
    assert_eq!(got, expected);
    // The failure of the last attempt beats the retry's exception.
    state.apply(
        &task_event(
            "task-failed",
            ID,
            "w1@host",
            11.5,
            json!({"exception": "ValueError('boom')"}),
        ),
        12.0,
    );
    let task = state.task(ID).unwrap();
    assert_eq!(task.state, TaskState::Failure);
    assert_eq!(task.exception.as_deref(), Some("ValueError('boom')"));
    assert_eq!(task.traceback, None, "the failure carried no traceback");
}

#[test]
fn workers_are_alive_until_two_missed_heartbeats_or_offline() {
    let mut state = ClusterState::default();
    state.apply(&heartbeat("worker-online", "w1@host", 1000.0, 0), 1000.1);
    state.apply(&heartbeat("worker-heartbeat", "w1@host", 1002.0, 7), 1002.1);
    let worker = state.worker("w1@host", 1005.0).unwrap();
    assert!(worker.alive);
    assert_eq!(worker.processed, 7);
    assert_eq!(worker.sw_ident.as_deref(), Some("py-celery"));
    assert_eq!(worker.freq, std::time::Duration::from_secs(2));
    assert_eq!(worker.clock_drift_ms, 100);
    assert!(
        state.worker("w1@host", 1006.0).unwrap().alive,
        "1002.1 + 2 × 2 s"
    );
    assert!(!state.worker("w1@host", 1006.2).unwrap().alive);
    // A late heartbeat with an older count does not move `processed` back.
    state.apply(&heartbeat("worker-heartbeat", "w1@host", 1001.0, 3), 1002.2);
    assert_eq!(state.worker("w1@host", 1002.3).unwrap().processed, 7);
    // Expiry is announced once, by version.
    let version = state.version();
    assert!(state.expire_workers(1010.0));
    assert!(!state.expire_workers(1011.0));
    let changes = state.changes_since(version, 1011.0, 0);
    assert_eq!(changes.workers.len(), 1);
    assert!(!changes.workers[0].alive);
    // Offline is at once; a heartbeat sent before it (arriving late) does not revive it, one
    // sent after does.
    state.apply(&heartbeat("worker-heartbeat", "w1@host", 1020.0, 8), 1020.0);
    state.apply(&heartbeat("worker-offline", "w1@host", 1021.0, 9), 1021.0);
    assert!(!state.worker("w1@host", 1021.1).unwrap().alive);
    state.apply(&heartbeat("worker-heartbeat", "w1@host", 1020.5, 8), 1021.2);
    assert!(!state.worker("w1@host", 1021.3).unwrap().alive);
    state.apply(&heartbeat("worker-online", "w1@host", 1030.0, 0), 1030.0);
    assert!(state.worker("w1@host", 1030.1).unwrap().alive);
}

#[test]
fn eviction_keeps_the_most_recently_updated_tasks() {
    let mut state = ClusterState::new(StateOptions {
        max_tasks: 100,
        ..StateOptions::default()
    });
    for index in 0..1_000u32 {
        let id = format!("task-{index}");
        state.apply(
            &task_event(
                "task-received",
                &id,
                "w1@host",
                f64::from(index),
                json!({"name": "proj.add"}),
            ),
            0.0,
        );
    }
    // Touch an old survivor so it outlives newer ones.
    state.apply(
        &task_event("task-started", "task-900", "w1@host", 2_000.0, json!({})),
        0.0,
    );
    for index in 1_000..1_050u32 {
        let id = format!("task-{index}");
        state.apply(
            &task_event("task-received", &id, "w1@host", 0.0, json!({})),
            0.0,
        );
    }
    let counters = state.counters();
    assert_eq!(counters.tasks_retained, 100);
    assert_eq!(counters.tasks_evicted, 950);
    assert!(state.task("task-900").is_some());
    assert!(state.task("task-901").is_none());
    assert!(state.task("task-1049").is_some());
    assert_eq!(
        state.task_names()[0].counts.received,
        1_000,
        "counters outlive eviction"
    );
}

#[test]
fn changes_since_returns_what_changed_after_a_version() {
    let mut state = ClusterState::default();
    let events = lifecycle();
    state.apply_batch(&events[..2], 101.0);
    let version = state.version();
    state.apply(
        &task_event(
            "task-received",
            "other",
            "w2@host",
            1.0,
            json!({"name": "b"}),
        ),
        101.0,
    );
    state.apply(&events[1], 101.0); // a repeat: no change
    let changes = state.changes_since(version, 101.0, 0);
    assert_eq!(changes.version, state.version());
    assert_eq!(changes.tasks.len(), 1);
    assert_eq!(changes.tasks[0].id.as_str(), "other");
    assert_eq!(changes.workers.len(), 1, "w2 is new");
    assert_eq!(changes.task_names.len(), 1);
    assert!(!changes.truncated);
    let everything = state.changes_since(0, 101.0, 1);
    assert_eq!(everything.tasks.len(), 1);
    assert!(everything.truncated);
}

#[test]
fn garbage_events_change_nothing() {
    let mut state = ClusterState::default();
    let mut no_uuid = Event::new(EventKind::TaskStarted, "w1@host", 1, 1.0);
    no_uuid.fields.insert("name".into(), json!("x"));
    assert!(!state.apply(&no_uuid, 1.0));
    assert!(!state.apply(
        &Event::new(EventKind::parse("custom"), "w1@host", 1, 1.0),
        1.0
    ));
    let mut weird = task_event(
        "task-received",
        "x",
        "w1@host",
        f64::NAN,
        json!({"retries": -3, "name": 5}),
    );
    weird
        .fields
        .insert("args".into(), json!({"not": "a string"}));
    assert!(state.apply(&weird, 1.0));
    let task = state.task("x").unwrap();
    assert_eq!((task.retries, task.name, task.args), (0, None, None));
    let counters = state.counters();
    assert_eq!((counters.without_uuid, counters.other_events), (1, 1));
}

#[test]
fn long_reprs_are_clipped_on_a_character_boundary() {
    let mut state = ClusterState::new(StateOptions {
        max_repr_len: 10,
        ..StateOptions::default()
    });
    state.apply(
        &task_event(
            "task-received",
            ID,
            "w",
            1.0,
            json!({"args": "ééééééééééé"}),
        ),
        1.0,
    );
    let args = state.task(ID).unwrap().args.unwrap();
    assert!(args.len() <= 10 && args.ends_with('…'), "{args}");
}

#[test]
fn a_retained_task_takes_well_under_a_kilobyte() {
    let mut state = ClusterState::default();
    for index in 0..10_000u32 {
        let id = uuid::Uuid::new_v4().to_string();
        let start = f64::from(index);
        state.apply_batch(
            &[
                task_event(
                    "task-received",
                    &id,
                    "celery@worker-1",
                    start,
                    json!({"name": "proj.orders.process", "args": format!("({index}, 'order')"),
                           "kwargs": "{'priority': 'high'}", "retries": 0, "root_id": id,
                           "parent_id": null, "eta": null, "expires": null}),
                ),
                task_event(
                    "task-started",
                    &id,
                    "celery@worker-1",
                    start + 0.1,
                    json!({}),
                ),
                task_event(
                    "task-succeeded",
                    &id,
                    "celery@worker-1",
                    start + 0.2,
                    json!({"result": "{'status': 'ok'}", "runtime": 0.1}),
                ),
            ],
            start,
        );
    }
    let per_task = state.task_memory_bytes() / 10_000;
    assert!(per_task < 1_024, "{per_task} bytes per task");
}
