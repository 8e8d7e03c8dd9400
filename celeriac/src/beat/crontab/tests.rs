//! Unit tests for crontab parsing: Celery's grammar, names, Sunday as 0 or 7, wrapped ranges,
//! validation messages, canonical text and the serde form.

use super::*;
use crate::beat::CrontabField;

fn cron(expression: &str) -> Crontab {
    expression.parse().unwrap()
}

fn error(expression: &str) -> String {
    expression.parse::<Crontab>().unwrap_err().to_string()
}

fn values(field: CrontabField, text: &str) -> Vec<u32> {
    FieldSet::parse(field, text).unwrap().values().collect()
}

#[test]
fn celery_parser_examples() {
    // The examples in the docstring of Celery's `crontab_parser`.
    assert_eq!(values(CrontabField::Minute, "*/15"), [0, 15, 30, 45]);
    assert_eq!(values(CrontabField::Hour, "*/4"), [0, 4, 8, 12, 16, 20]);
    assert_eq!(values(CrontabField::DayOfWeek, "*"), [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(
        values(CrontabField::DayOfMonth, "*/3"),
        [1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31]
    );
    assert_eq!(
        values(CrontabField::MonthOfYear, "*/2"),
        [1, 3, 5, 7, 9, 11]
    );
    assert_eq!(
        values(CrontabField::MonthOfYear, "2-12/2"),
        [2, 4, 6, 8, 10, 12]
    );
    assert_eq!(
        values(CrontabField::Minute, "1,13,30-45,50-59/2"),
        [
            1, 13, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 50, 52, 54, 56,
            58
        ]
    );
}

#[test]
fn lists_ranges_and_steps() {
    assert_eq!(values(CrontabField::Minute, "1,2"), [1, 2]);
    assert_eq!(values(CrontabField::Hour, "1-5"), [1, 2, 3, 4, 5]);
    assert_eq!(
        values(CrontabField::Minute, "1-30/5"),
        [1, 6, 11, 16, 21, 26]
    );
    assert_eq!(values(CrontabField::Minute, " 5 , 10 "), [5, 10]);
    assert_eq!(values(CrontabField::Minute, "*/100"), [0]);
    assert_eq!(values(CrontabField::Minute, "7,7,7"), [7]);
}

#[test]
fn wrapped_ranges_follow_celery() {
    assert_eq!(values(CrontabField::Hour, "22-2"), [0, 1, 2, 22, 23]);
    // Celery steps through the wrapped list in order: 22, 23, 0, 1, 2 → 22, 0, 2.
    assert_eq!(values(CrontabField::Hour, "22-2/2"), [0, 2, 22]);
    assert_eq!(values(CrontabField::DayOfWeek, "fri-mon"), [0, 1, 5, 6]);
    // Celery: [5, 6, 0, 1][::2].
    assert_eq!(values(CrontabField::DayOfWeek, "fri-mon/2"), [0, 5]);
    assert_eq!(values(CrontabField::MonthOfYear, "nov-feb"), [1, 2, 11, 12]);
}

#[test]
fn day_names_any_case_and_sunday_as_0_or_7() {
    assert_eq!(values(CrontabField::DayOfWeek, "mon-fri"), [1, 2, 3, 4, 5]);
    assert_eq!(values(CrontabField::DayOfWeek, "MON,Fri"), [1, 5]);
    assert_eq!(values(CrontabField::DayOfWeek, "Sunday,saturday"), [0, 6]);
    assert_eq!(values(CrontabField::DayOfWeek, "0"), [0]);
    assert_eq!(values(CrontabField::DayOfWeek, "7"), [0]);
    assert_eq!(values(CrontabField::DayOfWeek, "sun"), [0]);
    assert_eq!(
        values(CrontabField::DayOfWeek, "0-7"),
        [0, 1, 2, 3, 4, 5, 6]
    );
    assert_eq!(values(CrontabField::DayOfWeek, "sat-7"), [0, 6]);
    assert_eq!(values(CrontabField::DayOfWeek, "5-7"), [0, 5, 6]);
    assert_eq!(values(CrontabField::DayOfWeek, "1-7/2"), [0, 1, 3, 5]);
    assert_eq!(values(CrontabField::DayOfWeek, "7-1"), [0, 1]);
    assert_eq!(values(CrontabField::DayOfWeek, "7"), [0]);
    assert_eq!(cron("0 0 * * 7"), cron("0 0 * * 0"));
    assert_eq!(cron("0 0 * * 7").to_string(), "0 0 * * 0");
}

#[test]
fn month_names_any_case() {
    assert_eq!(
        values(CrontabField::MonthOfYear, "jan,JUL,December"),
        [1, 7, 12]
    );
    assert_eq!(values(CrontabField::MonthOfYear, "mar-may"), [3, 4, 5]);
    // Written back as numbers, which Celery's parser reads (it knows no month names).
    assert_eq!(cron("0 0 1 jan,jul *").to_string(), "0 0 1 1,7 *");
}

#[test]
fn validation_messages_name_the_field_and_reason() {
    let cases = [
        ("0 24 * * *", "hour: 24 is out of range 0-23"),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("* * 0 * *", "day_of_month: 0 is out of range 1-31"),
        ("* * 32 * *", "day_of_month: 32 is out of range 1-31"),
        ("* * * 13 *", "month_of_year: 13 is out of range 1-12"),
        ("* * * * 8", "day_of_week: 8 is out of range 0-7"),
        ("* * * * fry", "day_of_week: \"fry\" is not a day name"),
        ("* * * * mond", "day_of_week: \"mond\" is not a day name"),
        ("* * * foo *", "month_of_year: \"foo\" is not a month name"),
        ("mon * * * *", "minute: \"mon\" is not a number"),
        ("*/0 * * * *", "minute: step 0 is not allowed"),
        ("*/ * * * *", "minute: \"*/\" has no step after \"/\""),
        ("5/15 * * * *", "minute: \"5/15\": a step needs * or a range before \"/\""),
        ("1,,2 * * * *", "minute: empty list item in \"1,,2\""),
        ("-5 * * * *", "minute: negative numbers are not allowed (\"-5\")"),
        ("1-2-3 * * * *", "minute: \"2-3\" is not a number"),
        ("*/x * * * *", "minute: \"x\" is not a number"),
        ("99999999999999999999999 * * * *", "minute: 99999999999999999999999 is out of range 0-59"),
        ("* * * *", "expected 5 fields \"minute hour day_of_month month_of_year day_of_week\", found 4"),
        ("* * * * * *", "expected 5 fields \"minute hour day_of_month month_of_year day_of_week\", found 6"),
        ("@fortnightly", "unknown shorthand \"@fortnightly\" (use @yearly, @monthly, @weekly, @daily or @hourly)"),
        (
            "0 0 30,31 2 *",
            "day_of_month: 30,31 never occurs in month_of_year 2, so the crontab never fires",
        ),
        (
            "0 0 31 4,6,9,11 *",
            "day_of_month: 31 never occurs in month_of_year 4,6,9,11, so the crontab never fires",
        ),
    ];
    for (expression, expected) in cases {
        assert_eq!(error(expression), expected, "for {expression:?}");
    }
}

#[test]
fn errors_carry_the_field() {
    let CrontabError::Field { field, problem } = "0 24 * * *".parse::<Crontab>().unwrap_err()
    else {
        panic!("expected a field error");
    };
    assert_eq!(field, CrontabField::Hour);
    assert!(matches!(problem, FieldProblem::OutOfRange { .. }));
}

#[test]
fn invalid_timezone_is_refused() {
    let spec = CrontabSpec {
        timezone: "Mars/Olympus_Mons".into(),
        ..CrontabSpec::default()
    };
    assert_eq!(
        Crontab::new(&spec).unwrap_err().to_string(),
        "timezone: \"Mars/Olympus_Mons\" is not a tz database zone name (such as \"Europe/Berlin\")"
    );
    assert!(Crontab::parse_cron("* * * * *", "").is_err());
    assert_eq!(
        Crontab::parse_cron("* * * * *", "Asia/Kolkata")
            .unwrap()
            .timezone(),
        chrono_tz::Asia::Kolkata
    );
}

#[test]
fn feb_29_is_allowed() {
    let crontab = cron("0 0 29 2 *");
    assert_eq!(crontab.values(CrontabField::DayOfMonth), [29]);
}

#[test]
fn keyword_form_equals_cron_order() {
    let spec = CrontabSpec {
        minute: "30".into(),
        hour: "7".into(),
        day_of_week: "mon,fri".into(),
        ..CrontabSpec::default()
    };
    assert_eq!(Crontab::new(&spec).unwrap(), cron("30 7 * * mon,fri"));
}

#[test]
fn shorthands() {
    assert_eq!(cron("@daily"), cron("0 0 * * *"));
    assert_eq!(cron("@hourly"), cron("0 * * * *"));
    assert_eq!(cron("@weekly"), cron("0 0 * * sun"));
    assert_eq!(cron("@monthly"), cron("0 0 1 * *"));
    assert_eq!(cron("@yearly"), cron("0 0 1 1 *"));
}

#[test]
fn canonical_text() {
    let cases = [
        ("* * * * *", "* * * * *"),
        ("0,15,30,45 * * * *", "*/15 * * * *"),
        ("0-59/15 * * * *", "*/15 * * * *"),
        ("0,30 * * * *", "0,30 * * * *"),
        ("0,20,40 * * * *", "*/20 * * * *"),
        ("0 0,2 * * *", "0 0,2 * * *"),
        ("5-59/15 * * * *", "5-50/15 * * * *"),
        ("1,2,3,4,5,10 9-17 * * mon-fri", "1-5,10 9-17 * * 1-5"),
        ("0 */2 * * *", "0 */2 * * *"),
        ("0 0 * * */2", "0 0 * * */2"),
        ("0 0 1-31 1-12 0-6", "0 0 * * *"),
        ("0 0 * * sat,sun", "0 0 * * 0,6"),
        ("30 7 1 * *", "30 7 1 * *"),
        ("0 22-2 * * *", "0 0-2,22,23 * * *"),
    ];
    for (expression, canonical) in cases {
        assert_eq!(
            cron(expression).to_string(),
            canonical,
            "for {expression:?}"
        );
        // Canonical text reads back to the same schedule.
        assert_eq!(cron(canonical), cron(expression), "for {canonical:?}");
    }
}

#[test]
fn canonical_text_round_trips_for_every_field_shape() {
    // Every subset of a small window of values, in every field, survives render → parse.
    for field in [
        CrontabField::Minute,
        CrontabField::Hour,
        CrontabField::DayOfWeek,
        CrontabField::DayOfMonth,
        CrontabField::MonthOfYear,
    ] {
        for bits in 1u32..(1 << 7) {
            let values = (0..7)
                .filter(|bit| bits & (1 << bit) != 0)
                .map(|bit| field.min() + bit);
            let set = FieldSet::from_values(field, values).unwrap();
            let text = set.render(field);
            assert_eq!(
                FieldSet::parse(field, &text).unwrap(),
                set,
                "{field} {text:?}"
            );
        }
    }
}

#[test]
fn serde_uses_django_celery_beat_fields() {
    let crontab = Crontab::parse_cron("30 7 * * mon,fri", "Europe/Berlin").unwrap();
    let json = serde_json::to_value(crontab).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "minute": "30",
            "hour": "7",
            "day_of_week": "1,5",
            "day_of_month": "*",
            "month_of_year": "*",
            "timezone": "Europe/Berlin",
        })
    );
    assert_eq!(serde_json::from_value::<Crontab>(json).unwrap(), crontab);
    // Missing fields default to `*` and UTC, as in the django model.
    let hourly: Crontab = serde_json::from_value(serde_json::json!({"minute": "0"})).unwrap();
    assert_eq!(hourly, cron("0 * * * *"));
    let invalid = serde_json::from_value::<Crontab>(serde_json::json!({"hour": "24"}));
    assert!(invalid
        .unwrap_err()
        .to_string()
        .contains("hour: 24 is out of range 0-23"));
}

#[test]
fn from_values_checks_ranges() {
    let utc = chrono_tz::UTC;
    let crontab = Crontab::from_values(&[0, 30], &[9], &[7], &[1], &[1], utc).unwrap();
    assert_eq!(crontab.to_string(), "0,30 9 1 1 0");
    let too_big = Crontab::from_values(&[60], &[0], &[0], &[1], &[1], utc).unwrap_err();
    assert_eq!(too_big.to_string(), "minute: 60 is out of range 0-59");
    let empty = Crontab::from_values(&[], &[0], &[0], &[1], &[1], utc).unwrap_err();
    assert_eq!(
        empty.to_string(),
        "minute: no value given (use * for every value)"
    );
}

#[test]
fn matches_requires_day_of_month_and_day_of_week() {
    // Celery's rule: both must match. 2024-01-01 was a Monday, 2024-01-08 too.
    let crontab = cron("0 9 1-7 * mon");
    let at = |day: u32| {
        NaiveDate::from_ymd_opt(2024, 1, day)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap()
    };
    assert!(crontab.matches(at(1)));
    assert!(!crontab.matches(at(2)), "a Tuesday in days 1-7");
    assert!(!crontab.matches(at(8)), "a Monday outside days 1-7");
}
