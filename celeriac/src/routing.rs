//! `task_routes`: which queue (and exchange, routing_key, priority) a task name is sent to.
//!
//! This follows Celery's `MapRoute` (`celery/app/routes.py`) for the map form of the setting:
//!
//! 1. A key that contains `*` is a glob pattern, matched against the whole task name with Python's
//!    `fnmatch` rules (`*`, `?`, `[seq]`, `[!seq]`, case-sensitive). Every other key is an exact
//!    task name, even if it contains `?` or `[`, because that is how Celery decides.
//! 2. An exact name wins over every pattern; among patterns the first in map order wins.
//! 3. A bare string value (`"orders.*" = "orders"`) means `{ queue = "orders" }`.
//!
//! Celery also accepts compiled `re.Pattern` keys, which a TOML or JSON file cannot express. Keys
//! starting with `re:` are therefore reserved and rejected with [`RoutingError::RegexUnsupported`]
//! instead of being silently treated as task names.
//!
//! Invariant: map order is preserved from the file (TOML table or JSON object), because it decides
//! which pattern wins.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;

/// Where a task goes: the options Celery merges into `apply_async` for a matching route.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The queue the task message is published to.
    pub queue: String,
    /// Overrides the routing key (by default the queue name, on the default direct exchange).
    #[serde(default)]
    pub routing_key: Option<String>,
    /// Overrides the exchange (by default the queue's exchange, named like the queue).
    #[serde(default)]
    pub exchange: Option<String>,
    /// Default message priority for tasks on this route (0-9 on Redis).
    #[serde(default)]
    pub priority: Option<u8>,
}

impl Route {
    /// A route that only names a queue, as the bare-string form of `task_routes` does.
    pub fn queue(queue: impl Into<String>) -> Self {
        Route {
            queue: queue.into(),
            routing_key: None,
            exchange: None,
            priority: None,
        }
    }
}

/// Why a `task_routes` map cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    /// A key starts with `re:`: Celery's regex routes need compiled Python patterns, and Celeriac
    /// has no regex engine, so refusing is safer than routing by a name nobody will ever send.
    #[error("task route {pattern:?} is a regular expression, which is not supported: use a glob such as \"orders.*\"")]
    RegexUnsupported {
        /// The key as written.
        pattern: String,
    },
}

/// The `task_routes` setting: exact task names and glob patterns mapped to a [`Route`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskRoutes {
    /// Every entry in map order, kept for introspection.
    entries: Vec<(String, Route)>,
    /// Keys without `*`: looked up first, as Celery's `MapRoute.map`.
    exact: HashMap<String, Route>,
    /// Keys with `*`, in map order, as Celery's `MapRoute.patterns`.
    globs: Vec<(Glob, Route)>,
}

impl TaskRoutes {
    /// Builds the routes from entries in map order; fails on `re:` keys (see the module docs).
    pub fn new(entries: Vec<(String, Route)>) -> Result<TaskRoutes, RoutingError> {
        let mut task_routes = TaskRoutes::default();
        for (pattern, route) in entries {
            task_routes.insert(pattern, route)?;
        }
        Ok(task_routes)
    }

    /// Adds one entry; a repeated key keeps its first position and takes the newer route, as a
    /// Python dict does.
    fn insert(&mut self, pattern: String, route: Route) -> Result<(), RoutingError> {
        if pattern.starts_with("re:") {
            return Err(RoutingError::RegexUnsupported { pattern });
        }
        if pattern.contains('*') {
            let glob = Glob::compile(&pattern);
            match self
                .globs
                .iter_mut()
                .find(|(existing, _)| *existing == glob)
            {
                Some((_, existing_route)) => *existing_route = route.clone(),
                None => self.globs.push((glob, route.clone())),
            }
        } else {
            self.exact.insert(pattern.clone(), route.clone());
        }
        match self.entries.iter_mut().find(|(key, _)| *key == pattern) {
            Some((_, existing_route)) => *existing_route = route,
            None => self.entries.push((pattern, route)),
        }
        Ok(())
    }

    /// The route for a task name: an exact entry, else the first matching pattern, else `None`
    /// (the caller then uses `task_default_queue`).
    pub fn route(&self, task_name: &str) -> Option<&Route> {
        if let Some(route) = self.exact.get(task_name) {
            return Some(route);
        }
        self.globs
            .iter()
            .find(|(glob, _)| glob.matches(task_name))
            .map(|(_, route)| route)
    }

    /// True when no routes are configured, so every task goes to the default queue.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The configured entries in map order, for display and diagnostics.
    pub fn entries(&self) -> &[(String, Route)] {
        &self.entries
    }
}

impl<'de> Deserialize<'de> for TaskRoutes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TaskRoutesVisitor)
    }
}

/// Reads a map of pattern to route, in the order the deserializer yields it.
struct TaskRoutesVisitor;

impl<'de> Visitor<'de> for TaskRoutesVisitor {
    type Value = TaskRoutes;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a map of task name or glob pattern to a queue name or route table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TaskRoutes, A::Error> {
        let mut task_routes = TaskRoutes::default();
        while let Some((pattern, RouteValue(route))) = map.next_entry::<String, RouteValue>()? {
            task_routes
                .insert(pattern, route)
                .map_err(de::Error::custom)?;
        }
        Ok(task_routes)
    }
}

/// A route value as written: a bare queue name or a table of route options.
struct RouteValue(Route);

