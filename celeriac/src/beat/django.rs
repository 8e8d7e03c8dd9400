//! django-celery-beat's tables as the source of truth for beat's schedules
//! (`beat_scheduler = "django_celery_beat.schedulers:DatabaseScheduler"`, or `"django"`).
//!
//! A Django team edits schedules in the Django admin; those rows must stay authoritative.
//! [`DjangoSync`] keeps Celeriac's own store (which carries the scheduler's bookkeeping, the
//! run ring and the change stamps the HA scheduler relies on) a mirror of
//! `django_celery_beat_periodictask` and its schedule tables, in both directions, once per beat
//! tick on the leader:
//!
//! - **Pull.** django-celery-beat bumps `django_celery_beat_periodictasks.last_update` on
//!   every admin or ORM `save()` of a task or schedule (its `PeriodicTasks.changed` signal) and
//!   every task row carries `date_changed`. When either moved, every row is read and entries
//!   whose definition differs are written into Celeriac's store; entries gone from Django are
//!   deleted. An ORM `QuerySet.update()` bypasses both stamps, so, as for django-celery-beat's
//!   own scheduler, such an edit is seen only at the next full comparison (every
//!   [`FULL_PULL_EVERY`]).
//! - **Push.** Edits made through Celeriac (dashboard, CLI) are written to Django's rows —
//!   finding or creating the `crontabschedule`/`intervalschedule`/`clockedschedule` row as
//!   the admin does — and the change marker bumped, so the admin shows them.
//! - **Progress.** `last_run_at`, `total_run_count` and a one-off's `enabled = false` are
//!   copied to Django's rows without touching `date_changed` or the marker, as
//!   django-celery-beat's scheduler saves them.
//!
//! Definitions are compared parsed (a crontab by the times it matches), so a round trip never
//! reads back as an edit. The Django tables are never created or altered; missing tables are
//! refused at start with what to run. Solar schedules are not supported: such an entry is
//! reported once and left alone.

use super::{Crontab, CrontabSpec, Interval, IntervalPeriod, PeriodicTask, Schedule};
use super::{ScheduleStore, StoreError};
use crate::db::{Database, DatabaseError, DatabaseOptions, Dialect};
use crate::with_pool;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The `beat_scheduler` values that select django-celery-beat's tables.
pub const DJANGO_SCHEDULERS: [&str; 2] =
    ["django_celery_beat.schedulers:DatabaseScheduler", "django"];

/// How often every row is compared even when no stamp moved (edits by `QuerySet.update()`).
pub const FULL_PULL_EVERY: Duration = Duration::from_secs(30);

/// How often run progress is copied to Django's rows.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

const TASKS: &str = "django_celery_beat_periodictask";
const MARKER: &str = "django_celery_beat_periodictasks";

/// django-celery-beat's tables in Django's database.
#[derive(Debug, Clone)]
pub struct DjangoBeatTables {
    database: Database,
}

/// What tells whether anything changed: the marker, and the tasks' count and newest stamp.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Stamp(Option<String>, i64, Option<String>);

impl DjangoBeatTables {
    /// Opens Django's database at `database_url` and checks that django-celery-beat's tables
    /// are there.
    pub async fn open(database_url: &str) -> Result<DjangoBeatTables, StoreError> {
        let database = Database::connect_existing(&DatabaseOptions::new(database_url)).await?;
        let tables = DjangoBeatTables { database };
        let probe = format!("SELECT COUNT(*) FROM {TASKS} WHERE 1 = 0");
        let found = with_pool!(&tables.database, |pool| sqlx::query(&probe)
            .fetch_optional(pool)
            .await
            .map(|_| ()));
        if let Err(source) = found {
            return Err(StoreError::Corrupt {
                name: TASKS.to_owned(),
                reason: format!(
                    "django-celery-beat's tables are missing in {} ({source}): \
                     beat_scheduler = \"django\" reads the Django project's database; set \
                     database_url to it and run `python manage.py migrate django_celery_beat`",
                    crate::db::hide_password(database_url)
                ),
            });
        }
        Ok(tables)
    }

    fn dialect(&self) -> Dialect {
        self.database.dialect()
    }

