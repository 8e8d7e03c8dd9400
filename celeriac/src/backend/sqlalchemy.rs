//! [`SqlAlchemyBackend`]: Celery's own database result backend
//! (`result_backend = "db+postgresql://…"` or `"db+sqlite:///…"`), on its `celery_taskmeta`
//! table.
//!
//! Rows as Celery 5.4 writes them (checked against a real worker, see the tests): `result` is
//! a Python pickle (SQLAlchemy's `PickleType`) of the return value or of the exception dict;
//! with `result_extended`, `name`, `worker`, `retries`, `queue`, and `args`/`kwargs` as JSON
//! bytes of the exact arguments; `date_done` a UTC time without zone. Only JSON-like values
//! cross: a pickled `datetime` or object does not read back (the row is reported unreadable),
//! and what this backend writes unpickles in Python to plain `int`, `str`, `list`, `dict`.
//!
//! As Celery's backend does, the tables are created when missing (with every extended column);
//! a table Celery created without `result_extended` gets only the base columns written. There
//! is no pub/sub: waits poll every half second (Celery's `subpolling_interval`). Chords are not
//! joined here (Celery falls back to its polling `celery.chord_unlock` task, which Celeriac does
//! not run): a Rust producer refuses them.

use super::sql::{
    first, id_chunks, page, parse_utc_text, query_error, readable, utc_text, wait_polling,
    window_start, RowResult,
};
use super::BackendError;
use crate::db::{Database, DatabaseOptions, Dialect};
use crate::protocol::time::format_iso;
use crate::protocol::ResultMeta;
use crate::types::TaskState;
use serde_json::Value;
use sqlx::Row;
use std::time::Duration;

const TASK_TABLE: &str = "celery_taskmeta";
const GROUP_TABLE: &str = "celery_tasksetmeta";

/// Celery's SQLAlchemy result backend.
#[derive(Debug, Clone)]
pub struct SqlAlchemyBackend {
    database: Database,
    result_expires: Option<Duration>,
    /// Whether the table has the extended columns (`name`, `args`, …).
    extended: bool,
}

/// The database URL sqlx opens for a `db+…` result backend URL: SQLAlchemy's driver suffix
/// (`postgresql+psycopg2`) dropped, and its SQLite paths (`sqlite:///relative.db`,
/// `sqlite:////absolute.db`) spelled as sqlx spells them.
pub fn database_url(result_backend: &str) -> Option<String> {
    let rest = result_backend.strip_prefix("db+")?;
    let (scheme, path) = rest.split_once("://")?;
    let dialect = scheme.split('+').next().unwrap_or(scheme);
    match dialect {
        "postgresql" | "postgres" => Some(format!("postgres://{path}")),
        "sqlite" => {
            let file = path.strip_prefix('/')?;
            Some(format!("sqlite://{file}"))
        }
        _ => None,
    }
}

impl SqlAlchemyBackend {
    /// Opens the backend of `result_backend` (a `db+…` URL), creating Celery's tables when
    /// they are missing.
    pub async fn connect(
        result_backend: &str,
        result_expires: Option<Duration>,
    ) -> Result<SqlAlchemyBackend, BackendError> {
        let url = database_url(result_backend).ok_or_else(|| BackendError::UnsupportedUrl {
            url: crate::db::hide_password(result_backend),
        })?;
        let options = DatabaseOptions::new(url);
        // Celery's backend creates its SQLite file; so does this one.
        let database = match options.url.starts_with("sqlite:") {
            true => Database::connect_new_file(&options).await,
            false => Database::connect_existing(&options).await,
        }
        .map_err(|source| BackendError::Database { source })?;
        let mut backend = SqlAlchemyBackend {
            database,
            result_expires,
            extended: true,
        };
        backend.create_tables().await?;
        backend.extended = backend.has_extended_columns().await;
        Ok(backend)
    }

