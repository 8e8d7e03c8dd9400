//! Reading the history: filtered lists (newest first, keyset pages), counts, one task's detail.
//!
//! A list is ordered newest first by the time its range filters on (`seen_at` when there is no
//! range), then `id`; every filter column has an index
//! ending in those two columns (see the migrations), so the database reads a page in order and
//! stops at the limit instead of sorting the matches. Pages are keyset pages: the [`Cursor`]
//! is the last row's sort key, so page 1000 costs what page 1 costs and rows arriving meanwhile
//! do not shift the pages.
//!
//! Counts: the per-state totals are kept in `celeriac_task_history_counts` by the writer (exact,
//! one small read); any other filter is counted up to a cap ("10,000+"), which bounds the cost.
//!
//! Argument search is a case-insensitive substring match over the argument reprs, served by a
//! trigram index: FTS5's `trigram` tokenizer on SQLite, `pg_trgm` on PostgreSQL (whose
//! planner weighs the index against walking the newest rows). SQLite's index needs three
//! characters (a shorter term is a scan), and a SQLite list tries cheaper walks first (see
//! `sqlite_search_list`). SQLite's `LIKE` folds only ASCII case, FTS5 all of Unicode.

use super::event::TaskEventKind;
use super::filter_sql::{conditions, indexable, search_tokens, ArgsSearch, Sql};
use super::record::TaskRecord;
use super::row::{from_micros, micros, parse_state, record_from_row, selected_columns};
use super::{HistoryError, TaskHistory};
use crate::db::{DatabaseError, Dialect};
use crate::types::TaskState;
use crate::with_pool;
use chrono::{DateTime, Utc};
use sqlx::Row;

/// Which of a task's times a time range applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimeField {
    /// The earliest time the task was seen (the sort key).
    #[default]
    Seen,
    /// When a worker received it.
    Received,
    /// When a worker started it.
    Started,
    /// When it finished.
    Done,
}

impl TimeField {
    pub(crate) fn column(self) -> &'static str {
        match self {
            TimeField::Seen => "seen_at",
            TimeField::Received => "received_at",
            TimeField::Started => "started_at",
            TimeField::Done => "done_at",
        }
    }
}

/// Which tasks to list or count; empty fields match everything, set fields must all match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    /// Any of these states.
    pub states: Vec<TaskState>,
    /// Exactly this task name.
    pub name: Option<String>,
    /// Exactly this worker node name.
    pub worker: Option<String>,
    /// Exactly this queue.
    pub queue: Option<String>,
    /// The time `since` and `until` apply to; with a range, the list is sorted by it too.
    pub time_field: TimeField,
    /// At or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Before this time.
    pub until: Option<DateTime<Utc>>,
    /// Task ids starting with this text.
    pub task_id_prefix: Option<String>,
    /// Argument reprs containing this text (case-insensitive).
    pub args_contains: Option<String>,
}

impl TaskFilter {
    /// The time the list is sorted by: the one a range filters on, else when first seen. So
    /// "done in the last hour" lists the most recently done first, and its index both
    /// narrows and orders the rows.
    pub fn sort_field(&self) -> TimeField {
        if self.since.is_some() || self.until.is_some() {
            self.time_field
        } else {
            TimeField::Seen
        }
    }

    /// Whether only `states` is set, so the kept per-state counts answer exactly.
    fn is_states_only(&self) -> bool {
        let only_states = TaskFilter {
            states: Vec::new(),
            ..self.clone()
        };
        only_states == TaskFilter::default()
    }
}

/// Where the next page starts: the last row's sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The sort column's value (microseconds).
    pub(crate) key: i64,
    pub(crate) row_id: i64,
}

impl Cursor {
    /// The cursor as URL-safe text.
    pub fn to_token(self) -> String {
        format!("{}.{}", self.key, self.row_id)
    }

    /// Reads [`Cursor::to_token`] output.
    pub fn from_token(token: &str) -> Result<Cursor, HistoryError> {
        let invalid = || HistoryError::InvalidCursor {
            cursor: token.to_owned(),
        };
        let (key, row_id) = token.split_once('.').ok_or_else(invalid)?;
        Ok(Cursor {
            key: key.parse().map_err(|_| invalid())?,
            row_id: row_id.parse().map_err(|_| invalid())?,
        })
    }
}

