//! Property test for `Crontab::next_run` (issue 5, acceptance 1): 10,000 random crontabs, zones
//! and instants, many of them within hours of a DST transition, compared with a brute-force
//! oracle. Zero panics and zero mismatches are allowed, and the run must actually meet gaps and
//! overlaps, or the test fails.
//!
//! The oracle shares nothing with the code under test but chrono-tz's offset table. It walks
//! wall-clock days one by one and, on a day whose date fields match, every minute of the day;
//! it resolves each matching minute by the documented policy, in the plainest way:
//! - a time chrono-tz reads once is that instant (checked by converting back);
//! - a time it reads twice is the earlier instant;
//! - a time it cannot read (a gap) is found by scanning instants forward, a minute and then a
//!   second at a time, from 15 hours before, for the first whose wall-clock reading reaches it.
//!
//! To stay fast the oracle looks [`WINDOW_DAYS`] days ahead; when it finds nothing there, the
//! code under test must answer with a minute past the window (or `None`).

use super::*;
use chrono::{Datelike, NaiveDate, Timelike};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::cell::Cell;
use std::collections::BTreeSet;

/// Zones named by the issue: DST north and south, 30-minute DST, a 45-minute zone, none.
const NAMED_ZONES: [Tz; 8] = [
    chrono_tz::America::New_York,
    chrono_tz::Europe::London,
    chrono_tz::Europe::Berlin,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Pacific::Chatham,
    chrono_tz::America::Sao_Paulo,
    chrono_tz::UTC,
];

/// How far ahead the oracle looks, in wall-clock days.
const WINDOW_DAYS: u32 = 3 * 366;

/// The crontab as plain value sets, the oracle's view.
#[derive(Debug, Clone)]
struct Sets {
    minute: BTreeSet<u32>,
    hour: BTreeSet<u32>,
    day_of_month: BTreeSet<u32>,
    month_of_year: BTreeSet<u32>,
    day_of_week: BTreeSet<u32>,
}

impl Sets {
    fn cron_text(&self) -> String {
        let list = |set: &BTreeSet<u32>| {
            set.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{} {} {} {} {}",
            list(&self.minute),
            list(&self.hour),
            list(&self.day_of_month),
            list(&self.month_of_year),
            list(&self.day_of_week)
        )
    }
}

/// A field's values: often everything, sometimes a step, a range or a few values.
fn values(min: u32, max: u32, few: std::ops::RangeInclusive<u32>) -> BoxedStrategy<BTreeSet<u32>> {
    let every: BTreeSet<u32> = (min..=max).collect();
    let stepped = (2..=(max - min).div_ceil(2))
        .prop_map(move |step| (min..=max).step_by(step as usize).collect());
    let range = (min..=max, 0..=(max - min))
        .prop_map(move |(from, length)| (from..=(from + length).min(max)).collect());
    prop_oneof![
        3 => Just(every),
        2 => stepped,
        3 => prop::collection::btree_set(few, 1..=4),
        2 => prop::collection::btree_set(min..=max, 1..=3),
        1 => range,
    ]
    .boxed()
}

/// Date fields are mostly `*`, so that most crontabs run within the oracle's window.
fn date_values(min: u32, max: u32) -> BoxedStrategy<BTreeSet<u32>> {
    let every: BTreeSet<u32> = (min..=max).collect();
    let stepped = (2..=4u32).prop_map(move |step| (min..=max).step_by(step as usize).collect());
    prop_oneof![
        6 => Just(every),
        1 => prop::collection::btree_set(min..=max, 1..=4),
        1 => stepped,
    ]
    .boxed()
}

fn sets() -> impl Strategy<Value = Sets> {
    (
        // Minutes around the :00, :15, :30 and :45 where transitions happen.
        values(0, 59, 0..=59),
        // Hours where most transitions happen (00:00-03:59 wall clock).
        values(0, 23, 0..=3),
        date_values(1, 31),
        date_values(1, 12),
        date_values(0, 6),
    )
        .prop_map(
            |(minute, hour, day_of_month, month_of_year, day_of_week)| Sets {
                minute,
                hour,
                day_of_month,
                month_of_year,
                day_of_week,
            },
        )
}

