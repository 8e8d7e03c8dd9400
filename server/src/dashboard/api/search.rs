//! Flower 2.2's `search` and `sort_by` of `/api/tasks`, so a script's queries select and order
//! the same tasks here as in Flower.
//!
//! The syntax is Flower's: whitespace-separated terms are ANDed, `AND`/`OR` and parentheses
//! (at most 5 deep) combine them, `"quoted phrases"` keep spaces (`\"` and `\\` escape), and
//! `name:`, `state:`, `worker:`, `args:`, `kwargs:`, `result:` qualify a term. `state:` is an
//! exact match, `kwargs:key=value` matches one keyword argument exactly, every other term is a
//! case-insensitive substring of its field (a bare term: of the id, name, state, worker, args,
//! kwargs or result) and needs 3 characters. `NOT` and `-term` are refused, as in Flower, and
//! so are queries over 2,048 characters or 128 tokens; errors carry Flower's wording, so a
//! script that shows them shows the same text.
//!
//! Terms are matched against the task dictionary the API answers (`flower.rs`), so what a
//! search sees is exactly what the caller is shown.

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

const SEARCH_FIELDS: [&str; 6] = ["name", "state", "worker", "args", "kwargs", "result"];
const MIN_SUBSTRING_LENGTH: usize = 3;
const MAX_QUERY_LENGTH: usize = 2048;
const MAX_QUERY_TOKENS: usize = 128;
const MAX_QUERY_DEPTH: usize = 5;

/// Flower's `sort_by` keys (a leading `-` sorts descending).
pub(super) const SORT_KEYS: [&str; 4] = ["name", "received", "started", "state"];

/// A query Flower would refuse (answered 400 `{"error": ...}`, as Flower does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct QuerySyntaxError {
    message: String,
    position: Option<usize>,
}

impl QuerySyntaxError {
    fn at(message: impl Into<String>, position: usize) -> QuerySyntaxError {
        QuerySyntaxError {
            message: message.into(),
            position: Some(position),
        }
    }
}

impl fmt::Display for QuerySyntaxError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(position) => write!(formatter, "{} at position {position}.", self.message),
            None => write!(formatter, "{}.", self.message),
        }
    }
}

