//! [`DjangoBackend`]: django-celery-results' `django-db` backend, on its own tables.
//!
//! A Django team's results live in `django_celery_results_taskresult`, which its admin, its ORM
//! and `AsyncResult` read. This writes the rows django-celery-results writes (one per task,
//! updated in place: `date_created` once, `date_done` at every write as Django's `auto_now`,
//! `date_started` when STARTED) with its encodings: `result` and `meta` (`{"children": […]}`)
//! as JSON text with `content_type` `application/json` and `content_encoding` `utf-8`;
//! `task_args`/`task_kwargs` as the JSON of the message's `argsrepr`/`kwargsrepr` texts;
//! `task_name`, `worker`, `periodic_task_name` and the arguments only with `result_extended`.
//! One difference: the traceback is stored without `result_extended` too (django-celery-results
//! 2.6 drops it then, which leaves a failure without its cause).
//!
//! The tables belong to Django's migrations, so they are never created or altered here; a
//! database without them is refused at start with what to run. Times are written in UTC, as
//! Django stores them with `USE_TZ = True` (its default): `timestamptz` on PostgreSQL, text
//! `YYYY-MM-DD HH:MM:SS.ffffff` on SQLite. There is no pub/sub, so waiting for a result polls
//! every half second, as Celery's database backends do (`subpolling_interval`).
//!
//! Reading back: the arguments exist only as reprs; they are turned back into values by
//! [`python_literal`](crate::protocol::python_literal) when that is exact, and left unknown
//! (reprs kept) when not. A write over a SUCCESS row is skipped, as on Redis.

use super::sql::{
    first, id_chunks, page, parse_utc_text, query_error, readable, utc_text, wait_polling,
    window_start, RowResult,
};
use super::BackendError;
use crate::db::{Database, DatabaseOptions, Dialect};
use crate::protocol::python_literal;
use crate::protocol::time::format_iso;
use crate::protocol::ResultMeta;
use crate::types::TaskState;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use std::time::Duration;

/// Django's table of task results.
const TASK_TABLE: &str = "django_celery_results_taskresult";

/// The `django-db` result backend.
#[derive(Debug, Clone)]
pub struct DjangoBackend {
    database: Database,
    result_expires: Option<Duration>,
}

impl DjangoBackend {
    /// Opens Django's database at `database_url` and checks that django-celery-results'
    /// tables are there.
    pub async fn connect(
        database_url: &str,
        result_expires: Option<Duration>,
    ) -> Result<DjangoBackend, BackendError> {
        let database = Database::connect_existing(&DatabaseOptions::new(database_url))
            .await
            .map_err(|source| BackendError::Database { source })?;
        let backend = DjangoBackend {
            database,
            result_expires,
        };
        backend.check_tables(database_url).await?;
        Ok(backend)
    }

    async fn check_tables(&self, database_url: &str) -> Result<(), BackendError> {
        let sql = format!("SELECT COUNT(*) FROM {TASK_TABLE} WHERE 1 = 0");
        let found = crate::with_pool!(&self.database, |pool| {
            sqlx::query(&sql).fetch_optional(pool).await.map(|_| ())
        });
        match found {
            Ok(_) => Ok(()),
            Err(source) => Err(BackendError::TablesMissing {
                table: TASK_TABLE,
                database: crate::db::hide_password(database_url),
                advice: "result_backend = \"django-db\" keeps results in the Django project's \
                         database: set database_url to it (DATABASES[\"default\"]) and run \
                         `python manage.py migrate django_celery_results`",
                source,
            }),
        }
    }

