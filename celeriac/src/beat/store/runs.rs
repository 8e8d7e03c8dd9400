//! What beat did with each slot: the bookkeeping columns of `celeriac_beat_periodic_task` and
//! the bounded `celeriac_beat_run` ring, written in batches of a few statements per hundreds of
//! slots.
//!
//! Writes are monotonic, so that any number of beats may record the same slot, in any order,
//! without double counting: a slot counts (total runs, missed and late counters, a new ring
//! position) only if it is later than the `last_run_at` (or, for a skipped slot, the
//! `anchor_at`) already stored. A leader frozen past its lease that wakes and records a slot
//! its successor already recorded changes nothing but that slot's ring row; a successor that
//! repairs a slot its dead predecessor sent but never recorded counts it once.

use super::{placeholders, ScheduleStore, StoreError};
use crate::db::{DatabaseError, Dialect};
use crate::with_pool;
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::collections::HashMap;

/// How many runs per schedule the `celeriac_beat_run` ring keeps.
pub const RUNS_KEPT: i64 = 20;

/// Slots per statement: far below both databases' limits on bound values (SQLite 32,766,
/// PostgreSQL 65,535) and large enough that 10,000 slots take a few dozen statements.
const CHUNK: usize = 400;

/// How one slot ended, for the `celeriac_beat_run` ring and the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Sent now.
    Sent,
    /// Sent before by another beat (a handover); only bookkeeping was repaired.
    AlreadySent,
    /// Passed and skipped by the catch-up policy.
    Skipped,
}

impl RunOutcome {
    fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Sent => "sent",
            RunOutcome::AlreadySent => "already_sent",
            RunOutcome::Skipped => "skipped",
        }
    }
}

/// A settled slot, written by the scheduler.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The entry.
    pub name: String,
    /// The slot.
    pub slot: DateTime<Utc>,
    /// When the message was in Redis (beat reads the clock after the push returned).
    pub sent_at: DateTime<Utc>,
    /// The task id sent, if sent by this beat.
    pub task_id: Option<String>,
    /// What happened.
    pub outcome: RunOutcome,
    /// Earlier slots given up with this one.
    pub missed: u64,
    /// True when sent later than the lateness threshold.
    pub late: bool,
    /// Disable the entry (a one-off that ran).
    pub disable: bool,
}

/// One row of the `celeriac_beat_run` ring, newest first from [`ScheduleStore::runs`].
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    /// The slot.
    pub slot: DateTime<Utc>,
    /// When beat acted.
    pub sent_at: DateTime<Utc>,
    /// The task id sent.
    pub task_id: Option<String>,
    /// `sent`, `already_sent` or `skipped`.
    pub outcome: String,
    /// Slots given up before it.
    pub missed: u64,
    /// `sent_at - slot`.
    pub lateness_ms: i64,
}