/// One page of tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Newest first.
    pub tasks: Vec<TaskRecord>,
    /// The next page's start, when there is one.
    pub next: Option<Cursor>,
}

/// A count that may have stopped at its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Tasks counted.
    pub tasks: u64,
    /// True when counting stopped at the cap: there are at least `tasks`.
    pub capped: bool,
}

/// One line of a task's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    /// The event.
    pub kind: TaskEventKind,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who sent it.
    pub hostname: Option<String>,
}

/// Everything the history knows about one task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDetail {
    /// The task's row.
    pub task: TaskRecord,
    /// Its events, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// Tasks that re-ran this one ([`super::retry_task`]), oldest first.
    pub retried_as: Vec<String>,
    /// Tasks this one sent (callbacks, the next chain step, errbacks), by `parent_id`.
    pub children: Vec<WorkflowTask>,
    /// The members of its group or chord header (itself included), by `group_id`.
    pub group: Vec<WorkflowTask>,
    /// The body of its chord, as far as the history knows it (at least its id).
    pub chord_body: Option<WorkflowTask>,
}

/// Another task of a task's workflow, as its page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowTask {
    /// The task.
    pub task_id: String,
    /// Its name, once known.
    pub name: Option<String>,
    /// Its state.
    pub state: TaskState,
}

/// How many tasks of a workflow a task page lists at most.
const WORKFLOW_LIMIT: i64 = 200;

/// Parents per `children_of` query: far below SQLite's and PostgreSQL's bound-parameter limits.
const CHILDREN_CHUNK: usize = 500;

/// A part of a search term in fewer rows than this is looked up at once, without counting the
/// other parts.
const FEW_ENOUGH: i64 = 100;

/// Runs `$sql` with its params bound and collects `$decode(&row)` for each row.
macro_rules! fetch_rows {
    ($history:expr, $sql:expr, $operation:literal, $decode:expr) => {
        with_pool!(&$history.database, |pool| {
            let rows = $crate::history::filter_sql::bound_query!($sql)
                .fetch_all(pool)
                .await
                .map_err(DatabaseError::query($operation))?;
            rows.iter()
                .map($decode)
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(DatabaseError::query($operation))?
        })
    };
}
pub(super) use fetch_rows;

impl TaskHistory {
    /// One page of the tasks `filter` matches, newest first: at most `limit` (1..=1000) from
    /// `cursor` (None: the newest).
    pub async fn list(
        &self,
        filter: &TaskFilter,
        cursor: Option<Cursor>,
        limit: u32,
    ) -> Result<Page, HistoryError> {
        let limit = limit.clamp(1, 1000);
        let fetch = i64::from(limit) + 1;
        let dialect = self.database.dialect();
        let sqlite_search = filter
            .args_contains
            .as_deref()
            .filter(|term| dialect == Dialect::Sqlite && indexable(dialect, term));
        let sort = filter.sort_field();
        let order = sort.column();
        let mut tasks = match sqlite_search {
            Some(_) => self.sqlite_search_list(filter, cursor, fetch).await?,
            None => {
                let mut sql = Sql::new(dialect);
                let conditions = conditions(&mut sql, filter, cursor, ArgsSearch::Indexed(None));
                let fetch = sql.integer(fetch);
                sql.text = format!(
                    "SELECT {} FROM celeriac_task_history WHERE {conditions} \
                     ORDER BY {order} DESC, id DESC LIMIT {fetch}",
                    selected_columns()
                );
                fetch_rows!(self, sql, "list tasks", record_from_row)
            }
        };
        let next = if tasks.len() > limit as usize {
            tasks.truncate(limit as usize);
            tasks.last().and_then(|last| {
                last.row_id.map(|row_id| Cursor {
                    key: micros(last.time_of(sort).unwrap_or(last.seen_at)),
                    row_id,
                })
            })
        } else {
            None
        };
        Ok(Page { tasks, next })
    }