impl std::error::Error for QuerySyntaxError {}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Query {
    /// The empty query.
    All,
    /// One term, its field (`None`: any) and its value as typed.
    Term(Option<&'static str>, String),
    And(Vec<Query>),
    Or(Vec<Query>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Open,
    Close,
    And,
    Or,
    Term,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    value: String,
    position: usize,
}

fn tokenize(query: &[char]) -> Result<Vec<Token>, QuerySyntaxError> {
    let mut tokens = Vec::new();
    let push = |tokens: &mut Vec<Token>, kind, value: String, position| {
        tokens.push(Token {
            kind,
            value,
            position,
        });
        if tokens.len() > MAX_QUERY_TOKENS {
            return Err(QuerySyntaxError {
                message: format!("Query exceeds {MAX_QUERY_TOKENS} tokens"),
                position: None,
            });
        }
        Ok(())
    };
    let mut index = 0;
    while index < query.len() {
        let character = query[index];
        if character.is_whitespace() {
            index += 1;
            continue;
        }
        let position = index;
        if character == '(' || character == ')' {
            let kind = if character == '(' {
                Kind::Open
            } else {
                Kind::Close
            };
            push(&mut tokens, kind, character.to_string(), position)?;
            index += 1;
            continue;
        }
        let mut value = String::new();
        let (mut quoted, mut in_quote) = (false, false);
        while index < query.len() {
            let character = query[index];
            if character == '\\' && matches!(query.get(index + 1), Some('"' | '\\')) {
                value.push(query[index + 1]);
                index += 2;
                continue;
            }
            if character == '"' {
                quoted = true;
                in_quote = !in_quote;
                index += 1;
                continue;
            }
            if !in_quote && (character.is_whitespace() || character == '(' || character == ')') {
                break;
            }
            value.push(character);
            index += 1;
        }
        if in_quote {
            return Err(QuerySyntaxError::at("Unterminated quoted phrase", position));
        }
        if value.is_empty() {
            return Err(QuerySyntaxError::at("Empty search term", position));
        }
        let kind = match value.as_str() {
            "AND" if !quoted => Kind::And,
            "OR" if !quoted => Kind::Or,
            "NOT" if !quoted => {
                return Err(QuerySyntaxError::at("NOT is not supported", position));
            }
            _ => Kind::Term,
        };
        push(&mut tokens, kind, value, position)?;
    }
    tokens.push(Token {
        kind: Kind::End,
        value: String::new(),
        position: query.len(),
    });
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    index: usize,
}

impl Parser {
    fn current(&self) -> &Token {
        // The tokenizer always ends with `End`, which nothing advances past.
        &self.tokens[self.index.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.current().clone();
        self.index += 1;
        token
    }

    fn unexpected(&self) -> QuerySyntaxError {
        let token = self.current();
        QuerySyntaxError::at(
            format!(
                "Unexpected {}",
                celeriac::types::python_repr(&Value::String(token.value.clone()))
            ),
            token.position,
        )
    }

    fn parse(&mut self) -> Result<Query, QuerySyntaxError> {
        if self.current().kind == Kind::End {
            return Ok(Query::All);
        }
        let query = self.parse_or(0)?;
        if self.current().kind != Kind::End {
            return Err(self.unexpected());
        }
        Ok(query)
    }

    fn parse_or(&mut self, depth: usize) -> Result<Query, QuerySyntaxError> {
        let mut children = vec![self.parse_and(depth)?];
        while self.current().kind == Kind::Or {
            let operator = self.advance();
            if matches!(
                self.current().kind,
                Kind::End | Kind::Close | Kind::And | Kind::Or
            ) {
                return Err(QuerySyntaxError::at(
                    "OR must be followed by a search term",
                    operator.position,
                ));
            }
            children.push(self.parse_and(depth)?);
        }
        Ok(combine(children, true))
    }

    fn parse_and(&mut self, depth: usize) -> Result<Query, QuerySyntaxError> {
        let mut children = vec![self.parse_primary(depth)?];
        while !matches!(self.current().kind, Kind::End | Kind::Close | Kind::Or) {
            if self.current().kind == Kind::And {
                let operator = self.advance();
                if matches!(
                    self.current().kind,
                    Kind::End | Kind::Close | Kind::And | Kind::Or
                ) {
                    return Err(QuerySyntaxError::at(
                        "AND must be followed by a search term",
                        operator.position,
                    ));
                }
            } else if !matches!(self.current().kind, Kind::Term | Kind::Open) {
                return Err(self.unexpected());
            }
            children.push(self.parse_primary(depth)?);
        }
        Ok(combine(children, false))
    }

    fn parse_primary(&mut self, depth: usize) -> Result<Query, QuerySyntaxError> {
        let token = self.current().clone();
        match token.kind {
            Kind::Open => {
                if depth >= MAX_QUERY_DEPTH {
                    return Err(QuerySyntaxError::at(
                        format!("Query nesting exceeds {MAX_QUERY_DEPTH} levels"),
                        token.position,
                    ));
                }
                self.advance();
                if self.current().kind == Kind::Close {
                    return Err(QuerySyntaxError::at("Empty group", token.position));
                }
                let query = self.parse_or(depth + 1)?;
                if self.current().kind != Kind::Close {
                    return Err(QuerySyntaxError::at(
                        "Missing closing parenthesis",
                        token.position,
                    ));
                }
                self.advance();
                Ok(query)
            }
            Kind::Term => {
                self.advance();
                parse_term(&token)
            }
            _ => Err(QuerySyntaxError::at(
                "Expected a search term",
                token.position,
            )),
        }
    }
}

/// `children` as one node: nested nodes of the same kind flattened, repeats dropped.
fn combine(children: Vec<Query>, or: bool) -> Query {
    let mut flat: Vec<Query> = Vec::new();
    for child in children {
        let parts = match child {
            Query::Or(parts) if or => parts,
            Query::And(parts) if !or => parts,
            other => vec![other],
        };
        for part in parts {
            if !flat.contains(&part) {
                flat.push(part);
            }
        }
    }
    match flat.len() {
        1 => flat.pop().unwrap_or(Query::All),
        _ if or => Query::Or(flat),
        _ => Query::And(flat),
    }
}

fn parse_term(token: &Token) -> Result<Query, QuerySyntaxError> {
    let mut field = None;
    let mut value = token.value.as_str();
    if let Some((candidate, rest)) = value.split_once(':') {
        let candidate = candidate.to_lowercase();
        if let Some(known) = SEARCH_FIELDS.iter().find(|known| **known == candidate) {
            field = Some(*known);
            value = rest;
        }
    }
    if field.is_none() && value.starts_with('-') {
        return Err(QuerySyntaxError::at(
            "Negation with '-' is not supported",
            token.position,
        ));
    }
    if value.is_empty() {
        return Err(QuerySyntaxError::at(
            "Search qualifier requires a value",
            token.position,
        ));
    }
    let exact = field == Some("state") || (field == Some("kwargs") && value.contains('='));
    if !exact && value.trim().chars().count() < MIN_SUBSTRING_LENGTH {
        return Err(QuerySyntaxError::at(
            format!(
                "Substring search terms must contain at least {MIN_SUBSTRING_LENGTH} characters"
            ),
            token.position,
        ));
    }
    Ok(Query::Term(field, value.to_owned()))
}

impl Query {
    /// Reads Flower's query syntax; the empty query matches every task.
    pub(super) fn parse(text: &str) -> Result<Query, QuerySyntaxError> {
        let text = text.trim();
        let characters: Vec<char> = text.chars().collect();
        if characters.len() > MAX_QUERY_LENGTH {
            return Err(QuerySyntaxError {
                message: format!("Query exceeds {MAX_QUERY_LENGTH} characters"),
                position: None,
            });
        }
        Parser {
            tokens: tokenize(&characters)?,
            index: 0,
        }
        .parse()
    }

    /// Whether the task dictionary `task` matches.
    pub(super) fn matches(&self, task: &Value) -> bool {
        match self {
            Query::All => true,
            Query::And(parts) => parts.iter().all(|part| part.matches(task)),
            Query::Or(parts) => parts.iter().any(|part| part.matches(task)),
            Query::Term(field, value) => term_matches(*field, &normalize(value), task),
        }
    }
}

/// Flower compares casefolded text; `null` is the empty text.
fn normalize(text: &str) -> String {
    text.to_lowercase()
}

fn field_text(task: &Value, field: &str) -> String {
    match task.get(field) {
        Some(Value::String(text)) => normalize(text),
        None | Some(Value::Null) => String::new(),
        Some(other) => normalize(&other.to_string()),
    }
}

fn term_matches(field: Option<&str>, value: &str, task: &Value) -> bool {
    match field {
        Some("state") => field_text(task, "state") == value,
        Some("kwargs") if value.contains('=') => {
            let (key, item) = value.split_once('=').unwrap_or((value, ""));
            let wanted = (key.trim(), item.trim());
            kwargs_pairs(task)
                .iter()
                .any(|(key, item)| (key.as_str(), item.as_str()) == wanted)
        }
        Some(field) => field_text(task, field).contains(value),
        None => [
            "uuid", "name", "state", "worker", "args", "kwargs", "result",
        ]
        .iter()
        .any(|field| field_text(task, field).contains(value)),
    }
}

/// The `key=value` pairs of the task's keyword arguments, each side as Python's `str()` of it,
/// casefolded; none when the repr is not a dict literal.
fn kwargs_pairs(task: &Value) -> Vec<(String, String)> {
    let Some(Value::String(repr)) = task.get("kwargs") else {
        return Vec::new();
    };
    let Ok(kwargs) = celeriac::protocol::python_literal::parse_kwargs(repr) else {
        return Vec::new();
    };
    kwargs
        .iter()
        .map(|(key, item)| {
            let item = match item {
                Value::String(text) => text.clone(),
                Value::Null => String::new(),
                other => celeriac::types::python_repr(other),
            };
            (normalize(key), normalize(&item))
        })
        .collect()
}

/// A checked `sort_by`: the key and whether it is descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SortBy {
    key: &'static str,
    descending: bool,
}

impl SortBy {
    /// Reads `name`, `-received`, ...; anything else is Flower's 400 message.
    pub(super) fn parse(text: &str) -> Result<SortBy, String> {
        let descending = text.starts_with('-');
        let key = text.trim_start_matches('-');
        SORT_KEYS
            .iter()
            .find(|known| **known == key)
            .map(|key| SortBy { key, descending })
            .ok_or_else(|| {
                format!(
                    "Invalid sort_by '{text}', expected one of {}",
                    SORT_KEYS.join(", ")
                )
            })
    }

    /// Sorts `(task id, task dictionary)` pairs as Flower does: tasks without the field first
    /// (last when descending), times as numbers, text casefolded, ties by id.
    pub(super) fn sort(self, tasks: &mut [(String, Value)]) {
        let numeric = matches!(self.key, "received" | "started");
        tasks.sort_by(|(left_id, left), (right_id, right)| {
            let order = compare_field(left.get(self.key), right.get(self.key), numeric)
                .then_with(|| left_id.cmp(right_id));
            if self.descending {
                order.reverse()
            } else {
                order
            }
        });
    }
}

fn compare_field(left: Option<&Value>, right: Option<&Value>, numeric: bool) -> Ordering {
    fn present(value: Option<&Value>) -> Option<&Value> {
        value.filter(|value| !value.is_null())
    }
    match (present(left), present(right)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(left), Some(right)) if numeric => {
            let number = |value: &Value| value.as_f64().unwrap_or(0.0);
            number(left).total_cmp(&number(right))
        }
        (Some(left), Some(right)) => {
            let text = |value: &Value| match value {
                Value::String(text) => normalize(text),
                other => normalize(&other.to_string()),
            };
            text(left).cmp(&text(right))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task() -> Value {
        json!({
            "uuid": "0b5c-1", "name": "shop.send_invoice", "state": "FAILURE",
            "worker": "celery@web1", "args": "(42, 'EUR')",
            "kwargs": "{'order': 42, 'email': 'Ann@Example.com', 'retry': None}",
            "result": "ValueError('smtp down')",
        })
    }

    fn matches(query: &str) -> bool {
        Query::parse(query).unwrap().matches(&task())
    }

    #[test]
    fn terms_fields_and_operators_select_as_in_flower() {
        assert!(matches(""));
        assert!(matches("invoice"));
        assert!(matches("INVOICE smtp"));
        assert!(!matches("invoice nothing"));
        assert!(matches("nothing OR invoice"));
        assert!(matches("state:failure"));
        assert!(!matches("state:fail"), "state is exact");
        assert!(matches("name:send_inv"));
        assert!(!matches("name:smtp"));
        assert!(matches("args:eur result:smtp"));
        assert!(matches("kwargs:order=42"));
        assert!(matches("kwargs:email=ann@example.com"));
        assert!(matches("kwargs:retry="), "None is the empty text");
        assert!(!matches("kwargs:order=4"));
        assert!(matches("kwargs:order"));
        assert!(matches("(nothing OR smtp) AND worker:web1"));
        assert!(matches("\"smtp down\""));
        assert!(!matches("\"smtp  down\""));
        assert!(
            matches("unknown:smtp OR invoice"),
            "an unknown field is a bare term"
        );
    }

    #[test]
    fn refusals_carry_flowers_messages() {
        let error = |query: &str| Query::parse(query).unwrap_err().to_string();
        assert_eq!(
            error("ab"),
            "Substring search terms must contain at least 3 characters at position 0."
        );
        assert_eq!(error("NOT x"), "NOT is not supported at position 0.");
        assert_eq!(
            error("-abc"),
            "Negation with '-' is not supported at position 0."
        );
        assert_eq!(
            error("abc OR"),
            "OR must be followed by a search term at position 4."
        );
        assert_eq!(
            error("abc AND OR def"),
            "AND must be followed by a search term at position 4."
        );
        assert_eq!(error("(abc"), "Missing closing parenthesis at position 0.");
        assert_eq!(error("()"), "Empty group at position 0.");
        assert_eq!(error("abc)"), "Unexpected ')' at position 3.");
        assert_eq!(error("\"abc"), "Unterminated quoted phrase at position 0.");
        assert_eq!(
            error("name:"),
            "Search qualifier requires a value at position 0."
        );
        assert_eq!(
            error("((((((abc))))))"),
            "Query nesting exceeds 5 levels at position 5."
        );
        assert_eq!(error(&"x".repeat(2049)), "Query exceeds 2048 characters.");
        assert_eq!(error(&"abc ".repeat(129)), "Query exceeds 128 tokens.");
    }

    #[test]
    fn sort_by_orders_missing_values_first_and_reverses_whole() {
        let mut tasks = vec![
            ("b".to_owned(), json!({"name": "Zeta", "received": 2.0})),
            ("a".to_owned(), json!({"name": "alpha", "received": null})),
            ("c".to_owned(), json!({"name": "beta", "received": 1.5})),
        ];
        let ids =
            |tasks: &[(String, Value)]| tasks.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
        SortBy::parse("received").unwrap().sort(&mut tasks);
        assert_eq!(ids(&tasks), ["a", "c", "b"]);
        SortBy::parse("-received").unwrap().sort(&mut tasks);
        assert_eq!(ids(&tasks), ["b", "c", "a"]);
        SortBy::parse("name").unwrap().sort(&mut tasks);
        assert_eq!(ids(&tasks), ["a", "c", "b"], "casefolded");
        assert_eq!(
            SortBy::parse("runtime").unwrap_err(),
            "Invalid sort_by 'runtime', expected one of name, received, started, state"
        );
    }
}
