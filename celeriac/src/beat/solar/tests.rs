//! Solar schedules: parsing and Django's decimal text, the serde form, and run times against
//! values Celery 5.7 (PyEphem 4.2) printed; the full comparison is `tests/it/solar_interop.rs`.

use super::*;
use chrono::TimeZone;

fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, hour, minute, second)
        .unwrap()
}

/// Within `seconds` of `expected` (times Celery 5.7 with PyEphem 4.2 printed; the full
/// comparison runs against Python in `tests/it/solar_interop.rs`).
fn assert_near(solar: &Solar, after: DateTime<Utc>, expected: DateTime<Utc>, seconds: i64) {
    let next = solar.next_after(after).unwrap();
    assert!(
        (next - expected).abs() <= TimeDelta::seconds(seconds),
        "{} after {after}: {next}, Celery {expected}",
        solar.describe()
    );
}

#[test]
fn events_at_mid_latitudes_match_celery() {
    let san_francisco = Solar::parse("sunrise", "37.7749", "-122.4194").unwrap();
    assert_near(
        &san_francisco,
        utc(2026, 6, 21, 0, 0, 0),
        utc(2026, 6, 21, 12, 48, 7),
        10,
    );
    let greenwich = Solar::parse("dusk_astronomical", "51.4769", "-0.0005").unwrap();
    assert_near(
        &greenwich,
        utc(2026, 12, 7, 0, 0, 0),
        utc(2026, 12, 7, 17, 54, 33),
        10,
    );
    let sydney = Solar::parse("solar_noon", "-33.8688", "151.2093").unwrap();
    assert_near(
        &sydney,
        utc(2026, 3, 20, 0, 0, 0),
        utc(2026, 3, 20, 2, 2, 43),
        5,
    );
}

#[test]
fn polar_night_waits_for_the_first_sunrise() {
    // Longyearbyen: no sunrise from late October until mid-February.
    let svalbard = Solar::parse("sunrise", "78.2232", "15.6469").unwrap();
    assert_near(
        &svalbard,
        utc(2026, 11, 1, 0, 0, 0),
        utc(2027, 2, 16, 10, 21, 6),
        180,
    );
}

#[test]
fn the_next_run_is_strictly_later_and_a_day_on() {
    let solar = Solar::parse("sunset", "48.8566", "2.3522").unwrap();
    let first = solar.next_after(utc(2026, 5, 1, 0, 0, 0)).unwrap();
    // From a second before, the same event (to the searches' precision, a tenth of a second);
    // from within that precision of it, as in PyEphem, the next day's.
    let again = solar.next_after(first - TimeDelta::seconds(1)).unwrap();
    assert!(
        (again - first).abs() < TimeDelta::milliseconds(200),
        "{again} {first}"
    );
    let second = solar.next_after(first).unwrap();
    let gap = second - first;
    assert!(
        gap > TimeDelta::hours(23) && gap < TimeDelta::hours(25),
        "{gap}"
    );
}

#[test]
fn coordinates_keep_django_s_decimal_text() {
    let solar = Solar::parse("dawn_civil", "-33.8688", "151.2093").unwrap();
    assert_eq!(solar.latitude_text(), "-33.868800");
    assert_eq!(solar.longitude_text(), "151.209300");
    assert_eq!(solar.describe(), "Civil dawn at -33.868800, 151.209300");
    assert_eq!(
        Solar::parse("sunrise", "-0.5", "0")
            .unwrap()
            .latitude_text(),
        "-0.500000"
    );
    // SQLite hands small REALs back in exponent form.
    assert_eq!(
        Solar::parse("sunrise", "1.0e-06", "0")
            .unwrap()
            .latitude_text(),
        "0.000001"
    );
    assert_eq!(
        Solar::parse("sunrise", "10", "20"),
        Solar::new(SolarEvent::Sunrise, 10.0, 20.0)
    );
}

#[test]
fn serde_form_is_tagged_with_numbers() {
    let schedule =
        crate::beat::Schedule::Solar(Solar::parse("sunrise", "37.7749", "-122.4194").unwrap());
    let json = serde_json::to_value(schedule).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"kind": "solar", "event": "sunrise", "latitude": 37.7749, "longitude": -122.4194})
    );
    let back: crate::beat::Schedule = serde_json::from_value(json).unwrap();
    assert_eq!(back, schedule);
    let refused = serde_json::from_value::<crate::beat::Schedule>(
        serde_json::json!({"kind": "solar", "event": "sunrise", "latitude": 91, "longitude": 0}),
    );
    assert!(refused.unwrap_err().to_string().contains("latitude"));
}

#[test]
fn bad_input_names_the_field() {
    let error = |event: &str, latitude: &str, longitude: &str| {
        Solar::parse(event, latitude, longitude)
            .unwrap_err()
            .to_string()
    };
    assert!(error("moonrise", "0", "0").starts_with("event: \"moonrise\" is not a solar event"));
    assert_eq!(
        error("sunrise", "90.000001", "0"),
        "latitude: 90.000001 is out of range (-90 to 90)"
    );
    assert_eq!(
        error("sunrise", "0", "-181"),
        "longitude: -181 is out of range (-180 to 180)"
    );
    assert_eq!(
        error("sunrise", "1.1234567", "0"),
        "latitude: \"1.1234567\" is not a number of degrees with at most 6 decimal places"
    );
    for text in ["", "-", ".", "north", "1.2.3", "--1", "1,5"] {
        assert!(
            error("sunrise", text, "0").starts_with("latitude: "),
            "{text:?}"
        );
    }
    assert!(Solar::new(SolarEvent::Sunset, f64::NAN, 0.0).is_err());
}

#[test]
fn every_event_has_a_name_that_parses_back() {
    for event in SolarEvent::ALL {
        assert_eq!(event.name().parse::<SolarEvent>(), Ok(event));
        assert_eq!(
            serde_json::to_value(event).unwrap(),
            serde_json::json!(event.name())
        );
    }
}
