//! `Crontab`: Celery's `celery.schedules.crontab` (and django-celery-beat's `CrontabSchedule`),
//! validated once so that computing run times never fails.
//!
//! A crontab is written either with Celery's keyword fields ([`CrontabSpec`]: `minute`, `hour`,
//! `day_of_week`, `day_of_month`, `month_of_year`, plus the `timezone` django-celery-beat
//! stores) or as a 5-field string in cron order, `"m h dom mon dow"` (`"30 7 * * mon,fri"`).
//! Both are written back in canonical form: numbers, `*`, `*/n`, `a-b`, `a-b/n` and lists,
//! which Celery's parser reads back to the same sets (see `field` for the grammar).
//!
//! **Days: both must match.** A time matches when its minute, hour, month, day of month *and*
//! day of week all match. This is Celery's rule (`crontab.remaining_delta` requires month, day of
//! month and day of week of a date together, and `_delta_to_next` walks day-of-month candidates
//! until the weekday also matches), not cron's, where a restricted day of month *or* a
//! restricted day of week is enough: `0 9 1-7 * mon` is "the first Monday of the month" here,
//! "every day from 1 to 7 and every Monday" in cron.
//!
//! A crontab whose days of month never occur in its months (`day_of_month=31,
//! month_of_year=2`) is refused when parsed: Celery accepts it and fails later with "unable to
//! rollover". Every other crontab fires: any valid month/day pair falls on every weekday within
//! the 400-year Gregorian cycle.

use super::field::{CrontabField, FieldProblem, FieldSet};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A validated crontab schedule in a time zone.
///
/// ```
/// use celeriac::beat::Crontab;
///
/// let crontab = Crontab::parse_cron("30 7 * * mon,fri", "Europe/Berlin").unwrap();
/// assert_eq!(crontab.to_string(), "30 7 * * 1,5");
/// assert_eq!(crontab.describe(), "At 07:30 on Monday and Friday (Europe/Berlin)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "CrontabSpec", into = "CrontabSpec")]
pub struct Crontab {
    pub(crate) minute: FieldSet,
    pub(crate) hour: FieldSet,
    pub(crate) day_of_week: FieldSet,
    pub(crate) day_of_month: FieldSet,
    pub(crate) month_of_year: FieldSet,
    pub(crate) timezone: Tz,
}

/// A crontab as text, field by field: the shape of django-celery-beat's `CrontabSchedule` row
/// and of Celery's `crontab(...)` keywords. Every field defaults to `*`, the zone to `UTC`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrontabSpec {
    /// Minutes, 0-59.
    pub minute: String,
    /// Hours, 0-23.
    pub hour: String,
    /// Days of the week, 0-6 (Sunday = 0, 7 also Sunday) or names `mon`…`sun`.
    pub day_of_week: String,
    /// Days of the month, 1-31.
    pub day_of_month: String,
    /// Months, 1-12 or names `jan`…`dec`.
    pub month_of_year: String,
    /// A tz database zone name (`Europe/Berlin`); the times above are wall-clock times there.
    pub timezone: String,
}

impl Default for CrontabSpec {
    fn default() -> Self {
        CrontabSpec {
            minute: "*".into(),
            hour: "*".into(),
            day_of_week: "*".into(),
            day_of_month: "*".into(),
            month_of_year: "*".into(),
            timezone: "UTC".into(),
        }
    }
}

/// Why a crontab cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrontabError {
    /// One field's text is invalid.
    #[error("{field}: {problem}")]
    Field {
        /// Which field.
        field: CrontabField,
        /// What is wrong with it.
        problem: FieldProblem,
    },
    /// The zone is not in the tz database.
    #[error("timezone: {name:?} is not a tz database zone name (such as \"Europe/Berlin\")")]
    UnknownTimezone {
        /// The name as written.
        name: String,
    },
    /// A cron-order string does not have five fields.
    #[error(
        "expected 5 fields \"minute hour day_of_month month_of_year day_of_week\", found {found}"
    )]
    FieldCount {
        /// How many whitespace-separated fields there were.
        found: usize,
    },
    /// An `@name` shorthand we do not know.
    #[error("unknown shorthand {text:?} (use @yearly, @monthly, @weekly, @daily or @hourly)")]
    UnknownShorthand {
        /// The shorthand as written.
        text: String,
    },
    /// No month has any of the days of month: the crontab would never fire.
    #[error("day_of_month: {day_of_month} never occurs in month_of_year {month_of_year}, so the crontab never fires")]
    NeverFires {
        /// The days of month, canonical.
        day_of_month: String,
        /// The months, canonical.
        month_of_year: String,
    },
}

impl Crontab {
    /// Parses Celery's keyword fields and a zone name.
    pub fn new(spec: &CrontabSpec) -> Result<Crontab, CrontabError> {
        let timezone = parse_timezone(&spec.timezone)?;
        Crontab::from_fields(
            [
                &spec.minute,
                &spec.hour,
                &spec.day_of_month,
                &spec.month_of_year,
                &spec.day_of_week,
            ],
            timezone,
        )
    }

