//! How a [`TaskRecord`] is laid out in the `celeriac_task_history` table, for both backends.
//!
//! Times are stored as microseconds since the Unix epoch (`BIGINT`), arguments as JSON text,
//! the state as Celery's spelling. Decoding is generic over the backend's row type, so the
//! two backends cannot drift apart.

use super::record::TaskRecord;
use crate::types::TaskState;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use sqlx::{ColumnIndex, Decode, Row, Type};

/// The columns written by an upsert, in bind order (everything but `id`).
pub(crate) const WRITTEN_COLUMNS: [&str; 27] = [
    "task_id",
    "name",
    "state",
    "state_at",
    "seen_at",
    "sent_at",
    "received_at",
    "started_at",
    "done_at",
    "worker",
    "queue",
    "args_repr",
    "kwargs_repr",
    "args_json",
    "kwargs_json",
    "result",
    "exception",
    "traceback",
    "runtime",
    "retries",
    "root_id",
    "parent_id",
    "eta",
    "expires",
    "retried_from",
    "group_id",
    "chord_body_id",
];

/// The columns a `SELECT` of whole records reads.
pub(crate) fn selected_columns() -> String {
    format!("id, {}", WRITTEN_COLUMNS.join(", "))
}

/// A record's column values, ready to bind.
#[derive(Debug, Clone)]
pub(crate) struct RowValues {
    pub(crate) task_id: String,
    pub(crate) name: Option<String>,
    pub(crate) state: String,
    pub(crate) state_at: i64,
    pub(crate) seen_at: i64,
    pub(crate) sent_at: Option<i64>,
    pub(crate) received_at: Option<i64>,
    pub(crate) started_at: Option<i64>,
    pub(crate) done_at: Option<i64>,
    pub(crate) worker: Option<String>,
    pub(crate) queue: Option<String>,
    pub(crate) args_repr: Option<String>,
    pub(crate) kwargs_repr: Option<String>,
    pub(crate) args_json: Option<String>,
    pub(crate) kwargs_json: Option<String>,
    pub(crate) result: Option<String>,
    pub(crate) exception: Option<String>,
    pub(crate) traceback: Option<String>,
    pub(crate) runtime: Option<f64>,
    pub(crate) retries: Option<i64>,
    pub(crate) root_id: Option<String>,
    pub(crate) parent_id: Option<String>,
    pub(crate) eta: Option<i64>,
    pub(crate) expires: Option<i64>,
    pub(crate) retried_from: Option<String>,
    pub(crate) group_id: Option<String>,
    pub(crate) chord_body_id: Option<String>,
}

impl RowValues {
    pub(crate) fn from_record(record: &TaskRecord) -> RowValues {
        RowValues {
            task_id: record.task_id.clone(),
            name: record.name.clone(),
            state: record.state.as_str().to_owned(),
            state_at: micros(record.state_at),
            seen_at: micros(record.seen_at),
            sent_at: record.sent_at.map(micros),
            received_at: record.received_at.map(micros),
            started_at: record.started_at.map(micros),
            done_at: record.done_at.map(micros),
            worker: record.worker.clone(),
            queue: record.queue.clone(),
            args_repr: record.args_repr.clone(),
            kwargs_repr: record.kwargs_repr.clone(),
            args_json: record
                .args
                .as_ref()
                .map(|args| Value::Array(args.clone()).to_string()),
            kwargs_json: record
                .kwargs
                .as_ref()
                .map(|kwargs| Value::Object(kwargs.clone()).to_string()),
            result: record.result.clone(),
            exception: record.exception.clone(),
            traceback: record.traceback.clone(),
            runtime: record.runtime,
            retries: record.retries.map(i64::from),
            root_id: record.root_id.clone(),
            parent_id: record.parent_id.clone(),
            eta: record.eta.map(micros),
            expires: record.expires.map(micros),
            retried_from: record.retried_from.clone(),
            group_id: record.group_id.clone(),
            chord_body_id: record.chord_body_id.clone(),
        }
    }
}

/// A time as stored.
pub(crate) fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

/// A stored time; out-of-range values (never written by us) become the epoch.
pub(crate) fn from_micros(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// Celery's spelling of a state, back to the enum.
pub(crate) fn parse_state(text: &str) -> Option<TaskState> {
    serde_json::from_value(Value::String(text.to_owned())).ok()
}

/// Decodes a whole record from a row selected with [`selected_columns`].
pub(crate) fn record_from_row<'r, R>(row: &'r R) -> Result<TaskRecord, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let time = |column: &'static str| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(column)?.map(from_micros))
    };
    let text = |column: &'static str| row.try_get::<Option<String>, _>(column);
    let state_text: String = row.try_get("state")?;
    let state = parse_state(&state_text).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: "state".to_owned(),
        source: format!("unknown task state {state_text:?}").into(),
    })?;
    let args = text("args_json")?.and_then(|json| serde_json::from_str::<Vec<Value>>(&json).ok());
    let kwargs = text("kwargs_json")?
        .and_then(|json| serde_json::from_str::<Map<String, Value>>(&json).ok());
    Ok(TaskRecord {
        task_id: row.try_get("task_id")?,
        name: text("name")?,
        state,
        state_at: from_micros(row.try_get("state_at")?),
        seen_at: from_micros(row.try_get("seen_at")?),
        sent_at: time("sent_at")?,
        received_at: time("received_at")?,
        started_at: time("started_at")?,
        done_at: time("done_at")?,
        worker: text("worker")?,
        queue: text("queue")?,
        args_repr: text("args_repr")?,
        kwargs_repr: text("kwargs_repr")?,
        args,
        kwargs,
        result: text("result")?,
        exception: text("exception")?,
        traceback: text("traceback")?,
        runtime: row.try_get("runtime")?,
        retries: row
            .try_get::<Option<i64>, _>("retries")?
            .and_then(|retries| u32::try_from(retries).ok()),
        root_id: text("root_id")?,
        parent_id: text("parent_id")?,
        eta: time("eta")?,
        expires: time("expires")?,
        retried_from: text("retried_from")?,
        group_id: text("group_id")?,
        chord_body_id: text("chord_body_id")?,
        row_id: Some(row.try_get("id")?),
    })
}