/// `(p1, p2, …), (…)` rows of `width` values for a `WITH v(…) AS (VALUES …)` list, each value
/// cast so PostgreSQL knows its type; `types` gives the cast of each column.
fn values_rows(dialect: Dialect, rows: usize, types: &[&str]) -> String {
    let width = types.len();
    (0..rows)
        .map(|row| {
            let cells: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(column, kind)| {
                    format!(
                        "CAST({} AS {kind})",
                        dialect.placeholder(row * width + column + 1)
                    )
                })
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Splits `runs` into rounds in which each name appears once, keeping each name's order: an
/// `UPDATE … FROM` applies one source row per target row.
fn rounds(runs: &[RunRecord]) -> Vec<Vec<&RunRecord>> {
    let mut rounds: Vec<Vec<&RunRecord>> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for run in runs {
        let round = seen.entry(run.name.as_str()).or_insert(0);
        if rounds.len() <= *round {
            rounds.push(Vec::new());
        }
        rounds[*round].push(run);
        *round += 1;
    }
    rounds
}

impl ScheduleStore {
    /// Writes what the scheduler did, in one transaction: `last_run_at` moves forward to the
    /// slot (not to the send time, so intervals do not drift), counters grow, one-offs disable,
    /// and the run goes into the ring (module docs for why it is monotonic).
    pub async fn record_runs(&self, runs: &[RunRecord]) -> Result<(), StoreError> {
        if runs.is_empty() {
            return Ok(());
        }
        let dialect = self.database.dialect();
        let ring = format!(
            "INSERT INTO celeriac_beat_run (name, slot_index, slot, sent_at, task_id, outcome, \
             missed, lateness_ms) SELECT v.name, t.run_sequence % {RUNS_KEPT}, v.slot, v.sent_at, \
             v.task_id, v.outcome, v.missed, v.sent_at - v.slot \
             FROM v JOIN celeriac_beat_periodic_task t ON t.name = v.name \
             WHERE true ON CONFLICT (name, slot_index) DO UPDATE SET \
             slot = excluded.slot, sent_at = excluded.sent_at, task_id = excluded.task_id, \
             outcome = excluded.outcome, missed = excluded.missed, \
             lateness_ms = excluded.lateness_ms WHERE celeriac_beat_run.slot <= excluded.slot"
        );
        let sent_columns = ["TEXT", "BIGINT", "BIGINT", "BIGINT"];
        let skipped_columns = ["TEXT", "BIGINT", "BIGINT"];
        let ring_columns = ["TEXT", "BIGINT", "BIGINT", "TEXT", "TEXT", "BIGINT"];
        let advanced = |column: &str| format!("({column} IS NULL OR {column} < v.slot)");
        let sent_sql = |rows: usize| {
            let new = advanced("last_run_at");
            format!(
                "WITH v(name, slot, missed, late) AS (VALUES {}) \
                 UPDATE celeriac_beat_periodic_task SET \
                 total_run_count = total_run_count + CASE WHEN {new} THEN 1 ELSE 0 END, \
                 missed_count = missed_count + CASE WHEN {new} THEN v.missed ELSE 0 END, \
                 late_count = late_count + CASE WHEN {new} THEN v.late ELSE 0 END, \
                 run_sequence = run_sequence + CASE WHEN {new} THEN 1 ELSE 0 END, \
                 last_run_at = CASE WHEN {new} THEN v.slot ELSE last_run_at END \
                 FROM v WHERE celeriac_beat_periodic_task.name = v.name",
                values_rows(dialect, rows, &sent_columns)
            )
        };
        let skipped_sql = |rows: usize| {
            let new = advanced("anchor_at");
            format!(
                "WITH v(name, slot, missed) AS (VALUES {}) UPDATE celeriac_beat_periodic_task SET \
                 missed_count = missed_count + CASE WHEN {new} THEN v.missed ELSE 0 END, \
                 run_sequence = run_sequence + CASE WHEN {new} THEN 1 ELSE 0 END, \
                 anchor_at = CASE WHEN {new} THEN v.slot ELSE anchor_at END \
                 FROM v WHERE celeriac_beat_periodic_task.name = v.name",
                values_rows(dialect, rows, &skipped_columns)
            )
        };
        let ring_sql = |rows: usize| {
            format!(
                "WITH v(name, slot, sent_at, task_id, outcome, missed) AS (VALUES {}) {ring}",
                values_rows(dialect, rows, &ring_columns)
            )
        };
        let disable_sql = |rows: usize| {
            format!(
                "UPDATE celeriac_beat_periodic_task SET enabled = 0 WHERE name IN ({})",
                placeholders(dialect, 1, rows)
            )
        };
        let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let rounds = rounds(runs);
        with_pool!(&self.database, |pool| {
            let mut transaction = pool
                .begin()
                .await
                .map_err(DatabaseError::query("begin beat runs"))?;
            for round in &rounds {
                for chunk in round.chunks(CHUNK) {
                    let (skipped, sent): (Vec<&RunRecord>, Vec<&RunRecord>) = chunk
                        .iter()
                        .partition(|run| run.outcome == RunOutcome::Skipped);
                    if !sent.is_empty() {
                        let sql = sent_sql(sent.len());
                        let mut query = sqlx::query(&sql);
                        for run in &sent {
                            query = query
                                .bind(&run.name)
                                .bind(run.slot.timestamp_millis())
                                .bind(count(run.missed))
                                .bind(i64::from(run.late));
                        }
                        query
                            .execute(&mut *transaction)
                            .await
                            .map_err(DatabaseError::query("record beat runs"))?;
                    }
                    if !skipped.is_empty() {
                        let sql = skipped_sql(skipped.len());
                        let mut query = sqlx::query(&sql);
                        for run in &skipped {
                            query = query
                                .bind(&run.name)
                                .bind(run.slot.timestamp_millis())
                                .bind(count(run.missed));
                        }
                        query
                            .execute(&mut *transaction)
                            .await
                            .map_err(DatabaseError::query("record skipped slots"))?;
                    }
                    let sql = ring_sql(chunk.len());
                    let mut query = sqlx::query(&sql);
                    for run in chunk {
                        query = query
                            .bind(&run.name)
                            .bind(run.slot.timestamp_millis())
                            .bind(run.sent_at.timestamp_millis())
                            .bind(&run.task_id)
                            .bind(run.outcome.as_str())
                            .bind(count(run.missed));
                    }
                    query
                        .execute(&mut *transaction)
                        .await
                        .map_err(DatabaseError::query("record beat run ring"))?;
                    let disabled: Vec<&str> = chunk
                        .iter()
                        .filter(|run| run.disable)
                        .map(|run| run.name.as_str())
                        .collect();
                    if !disabled.is_empty() {
                        let sql = disable_sql(disabled.len());
                        let mut query = sqlx::query(&sql);
                        for name in disabled {
                            query = query.bind(name);
                        }
                        query
                            .execute(&mut *transaction)
                            .await
                            .map_err(DatabaseError::query("disable one-offs"))?;
                    }
                }
            }
            transaction
                .commit()
                .await
                .map_err(DatabaseError::query("commit beat runs"))?;
        });
        Ok(())
    }

    /// The entry's recent runs, newest first.
    pub async fn runs(&self, name: &str) -> Result<Vec<StoredRun>, StoreError> {
        let sql = format!(
            "SELECT slot, sent_at, task_id, outcome, missed, lateness_ms FROM celeriac_beat_run \
             WHERE name = {} ORDER BY slot DESC",
            self.database.dialect().placeholder(1)
        );
        let runs = with_pool!(&self.database, |pool| {
            let rows = sqlx::query(&sql)
                .bind(name)
                .fetch_all(pool)
                .await
                .map_err(DatabaseError::query("read beat runs"))?;
            rows.iter()
                .map(|row| -> Result<StoredRun, sqlx::Error> {
                    Ok(StoredRun {
                        slot: super::instant(Some(row.try_get("slot")?)).unwrap_or_default(),
                        sent_at: super::instant(Some(row.try_get("sent_at")?)).unwrap_or_default(),
                        task_id: row.try_get("task_id")?,
                        outcome: row.try_get("outcome")?,
                        missed: row.try_get::<i64, _>("missed")?.max(0) as u64,
                        lateness_ms: row.try_get("lateness_ms")?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(DatabaseError::query("read beat runs"))?
        });
        Ok(runs)
    }

    /// Each entry's lateness on its latest recorded slot, in milliseconds, for `/metrics`
    /// (one query, however many entries).
    pub async fn latest_lateness(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = "SELECT r.name, MAX(r.lateness_ms) FROM celeriac_beat_run r \
                   JOIN (SELECT name, MAX(slot) AS slot FROM celeriac_beat_run GROUP BY name) \
                   latest ON latest.name = r.name AND latest.slot = r.slot GROUP BY r.name";
        let rows: Vec<(String, i64)> = with_pool!(&self.database, |pool| {
            sqlx::query_as(sql)
                .fetch_all(pool)
                .await
                .map_err(DatabaseError::query("read the latest beat runs"))?
        });
        Ok(rows)
    }
}
