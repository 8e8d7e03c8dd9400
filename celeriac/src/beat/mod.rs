//! Beat's schedule core: crontabs, intervals, clocked and solar schedules, periodic task entries, and
//! when each runs next. No IO and no runtime, so it compiles to WASM and the dashboard's browser
//! code validates and describes schedules with the engine's own rules.
//!
//! # Layout
//! - `field`: one crontab field's grammar (Celery's `crontab_parser`) and value set.
//! - [`Crontab`] (`crontab`): the five fields and a zone; parsing, validation, canonical text.
//! - `next_run`: [`Crontab::next_after`] and [`Crontab::upcoming`], with the DST policy below.
//! - `describe`: [`Crontab::describe`], English for people.
//! - [`Interval`] (`interval`), [`Solar`] (`solar`, with the Sun's position in `solar::sun`),
//!   [`Schedule`] (`schedule`): the schedule kinds.
//! - [`PeriodicTask`] (`periodic_task`): django-celery-beat's entry model, its validation, and
//!   when it is due.
//!
//! The SQL store, the leader lease and the tick loop that sends due tasks build on this.
//!
//! # Time zones and DST
//!
//! A crontab's fields are wall-clock times in its zone (`timezone`, a tz database name as in
//! django-celery-beat's `CrontabSchedule.timezone`; UTC by default). Where the zone's clocks
//! change:
//!
//! - **Spring forward (gap).** A time that does not exist that day runs at the first instant
//!   after the gap, flagged [`DstAdjustment::ShiftedByGap`]: `30 2 * * *` in Europe/Berlin runs
//!   at 03:00 CEST on the last Sunday of March. Several times in one gap (`*/15` from 02:00 to
//!   02:45) are one run at that instant, not four.
//! - **Fall back (overlap).** A time that occurs twice runs once, at its first occurrence,
//!   flagged [`DstAdjustment::AmbiguousFirst`]. Times in the repeated stretch do not run again
//!   on the second pass, so `*/15` pauses for the repeated hour; use an [`Interval`] (or UTC)
//!   for work that must keep a strict period.
//! - Everything else runs at the single instant showing that time ([`DstAdjustment::Normal`]).
//!
//! Equivalently: the run for a matching wall-clock time is the earliest instant whose
//! wall-clock reading is at or after it, and each instant runs once. This holds for every
//! transition in the tz database (30-minute DST on Lord Howe, 02:45 changes on Chatham, whole
//! skipped days such as Samoa's in 2011), and a property test checks it against a brute-force
//! minute-by-minute search across zones.
//!
//! Celery computes run times with local date arithmetic and has reports of runs an hour late
//! after a change (celery/celery#9653, django-celery-beat#134) and of runs twice
//! (celery/celery#1604). Some users expect an hourly crontab to run at both 01:00s of a
//! fall-back night (celery/celery#10107); by the rule above it runs at the first only.

mod crontab;
mod describe;
#[cfg(feature = "runtime")]
pub mod django;
mod due;
#[cfg(feature = "runtime")]
mod entries;
mod field;
mod interval;
#[cfg(feature = "runtime")]
mod message;
mod next_run;
mod periodic_task;
mod schedule;
#[cfg(feature = "runtime")]
mod scheduler;
mod solar;
#[cfg(feature = "runtime")]
pub mod static_schedule;
#[cfg(feature = "runtime")]
pub mod store;

pub use crontab::{Crontab, CrontabError, CrontabSpec};
pub use due::{plan, CatchUp, Plan, MAX_REPLAYED};
pub use field::{CrontabField, FieldProblem};
pub use interval::{Interval, IntervalError, IntervalPeriod};
#[cfg(feature = "runtime")]
pub use message::{arguments, send_options, BEAT_SLOT_HEADER, PERIODIC_TASK_NAME_HEADER};
pub use next_run::{DstAdjustment, UpcomingRun};
pub use periodic_task::{PeriodicTask, PeriodicTaskError, MAX_NAME_LENGTH, MAX_PRIORITY};
pub use schedule::Schedule;
#[cfg(feature = "runtime")]
pub use scheduler::{Beat, BeatError, BeatOptions, BeatStats};
pub use solar::{Solar, SolarError, SolarEvent};
#[cfg(feature = "runtime")]
pub use store::{ScheduleStore, StoreError, StoredTask};
