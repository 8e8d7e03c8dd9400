//! Unit tests for next run times at known DST transitions (gaps, overlaps, half-hour and 45-minute
//! zones, a skipped day), Celery's day rule, and the calendar's ends.

use super::*;
use chrono::NaiveDate;

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn crontab(expression: &str, timezone: &str) -> Crontab {
    Crontab::parse_cron(expression, timezone).unwrap()
}

/// `(instant, flag)` of the next `count` runs, instants as RFC 3339 text.
fn runs(crontab: &Crontab, after: &str, count: usize) -> Vec<(String, DstAdjustment)> {
    crontab
        .upcoming(utc(after), count)
        .into_iter()
        .map(|run| {
            (
                run.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                run.adjustment,
            )
        })
        .collect()
}

use DstAdjustment::{AmbiguousFirst, Normal, ShiftedByGap};

fn expect(pairs: &[(&str, DstAdjustment)]) -> Vec<(String, DstAdjustment)> {
    pairs
        .iter()
        .map(|(text, flag)| ((*text).to_owned(), *flag))
        .collect()
}

#[test]
fn strictly_after_and_second_resolution() {
    let every_minute = crontab("* * * * *", "UTC");
    assert_eq!(
        every_minute.next_after(utc("2024-01-01T09:00:00Z")),
        Some(utc("2024-01-01T09:01:00Z"))
    );
    assert_eq!(
        every_minute.next_after(utc("2024-01-01T09:00:30.5Z")),
        Some(utc("2024-01-01T09:01:00Z"))
    );
    assert_eq!(
        every_minute.next_after(utc("2024-01-01T08:59:59.999999999Z")),
        Some(utc("2024-01-01T09:00:00Z"))
    );
}

#[test]
fn plain_schedules() {
    assert_eq!(
        runs(
            &crontab("30 9 * * *", "Asia/Kolkata"),
            "2024-06-01T00:00:00Z",
            2
        ),
        expect(&[
            ("2024-06-01T04:00:00Z", Normal),
            ("2024-06-02T04:00:00Z", Normal)
        ])
    );
    assert_eq!(
        runs(&crontab("0 0 1 1 *", "UTC"), "2024-06-01T00:00:00Z", 1),
        expect(&[("2025-01-01T00:00:00Z", Normal)])
    );
    // 2024-12-31 is a Tuesday; the next Friday 13th is in June 2025.
    assert_eq!(
        runs(&crontab("0 12 13 * fri", "UTC"), "2024-12-31T00:00:00Z", 1),
        expect(&[("2025-06-13T12:00:00Z", Normal)])
    );
}

#[test]
fn day_of_month_and_day_of_week_must_both_match() {
    // First Monday of the month (Celery), not "days 1-7 or Mondays" (cron).
    assert_eq!(
        runs(&crontab("0 9 1-7 * mon", "UTC"), "2024-01-02T00:00:00Z", 3),
        expect(&[
            ("2024-02-05T09:00:00Z", Normal),
            ("2024-03-04T09:00:00Z", Normal),
            ("2024-04-01T09:00:00Z", Normal),
        ])
    );
}

#[test]
fn leap_day_on_a_given_weekday_is_found_decades_ahead() {
    assert_eq!(
        crontab("0 0 29 2 mon", "UTC").next_after(utc("2024-03-01T00:00:00Z")),
        Some(utc("2044-02-29T00:00:00Z"))
    );
    // Every weekday has a 29 February within the 400-year cycle.
    for weekday in 0..7 {
        let expression = format!("0 0 29 2 {weekday}");
        let next = crontab(&expression, "UTC")
            .next_after(utc("2100-03-01T00:00:00Z"))
            .unwrap();
        assert_eq!(next.date_naive().format("%m-%d").to_string(), "02-29");
        assert!(next < utc("2200-01-01T00:00:00Z"));
    }
}

#[test]
fn spring_forward_gap_runs_at_the_transition() {
    // Europe/Berlin 2024-03-31: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
    assert_eq!(
        runs(
            &crontab("30 2 * * *", "Europe/Berlin"),
            "2024-03-30T12:00:00Z",
            2
        ),
        expect(&[
            ("2024-03-31T01:00:00Z", ShiftedByGap),
            ("2024-04-01T00:30:00Z", Normal),
        ])
    );
    // Every 15 minutes: 02:00-02:45 collapse into one run at 03:00 CEST.
    assert_eq!(
        runs(
            &crontab("*/15 * * * *", "Europe/Berlin"),
            "2024-03-31T00:40:00Z",
            3
        ),
        expect(&[
            ("2024-03-31T00:45:00Z", Normal),
            ("2024-03-31T01:00:00Z", ShiftedByGap),
            ("2024-03-31T01:15:00Z", Normal),
        ])
    );
    // America/New_York 2024-03-10: 02:00 EST becomes 03:00 EDT at 07:00 UTC.
    assert_eq!(
        runs(
            &crontab("0 2 * * *", "America/New_York"),
            "2024-03-09T12:00:00Z",
            2
        ),
        expect(&[
            ("2024-03-10T07:00:00Z", ShiftedByGap),
            ("2024-03-11T06:00:00Z", Normal),
        ])
    );
    // America/Sao_Paulo 2018-11-04: midnight did not exist (00:00 -03 became 01:00 -02).
    assert_eq!(
        runs(
            &crontab("0 0 * * *", "America/Sao_Paulo"),
            "2018-11-03T12:00:00Z",
            1
        ),
        expect(&[("2018-11-04T03:00:00Z", ShiftedByGap)])
    );
}

