//! The history's one write path: load the rows a batch touches, merge in memory, write back
//! what changed, the timeline entries and the per-state counts, all in one transaction.
//!
//! 1. Take the writer's lock: `BEGIN IMMEDIATE` on SQLite, a transaction-scoped advisory lock
//!    (per schema) on PostgreSQL. Two writers (event ingest and a catch-up, or two monitors)
//!    thus never merge from the same stale row.
//! 2. Read the existing rows of the batch's task ids.
//! 3. Let the caller merge (see `record.rs` for the rules).
//! 4. Upsert the changed rows, insert the timeline (duplicates ignored by its primary key),
//!    move the state counts, commit.
//!
//! SQLite binds row by row (no round trips); PostgreSQL sends each table's rows as arrays in
//! one `UNNEST` statement, so a batch costs a handful of round trips whatever its size.

use super::record::TaskRecord;
use super::row::{record_from_row, selected_columns, RowValues, WRITTEN_COLUMNS};
use crate::db::{Database, DatabaseError};
use sqlx::{PgConnection, SqliteConnection};
use std::collections::{BTreeMap, HashMap};

/// How many ids one `IN (…)` list holds on SQLite.
const SQLITE_CHUNK: usize = 500;

/// The advisory lock class of history writers (any constant; the schema makes the key).
pub(crate) const ADVISORY_LOCK_CLASS: i32 = 0x6365_6c68; // "celh"

/// One line of a task's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TimelineRow {
    pub(crate) task_id: String,
    pub(crate) event_type: String,
    pub(crate) occurred_at: i64,
    pub(crate) hostname: Option<String>,
}

/// Runs `$body` (which returns `Result<_, DatabaseError>`) in a transaction holding the
/// writers' lock (module docs, step 1), with `$transaction` bound to its connection, and
/// commits when the body succeeds. The body is compiled once per backend.
macro_rules! write_transaction {
    ($database:expr, |$transaction:ident| $body:expr) => {
        match $database {
            $crate::db::Database::Sqlite(pool) => {
                let mut transaction = pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err($crate::db::DatabaseError::query("begin history write"))?;
                let result = {
                    let $transaction = &mut *transaction;
                    $body
                };
                if result.is_ok() {
                    transaction
                        .commit()
                        .await
                        .map_err($crate::db::DatabaseError::query("commit history write"))?;
                }
                result
            }
            $crate::db::Database::Postgres(pool) => {
                let mut transaction = pool
                    .begin()
                    .await
                    .map_err($crate::db::DatabaseError::query("begin history write"))?;
                sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
                    .bind($crate::history::store::ADVISORY_LOCK_CLASS)
                    .execute(&mut *transaction)
                    .await
                    .map_err($crate::db::DatabaseError::query("lock history writers"))?;
                let result = {
                    let $transaction = &mut *transaction;
                    $body
                };
                if result.is_ok() {
                    transaction
                        .commit()
                        .await
                        .map_err($crate::db::DatabaseError::query("commit history write"))?;
                }
                result
            }
        }
    };
}
pub(crate) use write_transaction;

/// Runs one merge transaction over `task_ids`; `merge` gets the stored records by id and may
/// change or add records. Returns how many rows were written.
pub(crate) async fn merge<F>(
    database: &Database,
    task_ids: &[String],
    merge: F,
    timeline: &[TimelineRow],
) -> Result<usize, DatabaseError>
where
    F: FnOnce(&mut HashMap<String, TaskRecord>),
{
    write_transaction!(database, |transaction| {
        let stored = transaction.load(task_ids).await?;
        let (rows, counts) = changes(stored, merge);
        transaction.write(&rows, timeline, &counts).await?;
        Ok(rows.len())
    })
}

/// The backend-specific halves of a merge.
pub(crate) trait WriteConnection {
    /// The stored records of `task_ids`, by id.
    async fn load(
        &mut self,
        task_ids: &[String],
    ) -> Result<HashMap<String, TaskRecord>, DatabaseError>;

    /// Upserts `rows`, inserts `timeline`, adds `counts` to the per-state totals.
    async fn write(
        &mut self,
        rows: &[RowValues],
        timeline: &[TimelineRow],
        counts: &BTreeMap<&'static str, i64>,
    ) -> Result<(), DatabaseError>;
}

impl WriteConnection for SqliteConnection {
    async fn load(
        &mut self,
        task_ids: &[String],
    ) -> Result<HashMap<String, TaskRecord>, DatabaseError> {
        sqlite_load(self, task_ids).await
    }

    async fn write(
        &mut self,
        rows: &[RowValues],
        timeline: &[TimelineRow],
        counts: &BTreeMap<&'static str, i64>,
    ) -> Result<(), DatabaseError> {
        sqlite_write(self, rows, timeline, counts).await
    }
}

impl WriteConnection for PgConnection {
    async fn load(
        &mut self,
        task_ids: &[String],
    ) -> Result<HashMap<String, TaskRecord>, DatabaseError> {
        postgres_load(self, task_ids).await
    }

