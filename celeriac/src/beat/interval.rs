//! `Interval`: "every N units", django-celery-beat's `IntervalSchedule` (`every`, `period`) and
//! Celery's `schedule(run_every=timedelta(...))`.
//!
//! An interval has no phase of its own: it runs `every` after the previous run (see
//! `PeriodicTask::due_at` for how the first run is anchored). The short text form `30s`, `5m`,
//! `2h`, `1d` (and `500us`, because django-celery-beat also has microseconds) is for forms and
//! the command line; the serde form is django-celery-beat's `{"every": 30, "period": "seconds"}`.
//!
//! Invariant: `every` is at least 1 and the whole interval fits a [`TimeDelta`].

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The unit of an [`Interval`], spelled as django-celery-beat's `period` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntervalPeriod {
    /// 86,400 seconds (no calendar or DST logic: an interval counts elapsed time).
    Days,
    /// 3,600 seconds.
    Hours,
    /// 60 seconds.
    Minutes,
    /// One second.
    Seconds,
    /// One microsecond.
    Microseconds,
}

impl IntervalPeriod {
    fn microseconds(self) -> u64 {
        match self {
            IntervalPeriod::Days => 86_400_000_000,
            IntervalPeriod::Hours => 3_600_000_000,
            IntervalPeriod::Minutes => 60_000_000,
            IntervalPeriod::Seconds => 1_000_000,
            IntervalPeriod::Microseconds => 1,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            IntervalPeriod::Days => "d",
            IntervalPeriod::Hours => "h",
            IntervalPeriod::Minutes => "m",
            IntervalPeriod::Seconds => "s",
            IntervalPeriod::Microseconds => "us",
        }
    }

    /// The English unit, singular.
    fn noun(self) -> &'static str {
        match self {
            IntervalPeriod::Days => "day",
            IntervalPeriod::Hours => "hour",
            IntervalPeriod::Minutes => "minute",
            IntervalPeriod::Seconds => "second",
            IntervalPeriod::Microseconds => "microsecond",
        }
    }
}

/// A fixed interval between runs.
///
/// ```
/// use celeriac::beat::{Interval, IntervalPeriod};
///
/// let interval: Interval = "30s".parse().unwrap();
/// assert_eq!(interval.every(), 30);
/// assert_eq!(interval.period(), IntervalPeriod::Seconds);
/// assert_eq!(interval.describe(), "Every 30 seconds");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "IntervalFields")]
pub struct Interval {
    every: u64,
    period: IntervalPeriod,
}

/// The unchecked serde form of [`Interval`].
#[derive(Deserialize)]
struct IntervalFields {
    every: u64,
    period: IntervalPeriod,
}

impl TryFrom<IntervalFields> for Interval {
    type Error = IntervalError;

    fn try_from(fields: IntervalFields) -> Result<Interval, IntervalError> {
        Interval::new(fields.every, fields.period)
    }
}

/// Why an interval cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    /// `every` is zero, which would run continuously (django-celery-beat requires at least 1).
    #[error("every: must be at least 1")]
    Zero,
    /// The interval is longer than a time span can hold.
    #[error("every: {every} {}s is too long", .period.noun())]
    TooLong {
        /// The count.
        every: u64,
        /// The unit.
        period: IntervalPeriod,
    },
    /// The text is not a count followed by a unit.
    #[error("interval: {text:?} is not a count followed by s, m, h, d or us (such as \"30s\")")]
    Malformed {
        /// The text as written.
        text: String,
    },
}

impl Interval {
    /// `every` units; fails for zero or for spans too long to represent.
    pub fn new(every: u64, period: IntervalPeriod) -> Result<Interval, IntervalError> {
        if every == 0 {
            return Err(IntervalError::Zero);
        }
        let fits = every
            .checked_mul(period.microseconds())
            .and_then(|microseconds| i64::try_from(microseconds).ok())
            .is_some();
        if !fits {
            return Err(IntervalError::TooLong { every, period });
        }
        Ok(Interval { every, period })
    }

    /// How many units.
    pub fn every(&self) -> u64 {
        self.every
    }

    /// The unit.
    pub fn period(&self) -> IntervalPeriod {
        self.period
    }

    /// The span between runs.
    pub fn duration(&self) -> TimeDelta {
        // `new` checked that the product fits an i64 of microseconds.
        TimeDelta::microseconds((self.every * self.period.microseconds()) as i64)
    }

    /// "Every 30 seconds", "Every hour".
    pub fn describe(&self) -> String {
        if self.every == 1 {
            format!("Every {}", self.period.noun())
        } else {
            format!("Every {} {}s", self.every, self.period.noun())
        }
    }
}

/// The short form: `30s`, `5m`, `2h`, `1d`, `500us`.
impl fmt::Display for Interval {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}{}", self.every, self.period.suffix())
    }
}

impl FromStr for Interval {
    type Err = IntervalError;

    fn from_str(text: &str) -> Result<Interval, IntervalError> {
        let malformed = || IntervalError::Malformed {
            text: text.to_owned(),
        };
        let trimmed = text.trim();
        let digits_end = trimmed
            .find(|character: char| !character.is_ascii_digit())
            .ok_or_else(malformed)?;
        let (digits, unit) = trimmed.split_at(digits_end);
        let period = match unit.trim() {
            "s" => IntervalPeriod::Seconds,
            "m" => IntervalPeriod::Minutes,
            "h" => IntervalPeriod::Hours,
            "d" => IntervalPeriod::Days,
            "us" => IntervalPeriod::Microseconds,
            _ => return Err(malformed()),
        };
        let every = digits.parse::<u64>().map_err(|_| malformed())?;
        Interval::new(every, period)
    }
}
