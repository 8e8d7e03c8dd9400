//! Our solar schedules against Celery's own (`tests/python/solar_check.py`, `celery.schedules.
//! solar` on PyEphem 4.2): after the same `last_run_at` at the same place, the next run is the
//! same moment, for every event, at the equator, mid and high latitudes of both hemispheres,
//! in polar day and polar night, across the year.
//!
//! Celery 5.7 is the reference; 5.4 differs where 5.7 fixed it (`dusk_astronomical` at +18°,
//! and a `TypeError` where the Sun does not rise or set that day), which the 5.4 comparison
//! shows.

use celeriac::beat::{Solar, SolarEvent};
use celeriac::testkit::CeleryPeer;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::{json, Value};
use std::path::Path;

/// How far apart our time and PyEphem's may be. PyEphem's VSOP87 Sun and our low-precision
/// one agree to a few seconds where the Sun crosses the horizon steeply; at high latitudes it
/// crosses at a grazing angle, so the same altitude error is more time.
fn tolerance(latitude: f64) -> TimeDelta {
    if latitude.abs() <= 60.0 {
        TimeDelta::seconds(20)
    } else {
        TimeDelta::seconds(180)
    }
}

fn celery(python: &Path, request: &Value) -> Vec<Value> {
    let answer = CeleryPeer::ask(python, "solar_check.py", request);
    answer["next"]
        .as_array()
        .expect("a list of next runs")
        .clone()
}

/// Places as django-celery-beat stores them (decimal text), from the equator to both poles.
const PLACES: [(&str, &str); 12] = [
    ("0", "0"),
    ("37.774900", "-122.419400"), // San Francisco
    ("51.476900", "-0.000500"),   // Greenwich
    ("-33.868800", "151.209300"), // Sydney
    ("-54.801900", "-68.303000"), // Ushuaia
    ("59.329300", "18.068600"),   // Stockholm
    ("64.146600", "-21.942600"),  // Reykjavik
    ("69.649200", "18.955300"),   // Tromsø
    ("78.223200", "15.646900"),   // Longyearbyen
    ("-77.846300", "166.668200"), // McMurdo
    ("89.500000", "0"),
    ("1.352100", "103.819800"), // Singapore
];

/// Starting instants across the year, at several times of day.
fn instants() -> Vec<DateTime<Utc>> {
    let mut instants = Vec::new();
    for (month, day, hour) in [
        (1, 3, 0),
        (2, 14, 7),
        (3, 20, 12),
        (4, 30, 18),
        (6, 21, 3),
        (7, 15, 22),
        (8, 29, 9),
        (9, 23, 15),
        (11, 7, 5),
        (12, 21, 13),
    ] {
        instants.push(
            Utc.with_ymd_and_hms(2026, month, day, hour, 17, 42)
                .unwrap(),
        );
    }
    instants.push(Utc.with_ymd_and_hms(2031, 5, 2, 11, 0, 0).unwrap());
    instants.push(Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 59).unwrap());
    instants
}

struct Case {
    solar: Solar,
    after: DateTime<Utc>,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for event in SolarEvent::ALL {
        for (latitude, longitude) in PLACES {
            for after in instants() {
                let solar = Solar::parse(event.name(), latitude, longitude).unwrap();
                cases.push(Case { solar, after });
            }
        }
    }
    cases
}

fn request(cases: &[Case]) -> Value {
    let next: Vec<Value> = cases
        .iter()
        .map(|case| {
            json!({
                "event": case.solar.event().name(),
                "latitude": case.solar.latitude_text(),
                "longitude": case.solar.longitude_text(),
                "last_run_at": case.after.to_rfc3339(),
            })
        })
        .collect();
    json!({ "next": next })
}

fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

#[test]
fn next_runs_match_celery_5_7() {
    let cases = cases();
    let theirs = celery(&CeleryPeer::python_5_7(), &request(&cases));
    // Differences in milliseconds, up to 60° of latitude and beyond.
    let (mut temperate, mut polar) = (Vec::new(), Vec::new());
    let mut failures = Vec::new();
    for (case, their) in cases.iter().zip(&theirs) {
        let their = parse_time(their).unwrap_or_else(|| panic!("Celery 5.7 said {their}"));
        let ours = case.solar.next_after(case.after).expect("a next run");
        let difference = (ours - their).abs();
        if case.solar.latitude().abs() <= 60.0 {
            temperate.push(difference.num_milliseconds());
        } else {
            polar.push(difference.num_milliseconds());
        }
        if difference > tolerance(case.solar.latitude()) {
            failures.push(format!(
                "{} after {}: ours {ours}, Celery {their}",
                case.solar.describe(),
                case.after
            ));
        }
    }
    temperate.sort_unstable();
    polar.sort_unstable();
    let median = |sorted: &[i64]| sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    let largest = |sorted: &[i64]| sorted.last().copied().unwrap_or(0);
    eprintln!(
        "{} solar cases against Celery 5.7: up to 60° median {} ms, largest {} ms; \
         beyond 60° median {} ms, largest {} ms",
        cases.len(),
        median(&temperate),
        largest(&temperate),
        median(&polar),
        largest(&polar)
    );
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Celery 5.4 agrees wherever it answers, except `dusk_astronomical`, which it computes at
/// +18° (hours before the real one); where the Sun does not cross that day its fallback
/// raises `TypeError` (beat stops), and only there.
#[test]
fn celery_5_4_agrees_except_where_5_7_fixed_it() {
    let cases = cases();
    let theirs = celery(&CeleryPeer::python(), &request(&cases));
    let mut raised = 0;
    for (case, their) in cases.iter().zip(&theirs) {
        let ours = case.solar.next_after(case.after).expect("a next run");
        if case.solar.event() == SolarEvent::DuskAstronomical {
            // At +18° it is either hours from ours or, where the Sun stays lower, an error.
            if let Some(their) = parse_time(their) {
                let difference = (ours - their).abs();
                assert!(
                    difference > TimeDelta::minutes(30) || case.solar.latitude().abs() > 60.0,
                    "{}: Celery 5.4's +18° should be far from ours",
                    case.solar.describe()
                );
            }
            continue;
        }
        let Some(their) = parse_time(their) else {
            let error = their["error"].as_str().unwrap_or_default();
            assert!(error.starts_with("TypeError"), "{error}");
            // Our answer is not the same day: the Sun did not cross on this one.
            assert!(
                ours - case.after > TimeDelta::hours(24) || case.solar.latitude().abs() > 60.0,
                "{} after {}: Celery 5.4 raised {error}, ours {ours}",
                case.solar.describe(),
                case.after
            );
            raised += 1;
            continue;
        };
        let difference = (ours - their).abs();
        assert!(
            difference <= tolerance(case.solar.latitude()),
            "{} after {}: ours {ours}, Celery 5.4 {their}",
            case.solar.describe(),
            case.after
        );
    }
    eprintln!(
        "Celery 5.4 raised TypeError in {raised} of {} cases",
        cases.len()
    );
    assert!(
        raised > 0,
        "the polar cases should reach Celery 5.4's fallback"
    );
}