    /// Parses a 5-field string in cron order (`"m h dom mon dow"`) or an `@daily`-style
    /// shorthand, in the named zone.
    pub fn parse_cron(expression: &str, timezone: &str) -> Result<Crontab, CrontabError> {
        let timezone = parse_timezone(timezone)?;
        let trimmed = expression.trim();
        let expanded = match trimmed {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(CrontabError::UnknownShorthand {
                    text: other.to_owned(),
                })
            }
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day_of_month, month_of_year, day_of_week] = fields[..] else {
            return Err(CrontabError::FieldCount {
                found: fields.len(),
            });
        };
        Crontab::from_fields(
            [minute, hour, day_of_month, month_of_year, day_of_week],
            timezone,
        )
    }

    /// Fields in cron order.
    fn from_fields(texts: [&str; 5], timezone: Tz) -> Result<Crontab, CrontabError> {
        let parse = |field: CrontabField, text: &str| {
            FieldSet::parse(field, text).map_err(|problem| CrontabError::Field { field, problem })
        };
        let crontab = Crontab {
            minute: parse(CrontabField::Minute, texts[0])?,
            hour: parse(CrontabField::Hour, texts[1])?,
            day_of_month: parse(CrontabField::DayOfMonth, texts[2])?,
            month_of_year: parse(CrontabField::MonthOfYear, texts[3])?,
            day_of_week: parse(CrontabField::DayOfWeek, texts[4])?,
            timezone,
        };
        crontab.check_fires()?;
        Ok(crontab)
    }

    /// Builds a crontab from explicit value sets (Sunday = 0), for callers that hold numbers
    /// rather than text (Celery's `crontab(minute={0, 30})`).
    pub fn from_values(
        minute: &[u32],
        hour: &[u32],
        day_of_week: &[u32],
        day_of_month: &[u32],
        month_of_year: &[u32],
        timezone: Tz,
    ) -> Result<Crontab, CrontabError> {
        let set = |field: CrontabField, values: &[u32]| {
            let mut normalized = Vec::with_capacity(values.len());
            for &value in values {
                let value = if field == CrontabField::DayOfWeek && value == 7 {
                    0
                } else {
                    value
                };
                if value < field.min() || value > field.max() {
                    return Err(CrontabError::Field {
                        field,
                        problem: FieldProblem::OutOfRange {
                            value: value.to_string(),
                            min: field.min(),
                            max: field.max_written(),
                        },
                    });
                }
                normalized.push(value);
            }
            FieldSet::from_values(field, normalized).ok_or(CrontabError::Field {
                field,
                problem: FieldProblem::Empty,
            })
        };
        let crontab = Crontab {
            minute: set(CrontabField::Minute, minute)?,
            hour: set(CrontabField::Hour, hour)?,
            day_of_week: set(CrontabField::DayOfWeek, day_of_week)?,
            day_of_month: set(CrontabField::DayOfMonth, day_of_month)?,
            month_of_year: set(CrontabField::MonthOfYear, month_of_year)?,
            timezone,
        };
        crontab.check_fires()?;
        Ok(crontab)
    }

    /// The same schedule in another zone.
    pub fn with_timezone(self, timezone: Tz) -> Crontab {
        Crontab { timezone, ..self }
    }

    /// The zone whose wall-clock times the fields describe.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The values one field matches, in increasing order (Sunday = 0 for `day_of_week`).
    pub fn values(&self, field: CrontabField) -> Vec<u32> {
        self.field(field).values().collect()
    }

    /// One field's canonical text (what Celery's parser reads back to the same set).
    pub fn field_text(&self, field: CrontabField) -> String {
        self.field(field).render(field)
    }

    /// The keyword form with canonical field texts, as django-celery-beat stores it.
    pub fn to_spec(&self) -> CrontabSpec {
        CrontabSpec {
            minute: self.field_text(CrontabField::Minute),
            hour: self.field_text(CrontabField::Hour),
            day_of_week: self.field_text(CrontabField::DayOfWeek),
            day_of_month: self.field_text(CrontabField::DayOfMonth),
            month_of_year: self.field_text(CrontabField::MonthOfYear),
            timezone: self.timezone.name().to_owned(),
        }
    }

    pub(crate) fn field(&self, field: CrontabField) -> FieldSet {
        match field {
            CrontabField::Minute => self.minute,
            CrontabField::Hour => self.hour,
            CrontabField::DayOfWeek => self.day_of_week,
            CrontabField::DayOfMonth => self.day_of_month,
            CrontabField::MonthOfYear => self.month_of_year,
        }
    }

    /// Whether a wall-clock minute matches (seconds are ignored).
    pub fn matches(&self, local: NaiveDateTime) -> bool {
        self.matches_date(local.date())
            && self.hour.contains(local.hour())
            && self.minute.contains(local.minute())
    }

    /// Whether a date matches: month, day of month and day of week together (Celery's rule).
    pub(crate) fn matches_date(&self, date: NaiveDate) -> bool {
        self.month_of_year.contains(date.month())
            && self.day_of_month.contains(date.day())
            && self
                .day_of_week
                .contains(date.weekday().num_days_from_sunday())
    }

    /// The first matching wall-clock minute at or after `from` (whose seconds must be zero), or
    /// `None` past the end of chrono's calendar. Skips whole months, days and hours at a time.
    pub(crate) fn next_local_match(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut date = from.date();
        let mut hour = from.hour();
        let mut minute = from.minute();
        // Each pass moves to a later month, day, hour or minute, or returns. Thanks to
        // `check_fires` a match exists within 400 years: at most 4,800 months plus a few days
        // of month and hours per month; the bound only guards against a broken invariant.
        for _ in 0..200_000 {
            let month = date.month();
            if !self.month_of_year.contains(month) {
                date = self.first_day_of_next_month(date)?;
                (hour, minute) = (0, 0);
                continue;
            }
            let day = date.day();
            let Some(next_day) = self
                .day_of_month
                .next_at_or_after(day)
                .filter(|next_day| *next_day <= days_in_month(date.year(), month))
            else {
                date = self.first_day_of_next_month(date)?;
                (hour, minute) = (0, 0);
                continue;
            };
            if next_day != day {
                date = date.with_day(next_day)?;
                (hour, minute) = (0, 0);
            }
            if !self
                .day_of_week
                .contains(date.weekday().num_days_from_sunday())
            {
                date = date.succ_opt()?;
                (hour, minute) = (0, 0);
                continue;
            }
            let Some(next_hour) = self.hour.next_at_or_after(hour) else {
                date = date.succ_opt()?;
                (hour, minute) = (0, 0);
                continue;
            };
            if next_hour != hour {
                (hour, minute) = (next_hour, 0);
            }
            let Some(next_minute) = self.minute.next_at_or_after(minute) else {
                if hour == 23 {
                    date = date.succ_opt()?;
                    (hour, minute) = (0, 0);
                } else {
                    (hour, minute) = (hour + 1, 0);
                }
                continue;
            };
            let time = NaiveTime::from_hms_opt(hour, next_minute, 0)?;
            return Some(date.and_time(time));
        }
        None
    }

    /// The first day of the next month (possibly next year) that is in `month_of_year`.
    fn first_day_of_next_month(&self, date: NaiveDate) -> Option<NaiveDate> {
        let (year, month) = match self.month_of_year.next_at_or_after(date.month() + 1) {
            Some(month) if month <= 12 => (date.year(), month),
            _ => (date.year().checked_add(1)?, self.month_of_year.first()),
        };
        NaiveDate::from_ymd_opt(year, month, 1)
    }

    /// Refuses day-of-month/month combinations that never occur (see the module docs).
    fn check_fires(&self) -> Result<(), CrontabError> {
        let possible = self.month_of_year.values().any(|month| {
            // February counts with its leap day: the 29th does occur.
            self.day_of_month.first() <= days_in_month(2000, month)
        });
        if possible {
            Ok(())
        } else {
            Err(CrontabError::NeverFires {
                day_of_month: self.field_text(CrontabField::DayOfMonth),
                month_of_year: self.field_text(CrontabField::MonthOfYear),
            })
        }
    }
}