    /// Stores a task's state; false when the row was already SUCCESS and kept.
    pub async fn store(&self, meta: &ResultMeta) -> Result<bool, BackendError> {
        let now = crate::clock::now();
        let dialect = self.database.dialect();
        let result = serde_json::to_string(&meta.result).unwrap_or_else(|_| "null".to_owned());
        let encoded_meta = serde_json::json!({ "children": meta.children }).to_string();
        let json_text = |text: &Option<String>| {
            text.as_ref()
                .map(|text| Value::String(text.clone()).to_string())
        };
        let task_args = json_text(&meta.args_repr).or_else(|| {
            meta.args
                .as_ref()
                .map(|args| Value::String(crate::types::python_repr(args)).to_string())
        });
        let task_kwargs = json_text(&meta.kwargs_repr).or_else(|| {
            meta.kwargs
                .as_ref()
                .map(|kwargs| Value::String(crate::types::python_repr(kwargs)).to_string())
        });
        let started = (meta.status == TaskState::Started).then_some(now);
        // Times are bound as Django's UTC text; PostgreSQL casts them to its timestamptz.
        let placeholders: Vec<String> = (1..=15)
            .map(|index| match (dialect, index) {
                (Dialect::Postgres, 6 | 13 | 15) => {
                    format!("CAST({} AS TIMESTAMPTZ)", dialect.placeholder(index))
                }
                _ => dialect.placeholder(index),
            })
            .collect();
        let time = |time: DateTime<Utc>| match dialect {
            Dialect::Postgres => format!("{}+00:00", utc_text(time)),
            Dialect::Sqlite => utc_text(time),
        };
        let sql = format!(
            "INSERT INTO {TASK_TABLE} (task_id, status, content_type, content_encoding, result, \
             date_done, traceback, meta, task_args, task_kwargs, task_name, worker, \
             date_created, periodic_task_name, date_started) VALUES ({}) \
             ON CONFLICT (task_id) DO UPDATE SET status = excluded.status, \
             content_type = excluded.content_type, content_encoding = excluded.content_encoding, \
             result = excluded.result, date_done = excluded.date_done, \
             traceback = excluded.traceback, meta = excluded.meta, \
             task_args = excluded.task_args, task_kwargs = excluded.task_kwargs, \
             task_name = excluded.task_name, worker = excluded.worker, \
             periodic_task_name = excluded.periodic_task_name, \
             date_started = COALESCE(excluded.date_started, {TASK_TABLE}.date_started) \
             WHERE {TASK_TABLE}.status <> 'SUCCESS'",
            placeholders.join(", ")
        );
        let written = crate::with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(&meta.task_id)
            .bind(meta.status.as_str())
            .bind("application/json")
            .bind("utf-8")
            .bind(&result)
            .bind(time(now))
            .bind(&meta.traceback)
            .bind(&encoded_meta)
            .bind(&task_args)
            .bind(&task_kwargs)
            .bind(&meta.name)
            .bind(&meta.worker)
            .bind(time(now))
            .bind(&meta.periodic_task_name)
            .bind(started.map(time))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map_err(query_error("store task result"))?;
        Ok(written > 0)
    }

    /// The stored state of a task; None means PENDING.
    pub async fn get(&self, task_id: &str) -> Result<Option<ResultMeta>, BackendError> {
        let sql = format!(
            "SELECT {} FROM {TASK_TABLE} WHERE task_id = {}",
            self.columns(),
            self.database.dialect().placeholder(1)
        );
        first(self.select(&sql, &[task_id.to_owned()]).await?)
    }

    /// The stored results of `task_ids`, skipping the ones not stored.
    pub async fn get_many(&self, task_ids: &[String]) -> Result<Vec<ResultMeta>, BackendError> {
        let mut found = Vec::with_capacity(task_ids.len());
        for (placeholders, chunk) in id_chunks(self.database.dialect(), task_ids) {
            let sql = format!(
                "SELECT {} FROM {TASK_TABLE} WHERE task_id IN ({placeholders})",
                self.columns()
            );
            found.extend(readable(self.select(&sql, chunk).await?).map(|(_, meta)| meta));
        }
        Ok(found)
    }

    /// One page of a walk over the results done within `result_expires` (a day when results
    /// never expire), in row order: the cursor to go on from (0 when the walk is complete)
    /// and the results. Older rows are left out so that a table nobody prunes is not read
    /// whole at every start.
    pub async fn scan_results(
        &self,
        cursor: u64,
        count: usize,
    ) -> Result<(u64, Vec<ResultMeta>), BackendError> {
        let since = window_start(self.result_expires);
        let rows = self.select_since(cursor, since, count).await?;
        Ok(page(rows, count))
    }

    /// The placeholder `index` for a time, and the time as the text to bind there: Django's
    /// UTC text, which PostgreSQL casts to its `timestamptz`.
    fn time_value(&self, index: usize, time: DateTime<Utc>) -> (String, String) {
        let dialect = self.database.dialect();
        match dialect {
            Dialect::Postgres => (
                format!("CAST({} AS TIMESTAMPTZ)", dialect.placeholder(index)),
                format!("{}+00:00", utc_text(time)),
            ),
            Dialect::Sqlite => (dialect.placeholder(index), utc_text(time)),
        }
    }

    /// The columns [`task_row`] reads, times as Django's UTC text whichever the database.
    fn columns(&self) -> String {
        let date_done = match self.database.dialect() {
            Dialect::Postgres => {
                "to_char(date_done AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
            }
            Dialect::Sqlite => "date_done",
        };
        format!(
            "CAST(id AS BIGINT), task_id, status, content_type, content_encoding, result, \
             {date_done}, traceback, meta, task_args, task_kwargs, task_name, worker, \
             periodic_task_name"
        )
    }

    async fn select_since(
        &self,
        cursor: u64,
        since: DateTime<Utc>,
        count: usize,
    ) -> Result<Vec<RowResult>, BackendError> {
        let (since_value, since) = self.time_value(1, since);
        let sql = format!(
            "SELECT {} FROM {TASK_TABLE} WHERE id > {cursor} AND date_done >= {since_value} \
             ORDER BY id LIMIT {}",
            self.columns(),
            count.max(1)
        );
        self.select(&sql, &[since]).await
    }

