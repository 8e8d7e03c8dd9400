//! The form's schedule is built and checked by the engine's rules, errors naming the field.

use super::*;

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
