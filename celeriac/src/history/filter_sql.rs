//! A [`TaskFilter`] as SQL: the WHERE conditions and their bound values, with the placeholders
//! and the argument search spelled for the backend.
//!
//! Argument search has three forms ([`ArgsSearch`]): the trigram index (SQLite's FTS5 table
//! or PostgreSQL's `pg_trgm` index on the same expression the query uses), a plain `LIKE`
//! scan (SQLite terms shorter than the index's three characters, and the first, bounded phase
//! of a SQLite list; see `query.rs`), and a join that streams the FTS matches (SQLite counts).

use super::query::{Cursor, TaskFilter, TimeField};
use super::row::micros;
use crate::db::Dialect;

/// `sqlx::query($sql.text)` with `$sql.params` bound, for whichever pool `with_pool!` gives
/// (the query's type differs per backend, so this is a macro, expanded in each arm).
macro_rules! bound_query {
    ($sql:expr) => {{
        let mut query = sqlx::query(&$sql.text);
        for param in &$sql.params {
            query = match param {
                $crate::history::filter_sql::Param::Integer(value) => query.bind(*value),
                $crate::history::filter_sql::Param::Text(value) => query.bind(value.as_str()),
            };
        }
        query
    }};
}
pub(crate) use bound_query;

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Integer(i64),
    Text(String),
}

/// SQL text with its bound values, placeholders spelled for the dialect.
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) dialect: Dialect,
    pub(crate) text: String,
    pub(crate) params: Vec<Param>,
}

impl Sql {
    pub(crate) fn new(dialect: Dialect) -> Sql {
        Sql {
            dialect,
            text: String::new(),
            params: Vec::new(),
        }
    }

    /// Adds a bound value; returns its placeholder.
    fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        self.dialect.placeholder(self.params.len())
    }

    pub(crate) fn text(&mut self, value: impl Into<String>) -> String {
        self.bind(Param::Text(value.into()))
    }

    pub(crate) fn integer(&mut self, value: i64) -> String {
        self.bind(Param::Integer(value))
    }
}

/// How the argument search is written (module docs).
///
/// On SQLite, `Indexed` and `Joined` take an optional narrower token: then the FTS table is
/// asked for that token (a part of the term that few rows contain) and `LIKE` checks the whole
/// term on what it returns. An FTS5 phrase costs in proportion to its most common trigrams,
/// so `'amount': 123.5` is much cheaper as `123.5` plus a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArgsSearch {
    /// Through the trigram index (falls back to a scan for short terms on SQLite).
    Indexed(Option<String>),
    /// A `LIKE` scan of the rows the other conditions select.
    Scanned,
    /// SQLite: `celeriac_task_history_search MATCH …`, for a query that joins the FTS table.
    Joined(Option<String>),
}

/// PostgreSQL: the longest run of four or more digits in a longer term (an order number, a
/// customer id). A `pg_trgm` lookup costs in proportion to the term's most common trigrams,
/// and `'customer_id': 4711` is mostly common ones; its digits are rare, so the index is
/// asked for those alone (SQLite counts the parts instead, see `query.rs`).
pub(crate) fn distinctive_digits(term: &str) -> Option<&str> {
    term.split(|character: char| !character.is_ascii_digit())
        .filter(|digits| digits.len() >= 4 && digits.len() < term.len())
        .max_by_key(|digits| digits.len())
}

/// The parts of a search term that an FTS query can look up on their own: runs of characters
/// between blanks, quotes, brackets and separators, three characters or longer, longest first.
pub(crate) fn search_tokens(term: &str) -> Vec<String> {
    let mut tokens: Vec<String> = term
        .split(|character: char| character.is_whitespace() || "'\"()[]{},:;=".contains(character))
        .filter(|token| token.chars().count() >= TRIGRAM)
        .map(str::to_owned)
        .collect();
    tokens.sort_by_key(|token| std::cmp::Reverse(token.chars().count()));
    tokens.dedup();
    tokens
}

/// The SQLite FTS5 trigram index serves terms of at least this many characters.
const TRIGRAM: usize = 3;