/// Days in a month of the proleptic Gregorian calendar.
pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

fn parse_timezone(name: &str) -> Result<Tz, CrontabError> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| CrontabError::UnknownTimezone {
            name: name.to_owned(),
        })
}

/// Cron order: `minute hour day_of_month month_of_year day_of_week`, canonical; the zone is
/// not part of it (see [`Crontab::timezone`]).
impl fmt::Display for Crontab {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{} {} {} {} {}",
            self.field_text(CrontabField::Minute),
            self.field_text(CrontabField::Hour),
            self.field_text(CrontabField::DayOfMonth),
            self.field_text(CrontabField::MonthOfYear),
            self.field_text(CrontabField::DayOfWeek),
        )
    }
}

/// A cron-order string in UTC.
impl FromStr for Crontab {
    type Err = CrontabError;

    fn from_str(expression: &str) -> Result<Crontab, CrontabError> {
        Crontab::parse_cron(expression, "UTC")
    }
}

impl TryFrom<CrontabSpec> for Crontab {
    type Error = CrontabError;

    fn try_from(spec: CrontabSpec) -> Result<Crontab, CrontabError> {
        Crontab::new(&spec)
    }
}

impl From<Crontab> for CrontabSpec {
    fn from(crontab: Crontab) -> CrontabSpec {
        crontab.to_spec()
    }
}

#[cfg(test)]
mod tests;