fn zone() -> impl Strategy<Value = Tz> {
    prop_oneof![
        prop::sample::select(NAMED_ZONES.to_vec()),
        prop::sample::select(chrono_tz::TZ_VARIANTS.to_vec()),
    ]
}

/// A point in 1970-2040, and whether and how far to move it to the next transition.
fn instant_seed() -> impl Strategy<Value = (i64, Option<i64>)> {
    let start = 0i64; // 1970-01-01T00:00:00Z
    let end = 2_208_988_800i64; // 2040-01-01T00:00:00Z
    (
        start..end,
        prop_oneof![
            1 => Just(None),
            3 => (-4 * 3600i64..4 * 3600).prop_map(Some),
            2 => (-2 * 3600i64..0).prop_map(Some),
            1 => (-90i64..90).prop_map(Some),
        ],
    )
}

fn wall_clock(timezone: Tz, instant: DateTime<Utc>) -> NaiveDateTime {
    instant.with_timezone(&timezone).naive_local()
}

/// The first instant after `from` (within 400 days) where the zone's offset changes.
fn next_transition(timezone: Tz, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let offset = |instant: DateTime<Utc>| {
        timezone
            .offset_from_utc_datetime(&instant.naive_utc())
            .fix()
    };
    let mut low = from;
    for _ in 0..400 {
        let mut high = low + TimeDelta::days(1);
        if offset(high) != offset(low) {
            while high - low > TimeDelta::seconds(1) {
                let middle = low + (high - low) / 2;
                if offset(middle) == offset(low) {
                    low = middle;
                } else {
                    high = middle;
                }
            }
            return Some(high);
        }
        low = high;
    }
    None
}

/// The oracle's answer.
#[derive(Debug, PartialEq)]
enum Expected {
    Run(UpcomingRun),
    /// Nothing runs before this wall-clock date.
    NothingBefore(NaiveDate),
}

fn oracle(sets: &Sets, timezone: Tz, after: DateTime<Utc>) -> Expected {
    let wall_after = wall_clock(timezone, after);
    let mut date = wall_after.date();
    for _ in 0..WINDOW_DAYS {
        let date_matches = sets.month_of_year.contains(&date.month())
            && sets.day_of_month.contains(&date.day())
            && sets
                .day_of_week
                .contains(&date.weekday().num_days_from_sunday());
        if date_matches {
            for hour in &sets.hour {
                for minute in &sets.minute {
                    let local = date.and_hms_opt(*hour, *minute, 0).unwrap();
                    // A time at or before `after`'s wall-clock reading resolves at or before
                    // `after` (that instant itself reads at or after it): not a later run.
                    if local <= wall_after {
                        continue;
                    }
                    let (at, adjustment) = oracle_resolve(timezone, local);
                    if at > after {
                        return Expected::Run(UpcomingRun {
                            at,
                            local,
                            adjustment,
                        });
                    }
                }
            }
        }
        date = date.succ_opt().unwrap();
    }
    Expected::NothingBefore(date)
}

fn oracle_resolve(timezone: Tz, local: NaiveDateTime) -> (DateTime<Utc>, DstAdjustment) {
    match timezone.from_local_datetime(&local) {
        LocalResult::Single(instant) => {
            let instant = instant.with_timezone(&Utc);
            assert_eq!(wall_clock(timezone, instant), local);
            (instant, DstAdjustment::Normal)
        }
        LocalResult::Ambiguous(first, second) => {
            let (first, second) = (first.with_timezone(&Utc), second.with_timezone(&Utc));
            assert_eq!(wall_clock(timezone, first), local);
            assert_eq!(wall_clock(timezone, second), local);
            (first.min(second), DstAdjustment::AmbiguousFirst)
        }
        LocalResult::None => (
            first_instant_reaching(timezone, local),
            DstAdjustment::ShiftedByGap,
        ),
    }
}

/// The earliest instant whose wall-clock reading is at or after `local`. Offsets since 1970 lie
/// within ±15 hours, so every instant 15 hours before `local` read as UTC reads earlier.
fn first_instant_reaching(timezone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut instant = (local - TimeDelta::hours(15)).and_utc();
    assert!(wall_clock(timezone, instant) < local);
    while wall_clock(timezone, instant) < local {
        instant += TimeDelta::minutes(1);
    }
    let mut second = instant - TimeDelta::minutes(1);
    while wall_clock(timezone, second) < local {
        second += TimeDelta::seconds(1);
    }
    assert!(wall_clock(timezone, second - TimeDelta::seconds(1)) < local);
    second
}