    async fn select(&self, sql: &str, binds: &[String]) -> Result<Vec<RowResult>, BackendError> {
        let rows = crate::with_pool!(&self.database, |pool| {
            let mut query = sqlx::query(sql);
            for bind in binds {
                query = query.bind(bind.clone());
            }
            query
                .fetch_all(pool)
                .await
                .map(|rows| rows.iter().map(task_row).collect::<Vec<_>>())
        })
        .map_err(query_error("read task results"))?;
        Ok(rows)
    }

    /// Deletes a stored result (`AsyncResult.forget()`).
    pub async fn forget(&self, task_id: &str) -> Result<(), BackendError> {
        let sql = format!(
            "DELETE FROM {TASK_TABLE} WHERE task_id = {}",
            self.database.dialect().placeholder(1)
        );
        crate::with_pool!(&self.database, |pool| {
            sqlx::query(&sql)
                .bind(task_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(query_error("forget task result"))?;
        Ok(())
    }

    /// Deletes the results done longer than `result_expires` ago (Celery's
    /// `celery.backend_cleanup`, django-celery-results' `delete_expired`); the rows deleted.
    /// Nothing when results never expire.
    pub async fn cleanup(&self) -> Result<u64, BackendError> {
        let Some(expires) = self.result_expires else {
            return Ok(0);
        };
        let (before_value, before) = self.time_value(1, window_start(Some(expires)));
        let mut deleted = 0;
        for table in [TASK_TABLE, "django_celery_results_groupresult"] {
            let sql = format!("DELETE FROM {table} WHERE date_done < {before_value}");
            let done = crate::with_pool!(&self.database, |pool| sqlx::query(&sql)
                .bind(before.clone())
                .execute(pool)
                .await
                .map(|done| done.rows_affected()))
            .map_err(query_error("delete expired results"))?;
            deleted += done;
        }
        Ok(deleted)
    }

    /// Waits until the task is ready or `timeout` passes, looking every half second.
    pub async fn wait_ready(
        &self,
        task_id: &str,
        timeout: Duration,
    ) -> Result<ResultMeta, BackendError> {
        wait_polling(task_id, timeout, || self.get(task_id)).await
    }
}

/// django-celery-results' chord counters: one row per chord, the header's result tuples and
/// how many members have yet to finish.
const CHORD_TABLE: &str = "django_celery_results_chordcounter";

/// Where a header member's finish left its chord.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChordJoin {
    /// Members are still running.
    Waiting,
    /// This member was the last: the header's task ids, in header order.
    Complete {
        /// The members, as the counter's `sub_tasks` lists them.
        members: Vec<String>,
    },
    /// No counter for the group (another worker fired it, or it was never created).
    Unknown,
}

impl DjangoBackend {
    /// Creates chord `group_id`'s counter before its members are sent, as django-celery-results'
    /// `apply_chord` does: `sub_tasks` holds each member's result tuple (`[[id, null], null]`),
    /// `count` how many members must finish.
    pub async fn apply_chord(
        &self,
        group_id: &str,
        members: &[String],
        size: usize,
    ) -> Result<(), BackendError> {
        let sub_tasks: Vec<Value> = members
            .iter()
            .map(|id| serde_json::json!([[id, null], null]))
            .collect();
        let dialect = self.database.dialect();
        let sql = format!(
            "INSERT INTO {CHORD_TABLE} (group_id, sub_tasks, count) VALUES ({}, {}, {})",
            dialect.placeholder(1),
            dialect.placeholder(2),
            dialect.placeholder(3)
        );
        let count = i64::try_from(size).unwrap_or(i64::MAX);
        crate::with_pool!(&self.database, |pool| {
            sqlx::query(&sql)
                .bind(group_id)
                .bind(Value::Array(sub_tasks).to_string())
                .bind(count)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(query_error("create chord counter"))?;
        Ok(())
    }

    /// Counts one finished header member of chord `group_id` (django-celery-results'
    /// `on_chord_part_return`): one atomic decrement, and the member that brings the count to
    /// zero deletes the counter and gets the header to join. A redelivered member counts
    /// again, as it does in django-celery-results.
    pub async fn chord_part_return(&self, group_id: &str) -> Result<ChordJoin, BackendError> {
        let dialect = self.database.dialect();
        let decrement = format!(
            "UPDATE {CHORD_TABLE} SET count = count - 1 WHERE group_id = {} AND count > 0 \
             RETURNING CAST(count AS BIGINT), sub_tasks",
            dialect.placeholder(1)
        );
        let delete = format!(
            "DELETE FROM {CHORD_TABLE} WHERE group_id = {} AND count = 0",
            dialect.placeholder(1)
        );
        let row: Option<(i64, String)> = crate::with_pool!(&self.database, |pool| {
            sqlx::query_as::<_, (i64, String)>(&decrement)
                .bind(group_id)
                .fetch_optional(pool)
                .await
        })
        .map_err(query_error("count a chord member"))?;
        let Some((count, sub_tasks)) = row else {
            return Ok(ChordJoin::Unknown);
        };
        if count > 0 {
            return Ok(ChordJoin::Waiting);
        }
        let deleted = crate::with_pool!(&self.database, |pool| {
            sqlx::query(&delete)
                .bind(group_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(query_error("delete a chord counter"))?;
        if deleted == 0 {
            return Ok(ChordJoin::Unknown);
        }
        let members = serde_json::from_str::<Value>(&sub_tasks)
            .map_err(|source| BackendError::InvalidDocument {
                task_id: group_id.to_owned(),
                source,
            })?
            .as_array()
            .map(|tuples| {
                tuples
                    .iter()
                    .filter_map(|tuple| tuple.get(0)?.get(0)?.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(ChordJoin::Complete { members })
    }
}

/// The columns of a row.
struct Columns {
    task_id: String,
    status: String,
    content_type: String,
    content_encoding: String,
    result: Option<String>,
    date_done: Option<DateTime<Utc>>,
    traceback: Option<String>,
    meta: Option<String>,
    task_args: Option<String>,
    task_kwargs: Option<String>,
    task_name: Option<String>,
    worker: Option<String>,
    periodic_task_name: Option<String>,
}

/// One row of [`DjangoBackend::columns`], whichever the driver.
fn task_row<R>(row: &R) -> RowResult
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let read = || -> Result<(i64, Columns), sqlx::Error> {
        let date_done: Option<String> = row.try_get(6)?;
        Ok((
            row.try_get(0)?,
            Columns {
                task_id: row.try_get(1)?,
                status: row.try_get(2)?,
                content_type: row.try_get(3)?,
                content_encoding: row.try_get(4)?,
                result: row.try_get(5)?,
                date_done: date_done.as_deref().and_then(parse_utc_text),
                traceback: row.try_get(7)?,
                meta: row.try_get(8)?,
                task_args: row.try_get(9)?,
                task_kwargs: row.try_get(10)?,
                task_name: row.try_get(11)?,
                worker: row.try_get(12)?,
                periodic_task_name: row.try_get(13)?,
            },
        ))
    };
    let (id, columns) = read().map_err(query_error("decode a task result row"))?;
    Ok((id, columns.into_meta()?))
}

impl Columns {
    fn into_meta(self) -> Result<ResultMeta, BackendError> {
        if self.content_type != "application/json" || self.content_encoding == "binary" {
            return Err(BackendError::NotJson {
                task_id: self.task_id,
                content_type: self.content_type,
            });
        }
        let decode = |text: &Option<String>| -> Result<Option<Value>, BackendError> {
            match text.as_deref() {
                None | Some("") => Ok(None),
                Some(text) => serde_json::from_str(text).map(Some).map_err(|source| {
                    BackendError::InvalidDocument {
                        task_id: self.task_id.clone(),
                        source,
                    }
                }),
            }
        };
        let status: TaskState = serde_json::from_value(Value::String(self.status.clone()))
            .map_err(|source| BackendError::InvalidDocument {
                task_id: self.task_id.clone(),
                source,
            })?;
        let mut meta = ResultMeta::new(
            self.task_id.clone(),
            status,
            decode(&self.result)?.unwrap_or(Value::Null),
        );
        meta.traceback = self.traceback.clone();
        if let Some(Value::Object(stored)) = decode(&self.meta)? {
            if let Some(Value::Array(children)) = stored.get("children") {
                meta.children = children.clone();
            }
        }
        if status.is_ready() {
            meta.date_done = self.date_done.map(format_iso);
        }
        meta.name = self.task_name.clone();
        meta.worker = self.worker.clone();
        meta.periodic_task_name = self.periodic_task_name.clone();
        match decode(&self.task_args)? {
            Some(Value::String(repr)) => {
                meta.args = python_literal::parse_args(&repr).ok().map(Value::Array);
                meta.args_repr = Some(repr);
            }
            // Protocol 1 stored the arguments themselves.
            Some(args @ Value::Array(_)) => meta.args = Some(args),
            _ => {}
        }
        match decode(&self.task_kwargs)? {
            Some(Value::String(repr)) => {
                meta.kwargs = python_literal::parse_kwargs(&repr).ok().map(Value::Object);
                meta.kwargs_repr = Some(repr);
            }
            Some(kwargs @ Value::Object(_)) => meta.kwargs = Some(kwargs),
            _ => {}
        }
        Ok(meta)
    }
}
