//! Unit tests for periodic task entries: field validation, the serde form, intervals, and when
//! an entry is due (django-celery-beat's anchoring rules).

use super::*;
use crate::beat::{Crontab, Interval, IntervalError, IntervalPeriod};
use serde_json::json;

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn every(text: &str) -> Schedule {
    Schedule::Interval(text.parse().unwrap())
}

fn entry(schedule: Schedule) -> PeriodicTask {
    PeriodicTask::new("cleanup", "proj.tasks.cleanup", schedule)
}

#[test]
fn a_new_entry_is_valid() {
    assert_eq!(entry(every("30s")).validate(), Ok(()));
}

#[test]
fn each_invalid_field_is_named() {
    let mut task = entry(Schedule::Clocked {
        at: utc("2025-01-01T00:00:00Z"),
    });
    task.name = "  ".into();
    task.task = "x".repeat(201);
    task.args = json!({"a": 1});
    task.kwargs = json!([1]);
    task.queue = Some(String::new());
    task.headers = json!("text");
    task.priority = Some(256);
    task.expires = Some(utc("2025-01-02T00:00:00Z"));
    task.expire_seconds = Some(60);
    task.one_off = false;
    let messages: Vec<String> = task.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "name: must not be blank",
            "task: 201 characters is more than 200",
            "args: must be a JSON array, not object",
            "kwargs: must be a JSON object, not array",
            "queue: must not be blank",
            "headers: must be a JSON object, not string",
            "priority: 256 is out of range 0-255",
            "expire_seconds: set either expires or expire_seconds, not both",
            "one_off: a clocked schedule runs once, so one_off must be set",
        ]
    );
    let fields: Vec<&str> = task
        .problems()
        .iter()
        .map(|problem| problem.field())
        .collect();
    assert_eq!(
        fields,
        [
            "name",
            "task",
            "args",
            "kwargs",
            "queue",
            "headers",
            "priority",
            "expire_seconds",
            "one_off"
        ]
    );
    assert_eq!(
        task.validate(),
        Err(PeriodicTaskError::Blank { field: "name" })
    );
}

#[test]
fn limits_are_inclusive() {
    let mut task = entry(every("1m"));
    task.name = "é".repeat(200);
    task.priority = Some(255);
    task.routing_key = Some("r".repeat(200));
    assert_eq!(task.validate(), Ok(()));
}

#[test]
fn serde_defaults_follow_the_django_model() {
    let task: PeriodicTask = serde_json::from_value(json!({
        "name": "hourly report",
        "task": "reports.hourly",
        "schedule": {"kind": "crontab", "minute": "0", "timezone": "Europe/London"},
    }))
    .unwrap();
    assert_eq!(task.args, json!([]));
    assert_eq!(task.kwargs, json!({}));
    assert_eq!(task.headers, json!({}));
    assert!(task.enabled);
    assert!(!task.one_off);
    assert_eq!(task.total_run_count, 0);
    assert_eq!(
        task.schedule,
        Schedule::Crontab(Crontab::parse_cron("0 * * * *", "Europe/London").unwrap())
    );
    let round_trip: PeriodicTask =
        serde_json::from_value(serde_json::to_value(&task).unwrap()).unwrap();
    assert_eq!(round_trip, task);
}

#[test]
fn schedule_serde_forms() {
    let cases = [
        (
            every("30s"),
            json!({"kind": "interval", "every": 30, "period": "seconds"}),
        ),
        (
            Schedule::Clocked {
                at: utc("2025-01-01T09:00:00Z"),
            },
            json!({"kind": "clocked", "at": "2025-01-01T09:00:00Z"}),
        ),
        (
            Schedule::Crontab("0 */2 * * *".parse().unwrap()),
            json!({"kind": "crontab", "minute": "0", "hour": "*/2", "day_of_week": "*",
                   "day_of_month": "*", "month_of_year": "*", "timezone": "UTC"}),
        ),
    ];
    for (schedule, expected) in cases {
        assert_eq!(serde_json::to_value(schedule).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<Schedule>(expected).unwrap(),
            schedule
        );
    }
    let zero = serde_json::from_value::<Schedule>(
        json!({"kind": "interval", "every": 0, "period": "days"}),
    );
    assert!(zero
        .unwrap_err()
        .to_string()
        .contains("every: must be at least 1"));
    let bad_crontab =
        serde_json::from_value::<Schedule>(json!({"kind": "crontab", "day_of_week": "fry"}));
    assert!(bad_crontab
        .unwrap_err()
        .to_string()
        .contains("day_of_week: \"fry\" is not a day name"));
}

