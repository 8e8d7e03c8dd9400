//! The form's schedule is built and checked by the engine's rules, errors naming the field;
//! the preview's runs are on the zone's wall clock, with DST changes flagged.

use super::*;
use chrono::TimeZone;

#[test]
fn an_invalid_crontab_field_is_named_and_a_valid_one_round_trips() {
    let mut spec = CrontabSpec {
        minute: "*/5".into(),
        ..CrontabSpec::default()
    };
    let schedule = ScheduleSpec::Crontab(spec.clone()).build().unwrap();
    assert_eq!(
        ScheduleSpec::of(&schedule),
        ScheduleSpec::Crontab(spec.clone())
    );
    spec.hour = "24".into();
    assert_eq!(
        ScheduleSpec::Crontab(spec).build().unwrap_err(),
        "hour: 24 is out of range 0-23"
    );
    let form: ScheduleForm = serde_json::from_str(
        r#"{"schedule": {"kind": "interval", "every": 30, "period": "seconds"}}"#,
    )
    .unwrap();
    assert_eq!(
        form.schedule.unwrap().build().unwrap().describe(),
        Schedule::Interval("30s".parse().unwrap()).describe()
    );
}

#[test]
fn a_preview_run_in_a_spring_forward_gap_is_flagged_in_the_zones_wall_clock() {
    let spec = ScheduleSpec::Crontab(CrontabSpec {
        minute: "30".into(),
        hour: "2".into(),
        timezone: "Europe/Berlin".into(),
        ..CrontabSpec::default()
    });
    let now = Utc.with_ymd_and_hms(2024, 3, 30, 12, 0, 0).unwrap();
    let preview = spec.preview(now, 2);
    assert_eq!(preview.error, None);
    assert_eq!(preview.description, "At 02:30 (Europe/Berlin)");
    assert_eq!(preview.runs[0].local, "2024-03-31 03:00 CEST (Sun)");
    assert!(preview.runs[0]
        .dst_note
        .as_deref()
        .is_some_and(|note| note.starts_with("DST gap")));
    assert_eq!(preview.runs[1].local, "2024-04-01 02:30 CEST (Mon)");
    assert_eq!(preview.runs[1].dst_note, None);
}

#[test]
fn a_preview_error_names_the_input_it_is_about() {
    let now = Utc.with_ymd_and_hms(2024, 3, 30, 12, 0, 0).unwrap();
    let mut spec = CrontabSpec {
        hour: "24".into(),
        ..CrontabSpec::default()
    };
    let preview = ScheduleSpec::Crontab(spec.clone()).preview(now, 5);
    let error = preview.error.unwrap();
    assert_eq!(
        (error.part.as_str(), error.message.as_str()),
        ("hour", "hour: 24 is out of range 0-23")
    );
    assert!(preview.runs.is_empty());
    spec.hour = "1".into();
    spec.timezone = "Mars/Olympus".into();
    let preview = ScheduleSpec::Crontab(spec).preview(now, 5);
    assert_eq!(preview.error.unwrap().part, "timezone");
    let interval = ScheduleSpec::Interval {
        every: 0,
        period: IntervalPeriod::Seconds,
    };
    assert_eq!(interval.preview(now, 5).error.unwrap().part, "every");
}

/// Issue 13: an admin could save an every-microsecond schedule (beat then sent ~95 tasks/s).
#[test]
fn intervals_under_a_second_are_refused_naming_every() {
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let fast = ScheduleSpec::Interval {
        every: 999_999,
        period: IntervalPeriod::Microseconds,
    };
    let error = fast.preview(now, 5).error.unwrap();
    assert_eq!(error.part, "every");
    assert!(
        error.message.contains("shortest interval"),
        "{}",
        error.message
    );
    assert!(fast.build().is_err());
    let second = ScheduleSpec::Interval {
        every: 1_000_000,
        period: IntervalPeriod::Microseconds,
    };
    assert!(second.build().is_ok());
}

#[test]
fn a_solar_draft_previews_its_next_events_or_names_the_field() {
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let spec = ScheduleSpec::Solar {
        event: "sunset".into(),
        latitude: "48.8566".into(),
        longitude: "2.3522".into(),
    };
    let preview = spec.preview(now, 3);
    assert_eq!(preview.description, "Sunset at 48.856600, 2.352200");
    assert_eq!(preview.runs.len(), 3);
    assert!(
        preview.runs[0].local.starts_with("2026-06-01 19:"),
        "{:?}",
        preview.runs
    );
    let schedule = spec.build().unwrap();
    assert_eq!(
        ScheduleSpec::of(&schedule),
        ScheduleSpec::Solar {
            event: "sunset".into(),
            latitude: "48.856600".into(),
            longitude: "2.352200".into(),
        }
    );
    let bad = ScheduleSpec::Solar {
        event: "sunset".into(),
        latitude: "48.8566".into(),
        longitude: "east".into(),
    };
    let error = bad.preview(now, 3).error.unwrap();
    assert_eq!(error.part, "longitude");
    assert!(bad.build().unwrap_err().starts_with("longitude: \"east\""));
}
