//! The editor's text: DST notes on the runs a change moves, and which part an error marks.

use super::*;
use chrono::TimeZone;

#[test]
fn a_run_in_a_spring_forward_gap_is_flagged_in_the_zones_wall_clock() {
    let crontab = Crontab::parse_cron("30 2 * * *", "Europe/Berlin").unwrap();
    let after = Utc.with_ymd_and_hms(2024, 3, 30, 12, 0, 0).unwrap();
    let runs = crontab.upcoming(after, 2);
    let (text, note) = run_line(&crontab, &runs[0]);
    assert_eq!(text, "2024-03-31 03:00 CEST (Sun)");
    assert!(note.is_some_and(|note| note.starts_with("DST gap")));
    let (text, note) = run_line(&crontab, &runs[1]);
    assert_eq!(text, "2024-04-01 02:30 CEST (Mon)");
    assert_eq!(note, None);
}

#[test]
fn an_error_marks_the_part_it_names() {
    let mut spec = CrontabSpec {
        hour: "24".into(),
        ..CrontabSpec::default()
    };
    assert_eq!(faulty_part(&Crontab::new(&spec).unwrap_err()), "hour");
    spec.hour = "1".into();
    spec.timezone = "Mars/Olympus".into();
    assert_eq!(faulty_part(&Crontab::new(&spec).unwrap_err()), "timezone");
    set_part(&mut spec, "timezone", "UTC".into());
    assert_eq!(part(&spec, "timezone"), "UTC");
}