#[test]
fn fall_back_overlap_runs_once_at_the_first_occurrence() {
    // Europe/Berlin 2024-10-27: 03:00 CEST becomes 02:00 CET at 01:00 UTC.
    assert_eq!(
        runs(
            &crontab("30 2 * * *", "Europe/Berlin"),
            "2024-10-26T12:00:00Z",
            2
        ),
        expect(&[
            ("2024-10-27T00:30:00Z", AmbiguousFirst),
            ("2024-10-28T01:30:00Z", Normal),
        ])
    );
    // Every 30 minutes: the repeated 02:00 and 02:30 CET do not run again.
    assert_eq!(
        runs(
            &crontab("*/30 * * * *", "Europe/Berlin"),
            "2024-10-26T23:40:00Z",
            4
        ),
        expect(&[
            ("2024-10-27T00:00:00Z", AmbiguousFirst),
            ("2024-10-27T00:30:00Z", AmbiguousFirst),
            ("2024-10-27T02:00:00Z", Normal),
            ("2024-10-27T02:30:00Z", Normal),
        ])
    );
    // Asked during the second pass, the repeated times are already done.
    assert_eq!(
        runs(
            &crontab("*/30 * * * *", "Europe/Berlin"),
            "2024-10-27T01:10:00Z",
            1
        ),
        expect(&[("2024-10-27T02:00:00Z", Normal)])
    );
}

#[test]
fn half_hour_and_45_minute_zones() {
    // Australia/Lord_Howe 2024-10-06: 02:00 +10:30 becomes 02:30 +11.
    assert_eq!(
        runs(
            &crontab("15 2 * * *", "Australia/Lord_Howe"),
            "2024-10-05T00:00:00Z",
            2
        ),
        expect(&[
            ("2024-10-05T15:30:00Z", ShiftedByGap),
            ("2024-10-06T15:15:00Z", Normal),
        ])
    );
    // Australia/Lord_Howe 2024-04-07: 02:00 +11 becomes 01:30 +10:30.
    assert_eq!(
        runs(
            &crontab("45 1 * * *", "Australia/Lord_Howe"),
            "2024-04-06T00:00:00Z",
            2
        ),
        expect(&[
            ("2024-04-06T14:45:00Z", AmbiguousFirst),
            ("2024-04-07T15:15:00Z", Normal),
        ])
    );
    // Pacific/Chatham 2024-09-29: 02:45 +12:45 becomes 03:45 +13:45.
    assert_eq!(
        runs(
            &crontab("0 3 * * *", "Pacific/Chatham"),
            "2024-09-28T00:00:00Z",
            2
        ),
        expect(&[
            ("2024-09-28T14:00:00Z", ShiftedByGap),
            ("2024-09-29T13:15:00Z", Normal),
        ])
    );
}

#[test]
fn a_skipped_day_runs_once_after_it() {
    // Pacific/Apia skipped 2011-12-30: 24:00 -10 on the 29th became 00:00 +14 on the 31st.
    assert_eq!(
        runs(
            &crontab("0 12 * * *", "Pacific/Apia"),
            "2011-12-29T12:00:00Z",
            3
        ),
        expect(&[
            ("2011-12-29T22:00:00Z", Normal),
            ("2011-12-30T10:00:00Z", ShiftedByGap),
            ("2011-12-30T22:00:00Z", Normal),
        ])
    );
    let shifted = crontab("0 12 * * *", "Pacific/Apia")
        .next_run(utc("2011-12-30T00:00:00Z"))
        .unwrap();
    assert_eq!(
        shifted.local,
        NaiveDate::from_ymd_opt(2011, 12, 30)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
    );
}

#[test]
fn ends_of_the_calendar_give_none_without_panicking() {
    let every_minute = crontab("* * * * *", "Pacific/Kiritimati");
    assert_eq!(every_minute.next_after(DateTime::<Utc>::MAX_UTC), None);
    let yearly = crontab("0 0 1 1 *", "America/Los_Angeles");
    let near_end = DateTime::<Utc>::MAX_UTC - TimeDelta::days(100);
    assert_eq!(yearly.next_after(near_end), None);
    // At the very start the wall-clock reading (UTC-7:52 LMT) is before the calendar.
    assert_eq!(yearly.next_after(DateTime::<Utc>::MIN_UTC), None);
    assert!(yearly
        .next_after(DateTime::<Utc>::MIN_UTC + TimeDelta::days(1))
        .is_some());
    assert_eq!(yearly.upcoming(DateTime::<Utc>::MAX_UTC, 3), Vec::new());
}

#[test]
fn upcoming_is_increasing_and_counted() {
    let crontab = crontab("*/7 1-3 * * *", "Europe/London");
    let upcoming = crontab.upcoming(utc("2024-03-30T00:00:00Z"), 100);
    assert_eq!(upcoming.len(), 100);
    assert!(upcoming.windows(2).all(|pair| pair[0].at < pair[1].at));
    assert!(crontab.upcoming(utc("2024-03-30T00:00:00Z"), 0).is_empty());
}
