//! Unit tests of the merge rules in `history/record.rs`.

use super::*;
use chrono::TimeZone;
use serde_json::json;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
}

fn event(kind: TaskEventKind, seconds: i64) -> TaskEvent {
    let host = if kind == TaskEventKind::Sent {
        "gen1@host"
    } else {
        "w1@host"
    };
    let mut event = TaskEvent::new(kind, "t1", host, at(seconds));
    match kind {
        TaskEventKind::Sent | TaskEventKind::Received => {
            event.name = Some("demo.add".into());
            event.args = Some("(2, 3)".into());
            event.kwargs = Some("{}".into());
            event.retries = Some(0);
        }
        TaskEventKind::Succeeded => {
            event.result = Some("5".into());
            event.runtime = Some(0.25);
        }
        _ => {}
    }
    event
}

/// Every order of `events`, applied to a fresh record.
fn all_orders(events: &[TaskEvent]) -> Vec<TaskRecord> {
    fn permute(prefix: &mut Vec<TaskEvent>, rest: &[TaskEvent], out: &mut Vec<Vec<TaskEvent>>) {
        if rest.is_empty() {
            out.push(prefix.clone());
        }
        for index in 0..rest.len() {
            let mut remaining = rest.to_vec();
            let chosen = remaining.remove(index);
            prefix.push(chosen);
            permute(prefix, &remaining, out);
            prefix.pop();
        }
    }
    let mut orders = Vec::new();
    permute(&mut Vec::new(), events, &mut orders);
    orders
        .into_iter()
        .map(|order| {
            let mut record = TaskRecord::from_event(&order[0]);
            for event in &order[1..] {
                record.apply_event(event);
            }
            record
        })
        .collect()
}

#[test]
fn one_attempt_gives_the_same_record_in_any_order() {
    let events = [
        event(TaskEventKind::Sent, 0),
        event(TaskEventKind::Received, 1),
        event(TaskEventKind::Started, 2),
        event(TaskEventKind::Succeeded, 3),
    ];
    let records = all_orders(&events);
    assert_eq!(records.len(), 24);
    for record in &records {
        assert_eq!(record, &records[0]);
    }
    let record = &records[0];
    assert_eq!(record.state, TaskState::Success);
    assert_eq!(record.state_at, at(3));
    assert_eq!(record.seen_at, at(0));
    assert_eq!(record.sent_at, Some(at(0)));
    assert_eq!(record.received_at, Some(at(1)));
    assert_eq!(record.started_at, Some(at(2)));
    assert_eq!(record.done_at, Some(at(3)));
    assert_eq!(record.worker.as_deref(), Some("w1@host"));
    assert_eq!(record.name.as_deref(), Some("demo.add"));
    assert_eq!(record.result.as_deref(), Some("5"));
}

#[test]
fn a_late_received_never_overrides_success_but_adds_its_fields() {
    let mut record = TaskRecord::from_event(&event(TaskEventKind::Succeeded, 3));
    assert_eq!(record.name, None);
    record.apply_event(&event(TaskEventKind::Received, 1));
    assert_eq!(record.state, TaskState::Success);
    assert_eq!(record.name.as_deref(), Some("demo.add"));
    assert_eq!(record.args_repr.as_deref(), Some("(2, 3)"));
    assert_eq!(record.seen_at, at(1));
}

#[test]
fn duplicates_change_nothing() {
    let mut record = TaskRecord::from_event(&event(TaskEventKind::Received, 1));
    record.apply_event(&event(TaskEventKind::Started, 2));
    let before = record.clone();
    record.apply_event(&event(TaskEventKind::Started, 2));
    record.apply_event(&event(TaskEventKind::Received, 1));
    assert_eq!(record, before);
}

#[test]
fn retry_goes_round_again_and_never_hides_a_result() {
    let mut record = TaskRecord::from_event(&event(TaskEventKind::Started, 2));
    record.apply_event(&event(TaskEventKind::Retried, 3));
    assert_eq!(record.state, TaskState::Retry);
    // A late event of the first attempt does not undo the retry.
    record.apply_event(&event(TaskEventKind::Received, 1));
    assert_eq!(record.state, TaskState::Retry);
    // The second attempt does.
    let mut second = event(TaskEventKind::Received, 10);
    second.retries = Some(1);
    record.apply_event(&second);
    assert_eq!(record.state, TaskState::Received);
    assert_eq!(record.retries, Some(1));
    record.apply_event(&event(TaskEventKind::Succeeded, 11));
    // A retry stamped after the success (clock skew between workers) cannot hide it.
    record.apply_event(&event(TaskEventKind::Retried, 12));
    assert_eq!(record.state, TaskState::Success);
    assert_eq!(record.retries, Some(1));
}

#[test]
fn failure_wins_over_revoked_as_in_celery() {
    let mut record = TaskRecord::from_event(&event(TaskEventKind::Failed, 5));
    record.apply_event(&event(TaskEventKind::Revoked, 6));
    assert_eq!(record.state, TaskState::Failure);
}

#[test]
fn extended_results_give_the_exact_arguments() {
    let document = json!({"status": "FAILURE",
        "result": {"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"},
        "traceback": "Traceback ...", "children": [], "date_done": "2027-01-15T08:00:00+00:00",
        "name": "demo.fail", "args": ["boom"], "kwargs": {"k": 1}, "worker": "w9@h",
        "retries": 2, "queue": "q1", "task_id": "t1"});
    let meta: ResultMeta = serde_json::from_value(document).unwrap();
    let record = TaskRecord::from_result(&meta, at(0));
    assert_eq!(record.state, TaskState::Failure);
    assert_eq!(record.args, Some(vec![json!("boom")]));
    assert_eq!(record.kwargs.unwrap()["k"], json!(1));
    assert_eq!(record.args_repr.as_deref(), Some("('boom',)"));
    assert_eq!(record.kwargs_repr.as_deref(), Some("{'k': 1}"));
    assert_eq!(record.exception.as_deref(), Some("ValueError('boom')"));
    assert_eq!(record.worker.as_deref(), Some("w9@h"));
    assert_eq!(record.queue.as_deref(), Some("q1"));
    assert_eq!(record.retries, Some(2));
    assert_eq!(
        record.done_at.map(|done| done.to_rfc3339()),
        Some("2027-01-15T08:00:00+00:00".into())
    );
}

#[test]
fn a_result_merges_into_an_event_record_by_precedence() {
    let mut record = TaskRecord::from_event(&event(TaskEventKind::Succeeded, 3));
    let started = ResultMeta::new("t1", TaskState::Started, json!({"pid": 1}));
    record.apply_result(&started, at(100));
    assert_eq!(record.state, TaskState::Success);
    let mut success = ResultMeta::new("t1", TaskState::Success, json!(5));
    success.args = Some(json!([2, 3]));
    success.kwargs = Some(json!({}));
    record.apply_result(&success, at(100));
    assert_eq!(record.state, TaskState::Success);
    assert_eq!(record.args, Some(vec![json!(2), json!(3)]));
    assert_eq!(record.args_repr.as_deref(), Some("(2, 3)"));
}

#[test]
fn a_late_retry_does_not_relabel_the_failure() {
    let mut failed = event(TaskEventKind::Failed, 6);
    failed.exception = Some("ValueError('boom')".into());
    let mut retried = event(TaskEventKind::Retried, 3);
    retried.exception = Some("RuntimeError('again')".into());
    let mut record = TaskRecord::from_event(&failed);
    record.apply_event(&retried);
    assert_eq!(record.state, TaskState::Failure);
    assert_eq!(record.exception.as_deref(), Some("ValueError('boom')"));
}