    /// A time column read as Django's text form, whichever the database.
    fn time_column(&self, column: &str) -> String {
        match self.dialect() {
            Dialect::Postgres => {
                format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
            }
            Dialect::Sqlite => column.to_owned(),
        }
    }

    /// A placeholder for a time bound as text.
    fn time_value(&self, index: usize) -> String {
        match self.dialect() {
            Dialect::Postgres => {
                format!("CAST({} AS TIMESTAMPTZ)", self.dialect().placeholder(index))
            }
            Dialect::Sqlite => self.dialect().placeholder(index),
        }
    }

    /// A placeholder for a boolean bound as 0 or 1.
    fn bool_value(&self, index: usize) -> String {
        match self.dialect() {
            Dialect::Postgres => format!(
                "CAST(CAST({} AS INTEGER) AS BOOLEAN)",
                self.dialect().placeholder(index)
            ),
            Dialect::Sqlite => self.dialect().placeholder(index),
        }
    }

    async fn stamp(&self) -> Result<Stamp, StoreError> {
        let sql = format!(
            "SELECT (SELECT {} FROM {MARKER} WHERE ident = 1), \
             (SELECT COUNT(*) FROM {TASKS}), (SELECT {} FROM {TASKS} ORDER BY date_changed DESC LIMIT 1)",
            self.time_column("last_update"),
            self.time_column("date_changed"),
        );
        let stamp = with_pool!(&self.database, |pool| {
            let row = sqlx::query(&sql)
                .fetch_one(pool)
                .await
                .map_err(DatabaseError::query(
                    "read django-celery-beat's change marker",
                ))?;
            Stamp(
                row.try_get::<Option<String>, _>(0).ok().flatten(),
                row.try_get::<i64, _>(1).unwrap_or(0),
                row.try_get::<Option<String>, _>(2).ok().flatten(),
            )
        });
        Ok(stamp)
    }

    /// Every entry; rows that cannot be used (a solar schedule, a bad crontab) are returned
    /// apart with the reason.
    pub async fn list(&self) -> Result<(Vec<PeriodicTask>, Vec<(String, String)>), StoreError> {
        let sql = format!(
            "SELECT t.name, t.task, t.args, t.kwargs, t.queue, t.exchange, t.routing_key, \
             t.headers, CAST(t.priority AS BIGINT), {expires}, CAST(t.expire_seconds AS BIGINT), \
             CAST(CAST(t.one_off AS INTEGER) AS BIGINT), {start_time}, CAST(CAST(t.enabled AS INTEGER) AS BIGINT), {last_run_at}, \
             CAST(t.total_run_count AS BIGINT), {date_changed}, t.description, \
             c.minute, c.hour, c.day_of_week, c.day_of_month, c.month_of_year, c.timezone, \
             CAST(i.every AS BIGINT), i.period, {clocked}, CAST(t.solar_id AS BIGINT) \
             FROM {TASKS} t \
             LEFT JOIN django_celery_beat_crontabschedule c ON c.id = t.crontab_id \
             LEFT JOIN django_celery_beat_intervalschedule i ON i.id = t.interval_id \
             LEFT JOIN django_celery_beat_clockedschedule k ON k.id = t.clocked_id \
             ORDER BY t.name",
            expires = self.time_column("t.expires"),
            start_time = self.time_column("t.start_time"),
            last_run_at = self.time_column("t.last_run_at"),
            date_changed = self.time_column("t.date_changed"),
            clocked = self.time_column("k.clocked_time"),
        );
        let rows: Vec<Result<PeriodicTask, (String, String)>> =
            with_pool!(&self.database, |pool| {
                let rows =
                    sqlx::query(&sql)
                        .fetch_all(pool)
                        .await
                        .map_err(DatabaseError::query(
                            "read django-celery-beat's periodic tasks",
                        ))?;
                rows.iter().map(task_from_row).collect()
            });
        let mut tasks = Vec::new();
        let mut refused = Vec::new();
        for row in rows {
            match row {
                Ok(task) => tasks.push(task),
                Err(problem) => refused.push(problem),
            }
        }
        Ok((tasks, refused))
    }

