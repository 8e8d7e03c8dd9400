//! Beat's schedules in SQL (the `database_url` database, shared with the task history): the
//! API the CLI, the dashboard and the scheduler use to read and edit periodic tasks.
//!
//! Edits are detected without polling whole tables: triggers (migration `*_beat.sql`) stamp
//! every changed row with a growing `version` and record deletions, so
//! [`ScheduleStore::changes_since`] returns exactly what changed, whether through this API or
//! a raw SQL `UPDATE`. The same triggers move `anchor_at` to "now" when an entry is re-enabled
//! or rescheduled, so it does not fire at once for slots that passed while it was off.
//!
//! The scheduler's own writes ([`ScheduleStore::record_runs`]) touch only bookkeeping columns
//! the triggers ignore, so firing does not read back as an edit.

use super::{PeriodicTask, PeriodicTaskError, Schedule};
use crate::db::{Database, DatabaseError, Dialect};
use crate::with_pool;
use chrono::{DateTime, TimeZone, Utc};
use futures::TryStreamExt;
use sqlx::Row;

mod runs;

pub use runs::{RunOutcome, RunRecord, StoredRun, RUNS_KEPT};

/// One stored entry with the scheduler's bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTask {
    /// The entry as django-celery-beat models it.
    pub task: PeriodicTask,
    /// Slots at or before this are not due (see `due::plan`).
    pub anchor_at: Option<DateTime<Utc>>,
    /// Slots that passed without being sent (downtime, skip policy).
    pub missed_count: u64,
    /// Sends later than the lateness threshold.
    pub late_count: u64,
    /// The change stamp.
    pub version: i64,
}

