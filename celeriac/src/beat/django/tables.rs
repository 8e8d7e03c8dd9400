//! django-celery-beat's tables themselves: its periodic tasks read with their schedule rows,
//! written as the Django admin writes them (schedule rows found or created, the change marker
//! bumped), and run progress copied without a marker bump. See `beat::django` for why.

use super::super::StoreError;
use super::super::{Crontab, CrontabSpec, Interval, IntervalPeriod, PeriodicTask, Schedule, Solar};
use crate::db::{Database, DatabaseError, DatabaseOptions, Dialect};
use crate::with_pool;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use sqlx::Row;

const TASKS: &str = "django_celery_beat_periodictask";
const MARKER: &str = "django_celery_beat_periodictasks";

/// django-celery-beat's tables in Django's database.
#[derive(Debug, Clone)]
pub struct DjangoBeatTables {
    database: Database,
}

/// What tells whether anything changed: the marker, and the tasks' count and newest stamp.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Stamp(Option<String>, i64, Option<String>);

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

    pub(super) async fn stamp(&self) -> Result<Stamp, StoreError> {
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

    /// Every entry; rows that cannot be used (a bad crontab, no schedule) are returned
    /// apart with the reason.
    pub async fn list(&self) -> Result<(Vec<PeriodicTask>, Vec<(String, String)>), StoreError> {
        let sql = format!(
            "SELECT t.name, t.task, t.args, t.kwargs, t.queue, t.exchange, t.routing_key, \
             t.headers, CAST(t.priority AS BIGINT), {expires}, CAST(t.expire_seconds AS BIGINT), \
             CAST(CAST(t.one_off AS INTEGER) AS BIGINT), {start_time}, CAST(CAST(t.enabled AS INTEGER) AS BIGINT), {last_run_at}, \
             CAST(t.total_run_count AS BIGINT), {date_changed}, t.description, \
             c.minute, c.hour, c.day_of_week, c.day_of_month, c.month_of_year, c.timezone, \
             CAST(i.every AS BIGINT), i.period, {clocked}, \
             s.event, CAST(s.latitude AS TEXT), CAST(s.longitude AS TEXT) \
             FROM {TASKS} t \
             LEFT JOIN django_celery_beat_crontabschedule c ON c.id = t.crontab_id \
             LEFT JOIN django_celery_beat_intervalschedule i ON i.id = t.interval_id \
             LEFT JOIN django_celery_beat_clockedschedule k ON k.id = t.clocked_id \
             LEFT JOIN django_celery_beat_solarschedule s ON s.id = t.solar_id \
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
        // The definition columns in bind order, each with its value's placeholder (times and
        // booleans cast on PostgreSQL); the schedule key and `name` follow, as 16 and 17.
        let definition: Vec<(&str, String)> = [
            "task",
            "args",
            "kwargs",
            "queue",
            "exchange",
            "routing_key",
            "headers",
            "priority",
            "expires",
            "expire_seconds",
            "one_off",
            "start_time",
            "enabled",
            "description",
            "date_changed",
        ]
        .into_iter()
        .enumerate()
        .map(|(offset, name)| {
            let index = offset + 1;
            let value = match name {
                "expires" | "start_time" | "date_changed" => self.time_value(index),
                "one_off" | "enabled" => self.bool_value(index),
                _ => dialect.placeholder(index),
            };
            (name, value)
        })
        .collect();
        // One schedule key set, the others cleared (PostgreSQL refuses a column twice).
        let keys = ["crontab_id", "interval_id", "clocked_id", "solar_id"].map(|key| {
            if key == column {
                format!("{key} = {}", dialect.placeholder(16))
            } else {
                format!("{key} = NULL")
            }
        });
        let assignments: Vec<String> = definition
            .iter()
            .map(|(name, value)| format!("{name} = {value}"))
            .chain(keys)
            .collect();
        let update = format!(
            "UPDATE {TASKS} SET {} WHERE name = {}",
            assignments.join(", "),
            dialect.placeholder(17)
        );
        let names: Vec<&str> = definition.iter().map(|(name, _)| *name).collect();
        let values: Vec<&str> = definition.iter().map(|(_, value)| value.as_str()).collect();
        let insert = format!(
            "INSERT INTO {TASKS} ({}, {column}, name, total_run_count) VALUES ({}, {}, {}, 0)",
            names.join(", "),
            values.join(", "),
            dialect.placeholder(16),
            dialect.placeholder(17)
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
    pub(super) async fn record_progress(&self, task: &PeriodicTask) -> Result<(), StoreError> {
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
        // A decimal bound as text, compared and stored as the column's DECIMAL(9, 6).
        let decimal = |index: usize| format!("CAST({} AS DECIMAL(9, 6))", p(index));
        // The key column, the table, its value columns with their placeholders, and the values.
        let (column, table, columns, values): (&str, &str, Vec<(&str, String)>, Vec<String>) =
            match schedule {
                Schedule::Crontab(crontab) => {
                    let spec = crontab.to_spec();
                    (
                        "crontab_id",
                        "django_celery_beat_crontabschedule",
                        [
                            "minute",
                            "hour",
                            "day_of_week",
                            "day_of_month",
                            "month_of_year",
                            "timezone",
                        ]
                        .into_iter()
                        .zip(1..)
                        .map(|(name, index)| (name, p(index)))
                        .collect(),
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
                    vec![
                        ("every", format!("CAST({} AS INTEGER)", p(1))),
                        ("period", p(2)),
                    ],
                    vec![
                        interval.every().to_string(),
                        period_name(interval.period()).to_owned(),
                    ],
                ),
                Schedule::Clocked { at } => (
                    "clocked_id",
                    "django_celery_beat_clockedschedule",
                    vec![("clocked_time", self.time_value(1))],
                    vec![django_time(*at)],
                ),
                Schedule::Solar(solar) => (
                    "solar_id",
                    "django_celery_beat_solarschedule",
                    vec![
                        ("event", p(1)),
                        ("latitude", decimal(2)),
                        ("longitude", decimal(3)),
                    ],
                    vec![
                        solar.event().name().to_owned(),
                        solar.latitude_text(),
                        solar.longitude_text(),
                    ],
                ),
            };
        let condition = columns
            .iter()
            .map(|(name, value)| format!("{name} = {value}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let names = columns.iter().map(|(name, _)| *name).collect::<Vec<_>>();
        let placeholders = columns
            .iter()
            .map(|(_, value)| value.as_str())
            .collect::<Vec<_>>();
        let columns = names.join(", ");
        let inserted_values = placeholders.join(", ");
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
    } else if let Some(event) = text(27) {
        let solar = Solar::parse(
            &event,
            &text(28).unwrap_or_default(),
            &text(29).unwrap_or_default(),
        )
        .map_err(|error| problem(error.to_string()))?;
        Schedule::Solar(solar)
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

impl DjangoBeatTables {
    /// Creates `celery.backend_cleanup` when it is missing (see
    /// [`backend_cleanup_entry`](super::backend_cleanup_entry)).
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
        self.write(&super::backend_cleanup_entry()).await?;
        tracing::info!("created Celery's celery.backend_cleanup periodic task (0 4 * * * UTC)");
        Ok(true)
    }
}