    /// A SQLite list with an argument search. An FTS5 phrase costs in proportion to its most
    /// common trigrams and yields every match before any can be sorted, while a `LIKE` walk
    /// of the candidates in index order stops as soon as a page is full; so:
    ///
    /// 1. Count, up to a cap, the FTS rows of each part of the term (`narrowest_token`). If
    ///    one part is uncommon, look that part up and check the whole term with `LIKE`.
    /// 2. Every part is common: walk the newest `walk_window` candidates (the rows
    ///    the other conditions select). Common matches fill the page at once.
    /// 3. Only a rare combination of common parts is left to FTS5's whole phrase.
    async fn sqlite_search_list(
        &self,
        filter: &TaskFilter,
        cursor: Option<Cursor>,
        fetch: i64,
    ) -> Result<Vec<TaskRecord>, HistoryError> {
        let token = self.narrowest_token(filter).await?;
        if token.is_none() {
            let window = i64::from(self.search_tuning.walk_window.max(1));
            if let Some(found) = self.scan_window(filter, cursor, fetch, window).await? {
                return Ok(found);
            }
        }
        let narrower =
            token.filter(|token| Some(token.as_str()) != filter.args_contains.as_deref());
        let order = filter.sort_field().column();
        let mut sql = Sql::new(Dialect::Sqlite);
        let conditions = conditions(&mut sql, filter, cursor, ArgsSearch::Indexed(narrower));
        let fetch = sql.integer(fetch);
        sql.text = format!(
            "SELECT {} FROM celeriac_task_history WHERE {conditions} \
             ORDER BY {order} DESC, id DESC LIMIT {fetch}",
            selected_columns()
        );
        Ok(fetch_rows!(self, sql, "search tasks", record_from_row))
    }

    /// Walks the newest `window` candidates of `filter` with `LIKE`: the page, if it filled
    /// or every candidate was seen; `None` when the answer may lie beyond the window.
    async fn scan_window(
        &self,
        filter: &TaskFilter,
        cursor: Option<Cursor>,
        fetch: i64,
        window: i64,
    ) -> Result<Option<Vec<TaskRecord>>, HistoryError> {
        let dialect = Dialect::Sqlite;
        let order = filter.sort_field().column();
        let without_search = TaskFilter {
            args_contains: None,
            ..filter.clone()
        };
        // The sort key of the window's last candidate, if there are that many.
        let mut sql = Sql::new(dialect);
        let candidates = conditions(&mut sql, &without_search, cursor, ArgsSearch::Scanned);
        let offset = sql.integer(window - 1);
        sql.text = format!(
            "SELECT {order} AS sort_key, id FROM celeriac_task_history WHERE {candidates} \
             ORDER BY {order} DESC, id DESC LIMIT 1 OFFSET {offset}"
        );
        let window_end: Vec<(i64, i64)> = fetch_rows!(self, sql, "search tasks", |row| Ok((
            row.try_get::<i64, _>("sort_key")?,
            row.try_get::<i64, _>("id")?
        )));
        let mut sql = Sql::new(dialect);
        let scanned = conditions(&mut sql, filter, cursor, ArgsSearch::Scanned);
        let in_window = match window_end.first() {
            Some((key, row_id)) => {
                let key = sql.integer(*key);
                let row_id = sql.integer(*row_id);
                format!("({order}, id) >= ({key}, {row_id})")
            }
            None => "1 = 1".to_owned(),
        };
        let fetch_placeholder = sql.integer(fetch);
        sql.text = format!(
            "SELECT {} FROM celeriac_task_history WHERE {scanned} AND {in_window} \
             ORDER BY {order} DESC, id DESC LIMIT {fetch_placeholder}",
            selected_columns()
        );
        let found: Vec<TaskRecord> = fetch_rows!(self, sql, "search tasks", record_from_row);
        let complete = found.len() as i64 == fetch || window_end.is_empty();
        Ok(complete.then_some(found))
    }

    /// SQLite: the part of the search term the fewest rows contain (possibly the whole term),
    /// if fewer than `rare_below` do: each token of the term is counted in the FTS table up to
    /// that cap, which costs a millisecond or two either way.
    async fn narrowest_token(&self, filter: &TaskFilter) -> Result<Option<String>, HistoryError> {
        let Some(term) = filter.args_contains.as_deref() else {
            return Ok(None);
        };
        let rare_below = i64::from(self.search_tuning.rare_below);
        let tokens = search_tokens(term);
        let mut narrowest: Option<(i64, String)> = None;
        for token in tokens.into_iter().take(4) {
            let mut sql = Sql::new(Dialect::Sqlite);
            let phrase = sql.text(format!("\"{}\"", token.replace('"', "\"\"")));
            let cap = sql.integer(rare_below);
            sql.text = format!(
                "SELECT count(*) AS tasks FROM (SELECT rowid FROM celeriac_task_history_search \
                 WHERE celeriac_task_history_search MATCH {phrase} LIMIT {cap}) AS capped"
            );
            let counted: Vec<i64> = fetch_rows!(self, sql, "search tasks", |row| row
                .try_get::<i64, _>("tasks"));
            let rows = counted.first().copied().unwrap_or(0);
            if narrowest.as_ref().is_none_or(|(fewest, _)| rows < *fewest) {
                narrowest = Some((rows, token));
            }
            if rows < FEW_ENOUGH {
                break;
            }
        }
        Ok(narrowest
            .filter(|(rows, _)| *rows < rare_below)
            .map(|(_, token)| token))
    }