/// Compares one answer of the code under test with the oracle's.
fn check(
    actual: Option<UpcomingRun>,
    expected: &Expected,
    context: &str,
) -> Result<(), TestCaseError> {
    match (expected, actual) {
        (Expected::Run(expected), Some(actual)) => {
            prop_assert_eq!(&actual, expected, "{}", context);
        }
        (Expected::Run(expected), None) => {
            return Err(TestCaseError::fail(format!(
                "{context}: expected {expected:?}, got None"
            )));
        }
        (Expected::NothingBefore(date), Some(actual)) => {
            prop_assert!(
                actual.local.date() >= *date,
                "{}: oracle found nothing before {}, got {:?}",
                context,
                date,
                actual
            );
        }
        (Expected::NothingBefore(_), None) => {}
    }
    Ok(())
}

#[test]
fn next_run_matches_a_brute_force_scan() {
    let gaps = Cell::new(0u32);
    let overlaps = Cell::new(0u32);
    let cases = Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        cases: 10_000,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (sets(), zone(), instant_seed(), any::<bool>(), any::<bool>());
    runner
        .run(
            &strategy,
            |(mut sets, timezone, (seconds, shift), aim, aim_only)| {
                let base = DateTime::from_timestamp(seconds, 0).unwrap();
                let transition =
                    shift.and_then(|shift| Some((next_transition(timezone, base)?, shift)));
                let after = match transition {
                    Some((transition, shift)) => {
                        if aim {
                            // Make the crontab run in the wall-clock hours around the transition,
                            // so that many runs land in its gap or overlap.
                            // The first wall-clock time skipped (a gap) and the first repeated (an
                            // overlap).
                            let before = wall_clock(timezone, transition - TimeDelta::seconds(1));
                            let skipped = before + TimeDelta::seconds(1);
                            let repeated = wall_clock(timezone, transition);
                            if aim_only {
                                sets.hour.clear();
                            }
                            for local in [before, skipped, repeated] {
                                sets.hour.insert(local.hour());
                                sets.day_of_month.insert(local.day());
                                sets.month_of_year.insert(local.month());
                                sets.day_of_week
                                    .insert(local.weekday().num_days_from_sunday());
                            }
                        }
                        transition + TimeDelta::seconds(shift)
                    }
                    None => base,
                };
                let Ok(crontab) = Crontab::parse_cron(&sets.cron_text(), timezone.name()) else {
                    // Days of month that never occur in the months: refused, as documented.
                    return Ok(());
                };
                cases.set(cases.get() + 1);
                let context = format!(
                    "{} in {} after {}",
                    sets.cron_text(),
                    timezone.name(),
                    after
                );
                // The next run and the one after it, each against a fresh oracle search.
                let mut instant = after;
                for _ in 0..2 {
                    let expected = oracle(&sets, timezone, instant);
                    let actual = crontab.next_run(instant);
                    check(actual, &expected, &context)?;
                    let Expected::Run(run) = expected else {
                        break;
                    };
                    match run.adjustment {
                        DstAdjustment::ShiftedByGap => gaps.set(gaps.get() + 1),
                        DstAdjustment::AmbiguousFirst => overlaps.set(overlaps.get() + 1),
                        DstAdjustment::Normal => {}
                    }
                    instant = run.at;
                }
                Ok(())
            },
        )
        .unwrap();
    assert!(
        cases.get() > 9_000,
        "most crontabs are valid: {}",
        cases.get()
    );
    // About 330 and 1,000 in practice.
    assert!(gaps.get() > 150, "runs moved by a gap: {}", gaps.get());
    assert!(
        overlaps.get() > 300,
        "runs in an overlap: {}",
        overlaps.get()
    );
}

proptest! {
    #![proptest_config(Config { cases: 2_000, ..Config::default() })]

    /// Canonical text reads back to the same crontab.
    #[test]
    fn canonical_text_round_trips(sets in sets()) {
        if let Ok(crontab) = sets.cron_text().parse::<Crontab>() {
            let canonical = crontab.to_string();
            prop_assert_eq!(canonical.parse::<Crontab>().unwrap(), crontab, "{}", canonical);
        }
    }
}