    /// Creates or replaces the row of `task` (its schedule row found or created), as the
    /// admin's save does, and bumps the change marker.
    pub async fn write(&self, task: &PeriodicTask) -> Result<(), StoreError> {
        let (column, schedule_id) = self.schedule_row(&task.schedule).await?;
        let now = django_time(crate::clock::now());
        let dialect = self.dialect();
        let p = |index: usize| dialect.placeholder(index);
        let assignments = format!(
            "task = {}, args = {}, kwargs = {}, queue = {}, exchange = {}, routing_key = {}, \
             headers = {}, priority = {}, expires = {}, expire_seconds = {}, one_off = {}, \
             start_time = {}, enabled = {}, description = {}, date_changed = {}, {}",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6),
            p(7),
            p(8),
            self.time_value(9),
            p(10),
            self.bool_value(11),
            self.time_value(12),
            self.bool_value(13),
            p(14),
            self.time_value(15),
            // One schedule key set, the others cleared (PostgreSQL refuses a column twice).
            ["crontab_id", "interval_id", "clocked_id", "solar_id"]
                .iter()
                .map(|key| if *key == column {
                    format!("{key} = {}", p(16))
                } else {
                    format!("{key} = NULL")
                })
                .collect::<Vec<_>>()
                .join(", "),
        );
        let update = format!("UPDATE {TASKS} SET {assignments} WHERE name = {}", p(17));
        let insert = format!(
            "INSERT INTO {TASKS} (task, args, kwargs, queue, exchange, routing_key, headers, \
             priority, expires, expire_seconds, one_off, start_time, enabled, description, \
             date_changed, {column}, name, total_run_count) VALUES ({}, {}, {}, {}, {}, {}, {}, \
             {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, 0)",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6),
            p(7),
            p(8),
            self.time_value(9),
            p(10),
            self.bool_value(11),
            self.time_value(12),
            self.bool_value(13),
            p(14),
            self.time_value(15),
            p(16),
            p(17),
        );
        with_pool!(&self.database, |pool| {
            macro_rules! bound {
                ($sql:expr) => {
                    sqlx::query($sql)
                        .bind(task.task.clone())
                        .bind(task.args.to_string())
                        .bind(task.kwargs.to_string())
                        .bind(task.queue.clone())
                        .bind(task.exchange.clone())
                        .bind(task.routing_key.clone())
                        .bind(task.headers.to_string())
                        .bind(task.priority.map(i64::from))
                        .bind(task.expires.map(django_time))
                        .bind(
                            task.expire_seconds
                                .map(|seconds| i64::try_from(seconds).unwrap_or(i64::MAX)),
                        )
                        .bind(i64::from(task.one_off))
                        .bind(task.start_time.map(django_time))
                        .bind(i64::from(task.enabled))
                        .bind(task.description.clone())
                        .bind(now.clone())
                        .bind(schedule_id)
                        .bind(task.name.clone())
                };
            }
            let mut transaction = pool
                .begin()
                .await
                .map_err(DatabaseError::query("begin django-celery-beat write"))?;
            let updated = bound!(&update)
                .execute(&mut *transaction)
                .await
                .map_err(DatabaseError::query(
                    "update django-celery-beat periodic task",
                ))?
                .rows_affected();
            if updated == 0 {
                bound!(&insert)
                    .execute(&mut *transaction)
                    .await
                    .map_err(DatabaseError::query(
                        "insert django-celery-beat periodic task",
                    ))?;
            }
            transaction
                .commit()
                .await
                .map_err(DatabaseError::query("commit django-celery-beat write"))?;
        });
        self.bump_marker().await
    }

    /// Deletes the row named `name` and bumps the change marker.
    pub async fn delete(&self, name: &str) -> Result<(), StoreError> {
        let sql = format!(
            "DELETE FROM {TASKS} WHERE name = {}",
            self.dialect().placeholder(1)
        );
        with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(name)
            .execute(pool)
            .await
            .map_err(DatabaseError::query(
                "delete django-celery-beat periodic task"
            ))?
            .rows_affected());
        self.bump_marker().await
    }

    /// Copies run progress to the row without touching `date_changed` or the marker.
    async fn record_progress(&self, task: &PeriodicTask) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE {TASKS} SET last_run_at = {}, total_run_count = {}, enabled = {} \
             WHERE name = {}",
            self.time_value(1),
            self.dialect().placeholder(2),
            self.bool_value(3),
            self.dialect().placeholder(4),
        );
        with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(task.last_run_at.map(django_time))
            .bind(i64::try_from(task.total_run_count).unwrap_or(i64::MAX))
            .bind(i64::from(task.enabled))
            .bind(task.name.clone())
            .execute(pool)
            .await
            .map_err(DatabaseError::query(
                "record django-celery-beat run progress"
            ))?
            .rows_affected());
        Ok(())
    }

    async fn bump_marker(&self) -> Result<(), StoreError> {
        let now = django_time(crate::clock::now());
        let update = format!(
            "UPDATE {MARKER} SET last_update = {} WHERE ident = 1",
            self.time_value(1)
        );
        let insert = format!(
            "INSERT INTO {MARKER} (ident, last_update) VALUES (1, {})",
            self.time_value(1)
        );
        with_pool!(&self.database, |pool| {
            let updated = sqlx::query(&update)
                .bind(now.clone())
                .execute(pool)
                .await
                .map_err(DatabaseError::query(
                    "bump django-celery-beat's change marker",
                ))?
                .rows_affected();
            if updated == 0 {
                sqlx::query(&insert)
                    .bind(now.clone())
                    .execute(pool)
                    .await
                    .map_err(DatabaseError::query(
                        "create django-celery-beat's change marker",
                    ))?;
            }
        });
        Ok(())
    }

    /// The foreign-key column and id of the schedule row for `schedule`, created if no equal
    /// row exists (the admin reuses equal rows too).
    async fn schedule_row(&self, schedule: &Schedule) -> Result<(&'static str, i64), StoreError> {
        let p = |index: usize| self.dialect().placeholder(index);
        let (column, table, condition, values): (&str, &str, String, Vec<String>) = match schedule {
            Schedule::Crontab(crontab) => {
                let spec = crontab.to_spec();
                (
                    "crontab_id",
                    "django_celery_beat_crontabschedule",
                    format!(
                        "minute = {} AND hour = {} AND day_of_week = {} AND day_of_month = {} \
                         AND month_of_year = {} AND timezone = {}",
                        p(1),
                        p(2),
                        p(3),
                        p(4),
                        p(5),
                        p(6)
                    ),
                    vec![
                        spec.minute,
                        spec.hour,
                        spec.day_of_week,
                        spec.day_of_month,
                        spec.month_of_year,
                        spec.timezone,
                    ],
                )
            }
            Schedule::Interval(interval) => (
                "interval_id",
                "django_celery_beat_intervalschedule",
                format!("every = CAST({} AS INTEGER) AND period = {}", p(1), p(2)),
                vec![
                    interval.every().to_string(),
                    period_name(interval.period()).to_owned(),
                ],
            ),
            Schedule::Clocked { at } => (
                "clocked_id",
                "django_celery_beat_clockedschedule",
                format!("clocked_time = {}", self.time_value(1)),
                vec![django_time(*at)],
            ),
        };
        let columns = match schedule {
            Schedule::Crontab(_) => {
                "minute, hour, day_of_week, day_of_month, month_of_year, timezone"
            }
            Schedule::Interval(_) => "every, period",
            Schedule::Clocked { .. } => "clocked_time",
        };
        let inserted_values = match schedule {
            Schedule::Crontab(_) => (1..=6).map(p).collect::<Vec<_>>().join(", "),
            Schedule::Interval(_) => format!("CAST({} AS INTEGER), {}", p(1), p(2)),
            Schedule::Clocked { .. } => self.time_value(1),
        };
        let select =
            format!("SELECT CAST(id AS BIGINT) FROM {table} WHERE {condition} ORDER BY id LIMIT 1");
        let insert = format!("INSERT INTO {table} ({columns}) VALUES ({inserted_values})");
        let id = with_pool!(&self.database, |pool| {
            let find = || {
                let mut query = sqlx::query_scalar::<_, i64>(&select);
                for value in &values {
                    query = query.bind(value.clone());
                }
                query
            };
            match find()
                .fetch_optional(pool)
                .await
                .map_err(DatabaseError::query("find a django-celery-beat schedule"))?
            {
                Some(id) => id,
                None => {
                    let mut query = sqlx::query(&insert);
                    for value in &values {
                        query = query.bind(value.clone());
                    }
                    query
                        .execute(pool)
                        .await
                        .map_err(DatabaseError::query("create a django-celery-beat schedule"))?;
                    find()
                        .fetch_one(pool)
                        .await
                        .map_err(DatabaseError::query("find a django-celery-beat schedule"))?
                }
            }
        });
        Ok((column, id))
    }
}