    /// How many tasks `filter` matches, counting at most `cap` (exact and cheap when the
    /// filter is only states).
    pub async fn count(&self, filter: &TaskFilter, cap: u64) -> Result<Count, HistoryError> {
        if filter.is_states_only() {
            let totals = self.state_counts().await?;
            let tasks = totals
                .iter()
                .filter(|(state, _)| filter.states.is_empty() || filter.states.contains(state))
                .map(|(_, tasks)| *tasks)
                .sum();
            return Ok(Count {
                tasks,
                capped: false,
            });
        }
        let dialect = self.database.dialect();
        let mut sql = Sql::new(dialect);
        // On SQLite an argument search streams the FTS matches into the join, so the count
        // stops at the cap instead of collecting every match first.
        let joined = filter
            .args_contains
            .as_deref()
            .is_some_and(|term| dialect == Dialect::Sqlite && indexable(dialect, term));
        let (from, args_search) = if joined {
            (
                "celeriac_task_history_search JOIN celeriac_task_history \
                 ON celeriac_task_history.id = celeriac_task_history_search.rowid",
                ArgsSearch::Joined(self.narrowest_token(filter).await?),
            )
        } else {
            ("celeriac_task_history", ArgsSearch::Indexed(None))
        };
        let conditions = conditions(&mut sql, filter, None, args_search);
        let fetch = sql.integer(i64::try_from(cap).unwrap_or(i64::MAX - 1) + 1);
        sql.text = format!(
            "SELECT count(*) AS tasks FROM \
             (SELECT 1 FROM {from} WHERE {conditions} LIMIT {fetch}) AS capped"
        );
        let counted: Vec<i64> = fetch_rows!(self, sql, "count tasks", |row| row
            .try_get::<i64, _>("tasks"));
        let counted = counted.first().copied().unwrap_or(0).max(0) as u64;
        Ok(Count {
            tasks: counted.min(cap),
            capped: counted > cap,
        })
    }

    /// Tasks per state over the whole history, from the kept totals.
    pub async fn state_counts(&self) -> Result<Vec<(TaskState, u64)>, HistoryError> {
        let sql = Sql {
            text: "SELECT state, tasks FROM celeriac_task_history_counts \
                   WHERE tasks > 0 ORDER BY state"
                .to_owned(),
            ..Sql::new(self.database.dialect())
        };
        let rows: Vec<(String, i64)> = fetch_rows!(self, sql, "read state counts", |row| Ok((
            row.try_get::<String, _>("state")?,
            row.try_get::<i64, _>("tasks")?
        )));
        Ok(rows
            .into_iter()
            .filter_map(|(state, tasks)| Some((parse_state(&state)?, tasks.max(0) as u64)))
            .collect())
    }

