//! The worker's node name (`celery@host`), expanded from `-n`/`--hostname` exactly as Celery does.
//!
//! Celery's worker command turns the option into a node name with
//! `host_format(default_nodename(value))` (`celery/utils/nodenames.py`, `celery/bin/worker.py`):
//!
//! 1. `default_nodename` splits the template at the first `@`. Without an `@` the whole template
//!    is the *host* part and the name part is `celery`, so `-n worker1.%h` gives
//!    `celery@worker1.<hostname>`. An empty name or host part falls back to `celery` or the
//!    machine's hostname.
//! 2. `host_format` then replaces `%` followed by one word character, in a single pass:
//!    `%h` the machine's full hostname, `%n` its name before the first dot, `%d` its domain after
//!    the first dot (empty if none), `%i` the pool process index and `%I` the index with a `-`
//!    prefix. The worker expands the option in its main process, which has no index, so `%i`
//!    becomes `0` and `%I` becomes empty.
//!
//! Celery's pattern is `%(\w)`, so `%%` is **not** an escape: `%%h` becomes `%` followed by the
//! hostname, and a `%` not followed by a word character stays as is. Celery refuses other
//! abbreviations such as `%x` with a `ValueError`; [`expand_node_name`] leaves them as written,
//! and [`check_node_name_template`] reports them so a command line can refuse them too.
//!
//! Invariant: a value substituted for an abbreviation is never expanded again (one pass).

use std::path::Path;

/// The name part Celery uses when the template has none (`NODENAME_DEFAULT`).
const DEFAULT_NAME: &str = "celery";

/// The separator between the name and host parts of a node name (`NODENAME_SEP`).
const NODE_NAME_SEPARATOR: char = '@';

/// A node name template that Celery would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeNameError {
    /// `%` followed by a word character that is not one of `h`, `n`, `d`, `i`, `I`.
    #[error("unknown abbreviation %{abbreviation} in node name {template:?}")]
    UnknownAbbreviation {
        /// The character after `%`.
        abbreviation: char,
        /// The template as given.
        template: String,
    },
}

/// Expands a `-n` template (`None` means Celery's default `celery@%h`) into the worker's node
/// name, given the machine's `hostname` (see [`hostname`]).
///
/// ```
/// use celeriac::worker::node_name::expand_node_name;
/// assert_eq!(expand_node_name(None, "box.example.com"), "celery@box.example.com");
/// assert_eq!(expand_node_name(Some("w1@%n"), "box.example.com"), "w1@box");
/// ```
pub fn expand_node_name(template: Option<&str>, hostname: &str) -> String {
    let node_name = default_node_name(template.unwrap_or(""), hostname);
    host_format(&node_name, hostname)
}

/// Checks that a template uses only abbreviations Celery knows, as Celery's `simple_format` does
/// before a worker starts.
pub fn check_node_name_template(template: &str) -> Result<(), NodeNameError> {
    let characters: Vec<char> = template.chars().collect();
    for pair in characters.windows(2) {
        if pair[0] == '%' && is_word_character(pair[1]) && abbreviation(pair[1], "").is_none() {
            return Err(NodeNameError::UnknownAbbreviation {
                abbreviation: pair[1],
                template: template.to_owned(),
            });
        }
    }
    Ok(())
}

/// The machine's hostname, as Python's `socket.gethostname()` reports it on Linux.
///
/// Reads the kernel's value (`/proc/sys/kernel/hostname`), then `/etc/hostname`, then the
/// `HOSTNAME` variable, and falls back to `localhost` so a worker can always start.
pub fn hostname() -> String {
    let from_files = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .into_iter()
        .filter_map(|path| std::fs::read_to_string(Path::new(path)).ok())
        .map(|text| text.trim().to_owned())
        .find(|name| !name.is_empty());
    from_files
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Celery's `default_nodename`: `name@host`, with `celery` and the machine's hostname filling
/// whichever part is missing or empty.
fn default_node_name(template: &str, hostname: &str) -> String {
    let (name, host) = match template.split_once(NODE_NAME_SEPARATOR) {
        Some((name, host)) => (name, host),
        None => ("", template),
    };
    let name = if name.is_empty() { DEFAULT_NAME } else { name };
    let host = if host.is_empty() { hostname } else { host };
    format!("{name}{NODE_NAME_SEPARATOR}{host}")
}

/// Celery's `host_format` with no explicit host or name: replaces `%` plus one word character
/// in one left-to-right pass, leaving unknown abbreviations untouched.
fn host_format(text: &str, hostname: &str) -> String {
    let mut expanded = String::with_capacity(text.len() + hostname.len());
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        if character != '%' {
            expanded.push(character);
            continue;
        }
        match characters.peek().copied() {
            Some(next) if is_word_character(next) => match abbreviation(next, hostname) {
                Some(value) => {
                    expanded.push_str(&value);
                    characters.next();
                }
                None => expanded.push('%'),
            },
            _ => expanded.push('%'),
        }
    }
    expanded
}

/// The value of one abbreviation for the given hostname, or `None` if Celery does not know it.
fn abbreviation(key: char, hostname: &str) -> Option<String> {
    let (name, domain) = hostname.split_once('.').unwrap_or((hostname, ""));
    match key {
        'h' => Some(hostname.to_owned()),
        'n' => Some(name.to_owned()),
        'd' => Some(domain.to_owned()),
        'i' => Some("0".to_owned()),
        'I' => Some(String::new()),
        _ => None,
    }
}

/// Python's `\w` for `str` patterns: letters, digits and underscore (Unicode-aware).
fn is_word_character(character: char) -> bool {
    character.is_alphanumeric() || character == '_'
}

#[cfg(test)]
mod tests;