/// Whether an argument search on `dialect` can use the trigram index.
pub(crate) fn indexable(dialect: Dialect, term: &str) -> bool {
    dialect == Dialect::Postgres || term.chars().count() >= TRIGRAM
}

/// The WHERE conditions of `filter` (and the cursor), joined with AND; `1 = 1` when none.
pub(crate) fn conditions(
    sql: &mut Sql,
    filter: &TaskFilter,
    cursor: Option<Cursor>,
    args_search: ArgsSearch,
) -> String {
    let mut conditions = Vec::new();
    // Sorted by a phase time, the list is best read through that time's index, which both
    // bounds and orders it; SQLite would rather take an equality index and sort everything
    // it selects (a second for `state = SUCCESS`), so `+` keeps the equalities off indexes.
    let unindexed = if sql.dialect == Dialect::Sqlite && filter.sort_field() != TimeField::Seen {
        "+"
    } else {
        ""
    };
    if !filter.states.is_empty() {
        let placeholders: Vec<String> = filter
            .states
            .iter()
            .map(|state| sql.text(state.as_str()))
            .collect();
        conditions.push(format!("{unindexed}state IN ({})", placeholders.join(", ")));
    }
    for (column, value) in [
        ("name", &filter.name),
        ("worker", &filter.worker),
        ("queue", &filter.queue),
    ] {
        if let Some(value) = value {
            conditions.push(format!(
                "{unindexed}{column} = {}",
                sql.text(value.as_str())
            ));
        }
    }
    let time_column = filter.time_field.column();
    if let Some(since) = filter.since {
        conditions.push(format!("{time_column} >= {}", sql.integer(micros(since))));
    }
    if let Some(until) = filter.until {
        conditions.push(format!("{time_column} < {}", sql.integer(micros(until))));
    }
    if let Some(prefix) = filter.task_id_prefix.as_deref().filter(|p| !p.is_empty()) {
        // A range, not LIKE, so the unique index on task_id serves it on both backends.
        let low = sql.text(prefix);
        let high = sql.text(format!("{prefix}{}", char::MAX));
        conditions.push(format!("task_id >= {low} AND task_id < {high}"));
    }
    if let Some(term) = filter.args_contains.as_deref().filter(|t| !t.is_empty()) {
        conditions.push(args_condition(sql, term, &args_search));
    }
    if let Some(cursor) = cursor {
        let order = filter.sort_field().column();
        let key = sql.integer(cursor.key);
        let row_id = sql.integer(cursor.row_id);
        conditions.push(format!("({order}, id) < ({key}, {row_id})"));
    }
    if conditions.is_empty() {
        "1 = 1".to_owned()
    } else {
        conditions.join(" AND ")
    }
}