#[test]
fn intervals_parse_and_print() {
    let cases = [
        ("30s", 30, IntervalPeriod::Seconds, "Every 30 seconds"),
        ("5m", 5, IntervalPeriod::Minutes, "Every 5 minutes"),
        ("2h", 2, IntervalPeriod::Hours, "Every 2 hours"),
        ("1d", 1, IntervalPeriod::Days, "Every day"),
        ("1h", 1, IntervalPeriod::Hours, "Every hour"),
        (
            "500us",
            500,
            IntervalPeriod::Microseconds,
            "Every 500 microseconds",
        ),
        (" 10 s ", 10, IntervalPeriod::Seconds, "Every 10 seconds"),
    ];
    for (text, count, period, description) in cases {
        let interval: Interval = text.parse().unwrap();
        assert_eq!(
            (interval.every(), interval.period()),
            (count, period),
            "{text}"
        );
        assert_eq!(interval.describe(), description);
        assert_eq!(interval.to_string().parse::<Interval>().unwrap(), interval);
    }
    assert_eq!(
        "2h".parse::<Interval>().unwrap().duration(),
        TimeDelta::hours(2)
    );
    for bad in ["", "s", "10", "10x", "-5s", "1.5h", "5 m m"] {
        assert_eq!(
            bad.parse::<Interval>(),
            Err(IntervalError::Malformed { text: bad.into() }),
            "{bad:?}"
        );
    }
    assert_eq!("0s".parse::<Interval>(), Err(IntervalError::Zero));
    assert_eq!(
        "200000000d".parse::<Interval>().unwrap_err().to_string(),
        "every: 200000000 days is too long"
    );
}

#[test]
fn interval_is_due_every_after_the_last_run() {
    let now = utc("2025-01-01T12:00:00Z");
    let mut task = entry(every("5m"));
    task.last_run_at = Some(utc("2025-01-01T11:58:00Z"));
    assert_eq!(task.due_at(now), Some(utc("2025-01-01T12:03:00Z")));
    assert!(!task.is_due(now));
    task.last_run_at = Some(utc("2025-01-01T11:00:00Z"));
    assert!(task.is_due(now), "a missed interval is due at once");
}

#[test]
fn never_run_entries_anchor_at_start_time_or_date_changed() {
    let now = utc("2025-01-01T12:00:00Z");
    let mut task = entry(every("1h"));
    // No last run, no start time: one interval after the entry changed (or now).
    assert_eq!(task.due_at(now), Some(utc("2025-01-01T13:00:00Z")));
    task.date_changed = Some(utc("2025-01-01T11:30:00Z"));
    assert_eq!(task.due_at(now), Some(utc("2025-01-01T12:30:00Z")));
    // With a start time: runs at the start time.
    task.start_time = Some(utc("2025-01-02T08:00:00Z"));
    assert_eq!(task.due_at(now), Some(utc("2025-01-02T08:00:00Z")));
    task.start_time = Some(utc("2024-12-01T00:00:00Z"));
    assert!(task.is_due(now), "a past start time and no run: due now");
    // Never before the start time, even after a run.
    task.start_time = Some(utc("2025-01-03T00:00:00Z"));
    task.last_run_at = Some(utc("2025-01-01T11:59:00Z"));
    assert_eq!(task.due_at(now), Some(utc("2025-01-03T00:00:00Z")));
}

#[test]
fn crontab_entries() {
    let now = utc("2025-01-01T12:00:00Z");
    let mut task = entry(Schedule::Crontab("0 9 * * *".parse().unwrap()));
    task.last_run_at = Some(utc("2025-01-01T09:00:00Z"));
    assert_eq!(task.due_at(now), Some(utc("2025-01-02T09:00:00Z")));
    // Beat was down through this morning's run: due at once (Celery's catch-up).
    task.last_run_at = Some(utc("2024-12-31T09:00:00Z"));
    assert!(task.is_due(now));
    // Never run, with a start time: the first crontab time at or after it.
    task.last_run_at = None;
    task.start_time = Some(utc("2025-01-05T09:00:00Z"));
    assert_eq!(task.due_at(now), Some(utc("2025-01-05T09:00:00Z")));
    task.start_time = Some(utc("2025-01-05T09:00:01Z"));
    assert_eq!(task.due_at(now), Some(utc("2025-01-06T09:00:00Z")));
}

#[test]
fn clocked_entries_run_once() {
    let now = utc("2025-01-01T12:00:00Z");
    let at = utc("2025-01-01T11:00:00Z");
    let mut task = entry(Schedule::Clocked { at });
    assert!(task.one_off);
    assert_eq!(task.due_at(now), Some(at));
    assert!(
        task.is_due(now),
        "a clocked time in the past that never ran"
    );
    task.total_run_count = 1;
    task.last_run_at = Some(now);
    assert_eq!(task.due_at(now), None, "spent one-off");
    assert_eq!(Schedule::Clocked { at }.next_after(now), None);
    assert_eq!(
        Schedule::Clocked { at }.describe(),
        "Once at 2025-01-01 11:00:00 UTC"
    );
}

#[test]
fn disabled_and_expired_entries_are_never_due() {
    let now = utc("2025-01-01T12:00:00Z");
    let mut task = entry(every("1m"));
    task.last_run_at = Some(utc("2025-01-01T11:00:00Z"));
    task.enabled = false;
    assert_eq!(task.due_at(now), None);
    task.enabled = true;
    task.expires = Some(now);
    assert_eq!(task.due_at(now), None, "expires reached");
    task.expires = Some(utc("2025-01-01T11:00:30Z"));
    task.last_run_at = Some(utc("2025-01-01T11:00:00Z"));
    assert_eq!(
        task.due_at(utc("2025-01-01T11:00:10Z")),
        None,
        "next run past expiry"
    );
    task.expires = Some(utc("2025-01-02T00:00:00Z"));
    assert!(task.is_due(now));
}