/// Django's text form of a UTC time (what it writes to SQLite; PostgreSQL casts it).
fn django_time(time: DateTime<Utc>) -> String {
    format!("{}+00:00", time.format("%Y-%m-%d %H:%M:%S%.6f"))
}

fn parse_django_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim_end_matches("+00:00");
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc())
}

fn period_name(period: IntervalPeriod) -> &'static str {
    match period {
        IntervalPeriod::Days => "days",
        IntervalPeriod::Hours => "hours",
        IntervalPeriod::Minutes => "minutes",
        IntervalPeriod::Seconds => "seconds",
        IntervalPeriod::Microseconds => "microseconds",
    }
}

/// One row of [`DjangoBeatTables::list`]'s query.
fn task_from_row<R>(row: &R) -> Result<PeriodicTask, (String, String)>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let text = |index: usize| row.try_get::<Option<String>, _>(index).ok().flatten();
    let number = |index: usize| row.try_get::<Option<i64>, _>(index).ok().flatten();
    let name = text(0).unwrap_or_default();
    let problem = |reason: String| (name.clone(), reason);
    let json = |index: usize, default: Value| -> Result<Value, (String, String)> {
        match text(index) {
            Some(text) if !text.trim().is_empty() => serde_json::from_str(&text)
                .map_err(|error| problem(format!("column {index} is not JSON: {error}"))),
            _ => Ok(default),
        }
    };
    let time = |index: usize| text(index).as_deref().and_then(parse_django_time);
    let schedule = if let Some(minute) = text(18) {
        let spec = CrontabSpec {
            minute,
            hour: text(19).unwrap_or_default(),
            day_of_week: text(20).unwrap_or_default(),
            day_of_month: text(21).unwrap_or_default(),
            month_of_year: text(22).unwrap_or_default(),
            timezone: text(23).unwrap_or_else(|| "UTC".to_owned()),
        };
        Schedule::Crontab(Crontab::new(&spec).map_err(|error| problem(error.to_string()))?)
    } else if let Some(every) = number(24) {
        let period: IntervalPeriod =
            serde_json::from_value(Value::String(text(25).unwrap_or_default()))
                .map_err(|error| problem(format!("period: {error}")))?;
        let every = u64::try_from(every).map_err(|_| problem("every: negative".to_owned()))?;
        Schedule::Interval(
            Interval::new(every, period).map_err(|error| problem(error.to_string()))?,
        )
    } else if let Some(at) = time(26) {
        Schedule::Clocked { at }
    } else if number(27).is_some() {
        return Err(problem(
            "solar schedules are not supported by Celeriac's beat; this entry is not run"
                .to_owned(),
        ));
    } else {
        return Err(problem("no schedule is set".to_owned()));
    };
    Ok(PeriodicTask {
        name: name.clone(),
        task: text(1).unwrap_or_default(),
        args: json(2, Value::Array(Vec::new()))?,
        kwargs: json(3, Value::Object(serde_json::Map::new()))?,
        queue: text(4).filter(|queue| !queue.is_empty()),
        exchange: text(5).filter(|exchange| !exchange.is_empty()),
        routing_key: text(6).filter(|key| !key.is_empty()),
        headers: json(7, Value::Object(serde_json::Map::new()))?,
        priority: number(8).and_then(|priority| u32::try_from(priority).ok()),
        expires: time(9),
        expire_seconds: number(10).and_then(|seconds| u64::try_from(seconds).ok()),
        one_off: number(11).unwrap_or(0) != 0,
        start_time: time(12),
        enabled: number(13).unwrap_or(0) != 0,
        last_run_at: time(14),
        total_run_count: number(15)
            .and_then(|count| u64::try_from(count).ok())
            .unwrap_or(0),
        date_changed: time(16),
        description: text(17).unwrap_or_default(),
        schedule,
    })
}

