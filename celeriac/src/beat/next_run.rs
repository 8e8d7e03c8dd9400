//! When a crontab runs next: matching wall-clock minutes in the schedule's zone, turned into
//! instants by the DST policy described in the [`beat`](super) module docs.
//!
//! Definition (the one the property test's brute-force oracle also implements): for each
//! matching wall-clock minute `N`, the run instant is `resolve(N)`, the earliest instant whose
//! wall-clock reading in the zone is at or after `N`. That is the single instant showing `N`;
//! the first of two if `N` occurs twice (fall-back overlap); the first instant after the gap if
//! `N` never occurs (spring-forward gap). `resolve` never decreases as `N` grows, and several
//! minutes in one gap share one instant; each instant is one run, flagged by the smallest
//! minute that resolves to it.
//!
//! The next run after an instant `t` is the smallest `resolve(N)` greater than `t`. Any `N` at
//! or before the wall-clock reading of `t` resolves at or before `t` (that reading is at or after
//! `N`), so the search starts at the minute after that reading, walks matching minutes with
//! `Crontab::next_local_match` (which skips months, days and hours at a time) and stops at the
//! first one that resolves after `t`. Only inside an overlap does it skip minutes: those
//! already ran during the first pass.

use super::crontab::Crontab;
use chrono::offset::LocalResult;
use chrono::{DateTime, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::{GapInfo, Tz};
use serde::{Deserialize, Serialize};

/// How a run's instant relates to its wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DstAdjustment {
    /// The wall-clock time occurs once; the run is at that instant.
    Normal,
    /// The wall-clock time falls in a spring-forward gap; the run is at the first instant after
    /// the gap (the transition).
    ShiftedByGap,
    /// The wall-clock time occurs twice (fall-back overlap); the run is at the first occurrence
    /// and not repeated at the second.
    AmbiguousFirst,
}

/// One future run of a crontab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UpcomingRun {
    /// When the task is sent.
    pub at: DateTime<Utc>,
    /// The matching wall-clock minute in the crontab's zone that produced this run.
    pub local: NaiveDateTime,
    /// Whether DST moved or merged the run.
    pub adjustment: DstAdjustment,
}

/// The most matching minutes one search visits before giving up: an overlap repeats at most a
/// day of wall-clock time (1,440 minutes) in any zone's history, so this is never reached.
const MAX_CANDIDATES: usize = 10_000;

impl Crontab {
    /// The first run strictly after `instant`, or `None` past either end of chrono's calendar
    /// (years ±262,142).
    ///
    /// ```
    /// use celeriac::beat::Crontab;
    /// use chrono::{TimeZone, Utc};
    ///
    /// // 02:30 does not exist in Berlin on 2024-03-31: the run moves to 03:00 CEST (01:00 UTC).
    /// let crontab = Crontab::parse_cron("30 2 * * *", "Europe/Berlin").unwrap();
    /// let after = Utc.with_ymd_and_hms(2024, 3, 30, 12, 0, 0).unwrap();
    /// let next = crontab.next_after(after).unwrap();
    /// assert_eq!(next, Utc.with_ymd_and_hms(2024, 3, 31, 1, 0, 0).unwrap());
    /// ```
    pub fn next_after(&self, instant: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_run(instant).map(|run| run.at)
    }

    /// Like [`Crontab::next_after`], with the wall-clock minute and the DST flag.
    pub fn next_run(&self, instant: DateTime<Utc>) -> Option<UpcomingRun> {
        let offset = self
            .timezone
            .offset_from_utc_datetime(&instant.naive_utc())
            .fix();
        // Checked: near the ends of chrono's calendar the wall-clock reading may not exist.
        let wall_clock = instant.naive_utc().checked_add_offset(offset)?;
        let floored = wall_clock.with_second(0)?.with_nanosecond(0)?;
        let mut from = floored.checked_add_signed(TimeDelta::minutes(1))?;
        for _ in 0..MAX_CANDIDATES {
            let local = self.next_local_match(from)?;
            let (at, adjustment) = resolve(self.timezone, local)?;
            if at > instant {
                return Some(UpcomingRun {
                    at,
                    local,
                    adjustment,
                });
            }
            from = local.checked_add_signed(TimeDelta::minutes(1))?;
        }
        None
    }

    /// The next `count` runs after `after`, in order (fewer only past the end of the calendar).
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<UpcomingRun> {
        let mut runs = Vec::with_capacity(count);
        let mut instant = after;
        while runs.len() < count {
            let Some(run) = self.next_run(instant) else {
                break;
            };
            instant = run.at;
            runs.push(run);
        }
        runs
    }
}

/// The earliest instant whose wall-clock reading in `timezone` is at or after `local`.
pub(crate) fn resolve(
    timezone: Tz,
    local: NaiveDateTime,
) -> Option<(DateTime<Utc>, DstAdjustment)> {
    match timezone.from_local_datetime(&local) {
        LocalResult::Single(instant) => Some((instant.with_timezone(&Utc), DstAdjustment::Normal)),
        LocalResult::Ambiguous(first, second) => Some((
            first.min(second).with_timezone(&Utc),
            DstAdjustment::AmbiguousFirst,
        )),
        LocalResult::None => {
            // The gap begins at the wall-clock reading `transition + offset before`, so the
            // transition, the first instant after the gap, is that reading minus that offset.
            let (gap_start, offset_before) = GapInfo::new(&local, &timezone)?.begin?;
            let offset_seconds = offset_before.fix().local_minus_utc();
            let transition =
                gap_start.checked_sub_signed(TimeDelta::seconds(i64::from(offset_seconds)))?;
            Some((transition.and_utc(), DstAdjustment::ShiftedByGap))
        }
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