    /// One task's row, timeline and re-runs; `None` if the history does not know it.
    pub async fn task(&self, task_id: &str) -> Result<Option<TaskDetail>, HistoryError> {
        let dialect = self.database.dialect();
        let mut sql = Sql::new(dialect);
        let placeholder = sql.text(task_id);
        sql.text = format!(
            "SELECT {} FROM celeriac_task_history WHERE task_id = {placeholder}",
            selected_columns()
        );
        let found: Vec<TaskRecord> = fetch_rows!(self, sql, "read task", record_from_row);
        let Some(task) = found.into_iter().next() else {
            return Ok(None);
        };
        let mut sql = Sql::new(dialect);
        let placeholder = sql.text(task_id);
        sql.text = format!(
            "SELECT event_type, occurred_at, hostname FROM celeriac_task_history_events \
             WHERE task_id = {placeholder} ORDER BY occurred_at, event_type"
        );
        let events: Vec<(String, i64, Option<String>)> =
            fetch_rows!(self, sql, "read timeline", |row| Ok((
                row.try_get::<String, _>("event_type")?,
                row.try_get::<i64, _>("occurred_at")?,
                row.try_get::<Option<String>, _>("hostname")?
            )));
        let timeline = events
            .into_iter()
            .filter_map(|(event_type, occurred_at, hostname)| {
                Some(TimelineEntry {
                    kind: TaskEventKind::from_type(&event_type)?,
                    at: from_micros(occurred_at),
                    hostname,
                })
            })
            .collect();
        let mut sql = Sql::new(dialect);
        let placeholder = sql.text(task_id);
        sql.text = format!(
            "SELECT task_id FROM celeriac_task_history WHERE retried_from = {placeholder} \
             ORDER BY seen_at, id"
        );
        let retried_as: Vec<String> = fetch_rows!(self, sql, "read re-runs", |row| row
            .try_get::<String, _>("task_id"));
        let children = self.workflow("parent_id", task_id).await?;
        let group = match &task.group_id {
            Some(group_id) => self.workflow("group_id", group_id).await?,
            None => Vec::new(),
        };
        let chord_body = match &task.chord_body_id {
            Some(body_id) => Some(
                self.workflow("task_id", body_id)
                    .await?
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| WorkflowTask {
                        task_id: body_id.clone(),
                        name: None,
                        state: TaskState::Pending,
                    }),
            ),
            None => None,
        };
        Ok(Some(TaskDetail {
            task,
            timeline,
            retried_as,
            children,
            group,
            chord_body,
        }))
    }

    /// The ids of the tasks each of `parent_ids` sent, oldest first per parent: Flower's
    /// `children` of a task list, read in one indexed query per few hundred parents so a
    /// 10,000-task list costs tens of queries, not one per task.
    pub async fn children_of(
        &self,
        parent_ids: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<String>>, HistoryError> {
        let mut children: std::collections::HashMap<String, Vec<String>> =
            std::collections::HashMap::new();
        for chunk in parent_ids.chunks(CHILDREN_CHUNK) {
            let mut sql = Sql::new(self.database.dialect());
            let placeholders: Vec<String> = chunk.iter().map(|id| sql.text(id.as_str())).collect();
            sql.text = format!(
                "SELECT task_id, parent_id FROM celeriac_task_history \
                 WHERE parent_id IN ({}) ORDER BY seen_at, id",
                placeholders.join(", ")
            );
            let rows: Vec<(String, String)> = fetch_rows!(self, sql, "read children", |row| Ok((
                row.try_get::<String, _>("task_id")?,
                row.try_get::<String, _>("parent_id")?
            )));
            for (task_id, parent_id) in rows {
                children.entry(parent_id).or_default().push(task_id);
            }
        }
        Ok(children)
    }

    /// The tasks whose `column` (`parent_id`, `group_id` or `task_id`) is `value`, oldest first.
    async fn workflow(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Vec<WorkflowTask>, HistoryError> {
        let mut sql = Sql::new(self.database.dialect());
        let placeholder = sql.text(value);
        sql.text = format!(
            "SELECT task_id, name, state FROM celeriac_task_history WHERE {column} = {placeholder} \
             ORDER BY seen_at, id LIMIT {WORKFLOW_LIMIT}"
        );
        let rows: Vec<(String, Option<String>, String)> =
            fetch_rows!(self, sql, "read workflow", |row| Ok((
                row.try_get::<String, _>("task_id")?,
                row.try_get::<Option<String>, _>("name")?,
                row.try_get::<String, _>("state")?
            )));
        Ok(rows
            .into_iter()
            .filter_map(|(task_id, name, state)| {
                Some(WorkflowTask {
                    task_id,
                    name,
                    state: parse_state(&state)?,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_as_text() {
        let cursor = Cursor {
            key: 1_795_487_562_724_850,
            row_id: 42,
        };
        assert_eq!(Cursor::from_token(&cursor.to_token()).unwrap(), cursor);
        assert!(Cursor::from_token("nope").is_err());
    }

    #[test]
    fn only_states_can_use_the_kept_counts() {
        let states = TaskFilter {
            states: vec![TaskState::Success],
            ..TaskFilter::default()
        };
        assert!(states.is_states_only());
        let named = TaskFilter {
            name: Some("demo.add".into()),
            ..states
        };
        assert!(!named.is_states_only());
    }
}