/// The fields an edit changes (not the run bookkeeping).
pub fn same_definition(left: &PeriodicTask, right: &PeriodicTask) -> bool {
    let definition = |task: &PeriodicTask| {
        let mut task = task.clone();
        // A one-off that ran is disabled by beat, which is progress, not an edit.
        task.enabled = task.enabled || (task.one_off && task.total_run_count > 0);
        task.last_run_at = None;
        task.total_run_count = 0;
        task.date_changed = None;
        task
    };
    definition(left) == definition(right)
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Entries written into Celeriac's store from Django's rows.
    pub pulled: usize,
    /// Entries deleted from Celeriac's store because Django's rows are gone.
    pub pulled_deletes: usize,
    /// Entries written to Django's rows from Celeriac's edits.
    pub pushed: usize,
    /// Run progress copied to Django's rows.
    pub progress: usize,
}

/// Keeps Celeriac's store and django-celery-beat's tables in step (module docs).
#[derive(Debug)]
pub struct DjangoSync {
    tables: DjangoBeatTables,
    seen: Option<Stamp>,
    /// Celeriac's change stamp up to which its edits were pushed.
    pushed_up_to: Option<i64>,
    last_full_pull: Option<Instant>,
    last_progress: Option<Instant>,
    /// Entries already reported as unusable, so each is reported once.
    reported: HashSet<String>,
}