    async fn write(
        &mut self,
        rows: &[RowValues],
        timeline: &[TimelineRow],
        counts: &BTreeMap<&'static str, i64>,
    ) -> Result<(), DatabaseError> {
        postgres_write(self, rows, timeline, counts).await
    }
}

/// Applies `merge` and returns the rows that changed and the per-state count deltas.
fn changes<F>(
    stored: HashMap<String, TaskRecord>,
    merge: F,
) -> (Vec<RowValues>, BTreeMap<&'static str, i64>)
where
    F: FnOnce(&mut HashMap<String, TaskRecord>),
{
    let mut merged = stored.clone();
    merge(&mut merged);
    let mut rows = Vec::new();
    let mut counts: BTreeMap<&'static str, i64> = BTreeMap::new();
    for (task_id, record) in &merged {
        let before = stored.get(task_id);
        if before == Some(record) {
            continue;
        }
        if let Some(before) = before {
            *counts.entry(before.state.as_str()).or_default() -= 1;
        }
        *counts.entry(record.state.as_str()).or_default() += 1;
        rows.push(RowValues::from_record(record));
    }
    counts.retain(|_, delta| *delta != 0);
    // A stable order keeps lock and index access patterns predictable.
    rows.sort_by(|left, right| left.task_id.cmp(&right.task_id));
    (rows, counts)
}

fn unique_ids(task_ids: &[String]) -> Vec<&String> {
    let mut ids: Vec<&String> = task_ids.iter().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

async fn sqlite_load(
    connection: &mut SqliteConnection,
    task_ids: &[String],
) -> Result<HashMap<String, TaskRecord>, DatabaseError> {
    let mut stored = HashMap::new();
    for chunk in unique_ids(task_ids).chunks(SQLITE_CHUNK) {
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT {} FROM celeriac_task_history WHERE task_id IN ({placeholders})",
            selected_columns()
        );
        let mut query = sqlx::query(&sql);
        for task_id in chunk {
            query = query.bind(task_id.as_str());
        }
        let rows = query
            .fetch_all(&mut *connection)
            .await
            .map_err(DatabaseError::query("load history rows"))?;
        for row in &rows {
            let record =
                record_from_row(row).map_err(DatabaseError::query("decode history row"))?;
            stored.insert(record.task_id.clone(), record);
        }
    }
    Ok(stored)
}

async fn postgres_load(
    connection: &mut PgConnection,
    task_ids: &[String],
) -> Result<HashMap<String, TaskRecord>, DatabaseError> {
    let ids: Vec<String> = unique_ids(task_ids).into_iter().cloned().collect();
    let sql = format!(
        "SELECT {} FROM celeriac_task_history WHERE task_id = ANY($1)",
        selected_columns()
    );
    let rows = sqlx::query(&sql)
        .bind(ids)
        .fetch_all(&mut *connection)
        .await
        .map_err(DatabaseError::query("load history rows"))?;
    let mut stored = HashMap::new();
    for row in &rows {
        let record = record_from_row(row).map_err(DatabaseError::query("decode history row"))?;
        stored.insert(record.task_id.clone(), record);
    }
    Ok(stored)
}

/// `name = excluded.name, …` for every written column but the key.
fn update_assignments() -> String {
    WRITTEN_COLUMNS[1..]
        .iter()
        .map(|column| format!("{column} = excluded.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

const COUNTS_UPSERT: &str =
    "INSERT INTO celeriac_task_history_counts (state, tasks) VALUES ($1, $2) \
     ON CONFLICT (state) DO UPDATE SET tasks = celeriac_task_history_counts.tasks + excluded.tasks";

async fn sqlite_write(
    connection: &mut SqliteConnection,
    rows: &[RowValues],
    timeline: &[TimelineRow],
    counts: &BTreeMap<&'static str, i64>,
) -> Result<(), DatabaseError> {
    let placeholders: Vec<String> = (1..=WRITTEN_COLUMNS.len())
        .map(|index| format!("?{index}"))
        .collect();
    let upsert = format!(
        "INSERT INTO celeriac_task_history ({}) VALUES ({}) ON CONFLICT (task_id) DO UPDATE SET {}",
        WRITTEN_COLUMNS.join(", "),
        placeholders.join(", "),
        update_assignments()
    );
    for row in rows {
        sqlx::query(&upsert)
            .bind(&row.task_id)
            .bind(&row.name)
            .bind(&row.state)
            .bind(row.state_at)
            .bind(row.seen_at)
            .bind(row.sent_at)
            .bind(row.received_at)
            .bind(row.started_at)
            .bind(row.done_at)
            .bind(&row.worker)
            .bind(&row.queue)
            .bind(&row.args_repr)
            .bind(&row.kwargs_repr)
            .bind(&row.args_json)
            .bind(&row.kwargs_json)
            .bind(&row.result)
            .bind(&row.exception)
            .bind(&row.traceback)
            .bind(row.runtime)
            .bind(row.retries)
            .bind(&row.root_id)
            .bind(&row.parent_id)
            .bind(row.eta)
            .bind(row.expires)
            .bind(&row.retried_from)
            .bind(&row.group_id)
            .bind(&row.chord_body_id)
            .execute(&mut *connection)
            .await
            .map_err(DatabaseError::query("upsert history row"))?;
    }
    for entry in timeline {
        sqlx::query(
            "INSERT INTO celeriac_task_history_events (task_id, event_type, occurred_at, hostname) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )
        .bind(&entry.task_id)
        .bind(&entry.event_type)
        .bind(entry.occurred_at)
        .bind(&entry.hostname)
        .execute(&mut *connection)
        .await
        .map_err(DatabaseError::query("insert timeline"))?;
    }
    for (state, delta) in counts {
        sqlx::query(&COUNTS_UPSERT.replace('$', "?"))
            .bind(*state)
            .bind(*delta)
            .execute(&mut *connection)
            .await
            .map_err(DatabaseError::query("update state counts"))?;
    }
    Ok(())
}

/// Column types for `UNNEST`, in [`WRITTEN_COLUMNS`] order.
const POSTGRES_ARRAY_TYPES: [&str; 27] = [
    "text", "text", "text", "int8", "int8", "int8", "int8", "int8", "int8", "text", "text", "text",
    "text", "text", "text", "text", "text", "text", "float8", "int8", "text", "text", "int8",
    "int8", "text", "text", "text",
];

async fn postgres_write(
    connection: &mut PgConnection,
    rows: &[RowValues],
    timeline: &[TimelineRow],
    counts: &BTreeMap<&'static str, i64>,
) -> Result<(), DatabaseError> {
    if !rows.is_empty() {
        let arrays: Vec<String> = POSTGRES_ARRAY_TYPES
            .iter()
            .enumerate()
            .map(|(index, kind)| format!("${}::{kind}[]", index + 1))
            .collect();
        let upsert = format!(
            "INSERT INTO celeriac_task_history ({}) SELECT * FROM UNNEST({}) \
             ON CONFLICT (task_id) DO UPDATE SET {}",
            WRITTEN_COLUMNS.join(", "),
            arrays.join(", "),
            update_assignments()
        );
        let column = |get: fn(&RowValues) -> Option<String>| -> Vec<Option<String>> {
            rows.iter().map(get).collect()
        };
        let number = |get: fn(&RowValues) -> Option<i64>| -> Vec<Option<i64>> {
            rows.iter().map(get).collect()
        };
        sqlx::query(&upsert)
            .bind(
                rows.iter()
                    .map(|row| row.task_id.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(column(|row| row.name.clone()))
            .bind(rows.iter().map(|row| row.state.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|row| row.state_at).collect::<Vec<_>>())
            .bind(rows.iter().map(|row| row.seen_at).collect::<Vec<_>>())
            .bind(number(|row| row.sent_at))
            .bind(number(|row| row.received_at))
            .bind(number(|row| row.started_at))
            .bind(number(|row| row.done_at))
            .bind(column(|row| row.worker.clone()))
            .bind(column(|row| row.queue.clone()))
            .bind(column(|row| row.args_repr.clone()))
            .bind(column(|row| row.kwargs_repr.clone()))
            .bind(column(|row| row.args_json.clone()))
            .bind(column(|row| row.kwargs_json.clone()))
            .bind(column(|row| row.result.clone()))
            .bind(column(|row| row.exception.clone()))
            .bind(column(|row| row.traceback.clone()))
            .bind(rows.iter().map(|row| row.runtime).collect::<Vec<_>>())
            .bind(number(|row| row.retries))
            .bind(column(|row| row.root_id.clone()))
            .bind(column(|row| row.parent_id.clone()))
            .bind(number(|row| row.eta))
            .bind(number(|row| row.expires))
            .bind(column(|row| row.retried_from.clone()))
            .bind(column(|row| row.group_id.clone()))
            .bind(column(|row| row.chord_body_id.clone()))
            .execute(&mut *connection)
            .await
            .map_err(DatabaseError::query("upsert history rows"))?;
    }
    if !timeline.is_empty() {
        sqlx::query(
            "INSERT INTO celeriac_task_history_events (task_id, event_type, occurred_at, hostname) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(
            timeline
                .iter()
                .map(|entry| entry.task_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            timeline
                .iter()
                .map(|entry| entry.event_type.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            timeline
                .iter()
                .map(|entry| entry.occurred_at)
                .collect::<Vec<_>>(),
        )
        .bind(
            timeline
                .iter()
                .map(|entry| entry.hostname.clone())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *connection)
        .await
        .map_err(DatabaseError::query("insert timeline"))?;
    }
    for (state, delta) in counts {
        sqlx::query(COUNTS_UPSERT)
            .bind(*state)
            .bind(*delta)
            .execute(&mut *connection)
            .await
            .map_err(DatabaseError::query("update state counts"))?;
    }
    Ok(())
}