/// The substring condition for an argument search (module docs).
fn args_condition(sql: &mut Sql, term: &str, args_search: &ArgsSearch) -> String {
    let escaped: String = term
        .chars()
        .flat_map(|character| match character {
            '%' | '_' | '\\' => vec!['\\', character],
            other => vec![other],
        })
        .collect();
    let pattern = format!("%{escaped}%");
    let phrase = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
    let like = |sql: &mut Sql| {
        let placeholder = sql.text(pattern.clone());
        format!(
            "(celeriac_task_history.args_repr LIKE {placeholder} ESCAPE '\\' \
             OR celeriac_task_history.kwargs_repr LIKE {placeholder} ESCAPE '\\')"
        )
    };
    match (sql.dialect, args_search) {
        (Dialect::Postgres, _) => {
            let expression = "(coalesce(args_repr, '') || ' ' || coalesce(kwargs_repr, ''))";
            match distinctive_digits(term) {
                // The index looks up the digits; `strpos`, which no index serves, checks the
                // whole term on the few rows found.
                Some(digits) => format!(
                    "{expression} ILIKE {} AND strpos(lower({expression}), lower({})) > 0",
                    sql.text(format!("%{digits}%")),
                    sql.text(term)
                ),
                None => format!("{expression} ILIKE {}", sql.text(pattern)),
            }
        }
        (Dialect::Sqlite, ArgsSearch::Indexed(token)) if indexable(Dialect::Sqlite, term) => {
            let looked_up = phrase(token.as_deref().unwrap_or(term));
            let condition = format!(
                "id IN (SELECT rowid FROM celeriac_task_history_search \
                 WHERE celeriac_task_history_search MATCH {})",
                sql.text(looked_up)
            );
            match token {
                Some(_) => format!("{condition} AND {}", like(sql)),
                None => condition,
            }
        }
        (Dialect::Sqlite, ArgsSearch::Joined(token)) if indexable(Dialect::Sqlite, term) => {
            let looked_up = phrase(token.as_deref().unwrap_or(term));
            let condition = format!("celeriac_task_history_search MATCH {}", sql.text(looked_up));
            match token {
                Some(_) => format!("{condition} AND {}", like(sql)),
                None => condition,
            }
        }
        (Dialect::Sqlite, _) => like(sql),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TaskState;

    #[test]
    fn filters_become_bound_conditions() {
        let filter = TaskFilter {
            states: vec![TaskState::Failure, TaskState::Retry],
            name: Some("demo.add".into()),
            args_contains: Some("50%".into()),
            ..TaskFilter::default()
        };
        let mut sql = Sql::new(Dialect::Postgres);
        let text = conditions(&mut sql, &filter, None, ArgsSearch::Indexed(None));
        assert_eq!(
            text,
            "state IN ($1, $2) AND name = $3 AND \
             (coalesce(args_repr, '') || ' ' || coalesce(kwargs_repr, '')) ILIKE $4"
        );
        assert_eq!(sql.params[3], Param::Text("%50\\%%".into()));
        let mut sql = Sql::new(Dialect::Sqlite);
        let text = conditions(&mut sql, &filter, None, ArgsSearch::Indexed(None));
        assert!(text.ends_with("MATCH ?4)"), "{text}");
        assert_eq!(sql.params[3], Param::Text("\"50%\"".into()));
    }

    #[test]
    fn short_sqlite_terms_are_scanned() {
        let filter = TaskFilter {
            args_contains: Some("4,".into()),
            ..TaskFilter::default()
        };
        let mut sql = Sql::new(Dialect::Sqlite);
        let text = conditions(&mut sql, &filter, None, ArgsSearch::Indexed(None));
        assert!(
            text.contains("celeriac_task_history.args_repr LIKE ?1"),
            "{text}"
        );
    }

    #[test]
    fn postgres_looks_up_distinctive_digits() {
        assert_eq!(distinctive_digits("'customer_id': 4711"), Some("4711"));
        assert_eq!(distinctive_digits("order-1234567'"), Some("1234567"));
        assert_eq!(distinctive_digits("'amount': 7.5"), None);
        assert_eq!(distinctive_digits("4711"), None);
        let filter = TaskFilter {
            args_contains: Some("order-1234567'".into()),
            ..TaskFilter::default()
        };
        let mut sql = Sql::new(Dialect::Postgres);
        let text = conditions(&mut sql, &filter, None, ArgsSearch::Indexed(None));
        assert!(text.contains("ILIKE $1 AND strpos("), "{text}");
        assert_eq!(sql.params[0], Param::Text("%1234567%".into()));
        assert_eq!(sql.params[1], Param::Text("order-1234567'".into()));
    }

    #[test]
    fn a_narrower_token_is_looked_up_and_the_term_checked() {
        assert_eq!(search_tokens("'amount': 123.5"), ["amount", "123.5"]);
        assert_eq!(search_tokens("order-42'"), ["order-42"]);
        assert!(search_tokens("a, b").is_empty());
        let filter = TaskFilter {
            args_contains: Some("'amount': 123.5".into()),
            ..TaskFilter::default()
        };
        let mut sql = Sql::new(Dialect::Sqlite);
        let text = conditions(
            &mut sql,
            &filter,
            None,
            ArgsSearch::Indexed(Some("123.5".into())),
        );
        assert!(
            text.contains("MATCH ?1) AND (celeriac_task_history.args_repr LIKE ?2"),
            "{text}"
        );
        assert_eq!(sql.params[0], Param::Text("\"123.5\"".into()));
    }
}