impl DjangoSync {
    /// A sync over `tables`.
    pub fn new(tables: DjangoBeatTables) -> DjangoSync {
        DjangoSync {
            tables,
            seen: None,
            pushed_up_to: None,
            last_full_pull: None,
            last_progress: None,
            reported: HashSet::new(),
        }
    }

    /// The tables.
    pub fn tables(&self) -> &DjangoBeatTables {
        &self.tables
    }

    /// One round: push Celeriac's edits, pull Django's, copy progress (module docs).
    pub async fn sync(&mut self, store: &ScheduleStore) -> Result<SyncReport, StoreError> {
        let mut report = SyncReport::default();
        // Edits made through Celeriac before the first pull belong to Celeriac's own past (an
        // earlier run of this process, or the same definitions): Django is the truth at start.
        if let Some(watermark) = self.pushed_up_to {
            self.push(store, watermark, &mut report).await?;
        }
        let stamp = self.tables.stamp().await?;
        let full_due = self
            .last_full_pull
            .is_none_or(|at| at.elapsed() >= FULL_PULL_EVERY);
        if self.seen.as_ref() != Some(&stamp) || full_due {
            self.pull(store, &mut report).await?;
            self.seen = Some(stamp);
            self.last_full_pull = Some(Instant::now());
        }
        if self
            .last_progress
            .is_none_or(|at| at.elapsed() >= PROGRESS_EVERY)
        {
            self.copy_progress(store, &mut report).await?;
            self.last_progress = Some(Instant::now());
        }
        if report != SyncReport::default() {
            tracing::info!(
                pulled = report.pulled,
                deleted = report.pulled_deletes,
                pushed = report.pushed,
                "beat schedules synced with django-celery-beat's tables"
            );
        }
        Ok(report)
    }

    async fn pull(
        &mut self,
        store: &ScheduleStore,
        report: &mut SyncReport,
    ) -> Result<(), StoreError> {
        // Stamps above this are the pull's own writes (or edits racing it): the next push
        // compares them with Django's rows, so nothing is lost and nothing echoes.
        let before = store.latest_version().await?;
        let (django, refused) = self.tables.list().await?;
        for (name, reason) in refused {
            if self.reported.insert(name.clone()) {
                tracing::error!(schedule = %name, %reason, "django-celery-beat entry not run");
            }
        }
        let ours: HashMap<String, PeriodicTask> = store
            .list()
            .await?
            .into_iter()
            .map(|stored| (stored.task.name.clone(), stored.task))
            .collect();
        let wanted: HashSet<&str> = django.iter().map(|task| task.name.as_str()).collect();
        for task in &django {
            let changed = ours
                .get(&task.name)
                .is_none_or(|known| !same_definition(known, task));
            if changed {
                if let Err(error) = store.upsert(task).await {
                    if self.reported.insert(task.name.clone()) {
                        tracing::error!(schedule = %task.name, %error, "django-celery-beat entry not run");
                    }
                    continue;
                }
                report.pulled += 1;
            }
        }
        for name in ours.keys() {
            if !wanted.contains(name.as_str()) {
                store.delete(name).await?;
                report.pulled_deletes += 1;
            }
        }
        self.pushed_up_to = Some(self.pushed_up_to.unwrap_or(before).max(before));
        Ok(())
    }

