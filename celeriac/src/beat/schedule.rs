//! `Schedule`: when a periodic task runs, one of django-celery-beat's schedule kinds.
//!
//! django-celery-beat keeps each kind in its own table (`crontabschedule`, `intervalschedule`,
//! `clockedschedule`, `solarschedule`) with exactly one foreign key set per periodic task; here
//! that is one enum.
//!
//! The common question a beat asks is "after a run at `last_run_at`, when is the next one?",
//! which is Celery's `is_due(last_run_at)` turned into an instant: [`Schedule::next_after`].

use super::crontab::Crontab;
use super::interval::Interval;
use super::solar::Solar;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// When a periodic task runs.
///
/// The serde form is tagged by `kind`:
/// `{"kind": "crontab", "minute": "0", "hour": "*/2", ..., "timezone": "UTC"}`,
/// `{"kind": "interval", "every": 30, "period": "seconds"}`,
/// `{"kind": "clocked", "at": "2025-01-01T09:00:00Z"}`,
/// `{"kind": "solar", "event": "sunrise", "latitude": 37.7749, "longitude": -122.4194}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// Wall-clock times in a zone.
    Crontab(Crontab),
    /// A fixed span after the previous run.
    Interval(Interval),
    /// Once, at an instant (django-celery-beat's `ClockedSchedule`; its task must be `one_off`).
    Clocked {
        /// When to run.
        at: DateTime<Utc>,
    },
    /// An event of the Sun's day at a place (django-celery-beat's `SolarSchedule`).
    Solar(Solar),
}

impl Schedule {
    /// The next run after a run at `last_run_at`: the next crontab time after it, `every` after
    /// it, the clocked instant if it is later, or the solar event's next occurrence. `None` if there is none (a clocked schedule
    /// that has run, or the end of the calendar).
    ///
    /// ```
    /// use celeriac::beat::Schedule;
    /// use chrono::{TimeZone, Utc};
    ///
    /// let schedule = Schedule::Interval("5m".parse().unwrap());
    /// let last_run_at = Utc.with_ymd_and_hms(2025, 1, 1, 9, 0, 0).unwrap();
    /// let next = Utc.with_ymd_and_hms(2025, 1, 1, 9, 5, 0).unwrap();
    /// assert_eq!(schedule.next_after(last_run_at), Some(next));
    /// ```
    pub fn next_after(&self, last_run_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Crontab(crontab) => crontab.next_after(last_run_at),
            Schedule::Interval(interval) => last_run_at.checked_add_signed(interval.duration()),
            Schedule::Clocked { at } => (*at > last_run_at).then_some(*at),
            Schedule::Solar(solar) => solar.next_after(last_run_at),
        }
    }

    /// A one-sentence English description.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Crontab(crontab) => crontab.describe(),
            Schedule::Interval(interval) => interval.describe(),
            Schedule::Clocked { at } => format!("Once at {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
            Schedule::Solar(solar) => solar.describe(),
        }
    }
}

impl From<Crontab> for Schedule {
    fn from(crontab: Crontab) -> Schedule {
        Schedule::Crontab(crontab)
    }
}

impl From<Solar> for Schedule {
    fn from(solar: Solar) -> Schedule {
        Schedule::Solar(solar)
    }
}

impl From<Interval> for Schedule {
    fn from(interval: Interval) -> Schedule {
        Schedule::Interval(interval)
    }
}