/// What changed since a watermark.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Entries created or edited.
    pub upserted: Vec<StoredTask>,
    /// Names deleted.
    pub deleted: Vec<String>,
    /// The highest version seen (the next watermark).
    pub version: i64,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The entry is invalid; the error names the field.
    #[error(transparent)]
    Invalid(#[from] PeriodicTaskError),
    /// No entry has this name.
    #[error("no periodic task named {name:?}")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// An entry with this name exists already.
    #[error("a periodic task named {name:?} exists already")]
    Exists {
        /// The name.
        name: String,
    },
    /// A stored row could not be read back (edited by hand into something invalid).
    #[error("stored periodic task {name:?} is unreadable: {reason}")]
    Corrupt {
        /// The row's name.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

/// The column list every read selects, in [`stored_from_row`]'s order.
const COLUMNS: &str = "name, task, args, kwargs, queue, exchange, routing_key, headers, priority, \
     expires, expire_seconds, one_off, start_time, enabled, last_run_at, total_run_count, \
     date_changed, description, schedule, anchor_at, missed_count, late_count, version";

/// Reads and edits periodic tasks.
#[derive(Debug, Clone)]
pub struct ScheduleStore {
    database: Database,
}

fn millis(instant: Option<DateTime<Utc>>) -> Option<i64> {
    instant.map(|instant| instant.timestamp_millis())
}

fn instant(millis: Option<i64>) -> Option<DateTime<Utc>> {
    millis.and_then(|millis| Utc.timestamp_millis_opt(millis).single())
}

/// Placeholders `p1, p2, …` of the dialect for `count` values starting at `first`.
fn placeholders(dialect: Dialect, first: usize, count: usize) -> String {
    (first..first + count)
        .map(|index| dialect.placeholder(index))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ScheduleStore {
    /// The store in `database` (already migrated by [`Database::connect`]).
    pub fn new(database: Database) -> ScheduleStore {
        ScheduleStore { database }
    }

    /// The database, for callers that share it.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Every entry, enabled or not, by name.
    pub async fn list(&self) -> Result<Vec<StoredTask>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM celeriac_beat_periodic_task ORDER BY name");
        // Row by row: holding every raw row and every entry at once doubled the peak memory
        // of a leader loading 100,000 entries.
        with_pool!(&self.database, |pool| {
            let mut rows = sqlx::query(&sql).fetch(pool);
            let mut entries = Vec::new();
            while let Some(row) = rows
                .try_next()
                .await
                .map_err(DatabaseError::query("list periodic tasks"))?
            {
                entries.push(stored_from_row(&row)?);
            }
            Ok(entries)
        })
    }

    /// One entry.
    pub async fn get(&self, name: &str) -> Result<StoredTask, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM celeriac_beat_periodic_task WHERE name = {}",
            self.database.dialect().placeholder(1)
        );
        let row = with_pool!(&self.database, |pool| {
            let row = sqlx::query(&sql)
                .bind(name)
                .fetch_optional(pool)
                .await
                .map_err(DatabaseError::query("get periodic task"))?;
            row.as_ref().map(stored_from_row)
        });
        row.unwrap_or_else(|| {
            Err(StoreError::NotFound {
                name: name.to_owned(),
            })
        })
    }

    /// Creates an entry after validating it; [`StoreError::Exists`] if the name is taken, also
    /// when another writer inserted it between the check and the insert (the primary key
    /// refuses the second row).
    pub async fn add(&self, task: &PeriodicTask) -> Result<(), StoreError> {
        task.validate()?;
        let exists = || StoreError::Exists {
            name: task.name.clone(),
        };
        if self.exists(&task.name).await? {
            return Err(exists());
        }
        self.write(task, false).await.map_err(|error| match error {
            StoreError::Database(DatabaseError::Query { source, .. })
                if source
                    .as_database_error()
                    .is_some_and(|database_error| database_error.is_unique_violation()) =>
            {
                exists()
            }
            other => other,
        })
    }

    /// Replaces an entry's definition (not its run bookkeeping) after validating it.
    pub async fn update(&self, task: &PeriodicTask) -> Result<(), StoreError> {
        task.validate()?;
        if !self.exists(&task.name).await? {
            return Err(StoreError::NotFound {
                name: task.name.clone(),
            });
        }
        self.write(task, true).await
    }

    /// Creates or replaces (static `beat_schedule` entries synced at start).
    pub async fn upsert(&self, task: &PeriodicTask) -> Result<(), StoreError> {
        task.validate()?;
        let exists = self.exists(&task.name).await?;
        self.write(task, exists).await
    }

    /// Enables or disables an entry; enabling does not fire slots that passed meanwhile.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), StoreError> {
        let dialect = self.database.dialect();
        let sql = format!(
            "UPDATE celeriac_beat_periodic_task SET enabled = {}, date_changed = {} \
             WHERE name = {}",
            dialect.placeholder(1),
            dialect.placeholder(2),
            dialect.placeholder(3)
        );
        let now = crate::clock::now().timestamp_millis();
        let affected = with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(i64::from(enabled))
            .bind(now)
            .bind(name)
            .execute(pool)
            .await
            .map_err(DatabaseError::query("enable periodic task"))?
            .rows_affected());
        if affected == 0 {
            return Err(StoreError::NotFound {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Deletes an entry (its runs go with it).
    pub async fn delete(&self, name: &str) -> Result<(), StoreError> {
        let sql = format!(
            "DELETE FROM celeriac_beat_periodic_task WHERE name = {}",
            self.database.dialect().placeholder(1)
        );
        let affected = with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(name)
            .execute(pool)
            .await
            .map_err(DatabaseError::query("delete periodic task"))?
            .rows_affected());
        if affected == 0 {
            return Err(StoreError::NotFound {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Entries changed and deleted with a version above `watermark`.
    pub async fn changes_since(&self, watermark: i64) -> Result<Changes, StoreError> {
        let placeholder = self.database.dialect().placeholder(1);
        let upserted_sql = format!(
            "SELECT {COLUMNS} FROM celeriac_beat_periodic_task \
             WHERE version > {placeholder} ORDER BY version"
        );
        let deleted_sql = format!(
            "SELECT name, version FROM celeriac_beat_deleted \
             WHERE version > {placeholder} ORDER BY version"
        );
        // Deletions first: a row committed between the two reads then shows up in the second
        // one. The other order could see a deletion stamped after an edit it did not see, and
        // move the watermark past that edit.
        let (upserted, deleted) = with_pool!(&self.database, |pool| {
            let rows = sqlx::query(&deleted_sql)
                .bind(watermark)
                .fetch_all(pool)
                .await
                .map_err(DatabaseError::query("read deleted periodic tasks"))?;
            let deleted: Vec<(String, i64)> = rows
                .iter()
                .map(|row| Ok((row.try_get("name")?, row.try_get("version")?)))
                .collect::<Result<_, sqlx::Error>>()
                .map_err(DatabaseError::query("read deleted periodic tasks"))?;
            let rows = sqlx::query(&upserted_sql)
                .bind(watermark)
                .fetch_all(pool)
                .await
                .map_err(DatabaseError::query("read changed periodic tasks"))?;
            let upserted: Vec<_> = rows.iter().map(stored_from_row).collect();
            (upserted, deleted)
        });
        let mut changes = Changes {
            version: watermark,
            ..Changes::default()
        };
        for stored in upserted {
            match stored {
                Ok(stored) => {
                    changes.version = changes.version.max(stored.version);
                    changes.upserted.push(stored);
                }
                // An unreadable row is reported and left out, so one bad hand edit does not
                // stop every other schedule.
                Err(error) => tracing::error!(%error, "skipping unreadable periodic task"),
            }
        }
        for (name, version) in deleted {
            changes.version = changes.version.max(version);
            changes.deleted.push(name);
        }
        Ok(changes)
    }

    /// Every entry's name and change stamp, for the periodic full comparison that catches
    /// PostgreSQL commits landing out of version order (a raw `UPDATE` in a long transaction).
    pub async fn versions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = "SELECT name, version FROM celeriac_beat_periodic_task";
        let versions = with_pool!(&self.database, |pool| sqlx::query_as::<_, (String, i64)>(
            sql
        )
        .fetch_all(pool)
        .await
        .map_err(DatabaseError::query("read periodic task versions"))?);
        Ok(versions)
    }

    /// How many entries there are and the sum of their versions: versions only grow and new
    /// rows get versions above every deleted one, so any change the caller has not seen
    /// changes this pair. Lets the periodic full comparison skip reading every version.
    pub async fn version_checksum(&self) -> Result<(i64, i64), StoreError> {
        let sql = "SELECT COUNT(*), CAST(COALESCE(SUM(version), 0) AS BIGINT) \
                   FROM celeriac_beat_periodic_task";
        let checksum = with_pool!(&self.database, |pool| sqlx::query_as::<_, (i64, i64)>(sql)
            .fetch_one(pool)
            .await
            .map_err(DatabaseError::query("read periodic task checksum"))?);
        Ok(checksum)
    }

    /// The highest change stamp handed out so far, edits and deletions alike.
    pub async fn latest_version(&self) -> Result<i64, StoreError> {
        let sql = "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM \
                   (SELECT version FROM celeriac_beat_periodic_task \
                   UNION ALL SELECT version FROM celeriac_beat_deleted) AS stamps";
        let latest = with_pool!(&self.database, |pool| sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .map_err(DatabaseError::query(
                "read the latest periodic task version"
            ))?);
        Ok(latest)
    }

    async fn exists(&self, name: &str) -> Result<bool, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM celeriac_beat_periodic_task WHERE name = {}",
            self.database.dialect().placeholder(1)
        );
        let count: i64 = with_pool!(&self.database, |pool| sqlx::query_scalar(&sql)
            .bind(name)
            .fetch_one(pool)
            .await
            .map_err(DatabaseError::query("find periodic task"))?);
        Ok(count > 0)
    }

    /// Inserts or updates the definition columns; bookkeeping columns keep their values on
    /// update.
    async fn write(&self, task: &PeriodicTask, exists: bool) -> Result<(), StoreError> {
        let dialect = self.database.dialect();
        let schedule =
            serde_json::to_string(&task.schedule).map_err(|error| StoreError::Corrupt {
                name: task.name.clone(),
                reason: error.to_string(),
            })?;
        let definition = [
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
            "date_changed",
            "description",
            "schedule",
        ];
        let sql = if exists {
            let assignments: Vec<String> = definition
                .iter()
                .enumerate()
                .map(|(index, column)| format!("{column} = {}", dialect.placeholder(index + 1)))
                .collect();
            format!(
                "UPDATE celeriac_beat_periodic_task SET {} WHERE name = {}",
                assignments.join(", "),
                dialect.placeholder(definition.len() + 1)
            )
        } else {
            format!(
                "INSERT INTO celeriac_beat_periodic_task ({}, name) VALUES ({})",
                definition.join(", "),
                placeholders(dialect, 1, definition.len() + 1)
            )
        };
        let now = crate::clock::now().timestamp_millis();
        with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(&task.task)
            .bind(task.args.to_string())
            .bind(task.kwargs.to_string())
            .bind(&task.queue)
            .bind(&task.exchange)
            .bind(&task.routing_key)
            .bind(task.headers.to_string())
            .bind(task.priority.map(i64::from))
            .bind(millis(task.expires))
            .bind(
                task.expire_seconds
                    .map(|seconds| i64::try_from(seconds).unwrap_or(i64::MAX))
            )
            .bind(i64::from(task.one_off))
            .bind(millis(task.start_time))
            .bind(i64::from(task.enabled))
            .bind(now)
            .bind(&task.description)
            .bind(&schedule)
            .bind(&task.name)
            .execute(pool)
            .await
            .map_err(DatabaseError::query("write periodic task"))?
            .rows_affected());
        Ok(())
    }
}

/// Reads one row of [`COLUMNS`]; JSON columns that no longer parse make the row corrupt.
fn stored_from_row<R>(row: &R) -> Result<StoredTask, StoreError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database>,
{
    let name: String = row
        .try_get("name")
        .map_err(DatabaseError::query("read periodic task"))?;
    let corrupt = |reason: String| StoreError::Corrupt {
        name: name.clone(),
        reason,
    };
    let get_i64 = |column: &str| -> Result<Option<i64>, StoreError> {
        row.try_get::<Option<i64>, _>(column)
            .map_err(|error| corrupt(format!("{column}: {error}")))
    };
    let get_text = |column: &str| -> Result<Option<String>, StoreError> {
        row.try_get::<Option<String>, _>(column)
            .map_err(|error| corrupt(format!("{column}: {error}")))
    };
    let json = |column: &str| -> Result<serde_json::Value, StoreError> {
        let text = get_text(column)?.unwrap_or_default();
        serde_json::from_str(&text).map_err(|error| corrupt(format!("{column}: {error}")))
    };
    let schedule_text = get_text("schedule")?.unwrap_or_default();
    let schedule: Schedule = serde_json::from_str(&schedule_text)
        .map_err(|error| corrupt(format!("schedule: {error}")))?;
    let count = |column: &str| -> Result<u64, StoreError> {
        Ok(get_i64(column)?.unwrap_or(0).max(0) as u64)
    };
    let task = PeriodicTask {
        task: get_text("task")?.unwrap_or_default(),
        args: json("args")?,
        kwargs: json("kwargs")?,
        queue: get_text("queue")?,
        exchange: get_text("exchange")?,
        routing_key: get_text("routing_key")?,
        headers: json("headers")?,
        priority: get_i64("priority")?.and_then(|priority| u32::try_from(priority).ok()),
        expires: instant(get_i64("expires")?),
        expire_seconds: get_i64("expire_seconds")?.and_then(|seconds| u64::try_from(seconds).ok()),
        one_off: get_i64("one_off")?.unwrap_or(0) != 0,
        start_time: instant(get_i64("start_time")?),
        enabled: get_i64("enabled")?.unwrap_or(0) != 0,
        last_run_at: instant(get_i64("last_run_at")?),
        total_run_count: count("total_run_count")?,
        date_changed: instant(get_i64("date_changed")?),
        description: get_text("description")?.unwrap_or_default(),
        schedule,
        name: name.clone(),
    };
    Ok(StoredTask {
        task,
        anchor_at: instant(get_i64("anchor_at")?),
        missed_count: count("missed_count")?,
        late_count: count("late_count")?,
        version: get_i64("version")?.unwrap_or(0),
    })
}