    async fn push(
        &mut self,
        store: &ScheduleStore,
        watermark: i64,
        report: &mut SyncReport,
    ) -> Result<(), StoreError> {
        let changes = store.changes_since(watermark).await?;
        if changes.upserted.is_empty() && changes.deleted.is_empty() {
            return Ok(());
        }
        let (django, _) = self.tables.list().await?;
        let theirs: HashMap<&str, &PeriodicTask> = django
            .iter()
            .map(|task| (task.name.as_str(), task))
            .collect();
        for stored in &changes.upserted {
            let differs = theirs
                .get(stored.task.name.as_str())
                .is_none_or(|known| !same_definition(known, &stored.task));
            if differs {
                self.tables.write(&stored.task).await?;
                report.pushed += 1;
            }
        }
        for name in &changes.deleted {
            if theirs.contains_key(name.as_str()) {
                self.tables.delete(name).await?;
                report.pushed += 1;
            }
        }
        self.pushed_up_to = Some(changes.version);
        // Our own writes moved Django's stamps; they are not edits to pull back.
        self.seen = Some(self.tables.stamp().await?);
        Ok(())
    }

    async fn copy_progress(
        &mut self,
        store: &ScheduleStore,
        report: &mut SyncReport,
    ) -> Result<(), StoreError> {
        let (django, _) = self.tables.list().await?;
        let theirs: HashMap<&str, &PeriodicTask> = django
            .iter()
            .map(|task| (task.name.as_str(), task))
            .collect();
        for stored in store.list().await? {
            let ours = &stored.task;
            let Some(known) = theirs.get(ours.name.as_str()) else {
                continue;
            };
            let moved = ours.last_run_at != known.last_run_at
                || ours.total_run_count != known.total_run_count
                || (ours.one_off && !ours.enabled && known.enabled);
            if moved && ours.last_run_at.is_some() {
                self.tables.record_progress(ours).await?;
                report.progress += 1;
            }
        }
        Ok(())
    }
}

/// Celery's default entry that prunes expired results from database backends: created when
/// missing, as Celery's beat does when `result_expires` is set (`0 4 * * *` in UTC, messages
/// expiring after 12 hours). An existing entry is left as the admin last saved it.
pub fn backend_cleanup_entry() -> PeriodicTask {
    let crontab = Crontab::new(&CrontabSpec {
        minute: "0".into(),
        hour: "4".into(),
        ..CrontabSpec::default()
    })
    .expect("0 4 * * * is a valid crontab");
    let mut task = PeriodicTask::new(
        "celery.backend_cleanup",
        "celery.backend_cleanup",
        Schedule::Crontab(crontab),
    );
    task.expire_seconds = Some(12 * 3600);
    task
}

impl DjangoBeatTables {
    /// Creates `celery.backend_cleanup` when it is missing (see [`backend_cleanup_entry`]).
    pub async fn install_default_entries(&self) -> Result<bool, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM {TASKS} WHERE name = {}",
            self.dialect().placeholder(1)
        );
        let count: i64 = with_pool!(&self.database, |pool| sqlx::query_scalar(&sql)
            .bind("celery.backend_cleanup")
            .fetch_one(pool)
            .await
            .map_err(DatabaseError::query("find celery.backend_cleanup"))?);
        if count > 0 {
            return Ok(false);
        }
        self.write(&backend_cleanup_entry()).await?;
        tracing::info!("created Celery's celery.backend_cleanup periodic task (0 4 * * * UTC)");
        Ok(true)
    }
}