impl<'de> Deserialize<'de> for RouteValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RouteValueVisitor)
    }
}

/// Accepts a string (queue name) or a map (route options).
struct RouteValueVisitor;

impl<'de> Visitor<'de> for RouteValueVisitor {
    type Value = RouteValue;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a queue name or a table with `queue` and optional `routing_key`, `exchange`, `priority`")
    }

    fn visit_str<E: de::Error>(self, queue: &str) -> Result<RouteValue, E> {
        Ok(RouteValue(Route::queue(queue)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RouteValue, A::Error> {
        Route::deserialize(de::value::MapAccessDeserializer::new(map)).map(RouteValue)
    }
}

/// A compiled Python `fnmatch` pattern: each token matches exactly one character except `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Glob {
    /// The pattern split into tokens; consecutive `*` are collapsed into one.
    tokens: Vec<GlobToken>,
}

/// One element of a [`Glob`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobToken {
    /// A character that must appear as is (`\` is not an escape in fnmatch).
    Literal(char),
    /// `?`: any one character.
    AnyChar,
    /// `*`: any run of characters, including none and including dots.
    AnySequence,
    /// `[seq]` or `[!seq]`: one character in (or not in) the inclusive ranges.
    Class {
        /// True for `[!seq]`.
        negated: bool,
        /// Inclusive ranges; a single character `c` is stored as `(c, c)`. Reversed ranges such
        /// as `z-a` are kept and match nothing, as Python drops them.
        ranges: Vec<(char, char)>,
    },
}

/// Python's `fnmatch.fnmatchcase`: `*`, `?`, `[seq]`, `[!seq]`. Also used to select workers by
/// node-name pattern in remote control.
pub fn fnmatch(pattern: &str, text: &str) -> bool {
    Glob::compile(pattern).matches(text)
}

impl Glob {
    /// Compiles a pattern the way `fnmatch.translate` reads it: an unclosed `[` is a literal,
    /// a `]` right after `[` or `[!` belongs to the set, and `-` between two characters is a range.
    fn compile(pattern: &str) -> Glob {
        let characters: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut index = 0;
        while index < characters.len() {
            let character = characters[index];
            index += 1;
            match character {
                '*' => {
                    if tokens.last() != Some(&GlobToken::AnySequence) {
                        tokens.push(GlobToken::AnySequence);
                    }
                }
                '?' => tokens.push(GlobToken::AnyChar),
                '[' => match Self::class_end(&characters, index) {
                    Some(end) => {
                        tokens.push(Self::compile_class(&characters[index..end]));
                        index = end + 1;
                    }
                    None => tokens.push(GlobToken::Literal('[')),
                },
                other => tokens.push(GlobToken::Literal(other)),
            }
        }
        Glob { tokens }
    }

    /// The index of the `]` closing a class whose body starts at `start`, if any.
    fn class_end(characters: &[char], start: usize) -> Option<usize> {
        let mut index = start;
        if characters.get(index) == Some(&'!') {
            index += 1;
        }
        if characters.get(index) == Some(&']') {
            index += 1;
        }
        (index..characters.len()).find(|&position| characters[position] == ']')
    }

    /// Compiles the body of a `[...]` class (without the brackets).
    fn compile_class(body: &[char]) -> GlobToken {
        let (negated, body) = match body.split_first() {
            Some(('!', rest)) => (true, rest),
            _ => (false, body),
        };
        let mut ranges = Vec::new();
        let mut index = 0;
        while index < body.len() {
            let low = body[index];
            if index + 2 < body.len() && body[index + 1] == '-' {
                ranges.push((low, body[index + 2]));
                index += 3;
            } else {
                ranges.push((low, low));
                index += 1;
            }
        }
        GlobToken::Class { negated, ranges }
    }

    /// True when the whole of `text` matches (fnmatch patterns are anchored at both ends).
    fn matches(&self, text: &str) -> bool {
        let characters: Vec<char> = text.chars().collect();
        let mut token_index = 0;
        let mut char_index = 0;
        // Where to resume after the most recent `*`: (token after the star, text position it
        // currently absorbs up to). Single-character tokens make one backtrack point enough.
        let mut backtrack: Option<(usize, usize)> = None;
        while char_index < characters.len() {
            match self.tokens.get(token_index) {
                Some(GlobToken::AnySequence) => {
                    token_index += 1;
                    backtrack = Some((token_index, char_index));
                    continue;
                }
                Some(token) if token.matches_one(characters[char_index]) => {
                    token_index += 1;
                    char_index += 1;
                    continue;
                }
                _ => {}
            }
            match backtrack {
                Some((resume_token, absorbed)) => {
                    token_index = resume_token;
                    char_index = absorbed + 1;
                    backtrack = Some((resume_token, absorbed + 1));
                }
                None => return false,
            }
        }
        self.tokens[token_index..]
            .iter()
            .all(|token| *token == GlobToken::AnySequence)
    }
}

impl GlobToken {
    /// True when this single-character token accepts `character`.
    fn matches_one(&self, character: char) -> bool {
        match self {
            GlobToken::Literal(literal) => *literal == character,
            GlobToken::AnyChar => true,
            GlobToken::AnySequence => false,
            GlobToken::Class { negated, ranges } => {
                let inside = ranges
                    .iter()
                    .any(|(low, high)| (*low..=*high).contains(&character));
                inside != *negated
            }
        }
    }
}

#[cfg(test)]
mod tests;