    async fn create_tables(&self) -> Result<(), BackendError> {
        let statements: Vec<String> = match self.database.dialect() {
            Dialect::Postgres => vec![
                "CREATE SEQUENCE IF NOT EXISTS task_id_sequence".to_owned(),
                "CREATE SEQUENCE IF NOT EXISTS taskset_id_sequence".to_owned(),
                format!(
                    "CREATE TABLE IF NOT EXISTS {TASK_TABLE} (id INTEGER NOT NULL PRIMARY KEY, \
                     task_id VARCHAR(155) UNIQUE, status VARCHAR(50), result BYTEA, \
                     date_done TIMESTAMP WITHOUT TIME ZONE, traceback TEXT, name VARCHAR(155), \
                     args BYTEA, kwargs BYTEA, worker VARCHAR(155), retries INTEGER, \
                     queue VARCHAR(155))"
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS {GROUP_TABLE} (id INTEGER NOT NULL PRIMARY KEY, \
                     taskset_id VARCHAR(155) UNIQUE, result BYTEA, \
                     date_done TIMESTAMP WITHOUT TIME ZONE)"
                ),
            ],
            Dialect::Sqlite => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {TASK_TABLE} (id INTEGER NOT NULL PRIMARY KEY \
                     AUTOINCREMENT, task_id VARCHAR(155), status VARCHAR(50), result BLOB, \
                     date_done DATETIME, traceback TEXT, name VARCHAR(155), args BLOB, \
                     kwargs BLOB, worker VARCHAR(155), retries INTEGER, queue VARCHAR(155), \
                     UNIQUE (task_id))"
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS {GROUP_TABLE} (id INTEGER NOT NULL PRIMARY KEY \
                     AUTOINCREMENT, taskset_id VARCHAR(155), result BLOB, date_done DATETIME, \
                     UNIQUE (taskset_id))"
                ),
            ],
        };
        for statement in statements {
            crate::with_pool!(&self.database, |pool| sqlx::query(&statement)
                .execute(pool)
                .await
                .map(|_| ()))
            .map_err(query_error("create Celery's result tables"))?;
        }
        Ok(())
    }

    async fn has_extended_columns(&self) -> bool {
        let probe = format!(
            "SELECT name, args, kwargs, worker, retries, queue FROM {TASK_TABLE} WHERE 1 = 0"
        );
        crate::with_pool!(&self.database, |pool| sqlx::query(&probe)
            .fetch_optional(pool)
            .await
            .is_ok())
    }

    /// Stores a task's state; false when the row was already SUCCESS and kept.
    pub async fn store(&self, meta: &ResultMeta) -> Result<bool, BackendError> {
        let dialect = self.database.dialect();
        let p = |index: usize| dialect.placeholder(index);
        let result = pickle(&meta.result, &meta.task_id)?;
        let done = utc_text(crate::clock::now());
        let json_bytes =
            |value: &Option<Value>| value.as_ref().map(|value| value.to_string().into_bytes());
        let id = match dialect {
            Dialect::Postgres => "nextval('task_id_sequence'), ",
            Dialect::Sqlite => "",
        };
        let id_column = match dialect {
            Dialect::Postgres => "id, ",
            Dialect::Sqlite => "",
        };
        let time = |index: usize| match dialect {
            Dialect::Postgres => format!("CAST({} AS TIMESTAMP)", p(index)),
            Dialect::Sqlite => p(index),
        };
        let (extra_columns, extra_values, extra_updates) = if self.extended {
            (
                ", name, args, kwargs, worker, retries, queue",
                format!(
                    ", {}, {}, {}, {}, {}, {}",
                    p(6),
                    p(7),
                    p(8),
                    p(9),
                    p(10),
                    p(11)
                ),
                ", name = excluded.name, args = excluded.args, kwargs = excluded.kwargs, \
                 worker = excluded.worker, retries = excluded.retries, queue = excluded.queue",
            )
        } else {
            ("", String::new(), "")
        };
        let sql = format!(
            "INSERT INTO {TASK_TABLE} ({id_column}task_id, status, result, date_done, traceback\
             {extra_columns}) VALUES ({id}{}, {}, {}, {}, {}{extra_values}) \
             ON CONFLICT (task_id) DO UPDATE SET status = excluded.status, \
             result = excluded.result, date_done = excluded.date_done, \
             traceback = excluded.traceback{extra_updates} \
             WHERE {TASK_TABLE}.status <> 'SUCCESS'",
            p(1),
            p(2),
            p(3),
            time(4),
            p(5),
        );
        let retries = meta.retries.map(i64::from);
        let written = crate::with_pool!(&self.database, |pool| {
            let query = sqlx::query(&sql)
                .bind(meta.task_id.clone())
                .bind(meta.status.as_str())
                .bind(result.clone())
                .bind(done.clone())
                .bind(meta.traceback.clone());
            let query = if self.extended {
                query
                    .bind(meta.name.clone())
                    .bind(json_bytes(&meta.args))
                    .bind(json_bytes(&meta.kwargs))
                    .bind(meta.worker.clone())
                    .bind(retries)
                    .bind(meta.queue.clone())
            } else {
                query
            };
            query.execute(pool).await.map(|done| done.rows_affected())
        })
        .map_err(query_error("store task result"))?;
        Ok(written > 0)
    }

    fn select_columns(&self) -> String {
        let date_done = match self.database.dialect() {
            Dialect::Postgres => "to_char(date_done, 'YYYY-MM-DD HH24:MI:SS.US')",
            Dialect::Sqlite => "date_done",
        };
        let extended = if self.extended {
            "name, args, kwargs, worker, CAST(retries AS BIGINT), queue"
        } else {
            "NULL, NULL, NULL, NULL, NULL, NULL"
        };
        format!("CAST(id AS BIGINT), task_id, status, result, {date_done}, traceback, {extended}")
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
                .map(|rows| rows.iter().map(row_to_meta).collect::<Vec<_>>())
        })
        .map_err(query_error("read task results"))?;
        Ok(rows)
    }

    /// The stored state of a task; None means PENDING.
    pub async fn get(&self, task_id: &str) -> Result<Option<ResultMeta>, BackendError> {
        let sql = format!(
            "SELECT {} FROM {TASK_TABLE} WHERE task_id = {}",
            self.select_columns(),
            self.database.dialect().placeholder(1)
        );
        first(self.select(&sql, &[task_id.to_owned()]).await?)
    }

    /// The stored results of `task_ids`, skipping the ones not stored or unreadable.
    pub async fn get_many(&self, task_ids: &[String]) -> Result<Vec<ResultMeta>, BackendError> {
        let mut found = Vec::with_capacity(task_ids.len());
        for (placeholders, chunk) in id_chunks(self.database.dialect(), task_ids) {
            let sql = format!(
                "SELECT {} FROM {TASK_TABLE} WHERE task_id IN ({placeholders})",
                self.select_columns()
            );
            found.extend(readable(self.select(&sql, chunk).await?).map(|(_, meta)| meta));
        }
        Ok(found)
    }

    /// One page of a walk over the results done within `result_expires` (a day when they
    /// never expire), in row order; the cursor is the last row id (0 when complete).
    pub async fn scan_results(
        &self,
        cursor: u64,
        count: usize,
    ) -> Result<(u64, Vec<ResultMeta>), BackendError> {
        let since = utc_text(window_start(self.result_expires));
        let dialect = self.database.dialect();
        let since_value = match dialect {
            Dialect::Postgres => format!("CAST({} AS TIMESTAMP)", dialect.placeholder(1)),
            Dialect::Sqlite => dialect.placeholder(1),
        };
        let sql = format!(
            "SELECT {} FROM {TASK_TABLE} WHERE date_done >= {since_value} AND id > {} \
             ORDER BY id LIMIT {}",
            self.select_columns(),
            cursor,
            count.max(1)
        );
        let rows = self.select(&sql, &[since]).await?;
        Ok(page(rows, count))
    }

    /// Deletes a stored result (`AsyncResult.forget()`).
    pub async fn forget(&self, task_id: &str) -> Result<(), BackendError> {
        let sql = format!(
            "DELETE FROM {TASK_TABLE} WHERE task_id = {}",
            self.database.dialect().placeholder(1)
        );
        crate::with_pool!(&self.database, |pool| sqlx::query(&sql)
            .bind(task_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map_err(query_error("forget task result"))?;
        Ok(())
    }

    /// Deletes results and groups done longer than `result_expires` ago (Celery's `cleanup`);
    /// the rows deleted. Nothing when results never expire.
    pub async fn cleanup(&self) -> Result<u64, BackendError> {
        let Some(expires) = self.result_expires else {
            return Ok(0);
        };
        let before = utc_text(window_start(Some(expires)));
        let dialect = self.database.dialect();
        let value = match dialect {
            Dialect::Postgres => format!("CAST({} AS TIMESTAMP)", dialect.placeholder(1)),
            Dialect::Sqlite => dialect.placeholder(1),
        };
        let mut deleted = 0;
        for table in [TASK_TABLE, GROUP_TABLE] {
            let sql = format!("DELETE FROM {table} WHERE date_done < {value}");
            deleted += crate::with_pool!(&self.database, |pool| sqlx::query(&sql)
                .bind(before.clone())
                .execute(pool)
                .await
                .map(|done| done.rows_affected()))
            .map_err(query_error("delete expired results"))?;
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

/// A JSON value as a Python pickle (protocol 3, which every Python 3 reads).
fn pickle(value: &Value, task_id: &str) -> Result<Vec<u8>, BackendError> {
    serde_pickle::to_vec(value, serde_pickle::SerOptions::new()).map_err(|error| {
        BackendError::NotJson {
            task_id: task_id.to_owned(),
            content_type: format!("a value that does not pickle ({error})"),
        }
    })
}

/// A pickled value as JSON, when it is JSON-like.
fn unpickle(bytes: &[u8]) -> Result<Value, String> {
    let value = serde_pickle::value_from_slice(bytes, serde_pickle::DeOptions::new())
        .map_err(|error| format!("not a pickle Celeriac reads: {error}"))?;
    to_json(value)
}

fn to_json(value: serde_pickle::Value) -> Result<Value, String> {
    use serde_pickle::Value as Pickled;
    Ok(match value {
        Pickled::None => Value::Null,
        Pickled::Bool(flag) => Value::Bool(flag),
        Pickled::I64(number) => Value::from(number),
        Pickled::F64(number) => serde_json::Number::from_f64(number)
            .map(Value::Number)
            .ok_or_else(|| format!("the float {number} has no JSON form"))?,
        Pickled::String(text) => Value::String(text),
        Pickled::List(items) | Pickled::Tuple(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Pickled::Dict(entries) => {
            let mut map = serde_json::Map::new();
            for (key, item) in entries {
                let key = match key {
                    serde_pickle::HashableValue::String(key) => key,
                    other => return Err(format!("a dict key that is not a string: {other:?}")),
                };
                map.insert(key, to_json(item)?);
            }
            Value::Object(map)
        }
        other => return Err(format!("a value JSON cannot hold: {other:?}")),
    })
}

fn row_to_meta<R>(row: &R) -> RowResult
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let decode_error = |source: sqlx::Error| BackendError::Database {
        source: crate::db::DatabaseError::Query {
            operation: "decode a celery_taskmeta row",
            source,
        },
    };
    let id: Option<i64> = row.try_get(0).map_err(decode_error)?;
    let task_id: Option<String> = row.try_get(1).map_err(decode_error)?;
    let task_id = task_id.unwrap_or_default();
    let status: Option<String> = row.try_get(2).map_err(decode_error)?;
    let status: TaskState = serde_json::from_value(Value::String(status.unwrap_or_default()))
        .map_err(|source| BackendError::InvalidDocument {
            task_id: task_id.clone(),
            source,
        })?;
    let result: Option<Vec<u8>> = row.try_get(3).map_err(decode_error)?;
    let result = match result {
        Some(bytes) => unpickle(&bytes).map_err(|reason| BackendError::NotJson {
            task_id: task_id.clone(),
            content_type: reason,
        })?,
        None => Value::Null,
    };
    let mut meta = ResultMeta::new(task_id, status, result);
    let date_done: Option<String> = row.try_get(4).map_err(decode_error)?;
    if status.is_ready() {
        meta.date_done = date_done
            .as_deref()
            .and_then(parse_utc_text)
            .map(format_iso);
    }
    meta.traceback = row.try_get(5).map_err(decode_error)?;
    meta.name = row.try_get(6).map_err(decode_error)?;
    let json = |index: usize| -> Result<Option<Value>, BackendError> {
        let bytes: Option<Vec<u8>> = row.try_get(index).map_err(decode_error)?;
        Ok(bytes.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    };
    meta.args = json(7)?;
    meta.kwargs = json(8)?;
    meta.worker = row.try_get(9).map_err(decode_error)?;
    let retries: Option<i64> = row.try_get(10).map_err(decode_error)?;
    meta.retries = retries.and_then(|retries| u32::try_from(retries).ok());
    meta.queue = row.try_get(11).map_err(decode_error)?;
    Ok((id.unwrap_or(0), meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_as_sqlalchemy_spells_them() {
        assert_eq!(
            database_url("db+postgresql://app:pw@db/shop").as_deref(),
            Some("postgres://app:pw@db/shop")
        );
        assert_eq!(
            database_url("db+postgresql+psycopg2://db/shop").as_deref(),
            Some("postgres://db/shop")
        );
        assert_eq!(
            database_url("db+sqlite:///results.db").as_deref(),
            Some("sqlite://results.db")
        );
        assert_eq!(
            database_url("db+sqlite:////var/lib/results.db").as_deref(),
            Some("sqlite:///var/lib/results.db")
        );
        assert_eq!(database_url("db+mysql://db/shop"), None);
        assert_eq!(database_url("redis://db"), None);
    }

    #[test]
    fn reads_the_pickles_celery_5_4_writes() {
        // celery_taskmeta.result of `add(2, 3)` and of a task raising ValueError("nope"),
        // written by a Celery 5.4.0 worker with `db+sqlite://`.
        assert_eq!(unpickle(b"\x80\x05K\x05.").unwrap(), json!(5));
        let failure = b"\x80\x05\x95L\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x08exc_type\x94\x8c\nValueError\x94\x8c\x0bexc_message\x94\x8c\x04nope\x94\x85\x94\x8c\nexc_module\x94\x8c\x08builtins\x94u.";
        assert_eq!(
            unpickle(failure).unwrap(),
            json!({"exc_type": "ValueError", "exc_message": ["nope"], "exc_module": "builtins"})
        );
    }

    #[test]
    fn what_it_writes_reads_back() {
        let value = json!({"total": 12.5, "items": [1, "two", null, true], "nested": {"a": []}});
        assert_eq!(unpickle(&pickle(&value, "t").unwrap()).unwrap(), value);
    }
}
