//! The periodic task API's JSON (`/api/schedules…`, `/api/schedule-preview`), shared by the
//! server that sends it and the pages that read it.
//!
//! Schedules travel as [`ScheduleSpec`], their text fields, never as the engine's parsed
//! [`Schedule`]: parsing a zone links the whole tz database (about 125 KB gzipped) into the
//! browser's WASM. So only the server builds and checks schedules ([`ScheduleSpec::build`],
//! [`ScheduleSpec::preview`], compiled with `ssr` alone), and the editors ask it for a
//! [`SchedulePreview`] as the user types.

#[cfg(feature = "ssr")]
use celeriac::beat::{
    Crontab, CrontabError, DstAdjustment, Interval, Schedule, Solar, SolarError, UpcomingRun,
};
use celeriac::beat::{CrontabSpec, IntervalPeriod};
use celeriac::TaskState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One periodic task in `GET /api/schedules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSummary {
    /// The entry's unique name.
    pub name: String,
    /// The task it sends.
    pub task: String,
    /// When it runs, as its fields.
    pub schedule: ScheduleSpec,
    /// The schedule in words ("At 07:30 on Monday").
    pub description: String,
    /// Disabled entries are kept but not sent.
    pub enabled: bool,
    /// Runs once, then disables.
    #[serde(default)]
    pub one_off: bool,
    /// When beat last sent it.
    #[serde(default)]
    pub last_run_at: Option<DateTime<Utc>>,
    /// When beat sends it next, if ever.
    #[serde(default)]
    pub next_run_at: Option<DateTime<Utc>>,
    /// How many times beat sent it.
    #[serde(default)]
    pub total_run_count: u64,
    /// Slots that passed unsent.
    #[serde(default)]
    pub missed_count: u64,
    /// Sends later than beat's lateness threshold.
    #[serde(default)]
    pub late_count: u64,
    /// The newest run and the state of the task it sent.
    #[serde(default)]
    pub last_run: Option<ScheduleRun>,
}

/// `GET /api/schedules/{name}`: the entry, its options and its recent runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleDetail {
    /// What the list shows.
    pub summary: ScheduleSummary,
    /// Positional arguments (a JSON array).
    #[serde(default)]
    pub args: Value,
    /// Keyword arguments (a JSON object).
    #[serde(default)]
    pub kwargs: Value,
    /// Queue override.
    #[serde(default)]
    pub queue: Option<String>,
    /// Recent runs, newest first.
    #[serde(default)]
    pub runs: Vec<ScheduleRun>,
}

/// One run of an entry, with the markers the page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRun {
    /// The slot (when it was due).
    pub slot: DateTime<Utc>,
    /// When beat acted.
    pub sent_at: DateTime<Utc>,
    /// The task id sent, if this beat sent it.
    #[serde(default)]
    pub task_id: Option<String>,
    /// `sent`, `already_sent` or `skipped`.
    pub outcome: String,
    /// Earlier slots given up with this one.
    #[serde(default)]
    pub missed: u64,
    /// `sent_at - slot`, in milliseconds.
    #[serde(default)]
    pub lateness_ms: i64,
    /// Sent later than beat's lateness threshold.
    #[serde(default)]
    pub late: bool,
    /// Another beat had sent this slot already (a handover recorded it twice).
    #[serde(default)]
    pub duplicate: bool,
    /// The state of the sent task, when the history knows it.
    #[serde(default)]
    pub state: Option<TaskState>,
}

/// A schedule as a form holds it: text fields, checked by [`ScheduleSpec::build`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScheduleSpec {
    /// Celery's crontab fields and a zone.
    Crontab(CrontabSpec),
    /// Every `every` `period`s.
    Interval {
        /// How many periods.
        every: u64,
        /// `days`, `hours`, `minutes`, `seconds` or `microseconds`.
        period: IntervalPeriod,
    },
    /// Once, at an instant.
    Clocked {
        /// When.
        at: DateTime<Utc>,
    },
    /// An event of the Sun's day at a place (django-celery-beat's `SolarSchedule`).
    Solar {
        /// `sunrise`, `sunset`, `solar_noon`, `dawn_civil`, ... (`SolarEvent::name`).
        event: String,
        /// Degrees north, decimal text (`37.7749`).
        latitude: String,
        /// Degrees east, decimal text (`-122.4194`).
        longitude: String,
    },
}

impl ScheduleSpec {
    /// Where the browser asks for this schedule's [`SchedulePreview`] (no URL prefix).
    pub fn preview_path(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("/api/schedule-preview?spec={}", crate::paths::encode(&json))
    }
}

#[cfg(feature = "ssr")]
impl ScheduleSpec {
    /// The schedule, or the engine's message naming the field at fault
    /// (`hour: 24 is out of range 0-23`).
    pub fn build(&self) -> Result<Schedule, String> {
        match self {
            ScheduleSpec::Crontab(spec) => Crontab::new(spec)
                .map(Schedule::Crontab)
                .map_err(|error| error.to_string()),
            ScheduleSpec::Interval { every, period } => {
                editable_interval(*every, *period).map(Schedule::Interval)
            }
            ScheduleSpec::Clocked { at } => Ok(Schedule::Clocked { at: *at }),
            ScheduleSpec::Solar {
                event,
                latitude,
                longitude,
            } => Solar::parse(event, latitude, longitude)
                .map(Schedule::Solar)
                .map_err(|error| error.to_string()),
        }
    }

    /// The form of an existing schedule.
    pub fn of(schedule: &Schedule) -> ScheduleSpec {
        match schedule {
            Schedule::Crontab(crontab) => ScheduleSpec::Crontab(crontab.to_spec()),
            Schedule::Interval(interval) => ScheduleSpec::Interval {
                every: interval.every(),
                period: interval.period(),
            },
            Schedule::Clocked { at } => ScheduleSpec::Clocked { at: *at },
            Schedule::Solar(solar) => ScheduleSpec::Solar {
                event: solar.event().name().to_owned(),
                latitude: solar.latitude_text(),
                longitude: solar.longitude_text(),
            },
        }
    }

    /// What an editor shows for this draft at `now`: the schedule in words and, for a
    /// crontab, its next `count` runs in its zone; or the error and the input it is about.
    pub fn preview(&self, now: DateTime<Utc>, count: usize) -> SchedulePreview {
        let invalid = |part: &str, message: String| SchedulePreview {
            error: Some(PreviewError {
                part: part.to_owned(),
                message,
            }),
            ..SchedulePreview::default()
        };
        match self {
            ScheduleSpec::Crontab(spec) => match Crontab::new(spec) {
                Ok(crontab) => SchedulePreview {
                    description: crontab.describe(),
                    error: None,
                    runs: crontab
                        .upcoming(now, count)
                        .iter()
                        .map(|run| PreviewRun::of(&crontab, run))
                        .collect(),
                },
                Err(error) => invalid(crontab_part(&error), error.to_string()),
            },
            ScheduleSpec::Interval { every, period } => match editable_interval(*every, *period) {
                Ok(interval) => SchedulePreview {
                    description: interval.describe(),
                    ..SchedulePreview::default()
                },
                Err(error) => invalid("every", error),
            },
            ScheduleSpec::Clocked { at } => SchedulePreview {
                description: Schedule::Clocked { at: *at }.describe(),
                ..SchedulePreview::default()
            },
            ScheduleSpec::Solar {
                event,
                latitude,
                longitude,
            } => match Solar::parse(event, latitude, longitude) {
                Ok(solar) => SchedulePreview {
                    description: solar.describe(),
                    error: None,
                    runs: std::iter::successors(solar.next_after(now), |at| solar.next_after(*at))
                        .take(count)
                        .map(|at| PreviewRun {
                            at,
                            local: at.format("%Y-%m-%d %H:%M UTC (%a)").to_string(),
                            dst_note: None,
                        })
                        .collect(),
                },
                Err(error) => invalid(solar_part(&error), error.to_string()),
            },
        }
    }
}

/// The solar input an error is about.
#[cfg(feature = "ssr")]
fn solar_part(error: &SolarError) -> &'static str {
    match error {
        SolarError::UnknownEvent { .. } => "event",
        SolarError::NotDegrees { field, .. } | SolarError::OutOfRange { field, .. } => field,
    }
}

/// The shortest interval the editor saves. django-celery-beat stores microseconds, and one
/// admin's slip (`every 1 microsecond`) made beat send about 95 tasks a second (issue 13);
/// schedules that already exist in the database are left as they are.
#[cfg(feature = "ssr")]
pub const MIN_INTERVAL_SECONDS: i64 = 1;

/// An interval the editor accepts: valid, and at least [`MIN_INTERVAL_SECONDS`] long.
#[cfg(feature = "ssr")]
fn editable_interval(every: u64, period: IntervalPeriod) -> Result<Interval, String> {
    let interval = Interval::new(every, period).map_err(|error| error.to_string())?;
    if interval.duration() < chrono::TimeDelta::seconds(MIN_INTERVAL_SECONDS) {
        return Err(format!(
            "every: {} is shorter than the shortest interval, {MIN_INTERVAL_SECONDS} second",
            interval.describe().to_lowercase()
        ));
    }
    Ok(interval)
}

/// The crontab input an error is about, so the editor marks it.
#[cfg(feature = "ssr")]
fn crontab_part(error: &CrontabError) -> &'static str {
    match error {
        CrontabError::Field { field, .. } => field.name(),
        CrontabError::UnknownTimezone { .. } => "timezone",
        CrontabError::NeverFires { .. } => "day_of_month",
        _ => "",
    }
}

/// `GET /api/schedule-preview?spec=<ScheduleSpec as JSON>`: what the schedule editors show
/// as the user types. An invalid draft is a normal answer (200 with `error`), not a failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulePreview {
    /// The schedule in words ("At 07:30 (Europe/Berlin)"); empty when invalid.
    #[serde(default)]
    pub description: String,
    /// Why the draft is invalid, if it is.
    #[serde(default)]
    pub error: Option<PreviewError>,
    /// A crontab's or solar schedule's next runs, soonest first.
    #[serde(default)]
    pub runs: Vec<PreviewRun>,
}

/// A draft's problem, as the engine words it (`hour: 24 is out of range 0-23`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewError {
    /// The input at fault (`hour`, `timezone`, `every`), or empty when it is the whole.
    pub part: String,
    /// The message, naming the field.
    pub message: String,
}

/// One upcoming run of a crontab or solar schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewRun {
    /// When it is sent.
    pub at: DateTime<Utc>,
    /// The same instant on the zone's wall clock: `2024-03-31 03:00 CEST (Sun)`.
    pub local: String,
    /// Set when a DST change moves or merges this run, saying how.
    #[serde(default)]
    pub dst_note: Option<String>,
}

#[cfg(feature = "ssr")]
impl PreviewRun {
    fn of(crontab: &Crontab, run: &UpcomingRun) -> PreviewRun {
        let dst_note = match run.adjustment {
            DstAdjustment::Normal => None,
            DstAdjustment::ShiftedByGap => {
                Some("DST gap: this time does not exist that day; runs at the end of the gap")
            }
            DstAdjustment::AmbiguousFirst => {
                Some("DST overlap: this time occurs twice; runs once, at the first")
            }
        };
        PreviewRun {
            at: run.at,
            local: run
                .at
                .with_timezone(&crontab.timezone())
                .format("%Y-%m-%d %H:%M %Z (%a)")
                .to_string(),
            dst_note: dst_note.map(str::to_owned),
        }
    }
}

/// The body of `POST /api/schedules` (create: `name`, `task` and `schedule` required) and
/// `POST /api/schedules/{name}` (edit: what is set replaces the stored value).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleForm {
    /// The new entry's name (create only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The task to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// When it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSpec>,
    /// Positional arguments, a JSON array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// Keyword arguments, a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kwargs: Option<Value>,
    /// Queue override (an empty text clears it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Run once, then disable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_off: Option<bool>,
}

/// What a schedule change answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleAnswer {
    /// The entry.
    pub name: String,
    /// What happened, for people.
    pub message: String,
    /// The task id sent, for run-now.
    #[serde(default)]
    pub task_id: Option<String>,
}

// Building and previewing are server-side only (see the module's doc).
#[cfg(all(test, feature = "ssr"))]
mod tests;
